//! Integration tests of bright-ingest over the simulator's feeds.

mod adt_feed;
mod mllp;
