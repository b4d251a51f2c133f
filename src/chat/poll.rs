//! Polls (Stream's `/polls`): created on their own by a user, attached to one message by
//! sending that message with `poll_id` (`attach`), voted on through the message. Who may
//! see a poll: its creator, admins and server-side callers, and whoever may read the channel
//! of the message it is attached to. Who may change or delete it: its creator and admins.
//! Voting asks the policies for `CastPollVote` on that channel, and needs the channel type's
//! `polls` flag. Votes and queries are in `poll/vote.rs`, rendering in `poll/render.rs`.
//!
//! Poll names, descriptions, options and answers are personal data: sealed by the store
//! (`crypto::sealed::polls`).

mod option;
mod render;
mod vote;

pub use crate::chat::listing::QueryPage;
pub use option::{delete_option, get_option, upsert_option};
pub use render::{attach_to_messages, render_polls};
pub use vote::{CastVote, cast_vote, query_polls, query_votes, remove_vote};

use serde_json::{Map, Value, json};

use crate::audit::EventType;
use crate::chat::{Actor, Ctx, Error, Result, channel, event, validate_message_id};
use crate::store::{PollOptionRow, PollRow};
use crate::time::now_micros;

const MAX_NAME: usize = 255;
const MAX_DESCRIPTION: usize = 2000;
const MAX_OPTION_TEXT: usize = 255;
pub(crate) const MAX_OPTIONS: usize = 100;
const MAX_VOTES: i64 = 10;
const MAX_CUSTOM_BYTES: usize = 5 * 1024;

/// Fields of a poll the client may not set as custom data.
const RESERVED: &[&str] = &[
    "id",
    "name",
    "description",
    "voting_visibility",
    "enforce_unique_vote",
    "max_votes_allowed",
    "allow_answers",
    "allow_user_suggested_options",
    "is_closed",
    "options",
    "user",
    "user_id",
    "created_by",
    "created_by_id",
    "created_at",
    "updated_at",
    "vote_count",
    "vote_counts_by_option",
    "answers_count",
    "latest_answers",
    "latest_votes_by_option",
    "own_votes",
    "message_id",
    "cid",
];

const OPTION_RESERVED: &[&str] = &[
    "id",
    "text",
    "position",
    "poll_id",
    "user",
    "user_id",
    "vote_count",
    "votes",
    "created_at",
    "updated_at",
];

fn opt_str<'a>(body: &'a Map<String, Value>, key: &str, max: usize) -> Result<Option<&'a str>> {
    match body.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) if s.chars().count() <= max && !s.chars().any(char::is_control) => {
            Ok(Some(s))
        }
        Some(Value::String(_)) => Err(Error::input(format!(
            "{key} must be at most {max} characters without control characters"
        ))),
        Some(_) => Err(Error::input(format!("{key} must be a string"))),
    }
}

fn opt_bool(body: &Map<String, Value>, key: &str) -> Result<Option<bool>> {
    match body.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Bool(b)) => Ok(Some(*b)),
        Some(_) => Err(Error::input(format!("{key} must be a boolean"))),
    }
}

fn custom_of(body: &Map<String, Value>, reserved: &[&str]) -> Result<Map<String, Value>> {
    let custom: Map<String, Value> = body
        .iter()
        .filter(|(k, _)| !reserved.contains(&k.as_str()))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    if Value::Object(custom.clone()).to_string().len() > MAX_CUSTOM_BYTES {
        return Err(Error::input("poll custom data must stay under 5KB"));
    }
    Ok(custom)
}

/// An id the client chose, or a new UUID.
fn id_of(body: &Map<String, Value>) -> Result<String> {
    match body.get("id") {
        None | Some(Value::Null) => Ok(uuid::Uuid::new_v4().to_string()),
        Some(Value::String(id)) if !id.is_empty() => {
            validate_message_id(id)?;
            Ok(id.clone())
        }
        Some(_) => Err(Error::input("id must be a non-empty string")),
    }
}

/// Reads the settings and texts of `body` into `poll` (creation and full update).
fn apply_poll_fields(poll: &mut PollRow, body: &Map<String, Value>) -> Result<()> {
    let name = opt_str(body, "name", MAX_NAME)?
        .filter(|n| !n.trim().is_empty())
        .ok_or_else(|| Error::input("poll name is required"))?;
    let mut data = custom_of(body, RESERVED)?;
    data.insert("name".into(), name.into());
    if let Some(d) = opt_str(body, "description", MAX_DESCRIPTION)? {
        data.insert("description".into(), d.into());
    }
    poll.data = data;
    poll.voting_visibility = match opt_str(body, "voting_visibility", 16)? {
        None | Some("public") => "public".into(),
        Some("anonymous") => "anonymous".into(),
        Some(other) => {
            return Err(Error::input(format!(
                "voting_visibility {other:?} is invalid: use public or anonymous"
            )));
        }
    };
    poll.enforce_unique_vote = opt_bool(body, "enforce_unique_vote")?.unwrap_or(false);
    poll.max_votes_allowed = match body.get("max_votes_allowed") {
        None | Some(Value::Null) => None,
        Some(v) => Some(
            v.as_i64()
                .filter(|n| (1..=MAX_VOTES).contains(n))
                .ok_or_else(|| {
                    Error::input(format!("max_votes_allowed must be from 1 to {MAX_VOTES}"))
                })?,
        ),
    };
    if poll.enforce_unique_vote && poll.max_votes_allowed.is_some_and(|n| n > 1) {
        return Err(Error::input(
            "enforce_unique_vote and max_votes_allowed above 1 cannot be combined",
        ));
    }
    poll.allow_answers = opt_bool(body, "allow_answers")?.unwrap_or(false);
    poll.allow_user_suggested_options =
        opt_bool(body, "allow_user_suggested_options")?.unwrap_or(false);
    poll.is_closed = opt_bool(body, "is_closed")?.unwrap_or(false);
    Ok(())
}

/// One option from the client: `{text, id?, position?, ...custom}`.
pub(crate) fn option_of(
    poll_id: &str,
    v: &Value,
    position: i64,
    now: i64,
) -> Result<PollOptionRow> {
    let o = v
        .as_object()
        .ok_or_else(|| Error::input("each poll option must be an object"))?;
    let text = opt_str(o, "text", MAX_OPTION_TEXT)?
        .filter(|t| !t.trim().is_empty())
        .ok_or_else(|| Error::input("poll option text is required"))?;
    let position = match o.get("position") {
        None | Some(Value::Null) => position,
        Some(p) => p
            .as_i64()
            .filter(|p| (0..=10_000).contains(p))
            .ok_or_else(|| Error::input("poll option position must be a small number"))?,
    };
    let mut data = custom_of(o, OPTION_RESERVED)?;
    data.insert("text".into(), text.into());
    Ok(PollOptionRow {
        poll_id: poll_id.to_string(),
        id: id_of(o)?,
        position,
        data,
        created_at: now,
        updated_at: now,
    })
}

fn options_of(poll_id: &str, body: &Map<String, Value>, now: i64) -> Result<Vec<PollOptionRow>> {
    let list = match body.get("options") {
        None | Some(Value::Null) => return Ok(Vec::new()),
        Some(Value::Array(list)) => list,
        Some(_) => return Err(Error::input("options must be a list")),
    };
    if list.len() > MAX_OPTIONS {
        return Err(Error::input(format!(
            "a poll can have at most {MAX_OPTIONS} options"
        )));
    }
    let options = list
        .iter()
        .enumerate()
        .map(|(i, v)| option_of(poll_id, v, i as i64, now))
        .collect::<Result<Vec<_>>>()?;
    let mut seen = std::collections::HashSet::new();
    for o in &options {
        let text = o.data.get("text").and_then(Value::as_str).unwrap_or("");
        if !seen.insert(text.trim().to_lowercase()) || !seen.insert(format!("\0{}", o.id)) {
            return Err(Error::input(
                "poll options must have distinct texts and ids",
            ));
        }
    }
    Ok(options)
}

/// A poll the actor may see, or not found (a poll one may not see is not revealed).
pub(crate) async fn visible_poll(ctx: &Ctx<'_>, actor: &Actor, id: &str) -> Result<PollRow> {
    validate_message_id(id)?;
    let missing = || Error::not_found(format!("poll {id} does not exist"));
    let poll = ctx.store.polls.find_poll(id).await?.ok_or_else(missing)?;
    actor.authorize_app(ctx, "QueryPolls")?;
    if actor.is_admin() || actor.user_id() == Some(poll.created_by_id.as_str()) {
        return Ok(poll);
    }
    let Some(cid) = &poll.cid else {
        return Err(missing());
    };
    let hidden = |e: Error| match e {
        Error::Store(_) | Error::Record(_) => e,
        _ => missing(),
    };
    let loaded = channel::load(ctx, actor, cid).await.map_err(hidden)?;
    loaded.require_read().map_err(hidden)?;
    Ok(poll)
}

/// A poll the actor may change: its creator or an admin.
pub(crate) async fn owned_poll(ctx: &Ctx<'_>, actor: &Actor, id: &str) -> Result<PollRow> {
    let poll = visible_poll(ctx, actor, id).await?;
    actor.authorize_app(ctx, "CreatePoll")?;
    if !actor.is_admin() && actor.user_id() != Some(poll.created_by_id.as_str()) {
        return Err(Error::not_allowed(format!(
            "only the creator of poll {id} may change it"
        )));
    }
    Ok(poll)
}

/// The poll as the actor sees it, `{"poll": …}`.
async fn answer(ctx: &Ctx<'_>, poll: &PollRow, viewer: Option<&str>) -> Result<Value> {
    let mut rendered = render_polls(ctx, std::slice::from_ref(poll), viewer).await?;
    Ok(json!({ "poll": rendered.remove(&poll.id).unwrap_or(Value::Null) }))
}

/// Sends `poll.updated` (and `poll.closed` when it was just closed) to the watchers of the
/// channel the poll is attached to.
pub(crate) async fn announce_update(ctx: &Ctx<'_>, poll: &PollRow, closed_now: bool) -> Result<()> {
    let (Some(cid), Some(message_id)) = (&poll.cid, &poll.message_id) else {
        return Ok(());
    };
    let shared = render_polls(ctx, std::slice::from_ref(poll), None)
        .await?
        .remove(&poll.id)
        .unwrap_or(Value::Null);
    let mut kinds = vec!["poll.updated"];
    if closed_now {
        kinds.push("poll.closed");
    }
    for kind in kinds {
        let mut ev = event::channel_event(kind, cid);
        ev["message_id"] = message_id.clone().into();
        ev["poll"] = shared.clone();
        ctx.bus.to_channel(cid, &ev).await;
    }
    Ok(())
}

/// `POST /polls`.
pub async fn create_poll(ctx: &Ctx<'_>, actor: &Actor, body: &Map<String, Value>) -> Result<Value> {
    let user = actor.require_user()?;
    actor.authorize_app(ctx, "CreatePoll")?;
    let now = now_micros();
    let mut poll = PollRow {
        id: id_of(body)?,
        created_by_id: user.id.clone(),
        data: Map::new(),
        voting_visibility: "public".into(),
        enforce_unique_vote: false,
        max_votes_allowed: None,
        allow_answers: false,
        allow_user_suggested_options: false,
        is_closed: false,
        message_id: None,
        cid: None,
        created_at: now,
        updated_at: now,
    };
    apply_poll_fields(&mut poll, body)?;
    let options = options_of(&poll.id, body, now)?;
    let record = actor
        .audit(EventType::MessageCreate)
        .subject(user.id.clone())
        .object("poll", poll.id.clone())
        .meta("message_type", "poll");
    ctx.audit
        .audited([record], async |records| {
            ctx.store.polls.insert_poll(&poll, &options, &records).await
        })
        .await?;
    answer(ctx, &poll, Some(&user.id)).await
}

/// `GET /polls/{id}`.
pub async fn get_poll(ctx: &Ctx<'_>, actor: &Actor, id: &str) -> Result<Value> {
    let poll = visible_poll(ctx, actor, id).await?;
    answer(ctx, &poll, actor.user_id()).await
}

async fn save(ctx: &Ctx<'_>, actor: &Actor, before: &PollRow, poll: &PollRow) -> Result<Value> {
    let record = actor
        .audit(EventType::MessageUpdate)
        .subject(poll.created_by_id.clone())
        .object("poll", poll.id.clone());
    ctx.audit
        .audited([record], async |records| {
            ctx.store.polls.update_poll(poll, &records).await
        })
        .await?;
    announce_update(ctx, poll, poll.is_closed && !before.is_closed).await?;
    answer(ctx, poll, actor.user_id()).await
}

/// `PUT /polls`: replaces the poll's texts and settings (and, when given, its options).
pub async fn update_poll(ctx: &Ctx<'_>, actor: &Actor, body: &Map<String, Value>) -> Result<Value> {
    let id = body
        .get("id")
        .and_then(Value::as_str)
        .ok_or_else(|| Error::input("poll id is required"))?;
    let before = owned_poll(ctx, actor, id).await?;
    let mut poll = before.clone();
    apply_poll_fields(&mut poll, body)?;
    poll.updated_at = now_micros();
    if body.get("options").is_some_and(|o| !o.is_null()) {
        let wanted = options_of(&poll.id, body, poll.updated_at)?;
        let existing = ctx
            .store
            .polls
            .find_options(std::slice::from_ref(&poll.id))
            .await?;
        for o in existing
            .iter()
            .filter(|o| !wanted.iter().any(|w| w.id == o.id))
        {
            let record = actor
                .audit(EventType::MessageDelete)
                .object("poll_option", format!("{}/{}", poll.id, o.id));
            ctx.audit
                .audited([record], async |records| {
                    ctx.store
                        .polls
                        .delete_option(&poll.id, &o.id, &records)
                        .await
                })
                .await?;
        }
        for w in &wanted {
            let mut w = w.clone();
            if let Some(old) = existing.iter().find(|o| o.id == w.id) {
                w.created_at = old.created_at;
            }
            let record = actor
                .audit(EventType::MessageUpdate)
                .object("poll_option", format!("{}/{}", poll.id, w.id));
            ctx.audit
                .audited([record], async |records| {
                    ctx.store.polls.upsert_option(&w, &records).await
                })
                .await?;
        }
    }
    save(ctx, actor, &before, &poll).await
}

/// `PATCH /polls/{id}`: `set` and `unset` of single fields.
pub async fn partial_update_poll(
    ctx: &Ctx<'_>,
    actor: &Actor,
    id: &str,
    body: &Map<String, Value>,
) -> Result<Value> {
    let before = owned_poll(ctx, actor, id).await?;
    let mut fields = current_fields(&before);
    if let Some(set) = body.get("set").filter(|v| !v.is_null()) {
        let set = set
            .as_object()
            .ok_or_else(|| Error::input("set must be an object"))?;
        for (k, v) in set {
            if matches!(k.as_str(), "id" | "options" | "created_by_id" | "user_id") {
                return Err(Error::input(format!("{k} cannot be set on a poll")));
            }
            fields.insert(k.clone(), v.clone());
        }
    }
    if let Some(unset) = body.get("unset").filter(|v| !v.is_null()) {
        let unset = unset
            .as_array()
            .ok_or_else(|| Error::input("unset must be a list of field names"))?;
        for k in unset {
            let k = k
                .as_str()
                .ok_or_else(|| Error::input("unset must be a list of field names"))?;
            if k == "name" {
                return Err(Error::input("a poll's name cannot be unset"));
            }
            fields.remove(k);
        }
    }
    let mut poll = before.clone();
    apply_poll_fields(&mut poll, &fields)?;
    poll.updated_at = now_micros();
    save(ctx, actor, &before, &poll).await
}

/// A poll's texts and settings as a client would send them.
fn current_fields(p: &PollRow) -> Map<String, Value> {
    let mut f = p.data.clone();
    f.insert(
        "voting_visibility".into(),
        p.voting_visibility.clone().into(),
    );
    f.insert("enforce_unique_vote".into(), p.enforce_unique_vote.into());
    if let Some(n) = p.max_votes_allowed {
        f.insert("max_votes_allowed".into(), n.into());
    }
    f.insert("allow_answers".into(), p.allow_answers.into());
    f.insert(
        "allow_user_suggested_options".into(),
        p.allow_user_suggested_options.into(),
    );
    f.insert("is_closed".into(), p.is_closed.into());
    f
}

/// `DELETE /polls/{id}`.
pub async fn delete_poll(ctx: &Ctx<'_>, actor: &Actor, id: &str) -> Result<Value> {
    let poll = owned_poll(ctx, actor, id).await?;
    let record = actor
        .audit(EventType::MessageDelete)
        .subject(poll.created_by_id.clone())
        .object("poll", poll.id.clone());
    ctx.audit
        .audited([record], async |records| {
            ctx.store.polls.delete_poll(&poll.id, &records).await
        })
        .await?;
    Ok(json!({}))
}

/// Attaches poll `poll_id` to a message being sent in `loaded`'s channel by `actor` (the
/// poll's creator, or an admin): the type's `polls` flag and `SendPoll` are required, and a
/// poll goes on one message only. Called by `message::send_message` before it stores.
pub async fn attach(
    ctx: &Ctx<'_>,
    actor: &Actor,
    loaded: &channel::Loaded,
    poll_id: &str,
    message_id: &str,
) -> Result<()> {
    if !loaded.config.polls {
        return Err(Error::input(format!(
            "polls are disabled for channel type {}",
            loaded.channel.kind
        )));
    }
    loaded.require("SendPoll")?;
    let poll = visible_poll(ctx, actor, poll_id).await?;
    if !actor.is_admin() && actor.user_id() != Some(poll.created_by_id.as_str()) {
        return Err(Error::not_allowed(format!(
            "only the creator of poll {poll_id} may send it"
        )));
    }
    if !ctx
        .store
        .polls
        .attach_poll(&poll.id, message_id, &loaded.channel.cid)
        .await?
    {
        return Err(Error::input(format!(
            "poll {poll_id} is already attached to a message"
        )));
    }
    Ok(())
}

/// The `poll_id` of a message being sent, if any.
pub fn poll_id_of(msg: &Map<String, Value>) -> Result<Option<String>> {
    match msg.get("poll_id") {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(id)) if !id.is_empty() => {
            validate_message_id(id)?;
            Ok(Some(id.clone()))
        }
        Some(_) => Err(Error::input("poll_id must be a non-empty string")),
    }
}
