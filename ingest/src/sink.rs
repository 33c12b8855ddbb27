//! Where every source delivers rows: deduplicated, durable in the write-ahead log before the
//! caller acknowledges, queryable at once (the query layer's buffer), and flushed to the lake
//! as one Delta commit per table, after which the log is truncated.
//!
//! Retransmissions are stored once: rows carry a key (an ADT event's sender + control id, a
//! theatre event's id), and a key the sink has seen, in the lake, the log or earlier in the
//! same batch, is counted as a duplicate and acknowledged again without storing it, once the
//! first copy is durable. After a
//! crash between a flush's lake commit and the log's truncation, the replayed rows are
//! recognised the same way.

use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::sync::{Arc, Mutex};

use bright_engine::arrow::array::{Array, AsArray, BooleanArray};
use bright_engine::arrow::compute::filter_record_batch;
use bright_engine::arrow::record_batch::RecordBatch;
use bright_engine::lake::LakeError;
use bright_engine::query::{QueryEngine, QueryError};
use bright_engine::schema::{Table, adt_events, theatre_events};

use crate::wal::{Entry, Wal, WalError};

/// Errors of the sink.
#[derive(Debug, thiserror::Error)]
pub enum SinkError {
    #[error(transparent)]
    Wal(#[from] WalError),
    #[error(transparent)]
    Query(#[from] QueryError),
    #[error(transparent)]
    Lake(#[from] LakeError),
    #[error("building rows: {0}")]
    Arrow(#[from] bright_engine::arrow::error::ArrowError),
    #[error("rows for {table}: {reason}")]
    Rows { table: &'static str, reason: String },
}

/// What a write did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Written {
    /// Rows now durable and queryable.
    pub stored: usize,
    /// Rows already held (retransmissions), not stored again.
    pub duplicates: usize,
}

/// The column that identifies a row of `table` across retransmissions, if it has one.
pub fn key_column(table: Table) -> Option<&'static str> {
    match table {
        Table::AdtEvents => Some(adt_events::EVENT_ID),
        Table::TheatreEvents => Some(theatre_events::EVENT_ID),
        _ => None,
    }
}

/// The durable, deduplicating sink in front of the lake.
#[derive(Debug)]
pub struct Sink {
    wal: Wal,
    engine: Arc<QueryEngine>,
    /// Writes share it; a flush takes it alone while it rotates the log and seals the buffer,
    /// so every acknowledged row is on the right side of the boundary.
    gate: tokio::sync::RwLock<()>,
    /// One flush at a time.
    flushing: tokio::sync::Mutex<()>,
    seen: Mutex<HashMap<Table, HashSet<String>>>,
    /// Buffered rows at which [`Sink::full`] wakes the flusher.
    flush_rows: std::sync::atomic::AtomicUsize,
    full: tokio::sync::Notify,
}

/// How many rows a replay or flush handled.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Replayed {
    pub records: usize,
    pub rows: usize,
    pub already_in_lake: usize,
}

fn keys(table: Table, batch: &RecordBatch) -> Result<Option<Vec<Option<String>>>, SinkError> {
    let Some(column) = key_column(table) else {
        return Ok(None);
    };
    let array = batch
        .column_by_name(column)
        .ok_or_else(|| SinkError::Rows {
            table: table.name(),
            reason: format!("no {column} column"),
        })?;
    let strings = array
        .as_string_opt::<i32>()
        .ok_or_else(|| SinkError::Rows {
            table: table.name(),
            reason: format!("{column} is not text"),
        })?;
    Ok(Some(
        (0..strings.len())
            .map(|i| (!strings.is_null(i)).then(|| strings.value(i).to_string()))
            .collect(),
    ))
}

impl Sink {
    /// Opens the sink over `engine`'s lake with its log in `wal_dir`, replaying what the log
    /// holds into the buffer (skipping rows the lake already has) before anything new is
    /// accepted.
    pub async fn open(
        engine: Arc<QueryEngine>,
        wal_dir: &Path,
    ) -> Result<(Sink, Replayed), SinkError> {
        let mut seen: HashMap<Table, HashSet<String>> = HashMap::new();
        for table in Table::ALL {
            let Some(column) = key_column(table) else {
                continue;
            };
            let output = engine
                .sql(&format!("SELECT {column} FROM {}", table.name()))
                .await?;
            let set = seen.entry(table).or_default();
            for batch in &output.batches {
                let column = bright_engine::arrow::compute::cast(
                    batch.column(0),
                    &bright_engine::arrow::datatypes::DataType::Utf8,
                )
                .map_err(QueryError::from)?;
                let strings = column.as_string::<i32>();
                set.extend(strings.iter().flatten().map(str::to_string));
            }
        }
        let (wal, records) = Wal::open(wal_dir)?;
        let sink = Sink {
            wal,
            engine,
            gate: tokio::sync::RwLock::new(()),
            flushing: tokio::sync::Mutex::new(()),
            seen: Mutex::new(seen),
            flush_rows: std::sync::atomic::AtomicUsize::new(usize::MAX),
            full: tokio::sync::Notify::new(),
        };
        let mut replayed = Replayed {
            records: records.len(),
            ..Replayed::default()
        };
        for (_, entry) in records {
            let (fresh, duplicates) = sink.claim(entry.table, &entry.batch)?;
            replayed.already_in_lake += duplicates;
            if fresh.num_rows() > 0 {
                replayed.rows += fresh.num_rows();
                sink.engine.buffer_append(entry.table, fresh)?;
            }
        }
        Ok((sink, replayed))
    }

    /// Makes [`Sink::full`] resolve once `rows` rows wait to be flushed.
    pub fn set_flush_rows(&self, rows: usize) {
        self.flush_rows
            .store(rows, std::sync::atomic::Ordering::Relaxed);
    }

    /// Resolves when the buffer has reached the size set by [`Sink::set_flush_rows`].
    pub async fn full(&self) {
        self.full.notified().await;
    }

    /// Rows acknowledged and not yet flushed, over all tables.
    pub fn buffered_rows(&self) -> usize {
        Table::ALL
            .iter()
            .map(|t| self.engine.buffered_rows(*t))
            .sum()
    }

    /// The query engine the sink feeds.
    pub fn engine(&self) -> &Arc<QueryEngine> {
        &self.engine
    }

    fn seen(&self) -> std::sync::MutexGuard<'_, HashMap<Table, HashSet<String>>> {
        // A poisoned set still holds whole entries.
        self.seen.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Keeps the rows whose keys are new, and marks those keys seen.
    fn claim(&self, table: Table, batch: &RecordBatch) -> Result<(RecordBatch, usize), SinkError> {
        let Some(keys) = keys(table, batch)? else {
            return Ok((batch.clone(), 0));
        };
        let mut seen = self.seen();
        let set = seen.entry(table).or_default();
        let mask: BooleanArray = keys
            .iter()
            .map(|k| Some(k.as_ref().is_none_or(|k| set.insert(k.clone()))))
            .collect();
        drop(seen);
        let fresh = filter_record_batch(batch, &mask).map_err(QueryError::from)?;
        let duplicates = batch.num_rows() - fresh.num_rows();
        Ok((fresh, duplicates))
    }

    fn unclaim(&self, table: Table, batch: &RecordBatch) {
        if let Ok(Some(keys)) = keys(table, batch) {
            let mut seen = self.seen();
            if let Some(set) = seen.get_mut(&table) {
                for key in keys.into_iter().flatten() {
                    set.remove(&key);
                }
            }
        }
    }

    /// Stores `batch` (the table's canonical schema): when this returns `Ok`, the new rows are
    /// on disk and queryable, and the caller may acknowledge.
    pub async fn write(&self, table: Table, batch: RecordBatch) -> Result<Written, SinkError> {
        if batch.schema().fields() != table.schema().fields() {
            return Err(SinkError::Rows {
                table: table.name(),
                reason: "not the table's schema".into(),
            });
        }
        let _shared = self.gate.read().await;
        let (fresh, duplicates) = self.claim(table, &batch)?;
        if duplicates > 0 {
            // The first copy may still be on its way to disk: answer only once it is there
            // (a failed write stops the log, so this then fails too and nothing is
            // acknowledged that is not durable).
            self.wal.barrier().await?;
        }
        if fresh.num_rows() == 0 {
            return Ok(Written {
                stored: 0,
                duplicates,
            });
        }
        let entry = Entry {
            table,
            batch: fresh,
        };
        if let Err(e) = self.wal.append(&entry).await {
            // Not stored: a retry must not be taken for a duplicate.
            self.unclaim(table, &entry.batch);
            return Err(e.into());
        }
        let stored = entry.batch.num_rows();
        self.engine.buffer_append(table, entry.batch)?;
        if self.buffered_rows() >= self.flush_rows.load(std::sync::atomic::Ordering::Relaxed) {
            self.full.notify_one();
        }
        Ok(Written { stored, duplicates })
    }

    /// Writes everything buffered to the lake (one commit per table), then drops it from the
    /// log. Returns the rows flushed.
    pub async fn flush(&self) -> Result<usize, SinkError> {
        let _one = self.flushing.lock().await;
        let (boundary, sealed) = {
            let _alone = self.gate.write().await;
            let boundary = self.wal.rotate().await?;
            let mut sealed = Vec::new();
            for table in Table::ALL {
                if let Some((generation, batches)) = self.engine.buffer_seal(table)? {
                    sealed.push((table, generation, batches));
                }
            }
            (boundary, sealed)
        };
        let mut rows = 0;
        for (table, generation, batches) in sealed {
            rows += batches.iter().map(RecordBatch::num_rows).sum::<usize>();
            self.engine.lake().append(table, batches).await?;
            self.engine.buffer_flushed(table, generation).await?;
        }
        // Only now is every record below the boundary in the lake.
        self.wal.truncate(boundary).await?;
        Ok(rows)
    }
}
