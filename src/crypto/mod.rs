//! Field-level encryption (envelope): a root key wraps KEKs, KEKs wrap one DEK per data
//! subject, DEKs seal fields in the [`frame`] format. This is the first increment: the frame,
//! the keys' hygiene (zeroized, never `Debug`), and the local root-key provider; the keyring
//! tables and the store integration follow (see the field-encryption issue).

#[cfg(any(feature = "aws-kms", feature = "s3-checkpoints"))]
pub mod aws;
pub mod escrow;
pub mod fields;
pub mod frame;
pub mod keyring;
#[cfg(feature = "aws-kms")]
pub mod kms;
pub mod root;
pub mod rotation;
pub mod setting;

use crate::app::AppState;
use crate::audit::{AuditEvent, EventType};

/// Crypto-shreds a user: destroys their DEKs, so their profile, messages and reactions read
/// as tombstones everywhere (backups and exports included), and drops their messages from
/// the search index. Recorded for the audit log. Returns how many keys were destroyed.
pub async fn shred_user(state: &AppState, user_id: &str) -> anyhow::Result<u64> {
    let Some(crypto) = &state.crypto else {
        anyhow::bail!("field encryption is off: there are no keys to shred");
    };
    let destroyed = crypto
        .keyring
        .shred(&crate::store::encrypted::user_subject(user_id))
        .await?;
    state
        .store
        .messages
        .delete_tokens_of_author(user_id)
        .await?;
    state
        .audit
        .record(
            key_event("shred", &crate::store::encrypted::user_subject(user_id))
                .meta("count", destroyed),
        )
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
