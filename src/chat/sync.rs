//! `POST /sync` (the SDK's offline recovery): the events a client missed since
//! `last_sync_at` in the channels it names, reconstructed from stored state, since Ward keeps
//! no event log. What can be reconstructed, per channel the caller may still read:
//! - `message.new` for each message created after `last_sync_at` (up to 100 a channel,
//!   oldest first; thread replies only when shown in the channel);
//! - `message.updated` / `message.deleted` for those of the channel's latest 100 messages
//!   created before `last_sync_at` and changed or deleted after it.
//!
//! Not reconstructed (no stored trace): reactions, reads, typing, member and channel
//! changes, and anything older than the latest 100 messages. A channel the caller may no
//! longer read (or that is gone) becomes `notification.removed_from_channel`, or with
//! `with_inaccessible_cids` is listed in `inaccessible_cids`.

use serde::Deserialize;
use serde_json::{Value, json};

use crate::chat::{Actor, Ctx, Error, Result, channel, event, parse_cid, view};
use crate::store::{Cursor, MessageRow};
use crate::time::parse_rfc3339;

const MAX_CHANNELS: usize = 255;
const PER_CHANNEL: i64 = 100;

#[derive(Debug, Default, Deserialize)]
pub struct SyncRequest {
    #[serde(default)]
    pub channel_cids: Vec<String>,
    #[serde(default)]
    pub last_sync_at: Option<String>,
    #[serde(default)]
    pub with_inaccessible_cids: bool,
}

fn message_event(kind: &str, m: &Value, cid: &str, at: &str) -> Value {
    let mut ev = event::channel_event(kind, cid);
    ev["message"] = m.clone();
    ev["message_id"] = m["id"].clone();
    ev["user"] = m["user"].clone();
    ev["created_at"] = at.into();
    ev
}

/// `POST /sync`.
pub async fn sync(ctx: &Ctx<'_>, actor: &Actor, req: &SyncRequest) -> Result<Value> {
    let user = actor.require_user()?;
    actor.authorize_app(ctx, "SyncEvents")?;
    let since = req
        .last_sync_at
        .as_deref()
        .and_then(parse_rfc3339)
        .ok_or_else(|| Error::input("last_sync_at must be an RFC 3339 time"))?;
    if req.channel_cids.len() > MAX_CHANNELS {
        return Err(Error::input(format!(
            "sync takes at most {MAX_CHANNELS} channels"
        )));
    }
    let mut events: Vec<(i64, Value)> = Vec::new();
    let mut inaccessible = Vec::new();
    for cid in &req.channel_cids {
        parse_cid(cid)?;
        let readable = match channel::load(ctx, actor, cid).await {
            Ok(l) => l.require_read().is_ok().then_some(l),
            Err(Error::Store(e)) => return Err(e.into()),
            Err(_) => None,
        };
        let Some(loaded) = readable else {
            if req.with_inaccessible_cids {
                inaccessible.push(Value::from(cid.clone()));
            } else {
                let mut ev = event::channel_event("notification.removed_from_channel", cid);
                ev["user"] = view::user_json(ctx, user);
                events.push((since, ev));
            }
            continue;
        };
        let ch = &loaded.channel;
        let floor = ch.truncated_at.map_or(since, |t| t.max(since));
        let created = ctx
            .store
            .messages
            .find_channel_messages(
                cid,
                ch.truncated_at,
                &Cursor::After {
                    at: floor,
                    id: String::new(),
                    inclusive: false,
                },
                PER_CHANNEL,
            )
            .await?;
        let latest = ctx
            .store
            .messages
            .find_channel_messages(cid, ch.truncated_at, &Cursor::Latest, PER_CHANNEL)
            .await?;
        let changed: Vec<MessageRow> = latest
            .into_iter()
            .filter(|m| m.created_at <= floor && m.updated_at > since)
            .collect();
        let rendered_new = view::render_messages(ctx, &created, Some(&user.id)).await?;
        for (m, r) in created.iter().zip(rendered_new) {
            let at = crate::time::rfc3339(m.created_at);
            events.push((m.created_at, message_event("message.new", &r, cid, &at)));
        }
        let rendered_changed = view::render_messages(ctx, &changed, Some(&user.id)).await?;
        for (m, r) in changed.iter().zip(rendered_changed) {
            let kind = if m.deleted_at.is_some() {
                "message.deleted"
            } else {
                "message.updated"
            };
            let at = crate::time::rfc3339(m.updated_at);
            events.push((m.updated_at, message_event(kind, &r, cid, &at)));
        }
    }
    events.sort_by_key(|(at, _)| *at);
    let mut out = json!({ "events": events.into_iter().map(|(_, e)| e).collect::<Vec<_>>() });
    if req.with_inaccessible_cids {
        out["inaccessible_cids"] = inaccessible.into();
    }
    Ok(out)
}
