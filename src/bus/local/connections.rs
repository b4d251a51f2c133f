//! Opening and closing connections, the credentials they were opened with, and revoking
//! them.

use std::collections::HashSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use tokio::sync::{Notify, mpsc};

use super::{
    Conn, ConnId, Credentials, Hub, LocalChange, Registration, TooManyConnections, Unregistered,
    WatchChange,
};
use crate::bus::wire::Revocation;

impl Hub {
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

    /// The connection's user, if the connection is open.
    pub fn connection_user(&self, conn_id: &str) -> Option<String> {
        self.read().conns.get(conn_id).map(|c| c.user_id.clone())
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
}
