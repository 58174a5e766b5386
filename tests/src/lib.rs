//! Integration harness for pingan.
