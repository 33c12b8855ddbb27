//! A lake table as queries see it: the current Delta snapshot plus the rows ingest has
//! acknowledged but not yet flushed to the lake (the buffer).
//!
//! Ingest appends acknowledged rows to the buffer, so they are queryable at once. A flush
//! seals the buffer's current generation, writes it to the lake as one Delta commit, then
//! swaps in the new Delta snapshot and drops the sealed generation in one step: a query sees
//! each row exactly once, before, during and after the flush.

use std::borrow::Cow;
use std::collections::VecDeque;
use std::sync::{Arc, RwLock};

use arrow::compute::{cast, concat_batches};
use arrow::datatypes::{Field, Schema, SchemaRef};
use arrow::record_batch::RecordBatch;
use async_trait::async_trait;
use datafusion::catalog::{Session, TableProvider};
use datafusion::common::ScalarValue;
use datafusion::datasource::MemTable;
use datafusion::error::{DataFusionError, Result};
use datafusion::logical_expr::{LogicalPlan, TableProviderFilterPushDown, TableType};
use datafusion::physical_expr::PhysicalExpr;
use datafusion::physical_expr::expressions::{Column, Literal};
use datafusion::physical_plan::ExecutionPlan;
use datafusion::physical_plan::projection::ProjectionExec;
use datafusion::physical_plan::union::UnionExec;
use datafusion::prelude::Expr;

use super::lake_scan::LakeFiles;
use crate::lake::CommitChange;

/// Small batches (one message each) are merged once this many are waiting in a generation.
const MERGE_AFTER: usize = 64;
/// Batches at least this big are left as they are.
const BIG_BATCH: usize = 8192;
/// Merges happen in tiers: batches under `MERGE_AFTER` rows (a message each) merge among
/// themselves, and the merged ones merge again once as many wait, until `BIG_BATCH`. With one
/// tier a merged batch was merged again with each further 63 messages, so every row was
/// copied about sixty times before the batch reached `BIG_BATCH`; now three or four.
const MERGE_TIERS: [usize; 2] = [MERGE_AFTER, BIG_BATCH];

/// What a materialised result was computed from: the Delta version and the buffer's version.
pub(super) type Version = (Option<u64>, u64);

/// The data files of a Delta snapshot, each with the first day it holds (`None` when the log
/// does not tell), as [`crate::lake::file_days`] gives them.
pub(super) type Files = std::collections::BTreeMap<String, Option<chrono::NaiveDate>>;

/// A count of small data files by the first day they hold.
pub(super) type SmallFiles = std::collections::BTreeMap<chrono::NaiveDate, usize>;

/// What each of a table's recent commits did to its rows, by version.
type Commits = std::collections::BTreeMap<u64, CommitChange>;

/// Commits a table remembers what they did: enough for views read every few ticks; a view
/// read less often compares the snapshots' files instead.
const COMMITS_KEPT: usize = 256;

/// A Delta snapshot of a table as its scans read it.
pub(super) struct Snapshot {
    pub(super) provider: Arc<dyn TableProvider>,
    /// `None` while the table is not written.
    pub(super) version: Option<u64>,
    pub(super) files: Files,
    /// How many files below [`crate::lake::COMPACT_TARGET_BYTES`] hold rows from each day
    /// on (by their first day): what a compaction would merge.
    pub(super) small_files: SmallFiles,
    /// The snapshot's files for bright's own scan; `None` where only `provider` reads them.
    pub(super) direct: Option<Arc<LakeFiles>>,
    /// What the commits since the table's previous snapshot did, as far as read.
    pub(super) commits: Vec<(u64, CommitChange)>,
}

impl Snapshot {
    /// A table not written yet, read through `provider`.
    pub(super) fn empty(provider: Arc<dyn TableProvider>) -> Self {
        Snapshot {
            provider,
            version: None,
            files: Files::new(),
            small_files: SmallFiles::new(),
            direct: None,
            commits: Vec::new(),
        }
    }
}

/// The rows queries saw of a table at one moment, as much as is needed to tell later on which
/// days the rows that came since fall ([`Seen::change_since`]).
#[derive(Debug, Clone, Default)]
pub struct Seen {
    version: Version,
    files: Arc<Files>,
    commits: Arc<Commits>,
    /// The days of the rows then in the buffer.
    buffered: std::collections::BTreeSet<i32>,
}

/// How a table's rows changed between two moments it was [`Seen`]. Days are days since the
/// epoch (Arrow's `Date32`), each a file's or a buffered row's partition day.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Change {
    /// Not at all.
    None,
    /// Rows were added, all on this day or later; none went.
    AddedFrom(i32),
    /// Files went too (a rewrite whose commits do not say it changed no row), all of them,
    /// like those added, holding rows on this day or later only.
    RewrittenFrom(i32),
    /// A file's days are unknown, or a commit changed no file (a schema change, say):
    /// anything may have changed.
    Unknown,
}

impl Seen {
    /// How the rows changed from `then` to `self`: from the commits in between when each is
    /// remembered, else by comparing the snapshots' files. Rows flushed from the buffer to
    /// the lake in between count as added (their days are the same either way).
    pub fn change_since(&self, then: &Seen) -> Change {
        use arrow::datatypes::Date32Type;
        if self.version == then.version {
            return Change::None;
        }
        let mut days: Vec<i32> = self
            .buffered
            .iter()
            .chain(&then.buffered)
            .copied()
            .collect();
        let mut rewritten = false;
        if let Some(added) = self.added_by_commits(then) {
            days.extend(added);
        } else if self.version.0 != then.version.0 {
            let added = self
                .files
                .iter()
                .filter(|(p, _)| !then.files.contains_key(*p));
            let went: Vec<_> = then
                .files
                .iter()
                .filter(|(p, _)| !self.files.contains_key(*p))
                .collect();
            rewritten = !went.is_empty();
            let mut moved = 0;
            for (_, day) in added.chain(went) {
                match day {
                    Some(day) => days.push(Date32Type::from_naive_date(*day)),
                    None => return Change::Unknown,
                }
                moved += 1;
            }
            // A commit that moved no file may still change what rows read.
            if moved == 0 {
                return Change::Unknown;
            }
        }
        match (days.into_iter().min(), rewritten) {
            (None, _) => Change::None,
            (Some(day), false) => Change::AddedFrom(day),
            (Some(day), true) => Change::RewrittenFrom(day),
        }
    }

    /// The first day of each commit's rows between `then` and `self`, when every commit in
    /// between only added rows or moved them between files (a compaction, which changes no
    /// row); `None` when one did anything else or is not remembered.
    fn added_by_commits(&self, then: &Seen) -> Option<Vec<i32>> {
        use arrow::datatypes::Date32Type;
        let (Some(from), Some(to)) = (then.version.0, self.version.0) else {
            return None;
        };
        if to < from {
            return None;
        }
        let mut days = Vec::new();
        for version in from.checked_add(1)?..=to {
            match self.commits.get(&version)? {
                CommitChange::Rearranged => {}
                CommitChange::Added(day) => days.push(Date32Type::from_naive_date(*day)),
                CommitChange::Other => return None,
            }
        }
        Some(days)
    }
}

/// A lake table registered in the session.
#[derive(Debug)]
pub(super) struct LiveTable {
    /// Which lake table this is.
    pub(super) table: crate::schema::Table,
    /// As queries see it: the canonical columns, typed as the lake reads them.
    pub(super) schema: SchemaRef,
    state: RwLock<State>,
    /// Counts changes of the rows queries see (rows acknowledged, another writer's commit),
    /// so live boards recompute when, and only when, their tables change.
    changed: tokio::sync::watch::Sender<u64>,
}

#[derive(Debug, Clone)]
struct State {
    provider: Arc<dyn TableProvider>,
    /// Read by bright's own scan instead of `provider`'s when set.
    direct: Option<Arc<LakeFiles>>,
    /// Delta version of `provider`; `None` while the table is not written.
    version: Option<u64>,
    /// The data files of `provider`'s snapshot.
    files: Arc<Files>,
    small_files: Arc<SmallFiles>,
    /// What the latest commits did, up to `version`.
    commits: Arc<Commits>,
    /// Oldest first; each generation is flushed as one commit.
    buffer: VecDeque<Generation>,
    /// Bumped on every change of the buffer.
    buffer_version: u64,
    next_generation: u64,
}

impl State {
    /// Starts a new, empty generation that appends go to.
    fn open_generation(&mut self) {
        let id = self.next_generation;
        self.next_generation += 1;
        self.buffer.push_back(Generation {
            id,
            batches: Vec::new(),
        });
    }
}

#[derive(Debug, Clone)]
struct Generation {
    id: u64,
    /// In the canonical schema (`Utf8` text), as they will be written.
    batches: Vec<RecordBatch>,
}

impl LiveTable {
    pub(super) fn new(table: crate::schema::Table, snapshot: Snapshot) -> Self {
        LiveTable {
            table,
            schema: query_schema(table, &snapshot.provider.schema()),
            state: RwLock::new(State {
                provider: snapshot.provider,
                direct: snapshot.direct,
                version: snapshot.version,
                files: Arc::new(snapshot.files),
                small_files: Arc::new(snapshot.small_files),
                commits: Arc::new(snapshot.commits.into_iter().collect()),
                buffer: VecDeque::new(),
                buffer_version: 0,
                next_generation: 0,
            }),
            changed: tokio::sync::watch::Sender::new(0),
        }
    }

    /// Ticks on every change of the rows queries see; a flush, which only moves rows from
    /// the buffer to the lake, does not tick.
    pub(super) fn changes(&self) -> tokio::sync::watch::Receiver<u64> {
        self.changed.subscribe()
    }

    fn tell(&self) {
        self.changed.send_modify(|n| *n = n.wrapping_add(1));
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, State> {
        // A poisoned lock only means a writer panicked between whole updates.
        self.state.read().unwrap_or_else(|p| p.into_inner())
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, State> {
        self.state.write().unwrap_or_else(|p| p.into_inner())
    }

    /// Equal versions mean equal contents.
    pub(super) fn version(&self) -> Version {
        let state = self.read();
        (state.version, state.buffer_version)
    }

    /// The Delta version of the lake part.
    pub(super) fn lake_version(&self) -> Option<u64> {
        self.read().version
    }

    /// How many small files hold rows from each day on, by the first day they hold.
    pub(super) fn small_files(&self) -> Arc<SmallFiles> {
        self.read().small_files.clone()
    }

    /// Those of `days` (days since 1970-01-01) the table may hold rows of: a day that no data
    /// file's days span and no buffered row falls on has none, and needs no scan to tell.
    pub(super) fn days_held(&self, days: &[i32]) -> Vec<i32> {
        let state = self.read();
        // A buffered batch without its day column (never made) may hold any day.
        let buffered = |day: i32| {
            buffered_dates(&state).any(|dates| dates.is_none_or(|d| d.values().contains(&day)))
        };
        days.iter()
            .copied()
            .filter(|&day| {
                let in_lake = match (state.version, &state.direct) {
                    (None, _) => false,
                    (Some(_), Some(direct)) => direct.may_hold(day),
                    // Read by Delta's scan alone: only a scan can tell.
                    (Some(_), None) => true,
                };
                in_lake || buffered(day)
            })
            .collect()
    }

    /// The last day (days since 1970-01-01) the table holds rows of, in the lake (from the
    /// log's file statistics) and the buffer; `None` when it holds none, or when that cannot
    /// be told without a scan (a file the log gives no days for, a table only Delta's scan
    /// reads, a buffered batch without its day column).
    pub(super) fn last_day(&self) -> Option<i32> {
        let state = self.read();
        let mut last = match (state.version, &state.direct) {
            (None, _) => None,
            (Some(_), Some(direct)) => direct.last_day()?,
            (Some(_), None) => return None,
        };
        for dates in buffered_dates(&state) {
            last = last.max(arrow::compute::max(dates?));
        }
        last
    }

    /// What queries see now, to compare with later ([`Seen::change_since`]).
    pub(super) fn seen(&self) -> Seen {
        let state = self.read();
        Seen {
            version: (state.version, state.buffer_version),
            files: state.files.clone(),
            commits: state.commits.clone(),
            buffered: buffered_days(&state),
        }
    }

    /// Moves to a new Delta snapshot; with `flushed`, drops the buffer generations up to and
    /// including it in the same step (they are in that snapshot now).
    pub(super) fn replace(&self, snapshot: Snapshot, flushed: Option<u64>) {
        let mut state = self.write();
        let mut commits = (*state.commits).clone();
        commits.extend(snapshot.commits);
        while commits.len() > COMMITS_KEPT {
            commits.pop_first();
        }
        // Boards are not told of a compaction: the rows they read are the same.
        let moved = match (state.version, snapshot.version) {
            (Some(from), Some(to)) if from < to => {
                !(from + 1..=to).all(|v| commits.get(&v) == Some(&CommitChange::Rearranged))
            }
            (from, to) => from != to,
        };
        state.commits = Arc::new(commits);
        state.provider = snapshot.provider;
        state.direct = snapshot.direct;
        state.version = snapshot.version;
        state.files = Arc::new(snapshot.files);
        state.small_files = Arc::new(snapshot.small_files);
        if let Some(flushed) = flushed {
            let before = state.buffer.len();
            state.buffer.retain(|g| g.id > flushed);
            if state.buffer.len() != before {
                state.buffer_version += 1;
            }
        }
        drop(state);
        if flushed.is_none() && moved {
            self.tell();
        }
    }

    /// Adds acknowledged rows (canonical schema).
    pub(super) fn append(&self, batch: RecordBatch) -> std::result::Result<(), DataFusionError> {
        let mut state = self.write();
        if state.buffer.is_empty() {
            state.open_generation();
        }
        let generation = state
            .buffer
            .back_mut()
            .expect("a generation was just ensured");
        generation.batches.push(batch);
        for below in MERGE_TIERS {
            let small = generation
                .batches
                .iter()
                .rev()
                .take_while(|b| b.num_rows() < below)
                .count();
            if small >= MERGE_AFTER {
                let start = generation.batches.len() - small;
                let schema = generation.batches[start].schema();
                let merged = concat_batches(&schema, &generation.batches[start..])?;
                generation.batches.truncate(start);
                generation.batches.push(merged);
            }
        }
        state.buffer_version += 1;
        drop(state);
        self.tell();
        Ok(())
    }

    /// Closes the newest generation holding rows, for a flush: later appends start a new
    /// one. Returns its id and the rows of it and of any older generation (left by a flush
    /// that failed), or `None` when nothing is buffered.
    pub(super) fn seal(&self) -> Option<(u64, Vec<RecordBatch>)> {
        let mut state = self.write();
        let last = state
            .buffer
            .iter()
            .rev()
            .find(|g| !g.batches.is_empty())?
            .id;
        if state.buffer.back().map(|g| g.id) == Some(last) {
            state.open_generation();
        }
        let batches = state
            .buffer
            .iter()
            .filter(|g| g.id <= last)
            .flat_map(|g| g.batches.iter().cloned())
            .collect();
        Some((last, batches))
    }

    /// Rows waiting in the buffer.
    pub(super) fn buffered_rows(&self) -> usize {
        self.read()
            .buffer
            .iter()
            .flat_map(|g| &g.batches)
            .map(RecordBatch::num_rows)
            .sum()
    }

    /// The buffered rows in the schema queries see.
    fn buffered(&self, state: &State) -> Result<Vec<RecordBatch>> {
        let mut out = Vec::new();
        for batch in state.buffer.iter().flat_map(|g| &g.batches) {
            let columns = self
                .schema
                .fields()
                .iter()
                .map(|field| {
                    let column = batch.column_by_name(field.name()).ok_or_else(|| {
                        DataFusionError::Internal(format!("buffer lacks {}", field.name()))
                    })?;
                    Ok(cast(column, field.data_type())?)
                })
                .collect::<Result<Vec<_>>>()?;
            out.push(RecordBatch::try_new(self.schema.clone(), columns)?);
        }
        Ok(out)
    }

    /// Scans the lake part, matching columns by name: a table created before a column was
    /// added to the schema lists it after the partition column, or (in a lake not yet
    /// upgraded) lacks it, which reads as null.
    async fn scan_lake(
        &self,
        provider: &dyn TableProvider,
        direct: Option<&LakeFiles>,
        state: &dyn Session,
        projection: Option<&Vec<usize>>,
        filters: &[Expr],
        limit: Option<usize>,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        let lake_schema = provider.schema();
        let wanted: Vec<usize> = projection
            .cloned()
            .unwrap_or_else(|| (0..self.schema.fields().len()).collect());
        let sources: Vec<Option<usize>> = wanted
            .iter()
            .map(|&i| lake_schema.index_of(self.schema.field(i).name()).ok())
            .collect();
        let present: Vec<usize> = sources.iter().flatten().copied().collect();
        let filters: Vec<Expr> = filters
            .iter()
            .filter(|f| reads_only(f, &lake_schema))
            .cloned()
            .collect();
        let lake = match direct {
            Some(files) => {
                files
                    .scan(state, &lake_schema, &present, &filters, limit)
                    .await?
            }
            None => {
                provider
                    .scan(state, Some(&present), &filters, limit)
                    .await?
            }
        };
        if sources.iter().all(Option::is_some) {
            return Ok(lake);
        }
        let mut next = 0;
        let columns = wanted
            .iter()
            .zip(&sources)
            .map(|(&i, source)| {
                let field = self.schema.field(i);
                let expr: Arc<dyn PhysicalExpr> = match source {
                    Some(_) => {
                        next += 1;
                        Arc::new(Column::new(field.name(), next - 1))
                    }
                    None => Arc::new(Literal::new(ScalarValue::try_from(field.data_type())?)),
                };
                Ok((expr, field.name().clone()))
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(Arc::new(ProjectionExec::try_new(columns, lake)?))
    }

    /// The live table behind a registered provider, if it is one.
    pub(super) fn downcast(provider: Arc<dyn TableProvider>) -> Option<Arc<LiveTable>> {
        let any: Arc<dyn std::any::Any + Send + Sync> = provider;
        any.downcast().ok()
    }
}

/// The days (the schema's last column) of the rows in `state`'s buffer.
fn buffered_days(state: &State) -> std::collections::BTreeSet<i32> {
    buffered_dates(state)
        .flatten()
        .flat_map(|dates| dates.iter().flatten())
        .collect()
}

/// The day column of each buffered batch (the canonical schema's last column), `None` for a
/// batch without one.
fn buffered_dates(state: &State) -> impl Iterator<Item = Option<&arrow::array::Date32Array>> {
    use arrow::array::AsArray;
    use arrow::datatypes::Date32Type;
    state
        .buffer
        .iter()
        .flat_map(|g| &g.batches)
        .map(|batch| batch.columns().last()?.as_primitive_opt::<Date32Type>())
}

/// `table`'s columns in the canonical order with the types the lake reads them as, whatever
/// order or subset of them `lake` has (a column it lacks has its canonical type).
fn query_schema(table: crate::schema::Table, lake: &Schema) -> SchemaRef {
    let fields: Vec<Field> = table
        .schema()
        .fields()
        .iter()
        .map(|f| {
            lake.field_with_name(f.name())
                .map_or_else(|_| f.as_ref().clone(), Field::clone)
        })
        .collect();
    Arc::new(Schema::new(fields))
}

/// Whether `filter` reads only columns of `schema`.
fn reads_only(filter: &Expr, schema: &Schema) -> bool {
    filter
        .column_refs()
        .iter()
        .all(|c| schema.field_with_name(&c.name).is_ok())
}

#[async_trait]
impl TableProvider for LiveTable {
    fn schema(&self) -> SchemaRef {
        self.schema.clone()
    }

    fn table_type(&self) -> TableType {
        TableType::Base
    }

    fn get_logical_plan(&self) -> Option<Cow<'_, LogicalPlan>> {
        None
    }

    async fn scan(
        &self,
        state: &dyn Session,
        projection: Option<&Vec<usize>>,
        filters: &[Expr],
        limit: Option<usize>,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        let (provider, direct, buffered) = {
            let current = self.read();
            (
                current.provider.clone(),
                current.direct.clone(),
                self.buffered(&current)?,
            )
        };
        let lake = self
            .scan_lake(
                provider.as_ref(),
                direct.as_deref(),
                state,
                projection,
                filters,
                limit,
            )
            .await?;
        if buffered.is_empty() {
            return Ok(lake);
        }
        let memory = MemTable::try_new(self.schema.clone(), vec![buffered])?
            .scan(state, projection, filters, limit)
            .await?;
        UnionExec::try_new(vec![lake, memory])
    }

    fn supports_filters_pushdown(
        &self,
        filters: &[&Expr],
    ) -> Result<Vec<TableProviderFilterPushDown>> {
        // The buffer's rows are not filtered by the scan, so a filter Delta applies exactly
        // must still be applied above it; one on a column the lake table lacks is not Delta's.
        let provider = self.read().provider.clone();
        let lake_schema = provider.schema();
        let known: Vec<(usize, &Expr)> = filters
            .iter()
            .copied()
            .enumerate()
            .filter(|(_, f)| reads_only(f, &lake_schema))
            .collect();
        let mut answers = vec![TableProviderFilterPushDown::Unsupported; filters.len()];
        let known_filters: Vec<&Expr> = known.iter().map(|(_, f)| *f).collect();
        for ((i, _), answer) in known
            .iter()
            .zip(provider.supports_filters_pushdown(&known_filters)?)
        {
            answers[*i] = match answer {
                TableProviderFilterPushDown::Exact => TableProviderFilterPushDown::Inexact,
                other => other,
            };
        }
        Ok(answers)
    }
}
