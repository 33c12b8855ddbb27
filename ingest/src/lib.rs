//! bright-ingest: operational feeds into the lake.
//!
//! Sources (HL7 v2 ADT over MLLP, JSON/CSV over HTTP, a file-drop folder) parse, validate,
//! pseudonymise (`bright_engine::pseudonym`) and write through a durable sink into the lake
//! (`bright_engine::lake`). The crate depends on bright-engine only; the simulator's feed
//! files (`bright generate --out`) are its test input.
//!
//! Built so far: [`hl7`], ADT messages to `adt_events` rows and their acknowledgements;
//! [`wal`], the write-ahead log acknowledged rows are durable in; [`sink`], deduplication,
//! the log, the query layer's buffer and flushes to the lake; [`mllp`], the ADT listener;
//! [`quarantine`], refused HL7 messages kept whole with their reasons;
//! [`transforms`], records of the other feeds to rows (and the bounds every value must
//! keep: the time window, money's precision, text lengths); [`formats`], records out of NDJSON,
//! JSON and CSV; [`http`], request bodies of those feeds
//! (served by the web service through `bright_engine::ingest_api`); [`file_drop`], extract
//! files left in landing folders; [`health`], what each feed has delivered and whether it
//! has gone quiet.

pub mod file_drop;
pub mod formats;
pub mod health;
pub mod hl7;
pub mod http;
pub mod mllp;
pub mod quarantine;
pub mod sink;
pub mod transforms;
pub mod wal;
