//! Integration tests of bright-ingest over the simulator's feeds.

mod feeds;
mod file_drop;
mod flush;
mod mllp;
mod mllp_client;
mod support;
