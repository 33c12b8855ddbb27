//! KPI refresh: how long bright takes to compute every KPI of the catalogue for one trust,
//! in full and for the open day only (what a dashboard tick recomputes), over an existing lake.
//!
//! `BRIGHT_BENCH_LAKE=DIR [BRIGHT_BENCH_RUNS=5] cargo bench --workspace --bench kpi`; best run
//! `benches/kpi.sh`, which makes the lake and runs DuckDB over the same files beside it. Prints
//! one JSON object per KPI and mode with the median wall time of the runs, in milliseconds.
//! Each run is one tick in a new session, KPIs in catalogue order: the first KPI that reads a
//! materialised helper view (inpatient stays, the ward census) includes computing it.

use std::collections::BTreeMap;
use std::time::Instant;

use bright_engine::kpi::Catalogue;
use bright_engine::lake::Lake;
use bright_engine::query::{QueryConfig, QueryEngine};
use chrono::NaiveDate;

fn median(mut xs: Vec<f64>) -> f64 {
    xs.sort_by(f64::total_cmp);
    xs[xs.len() / 2]
}

fn main() {
    bright_engine::configure_allocator();
    let Ok(location) = std::env::var("BRIGHT_BENCH_LAKE") else {
        eprintln!("kpi bench: set BRIGHT_BENCH_LAKE to a lake folder (benches/kpi.sh does)");
        return;
    };
    let runs: usize = std::env::var("BRIGHT_BENCH_RUNS")
        .ok()
        .and_then(|r| r.parse().ok())
        .unwrap_or(5)
        .max(1);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(async {
        let lake = Lake::open(&location).expect("lake opens");
        let mut engine = QueryEngine::open(&lake, &QueryConfig::default())
            .await
            .expect("engine opens");
        let catalogue = Catalogue::embedded().expect("catalogue");
        let started = Instant::now();
        engine
            .register_kpis(catalogue.clone(), &BTreeMap::new())
            .await
            .expect("KPIs plan");
        println!(
            "{{\"engine\":\"bright\",\"kpi\":\"(plan all)\",\"mode\":\"start-up\",\"ms\":{:.1}}}",
            started.elapsed().as_secs_f64() * 1e3
        );
        // The open day: the lake's last ED arrival day (the generator ends yesterday).
        let last = engine
            .sql("SELECT CAST(max(arrival_date) AS VARCHAR) FROM ed_attendances")
            .await
            .expect("last day");
        let last: NaiveDate = bright_engine::arrow::util::display::array_value_to_string(
            last.batches[0].column(0),
            0,
        )
        .expect("text")
        .parse()
        .expect("a date");
        for (mode, since) in [("full", None), ("open_day", Some(last))] {
            let mut times = vec![Vec::with_capacity(runs); catalogue.kpis.len()];
            let mut total = Vec::with_capacity(runs);
            for run in 0..runs {
                // A new session per run: materialised helper views start empty, as on a tick
                // after the ADT feed has moved on, and the first KPI reading them pays for them.
                let mut engine = QueryEngine::open(&lake, &QueryConfig::default())
                    .await
                    .expect("engine opens");
                engine
                    .register_kpis(catalogue.clone(), &BTreeMap::new())
                    .await
                    .expect("KPIs plan");
                let mut sum = 0.0;
                for (kpi, times) in catalogue.kpis.iter().zip(times.iter_mut()) {
                    let started = Instant::now();
                    let since = since.map(|d| kpi.grain.period_start(d));
                    let output = engine
                        .kpi_series(kpi.id.as_str(), since, None, &[])
                        .await
                        .expect("KPI runs");
                    let ms = started.elapsed().as_secs_f64() * 1e3;
                    std::hint::black_box(output.num_rows());
                    if run == 0 && output.num_rows() == 0 && mode == "full" {
                        eprintln!("kpi bench: {} has no rows on this lake", kpi.id);
                    }
                    times.push(ms);
                    sum += ms;
                }
                total.push(sum);
            }
            for (kpi, times) in catalogue.kpis.iter().zip(times) {
                println!(
                    "{{\"engine\":\"bright\",\"kpi\":\"{}\",\"mode\":\"{mode}\",\"ms\":{:.1}}}",
                    kpi.id,
                    median(times)
                );
            }
            println!(
                "{{\"engine\":\"bright\",\"kpi\":\"(all)\",\"mode\":\"{mode}\",\"ms\":{:.1}}}",
                median(total)
            );
        }
    });
}
