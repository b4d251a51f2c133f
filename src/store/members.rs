//! Channel members: who is in a channel, with which channel role. Joining starts the
//! member's read state (`reads.rs`) in the same transaction.

use super::audit::{Audit, OutboxRow, execute_audited_if_changed, insert_outbox};
use super::db::{Db, Row, Tx, query};
use super::{SqlStore, StoreResult, all};
use crate::time::Micros;
use async_trait::async_trait;

#[derive(Debug, Clone, PartialEq, Default)]
pub struct MemberRow {
    pub cid: String,
    pub user_id: String,
    pub channel_role: String,
    pub created_at: Micros,
    pub updated_at: Micros,
    /// The member's own channel-list state (migration 0010).
    pub pinned_at: Option<Micros>,
    pub archived_at: Option<Micros>,
    pub hidden: bool,
    pub notifications_muted: bool,
    /// Invited and not (yet) accepted: not a member for reading or writing.
    pub invited: bool,
    pub invite_accepted_at: Option<Micros>,
    pub invite_rejected_at: Option<Micros>,
}

impl MemberRow {
    /// Whether the row makes its user a member: not an invite that is pending or rejected.
    pub fn is_active(&self) -> bool {
        !self.invited || self.invite_accepted_at.is_some()
    }
}

/// The member-owned state a partial update may change, written as one.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct MemberState {
    pub pinned_at: Option<Micros>,
    pub archived_at: Option<Micros>,
    pub hidden: bool,
    pub notifications_muted: bool,
    pub invite_accepted_at: Option<Micros>,
    pub invite_rejected_at: Option<Micros>,
}

/// Makes the audit record of each member a write actually adds.
pub type MemberAudit<'a> = &'a (dyn Fn(&MemberRow) -> Option<OutboxRow> + Send + Sync);
/// Makes the audit record of each member a write actually removes.
pub type RemovalAudit<'a> = &'a (dyn Fn(&str) -> Option<OutboxRow> + Send + Sync);

const MEMBER_COLS: &str = "cid, user_id, channel_role, created_at, updated_at, pinned_at, \
    archived_at, hidden, notifications_muted, invited, invite_accepted_at, invite_rejected_at";

fn member_from(row: &Row) -> Result<MemberRow, sqlx::Error> {
    Ok(MemberRow {
        cid: row.try_get("cid")?,
        user_id: row.try_get("user_id")?,
        channel_role: row.try_get("channel_role")?,
        created_at: row.try_get("created_at")?,
        updated_at: row.try_get("updated_at")?,
        pinned_at: row.try_get("pinned_at")?,
        archived_at: row.try_get("archived_at")?,
        hidden: row.try_get("hidden")?,
        notifications_muted: row.try_get("notifications_muted")?,
        invited: row.try_get("invited")?,
        invite_accepted_at: row.try_get("invite_accepted_at")?,
        invite_rejected_at: row.try_get("invite_rejected_at")?,
    })
}

pub(super) async fn find_members(db: &Db, cids: &[String]) -> StoreResult<Vec<MemberRow>> {
    if cids.is_empty() {
        return Ok(Vec::new());
    }
    let mut qb = query(format!(
        "SELECT {MEMBER_COLS} FROM channel_members WHERE cid IN "
    ));
    qb.push_list(cids);
    qb.push(" ORDER BY created_at, user_id");
    all(qb.fetch_all(db).await?, member_from)
}

pub(super) async fn add_members(
    db: &Db,
    members: &[MemberRow],
    audit: MemberAudit<'_>,
) -> StoreResult<Vec<MemberRow>> {
    let mut tx = db.begin_write().await?;
    let mut added = Vec::new();
    let mut records = Vec::new();
    for m in members {
        if insert_member(&mut tx, m).await? {
            records.extend(audit(m));
            added.push(m.clone());
        }
    }
    insert_outbox(&mut tx, &records).await?;
    tx.commit().await?;
    Ok(added)
}

pub(super) async fn update_member_role(
    db: &Db,
    cid: &str,
    user_id: &str,
    role: &str,
    at: Micros,
    audit: Audit<'_>,
) -> StoreResult<bool> {
    let done = execute_audited_if_changed(db, query(
        "UPDATE channel_members SET channel_role = $3, updated_at = $4 WHERE cid = $1 AND user_id \
         = $2",
    )
    .bind(cid)
    .bind(user_id)
    .bind(role)
    .bind(at), audit).await?;
    Ok(done == 1)
}

pub(super) async fn remove_members(
    db: &Db,
    cid: &str,
    user_ids: &[String],
    audit: RemovalAudit<'_>,
) -> StoreResult<Vec<String>> {
    let mut tx = db.begin_write().await?;
    let mut removed = Vec::new();
    for id in user_ids {
        let done = query("DELETE FROM channel_members WHERE cid = $1 AND user_id = $2")
            .bind(cid)
            .bind(id)
            .execute(&mut tx)
            .await?;
        query("DELETE FROM channel_reads WHERE cid = $1 AND user_id = $2")
            .bind(cid)
            .bind(id)
            .execute(&mut tx)
            .await?;
        query("DELETE FROM channel_cooldowns WHERE cid = $1 AND user_id = $2")
            .bind(cid)
            .bind(id)
            .execute(&mut tx)
            .await?;
        if done == 1 {
            removed.push(id.clone());
        }
    }
    let records: Vec<OutboxRow> = removed.iter().filter_map(|id| audit(id)).collect();
    insert_outbox(&mut tx, &records).await?;
    tx.commit().await?;
    Ok(removed)
}

/// Inserts a member and its read state unless present; returns whether it was added.
pub(super) async fn insert_member(tx: &mut Tx, m: &MemberRow) -> StoreResult<bool> {
    let added = query(
        "INSERT INTO channel_members (cid, user_id, channel_role, created_at, updated_at, \
         invited) VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (cid, user_id) DO NOTHING",
    )
    .bind(&m.cid)
    .bind(&m.user_id)
    .bind(&m.channel_role)
    .bind(m.created_at)
    .bind(m.updated_at)
    .bind(m.invited)
    .execute(&mut *tx)
    .await?
        == 1;
    // An invitee's read state starts when they accept (their unread counts would otherwise
    // tell them about a channel they may not read).
    if added && !m.invited {
        query(
            "INSERT INTO channel_reads (cid, user_id, last_read, unread_messages) \
             VALUES ($1, $2, $3, 0) ON CONFLICT (cid, user_id) DO NOTHING",
        )
        .bind(&m.cid)
        .bind(&m.user_id)
        .bind(m.created_at)
        .execute(&mut *tx)
        .await?;
    }
    Ok(added)
}

/// Member state and slow mode (migration 0010): what a member changes about their own
/// membership, invite answers, un-hiding on a new message, and the cooldown claim.
#[async_trait]
pub trait MemberStore: Send + Sync {
    /// Writes the member-owned state of one member with its record; `false` when the
    /// member does not exist (nothing is recorded then).
    async fn update_member_state(
        &self,
        cid: &str,
        user_id: &str,
        state: &MemberState,
        at: Micros,
        audit: Audit<'_>,
    ) -> StoreResult<bool>;
    /// Shows the channel again to every member who hid it; returns their ids.
    async fn unhide_channel(&self, cid: &str) -> StoreResult<Vec<String>>;
    /// Records a message by `user_id` at `now` unless their previous one in `cid` is less
    /// than `cooldown` old. Atomic: of two racing sends (on any nodes) one wins. Returns
    /// the time of the previous message when refused.
    async fn claim_cooldown(
        &self,
        cid: &str,
        user_id: &str,
        now: Micros,
        cooldown: Micros,
    ) -> StoreResult<Result<(), Micros>>;
}

#[async_trait]
impl MemberStore for SqlStore {
    async fn update_member_state(
        &self,
        cid: &str,
        user_id: &str,
        s: &MemberState,
        at: Micros,
        audit: Audit<'_>,
    ) -> StoreResult<bool> {
        let done = execute_audited_if_changed(
            &self.db,
            query(
                "UPDATE channel_members SET pinned_at = $3, archived_at = $4, hidden = $5, \
                 notifications_muted = $6, invite_accepted_at = $7, invite_rejected_at = $8, \
                 updated_at = $9 WHERE cid = $1 AND user_id = $2",
            )
            .bind(cid)
            .bind(user_id)
            .bind(s.pinned_at)
            .bind(s.archived_at)
            .bind(s.hidden)
            .bind(s.notifications_muted)
            .bind(s.invite_accepted_at)
            .bind(s.invite_rejected_at)
            .bind(at),
            audit,
        )
        .await?;
        Ok(done == 1)
    }

    async fn unhide_channel(&self, cid: &str) -> StoreResult<Vec<String>> {
        // Read first: nearly every message finds no hidden member, and needs no write.
        let rows = query("SELECT user_id FROM channel_members WHERE cid = $1 AND hidden")
            .bind(cid)
            .fetch_all(&self.db)
            .await?;
        let ids = all(rows, |r| r.try_get::<String, _>("user_id"))?;
        if !ids.is_empty() {
            let mut tx = self.db.begin_write().await?;
            query("UPDATE channel_members SET hidden = FALSE WHERE cid = $1 AND hidden")
                .bind(cid)
                .execute(&mut tx)
                .await?;
            tx.commit().await?;
        }
        Ok(ids)
    }

    async fn claim_cooldown(
        &self,
        cid: &str,
        user_id: &str,
        now: Micros,
        cooldown: Micros,
    ) -> StoreResult<Result<(), Micros>> {
        let mut tx = self.db.begin_write().await?;
        let claimed = query(
            "INSERT INTO channel_cooldowns (cid, user_id, last_sent_at) VALUES ($1, $2, $3) \
             ON CONFLICT (cid, user_id) DO UPDATE SET last_sent_at = excluded.last_sent_at \
             WHERE channel_cooldowns.last_sent_at <= $4",
        )
        .bind(cid)
        .bind(user_id)
        .bind(now)
        .bind(now - cooldown)
        .execute(&mut tx)
        .await?
            == 1;
        let answer = if claimed {
            Ok(())
        } else {
            let row =
                query("SELECT last_sent_at FROM channel_cooldowns WHERE cid = $1 AND user_id = $2")
                    .bind(cid)
                    .bind(user_id)
                    .fetch_one(&mut tx)
                    .await?;
            Err(row.try_get("last_sent_at")?)
        };
        tx.commit().await?;
        Ok(answer)
    }
}
