//! The read decision for every delivery: an event that carries a channel's content reaches a
//! connection only if its user may read that channel. The answer comes from a
//! [`ReadPolicy`] the edge supplies (the same Cedar policy, `ReadChannel`, and the same facts
//! as REST: `ws::read_policy`); this module caches it.
//!
//! The decision is made on the node that delivers, for its own connections: events from other
//! nodes pass the same gate as local ones. Decisions are cached per channel and user (the
//! policy engine below caches per role and facts), so a delivery to N watchers costs N hash
//! lookups under one read lock; the first delivery to a user in a channel loads the channel,
//! its members and the users once for the whole batch.
//!
//! Invalidation: membership, channel-role, channel and user-role changes call
//! [`Gate::invalidate`] on the node that made them and publish the same invalidation to every
//! other node through the bus (`bus::Bus::invalidate_reads`). A load that raced with an
//! invalidation is not cached (a generation counter tells). As a bound on anything missed
//! (a frame dropped while Redis is down), every cached channel expires after [`TTL`], and the
//! whole cache is dropped when the bus goes down or comes back.
//!
//! The lock is synchronous: lookups and invalidations are a few map operations with no
//! `.await` inside, and delivery (also synchronous, see [`super::local`]) takes it for reading.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

/// How long a channel's cached decisions are trusted without an invalidation.
pub const TTL: Duration = Duration::from_secs(30);
/// Bound on cached decisions (users × channels); past it the cache starts over.
const LIMIT: usize = 200_000;
/// Loads that raced with an invalidation are retried this many times, then used uncached.
const ATTEMPTS: usize = 3;

/// Event types that reach a user whatever the read decision: they carry no channel content,
/// only the fact that concerns the recipient (`notification.removed_from_channel`: the cid and
/// the recipient's own profile; they are no longer a member, so the decision is deny).
/// `notification.invited` / `notification.invite_rejected` (`chat::invite`): the channel's
/// cid, id, type and member count, the recipient's own member row and who invited them; an
/// invitee may not read until they accept.
const UNGATED: &[&str] = &[
    "notification.removed_from_channel",
    "notification.invited",
    "notification.invite_rejected",
];

/// The channel whose read decision an event sent to a user needs, if any: every event that
/// names a channel (`cid`) is gated, except the few in [`UNGATED`].
pub fn channel_of<'a>(kind: Option<&str>, cid: Option<&'a str>) -> Option<&'a str> {
    let cid = cid.filter(|c| !c.is_empty() && *c != "*")?;
    if kind.is_some_and(|k| UNGATED.contains(&k)) {
        return None;
    }
    Some(cid)
}

/// [`channel_of`] for serialised event bytes (events from other nodes).
pub fn channel_of_bytes(event: &[u8]) -> Result<Option<String>, serde_json::Error> {
    #[derive(serde::Deserialize)]
    struct Head {
        #[serde(rename = "type")]
        kind: Option<String>,
        cid: Option<String>,
    }
    let head: Head = serde_json::from_slice(event)?;
    Ok(channel_of(head.kind.as_deref(), head.cid.as_deref()).map(str::to_string))
}

struct CidEntry {
    loaded_at: Instant,
    users: HashMap<String, bool>,
}

#[derive(Default)]
struct Inner {
    /// Bumped by every invalidation: a load that saw another value may be stale.
    generation: u64,
    by_cid: HashMap<String, CidEntry>,
    len: usize,
}

/// What an invalidation covers: one user in one channel, a whole channel, one user in every
/// channel, or everything.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Scope {
    pub cid: Option<String>,
    pub user_id: Option<String>,
}

/// Who may read a channel: the policy's answer for each user, from the channel, its members
/// and the users as stored now. An error makes the delivery fail closed.
#[async_trait::async_trait]
pub trait ReadPolicy: Send + Sync {
    async fn decide(&self, cid: &str, user_ids: &[String])
    -> anyhow::Result<HashMap<String, bool>>;
}

pub struct Gate {
    policy: Arc<dyn ReadPolicy>,
    inner: RwLock<Inner>,
    /// Loads from the database (cache misses, one per channel and batch of users).
    pub loads: AtomicU64,
}

/// Cached decisions for one channel, as a delivery reads them.
pub struct Cached<'a> {
    entry: Option<&'a CidEntry>,
}

impl Cached<'_> {
    /// The decision for `user_id`, if cached.
    pub fn get(&self, user_id: &str) -> Option<bool> {
        self.entry.and_then(|e| e.users.get(user_id).copied())
    }
}

impl Gate {
    pub fn new(policy: Arc<dyn ReadPolicy>) -> Self {
        Self {
            policy,
            inner: RwLock::default(),
            loads: AtomicU64::new(0),
        }
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, Inner> {
        self.inner.read().unwrap_or_else(|e| e.into_inner())
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, Inner> {
        self.inner.write().unwrap_or_else(|e| e.into_inner())
    }

    /// Runs `f` with the cached decisions of `cid` (none if expired).
    pub fn with_cached<R>(&self, cid: &str, f: impl FnOnce(Cached<'_>) -> R) -> R {
        let inner = self.read();
        let entry = inner
            .by_cid
            .get(cid)
            .filter(|e| e.loaded_at.elapsed() < TTL);
        f(Cached { entry })
    }

    /// Whether `user_id` may read `cid` (cached, or loaded and cached).
    pub async fn may_read(&self, cid: &str, user_id: &str) -> bool {
        if let Some(d) = self.with_cached(cid, |c| c.get(user_id)) {
            return d;
        }
        self.load(cid, &[user_id.to_string()])
            .await
            .get(user_id)
            .copied()
            .unwrap_or(false)
    }

    /// Decides for `user_ids` in `cid` from the database and caches the answers (unless an
    /// invalidation raced with the load). Errors deny: a delivery fails closed.
    pub async fn load(&self, cid: &str, user_ids: &[String]) -> HashMap<String, bool> {
        self.loads.fetch_add(1, Ordering::Relaxed);
        let mut last = HashMap::new();
        for _ in 0..ATTEMPTS {
            let generation = self.read().generation;
            let decisions = match self.policy.decide(cid, user_ids).await {
                Ok(d) => d,
                Err(e) => {
                    tracing::warn!(cid = %cid, error = %e, "could not load read decisions; refusing the delivery");
                    return HashMap::new();
                }
            };
            let mut inner = self.write();
            if inner.generation == generation {
                if inner.len + decisions.len() > LIMIT {
                    inner.by_cid.clear();
                    inner.len = 0;
                }
                let fresh = inner
                    .by_cid
                    .get(cid)
                    .is_some_and(|e| e.loaded_at.elapsed() < TTL);
                if !fresh && let Some(old) = inner.by_cid.remove(cid) {
                    inner.len -= old.users.len();
                }
                let entry = inner
                    .by_cid
                    .entry(cid.to_string())
                    .or_insert_with(|| CidEntry {
                        loaded_at: Instant::now(),
                        users: HashMap::new(),
                    });
                let before = entry.users.len();
                entry
                    .users
                    .extend(decisions.iter().map(|(u, d)| (u.clone(), *d)));
                let added = entry.users.len() - before;
                inner.len += added;
                return decisions;
            }
            last = decisions;
        }
        last
    }

    /// Forgets the decisions `scope` covers (after the change is stored).
    pub fn invalidate(&self, scope: &Scope) {
        let mut inner = self.write();
        inner.generation += 1;
        match (&scope.cid, &scope.user_id) {
            (Some(cid), Some(user)) => {
                let removed = inner
                    .by_cid
                    .get_mut(cid)
                    .is_some_and(|e| e.users.remove(user).is_some());
                if removed {
                    inner.len -= 1;
                }
            }
            (Some(cid), None) => {
                if let Some(e) = inner.by_cid.remove(cid) {
                    inner.len -= e.users.len();
                }
            }
            (None, Some(user)) => {
                let mut removed = 0;
                for e in inner.by_cid.values_mut() {
                    removed += usize::from(e.users.remove(user).is_some());
                }
                inner.len -= removed;
            }
            (None, None) => {
                inner.by_cid.clear();
                inner.len = 0;
            }
        }
    }

    /// Forgets everything (the bus went down or came back: invalidations may be lost).
    pub fn clear(&self) {
        self.invalidate(&Scope {
            cid: None,
            user_id: None,
        });
    }

    /// Cached decisions (for tests and metrics).
    pub fn cached_len(&self) -> usize {
        self.read().len
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_naming_a_channel_are_gated_but_the_removal_notice() {
        assert_eq!(
            channel_of(Some("notification.message_new"), Some("phi:x")),
            Some("phi:x")
        );
        assert_eq!(channel_of(Some("health.check"), Some("*")), None);
        assert_eq!(channel_of(Some("user.updated"), None), None);
        assert_eq!(
            channel_of(Some("notification.removed_from_channel"), Some("m:x")),
            None
        );
        assert_eq!(
            channel_of_bytes(br#"{"type":"message.new","cid":"m:x","message":{"cid":"y"}}"#)
                .unwrap(),
            Some("m:x".to_string())
        );
        assert!(channel_of_bytes(b"not json").is_err());
    }
}
