//! The admin API for identity: SSO providers, the 2FA policy, deprovisioning. Callers are
//! admins with a live session whose second factor is verified when the policy requires it
//! (the default for admins), or a backend holding the API secret. A user's Stream token is
//! not enough: it is minted by the app, outside Ward's 2FA. Every change is audited
//! (`config.change`, `session.revoked`) and goes through the policies (`ManageSso`,
//! `ManageRoles`).

use axum::Router;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::routing::{get, post, put};
use secrecy::SecretString;
use serde::Deserialize;
use serde_json::{Value, json};

use super::openapi::{
    AdminCallerErrors, Deprovisioned, ErrorBody, ProviderList, ProviderReply, TwoFactorRoles,
};
use super::{ApiJson, ApiPath, HandlerResult, Reply};
use crate::app::AppState;
use crate::audit::{AuditEvent, EventType};
use crate::auth::session;
use crate::auth::sso::{self, ProviderKind, SsoProvider};
use crate::chat::Actor;
use crate::http::error::{ApiError, ApiResult, code};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/admin/sso/providers", get(list_providers))
        .route(
            "/admin/sso/providers/{id}",
            put(put_provider).get(get_provider),
        )
        .route(
            "/admin/auth/2fa-policy",
            get(get_2fa_policy).put(put_2fa_policy),
        )
        .route("/admin/users/{id}/deprovision", post(deprovision))
}

/// This module's operations in the OpenAPI description (`super::openapi`).
#[derive(utoipa::OpenApi)]
#[openapi(paths(
    list_providers,
    get_provider,
    put_provider,
    get_2fa_policy,
    put_2fa_policy,
    deprovision
))]
pub(super) struct Doc;

/// The caller of an admin endpoint: a live session (2FA verified where required) or the
/// API secret.
pub async fn admin_actor(
    state: &AppState,
    headers: &HeaderMap,
    query: Option<&str>,
) -> ApiResult<Actor> {
    if let Some(s) = session::from_headers(&state.auth(), headers).await? {
        if !s.mfa && session::requires_2fa(&state.auth(), &s.user.role).await? {
            return Err(ApiError::not_allowed(
                "two-factor authentication is required for this account: verify a TOTP code first",
            ));
        }
        return Ok(Actor::user(s.user));
    }
    let raw = headers
        .get(axum::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .ok_or_else(|| {
            ApiError::unauthorized(code::ACCESS_KEY, "log in first (no live session)")
        })?;
    let query = super::extract::decode_query(query)?;
    super::extract::check_api_key(state, &query)?;
    let claims = match super::extract::verify_token(state, raw) {
        Ok(c) => c,
        Err(e) => {
            super::extract::record_rejection(state, "rest", &e).await;
            return Err(e);
        }
    };
    if !claims.server {
        return Err(ApiError::not_allowed(
            "admin endpoints take an admin session or the API secret, not a user token",
        ));
    }
    Ok(Actor::server(None))
}

/// [`admin_actor`], permitted `action` by the policies.
pub(super) async fn authorized(
    state: &AppState,
    headers: &HeaderMap,
    uri: &axum::http::Uri,
    action: &str,
) -> ApiResult<Actor> {
    let actor = admin_actor(state, headers, uri.query()).await?;
    actor.authorize_app(state, action)?;
    Ok(actor)
}

#[derive(Deserialize, utoipa::ToSchema)]
struct ProviderBody {
    /// `oidc` or `saml`.
    kind: String,
    name: String,
    #[serde(default = "yes")]
    enabled: bool,
    /// The protocol's settings (OIDC: issuer, client id...; SAML: IdP metadata...).
    #[schema(value_type = Object)]
    config: Value,
    /// The OIDC client secret; omitted keeps the stored one.
    secret: Option<String>,
}

fn yes() -> bool {
    true
}

fn provider_json(p: &SsoProvider) -> Value {
    json!({
        "id": p.id,
        "kind": p.kind.as_str(),
        "name": p.name,
        "enabled": p.enabled,
        "config": p.config,
        "has_secret": p.secret.is_some(),
    })
}

/// Validates a provider's protocol settings (each protocol module owns its rules).
fn validate(kind: ProviderKind, config: &Value) -> Result<(), String> {
    if !config.is_object() {
        return Err("config must be an object".into());
    }
    match kind {
        ProviderKind::Oidc => crate::auth::oidc_config_check(config),
        ProviderKind::Saml => crate::auth::saml_config_check(config),
    }
}

/// Creates or replaces an SSO provider.
#[utoipa::path(put, path = "/admin/sso/providers/{id}", tag = "admin", security(("session" = []), ("api_key" = [], "stream_token" = [])),
    params(("id" = String, Path, description = "1-64 letters, digits, '-' or '_'")),
    request_body = ProviderBody,
    responses((status = 200, description = "Saved", body = ProviderReply), AdminCallerErrors))]
async fn put_provider(
    State(state): State<AppState>,
    headers: HeaderMap,
    uri: axum::http::Uri,
    ApiPath(id): ApiPath<String>,
    ApiJson(body): ApiJson<ProviderBody>,
) -> HandlerResult {
    let actor = authorized(&state, &headers, &uri, "ManageSso").await?;
    if id.is_empty()
        || id.len() > 64
        || !id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
    {
        return Err(ApiError::input(
            "provider ids are 1-64 letters, digits, '-' or '_'",
        ));
    }
    let kind = ProviderKind::parse(&body.kind)
        .ok_or_else(|| ApiError::input("kind must be oidc or saml"))?;
    validate(kind, &body.config).map_err(|e| ApiError::input(format!("config: {e}")))?;
    let existing = sso::find_provider(&state.auth(), &id).await?;
    let secret = match body.secret {
        Some(s) if !s.is_empty() => Some(SecretString::from(s)),
        _ => existing.and_then(|e| e.secret),
    };
    let provider = SsoProvider {
        id,
        kind,
        name: body.name,
        enabled: body.enabled,
        config: body.config,
        secret,
    };
    sso::save_provider(&state.auth(), &provider, actor.user_id()).await?;
    Ok(Reply(json!({ "provider": provider_json(&provider) })))
}

#[utoipa::path(get, path = "/admin/sso/providers/{id}", tag = "admin", security(("session" = []), ("api_key" = [], "stream_token" = [])),
    params(("id" = String, Path)),
    responses((status = 200, description = "The provider", body = ProviderReply),
        (status = 404, description = "No such provider", body = ErrorBody), AdminCallerErrors))]
async fn get_provider(
    State(state): State<AppState>,
    headers: HeaderMap,
    uri: axum::http::Uri,
    ApiPath(id): ApiPath<String>,
) -> HandlerResult {
    authorized(&state, &headers, &uri, "ManageSso").await?;
    let p = sso::find_provider(&state.auth(), &id)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("no SSO provider {id}")))?;
    Ok(Reply(json!({ "provider": provider_json(&p) })))
}

#[utoipa::path(get, path = "/admin/sso/providers", tag = "admin", security(("session" = []), ("api_key" = [], "stream_token" = [])),
    responses((status = 200, description = "Every provider", body = ProviderList),
        AdminCallerErrors))]
async fn list_providers(
    State(state): State<AppState>,
    headers: HeaderMap,
    uri: axum::http::Uri,
) -> HandlerResult {
    authorized(&state, &headers, &uri, "ManageSso").await?;
    let mut out = Vec::new();
    for row in state.store.identity.find_providers().await? {
        if let Some(p) = sso::find_provider(&state.auth(), &row.id).await? {
            out.push(provider_json(&p));
        }
    }
    Ok(Reply(json!({ "providers": out })))
}

#[derive(Deserialize, utoipa::ToSchema)]
struct TwoFactorPolicy {
    roles: Vec<String>,
}

/// The roles that must verify a second factor.
#[utoipa::path(get, path = "/admin/auth/2fa-policy", tag = "admin", security(("session" = []), ("api_key" = [], "stream_token" = [])),
    responses((status = 200, description = "The roles", body = TwoFactorRoles),
        AdminCallerErrors))]
async fn get_2fa_policy(
    State(state): State<AppState>,
    headers: HeaderMap,
    uri: axum::http::Uri,
) -> HandlerResult {
    authorized(&state, &headers, &uri, "ManageSso").await?;
    let mut roles = Vec::new();
    for role in crate::chat::user::ROLES {
        if session::requires_2fa(&state.auth(), role).await? {
            roles.push(role.to_string());
        }
    }
    Ok(Reply(json!({ "roles": roles })))
}

/// Sets which roles must use 2FA. Admins cannot drop their own role from it: that would
/// let a stolen admin password (or IdP account) in without a second factor.
#[utoipa::path(put, path = "/admin/auth/2fa-policy", tag = "admin", security(("session" = []), ("api_key" = [], "stream_token" = [])),
    request_body = TwoFactorPolicy,
    responses((status = 200, description = "The roles now", body = TwoFactorRoles),
        AdminCallerErrors))]
async fn put_2fa_policy(
    State(state): State<AppState>,
    headers: HeaderMap,
    uri: axum::http::Uri,
    ApiJson(body): ApiJson<TwoFactorPolicy>,
) -> HandlerResult {
    let actor = authorized(&state, &headers, &uri, "ManageSso").await?;
    for r in &body.roles {
        if !crate::chat::user::ROLES.contains(&r.as_str()) {
            return Err(ApiError::input(format!("unknown role {r:?}")));
        }
    }
    if !body.roles.iter().any(|r| r == "admin") {
        return Err(ApiError::input("admins must always use 2FA"));
    }
    let json = serde_json::to_string(&body.roles).map_err(ApiError::internal)?;
    state
        .store
        .settings
        .upsert_setting("auth_2fa_roles", &json)
        .await?;
    state
        .audit
        .record(
            AuditEvent::new(EventType::ConfigChange)
                .actor_opt(actor.user_id())
                .object("setting", "auth_2fa_roles")
                .meta("setting", "auth.2fa_roles"),
        )
        .await
        .map_err(ApiError::from)?;
    Ok(Reply(json!({ "roles": body.roles })))
}

/// Removes a user's access at once: every session revoked, every token issued until now
/// refused, open WebSockets closed, and the account deactivated.
#[utoipa::path(post, path = "/admin/users/{id}/deprovision", tag = "admin", security(("session" = []), ("api_key" = [], "stream_token" = [])),
    params(("id" = String, Path, description = "The user")),
    responses((status = 201, description = "Deprovisioned", body = Deprovisioned),
        (status = 404, description = "No such user", body = ErrorBody), AdminCallerErrors))]
async fn deprovision(
    State(state): State<AppState>,
    headers: HeaderMap,
    uri: axum::http::Uri,
    ApiPath(id): ApiPath<String>,
) -> HandlerResult {
    let actor = authorized(&state, &headers, &uri, "ManageRoles").await?;
    let sessions =
        crate::auth::deprovision(&state.auth(), &id, actor.user_id(), "deprovisioned").await?;
    Ok(Reply(
        json!({ "user_id": id, "sessions_revoked": sessions }),
    ))
}
