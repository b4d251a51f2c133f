//! Channel members: who is in a channel, with which channel role. Joining starts the
//! member's read state (`reads.rs`) in the same transaction.

use super::audit::{Audit, OutboxRow, execute_audited_if_changed, insert_outbox};
use super::db::{Db, Row, Tx, query};
use super::{StoreResult, all};
use crate::time::Micros;

#[derive(Debug, Clone, PartialEq)]
pub struct MemberRow {
    pub cid: String,
    pub user_id: String,
    pub channel_role: String,
    pub created_at: Micros,
    pub updated_at: Micros,
}

/// Makes the audit record of each member a write actually adds.
pub type MemberAudit<'a> = &'a (dyn Fn(&MemberRow) -> Option<OutboxRow> + Send + Sync);
/// Makes the audit record of each member a write actually removes.
pub type RemovalAudit<'a> = &'a (dyn Fn(&str) -> Option<OutboxRow> + Send + Sync);

const MEMBER_COLS: &str = "cid, user_id, channel_role, created_at, updated_at";

fn member_from(row: &Row) -> Result<MemberRow, sqlx::Error> {
    Ok(MemberRow {
        cid: row.try_get("cid")?,
        user_id: row.try_get("user_id")?,
        channel_role: row.try_get("channel_role")?,
        created_at: row.try_get("created_at")?,
        updated_at: row.try_get("updated_at")?,
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
        "INSERT INTO channel_members (cid, user_id, channel_role, created_at, updated_at) \
         VALUES ($1, $2, $3, $4, $5) ON CONFLICT (cid, user_id) DO NOTHING",
    )
    .bind(&m.cid)
    .bind(&m.user_id)
    .bind(&m.channel_role)
    .bind(m.created_at)
    .bind(m.updated_at)
    .execute(&mut *tx)
    .await?
        == 1;
    if added {
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
