//! The verifiable audit log, server side. The format, hashing, proofs and the offline
//! verifier live in the `ward-audit` crate (`audit/`), which auditors build alone.
//!
//! - [`record`]: the catalogue (`audit/events.toml`), the typed [`AuditEvent`] builder and
//!   the sink traits: a leaf, so the layers below the log (the keyring) can make records.
//! - [`AuditLog`]: how actions record. An action that writes stores its records in the
//!   outbox *in its own transaction* ([`AuditLog::audited`] → the store's `audit` argument);
//!   an action without a write of its own (a read, a connection, a denial) hands its record
//!   to the appender and waits until it is durable ([`AuditLog::record`]). Either way no
//!   action completes without its record.
//! - [`appender`]: the one writer: drains the outbox and the direct records in batches
//!   (group commit), pseudonymises, chains, extends the Merkle tree, signs a checkpoint per
//!   batch, publishes checkpoints outside the database ([`publish`]).
//! - [`tree`]: proofs and bundles from the stored tree; [`view`]: what auditors read.

pub mod appender;
pub mod publish;
pub mod record;
pub mod tree;
pub mod view;

use std::cell::RefCell;
use std::collections::{BTreeMap, HashSet};
use std::sync::{Arc, LazyLock, Mutex};

use anyhow::Context;
use tokio::sync::{Notify, mpsc, oneshot, watch};

pub use record::{AuditEvent, AuditSink, DurableSink, EventType, MemorySink, ObjectRef, Outcome};

use crate::crypto::fields::FieldCrypto;
use crate::crypto::frame::{self, Field};
use crate::store::{Fault, OutboxRow};

/// Collects records and stores them in the outbox on [`OutboxSink::flush`]: for the
/// command-line tools, which run beside (or without) a server; the server's appender chains
/// them.
pub struct OutboxSink {
    store: crate::store::Store,
    events: Mutex<Vec<AuditEvent>>,
}

impl OutboxSink {
    pub fn new(store: crate::store::Store) -> Self {
        Self {
            store,
            events: Mutex::new(Vec::new()),
        }
    }

    pub async fn flush(&self) -> anyhow::Result<()> {
        let events = std::mem::take(&mut *self.events.lock().unwrap_or_else(|e| e.into_inner()));
        let rows: Vec<OutboxRow> = events
            .into_iter()
            .map(|e| prepare_plain(AuditEvent { pii: None, ..e }))
            .collect();
        self.store.audit.insert_outbox(&rows).await?;
        Ok(())
    }
}

impl AuditSink for OutboxSink {
    fn record(&self, event: AuditEvent) {
        self.events
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(event);
    }
}

/// The meta keys each event may carry (from the catalogue), plus `outcome`.
static META_KEYS: LazyLock<BTreeMap<u16, HashSet<String>>> = LazyLock::new(|| {
    let doc: toml::Table = toml::from_str(include_str!("../../audit/events.toml"))
        .expect("the event catalogue parses");
    let mut out = BTreeMap::new();
    for e in doc["event"].as_array().expect("[[event]] entries") {
        let code = e["code"].as_integer().expect("a code") as u16;
        let keys = e["meta"]
            .as_array()
            .expect("a meta list")
            .iter()
            .filter_map(|k| k.as_str().map(str::to_string))
            .chain(["outcome".to_string()])
            .collect();
        out.insert(code, keys);
    }
    out
});

/// The AAD row id of an entry's sealed personal data: its event code and time.
pub fn pii_field(event_type: u16, at_ms: i64) -> String {
    format!("{event_type}:{at_ms}")
}

pub(crate) enum Command {
    /// A record without a write of its own; the sender waits for it to be durable.
    Record(OutboxRow, Option<oneshot::Sender<Result<(), RecordError>>>),
    /// Chain everything waiting, then answer with the tree size.
    Sync(oneshot::Sender<Result<u64, String>>),
    /// Delete the directory rows of these ids (erasure) after chaining what is queued.
    Unlink(String, Vec<String>, oneshot::Sender<Result<u64, String>>),
    /// Drop every cached pseudonym (another node unlinked some).
    Forget,
}

tokio::task_local! {
    /// Acknowledgements of records handed over during one request; the REST edge waits for
    /// them before answering.
    static PENDING: RefCell<Vec<oneshot::Receiver<Result<(), RecordError>>>>;
}

/// Runs `fut`, then waits until every record it handed to [`AuditSink::record`] is durable.
/// A record that could not be stored is an error: the caller must not report the action as
/// done (the REST edge answers 500), since no action completes without its record.
pub async fn durable<F: Future>(fut: F) -> Result<F::Output, RecordLost> {
    let (out, pending) = PENDING
        .scope(RefCell::new(Vec::new()), async {
            let out = fut.await;
            (out, PENDING.with(|p| std::mem::take(&mut *p.borrow_mut())))
        })
        .await;
    let mut lost = 0;
    let mut fault = Fault::Other;
    for ack in pending {
        match ack.await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => {
                tracing::error!(error = %e, "an audit record could not be stored");
                fault = fault.worse(e.fault);
                lost += 1;
            }
            Err(_) => {
                tracing::error!("the audit appender stopped before storing a record");
                lost += 1;
            }
        }
    }
    match lost {
        0 => Ok(out),
        n => Err(RecordLost { count: n, fault }),
    }
}

/// Some records of an action could not be made durable (the causes are logged where they
/// were seen); `fault` is the gravest database failure among them.
#[derive(Debug, thiserror::Error)]
#[error("{count} audit record(s) could not be stored")]
pub struct RecordLost {
    pub count: usize,
    pub fault: Fault,
}

/// A record that could not be made durable: why, and the class of the database failure
/// behind it (`Other` when the appender stopped or the record could not be prepared).
#[derive(Debug, Clone, thiserror::Error)]
#[error("{message}")]
pub struct RecordError {
    pub fault: Fault,
    message: String,
}

impl RecordError {
    pub(crate) fn new(fault: Fault, message: impl Into<String>) -> Self {
        Self {
            fault,
            message: message.into(),
        }
    }

    fn stopped() -> Self {
        Self::new(Fault::Other, "the audit appender has stopped")
    }
}

/// The latest signed checkpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignedCheckpoint {
    pub size: u64,
    pub root: [u8; 32],
    pub note: String,
}

/// The audit log handle (in `AppState`).
pub struct AuditLog {
    pub(crate) commands: mpsc::UnboundedSender<Command>,
    pub(crate) outbox_written: Arc<Notify>,
    pub(crate) crypto: Option<Arc<FieldCrypto>>,
    pub(crate) latest: watch::Receiver<Option<SignedCheckpoint>>,
    pub(crate) sink: Option<Arc<dyn publish::CheckpointSink>>,
    /// The log key (shared with the appender; never leaves the process).
    pub(crate) signer: Arc<ward_audit::note::Signer>,
    pub origin: String,
    /// `<origin>+<key id>+<base64 key>`: what auditors pin.
    pub verifier_key: String,
}

impl AuditLog {
    /// Runs an audited write, the one way an action that writes records itself: stages
    /// `events` as outbox rows, hands them to `write` — which stores them in the action's own
    /// transaction, so the action and its records commit together or not at all — and, once
    /// the write succeeded, wakes the appender to chain them. A record that cannot be
    /// stored fails the write, so nothing completes without its record.
    ///
    /// Records staged here carry no sealed personal data (`AuditEvent::pii` is dropped):
    /// personal data needs the subject's key, which [`AuditLog::record`] looks up.
    pub async fn audited<T, E>(
        &self,
        events: impl IntoIterator<Item = AuditEvent>,
        write: impl AsyncFnOnce(Vec<OutboxRow>) -> Result<T, E>,
    ) -> Result<T, E> {
        let rows = events.into_iter().map(prepare_plain).collect();
        let out = write(rows).await?;
        self.outbox_written.notify_one();
        Ok(out)
    }

    /// [`AuditLog::audited`] for writes that make one record per row they change (adding or
    /// removing members): `write` gets the stager and calls it for each row it writes.
    pub async fn audited_each<T, E>(
        &self,
        write: impl AsyncFnOnce(Stager) -> Result<T, E>,
    ) -> Result<T, E> {
        let out = write(Stager(())).await?;
        self.outbox_written.notify_one();
        Ok(out)
    }

    /// Records an action that has no write of its own; returns once the record is durable.
    pub async fn record(&self, event: AuditEvent) -> Result<(), RecordError> {
        self.record_all(vec![event]).await
    }

    /// Several records at once (one appender round trip); returns once all are durable.
    pub async fn record_all(&self, events: Vec<AuditEvent>) -> Result<(), RecordError> {
        let mut acks = Vec::with_capacity(events.len());
        for event in events {
            let row = prepare(event, self.crypto.as_deref())
                .await
                .map_err(|e| RecordError::new(Fault::in_chain(e.as_ref()), format!("{e:#}")))?;
            let (tx, rx) = oneshot::channel();
            self.commands
                .send(Command::Record(row, Some(tx)))
                .map_err(|_| RecordError::stopped())?;
            acks.push(rx);
        }
        for rx in acks {
            rx.await.map_err(|_| RecordError::stopped())??;
        }
        Ok(())
    }

    /// [`AuditLog::record`] for callers that cannot wait (the record is still appended; the
    /// caller just does not learn when).
    pub fn record_detached(self: &Arc<Self>, event: AuditEvent) {
        let log = self.clone();
        tokio::spawn(async move {
            if let Err(e) = log.record(event).await {
                tracing::error!(error = %e, "an audit record could not be stored");
            }
        });
    }

    /// Chains everything waiting and publishes the latest checkpoint now (shutdown).
    pub async fn flush(&self) -> anyhow::Result<()> {
        self.sync().await?;
        if let (Some(sink), Some(c)) = (&self.sink, self.latest_checkpoint()) {
            sink.publish(c.size, &c.note).await?;
        }
        Ok(())
    }

    /// Chains everything committed or handed over so far; returns the tree size. A failed
    /// append is retried (the appender reloads the head: another node sharing the database
    /// may have appended meanwhile) before the error is returned.
    pub async fn sync(&self) -> anyhow::Result<u64> {
        let mut attempt = 0;
        loop {
            let (tx, rx) = oneshot::channel();
            self.commands
                .send(Command::Sync(tx))
                .map_err(|_| anyhow::anyhow!("the audit appender has stopped"))?;
            match rx.await.context("the audit appender stopped")? {
                Ok(size) => return Ok(size),
                Err(e) if attempt >= 3 => return Err(anyhow::anyhow!(e)),
                Err(_) => attempt += 1,
            }
        }
    }

    /// Unlinks ids from their pseudonyms (erasure): entries about them stay, verifiable,
    /// but no longer name anyone. Returns how many directory rows were deleted.
    pub async fn unlink(&self, kind: &str, ids: &[String]) -> anyhow::Result<u64> {
        let (tx, rx) = oneshot::channel();
        self.commands
            .send(Command::Unlink(kind.to_string(), ids.to_vec(), tx))
            .map_err(|_| anyhow::anyhow!("the audit appender has stopped"))?;
        rx.await
            .context("the audit appender stopped")?
            .map_err(|e| anyhow::anyhow!(e))
    }

    /// Drops this node's cached pseudonyms (another node unlinked some): records chained
    /// from now on resolve their pseudonyms from the database.
    pub fn forget_pseudonyms(&self) {
        let _ = self.commands.send(Command::Forget);
    }

    /// Signs `text` (a C2SP note body: UTF-8 ending in a newline) with the log key, so a
    /// recipient holding the verifier key can check it offline (e.g. an export manifest).
    pub fn sign_note(&self, text: &str) -> anyhow::Result<String> {
        Ok(self.signer.sign(text)?)
    }

    pub fn latest_checkpoint(&self) -> Option<SignedCheckpoint> {
        self.latest.borrow().clone()
    }

    pub fn crypto(&self) -> Option<&Arc<FieldCrypto>> {
        self.crypto.as_ref()
    }
}

/// Turns records into outbox rows inside [`AuditLog::audited_each`].
#[derive(Clone, Copy)]
pub struct Stager(());

impl Stager {
    pub fn stage(&self, event: AuditEvent) -> OutboxRow {
        prepare_plain(event)
    }
}

impl AuditSink for AuditLog {
    fn record(&self, event: AuditEvent) {
        hand_over(&self.commands, event);
    }
}

impl DurableSink for AuditLog {
    async fn record_durable(&self, event: AuditEvent) -> anyhow::Result<()> {
        Ok(self.record(event).await?)
    }
}

/// The appender's queue, opened before the log starts. Its sending end, the [`Recorder`],
/// is a sink from the first moment: the keyring needs one when it is built, and the log
/// needs the keyring (it seals personal data with it) before it can start. Records sent
/// before the appender runs wait in the queue; [`appender::start_with_queue`] takes the
/// other end.
pub struct Queue {
    recorder: Arc<Recorder>,
    commands: mpsc::UnboundedReceiver<Command>,
}

impl Queue {
    pub fn new() -> Self {
        let (tx, commands) = mpsc::unbounded_channel();
        Self {
            recorder: Arc::new(Recorder { commands: tx }),
            commands,
        }
    }

    /// The sink that feeds this queue (and so the log started with it).
    pub fn recorder(&self) -> Arc<Recorder> {
        self.recorder.clone()
    }
}

impl Default for Queue {
    fn default() -> Self {
        Self::new()
    }
}

/// The sending end of the appender's [`Queue`]: records handed over synchronously, as
/// [`AuditLog`]'s own [`AuditSink`] does.
pub struct Recorder {
    commands: mpsc::UnboundedSender<Command>,
}

impl AuditSink for Recorder {
    fn record(&self, event: AuditEvent) {
        hand_over(&self.commands, event);
    }
}

/// Hands a record to the appender; inside [`durable`] the caller's scope waits for it.
fn hand_over(commands: &mpsc::UnboundedSender<Command>, event: AuditEvent) {
    if event.pii.is_some() {
        // Sealing needs the subject's key (async); such records come from async code,
        // which uses `AuditLog::record`. Drop the personal data rather than the record.
        tracing::error!(
            event = event.event.name(),
            "personal data given to the synchronous audit sink was dropped"
        );
    }
    let row = prepare_plain(AuditEvent { pii: None, ..event });
    let (tx, rx) = oneshot::channel();
    if commands.send(Command::Record(row, Some(tx))).is_err() {
        tracing::error!("the audit appender has stopped; a record was not stored");
    }
    // Pushed even when the send failed: the dropped sender makes `durable` fail.
    let _ = PENDING.try_with(|p| p.borrow_mut().push(rx));
}

fn meta_bytes(event: &AuditEvent) -> Vec<u8> {
    let code = event.event.code();
    let allowed = META_KEYS.get(&code);
    let mut meta: BTreeMap<String, String> = BTreeMap::new();
    for (k, v) in &event.meta {
        if allowed.is_some_and(|a| a.contains(k)) {
            meta.insert(k.clone(), v.clone());
        } else {
            // A programming error; never let an unlisted (possibly personal) key through.
            debug_assert!(
                false,
                "meta key {k} is not listed for {}",
                event.event.name()
            );
            tracing::error!(key = %k, event = event.event.name(), "an unlisted audit meta key was dropped");
        }
    }
    meta.insert("outcome".into(), event.outcome.as_str().into());
    ward_audit::entry::encode_meta(&meta).unwrap_or_else(|e| {
        tracing::error!(error = %e, event = event.event.name(), "audit metadata could not be encoded; stored without it");
        ward_audit::entry::encode_meta(&BTreeMap::from([(
            "outcome".to_string(),
            event.outcome.as_str().to_string(),
        )]))
        .unwrap_or_default()
    })
}

fn prepare_plain(event: AuditEvent) -> OutboxRow {
    let meta = meta_bytes(&event);
    OutboxRow {
        at_ms: event.at_ms,
        event_type: event.event.code(),
        actor: event.actor,
        subject: event.subject,
        object_kind: event.object.as_ref().map(|o| o.kind.to_string()),
        object_id: event.object.map(|o| o.id),
        pii: Vec::new(),
        meta,
    }
}

async fn prepare(mut event: AuditEvent, crypto: Option<&FieldCrypto>) -> anyhow::Result<OutboxRow> {
    let pii = event.pii.take();
    let mut row = prepare_plain(event.clone());
    // Personal data only as ciphertext under the subject's key; without a subject or with
    // encryption off there is no key that erasure could destroy, so it is not stored.
    if let (Some(pii), Some(subject), Some(crypto)) = (pii, &event.subject, crypto) {
        let dek = crypto
            .keyring
            .dek_for_write(&crate::crypto::sealed::user_subject(subject))
            .await?;
        let row_id = pii_field(row.event_type, row.at_ms);
        row.pii = frame::seal(
            &dek,
            Field {
                table: "audit_log",
                column: "pii",
                row_id: &row_id,
            },
            pii.to_string().as_bytes(),
        );
    }
    Ok(row)
}
