//! Root-key providers: what wraps the KEKs. `local` keeps a 32-byte root key in a file in the
//! data dir (created on first start with mode 0600, for single-machine use only); AWS KMS
//! plugs in behind the same trait.

use std::path::Path;

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use anyhow::{Context, bail};
use rand::RngCore;
use zeroize::Zeroizing;

/// Wraps and unwraps KEKs. `context` is bound to the wrapped bytes (like a KMS encryption
/// context): it must be non-secret and identical on unwrap.
#[async_trait::async_trait]
pub trait RootKey: Send + Sync {
    async fn wrap(&self, kek: &[u8], context: &str) -> anyhow::Result<Vec<u8>>;
    async fn unwrap(&self, wrapped: &[u8], context: &str) -> anyhow::Result<Zeroizing<Vec<u8>>>;
    /// A name for logs and audit records (never key material).
    fn describe(&self) -> String;
    /// A stable, non-secret identifier of the key itself (not of where it is kept), so an
    /// operator can tell two root keys apart: a fingerprint for a local key, the key id for
    /// KMS.
    fn key_id(&self) -> String;
}

/// A root key in a local file.
pub struct LocalRootKey {
    key: Zeroizing<[u8; 32]>,
    path: String,
}

const DOMAIN: &[u8] = b"ward-kek/v1";

impl LocalRootKey {
    /// A key held in memory that would live at `dir/root.key` (escrow import checks it
    /// against the database before writing it).
    pub fn from_key(key: Zeroizing<[u8; 32]>, dir: &Path) -> Self {
        Self {
            key,
            path: dir.join("root.key").display().to_string(),
        }
    }

    /// Opens `dir/root.key`, creating it (mode 0600) with a warning when missing.
    pub fn open_or_create(dir: &Path) -> anyhow::Result<Self> {
        let path = dir.join("root.key");
        let key = if path.exists() {
            read_key_file(&path)?
        } else {
            let mut key = Zeroizing::new([0u8; 32]);
            rand::rngs::OsRng.fill_bytes(key.as_mut());
            write_private(&path, key.as_ref())?;
            tracing::warn!(path = %path.display(), "created a local root key: for single-machine use only; use a KMS in production");
            key
        };
        Ok(Self {
            key,
            path: path.display().to_string(),
        })
    }
}

/// Reads a local root key file (32 bytes).
pub fn read_key_file(path: &Path) -> anyhow::Result<Zeroizing<[u8; 32]>> {
    let bytes =
        Zeroizing::new(std::fs::read(path).with_context(|| format!("reading {}", path.display()))?);
    let key: [u8; 32] = bytes.as_slice().try_into().ok().with_context(|| {
        format!(
            "{} must hold exactly 32 bytes (the root key)",
            path.display()
        )
    })?;
    Ok(Zeroizing::new(key))
}

pub(crate) fn write_private(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    use std::io::Write;
    let mut f = crate::fsx::private_file_options()
        .write(true)
        .create_new(true)
        .open(path)
        .with_context(|| format!("creating {}", path.display()))?;
    f.write_all(bytes)?;
    f.sync_all()?;
    Ok(())
}

fn aad(context: &str) -> Vec<u8> {
    [DOMAIN, context.as_bytes()].concat()
}

#[async_trait::async_trait]
impl RootKey for LocalRootKey {
    async fn wrap(&self, kek: &[u8], context: &str) -> anyhow::Result<Vec<u8>> {
        let mut nonce = [0u8; 12];
        rand::rngs::OsRng.fill_bytes(&mut nonce);
        let cipher = Aes256Gcm::new_from_slice(self.key.as_ref()).expect("a 32-byte key");
        let n = Nonce::try_from(&nonce[..]).expect("a 12-byte nonce");
        let ct = cipher
            .encrypt(
                &n,
                Payload {
                    msg: kek,
                    aad: &aad(context),
                },
            )
            .map_err(|_| anyhow::anyhow!("wrapping failed"))?;
        Ok([&nonce[..], &ct].concat())
    }

    async fn unwrap(&self, wrapped: &[u8], context: &str) -> anyhow::Result<Zeroizing<Vec<u8>>> {
        if wrapped.len() < 12 + 16 {
            bail!("a wrapped key is too short");
        }
        let cipher = Aes256Gcm::new_from_slice(self.key.as_ref()).expect("a 32-byte key");
        let n = Nonce::try_from(&wrapped[..12]).expect("a 12-byte nonce");
        cipher
            .decrypt(
                &n,
                Payload {
                    msg: &wrapped[12..],
                    aad: &aad(context),
                },
            )
            .map(Zeroizing::new)
            .map_err(|_| {
                anyhow::anyhow!(
                    "the wrapped key does not authenticate under this root key and context"
                )
            })
    }

    fn describe(&self) -> String {
        format!("local:{}", self.path)
    }

    fn key_id(&self) -> String {
        fingerprint(&self.key)
    }
}

/// The first 8 bytes (hex) of SHA-256 over a domain and the key: enough to tell keys apart,
/// nothing about the key.
pub fn fingerprint(key: &[u8; 32]) -> String {
    use sha2::{Digest, Sha256};
    let digest = Sha256::new()
        .chain_update(b"ward-root-key-id/v1\0")
        .chain_update(key)
        .finalize();
    hex::encode(&digest[..8])
}

/// Refuses to create a fresh local root key for a database whose keys another root key
/// wrapped (a second node without the first node's `root.key`, or a lost key file): the new
/// key could open nothing, and every encrypted row would read as lost.
pub async fn refuse_missing_local_key(
    store: &crate::store::Store,
    dir: &Path,
) -> anyhow::Result<()> {
    let path = dir.join("root.key");
    if path.exists() {
        return Ok(());
    }
    let wrapped = store
        .settings
        .find_setting("audit_signing_key")
        .await?
        .is_some()
        || store.keys.find_active_kek().await?.is_some();
    if wrapped {
        let theirs = store
            .settings
            .find_setting("root_key_id")
            .await?
            .unwrap_or_else(|| "not recorded".into());
        return Err(crate::startup::StartupError::new(
            format!(
                "there is no root key at {} but this database's keys are wrapped by root key id {theirs}",
                path.display()
            ),
            "copy root.key from the first node (or import its escrow: ward keys import-root), or use WARD_KEY_PROVIDER=aws-kms",
        )
        .into());
    }
    Ok(())
}

/// Refuses to start with a root key that does not open this database's keys, naming both
/// key ids and the fix; remembers the key id of a root key that does. The probe is the
/// audit signing key (every database that has served once has one), else the active KEK.
pub async fn check_against_database(
    store: &crate::store::Store,
    root: &dyn RootKey,
) -> anyhow::Result<()> {
    let current = root.key_id();
    let stored = store.settings.find_setting("root_key_id").await?;
    let probe = match (
        store.settings.find_setting("audit_signing_key").await?,
        store.settings.find_setting("audit_origin").await?,
    ) {
        (Some(wrapped), Some(origin)) => {
            use base64::Engine;
            base64::engine::general_purpose::STANDARD
                .decode(wrapped)
                .ok()
                .map(|w| (w, format!("audit-signing-key:{origin}")))
        }
        _ => store
            .keys
            .find_active_kek()
            .await?
            .map(|k| (k.wrapped, format!("kek:{}", k.id))),
    };
    if let Some((wrapped, context)) = probe
        && let Err(e) = root.unwrap(&wrapped, &context).await
    {
        let theirs = stored.as_deref().unwrap_or("not recorded");
        let err = if root.describe().starts_with("local:") {
            crate::startup::StartupError::new(
                format!(
                    "this database's keys are wrapped by another root key (key id {theirs}; {} has key id {current})",
                    root.describe().trim_start_matches("local:")
                ),
                "copy root.key from the first node (or import its escrow: ward keys import-root), or use WARD_KEY_PROVIDER=aws-kms",
            )
        } else {
            crate::startup::StartupError::new(
                format!(
                    "the root key {} does not open this database's keys (it was created with key id {theirs}): {e}",
                    root.describe()
                ),
                "check WARD_KMS_KEY_ID, the region and the credentials (the task role needs kms:Decrypt on that key)",
            )
        };
        return Err(err.into());
    }
    if stored.as_deref() != Some(current.as_str()) {
        store
            .settings
            .upsert_setting("root_key_id", &current)
            .await?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_local_root_key_is_private_persistent_and_context_bound() {
        let dir = std::env::temp_dir().join(format!("ward-root-{}", uuid::Uuid::new_v4().simple()));
        std::fs::create_dir_all(&dir).unwrap();
        let root = LocalRootKey::open_or_create(&dir).unwrap();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(dir.join("root.key"))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        let wrapped = root.wrap(b"kek bytes", "kek:1").await.unwrap();
        let again = LocalRootKey::open_or_create(&dir).unwrap();
        assert_eq!(
            again.unwrap(&wrapped, "kek:1").await.unwrap().as_slice(),
            b"kek bytes"
        );
        assert!(
            again.unwrap(&wrapped, "kek:2").await.is_err(),
            "the context is bound"
        );
        std::fs::remove_dir_all(dir).unwrap();
    }
}
