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

/// Every bright process (the service, the command line, benches and tests) allocates with
/// mimalloc: ingest builds and drops small buffers for every message and query operators
/// allocate per batch, where the system allocator took about a quarter of ingest's CPU time
/// (MLLP with durable acks ran about 1.5× as fast with it, measured with the ingest bench;
/// see benches/RESULTS.md). Declared here, where every binary links it, so the benches
/// measure the allocator the service runs with.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// mimalloc's `purge_delay` (the v2 library's option number): how long memory freed stays
/// with the process before it goes back to the system.
const MI_OPTION_PURGE_DELAY: libmimalloc_sys::mi_option_t = 15;

/// Lets memory a query frees stay with the process for a second before it goes back to the
/// system, instead of mimalloc v2's 10 ms. A query sorts gigabytes in batches it frees and
/// allocates again; given back at once, each page was faulted in afresh, and a quarter of an
/// ED KPI's CPU time over a region went to the kernel (4.7 M page faults for three ED
/// series; 1.7 M with a second's delay, each series 10.2 -> 8.1-8.6 s). Memory still goes
/// back once the process is idle (arenas after ten times the delay). To be called first
/// thing in `main`, before any other thread exists.
pub fn configure_allocator() {
    // SAFETY: mimalloc's option setter is not thread safe; the caller runs it before any
    // other thread starts. Option 15 is `mi_option_purge_delay` in the pinned v2 library.
    unsafe { libmimalloc_sys::mi_option_set(MI_OPTION_PURGE_DELAY, 1000) }
}
