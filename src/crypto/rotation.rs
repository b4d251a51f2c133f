//! Key rotation jobs. `ward keys rotate-kek` re-wraps DEKs (data untouched);
//! `ward keys rotate-dek --subject …` retires a subject's DEK and re-encrypts what it sealed
//! under the new one, page by page, recording its cursor so a crashed run resumes where it
//! stopped. Every key operation is recorded for the audit log.

use std::sync::Arc;

use super::fields::FieldCrypto;
use crate::audit::record::AuditSink;
use crate::store::Store;

const PAGE: i64 = 100;

fn cursor_key(subject: &str) -> String {
    format!("reencrypt:{subject}")
}

fn record(audit: &dyn AuditSink, operation: &str, target: String) {
    audit.record(super::key_event(operation, &target));
}

pub async fn rotate_kek(
    crypto: &FieldCrypto,
    audit: &dyn AuditSink,
) -> anyhow::Result<(String, String, usize)> {
    let out = crypto.keyring.rotate_kek().await?;
    record(audit, "kek_rotation_run", format!("kek:{}", out.1));
    Ok(out)
}

/// Rotates `subject`'s DEK (unless a run for it is already in progress) and re-encrypts its
/// values; `progress` is told how many values are done so far. Returns the total re-encrypted
/// by this run.
pub async fn rotate_dek(
    store: &Store,
    crypto: &Arc<FieldCrypto>,
    audit: &dyn AuditSink,
    subject: &str,
    mut progress: impl FnMut(u64),
) -> anyhow::Result<u64> {
    let key = cursor_key(subject);
    let mut cursor = match store.settings.find_setting(&key).await? {
        Some(c) => {
            record(audit, "dek_rotation_resumed", subject.to_string());
            c
        }
        None => {
            crypto.keyring.rotate_dek(subject).await?;
            store.settings.upsert_setting(&key, "").await?;
            record(audit, "dek_rotation_run", subject.to_string());
            String::new()
        }
    };
    let mut done = 0u64;
    if let Some(user_id) = subject.strip_prefix("user:") {
        if let Some(user) = store.users.find_user(user_id).await? {
            store.users.upsert_user(&user, &[]).await?;
            done += 1;
        }
        loop {
            let ids = store
                .messages
                .find_message_ids_by_author(user_id, &cursor, PAGE)
                .await?;
            if ids.is_empty() {
                break;
            }
            for id in &ids {
                // Reading opens with whichever key sealed it; writing seals with the new one.
                if let Some(m) = store.messages.find_message(id).await? {
                    store.messages.update_message(&m, &[]).await?;
                    done += 1;
                }
            }
            cursor = ids.last().cloned().unwrap_or_default();
            store.settings.upsert_setting(&key, &cursor).await?;
            progress(done);
        }
    } else if let Some(cid) = subject.strip_prefix("channel:") {
        if let Some(ch) = store.channels.find_channel(cid).await? {
            store.channels.update_channel(&ch, &[]).await?;
            done += 1;
        }
    } else {
        anyhow::bail!("subjects are user:<id> or channel:<cid>");
    }
    store.settings.delete_setting(&key).await?;
    progress(done);
    Ok(done)
}
