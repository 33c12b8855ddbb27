//! `bright.toml`, and the commands that help write it (`bright config check`, `bright token
//! new`).
//!
//! The embedded default needs no file: without one, `bright serve` runs with no API clients,
//! so every endpoint but `/health` answers 401 until a client is added.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use bright_dashboards::DashboardsConfig;
use bright_dashboards::auth::{Clients, token_sha256};
use bright_ingest::health::{FeedHealth, IngestConfig};
use clap::{Args, Subcommand};
use serde::Deserialize;

/// The whole configuration file: a section per part of bright.
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Config {
    #[serde(default)]
    pub dashboards: DashboardsConfig,
    #[serde(default)]
    pub ingest: IngestConfig,
    #[serde(default)]
    pub alerts: bright_dashboards::alerts::AlertsConfig,
    #[serde(default)]
    pub sql: bright_dashboards::routes::sql::SqlConfig,
}

#[derive(Debug, Args, Clone)]
pub struct ConfigArg {
    /// Configuration file (API clients, limits); none means no API clients.
    #[arg(long, env = "BRIGHT_CONFIG")]
    pub config: Option<PathBuf>,
}

impl ConfigArg {
    pub fn load(&self) -> Result<Config> {
        self.config.as_deref().map_or(Ok(Config::default()), load)
    }
}

/// Reads and validates a configuration file.
pub fn load(path: &Path) -> Result<Config> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    let config: Config =
        toml::from_str(&text).with_context(|| format!("{} is not valid", path.display()))?;
    Clients::new(&config.dashboards.clients)
        .with_context(|| format!("{}: [[dashboards.clients]]", path.display()))?;
    FeedHealth::new(&config.ingest, chrono::Utc::now())
        .with_context(|| format!("{} is not valid", path.display()))?;
    bright_dashboards::alerts::Webhook::from_config(&config.alerts)
        .with_context(|| format!("{}: [[alerts.webhooks]]", path.display()))?;
    config
        .alerts
        .rules()
        .check()
        .with_context(|| format!("{} is not valid", path.display()))?;
    config
        .ingest
        .window()
        .map_err(anyhow::Error::msg)
        .with_context(|| format!("{} is not valid", path.display()))?;
    Ok(config)
}

#[derive(Debug, Subcommand)]
pub enum ConfigCommand {
    /// Check a configuration file and say what it sets.
    Check { file: PathBuf },
}

pub fn config_command(command: ConfigCommand) -> Result<()> {
    match command {
        ConfigCommand::Check { file } => {
            let config = load(&file)?;
            let window = config.ingest.window().map_err(anyhow::Error::msg)?;
            println!(
                "{}: valid; {} API clients, request bodies up to {} bytes, settings for {} feeds; times taken from {} to {} days ahead.",
                file.display(),
                config.dashboards.clients.len(),
                config.dashboards.max_body_bytes,
                config.ingest.feeds.len(),
                window.earliest,
                window.days_ahead
            );
            Ok(())
        }
    }
}

#[derive(Debug, Subcommand)]
pub enum TokenCommand {
    /// Create a token for an API client and print it with the entry for bright.toml.
    New {
        /// The client's name, as the audit log will show it.
        #[arg(long)]
        name: String,
        /// What it may do: read, annotate, sql, ingest:<feed> or ingest:* (repeat for several).
        #[arg(long = "scope", required = true)]
        scopes: Vec<String>,
        /// When it stops working: an RFC 3339 time or a YYYY-MM-DD date (through that day,
        /// UTC). Without it, until its entry is removed.
        #[arg(long)]
        expires: Option<String>,
    },
}

/// A new API token: `brt_` and 256 random bits in hex.
pub fn new_token() -> Result<String> {
    let mut secret = [0u8; 32];
    getrandom::fill(&mut secret)
        .map_err(|e| anyhow::anyhow!("no randomness from the system: {e}"))?;
    Ok(std::iter::once("brt_".to_string())
        .chain(secret.iter().map(|b| format!("{b:02x}")))
        .collect())
}

pub fn token_command(command: TokenCommand) -> Result<()> {
    match command {
        TokenCommand::New {
            name,
            scopes,
            expires,
        } => {
            let token = new_token()?;
            let entry = bright_dashboards::auth::ClientConfig {
                name,
                token_sha256: token_sha256(&token),
                scopes,
                expires,
            };
            // Refuse a scope the server would refuse at start-up.
            Clients::new(std::slice::from_ref(&entry))?;
            println!("Token (give it to the client; bright keeps only its hash):");
            println!("  {token}");
            println!();
            println!("Add to bright.toml:");
            println!("[[dashboards.clients]]");
            println!("name = {:?}", entry.name);
            println!("token_sha256 = {:?}", entry.token_sha256);
            println!("scopes = {:?}", entry.scopes);
            if let Some(expires) = &entry.expires {
                println!("expires = {expires:?}");
            }
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_example_configuration_is_valid() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("bright.example.toml");
        let config = load(&path).unwrap();
        assert!(!config.dashboards.clients.is_empty());
        let clients = Clients::new(&config.dashboards.clients).unwrap();
        assert!(!clients.is_empty());
        let health = FeedHealth::new(&config.ingest, chrono::Utc::now()).unwrap();
        assert_eq!(health.owner("hl7_adt"), "PAS interface team");
        // The example spells out the defaults of [sql].
        assert_eq!(
            config.sql,
            bright_dashboards::routes::sql::SqlConfig::default()
        );
    }

    #[test]
    fn the_time_window_is_read_and_checked() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("bright.toml");
        std::fs::write(
            &path,
            "[ingest]\nearliest_date = \"2005-04-01\"\ndays_ahead = 30\n",
        )
        .unwrap();
        let window = load(&path).unwrap().ingest.window().unwrap();
        assert_eq!(window.earliest.to_string(), "2005-04-01");
        assert_eq!(window.days_ahead, 30);
        std::fs::write(&path, "[ingest]\nearliest_date = \"01/04/2005\"\n").unwrap();
        let e = format!("{:#}", load(&path).unwrap_err());
        assert!(e.contains("earliest_date"), "{e}");
    }

    #[test]
    fn the_alert_rules_are_read_and_checked() {
        use bright_dashboards::alerts::CleaningNotice;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("bright.toml");
        std::fs::write(
            &path,
            "[alerts]\ncleaning_notice_at = \"anaesthesia_end\"\n\n[alerts.pressure]\n\
             ga_occupancy_percent = [90, 94, 97]\n",
        )
        .unwrap();
        let rules = load(&path).unwrap().alerts.rules();
        assert_eq!(rules.cleaning_notice_at, CleaningNotice::AnaesthesiaEnd);
        assert_eq!(rules.pressure.ga_occupancy_percent, [90.0, 94.0, 97.0]);
        // The others keep their defaults.
        assert_eq!(rules.pressure.ed_over_12h, [1.0, 5.0, 10.0]);
        std::fs::write(&path, "[alerts.pressure]\ned_over_12h = [10, 5, 1]\n").unwrap();
        let e = format!("{:#}", load(&path).unwrap_err());
        assert!(e.contains("must rise"), "{e}");
        std::fs::write(&path, "[alerts]\ncleaning_notice_at = \"knife_to_skin\"\n").unwrap();
        assert!(load(&path).is_err());
    }

    #[test]
    fn the_theatre_report_time_is_a_time_of_day() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("bright.toml");
        std::fs::write(&path, "[dashboards]\ntheatre_report_at = \"07:15\"\n").unwrap();
        let at = load(&path).unwrap().dashboards.theatre_report_at;
        assert_eq!(at, chrono::NaiveTime::from_hms_opt(7, 15, 0).unwrap());
        assert_eq!(
            Config::default().dashboards.theatre_report_at,
            chrono::NaiveTime::from_hms_opt(6, 30, 0).unwrap()
        );
        std::fs::write(&path, "[dashboards]\ntheatre_report_at = \"7.15am\"\n").unwrap();
        let e = format!("{:#}", load(&path).unwrap_err());
        assert!(e.contains("not a time of day like 06:30"), "{e}");
    }

    #[test]
    fn unknown_settings_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("bright.toml");
        std::fs::write(&path, "[dashboards]\nmax_body_byte = 10\n").unwrap();
        let e = format!("{:#}", load(&path).unwrap_err());
        assert!(e.contains("max_body_byte"), "{e}");
    }
}
