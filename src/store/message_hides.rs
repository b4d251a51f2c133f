//! Messages deleted for one user only (`DELETE /messages/{id}?delete_for_me=true`): the
//! message stays for everyone else and reads as deleted for that user. A row holds no
//! content, only who hid which message when.

use async_trait::async_trait;

use super::audit::{Audit, execute_audited};
use super::db::query;
use super::{SqlStore, StoreResult};
use crate::time::Micros;

#[async_trait]
pub trait MessageHideStore: Send + Sync {
    /// Hides `message_id` for `user_id` (again: keeps the first time) with its records.
    async fn insert_message_hide(
        &self,
        message_id: &str,
        user_id: &str,
        at: Micros,
        audit: Audit<'_>,
    ) -> StoreResult<()>;
    /// Which of `message_ids` `user_id` hid, and when.
    async fn find_message_hides(
        &self,
        user_id: &str,
        message_ids: &[String],
    ) -> StoreResult<Vec<(String, Micros)>>;
    /// Forgets what `user_id` hid (erasure of the user).
    async fn delete_message_hides_of_user(&self, user_id: &str) -> StoreResult<()>;
}

#[async_trait]
impl MessageHideStore for SqlStore {
    async fn insert_message_hide(
        &self,
        message_id: &str,
        user_id: &str,
        at: Micros,
        audit: Audit<'_>,
    ) -> StoreResult<()> {
        let write = query(
            "INSERT INTO message_hides (message_id, user_id, hidden_at) VALUES ($1, $2, $3) \
             ON CONFLICT (message_id, user_id) DO NOTHING",
        )
        .bind(message_id)
        .bind(user_id)
        .bind(at);
        execute_audited(&self.db, write, audit).await?;
        Ok(())
    }

    async fn find_message_hides(
        &self,
        user_id: &str,
        message_ids: &[String],
    ) -> StoreResult<Vec<(String, Micros)>> {
        if message_ids.is_empty() {
            return Ok(Vec::new());
        }
        let mut qb = query("SELECT message_id, hidden_at FROM message_hides WHERE user_id = ");
        qb.push_bind(user_id.to_string());
        qb.push(" AND message_id IN ");
        qb.push_list(message_ids);
        let rows = qb.fetch_all(&self.db).await?;
        rows.iter()
            .map(|r| Ok((r.try_get("message_id")?, r.try_get("hidden_at")?)))
            .collect::<Result<Vec<_>, sqlx::Error>>()
            .map_err(Into::into)
    }

    async fn delete_message_hides_of_user(&self, user_id: &str) -> StoreResult<()> {
        query("DELETE FROM message_hides WHERE user_id = $1")
            .bind(user_id)
            .execute(&self.db)
            .await?;
        Ok(())
    }
}
