//! Helper views computed once per change of the lake tables they read, not once per query.
//!
//! The midnight census rebuilds every inpatient stay from all ADT history: a sort of every
//! event per encounter, then two windows. Seven KPIs read the stays and four the census, and
//! a dashboard tick runs all of them; as plain views, the same stays were rebuilt eleven times
//! per tick. A [`MaterialisedView`] keeps its rows in memory tagged with the snapshot versions
//! of the lake tables underneath, and recomputes only when one of those moves on.
//!
//! A keyed view (`key` in `kpis.toml`: the stays by encounter, the operating lists by
//! session) is brought up to date without computing it whole. Its rows with one key come only
//! from the lake rows with that key, so when rows were only added to the tables it reads
//! (their days known from the Delta log's file statistics and the buffer), it recomputes the
//! keys found on those days and later, with its query restricted to them, and keeps the rest.
//! A compaction changes no row (its commits say so), so it changes nothing here. The view is
//! computed whole when rows went (another writer rewrote files) or a materialised view it
//! reads whole changed (the patient merges after a new A40).
//!
//! A windowed view (`day` in `kpis.toml`, and a query reading `$since`: the ward census) is
//! brought up to date from a day. Its rows on a day come only from input rows up to that day,
//! so when the lake tables it reads only gained rows from some day on, and the materialised
//! views it reads changed only from some day on (a keyed view with a `day` tells, from the
//! rows it replaced and added), it runs its query from the first such day and keeps the rows
//! before it.
//!
//! A windowed view too large to hold whole (`recent_days` in `kpis.toml`: the latest version of
//! every ED attendance) keeps only recent days: a scan whose filters on its day column start
//! within that many days of the last day the lake tables hold is served from rows computed
//! from a week before that start and brought up to date from a day as above; any other scan
//! (further back, or over all history) runs the view's query over the lake from its first day,
//! as a plain view would. Once the days held span twice the reach, the older ones go.
//!
//! The rows live outside the query memory pool (they are shared by every query, not owned by
//! one); a materialised view should therefore be a compact summary of the lake, as stays are.

use std::borrow::Cow;
use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};

use arrow::array::{Array, AsArray, BooleanArray};
use arrow::compute::{cast, concat_batches, filter_record_batch};
use arrow::datatypes::{DataType, Date32Type, SchemaRef};
use arrow::record_batch::RecordBatch;
use arrow::row::{RowConverter, SortField};
use async_trait::async_trait;
use datafusion::catalog::{Session, TableProvider};
use datafusion::common::tree_node::Transformed;
use datafusion::common::{Column, ScalarValue, TableReference};
use datafusion::datasource::{MemTable, ViewTable, provider_as_source, source_as_provider};
use datafusion::error::{DataFusionError, Result};
use datafusion::functions_aggregate::expr_fn::min;
use datafusion::logical_expr::{
    JoinType, LogicalPlan, LogicalPlanBuilder, SubqueryAlias, TableProviderFilterPushDown,
    TableType,
};
use datafusion::physical_plan::{ExecutionPlan, collect, collect_partitioned};
use datafusion::prelude::{Expr, col, lit};
use tokio::sync::Mutex;

use super::LiveTable;
use super::live::{Change, Seen};

/// The column of the keys a keyed view's recomputation is restricted to.
const KEYS_COLUMN: &str = "bright_key";

/// Batches in a keyed view's first partition before they are merged into one.
const MERGE_AFTER: usize = 64;

/// What a cached result was computed from: the version of each input, in input order.
type Versions = Vec<super::live::Version>;

/// A view whose rows are computed on first use and kept until an input table changes.
#[derive(Debug)]
pub(super) struct MaterialisedView {
    plan: LogicalPlan,
    schema: SchemaRef,
    /// The lake tables the view reads, directly or through other materialised views.
    inputs: Vec<Arc<LiveTable>>,
    /// What the view's own query reads (for keyed and windowed views).
    reads: Reads,
    /// The key of a keyed view.
    key: Option<String>,
    day: Option<Day>,
    /// Held while computing, so concurrent queries wait for one computation.
    cached: Mutex<Option<Computed>>,
    /// Moves on whenever the rows change, for the keyed views that read this one.
    generation: AtomicU64,
    /// Each change of the rows, newest last: the generation it moved to and the first day it
    /// touched, for the windowed views that read this one. Kept for [`CHANGES_KEPT`] changes;
    /// a reader further behind computes whole.
    changes: std::sync::Mutex<VecDeque<(u64, Changed)>>,
    /// A keyed view reads this one whole: a recomputation compares its rows with the last
    /// ones, so that the generation moves on only when they differ.
    watched: AtomicBool,
    /// How often the rows were computed whole, brought up to date key by key, and from a day.
    whole: AtomicU64,
    by_key: AtomicU64,
    from_day: AtomicU64,
    /// Nanoseconds spent computing the rows, every way.
    spent: AtomicU64,
    /// The first day held (days since the epoch) of a view keeping recent days;
    /// [`HELD_NONE`] while it holds none. Written with the rows, under `cached`'s lock.
    held_from: AtomicI64,
}

/// Days a view keeping recent days computes before the first one a scan asks for.
const WEEK: i32 = 7;

/// `held_from` before a view keeping recent days holds any.
const HELD_NONE: i64 = i64::MIN;

/// Changes of a view's rows kept for the windowed views that read it.
const CHANGES_KEPT: usize = 256;

/// How often a materialised view's rows were computed, since the session began.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ViewRefreshes {
    /// Computed whole, from every row of the tables it reads.
    pub whole: u64,
    /// Brought up to date by recomputing only the keys of rows added since (keyed views).
    pub by_key: u64,
    /// Brought up to date by recomputing only the days from the first one its inputs changed
    /// on (views with a `day` that read `$since`).
    pub from_day: u64,
    /// Time spent computing the rows, every way, nested views read through them included.
    pub spent: std::time::Duration,
    /// Moves on when the rows change. A view that a keyed view reads whole moves on only
    /// when recomputed rows differ from the last ones; any other, at every recomputation.
    pub changes: u64,
    /// For a view keeping recent days: the first day of the rows held in memory (none held
    /// yet: `None`).
    pub held_from: Option<chrono::NaiveDate>,
}

/// The day each row of a materialised view belongs to (`day` in `kpis.toml`).
#[derive(Debug)]
pub(super) struct Day {
    /// The column holding it.
    pub(super) column: String,
    /// When the view reads `$since`: its query with every other placeholder's value, for
    /// computing the rows from a day on.
    pub(super) window: Option<(LogicalPlan, HashMap<String, ScalarValue>)>,
    /// Keep only recent days in memory (`recent_days` in `kpis.toml`): how many days before
    /// the last day the lake tables hold a scan may start at and still be served from
    /// memory. A scan reaching further back runs the view's query over the lake.
    pub(super) recent: Option<i32>,
}

/// From which day a view's rows changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Changed {
    Nothing,
    /// Rows on this day (days since the epoch) and later.
    From(i32),
    Everything,
}

impl Changed {
    fn and(self, other: Changed) -> Changed {
        match (self, other) {
            (Changed::Everything, _) | (_, Changed::Everything) => Changed::Everything,
            (Changed::Nothing, c) | (c, Changed::Nothing) => c,
            (Changed::From(a), Changed::From(b)) => Changed::From(a.min(b)),
        }
    }
}

/// What a materialised view's own query reads.
#[derive(Debug, Default)]
struct Reads {
    /// The lake tables, directly or through plain views.
    direct: Vec<Arc<LiveTable>>,
    /// The materialised views, whole.
    nested: Vec<Arc<MaterialisedView>>,
}

#[derive(Debug)]
struct Computed {
    versions: Versions,
    /// Each direct table as the rows were computed from it (keyed and windowed views only).
    seen: Vec<Seen>,
    /// The generation of each nested view the rows were computed from (keyed and windowed
    /// views only).
    nested: Vec<u64>,
    partitions: Vec<Vec<RecordBatch>>,
    rows: Arc<MemTable>,
}

impl MaterialisedView {
    /// A view of `plan` (bound, ready to run), keyed by column `key` if given, its rows'
    /// days in `day` if given. Nothing runs until a query reads it.
    pub(super) fn new(plan: LogicalPlan, key: Option<&str>, day: Option<Day>) -> Result<Self> {
        let schema = Arc::new(plan.schema().as_arrow().clone());
        let inputs = lake_tables(&plan)?;
        if let Some(day) = &day
            && !matches!(
                schema.field_with_name(&day.column).map(|f| f.data_type()),
                Ok(DataType::Date32)
            )
        {
            return Err(DataFusionError::Plan(format!(
                "day = \"{}\" names no date column of the view",
                day.column
            )));
        }
        if let Some(day) = &day
            && day.recent.is_some()
            && (day.window.is_none() || key.is_some())
        {
            return Err(DataFusionError::Plan(
                "recent_days needs a view that reads $since and has no key".into(),
            ));
        }
        let reads = match (key, &day) {
            (None, None) => Reads::default(),
            _ => reads(&plan, &schema, key)?,
        };
        let plan = match key {
            Some(key) => with_keys_only(&plan, key)?,
            None => plan,
        };
        Ok(MaterialisedView {
            plan,
            schema,
            inputs,
            reads,
            key: key.map(str::to_string),
            day,
            cached: Mutex::new(None),
            generation: AtomicU64::new(0),
            changes: std::sync::Mutex::new(VecDeque::new()),
            watched: AtomicBool::new(false),
            whole: AtomicU64::new(0),
            by_key: AtomicU64::new(0),
            from_day: AtomicU64::new(0),
            spent: AtomicU64::new(0),
            held_from: AtomicI64::new(HELD_NONE),
        })
    }

    /// How often the rows were computed so far.
    pub(super) fn refreshes(&self) -> ViewRefreshes {
        ViewRefreshes {
            whole: self.whole.load(Ordering::Relaxed),
            by_key: self.by_key.load(Ordering::Relaxed),
            from_day: self.from_day.load(Ordering::Relaxed),
            spent: std::time::Duration::from_nanos(self.spent.load(Ordering::Relaxed)),
            changes: self.generation(),
            held_from: self.held().and_then(Date32Type::to_naive_date_opt),
        }
    }

    /// Brings the rows up to date with the lake tables' current snapshots (those held: a
    /// view keeping recent days holds none until a scan asks for them).
    pub(super) async fn bring_up_to_date(&self, state: &dyn Session) -> Result<()> {
        let from = match self.recent() {
            Some(_) => match self.held() {
                Some(from) => Some(from),
                None => return Ok(()),
            },
            None => None,
        };
        self.rows(state, from).await.map(|_| ())
    }

    /// The first day of the rows a view keeping recent days holds; `None` while it holds none
    /// (and for every other view).
    fn held(&self) -> Option<i32> {
        i32::try_from(self.held_from.load(Ordering::Relaxed)).ok()
    }

    /// How many days before the lake's last one the rows held in memory may start at.
    fn recent(&self) -> Option<i32> {
        self.day.as_ref().and_then(|d| d.recent)
    }

    /// The last day the lake tables the view reads hold rows of; `None` when one does not
    /// tell.
    fn last_input_day(&self) -> Option<i32> {
        let mut last = None;
        for table in &self.reads.direct {
            last = last.max(Some(table.last_day()?));
        }
        last
    }

    /// The view's query run from `since` (days since the epoch) on; `None` for a view that
    /// does not read `$since`.
    fn plan_from(&self, since: i32) -> Result<Option<LogicalPlan>> {
        let Some(Day {
            window: Some((unbound, values)),
            ..
        }) = &self.day
        else {
            return Ok(None);
        };
        let mut values = values.clone();
        values.insert(
            crate::kpi::SINCE.to_string(),
            ScalarValue::Date32(Some(since)),
        );
        Ok(Some(unbound.clone().with_param_values(
            datafusion::common::ParamValues::from(values),
        )?))
    }

    fn versions(&self) -> Versions {
        self.inputs.iter().map(|t| t.version()).collect()
    }

    fn generation(&self) -> u64 {
        self.generation.load(Ordering::Acquire)
    }

    /// Moves the generation on, noting from which day the rows changed.
    fn changed(&self, changed: Changed) {
        if changed == Changed::Nothing {
            return;
        }
        let mut changes = self.changes.lock().unwrap_or_else(|e| e.into_inner());
        let generation = self.generation.fetch_add(1, Ordering::AcqRel) + 1;
        changes.push_back((generation, changed));
        if changes.len() > CHANGES_KEPT {
            changes.pop_front();
        }
    }

    /// From which day the rows changed since generation `then`.
    fn changed_since(&self, then: u64) -> Changed {
        let changes = self.changes.lock().unwrap_or_else(|e| e.into_inner());
        let now = self.generation();
        let mut next = then + 1;
        let mut since = Changed::Nothing;
        for (generation, changed) in changes.iter().filter(|(g, _)| *g > then) {
            if *generation != next {
                return Changed::Everything;
            }
            since = since.and(*changed);
            next += 1;
        }
        // Changes older than the kept ones are not known.
        if next != now + 1 {
            return Changed::Everything;
        }
        since
    }

    /// The view reads `$since`, and its rows' days are known: it can be computed from a day.
    fn windowed(&self) -> bool {
        self.day.as_ref().is_some_and(|d| d.window.is_some())
    }

    /// The rows for the inputs' current snapshots, computed now if they changed: for a keyed
    /// view, only the keys of the rows added since, and for a windowed one only the days from
    /// the first one its inputs changed on, when that can be told.
    ///
    /// A view keeping recent days holds rows from a day on: `need` is the first day a scan
    /// reads. `None` when the rows held do not reach back to it and it is too far back to
    /// hold (or not given): the scan reads the lake instead.
    async fn rows(&self, state: &dyn Session, need: Option<i32>) -> Result<Option<Arc<MemTable>>> {
        let mut cached = self.cached.lock().await;
        // Read before computing: if a table moves on while this runs, the result is tagged
        // with the older version and the next query computes again.
        let versions = self.versions();
        let mut start = None;
        if let Some(recent) = self.recent() {
            let Some(need) = need else {
                return Ok(None);
            };
            match cached.as_ref().and(self.held()) {
                Some(from) if from <= need => start = Some(from),
                _ => match self.last_input_day() {
                    // Computed afresh (what was held began later), from a week before
                    // `need` where the reach allows: a tick's series read from the day
                    // before the open day, patients in the department and the command
                    // centre from a week before that, and one computation serves them all.
                    Some(last) if need >= last.saturating_sub(recent) => {
                        *cached = None;
                        self.held_from.store(HELD_NONE, Ordering::Relaxed);
                        let reach = last.saturating_sub(recent);
                        start = Some(need.saturating_sub(WEEK).max(reach));
                    }
                    _ => return Ok(None),
                },
            }
        }
        if let Some(computed) = cached.as_ref()
            && computed.versions == versions
        {
            return Ok(Some(computed.rows.clone()));
        }
        let started = std::time::Instant::now();
        let (seen, nested) = match self.key.is_some() || self.windowed() {
            true => {
                // Nested views first, so their generations say whether their rows changed.
                let mut nested = Vec::new();
                for view in &self.reads.nested {
                    Box::pin(view.rows(state, None)).await?;
                    nested.push(view.generation());
                }
                (self.reads.direct.iter().map(|t| t.seen()).collect(), nested)
            }
            false => (Vec::new(), Vec::new()),
        };
        let update = match (cached.as_ref(), &self.key) {
            (Some(before), Some(key)) if before.nested == nested => {
                let update = self.update(state, key, before).await?;
                if update.is_some() {
                    self.by_key.fetch_add(1, Ordering::Relaxed);
                }
                update
            }
            (Some(before), None) if self.windowed() => {
                let update = self.update_from_day(state, before).await?;
                if update.is_some() {
                    self.from_day.fetch_add(1, Ordering::Relaxed);
                }
                update
            }
            _ => None,
        };
        let partitions = match update {
            Some((partitions, changed)) => {
                self.changed(changed);
                partitions
            }
            None => {
                self.whole.fetch_add(1, Ordering::Relaxed);
                let plan = match start {
                    Some(day) => Cow::Owned(self.plan_from(day)?.ok_or_else(|| {
                        DataFusionError::Internal("a recent view reads $since".into())
                    })?),
                    None => Cow::Borrowed(&self.plan),
                };
                let partitions = self.compute(state, &plan).await?;
                let same = match cached.as_ref() {
                    Some(before) if self.watched.load(Ordering::Relaxed) => {
                        same_rows(&self.schema, &before.partitions, &partitions)?
                    }
                    _ => false,
                };
                self.changed(match same {
                    true => Changed::Nothing,
                    false => Changed::Everything,
                });
                partitions
            }
        };
        let partitions = match (self.recent(), start) {
            (Some(recent), Some(from)) => {
                let (kept, from) = self.trimmed(partitions, from, recent)?;
                self.held_from.store(i64::from(from), Ordering::Relaxed);
                kept
            }
            _ => partitions,
        };
        let rows = Arc::new(MemTable::try_new(self.schema.clone(), partitions.clone())?);
        *cached = Some(Computed {
            versions,
            seen,
            nested,
            partitions,
            rows: rows.clone(),
        });
        let spent = u64::try_from(started.elapsed().as_nanos()).unwrap_or(u64::MAX);
        self.spent.fetch_add(spent, Ordering::Relaxed);
        Ok(Some(rows))
    }

    /// The rows of a view keeping `recent` days, held from `from` on: once they span twice
    /// that, the days before the last `recent` go, so that a view served for months holds a
    /// few weeks, not everything since it started.
    fn trimmed(
        &self,
        partitions: Vec<Vec<RecordBatch>>,
        from: i32,
        recent: i32,
    ) -> Result<(Vec<Vec<RecordBatch>>, i32)> {
        let Some(day) = &self.day else {
            return Ok((partitions, from));
        };
        let Some(last) = last_day(&partitions, &day.column)? else {
            return Ok((partitions, from));
        };
        let horizon = last.saturating_sub(recent);
        if from >= horizon.saturating_sub(recent) {
            return Ok((partitions, from));
        }
        let kept = partitions
            .iter()
            .map(|batches| {
                batches
                    .iter()
                    .map(|b| on_days(b, &day.column, |d| d >= horizon))
                    .collect::<Result<Vec<_>>>()
            })
            .collect::<Result<Vec<_>>>()?;
        Ok((kept, horizon))
    }

    /// Runs `plan`, its rows in the declared schema.
    async fn compute(
        &self,
        state: &dyn Session,
        plan: &LogicalPlan,
    ) -> Result<Vec<Vec<RecordBatch>>> {
        let physical = state.create_physical_plan(plan).await?;
        let partitions = collect_partitioned(physical, state.task_ctx()).await?;
        // The rows carry the physical plan's schema, which may differ from the declared one
        // in field metadata only; queries were planned against the declared one.
        partitions
            .into_iter()
            .map(|batches| {
                batches
                    .into_iter()
                    .map(|b| RecordBatch::try_new(self.schema.clone(), b.columns().to_vec()))
                    .collect::<std::result::Result<Vec<_>, _>>()
            })
            .collect::<std::result::Result<Vec<_>, _>>()
            .map_err(Into::into)
    }

    /// `before`'s rows brought up to date by recomputing only the keys of the rows added to
    /// the direct tables since, with the first day of the rows that changed; `None` when that
    /// cannot be told (files rewritten, say), and the whole view must be computed again.
    async fn update(
        &self,
        state: &dyn Session,
        key: &str,
        before: &Computed,
    ) -> Result<Option<(Vec<Vec<RecordBatch>>, Changed)>> {
        let mut keys = Keys::default();
        for (table, then) in self.reads.direct.iter().zip(&before.seen) {
            match table.seen().change_since(then) {
                Change::None => {}
                // Rows went: the keys they held are not known.
                Change::RewrittenFrom(_) | Change::Unknown => return Ok(None),
                Change::AddedFrom(day) => {
                    keys.add_from(state, table, key, day).await?;
                }
            }
        }
        if keys.is_empty() {
            return Ok(Some((before.partitions.clone(), Changed::Nothing)));
        }
        let from = keys.first_days(state, &self.reads.direct, key).await?;
        let restricted = restrict(&self.plan, key, &keys, &from)?;
        let fresh: Vec<RecordBatch> = self
            .compute(state, &restricted)
            .await?
            .into_iter()
            .flatten()
            .collect();
        // The old rows of the keys recomputed go; their new rows join the first partition.
        let mut changed = self.first_day(fresh.iter().map(|b| (b, None)))?;
        let mut partitions = Vec::with_capacity(before.partitions.len().max(1));
        for batches in &before.partitions {
            let mut kept = Vec::with_capacity(batches.len());
            for batch in batches {
                let column = batch.column_by_name(key).ok_or_else(|| {
                    DataFusionError::Internal(format!("the view lacks its key {key}"))
                })?;
                let keep = keys.absent(column)?;
                if keep.true_count() == batch.num_rows() {
                    kept.push(batch.clone());
                } else {
                    let gone = arrow::compute::not(&keep)?;
                    changed = changed.and(self.first_day([(batch, Some(&gone))])?);
                    kept.push(filter_record_batch(batch, &keep)?);
                }
            }
            partitions.push(kept);
        }
        Ok(Some((self.append(partitions, fresh)?, changed)))
    }

    /// `before`'s rows brought up to date from the first day the inputs changed on, with the
    /// view's query run from that day (`$since`) and the rows before it kept; `None` when that
    /// cannot be told, and the whole view must be computed again.
    async fn update_from_day(
        &self,
        state: &dyn Session,
        before: &Computed,
    ) -> Result<Option<(Vec<Vec<RecordBatch>>, Changed)>> {
        let Some(Day {
            column,
            window: Some(_),
            ..
        }) = &self.day
        else {
            return Ok(None);
        };
        let mut changed = Changed::Nothing;
        for (table, then) in self.reads.direct.iter().zip(&before.seen) {
            changed = changed.and(match table.seen().change_since(then) {
                Change::None => Changed::Nothing,
                Change::AddedFrom(day) => Changed::From(day),
                Change::RewrittenFrom(_) | Change::Unknown => Changed::Everything,
            });
        }
        for (view, then) in self.reads.nested.iter().zip(&before.nested) {
            changed = changed.and(view.changed_since(*then));
        }
        let from = match changed {
            Changed::Nothing => return Ok(Some((before.partitions.clone(), Changed::Nothing))),
            Changed::Everything => return Ok(None),
            Changed::From(day) => day,
        };
        // A day's margin: a lake table's day is the UTC one, a view's may be the trust's.
        // And from the day after the last row at the latest: the days after it have rows
        // once the inputs reach them, whichever day the new input rows are on.
        let Some(last) = last_day(&before.partitions, column)? else {
            return Ok(None);
        };
        let since = from.saturating_sub(1).min(last.saturating_add(1));
        // Rows before the first day held are not held, changed or not.
        let since = self.held().map_or(since, |held| since.max(held));
        let Some(plan) = self.plan_from(since)? else {
            return Ok(None);
        };
        let fresh = self.compute(state, &plan).await?;
        let fresh = fresh
            .iter()
            .flatten()
            .map(|b| on_days(b, column, |day| day >= since))
            .collect::<Result<Vec<_>>>()?;
        let mut partitions = Vec::with_capacity(before.partitions.len().max(1));
        for batches in &before.partitions {
            partitions.push(
                batches
                    .iter()
                    .map(|b| on_days(b, column, |day| day < since))
                    .collect::<Result<Vec<_>>>()?,
            );
        }
        Ok(Some((
            self.append(partitions, fresh)?,
            Changed::From(since),
        )))
    }

    /// `partitions` with `fresh` added to the first one. Every update adds a few small
    /// batches; they are merged once there are many, so that scans of the view do not slow
    /// down tick after tick.
    fn append(
        &self,
        mut partitions: Vec<Vec<RecordBatch>>,
        fresh: Vec<RecordBatch>,
    ) -> Result<Vec<Vec<RecordBatch>>> {
        if partitions.is_empty() {
            partitions.push(Vec::new());
        }
        partitions[0].extend(fresh);
        if partitions[0].len() > MERGE_AFTER {
            let merged = concat_batches(&self.schema, &partitions[0])?;
            partitions[0] = vec![merged];
        }
        Ok(partitions)
    }

    /// The first day of `rows` (each batch's rows where its mask is true, or all): from
    /// where they change the view, for the windowed views that read it. Without a declared
    /// day, or with a row without one, everything.
    fn first_day<'a>(
        &self,
        rows: impl IntoIterator<Item = (&'a RecordBatch, Option<&'a BooleanArray>)>,
    ) -> Result<Changed> {
        let Some(day) = &self.day else {
            return Ok(Changed::Everything);
        };
        let mut changed = Changed::Nothing;
        for (batch, mask) in rows {
            let days = match mask {
                Some(mask) => arrow::compute::filter(day_column(batch, &day.column)?, mask)?,
                None => day_column(batch, &day.column)?.clone(),
            };
            if days.null_count() > 0 {
                return Ok(Changed::Everything);
            }
            if let Some(first) = arrow::compute::min(days.as_primitive::<Date32Type>()) {
                changed = changed.and(Changed::From(first));
            }
        }
        Ok(changed)
    }
}

/// The column `name` of `batch`, a date.
fn day_column<'a>(batch: &'a RecordBatch, name: &str) -> Result<&'a arrow::array::ArrayRef> {
    batch
        .column_by_name(name)
        .filter(|c| c.data_type() == &DataType::Date32)
        .ok_or_else(|| DataFusionError::Internal(format!("the view lacks its day {name}")))
}

/// The last day in column `name` of `partitions`; `None` without rows.
fn last_day(partitions: &[Vec<RecordBatch>], name: &str) -> Result<Option<i32>> {
    let mut last = None;
    for batch in partitions.iter().flatten() {
        let days = day_column(batch, name)?.as_primitive::<Date32Type>();
        last = last.max(arrow::compute::max(days));
    }
    Ok(last)
}

/// The rows of `batch` whose day (column `name`) passes `keep`; rows without one go.
fn on_days(batch: &RecordBatch, name: &str, keep: impl Fn(i32) -> bool) -> Result<RecordBatch> {
    let days = day_column(batch, name)?.as_primitive::<Date32Type>();
    let mask: BooleanArray = days.iter().map(|d| Some(d.is_some_and(&keep))).collect();
    if mask.true_count() == batch.num_rows() {
        return Ok(batch.clone());
    }
    Ok(filter_record_batch(batch, &mask)?)
}

/// The keys to recompute: every key value of the rows added to a direct table since.
#[derive(Debug, Default)]
struct Keys {
    /// As text, to find the view's rows of them.
    text: HashSet<String>,
    /// The key column's type in the lake, for the table of keys joined to the lake's rows.
    data_type: Option<DataType>,
}

impl Keys {
    fn is_empty(&self) -> bool {
        self.text.is_empty()
    }

    /// Adds the keys of `table`'s rows on `day` (days since the epoch) and later: a superset
    /// of the rows added since, which all fall on such days.
    async fn add_from(
        &mut self,
        state: &dyn Session,
        table: &Arc<LiveTable>,
        key: &str,
        day: i32,
    ) -> Result<()> {
        let source = provider_as_source(table.clone());
        let plan = LogicalPlanBuilder::scan(table.table.name(), source, None)?
            .filter(col(table.table.day_column()).gt_eq(lit(ScalarValue::Date32(Some(day)))))?
            .aggregate(vec![col(key)], Vec::<Expr>::new())?
            .build()?;
        let physical = state.create_physical_plan(&plan).await?;
        for batch in collect(physical, state.task_ctx()).await? {
            let column = batch.column(0);
            self.data_type
                .get_or_insert_with(|| column.data_type().clone());
            let text = cast(column, &DataType::Utf8)?;
            // Rows without a key are not read by the view.
            for key in text.as_string::<i32>().iter().flatten() {
                self.text.insert(key.to_string());
            }
        }
        Ok(())
    }

    /// The keys as a one-column table, [`KEYS_COLUMN`]; `None` when there are none.
    fn table(&self) -> Result<Option<LogicalPlan>> {
        let Some(data_type) = self.data_type.as_ref().filter(|_| !self.text.is_empty()) else {
            return Ok(None);
        };
        let text: arrow::array::StringArray = self.text.iter().map(Some).collect();
        let array = cast(&text, data_type)?;
        let schema = Arc::new(arrow::datatypes::Schema::new(vec![
            arrow::datatypes::Field::new(KEYS_COLUMN, array.data_type().clone(), false),
        ]));
        let batch = RecordBatch::try_new(schema.clone(), vec![array])?;
        let table = MemTable::try_new(schema, vec![vec![batch]])?;
        Ok(Some(
            LogicalPlanBuilder::scan("bright_keys", provider_as_source(Arc::new(table)), None)?
                .build()?,
        ))
    }

    /// For each direct table, the first day of its rows with one of these keys. A key's rows
    /// in a view come only from its rows in the tables, so the recomputation reads only the
    /// tables' days from there on: a region's open day holds nine thousand encounters, the
    /// earliest begun ten weeks before, and reading ADT from that day on took the stays'
    /// recomputation from 2.0 s to 0.25 s.
    async fn first_days(
        &self,
        state: &dyn Session,
        direct: &[Arc<LiveTable>],
        key: &str,
    ) -> Result<HashMap<crate::schema::Table, i32>> {
        let mut first = HashMap::new();
        let Some(keys) = self.table()? else {
            return Ok(first);
        };
        for table in direct {
            let name = TableReference::bare(table.table.name());
            let scan =
                LogicalPlanBuilder::scan(name.clone(), provider_as_source(table.clone()), None)?
                    .build()?;
            let plan = LogicalPlanBuilder::from(semi_join(
                keys.clone(),
                scan,
                Column::new(Some(name.clone()), key),
            )?)
            .aggregate(Vec::<Expr>::new(), vec![min(col(table.table.day_column()))])?
            .build()?;
            let physical = state.create_physical_plan(&plan).await?;
            for batch in collect(physical, state.task_ctx()).await? {
                let Some(days) = batch.column(0).as_primitive_opt::<Date32Type>() else {
                    return Err(DataFusionError::Internal(format!(
                        "{}'s day column is not a date",
                        table.table.name()
                    )));
                };
                if !days.is_empty() && days.is_valid(0) {
                    first.insert(table.table, days.value(0));
                }
            }
        }
        Ok(first)
    }

    /// True where `column` (the view's key) holds none of these keys.
    fn absent(&self, column: &dyn Array) -> Result<BooleanArray> {
        let text = cast(column, &DataType::Utf8)?;
        let text = text.as_string::<i32>();
        // A row without a key came from no lake row with one: no key recomputed holds it.
        Ok(text
            .iter()
            .map(|key| Some(key.is_none_or(|key| !self.text.contains(key))))
            .collect())
    }
}

/// What a keyed or windowed view's query reads. For a view keyed by `key`, also checks that
/// it can be kept up to date key by key: every lake table its query reads (directly or
/// through plain views) has the key, and so does the view; and the materialised views it
/// reads are watched, so that they tell when their rows really changed.
fn reads(plan: &LogicalPlan, schema: &SchemaRef, key: Option<&str>) -> Result<Reads> {
    if let Some(key) = key
        && schema.field_with_name(key).is_err()
    {
        return Err(DataFusionError::Plan(format!(
            "the view is keyed by {key}, which it does not return"
        )));
    }
    let mut found = Reads::default();
    each_read(plan, &mut |read| {
        match read {
            Read::View(view) => {
                if key.is_some() {
                    view.watched.store(true, Ordering::Relaxed);
                }
                if !found.nested.iter().any(|v| Arc::ptr_eq(v, &view)) {
                    found.nested.push(view);
                }
            }
            Read::Table(live) => {
                if let Some(key) = key
                    && live.schema.field_with_name(key).is_err()
                {
                    return Err(DataFusionError::Plan(format!(
                        "the view is keyed by {key}, which {} lacks",
                        live.table.name()
                    )));
                }
                if !found.direct.iter().any(|t| Arc::ptr_eq(t, &live)) {
                    found.direct.push(live);
                }
            }
        }
        Ok(())
    })?;
    Ok(found)
}

/// What a plan reads through one of its scans.
enum Read {
    View(Arc<MaterialisedView>),
    Table(Arc<LiveTable>),
}

/// Calls `f` with every materialised view and lake table `plan` scans, plain views looked
/// through (not the materialised views' own plans).
fn each_read(plan: &LogicalPlan, f: &mut dyn FnMut(Read) -> Result<()>) -> Result<()> {
    use datafusion::common::tree_node::TreeNodeRecursion;
    plan.apply_with_subqueries(|node| {
        if let LogicalPlan::TableScan(scan) = node {
            if let Some(inner) = scan.source.get_logical_plan() {
                each_read(&inner, f)?;
            } else if let Ok(provider) = source_as_provider(&scan.source) {
                let any: Arc<dyn std::any::Any + Send + Sync> = provider.clone();
                if let Ok(view) = any.downcast::<MaterialisedView>() {
                    f(Read::View(view))?;
                } else if let Some(live) = LiveTable::downcast(provider) {
                    f(Read::Table(live))?;
                }
            }
        }
        Ok(TreeNodeRecursion::Continue)
    })?;
    Ok(())
}

/// The rows of `scan` whose `column` is one of `keys` ([`Keys::table`]): the keys as a table
/// joined to the scan, not a filter `key IN (…)`. With the nine thousand encounters of a
/// region's open day, that list took 2.2 s to filter ten million ADT events, the join 0.3 s.
/// The keys are the side held in memory.
fn semi_join(keys: LogicalPlan, scan: LogicalPlan, column: Column) -> Result<LogicalPlan> {
    LogicalPlanBuilder::from(keys)
        .join(
            scan,
            JoinType::RightSemi,
            (vec![Column::from_name(KEYS_COLUMN)], vec![column]),
            None,
        )?
        .build()
}

/// `plan` with each scan of a lake table replaced by `with(scan, its name, the table)`; plain
/// views are inlined, so that the tables inside them are replaced too, and materialised views
/// are left as they are (read whole).
fn rewrite_scans(
    plan: &LogicalPlan,
    with: &dyn Fn(LogicalPlan, &TableReference, &LiveTable) -> Result<LogicalPlan>,
) -> Result<LogicalPlan> {
    let rewritten = plan.clone().transform_up_with_subqueries(|node| {
        let LogicalPlan::TableScan(scan) = node else {
            return Ok(Transformed::no(node));
        };
        if let Some(inner) = scan.source.get_logical_plan() {
            if scan.projection.is_some() || !scan.filters.is_empty() || scan.fetch.is_some() {
                return Err(DataFusionError::Plan(
                    "a keyed view reads a plain view through a projected scan".into(),
                ));
            }
            let inner = rewrite_scans(&inner, with)?;
            let alias = SubqueryAlias::try_new(Arc::new(inner), scan.table_name.clone())?;
            return Ok(Transformed::yes(LogicalPlan::SubqueryAlias(alias)));
        }
        let Some(live) = source_as_provider(&scan.source)
            .ok()
            .and_then(LiveTable::downcast)
        else {
            return Ok(Transformed::no(LogicalPlan::TableScan(scan)));
        };
        let name = scan.table_name.clone();
        Ok(Transformed::yes(with(
            LogicalPlan::TableScan(scan),
            &name,
            &live,
        )?))
    })?;
    // The nodes above a replaced scan keep the schema they were planned with.
    rewritten
        .data
        .transform_up_with_subqueries(|node| node.recompute_schema().map(Transformed::yes))
        .map(|t| t.data)
}

/// `plan` reading only the lake rows that have a `key`: a keyed view leaves out the rows
/// without one, so that its rows are the same computed whole or key by key.
fn with_keys_only(plan: &LogicalPlan, key: &str) -> Result<LogicalPlan> {
    rewrite_scans(plan, &|scan, name, _| {
        LogicalPlanBuilder::from(scan)
            .filter(col(Column::new(Some(name.clone()), key)).is_not_null())?
            .build()
    })
}

/// `plan` reading only the rows of the lake tables with one of `keys`, and of those only the
/// days from the table's entry in `from` on ([`Keys::first_days`]).
fn restrict(
    plan: &LogicalPlan,
    key: &str,
    keys: &Keys,
    from: &HashMap<crate::schema::Table, i32>,
) -> Result<LogicalPlan> {
    let Some(table) = keys.table()? else {
        return Err(DataFusionError::Internal("a restriction to no keys".into()));
    };
    rewrite_scans(plan, &|scan, name, live| {
        // Every lake row has its day (the schema says so).
        let scan = match from.get(&live.table) {
            Some(first) => LogicalPlanBuilder::from(scan)
                .filter(
                    col(Column::new(Some(name.clone()), live.table.day_column()))
                        .gt_eq(lit(ScalarValue::Date32(Some(*first)))),
                )?
                .build()?,
            None => scan,
        };
        semi_join(table.clone(), scan, Column::new(Some(name.clone()), key))
    })
}

/// Whether two results hold the same rows, in any order.
fn same_rows(
    schema: &SchemaRef,
    before: &[Vec<RecordBatch>],
    after: &[Vec<RecordBatch>],
) -> Result<bool> {
    let count =
        |p: &[Vec<RecordBatch>]| p.iter().flatten().map(RecordBatch::num_rows).sum::<usize>();
    if count(before) != count(after) {
        return Ok(false);
    }
    let fields = schema
        .fields()
        .iter()
        .map(|f| SortField::new(f.data_type().clone()))
        .collect();
    let Ok(converter) = RowConverter::new(fields) else {
        // A type rows cannot hold: say changed, which is always safe.
        return Ok(false);
    };
    let sorted = |p: &[Vec<RecordBatch>]| -> Result<Vec<Vec<u8>>> {
        let mut rows = Vec::new();
        for batch in p.iter().flatten() {
            let converted = converter.convert_columns(batch.columns())?;
            rows.extend(converted.iter().map(|r| r.as_ref().to_vec()));
        }
        rows.sort_unstable();
        Ok(rows)
    };
    Ok(sorted(before)? == sorted(after)?)
}

/// Calls `f` with `plan` and every plan it reads through views and materialised views.
fn visit_plans(plan: &LogicalPlan, f: &mut dyn FnMut(&LogicalPlan) -> Result<()>) -> Result<()> {
    use datafusion::common::tree_node::TreeNodeRecursion;
    f(plan)?;
    plan.apply_with_subqueries(|node| {
        if let LogicalPlan::TableScan(scan) = node {
            if let Some(inner) = scan.source.get_logical_plan() {
                visit_plans(&inner, f)?;
            } else if let Ok(provider) = source_as_provider(&scan.source)
                && let Some(view) = provider.downcast_ref::<MaterialisedView>()
            {
                visit_plans(&view.plan, f)?;
            }
        }
        Ok(TreeNodeRecursion::Continue)
    })?;
    Ok(())
}

/// The lake tables `plan` reads, directly or through views and materialised views, each once.
pub(super) fn lake_tables(plan: &LogicalPlan) -> Result<Vec<Arc<LiveTable>>> {
    use datafusion::common::tree_node::TreeNodeRecursion;
    let mut found: Vec<Arc<LiveTable>> = Vec::new();
    visit_plans(plan, &mut |plan| {
        plan.apply_with_subqueries(|node| {
            if let LogicalPlan::TableScan(scan) = node
                && let Ok(provider) = source_as_provider(&scan.source)
                && let Some(live) = LiveTable::downcast(provider.clone())
                && !found.iter().any(|t| Arc::ptr_eq(t, &live))
            {
                found.push(live);
            }
            Ok(TreeNodeRecursion::Continue)
        })?;
        Ok(())
    })?;
    Ok(found)
}

/// The lake tables `plan` reads through keyed materialised views (at any depth), each with
/// the view's key. What a keyed view reads through the materialised views it reads whole is
/// not counted: a change there recomputes the keyed view whole (the patient merges under the
/// stays, which a KPI cache follows by the records the merges touch).
pub(super) fn keyed_reads(
    plan: &LogicalPlan,
) -> Result<std::collections::BTreeSet<(crate::schema::Table, String)>> {
    fn walk(
        plan: &LogicalPlan,
        found: &mut std::collections::BTreeSet<(crate::schema::Table, String)>,
    ) -> Result<()> {
        each_read(plan, &mut |read| {
            if let Read::View(view) = read {
                match &view.key {
                    Some(key) => {
                        for table in &view.reads.direct {
                            found.insert((table.table, key.clone()));
                        }
                    }
                    None => walk(&view.plan, found)?,
                }
            }
            Ok(())
        })
    }
    let mut found = std::collections::BTreeSet::new();
    walk(plan, &mut found)?;
    Ok(found)
}

/// Whether `plan`, or a view it reads, calls a function whose answer is not fixed by its
/// arguments (`now()`, `random()`): its result can change while the lake does not.
pub(super) fn reads_clock(plan: &LogicalPlan) -> Result<bool> {
    use datafusion::common::tree_node::{TreeNode, TreeNodeRecursion};
    use datafusion::logical_expr::Volatility;
    let mut found = false;
    visit_plans(plan, &mut |plan| {
        plan.apply_with_subqueries(|node| {
            node.apply_expressions(|expr| {
                expr.apply(|e| {
                    if let Expr::ScalarFunction(call) = e
                        && call.func.signature().volatility != Volatility::Immutable
                    {
                        found = true;
                        return Ok(TreeNodeRecursion::Stop);
                    }
                    Ok(TreeNodeRecursion::Continue)
                })
            })
        })?;
        Ok(())
    })?;
    Ok(found)
}

#[async_trait]
impl TableProvider for MaterialisedView {
    fn schema(&self) -> SchemaRef {
        self.schema.clone()
    }

    fn table_type(&self) -> TableType {
        TableType::View
    }

    fn get_logical_plan(&self) -> Option<Cow<'_, LogicalPlan>> {
        // Returning the plan would make DataFusion inline it into every query, which is what
        // this type exists to avoid.
        None
    }

    async fn scan(
        &self,
        state: &dyn Session,
        projection: Option<&Vec<usize>>,
        filters: &[Expr],
        limit: Option<usize>,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        let need = match &self.day {
            Some(day) if day.recent.is_some() => {
                first_day_read(state, filters, &self.schema, &day.column)
            }
            _ => None,
        };
        if let Some(rows) = self.rows(state, need).await? {
            return rows.scan(state, projection, filters, limit).await;
        }
        // Too far back for the rows held: the view's query over the lake, from the first
        // day the filters read (all days without one), as a plain view is scanned: with the
        // filters inside it, so that the planner takes them down to the lake's scans.
        let plan = match need {
            Some(day) => self.plan_from(day)?.unwrap_or_else(|| self.plan.clone()),
            None => self.plan.clone(),
        };
        ViewTable::new(plan, None)
            .scan(state, projection, filters, limit)
            .await
    }

    fn supports_filters_pushdown(
        &self,
        filters: &[&Expr],
    ) -> Result<Vec<TableProviderFilterPushDown>> {
        // The in-memory rows are filtered after the scan. A view keeping recent days is
        // given the filters too: their first day decides where the rows come from.
        let pushdown = match self.recent() {
            Some(_) => TableProviderFilterPushDown::Inexact,
            None => TableProviderFilterPushDown::Unsupported,
        };
        Ok(vec![pushdown; filters.len()])
    }
}

/// The first day (days since the epoch) of column `day` that `filters`, all of which hold,
/// let through; `None` when they set none.
///
/// DataFusion's interval analysis bounds the column, one conjunct at a time: it refuses a
/// whole predicate when any part is of a kind it cannot bound (text, functions), and such a
/// part never raises the first day anyway. Its bounds are sound, so a day it lets through is
/// never left out; where it cannot tell, the view is read in full.
fn first_day_read(
    state: &dyn Session,
    filters: &[Expr],
    schema: &SchemaRef,
    day: &str,
) -> Option<i32> {
    use datafusion::common::DFSchema;
    use datafusion::logical_expr::expr_rewriter::unnormalize_col;
    use datafusion::logical_expr::interval_arithmetic::Interval;
    use datafusion::logical_expr::utils::split_conjunction;
    use datafusion::physical_expr::intervals::utils::check_support;
    use datafusion::physical_expr::{AnalysisContext, ExprBoundaries, analyze, expressions};

    let index = schema.index_of(day).ok()?;
    let field = schema.field(index);
    let df_schema = DFSchema::try_from(schema.as_ref().clone()).ok()?;
    let unbounded = ExprBoundaries {
        column: expressions::Column::new(day, index),
        interval: Some(Interval::make_unbounded(field.data_type()).ok()?),
        distinct_count: Default::default(),
    };
    let lower = |part: &Expr| -> Option<i32> {
        // A scan's filters may name the view's columns with the query's qualifier.
        let physical = state
            .create_physical_expr(unnormalize_col(part.clone()), &df_schema)
            .ok()?;
        if !check_support(&physical, schema) {
            return None;
        }
        let context = AnalysisContext::new(vec![unbounded.clone()]);
        let bounded = analyze(&physical, context, schema).ok()?;
        match bounded.boundaries.first()?.interval.as_ref()?.lower() {
            ScalarValue::Date32(day) => *day,
            _ => None,
        }
    };
    filters
        .iter()
        .flat_map(split_conjunction)
        .filter_map(lower)
        .max()
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::datatypes::{Field, Schema};
    use datafusion::prelude::SessionContext;

    /// The first day read for filters such as the planner hands a scan: literals already
    /// typed, columns maybe named with the query's qualifier.
    #[test]
    fn the_first_day_read_is_the_latest_lower_bound_the_filters_set_on_the_day() {
        let schema: SchemaRef = Arc::new(Schema::new(vec![
            Field::new("org", DataType::Utf8, true),
            Field::new("day", DataType::Date32, true),
            Field::new("n", DataType::Int64, true),
        ]));
        let state = SessionContext::new().state();
        let day = |d: i32| lit(ScalarValue::Date32(Some(d)));
        let first = |filters: &[Expr]| first_day_read(&state, filters, &schema, "day");
        let d = || col("day");
        assert_eq!(first(&[d().gt_eq(day(100))]), Some(100));
        // A strict bound on a date keeps its day: one day more is read than asked, never less.
        assert_eq!(first(&[d().gt(day(100))]), Some(100));
        assert_eq!(first(&[d().eq(day(100))]), Some(100));
        assert_eq!(first(&[day(100).lt_eq(d())]), Some(100));
        assert_eq!(first(&[day(100).lt(d())]), Some(100));
        assert_eq!(first(&[d().between(day(100), day(200))]), Some(100));
        assert_eq!(
            first(&[col("org").eq(lit("X")).and(d().gt_eq(day(100)))]),
            Some(100),
            "a part on text does not hide the day's bound"
        );
        assert_eq!(
            first(&[d().gt_eq(day(100)), d().gt_eq(day(120))]),
            Some(120)
        );
        assert_eq!(
            first(&[Expr::Column(Column::new(Some("kpi.v"), "day")).gt_eq(day(100))]),
            Some(100)
        );
        // No lower bound on the day: every day may be read.
        assert_eq!(first(&[d().lt(day(100))]), None);
        assert_eq!(first(&[col("n").gt_eq(lit(5i64))]), None);
        assert_eq!(
            first(&[d().gt_eq(day(100)).or(col("org").eq(lit("X")))]),
            None
        );
        assert_eq!(first(&[d().not_between(day(100), day(200))]), None);
        assert_eq!(first(&[]), None);
    }
}
