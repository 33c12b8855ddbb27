//! KPI series kept fresh on every dashboard tick without recomputing history.
//!
//! A [`KpiCache`] holds each series a dashboard asked for. On [`KpiCache::refresh`] it lists
//! the lake's data files, compares them with the last tick's, and works out from which day
//! each series can have changed: the open period always, and any closed period that late or
//! corrected data landed in (a Delta commit adds or replaces files, and the log gives each
//! file's first day).
//! Only those periods are recomputed, with a windowed run (`$since`); the rest is kept.
//!
//! How far back a change reaches depends on the table: a row of most tables belongs to the
//! day it is stored under, give or take the day either side (a UTC day against the trust's
//! clock, a case running past midnight), so one day's margin is enough. ADT is
//! different: a cancellation or a late discharge rewrites a patient's whole stay, which may
//! have begun weeks earlier, so any change to `adt_events` recomputes the KPIs that read it in
//! full. They scan the whole ADT history either way, so this costs little more than the open
//! day alone. Rows ingest has acknowledged but not flushed (the query layer's buffer) are in
//! no file; a table whose buffer changed counts the days of its buffered rows as changed.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;

use arrow::array::{Array, AsArray, BooleanArray};
use arrow::compute::{
    SortColumn, SortOptions, concat_batches, filter_record_batch, lexsort_to_indices, take,
};
use arrow::datatypes::Date32Type;
use arrow::record_batch::RecordBatch;
use chrono::{Days, NaiveDate};

use crate::query::{QueryEngine, QueryError, QueryOutput};
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
    output: QueryOutput,
}

/// What one refresh did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RefreshReport {
    /// Series brought up to date.
    pub series: usize,
    /// Of those, series recomputed from their first period.
    pub full: usize,
    /// Tables whose files changed since the last refresh.
    pub changed_tables: Vec<Table>,
}

/// Cached KPI series; see the module documentation.
#[derive(Debug, Default)]
pub struct KpiCache {
    files: BTreeMap<Table, BTreeMap<String, Option<NaiveDate>>>,
    /// Buffer version of each table at the last refresh.
    buffers: BTreeMap<Table, u64>,
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
        if self.files.is_empty() {
            // As in refresh: files first, snapshot second, so what is cached is never older
            // than the files recorded.
            self.files = list_files(engine).await?;
            self.buffers = Table::ALL
                .iter()
                .map(|t| (*t, engine.buffered_days(*t).0))
                .collect();
            engine.refresh().await?;
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
                output: engine.kpi_series(id, None, None, by).await?,
            };
            self.series.insert(key.clone(), cached);
        }
        Ok(&self.series[&key].output)
    }

    /// Brings every cached series up to date: refreshes the engine's snapshot, then
    /// recomputes the open period (the one holding `today`) and every closed period that
    /// data changed since the last refresh can reach.
    pub async fn refresh(
        &mut self,
        engine: &QueryEngine,
        today: NaiveDate,
    ) -> Result<RefreshReport, QueryError> {
        // Files first, snapshot second: a commit landing in between is then seen by the
        // queries and listed again next time (recomputed twice), never missed.
        let files = list_files(engine).await?;
        engine.refresh().await?;
        let mut reach: BTreeMap<Table, Reach> = BTreeMap::new();
        let mut widen = |table: Table, day: Option<NaiveDate>| {
            let r = match (table, day) {
                (Table::AdtEvents, _) | (_, None) => Reach::Everything,
                (_, Some(day)) => Reach::From(day.checked_sub_days(Days::new(1)).unwrap_or(day)),
            };
            let entry = reach.entry(table).or_insert(r);
            *entry = match (*entry, r) {
                (Reach::Everything, _) | (_, Reach::Everything) => Reach::Everything,
                (Reach::From(a), Reach::From(b)) => Reach::From(a.min(b)),
            };
        };
        // Rows acknowledged by ingest but not yet flushed are in no file: when a table's
        // buffer moved on, the days its rows fall on count as changed too (read before the
        // queries run, like the files).
        for table in Table::ALL {
            let (version, days) = engine.buffered_days(table);
            if self.buffers.insert(table, version) != Some(version) {
                for day in days {
                    widen(table, Some(day));
                }
            }
        }
        for (table, now) in &files {
            let before = self.files.get(table);
            let changed = now
                .iter()
                .filter(|(path, _)| before.is_none_or(|b| !b.contains_key(*path)))
                .chain(
                    before
                        .into_iter()
                        .flatten()
                        .filter(|(path, _)| !now.contains_key(*path)),
                )
                .map(|(_, day)| *day);
            for day in changed {
                widen(*table, day);
            }
        }
        self.files = files;

        let mut report = RefreshReport {
            changed_tables: reach.keys().copied().collect(),
            ..RefreshReport::default()
        };
        for (key, cached) in &mut self.series {
            let mut since = Some(cached.grain.period_start(today));
            for table in &cached.tables {
                match reach.get(table) {
                    Some(Reach::Everything) => since = None,
                    Some(Reach::From(day)) => {
                        since = since.map(|s| s.min(cached.grain.period_start(*day)))
                    }
                    None => {}
                }
            }
            let fresh = engine.kpi_series(&key.id, since, None, &key.by).await?;
            cached.output = match since {
                None => {
                    report.full += 1;
                    fresh
                }
                Some(since) => splice(&cached.output, fresh, since, &key.by)?,
            };
            report.series += 1;
        }
        Ok(report)
    }
}

async fn list_files(
    engine: &QueryEngine,
) -> Result<BTreeMap<Table, BTreeMap<String, Option<NaiveDate>>>, QueryError> {
    let mut files = BTreeMap::new();
    for table in Table::ALL {
        files.insert(table, engine.lake().files(table).await?);
    }
    Ok(files)
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
