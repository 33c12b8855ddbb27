//! End-to-end tests of the `bright` command: the CLI over a generated lake, an independent
//! reader (Python deltalake + DuckDB) agreeing with it, the CLI on S3-compatible storage
//! configured the usual way (environment), `bright demo` serving `/health`, and the pages in a
//! real browser.

mod browser;
mod cli;
mod demo;
mod doors;
mod hardening;
mod http_ingest;
mod kpi;
#[path = "../../ingest/tests/it/mllp_client.rs"]
mod mllp_client;
#[path = "../../engine/tests/it/moto.rs"]
mod moto;
mod reader;
mod s3;
mod serve;
mod spc;
mod sql;
mod support;
