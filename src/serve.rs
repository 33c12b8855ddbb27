//! `bright serve`: ingest, the query layer and the web service in one process.
//!
//! Start-up order matters for durability: the lake's tables exist, every KPI plans, the
//! write-ahead log is replayed into the buffer, and only then do the listeners accept. On
//! Ctrl-C or SIGTERM the listeners stop, the buffer is flushed to the lake, and the process
//! exits 0; after a SIGKILL the next start replays the log.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};
use bright_dashboards::auth::Clients;
use bright_engine::pseudonym::PseudoKey;
use bright_engine::query::{QueryConfig, QueryEngine};
use bright_ingest::file_drop::{FileDrop, FileFormat, FileLoader};
use bright_ingest::health::FeedHealth;
use bright_ingest::hl7::{AckCode, AdtConfig};
use bright_ingest::http::HttpSource;
use bright_ingest::mllp::{Listener, MllpConfig, tls_acceptor};
use bright_ingest::quarantine::Quarantine;
use bright_ingest::sink::Sink;
use bright_ingest::transforms::Feed;
use clap::Args;

use crate::{LakeArg, kpi, open_lake, stop_signal};

/// What `bright serve` and `bright ingest` both start from.
#[derive(Debug, Args)]
pub struct PipelineArgs {
    #[command(flatten)]
    lake: LakeArg,
    #[command(flatten)]
    catalogue: kpi::CatalogueArgs,
    /// Folder of the write-ahead log (local disk: acknowledged rows are fsynced there).
    #[arg(long, env = "BRIGHT_WAL", default_value = "./wal")]
    wal: PathBuf,
    /// Start even though the write-ahead log lost acknowledged records to damage (not a torn
    /// last write): what is intact is replayed, and the loss is recorded in `dq_issues`.
    /// Without it such a log refuses the start, naming what would be lost.
    #[arg(long)]
    accept_wal_loss: bool,
    /// Pseudonymisation key (16+ bytes); NHS numbers and local ids become keyed hashes.
    /// Without it, the file named by `[ingest] pseudo_key_file` in the configuration.
    #[arg(long, env = "BRIGHT_PSEUDO_KEY", hide_env_values = true)]
    pseudo_key: Option<String>,
    /// The trust (ODS code) of dropped or loaded records that do not name one.
    #[arg(long)]
    org: Option<String>,
    #[command(flatten)]
    config: crate::config::ConfigArg,
}

impl PipelineArgs {
    /// The key from the environment (or `--pseudo-key`), else from the configuration's key
    /// file; there is no default, so real identifiers are never hashed with a guessable key.
    fn key(&self, config: &crate::config::Config) -> Result<PseudoKey> {
        if let Some(key) = &self.pseudo_key {
            return PseudoKey::new(key.as_bytes()).context("BRIGHT_PSEUDO_KEY");
        }
        let Some(path) = &config.ingest.pseudo_key_file else {
            anyhow::bail!(
                "no pseudonymisation key: set BRIGHT_PSEUDO_KEY, or `pseudo_key_file` under \
                 [ingest] in the configuration file"
            );
        };
        let text = std::fs::read(path)
            .with_context(|| format!("cannot read the pseudonymisation key {}", path.display()))?;
        let key = text.strip_suffix(b"\n").unwrap_or(&text);
        let key = key.strip_suffix(b"\r").unwrap_or(key);
        PseudoKey::new(key.to_vec())
            .with_context(|| format!("the pseudonymisation key in {}", path.display()))
    }
}

#[derive(Debug, Args)]
pub struct ServeArgs {
    #[command(flatten)]
    pipeline: PipelineArgs,
    /// Address of the HL7 MLLP listener.
    #[arg(long, default_value = "127.0.0.1:2575")]
    mllp_addr: SocketAddr,
    /// PEM certificate chain: MLLP connections must then use TLS.
    #[arg(long, requires = "mllp_tls_key")]
    mllp_tls_cert: Option<PathBuf>,
    /// PEM private key of the MLLP certificate.
    #[arg(long, requires = "mllp_tls_cert")]
    mllp_tls_key: Option<PathBuf>,
    /// Address of the web service.
    #[arg(long, default_value = "127.0.0.1:8080")]
    http_addr: SocketAddr,
    /// Address of the Postgres wire door for analysts' tools (psql, psycopg, BI tools).
    #[arg(long, default_value = "127.0.0.1:5433")]
    pg_addr: SocketAddr,
    /// Address of the Arrow Flight SQL door for analysts' tools (ADBC, Flight SQL clients).
    #[arg(long, default_value = "127.0.0.1:8815")]
    flight_addr: SocketAddr,
    /// PEM certificate chain: the Postgres door then offers TLS (psql's `sslmode=require`).
    #[arg(long, requires = "pg_tls_key")]
    pg_tls_cert: Option<PathBuf>,
    /// PEM private key of the Postgres door's certificate.
    #[arg(long, requires = "pg_tls_cert")]
    pg_tls_key: Option<PathBuf>,
    /// Seconds between flushes of acknowledged rows to the lake.
    #[arg(long, default_value_t = 10)]
    flush_secs: u64,
    /// Flush sooner once this many rows wait in memory.
    #[arg(long, default_value_t = 100_000)]
    flush_rows: usize,
    /// At this many rows waiting for the lake, sources push back (HTTP 503, MLLP stops
    /// reading) until a flush drains them: the bound on memory when the lake is slow.
    #[arg(long, default_value_t = 1_000_000)]
    max_buffered_rows: usize,
    /// Landing folder: extract files left in `<landing>/<feed>/` are loaded, then moved to
    /// `processed/` or `rejected/` (with a `.reason.txt`) beside them.
    #[arg(long, env = "BRIGHT_LANDING", default_value = "./landing")]
    landing: PathBuf,
    /// Quarantine folder: every refused HL7 message is kept there whole, with its reason, for
    /// the owning team to correct and resend. It holds identifiers: keep it private.
    #[arg(long, env = "BRIGHT_QUARANTINE", default_value = "./quarantine")]
    quarantine: PathBuf,
    /// The people who sign in to the pages (`bright users add`), and their sessions.
    #[arg(
        long,
        env = "BRIGHT_USERS_DB",
        default_value = "./bright-users.sqlite3"
    )]
    users_db: PathBuf,
    /// Alerts raised and their webhook deliveries still to make (the durable outbox).
    #[arg(
        long,
        env = "BRIGHT_ALERTS_DB",
        default_value = "./bright-alerts.sqlite3"
    )]
    alerts_db: PathBuf,
    /// Reports folder: each morning's theatre performance report of the day before is written
    /// there (HTML and CSV).
    #[arg(long, env = "BRIGHT_REPORTS", default_value = "./reports")]
    reports: PathBuf,
    /// Milliseconds between scans of the landing folders.
    #[arg(long, default_value_t = 2_000)]
    landing_poll_ms: u64,
}

/// The lake's tables, every KPI planned, the log replayed: what serve and ingest start from.
async fn pipeline(
    lake: &LakeArg,
    catalogue: &kpi::CatalogueArgs,
    wal: &std::path::Path,
    accept_wal_loss: bool,
    analyst_memory_mib: usize,
) -> Result<(bright_engine::lake::Lake, Arc<Sink>, QueryConfig)> {
    let lake = open_lake(&lake.lake)?;
    lake.ensure_tables()
        .await
        .with_context(|| format!("cannot create the tables of {}", lake.root()))?;
    // Queries (KPI refreshes, board reads, the report) run on a runtime of their own, one
    // thread a core, so the threads answering HTTP and MLLP never wait behind one.
    let threads = std::thread::available_parallelism().map_or(2, usize::from);
    let executor = bright_engine::query::Executor::new("bright-query", threads)
        .context("cannot start the query runtime")?;
    let config = QueryConfig {
        executor: Some(executor),
        analyst_memory_limit: analyst_memory_mib.max(1) << 20,
        ..QueryConfig::default()
    };
    let mut engine = QueryEngine::open(&lake, &config).await?;
    catalogue.register(&mut engine).await?;
    let (sink, replayed) = Sink::open_with(Arc::new(engine), wal, accept_wal_loss)
        .await
        .with_context(|| format!("cannot open the write-ahead log in {}", wal.display()))?;
    println!(
        "Write-ahead log {}: {} records replayed, {} rows buffered, {} already in the lake.",
        wal.display(),
        replayed.records,
        replayed.rows,
        replayed.already_in_lake
    );
    if replayed.losses > 0 {
        println!(
            "Write-ahead log {}: damage accepted in {} segment(s); the loss is in dq_issues.",
            wal.display(),
            replayed.losses
        );
    }
    Ok((lake, Arc::new(sink), config))
}

/// What a running service is started with (by `bright serve`, and by `bright demo`).
pub(crate) struct ServiceOptions {
    pub lake: LakeArg,
    pub catalogue: kpi::CatalogueArgs,
    pub wal: PathBuf,
    pub accept_wal_loss: bool,
    pub mllp_addr: SocketAddr,
    pub mllp_tls: Option<bright_ingest::mllp::MllpTls>,
    pub http_addr: SocketAddr,
    /// The Postgres wire door's address, and its TLS when set up.
    pub pg_addr: SocketAddr,
    pub pg_tls: Option<bright_ingest::mllp::MllpTls>,
    /// The Arrow Flight SQL door's address.
    pub flight_addr: SocketAddr,
    pub flush_every: Duration,
    pub flush_rows: usize,
    pub max_buffered_rows: usize,
    pub landing: PathBuf,
    pub landing_poll: Duration,
    pub quarantine: PathBuf,
    pub users_db: PathBuf,
    pub alerts_db: PathBuf,
    pub reports: PathBuf,
    pub org: Option<String>,
    pub key: PseudoKey,
    pub settings: crate::config::Config,
    /// Clients allowed in besides those of the settings (the demo's own).
    pub extra_clients: Vec<bright_dashboards::auth::ClientConfig>,
    /// The time the pages and boards show (the wall clock but in a fast demo).
    pub clock: bright_dashboards::clock::Clock,
}

/// A started service: its addresses, its state, and what stopping it needs.
pub(crate) struct Running {
    pub mllp_addr: SocketAddr,
    pub http_addr: SocketAddr,
    pub pg_addr: SocketAddr,
    pub flight_addr: SocketAddr,
    pub sink: Arc<Sink>,
    /// The KPI series the pages read.
    pub kpis: Arc<bright_dashboards::kpis::KpiService>,
    pub lake: bright_engine::lake::Lake,
    /// Turns true to stop the listeners.
    pub stopped: tokio::sync::watch::Receiver<bool>,
    stop: tokio::sync::watch::Sender<bool>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
    web: tokio::task::JoinHandle<std::io::Result<()>>,
    wal: PathBuf,
}

/// Opens the pipeline and starts the MLLP listener, the flusher, the landing folders and the
/// web service, printing their addresses (scripts and tests read these lines).
pub(crate) async fn start(options: ServiceOptions) -> Result<Running> {
    let mut client_configs = options.settings.dashboards.clients.clone();
    client_configs.extend(options.extra_clients.iter().cloned());
    if let Some(admin) = admin_token_client()? {
        client_configs.push(admin);
    }
    let clients = Clients::new(&client_configs)?;
    let health = Arc::new(FeedHealth::new(
        &options.settings.ingest,
        chrono::Utc::now(),
    )?);
    if clients.is_empty() {
        println!(
            "No API clients configured: every endpoint but /health answers 401. Create one with `bright token new`."
        );
    }
    let window = options
        .settings
        .ingest
        .window()
        .map_err(anyhow::Error::msg)?;
    let quarantine = Arc::new(Quarantine::open(&options.quarantine).with_context(|| {
        format!(
            "cannot create the quarantine folder {}",
            options.quarantine.display()
        )
    })?);
    let (lake, sink, config) = pipeline(
        &options.lake,
        &options.catalogue,
        &options.wal,
        options.accept_wal_loss,
        options.settings.sql.memory_limit_mib,
    )
    .await?;
    // The dashboards are checked before anything listens: a mistake in a trust's own file
    // stops the start with its file and line.
    let dashboards = bright_dashboards::spec::Dashboards::load(
        sink.engine()
            .kpi_catalogue()
            .context("the KPI catalogue is not registered")?,
        options.settings.dashboards.folder.as_deref(),
    )?;
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let adt = AdtConfig {
        time_zone: config.time_zone,
        key: options.key.clone(),
        window,
    };
    let tls = options.mllp_tls.is_some();
    let mllp_config = MllpConfig {
        tls: options.mllp_tls,
        ..MllpConfig::default()
    };
    let mllp = tokio::net::TcpListener::bind(options.mllp_addr)
        .await
        .with_context(|| format!("cannot listen on {}", options.mllp_addr))?;
    let http = tokio::net::TcpListener::bind(options.http_addr)
        .await
        .with_context(|| format!("cannot listen on {}", options.http_addr))?;
    let pg = std::net::TcpListener::bind(options.pg_addr)
        .with_context(|| format!("cannot listen on {}", options.pg_addr))?;
    let flight = std::net::TcpListener::bind(options.flight_addr)
        .with_context(|| format!("cannot listen on {}", options.flight_addr))?;
    let (mllp_addr, http_addr, pg_addr, flight_addr) = (
        mllp.local_addr()?,
        http.local_addr()?,
        pg.local_addr()?,
        flight.local_addr()?,
    );
    println!(
        "MLLP{}: listening on {mllp_addr}",
        if tls { " over TLS" } else { "" }
    );
    println!("HTTP: listening on http://{http_addr}");
    println!(
        "Postgres: listening on {pg_addr}{}",
        if options.pg_tls.is_some() {
            " (TLS offered)"
        } else {
            ""
        }
    );
    println!("Flight SQL: listening on grpc://{flight_addr}");
    if !flight_addr.ip().is_loopback() {
        println!(
            "Flight SQL: clients send their passwords and tokens unencrypted; put a TLS proxy in \
             front of {flight_addr} for any client beyond this machine."
        );
    }
    println!("Quarantine: {}/<feed>/", options.quarantine.display());
    let listener = Listener::new(sink.clone(), adt, mllp_config)
        .with_health(health.clone())
        .with_quarantine(quarantine)
        .check_wards()
        .await?;
    let mut tasks = vec![tokio::spawn(listener.run(mllp, stopped.clone()))];

    sink.set_flush_rows(options.flush_rows.max(1));
    sink.set_max_buffered_rows(options.max_buffered_rows.max(options.flush_rows).max(1));
    tasks.push({
        let sink = sink.clone();
        let mut stopped = stopped.clone();
        let every = options.flush_every.max(Duration::from_millis(100));
        tokio::spawn(async move {
            loop {
                tokio::select! {
                    () = tokio::time::sleep(every) => {}
                    () = sink.full() => {}
                    _ = stopped.wait_for(|stop| *stop) => return,
                }
                if let Err(e) = sink.flush().await {
                    // The rows stay in the log and the buffer; the next flush retries.
                    tracing::error!(error = %e, "Flush to the lake failed.");
                }
            }
        })
    });

    let loader = FileLoader::new(
        sink.clone(),
        config.time_zone,
        options.key.clone(),
        options.org.clone(),
    )
    .with_window(window)
    .with_health(health.clone());
    let landing = FileDrop::new(options.landing.clone(), loader, options.landing_poll)
        .with_context(|| {
            format!(
                "cannot create the landing folders in {}",
                options.landing.display()
            )
        })?;
    println!("Landing: watching {}/<feed>/", options.landing.display());
    tasks.push(tokio::spawn(landing.run(stopped.clone())));
    let http_source = HttpSource::new(sink.clone(), config.time_zone, options.key)
        .with_window(window)
        .with_health(health);
    let engine = sink.engine().clone();
    let kpis = Arc::new(
        bright_dashboards::kpis::KpiService::new(engine, config.time_zone)
            .with_history_from(options.settings.dashboards.history_from)
            .with_clock(options.clock),
    );
    let refresh = Duration::from_secs(options.settings.dashboards.refresh_secs.max(1));
    let pages_task = kpis.clone().spawn(refresh, stopped.clone());
    let webhooks = bright_dashboards::alerts::Webhook::from_config(&options.settings.alerts)
        .context("[[alerts.webhooks]]")?;
    let alerts = Arc::new(
        bright_dashboards::alerts::Alerts::open(&options.alerts_db, webhooks)
            .with_context(|| {
                format!(
                    "cannot open the alert store {}",
                    options.alerts_db.display()
                )
            })?
            .with_rules(options.settings.alerts.rules()),
    );
    let users = bright_dashboards::users::UserStore::open(&options.users_db)
        .with_context(|| format!("cannot open the user store {}", options.users_db.display()))?;
    let state = bright_dashboards::AppState::new(
        lake.root().as_str(),
        clients,
        options.settings.dashboards.max_body_bytes,
        Some(Arc::new(http_source)),
    )
    .with_users(Arc::new(users), Default::default())
    .with_pages(kpis.clone(), Arc::new(dashboards))
    .with_alerts(alerts.clone())
    .with_sql(options.settings.sql.clone())
    .with_audit();
    tasks.push(alerts.clone().spawn_delivery(stopped.clone()));
    tasks.push(
        alerts
            .clone()
            .spawn_lake_copy(kpis.engine().clone(), stopped.clone()),
    );
    // The live boards follow ingest from the start (the cleaning team is told a room is ready
    // whether or not anyone has the trackboard open).
    state.start_live(stopped.clone());
    println!(
        "Reports: {}/ (theatre report each morning)",
        options.reports.display()
    );
    tasks.push(
        bright_dashboards::routes::pages::theatre_report::spawn_daily(
            state.clone(),
            bright_dashboards::routes::pages::theatre_report::Daily {
                folder: options.reports.clone(),
                at: options.settings.dashboards.theatre_report_at,
            },
            stopped.clone(),
        ),
    );
    tasks.push(pages_task);
    let pg_door = bright_dashboards::pg::serve(pg, state.clone(), options.pg_tls.map(|t| t.0))?;
    tasks.push(until_stopped(pg_door, "Postgres", stopped.clone()));
    let flight_door = bright_dashboards::flight::serve(flight, state.clone())?;
    tasks.push(until_stopped(flight_door, "Flight SQL", stopped.clone()));
    let mut http_stopped = stopped.clone();
    let web = tokio::spawn(bright_dashboards::serve(http, state, async move {
        let _ = http_stopped.wait_for(|stop| *stop).await;
    }));
    Ok(Running {
        mllp_addr,
        http_addr,
        pg_addr,
        flight_addr,
        sink,
        kpis,
        lake,
        stopped,
        stop,
        tasks,
        web,
        wal: options.wal,
    })
}

/// Runs a SQL door until the service stops; a door that fails says so in the log.
fn until_stopped(
    door: impl Future<Output = std::io::Result<()>> + Send + 'static,
    name: &'static str,
    mut stopped: tokio::sync::watch::Receiver<bool>,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        tokio::select! {
            served = door => {
                if let Err(e) = served {
                    tracing::error!(error = %e, door = name, "A SQL door stopped.");
                }
            }
            _ = stopped.wait_for(|stop| *stop) => {}
        }
    })
}

/// `BRIGHT_ADMIN_TOKEN`, when set: a client with every scope, for automation and tests,
/// without editing the configuration.
fn admin_token_client() -> Result<Option<bright_dashboards::auth::ClientConfig>> {
    match std::env::var("BRIGHT_ADMIN_TOKEN") {
        Ok(token) if token.trim().len() >= 16 => Ok(Some(bright_dashboards::auth::ClientConfig {
            name: "admin-token".into(),
            token_sha256: bright_dashboards::auth::token_sha256(token.trim()),
            scopes: vec![
                "read".into(),
                "annotate".into(),
                "sql".into(),
                "ingest:*".into(),
            ],
            expires: None,
        })),
        Ok(token) if token.trim().is_empty() => Ok(None),
        Ok(_) => anyhow::bail!("BRIGHT_ADMIN_TOKEN must be at least 16 characters"),
        Err(_) => Ok(None),
    }
}

impl Running {
    /// Runs until `stopping` resolves, then stops the listeners, flushes everything to the
    /// lake and returns; if the write-ahead log fails first, stops and returns the error.
    pub async fn run_until(self, stopping: impl std::future::Future<Output = ()>) -> Result<()> {
        let log_failed = tokio::select! {
            () = stopping => false,
            () = self.sink.failed() => true,
        };
        if !log_failed {
            println!("Stopping: no new connections; flushing to the lake.");
        }
        let _ = self.stop.send(true);
        for task in self.tasks {
            let _ = task.await;
        }
        if log_failed {
            // Acknowledged rows are in the log up to the failure; a restart replays them.
            // Going on would only answer AR and 500 to every sender.
            let _ = self.web.await;
            anyhow::bail!(
                "the write-ahead log in {} stopped after a failed write; restart to replay it",
                self.wal.display()
            );
        }
        let rows = self.sink.flush().await.context("final flush to the lake")?;
        let _ = self.web.await;
        println!("Flushed {rows} rows. Stopped.");
        Ok(())
    }
}

pub async fn serve(args: ServeArgs) -> Result<()> {
    let settings = args.pipeline.config.load()?;
    let key = args.pipeline.key(&settings)?;
    let mllp_tls = match (&args.mllp_tls_cert, &args.mllp_tls_key) {
        (Some(cert), Some(key)) => Some(tls_acceptor(cert, key)?),
        _ => None,
    };
    let pg_tls = match (&args.pg_tls_cert, &args.pg_tls_key) {
        (Some(cert), Some(key)) => Some(tls_acceptor(cert, key)?),
        _ => None,
    };
    // Handlers first: a stop requested as soon as the addresses are printed still flushes.
    let stopping = stop_signal();
    let running = start(ServiceOptions {
        lake: args.pipeline.lake,
        catalogue: args.pipeline.catalogue,
        wal: args.pipeline.wal,
        accept_wal_loss: args.pipeline.accept_wal_loss,
        mllp_addr: args.mllp_addr,
        mllp_tls,
        http_addr: args.http_addr,
        pg_addr: args.pg_addr,
        pg_tls,
        flight_addr: args.flight_addr,
        flush_every: Duration::from_secs(args.flush_secs.max(1)),
        flush_rows: args.flush_rows,
        max_buffered_rows: args.max_buffered_rows,
        landing: args.landing,
        landing_poll: Duration::from_millis(args.landing_poll_ms.max(10)),
        quarantine: args.quarantine,
        users_db: args.users_db,
        alerts_db: args.alerts_db,
        reports: args.reports,
        org: args.pipeline.org,
        key,
        settings,
        extra_clients: Vec::new(),
        clock: bright_dashboards::clock::Clock::real(),
    })
    .await?;
    running.run_until(stopping).await
}

#[derive(Debug, Args)]
pub struct IngestArgs {
    /// Files, or folders whose files of the feed (recursively) are loaded: `*.hl7` for
    /// `hl7_adt`; for the other feeds, `.csv`, `.ndjson`, `.jsonl`, `.json` or `.parquet`
    /// files whose names start with the feed's name.
    #[arg(required = true)]
    paths: Vec<PathBuf>,
    /// The feed: hl7_adt (HL7 v2 ADT), ed_attendances, theatre_events, theatre_sessions,
    /// workforce_shifts, beds or finance_ledger.
    #[arg(long)]
    feed: String,
    #[command(flatten)]
    pipeline: PipelineArgs,
}

/// `path` itself when it is a file (whatever its name); in a folder, the files `wanted`
/// accepts, so a folder of mixed feed files loads only the one feed.
fn files_under(
    path: &std::path::Path,
    wanted: &dyn Fn(&std::path::Path) -> bool,
    out: &mut Vec<PathBuf>,
) -> Result<()> {
    if path.is_dir() {
        let mut entries: Vec<PathBuf> = std::fs::read_dir(path)
            .with_context(|| format!("cannot read {}", path.display()))?
            .flatten()
            .map(|e| e.path())
            .collect();
        entries.sort();
        for entry in entries {
            if entry.is_dir() {
                files_under(&entry, wanted, out)?;
            } else if wanted(&entry) {
                out.push(entry);
            }
        }
    } else {
        out.push(path.to_path_buf());
    }
    Ok(())
}

/// `bright ingest`: files through the same pipeline as live messages and posts (parse,
/// validate, pseudonymise, deduplicate, log, buffer), then one flush to the lake.
pub async fn ingest(args: IngestArgs) -> Result<()> {
    let settings = args.pipeline.config.load()?;
    let key = args.pipeline.key(&settings)?;
    // The feeds' owners, who are told about refused records, come from the configuration.
    let health = Arc::new(FeedHealth::new(&settings.ingest, chrono::Utc::now())?);
    let window = settings.ingest.window().map_err(anyhow::Error::msg)?;
    let hl7 = args.feed == MllpConfig::default().feed;
    let feed = match Feed::from_name(&args.feed) {
        Some(feed) => Some(feed),
        None if hl7 => None,
        None => anyhow::bail!(
            "unknown feed '{}'; feeds: {}, {}",
            args.feed,
            MllpConfig::default().feed,
            Feed::ALL.map(Feed::name).join(", ")
        ),
    };
    let wanted = |path: &std::path::Path| match feed {
        None => path.extension().is_some_and(|e| e == "hl7"),
        Some(feed) => {
            FileFormat::of(path).is_some()
                && path
                    .file_name()
                    .is_some_and(|n| n.to_string_lossy().starts_with(feed.name()))
        }
    };
    let mut files = Vec::new();
    for path in &args.paths {
        files_under(path, &wanted, &mut files)?;
    }
    let (_, sink, config) = pipeline(
        &args.pipeline.lake,
        &args.pipeline.catalogue,
        &args.pipeline.wal,
        args.pipeline.accept_wal_loss,
        settings.sql.memory_limit_mib,
    )
    .await?;
    let refused = match feed {
        None => {
            let adt = AdtConfig {
                time_zone: config.time_zone,
                key,
                window,
            };
            ingest_hl7(&files, &sink, adt, health).await?
        }
        Some(feed) => {
            let loader = FileLoader::new(
                sink.clone(),
                config.time_zone,
                key,
                args.pipeline.org.clone(),
            )
            .with_window(window)
            .with_health(health);
            let mut refused = 0;
            for file in &files {
                match loader.load(feed, file).await {
                    Ok(loaded) => println!(
                        "{}: {} records, {} stored, {} already held",
                        file.display(),
                        loaded.records,
                        loaded.stored,
                        loaded.duplicates
                    ),
                    Err(e) if e.is_the_files() => {
                        refused += 1;
                        println!("{}: refused, nothing stored: {e}", file.display());
                    }
                    Err(e) => {
                        return Err(anyhow::Error::new(e))
                            .with_context(|| format!("{}", file.display()));
                    }
                }
            }
            refused
        }
    };
    let flushed = sink.flush().await.context("flush to the lake")?;
    println!("Flushed {flushed} rows to the lake.");
    if refused > 0 {
        let what = if hl7 { "messages" } else { "files" };
        anyhow::bail!("{refused} {what} were refused; their reasons are in dq_issues");
    }
    Ok(())
}

/// HL7 files, message by message through the MLLP listener's handler; returns how many
/// messages were refused.
async fn ingest_hl7(
    files: &[PathBuf],
    sink: &Arc<Sink>,
    adt: AdtConfig,
    health: Arc<FeedHealth>,
) -> Result<usize> {
    let listener = Listener::new(sink.clone(), adt, MllpConfig::default())
        .with_health(health)
        .check_wards()
        .await?;
    let stats = listener.stats();
    let mut refused = 0;
    for file in files {
        let bytes =
            std::fs::read(file).with_context(|| format!("cannot read {}", file.display()))?;
        let messages = bright_ingest::hl7::split_messages(&bright_ingest::mllp::decode(bytes));
        let (mut accepted, mut errors, mut rejected) = (0, 0, 0);
        for message in &messages {
            match listener.handle(message).await.0 {
                AckCode::Accept => accepted += 1,
                AckCode::Error => errors += 1,
                AckCode::Reject => rejected += 1,
            }
        }
        refused += errors + rejected;
        println!(
            "{}: {} messages, {accepted} accepted, {errors} with errors (AE), {rejected} rejected (AR)",
            file.display(),
            messages.len()
        );
    }
    println!(
        "Stored {} new rows ({} already held).",
        stats.accepted.load(std::sync::atomic::Ordering::Relaxed),
        stats.duplicates.load(std::sync::atomic::Ordering::Relaxed),
    );
    Ok(refused)
}
