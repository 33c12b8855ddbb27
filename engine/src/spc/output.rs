//! Charts as Arrow record batches: one row per point, the columns other tools read.
//!
//! The CLI prints these batches as CSV or JSON and the SQL table function returns one, so the
//! column names, types and the rule "undefined numbers are null" are written once, here.
//! - [`points_batch`]: Making Data Count's XmR chart as `bright spc` without `--chart` and
//!   `spc_xmr` print it: `date, value, rebase_group, mean, lpl, upl, point_type,
//!   variation_icon, assurance_icon`, then the per-point flags.
//! - [`chart_batch`]: any chart type, as `bright spc --chart` prints it: `date, value,
//!   rebase_group, mean, lpl, upl, lower_two_sigma, upper_two_sigma, outside_limits`, the run
//!   analysis of the point's group (`useful_points, longest_run, longest_run_limit,
//!   crossings, crossings_limit, runs_signal`), then `chart, centre_line, point_type,
//!   special_cause_type, variation_icon, assurance_icon`.

use std::sync::{Arc, LazyLock};

use arrow::array::{
    ArrayRef, BooleanArray, Date32Array, Float64Array, Int8Array, Int64Array, StringArray,
};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use arrow::error::ArrowError;
use arrow::record_batch::RecordBatch;

use super::attribute::ControlChart;
use super::xmr::{SpecialCause, XmrChart};

/// The schema of [`points_batch`].
pub fn points_schema() -> SchemaRef {
    static SCHEMA: LazyLock<SchemaRef> = LazyLock::new(|| {
        let f =
            |name: &str, data_type: DataType, nullable: bool| Field::new(name, data_type, nullable);
        Arc::new(Schema::new(
            leading_fields()
                .into_iter()
                .chain([
                    f("point_type", DataType::Utf8, false),
                    f("variation_icon", DataType::Utf8, true),
                    f("assurance_icon", DataType::Utf8, true),
                    f("special_cause_type", DataType::Utf8, false),
                    f("outside_limits", DataType::Boolean, true),
                    f("relative_to_mean", DataType::Int8, true),
                    f("close_to_limits", DataType::Boolean, true),
                    f("short_group_warning", DataType::Boolean, false),
                ])
                .collect::<Vec<_>>(),
        ))
    });
    SCHEMA.clone()
}

/// The columns both contracts start with: the point and its centre line and limits.
fn leading_fields() -> [Field; 6] {
    [
        Field::new("date", DataType::Date32, false),
        Field::new("value", DataType::Float64, true),
        Field::new("rebase_group", DataType::Int64, false),
        Field::new("mean", DataType::Float64, true),
        Field::new("lpl", DataType::Float64, true),
        Field::new("upl", DataType::Float64, true),
    ]
}

/// NaN (undefined, e.g. the limits of a one-point group) becomes null.
fn defined(x: f64) -> Option<f64> {
    (!x.is_nan()).then_some(x)
}

/// A batch needs one date per point.
fn one_date_a_point(dates: usize, points: usize) -> Result<(), ArrowError> {
    if dates != points {
        return Err(ArrowError::InvalidArgumentError(format!(
            "{dates} dates for {points} points"
        )));
    }
    Ok(())
}

/// The chart's points with their dates (days since 1970-01-01, one per point).
pub fn points_batch(dates: &[i32], chart: &XmrChart) -> Result<RecordBatch, ArrowError> {
    one_date_a_point(dates.len(), chart.points.len())?;
    let p = &chart.points;
    let n = p.len();
    let variation = chart.variation_icon.map(|i| i.as_str());
    let assurance = chart.assurance_icon.map(|i| i.as_str());
    let columns: Vec<ArrayRef> = vec![
        Arc::new(Date32Array::from(dates.to_vec())),
        Arc::new(Float64Array::from_iter(p.iter().map(|p| p.value))),
        Arc::new(Int64Array::from_iter_values(
            p.iter().map(|p| i64::from(p.rebase_group)),
        )),
        Arc::new(Float64Array::from_iter(p.iter().map(|p| defined(p.mean)))),
        Arc::new(Float64Array::from_iter(p.iter().map(|p| defined(p.lpl)))),
        Arc::new(Float64Array::from_iter(p.iter().map(|p| defined(p.upl)))),
        Arc::new(StringArray::from_iter_values(
            p.iter().map(|p| p.point_type.as_str()),
        )),
        Arc::new(StringArray::from(vec![variation; n])),
        Arc::new(StringArray::from(vec![assurance; n])),
        Arc::new(StringArray::from_iter_values(
            p.iter().map(|p| SpecialCause::as_str(p.special_cause)),
        )),
        Arc::new(BooleanArray::from_iter(p.iter().map(|p| p.outside_limits))),
        Arc::new(Int8Array::from_iter(p.iter().map(|p| p.relative_to_mean))),
        Arc::new(BooleanArray::from_iter(p.iter().map(|p| p.close_to_limits))),
        Arc::new(BooleanArray::from_iter(
            p.iter().map(|p| Some(p.short_group_warning)),
        )),
    ];
    RecordBatch::try_new(points_schema(), columns)
}

/// The schema of [`chart_batch`].
pub fn chart_schema() -> SchemaRef {
    static SCHEMA: LazyLock<SchemaRef> = LazyLock::new(|| {
        let f =
            |name: &str, data_type: DataType, nullable: bool| Field::new(name, data_type, nullable);
        Arc::new(Schema::new(
            leading_fields()
                .into_iter()
                .chain([
                    f("lower_two_sigma", DataType::Float64, true),
                    f("upper_two_sigma", DataType::Float64, true),
                    f("outside_limits", DataType::Boolean, false),
                    f("useful_points", DataType::Int64, false),
                    f("longest_run", DataType::Int64, true),
                    f("longest_run_limit", DataType::Int64, true),
                    f("crossings", DataType::Int64, true),
                    f("crossings_limit", DataType::Int64, true),
                    f("runs_signal", DataType::Boolean, false),
                    f("chart", DataType::Utf8, false),
                    f("centre_line", DataType::Utf8, false),
                    f("point_type", DataType::Utf8, false),
                    f("special_cause_type", DataType::Utf8, false),
                    f("variation_icon", DataType::Utf8, true),
                    f("assurance_icon", DataType::Utf8, true),
                ])
                .collect::<Vec<_>>(),
        ))
    });
    SCHEMA.clone()
}

/// A chart of any kind with its dates (days since 1970-01-01, one per point).
pub fn chart_batch(dates: &[i32], chart: &ControlChart) -> Result<RecordBatch, ArrowError> {
    one_date_a_point(dates.len(), chart.points.len())?;
    let p = &chart.points;
    let n = p.len();
    // Each group's run analysis, repeated on its rows.
    let runs: Vec<_> = chart
        .groups
        .iter()
        .flat_map(|g| std::iter::repeat_n(g.runs, g.rows))
        .collect();
    let count = |f: fn(&super::run::Runs) -> Option<usize>| -> ArrayRef {
        Arc::new(Int64Array::from_iter(
            runs.iter().map(|r| f(r).map(|v| v as i64)),
        ))
    };
    let float = |f: fn(&super::attribute::ControlPoint) -> f64| -> ArrayRef {
        Arc::new(Float64Array::from_iter(p.iter().map(|p| defined(f(p)))))
    };
    let variation = chart.variation_icon.map(|i| i.as_str());
    let assurance = chart.assurance_icon.map(|i| i.as_str());
    let columns: Vec<ArrayRef> = vec![
        Arc::new(Date32Array::from(dates.to_vec())),
        Arc::new(Float64Array::from_iter(p.iter().map(|p| p.value))),
        Arc::new(Int64Array::from_iter_values(
            p.iter().map(|p| i64::from(p.rebase_group)),
        )),
        float(|p| p.centre),
        float(|p| p.lcl),
        float(|p| p.ucl),
        float(|p| p.lower_two_sigma),
        float(|p| p.upper_two_sigma),
        Arc::new(BooleanArray::from_iter(
            p.iter().map(|p| Some(p.outside_limits)),
        )),
        count(|r| Some(r.useful)),
        count(|r| r.longest_run),
        count(|r| r.longest_run_limit),
        count(|r| r.crossings),
        count(|r| r.crossings_limit),
        Arc::new(BooleanArray::from_iter(runs.iter().map(|r| Some(r.signal)))),
        Arc::new(StringArray::from(vec![chart.kind.as_str(); n])),
        Arc::new(StringArray::from(vec![
            chart.kind.centre_line().as_str();
            n
        ])),
        Arc::new(StringArray::from_iter_values(
            p.iter().map(|p| p.point_type.as_str()),
        )),
        Arc::new(StringArray::from_iter_values(
            p.iter().map(|p| p.special_cause.as_str()),
        )),
        Arc::new(StringArray::from(vec![variation; n])),
        Arc::new(StringArray::from(vec![assurance; n])),
    ];
    RecordBatch::try_new(chart_schema(), columns)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spc::{XmrOptions, xmr};
    use arrow::array::Array;

    #[test]
    fn undefined_numbers_are_null_and_icons_repeat() {
        let chart = xmr(
            &[Some(1.0), None, Some(3.0)],
            &[false; 3],
            &XmrOptions::default(),
        )
        .unwrap();
        let batch = points_batch(&[0, 1, 2], &chart).unwrap();
        assert_eq!(batch.num_rows(), 3);
        let value = batch
            .column(1)
            .as_any()
            .downcast_ref::<Float64Array>()
            .unwrap();
        assert!(value.is_null(1));
        // One value either side of a gap: no moving range, so no limits.
        let lpl = batch
            .column(4)
            .as_any()
            .downcast_ref::<Float64Array>()
            .unwrap();
        assert_eq!(lpl.null_count(), 3);
        let icon = batch
            .column(7)
            .as_any()
            .downcast_ref::<StringArray>()
            .unwrap();
        assert!((0..3).all(|i| icon.value(i) == "common_cause"));
        assert!(points_batch(&[0], &chart).is_err());
    }
}
