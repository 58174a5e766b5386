//! pingan-ingest (skeleton)
