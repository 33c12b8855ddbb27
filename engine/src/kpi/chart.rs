//! A KPI's series charted the way its manifest says: its chart type (XmR for most, p for
//! proportions, c for counts), its direction of improvement and its target.
//!
//! The input is a series as [`crate::query::QueryEngine::kpi_series`] returns it (`date`, the
//! breakdown columns, `value`, `numerator`, `denominator`, sorted by breakdown then date);
//! each breakdown's rows are one chart. The output is one row per point: the breakdown, the
//! date and value, then the centre line, the limits, the point's type and rule, and the
//! chart's icons (the same on every row of a chart).

use std::sync::Arc;

use arrow::array::{Array, ArrayRef, AsArray, Date32Array, Float64Array, Int64Array, StringArray};
use arrow::compute::{cast, concat_batches};
use arrow::datatypes::{DataType, Date32Type, Field, Schema};
use arrow::error::ArrowError;
use arrow::record_batch::RecordBatch;
use chrono::NaiveDate;

use super::{DENOMINATOR, Kpi, NUMERATOR, VALUE};
use crate::spc::attribute::{ChartKind, control_chart};
use crate::spc::{Rules, SpcError, XmrOptions, xmr};

/// Why a series could not be charted.
#[derive(Debug, thiserror::Error)]
pub enum ChartError {
    #[error(transparent)]
    Spc(#[from] SpcError),
    #[error(transparent)]
    Arrow(#[from] ArrowError),
    /// The series lacks a column it must have.
    #[error("the series has no column '{0}'")]
    MissingColumn(String),
    /// Run charts are judged by runs, not limits, and have no rows of this shape.
    #[error("KPI '{0}' asks for a run chart, which `bright spc` draws from its series")]
    RunChart(String),
}

/// One point of a chart, whatever its kind.
struct Charted {
    value: Option<f64>,
    rebase_group: u32,
    mean: f64,
    lpl: f64,
    upl: f64,
    point_type: &'static str,
    special_cause: &'static str,
}

impl From<&crate::spc::xmr::Point> for Charted {
    fn from(p: &crate::spc::xmr::Point) -> Self {
        Charted {
            value: p.value,
            rebase_group: p.rebase_group,
            mean: p.mean,
            lpl: p.lpl,
            upl: p.upl,
            point_type: p.point_type.as_str(),
            special_cause: p.special_cause.as_str(),
        }
    }
}

impl From<&crate::spc::attribute::ControlPoint> for Charted {
    fn from(p: &crate::spc::attribute::ControlPoint) -> Self {
        Charted {
            value: p.value,
            rebase_group: p.rebase_group,
            mean: p.centre,
            lpl: p.lcl,
            upl: p.ucl,
            point_type: p.point_type.as_str(),
            special_cause: p.special_cause.as_str(),
        }
    }
}

fn defined(x: f64) -> Option<f64> {
    (!x.is_nan()).then_some(x)
}

fn float_column(batch: &RecordBatch, name: &str) -> Result<Vec<Option<f64>>, ChartError> {
    let column = batch
        .column_by_name(name)
        .ok_or_else(|| ChartError::MissingColumn(name.to_string()))?;
    let floats = cast(column, &DataType::Float64)?;
    Ok(floats
        .as_primitive::<arrow::datatypes::Float64Type>()
        .iter()
        .collect())
}

/// Charts every breakdown of `series` as `kpi`'s manifest says; `rebase` dates start new
/// processes (limits recomputed from there).
pub fn chart_series(
    kpi: &Kpi,
    series: &[RecordBatch],
    by: &[String],
    rebase: &[NaiveDate],
) -> Result<RecordBatch, ChartError> {
    if kpi.chart == ChartKind::Run {
        return Err(ChartError::RunChart(kpi.id.to_string()));
    }
    let schema = series
        .first()
        .map(|b| b.schema())
        .ok_or_else(|| ChartError::MissingColumn("date".into()))?;
    let batch = concat_batches(&schema, series)?;
    let dates = cast(
        batch
            .column_by_name("date")
            .ok_or_else(|| ChartError::MissingColumn("date".into()))?,
        &DataType::Date32,
    )?;
    let dates = dates.as_primitive::<Date32Type>();
    let values = float_column(&batch, VALUE)?;
    let numerators = float_column(&batch, NUMERATOR)?;
    let denominators = float_column(&batch, DENOMINATOR)?;
    let keys: Vec<ArrayRef> = by
        .iter()
        .map(|b| {
            let column = batch
                .column_by_name(b)
                .ok_or_else(|| ChartError::MissingColumn(b.clone()))?;
            Ok(cast(column, &DataType::Utf8)?)
        })
        .collect::<Result<_, ChartError>>()?;
    let key_of = |row: usize| -> Vec<Option<String>> {
        keys.iter()
            .map(|k| {
                let k = k.as_string::<i32>();
                (!k.is_null(row)).then(|| k.value(row).to_string())
            })
            .collect()
    };
    let options = XmrOptions {
        improvement: kpi.improvement,
        target: kpi.target.as_ref().map(|t| t.value),
        fix_after_n_points: None,
        no_screen_outliers: false,
        rules: Rules::default(),
    };

    // The series comes sorted by breakdown, then date: each run of equal keys is one chart.
    let mut points: Vec<Charted> = Vec::with_capacity(batch.num_rows());
    let mut icons: Vec<(Option<&'static str>, Option<&'static str>)> = Vec::new();
    let mut start = 0;
    while start < batch.num_rows() {
        let key = key_of(start);
        let end = (start..batch.num_rows())
            .find(|&row| key_of(row) != key)
            .unwrap_or(batch.num_rows());
        let rows = start..end;
        let marks: Vec<bool> = rows
            .clone()
            .map(|row| {
                Date32Type::to_naive_date_opt(dates.value(row))
                    .is_some_and(|day| rebase.contains(&day))
            })
            .collect();
        let (charted, variation, assurance): (Vec<Charted>, _, _) = if kpi.chart == ChartKind::Xmr {
            let chart = xmr(&values[rows.clone()], &marks, &options)?;
            let charted = chart.points.iter().map(Charted::from).collect();
            (charted, chart.variation_icon, chart.assurance_icon)
        } else {
            // Attribute charts count: p and u take numerators over denominators, c and the
            // rest the value itself.
            let (plotted, over) = if kpi.chart.needs_denominator() {
                (&numerators[rows.clone()], Some(&denominators[rows.clone()]))
            } else {
                (&values[rows.clone()], None)
            };
            let chart = control_chart(kpi.chart, plotted, over, &marks, &options)?;
            let charted = chart.points.iter().map(Charted::from).collect();
            (charted, chart.variation_icon, chart.assurance_icon)
        };
        let (variation, assurance) = (variation.map(|i| i.as_str()), assurance.map(|i| i.as_str()));
        icons.extend(std::iter::repeat_n((variation, assurance), charted.len()));
        points.extend(charted);
        start = end;
    }

    let mut fields = Vec::new();
    let mut columns: Vec<ArrayRef> = Vec::new();
    for (name, key) in by.iter().zip(&keys) {
        fields.push(Field::new(name, DataType::Utf8, true));
        columns.push(key.clone());
    }
    let float = |name: &str, data: Vec<Option<f64>>| {
        (
            Field::new(name, DataType::Float64, true),
            Arc::new(Float64Array::from(data)) as ArrayRef,
        )
    };
    let text = |name: &str, data: Vec<Option<&'static str>>| {
        (
            Field::new(name, DataType::Utf8, true),
            Arc::new(StringArray::from(data)) as ArrayRef,
        )
    };
    let rest = [
        (
            Field::new("date", DataType::Date32, false),
            Arc::new(Date32Array::from(dates.values().to_vec())) as ArrayRef,
        ),
        float("value", points.iter().map(|p| p.value).collect()),
        float("numerator", numerators),
        float("denominator", denominators),
        text("chart", vec![Some(kpi.chart.as_str()); points.len()]),
        (
            Field::new("rebase_group", DataType::Int64, false),
            Arc::new(Int64Array::from_iter_values(
                points.iter().map(|p| i64::from(p.rebase_group)),
            )) as ArrayRef,
        ),
        float("mean", points.iter().map(|p| defined(p.mean)).collect()),
        float("lpl", points.iter().map(|p| defined(p.lpl)).collect()),
        float("upl", points.iter().map(|p| defined(p.upl)).collect()),
        text(
            "point_type",
            points.iter().map(|p| Some(p.point_type)).collect(),
        ),
        text(
            "special_cause_type",
            points.iter().map(|p| Some(p.special_cause)).collect(),
        ),
        text("variation_icon", icons.iter().map(|i| i.0).collect()),
        text("assurance_icon", icons.iter().map(|i| i.1).collect()),
    ];
    for (field, column) in rest {
        fields.push(field);
        columns.push(column);
    }
    Ok(RecordBatch::try_new(
        Arc::new(Schema::new(fields)),
        columns,
    )?)
}
