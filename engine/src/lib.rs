//! bright-engine: the core every other bright crate stands on.
//!
//! - [`schema`]: the canonical data model (tables, columns, types, partitioning), defined once.
//! - [`batch`]: record batches of a table built row by row in schema order.
//! - [`lake`]: Delta Lake tables on `object_store` (local folder or S3), atomic appends,
//!   compaction, vacuum and statistics.
//! - [`query`]: the DataFusion session over the lake; read-only SQL in, Arrow batches out.
//! - [`pseudonym`]: keyed pseudonymisation of patient identifiers.
//! - [`spc`]: statistical process control (Making Data Count XmR), pure functions.
//! - [`kpi`]: the KPI catalogue (manifest + SQL), which [`query`] registers as views.
//! - [`annotations`]: dated notes and recorded rebases on KPIs, kept in the lake.
//! - [`ingest_api`]: the trait through which the web service hands requests to ingest.
//!
//! Ingest and dashboards depend on this crate only and meet here. It re-exports the `arrow`
//! it was built with so no other crate pulls a second copy.

pub mod annotations;
pub mod batch;
pub mod ingest_api;
pub mod kpi;
pub mod lake;
pub mod pseudonym;
pub mod query;
pub mod reads;
pub mod schema;
pub mod spc;

pub use arrow;
