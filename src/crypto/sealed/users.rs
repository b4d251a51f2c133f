//! Users: `users.data` sealed under the user's key.

use std::sync::Arc;

use async_trait::async_trait;

use super::{crypto_err, open_fields, user_subject};
use crate::crypto::fields::FieldCrypto;
use crate::crypto::frame::Field;
use crate::store::{Audit, StoreResult, UserRow, UserStore};
use crate::time::Micros;

/// A [`UserStore`] that seals profiles on write and opens them on read.
pub struct SealedUsers {
    pub(super) inner: Arc<dyn UserStore>,
    pub(super) crypto: Arc<FieldCrypto>,
}

impl SealedUsers {
    async fn open(&self, mut u: UserRow) -> StoreResult<UserRow> {
        u.data = open_fields(
            &self.crypto,
            Field {
                table: "users",
                column: "data",
                row_id: &u.id,
            },
            &u.data,
        )
        .await?;
        Ok(u)
    }
}

#[async_trait]
impl UserStore for SealedUsers {
    async fn upsert_user(&self, user: &UserRow, audit: Audit<'_>) -> StoreResult<UserRow> {
        let mut sealed = user.clone();
        sealed.data = self
            .crypto
            .seal_fields(
                &user_subject(&user.id),
                Field {
                    table: "users",
                    column: "data",
                    row_id: &user.id,
                },
                &user.data,
            )
            .await
            .map_err(crypto_err)?;
        let stored = self.inner.upsert_user(&sealed, audit).await?;
        self.open(stored).await
    }
    async fn find_user(&self, id: &str) -> StoreResult<Option<UserRow>> {
        match self.inner.find_user(id).await? {
            Some(u) => Ok(Some(self.open(u).await?)),
            None => Ok(None),
        }
    }
    async fn find_users(&self, ids: &[String]) -> StoreResult<Vec<UserRow>> {
        let mut out = Vec::new();
        for u in self.inner.find_users(ids).await? {
            out.push(self.open(u).await?);
        }
        Ok(out)
    }
    async fn find_all_users(&self, cap: i64) -> StoreResult<Vec<UserRow>> {
        let mut out = Vec::new();
        for u in self.inner.find_all_users(cap).await? {
            out.push(self.open(u).await?);
        }
        Ok(out)
    }
    async fn update_last_active(&self, id: &str, at: Micros) -> StoreResult<()> {
        self.inner.update_last_active(id, at).await
    }
}
