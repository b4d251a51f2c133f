//! Threads: `threads.data` (title and custom fields) sealed under the channel's key, like
//! the channel's own data; read state and receipts pass through.

use std::sync::Arc;

use async_trait::async_trait;

use super::{channel_subject, crypto_err, open_fields};
use crate::crypto::fields::FieldCrypto;
use crate::crypto::frame::Field;
use crate::store::{Audit, ParticipantRow, StoreResult, ThreadReadRow, ThreadRow, ThreadStore};
use crate::time::Micros;

/// A [`ThreadStore`] that seals thread data on write and opens it on read.
pub struct SealedThreads {
    pub(super) inner: Arc<dyn ThreadStore>,
    pub(super) crypto: Arc<FieldCrypto>,
}

fn field(t: &ThreadRow) -> Field<'_> {
    Field {
        table: "threads",
        column: "data",
        row_id: &t.parent_id,
    }
}

#[async_trait]
impl ThreadStore for SealedThreads {
    async fn find_threads(&self, parent_ids: &[String]) -> StoreResult<Vec<ThreadRow>> {
        let rows = self.inner.find_threads(parent_ids).await?;
        let mut out = Vec::with_capacity(rows.len());
        for mut t in rows {
            t.data = open_fields(&self.crypto, field(&t), &t.data).await?;
            out.push(t);
        }
        Ok(out)
    }
    async fn upsert_thread(&self, t: &ThreadRow, audit: Audit<'_>) -> StoreResult<()> {
        let mut sealed = t.clone();
        sealed.data = self
            .crypto
            .seal_fields(&channel_subject(&t.cid), field(t), &t.data)
            .await
            .map_err(crypto_err)?;
        self.inner.upsert_thread(&sealed, audit).await
    }
    async fn find_participants(&self, parent_ids: &[String]) -> StoreResult<Vec<ParticipantRow>> {
        self.inner.find_participants(parent_ids).await
    }
    async fn find_thread_ids_for_user(
        &self,
        user_id: &str,
        limit: i64,
    ) -> StoreResult<Vec<String>> {
        self.inner.find_thread_ids_for_user(user_id, limit).await
    }
    async fn find_thread_reads(
        &self,
        parent_ids: &[String],
        user_id: Option<&str>,
    ) -> StoreResult<Vec<ThreadReadRow>> {
        self.inner.find_thread_reads(parent_ids, user_id).await
    }
    async fn upsert_thread_read(&self, r: &ThreadReadRow, only_if_absent: bool) -> StoreResult<()> {
        self.inner.upsert_thread_read(r, only_if_absent).await
    }
    async fn update_delivered(
        &self,
        cid: &str,
        user_id: &str,
        at: Micros,
        message_id: &str,
        message_at: Micros,
    ) -> StoreResult<bool> {
        self.inner
            .update_delivered(cid, user_id, at, message_id, message_at)
            .await
    }
}
