//! What this node tells the other nodes about itself, and what it keeps of theirs.

use std::collections::HashSet;

use super::{Hub, LocalChange};

impl Hub {
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
}
