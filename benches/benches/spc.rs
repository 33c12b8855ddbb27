//! SPC throughput: Making Data Count XmR charts over 10,000 series of 1,000 points each (ten
//! million points), as a dashboard tick over every KPI × breakdown would ask for.
//!
//! `cargo bench -p bright-benches --bench spc`. Series are deterministic pseudo-random walks
//! with level shifts, so the rules fire about as often as on real KPIs.

use std::hint::black_box;

use bright_engine::spc::{XmrOptions, xmr};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};

const SERIES: usize = 10_000;
const POINTS: usize = 1_000;

/// A small deterministic generator (SplitMix64), so the input never changes between runs.
fn next(state: &mut u64) -> f64 {
    *state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    ((z ^ (z >> 31)) >> 11) as f64 / (1u64 << 53) as f64
}

fn series() -> Vec<Vec<Option<f64>>> {
    let mut state = 42;
    (0..SERIES)
        .map(|_| {
            let mut level = 100.0;
            (0..POINTS)
                .map(|i| {
                    if i % 250 == 249 {
                        level += (next(&mut state) - 0.5) * 40.0;
                    }
                    Some(level + (next(&mut state) - 0.5) * 20.0)
                })
                .collect()
        })
        .collect()
}

fn xmr_throughput(c: &mut Criterion) {
    let all = series();
    let rebase = vec![false; POINTS];
    let options = XmrOptions::default();
    let mut group = c.benchmark_group("spc");
    group.throughput(Throughput::Elements((SERIES * POINTS) as u64));
    group.sample_size(10);
    group.bench_function("xmr_10000_series_x_1000_points", |b| {
        b.iter(|| {
            for s in &all {
                black_box(xmr(black_box(s), &rebase, &options).ok());
            }
        })
    });
    group.finish();
}

criterion_group!(benches, xmr_throughput);
criterion_main!(benches);
