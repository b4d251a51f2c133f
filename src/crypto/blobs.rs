//! Sealed blobs: uploaded files, encrypted under their uploader's DEK before they leave the
//! process, kept under the data directory (default) or in an S3 bucket. A blob is one
//! [`super::frame`] (AAD `uploads/content/<upload id>`), so crypto-shredding the uploader
//! makes every copy (backups, bucket versions) unreadable, and a blob copied to another
//! upload's name fails to open. The storage only ever sees ciphertext.

use std::path::PathBuf;
use std::sync::Arc;

use async_trait::async_trait;
use zeroize::Zeroizing;

use super::fields::{FieldCrypto, Opened};
use super::frame::{self, Field};
use crate::store::UploadStore;

/// Where sealed blobs are kept: bytes under a name (the upload id, checked by the caller to
/// be a UUID, so it is a safe file name and object key).
#[async_trait]
pub trait BlobStore: Send + Sync {
    /// `local` or `s3`, stored with each upload.
    fn kind(&self) -> &'static str;
    async fn put(&self, name: &str, bytes: Vec<u8>) -> anyhow::Result<()>;
    /// The bytes, or `None` when there is no such blob.
    async fn get(&self, name: &str) -> anyhow::Result<Option<Vec<u8>>>;
    /// Deletes the blob; deleting a missing one is not an error (erasure retries).
    async fn delete(&self, name: &str) -> anyhow::Result<()>;
}

/// Blobs as files under a directory (`<data dir>/uploads`), private to the process owner.
pub struct LocalBlobs {
    dir: PathBuf,
}

impl LocalBlobs {
    pub fn new(dir: PathBuf) -> Self {
        Self { dir }
    }

    fn path(&self, name: &str) -> anyhow::Result<PathBuf> {
        anyhow::ensure!(
            !name.is_empty() && name.bytes().all(|b| b.is_ascii_hexdigit() || b == b'-'),
            "a blob name must be an upload id"
        );
        Ok(self.dir.join(name))
    }
}

#[async_trait]
impl BlobStore for LocalBlobs {
    fn kind(&self) -> &'static str {
        "local"
    }

    async fn put(&self, name: &str, bytes: Vec<u8>) -> anyhow::Result<()> {
        let path = self.path(name)?;
        let dir = self.dir.clone();
        tokio::task::spawn_blocking(move || -> anyhow::Result<()> {
            use std::io::Write;
            std::fs::create_dir_all(&dir)?;
            let tmp = path.with_extension("part");
            let mut opts = std::fs::OpenOptions::new();
            opts.write(true).create(true).truncate(true);
            #[cfg(unix)]
            {
                use std::os::unix::fs::OpenOptionsExt;
                opts.mode(0o600);
            }
            let mut f = opts.open(&tmp)?;
            f.write_all(&bytes)?;
            f.sync_all()?;
            std::fs::rename(&tmp, &path)?;
            Ok(())
        })
        .await?
    }

    async fn get(&self, name: &str) -> anyhow::Result<Option<Vec<u8>>> {
        match tokio::fs::read(self.path(name)?).await {
            Ok(b) => Ok(Some(b)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    async fn delete(&self, name: &str) -> anyhow::Result<()> {
        match tokio::fs::remove_file(self.path(name)?).await {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(e.into()),
        }
    }
}

#[cfg(feature = "s3-checkpoints")]
pub use s3::S3Blobs;

#[cfg(feature = "s3-checkpoints")]
mod s3 {
    use async_trait::async_trait;
    use reqwest::{Method, StatusCode, Url};

    use super::BlobStore;
    use crate::crypto::aws::{AwsClient, CredentialSource, uri_encode};

    /// Blobs as objects `<prefix><name>` in an S3 bucket (path-style URLs, SigV4-signed).
    /// The role needs `s3:GetObject`, `s3:PutObject`, `s3:DeleteObject` on the prefix.
    pub struct S3Blobs {
        aws: AwsClient,
        origin: String,
        bucket: String,
        prefix: String,
    }

    impl S3Blobs {
        pub fn new(
            bucket: &str,
            prefix: &str,
            region: &str,
            endpoint: Option<&str>,
            credentials: CredentialSource,
        ) -> anyhow::Result<Self> {
            anyhow::ensure!(
                !bucket.is_empty() && !bucket.contains('/'),
                "the upload bucket name {bucket:?} is not a bucket name"
            );
            anyhow::ensure!(
                !prefix.starts_with('/'),
                "the upload key prefix must not start with /"
            );
            let endpoint = endpoint
                .map(str::to_string)
                .unwrap_or_else(|| format!("https://s3.{region}.amazonaws.com"));
            let url = Url::parse(&endpoint)
                .map_err(|e| anyhow::anyhow!("the S3 endpoint is not a URL: {e}"))?;
            anyhow::ensure!(
                url.username().is_empty()
                    && url.password().is_none()
                    && url.path() == "/"
                    && url.query().is_none(),
                "the S3 endpoint must be scheme://host[:port] only"
            );
            Ok(Self {
                aws: AwsClient::new(
                    "s3",
                    region,
                    credentials,
                    std::time::Duration::from_secs(60),
                )?,
                origin: url.as_str().trim_end_matches('/').to_string(),
                bucket: bucket.to_string(),
                prefix: prefix.to_string(),
            })
        }

        fn url(&self, name: &str) -> anyhow::Result<Url> {
            Ok(Url::parse(&format!(
                "{}/{}/{}",
                self.origin,
                uri_encode(&self.bucket, false),
                uri_encode(&format!("{}{name}", self.prefix), true)
            ))?)
        }
    }

    /// The `<Code>` of an S3 XML error (never the message, which can echo the request).
    fn code(body: &[u8]) -> String {
        let text = String::from_utf8_lossy(body);
        text.split_once("<Code>")
            .and_then(|(_, rest)| rest.split_once("</Code>"))
            .map(|(c, _)| c.chars().take(64).collect())
            .unwrap_or_default()
    }

    #[async_trait]
    impl BlobStore for S3Blobs {
        fn kind(&self) -> &'static str {
            "s3"
        }

        async fn put(&self, name: &str, bytes: Vec<u8>) -> anyhow::Result<()> {
            let res = self
                .aws
                .send(
                    Method::PUT,
                    self.url(name)?,
                    &[("content-type", "application/octet-stream")],
                    bytes,
                )
                .await?;
            let status = res.status();
            if status.is_success() {
                return Ok(());
            }
            let body = res.bytes().await.unwrap_or_default();
            anyhow::bail!("S3 PUT of an upload failed ({status}): {}", code(&body))
        }

        async fn get(&self, name: &str) -> anyhow::Result<Option<Vec<u8>>> {
            let res = self
                .aws
                .send(Method::GET, self.url(name)?, &[], Vec::new())
                .await?;
            let status = res.status();
            let body = res.bytes().await?.to_vec();
            if status.is_success() {
                return Ok(Some(body));
            }
            if status == StatusCode::NOT_FOUND && code(&body) == "NoSuchKey" {
                return Ok(None);
            }
            anyhow::bail!("S3 GET of an upload failed ({status}): {}", code(&body))
        }

        async fn delete(&self, name: &str) -> anyhow::Result<()> {
            let res = self
                .aws
                .send(Method::DELETE, self.url(name)?, &[], Vec::new())
                .await?;
            let status = res.status();
            if status.is_success() || status == StatusCode::NOT_FOUND {
                return Ok(());
            }
            let body = res.bytes().await.unwrap_or_default();
            anyhow::bail!("S3 DELETE of an upload failed ({status}): {}", code(&body))
        }
    }
}

fn field(id: &str) -> Field<'_> {
    Field {
        table: "uploads",
        column: "content",
        row_id: id,
    }
}

/// Blob storage with sealing: what goes in is encrypted under `subject`'s DEK.
#[derive(Clone)]
pub struct SealedBlobs {
    pub store: Arc<dyn BlobStore>,
    pub crypto: Arc<FieldCrypto>,
}

impl SealedBlobs {
    /// Seals `plain` under `subject`'s key and stores it as `id`.
    pub async fn put(&self, subject: &str, id: &str, plain: &[u8]) -> anyhow::Result<()> {
        let dek = self.crypto.keyring.dek_for_write(subject).await?;
        let sealed = frame::seal(&dek, field(id), plain);
        self.store.put(id, sealed).await
    }

    /// The plaintext of `id`; `Ok(None)` when there is no blob, [`Opened::Shredded`] when
    /// its key was destroyed.
    pub async fn open(&self, id: &str) -> anyhow::Result<Option<Opened<Zeroizing<Vec<u8>>>>> {
        let Some(bytes) = self.store.get(id).await? else {
            return Ok(None);
        };
        let key_id = frame::key_id(&bytes)?;
        let Some(dek) = self.crypto.keyring.dek(&key_id).await? else {
            return Ok(Some(Opened::Shredded));
        };
        Ok(Some(Opened::Plain(frame::open(&dek, field(id), &bytes)?)))
    }

    pub async fn delete(&self, id: &str) -> anyhow::Result<()> {
        self.store.delete(id).await
    }

    /// Erasure: deletes every upload of `user_id`, blob first and row last, so a retried
    /// erasure finds what is left. Returns how many.
    pub async fn purge_user(
        &self,
        uploads: &dyn UploadStore,
        user_id: &str,
    ) -> anyhow::Result<usize> {
        let rows = uploads.find_uploads_of_user(user_id).await?;
        for row in &rows {
            self.delete(&row.id).await?;
            uploads.delete_upload(&row.id).await?;
        }
        Ok(rows.len())
    }

    /// Retention: deletes the uploads into channels of type `kind` made before `before` (at
    /// most `limit` looked at) that `held` does not keep. Returns how many were deleted.
    pub async fn purge_expired(
        &self,
        uploads: &dyn UploadStore,
        kind: &str,
        before: crate::time::Micros,
        limit: i64,
        held: impl Fn(&crate::store::UploadRow) -> bool,
    ) -> anyhow::Result<usize> {
        let rows: Vec<_> = uploads
            .find_uploads_before(kind, before, limit)
            .await?
            .into_iter()
            .filter(|r| !held(r))
            .collect();
        for row in &rows {
            self.delete(&row.id).await?;
            uploads.delete_upload(&row.id).await?;
        }
        Ok(rows.len())
    }
}
