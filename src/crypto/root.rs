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
}

/// A root key in a local file.
pub struct LocalRootKey {
    key: Zeroizing<[u8; 32]>,
    path: String,
}

const DOMAIN: &[u8] = b"ward-kek/v1";

impl LocalRootKey {
    /// Opens `dir/root.key`, creating it (mode 0600) with a warning when missing.
    pub fn open_or_create(dir: &Path) -> anyhow::Result<Self> {
        let path = dir.join("root.key");
        let key = if path.exists() {
            let bytes = Zeroizing::new(
                std::fs::read(&path).with_context(|| format!("reading {}", path.display()))?,
            );
            let key: [u8; 32] = bytes
                .as_slice()
                .try_into()
                .ok()
                .context("the root key file must hold exactly 32 bytes")?;
            Zeroizing::new(key)
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

#[cfg(unix)]
fn write_private(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .with_context(|| format!("creating {}", path.display()))?;
    f.write_all(bytes)?;
    f.sync_all()?;
    Ok(())
}

#[cfg(not(unix))]
fn write_private(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    std::fs::write(path, bytes).with_context(|| format!("creating {}", path.display()))
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
