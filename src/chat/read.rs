//! Read state: marking channels read and unread, unread counters, and the own-user object
//! (`me`) that carries them.

use serde::Deserialize;
use serde_json::{Value, json};

use crate::chat::Ctx;
use crate::chat::{Actor, channel, view};
use crate::chat::{Error, Result};
use crate::store::{ReadRow, UserRow};
use crate::time::{now_micros, parse_rfc3339, rfc3339};

/// A user's unread counters across channels.
pub struct Unread {
    pub total: i64,
    pub channels: i64,
    pub reads: Vec<(ReadRow, String)>,
}

pub async fn unread_for(ctx: &Ctx<'_>, user_id: &str) -> Result<Unread> {
    let reads = ctx.store.channels.find_reads_for_user(user_id).await?;
    Ok(Unread {
        total: reads.iter().map(|(r, _)| r.unread_messages).sum(),
        channels: reads.iter().filter(|(r, _)| r.unread_messages > 0).count() as i64,
        reads,
    })
}

/// The OwnUser object: a user plus the mute lists (arrays, never missing: the SDK loops over
/// them) and the unread counters.
pub async fn own_user_json(ctx: &Ctx<'_>, user: &UserRow) -> Result<Value> {
    let unread = unread_for(ctx, &user.id).await?;
    let mut me = view::user_json(ctx, user);
    me["mutes"] = json!([]);
    me["channel_mutes"] = json!([]);
    me["devices"] = json!([]);
    me["blocked_user_ids"] = json!([]);
    me["total_unread_count"] = unread.total.into();
    me["unread_count"] = unread.total.into();
    me["unread_channels"] = unread.channels.into();
    me["unread_threads"] = crate::chat::thread::unread_threads(ctx, &user.id)
        .await?
        .threads
        .into();
    Ok(me)
}

#[derive(Debug, Default, Deserialize)]
pub struct MarkRead {
    pub message_id: Option<String>,
    pub thread_id: Option<String>,
}

/// `POST /channels/{type}/{id}/read`: resets the caller's unread count, tells the watchers
/// (`message.read`) and the caller's other connections (`notification.mark_read`).
pub async fn mark_read(ctx: &Ctx<'_>, actor: &Actor, cid: &str, body: &MarkRead) -> Result<Value> {
    let user = actor.require_user()?;
    let loaded = channel::load(ctx, actor, cid).await?;
    if !loaded.config.read_events {
        return Err(Error::input(format!(
            "read events are disabled for channel type {}",
            loaded.channel.kind
        )));
    }
    loaded.require("MarkRead")?;
    if let Some(thread_id) = &body.thread_id {
        return crate::chat::thread::mark_thread_read(ctx, &loaded, user, thread_id).await;
    }
    let last_message_id = match &body.message_id {
        Some(id) => Some(id.clone()),
        None => ctx
            .store
            .messages
            .find_channel_messages(
                cid,
                loaded.channel.truncated_at,
                &crate::store::Cursor::Latest,
                1,
            )
            .await?
            .pop()
            .map(|m| m.id),
    };
    let now = now_micros();
    ctx.store
        .channels
        .upsert_read(&ReadRow {
            cid: cid.to_string(),
            user_id: user.id.clone(),
            last_read: now,
            last_read_message_id: last_message_id.clone(),
            unread_messages: 0,
            last_delivered_at: None,
            last_delivered_message_id: None,
        })
        .await?;
    let user_json = view::user_json(ctx, user);
    let event = json!({
        "type": "message.read",
        "cid": cid,
        "channel_id": loaded.channel.id,
        "channel_type": loaded.channel.kind,
        "user": user_json,
        "created_at": rfc3339(now),
        "last_read_message_id": last_message_id,
    });
    ctx.bus.to_channel(cid, &event).await;
    let unread = unread_for(ctx, &user.id).await?;
    let threads = crate::chat::thread::unread_threads(ctx, &user.id).await?;
    ctx.bus
        .to_user(
            &user.id,
            &json!({
                "type": "notification.mark_read",
                "cid": cid,
                "channel_id": loaded.channel.id,
                "channel_type": loaded.channel.kind,
                "user": user_json,
                "created_at": rfc3339(now),
                "unread_count": 0,
                "unread_messages": 0,
                "total_unread_count": unread.total,
                "unread_channels": unread.channels,
                "unread_threads": threads.threads,
                "last_read_message_id": last_message_id,
            }),
        )
        .await;
    Ok(json!({ "event": event }))
}

#[derive(Debug, Default, Deserialize)]
pub struct MarkUnread {
    pub message_id: Option<String>,
    pub message_timestamp: Option<String>,
    pub thread_id: Option<String>,
}

/// `POST /channels/{type}/{id}/unread`: marks the channel unread from a message on.
pub async fn mark_unread(
    ctx: &Ctx<'_>,
    actor: &Actor,
    cid: &str,
    body: &MarkUnread,
) -> Result<Value> {
    let user = actor.require_user()?;
    let loaded = channel::load(ctx, actor, cid).await?;
    loaded.require("MarkRead")?;
    if let Some(thread_id) = &body.thread_id {
        return crate::chat::thread::mark_thread_unread(
            ctx,
            &loaded,
            user,
            thread_id,
            body.message_id.as_deref(),
        )
        .await;
    }
    let from = match (&body.message_id, &body.message_timestamp) {
        (Some(id), _) => {
            let m = ctx
                .store
                .messages
                .find_message(id)
                .await?
                .filter(|m| m.cid == cid)
                .ok_or_else(|| Error::not_found(format!("message {id} does not exist in {cid}")))?;
            m.created_at
        }
        (None, Some(ts)) => {
            parse_rfc3339(ts).ok_or_else(|| Error::input("message_timestamp must be RFC 3339"))?
        }
        (None, None) => {
            return Err(Error::input("message_id or message_timestamp is required"));
        }
    };
    let last_read = from - 1;
    let unread = ctx
        .store
        .messages
        .count_messages_after(cid, last_read, &user.id)
        .await?;
    let previous = ctx
        .store
        .messages
        .find_channel_messages(
            cid,
            loaded.channel.truncated_at,
            &crate::store::Cursor::Before {
                at: from,
                id: String::new(),
                inclusive: false,
            },
            1,
        )
        .await?
        .pop();
    ctx.store
        .channels
        .upsert_read(&ReadRow {
            cid: cid.to_string(),
            user_id: user.id.clone(),
            last_read,
            last_read_message_id: previous.as_ref().map(|m| m.id.clone()),
            unread_messages: unread,
            last_delivered_at: None,
            last_delivered_message_id: None,
        })
        .await?;
    let totals = unread_for(ctx, &user.id).await?;
    ctx.bus
        .to_user(
            &user.id,
            &json!({
                "type": "notification.mark_unread",
                "cid": cid,
                "channel_id": loaded.channel.id,
                "channel_type": loaded.channel.kind,
                "user": view::user_json(ctx, user),
                "created_at": rfc3339(now_micros()),
                "first_unread_message_id": body.message_id,
                "last_read_at": rfc3339(last_read),
                "last_read_message_id": previous.map(|m| m.id),
                "unread_messages": unread,
                "unread_count": unread,
                "total_unread_count": totals.total,
                "unread_channels": totals.channels,
            }),
        )
        .await;
    Ok(json!({}))
}

/// `GET /unread`: the caller's counters, per channel and per channel type.
pub async fn unread_counts(ctx: &Ctx<'_>, actor: &Actor) -> Result<Value> {
    actor.authorize_app(ctx, "ReadUnreadCounts")?;
    let user = actor.require_user()?;
    let unread = unread_for(ctx, &user.id).await?;
    let channels: Vec<Value> = unread
        .reads
        .iter()
        .filter(|(r, _)| r.unread_messages > 0)
        .map(|(r, _)| json!({"channel_id": r.cid, "unread_count": r.unread_messages, "last_read": rfc3339(r.last_read)}))
        .collect();
    let mut by_type: std::collections::BTreeMap<&str, (i64, i64)> = Default::default();
    for (r, kind) in &unread.reads {
        if r.unread_messages > 0 {
            let e = by_type.entry(kind).or_default();
            e.0 += 1;
            e.1 += r.unread_messages;
        }
    }
    let channel_type: Vec<Value> = by_type
        .into_iter()
        .map(|(t, (count, unread))| json!({"channel_type": t, "channel_count": count, "unread_count": unread}))
        .collect();
    let unread_threads = crate::chat::thread::unread_threads(ctx, &user.id).await?;
    let threads: Vec<Value> = unread_threads
        .reads
        .iter()
        .map(|r| {
            json!({
                "parent_message_id": r.parent_id,
                "unread_count": r.unread_messages,
                "last_read": rfc3339(r.last_read),
                "last_read_message_id": r.last_read_message_id,
            })
        })
        .collect();
    Ok(json!({
        "total_unread_count": unread.total,
        "total_unread_threads_count": unread_threads.threads,
        "channels": channels,
        "channel_type": channel_type,
        "threads": threads,
    }))
}
