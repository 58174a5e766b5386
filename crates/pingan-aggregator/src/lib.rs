//! pingan-aggregator (skeleton)
