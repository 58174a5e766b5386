//! pingan-query (skeleton)
