//! Users: the accounts chat writes name, with their role and custom data.

use async_trait::async_trait;

use super::audit::{Audit, insert_outbox};
use super::db::{Row, query};
use super::{Fields, SqlStore, StoreResult, all, fields_text, parse_fields};
use crate::time::Micros;

#[derive(Debug, Clone, PartialEq)]
pub struct UserRow {
    pub id: String,
    pub role: String,
    pub data: Fields,
    pub created_at: Micros,
    pub updated_at: Micros,
    pub last_active: Option<Micros>,
    pub deactivated_at: Option<Micros>,
    pub deleted_at: Option<Micros>,
    pub banned: bool,
}

#[async_trait]
pub trait UserStore: Send + Sync {
    /// Inserts or fully replaces a user (role and custom data); keeps `created_at`.
    async fn upsert_user(&self, user: &UserRow, audit: Audit<'_>) -> StoreResult<UserRow>;
    async fn find_user(&self, id: &str) -> StoreResult<Option<UserRow>>;
    async fn find_users(&self, ids: &[String]) -> StoreResult<Vec<UserRow>>;
    /// All users, oldest first, at most `cap` (queries filter these in memory).
    async fn find_all_users(&self, cap: i64) -> StoreResult<Vec<UserRow>>;
    async fn update_last_active(&self, id: &str, at: Micros) -> StoreResult<()>;
}

const USER_COLS: &str =
    "id, role, data, created_at, updated_at, last_active, deactivated_at, deleted_at, banned";

fn user_from(row: &Row) -> Result<UserRow, sqlx::Error> {
    Ok(UserRow {
        id: row.try_get("id")?,
        role: row.try_get("role")?,
        data: parse_fields(&row.try_get::<String, _>("data")?),
        created_at: row.try_get("created_at")?,
        updated_at: row.try_get("updated_at")?,
        last_active: row.try_get("last_active")?,
        deactivated_at: row.try_get("deactivated_at")?,
        deleted_at: row.try_get("deleted_at")?,
        banned: row.try_get("banned")?,
    })
}

#[async_trait]
impl UserStore for SqlStore {
    async fn upsert_user(&self, u: &UserRow, audit: Audit<'_>) -> StoreResult<UserRow> {
        let mut tx = self.db.begin_write().await?;
        let sql = format!(
            "INSERT INTO users ({USER_COLS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) \
             ON CONFLICT (id) DO UPDATE SET role = excluded.role, data = excluded.data, \
             updated_at = excluded.updated_at, deactivated_at = excluded.deactivated_at, \
             deleted_at = excluded.deleted_at, banned = excluded.banned, \
             last_active = COALESCE(excluded.last_active, users.last_active) \
             RETURNING {USER_COLS}"
        );
        let row = query(sql)
            .bind(&u.id)
            .bind(&u.role)
            .bind(fields_text(&u.data))
            .bind(u.created_at)
            .bind(u.updated_at)
            .bind(u.last_active)
            .bind(u.deactivated_at)
            .bind(u.deleted_at)
            .bind(u.banned)
            .fetch_one(&mut tx)
            .await?;
        insert_outbox(&mut tx, audit).await?;
        tx.commit().await?;
        Ok(user_from(&row)?)
    }

    async fn find_user(&self, id: &str) -> StoreResult<Option<UserRow>> {
        let sql = format!("SELECT {USER_COLS} FROM users WHERE id = $1");
        let row = query(sql).bind(id).fetch_optional(&self.db).await?;
        Ok(row.as_ref().map(user_from).transpose()?)
    }

    async fn find_users(&self, ids: &[String]) -> StoreResult<Vec<UserRow>> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let mut qb = query(format!("SELECT {USER_COLS} FROM users WHERE id IN "));
        qb.push_list(ids);
        all(qb.fetch_all(&self.db).await?, user_from)
    }

    async fn find_all_users(&self, cap: i64) -> StoreResult<Vec<UserRow>> {
        let sql = format!("SELECT {USER_COLS} FROM users ORDER BY created_at, id LIMIT $1");
        all(query(sql).bind(cap).fetch_all(&self.db).await?, user_from)
    }

    async fn update_last_active(&self, id: &str, at: Micros) -> StoreResult<()> {
        query("UPDATE users SET last_active = $2 WHERE id = $1")
            .bind(id)
            .bind(at)
            .execute(&self.db)
            .await?;
        Ok(())
    }
}
