//! Reactions on messages, one per user and type.

use super::db::{Db, Row, query};
use super::{Fields, StoreResult, all, fields_text, parse_fields};
use crate::time::Micros;

#[derive(Debug, Clone, PartialEq)]
pub struct ReactionRow {
    pub message_id: String,
    pub user_id: String,
    pub kind: String,
    pub score: i64,
    pub data: Fields,
    pub created_at: Micros,
    pub updated_at: Micros,
}

const REACTION_COLS: &str = "message_id, user_id, type, score, data, created_at, updated_at";

fn reaction_from(row: &Row) -> Result<ReactionRow, sqlx::Error> {
    Ok(ReactionRow {
        message_id: row.try_get("message_id")?,
        user_id: row.try_get("user_id")?,
        kind: row.try_get("type")?,
        score: row.try_get("score")?,
        data: parse_fields(&row.try_get::<String, _>("data")?),
        created_at: row.try_get("created_at")?,
        updated_at: row.try_get("updated_at")?,
    })
}

pub(super) async fn upsert_reaction(
    db: &Db,
    r: &ReactionRow,
    enforce_unique: bool,
) -> StoreResult<bool> {
    let mut tx = db.begin_write().await?;
    if enforce_unique {
        query("DELETE FROM reactions WHERE message_id = $1 AND user_id = $2 AND type <> $3")
            .bind(&r.message_id)
            .bind(&r.user_id)
            .bind(&r.kind)
            .execute(&mut tx)
            .await?;
    }
    let existed: Option<i64> =
        query("SELECT score FROM reactions WHERE message_id = $1 AND user_id = $2 AND type = $3")
            .bind(&r.message_id)
            .bind(&r.user_id)
            .bind(&r.kind)
            .scalar_optional(&mut tx)
            .await?;
    query(
        "INSERT INTO reactions (message_id, user_id, type, score, data, created_at, updated_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (message_id, user_id, type) DO UPDATE SET \
         score = excluded.score, data = excluded.data, updated_at = excluded.updated_at",
    )
    .bind(&r.message_id)
    .bind(&r.user_id)
    .bind(&r.kind)
    .bind(r.score)
    .bind(fields_text(&r.data))
    .bind(r.created_at)
    .bind(r.updated_at)
    .execute(&mut tx)
    .await?;
    touch_message(&mut tx, &r.message_id, r.updated_at).await?;
    tx.commit().await?;
    Ok(existed.is_some())
}

pub(super) async fn delete_reaction(
    db: &Db,
    message_id: &str,
    user_id: &str,
    kind: &str,
) -> StoreResult<Option<ReactionRow>> {
    let sql = format!(
        "DELETE FROM reactions WHERE message_id = $1 AND user_id = $2 AND type = $3 RETURNING \
         {REACTION_COLS}"
    );
    let mut tx = db.begin_write().await?;
    let row = query(sql)
        .bind(message_id)
        .bind(user_id)
        .bind(kind)
        .fetch_optional(&mut tx)
        .await?;
    if row.is_some() {
        touch_message(&mut tx, message_id, crate::time::now_micros()).await?;
    }
    tx.commit().await?;
    Ok(row.as_ref().map(reaction_from).transpose()?)
}

/// A reaction changes its message: its `updated_at` moves with it, as Stream's does. The SDK
/// and stream-chat-react decide whether to re-render a message by its `updated_at`, so
/// without this a second reactor's own count would stay stale.
async fn touch_message(tx: &mut super::db::Tx, message_id: &str, at: Micros) -> StoreResult<()> {
    query("UPDATE messages SET updated_at = $2 WHERE id = $1 AND updated_at < $2")
        .bind(message_id)
        .bind(at)
        .execute(tx)
        .await?;
    Ok(())
}

pub(super) async fn find_reactions(
    db: &Db,
    message_ids: &[String],
) -> StoreResult<Vec<ReactionRow>> {
    if message_ids.is_empty() {
        return Ok(Vec::new());
    }
    let mut qb = query(format!(
        "SELECT {REACTION_COLS} FROM reactions WHERE message_id IN "
    ));
    qb.push_list(message_ids);
    qb.push(" ORDER BY created_at, user_id, type");
    all(qb.fetch_all(db).await?, reaction_from)
}
