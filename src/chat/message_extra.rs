//! Messages beyond send and edit: `delete_for_me` (hidden for one user only), messages of
//! a channel by id, and message actions (`POST /messages/{id}/action`).
//!
//! Ward advertises no slash commands (`config.commands` is empty: `giphy` and the like need
//! a third party that would see message text), so no message is ever ephemeral and every
//! action request is answered with Stream's input error.

use std::collections::HashMap;

use serde::Deserialize;
use serde_json::{Map, Value, json};

use crate::audit::EventType;
use crate::chat::message::{readable_message, record_reads};
use crate::chat::{Actor, Ctx, Error, Result, channel, event, validate_message_id, view};
use crate::time::{Micros, now_micros, rfc3339};

/// The most ids one `GET …/messages?ids=` takes.
const MAX_IDS: usize = 100;

/// Which of `ids` `viewer` deleted for themselves, and when.
pub async fn hidden_for(
    ctx: &Ctx<'_>,
    viewer: Option<&str>,
    ids: &[String],
) -> Result<HashMap<String, Micros>> {
    let Some(viewer) = viewer else {
        return Ok(HashMap::new());
    };
    Ok(ctx
        .store
        .message_hides
        .find_message_hides(viewer, ids)
        .await?
        .into_iter()
        .collect())
}

/// How a message deleted for the viewer reads to them: as deleted, without content.
pub fn as_deleted_for_me(msg: &mut Value, at: Micros) {
    if let Some(o) = msg.as_object_mut() {
        o.insert("type".into(), "deleted".into());
        o.insert("text".into(), "".into());
        o.insert("html".into(), "".into());
        o.insert("attachments".into(), json!([]));
        o.insert("deleted_at".into(), rfc3339(at).into());
        o.insert("deleted_for_me".into(), true.into());
    }
}

/// `DELETE /messages/{id}?delete_for_me=true`: the message reads as deleted for the caller
/// only; `message.deleted` with `deleted_for_me` goes to the caller's own connections.
pub async fn delete_for_me(ctx: &Ctx<'_>, actor: &Actor, id: &str, hard: bool) -> Result<Value> {
    if hard {
        return Err(Error::input("hard and delete_for_me cannot both be set"));
    }
    let user = actor
        .user
        .clone()
        .ok_or_else(|| Error::input("delete_for_me needs a user"))?;
    let (m, _loaded) = readable_message(ctx, actor, id).await?;
    let record = actor
        .audit(EventType::MessageDelete)
        .subject(m.user_id.clone())
        .object("message", m.id.clone())
        .meta("channel_type", m.cid.split(':').next().unwrap_or_default())
        .meta("hard", false)
        // For the caller only: the message stays for everyone else.
        .meta("via", "delete_for_me");
    let now = now_micros();
    ctx.audit
        .audited([record], async |records| {
            ctx.store
                .message_hides
                .insert_message_hide(&m.id, &user.id, now, &records)
                .await
        })
        .await?;
    let rendered = view::render_messages(ctx, std::slice::from_ref(&m), Some(&user.id))
        .await?
        .remove(0);
    let mut ev = event::channel_event("message.deleted", &m.cid);
    ev["message"] = rendered.clone();
    ev["message_id"] = m.id.clone().into();
    ev["user"] = view::user_json(ctx, &user);
    ev["hard_delete"] = false.into();
    ev["deleted_for_me"] = true.into();
    ctx.bus.to_user(&user.id, &ev).await;
    Ok(json!({ "message": rendered }))
}

/// `GET /channels/{type}/{id}/messages?ids=a,b`: the channel's messages with those ids (in
/// the order asked; unknown, other channels' and truncated ones left out).
pub async fn messages_by_id(ctx: &Ctx<'_>, actor: &Actor, cid: &str, ids: &str) -> Result<Value> {
    let loaded = channel::load(ctx, actor, cid).await?;
    loaded.require_read()?;
    let ids: Vec<String> = ids
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(String::from)
        .collect();
    if ids.is_empty() {
        return Err(Error::input("ids must name at least one message"));
    }
    if ids.len() > MAX_IDS {
        return Err(Error::input(format!(
            "ids takes at most {MAX_IDS} messages"
        )));
    }
    for id in &ids {
        validate_message_id(id)?;
    }
    let found = ctx.store.messages.find_messages(&ids).await?;
    let truncated = loaded.channel.truncated_at;
    let mut rows: Vec<_> = found
        .into_iter()
        .filter(|m| m.cid == cid && truncated.is_none_or(|t| m.created_at > t))
        .collect();
    rows.sort_by_key(|m| ids.iter().position(|i| i == &m.id));
    rows.dedup_by(|a, b| a.id == b.id);
    let messages = view::render_messages(ctx, &rows, actor.user_id()).await?;
    record_reads(ctx, actor, "messages_by_id", [(cid, rows.len())]).await?;
    Ok(json!({ "messages": messages }))
}

#[derive(Debug, Default, Deserialize)]
pub struct MessageAction {
    #[serde(default)]
    pub form_data: Map<String, Value>,
}

/// `POST /messages/{id}/action`: actions answer ephemeral command messages (`giphy`'s
/// shuffle/send/cancel). Ward has no commands, so after the read decision every action is
/// refused as Stream refuses an action on a message that is not ephemeral.
pub async fn send_action(
    ctx: &Ctx<'_>,
    actor: &Actor,
    id: &str,
    body: &MessageAction,
) -> Result<Value> {
    actor.require_user()?;
    let (m, loaded) = readable_message(ctx, actor, id).await?;
    loaded.require("SendMessage")?;
    if body.form_data.len() > 20 {
        return Err(Error::input("form_data has too many fields"));
    }
    Err(Error::input(format!(
        "message {} is not an ephemeral command message; this app has no commands",
        m.id
    )))
}
