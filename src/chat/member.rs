//! A member's own state in a channel: pin, archive, notifications muted (partial update of
//! the membership, `PATCH /channels/{type}/{id}/member[/{user_id}]`), and hide/show
//! (`POST …/hide`, `…/show`). Member queries are in `member_query`.
//!
//! The state is the member's own: a user changes only their own membership, moderators and
//! admins (`UpdateChannelMembers`) anyone's. Every change is recorded and announced with
//! `member.updated` (to the channel's watchers and the member's own connections, so the
//! channel list re-sorts on every node).

use serde::Deserialize;
use serde_json::{Map, Value, json};

use crate::audit::EventType;
use crate::chat::channel::{self, Loaded};
use crate::chat::{Actor, Ctx, Error, Result, event, validate_user_id, view};
use crate::store::{MemberRow, MemberState};
use crate::time::now_micros;

#[derive(Debug, Default, Deserialize)]
pub struct PartialUpdateMember {
    #[serde(default)]
    pub set: Map<String, Value>,
    #[serde(default)]
    pub unset: Vec<String>,
}

/// The member fields a partial update may set or unset.
const UPDATABLE: &[&str] = &["pinned", "archived", "notifications_muted", "channel_role"];

/// The member row of `user_id` in the loaded channel, or not found.
pub(crate) async fn member_of(ctx: &Ctx<'_>, cid: &str, user_id: &str) -> Result<MemberRow> {
    ctx.store
        .channels
        .find_members(&[cid.to_string()])
        .await?
        .into_iter()
        .find(|m| m.user_id == user_id)
        .ok_or_else(|| Error::not_found(format!("user {user_id} is not a member of {cid}")))
}

/// The member whose state the actor changes: themselves (`UpdateOwnMembership`), or with
/// `UpdateChannelMembers` anyone. A server call must name the user.
async fn target_member(ctx: &Ctx<'_>, loaded: &Loaded, user_id: Option<&str>) -> Result<MemberRow> {
    let actor = loaded.actor();
    let me = actor.user_id();
    let target = match user_id.filter(|u| !u.is_empty()).or(me) {
        Some(t) => t,
        None => return Err(Error::input("user_id is required with server-side auth")),
    };
    validate_user_id(target)?;
    loaded.require(if Some(target) == me {
        "UpdateOwnMembership"
    } else {
        "UpdateChannelMembers"
    })?;
    member_of(ctx, &loaded.channel.cid, target).await
}

fn flag(set: &Map<String, Value>, key: &str) -> Result<Option<bool>> {
    match set.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Bool(b)) => Ok(Some(*b)),
        Some(_) => Err(Error::input(format!("set.{key} must be true or false"))),
    }
}

fn state_of(m: &MemberRow) -> MemberState {
    MemberState {
        pinned_at: m.pinned_at,
        archived_at: m.archived_at,
        hidden: m.hidden,
        notifications_muted: m.notifications_muted,
        invite_accepted_at: m.invite_accepted_at,
        invite_rejected_at: m.invite_rejected_at,
    }
}

/// Stores a member's new state with its record; `what` names the change for auditors.
pub(crate) async fn save_state(
    ctx: &Ctx<'_>,
    actor: &Actor,
    loaded: &Loaded,
    m: &MemberRow,
    state: &MemberState,
    what: &str,
) -> Result<MemberRow> {
    let cid = &loaded.channel.cid;
    let now = now_micros();
    let record = actor
        .audit(EventType::ChannelUpdate)
        .subject(m.user_id.clone())
        .object("channel", cid.clone())
        .meta("channel_type", &loaded.channel.kind)
        .meta("member_change", what);
    let changed = ctx
        .audit
        .audited([record], async |records| {
            ctx.store
                .members
                .update_member_state(cid, &m.user_id, state, now, &records)
                .await
        })
        .await?;
    if !changed {
        return Err(Error::not_found(format!(
            "user {} is not a member of {cid}",
            m.user_id
        )));
    }
    // Accepting or rejecting an invite changes who may read the channel, on every node.
    ctx.bus.invalidate_reads(Some(cid), Some(&m.user_id));
    Ok(MemberRow {
        pinned_at: state.pinned_at,
        archived_at: state.archived_at,
        hidden: state.hidden,
        notifications_muted: state.notifications_muted,
        invite_accepted_at: state.invite_accepted_at,
        invite_rejected_at: state.invite_rejected_at,
        updated_at: now,
        ..m.clone()
    })
}

/// The member as the wire shows it, with its user.
pub(crate) async fn render_member(ctx: &Ctx<'_>, m: &MemberRow) -> Result<Value> {
    let user = match ctx.store.users.find_user(&m.user_id).await? {
        Some(u) => view::user_json(ctx, &u),
        None => json!({ "id": m.user_id }),
    };
    Ok(view::member_json(m, user))
}

/// `member.updated` to the channel's watchers and to the member's own connections.
pub(crate) async fn announce_member_updated(ctx: &Ctx<'_>, cid: &str, member: &Value) {
    let mut ev = event::channel_event("member.updated", cid);
    ev["member"] = member.clone();
    ev["user"] = member["user"].clone();
    ctx.bus.to_channel(cid, &ev).await;
    if let Some(uid) = member["user_id"].as_str() {
        ctx.bus.to_user(uid, &ev).await;
    }
}

/// `PATCH /channels/{type}/{id}/member[/{user_id}]`: sets or unsets `pinned`, `archived`,
/// `notifications_muted` (and with `UpdateChannelMembers`, `channel_role`).
pub async fn partial_update_member(
    ctx: &Ctx<'_>,
    actor: &Actor,
    cid: &str,
    user_id: Option<&str>,
    body: &PartialUpdateMember,
) -> Result<Value> {
    for key in body.set.keys().chain(body.unset.iter()) {
        if !UPDATABLE.contains(&key.as_str()) {
            return Err(Error::input(format!(
                "member field {key:?} cannot be updated: custom member data is not supported; \
                 updatable fields are {}",
                UPDATABLE.join(", ")
            )));
        }
    }
    if body.unset.iter().any(|k| k == "channel_role") {
        return Err(Error::input("channel_role cannot be unset"));
    }
    let loaded = channel::load(ctx, actor, cid).await?;
    let m = target_member(ctx, &loaded, user_id).await?;
    let now = now_micros();
    let mut state = state_of(&m);
    let stamp = |on: Option<bool>, was: Option<i64>| match on {
        Some(true) => was.or(Some(now)),
        Some(false) => None,
        None => was,
    };
    state.pinned_at = stamp(flag(&body.set, "pinned")?, state.pinned_at);
    state.archived_at = stamp(flag(&body.set, "archived")?, state.archived_at);
    if let Some(muted) = flag(&body.set, "notifications_muted")? {
        state.notifications_muted = muted;
    }
    for key in &body.unset {
        match key.as_str() {
            "pinned" => state.pinned_at = None,
            "archived" => state.archived_at = None,
            "notifications_muted" => state.notifications_muted = false,
            _ => {}
        }
    }
    let mut saved = m.clone();
    if let Some(role) = body.set.get("channel_role") {
        let role = role
            .as_str()
            .filter(|r| ["channel_member", "channel_moderator"].contains(r))
            .ok_or_else(|| {
                Error::input("channel_role must be channel_member or channel_moderator")
            })?;
        loaded.require("UpdateChannelMembers")?;
        if role != m.channel_role {
            let record = actor
                .audit(EventType::MemberRole)
                .subject(m.user_id.clone())
                .object("channel", cid)
                .meta("channel_type", &loaded.channel.kind)
                .meta("channel_role", role);
            ctx.audit
                .audited([record], async |records| {
                    ctx.store
                        .channels
                        .update_member_role(cid, &m.user_id, role, now, &records)
                        .await
                })
                .await?;
            saved.channel_role = role.to_string();
        }
    }
    if state != state_of(&m) {
        saved = MemberRow {
            channel_role: saved.channel_role.clone(),
            ..save_state(ctx, actor, &loaded, &m, &state, "state").await?
        };
    }
    let member = render_member(ctx, &saved).await?;
    announce_member_updated(ctx, cid, &member).await;
    Ok(json!({ "channel_member": member }))
}

#[derive(Debug, Default, Deserialize)]
pub struct HideChannel {
    pub user_id: Option<String>,
    #[serde(default)]
    pub clear_history: bool,
}

/// `POST …/hide` (`hidden: true`) and `POST …/show` (`hidden: false`): the channel leaves
/// (or returns to) the member's channel list; a new message shows it again. The member's
/// own connections get `channel.hidden` / `channel.visible`.
pub async fn set_hidden(
    ctx: &Ctx<'_>,
    actor: &Actor,
    cid: &str,
    body: &HideChannel,
    hidden: bool,
) -> Result<Value> {
    if body.clear_history {
        return Err(Error::input(
            "clear_history is not supported: hide the channel without it, or truncate it",
        ));
    }
    let loaded = channel::load(ctx, actor, cid).await?;
    let m = target_member(ctx, &loaded, body.user_id.as_deref()).await?;
    if m.hidden != hidden {
        let state = MemberState {
            hidden,
            ..state_of(&m)
        };
        let what = if hidden { "hide" } else { "show" };
        save_state(ctx, actor, &loaded, &m, &state, what).await?;
    }
    let kind = if hidden {
        "channel.hidden"
    } else {
        "channel.visible"
    };
    let mut ev = event::channel_event(kind, cid);
    ev["channel"] = json!({
        "cid": cid,
        "id": loaded.channel.id,
        "type": loaded.channel.kind,
        "hidden": hidden,
    });
    if let Some(u) = ctx.store.users.find_user(&m.user_id).await? {
        ev["user"] = view::user_json(ctx, &u);
    }
    if hidden {
        ev["clear_history"] = false.into();
    }
    ctx.bus.to_user(&m.user_id, &ev).await;
    Ok(json!({}))
}

/// A new message shows the channel again to every member who hid it (as Stream does), with
/// `channel.visible` to each of them.
pub async fn unhide_on_message(ctx: &Ctx<'_>, cid: &str) -> Result<()> {
    let shown = ctx.store.members.unhide_channel(cid).await?;
    for uid in &shown {
        let (kind, id) = crate::chat::parse_cid(cid)?;
        let mut ev = event::channel_event("channel.visible", cid);
        ev["channel"] = json!({"cid": cid, "id": id, "type": kind, "hidden": false});
        ctx.bus.to_user(uid, &ev).await;
    }
    Ok(())
}
