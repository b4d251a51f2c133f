//! User groups (Stream's `/usergroups`, used for group mentions). Signed-in users (not
//! guests or anonymous users) read and search them (`ReadUserGroups`); admins and
//! server-side callers manage them (`ManageUserGroups`), as `policies/chat.cedar` says.

use std::collections::HashMap;

use serde::Deserialize;
use serde_json::{Value, json};

use crate::audit::EventType;
use crate::chat::{Actor, Ctx, Error, Result, validate_message_id, validate_user_id};
use crate::store::{UserGroupMemberRow, UserGroupRow};
use crate::time::{now_micros, parse_rfc3339, rfc3339};

const MAX_NAME: usize = 255;
const MAX_DESCRIPTION: usize = 1024;
const MAX_MEMBERS_PER_CALL: usize = 100;
const MAX_PAGE: usize = 100;
/// How many groups a listing looks through.
const LIST_CAP: i64 = 10_000;

#[derive(Debug, Default, Deserialize)]
pub struct GroupBody {
    pub id: Option<String>,
    pub name: Option<String>,
    pub description: Option<String>,
    pub team_id: Option<String>,
    #[serde(default)]
    pub member_ids: Vec<String>,
    #[serde(default)]
    pub as_admin: bool,
}

/// The query parameters of `GET /usergroups` and `GET /usergroups/search`.
#[derive(Debug, Default)]
pub struct GroupListing {
    pub query: Option<String>,
    pub limit: Option<usize>,
    pub id_gt: Option<String>,
    pub name_gt: Option<String>,
    pub created_at_gt: Option<String>,
    pub team_id: Option<String>,
}

fn text(v: Option<&str>, what: &str, max: usize) -> Result<Option<String>> {
    match v {
        None => Ok(None),
        Some(s) if s.chars().count() <= max && !s.chars().any(char::is_control) => {
            Ok(Some(s.to_string()))
        }
        Some(_) => Err(Error::input(format!(
            "{what} must be at most {max} characters without control characters"
        ))),
    }
}

fn group_json(g: &UserGroupRow, members: &[&UserGroupMemberRow]) -> Value {
    let mut out = json!({
        "id": g.id,
        "name": g.name,
        "description": g.description,
        "created_at": rfc3339(g.created_at),
        "updated_at": rfc3339(g.updated_at),
        "members": members.iter().map(|m| json!({
            "group_id": m.group_id,
            "user_id": m.user_id,
            "is_admin": m.is_admin,
            "created_at": rfc3339(m.created_at),
        })).collect::<Vec<_>>(),
    });
    if !g.team_id.is_empty() {
        out["team_id"] = g.team_id.clone().into();
    }
    if let Some(by) = &g.created_by_id {
        out["created_by"] = by.clone().into();
    }
    out
}

async fn answer(ctx: &Ctx<'_>, g: &UserGroupRow) -> Result<Value> {
    let members = ctx
        .store
        .usergroups
        .find_group_members(std::slice::from_ref(&g.id))
        .await?;
    let refs: Vec<&UserGroupMemberRow> = members.iter().collect();
    Ok(json!({ "user_group": group_json(g, &refs) }))
}

async fn find(ctx: &Ctx<'_>, id: &str) -> Result<UserGroupRow> {
    validate_message_id(id)?;
    ctx.store
        .usergroups
        .find_group(id)
        .await?
        .ok_or_else(|| Error::not_found(format!("user group {id} does not exist")))
}

/// Members to add: existing users, at most 100 a call.
async fn member_rows(
    ctx: &Ctx<'_>,
    group_id: &str,
    ids: &[String],
    is_admin: bool,
) -> Result<Vec<UserGroupMemberRow>> {
    if ids.len() > MAX_MEMBERS_PER_CALL {
        return Err(Error::input(format!(
            "at most {MAX_MEMBERS_PER_CALL} members a call"
        )));
    }
    for id in ids {
        validate_user_id(id)?;
    }
    let found = ctx.store.users.find_users(ids).await?;
    if let Some(missing) = ids.iter().find(|id| !found.iter().any(|u| &u.id == *id)) {
        return Err(Error::input(format!("user {missing} does not exist")));
    }
    let now = now_micros();
    Ok(ids
        .iter()
        .map(|u| UserGroupMemberRow {
            group_id: group_id.to_string(),
            user_id: u.clone(),
            is_admin,
            created_at: now,
        })
        .collect())
}

/// `POST /usergroups`.
pub async fn create_group(ctx: &Ctx<'_>, actor: &Actor, body: &GroupBody) -> Result<Value> {
    actor.authorize_app(ctx, "ManageUserGroups")?;
    let id = match &body.id {
        Some(id) => {
            validate_message_id(id)?;
            id.clone()
        }
        None => uuid::Uuid::new_v4().to_string(),
    };
    let name = text(body.name.as_deref(), "name", MAX_NAME)?
        .filter(|n| !n.trim().is_empty())
        .ok_or_else(|| Error::input("name is required"))?;
    let now = now_micros();
    let group = UserGroupRow {
        id: id.clone(),
        name,
        description: text(body.description.as_deref(), "description", MAX_DESCRIPTION)?
            .unwrap_or_default(),
        team_id: text(body.team_id.as_deref(), "team_id", 255)?.unwrap_or_default(),
        created_by_id: actor.user_id().map(String::from),
        created_at: now,
        updated_at: now,
    };
    let members = member_rows(ctx, &id, &body.member_ids, false).await?;
    let record = actor
        .audit(EventType::ConfigChange)
        .meta("setting", "user_group")
        .object("user_group", id.clone());
    ctx.audit
        .audited([record], async |records| {
            ctx.store
                .usergroups
                .insert_group(&group, &members, &records)
                .await
        })
        .await?;
    answer(ctx, &group).await
}

/// `GET /usergroups/{id}`.
pub async fn get_group(ctx: &Ctx<'_>, actor: &Actor, id: &str) -> Result<Value> {
    actor.authorize_app(ctx, "ReadUserGroups")?;
    let g = find(ctx, id).await?;
    answer(ctx, &g).await
}

/// `PUT /usergroups/{id}`.
pub async fn update_group(
    ctx: &Ctx<'_>,
    actor: &Actor,
    id: &str,
    body: &GroupBody,
) -> Result<Value> {
    actor.authorize_app(ctx, "ManageUserGroups")?;
    let mut g = find(ctx, id).await?;
    if let Some(n) = text(body.name.as_deref(), "name", MAX_NAME)? {
        if n.trim().is_empty() {
            return Err(Error::input("name cannot be empty"));
        }
        g.name = n;
    }
    if let Some(d) = text(body.description.as_deref(), "description", MAX_DESCRIPTION)? {
        g.description = d;
    }
    if let Some(t) = text(body.team_id.as_deref(), "team_id", 255)? {
        g.team_id = t;
    }
    g.updated_at = now_micros();
    let record = actor
        .audit(EventType::ConfigChange)
        .meta("setting", "user_group")
        .object("user_group", g.id.clone());
    ctx.audit
        .audited([record], async |records| {
            ctx.store.usergroups.update_group(&g, &records).await
        })
        .await?;
    answer(ctx, &g).await
}

/// `DELETE /usergroups/{id}`.
pub async fn delete_group(ctx: &Ctx<'_>, actor: &Actor, id: &str) -> Result<Value> {
    actor.authorize_app(ctx, "ManageUserGroups")?;
    validate_message_id(id)?;
    let record = actor
        .audit(EventType::ConfigChange)
        .meta("setting", "user_group")
        .object("user_group", id.to_string());
    let removed = ctx
        .audit
        .audited([record], async |records| {
            ctx.store.usergroups.delete_group(id, &records).await
        })
        .await?;
    if !removed {
        return Err(Error::not_found(format!("user group {id} does not exist")));
    }
    Ok(json!({}))
}

/// `POST /usergroups/{id}/members` and `POST /usergroups/{id}/members/delete`.
pub async fn change_members(
    ctx: &Ctx<'_>,
    actor: &Actor,
    id: &str,
    body: &GroupBody,
    add: bool,
) -> Result<Value> {
    actor.authorize_app(ctx, "ManageUserGroups")?;
    let g = find(ctx, id).await?;
    if body.member_ids.is_empty() {
        return Err(Error::input("member_ids is required"));
    }
    let record = actor
        .audit(EventType::ConfigChange)
        .meta("setting", "user_group")
        .object("user_group", g.id.clone());
    if add {
        let rows = member_rows(ctx, &g.id, &body.member_ids, body.as_admin).await?;
        ctx.audit
            .audited([record], async |records| {
                ctx.store
                    .usergroups
                    .upsert_group_members(&rows, &records)
                    .await
            })
            .await?;
    } else {
        if body.member_ids.len() > MAX_MEMBERS_PER_CALL {
            return Err(Error::input(format!(
                "at most {MAX_MEMBERS_PER_CALL} members a call"
            )));
        }
        ctx.audit
            .audited([record], async |records| {
                ctx.store
                    .usergroups
                    .delete_group_members(&g.id, &body.member_ids, &records)
                    .await
            })
            .await?;
    }
    answer(ctx, &g).await
}

/// `GET /usergroups` (by id, after `id_gt` / `created_at_gt`) and `GET /usergroups/search`
/// (names starting with `query`, case-insensitive, after `name_gt`).
pub async fn list_groups(
    ctx: &Ctx<'_>,
    actor: &Actor,
    q: &GroupListing,
    search: bool,
) -> Result<Value> {
    actor.authorize_app(ctx, "ReadUserGroups")?;
    let limit = q.limit.unwrap_or(25).clamp(1, MAX_PAGE);
    let created_after = match &q.created_at_gt {
        None => None,
        Some(t) => Some(
            parse_rfc3339(t)
                .ok_or_else(|| Error::input("created_at_gt must be an RFC 3339 time"))?,
        ),
    };
    let prefix = match (search, &q.query) {
        (true, Some(p)) if !p.is_empty() && p.chars().count() <= MAX_NAME => Some(p.to_lowercase()),
        (true, _) => return Err(Error::input("query is required (at most 255 characters)")),
        (false, _) => None,
    };
    let mut groups: Vec<UserGroupRow> = ctx
        .store
        .usergroups
        .find_groups(LIST_CAP)
        .await?
        .into_iter()
        .filter(|g| q.team_id.as_deref().is_none_or(|t| g.team_id == t))
        .filter(|g| q.id_gt.as_deref().is_none_or(|after| g.id.as_str() > after))
        .filter(|g| created_after.is_none_or(|after| g.created_at > after))
        .filter(|g| {
            prefix
                .as_deref()
                .is_none_or(|p| g.name.to_lowercase().starts_with(p))
        })
        .filter(|g| {
            q.name_gt
                .as_deref()
                .is_none_or(|after| g.name.as_str() > after)
        })
        .collect();
    if search {
        groups.sort_by(|a, b| a.name.cmp(&b.name).then(a.id.cmp(&b.id)));
    }
    groups.truncate(limit);
    let ids: Vec<String> = groups.iter().map(|g| g.id.clone()).collect();
    let members = ctx.store.usergroups.find_group_members(&ids).await?;
    let mut by_group: HashMap<&str, Vec<&UserGroupMemberRow>> = HashMap::new();
    for m in &members {
        by_group.entry(m.group_id.as_str()).or_default().push(m);
    }
    let list: Vec<Value> = groups
        .iter()
        .map(|g| group_json(g, by_group.get(g.id.as_str()).map_or(&[][..], |v| v)))
        .collect();
    Ok(json!({ "user_groups": list }))
}
