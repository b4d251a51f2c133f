//! Legal holds and the row work of erasure and retention.

use async_trait::async_trait;

use super::audit::{Audit, execute_audited, execute_audited_if_changed, insert_outbox};
use super::db::{Row, query};
use super::{SqlStore, StoreResult, all};
use crate::time::Micros;

/// A legal hold; `reason` is sealed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HoldRow {
    pub id: String,
    pub scope: String,
    pub target: String,
    pub reason: String,
    pub placed_by: Option<String>,
    pub placed_at: Micros,
    pub released_by: Option<String>,
    pub released_at: Option<Micros>,
}

/// What an erasure removed.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct EraseCounts {
    pub messages: u64,
    pub reactions: u64,
    pub memberships: u64,
    pub sessions: u64,
    pub user_rows: u64,
}

/// Legal holds and the row work of erasure.
#[async_trait]
pub trait ComplianceStore: Send + Sync {
    async fn insert_hold(&self, hold: &HoldRow, audit: Audit<'_>) -> StoreResult<()>;
    /// Releases an active hold; false when it is unknown or already released.
    async fn release_hold(
        &self,
        id: &str,
        by: Option<&str>,
        at: Micros,
        audit: Audit<'_>,
    ) -> StoreResult<bool>;
    async fn find_hold(&self, id: &str) -> StoreResult<Option<HoldRow>>;
    /// Every hold, newest first (with `active_only`, unreleased ones).
    async fn find_holds(&self, active_only: bool) -> StoreResult<Vec<HoldRow>>;
    /// Active holds on the user or on any channel they wrote in.
    async fn find_holds_covering_user(&self, user_id: &str) -> StoreResult<Vec<HoldRow>>;
    /// Removes a user's rows in one transaction: reactions, messages (`hard_messages`:
    /// deleted; else emptied and marked deleted), memberships and read state, interactive
    /// credentials and sessions, and the user row (`hard_user`: deleted; else emptied and
    /// marked deleted).
    async fn erase_user_rows(
        &self,
        user_id: &str,
        hard_messages: bool,
        hard_user: bool,
        at: Micros,
        audit: Audit<'_>,
    ) -> StoreResult<EraseCounts>;
    /// Messages in channels of `channel_type` created before `before`: how many there are,
    /// and how many of them an active legal hold covers (their channel or their author is
    /// held).
    async fn count_expired_messages(
        &self,
        channel_type: &str,
        before: Micros,
    ) -> StoreResult<ExpiredCounts>;
    /// Ids of up to `limit` of those messages that no active hold covers, oldest first.
    async fn find_expired_message_ids(
        &self,
        channel_type: &str,
        before: Micros,
        limit: i64,
    ) -> StoreResult<Vec<String>>;
    /// Deletes the messages `ids` with their reactions and search tokens, in one
    /// transaction with `audit`, if every one of them still exists and no active hold
    /// covers any; otherwise changes nothing and returns false (the caller finds the
    /// expired ones again).
    async fn delete_unheld_messages(&self, ids: &[String], audit: Audit<'_>) -> StoreResult<bool>;
}

/// What [`ComplianceStore::count_expired_messages`] found.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct ExpiredCounts {
    /// Every expired message, held or not.
    pub expired: i64,
    /// Of those, the ones a legal hold keeps.
    pub held: i64,
}

/// A condition on a message `m`: an active legal hold covers its channel or its author.
const HELD_MESSAGE: &str = "(m.cid IN (SELECT target FROM legal_holds \
    WHERE scope = 'channel' AND released_at IS NULL) \
    OR m.user_id IN (SELECT target FROM legal_holds WHERE scope = 'user' AND released_at IS NULL))";
const HOLD_COLS: &str = "id, scope, target, reason, placed_by, placed_at, released_by, released_at";

fn hold_from(r: &Row) -> Result<HoldRow, sqlx::Error> {
    Ok(HoldRow {
        id: r.try_get("id")?,
        scope: r.try_get("scope")?,
        target: r.try_get("target")?,
        reason: r.try_get("reason")?,
        placed_by: r.try_get("placed_by")?,
        placed_at: r.try_get("placed_at")?,
        released_by: r.try_get("released_by")?,
        released_at: r.try_get("released_at")?,
    })
}

#[async_trait]
impl ComplianceStore for SqlStore {
    async fn insert_hold(&self, h: &HoldRow, audit: Audit<'_>) -> StoreResult<()> {
        execute_audited(
            &self.db,
            query(format!(
                "INSERT INTO legal_holds ({HOLD_COLS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)"
            ))
            .bind(&h.id)
            .bind(&h.scope)
            .bind(&h.target)
            .bind(&h.reason)
            .bind(&h.placed_by)
            .bind(h.placed_at)
            .bind(&h.released_by)
            .bind(h.released_at),
            audit,
        )
        .await?;
        Ok(())
    }

    async fn release_hold(
        &self,
        id: &str,
        by: Option<&str>,
        at: Micros,
        audit: Audit<'_>,
    ) -> StoreResult<bool> {
        let done = execute_audited_if_changed(
            &self.db,
            query(
                "UPDATE legal_holds SET released_by = $2, released_at = $3 WHERE id = $1 \
             AND released_at IS NULL",
            )
            .bind(id)
            .bind(by)
            .bind(at),
            audit,
        )
        .await?;
        Ok(done > 0)
    }

    async fn find_hold(&self, id: &str) -> StoreResult<Option<HoldRow>> {
        let row = query(format!("SELECT {HOLD_COLS} FROM legal_holds WHERE id = $1"))
            .bind(id)
            .fetch_optional(&self.db)
            .await?;
        Ok(row.as_ref().map(hold_from).transpose()?)
    }

    async fn find_holds(&self, active_only: bool) -> StoreResult<Vec<HoldRow>> {
        let filter = if active_only {
            "WHERE released_at IS NULL"
        } else {
            ""
        };
        all(
            query(format!(
                "SELECT {HOLD_COLS} FROM legal_holds {filter} ORDER BY placed_at DESC"
            ))
            .fetch_all(&self.db)
            .await?,
            hold_from,
        )
    }

    async fn find_holds_covering_user(&self, user_id: &str) -> StoreResult<Vec<HoldRow>> {
        all(
            query(format!(
                "SELECT {HOLD_COLS} FROM legal_holds WHERE released_at IS NULL AND \
                 ((scope = 'user' AND target = $1) OR (scope = 'channel' AND target IN \
                 (SELECT DISTINCT cid FROM messages WHERE user_id = $1) ) OR \
                 (scope = 'channel' AND target IN (SELECT cid FROM channel_members WHERE user_id \
                 = $1)))"
            ))
            .bind(user_id)
            .fetch_all(&self.db)
            .await?,
            hold_from,
        )
    }

    async fn erase_user_rows(
        &self,
        user_id: &str,
        hard_messages: bool,
        hard_user: bool,
        at: Micros,
        audit: Audit<'_>,
    ) -> StoreResult<EraseCounts> {
        let mut tx = self.db.begin_write().await?;
        let mut counts = EraseCounts::default();
        let exec = |sql: &'static str| query(sql).bind(user_id);
        counts.reactions = exec("DELETE FROM reactions WHERE user_id = $1")
            .execute(&mut tx)
            .await?;
        exec(
            "DELETE FROM message_search_tokens WHERE message_id IN (SELECT id FROM messages \
             WHERE user_id = $1)",
        )
        .execute(&mut tx)
        .await?;
        counts.messages = if hard_messages {
            exec(
                "DELETE FROM reactions WHERE message_id IN (SELECT id FROM messages WHERE \
                 user_id = $1)",
            )
            .execute(&mut tx)
            .await?;
            exec("DELETE FROM messages WHERE user_id = $1")
                .execute(&mut tx)
                .await?
        } else {
            query(
                "UPDATE messages SET text = '', data = '{}', type = 'deleted', \
                 deleted_at = COALESCE(deleted_at, $2), updated_at = $2 WHERE user_id = $1",
            )
            .bind(user_id)
            .bind(at)
            .execute(&mut tx)
            .await?
        };
        // Issue 16 item 8 (tier 2): the subject's votes, answers, drafts and reminders go; the polls they created
        // keep their ids (messages point at them) but lose their (already shredded) texts.
        for sql in [
            "DELETE FROM poll_votes WHERE user_id = $1",
            "DELETE FROM drafts WHERE user_id = $1",
            "DELETE FROM reminders WHERE user_id = $1",
            "DELETE FROM user_group_members WHERE user_id = $1",
            "UPDATE user_groups SET created_by_id = NULL WHERE created_by_id = $1",
            "UPDATE poll_options SET data = '{}' WHERE poll_id IN (SELECT id FROM polls WHERE \
             created_by_id = $1)",
            "UPDATE polls SET data = '{}' WHERE created_by_id = $1",
        ] {
            query(sql).bind(user_id).execute(&mut tx).await?;
        }
        counts.memberships = exec("DELETE FROM channel_members WHERE user_id = $1")
            .execute(&mut tx)
            .await?;
        exec("DELETE FROM channel_reads WHERE user_id = $1")
            .execute(&mut tx)
            .await?;
        exec("DELETE FROM thread_reads WHERE user_id = $1")
            .execute(&mut tx)
            .await?;
        exec("DELETE FROM channel_cooldowns WHERE user_id = $1")
            .execute(&mut tx)
            .await?;
        counts.sessions = exec("DELETE FROM auth_sessions WHERE user_id = $1")
            .execute(&mut tx)
            .await?;
        for sql in [
            "DELETE FROM auth_passwords WHERE user_id = $1",
            "DELETE FROM auth_totp WHERE user_id = $1",
            "DELETE FROM auth_recovery_codes WHERE user_id = $1",
            // push devices (issue 16)
            "DELETE FROM devices WHERE user_id = $1",
            "DELETE FROM push_preferences WHERE user_id = $1",
        ] {
            query(sql).bind(user_id).execute(&mut tx).await?;
        }
        counts.user_rows = if hard_user {
            exec("DELETE FROM users WHERE id = $1")
                .execute(&mut tx)
                .await?
        } else {
            query(
                "UPDATE users SET data = '{}', role = 'user', deleted_at = COALESCE(deleted_at, \
                 $2), \
                 deactivated_at = COALESCE(deactivated_at, $2), updated_at = $2 WHERE id = $1",
            )
            .bind(user_id)
            .bind(at)
            .execute(&mut tx)
            .await?
        };
        insert_outbox(&mut tx, audit).await?;
        tx.commit().await?;
        Ok(counts)
    }

    async fn count_expired_messages(
        &self,
        channel_type: &str,
        before: Micros,
    ) -> StoreResult<ExpiredCounts> {
        let row = query(format!(
            "SELECT COUNT(*) AS expired, COALESCE(SUM(CASE WHEN {HELD_MESSAGE} THEN 1 ELSE 0 \
             END), 0) AS held \
             FROM messages m JOIN channels c ON c.cid = m.cid WHERE c.type = $1 AND m.created_at \
             < $2"
        ))
        .bind(channel_type)
        .bind(before)
        .fetch_one(&self.db)
        .await?;
        Ok(ExpiredCounts {
            expired: row.try_get("expired")?,
            held: row.try_get("held")?,
        })
    }

    async fn find_expired_message_ids(
        &self,
        channel_type: &str,
        before: Micros,
        limit: i64,
    ) -> StoreResult<Vec<String>> {
        Ok(query(format!(
            "SELECT m.id FROM messages m JOIN channels c ON c.cid = m.cid \
             WHERE c.type = $1 AND m.created_at < $2 AND NOT {HELD_MESSAGE} \
             ORDER BY m.created_at, m.id LIMIT $3"
        ))
        .bind(channel_type)
        .bind(before)
        .bind(limit)
        .scalar_all(&self.db)
        .await?)
    }

    async fn delete_unheld_messages(&self, ids: &[String], audit: Audit<'_>) -> StoreResult<bool> {
        if ids.is_empty() {
            return Ok(true);
        }
        let mut tx = self.db.begin_write().await?;
        // Checked inside the transaction: a hold placed since the ids were found wins.
        let mut qb = query(format!(
            "SELECT COUNT(*) FROM messages m WHERE NOT {HELD_MESSAGE} AND m.id IN "
        ));
        qb.push_list(ids);
        let unheld: i64 = qb.scalar_one(&mut tx).await?;
        if unheld != ids.len() as i64 {
            tx.rollback().await?;
            return Ok(false);
        }
        for sql in [
            "DELETE FROM reactions WHERE message_id IN ",
            "DELETE FROM message_search_tokens WHERE message_id IN ",
            "DELETE FROM messages WHERE id IN ",
        ] {
            let mut qb = query(sql);
            qb.push_list(ids);
            qb.execute(&mut tx).await?;
        }
        insert_outbox(&mut tx, audit).await?;
        tx.commit().await?;
        Ok(true)
    }
}
