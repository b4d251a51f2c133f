//! Read state: per member of a channel, the last message read and the unread count.

use super::db::{Db, Row, query};
use super::{StoreResult, all};
use crate::time::Micros;

#[derive(Debug, Clone, PartialEq)]
pub struct ReadRow {
    pub cid: String,
    pub user_id: String,
    pub last_read: Micros,
    pub last_read_message_id: Option<String>,
    pub unread_messages: i64,
    /// The newest message delivered to the member (`POST /channels/delivered`); written only
    /// by `ThreadStore::update_delivered`, ignored by [`upsert_read`].
    pub last_delivered_at: Option<Micros>,
    pub last_delivered_message_id: Option<String>,
}

const READ_COLS: &str = "r.cid, r.user_id, r.last_read, r.last_read_message_id, r.unread_messages, \
    r.last_delivered_at, r.last_delivered_message_id";

fn read_from(row: &Row) -> Result<ReadRow, sqlx::Error> {
    Ok(ReadRow {
        cid: row.try_get("cid")?,
        user_id: row.try_get("user_id")?,
        last_read: row.try_get("last_read")?,
        last_read_message_id: row.try_get("last_read_message_id")?,
        unread_messages: row.try_get("unread_messages")?,
        last_delivered_at: row.try_get("last_delivered_at")?,
        last_delivered_message_id: row.try_get("last_delivered_message_id")?,
    })
}

pub(super) async fn find_reads(db: &Db, cids: &[String]) -> StoreResult<Vec<ReadRow>> {
    if cids.is_empty() {
        return Ok(Vec::new());
    }
    let mut qb = query(format!(
        "SELECT {READ_COLS} FROM channel_reads r WHERE r.cid IN "
    ));
    qb.push_list(cids);
    all(qb.fetch_all(db).await?, read_from)
}

pub(super) async fn find_reads_for_user(
    db: &Db,
    user_id: &str,
) -> StoreResult<Vec<(ReadRow, String)>> {
    let sql = format!(
        "SELECT {READ_COLS}, c.type FROM channel_reads r JOIN channels c ON c.cid = r.cid \
         WHERE r.user_id = $1 AND c.deleted_at IS NULL ORDER BY r.cid"
    );
    let rows = query(sql).bind(user_id).fetch_all(db).await?;
    rows.iter()
        .map(|r| Ok((read_from(r)?, r.try_get::<String, _>("type")?)))
        .collect()
}

pub(super) async fn upsert_read(db: &Db, r: &ReadRow) -> StoreResult<()> {
    query(
        "INSERT INTO channel_reads (cid, user_id, last_read, last_read_message_id, \
         unread_messages) \
         VALUES ($1, $2, $3, $4, $5) ON CONFLICT (cid, user_id) DO UPDATE SET \
         last_read = excluded.last_read, last_read_message_id = excluded.last_read_message_id, \
         unread_messages = excluded.unread_messages",
    )
    .bind(&r.cid)
    .bind(&r.user_id)
    .bind(r.last_read)
    .bind(&r.last_read_message_id)
    .bind(r.unread_messages)
    .execute(db)
    .await?;
    Ok(())
}
