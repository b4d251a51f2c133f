//! Who watches which channel, and whose presence each connection follows.

use std::collections::HashSet;

use super::{ConnId, Hub, WatchChange};

impl Hub {
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
}
