//! Presence as Stream delivers it: a user going online or offline is announced to every
//! connection watching a channel the user is a member of (whatever `presence` flag it sent),
//! and to the connections that subscribed to the user's presence (`presence: true`).
//!
//! The node where the change happens names the user's channels once; every node (this one
//! directly, the others through one frame on the cluster bus, [`TargetKind::Members`])
//! delivers to its own connections, each at most once, and a watcher only if its user may
//! read the watched channel by the same read decision every channel event passes
//! ([`super::gate`]). So a user learns the presence of those they share a readable channel
//! with, and of no one else.

use std::collections::HashSet;

use axum::extract::ws::Utf8Bytes;
use serde_json::Value;

use super::Bus;
use super::local::{ConnId, Hub};
use super::wire::TargetKind;

/// The most bytes of channel ids one frame's key carries (the wire's key length is a u16);
/// a user in more channels is announced in several frames.
const KEY_BUDGET: usize = 60_000;

/// The keys of the frames that announce `user_id`'s presence to the watchers of `cids`:
/// the user id, then channel ids, separated by `\n` (neither may contain one). Always at
/// least one, so the user's presence subscribers hear of it even without channels.
pub fn presence_keys(user_id: &str, cids: &[String]) -> Vec<String> {
    let mut keys = Vec::new();
    let mut key = user_id.to_string();
    for cid in cids.iter().filter(|c| !c.is_empty() && !c.contains('\n')) {
        if key.len() + 1 + cid.len() > KEY_BUDGET && key.len() > user_id.len() {
            keys.push(std::mem::replace(&mut key, user_id.to_string()));
        }
        key.push('\n');
        key.push_str(cid);
    }
    keys.push(key);
    keys
}

/// The user and channel ids of a [`presence_keys`] key.
pub fn parse_key(key: &str) -> Option<(&str, Vec<&str>)> {
    let mut parts = key.split('\n');
    let user_id = parts.next().filter(|u| !u.is_empty())?;
    Some((user_id, parts.filter(|c| !c.is_empty()).collect()))
}

impl Bus {
    /// Announces a change of `user_id`'s presence (`user.presence.changed`) to the watchers
    /// of `cids` (the user's channels) who may read them, and to the user's presence
    /// subscribers, on every node.
    pub async fn to_member_watchers(&self, user_id: &str, cids: &[String], event: &Value) {
        let bytes = Utf8Bytes::from(event.to_string());
        for key in presence_keys(user_id, cids) {
            self.publish_bytes(TargetKind::Members, &key, None, &bytes)
                .await;
        }
    }
}

/// Delivers a [`TargetKind::Members`] frame to this node's connections.
pub(super) async fn deliver(hub: &Hub, key: &str, bytes: &Utf8Bytes) {
    let Some((user_id, cids)) = parse_key(key) else {
        return;
    };
    let (subscribers, watchers) = hub.presence_targets(user_id, &cids);
    let mut to: HashSet<ConnId> = subscribers.into_iter().collect();
    if let Some(gate) = hub.gate() {
        for (conn, viewer, watched) in watchers {
            if to.contains(&conn) {
                continue;
            }
            for cid in watched {
                if gate.may_read(&cid, &viewer).await {
                    to.insert(conn);
                    break;
                }
            }
        }
    }
    hub.send_to_connections(to.iter(), bytes);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_carry_the_user_then_the_channels_and_split_when_long() {
        assert_eq!(presence_keys("u", &[]), vec!["u".to_string()]);
        let key = &presence_keys("u", &["messaging:a".into(), "team:b".into()])[0];
        assert_eq!(parse_key(key), Some(("u", vec!["messaging:a", "team:b"])));
        let many: Vec<String> = (0..10_000).map(|i| format!("messaging:c{i}")).collect();
        let keys = presence_keys("u", &many);
        assert!(keys.len() > 1);
        assert!(keys.iter().all(|k| k.len() <= KEY_BUDGET));
        let back: Vec<&str> = keys
            .iter()
            .flat_map(|k| parse_key(k).map(|(_, c)| c).unwrap_or_default())
            .collect();
        assert_eq!(back.len(), many.len());
        assert_eq!(parse_key(""), None);
    }
}
