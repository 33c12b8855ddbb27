//! The MLLP listener: HL7 v2 over TCP as patient administration systems send it.
//!
//! A frame is `0x0B message 0x1C 0x0D`. Each message is answered on the same connection, in
//! order: `AA` only once its row is durable and queryable (the messages of every connection
//! are stored together in groups), `AE`/`AR` with the reason when it cannot be taken (and
//! the reason recorded in `dq_issues`, without the message itself, which holds identifiers;
//! the message is kept whole in the [`crate::quarantine`] when one is set).
//! Messages that parse but look wrong (a time in the future, a discharge before the
//! admission, a ward the bed base does not know) are stored and flagged there too. Frames
//! above a size limit are refused and the connection closed, since the rest of the stream
//! cannot be trusted; an idle connection is closed after a timeout; senders outside the
//! allow-list are refused before a byte is read. While the sink is busy
//! (too much waiting for the lake), connections stop reading until a flush makes room. With a
//! certificate ([`tls_acceptor`]), every connection must start with a TLS handshake.

use std::collections::HashSet;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use bright_engine::arrow::array::AsArray;
use bright_engine::arrow::compute::cast;
use bright_engine::arrow::datatypes::DataType;
use bright_engine::batch::BatchBuilder;
use bright_engine::schema::Table;
use chrono::{DateTime, Utc};
use tokio::io::{AsyncBufRead, AsyncBufReadExt, AsyncRead, AsyncWrite, AsyncWriteExt, BufReader};
use tokio::net::TcpListener;
use tokio::sync::{mpsc, oneshot, watch};
use tokio_rustls::TlsAcceptor;
use tokio_rustls::rustls;
use tokio_rustls::rustls::pki_types::pem::PemObject;
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer};

use crate::health::FeedHealth;
use crate::hl7::{AckCode, AdtConfig, AdtEvent, Header, Hl7Error, ack, header, parse_adt};
use crate::quarantine::{Quarantine, Refused};
use crate::sink::{Issue, Sink};

const START: u8 = 0x0B;
const END: u8 = 0x1C;
const CR: u8 = 0x0D;

/// Most messages stored in one batch.
const MAX_GROUP: usize = 1024;

pub use bright_engine::ingest_api::ADT_OWNER;

/// Listener settings.
#[derive(Debug, Clone)]
pub struct MllpConfig {
    /// Largest message accepted, in bytes.
    pub max_frame: usize,
    /// A connection silent this long is closed.
    pub idle_timeout: Duration,
    /// Senders allowed to connect; empty means loopback only.
    pub allow: Vec<IpAddr>,
    /// The feed name rows are stored under (`adt_events.source`, `dq_issues.feed`).
    pub feed: String,
    /// Team told about rejected messages (`dq_issues.owner`).
    pub owner: String,
    /// When set, connections must open with a TLS handshake (MLLP over TLS).
    pub tls: Option<MllpTls>,
}

impl Default for MllpConfig {
    fn default() -> Self {
        MllpConfig {
            max_frame: 1 << 20,
            idle_timeout: Duration::from_secs(300),
            allow: Vec::new(),
            feed: crate::health::HL7_ADT.into(),
            owner: ADT_OWNER.into(),
            tls: None,
        }
    }
}

/// Counters of one listener.
#[derive(Debug, Default)]
pub struct MllpStats {
    pub accepted: AtomicU64,
    pub duplicates: AtomicU64,
    pub rejected: AtomicU64,
    /// Stored, but flagged to the owners as suspicious (see [`crate::hl7::AdtEvent::suspicious`]).
    pub flagged: AtomicU64,
    pub connections: AtomicU64,
    /// Times a connection stopped reading because the sink was busy (backpressure).
    pub paused: AtomicU64,
    /// Refused messages kept in the quarantine.
    pub quarantined: AtomicU64,
}

/// Why reading a frame stopped.
#[derive(Debug, PartialEq, Eq)]
enum Frame {
    Message(Vec<u8>),
    TooLarge,
    /// Bytes outside a frame that are not whitespace.
    Garbage,
    Closed,
}

async fn read_frame<R: AsyncBufRead + Unpin>(reader: &mut R, max: usize) -> std::io::Result<Frame> {
    // Between frames only whitespace (some senders add a newline) is tolerated.
    loop {
        let buf = reader.fill_buf().await?;
        let Some(&first) = buf.first() else {
            return Ok(Frame::Closed);
        };
        if first == START {
            reader.consume(1);
            break;
        }
        if !first.is_ascii_whitespace() {
            return Ok(Frame::Garbage);
        }
        reader.consume(1);
    }
    let mut message = Vec::new();
    loop {
        let buf = reader.fill_buf().await?;
        if buf.is_empty() {
            return Ok(Frame::Closed);
        }
        match buf.iter().position(|&b| b == END) {
            Some(at) => {
                message.extend_from_slice(&buf[..at]);
                reader.consume(at + 1);
                if message.len() > max {
                    return Ok(Frame::TooLarge);
                }
                // The CR after the end block; tolerate its absence.
                let next = reader.fill_buf().await?;
                if next.first() == Some(&CR) {
                    reader.consume(1);
                }
                return Ok(Frame::Message(message));
            }
            None => {
                let n = buf.len();
                message.extend_from_slice(buf);
                reader.consume(n);
                if message.len() > max {
                    return Ok(Frame::TooLarge);
                }
            }
        }
    }
}

/// Why TLS for the listener could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("{path}: no PEM {what} ({source})")]
    Pem {
        path: String,
        what: &'static str,
        source: rustls::pki_types::pem::Error,
    },
    #[error("TLS settings: {0}")]
    Rustls(#[from] rustls::Error),
}

/// The listener's TLS settings.
#[derive(Clone)]
pub struct MllpTls(pub TlsAcceptor);

impl std::fmt::Debug for MllpTls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("MllpTls(..)")
    }
}

/// A TLS acceptor from a PEM certificate chain and its PEM private key.
pub fn tls_acceptor(
    certificates: &std::path::Path,
    key: &std::path::Path,
) -> Result<MllpTls, TlsError> {
    fn pem<'a>(
        path: &'a std::path::Path,
        what: &'static str,
    ) -> impl FnOnce(rustls::pki_types::pem::Error) -> TlsError + 'a {
        move |source| TlsError::Pem {
            path: path.display().to_string(),
            what,
            source,
        }
    }
    let chain = CertificateDer::pem_file_iter(certificates)
        .map_err(pem(certificates, "certificate"))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(pem(certificates, "certificate"))?;
    let key = PrivateKeyDer::from_pem_file(key).map_err(pem(key, "private key"))?;
    // Both crypto back ends are built (for the object store); name one rather than rely on a
    // process-wide default.
    let config = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()?
    .with_no_client_auth()
    .with_single_cert(chain, key)?;
    Ok(MllpTls(TlsAcceptor::from(Arc::new(config))))
}

/// Frames one message for MLLP.
pub fn frame(message: &str) -> Vec<u8> {
    let mut out = Vec::with_capacity(message.len() + 3);
    out.push(START);
    out.extend_from_slice(message.as_bytes());
    out.push(END);
    out.push(CR);
    out
}

/// HL7 v2 from the UK is often ISO 8859-1 (MSH-18 `8859/1`); UTF-8 is taken as such.
pub fn decode(bytes: Vec<u8>) -> String {
    match String::from_utf8(bytes) {
        Ok(text) => text,
        Err(e) => e.into_bytes().iter().map(|&b| char::from(b)).collect(),
    }
}

/// The ADT listener.
#[derive(Debug, Clone)]
pub struct Listener {
    sink: Arc<Sink>,
    adt: AdtConfig,
    config: MllpConfig,
    stats: Arc<MllpStats>,
    /// Wards of the bed base, per organisation; `None` when the lake has no beds to check by.
    wards: Option<Arc<HashSet<(String, String)>>>,
    health: Option<Arc<FeedHealth>>,
    quarantine: Option<Arc<Quarantine>>,
    /// Where parsed messages wait to be stored together ([`store_groups`]); started by the
    /// first message (and again should it ever stop), shared by every connection.
    groups: Arc<Mutex<Option<mpsc::UnboundedSender<Waiting>>>>,
}

/// A parsed message waiting to be stored with those that arrived meanwhile; told whether its
/// row was new (false: already held), or why it could not be stored.
#[derive(Debug)]
struct Waiting {
    event: AdtEvent,
    stored: oneshot::Sender<Result<bool, String>>,
}

/// Stores the messages of every connection in groups: while one group goes to the log, the
/// next gathers. A message then costs a part of one batch, admission, log record and buffer
/// append instead of one of each, which it took when each message stored its own one-row
/// batch.
async fn store_groups(
    sink: Arc<Sink>,
    feed: String,
    mut waiting: mpsc::UnboundedReceiver<Waiting>,
) {
    let mut group = Vec::with_capacity(MAX_GROUP);
    while waiting.recv_many(&mut group, MAX_GROUP).await > 0 {
        let mut builder = BatchBuilder::with_rows(Table::AdtEvents, group.len());
        for message in &group {
            message.event.append_to(&mut builder, &feed);
        }
        let stored = match builder.finish() {
            Ok(batch) => sink.write(Table::AdtEvents, batch).await,
            Err(e) => Err(e.into()),
        };
        match stored {
            Ok(written) => {
                for (i, message) in group.drain(..).enumerate() {
                    let _ = message.stored.send(Ok(written.new_rows.value(i)));
                }
            }
            Err(e) => {
                let reason = e.to_string();
                for message in group.drain(..) {
                    let _ = message.stored.send(Err(reason.clone()));
                }
            }
        }
    }
}

impl Listener {
    pub fn new(sink: Arc<Sink>, adt: AdtConfig, config: MllpConfig) -> Self {
        Listener {
            sink,
            adt,
            config,
            stats: Arc::new(MllpStats::default()),
            wards: None,
            health: None,
            quarantine: None,
            groups: Arc::new(Mutex::new(None)),
        }
    }

    /// Keeps every refused message whole in `quarantine`, with its reason, before answering.
    pub fn with_quarantine(mut self, quarantine: Arc<Quarantine>) -> Self {
        self.quarantine = Some(quarantine);
        self
    }

    /// Reports messages taken and refused to `health`, whose owner for the feed (when set
    /// there) is told about refused messages.
    pub fn with_health(mut self, health: Arc<FeedHealth>) -> Self {
        self.config.owner = health.owner(&self.config.feed).to_string();
        self.health = Some(health);
        self
    }

    /// Flags events on wards the `beds` table does not know (when it has any rows).
    pub async fn check_wards(mut self) -> Result<Self, crate::sink::SinkError> {
        let output = self
            .sink
            .engine()
            .sql("SELECT DISTINCT org_code, ward FROM beds")
            .await?;
        let mut wards = HashSet::new();
        for batch in &output.batches {
            // The scan may give text as views or dictionaries: read it as plain strings.
            let text = |i: usize| cast(batch.column(i), &DataType::Utf8);
            let (orgs, names) = (text(0)?, text(1)?);
            let (orgs, names) = (orgs.as_string::<i32>(), names.as_string::<i32>());
            for (org, ward) in orgs.iter().zip(names.iter()) {
                if let (Some(org), Some(ward)) = (org, ward) {
                    wards.insert((org.to_string(), ward.to_string()));
                }
            }
        }
        self.wards = (!wards.is_empty()).then(|| Arc::new(wards));
        Ok(self)
    }

    pub fn stats(&self) -> Arc<MllpStats> {
        self.stats.clone()
    }

    fn allowed(&self, peer: &SocketAddr) -> bool {
        if self.config.allow.is_empty() {
            peer.ip().is_loopback()
        } else {
            self.config.allow.contains(&peer.ip())
        }
    }

    /// Accepts connections until `shutdown` turns true; connections in progress finish the
    /// message in hand and close.
    pub async fn run(self, listener: TcpListener, mut shutdown: watch::Receiver<bool>) {
        loop {
            let accepted = tokio::select! {
                accepted = listener.accept() => accepted,
                _ = shutdown.wait_for(|stop| *stop) => return,
            };
            let (stream, peer) = match accepted {
                Ok(pair) => pair,
                Err(e) => {
                    tracing::warn!(error = %e, "MLLP accept failed.");
                    continue;
                }
            };
            if !self.allowed(&peer) {
                tracing::warn!(%peer, "MLLP connection refused: sender not in the allow-list.");
                continue;
            }
            self.stats.connections.fetch_add(1, Ordering::Relaxed);
            let this = self.clone();
            let shutdown = shutdown.clone();
            tokio::spawn(async move {
                let ended = match this.config.tls.as_ref().map(|t| t.0.clone()) {
                    None => this.connection(stream, shutdown).await,
                    Some(acceptor) => {
                        // A sender that never completes the handshake is dropped like an
                        // idle one.
                        let handshake =
                            tokio::time::timeout(this.config.idle_timeout, acceptor.accept(stream))
                                .await;
                        match handshake {
                            Ok(Ok(tls)) => this.connection(tls, shutdown).await,
                            Ok(Err(e)) => Err(e),
                            Err(_) => Ok(()),
                        }
                    }
                };
                if let Err(e) = ended {
                    tracing::debug!(%peer, error = %e, "MLLP connection ended.");
                }
            });
        }
    }

    async fn connection<S>(
        &self,
        stream: S,
        mut shutdown: watch::Receiver<bool>,
    ) -> std::io::Result<()>
    where
        S: AsyncRead + AsyncWrite + Send + Unpin,
    {
        // One message at a time, read then answered: the reader's stream is written directly.
        let mut reader = BufReader::new(stream);
        loop {
            // While the lake is behind, read nothing: the sender keeps its unacknowledged
            // messages queued, and bright's memory stays bounded.
            if self.sink.busy() {
                self.stats.paused.fetch_add(1, Ordering::Relaxed);
                tokio::select! {
                    () = self.sink.room() => {}
                    _ = shutdown.wait_for(|stop| *stop) => return Ok(()),
                }
            }
            let next = tokio::select! {
                next = tokio::time::timeout(
                    self.config.idle_timeout,
                    read_frame(&mut reader, self.config.max_frame),
                ) => next,
                _ = shutdown.wait_for(|stop| *stop) => return Ok(()),
            };
            let reason = match next {
                Err(_idle) => return Ok(()),
                Ok(next) => match next? {
                    Frame::Message(bytes) => {
                        let (_, answer) = self.handle(&decode(bytes)).await;
                        reader.get_mut().write_all(&frame(&answer)).await?;
                        continue;
                    }
                    Frame::Closed => return Ok(()),
                    Frame::TooLarge => {
                        format!("message larger than {} bytes", self.config.max_frame)
                    }
                    Frame::Garbage => "bytes outside an MLLP frame (0x0B … 0x1C 0x0D)".into(),
                },
            };
            // The rest of the stream cannot be trusted to be framed: answer and close.
            let error = Hl7Error {
                ack: AckCode::Reject,
                field: None,
                code: 100,
                reason,
            };
            self.reject(&Header::default(), &error).await;
            let answer = ack(
                &Header::default(),
                AckCode::Reject,
                Some(&error),
                Utc::now(),
            );
            let write = reader.get_mut();
            write.write_all(&frame(&answer)).await?;
            write.shutdown().await?;
            return Ok(());
        }
    }

    /// Stores one message and returns its acknowledgement (code and text), exactly as for a message
    /// received over MLLP (`bright ingest` loads files through this too).
    pub async fn handle(&self, message: &str) -> (AckCode, String) {
        let now = Utc::now();
        match parse_adt(message, &self.adt) {
            Ok((header, event)) => {
                // Worked out now, recorded only if the row is new.
                let mut issues = event.suspicious(now.timestamp_micros());
                if let (Some(wards), Some(ward)) = (&self.wards, &event.ward)
                    && !wards.contains(&(event.org_code.clone(), ward.clone()))
                {
                    issues.push(format!("ward '{ward}' is not in the bed base"));
                }
                match self.store(event).await {
                    Ok(new) => {
                        let counter = if new {
                            &self.stats.accepted
                        } else {
                            &self.stats.duplicates
                        };
                        counter.fetch_add(1, Ordering::Relaxed);
                        if let Some(health) = &self.health {
                            health.delivered(&self.config.feed, 1, now);
                        }
                        if new {
                            for issue in issues {
                                self.stats.flagged.fetch_add(1, Ordering::Relaxed);
                                self.record_issue(&header, &issue).await;
                            }
                        }
                        (AckCode::Accept, ack(&header, AckCode::Accept, None, now))
                    }
                    Err(e) => {
                        // Not about the content: the sender should resend later (AR).
                        tracing::error!(error = %e, "Could not store an ADT message.");
                        let error = Hl7Error {
                            ack: AckCode::Reject,
                            field: None,
                            code: 207,
                            reason: "bright could not store the message; resend it".into(),
                        };
                        (
                            AckCode::Reject,
                            ack(&header, AckCode::Reject, Some(&error), now),
                        )
                    }
                }
            }
            Err(error) => {
                let header = header(message).unwrap_or_default();
                self.reject(&header, &error).await;
                self.keep(&header, &error, message, now).await;
                (error.ack, ack(&header, error.ack, Some(&error), now))
            }
        }
    }

    /// Stores a parsed message's row with the others waiting; true when it is new.
    async fn store(&self, event: AdtEvent) -> Result<bool, String> {
        let groups = {
            let mut held = self.groups.lock().unwrap_or_else(PoisonError::into_inner);
            match held.as_ref().filter(|send| !send.is_closed()) {
                Some(send) => send.clone(),
                // Not started, or stopped by a panic: the messages it held are answered AR
                // (their answers were dropped) and later ones go to a new one.
                None => {
                    let (send, receive) = mpsc::unbounded_channel();
                    tokio::spawn(store_groups(
                        self.sink.clone(),
                        self.config.feed.clone(),
                        receive,
                    ));
                    *held = Some(send.clone());
                    send
                }
            }
        };
        let (stored, answer) = oneshot::channel();
        groups
            .send(Waiting { event, stored })
            .map_err(|_| "the store has stopped".to_string())?;
        answer
            .await
            .map_err(|_| "the store stopped before answering".to_string())?
    }

    /// Keeps a refused message in the quarantine, if there is one. A failure is logged and
    /// the answer still goes out: the sender learns the message was refused either way.
    async fn keep(&self, header: &Header, error: &Hl7Error, message: &str, now: DateTime<Utc>) {
        let Some(quarantine) = self.quarantine.clone() else {
            return;
        };
        let (feed, reference, reason, message) = (
            self.config.feed.clone(),
            format!("{}/{}", header.sending_application, header.control_id),
            error.to_string(),
            message.to_string(),
        );
        let kept = tokio::task::spawn_blocking(move || {
            quarantine.keep(&Refused {
                feed: &feed,
                reference: &reference,
                reason: &reason,
                received: now,
                message: message.as_bytes(),
            })
        })
        .await
        .map_err(std::io::Error::other)
        .and_then(|kept| kept);
        match kept {
            Ok(_) => {
                self.stats.quarantined.fetch_add(1, Ordering::Relaxed);
            }
            Err(e) => {
                tracing::error!(error = %e, "Could not keep a refused ADT message in quarantine.");
            }
        }
    }

    /// Counts a refused message and records why in `dq_issues` for its owners.
    async fn reject(&self, header: &Header, error: &Hl7Error) {
        self.stats.rejected.fetch_add(1, Ordering::Relaxed);
        if let Some(health) = &self.health {
            health.refused(&self.config.feed, Utc::now());
        }
        self.record_issue(header, &error.to_string()).await;
    }

    /// A `dq_issues` row: the message's sender and control id, the reason, the owning team.
    async fn record_issue(&self, header: &Header, reason: &str) {
        let org = if header.sending_facility.is_empty() {
            "unknown"
        } else {
            &header.sending_facility
        };
        self.sink
            .record_issue(Issue {
                feed: &self.config.feed,
                org_code: org,
                record_ref: &format!("{}/{}", header.sending_application, header.control_id),
                reason,
                owner: &self.config.owner,
            })
            .await;
    }
}
