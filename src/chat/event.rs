//! Channel events that are not a side effect of another operation (typing and custom
//! events), and the builders for events several modules send.

use serde::Deserialize;
use serde_json::{Map, Value, json};

use crate::chat::Ctx;
use crate::chat::{Actor, channel, view};
use crate::chat::{Error, Result};
use crate::time::{now_micros, rfc3339};

/// The envelope every channel event shares.
pub fn channel_event(kind: &str, cid: &str) -> Value {
    let (channel_type, channel_id) = cid.split_once(':').unwrap_or(("", cid));
    json!({
        "type": kind,
        "cid": cid,
        "channel_id": channel_id,
        "channel_type": channel_type,
        "created_at": rfc3339(now_micros()),
    })
}

/// `user.watching.start` / `user.watching.stop`.
pub fn watching(kind: &str, cid: &str, user: Value, watcher_count: usize) -> Value {
    let mut e = channel_event(kind, cid);
    e["user"] = user;
    e["watcher_count"] = watcher_count.into();
    e
}

/// `user.presence.changed`.
pub fn presence(user: Value) -> Value {
    json!({"type": "user.presence.changed", "user": user, "created_at": rfc3339(now_micros())})
}

#[derive(Debug, Deserialize)]
pub struct SendEvent {
    pub event: Map<String, Value>,
}

/// Event types clients may not forge: they are emitted only by the server.
const SERVER_ONLY_PREFIXES: &[&str] = &[
    "message.",
    "reaction.",
    "member.",
    "channel.",
    "notification.",
    "user.",
    "health.",
    "connection.",
];

/// `POST /channels/{type}/{id}/event`: re-sends typing (and custom) events to the watchers
/// with `user` filled in from the caller.
pub async fn send_event(
    ctx: &Ctx<'_>,
    actor: &Actor,
    cid: &str,
    body: &SendEvent,
) -> Result<Value> {
    let user = actor.require_user()?;
    let loaded = channel::load(ctx, actor, cid).await?;
    loaded.require_read()?;
    let kind = body
        .event
        .get("type")
        .and_then(Value::as_str)
        .filter(|t| !t.is_empty() && t.len() <= 64)
        .ok_or_else(|| Error::input("event.type is required"))?;
    let is_typing = kind == "typing.start" || kind == "typing.stop";
    if is_typing && !loaded.config.typing_events {
        return Err(Error::input(format!(
            "typing events are disabled for channel type {}",
            loaded.channel.kind
        )));
    }
    if !is_typing && SERVER_ONLY_PREFIXES.iter().any(|p| kind.starts_with(p)) {
        return Err(Error::ServerOnlyEvent(kind.to_string()));
    }
    loaded.require(if is_typing {
        "SendTypingEvents"
    } else {
        "SendCustomEvents"
    })?;
    if Value::Object(body.event.clone()).to_string().len() > 5 * 1024 {
        return Err(Error::PayloadTooBig(
            "custom event data must stay under 5KB".into(),
        ));
    }
    let mut event = channel_event(kind, cid);
    for (k, v) in &body.event {
        if ![
            "cid",
            "channel_id",
            "channel_type",
            "created_at",
            "user",
            "user_id",
        ]
        .contains(&k.as_str())
        {
            event[k] = v.clone();
        }
    }
    event["user"] = view::user_json(ctx, user);
    ctx.bus.to_channel(cid, &event).await;
    Ok(json!({ "event": event }))
}
