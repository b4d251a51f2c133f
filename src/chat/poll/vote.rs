//! Votes and answers (cast through the message the poll is on), and the poll and vote
//! queries. `enforce_unique_vote` replaces a user's earlier vote (`poll.vote_changed`),
//! `max_votes_allowed` refuses one vote too many, an answer replaces the user's earlier
//! answer; a closed poll takes no votes.

use std::collections::HashMap;

use serde::Deserialize;
use serde_json::{Map, Value, json};

use super::render::{render_polls, vote_json};
use super::visible_poll;
use crate::audit::EventType;
use crate::chat::listing::{QueryPage, filtered, page};
use crate::chat::{Actor, Ctx, Error, Result, channel, event, validate_message_id, view};
use crate::store::{PollRow, PollVoteRow};
use crate::time::now_micros;

const MAX_ANSWER: usize = 255;
/// How many polls a query looks through.
const QUERY_CAP: i64 = 1000;

#[derive(Debug, Default, Deserialize)]
pub struct CastVote {
    #[serde(default)]
    pub vote: Map<String, Value>,
}

/// The message a vote is cast through: it must carry the poll, the channel type must have
/// `polls`, and the policies must allow `CastPollVote` there.
async fn voting_channel(
    ctx: &Ctx<'_>,
    actor: &Actor,
    message_id: &str,
    poll_id: &str,
) -> Result<(PollRow, String)> {
    validate_message_id(message_id)?;
    validate_message_id(poll_id)?;
    let poll = ctx
        .store
        .polls
        .find_poll(poll_id)
        .await?
        .filter(|p| p.message_id.as_deref() == Some(message_id))
        .ok_or_else(|| {
            Error::not_found(format!("poll {poll_id} is not on message {message_id}"))
        })?;
    let cid = require_vote_on_channel(ctx, actor, &poll).await?;
    Ok((poll, cid))
}

/// Asks for `CastPollVote` on the channel the poll is on; returns its cid.
pub(crate) async fn require_vote_on_channel(
    ctx: &Ctx<'_>,
    actor: &Actor,
    poll: &PollRow,
) -> Result<String> {
    let cid = poll
        .cid
        .clone()
        .ok_or_else(|| Error::input(format!("poll {} is not on a message", poll.id)))?;
    let loaded = channel::load(ctx, actor, &cid).await?;
    if !loaded.config.polls {
        return Err(Error::input(format!(
            "polls are disabled for channel type {}",
            loaded.channel.kind
        )));
    }
    loaded.require("CastPollVote")?;
    Ok(cid)
}

async fn announce(
    ctx: &Ctx<'_>,
    kind: &str,
    cid: &str,
    poll: &PollRow,
    vote: &PollVoteRow,
    actor_user: &Value,
) -> Result<()> {
    let shared = render_polls(ctx, std::slice::from_ref(poll), None)
        .await?
        .remove(&poll.id)
        .unwrap_or(Value::Null);
    let users = HashMap::from([(vote.user_id.clone(), actor_user.clone())]);
    let mut ev = event::channel_event(kind, cid);
    ev["message_id"] = vote.message_id.clone().into();
    ev["poll"] = shared;
    ev["poll_vote"] = vote_json(poll, vote, &users, None);
    if poll.voting_visibility != "anonymous" {
        ev["user"] = actor_user.clone();
    }
    ctx.bus.to_channel(cid, &ev).await;
    Ok(())
}

/// `POST /messages/{id}/polls/{poll_id}/vote`: `{vote: {option_id}}` or
/// `{vote: {answer_text}}`.
pub async fn cast_vote(
    ctx: &Ctx<'_>,
    actor: &Actor,
    message_id: &str,
    poll_id: &str,
    body: &CastVote,
) -> Result<Value> {
    let user = actor.require_user()?;
    let (poll, cid) = voting_channel(ctx, actor, message_id, poll_id).await?;
    if poll.is_closed {
        return Err(Error::input(format!("poll {poll_id} is closed")));
    }
    let answer = match body.vote.get("answer_text") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) if !s.trim().is_empty() && s.chars().count() <= MAX_ANSWER => {
            Some(s.clone())
        }
        Some(_) => {
            return Err(Error::input(format!(
                "answer_text must be a non-empty string of at most {MAX_ANSWER} characters"
            )));
        }
    };
    let option_id = match body.vote.get("option_id") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) => Some(s.clone()),
        Some(_) => return Err(Error::input("option_id must be a string")),
    };
    let ids = [poll.id.clone()];
    let mine: Vec<PollVoteRow> = ctx
        .store
        .polls
        .find_votes(&ids)
        .await?
        .into_iter()
        .filter(|v| v.user_id == user.id)
        .collect();
    let (replace, option_id): (Vec<&PollVoteRow>, Option<String>) = match (&answer, option_id) {
        (Some(_), _) => {
            if !poll.allow_answers {
                return Err(Error::input(format!(
                    "poll {poll_id} does not take answers"
                )));
            }
            (mine.iter().filter(|v| v.is_answer).collect(), None)
        }
        (None, Some(option_id)) => {
            let options = ctx.store.polls.find_options(&ids).await?;
            if !options.iter().any(|o| o.id == option_id) {
                return Err(Error::input(format!(
                    "poll {poll_id} has no option {option_id}"
                )));
            }
            let votes: Vec<&PollVoteRow> = mine.iter().filter(|v| !v.is_answer).collect();
            if let Some(same) = votes
                .iter()
                .find(|v| v.option_id.as_deref() == Some(&option_id))
            {
                let users = HashMap::from([(user.id.clone(), view::user_json(ctx, user))]);
                return Ok(json!({ "vote": vote_json(&poll, same, &users, Some(&user.id)) }));
            }
            if poll.enforce_unique_vote {
                (votes, Some(option_id))
            } else {
                let max = poll.max_votes_allowed.unwrap_or(i64::MAX);
                if votes.len() as i64 >= max {
                    return Err(Error::input(format!(
                        "you have cast the most votes poll {poll_id} allows ({max})"
                    )));
                }
                (Vec::new(), Some(option_id))
            }
        }
        (None, None) => {
            return Err(Error::input(
                "vote.option_id or vote.answer_text is required",
            ));
        }
    };
    let now = now_micros();
    let vote = PollVoteRow {
        id: uuid::Uuid::new_v4().to_string(),
        poll_id: poll.id.clone(),
        message_id: message_id.to_string(),
        user_id: user.id.clone(),
        option_id,
        is_answer: answer.is_some(),
        answer_text: answer,
        created_at: now,
        updated_at: now,
    };
    let replace_ids: Vec<String> = replace.iter().map(|v| v.id.clone()).collect();
    let record = actor
        .audit(EventType::MessageCreate)
        .subject(user.id.clone())
        .object("poll_vote", vote.id.clone())
        .meta("message_type", "poll_vote");
    ctx.audit
        .audited([record], async |records| {
            ctx.store
                .polls
                .cast_vote(&vote, &replace_ids, &records)
                .await
        })
        .await?;
    let author = view::user_json(ctx, user);
    let kind = if replace_ids.is_empty() {
        "poll.vote_casted"
    } else {
        "poll.vote_changed"
    };
    announce(ctx, kind, &cid, &poll, &vote, &author).await?;
    let users = HashMap::from([(user.id.clone(), author)]);
    Ok(json!({ "vote": vote_json(&poll, &vote, &users, Some(&user.id)) }))
}

/// `DELETE /messages/{id}/polls/{poll_id}/vote/{vote_id}`: one's own vote (admins: any).
pub async fn remove_vote(
    ctx: &Ctx<'_>,
    actor: &Actor,
    message_id: &str,
    poll_id: &str,
    vote_id: &str,
) -> Result<Value> {
    let user = actor.require_user()?;
    validate_message_id(vote_id)?;
    let (poll, cid) = voting_channel(ctx, actor, message_id, poll_id).await?;
    let missing = || Error::not_found(format!("vote {vote_id} does not exist"));
    let vote = ctx
        .store
        .polls
        .find_votes(std::slice::from_ref(&poll.id))
        .await?
        .into_iter()
        .find(|v| v.id == vote_id)
        .ok_or_else(missing)?;
    if vote.user_id != user.id && !actor.is_admin() {
        return Err(Error::not_allowed(format!(
            "vote {vote_id} was cast by another user"
        )));
    }
    let record = actor
        .audit(EventType::MessageDelete)
        .subject(vote.user_id.clone())
        .object("poll_vote", vote.id.clone());
    let removed = ctx
        .audit
        .audited([record], async |records| {
            ctx.store
                .polls
                .delete_vote(&poll.id, vote_id, &records)
                .await
        })
        .await?
        .ok_or_else(missing)?;
    let voter = view::users_by_id(ctx, [removed.user_id.clone()].into())
        .await?
        .remove(&removed.user_id)
        .unwrap_or_else(|| json!({ "id": removed.user_id }));
    announce(ctx, "poll.vote_removed", &cid, &poll, &removed, &voter).await?;
    let users = HashMap::from([(removed.user_id.clone(), voter)]);
    Ok(json!({ "vote": vote_json(&poll, &removed, &users, actor.user_id()) }))
}

/// `POST /polls/{id}/votes`: the votes (or, with `is_answer`, the answers) of a poll one
/// may see; in an anonymous poll others' votes carry no voter.
pub async fn query_votes(
    ctx: &Ctx<'_>,
    actor: &Actor,
    poll_id: &str,
    q: &QueryPage,
) -> Result<Value> {
    let poll = visible_poll(ctx, actor, poll_id).await?;
    let votes = ctx
        .store
        .polls
        .find_votes(std::slice::from_ref(&poll.id))
        .await?;
    let users = view::users_by_id(ctx, votes.iter().map(|v| v.user_id.clone()).collect()).await?;
    let mut rendered: Vec<Value> = votes
        .iter()
        .map(|v| vote_json(&poll, v, &users, actor.user_id()))
        .collect();
    if q.descending() {
        rendered.reverse();
    }
    let anonymous = poll.voting_visibility == "anonymous";
    if anonymous && q.filter.contains_key("user_id") && !actor.is_admin() {
        return Err(Error::input(
            "votes of an anonymous poll cannot be filtered by user",
        ));
    }
    let rendered = filtered(
        rendered,
        &q.filter,
        &["option_id", "is_answer", "user_id", "id"],
    )?;
    page(rendered, q, "votes")
}

/// `POST /polls/query`: the polls the caller created (admins and server-side calls: all),
/// filtered by id, name, flags and creator.
pub async fn query_polls(ctx: &Ctx<'_>, actor: &Actor, q: &QueryPage) -> Result<Value> {
    actor.authorize_app(ctx, "QueryPolls")?;
    let creator = if actor.is_admin() {
        None
    } else {
        Some(actor.require_user()?.id.as_str())
    };
    let mut polls = ctx
        .store
        .polls
        .find_polls_by_creator(creator, QUERY_CAP)
        .await?;
    if !q.descending() {
        polls.reverse();
    }
    let rendered = render_polls(ctx, &polls, actor.user_id()).await?;
    let list: Vec<Value> = polls
        .iter()
        .filter_map(|p| rendered.get(&p.id).cloned())
        .collect();
    let list = filtered(
        list,
        &q.filter,
        &[
            "id",
            "poll_id",
            "name",
            "voting_visibility",
            "is_closed",
            "created_by_id",
            "allow_answers",
            "allow_user_suggested_options",
            "enforce_unique_vote",
            "max_votes_allowed",
        ],
    )?;
    page(list, q, "polls")
}
