//! Drafts: the draft message sealed under its author's key (erasing them shreds it).
//! Reminders hold no text and pass through.

use std::sync::Arc;

use async_trait::async_trait;

use super::{crypto_err, open_fields, user_subject};
use crate::crypto::fields::FieldCrypto;
use crate::crypto::frame::Field;
use crate::store::{Audit, DraftRow, DraftStore, ReminderRow, StoreResult};
use crate::time::Micros;

/// A [`DraftStore`] that seals drafts on write and opens them on read.
pub struct SealedDrafts {
    pub(super) inner: Arc<dyn DraftStore>,
    pub(super) crypto: Arc<FieldCrypto>,
}

fn row_id(d: &DraftRow) -> String {
    format!("{}/{}/{}", d.user_id, d.cid, d.parent_key)
}

impl SealedDrafts {
    async fn open(&self, mut d: DraftRow) -> StoreResult<DraftRow> {
        let id = row_id(&d);
        d.message = open_fields(
            &self.crypto,
            Field {
                table: "drafts",
                column: "message",
                row_id: &id,
            },
            &d.message,
        )
        .await?;
        Ok(d)
    }

    async fn open_opt(&self, d: Option<DraftRow>) -> StoreResult<Option<DraftRow>> {
        match d {
            Some(d) => Ok(Some(self.open(d).await?)),
            None => Ok(None),
        }
    }
}

#[async_trait]
impl DraftStore for SealedDrafts {
    async fn upsert_draft(&self, d: &DraftRow, audit: Audit<'_>) -> StoreResult<DraftRow> {
        let id = row_id(d);
        let mut sealed = d.clone();
        sealed.message = self
            .crypto
            .seal_fields(
                &user_subject(&d.user_id),
                Field {
                    table: "drafts",
                    column: "message",
                    row_id: &id,
                },
                &d.message,
            )
            .await
            .map_err(crypto_err)?;
        let stored = self.inner.upsert_draft(&sealed, audit).await?;
        self.open(stored).await
    }
    async fn find_draft(
        &self,
        user_id: &str,
        cid: &str,
        parent_key: &str,
    ) -> StoreResult<Option<DraftRow>> {
        let found = self.inner.find_draft(user_id, cid, parent_key).await?;
        self.open_opt(found).await
    }
    async fn find_drafts(&self, user_id: &str, cap: i64) -> StoreResult<Vec<DraftRow>> {
        let mut out = Vec::new();
        for d in self.inner.find_drafts(user_id, cap).await? {
            out.push(self.open(d).await?);
        }
        Ok(out)
    }
    async fn delete_draft(
        &self,
        user_id: &str,
        cid: &str,
        parent_key: &str,
        audit: Audit<'_>,
    ) -> StoreResult<Option<DraftRow>> {
        let removed = self
            .inner
            .delete_draft(user_id, cid, parent_key, audit)
            .await?;
        self.open_opt(removed).await
    }
    async fn insert_reminder(&self, r: &ReminderRow, audit: Audit<'_>) -> StoreResult<()> {
        self.inner.insert_reminder(r, audit).await
    }
    async fn update_reminder(
        &self,
        r: &ReminderRow,
        audit: Audit<'_>,
    ) -> StoreResult<Option<ReminderRow>> {
        self.inner.update_reminder(r, audit).await
    }
    async fn delete_reminder(
        &self,
        user_id: &str,
        message_id: &str,
        audit: Audit<'_>,
    ) -> StoreResult<Option<ReminderRow>> {
        self.inner.delete_reminder(user_id, message_id, audit).await
    }
    async fn find_reminder(
        &self,
        user_id: &str,
        message_id: &str,
    ) -> StoreResult<Option<ReminderRow>> {
        self.inner.find_reminder(user_id, message_id).await
    }
    async fn find_reminders(&self, user_id: &str, cap: i64) -> StoreResult<Vec<ReminderRow>> {
        self.inner.find_reminders(user_id, cap).await
    }
    async fn claim_due_reminders(&self, now: Micros, limit: i64) -> StoreResult<Vec<ReminderRow>> {
        self.inner.claim_due_reminders(now, limit).await
    }
}
