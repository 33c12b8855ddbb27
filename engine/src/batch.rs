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
};
use arrow::datatypes::{DataType, TimeUnit};
use arrow::error::ArrowError;
use arrow::record_batch::RecordBatch;

use crate::schema::Table;

/// One column's builder, by the types the schemas use. Held by type rather than as a
/// `dyn ArrayBuilder`, so setting a value is a match, not two virtual calls and a type
/// check (a visible share of parsing a request's records: benches/RESULTS.md).
enum Column {
    Text(StringBuilder),
    Timestamp(TimestampMicrosecondBuilder),
    Date(Date32Builder),
    Int8(Int8Builder),
    Int32(Int32Builder),
    Int64(Int64Builder),
    Float64(Float64Builder),
    Boolean(BooleanBuilder),
    Decimal(Decimal128Builder),
}

impl Column {
    /// Room for rows, and bytes of a text column, as arrow's `make_builder` gave before.
    const ROWS: usize = 1024;
    const TEXT_BYTES: usize = 1024;
    /// Bytes of text a row is given room for when the rows are known to be few.
    const TEXT_BYTES_A_ROW: usize = 32;

    fn new(data_type: &DataType, rows: usize, text_bytes: usize) -> Column {
        match data_type {
            DataType::Utf8 => Column::Text(StringBuilder::with_capacity(rows, text_bytes)),
            DataType::Timestamp(TimeUnit::Microsecond, _) => Column::Timestamp(
                TimestampMicrosecondBuilder::with_capacity(rows).with_data_type(data_type.clone()),
            ),
            DataType::Date32 => Column::Date(Date32Builder::with_capacity(rows)),
            DataType::Int8 => Column::Int8(Int8Builder::with_capacity(rows)),
            DataType::Int32 => Column::Int32(Int32Builder::with_capacity(rows)),
            DataType::Int64 => Column::Int64(Int64Builder::with_capacity(rows)),
            DataType::Float64 => Column::Float64(Float64Builder::with_capacity(rows)),
            DataType::Boolean => Column::Boolean(BooleanBuilder::with_capacity(rows)),
            DataType::Decimal128(..) => Column::Decimal(
                Decimal128Builder::with_capacity(rows).with_data_type(data_type.clone()),
            ),
            other => panic!("no row setter takes a {other:?} column"),
        }
    }

    fn builder(&mut self) -> &mut dyn ArrayBuilder {
        match self {
            Column::Text(b) => b,
            Column::Timestamp(b) => b,
            Column::Date(b) => b,
            Column::Int8(b) => b,
            Column::Int32(b) => b,
            Column::Int64(b) => b,
            Column::Float64(b) => b,
            Column::Boolean(b) => b,
            Column::Decimal(b) => b,
        }
    }
}

/// Rows of one table, buffered column by column.
pub struct BatchBuilder {
    table: Table,
    columns: Vec<Column>,
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
        BatchBuilder::sized(table, Column::ROWS, Column::TEXT_BYTES)
    }

    /// An empty builder for `table` with room for `rows` rows only: the MLLP listener builds
    /// a one-row batch per message, and room for a thousand was allocated and freed each time.
    pub fn with_rows(table: Table, rows: usize) -> Self {
        BatchBuilder::sized(table, rows, rows * Column::TEXT_BYTES_A_ROW)
    }

    fn sized(table: Table, rows: usize, text_bytes: usize) -> Self {
        let columns = table
            .schema()
            .fields()
            .iter()
            .map(|f| Column::new(f.data_type(), rows, text_bytes))
            .collect();
        BatchBuilder {
            table,
            columns,
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
        let columns: Vec<ArrayRef> = self
            .columns
            .iter_mut()
            .map(|c| c.builder().finish())
            .collect();
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

/// Row setters: each appends its value to the next column, a `$variant` column whose
/// builder's `$set` takes it.
macro_rules! setters {
    ($($(#[$doc:meta])* $name:ident($value:ty) => $variant:ident.$set:ident, $what:literal;)*) => {
        $(
            $(#[$doc])*
            pub fn $name(mut self, value: $value) -> Self {
                match self.next() {
                    Column::$variant(b) => b.$set(value),
                    _ => self.wrong_type($what),
                }
                self
            }
        )*
    };
}

impl Row<'_> {
    fn next(&mut self) -> &mut Column {
        let table = self.batch.table;
        let column = self.column;
        self.column += 1;
        self.batch
            .columns
            .get_mut(column)
            .unwrap_or_else(|| panic!("{table} has only {} columns", table.schema().fields().len()))
    }

    /// The column just taken is not of the setter's type: a programming error.
    #[cold]
    fn wrong_type(&self, setter: &str) -> ! {
        let table = self.batch.table;
        let schema = table.schema();
        let field = schema.field(self.column - 1);
        panic!(
            "{table}.{} is {:?}, not {setter}",
            field.name(),
            field.data_type(),
        )
    }

    setters! {
        /// A text value.
        text(&str) => Text.append_value, "text";
        /// A text value or null.
        opt_text(Option<&str>) => Text.append_option, "text";
        /// A UTC timestamp in microseconds since the Unix epoch.
        timestamp(i64) => Timestamp.append_value, "a timestamp";
        /// A timestamp or null.
        opt_timestamp(Option<i64>) => Timestamp.append_option, "a timestamp";
        /// A date as days since 1970-01-01.
        date(i32) => Date.append_value, "a date";
        /// A date or null.
        opt_date(Option<i32>) => Date.append_option, "a date";
        /// A small integer.
        int8(i8) => Int8.append_value, "Int8";
        /// A small integer or null.
        opt_int8(Option<i8>) => Int8.append_option, "Int8";
        /// An integer.
        int32(i32) => Int32.append_value, "Int32";
        /// An integer or null.
        opt_int32(Option<i32>) => Int32.append_option, "Int32";
        /// A 64-bit integer (a count).
        int64(i64) => Int64.append_value, "Int64";
        /// A 64-bit integer or null.
        opt_int64(Option<i64>) => Int64.append_option, "Int64";
        /// A floating-point number.
        float64(f64) => Float64.append_value, "Float64";
        /// A flag.
        boolean(bool) => Boolean.append_value, "Boolean";
        /// Money in pence (the column's scale is 2).
        pence(i128) => Decimal.append_value, "Decimal128";
    }

    /// Ends the row; every column must have been set.
    pub fn end(self) {
        let columns = self.batch.columns.len();
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
    fn every_table_has_a_builder_for_each_of_its_columns() {
        for table in Table::ALL {
            let batch = BatchBuilder::new(table).finish().expect("an empty batch");
            assert_eq!(batch.schema(), table.schema(), "{table}");
        }
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
