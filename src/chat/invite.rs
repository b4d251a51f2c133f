//! Invites (`POST /channels/{type}/{id}` with `invites`, `accept_invite`, `reject_invite`).
//!
//! An invited user gets a member row marked `invited`; until they accept it they are not a
//! member for any decision (they may not read or write: `channel_type::facts`), so what the
//! channel holds stays with its members. The invitee may answer without being able to read
//! (`RespondToInvite`), and is told of the invite and of a rejection by events that name
//! the channel only (`cid`, `id`, `type`), never its content.

use std::collections::HashSet;

use serde_json::{Value, json};

use crate::audit::EventType;
use crate::chat::channel::{self, Loaded, parse_members};
use crate::chat::member::{announce_member_updated, member_of, render_member, save_state};
use crate::chat::{Actor, Ctx, Error, Result, event, user, view};
use crate::store::{MemberRow, MemberState, ReadRow};
use crate::time::now_micros;

/// The channel named by an invite event: no content, only what identifies it.
fn bare_channel(loaded: &Loaded) -> Value {
    json!({
        "cid": loaded.channel.cid,
        "id": loaded.channel.id,
        "type": loaded.channel.kind,
        "member_count": loaded.channel.member_count,
    })
}

/// Invites users (not yet members): `member.added` (with `invited: true`) to the channel
/// and `notification.invited` to each invitee.
pub async fn invite_members(ctx: &Ctx<'_>, loaded: &Loaded, invites: &Value) -> Result<()> {
    loaded.require("UpdateChannelMembers")?;
    let invites = parse_members(Some(invites))?;
    let cid = &loaded.channel.cid;
    let ids: Vec<String> = invites.iter().map(|(id, _)| id.clone()).collect();
    user::require_existing(ctx, &ids).await?;
    channel::require_member_roles(ctx, loaded.actor(), &loaded.config, cid, &ids).await?;
    let now = now_micros();
    let rows: Vec<MemberRow> = invites
        .iter()
        .map(|(id, role)| MemberRow {
            cid: cid.clone(),
            user_id: id.clone(),
            channel_role: role.clone(),
            created_at: now,
            updated_at: now,
            invited: true,
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
                    .meta("channel_role", &m.channel_role)
                    .meta("invited", true);
                Some(stage.stage(record))
            };
            ctx.store.channels.add_members(cid, &rows, &audit).await
        })
        .await?;
    ctx.bus.invalidate_reads(Some(cid), None);
    let users = view::users_by_id(
        ctx,
        added
            .iter()
            .map(|m| m.user_id.clone())
            .collect::<HashSet<_>>(),
    )
    .await?;
    let inviter = loaded
        .actor()
        .user
        .as_ref()
        .map(|u| view::user_json(ctx, u));
    for m in &added {
        let member = view::member_json(m, users[&m.user_id].clone());
        let mut ev = event::channel_event("member.added", cid);
        ev["member"] = member.clone();
        ev["user"] = users[&m.user_id].clone();
        ctx.bus.to_channel(cid, &ev).await;
        let mut note = event::channel_event("notification.invited", cid);
        note["channel"] = bare_channel(loaded);
        note["member"] = member;
        if let Some(by) = &inviter {
            note["user"] = by.clone();
        }
        ctx.bus.to_user(&m.user_id, &note).await;
    }
    Ok(())
}

/// Accepts (`accept`) or rejects the actor's pending invite: `member.updated` to the
/// channel and the invitee, and `notification.invite_accepted` / `…_rejected` to them.
/// Returns the channel loaded again (after accepting, the actor is a member).
pub async fn respond(ctx: &Ctx<'_>, actor: &Actor, cid: &str, accept: bool) -> Result<Loaded> {
    let loaded = channel::load(ctx, actor, cid).await?;
    loaded.require("RespondToInvite")?;
    let me = actor
        .user_id()
        .ok_or_else(|| Error::input("answering an invite needs a user"))?;
    let m = member_of(ctx, cid, me)
        .await
        .map_err(|_| Error::input(format!("user {me} has no invite to {cid}")))?;
    if !m.invited || m.invite_accepted_at.is_some() {
        return Err(Error::input(format!(
            "user {me} has no pending invite to {cid}"
        )));
    }
    let now = now_micros();
    let state = MemberState {
        invite_accepted_at: accept.then_some(now),
        invite_rejected_at: if accept { None } else { Some(now) },
        pinned_at: m.pinned_at,
        archived_at: m.archived_at,
        hidden: m.hidden,
        notifications_muted: m.notifications_muted,
    };
    let what = if accept {
        "invite_accepted"
    } else {
        "invite_rejected"
    };
    let saved = save_state(ctx, actor, &loaded, &m, &state, what).await?;
    if accept {
        let read = ReadRow {
            cid: cid.to_string(),
            user_id: me.to_string(),
            last_read: now,
            last_read_message_id: None,
            unread_messages: 0,
            last_delivered_at: None,
            last_delivered_message_id: None,
        };
        ctx.store.channels.upsert_read(&read).await?;
    }
    let member = render_member(ctx, &saved).await?;
    announce_member_updated(ctx, cid, &member).await;
    let kind = if accept {
        "notification.invite_accepted"
    } else {
        "notification.invite_rejected"
    };
    let mut note = event::channel_event(kind, cid);
    note["channel"] = bare_channel(&loaded);
    note["member"] = member.clone();
    note["user"] = member["user"].clone();
    ctx.bus.to_user(me, &note).await;
    channel::load(ctx, actor, cid).await
}
