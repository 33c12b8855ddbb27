//! bright-benches: benchmarks of bright, each reported as a ratio against a peer run side by
//! side on the same data (e.g. DuckDB on the same Parquet files). Timings live here, never in
//! tests.

/// A memory figure of this process from `/proc/self/status` (`VmRSS:` resident now,
/// `VmHWM:` its peak), in bytes; NaN where the system does not say.
pub fn memory_bytes(field: &str) -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix(field))
                .and_then(|v| v.split_whitespace().next())
                .and_then(|kb| kb.parse::<f64>().ok())
        })
        .map_or(f64::NAN, |kb| kb * 1024.0)
}
