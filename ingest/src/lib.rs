//! bright-ingest: operational feeds into the lake.
//!
//! Sources (HL7 v2 ADT over MLLP, JSON/CSV over HTTP, a file-drop folder) will parse,
//! validate, pseudonymise (`bright_engine::pseudonym`) and write through a durable sink into
//! the lake (`bright_engine::lake`). The crate depends on bright-engine only; the simulator's
//! feed files (`bright generate --out`) are its test input.
