//! Channels: get-or-create with state (`/query`), querying many (`POST /channels`), and the
//! ChannelState shape both return. Updates, members and deletion are in `channel_update`.

mod query;
mod state;

pub use query::{QueryChannels, query_channels, readable_channels};
pub use state::{MessagePagination, Pagination, StateOptions, channel_states, message_page};

use std::collections::HashMap;

use serde::Deserialize;
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

use std::sync::Arc;

use crate::authz::{Authz, ChannelFacts, Resource};
use crate::chat::channel_type::{self, ChannelConfig};
use crate::chat::{
    Actor, event, user, validate_channel_id, validate_channel_type, validate_user_id, view,
};
use crate::chat::{Ctx, Error, Result};
use crate::store::{ChannelRow, MemberRow};
use crate::time::now_micros;

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

    /// Permits `action` here or refuses it with a denial naming it (and records it).
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

/// Loads a live channel and the actor's membership. Missing or deleted: [`Error::NotFound`].
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
pub(crate) fn distinct_id(members: &[(String, String)]) -> String {
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
            ..Default::default()
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
    if actor.is_anonymous() {
        return super::guest::watch_anonymous(ctx, conn_id, cid).await;
    }
    let (Some(conn), Some(user)) = (conn_id, actor.user.as_ref()) else {
        return Ok(());
    };
    if ctx.bus.connection_user(conn).as_deref() != Some(user.id.as_str()) {
        return Err(Error::input(format!(
            "connection_id {conn} is not an open connection of this user"
        )));
    }
    let may_read = ctx.bus.may_read(cid, &user.id).await;
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
    if let Some(change) = ctx.bus.watch(conn, cid)
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
