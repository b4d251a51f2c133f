//! Reading messages beyond a channel page: thread replies and search, and the record of
//! every message read (PHI) returned to a caller.

use serde::Deserialize;
use serde_json::{Value, json};

use super::{channel_type_of, load_message, readable_message};
use crate::audit::EventType;
use crate::chat::channel;
use crate::chat::view;
use crate::chat::{Actor, Ctx, Error, Result, filter};
use crate::store::Cursor;
use crate::time::parse_rfc3339;

#[derive(Debug, Default, Deserialize)]
pub struct RepliesQuery {
    pub limit: Option<i64>,
    pub id_lt: Option<String>,
    pub id_lte: Option<String>,
    pub id_gt: Option<String>,
    pub id_gte: Option<String>,
    pub created_at_before: Option<String>,
    pub created_at_after: Option<String>,
    pub created_at_before_or_equal: Option<String>,
    pub created_at_after_or_equal: Option<String>,
    pub created_at_around: Option<String>,
    pub id_around: Option<String>,
    /// `[{"field": "created_at", "direction": -1}]`: which end an uncursored page starts
    /// from. Replies always come back in ascending order (the SDK pages on that).
    pub sort: Option<String>,
}

/// `GET /messages/{parent_id}/replies`, ascending.
pub async fn get_replies(
    ctx: &Ctx<'_>,
    actor: &Actor,
    parent_id: &str,
    q: &RepliesQuery,
) -> Result<Value> {
    let (parent, _) = readable_message(ctx, actor, parent_id).await?;
    let limit = q.limit.unwrap_or(25);
    if !(1..=300).contains(&limit) {
        return Err(Error::input("limit must be between 1 and 300"));
    }
    let at = |id: &str| {
        let id = id.to_string();
        async move { load_message(ctx, &id).await }
    };
    let cursor = if let Some(id) = &q.id_lt {
        let m = at(id).await?;
        Cursor::Before {
            at: m.created_at,
            id: m.id,
            inclusive: false,
        }
    } else if let Some(id) = &q.id_lte {
        let m = at(id).await?;
        Cursor::Before {
            at: m.created_at,
            id: m.id,
            inclusive: true,
        }
    } else if let Some(id) = &q.id_gt {
        let m = at(id).await?;
        Cursor::After {
            at: m.created_at,
            id: m.id,
            inclusive: false,
        }
    } else if let Some(id) = &q.id_gte {
        let m = at(id).await?;
        Cursor::After {
            at: m.created_at,
            id: m.id,
            inclusive: true,
        }
    } else if let Some(id) = &q.id_around {
        let m = at(id).await?;
        if m.parent_id.as_deref() != Some(parent.id.as_str()) {
            return Err(Error::input(format!(
                "message {id} is not a reply of {parent_id}"
            )));
        }
        return replies_around(ctx, actor, &parent, m.created_at, &m.id, limit).await;
    } else if let Some(t) = &q.created_at_around {
        let t =
            parse_rfc3339(t).ok_or_else(|| Error::input("created_at_around must be RFC 3339"))?;
        return replies_around(ctx, actor, &parent, t, "", limit).await;
    } else if let Some(t) = &q.created_at_before_or_equal {
        Cursor::Before {
            at: parse_rfc3339(t)
                .ok_or_else(|| Error::input("created_at_before_or_equal must be RFC 3339"))?,
            id: "\u{10FFFF}".into(),
            inclusive: true,
        }
    } else if let Some(t) = &q.created_at_after_or_equal {
        Cursor::After {
            at: parse_rfc3339(t)
                .ok_or_else(|| Error::input("created_at_after_or_equal must be RFC 3339"))?,
            id: String::new(),
            inclusive: true,
        }
    } else if let Some(t) = &q.created_at_before {
        Cursor::Before {
            at: parse_rfc3339(t)
                .ok_or_else(|| Error::input("created_at_before must be RFC 3339"))?,
            id: String::new(),
            inclusive: false,
        }
    } else if let Some(t) = &q.created_at_after {
        Cursor::After {
            at: parse_rfc3339(t)
                .ok_or_else(|| Error::input("created_at_after must be RFC 3339"))?,
            id: "\u{10FFFF}".into(),
            inclusive: false,
        }
    } else if oldest_first(q.sort.as_deref())? {
        Cursor::After {
            at: i64::MIN,
            id: String::new(),
            inclusive: true,
        }
    } else {
        Cursor::Latest
    };
    let rows = ctx
        .store
        .messages
        .find_replies(&parent.id, &cursor, limit)
        .await?;
    let messages = view::render_messages(ctx, &rows, actor.user_id()).await?;
    record_reads(ctx, actor, "replies", [(parent.cid.as_str(), rows.len())]).await?;
    Ok(json!({ "messages": messages }))
}

/// Whether a replies `sort` asks for the oldest replies first (`created_at` ascending).
fn oldest_first(sort: Option<&str>) -> Result<bool> {
    let Some(text) = sort else {
        return Ok(false);
    };
    let value: Value =
        serde_json::from_str(text).map_err(|_| Error::input("sort must be a JSON list"))?;
    let keys = filter::parse_sort(&value)?;
    match keys.first() {
        None => Ok(false),
        Some(k) if k.field == "created_at" => Ok(!k.descending),
        Some(_) => Err(Error::input("replies can only be sorted by created_at")),
    }
}

/// A page of replies around a position (a reply's or a time): up to half before it (and
/// it), the rest after, ascending.
async fn replies_around(
    ctx: &Ctx<'_>,
    actor: &Actor,
    parent: &crate::store::MessageRow,
    at: i64,
    id: &str,
    limit: i64,
) -> Result<Value> {
    let messages = &ctx.store.messages;
    let before_limit = limit - limit / 2;
    let (before_id, inclusive) = if id.is_empty() {
        ("\u{10FFFF}".to_string(), true)
    } else {
        (id.to_string(), true)
    };
    let mut rows = messages
        .find_replies(
            &parent.id,
            &Cursor::Before {
                at,
                id: before_id,
                inclusive,
            },
            before_limit,
        )
        .await?;
    let after_limit = limit - rows.len() as i64;
    if after_limit > 0 {
        let after_id = if id.is_empty() {
            "\u{10FFFF}".to_string()
        } else {
            id.to_string()
        };
        rows.extend(
            messages
                .find_replies(
                    &parent.id,
                    &Cursor::After {
                        at,
                        id: after_id,
                        inclusive: false,
                    },
                    after_limit,
                )
                .await?,
        );
    }
    let rendered = view::render_messages(ctx, &rows, actor.user_id()).await?;
    record_reads(ctx, actor, "replies", [(parent.cid.as_str(), rows.len())]).await?;
    Ok(json!({ "messages": rendered }))
}

#[derive(Debug, Default, Deserialize)]
pub struct Search {
    #[serde(default)]
    pub filter_conditions: Value,
    pub query: Option<String>,
    #[serde(default)]
    pub message_filter_conditions: Value,
    pub limit: Option<i64>,
    pub offset: Option<i64>,
    pub next: Option<String>,
    #[serde(default)]
    pub sort: Value,
}

/// Messages one search evaluates in memory when it has message filters and no text query.
const SEARCH_SCAN_CAP: i64 = 1_000;

/// `GET /search`: messages in channels the caller belongs to (matching `filter_conditions`)
/// whose text contains `query`, newest first, each with its `channel`.
pub async fn search(ctx: &Ctx<'_>, actor: &Actor, q: &Search) -> Result<Value> {
    if q.filter_conditions.as_object().is_none_or(|o| o.is_empty()) {
        return Err(Error::input(
            "search needs non-empty filter_conditions to select channels",
        ));
    }
    actor.authorize_app(ctx, "QueryChannels")?;
    let channel_filter = filter::parse(&q.filter_conditions)?;
    let wanted = message_filter_text(&q.message_filter_conditions)?;
    // The text condition is answered by the index, not compared to the whole text.
    let mut conditions = q.message_filter_conditions.clone();
    if wanted.is_some()
        && let Some(o) = conditions.as_object_mut()
    {
        o.remove("text");
    }
    let message_filter = filter::parse(&conditions)?;
    let mut by_prefix = false;
    let needle = match (&q.query, wanted) {
        (Some(text), _) if !text.trim().is_empty() => text.trim().to_string(),
        (_, Some((text, prefix))) => {
            by_prefix = prefix;
            text
        }
        _ if q.message_filter_conditions.is_object() => String::new(),
        _ => {
            return Err(Error::input(
                "search needs a query or message_filter_conditions",
            ));
        }
    };
    if needle.chars().count() > 300 {
        return Err(Error::input("search query is too long"));
    }
    let limit = q.limit.unwrap_or(20);
    let offset = match &q.next {
        Some(next) => next
            .parse::<i64>()
            .map_err(|_| Error::input("next is not a valid cursor"))?,
        None => q.offset.unwrap_or(0),
    };
    if !(1..=100).contains(&limit) || !(0..=1000).contains(&offset) {
        return Err(Error::input("limit must be 1–100 and offset 0–1000"));
    }
    let channels = channel::readable_channels(ctx, actor, &channel_filter, true).await?;
    let channels: Vec<channel::Loaded> = channels
        .into_iter()
        .filter(|l| l.allows("SearchMessages"))
        .collect();
    let cids: Vec<String> = channels.iter().map(|l| l.channel.cid.clone()).collect();
    // An explicit sort (e.g. `created_at` ascending) orders the scanned matches in memory.
    let sort = filter::parse_sort(&q.sort)?;
    let filtered =
        !matches!(message_filter, filter::Filter::And(ref v) if v.is_empty()) || !sort.is_empty();
    let (fetch_limit, fetch_offset) = if filtered {
        (SEARCH_SCAN_CAP, 0)
    } else {
        (limit + 1, offset)
    };
    let messages = &ctx.store.messages;
    let rows = if by_prefix {
        messages
            .search_messages_by_prefix(&cids, &needle, fetch_limit, fetch_offset)
            .await?
    } else {
        messages
            .search_messages(&cids, &needle, fetch_limit, fetch_offset)
            .await?
    };
    let mut rendered = view::render_messages(ctx, &rows, actor.user_id()).await?;
    let mut per_channel: std::collections::BTreeMap<&str, usize> = Default::default();
    for r in &rows {
        *per_channel.entry(r.cid.as_str()).or_default() += 1;
    }
    record_reads(ctx, actor, "search", per_channel).await?;
    if filtered {
        rendered.retain(|m| message_filter.matches(m));
        rendered.sort_by(|a, b| filter::compare_docs(a, b, &sort));
        rendered = rendered.into_iter().skip(offset as usize).collect();
    }
    let more = rendered.len() as i64 > limit;
    rendered.truncate(limit as usize);
    let results: Vec<Value> = rendered
        .into_iter()
        .map(|mut m| {
            if let Some(l) = channels
                .iter()
                .find(|l| Some(l.channel.cid.as_str()) == m["cid"].as_str())
            {
                m["channel"] = view::channel_json(
                    ctx,
                    actor,
                    &l.channel,
                    &l.config,
                    l.membership.as_ref(),
                    None,
                );
            }
            json!({ "message": m })
        })
        .collect();
    let mut reply = json!({ "results": results });
    if more {
        reply["next"] = (offset + limit).to_string().into();
    }
    if offset > 0 {
        reply["previous"] = (offset - limit).max(0).to_string().into();
    }
    Ok(reply)
}

/// The text a message filter searches for, and whether by word prefix: `text: "…"` and
/// `text: {$q: "…"}` find messages with every word, `text: {$autocomplete: "…"}` messages
/// with a word starting with each word. The stock search box sends the bare value.
fn message_filter_text(v: &Value) -> Result<Option<(String, bool)>> {
    let Some(text) = v.get("text") else {
        return Ok(None);
    };
    let bad =
        || Error::input("message_filter_conditions.text must be a string, $q or $autocomplete");
    let (value, prefix) = match text {
        Value::String(s) => (s, false),
        Value::Object(o) if o.len() == 1 => match o.iter().next() {
            Some((op, Value::String(s))) if op == "$q" || op == "$eq" => (s, false),
            Some((op, Value::String(s))) if op == "$autocomplete" => (s, true),
            _ => return Err(bad()),
        },
        _ => return Err(bad()),
    };
    Ok(Some((value.trim().to_string(), prefix)))
}

/// Records that channel messages (PHI) were returned to `actor`: one entry per channel with
/// the number of messages, durable before the reply leaves.
pub async fn record_reads<'a>(
    ctx: &Ctx<'_>,
    actor: &Actor,
    how: &str,
    per_channel: impl IntoIterator<Item = (&'a str, usize)>,
) -> Result<()> {
    let events: Vec<_> = per_channel
        .into_iter()
        .filter(|(_, n)| *n > 0)
        .map(|(cid, n)| {
            actor
                .audit(EventType::MessageRead)
                .object("channel", cid)
                .meta("channel_type", channel_type_of(cid))
                .meta("count", n)
                .meta(
                    "via",
                    if actor.server {
                        format!("server:{how}")
                    } else {
                        format!("client:{how}")
                    },
                )
        })
        .collect();
    if events.is_empty() {
        return Ok(());
    }
    ctx.audit.record_all(events).await?;
    Ok(())
}
