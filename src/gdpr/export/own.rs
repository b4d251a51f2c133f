//! The subject's own drafts and reminders (issue 16), for `drafts.json` and `reminders.json`.

use serde_json::{Value, json};

use crate::gdpr::error::Result;
use crate::store::Store;
use crate::time::rfc3339;

/// The most drafts or reminders one subject's export lists (each store call is capped).
const OWN_ROWS_CAP: i64 = 100_000;

pub(super) async fn drafts(store: &Store, user_id: &str) -> Result<Vec<Value>> {
    Ok(store
        .drafts
        .find_drafts(user_id, OWN_ROWS_CAP)
        .await?
        .iter()
        .map(|d| {
            json!({
                "cid": d.cid,
                "parent_id": (!d.parent_key.is_empty()).then_some(&d.parent_key),
                "message": d.message,
                "created_at": rfc3339(d.created_at),
                "updated_at": rfc3339(d.updated_at),
            })
        })
        .collect())
}

pub(super) async fn reminders(store: &Store, user_id: &str) -> Result<Vec<Value>> {
    Ok(store
        .drafts
        .find_reminders(user_id, OWN_ROWS_CAP)
        .await?
        .iter()
        .map(|r| {
            json!({
                "message_id": r.message_id,
                "cid": r.cid,
                "remind_at": r.remind_at.map(rfc3339),
                "created_at": rfc3339(r.created_at),
                "updated_at": rfc3339(r.updated_at),
            })
        })
        .collect())
}
