//! Pinning: who may pin (the `PinMessage` permission, separate from editing), when a pin
//! ends (`pin_expires`), and `GET /channels/{type}/{id}/pinned_messages`.
//!
//! An expired pin is not cleared by a job: every read path asks [`is_pinned`] with the
//! current time (the rendered message, the channel state's `pinned_messages`, this
//! endpoint, and so search's `{pinned: true}`, which filters rendered messages), so a pin
//! stops at its expiry on every node at once.

use std::cmp::Ordering;

use serde::Deserialize;
use serde_json::{Value, json};

use crate::chat::message::record_reads;
use crate::chat::{Actor, Ctx, Error, Result, channel, filter, view};
use crate::store::MessageRow;
use crate::time::{Micros, now_micros, parse_rfc3339, rfc3339};

/// Where a pin sits in pin order: its time, then the message id.
type PinKey = (Micros, String);
/// Whether a pin's place relative to a bound keeps it in the page.
type Accept = fn(Ordering) -> bool;

/// The most pinned messages of one channel that one request considers.
const PINNED_SCAN_CAP: i64 = 1_000;

/// The message is pinned and its pin has not expired at `now`.
pub fn is_pinned(m: &MessageRow, now: Micros) -> bool {
    m.pinned && expires_at(m).is_none_or(|t| t > now)
}

fn expires_at(m: &MessageRow) -> Option<Micros> {
    m.data
        .get("pin_expires")
        .and_then(Value::as_str)
        .and_then(parse_rfc3339)
}

/// When the message was pinned (its update time for pins stored without one).
fn pinned_at(m: &MessageRow) -> Micros {
    m.data
        .get("pinned_at")
        .and_then(Value::as_str)
        .and_then(parse_rfc3339)
        .unwrap_or(m.updated_at)
}

/// Validates a client's `pin_expires`: null (never) or an RFC 3339 time, stored normalised.
pub fn parse_pin_expires(v: &Value) -> Result<Option<String>> {
    match v {
        Value::Null => Ok(None),
        Value::String(s) => parse_rfc3339(s)
            .map(|t| Some(rfc3339(t)))
            .ok_or_else(|| Error::input("pin_expires must be an RFC 3339 time or null")),
        _ => Err(Error::input("pin_expires must be an RFC 3339 time or null")),
    }
}

/// Pins (by `actor`, now, unless already pinned) or unpins the message.
pub fn set_pinned(m: &mut MessageRow, pinned: bool, actor: &Actor) {
    let now = now_micros();
    if pinned && !is_pinned(m, now) {
        if let Some(uid) = actor.user_id() {
            m.data.insert("pinned_by_id".into(), uid.into());
        }
        m.data.insert("pinned_at".into(), rfc3339(now).into());
    } else if !pinned {
        for k in ["pinned_by_id", "pinned_at", "pin_expires"] {
            m.data.remove(k);
        }
    }
    m.pinned = pinned;
}

/// The pin state of a message, as a change of it is judged.
pub fn pin_state(m: &MessageRow) -> (bool, Option<&Value>) {
    (is_pinned(m, now_micros()), m.data.get("pin_expires"))
}

/// The message without its pin fields, to tell a pin from an edit.
pub fn content_of(m: &MessageRow) -> (String, serde_json::Map<String, Value>) {
    let mut data = m.data.clone();
    for k in ["pinned_by_id", "pinned_at", "pin_expires"] {
        data.remove(k);
    }
    (m.text.clone(), data)
}

#[derive(Debug, Default, Deserialize)]
pub struct PinnedQuery {
    pub limit: Option<i64>,
    pub offset: Option<i64>,
    pub id_lt: Option<String>,
    pub id_lte: Option<String>,
    pub id_gt: Option<String>,
    pub id_gte: Option<String>,
    pub id_around: Option<String>,
    pub pinned_at_before: Option<String>,
    pub pinned_at_before_or_equal: Option<String>,
    pub pinned_at_after: Option<String>,
    pub pinned_at_after_or_equal: Option<String>,
    pub pinned_at_around: Option<String>,
    #[serde(default)]
    pub sort: Value,
    /// Named by server-side callers; the edge resolves it.
    #[serde(default)]
    pub user_id: Option<String>,
    #[serde(default)]
    pub user: Option<Value>,
}

fn time_arg(name: &str, v: &Option<String>) -> Result<Option<Micros>> {
    v.as_deref()
        .map(|s| parse_rfc3339(s).ok_or_else(|| Error::input(format!("{name} must be RFC 3339"))))
        .transpose()
}

/// `GET /channels/{type}/{id}/pinned_messages`: the channel's live pins, newest pin first
/// unless `sort` asks `pinned_at` ascending, paged by pin time, message id or offset.
pub async fn pinned_messages(
    ctx: &Ctx<'_>,
    actor: &Actor,
    cid: &str,
    q: &PinnedQuery,
) -> Result<Value> {
    let loaded = channel::load(ctx, actor, cid).await?;
    loaded.require_read()?;
    let limit = q.limit.unwrap_or(30);
    let offset = q.offset.unwrap_or(0);
    if !(1..=300).contains(&limit) || !(0..=1000).contains(&offset) {
        return Err(Error::input("limit must be 1–300 and offset 0–1000"));
    }
    if q.id_around.is_some() || q.pinned_at_around.is_some() {
        return Err(Error::input(
            "id_around and pinned_at_around are not supported for pinned messages",
        ));
    }
    let descending = match filter::parse_sort(&q.sort)?.as_slice() {
        [] => true,
        [k] if k.field == "pinned_at" => k.descending,
        _ => return Err(Error::input("pinned messages sort only by pinned_at")),
    };
    let now = now_micros();
    let mut rows: Vec<MessageRow> = ctx
        .store
        .messages
        .find_pinned_messages(cid, loaded.channel.truncated_at, PINNED_SCAN_CAP)
        .await?
        .into_iter()
        .filter(|m| is_pinned(m, now))
        .collect();
    let key = |m: &MessageRow| (pinned_at(m), m.id.clone());
    let at = |id: &Option<String>| -> Result<Option<PinKey>> {
        match id {
            None => Ok(None),
            Some(id) => rows
                .iter()
                .find(|m| &m.id == id)
                .map(|m| Some(key(m)))
                .ok_or_else(|| Error::input(format!("message {id} is not pinned here"))),
        }
    };
    let bounds: [(Option<PinKey>, Accept); 4] = [
        (at(&q.id_lt)?, |o| o == Ordering::Less),
        (at(&q.id_lte)?, |o| o != Ordering::Greater),
        (at(&q.id_gt)?, |o| o == Ordering::Greater),
        (at(&q.id_gte)?, |o| o != Ordering::Less),
    ];
    let times: [(Option<Micros>, Accept); 4] = [
        (time_arg("pinned_at_before", &q.pinned_at_before)?, |o| {
            o == Ordering::Less
        }),
        (
            time_arg("pinned_at_before_or_equal", &q.pinned_at_before_or_equal)?,
            |o| o != Ordering::Greater,
        ),
        (time_arg("pinned_at_after", &q.pinned_at_after)?, |o| {
            o == Ordering::Greater
        }),
        (
            time_arg("pinned_at_after_or_equal", &q.pinned_at_after_or_equal)?,
            |o| o != Ordering::Less,
        ),
    ];
    rows.retain(|m| {
        let k = key(m);
        bounds
            .iter()
            .all(|(b, ok)| b.as_ref().is_none_or(|b| ok(k.cmp(b))))
            && times
                .iter()
                .all(|(t, ok)| t.is_none_or(|t| ok(k.0.cmp(&t))))
    });
    rows.sort_by(|a, b| {
        let o = key(a).cmp(&key(b));
        if descending { o.reverse() } else { o }
    });
    let page: Vec<MessageRow> = rows
        .into_iter()
        .skip(offset as usize)
        .take(limit as usize)
        .collect();
    let messages = view::render_messages(ctx, &page, actor.user_id()).await?;
    record_reads(ctx, actor, "pinned_messages", [(cid, page.len())]).await?;
    Ok(json!({ "messages": messages }))
}
