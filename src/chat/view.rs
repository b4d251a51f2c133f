//! The wire shapes of users, channels, members, reads, messages and reactions (protocol
//! brief §5): custom fields flattened at the top level, times in RFC 3339. Lookups needed
//! to render a batch (authors, mentions, reactions, quoted messages) are done once per batch.

use std::collections::{HashMap, HashSet};

use serde_json::{Map, Value, json};

use crate::chat::channel_type::{self, ChannelConfig};
use crate::chat::{Actor, Ctx, Result};
use crate::store::{ChannelRow, MemberRow, MessageRow, ReactionRow, ReadRow, UserRow};
use crate::time::rfc3339;

/// Fields of a message the client may not set through custom data.
pub const RESERVED_MESSAGE_FIELDS: &[&str] = &[
    "id",
    "cid",
    "type",
    "text",
    "html",
    "user",
    "user_id",
    "parent_id",
    "show_in_channel",
    "silent",
    "pinned",
    "created_at",
    "updated_at",
    "deleted_at",
    "message_text_updated_at",
    "latest_reactions",
    "own_reactions",
    "reaction_groups",
    "reaction_counts",
    "reaction_scores",
    "reply_count",
    "deleted_reply_count",
    "quoted_message",
    "channel",
    "status",
    "i18n",
    "shadowed",
    "pinned_by",
    "thread_participants",
];

pub fn user_json(ctx: &Ctx<'_>, u: &UserRow) -> Value {
    let mut obj = u.data.clone();
    obj.insert("id".into(), u.id.clone().into());
    obj.insert("role".into(), u.role.clone().into());
    obj.insert("created_at".into(), rfc3339(u.created_at).into());
    obj.insert("updated_at".into(), rfc3339(u.updated_at).into());
    if let Some(t) = u.last_active {
        obj.insert("last_active".into(), rfc3339(t).into());
    }
    if let Some(t) = u.deactivated_at {
        obj.insert("deactivated_at".into(), rfc3339(t).into());
    }
    if let Some(t) = u.deleted_at {
        obj.insert("deleted_at".into(), rfc3339(t).into());
    }
    obj.insert("banned".into(), u.banned.into());
    obj.insert("online".into(), ctx.bus.is_online(&u.id).into());
    obj.entry("teams").or_insert_with(|| json!([]));
    Value::Object(obj)
}

/// Renders the given users by id; an id with no stored user renders as `{id}`.
pub async fn users_by_id(ctx: &Ctx<'_>, ids: HashSet<String>) -> Result<HashMap<String, Value>> {
    let ids: Vec<String> = ids.into_iter().collect();
    let rows = ctx.store.users.find_users(&ids).await?;
    let mut map: HashMap<String, Value> = rows
        .iter()
        .map(|u| (u.id.clone(), user_json(ctx, u)))
        .collect();
    for id in ids {
        map.entry(id.clone()).or_insert_with(|| json!({ "id": id }));
    }
    Ok(map)
}

pub fn member_json(m: &MemberRow, user: Value) -> Value {
    let status = match (m.invited, m.invite_accepted_at, m.invite_rejected_at) {
        (false, _, _) => "member",
        (true, Some(_), _) => "accepted",
        (true, None, Some(_)) => "rejected",
        (true, None, None) => "pending",
    };
    let mut v = json!({
        "user_id": m.user_id,
        "user": user,
        "channel_role": m.channel_role,
        "is_moderator": m.channel_role == "channel_moderator",
        "created_at": rfc3339(m.created_at),
        "updated_at": rfc3339(m.updated_at),
        "banned": false,
        "shadow_banned": false,
        "notifications_muted": m.notifications_muted,
        "status": status,
        "pinned_at": m.pinned_at.map(rfc3339),
        "archived_at": m.archived_at.map(rfc3339),
    });
    if m.invited {
        v["invited"] = true.into();
    }
    if let Some(t) = m.invite_accepted_at {
        v["invite_accepted_at"] = rfc3339(t).into();
    }
    if let Some(t) = m.invite_rejected_at {
        v["invite_rejected_at"] = rfc3339(t).into();
    }
    v
}

pub fn read_json(r: &ReadRow, user: Value) -> Value {
    let mut v = json!({
        "user": user,
        "last_read": rfc3339(r.last_read),
        "unread_messages": r.unread_messages,
    });
    if let Some(id) = &r.last_read_message_id {
        v["last_read_message_id"] = id.clone().into();
    }
    if let (Some(at), Some(id)) = (r.last_delivered_at, &r.last_delivered_message_id) {
        v["last_delivered_at"] = rfc3339(at).into();
        v["last_delivered_message_id"] = id.clone().into();
    }
    v
}

/// The `channel` object. `own_capabilities` is computed for `actor`.
pub fn channel_json(
    ctx: &Ctx<'_>,
    actor: &Actor,
    ch: &ChannelRow,
    config: &ChannelConfig,
    membership: Option<&MemberRow>,
    created_by: Option<Value>,
) -> Value {
    let mut obj = ch.data.clone();
    obj.insert("id".into(), ch.id.clone().into());
    obj.insert("type".into(), ch.kind.clone().into());
    obj.insert("cid".into(), ch.cid.clone().into());
    obj.insert("created_at".into(), rfc3339(ch.created_at).into());
    obj.insert("updated_at".into(), rfc3339(ch.updated_at).into());
    if let Some(by) = created_by {
        obj.insert("created_by".into(), by);
    }
    obj.insert("frozen".into(), ch.frozen.into());
    obj.insert("disabled".into(), false.into());
    obj.insert("hidden".into(), membership.is_some_and(|m| m.hidden).into());
    obj.insert("member_count".into(), ch.member_count.into());
    obj.insert("config".into(), config.to_json(ctx.max_message_length));
    obj.insert(
        "own_capabilities".into(),
        json!(channel_type::capabilities(
            ctx.authz,
            actor,
            config,
            &channel_type::facts(actor, config, ch, membership)
        )),
    );
    if let Some(t) = ch.last_message_at {
        obj.insert("last_message_at".into(), rfc3339(t).into());
    }
    if let Some(t) = ch.truncated_at {
        obj.insert("truncated_at".into(), rfc3339(t).into());
    }
    if let Some(t) = ch.deleted_at {
        obj.insert("deleted_at".into(), rfc3339(t).into());
    }
    Value::Object(obj)
}

pub fn reaction_json(r: &ReactionRow, user: Value) -> Value {
    let mut obj = r.data.clone();
    obj.insert("type".into(), r.kind.clone().into());
    obj.insert("user_id".into(), r.user_id.clone().into());
    obj.insert("user".into(), user);
    obj.insert("message_id".into(), r.message_id.clone().into());
    obj.insert("score".into(), r.score.into());
    obj.insert("created_at".into(), rfc3339(r.created_at).into());
    obj.insert("updated_at".into(), rfc3339(r.updated_at).into());
    Value::Object(obj)
}

fn id_list(v: Option<&Value>) -> Vec<String> {
    v.and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|x| x.as_str().map(String::from))
                .collect()
        })
        .unwrap_or_default()
}

/// Renders messages with their authors, mentions, reactions (as seen by `viewer`) and
/// quoted messages, loading each kind of related row once for the whole batch.
pub async fn render_messages(
    ctx: &Ctx<'_>,
    rows: &[MessageRow],
    viewer: Option<&str>,
) -> Result<Vec<Value>> {
    if rows.is_empty() {
        return Ok(Vec::new());
    }
    let ids: Vec<String> = rows.iter().map(|m| m.id.clone()).collect();
    let reactions = ctx.store.messages.find_reactions(&ids).await?;
    let quoted_ids: Vec<String> = rows
        .iter()
        .filter_map(|m| {
            m.data
                .get("quoted_message_id")
                .and_then(Value::as_str)
                .map(String::from)
        })
        .collect();
    let quoted = ctx.store.messages.find_messages(&quoted_ids).await?;

    let mut user_ids: HashSet<String> = HashSet::new();
    for m in rows.iter().chain(quoted.iter()) {
        user_ids.insert(m.user_id.clone());
        user_ids.extend(id_list(m.data.get("mentioned_users")));
        if let Some(by) = m.data.get("pinned_by_id").and_then(Value::as_str) {
            user_ids.insert(by.to_string());
        }
    }
    user_ids.extend(reactions.iter().map(|r| r.user_id.clone()));
    let threads = thread_participants(ctx, rows).await?;
    user_ids.extend(threads.values().flatten().cloned());
    let users = users_by_id(ctx, user_ids).await?;

    let mut by_message: HashMap<&str, Vec<&ReactionRow>> = HashMap::new();
    for r in &reactions {
        by_message.entry(r.message_id.as_str()).or_default().push(r);
    }
    let quoted: HashMap<&str, Value> = quoted
        .iter()
        .map(|q| (q.id.as_str(), message_json(q, &users, &[], viewer, None)))
        .collect();
    let hidden = crate::chat::message_extra::hidden_for(ctx, viewer, &ids).await?;
    let mut rendered: Vec<Value> = rows
        .iter()
        .map(|m| {
            let rs = by_message
                .get(m.id.as_str())
                .map(Vec::as_slice)
                .unwrap_or(&[]);
            let q = m
                .data
                .get("quoted_message_id")
                .and_then(Value::as_str)
                .and_then(|id| quoted.get(id).cloned());
            let mut v = message_json(m, &users, rs, viewer, q);
            if let Some(ids) = threads.get(&m.id) {
                v["thread_participants"] = ids
                    .iter()
                    .map(|id| {
                        users
                            .get(id)
                            .cloned()
                            .unwrap_or_else(|| json!({ "id": id }))
                    })
                    .collect::<Vec<_>>()
                    .into();
            }
            if let Some(at) = hidden.get(&m.id) {
                crate::chat::message_extra::as_deleted_for_me(&mut v, *at);
            }
            v
        })
        .collect();
    crate::chat::poll::attach_to_messages(ctx, &mut rendered, viewer).await?;
    Ok(rendered)
}

/// The participants (the parent's author, then repliers in order) of each message of the
/// batch that has replies.
async fn thread_participants(
    ctx: &Ctx<'_>,
    rows: &[MessageRow],
) -> Result<HashMap<String, Vec<String>>> {
    let parents: Vec<String> = rows
        .iter()
        .filter(|m| m.parent_id.is_none() && m.reply_count > 0)
        .map(|m| m.id.clone())
        .collect();
    let mut out: HashMap<String, Vec<String>> = rows
        .iter()
        .filter(|m| parents.contains(&m.id))
        .map(|m| (m.id.clone(), vec![m.user_id.clone()]))
        .collect();
    for p in ctx.store.threads.find_participants(&parents).await? {
        if let Some(list) = out.get_mut(&p.parent_id)
            && !list.contains(&p.user_id)
        {
            list.push(p.user_id);
        }
    }
    Ok(out)
}

/// How many reactions `latest_reactions` carries.
const LATEST_REACTIONS: usize = 10;

fn message_json(
    m: &MessageRow,
    users: &HashMap<String, Value>,
    reactions: &[&ReactionRow],
    viewer: Option<&str>,
    quoted: Option<Value>,
) -> Value {
    let user = |id: &str| {
        users
            .get(id)
            .cloned()
            .unwrap_or_else(|| json!({ "id": id }))
    };
    let deleted = m.deleted_at.is_some();
    let mut obj: Map<String, Value> = m.data.clone();
    obj.remove("pinned_by_id");
    let mentioned: Vec<Value> = id_list(m.data.get("mentioned_users"))
        .iter()
        .map(|id| user(id))
        .collect();
    obj.insert("mentioned_users".into(), mentioned.into());
    obj.insert("id".into(), m.id.clone().into());
    obj.insert("cid".into(), m.cid.clone().into());
    obj.insert("type".into(), m.kind.clone().into());
    obj.insert(
        "text".into(),
        if deleted { "" } else { m.text.as_str() }.into(),
    );
    obj.insert("html".into(), "".into());
    obj.insert("user".into(), user(&m.user_id));
    obj.entry("attachments").or_insert_with(|| json!([]));
    if deleted {
        obj.insert("attachments".into(), json!([]));
        obj.insert(
            "deleted_at".into(),
            rfc3339(m.deleted_at.unwrap_or_default()).into(),
        );
    }
    if let Some(p) = &m.parent_id {
        obj.insert("parent_id".into(), p.clone().into());
        obj.insert("show_in_channel".into(), m.show_in_channel.into());
    }
    if !deleted && let Some(t) = m.text_updated_at {
        obj.insert("message_text_updated_at".into(), rfc3339(t).into());
    }
    obj.insert("reply_count".into(), m.reply_count.into());
    obj.insert("deleted_reply_count".into(), 0.into());
    obj.insert("silent".into(), m.silent.into());
    obj.insert("shadowed".into(), false.into());
    obj.insert("status".into(), "received".into());
    // An expired pin reads as no pin (`chat::pin`).
    let pinned = crate::chat::pin::is_pinned(m, crate::time::now_micros());
    obj.insert("pinned".into(), pinned.into());
    if pinned {
        if let Some(by) = m.data.get("pinned_by_id").and_then(Value::as_str) {
            obj.insert("pinned_by".into(), user(by));
        }
    } else {
        obj.insert("pinned_at".into(), Value::Null);
        obj.insert("pinned_by".into(), Value::Null);
        obj.insert("pin_expires".into(), Value::Null);
    }
    if let Some(q) = quoted {
        obj.insert("quoted_message".into(), q);
    }
    obj.insert("created_at".into(), rfc3339(m.created_at).into());
    obj.insert("updated_at".into(), rfc3339(m.updated_at).into());

    let mut groups: Map<String, Value> = Map::new();
    let mut counts: Map<String, Value> = Map::new();
    let mut scores: Map<String, Value> = Map::new();
    for r in reactions {
        let g = groups.entry(r.kind.clone()).or_insert_with(|| {
            json!({"count": 0, "sum_scores": 0, "first_reaction_at": rfc3339(r.created_at), "last_reaction_at": rfc3339(r.created_at)})
        });
        g["count"] = (g["count"].as_i64().unwrap_or(0) + 1).into();
        g["sum_scores"] = (g["sum_scores"].as_i64().unwrap_or(0) + r.score).into();
        g["last_reaction_at"] = rfc3339(r.created_at).into();
        counts.insert(r.kind.clone(), g["count"].clone());
        scores.insert(r.kind.clone(), g["sum_scores"].clone());
    }
    let latest: Vec<Value> = reactions
        .iter()
        .rev()
        .take(LATEST_REACTIONS)
        .map(|r| reaction_json(r, user(&r.user_id)))
        .collect();
    let own: Vec<Value> = reactions
        .iter()
        .filter(|r| Some(r.user_id.as_str()) == viewer)
        .map(|r| reaction_json(r, user(&r.user_id)))
        .collect();
    obj.insert("latest_reactions".into(), latest.into());
    obj.insert("own_reactions".into(), own.into());
    obj.insert("reaction_groups".into(), Value::Object(groups));
    obj.insert("reaction_counts".into(), Value::Object(counts));
    obj.insert("reaction_scores".into(), Value::Object(scores));
    Value::Object(obj)
}
