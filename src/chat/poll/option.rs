//! Poll options: added by the creator (or, where the poll allows suggestions, by anyone
//! who may vote), changed and removed by the creator.

use serde_json::{Map, Value, json};

use super::{
    MAX_OPTIONS, announce_update, option_of, owned_poll, render, render_polls, visible_poll, vote,
};
use crate::audit::EventType;
use crate::chat::{Actor, Ctx, Error, Result};
use crate::time::now_micros;

/// `POST /polls/{id}/options` (the creator, or anyone who may vote when the poll allows
/// suggested options) and `PUT /polls/{id}/options` (the creator).
pub async fn upsert_option(
    ctx: &Ctx<'_>,
    actor: &Actor,
    poll_id: &str,
    body: &Map<String, Value>,
    create: bool,
) -> Result<Value> {
    let user = actor.require_user()?;
    let poll = visible_poll(ctx, actor, poll_id).await?;
    let is_owner = actor.is_admin() || user.id == poll.created_by_id;
    if !is_owner {
        if !create || !poll.allow_user_suggested_options || poll.is_closed {
            return Err(Error::not_allowed(format!(
                "only the creator of poll {poll_id} may change its options"
            )));
        }
        vote::require_vote_on_channel(ctx, actor, &poll).await?;
    } else {
        actor.authorize_app(ctx, "CreatePoll")?;
    }
    let now = now_micros();
    let existing = ctx
        .store
        .polls
        .find_options(std::slice::from_ref(&poll.id))
        .await?;
    if create && existing.len() >= MAX_OPTIONS {
        return Err(Error::input(format!(
            "a poll can have at most {MAX_OPTIONS} options"
        )));
    }
    let mut option = option_of(
        &poll.id,
        &Value::Object(body.clone()),
        existing.len() as i64,
        now,
    )?;
    let old = existing.iter().find(|o| o.id == option.id);
    match (create, old) {
        (true, Some(_)) => {
            return Err(Error::input(format!("poll option {} exists", option.id)));
        }
        (false, None) => {
            return Err(Error::not_found(format!(
                "poll option {} does not exist",
                option.id
            )));
        }
        (false, Some(old)) => option.created_at = old.created_at,
        (true, None) => {}
    }
    let text = option
        .data
        .get("text")
        .and_then(Value::as_str)
        .unwrap_or("");
    if existing.iter().any(|o| {
        o.id != option.id
            && o.data
                .get("text")
                .and_then(Value::as_str)
                .is_some_and(|t| t.trim().eq_ignore_ascii_case(text.trim()))
    }) {
        return Err(Error::input("poll options must have distinct texts"));
    }
    let record = actor
        .audit(if create {
            EventType::MessageCreate
        } else {
            EventType::MessageUpdate
        })
        .subject(user.id.clone())
        .object("poll_option", format!("{}/{}", poll.id, option.id));
    ctx.audit
        .audited([record], async |records| {
            ctx.store.polls.upsert_option(&option, &records).await
        })
        .await?;
    announce_update(ctx, &poll, false).await?;
    Ok(json!({ "poll_option": render::option_json(&option, 0, None) }))
}

/// `GET /polls/{id}/options/{option_id}`.
pub async fn get_option(
    ctx: &Ctx<'_>,
    actor: &Actor,
    poll_id: &str,
    option_id: &str,
) -> Result<Value> {
    let poll = visible_poll(ctx, actor, poll_id).await?;
    let rendered = render_polls(ctx, std::slice::from_ref(&poll), actor.user_id()).await?;
    let option = rendered
        .get(&poll.id)
        .and_then(|p| p["options"].as_array())
        .and_then(|list| list.iter().find(|o| o["id"] == option_id))
        .cloned()
        .ok_or_else(|| Error::not_found(format!("poll option {option_id} does not exist")))?;
    Ok(json!({ "poll_option": option }))
}

/// `DELETE /polls/{id}/options/{option_id}` (its votes go with it).
pub async fn delete_option(
    ctx: &Ctx<'_>,
    actor: &Actor,
    poll_id: &str,
    option_id: &str,
) -> Result<Value> {
    let poll = owned_poll(ctx, actor, poll_id).await?;
    let record = actor
        .audit(EventType::MessageDelete)
        .subject(poll.created_by_id.clone())
        .object("poll_option", format!("{poll_id}/{option_id}"));
    let removed = ctx
        .audit
        .audited([record], async |records| {
            ctx.store
                .polls
                .delete_option(&poll.id, option_id, &records)
                .await
        })
        .await?;
    if !removed {
        return Err(Error::not_found(format!(
            "poll option {option_id} does not exist"
        )));
    }
    announce_update(ctx, &poll, false).await?;
    Ok(json!({}))
}
