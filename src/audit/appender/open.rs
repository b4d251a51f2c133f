//! Opening the log: its tenant id, origin and signing key (settled once, stored in the
//! settings table), its head, and the check of the head against the latest signed
//! checkpoints (in the database and published outside it) before anything is appended.

use std::collections::HashMap;

use anyhow::{Context, bail};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use rand::RngCore;
use ward_audit::Hash;
use ward_audit::checkpoint::Checkpoint;
use ward_audit::merkle::Frontier;
use ward_audit::note::Signer;
use zeroize::Zeroizing;

use super::{Appender, Head};
use crate::audit::publish::CheckpointSink;
use crate::audit::{SignedCheckpoint, tree};
use crate::crypto::root::RootKey;
use crate::store::Store;

pub(super) fn verifier_key_of(signer: &Signer) -> String {
    signer.verifier_key()
}

/// The verifier key of an existing log (for `ward audit verifier-key`).
pub async fn verifier_key(store: &Store, root: &dyn RootKey) -> anyhow::Result<String> {
    let origin = store
        .settings
        .find_setting("audit_origin")
        .await?
        .context("this database has no audit log yet (start the server once)")?;
    if store
        .settings
        .find_setting("audit_signing_key")
        .await?
        .is_none()
    {
        bail!("this database has no audit signing key yet (start the server once)");
    }
    let (signer, _) = signing_key(store, root, &origin).await?;
    Ok(signer.verifier_key())
}

pub(super) async fn tenant_id(store: &Store) -> anyhow::Result<[u8; 16]> {
    let fresh = uuid::Uuid::new_v4().simple().to_string();
    let stored = store
        .settings
        .insert_setting_if_absent("audit_tenant_id", &fresh)
        .await?;
    let id = uuid::Uuid::parse_str(&stored).context("the stored audit tenant id is not a UUID")?;
    Ok(*id.as_bytes())
}

pub(super) async fn settle_origin(
    store: &Store,
    configured: Option<&str>,
    tenant: &[u8; 16],
) -> anyhow::Result<String> {
    let default = format!(
        "ward.local/audit/{}",
        uuid::Uuid::from_bytes(*tenant).simple()
    );
    let wanted = configured.unwrap_or(&default);
    if !ward_audit::note::valid_name(wanted) {
        bail!("the audit origin {wanted:?} must be non-empty, without spaces or '+'");
    }
    let stored = store
        .settings
        .insert_setting_if_absent("audit_origin", wanted)
        .await?;
    if let Some(c) = configured
        && c != stored
    {
        bail!(
            "the audit log's origin is fixed when it is created ({stored:?}); WARD_AUDIT_ORIGIN asks for {c:?}"
        );
    }
    Ok(stored)
}

/// The Ed25519 checkpoint key: a random seed, stored wrapped by the root key (local file
/// or KMS), like the KEKs. Returns whether it was created now.
pub(super) async fn signing_key(
    store: &Store,
    root: &dyn RootKey,
    origin: &str,
) -> anyhow::Result<(Signer, bool)> {
    let context = format!("audit-signing-key:{origin}");
    let mut created = false;
    let stored = match store.settings.find_setting("audit_signing_key").await? {
        Some(s) => s,
        None => {
            let mut seed = Zeroizing::new([0u8; 32]);
            rand::rngs::OsRng.fill_bytes(seed.as_mut());
            let wrapped = STANDARD.encode(root.wrap(seed.as_ref(), &context).await?);
            let kept = store
                .settings
                .insert_setting_if_absent("audit_signing_key", &wrapped)
                .await?;
            created = kept == wrapped;
            kept
        }
    };
    let wrapped = STANDARD
        .decode(stored)
        .context("the stored audit signing key is not base64")?;
    let seed = root
        .unwrap(&wrapped, &context)
        .await
        .context("unwrapping the audit signing key with the root key")?;
    let seed: &[u8; 32] = seed
        .as_slice()
        .try_into()
        .context("the audit signing key is not 32 bytes")?;
    Ok((Signer::from_seed(origin, seed)?, created))
}

pub(super) async fn load_head(store: &Store) -> anyhow::Result<Head> {
    match store.audit.find_audit_head().await? {
        None => Ok(Head {
            chain: [0; 32],
            frontier: Frontier::new(),
        }),
        Some(row) => {
            let size = row.seq as u64 + 1;
            Ok(Head {
                chain: to_hash(&row.chain_hash)?,
                frontier: tree::frontier(store.audit.as_ref(), size).await?,
            })
        }
    }
}

fn to_hash(bytes: &[u8]) -> anyhow::Result<Hash> {
    bytes.try_into().context("a stored hash is not 32 bytes")
}

impl Appender {
    /// Refuses to append to a log that no longer matches what was signed: the latest
    /// checkpoint in the database, and the latest published outside it (a smaller or
    /// rewritten database is a rollback).
    pub(super) async fn check_against_checkpoints(
        &mut self,
        sink: Option<&dyn CheckpointSink>,
        verifier: &ward_audit::note::Verifier,
    ) -> anyhow::Result<()> {
        // The checkpoint first, then the head: on PostgreSQL another node's appender may
        // commit a batch (entries and checkpoint together) between the two reads, so the
        // head may be ahead of the checkpoint read, never behind it.
        let latest = self.store.audit.find_latest_checkpoint().await?;
        self.head = load_head(&self.store).await?;
        let size = self.head.frontier.size();
        let root = self.head.frontier.root();
        match latest {
            Some(c) => {
                let signed = Checkpoint::open(&c.note, verifier).context(
                    "the latest stored audit checkpoint does not verify under the log key",
                )?;
                let consistent = match signed.size.cmp(&size) {
                    std::cmp::Ordering::Greater => false,
                    std::cmp::Ordering::Equal => signed.root == root,
                    std::cmp::Ordering::Less => {
                        tree::root_at(self.store.audit.as_ref(), signed.size).await? == signed.root
                    }
                };
                if !consistent {
                    bail!(
                        "the audit log (size {size}) does not match its latest signed checkpoint (size {}): refusing to append",
                        signed.size
                    );
                }
                self.latest.send_replace(Some(SignedCheckpoint {
                    size: signed.size,
                    root: signed.root,
                    note: c.note,
                }));
            }
            None if size > 0 => bail!("the audit log has entries but no signed checkpoint"),
            None => {
                // A new log: sign the empty tree.
                let batch = self.build(Vec::new(), Vec::new(), &HashMap::new())?;
                self.commit(batch).await?;
            }
        }
        if let Some(sink) = sink {
            match sink.latest().await {
                Ok(Some(text)) => {
                    let published = Checkpoint::open(&text, verifier).with_context(|| {
                        format!(
                            "the checkpoint published at {} does not verify under the log key",
                            sink.describe()
                        )
                    })?;
                    if published.size > size {
                        return Err(crate::startup::StartupError::new(
                            format!(
                                "the audit log is behind its published checkpoint: {} holds size {} but the database has {size} entries (a rollback, or a restore from an older backup)",
                                sink.describe(),
                                published.size
                            ),
                            "restore the newest backup (README \"Backup and restore\"); never serve a rolled-back database",
                        )
                        .into());
                    }
                    let then = tree::root_at(self.store.audit.as_ref(), published.size).await?;
                    if then != published.root {
                        bail!(
                            "the database log was rewritten: its root at size {} differs from the checkpoint published at {}",
                            published.size,
                            sink.describe()
                        );
                    }
                }
                Ok(None) => {}
                Err(e) => {
                    tracing::warn!(error = %e, sink = %sink.describe(), "could not read the published audit checkpoint")
                }
            }
        }
        Ok(())
    }
}
