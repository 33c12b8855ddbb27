//! The `bright` command: argument parsing, logging set-up and wiring of the crates.
//!
//! Every command that touches the lake takes `--lake URL` (default `./lake`, or
//! `BRIGHT_LAKE`). Errors end the process with a non-zero status and a one-line cause.

use std::io::Write;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use bright_engine::lake::{DEFAULT_VACUUM_RETENTION, Lake};
use bright_engine::pseudonym::PseudoKey;
use bright_engine::query::OutputFormat;
use bright_engine::schema::Table;
use bright_sim::feeds::FileSink;
use bright_sim::lake_sink::{generate_into_lake, simulation_key};
use bright_sim::{Changes, SimConfig, Simulation, Summary};
use clap::{Args, Parser, Subcommand, ValueEnum};
use indicatif::{ProgressBar, ProgressStyle};

mod config;
mod dashboards;
mod demo;
mod kpi;
mod serve;
mod spc;
mod users;

#[derive(Debug, Parser)]
#[command(
    name = "bright",
    version,
    about = "Real-time operational analytics for hospitals."
)]
struct Cli {
    /// Log format on stderr (levels from RUST_LOG; default: bright's warnings only).
    #[arg(long, global = true, value_enum, default_value = "text")]
    log_format: LogFormat,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum LogFormat {
    Text,
    Json,
}

#[derive(Debug, Args, Clone)]
struct LakeArg {
    /// Lake root: a folder, file:// or s3://bucket/prefix URL.
    #[arg(long, env = "BRIGHT_LAKE", default_value = "./lake")]
    lake: String,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run one read-only SQL query over the lake and print the result.
    Sql {
        /// The query.
        query: String,
        #[command(flatten)]
        lake: LakeArg,
        #[command(flatten)]
        catalogue: kpi::CatalogueArgs,
        /// Output format.
        #[arg(long, value_enum, default_value = "table")]
        format: Format,
    },
    /// Inspect and maintain the lake's tables.
    Lake {
        #[command(subcommand)]
        command: LakeCommand,
    },
    /// Simulate a hospital (or several) into the lake or into feed files.
    Generate(GenerateArgs),
    /// A control chart of a CSV file: Making Data Count XmR by default, or any `--chart` type.
    Spc(spc::SpcArgs),
    /// The KPI catalogue: list, show, run a series, check that every KPI plans.
    Kpi {
        #[command(subcommand)]
        command: kpi::KpiCommand,
    },
    /// Run ingest (HL7 MLLP), the query layer and the web service over a lake.
    Serve(Box<serve::ServeArgs>),
    /// Load feed files through the ingest pipeline into the lake.
    Ingest(serve::IngestArgs),
    /// Validate a configuration file (bright.toml).
    Config {
        #[command(subcommand)]
        command: config::ConfigCommand,
    },
    /// API tokens for clients of the web service.
    Token {
        #[command(subcommand)]
        command: config::TokenCommand,
    },
    /// The people who log in to the pages: add, list, remove, set a password.
    Users {
        #[command(subcommand)]
        command: users::UsersCommand,
    },
    /// Read-only links for wall screens: make, list, revoke.
    Kiosk {
        #[command(subcommand)]
        command: users::KioskCommand,
    },
    /// The dashboards the pages show: list them, check their files.
    Dashboards {
        #[command(subcommand)]
        command: dashboards::DashboardsCommand,
    },
    /// Create a demo lake if needed and serve bright on localhost.
    Demo(demo::DemoArgs),
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum Format {
    Table,
    Csv,
    Json,
}

#[derive(Debug, Subcommand)]
enum LakeCommand {
    /// List tables with their row and file counts.
    Tables {
        #[command(flatten)]
        lake: LakeArg,
    },
    /// Compact small files (all tables, or one).
    Optimize {
        /// Table to compact; all when omitted.
        table: Option<String>,
        #[command(flatten)]
        lake: LakeArg,
        /// Merge files smaller than this into files of up to this size (MiB).
        #[arg(long, default_value_t = bright_engine::lake::COMPACT_TARGET_BYTES.get() >> 20)]
        target_mib: u64,
    },
    /// Delete files replaced by earlier commits, once they are older than the retention.
    Vacuum {
        /// Table to vacuum; all when omitted.
        table: Option<String>,
        #[command(flatten)]
        lake: LakeArg,
        /// Keep replaced files this many hours for readers of older snapshots (at least 1).
        #[arg(long, default_value_t = DEFAULT_VACUUM_RETENTION.as_secs() / 3600)]
        retain_hours: u64,
    },
}

#[derive(Debug, Args)]
struct GenerateArgs {
    /// Days of history.
    #[arg(long, default_value_t = 730)]
    days: u32,
    /// Seed: the same seed and dates give identical output.
    #[arg(long, default_value_t = 42)]
    seed: u64,
    /// Number of trusts (150 is about England).
    #[arg(long, default_value_t = 1)]
    trusts: u32,
    /// Day after the last simulated day (YYYY-MM-DD); default today.
    #[arg(long)]
    end: Option<chrono::NaiveDate>,
    /// Escalation beds each ward may open beyond its bed base.
    #[arg(long, default_value_t = 2)]
    escalation_beds: u32,
    /// Write feed files (HL7, CSV, NDJSON) into this new folder instead of the lake.
    #[arg(long, conflicts_with = "lake")]
    out: Option<PathBuf>,
    /// Lake root to write into.
    #[arg(long, env = "BRIGHT_LAKE")]
    lake: Option<String>,
    /// Pseudonymisation key for patient identifiers; simulated data defaults to a key
    /// derived from the seed.
    #[arg(long, env = "BRIGHT_PSEUDO_KEY", hide_env_values = true)]
    pseudo_key: Option<String>,
}

fn main() {
    bright_engine::configure_allocator();
    let cli = Cli::parse();
    init_logging(cli.log_format);
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the runtime: {e}");
            std::process::exit(1);
        }
    };
    if let Err(e) = runtime.block_on(run(cli.command)) {
        eprintln!("error: {}", one_line(&e));
        std::process::exit(1);
    }
}

/// The chain of causes on one line, each said once: libraries often repeat their source's
/// text in their own message ("Error during planning: DML not supported: COPY: Error during
/// planning: DML not supported: COPY"), so a cause already said is left out.
fn one_line(error: &anyhow::Error) -> String {
    let mut message = String::new();
    for cause in error.chain() {
        let text = cause.to_string().replace(['\n', '\r'], " ");
        let text = text.trim();
        if text.is_empty() || message.contains(text) {
            continue;
        }
        if !message.is_empty() {
            message.push_str(": ");
        }
        message.push_str(text);
    }
    message
}

/// Without `RUST_LOG`, only bright's own warnings and errors: libraries log failures that
/// bright then reports itself as the command's one-line error.
const DEFAULT_LOG: &str =
    "off,bright=warn,bright_engine=warn,bright_sim=warn,bright_ingest=warn,bright_dashboards=warn";

fn init_logging(format: LogFormat) {
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(DEFAULT_LOG));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder.json().init(),
    }
}

async fn run(command: Command) -> Result<()> {
    match command {
        Command::Sql {
            query,
            lake,
            catalogue,
            format,
        } => sql(&query, &lake.lake, &catalogue, format).await,
        Command::Lake { command } => lake_command(command).await,
        Command::Generate(args) => generate(args).await,
        Command::Serve(args) => serve::serve(*args).await,
        Command::Ingest(args) => serve::ingest(args).await,
        Command::Config { command } => config::config_command(command),
        Command::Token { command } => config::token_command(command),
        Command::Users { command } => users::users_command(command),
        Command::Kiosk { command } => users::kiosk_command(command),
        Command::Spc(args) => spc::run(args),
        Command::Kpi { command } => kpi::run(command).await,
        Command::Dashboards { command } => dashboards::run(command),
        Command::Demo(args) => demo::demo(args).await,
    }
}

fn open_lake(location: &str) -> Result<Lake> {
    Lake::open(location).with_context(|| format!("cannot open lake '{location}'"))
}

fn output_format(format: Format) -> OutputFormat {
    match format {
        Format::Table => OutputFormat::Table,
        Format::Csv => OutputFormat::Csv,
        Format::Json => OutputFormat::Json,
    }
}

/// Runs `query` with the lake's tables and the KPI views (`kpi.<id>`) registered.
async fn sql(
    query: &str,
    location: &str,
    catalogue: &kpi::CatalogueArgs,
    format: Format,
) -> Result<()> {
    let engine = kpi::engine(location, catalogue).await?;
    // The same sandbox as every other door, every row printed.
    // The server's own shell: its user may read everything, the audit log included.
    let limits = bright_engine::query::Limits {
        max_rows: None,
        forbidden_tables: Vec::new(),
        ..bright_engine::query::Limits::default()
    };
    let output = engine.analyst_sql(query, &limits).await?.output;
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    output.write(output_format(format), &mut out)?;
    out.flush()?;
    Ok(())
}

fn tables_arg(table: Option<String>) -> Result<Vec<Table>> {
    match table {
        Some(name) => Ok(vec![name.parse::<Table>()?]),
        None => Ok(Table::ALL.to_vec()),
    }
}

async fn lake_command(command: LakeCommand) -> Result<()> {
    match command {
        LakeCommand::Tables { lake } => {
            let lake = open_lake(&lake.lake)?;
            println!(
                "{:<18} {:>10} {:>12} {:>7} {:>12}",
                "table", "version", "rows", "files", "bytes"
            );
            let mut found = 0;
            for table in Table::ALL {
                if !lake.has_table(table).await? {
                    continue;
                }
                found += 1;
                let s = lake.stats(table).await?;
                println!(
                    "{:<18} {:>10} {:>12} {:>7} {:>12}",
                    s.table.name(),
                    s.version,
                    s.rows,
                    s.files,
                    s.bytes
                );
            }
            if found == 0 {
                bail!("no tables at {}", lake.root());
            }
        }
        LakeCommand::Optimize {
            table,
            lake,
            target_mib,
        } => {
            let target = target_mib
                .checked_mul(1 << 20)
                .and_then(std::num::NonZeroU64::new)
                .context("--target-mib must be a size in MiB of at least 1")?;
            let lake = open_lake(&lake.lake)?;
            for table in tables_arg(table)? {
                if !lake.has_table(table).await? {
                    continue;
                }
                let r = lake.optimize(table, Some(target)).await?;
                println!(
                    "{}: {} small files compacted into {}",
                    r.table, r.files_removed, r.files_added
                );
            }
        }
        LakeCommand::Vacuum {
            table,
            lake,
            retain_hours,
        } => {
            if retain_hours < 1 {
                bail!("--retain-hours must be at least 1: readers may still hold older snapshots");
            }
            let lake = open_lake(&lake.lake)?;
            for table in tables_arg(table)? {
                if !lake.has_table(table).await? {
                    continue;
                }
                let r = lake
                    .vacuum(table, Duration::from_secs(retain_hours * 3600))
                    .await?;
                println!("{}: {} files deleted", r.table, r.files_deleted);
            }
        }
    }
    Ok(())
}

fn progress_bar(days: u32) -> ProgressBar {
    let bar = ProgressBar::new(u64::from(days));
    bar.set_style(
        ProgressStyle::with_template("{msg} [{bar:40}] {pos}/{len} days ({eta} left)")
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> "),
    );
    bar.set_message("Simulating");
    bar
}

fn sim_config(args: &GenerateArgs) -> SimConfig {
    let end = args.end.unwrap_or_else(|| chrono::Utc::now().date_naive());
    let mut config = SimConfig::new(args.seed, args.days, end);
    config.trusts = args.trusts;
    config.escalation_beds = args.escalation_beds;
    config
}

fn print_summary(config: &SimConfig, changes: &Changes, summary: &Summary) {
    println!(
        "Simulated {} days ({} to {}), seed {}, {} trust(s).",
        config.days,
        config.first_day(),
        config.end.pred_opt().unwrap_or(config.end),
        config.seed,
        summary.trusts.len()
    );
    for t in summary.trusts.iter().take(5) {
        println!(
            "  {} {}: {} sites, {} wards, {} beds, {} theatres; {} ED attendances, {} admissions, {} theatre cases ({} cancelled on the day), {} electives cancelled for lack of a bed",
            t.org_code,
            t.name,
            t.sites,
            t.wards,
            t.beds,
            t.theatres,
            t.flow.ed_attendances,
            t.flow.admissions,
            t.theatre_cases,
            t.theatre_cancellations,
            t.flow.elective_cancelled_no_bed,
        );
    }
    if summary.trusts.len() > 5 {
        println!("  … and {} more trusts", summary.trusts.len() - 5);
    }
    println!("Planted process changes (SPC should find them):");
    for line in changes.describe() {
        println!("  {line}");
    }
}

fn pseudo_key(args: &GenerateArgs) -> Result<PseudoKey> {
    match &args.pseudo_key {
        Some(key) => Ok(PseudoKey::new(key.as_bytes())?),
        None => Ok(simulation_key(args.seed)),
    }
}

async fn generate(args: GenerateArgs) -> Result<()> {
    let config = sim_config(&args);
    let changes = Changes::planted(&config);
    let bar = progress_bar(config.days);
    let summary = if let Some(out) = &args.out {
        let simulation = Simulation::new(config.clone())?;
        let out = out.clone();
        let seed = config.seed;
        let progress = bar.clone();
        tokio::task::spawn_blocking(move || -> Result<Summary> {
            let mut sink = FileSink::create(&out, seed)?;
            Ok(simulation.run(&mut sink, &mut |d| progress.set_position(u64::from(d)))?)
        })
        .await??
    } else {
        let location = args.lake.clone().unwrap_or_else(|| "./lake".to_string());
        let lake = open_lake(&location)?;
        let progress = bar.clone();
        generate_into_lake(
            config.clone(),
            pseudo_key(&args)?,
            &lake,
            Box::new(move |d| progress.set_position(u64::from(d))),
        )
        .await?
    };
    bar.finish_and_clear();
    print_summary(&config, &changes, &summary);
    println!(
        "Admissions still open on {first} are in the lake with their earlier days; to serve it, \
         put `history_from = \"{first}\"` under [dashboards] in bright.toml so charts start there.",
        first = config.first_day()
    );
    Ok(())
}

/// A future that resolves on Ctrl-C or SIGTERM. The handlers are installed when this is
/// called, not when the future is first polled, so a signal that arrives while the caller
/// is still starting up is not lost (the default action would kill the process instead).
fn stop_signal() -> impl std::future::Future<Output = ()> {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let interrupt = signal(SignalKind::interrupt());
        let terminate = signal(SignalKind::terminate());
        async move {
            match (interrupt, terminate) {
                (Ok(mut interrupt), Ok(mut terminate)) => {
                    tokio::select! {
                        _ = interrupt.recv() => {}
                        _ = terminate.recv() => {}
                    }
                }
                // Without handlers, wait for Ctrl-C the portable way.
                _ => {
                    let _ = tokio::signal::ctrl_c().await;
                }
            }
        }
    }
    #[cfg(not(unix))]
    async {
        let _ = tokio::signal::ctrl_c().await;
    }
}
