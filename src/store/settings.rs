//! App settings: small named values (the app's configuration, generated secrets).

use async_trait::async_trait;

use super::SqlStore;
use super::StoreResult;
use super::db::query;

#[async_trait]
pub trait SettingsStore: Send + Sync {
    async fn find_setting(&self, key: &str) -> StoreResult<Option<String>>;
    /// Stores `value` under `key` unless a value is there; returns the stored value.
    async fn insert_setting_if_absent(&self, key: &str, value: &str) -> StoreResult<String>;
    async fn upsert_setting(&self, key: &str, value: &str) -> StoreResult<()>;
    async fn delete_setting(&self, key: &str) -> StoreResult<()>;
}

#[async_trait]
impl SettingsStore for SqlStore {
    async fn find_setting(&self, key: &str) -> StoreResult<Option<String>> {
        Ok(query("SELECT value FROM settings WHERE key = $1")
            .bind(key)
            .scalar_optional(&self.db)
            .await?)
    }

    async fn upsert_setting(&self, key: &str, value: &str) -> StoreResult<()> {
        query(
            "INSERT INTO settings (key, value) VALUES ($1, $2) ON CONFLICT (key) DO UPDATE SET \
             value = excluded.value",
        )
        .bind(key)
        .bind(value)
        .execute(&self.db)
        .await?;
        Ok(())
    }

    async fn delete_setting(&self, key: &str) -> StoreResult<()> {
        query("DELETE FROM settings WHERE key = $1")
            .bind(key)
            .execute(&self.db)
            .await?;
        Ok(())
    }

    async fn insert_setting_if_absent(&self, key: &str, value: &str) -> StoreResult<String> {
        query("INSERT INTO settings (key, value) VALUES ($1, $2) ON CONFLICT (key) DO NOTHING")
            .bind(key)
            .bind(value)
            .execute(&self.db)
            .await?;
        Ok(query("SELECT value FROM settings WHERE key = $1")
            .bind(key)
            .scalar_one(&self.db)
            .await?)
    }
}
