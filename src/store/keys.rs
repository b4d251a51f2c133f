//! Field-encryption keys: KEKs wrapped by the root key, DEKs wrapped by a KEK. Rows hold
//! only wrapped key material.

use async_trait::async_trait;

use super::db::{Row, query};
use super::{SqlStore, StoreResult, all};
use crate::time::Micros;

/// A stored key-encryption key (wrapped by the root key).
#[derive(Clone)]
pub struct KekRow {
    pub id: String,
    pub wrapped: Vec<u8>,
    pub provider: String,
    pub created_at: Micros,
    pub active: bool,
}

/// A stored data-encryption key (wrapped by a KEK); `wrapped` is `None` once destroyed.
#[derive(Clone)]
pub struct DekRow {
    pub id: String,
    pub subject: String,
    pub kek_id: String,
    pub wrapped: Option<Vec<u8>>,
    pub created_at: Micros,
    pub destroyed_at: Option<Micros>,
    pub active: bool,
}

/// Keys for field encryption. Rows hold only wrapped key material.
#[async_trait]
pub trait KeyStore: Send + Sync {
    async fn find_active_kek(&self) -> StoreResult<Option<KekRow>>;
    async fn find_kek(&self, id: &str) -> StoreResult<Option<KekRow>>;
    /// Stores a KEK; `true` if stored, `false` if another node stored an active one first.
    async fn insert_kek(&self, kek: &KekRow) -> StoreResult<bool>;
    async fn find_active_dek(&self, subject: &str) -> StoreResult<Option<DekRow>>;
    async fn find_dek(&self, id: &str) -> StoreResult<Option<DekRow>>;
    async fn insert_dek(&self, dek: &DekRow) -> StoreResult<()>;
    /// Destroys every DEK of a subject (drops the wrapped bytes); returns how many.
    async fn destroy_deks(&self, subject: &str, at: Micros) -> StoreResult<u64>;
    /// DEKs (not destroyed) wrapped by the given KEK.
    async fn find_deks_by_kek(&self, kek_id: &str) -> StoreResult<Vec<DekRow>>;
    /// Stores a DEK's new wrapping (KEK rotation).
    async fn update_dek_wrapping(&self, id: &str, kek_id: &str, wrapped: &[u8]) -> StoreResult<()>;
    /// Makes `kek_id` the only active KEK.
    async fn activate_kek(&self, kek_id: &str) -> StoreResult<()>;
    /// Retires the active DEKs of a subject: new writes get a new one.
    async fn retire_deks(&self, subject: &str) -> StoreResult<u64>;
}

fn kek_from(row: &Row) -> Result<KekRow, sqlx::Error> {
    Ok(KekRow {
        id: row.try_get("id")?,
        wrapped: row.try_get("wrapped")?,
        provider: row.try_get("provider")?,
        created_at: row.try_get("created_at")?,
        active: row.try_get("active")?,
    })
}

fn dek_from(row: &Row) -> Result<DekRow, sqlx::Error> {
    Ok(DekRow {
        id: row.try_get("id")?,
        subject: row.try_get("subject")?,
        kek_id: row.try_get("kek_id")?,
        wrapped: row.try_get("wrapped")?,
        created_at: row.try_get("created_at")?,
        destroyed_at: row.try_get("destroyed_at")?,
        active: row.try_get("active")?,
    })
}

#[async_trait]
impl KeyStore for SqlStore {
    async fn find_active_kek(&self) -> StoreResult<Option<KekRow>> {
        let row = query(
            "SELECT id, wrapped, provider, created_at, active FROM crypto_keks WHERE \
             active = TRUE ORDER BY created_at DESC LIMIT 1",
        )
        .fetch_optional(&self.db)
        .await?;
        Ok(row.as_ref().map(kek_from).transpose()?)
    }

    async fn find_kek(&self, id: &str) -> StoreResult<Option<KekRow>> {
        let row = query(
            "SELECT id, wrapped, provider, created_at, active FROM crypto_keks WHERE id = $1",
        )
        .bind(id)
        .fetch_optional(&self.db)
        .await?;
        Ok(row.as_ref().map(kek_from).transpose()?)
    }

    async fn insert_kek(&self, k: &KekRow) -> StoreResult<bool> {
        let mut tx = self.db.begin_write().await?;
        let existing: Option<String> =
            query("SELECT id FROM crypto_keks WHERE active = TRUE LIMIT 1")
                .scalar_optional(&mut tx)
                .await?;
        if k.active && existing.is_some() {
            return Ok(false);
        }
        query(
            "INSERT INTO crypto_keks (id, wrapped, provider, created_at, active) VALUES ($1, \
             $2, $3, $4, $5)",
        )
        .bind(&k.id)
        .bind(&k.wrapped)
        .bind(&k.provider)
        .bind(k.created_at)
        .bind(k.active)
        .execute(&mut tx)
        .await?;
        tx.commit().await?;
        Ok(true)
    }

    async fn find_active_dek(&self, subject: &str) -> StoreResult<Option<DekRow>> {
        let row = query(
            "SELECT id, subject, kek_id, wrapped, created_at, destroyed_at, active FROM \
             crypto_deks \
             WHERE subject = $1 AND active = TRUE AND destroyed_at IS NULL ORDER BY created_at \
             DESC LIMIT 1",
        )
        .bind(subject)
        .fetch_optional(&self.db)
        .await?;
        Ok(row.as_ref().map(dek_from).transpose()?)
    }

    async fn find_dek(&self, id: &str) -> StoreResult<Option<DekRow>> {
        let row = query(
            "SELECT id, subject, kek_id, wrapped, created_at, destroyed_at, active \
             FROM crypto_deks WHERE id = $1",
        )
        .bind(id)
        .fetch_optional(&self.db)
        .await?;
        Ok(row.as_ref().map(dek_from).transpose()?)
    }

    async fn insert_dek(&self, d: &DekRow) -> StoreResult<()> {
        query(
            "INSERT INTO crypto_deks (id, subject, kek_id, wrapped, created_at, destroyed_at, \
             active) \
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(&d.id)
        .bind(&d.subject)
        .bind(&d.kek_id)
        .bind(&d.wrapped)
        .bind(d.created_at)
        .bind(d.destroyed_at)
        .bind(d.active)
        .execute(&self.db)
        .await?;
        Ok(())
    }

    async fn find_deks_by_kek(&self, kek_id: &str) -> StoreResult<Vec<DekRow>> {
        let rows = query(
            "SELECT id, subject, kek_id, wrapped, created_at, destroyed_at, active FROM \
             crypto_deks \
             WHERE kek_id = $1 AND destroyed_at IS NULL ORDER BY id",
        )
        .bind(kek_id)
        .fetch_all(&self.db)
        .await?;
        all(rows, dek_from)
    }

    async fn update_dek_wrapping(&self, id: &str, kek_id: &str, wrapped: &[u8]) -> StoreResult<()> {
        query(
            "UPDATE crypto_deks SET kek_id = $2, wrapped = $3 WHERE id = $1 AND destroyed_at IS \
             NULL",
        )
        .bind(id)
        .bind(kek_id)
        .bind(wrapped)
        .execute(&self.db)
        .await?;
        Ok(())
    }

    async fn activate_kek(&self, kek_id: &str) -> StoreResult<()> {
        let mut tx = self.db.begin_write().await?;
        query("UPDATE crypto_keks SET active = FALSE WHERE id <> $1")
            .bind(kek_id)
            .execute(&mut tx)
            .await?;
        query("UPDATE crypto_keks SET active = TRUE WHERE id = $1")
            .bind(kek_id)
            .execute(&mut tx)
            .await?;
        tx.commit().await?;
        Ok(())
    }

    async fn retire_deks(&self, subject: &str) -> StoreResult<u64> {
        let done =
            query("UPDATE crypto_deks SET active = FALSE WHERE subject = $1 AND active = TRUE")
                .bind(subject)
                .execute(&self.db)
                .await?;
        Ok(done)
    }

    async fn destroy_deks(&self, subject: &str, at: Micros) -> StoreResult<u64> {
        let done = query(
            "UPDATE crypto_deks SET wrapped = NULL, destroyed_at = $2, active = FALSE \
             WHERE subject = $1 AND destroyed_at IS NULL",
        )
        .bind(subject)
        .bind(at)
        .execute(&self.db)
        .await?;
        Ok(done)
    }
}
