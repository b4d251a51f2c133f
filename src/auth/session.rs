//! Interactive sessions (people who log in through an IdP or a bootstrap password, as
//! opposed to apps presenting Stream tokens): an opaque random cookie whose SHA-256 is the
//! row key, idle and absolute timeouts, a flag for a verified second factor, revocation of
//! one or all sessions of a user. Every start, end and revocation is audited.

use axum::http::{HeaderMap, HeaderValue, header};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rand::RngCore;
use sha2::{Digest, Sha256};

use crate::audit::{AuditEvent, EventType};
use crate::auth::Ctx;
use crate::auth::error::{Error, Result};
use crate::bus::wire::Revocation;
use crate::store::{SessionRow, UserRow};
use crate::time::now_micros;

pub const COOKIE: &str = "ward_session";

/// A live session, checked against its timeouts and revocation.
#[derive(Debug, Clone)]
pub struct Session {
    pub id_hash: String,
    pub user: UserRow,
    pub method: String,
    pub provider: Option<String>,
    pub saml_session_index: Option<String>,
    pub mfa: bool,
    pub expires_at: crate::time::Micros,
}

fn hash(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

/// How a session was started.
pub struct Start<'a> {
    pub method: &'a str,
    pub provider: Option<&'a str>,
    pub saml_session_index: Option<&'a str>,
    /// The second factor was already verified (never for an IdP login: Ward's own TOTP
    /// policy decides).
    pub mfa: bool,
}

/// Starts a session for `user`; returns the cookie value (the only copy of the secret).
pub async fn create(state: &Ctx<'_>, user: &UserRow, start: Start<'_>) -> Result<String> {
    let mut raw = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut raw);
    let token = URL_SAFE_NO_PAD.encode(raw);
    let now = now_micros();
    let limits = &state.sessions;
    let row = SessionRow {
        id_hash: hash(&token),
        user_id: user.id.clone(),
        method: start.method.to_string(),
        provider: start.provider.map(str::to_string),
        saml_session_index: start.saml_session_index.map(str::to_string),
        mfa: start.mfa,
        created_at: now,
        last_seen: now,
        expires_at: now + limits.absolute_secs * 1_000_000,
        revoked_at: None,
    };
    let mut login = AuditEvent::new(EventType::Login)
        .actor(user.id.clone())
        .subject(user.id.clone())
        .meta("method", start.method);
    if let Some(p) = start.provider {
        login = login.meta("provider", p);
    }
    state
        .audit
        .audited([login], async |records| {
            state.store.identity.insert_session(&row, &records).await
        })
        .await?;
    Ok(token)
}

/// The `Set-Cookie` value for a new session.
pub fn set_cookie(state: &Ctx<'_>, token: &str) -> HeaderValue {
    let secure = if state.sessions.secure_cookies {
        "; Secure"
    } else {
        ""
    };
    HeaderValue::from_str(&format!(
        "{COOKIE}={token}; Path=/; HttpOnly; SameSite=Lax; Max-Age={}{secure}",
        state.sessions.absolute_secs
    ))
    .expect("a cookie of URL-safe characters")
}

/// The `Set-Cookie` value that removes the session cookie.
pub fn clear_cookie() -> HeaderValue {
    HeaderValue::from_static("ward_session=; Path=/; HttpOnly; SameSite=Lax; Max-Age=0")
}

fn cookie_token(headers: &HeaderMap) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == COOKIE)
        .map(|(_, v)| v.to_string())
        .filter(|v| !v.is_empty())
}

/// The live session of a request, if it carries one: unknown, revoked, expired or idle
/// sessions are `None` (idle and expired ones are revoked on the way, and audited).
pub async fn from_headers(state: &Ctx<'_>, headers: &HeaderMap) -> Result<Option<Session>> {
    let Some(token) = cookie_token(headers) else {
        return Ok(None);
    };
    let id_hash = hash(&token);
    let Some(row) = state.store.identity.find_session(&id_hash).await? else {
        return Ok(None);
    };
    if row.revoked_at.is_some() {
        return Ok(None);
    }
    let now = now_micros();
    let idle = state.sessions.idle_secs * 1_000_000;
    let reason = if now >= row.expires_at {
        Some("absolute_timeout")
    } else if now - row.last_seen >= idle {
        Some("idle_timeout")
    } else {
        None
    };
    if let Some(reason) = reason {
        revoke(state, &row.id_hash, &row.user_id, None, reason).await?;
        return Ok(None);
    }
    let Some(user) = state.store.users.find_user(&row.user_id).await? else {
        return Ok(None);
    };
    if user.deactivated_at.is_some() || user.deleted_at.is_some() {
        revoke(state, &row.id_hash, &row.user_id, None, "user_deactivated").await?;
        return Ok(None);
    }
    state
        .store
        .identity
        .touch_session(&id_hash, now, false)
        .await?;
    Ok(Some(Session {
        id_hash,
        user,
        method: row.method,
        provider: row.provider,
        saml_session_index: row.saml_session_index,
        mfa: row.mfa,
        expires_at: row.expires_at,
    }))
}

/// The request's live session, or code 5 / 401.
pub async fn require(state: &Ctx<'_>, headers: &HeaderMap) -> Result<Session> {
    from_headers(state, headers)
        .await?
        .ok_or_else(|| Error::not_authenticated("log in first (no live session)"))
}

/// Marks the session's second factor verified.
pub async fn mark_mfa(state: &Ctx<'_>, session: &Session) -> Result<()> {
    state
        .store
        .identity
        .touch_session(&session.id_hash, now_micros(), true)
        .await?;
    Ok(())
}

/// Revokes one session, recording who did it and why.
pub async fn revoke(
    state: &Ctx<'_>,
    id_hash: &str,
    user_id: &str,
    by: Option<&str>,
    reason: &str,
) -> Result<bool> {
    let event = if reason == "logout" {
        AuditEvent::new(EventType::Logout)
            .actor(by.unwrap_or(user_id).to_string())
            .subject(user_id.to_string())
            .meta("method", "session")
    } else {
        AuditEvent::new(EventType::SessionRevoked)
            .actor_opt(by)
            .subject(user_id.to_string())
            .meta("scope", "one")
            .meta("reason", reason)
    };
    let done = state
        .audit
        .audited([event], async |records| {
            let identity = &state.store.identity;
            identity
                .revoke_session(id_hash, now_micros(), &records)
                .await
        })
        .await?;
    state
        .bus
        .revoke(Revocation::Session {
            sid: id_hash.to_string(),
        })
        .await;
    Ok(done)
}

/// Revokes every session of a user; returns how many.
pub async fn revoke_all(
    state: &Ctx<'_>,
    user_id: &str,
    by: Option<&str>,
    reason: &str,
) -> Result<u64> {
    let record = AuditEvent::new(EventType::SessionRevoked)
        .actor_opt(by)
        .subject(user_id.to_string())
        .meta("scope", "all")
        .meta("reason", reason);
    let n = state
        .audit
        .audited([record], async |records| {
            let identity = &state.store.identity;
            identity
                .revoke_sessions_of(user_id, now_micros(), &records)
                .await
        })
        .await?;
    state
        .bus
        .revoke(Revocation::SessionsOf {
            user_id: user_id.to_string(),
        })
        .await;
    Ok(n)
}

/// Whether a user of `role` must have verified a second factor (policy in the setting
/// `auth_2fa_roles`, a JSON list; by default admins, auditors and compliance officers).
pub async fn requires_2fa(state: &Ctx<'_>, role: &str) -> Result<bool> {
    let roles: Vec<String> = match state.store.settings.find_setting("auth_2fa_roles").await? {
        Some(json) => serde_json::from_str(&json).unwrap_or_else(|_| default_2fa_roles()),
        None => default_2fa_roles(),
    };
    Ok(roles.iter().any(|r| r == role))
}

pub fn default_2fa_roles() -> Vec<String> {
    ["admin", "auditor", "compliance_officer"]
        .map(str::to_string)
        .to_vec()
}
