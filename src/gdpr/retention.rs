//! Retention by channel type (`policies/retention.toml`): messages older than their
//! type's `keep_days` are deleted by the `gdpr.retention` job, daily ([`schedule`]) and on
//! demand (`POST /compliance/retention/run`). A dry run deletes nothing and reports what a
//! run would delete.
//!
//! Legal holds win: messages of a held channel and messages written by a held user are
//! skipped (checked again inside each deleting transaction, so a hold placed mid-run
//! counts), reported as `held_skipped`, and recorded in the audit log as a denied
//! `retention.run`. Each deleted batch (at most [`BATCH`] messages) commits in one
//! transaction with its own `retention.run` record.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::audit::{AuditEvent, EventType, Outcome};
use crate::jobs::{Job, JobContext, JobError};
use crate::time::{Micros, now_micros, rfc3339};

/// The policy built into the binary.
pub const EMBEDDED: &str = include_str!("../../policies/retention.toml");
/// Names a policy file to use instead of the embedded one.
pub const FILE_ENV: &str = "WARD_RETENTION_FILE";
/// Seconds between scheduled runs (default a day; 0 turns scheduling off).
pub const INTERVAL_ENV: &str = "WARD_RETENTION_INTERVAL_SECS";
/// The most messages one transaction deletes.
pub const BATCH: i64 = 500;
/// A century: longer limits are a mistake in the file (and would overflow the cutoff).
const MAX_KEEP_DAYS: u32 = 36_500;
const DAY_MICROS: Micros = 86_400 * 1_000_000;

/// The retention policy: per channel type, how many days messages are kept (`None`: kept
/// indefinitely).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Policy {
    pub channel_types: BTreeMap<String, TypeRule>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TypeRule {
    pub keep_days: Option<u32>,
}

impl Policy {
    /// Parses and validates a policy: every table names a built-in channel type, and every
    /// limit is 1 to 36 500 days.
    pub fn parse(text: &str) -> anyhow::Result<Self> {
        let policy: Policy = toml::from_str(text)
            .map_err(|e| anyhow::anyhow!("the retention policy does not parse: {e}"))?;
        for (kind, rule) in &policy.channel_types {
            if crate::chat::channel_type::lookup(kind).is_none() {
                anyhow::bail!("the retention policy names an unknown channel type {kind:?}");
            }
            if let Some(days) = rule.keep_days
                && !(1..=MAX_KEEP_DAYS).contains(&days)
            {
                anyhow::bail!(
                    "the retention policy keeps {kind} messages {days} days: \
                     keep_days must be 1 to {MAX_KEEP_DAYS}"
                );
            }
        }
        Ok(policy)
    }

    /// The policy in force: the file named by `WARD_RETENTION_FILE`, else the embedded one.
    pub fn load() -> anyhow::Result<Self> {
        match std::env::var_os(FILE_ENV) {
            Some(path) => {
                let text = std::fs::read_to_string(&path).map_err(|e| {
                    anyhow::anyhow!("cannot read the retention policy {path:?}: {e}")
                })?;
                Self::parse(&text)
            }
            None => Self::parse(EMBEDDED),
        }
    }

    /// The channel types with a limit, and their limits in days.
    pub fn limits(&self) -> impl Iterator<Item = (&str, u32)> {
        self.channel_types
            .iter()
            .filter_map(|(kind, rule)| Some((kind.as_str(), rule.keep_days?)))
    }

    /// As `GET /compliance/retention` shows it: unlisted built-in types are kept too.
    pub fn to_json(&self) -> Value {
        let types: serde_json::Map<String, Value> = crate::chat::channel_type::ALL
            .iter()
            .map(|c| {
                let days = self.channel_types.get(c.name).and_then(|r| r.keep_days);
                (c.name.to_string(), json!({ "keep_days": days }))
            })
            .collect();
        json!({ "channel_types": types })
    }
}

/// Messages of a type kept `keep_days` are expired when created before this.
fn cutoff(started_at: Micros, keep_days: u32) -> Micros {
    started_at - i64::from(keep_days) * DAY_MICROS
}

/// `gdpr.retention`: deletes (or, as a dry run, counts) expired messages, type by type.
pub struct RetentionJob<H>(std::marker::PhantomData<fn() -> H>);

impl<H> RetentionJob<H> {
    pub fn new() -> Self {
        Self(std::marker::PhantomData)
    }
}

impl<H> Default for RetentionJob<H> {
    fn default() -> Self {
        Self::new()
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RetentionPayload {
    #[serde(default)]
    pub dry_run: bool,
    /// The compliance officer who asked; `None` for the schedule or the API secret.
    #[serde(default)]
    pub requested_by: Option<String>,
}

/// The resume cursor: the run's clock (so a resumed run keeps the same cutoffs), the types
/// finished, and what was deleted so far.
#[derive(Debug, Default, Serialize, Deserialize)]
struct Checkpoint {
    started_at: Micros,
    types_done: usize,
    deleted: BTreeMap<String, i64>,
    held_skipped: BTreeMap<String, i64>,
}

/// How often in a row a batch may find its messages changed (held or deleted meanwhile)
/// before the attempt gives up and is retried later.
const MAX_CHANGED_BATCHES: u32 = 20;

impl<H: crate::gdpr::Host> Job for RetentionJob<H> {
    const KIND: &'static str = "gdpr.retention";
    type Payload = RetentionPayload;

    async fn run(&self, ctx: &mut JobContext<RetentionPayload>) -> Result<Value, JobError> {
        let policy = Policy::load().map_err(|e| JobError::Fatal(e.to_string()))?;
        let limits: Vec<(String, u32)> = policy
            .limits()
            .map(|(kind, days)| (kind.to_string(), days))
            .collect();
        let p = ctx.payload().clone();
        let mut cp = ctx
            .checkpoint::<Checkpoint>()?
            .unwrap_or_else(|| Checkpoint {
                started_at: now_micros(),
                ..Checkpoint::default()
            });
        if p.dry_run {
            return dry_run::<H>(ctx, &p, &limits, cp.started_at).await;
        }
        let host: H = ctx.host()?;
        let state = host.gdpr();
        let task_id = ctx.id().to_string();
        // Progress: what is deleted of what was deletable when this attempt started.
        let mut done: i64 = cp.deleted.values().sum();
        let mut total = done;
        for (kind, days) in limits.iter().skip(cp.types_done) {
            let counts = state
                .store
                .compliance
                .count_expired_messages(kind, cutoff(cp.started_at, *days))
                .await?;
            total += counts.expired - counts.held;
        }
        ctx.progress(done, total).await?;
        for (i, (kind, days)) in limits.iter().enumerate().skip(cp.types_done) {
            let before = cutoff(cp.started_at, *days);
            let mut changed = 0;
            loop {
                if ctx.cancelled().await? {
                    return Err(JobError::Cancelled);
                }
                let ids = state
                    .store
                    .compliance
                    .find_expired_message_ids(kind, before, BATCH)
                    .await?;
                if ids.is_empty() {
                    break;
                }
                let count = ids.len() as i64;
                let record = event(&p, &task_id, kind, false)
                    .meta("count", count)
                    .meta("held_skipped", 0);
                let deleted = state
                    .audit
                    .audited([record], async |records| {
                        let compliance = &state.store.compliance;
                        compliance.delete_unheld_messages(&ids, &records).await
                    })
                    .await?;
                if !deleted {
                    changed += 1;
                    if changed >= MAX_CHANGED_BATCHES {
                        return Err(JobError::Retryable(format!(
                            "expired {kind} messages kept changing during the run"
                        )));
                    }
                    continue;
                }
                *cp.deleted.entry(kind.clone()).or_default() += count;
                done += count;
                ctx.save_checkpoint(&cp).await?;
                ctx.progress(done, total.max(done)).await?;
            }
            // Whatever expired message is left, a hold keeps.
            let held = state
                .store
                .compliance
                .count_expired_messages(kind, before)
                .await?
                .expired;
            if held > 0 {
                state
                    .audit
                    .record(
                        event(&p, &task_id, kind, false)
                            .outcome(Outcome::Denied)
                            .meta("count", 0)
                            .meta("held_skipped", held),
                    )
                    .await
                    .map_err(|e| JobError::Retryable(e.to_string()))?;
            }
            cp.held_skipped.insert(kind.clone(), held);
            // Uploads (issue 16): expired files in channels of this type go too, unless a
            // legal hold covers their uploader or channel.
            if let Some(blobs) = state.blobs {
                let holds = state.store.compliance.find_holds(true).await?;
                blobs
                    .purge_expired(&*state.store.uploads, kind, before, 10_000, |u| {
                        holds.iter().any(|h| {
                            (h.scope == "user" && h.target == u.user_id)
                                || (h.scope == "channel" && Some(&h.target) == u.cid.as_ref())
                        })
                    })
                    .await
                    .map_err(|e| JobError::Retryable(e.to_string()))?;
            }
            cp.types_done = i + 1;
            ctx.save_checkpoint(&cp).await?;
        }
        let types: serde_json::Map<String, Value> = limits
            .iter()
            .map(|(kind, days)| {
                (
                    kind.clone(),
                    json!({
                        "keep_days": days,
                        "before": rfc3339(cutoff(cp.started_at, *days)),
                        "deleted": cp.deleted.get(kind).copied().unwrap_or(0),
                        "held_skipped": cp.held_skipped.get(kind).copied().unwrap_or(0),
                    }),
                )
            })
            .collect();
        Ok(json!({
            "dry_run": false,
            "deleted": done,
            "channel_types": types,
        }))
    }
}

/// Counts what a run would delete and what holds keep; deletes nothing. One `retention.run`
/// record (`dry_run=true`) per channel type with a limit.
async fn dry_run<H: crate::gdpr::Host>(
    ctx: &JobContext<RetentionPayload>,
    p: &RetentionPayload,
    limits: &[(String, u32)],
    started_at: Micros,
) -> Result<Value, JobError> {
    let host: H = ctx.host()?;
    let state = &host.gdpr();
    let mut types = serde_json::Map::new();
    let mut events = Vec::new();
    for (kind, days) in limits {
        let before = cutoff(started_at, *days);
        let counts = state
            .store
            .compliance
            .count_expired_messages(kind, before)
            .await?;
        let expired = counts.expired - counts.held;
        events.push(
            event(p, ctx.id(), kind, true)
                .meta("count", expired)
                .meta("held_skipped", counts.held),
        );
        types.insert(
            kind.clone(),
            json!({
                "keep_days": days,
                "before": rfc3339(before),
                "expired": expired,
                "held_skipped": counts.held,
            }),
        );
    }
    state
        .audit
        .record_all(events)
        .await
        .map_err(|e| JobError::Retryable(e.to_string()))?;
    Ok(json!({ "dry_run": true, "channel_types": types }))
}

fn event(p: &RetentionPayload, task_id: &str, kind: &str, dry_run: bool) -> AuditEvent {
    AuditEvent::new(EventType::RetentionRun)
        .actor_opt(p.requested_by.as_deref())
        .object("task", task_id)
        .meta("task_id", task_id)
        .meta("channel_type", kind)
        .meta("dry_run", dry_run)
}

/// The seconds between scheduled runs: `WARD_RETENTION_INTERVAL_SECS`, default a day.
fn interval_secs() -> u64 {
    std::env::var(INTERVAL_ENV)
        .ok()
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(86_400)
}

/// Enqueues a (deleting) retention run every `WARD_RETENTION_INTERVAL_SECS` seconds, the
/// first one interval after start (so restarts do not trigger runs); does nothing when the
/// interval is 0. The job queue runs it on whichever node claims it.
pub fn schedule<H: crate::gdpr::Host>(host: H) -> Option<tokio::task::JoinHandle<()>> {
    let secs = interval_secs();
    if secs == 0 {
        tracing::info!("retention runs are not scheduled ({INTERVAL_ENV}=0)");
        return None;
    }
    let period = Duration::from_secs(secs);
    Some(tokio::spawn(async move {
        let mut tick = tokio::time::interval_at(tokio::time::Instant::now() + period, period);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            let payload = RetentionPayload {
                dry_run: false,
                requested_by: None,
            };
            match crate::jobs::enqueue::<RetentionJob<H>>(&host, &payload, 5).await {
                Ok(task_id) => {
                    tracing::info!(%task_id, "scheduled retention run {task_id} enqueued");
                }
                Err(error) => {
                    tracing::warn!(%error, "the scheduled retention run was not enqueued: {error}");
                }
            }
        }
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_embedded_policy_is_valid_and_limits_phi_and_livestream() {
        let policy = Policy::parse(EMBEDDED).unwrap();
        let limits: Vec<_> = policy.limits().collect();
        assert_eq!(limits, [("livestream", 30), ("phi", 2190)]);
        assert_eq!(
            policy.to_json()["channel_types"]["messaging"]["keep_days"],
            Value::Null
        );
    }

    #[test]
    fn unknown_types_and_bad_limits_are_refused() {
        for bad in [
            "[channel_types.chatroom]\nkeep_days = 3",
            "[channel_types.livestream]\nkeep_days = 0",
            "[channel_types.livestream]\nkeep_days = -1",
            "[channel_types.livestream]\nkeep_days = 99999",
            "[channel_types.livestream]\nkeep = 3",
        ] {
            assert!(Policy::parse(bad).is_err(), "{bad}");
        }
    }
}
