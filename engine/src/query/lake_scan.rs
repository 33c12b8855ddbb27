//! The lake part of a table's scan, read straight from the Parquet files of its snapshot.
//!
//! Delta's own scan replays the snapshot's file actions and parses every file's JSON
//! statistics again for each query: in a dashboard tick, where thirty small queries each read
//! the open day, that was 29% of the tick's CPU (`perf`, trust scale). A snapshot's files do
//! not change, so [`LakeFiles`] takes them once per Delta version, with the days each holds,
//! and each scan keeps the files whose days its filters can match (DataFusion's pruning
//! predicate over those days) and reads them with DataFusion's Parquet scan, which prunes row
//! groups by the files' own statistics and caches their footers.
//!
//! Only what bright's tables use is read this way: plain Parquet files, unpartitioned or
//! partitioned by day (lakes made before bright stopped doing that), no deletion vectors and
//! no column mapping (reader version 1). Any other table keeps Delta's scan.

use std::sync::Arc;

use arrow::array::{Array, ArrayRef, AsArray, BooleanArray, Date32Array};
use arrow::datatypes::{DataType, Date32Type, FieldRef, Schema, SchemaRef};
use datafusion::catalog::Session;
use datafusion::common::pruning::PruningStatistics;
use datafusion::common::stats::Precision;
use datafusion::common::{Column, DFSchema, ScalarValue, Statistics};
use datafusion::datasource::file_format::FileFormat;
use datafusion::datasource::file_format::parquet::ParquetFormat;
use datafusion::datasource::listing::PartitionedFile;
use datafusion::datasource::object_store::ObjectStoreUrl;
use datafusion::datasource::physical_plan::{FileGroup, FileScanConfigBuilder, ParquetSource};
use datafusion::datasource::table_schema::TableSchema;
use datafusion::error::Result;
use datafusion::logical_expr::utils::conjunction;
use datafusion::physical_optimizer::pruning::PruningPredicateBuilder;
use datafusion::physical_plan::ExecutionPlan;
use datafusion::physical_plan::empty::EmptyExec;
use datafusion::prelude::Expr;
use deltalake::DeltaTable;
use object_store::ObjectStore;
use object_store::path::Path;

use crate::lake::{DataFile, LakeError};
use crate::schema::Table;

/// The data files of one Delta snapshot of a table, ready for any number of scans.
#[derive(Debug)]
pub(super) struct LakeFiles {
    store: ObjectStoreUrl,
    /// The store at `store` (an S3 bucket's root): files are named from there, where Delta's
    /// provider reads through a store of the table's own.
    root: Arc<dyn ObjectStore>,
    /// The files' columns (the table's, less a partition column).
    file_schema: SchemaRef,
    /// The day column, when the table is partitioned by it (its value is in each file's path).
    partition: Option<FieldRef>,
    /// The table's columns as this scan gives them: the files' then the partition column.
    table_schema: SchemaRef,
    day: &'static str,
    files: Vec<PartitionedFile>,
    /// Each file's rows, when the log tells.
    rows: Vec<Option<usize>>,
    /// Each file's first and last day (null where the log does not tell), for pruning.
    first: ArrayRef,
    last: ArrayRef,
}

impl LakeFiles {
    /// The files of `delta`'s snapshot of `table` (`files`, from [`crate::lake::data_files`])
    /// whose lake schema is `lake_schema`; `None` when the table uses a Delta feature only
    /// Delta's scan reads.
    pub(super) fn new(
        table: Table,
        delta: &DeltaTable,
        lake_schema: &Schema,
        files: &[DataFile],
    ) -> std::result::Result<Option<Self>, LakeError> {
        let snapshot = delta.snapshot()?;
        let day = table.day_column();
        let partitions = snapshot.metadata().partition_columns();
        let partitioned = match partitions {
            [] => false,
            [only] if only == day => true,
            _ => return Ok(None),
        };
        if snapshot.protocol().min_reader_version() != 1 || files.iter().any(|f| f.deletes) {
            return Ok(None);
        }
        let (partition, file_schema): (Option<FieldRef>, Schema) = if partitioned {
            let Ok(field) = lake_schema.field_with_name(day) else {
                return Ok(None);
            };
            if field.data_type() != &DataType::Date32 {
                return Ok(None);
            }
            let others: Vec<FieldRef> = lake_schema
                .fields()
                .iter()
                .filter(|f| f.name() != day)
                .cloned()
                .collect();
            (Some(Arc::new(field.clone())), Schema::new(others))
        } else {
            (None, lake_schema.clone())
        };
        // A location this scan cannot name is left to Delta's scan.
        let root = delta.table_url();
        let Ok(store) = ObjectStoreUrl::parse(&root[..url::Position::BeforePath]) else {
            return Ok(None);
        };
        let mut scan_files = Vec::with_capacity(files.len());
        for file in files {
            // A file elsewhere than under the table's store (a shallow clone's absolute path)
            // is Delta's to read too.
            let Some(location) = root
                .join(&file.path)
                .ok()
                .filter(|url| url[..url::Position::BeforePath] == root[..url::Position::BeforePath])
                .and_then(|url| Path::from_url_path(url.path()).ok())
            else {
                return Ok(None);
            };
            let mut scan_file = PartitionedFile::new(location.to_string(), file.size);
            // Named as the store names it, not encoded again.
            scan_file.object_meta.location = location;
            if partitioned {
                scan_file.partition_values = vec![ScalarValue::Date32(file.first_day.map(day32))];
            }
            scan_files.push(scan_file);
        }
        let days = |pick: fn(&DataFile) -> Option<chrono::NaiveDate>| -> ArrayRef {
            Arc::new(
                files
                    .iter()
                    .map(|f| pick(f).map(day32))
                    .collect::<Date32Array>(),
            )
        };
        let mut fields: Vec<FieldRef> = file_schema.fields().iter().cloned().collect();
        fields.extend(partition.iter().cloned());
        Ok(Some(LakeFiles {
            table_schema: Arc::new(Schema::new(fields)),
            store,
            root: delta.log_store().root_object_store(None),
            file_schema: Arc::new(file_schema),
            partition,
            day,
            files: scan_files,
            rows: files.iter().map(|f| f.rows).collect(),
            first: days(|f| f.first_day),
            last: days(|f| f.last_day),
        }))
    }

    /// The last day the files hold rows of (`Some(None)` without files); `None` when the log
    /// does not tell a file's.
    pub(super) fn last_day(&self) -> Option<Option<i32>> {
        if self.last.null_count() > 0 {
            return None;
        }
        Some(arrow::compute::max(self.last.as_primitive::<Date32Type>()))
    }

    /// Whether a file may hold rows of `day` (days since 1970-01-01): its first and last days
    /// span it, or the log does not tell them.
    pub(super) fn may_hold(&self, day: i32) -> bool {
        let (first, last) = (
            self.first.as_primitive::<Date32Type>(),
            self.last.as_primitive::<Date32Type>(),
        );
        (0..first.len()).any(|i| {
            (first.is_null(i) || first.value(i) <= day) && (last.is_null(i) || day <= last.value(i))
        })
    }

    /// Scans the columns of `lake_schema` at `columns` (in that order) from the files whose
    /// days `filters` can match. The filters are not applied to the rows: the caller keeps
    /// them above the scan (they are inexact), and DataFusion pushes them into the Parquet
    /// scan to skip row groups.
    pub(super) async fn scan(
        &self,
        state: &dyn Session,
        lake_schema: &Schema,
        columns: &[usize],
        filters: &[Expr],
        limit: Option<usize>,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        let table_schema = &self.table_schema;
        let projection = columns
            .iter()
            .map(|&i| table_schema.index_of(lake_schema.field(i).name()))
            .collect::<std::result::Result<Vec<_>, _>>()?;
        let keep = self.keep(state, filters);
        let kept: Vec<usize> = keep
            .iter()
            .enumerate()
            .filter_map(|(i, keep)| keep.then_some(i))
            .collect();
        let files: Vec<PartitionedFile> = kept.iter().map(|&i| self.files[i].clone()).collect();
        if files.is_empty() {
            return Ok(Arc::new(EmptyExec::new(Arc::new(
                table_schema.project(&projection)?,
            ))));
        }
        // Each session has its own runtime (an analyst's sandbox too).
        let runtime = state.runtime_env();
        if runtime.object_store(&self.store).is_err() {
            runtime.register_object_store(self.store.as_ref(), self.root.clone());
        }
        let groups = FileGroup::new(files).split_files(state.config().target_partitions());
        let source = ParquetSource::new(
            TableSchema::builder(self.file_schema.clone())
                .with_table_partition_cols(self.partition.iter().cloned().collect::<Vec<_>>())
                .build(),
        );
        let config = FileScanConfigBuilder::new(self.store.clone(), Arc::new(source))
            .with_file_groups(groups)
            .with_statistics(self.statistics(&kept))
            .with_projection_indices(Some(projection))?
            .with_limit(limit)
            .build();
        // The session's Parquet settings (text as `Utf8`, no bloom filters), and its cache of
        // the files' footers.
        ParquetFormat::default()
            .with_options(state.table_options().parquet.clone())
            .create_physical_plan(state, config)
            .await
    }

    /// What the log tells of the files at `kept`: their rows and days, so the planner can
    /// size joins and answer `MIN(day)` without a scan, as it could from Delta's scan.
    fn statistics(&self, kept: &[usize]) -> Statistics {
        let mut statistics = Statistics::new_unknown(&self.table_schema);
        let rows: Option<usize> = kept.iter().map(|&i| self.rows[i]).sum();
        statistics.num_rows = rows.map_or(Precision::Absent, Precision::Exact);
        statistics.total_byte_size = Precision::Inexact(
            kept.iter()
                .map(|&i| usize::try_from(self.files[i].object_meta.size).unwrap_or(usize::MAX))
                .fold(0, usize::saturating_add),
        );
        let bound = |days: &ArrayRef, pick: fn(i32, i32) -> i32| -> Precision<ScalarValue> {
            let days = days.as_primitive::<Date32Type>();
            let mut found: Option<i32> = None;
            for &i in kept {
                if days.is_null(i) {
                    return Precision::Absent;
                }
                let day = days.value(i);
                found = Some(found.map_or(day, |f| pick(f, day)));
            }
            found.map_or(Precision::Absent, |d| {
                Precision::Exact(ScalarValue::Date32(Some(d)))
            })
        };
        if let Ok(i) = self.table_schema.index_of(self.day) {
            let day = &mut statistics.column_statistics[i];
            day.min_value = bound(&self.first, i32::min);
            day.max_value = bound(&self.last, i32::max);
            // Every row has its day (the schema says so).
            day.null_count = Precision::Exact(0);
        }
        statistics
    }

    /// Which files `filters` can match, by their days; every file when the filters say
    /// nothing of days or cannot be read as a pruning predicate.
    fn keep(&self, state: &dyn Session, filters: &[Expr]) -> Vec<bool> {
        let all = vec![true; self.files.len()];
        let Some(filter) = conjunction(filters.iter().cloned()) else {
            return all;
        };
        let Ok(df_schema) = DFSchema::try_from(self.table_schema.clone()) else {
            return all;
        };
        let Ok(predicate) = state.create_physical_expr(filter, &df_schema) else {
            return all;
        };
        // `None` when the predicate cannot prune (it says nothing of days, say).
        let Some(pruning) = PruningPredicateBuilder::new()
            .with_file_schema(self.table_schema.clone())
            .build(predicate)
        else {
            return all;
        };
        pruning.prune(self).unwrap_or(all)
    }
}

fn day32(day: chrono::NaiveDate) -> i32 {
    Date32Type::from_naive_date(day)
}

/// Each file's days, as DataFusion's pruning reads statistics.
impl PruningStatistics for LakeFiles {
    fn min_values(&self, column: &Column) -> Option<ArrayRef> {
        (column.name == self.day).then(|| self.first.clone())
    }

    fn max_values(&self, column: &Column) -> Option<ArrayRef> {
        (column.name == self.day).then(|| self.last.clone())
    }

    fn num_containers(&self) -> usize {
        self.files.len()
    }

    fn null_counts(&self, _column: &Column) -> Option<ArrayRef> {
        None
    }

    fn row_counts(&self) -> Option<ArrayRef> {
        None
    }

    fn contained(
        &self,
        _column: &Column,
        _values: &std::collections::HashSet<ScalarValue>,
    ) -> Option<BooleanArray> {
        None
    }
}
