//! Reactions: send (optionally unique per user) and delete, each announced with the full
//! updated message so the SDK can replace it.

use serde::Deserialize;
use serde_json::{Map, Value, json};

use crate::chat::Ctx;
use crate::chat::{Actor, channel, event, view};
use crate::chat::{Error, Result};
use crate::store::ReactionRow;
use crate::time::now_micros;

#[derive(Debug, Default, Deserialize)]
pub struct SendReaction {
    pub reaction: Map<String, Value>,
    #[serde(default)]
    pub enforce_unique: bool,
    #[serde(default)]
    pub skip_push: bool,
}

const RESERVED: &[&str] = &[
    "type",
    "score",
    "user",
    "user_id",
    "message_id",
    "created_at",
    "updated_at",
];

fn validate_type(kind: &str) -> Result<()> {
    if !kind.is_empty()
        && kind.len() <= 30
        && kind
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-' || c == '+')
    {
        Ok(())
    } else {
        Err(Error::input(format!("reaction type {kind:?} is invalid")))
    }
}

async fn message_and_channel(
    ctx: &Ctx<'_>,
    actor: &Actor,
    message_id: &str,
) -> Result<(crate::store::MessageRow, channel::Loaded)> {
    crate::chat::validate_message_id(message_id)?;
    let m = ctx
        .store
        .messages
        .find_message(message_id)
        .await?
        .ok_or_else(|| Error::not_found(format!("message {message_id} does not exist")))?;
    let loaded = channel::load(ctx, actor, &m.cid).await?;
    if !loaded.config.reactions {
        return Err(Error::input(format!(
            "reactions are disabled for channel type {}",
            loaded.channel.kind
        )));
    }
    Ok((m, loaded))
}

async fn announce(
    ctx: &Ctx<'_>,
    kind: &str,
    cid: &str,
    message_id: &str,
    reaction: &ReactionRow,
    author: &Value,
    viewer: &str,
) -> Result<Value> {
    let m = ctx
        .store
        .messages
        .find_message(message_id)
        .await?
        .ok_or_else(|| Error::not_found(format!("message {message_id} does not exist")))?;
    // Events carry the message without per-viewer `own_reactions`; the SDK derives them
    // from `reaction.user_id`.
    let shared = view::render_messages(ctx, std::slice::from_ref(&m), None)
        .await?
        .remove(0);
    let reaction_json = view::reaction_json(reaction, author.clone());
    let mut ev = event::channel_event(kind, cid);
    ev["message"] = shared;
    ev["reaction"] = reaction_json.clone();
    ev["user"] = author.clone();
    ctx.bus.to_channel(cid, &ev).await;
    let own = view::render_messages(ctx, &[m], Some(viewer))
        .await?
        .remove(0);
    Ok(json!({ "message": own, "reaction": reaction_json }))
}

/// `POST /messages/{id}/reaction`.
pub async fn send_reaction(
    ctx: &Ctx<'_>,
    actor: &Actor,
    message_id: &str,
    body: &SendReaction,
) -> Result<Value> {
    let user = actor.require_user()?;
    let (m, loaded) = message_and_channel(ctx, actor, message_id).await?;
    loaded.require("SendReaction")?;
    if m.deleted_at.is_some() {
        return Err(Error::input(format!("message {message_id} was deleted")));
    }
    let kind = body
        .reaction
        .get("type")
        .and_then(Value::as_str)
        .ok_or_else(|| Error::input("reaction.type is required"))?;
    validate_type(kind)?;
    let score = match body.reaction.get("score") {
        None | Some(Value::Null) => 1,
        Some(v) => v
            .as_i64()
            .filter(|s| (1..=1_000_000).contains(s))
            .ok_or_else(|| Error::input("reaction.score must be a positive integer"))?,
    };
    let data: Map<String, Value> = body
        .reaction
        .iter()
        .filter(|(k, _)| !RESERVED.contains(&k.as_str()))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    if Value::Object(data.clone()).to_string().len() > 1024 {
        return Err(Error::input("reaction custom data must stay under 1KB"));
    }
    let now = now_micros();
    let row = ReactionRow {
        message_id: m.id.clone(),
        user_id: user.id.clone(),
        kind: kind.to_string(),
        score,
        data,
        created_at: now,
        updated_at: now,
    };
    let replaced = ctx
        .store
        .messages
        .upsert_reaction(&row, body.enforce_unique)
        .await?;
    let author = view::user_json(ctx, user);
    let kind = if replaced {
        "reaction.updated"
    } else {
        "reaction.new"
    };
    announce(ctx, kind, &m.cid, &m.id, &row, &author, &user.id).await
}

/// `DELETE /messages/{id}/reaction/{type}`.
pub async fn delete_reaction(
    ctx: &Ctx<'_>,
    actor: &Actor,
    message_id: &str,
    kind: &str,
) -> Result<Value> {
    let user = actor.require_user()?;
    validate_type(kind)?;
    let (m, loaded) = message_and_channel(ctx, actor, message_id).await?;
    loaded.require_read()?;
    let removed = ctx
        .store
        .messages
        .delete_reaction(&m.id, &user.id, kind)
        .await?
        .ok_or_else(|| {
            Error::not_found(format!(
                "reaction {kind} by {} on message {message_id} does not exist",
                user.id
            ))
        })?;
    let author = view::user_json(ctx, user);
    announce(
        ctx,
        "reaction.deleted",
        &m.cid,
        &m.id,
        &removed,
        &author,
        &user.id,
    )
    .await
}
