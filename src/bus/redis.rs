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

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use axum::extract::ws::Utf8Bytes;
use futures_util::StreamExt;
use tokio::sync::mpsc;

use super::wire::{self, Body, TargetKind};
use crate::metrics::Metrics;
use crate::time::now_micros;
use crate::ws::hub::Hub;

const HEARTBEAT: Duration = Duration::from_secs(2);
const NODE_TIMEOUT: Duration = Duration::from_secs(8);
const QUEUE: usize = 65_536;
const BATCH: usize = 256;
const IO_TIMEOUT: Duration = Duration::from_secs(2);

pub struct RedisBus {
    node: String,
    out: mpsc::Sender<Vec<u8>>,
    up: AtomicBool,
    metrics: Arc<Metrics>,
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

    fn send(&self, body: &Body) {
        let frame = wire::encode(&self.node, now_micros(), body);
        if self.out.try_send(frame).is_err() {
            self.metrics.bus_dropped.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Tells every other node to forget cached read decisions. Sent even while the bus
    /// looks down (the queue drops it then; the other nodes clear their caches when the bus
    /// comes back).
    pub fn publish_invalidation(&self, scope: crate::ws::gate::Scope) {
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
        let mut last_seen: HashMap<String, Instant> = HashMap::new();
        let mut tick = tokio::time::interval(HEARTBEAT);
        loop {
            tokio::select! {
                msg = stream.next() => {
                    let Some(msg) = msg else { break };
                    handle(&hub, &bus, &mut last_seen, msg.get_payload_bytes()).await;
                }
                _ = tick.tick() => {
                    bus.send(&Body::Heartbeat);
                    let now = Instant::now();
                    last_seen.retain(|node, seen| {
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

async fn handle(
    hub: &Hub,
    bus: &RedisBus,
    last_seen: &mut HashMap<String, Instant>,
    payload: &[u8],
) {
    let Some(frame) = wire::decode(payload) else {
        tracing::warn!("ignoring a malformed bus frame");
        return;
    };
    if frame.node == bus.node {
        return;
    }
    bus.metrics.bus_received.fetch_add(1, Ordering::Relaxed);
    last_seen.insert(frame.node.clone(), Instant::now());
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
                TargetKind::User | TargetKind::Presence => {
                    crate::ws::gate::channel_of_bytes(&payload)
                }
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
    }
}
