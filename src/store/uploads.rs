//! Uploads: one row per uploaded file or image (the sealed blob lives in blob storage,
//! `chat::upload::blob`). The name column holds ciphertext; the store never sees plaintext.

use async_trait::async_trait;

use super::db::{Row, query};
use super::{SqlStore, StoreResult, all};
use crate::time::Micros;

#[derive(Debug, Clone, PartialEq)]
pub struct UploadRow {
    pub id: String,
    /// `None` for app-level uploads (`POST /uploads/file|image`).
    pub cid: Option<String>,
    pub user_id: String,
    /// `file` or `image`.
    pub kind: String,
    /// Sealed (`uploads.name`).
    pub name: String,
    pub mime_type: String,
    pub size: i64,
    /// `local` or `s3`.
    pub storage: String,
    pub created_at: Micros,
}

const COLS: &str = "id, cid, user_id, kind, name, mime_type, size, storage, created_at";

fn upload_from(row: &Row) -> Result<UploadRow, sqlx::Error> {
    Ok(UploadRow {
        id: row.try_get("id")?,
        cid: row.try_get("cid")?,
        user_id: row.try_get("user_id")?,
        kind: row.try_get("kind")?,
        name: row.try_get("name")?,
        mime_type: row.try_get("mime_type")?,
        size: row.try_get("size")?,
        storage: row.try_get("storage")?,
        created_at: row.try_get("created_at")?,
    })
}

#[async_trait]
pub trait UploadStore: Send + Sync {
    async fn insert_upload(&self, row: &UploadRow) -> StoreResult<()>;
    async fn find_upload(&self, id: &str) -> StoreResult<Option<UploadRow>>;
    /// The uploads of `user_id` (erasure deletes their blobs).
    async fn find_uploads_of_user(&self, user_id: &str) -> StoreResult<Vec<UploadRow>>;
    /// The uploads into channels of `kind` made before `before` (retention).
    async fn find_uploads_before(
        &self,
        kind: &str,
        before: Micros,
        limit: i64,
    ) -> StoreResult<Vec<UploadRow>>;
    /// Deletes the row; whether there was one.
    async fn delete_upload(&self, id: &str) -> StoreResult<bool>;
}

#[async_trait]
impl UploadStore for SqlStore {
    async fn insert_upload(&self, r: &UploadRow) -> StoreResult<()> {
        query(format!(
            "INSERT INTO uploads ({COLS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)"
        ))
        .bind(&r.id)
        .bind(&r.cid)
        .bind(&r.user_id)
        .bind(&r.kind)
        .bind(&r.name)
        .bind(&r.mime_type)
        .bind(r.size)
        .bind(&r.storage)
        .bind(r.created_at)
        .execute(&self.db)
        .await?;
        Ok(())
    }

    async fn find_upload(&self, id: &str) -> StoreResult<Option<UploadRow>> {
        let row = query(format!("SELECT {COLS} FROM uploads WHERE id = $1"))
            .bind(id)
            .fetch_optional(&self.db)
            .await?;
        Ok(row.as_ref().map(upload_from).transpose()?)
    }

    async fn find_uploads_of_user(&self, user_id: &str) -> StoreResult<Vec<UploadRow>> {
        let rows = query(format!(
            "SELECT {COLS} FROM uploads WHERE user_id = $1 ORDER BY id"
        ))
        .bind(user_id)
        .fetch_all(&self.db)
        .await?;
        all(rows, upload_from)
    }

    async fn find_uploads_before(
        &self,
        kind: &str,
        before: Micros,
        limit: i64,
    ) -> StoreResult<Vec<UploadRow>> {
        let rows = query(format!(
            "SELECT {COLS} FROM uploads WHERE cid LIKE $1 AND created_at < $2 \
             ORDER BY created_at, id LIMIT $3"
        ))
        .bind(format!("{kind}:%"))
        .bind(before)
        .bind(limit)
        .fetch_all(&self.db)
        .await?;
        all(rows, upload_from)
    }

    async fn delete_upload(&self, id: &str) -> StoreResult<bool> {
        Ok(query("DELETE FROM uploads WHERE id = $1")
            .bind(id)
            .execute(&self.db)
            .await?
            > 0)
    }
}
