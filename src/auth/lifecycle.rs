//! Who may still use the service: deactivation and reactivation (Stream's
//! `POST /users/{id}/deactivate`, `/reactivate`, and the batch forms as tasks), restoring
//! soft-deleted users, token revocation per user and app-wide
//! (`revoke_tokens_issued_before`), and the re-check of open connections while the bus is
//! down.
//!
//! Every change is made durable in the database first (the token check reads it on every
//! node, bus or not), then revoked on every node through the bus (the call returns once
//! every live node has closed the sockets concerned), then announced and audited.

use crate::chat::user::save_user;
use crate::chat::view;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::audit::{AuditEvent, EventType};
use crate::auth::Ctx;
use crate::auth::error::Error;
use crate::bus::wire::Revocation;
use crate::chat::Actor;
use crate::store::UserRow;
use crate::time::{now_micros, rfc3339};

/// How often open connections are re-checked against the database while the bus is down
/// (revocations made on other nodes cannot reach this one meanwhile).
pub const SWEEP_INTERVAL: Duration = Duration::from_secs(2);

async fn existing_user(state: &Ctx<'_>, user_id: &str) -> crate::auth::Result<UserRow> {
    crate::chat::validate_user_id(user_id)?;
    state
        .store
        .users
        .find_user(user_id)
        .await?
        .ok_or_else(|| Error::not_found(format!("user {user_id} does not exist")))
}

fn state_event(actor: &Actor, user_id: &str, change: &str, task_id: Option<&str>) -> AuditEvent {
    let mut event = actor
        .audit(EventType::UserState)
        .subject(user_id)
        .object("user", user_id)
        .meta("state", change);
    if let Some(t) = task_id {
        event = event.meta("task_id", t);
    }
    event
}

async fn announce(state: &Ctx<'_>, kind: &str, actor: &Actor, user: &UserRow) {
    let mut event = json!({
        "type": kind,
        "user": view::user_json(&state.chat, user),
        "created_at": rfc3339(now_micros()),
    });
    if let Some(by) = &actor.user {
        event["created_by"] = view::user_json(&state.chat, by);
    }
    state.bus.to_presence_subscribers(&user.id, &event).await;
}

/// Deactivates a user: refused on REST and WebSocket whatever their token, their sockets
/// closed on every node, `user.deactivated` sent to their presence subscribers.
pub async fn deactivate_user(
    state: &Ctx<'_>,
    actor: &Actor,
    user_id: &str,
    task_id: Option<&str>,
) -> crate::auth::Result<UserRow> {
    let mut user = existing_user(state, user_id).await?;
    if user.deactivated_at.is_none() {
        let now = now_micros();
        user.deactivated_at = Some(now);
        user.updated_at = now;
        let record = state_event(actor, user_id, "deactivated", task_id);
        user = save_user(&state.chat, &user, [record]).await?;
    }
    state
        .bus
        .revoke(Revocation::User {
            user_id: user_id.to_string(),
        })
        .await;
    announce(state, "user.deactivated", actor, &user).await;
    Ok(user)
}

/// Reactivates a deactivated user (a deleted one must be restored first); `name`, if
/// given, replaces their name. Tokens revoked meanwhile stay revoked.
pub async fn reactivate_user(
    state: &Ctx<'_>,
    actor: &Actor,
    user_id: &str,
    name: Option<&str>,
    task_id: Option<&str>,
) -> crate::auth::Result<UserRow> {
    let mut user = existing_user(state, user_id).await?;
    if user.deleted_at.is_some() {
        return Err(Error::input(format!(
            "user {user_id} is deleted: restore them first"
        )));
    }
    if user.deactivated_at.is_none() && name.is_none() {
        return Ok(user);
    }
    user.deactivated_at = None;
    user.updated_at = now_micros();
    if let Some(name) = name {
        user.data.insert("name".into(), name.into());
    }
    let record = state_event(actor, user_id, "reactivated", task_id);
    let user = save_user(&state.chat, &user, [record]).await?;
    announce(state, "user.reactivated", actor, &user).await;
    Ok(user)
}

/// Restores soft-deleted users (Stream's `POST /users/restore`): they may connect again
/// with tokens issued from now on. What erasure shredded stays unreadable.
pub async fn restore_users(
    state: &Ctx<'_>,
    actor: &Actor,
    user_ids: &[String],
) -> crate::auth::Result<()> {
    let mut users = Vec::with_capacity(user_ids.len());
    for id in user_ids {
        let user = existing_user(state, id).await?;
        if user.deleted_at.is_none() {
            return Err(Error::input(format!("user {id} is not deleted")));
        }
        users.push(user);
    }
    for mut user in users {
        user.deleted_at = None;
        user.deactivated_at = None;
        user.updated_at = now_micros();
        let record = state_event(actor, &user.id, "restored", None);
        save_user(&state.chat, &user, [record]).await?;
    }
    Ok(())
}

/// Reads Stream's `revoke_tokens_issued_before`: an RFC 3339 time, rounded up to the
/// second (token `iat`s are whole seconds, and a token issued in the same second as a
/// fractional cut-off was issued before it), or `null` to lift the revocation (`None`).
pub fn parse_cutoff(value: &Value) -> crate::auth::Result<Option<i64>> {
    Ok(crate::chat::user::parse_cutoff(value)?)
}

/// Revokes a user's tokens issued before `before` (Unix seconds; `None` lifts the
/// revocation): refused from now on on every node, and their sockets opened with such a
/// token closed on every node.
pub async fn revoke_user_tokens(
    state: &Ctx<'_>,
    actor: &Actor,
    user_id: &str,
    before: Option<i64>,
) -> crate::auth::Result<()> {
    state.authz.authorize(
        actor.principal(),
        "ManageRoles",
        &crate::authz::Resource::App,
    )?;
    let cutoff = before.unwrap_or(0);
    state
        .store
        .identity
        .set_tokens_revoked(user_id, cutoff)
        .await?;
    let record = AuditEvent::new(EventType::SessionRevoked)
        .actor_opt(actor.user_id())
        .subject(user_id)
        .meta("scope", "tokens")
        .meta(
            "reason",
            if before.is_some() {
                "revoke_tokens_issued_before"
            } else {
                "revocation_lifted"
            },
        );
    state.audit.record(record).await?;
    if let Some(before) = before {
        state
            .bus
            .revoke(Revocation::UserTokensBefore {
                user_id: user_id.to_string(),
                before,
            })
            .await;
    }
    Ok(())
}

/// App-wide `revoke_tokens_issued_before` (Stream's `revokeTokens`, through
/// `PATCH /app`): every user token issued before the cut-off is refused, and the sockets
/// opened with one are closed, on every node. `None` lifts it.
pub async fn revoke_app_tokens(
    state: &Ctx<'_>,
    actor: &Actor,
    before: Option<i64>,
) -> crate::auth::Result<()> {
    state.authz.authorize(
        actor.principal(),
        "ManageRoles",
        &crate::authz::Resource::App,
    )?;
    match before {
        Some(secs) => {
            state
                .store
                .settings
                .upsert_setting(super::APP_TOKENS_REVOKED, &secs.to_string())
                .await?
        }
        None => {
            state
                .store
                .settings
                .delete_setting(super::APP_TOKENS_REVOKED)
                .await?
        }
    }
    let record = actor
        .audit(EventType::ConfigChange)
        .object("setting", super::APP_TOKENS_REVOKED)
        .meta("setting", super::APP_TOKENS_REVOKED);
    state.audit.record(record).await?;
    if let Some(before) = before {
        state
            .bus
            .revoke(Revocation::AllTokensBefore { before })
            .await;
    }
    Ok(())
}

/// Re-checks every open connection of this node against the database (token revoked,
/// session ended, user deactivated or deleted) and revokes those that fail. Returns how
/// many were revoked. A database error leaves the connection alone (checked again next
/// time).
pub async fn recheck_connections(state: &Ctx<'_>) -> usize {
    let mut revoked = 0;
    // Connections opened with the same credentials (tabs of one user) are checked once.
    let mut verdicts: std::collections::HashMap<(String, Option<i64>, Option<String>), bool> =
        std::collections::HashMap::new();
    for c in state.bus.local_credentials() {
        let key = (c.user_id, c.iat, c.session);
        let still_valid = match verdicts.get(&key) {
            Some(v) => *v,
            None => {
                let claims = super::token::Claims {
                    user_id: Some(key.0.clone()),
                    iat: key.1,
                    sid: key.2.clone(),
                    ..Default::default()
                };
                let v = match super::check_revocation(state, &claims).await {
                    Ok(()) => true,
                    Err(Error::Token(_)) => false,
                    Err(e) => {
                        tracing::warn!(error = %e, "could not re-check a connection's token");
                        true
                    }
                };
                verdicts.insert(key, v);
                v
            }
        };
        if !still_valid && state.bus.revoke_connection(&c.conn_id) {
            revoked += 1;
        }
    }
    revoked
}

/// While the cross-node bus is down, re-checks this node's open connections every
/// [`SWEEP_INTERVAL`]: revocations made on other nodes then still close them within a few
/// seconds. Stops with the shutdown signal.
pub fn spawn_sweep(host: impl crate::auth::Host) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let state = host.auth();
        let mut shutdown = state.shutdown.clone();
        let mut tick = tokio::time::interval(SWEEP_INTERVAL);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = tick.tick() => {}
                _ = shutdown.wait_for(|s| *s) => return,
            }
            if state.bus.health() == crate::bus::BusHealth::Down {
                let n = recheck_connections(&state).await;
                if n > 0 {
                    tracing::info!(connections = n, "bus down: re-check revoked connections");
                }
            }
        }
    })
}

/// Which way a batch task changes its users.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum Change {
    Deactivate,
    Reactivate,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct UsersPayload {
    pub user_ids: Vec<String>,
    pub change: Change,
    /// The acting user named by `created_by_id`, if any (the API secret acts).
    pub requested_by: Option<String>,
}

/// How the edge answers an error: whether the caller is at fault, the code and the
/// message it sends (a task fails with them).
pub type Answer = fn(Error) -> (bool, i32, String);

/// `users.state`: Stream's `POST /users/deactivate` and `/users/reactivate` as a task.
/// The checkpoint is the number of users done; each step is idempotent. `H` is the host the
/// workers run in, which lends the authentication context.
pub struct UsersStateJob<H> {
    /// How a refused step is described in the task's error.
    pub answer: Answer,
    host: std::marker::PhantomData<fn() -> H>,
}

impl<H> UsersStateJob<H> {
    pub fn new(answer: Answer) -> Self {
        Self {
            answer,
            host: std::marker::PhantomData,
        }
    }
}

impl<H: crate::auth::Host> crate::jobs::Job for UsersStateJob<H> {
    const KIND: &'static str = "users.state";
    type Payload = UsersPayload;

    async fn run(
        &self,
        ctx: &mut crate::jobs::JobContext<UsersPayload>,
    ) -> Result<Value, crate::jobs::JobError> {
        use crate::jobs::JobError;
        let p = ctx.payload().clone();
        let total = p.user_ids.len() as i64;
        let start: usize = ctx.checkpoint::<usize>()?.unwrap_or(0);
        let task_id = ctx.id().to_string();
        let host: H = ctx.host()?;
        let state = host.auth();
        let by = match &p.requested_by {
            Some(id) => state
                .store
                .users
                .find_user(id)
                .await
                .map_err(|e| JobError::Retryable(e.to_string()))?,
            None => None,
        };
        let actor = Actor::server(by);
        for (i, user_id) in p.user_ids.iter().enumerate().skip(start) {
            if ctx.cancelled().await? {
                return Err(JobError::Cancelled);
            }
            let done = match p.change {
                Change::Deactivate => deactivate_user(&state, &actor, user_id, Some(&task_id))
                    .await
                    .map(|_| ()),
                Change::Reactivate => {
                    reactivate_user(&state, &actor, user_id, None, Some(&task_id))
                        .await
                        .map(|_| ())
                }
            };
            if let Err(e) = done {
                return Err(JobError::of_step((self.answer)(e), i + 1, "changed"));
            }
            ctx.save_checkpoint(&(i + 1)).await?;
            ctx.progress(i as i64 + 1, total).await?;
        }
        let key = match p.change {
            Change::Deactivate => "deactivated_users",
            Change::Reactivate => "reactivated_users",
        };
        Ok(json!({ key: p.user_ids.len() }))
    }
}

/// Registers the identity job kinds with this process's workers.
pub fn register_jobs<H: crate::auth::Host>(jobs: &crate::jobs::Jobs, answer: Answer) {
    jobs.register(UsersStateJob::<H>::new(answer));
}
