//! The file drop: extract files left in `landing/<feed>/` (CSV, NDJSON, a JSON array, Parquet)
//! are loaded and moved to `landing/<feed>/processed/`, or to `landing/<feed>/rejected/` with a
//! `<file>.reason.txt` saying why (the first bad line and field) and a `dq_issues` row.
//!
//! A file is all or nothing, as a request is: a first pass checks every record without keeping
//! any, a second stores them in batches of [`CHUNK_ROWS`]. Both passes stream, so memory
//! depends on the batch size, not the file's. A crash in the second pass leaves the file in
//! `landing/`; it is loaded again at the next start and the rows already stored are recognised
//! as duplicates (see [`crate::sink`]), so it ends up stored once.
//!
//! CSV is read with the `csv` crate rather than polars: polars (0.51, tried on the same
//! files) reports no source line for a row, turns a blank line into a row of nulls, and can
//! only read non-UTF-8 text lossily (`café` in Windows-1252 becomes `caf�`), while rejections
//! must name the line and Windows-1252 extracts are common. Parquet extracts are read with
//! the parquet crate the lake already uses, so there is one Arrow implementation.
//!
//! A file is taken once its size and modification time are the same on two scans in a row, so
//! one still being copied in is left alone; names starting with `.` or ending in `.tmp` or
//! `.part` are never taken.

use std::collections::HashMap;
use std::io::BufReader;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime};

use bright_engine::arrow::array::{Array, AsArray, StringArray};
use bright_engine::arrow::compute::cast;
use bright_engine::arrow::datatypes::DataType;
use bright_engine::arrow::record_batch::RecordBatch;
use bright_engine::batch::BatchBuilder;
use bright_engine::ingest_api::{BodyFormat, IngestRefusal, Position};
use bright_engine::pseudonym::PseudoKey;
use chrono::Utc;
use chrono_tz::Tz;
use tokio::sync::watch;

use crate::formats::{ReadError, read_records};
use crate::health::{FeedHealth, owner};
use crate::sink::{Issue, Sink, SinkError};
use crate::transforms::{Feed, Fields, TimeWindow, Transform};

/// Rows per batch written to the sink (and per batch checked in the first pass).
pub const CHUNK_ROWS: usize = 50_000;

/// How a file is written, from its extension.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileFormat {
    Csv,
    Ndjson,
    /// A JSON array (read whole: large extracts should be CSV, NDJSON or Parquet).
    Json,
    Parquet,
}

impl FileFormat {
    /// The text format a request body in it would have; `None` for Parquet.
    fn text(self) -> Option<BodyFormat> {
        match self {
            FileFormat::Csv => Some(BodyFormat::Csv),
            FileFormat::Ndjson => Some(BodyFormat::Ndjson),
            FileFormat::Json => Some(BodyFormat::Json),
            FileFormat::Parquet => None,
        }
    }

    pub fn of(path: &Path) -> Option<FileFormat> {
        match path.extension()?.to_str()?.to_ascii_lowercase().as_str() {
            "csv" => Some(FileFormat::Csv),
            "ndjson" | "jsonl" => Some(FileFormat::Ndjson),
            "json" => Some(FileFormat::Json),
            "parquet" => Some(FileFormat::Parquet),
            _ => None,
        }
    }
}

/// Why a file was not loaded.
#[derive(Debug, thiserror::Error)]
pub enum FileError {
    /// The file's content: it is rejected.
    #[error(transparent)]
    Refused(#[from] IngestRefusal),
    #[error("not a Parquet file ({0})")]
    Parquet(#[from] parquet::errors::ParquetError),
    #[error("{path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
    /// Storing failed: the file stays in the landing folder and is tried again.
    #[error(transparent)]
    Sink(Box<SinkError>),
}

impl From<SinkError> for FileError {
    fn from(e: SinkError) -> Self {
        // Boxed: the sink's errors are large, and every record's result carries this type.
        FileError::Sink(Box::new(e))
    }
}

impl FileError {
    /// Whether the file itself is at fault (rejected), rather than bright (retried).
    pub fn is_the_files(&self) -> bool {
        matches!(
            self,
            FileError::Refused(IngestRefusal::BadRecord { .. }) | FileError::Parquet(_)
        )
    }
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> FileError + '_ {
    move |source| FileError::Io {
        path: path.display().to_string(),
        source,
    }
}

/// One row of a batch read from Parquet, every column cast to text.
struct ArrowRow<'a> {
    columns: &'a HashMap<String, StringArray>,
    row: usize,
}

impl Fields for ArrowRow<'_> {
    fn get(&self, name: &str) -> Result<Option<std::borrow::Cow<'_, str>>, String> {
        Ok(self.columns.get(name).and_then(|c| {
            (!c.is_null(self.row))
                .then(|| c.value(self.row).trim())
                .filter(|t| !t.is_empty())
                .map(std::borrow::Cow::Borrowed)
        }))
    }
}

/// Records to batches of [`CHUNK_ROWS`] rows, each handed to `emit` when full.
struct Chunker<'a> {
    transform: &'a Transform,
    builder: BatchBuilder,
    records: usize,
    emit: &'a mut dyn FnMut(RecordBatch) -> Result<(), FileError>,
    /// Why `emit` stopped the reading, if it did.
    stopped: Option<FileError>,
}

impl Chunker<'_> {
    fn add(&mut self, position: Position, record: &dyn Fields) -> Result<(), IngestRefusal> {
        self.records += 1;
        self.transform
            .append_at(position, record, &mut self.builder)?;
        if self.builder.len() >= CHUNK_ROWS {
            self.hand_on()?;
        }
        Ok(())
    }

    fn hand_on(&mut self) -> Result<(), IngestRefusal> {
        let batch = self
            .builder
            .finish()
            .map_err(|e| IngestRefusal::Failed(Box::new(e)))?;
        if let Err(e) = (self.emit)(batch) {
            self.stopped = Some(e);
            return Err(IngestRefusal::Failed("stopped".into()));
        }
        Ok(())
    }

    /// The reader's outcome, with the emitter's own error in place of the stop it caused.
    fn outcome(&mut self, read: Result<(), FileError>) -> Result<usize, FileError> {
        if let Some(e) = self.stopped.take() {
            return Err(e);
        }
        read?;
        if !self.builder.is_empty() {
            self.hand_on()?;
            if let Some(e) = self.stopped.take() {
                return Err(e);
            }
        }
        Ok(self.records)
    }
}

/// Reads every record of `path` through `transform`, handing `emit` a batch every
/// [`CHUNK_ROWS`] rows and at the end. Returns the number of records. Blocking: run it off the
/// async threads.
pub fn read_file(
    path: &Path,
    format: FileFormat,
    transform: &Transform,
    emit: &mut dyn FnMut(RecordBatch) -> Result<(), FileError>,
) -> Result<usize, FileError> {
    let file = std::fs::File::open(path).map_err(io(path))?;
    let mut chunker = Chunker {
        transform,
        builder: BatchBuilder::new(transform.feed.table()),
        records: 0,
        emit,
        stopped: None,
    };
    let read = match format.text() {
        Some(text) => read_records(text, BufReader::new(file), &mut |position, record| {
            chunker.add(position, record)
        })
        .map_err(|e| match e {
            ReadError::Refused(refusal) => FileError::Refused(refusal),
            ReadError::Io(source) => io(path)(source),
        }),
        None => read_parquet(file, &mut chunker),
    };
    chunker.outcome(read)
}

fn read_parquet(file: std::fs::File, chunker: &mut Chunker) -> Result<(), FileError> {
    let reader = parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(file)?
        .with_batch_size(8_192)
        .build()?;
    let mut number = 0;
    for batch in reader {
        let batch = batch.map_err(|e| FileError::Parquet(e.into()))?;
        // Every column as text, so Parquet values go through the same checks as CSV.
        let mut columns = HashMap::new();
        for (field, column) in batch.schema().fields().iter().zip(batch.columns()) {
            let text = cast(column, &DataType::Utf8).map_err(|e| FileError::Parquet(e.into()))?;
            columns.insert(
                field.name().to_ascii_lowercase(),
                text.as_string::<i32>().clone(),
            );
        }
        for row in 0..batch.num_rows() {
            number += 1;
            let record = ArrowRow {
                columns: &columns,
                row,
            };
            chunker.add(Position::Element(number), &record)?;
        }
    }
    Ok(())
}

/// What loading a file did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Loaded {
    pub records: usize,
    pub stored: usize,
    pub duplicates: usize,
}

/// Counters of the file drop.
#[derive(Debug, Default)]
pub struct FileDropStats {
    pub processed: AtomicU64,
    pub rejected: AtomicU64,
    pub stored: AtomicU64,
}

/// Loads extract files of the feeds through the sink.
#[derive(Debug, Clone)]
pub struct FileLoader {
    sink: Arc<Sink>,
    zone: Tz,
    key: PseudoKey,
    /// The trust of records that name none.
    org_code: Option<String>,
    window: TimeWindow,
    health: Option<Arc<FeedHealth>>,
}

impl FileLoader {
    pub fn new(sink: Arc<Sink>, zone: Tz, key: PseudoKey, org_code: Option<String>) -> Self {
        FileLoader {
            sink,
            zone,
            key,
            org_code,
            window: TimeWindow::default(),
            health: None,
        }
    }

    /// Takes only times within `window` (the default otherwise).
    pub fn with_window(mut self, window: TimeWindow) -> Self {
        self.window = window;
        self
    }

    /// Reports loaded and rejected files to `health`, which also names the feeds' owners.
    pub fn with_health(mut self, health: Arc<FeedHealth>) -> Self {
        self.health = Some(health);
        self
    }

    fn transform(&self, feed: Feed) -> Transform {
        Transform {
            feed,
            zone: self.zone,
            key: self.key.clone(),
            org_code: self.org_code.clone(),
            bounds: self.window.at(Utc::now()),
        }
    }

    /// Checks every record of the file, then stores them all; on a bad record nothing is
    /// stored and the error names it.
    pub async fn load(&self, feed: Feed, path: &Path) -> Result<Loaded, FileError> {
        let format = FileFormat::of(path).ok_or_else(|| {
            FileError::Refused(IngestRefusal::BadRecord {
                position: Position::Line(1),
                field: None,
                reason: "not a .csv, .ndjson, .jsonl, .json or .parquet file".into(),
            })
        })?;
        let transform = self.transform(feed);
        let file = path.to_path_buf();
        // First pass: check, keep nothing.
        let checked = {
            let (transform, file) = (transform.clone(), file.clone());
            tokio::task::spawn_blocking(move || {
                read_file(&file, format, &transform, &mut |_| Ok(()))
            })
            .await
            .map_err(|e| FileError::Refused(IngestRefusal::Failed(Box::new(e))))??
        };
        // Second pass: a reader thread hands batches over a bounded channel to the writer, so
        // at most a few batches are in memory, and a busy sink slows the reader down.
        let (tx, mut rx) = tokio::sync::mpsc::channel::<RecordBatch>(2);
        let reader = tokio::task::spawn_blocking(move || {
            read_file(&file, format, &transform, &mut |batch| {
                tx.blocking_send(batch).map_err(|_| {
                    FileError::Refused(IngestRefusal::Failed("the writer stopped".into()))
                })
            })
        });
        let mut loaded = Loaded {
            records: checked,
            ..Loaded::default()
        };
        let mut failed = None;
        while let Some(batch) = rx.recv().await {
            self.sink.room().await;
            match self.sink.write(feed.table(), batch).await {
                Ok(written) => {
                    loaded.stored += written.stored();
                    loaded.duplicates += written.duplicates();
                }
                Err(e) => {
                    failed = Some(e);
                    break;
                }
            }
        }
        drop(rx);
        let read = reader
            .await
            .map_err(|e| FileError::Refused(IngestRefusal::Failed(Box::new(e))));
        if let Some(e) = failed {
            return Err(e.into());
        }
        read??;
        Ok(loaded)
    }

    /// Records a rejected file in `dq_issues` for the feed's owners.
    async fn record_rejection(&self, feed: Feed, name: &str, reason: &str) {
        if let Some(health) = &self.health {
            health.refused(feed.name(), Utc::now());
        }
        self.sink
            .record_issue(Issue {
                feed: feed.name(),
                org_code: self.org_code.as_deref().unwrap_or("unknown"),
                record_ref: &format!("file {name}"),
                reason,
                owner: owner(self.health.as_deref(), feed.name()),
            })
            .await;
    }
}

/// The watched landing folders.
#[derive(Debug)]
pub struct FileDrop {
    root: PathBuf,
    loader: FileLoader,
    poll: Duration,
    stats: Arc<FileDropStats>,
    /// Size and modification time of each candidate at the last scan.
    seen: HashMap<PathBuf, (u64, SystemTime)>,
}

fn takeable(name: &str) -> bool {
    !name.starts_with('.') && !name.ends_with(".tmp") && !name.ends_with(".part")
}

/// Moves `file` into `folder` (created if need be), keeping its name unless one of that name
/// is there already.
fn move_into(file: &Path, folder: &Path) -> std::io::Result<PathBuf> {
    std::fs::create_dir_all(folder)?;
    let name = file
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let mut target = folder.join(&name);
    if target.exists() {
        let stamp = Utc::now().format("%Y%m%dT%H%M%S%.6f");
        target = folder.join(format!("{stamp}-{name}"));
    }
    std::fs::rename(file, &target)?;
    Ok(target)
}

impl FileDrop {
    /// Watches `root/<feed>/` for every feed, scanning every `poll`.
    pub fn new(root: PathBuf, loader: FileLoader, poll: Duration) -> std::io::Result<Self> {
        for feed in Feed::ALL {
            std::fs::create_dir_all(root.join(feed.name()))?;
        }
        Ok(FileDrop {
            root,
            loader,
            poll,
            stats: Arc::new(FileDropStats::default()),
            seen: HashMap::new(),
        })
    }

    pub fn stats(&self) -> Arc<FileDropStats> {
        self.stats.clone()
    }

    /// Scans until `shutdown` turns true; a file being loaded is finished first.
    pub async fn run(mut self, mut shutdown: watch::Receiver<bool>) {
        loop {
            self.scan().await;
            tokio::select! {
                () = tokio::time::sleep(self.poll) => {}
                _ = shutdown.wait_for(|stop| *stop) => return,
            }
        }
    }

    /// One pass over the landing folders: loads every file that has stopped changing.
    pub async fn scan(&mut self) {
        let mut stable = Vec::new();
        let mut current = HashMap::new();
        for feed in Feed::ALL {
            let folder = self.root.join(feed.name());
            let Ok(entries) = std::fs::read_dir(&folder) else {
                continue;
            };
            let mut files: Vec<(PathBuf, u64, SystemTime)> = entries
                .flatten()
                .filter(|e| e.file_type().is_ok_and(|t| t.is_file()))
                .filter(|e| takeable(&e.file_name().to_string_lossy()))
                .filter_map(|e| {
                    let meta = e.metadata().ok()?;
                    Some((e.path(), meta.len(), meta.modified().ok()?))
                })
                .collect();
            files.sort();
            for (path, size, modified) in files {
                if self.seen.get(&path) == Some(&(size, modified)) {
                    stable.push((feed, path.clone()));
                }
                current.insert(path, (size, modified));
            }
        }
        self.seen = current;
        for (feed, path) in stable {
            self.seen.remove(&path);
            self.take(feed, &path).await;
        }
    }

    async fn take(&self, feed: Feed, path: &Path) {
        let folder = self.root.join(feed.name());
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        match self.loader.load(feed, path).await {
            Ok(loaded) => {
                self.stats.processed.fetch_add(1, Ordering::Relaxed);
                if let Some(health) = &self.loader.health {
                    health.delivered(feed.name(), loaded.records as u64, Utc::now());
                }
                self.stats
                    .stored
                    .fetch_add(loaded.stored as u64, Ordering::Relaxed);
                tracing::info!(
                    feed = feed.name(),
                    file = %name,
                    records = loaded.records,
                    stored = loaded.stored,
                    duplicates = loaded.duplicates,
                    "Loaded a dropped file."
                );
                if let Err(e) = move_into(path, &folder.join("processed")) {
                    // Loaded but not moved: the next scan loads it again, and every row is
                    // then recognised as held, so nothing is doubled.
                    tracing::error!(file = %name, error = %e, "Could not move a loaded file.");
                }
            }
            Err(e) if e.is_the_files() => {
                self.stats.rejected.fetch_add(1, Ordering::Relaxed);
                let reason = e.to_string();
                tracing::warn!(feed = feed.name(), file = %name, %reason, "Rejected a dropped file.");
                self.loader.record_rejection(feed, &name, &reason).await;
                let moved = move_into(path, &folder.join("rejected")).and_then(|target| {
                    let mut note = target.into_os_string();
                    note.push(".reason.txt");
                    std::fs::write(note, format!("{reason}\n"))
                });
                if let Err(e) = moved {
                    tracing::error!(file = %name, error = %e, "Could not move a rejected file.");
                }
            }
            Err(e) => {
                // bright's fault, not the file's: leave it to be tried at a later scan.
                tracing::error!(feed = feed.name(), file = %name, error = %e, "Could not load a dropped file; will retry.");
            }
        }
    }
}
