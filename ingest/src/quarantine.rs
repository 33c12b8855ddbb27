//! Quarantine: messages bright refused, kept whole beside the reason.
//!
//! An interface engine that gets `AE` often logs it and moves on, so the refused message
//! would exist nowhere once its own retention runs out. Each refused message is written to
//! `<dir>/<feed>/<received>-<n>.hl7` with `<same>.reason.txt` (the sender, control id and
//! reason), synced before the answer goes out, for the owning team to correct and resend.
//! The messages hold patient identifiers in clear, so the folder is private to bright's user
//! (0700, files 0600) and is never part of the lake.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use bright_engine::schema::MAX_FREE_TEXT_CHARS;
use chrono::{DateTime, Utc};

/// A quarantine folder.
#[derive(Debug)]
pub struct Quarantine {
    dir: PathBuf,
    /// Tells apart messages refused in the same microsecond.
    next: AtomicU64,
}

/// One refused message, as kept.
#[derive(Debug, Clone, Copy)]
pub struct Refused<'a> {
    pub feed: &'a str,
    /// The sender and control id, or whatever names the message.
    pub reference: &'a str,
    pub reason: &'a str,
    pub received: DateTime<Utc>,
    pub message: &'a [u8],
}

fn private_dir(dir: &Path) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))?;
    }
    Ok(())
}

fn private_file(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let mut options = OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options.open(path)?;
    file.write_all(bytes)?;
    file.sync_all()
}

impl Quarantine {
    /// Opens (creating) the quarantine in `dir`.
    pub fn open(dir: impl Into<PathBuf>) -> std::io::Result<Quarantine> {
        let dir = dir.into();
        private_dir(&dir)?;
        Ok(Quarantine {
            dir,
            next: AtomicU64::new(0),
        })
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Keeps `refused`; returns the message's path once it and its reason are on disk.
    pub fn keep(&self, refused: &Refused<'_>) -> std::io::Result<PathBuf> {
        // Feed names are bright's own; anything else in a path could climb out of the folder.
        let feed: String = refused
            .feed
            .chars()
            .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
            .collect();
        let folder = self.dir.join(feed);
        private_dir(&folder)?;
        let n = self.next.fetch_add(1, Ordering::Relaxed);
        let stem = format!(
            "{}-{n}-{}",
            refused.received.format("%Y%m%dT%H%M%S%.6fZ"),
            std::process::id()
        );
        let message = folder.join(format!("{stem}.hl7"));
        let reason = folder.join(format!("{stem}.reason.txt"));
        private_file(&message, refused.message)?;
        let text = format!(
            "received: {}\nfeed: {}\nmessage: {}\nreason: {}\n",
            refused.received.to_rfc3339(),
            refused.feed,
            crate::sink::clip(refused.reference, MAX_FREE_TEXT_CHARS),
            crate::sink::clip(refused.reason, MAX_FREE_TEXT_CHARS),
        );
        private_file(&reason, text.as_bytes())?;
        // The new names are durable only once the folder is synced.
        File::open(&folder)?.sync_all()?;
        Ok(message)
    }

    /// The messages kept for `feed`, oldest first.
    pub fn messages(&self, feed: &str) -> std::io::Result<Vec<PathBuf>> {
        let folder = self.dir.join(feed);
        let mut found = Vec::new();
        match std::fs::read_dir(&folder) {
            Ok(entries) => {
                for entry in entries {
                    let path = entry?.path();
                    if path.extension().and_then(|e| e.to_str()) == Some("hl7") {
                        found.push(path);
                    }
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(e),
        }
        found.sort();
        Ok(found)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_refused_message_is_kept_whole_with_its_reason_and_private() {
        let dir = tempfile::tempdir().expect("tempdir");
        let quarantine = Quarantine::open(dir.path().join("q")).expect("opens");
        let message = b"MSH|^~\\&|PAS|X01|||20261127103000||ADT^A01|NOPID1|P|2.4\r";
        let refused = Refused {
            feed: "hl7_adt",
            reference: "PAS/NOPID1",
            reason: "PID-3: A01 needs the patient's identifier",
            received: Utc::now(),
            message,
        };
        let first = quarantine.keep(&refused).expect("kept");
        let second = quarantine.keep(&refused).expect("kept again");
        assert_ne!(first, second, "two refusals, two files");
        assert_eq!(std::fs::read(&first).expect("reads"), message);
        let reason =
            std::fs::read_to_string(first.with_extension("reason.txt")).expect("reason file");
        assert!(reason.contains("PAS/NOPID1"), "{reason}");
        assert!(reason.contains("PID-3"), "{reason}");
        assert_eq!(
            quarantine.messages("hl7_adt").expect("lists"),
            vec![first.clone(), second]
        );
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = |p: &Path| std::fs::metadata(p).expect("meta").permissions().mode() & 0o777;
            assert_eq!(mode(&first), 0o600);
            assert_eq!(mode(quarantine.dir()), 0o700);
        }
    }
}
