//! The one writer of the audit log (audit-and-crypto.md §2.3: a single appender task with
//! group commit). Each batch takes the waiting outbox rows and the records handed over
//! directly, pseudonymises their ids, builds entry v1 bytes, chains them, extends the Merkle
//! tree, signs a checkpoint, and commits entries, new tree nodes, the checkpoint and the
//! outbox deletions in one transaction. Records arriving while a batch commits form the
//! next batch, so a busy log commits many records per transaction.
//!
//! Restart safety: the outbox rows of committed actions stay until the batch that chains
//! them commits, so a crash at any point loses nothing; at start the head is reloaded from
//! the database and checked against the last signed checkpoint and the last one published
//! outside it (`appender/open.rs`).

mod open;

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use tokio::sync::{Notify, mpsc, oneshot, watch};
use ward_audit::Hash;
use ward_audit::checkpoint::Checkpoint;
use ward_audit::entry::{Entry, chain_hash};
use ward_audit::merkle::{Frontier, leaf_hash};
use ward_audit::note::Signer;

use super::publish::CheckpointSink;
use super::{AuditEvent, AuditLog, Command, EventType, Queue, SignedCheckpoint, tree};
use crate::crypto::fields::FieldCrypto;
use crate::crypto::root::RootKey;
use crate::store::{AuditBatch, AuditRow, CheckpointRow, OutboxRow, Store};

pub use open::verifier_key;
use open::{load_head, settle_origin, signing_key, tenant_id, verifier_key_of};

/// At most this many records per transaction.
const MAX_BATCH: usize = 2000;

/// What the appender needs to start.
pub struct AppenderConfig {
    /// The log's identity (C2SP origin, also the key name); `None`: the stored one, or
    /// `ward.local/audit/<tenant id>` for a new log.
    pub origin: Option<String>,
    pub sink: Option<Arc<dyn CheckpointSink>>,
}

struct Head {
    chain: Hash,
    frontier: Frontier,
}

struct Appender {
    store: Store,
    signer: Arc<Signer>,
    origin: String,
    tenant: [u8; 16],
    head: Head,
    latest: watch::Sender<Option<SignedCheckpoint>>,
    /// Recently used pseudonyms. Unlinking (erasure) goes through the appender and purges
    /// them; another node's unlinking purges them through the bus (`Command::Forget`), and
    /// the TTL bounds how long it can go unnoticed while the bus is down.
    pseudonyms: HashMap<(String, String), ([u8; 16], tokio::time::Instant)>,
    /// Whether this appender held the lease for its last batch.
    leader: bool,
}

/// How long a cached pseudonym is trusted (see [`Appender::pseudonyms`]).
const PSEUDONYM_TTL: Duration = Duration::from_secs(30);
const PSEUDONYM_CACHE: usize = 100_000;

type Ack = Option<oneshot::Sender<Result<(), super::RecordError>>>;

/// Opens (or creates) the log, checks it, and starts the appender and the checkpoint
/// publisher. Returns the handle actions record through.
pub async fn start(
    store: Store,
    crypto: Option<Arc<FieldCrypto>>,
    root: Arc<dyn RootKey>,
    config: AppenderConfig,
) -> anyhow::Result<Arc<AuditLog>> {
    start_with_queue(store, crypto, root, config, Queue::new()).await
}

/// As [`start`], draining a queue opened earlier (records already in it are appended
/// first): for sinks needed before the log can start, such as the keyring's.
pub async fn start_with_queue(
    store: Store,
    crypto: Option<Arc<FieldCrypto>>,
    root: Arc<dyn RootKey>,
    config: AppenderConfig,
    queue: Queue,
) -> anyhow::Result<Arc<AuditLog>> {
    let tenant = tenant_id(&store).await?;
    let origin = settle_origin(&store, config.origin.as_deref(), &tenant).await?;
    let (signer, created) = signing_key(&store, root.as_ref(), &origin).await?;
    let verifier = signer.verifier();
    let head = load_head(&store).await?;
    let (latest_tx, latest_rx) = watch::channel(None);
    let mut appender = Appender {
        store: store.clone(),
        signer: Arc::new(signer),
        origin: origin.clone(),
        tenant,
        head,
        latest: latest_tx,
        pseudonyms: HashMap::new(),
        leader: false,
    };
    appender
        .check_against_checkpoints(config.sink.as_deref(), &verifier)
        .await?;

    let Queue {
        recorder,
        commands: commands_rx,
    } = queue;
    let commands_tx = recorder.commands.clone();
    let notify = Arc::new(Notify::new());
    let log = Arc::new(AuditLog {
        commands: commands_tx,
        outbox_written: notify.clone(),
        crypto,
        latest: latest_rx.clone(),
        sink: config.sink.clone(),
        signer: appender.signer.clone(),
        origin,
        verifier_key: verifier_key_of(&appender.signer),
    });
    tokio::spawn(appender.run(commands_rx, notify));
    if let Some(sink) = config.sink {
        tokio::spawn(publish_loop(sink, latest_rx));
    }
    if created {
        log.record(
            AuditEvent::new(EventType::KeyOperation)
                .object("key", "audit-signing-key")
                .meta("operation", "signing_key_created")
                .meta("provider", root.describe()),
        )
        .await?;
    }
    Ok(log)
}

impl Appender {
    async fn run(mut self, mut commands: mpsc::UnboundedReceiver<Command>, notify: Arc<Notify>) {
        let mut tick = tokio::time::interval(Duration::from_secs(1));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut backoff = Duration::from_millis(50);
        loop {
            let mut direct: Vec<(OutboxRow, Ack)> = Vec::new();
            let mut syncs = Vec::new();
            let mut unlinks = Vec::new();
            let mut forget = false;
            tokio::select! {
                cmd = commands.recv() => match cmd {
                    Some(c) => take(c, &mut direct, &mut syncs, &mut unlinks, &mut forget),
                    None => return,
                },
                _ = notify.notified() => {}
                _ = tick.tick() => {}
            }
            let mut failed = None;
            loop {
                while direct.len() < MAX_BATCH {
                    match commands.try_recv() {
                        Ok(c) => take(c, &mut direct, &mut syncs, &mut unlinks, &mut forget),
                        Err(_) => break,
                    }
                }
                if std::mem::take(&mut forget) {
                    self.pseudonyms.clear();
                }
                match self.append_once(&mut direct).await {
                    Ok(true) => continue,
                    Ok(false) => break,
                    Err(e) => {
                        failed = Some(e);
                        break;
                    }
                }
            }
            // Records queued before an unlink were chained above with the old pseudonyms;
            // later ones get fresh pseudonyms.
            for (kind, ids, ack) in unlinks {
                let gone: std::collections::HashSet<&String> = ids.iter().collect();
                self.pseudonyms
                    .retain(|(k, id), _| !(k == &kind && gone.contains(id)));
                let result = self
                    .store
                    .audit
                    .delete_pseudonyms(&kind, &ids)
                    .await
                    .map_err(|e| e.to_string());
                let _ = ack.send(result);
            }
            match failed {
                None => {
                    backoff = Duration::from_millis(50);
                    let size = self.head.frontier.size();
                    for s in syncs {
                        let _ = s.send(Ok(size));
                    }
                }
                Some(e) => {
                    tracing::error!(error = %e, "audit append failed; records stay in the outbox and are retried");
                    self.park(direct).await;
                    for s in syncs {
                        let _ = s.send(Err(format!("audit append failed: {e}")));
                    }
                    if let Ok(head) = load_head(&self.store).await {
                        self.head = head;
                    }
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(Duration::from_secs(5));
                }
            }
        }
    }

    /// Makes direct records durable in the outbox when they cannot be chained now (not the
    /// leader, or a failed batch); they are chained by whichever node appends next.
    async fn park(&self, direct: Vec<(OutboxRow, Ack)>) {
        if direct.is_empty() {
            return;
        }
        let rows: Vec<OutboxRow> = direct.iter().map(|(r, _)| r.clone()).collect();
        let result = self.store.audit.insert_outbox(&rows).await.map_err(|e| {
            super::RecordError::new(
                e.fault(),
                format!("storing audit records in the outbox: {e}"),
            )
        });
        for (_, ack) in direct {
            if let Some(ack) = ack {
                let _ = ack.send(result.clone());
            }
        }
    }

    /// Appends one batch; returns whether the outbox may hold more.
    async fn append_once(&mut self, direct: &mut Vec<(OutboxRow, Ack)>) -> anyhow::Result<bool> {
        if !self.store.audit.hold_audit_lease().await? {
            self.leader = false;
            let parked = std::mem::take(direct);
            self.park(parked).await;
            return Ok(false);
        }
        if !self.leader {
            // Just took the lease over (another node appended meanwhile): continue from the
            // database's head, not from the one read at start.
            self.head = load_head(&self.store).await?;
            self.leader = true;
        }
        let room = MAX_BATCH.saturating_sub(direct.len());
        let outbox = if room > 0 {
            self.store.audit.find_outbox(room as i64).await?
        } else {
            Vec::new()
        };
        let more = outbox.len() == room && room > 0;
        if outbox.is_empty() && direct.is_empty() {
            return Ok(false);
        }
        let drained: Vec<i64> = outbox.iter().map(|(id, _)| *id).collect();
        let rows: Vec<OutboxRow> = outbox
            .into_iter()
            .map(|(_, r)| r)
            .chain(direct.iter().map(|(r, _)| r.clone()))
            .collect();
        let pseudonyms = self.pseudonyms(&rows).await?;
        let batch = self.build(rows, drained, &pseudonyms)?;
        self.commit(batch).await?;
        for (_, ack) in direct.drain(..) {
            if let Some(ack) = ack {
                let _ = ack.send(Ok(()));
            }
        }
        Ok(more)
    }

    /// Pseudonyms for every id in `rows`: from the cache while fresh, else from the
    /// directory (created where missing).
    async fn pseudonyms(
        &mut self,
        rows: &[OutboxRow],
    ) -> anyhow::Result<HashMap<(String, String), [u8; 16]>> {
        let mut wanted = BTreeSet::new();
        for r in rows {
            for id in [&r.actor, &r.subject].into_iter().flatten() {
                wanted.insert(("user".to_string(), id.clone()));
            }
            if let (Some(k), Some(id)) = (&r.object_kind, &r.object_id) {
                wanted.insert((k.clone(), id.clone()));
            }
        }
        let now = tokio::time::Instant::now();
        let mut out = HashMap::new();
        let mut missing = Vec::new();
        for key in wanted {
            match self.pseudonyms.get(&key) {
                Some((p, at)) if now.duration_since(*at) < PSEUDONYM_TTL => {
                    out.insert(key, *p);
                }
                _ => missing.push(key),
            }
        }
        if self.pseudonyms.len() > PSEUDONYM_CACHE {
            self.pseudonyms.clear();
        }
        for (key, p) in self.store.audit.resolve_pseudonyms(&missing).await? {
            let p: [u8; 16] = p
                .as_slice()
                .try_into()
                .context("a stored pseudonym is not 16 bytes")?;
            self.pseudonyms.insert(key.clone(), (p, now));
            out.insert(key, p);
        }
        Ok(out)
    }

    /// Chains `rows` after the head (no I/O).
    fn build(
        &self,
        rows: Vec<OutboxRow>,
        drained: Vec<i64>,
        pseudonyms: &HashMap<(String, String), [u8; 16]>,
    ) -> anyhow::Result<(AuditBatch, Head)> {
        let mut frontier = self.head.frontier.clone();
        let mut chain = self.head.chain;
        let mut entries = Vec::with_capacity(rows.len());
        let mut nodes = Vec::new();
        let user = |id: &Option<String>| -> [u8; 16] {
            id.as_ref()
                .and_then(|id| pseudonyms.get(&("user".to_string(), id.clone())))
                .copied()
                .unwrap_or([0; 16])
        };
        for r in rows {
            let object_ref = match (&r.object_kind, &r.object_id) {
                (Some(k), Some(id)) => match pseudonyms.get(&(k.clone(), id.clone())) {
                    Some(p) => format!("{k}:{}", uuid::Uuid::from_bytes(*p).hyphenated()),
                    None => String::new(),
                },
                _ => String::new(),
            };
            let (actor, subject) = (user(&r.actor), user(&r.subject));
            let mut entry = Entry {
                seq: frontier.size(),
                prev_chain: chain,
                ts_unix_ms: r.at_ms.max(0) as u64,
                event_type: r.event_type,
                actor_id: actor,
                subject_id: subject,
                tenant_id: self.tenant,
                object_ref: object_ref.clone().into_bytes(),
                pii_ct: r.pii,
                meta: r.meta,
            };
            let bytes = match entry.encode() {
                Ok(b) => b,
                Err(e) => {
                    // Only oversized personal data can do this: keep the event, drop it.
                    tracing::error!(error = %e, "an audit entry was too large; stored without its personal data");
                    entry.pii_ct.clear();
                    entry.encode()?
                }
            };
            chain = chain_hash(&bytes);
            let leaf = leaf_hash(&bytes);
            frontier.push(leaf, &mut |level, idx, hash| {
                if level > 0 && level % tree::STORED_LEVEL_STEP == 0 {
                    nodes.push((level, idx, *hash));
                }
            });
            let outcome = ward_audit::entry::decode_meta(&entry.meta)
                .ok()
                .and_then(|m| m.get("outcome").cloned())
                .unwrap_or_default();
            entries.push(AuditRow {
                seq: entry.seq as i64,
                ts: entry.ts_unix_ms as i64,
                event_type: i32::from(entry.event_type),
                actor: actor.to_vec(),
                subject: subject.to_vec(),
                object_ref,
                outcome,
                entry: bytes,
                chain_hash: chain.to_vec(),
                leaf_hash: leaf.to_vec(),
            });
        }
        let root = frontier.root();
        let note = Checkpoint {
            origin: self.origin.clone(),
            size: frontier.size(),
            root,
        }
        .sign(&self.signer)?;
        Ok((
            AuditBatch {
                entries,
                nodes,
                checkpoint: CheckpointRow {
                    size: frontier.size() as i64,
                    root: root.to_vec(),
                    note,
                    created_at: crate::time::now_micros(),
                },
                drained,
            },
            Head { chain, frontier },
        ))
    }

    async fn commit(&mut self, (batch, head): (AuditBatch, Head)) -> anyhow::Result<()> {
        self.store.audit.append_audit(&batch).await?;
        self.latest.send_replace(Some(SignedCheckpoint {
            size: head.frontier.size(),
            root: head.frontier.root(),
            note: batch.checkpoint.note,
        }));
        self.head = head;
        Ok(())
    }
}

fn take(
    c: Command,
    direct: &mut Vec<(OutboxRow, Ack)>,
    syncs: &mut Vec<oneshot::Sender<Result<u64, String>>>,
    unlinks: &mut Vec<Unlink>,
    forget: &mut bool,
) {
    match c {
        Command::Record(row, ack) => direct.push((row, ack)),
        Command::Sync(s) => syncs.push(s),
        Command::Unlink(kind, ids, ack) => unlinks.push((kind, ids, ack)),
        Command::Forget => *forget = true,
    }
}

type Unlink = (String, Vec<String>, oneshot::Sender<Result<u64, String>>);

/// Publishes the latest checkpoint outside the database at most once a second (every
/// checkpoint is in the database; the external copy bounds what a database rewrite can hide).
async fn publish_loop(
    sink: Arc<dyn CheckpointSink>,
    mut latest: watch::Receiver<Option<SignedCheckpoint>>,
) {
    let mut published = None;
    loop {
        let current = latest.borrow_and_update().clone();
        if let Some(c) = current
            && published != Some(c.size)
        {
            match sink.publish(c.size, &c.note).await {
                Ok(()) => published = Some(c.size),
                Err(e) => {
                    tracing::warn!(error = %e, sink = %sink.describe(), size = c.size, "publishing the audit checkpoint failed; retrying")
                }
            }
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
        if published.is_some()
            && latest.borrow().as_ref().map(|c| c.size) == published
            && latest.changed().await.is_err()
        {
            return;
        }
    }
}
