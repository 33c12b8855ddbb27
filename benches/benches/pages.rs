//! Pages: how long a person waits. Measures, over a lake, the time from start-up (engine
//! opened, catalogue planned, every KPI computed for the pages) to the first Integrated
//! Performance Report, then the server time to render each page from the warm KPI cache —
//! the IPR, a dashboard, a KPI in depth, their JSON twins — as p50 and p99 over many requests.
//! The goal is a p99 under 50 ms for the whole catalogue; each line prints its ratio to it.
//!
//! `BRIGHT_BENCH_LAKE=DIR [BRIGHT_BENCH_RUNS=200] cargo bench --workspace --bench pages`
//! (without `BRIGHT_BENCH_LAKE`, a 730-day lake of the simulated trust is generated first,
//! as `bright demo` makes). Prints one JSON object per measurement.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Instant;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use bright_dashboards::auth::{ClientConfig, Clients, token_sha256};
use bright_dashboards::kpis::KpiService;
use bright_dashboards::spec::Dashboards;
use bright_dashboards::{AppState, router};
use bright_engine::kpi::Catalogue;
use bright_engine::lake::Lake;
use bright_engine::query::{QueryConfig, QueryEngine};
use tower::ServiceExt;

const TOKEN: &str = "bench-token-0123456789";
const GOAL_MS: f64 = 50.0;

fn quantile(xs: &mut [f64], q: f64) -> f64 {
    xs.sort_by(f64::total_cmp);
    xs[((xs.len() - 1) as f64 * q).round() as usize]
}

async fn render(state: &AppState, path: &str) -> (StatusCode, usize) {
    let response = router(state.clone())
        .oneshot(
            Request::get(path)
                .header("authorization", format!("Bearer {TOKEN}"))
                .body(Body::empty())
                .expect("request"),
        )
        .await
        .expect("answered");
    let status = response.status();
    let bytes = axum::body::to_bytes(response.into_body(), 256 << 20)
        .await
        .expect("body");
    (status, bytes.len())
}

fn main() {
    bright_engine::configure_allocator();
    let runs: usize = std::env::var("BRIGHT_BENCH_RUNS")
        .ok()
        .and_then(|r| r.parse().ok())
        .unwrap_or(200)
        .max(1);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(async {
        let made = tempfile::tempdir().expect("a folder");
        let location = match std::env::var("BRIGHT_BENCH_LAKE") {
            Ok(location) => location,
            Err(_) => {
                let path = made.path().join("lake");
                let lake = Lake::open(path.to_str().expect("utf-8")).expect("lake");
                let today = chrono::Utc::now().date_naive();
                bright_sim::lake_sink::generate_into_lake(
                    bright_sim::SimConfig::new(42, 730, today),
                    bright_sim::lake_sink::simulation_key(42),
                    &lake,
                    Box::new(|_| {}),
                )
                .await
                .expect("simulated");
                path.to_string_lossy().into_owned()
            }
        };
        let started = Instant::now();
        let lake = Lake::open(&location).expect("lake opens");
        let config = QueryConfig::default();
        let mut engine = QueryEngine::open(&lake, &config)
            .await
            .expect("engine opens");
        let catalogue = Catalogue::embedded().expect("catalogue");
        let dashboards = Dashboards::load(&catalogue, None).expect("dashboards");
        engine
            .register_kpis(catalogue, &BTreeMap::new())
            .await
            .expect("KPIs plan");
        let kpis = Arc::new(KpiService::new(Arc::new(engine), config.time_zone));
        let clients = Clients::new(&[ClientConfig {
            name: "bench".into(),
            token_sha256: token_sha256(TOKEN),
            scopes: vec!["read".into()], expires: None, }])
        .expect("clients");
        let state = AppState::new(location.clone(), clients, 1 << 20, None)
            .with_pages(kpis.clone(), Arc::new(dashboards));
        kpis.warm().await.expect("every KPI computes");
        let (status, _) = render(&state, "/ipr").await;
        assert_eq!(status, StatusCode::OK);
        println!(
            "{{\"measure\":\"start-up to first /ipr\",\"ms\":{:.0}}}",
            started.elapsed().as_secs_f64() * 1e3
        );
        let paths = [
            "/ipr",
            "/api/ipr",
            "/dashboards/ed",
            "/dashboards/theatres?site=NGH",
            "/kpi/bed_occupancy_ga?by=ward",
            "/",
        ];
        // Each path once, so series by breakdown (site, ward) are in the cache, as after
        // the first viewer.
        for path in paths {
            let (status, _) = render(&state, path).await;
            assert_eq!(status, StatusCode::OK, "{path}");
        }
        for path in paths {
            let mut ms = Vec::with_capacity(runs);
            let mut bytes = 0;
            for _ in 0..runs {
                let t = Instant::now();
                let (status, size) = render(&state, path).await;
                ms.push(t.elapsed().as_secs_f64() * 1e3);
                assert_eq!(status, StatusCode::OK, "{path}");
                bytes = size;
            }
            let p50 = quantile(&mut ms, 0.5);
            let p99 = quantile(&mut ms, 0.99);
            println!(
                "{{\"page\":\"{path}\",\"runs\":{runs},\"bytes\":{bytes},\"p50_ms\":{p50:.2},\"p99_ms\":{p99:.2},\"p99_over_goal\":{:.3}}}",
                p99 / GOAL_MS
            );
        }
    });
}
