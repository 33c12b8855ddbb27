//! An XmR chart as an Arrow record batch: one row per point, the columns other tools read.
//!
//! The CLI prints this batch as CSV or JSON and the SQL table function returns it, so the
//! column names, types and the rule "undefined numbers are null" are written once, here.
//! Column order: the contract's columns first (`date, value, rebase_group, mean, lpl, upl,
//! point_type, variation_icon, assurance_icon`), then the per-point flags.

use std::sync::{Arc, LazyLock};

use arrow::array::{
    ArrayRef, BooleanArray, Date32Array, Float64Array, Int8Array, Int64Array, StringArray,
};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use arrow::error::ArrowError;
use arrow::record_batch::RecordBatch;

use super::xmr::{SpecialCause, XmrChart};

/// The schema of [`points_batch`].
pub fn points_schema() -> SchemaRef {
    static SCHEMA: LazyLock<SchemaRef> = LazyLock::new(|| {
        let f =
            |name: &str, data_type: DataType, nullable: bool| Field::new(name, data_type, nullable);
        Arc::new(Schema::new(vec![
            f("date", DataType::Date32, false),
            f("value", DataType::Float64, true),
            f("rebase_group", DataType::Int64, false),
            f("mean", DataType::Float64, true),
            f("lpl", DataType::Float64, true),
            f("upl", DataType::Float64, true),
            f("point_type", DataType::Utf8, false),
            f("variation_icon", DataType::Utf8, true),
            f("assurance_icon", DataType::Utf8, true),
            f("special_cause_type", DataType::Utf8, false),
            f("outside_limits", DataType::Boolean, true),
            f("relative_to_mean", DataType::Int8, true),
            f("close_to_limits", DataType::Boolean, true),
            f("short_group_warning", DataType::Boolean, false),
        ]))
    });
    SCHEMA.clone()
}

/// NaN (undefined, e.g. the limits of a one-point group) becomes null.
fn defined(x: f64) -> Option<f64> {
    (!x.is_nan()).then_some(x)
}

/// The chart's points with their dates (days since 1970-01-01, one per point).
pub fn points_batch(dates: &[i32], chart: &XmrChart) -> Result<RecordBatch, ArrowError> {
    if dates.len() != chart.points.len() {
        return Err(ArrowError::InvalidArgumentError(format!(
            "{} dates for {} points",
            dates.len(),
            chart.points.len()
        )));
    }
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
