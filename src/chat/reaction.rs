//! Reactions: send (optionally unique per user) and delete, each announced with the full
//! updated message so the SDK can replace it.

use serde::Deserialize;
use serde_json::{Map, Value, json};

use crate::app::AppState;
use crate::chat::{Actor, channel, event, view};
use crate::http::error::{ApiError, ApiResult};
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

fn validate_type(kind: &str) -> ApiResult<()> {
    if !kind.is_empty()
        && kind.len() <= 30
        && kind
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-' || c == '+')
    {
        Ok(())
    } else {
        Err(ApiError::input(format!(
            "reaction type {kind:?} is invalid"
        )))
    }
}

async fn message_and_channel(
    state: &AppState,
    actor: &Actor,
    message_id: &str,
) -> ApiResult<(crate::store::MessageRow, channel::Loaded)> {
    crate::chat::validate_message_id(message_id)?;
    let m = state
        .store
        .messages
        .find_message(message_id)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("message {message_id} does not exist")))?;
    let loaded = channel::load(state, actor, &m.cid).await?;
    if !loaded.config.reactions {
        return Err(ApiError::input(format!(
            "reactions are disabled for channel type {}",
            loaded.channel.kind
        )));
    }
    Ok((m, loaded))
}

async fn announce(
    state: &AppState,
    kind: &str,
    cid: &str,
    message_id: &str,
    reaction: &ReactionRow,
    author: &Value,
    viewer: &str,
) -> ApiResult<Value> {
    let m = state
        .store
        .messages
        .find_message(message_id)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("message {message_id} does not exist")))?;
    // Events carry the message without per-viewer `own_reactions`; the SDK derives them
    // from `reaction.user_id`.
    let shared = view::render_messages(state, std::slice::from_ref(&m), None)
        .await?
        .remove(0);
    let reaction_json = view::reaction_json(reaction, author.clone());
    let mut ev = event::channel_event(kind, cid);
    ev["message"] = shared;
    ev["reaction"] = reaction_json.clone();
    ev["user"] = author.clone();
    state.bus.to_channel(cid, &ev).await;
    let own = view::render_messages(state, &[m], Some(viewer))
        .await?
        .remove(0);
    Ok(json!({ "message": own, "reaction": reaction_json }))
}

/// `POST /messages/{id}/reaction`.
pub async fn send_reaction(
    state: &AppState,
    actor: &Actor,
    message_id: &str,
    body: &SendReaction,
) -> ApiResult<Value> {
    let user = actor.require_user()?;
    let (m, loaded) = message_and_channel(state, actor, message_id).await?;
    loaded.require("SendReaction")?;
    if m.deleted_at.is_some() {
        return Err(ApiError::input(format!("message {message_id} was deleted")));
    }
    let kind = body
        .reaction
        .get("type")
        .and_then(Value::as_str)
        .ok_or_else(|| ApiError::input("reaction.type is required"))?;
    validate_type(kind)?;
    let score = match body.reaction.get("score") {
        None | Some(Value::Null) => 1,
        Some(v) => v
            .as_i64()
            .filter(|s| (1..=1_000_000).contains(s))
            .ok_or_else(|| ApiError::input("reaction.score must be a positive integer"))?,
    };
    let data: Map<String, Value> = body
        .reaction
        .iter()
        .filter(|(k, _)| !RESERVED.contains(&k.as_str()))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    if Value::Object(data.clone()).to_string().len() > 1024 {
        return Err(ApiError::input("reaction custom data must stay under 1KB"));
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
    let replaced = state
        .store
        .messages
        .upsert_reaction(&row, body.enforce_unique)
        .await?;
    let author = view::user_json(state, user);
    let kind = if replaced {
        "reaction.updated"
    } else {
        "reaction.new"
    };
    announce(state, kind, &m.cid, &m.id, &row, &author, &user.id).await
}

/// `DELETE /messages/{id}/reaction/{type}`.
pub async fn delete_reaction(
    state: &AppState,
    actor: &Actor,
    message_id: &str,
    kind: &str,
) -> ApiResult<Value> {
    let user = actor.require_user()?;
    validate_type(kind)?;
    let (m, loaded) = message_and_channel(state, actor, message_id).await?;
    loaded.require_read()?;
    let removed = state
        .store
        .messages
        .delete_reaction(&m.id, &user.id, kind)
        .await?
        .ok_or_else(|| {
            ApiError::not_found(format!(
                "reaction {kind} by {} on message {message_id} does not exist",
                user.id
            ))
        })?;
    let author = view::user_json(state, user);
    announce(
        state,
        "reaction.deleted",
        &m.cid,
        &m.id,
        &removed,
        &author,
        &user.id,
    )
    .await
}
