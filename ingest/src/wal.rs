//! The write-ahead log: everything ingest acknowledges is on disk, fsynced, before the
//! acknowledgement goes out, and is replayed after a crash until the lake holds it.
//!
//! A log is a folder of segment files named by the sequence number of their first record.
//! Each record is `[u32 length][u32 crc32][u64 sequence][payload]` (little-endian; length
//! and CRC cover sequence and payload); the payload names a table and carries its rows as one Arrow
//! IPC stream, so rows come back with exactly the types they went in with.
//!
//! One writer thread owns the open segment. Appends from every connection queue to it; it
//! writes all that are waiting with one `write` and one `fsync` (group commit), then answers
//! each. A crash mid-write leaves a torn record at the end of the last segment: replay stops
//! there and cuts it off, since no acknowledgement can have been sent for it. Damage anywhere
//! else is an error: starting anyway could silently drop acknowledged data.

use std::fs::{File, OpenOptions};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::sync::mpsc as std_mpsc;

use arrow_ipc::reader::StreamReader;
use arrow_ipc::writer::StreamWriter;
use bright_engine::arrow::record_batch::RecordBatch;
use bright_engine::schema::Table;
use tokio::sync::oneshot;

/// Bytes before a record's body: length and CRC. The body is the sequence and the payload.
const PREFIX: usize = 4 + 4;
/// Bytes of the sequence number that starts a body.
const SEQUENCE: usize = 8;
/// Largest payload accepted on replay; anything larger is damage, not data.
const MAX_RECORD: usize = 1 << 30;
/// Most bytes one group commit writes before it syncs.
const MAX_GROUP_BYTES: usize = 16 << 20;
const SUFFIX: &str = "wal";

/// Errors of the write-ahead log.
#[derive(Debug, thiserror::Error)]
pub enum WalError {
    /// Reading or writing the log failed.
    #[error("write-ahead log {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// A record before the end of the log is damaged.
    #[error("write-ahead log {path} is damaged at byte {offset}: {reason}; refusing to start")]
    Damaged {
        path: PathBuf,
        offset: u64,
        reason: String,
    },
    /// Encoding or decoding rows failed.
    #[error("write-ahead log rows: {0}")]
    Arrow(#[from] bright_engine::arrow::error::ArrowError),
    /// The writer thread has stopped (after an earlier I/O error).
    #[error("the write-ahead log writer has stopped")]
    Stopped,
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> WalError + '_ {
    move |source| WalError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// Rows of one table, as logged.
#[derive(Debug, Clone)]
pub struct Entry {
    pub table: Table,
    pub batch: RecordBatch,
}

impl Entry {
    fn encode(&self) -> Result<Vec<u8>, WalError> {
        let name = self.table.name().as_bytes();
        let mut out = Vec::with_capacity(64 + self.batch.get_array_memory_size());
        out.push(u8::try_from(name.len()).expect("table names are short"));
        out.extend_from_slice(name);
        let mut writer = StreamWriter::try_new(&mut out, &self.batch.schema())?;
        writer.write(&self.batch)?;
        writer.finish()?;
        drop(writer);
        Ok(out)
    }

    fn decode(payload: &[u8]) -> Result<Entry, String> {
        let (&len, rest) = payload.split_first().ok_or("empty payload")?;
        let len = usize::from(len);
        let name = rest
            .get(..len)
            .ok_or("payload shorter than its table name")?;
        let name = std::str::from_utf8(name).map_err(|e| e.to_string())?;
        let table: Table = name.parse().map_err(|e| format!("{e}"))?;
        let reader = StreamReader::try_new(&rest[len..], None).map_err(|e| e.to_string())?;
        let batches = reader
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| e.to_string())?;
        let batch = match batches.len() {
            1 => batches.into_iter().next().ok_or("no batch")?,
            n => return Err(format!("{n} batches in one record")),
        };
        // A log written before an upgrade holds rows of the schema of its day.
        let batch = bright_engine::batch::conform(table, &batch).map_err(|e| e.to_string())?;
        Ok(Entry { table, batch })
    }
}

/// Where the writer answers an append: its sequence number, or why it failed.
type Answer = oneshot::Sender<Result<u64, String>>;

enum Command {
    Append(Vec<u8>, Answer),
    /// Starts a new segment; answers the sequence number its first record will get.
    Rotate(Answer),
    /// Deletes segments holding only records below the sequence number.
    Truncate(u64, oneshot::Sender<Result<(), String>>),
    /// Answered once every append queued before it is durable.
    Barrier(oneshot::Sender<Result<(), String>>),
    /// Points the writer at `/dev/full`, so the next write fails as on a full disk.
    #[cfg(test)]
    BreakForTest,
}

/// An open write-ahead log.
#[derive(Debug, Clone)]
pub struct Wal {
    tx: std_mpsc::Sender<Command>,
    dir: PathBuf,
    /// Turns true when a failed write has stopped the writer.
    stopped: tokio::sync::watch::Receiver<bool>,
}

fn segment_path(dir: &Path, first: u64) -> PathBuf {
    dir.join(format!("{first:020}.{SUFFIX}"))
}

/// Segment files of `dir` with their first sequence numbers, in order.
fn segments(dir: &Path) -> Result<Vec<(u64, PathBuf)>, WalError> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(io(dir))? {
        let path = entry.map_err(io(dir))?.path();
        if path.extension().and_then(|e| e.to_str()) != Some(SUFFIX) {
            continue;
        }
        if let Some(first) = path
            .file_stem()
            .and_then(|s| s.to_str())
            .and_then(|s| s.parse::<u64>().ok())
        {
            found.push((first, path));
        }
    }
    found.sort();
    Ok(found)
}

/// Reads the records of one segment. `last` allows a torn tail, which is cut off.
fn read_segment(path: &Path, last: bool) -> Result<Vec<(u64, Entry)>, WalError> {
    let mut bytes = Vec::new();
    File::open(path)
        .and_then(|mut f| f.read_to_end(&mut bytes))
        .map_err(io(path))?;
    let mut records = Vec::new();
    let mut offset = 0usize;
    let damaged = |offset: usize, reason: String| WalError::Damaged {
        path: path.to_path_buf(),
        offset: offset as u64,
        reason,
    };
    while offset < bytes.len() {
        // A torn write can only be the last record: cut short, or whole but for its checksum.
        let (reason, torn) = match bytes.get(offset..offset + PREFIX) {
            None => ("a record header is cut short".to_string(), true),
            Some(prefix) => {
                let len = u32::from_le_bytes(prefix[0..4].try_into().expect("4 bytes")) as usize;
                let crc = u32::from_le_bytes(prefix[4..8].try_into().expect("4 bytes"));
                let end = offset + PREFIX + len;
                match bytes.get(offset + PREFIX..end) {
                    _ if !(SEQUENCE..=MAX_RECORD).contains(&len) => {
                        (format!("a record claims {len} bytes"), false)
                    }
                    None => (format!("a record of {len} bytes is cut short"), true),
                    Some(body) if crc32fast::hash(body) != crc => (
                        "a record's checksum does not match".to_string(),
                        end == bytes.len(),
                    ),
                    Some(body) => {
                        let (sequence, payload) = body.split_at(SEQUENCE);
                        let sequence = u64::from_le_bytes(sequence.try_into().expect("8 bytes"));
                        let entry = Entry::decode(payload).map_err(|e| damaged(offset, e))?;
                        records.push((sequence, entry));
                        offset = end;
                        continue;
                    }
                }
            }
        };
        if !(last && torn) {
            return Err(damaged(offset, reason));
        }
        tracing::warn!(
            path = %path.display(),
            offset,
            reason,
            "Cutting a torn record off the end of the write-ahead log (never acknowledged)."
        );
        let file = OpenOptions::new()
            .write(true)
            .open(path)
            .map_err(io(path))?;
        file.set_len(offset as u64).map_err(io(path))?;
        file.sync_all().map_err(io(path))?;
        break;
    }
    Ok(records)
}

fn sync_dir(dir: &Path) -> std::io::Result<()> {
    // A new or deleted file name is durable only once its folder is synced.
    File::open(dir)?.sync_all()
}

impl Wal {
    /// Opens (creating) the log in `dir`: returns it, and every record it holds in order.
    pub fn open(dir: &Path) -> Result<(Wal, Vec<(u64, Entry)>), WalError> {
        std::fs::create_dir_all(dir).map_err(io(dir))?;
        let found = segments(dir)?;
        let mut records = Vec::new();
        for (i, (_, path)) in found.iter().enumerate() {
            records.extend(read_segment(path, i + 1 == found.len())?);
        }
        let next = records.last().map_or_else(
            || found.last().map_or(0, |(first, _)| *first),
            |(seq, _)| seq + 1,
        );
        // Appends go to a new segment: the last one may have just had a torn tail cut off.
        let path = segment_path(dir, next);
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .map_err(io(&path))?;
        sync_dir(dir).map_err(io(dir))?;
        let (tx, rx) = std_mpsc::channel();
        let (stop, stopped) = tokio::sync::watch::channel(false);
        let writer = Writer {
            stop,
            dir: dir.to_path_buf(),
            file,
            first: next,
            next,
            segments: found
                .into_iter()
                .map(|(first, _)| first)
                .filter(|first| *first != next)
                .collect(),
        };
        std::thread::Builder::new()
            .name("bright-wal".into())
            .spawn(move || writer.run(rx))
            .map_err(io(dir))?;
        Ok((
            Wal {
                tx,
                dir: dir.to_path_buf(),
                stopped,
            },
            records,
        ))
    }

    /// Appends `entry`; returns its sequence number once it is on disk.
    pub async fn append(&self, entry: &Entry) -> Result<u64, WalError> {
        let payload = entry.encode()?;
        let (done, answer) = oneshot::channel();
        self.tx
            .send(Command::Append(payload, done))
            .map_err(|_| WalError::Stopped)?;
        self.answer(answer).await
    }

    /// Starts a new segment; returns the sequence number of the first record that goes in it.
    /// Everything below it is in older segments, which [`Wal::truncate`] can then delete.
    pub async fn rotate(&self) -> Result<u64, WalError> {
        let (done, answer) = oneshot::channel();
        self.tx
            .send(Command::Rotate(done))
            .map_err(|_| WalError::Stopped)?;
        self.answer(answer).await
    }

    /// Deletes the segments that hold only records below `sequence` (the lake has them).
    pub async fn truncate(&self, sequence: u64) -> Result<(), WalError> {
        let (done, answer) = oneshot::channel();
        self.tx
            .send(Command::Truncate(sequence, done))
            .map_err(|_| WalError::Stopped)?;
        self.answer(answer).await
    }

    /// Returns once every append made before this call is durable; fails if the log has
    /// stopped (a failed write stops it, since the file's state is then unknown).
    pub async fn barrier(&self) -> Result<(), WalError> {
        let (done, answer) = oneshot::channel();
        self.tx
            .send(Command::Barrier(done))
            .map_err(|_| WalError::Stopped)?;
        self.answer(answer).await
    }

    /// Resolves once the log has stopped after a failed write: nothing more can be made
    /// durable until a restart replays it.
    pub async fn stopped(&self) {
        let mut stopped = self.stopped.clone();
        // The writer gone without saying so (a panic) is a stop too.
        let _ = stopped.wait_for(|s| *s).await;
    }

    #[cfg(test)]
    fn break_for_test(&self) {
        let _ = self.tx.send(Command::BreakForTest);
    }

    async fn answer<T>(&self, answer: oneshot::Receiver<Result<T, String>>) -> Result<T, WalError> {
        answer
            .await
            .map_err(|_| WalError::Stopped)?
            .map_err(|message| WalError::Io {
                path: self.dir.clone(),
                source: std::io::Error::other(message),
            })
    }
}

struct Writer {
    stop: tokio::sync::watch::Sender<bool>,
    dir: PathBuf,
    file: File,
    /// First sequence number of the open segment.
    first: u64,
    next: u64,
    /// First sequence numbers of the closed segments still on disk.
    segments: Vec<u64>,
}

impl Writer {
    fn run(mut self, rx: std_mpsc::Receiver<Command>) {
        let mut pending = None;
        loop {
            let command = match pending.take() {
                Some(c) => c,
                None => match rx.recv() {
                    Ok(c) => c,
                    // Every handle is gone: nothing more can arrive.
                    Err(_) => return,
                },
            };
            match command {
                Command::Append(payload, done) => {
                    // Group commit: take every append already waiting, up to a size bound.
                    let mut group = vec![(payload, done)];
                    let mut bytes = group[0].0.len();
                    while bytes < MAX_GROUP_BYTES {
                        match rx.try_recv() {
                            Ok(Command::Append(p, d)) => {
                                bytes += p.len();
                                group.push((p, d));
                            }
                            Ok(other) => {
                                pending = Some(other);
                                break;
                            }
                            Err(_) => break,
                        }
                    }
                    if !self.commit(group) {
                        // After a failed write or fsync the file's state is unknown (the
                        // kernel may have dropped the dirty pages): stop taking appends, so
                        // nothing more is acknowledged until a restart replays the log.
                        let _ = self.stop.send(true);
                        return;
                    }
                }
                Command::Barrier(done) => {
                    let _ = done.send(Ok(()));
                }
                Command::Rotate(done) => {
                    let _ = done.send(self.rotate().map_err(|e| e.to_string()));
                }
                Command::Truncate(sequence, done) => {
                    let _ = done.send(self.truncate(sequence).map_err(|e| e.to_string()));
                }
                #[cfg(test)]
                Command::BreakForTest => {
                    if let Ok(full) = OpenOptions::new().write(true).open("/dev/full") {
                        self.file = full;
                    }
                }
            }
        }
    }

    /// Writes and syncs a group; false when that failed.
    fn commit(&mut self, group: Vec<(Vec<u8>, Answer)>) -> bool {
        let mut buffer =
            Vec::with_capacity(group.iter().map(|(p, _)| PREFIX + SEQUENCE + p.len()).sum());
        let first = self.next;
        for (payload, _) in &group {
            let sequence = self.next;
            self.next += 1;
            let mut body = Vec::with_capacity(SEQUENCE + payload.len());
            body.extend_from_slice(&sequence.to_le_bytes());
            body.extend_from_slice(payload);
            let len = u32::try_from(body.len()).expect("payloads are below 4 GiB");
            buffer.extend_from_slice(&len.to_le_bytes());
            buffer.extend_from_slice(&crc32fast::hash(&body).to_le_bytes());
            buffer.extend_from_slice(&body);
        }
        let result = self
            .file
            .write_all(&buffer)
            .and_then(|()| self.file.sync_data());
        match result {
            Ok(()) => {
                for (i, (_, done)) in group.into_iter().enumerate() {
                    let _ = done.send(Ok(first + i as u64));
                }
                true
            }
            Err(e) => {
                // Nothing of the group is acknowledged. What reached the file is a torn or
                // unacknowledged tail; the sequence numbers are not reused.
                tracing::error!(error = %e, "Write-ahead log append failed.");
                for (_, done) in group {
                    let _ = done.send(Err(e.to_string()));
                }
                false
            }
        }
    }

    fn rotate(&mut self) -> std::io::Result<u64> {
        if self.next == self.first {
            // The open segment is empty: it already starts at the boundary.
            return Ok(self.next);
        }
        self.file.sync_all()?;
        let path = segment_path(&self.dir, self.next);
        self.file = OpenOptions::new().create(true).append(true).open(&path)?;
        sync_dir(&self.dir)?;
        self.segments.push(self.first);
        self.first = self.next;
        Ok(self.next)
    }

    fn truncate(&mut self, sequence: u64) -> std::io::Result<()> {
        // A closed segment ends where the next begins; it can go when that is <= sequence.
        let mut ends: Vec<u64> = self.segments.iter().skip(1).copied().collect();
        ends.push(self.first);
        let mut kept = Vec::new();
        let mut removed = false;
        for (first, end) in self.segments.iter().zip(ends) {
            if end <= sequence {
                std::fs::remove_file(segment_path(&self.dir, *first))?;
                removed = true;
            } else {
                kept.push(*first);
            }
        }
        self.segments = kept;
        if removed {
            sync_dir(&self.dir)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bright_engine::batch::BatchBuilder;

    fn entry(n: i64) -> Entry {
        let mut b = BatchBuilder::new(Table::AdtEvents);
        b.row()
            .text(&format!("X01/PAS/{n}"))
            .text("A01")
            .timestamp(n)
            .timestamp(n)
            .opt_text(None)
            .opt_text(Some("V1"))
            .opt_text(None)
            .text("X01")
            .opt_text(None)
            .opt_text(Some("W1"))
            .opt_text(None)
            .opt_text(None)
            .opt_text(None)
            .opt_text(None)
            .text("test")
            .opt_text(None)
            .date(0)
            .end();
        Entry {
            table: Table::AdtEvents,
            batch: b.finish().expect("batch"),
        }
    }

    #[tokio::test]
    async fn a_failed_write_stops_the_log_and_says_so() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (wal, _) = Wal::open(dir.path()).expect("opens");
        wal.append(&entry(1)).await.expect("appends");
        // A zero timeout polls once: not stopped before any failure.
        let early = tokio::time::timeout(std::time::Duration::ZERO, wal.stopped()).await;
        assert!(early.is_err(), "stopped before any failure");
        wal.break_for_test();
        assert!(
            wal.append(&entry(2)).await.is_err(),
            "a failed write acknowledged"
        );
        wal.stopped().await;
        assert!(matches!(
            wal.append(&entry(3)).await,
            Err(WalError::Stopped)
        ));
        // What was acknowledged before the failure is still there for the replay.
        drop(wal);
        let (_, records) = Wal::open(dir.path()).expect("reopens");
        assert_eq!(ids(&records), [(0, "X01/PAS/1".to_string())]);
    }

    fn ids(records: &[(u64, Entry)]) -> Vec<(u64, String)> {
        use bright_engine::arrow::util::display::array_value_to_string;
        records
            .iter()
            .map(|(s, e)| {
                (
                    *s,
                    array_value_to_string(e.batch.column(0), 0).expect("text"),
                )
            })
            .collect()
    }

    #[tokio::test]
    async fn records_come_back_in_order_after_reopening() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (wal, replayed) = Wal::open(dir.path()).expect("opens");
        assert!(replayed.is_empty());
        let appends = (0..50).map(|n| {
            let wal = wal.clone();
            tokio::spawn(async move { wal.append(&entry(n)).await })
        });
        let mut sequences = Vec::new();
        for a in appends {
            sequences.push(a.await.expect("task").expect("appends"));
        }
        sequences.sort();
        assert_eq!(sequences, (0..50).collect::<Vec<_>>());
        drop(wal);
        let (_, replayed) = Wal::open(dir.path()).expect("reopens");
        assert_eq!(replayed.len(), 50);
        assert!(replayed.windows(2).all(|w| w[0].0 + 1 == w[1].0));
        // Rows come back whole, with their schema.
        assert_eq!(replayed[0].1.batch.schema(), entry(0).batch.schema());
    }

    #[tokio::test]
    async fn a_barrier_waits_for_every_earlier_append() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (wal, _) = Wal::open(dir.path()).expect("opens");
        // Queue 20 appends directly, then a barrier behind them.
        let mut answers = Vec::new();
        for n in 0..20 {
            let (done, answer) = oneshot::channel();
            let payload = entry(n).encode().expect("encodes");
            wal.tx.send(Command::Append(payload, done)).expect("queued");
            answers.push(answer);
        }
        wal.barrier().await.expect("barrier");
        for mut answer in answers {
            let sequence = answer.try_recv().expect("answered before the barrier");
            assert!(sequence.is_ok(), "{sequence:?}");
        }
    }

    #[tokio::test]
    async fn a_torn_tail_is_cut_off_and_appending_goes_on() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (wal, _) = Wal::open(dir.path()).expect("opens");
        for n in 0..3 {
            wal.append(&entry(n)).await.expect("appends");
        }
        drop(wal);
        let (_, path) = segments(dir.path())
            .expect("lists")
            .pop()
            .expect("a segment");
        let len = std::fs::metadata(&path).expect("meta").len();
        // A crash halfway through writing the third record.
        OpenOptions::new()
            .write(true)
            .open(&path)
            .and_then(|f| f.set_len(len - 10))
            .expect("tears");
        let (wal, replayed) = Wal::open(dir.path()).expect("reopens");
        assert_eq!(
            ids(&replayed),
            vec![(0, "X01/PAS/0".into()), (1, "X01/PAS/1".into())]
        );
        assert_eq!(wal.append(&entry(9)).await.expect("appends"), 2);
        drop(wal);
        let (_, replayed) = Wal::open(dir.path()).expect("reopens");
        assert_eq!(ids(&replayed).last(), Some(&(2, "X01/PAS/9".into())));
    }

    #[tokio::test]
    async fn damage_before_the_end_stops_the_start() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (wal, _) = Wal::open(dir.path()).expect("opens");
        wal.append(&entry(0)).await.expect("appends");
        wal.append(&entry(1)).await.expect("appends");
        wal.rotate().await.expect("rotates");
        wal.append(&entry(2)).await.expect("appends");
        drop(wal);
        let (_, first) = segments(dir.path()).expect("lists").remove(0);
        let mut bytes = std::fs::read(&first).expect("reads");
        bytes[PREFIX + SEQUENCE + 3] ^= 0xff;
        std::fs::write(&first, bytes).expect("writes");
        let e = Wal::open(dir.path()).expect_err("refuses");
        assert!(matches!(e, WalError::Damaged { .. }), "{e}");
        assert!(e.to_string().contains("checksum"), "{e}");

        // In the last segment too, a damaged record with records after it is not a torn tail.
        let dir = tempfile::tempdir().expect("tempdir");
        let (wal, _) = Wal::open(dir.path()).expect("opens");
        wal.append(&entry(0)).await.expect("appends");
        wal.append(&entry(1)).await.expect("appends");
        drop(wal);
        let (_, only) = segments(dir.path()).expect("lists").remove(0);
        let mut bytes = std::fs::read(&only).expect("reads");
        bytes[PREFIX + SEQUENCE + 3] ^= 0xff;
        std::fs::write(&only, &bytes).expect("writes");
        let e = Wal::open(dir.path()).expect_err("refuses");
        assert!(e.to_string().contains("checksum"), "{e}");
        assert_eq!(
            std::fs::read(&only).expect("reads"),
            bytes,
            "nothing was cut"
        );
    }

    #[tokio::test]
    async fn truncating_drops_only_what_the_lake_has() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (wal, _) = Wal::open(dir.path()).expect("opens");
        wal.append(&entry(0)).await.expect("appends");
        wal.append(&entry(1)).await.expect("appends");
        let boundary = wal.rotate().await.expect("rotates");
        assert_eq!(boundary, 2);
        wal.append(&entry(2)).await.expect("appends");
        // Not yet flushed: both segments stay.
        wal.truncate(1).await.expect("truncates");
        drop(wal);
        let (wal, replayed) = Wal::open(dir.path()).expect("reopens");
        assert_eq!(replayed.len(), 3);
        wal.truncate(boundary).await.expect("truncates");
        drop(wal);
        let (_, replayed) = Wal::open(dir.path()).expect("reopens");
        assert_eq!(ids(&replayed), vec![(2, "X01/PAS/2".into())]);
    }
}
