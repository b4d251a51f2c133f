//! Channels: get-or-create with state (`/query`), querying many (`POST /channels`), and the
//! ChannelState shape both return. Updates, members and deletion are in `channel_update`.

use std::collections::{HashMap, HashSet};

use serde::Deserialize;
use serde_json::{Map, Value, json};
use sha2::{Digest, Sha256};

use crate::chat::Ctx;
use std::sync::Arc;

use crate::authz::{Authz, ChannelFacts, Resource};
use crate::chat::channel_type::{self, ChannelConfig};
use crate::chat::{
    Actor, event, filter, user, validate_channel_id, validate_channel_type, validate_user_id, view,
};
use crate::chat::{Error, Result};
use crate::store::{ChannelRow, Cursor, MemberRow, MessageRow};
use crate::time::{now_micros, parse_rfc3339, rfc3339};

/// A channel, the actor's membership, and the facts the policies decide on.
pub struct Loaded {
    pub channel: ChannelRow,
    pub config: ChannelConfig,
    pub membership: Option<MemberRow>,
    pub facts: ChannelFacts,
    actor: Actor,
    authz: Arc<Authz>,
}

impl Loaded {
    pub fn actor(&self) -> &Actor {
        &self.actor
    }

    /// Whether the policies permit `action` here (no audit record: for filtering).
    pub fn allows(&self, action: &str) -> bool {
        self.authz.allows(
            self.actor.principal(),
            action,
            &Resource::Channel(&self.facts),
        )
    }

    /// Permits `action` here or answers code 17 naming it (and records the denial).
    pub fn require(&self, action: &str) -> Result<()> {
        self.authz.authorize(
            self.actor.principal(),
            action,
            &Resource::Channel(&self.facts),
        )?;
        Ok(())
    }

    /// As [`Loaded::require`], about a message the actor did or did not write.
    pub fn require_on_message(&self, action: &str, is_author: bool) -> Result<()> {
        let mut facts = self.facts.clone();
        facts.is_author = is_author;
        self.authz
            .authorize(self.actor.principal(), action, &Resource::Channel(&facts))?;
        Ok(())
    }

    pub fn require_read(&self) -> Result<()> {
        self.require("ReadChannel")
    }
}

/// Whether the channel's type sends `user.watching.*` (its `connect_events` flag).
pub fn connect_events(cid: &str) -> bool {
    cid.split_once(':')
        .and_then(|(kind, _)| channel_type::lookup(kind))
        .is_some_and(|c| c.connect_events)
}

pub fn config_for(kind: &str) -> Result<ChannelConfig> {
    validate_channel_type(kind)?;
    channel_type::lookup(kind)
        .ok_or_else(|| Error::input(format!("channel type {kind:?} does not exist")))
}

fn with_access(
    ctx: &Ctx<'_>,
    actor: &Actor,
    channel: ChannelRow,
    membership: Option<MemberRow>,
) -> Result<Loaded> {
    let config = config_for(&channel.kind)?;
    let facts = channel_type::facts(actor, &config, &channel, membership.as_ref());
    Ok(Loaded {
        channel,
        config,
        membership,
        facts,
        actor: actor.clone(),
        authz: ctx.authz.clone(),
    })
}

/// Loads a live channel and the actor's membership. Missing or deleted: code 16.
pub async fn load(ctx: &Ctx<'_>, actor: &Actor, cid: &str) -> Result<Loaded> {
    crate::chat::parse_cid(cid)?;
    let channel = ctx
        .store
        .channels
        .find_channel(cid)
        .await?
        .filter(|c| c.deleted_at.is_none())
        .ok_or_else(|| Error::not_found(format!("channel {cid} does not exist")))?;
    let membership = membership_of(ctx, actor, cid).await?;
    with_access(ctx, actor, channel, membership)
}

async fn membership_of(ctx: &Ctx<'_>, actor: &Actor, cid: &str) -> Result<Option<MemberRow>> {
    let Some(uid) = actor.user_id() else {
        return Ok(None);
    };
    Ok(ctx
        .store
        .channels
        .find_members(&[cid.to_string()])
        .await?
        .into_iter()
        .find(|m| m.user_id == uid))
}

#[derive(Debug, Default, Deserialize)]
pub struct Pagination {
    pub limit: Option<i64>,
    pub offset: Option<i64>,
}

#[derive(Debug, Default, Deserialize)]
pub struct MessagePagination {
    pub limit: Option<i64>,
    pub id_lt: Option<String>,
    pub id_lte: Option<String>,
    pub id_gt: Option<String>,
    pub id_gte: Option<String>,
    pub id_around: Option<String>,
    pub created_at_before: Option<String>,
    pub created_at_before_or_equal: Option<String>,
    pub created_at_after: Option<String>,
    pub created_at_after_or_equal: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
pub struct QueryChannel {
    #[serde(default)]
    pub data: Option<Map<String, Value>>,
    #[serde(default)]
    pub watch: bool,
    #[serde(default)]
    pub presence: bool,
    #[serde(default)]
    pub messages: Option<MessagePagination>,
    #[serde(default)]
    pub members: Option<Pagination>,
    #[serde(default)]
    pub watchers: Option<Pagination>,
}

/// Fields of `data` that describe the request rather than the channel's custom data.
const NOT_CUSTOM: &[&str] = &[
    "members",
    "created_by",
    "created_by_id",
    "id",
    "type",
    "cid",
    "frozen",
    "config",
    "own_capabilities",
    "created_at",
    "updated_at",
    "last_message_at",
    "member_count",
    "deleted_at",
    "truncated_at",
    "disabled",
    "hidden",
];

pub fn custom_data(data: &Map<String, Value>) -> Result<Map<String, Value>> {
    let custom: Map<String, Value> = data
        .iter()
        .filter(|(k, _)| !NOT_CUSTOM.contains(&k.as_str()))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    if Value::Object(custom.clone()).to_string().len() > 5 * 1024 {
        return Err(Error::input(
            "channel data is too large: custom fields must stay under 5KB",
        ));
    }
    Ok(custom)
}

/// Parses a member list: ids, or `{user_id, channel_role}` objects.
pub fn parse_members(v: Option<&Value>) -> Result<Vec<(String, String)>> {
    let Some(v) = v else { return Ok(Vec::new()) };
    let list = v
        .as_array()
        .ok_or_else(|| Error::input("members must be a list"))?;
    if list.len() > 100 {
        return Err(Error::input("at most 100 members can be added at once"));
    }
    let mut out: Vec<(String, String)> = Vec::new();
    for item in list {
        let (id, role) = match item {
            Value::String(id) => (id.clone(), "channel_member".to_string()),
            Value::Object(o) => (
                o.get("user_id")
                    .and_then(Value::as_str)
                    .ok_or_else(|| Error::input("member.user_id is required"))?
                    .to_string(),
                o.get("channel_role")
                    .and_then(Value::as_str)
                    .unwrap_or("channel_member")
                    .to_string(),
            ),
            _ => {
                return Err(Error::input(
                    "members must be user ids or {user_id, channel_role}",
                ));
            }
        };
        validate_user_id(&id)?;
        if !["channel_member", "channel_moderator"].contains(&role.as_str()) {
            return Err(Error::input(format!("channel_role {role:?} is not known")));
        }
        if !out.iter().any(|(i, _)| *i == id) {
            out.push((id, role));
        }
    }
    Ok(out)
}

/// The id of a distinct channel: derived from its sorted member list.
fn distinct_id(members: &[(String, String)]) -> String {
    let mut ids: Vec<&str> = members.iter().map(|(id, _)| id.as_str()).collect();
    ids.sort();
    let digest = Sha256::digest(ids.join(",").as_bytes());
    format!("!members-{}", hex::encode(&digest[..16]))
}

/// `POST /channels/{type}/{id}/query` (and `/channels/{type}/query` for distinct channels):
/// gets or creates the channel, optionally watches it, and returns its state.
pub async fn query_channel(
    ctx: &Ctx<'_>,
    actor: &Actor,
    kind: &str,
    id: Option<&str>,
    req: &QueryChannel,
    conn_id: Option<&str>,
) -> Result<Value> {
    let config = config_for(kind)?;
    let empty = Map::new();
    let data = req.data.as_ref().unwrap_or(&empty);
    let members = parse_members(data.get("members"))?;
    let id = match id {
        Some(id) => id.to_string(),
        None if members.len() >= 2 => distinct_id(&members),
        None => {
            return Err(Error::input(
                "a channel without id needs data.members with at least 2 members",
            ));
        }
    };
    validate_channel_id(&id)?;
    let cid = format!("{kind}:{id}");

    let existing = ctx.store.channels.find_channel(&cid).await?;
    if existing.as_ref().is_some_and(|c| c.deleted_at.is_some()) {
        return Err(Error::not_found(format!("channel {cid} was deleted")));
    }
    if existing.is_none() {
        create_channel(ctx, actor, kind, &id, data, &members).await?;
    }
    let loaded = load(ctx, actor, &cid).await?;
    loaded.require_read()?;
    let _ = config;
    if req.watch {
        watch(ctx, actor, conn_id, &cid).await?;
    }
    let states = channel_states(
        ctx,
        actor,
        vec![loaded.channel],
        &StateOptions {
            messages: req.messages.as_ref(),
            member_limit: req.members.as_ref().and_then(|p| p.limit),
            presence_conn: conn_id.filter(|_| req.presence),
        },
    )
    .await?;
    Ok(states.into_iter().next().unwrap_or(Value::Null))
}

async fn create_channel(
    ctx: &Ctx<'_>,
    actor: &Actor,
    kind: &str,
    id: &str,
    data: &Map<String, Value>,
    members: &[(String, String)],
) -> Result<()> {
    let creator = match actor.user_id() {
        Some(uid) if !actor.server => uid.to_string(),
        _ => data
            .get("created_by_id")
            .and_then(Value::as_str)
            .or_else(|| data.get("created_by").and_then(|c| c.get("id")).and_then(Value::as_str))
            .or(actor.user_id())
            .ok_or_else(|| Error::input("either data.created_by or data.created_by_id must be provided when using server side auth"))?
            .to_string(),
    };
    let mut involved: Vec<String> = members.iter().map(|(m, _)| m.clone()).collect();
    involved.push(creator.clone());
    user::require_existing(ctx, &involved).await?;
    require_member_roles(
        ctx,
        actor,
        &config_for(kind)?,
        &format!("{kind}:{id}"),
        &involved,
    )
    .await?;
    let now = now_micros();
    let cid = format!("{kind}:{id}");
    let row = ChannelRow {
        cid: cid.clone(),
        kind: kind.to_string(),
        id: id.to_string(),
        created_by_id: Some(creator.clone()),
        data: custom_data(data)?,
        created_at: now,
        updated_at: now,
        last_message_at: None,
        deleted_at: None,
        truncated_at: None,
        frozen: data.get("frozen").and_then(Value::as_bool).unwrap_or(false),
        message_count: 0,
        member_count: 0,
    };
    let member_rows: Vec<MemberRow> = members
        .iter()
        .map(|(uid, role)| MemberRow {
            cid: cid.clone(),
            user_id: uid.clone(),
            channel_role: role.clone(),
            created_at: now,
            updated_at: now,
        })
        .collect();
    let config = config_for(kind)?;
    let membership = actor
        .user_id()
        .and_then(|me| member_rows.iter().find(|m| m.user_id == me));
    let facts = channel_type::facts(actor, &config, &row, membership);
    ctx.authz.authorize(
        actor.principal(),
        "CreateChannel",
        &Resource::Channel(&facts),
    )?;
    let record = actor
        .audit(crate::audit::EventType::ChannelCreate)
        .object("channel", cid.clone())
        .meta("channel_type", kind)
        .meta("members", member_rows.len());
    let mut records = vec![record];
    records.extend(member_rows.iter().map(|m| {
        actor
            .audit(crate::audit::EventType::MemberAdd)
            .subject(m.user_id.clone())
            .object("channel", cid.clone())
            .meta("channel_type", kind)
            .meta("channel_role", &m.channel_role)
    }));
    let created = ctx
        .audit
        .audited(records, async |records| {
            let channels = &ctx.store.channels;
            channels.insert_channel(&row, &member_rows, &records).await
        })
        .await?;
    if created {
        ctx.bus.invalidate_reads(Some(&cid), None);
        tracing::info!(cid = %cid, "channel created");
        let stored = ctx.store.channels.find_channel(&cid).await?.unwrap_or(row);
        let others: Vec<MemberRow> = member_rows
            .into_iter()
            .filter(|m| m.user_id != creator)
            .collect();
        notify_added_to_channel(ctx, &stored, &config_for(kind)?, &others).await?;
    }
    Ok(())
}

/// Refuses members whose app role the channel type does not accept (`phi`: guests and
/// anonymous users), naming them; the refusal is audited.
pub async fn require_member_roles(
    ctx: &Ctx<'_>,
    actor: &Actor,
    config: &ChannelConfig,
    cid: &str,
    user_ids: &[String],
) -> Result<()> {
    if config.refused_member_roles.is_empty() || user_ids.is_empty() {
        return Ok(());
    }
    let mut refused: Vec<String> = ctx
        .store
        .users
        .find_users(user_ids)
        .await?
        .into_iter()
        .filter(|u| config.refused_member_roles.contains(&u.role.as_str()))
        .map(|u| u.id)
        .collect();
    if refused.is_empty() {
        return Ok(());
    }
    refused.sort();
    for id in &refused {
        let denied = actor
            .audit(crate::audit::EventType::AuthzDenied)
            .outcome(crate::audit::Outcome::Denied)
            .subject(id.clone())
            .object("channel", cid)
            .meta("action", "UpdateChannelMembers")
            .meta("resource_kind", "channel")
            .meta("channel_type", config.name);
        ctx.audit.record(denied).await?;
    }
    Err(Error::not_allowed(format!(
        "channels of type {} do not accept {} as members: {}",
        config.name,
        config.refused_member_roles.join(" or "),
        refused.join(", ")
    )))
}

/// `notification.added_to_channel` to each added member, with the channel as that member
/// sees it (their own capabilities). Their users are loaded once for the batch.
pub async fn notify_added_to_channel(
    ctx: &Ctx<'_>,
    channel: &ChannelRow,
    config: &ChannelConfig,
    members: &[MemberRow],
) -> Result<()> {
    if members.is_empty() {
        return Ok(());
    }
    let ids: Vec<String> = members.iter().map(|m| m.user_id.clone()).collect();
    let users: HashMap<String, crate::store::UserRow> = ctx
        .store
        .users
        .find_users(&ids)
        .await?
        .into_iter()
        .map(|u| (u.id.clone(), u))
        .collect();
    for m in members {
        let Some(u) = users.get(&m.user_id) else {
            continue;
        };
        let mut ev = event::channel_event("notification.added_to_channel", &channel.cid);
        ev["channel"] =
            view::channel_json(ctx, &Actor::user(u.clone()), channel, config, Some(m), None);
        ev["member"] = view::member_json(m, view::user_json(ctx, u));
        ctx.bus.to_user(&m.user_id, &ev).await;
    }
    Ok(())
}

/// Subscribes the actor's connection to a channel and tells the watchers when the user
/// starts watching. Watching is reading: a user who may not read the channel (by the
/// decision deliveries use, whoever asks for them) never becomes a watcher.
pub async fn watch(ctx: &Ctx<'_>, actor: &Actor, conn_id: Option<&str>, cid: &str) -> Result<()> {
    let (Some(conn), Some(user)) = (conn_id, actor.user.as_ref()) else {
        return Ok(());
    };
    if ctx.hub.connection_user(conn).as_deref() != Some(user.id.as_str()) {
        return Err(Error::input(format!(
            "connection_id {conn} is not an open connection of this user"
        )));
    }
    let may_read = match ctx.hub.gate() {
        Some(gate) => gate.may_read(cid, &user.id).await,
        None => false,
    };
    if !may_read {
        use crate::audit::{AuditEvent, EventType, Outcome};
        let denied = AuditEvent::new(EventType::AuthzDenied)
            .outcome(Outcome::Denied)
            .actor(user.id.clone())
            .object("channel", cid)
            .meta("action", "ReadChannel")
            .meta("resource_kind", "channel")
            .meta("channel_type", cid.split_once(':').map_or("", |(t, _)| t))
            .meta("via", if actor.server { "server" } else { "client" });
        ctx.audit.record(denied).await?;
        return Err(Error::not_allowed(format!(
            "ReadChannel is not allowed for this user in channel {cid}"
        )));
    }
    // Channel types without connect events (livestream) announce no watchers: with N
    // joiners that would be N² frames.
    if let Some(change) = ctx.hub.watch(conn, cid)
        && change.user_changed
        && connect_events(cid)
    {
        let ev = event::watching(
            "user.watching.start",
            cid,
            view::user_json(ctx, user),
            change.watcher_count,
        );
        ctx.bus.to_channel(cid, &ev).await;
    }
    Ok(())
}

pub struct StateOptions<'a> {
    pub messages: Option<&'a MessagePagination>,
    pub member_limit: Option<i64>,
    pub presence_conn: Option<&'a str>,
}

/// The default and largest message page of a channel state.
const DEFAULT_MESSAGES: i64 = 25;
const MAX_MESSAGES: i64 = 300;
const MAX_EMBEDDED_MEMBERS: i64 = 100;
/// Watchers embedded in a channel state (the count is always exact).
const MAX_EMBEDDED_WATCHERS: usize = 100;

/// Renders ChannelState objects for several channels, batching the lookups they share.
pub async fn channel_states(
    ctx: &Ctx<'_>,
    actor: &Actor,
    channels: Vec<ChannelRow>,
    opts: &StateOptions<'_>,
) -> Result<Vec<Value>> {
    let cids: Vec<String> = channels.iter().map(|c| c.cid.clone()).collect();
    let members = ctx.store.channels.find_members(&cids).await?;
    let reads = ctx.store.channels.find_reads(&cids).await?;
    let member_limit = opts
        .member_limit
        .unwrap_or(MAX_EMBEDDED_MEMBERS)
        .clamp(0, MAX_EMBEDDED_MEMBERS) as usize;

    let mut per_channel_messages = Vec::with_capacity(channels.len());
    let mut per_channel_pinned = Vec::with_capacity(channels.len());
    for ch in &channels {
        per_channel_messages.push(message_page(ctx, ch, opts.messages).await?);
        per_channel_pinned.push(
            ctx.store
                .messages
                .find_pinned_messages(&ch.cid, ch.truncated_at, 10)
                .await?,
        );
    }
    let watcher_ids: Vec<Vec<String>> = cids.iter().map(|cid| ctx.hub.watcher_ids(cid)).collect();

    let mut ids: HashSet<String> = HashSet::new();
    ids.extend(members.iter().map(|m| m.user_id.clone()));
    ids.extend(reads.iter().map(|r| r.user_id.clone()));
    ids.extend(channels.iter().filter_map(|c| c.created_by_id.clone()));
    ids.extend(
        watcher_ids
            .iter()
            .flat_map(|w| w.iter().take(MAX_EMBEDDED_WATCHERS))
            .cloned(),
    );
    let users = view::users_by_id(ctx, ids).await?;
    let user = |id: &str| {
        users
            .get(id)
            .cloned()
            .unwrap_or_else(|| json!({ "id": id }))
    };

    let viewer = actor.user_id();
    crate::chat::message::record_reads(
        ctx,
        actor,
        "query",
        channels.iter().enumerate().map(|(i, ch)| {
            (
                ch.cid.as_str(),
                per_channel_messages[i].len() + per_channel_pinned[i].len(),
            )
        }),
    )
    .await?;
    let mut out = Vec::with_capacity(channels.len());
    for (i, ch) in channels.iter().enumerate() {
        let ch_members: Vec<&MemberRow> = members.iter().filter(|m| m.cid == ch.cid).collect();
        let membership = viewer.and_then(|v| ch_members.iter().find(|m| m.user_id == v).copied());
        let loaded = with_access(ctx, actor, ch.clone(), membership.cloned())?;
        let messages = view::render_messages(ctx, &per_channel_messages[i], viewer).await?;
        let pinned = view::render_messages(ctx, &per_channel_pinned[i], viewer).await?;
        if let Some(conn) = opts.presence_conn {
            let ids: Vec<String> = ch_members.iter().map(|m| m.user_id.clone()).collect();
            ctx.hub.subscribe_presence(conn, &ids);
        }
        out.push(json!({
            "channel": view::channel_json(ctx, actor, ch, &loaded.config, membership, ch.created_by_id.as_deref().map(user)),
            "messages": messages,
            "pinned_messages": pinned,
            "members": ch_members.iter().take(member_limit).map(|m| view::member_json(m, user(&m.user_id))).collect::<Vec<_>>(),
            "membership": membership.map(|m| view::member_json(m, user(&m.user_id))),
            "read": reads.iter().filter(|r| r.cid == ch.cid).map(|r| view::read_json(r, user(&r.user_id))).collect::<Vec<_>>(),
            "watchers": watcher_ids[i].iter().take(MAX_EMBEDDED_WATCHERS).map(|id| user(id)).collect::<Vec<_>>(),
            "watcher_count": watcher_ids[i].len(),
            "threads": [],
            "hidden": false,
        }));
    }
    Ok(out)
}

async fn cursor_at(ctx: &Ctx<'_>, id: &str) -> Result<MessageRow> {
    ctx.store
        .messages
        .find_message(id)
        .await?
        .ok_or_else(|| Error::input(format!("message {id} used for pagination does not exist")))
}

fn time_param(text: &str) -> Result<i64> {
    parse_rfc3339(text).ok_or_else(|| Error::input(format!("{text:?} is not an RFC 3339 time")))
}

/// The message page a pagination object asks for.
pub async fn message_page(
    ctx: &Ctx<'_>,
    ch: &ChannelRow,
    p: Option<&MessagePagination>,
) -> Result<Vec<MessageRow>> {
    let default = MessagePagination::default();
    let p = p.unwrap_or(&default);
    let limit = p.limit.unwrap_or(DEFAULT_MESSAGES);
    if !(0..=MAX_MESSAGES).contains(&limit) {
        return Err(Error::input(format!(
            "messages.limit must be between 0 and {MAX_MESSAGES}"
        )));
    }
    if limit == 0 {
        return Ok(Vec::new());
    }
    const MAX_ID: &str = "\u{10FFFF}";
    let cursor = if let Some(id) = &p.id_lt {
        let m = cursor_at(ctx, id).await?;
        Cursor::Before {
            at: m.created_at,
            id: m.id,
            inclusive: false,
        }
    } else if let Some(id) = &p.id_lte {
        let m = cursor_at(ctx, id).await?;
        Cursor::Before {
            at: m.created_at,
            id: m.id,
            inclusive: true,
        }
    } else if let Some(id) = &p.id_gt {
        let m = cursor_at(ctx, id).await?;
        Cursor::After {
            at: m.created_at,
            id: m.id,
            inclusive: false,
        }
    } else if let Some(id) = &p.id_gte {
        let m = cursor_at(ctx, id).await?;
        Cursor::After {
            at: m.created_at,
            id: m.id,
            inclusive: true,
        }
    } else if let Some(id) = &p.id_around {
        let m = cursor_at(ctx, id).await?;
        let msgs = &ctx.store.messages;
        let mut before = msgs
            .find_channel_messages(
                &ch.cid,
                ch.truncated_at,
                &Cursor::Before {
                    at: m.created_at,
                    id: m.id.clone(),
                    inclusive: true,
                },
                limit / 2 + 1,
            )
            .await?;
        let after = msgs
            .find_channel_messages(
                &ch.cid,
                ch.truncated_at,
                &Cursor::After {
                    at: m.created_at,
                    id: m.id,
                    inclusive: false,
                },
                limit - limit / 2 - 1,
            )
            .await?;
        before.extend(after);
        return Ok(before);
    } else if let Some(t) = &p.created_at_before {
        Cursor::Before {
            at: time_param(t)?,
            id: String::new(),
            inclusive: false,
        }
    } else if let Some(t) = &p.created_at_before_or_equal {
        Cursor::Before {
            at: time_param(t)?,
            id: MAX_ID.into(),
            inclusive: true,
        }
    } else if let Some(t) = &p.created_at_after {
        Cursor::After {
            at: time_param(t)?,
            id: MAX_ID.into(),
            inclusive: false,
        }
    } else if let Some(t) = &p.created_at_after_or_equal {
        Cursor::After {
            at: time_param(t)?,
            id: String::new(),
            inclusive: true,
        }
    } else {
        Cursor::Latest
    };
    Ok(ctx
        .store
        .messages
        .find_channel_messages(&ch.cid, ch.truncated_at, &cursor, limit)
        .await?)
}

#[derive(Debug, Default, Deserialize)]
pub struct QueryChannels {
    #[serde(default)]
    pub filter_conditions: Value,
    #[serde(default)]
    pub sort: Value,
    pub limit: Option<i64>,
    pub offset: Option<i64>,
    pub message_limit: Option<i64>,
    pub member_limit: Option<i64>,
    #[serde(default)]
    pub watch: bool,
    #[serde(default)]
    pub presence: bool,
}

/// Most channels one query considers before filtering in memory.
const CHANNEL_SCAN_CAP: i64 = 10_000;

/// The JSON a channel filter is evaluated against: columns, members and custom fields.
fn filter_doc(ch: &ChannelRow, member_ids: Vec<String>) -> Value {
    let mut doc = ch.data.clone();
    doc.insert("cid".into(), ch.cid.clone().into());
    doc.insert("id".into(), ch.id.clone().into());
    doc.insert("type".into(), ch.kind.clone().into());
    doc.insert("created_by_id".into(), ch.created_by_id.clone().into());
    doc.insert("frozen".into(), ch.frozen.into());
    doc.insert("member_count".into(), ch.member_count.into());
    doc.insert("created_at".into(), rfc3339(ch.created_at).into());
    doc.insert("updated_at".into(), rfc3339(ch.updated_at).into());
    if let Some(t) = ch.last_message_at {
        doc.insert("last_message_at".into(), rfc3339(t).into());
    }
    let last_updated = ch
        .last_message_at
        .unwrap_or(ch.created_at)
        .max(ch.updated_at);
    doc.insert("last_updated".into(), rfc3339(last_updated).into());
    doc.insert("members".into(), member_ids.into());
    Value::Object(doc)
}

/// The channels the actor may read that match `filter`, each with the document the filter
/// was evaluated on. `members_only` leaves out public channels the actor has not joined.
async fn matching_channels(
    ctx: &Ctx<'_>,
    actor: &Actor,
    filter: &filter::Filter,
    members_only: bool,
) -> Result<Vec<(Value, Loaded)>> {
    if let Some(types) = filter.required_values("type") {
        for t in &types {
            validate_channel_type(t)?;
        }
    }
    let public_types: Vec<String> = channel_type::ALL
        .iter()
        .filter(|c| c.public && !members_only)
        .map(|c| c.name.to_string())
        .collect();
    let all_types: Vec<String> = channel_type::ALL
        .iter()
        .map(|c| c.name.to_string())
        .collect();
    let mut candidates: Vec<ChannelRow> = if let Some(cids) = filter.required_values("cid") {
        ctx.store.channels.find_channels(&cids).await?
    } else if actor.is_admin() {
        let types = filter.required_values("type").unwrap_or(all_types);
        ctx.store
            .channels
            .find_channels_of_types(&types, CHANNEL_SCAN_CAP)
            .await?
    } else {
        let mut mine = match actor.user_id() {
            Some(uid) => ctx.store.channels.find_channels_for_member(uid).await?,
            None => Vec::new(),
        };
        let public: Vec<String> = match filter.required_values("type") {
            Some(types) => types
                .into_iter()
                .filter(|t| public_types.contains(t))
                .collect(),
            None => public_types,
        };
        let seen: HashSet<String> = mine.iter().map(|c| c.cid.clone()).collect();
        mine.extend(
            ctx.store
                .channels
                .find_channels_of_types(&public, CHANNEL_SCAN_CAP)
                .await?
                .into_iter()
                .filter(|c| !seen.contains(&c.cid)),
        );
        mine
    };
    candidates.retain(|c| c.deleted_at.is_none());

    let cids: Vec<String> = candidates.iter().map(|c| c.cid.clone()).collect();
    let mut members_by_cid: HashMap<String, Vec<MemberRow>> = HashMap::new();
    for m in ctx.store.channels.find_members(&cids).await? {
        members_by_cid.entry(m.cid.clone()).or_default().push(m);
    }
    Ok(candidates
        .into_iter()
        .filter_map(|ch| {
            let members = members_by_cid.get(&ch.cid).cloned().unwrap_or_default();
            let membership = actor
                .user_id()
                .and_then(|v| members.iter().find(|m| m.user_id == v).cloned());
            if members_only && membership.is_none() && !actor.is_admin() {
                return None;
            }
            let loaded = with_access(ctx, actor, ch, membership).ok()?;
            if !loaded.allows("ReadChannel") {
                return None;
            }
            let doc = filter_doc(
                &loaded.channel,
                members.iter().map(|m| m.user_id.clone()).collect(),
            );
            filter.matches(&doc).then_some((doc, loaded))
        })
        .collect())
}

/// The channels the actor may read that match `filter` (see [`matching_channels`]).
pub async fn readable_channels(
    ctx: &Ctx<'_>,
    actor: &Actor,
    filter: &filter::Filter,
    members_only: bool,
) -> Result<Vec<Loaded>> {
    Ok(matching_channels(ctx, actor, filter, members_only)
        .await?
        .into_iter()
        .map(|(_, l)| l)
        .collect())
}

/// `POST /channels`: the channels the actor may read that match the filter, sorted and
/// paginated, optionally watched. Reconnecting SDKs recover their watches through it.
pub async fn query_channels(
    ctx: &Ctx<'_>,
    actor: &Actor,
    q: &QueryChannels,
    conn_id: Option<&str>,
) -> Result<Value> {
    actor.authorize_app(ctx, "QueryChannels")?;
    let filter = filter::parse(&q.filter_conditions)?;
    let mut sort = filter::parse_sort(&q.sort)?;
    if sort.is_empty() {
        sort.push(filter::SortKey {
            field: "last_updated".into(),
            descending: true,
        });
    }
    sort.push(filter::SortKey {
        field: "cid".into(),
        descending: false,
    });
    let limit = q.limit.unwrap_or(10);
    let offset = q.offset.unwrap_or(0);
    if !(0..=30).contains(&limit) || !(0..=10_000).contains(&offset) {
        return Err(Error::input("limit must be 0–30 and offset 0–10000"));
    }
    let mut matched = matching_channels(ctx, actor, &filter, false).await?;
    matched.sort_by(|a, b| filter::compare_docs(&a.0, &b.0, &sort));
    let page: Vec<ChannelRow> = matched
        .into_iter()
        .skip(offset as usize)
        .take(limit as usize)
        .map(|(_, l)| l.channel)
        .collect();

    if q.watch {
        for ch in &page {
            watch(ctx, actor, conn_id, &ch.cid).await?;
        }
    }
    let messages = MessagePagination {
        limit: q.message_limit,
        ..Default::default()
    };
    let states = channel_states(
        ctx,
        actor,
        page,
        &StateOptions {
            messages: Some(&messages),
            member_limit: q.member_limit,
            presence_conn: conn_id.filter(|_| q.presence),
        },
    )
    .await?;
    Ok(json!({ "channels": states }))
}
