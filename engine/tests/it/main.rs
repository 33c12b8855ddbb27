//! Integration tests of bright-engine against real Delta tables, a real DataFusion session and
//! a real S3-compatible server (moto) on loopback, and the SPC engine against an independent
//! implementation over real A&E series.

#[path = "../data/escapes.rs"]
mod escapes;
mod fixtures;
mod kpi;
mod kpi_golden;
mod lake;
mod live;
mod moto;
mod query;
mod s3;
mod sandbox;
mod spc_reference;
