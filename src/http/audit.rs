//! The auditor API (`ReadAuditLog`, decided by the policies: auditors and compliance
//! officers): search the log, the latest signed checkpoint, inclusion and consistency
//! proofs, the verifier key. Every read of the log is itself recorded in it.

use axum::Router;
use axum::extract::State;
use axum::routing::get;
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde_json::{Value, json};
use ward_audit::proof::InclusionProof;

use super::openapi::{
    AuditEntries, Checkpoint, ConsistencyProofReply, ErrorBody, InclusionProofReply,
    TokenCallerErrors, VerifierKey,
};
use super::{Auth, HandlerResult, Reply};
use crate::app::AppState;
use crate::audit::{AuditEvent, EventType, tree, view};
use crate::chat::Actor;
use crate::http::error::ApiError;
use crate::store::AuditQuery;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/audit/entries", get(search_entries))
        .route("/audit/checkpoint", get(latest_checkpoint))
        .route("/audit/proof/inclusion", get(inclusion_proof))
        .route("/audit/proof/consistency", get(consistency_proof))
        .route("/audit/verifier-key", get(verifier_key))
}

/// This module's operations in the OpenAPI description (`super::openapi`).
#[derive(utoipa::OpenApi)]
#[openapi(paths(
    search_entries,
    latest_checkpoint,
    inclusion_proof,
    consistency_proof,
    verifier_key
))]
pub(super) struct Doc;

fn b64(hashes: &[[u8; 32]]) -> Vec<String> {
    hashes.iter().map(|h| STANDARD.encode(h)).collect()
}

/// Milliseconds since the epoch, or an RFC 3339 time.
fn parse_time(name: &str, v: &str) -> Result<i64, ApiError> {
    if let Ok(ms) = v.parse::<i64>() {
        return Ok(ms);
    }
    chrono::DateTime::parse_from_rfc3339(v)
        .map(|t| t.timestamp_millis())
        .map_err(|_| ApiError::input(format!("{name} must be an RFC 3339 time or milliseconds")))
}

fn number(auth: &Auth, name: &str) -> Result<Option<u64>, ApiError> {
    auth.query
        .get(name)
        .map(|v| {
            v.parse::<u64>()
                .map_err(|_| ApiError::input(format!("{name} must be a non-negative integer")))
        })
        .transpose()
}

/// Records the read in the log itself, attributed to the reader, before answering.
async fn record_read(
    state: &AppState,
    actor: &Actor,
    query: &str,
    count: usize,
) -> Result<(), ApiError> {
    state
        .audit
        .record(
            AuditEvent::new(EventType::AuditRead)
                .actor_opt(actor.user.as_ref().map(|u| u.id.as_str()))
                .meta("query", query)
                .meta("count", count),
        )
        .await
        .map_err(ApiError::from)
}

async fn latest(state: &AppState) -> Result<crate::store::CheckpointRow, ApiError> {
    state
        .store
        .audit
        .find_latest_checkpoint()
        .await?
        .ok_or_else(|| ApiError::not_found("the audit log has no checkpoint yet"))
}

/// Searches the log. Every read is itself recorded.
#[utoipa::path(get, path = "/audit/entries", tag = "audit",
    params(
        ("limit" = Option<u32>, Query, description = "1 to 1000 (default 100)"),
        ("cursor" = Option<u64>, Query, description = "The `next` of the previous page"),
        ("order" = Option<String>, Query, description = "`asc`; newest first otherwise"),
        ("from" = Option<String>, Query, description = "RFC 3339 time or milliseconds"),
        ("to" = Option<String>, Query, description = "RFC 3339 time or milliseconds"),
        ("action" = Option<String>, Query, description = "An event name, e.g. `auth.login`"),
        ("outcome" = Option<String>, Query, description = "`success`, `denied` or `failure`"),
        ("actor" = Option<String>, Query, description = "A user id"),
        ("subject" = Option<String>, Query, description = "A user id"),
        ("object" = Option<String>, Query, description = "`<kind>:<id>`"),
    ),
    security(("api_key" = [], "stream_token" = [])),
    responses((status = 200, description = "A page of entries", body = AuditEntries),
        TokenCallerErrors),
)]
async fn search_entries(State(state): State<AppState>, auth: Auth) -> HandlerResult {
    auth.actor.authorize_app(&state, "ReadAuditLog")?;
    let q = &auth.query;
    let limit = number(&auth, "limit")?.unwrap_or(100);
    if limit == 0 || limit > 1000 {
        return Err(ApiError::input("limit must be between 1 and 1000"));
    }
    let mut query = AuditQuery {
        from_ts: q.get("from").map(|v| parse_time("from", v)).transpose()?,
        to_ts: q.get("to").map(|v| parse_time("to", v)).transpose()?,
        outcome: q.get("outcome").cloned(),
        cursor: number(&auth, "cursor")?.map(|c| c as i64),
        descending: q.get("order").is_none_or(|o| o != "asc"),
        limit: limit as i64,
        ..Default::default()
    };
    if let Some(name) = q.get("action") {
        let ty = EventType::from_name(name).ok_or_else(|| {
            ApiError::input(format!("action {name:?} is not in the event catalogue"))
        })?;
        query.event_type = Some(i32::from(ty.code()));
    }
    // Ids are searched through their pseudonyms; an id never seen matches nothing.
    let mut lookups = Vec::new();
    for key in ["actor", "subject"] {
        if let Some(id) = q.get(key) {
            lookups.push((key, ("user".to_string(), id.clone())));
        }
    }
    if let Some(obj) = q.get("object") {
        let (kind, id) = obj.split_once(':').ok_or_else(|| {
            ApiError::input("object must be <kind>:<id>, e.g. channel:messaging:general")
        })?;
        lookups.push(("object", (kind.to_string(), id.to_string())));
    }
    let pairs: Vec<(String, String)> = lookups.iter().map(|(_, p)| p.clone()).collect();
    let found = state.store.audit.find_pseudonyms(&pairs).await?;
    for (key, pair) in &lookups {
        let Some((_, p)) = found.iter().find(|(k, _)| k == pair) else {
            record_read(&state, &auth.actor, "search", 0).await?;
            return Ok(Reply(json!({"entries": [], "next": null})));
        };
        match *key {
            "actor" => query.actor = Some(p.clone()),
            "subject" => query.subject = Some(p.clone()),
            _ => {
                let u = uuid::Uuid::from_slice(p).map_err(ApiError::internal)?;
                query.object_ref = Some(format!("{}:{}", pair.0, u.hyphenated()));
            }
        }
    }
    let rows = state.store.audit.find_audit_entries(&query).await?;
    let next = (rows.len() as u64 == limit)
        .then(|| rows.last().map(|r| r.seq))
        .flatten();
    let crypto = state.crypto.as_deref();
    let entries = view::entries_json(state.store.audit.as_ref(), crypto, &rows)
        .await
        .map_err(ApiError::internal)?;
    record_read(&state, &auth.actor, "search", entries.len()).await?;
    Ok(Reply(json!({"entries": entries, "next": next})))
}

/// The latest signed checkpoint.
#[utoipa::path(get, path = "/audit/checkpoint", tag = "audit",
    security(("api_key" = [], "stream_token" = [])),
    responses((status = 200, description = "The checkpoint", body = Checkpoint),
        (status = 404, description = "No checkpoint signed yet", body = ErrorBody),
        TokenCallerErrors),
)]
async fn latest_checkpoint(State(state): State<AppState>, auth: Auth) -> HandlerResult {
    auth.actor.authorize_app(&state, "ReadAuditLog")?;
    let c = latest(&state).await?;
    record_read(&state, &auth.actor, "checkpoint", 1).await?;
    Ok(Reply(json!({
        "origin": state.audit.origin,
        "tree_size": c.size,
        "root": STANDARD.encode(&c.root),
        "checkpoint": c.note,
        "verifier_key": state.audit.verifier_key,
    })))
}

/// Proves that entry `seq` is in the tree of a signed checkpoint.
#[utoipa::path(get, path = "/audit/proof/inclusion", tag = "audit",
    params(
        ("seq" = u64, Query, description = "The entry"),
        ("tree_size" = Option<u64>, Query,
            description = "A signed checkpoint's size; the latest if absent"),
    ),
    security(("api_key" = [], "stream_token" = [])),
    responses((status = 200, description = "The proof", body = InclusionProofReply),
        (status = 404, description = "No checkpoint (of that size)", body = ErrorBody),
        TokenCallerErrors),
)]
async fn inclusion_proof(State(state): State<AppState>, auth: Auth) -> HandlerResult {
    auth.actor.authorize_app(&state, "ReadAuditLog")?;
    let seq = number(&auth, "seq")?.ok_or_else(|| ApiError::input("seq is required"))?;
    let latest = latest(&state).await?;
    let checkpoint = match number(&auth, "tree_size")? {
        None => latest,
        Some(size) => state
            .store
            .audit
            .find_checkpoint(size as i64)
            .await?
            .ok_or_else(|| ApiError::not_found(format!("no signed checkpoint of size {size}")))?,
    };
    let size = checkpoint.size as u64;
    if seq >= size {
        return Err(ApiError::input(format!(
            "entry {seq} is not in the tree of size {size}"
        )));
    }
    let hashes = tree::inclusion_proof(state.store.audit.as_ref(), seq, size)
        .await
        .map_err(ApiError::internal)?;
    let entry = state
        .store
        .audit
        .find_audit_range(seq as i64, seq as i64 + 1)
        .await?
        .pop()
        .ok_or_else(|| ApiError::internal("a chained entry is missing"))?;
    let text = InclusionProof {
        index: seq,
        hashes: hashes.clone(),
        checkpoint: checkpoint.note.clone(),
    }
    .to_text();
    record_read(&state, &auth.actor, "inclusion_proof", 1).await?;
    Ok(Reply(json!({
        "seq": seq,
        "tree_size": size,
        "entry": STANDARD.encode(&entry.entry),
        "proof": b64(&hashes),
        "checkpoint": checkpoint.note,
        "tlog_proof": text,
    })))
}

/// Proves that the tree of size `new` extends the tree of size `old`.
#[utoipa::path(get, path = "/audit/proof/consistency", tag = "audit",
    params(
        ("old" = u64, Query, description = "The older tree size"),
        ("new" = Option<u64>, Query, description = "The newer size; the latest if absent"),
    ),
    security(("api_key" = [], "stream_token" = [])),
    responses((status = 200, description = "The proof", body = ConsistencyProofReply),
        (status = 404, description = "No checkpoint signed yet", body = ErrorBody),
        TokenCallerErrors),
)]
async fn consistency_proof(State(state): State<AppState>, auth: Auth) -> HandlerResult {
    auth.actor.authorize_app(&state, "ReadAuditLog")?;
    let old = number(&auth, "old")?.ok_or_else(|| ApiError::input("old is required"))?;
    let latest = latest(&state).await?;
    let new = number(&auth, "new")?.unwrap_or(latest.size as u64);
    if old > new || new > latest.size as u64 {
        return Err(ApiError::input(format!(
            "need old <= new <= {} (the latest tree size)",
            latest.size
        )));
    }
    let hashes = tree::consistency_proof(state.store.audit.as_ref(), old, new)
        .await
        .map_err(ApiError::internal)?;
    let note = |size: u64| {
        let state = state.clone();
        async move {
            Ok::<Value, ApiError>(
                state
                    .store
                    .audit
                    .find_checkpoint(size as i64)
                    .await?
                    .map(|c| Value::String(c.note))
                    .unwrap_or(Value::Null),
            )
        }
    };
    let (old_note, new_note) = (note(old).await?, note(new).await?);
    record_read(&state, &auth.actor, "consistency_proof", 1).await?;
    Ok(Reply(json!({
        "old": old,
        "new": new,
        "proof": b64(&hashes),
        "old_checkpoint": old_note,
        "new_checkpoint": new_note,
    })))
}

/// The key that verifies the checkpoints' signatures.
#[utoipa::path(get, path = "/audit/verifier-key", tag = "audit",
    security(("api_key" = [], "stream_token" = [])),
    responses((status = 200, description = "The verifier key", body = VerifierKey),
        TokenCallerErrors),
)]
async fn verifier_key(State(state): State<AppState>, auth: Auth) -> HandlerResult {
    auth.actor.authorize_app(&state, "ReadAuditLog")?;
    Ok(Reply(json!({
        "origin": state.audit.origin,
        "verifier_key": state.audit.verifier_key,
    })))
}
