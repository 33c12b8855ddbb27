//! One module per resource.

pub mod feeds;
pub mod ingest;
pub mod login;
pub mod pages;
