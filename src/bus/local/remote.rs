//! What the other nodes report about themselves: how many connections each user holds
//! there, and which users watch which channels there. Each node publishes absolute counts
//! for its own state (idempotent, so a lost or repeated report heals with the next one);
//! this replica answers "is the user online / watching anywhere" without a network call.

use std::collections::HashMap;

pub type NodeId = String;

#[derive(Default)]
pub struct RemoteView {
    /// user → node → open connections there.
    connections: HashMap<String, HashMap<NodeId, usize>>,
    /// cid → user → node → connections watching there.
    watching: HashMap<String, HashMap<String, HashMap<NodeId, usize>>>,
}

fn set_count(map: &mut HashMap<NodeId, usize>, node: &str, count: usize) {
    if count == 0 {
        map.remove(node);
    } else {
        map.insert(node.to_string(), count);
    }
}

impl RemoteView {
    pub fn set_connections(&mut self, node: &str, user: &str, count: usize) {
        let per_node = self.connections.entry(user.to_string()).or_default();
        set_count(per_node, node, count);
        if per_node.is_empty() {
            self.connections.remove(user);
        }
    }

    pub fn set_watching(&mut self, node: &str, cid: &str, user: &str, count: usize) {
        let users = self.watching.entry(cid.to_string()).or_default();
        let per_node = users.entry(user.to_string()).or_default();
        set_count(per_node, node, count);
        if per_node.is_empty() {
            users.remove(user);
        }
        if users.is_empty() {
            self.watching.remove(cid);
        }
    }

    /// Drops everything a node reported (it stopped, or the bus is down).
    pub fn forget_node(&mut self, node: &str) {
        self.connections.retain(|_, per_node| {
            per_node.remove(node);
            !per_node.is_empty()
        });
        self.watching.retain(|_, users| {
            users.retain(|_, per_node| {
                per_node.remove(node);
                !per_node.is_empty()
            });
            !users.is_empty()
        });
    }

    pub fn clear(&mut self) {
        self.connections.clear();
        self.watching.clear();
    }

    pub fn connections(&self, user: &str) -> usize {
        self.connections.get(user).map_or(0, |n| n.values().sum())
    }

    pub fn total_connections(&self) -> usize {
        self.connections.values().flat_map(|n| n.values()).sum()
    }

    pub fn is_watching(&self, cid: &str, user: &str) -> bool {
        self.watching.get(cid).is_some_and(|u| u.contains_key(user))
    }

    pub fn watchers(&self, cid: &str) -> impl Iterator<Item = &String> {
        self.watching.get(cid).into_iter().flat_map(|u| u.keys())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_are_absolute_per_node_and_forgotten_with_the_node() {
        let mut v = RemoteView::default();
        v.set_connections("n1", "u", 2);
        v.set_connections("n2", "u", 1);
        v.set_connections("n1", "u", 2);
        assert_eq!(v.connections("u"), 3);
        v.set_watching("n1", "m:x", "u", 1);
        assert!(v.is_watching("m:x", "u"));
        v.forget_node("n1");
        assert_eq!(v.connections("u"), 1);
        assert!(!v.is_watching("m:x", "u"));
        v.set_connections("n2", "u", 0);
        assert_eq!(v.total_connections(), 0);
    }
}
