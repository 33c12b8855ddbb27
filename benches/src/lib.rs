//! bright-benches: benchmarks of bright, each reported as a ratio against a peer run side by
//! side on the same data (e.g. DuckDB on the same Parquet files). Timings live here, never in
//! tests.
