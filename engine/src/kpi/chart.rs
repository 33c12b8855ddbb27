//! A KPI's series charted the way its manifest says: its chart type (XmR for most, p for
//! proportions, c for counts, any of `bright spc --chart`'s), its direction of improvement
//! and its target.
//!
//! The input is a series as [`crate::query::QueryEngine::kpi_series`] returns it (`date`, the
//! breakdown columns, `value`, `numerator`, `denominator`, sorted by breakdown then date);
//! each breakdown's rows are one chart. The output is one row per point: the breakdown, the
//! date, value, numerator, denominator and chart type, then every other column `bright spc
//! --chart` prints (centre line, limits, two-sigma lines, the group's run analysis, the
//! point's type and rule, the chart's icons).

use std::sync::Arc;

use arrow::array::{Array, ArrayRef, AsArray, Float64Array};
use arrow::compute::{cast, concat_batches};
use arrow::datatypes::{DataType, Date32Type, Field, Schema};
use arrow::error::ArrowError;
use arrow::record_batch::RecordBatch;
use chrono::NaiveDate;

use super::{DENOMINATOR, Kpi, NUMERATOR, VALUE};
use crate::spc::attribute::{ControlChart, control_chart};
use crate::spc::output::{chart_batch, chart_schema};
use crate::spc::{Rules, SpcError, XmrOptions};

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
}

/// Charts one series of `kpi` (its periods in time order) with the chart type its manifest
/// names, through the same code as `bright spc --chart`: `values` for XmR, c and run charts,
/// `numerators` over `denominators` for p and u charts; `rebase[i]` starts a new process at
/// period `i`.
pub fn chart_kpi(
    kpi: &Kpi,
    values: &[Option<f64>],
    numerators: &[Option<f64>],
    denominators: &[Option<f64>],
    rebase: &[bool],
) -> Result<ControlChart, ChartError> {
    let options = XmrOptions {
        improvement: kpi.improvement,
        target: kpi.target.as_ref().map(|t| t.value),
        fix_after_n_points: None,
        no_screen_outliers: false,
        rules: Rules::default(),
    };
    let (plotted, over) = if kpi.chart.needs_denominator() {
        (numerators, Some(denominators))
    } else {
        (values, None)
    };
    Ok(control_chart(kpi.chart, plotted, over, rebase, &options)?)
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
    let mut charts: Vec<RecordBatch> = Vec::new();
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
        charts.push(chart_batch(&dates.values()[rows], &chart)?);
        start = end;
    }
    let charted = concat_batches(&chart_schema(), &charts)?;

    // The breakdown, the date and value with the numerator and denominator they come from,
    // then every column of `bright spc --chart` after its value.
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
    let chart_schema = charted.schema();
    let column = |name: &str| -> Result<(Field, ArrayRef), ChartError> {
        let (_, field) = chart_schema
            .column_with_name(name)
            .ok_or_else(|| ChartError::MissingColumn(name.to_string()))?;
        let data = charted
            .column_by_name(name)
            .ok_or_else(|| ChartError::MissingColumn(name.to_string()))?;
        Ok((field.clone(), data.clone()))
    };
    let mut rest = vec![
        column("date")?,
        column("value")?,
        float("numerator", numerators),
        float("denominator", denominators),
        column("chart")?,
    ];
    for field in chart_schema.fields() {
        if !["date", "value", "chart"].contains(&field.name().as_str()) {
            rest.push(column(field.name())?);
        }
    }
    for (field, column) in rest {
        fields.push(field);
        columns.push(column);
    }
    Ok(RecordBatch::try_new(
        Arc::new(Schema::new(fields)),
        columns,
    )?)
}
