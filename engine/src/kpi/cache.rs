//! KPI series kept fresh on every dashboard tick without recomputing history.
//!
//! A [`KpiCache`] holds each series a dashboard asked for. On [`KpiCache::refresh`] it moves
//! the engine to the lake's latest snapshot, compares that snapshot's data files with the last
//! tick's, and works out from which day
//! each series can have changed: the open period always, and any closed period that late or
//! corrected data landed in (a Delta commit adds or replaces files, and the log gives each
//! file's first day).
//! Only those periods are recomputed, with a windowed run (`$since`); the rest is kept. A
//! series none of whose tables changed is left as it is, unless its query reads the clock
//! (feed freshness counts minutes to now). The series recomputed run side by side, as many
//! at once as a query may use cores ([`QueryEngine::parallelism`]): a tick's queries are
//! mostly small, each spending much of its time planning and opening files on one thread,
//! so in turn they leave cores idle (at trust scale a tick took 0.47-0.54 s in turn,
//! 0.36-0.49 s side by side; benches/RESULTS.md).
//!
//! How far back a change reaches depends on how a KPI reads the table. A row read directly
//! belongs to the day it is stored under, give or take the day either side (a UTC day against
//! the trust's clock, a case running past midnight), so one day's margin is enough. A row read
//! through a keyed view (`key` in `kpis.toml`) changes that view's rows for its key on every
//! day: a cancellation or a late discharge rewrites a patient's whole stay, which may have
//! begun weeks earlier. So for those KPIs a change reaches back to the first day of every key
//! the new rows hold; for ADT read through the stays, when the patient merges changed, also to
//! the first day of every encounter of a patient record a new merge (A40) touches (the records
//! merged into the same survivor), since the stays read the merges whole. Where that cannot be
//! worked out (a catalogue without `kpi.patient_merges`), every period. A change is known by
//! its days only (the files it added, from their statistics), so every key on those days
//! counts as new. Rows ingest has
//! acknowledged but not flushed (the query layer's buffer) are in no file; a table whose
//! buffer changed counts the days of its buffered rows as changed.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;
use std::time::Instant;

use arrow::array::{Array, AsArray, BooleanArray};
use arrow::compute::{
    SortColumn, SortOptions, concat_batches, filter_record_batch, lexsort_to_indices, take,
};
use arrow::datatypes::Date32Type;
use arrow::record_batch::RecordBatch;
use chrono::{Days, NaiveDate};
use futures_util::StreamExt;

use crate::query::{Change, QueryEngine, QueryError, QueryOutput, Seen};
use crate::schema::Table;

use super::manifest::Grain;

/// The output column the series' periods are in.
const DATE: &str = "date";

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct SeriesKey {
    id: String,
    by: Vec<String>,
}

#[derive(Debug)]
struct Cached {
    grain: Grain,
    tables: BTreeSet<Table>,
    /// The query reads the clock, so its open period can change with no new data.
    clock: bool,
    /// The tables it reads through keyed views, with their keys.
    keyed: BTreeSet<(Table, String)>,
    output: QueryOutput,
}

/// What one refresh did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RefreshReport {
    /// Series brought up to date.
    pub series: usize,
    /// Of those, series recomputed (some periods or all).
    pub recomputed: usize,
    /// Of those, series recomputed from their first period.
    pub full: usize,
    /// Tables whose files changed since the last refresh.
    pub changed_tables: Vec<Table>,
    /// What the refresh spent its time on: working out how far each keyed read's new rows
    /// reach, each series recomputed, and each materialised view brought up to date (inside
    /// the step that first read it, and inside the views that read it). Reaches, and series,
    /// run side by side, so their times overlap.
    pub steps: Vec<RefreshStep>,
}

/// One timed part of a refresh.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefreshStep {
    /// `reach <table> by <key>`, `view <name>`, or the series' KPI id with its breakdown.
    pub what: String,
    /// The first day recomputed; `None` for every period (and for a reach).
    pub since: Option<NaiveDate>,
    /// How long it took.
    pub elapsed: std::time::Duration,
}

/// Cached KPI series; see the module documentation.
#[derive(Debug, Default)]
pub struct KpiCache {
    /// What the engine held of each table at the last refresh; empty before the first.
    seen: BTreeMap<Table, Seen>,
    /// How often the patient merges' rows had changed at the last refresh (`None` before the
    /// first, or without the view): new A40s that change nothing reach no further back.
    merges: Option<u64>,
    series: HashMap<SeriesKey, Cached>,
}

/// Where a change to a table's files can reach back to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Reach {
    /// Periods from this day on.
    From(NaiveDate),
    /// Every period.
    Everything,
}

impl KpiCache {
    /// An empty cache.
    pub fn new() -> Self {
        KpiCache::default()
    }

    /// KPI `id` broken down by `by`, from the cache (computed in full the first time).
    /// Call [`KpiCache::refresh`] on every tick to keep it current.
    pub async fn series(
        &mut self,
        engine: &QueryEngine,
        id: &str,
        by: &[String],
    ) -> Result<&QueryOutput, QueryError> {
        if self.seen.is_empty() {
            // Taken before the series is computed: rows arriving in between are in it and
            // count as new at the next refresh, recomputed once more, never missed.
            engine.refresh().await?;
            self.seen = seen(engine);
            self.merges = merges_changes(engine).await?;
        }
        let key = SeriesKey {
            id: id.to_string(),
            by: by.to_vec(),
        };
        if !self.series.contains_key(&key) {
            let grain = engine
                .kpi_catalogue()
                .ok_or(QueryError::NoCatalogue)?
                .get(id)?
                .grain;
            let cached = Cached {
                grain,
                tables: engine.kpi_tables(id)?,
                clock: engine.kpi_reads_clock(id)?,
                keyed: engine.kpi_keyed_reads(id)?,
                output: engine.kpi_series(id, None, None, by).await?,
            };
            self.series.insert(key.clone(), cached);
        }
        Ok(&self.series[&key].output)
    }

    /// Brings every cached series up to date: refreshes the engine's snapshot, then, for
    /// each series whose tables changed or whose query reads the clock, recomputes the open
    /// period (the one holding `today`) and every closed period that data changed since the
    /// last refresh can reach.
    pub async fn refresh(
        &mut self,
        engine: &QueryEngine,
        today: NaiveDate,
    ) -> Result<RefreshReport, QueryError> {
        // What changed since the last refresh, taken after the snapshot moved on. A flush
        // landing before the queries below run is read by them, and is new again to the next
        // refresh, which recomputes its days once more: late by a tick at worst, never missed.
        engine.refresh().await?;
        let views = view_time(engine).await;
        let now = seen(engine);
        let mut reach: BTreeMap<Table, Reach> = BTreeMap::new();
        for (table, seen) in &now {
            let change = match self.seen.get(table) {
                Some(then) => seen.change_since(then),
                None => Change::Unknown,
            };
            // Rows on a day count against the day either side too (a UTC day against the
            // trust's clock, a case running past midnight); a rewrite is recomputed from
            // its first day like an addition.
            let from = |day: i32| {
                let day = Date32Type::to_naive_date_opt(day)?;
                Some(day.checked_sub_days(Days::new(1)).unwrap_or(day))
            };
            let r = match change {
                Change::None => continue,
                Change::AddedFrom(day) | Change::RewrittenFrom(day) => {
                    from(day).map_or(Reach::Everything, Reach::From)
                }
                Change::Unknown => Reach::Everything,
            };
            reach.insert(*table, r);
        }
        self.seen = now;
        // Whether the merges changed, read before any query below can move them on: a merge
        // landing later is new to the next refresh too, and counted then.
        let merges = match reach.contains_key(&Table::AdtEvents) {
            true => merges_changes(engine).await?,
            false => self.merges,
        };
        let merges_changed = merges.is_none() || merges != self.merges;
        self.merges = merges;
        // Tables read through keyed views (stays by encounter, lists by session) reach back
        // to the first day of every key their new rows hold.
        let mut keyed_reach: BTreeMap<(Table, String), Reach> = BTreeMap::new();
        let mut asks: BTreeMap<(Table, String), NaiveDate> = BTreeMap::new();
        for cached in self.series.values() {
            for (table, key) in &cached.keyed {
                let at = (*table, key.clone());
                match reach.get(table) {
                    None => {}
                    Some(Reach::Everything) => {
                        keyed_reach.insert(at, Reach::Everything);
                    }
                    Some(Reach::From(day)) => {
                        asks.insert(at, *day);
                    }
                }
            }
        }
        let mut steps = Vec::new();
        let mut asked = futures_util::stream::iter(asks)
            .map(|((table, key), day)| async move {
                // `day` has the margin already; the rows added are on the day after or later.
                let added = day.checked_add_days(Days::new(1)).unwrap_or(day);
                let started = Instant::now();
                let first = key_reach(engine, table, &key, added, merges_changed).await;
                ((table, key), day, first, started.elapsed())
            })
            .buffer_unordered(engine.parallelism());
        while let Some(((table, key), day, first, elapsed)) = asked.next().await {
            steps.push(RefreshStep {
                what: format!("reach {table} by {key}"),
                since: None,
                elapsed,
            });
            let far = match first {
                Some(first) => Reach::From(
                    first
                        .checked_sub_days(Days::new(1))
                        .unwrap_or(first)
                        .min(day),
                ),
                None => Reach::Everything,
            };
            keyed_reach.insert((table, key), far);
        }

        let mut report = RefreshReport {
            changed_tables: reach.keys().copied().collect(),
            steps,
            ..RefreshReport::default()
        };
        // Which series to recompute, and from which day. The first series to read a keyed
        // view brings the view up to date, and the others reading it wait for that: so the
        // first reader of each runs first, the other readers last, and the series reading
        // no keyed view in between, on the cores the views' updates leave free.
        let mut jobs = Vec::new();
        for (key, cached) in &self.series {
            report.series += 1;
            // A query of the lake alone answers the same while its tables stay the same.
            if !cached.clock && !cached.tables.iter().any(|t| reach.contains_key(t)) {
                continue;
            }
            let mut since = Some(cached.grain.period_start(today));
            let reaches = cached.tables.iter().filter_map(|t| reach.get(t)).chain(
                cached
                    .keyed
                    .iter()
                    .filter_map(|(t, k)| keyed_reach.get(&(*t, k.clone()))),
            );
            for r in reaches {
                match r {
                    Reach::Everything => since = None,
                    Reach::From(day) => {
                        since = since.map(|s| s.min(cached.grain.period_start(*day)))
                    }
                }
            }
            jobs.push((key.clone(), since, &cached.keyed));
        }
        // In a fixed order, so that ticks do not vary with the series map's.
        jobs.sort_by(|(a, ..), (b, ..)| (&a.id, &a.by).cmp(&(&b.id, &b.by)));
        let mut first_readers = BTreeSet::new();
        let mut ranked: Vec<_> = jobs
            .into_iter()
            .map(|(key, since, keyed)| {
                let rank = match keyed.is_empty() {
                    true => 1,
                    false if first_readers.insert(keyed) => 0,
                    false => 2,
                };
                (rank, key, since)
            })
            .collect();
        ranked.sort_by_key(|(rank, ..)| *rank);
        let jobs = ranked.into_iter().map(|(_, key, since)| (key, since));
        // As each finishes, the next starts: a long one does not hold back the rest.
        let mut recomputed = futures_util::stream::iter(jobs)
            .map(|(key, since)| async move {
                let started = Instant::now();
                let fresh = engine.kpi_series(&key.id, since, None, &key.by).await;
                (key, since, fresh, started.elapsed())
            })
            .buffer_unordered(engine.parallelism());
        while let Some((key, since, fresh, elapsed)) = recomputed.next().await {
            let Some(cached) = self.series.get_mut(&key) else {
                continue;
            };
            let fresh = fresh?;
            cached.output = match since {
                None => {
                    report.full += 1;
                    fresh
                }
                Some(since) => splice(&cached.output, fresh, since, &key.by)?,
            };
            report.recomputed += 1;
            let step = RefreshStep {
                what: match key.by.is_empty() {
                    true => key.id.clone(),
                    false => format!("{} by {}", key.id, key.by.join(", ")),
                },
                since,
                elapsed,
            };
            tracing::debug!(series = %step.what, since = ?step.since, elapsed = ?step.elapsed,
                            "Series brought up to date.");
            report.steps.push(step);
        }
        for (name, spent) in view_time(engine).await {
            let before = views.get(&name).copied().unwrap_or_default();
            if spent > before {
                report.steps.push(RefreshStep {
                    what: format!("view {name}"),
                    since: None,
                    elapsed: spent - before,
                });
            }
        }
        Ok(report)
    }
}

/// The first day of every `key` that rows of `table` on `added` or later hold: where rows
/// added on those days can change a keyed view from. For ADT read through the stays (which read
/// the patient merges whole), when `merges_changed`, also the first day of every encounter of a
/// patient record merged (A40) on those days, with the records merged into the same survivor.
/// `None` when it cannot be told (a catalogue without `kpi.patient_merges`).
async fn key_reach(
    engine: &QueryEngine,
    table: Table,
    key: &str,
    added: NaiveDate,
    merges_changed: bool,
) -> Option<NaiveDate> {
    let (name, day) = (table.name(), table.day_column());
    let mut sql = format!(
        "SELECT MIN({day}) AS first FROM {name}
         WHERE {key} IN (SELECT {key} FROM {name} WHERE {day} >= DATE '{added}')"
    );
    // An A40 that changes no merge (sent again, or merging what was merged) changes no stay.
    if table == Table::AdtEvents && merges_changed {
        sql = format!(
            "WITH merged AS (
                 SELECT patient_key AS k FROM adt_events
                 WHERE event_date >= DATE '{added}' AND event_type = 'A40'
                 UNION SELECT prior_patient_key FROM adt_events
                 WHERE event_date >= DATE '{added}' AND event_type = 'A40'
             ),
             ends AS (
                 SELECT COALESCE(m.patient_key, n.k) AS k
                 FROM merged n LEFT JOIN kpi.patient_merges m ON m.prior_patient_key = n.k
             ),
             family AS (
                 SELECT k FROM merged
                 UNION SELECT k FROM ends
                 UNION SELECT m.prior_patient_key FROM kpi.patient_merges m
                       JOIN ends e ON m.patient_key = e.k
             )
             SELECT MIN(first) FROM (
                 {sql}
                 UNION ALL
                 SELECT MIN(event_date) FROM adt_events
                 WHERE patient_key IN (SELECT k FROM family)
             ) AS firsts"
        );
    }
    let output = match engine.sql(&sql).await {
        Ok(output) => output,
        Err(e) => {
            tracing::debug!(error = %e, table = %table, "Cannot tell how far new rows reach.");
            return None;
        }
    };
    let first = output
        .batches
        .iter()
        .find(|b| b.num_rows() > 0)
        .and_then(|b| b.column(0).as_primitive_opt::<Date32Type>())
        .and_then(|days| (!days.is_null(0)).then(|| days.value(0)))
        .and_then(Date32Type::to_naive_date_opt);
    // No key found (only rows without one): nothing before `added`.
    Some(first.unwrap_or(added).min(added))
}

/// How often the patient merges' rows have changed, brought up to date first; `None` without
/// the view.
async fn merges_changes(engine: &QueryEngine) -> Result<Option<u64>, QueryError> {
    Ok(engine
        .refresh_view("patient_merges")
        .await?
        .map(|refreshes| refreshes.changes))
}

/// The time each materialised helper view has spent computing its rows so far.
async fn view_time(engine: &QueryEngine) -> BTreeMap<String, std::time::Duration> {
    let mut spent = BTreeMap::new();
    let Some(catalogue) = engine.kpi_catalogue() else {
        return spent;
    };
    for view in catalogue.views.iter().filter(|v| v.materialise) {
        if let Some(refreshes) = engine.view_refreshes(&view.name).await {
            spent.insert(view.name.clone(), refreshes.spent);
        }
    }
    spent
}

/// What the engine holds of every table now.
fn seen(engine: &QueryEngine) -> BTreeMap<Table, Seen> {
    Table::ALL.iter().map(|t| (*t, engine.seen(*t))).collect()
}

/// The cached rows before `since` and the fresh ones from `since`, in the runner's order
/// (breakdown columns, then date).
fn splice(
    cached: &QueryOutput,
    fresh: QueryOutput,
    since: NaiveDate,
    by: &[String],
) -> Result<QueryOutput, QueryError> {
    let since_days = Date32Type::from_naive_date(since);
    let mut batches = Vec::new();
    for batch in &cached.batches {
        let dates = batch
            .column_by_name(DATE)
            .map(|c| c.as_primitive::<Date32Type>())
            .ok_or_else(|| {
                arrow::error::ArrowError::SchemaError("a KPI series has a date column".into())
            })?;
        let keep: BooleanArray = dates
            .iter()
            .map(|d| Some(d.is_some_and(|d| d < since_days)))
            .collect();
        batches.push(filter_record_batch(batch, &keep)?);
    }
    batches.extend(fresh.batches);
    let all = concat_batches(&fresh.schema, &batches)?;
    let mut keys: Vec<SortColumn> = Vec::new();
    for name in by.iter().map(String::as_str).chain([DATE]) {
        if let Some(column) = all.column_by_name(name) {
            // As the runner orders: ascending, nulls last.
            keys.push(SortColumn {
                values: column.clone(),
                options: Some(SortOptions {
                    descending: false,
                    nulls_first: false,
                }),
            });
        }
    }
    let sorted = if all.num_rows() == 0 {
        all
    } else {
        let order = lexsort_to_indices(&keys, None)?;
        let columns = all
            .columns()
            .iter()
            .map(|c| take(c.as_ref(), &order, None))
            .collect::<Result<Vec<Arc<dyn Array>>, _>>()?;
        RecordBatch::try_new(all.schema(), columns)?
    };
    Ok(QueryOutput {
        schema: fresh.schema,
        batches: vec![sorted],
    })
}
