//! Field-level encryption (envelope): a root key wraps KEKs, KEKs wrap one DEK per data
//! subject, DEKs seal fields in the [`frame`] format. This is the first increment: the frame,
//! the keys' hygiene (zeroized, never `Debug`), and the local root-key provider; the keyring
//! tables and the store integration follow (see the field-encryption issue).

pub mod fields;
pub mod frame;
pub mod keyring;
#[cfg(feature = "aws-kms")]
pub mod kms;
pub mod root;
pub mod rotation;

use crate::app::AppState;
use crate::audit::{AuditRecord, AuditSink};

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
    state.audit.record(AuditRecord {
        event: "keys.shredded".into(),
        actor: "system".into(),
        action: "ShredSubject".into(),
        resource: format!("user:{user_id}"),
        at: crate::time::now_micros(),
    });
    Ok(destroyed)
}
