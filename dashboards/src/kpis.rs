//! The KPI series every page reads, computed once for all viewers.
//!
//! [`KpiService`] wraps the engine's [`KpiCache`]: a series is computed the first time any page
//! asks for it (a KPI for the whole trust, or broken down by site, ward…), then kept up to date
//! by [`KpiService::refresh`] on a tick, which recomputes only what new data can have changed.
//! Pages read the kept copies — they never run a query per viewer — and show the time of the
//! last refresh as "data as of".

use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use arrow::array::{Array, AsArray};
use arrow::compute::cast;
use arrow::datatypes::{DataType, Date32Type, Float64Type};
use bright_engine::annotations::{self, Annotation, AnnotationError};
use bright_engine::kpi::{KpiCache, Period, RefreshReport};
use bright_engine::query::{QueryEngine, QueryError, QueryOutput};
use bright_engine::reads::{self, Issue};
use chrono::{DateTime, NaiveDate, Utc};

use crate::clock::Clock;

type Key = (String, Vec<String>);

/// Series of the KPI catalogue, shared by every page; see the module documentation.
pub struct KpiService {
    engine: Arc<QueryEngine>,
    time_zone: chrono_tz::Tz,
    cache: tokio::sync::Mutex<KpiCache>,
    kept: RwLock<Kept>,
    /// Every annotation in the lake (a few hundred at most), read again on each refresh and
    /// after each one a page adds.
    notes: RwLock<Arc<Vec<Annotation>>>,
    notes_read: std::sync::atomic::AtomicBool,
    /// The first day the lake's history is complete, if it starts with partial days.
    history_from: Option<NaiveDate>,
    /// The latest records ingest refused or flagged, newest first, read again on each refresh.
    issues: RwLock<Arc<Vec<Issue>>>,
    issues_read: std::sync::atomic::AtomicBool,
    /// What "now" and "today" are for the pages (the wall clock but in a fast demo).
    clock: Clock,
}

/// How many of the latest issues the data-quality page lists.
pub const LATEST_ISSUES: usize = 20;

#[derive(Default)]
struct Kept {
    series: HashMap<Key, Arc<QueryOutput>>,
    /// When the series were last brought up to date.
    as_of: Option<DateTime<Utc>>,
}

impl std::fmt::Debug for KpiService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KpiService").finish_non_exhaustive()
    }
}

/// One breakdown's rows of a series: its key values and its periods.
#[derive(Debug, Clone, PartialEq)]
pub struct Breakdown {
    /// The values of the `by` columns (empty for the whole trust).
    pub key: Vec<Option<String>>,
    pub periods: Vec<Period>,
}

impl KpiService {
    pub fn new(engine: Arc<QueryEngine>, time_zone: chrono_tz::Tz) -> Self {
        KpiService {
            engine,
            time_zone,
            cache: tokio::sync::Mutex::new(KpiCache::new()),
            kept: RwLock::new(Kept::default()),
            notes: RwLock::new(Arc::new(Vec::new())),
            notes_read: std::sync::atomic::AtomicBool::new(false),
            history_from: None,
            issues: RwLock::new(Arc::new(Vec::new())),
            issues_read: std::sync::atomic::AtomicBool::new(false),
            clock: Clock::real(),
        }
    }

    /// Pages and boards read `clock` for now and today.
    pub fn with_clock(mut self, clock: Clock) -> Self {
        self.clock = clock;
        self
    }

    /// The clock pages and boards read.
    pub fn clock(&self) -> Clock {
        self.clock
    }

    /// Now, as the pages and boards show it.
    pub fn now(&self) -> DateTime<Utc> {
        self.clock.now()
    }

    /// Charts start at the first period on or after `day`: a lake loaded from an extract of the
    /// stays still open on its first day holds only those patients' earlier days, which would
    /// chart as a hospital filling up from empty.
    pub fn with_history_from(mut self, day: Option<NaiveDate>) -> Self {
        self.history_from = day;
        self
    }

    /// The first day charts show, if set.
    pub fn history_from(&self) -> Option<NaiveDate> {
        self.history_from
    }

    pub fn engine(&self) -> &Arc<QueryEngine> {
        &self.engine
    }

    /// The trust's time zone, for the times pages show.
    pub fn time_zone(&self) -> chrono_tz::Tz {
        self.time_zone
    }

    /// Today in the trust's time zone: the first day whose data may still be arriving.
    pub fn today(&self) -> NaiveDate {
        self.now().with_timezone(&self.time_zone).date_naive()
    }

    /// When the series were last brought up to date (or first computed).
    pub fn as_of(&self) -> Option<DateTime<Utc>> {
        self.kept.read().map(|k| k.as_of).unwrap_or(None)
    }

    /// KPI `id` broken down by `by`: the kept copy, or computed now (once, for everyone).
    pub async fn series(&self, id: &str, by: &[String]) -> Result<Arc<QueryOutput>, QueryError> {
        self.read_notes_once().await;
        let key: Key = (id.to_string(), by.to_vec());
        if let Some(found) = self.kept_series(&key) {
            return Ok(found);
        }
        let mut cache = self.cache.lock().await;
        // Another request may have computed it while this one waited.
        if let Some(found) = self.kept_series(&key) {
            return Ok(found);
        }
        let output = Arc::new(cache.series(&self.engine, id, by).await?.clone());
        if let Ok(mut kept) = self.kept.write() {
            kept.series.insert(key, output.clone());
            kept.as_of.get_or_insert_with(Utc::now);
        }
        Ok(output)
    }

    /// Whether every KPI's whole-trust series is computed and kept: work that reads them
    /// all (the alert rules) waits for that rather than computing them a second time while
    /// the service warms.
    pub fn all_kept(&self) -> bool {
        let Some(catalogue) = self.engine.kpi_catalogue() else {
            return false;
        };
        let Ok(kept) = self.kept.read() else {
            return false;
        };
        catalogue
            .kpis
            .iter()
            .all(|k| kept.series.contains_key(&(k.id.to_string(), Vec::new())))
    }

    fn kept_series(&self, key: &Key) -> Option<Arc<QueryOutput>> {
        self.kept.read().ok()?.series.get(key).cloned()
    }

    /// The annotations of KPI `id` that belong on its charts for organisation `org` (`None`:
    /// every organisation together), oldest first.
    pub fn notes(&self, id: &str, org: Option<&str>) -> Vec<Annotation> {
        let all = self
            .notes
            .read()
            .map(|n| n.clone())
            .unwrap_or_else(|e| e.into_inner().clone());
        let mut found: Vec<Annotation> = Vec::new();
        for a in all.iter().filter(|a| a.kpi_id == id && a.applies_to(org)) {
            // Several organisations' copies of one note (the simulator writes one per trust)
            // show once on a chart of them all.
            let copy =
                |b: &Annotation| (b.kind, b.on_date, &b.note) == (a.kind, a.on_date, &a.note);
            if !found.iter().any(copy) {
                found.push(a.clone());
            }
        }
        found
    }

    /// Reads the annotations the first time anything asks (a failure is retried by the
    /// refresh tick).
    pub async fn read_notes_once(&self) {
        if !self
            .notes_read
            .swap(true, std::sync::atomic::Ordering::AcqRel)
            && let Err(e) = self.reload_notes().await
        {
            tracing::error!(error = %e, "Reading the annotations failed.");
        }
    }

    /// Reads the annotations again from the lake.
    pub async fn reload_notes(&self) -> Result<(), AnnotationError> {
        let read = Arc::new(annotations::read_all(&self.engine).await?);
        if let Ok(mut notes) = self.notes.write() {
            *notes = read;
        }
        Ok(())
    }

    /// Stores `annotation` in the lake (durable when this returns) and shows it on the pages
    /// at once (pages chart the kept series with the notes on every view, so a rebase moves
    /// the limits and icons straight away).
    pub async fn annotate(&self, annotation: &Annotation) -> Result<(), AnnotationError> {
        annotations::add(&self.engine, annotation).await?;
        self.reload_notes().await
    }

    /// The latest records ingest refused or flagged, newest first (read the first time
    /// anything asks, then on every refresh).
    pub async fn latest_issues(&self) -> Arc<Vec<Issue>> {
        if !self
            .issues_read
            .swap(true, std::sync::atomic::Ordering::AcqRel)
            && let Err(e) = self.reload_issues().await
        {
            tracing::error!(error = %e, "Reading the data-quality issues failed.");
        }
        self.issues
            .read()
            .map(|i| i.clone())
            .unwrap_or_else(|e| e.into_inner().clone())
    }

    /// Reads the latest issues again from the lake and the acknowledged rows.
    pub async fn reload_issues(&self) -> Result<(), QueryError> {
        let read = Arc::new(reads::latest_issues(&self.engine, LATEST_ISSUES).await?);
        if let Ok(mut issues) = self.issues.write() {
            *issues = read;
        }
        Ok(())
    }

    /// Brings every kept series up to date with the lake and the acknowledged rows.
    pub async fn refresh(&self) -> Result<RefreshReport, QueryError> {
        if let Err(e) = self.reload_notes().await {
            tracing::error!(error = %e, "Reading the annotations failed; the pages keep the last read.");
        }
        if let Err(e) = self.reload_issues().await {
            tracing::error!(error = %e, "Reading the data-quality issues failed; the page keeps the last read.");
        }
        let mut cache = self.cache.lock().await;
        let report = cache.refresh(&self.engine, self.today()).await?;
        let keys: Vec<Key> = self
            .kept
            .read()
            .map(|k| k.series.keys().cloned().collect())
            .unwrap_or_default();
        let mut fresh = HashMap::with_capacity(keys.len());
        for key in keys {
            let output = cache.series(&self.engine, &key.0, &key.1).await?.clone();
            fresh.insert(key, Arc::new(output));
        }
        if let Ok(mut kept) = self.kept.write() {
            kept.series = fresh;
            kept.as_of = Some(Utc::now());
        }
        Ok(report)
    }

    /// Computes every KPI for the whole trust, so the first pages open at once.
    pub async fn warm(&self) -> Result<(), QueryError> {
        let ids: Vec<String> = self
            .engine
            .kpi_catalogue()
            .map(|c| c.kpis.iter().map(|k| k.id.to_string()).collect())
            .unwrap_or_default();
        for id in ids {
            self.series(&id, &[]).await?;
        }
        Ok(())
    }

    /// Warms the series, then refreshes them every `every` until `stopped` turns true.
    pub fn spawn(
        self: Arc<Self>,
        every: Duration,
        mut stopped: tokio::sync::watch::Receiver<bool>,
    ) -> tokio::task::JoinHandle<()> {
        tokio::spawn(async move {
            let started = std::time::Instant::now();
            let warmed = tokio::select! {
                warmed = self.warm() => warmed,
                _ = stopped.wait_for(|stop| *stop) => return,
            };
            match warmed {
                Ok(()) => tracing::info!(
                    seconds = started.elapsed().as_secs_f64(),
                    "Every KPI computed for the pages."
                ),
                Err(e) => tracing::error!(error = %e, "Computing the KPIs for the pages failed."),
            }
            loop {
                tokio::select! {
                    () = tokio::time::sleep(every) => {}
                    _ = stopped.wait_for(|stop| *stop) => return,
                }
                if let Err(e) = self.refresh().await {
                    // The pages keep the last good series, and show their age.
                    tracing::error!(error = %e, "Refreshing the KPIs for the pages failed.");
                }
            }
        })
    }
}

/// The rows of `output` (a series by `by`, sorted by breakdown then date) split per
/// breakdown, keeping those whose keys match `only` (column, value) pairs.
pub fn breakdowns(
    output: &QueryOutput,
    by: &[String],
    only: &[(String, String)],
) -> Result<Vec<Breakdown>, arrow::error::ArrowError> {
    let mut out: Vec<Breakdown> = Vec::new();
    for batch in &output.batches {
        let column = |name: &str| {
            batch.column_by_name(name).cloned().ok_or_else(|| {
                arrow::error::ArrowError::SchemaError(format!("a KPI series has no '{name}'"))
            })
        };
        let dates = cast(&column("date")?, &DataType::Date32)?;
        let dates = dates.as_primitive::<Date32Type>();
        let floats = |name: &str| -> Result<Vec<Option<f64>>, arrow::error::ArrowError> {
            let c = cast(&column(name)?, &DataType::Float64)?;
            Ok(c.as_primitive::<Float64Type>().iter().collect())
        };
        let (values, numerators, denominators) = (
            floats("value")?,
            floats("numerator")?,
            floats("denominator")?,
        );
        let keys = by
            .iter()
            .map(|b| cast(&column(b)?, &DataType::Utf8))
            .collect::<Result<Vec<_>, _>>()?;
        for row in 0..batch.num_rows() {
            let key: Vec<Option<String>> = keys
                .iter()
                .map(|k| {
                    let k = k.as_string::<i32>();
                    (!k.is_null(row)).then(|| k.value(row).to_string())
                })
                .collect();
            let wanted = only.iter().all(|(column, value)| {
                by.iter()
                    .position(|b| b == column)
                    .is_some_and(|i| key[i].as_deref() == Some(value.as_str()))
            });
            if !wanted || dates.is_null(row) {
                continue;
            }
            let Some(start) = Date32Type::to_naive_date_opt(dates.value(row)) else {
                continue;
            };
            let period = Period {
                start,
                value: values[row],
                numerator: numerators[row],
                denominator: denominators[row],
            };
            match out.last_mut() {
                Some(last) if last.key == key => last.periods.push(period),
                _ => out.push(Breakdown {
                    key,
                    periods: vec![period],
                }),
            }
        }
    }
    Ok(out)
}
