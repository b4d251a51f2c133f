//! What a reply changes beyond itself: the parent's `reply_count` and
//! `thread_participants` (`message.updated` for the parent, to the channel's watchers on
//! every node), the read state of the replier and the parent's author, and
//! `notification.thread_message_new` for participants who are not watching the channel.

use std::collections::HashMap;

use serde_json::Value;

use crate::chat::{Ctx, Result, channel, event, view};
use crate::store::{MessageRow, ParticipantRow, ThreadReadRow};

/// The repliers of each thread (oldest first), by parent id.
pub async fn participants_by_parent(
    ctx: &Ctx<'_>,
    parent_ids: &[String],
) -> Result<HashMap<String, Vec<ParticipantRow>>> {
    let mut out: HashMap<String, Vec<ParticipantRow>> = HashMap::new();
    for p in ctx.store.threads.find_participants(parent_ids).await? {
        out.entry(p.parent_id.clone()).or_default().push(p);
    }
    Ok(out)
}

/// Called once a reply is stored and its `message.new` sent.
pub async fn on_reply(
    ctx: &Ctx<'_>,
    loaded: &channel::Loaded,
    reply: &MessageRow,
    rendered_reply: &Value,
    replier: Value,
) -> Result<()> {
    let Some(parent_id) = &reply.parent_id else {
        return Ok(());
    };
    let Some(parent) = ctx.store.messages.find_message(parent_id).await? else {
        return Ok(());
    };
    let cid = &loaded.channel.cid;
    let threads = &ctx.store.threads;
    threads
        .upsert_thread_read(
            &ThreadReadRow {
                parent_id: parent.id.clone(),
                user_id: reply.user_id.clone(),
                cid: cid.clone(),
                last_read: reply.created_at,
                last_read_message_id: Some(reply.id.clone()),
                unread_messages: 0,
            },
            false,
        )
        .await?;
    threads
        .upsert_thread_read(
            &ThreadReadRow {
                parent_id: parent.id.clone(),
                user_id: parent.user_id.clone(),
                cid: cid.clone(),
                last_read: parent.created_at,
                last_read_message_id: None,
                unread_messages: 0,
            },
            true,
        )
        .await?;

    let rendered_parent = view::render_messages(ctx, std::slice::from_ref(&parent), None)
        .await?
        .remove(0);
    let mut ev = event::channel_event("message.updated", cid);
    ev["message"] = rendered_parent;
    ev["message_id"] = parent.id.clone().into();
    ev["user"] = replier;
    ctx.bus.to_channel(cid, &ev).await;

    let participants = participants_by_parent(ctx, std::slice::from_ref(&parent.id)).await?;
    let mut targets: Vec<&str> = vec![parent.user_id.as_str()];
    for p in participants.get(&parent.id).into_iter().flatten() {
        if !targets.contains(&p.user_id.as_str()) {
            targets.push(p.user_id.as_str());
        }
    }
    for uid in targets {
        if uid == reply.user_id
            || ctx.bus.is_watching(cid, uid)
            || !ctx.bus.is_online(uid)
            || !ctx.bus.may_read(cid, uid).await
        {
            continue;
        }
        let unread = super::unread_threads(ctx, uid).await?;
        let mut ev = event::channel_event("notification.thread_message_new", cid);
        ev["message"] = rendered_reply.clone();
        ev["message_id"] = reply.id.clone().into();
        ev["parent_id"] = parent.id.clone().into();
        ev["unread_threads"] = unread.threads.into();
        ev["unread_thread_messages"] = unread.messages.into();
        ctx.bus.to_user(uid, &ev).await;
    }
    Ok(())
}
