//! Field-level encryption (envelope): a root key wraps KEKs, KEKs wrap one DEK per data
//! subject, DEKs seal fields in the [`frame`] format. The [`keyring`] holds the keys (zeroized,
//! never `Debug`) under a [`root`] key (a local file or KMS); [`sealed`] wraps the store's
//! traits so the classified columns are sealed on write and opened on read. Key operations
//! are recorded through the audit record traits (`audit::record`), never the log itself:
//! the log seals personal data with the keyring, so it sits above this module.

#[cfg(any(feature = "aws-kms", feature = "s3-checkpoints"))]
pub mod aws;
pub mod blobs;
pub mod escrow;
pub mod fields;
pub mod frame;
pub mod keyring;
#[cfg(feature = "aws-kms")]
pub mod kms;
pub mod root;
pub mod rotation;
pub mod sealed;
pub mod setting;

use crate::audit::record::{AuditEvent, DurableSink, EventType};
use crate::store::MessageStore;

/// Crypto-shreds a user: destroys their DEKs, so their profile, messages and reactions read
/// as tombstones everywhere (backups and exports included), and drops their messages from
/// the search index (`messages`). Recorded for the audit log, durably before it returns.
/// Returns how many keys were destroyed.
pub async fn shred_user(
    crypto: &fields::FieldCrypto,
    messages: &dyn MessageStore,
    audit: &impl DurableSink,
    user_id: &str,
) -> anyhow::Result<u64> {
    let subject = sealed::user_subject(user_id);
    let destroyed = crypto.keyring.shred(&subject).await?;
    messages.delete_tokens_of_author(user_id).await?;
    audit
        .record_durable(key_event("shred", &subject).meta("count", destroyed))
        .await?;
    Ok(destroyed)
}

/// The audit record of a key operation on `target`: `kek:<id>`, `user:<id>` (the user is
/// the entry's subject, never in clear metadata) or `channel:<cid>`.
pub(crate) fn key_event(operation: &str, target: &str) -> AuditEvent {
    let event = AuditEvent::new(EventType::KeyOperation).meta("operation", operation);
    match target.split_once(':') {
        Some(("kek", id)) => event.object("key", id).meta("key_id", id),
        Some(("user", id)) => event.subject(id).object("user", id),
        Some(("channel", cid)) => event.object("channel", cid),
        _ => event.object("key", target),
    }
}
