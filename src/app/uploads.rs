//! The upload context the edge hands to `chat::upload`, and opening the blob storage the
//! configuration names (the data directory, or S3 when `WARD_UPLOADS_S3_BUCKET` is set).

use std::sync::Arc;

use super::AppState;
use crate::config::Config;
use crate::crypto::blobs::{BlobStore, LocalBlobs, SealedBlobs};
use crate::crypto::fields::FieldCrypto;

impl AppState {
    /// What upload operations need, borrowed from the state.
    pub fn uploads(&self) -> crate::chat::upload::UploadCtx<'_> {
        crate::chat::upload::UploadCtx {
            chat: self.chat(),
            blobs: self.blobs.as_ref(),
            config: &self.config.uploads,
            public_url: &self.config.public_url,
        }
    }
}

/// The sealed blob storage, or `None` when field encryption is off (uploads are refused:
/// files are never stored in plaintext).
pub(super) fn open_blobs(
    config: &Config,
    crypto: Option<&Arc<FieldCrypto>>,
) -> anyhow::Result<Option<SealedBlobs>> {
    let Some(crypto) = crypto else {
        return Ok(None);
    };
    let store: Arc<dyn BlobStore> = match &config.uploads.s3 {
        None => Arc::new(LocalBlobs::new(config.data_dir.join("uploads"))),
        Some(s3) => {
            #[cfg(not(feature = "s3-checkpoints"))]
            {
                let _ = s3;
                anyhow::bail!(
                    "this build cannot keep uploads in S3 (cargo feature s3-checkpoints)"
                );
            }
            #[cfg(feature = "s3-checkpoints")]
            Arc::new(crate::crypto::blobs::S3Blobs::new(
                &s3.bucket,
                &s3.prefix,
                &s3.region,
                s3.endpoint.as_deref(),
                super::credential_source(&s3.credentials),
            )?)
        }
    };
    Ok(Some(SealedBlobs {
        store,
        crypto: crypto.clone(),
    }))
}
