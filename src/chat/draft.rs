//! Drafts (Stream's `/channels/{type}/{id}/draft` and `/drafts/query`): one unsent message
//! per user, channel and thread, kept for the user alone (sealed under their key), and
//! announced to their own connections (`draft.updated`, `draft.deleted`) so their other
//! devices follow. Saving a draft needs what sending would (`SendMessage`, or `SendReply` in
//! a thread); reading and deleting one needs `ReadChannel`.

use serde::Deserialize;
use serde_json::{Map, Value, json};

use crate::audit::EventType;
use crate::chat::listing::{QueryPage, filtered, page};
use crate::chat::{Actor, Ctx, Error, Result, channel, validate_message_id};
use crate::store::DraftRow;
use crate::time::{now_micros, rfc3339};

/// The largest draft message, serialised.
const MAX_DRAFT_BYTES: usize = 64 * 1024;
/// How many drafts a query looks through.
const QUERY_CAP: i64 = 1000;

#[derive(Debug, Default, Deserialize)]
pub struct CreateDraft {
    #[serde(default)]
    pub message: Map<String, Value>,
}

fn parent_key(parent_id: Option<&str>) -> Result<String> {
    match parent_id {
        None | Some("") => Ok(String::new()),
        Some(p) => {
            validate_message_id(p)?;
            Ok(p.to_string())
        }
    }
}

/// `DraftResponse`.
pub fn draft_json(d: &DraftRow) -> Value {
    let mut message = d.message.clone();
    message.entry("text").or_insert_with(|| "".into());
    let mut out = json!({
        "channel_cid": d.cid,
        "created_at": rfc3339(d.created_at),
        "message": message,
    });
    if !d.parent_key.is_empty() {
        out["parent_id"] = d.parent_key.clone().into();
    }
    out
}

async fn announce(ctx: &Ctx<'_>, kind: &str, user_id: &str, d: &DraftRow) {
    let ev = json!({
        "type": kind,
        "cid": d.cid,
        "draft": draft_json(d),
        "created_at": rfc3339(now_micros()),
    });
    ctx.bus.to_user(user_id, &ev).await;
}

/// The draft message as stored: what the client sent, checked, without who sends it.
fn checked_message(ctx: &Ctx<'_>, msg: &Map<String, Value>) -> Result<Map<String, Value>> {
    let mut m: Map<String, Value> = msg
        .iter()
        .filter(|(k, _)| !matches!(k.as_str(), "user" | "user_id"))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    match m.get("text") {
        None | Some(Value::Null) => {
            m.insert("text".into(), "".into());
        }
        Some(Value::String(t)) if t.chars().count() > ctx.max_message_length => {
            return Err(Error::MessageTooLong {
                max: ctx.max_message_length,
            });
        }
        Some(Value::String(_)) => {}
        Some(_) => return Err(Error::input("message.text must be a string")),
    }
    match m.get("id") {
        None | Some(Value::Null) => {
            m.insert("id".into(), uuid::Uuid::new_v4().to_string().into());
        }
        Some(Value::String(id)) if !id.is_empty() => validate_message_id(id)?,
        Some(_) => return Err(Error::input("message.id must be a non-empty string")),
    }
    if m.get("attachments")
        .is_some_and(|a| !a.is_array() && !a.is_null())
    {
        return Err(Error::input("attachments must be a list"));
    }
    if Value::Object(m.clone()).to_string().len() > MAX_DRAFT_BYTES {
        return Err(Error::input("a draft must stay under 64KB"));
    }
    Ok(m)
}

/// `POST /channels/{type}/{id}/draft`.
pub async fn create_draft(
    ctx: &Ctx<'_>,
    actor: &Actor,
    cid: &str,
    body: &CreateDraft,
) -> Result<Value> {
    let user = actor.require_user()?;
    actor.authorize_app(ctx, "ManageDrafts")?;
    let loaded = channel::load(ctx, actor, cid).await?;
    let parent_id = match body.message.get("parent_id") {
        None | Some(Value::Null) => None,
        Some(Value::String(p)) => Some(p.as_str()),
        Some(_) => return Err(Error::input("parent_id must be a string")),
    };
    loaded.require(if parent_id.is_some() {
        "SendReply"
    } else {
        "SendMessage"
    })?;
    let parent_key = parent_key(parent_id)?;
    if !parent_key.is_empty() {
        ctx.store
            .messages
            .find_message(&parent_key)
            .await?
            .filter(|m| m.cid == cid)
            .ok_or_else(|| {
                Error::input(format!(
                    "parent message {parent_key} does not exist in {cid}"
                ))
            })?;
    }
    let now = now_micros();
    let row = DraftRow {
        user_id: user.id.clone(),
        cid: cid.to_string(),
        parent_key,
        message: checked_message(ctx, &body.message)?,
        created_at: now,
        updated_at: now,
    };
    let record = actor
        .audit(EventType::MessageCreate)
        .subject(user.id.clone())
        .object("draft", format!("{cid}/{}", row.parent_key))
        .meta("channel_type", &loaded.channel.kind)
        .meta("message_type", "draft");
    let stored = ctx
        .audit
        .audited([record], async |records| {
            ctx.store.drafts.upsert_draft(&row, &records).await
        })
        .await?;
    announce(ctx, "draft.updated", &user.id, &stored).await;
    Ok(json!({ "draft": draft_json(&stored) }))
}

/// `GET /channels/{type}/{id}/draft?parent_id=`.
pub async fn get_draft(
    ctx: &Ctx<'_>,
    actor: &Actor,
    cid: &str,
    parent_id: Option<&str>,
) -> Result<Value> {
    let user = actor.require_user()?;
    actor.authorize_app(ctx, "ManageDrafts")?;
    channel::load(ctx, actor, cid).await?.require_read()?;
    let key = parent_key(parent_id)?;
    let d = ctx
        .store
        .drafts
        .find_draft(&user.id, cid, &key)
        .await?
        .ok_or_else(|| Error::not_found(format!("no draft in {cid}")))?;
    Ok(json!({ "draft": draft_json(&d) }))
}

/// `DELETE /channels/{type}/{id}/draft?parent_id=`.
pub async fn delete_draft(
    ctx: &Ctx<'_>,
    actor: &Actor,
    cid: &str,
    parent_id: Option<&str>,
) -> Result<Value> {
    let user = actor.require_user()?;
    actor.authorize_app(ctx, "ManageDrafts")?;
    let loaded = channel::load(ctx, actor, cid).await?;
    loaded.require_read()?;
    let key = parent_key(parent_id)?;
    let record = actor
        .audit(EventType::MessageDelete)
        .subject(user.id.clone())
        .object("draft", format!("{cid}/{key}"))
        .meta("channel_type", &loaded.channel.kind);
    let removed = ctx
        .audit
        .audited([record], async |records| {
            ctx.store
                .drafts
                .delete_draft(&user.id, cid, &key, &records)
                .await
        })
        .await?
        .ok_or_else(|| Error::not_found(format!("no draft in {cid}")))?;
    announce(ctx, "draft.deleted", &user.id, &removed).await;
    Ok(json!({}))
}

/// `POST /drafts/query`: the caller's own drafts, newest first, by `channel_cid` and
/// `parent_id`.
pub async fn query_drafts(ctx: &Ctx<'_>, actor: &Actor, q: &QueryPage) -> Result<Value> {
    let user = actor.require_user()?;
    actor.authorize_app(ctx, "ManageDrafts")?;
    let mut drafts = ctx.store.drafts.find_drafts(&user.id, QUERY_CAP).await?;
    if !q.descending() {
        drafts.reverse();
    }
    let list: Vec<Value> = drafts.iter().map(draft_json).collect();
    let list = filtered(list, &q.filter, &["channel_cid", "parent_id"])?;
    page(list, q, "drafts")
}
