//! pingan-classifier (skeleton)
