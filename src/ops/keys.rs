//! Root-key escrow from the shell: `ward keys export-root` and `ward keys import-root`.
//! Both are recorded in the audit log (`key.operation`), and export remembers the key id it
//! exported so `ward serve` stops reminding the operator.

use std::path::Path;

use anyhow::{Context, bail};
use zeroize::Zeroizing;

use crate::audit::{AuditEvent, AuditSink, EventType, OutboxSink};
use crate::config::{Config, KeyProvider};
use crate::crypto::escrow;
use crate::crypto::root::{LocalRootKey, RootKey};
use crate::startup::StartupError;
use crate::store::Store;

/// The setting holding the key id of the last exported local root key.
pub const EXPORTED_SETTING: &str = "root_key_exported";

fn local_only(config: &Config) -> anyhow::Result<()> {
    if let KeyProvider::AwsKms(k) = &config.key_provider {
        bail!(
            "the root key is the KMS key {}: it never leaves KMS, so there is nothing to escrow (protect it with KMS's deletion waiting period and key policy)",
            k.key_id
        );
    }
    Ok(())
}

async fn open_store(config: &Config) -> anyhow::Result<Store> {
    Store::connect(&config.database_url)
        .await
        .map_err(|e| StartupError::database(&config.database_url, &e).into())
}

async fn record(store: &Store, operation: &str, key_id: &str) -> anyhow::Result<()> {
    let sink = OutboxSink::new(store.clone());
    sink.record(
        AuditEvent::new(EventType::KeyOperation)
            .object("root_key", key_id.to_string())
            .meta("operation", operation)
            .meta("key_id", key_id.to_string())
            .meta("provider", "local"),
    );
    sink.flush().await.context("recording the key operation")
}

/// Writes the local root key, sealed under `passphrase`, to `out` (created, mode 0600).
/// Returns the key id.
pub async fn export_root(config: &Config, out: &Path, passphrase: &str) -> anyhow::Result<String> {
    local_only(config)?;
    let path = config.data_dir.join("root.key");
    if !path.exists() {
        bail!(
            "there is no root key at {} yet (ward serve creates it at the first start)",
            path.display()
        );
    }
    let key = crate::crypto::root::read_key_file(&path)?;
    let text = escrow::seal(&key, passphrase)?;
    write_new_private(out, text.as_bytes())?;
    let key_id = crate::crypto::root::fingerprint(&key);
    let store = open_store(config).await?;
    record(&store, "root_export", &key_id).await?;
    store
        .settings
        .upsert_setting(EXPORTED_SETTING, &key_id)
        .await?;
    Ok(key_id)
}

/// Restores the root key from an escrow file into the data dir. Nothing changes unless the
/// passphrase opens the file and the key opens this database's keys. Returns the key id and
/// whether a file was written (false: that key was already in place).
pub async fn import_root(
    config: &Config,
    file: &Path,
    passphrase: &str,
) -> anyhow::Result<(String, bool)> {
    local_only(config)?;
    let text =
        std::fs::read_to_string(file).with_context(|| format!("reading {}", file.display()))?;
    let (key, key_id) = escrow::open(&text, passphrase).map_err(|e| match e {
        escrow::EscrowError::WrongPassphrase => anyhow::anyhow!(
            "the passphrase does not open {} (or the file was altered); nothing was changed",
            file.display()
        ),
        other => anyhow::anyhow!("{other}; nothing was changed"),
    })?;
    let store = open_store(config).await?;
    let candidate = LocalRootKey::from_key(Zeroizing::new(*key), &config.data_dir);
    crate::crypto::root::check_against_database(&store, &candidate as &dyn RootKey)
        .await
        .context("the escrowed key is not this database's root key; nothing was changed")?;
    let written = escrow::install(&config.data_dir, &key)?;
    record(&store, "root_import", &key_id).await?;
    Ok((key_id, written))
}

/// The reminder `ward serve` logs once at start while the local root key has never been
/// exported (None: exported, or kept in KMS).
pub async fn escrow_reminder(
    config: &Config,
    store: &Store,
    root: &dyn RootKey,
) -> anyhow::Result<Option<String>> {
    if !matches!(config.key_provider, KeyProvider::Local) {
        return Ok(None);
    }
    let exported = store.settings.find_setting(EXPORTED_SETTING).await?;
    if exported.as_deref() == Some(root.key_id().as_str()) {
        return Ok(None);
    }
    Ok(Some(format!(
        "the local root key (key id {}) has never been exported: losing {} loses every encrypted row; run `ward keys export-root --out FILE` and keep the file and its passphrase apart",
        root.key_id(),
        config.data_dir.join("root.key").display()
    )))
}

fn write_new_private(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    use std::io::Write;
    let mut f = crate::fsx::private_file_options()
        .write(true)
        .create_new(true)
        .open(path)
        .with_context(|| {
            format!(
                "creating {} (an escrow file is never overwritten)",
                path.display()
            )
        })?;
    f.write_all(bytes)?;
    f.sync_all()?;
    Ok(())
}
