//! pingan-runtime (skeleton)
