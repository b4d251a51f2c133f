//! Queuing serialised events for connections: by channel, user, presence or connection id,
//! and gated by a read decision.

use std::collections::HashSet;
use std::sync::atomic::Ordering;

use axum::extract::ws::Utf8Bytes;
use tokio::sync::mpsc;

use super::{ConnId, Hub, Inner};
use crate::bus::wire::TargetKind;

impl Hub {
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

    /// Who hears of `user_id`'s presence on this node: the connections subscribed to it,
    /// and each other connection watching some of `cids` with its user and those channels
    /// (to be decided by the read decision).
    #[allow(clippy::type_complexity)]
    pub fn presence_targets(
        &self,
        user_id: &str,
        cids: &[&str],
    ) -> (Vec<ConnId>, Vec<(ConnId, String, Vec<String>)>) {
        let inner = self.read();
        let subscribers: Vec<ConnId> = inner
            .presence_subs
            .get(user_id)
            .map(|s| s.iter().cloned().collect())
            .unwrap_or_default();
        let mut watchers: std::collections::HashMap<ConnId, (String, Vec<String>)> =
            std::collections::HashMap::new();
        for cid in cids {
            for (conn, viewer) in inner.watchers.get(*cid).into_iter().flatten() {
                watchers
                    .entry(conn.clone())
                    .or_insert_with(|| (viewer.clone(), Vec::new()))
                    .1
                    .push((*cid).to_string());
            }
        }
        let watchers = watchers
            .into_iter()
            .map(|(conn, (viewer, cids))| (conn, viewer, cids))
            .collect();
        (subscribers, watchers)
    }

    /// Queues `event` for each of these connections (those still open).
    pub fn send_to_connections<'a>(
        &self,
        conn_ids: impl Iterator<Item = &'a ConnId>,
        event: &Utf8Bytes,
    ) {
        let inner = self.read();
        self.deliver(&inner, conn_ids, event);
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
            // Delivered by `bus::presence`, never through this path.
            TargetKind::Members => Box::new(std::iter::empty()),
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
