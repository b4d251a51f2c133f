//! Messages: send (client-supplied ids, duplicates refused), get, update, partial update,
//! delete (soft or hard), thread replies, and search. Sending is here; changes are in
//! `message/edit.rs`, replies and search in `message/query.rs`.

mod edit;
mod query;

pub use edit::{
    PartialUpdateMessage, UpdateMessage, delete_message, partial_update_message, update_message,
};
pub use query::{RepliesQuery, Search, get_replies, record_reads, search};

use serde::Deserialize;
use serde_json::{Map, Value, json};

use crate::audit::EventType;
use crate::chat::channel;
use crate::chat::view::{self, RESERVED_MESSAGE_FIELDS};
use crate::chat::{Actor, Ctx, Error, Result, event, validate_message_id, validate_user_id};
use crate::store::MessageRow;
use crate::time::{now_micros, rfc3339};

const MAX_ATTACHMENTS: usize = 30;
const MAX_MENTIONS: usize = 100;
const MAX_CUSTOM_BYTES: usize = 5 * 1024;

#[derive(Debug, Default, Deserialize)]
pub struct SendMessage {
    pub message: Map<String, Value>,
    #[serde(default)]
    pub skip_push: bool,
}

fn too_long(max: usize) -> Error {
    Error::MessageTooLong { max }
}

/// The parts of a client message object that go into `MessageRow::data`: attachments,
/// mentions, quote, pin details and custom fields.
fn message_data(
    ctx: &Ctx<'_>,
    msg: &Map<String, Value>,
    into: &mut Map<String, Value>,
) -> Result<()> {
    if let Some(a) = msg.get("attachments") {
        let list = a
            .as_array()
            .ok_or_else(|| Error::input("attachments must be a list"))?;
        if list.len() > MAX_ATTACHMENTS {
            return Err(Error::input(format!(
                "a message can have at most {MAX_ATTACHMENTS} attachments"
            )));
        }
        if list.iter().any(|x| !x.is_object()) {
            return Err(Error::input("each attachment must be an object"));
        }
        into.insert("attachments".into(), a.clone());
    }
    if let Some(m) = msg.get("mentioned_users") {
        let list = m
            .as_array()
            .ok_or_else(|| Error::input("mentioned_users must be a list"))?;
        if list.len() > MAX_MENTIONS {
            return Err(Error::input("too many mentioned users"));
        }
        let ids = list
            .iter()
            .map(|x| {
                let id = x
                    .as_str()
                    .or_else(|| x.get("id").and_then(Value::as_str))
                    .ok_or_else(|| Error::input("mentioned_users must be user ids"))?;
                validate_user_id(id)?;
                Ok(Value::from(id))
            })
            .collect::<Result<Vec<Value>>>()?;
        into.insert("mentioned_users".into(), ids.into());
    }
    let custom: Map<String, Value> = msg
        .iter()
        .filter(|(k, _)| {
            !RESERVED_MESSAGE_FIELDS.contains(&k.as_str())
                && ![
                    "attachments",
                    "mentioned_users",
                    "quoted_message_id",
                    "pinned_at",
                    "pin_expires",
                    "pinned_by_id",
                    "mentioned_channel",
                    "mentioned_here",
                    "restricted_visibility",
                    "poll_id",
                ]
                .contains(&k.as_str())
        })
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    if Value::Object(custom.clone()).to_string().len() > MAX_CUSTOM_BYTES {
        return Err(Error::input("message custom data must stay under 5KB"));
    }
    into.extend(custom);
    let _ = ctx;
    Ok(())
}

fn text_of(ctx: &Ctx<'_>, msg: &Map<String, Value>) -> Result<String> {
    let text = match msg.get("text") {
        None | Some(Value::Null) => String::new(),
        Some(Value::String(s)) => s.clone(),
        Some(_) => return Err(Error::input("message.text must be a string")),
    };
    let max = ctx.max_message_length;
    if text.chars().count() > max {
        return Err(too_long(max));
    }
    Ok(text)
}

/// `POST /channels/{type}/{id}/message`.
pub async fn send_message(
    ctx: &Ctx<'_>,
    actor: &Actor,
    cid: &str,
    body: &SendMessage,
) -> Result<Value> {
    let author = actor.require_user()?.clone();
    let loaded = channel::load(ctx, actor, cid).await?;
    let is_reply = msg_has_parent(&body.message);
    loaded.require(if is_reply { "SendReply" } else { "SendMessage" })?;
    let msg = &body.message;
    let id = match msg.get("id") {
        None | Some(Value::Null) => uuid::Uuid::new_v4().to_string(),
        Some(Value::String(id)) if !id.is_empty() => {
            validate_message_id(id)?;
            id.clone()
        }
        Some(_) => return Err(Error::input("message.id must be a non-empty string")),
    };
    let text = text_of(ctx, msg)?;
    let mut data = Map::new();
    message_data(ctx, msg, &mut data)?;
    let has_attachments = data
        .get("attachments")
        .and_then(Value::as_array)
        .is_some_and(|a| !a.is_empty());
    // Issue 16 item 8: a message may carry a poll (attached below, before it is stored).
    let poll_id = crate::chat::poll::poll_id_of(msg)?;
    if let Some(p) = &poll_id {
        data.insert("poll_id".into(), p.clone().into());
    }
    if text.trim().is_empty() && !has_attachments && poll_id.is_none() {
        return Err(Error::input("message must have text or attachments"));
    }
    let parent_id = match msg.get("parent_id") {
        None | Some(Value::Null) => None,
        Some(Value::String(p)) => {
            if !loaded.config.replies {
                return Err(Error::input(format!(
                    "replies are disabled for channel type {}",
                    loaded.channel.kind
                )));
            }
            let parent = ctx
                .store
                .messages
                .find_message(p)
                .await?
                .filter(|m| m.cid == cid)
                .ok_or_else(|| {
                    Error::input(format!("parent message {p} does not exist in {cid}"))
                })?;
            if parent.parent_id.is_some() {
                return Err(Error::MultipleNesting);
            }
            Some(parent.id)
        }
        Some(_) => return Err(Error::input("parent_id must be a string")),
    };
    if let Some(q) = msg.get("quoted_message_id").filter(|v| !v.is_null()) {
        let q = q
            .as_str()
            .ok_or_else(|| Error::input("quoted_message_id must be a string"))?;
        ctx.store
            .messages
            .find_message(q)
            .await?
            .filter(|m| m.cid == cid)
            .ok_or_else(|| Error::input(format!("quoted message {q} does not exist in {cid}")))?;
        data.insert("quoted_message_id".into(), q.into());
    }
    let kind = match msg.get("type").and_then(Value::as_str) {
        Some("system") if actor.is_admin() => "system",
        Some("regular") | None => {
            if parent_id.is_some() {
                "reply"
            } else {
                "regular"
            }
        }
        Some(other) if other == "reply" && parent_id.is_some() => "reply",
        Some(other) => {
            return Err(Error::input(format!(
                "message type {other:?} cannot be sent"
            )));
        }
    };
    let pinned = msg.get("pinned").and_then(Value::as_bool).unwrap_or(false);
    let now = now_micros();
    if pinned {
        data.insert("pinned_by_id".into(), author.id.clone().into());
        data.insert("pinned_at".into(), rfc3339(now).into());
    }
    let row = MessageRow {
        id,
        cid: cid.to_string(),
        user_id: author.id.clone(),
        kind: kind.to_string(),
        text,
        data,
        show_in_channel: parent_id.is_some()
            && msg
                .get("show_in_channel")
                .and_then(Value::as_bool)
                .unwrap_or(false),
        parent_id,
        silent: msg.get("silent").and_then(Value::as_bool).unwrap_or(false),
        pinned,
        reply_count: 0,
        created_at: now,
        updated_at: now,
        deleted_at: None,
        text_updated_at: None,
    };
    crate::chat::slow_mode::before_send(ctx, actor, &loaded).await?;
    let record = actor
        .audit(EventType::MessageCreate)
        .subject(author.id.clone())
        .object("message", row.id.clone())
        .meta("channel_type", &loaded.channel.kind)
        .meta("message_type", &row.kind);
    if let Some(p) = &poll_id {
        crate::chat::poll::attach(ctx, actor, &loaded, p, &row.id).await?;
    }
    ctx.audit
        .audited([record], async |records| {
            let messages = &ctx.store.messages;
            messages.insert_message(&row, !row.silent, &records).await
        })
        .await?;
    tracing::debug!(cid = %cid, message_id = %row.id, "message stored");
    crate::chat::member::unhide_on_message(ctx, cid).await?;

    let rendered = view::render_messages(ctx, std::slice::from_ref(&row), None)
        .await?
        .remove(0);
    let user_json = view::user_json(ctx, &author);
    let mut ev = event::channel_event("message.new", cid);
    ev["message"] = rendered.clone();
    ev["message_id"] = row.id.clone().into();
    ev["user"] = user_json.clone();
    ev["watcher_count"] = ctx.bus.watcher_count(cid).into();
    ev["channel_member_count"] = loaded.channel.member_count.into();
    ctx.bus.to_channel(cid, &ev).await;
    if row.parent_id.is_some() {
        // The reply is stored and announced: a failure here leaves counters stale, and
        // must not make the client resend it.
        if let Err(e) =
            crate::chat::thread::on_reply(ctx, &loaded, &row, &rendered, user_json).await
        {
            tracing::warn!(message_id = %row.id, error = %e, "thread events after a reply failed");
        }
    }

    if row.parent_id.is_none() || row.show_in_channel {
        notify_members_not_watching(ctx, &loaded, &row, &rendered).await?;
    }
    Ok(json!({ "message": rendered }))
}

/// `notification.message_new` for members who are not watching the channel, each with
/// their own unread counters.
async fn notify_members_not_watching(
    ctx: &Ctx<'_>,
    loaded: &channel::Loaded,
    row: &MessageRow,
    rendered: &Value,
) -> Result<()> {
    let cid = &loaded.channel.cid;
    let members = ctx
        .store
        .channels
        .find_members(std::slice::from_ref(cid))
        .await?;
    for m in members.iter().filter(|m| {
        m.is_active() && m.user_id != row.user_id && !ctx.bus.is_watching(cid, &m.user_id)
    }) {
        if !ctx.bus.is_online(&m.user_id) {
            continue;
        }
        let Some(target) = ctx.store.users.find_user(&m.user_id).await? else {
            continue;
        };
        let target = Actor::user(target);
        let unread = crate::chat::read::unread_for(ctx, &m.user_id).await?;
        let mut ev = event::channel_event("notification.message_new", cid);
        ev["channel"] =
            view::channel_json(ctx, &target, &loaded.channel, &loaded.config, Some(m), None);
        ev["message"] = rendered.clone();
        ev["total_unread_count"] = unread.total.into();
        ev["unread_channels"] = unread.channels.into();
        ev["unread_count"] = unread.total.into();
        ctx.bus.to_user(&m.user_id, &ev).await;
    }
    Ok(())
}

async fn load_message(ctx: &Ctx<'_>, id: &str) -> Result<MessageRow> {
    validate_message_id(id)?;
    ctx.store
        .messages
        .find_message(id)
        .await?
        .ok_or_else(|| Error::not_found(format!("message {id} does not exist")))
}

/// Loads a message the actor can read (its channel is readable and it is not truncated).
pub(crate) async fn readable_message(
    ctx: &Ctx<'_>,
    actor: &Actor,
    id: &str,
) -> Result<(MessageRow, channel::Loaded)> {
    let m = load_message(ctx, id).await?;
    let loaded = channel::load(ctx, actor, &m.cid).await?;
    loaded.require_read()?;
    if loaded
        .channel
        .truncated_at
        .is_some_and(|t| m.created_at <= t)
    {
        return Err(Error::not_found(format!("message {id} does not exist")));
    }
    Ok((m, loaded))
}

/// Authors change their own messages (`…Own…`); moderators anyone's (`…Any…`).
fn may_edit(
    actor: &Actor,
    loaded: &channel::Loaded,
    m: &MessageRow,
    own: &str,
    any: &str,
) -> Result<()> {
    if actor.user_id() == Some(m.user_id.as_str()) {
        loaded.require_on_message(own, true)
    } else {
        loaded.require_on_message(any, false)
    }
}

fn msg_has_parent(msg: &Map<String, Value>) -> bool {
    msg.get("parent_id").is_some_and(|p| !p.is_null())
}

/// `GET /messages/{id}`.
pub async fn get_message(ctx: &Ctx<'_>, actor: &Actor, id: &str) -> Result<Value> {
    let (m, _) = readable_message(ctx, actor, id).await?;
    let cid = m.cid.clone();
    let rendered = view::render_messages(ctx, &[m], actor.user_id())
        .await?
        .remove(0);
    record_reads(ctx, actor, "get_message", [(cid.as_str(), 1)]).await?;
    Ok(json!({ "message": rendered }))
}

/// The type part of a cid (`messaging:general` → `messaging`).
fn channel_type_of(cid: &str) -> &str {
    cid.split_once(':').map_or(cid, |(t, _)| t)
}
