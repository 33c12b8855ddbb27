//! bright-benches: benchmarks of bright, each reported as a ratio against a peer run side by
//! side on the same data (e.g. DuckDB on the same Parquet files). Timings live here, never in
//! tests.

/// CPU time this process has used, user and system, in seconds (from `/proc/self/stat`, in
/// the kernel's clock ticks of 1/100 s); NaN where the system does not say.
pub fn cpu_seconds() -> f64 {
    std::fs::read_to_string("/proc/self/stat")
        .ok()
        .and_then(|s| {
            // Fields after the command name, which is in parentheses and may hold spaces:
            // utime and stime are the 12th and 13th of them.
            let rest = &s[s.rfind(')')? + 1..];
            let mut fields = rest.split_whitespace().skip(11);
            let user: f64 = fields.next()?.parse().ok()?;
            let system: f64 = fields.next()?.parse().ok()?;
            Some((user + system) / 100.0)
        })
        .unwrap_or(f64::NAN)
}

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
