//! Drafts (one per user, channel and thread) and message reminders (one per user and
//! message). A draft's `message` is sealed above this module (`crypto::sealed::drafts`);
//! reminders hold no text.

use async_trait::async_trait;

use super::audit::{Audit, insert_outbox};
use super::db::{Row, query};
use super::{Fields, SqlStore, StoreResult, all, fields_text, parse_fields};
use crate::time::Micros;

#[derive(Debug, Clone, PartialEq)]
pub struct DraftRow {
    pub user_id: String,
    pub cid: String,
    /// The thread's parent message id, or `""` for the channel itself.
    pub parent_key: String,
    /// The draft message object.
    pub message: Fields,
    pub created_at: Micros,
    pub updated_at: Micros,
}

#[derive(Debug, Clone, PartialEq)]
pub struct ReminderRow {
    pub user_id: String,
    pub message_id: String,
    pub cid: String,
    pub remind_at: Option<Micros>,
    pub notified_at: Option<Micros>,
    pub created_at: Micros,
    pub updated_at: Micros,
}

#[async_trait]
pub trait DraftStore: Send + Sync {
    /// Creates or replaces the draft (keeping its creation time).
    async fn upsert_draft(&self, draft: &DraftRow, audit: Audit<'_>) -> StoreResult<DraftRow>;
    async fn find_draft(
        &self,
        user_id: &str,
        cid: &str,
        parent_key: &str,
    ) -> StoreResult<Option<DraftRow>>;
    /// A user's drafts, newest first, at most `cap`.
    async fn find_drafts(&self, user_id: &str, cap: i64) -> StoreResult<Vec<DraftRow>>;
    /// Removes a draft; returns it.
    async fn delete_draft(
        &self,
        user_id: &str,
        cid: &str,
        parent_key: &str,
        audit: Audit<'_>,
    ) -> StoreResult<Option<DraftRow>>;

    /// Creates a reminder; a second one for the same user and message is a `Conflict`.
    async fn insert_reminder(&self, r: &ReminderRow, audit: Audit<'_>) -> StoreResult<()>;
    /// Sets `remind_at` (clearing `notified_at`); returns the updated reminder.
    async fn update_reminder(
        &self,
        r: &ReminderRow,
        audit: Audit<'_>,
    ) -> StoreResult<Option<ReminderRow>>;
    async fn delete_reminder(
        &self,
        user_id: &str,
        message_id: &str,
        audit: Audit<'_>,
    ) -> StoreResult<Option<ReminderRow>>;
    async fn find_reminder(
        &self,
        user_id: &str,
        message_id: &str,
    ) -> StoreResult<Option<ReminderRow>>;
    /// A user's reminders, by `remind_at` (unset last), at most `cap`.
    async fn find_reminders(&self, user_id: &str, cap: i64) -> StoreResult<Vec<ReminderRow>>;
    /// Claims up to `limit` reminders due at `now` that no node has announced: each is
    /// marked notified in the same statement, so exactly one caller gets each.
    async fn claim_due_reminders(&self, now: Micros, limit: i64) -> StoreResult<Vec<ReminderRow>>;
}

const DRAFT_COLS: &str = "user_id, cid, parent_key, message, created_at, updated_at";
const REMINDER_COLS: &str =
    "user_id, message_id, cid, remind_at, notified_at, created_at, updated_at";

fn draft_from(r: &Row) -> Result<DraftRow, sqlx::Error> {
    Ok(DraftRow {
        user_id: r.try_get("user_id")?,
        cid: r.try_get("cid")?,
        parent_key: r.try_get("parent_key")?,
        message: parse_fields(&r.try_get::<String, _>("message")?),
        created_at: r.try_get("created_at")?,
        updated_at: r.try_get("updated_at")?,
    })
}

fn reminder_from(r: &Row) -> Result<ReminderRow, sqlx::Error> {
    Ok(ReminderRow {
        user_id: r.try_get("user_id")?,
        message_id: r.try_get("message_id")?,
        cid: r.try_get("cid")?,
        remind_at: r.try_get("remind_at")?,
        notified_at: r.try_get("notified_at")?,
        created_at: r.try_get("created_at")?,
        updated_at: r.try_get("updated_at")?,
    })
}

#[async_trait]
impl DraftStore for SqlStore {
    async fn upsert_draft(&self, d: &DraftRow, audit: Audit<'_>) -> StoreResult<DraftRow> {
        let mut tx = self.db.begin_write().await?;
        let row = query(format!(
            "INSERT INTO drafts ({DRAFT_COLS}) VALUES ($1, $2, $3, $4, $5, $6) \
             ON CONFLICT (user_id, cid, parent_key) DO UPDATE SET message = excluded.message, \
             updated_at = excluded.updated_at RETURNING {DRAFT_COLS}"
        ))
        .bind(&d.user_id)
        .bind(&d.cid)
        .bind(&d.parent_key)
        .bind(fields_text(&d.message))
        .bind(d.created_at)
        .bind(d.updated_at)
        .fetch_one(&mut tx)
        .await?;
        insert_outbox(&mut tx, audit).await?;
        tx.commit().await?;
        Ok(draft_from(&row)?)
    }

    async fn find_draft(
        &self,
        user_id: &str,
        cid: &str,
        parent_key: &str,
    ) -> StoreResult<Option<DraftRow>> {
        let row = query(format!(
            "SELECT {DRAFT_COLS} FROM drafts WHERE user_id = $1 AND cid = $2 AND parent_key = $3"
        ))
        .bind(user_id)
        .bind(cid)
        .bind(parent_key)
        .fetch_optional(&self.db)
        .await?;
        Ok(row.as_ref().map(draft_from).transpose()?)
    }

    async fn find_drafts(&self, user_id: &str, cap: i64) -> StoreResult<Vec<DraftRow>> {
        let rows = query(format!(
            "SELECT {DRAFT_COLS} FROM drafts WHERE user_id = $1 \
             ORDER BY created_at DESC, cid, parent_key LIMIT $2"
        ))
        .bind(user_id)
        .bind(cap)
        .fetch_all(&self.db)
        .await?;
        all(rows, draft_from)
    }

    async fn delete_draft(
        &self,
        user_id: &str,
        cid: &str,
        parent_key: &str,
        audit: Audit<'_>,
    ) -> StoreResult<Option<DraftRow>> {
        let mut tx = self.db.begin_write().await?;
        let row = query(format!(
            "DELETE FROM drafts WHERE user_id = $1 AND cid = $2 AND parent_key = $3 \
             RETURNING {DRAFT_COLS}"
        ))
        .bind(user_id)
        .bind(cid)
        .bind(parent_key)
        .fetch_optional(&mut tx)
        .await?;
        let draft = row.as_ref().map(draft_from).transpose()?;
        if draft.is_some() {
            insert_outbox(&mut tx, audit).await?;
        }
        tx.commit().await?;
        Ok(draft)
    }

    async fn insert_reminder(&self, r: &ReminderRow, audit: Audit<'_>) -> StoreResult<()> {
        let mut tx = self.db.begin_write().await?;
        let inserted = query(format!(
            "INSERT INTO reminders ({REMINDER_COLS}) VALUES ($1, $2, $3, $4, NULL, $5, $6) \
             ON CONFLICT (user_id, message_id) DO NOTHING"
        ))
        .bind(&r.user_id)
        .bind(&r.message_id)
        .bind(&r.cid)
        .bind(r.remind_at)
        .bind(r.created_at)
        .bind(r.updated_at)
        .execute(&mut tx)
        .await?;
        if inserted == 0 {
            tx.rollback().await?;
            return Err(super::StoreError::Conflict(format!(
                "a reminder for message {} already exists",
                r.message_id
            )));
        }
        insert_outbox(&mut tx, audit).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn update_reminder(
        &self,
        r: &ReminderRow,
        audit: Audit<'_>,
    ) -> StoreResult<Option<ReminderRow>> {
        let mut tx = self.db.begin_write().await?;
        let row = query(format!(
            "UPDATE reminders SET remind_at = $3, notified_at = NULL, updated_at = $4 \
             WHERE user_id = $1 AND message_id = $2 RETURNING {REMINDER_COLS}"
        ))
        .bind(&r.user_id)
        .bind(&r.message_id)
        .bind(r.remind_at)
        .bind(r.updated_at)
        .fetch_optional(&mut tx)
        .await?;
        let updated = row.as_ref().map(reminder_from).transpose()?;
        if updated.is_some() {
            insert_outbox(&mut tx, audit).await?;
        }
        tx.commit().await?;
        Ok(updated)
    }

    async fn delete_reminder(
        &self,
        user_id: &str,
        message_id: &str,
        audit: Audit<'_>,
    ) -> StoreResult<Option<ReminderRow>> {
        let mut tx = self.db.begin_write().await?;
        let row = query(format!(
            "DELETE FROM reminders WHERE user_id = $1 AND message_id = $2 \
             RETURNING {REMINDER_COLS}"
        ))
        .bind(user_id)
        .bind(message_id)
        .fetch_optional(&mut tx)
        .await?;
        let removed = row.as_ref().map(reminder_from).transpose()?;
        if removed.is_some() {
            insert_outbox(&mut tx, audit).await?;
        }
        tx.commit().await?;
        Ok(removed)
    }

    async fn find_reminder(
        &self,
        user_id: &str,
        message_id: &str,
    ) -> StoreResult<Option<ReminderRow>> {
        let row = query(format!(
            "SELECT {REMINDER_COLS} FROM reminders WHERE user_id = $1 AND message_id = $2"
        ))
        .bind(user_id)
        .bind(message_id)
        .fetch_optional(&self.db)
        .await?;
        Ok(row.as_ref().map(reminder_from).transpose()?)
    }

    async fn find_reminders(&self, user_id: &str, cap: i64) -> StoreResult<Vec<ReminderRow>> {
        let rows = query(format!(
            "SELECT {REMINDER_COLS} FROM reminders WHERE user_id = $1 \
             ORDER BY CASE WHEN remind_at IS NULL THEN 1 ELSE 0 END, remind_at, created_at, \
             message_id LIMIT $2"
        ))
        .bind(user_id)
        .bind(cap)
        .fetch_all(&self.db)
        .await?;
        all(rows, reminder_from)
    }

    async fn claim_due_reminders(&self, now: Micros, limit: i64) -> StoreResult<Vec<ReminderRow>> {
        let mut tx = self.db.begin_write().await?;
        let due = query(format!(
            "SELECT {REMINDER_COLS} FROM reminders WHERE notified_at IS NULL \
             AND remind_at IS NOT NULL AND remind_at <= $1 ORDER BY remind_at LIMIT $2"
        ))
        .bind(now)
        .bind(limit)
        .fetch_all(&mut tx)
        .await?;
        let mut claimed = Vec::new();
        for r in all(due, reminder_from)? {
            // Conditional: a node that read the same row first has already claimed it.
            let won = query(
                "UPDATE reminders SET notified_at = $3 WHERE user_id = $1 AND message_id = $2 \
                 AND notified_at IS NULL AND remind_at = $4",
            )
            .bind(&r.user_id)
            .bind(&r.message_id)
            .bind(now)
            .bind(r.remind_at)
            .execute(&mut tx)
            .await?;
            if won > 0 {
                claimed.push(r);
            }
        }
        tx.commit().await?;
        Ok(claimed)
    }
}
