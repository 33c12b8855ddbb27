//! The lake: one Delta Lake table per [`Table`] under a root URL on `object_store`.
//!
//! [`Lake`] turns a location (`./lake`, `file:///…`, `s3://bucket/prefix`) into table URLs,
//! creates missing tables from the canonical schema, appends record batches as single atomic
//! Delta commits (a reader sees a whole append or none of it), and runs maintenance: compaction
//! ([`Lake::optimize`]), safe file removal ([`Lake::vacuum`]) and per-table statistics
//! ([`Lake::stats`]). The query layer (`crate::query`) reads the same tables through
//! [`Lake::open_table`].
//!
//! S3-compatible storage takes the usual settings (`AWS_ENDPOINT_URL`, `AWS_ACCESS_KEY_ID`,
//! `AWS_SECRET_ACCESS_KEY`, `AWS_SESSION_TOKEN`, `AWS_REGION`, `AWS_ALLOW_HTTP`) from the
//! environment or from [`Lake::with_storage_options`]; without keys it asks for credentials
//! where a cloud machine offers them (a web-identity token, a container's or an instance's
//! credentials endpoint), but it does not read profiles from `~/.aws`. Commits use the store's
//! conditional put, so no external lock service is needed.

use std::collections::{BTreeMap, HashMap};
use std::num::NonZeroU64;
use std::str::FromStr;
use std::sync::{Arc, Once};
use std::time::Duration;

use arrow::record_batch::RecordBatch;
use deltalake::kernel::engine::arrow_conversion::TryIntoKernel;
use deltalake::kernel::{StructField, StructType};
use deltalake::logstore::{
    LogStore, LogStoreFactory, ObjectStoreFactory, ObjectStoreRef, StorageConfig, default_logstore,
    logstore_factories, object_store_factories,
};
use deltalake::operations::optimize::OptimizeType;
use deltalake::operations::vacuum::VacuumMode;
use deltalake::protocol::SaveMode;
use deltalake::{DeltaResult, DeltaTable, DeltaTableBuilder, DeltaTableError};
use object_store::ObjectStoreScheme;
use object_store::aws::{AmazonS3Builder, AmazonS3ConfigKey};
use object_store::path::Path;
use tracing::{debug, info};
use url::Url;

use crate::schema::Table;

/// Errors from the lake.
#[derive(Debug, thiserror::Error)]
pub enum LakeError {
    /// The location is neither a path nor a URL we can store tables under.
    #[error("invalid lake location '{location}': {reason}")]
    InvalidLocation {
        /// What was given.
        location: String,
        /// Why it was refused.
        reason: &'static str,
    },
    /// Creating the local lake folder failed.
    #[error("cannot create lake folder '{path}': {source}")]
    CreateFolder {
        /// The folder.
        path: String,
        /// The I/O error.
        source: std::io::Error,
    },
    /// A batch does not have the table's registered schema.
    #[error("batch for table '{table}' does not match its schema: {detail}")]
    SchemaMismatch {
        /// The table written to.
        table: Table,
        /// The first difference found.
        detail: String,
    },
    /// The table does not exist yet (nothing has been written to this lake).
    #[error("table '{table}' does not exist in the lake at {root}")]
    MissingTable {
        /// The table asked for.
        table: Table,
        /// The lake root.
        root: Url,
    },
    /// Delta Lake (log, commit or object store) failed.
    #[error(transparent)]
    Delta(#[from] DeltaTableError),
    /// Turning the canonical Arrow schema into a Delta schema failed.
    #[error("schema of '{table}' cannot be stored in Delta: {source}")]
    Kernel {
        /// The table.
        table: Table,
        /// Why.
        source: arrow::error::ArrowError,
    },
    /// Putting an append's rows in day order failed.
    #[error("cannot order the rows for '{table}' by day: {source}")]
    Order {
        /// The table.
        table: Table,
        /// Why.
        source: arrow::error::ArrowError,
    },
}

/// Row and file counts of one table (from the Delta log, without reading data files).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableStats {
    /// The table.
    pub table: Table,
    /// Delta version (number of commits − 1).
    pub version: u64,
    /// Rows in the live files.
    pub rows: u64,
    /// Live data files.
    pub files: u64,
    /// Bytes in live data files.
    pub bytes: u64,
}

/// The size [`Lake::optimize`] merges small files up to, unless told otherwise.
///
/// Each file a query opens costs it a fixed time whatever the file holds, so a small table
/// written a month at a time (the ledger, data-quality issues) spends most of a scan opening
/// dozens of files of a few kilobytes; merged into one, it is read in a third of the time.
/// Larger targets cost more than they save: merging a trust's monthly ED files into two
/// 16 MiB files made the open day's ED KPIs twice as slow (a merged file is one row group, so
/// a day's query reads all of it) and bed occupancy a fifth slower (one file, one thread).
pub const COMPACT_TARGET_BYTES: NonZeroU64 = NonZeroU64::new(1 << 20).unwrap();

/// What a compaction did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OptimizeReport {
    /// The table.
    pub table: Table,
    /// Small files replaced.
    pub files_removed: u64,
    /// Compacted files written.
    pub files_added: u64,
}

/// What a vacuum removed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VacuumReport {
    /// The table.
    pub table: Table,
    /// Files deleted from storage.
    pub files_deleted: u64,
}

/// How long files a commit replaced stay readable before `vacuum` may delete them, unless asked
/// otherwise. Queries and external readers holding an older snapshot finish well inside it.
pub const DEFAULT_VACUUM_RETENTION: Duration = Duration::from_secs(24 * 3600);

/// A lake root and the storage settings to reach it.
#[derive(Debug, Clone)]
pub struct Lake {
    root: Url,
    storage_options: HashMap<String, String>,
}

/// Tables under `s3://` and `s3a://` URLs, on object_store's own S3 client: it signs requests,
/// finds credentials and makes commits conditional, which is all a lake needs, without the
/// AWS SDK's thirty-odd crates in every fresh build.
#[derive(Debug, Default)]
struct S3Tables;

impl ObjectStoreFactory for S3Tables {
    fn parse_url_opts(
        &self,
        url: &Url,
        config: &StorageConfig,
    ) -> DeltaResult<(ObjectStoreRef, Path)> {
        // The environment first, then the lake's own options over it, then the URL's bucket.
        let mut builder = AmazonS3Builder::from_env();
        for (key, value) in &config.raw {
            if let Ok(key) = AmazonS3ConfigKey::from_str(&key.to_ascii_lowercase()) {
                builder = builder.with_config(key, value);
            }
        }
        // Commits are conditional puts; a copy that must not overwrite (rare in Delta) uses
        // a multipart upload's conditional completion, which S3 and its look-alikes honour,
        // unless the store was told another way.
        if builder
            .get_config_value(&AmazonS3ConfigKey::CopyIfNotExists)
            .is_none()
        {
            builder = builder.with_config(AmazonS3ConfigKey::CopyIfNotExists, "multipart");
        }
        let store = builder.with_url(url.as_str()).build()?;
        let (_, path) =
            ObjectStoreScheme::parse(url).map_err(|e| DeltaTableError::GenericError {
                source: Box::new(e),
            })?;
        Ok((Arc::new(store), path))
    }
}

impl LogStoreFactory for S3Tables {
    fn with_options(
        &self,
        prefixed_store: ObjectStoreRef,
        root_store: ObjectStoreRef,
        location: &Url,
        options: &StorageConfig,
    ) -> DeltaResult<Arc<dyn LogStore>> {
        // The default log store commits with put-if-absent, which S3 supports.
        Ok(default_logstore(
            prefixed_store,
            root_store,
            location,
            options,
        ))
    }
}

fn register_cloud_handlers() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let tables = Arc::new(S3Tables);
        for scheme in ["s3://", "s3a://"] {
            let url = Url::parse(scheme).expect("a scheme alone is a URL");
            object_store_factories().insert(url.clone(), tables.clone());
            logstore_factories().insert(url, tables.clone());
        }
    });
}

impl Lake {
    /// Opens the lake at `location`: a local path or a `file://` or `s3://` URL. Nothing is
    /// read or created yet; tables are created by the first write.
    pub fn open(location: &str) -> Result<Self, LakeError> {
        register_cloud_handlers();
        let root = parse_location(location)?;
        Ok(Lake {
            root,
            storage_options: HashMap::new(),
        })
    }

    /// Adds object-store settings (e.g. `aws_endpoint`, `aws_access_key_id`), overriding the
    /// environment.
    pub fn with_storage_options(mut self, options: HashMap<String, String>) -> Self {
        self.storage_options.extend(options);
        self
    }

    /// The lake's root URL (always ending in `/`).
    pub fn root(&self) -> &Url {
        &self.root
    }

    /// Where `table` lives.
    pub fn table_url(&self, table: Table) -> Url {
        // The root ends in '/', so join appends rather than replacing the last segment.
        self.root
            .join(&format!("{}/", table.name()))
            .expect("table names are valid URL segments")
    }

    fn builder(&self, table: Table) -> Result<DeltaTableBuilder, LakeError> {
        Ok(DeltaTableBuilder::from_url(self.table_url(table))?
            .with_storage_options(self.storage_options.clone()))
    }

    /// Loads the latest snapshot of `table`; [`LakeError::MissingTable`] if it was never created.
    pub async fn open_table(&self, table: Table) -> Result<DeltaTable, LakeError> {
        let missing = || LakeError::MissingTable {
            table,
            root: self.root.clone(),
        };
        // A local table that was never created has no folder, which the kernel reports as a
        // bad location rather than "not a table"; tell the two apart up front.
        if let Ok(dir) = self.table_url(table).to_file_path()
            && !dir.join("_delta_log").is_dir()
        {
            return Err(missing());
        }
        match self.builder(table)?.load().await {
            Ok(t) => Ok(t),
            Err(DeltaTableError::NotATable(_)) => Err(missing()),
            Err(e) => Err(e.into()),
        }
    }

    /// Whether `table` exists.
    pub async fn has_table(&self, table: Table) -> Result<bool, LakeError> {
        match self.open_table(table).await {
            Ok(_) => Ok(true),
            Err(LakeError::MissingTable { .. }) => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// Loads `table`, creating it empty from the canonical schema if it does not exist, and
    /// adding the columns a later version of the schema gained if it was made before them.
    pub async fn open_or_create(&self, table: Table) -> Result<DeltaTable, LakeError> {
        match self.open_table(table).await {
            Err(LakeError::MissingTable { .. }) => self.create(table).await,
            Ok(delta) => self.upgrade(table, delta).await,
            Err(e) => Err(e),
        }
    }

    /// Adds the canonical columns `delta` lacks. New columns are nullable, so old rows read
    /// them as null; Delta appends them after the partition column, and the query layer
    /// matches columns by name, so the table queries the same as one created today. A table
    /// with a column the schema does not know, or lacking a required one, is refused.
    async fn upgrade(&self, table: Table, delta: DeltaTable) -> Result<DeltaTable, LakeError> {
        let have = delta.snapshot()?.schema();
        let missing = table
            .columns_added_since(have.fields().map(|f| f.name().as_str()))
            .map_err(|detail| LakeError::SchemaMismatch { table, detail })?;
        if missing.is_empty() {
            return Ok(delta);
        }
        let added = arrow::datatypes::Schema::new(missing);
        let added: StructType = (&added)
            .try_into_kernel()
            .map_err(|source| LakeError::Kernel { table, source })?;
        let names: Vec<String> = added.fields().map(|f| f.name().clone()).collect();
        let upgraded = delta
            .add_columns()
            .with_fields(added.fields().cloned().collect::<Vec<_>>())
            .await?;
        info!(table = %table, columns = ?names, "Added columns to an older table.");
        Ok(upgraded)
    }

    async fn create(&self, table: Table) -> Result<DeltaTable, LakeError> {
        // Object stores have no folders; a local lake needs the table's folder to exist.
        if let Ok(dir) = self.table_url(table).to_file_path() {
            std::fs::create_dir_all(&dir).map_err(|source| LakeError::CreateFolder {
                path: dir.display().to_string(),
                source,
            })?;
        }
        let schema: StructType = table
            .schema()
            .as_ref()
            .try_into_kernel()
            .map_err(|source| LakeError::Kernel { table, source })?;
        let columns: Vec<StructField> = schema.fields().cloned().collect();
        let handle = self.builder(table)?.build()?;
        let created = handle
            .create()
            .with_table_name(table.name())
            .with_columns(columns)
            // Not partitioned by day: a folder per day made a 10 KB file per table per day,
            // and every scan of history opened hundreds of them. Appends keep their rows in
            // day order instead, and the log's per-file statistics of the day column let
            // scans skip the files (and Parquet the row groups) outside the days asked for.
            // A concurrent creator may win the race; its table is the same, so keep it.
            .with_save_mode(SaveMode::Ignore)
            .with_configuration_property(
                deltalake::TableProperty::DeletedFileRetentionDuration,
                Some(format!(
                    "interval {} seconds",
                    DEFAULT_VACUUM_RETENTION.as_secs()
                )),
            )
            .await;
        match created {
            Ok(t) => {
                info!(table = %table, root = %self.root, "Created table.");
                Ok(t)
            }
            // SaveMode::Ignore still fails if the racing commit landed between our check and
            // our commit; the table exists either way.
            Err(DeltaTableError::VersionAlreadyExists(_)) => self.open_table(table).await,
            Err(e) => Err(e.into()),
        }
    }

    /// Creates every missing table, so readers find the whole model even before data arrives.
    pub async fn ensure_tables(&self) -> Result<(), LakeError> {
        for table in Table::ALL {
            self.open_or_create(table).await?;
        }
        Ok(())
    }

    /// Appends `batches` to `table` in one atomic commit and returns the new table version.
    ///
    /// Every batch must carry exactly the registered schema; an empty list commits nothing.
    pub async fn append(
        &self,
        table: Table,
        batches: Vec<RecordBatch>,
    ) -> Result<Option<u64>, LakeError> {
        let expected = table.schema();
        for batch in &batches {
            if batch.schema().as_ref() != expected.as_ref() {
                return Err(LakeError::SchemaMismatch {
                    table,
                    detail: first_difference(&expected, &batch.schema()),
                });
            }
        }
        let batches: Vec<RecordBatch> = batches.into_iter().filter(|b| b.num_rows() > 0).collect();
        if batches.is_empty() {
            return Ok(None);
        }
        let rows: usize = batches.iter().map(RecordBatch::num_rows).sum();
        let batches = in_day_order(table, batches)?;
        let delta = self.open_or_create(table).await?;
        // The table's own partitioning applies: none for tables created now, by day for
        // tables of older lakes.
        let written = delta
            .write(batches)
            .with_save_mode(SaveMode::Append)
            .await?;
        let version = written.version();
        debug!(table = %table, rows, version, "Appended batch.");
        Ok(version)
    }

    /// Row, file and byte counts of `table`, read from the log.
    pub async fn stats(&self, table: Table) -> Result<TableStats, LakeError> {
        let delta = self.open_table(table).await?;
        let snapshot = delta.snapshot()?;
        let (mut rows, mut files, mut bytes) = (0u64, 0u64, 0u64);
        for file in snapshot.log_data().iter() {
            files += 1;
            rows += file.num_records().unwrap_or(0) as u64;
            bytes += u64::try_from(file.size()).unwrap_or(0);
        }
        Ok(TableStats {
            table,
            version: snapshot.version(),
            rows,
            files,
            bytes,
        })
    }

    /// Every data file of `table`'s current snapshot with the first day it holds (from the
    /// log, without reading data files: the file's statistics of the day column, or its
    /// partition value in a table partitioned by day); empty when the table does not exist
    /// yet. Two calls compared tell from which day on data changed in between: appended,
    /// compacted or rewritten.
    pub async fn files(
        &self,
        table: Table,
    ) -> Result<BTreeMap<String, Option<chrono::NaiveDate>>, LakeError> {
        let delta = match self.open_table(table).await {
            Ok(delta) => delta,
            Err(LakeError::MissingTable { .. }) => return Ok(BTreeMap::new()),
            Err(e) => return Err(e),
        };
        file_days(table, &delta)
    }

    /// Rewrites each partition's small files into fewer large ones (one commit per table):
    /// files next to each other in the log are merged, in their order, into files of up to
    /// `target_bytes` ([`COMPACT_TARGET_BYTES`] when `None`); larger files stay as they are.
    ///
    /// Readers keep seeing the same rows throughout; the replaced files stay on storage until a
    /// [`Lake::vacuum`] after the retention period.
    pub async fn optimize(
        &self,
        table: Table,
        target_bytes: Option<NonZeroU64>,
    ) -> Result<OptimizeReport, LakeError> {
        self.compact(table, target_bytes, None).await
    }

    /// Like [`Lake::optimize`], only over the files that may hold rows of `day` (by the log's
    /// statistics of the day column): serving compacts the day being written as it goes and
    /// leaves the other days' files as they are, so each day ends up in a file of its own.
    pub async fn optimize_day(
        &self,
        table: Table,
        day: chrono::NaiveDate,
    ) -> Result<OptimizeReport, LakeError> {
        self.compact(table, None, Some(day)).await
    }

    async fn compact(
        &self,
        table: Table,
        target_bytes: Option<NonZeroU64>,
        day: Option<chrono::NaiveDate>,
    ) -> Result<OptimizeReport, LakeError> {
        use deltalake::kernel::schema::partitions::{FilterOp, FilterValue};
        let delta = self.open_table(table).await?;
        let target = target_bytes.unwrap_or(COMPACT_TARGET_BYTES);
        let day = day.map(|d| d.format("%Y-%m-%d").to_string());
        let filters: Vec<_> = day
            .iter()
            .map(|d| {
                (
                    table.day_column(),
                    FilterOp::Eq,
                    FilterValue::Scalar(d.as_str()),
                )
            })
            .collect();
        let (_, metrics) = delta
            .optimize()
            .with_type(OptimizeType::Compact)
            .with_target_size(target)
            .with_filters(&filters)
            .await?;
        info!(
            table = %table,
            day = day.as_deref().unwrap_or("all"),
            files_removed = metrics.num_files_removed,
            files_added = metrics.num_files_added,
            "Optimized table."
        );
        Ok(OptimizeReport {
            table,
            files_removed: metrics.num_files_removed,
            files_added: metrics.num_files_added,
        })
    }

    /// Deletes data files that a commit replaced more than `retention` ago.
    ///
    /// Only files the log marks as removed are candidates (Delta's "lite" vacuum). Files of an
    /// append still in flight are not in the log at all, so a vacuum can never delete them
    /// from under a writer; files replaced within `retention` stay for readers still holding an
    /// older snapshot.
    pub async fn vacuum(
        &self,
        table: Table,
        retention: Duration,
    ) -> Result<VacuumReport, LakeError> {
        let delta = self.open_table(table).await?;
        let retention = chrono::Duration::from_std(retention).unwrap_or(chrono::Duration::MAX);
        let (_, metrics) = delta
            .vacuum()
            .with_mode(VacuumMode::Lite)
            .with_retention_period(retention)
            // The retention is ours to choose (the CLI enforces a floor); the table default is
            // only the default.
            .with_enforce_retention_duration(false)
            .await?;
        let files_deleted = metrics.files_deleted.len() as u64;
        info!(table = %table, files_deleted, "Vacuumed table.");
        Ok(VacuumReport {
            table,
            files_deleted,
        })
    }
}

/// A data file of a Delta snapshot, as bright's scans read it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DataFile {
    /// Relative to the table's root, as the log holds it (percent-decoded).
    pub path: String,
    /// In bytes.
    pub size: u64,
    /// Its rows, when the log tells.
    pub rows: Option<usize>,
    /// The first and last day it holds (the day column's statistics, or its partition value in
    /// a table partitioned by day); `None` when the log does not tell.
    pub first_day: Option<chrono::NaiveDate>,
    pub last_day: Option<chrono::NaiveDate>,
    /// A deletion vector hides some of its rows: only Delta's own scan applies it.
    pub deletes: bool,
}

/// Every data file of `delta` (a snapshot of `table`), with the days it holds. Each file's
/// statistics are parsed once here, for every scan of the snapshot to use.
pub fn data_files(table: Table, delta: &DeltaTable) -> Result<Vec<DataFile>, LakeError> {
    let snapshot = delta.snapshot()?;
    let column = table.day_column();
    Ok(snapshot
        .log_data()
        .iter()
        .map(|file| {
            let (first_day, last_day) = match file.partition_values_map().get(column) {
                Some(value) => {
                    let day = value.as_deref().and_then(|v| v.parse().ok());
                    (day, day)
                }
                None => file
                    .stats()
                    .map_or((None, None), |stats| day_span(&stats, column)),
            };
            DataFile {
                path: file.path().into_owned(),
                size: u64::try_from(file.size()).unwrap_or_default(),
                rows: file.num_records(),
                first_day,
                last_day,
                deletes: file.deletion_vector_descriptor().is_some(),
            }
        })
        .collect())
}

/// What one commit did to a table's rows, as its entry in the log tells.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CommitChange {
    /// Rows only moved between files: every file the commit added or removed is marked as not
    /// changing data (a compaction), so the table holds the same rows as before.
    Rearranged,
    /// Rows were added, none on a day before this one; none went.
    Added(chrono::NaiveDate),
    /// Anything else, or not known: rows went, the schema changed, an added file's days are
    /// not told, or the entry could not be read.
    Other,
}

/// The most commits [`commit_changes`] reads at once; a reader further behind compares the
/// snapshots' files instead.
pub const COMMITS_READ: u64 = 64;

/// What each commit of `table` after version `after` up to `delta`'s own did to its rows,
/// oldest first; nothing when `delta` is more than [`COMMITS_READ`] commits ahead. One small
/// read per commit: live tables call this as they move on, a commit or a few at a time.
pub async fn commit_changes(
    table: Table,
    delta: &DeltaTable,
    after: u64,
) -> Vec<(u64, CommitChange)> {
    let Some(latest) = delta.version() else {
        return Vec::new();
    };
    if latest <= after || latest - after > COMMITS_READ {
        return Vec::new();
    }
    let store = delta.log_store();
    let mut changes = Vec::new();
    for version in after + 1..=latest {
        let change = match store.read_commit_entry(version).await {
            Ok(Some(entry)) => match deltalake::logstore::get_actions(version, &entry) {
                Ok(actions) => commit_change(table, &actions),
                Err(_) => CommitChange::Other,
            },
            // Cleaned up already, or unreadable now: the snapshots tell instead.
            Ok(None) | Err(_) => CommitChange::Other,
        };
        changes.push((version, change));
    }
    changes
}

/// What a commit of `actions` did to `table`'s rows.
fn commit_change(table: Table, actions: &[deltalake::kernel::Action]) -> CommitChange {
    use deltalake::kernel::Action;
    let column = table.day_column();
    let mut first: Option<chrono::NaiveDate> = None;
    let mut moved = false;
    for action in actions {
        match action {
            Action::Add(add) if add.data_change => {
                let day = match add.partition_values.get(column) {
                    Some(value) => value.as_deref().and_then(|v| v.parse().ok()),
                    None => add.stats.as_deref().and_then(|s| day_span(s, column).0),
                };
                match day {
                    Some(day) => first = Some(first.map_or(day, |f| f.min(day))),
                    None => return CommitChange::Other,
                }
            }
            // The protocol: such a file's rows are those of files removed in the same commit,
            // or already in the table.
            Action::Add(_) => moved = true,
            Action::Remove(remove) if !remove.data_change => moved = true,
            Action::CommitInfo(_) | Action::Txn(_) => {}
            _ => return CommitChange::Other,
        }
    }
    match (first, moved) {
        (Some(day), _) => CommitChange::Added(day),
        (None, true) => CommitChange::Rearranged,
        (None, false) => CommitChange::Other,
    }
}

/// Every data file of `delta` (a snapshot of `table`) with the first day it holds, as
/// [`Lake::files`] gives them.
pub fn file_days(
    table: Table,
    delta: &DeltaTable,
) -> Result<BTreeMap<String, Option<chrono::NaiveDate>>, LakeError> {
    Ok(first_days(&data_files(table, delta)?))
}

/// Each of `files` by path, with the first day it holds.
pub fn first_days(files: &[DataFile]) -> BTreeMap<String, Option<chrono::NaiveDate>> {
    files
        .iter()
        .map(|file| (file.path.clone(), file.first_day))
        .collect()
}

/// How many of `files` are below [`COMPACT_TARGET_BYTES`] (what a compaction merges), by the
/// first day each holds.
pub fn small_files_by_day(files: &[DataFile]) -> BTreeMap<chrono::NaiveDate, usize> {
    let mut days = BTreeMap::new();
    for file in files.iter().filter(|f| f.size < COMPACT_TARGET_BYTES.get()) {
        if let Some(day) = file.first_day {
            *days.entry(day).or_default() += 1;
        }
    }
    days
}

/// The smallest and largest values of the day column in a file's statistics (the log's JSON
/// `stats`).
fn day_span(stats: &str, column: &str) -> (Option<chrono::NaiveDate>, Option<chrono::NaiveDate>) {
    let Ok(stats) = serde_json::from_str::<serde_json::Value>(stats) else {
        return (None, None);
    };
    let day = |bound: &str| {
        stats
            .get(bound)?
            .get(column)?
            .as_str()?
            .parse::<chrono::NaiveDate>()
            .ok()
    };
    (day("minValues"), day("maxValues"))
}

/// `batches` as one batch in the order of the table's day column (rows of one day keep their
/// order), so each written file and row group covers as few days as it can. Batches already
/// in order are passed through.
fn in_day_order(table: Table, batches: Vec<RecordBatch>) -> Result<Vec<RecordBatch>, LakeError> {
    use arrow::array::{AsArray, UInt32Array};
    use arrow::compute::{concat_batches, take_record_batch};
    use arrow::datatypes::Date32Type;

    let column = table.day_column();
    let mut previous = i32::MIN;
    let mut ordered = true;
    for batch in &batches {
        let Some(days) = batch
            .column_by_name(column)
            .and_then(|c| c.as_primitive_opt::<Date32Type>())
        else {
            // The schema was checked; a table without its day column cannot reach here.
            return Ok(batches);
        };
        for day in days.iter().flatten() {
            ordered &= day >= previous;
            previous = day;
        }
    }
    if ordered {
        return Ok(batches);
    }
    let failed = |source| LakeError::Order { table, source };
    let all = concat_batches(&table.schema(), &batches).map_err(failed)?;
    let days = all
        .column_by_name(column)
        .and_then(|c| c.as_primitive_opt::<Date32Type>())
        .ok_or_else(|| failed(arrow::error::ArrowError::SchemaError(column.into())))?;
    // A stable sort: one day's rows keep the order they came in.
    let mut order: Vec<u32> = (0..all.num_rows() as u32).collect();
    order.sort_by_key(|&i| days.value(i as usize));
    Ok(vec![
        take_record_batch(&all, &UInt32Array::from(order)).map_err(failed)?,
    ])
}

fn parse_location(location: &str) -> Result<Url, LakeError> {
    let invalid = |reason| LakeError::InvalidLocation {
        location: location.to_string(),
        reason,
    };
    if location.is_empty() {
        return Err(invalid("empty"));
    }
    let mut url = match Url::parse(location) {
        // One-letter schemes are Windows drive letters, not URLs.
        Ok(url) if url.scheme().len() > 1 => {
            if url.scheme() == "file" {
                url.to_file_path()
                    .map_err(|()| invalid("not a local file URL"))?;
            } else if url.host_str().is_none_or(str::is_empty) {
                return Err(invalid("the URL names no bucket or host"));
            }
            url
        }
        _ => {
            // Not canonicalised: reading a lake must not create its folder, and it may not
            // exist yet.
            let absolute =
                std::path::absolute(location).map_err(|source| LakeError::CreateFolder {
                    path: location.to_string(),
                    source,
                })?;
            Url::from_directory_path(&absolute).map_err(|()| invalid("not an absolute path"))?
        }
    };
    if !url.path().ends_with('/') {
        let path = format!("{}/", url.path());
        url.set_path(&path);
    }
    Ok(url)
}

fn first_difference(expected: &arrow::datatypes::Schema, got: &arrow::datatypes::Schema) -> String {
    if expected.fields().len() != got.fields().len() {
        return format!(
            "expected {} columns, got {}",
            expected.fields().len(),
            got.fields().len()
        );
    }
    for (e, g) in expected.fields().iter().zip(got.fields()) {
        if e != g {
            return format!(
                "column '{}' {:?} nullable={} expected, got '{}' {:?} nullable={}",
                e.name(),
                e.data_type(),
                e.is_nullable(),
                g.name(),
                g.data_type(),
                g.is_nullable()
            );
        }
    }
    "schema metadata differs".to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn local_paths_become_directory_urls() {
        let dir = tempfile::tempdir().unwrap();
        let lake = Lake::open(dir.path().join("lake").to_str().unwrap()).unwrap();
        assert_eq!(lake.root().scheme(), "file");
        assert!(lake.root().path().ends_with("/lake/"));
        assert!(
            lake.table_url(Table::AdtEvents)
                .path()
                .ends_with("/lake/adt_events/")
        );
    }

    #[test]
    fn s3_urls_keep_their_prefix() {
        let lake = Lake::open("s3://bucket/trusts/north").unwrap();
        assert_eq!(
            lake.table_url(Table::Beds).as_str(),
            "s3://bucket/trusts/north/beds/"
        );
    }

    #[test]
    fn urls_without_a_bucket_are_refused() {
        let err = Lake::open("s3:///prefix").unwrap_err();
        assert!(err.to_string().contains("no bucket"), "{err}");
    }
}
