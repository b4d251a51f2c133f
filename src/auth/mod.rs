//! Who is calling: Stream-compatible tokens and the resulting caller identity.

mod error;
pub mod lifecycle;
pub mod oidc;
pub mod password;
pub mod saml;
pub mod session;
pub mod sso;
pub mod token;
pub mod totp;

pub use error::{Error, Result, TokenError};

use tokio::sync::watch;

use crate::audit::AuditLog;
use crate::authz::Authz;
use crate::bus::Bus;
use crate::config::SessionConfig;
use crate::crypto::fields::FieldCrypto;
use crate::store::Store;

/// What authentication works with, borrowed from the application for one operation: the
/// edge builds it (`AppState::auth`), so this domain needs nothing above it.
#[derive(Clone, Copy)]
pub struct Ctx<'a> {
    pub store: &'a Store,
    pub bus: &'a Bus,
    /// The policies (app-level revocations need `ManageRoles`).
    pub authz: &'a Authz,
    /// The verifiable audit log.
    pub audit: &'a AuditLog,
    /// Field encryption (TOTP seeds, IdP secrets); `None` when switched off.
    pub crypto: Option<&'a FieldCrypto>,
    /// Session lifetimes and cookie settings (`config.sessions`).
    pub sessions: &'a SessionConfig,
    /// The public base URL (SSO redirect and SAML endpoints).
    pub public_url: &'a str,
    /// Flips to true once shutdown starts (the revocation sweep stops).
    pub shutdown: &'a watch::Receiver<bool>,
    /// Chat's context: accounts are saved and shown the way chat saves and shows users.
    pub chat: crate::chat::Ctx<'a>,
}

/// What authentication's background work runs in (its jobs and the revocation sweep): a
/// cheap-to-clone handle that lends an authentication context.
pub trait Host: Clone + Send + Sync + 'static {
    fn auth(&self) -> Ctx<'_>;
}

/// The authenticated caller of a REST request or WebSocket.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Caller {
    /// A backend holding the API secret (`{"server": true}` token). Acts for the user named
    /// in the request body, and is always attributed.
    Server,
    /// An end user, by the `user_id` claim of their token.
    User(String),
    /// An anonymous client (`stream-auth-type: anonymous`): read-only public data.
    Anonymous,
}

impl Caller {
    pub fn user_id(&self) -> Option<&str> {
        match self {
            Caller::User(id) => Some(id),
            _ => None,
        }
    }
}

use crate::audit::{AuditEvent, EventType};

/// The setting holding the app-wide `revoke_tokens_issued_before` (Unix seconds).
pub const APP_TOKENS_REVOKED: &str = "revoke_tokens_issued_before";

/// Whether a token issued at `iat` falls before the revocation cut-off `before` (a token
/// without `iat` counts as issued before; a cut-off of 0 or less is no revocation).
pub fn issued_before(iat: Option<i64>, before: i64) -> bool {
    before > 0 && iat.is_none_or(|iat| iat < before)
}

/// The app-wide revocation cut-off, if one is set.
pub async fn app_tokens_revoked(state: &Ctx<'_>) -> crate::auth::Result<Option<i64>> {
    Ok(state
        .store
        .settings
        .find_setting(APP_TOKENS_REVOKED)
        .await?
        .and_then(|v| v.parse().ok()))
}

/// Refuses a user token that was revoked, from the database (so it holds on every node,
/// with or without the bus): issued before the user's tokens were revoked (deprovisioning,
/// erasure, Stream's `revoke_tokens_issued_before` per user or app-wide), belonging to an
/// ended session, or held by a deactivated or deleted user.
pub async fn check_revocation(state: &Ctx<'_>, claims: &token::Claims) -> crate::auth::Result<()> {
    let Some(user_id) = claims.user_id.as_deref().filter(|_| !claims.server) else {
        return Ok(());
    };
    let revoked = || Error::Token(TokenError::Invalid("JWTAuth error: token has been revoked"));
    if let Some(before) = state.store.identity.find_tokens_revoked(user_id).await?
        && issued_before(claims.iat, before)
    {
        return Err(revoked());
    }
    if let Some(before) = app_tokens_revoked(state).await?
        && issued_before(claims.iat, before)
    {
        return Err(revoked());
    }
    if let Some(user) = state.store.users.find_user(user_id).await?
        && (user.deactivated_at.is_some() || user.deleted_at.is_some())
    {
        return Err(Error::Token(TokenError::Invalid(
            "JWTAuth error: the user is deactivated",
        )));
    }
    if let Some(sid) = &claims.sid {
        let live = state
            .store
            .identity
            .find_session(sid)
            .await?
            .is_some_and(|s| {
                s.user_id == user_id
                    && s.revoked_at.is_none()
                    && s.expires_at > crate::time::now_micros()
            });
        if !live {
            return Err(Error::Token(TokenError::Invalid(
                "JWTAuth error: the token's session has ended",
            )));
        }
    }
    Ok(())
}

/// Removes a user's access at once: sessions revoked, tokens issued so far refused, the
/// account deactivated, and their WebSockets closed on every node. Returns how many
/// sessions were revoked.
pub async fn deprovision(
    state: &Ctx<'_>,
    user_id: &str,
    by: Option<&str>,
    reason: &str,
) -> crate::auth::Result<u64> {
    let Some(mut user) = state.store.users.find_user(user_id).await? else {
        return Err(Error::not_found(format!("user {user_id} does not exist")));
    };
    let now = crate::time::now_micros();
    // Tokens are refused first, so nothing authenticates while the rest happens.
    state
        .store
        .identity
        .set_tokens_revoked(user_id, now / 1_000_000 + 1)
        .await?;
    let n = session::revoke_all(state, user_id, by, reason).await?;
    if user.deactivated_at.is_none() {
        user.deactivated_at = Some(now);
        user.updated_at = now;
        let record = AuditEvent::new(EventType::UserUpsert)
            .actor_opt(by)
            .subject(user_id)
            .object("user", user_id)
            .meta("created", false)
            .meta("via", reason);
        crate::chat::user::save_user(&state.chat, &user, [record]).await?;
    }
    state
        .bus
        .revoke(crate::bus::wire::Revocation::User {
            user_id: user_id.to_string(),
        })
        .await;
    Ok(n)
}

/// OIDC provider settings check (the OIDC module owns the rules).
pub fn oidc_config_check(config: &serde_json::Value) -> std::result::Result<(), String> {
    oidc::validate_config(config)
}

/// SAML provider settings check (the SAML module owns the rules).
pub fn saml_config_check(config: &serde_json::Value) -> std::result::Result<(), String> {
    saml::validate_config(config)
}

/// Creates the first admin with a password (argon2id), for deployments without an IdP yet.
/// Refuses weak passwords and existing users. TOTP enrolment is then mandatory (the 2FA
/// policy covers admins and cannot drop them).
pub async fn bootstrap_admin(
    state: &Ctx<'_>,
    user_id: &str,
    password: &str,
) -> crate::auth::Result<()> {
    crate::chat::validate_user_id(user_id)?;
    if password.chars().count() < 12 {
        return Err(Error::input(
            "the password must have at least 12 characters",
        ));
    }
    if state.store.users.find_user(user_id).await?.is_some() {
        return Err(Error::input(format!("user {user_id} already exists")));
    }
    let now = crate::time::now_micros();
    let mut user = crate::chat::user::new_user(user_id, now);
    user.role = "admin".into();
    let created = AuditEvent::new(EventType::UserUpsert)
        .subject(user_id)
        .object("user", user_id)
        .meta("created", true)
        .meta("via", "bootstrap");
    crate::chat::user::save_user(&state.chat, &user, [created]).await?;
    let hash = password::hash(password).map_err(Error::internal)?;
    let record = AuditEvent::new(EventType::ConfigChange)
        .subject(user_id)
        .object("user", user_id)
        .meta("setting", "auth.bootstrap_admin")
        .meta("via", "cli");
    state
        .audit
        .audited([record], async |records| {
            let identity = &state.store.identity;
            identity
                .upsert_password(user_id, &hash, now, &records)
                .await
        })
        .await?;
    Ok(())
}
