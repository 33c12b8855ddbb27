//! `bright spc`: a control chart of a CSV file — Making Data Count's XmR chart by default,
//! any of `--chart xmr|mr|p|pp|u|up|c|g|t|run`.
//!
//! The output columns are contracts other tools depend on (see `engine::spc::output`):
//! without `--chart`, the XmR columns as they have always been; with it, the columns every
//! chart type shares. This module only reads the file, maps dates to positions and rebase
//! dates to rows, and prints.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::PathBuf;

use anyhow::{Context, Result, bail};
use bright_engine::arrow::csv::WriterBuilder as CsvWriterBuilder;
use bright_engine::arrow::datatypes::Date32Type;
use bright_engine::arrow::json::{WriterBuilder as JsonWriterBuilder, writer::JsonArray};
use bright_engine::arrow::record_batch::RecordBatch;
use bright_engine::spc::attribute::{ChartKind, ControlChart, control_chart};
use bright_engine::spc::narrate::{Describe, Unit, narrate};
use bright_engine::spc::output::{chart_batch, points_batch};
use bright_engine::spc::suggest::suggest_rebase;
use bright_engine::spc::xmr::SHORT_GROUP;
use bright_engine::spc::{Improvement, Rules, SpcError, XmrChart, XmrOptions, xmr};
use chrono::NaiveDate;
use clap::{Args, ValueEnum};
use serde_json::{Value, json};

#[derive(Debug, Args)]
pub struct SpcArgs {
    /// The chart type: xmr, mr, p, pp (p′), u, up (u′), c, g, t or run. Without it, the
    /// Making Data Count XmR chart with its own columns.
    #[arg(long, value_name = "TYPE")]
    chart: Option<ChartKind>,
    /// CSV file with a `date,value` header (`date,numerator,denominator` for p, pp, u and
    /// up); ISO dates; an empty field is a missing point.
    #[arg(long)]
    input: PathBuf,
    /// Which way is better.
    #[arg(long, default_value = "increase")]
    improvement: Improvement,
    /// Target, for the assurance icon.
    #[arg(long)]
    target: Option<f64>,
    /// A date where a new process starts (repeatable); dates matching no row are ignored.
    #[arg(long, value_name = "YYYY-MM-DD")]
    rebase: Vec<NaiveDate>,
    /// Compute each segment's limits from its first N points (N ≥ 12 on the XmR chart).
    #[arg(long, value_name = "N")]
    fix_after_n_points: Option<usize>,
    /// Keep moving ranges of 3.267 × the mean or more (Making Data Count screens them).
    #[arg(long)]
    no_screen_outliers: bool,
    /// Points in a row for a trend.
    #[arg(long, default_value_t = 7)]
    trend_points: usize,
    /// Points in a row on one side of the mean for a shift.
    #[arg(long, default_value_t = 7)]
    shift_points: usize,
    /// Output format.
    #[arg(long, value_enum, default_value = "csv")]
    format: SpcFormat,
    /// The measure's name, for the JSON summary's narrative.
    #[arg(long, default_value = "This measure")]
    title: String,
    /// How values are shown in the narrative: %, count, minutes, ratio or £.
    #[arg(long, default_value = "count")]
    unit: Unit,
    /// The series' period, plural, for the narrative.
    #[arg(long, default_value = "periods")]
    periods: String,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum SpcFormat {
    Csv,
    Json,
}

/// One data row of the input, with the file line it came from.
struct Row {
    line: usize,
    date: NaiveDate,
    /// The numbers asked for, in order (`value`, or `numerator` and `denominator`).
    fields: Vec<Option<f64>>,
}

impl Row {
    fn value(&self) -> Option<f64> {
        self.fields.first().copied().flatten()
    }
}

fn unquote(field: &str) -> &str {
    let field = field.trim();
    field
        .strip_prefix('"')
        .and_then(|f| f.strip_suffix('"'))
        .unwrap_or(field)
}

/// Reads `date` and the `wanted` number columns, sorted by date; errors name the file line.
/// `date,value` must start the header; numerators and denominators are found by name, so
/// `bright kpi run`'s `date,value,numerator,denominator` feeds a p chart as it is.
fn read_series(path: &PathBuf, wanted: &[&str]) -> Result<Vec<Row>> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    let text = text.strip_prefix('\u{feff}').unwrap_or(&text);
    let mut lines = text.lines().enumerate();
    let header = lines.next().map(|(_, l)| l).unwrap_or_default();
    let names: Vec<&str> = header.split(',').map(unquote).collect();
    let positions: Option<Vec<usize>> = if wanted == ["value"] {
        // `date,value` first; further columns (`bright kpi run --format csv` adds the
        // numerator and denominator) are read past, so one command's output feeds the other.
        (names.get(..2) == Some(&["date", "value"][..])).then(|| vec![1])
    } else {
        (names.first() == Some(&"date"))
            .then(|| {
                wanted
                    .iter()
                    .map(|w| names.iter().position(|n| n == w))
                    .collect()
            })
            .flatten()
    };
    let Some(positions) = positions else {
        if wanted == ["value"] {
            bail!(
                "line 1: the header must start 'date,value', found '{}'",
                header.trim()
            );
        }
        bail!(
            "line 1: the header must start with 'date' and name the {} columns \
             (e.g. 'date,{}'), found '{}'",
            wanted.join(" and "),
            wanted.join(","),
            header.trim()
        );
    };
    let mut rows = Vec::new();
    for (index, line) in lines {
        let line_no = index + 1;
        if line.trim().is_empty() {
            continue;
        }
        let fields: Vec<&str> = line.split(',').map(unquote).collect();
        let (Some(&date), true) = (fields.first(), fields.len() == names.len()) else {
            bail!(
                "line {line_no}: expected {} fields ({}), found {}",
                names.len(),
                names.join(","),
                fields.len()
            );
        };
        let date = NaiveDate::parse_from_str(date, "%Y-%m-%d").map_err(|_| {
            anyhow::anyhow!("line {line_no}: cannot read date '{date}' (expected YYYY-MM-DD)")
        })?;
        let mut numbers = Vec::with_capacity(wanted.len());
        for (name, &at) in wanted.iter().zip(&positions) {
            let text = fields[at];
            numbers.push(if text.is_empty() {
                None
            } else {
                match text.parse::<f64>() {
                    Ok(v) if v.is_finite() => Some(v),
                    _ => bail!("line {line_no}: cannot read {name} '{text}' as a number"),
                }
            });
        }
        rows.push(Row {
            line: line_no,
            date,
            fields: numbers,
        });
    }
    rows.sort_by_key(|r| r.date);
    for pair in rows.windows(2) {
        if pair[0].date == pair[1].date {
            let (a, b) = (
                pair[0].line.min(pair[1].line),
                pair[0].line.max(pair[1].line),
            );
            bail!("duplicate date {} (lines {a} and {b})", pair[0].date);
        }
    }
    Ok(rows)
}

pub fn run(args: SpcArgs) -> Result<()> {
    let kind = args.chart.unwrap_or(ChartKind::Xmr);
    if let Some(n) = args.fix_after_n_points
        && n < kind.min_fix_after()
    {
        bail!(
            "--fix-after-n-points must be at least {} for {} chart, got {n}",
            kind.min_fix_after(),
            article(kind)
        );
    }
    if let Some(kind) = args.chart {
        return run_chart(kind, &args);
    }
    let rows = read_series(&args.input, &["value"])?;
    let values: Vec<Option<f64>> = rows.iter().map(Row::value).collect();
    let (rebase, mut warnings) = rebase_marks(&args, &rows);
    let options = options(&args);
    let chart = xmr(&values, &rebase, &options)?;
    let dates: Vec<NaiveDate> = rows.iter().map(|r| r.date).collect();
    for segment in chart.segments.iter().filter(|s| s.short_group_warning) {
        warnings.push(trial_limits(dates[segment.start], segment.rows));
    }
    for warning in &warnings {
        eprintln!("warning: {warning}");
    }
    let batch = points_batch(&day_numbers(&dates), &chart)?;
    print(args.format, &batch, || {
        let mut summary = summary(&chart, &dates, &options, &warnings);
        let suggestion = suggest_rebase(&values, &rebase, &options)?.map(|s| {
            json!({
                "date": dates[s.index].to_string(),
                "points": s.points,
                "side": if s.side > 0 { "above" } else { "below" },
                "mean": number(s.mean),
                "lpl": number(s.lpl),
                "upl": number(s.upl),
            })
        });
        summary["rebase_suggestion"] = suggestion.unwrap_or(Value::Null);
        summary["narrative"] = json!(narrate(&chart, &describe(&args)));
        Ok(summary)
    })
}

/// Writes the points as CSV, or as JSON beside the summary `summary` makes (only asked for
/// JSON).
fn print(
    format: SpcFormat,
    batch: &RecordBatch,
    summary: impl FnOnce() -> Result<Value>,
) -> Result<()> {
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    match format {
        SpcFormat::Csv => write_csv(&mut out, batch)?,
        SpcFormat::Json => {
            let body = json!({ "points": json_rows(batch)?, "summary": summary()? });
            serde_json::to_writer(&mut out, &body)?;
            writeln!(out)?;
        }
    }
    out.flush()?;
    Ok(())
}

/// How the narrative names the measure, its unit and periods, and its target.
fn describe(args: &SpcArgs) -> Describe<'_> {
    Describe {
        title: &args.title,
        unit: args.unit,
        periods: &args.periods,
        target: args.target,
    }
}

fn options(args: &SpcArgs) -> XmrOptions {
    XmrOptions {
        improvement: args.improvement,
        target: args.target,
        fix_after_n_points: args.fix_after_n_points,
        no_screen_outliers: args.no_screen_outliers,
        rules: Rules {
            trend_points: args.trend_points,
            shift_points: args.shift_points,
            two_in_three: true,
        },
    }
}

/// Which rows start a new process, and a warning for each rebase date that matches none.
fn rebase_marks(args: &SpcArgs, rows: &[Row]) -> (Vec<bool>, Vec<String>) {
    let marks = rows.iter().map(|r| args.rebase.contains(&r.date)).collect();
    let unmatched = args
        .rebase
        .iter()
        .filter(|d| !rows.iter().any(|r| r.date == **d))
        .map(|d| format!("rebase date {d} matches no row and was ignored"))
        .collect();
    (marks, unmatched)
}

fn trial_limits(start: NaiveDate, rows: usize) -> String {
    format!(
        "the segment from {start} has {rows} points, fewer than {SHORT_GROUP}: its limits are \
         trial limits"
    )
}

fn day_numbers(dates: &[NaiveDate]) -> Vec<i32> {
    dates
        .iter()
        .copied()
        .map(Date32Type::from_naive_date)
        .collect()
}

/// "an XmR", "a p", … for messages.
fn article(kind: ChartKind) -> String {
    let name = match kind {
        ChartKind::Xmr => "XmR",
        ChartKind::Mr => "mR",
        ChartKind::PPrime => "p′",
        ChartKind::UPrime => "u′",
        other => other.as_str(),
    };
    let vowel = matches!(kind, ChartKind::Xmr | ChartKind::Mr);
    format!("{} {name}", if vowel { "an" } else { "a" })
}

fn write_csv(out: &mut impl Write, batch: &RecordBatch) -> Result<()> {
    let mut writer = CsvWriterBuilder::new().with_header(true).build(out);
    writer.write(batch)?;
    Ok(())
}

/// The batch's rows as JSON objects, with nulls written out.
fn json_rows(batch: &RecordBatch) -> Result<Value> {
    let mut rows = Vec::new();
    {
        let mut writer = JsonWriterBuilder::new()
            .with_explicit_nulls(true)
            .build::<_, JsonArray>(&mut rows);
        writer.write(batch)?;
        writer.finish()?;
    }
    Ok(if rows.is_empty() {
        json!([])
    } else {
        serde_json::from_slice(&rows)?
    })
}

/// `bright spc --chart KIND`: the columns every chart type shares.
fn run_chart(kind: ChartKind, args: &SpcArgs) -> Result<()> {
    let wanted: &[&str] = if kind.needs_denominator() {
        &["numerator", "denominator"]
    } else {
        &["value"]
    };
    let rows = read_series(&args.input, wanted)?;
    let column = |i: usize| -> Vec<Option<f64>> { rows.iter().map(|r| r.fields[i]).collect() };
    let values = column(0);
    let denominators = kind.needs_denominator().then(|| column(1));
    let (rebase, mut warnings) = rebase_marks(args, &rows);
    if kind.needs_denominator() {
        for r in &rows {
            if r.fields[0].is_some() && r.fields[1].is_none_or(|d| d == 0.0) {
                warnings.push(format!(
                    "line {}: no denominator (or zero), so the point is missing",
                    r.line
                ));
            }
        }
    }
    let options = options(args);
    let chart = control_chart(kind, &values, denominators.as_deref(), &rebase, &options).map_err(
        |e| match (&e, e.index().and_then(|i| rows.get(i))) {
            (SpcError::OutOfRange { reason, .. }, Some(row)) => {
                anyhow::anyhow!("line {}: this point {reason}", row.line)
            }
            (_, Some(row)) => anyhow::anyhow!("line {}: {e}", row.line),
            _ => anyhow::Error::new(e),
        },
    )?;
    let dates: Vec<NaiveDate> = rows.iter().map(|r| r.date).collect();
    if kind == ChartKind::Xmr {
        for g in chart.groups.iter().filter(|g| g.rows < SHORT_GROUP) {
            warnings.push(trial_limits(dates[g.start], g.rows));
        }
    }
    for warning in &warnings {
        eprintln!("warning: {warning}");
    }
    let batch = chart_batch(&day_numbers(&dates), &chart)?;
    print(args.format, &batch, || {
        let mut summary = chart_summary(&chart, &dates, &options, &warnings);
        summary["narrative"] = json!(chart.narrate(&describe(args)));
        Ok(summary)
    })
}

/// What `--format json` says of a chart beyond its points: per process, its rows, lines and
/// run analysis.
fn chart_summary(
    chart: &ControlChart,
    dates: &[NaiveDate],
    options: &XmrOptions,
    warnings: &[String],
) -> Value {
    let groups: Vec<Value> = chart
        .groups
        .iter()
        .map(|g| {
            let points = &chart.points[g.start..g.start + g.rows];
            let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
            for p in points {
                *counts.entry(p.point_type.as_str()).or_default() += 1;
            }
            let last = &points[points.len() - 1];
            json!({
                "rebase_group": g.rebase_group,
                "start": dates[g.start].to_string(),
                "end": dates[g.start + g.rows - 1].to_string(),
                "rows": g.rows,
                "baseline_rows": g.baseline_rows,
                "mean": number(last.centre),
                "lpl": number(last.lcl),
                "upl": number(last.ucl),
                "useful_points": g.runs.useful,
                "longest_run": g.runs.longest_run,
                "longest_run_limit": g.runs.longest_run_limit,
                "crossings": g.runs.crossings,
                "crossings_limit": g.runs.crossings_limit,
                "runs_signal": g.runs.signal,
                "point_types": counts,
            })
        })
        .collect();
    json!({
        "chart": chart.kind.as_str(),
        "centre_line": chart.kind.centre_line().as_str(),
        "improvement": options.improvement.as_str(),
        "target": options.target,
        "variation_icon": chart.variation_icon.map(|i| i.as_str()),
        "assurance_icon": chart.assurance_icon.map(|i| i.as_str()),
        "warnings": warnings,
        "groups": groups,
    })
}

fn number(x: f64) -> Value {
    if x.is_nan() { Value::Null } else { json!(x) }
}

fn summary(
    chart: &XmrChart,
    dates: &[NaiveDate],
    options: &XmrOptions,
    warnings: &[String],
) -> Value {
    let segments: Vec<Value> = chart
        .segments
        .iter()
        .map(|s| {
            let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
            for p in &chart.points[s.start..s.start + s.rows] {
                *counts.entry(p.point_type.as_str()).or_default() += 1;
            }
            json!({
                "rebase_group": s.rebase_group,
                "start": dates[s.start].to_string(),
                "end": dates[s.start + s.rows - 1].to_string(),
                "rows": s.rows,
                "baseline_values": s.baseline_values,
                "mean": number(s.mean),
                "mean_moving_range": number(s.mean_moving_range),
                "lpl": number(s.lpl),
                "upl": number(s.upl),
                "short_group_warning": s.short_group_warning,
                "variation_type": s.variation.as_str(),
                "point_types": counts,
            })
        })
        .collect();
    json!({
        "improvement": options.improvement.as_str(),
        "target": options.target,
        "variation_icon": chart.variation_icon.map(|i| i.as_str()),
        "assurance_icon": chart.assurance_icon.map(|i| i.as_str()),
        "warnings": warnings,
        "segments": segments,
    })
}
