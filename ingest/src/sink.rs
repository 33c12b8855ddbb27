//! Where every source delivers rows: deduplicated, durable in the write-ahead log before the
//! caller acknowledges, queryable at once (the query layer's buffer), and flushed to the lake
//! as one Delta commit per table, after which the log is truncated.
//!
//! Retransmissions are stored once: rows carry a key (an ADT event's sender + control id, a
//! theatre event's id; for tables without an event id, a hash of the whole row, so a retried
//! request is recognised while a corrected record, which differs, is kept), and a key the
//! sink has seen, in the lake, the log or earlier in the same batch, is counted as a duplicate
//! and acknowledged again without storing it, once the first copy is durable. After a crash
//! between a flush's lake commit and the log's truncation, the replayed rows are recognised
//! the same way.
//!
//! Keys are kept per partition (a table's day), loaded from the lake and buffer the first
//! time a row of that day arrives, and the least recently used partitions beyond
//! [`LOADED_PARTITIONS`] per table are let go at a flush; so start-up reads nothing, and
//! memory follows the days being written, not the lake's age.
//!
//! Memory is bounded: past [`Sink::set_max_buffered_rows`] rows waiting for the lake, the sink
//! is [busy](Sink::busy) and sources push back (HTTP answers 503, MLLP stops reading) until a
//! flush drains it.

use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::sync::{Arc, Mutex};

use bright_engine::arrow::array::{Array, ArrayRef, AsArray, BooleanArray};
use bright_engine::arrow::compute::{cast, filter_record_batch};
use bright_engine::arrow::datatypes::DataType;
use bright_engine::arrow::datatypes::Date32Type;
use bright_engine::arrow::record_batch::RecordBatch;
use bright_engine::arrow::row::{RowConverter, SortField};
use bright_engine::batch::BatchBuilder;
use bright_engine::lake::LakeError;
use bright_engine::query::{QueryEngine, QueryError};
use bright_engine::schema::{Table, adt_events, theatre_events};
use sha2::{Digest, Sha256};

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
#[derive(Debug, Clone, PartialEq)]
pub struct Written {
    /// For each row of the batch written, whether it was stored (false: already held).
    pub new_rows: BooleanArray,
}

impl Written {
    /// Rows now durable and queryable.
    pub fn stored(&self) -> usize {
        self.new_rows.true_count()
    }

    /// Rows already held (retransmissions), not stored again.
    pub fn duplicates(&self) -> usize {
        self.new_rows.false_count()
    }
}

impl Default for Written {
    /// Nothing written.
    fn default() -> Self {
        Written {
            new_rows: BooleanArray::from(Vec::<bool>::new()),
        }
    }
}

/// A data-quality issue for `dq_issues`: the feed, trust and record it is about, why, and the
/// team that fixes it. Never the record itself, which may hold identifiers.
#[derive(Debug, Clone, Copy)]
pub struct Issue<'a> {
    pub feed: &'a str,
    pub org_code: &'a str,
    /// Where the record came from (a sender and control id, a request, a file).
    pub record_ref: &'a str,
    pub reason: &'a str,
    pub owner: &'a str,
}

pub use bright_engine::schema::clip;

/// The column that identifies a row of `table` across retransmissions, if it has one.
pub fn key_column(table: Table) -> Option<&'static str> {
    match table {
        Table::AdtEvents => Some(adt_events::EVENT_ID),
        Table::TheatreEvents => Some(theatre_events::EVENT_ID),
        Table::AuditLog => Some(bright_engine::schema::audit_log::AUDIT_ID),
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
    seen: Mutex<Seen>,
    /// Buffered rows at which [`Sink::full`] wakes the flusher.
    flush_rows: std::sync::atomic::AtomicUsize,
    full: tokio::sync::Notify,
    /// Buffered rows at which the sink is busy and sources push back.
    max_buffered: std::sync::atomic::AtomicUsize,
    /// Woken after every flush, for sources waiting for room.
    drained: tokio::sync::Notify,
    /// The most rows ever waiting for the lake at once.
    peak_buffered: std::sync::atomic::AtomicUsize,
}

/// How many rows a replay or flush handled.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Replayed {
    pub records: usize,
    pub rows: usize,
    pub already_in_lake: usize,
    /// Damaged log segments whose loss was accepted at this start (see [`Sink::open_with`]).
    pub losses: usize,
}

/// Who is told in `dq_issues` about acknowledged records the write-ahead log lost.
pub const WAL_OWNER: &str = "bright operators";

/// Partitions per table whose keys are kept after a flush.
pub const LOADED_PARTITIONS: usize = 64;

/// The keys of the partitions loaded so far.
#[derive(Debug, Default)]
struct Seen {
    keys: HashMap<(Table, i32), KeySet>,
    /// When each loaded partition was last used (a counter), to let the oldest go.
    used: HashMap<(Table, i32), u64>,
    clock: u64,
}

/// Column `name` of `batch`, cast to `data_type` (scans may give views or dictionaries).
fn column(
    table: Table,
    batch: &RecordBatch,
    name: &str,
    data_type: &DataType,
) -> Result<ArrayRef, SinkError> {
    let array = batch.column_by_name(name).ok_or_else(|| SinkError::Rows {
        table: table.name(),
        reason: format!("no {name} column"),
    })?;
    Ok(cast(array, data_type)?)
}

/// Each row's partition day (days since 1970-01-01).
fn partition_days(table: Table, batch: &RecordBatch) -> Result<Vec<i32>, SinkError> {
    let days = column(table, batch, table.day_column(), &DataType::Date32)?;
    let days = days.as_primitive::<bright_engine::arrow::datatypes::Date32Type>();
    Ok((0..days.len())
        .map(|i| if days.is_null(i) { 0 } else { days.value(i) })
        .collect())
}

/// What admitting a batch did: its new rows, and which keys it claimed (to give back if the
/// rows cannot be stored).
struct Admitted {
    fresh: RecordBatch,
    ids: Ids,
    claimed: BooleanArray,
}

impl Admitted {
    /// Rows of the batch held already.
    fn duplicates(&self) -> usize {
        self.claimed.false_count()
    }
}

/// A batch's row keys and partition days, worked out once per write.
struct Ids {
    keys: Vec<Option<Key>>,
    days: Vec<i32>,
}

impl Ids {
    fn of(table: Table, batch: &RecordBatch) -> Result<Ids, SinkError> {
        Ok(Ids {
            keys: keys(table, batch)?,
            days: partition_days(table, batch)?,
        })
    }
}

/// A row's identity: 128 bits of the SHA-256 of its key, or of all its values. Sixteen bytes
/// instead of the key's text keep the set of everything seen small (about 40 bytes a row with
/// the set's own overhead); a collision, which would drop a row as a duplicate, is not a risk
/// at 128 bits.
type Key = u128;

/// A set of [`Key`]s. The keys are SHA-256 digests already, so hashing them again with
/// SipHash (the standard sets' default) bought nothing and cost a few percent of every
/// request: a key's two halves are mixed with a seed drawn once per process instead. Senders
/// cannot steer keys into one bucket without knowing the seed, and even with it would have to
/// find SHA-256 inputs whose digests agree in many bits.
type KeySet = HashSet<Key, DigestHash>;

#[derive(Debug, Clone, Copy)]
struct DigestHash {
    seed: u64,
}

impl Default for DigestHash {
    fn default() -> Self {
        use std::hash::BuildHasher;
        static SEED: std::sync::OnceLock<u64> = std::sync::OnceLock::new();
        let seed =
            *SEED.get_or_init(|| std::collections::hash_map::RandomState::new().hash_one(0u8));
        DigestHash { seed }
    }
}

impl std::hash::BuildHasher for DigestHash {
    type Hasher = DigestHasher;
    fn build_hasher(&self) -> DigestHasher {
        DigestHasher { hash: self.seed }
    }
}

struct DigestHasher {
    hash: u64,
}

impl std::hash::Hasher for DigestHasher {
    fn write(&mut self, bytes: &[u8]) {
        // Only keys reach this set, through `write_u128`; other input still hashes whole.
        for chunk in bytes.chunks(8) {
            let mut word = [0u8; 8];
            word[..chunk.len()].copy_from_slice(chunk);
            self.write_u64(u64::from_le_bytes(word));
        }
    }

    fn write_u64(&mut self, value: u64) {
        self.hash = (self.hash ^ value)
            .wrapping_mul(0x9E37_79B9_7F4A_7C15)
            .rotate_left(29);
    }

    fn write_u128(&mut self, value: u128) {
        self.write_u64(value as u64);
        self.write_u64((value >> 64) as u64);
    }

    fn finish(&self) -> u64 {
        self.hash
    }
}

fn digest(bytes: &[u8]) -> Key {
    let hash = Sha256::digest(bytes);
    let mut first = [0u8; 16];
    first.copy_from_slice(&hash[..16]);
    Key::from_le_bytes(first)
}

/// Each row's key: its key column, or a hash of all its values (cast to the table's types, so
/// rows read back from the lake hash as they did when written).
fn keys(table: Table, batch: &RecordBatch) -> Result<Vec<Option<Key>>, SinkError> {
    let Some(name) = key_column(table) else {
        return content_keys(table, batch);
    };
    let strings = column(table, batch, name, &DataType::Utf8)?;
    let strings = strings.as_string::<i32>();
    Ok(strings
        .iter()
        .map(|s| s.map(|s| digest(s.as_bytes())))
        .collect())
}

fn content_keys(table: Table, batch: &RecordBatch) -> Result<Vec<Option<Key>>, SinkError> {
    let schema = table.schema();
    if batch.num_columns() != schema.fields().len() {
        return Err(SinkError::Rows {
            table: table.name(),
            reason: format!(
                "{} columns, the table has {}",
                batch.num_columns(),
                schema.fields().len()
            ),
        });
    }
    let columns = batch
        .columns()
        .iter()
        .zip(schema.fields())
        .map(|(c, f)| cast(c, f.data_type()))
        .collect::<Result<Vec<_>, _>>()?;
    let converter = RowConverter::new(
        schema
            .fields()
            .iter()
            .map(|f| SortField::new(f.data_type().clone()))
            .collect(),
    )?;
    let rows = converter.convert_columns(&columns)?;
    Ok(rows.iter().map(|row| Some(digest(row.as_ref()))).collect())
}

impl Sink {
    /// Opens the sink over `engine`'s lake with its log in `wal_dir`, replaying what the log
    /// holds into the buffer (skipping rows the lake already has) before anything new is
    /// accepted.
    pub async fn open(
        engine: Arc<QueryEngine>,
        wal_dir: &Path,
    ) -> Result<(Sink, Replayed), SinkError> {
        Sink::open_with(engine, wal_dir, false).await
    }

    /// [`Sink::open`]; with `accept_loss`, a damaged log is read for what is intact (see
    /// [`Wal::open_accepting_loss`]) and each loss is recorded in `dq_issues`.
    pub async fn open_with(
        engine: Arc<QueryEngine>,
        wal_dir: &Path,
        accept_loss: bool,
    ) -> Result<(Sink, Replayed), SinkError> {
        let (wal, records, losses) = if accept_loss {
            Wal::open_accepting_loss(wal_dir)?
        } else {
            let (wal, records) = Wal::open(wal_dir)?;
            (wal, records, Vec::new())
        };
        let sink = Sink {
            wal,
            engine,
            gate: tokio::sync::RwLock::new(()),
            flushing: tokio::sync::Mutex::new(()),
            seen: Mutex::new(Seen::default()),
            flush_rows: std::sync::atomic::AtomicUsize::new(usize::MAX),
            full: tokio::sync::Notify::new(),
            max_buffered: std::sync::atomic::AtomicUsize::new(usize::MAX),
            drained: tokio::sync::Notify::new(),
            peak_buffered: std::sync::atomic::AtomicUsize::new(0),
        };
        let mut replayed = Replayed {
            records: records.len(),
            losses: losses.len(),
            ..Replayed::default()
        };
        for loss in &losses {
            let range = loss.lost.map_or_else(
                || format!("{} bytes", loss.bytes),
                |(first, last)| format!("sequences {first}..={last}"),
            );
            sink.record_issue(Issue {
                feed: "write_ahead_log",
                org_code: "unknown",
                record_ref: &format!("{} {range}", loss.segment.display()),
                reason: &loss.to_string(),
                owner: WAL_OWNER,
            })
            .await;
        }
        for (_, entry) in records {
            let admitted = sink.admit(entry.table, &entry.batch).await?;
            replayed.already_in_lake += admitted.duplicates();
            if admitted.fresh.num_rows() > 0 {
                replayed.rows += admitted.fresh.num_rows();
                sink.engine.buffer_append(entry.table, admitted.fresh)?;
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

    /// Makes the sink [busy](Sink::busy) once `rows` rows wait for the lake: the bound on the
    /// memory acknowledged rows hold when the lake is slow or unreachable.
    pub fn set_max_buffered_rows(&self, rows: usize) {
        self.max_buffered
            .store(rows, std::sync::atomic::Ordering::Relaxed);
    }

    /// Whether sources should stop taking rows until a flush has drained the buffer.
    pub fn busy(&self) -> bool {
        self.buffered_rows() >= self.max_buffered.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Resolves once the sink is not busy (at once when it is not).
    pub async fn room(&self) {
        loop {
            let drained = self.drained.notified();
            tokio::pin!(drained);
            // Registered before the check, so a flush between the two is not missed.
            drained.as_mut().enable();
            if !self.busy() {
                return;
            }
            self.full.notify_one();
            drained.await;
        }
    }

    /// The most rows that have waited for the lake at once: with sources waiting for
    /// [`Sink::room`], at most the busy threshold plus one write.
    pub fn peak_buffered_rows(&self) -> usize {
        self.peak_buffered
            .load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Rows acknowledged and not yet flushed, over all tables.
    pub fn buffered_rows(&self) -> usize {
        Table::ALL
            .iter()
            .map(|t| self.engine.buffered_rows(*t))
            .sum()
    }

    /// Records `issue` in `dq_issues`, durable and queryable like any row. A failure is only
    /// logged: the issue reports on other data, and no sender waits on it.
    ///
    /// Every text is cut to its column's length: a refused record's reference and reason
    /// quote what the sender sent, and a hostile sender must not be able to fill the lake
    /// through its refusals.
    pub async fn record_issue(&self, issue: Issue<'_>) {
        use bright_engine::schema::{common, dq_issues};
        let now = chrono::Utc::now();
        fn cut<'a>(column: &str, text: &'a str) -> std::borrow::Cow<'a, str> {
            clip(text, Table::DqIssues.max_chars(column))
        }
        let mut builder = BatchBuilder::new(Table::DqIssues);
        builder
            .row()
            .text(&cut(dq_issues::FEED, issue.feed))
            .timestamp(now.timestamp_micros())
            .text(&cut(common::ORG_CODE, issue.org_code))
            .text(&cut(dq_issues::RECORD_REF, issue.record_ref))
            .text(&cut(dq_issues::REASON, issue.reason))
            .text(&cut(dq_issues::OWNER, issue.owner))
            .date(Date32Type::from_naive_date(now.date_naive()))
            .end();
        let written = match builder.finish() {
            Ok(batch) => self.write(Table::DqIssues, batch).await.map(|_| ()),
            Err(e) => Err(e.into()),
        };
        if let Err(e) = written {
            tracing::error!(error = %e, feed = issue.feed, "Could not record a data-quality issue.");
        }
    }

    /// Resolves if the write-ahead log stops after a failed write: from then on nothing can
    /// be acknowledged, and the process should stop so a restart replays the log.
    pub async fn failed(&self) {
        self.wal.stopped().await;
    }

    /// The query engine the sink feeds.
    pub fn engine(&self) -> &Arc<QueryEngine> {
        &self.engine
    }

    fn seen(&self) -> std::sync::MutexGuard<'_, Seen> {
        // A poisoned set still holds whole entries.
        self.seen.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Loads the keys of the partitions in `days` that are not loaded yet, from the lake and
    /// the buffer. Concurrent loads of one partition only add the same keys twice.
    async fn load(&self, table: Table, days: &[i32]) -> Result<(), SinkError> {
        // A batch's rows mostly run day by day: its distinct days, without sorting every row.
        let mut days: Vec<i32> = days
            .iter()
            .enumerate()
            .filter(|&(i, day)| i == 0 || days[i - 1] != *day)
            .map(|(_, &day)| day)
            .collect();
        days.sort_unstable();
        days.dedup();
        days.retain(|&day| !self.seen().keys.contains_key(&(table, day)));
        if days.is_empty() {
            return Ok(());
        }
        // One query for all of them: the key (or every column) and the partition.
        let columns = key_column(table).map(|c| [c, table.day_column()]);
        let batches = self
            .engine
            .day_rows(table, &days, columns.as_ref().map(|c| &c[..]))
            .await?;
        let mut found: HashMap<i32, KeySet> =
            days.iter().map(|&d| (d, KeySet::default())).collect();
        for batch in &batches {
            let ids = Ids::of(table, batch)?;
            for (key, day) in ids.keys.into_iter().zip(ids.days) {
                if let Some(key) = key {
                    found.entry(day).or_default().insert(key);
                }
            }
        }
        let mut seen = self.seen();
        seen.clock += 1;
        let now = seen.clock;
        for (day, keys) in found {
            seen.used.insert((table, day), now);
            seen.keys.entry((table, day)).or_default().extend(keys);
        }
        Ok(())
    }

    /// Loads `batch`'s partitions and keeps the rows whose keys are new, marking those keys
    /// seen.
    async fn admit(&self, table: Table, batch: &RecordBatch) -> Result<Admitted, SinkError> {
        let ids = Ids::of(table, batch)?;
        self.load(table, &ids.days).await?;
        let mut seen = self.seen();
        seen.clock += 1;
        let now = seen.clock;
        let Seen { keys, used, .. } = &mut *seen;
        // A batch's rows run day by day: each run's set is looked up once, not once a row.
        let mut claimed = Vec::with_capacity(ids.keys.len());
        let mut start = 0;
        while let Some(&day) = ids.days.get(start) {
            let end = start + ids.days[start..].iter().take_while(|&&d| d == day).count();
            let run = &ids.keys[start..end];
            if run.iter().any(Option::is_some) {
                used.insert((table, day), now);
                let set = keys.entry((table, day)).or_default();
                claimed.extend(run.iter().map(|key| key.is_none_or(|key| set.insert(key))));
            } else {
                claimed.extend(run.iter().map(|_| true));
            }
            start = end;
        }
        drop(seen);
        let claimed = BooleanArray::from(claimed);
        // All rows new: arrow's filter hands back slices of the columns, copying nothing.
        let fresh = filter_record_batch(batch, &claimed)?;
        Ok(Admitted {
            fresh,
            ids,
            claimed,
        })
    }

    /// Forgets the keys an admission claimed, when its rows could not be stored.
    fn unclaim(&self, table: Table, admitted: &Admitted) {
        let mut seen = self.seen();
        for (i, (key, day)) in admitted.ids.keys.iter().zip(&admitted.ids.days).enumerate() {
            if !admitted.claimed.value(i) {
                continue;
            }
            if let (Some(key), Some(set)) = (key, seen.keys.get_mut(&(table, *day))) {
                set.remove(key);
            }
        }
    }

    /// Partitions whose keys are in memory, over all tables.
    pub fn loaded_partitions(&self) -> usize {
        self.seen().keys.len()
    }

    /// Lets go of the least recently used partitions beyond [`LOADED_PARTITIONS`] per table.
    /// Called with writes shut out, so no claim is between its check and its log append.
    fn forget_old_partitions(&self) {
        let mut seen = self.seen();
        for table in Table::ALL {
            let mut loaded: Vec<(u64, i32)> = seen
                .used
                .iter()
                .filter(|((t, _), _)| *t == table)
                .map(|(&(_, day), &used)| (used, day))
                .collect();
            if loaded.len() <= LOADED_PARTITIONS {
                continue;
            }
            loaded.sort_unstable();
            let excess = loaded.len() - LOADED_PARTITIONS;
            for (_, day) in loaded.into_iter().take(excess) {
                seen.used.remove(&(table, day));
                seen.keys.remove(&(table, day));
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
        let admitted = self.admit(table, &batch).await?;
        let new_rows = admitted.claimed.clone();
        if admitted.duplicates() > 0 {
            // The first copy may still be on its way to disk: answer only once it is there
            // (a failed write stops the log, so this then fails too and nothing is
            // acknowledged that is not durable).
            self.wal.barrier().await?;
        }
        if admitted.fresh.num_rows() == 0 {
            return Ok(Written { new_rows });
        }
        let entry = Entry {
            table,
            batch: admitted.fresh.clone(),
        };
        if let Err(e) = self.wal.append(&entry).await {
            // Not stored: a retry must not be taken for a duplicate.
            self.unclaim(table, &admitted);
            return Err(e.into());
        }
        self.engine.buffer_append(table, entry.batch)?;
        let buffered = self.buffered_rows();
        self.peak_buffered
            .fetch_max(buffered, std::sync::atomic::Ordering::Relaxed);
        if buffered >= self.flush_rows.load(std::sync::atomic::Ordering::Relaxed) {
            self.full.notify_one();
        }
        Ok(Written { new_rows })
    }

    /// Writes everything buffered to the lake (one commit per table), then drops it from the
    /// log, and merges the small files of the days written once enough have gathered
    /// ([`QueryEngine::compact_days`]). Returns the rows flushed.
    pub async fn flush(&self) -> Result<usize, SinkError> {
        let _one = self.flushing.lock().await;
        let (boundary, sealed) = {
            let _alone = self.gate.write().await;
            let boundary = self.wal.rotate().await?;
            // Nothing is being claimed now; a partition let go is read again from the lake
            // and the buffer, where everything claimed so far is.
            self.forget_old_partitions();
            let mut sealed = Vec::new();
            for table in Table::ALL {
                if let Some((generation, batches)) = self.engine.buffer_seal(table)? {
                    sealed.push((table, generation, batches));
                }
            }
            (boundary, sealed)
        };
        let mut rows = 0;
        let mut written = Vec::with_capacity(sealed.len());
        for (table, generation, batches) in sealed {
            rows += batches.iter().map(RecordBatch::num_rows).sum::<usize>();
            let mut days = std::collections::BTreeSet::new();
            for batch in &batches {
                days.extend(partition_days(table, batch)?);
            }
            self.engine.lake().append(table, batches).await?;
            self.engine.buffer_flushed(table, generation).await?;
            written.push((table, days));
        }
        self.drained.notify_waiters();
        // Only now is every record below the boundary in the lake.
        self.wal.truncate(boundary).await?;
        // A flush a few seconds apart adds a file each time; merged as they gather, the day
        // being written stays a few files for the boards reading it all day.
        for (table, days) in written {
            let days = days
                .into_iter()
                .filter_map(Date32Type::to_naive_date_opt)
                .collect();
            if let Err(e) = self.engine.compact_days(table, &days).await {
                // The rows are safe in the lake either way; the next flush tries again.
                tracing::warn!(table = %table, error = %e, "Could not compact the days written.");
            }
        }
        Ok(rows)
    }
}
