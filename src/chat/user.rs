//! Users: upsert (full replace), partial update, query, and the upsert a WebSocket connect
//! performs from `user_details`.

use crate::audit::{AuditEvent, EventType};
use std::collections::HashSet;

use serde::Deserialize;
use serde_json::{Map, Value, json};

use crate::app::AppState;
use crate::chat::{Actor, filter, validate_user_id, view};
use crate::http::error::{ApiError, ApiResult};
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
    "revoke_tokens_issued_before",
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

fn custom_fields(obj: &Map<String, Value>) -> ApiResult<Fields> {
    let data: Fields = obj
        .iter()
        .filter(|(k, _)| !RESERVED.contains(&k.as_str()))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    check_size(&data)?;
    Ok(data)
}

fn check_size(data: &Fields) -> ApiResult<()> {
    if Value::Object(data.clone()).to_string().len() > MAX_USER_DATA_BYTES {
        return Err(ApiError::input(
            "user data is too large: custom fields must stay under 5KB",
        ));
    }
    Ok(())
}

fn role_of(obj: &Map<String, Value>) -> ApiResult<Option<String>> {
    match obj.get("role") {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(r)) if ROLES.contains(&r.as_str()) => Ok(Some(r.clone())),
        Some(other) => Err(ApiError::input(format!("role {other} is not a known role"))),
    }
}

/// `POST /users`: creates or fully replaces users. Server-side (or admin) only.
pub async fn upsert_users(
    state: &AppState,
    actor: &Actor,
    users: &Map<String, Value>,
) -> ApiResult<Value> {
    actor.authorize_app(state, "UpsertUsers")?;
    if users.len() > 100 {
        return Err(ApiError::input("at most 100 users can be upserted at once"));
    }
    let now = now_micros();
    let mut out = Map::new();
    for (key, obj) in users {
        let obj = obj
            .as_object()
            .ok_or_else(|| ApiError::input("each user must be an object"))?;
        let id = obj.get("id").and_then(Value::as_str).unwrap_or(key);
        validate_user_id(id)?;
        if id != key {
            return Err(ApiError::input(format!(
                "user id {id:?} does not match its key {key:?}"
            )));
        }
        let existing = state.store.users.find_user(id).await?;
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
        let stored = save_user(state, &row, records).await?;
        if existing
            .as_ref()
            .is_some_and(|before| before.role != stored.role)
        {
            state.bus.invalidate_reads(None, Some(&stored.id));
        }
        let rendered = view::user_json(state, &stored);
        announce_update(state, &stored.id, &rendered).await;
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

/// `PATCH /users`: sets and unsets fields. Users may change only themselves and never
/// their role.
pub async fn partial_update_users(
    state: &AppState,
    actor: &Actor,
    updates: &[PartialUpdate],
) -> ApiResult<Value> {
    if updates.len() > 100 {
        return Err(ApiError::input("at most 100 users can be updated at once"));
    }
    let mut out = Map::new();
    for update in updates {
        validate_user_id(&update.id)?;
        let revocation = revocation_of(update)?;
        let sets_role = role_of(&update.set)?.is_some();
        state.authz.authorize(
            actor.principal(),
            "UpdateUser",
            &crate::authz::Resource::User {
                is_self: actor.user_id() == Some(update.id.as_str()),
                sets_role,
            },
        )?;
        let mut user = state
            .store
            .users
            .find_user(&update.id)
            .await?
            .ok_or_else(|| ApiError::not_found(format!("user {} does not exist", update.id)))?;
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
        if let Some(before) = revocation {
            crate::auth::lifecycle::revoke_user_tokens(&state.auth(), actor, &user.id, before)
                .await?;
        }
        user.updated_at = now_micros();
        user.last_active = None;
        let record = actor
            .audit(EventType::UserUpsert)
            .subject(user.id.clone())
            .object("user", user.id.clone())
            .meta("created", false);
        let stored = save_user(state, &user, [record]).await?;
        if sets_role {
            state.bus.invalidate_reads(None, Some(&stored.id));
        }
        let rendered = view::user_json(state, &stored);
        announce_update(state, &stored.id, &rendered).await;
        out.insert(stored.id.clone(), rendered);
    }
    Ok(json!({ "users": out }))
}

/// Stream's `revokeUserToken`: `revoke_tokens_issued_before` set (a time, or `null` to
/// lift it) or unset. `None` when the update does not touch it.
fn revocation_of(update: &PartialUpdate) -> ApiResult<Option<Option<i64>>> {
    const KEY: &str = crate::auth::APP_TOKENS_REVOKED;
    if let Some(v) = update.set.get(KEY) {
        return crate::auth::lifecycle::parse_cutoff(v)
            .map(Some)
            .map_err(Into::into);
    }
    Ok(update.unset.iter().any(|k| k == KEY).then_some(None))
}

async fn announce_update(state: &AppState, user_id: &str, user: &Value) {
    let event = json!({"type": "user.updated", "user": user, "created_at": crate::time::rfc3339(now_micros())});
    state.bus.to_presence_subscribers(user_id, &event).await;
    state.bus.to_user(user_id, &event).await;
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
    state: &AppState,
    actor: &Actor,
    q: &QueryUsers,
    conn_id: Option<&str>,
) -> ApiResult<Value> {
    actor.authorize_app(state, "QueryUsers")?;
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
        return Err(ApiError::input("limit must be 0–100 and offset 0–10000"));
    }
    let candidates = match filter.required_values("id") {
        Some(ids) => state.store.users.find_users(&ids).await?,
        None => state.store.users.find_all_users(USER_SCAN_CAP).await?,
    };
    let mut docs: Vec<Value> = candidates
        .iter()
        .filter(|u| {
            u.deleted_at.is_none() && (q.include_deactivated_users || u.deactivated_at.is_none())
        })
        .map(|u| view::user_json(state, u))
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
        state.bus.subscribe_presence(conn, &ids);
    }
    Ok(json!({ "users": page }))
}

/// The user a WebSocket connect acts for: created if new, then partially updated from the
/// `user_details` the SDK sends (fields given are set; nothing is removed; never the role).
pub async fn upsert_on_connect(
    state: &AppState,
    user_id: &str,
    details: Option<&Map<String, Value>>,
) -> ApiResult<UserRow> {
    validate_user_id(user_id)?;
    let now = now_micros();
    let existing = state.store.users.find_user(user_id).await?;
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
        user = save_user(state, &user, [record]).await?;
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
pub async fn find_or_create(state: &AppState, user_id: &str) -> ApiResult<UserRow> {
    validate_user_id(user_id)?;
    if let Some(u) = state.store.users.find_user(user_id).await? {
        return Ok(u);
    }
    let record = AuditEvent::new(EventType::UserUpsert)
        .actor(user_id)
        .subject(user_id)
        .object("user", user_id)
        .meta("created", true)
        .meta("via", "client");
    save_user(state, &new_user(user_id, now_micros()), [record]).await
}

/// Stores a user row with the records of the change, in one transaction.
pub(crate) async fn save_user(
    state: &AppState,
    user: &UserRow,
    records: impl IntoIterator<Item = AuditEvent>,
) -> ApiResult<UserRow> {
    let stored = state
        .audit
        .audited(records, async |records| {
            state.store.users.upsert_user(user, &records).await
        })
        .await?;
    Ok(stored)
}

/// Users that must exist for an operation (channel members, mentions).
pub async fn require_existing(state: &AppState, ids: &[String]) -> ApiResult<()> {
    let found: HashSet<String> = state
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
        Err(ApiError::input(format!(
            "The following users are involved in this operation, but don't exist: {missing:?}"
        )))
    }
}

/// For a server-side caller, the actor becomes "the server acting for `named`" (who must
/// exist); user callers stay themselves (naming someone else is refused).
pub async fn act_as(state: &AppState, actor: &Actor, named: Option<&str>) -> ApiResult<Actor> {
    match (actor.server, named) {
        (true, Some(id)) => {
            validate_user_id(id)?;
            let user = state
                .store
                .users
                .find_user(id)
                .await?
                .ok_or_else(|| ApiError::input(format!("user {id} does not exist")))?;
            Ok(Actor::server(Some(user)))
        }
        (false, Some(id)) if actor.user_id() != Some(id) => Err(ApiError::not_allowed(
            "users cannot act on behalf of other users",
        )),
        _ => Ok(actor.clone()),
    }
}
