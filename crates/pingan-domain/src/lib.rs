//! pingan-domain (skeleton)
