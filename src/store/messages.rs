//! Messages: channel messages and thread replies, paged by cursor. Their reactions live in
//! `reactions.rs` and their search (text and blind-index tokens) in `search.rs`, behind the
//! same trait.

use async_trait::async_trait;

use super::audit::{Audit, execute_audited, insert_outbox};
use super::db::{Db, Query, Row, query};
use super::reactions::{self, ReactionRow};
use super::search;
use super::{Fields, SqlStore, StoreError, StoreResult, all, fields_text, parse_fields};
use crate::time::Micros;

#[derive(Debug, Clone, PartialEq)]
pub struct MessageRow {
    pub id: String,
    pub cid: String,
    pub user_id: String,
    /// `regular`, `reply`, `deleted`, `system`.
    pub kind: String,
    pub text: String,
    /// Everything else the client sent: attachments, mentions, custom fields.
    pub data: Fields,
    pub parent_id: Option<String>,
    pub show_in_channel: bool,
    pub silent: bool,
    pub pinned: bool,
    /// Derived from the replies; ignored on write.
    pub reply_count: i64,
    pub created_at: Micros,
    pub updated_at: Micros,
    pub deleted_at: Option<Micros>,
    /// When the text last changed by an edit (`message_text_updated_at`); `None` until then.
    /// Written by `update_message`, ignored on insert.
    pub text_updated_at: Option<Micros>,
}

/// Where a page of messages starts, relative to a message (its time and id).
#[derive(Debug, Clone, PartialEq)]
pub enum Cursor {
    /// The newest messages.
    Latest,
    /// Messages before (or up to, when `inclusive`) the given position, newest first.
    Before {
        at: Micros,
        id: String,
        inclusive: bool,
    },
    /// Messages after (or from, when `inclusive`) the given position, oldest first.
    After {
        at: Micros,
        id: String,
        inclusive: bool,
    },
}

#[async_trait]
pub trait MessageStore: Send + Sync {
    /// Stores a new message, and in the same transaction moves the channel's
    /// `last_message_at`, counts the parent's reply, and (when `count_unread`) adds one
    /// unread message for every other member. A duplicate id is a [`StoreError::Conflict`].
    async fn insert_message(
        &self,
        message: &MessageRow,
        count_unread: bool,
        audit: Audit<'_>,
    ) -> StoreResult<()> {
        self.insert_message_with_tokens(message, count_unread, &[], audit)
            .await
    }
    /// As [`MessageStore::insert_message`], storing the message's blind-index tokens in the
    /// same transaction.
    async fn insert_message_with_tokens(
        &self,
        message: &MessageRow,
        count_unread: bool,
        tokens: &[String],
        audit: Audit<'_>,
    ) -> StoreResult<()>;
    async fn find_message(&self, id: &str) -> StoreResult<Option<MessageRow>>;
    async fn find_messages(&self, ids: &[String]) -> StoreResult<Vec<MessageRow>>;
    /// A page of channel messages (thread replies only when shown in the channel) newer
    /// than `since`, in ascending order.
    async fn find_channel_messages(
        &self,
        cid: &str,
        since: Option<Micros>,
        cursor: &Cursor,
        limit: i64,
    ) -> StoreResult<Vec<MessageRow>>;
    /// A page of a thread's replies, in ascending order.
    async fn find_replies(
        &self,
        parent_id: &str,
        cursor: &Cursor,
        limit: i64,
    ) -> StoreResult<Vec<MessageRow>>;
    async fn find_pinned_messages(
        &self,
        cid: &str,
        since: Option<Micros>,
        limit: i64,
    ) -> StoreResult<Vec<MessageRow>>;
    /// Messages in `cids` whose text contains each whitespace-separated part of `needle`
    /// (case-insensitive, anywhere), newest first. Sealed text matches whole words.
    async fn search_messages(
        &self,
        cids: &[String],
        needle: &str,
        limit: i64,
        offset: i64,
    ) -> StoreResult<Vec<MessageRow>>;
    /// Messages in `cids` with, for every word of `needle`, a word starting with it
    /// (`$autocomplete`), newest first. Plain text matches each word anywhere
    /// (case-insensitive); sealed text matches through the blind index of word prefixes.
    async fn search_messages_by_prefix(
        &self,
        cids: &[String],
        needle: &str,
        limit: i64,
        offset: i64,
    ) -> StoreResult<Vec<MessageRow>>;
    /// Channel messages after `after` not written by `user_id` (thread-only replies excluded).
    async fn count_messages_after(
        &self,
        cid: &str,
        after: Micros,
        user_id: &str,
    ) -> StoreResult<i64>;
    /// Writes text, data, type, pinned, updated_at and deleted_at.
    async fn update_message(&self, message: &MessageRow, audit: Audit<'_>) -> StoreResult<()>;
    /// Removes a message and its reactions (its replies stay, as in Stream).
    async fn delete_message(&self, id: &str, audit: Audit<'_>) -> StoreResult<()>;
    /// Stores a reaction; with `enforce_unique`, removes the user's other reactions on the
    /// message first. Returns true when it replaced an existing reaction of that type.
    async fn upsert_reaction(
        &self,
        reaction: &ReactionRow,
        enforce_unique: bool,
    ) -> StoreResult<bool>;
    async fn delete_reaction(
        &self,
        message_id: &str,
        user_id: &str,
        kind: &str,
    ) -> StoreResult<Option<ReactionRow>>;
    /// All reactions on the given messages, oldest first.
    async fn find_reactions(&self, message_ids: &[String]) -> StoreResult<Vec<ReactionRow>>;
    /// Replaces the blind-index tokens of a message.
    async fn replace_message_tokens(&self, message_id: &str, tokens: &[String]) -> StoreResult<()>;
    /// Drops the blind-index tokens of every message by `user_id` (their key is shredded).
    async fn delete_tokens_of_author(&self, user_id: &str) -> StoreResult<()>;
    /// Ids of the messages written by `user_id`, in id order after `after`.
    async fn find_message_ids_by_author(
        &self,
        user_id: &str,
        after: &str,
        limit: i64,
    ) -> StoreResult<Vec<String>>;
    /// Messages (not deleted, not truncated) that carry at least `required` of `tokens`,
    /// newest first.
    async fn search_messages_by_tokens(
        &self,
        tokens: &[String],
        required: i64,
        limit: i64,
        offset: i64,
    ) -> StoreResult<Vec<MessageRow>>;
}

pub(super) const MESSAGE_COLS: &str = "m.id, m.cid, m.user_id, m.type, m.text, m.data, \
    m.parent_id, m.show_in_channel, m.silent, m.pinned, \
    (SELECT COUNT(*) FROM messages r WHERE r.parent_id = m.id) AS reply_count, \
    m.created_at, m.updated_at, m.deleted_at, m.text_updated_at";

pub(super) fn message_from(row: &Row) -> Result<MessageRow, sqlx::Error> {
    Ok(MessageRow {
        id: row.try_get("id")?,
        cid: row.try_get("cid")?,
        user_id: row.try_get("user_id")?,
        kind: row.try_get("type")?,
        text: row.try_get("text")?,
        data: parse_fields(&row.try_get::<String, _>("data")?),
        parent_id: row.try_get("parent_id")?,
        show_in_channel: row.try_get("show_in_channel")?,
        silent: row.try_get("silent")?,
        pinned: row.try_get("pinned")?,
        reply_count: row.try_get("reply_count")?,
        created_at: row.try_get("created_at")?,
        updated_at: row.try_get("updated_at")?,
        deleted_at: row.try_get("deleted_at")?,
        text_updated_at: row.try_get("text_updated_at")?,
    })
}

/// Appends the cursor condition and returns whether rows come newest first.
fn push_cursor(qb: &mut Query, cursor: &Cursor) -> bool {
    match cursor {
        Cursor::Latest => true,
        Cursor::Before { at, id, inclusive } => {
            let op = if *inclusive { "<=" } else { "<" };
            qb.push(" AND (m.created_at < ").push_bind(*at);
            qb.push(" OR (m.created_at = ").push_bind(*at);
            qb.push(format!(" AND m.id {op} "))
                .push_bind(id.clone())
                .push("))");
            true
        }
        Cursor::After { at, id, inclusive } => {
            let op = if *inclusive { ">=" } else { ">" };
            qb.push(" AND (m.created_at > ").push_bind(*at);
            qb.push(" OR (m.created_at = ").push_bind(*at);
            qb.push(format!(" AND m.id {op} "))
                .push_bind(id.clone())
                .push("))");
            false
        }
    }
}

async fn fetch_page(
    db: &Db,
    mut qb: Query,
    newest_first: bool,
    limit: i64,
) -> StoreResult<Vec<MessageRow>> {
    let order = if newest_first { "DESC" } else { "ASC" };
    qb.push(format!(
        " ORDER BY m.created_at {order}, m.id {order} LIMIT "
    ))
    .push_bind(limit);
    let mut rows = all(qb.fetch_all(db).await?, message_from)?;
    if newest_first {
        rows.reverse();
    }
    Ok(rows)
}

#[async_trait]
impl MessageStore for SqlStore {
    async fn insert_message_with_tokens(
        &self,
        m: &MessageRow,
        count_unread: bool,
        tokens: &[String],
        audit: Audit<'_>,
    ) -> StoreResult<()> {
        let mut tx = self.db.begin_write().await?;
        let inserted = query(
            "INSERT INTO messages (id, cid, user_id, type, text, data, parent_id, show_in_channel, \
             silent, pinned, created_at, updated_at, deleted_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13) ON CONFLICT (id) DO \
             NOTHING",
        )
        .bind(&m.id)
        .bind(&m.cid)
        .bind(&m.user_id)
        .bind(&m.kind)
        .bind(&m.text)
        .bind(fields_text(&m.data))
        .bind(&m.parent_id)
        .bind(m.show_in_channel)
        .bind(m.silent)
        .bind(m.pinned)
        .bind(m.created_at)
        .bind(m.updated_at)
        .bind(m.deleted_at)
        .execute(&mut tx)
        .await?
            == 1;
        if !inserted {
            return Err(StoreError::Conflict(format!(
                "a message with ID {} already exists",
                m.id
            )));
        }
        // Tokens in one statement; the channel row last, so its lock (which every
        // send to this channel waits for on PostgreSQL) is held only until commit.
        if !tokens.is_empty() {
            let mut qb = query("INSERT INTO message_search_tokens (token, message_id)");
            qb.push_values(tokens, |token| vec![token.into(), (&m.id).into()]);
            qb.push(" ON CONFLICT DO NOTHING");
            qb.execute(&mut tx).await?;
        }
        let in_channel = m.parent_id.is_none() || m.show_in_channel;
        if in_channel {
            // Writing a message marks the channel read for its author, as in Stream,
            // and counts it unread for the others. One statement: two (the author's
            // row, then the others') lock the rows of concurrent senders in opposite
            // orders and deadlock on PostgreSQL.
            let others = if count_unread {
                "unread_messages + 1"
            } else {
                "unread_messages"
            };
            let filter = if count_unread {
                ""
            } else {
                " AND user_id = $2"
            };
            let sql = format!(
                "UPDATE channel_reads SET \
                 unread_messages = CASE WHEN user_id = $2 THEN 0 ELSE {others} END, \
                 last_read = CASE WHEN user_id = $2 THEN $3 ELSE last_read END, \
                 last_read_message_id = CASE WHEN user_id = $2 THEN $4 ELSE last_read_message_id \
                 END \
                 WHERE cid = $1{filter}"
            );
            query(sql)
                .bind(&m.cid)
                .bind(&m.user_id)
                .bind(m.created_at)
                .bind(&m.id)
                .execute(&mut tx)
                .await?;
            query(
                "UPDATE channels SET last_message_at = $2, message_count = message_count + 1 \
                 WHERE cid = $1",
            )
            .bind(&m.cid)
            .bind(m.created_at)
            .execute(&mut tx)
            .await?;
        }
        insert_outbox(&mut tx, audit).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn find_message(&self, id: &str) -> StoreResult<Option<MessageRow>> {
        let sql = format!("SELECT {MESSAGE_COLS} FROM messages m WHERE m.id = $1");
        let row = query(sql).bind(id).fetch_optional(&self.db).await?;
        Ok(row.as_ref().map(message_from).transpose()?)
    }

    async fn find_messages(&self, ids: &[String]) -> StoreResult<Vec<MessageRow>> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let mut qb = query(format!(
            "SELECT {MESSAGE_COLS} FROM messages m WHERE m.id IN "
        ));
        qb.push_list(ids);
        all(qb.fetch_all(&self.db).await?, message_from)
    }

    async fn find_channel_messages(
        &self,
        cid: &str,
        since: Option<Micros>,
        cursor: &Cursor,
        limit: i64,
    ) -> StoreResult<Vec<MessageRow>> {
        let mut qb = query(format!(
            "SELECT {MESSAGE_COLS} FROM messages m WHERE m.cid = "
        ));
        qb.push_bind(cid.to_string());
        qb.push(" AND (m.parent_id IS NULL OR m.show_in_channel = TRUE)");
        if let Some(since) = since {
            qb.push(" AND m.created_at > ").push_bind(since);
        }
        let newest_first = push_cursor(&mut qb, cursor);
        fetch_page(&self.db, qb, newest_first, limit).await
    }

    async fn find_replies(
        &self,
        parent_id: &str,
        cursor: &Cursor,
        limit: i64,
    ) -> StoreResult<Vec<MessageRow>> {
        let mut qb = query(format!(
            "SELECT {MESSAGE_COLS} FROM messages m WHERE m.parent_id = "
        ));
        qb.push_bind(parent_id.to_string());
        let newest_first = push_cursor(&mut qb, cursor);
        fetch_page(&self.db, qb, newest_first, limit).await
    }

    async fn find_pinned_messages(
        &self,
        cid: &str,
        since: Option<Micros>,
        limit: i64,
    ) -> StoreResult<Vec<MessageRow>> {
        let mut qb = query(format!(
            "SELECT {MESSAGE_COLS} FROM messages m WHERE m.cid = "
        ));
        qb.push_bind(cid.to_string());
        qb.push(" AND m.pinned = TRUE AND m.deleted_at IS NULL");
        if let Some(since) = since {
            qb.push(" AND m.created_at > ").push_bind(since);
        }
        fetch_page(&self.db, qb, true, limit).await
    }

    async fn search_messages(
        &self,
        cids: &[String],
        needle: &str,
        limit: i64,
        offset: i64,
    ) -> StoreResult<Vec<MessageRow>> {
        search::search_messages(&self.db, cids, needle, limit, offset).await
    }

    async fn search_messages_by_prefix(
        &self,
        cids: &[String],
        needle: &str,
        limit: i64,
        offset: i64,
    ) -> StoreResult<Vec<MessageRow>> {
        search::search_message_words(&self.db, cids, needle, limit, offset).await
    }

    async fn count_messages_after(
        &self,
        cid: &str,
        after: Micros,
        user_id: &str,
    ) -> StoreResult<i64> {
        let n: i64 = query(
            "SELECT COUNT(*) FROM messages WHERE cid = $1 AND created_at > $2 AND user_id <> $3 \
             AND deleted_at IS NULL AND (parent_id IS NULL OR show_in_channel = TRUE)",
        )
        .bind(cid)
        .bind(after)
        .bind(user_id)
        .scalar_one(&self.db)
        .await?;
        Ok(n)
    }

    async fn update_message(&self, m: &MessageRow, audit: Audit<'_>) -> StoreResult<()> {
        execute_audited(&self.db, query(
            "UPDATE messages SET text = $2, data = $3, type = $4, pinned = $5, updated_at = $6, \
             deleted_at = $7, text_updated_at = $8 WHERE id = $1",
        )
        .bind(&m.id)
        .bind(&m.text)
        .bind(fields_text(&m.data))
        .bind(&m.kind)
        .bind(m.pinned)
        .bind(m.updated_at)
        .bind(m.deleted_at)
        .bind(m.text_updated_at), audit).await?;
        Ok(())
    }

    async fn delete_message(&self, id: &str, audit: Audit<'_>) -> StoreResult<()> {
        let mut tx = self.db.begin_write().await?;
        query("DELETE FROM reactions WHERE message_id = $1")
            .bind(id)
            .execute(&mut tx)
            .await?;
        query("DELETE FROM messages WHERE id = $1")
            .bind(id)
            .execute(&mut tx)
            .await?;
        query("DELETE FROM message_hides WHERE message_id = $1")
            .bind(id)
            .execute(&mut tx)
            .await?;
        insert_outbox(&mut tx, audit).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn upsert_reaction(&self, r: &ReactionRow, enforce_unique: bool) -> StoreResult<bool> {
        reactions::upsert_reaction(&self.db, r, enforce_unique).await
    }

    async fn delete_reaction(
        &self,
        message_id: &str,
        user_id: &str,
        kind: &str,
    ) -> StoreResult<Option<ReactionRow>> {
        reactions::delete_reaction(&self.db, message_id, user_id, kind).await
    }

    async fn find_reactions(&self, message_ids: &[String]) -> StoreResult<Vec<ReactionRow>> {
        reactions::find_reactions(&self.db, message_ids).await
    }

    async fn replace_message_tokens(&self, message_id: &str, tokens: &[String]) -> StoreResult<()> {
        search::replace_message_tokens(&self.db, message_id, tokens).await
    }

    async fn delete_tokens_of_author(&self, user_id: &str) -> StoreResult<()> {
        search::delete_tokens_of_author(&self.db, user_id).await
    }

    async fn find_message_ids_by_author(
        &self,
        user_id: &str,
        after: &str,
        limit: i64,
    ) -> StoreResult<Vec<String>> {
        Ok(
            query("SELECT id FROM messages WHERE user_id = $1 AND id > $2 ORDER BY id LIMIT $3")
                .bind(user_id)
                .bind(after)
                .bind(limit)
                .scalar_all(&self.db)
                .await?,
        )
    }

    async fn search_messages_by_tokens(
        &self,
        tokens: &[String],
        required: i64,
        limit: i64,
        offset: i64,
    ) -> StoreResult<Vec<MessageRow>> {
        search::search_messages_by_tokens(&self.db, tokens, required, limit, offset).await
    }
}
