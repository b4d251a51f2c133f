//! `ward keys`: root-key escrow and key rotation.

use std::path::Path;
use std::sync::Arc;

use anyhow::Context;

use super::read_secret_line;
use crate::config::Config;

/// `ward keys export-root`: the local root key sealed under a passphrase read from stdin.
pub async fn export_root(config: &Config, out: &Path) -> anyhow::Result<()> {
    let passphrase = read_secret_line("escrow passphrase (12 characters or more)")?;
    let id = crate::ops::keys::export_root(config, out, &passphrase).await?;
    println!(
        "ward: root key {id} sealed into {}; keep it and the passphrase apart (ward keys import-root restores it)",
        out.display()
    );
    Ok(())
}

/// `ward keys import-root`: the local root key from an escrow file (passphrase from stdin).
pub async fn import_root(config: &Config, file: &Path) -> anyhow::Result<()> {
    let passphrase = read_secret_line("escrow passphrase")?;
    let (id, written) = crate::ops::keys::import_root(config, file, &passphrase).await?;
    if written {
        println!(
            "ward: root key {id} restored to {}",
            config.data_dir.join("root.key").display()
        );
    } else {
        println!("ward: root key {id} was already in place; nothing changed");
    }
    Ok(())
}

/// Which keys a rotation replaces.
pub enum Rotation {
    /// A new key-encryption key; every data key re-wrapped under it.
    Kek,
    /// A new data key for one subject (`user:<id>` or `channel:<cid>`), its values
    /// re-encrypted.
    Dek { subject: String },
}

/// `ward keys rotate-kek` and `ward keys rotate-dek`, then tells the serving nodes (through
/// Redis, when configured) to drop the keys they cached.
pub async fn rotate(config: &Config, rotation: Rotation) -> anyhow::Result<()> {
    let store = crate::store::Store::connect(&config.database_url)
        .await
        .context("opening the database")?;
    let sink = Arc::new(crate::audit::OutboxSink::new(store.clone()));
    let root = crate::app::open_root(config)?;
    let (store, crypto) = crate::app::open_crypto(config, store, sink.clone(), root)?;
    let crypto = crypto.context("field encryption is off (WARD_ENCRYPTION=false)")?;
    let audit = sink.as_ref();
    match &rotation {
        Rotation::Kek => {
            let (old, new, n) = crate::crypto::rotation::rotate_kek(&crypto, audit).await?;
            println!("ward: KEK {old} → {new}; {n} data keys re-wrapped");
        }
        Rotation::Dek { subject } => {
            let n = crate::crypto::rotation::rotate_dek(&store, &crypto, audit, subject, |done| {
                eprintln!("ward: re-encrypted {done} values of {subject}");
            })
            .await?;
            println!("ward: {subject} has a new data key; {n} values re-encrypted");
        }
    }
    sink.flush().await.context("recording the key operation")?;
    // Serving nodes cache keys: tell them to drop what the rotation changed.
    if let Some(url) = &config.redis_url {
        let subject = match rotation {
            Rotation::Dek { subject } => Some(subject),
            Rotation::Kek => None,
        };
        // Its own node id: nodes ignore frames that carry theirs.
        let node = format!("{}-cli-{}", config.node_id, std::process::id());
        if let Err(e) = crate::bus::redis::publish_control_once(
            url,
            &config.redis_channel,
            &node,
            crate::bus::wire::Control::EvictKeys { subject },
        )
        .await
        {
            eprintln!(
                "ward: could not tell the serving nodes to drop their cached keys ({e}); they do within 5 minutes"
            );
        }
    }
    Ok(())
}
