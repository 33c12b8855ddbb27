//! The query layer: one configured DataFusion session over every lake table.
//!
//! [`QueryEngine`] registers each [`Table`] that exists in the [`Lake`] under its canonical
//! name, bounds every query by a memory pool, and runs read-only SQL (no DDL, no DML, no
//! `COPY`, no `CREATE EXTERNAL TABLE`, so SQL cannot touch files outside the lake). Results come
//! back as Arrow record batches in a [`QueryOutput`], which prints as a table, CSV or JSON.
//!
//! Tables are registered behind a `LiveTable` whose Delta snapshot [`QueryEngine::refresh`]
//! swaps atomically: a query running during a refresh finishes on the snapshot it started
//! with, and a query never sees a half-written commit. The live table also holds the rows
//! ingest has acknowledged but not yet flushed ([`QueryEngine::buffer_append`]): queries see
//! lake ∪ buffer, each row once across a flush (`buffer_seal`, then `buffer_flushed`). DataFusion types stay in this module;
//! callers talk in SQL strings, Arrow batches and [`QueryError`].
//!
//! SQL functions bright adds: `spc_xmr(query, …)`, the XmR chart of a query's date and value
//! columns (see `spc_function`); `local_date(ts)` and `local_hour(ts)`, a timestamp on the
//! trust's wall clock (see `time_functions`), and `minutes_between(from, to)`.
//!
//! With [`QueryEngine::register_kpis`] the session also holds the KPI catalogue as views in the
//! `kpi` schema (`kpi.ed_4h_performance`), and [`QueryEngine::kpi_series`] rolls a KPI up into
//! the series SPC reads (see `kpi_views`). A table the lake does not hold yet is registered
//! empty, so KPIs plan on any lake and pick the table up at the next refresh. Helper views
//! marked `materialise` keep their rows until a table they read moves to a new snapshot (see
//! `materialised`).

use std::collections::BTreeMap;
use std::io::Write;
use std::num::NonZeroUsize;
use std::sync::Arc;

use arrow::datatypes::SchemaRef;
use arrow::error::ArrowError;
use arrow::record_batch::RecordBatch;
use datafusion::catalog::TableProvider;
use datafusion::error::DataFusionError;
use datafusion::execution::memory_pool::{FairSpillPool, MemoryPool, TrackConsumersPool};
use datafusion::execution::runtime_env::RuntimeEnvBuilder;
use datafusion::prelude::{SQLOptions, SessionConfig, SessionContext};
use tracing::debug;

use crate::lake::{Lake, LakeError};

mod executor;
mod kpi_views;
mod lake_scan;
mod live;
mod materialised;
pub mod sandbox;
use live::LiveTable;
mod spc_function;
mod time_functions;
use crate::kpi::{Catalogue, KpiError};
use crate::schema::Table;
pub use executor::Executor;
pub use live::{Change, Seen};
pub use materialised::ViewRefreshes;
pub use sandbox::{Answer, Limits, one_statement, precheck};

/// The session's catalog; lake tables are in its `lake` schema, KPIs in `kpi`.
const CATALOG: &str = "bright";
/// The schema lake tables are registered in (the default).
const LAKE_SCHEMA: &str = "lake";

/// Small files of a day being written that [`QueryEngine::compact_days`] merges at once.
/// Each is opened by every scan of the day; merging rewrites the day's small files, so not
/// at every flush.
pub const COMPACT_AFTER: usize = 8;

/// Days whose compaction [`QueryEngine::compact_days`] remembers what it left.
const COMPACTED_KEPT: usize = 256;

/// Errors from planning or running a query.
#[derive(Debug, thiserror::Error)]
pub enum QueryError {
    /// The SQL failed to parse, plan or run; DataFusion's message says why.
    #[error("{0}")]
    DataFusion(#[from] DataFusionError),
    /// Reading the lake failed.
    #[error(transparent)]
    Lake(#[from] LakeError),
    /// Formatting results failed.
    #[error("cannot format results: {0}")]
    Format(#[from] ArrowError),
    /// Writing formatted results failed.
    #[error("cannot write results: {0}")]
    Io(#[from] std::io::Error),
    /// The KPI catalogue is inconsistent, or a KPI, breakdown or parameter is unknown.
    #[error(transparent)]
    Catalogue(#[from] KpiError),
    /// A KPI or helper view failed to plan.
    #[error("{file}: {source}")]
    Kpi {
        /// The query's file.
        file: std::path::PathBuf,
        /// Why it failed.
        source: Box<QueryError>,
    },
    /// [`QueryEngine::kpi_series`] was called before [`QueryEngine::register_kpis`].
    #[error("no KPI catalogue is registered in this session")]
    NoCatalogue,
    /// Nothing has been written to this lake: there are no tables to query.
    #[error("no lake tables at {root}; write some first (bright generate, bright demo)")]
    EmptyLake {
        /// The lake root.
        root: url::Url,
    },
    /// The query was stopped before it finished (the service shutting down), or failed
    /// unexpectedly.
    #[error("{0}")]
    Stopped(String),
    /// An analyst's statement may not run (see [`sandbox`]).
    #[error("refused: {0}")]
    Refused(String),
    /// An analyst's statement went past a limit and was stopped (see [`sandbox`]).
    #[error("stopped: {0}")]
    Limit(String),
}

/// Settings of the query session.
#[derive(Debug, Clone)]
pub struct QueryConfig {
    /// Upper bound on memory held by operators of all running queries together (bytes). A
    /// query that needs more fails on its own with a resources error.
    pub memory_limit: usize,
    /// Parallelism of each query (DataFusion's target partitions); 0 = number of cores.
    pub target_partitions: usize,
    /// The trust's wall clock, for `local_date` and `local_hour`.
    pub time_zone: chrono_tz::Tz,
    /// Where queries run: a runtime of their own, so they never hold up the threads that
    /// answer requests; `None` runs them on the caller's.
    pub executor: Option<Executor>,
    /// Memory analysts' statements may hold together, in a pool of their own (bytes).
    pub analyst_memory_limit: usize,
}

impl Default for QueryConfig {
    fn default() -> Self {
        QueryConfig {
            memory_limit: default_memory_limit(),
            target_partitions: 0,
            time_zone: chrono_tz::Europe::London,
            executor: None,
            analyst_memory_limit: 1 << 30,
        }
    }
}

/// Output formats for query results.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OutputFormat {
    /// An aligned text table for people.
    Table,
    /// CSV with a header row.
    Csv,
    /// A JSON array of objects, one per row.
    Json,
}

/// The collected result of a query.
#[derive(Debug, Clone)]
pub struct QueryOutput {
    /// Column names and types.
    pub schema: SchemaRef,
    /// The rows.
    pub batches: Vec<RecordBatch>,
}

impl QueryOutput {
    /// Number of rows.
    pub fn num_rows(&self) -> usize {
        self.batches.iter().map(RecordBatch::num_rows).sum()
    }

    /// Writes the result in `format`, followed by a newline.
    pub fn write(&self, format: OutputFormat, out: &mut dyn Write) -> Result<(), QueryError> {
        match format {
            OutputFormat::Table => {
                let table = arrow::util::pretty::pretty_format_batches_with_schema(
                    self.schema.clone(),
                    &self.batches,
                )?;
                writeln!(out, "{table}")?;
            }
            OutputFormat::Csv => {
                let mut writer = arrow::csv::WriterBuilder::new()
                    .with_header(true)
                    .build(&mut *out);
                if self.batches.is_empty() {
                    // The header still tells a script which columns came back.
                    writer.write(&RecordBatch::new_empty(self.schema.clone()))?;
                }
                for batch in &self.batches {
                    writer.write(batch)?;
                }
            }
            OutputFormat::Json => {
                let mut writer = arrow::json::ArrayWriter::new(&mut *out);
                for batch in &self.batches {
                    writer.write(batch)?;
                }
                // Writes `[]` when there were no rows.
                writer.finish()?;
                writeln!(out)?;
            }
        }
        Ok(())
    }
}

/// What analysts' SQL, KPI queries and `spc_xmr`'s inner query may do: read. No DDL, no DML,
/// no `COPY`, no `SET`, so SQL cannot touch files outside the lake or change the session.
fn read_only() -> SQLOptions {
    SQLOptions::new()
        .with_allow_ddl(false)
        .with_allow_dml(false)
        .with_allow_statements(false)
}

/// Half the machine's memory, and never less than 4 GiB: a guard against a runaway query, not
/// a reservation. Every KPI over two years of one trust's feeds, in one session, peaked at
/// 0.7 GB of RSS; over a national lake (150 trusts) the inpatient stays hold 3.5 GB of
/// encounters in a join that cannot spill, more than a fixed 4 GiB pool left them. The other
/// half is for what the process keeps outside the pool (materialised views, the KPI cache,
/// ingest's buffers) and the page cache.
fn default_memory_limit() -> usize {
    const FLOOR: usize = 4 << 30;
    physical_memory().map_or(FLOOR, |total| (total / 2).max(FLOOR))
}

/// The machine's memory in bytes, where the system says (Linux's `/proc/meminfo`).
fn physical_memory() -> Option<usize> {
    let meminfo = std::fs::read_to_string("/proc/meminfo").ok()?;
    let kib = meminfo
        .lines()
        .find_map(|line| line.strip_prefix("MemTotal:"))?
        .trim()
        .strip_suffix("kB")?
        .trim()
        .parse::<usize>()
        .ok()?;
    kib.checked_mul(1024)
}

/// The query pool: `limit` bytes shared fairly among the operators that can spill. Under a
/// first-come pool two partitions of one sort (the latest ED versions over a national lake,
/// 50 M attendances) each buffered half the pool before spilling, and the merge that writes
/// a spill, which cannot spill itself, then found nothing left; with a fair share each sort
/// spills at its share and its merge finds room. The five largest consumers are named when a
/// query runs out.
fn query_pool(limit: usize) -> Arc<dyn MemoryPool> {
    Arc::new(TrackConsumersPool::new(
        FairSpillPool::new(limit),
        NonZeroUsize::new(5).unwrap_or(NonZeroUsize::MIN),
    ))
}

/// A table the lake does not hold yet, as queries see lake tables.
fn empty(table: Table) -> Result<Arc<dyn TableProvider>, QueryError> {
    Ok(Arc::new(datafusion::datasource::MemTable::try_new(
        table.schema(),
        vec![vec![]],
    )?))
}

/// One DataFusion session with every lake table registered.
pub struct QueryEngine {
    lake: Lake,
    ctx: SessionContext,
    tables: BTreeMap<Table, Arc<LiveTable>>,
    kpis: Option<kpi_views::KpiViews>,
    executor: Option<Executor>,
    /// The analysts' session and runtime, made at their first statement.
    sandbox: std::sync::OnceLock<sandbox::Sandbox>,
    analyst_memory: usize,
    /// Each table's Delta log as last read, brought forward by the commits made since rather
    /// than read again from its start ([`QueryEngine::latest`]).
    logs: tokio::sync::Mutex<BTreeMap<Table, deltalake::DeltaTable>>,
    /// The small files each recent day of a table was left with by its last compaction
    /// ([`QueryEngine::compact_days`]): files a compaction could not merge further are
    /// not tried again at every flush.
    compacted: std::sync::Mutex<BTreeMap<(chrono::NaiveDate, Table), usize>>,
}

impl std::fmt::Debug for QueryEngine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("QueryEngine")
            .field("lake", self.lake.root())
            .field("tables", &self.tables.keys().collect::<Vec<_>>())
            .finish()
    }
}

impl QueryEngine {
    /// Opens a session over every table that exists in `lake`.
    ///
    /// Fails with [`QueryError::EmptyLake`] when the lake holds no table at all, which almost
    /// always means a wrong `--lake`.
    pub async fn open(lake: &Lake, config: &QueryConfig) -> Result<Self, QueryError> {
        let runtime = RuntimeEnvBuilder::new()
            .with_memory_pool(query_pool(config.memory_limit))
            .build_arc()?;
        let mut session_config = SessionConfig::new()
            .with_information_schema(true)
            .with_default_catalog_and_schema(CATALOG, LAKE_SCHEMA);
        if config.target_partitions > 0 {
            session_config = session_config.with_target_partitions(config.target_partitions);
        }
        // Text is read as `Utf8`, not Parquet's default `Utf8View`: a sort of view arrays
        // (the inpatient stays' windows over two years of ADT) is charged for the shared
        // string buffers of every batch again and again, and over a few hundred thousand
        // events fails for want of memory the process never uses.
        let parquet = &mut session_config.options_mut().execution.parquet;
        parquet.schema_force_view_types = false;
        // bright's writers put no bloom filters in the lake's files, but a scan still looks
        // for one in every row group a predicate touches: over two years of day partitions
        // that doubled the time to open the files of a filtered scan.
        parquet.bloom_filter_on_read = false;
        let ctx = SessionContext::new_with_config_rt(session_config, runtime);
        ctx.register_udtf(spc_function::NAME, Arc::new(spc_function::SpcXmrFunction));
        for function in time_functions::functions(config.time_zone) {
            ctx.register_udf(function);
        }
        let mut engine = QueryEngine {
            lake: lake.clone(),
            ctx,
            tables: BTreeMap::new(),
            kpis: None,
            executor: config.executor.clone(),
            sandbox: std::sync::OnceLock::new(),
            analyst_memory: config.analyst_memory_limit,
            logs: Default::default(),
            compacted: Default::default(),
        };
        let mut found = 0;
        for table in Table::ALL {
            let live = match lake.open_table(table).await {
                Ok(delta) => {
                    found += 1;
                    let snapshot = engine.snapshot(table, &delta, None).await?;
                    engine.logs.get_mut().insert(table, delta);
                    LiveTable::new(table, snapshot)
                }
                Err(LakeError::MissingTable { .. }) => {
                    LiveTable::new(table, live::Snapshot::empty(empty(table)?))
                }
                Err(e) => return Err(e.into()),
            };
            let live = Arc::new(live);
            engine.ctx.register_table(table.name(), live.clone())?;
            engine.tables.insert(table, live);
        }
        if found == 0 {
            return Err(QueryError::EmptyLake {
                root: lake.root().clone(),
            });
        }
        Ok(engine)
    }

    /// Plans every KPI of `catalogue` and registers it, with its helper views, in the `kpi`
    /// schema. `params` override the catalogue's parameter defaults. Fails on the first query
    /// that does not plan or does not return the catalogue's shape, naming its file.
    pub async fn register_kpis(
        &mut self,
        catalogue: Catalogue,
        params: &BTreeMap<String, f64>,
    ) -> Result<(), QueryError> {
        self.kpis = Some(kpi_views::KpiViews::register(&self.ctx, catalogue, params).await?);
        Ok(())
    }

    /// The registered KPI catalogue.
    pub fn kpi_catalogue(&self) -> Option<&Catalogue> {
        self.kpis.as_ref().map(kpi_views::KpiViews::catalogue)
    }

    /// The value KPI queries read for parameter `name`: the catalogue's default or the
    /// override it was registered with.
    pub fn kpi_param(&self, name: &str) -> Option<f64> {
        self.kpis.as_ref().and_then(|k| k.param(name))
    }

    /// The lake tables KPI `id` reads, through its helper views.
    pub fn kpi_tables(&self, id: &str) -> Result<std::collections::BTreeSet<Table>, QueryError> {
        let kpis = self.kpis.as_ref().ok_or(QueryError::NoCatalogue)?;
        kpis.tables(id)
    }

    /// The lake tables KPI `id` reads through keyed materialised views (`key` in
    /// `kpis.toml`), each with the view's key: a row added to such a table can change the
    /// KPI on every day of its key, not only its own.
    pub fn kpi_keyed_reads(
        &self,
        id: &str,
    ) -> Result<std::collections::BTreeSet<(Table, String)>, QueryError> {
        let kpis = self.kpis.as_ref().ok_or(QueryError::NoCatalogue)?;
        kpis.keyed_reads(id)
    }

    /// Whether KPI `id` reads the clock (`now()`), through its helper views, so that its
    /// series can change while the tables it reads do not.
    pub fn kpi_reads_clock(&self, id: &str) -> Result<bool, QueryError> {
        let kpis = self.kpis.as_ref().ok_or(QueryError::NoCatalogue)?;
        kpis.reads_clock(id)
    }

    /// How often materialised helper view `kpi.<name>` was computed in this session, whole
    /// and key by key; `None` when no such materialised view is registered.
    pub async fn view_refreshes(&self, name: &str) -> Option<ViewRefreshes> {
        self.materialised(name).await.map(|view| view.refreshes())
    }

    /// Brings materialised helper view `kpi.<name>` up to date with the lake as queries see
    /// it now, and says how often it was computed; `None` when no such view is registered.
    pub async fn refresh_view(&self, name: &str) -> Result<Option<ViewRefreshes>, QueryError> {
        let Some(view) = self.materialised(name).await else {
            return Ok(None);
        };
        view.bring_up_to_date(&self.ctx.state()).await?;
        Ok(Some(view.refreshes()))
    }

    async fn materialised(&self, name: &str) -> Option<Arc<materialised::MaterialisedView>> {
        let provider = self
            .ctx
            .table_provider(datafusion::common::TableReference::partial(
                crate::kpi::SCHEMA,
                name,
            ))
            .await
            .ok()?;
        let any: Arc<dyn std::any::Any + Send + Sync> = provider;
        any.downcast::<materialised::MaterialisedView>().ok()
    }

    /// How many cores a query may use (the session's target partitions: configured, or one
    /// per core).
    pub fn parallelism(&self) -> usize {
        self.ctx.copied_config().target_partitions()
    }

    /// What queries see of `table` now: compare it with a later one
    /// ([`Seen::change_since`]) to tell which days' rows changed in between.
    pub fn seen(&self, table: Table) -> Seen {
        self.tables
            .get(&table)
            .map_or_else(Seen::default, |t| t.seen())
    }

    /// The lake this engine reads.
    pub fn lake(&self) -> &Lake {
        &self.lake
    }

    /// The series of KPI `id`: one row per period from `since` (every period when `None`) up
    /// to but excluding `until`, per combination of the `by` columns, with columns `date`,
    /// the `by` columns, `value`, `numerator`, `denominator`. Only `since`'s window is read.
    pub async fn kpi_series(
        &self,
        id: &str,
        since: Option<chrono::NaiveDate>,
        until: Option<chrono::NaiveDate>,
        by: &[String],
    ) -> Result<QueryOutput, QueryError> {
        let kpis = self.kpis.as_ref().ok_or(QueryError::NoCatalogue)?;
        let frame = kpis.series(&self.ctx, id, since, until, by).await?;
        let schema: SchemaRef = Arc::new(frame.schema().as_arrow().clone());
        let batches = self.collect(frame).await?;
        Ok(QueryOutput { schema, batches })
    }

    /// Runs a planned query to the end, on the query runtime when there is one.
    async fn collect(
        &self,
        frame: datafusion::dataframe::DataFrame,
    ) -> Result<Vec<RecordBatch>, QueryError> {
        let work = async move { Ok(frame.collect().await?) };
        match &self.executor {
            Some(executor) => executor.run(work).await,
            None => executor::run_here(work).await,
        }
    }

    /// The provider queries read `delta` (a snapshot of `table`) through, its version and
    /// its data files, and what the commits after version `after` (the snapshot queries read
    /// until now) did.
    async fn snapshot(
        &self,
        table: Table,
        delta: &deltalake::DeltaTable,
        after: Option<u64>,
    ) -> Result<live::Snapshot, QueryError> {
        delta
            .update_datafusion_session(&self.ctx.state())
            .map_err(LakeError::from)?;
        // With the session, the scan takes its Parquet settings (text as `Utf8`).
        let provider = delta
            .table_provider()
            .with_session(Arc::new(self.ctx.state()))
            .await?;
        let data_files = crate::lake::data_files(table, delta)?;
        let direct = lake_scan::LakeFiles::new(table, delta, &provider.schema(), &data_files)?;
        Ok(live::Snapshot {
            provider,
            version: delta.version(),
            files: crate::lake::first_days(&data_files),
            small_files: crate::lake::small_files_by_day(&data_files),
            direct: direct.map(Arc::new),
            commits: match after {
                Some(after) => crate::lake::commit_changes(table, delta, after).await,
                None => Vec::new(),
            },
        })
    }

    /// The schema of `table` as queries see it.
    pub fn table_schema(&self, table: Table) -> Option<SchemaRef> {
        self.tables.get(&table).map(|t| t.schema.clone())
    }

    /// Moves every table to its latest committed snapshot. Queries already running keep the
    /// snapshot they planned against.
    pub async fn refresh(&self) -> Result<(), QueryError> {
        let mut logs = self.logs.lock().await;
        for (table, live) in &self.tables {
            let delta = match self.latest(&mut logs, *table).await {
                Ok(delta) => delta,
                // Still not written: it stays empty.
                Err(LakeError::MissingTable { .. }) => continue,
                Err(e) => return Err(e.into()),
            };
            if live.lake_version().is_some() && live.lake_version() == delta.version() {
                // Unchanged: keep the snapshot, and what was computed from it.
                continue;
            }
            live.replace(
                self.snapshot(*table, delta, live.lake_version()).await?,
                None,
            );
        }
        Ok(())
    }

    /// Merges the small files `table` gathers as it is written (a file per flush), so that a
    /// live board's scans of the day being written open a few files, not one per flush.
    /// `days` are the days a flush just wrote: each is compacted once [`COMPACT_AFTER`] more
    /// small files hold it than its last compaction left, and the day before each, when not
    /// written itself, once two more do (the flushes since its last compaction, before the
    /// day turned). The rows stay the same, so views and results computed from them are
    /// kept. Returns the files merged.
    pub async fn compact_days(
        &self,
        table: Table,
        days: &std::collections::BTreeSet<chrono::NaiveDate>,
    ) -> Result<u64, QueryError> {
        let small = self.live(table)?.small_files();
        let count = |day| small.get(&day).copied().unwrap_or(0);
        let mut due = std::collections::BTreeSet::new();
        for &day in days {
            if count(day) >= self.compacted_left(table, day) + COMPACT_AFTER {
                due.insert(day);
            }
            if let Some(before) = day.pred_opt()
                && !days.contains(&before)
                && count(before) >= self.compacted_left(table, before) + 2
            {
                due.insert(before);
            }
        }
        let mut merged = 0;
        let mut failed = None;
        for day in due {
            let report = match self.lake.optimize_day(table, day).await {
                Ok(report) => report,
                Err(e) => {
                    failed = Some(e);
                    break;
                }
            };
            merged += report.files_removed;
            let left = (count(day) + report.files_added as usize)
                .saturating_sub(report.files_removed as usize);
            let mut compacted = self.compacted.lock().unwrap_or_else(|p| p.into_inner());
            compacted.insert((day, table), left);
            // Days long past are rarely written again; a compaction of one starts afresh.
            while compacted.len() > COMPACTED_KEPT {
                compacted.pop_first();
            }
        }
        // What was merged before a failure is committed: queries move on to it either way.
        if merged > 0 {
            self.refresh_table(table).await?;
        }
        match failed {
            Some(e) => Err(e.into()),
            None => Ok(merged),
        }
    }

    fn compacted_left(&self, table: Table, day: chrono::NaiveDate) -> usize {
        let compacted = self.compacted.lock().unwrap_or_else(|p| p.into_inner());
        compacted.get(&(day, table)).copied().unwrap_or(0)
    }

    /// Moves one table to its latest committed snapshot (after bright itself wrote to it).
    pub async fn refresh_table(&self, table: Table) -> Result<(), QueryError> {
        let mut logs = self.logs.lock().await;
        let delta = self.latest(&mut logs, table).await?;
        let live = self.live(table)?;
        let snapshot = self.snapshot(table, delta, live.lake_version()).await?;
        live.replace(snapshot, None);
        Ok(())
    }

    /// `table`'s Delta log brought to its latest commit. The log held in `logs` is brought
    /// forward (the log is listed past the version held and only the commits since are read)
    /// rather than read again from its start; one caller at a time holds `logs`.
    async fn latest<'a>(
        &self,
        logs: &'a mut BTreeMap<Table, deltalake::DeltaTable>,
        table: Table,
    ) -> Result<&'a deltalake::DeltaTable, LakeError> {
        match logs.entry(table) {
            std::collections::btree_map::Entry::Occupied(held) => {
                let delta = held.into_mut();
                match delta.get_latest_version().await {
                    Ok(latest) if delta.version() == Some(latest) => {}
                    Ok(_) => delta.update_incremental(None).await?,
                    // The version held is gone from the log (cleaned up after a checkpoint):
                    // read it from the start.
                    Err(_) => *delta = self.lake.open_table(table).await?,
                }
                Ok(delta)
            }
            std::collections::btree_map::Entry::Vacant(slot) => {
                Ok(slot.insert(self.lake.open_table(table).await?))
            }
        }
    }

    fn live(&self, table: Table) -> Result<&Arc<LiveTable>, QueryError> {
        self.tables.get(&table).ok_or_else(|| {
            QueryError::DataFusion(DataFusionError::Internal(format!(
                "{} is registered at open",
                table.name()
            )))
        })
    }

    /// A signal that ticks whenever the rows queries see of `table` change (acknowledged rows
    /// arrive, or another writer commits and a refresh picks it up): live boards wait on it
    /// instead of polling.
    pub fn changes(&self, table: Table) -> Result<tokio::sync::watch::Receiver<u64>, QueryError> {
        Ok(self.live(table)?.changes())
    }

    /// Makes rows ingest has acknowledged queryable before they reach the lake. `batch` has
    /// the table's canonical schema ([`Table::schema`]).
    pub fn buffer_append(&self, table: Table, batch: RecordBatch) -> Result<(), QueryError> {
        if batch.schema().fields() != table.schema().fields() {
            return Err(QueryError::DataFusion(DataFusionError::Plan(format!(
                "rows for {} do not have its schema",
                table.name()
            ))));
        }
        Ok(self.live(table)?.append(batch)?)
    }

    /// Starts a flush of `table`'s buffer: returns the generation to pass to
    /// [`QueryEngine::buffer_flushed`] and its rows, or `None` when nothing is buffered.
    /// Rows appended from now on wait for the next flush.
    pub fn buffer_seal(&self, table: Table) -> Result<Option<(u64, Vec<RecordBatch>)>, QueryError> {
        Ok(self.live(table)?.seal())
    }

    /// Ends a flush: the sealed rows are committed to the lake, so the table moves to the new
    /// Delta snapshot and drops them from the buffer in one step.
    pub async fn buffer_flushed(&self, table: Table, generation: u64) -> Result<(), QueryError> {
        let mut logs = self.logs.lock().await;
        let delta = self.latest(&mut logs, table).await?;
        let live = self.live(table)?;
        let snapshot = self.snapshot(table, delta, live.lake_version()).await?;
        live.replace(snapshot, Some(generation));
        Ok(())
    }

    /// Rows of `table` waiting in the buffer.
    pub fn buffered_rows(&self, table: Table) -> usize {
        self.tables.get(&table).map_or(0, |t| t.buffered_rows())
    }

    /// The rows of some days of `table` (its day column one of `days`, days since
    /// 1970-01-01), lake and buffer, with only `columns` (all when `None`).
    pub async fn day_rows(
        &self,
        table: Table,
        days: &[i32],
        columns: Option<&[&str]>,
    ) -> Result<Vec<RecordBatch>, QueryError> {
        use datafusion::prelude::{col, lit};
        use datafusion::scalar::ScalarValue;
        // A new day (a live feed's first rows of the day, each day of a backfill) is in no
        // file and not buffered: planning and running a scan to find that out cost about a
        // millisecond a day.
        let days = self.live(table)?.days_held(days);
        if days.is_empty() {
            return Ok(Vec::new());
        }
        let days = days
            .iter()
            .map(|&day| lit(ScalarValue::Date32(Some(day))))
            .collect();
        let mut frame = self
            .ctx
            .table(table.name())
            .await?
            .filter(col(table.day_column()).in_list(days, false))?;
        if let Some(columns) = columns {
            frame = frame.select_columns(columns)?;
        }
        self.collect(frame).await
    }

    /// Plans and runs one read-only SQL statement and collects its result.
    pub async fn sql(&self, sql: &str) -> Result<QueryOutput, QueryError> {
        let frame = self.ctx.sql_with_options(sql, read_only()).await?;
        let schema: SchemaRef = Arc::new(frame.schema().as_arrow().clone());
        let batches = self.collect(frame).await?;
        debug!(
            rows = batches.iter().map(RecordBatch::num_rows).sum::<usize>(),
            "Ran query."
        );
        Ok(QueryOutput { schema, batches })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_query_pool_is_half_the_machine_and_never_below_4_gib() {
        let limit = QueryConfig::default().memory_limit;
        assert!(limit >= 4 << 30, "{limit}");
        if cfg!(target_os = "linux") {
            let total = physical_memory().expect("Linux reports MemTotal");
            // A machine has more than the 64 MiB a misread (kB taken as bytes) would give.
            assert!(total > 64 << 20, "{total}");
            assert_eq!(limit, (total / 2).max(4 << 30));
        }
    }
}
