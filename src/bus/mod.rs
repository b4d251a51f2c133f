//! Event fan-out. Every event is serialised exactly once here and the same bytes are shared
//! by every receiving connection. Delivery to this node's watchers is always direct; with
//! `WARD_REDIS_URL` set, the same bytes are also published once to Redis pub/sub and every
//! other node delivers them to its own watchers ([`redis`]). Node-to-node state (who is
//! connected and watching where) travels the same way.
//!
//! Revocations and cache evictions are cluster-wide too ([`Bus::revoke`],
//! [`Bus::evict_keys`], [`Bus::forget_pseudonyms`]): applied on this node at once, then on
//! every other node, and the call returns once every live node has acknowledged.
//!
//! The bus owns this node's [`local::Hub`] (who is connected and watching what) and the read
//! decision deliveries pass ([`gate`]). Domain code publishes, asks about presence and
//! watchers, and watches or closes connections through [`Bus`] only
//! (its methods in `bus/state.rs`).

pub mod gate;
pub mod local;
pub mod presence;
pub mod redis;
mod state;
pub mod wire;

use std::sync::Arc;

use axum::extract::ws::Utf8Bytes;
use serde_json::Value;

use crate::audit::AuditLog;
use crate::crypto::keyring::Keyring;
use gate::Scope;
use local::Hub;
use wire::{Control, Revocation, TargetKind};

/// The node-local caches that control frames evict.
#[derive(Clone, Default)]
pub struct Caches {
    pub keyring: Option<Arc<Keyring>>,
    pub audit: Option<Arc<AuditLog>>,
}

/// Applies a control frame to this node.
pub fn apply_control(hub: &Hub, caches: Option<&Caches>, control: &Control) {
    match control {
        Control::Revoke(r) => {
            let n = hub.revoke(r);
            if n > 0 {
                tracing::info!(connections = n, "revoked connections closing");
            }
        }
        Control::EvictKeys { subject } => {
            if let Some(keyring) = caches.and_then(|c| c.keyring.as_ref()) {
                keyring.evict(subject.as_deref());
            }
        }
        Control::ForgetPseudonyms => {
            if let Some(audit) = caches.and_then(|c| c.audit.as_ref()) {
                audit.forget_pseudonyms();
            }
        }
    }
}

/// Event fan-out and connection state, on this node and (with Redis) across the nodes.
#[derive(Clone)]
pub struct Bus {
    hub: Arc<Hub>,
    cluster: Option<Arc<redis::RedisBus>>,
}

/// The state of cross-node delivery, for `/healthz`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BusHealth {
    /// One node: no cross-node bus configured.
    Local,
    Up,
    /// Redis is unreachable: this node serves its own connections only.
    Down,
}

impl Bus {
    /// The bus over this node's `hub`, and the other nodes' through `cluster` (which
    /// delivers their events to the same hub).
    pub fn new(hub: Arc<Hub>, cluster: Option<Arc<redis::RedisBus>>) -> Self {
        Self { hub, cluster }
    }

    /// This node's hub, for the edges: its delivery counters (metrics) and what a
    /// WebSocket session needs beyond the bus's own methods.
    pub fn local(&self) -> &Arc<Hub> {
        &self.hub
    }

    pub fn health(&self) -> BusHealth {
        match &self.cluster {
            None => BusHealth::Local,
            Some(c) if c.is_up() => BusHealth::Up,
            Some(_) => BusHealth::Down,
        }
    }

    async fn publish(&self, target: TargetKind, key: &str, event: &Value) {
        let gate = gated_channel(target, key, event);
        self.publish_bytes(target, key, gate, &Utf8Bytes::from(event.to_string()))
            .await;
    }

    async fn publish_bytes(
        &self,
        target: TargetKind,
        key: &str,
        gate: Option<&str>,
        bytes: &Utf8Bytes,
    ) {
        deliver_local(&self.hub, target, key, gate, bytes).await;
        if let Some(cluster) = &self.cluster {
            cluster.publish_event(target, key, bytes.as_bytes());
        }
    }

    /// To every connection watching the channel, the actor's own included (each passes the
    /// read decision, as every event naming a channel does).
    pub async fn to_channel(&self, cid: &str, event: &Value) {
        self.publish(TargetKind::Channel, cid, event).await;
    }

    /// To every connection of one user (`notification.*` events).
    pub async fn to_user(&self, user_id: &str, event: &Value) {
        self.publish(TargetKind::User, user_id, event).await;
    }

    /// To every connection of each user, serialised once for all of them.
    pub async fn to_users<'a>(&self, user_ids: impl IntoIterator<Item = &'a str>, event: &Value) {
        let bytes = Utf8Bytes::from(event.to_string());
        for user_id in user_ids {
            let gate = gated_channel(TargetKind::User, user_id, event);
            self.publish_bytes(TargetKind::User, user_id, gate, &bytes)
                .await;
        }
    }

    /// To the connections subscribed to a user's presence.
    pub async fn to_presence_subscribers(&self, user_id: &str, event: &Value) {
        self.publish(TargetKind::Presence, user_id, event).await;
    }

    /// The cross-node bus, if any.
    pub fn cluster(&self) -> Option<&Arc<redis::RedisBus>> {
        self.cluster.as_ref()
    }

    /// Revokes connections on every node: this node's are marked at once (nothing more is
    /// delivered to them) and closed; the call returns once every other live node has done
    /// the same (at most [`redis::ACK_TIMEOUT`]). Callers first make the revocation durable
    /// in the database, which every node checks at connect and, while the bus is down,
    /// periodically.
    pub async fn revoke(&self, r: Revocation) {
        self.hub.revoke(&r);
        if let Some(cluster) = &self.cluster {
            cluster.control(Control::Revoke(r)).await;
        }
    }

    /// Makes every other node drop its cached keys of `subject` (all keys and the KEK for
    /// `None`); this node's keyring evicted its own already.
    pub async fn evict_keys(&self, subject: Option<&str>) {
        if let Some(cluster) = &self.cluster {
            cluster
                .control(Control::EvictKeys {
                    subject: subject.map(str::to_string),
                })
                .await;
        }
    }

    /// Makes every other node drop its cached pseudonyms (some were unlinked here).
    pub async fn forget_pseudonyms(&self) {
        if let Some(cluster) = &self.cluster {
            cluster.control(Control::ForgetPseudonyms).await;
        }
    }

    /// To one connection of this node (health checks): never crosses nodes.
    pub fn to_connection(&self, conn_id: &str, event: &Value) {
        self.hub
            .send_to_connection(conn_id, &Utf8Bytes::from(event.to_string()));
    }

    /// Forgets cached read decisions on every node, after a change to what they depend on
    /// (membership, channel role, the channel, a user's role) is stored.
    pub fn invalidate_reads(&self, cid: Option<&str>, user_id: Option<&str>) {
        let scope = Scope {
            cid: cid.map(str::to_string),
            user_id: user_id.map(str::to_string),
        };
        if let Some(gate) = self.hub.gate() {
            gate.invalidate(&scope);
        }
        if let Some(cluster) = &self.cluster {
            cluster.publish_invalidation(scope);
        }
    }
}

/// The channel whose read decision an event needs: the channel itself for its watchers, and
/// the channel an event names for anyone else.
fn gated_channel<'a>(target: TargetKind, key: &'a str, event: &'a Value) -> Option<&'a str> {
    match target {
        TargetKind::Channel => Some(key),
        TargetKind::User | TargetKind::Presence => gate::channel_of(
            event.get("type").and_then(Value::as_str),
            event.get("cid").and_then(Value::as_str),
        ),
        // Gated per watched channel (`presence::deliver`).
        TargetKind::Members => None,
    }
}

/// Delivers already-serialised event bytes to this node's connections. An event that names
/// a channel (`gate`) reaches only the connections whose user may read it: cached decisions
/// first, then one load for the users not decided yet (see [`gate`]).
pub async fn deliver_local(
    hub: &Hub,
    target: TargetKind,
    key: &str,
    gate: Option<&str>,
    bytes: &Utf8Bytes,
) {
    if target == TargetKind::Members {
        return presence::deliver(hub, key, bytes).await;
    }
    let Some(cid) = gate else {
        match target {
            TargetKind::Channel => hub.send_to_channel(key, bytes),
            TargetKind::User => hub.send_to_user(key, bytes),
            TargetKind::Presence => hub.send_to_presence_subscribers(key, bytes),
            TargetKind::Members => {}
        }
        return;
    };
    let Some(decision) = hub.gate() else {
        // No read decision configured: content goes nowhere.
        return;
    };
    let undecided = decision.with_cached(cid, |cached| {
        hub.send_gated(target, key, bytes, |user| cached.get(user))
    });
    if undecided.is_empty() {
        return;
    }
    let decided = decision.load(cid, &undecided).await;
    hub.send_gated(target, key, bytes, |user| decided.get(user).copied());
}
