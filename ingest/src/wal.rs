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
//! each. The small batches a group's appends hold for one table go in one record: an MLLP
//! message is a one-row batch, and encoding each as an IPC stream of its own was a tenth of
//! ingest's CPU. A large batch (an HTTP request's) is encoded by its caller into a record of
//! its own, as every append was before.
//!
//! A segment opens with a header holding two commit marks (in separate sectors, written
//! alternately, each with its own checksum): after each group the newer mark says where the
//! committed records end, where that last group began and its last sequence number, and it is
//! synced with the group. So a reader knows how much should be there. The space ahead of the
//! records is written with zeros a few megabytes at a time, so that most syncs change no
//! metadata; a reader stops at the zeros after the committed end.
//!
//! A crash can only tear the group being written, which nobody was told was stored: replay
//! cuts it off, saying how many bytes and the last intact sequence number. Anything else —
//! records missing or unreadable before the last group (a file cut short by failing storage,
//! a flipped byte) — no crash can produce: opening refuses, naming the segment, the sequence
//! range and what can be read of the ids it would lose, until an operator opens it with
//! [`Wal::open_accepting_loss`], which keeps what is intact and reports the [`Loss`]. Segments
//! written before the marks existed are read as before (a torn record at the end is cut).

use std::collections::HashMap;
use std::fs::{File, OpenOptions};
use std::io::{Read, Write as _};
use std::path::{Path, PathBuf};
use std::sync::mpsc as std_mpsc;

use arrow_ipc::reader::StreamReader;
use arrow_ipc::writer::{
    DictionaryTracker, IpcDataGenerator, IpcWriteContext, IpcWriteOptions, StreamWriter,
    write_message,
};
use bright_engine::arrow::datatypes::DataType;
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
/// The first bytes of a segment with commit marks. Read as a record length it is above
/// [`MAX_RECORD`], so a segment from before the marks can never start with it.
const MAGIC: &[u8; 8] = b"BRWAL02\n";
/// Offsets of the two commit marks, each in its own 512-byte sector: a torn write of one
/// leaves the other whole.
const MARK_AT: [u64; 2] = [64, 576];
/// Bytes of a commit mark: counter, end, start of the last group, last sequence, checksum.
const MARK_LEN: usize = 8 * 4 + 4;
/// Where the first record of a segment with commit marks starts.
const HEADER: u64 = 1024;
/// A segment's space is written (with zeros) this much ahead at a time. A sync that only
/// overwrites written space leaves the file's size and extents alone, so it needs no journal
/// commit: on this project's 2-core machines a loop of small writes and `fdatasync`s ran at
/// 5.8-5.9 k a second appending and 9.6-10.4 k overwriting.
const PREPARE: u64 = 4 << 20;
/// Marks a segment whose loss an operator accepted; its damage is not reported again.
const LOSS_ACCEPTED: &str = "loss-accepted";

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
    /// Acknowledged records are missing or unreadable: no crash could do that.
    #[error(
        "{0}; refusing to start (start with --accept-wal-loss to keep what is intact and record the loss)"
    )]
    Lost(Box<Loss>),
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

/// Acknowledged records of one segment that are missing or unreadable.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Loss {
    pub segment: PathBuf,
    /// Where the damage starts.
    pub offset: u64,
    pub reason: String,
    /// The last sequence number read intact before the damage.
    pub last_intact: Option<u64>,
    /// The sequence numbers lost (first and last), when the commit mark says.
    pub lost: Option<(u64, u64)>,
    /// Bytes of the segment from the damage to its committed end.
    pub bytes: u64,
    /// Ids of lost rows whose bytes could still be decoded (the rest are unreadable).
    pub ids: Vec<String>,
    /// Records in the range after the damage that are intact, and kept.
    pub intact_after: usize,
}

impl std::fmt::Display for Loss {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "write-ahead log {} is damaged at byte {} ({}): ",
            self.segment.display(),
            self.offset,
            self.reason
        )?;
        match self.lost {
            Some((first, last)) => write!(
                f,
                "acknowledged records {first}..={last} ({} records, {} bytes) are missing or unreadable",
                last + 1 - first,
                self.bytes
            )?,
            None => write!(
                f,
                "{} bytes of acknowledged records are missing or unreadable",
                self.bytes
            )?,
        }
        match self.last_intact {
            Some(seq) => write!(f, " after intact record {seq}")?,
            None => write!(f, " from the segment's start")?,
        }
        if self.intact_after > 0 {
            write!(
                f,
                " ({} of them intact after the damage)",
                self.intact_after
            )?;
        }
        if self.ids.is_empty() {
            write!(f, "; their ids cannot be read")
        } else {
            let shown: Vec<&str> = self.ids.iter().take(20).map(String::as_str).collect();
            write!(f, "; ids that can be read: {}", shown.join(", "))?;
            if self.ids.len() > shown.len() {
                write!(f, " and {} more", self.ids.len() - shown.len())?;
            }
            Ok(())
        }
    }
}

/// A segment's commit mark: what its records should reach.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Mark {
    /// Higher is newer; the writer alternates slots by it.
    counter: u64,
    /// Where the committed records end.
    end: u64,
    /// Where the last group written began.
    group_start: u64,
    /// The last committed sequence number, if any record is committed.
    last: Option<u64>,
}

impl Mark {
    fn encode(&self) -> [u8; MARK_LEN] {
        let mut out = [0u8; MARK_LEN];
        out[0..8].copy_from_slice(&self.counter.to_le_bytes());
        out[8..16].copy_from_slice(&self.end.to_le_bytes());
        out[16..24].copy_from_slice(&self.group_start.to_le_bytes());
        out[24..32].copy_from_slice(&self.last.map_or(u64::MAX, |l| l).to_le_bytes());
        let crc = crc32fast::hash(&out[..32]);
        out[32..36].copy_from_slice(&crc.to_le_bytes());
        out
    }

    fn decode(bytes: &[u8]) -> Option<Mark> {
        let bytes = bytes.get(..MARK_LEN)?;
        let word = |i: usize| u64::from_le_bytes(bytes[i..i + 8].try_into().unwrap_or([0; 8]));
        let crc = u32::from_le_bytes(bytes[32..36].try_into().unwrap_or([0; 4]));
        if crc32fast::hash(&bytes[..32]) != crc {
            return None;
        }
        Some(Mark {
            counter: word(0),
            end: word(8),
            group_start: word(16),
            last: Some(word(24)).filter(|l| *l != u64::MAX),
        })
    }

    /// The newer of a segment's valid marks.
    fn read(bytes: &[u8]) -> Option<Mark> {
        MARK_AT
            .iter()
            .filter_map(|&at| bytes.get(at as usize..).and_then(Mark::decode))
            .max_by_key(|m| m.counter)
    }

    fn write(&self, file: &File) -> std::io::Result<()> {
        use std::os::unix::fs::FileExt;
        file.write_all_at(&self.encode(), MARK_AT[(self.counter % 2) as usize])
    }
}

/// Creates an empty segment with commit marks, synced with its folder.
fn create_segment(dir: &Path, first: u64) -> std::io::Result<(File, Mark)> {
    let path = segment_path(dir, first);
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(true)
        .open(&path)?;
    let mut header = vec![0u8; HEADER as usize];
    header[..MAGIC.len()].copy_from_slice(MAGIC);
    let mark = Mark {
        counter: 0,
        end: HEADER,
        group_start: HEADER,
        last: None,
    };
    let at = MARK_AT[0] as usize;
    header[at..at + MARK_LEN].copy_from_slice(&mark.encode());
    (&file).write_all(&header)?;
    file.sync_all()?;
    sync_dir(dir)?;
    Ok((file, mark))
}

/// Rows of one table, as logged.
#[derive(Debug, Clone)]
pub struct Entry {
    pub table: Table,
    pub batch: RecordBatch,
}

/// A table's IPC stream header (its schema message) and the end-of-stream marker, encoded
/// once: a record is the header, one record batch message and the marker. Encoding the
/// schema again for every message took about 40% of the log's encoding time for a one-row
/// ADT record (4% of ingest's CPU).
struct Framing {
    head: Vec<u8>,
    tail: Vec<u8>,
}

/// The framing of every table whose canonical schema has no dictionary column (a dictionary
/// would need its own messages, tracked from the schema on).
fn framing(table: Table) -> Option<&'static Framing> {
    static FRAMINGS: std::sync::OnceLock<HashMap<Table, Framing>> = std::sync::OnceLock::new();
    FRAMINGS
        .get_or_init(|| {
            Table::ALL
                .into_iter()
                .filter_map(|table| {
                    let schema = table.schema();
                    if schema
                        .fields()
                        .iter()
                        .any(|f| matches!(f.data_type(), DataType::Dictionary(..)))
                    {
                        return None;
                    }
                    let mut head = Vec::new();
                    let mut writer = StreamWriter::try_new(&mut head, &schema).ok()?;
                    let schema_bytes = writer.get_ref().len();
                    writer.finish().ok()?;
                    drop(writer);
                    let tail = head.split_off(schema_bytes);
                    Some((table, Framing { head, tail }))
                })
                .collect()
        })
        .get(&table)
}

impl Entry {
    /// The table's name, then its rows as one Arrow IPC stream.
    fn encode(&self) -> Result<Vec<u8>, WalError> {
        let name = self.table.name().as_bytes();
        let mut out = Vec::with_capacity(64 + self.batch.get_array_memory_size());
        out.push(u8::try_from(name.len()).expect("table names are short"));
        out.extend_from_slice(name);
        match framing(self.table).filter(|_| *self.batch.schema() == *self.table.schema()) {
            Some(framing) => {
                let options = IpcWriteOptions::default();
                let (dictionaries, rows) = IpcDataGenerator::default().encode(
                    &self.batch,
                    &mut DictionaryTracker::new(false),
                    &options,
                    &mut IpcWriteContext::default(),
                )?;
                out.extend_from_slice(&framing.head);
                for message in dictionaries.into_iter().chain([rows]) {
                    write_message(&mut out, message, &options)?;
                }
                out.extend_from_slice(&framing.tail);
            }
            None => {
                let mut writer = StreamWriter::try_new(&mut out, &self.batch.schema())?;
                writer.write(&self.batch)?;
                writer.finish()?;
            }
        }
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

/// Where the writer answers an append: the sequence number of the record holding its rows,
/// or why it failed.
type Answer = oneshot::Sender<Result<u64, String>>;

/// Batches with at least this many rows are encoded by the caller, side by side with other
/// callers, into a record of their own; smaller ones are left to the writer to put in one
/// record with the rest of their group. A thousand-event HTTP request gains nothing from
/// sharing a record, and encoded on the writer thread it would wait for the others'.
const GROUPED_ROWS: usize = 64;

/// What an append hands the writer.
enum Payload {
    /// A record's payload, encoded by the caller.
    Encoded(Vec<u8>),
    /// Rows to go in one record with the group's other rows of their table.
    Rows(Entry),
}

impl Payload {
    fn bytes(&self) -> usize {
        match self {
            Payload::Encoded(bytes) => bytes.len(),
            Payload::Rows(entry) => entry.batch.get_array_memory_size(),
        }
    }
}

enum Command {
    Append(Payload, Answer),
    /// Starts a new segment; answers the sequence number its first record will get.
    Rotate(Answer),
    /// Deletes segments holding only records below the sequence number.
    Truncate(u64, oneshot::Sender<Result<(), String>>),
    /// Answered once every append queued before it is durable.
    Barrier(oneshot::Sender<Result<(), String>>),
    /// Points the writer at `/dev/full`, so the next write fails as on a full disk.
    #[cfg(test)]
    BreakForTest,
    /// Holds the writer until the sender says go (or is dropped), so appends queue up.
    #[cfg(test)]
    HoldForTest(std_mpsc::Receiver<()>),
}

/// An opened log, the records it holds in order, and the losses accepted on opening.
pub type Opened = (Wal, Vec<(u64, Entry)>, Vec<Loss>);

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

/// The ids of a logged payload's rows (best effort, for naming what damage loses).
fn ids_of(payload: &[u8]) -> Vec<String> {
    use bright_engine::arrow::array::AsArray;
    let Ok(entry) = Entry::decode(payload) else {
        return Vec::new();
    };
    let column = crate::sink::key_column(entry.table)
        .and_then(|name| entry.batch.column_by_name(name).cloned());
    match column {
        Some(column) if column.data_type() == &bright_engine::arrow::datatypes::DataType::Utf8 => {
            column
                .as_string::<i32>()
                .iter()
                .flatten()
                .map(str::to_string)
                .collect()
        }
        _ => vec![format!(
            "{} rows of {}",
            entry.batch.num_rows(),
            entry.table
        )],
    }
}

/// What reading one segment found.
struct Segment {
    records: Vec<(u64, Entry)>,
    /// Acknowledged records missing or unreadable, if any.
    loss: Option<Loss>,
}

/// Reads the records of one segment. In the `last` segment a torn last write is cut off;
/// anything else missing is a [`Loss`].
fn read_segment(path: &Path, last: bool) -> Result<Segment, WalError> {
    let mut bytes = Vec::new();
    File::open(path)
        .and_then(|mut f| f.read_to_end(&mut bytes))
        .map_err(io(path))?;
    let marked = bytes.starts_with(MAGIC);
    let mark = if marked {
        Some(Mark::read(&bytes).ok_or_else(|| WalError::Damaged {
            path: path.to_path_buf(),
            offset: MARK_AT[0],
            reason: "neither commit mark is readable".into(),
        })?)
    } else {
        None
    };
    let start = if marked { HEADER as usize } else { 0 };
    let mut records = Vec::new();
    let mut offset = start;
    // The first problem: where, why, whether a crash mid-write could leave it (a record cut
    // short, or whole but for a checksum at the very end), and the bad record's end if its
    // length can be trusted.
    let mut problem: Option<(usize, String, bool, Option<usize>)> = None;
    // Where the records end: the file's end, or the prepared space after the committed end.
    let mut records_end = bytes.len();
    while offset < bytes.len() {
        let Some(prefix) = bytes.get(offset..offset + PREFIX) else {
            problem = Some((offset, "a record header is cut short".into(), true, None));
            break;
        };
        let len = u32::from_le_bytes(prefix[0..4].try_into().unwrap_or([0; 4])) as usize;
        if len == 0 && mark.is_some_and(|m| offset as u64 >= m.end) {
            records_end = offset;
            break;
        }
        let crc = u32::from_le_bytes(prefix[4..8].try_into().unwrap_or([0; 4]));
        let end = offset + PREFIX + len;
        if !(SEQUENCE..=MAX_RECORD).contains(&len) {
            problem = Some((offset, format!("a record claims {len} bytes"), false, None));
            break;
        }
        let Some(body) = bytes.get(offset + PREFIX..end) else {
            problem = Some((
                offset,
                format!("a record of {len} bytes is cut short"),
                true,
                None,
            ));
            break;
        };
        if crc32fast::hash(body) != crc {
            let at_end = end == bytes.len();
            problem = Some((
                offset,
                "a record's checksum does not match".into(),
                at_end,
                Some(end),
            ));
            break;
        }
        let (sequence, payload) = body.split_at(SEQUENCE);
        let sequence = u64::from_le_bytes(sequence.try_into().unwrap_or([0; 8]));
        match Entry::decode(payload) {
            Ok(entry) => records.push((sequence, entry)),
            Err(e) => {
                problem = Some((offset, e, false, Some(end)));
                break;
            }
        }
        offset = end;
    }
    let intact_end = problem.as_ref().map_or(records_end, |p| p.0) as u64;
    let last_intact = records.last().map(|(seq, _)| *seq);
    let torn = match (mark, &problem) {
        // Past the committed end nothing was acknowledged; inside the last group of the last
        // segment is the write a crash interrupted (its mark may have reached the disk before
        // its records did).
        (Some(mark), _) => intact_end >= mark.end || (last && intact_end >= mark.group_start),
        (None, None) => true,
        (None, Some((_, _, could_be_torn, _))) => last && *could_be_torn,
    };
    let committed_end = mark.map_or(bytes.len() as u64, |m| m.end.max(intact_end));
    if problem.is_none() && intact_end >= committed_end {
        return Ok(Segment {
            records,
            loss: None,
        });
    }
    if torn {
        // What the last write lost: bytes on disk past the intact records (not counting the
        // zeros of prepared space), or (when its mark reached the disk before its records)
        // bytes the mark counts that never arrived.
        let written = bytes.iter().rposition(|&b| b != 0).map_or(0, |i| i + 1) as u64;
        let lost = committed_end.max(written).saturating_sub(intact_end);
        tracing::warn!(
            path = %path.display(),
            offset = intact_end,
            bytes = lost,
            last_intact = ?last_intact,
            "Cutting a torn last write off the end of the write-ahead log (never acknowledged)."
        );
        let file = OpenOptions::new()
            .write(true)
            .open(path)
            .map_err(io(path))?;
        file.set_len(intact_end).map_err(io(path))?;
        if let Some(mark) = mark {
            // The mark now says what is there, so the cut is not taken for damage later.
            Mark {
                counter: mark.counter + 1,
                end: intact_end,
                group_start: intact_end,
                last: last_intact,
            }
            .write(&file)
            .map_err(io(path))?;
        }
        file.sync_all().map_err(io(path))?;
        return Ok(Segment {
            records,
            loss: None,
        });
    }
    // Damage: name what it loses. Records after a damaged one whose length is intact can
    // still be read; the ids of those that cannot be trusted are read where possible.
    let (damage_at, reason, _, resume) = problem.unwrap_or_else(|| {
        (
            intact_end as usize,
            format!(
                "the segment ends at byte {intact_end} but its records were committed to byte {committed_end}"
            ),
            true,
            None,
        )
    });
    let mut ids = Vec::new();
    let mut recovered = Vec::new();
    if let Some(mut offset) = resume {
        if let Some(body) = bytes.get(damage_at + PREFIX..offset) {
            ids.extend(ids_of(body.get(SEQUENCE..).unwrap_or_default()));
        }
        while let Some(prefix) = bytes.get(offset..offset + PREFIX) {
            let len = u32::from_le_bytes(prefix[0..4].try_into().unwrap_or([0; 4])) as usize;
            let crc = u32::from_le_bytes(prefix[4..8].try_into().unwrap_or([0; 4]));
            let Some(body) = bytes.get(offset + PREFIX..offset + PREFIX + len) else {
                break;
            };
            if !(SEQUENCE..=MAX_RECORD).contains(&len) {
                break;
            }
            let (sequence, payload) = body.split_at(SEQUENCE);
            match (crc32fast::hash(body) == crc).then(|| Entry::decode(payload)) {
                Some(Ok(entry)) => recovered.push((
                    u64::from_le_bytes(sequence.try_into().unwrap_or([0; 8])),
                    entry,
                )),
                _ => ids.extend(ids_of(payload)),
            }
            offset += PREFIX + len;
        }
    }
    let first_lost = last_intact.map_or_else(
        || {
            path.file_stem()
                .and_then(|s| s.to_str())
                .and_then(|s| s.parse::<u64>().ok())
        },
        |seq| Some(seq + 1),
    );
    let last_lost = mark
        .and_then(|m| m.last)
        .or_else(|| recovered.last().map(|(seq, _)| *seq));
    let loss = Loss {
        segment: path.to_path_buf(),
        offset: damage_at as u64,
        reason,
        last_intact,
        lost: first_lost.zip(last_lost).filter(|(a, b)| a <= b),
        bytes: committed_end.saturating_sub(damage_at as u64),
        ids,
        intact_after: recovered.len(),
    };
    records.extend(recovered);
    Ok(Segment {
        records,
        loss: Some(loss),
    })
}

/// The file beside a segment saying its loss was accepted.
fn loss_marker(segment: &Path) -> PathBuf {
    let mut name = segment.as_os_str().to_owned();
    name.push(".");
    name.push(LOSS_ACCEPTED);
    PathBuf::from(name)
}

fn sync_dir(dir: &Path) -> std::io::Result<()> {
    // A new or deleted file name is durable only once its folder is synced.
    File::open(dir)?.sync_all()
}

impl Wal {
    /// Opens (creating) the log in `dir`: returns it, and every record it holds in order.
    /// Acknowledged records missing or unreadable (not a torn last write) refuse the open
    /// with [`WalError::Lost`].
    pub fn open(dir: &Path) -> Result<(Wal, Vec<(u64, Entry)>), WalError> {
        let (wal, records, _) = Wal::open_with(dir, false)?;
        Ok((wal, records))
    }

    /// Opens the log like [`Wal::open`], but keeps what is intact of damaged segments and
    /// returns what was lost, for the operator's record. A segment's loss is reported once:
    /// a marker beside it says it was accepted.
    pub fn open_accepting_loss(dir: &Path) -> Result<Opened, WalError> {
        Wal::open_with(dir, true)
    }

    fn open_with(dir: &Path, accept_loss: bool) -> Result<Opened, WalError> {
        std::fs::create_dir_all(dir).map_err(io(dir))?;
        let found = segments(dir)?;
        let mut records = Vec::new();
        let mut losses = Vec::new();
        // Sequence numbers are never reused, lost ones included.
        let mut next = found.last().map_or(0, |(first, _)| *first);
        for (i, (_, path)) in found.iter().enumerate() {
            let segment = read_segment(path, i + 1 == found.len())?;
            records.extend(segment.records);
            let Some(loss) = segment.loss else {
                continue;
            };
            if let Some((_, last)) = loss.lost {
                next = next.max(last + 1);
            }
            let marker = loss_marker(path);
            if marker.exists() {
                tracing::warn!(path = %path.display(), "Write-ahead log damage accepted earlier; reading what is intact.");
                continue;
            }
            if !accept_loss {
                return Err(WalError::Lost(Box::new(loss)));
            }
            std::fs::write(&marker, format!("{loss}\n")).map_err(io(&marker))?;
            sync_dir(dir).map_err(io(dir))?;
            tracing::error!(loss = %loss, "Accepted the loss of acknowledged records from the write-ahead log.");
            losses.push(loss);
        }
        if let Some((seq, _)) = records.last() {
            next = next.max(seq + 1);
        }
        // Appends go to a new segment: the last one may have just had a torn tail cut off.
        // A segment already named `next` holds no record (its records would be >= next).
        let (file, mark) = create_segment(dir, next).map_err(io(dir))?;
        let (tx, rx) = std_mpsc::channel();
        let (stop, stopped) = tokio::sync::watch::channel(false);
        let writer = Writer {
            stop,
            dir: dir.to_path_buf(),
            file,
            mark,
            prepared: HEADER,
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
            losses,
        ))
    }

    /// Appends `entry`; once it is on disk, returns the sequence number of the record holding
    /// its rows (appends waiting together share one).
    pub async fn append(&self, entry: &Entry) -> Result<u64, WalError> {
        let payload = match entry.batch.num_rows() < GROUPED_ROWS {
            true => Payload::Rows(entry.clone()),
            false => Payload::Encoded(entry.encode()?),
        };
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

/// A group's appends as records, in the order they were appended: each payload encoded by
/// its caller as it is, and the rows of each table (and schema) in one payload, each record
/// with the answers of the appends it holds. Rows that cannot be encoded are answered with
/// the reason here and written nowhere.
fn records_of(group: Vec<(Payload, Answer)>) -> Vec<(Vec<u8>, Vec<Answer>)> {
    enum Part {
        Encoded(Vec<u8>, Answer),
        Rows(Table, Vec<RecordBatch>, Vec<Answer>),
    }
    let mut parts: Vec<Part> = Vec::new();
    for (payload, done) in group {
        let entry = match payload {
            Payload::Encoded(bytes) => {
                parts.push(Part::Encoded(bytes, done));
                continue;
            }
            Payload::Rows(entry) => entry,
        };
        let part = parts.iter_mut().find_map(|part| match part {
            Part::Rows(table, batches, answers)
                if *table == entry.table && batches[0].schema() == entry.batch.schema() =>
            {
                Some((batches, answers))
            }
            _ => None,
        });
        match part {
            Some((batches, answers)) => {
                batches.push(entry.batch);
                answers.push(done);
            }
            None => parts.push(Part::Rows(entry.table, vec![entry.batch], vec![done])),
        }
    }
    let mut records = Vec::with_capacity(parts.len());
    for part in parts {
        let (table, batches, answers) = match part {
            Part::Encoded(bytes, done) => {
                records.push((bytes, vec![done]));
                continue;
            }
            Part::Rows(table, batches, answers) => (table, batches, answers),
        };
        let encoded = match batches.as_slice() {
            [one] => Entry {
                table,
                batch: one.clone(),
            }
            .encode(),
            _ => bright_engine::arrow::compute::concat_batches(&batches[0].schema(), &batches)
                .map_err(WalError::from)
                .and_then(|batch| Entry { table, batch }.encode()),
        };
        match encoded {
            Ok(payload) => records.push((payload, answers)),
            Err(e) => {
                tracing::error!(error = %e, table = %table, "Could not encode rows for the write-ahead log.");
                for done in answers {
                    let _ = done.send(Err(e.to_string()));
                }
            }
        }
    }
    records
}

struct Writer {
    stop: tokio::sync::watch::Sender<bool>,
    dir: PathBuf,
    file: File,
    /// The open segment's latest commit mark: `end` is where the next group goes.
    mark: Mark,
    /// Where the open segment's written space ends (see [`PREPARE`]).
    prepared: u64,
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
                    let mut bytes = payload.bytes();
                    let mut group = vec![(payload, done)];
                    while bytes < MAX_GROUP_BYTES {
                        match rx.try_recv() {
                            Ok(Command::Append(p, d)) => {
                                bytes += p.bytes();
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
                #[cfg(test)]
                Command::HoldForTest(go) => {
                    let _ = go.recv();
                }
            }
        }
    }

    /// Writes and syncs a group, one record per table; false when that failed.
    fn commit(&mut self, group: Vec<(Payload, Answer)>) -> bool {
        let records = records_of(group);
        if records.is_empty() {
            return true;
        }
        let mut buffer = Vec::with_capacity(
            records
                .iter()
                .map(|(p, _)| PREFIX + SEQUENCE + p.len())
                .sum(),
        );
        let first = self.next;
        for (payload, _) in &records {
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
        // The group, then the mark that commits it, then one sync for both: a crash before
        // the sync may keep either, neither or both, and replay tells which.
        use std::os::unix::fs::FileExt;
        let mark = Mark {
            counter: self.mark.counter + 1,
            end: self.mark.end + buffer.len() as u64,
            group_start: self.mark.end,
            last: Some(self.next - 1),
        };
        let result = self
            .prepare(mark.end)
            .and_then(|()| self.file.write_all_at(&buffer, self.mark.end))
            .and_then(|()| mark.write(&self.file))
            .and_then(|()| self.file.sync_data());
        if result.is_ok() {
            self.mark = mark;
        }
        match result {
            Ok(()) => {
                for (i, (_, answers)) in records.into_iter().enumerate() {
                    for done in answers {
                        let _ = done.send(Ok(first + i as u64));
                    }
                }
                true
            }
            Err(e) => {
                // Nothing of the group is acknowledged. What reached the file is a torn or
                // unacknowledged tail; the sequence numbers are not reused.
                tracing::error!(error = %e, "Write-ahead log append failed.");
                for done in records.into_iter().flat_map(|(_, answers)| answers) {
                    let _ = done.send(Err(e.to_string()));
                }
                false
            }
        }
    }

    /// Writes zeros ahead of the records up to a [`PREPARE`] boundary past `end`, unless the
    /// space is written already; the next sync makes them durable with the group.
    fn prepare(&mut self, end: u64) -> std::io::Result<()> {
        use std::os::unix::fs::FileExt;
        if end <= self.prepared {
            return Ok(());
        }
        let target = end.div_ceil(PREPARE) * PREPARE;
        // The group itself covers up to `end`, which is past the space prepared so far.
        let mut at = end;
        let zeros = vec![0u8; (target - at).min(1 << 20) as usize];
        while at < target {
            let n = (target - at).min(zeros.len() as u64);
            self.file.write_all_at(&zeros[..n as usize], at)?;
            at += n;
        }
        self.prepared = target;
        Ok(())
    }

    fn rotate(&mut self) -> std::io::Result<u64> {
        if self.next == self.first {
            // The open segment is empty: it already starts at the boundary.
            return Ok(self.next);
        }
        self.file.sync_all()?;
        (self.file, self.mark) = create_segment(&self.dir, self.next)?;
        self.prepared = HEADER;
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
                let path = segment_path(&self.dir, *first);
                std::fs::remove_file(&path)?;
                match std::fs::remove_file(loss_marker(&path)) {
                    Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(e),
                    _ => {}
                }
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
        entry_with_id(&format!("X01/PAS/{n}"))
    }

    fn entry_with_id(id: &str) -> Entry {
        let mut b = BatchBuilder::new(Table::AdtEvents);
        b.row()
            .text(id)
            .text("A01")
            .timestamp(0)
            .timestamp(0)
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

    /// An entry as a whole Arrow IPC stream from arrow's own writer.
    fn streamed(entry: &Entry) -> Vec<u8> {
        let mut out = vec![u8::try_from(entry.table.name().len()).expect("short")];
        out.extend_from_slice(entry.table.name().as_bytes());
        let mut writer = StreamWriter::try_new(&mut out, &entry.batch.schema()).expect("writer");
        writer.write(&entry.batch).expect("writes");
        writer.finish().expect("finishes");
        drop(writer);
        out
    }

    #[test]
    fn a_record_is_the_stream_arrow_writes_for_its_rows() {
        // The header and end marker are encoded once per table; the bytes must be those of
        // a whole stream, so replay (and any older bright) reads them as before.
        for table in Table::ALL {
            assert!(framing(table).is_some(), "{table:?} has its framing");
            let entry = Entry {
                table,
                batch: RecordBatch::new_empty(table.schema()),
            };
            assert_eq!(entry.encode().expect("encodes"), streamed(&entry));
        }
        let entry = entry(7);
        let encoded = entry.encode().expect("encodes");
        assert_eq!(encoded, streamed(&entry));
        assert_eq!(Entry::decode(&encoded).expect("decodes").batch, entry.batch);
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
        drop(wal);
        let (_, replayed) = Wal::open(dir.path()).expect("reopens");
        // Appends waiting together share a record: as many records as sequence numbers
        // answered, numbered without a gap, each append's rows in the record it was told.
        sequences.sort();
        sequences.dedup();
        assert_eq!(
            replayed.iter().map(|(s, _)| *s).collect::<Vec<_>>(),
            sequences
        );
        assert!(replayed.windows(2).all(|w| w[0].0 + 1 == w[1].0));
        let mut ids = all_ids(&replayed);
        ids.sort();
        let mut sent: Vec<String> = (0..50).map(|n| format!("X01/PAS/{n}")).collect();
        sent.sort();
        assert_eq!(ids, sent, "every row once");
        // Rows come back whole, with their schema.
        assert_eq!(replayed[0].1.batch.schema(), entry(0).batch.schema());
    }

    /// Every row's id (the first column) of every record, in order.
    fn all_ids(records: &[(u64, Entry)]) -> Vec<String> {
        use bright_engine::arrow::util::display::array_value_to_string;
        records
            .iter()
            .flat_map(|(_, e)| {
                (0..e.batch.num_rows())
                    .map(|row| array_value_to_string(e.batch.column(0), row).expect("text"))
            })
            .collect()
    }

    #[tokio::test]
    async fn a_group_writes_one_record_per_table_with_its_rows_in_order() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (wal, _) = Wal::open(dir.path()).expect("opens");
        // The writer held while 30 ADT appends and one of another table queue behind it.
        let (go, hold) = std_mpsc::channel();
        wal.tx.send(Command::HoldForTest(hold)).expect("held");
        let mut answers = Vec::new();
        for n in 0..30 {
            if n == 10 {
                let other = Entry {
                    table: Table::EdAttendances,
                    batch: RecordBatch::new_empty(Table::EdAttendances.schema()),
                };
                let (done, answer) = oneshot::channel();
                wal.tx
                    .send(Command::Append(Payload::Rows(other), done))
                    .expect("queued");
                answers.push(answer);
            }
            let (done, answer) = oneshot::channel();
            wal.tx
                .send(Command::Append(Payload::Rows(entry(n)), done))
                .expect("queued");
            answers.push(answer);
        }
        // A batch of many rows, encoded by its caller, stays a record of its own.
        let many: Vec<RecordBatch> = (100..100 + GROUPED_ROWS as i64)
            .map(|n| entry(n).batch)
            .collect();
        let many = Entry {
            table: Table::AdtEvents,
            batch: bright_engine::arrow::compute::concat_batches(&many[0].schema(), &many)
                .expect("concatenates"),
        };
        let (done, answer) = oneshot::channel();
        let encoded = Payload::Encoded(many.encode().expect("encodes"));
        wal.tx.send(Command::Append(encoded, done)).expect("queued");
        answers.push(answer);
        go.send(()).expect("released");
        let mut told = Vec::new();
        for answer in answers {
            told.push(answer.await.expect("answered").expect("stored"));
        }
        // The ADT rows are the first record (their table came first), the other table's
        // the second, the large batch the third.
        let mut expected = vec![0; 32];
        expected[10] = 1;
        expected[31] = 2;
        assert_eq!(told, expected);
        drop(wal);
        let (wal, replayed) = Wal::open(dir.path()).expect("reopens");
        assert_eq!(replayed.len(), 3);
        assert_eq!(replayed[2].1.batch, many.batch);
        assert_eq!(replayed[0].1.table, Table::AdtEvents);
        assert_eq!(
            all_ids(&replayed[..1]),
            (0..30).map(|n| format!("X01/PAS/{n}")).collect::<Vec<_>>()
        );
        assert_eq!(replayed[1].1.table, Table::EdAttendances);
        // Numbering goes on after the group's records.
        assert_eq!(wal.append(&entry(99)).await.expect("appends"), 3);
    }

    #[tokio::test]
    async fn a_barrier_waits_for_every_earlier_append() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (wal, _) = Wal::open(dir.path()).expect("opens");
        // Queue 20 appends directly, then a barrier behind them.
        let mut answers = Vec::new();
        for n in 0..20 {
            let (done, answer) = oneshot::channel();
            wal.tx
                .send(Command::Append(Payload::Rows(entry(n)), done))
                .expect("queued");
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
        let len = committed_end(&path);
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
        let first_record = HEADER as usize + PREFIX + SEQUENCE + 3;
        let dir = tempfile::tempdir().expect("tempdir");
        let (wal, _) = Wal::open(dir.path()).expect("opens");
        wal.append(&entry(0)).await.expect("appends");
        wal.append(&entry(1)).await.expect("appends");
        wal.rotate().await.expect("rotates");
        wal.append(&entry(2)).await.expect("appends");
        drop(wal);
        let (_, first) = segments(dir.path()).expect("lists").remove(0);
        let mut bytes = std::fs::read(&first).expect("reads");
        bytes[first_record] ^= 0xff;
        std::fs::write(&first, bytes).expect("writes");
        let e = Wal::open(dir.path()).expect_err("refuses");
        assert!(matches!(e, WalError::Lost(_)), "{e}");
        assert!(e.to_string().contains("checksum"), "{e}");

        // In the last segment too, a damaged record with records after it is not a torn tail.
        let dir = tempfile::tempdir().expect("tempdir");
        let (wal, _) = Wal::open(dir.path()).expect("opens");
        wal.append(&entry(0)).await.expect("appends");
        wal.append(&entry(1)).await.expect("appends");
        drop(wal);
        let (_, only) = segments(dir.path()).expect("lists").remove(0);
        let mut bytes = std::fs::read(&only).expect("reads");
        bytes[first_record] ^= 0xff;
        std::fs::write(&only, &bytes).expect("writes");
        let e = Wal::open(dir.path()).expect_err("refuses");
        assert!(e.to_string().contains("checksum"), "{e}");
        let WalError::Lost(loss) = &e else {
            panic!("{e}")
        };
        assert_eq!((loss.lost, loss.intact_after), (Some((0, 1)), 1), "{loss}");
        assert_eq!(
            std::fs::read(&only).expect("reads"),
            bytes,
            "nothing was cut"
        );
        // Accepted, the record after the damaged one is kept.
        let (_, records, _) = Wal::open_accepting_loss(dir.path()).expect("accepts");
        assert_eq!(ids(&records), vec![(1, "X01/PAS/1".to_string())]);
    }

    /// A log of `n` records, each acknowledged on its own (one group each), in one segment.
    async fn one_record_per_write(n: i64) -> (tempfile::TempDir, PathBuf) {
        let dir = tempfile::tempdir().expect("tempdir");
        let (wal, _) = Wal::open(dir.path()).expect("opens");
        for i in 0..n {
            wal.append(&entry(i)).await.expect("appends");
        }
        drop(wal);
        let (_, path) = segments(dir.path())
            .expect("lists")
            .pop()
            .expect("a segment");
        (dir, path)
    }

    /// Where a segment's committed records end, by its commit mark (the file runs on into
    /// prepared space).
    fn committed_end(path: &Path) -> u64 {
        Mark::read(&std::fs::read(path).expect("reads"))
            .expect("a mark")
            .end
    }

    #[tokio::test]
    async fn the_space_ahead_of_the_records_is_prepared_and_read_as_none() {
        let (dir, path) = one_record_per_write(3).await;
        // Written ahead with zeros, so a sync overwrites space the file already has.
        assert_eq!(std::fs::metadata(&path).expect("meta").len(), PREPARE);
        assert!(committed_end(&path) < PREPARE);
        let (wal, records) = Wal::open(dir.path()).expect("opens");
        assert_eq!(ids(&records).len(), 3);
        // Not taken for a torn write: nothing was cut.
        assert_eq!(std::fs::metadata(&path).expect("meta").len(), PREPARE);
        // A group that passes the prepared space prepares the next stretch past it.
        let long = "Y".repeat(5 << 20);
        wal.append(&entry_with_id(&long)).await.expect("appends");
        wal.append(&entry(4)).await.expect("appends");
        drop(wal);
        // They went to the segment the reopening started.
        let (_, newest) = segments(dir.path())
            .expect("lists")
            .pop()
            .expect("a segment");
        assert_ne!(newest, path);
        assert_eq!(std::fs::metadata(&newest).expect("meta").len(), 2 * PREPARE);
        let (_, records) = Wal::open(dir.path()).expect("opens");
        let ids = ids(&records);
        assert_eq!(ids.len(), 5);
        assert_eq!(ids[3].1.len(), long.len());
        assert_eq!(ids[4], (4, "X01/PAS/4".to_string()));
    }

    fn cut_to(path: &Path, len: u64) {
        OpenOptions::new()
            .write(true)
            .open(path)
            .and_then(|f| f.set_len(len))
            .expect("cuts");
    }

    // Regression: a segment cut to half its length started with one warning about a torn
    // record, and 30 acknowledged records were gone without a count or an id.
    #[tokio::test]
    async fn a_segment_cut_short_refuses_the_start_until_the_loss_is_accepted() {
        let (dir, path) = one_record_per_write(60).await;
        let len = committed_end(&path);
        cut_to(&path, HEADER + (len - HEADER) / 2);
        let cut = std::fs::read(&path).expect("reads");
        let e = Wal::open(dir.path()).expect_err("refuses");
        let WalError::Lost(loss) = &e else {
            panic!("{e}")
        };
        let (first, last) = loss.lost.expect("the range is known");
        assert_eq!(last, 59, "{loss}");
        assert_eq!(loss.last_intact, Some(first - 1), "{loss}");
        assert!((25..=31).contains(&first), "{loss}");
        let message = e.to_string();
        assert!(message.contains(&format!("{first}..=59")), "{message}");
        assert!(message.contains("--accept-wal-loss"), "{message}");
        assert_eq!(
            std::fs::read(&path).expect("reads"),
            cut,
            "refusing cut nothing"
        );

        let (wal, records, losses) = Wal::open_accepting_loss(dir.path()).expect("accepts");
        assert_eq!(losses, vec![(**loss).clone()]);
        assert_eq!(records.len() as u64, first);
        // Sequence numbers go on after the lost ones, never reused.
        assert_eq!(wal.append(&entry(100)).await.expect("appends"), 60);
        drop(wal);
        // Accepted once: the next start reads what is intact without asking again.
        let (_, records) = Wal::open(dir.path()).expect("opens after acceptance");
        assert_eq!(records.len() as u64, first + 1);
    }

    #[tokio::test]
    async fn only_the_last_write_counts_as_torn() {
        // The last record missing whole (its mark reached the disk, its bytes did not): a
        // crash in the last write, nothing acknowledged lost.
        let (dir, path) = one_record_per_write(3).await;
        let len = committed_end(&path);
        let one = (len - HEADER) / 3;
        cut_to(&path, len - one);
        let (_, records) = Wal::open(dir.path()).expect("a torn last write is cut");
        assert_eq!(records.len(), 2);

        // Two writes missing: no crash does that.
        let (dir, path) = one_record_per_write(3).await;
        cut_to(&path, len - 2 * one);
        let e = Wal::open(dir.path()).expect_err("refuses");
        let WalError::Lost(loss) = &e else {
            panic!("{e}")
        };
        assert_eq!(loss.lost, Some((1, 2)), "{loss}");
        assert_eq!(loss.last_intact, Some(0), "{loss}");
    }

    #[tokio::test]
    async fn a_segment_from_before_commit_marks_is_read() {
        let (dir, path) = one_record_per_write(3).await;
        let bytes = std::fs::read(&path).expect("reads");
        // The same records without the header: the format of earlier versions.
        let end = committed_end(&path) as usize;
        std::fs::write(&path, &bytes[HEADER as usize..end]).expect("writes");
        let (wal, records) = Wal::open(dir.path()).expect("opens");
        assert_eq!(ids(&records).len(), 3);
        assert_eq!(wal.append(&entry(3)).await.expect("appends"), 3);
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
