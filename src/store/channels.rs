//! Channels: the channel rows; their members and read state live in `members.rs` and
//! `reads.rs`, behind the same trait.

use async_trait::async_trait;

use super::audit::{Audit, execute_audited, insert_outbox};
use super::db::{Row, query};
use super::members::{self, MemberAudit, MemberRow, RemovalAudit, insert_member};
use super::reads::{self, ReadRow};
use super::{Fields, SqlStore, StoreResult, all, fields_text, parse_fields};
use crate::time::Micros;

#[derive(Debug, Clone, PartialEq)]
pub struct ChannelRow {
    pub cid: String,
    pub kind: String,
    pub id: String,
    pub created_by_id: Option<String>,
    pub data: Fields,
    pub created_at: Micros,
    pub updated_at: Micros,
    pub last_message_at: Option<Micros>,
    pub deleted_at: Option<Micros>,
    pub truncated_at: Option<Micros>,
    pub frozen: bool,
    pub message_count: i64,
    /// Derived on read; ignored on write.
    pub member_count: i64,
}

#[async_trait]
pub trait ChannelStore: Send + Sync {
    /// Creates the channel with its members (and their read state) unless it exists.
    /// Returns whether it was created.
    async fn insert_channel(
        &self,
        channel: &ChannelRow,
        members: &[MemberRow],
        audit: Audit<'_>,
    ) -> StoreResult<bool>;
    async fn find_channel(&self, cid: &str) -> StoreResult<Option<ChannelRow>>;
    async fn find_channels(&self, cids: &[String]) -> StoreResult<Vec<ChannelRow>>;
    /// Channels (not deleted) that have `user_id` as a member.
    async fn find_channels_for_member(&self, user_id: &str) -> StoreResult<Vec<ChannelRow>>;
    /// Channels (not deleted) of any of the given types, at most `cap`.
    async fn find_channels_of_types(
        &self,
        kinds: &[String],
        cap: i64,
    ) -> StoreResult<Vec<ChannelRow>>;
    /// Writes data, frozen, truncated_at, deleted_at and updated_at.
    async fn update_channel(&self, channel: &ChannelRow, audit: Audit<'_>) -> StoreResult<()>;
    /// Removes the channel, its members, reads, messages and reactions.
    async fn delete_channel(&self, cid: &str, audit: Audit<'_>) -> StoreResult<()>;
    /// Hides messages before `at`, resets unread counts; with `hard`, deletes them.
    async fn truncate_channel(
        &self,
        cid: &str,
        at: Micros,
        hard: bool,
        audit: Audit<'_>,
    ) -> StoreResult<()>;
    async fn find_members(&self, cids: &[String]) -> StoreResult<Vec<MemberRow>>;
    /// Adds members not already present (with read state starting at their join time);
    /// returns the ones added, with the audit record `audit` makes for each in the same
    /// transaction.
    async fn add_members(
        &self,
        cid: &str,
        members: &[MemberRow],
        audit: MemberAudit<'_>,
    ) -> StoreResult<Vec<MemberRow>>;
    async fn update_member_role(
        &self,
        cid: &str,
        user_id: &str,
        role: &str,
        at: Micros,
        audit: Audit<'_>,
    ) -> StoreResult<bool>;
    /// Removes members and their read state; returns the ids removed (with the audit record
    /// `audit` makes for each, in the same transaction).
    async fn remove_members(
        &self,
        cid: &str,
        user_ids: &[String],
        audit: RemovalAudit<'_>,
    ) -> StoreResult<Vec<String>>;
    async fn find_reads(&self, cids: &[String]) -> StoreResult<Vec<ReadRow>>;
    /// Read state of `user_id` in every channel that is not deleted.
    async fn find_reads_for_user(&self, user_id: &str) -> StoreResult<Vec<(ReadRow, String)>>;
    /// Inserts or replaces one read state.
    async fn upsert_read(&self, read: &ReadRow) -> StoreResult<()>;
}

const CHANNEL_COLS: &str = "c.cid, c.type, c.id, c.created_by_id, c.data, c.created_at, \
    c.updated_at, c.last_message_at, c.deleted_at, c.truncated_at, c.frozen, c.message_count, \
    (SELECT COUNT(*) FROM channel_members mc WHERE mc.cid = c.cid) AS member_count";

fn channel_from(row: &Row) -> Result<ChannelRow, sqlx::Error> {
    Ok(ChannelRow {
        cid: row.try_get("cid")?,
        kind: row.try_get("type")?,
        id: row.try_get("id")?,
        created_by_id: row.try_get("created_by_id")?,
        data: parse_fields(&row.try_get::<String, _>("data")?),
        created_at: row.try_get("created_at")?,
        updated_at: row.try_get("updated_at")?,
        last_message_at: row.try_get("last_message_at")?,
        deleted_at: row.try_get("deleted_at")?,
        truncated_at: row.try_get("truncated_at")?,
        frozen: row.try_get("frozen")?,
        message_count: row.try_get("message_count")?,
        member_count: row.try_get("member_count")?,
    })
}

#[async_trait]
impl ChannelStore for SqlStore {
    async fn insert_channel(
        &self,
        c: &ChannelRow,
        members: &[MemberRow],
        audit: Audit<'_>,
    ) -> StoreResult<bool> {
        let mut tx = self.db.begin_write().await?;
        let inserted = query(
            "INSERT INTO channels (cid, type, id, created_by_id, data, created_at, updated_at, \
             last_message_at, deleted_at, truncated_at, frozen, message_count) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, 0) ON CONFLICT (cid) DO NOTHING",
        )
        .bind(&c.cid)
        .bind(&c.kind)
        .bind(&c.id)
        .bind(&c.created_by_id)
        .bind(fields_text(&c.data))
        .bind(c.created_at)
        .bind(c.updated_at)
        .bind(c.last_message_at)
        .bind(c.deleted_at)
        .bind(c.truncated_at)
        .bind(c.frozen)
        .execute(&mut tx)
        .await?
            == 1;
        if !inserted {
            return Ok(false);
        }
        for m in members {
            insert_member(&mut tx, m).await?;
        }
        insert_outbox(&mut tx, audit).await?;
        tx.commit().await?;
        Ok(true)
    }

    async fn find_channel(&self, cid: &str) -> StoreResult<Option<ChannelRow>> {
        let sql = format!("SELECT {CHANNEL_COLS} FROM channels c WHERE c.cid = $1");
        let row = query(sql).bind(cid).fetch_optional(&self.db).await?;
        Ok(row.as_ref().map(channel_from).transpose()?)
    }

    async fn find_channels(&self, cids: &[String]) -> StoreResult<Vec<ChannelRow>> {
        if cids.is_empty() {
            return Ok(Vec::new());
        }
        let mut qb = query(format!(
            "SELECT {CHANNEL_COLS} FROM channels c WHERE c.cid IN "
        ));
        qb.push_list(cids);
        all(qb.fetch_all(&self.db).await?, channel_from)
    }

    async fn find_channels_for_member(&self, user_id: &str) -> StoreResult<Vec<ChannelRow>> {
        let sql = format!(
            "SELECT {CHANNEL_COLS} FROM channels c JOIN channel_members m ON m.cid = c.cid \
             WHERE m.user_id = $1 AND c.deleted_at IS NULL"
        );
        all(
            query(sql).bind(user_id).fetch_all(&self.db).await?,
            channel_from,
        )
    }

    async fn find_channels_of_types(
        &self,
        kinds: &[String],
        cap: i64,
    ) -> StoreResult<Vec<ChannelRow>> {
        if kinds.is_empty() {
            return Ok(Vec::new());
        }
        let mut qb = query(format!(
            "SELECT {CHANNEL_COLS} FROM channels c WHERE c.deleted_at IS NULL AND c.type IN "
        ));
        qb.push_list(kinds);
        qb.push(" ORDER BY c.created_at DESC LIMIT ").push_bind(cap);
        all(qb.fetch_all(&self.db).await?, channel_from)
    }

    async fn update_channel(&self, c: &ChannelRow, audit: Audit<'_>) -> StoreResult<()> {
        execute_audited(
            &self.db,
            query(
                "UPDATE channels SET data = $2, frozen = $3, truncated_at = $4, deleted_at = $5, \
             updated_at = $6 WHERE cid = $1",
            )
            .bind(&c.cid)
            .bind(fields_text(&c.data))
            .bind(c.frozen)
            .bind(c.truncated_at)
            .bind(c.deleted_at)
            .bind(c.updated_at),
            audit,
        )
        .await?;
        Ok(())
    }

    async fn delete_channel(&self, cid: &str, audit: Audit<'_>) -> StoreResult<()> {
        let mut tx = self.db.begin_write().await?;
        for sql in [
            "DELETE FROM reactions WHERE message_id IN (SELECT id FROM messages WHERE cid = $1)",
            "DELETE FROM messages WHERE cid = $1",
            "DELETE FROM channel_reads WHERE cid = $1",
            "DELETE FROM channel_cooldowns WHERE cid = $1",
            "DELETE FROM channel_members WHERE cid = $1",
            "DELETE FROM channels WHERE cid = $1",
        ] {
            query(sql).bind(cid).execute(&mut tx).await?;
        }
        insert_outbox(&mut tx, audit).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn truncate_channel(
        &self,
        cid: &str,
        at: Micros,
        hard: bool,
        audit: Audit<'_>,
    ) -> StoreResult<()> {
        let mut tx = self.db.begin_write().await?;
        query("UPDATE channels SET truncated_at = $2, updated_at = $2 WHERE cid = $1")
            .bind(cid)
            .bind(at)
            .execute(&mut tx)
            .await?;
        query("UPDATE channel_reads SET unread_messages = 0 WHERE cid = $1")
            .bind(cid)
            .execute(&mut tx)
            .await?;
        if hard {
            query(
                "DELETE FROM reactions WHERE message_id IN \
                 (SELECT id FROM messages WHERE cid = $1 AND created_at <= $2)",
            )
            .bind(cid)
            .bind(at)
            .execute(&mut tx)
            .await?;
            query("DELETE FROM messages WHERE cid = $1 AND created_at <= $2")
                .bind(cid)
                .bind(at)
                .execute(&mut tx)
                .await?;
        }
        insert_outbox(&mut tx, audit).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn find_members(&self, cids: &[String]) -> StoreResult<Vec<MemberRow>> {
        members::find_members(&self.db, cids).await
    }

    async fn add_members(
        &self,
        _cid: &str,
        members: &[MemberRow],
        audit: MemberAudit<'_>,
    ) -> StoreResult<Vec<MemberRow>> {
        members::add_members(&self.db, members, audit).await
    }

    async fn update_member_role(
        &self,
        cid: &str,
        user_id: &str,
        role: &str,
        at: Micros,
        audit: Audit<'_>,
    ) -> StoreResult<bool> {
        members::update_member_role(&self.db, cid, user_id, role, at, audit).await
    }

    async fn remove_members(
        &self,
        cid: &str,
        user_ids: &[String],
        audit: RemovalAudit<'_>,
    ) -> StoreResult<Vec<String>> {
        members::remove_members(&self.db, cid, user_ids, audit).await
    }

    async fn find_reads(&self, cids: &[String]) -> StoreResult<Vec<ReadRow>> {
        reads::find_reads(&self.db, cids).await
    }

    async fn find_reads_for_user(&self, user_id: &str) -> StoreResult<Vec<(ReadRow, String)>> {
        reads::find_reads_for_user(&self.db, user_id).await
    }

    async fn upsert_read(&self, r: &ReadRow) -> StoreResult<()> {
        reads::upsert_read(&self.db, r).await
    }
}
