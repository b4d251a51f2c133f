//! Changing channels: full and partial updates, member changes, truncation, deletion, and
//! stopping a watch.

use std::collections::HashSet;

use serde::Deserialize;
use serde_json::{Map, Value, json};

use crate::audit::EventType;
use crate::chat::Ctx;
use crate::chat::channel::{self, Loaded, custom_data, parse_members};
use crate::chat::{Actor, event, invite, message, slow_mode, user, view};
use crate::chat::{Error, Result};
use crate::store::{ChannelRow, MemberRow};
use crate::time::{now_micros, parse_rfc3339};

#[derive(Debug, Default, Deserialize)]
pub struct UpdateChannel {
    pub data: Option<Map<String, Value>>,
    pub add_members: Option<Value>,
    pub remove_members: Option<Vec<String>>,
    pub add_moderators: Option<Vec<String>>,
    pub demote_moderators: Option<Vec<String>>,
    pub assign_roles: Option<Value>,
    pub message: Option<Map<String, Value>>,
    pub user_id: Option<String>,
    /// Invites and their answers (`chat::invite`).
    pub invites: Option<Value>,
    #[serde(default)]
    pub accept_invite: bool,
    #[serde(default)]
    pub reject_invite: bool,
    /// Slow mode (`chat::slow_mode`): seconds, 0 turns it off.
    pub cooldown: Option<Value>,
    #[serde(default)]
    pub hide_history: bool,
}

async fn members_json(ctx: &Ctx<'_>, cid: &str) -> Result<Vec<Value>> {
    let members = ctx.store.channels.find_members(&[cid.to_string()]).await?;
    let users = view::users_by_id(ctx, members.iter().map(|m| m.user_id.clone()).collect()).await?;
    Ok(members
        .iter()
        .map(|m| view::member_json(m, users[&m.user_id].clone()))
        .collect())
}

async fn channel_json(ctx: &Ctx<'_>, actor: &Actor, cid: &str) -> Result<Value> {
    let loaded = channel::load(ctx, actor, cid).await?;
    let created_by = match &loaded.channel.created_by_id {
        Some(id) => ctx
            .store
            .users
            .find_user(id)
            .await?
            .map(|u| view::user_json(ctx, &u)),
        None => None,
    };
    Ok(view::channel_json(
        ctx,
        actor,
        &loaded.channel,
        &loaded.config,
        loaded.membership.as_ref(),
        created_by,
    ))
}

async fn announce_channel_updated(ctx: &Ctx<'_>, actor: &Actor, cid: &str, channel: &Value) {
    let mut ev = event::channel_event("channel.updated", cid);
    let mut ch = channel.clone();
    // own_capabilities are per viewer; the SDK keeps its own when the field is absent.
    if let Some(obj) = ch.as_object_mut() {
        obj.remove("own_capabilities");
    }
    ev["channel"] = ch;
    if let Some(u) = &actor.user {
        ev["user"] = view::user_json(ctx, u);
    }
    ctx.bus.to_channel(cid, &ev).await;
}

/// Posts the message that accompanies a channel change (update, truncate), if any, into
/// the reply.
async fn post_accompanying_message(
    ctx: &Ctx<'_>,
    actor: &Actor,
    cid: &str,
    message: Option<&Map<String, Value>>,
    reply: &mut Value,
) -> Result<()> {
    if let Some(msg) = message {
        let body = message::SendMessage {
            message: msg.clone(),
            ..Default::default()
        };
        reply["message"] = message::send_message(ctx, actor, cid, &body).await?["message"].take();
    }
    Ok(())
}

/// `POST /channels/{type}/{id}`: replaces custom data and/or changes members and roles,
/// optionally posting a message with the change.
pub async fn update_channel(
    ctx: &Ctx<'_>,
    actor: &Actor,
    cid: &str,
    body: &UpdateChannel,
) -> Result<Value> {
    if body.hide_history {
        return Err(Error::input(
            "hide_history is not supported: new members see the channel's history",
        ));
    }
    if body.accept_invite && body.reject_invite {
        return Err(Error::input(
            "accept_invite and reject_invite cannot both be set",
        ));
    }
    let loaded = if body.accept_invite || body.reject_invite {
        let loaded = invite::respond(ctx, actor, cid, body.accept_invite).await?;
        if body.reject_invite {
            // The invitee who declined may not read: the channel only, no members.
            let ch = &loaded.channel;
            return Ok(json!({
                "channel": {"cid": ch.cid, "id": ch.id, "type": ch.kind},
                "members": [],
            }));
        }
        loaded
    } else {
        channel::load(ctx, actor, cid).await?
    };
    loaded.require_read()?;
    let now = now_micros();

    if body.data.is_some() || body.cooldown.is_some() {
        let mut ch = loaded.channel.clone();
        if let Some(data) = &body.data {
            loaded.require("UpdateChannel")?;
            ch.data = custom_data(data)?;
            // The cooldown is a setting of the channel, not custom data a client resends.
            // A client resending the channel's data resends its cooldown unchanged: only a
            // change needs the right to set it.
            let kept = loaded.channel.data.get("cooldown");
            match data.get("cooldown") {
                Some(v) if Some(v) != kept => slow_mode::apply_cooldown(&loaded, &mut ch.data, v)?,
                _ => {
                    ch.data.remove("cooldown");
                    if let Some(kept) = kept {
                        ch.data.insert("cooldown".into(), kept.clone());
                    }
                }
            }
            if let Some(frozen) = data.get("frozen").and_then(Value::as_bool) {
                ch.frozen = frozen;
            }
        }
        if let Some(v) = &body.cooldown {
            slow_mode::apply_cooldown(&loaded, &mut ch.data, v)?;
        }
        ch.updated_at = now;
        save_channel(ctx, actor, &ch).await?;
        let rendered = channel_json(ctx, actor, cid).await?;
        announce_channel_updated(ctx, actor, cid, &rendered).await;
    }
    if body.add_members.is_some() {
        loaded.require("UpdateChannelMembers")?;
        add_members(ctx, &loaded, &parse_members(body.add_members.as_ref())?).await?;
    }
    if let Some(invites) = &body.invites {
        invite::invite_members(ctx, &loaded, invites).await?;
    }
    if let Some(ids) = &body.remove_members {
        let only_self = actor
            .user_id()
            .is_some_and(|me| ids.iter().all(|id| id == me));
        loaded.require(if only_self {
            "LeaveChannel"
        } else {
            "UpdateChannelMembers"
        })?;
        remove_members(ctx, &loaded, ids).await?;
    }
    let mut role_changes: Vec<(String, String)> = Vec::new();
    for id in body.add_moderators.iter().flatten() {
        role_changes.push((id.clone(), "channel_moderator".into()));
    }
    for id in body.demote_moderators.iter().flatten() {
        role_changes.push((id.clone(), "channel_member".into()));
    }
    role_changes.extend(parse_members(body.assign_roles.as_ref())?);
    if !role_changes.is_empty() {
        loaded.require("UpdateChannelMembers")?;
        for (uid, role) in role_changes {
            let record = actor
                .audit(EventType::MemberRole)
                .subject(uid.clone())
                .object("channel", cid)
                .meta("channel_type", &loaded.channel.kind)
                .meta("channel_role", &role);
            let changed = ctx
                .audit
                .audited([record], async |records| {
                    let channels = &ctx.store.channels;
                    channels
                        .update_member_role(cid, &uid, &role, now, &records)
                        .await
                })
                .await?;
            if changed {
                ctx.bus.invalidate_reads(Some(cid), Some(&uid));
                let m = crate::chat::member::member_of(ctx, cid, &uid).await?;
                let u = ctx.store.users.find_user(&uid).await?;
                let mut ev = event::channel_event("member.updated", cid);
                ev["member"] = view::member_json(
                    &m,
                    u.map(|u| view::user_json(ctx, &u))
                        .unwrap_or(json!({"id": uid})),
                );
                ctx.bus.to_channel(cid, &ev).await;
            } else {
                return Err(Error::input(format!("user {uid} is not a member of {cid}")));
            }
        }
    }
    let mut reply = json!({
        "channel": channel_json(ctx, actor, cid).await?,
        "members": members_json(ctx, cid).await?,
    });
    post_accompanying_message(ctx, actor, cid, body.message.as_ref(), &mut reply).await?;
    Ok(reply)
}

async fn add_members(ctx: &Ctx<'_>, loaded: &Loaded, members: &[(String, String)]) -> Result<()> {
    let cid = &loaded.channel.cid;
    let ids: Vec<String> = members.iter().map(|(id, _)| id.clone()).collect();
    user::require_existing(ctx, &ids).await?;
    channel::require_member_roles(ctx, loaded.actor(), &loaded.config, cid, &ids).await?;
    let now = now_micros();
    let rows: Vec<MemberRow> = members
        .iter()
        .map(|(id, role)| MemberRow {
            cid: cid.clone(),
            user_id: id.clone(),
            channel_role: role.clone(),
            created_at: now,
            updated_at: now,
            ..Default::default()
        })
        .collect();
    let added = ctx
        .audit
        .audited_each(async |stage| {
            let audit = |m: &MemberRow| {
                let record = loaded
                    .actor()
                    .audit(EventType::MemberAdd)
                    .subject(m.user_id.clone())
                    .object("channel", cid.clone())
                    .meta("channel_type", &loaded.channel.kind)
                    .meta("channel_role", &m.channel_role);
                Some(stage.stage(record))
            };
            ctx.store.channels.add_members(cid, &rows, &audit).await
        })
        .await?;
    ctx.bus.invalidate_reads(Some(cid), None);
    if added.is_empty() {
        return Ok(());
    }
    let users = view::users_by_id(
        ctx,
        added
            .iter()
            .map(|m| m.user_id.clone())
            .collect::<HashSet<_>>(),
    )
    .await?;
    let channel = ctx
        .store
        .channels
        .find_channel(cid)
        .await?
        .unwrap_or_else(|| loaded.channel.clone());
    for m in &added {
        let mut ev = event::channel_event("member.added", cid);
        ev["member"] = view::member_json(m, users[&m.user_id].clone());
        ev["user"] = users[&m.user_id].clone();
        ev["channel_member_count"] = channel.member_count.into();
        ctx.bus.to_channel(cid, &ev).await;
    }
    channel::notify_added_to_channel(ctx, &channel, &loaded.config, &added).await?;
    Ok(())
}

async fn remove_members(ctx: &Ctx<'_>, loaded: &Loaded, ids: &[String]) -> Result<()> {
    let cid = &loaded.channel.cid;
    if ids.len() > 100 {
        return Err(Error::input("at most 100 members can be removed at once"));
    }
    let removed = ctx
        .audit
        .audited_each(async |stage| {
            let audit = |id: &str| {
                let record = loaded
                    .actor()
                    .audit(EventType::MemberRemove)
                    .subject(id)
                    .object("channel", cid.clone())
                    .meta("channel_type", &loaded.channel.kind);
                Some(stage.stage(record))
            };
            ctx.store.channels.remove_members(cid, ids, &audit).await
        })
        .await?;
    ctx.bus.invalidate_reads(Some(cid), None);
    let users = view::users_by_id(ctx, removed.iter().cloned().collect()).await?;
    for id in &removed {
        // member.removed is keyed by the top-level user (protocol brief §0.11).
        let mut ev = event::channel_event("member.removed", cid);
        ev["user"] = users[id].clone();
        ev["member"] = json!({"user_id": id, "user": users[id]});
        ctx.bus.to_channel(cid, &ev).await;
        if !loaded.config.public {
            ctx.bus.unwatch_user(cid, id);
        }
        let mut note = event::channel_event("notification.removed_from_channel", cid);
        note["user"] = users[id].clone();
        note["channel"] = json!({"cid": cid, "id": loaded.channel.id, "type": loaded.channel.kind});
        ctx.bus.to_user(id, &note).await;
    }
    Ok(())
}

#[derive(Debug, Default, Deserialize)]
pub struct PartialUpdateChannel {
    #[serde(default)]
    pub set: Map<String, Value>,
    #[serde(default)]
    pub unset: Vec<String>,
}

/// `PATCH /channels/{type}/{id}`: sets and unsets custom fields (and `frozen`).
pub async fn partial_update_channel(
    ctx: &Ctx<'_>,
    actor: &Actor,
    cid: &str,
    body: &PartialUpdateChannel,
) -> Result<Value> {
    let loaded = channel::load(ctx, actor, cid).await?;
    loaded.require("UpdateChannel")?;
    let mut ch: ChannelRow = loaded.channel.clone();
    for (k, v) in custom_data(&body.set)? {
        if k == "cooldown" {
            slow_mode::apply_cooldown(&loaded, &mut ch.data, &v)?;
        } else {
            ch.data.insert(k, v);
        }
    }
    if let Some(frozen) = body.set.get("frozen").and_then(Value::as_bool) {
        ch.frozen = frozen;
    }
    for k in &body.unset {
        if k == "cooldown" {
            slow_mode::apply_cooldown(&loaded, &mut ch.data, &Value::from(0))?;
        } else {
            ch.data.remove(k);
        }
    }
    custom_data(&ch.data)?;
    ch.updated_at = now_micros();
    save_channel(ctx, actor, &ch).await?;
    let rendered = channel_json(ctx, actor, cid).await?;
    announce_channel_updated(ctx, actor, cid, &rendered).await;
    Ok(json!({ "channel": rendered, "members": members_json(ctx, cid).await? }))
}

/// `DELETE /channels/{type}/{id}`: soft delete by default (kept for retention, hidden from
/// every query); `hard_delete` removes the rows.
pub async fn delete_channel(ctx: &Ctx<'_>, actor: &Actor, cid: &str, hard: bool) -> Result<Value> {
    let loaded = channel::load(ctx, actor, cid).await?;
    loaded.require("DeleteChannel")?;
    let rendered = view::channel_json(
        ctx,
        actor,
        &loaded.channel,
        &loaded.config,
        loaded.membership.as_ref(),
        None,
    );
    let members = ctx.store.channels.find_members(&[cid.to_string()]).await?;
    let record = actor
        .audit(EventType::ChannelDelete)
        .object("channel", cid)
        .meta("channel_type", &loaded.channel.kind)
        .meta("hard", hard);
    let mut ch = loaded.channel.clone();
    let now = now_micros();
    ch.deleted_at = Some(now);
    ch.updated_at = now;
    ctx.audit
        .audited([record], async |records| {
            let channels = &ctx.store.channels;
            if hard {
                channels.delete_channel(cid, &records).await
            } else {
                channels.update_channel(&ch, &records).await
            }
        })
        .await?;
    let mut ev = event::channel_event("channel.deleted", cid);
    ev["channel"] = rendered.clone();
    ctx.bus.to_channel(cid, &ev).await;
    let mut note = event::channel_event("notification.channel_deleted", cid);
    note["channel"] = rendered.clone();
    let member_ids: Vec<&str> = members.iter().map(|m| m.user_id.as_str()).collect();
    ctx.bus.to_users(member_ids, &note).await;
    ctx.bus.forget_channel(cid);
    ctx.bus.invalidate_reads(Some(cid), None);
    Ok(json!({ "channel": rendered }))
}

#[derive(Debug, Default, Deserialize)]
pub struct TruncateChannel {
    #[serde(default)]
    pub hard_delete: bool,
    pub truncated_at: Option<String>,
    pub message: Option<Map<String, Value>>,
    pub user_id: Option<String>,
}

/// `POST /channels/{type}/{id}/truncate`: hides (or with `hard_delete`, removes) the
/// messages up to now or `truncated_at`.
pub async fn truncate_channel(
    ctx: &Ctx<'_>,
    actor: &Actor,
    cid: &str,
    body: &TruncateChannel,
) -> Result<Value> {
    let loaded = channel::load(ctx, actor, cid).await?;
    loaded.require("TruncateChannel")?;
    let at = match &body.truncated_at {
        Some(t) => parse_rfc3339(t).ok_or_else(|| Error::input("truncated_at must be RFC 3339"))?,
        None => now_micros(),
    };
    let record = actor
        .audit(EventType::ChannelTruncate)
        .object("channel", cid)
        .meta("channel_type", &loaded.channel.kind)
        .meta("hard", body.hard_delete);
    ctx.audit
        .audited([record], async |records| {
            let channels = &ctx.store.channels;
            channels
                .truncate_channel(cid, at, body.hard_delete, &records)
                .await
        })
        .await?;
    let rendered = channel_json(ctx, actor, cid).await?;
    let mut ev = event::channel_event("channel.truncated", cid);
    ev["channel"] = rendered.clone();
    ctx.bus.to_channel(cid, &ev).await;
    let mut reply = json!({ "channel": rendered });
    post_accompanying_message(ctx, actor, cid, body.message.as_ref(), &mut reply).await?;
    Ok(reply)
}

/// `POST /channels/{type}/{id}/stop-watching`.
pub async fn stop_watching(
    ctx: &Ctx<'_>,
    actor: &Actor,
    cid: &str,
    conn_id: Option<&str>,
) -> Result<Value> {
    crate::chat::parse_cid(cid)?;
    actor.authorize_app(ctx, "QueryChannels")?;
    let (Some(conn), Some(user)) = (conn_id, actor.user.as_ref()) else {
        return Err(Error::input(
            "stop-watching needs the connection_id of an open connection",
        ));
    };
    if ctx.bus.connection_user(conn).as_deref() != Some(user.id.as_str()) {
        return Err(Error::input(format!(
            "connection_id {conn} is not an open connection of this user"
        )));
    }
    if let Some(change) = ctx.bus.unwatch(conn, cid)
        && change.user_changed
        && channel::connect_events(cid)
    {
        let ev = event::watching(
            "user.watching.stop",
            cid,
            view::user_json(ctx, user),
            change.watcher_count,
        );
        ctx.bus.to_channel(cid, &ev).await;
    }
    Ok(json!({}))
}

/// Stores a changed channel row with its record, then drops the cached read decisions on
/// the channel (its type or frozen state may have changed).
async fn save_channel(ctx: &Ctx<'_>, actor: &Actor, ch: &ChannelRow) -> Result<()> {
    let record = actor
        .audit(EventType::ChannelUpdate)
        .object("channel", ch.cid.clone())
        .meta("channel_type", &ch.kind);
    ctx.audit
        .audited([record], async |records| {
            ctx.store.channels.update_channel(ch, &records).await
        })
        .await?;
    ctx.bus.invalidate_reads(Some(&ch.cid), None);
    Ok(())
}
