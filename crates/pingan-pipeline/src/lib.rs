//! pingan-pipeline (skeleton)
