//! Usage metering: monthly active users and connection peaks.

use async_trait::async_trait;

use super::db::query;
use super::{SqlStore, StoreResult};
use crate::time::Micros;

/// Usage metering (monthly active users, connection peaks).
#[async_trait]
pub trait UsageStore: Send + Sync {
    /// Records that `user_id` connected on `day` (YYYY-MM-DD) of `month` (YYYY-MM).
    async fn insert_active_user(&self, month: &str, day: &str, user_id: &str) -> StoreResult<()>;
    /// Raises a node's peak for a bucket to `peak` (never lowers it).
    async fn upsert_connection_peak(
        &self,
        node: &str,
        bucket: Micros,
        peak: i64,
    ) -> StoreResult<()>;
    /// Distinct users per first-connection day of the month.
    async fn count_new_active_users_by_day(&self, month: &str) -> StoreResult<Vec<(String, i64)>>;
    /// Distinct users per day, for days starting with `month`.
    async fn count_daily_users(&self, month: &str) -> StoreResult<Vec<(String, i64)>>;
    /// Per bucket in [from, to): the sum of every node's peak.
    async fn find_connection_peaks(
        &self,
        from: Micros,
        to: Micros,
    ) -> StoreResult<Vec<(Micros, i64)>>;
}

#[async_trait]
impl UsageStore for SqlStore {
    async fn insert_active_user(&self, month: &str, day: &str, user_id: &str) -> StoreResult<()> {
        let mut tx = self.db.begin_write().await?;
        query(
            "INSERT INTO usage_active_users (month, user_id, first_day) VALUES ($1, $2, $3) \
             ON CONFLICT (month, user_id) DO NOTHING",
        )
        .bind(month)
        .bind(user_id)
        .bind(day)
        .execute(&mut tx)
        .await?;
        query(
            "INSERT INTO usage_daily_users (day, user_id) VALUES ($1, $2) ON CONFLICT (day, \
             user_id) DO NOTHING",
        )
        .bind(day)
        .bind(user_id)
        .execute(&mut tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }

    async fn upsert_connection_peak(
        &self,
        node: &str,
        bucket: Micros,
        peak: i64,
    ) -> StoreResult<()> {
        query(
            "INSERT INTO usage_connection_peaks (node, bucket, peak) VALUES ($1, $2, $3) \
             ON CONFLICT (node, bucket) DO UPDATE SET peak = CASE \
             WHEN excluded.peak > usage_connection_peaks.peak THEN excluded.peak \
             ELSE usage_connection_peaks.peak END",
        )
        .bind(node)
        .bind(bucket)
        .bind(peak)
        .execute(&self.db)
        .await?;
        Ok(())
    }

    async fn count_new_active_users_by_day(&self, month: &str) -> StoreResult<Vec<(String, i64)>> {
        let rows = query(
            "SELECT first_day, COUNT(*) AS n FROM usage_active_users WHERE month = $1 \
             GROUP BY first_day ORDER BY first_day",
        )
        .bind(month)
        .fetch_all(&self.db)
        .await?;
        rows.iter()
            .map(|r| Ok((r.try_get("first_day")?, r.try_get("n")?)))
            .collect()
    }

    async fn count_daily_users(&self, month: &str) -> StoreResult<Vec<(String, i64)>> {
        let rows = query(
            "SELECT day, COUNT(*) AS n FROM usage_daily_users WHERE day LIKE $1 GROUP BY day \
             ORDER BY day",
        )
        .bind(format!("{month}-%"))
        .fetch_all(&self.db)
        .await?;
        rows.iter()
            .map(|r| Ok((r.try_get("day")?, r.try_get("n")?)))
            .collect()
    }

    async fn find_connection_peaks(
        &self,
        from: Micros,
        to: Micros,
    ) -> StoreResult<Vec<(Micros, i64)>> {
        let rows = query(
            "SELECT bucket, CAST(SUM(peak) AS BIGINT) AS total FROM usage_connection_peaks \
             WHERE bucket >= $1 AND bucket < $2 GROUP BY bucket ORDER BY bucket",
        )
        .bind(from)
        .bind(to)
        .fetch_all(&self.db)
        .await?;
        rows.iter()
            .map(|r| Ok((r.try_get("bucket")?, r.try_get("total")?)))
            .collect()
    }
}
