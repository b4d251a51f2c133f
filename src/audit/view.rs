//! What auditors read: an entry decoded from its stored bytes, pseudonyms resolved to ids
//! while the directory still links them, and personal data opened while the subject's key
//! exists ("shredded" afterwards). The bytes themselves are included, so any entry can be
//! re-hashed and checked against a proof.

use std::collections::HashMap;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde_json::{Value, json};
use ward_audit::entry::{Entry, decode_meta};

use super::{EventType, pii_field};
use crate::crypto::fields::FieldCrypto;
use crate::crypto::frame::{self, Field};
use crate::store::{AuditRow, AuditStore};

fn time(ms: u64) -> Value {
    chrono::DateTime::from_timestamp_millis(ms as i64)
        .map(|t| Value::String(t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)))
        .unwrap_or(Value::Null)
}

/// Personal data of an entry: `(state, value)` with state `none`, `open`, `shredded` or
/// `sealed` (encryption is off on this node, so it cannot be opened here).
async fn open_pii(crypto: Option<&FieldCrypto>, entry: &Entry) -> (&'static str, Value) {
    if entry.pii_ct.is_empty() {
        return ("none", Value::Null);
    }
    let Some(crypto) = crypto else {
        return ("sealed", Value::Null);
    };
    let Ok(key_id) = frame::key_id(&entry.pii_ct) else {
        return ("sealed", Value::Null);
    };
    match crypto.keyring.dek(&key_id).await {
        Ok(Some(dek)) => {
            let row_id = pii_field(entry.event_type, entry.ts_unix_ms as i64);
            let field = Field {
                table: "audit_log",
                column: "pii",
                row_id: &row_id,
            };
            match frame::open(&dek, field, &entry.pii_ct) {
                Ok(plain) => (
                    "open",
                    serde_json::from_slice(&plain).unwrap_or(Value::Null),
                ),
                Err(_) => ("sealed", Value::Null),
            }
        }
        Ok(None) => ("shredded", Value::Null),
        Err(_) => ("sealed", Value::Null),
    }
}

/// Entries as JSON, in the given order.
pub async fn entries_json(
    store: &dyn AuditStore,
    crypto: Option<&FieldCrypto>,
    rows: &[AuditRow],
) -> anyhow::Result<Vec<Value>> {
    let mut decoded = Vec::with_capacity(rows.len());
    let mut pseudonyms = Vec::new();
    for r in rows {
        let e = Entry::decode(&r.entry)?;
        pseudonyms.push(e.actor_id.to_vec());
        pseudonyms.push(e.subject_id.to_vec());
        if let Some((_, id)) = std::str::from_utf8(&e.object_ref)
            .ok()
            .and_then(|s| s.split_once(':'))
            && let Ok(u) = uuid::Uuid::parse_str(id)
        {
            pseudonyms.push(u.as_bytes().to_vec());
        }
        decoded.push(e);
    }
    pseudonyms.retain(|p| p.iter().any(|b| *b != 0));
    pseudonyms.sort();
    pseudonyms.dedup();
    let names: HashMap<Vec<u8>, (String, String)> = store
        .find_natural_ids(&pseudonyms)
        .await?
        .into_iter()
        .collect();
    let who = |p: &[u8; 16]| -> Value {
        if p.iter().all(|b| *b == 0) {
            return Value::Null;
        }
        json!({
            "pseudonym": uuid::Uuid::from_bytes(*p).hyphenated().to_string(),
            "id": names.get(p.as_slice()).map(|(_, id)| id.clone()),
        })
    };
    let mut out = Vec::with_capacity(rows.len());
    for (r, e) in rows.iter().zip(decoded) {
        let object_ref = String::from_utf8_lossy(&e.object_ref).to_string();
        let object = match object_ref.split_once(':') {
            Some((kind, p)) => {
                let id = uuid::Uuid::parse_str(p)
                    .ok()
                    .and_then(|u| names.get(u.as_bytes().as_slice()))
                    .map(|(_, id)| id.clone());
                json!({"ref": object_ref, "kind": kind, "id": id})
            }
            None => Value::Null,
        };
        let (pii_state, pii) = open_pii(crypto, &e).await;
        let meta = decode_meta(&e.meta).unwrap_or_default();
        out.push(json!({
            "seq": e.seq,
            "time": time(e.ts_unix_ms),
            "ts_ms": e.ts_unix_ms,
            "event": EventType::from_code(e.event_type).map(|t| t.name()),
            "event_type": e.event_type,
            "actor": who(&e.actor_id),
            "subject": who(&e.subject_id),
            "object": object,
            "outcome": meta.get("outcome"),
            "meta": meta,
            "pii": pii,
            "pii_state": pii_state,
            "entry": STANDARD.encode(&r.entry),
            "leaf_hash": hex::encode(&r.leaf_hash),
            "chain_hash": hex::encode(&r.chain_hash),
        }));
    }
    Ok(out)
}
