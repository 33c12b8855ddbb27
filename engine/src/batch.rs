//! Building record batches of a canonical table one row at a time.
//!
//! [`BatchBuilder`] holds one Arrow builder per column of a [`Table`]'s schema; a [`Row`]
//! appends one value per column in schema order, so the column order is written once (in
//! `crate::schema`) and every producer of rows (the simulator, the ingest transforms) fills
//! them the same way. Setting a value of the wrong type, or ending a row with columns missing,
//! is a programming error and panics with the table and column named.

use arrow::array::{
    ArrayBuilder, ArrayRef, BooleanBuilder, Date32Builder, Decimal128Builder, Float64Builder,
    Int8Builder, Int32Builder, Int64Builder, StringBuilder, TimestampMicrosecondBuilder,
    make_builder,
};
use arrow::error::ArrowError;
use arrow::record_batch::RecordBatch;

use crate::schema::Table;

/// Rows of one table, buffered column by column.
pub struct BatchBuilder {
    table: Table,
    builders: Vec<Box<dyn ArrayBuilder>>,
    rows: usize,
}

impl std::fmt::Debug for BatchBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BatchBuilder")
            .field("table", &self.table)
            .field("rows", &self.rows)
            .finish()
    }
}

impl BatchBuilder {
    /// An empty builder for `table`.
    pub fn new(table: Table) -> Self {
        let builders = table
            .schema()
            .fields()
            .iter()
            .map(|f| make_builder(f.data_type(), 1024))
            .collect();
        BatchBuilder {
            table,
            builders,
            rows: 0,
        }
    }

    /// Rows appended since the last [`BatchBuilder::finish`].
    pub fn len(&self) -> usize {
        self.rows
    }

    /// Whether no row is buffered.
    pub fn is_empty(&self) -> bool {
        self.rows == 0
    }

    /// Starts a row; set every column in schema order, then call [`Row::end`].
    pub fn row(&mut self) -> Row<'_> {
        Row {
            batch: self,
            column: 0,
        }
    }

    /// The buffered rows as a batch with the table's schema; the builder starts empty again.
    pub fn finish(&mut self) -> Result<RecordBatch, ArrowError> {
        let columns: Vec<ArrayRef> = self.builders.iter_mut().map(|b| b.finish()).collect();
        self.rows = 0;
        RecordBatch::try_new(self.table.schema(), columns)
    }
}

/// One row being appended; setters take the columns in schema order.
#[must_use = "a row must be ended with Row::end"]
pub struct Row<'a> {
    batch: &'a mut BatchBuilder,
    column: usize,
}

impl Row<'_> {
    fn next<B: ArrayBuilder>(&mut self) -> &mut B {
        let table = self.batch.table;
        let column = self.column;
        self.column += 1;
        // The schema only to word a panic: taking it for every value (a shared `Arc`'s count
        // moved twice) was a visible share of parsing a request's records.
        let builder = self.batch.builders.get_mut(column).unwrap_or_else(|| {
            panic!("{table} has only {} columns", table.schema().fields().len())
        });
        builder.as_any_mut().downcast_mut::<B>().unwrap_or_else(|| {
            let schema = table.schema();
            let field = schema.field(column);
            panic!(
                "{table}.{} is {:?}, not {}",
                field.name(),
                field.data_type(),
                std::any::type_name::<B>()
            )
        })
    }

    /// A text value.
    pub fn text(mut self, value: &str) -> Self {
        self.next::<StringBuilder>().append_value(value);
        self
    }

    /// A text value or null.
    pub fn opt_text(mut self, value: Option<&str>) -> Self {
        self.next::<StringBuilder>().append_option(value);
        self
    }

    /// A UTC timestamp in microseconds since the Unix epoch.
    pub fn timestamp(mut self, micros: i64) -> Self {
        self.next::<TimestampMicrosecondBuilder>()
            .append_value(micros);
        self
    }

    /// A timestamp or null.
    pub fn opt_timestamp(mut self, micros: Option<i64>) -> Self {
        self.next::<TimestampMicrosecondBuilder>()
            .append_option(micros);
        self
    }

    /// A date as days since 1970-01-01.
    pub fn date(mut self, days: i32) -> Self {
        self.next::<Date32Builder>().append_value(days);
        self
    }

    /// A date or null.
    pub fn opt_date(mut self, days: Option<i32>) -> Self {
        self.next::<Date32Builder>().append_option(days);
        self
    }

    /// A small integer.
    pub fn int8(mut self, value: i8) -> Self {
        self.next::<Int8Builder>().append_value(value);
        self
    }

    /// A small integer or null.
    pub fn opt_int8(mut self, value: Option<i8>) -> Self {
        self.next::<Int8Builder>().append_option(value);
        self
    }

    /// An integer.
    pub fn int32(mut self, value: i32) -> Self {
        self.next::<Int32Builder>().append_value(value);
        self
    }

    /// An integer or null.
    pub fn opt_int32(mut self, value: Option<i32>) -> Self {
        self.next::<Int32Builder>().append_option(value);
        self
    }

    /// A 64-bit integer (a count).
    pub fn int64(mut self, value: i64) -> Self {
        self.next::<Int64Builder>().append_value(value);
        self
    }

    /// A 64-bit integer or null.
    pub fn opt_int64(mut self, value: Option<i64>) -> Self {
        self.next::<Int64Builder>().append_option(value);
        self
    }

    /// A floating-point number.
    pub fn float64(mut self, value: f64) -> Self {
        self.next::<Float64Builder>().append_value(value);
        self
    }

    /// A flag.
    pub fn boolean(mut self, value: bool) -> Self {
        self.next::<BooleanBuilder>().append_value(value);
        self
    }

    /// Money in pence (the column's scale is 2).
    pub fn pence(mut self, value: i128) -> Self {
        self.next::<Decimal128Builder>().append_value(value);
        self
    }

    /// Ends the row; every column must have been set.
    pub fn end(self) {
        let columns = self.batch.builders.len();
        assert_eq!(
            self.column, columns,
            "{} row ended after {} of {columns} columns",
            self.batch.table, self.column
        );
        self.batch.rows += 1;
    }
}

/// `batch` in `table`'s current schema, columns matched by name: rows written under an
/// earlier schema (a write-ahead log from before an upgrade) read the columns added since as
/// null. A column the schema lacks, or a required one the batch lacks, is an error.
pub fn conform(table: Table, batch: &RecordBatch) -> Result<RecordBatch, ArrowError> {
    let schema = table.schema();
    if batch.schema().fields() == schema.fields() {
        return Ok(batch.clone());
    }
    let given = batch.schema();
    table
        .columns_added_since(given.fields().iter().map(|f| f.name().as_str()))
        .map_err(ArrowError::SchemaError)?;
    let columns = schema
        .fields()
        .iter()
        .map(|field| match batch.column_by_name(field.name()) {
            Some(column) => column.clone(),
            None => arrow::array::new_null_array(field.data_type(), batch.num_rows()),
        })
        .collect();
    RecordBatch::try_new(schema, columns)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bed(b: &mut BatchBuilder, ward: &str, beds: i32) {
        b.row()
            .text("X01")
            .text("NGH")
            .text(ward)
            .text("general_acute")
            .int32(beds)
            .opt_date(None)
            .date(20_000)
            .end();
    }

    #[test]
    fn rows_become_a_batch_with_the_table_schema() {
        let mut b = BatchBuilder::new(Table::Beds);
        bed(&mut b, "AMU", 40);
        bed(&mut b, "Ward 1A", 26);
        assert_eq!(b.len(), 2);
        let batch = b.finish().unwrap();
        assert_eq!(batch.schema(), Table::Beds.schema());
        assert_eq!(batch.num_rows(), 2);
        assert!(b.is_empty(), "finish starts a new batch");
    }

    #[test]
    #[should_panic(expected = "beds.beds is Int32")]
    fn a_value_of_the_wrong_type_names_the_column() {
        let mut b = BatchBuilder::new(Table::Beds);
        b.row()
            .text("X01")
            .text("NGH")
            .text("AMU")
            .text("general_acute")
            .text("forty")
            .end();
    }

    #[test]
    fn rows_from_an_earlier_schema_gain_the_new_columns_as_null() {
        let mut b = BatchBuilder::new(Table::Beds);
        bed(&mut b, "AMU", 40);
        let today = b.finish().unwrap();
        // `valid_to` is nullable: a batch without it is one from before it existed.
        let without = today.project(&[0, 1, 2, 3, 4, 6]).expect("projection");
        let upgraded = conform(Table::Beds, &without).expect("conforms");
        assert_eq!(upgraded.schema(), Table::Beds.schema());
        assert_eq!(upgraded, today);

        let err = conform(Table::Beds, &today.project(&[0, 1, 2, 3, 5, 6]).unwrap())
            .expect_err("beds is required");
        assert!(err.to_string().contains("required column 'beds'"), "{err}");
        let renamed = RecordBatch::try_new(
            std::sync::Arc::new(arrow::datatypes::Schema::new(vec![
                arrow::datatypes::Field::new("wards", arrow::datatypes::DataType::Utf8, true),
            ])),
            vec![today.column(2).clone()],
        )
        .unwrap();
        let err = conform(Table::Beds, &renamed).expect_err("unknown column");
        assert!(err.to_string().contains("no column 'wards'"), "{err}");
    }

    #[test]
    #[should_panic(expected = "beds row ended after 3 of 7 columns")]
    fn a_short_row_is_refused() {
        let mut b = BatchBuilder::new(Table::Beds);
        b.row().text("X01").text("NGH").text("AMU").end();
    }
}
