//! Integration tests of bright-engine against real Delta tables, a real DataFusion session and
//! a real S3-compatible server (moto) on loopback.

mod fixtures;
mod lake;
mod moto;
mod query;
mod s3;
