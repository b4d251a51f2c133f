//! Cross-node delivery over Redis pub/sub.
//!
//! One channel carries every frame ([`super::wire`]). A publisher task sends queued frames
//! in pipelined batches; a subscriber task delivers other nodes' events to this node's hub
//! and keeps the hub's replica of their state. Every node heartbeats; a node silent for
//! [`NODE_TIMEOUT`] is forgotten (it crashed).
//!
//! Redis down: publishing drops frames (counted), the replica is cleared so presence, watcher
//! counts and connection caps fall back to this node's own view, and `/healthz` reports
//! `degraded`. Nothing blocks: publishing is a `try_send`. When Redis returns, the node
//! announces its state, asks the others for theirs, and closes its WebSockets with 1012 so
//! every client resyncs the events it may have missed through `POST /channels`.
//!
//! Control frames (revocations, cache evictions) are applied by every node as they arrive,
//! in order with the events, and acknowledged; [`RedisBus::control`] waits (at most
//! [`ACK_TIMEOUT`]) until every live node has acknowledged, so a revocation that returns
//! has taken effect cluster-wide.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use axum::extract::ws::Utf8Bytes;
use futures_util::StreamExt;
use tokio::sync::mpsc;

use super::Caches;
use super::local::Hub;
use super::wire::{self, Body, Control, TargetKind};
use crate::metrics::Metrics;
use crate::time::now_micros;

const HEARTBEAT: Duration = Duration::from_secs(2);
const NODE_TIMEOUT: Duration = Duration::from_secs(8);
const QUEUE: usize = 65_536;
const BATCH: usize = 256;
const IO_TIMEOUT: Duration = Duration::from_secs(2);
/// How long a control frame waits for the other nodes' acknowledgements.
pub const ACK_TIMEOUT: Duration = Duration::from_secs(1);

struct Pending {
    waiting: HashSet<String>,
    done: Option<tokio::sync::oneshot::Sender<()>>,
}

pub struct RedisBus {
    node: String,
    out: mpsc::Sender<Vec<u8>>,
    up: AtomicBool,
    metrics: Arc<Metrics>,
    /// Other nodes heard from recently (heartbeats), with when.
    peers: Mutex<HashMap<String, Instant>>,
    /// Control frames sent by this node that some node has not acknowledged yet.
    pending: Mutex<HashMap<u64, Pending>>,
    /// What control frames act on besides the hub (attached once the app is built).
    caches: OnceLock<Caches>,
}

impl RedisBus {
    /// Starts the publisher and subscriber. Redis need not be up yet: the node starts
    /// degraded and connects when it can.
    pub fn start(
        url: &str,
        channel: &str,
        node: &str,
        hub: Arc<Hub>,
        metrics: Arc<Metrics>,
    ) -> anyhow::Result<Arc<Self>> {
        let client = ::redis::Client::open(url)?;
        let (out, rx) = mpsc::channel(QUEUE);
        let bus = Arc::new(Self {
            node: node.to_string(),
            out,
            up: AtomicBool::new(false),
            metrics,
            peers: Mutex::default(),
            pending: Mutex::default(),
            caches: OnceLock::new(),
        });
        let (changes_tx, mut changes_rx) = mpsc::unbounded_channel();
        hub.report_changes(changes_tx);
        tokio::spawn(publisher(
            client.clone(),
            channel.to_string(),
            rx,
            bus.clone(),
        ));
        tokio::spawn(subscriber(client, channel.to_string(), hub, bus.clone()));
        let forward = bus.clone();
        tokio::spawn(async move {
            while let Some(change) = changes_rx.recv().await {
                forward.send(&Body::State(change));
            }
        });
        Ok(bus)
    }

    pub fn is_up(&self) -> bool {
        self.up.load(Ordering::Relaxed)
    }

    pub fn node(&self) -> &str {
        &self.node
    }

    /// Attaches the caches that control frames evict (set once).
    pub fn attach_caches(&self, caches: Caches) {
        let _ = self.caches.set(caches);
    }

    fn live_peers(&self) -> HashSet<String> {
        let peers = self.peers.lock().unwrap_or_else(|e| e.into_inner());
        peers
            .iter()
            .filter(|(_, seen)| seen.elapsed() < NODE_TIMEOUT)
            .map(|(node, _)| node.clone())
            .collect()
    }

    /// Sends a control frame to every other node and waits until each live node has applied
    /// it (or [`ACK_TIMEOUT`] passes). Returns whether every live node acknowledged. With
    /// the bus down nothing is sent: the other nodes re-check their connections against
    /// the database meanwhile.
    pub async fn control(&self, control: Control) -> bool {
        if !self.is_up() {
            self.metrics.bus_dropped.fetch_add(1, Ordering::Relaxed);
            return false;
        }
        let id = rand::random::<u64>();
        let waiting = self.live_peers();
        if waiting.is_empty() {
            // No other node to wait for (one that joins later checks the database).
            self.send(&Body::Control { id, control });
            return true;
        }
        let (tx, rx) = tokio::sync::oneshot::channel();
        self.pending
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(
                id,
                Pending {
                    waiting,
                    done: Some(tx),
                },
            );
        self.send(&Body::Control { id, control });
        let acked = tokio::time::timeout(ACK_TIMEOUT, rx).await;
        let missing = self
            .pending
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&id);
        match acked {
            Ok(Ok(())) => true,
            _ => {
                let n = missing.map_or(0, |p| p.waiting.len());
                tracing::warn!(
                    nodes = n,
                    "a control frame was not acknowledged by every node in time"
                );
                false
            }
        }
    }

    fn acknowledged(&self, id: u64, by: &str) {
        let mut pending = self.pending.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(p) = pending.get_mut(&id) {
            p.waiting.remove(by);
            if p.waiting.is_empty()
                && let Some(done) = p.done.take()
            {
                let _ = done.send(());
            }
        }
    }

    fn send(&self, body: &Body) {
        let frame = wire::encode(&self.node, now_micros(), body);
        if self.out.try_send(frame).is_err() {
            self.metrics.bus_dropped.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Tells every other node to forget cached read decisions. Sent even while the bus
    /// looks down (the queue drops it then; the other nodes clear their caches when the bus
    /// comes back).
    pub fn publish_invalidation(&self, scope: super::gate::Scope) {
        self.send(&Body::Invalidate(scope));
    }

    pub fn publish_event(&self, target: TargetKind, key: &str, payload: &[u8]) {
        if !self.is_up() {
            self.metrics.bus_dropped.fetch_add(1, Ordering::Relaxed);
            return;
        }
        self.send(&Body::Event {
            target,
            key: key.to_string(),
            payload: payload.to_vec(),
        });
    }
}

async fn publisher(
    client: ::redis::Client,
    channel: String,
    mut rx: mpsc::Receiver<Vec<u8>>,
    bus: Arc<RedisBus>,
) {
    let mut batch = Vec::with_capacity(BATCH);
    loop {
        let conn =
            tokio::time::timeout(IO_TIMEOUT, client.get_multiplexed_async_connection()).await;
        let Ok(Ok(mut conn)) = conn else {
            // Nothing can be sent: drop what is queued rather than replay it much later.
            while let Ok(_frame) = rx.try_recv() {
                bus.metrics.bus_dropped.fetch_add(1, Ordering::Relaxed);
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
            continue;
        };
        loop {
            if rx.recv_many(&mut batch, BATCH).await == 0 {
                return;
            }
            let mut pipe = ::redis::pipe();
            for frame in &batch {
                pipe.cmd("PUBLISH")
                    .arg(&channel)
                    .arg(frame.as_slice())
                    .ignore();
            }
            let sent = batch.len() as u64;
            batch.clear();
            match tokio::time::timeout(IO_TIMEOUT, pipe.query_async::<()>(&mut conn)).await {
                Ok(Ok(())) => {
                    bus.metrics.bus_published.fetch_add(sent, Ordering::Relaxed);
                }
                _ => {
                    bus.metrics.bus_dropped.fetch_add(sent, Ordering::Relaxed);
                    break;
                }
            }
        }
    }
}

async fn subscriber(client: ::redis::Client, channel: String, hub: Arc<Hub>, bus: Arc<RedisBus>) {
    let mut ever_connected = false;
    loop {
        let pubsub = tokio::time::timeout(IO_TIMEOUT, async {
            let mut ps = client.get_async_pubsub().await?;
            ps.subscribe(&channel).await?;
            Ok::<_, ::redis::RedisError>(ps)
        })
        .await;
        let Ok(Ok(pubsub)) = pubsub else {
            tokio::time::sleep(Duration::from_millis(250)).await;
            continue;
        };
        bus.up.store(true, Ordering::Relaxed);
        tracing::info!(node = %bus.node, "cross-node bus connected");
        // Invalidations from other nodes may have been missed while disconnected.
        if let Some(gate) = hub.gate() {
            gate.clear();
        }
        if ever_connected {
            // Events from other nodes may have been missed: make every client resync.
            hub.close_all();
        }
        ever_connected = true;
        bus.send(&Body::Hello);
        announce_state(&hub, &bus);

        let mut stream = pubsub.into_on_message();
        let mut tick = tokio::time::interval(HEARTBEAT);
        loop {
            tokio::select! {
                msg = stream.next() => {
                    let Some(msg) = msg else { break };
                    handle(&hub, &bus, msg.get_payload_bytes()).await;
                }
                _ = tick.tick() => {
                    bus.send(&Body::Heartbeat);
                    let now = Instant::now();
                    bus.peers.lock().unwrap_or_else(|e| e.into_inner()).retain(|node, seen| {
                        let alive = now.duration_since(*seen) < NODE_TIMEOUT;
                        if !alive {
                            tracing::warn!(node = %node, "node went silent; forgetting its connections");
                            hub.forget_node(node);
                        }
                        alive
                    });
                }
            }
        }
        bus.up.store(false, Ordering::Relaxed);
        bus.peers.lock().unwrap_or_else(|e| e.into_inner()).clear();
        hub.forget_remote();
        if let Some(gate) = hub.gate() {
            gate.clear();
        }
        tracing::warn!(node = %bus.node, "cross-node bus lost; serving local connections only");
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

fn announce_state(hub: &Hub, bus: &RedisBus) {
    for change in hub.local_snapshot() {
        bus.send(&Body::State(change));
    }
}

async fn handle(hub: &Hub, bus: &RedisBus, payload: &[u8]) {
    let Some(frame) = wire::decode(payload) else {
        tracing::warn!("ignoring a malformed bus frame");
        return;
    };
    if frame.node == bus.node {
        return;
    }
    bus.metrics.bus_received.fetch_add(1, Ordering::Relaxed);
    bus.peers
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .insert(frame.node.clone(), Instant::now());
    match frame.body {
        Body::Event {
            target,
            key,
            payload,
        } => {
            bus.metrics
                .bus_lag
                .observe((now_micros() - frame.sent_at) as f64 / 1e6);
            // The read decision is this node's: the channel comes from the event itself.
            let gate = match target {
                TargetKind::Channel => Ok(Some(key.clone())),
                TargetKind::User | TargetKind::Presence => super::gate::channel_of_bytes(&payload),
                // Gated per watched channel by `deliver_local`.
                TargetKind::Members => Ok(None),
            };
            match (gate, String::from_utf8(payload)) {
                (Ok(gate), Ok(text)) => {
                    super::deliver_local(hub, target, &key, gate.as_deref(), &Utf8Bytes::from(text))
                        .await
                }
                _ => tracing::warn!("ignoring a bus event that is not JSON"),
            }
        }
        Body::State(change) => hub.apply_remote(&frame.node, &change),
        Body::Hello => announce_state(hub, bus),
        Body::Invalidate(scope) => {
            if let Some(gate) = hub.gate() {
                gate.invalidate(&scope);
            }
        }
        Body::Heartbeat => {}
        Body::Control { id, control } => {
            // Applied here, before any later frame is handled: a revoked connection gets
            // none of the events that follow.
            super::apply_control(hub, bus.caches.get(), &control);
            bus.send(&Body::Ack {
                id,
                to: frame.node.clone(),
            });
        }
        Body::Ack { id, to } => {
            if to == bus.node {
                bus.acknowledged(id, &frame.node);
            }
        }
    }
}

/// Publishes one control frame from a process that does not serve (the `ward keys` CLI):
/// the serving nodes apply it; nobody waits for acknowledgements.
pub async fn publish_control_once(
    url: &str,
    channel: &str,
    node: &str,
    control: Control,
) -> anyhow::Result<()> {
    let client = ::redis::Client::open(url)?;
    let mut conn = tokio::time::timeout(IO_TIMEOUT, client.get_multiplexed_async_connection())
        .await
        .map_err(|_| anyhow::anyhow!("Redis did not answer in time"))??;
    let frame = wire::encode(
        node,
        now_micros(),
        &Body::Control {
            id: rand::random::<u64>(),
            control,
        },
    );
    tokio::time::timeout(
        IO_TIMEOUT,
        ::redis::cmd("PUBLISH")
            .arg(channel)
            .arg(frame)
            .query_async::<()>(&mut conn),
    )
    .await
    .map_err(|_| anyhow::anyhow!("Redis did not answer in time"))??;
    Ok(())
}
