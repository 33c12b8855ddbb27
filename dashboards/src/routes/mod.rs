//! One module per resource.

pub mod ingest;
