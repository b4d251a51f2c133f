//! Users: upsert (full replace), partial update, query, and the upsert a WebSocket connect
//! performs from `user_details`.

use crate::audit::{AuditEvent, EventType};
use std::collections::HashSet;

use serde::Deserialize;
use serde_json::{Map, Value, json};

use crate::chat::Ctx;
use crate::chat::{Actor, filter, validate_user_id, view};
use crate::chat::{Error, Result};
use crate::store::{Fields, UserRow};
use crate::time::now_micros;

/// Fields the server keeps itself; custom data cannot set them.
const RESERVED: &[&str] = &[
    "id",
    "role",
    "created_at",
    "updated_at",
    "last_active",
    "online",
    "banned",
    "deleted_at",
    "deactivated_at",
    "shadow_banned",
    "mutes",
    "channel_mutes",
    "total_unread_count",
    "unread_count",
    "unread_channels",
    "unread_threads",
    "devices",
    REVOKE_TOKENS_ISSUED_BEFORE,
];

/// Stream's limit on custom user data.
const MAX_USER_DATA_BYTES: usize = 5 * 1024;

pub const ROLES: &[&str] = &[
    "admin",
    "moderator",
    "user",
    "guest",
    "anonymous",
    "auditor",
    "compliance_officer",
];

pub(super) fn custom_fields(obj: &Map<String, Value>) -> Result<Fields> {
    let data: Fields = obj
        .iter()
        .filter(|(k, _)| !RESERVED.contains(&k.as_str()))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    check_size(&data)?;
    Ok(data)
}

fn check_size(data: &Fields) -> Result<()> {
    if Value::Object(data.clone()).to_string().len() > MAX_USER_DATA_BYTES {
        return Err(Error::input(
            "user data is too large: custom fields must stay under 5KB",
        ));
    }
    Ok(())
}

fn role_of(obj: &Map<String, Value>) -> Result<Option<String>> {
    match obj.get("role") {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(r)) if ROLES.contains(&r.as_str()) => Ok(Some(r.clone())),
        Some(other) => Err(Error::input(format!("role {other} is not a known role"))),
    }
}

/// `POST /users`: creates or fully replaces users. Server-side (or admin) only.
pub async fn upsert_users(
    ctx: &Ctx<'_>,
    actor: &Actor,
    users: &Map<String, Value>,
) -> Result<Value> {
    actor.authorize_app(ctx, "UpsertUsers")?;
    if users.len() > 100 {
        return Err(Error::input("at most 100 users can be upserted at once"));
    }
    let now = now_micros();
    let mut out = Map::new();
    for (key, obj) in users {
        let obj = obj
            .as_object()
            .ok_or_else(|| Error::input("each user must be an object"))?;
        let id = obj.get("id").and_then(Value::as_str).unwrap_or(key);
        validate_user_id(id)?;
        if id != key {
            return Err(Error::input(format!(
                "user id {id:?} does not match its key {key:?}"
            )));
        }
        let existing = ctx.store.users.find_user(id).await?;
        let row = UserRow {
            id: id.to_string(),
            role: role_of(obj)?
                .or(existing.as_ref().map(|u| u.role.clone()))
                .unwrap_or_else(|| "user".into()),
            data: custom_fields(obj)?,
            created_at: existing.as_ref().map_or(now, |u| u.created_at),
            updated_at: now,
            last_active: None,
            deactivated_at: existing.as_ref().and_then(|u| u.deactivated_at),
            deleted_at: existing.as_ref().and_then(|u| u.deleted_at),
            banned: obj.get("banned").and_then(Value::as_bool).unwrap_or(false),
        };
        let mut records = vec![
            actor
                .audit(EventType::UserUpsert)
                .subject(id)
                .object("user", id)
                .meta("created", existing.is_none()),
        ];
        if let Some(before) = &existing
            && before.role != row.role
        {
            records.push(
                actor
                    .audit(EventType::UserRole)
                    .subject(id)
                    .object("user", id)
                    .meta("from_role", &before.role)
                    .meta("to_role", &row.role),
            );
        }
        let stored = save_user(ctx, &row, records).await?;
        if existing
            .as_ref()
            .is_some_and(|before| before.role != stored.role)
        {
            ctx.bus.invalidate_reads(None, Some(&stored.id));
        }
        let rendered = view::user_json(ctx, &stored);
        announce_update(ctx, &stored.id, &rendered).await;
        out.insert(stored.id.clone(), rendered);
    }
    Ok(json!({ "users": out }))
}

#[derive(Debug, Deserialize)]
pub struct PartialUpdate {
    pub id: String,
    #[serde(default)]
    pub set: Map<String, Value>,
    #[serde(default)]
    pub unset: Vec<String>,
}

/// Most users one `PATCH /users` may update.
const MAX_BATCH: usize = 100;

/// Refuses a `PATCH /users` batch over the limit (checked before any update).
pub fn check_partial_update_batch(updates: &[PartialUpdate]) -> Result<()> {
    if updates.len() > MAX_BATCH {
        return Err(Error::input("at most 100 users can be updated at once"));
    }
    Ok(())
}

/// One checked `PATCH /users` update, not yet stored: the caller revokes the user's tokens
/// first when [`PreparedUpdate::revocation`] asks for it (chat does not know tokens), then
/// stores it with [`finish_partial_update`].
#[derive(Debug)]
pub struct PreparedUpdate {
    user: UserRow,
    sets_role: bool,
    /// `Some(cutoff)` when the update sets or lifts `revoke_tokens_issued_before` (the
    /// cut-off in Unix seconds, `None` to lift it).
    pub revocation: Option<Option<i64>>,
}

impl PreparedUpdate {
    /// The user being updated.
    pub fn user_id(&self) -> &str {
        &self.user.id
    }
}

/// `PATCH /users`, first step for one user: validates the update, asks the policies (users
/// may change only themselves and never their role), and applies it to the stored user.
pub async fn prepare_partial_update(
    ctx: &Ctx<'_>,
    actor: &Actor,
    update: &PartialUpdate,
) -> Result<PreparedUpdate> {
    validate_user_id(&update.id)?;
    let revocation = revocation_of(update)?;
    let sets_role = role_of(&update.set)?.is_some();
    ctx.authz.authorize(
        actor.principal(),
        "UpdateUser",
        &crate::authz::Resource::User {
            is_self: actor.user_id() == Some(update.id.as_str()),
            sets_role,
        },
    )?;
    let mut user = ctx
        .store
        .users
        .find_user(&update.id)
        .await?
        .ok_or_else(|| Error::not_found(format!("user {} does not exist", update.id)))?;
    if let Some(role) = role_of(&update.set)? {
        user.role = role;
    }
    for (k, v) in &update.set {
        if !RESERVED.contains(&k.as_str()) {
            user.data.insert(k.clone(), v.clone());
        }
    }
    for k in &update.unset {
        user.data.remove(k);
    }
    check_size(&user.data)?;
    Ok(PreparedUpdate {
        user,
        sets_role,
        revocation,
    })
}

/// `PATCH /users`, last step for one user: stores the prepared update with its record and
/// tells the user's watchers. Returns the user's id and the user as answered.
pub async fn finish_partial_update(
    ctx: &Ctx<'_>,
    actor: &Actor,
    prepared: PreparedUpdate,
) -> Result<(String, Value)> {
    let PreparedUpdate {
        mut user,
        sets_role,
        ..
    } = prepared;
    user.updated_at = now_micros();
    user.last_active = None;
    let record = actor
        .audit(EventType::UserUpsert)
        .subject(user.id.clone())
        .object("user", user.id.clone())
        .meta("created", false);
    let stored = save_user(ctx, &user, [record]).await?;
    if sets_role {
        ctx.bus.invalidate_reads(None, Some(&stored.id));
    }
    let rendered = view::user_json(ctx, &stored);
    announce_update(ctx, &stored.id, &rendered).await;
    Ok((stored.id, rendered))
}

/// The user field (and app setting) holding Stream's token revocation cut-off.
pub const REVOKE_TOKENS_ISSUED_BEFORE: &str = "revoke_tokens_issued_before";

/// Stream's `revokeUserToken`: `revoke_tokens_issued_before` set (a time, or `null` to
/// lift it) or unset. `None` when the update does not touch it.
fn revocation_of(update: &PartialUpdate) -> Result<Option<Option<i64>>> {
    const KEY: &str = REVOKE_TOKENS_ISSUED_BEFORE;
    if let Some(v) = update.set.get(KEY) {
        return parse_cutoff(v).map(Some);
    }
    Ok(update.unset.iter().any(|k| k == KEY).then_some(None))
}

/// Reads Stream's `revoke_tokens_issued_before`: an RFC 3339 time, rounded up to the
/// second (token `iat`s are whole seconds, and a token issued in the same second as a
/// fractional cut-off was issued before it), or `null` to lift the revocation (`None`).
pub fn parse_cutoff(value: &Value) -> Result<Option<i64>> {
    match value {
        Value::Null => Ok(None),
        Value::String(s) => {
            let t = chrono::DateTime::parse_from_rfc3339(s).map_err(|_| {
                Error::input("revoke_tokens_issued_before must be an RFC 3339 time or null")
            })?;
            let secs = t.timestamp() + i64::from(t.timestamp_subsec_nanos() > 0);
            if secs <= 0 {
                return Err(Error::input(
                    "revoke_tokens_issued_before must be after 1970",
                ));
            }
            Ok(Some(secs))
        }
        _ => Err(Error::input(
            "revoke_tokens_issued_before must be an RFC 3339 time or null",
        )),
    }
}

async fn announce_update(ctx: &Ctx<'_>, user_id: &str, user: &Value) {
    let event = json!({"type": "user.updated", "user": user, "created_at": crate::time::rfc3339(now_micros())});
    ctx.bus.to_presence_subscribers(user_id, &event).await;
    ctx.bus.to_user(user_id, &event).await;
}

#[derive(Debug, Default, Deserialize)]
pub struct QueryUsers {
    #[serde(default)]
    pub filter_conditions: Value,
    #[serde(default)]
    pub sort: Value,
    pub limit: Option<i64>,
    pub offset: Option<i64>,
    #[serde(default)]
    pub presence: bool,
    #[serde(default)]
    pub include_deactivated_users: bool,
}

/// Most users a query scans; a deployment beyond that needs indexed queries.
const USER_SCAN_CAP: i64 = 50_000;

/// `GET /users`: filters and sorts users; with `presence`, subscribes the connection to
/// their presence changes.
pub async fn query_users(
    ctx: &Ctx<'_>,
    actor: &Actor,
    q: &QueryUsers,
    conn_id: Option<&str>,
) -> Result<Value> {
    actor.authorize_app(ctx, "QueryUsers")?;
    let filter = filter::parse(&q.filter_conditions)?;
    let mut sort = filter::parse_sort(&q.sort)?;
    if sort.is_empty() {
        sort.push(filter::SortKey {
            field: "created_at".into(),
            descending: false,
        });
    }
    let limit = q.limit.unwrap_or(30);
    let offset = q.offset.unwrap_or(0);
    if !(0..=100).contains(&limit) || !(0..=10_000).contains(&offset) {
        return Err(Error::input("limit must be 0–100 and offset 0–10000"));
    }
    let candidates = match filter.required_values("id") {
        Some(ids) => ctx.store.users.find_users(&ids).await?,
        None => ctx.store.users.find_all_users(USER_SCAN_CAP).await?,
    };
    let mut docs: Vec<Value> = candidates
        .iter()
        .filter(|u| {
            u.deleted_at.is_none() && (q.include_deactivated_users || u.deactivated_at.is_none())
        })
        .map(|u| view::user_json(ctx, u))
        .filter(|doc| filter.matches(doc))
        .collect();
    docs.sort_by(|a, b| filter::compare_docs(a, b, &sort));
    let page: Vec<Value> = docs
        .into_iter()
        .skip(offset as usize)
        .take(limit as usize)
        .collect();
    if q.presence
        && let Some(conn) = conn_id
    {
        let ids: Vec<String> = page
            .iter()
            .filter_map(|u| u["id"].as_str().map(String::from))
            .collect();
        ctx.bus.subscribe_presence(conn, &ids);
    }
    Ok(json!({ "users": page }))
}

/// The user a WebSocket connect acts for: created if new, then partially updated from the
/// `user_details` the SDK sends (fields given are set; nothing is removed; never the role).
pub async fn upsert_on_connect(
    ctx: &Ctx<'_>,
    user_id: &str,
    details: Option<&Map<String, Value>>,
) -> Result<UserRow> {
    validate_user_id(user_id)?;
    let now = now_micros();
    let existing = ctx.store.users.find_user(user_id).await?;
    let mut user = existing.clone().unwrap_or_else(|| new_user(user_id, now));
    if let Some(details) = details {
        for (k, v) in details {
            if !RESERVED.contains(&k.as_str()) {
                user.data.insert(k.clone(), v.clone());
            }
        }
        check_size(&user.data)?;
    }
    user.last_active = Some(now);
    if existing.as_ref() != Some(&user) {
        user.updated_at = now;
        let record = AuditEvent::new(EventType::UserUpsert)
            .actor(user_id)
            .subject(user_id)
            .object("user", user_id)
            .meta("created", existing.is_none())
            .meta("via", "client");
        user = save_user(ctx, &user, [record]).await?;
    }
    Ok(user)
}

pub fn new_user(id: &str, now: i64) -> UserRow {
    UserRow {
        id: id.to_string(),
        role: "user".into(),
        data: Fields::new(),
        created_at: now,
        updated_at: now,
        last_active: None,
        deactivated_at: None,
        deleted_at: None,
        banned: false,
    }
}

/// The user behind a valid user token, created on first use (the token proves the app
/// vouches for the id).
pub async fn find_or_create(ctx: &Ctx<'_>, user_id: &str) -> Result<UserRow> {
    validate_user_id(user_id)?;
    if let Some(u) = ctx.store.users.find_user(user_id).await? {
        return Ok(u);
    }
    let record = AuditEvent::new(EventType::UserUpsert)
        .actor(user_id)
        .subject(user_id)
        .object("user", user_id)
        .meta("created", true)
        .meta("via", "client");
    save_user(ctx, &new_user(user_id, now_micros()), [record]).await
}

/// Stores a user row with the records of the change, in one transaction.
pub(crate) async fn save_user(
    ctx: &Ctx<'_>,
    user: &UserRow,
    records: impl IntoIterator<Item = AuditEvent>,
) -> Result<UserRow> {
    let stored = ctx
        .audit
        .audited(records, async |records| {
            ctx.store.users.upsert_user(user, &records).await
        })
        .await?;
    Ok(stored)
}

/// Users that must exist for an operation (channel members, mentions).
pub async fn require_existing(ctx: &Ctx<'_>, ids: &[String]) -> Result<()> {
    let found: HashSet<String> = ctx
        .store
        .users
        .find_users(ids)
        .await?
        .into_iter()
        .map(|u| u.id)
        .collect();
    let missing: Vec<&String> = ids.iter().filter(|id| !found.contains(*id)).collect();
    if missing.is_empty() {
        Ok(())
    } else {
        Err(Error::input(format!(
            "The following users are involved in this operation, but don't exist: {missing:?}"
        )))
    }
}

/// For a server-side caller, the actor becomes "the server acting for `named`" (who must
/// exist); user callers stay themselves (naming someone else is refused).
pub async fn act_as(ctx: &Ctx<'_>, actor: &Actor, named: Option<&str>) -> Result<Actor> {
    match (actor.server, named) {
        (true, Some(id)) => {
            validate_user_id(id)?;
            let user = ctx
                .store
                .users
                .find_user(id)
                .await?
                .ok_or_else(|| Error::input(format!("user {id} does not exist")))?;
            Ok(Actor::server(Some(user)))
        }
        (false, Some(id)) if actor.user_id() != Some(id) => Err(Error::not_allowed(
            "users cannot act on behalf of other users",
        )),
        _ => Ok(actor.clone()),
    }
}
