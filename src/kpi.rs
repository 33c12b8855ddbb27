//! `bright kpi list|show|run|spc|check`: the KPI catalogue from the command line.
//!
//! The catalogue is the one built into bright unless `--catalogue DIR` (or `BRIGHT_QUERIES`)
//! points at a folder laid out like the repository's `queries/`.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::PathBuf;

use anyhow::{Context, Result, bail};
use bright_engine::kpi::{Catalogue, Kpi};
use bright_engine::query::{QueryConfig, QueryEngine};
use chrono::NaiveDate;
use clap::{Args, Subcommand};

use crate::{Format, LakeArg, open_lake, output_format};

#[derive(Debug, Args, Clone, Default)]
pub struct CatalogueArgs {
    /// A KPI catalogue folder (kpis.toml + SQL files) instead of the built-in one.
    #[arg(long, env = "BRIGHT_QUERIES")]
    catalogue: Option<PathBuf>,
    /// Set a catalogue parameter, e.g. `--param late_start_grace_min=10` (repeatable).
    #[arg(long = "param", value_name = "NAME=VALUE", value_parser = parse_param)]
    params: Vec<(String, f64)>,
}

fn parse_param(text: &str) -> Result<(String, f64), String> {
    let (name, value) = text
        .split_once('=')
        .ok_or_else(|| format!("expected NAME=VALUE, got '{text}'"))?;
    let value: f64 = value
        .trim()
        .parse()
        .map_err(|_| format!("parameter {name}: '{value}' is not a number"))?;
    if !value.is_finite() {
        return Err(format!(
            "parameter {name}: '{value}' is not a finite number"
        ));
    }
    Ok((name.trim().to_string(), value))
}

impl CatalogueArgs {
    pub fn load(&self) -> Result<Catalogue> {
        Ok(match &self.catalogue {
            Some(dir) => Catalogue::load(dir)?,
            None => Catalogue::embedded()?,
        })
    }

    fn overrides(&self) -> BTreeMap<String, f64> {
        self.params.iter().cloned().collect()
    }

    /// Plans the catalogue, with its parameters, into `engine`.
    pub async fn register(&self, engine: &mut QueryEngine) -> Result<()> {
        engine
            .register_kpis(self.load()?, &self.overrides())
            .await?;
        Ok(())
    }
}

/// One KPI's series over the lake: which, when, broken down by what.
#[derive(Debug, Args)]
pub struct SeriesArgs {
    /// The KPI's id.
    id: String,
    /// First day wanted (rounded down to its week or month for such KPIs).
    #[arg(long, value_name = "YYYY-MM-DD")]
    from: Option<NaiveDate>,
    /// Day after the last day wanted.
    #[arg(long, value_name = "YYYY-MM-DD")]
    to: Option<NaiveDate>,
    /// Break the series down by these columns (comma separated, e.g. `site,ward`); `kpi spc`
    /// draws one chart per breakdown.
    #[arg(long, value_delimiter = ',')]
    by: Vec<String>,
    #[command(flatten)]
    lake: LakeArg,
    #[command(flatten)]
    catalogue: CatalogueArgs,
}

#[derive(Debug, Subcommand)]
pub enum KpiCommand {
    /// List the KPIs of the catalogue.
    List {
        #[command(flatten)]
        catalogue: CatalogueArgs,
    },
    /// Show one KPI's definition and metadata.
    Show {
        /// The KPI's id.
        id: String,
        #[command(flatten)]
        catalogue: CatalogueArgs,
    },
    /// Compute a KPI's series: one row per period (and breakdown), as SPC reads it.
    Run {
        #[command(flatten)]
        series: SeriesArgs,
        /// Output format.
        #[arg(long, value_enum, default_value = "table")]
        format: Format,
    },
    /// Chart a KPI's series as its manifest says (chart type, direction, target): one row per
    /// point with its limits, point type and the chart's icons, per breakdown.
    Spc {
        #[command(flatten)]
        series: SeriesArgs,
        /// A period where a new process starts (repeatable): limits are recomputed from it.
        #[arg(long, value_name = "YYYY-MM-DD")]
        rebase: Vec<NaiveDate>,
        /// Output format.
        #[arg(long, value_enum, default_value = "csv")]
        format: Format,
    },
    /// Plan every KPI against the lake's tables; fails naming the first broken file.
    Check {
        #[command(flatten)]
        lake: LakeArg,
        #[command(flatten)]
        catalogue: CatalogueArgs,
    },
}

/// Opens the lake's query engine with the catalogue registered.
pub async fn engine(lake: &str, catalogue: &CatalogueArgs) -> Result<QueryEngine> {
    let lake = open_lake(lake)?;
    let mut engine = QueryEngine::open(&lake, &QueryConfig::default()).await?;
    catalogue.register(&mut engine).await?;
    Ok(engine)
}

pub async fn run(command: KpiCommand) -> Result<()> {
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    match command {
        KpiCommand::List { catalogue } => {
            let catalogue = catalogue.load()?;
            writeln!(
                out,
                "{:<32} {:<8} {:<6} {:<5} {:<9} {:>8}  title",
                "id", "unit", "grain", "chart", "better", "target"
            )?;
            for kpi in &catalogue.kpis {
                writeln!(
                    out,
                    "{:<32} {:<8} {:<6} {:<5} {:<9} {:>8}  {}",
                    kpi.id.as_str(),
                    kpi.unit_name(),
                    kpi.grain.as_str(),
                    kpi.chart.as_str(),
                    kpi.improvement.as_str(),
                    kpi.target
                        .as_ref()
                        .map(|t| kpi.unit.format(t.value))
                        .unwrap_or_default(),
                    kpi.title
                )?;
            }
        }
        KpiCommand::Show { id, catalogue } => {
            let catalogue = catalogue.load()?;
            let kpi = catalogue.get(&id)?;
            show(kpi, &catalogue, &mut out)?;
        }
        KpiCommand::Run {
            series: args,
            format,
        } => {
            let (_, series) = series(&args).await?;
            series.write(output_format(format), &mut out)?;
        }
        KpiCommand::Spc {
            series: args,
            rebase,
            format,
        } => {
            let (engine, series) = series(&args).await?;
            let id = &args.id;
            let kpi = engine
                .kpi_catalogue()
                .context("the catalogue was just registered")?
                .get(id)?;
            if series.batches.iter().all(|b| b.num_rows() == 0) {
                bail!("KPI {id} has no periods in the lake for the dates asked");
            }
            let chart = bright_engine::kpi::chart_series(kpi, &series.batches, &args.by, &rebase)
                .with_context(|| format!("cannot chart KPI {id}"))?;
            let output = bright_engine::query::QueryOutput {
                schema: chart.schema(),
                batches: vec![chart],
            };
            output.write(output_format(format), &mut out)?;
        }
        KpiCommand::Check { lake, catalogue } => {
            let engine = engine(&lake.lake, &catalogue).await?;
            let catalogue = engine
                .kpi_catalogue()
                .context("the catalogue was just registered")?;
            writeln!(
                out,
                "{} KPIs and {} helper views plan against {}.",
                catalogue.kpis.len(),
                catalogue.views.len(),
                lake.lake
            )?;
        }
    }
    out.flush()?;
    Ok(())
}

/// The series `args` asks for, with the engine that computed it.
async fn series(args: &SeriesArgs) -> Result<(QueryEngine, bright_engine::query::QueryOutput)> {
    let SeriesArgs {
        id,
        from,
        to,
        by,
        lake,
        catalogue,
    } = args;
    if let (Some(from), Some(to)) = (from, to)
        && to <= from
    {
        bail!("--to {to} must be after --from {from}");
    }
    let engine = engine(&lake.lake, catalogue).await?;
    let series = engine
        .kpi_series(id, *from, *to, by)
        .await
        .with_context(|| format!("cannot compute KPI {id}"))?;
    Ok((engine, series))
}

fn show(kpi: &Kpi, catalogue: &Catalogue, out: &mut dyn Write) -> Result<()> {
    writeln!(out, "{} — {}", kpi.id, kpi.title)?;
    writeln!(out, "{}", kpi.description)?;
    writeln!(out)?;
    let breakdowns = if kpi.breakdowns.is_empty() {
        "org_code".to_string()
    } else {
        format!("org_code, {}", kpi.breakdowns.join(", "))
    };
    let rows = [
        ("view", format!("kpi.{}", kpi.id)),
        ("unit", kpi.unit_name().to_string()),
        ("grain", kpi.grain.as_str().to_string()),
        ("breakdowns", breakdowns),
        ("improvement", kpi.improvement.as_str().to_string()),
        (
            "target",
            kpi.target
                .as_ref()
                .map(|t| format!("{} ({})", kpi.unit.format(t.value), t.source))
                .unwrap_or_else(|| "none".to_string()),
        ),
        ("chart", kpi.chart.as_str().to_string()),
        ("numerator", kpi.numerator.clone()),
        (
            "denominator",
            kpi.denominator
                .clone()
                .unwrap_or_else(|| "none".to_string()),
        ),
        ("owner", kpi.owner.clone()),
        ("definition", kpi.definition.clone()),
        ("file", kpi.file.display().to_string()),
    ];
    for (name, value) in rows {
        writeln!(out, "{name:<12} {value}")?;
    }
    let used: Vec<String> = catalogue
        .params_of(kpi)
        .into_iter()
        .map(|p| {
            let verify = if p.verify { ", verify locally" } else { "" };
            format!("{} = {} {}{verify}", p.name, p.default, p.unit)
        })
        .collect();
    if !used.is_empty() {
        writeln!(out, "{:<12} {}", "parameters", used.join("; "))?;
    }
    writeln!(out)?;
    writeln!(out, "{}", kpi.sql.trim_end())?;
    Ok(())
}
