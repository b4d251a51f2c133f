//! Erasure of a data subject (GDPR Art. 17): refused while a legal hold covers the user or
//! a channel they wrote in; otherwise the subject's keys are crypto-shredded (their
//! content becomes unreadable everywhere, backups and exports included), their rows are
//! deleted or emptied as the request says, their sessions and tokens end, and a
//! certificate of erasure is appended to the audit log — which still verifies, because
//! entries only ever held pseudonyms and ciphertext. Last, the pseudonyms are unlinked, so
//! the log no longer names them. Every step is idempotent: a retried erasure finishes the
//! same way.

use serde_json::{Value, json};

use crate::audit::{AuditEvent, EventType, Outcome};
use crate::gdpr::Ctx;
use crate::gdpr::error::{Error, Result};
use crate::time::{now_micros, rfc3339};

/// Stream's delete modes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Soft,
    Hard,
}

impl Mode {
    /// Stream's `soft`, `pruning` (soft, with personal fields gone: the same here, since
    /// the data is shredded) and `hard`.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "soft" | "pruning" => Some(Self::Soft),
            "hard" => Some(Self::Hard),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, Copy)]
pub struct Options {
    pub user: Mode,
    pub messages: Mode,
}

/// Erases `user_id`; returns the certificate (also recorded in the audit log).
pub async fn erase_user(
    state: &Ctx<'_>,
    user_id: &str,
    options: Options,
    by: Option<&str>,
    task_id: Option<&str>,
) -> Result<Value> {
    let user = state.store.users.find_user(user_id).await?;
    let already = state
        .store
        .identity
        .find_tokens_revoked(user_id)
        .await?
        .is_some()
        && user.as_ref().is_none_or(|u| u.deleted_at.is_some());
    if user.is_none() && !already {
        return Err(Error::not_found(format!("user {user_id} does not exist")));
    }
    let holds = state
        .store
        .compliance
        .find_holds_covering_user(user_id)
        .await?;
    if !holds.is_empty() {
        let ids: Vec<&str> = holds.iter().map(|h| h.id.as_str()).collect();
        let mut refused = AuditEvent::new(EventType::GdprErase)
            .actor_opt(by)
            .subject(user_id)
            .object("user", user_id)
            .outcome(Outcome::Denied)
            .meta("step", "blocked_by_legal_hold");
        if let Some(t) = task_id {
            refused = refused.meta("task_id", t);
        }
        state.audit.record(refused).await?;
        return Err(Error::Held(format!(
            "a legal hold covers this user: {}",
            ids.join(", ")
        )));
    }
    let now = now_micros();
    // Tokens first, so nothing authenticates as the user while the rest happens, and their
    // sockets closed on every node.
    state
        .store
        .identity
        .set_tokens_revoked(user_id, now / 1_000_000 + 1)
        .await?;
    state
        .bus
        .revoke(crate::bus::wire::Revocation::User {
            user_id: user_id.to_string(),
        })
        .await;
    // The channels to tell (memberships go with the erasure).
    let channels: Vec<String> = state
        .store
        .channels
        .find_channels_for_member(user_id)
        .await?
        .into_iter()
        .map(|c| c.cid)
        .collect();
    // What the user deleted for themselves only (`delete_for_me`) goes with them.
    state
        .store
        .message_hides
        .delete_message_hides_of_user(user_id)
        .await?;
    // Chain what is queued while the directory still links the user (the certificate and
    // the earlier entries then carry the same pseudonym).
    state.audit.sync().await.map_err(Error::internal)?;
    let keys_destroyed = match &state.crypto {
        Some(crypto) => {
            let n = crate::crypto::shred_user(crypto, &*state.store.messages, state.audit, user_id)
                .await
                .map_err(Error::internal)?;
            // No node may keep serving the subject's plaintext from its key cache.
            state
                .bus
                .evict_keys(Some(&crate::crypto::sealed::user_subject(user_id)))
                .await;
            n
        }
        None => 0,
    };
    // Uploads (issue 16): the blobs are unreadable once the key is gone; delete them too.
    let uploads_deleted = match state.blobs {
        Some(blobs) => blobs
            .purge_user(&*state.store.uploads, user_id)
            .await
            .map_err(Error::internal)?,
        None => 0,
    };
    let message_ids = message_ids(state, user_id).await?;
    let mut certificate = AuditEvent::new(EventType::GdprErase)
        .actor_opt(by)
        .subject(user_id)
        .object("user", user_id)
        .meta("step", "completed")
        .meta("keys_destroyed", keys_destroyed);
    if let Some(t) = task_id {
        certificate = certificate.meta("task_id", t);
    }
    let counts = state
        .audit
        .audited([certificate], async |records| {
            state
                .store
                .compliance
                .erase_user_rows(
                    user_id,
                    options.messages == Mode::Hard,
                    options.user == Mode::Hard,
                    now,
                    &records,
                )
                .await
        })
        .await?;
    state.bus.invalidate_reads(None, Some(user_id));
    let size = state.audit.sync().await.map_err(Error::internal)?;
    let unlinked = state
        .audit
        .unlink("user", &[user_id.to_string()])
        .await
        .map_err(Error::internal)?
        + state
            .audit
            .unlink("message", &message_ids)
            .await
            .map_err(Error::internal)?;
    // Every node resolves pseudonyms afresh: none links new entries to the erased subject.
    state.bus.forget_pseudonyms().await;
    announce_deletion(state, user_id, options, now, &channels).await;
    Ok(json!({
        "user_id": user_id,
        "erased_at": rfc3339(now),
        "keys_destroyed": keys_destroyed,
        "uploads_deleted": uploads_deleted,
        "removed": counts,
        "pseudonyms_unlinked": unlinked,
        "audit_tree_size": size,
        "user": if options.user == Mode::Hard { "hard" } else { "soft" },
        "messages": if options.messages == Mode::Hard { "hard" } else { "soft" },
    }))
}

/// Stream's `user.deleted` (to the channels the user was in and their presence
/// subscribers) and `user.messages.deleted` (to each of those channels).
async fn announce_deletion(
    state: &Ctx<'_>,
    user_id: &str,
    options: Options,
    now: i64,
    cids: &[String],
) {
    let user = json!({"id": user_id, "deleted_at": rfc3339(now)});
    let hard_user = options.user == Mode::Hard;
    let hard_messages = options.messages == Mode::Hard;
    let mode = |m: Mode| if m == Mode::Hard { "hard" } else { "soft" };
    let deleted = json!({
        "type": "user.deleted",
        "user": user,
        "hard_delete": hard_user,
        "mark_messages_deleted": !hard_messages,
        "delete_user": mode(options.user),
        "delete_messages": mode(options.messages),
        "delete_conversation": "",
        "delete_conversation_channels": false,
        "created_at": rfc3339(now),
    });
    state.bus.to_presence_subscribers(user_id, &deleted).await;
    for cid in cids {
        let (channel_type, channel_id) = cid.split_once(':').unwrap_or(("", cid));
        let mut in_channel = deleted.clone();
        in_channel["cid"] = cid.as_str().into();
        state.bus.to_channel(cid, &in_channel).await;
        state
            .bus
            .to_channel(
                cid,
                &json!({
                    "type": "user.messages.deleted",
                    "user": user,
                    "hard_delete": hard_messages,
                    "cid": cid,
                    "channel_type": channel_type,
                    "channel_id": channel_id,
                    "created_at": rfc3339(now),
                }),
            )
            .await;
    }
}

/// Ids of every message the user wrote (for unlinking their pseudonyms).
async fn message_ids(state: &Ctx<'_>, user_id: &str) -> Result<Vec<String>> {
    let mut out = Vec::new();
    let mut after = String::new();
    loop {
        let page = state
            .store
            .messages
            .find_message_ids_by_author(user_id, &after, 1000)
            .await?;
        let Some(last) = page.last().cloned() else {
            return Ok(out);
        };
        after = last;
        out.extend(page);
    }
}

/// `gdpr.erase`: erases users one by one (Stream's `POST /users/delete` runs it as a task).
/// The checkpoint is the number of users done; each erasure is idempotent, so a worker
/// that dies mid-way is replaced by one that finishes with the same result.
pub struct EraseJob<H> {
    /// How a refused erasure is described in the task's error.
    pub answer: super::Answer,
    host: std::marker::PhantomData<fn() -> H>,
}

impl<H> EraseJob<H> {
    pub fn new(answer: super::Answer) -> Self {
        Self {
            answer,
            host: std::marker::PhantomData,
        }
    }
}

#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct ErasePayload {
    pub user_ids: Vec<String>,
    pub hard_user: bool,
    pub hard_messages: bool,
    pub requested_by: Option<String>,
}

impl<H: crate::gdpr::Host> crate::jobs::Job for EraseJob<H> {
    const KIND: &'static str = "gdpr.erase";
    type Payload = ErasePayload;

    async fn run(
        &self,
        ctx: &mut crate::jobs::JobContext<ErasePayload>,
    ) -> std::result::Result<Value, crate::jobs::JobError> {
        use crate::jobs::JobError;
        let p = ctx.payload().clone();
        let total = p.user_ids.len() as i64;
        let start: usize = ctx.checkpoint::<usize>()?.unwrap_or(0);
        let options = Options {
            user: if p.hard_user { Mode::Hard } else { Mode::Soft },
            messages: if p.hard_messages {
                Mode::Hard
            } else {
                Mode::Soft
            },
        };
        let task_id = ctx.id().to_string();
        for (i, user_id) in p.user_ids.iter().enumerate().skip(start) {
            if ctx.cancelled().await? {
                return Err(JobError::Cancelled);
            }
            let host: H = ctx.host()?;
            let state = host.gdpr();
            match erase_user(
                &state,
                user_id,
                options,
                p.requested_by.as_deref(),
                Some(&task_id),
            )
            .await
            {
                Ok(_) => {}
                Err(e) => return Err(JobError::of_step((self.answer)(e), i + 1, "erased")),
            }
            ctx.save_checkpoint(&(i + 1)).await?;
            ctx.progress(i as i64 + 1, total).await?;
        }
        Ok(json!({ "deleted_users": p.user_ids.len() }))
    }
}
