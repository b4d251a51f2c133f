//! Threads: a parent message and its replies. Who takes part and how many replies a thread
//! has are derived from `messages`; this aggregate stores what is not: the thread's title
//! and custom data (`threads`), each participant's read position (`thread_reads`), and the
//! delivery receipts kept next to the channel read state (`channel_reads.last_delivered_*`).

use async_trait::async_trait;

use super::audit::{Audit, execute_audited};
use super::db::{Row, query};
use super::{Fields, SqlStore, StoreResult, all, fields_text, parse_fields};
use crate::time::Micros;

/// A thread's own data (title and custom fields); absent until first updated.
#[derive(Debug, Clone, PartialEq)]
pub struct ThreadRow {
    pub parent_id: String,
    pub cid: String,
    pub data: Fields,
    pub created_at: Micros,
    pub updated_at: Micros,
}

/// A user's read position in a thread. `unread_messages` is derived (replies by others after
/// `last_read`) and ignored on write.
#[derive(Debug, Clone, PartialEq)]
pub struct ThreadReadRow {
    pub parent_id: String,
    pub user_id: String,
    pub cid: String,
    pub last_read: Micros,
    pub last_read_message_id: Option<String>,
    pub unread_messages: i64,
}

/// A replier in a thread: how many replies they wrote and when.
#[derive(Debug, Clone, PartialEq)]
pub struct ParticipantRow {
    pub parent_id: String,
    pub user_id: String,
    pub replies: i64,
    pub first_reply_at: Micros,
    pub last_reply_at: Micros,
}

#[async_trait]
pub trait ThreadStore: Send + Sync {
    async fn find_threads(&self, parent_ids: &[String]) -> StoreResult<Vec<ThreadRow>>;
    /// Creates or replaces a thread's data (not its `created_at`), with its audit records.
    async fn upsert_thread(&self, thread: &ThreadRow, audit: Audit<'_>) -> StoreResult<()>;
    /// The repliers of each thread, oldest first.
    async fn find_participants(&self, parent_ids: &[String]) -> StoreResult<Vec<ParticipantRow>>;
    /// Parents (with at least one reply) that `user_id` wrote or replied to, newest reply
    /// first, at most `limit`.
    async fn find_thread_ids_for_user(&self, user_id: &str, limit: i64)
    -> StoreResult<Vec<String>>;
    /// The read state of `user_id` (all users when `None`) in the given threads.
    async fn find_thread_reads(
        &self,
        parent_ids: &[String],
        user_id: Option<&str>,
    ) -> StoreResult<Vec<ThreadReadRow>>;
    /// Sets a read position; with `only_if_absent`, keeps an existing one.
    async fn upsert_thread_read(
        &self,
        read: &ThreadReadRow,
        only_if_absent: bool,
    ) -> StoreResult<()>;
    /// Records that `message_id` (written at `message_at`) was delivered to a member at
    /// `at`, unless a newer message was already delivered; whether it changed anything.
    async fn update_delivered(
        &self,
        cid: &str,
        user_id: &str,
        at: Micros,
        message_id: &str,
        message_at: Micros,
    ) -> StoreResult<bool>;
}

fn thread_from(row: &Row) -> Result<ThreadRow, sqlx::Error> {
    Ok(ThreadRow {
        parent_id: row.try_get("parent_id")?,
        cid: row.try_get("cid")?,
        data: parse_fields(&row.try_get::<String, _>("data")?),
        created_at: row.try_get("created_at")?,
        updated_at: row.try_get("updated_at")?,
    })
}

fn read_from(row: &Row) -> Result<ThreadReadRow, sqlx::Error> {
    Ok(ThreadReadRow {
        parent_id: row.try_get("parent_id")?,
        user_id: row.try_get("user_id")?,
        cid: row.try_get("cid")?,
        last_read: row.try_get("last_read")?,
        last_read_message_id: row.try_get("last_read_message_id")?,
        unread_messages: row.try_get("unread_messages")?,
    })
}

fn participant_from(row: &Row) -> Result<ParticipantRow, sqlx::Error> {
    Ok(ParticipantRow {
        parent_id: row.try_get("parent_id")?,
        user_id: row.try_get("user_id")?,
        replies: row.try_get("replies")?,
        first_reply_at: row.try_get("first_reply_at")?,
        last_reply_at: row.try_get("last_reply_at")?,
    })
}

#[async_trait]
impl ThreadStore for SqlStore {
    async fn find_threads(&self, parent_ids: &[String]) -> StoreResult<Vec<ThreadRow>> {
        if parent_ids.is_empty() {
            return Ok(Vec::new());
        }
        let mut qb = query(
            "SELECT parent_id, cid, data, created_at, updated_at FROM threads WHERE parent_id IN ",
        );
        qb.push_list(parent_ids);
        all(qb.fetch_all(&self.db).await?, thread_from)
    }

    async fn upsert_thread(&self, t: &ThreadRow, audit: Audit<'_>) -> StoreResult<()> {
        let write = query(
            "INSERT INTO threads (parent_id, cid, data, created_at, updated_at) \
             VALUES ($1, $2, $3, $4, $5) ON CONFLICT (parent_id) DO UPDATE SET \
             data = excluded.data, updated_at = excluded.updated_at",
        )
        .bind(&t.parent_id)
        .bind(&t.cid)
        .bind(fields_text(&t.data))
        .bind(t.created_at)
        .bind(t.updated_at);
        execute_audited(&self.db, write, audit).await?;
        Ok(())
    }

    async fn find_participants(&self, parent_ids: &[String]) -> StoreResult<Vec<ParticipantRow>> {
        if parent_ids.is_empty() {
            return Ok(Vec::new());
        }
        let mut qb = query(
            "SELECT parent_id, user_id, COUNT(*) AS replies, MIN(created_at) AS first_reply_at, \
             MAX(created_at) AS last_reply_at FROM messages WHERE parent_id IN ",
        );
        qb.push_list(parent_ids);
        qb.push(" GROUP BY parent_id, user_id ORDER BY parent_id, MIN(created_at)");
        all(qb.fetch_all(&self.db).await?, participant_from)
    }

    async fn find_thread_ids_for_user(
        &self,
        user_id: &str,
        limit: i64,
    ) -> StoreResult<Vec<String>> {
        let rows = query(
            "SELECT r.parent_id AS id, MAX(r.created_at) AS last_at FROM messages r \
             WHERE r.parent_id IN ( \
               SELECT m.parent_id FROM messages m WHERE m.user_id = $1 AND m.parent_id IS NOT NULL \
               UNION SELECT p.id FROM messages p WHERE p.user_id = $1 AND p.parent_id IS NULL) \
             GROUP BY r.parent_id ORDER BY MAX(r.created_at) DESC, r.parent_id LIMIT $2",
        )
        .bind(user_id)
        .bind(limit)
        .fetch_all(&self.db)
        .await?;
        rows.iter()
            .map(|r| r.try_get::<String, _>("id").map_err(Into::into))
            .collect()
    }

    async fn find_thread_reads(
        &self,
        parent_ids: &[String],
        user_id: Option<&str>,
    ) -> StoreResult<Vec<ThreadReadRow>> {
        if parent_ids.is_empty() {
            return Ok(Vec::new());
        }
        let mut qb = query(
            "SELECT t.parent_id, t.user_id, t.cid, t.last_read, t.last_read_message_id, \
             (SELECT COUNT(*) FROM messages m WHERE m.parent_id = t.parent_id \
              AND m.user_id <> t.user_id AND m.created_at > t.last_read) AS unread_messages \
             FROM thread_reads t WHERE t.parent_id IN ",
        );
        qb.push_list(parent_ids);
        if let Some(u) = user_id {
            qb.push(" AND t.user_id = ").push_bind(u.to_string());
        }
        qb.push(" ORDER BY t.parent_id, t.user_id");
        all(qb.fetch_all(&self.db).await?, read_from)
    }

    async fn upsert_thread_read(&self, r: &ThreadReadRow, only_if_absent: bool) -> StoreResult<()> {
        let conflict = if only_if_absent {
            "DO NOTHING"
        } else {
            "DO UPDATE SET last_read = excluded.last_read, \
             last_read_message_id = excluded.last_read_message_id"
        };
        query(format!(
            "INSERT INTO thread_reads (parent_id, user_id, cid, last_read, last_read_message_id) \
             VALUES ($1, $2, $3, $4, $5) ON CONFLICT (parent_id, user_id) {conflict}"
        ))
        .bind(&r.parent_id)
        .bind(&r.user_id)
        .bind(&r.cid)
        .bind(r.last_read)
        .bind(&r.last_read_message_id)
        .execute(&self.db)
        .await?;
        Ok(())
    }

    async fn update_delivered(
        &self,
        cid: &str,
        user_id: &str,
        at: Micros,
        message_id: &str,
        message_at: Micros,
    ) -> StoreResult<bool> {
        let changed = query(
            "UPDATE channel_reads SET last_delivered_at = $3, last_delivered_message_id = $4 \
             WHERE cid = $1 AND user_id = $2 AND (last_delivered_message_id IS NULL OR \
             COALESCE((SELECT m.created_at FROM messages m \
                       WHERE m.id = channel_reads.last_delivered_message_id), 0) < $5)",
        )
        .bind(cid)
        .bind(user_id)
        .bind(at)
        .bind(message_id)
        .bind(message_at)
        .execute(&self.db)
        .await?;
        Ok(changed == 1)
    }
}
