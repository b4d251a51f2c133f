//! Threads: a parent message and its replies, as Stream's `ThreadResponse` (what the SDK's
//! `Thread` and `ThreadManager` consume). `POST /threads` lists the threads the caller takes
//! part in (wrote the parent or replied) in channels they may read; `GET /threads/{id}`
//! returns one; `PATCH /threads/{id}` sets and unsets its title and custom data. What a
//! reply sends is in `thread/reply.rs`, thread read state in `thread/read.rs`.

mod read;
mod reply;

pub use read::{ThreadUnread, mark_thread_read, mark_thread_unread, unread_threads};
pub use reply::{on_reply, participants_by_parent};

use std::collections::{HashMap, HashSet};

use serde::Deserialize;
use serde_json::{Map, Value, json};

use crate::audit::EventType;
use crate::chat::{Actor, Ctx, Error, Result, channel, event, filter, validate_message_id, view};
use crate::store::{Cursor, MessageRow, ThreadRow};
use crate::time::{now_micros, rfc3339};

/// Threads one query considers (newest reply first) before filtering and paging.
const MAX_CANDIDATES: i64 = 1_000;
const MAX_CUSTOM_BYTES: usize = 5 * 1024;
const MAX_TITLE_CHARS: usize = 256;

/// Keys of `ThreadResponse` the server owns (the SDK's `THREAD_RESPONSE_RESERVED_KEYS` and
/// its `partialUpdateThread` list); custom data may not use them.
const RESERVED: &[&str] = &[
    "active_participant_count",
    "channel",
    "channel_cid",
    "created_at",
    "created_by",
    "created_by_user_id",
    "deleted_at",
    "draft",
    "last_message_at",
    "latest_replies",
    "parent_message",
    "parent_message_id",
    "participant_count",
    "participants",
    "read",
    "reply_count",
    "thread_participants",
    "updated_at",
    "id",
    "type",
    "user",
    "custom",
];

/// How much of each thread to render.
#[derive(Debug, Clone, Copy)]
pub struct Shape {
    pub reply_limit: i64,
    pub participant_limit: i64,
    pub member_limit: i64,
}

impl Shape {
    fn new(reply: Option<i64>, participant: Option<i64>, member: Option<i64>) -> Result<Self> {
        let bounded = |v: Option<i64>, default: i64, name: &str| {
            let v = v.unwrap_or(default);
            if (0..=100).contains(&v) {
                Ok(v)
            } else {
                Err(Error::input(format!("{name} must be between 0 and 100")))
            }
        };
        Ok(Self {
            reply_limit: bounded(reply, 3, "reply_limit")?,
            participant_limit: bounded(participant, 10, "participant_limit")?,
            member_limit: bounded(member, 0, "member_limit")?,
        })
    }
}

#[derive(Debug, Default, Deserialize)]
pub struct QueryThreads {
    #[serde(default)]
    pub filter: Value,
    #[serde(default)]
    pub sort: Value,
    pub limit: Option<i64>,
    pub next: Option<String>,
    pub prev: Option<String>,
    pub participant_limit: Option<i64>,
    pub reply_limit: Option<i64>,
    pub member_limit: Option<i64>,
    #[serde(default)]
    pub watch: bool,
}

#[derive(Debug, Default)]
pub struct GetThread {
    pub participant_limit: Option<i64>,
    pub reply_limit: Option<i64>,
    pub member_limit: Option<i64>,
    pub watch: bool,
}

#[derive(Debug, Default, Deserialize)]
pub struct UpdateThread {
    #[serde(default)]
    pub set: Map<String, Value>,
    #[serde(default)]
    pub unset: Vec<String>,
}

/// A thread found for a caller: its parent and the channel it lives in.
struct Found {
    parent: MessageRow,
    channel: usize,
    doc: Value,
}

fn paging_offset(q: &QueryThreads) -> Result<i64> {
    let parse = |s: &String| {
        s.parse::<i64>()
            .ok()
            .filter(|n| (0..=MAX_CANDIDATES).contains(n))
            .ok_or_else(|| Error::input("next/prev is not a valid cursor"))
    };
    match (&q.next, &q.prev) {
        (Some(n), _) => parse(n),
        (None, Some(p)) => parse(p),
        (None, None) => Ok(0),
    }
}

/// `POST /threads`.
pub async fn query_threads(
    ctx: &Ctx<'_>,
    actor: &Actor,
    q: &QueryThreads,
    conn_id: Option<&str>,
) -> Result<Value> {
    actor.authorize_app(ctx, "QueryThreads")?;
    let user = actor.require_user()?;
    let shape = Shape::new(q.reply_limit, q.participant_limit, q.member_limit)?;
    let limit = q.limit.unwrap_or(10);
    if !(1..=100).contains(&limit) {
        return Err(Error::input("limit must be between 1 and 100"));
    }
    let offset = paging_offset(q)?;
    let wanted = filter::parse(&q.filter)?;
    let mut sort = filter::parse_sort(&q.sort)?;
    if sort.is_empty() {
        sort.push(filter::SortKey {
            field: "last_message_at".into(),
            descending: true,
        });
    }
    sort.push(filter::SortKey {
        field: "parent_message_id".into(),
        descending: false,
    });

    let ids = ctx
        .store
        .threads
        .find_thread_ids_for_user(&user.id, MAX_CANDIDATES)
        .await?;
    let parents = ctx.store.messages.find_messages(&ids).await?;
    let mut channels: Vec<channel::Loaded> = Vec::new();
    let mut by_cid: HashMap<String, Option<usize>> = HashMap::new();
    let mut readable: Vec<(MessageRow, usize)> = Vec::new();
    for p in parents {
        let slot = match by_cid.get(&p.cid) {
            Some(slot) => *slot,
            None => {
                let slot = match channel::load(ctx, actor, &p.cid).await {
                    Ok(l) if l.allows("ReadChannel") => {
                        channels.push(l);
                        Some(channels.len() - 1)
                    }
                    Ok(_) | Err(Error::NotFound(_)) => None,
                    Err(e) => return Err(e),
                };
                by_cid.insert(p.cid.clone(), slot);
                slot
            }
        };
        if let Some(i) = slot
            && channels[i]
                .channel
                .truncated_at
                .is_none_or(|t| p.created_at > t)
        {
            readable.push((p, i));
        }
    }
    let found = summarise(ctx, readable).await?;
    let mut found: Vec<Found> = found
        .into_iter()
        .filter(|f| wanted.matches(&f.doc))
        .collect();
    found.sort_by(|a, b| filter::compare_docs(&a.doc, &b.doc, &sort));
    let total = found.len() as i64;
    let page: Vec<Found> = found
        .into_iter()
        .skip(offset as usize)
        .take(limit as usize)
        .collect();
    if q.watch {
        let mut watched = HashSet::new();
        for f in &page {
            let cid = &channels[f.channel].channel.cid;
            if watched.insert(cid.clone()) {
                channel::watch(ctx, actor, conn_id, cid).await?;
            }
        }
    }
    let threads = render(ctx, actor, &channels, page, shape).await?;
    let mut reply = json!({ "threads": threads, "duration": "0ms" });
    if offset + limit < total {
        reply["next"] = (offset + limit).to_string().into();
    }
    if offset > 0 {
        reply["prev"] = (offset - limit).max(0).to_string().into();
    }
    Ok(reply)
}

/// Loads a thread's parent the actor may read. A message without replies is not a thread.
async fn readable_parent(
    ctx: &Ctx<'_>,
    actor: &Actor,
    id: &str,
) -> Result<(MessageRow, channel::Loaded)> {
    validate_message_id(id)?;
    let missing = || Error::not_found(format!("thread {id} does not exist"));
    let parent = ctx
        .store
        .messages
        .find_message(id)
        .await?
        .filter(|m| m.parent_id.is_none())
        .ok_or_else(missing)?;
    let loaded = channel::load(ctx, actor, &parent.cid).await?;
    loaded.require_read()?;
    if loaded
        .channel
        .truncated_at
        .is_some_and(|t| parent.created_at <= t)
        || parent.reply_count == 0
    {
        return Err(missing());
    }
    Ok((parent, loaded))
}

/// `GET /threads/{id}`.
pub async fn get_thread(
    ctx: &Ctx<'_>,
    actor: &Actor,
    id: &str,
    q: &GetThread,
    conn_id: Option<&str>,
) -> Result<Value> {
    let shape = Shape::new(q.reply_limit, q.participant_limit, q.member_limit)?;
    let (parent, loaded) = readable_parent(ctx, actor, id).await?;
    if q.watch {
        channel::watch(ctx, actor, conn_id, &loaded.channel.cid).await?;
    }
    let channels = [loaded];
    let found = summarise(ctx, vec![(parent, 0)]).await?;
    let mut threads = render(ctx, actor, &channels, found, shape).await?;
    Ok(json!({ "thread": threads.pop().unwrap_or(Value::Null), "duration": "0ms" }))
}

/// `PATCH /threads/{id}`: `set` and `unset` of `title` and custom fields; `thread.updated`
/// to the channel's watchers.
pub async fn update_thread(
    ctx: &Ctx<'_>,
    actor: &Actor,
    id: &str,
    body: &UpdateThread,
) -> Result<Value> {
    let (parent, loaded) = readable_parent(ctx, actor, id).await?;
    loaded.require("UpdateThread")?;
    for key in body.set.keys().chain(body.unset.iter()) {
        if RESERVED.contains(&key.as_str()) || key.is_empty() || key.len() > 64 {
            return Err(Error::input(format!(
                "{key:?} cannot be set on a thread: it is reserved for server-side use"
            )));
        }
    }
    if let Some(title) = body.set.get("title") {
        let title = title
            .as_str()
            .ok_or_else(|| Error::input("title must be a string"))?;
        if title.chars().count() > MAX_TITLE_CHARS {
            return Err(Error::input(format!(
                "title must be at most {MAX_TITLE_CHARS} characters"
            )));
        }
    }
    let now = now_micros();
    let existing = ctx
        .store
        .threads
        .find_threads(std::slice::from_ref(&parent.id))
        .await?
        .pop();
    let mut data = existing
        .as_ref()
        .map(|t| t.data.clone())
        .unwrap_or_default();
    for key in &body.unset {
        data.remove(key);
    }
    data.extend(body.set.iter().map(|(k, v)| (k.clone(), v.clone())));
    if Value::Object(data.clone()).to_string().len() > MAX_CUSTOM_BYTES {
        return Err(Error::input("thread custom data must stay under 5KB"));
    }
    let row = ThreadRow {
        parent_id: parent.id.clone(),
        cid: parent.cid.clone(),
        data,
        created_at: existing.as_ref().map_or(now, |t| t.created_at),
        updated_at: now,
    };
    let record = actor
        .audit(EventType::ChannelUpdate)
        .object("thread", parent.id.clone())
        .meta("channel_type", &loaded.channel.kind);
    ctx.audit
        .audited([record], async |records| {
            ctx.store.threads.upsert_thread(&row, &records).await
        })
        .await?;
    let channels = [loaded];
    let found = summarise(ctx, vec![(parent, 0)]).await?;
    let shape = Shape::new(None, None, None)?;
    let thread = render(ctx, actor, &channels, found, shape)
        .await?
        .pop()
        .unwrap_or(Value::Null);
    let mut ev = event::channel_event("thread.updated", &row.cid);
    let mut brief = thread.clone();
    if let Some(o) = brief.as_object_mut() {
        // The event carries the thread, not its messages (as Stream's does).
        o.remove("latest_replies");
        o.remove("parent_message");
        o.remove("read");
    }
    ev["thread"] = brief;
    if let Some(u) = &actor.user {
        ev["user"] = view::user_json(ctx, u);
    }
    ctx.bus.to_channel(&row.cid, &ev).await;
    Ok(json!({ "thread": thread, "duration": "0ms" }))
}

/// The filterable and sortable summary of each thread (its own data, counts, times).
async fn summarise(ctx: &Ctx<'_>, threads: Vec<(MessageRow, usize)>) -> Result<Vec<Found>> {
    let ids: Vec<String> = threads.iter().map(|(p, _)| p.id.clone()).collect();
    let own: HashMap<String, ThreadRow> = ctx
        .store
        .threads
        .find_threads(&ids)
        .await?
        .into_iter()
        .map(|t| (t.parent_id.clone(), t))
        .collect();
    let participants = participants_by_parent(ctx, &ids).await?;
    Ok(threads
        .into_iter()
        .map(|(parent, channel)| {
            let repliers = participants
                .get(&parent.id)
                .map(Vec::as_slice)
                .unwrap_or(&[]);
            let last = repliers.iter().map(|p| p.last_reply_at).max();
            let mut users: HashSet<&str> = repliers.iter().map(|p| p.user_id.as_str()).collect();
            users.insert(parent.user_id.as_str());
            let data = own.get(&parent.id);
            let mut doc: Map<String, Value> = data.map(|t| t.data.clone()).unwrap_or_default();
            doc.entry("title").or_insert_with(|| "".into());
            doc.insert("parent_message_id".into(), parent.id.clone().into());
            doc.insert("channel_cid".into(), parent.cid.clone().into());
            doc.insert("created_by_user_id".into(), parent.user_id.clone().into());
            doc.insert("reply_count".into(), parent.reply_count.into());
            doc.insert("participant_count".into(), users.len().into());
            doc.insert("active_participant_count".into(), users.len().into());
            doc.insert(
                "created_at".into(),
                rfc3339(data.map_or(parent.created_at, |t| t.created_at)).into(),
            );
            doc.insert(
                "updated_at".into(),
                rfc3339(data.map_or(last.unwrap_or(parent.updated_at), |t| t.updated_at)).into(),
            );
            if let Some(l) = last {
                doc.insert("last_message_at".into(), rfc3339(l).into());
            }
            Found {
                parent,
                channel,
                doc: Value::Object(doc),
            }
        })
        .collect())
}

/// Renders each thread: the summary plus its channel, parent, latest replies, participants
/// and read state, with every message and user loaded once for the page.
async fn render(
    ctx: &Ctx<'_>,
    actor: &Actor,
    channels: &[channel::Loaded],
    page: Vec<Found>,
    shape: Shape,
) -> Result<Vec<Value>> {
    if page.is_empty() {
        return Ok(Vec::new());
    }
    let ids: Vec<String> = page.iter().map(|f| f.parent.id.clone()).collect();
    let mut rows: Vec<MessageRow> = Vec::new();
    let mut replies_of: Vec<std::ops::Range<usize>> = Vec::new();
    for f in &page {
        rows.push(f.parent.clone());
        let replies = if shape.reply_limit > 0 {
            ctx.store
                .messages
                .find_replies(&f.parent.id, &Cursor::Latest, shape.reply_limit)
                .await?
        } else {
            Vec::new()
        };
        let start = rows.len();
        rows.extend(replies);
        replies_of.push(start..rows.len());
    }
    let rendered = view::render_messages(ctx, &rows, actor.user_id()).await?;
    let participants = participants_by_parent(ctx, &ids).await?;
    let reads = ctx.store.threads.find_thread_reads(&ids, None).await?;
    let mut user_ids: HashSet<String> = reads.iter().map(|r| r.user_id.clone()).collect();
    for f in &page {
        user_ids.insert(f.parent.user_id.clone());
    }
    user_ids.extend(participants.values().flatten().map(|p| p.user_id.clone()));
    let users = view::users_by_id(ctx, user_ids).await?;
    let user = |id: &str| {
        users
            .get(id)
            .cloned()
            .unwrap_or_else(|| json!({ "id": id }))
    };

    let mut per_channel: HashMap<&str, usize> = HashMap::new();
    let mut out = Vec::with_capacity(page.len());
    for (i, f) in page.iter().enumerate() {
        let loaded = &channels[f.channel];
        let parent_index = replies_of[i].start - 1;
        *per_channel.entry(loaded.channel.cid.as_str()).or_default() += 1 + replies_of[i].len();
        let mut t = f.doc.clone();
        let mut channel_json = view::channel_json(
            ctx,
            actor,
            &loaded.channel,
            &loaded.config,
            loaded.membership.as_ref(),
            None,
        );
        if shape.member_limit > 0 {
            let members = ctx
                .store
                .channels
                .find_members(std::slice::from_ref(&loaded.channel.cid))
                .await?;
            let member_users =
                view::users_by_id(ctx, members.iter().map(|m| m.user_id.clone()).collect()).await?;
            channel_json["members"] = members
                .iter()
                .take(shape.member_limit as usize)
                .map(|m| {
                    view::member_json(
                        m,
                        member_users
                            .get(&m.user_id)
                            .cloned()
                            .unwrap_or_else(|| json!({ "id": m.user_id })),
                    )
                })
                .collect::<Vec<_>>()
                .into();
        }
        t["channel"] = channel_json;
        t["parent_message"] = rendered[parent_index].clone();
        t["created_by"] = user(&f.parent.user_id);
        t["latest_replies"] = rendered[replies_of[i].clone()].to_vec().into();
        let repliers = participants
            .get(&f.parent.id)
            .map(Vec::as_slice)
            .unwrap_or(&[]);
        let thread_reads: Vec<_> = reads
            .iter()
            .filter(|r| r.parent_id == f.parent.id)
            .collect();
        let last_read_of = |uid: &str| {
            thread_reads
                .iter()
                .find(|r| r.user_id == uid)
                .map(|r| r.last_read)
        };
        let mut list: Vec<Value> = Vec::new();
        let mut seen: HashSet<&str> = HashSet::new();
        let author_first = std::iter::once((f.parent.user_id.as_str(), f.parent.created_at, None))
            .chain(
                repliers
                    .iter()
                    .map(|p| (p.user_id.as_str(), p.first_reply_at, Some(p.last_reply_at))),
            );
        for (uid, joined, last) in author_first {
            if !seen.insert(uid) || list.len() as i64 >= shape.participant_limit {
                continue;
            }
            let mut p = json!({
                "channel_cid": f.parent.cid,
                "thread_id": f.parent.id,
                "user_id": uid,
                "user": user(uid),
                "created_at": rfc3339(joined),
                "last_read_at": rfc3339(last_read_of(uid).unwrap_or(joined)),
            });
            if let Some(l) = last {
                p["last_thread_message_at"] = rfc3339(l).into();
            }
            list.push(p);
        }
        t["thread_participants"] = list.into();
        t["read"] = thread_reads
            .iter()
            .map(|r| {
                let mut v = json!({
                    "user": user(&r.user_id),
                    "last_read": rfc3339(r.last_read),
                    "unread_messages": r.unread_messages,
                });
                if let Some(id) = &r.last_read_message_id {
                    v["last_read_message_id"] = id.clone().into();
                }
                v
            })
            .collect::<Vec<_>>()
            .into();
        out.push(t);
    }
    crate::chat::message::record_reads(ctx, actor, "threads", per_channel).await?;
    Ok(out)
}
