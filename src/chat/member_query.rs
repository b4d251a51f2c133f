//! `GET /members` (channel.queryMembers): a channel's members, filtered, sorted and paged
//! as Stream documents it. The channel is named by `type` and `id`, or for a distinct
//! channel by its `members`; reading its members needs `ReadChannel`.

use std::collections::HashMap;

use serde::Deserialize;
use serde_json::{Value, json};

use crate::chat::{Actor, Ctx, Error, Result, channel, filter, parse_cid, view};
use crate::store::{MemberRow, UserRow};
use crate::time::{parse_rfc3339, rfc3339};

#[derive(Debug, Default, Deserialize)]
pub struct QueryMembers {
    #[serde(rename = "type")]
    pub kind: Option<String>,
    pub id: Option<String>,
    #[serde(default)]
    pub members: Option<Value>,
    #[serde(default)]
    pub filter_conditions: Value,
    #[serde(default)]
    pub sort: Value,
    pub limit: Option<i64>,
    pub offset: Option<i64>,
    pub user_id_gt: Option<String>,
    pub user_id_gte: Option<String>,
    pub user_id_lt: Option<String>,
    pub user_id_lte: Option<String>,
    pub created_at_after: Option<String>,
    pub created_at_after_or_equal: Option<String>,
    pub created_at_before: Option<String>,
    pub created_at_before_or_equal: Option<String>,
}

const DEFAULT_LIMIT: i64 = 100;
const MAX_LIMIT: i64 = 300;
const MAX_OFFSET: i64 = 10_000;

/// The document a member filter is evaluated on: the member as the wire shows it, plus the
/// names Stream's member filters use (`id`, `name`, `role`, `invite`, `joined`, `banned`,
/// `last_active`).
fn member_doc(m: &MemberRow, user: Option<&UserRow>, rendered: Value) -> Value {
    let mut doc = rendered;
    doc["id"] = m.user_id.clone().into();
    doc["cid"] = m.cid.clone().into();
    doc["joined"] = m.is_active().into();
    doc["invite"] = doc["status"].clone();
    doc["pinned"] = m.pinned_at.is_some().into();
    doc["archived"] = m.archived_at.is_some().into();
    if let Some(u) = user {
        doc["name"] = u.data.get("name").cloned().unwrap_or(Value::Null);
        doc["role"] = u.role.clone().into();
        doc["banned"] = u.banned.into();
        if let Some(t) = u.last_active {
            doc["last_active"] = rfc3339(t).into();
        }
    }
    doc
}

fn time_bound(name: &str, v: Option<&String>) -> Result<Option<i64>> {
    v.map(|t| {
        parse_rfc3339(t).ok_or_else(|| Error::input(format!("{name} must be an RFC 3339 time")))
    })
    .transpose()
}

/// The cid a query names: `type` with `id`, or `type` with the members of a distinct
/// channel.
fn cid_of(q: &QueryMembers) -> Result<String> {
    let kind = q
        .kind
        .as_deref()
        .filter(|k| !k.is_empty())
        .ok_or_else(|| Error::input("type is required"))?;
    let cid = match (&q.id, &q.members) {
        (Some(id), _) if !id.is_empty() => format!("{kind}:{id}"),
        (_, Some(members)) => {
            let list = channel::parse_members(Some(members))?;
            if list.len() < 2 {
                return Err(Error::input("members must name at least 2 users"));
            }
            format!("{kind}:{}", channel::distinct_id(&list))
        }
        _ => return Err(Error::input("either id or members is required")),
    };
    parse_cid(&cid)?;
    Ok(cid)
}

/// `GET /members`: the members of one channel the actor may read.
pub async fn query_members(ctx: &Ctx<'_>, actor: &Actor, q: &QueryMembers) -> Result<Value> {
    let cid = cid_of(q)?;
    let filter = filter::parse(&q.filter_conditions)?;
    let mut sort = filter::parse_sort(&q.sort)?;
    sort.push(filter::SortKey {
        field: "created_at".into(),
        descending: false,
    });
    sort.push(filter::SortKey {
        field: "user_id".into(),
        descending: false,
    });
    let limit = q.limit.unwrap_or(DEFAULT_LIMIT);
    let offset = q.offset.unwrap_or(0);
    if !(0..=MAX_LIMIT).contains(&limit) || !(0..=MAX_OFFSET).contains(&offset) {
        return Err(Error::input(format!(
            "limit must be 0–{MAX_LIMIT} and offset 0–{MAX_OFFSET}"
        )));
    }
    let after = time_bound("created_at_after", q.created_at_after.as_ref())?;
    let after_eq = time_bound(
        "created_at_after_or_equal",
        q.created_at_after_or_equal.as_ref(),
    )?;
    let before = time_bound("created_at_before", q.created_at_before.as_ref())?;
    let before_eq = time_bound(
        "created_at_before_or_equal",
        q.created_at_before_or_equal.as_ref(),
    )?;

    let loaded = channel::load(ctx, actor, &cid).await?;
    loaded.require_read()?;
    let members: Vec<MemberRow> = ctx
        .store
        .channels
        .find_members(std::slice::from_ref(&cid))
        .await?
        .into_iter()
        .filter(|m| {
            let id = m.user_id.as_str();
            q.user_id_gt.as_deref().is_none_or(|b| id > b)
                && q.user_id_gte.as_deref().is_none_or(|b| id >= b)
                && q.user_id_lt.as_deref().is_none_or(|b| id < b)
                && q.user_id_lte.as_deref().is_none_or(|b| id <= b)
                && after.is_none_or(|t| m.created_at > t)
                && after_eq.is_none_or(|t| m.created_at >= t)
                && before.is_none_or(|t| m.created_at < t)
                && before_eq.is_none_or(|t| m.created_at <= t)
        })
        .collect();
    let ids: Vec<String> = members.iter().map(|m| m.user_id.clone()).collect();
    let users: HashMap<String, UserRow> = ctx
        .store
        .users
        .find_users(&ids)
        .await?
        .into_iter()
        .map(|u| (u.id.clone(), u))
        .collect();
    let mut docs: Vec<(Value, Value)> = members
        .iter()
        .filter_map(|m| {
            let user = users.get(&m.user_id);
            let user_json = user
                .map(|u| view::user_json(ctx, u))
                .unwrap_or_else(|| json!({ "id": m.user_id }));
            let rendered = view::member_json(m, user_json);
            let doc = member_doc(m, user, rendered.clone());
            filter.matches(&doc).then_some((doc, rendered))
        })
        .collect();
    docs.sort_by(|a, b| filter::compare_docs(&a.0, &b.0, &sort));
    let page: Vec<Value> = docs
        .into_iter()
        .skip(offset as usize)
        .take(limit as usize)
        .map(|(_, rendered)| rendered)
        .collect();
    Ok(json!({ "members": page }))
}
