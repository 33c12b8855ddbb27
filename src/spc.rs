//! `bright spc`: a Making Data Count XmR chart of a `date,value` CSV file.
//!
//! The output columns are a contract other tools depend on (see `engine::spc::output`); this
//! module only reads the file, maps dates to positions and rebase dates to rows, and prints.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::PathBuf;

use anyhow::{Context, Result, bail};
use bright_engine::arrow::csv::WriterBuilder as CsvWriterBuilder;
use bright_engine::arrow::datatypes::Date32Type;
use bright_engine::arrow::json::{WriterBuilder as JsonWriterBuilder, writer::JsonArray};
use bright_engine::spc::narrate::{Describe, Unit, narrate};
use bright_engine::spc::output::points_batch;
use bright_engine::spc::suggest::suggest_rebase;
use bright_engine::spc::{Improvement, Rules, XmrChart, XmrOptions, xmr};
use chrono::NaiveDate;
use clap::{Args, ValueEnum};
use serde_json::{Value, json};

#[derive(Debug, Args)]
pub struct SpcArgs {
    /// CSV file with a `date,value` header; ISO dates; an empty value is a missing point.
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
    /// Compute each segment's limits from its first N points (N ≥ 12).
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
    value: Option<f64>,
}

fn unquote(field: &str) -> &str {
    let field = field.trim();
    field
        .strip_prefix('"')
        .and_then(|f| f.strip_suffix('"'))
        .unwrap_or(field)
}

/// Reads `date,value` rows, sorted by date; errors name the file line.
fn read_series(path: &PathBuf) -> Result<Vec<Row>> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    let text = text.strip_prefix('\u{feff}').unwrap_or(&text);
    let mut lines = text.lines().enumerate();
    let header = lines.next().map(|(_, l)| l).unwrap_or_default();
    let names: Vec<&str> = header.split(',').map(unquote).collect();
    // `date,value` first; further columns (`bright kpi run --format csv` adds the numerator
    // and denominator) are read past, so one command's output feeds the other.
    if names.get(..2) != Some(&["date", "value"][..]) {
        bail!(
            "line 1: the header must start 'date,value', found '{}'",
            header.trim()
        );
    }
    let mut rows = Vec::new();
    for (index, line) in lines {
        let line_no = index + 1;
        if line.trim().is_empty() {
            continue;
        }
        let fields: Vec<&str> = line.split(',').map(unquote).collect();
        let (Some(&date), Some(&value), true) =
            (fields.first(), fields.get(1), fields.len() == names.len())
        else {
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
        let value = if value.is_empty() {
            None
        } else {
            match value.parse::<f64>() {
                Ok(v) if v.is_finite() => Some(v),
                _ => bail!("line {line_no}: cannot read value '{value}' as a number"),
            }
        };
        rows.push(Row {
            line: line_no,
            date,
            value,
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
    if let Some(n) = args.fix_after_n_points
        && n < 12
    {
        bail!("--fix-after-n-points must be at least 12, got {n}");
    }
    let rows = read_series(&args.input)?;
    let values: Vec<Option<f64>> = rows.iter().map(|r| r.value).collect();
    let rebase: Vec<bool> = rows.iter().map(|r| args.rebase.contains(&r.date)).collect();
    let mut warnings: Vec<String> = args
        .rebase
        .iter()
        .filter(|d| !rows.iter().any(|r| r.date == **d))
        .map(|d| format!("rebase date {d} matches no row and was ignored"))
        .collect();
    let options = XmrOptions {
        improvement: args.improvement,
        target: args.target,
        fix_after_n_points: args.fix_after_n_points,
        no_screen_outliers: args.no_screen_outliers,
        rules: Rules {
            trend_points: args.trend_points,
            shift_points: args.shift_points,
            two_in_three: true,
        },
    };
    let chart = xmr(&values, &rebase, &options)?;
    let dates: Vec<NaiveDate> = rows.iter().map(|r| r.date).collect();
    for segment in chart.segments.iter().filter(|s| s.short_group_warning) {
        warnings.push(format!(
            "the segment from {} has {} points, fewer than 13: its limits are trial limits",
            dates[segment.start], segment.rows
        ));
    }
    for warning in &warnings {
        eprintln!("warning: {warning}");
    }
    let day_numbers: Vec<i32> = dates
        .iter()
        .copied()
        .map(Date32Type::from_naive_date)
        .collect();
    let batch = points_batch(&day_numbers, &chart)?;
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    match args.format {
        SpcFormat::Csv => {
            let mut writer = CsvWriterBuilder::new().with_header(true).build(&mut out);
            writer.write(&batch)?;
        }
        SpcFormat::Json => {
            let mut points = Vec::new();
            {
                let mut writer = JsonWriterBuilder::new()
                    .with_explicit_nulls(true)
                    .build::<_, JsonArray>(&mut points);
                writer.write(&batch)?;
                writer.finish()?;
            }
            let points: Value = if points.is_empty() {
                json!([])
            } else {
                serde_json::from_slice(&points)?
            };
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
            let about = Describe {
                title: &args.title,
                unit: args.unit,
                periods: &args.periods,
                target: args.target,
            };
            summary["rebase_suggestion"] = suggestion.unwrap_or(Value::Null);
            summary["narrative"] = json!(narrate(&chart, &about));
            let body = json!({ "points": points, "summary": summary });
            serde_json::to_writer(&mut out, &body)?;
            writeln!(out)?;
        }
    }
    out.flush()?;
    Ok(())
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
