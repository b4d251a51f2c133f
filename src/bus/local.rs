//! The local hub: which connections are open on this node, whose they are, and which
//! channels each watches. Domain code reaches it through [`super::Bus`], which applies what
//! is local here and sends what is cluster-wide to the other nodes.
//!
//! Events arrive already serialised ([`Utf8Bytes`] is a shared, reference-counted buffer),
//! so sending to N watchers clones a pointer N times. Each connection has a bounded queue;
//! when it is full the connection is told to close (the SDK reconnects and recovers through
//! `POST /channels`), so a slow client never blocks a sender or grows memory.
//!
//! The maps sit behind a synchronous `RwLock`: every critical section is a few map
//! operations with no `.await` inside, and delivery takes only the read lock.

mod cluster;
mod connections;
pub mod remote;
mod send;
mod watch;

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, RwLock};

use axum::extract::ws::Utf8Bytes;
use tokio::sync::{Notify, mpsc};

use super::gate::Gate;
use crate::bus::wire::Revocation;
use remote::RemoteView;

/// A change in this node's own state, reported to the other nodes (absolute counts).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LocalChange {
    Connections {
        user_id: String,
        count: usize,
    },
    Watching {
        cid: String,
        user_id: String,
        count: usize,
    },
}

pub type ConnId = Arc<str>;

struct Conn {
    user_id: String,
    tx: mpsc::Sender<Utf8Bytes>,
    /// Signalled when the connection must close because its queue overflowed.
    slow: Arc<Notify>,
    /// Signalled when the connection must close so the client resyncs (bus recovered).
    restart: Arc<Notify>,
    watching: HashSet<String>,
    presence_of: HashSet<String>,
    /// The interactive session whose chat token opened this connection, if any.
    session: Option<String>,
    /// The `iat` of the token that opened the connection (`None`: no `iat` claim).
    iat: Option<i64>,
    /// Set (before the close is signalled) when the connection's user, token or session is
    /// revoked: nothing is delivered to it any more, and its writer sends nothing more.
    revoked: Arc<AtomicBool>,
}

impl Conn {
    fn revoked_by(&self, r: &Revocation) -> bool {
        let before = |before: i64| self.iat.is_none_or(|iat| iat < before);
        match r {
            Revocation::User { user_id } => self.user_id == *user_id,
            Revocation::UserTokensBefore { user_id, before: b } => {
                self.user_id == *user_id && before(*b)
            }
            Revocation::AllTokensBefore { before: b } => before(*b),
            Revocation::Session { sid } => self.session.as_deref() == Some(sid.as_str()),
            Revocation::SessionsOf { user_id } => {
                self.user_id == *user_id && self.session.is_some()
            }
        }
    }

    fn revoke(&self) {
        self.revoked.store(true, Ordering::SeqCst);
        self.restart.notify_one();
    }
}

/// What a periodic re-check needs to know about an open connection.
#[derive(Debug, Clone)]
pub struct Credentials {
    pub conn_id: ConnId,
    pub user_id: String,
    pub iat: Option<i64>,
    pub session: Option<String>,
}

#[derive(Default)]
struct Inner {
    conns: HashMap<ConnId, Conn>,
    by_user: HashMap<String, HashSet<ConnId>>,
    /// cid → watching connection → its user.
    watchers: HashMap<String, HashMap<ConnId, String>>,
    /// user → connections subscribed to that user's presence.
    presence_subs: HashMap<String, HashSet<ConnId>>,
    /// What other nodes hold (empty on a single node).
    remote: RemoteView,
}

impl Inner {
    /// Distinct users watching `cid` on any node.
    fn watcher_set(&self, cid: &str) -> HashSet<&String> {
        let mut users: HashSet<&String> = self
            .watchers
            .get(cid)
            .map(|w| w.values().collect())
            .unwrap_or_default();
        users.extend(self.remote.watchers(cid));
        users
    }

    fn distinct_watchers(&self, cid: &str) -> usize {
        self.watcher_set(cid).len()
    }

    fn local_watch_count(&self, cid: &str, user_id: &str) -> usize {
        self.watchers
            .get(cid)
            .map_or(0, |w| w.values().filter(|u| *u == user_id).count())
    }

    fn user_watches(&self, cid: &str, user_id: &str) -> bool {
        self.local_watch_count(cid, user_id) > 0 || self.remote.is_watching(cid, user_id)
    }

    fn local_connections(&self, user_id: &str) -> usize {
        self.by_user.get(user_id).map_or(0, HashSet::len)
    }
}

/// What registering a connection gives its session.
pub struct Registration {
    pub conn_id: ConnId,
    pub rx: mpsc::Receiver<Utf8Bytes>,
    pub slow: Arc<Notify>,
    pub restart: Arc<Notify>,
    /// Set when the connection was revoked: the writer stops sending and closes (1008).
    pub revoked: Arc<AtomicBool>,
    /// This is the user's first open connection (they just came online).
    pub came_online: bool,
}

/// A change in who watches a channel.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WatchChange {
    pub cid: String,
    /// The user started (or stopped) watching with this change, not just another tab.
    pub user_changed: bool,
    pub watcher_count: usize,
}

/// What closing a connection changed.
pub struct Unregistered {
    pub user_id: String,
    pub stopped: Vec<WatchChange>,
    pub went_offline: bool,
}

#[derive(Debug, thiserror::Error)]
#[error("too many connections")]
pub struct TooManyConnections;

pub struct Hub {
    inner: RwLock<Inner>,
    queue_len: usize,
    pub delivered: AtomicU64,
    pub dropped_slow: AtomicU64,
    /// Connections told to close because their queue overflowed.
    pub slow_closed: AtomicU64,
    /// Deliveries the read decision refused (one per connection and event).
    pub refused: AtomicU64,
    /// The read decision content events pass (see [`Gate`]); set once at start.
    gate: std::sync::OnceLock<Arc<Gate>>,
    /// Signalled when the last open connection unregisters (see [`Hub::wait_idle`]).
    idle: Notify,
    /// Where changes of local state go when several nodes share a bus.
    changes: std::sync::OnceLock<mpsc::UnboundedSender<LocalChange>>,
}

impl Hub {
    pub fn new(queue_len: usize) -> Self {
        Self {
            inner: RwLock::default(),
            queue_len,
            delivered: AtomicU64::new(0),
            dropped_slow: AtomicU64::new(0),
            slow_closed: AtomicU64::new(0),
            refused: AtomicU64::new(0),
            gate: std::sync::OnceLock::new(),
            idle: Notify::new(),
            changes: std::sync::OnceLock::new(),
        }
    }

    /// Sets the read decision content events pass (once, at start).
    pub fn set_gate(&self, gate: Arc<Gate>) {
        let _ = self.gate.set(gate);
    }

    /// The read decision, if set. Without one, content events are delivered to no one.
    pub fn gate(&self) -> Option<&Arc<Gate>> {
        self.gate.get()
    }

    /// Reports every later change of local state to `sink` (set once, by the cluster bus).
    pub fn report_changes(&self, sink: mpsc::UnboundedSender<LocalChange>) {
        let _ = self.changes.set(sink);
    }

    fn report(&self, change: LocalChange) {
        if let Some(sink) = self.changes.get() {
            let _ = sink.send(change);
        }
    }

    fn report_watch(&self, inner: &Inner, cid: &str, user_id: &str) {
        self.report(LocalChange::Watching {
            cid: cid.to_string(),
            user_id: user_id.to_string(),
            count: inner.local_watch_count(cid, user_id),
        });
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, Inner> {
        self.inner.read().unwrap_or_else(|e| e.into_inner())
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, Inner> {
        self.inner.write().unwrap_or_else(|e| e.into_inner())
    }
}

#[cfg(test)]
mod tests;
