//! `bright demo`: a simulated hospital in a local lake, served live.
//!
//! The first run simulates `--days` of history, the rest of today and tomorrow in one run, so
//! they agree: what the hospital's systems sent before the start goes straight into the lake;
//! what they send after it is saved (`<lake>/_demo/replay.ndjson`) and replayed through the
//! running service at its time: ADT over MLLP to the listener, ED attendances and theatre
//! milestones posted over HTTP to `POST /api/ingest/{feed}` with a token made for the run.
//! `--speed N` runs the replay and the clock the pages and boards read N times faster from
//! the start, so the trackboard and the wall move through the day in front of the viewer
//! (ingest still checks times against the wall clock: ADT more than an hour ahead of it is
//! flagged as future-dated).
//!
//! A later run replays what is left: deliveries whose time has passed go in at once (those
//! taken before are recognised and stored once), the rest at their time.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, Result};
use bright_engine::schema::Table;
use bright_sim::lake_sink::{generate_into_lake_until, simulation_key};
use bright_sim::replay::{Delivery, Timed};
use bright_sim::{Changes, SimConfig};
use clap::Args;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::serve::{ServiceOptions, start};
use crate::{LakeArg, kpi, open_lake, print_summary, progress_bar, stop_signal};

#[derive(Debug, Args)]
pub struct DemoArgs {
    #[command(flatten)]
    lake: LakeArg,
    /// Port for the web service on 127.0.0.1.
    #[arg(long, default_value_t = 8080)]
    port: u16,
    /// Port for the Postgres wire door (psql, BI tools) on 127.0.0.1.
    #[arg(long, default_value_t = 5433)]
    pg_port: u16,
    /// Port for the Arrow Flight SQL door (ADBC) on 127.0.0.1.
    #[arg(long, default_value_t = 8815)]
    flight_port: u16,
    /// Days of history to simulate when the lake is empty.
    #[arg(long, default_value_t = 730)]
    days: u32,
    /// Seed of the simulated hospital.
    #[arg(long, default_value_t = 42)]
    seed: u64,
    /// How many times faster than the wall clock the day is replayed (and the boards' clock
    /// runs); less than 1 replays at the wall clock's pace.
    #[arg(long, default_value_t = 1.0)]
    speed: f64,
}

/// The demo's own folder beside the tables: the replay, the write-ahead log, landing folders.
fn demo_folder(location: &str) -> Result<PathBuf> {
    let path = match location.split_once("://") {
        None => PathBuf::from(location),
        Some(("file", path)) => PathBuf::from(path),
        Some(_) => anyhow::bail!("the demo runs on a local folder, not {location}"),
    };
    Ok(path.join("_demo"))
}

pub async fn demo(args: DemoArgs) -> Result<()> {
    let location = args.lake.lake.clone();
    let folder = demo_folder(&location)?;
    let replay_file = folder.join("replay.ndjson");
    // The first simulated day, kept beside the lake: charts start there on every run.
    let history_file = folder.join("history_from");
    let lake = open_lake(&location)?;
    if !lake.has_table(Table::AdtEvents).await? {
        println!(
            "Creating a demo lake at {} with {} days of a simulated hospital…",
            lake.root(),
            args.days
        );
        // History, today and tomorrow in one run: the replay continues the history exactly.
        let today = chrono::Utc::now().date_naive();
        let config = SimConfig::new(args.seed, args.days + 2, today + chrono::Duration::days(2));
        let changes = Changes::planted(&config);
        let bar = progress_bar(config.days);
        let progress = bar.clone();
        let cutoff = chrono::Utc::now().timestamp_micros();
        let (summary, future) = generate_into_lake_until(
            config.clone(),
            simulation_key(args.seed),
            &lake,
            Box::new(move |d| progress.set_position(u64::from(d))),
            cutoff,
        )
        .await?;
        bar.finish_and_clear();
        print_summary(&config, &changes, &summary);
        bright_sim::replay::save(&future, &replay_file)?;
        std::fs::write(&history_file, config.first_day().to_string())
            .with_context(|| format!("cannot write {}", history_file.display()))?;
    }
    let mut settings = crate::config::Config::default();
    settings.dashboards.history_from = match std::fs::read_to_string(&history_file) {
        Ok(text) => Some(
            text.trim()
                .parse()
                .with_context(|| format!("{} does not hold a date", history_file.display()))?,
        ),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
        Err(e) => return Err(e).with_context(|| format!("cannot read {}", history_file.display())),
    };
    let replay = if replay_file.exists() {
        bright_sim::replay::load(&replay_file)?
    } else {
        Vec::new()
    };

    // A token for this run only: the replay posts with it, and it is printed for curl.
    let token = crate::config::new_token()?;
    let client = bright_dashboards::auth::ClientConfig {
        name: "demo".into(),
        token_sha256: bright_dashboards::auth::token_sha256(&token),
        scopes: vec!["read".into(), "ingest:*".into(), "sql".into()],
        expires: None,
    };
    // A person to sign in as: the demo user, with a fresh password each run (printed below).
    let users_db = folder.join("users.sqlite3");
    let password = demo_user(&users_db)?;
    let stopping = stop_signal();
    // The replay and the boards share one clock: at `--speed N` both run N times faster from
    // here, so a milestone sent ahead of the wall clock is on the boards as it arrives.
    let clock = bright_dashboards::clock::Clock::fast(chrono::Utc::now(), args.speed);
    let running = start(ServiceOptions {
        lake: args.lake.clone(),
        catalogue: kpi::CatalogueArgs::default(),
        wal: folder.join("wal"),
        accept_wal_loss: false,
        quarantine: folder.join("quarantine"),
        users_db,
        alerts_db: folder.join("alerts.sqlite3"),
        reports: folder.join("reports"),
        mllp_addr: SocketAddr::from(([127, 0, 0, 1], 0)),
        mllp_tls: None,
        http_addr: SocketAddr::from(([127, 0, 0, 1], args.port)),
        pg_addr: SocketAddr::from(([127, 0, 0, 1], args.pg_port)),
        pg_tls: None,
        flight_addr: SocketAddr::from(([127, 0, 0, 1], args.flight_port)),
        flush_every: Duration::from_secs(10),
        flush_rows: 100_000,
        max_buffered_rows: 1_000_000,
        landing: folder.join("landing"),
        landing_poll: Duration::from_secs(2),
        org: None,
        key: simulation_key(args.seed),
        settings,
        extra_clients: vec![client],
        clock,
    })
    .await?;
    // The pages' first view would otherwise wait for every KPI over two years of history:
    // compute them now, so the address printed below opens at once.
    println!("Computing the KPIs for the pages…");
    let started = std::time::Instant::now();
    running
        .kpis
        .warm()
        .await
        .context("computing the KPIs for the pages")?;
    println!("Computed in {:.1} s.", started.elapsed().as_secs_f64());
    let kpis = running
        .sink
        .engine()
        .kpi_catalogue()
        .map_or(0, |c| c.kpis.len());
    let bound = running.http_addr;
    println!();
    println!("bright is running.");
    println!("  Open:    http://{bound}/  (the Integrated Performance Report is at /ipr)");
    println!("  Sign in: {DEMO_USER} / {password}");
    println!("  Health:  http://{bound}/health");
    println!(
        "  Lake:    {} (Delta Lake tables: DuckDB, Polars and Python deltalake read them)",
        running.lake.root()
    );
    // The binary is usually not on PATH yet (it sits in the build folder), so show its path.
    let exe = std::env::current_exe()
        .map(|p| p.display().to_string())
        .unwrap_or_else(|_| "bright".to_string());
    println!(
        "  Query:   {exe} sql --lake {location} \"SELECT ward, count(*) AS admissions FROM adt_events WHERE event_type = 'A01' GROUP BY ward ORDER BY 2 DESC\""
    );
    println!(
        "  KPIs:    {kpis} planned; {exe} kpi list, then e.g. {exe} kpi run bed_occupancy_ga --lake {location} --by site"
    );
    println!("  Token:   {token}");
    println!(
        "  SQL:     PGPASSWORD={token} psql \"host={} port={} user=demo dbname=bright\"",
        running.pg_addr.ip(),
        running.pg_addr.port()
    );
    println!(
        "           or ADBC Flight SQL: grpc://{} with the same token as password",
        running.flight_addr
    );
    println!("  Feeds:   curl -H \"Authorization: Bearer $TOKEN\" http://{bound}/api/feeds");
    let now = clock.now().timestamp_micros();
    let due = replay.iter().filter(|t| t.at_micros <= now).count();
    println!(
        "  Replay:  {} deliveries ({due} already due) over MLLP {} and the ingest API, at {}x (the boards' clock too)",
        replay.len(),
        running.mllp_addr,
        clock.speed()
    );
    println!("Press Ctrl-C to stop.");
    let replayer = tokio::spawn(replay_deliveries(
        replay,
        running.mllp_addr,
        running.http_addr,
        token,
        clock,
        running.stopped.clone(),
    ));
    let result = running.run_until(stopping).await;
    replayer.abort();
    result
}

/// The demo's sign-in name.
const DEMO_USER: &str = "demo";

/// Makes the demo user (a manager) or gives it a new password; returns the password.
fn demo_user(db: &std::path::Path) -> Result<String> {
    use bright_dashboards::users::{Role, UserStore, new_password};
    if let Some(parent) = db.parent() {
        std::fs::create_dir_all(parent)
            .with_context(|| format!("cannot create {}", parent.display()))?;
    }
    let store = UserStore::open(db)
        .with_context(|| format!("cannot open the user store {}", db.display()))?;
    let password = new_password().context("cannot make a password")?;
    if store.list()?.iter().any(|u| u.name == DEMO_USER) {
        store.set_password(DEMO_USER, &password)?;
    } else {
        store.add(DEMO_USER, Role::Manager, &password)?;
    }
    Ok(password)
}

/// Sends each delivery when `clock` (the boards' clock) reaches its time; ones already due go
/// at once.
async fn replay_deliveries(
    deliveries: Vec<Timed>,
    mllp: SocketAddr,
    http: SocketAddr,
    token: String,
    clock: bright_dashboards::clock::Clock,
    mut stopped: tokio::sync::watch::Receiver<bool>,
) {
    let mut connection = None;
    let client = hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
        .build_http::<axum::body::Body>();
    for timed in deliveries {
        let ahead = timed.at_micros - clock.now().timestamp_micros();
        if ahead > 0 {
            let wait = Duration::from_micros((ahead as f64 / clock.speed()) as u64);
            tokio::select! {
                () = tokio::time::sleep(wait) => {}
                _ = stopped.wait_for(|stop| *stop) => return,
            }
        }
        if *stopped.borrow() {
            return;
        }
        let sent = match timed.delivery {
            Delivery::Hl7(message) => send_hl7(&mut connection, mllp, &message).await,
            Delivery::Post { feed, record } => post(&client, http, &token, &feed, &record).await,
        };
        if let Err(e) = sent {
            tracing::warn!(error = %e, "Demo replay: a delivery was not taken.");
        }
    }
    println!("Replay: every delivery sent.");
}

/// One HL7 message over MLLP, on a connection kept open between messages.
async fn send_hl7(
    connection: &mut Option<tokio::net::TcpStream>,
    address: SocketAddr,
    message: &str,
) -> Result<()> {
    if connection.is_none() {
        *connection = Some(tokio::net::TcpStream::connect(address).await?);
    }
    let socket = connection.as_mut().context("connected above")?;
    let result: Result<String> = async {
        socket
            .write_all(&bright_ingest::mllp::frame(message))
            .await?;
        let mut answer = Vec::new();
        let mut buf = [0u8; 1024];
        while !answer.ends_with(&[0x1C, 0x0D]) {
            let n = socket.read(&mut buf).await?;
            anyhow::ensure!(n > 0, "the listener closed the connection");
            answer.extend_from_slice(&buf[..n]);
        }
        Ok(String::from_utf8_lossy(&answer).into_owned())
    }
    .await;
    match result {
        Ok(answer) if answer.contains("MSA|AA|") => Ok(()),
        Ok(answer) => anyhow::bail!("ADT not accepted: {}", answer.trim()),
        Err(e) => {
            *connection = None;
            Err(e)
        }
    }
}

/// One record posted to the ingest API, on the client's kept-alive connections.
async fn post(
    client: &hyper_util::client::legacy::Client<
        hyper_util::client::legacy::connect::HttpConnector,
        axum::body::Body,
    >,
    http: SocketAddr,
    token: &str,
    feed: &str,
    record: &serde_json::Value,
) -> Result<()> {
    let request = axum::http::Request::post(format!("http://{http}/api/ingest/{feed}"))
        .header("authorization", format!("Bearer {token}"))
        .header("content-type", "application/x-ndjson")
        .body(axum::body::Body::from(record.to_string()))?;
    let response = client.request(request).await?;
    anyhow::ensure!(
        response.status().is_success(),
        "{feed} record answered {}",
        response.status()
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    #[test]
    fn the_demo_folder_sits_in_a_local_lake() {
        assert_eq!(
            demo_folder("./lake").unwrap(),
            Path::new("./lake").join("_demo")
        );
        assert_eq!(
            demo_folder("file:///tmp/lake").unwrap(),
            Path::new("/tmp/lake/_demo")
        );
        assert!(demo_folder("s3://bucket/lake").is_err());
    }
}
