//! Single sign-on, the part OIDC and SAML share: SSO provider records (configuration as
//! JSON, the client secret sealed with field encryption), and [`complete_login`], which
//! turns a verified external identity into a Ward user (just-in-time provisioning, role
//! from the provider's mapping) and a session. The protocol modules verify; this module
//! decides what a verified identity may become.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use secrecy::{ExposeSecret, SecretString};
use serde_json::{Value, json};

use super::session::{self, Start};
use crate::audit::{AuditEvent, EventType, Outcome};
use crate::auth::Ctx;
use crate::auth::error::{Error, Result};
use crate::crypto::fields::Opened;
use crate::crypto::frame::Field;
use crate::store::ProviderRow;
use crate::time::now_micros;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProviderKind {
    Oidc,
    Saml,
}

impl ProviderKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Oidc => "oidc",
            Self::Saml => "saml",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "oidc" => Some(Self::Oidc),
            "saml" => Some(Self::Saml),
            _ => None,
        }
    }
}

/// A configured identity provider. `secret` is never `Debug`-printed (SecretString).
#[derive(Clone)]
pub struct SsoProvider {
    pub id: String,
    pub kind: ProviderKind,
    pub name: String,
    pub enabled: bool,
    /// Protocol settings (issuer, client id, metadata XML, role mapping…); no secrets.
    pub config: Value,
    pub secret: Option<SecretString>,
}

const SECRET_SUBJECT: &str = "system:sso";

fn secret_field(id: &str) -> Field<'_> {
    Field {
        table: "sso_providers",
        column: "secret",
        row_id: id,
    }
}

/// The provider `id` with its secret opened, if it exists.
pub async fn find_provider(state: &Ctx<'_>, id: &str) -> Result<Option<SsoProvider>> {
    let Some(row) = state.store.identity.find_provider(id).await? else {
        return Ok(None);
    };
    let kind = ProviderKind::parse(&row.kind)
        .ok_or_else(|| Error::internal(format!("provider {id} has an unknown kind")))?;
    let secret = match (&row.secret, &state.crypto) {
        (None, _) => None,
        (Some(sealed), Some(crypto)) => {
            let text = String::from_utf8(sealed.clone()).map_err(Error::internal)?;
            match crypto
                .open_text(secret_field(id), &text)
                .await
                .map_err(Error::internal)?
            {
                Opened::Plain(s) => Some(SecretString::from(s)),
                Opened::Shredded => None,
            }
        }
        (Some(_), None) => {
            return Err(Error::internal(
                "a provider secret is sealed but field encryption is off",
            ));
        }
    };
    Ok(Some(SsoProvider {
        id: row.id,
        kind,
        name: row.name,
        enabled: row.enabled,
        config: serde_json::from_str(&row.config).map_err(Error::internal)?,
        secret,
    }))
}

/// Stores a provider (sealing its secret), recording the change for the audit log.
pub async fn save_provider(state: &Ctx<'_>, p: &SsoProvider, by: Option<&str>) -> Result<()> {
    let secret = match (&p.secret, &state.crypto) {
        (None, _) => None,
        (Some(s), Some(crypto)) => Some(
            crypto
                .seal_text(SECRET_SUBJECT, secret_field(&p.id), s.expose_secret())
                .await
                .map_err(Error::internal)?
                .into_bytes(),
        ),
        (Some(_), None) => {
            return Err(Error::input(
                "field encryption is off: a client secret cannot be stored encrypted",
            ));
        }
    };
    let now = now_micros();
    let existing = state.store.identity.find_provider(&p.id).await?;
    let row = ProviderRow {
        id: p.id.clone(),
        kind: p.kind.as_str().to_string(),
        name: p.name.clone(),
        enabled: p.enabled,
        config: p.config.to_string(),
        secret,
        created_at: existing.as_ref().map_or(now, |e| e.created_at),
        updated_at: now,
    };
    let record = AuditEvent::new(EventType::ConfigChange)
        .actor_opt(by)
        .object("setting", format!("sso_provider:{}", p.id))
        .meta("setting", format!("sso_provider.{}", p.kind.as_str()));
    state
        .audit
        .audited([record], async |records| {
            state.store.identity.upsert_provider(&row, &records).await
        })
        .await?;
    Ok(())
}

/// The edge's limit on SSO logins per account, checked once the identity is verified and
/// before anything is provisioned.
#[async_trait::async_trait]
pub trait LoginLimit: Send + Sync {
    /// Refuses `login` ([`Error::RateLimited`]) while its account is over the limit.
    async fn check(&self, login: &ExternalLogin) -> Result<()>;
}

/// An identity a protocol module has verified.
#[derive(Debug, Clone)]
pub struct ExternalLogin {
    pub provider_id: String,
    /// `oidc` or `saml`.
    pub method: &'static str,
    /// The provider's subject (OIDC `sub`, SAML NameID).
    pub subject: String,
    /// The Ward user id it maps to (must pass `validate_user_id`).
    pub user_id: String,
    /// The role from the provider's mapping, when it maps one.
    pub role: Option<String>,
    pub name: Option<String>,
    pub saml_session_index: Option<String>,
}

/// Provisions or updates the user, starts a session, records the login, and answers: a
/// 303 to `return_to` (a path on this server only) or a JSON body.
pub async fn complete_login(
    state: &Ctx<'_>,
    limit: &dyn LoginLimit,
    login: ExternalLogin,
    return_to: Option<&str>,
) -> Result<Response> {
    crate::chat::validate_user_id(&login.user_id)?;
    // SSO logins per account: a replayed or scripted IdP flow cannot mint sessions faster
    // than people log in.
    limit.check(&login).await?;
    let now = now_micros();
    let existing = state.store.users.find_user(&login.user_id).await?;
    if let Some(u) = &existing
        && (u.deactivated_at.is_some() || u.deleted_at.is_some() || u.banned)
    {
        record_failure(state, &login.provider_id, login.method, "user_disabled").await;
        return Err(Error::not_allowed("this user is disabled"));
    }
    let mut user = existing
        .clone()
        .unwrap_or_else(|| crate::chat::user::new_user(&login.user_id, now));
    let mut records = Vec::new();
    if let Some(role) = &login.role
        && *role != user.role
    {
        if existing.is_some() {
            records.push(
                AuditEvent::new(EventType::UserRole)
                    .subject(user.id.clone())
                    .object("user", user.id.clone())
                    .meta("from_role", &user.role)
                    .meta("to_role", role)
                    .meta("via", login.method),
            );
        }
        user.role = role.clone();
    }
    if let Some(name) = &login.name {
        user.data.insert("name".into(), Value::String(name.clone()));
    }
    if existing.as_ref() != Some(&user) {
        user.updated_at = now;
        records.push(
            AuditEvent::new(EventType::UserUpsert)
                .subject(user.id.clone())
                .object("user", user.id.clone())
                .meta("created", existing.is_none())
                .meta("via", login.method),
        );
        user = crate::chat::user::save_user(&state.chat, &user, records).await?;
    }
    let token = session::create(
        state,
        &user,
        Start {
            method: login.method,
            provider: Some(&login.provider_id),
            saml_session_index: login.saml_session_index.as_deref(),
            mfa: false,
        },
    )
    .await?;
    let mfa_required = session::requires_2fa(state, &user.role).await?;
    let cookie = session::set_cookie(state, &token);
    let mut res = match return_to.filter(|r| is_local_path(r)) {
        Some(path) => {
            let mut r = StatusCode::SEE_OTHER.into_response();
            r.headers_mut().insert(
                header::LOCATION,
                HeaderValue::from_str(path).map_err(Error::internal)?,
            );
            r
        }
        None => axum::Json(json!({
            "user": {"id": user.id, "role": user.role},
            "mfa_required": mfa_required,
        }))
        .into_response(),
    };
    res.headers_mut().append(header::SET_COOKIE, cookie);
    Ok(res)
}

/// A path on this server: the only place a login may return to, so Ward is never an open
/// redirect. It starts with a single `/` (not `//` nor `/\\`, which browsers read as another
/// host), holds no backslash and no control character (browsers drop tabs and line breaks,
/// so `/\t/evil.example` becomes `//evil.example`, and CR/LF cannot go in a header), nor any
/// of these once percent-decoded (`/%09/evil.example`, `/%5Cevil.example`). Only ASCII:
/// other characters arrive percent-encoded from any browser.
pub fn is_local_path(p: &str) -> bool {
    fn local(p: &[u8]) -> bool {
        p.first() == Some(&b'/')
            && !matches!(p.get(1), Some(b'/' | b'\\'))
            && !p.iter().any(|b| *b == b'\\' || b.is_ascii_control())
    }
    p.is_ascii() && local(p.as_bytes()) && local(&percent_decode(p))
}

/// `%XX` sequences decoded to bytes (others left as they are).
fn percent_decode(s: &str) -> Vec<u8> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let hex = |c: u8| char::from(c).to_digit(16);
        if b[i] == b'%'
            && let (Some(h), Some(l)) = (
                b.get(i + 1).copied().and_then(hex),
                b.get(i + 2).copied().and_then(hex),
            )
        {
            out.push(u8::try_from(h * 16 + l).unwrap_or(0));
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    out
}

/// Records a failed SSO login (the reason is a short code, never the assertion or token).
pub async fn record_failure(state: &Ctx<'_>, provider_id: &str, method: &str, reason: &str) {
    let event = AuditEvent::new(EventType::LoginFailed)
        .outcome(Outcome::Failed)
        .meta("method", method)
        .meta("provider", provider_id)
        .meta("reason", reason);
    if let Err(e) = state.audit.record(event).await {
        tracing::error!(error = %e, "could not record a failed login");
    }
}
