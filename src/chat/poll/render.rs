//! The wire shape of polls (`PollResponse`), options and votes, and the `poll` a message
//! carries. In an anonymous poll no vote names its voter to anyone but the voter.

use std::collections::{HashMap, HashSet};

use serde_json::{Map, Value, json};

use crate::chat::{Ctx, Result, view};
use crate::store::{PollOptionRow, PollRow, PollVoteRow};
use crate::time::rfc3339;

/// How many answers `latest_answers` and votes per option `latest_votes_by_option` carry.
const LATEST: usize = 10;

pub fn option_json(o: &PollOptionRow, vote_count: i64, votes: Option<Vec<Value>>) -> Value {
    let mut obj: Map<String, Value> = o.data.clone();
    obj.entry("text").or_insert_with(|| "".into());
    obj.insert("id".into(), o.id.clone().into());
    obj.insert("poll_id".into(), o.poll_id.clone().into());
    obj.insert("position".into(), o.position.into());
    obj.insert("vote_count".into(), vote_count.into());
    if let Some(v) = votes {
        obj.insert("votes".into(), v.into());
    }
    obj.insert("created_at".into(), rfc3339(o.created_at).into());
    obj.insert("updated_at".into(), rfc3339(o.updated_at).into());
    Value::Object(obj)
}

/// One vote as `viewer` may see it (`users` holds the rendered voters).
pub fn vote_json(
    poll: &PollRow,
    v: &PollVoteRow,
    users: &HashMap<String, Value>,
    viewer: Option<&str>,
) -> Value {
    let mut obj = json!({
        "id": v.id,
        "poll_id": v.poll_id,
        "created_at": rfc3339(v.created_at),
        "updated_at": rfc3339(v.updated_at),
    });
    if let Some(o) = &v.option_id {
        obj["option_id"] = o.clone().into();
    }
    if v.is_answer {
        obj["is_answer"] = true.into();
        obj["answer_text"] = v.answer_text.clone().unwrap_or_default().into();
    }
    if poll.voting_visibility != "anonymous" || viewer == Some(v.user_id.as_str()) {
        obj["user_id"] = v.user_id.clone().into();
        obj["user"] = users
            .get(&v.user_id)
            .cloned()
            .unwrap_or_else(|| json!({ "id": v.user_id }));
    }
    obj
}

/// Renders polls as `viewer` sees them (`own_votes`), by id, loading their options, votes
/// and users once for the batch.
pub async fn render_polls(
    ctx: &Ctx<'_>,
    polls: &[PollRow],
    viewer: Option<&str>,
) -> Result<HashMap<String, Value>> {
    if polls.is_empty() {
        return Ok(HashMap::new());
    }
    let ids: Vec<String> = polls.iter().map(|p| p.id.clone()).collect();
    let options = ctx.store.polls.find_options(&ids).await?;
    let votes = ctx.store.polls.find_votes(&ids).await?;
    let mut user_ids: HashSet<String> = polls.iter().map(|p| p.created_by_id.clone()).collect();
    user_ids.extend(votes.iter().map(|v| v.user_id.clone()));
    let users = view::users_by_id(ctx, user_ids).await?;
    Ok(polls
        .iter()
        .map(|p| {
            let opts: Vec<&PollOptionRow> = options.iter().filter(|o| o.poll_id == p.id).collect();
            let vs: Vec<&PollVoteRow> = votes.iter().filter(|v| v.poll_id == p.id).collect();
            (p.id.clone(), poll_json(p, &opts, &vs, &users, viewer))
        })
        .collect())
}

fn poll_json(
    p: &PollRow,
    options: &[&PollOptionRow],
    votes: &[&PollVoteRow],
    users: &HashMap<String, Value>,
    viewer: Option<&str>,
) -> Value {
    let anonymous = p.voting_visibility == "anonymous";
    let mut counts: Map<String, Value> = Map::new();
    let mut latest: Map<String, Value> = Map::new();
    let option_votes: Vec<&&PollVoteRow> = votes.iter().filter(|v| !v.is_answer).collect();
    let answers: Vec<&&PollVoteRow> = votes.iter().filter(|v| v.is_answer).collect();
    let rendered_options: Vec<Value> = options
        .iter()
        .map(|o| {
            let of: Vec<&&&PollVoteRow> = option_votes
                .iter()
                .filter(|v| v.option_id.as_deref() == Some(o.id.as_str()))
                .collect();
            if !of.is_empty() {
                counts.insert(o.id.clone(), of.len().into());
                if !anonymous {
                    let recent: Vec<Value> = of
                        .iter()
                        .rev()
                        .take(LATEST)
                        .map(|v| vote_json(p, v, users, viewer))
                        .collect();
                    latest.insert(o.id.clone(), recent.into());
                }
            }
            option_json(o, of.len() as i64, None)
        })
        .collect();
    let latest_answers: Vec<Value> = answers
        .iter()
        .rev()
        .take(LATEST)
        .map(|v| vote_json(p, v, users, viewer))
        .collect();
    let own: Vec<Value> = votes
        .iter()
        .filter(|v| viewer == Some(v.user_id.as_str()))
        .map(|v| vote_json(p, v, users, viewer))
        .collect();
    let mut obj: Map<String, Value> = p.data.clone();
    obj.entry("name").or_insert_with(|| "".into());
    obj.insert("id".into(), p.id.clone().into());
    obj.insert(
        "voting_visibility".into(),
        p.voting_visibility.clone().into(),
    );
    obj.insert("enforce_unique_vote".into(), p.enforce_unique_vote.into());
    obj.insert(
        "max_votes_allowed".into(),
        p.max_votes_allowed.map_or(Value::Null, Value::from),
    );
    obj.insert("allow_answers".into(), p.allow_answers.into());
    obj.insert(
        "allow_user_suggested_options".into(),
        p.allow_user_suggested_options.into(),
    );
    obj.insert("is_closed".into(), p.is_closed.into());
    obj.insert("options".into(), rendered_options.into());
    obj.insert("vote_count".into(), option_votes.len().into());
    obj.insert("vote_counts_by_option".into(), Value::Object(counts));
    obj.insert("answers_count".into(), answers.len().into());
    obj.insert("latest_answers".into(), latest_answers.into());
    obj.insert("latest_votes_by_option".into(), Value::Object(latest));
    obj.insert("own_votes".into(), own.into());
    obj.insert("created_by_id".into(), p.created_by_id.clone().into());
    obj.insert(
        "created_by".into(),
        users
            .get(&p.created_by_id)
            .cloned()
            .unwrap_or_else(|| json!({ "id": p.created_by_id })),
    );
    obj.insert("created_at".into(), rfc3339(p.created_at).into());
    obj.insert("updated_at".into(), rfc3339(p.updated_at).into());
    Value::Object(obj)
}

/// Adds `poll` to each rendered message that carries a `poll_id` (the poll as `viewer`
/// sees it; a deleted poll is left out).
pub async fn attach_to_messages(
    ctx: &Ctx<'_>,
    messages: &mut [Value],
    viewer: Option<&str>,
) -> Result<()> {
    let ids: Vec<String> = messages
        .iter()
        .filter_map(|m| m.get("poll_id").and_then(Value::as_str).map(String::from))
        .collect();
    if ids.is_empty() {
        return Ok(());
    }
    let polls = ctx.store.polls.find_polls(&ids).await?;
    let rendered = render_polls(ctx, &polls, viewer).await?;
    for m in messages.iter_mut() {
        let poll = m
            .get("poll_id")
            .and_then(Value::as_str)
            .and_then(|id| rendered.get(id))
            .cloned();
        if let Some(p) = poll {
            m["poll"] = p;
        }
    }
    Ok(())
}
