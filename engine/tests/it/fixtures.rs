//! Rows for any canonical table, built from its schema, so every table can be written and read
//! back without hand-written fixtures per table.

use std::sync::Arc;

use bright_engine::arrow::array::{
    ArrayRef, BooleanArray, Date32Array, Decimal128Array, Float64Array, Int8Array, Int32Array,
    Int64Array, StringArray, TimestampMicrosecondArray,
};
use bright_engine::arrow::datatypes::{DataType, TimeUnit};
use bright_engine::arrow::record_batch::RecordBatch;
use bright_engine::schema::{MONEY_PRECISION, MONEY_SCALE, Table, UTC};

/// 2025-01-01 in days since the Unix epoch.
pub const DAY0: i32 = 20_089;

/// `rows` rows of `table`; row `i` falls on day `DAY0 + i % days` and its text columns read
/// `"{tag}-{i}"`, so tests can tell batches and rows apart.
pub fn rows(table: Table, rows: usize, days: i32, tag: &str) -> RecordBatch {
    let schema = table.schema();
    let columns: Vec<ArrayRef> = schema
        .fields()
        .iter()
        .map(|field| -> ArrayRef {
            let day = |i: usize| DAY0 + (i as i32) % days;
            match field.data_type() {
                DataType::Utf8 => Arc::new(StringArray::from_iter_values(
                    (0..rows).map(|i| format!("{tag}-{i}")),
                )),
                DataType::Timestamp(TimeUnit::Microsecond, _) => Arc::new(
                    TimestampMicrosecondArray::from_iter_values(
                        (0..rows).map(|i| i64::from(day(i)) * 86_400_000_000 + 3_600_000_000),
                    )
                    .with_timezone(UTC),
                ),
                DataType::Date32 => Arc::new(Date32Array::from_iter_values((0..rows).map(day))),
                DataType::Int8 => Arc::new(Int8Array::from_iter_values(
                    (0..rows).map(|i| (i % 5) as i8 + 1),
                )),
                DataType::Int32 => {
                    Arc::new(Int32Array::from_iter_values((0..rows).map(|i| i as i32)))
                }
                DataType::Int64 => {
                    Arc::new(Int64Array::from_iter_values((0..rows).map(|i| i as i64)))
                }
                DataType::Float64 => Arc::new(Float64Array::from_iter_values(
                    (0..rows).map(|i| i as f64 / 2.0),
                )),
                DataType::Boolean => {
                    Arc::new(BooleanArray::from_iter((0..rows).map(|i| Some(i % 2 == 0))))
                }
                DataType::Decimal128(_, _) => Arc::new(
                    Decimal128Array::from_iter_values((0..rows).map(|i| i as i128 * 101))
                        .with_precision_and_scale(MONEY_PRECISION, MONEY_SCALE)
                        .expect("valid decimal"),
                ),
                other => panic!("no fixture for {other:?}"),
            }
        })
        .collect();
    RecordBatch::try_new(schema, columns).expect("fixture matches schema")
}

/// The `row`th value of column `col` of a query result, as an integer.
pub fn int(out: &bright_engine::query::QueryOutput, col: usize, row: usize) -> i64 {
    let mut seen = 0;
    for batch in &out.batches {
        if row < seen + batch.num_rows() {
            let column = bright_engine::arrow::compute::cast(batch.column(col), &DataType::Int64)
                .expect("integer column");
            let values = column
                .as_any()
                .downcast_ref::<bright_engine::arrow::array::Int64Array>()
                .expect("cast to Int64");
            return values.value(row - seen);
        }
        seen += batch.num_rows();
    }
    panic!("row {row} out of range ({seen} rows)");
}
