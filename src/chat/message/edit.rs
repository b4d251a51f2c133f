//! Changing messages: update (replace), partial update (pinning goes through here) and
//! delete, each stored with its record and announced to the channel.

use serde::Deserialize;
use serde_json::{Map, Value, json};

use super::{channel_type_of, load_message, may_edit, message_data, readable_message, text_of};
use crate::audit::EventType;
use crate::chat::pin::{self, set_pinned};
use crate::chat::{Actor, Ctx, Error, Result, event};
use crate::chat::{channel, view};
use crate::store::MessageRow;
use crate::time::now_micros;

async fn store_and_announce(
    ctx: &Ctx<'_>,
    actor: &Actor,
    m: &MessageRow,
    kind: &str,
) -> Result<Value> {
    let event = if kind == "message.deleted" {
        EventType::MessageDelete
    } else {
        EventType::MessageUpdate
    };
    let mut record = actor
        .audit(event)
        .subject(m.user_id.clone())
        .object("message", m.id.clone())
        .meta("channel_type", channel_type_of(&m.cid));
    if event == EventType::MessageDelete {
        record = record.meta("hard", false);
    }
    ctx.audit
        .audited([record], async |records| {
            ctx.store.messages.update_message(m, &records).await
        })
        .await?;
    let stored = load_message(ctx, &m.id).await?;
    let rendered = view::render_messages(ctx, std::slice::from_ref(&stored), actor.user_id())
        .await?
        .remove(0);
    let mut ev = event::channel_event(kind, &m.cid);
    // A message the actor deleted for themselves only is not deleted for the channel.
    ev["message"] = if rendered["deleted_for_me"] == true {
        view::render_messages(ctx, &[stored], None).await?.remove(0)
    } else {
        rendered.clone()
    };
    ev["message_id"] = m.id.clone().into();
    if let Some(u) = &actor.user {
        ev["user"] = view::user_json(ctx, u);
    }
    if kind == "message.deleted" {
        ev["hard_delete"] = false.into();
    }
    ctx.bus.to_channel(&m.cid, &ev).await;
    Ok(json!({ "message": rendered }))
}

#[derive(Debug, Default, Deserialize)]
pub struct UpdateMessage {
    pub message: Map<String, Value>,
}

/// A message the actor may change: readable and not deleted. What they may change is
/// decided by [`authorize_change`] once the change is known.
async fn updatable_message(
    ctx: &Ctx<'_>,
    actor: &Actor,
    id: &str,
) -> Result<(MessageRow, channel::Loaded)> {
    let (m, loaded) = readable_message(ctx, actor, id).await?;
    if m.deleted_at.is_some() {
        may_edit(actor, &loaded, &m, "UpdateOwnMessage", "UpdateAnyMessage")?;
        return Err(Error::input(format!(
            "message {id} was deleted and cannot be updated"
        )));
    }
    Ok((m, loaded))
}

/// Pinning and unpinning (and `pin_expires`) need `PinMessage`; any other change needs
/// the update permission (own or any message). A change of nothing needs the latter.
fn authorize_change(
    actor: &Actor,
    loaded: &channel::Loaded,
    before: &MessageRow,
    after: &MessageRow,
) -> Result<()> {
    let pin_changed = pin::pin_state(before) != pin::pin_state(after);
    if pin_changed {
        loaded.require("PinMessage")?;
    }
    if pin::content_of(before) != pin::content_of(after) || !pin_changed {
        may_edit(
            actor,
            loaded,
            before,
            "UpdateOwnMessage",
            "UpdateAnyMessage",
        )?;
    }
    Ok(())
}

/// `POST /messages/{id}`: replaces text, attachments, mentions and custom fields.
pub async fn update_message(
    ctx: &Ctx<'_>,
    actor: &Actor,
    id: &str,
    body: &UpdateMessage,
) -> Result<Value> {
    let (mut m, loaded) = updatable_message(ctx, actor, id).await?;
    let before = m.clone();
    if body
        .message
        .get("id")
        .and_then(Value::as_str)
        .is_some_and(|b| b != id)
    {
        return Err(Error::input("message.id does not match the id in the path"));
    }
    let text = text_of(ctx, &body.message)?;
    if text != m.text {
        m.text_updated_at = Some(now_micros());
    }
    m.text = text;
    let mut data = Map::new();
    for keep in [
        "quoted_message_id",
        "pinned_by_id",
        "pinned_at",
        "pin_expires",
        // Issue 16 item 8: the poll stays on its message.
        "poll_id",
    ] {
        if let Some(v) = m.data.get(keep) {
            data.insert(keep.into(), v.clone());
        }
    }
    message_data(ctx, &body.message, &mut data)?;
    m.data = data;
    if let Some(pinned) = body.message.get("pinned").and_then(Value::as_bool) {
        set_pinned(&mut m, pinned, actor);
        if pinned && let Some(v) = body.message.get("pin_expires") {
            set_pin_expires(&mut m, v)?;
        }
    }
    authorize_change(actor, &loaded, &before, &m)?;
    m.updated_at = now_micros();
    store_and_announce(ctx, actor, &m, "message.updated").await
}

fn set_pin_expires(m: &mut MessageRow, v: &Value) -> Result<()> {
    match pin::parse_pin_expires(v)? {
        Some(t) => m.data.insert("pin_expires".into(), t.into()),
        None => m.data.remove("pin_expires"),
    };
    Ok(())
}

#[derive(Debug, Default, Deserialize)]
pub struct PartialUpdateMessage {
    #[serde(default)]
    pub set: Map<String, Value>,
    #[serde(default)]
    pub unset: Vec<String>,
}

/// `PUT /messages/{id}`: sets and unsets fields (pinning goes through here).
pub async fn partial_update_message(
    ctx: &Ctx<'_>,
    actor: &Actor,
    id: &str,
    body: &PartialUpdateMessage,
) -> Result<Value> {
    let (mut m, loaded) = updatable_message(ctx, actor, id).await?;
    let before = m.clone();
    const IMMUTABLE: &[&str] = &[
        "id",
        "cid",
        "user",
        "user_id",
        "created_at",
        "updated_at",
        "deleted_at",
        "type",
        "parent_id",
        "reply_count",
        "latest_reactions",
        "own_reactions",
        "reaction_groups",
        "reaction_counts",
        "reaction_scores",
    ];
    for k in body.set.keys().chain(body.unset.iter()) {
        if IMMUTABLE.contains(&k.as_str()) {
            return Err(Error::input(format!("field {k} cannot be changed")));
        }
    }
    if body.set.contains_key("text") {
        let text = text_of(ctx, &body.set)?;
        if text != m.text {
            m.text_updated_at = Some(now_micros());
        }
        m.text = text;
    }
    let mut fields = body.set.clone();
    fields.remove("text");
    let pinned = fields.remove("pinned").and_then(|v| v.as_bool());
    message_data(ctx, &fields, &mut m.data)?;
    for k in &body.unset {
        if k == "text" {
            m.text.clear();
        } else if k == "pinned" {
            set_pinned(&mut m, false, actor);
        } else {
            m.data.remove(k);
        }
    }
    if let Some(p) = pinned {
        set_pinned(&mut m, p, actor);
    }
    if m.pinned
        && let Some(v) = fields.get("pin_expires")
    {
        set_pin_expires(&mut m, v)?;
    }
    authorize_change(actor, &loaded, &before, &m)?;
    m.updated_at = now_micros();
    store_and_announce(ctx, actor, &m, "message.updated").await
}

/// `DELETE /messages/{id}`: soft by default (the row stays for retention; the API shows it
/// as deleted with no content); `hard` removes it and its reactions.
pub async fn delete_message(ctx: &Ctx<'_>, actor: &Actor, id: &str, hard: bool) -> Result<Value> {
    let (mut m, loaded) = readable_message(ctx, actor, id).await?;
    may_edit(actor, &loaded, &m, "DeleteOwnMessage", "DeleteAnyMessage")?;
    let now = now_micros();
    if hard {
        m.kind = "deleted".into();
        m.deleted_at = Some(now);
        m.updated_at = now;
        let rendered = view::render_messages(ctx, std::slice::from_ref(&m), actor.user_id())
            .await?
            .remove(0);
        let record = actor
            .audit(EventType::MessageDelete)
            .subject(m.user_id.clone())
            .object("message", m.id.clone())
            .meta("channel_type", channel_type_of(&m.cid))
            .meta("hard", true);
        ctx.audit
            .audited([record], async |records| {
                ctx.store.messages.delete_message(id, &records).await
            })
            .await?;
        let mut ev = event::channel_event("message.deleted", &m.cid);
        ev["message"] = rendered.clone();
        ev["message_id"] = m.id.clone().into();
        ev["hard_delete"] = true.into();
        ctx.bus.to_channel(&m.cid, &ev).await;
        return Ok(json!({ "message": rendered }));
    }
    if m.deleted_at.is_none() {
        m.kind = "deleted".into();
        m.deleted_at = Some(now);
        m.updated_at = now;
    }
    store_and_announce(ctx, actor, &m, "message.deleted").await
}
