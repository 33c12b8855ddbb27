//! One module per resource.

pub mod alerts;
pub mod feeds;
pub mod ingest;
pub mod kiosk;
pub mod login;
pub mod metrics;
pub mod pages;
pub mod sql;
