//! Thread read state: `POST /channels/{type}/{id}/read` and `…/unread` with `thread_id`
//! change only the thread's read position (not the channel's), and the unread thread
//! counters of `me`, `GET /unread` and the notifications.

use serde_json::{Value, json};

use crate::chat::{Ctx, Error, Result, channel, event, view};
use crate::store::{Cursor, MessageRow, ThreadReadRow, UserRow};
use crate::time::{now_micros, rfc3339};

/// Threads a user reads at most when counting their unread threads.
const MAX_COUNTED: i64 = 1_000;

/// A user's unread threads: how many, how many unread replies, and each thread's state.
pub struct ThreadUnread {
    pub threads: i64,
    pub messages: i64,
    pub reads: Vec<ThreadReadRow>,
}

/// Unread threads of `user_id` in channels they still hold read state in (members).
pub async fn unread_threads(ctx: &Ctx<'_>, user_id: &str) -> Result<ThreadUnread> {
    let ids = ctx
        .store
        .threads
        .find_thread_ids_for_user(user_id, MAX_COUNTED)
        .await?;
    let channels: std::collections::HashSet<String> = ctx
        .store
        .channels
        .find_reads_for_user(user_id)
        .await?
        .into_iter()
        .map(|(r, _)| r.cid)
        .collect();
    let reads: Vec<ThreadReadRow> = ctx
        .store
        .threads
        .find_thread_reads(&ids, Some(user_id))
        .await?
        .into_iter()
        .filter(|r| r.unread_messages > 0 && channels.contains(&r.cid))
        .collect();
    Ok(ThreadUnread {
        threads: reads.len() as i64,
        messages: reads.iter().map(|r| r.unread_messages).sum(),
        reads,
    })
}

async fn thread_parent(ctx: &Ctx<'_>, cid: &str, thread_id: &str) -> Result<MessageRow> {
    crate::chat::validate_message_id(thread_id)?;
    ctx.store
        .messages
        .find_message(thread_id)
        .await?
        .filter(|m| m.cid == cid && m.parent_id.is_none())
        .ok_or_else(|| Error::not_found(format!("thread {thread_id} does not exist in {cid}")))
}

/// Marks one thread read: `message.read` with `thread` to the watchers and
/// `notification.mark_read` with `thread_id` to the reader.
pub async fn mark_thread_read(
    ctx: &Ctx<'_>,
    loaded: &channel::Loaded,
    user: &UserRow,
    thread_id: &str,
) -> Result<Value> {
    let cid = &loaded.channel.cid;
    let parent = thread_parent(ctx, cid, thread_id).await?;
    let last = ctx
        .store
        .messages
        .find_replies(&parent.id, &Cursor::Latest, 1)
        .await?
        .pop();
    let now = now_micros();
    let last_id = last.map(|m| m.id);
    ctx.store
        .threads
        .upsert_thread_read(
            &ThreadReadRow {
                parent_id: parent.id.clone(),
                user_id: user.id.clone(),
                cid: cid.clone(),
                last_read: now,
                last_read_message_id: last_id.clone(),
                unread_messages: 0,
            },
            false,
        )
        .await?;
    let user_json = view::user_json(ctx, user);
    let mut ev = event::channel_event("message.read", cid);
    ev["user"] = user_json.clone();
    ev["created_at"] = rfc3339(now).into();
    ev["last_read_message_id"] = last_id.clone().into();
    ev["thread"] = json!({
        "parent_message_id": parent.id,
        "channel_cid": cid,
        "reply_count": parent.reply_count,
        "created_by_user_id": parent.user_id,
    });
    ctx.bus.to_channel(cid, &ev).await;
    let channels = crate::chat::read::unread_for(ctx, &user.id).await?;
    let threads = unread_threads(ctx, &user.id).await?;
    let mut note = event::channel_event("notification.mark_read", cid);
    note["user"] = user_json;
    note["created_at"] = rfc3339(now).into();
    note["thread_id"] = parent.id.clone().into();
    note["last_read_message_id"] = last_id.into();
    note["total_unread_count"] = channels.total.into();
    note["unread_channels"] = channels.channels.into();
    note["unread_threads"] = threads.threads.into();
    note["unread_thread_messages"] = threads.messages.into();
    ctx.bus.to_user(&user.id, &note).await;
    Ok(json!({ "event": ev }))
}

/// Marks a thread unread from one of its replies on: `notification.mark_unread` with
/// `thread_id` to the reader's connections.
pub async fn mark_thread_unread(
    ctx: &Ctx<'_>,
    loaded: &channel::Loaded,
    user: &UserRow,
    thread_id: &str,
    message_id: Option<&str>,
) -> Result<Value> {
    let cid = &loaded.channel.cid;
    let parent = thread_parent(ctx, cid, thread_id).await?;
    let id = message_id.ok_or_else(|| Error::input("message_id is required"))?;
    let from = ctx
        .store
        .messages
        .find_message(id)
        .await?
        .filter(|m| m.parent_id.as_deref() == Some(parent.id.as_str()))
        .ok_or_else(|| Error::not_found(format!("message {id} is not a reply of {thread_id}")))?;
    let previous = ctx
        .store
        .messages
        .find_replies(
            &parent.id,
            &Cursor::Before {
                at: from.created_at,
                id: from.id.clone(),
                inclusive: false,
            },
            1,
        )
        .await?
        .pop();
    let last_read = from.created_at - 1;
    ctx.store
        .threads
        .upsert_thread_read(
            &ThreadReadRow {
                parent_id: parent.id.clone(),
                user_id: user.id.clone(),
                cid: cid.clone(),
                last_read,
                last_read_message_id: previous.as_ref().map(|m| m.id.clone()),
                unread_messages: 0,
            },
            false,
        )
        .await?;
    let state = ctx
        .store
        .threads
        .find_thread_reads(std::slice::from_ref(&parent.id), Some(&user.id))
        .await?
        .pop();
    let unread = state.map_or(0, |r| r.unread_messages);
    let threads = unread_threads(ctx, &user.id).await?;
    let channels = crate::chat::read::unread_for(ctx, &user.id).await?;
    let mut note = event::channel_event("notification.mark_unread", cid);
    note["user"] = view::user_json(ctx, user);
    note["thread_id"] = parent.id.clone().into();
    note["first_unread_message_id"] = from.id.clone().into();
    note["last_read_at"] = rfc3339(last_read).into();
    note["last_read_message_id"] = previous.map(|m| m.id).into();
    note["unread_messages"] = unread.into();
    note["unread_threads"] = threads.threads.into();
    note["total_unread_count"] = channels.total.into();
    note["unread_channels"] = channels.channels.into();
    ctx.bus.to_user(&user.id, &note).await;
    Ok(json!({}))
}
