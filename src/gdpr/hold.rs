//! Legal holds: placed and released by compliance officers (or the API secret) with a
//! reason, on a user or a channel. While active, a hold blocks erasure of what it covers
//! (and retention). The reason is sealed (matter names can identify people); placing,
//! releasing and every blocked erasure are audited.

use serde_json::{Value, json};

use crate::audit::{AuditEvent, EventType};
use crate::crypto::fields::Opened;
use crate::crypto::frame::Field;
use crate::gdpr::Ctx;
use crate::gdpr::error::{Error, Result};
use crate::store::HoldRow;
use crate::time::{now_micros, rfc3339};

const SUBJECT: &str = "system:legal-hold";

fn field(id: &str) -> Field<'_> {
    Field {
        table: "legal_holds",
        column: "reason",
        row_id: id,
    }
}

/// Places a hold on `scope` (`user` or `channel`) `target`.
pub async fn place(
    state: &Ctx<'_>,
    scope: &str,
    target: &str,
    reason: &str,
    by: Option<&str>,
) -> Result<Value> {
    if !matches!(scope, "user" | "channel") {
        return Err(Error::input("scope must be user or channel"));
    }
    if reason.trim().is_empty() || reason.len() > 1000 {
        return Err(Error::input("a reason of 1 to 1000 characters is required"));
    }
    let exists = match scope {
        "user" => state.store.users.find_user(target).await?.is_some(),
        _ => state.store.channels.find_channel(target).await?.is_some(),
    };
    if !exists {
        return Err(Error::not_found(format!("no {scope} {target}")));
    }
    let crypto = state.crypto.as_ref().ok_or_else(|| {
        Error::input("field encryption is off: hold reasons cannot be stored encrypted")
    })?;
    let id = uuid::Uuid::now_v7().to_string();
    let sealed = crypto
        .seal_text(SUBJECT, field(&id), reason)
        .await
        .map_err(Error::internal)?;
    let row = HoldRow {
        id: id.clone(),
        scope: scope.to_string(),
        target: target.to_string(),
        reason: sealed,
        placed_by: by.map(str::to_string),
        placed_at: now_micros(),
        released_by: None,
        released_at: None,
    };
    let mut event = AuditEvent::new(EventType::LegalHoldPlace)
        .actor_opt(by)
        .meta("hold_id", &id)
        .meta("scope", scope);
    event = match scope {
        "user" => event.subject(target).object("user", target),
        _ => event.object("channel", target),
    };
    state
        .audit
        .audited([event], async |records| {
            state.store.compliance.insert_hold(&row, &records).await
        })
        .await?;
    hold_json(state, &row).await
}

pub async fn release(state: &Ctx<'_>, id: &str, by: Option<&str>) -> Result<Value> {
    let row = state
        .store
        .compliance
        .find_hold(id)
        .await?
        .ok_or_else(|| Error::not_found(format!("no legal hold {id}")))?;
    let mut event = AuditEvent::new(EventType::LegalHoldRelease)
        .actor_opt(by)
        .meta("hold_id", id)
        .meta("scope", &row.scope);
    event = match row.scope.as_str() {
        "user" => event
            .subject(row.target.clone())
            .object("user", row.target.clone()),
        _ => event.object("channel", row.target.clone()),
    };
    let released = state
        .audit
        .audited([event], async |records| {
            let compliance = &state.store.compliance;
            compliance
                .release_hold(id, by, now_micros(), &records)
                .await
        })
        .await?;
    if !released {
        return Err(Error::input("this hold was already released"));
    }
    let row = state.store.compliance.find_hold(id).await?.unwrap_or(row);
    hold_json(state, &row).await
}

pub async fn list(state: &Ctx<'_>, active_only: bool) -> Result<Vec<Value>> {
    let mut out = Vec::new();
    for row in state.store.compliance.find_holds(active_only).await? {
        out.push(hold_json(state, &row).await?);
    }
    Ok(out)
}

pub async fn hold_json(state: &Ctx<'_>, h: &HoldRow) -> Result<Value> {
    let reason = match &state.crypto {
        Some(crypto) => match crypto
            .open_text(field(&h.id), &h.reason)
            .await
            .map_err(Error::internal)?
        {
            Opened::Plain(r) => Some(r),
            Opened::Shredded => None,
        },
        None => None,
    };
    Ok(json!({
        "id": h.id,
        "scope": h.scope,
        "target": h.target,
        "reason": reason,
        "placed_by": h.placed_by,
        "placed_at": rfc3339(h.placed_at),
        "released_by": h.released_by,
        "released_at": h.released_at.map(rfc3339),
        "active": h.released_at.is_none(),
    }))
}
