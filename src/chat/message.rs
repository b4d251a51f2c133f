//! Messages: send (client-supplied ids, duplicates refused), get, update, partial update,
//! delete (soft or hard), thread replies, and search.

use crate::audit::EventType;
use serde::Deserialize;
use serde_json::{Map, Value, json};

use crate::chat::Ctx;
use crate::chat::channel;
use crate::chat::view::{self, RESERVED_MESSAGE_FIELDS};
use crate::chat::{Actor, event, filter, validate_message_id, validate_user_id};
use crate::chat::{Error, Result};
use crate::store::{Cursor, MessageRow};
use crate::time::{now_micros, parse_rfc3339, rfc3339};

const MAX_ATTACHMENTS: usize = 30;
const MAX_MENTIONS: usize = 100;
const MAX_CUSTOM_BYTES: usize = 5 * 1024;

#[derive(Debug, Default, Deserialize)]
pub struct SendMessage {
    pub message: Map<String, Value>,
    #[serde(default)]
    pub skip_push: bool,
}

fn too_long(max: usize) -> Error {
    Error::MessageTooLong { max }
}

/// The parts of a client message object that go into `MessageRow::data`: attachments,
/// mentions, quote, pin details and custom fields.
fn message_data(
    ctx: &Ctx<'_>,
    msg: &Map<String, Value>,
    into: &mut Map<String, Value>,
) -> Result<()> {
    if let Some(a) = msg.get("attachments") {
        let list = a
            .as_array()
            .ok_or_else(|| Error::input("attachments must be a list"))?;
        if list.len() > MAX_ATTACHMENTS {
            return Err(Error::input(format!(
                "a message can have at most {MAX_ATTACHMENTS} attachments"
            )));
        }
        if list.iter().any(|x| !x.is_object()) {
            return Err(Error::input("each attachment must be an object"));
        }
        into.insert("attachments".into(), a.clone());
    }
    if let Some(m) = msg.get("mentioned_users") {
        let list = m
            .as_array()
            .ok_or_else(|| Error::input("mentioned_users must be a list"))?;
        if list.len() > MAX_MENTIONS {
            return Err(Error::input("too many mentioned users"));
        }
        let ids = list
            .iter()
            .map(|x| {
                let id = x
                    .as_str()
                    .or_else(|| x.get("id").and_then(Value::as_str))
                    .ok_or_else(|| Error::input("mentioned_users must be user ids"))?;
                validate_user_id(id)?;
                Ok(Value::from(id))
            })
            .collect::<Result<Vec<Value>>>()?;
        into.insert("mentioned_users".into(), ids.into());
    }
    let custom: Map<String, Value> = msg
        .iter()
        .filter(|(k, _)| {
            !RESERVED_MESSAGE_FIELDS.contains(&k.as_str())
                && ![
                    "attachments",
                    "mentioned_users",
                    "quoted_message_id",
                    "pinned_at",
                    "pin_expires",
                    "pinned_by_id",
                    "mentioned_channel",
                    "mentioned_here",
                    "restricted_visibility",
                    "poll_id",
                ]
                .contains(&k.as_str())
        })
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    if Value::Object(custom.clone()).to_string().len() > MAX_CUSTOM_BYTES {
        return Err(Error::input("message custom data must stay under 5KB"));
    }
    into.extend(custom);
    let _ = ctx;
    Ok(())
}

fn text_of(ctx: &Ctx<'_>, msg: &Map<String, Value>) -> Result<String> {
    let text = match msg.get("text") {
        None | Some(Value::Null) => String::new(),
        Some(Value::String(s)) => s.clone(),
        Some(_) => return Err(Error::input("message.text must be a string")),
    };
    let max = ctx.max_message_length;
    if text.chars().count() > max {
        return Err(too_long(max));
    }
    Ok(text)
}

/// `POST /channels/{type}/{id}/message`.
pub async fn send_message(
    ctx: &Ctx<'_>,
    actor: &Actor,
    cid: &str,
    body: &SendMessage,
) -> Result<Value> {
    let author = actor.require_user()?.clone();
    let loaded = channel::load(ctx, actor, cid).await?;
    let is_reply = msg_has_parent(&body.message);
    loaded.require(if is_reply { "SendReply" } else { "SendMessage" })?;
    let msg = &body.message;
    let id = match msg.get("id") {
        None | Some(Value::Null) => uuid::Uuid::new_v4().to_string(),
        Some(Value::String(id)) if !id.is_empty() => {
            validate_message_id(id)?;
            id.clone()
        }
        Some(_) => return Err(Error::input("message.id must be a non-empty string")),
    };
    let text = text_of(ctx, msg)?;
    let mut data = Map::new();
    message_data(ctx, msg, &mut data)?;
    let has_attachments = data
        .get("attachments")
        .and_then(Value::as_array)
        .is_some_and(|a| !a.is_empty());
    if text.trim().is_empty() && !has_attachments {
        return Err(Error::input("message must have text or attachments"));
    }
    let parent_id = match msg.get("parent_id") {
        None | Some(Value::Null) => None,
        Some(Value::String(p)) => {
            if !loaded.config.replies {
                return Err(Error::input(format!(
                    "replies are disabled for channel type {}",
                    loaded.channel.kind
                )));
            }
            let parent = ctx
                .store
                .messages
                .find_message(p)
                .await?
                .filter(|m| m.cid == cid)
                .ok_or_else(|| {
                    Error::input(format!("parent message {p} does not exist in {cid}"))
                })?;
            if parent.parent_id.is_some() {
                return Err(Error::MultipleNesting);
            }
            Some(parent.id)
        }
        Some(_) => return Err(Error::input("parent_id must be a string")),
    };
    if let Some(q) = msg.get("quoted_message_id").filter(|v| !v.is_null()) {
        let q = q
            .as_str()
            .ok_or_else(|| Error::input("quoted_message_id must be a string"))?;
        ctx.store
            .messages
            .find_message(q)
            .await?
            .filter(|m| m.cid == cid)
            .ok_or_else(|| Error::input(format!("quoted message {q} does not exist in {cid}")))?;
        data.insert("quoted_message_id".into(), q.into());
    }
    let kind = match msg.get("type").and_then(Value::as_str) {
        Some("system") if actor.is_admin() => "system",
        Some("regular") | None => {
            if parent_id.is_some() {
                "reply"
            } else {
                "regular"
            }
        }
        Some(other) if other == "reply" && parent_id.is_some() => "reply",
        Some(other) => {
            return Err(Error::input(format!(
                "message type {other:?} cannot be sent"
            )));
        }
    };
    let pinned = msg.get("pinned").and_then(Value::as_bool).unwrap_or(false);
    let now = now_micros();
    if pinned {
        data.insert("pinned_by_id".into(), author.id.clone().into());
        data.insert("pinned_at".into(), rfc3339(now).into());
    }
    let row = MessageRow {
        id,
        cid: cid.to_string(),
        user_id: author.id.clone(),
        kind: kind.to_string(),
        text,
        data,
        show_in_channel: parent_id.is_some()
            && msg
                .get("show_in_channel")
                .and_then(Value::as_bool)
                .unwrap_or(false),
        parent_id,
        silent: msg.get("silent").and_then(Value::as_bool).unwrap_or(false),
        pinned,
        reply_count: 0,
        created_at: now,
        updated_at: now,
        deleted_at: None,
    };
    let record = actor
        .audit(EventType::MessageCreate)
        .subject(author.id.clone())
        .object("message", row.id.clone())
        .meta("channel_type", &loaded.channel.kind)
        .meta("message_type", &row.kind);
    ctx.audit
        .audited([record], async |records| {
            let messages = &ctx.store.messages;
            messages.insert_message(&row, !row.silent, &records).await
        })
        .await?;
    tracing::debug!(cid = %cid, message_id = %row.id, "message stored");

    let rendered = view::render_messages(ctx, std::slice::from_ref(&row), None)
        .await?
        .remove(0);
    let user_json = view::user_json(ctx, &author);
    let mut ev = event::channel_event("message.new", cid);
    ev["message"] = rendered.clone();
    ev["message_id"] = row.id.clone().into();
    ev["user"] = user_json;
    ev["watcher_count"] = ctx.hub.watcher_count(cid).into();
    ev["channel_member_count"] = loaded.channel.member_count.into();
    ctx.bus.to_channel(cid, &ev).await;

    if row.parent_id.is_none() || row.show_in_channel {
        notify_members_not_watching(ctx, &loaded, &row, &rendered).await?;
    }
    Ok(json!({ "message": rendered }))
}

/// `notification.message_new` for members who are not watching the channel, each with
/// their own unread counters.
async fn notify_members_not_watching(
    ctx: &Ctx<'_>,
    loaded: &channel::Loaded,
    row: &MessageRow,
    rendered: &Value,
) -> Result<()> {
    let cid = &loaded.channel.cid;
    let members = ctx
        .store
        .channels
        .find_members(std::slice::from_ref(cid))
        .await?;
    for m in members
        .iter()
        .filter(|m| m.user_id != row.user_id && !ctx.hub.is_watching(cid, &m.user_id))
    {
        if !ctx.hub.is_online(&m.user_id) {
            continue;
        }
        let Some(target) = ctx.store.users.find_user(&m.user_id).await? else {
            continue;
        };
        let target = Actor::user(target);
        let unread = crate::chat::read::unread_for(ctx, &m.user_id).await?;
        let mut ev = event::channel_event("notification.message_new", cid);
        ev["channel"] =
            view::channel_json(ctx, &target, &loaded.channel, &loaded.config, Some(m), None);
        ev["message"] = rendered.clone();
        ev["total_unread_count"] = unread.total.into();
        ev["unread_channels"] = unread.channels.into();
        ev["unread_count"] = unread.total.into();
        ctx.bus.to_user(&m.user_id, &ev).await;
    }
    Ok(())
}

async fn load_message(ctx: &Ctx<'_>, id: &str) -> Result<MessageRow> {
    validate_message_id(id)?;
    ctx.store
        .messages
        .find_message(id)
        .await?
        .ok_or_else(|| Error::not_found(format!("message {id} does not exist")))
}

/// Loads a message the actor can read (its channel is readable and it is not truncated).
async fn readable_message(
    ctx: &Ctx<'_>,
    actor: &Actor,
    id: &str,
) -> Result<(MessageRow, channel::Loaded)> {
    let m = load_message(ctx, id).await?;
    let loaded = channel::load(ctx, actor, &m.cid).await?;
    loaded.require_read()?;
    if loaded
        .channel
        .truncated_at
        .is_some_and(|t| m.created_at <= t)
    {
        return Err(Error::not_found(format!("message {id} does not exist")));
    }
    Ok((m, loaded))
}

/// Authors change their own messages (`…Own…`); moderators anyone's (`…Any…`).
fn may_edit(
    actor: &Actor,
    loaded: &channel::Loaded,
    m: &MessageRow,
    own: &str,
    any: &str,
) -> Result<()> {
    if actor.user_id() == Some(m.user_id.as_str()) {
        loaded.require_on_message(own, true)
    } else {
        loaded.require_on_message(any, false)
    }
}

fn msg_has_parent(msg: &Map<String, Value>) -> bool {
    msg.get("parent_id").is_some_and(|p| !p.is_null())
}

/// `GET /messages/{id}`.
pub async fn get_message(ctx: &Ctx<'_>, actor: &Actor, id: &str) -> Result<Value> {
    let (m, _) = readable_message(ctx, actor, id).await?;
    let cid = m.cid.clone();
    let rendered = view::render_messages(ctx, &[m], actor.user_id())
        .await?
        .remove(0);
    record_reads(ctx, actor, "get_message", [(cid.as_str(), 1)]).await?;
    Ok(json!({ "message": rendered }))
}

async fn store_and_announce(
    ctx: &Ctx<'_>,
    actor: &Actor,
    m: &MessageRow,
    kind: &str,
) -> Result<Value> {
    let event = if kind == "message.deleted" {
        EventType::MessageDelete
    } else {
        EventType::MessageUpdate
    };
    let mut record = actor
        .audit(event)
        .subject(m.user_id.clone())
        .object("message", m.id.clone())
        .meta("channel_type", channel_type_of(&m.cid));
    if event == EventType::MessageDelete {
        record = record.meta("hard", false);
    }
    ctx.audit
        .audited([record], async |records| {
            ctx.store.messages.update_message(m, &records).await
        })
        .await?;
    let stored = load_message(ctx, &m.id).await?;
    let rendered = view::render_messages(ctx, &[stored], actor.user_id())
        .await?
        .remove(0);
    let mut ev = event::channel_event(kind, &m.cid);
    ev["message"] = rendered.clone();
    ev["message_id"] = m.id.clone().into();
    if let Some(u) = &actor.user {
        ev["user"] = view::user_json(ctx, u);
    }
    if kind == "message.deleted" {
        ev["hard_delete"] = false.into();
    }
    ctx.bus.to_channel(&m.cid, &ev).await;
    Ok(json!({ "message": rendered }))
}

#[derive(Debug, Default, Deserialize)]
pub struct UpdateMessage {
    pub message: Map<String, Value>,
}

/// `POST /messages/{id}`: replaces text, attachments, mentions and custom fields.
pub async fn update_message(
    ctx: &Ctx<'_>,
    actor: &Actor,
    id: &str,
    body: &UpdateMessage,
) -> Result<Value> {
    let (mut m, loaded) = readable_message(ctx, actor, id).await?;
    may_edit(actor, &loaded, &m, "UpdateOwnMessage", "UpdateAnyMessage")?;
    if m.deleted_at.is_some() {
        return Err(Error::input(format!(
            "message {id} was deleted and cannot be updated"
        )));
    }
    if body
        .message
        .get("id")
        .and_then(Value::as_str)
        .is_some_and(|b| b != id)
    {
        return Err(Error::input("message.id does not match the id in the path"));
    }
    m.text = text_of(ctx, &body.message)?;
    let mut data = Map::new();
    for keep in [
        "quoted_message_id",
        "pinned_by_id",
        "pinned_at",
        "pin_expires",
    ] {
        if let Some(v) = m.data.get(keep) {
            data.insert(keep.into(), v.clone());
        }
    }
    message_data(ctx, &body.message, &mut data)?;
    m.data = data;
    if let Some(pinned) = body.message.get("pinned").and_then(Value::as_bool) {
        set_pinned(&mut m, pinned, actor);
    }
    m.updated_at = now_micros();
    store_and_announce(ctx, actor, &m, "message.updated").await
}

fn set_pinned(m: &mut MessageRow, pinned: bool, actor: &Actor) {
    if pinned && !m.pinned {
        if let Some(uid) = actor.user_id() {
            m.data.insert("pinned_by_id".into(), uid.into());
        }
        m.data
            .insert("pinned_at".into(), rfc3339(now_micros()).into());
    } else if !pinned {
        for k in ["pinned_by_id", "pinned_at", "pin_expires"] {
            m.data.remove(k);
        }
    }
    m.pinned = pinned;
}

#[derive(Debug, Default, Deserialize)]
pub struct PartialUpdateMessage {
    #[serde(default)]
    pub set: Map<String, Value>,
    #[serde(default)]
    pub unset: Vec<String>,
}

/// `PUT /messages/{id}`: sets and unsets fields (pinning goes through here).
pub async fn partial_update_message(
    ctx: &Ctx<'_>,
    actor: &Actor,
    id: &str,
    body: &PartialUpdateMessage,
) -> Result<Value> {
    let (mut m, loaded) = readable_message(ctx, actor, id).await?;
    may_edit(actor, &loaded, &m, "UpdateOwnMessage", "UpdateAnyMessage")?;
    if m.deleted_at.is_some() {
        return Err(Error::input(format!(
            "message {id} was deleted and cannot be updated"
        )));
    }
    const IMMUTABLE: &[&str] = &[
        "id",
        "cid",
        "user",
        "user_id",
        "created_at",
        "updated_at",
        "deleted_at",
        "type",
        "parent_id",
        "reply_count",
        "latest_reactions",
        "own_reactions",
        "reaction_groups",
        "reaction_counts",
        "reaction_scores",
    ];
    for k in body.set.keys().chain(body.unset.iter()) {
        if IMMUTABLE.contains(&k.as_str()) {
            return Err(Error::input(format!("field {k} cannot be changed")));
        }
    }
    if body.set.contains_key("text") {
        m.text = text_of(ctx, &body.set)?;
    }
    let mut fields = body.set.clone();
    fields.remove("text");
    let pinned = fields.remove("pinned").and_then(|v| v.as_bool());
    message_data(ctx, &fields, &mut m.data)?;
    for k in ["pin_expires"] {
        if let Some(v) = fields.get(k) {
            m.data.insert(k.into(), v.clone());
        }
    }
    for k in &body.unset {
        if k == "text" {
            m.text.clear();
        } else if k == "pinned" {
            set_pinned(&mut m, false, actor);
        } else {
            m.data.remove(k);
        }
    }
    if let Some(p) = pinned {
        set_pinned(&mut m, p, actor);
    }
    m.updated_at = now_micros();
    store_and_announce(ctx, actor, &m, "message.updated").await
}

/// `DELETE /messages/{id}`: soft by default (the row stays for retention; the API shows it
/// as deleted with no content); `hard` removes it and its reactions.
pub async fn delete_message(ctx: &Ctx<'_>, actor: &Actor, id: &str, hard: bool) -> Result<Value> {
    let (mut m, loaded) = readable_message(ctx, actor, id).await?;
    may_edit(actor, &loaded, &m, "DeleteOwnMessage", "DeleteAnyMessage")?;
    let now = now_micros();
    if hard {
        m.kind = "deleted".into();
        m.deleted_at = Some(now);
        m.updated_at = now;
        let rendered = view::render_messages(ctx, std::slice::from_ref(&m), actor.user_id())
            .await?
            .remove(0);
        let record = actor
            .audit(EventType::MessageDelete)
            .subject(m.user_id.clone())
            .object("message", m.id.clone())
            .meta("channel_type", channel_type_of(&m.cid))
            .meta("hard", true);
        ctx.audit
            .audited([record], async |records| {
                ctx.store.messages.delete_message(id, &records).await
            })
            .await?;
        let mut ev = event::channel_event("message.deleted", &m.cid);
        ev["message"] = rendered.clone();
        ev["message_id"] = m.id.clone().into();
        ev["hard_delete"] = true.into();
        ctx.bus.to_channel(&m.cid, &ev).await;
        return Ok(json!({ "message": rendered }));
    }
    if m.deleted_at.is_none() {
        m.kind = "deleted".into();
        m.deleted_at = Some(now);
        m.updated_at = now;
    }
    store_and_announce(ctx, actor, &m, "message.deleted").await
}

#[derive(Debug, Default, Deserialize)]
pub struct RepliesQuery {
    pub limit: Option<i64>,
    pub id_lt: Option<String>,
    pub id_lte: Option<String>,
    pub id_gt: Option<String>,
    pub id_gte: Option<String>,
    pub created_at_before: Option<String>,
    pub created_at_after: Option<String>,
}

/// `GET /messages/{parent_id}/replies`, ascending.
pub async fn get_replies(
    ctx: &Ctx<'_>,
    actor: &Actor,
    parent_id: &str,
    q: &RepliesQuery,
) -> Result<Value> {
    let (parent, _) = readable_message(ctx, actor, parent_id).await?;
    let limit = q.limit.unwrap_or(25);
    if !(1..=300).contains(&limit) {
        return Err(Error::input("limit must be between 1 and 300"));
    }
    let at = |id: &str| {
        let id = id.to_string();
        async move { load_message(ctx, &id).await }
    };
    let cursor = if let Some(id) = &q.id_lt {
        let m = at(id).await?;
        Cursor::Before {
            at: m.created_at,
            id: m.id,
            inclusive: false,
        }
    } else if let Some(id) = &q.id_lte {
        let m = at(id).await?;
        Cursor::Before {
            at: m.created_at,
            id: m.id,
            inclusive: true,
        }
    } else if let Some(id) = &q.id_gt {
        let m = at(id).await?;
        Cursor::After {
            at: m.created_at,
            id: m.id,
            inclusive: false,
        }
    } else if let Some(id) = &q.id_gte {
        let m = at(id).await?;
        Cursor::After {
            at: m.created_at,
            id: m.id,
            inclusive: true,
        }
    } else if let Some(t) = &q.created_at_before {
        Cursor::Before {
            at: parse_rfc3339(t)
                .ok_or_else(|| Error::input("created_at_before must be RFC 3339"))?,
            id: String::new(),
            inclusive: false,
        }
    } else if let Some(t) = &q.created_at_after {
        Cursor::After {
            at: parse_rfc3339(t)
                .ok_or_else(|| Error::input("created_at_after must be RFC 3339"))?,
            id: "\u{10FFFF}".into(),
            inclusive: false,
        }
    } else {
        Cursor::Latest
    };
    let rows = ctx
        .store
        .messages
        .find_replies(&parent.id, &cursor, limit)
        .await?;
    let messages = view::render_messages(ctx, &rows, actor.user_id()).await?;
    record_reads(ctx, actor, "replies", [(parent.cid.as_str(), rows.len())]).await?;
    Ok(json!({ "messages": messages }))
}

#[derive(Debug, Default, Deserialize)]
pub struct Search {
    #[serde(default)]
    pub filter_conditions: Value,
    pub query: Option<String>,
    #[serde(default)]
    pub message_filter_conditions: Value,
    pub limit: Option<i64>,
    pub offset: Option<i64>,
    pub next: Option<String>,
    #[serde(default)]
    pub sort: Value,
}

/// Messages one search evaluates in memory when it has message filters and no text query.
const SEARCH_SCAN_CAP: i64 = 1_000;

/// `GET /search`: messages in channels the caller belongs to (matching `filter_conditions`)
/// whose text contains `query`, newest first, each with its `channel`.
pub async fn search(ctx: &Ctx<'_>, actor: &Actor, q: &Search) -> Result<Value> {
    if q.filter_conditions.as_object().is_none_or(|o| o.is_empty()) {
        return Err(Error::input(
            "search needs non-empty filter_conditions to select channels",
        ));
    }
    actor.authorize_app(ctx, "QueryChannels")?;
    let channel_filter = filter::parse(&q.filter_conditions)?;
    let message_filter = filter::parse(&q.message_filter_conditions)?;
    let needle = match (&q.query, message_filter_text(&q.message_filter_conditions)) {
        (Some(text), _) if !text.trim().is_empty() => text.trim().to_string(),
        (_, Some(text)) => text,
        _ if q.message_filter_conditions.is_object() => String::new(),
        _ => {
            return Err(Error::input(
                "search needs a query or message_filter_conditions",
            ));
        }
    };
    if needle.chars().count() > 300 {
        return Err(Error::input("search query is too long"));
    }
    let limit = q.limit.unwrap_or(20);
    let offset = match &q.next {
        Some(next) => next
            .parse::<i64>()
            .map_err(|_| Error::input("next is not a valid cursor"))?,
        None => q.offset.unwrap_or(0),
    };
    if !(1..=100).contains(&limit) || !(0..=1000).contains(&offset) {
        return Err(Error::input("limit must be 1–100 and offset 0–1000"));
    }
    let channels = channel::readable_channels(ctx, actor, &channel_filter, true).await?;
    let channels: Vec<channel::Loaded> = channels
        .into_iter()
        .filter(|l| l.allows("SearchMessages"))
        .collect();
    let cids: Vec<String> = channels.iter().map(|l| l.channel.cid.clone()).collect();
    // An explicit sort (e.g. `created_at` ascending) orders the scanned matches in memory.
    let sort = filter::parse_sort(&q.sort)?;
    let filtered =
        !matches!(message_filter, filter::Filter::And(ref v) if v.is_empty()) || !sort.is_empty();
    let (fetch_limit, fetch_offset) = if filtered {
        (SEARCH_SCAN_CAP, 0)
    } else {
        (limit + 1, offset)
    };
    let rows = ctx
        .store
        .messages
        .search_messages(&cids, &needle, fetch_limit, fetch_offset)
        .await?;
    let mut rendered = view::render_messages(ctx, &rows, actor.user_id()).await?;
    let mut per_channel: std::collections::BTreeMap<&str, usize> = Default::default();
    for r in &rows {
        *per_channel.entry(r.cid.as_str()).or_default() += 1;
    }
    record_reads(ctx, actor, "search", per_channel).await?;
    if filtered {
        rendered.retain(|m| message_filter.matches(m));
        rendered.sort_by(|a, b| filter::compare_docs(a, b, &sort));
        rendered = rendered.into_iter().skip(offset as usize).collect();
    }
    let more = rendered.len() as i64 > limit;
    rendered.truncate(limit as usize);
    let results: Vec<Value> = rendered
        .into_iter()
        .map(|mut m| {
            if let Some(l) = channels
                .iter()
                .find(|l| Some(l.channel.cid.as_str()) == m["cid"].as_str())
            {
                m["channel"] = view::channel_json(
                    ctx,
                    actor,
                    &l.channel,
                    &l.config,
                    l.membership.as_ref(),
                    None,
                );
            }
            json!({ "message": m })
        })
        .collect();
    let mut reply = json!({ "results": results });
    if more {
        reply["next"] = (offset + limit).to_string().into();
    }
    if offset > 0 {
        reply["previous"] = (offset - limit).max(0).to_string().into();
    }
    Ok(reply)
}

/// The text a message filter searches for (`text: {$autocomplete|$q: "…"}`), if any.
fn message_filter_text(v: &Value) -> Option<String> {
    let text = v.get("text")?;
    text.get("$autocomplete")
        .or_else(|| text.get("$q"))
        .and_then(Value::as_str)
        .map(String::from)
}

/// The type part of a cid (`messaging:general` → `messaging`).
fn channel_type_of(cid: &str) -> &str {
    cid.split_once(':').map_or(cid, |(t, _)| t)
}

/// Records that channel messages (PHI) were returned to `actor`: one entry per channel with
/// the number of messages, durable before the reply leaves.
pub async fn record_reads<'a>(
    ctx: &Ctx<'_>,
    actor: &Actor,
    how: &str,
    per_channel: impl IntoIterator<Item = (&'a str, usize)>,
) -> Result<()> {
    let events: Vec<_> = per_channel
        .into_iter()
        .filter(|(_, n)| *n > 0)
        .map(|(cid, n)| {
            actor
                .audit(EventType::MessageRead)
                .object("channel", cid)
                .meta("channel_type", channel_type_of(cid))
                .meta("count", n)
                .meta(
                    "via",
                    if actor.server {
                        format!("server:{how}")
                    } else {
                        format!("client:{how}")
                    },
                )
        })
        .collect();
    if events.is_empty() {
        return Ok(());
    }
    ctx.audit.record_all(events).await?;
    Ok(())
}
