//! Who reacted: `GET /messages/{id}/reactions` (limit/offset, oldest first) and
//! `POST /messages/{id}/reactions` (filter on `type`, `user_id`, `created_at`; sort;
//! `limit` and `next`). Only readers of the message's channel may ask.
//!
//! A message's reactions are read and ordered in memory (at most one per user and type, so
//! bounded by the channel's readers times the reaction types they use).

use std::collections::HashSet;

use serde::Deserialize;
use serde_json::{Value, json};

use crate::chat::message::{readable_message, record_reads};
use crate::chat::{Actor, Ctx, Error, Result, filter, view};
use crate::store::ReactionRow;

/// The filter fields a reaction query understands.
const FILTER_FIELDS: &[&str] = &["type", "user_id", "created_at"];

async fn rendered(ctx: &Ctx<'_>, rows: &[ReactionRow]) -> Result<Vec<Value>> {
    let ids: HashSet<String> = rows.iter().map(|r| r.user_id.clone()).collect();
    let users = view::users_by_id(ctx, ids).await?;
    Ok(rows
        .iter()
        .map(|r| {
            let user = users
                .get(&r.user_id)
                .cloned()
                .unwrap_or_else(|| json!({ "id": r.user_id }));
            view::reaction_json(r, user)
        })
        .collect())
}

async fn reactions_of(ctx: &Ctx<'_>, actor: &Actor, message_id: &str) -> Result<Vec<Value>> {
    let (m, loaded) = readable_message(ctx, actor, message_id).await?;
    if !loaded.config.reactions {
        return Err(Error::input(format!(
            "reactions are disabled for channel type {}",
            loaded.channel.kind
        )));
    }
    let rows = ctx
        .store
        .messages
        .find_reactions(std::slice::from_ref(&m.id))
        .await?;
    // Reactions carry custom data a reader could have typed: their reading is recorded.
    record_reads(ctx, actor, "reactions", [(m.cid.as_str(), 1)]).await?;
    rendered(ctx, &rows).await
}

/// `GET /messages/{id}/reactions`.
pub async fn get_reactions(
    ctx: &Ctx<'_>,
    actor: &Actor,
    message_id: &str,
    limit: Option<i64>,
    offset: Option<i64>,
) -> Result<Value> {
    let limit = limit.unwrap_or(10);
    let offset = offset.unwrap_or(0);
    if !(1..=300).contains(&limit) || !(0..=1000).contains(&offset) {
        return Err(Error::input("limit must be 1–300 and offset 0–1000"));
    }
    let all = reactions_of(ctx, actor, message_id).await?;
    let page: Vec<Value> = all
        .into_iter()
        .skip(offset as usize)
        .take(limit as usize)
        .collect();
    Ok(json!({ "reactions": page }))
}

#[derive(Debug, Default, Deserialize)]
pub struct QueryReactions {
    #[serde(default)]
    pub filter: Value,
    #[serde(default)]
    pub sort: Value,
    pub limit: Option<i64>,
    pub next: Option<String>,
    pub prev: Option<String>,
}

/// `POST /messages/{id}/reactions`: newest first unless sorted otherwise; `next` is an
/// opaque cursor to the following page.
pub async fn query_reactions(
    ctx: &Ctx<'_>,
    actor: &Actor,
    message_id: &str,
    q: &QueryReactions,
) -> Result<Value> {
    let limit = q.limit.unwrap_or(25);
    if !(1..=300).contains(&limit) {
        return Err(Error::input("limit must be 1–300"));
    }
    let conditions = match &q.filter {
        Value::Null => json!({}),
        v @ Value::Object(o) => {
            if let Some(k) = o.keys().find(|k| !FILTER_FIELDS.contains(&k.as_str())) {
                return Err(Error::input(format!("reactions cannot be filtered by {k}")));
            }
            v.clone()
        }
        _ => return Err(Error::input("filter must be an object")),
    };
    let parsed = filter::parse(&conditions)?;
    let mut sort = filter::parse_sort(&q.sort)?;
    if let Some(k) = sort.iter().find(|k| {
        !["created_at", "updated_at", "score", "type", "user_id"].contains(&k.field.as_str())
    }) {
        return Err(Error::input(format!(
            "reactions cannot be sorted by {}",
            k.field
        )));
    }
    if sort.is_empty() {
        sort.push(filter::SortKey {
            field: "created_at".into(),
            descending: true,
        });
    }
    for field in ["user_id", "type"] {
        sort.push(filter::SortKey {
            field: field.into(),
            descending: false,
        });
    }
    let cursor = |c: &Option<String>| -> Result<Option<i64>> {
        c.as_deref()
            .map(|s| {
                s.parse::<i64>()
                    .ok()
                    .filter(|n| (0..=100_000).contains(n))
                    .ok_or_else(|| Error::input("next is not a valid cursor"))
            })
            .transpose()
    };
    let offset = match (cursor(&q.next)?, cursor(&q.prev)?) {
        (Some(n), _) => n,
        (None, Some(p)) => (p - limit).max(0),
        (None, None) => 0,
    };
    let mut all = reactions_of(ctx, actor, message_id).await?;
    all.retain(|r| parsed.matches(r));
    all.sort_by(|a, b| filter::compare_docs(a, b, &sort));
    let total = all.len() as i64;
    let page: Vec<Value> = all
        .into_iter()
        .skip(offset as usize)
        .take(limit as usize)
        .collect();
    let mut reply = json!({ "reactions": page });
    if offset + limit < total {
        reply["next"] = (offset + limit).to_string().into();
    }
    if offset > 0 {
        reply["prev"] = offset.to_string().into();
    }
    Ok(reply)
}
