//! The manifest (`kpis.toml`) and the catalogue it describes, loaded and checked.

use std::collections::BTreeSet;
use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use serde::{Deserialize, Deserializer};

use crate::spc::Improvement;
use crate::spc::attribute::ChartKind;
use crate::spc::narrate::Unit;

use super::{DENOMINATOR, NUMERATOR, PERIOD, SINCE, VALUE};

/// The manifest's file name inside a catalogue folder.
pub const MANIFEST: &str = "kpis.toml";

/// Column names a KPI query returns besides its breakdowns; no breakdown may take them.
pub const VALUE_COLUMNS: [&str; 4] = [PERIOD, NUMERATOR, DENOMINATOR, VALUE];

// The catalogue in the repository's `queries/` folder, built in (see build.rs).
include!(concat!(env!("OUT_DIR"), "/queries.rs"));

/// Errors loading a catalogue.
#[derive(Debug, thiserror::Error)]
pub enum KpiError {
    /// A file of the catalogue could not be read.
    #[error("cannot read {file}: {source}")]
    Read {
        /// The file.
        file: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The manifest is not valid TOML of the expected shape.
    #[error("{file}: {source}")]
    Manifest {
        /// The manifest file.
        file: PathBuf,
        /// The parser's message, with line and column.
        source: Box<toml::de::Error>,
    },
    /// The manifest or a query breaks a rule of the catalogue.
    #[error("{file}: {message}")]
    Invalid {
        /// The file at fault.
        file: PathBuf,
        /// What is wrong.
        message: String,
    },
    /// No KPI has this id.
    #[error("unknown KPI '{id}' (bright kpi list shows them)")]
    UnknownKpi {
        /// What was asked for.
        id: String,
    },
    /// A parameter override names no parameter of the catalogue.
    #[error("unknown KPI parameter '{name}'")]
    UnknownParam {
        /// What was given.
        name: String,
    },
    /// A KPI cannot be broken down by this column.
    #[error("KPI '{kpi}' has no breakdown '{by}' (it has: {known})")]
    UnknownBreakdown {
        /// The KPI.
        kpi: String,
        /// What was asked for.
        by: String,
        /// What it supports.
        known: String,
    },
}

/// A KPI's id: snake_case, also its view name (`kpi.<id>`) and its file name (`<id>.sql`).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct KpiId(String);

impl KpiId {
    /// The id as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for KpiId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

fn is_identifier(s: &str) -> bool {
    let mut chars = s.chars();
    chars.next().is_some_and(|c| c.is_ascii_lowercase())
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
}

/// How long one period of a KPI is (ordered from the shortest).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Grain {
    /// A calendar day in the trust's time zone.
    Day,
    /// Monday to Sunday.
    Week,
    /// A calendar month.
    Month,
}

impl Grain {
    /// The first day of the period holding `day`.
    pub fn period_start(self, day: chrono::NaiveDate) -> chrono::NaiveDate {
        use chrono::Datelike;
        match self {
            Grain::Day => day,
            Grain::Week => day - chrono::Days::new(u64::from(day.weekday().num_days_from_monday())),
            Grain::Month => day.with_day(1).unwrap_or(day),
        }
    }

    /// `day`, `week` or `month`.
    pub fn as_str(self) -> &'static str {
        match self {
            Grain::Day => "day",
            Grain::Week => "week",
            Grain::Month => "month",
        }
    }
}

/// How values of one period combine across breakdowns.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Rollup {
    /// Numerators and denominators add up (counts, minutes, pounds).
    #[default]
    Sum,
    /// The largest numerator stands for the whole (e.g. the stalest feed).
    Max,
}

/// How a KPI's periods combine into longer ones (days into weeks or months on a chart).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OverTime {
    /// Numerators and denominators add up: flows (attendances, minutes, pounds) and every KPI
    /// with a denominator, whose pooled value is Σnumerator ÷ Σdenominator.
    Sum,
    /// The mean of the periods' values: stocks counted at a moment each period (patients in
    /// the department, long stays on the ward), which do not add up over time.
    Mean,
    /// The largest value stands for the whole (e.g. the stalest feed).
    Max,
}

impl OverTime {
    /// `sum`, `mean` or `max`.
    pub fn as_str(self) -> &'static str {
        match self {
            OverTime::Sum => "sum",
            OverTime::Mean => "mean",
            OverTime::Max => "max",
        }
    }
}

/// A KPI's target and where it comes from.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Target {
    /// In the KPI's value scale (a proportion from 0 to 1 for `%`).
    pub value: f64,
    /// National standard or local decision, with its reference.
    pub source: String,
}

/// The range a KPI's values usually fall in elsewhere (peers, published figures), drawn on its
/// charts as a band, with where it comes from.
#[derive(Debug, Clone, PartialEq, Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct ReferenceRange {
    pub low: f64,
    pub high: f64,
    pub source: String,
}

/// A parameter of the catalogue's queries, bound to `$name`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Param {
    /// The placeholder name (without `$`).
    #[serde(skip)]
    pub name: String,
    /// The value used unless configuration says otherwise.
    pub default: f64,
    /// What the number counts in (`minutes`, `hour`…).
    pub unit: String,
    /// What it means.
    pub description: String,
    /// True when the national definition could not be confirmed: trusts should set it.
    #[serde(default)]
    pub verify: bool,
}

/// A view several KPIs share (`kpi.<name>`), planned before the KPIs.
#[derive(Debug, Clone, PartialEq)]
pub struct HelperView {
    /// The view's name.
    pub name: String,
    /// What one row is.
    pub description: String,
    /// The query.
    pub sql: String,
    /// Where the query came from, for messages.
    pub file: PathBuf,
    /// Computed once per change of the tables it reads and kept in memory, instead of being
    /// recomputed inside every query that reads it (see `materialise` in `kpis.toml`).
    pub materialise: bool,
    /// For a materialised view: the column whose value alone decides a row, in the view and in
    /// every lake table it reads. The rows with one key come only from the lake rows with that
    /// key (and from other materialised views, read whole), so new data recomputes only the
    /// keys it holds (see `key` in `kpis.toml`).
    pub key: Option<String>,
    /// For a materialised view: the column holding the day each row belongs to (see `day` in
    /// `kpis.toml`). A view that reads `$since` as well is brought up to date from the first
    /// day its inputs changed on, keeping the rows before; a keyed view says from which day
    /// its rows changed, to the views that read it.
    pub day: Option<String>,
    /// For a materialised view with a `day`: keep in memory only the rows of the last this
    /// many days the lake holds (see `recent_days` in `kpis.toml`). A query reading earlier
    /// days runs the view's query over the lake.
    pub recent_days: Option<u32>,
}

/// One indicator.
#[derive(Debug, Clone, PartialEq)]
pub struct Kpi {
    /// Its id.
    pub id: KpiId,
    /// A short title for boards.
    pub title: String,
    /// What it measures, in a sentence or two.
    pub description: String,
    /// How values are shown.
    pub unit: Unit,
    /// The period length.
    pub grain: Grain,
    /// The columns it can be broken down by, besides `org_code`.
    pub breakdowns: Vec<String>,
    /// Which way is better.
    pub improvement: Improvement,
    /// Its target, if it has one.
    pub target: Option<Target>,
    /// Where its values usually fall, if known.
    pub reference_range: Option<ReferenceRange>,
    /// The team that owns it.
    pub owner: String,
    /// The SPC chart that suits it.
    pub chart: ChartKind,
    /// What the numerator counts.
    pub numerator: String,
    /// What the denominator counts, for proportions, rates and means.
    pub denominator: Option<String>,
    /// The official definition it follows.
    pub definition: String,
    /// How it combines across breakdowns.
    pub rollup: Rollup,
    /// How its periods combine into longer ones.
    pub over_time: OverTime,
    /// The query.
    pub sql: String,
    /// Where the query came from, for messages.
    pub file: PathBuf,
}

impl Kpi {
    /// The unit as the manifest writes it: `%`, `count`, `minutes`, `ratio` or `£`.
    pub fn unit_name(&self) -> &'static str {
        unit_name(self.unit)
    }

    /// Every column the query returns, in order.
    pub fn columns(&self) -> Vec<&str> {
        let mut columns = vec![PERIOD, crate::schema::common::ORG_CODE];
        columns.extend(self.breakdowns.iter().map(String::as_str));
        columns.extend([NUMERATOR, DENOMINATOR]);
        columns
    }
}

fn from_str<'de, D, T>(deserializer: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: FromStr<Err = String>,
{
    let text = String::deserialize(deserializer)?;
    text.parse().map_err(serde::de::Error::custom)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawManifest {
    #[serde(default)]
    params: std::collections::BTreeMap<String, Param>,
    #[serde(default)]
    view: Vec<RawView>,
    kpi: Vec<RawKpi>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawView {
    name: String,
    description: String,
    #[serde(default)]
    materialise: bool,
    key: Option<String>,
    day: Option<String>,
    recent_days: Option<u32>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawKpi {
    id: String,
    title: String,
    description: String,
    #[serde(deserialize_with = "from_str")]
    unit: Unit,
    grain: Grain,
    #[serde(default)]
    breakdowns: Vec<String>,
    #[serde(deserialize_with = "from_str")]
    improvement: Improvement,
    target: Option<Target>,
    reference_range: Option<ReferenceRange>,
    owner: String,
    #[serde(deserialize_with = "from_str")]
    chart: ChartKind,
    numerator: String,
    denominator: Option<String>,
    definition: String,
    #[serde(default)]
    rollup: Rollup,
    /// Default: `max` with a max roll-up, else `sum`.
    over_time: Option<OverTime>,
}

/// A loaded, checked catalogue.
#[derive(Debug, Clone, PartialEq)]
pub struct Catalogue {
    /// Parameters, by name.
    pub params: Vec<Param>,
    /// Helper views, in the order they are planned.
    pub views: Vec<HelperView>,
    /// KPIs, in manifest order.
    pub kpis: Vec<Kpi>,
}

impl Catalogue {
    /// The catalogue built into bright (the repository's `queries/`).
    pub fn embedded() -> Result<Catalogue, KpiError> {
        Catalogue::from_files(Path::new("queries"), |name| {
            EMBEDDED
                .iter()
                .find(|(file, _)| *file == name)
                .map(|(_, text)| text.to_string())
                .ok_or_else(|| std::io::Error::from(std::io::ErrorKind::NotFound))
        })
    }

    /// Loads the catalogue in `dir` (a folder laid out like `queries/`).
    pub fn load(dir: &Path) -> Result<Catalogue, KpiError> {
        Catalogue::from_files(dir, |name| std::fs::read_to_string(dir.join(name)))
    }

    fn from_files(
        dir: &Path,
        read: impl Fn(&str) -> std::io::Result<String>,
    ) -> Result<Catalogue, KpiError> {
        let read = |name: &str| {
            read(name).map_err(|source| KpiError::Read {
                file: dir.join(name),
                source,
            })
        };
        let manifest_file = dir.join(MANIFEST);
        let raw: RawManifest =
            toml::from_str(&read(MANIFEST)?).map_err(|source| KpiError::Manifest {
                file: manifest_file.clone(),
                source: Box::new(source),
            })?;
        let invalid = |file: &Path, message: String| KpiError::Invalid {
            file: file.to_path_buf(),
            message,
        };

        let mut params = Vec::new();
        for (name, mut param) in raw.params {
            if !is_identifier(&name) || name == SINCE {
                return Err(invalid(
                    &manifest_file,
                    format!("parameter '{name}' must be snake_case and not '{SINCE}'"),
                ));
            }
            if !param.default.is_finite() {
                return Err(invalid(
                    &manifest_file,
                    format!("parameter '{name}' needs a finite default"),
                ));
            }
            param.name = name;
            params.push(param);
        }
        let known: BTreeSet<&str> = params
            .iter()
            .map(|p| p.name.as_str())
            .chain([SINCE])
            .collect();

        let mut names = BTreeSet::new();
        let mut views = Vec::new();
        for view in raw.view {
            if !is_identifier(&view.name) || !names.insert(view.name.clone()) {
                return Err(invalid(
                    &manifest_file,
                    format!("view name '{}' must be snake_case and unique", view.name),
                ));
            }
            for (what, set) in [
                ("a key", view.key.is_some()),
                ("a day", view.day.is_some()),
                ("recent_days", view.recent_days.is_some()),
            ] {
                if set && !view.materialise {
                    return Err(invalid(
                        &manifest_file,
                        format!("view '{}' has {what} but is not materialised", view.name),
                    ));
                }
            }
            if view.recent_days.is_some() && (view.day.is_none() || view.key.is_some()) {
                return Err(invalid(
                    &manifest_file,
                    format!(
                        "view '{}' has recent_days, which needs a day and no key",
                        view.name
                    ),
                ));
            }
            let name = format!("views/{}.sql", view.name);
            let sql = read(&name)?;
            check_placeholders(&sql, &known).map_err(|m| invalid(&dir.join(&name), m))?;
            views.push(HelperView {
                name: view.name,
                description: view.description,
                sql,
                file: dir.join(name),
                materialise: view.materialise,
                key: view.key,
                day: view.day,
                recent_days: view.recent_days,
            });
        }

        let mut kpis = Vec::new();
        for raw in raw.kpi {
            let file = dir.join(format!("{}.sql", raw.id));
            let kpi = check_kpi(raw, &mut names).map_err(|m| invalid(&manifest_file, m))?;
            let sql = read(&format!("{}.sql", kpi.id))?;
            check_placeholders(&sql, &known).map_err(|m| invalid(&file, m))?;
            kpis.push(Kpi { sql, file, ..kpi });
        }
        Ok(Catalogue {
            params,
            views,
            kpis,
        })
    }

    /// The parameters `kpi`'s query reads.
    pub fn params_of(&self, kpi: &Kpi) -> Vec<&Param> {
        let used: BTreeSet<&str> = placeholders(&kpi.sql).collect();
        self.params
            .iter()
            .filter(|p| used.contains(p.name.as_str()))
            .collect()
    }

    /// The KPI with this id.
    pub fn get(&self, id: &str) -> Result<&Kpi, KpiError> {
        self.kpis
            .iter()
            .find(|k| k.id.as_str() == id)
            .ok_or_else(|| KpiError::UnknownKpi { id: id.to_string() })
    }
}

fn check_kpi(raw: RawKpi, names: &mut BTreeSet<String>) -> Result<Kpi, String> {
    let id = &raw.id;
    if !is_identifier(id) {
        return Err(format!("KPI id '{id}' must be snake_case"));
    }
    if !names.insert(id.clone()) {
        return Err(format!("KPI id '{id}' is used twice"));
    }
    let mut seen = BTreeSet::new();
    for b in &raw.breakdowns {
        if !is_identifier(b)
            || VALUE_COLUMNS.contains(&b.as_str())
            || b == crate::schema::common::ORG_CODE
            || !seen.insert(b)
        {
            return Err(format!(
                "{id}: breakdown '{b}' must be a snake_case column, once, and not one of \
                 org_code, {}",
                VALUE_COLUMNS.join(", ")
            ));
        }
    }
    let has_denominator = raw.denominator.is_some();
    if (raw.chart.needs_denominator() || raw.unit == Unit::Percent) && !has_denominator {
        return Err(format!(
            "{id}: a {} chart of a {} KPI needs a denominator",
            raw.chart.as_str(),
            unit_name(raw.unit)
        ));
    }
    if let Some(target) = &raw.target
        && (!target.value.is_finite()
            || (raw.unit == Unit::Percent && !(0.0..=1.0).contains(&target.value)))
    {
        return Err(format!(
            "{id}: target {} is not a value of this KPI (percentages are proportions from 0 to 1)",
            target.value
        ));
    }
    if let Some(range) = &raw.reference_range
        && !(range.low.is_finite()
            && range.high.is_finite()
            && range.low < range.high
            && (raw.unit != Unit::Percent || (0.0 <= range.low && range.high <= 1.0)))
    {
        return Err(format!(
            "{id}: reference range {} to {} is not a range of this KPI's values (low below high; \
             percentages are proportions from 0 to 1)",
            range.low, range.high
        ));
    }
    if raw.rollup == Rollup::Max && has_denominator {
        return Err(format!("{id}: a max roll-up cannot pool a denominator"));
    }
    let over_time = raw.over_time.unwrap_or(match raw.rollup {
        Rollup::Max => OverTime::Max,
        Rollup::Sum => OverTime::Sum,
    });
    if over_time != OverTime::Sum && has_denominator {
        return Err(format!(
            "{id}: over_time = \"{}\" cannot pool a denominator (periods with one add up)",
            over_time.as_str()
        ));
    }
    Ok(Kpi {
        id: KpiId(raw.id),
        title: raw.title,
        description: raw.description,
        unit: raw.unit,
        grain: raw.grain,
        breakdowns: raw.breakdowns,
        improvement: raw.improvement,
        target: raw.target,
        reference_range: raw.reference_range,
        owner: raw.owner,
        chart: raw.chart,
        numerator: raw.numerator,
        denominator: raw.denominator,
        definition: raw.definition,
        rollup: raw.rollup,
        over_time,
        sql: String::new(),
        file: PathBuf::new(),
    })
}

/// The unit's manifest name.
fn unit_name(unit: Unit) -> &'static str {
    match unit {
        Unit::Percent => "%",
        Unit::Count => "count",
        Unit::Minutes => "minutes",
        Unit::Ratio => "ratio",
        Unit::Pounds => "£",
    }
}

/// Every `$name` in `sql` must be a declared parameter or `$since`; a typo would otherwise
/// only show when the query is bound.
fn check_placeholders(sql: &str, known: &BTreeSet<&str>) -> Result<(), String> {
    match placeholders(sql).find(|name| !known.contains(name)) {
        Some(name) => Err(format!(
            "unknown parameter '${name}' (declare it under [params] in {MANIFEST})"
        )),
        None => Ok(()),
    }
}

/// The names of the `$name` placeholders in `sql`, in order of appearance.
fn placeholders(sql: &str) -> impl Iterator<Item = &str> {
    sql.split('$').skip(1).map(|after| {
        let end = after
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .unwrap_or(after.len());
        &after[..end]
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_built_in_catalogue_loads() {
        let catalogue = Catalogue::embedded().expect("queries/ is a valid catalogue");
        assert!(catalogue.kpis.len() >= 25, "{}", catalogue.kpis.len());
        for kpi in &catalogue.kpis {
            assert!(kpi.sql.contains("numerator"), "{}", kpi.id);
        }
    }

    #[test]
    fn placeholders_must_be_declared() {
        let known = BTreeSet::from(["since", "grace_min"]);
        assert!(check_placeholders("a >= $since AND b > $grace_min", &known).is_ok());
        let err = check_placeholders("a > $grace", &known).unwrap_err();
        assert!(err.contains("'$grace'"), "{err}");
    }

    fn write(dir: &Path, name: &str, text: &str) {
        let path = dir.join(name);
        std::fs::create_dir_all(path.parent().expect("has a parent")).expect("mkdir");
        std::fs::write(path, text).expect("write");
    }

    const KPI: &str = r#"
[[kpi]]
id = "ed_attendances"
title = "ED attendances"
description = "Arrivals."
unit = "count"
grain = "day"
breakdowns = ["site"]
improvement = "neutral"
owner = "ED"
chart = "xmr"
numerator = "attendances"
definition = "ECDS"
"#;

    #[test]
    fn a_folder_catalogue_loads_and_names_the_file_at_fault() {
        let dir = tempfile::tempdir().expect("tempdir");
        write(dir.path(), MANIFEST, KPI);
        let err = Catalogue::load(dir.path()).unwrap_err();
        assert!(
            err.to_string().contains("ed_attendances.sql"),
            "missing file named: {err}"
        );
        write(
            dir.path(),
            "ed_attendances.sql",
            "SELECT 1 AS numerator WHERE x > $sinse",
        );
        let err = Catalogue::load(dir.path()).unwrap_err();
        assert!(err.to_string().contains("$sinse"), "{err}");
        write(
            dir.path(),
            "ed_attendances.sql",
            "SELECT 1 AS numerator WHERE x > $since",
        );
        let catalogue = Catalogue::load(dir.path()).expect("valid");
        assert_eq!(
            catalogue.get("ed_attendances").expect("there").breakdowns,
            ["site"]
        );
        assert!(matches!(
            catalogue.get("nope"),
            Err(KpiError::UnknownKpi { .. })
        ));
    }

    #[test]
    fn manifest_rules_are_enforced() {
        let cases = [
            (KPI.replace("\"count\"", "\"%\""), "needs a denominator"),
            (
                KPI.replace("[\"site\"]", "[\"period\"]"),
                "breakdown 'period'",
            ),
            (KPI.replace("ed_attendances\"", "Ed\""), "snake_case"),
            (KPI.replace("\"xmr\"", "\"q\""), "unknown chart type"),
            (format!("{KPI}{KPI}"), "used twice"),
            (KPI.replace("owner", "owners"), "unknown field"),
        ];
        for (manifest, expected) in cases {
            let dir = tempfile::tempdir().expect("tempdir");
            write(dir.path(), MANIFEST, &manifest);
            write(dir.path(), "ed_attendances.sql", "SELECT 1");
            write(dir.path(), "Ed.sql", "SELECT 1");
            let err = Catalogue::load(dir.path()).unwrap_err().to_string();
            assert!(err.contains(expected), "expected '{expected}' in: {err}");
        }
    }
}
