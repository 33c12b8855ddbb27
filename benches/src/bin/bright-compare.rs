//! bright's side of `benches/compare.sh`: one engine over a lake, answering timed queries.
//!
//!     bright-compare LAKE_DIR QUERIES_DIR
//!
//! Reads one JSON request a line on stdin and answers each with one JSON line on stdout, so
//! the harness can interleave bright with DuckDB and Polars run after run while each engine
//! keeps its own session, as an analyst's or a dashboard's would. The KPI catalogue is read
//! from QUERIES_DIR (the working tree's `queries/`, the same files DuckDB and Polars run).
//! Requests:
//! - `{"op":"session"}`: a new session with the KPI catalogue planned (what a process start or
//!   a dashboard tick after new ADT data begins from: materialised helper views empty);
//! - `{"op":"sql","sql":"…"}`: one statement, as `bright sql` runs it;
//! - `{"op":"kpi","id":"…","since":"YYYY-MM-DD"|null,"by":["site"]}`: a KPI's series as
//!   dashboards and `bright kpi run` compute it (only `since`'s window read);
//! - `{"op":"cache","ids":["…"]}`: a dashboard's KPI cache holding every listed KPI's series
//!   (computed in full now);
//! - `{"op":"tick","today":"YYYY-MM-DD"}`: a dashboard tick: the cache brought up to date
//!   with the lake, recomputing only the periods new data can reach; answers the number of
//!   series, of those recomputed (some periods or all) and recomputed in full, the tables
//!   that changed, and the refresh's timed steps (`what`, `since`, `ms`);
//! - `{"op":"compact","tables":["…"],"days":["YYYY-MM-DD"]}`: what serving does after each
//!   flush: the engine moved to the lake's latest commits, then each table's days written
//!   compacted once enough small files hold them; answers the files merged;
//! - `{"op":"cached","id":"…"}`: a KPI's series as the cache holds it;
//! - `{"op":"memory"}`: this process's peak resident memory.
//!
//! Answers carry `ms` (planning and running to the last batch, not the JSON writing), the
//! column names and the rows as JSON values; a failure answers `{"error":"…"}` and the
//! runner goes on.

use std::collections::BTreeMap;
use std::io::{BufRead, Write};
use std::path::{Path, PathBuf};
use std::time::Instant;

use bright_engine::arrow::json::WriterBuilder;
use bright_engine::arrow::json::writer::JsonArray;
use bright_engine::kpi::{Catalogue, KpiCache};
use bright_engine::lake::Lake;
use bright_engine::query::{QueryConfig, QueryEngine, QueryOutput};
use serde_json::{Value, json};

async fn session(lake: &Lake, queries: &Path) -> Result<QueryEngine, String> {
    let mut engine = QueryEngine::open(lake, &QueryConfig::default())
        .await
        .map_err(|e| e.to_string())?;
    let catalogue = Catalogue::load(queries).map_err(|e| e.to_string())?;
    engine
        .register_kpis(catalogue, &BTreeMap::new())
        .await
        .map_err(|e| e.to_string())?;
    Ok(engine)
}

/// The output as `{"columns": [...], "rows": [[...], ...]}`, nulls kept.
fn rows(output: &QueryOutput) -> Result<Value, String> {
    let mut buffer = Vec::new();
    let mut writer = WriterBuilder::new()
        .with_explicit_nulls(true)
        .build::<_, JsonArray>(&mut buffer);
    for batch in &output.batches {
        writer.write(batch).map_err(|e| e.to_string())?;
    }
    writer.finish().map_err(|e| e.to_string())?;
    drop(writer);
    let columns: Vec<String> = output
        .schema
        .fields()
        .iter()
        .map(|f| f.name().clone())
        .collect();
    let objects: Vec<serde_json::Map<String, Value>> = if buffer.is_empty() {
        Vec::new()
    } else {
        serde_json::from_slice(&buffer).map_err(|e| e.to_string())?
    };
    let rows: Vec<Value> = objects
        .into_iter()
        .map(|mut o| {
            Value::Array(
                columns
                    .iter()
                    .map(|c| o.remove(c).unwrap_or(Value::Null))
                    .collect(),
            )
        })
        .collect();
    Ok(json!({ "columns": columns, "rows": rows }))
}

/// One engine session and the dashboard KPI cache kept over it.
struct Session {
    engine: QueryEngine,
    cache: KpiCache,
}

async fn answer(
    state: &mut Session,
    lake: &Lake,
    queries: &Path,
    request: &Value,
) -> Result<Value, String> {
    let started = Instant::now();
    let Session { engine, cache } = state;
    let output = match request["op"].as_str() {
        Some("session") => {
            *engine = session(lake, queries).await?;
            *cache = KpiCache::new();
            return Ok(json!({ "ms": started.elapsed().as_secs_f64() * 1e3 }));
        }
        Some("cache") => {
            *cache = KpiCache::new();
            for id in request["ids"].as_array().ok_or("cache: no ids")? {
                let id = id.as_str().ok_or("cache: ids are text")?;
                cache
                    .series(engine, id, &[])
                    .await
                    .map_err(|e| format!("{id}: {e}"))?;
            }
            return Ok(json!({ "ms": started.elapsed().as_secs_f64() * 1e3 }));
        }
        Some("tick") => {
            let today = request["today"]
                .as_str()
                .ok_or("tick: no today")?
                .parse()
                .map_err(|e| format!("today: {e}"))?;
            let report = cache
                .refresh(engine, today)
                .await
                .map_err(|e| e.to_string())?;
            let changed: Vec<&str> = report.changed_tables.iter().map(|t| t.name()).collect();
            let steps: Vec<Value> = report
                .steps
                .iter()
                .map(|s| {
                    json!({
                        "what": s.what,
                        "since": s.since.map(|d| d.to_string()),
                        "ms": s.elapsed.as_secs_f64() * 1e3,
                    })
                })
                .collect();
            return Ok(json!({
                "ms": started.elapsed().as_secs_f64() * 1e3,
                "series": report.series,
                "recomputed": report.recomputed,
                "full": report.full,
                "changed_tables": changed,
                "steps": steps,
            }));
        }
        Some("compact") => {
            engine.refresh().await.map_err(|e| e.to_string())?;
            let days = request["days"]
                .as_array()
                .ok_or("compact: no days")?
                .iter()
                .map(|d| {
                    d.as_str()
                        .ok_or("compact: days are text".to_string())?
                        .parse()
                        .map_err(|e| format!("compact: {e}"))
                })
                .collect::<Result<_, String>>()?;
            let mut merged = 0;
            for table in request["tables"].as_array().ok_or("compact: no tables")? {
                let table = table
                    .as_str()
                    .ok_or("compact: tables are text")?
                    .parse()
                    .map_err(|e| format!("compact: {e}"))?;
                merged += engine
                    .compact_days(table, &days)
                    .await
                    .map_err(|e| e.to_string())?;
            }
            return Ok(json!({
                "ms": started.elapsed().as_secs_f64() * 1e3,
                "merged": merged,
            }));
        }
        Some("cached") => {
            let id = request["id"].as_str().ok_or("cached: no id")?;
            cache
                .series(engine, id, &[])
                .await
                .map_err(|e| e.to_string())?
                .clone()
        }
        Some("memory") => {
            return Ok(json!({ "peak_rss": bright_benches::memory_bytes("VmHWM:") }));
        }
        Some("sql") => {
            let sql = request["sql"].as_str().ok_or("sql: no statement")?;
            engine.sql(sql).await.map_err(|e| e.to_string())?
        }
        Some("kpi") => {
            let id = request["id"].as_str().ok_or("kpi: no id")?;
            let since = match request["since"].as_str() {
                Some(day) => Some(day.parse().map_err(|e| format!("since: {e}"))?),
                None => None,
            };
            let by: Vec<String> = request["by"]
                .as_array()
                .map(|b| {
                    b.iter()
                        .filter_map(|c| c.as_str().map(str::to_string))
                        .collect()
                })
                .unwrap_or_default();
            engine
                .kpi_series(id, since, None, &by)
                .await
                .map_err(|e| e.to_string())?
        }
        other => return Err(format!("unknown op {other:?}")),
    };
    let ms = started.elapsed().as_secs_f64() * 1e3;
    let mut answer = rows(&output)?;
    answer["ms"] = json!(ms);
    Ok(answer)
}

fn main() {
    bright_engine::configure_allocator();
    let mut args = std::env::args().skip(1);
    let (Some(location), Some(queries)) = (args.next(), args.next()) else {
        eprintln!("usage: bright-compare LAKE_DIR QUERIES_DIR (benches/compare.sh runs it)");
        std::process::exit(2);
    };
    let queries = PathBuf::from(queries);
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("bright-compare: cannot start the runtime: {e}");
            std::process::exit(1);
        }
    };
    let code = runtime.block_on(async {
        let lake = match Lake::open(&location) {
            Ok(lake) => lake,
            Err(e) => {
                eprintln!("bright-compare: {location}: {e}");
                return 1;
            }
        };
        let mut state = match session(&lake, &queries).await {
            Ok(engine) => Session {
                engine,
                cache: KpiCache::new(),
            },
            Err(e) => {
                eprintln!("bright-compare: {location}: {e}");
                return 1;
            }
        };
        let stdout = std::io::stdout();
        for line in std::io::stdin().lock().lines() {
            let Ok(line) = line else { break };
            if line.trim().is_empty() {
                continue;
            }
            let reply = match serde_json::from_str::<Value>(&line) {
                Ok(request) => answer(&mut state, &lake, &queries, &request)
                    .await
                    .unwrap_or_else(|e| json!({ "error": e })),
                Err(e) => json!({ "error": format!("not JSON: {e}") }),
            };
            let mut out = stdout.lock();
            if writeln!(out, "{reply}").and_then(|()| out.flush()).is_err() {
                break;
            }
        }
        0
    });
    std::process::exit(code);
}
