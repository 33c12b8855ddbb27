//! `bright dashboards list|check`: the dashboards the pages show — the built-in ones and a
//! trust's own folder (`--folder`, or `folder` under `[dashboards]` in the configuration) —
//! listed, or checked against the KPI catalogue (an unknown KPI or filter names the file and
//! line, and the command fails: run it in CI beside the files).

use std::path::PathBuf;

use anyhow::Result;
use bright_dashboards::spec::Dashboards;
use clap::{Args, Subcommand};

use crate::kpi::CatalogueArgs;

#[derive(Debug, Args)]
pub struct Source {
    /// A folder of dashboard files (`*.toml`) added to the built-in ones.
    #[arg(long)]
    folder: Option<PathBuf>,
    #[command(flatten)]
    catalogue: CatalogueArgs,
    #[command(flatten)]
    config: crate::config::ConfigArg,
}

#[derive(Debug, Subcommand)]
pub enum DashboardsCommand {
    /// Every dashboard: id, who sees it, its grain and KPIs.
    List(Source),
    /// Check the dashboard files against the KPI catalogue.
    Check(Source),
}

fn load(source: &Source) -> Result<Dashboards> {
    let settings = source.config.load()?;
    let folder = source.folder.clone().or(settings.dashboards.folder.clone());
    let catalogue = source.catalogue.load()?;
    Ok(Dashboards::load(&catalogue, folder.as_deref())?)
}

pub fn run(command: DashboardsCommand) -> Result<()> {
    match command {
        DashboardsCommand::List(source) => {
            let dashboards = load(&source)?;
            println!(
                "{:<14} {:<32} {:<6} {:>4}  audience",
                "id", "title", "grain", "kpis"
            );
            for d in dashboards.all() {
                let audience: Vec<&str> = d.audience.iter().map(|r| r.as_str()).collect();
                println!(
                    "{:<14} {:<32} {:<6} {:>4}  {}",
                    d.id,
                    d.title,
                    d.grain.as_str(),
                    d.kpis().count(),
                    audience.join(", ")
                );
            }
        }
        DashboardsCommand::Check(source) => {
            let dashboards = load(&source)?;
            let kpis: usize = dashboards.all().iter().map(|d| d.kpis().count()).sum();
            println!(
                "{} dashboards, {kpis} KPI charts: every KPI and filter is known.",
                dashboards.all().len()
            );
        }
    }
    Ok(())
}
