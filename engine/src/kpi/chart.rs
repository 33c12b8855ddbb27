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
use crate::spc::narrate::{Describe, Reading, narrate_points};
use crate::spc::{AssuranceIcon, Rules, SpcError, VariationIcon, XmrOptions, xmr};

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

/// One series of a KPI charted as its manifest says.
#[derive(Debug, Clone, PartialEq)]
pub struct KpiChart {
    /// One per period, in time order.
    pub points: Vec<Reading>,
    /// From the latest point.
    pub variation_icon: Option<VariationIcon>,
    /// With a target and a direction of improvement.
    pub assurance_icon: Option<AssuranceIcon>,
}

impl KpiChart {
    /// The chart in one or two sentences (see [`narrate_points`]).
    pub fn narrate(&self, about: &Describe<'_>) -> String {
        narrate_points(&self.points, self.assurance_icon, about)
    }
}

/// Charts one series of `kpi` (its periods in time order): `values` for XmR and c charts,
/// `numerators` over `denominators` for p and u charts; `rebase[i]` starts a new process at
/// period `i`.
pub fn chart_kpi(
    kpi: &Kpi,
    values: &[Option<f64>],
    numerators: &[Option<f64>],
    denominators: &[Option<f64>],
    rebase: &[bool],
) -> Result<KpiChart, ChartError> {
    let options = XmrOptions {
        improvement: kpi.improvement,
        target: kpi.target.as_ref().map(|t| t.value),
        fix_after_n_points: None,
        no_screen_outliers: false,
        rules: Rules::default(),
    };
    match kpi.chart {
        ChartKind::Run => Err(ChartError::RunChart(kpi.id.to_string())),
        ChartKind::Xmr => {
            let chart = xmr(values, rebase, &options)?;
            Ok(KpiChart {
                points: chart.points.iter().map(Reading::from).collect(),
                variation_icon: chart.variation_icon,
                assurance_icon: chart.assurance_icon,
            })
        }
        kind => {
            // Attribute charts count: p and u take numerators over denominators, c and the
            // rest the value itself.
            let (plotted, over) = if kind.needs_denominator() {
                (numerators, Some(denominators))
            } else {
                (values, None)
            };
            let chart = control_chart(kind, plotted, over, rebase, &options)?;
            Ok(KpiChart {
                points: chart.points.iter().map(Reading::from).collect(),
                variation_icon: chart.variation_icon,
                assurance_icon: chart.assurance_icon,
            })
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
    // The series comes sorted by breakdown, then date: each run of equal keys is one chart.
    let mut points: Vec<Reading> = Vec::with_capacity(batch.num_rows());
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
        let chart = chart_kpi(
            kpi,
            &values[rows.clone()],
            &numerators[rows.clone()],
            &denominators[rows.clone()],
            &marks,
        )?;
        let (charted, variation, assurance) =
            (chart.points, chart.variation_icon, chart.assurance_icon);
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
            points.iter().map(|p| Some(p.point_type.as_str())).collect(),
        ),
        text(
            "special_cause_type",
            points
                .iter()
                .map(|p| Some(p.special_cause.as_str()))
                .collect(),
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
