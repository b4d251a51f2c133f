//! Marking many channels at once: `POST /channels/read` (markAllRead / markChannelsRead)
//! and `POST /channels/delivered` (the SDK's delivery reporter, when the channel type has
//! `delivery_events`), with `message.delivered` to the channel's watchers.
//!
//! Delivery receipts are read-receipt metadata: they go through the same `MarkRead`
//! decision as a read (guests and auditors leave none) and exist only where the channel
//! type turns `delivery_events` on (`src/chat/channel_type.rs`).

use serde::Deserialize;
use serde_json::{Map, Value, json};

use crate::chat::read::{self, MarkRead};
use crate::chat::{Actor, Ctx, Error, Result, channel, event, validate_message_id, view};
use crate::time::{now_micros, rfc3339};

/// Channels one request marks at most.
const MAX_CHANNELS: usize = 100;

#[derive(Debug, Default, Deserialize)]
pub struct MarkChannelsRead {
    /// cid → the message read up to; absent: every channel with unread messages.
    pub read_by_channel: Option<Map<String, Value>>,
}

/// `POST /channels/read`: each named channel (or every channel with unread messages) is
/// marked read as `POST /channels/{type}/{id}/read` would, where the caller may.
pub async fn mark_channels_read(
    ctx: &Ctx<'_>,
    actor: &Actor,
    body: &MarkChannelsRead,
) -> Result<Value> {
    actor.authorize_app(ctx, "MarkChannelsRead")?;
    let user = actor.require_user()?;
    let targets: Vec<(String, Option<String>)> = match &body.read_by_channel {
        Some(map) => {
            if map.len() > MAX_CHANNELS {
                return Err(Error::input(format!(
                    "read_by_channel names at most {MAX_CHANNELS} channels"
                )));
            }
            map.iter()
                .map(|(cid, m)| {
                    crate::chat::parse_cid(cid)?;
                    let id = match m {
                        Value::Null => None,
                        Value::String(id) if id.is_empty() => None,
                        Value::String(id) => {
                            validate_message_id(id)?;
                            Some(id.clone())
                        }
                        _ => {
                            return Err(Error::input("read_by_channel values must be message ids"));
                        }
                    };
                    Ok((cid.clone(), id))
                })
                .collect::<Result<_>>()?
        }
        None => read::unread_for(ctx, &user.id)
            .await?
            .reads
            .into_iter()
            .filter(|(r, _)| r.unread_messages > 0)
            .map(|(r, _)| (r.cid, None))
            .collect(),
    };
    for (cid, message_id) in targets {
        let loaded = match channel::load(ctx, actor, &cid).await {
            Ok(l) => l,
            Err(Error::NotFound(_)) => continue,
            Err(e) => return Err(e),
        };
        if !loaded.config.read_events || !loaded.allows("MarkRead") {
            continue;
        }
        let body = MarkRead {
            message_id,
            thread_id: None,
        };
        read::mark_read(ctx, actor, &cid, &body).await?;
    }
    Ok(json!({}))
}

#[derive(Debug, Default, Deserialize)]
pub struct Delivered {
    pub cid: String,
    pub id: String,
    #[serde(default)]
    pub parent_id: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
pub struct MarkDelivered {
    #[serde(default)]
    pub latest_delivered_messages: Vec<Delivered>,
}

/// `POST /channels/delivered`: for each channel, the newest message delivered to the
/// caller; a newer one than recorded moves `read[].last_delivered_*` and sends
/// `message.delivered` to the watchers.
pub async fn mark_delivered(ctx: &Ctx<'_>, actor: &Actor, body: &MarkDelivered) -> Result<Value> {
    actor.authorize_app(ctx, "MarkChannelsDelivered")?;
    let user = actor.require_user()?;
    if body.latest_delivered_messages.len() > MAX_CHANNELS {
        return Err(Error::input(format!(
            "latest_delivered_messages holds at most {MAX_CHANNELS} entries"
        )));
    }
    for d in &body.latest_delivered_messages {
        crate::chat::parse_cid(&d.cid)?;
        validate_message_id(&d.id)?;
    }
    let now = now_micros();
    for d in &body.latest_delivered_messages {
        let loaded = match channel::load(ctx, actor, &d.cid).await {
            Ok(l) => l,
            Err(Error::NotFound(_)) => continue,
            Err(e) => return Err(e),
        };
        if !loaded.config.delivery_events || !loaded.allows("MarkRead") {
            continue;
        }
        let Some(message) = ctx
            .store
            .messages
            .find_message(&d.id)
            .await?
            .filter(|m| m.cid == d.cid)
        else {
            continue;
        };
        let changed = ctx
            .store
            .threads
            .update_delivered(&d.cid, &user.id, now, &message.id, message.created_at)
            .await?;
        if !changed {
            continue;
        }
        let mut ev = event::channel_event("message.delivered", &d.cid);
        ev["user"] = view::user_json(ctx, user);
        ev["created_at"] = rfc3339(now).into();
        ev["last_delivered_at"] = rfc3339(now).into();
        ev["last_delivered_message_id"] = message.id.clone().into();
        if let Some(p) = &message.parent_id {
            ev["parent_id"] = p.clone().into();
        }
        ctx.bus.to_channel(&d.cid, &ev).await;
    }
    Ok(json!({}))
}
