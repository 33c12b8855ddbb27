//! `GET /metrics`: the service's health in Prometheus text format, for the trust's monitoring
//! (scope `read`): per feed the records, deliveries and refusals since start, silence and
//! staleness, rows acknowledged and waiting for the lake; open live-board streams; alerts
//! raised and their webhook deliveries; uptime.

use std::fmt::Write;
use std::sync::Arc;

use axum::extract::State;
use axum::http::StatusCode;
use axum::http::header::CONTENT_TYPE;
use axum::response::{IntoResponse, Response};

use crate::auth::Client;
use crate::{AppState, error_body};

/// One metric family: its help and type lines, then one sample per label set.
fn family(out: &mut String, name: &str, kind: &str, help: &str, samples: &[(String, f64)]) {
    let _ = writeln!(out, "# HELP {name} {help}");
    let _ = writeln!(out, "# TYPE {name} {kind}");
    for (labels, value) in samples {
        let _ = writeln!(out, "{name}{labels} {value}");
    }
}

/// A label value as the text format wants it (backslash, quote and newline escaped).
fn label(name: &str, value: &str) -> String {
    let escaped = value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n");
    format!("{{{name}=\"{escaped}\"}}")
}

pub async fn get(
    State(state): State<AppState>,
    axum::Extension(client): axum::Extension<Arc<Client>>,
) -> Response {
    if !client.may_read() || client.kiosk.is_some() {
        return (
            StatusCode::FORBIDDEN,
            error_body(&format!(
                "client '{}' may not read (scope 'read')",
                client.name
            )),
        )
            .into_response();
    }
    let mut out = String::new();
    let feeds = state.ingest().map(|api| api.feeds()).unwrap_or_default();
    let per_feed = |value: &dyn Fn(&bright_engine::ingest_api::FeedStatus) -> f64| {
        feeds
            .iter()
            .map(|f| (label("feed", &f.feed), value(f)))
            .collect::<Vec<_>>()
    };
    family(
        &mut out,
        "bright_ingest_records_total",
        "counter",
        "Records acknowledged since the service started.",
        &per_feed(&|f| f.records as f64),
    );
    family(
        &mut out,
        "bright_ingest_deliveries_total",
        "counter",
        "Deliveries (messages, requests, files) since the service started.",
        &per_feed(&|f| f.deliveries as f64),
    );
    family(
        &mut out,
        "bright_ingest_refused_total",
        "counter",
        "Deliveries refused since the service started.",
        &per_feed(&|f| f.refused as f64),
    );
    family(
        &mut out,
        "bright_feed_seconds_silent",
        "gauge",
        "Seconds since the feed last delivered (or since the service started).",
        &per_feed(&|f| f.seconds_silent as f64),
    );
    family(
        &mut out,
        "bright_feed_stale",
        "gauge",
        "1 when the feed has been silent longer than it may be.",
        &per_feed(&|f| f64::from(u8::from(f.stale))),
    );
    family(
        &mut out,
        "bright_wal_buffered_rows",
        "gauge",
        "Rows acknowledged (in the write-ahead log) and not yet in the lake.",
        &per_feed(&|f| f.buffered_rows as f64),
    );
    if let Some(pages) = state.pages() {
        family(
            &mut out,
            "bright_live_streams",
            "gauge",
            "Live-board streams open now.",
            &[
                (
                    label("board", "theatres"),
                    pages.theatres.hub.viewers() as f64,
                ),
                (
                    label("board", "command-centre"),
                    pages.command_centre.hub.viewers() as f64,
                ),
            ],
        );
    }
    if let Some(alerts) = state.alerts() {
        match (alerts.raised(), alerts.deliveries()) {
            (Ok(raised), Ok(d)) => {
                family(
                    &mut out,
                    "bright_alerts_raised_total",
                    "counter",
                    "Alerts raised (kept in the alert store).",
                    &[(String::new(), raised as f64)],
                );
                family(
                    &mut out,
                    "bright_alert_deliveries",
                    "gauge",
                    "Webhook deliveries by state.",
                    &[
                        (label("state", "pending"), d.pending as f64),
                        (label("state", "delivered"), d.delivered as f64),
                        (label("state", "failing"), d.failing as f64),
                    ],
                );
            }
            (Err(e), _) | (_, Err(e)) => {
                tracing::error!(error = %e, "Reading the alert store for /metrics failed.")
            }
        }
    }
    family(
        &mut out,
        "bright_uptime_seconds",
        "gauge",
        "Seconds since the service started.",
        &[(String::new(), state.uptime().as_secs_f64())],
    );
    (
        [(CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")],
        out,
    )
        .into_response()
}
