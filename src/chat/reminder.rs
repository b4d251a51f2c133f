//! Message reminders (Stream's `/messages/{id}/reminders`, `/reminders/query`): "remind me"
//! (`remind_at`) and "save for later" (no `remind_at`), one per user and message, on
//! messages one may read in channel types with `user_message_reminders`. Changes go to the
//! user's own connections (`reminder.created/updated/deleted`).
//!
//! Due delivery: reminders live in the database; every node runs [`deliver_due`] on a short
//! tick (`app::tier2`), which claims each due reminder once (a conditional update: exactly one
//! node wins it) and sends `notification.reminder_due` through the bus to the user's
//! connections wherever they are. A reminder that fell due while every node was down is
//! delivered at the next tick after start; one claimed by a node that then died before
//! publishing is not re-sent (at most once).

use serde::Deserialize;
use serde_json::{Map, Value, json};

use crate::audit::EventType;
use crate::chat::listing::{QueryPage, filtered, page};
use crate::chat::{Actor, Ctx, Error, Result, channel, validate_message_id, view};
use crate::store::ReminderRow;
use crate::time::{now_micros, parse_rfc3339, rfc3339};

/// How many reminders a query looks through, and a sweep claims at once.
const QUERY_CAP: i64 = 1000;
const CLAIM_BATCH: i64 = 100;

#[derive(Debug, Default, Deserialize)]
pub struct ReminderBody {
    #[serde(default)]
    pub remind_at: Value,
}

fn remind_at(v: &Value) -> Result<Option<i64>> {
    match v {
        Value::Null => Ok(None),
        Value::String(s) => parse_rfc3339(s)
            .map(Some)
            .ok_or_else(|| Error::input("remind_at must be an RFC 3339 time")),
        _ => Err(Error::input("remind_at must be an RFC 3339 time or null")),
    }
}

async fn reminder_json(ctx: &Ctx<'_>, actor: &Actor, r: &ReminderRow) -> Result<Value> {
    let mut out = base_json(r);
    if let Some(m) = ctx.store.messages.find_message(&r.message_id).await? {
        out["message"] = view::render_messages(ctx, &[m], actor.user_id())
            .await?
            .remove(0);
    }
    if let Some(u) = &actor.user {
        out["user"] = view::user_json(ctx, u);
    }
    Ok(out)
}

fn base_json(r: &ReminderRow) -> Value {
    let mut out = json!({
        "channel_cid": r.cid,
        "message_id": r.message_id,
        "user_id": r.user_id,
        "created_at": rfc3339(r.created_at),
        "updated_at": rfc3339(r.updated_at),
    });
    if let Some(at) = r.remind_at {
        out["remind_at"] = rfc3339(at).into();
    }
    out
}

async fn announce(ctx: &Ctx<'_>, kind: &str, r: &ReminderRow, reminder: Value) {
    let ev = json!({
        "type": kind,
        "cid": r.cid,
        "message_id": r.message_id,
        "user_id": r.user_id,
        "reminder": reminder,
        "created_at": rfc3339(now_micros()),
    });
    ctx.bus.to_user(&r.user_id, &ev).await;
}

/// The message a reminder is about, readable by the actor, in a type with reminders.
async fn readable_message(ctx: &Ctx<'_>, actor: &Actor, message_id: &str) -> Result<String> {
    validate_message_id(message_id)?;
    actor.authorize_app(ctx, "ManageReminders")?;
    let m = ctx
        .store
        .messages
        .find_message(message_id)
        .await?
        .filter(|m| m.deleted_at.is_none())
        .ok_or_else(|| Error::not_found(format!("message {message_id} does not exist")))?;
    let loaded = channel::load(ctx, actor, &m.cid).await?;
    loaded.require_read()?;
    if !loaded.config.user_message_reminders {
        return Err(Error::input(format!(
            "reminders are disabled for channel type {}",
            loaded.channel.kind
        )));
    }
    Ok(m.cid)
}

/// `POST /messages/{id}/reminders`.
pub async fn create_reminder(
    ctx: &Ctx<'_>,
    actor: &Actor,
    message_id: &str,
    body: &ReminderBody,
) -> Result<Value> {
    let user = actor.require_user()?;
    let cid = readable_message(ctx, actor, message_id).await?;
    let now = now_micros();
    let row = ReminderRow {
        user_id: user.id.clone(),
        message_id: message_id.to_string(),
        cid,
        remind_at: remind_at(&body.remind_at)?,
        notified_at: None,
        created_at: now,
        updated_at: now,
    };
    let record = actor
        .audit(EventType::MessageUpdate)
        .subject(user.id.clone())
        .object("reminder", message_id.to_string());
    ctx.audit
        .audited([record], async |records| {
            ctx.store.drafts.insert_reminder(&row, &records).await
        })
        .await?;
    let out = reminder_json(ctx, actor, &row).await?;
    announce(ctx, "reminder.created", &row, out.clone()).await;
    Ok(json!({ "reminder": out }))
}

/// `PATCH /messages/{id}/reminders`.
pub async fn update_reminder(
    ctx: &Ctx<'_>,
    actor: &Actor,
    message_id: &str,
    body: &ReminderBody,
) -> Result<Value> {
    let user = actor.require_user()?;
    let cid = readable_message(ctx, actor, message_id).await?;
    let row = ReminderRow {
        user_id: user.id.clone(),
        message_id: message_id.to_string(),
        cid,
        remind_at: remind_at(&body.remind_at)?,
        notified_at: None,
        created_at: 0,
        updated_at: now_micros(),
    };
    let record = actor
        .audit(EventType::MessageUpdate)
        .subject(user.id.clone())
        .object("reminder", message_id.to_string());
    let updated = ctx
        .audit
        .audited([record], async |records| {
            ctx.store.drafts.update_reminder(&row, &records).await
        })
        .await?
        .ok_or_else(|| Error::not_found(format!("no reminder for message {message_id}")))?;
    let out = reminder_json(ctx, actor, &updated).await?;
    announce(ctx, "reminder.updated", &updated, out.clone()).await;
    Ok(json!({ "reminder": out }))
}

/// `DELETE /messages/{id}/reminders`. The message need not be readable any more (one may
/// always drop one's own reminder).
pub async fn delete_reminder(ctx: &Ctx<'_>, actor: &Actor, message_id: &str) -> Result<Value> {
    let user = actor.require_user()?;
    validate_message_id(message_id)?;
    actor.authorize_app(ctx, "ManageReminders")?;
    let record = actor
        .audit(EventType::MessageUpdate)
        .subject(user.id.clone())
        .object("reminder", message_id.to_string());
    let removed = ctx
        .audit
        .audited([record], async |records| {
            ctx.store
                .drafts
                .delete_reminder(&user.id, message_id, &records)
                .await
        })
        .await?
        .ok_or_else(|| Error::not_found(format!("no reminder for message {message_id}")))?;
    announce(ctx, "reminder.deleted", &removed, base_json(&removed)).await;
    Ok(json!({}))
}

/// `POST /reminders/query`: the caller's reminders, by `remind_at`, filtered by
/// `channel_cid`, `message_id`, `user_id`.
pub async fn query_reminders(ctx: &Ctx<'_>, actor: &Actor, q: &QueryPage) -> Result<Value> {
    let user = actor.require_user()?;
    actor.authorize_app(ctx, "ManageReminders")?;
    let rows = ctx.store.drafts.find_reminders(&user.id, QUERY_CAP).await?;
    let mut list = Vec::with_capacity(rows.len());
    for r in &rows {
        list.push(reminder_json(ctx, actor, r).await?);
    }
    let wanted: Map<String, Value> = q
        .filter
        .iter()
        .filter(|(k, _)| k.as_str() != "remind_at")
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    let mut list = filtered(list, &wanted, &["channel_cid", "message_id", "user_id"])?;
    if let Some(cond) = q.filter.get("remind_at") {
        let exists = cond
            .get("$exists")
            .and_then(Value::as_bool)
            .ok_or_else(|| Error::input("remind_at can only be filtered with $exists"))?;
        list.retain(|r| r.get("remind_at").is_some() == exists);
    }
    page(list, q, "reminders")
}

/// Claims the reminders due now (on any node, each once) and sends each user
/// `notification.reminder_due`; returns how many were sent.
pub async fn deliver_due(ctx: &Ctx<'_>) -> Result<usize> {
    let due = ctx
        .store
        .drafts
        .claim_due_reminders(now_micros(), CLAIM_BATCH)
        .await?;
    for r in &due {
        let Some(user) = ctx.store.users.find_user(&r.user_id).await? else {
            continue;
        };
        let actor = Actor::user(user);
        // The reminder is delivered only while its message stays readable.
        let readable = match channel::load(ctx, &actor, &r.cid).await {
            Ok(l) => l.require_read().is_ok(),
            Err(_) => false,
        };
        if !readable {
            continue;
        }
        let out = reminder_json(ctx, &actor, r).await?;
        announce(ctx, "notification.reminder_due", r, out).await;
    }
    Ok(due.len())
}
