//! `POST /channels`: the channels an actor may read that match a filter, sorted, paged and
//! optionally watched.

use std::collections::{HashMap, HashSet};

use serde::Deserialize;
use serde_json::{Value, json};

use super::state::{MessagePagination, StateOptions, channel_states};
use super::{Loaded, watch, with_access};
use crate::chat::channel_type;
use crate::chat::{Actor, Ctx, Error, Result, filter, validate_channel_type};
use crate::store::{ChannelRow, MemberRow};
use crate::time::rfc3339;

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

/// The viewer's own facts about a channel, for filters and sorts (`pinned`, `archived`,
/// `hidden`, `joined`, `muted`, `has_unread`, `unread_count`, `pinned_at`, `archived_at`).
/// `muted` is always false: channel mutes are not implemented yet.
fn add_viewer_facts(doc: &mut Value, membership: Option<&MemberRow>, unread: Option<i64>) {
    let m = membership;
    let unread = unread.unwrap_or(0);
    doc["pinned"] = m.is_some_and(|m| m.pinned_at.is_some()).into();
    doc["archived"] = m.is_some_and(|m| m.archived_at.is_some()).into();
    doc["hidden"] = m.is_some_and(|m| m.hidden).into();
    doc["joined"] = m.is_some_and(MemberRow::is_active).into();
    doc["muted"] = false.into();
    doc["has_unread"] = (unread > 0).into();
    doc["unread_count"] = unread.into();
    if let Some(t) = m.and_then(|m| m.pinned_at) {
        doc["pinned_at"] = rfc3339(t).into();
    }
    if let Some(t) = m.and_then(|m| m.archived_at) {
        doc["archived_at"] = rfc3339(t).into();
    }
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
    let unread: HashMap<String, i64> = match actor.user_id() {
        Some(uid) => ctx
            .store
            .channels
            .find_reads_for_user(uid)
            .await?
            .into_iter()
            .map(|(r, _)| (r.cid, r.unread_messages))
            .collect(),
        None => HashMap::new(),
    };

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
            let mut doc = filter_doc(
                &loaded.channel,
                members.iter().map(|m| m.user_id.clone()).collect(),
            );
            let unread = unread.get(&loaded.channel.cid).copied();
            add_viewer_facts(&mut doc, loaded.membership.as_ref(), unread);
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
    // As Stream: hidden channels are left out unless the filter asks about `hidden`.
    if !filter.mentions("hidden") {
        matched.retain(|(doc, _)| doc["hidden"] != Value::Bool(true));
    }
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
