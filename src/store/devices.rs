//! Push devices and push preferences (issue 16). The store keeps what it is given: the
//! push token arrives sealed (`chat::device` seals it under the user's key) and leaves
//! sealed. Push delivery is a later issue; this is registration storage only.

use async_trait::async_trait;

use super::audit::{Audit, execute_audited, insert_outbox};
use super::db::{Row, query};
use super::{SqlStore, StoreResult, all};
use crate::time::Micros;

#[derive(Debug, Clone, PartialEq)]
pub struct DeviceRow {
    /// UUIDv7, generated before insert (the sealing AAD binds it).
    pub row_id: String,
    pub user_id: String,
    /// The push token, sealed.
    pub token: String,
    pub push_provider: String,
    pub push_provider_name: String,
    pub created_at: Micros,
}

#[derive(Debug, Clone, PartialEq)]
pub struct PushPreferenceRow {
    pub user_id: String,
    /// `""` for the user's own preferences, else the channel's cid.
    pub channel_cid: String,
    /// A JSON object of levels (no free text).
    pub preferences: String,
    pub updated_at: Micros,
}

#[async_trait]
pub trait DeviceStore: Send + Sync {
    /// The user's devices, oldest first.
    async fn find_devices(&self, user_id: &str) -> StoreResult<Vec<DeviceRow>>;
    /// Inserts `device` and deletes the user's devices in `replaced` (the same token
    /// registered again, or the oldest beyond the cap), in one transaction with `audit`.
    async fn insert_device(
        &self,
        device: &DeviceRow,
        replaced: &[String],
        audit: Audit<'_>,
    ) -> StoreResult<()>;
    /// Deletes the user's devices with these row ids; returns how many.
    async fn delete_devices(
        &self,
        user_id: &str,
        row_ids: &[String],
        audit: Audit<'_>,
    ) -> StoreResult<u64>;
    /// Inserts or replaces push preferences.
    async fn upsert_push_preferences(
        &self,
        rows: &[PushPreferenceRow],
        audit: Audit<'_>,
    ) -> StoreResult<()>;
    /// The user's push preferences (their own and per channel).
    async fn find_push_preferences(&self, user_id: &str) -> StoreResult<Vec<PushPreferenceRow>>;
}

const DEVICE_COLS: &str = "row_id, user_id, token, push_provider, push_provider_name, created_at";

fn device_from(row: &Row) -> Result<DeviceRow, sqlx::Error> {
    Ok(DeviceRow {
        row_id: row.try_get("row_id")?,
        user_id: row.try_get("user_id")?,
        token: row.try_get("token")?,
        push_provider: row.try_get("push_provider")?,
        push_provider_name: row.try_get("push_provider_name")?,
        created_at: row.try_get("created_at")?,
    })
}

fn preference_from(row: &Row) -> Result<PushPreferenceRow, sqlx::Error> {
    Ok(PushPreferenceRow {
        user_id: row.try_get("user_id")?,
        channel_cid: row.try_get("channel_cid")?,
        preferences: row.try_get("preferences")?,
        updated_at: row.try_get("updated_at")?,
    })
}

#[async_trait]
impl DeviceStore for SqlStore {
    async fn find_devices(&self, user_id: &str) -> StoreResult<Vec<DeviceRow>> {
        let sql = format!(
            "SELECT {DEVICE_COLS} FROM devices WHERE user_id = $1 ORDER BY created_at, row_id"
        );
        all(
            query(sql).bind(user_id).fetch_all(&self.db).await?,
            device_from,
        )
    }

    async fn insert_device(
        &self,
        d: &DeviceRow,
        replaced: &[String],
        audit: Audit<'_>,
    ) -> StoreResult<()> {
        let mut tx = self.db.begin_write().await?;
        if !replaced.is_empty() {
            let mut qb = query("DELETE FROM devices WHERE user_id = ");
            qb.push_bind(&d.user_id);
            qb.push(" AND row_id IN ");
            qb.push_list(replaced);
            qb.execute(&mut tx).await?;
        }
        query(format!(
            "INSERT INTO devices ({DEVICE_COLS}) VALUES ($1, $2, $3, $4, $5, $6)"
        ))
        .bind(&d.row_id)
        .bind(&d.user_id)
        .bind(&d.token)
        .bind(&d.push_provider)
        .bind(&d.push_provider_name)
        .bind(d.created_at)
        .execute(&mut tx)
        .await?;
        insert_outbox(&mut tx, audit).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn delete_devices(
        &self,
        user_id: &str,
        row_ids: &[String],
        audit: Audit<'_>,
    ) -> StoreResult<u64> {
        if row_ids.is_empty() {
            return Ok(0);
        }
        let mut qb = query("DELETE FROM devices WHERE user_id = ");
        qb.push_bind(user_id);
        qb.push(" AND row_id IN ");
        qb.push_list(row_ids);
        execute_audited(&self.db, qb, audit).await
    }

    async fn upsert_push_preferences(
        &self,
        rows: &[PushPreferenceRow],
        audit: Audit<'_>,
    ) -> StoreResult<()> {
        let mut tx = self.db.begin_write().await?;
        for p in rows {
            query(
                "INSERT INTO push_preferences (user_id, channel_cid, preferences, updated_at) \
                 VALUES ($1, $2, $3, $4) ON CONFLICT (user_id, channel_cid) DO UPDATE SET \
                 preferences = excluded.preferences, updated_at = excluded.updated_at",
            )
            .bind(&p.user_id)
            .bind(&p.channel_cid)
            .bind(&p.preferences)
            .bind(p.updated_at)
            .execute(&mut tx)
            .await?;
        }
        insert_outbox(&mut tx, audit).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn find_push_preferences(&self, user_id: &str) -> StoreResult<Vec<PushPreferenceRow>> {
        all(
            query(
                "SELECT user_id, channel_cid, preferences, updated_at FROM push_preferences \
                 WHERE user_id = $1 ORDER BY channel_cid",
            )
            .bind(user_id)
            .fetch_all(&self.db)
            .await?,
            preference_from,
        )
    }
}
