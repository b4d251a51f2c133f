//! The ChannelState shape `/query` and `POST /channels` return: messages (by the page the
//! request asks for), pinned messages, members, reads and watchers, rendered in batches.

use std::collections::HashSet;

use serde::Deserialize;
use serde_json::{Value, json};

use super::with_access;
use crate::chat::{Actor, Ctx, Error, Result, view};
use crate::store::{ChannelRow, Cursor, MemberRow, MessageRow};
use crate::time::parse_rfc3339;

#[derive(Debug, Default, Deserialize)]
pub struct Pagination {
    pub limit: Option<i64>,
    pub offset: Option<i64>,
}

#[derive(Debug, Default, Deserialize)]
pub struct MessagePagination {
    pub limit: Option<i64>,
    pub id_lt: Option<String>,
    pub id_lte: Option<String>,
    pub id_gt: Option<String>,
    pub id_gte: Option<String>,
    pub id_around: Option<String>,
    pub created_at_before: Option<String>,
    pub created_at_before_or_equal: Option<String>,
    pub created_at_after: Option<String>,
    pub created_at_after_or_equal: Option<String>,
}

pub struct StateOptions<'a> {
    pub messages: Option<&'a MessagePagination>,
    pub member_limit: Option<i64>,
    pub presence_conn: Option<&'a str>,
}

/// The default and largest message page of a channel state.
const DEFAULT_MESSAGES: i64 = 25;
const MAX_MESSAGES: i64 = 300;
const MAX_EMBEDDED_MEMBERS: i64 = 100;
/// Watchers embedded in a channel state (the count is always exact).
const MAX_EMBEDDED_WATCHERS: usize = 100;

/// Renders ChannelState objects for several channels, batching the lookups they share.
pub async fn channel_states(
    ctx: &Ctx<'_>,
    actor: &Actor,
    channels: Vec<ChannelRow>,
    opts: &StateOptions<'_>,
) -> Result<Vec<Value>> {
    let cids: Vec<String> = channels.iter().map(|c| c.cid.clone()).collect();
    let members = ctx.store.channels.find_members(&cids).await?;
    let reads = ctx.store.channels.find_reads(&cids).await?;
    let member_limit = opts
        .member_limit
        .unwrap_or(MAX_EMBEDDED_MEMBERS)
        .clamp(0, MAX_EMBEDDED_MEMBERS) as usize;

    let mut per_channel_messages = Vec::with_capacity(channels.len());
    let mut per_channel_pinned = Vec::with_capacity(channels.len());
    for ch in &channels {
        per_channel_messages.push(message_page(ctx, ch, opts.messages).await?);
        let mut pinned = ctx
            .store
            .messages
            .find_pinned_messages(&ch.cid, ch.truncated_at, 10)
            .await?;
        // Expired pins are not pinned (`chat::pin`).
        let now = crate::time::now_micros();
        pinned.retain(|m| crate::chat::pin::is_pinned(m, now));
        per_channel_pinned.push(pinned);
    }
    let watcher_ids: Vec<Vec<String>> = cids.iter().map(|cid| ctx.bus.watcher_ids(cid)).collect();

    let mut ids: HashSet<String> = HashSet::new();
    ids.extend(members.iter().map(|m| m.user_id.clone()));
    ids.extend(reads.iter().map(|r| r.user_id.clone()));
    ids.extend(channels.iter().filter_map(|c| c.created_by_id.clone()));
    ids.extend(
        watcher_ids
            .iter()
            .flat_map(|w| w.iter().take(MAX_EMBEDDED_WATCHERS))
            .cloned(),
    );
    let users = view::users_by_id(ctx, ids).await?;
    let user = |id: &str| {
        users
            .get(id)
            .cloned()
            .unwrap_or_else(|| json!({ "id": id }))
    };

    let viewer = actor.user_id();
    crate::chat::message::record_reads(
        ctx,
        actor,
        "query",
        channels.iter().enumerate().map(|(i, ch)| {
            (
                ch.cid.as_str(),
                per_channel_messages[i].len() + per_channel_pinned[i].len(),
            )
        }),
    )
    .await?;
    let mut out = Vec::with_capacity(channels.len());
    for (i, ch) in channels.iter().enumerate() {
        let ch_members: Vec<&MemberRow> = members.iter().filter(|m| m.cid == ch.cid).collect();
        let membership = viewer.and_then(|v| ch_members.iter().find(|m| m.user_id == v).copied());
        let loaded = with_access(ctx, actor, ch.clone(), membership.cloned())?;
        let messages = view::render_messages(ctx, &per_channel_messages[i], viewer).await?;
        let pinned = view::render_messages(ctx, &per_channel_pinned[i], viewer).await?;
        if let Some(conn) = opts.presence_conn {
            let ids: Vec<String> = ch_members.iter().map(|m| m.user_id.clone()).collect();
            ctx.bus.subscribe_presence(conn, &ids);
        }
        out.push(json!({
            "channel": view::channel_json(ctx, actor, ch, &loaded.config, membership, ch.created_by_id.as_deref().map(user)),
            "messages": messages,
            "pinned_messages": pinned,
            "members": ch_members.iter().take(member_limit).map(|m| view::member_json(m, user(&m.user_id))).collect::<Vec<_>>(),
            "membership": membership.map(|m| view::member_json(m, user(&m.user_id))),
            "read": reads.iter().filter(|r| r.cid == ch.cid).map(|r| view::read_json(r, user(&r.user_id))).collect::<Vec<_>>(),
            "watchers": watcher_ids[i].iter().take(MAX_EMBEDDED_WATCHERS).map(|id| user(id)).collect::<Vec<_>>(),
            "watcher_count": watcher_ids[i].len(),
            "threads": [],
            "hidden": membership.is_some_and(|m| m.hidden),
        }));
    }
    Ok(out)
}

async fn cursor_at(ctx: &Ctx<'_>, id: &str) -> Result<MessageRow> {
    ctx.store
        .messages
        .find_message(id)
        .await?
        .ok_or_else(|| Error::input(format!("message {id} used for pagination does not exist")))
}

fn time_param(text: &str) -> Result<i64> {
    parse_rfc3339(text).ok_or_else(|| Error::input(format!("{text:?} is not an RFC 3339 time")))
}

/// The message page a pagination object asks for.
pub async fn message_page(
    ctx: &Ctx<'_>,
    ch: &ChannelRow,
    p: Option<&MessagePagination>,
) -> Result<Vec<MessageRow>> {
    let default = MessagePagination::default();
    let p = p.unwrap_or(&default);
    let limit = p.limit.unwrap_or(DEFAULT_MESSAGES);
    if !(0..=MAX_MESSAGES).contains(&limit) {
        return Err(Error::input(format!(
            "messages.limit must be between 0 and {MAX_MESSAGES}"
        )));
    }
    if limit == 0 {
        return Ok(Vec::new());
    }
    const MAX_ID: &str = "\u{10FFFF}";
    let cursor = if let Some(id) = &p.id_lt {
        let m = cursor_at(ctx, id).await?;
        Cursor::Before {
            at: m.created_at,
            id: m.id,
            inclusive: false,
        }
    } else if let Some(id) = &p.id_lte {
        let m = cursor_at(ctx, id).await?;
        Cursor::Before {
            at: m.created_at,
            id: m.id,
            inclusive: true,
        }
    } else if let Some(id) = &p.id_gt {
        let m = cursor_at(ctx, id).await?;
        Cursor::After {
            at: m.created_at,
            id: m.id,
            inclusive: false,
        }
    } else if let Some(id) = &p.id_gte {
        let m = cursor_at(ctx, id).await?;
        Cursor::After {
            at: m.created_at,
            id: m.id,
            inclusive: true,
        }
    } else if let Some(id) = &p.id_around {
        let m = cursor_at(ctx, id).await?;
        let msgs = &ctx.store.messages;
        let mut before = msgs
            .find_channel_messages(
                &ch.cid,
                ch.truncated_at,
                &Cursor::Before {
                    at: m.created_at,
                    id: m.id.clone(),
                    inclusive: true,
                },
                limit / 2 + 1,
            )
            .await?;
        let after = msgs
            .find_channel_messages(
                &ch.cid,
                ch.truncated_at,
                &Cursor::After {
                    at: m.created_at,
                    id: m.id,
                    inclusive: false,
                },
                limit - limit / 2 - 1,
            )
            .await?;
        before.extend(after);
        return Ok(before);
    } else if let Some(t) = &p.created_at_before {
        Cursor::Before {
            at: time_param(t)?,
            id: String::new(),
            inclusive: false,
        }
    } else if let Some(t) = &p.created_at_before_or_equal {
        Cursor::Before {
            at: time_param(t)?,
            id: MAX_ID.into(),
            inclusive: true,
        }
    } else if let Some(t) = &p.created_at_after {
        Cursor::After {
            at: time_param(t)?,
            id: MAX_ID.into(),
            inclusive: false,
        }
    } else if let Some(t) = &p.created_at_after_or_equal {
        Cursor::After {
            at: time_param(t)?,
            id: String::new(),
            inclusive: true,
        }
    } else {
        Cursor::Latest
    };
    Ok(ctx
        .store
        .messages
        .find_channel_messages(&ch.cid, ch.truncated_at, &cursor, limit)
        .await?)
}
