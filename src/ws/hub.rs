//! The hub: which connections are open, whose they are, and which channels each watches.
//!
//! Events arrive already serialised ([`Utf8Bytes`] is a shared, reference-counted buffer),
//! so sending to N watchers clones a pointer N times. Each connection has a bounded queue;
//! when it is full the connection is told to close (the SDK reconnects and recovers through
//! `POST /channels`), so a slow client never blocks a sender or grows memory.
//!
//! The maps sit behind a synchronous `RwLock`: every critical section is a few map
//! operations with no `.await` inside, and delivery takes only the read lock.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, RwLock};

use axum::extract::ws::Utf8Bytes;
use tokio::sync::{Notify, mpsc};

use super::gate::Gate;
use super::remote::RemoteView;
use crate::bus::wire::Revocation;
use crate::bus::wire::TargetKind;

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

    /// This node's whole state, for a node that joins (or a bus that recovers).
    pub fn local_snapshot(&self) -> Vec<LocalChange> {
        let inner = self.read();
        let mut out: Vec<LocalChange> = inner
            .by_user
            .iter()
            .map(|(u, c)| LocalChange::Connections {
                user_id: u.clone(),
                count: c.len(),
            })
            .collect();
        for (cid, w) in &inner.watchers {
            for user in w.values().collect::<HashSet<_>>() {
                out.push(LocalChange::Watching {
                    cid: cid.clone(),
                    user_id: user.clone(),
                    count: inner.local_watch_count(cid, user),
                });
            }
        }
        out
    }

    /// Applies another node's report.
    pub fn apply_remote(&self, node: &str, change: &LocalChange) {
        let mut inner = self.write();
        match change {
            LocalChange::Connections { user_id, count } => {
                inner.remote.set_connections(node, user_id, *count)
            }
            LocalChange::Watching {
                cid,
                user_id,
                count,
            } => inner.remote.set_watching(node, cid, user_id, *count),
        }
    }

    pub fn forget_node(&self, node: &str) {
        self.write().remote.forget_node(node);
    }

    /// Forgets every other node (the bus is down: fall back to what this node knows).
    pub fn forget_remote(&self) {
        self.write().remote.clear();
    }

    /// Connections open on other nodes, as last reported.
    pub fn remote_connection_count(&self) -> usize {
        self.read().remote.total_connections()
    }

    /// Tells every open connection to close (code 1012): clients reconnect and resync.
    pub fn close_all(&self) {
        let inner = self.read();
        for conn in inner.conns.values() {
            conn.restart.notify_one();
        }
    }

    /// Records the token a connection was opened with: its `iat`, and the interactive session
    /// whose chat token it is, if any (revocations match on them).
    pub fn set_credentials(&self, conn_id: &str, iat: Option<i64>, session: Option<&str>) {
        if let Some(conn) = self.write().conns.get_mut(conn_id) {
            conn.iat = iat;
            conn.session = session.map(str::to_string);
        }
    }

    /// Revokes this node's connections that `r` covers: each is marked revoked at once (no
    /// later delivery reaches it, and its writer sends nothing more) and told to close.
    /// Returns how many.
    pub fn revoke(&self, r: &Revocation) -> usize {
        let inner = self.read();
        let mut n = 0;
        for conn in inner.conns.values().filter(|c| c.revoked_by(r)) {
            conn.revoke();
            n += 1;
        }
        n
    }

    /// Revokes one connection of this node (a re-check found its token no longer valid).
    pub fn revoke_connection(&self, conn_id: &str) -> bool {
        match self.read().conns.get(conn_id) {
            Some(conn) => {
                conn.revoke();
                true
            }
            None => false,
        }
    }

    /// Every open, not yet revoked connection of this node, with what its token said.
    pub fn local_credentials(&self) -> Vec<Credentials> {
        self.read()
            .conns
            .iter()
            .filter(|(_, c)| !c.revoked.load(Ordering::SeqCst))
            .map(|(id, c)| Credentials {
                conn_id: id.clone(),
                user_id: c.user_id.clone(),
                iat: c.iat,
                session: c.session.clone(),
            })
            .collect()
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, Inner> {
        self.inner.read().unwrap_or_else(|e| e.into_inner())
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, Inner> {
        self.inner.write().unwrap_or_else(|e| e.into_inner())
    }

    /// Opens a connection for `user_id`, unless they already hold `max_per_user`.
    pub fn register(
        &self,
        user_id: &str,
        max_per_user: usize,
    ) -> Result<Registration, TooManyConnections> {
        let (tx, rx) = mpsc::channel(self.queue_len);
        let slow = Arc::new(Notify::new());
        let conn_id: ConnId = uuid::Uuid::new_v4().to_string().into();
        let mut inner = self.write();
        let remote = inner.remote.connections(user_id);
        let conns = inner.by_user.entry(user_id.to_string()).or_default();
        if conns.len() + remote >= max_per_user {
            return Err(TooManyConnections);
        }
        conns.insert(conn_id.clone());
        let local = conns.len();
        let came_online = local == 1 && remote == 0;
        let restart = Arc::new(Notify::new());
        let revoked = Arc::new(AtomicBool::new(false));
        inner.conns.insert(
            conn_id.clone(),
            Conn {
                user_id: user_id.to_string(),
                tx,
                slow: slow.clone(),
                restart: restart.clone(),
                watching: HashSet::new(),
                presence_of: HashSet::new(),
                session: None,
                iat: None,
                revoked: revoked.clone(),
            },
        );
        self.report(LocalChange::Connections {
            user_id: user_id.to_string(),
            count: local,
        });
        Ok(Registration {
            conn_id,
            rx,
            slow,
            restart,
            revoked,
            came_online,
        })
    }

    /// Closes a connection's registration: drops its watches and subscriptions.
    pub fn unregister(&self, conn_id: &str) -> Option<Unregistered> {
        let mut inner = self.write();
        let conn = inner.conns.remove(conn_id)?;
        let mut stopped = Vec::new();
        for cid in &conn.watching {
            if let Some(w) = inner.watchers.get_mut(cid) {
                w.remove(conn_id);
                if w.is_empty() {
                    inner.watchers.remove(cid);
                }
            }
            stopped.push(WatchChange {
                cid: cid.clone(),
                user_changed: !inner.user_watches(cid, &conn.user_id),
                watcher_count: inner.distinct_watchers(cid),
            });
            self.report_watch(&inner, cid, &conn.user_id);
        }
        for user in &conn.presence_of {
            if let Some(subs) = inner.presence_subs.get_mut(user) {
                subs.remove(conn_id);
                if subs.is_empty() {
                    inner.presence_subs.remove(user);
                }
            }
        }
        if let Some(set) = inner.by_user.get_mut(&conn.user_id) {
            set.remove(conn_id);
            if set.is_empty() {
                inner.by_user.remove(&conn.user_id);
            }
        }
        let local = inner.local_connections(&conn.user_id);
        let went_offline = local == 0 && inner.remote.connections(&conn.user_id) == 0;
        self.report(LocalChange::Connections {
            user_id: conn.user_id.clone(),
            count: local,
        });
        if inner.conns.is_empty() {
            self.idle.notify_waiters();
        }
        Some(Unregistered {
            user_id: conn.user_id,
            stopped,
            went_offline,
        })
    }

    /// Subscribes a connection to a channel's events. `None` if the connection is gone.
    pub fn watch(&self, conn_id: &str, cid: &str) -> Option<WatchChange> {
        let mut inner = self.write();
        let user_id = inner.conns.get(conn_id)?.user_id.clone();
        let user_changed = !inner.user_watches(cid, &user_id);
        inner
            .conns
            .get_mut(conn_id)?
            .watching
            .insert(cid.to_string());
        inner
            .watchers
            .entry(cid.to_string())
            .or_default()
            .insert(conn_id.into(), user_id.clone());
        self.report_watch(&inner, cid, &user_id);
        Some(WatchChange {
            cid: cid.to_string(),
            user_changed,
            watcher_count: inner.distinct_watchers(cid),
        })
    }

    pub fn unwatch(&self, conn_id: &str, cid: &str) -> Option<WatchChange> {
        let mut inner = self.write();
        let conn = inner.conns.get_mut(conn_id)?;
        if !conn.watching.remove(cid) {
            return None;
        }
        let user_id = conn.user_id.clone();
        if let Some(w) = inner.watchers.get_mut(cid) {
            w.remove(conn_id);
            if w.is_empty() {
                inner.watchers.remove(cid);
            }
        }
        self.report_watch(&inner, cid, &user_id);
        Some(WatchChange {
            cid: cid.to_string(),
            user_changed: !inner.user_watches(cid, &user_id),
            watcher_count: inner.distinct_watchers(cid),
        })
    }

    /// Removes one user's watches on a channel (they left it), on every connection.
    pub fn unwatch_user(&self, cid: &str, user_id: &str) {
        let mut inner = self.write();
        let conns: Vec<ConnId> = inner
            .watchers
            .get(cid)
            .map(|w| {
                w.iter()
                    .filter(|(_, u)| *u == user_id)
                    .map(|(c, _)| c.clone())
                    .collect()
            })
            .unwrap_or_default();
        for conn_id in conns {
            if let Some(w) = inner.watchers.get_mut(cid) {
                w.remove(&conn_id);
                if w.is_empty() {
                    inner.watchers.remove(cid);
                }
            }
            if let Some(conn) = inner.conns.get_mut(&conn_id) {
                conn.watching.remove(cid);
            }
        }
        self.report_watch(&inner, cid, user_id);
    }

    /// Removes every connection's watch on a channel (it was deleted).
    pub fn forget_channel(&self, cid: &str) {
        let mut inner = self.write();
        if let Some(w) = inner.watchers.remove(cid) {
            for conn_id in w.keys() {
                if let Some(conn) = inner.conns.get_mut(conn_id) {
                    conn.watching.remove(cid);
                }
            }
            for user_id in w.values().collect::<HashSet<_>>() {
                self.report_watch(&inner, cid, user_id);
            }
        }
    }

    pub fn subscribe_presence(&self, conn_id: &str, user_ids: &[String]) {
        let mut inner = self.write();
        let Some(conn) = inner.conns.get_mut(conn_id) else {
            return;
        };
        conn.presence_of.extend(user_ids.iter().cloned());
        for user in user_ids {
            inner
                .presence_subs
                .entry(user.clone())
                .or_default()
                .insert(conn_id.into());
        }
    }

    /// The connection's user, if the connection is open.
    pub fn connection_user(&self, conn_id: &str) -> Option<String> {
        self.read().conns.get(conn_id).map(|c| c.user_id.clone())
    }

    pub fn watcher_count(&self, cid: &str) -> usize {
        self.read().distinct_watchers(cid)
    }

    /// Distinct users watching a channel.
    pub fn watcher_ids(&self, cid: &str) -> Vec<String> {
        let inner = self.read();
        let mut ids: Vec<String> = inner.watcher_set(cid).into_iter().cloned().collect();
        ids.sort();
        ids
    }

    pub fn is_watching(&self, cid: &str, user_id: &str) -> bool {
        self.read().user_watches(cid, user_id)
    }

    pub fn is_online(&self, user_id: &str) -> bool {
        let inner = self.read();
        inner.by_user.contains_key(user_id) || inner.remote.connections(user_id) > 0
    }

    pub fn connection_count(&self) -> usize {
        self.read().conns.len()
    }

    /// Resolves once no connection is open. Shutdown awaits it: graceful HTTP shutdown does
    /// not track upgraded sockets, so without it the runtime could stop before the sessions
    /// have sent their close frames.
    pub async fn wait_idle(&self) {
        loop {
            let notified = self.idle.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if self.connection_count() == 0 {
                return;
            }
            notified.await;
        }
    }

    /// Queues `event` for every connection watching `cid`.
    pub fn send_to_channel(&self, cid: &str, event: &Utf8Bytes) {
        let inner = self.read();
        if let Some(w) = inner.watchers.get(cid) {
            self.deliver(&inner, w.keys(), event);
        }
    }

    /// Queues `event` for every connection of `user_id`.
    pub fn send_to_user(&self, user_id: &str, event: &Utf8Bytes) {
        let inner = self.read();
        if let Some(conns) = inner.by_user.get(user_id) {
            self.deliver(&inner, conns.iter(), event);
        }
    }

    /// Queues `event` for the connections subscribed to `user_id`'s presence.
    pub fn send_to_presence_subscribers(&self, user_id: &str, event: &Utf8Bytes) {
        let inner = self.read();
        if let Some(subs) = inner.presence_subs.get(user_id) {
            self.deliver(&inner, subs.iter(), event);
        }
    }

    /// Queues `event` for one connection.
    pub fn send_to_connection(&self, conn_id: &str, event: &Utf8Bytes) {
        let inner = self.read();
        self.deliver(
            &inner,
            inner
                .conns
                .get_key_value(conn_id)
                .map(|(k, _)| k)
                .into_iter(),
            event,
        );
    }

    /// Queues `event` for the connections `target` names whose user `decide` allows.
    /// Returns the users `decide` had no answer for (nothing was queued for them).
    pub fn send_gated(
        &self,
        target: TargetKind,
        key: &str,
        event: &Utf8Bytes,
        decide: impl Fn(&str) -> Option<bool>,
    ) -> Vec<String> {
        let inner = self.read();
        let targets: Box<dyn Iterator<Item = &ConnId>> = match target {
            TargetKind::Channel => {
                Box::new(inner.watchers.get(key).into_iter().flat_map(|w| w.keys()))
            }
            TargetKind::User => Box::new(inner.by_user.get(key).into_iter().flatten()),
            TargetKind::Presence => Box::new(inner.presence_subs.get(key).into_iter().flatten()),
        };
        let mut undecided: HashSet<&str> = HashSet::new();
        let mut refused = 0;
        let allowed = targets.filter(|id| {
            let Some(conn) = inner.conns.get(*id) else {
                return false;
            };
            match decide(&conn.user_id) {
                Some(true) => true,
                Some(false) => {
                    refused += 1;
                    false
                }
                None => {
                    undecided.insert(&conn.user_id);
                    false
                }
            }
        });
        self.deliver(&inner, allowed, event);
        self.refused.fetch_add(refused, Ordering::Relaxed);
        undecided.into_iter().map(str::to_string).collect()
    }

    fn deliver<'a>(
        &self,
        inner: &Inner,
        targets: impl Iterator<Item = &'a ConnId>,
        event: &Utf8Bytes,
    ) {
        let mut delivered = 0;
        for conn_id in targets {
            let Some(conn) = inner.conns.get(conn_id) else {
                continue;
            };
            if conn.revoked.load(Ordering::SeqCst) {
                continue;
            }
            match conn.tx.try_send(event.clone()) {
                Ok(()) => delivered += 1,
                Err(mpsc::error::TrySendError::Full(_)) => {
                    // A permit is stored if the session is not waiting yet, so the signal
                    // is never lost; repeated signals are harmless.
                    conn.slow.notify_one();
                    self.dropped_slow.fetch_add(1, Ordering::Relaxed);
                }
                Err(mpsc::error::TrySendError::Closed(_)) => {}
            }
        }
        self.delivered.fetch_add(delivered, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn per_user_cap_is_enforced_and_released() {
        let hub = Hub::new(4);
        let a = hub.register("u", 2).unwrap();
        let _b = hub.register("u", 2).unwrap();
        assert!(hub.register("u", 2).is_err());
        assert!(hub.unregister(&a.conn_id).is_some());
        assert!(hub.register("u", 2).is_ok());
    }

    #[test]
    fn watcher_counts_are_distinct_users_and_stop_reports_the_last_tab() {
        let hub = Hub::new(4);
        let a1 = hub.register("a", 5).unwrap();
        let a2 = hub.register("a", 5).unwrap();
        let b = hub.register("b", 5).unwrap();
        assert!(hub.watch(&a1.conn_id, "m:x").unwrap().user_changed);
        assert!(!hub.watch(&a2.conn_id, "m:x").unwrap().user_changed);
        assert_eq!(hub.watch(&b.conn_id, "m:x").unwrap().watcher_count, 2);
        let gone = hub.unregister(&a1.conn_id).unwrap();
        assert!(!gone.went_offline);
        assert!(!gone.stopped[0].user_changed);
        let gone = hub.unregister(&a2.conn_id).unwrap();
        assert!(gone.went_offline);
        assert_eq!(
            gone.stopped[0],
            WatchChange {
                cid: "m:x".into(),
                user_changed: true,
                watcher_count: 1
            }
        );
    }

    #[tokio::test]
    async fn wait_idle_resolves_once_the_last_connection_closes() {
        let hub = Arc::new(Hub::new(4));
        hub.wait_idle().await;
        let a = hub.register("a", 5).unwrap();
        let waiter = tokio::spawn({
            let hub = hub.clone();
            async move { hub.wait_idle().await }
        });
        tokio::task::yield_now().await;
        assert!(!waiter.is_finished());
        hub.unregister(&a.conn_id);
        tokio::time::timeout(std::time::Duration::from_secs(5), waiter)
            .await
            .unwrap()
            .unwrap();
    }

    #[tokio::test]
    async fn a_revoked_connection_gets_nothing_more_and_is_told_to_close() {
        let hub = Hub::new(8);
        let mut old = hub.register("a", 5).unwrap();
        hub.set_credentials(&old.conn_id, Some(100), None);
        let mut fresh = hub.register("a", 5).unwrap();
        hub.set_credentials(&fresh.conn_id, Some(200), Some("s1"));
        let mut other = hub.register("c", 5).unwrap();
        for r in [&old, &fresh, &other] {
            hub.watch(&r.conn_id, "m:x");
        }
        let before = |user: &str, before| Revocation::UserTokensBefore {
            user_id: user.into(),
            before,
        };
        assert_eq!(hub.revoke(&before("a", 150)), 1);
        assert!(old.revoked.load(Ordering::SeqCst));
        assert!(!fresh.revoked.load(Ordering::SeqCst));
        hub.send_to_channel("m:x", &Utf8Bytes::from("{}"));
        hub.send_to_user("a", &Utf8Bytes::from("{}"));
        assert!(
            old.rx.try_recv().is_err(),
            "nothing reaches a revoked connection"
        );
        assert!(fresh.rx.try_recv().is_ok() && fresh.rx.try_recv().is_ok());
        assert!(other.rx.try_recv().is_ok());
        // The stored permit makes this return at once.
        old.restart.notified().await;
        assert_eq!(
            hub.local_credentials().len(),
            2,
            "a revoked connection is not re-checked"
        );

        assert_eq!(
            hub.revoke(&Revocation::Session {
                sid: "other".into()
            }),
            0
        );
        assert_eq!(
            hub.revoke(&Revocation::SessionsOf {
                user_id: "a".into()
            }),
            1
        );
        assert!(fresh.revoked.load(Ordering::SeqCst));
        // A token without `iat` counts as issued before any cut-off.
        assert_eq!(hub.revoke(&Revocation::AllTokensBefore { before: 1 }), 1);
        assert!(other.revoked.load(Ordering::SeqCst));
        assert!(hub.local_credentials().is_empty());
    }

    #[tokio::test]
    async fn a_full_queue_signals_the_slow_connection_without_blocking() {
        let hub = Hub::new(2);
        let reg = hub.register("slow", 5).unwrap();
        hub.watch(&reg.conn_id, "m:x");
        let event = Utf8Bytes::from("{}");
        for _ in 0..5 {
            hub.send_to_channel("m:x", &event);
        }
        assert_eq!(hub.delivered.load(Ordering::Relaxed), 2);
        assert_eq!(hub.dropped_slow.load(Ordering::Relaxed), 3);
        // The stored permit makes this return at once.
        reg.slow.notified().await;
    }
}
