//! Interactive login for people (as opposed to apps presenting Stream tokens): bootstrap
//! password login, TOTP enrolment and verification, recovery codes, the session's own view
//! and its sessions, logout, and `POST /auth/chat-token`, which mints a short-lived Stream
//! user token for the logged-in user (the SDK's token provider calls it).

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post};
use serde::Deserialize;
use serde_json::json;

use super::openapi::{
    ChatToken, ErrorBody, LoggedIn, LoggedOut, Revoked, SecondFactorVerified, SessionErrors,
    SessionList, SessionView, TotpEnrolment, TotpVerified,
};
use super::{ApiJson, ApiPath, HandlerResult, Reply};
use crate::app::AppState;
use crate::auth::session::{self, Session, Start};
use crate::auth::{password, totp};
use crate::chat::Actor;
use crate::http::error::{ApiError, ApiResult, code};
use crate::ratelimit::{self, Audited, ClientIp, Limit};
use crate::time::rfc3339;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/auth/login", post(login))
        .route("/auth/logout", post(logout))
        .route("/auth/session", get(current))
        .route("/auth/sessions", get(list_sessions).delete(revoke_all))
        .route("/auth/sessions/{id}", delete(revoke_one))
        .route("/auth/totp/enroll", post(enroll))
        .route("/auth/totp/verify", post(verify))
        .route("/auth/recovery", post(recovery))
        .route("/auth/chat-token", post(chat_token))
}

/// This module's operations in the OpenAPI description (`super::openapi`).
#[derive(utoipa::OpenApi)]
#[openapi(paths(
    login,
    logout,
    current,
    list_sessions,
    revoke_one,
    revoke_all,
    enroll,
    verify,
    recovery,
    chat_token
))]
pub(super) struct Doc;

#[derive(Deserialize, utoipa::ToSchema)]
struct Login {
    user_id: String,
    password: String,
}

/// Password login, for bootstrap admins (`ward admin bootstrap`) before an IdP exists.
#[utoipa::path(post, path = "/auth/login", tag = "auth", request_body = Login, responses(
    (status = 201, description = "Logged in; the session cookie is set", body = LoggedIn),
    (status = 400, description = "A malformed body", body = ErrorBody),
    (status = 401, description = "Wrong user id or password", body = ErrorBody),
    (status = 429, description = "Too many attempts from this address or for this account",
        body = ErrorBody),
))]
async fn login(
    State(state): State<AppState>,
    ip: ClientIp,
    ApiJson(body): ApiJson<Login>,
) -> ApiResult<Response> {
    // Before any hashing: the limits are what make guessing slow.
    let audited = || Audited::Login {
        method: "password",
        provider: "password",
    };
    ratelimit::enforce_ip(&state, Limit::LoginIp, ip, audited()).await?;
    ratelimit::enforce(
        &state,
        Limit::LoginAccount,
        &body.user_id,
        Some(&body.user_id),
        audited(),
    )
    .await?;
    let refused = || ApiError::unauthorized(code::ACCESS_KEY, "wrong user id or password");
    let stored = state.store.identity.find_password(&body.user_id).await?;
    let user = state.store.users.find_user(&body.user_id).await?;
    // Hash even when the user is unknown, so timing does not reveal which ids exist.
    let ok = match &stored {
        Some(h) => password::verify(&body.password, h),
        None => {
            let _ = password::verify(&body.password, DUMMY_HASH);
            false
        }
    };
    let usable = user
        .as_ref()
        .is_some_and(|u| u.deactivated_at.is_none() && u.deleted_at.is_none() && !u.banned);
    if !(ok && usable) {
        crate::auth::sso::record_failure(&state.auth(), "password", "password", "bad_credentials")
            .await;
        return Err(refused());
    }
    let user = user.ok_or_else(refused)?;
    let token = session::create(
        &state.auth(),
        &user,
        Start {
            method: "password",
            provider: None,
            saml_session_index: None,
            mfa: false,
        },
    )
    .await?;
    let mut res = axum::Json(json!({
        "user": {"id": user.id, "role": user.role},
        "mfa_required": session::requires_2fa(&state.auth(), &user.role).await?,
        "totp_enrolled": totp_enrolled(&state, &user.id).await?,
    }))
    .into_response();
    res.headers_mut().append(
        header::SET_COOKIE,
        session::set_cookie(&state.auth(), &token),
    );
    Ok(res)
}

/// A valid argon2id hash of nothing in particular (for constant-time refusals).
const DUMMY_HASH: &str = "$argon2id$v=19$m=19456,t=2,p=1$c29tZXNhbHRzb21lc2FsdA$9sTbSlTio3Biev89thdrlKKiCaYsjjYVJxGAL3swxpQ";

async fn totp_enrolled(state: &AppState, user_id: &str) -> ApiResult<bool> {
    Ok(state
        .store
        .identity
        .find_totp(user_id)
        .await?
        .is_some_and(|t| t.confirmed))
}

/// Ends the caller's session (if any) and clears its cookie.
#[utoipa::path(post, path = "/auth/logout", tag = "auth", security((), ("session" = [])),
    responses((status = 201, description = "Logged out", body = LoggedOut)))]
async fn logout(State(state): State<AppState>, headers: HeaderMap) -> ApiResult<Response> {
    if let Some(s) = session::from_headers(&state.auth(), &headers).await? {
        session::revoke(
            &state.auth(),
            &s.id_hash,
            &s.user.id,
            Some(&s.user.id),
            "logout",
        )
        .await?;
    }
    let mut res = axum::Json(json!({ "logged_out": true })).into_response();
    res.headers_mut()
        .append(header::SET_COOKIE, session::clear_cookie());
    Ok(res)
}

async fn session_json(state: &AppState, s: &Session) -> ApiResult<serde_json::Value> {
    Ok(json!({
        "user": {"id": s.user.id, "role": s.user.role},
        "method": s.method,
        "provider": s.provider,
        "mfa": s.mfa,
        "mfa_required": session::requires_2fa(&state.auth(), &s.user.role).await?,
        "totp_enrolled": totp_enrolled(state, &s.user.id).await?,
    }))
}

/// The caller's session.
#[utoipa::path(get, path = "/auth/session", tag = "auth", security(("session" = [])),
    responses((status = 200, description = "The session", body = SessionView), SessionErrors))]
async fn current(State(state): State<AppState>, headers: HeaderMap) -> HandlerResult {
    let s = session::require(&state.auth(), &headers).await?;
    Ok(Reply(session_json(&state, &s).await?))
}

/// The first 16 hex digits of a session's hash: enough to name it, useless to log in.
fn public_id(id_hash: &str) -> &str {
    &id_hash[..16.min(id_hash.len())]
}

/// The caller's live sessions.
#[utoipa::path(get, path = "/auth/sessions", tag = "auth", security(("session" = [])),
    responses((status = 200, description = "The sessions", body = SessionList), SessionErrors))]
async fn list_sessions(State(state): State<AppState>, headers: HeaderMap) -> HandlerResult {
    let s = session::require(&state.auth(), &headers).await?;
    let rows = state.store.identity.find_sessions_of(&s.user.id).await?;
    let sessions: Vec<_> = rows
        .iter()
        .filter(|r| r.revoked_at.is_none())
        .map(|r| {
            json!({
                "id": public_id(&r.id_hash),
                "method": r.method,
                "provider": r.provider,
                "mfa": r.mfa,
                "created_at": rfc3339(r.created_at),
                "last_seen": rfc3339(r.last_seen),
                "expires_at": rfc3339(r.expires_at),
                "current": r.id_hash == s.id_hash,
            })
        })
        .collect();
    Ok(Reply(json!({ "sessions": sessions })))
}

/// Ends one of the caller's sessions.
#[utoipa::path(delete, path = "/auth/sessions/{id}", tag = "auth", security(("session" = [])),
    params(("id" = String, Path, description = "The `id` that `GET /auth/sessions` lists")),
    responses((status = 200, description = "Ended", body = Revoked),
        (status = 404, description = "No such live session", body = ErrorBody), SessionErrors))]
async fn revoke_one(
    State(state): State<AppState>,
    headers: HeaderMap,
    ApiPath(id): ApiPath<String>,
) -> HandlerResult {
    let s = session::require(&state.auth(), &headers).await?;
    let rows = state.store.identity.find_sessions_of(&s.user.id).await?;
    let Some(target) = rows
        .iter()
        .find(|r| r.revoked_at.is_none() && public_id(&r.id_hash) == id)
    else {
        return Err(ApiError::not_found("no such live session"));
    };
    session::revoke(
        &state.auth(),
        &target.id_hash,
        &s.user.id,
        Some(&s.user.id),
        "user_revoked",
    )
    .await?;
    Ok(Reply(json!({ "revoked": 1 })))
}

/// Ends every session of the caller, this one included.
#[utoipa::path(delete, path = "/auth/sessions", tag = "auth", security(("session" = [])),
    responses((status = 200, description = "Ended", body = Revoked), SessionErrors))]
async fn revoke_all(State(state): State<AppState>, headers: HeaderMap) -> HandlerResult {
    let s = session::require(&state.auth(), &headers).await?;
    let n = session::revoke_all(
        &state.auth(),
        &s.user.id,
        Some(&s.user.id),
        "user_revoked_all",
    )
    .await?;
    Ok(Reply(json!({ "revoked": n })))
}

/// Starts a TOTP enrolment (confirmed by a first code at `POST /auth/totp/verify`).
#[utoipa::path(post, path = "/auth/totp/enroll", tag = "auth", security(("session" = [])),
    responses((status = 201, description = "The new secret", body = TotpEnrolment),
        (status = 400, description = "Already enrolled, or field encryption is off",
            body = ErrorBody),
        (status = 403, description = "This user's keys were destroyed", body = ErrorBody),
        SessionErrors))]
async fn enroll(State(state): State<AppState>, headers: HeaderMap) -> HandlerResult {
    let s = session::require(&state.auth(), &headers).await?;
    Ok(Reply(totp::enroll(&state.auth(), &s.user.id).await?))
}

#[derive(Deserialize, utoipa::ToSchema)]
struct Code {
    code: String,
}

/// Confirms an enrolment (answers the recovery codes, once) or verifies a code; either
/// way the session's second factor is then verified.
#[utoipa::path(post, path = "/auth/totp/verify", tag = "auth", security(("session" = [])),
    request_body = Code,
    responses((status = 201, description = "Verified", body = TotpVerified),
        (status = 400, description = "A malformed body, or TOTP not enrolled", body = ErrorBody),
        (status = 401, description = "No live session, or the code is not valid",
            body = ErrorBody),
        (status = 403, description = "This user's keys were destroyed", body = ErrorBody),
        (status = 429, description = "Too many codes or wrong codes", body = ErrorBody)))]
async fn verify(
    State(state): State<AppState>,
    ip: ClientIp,
    headers: HeaderMap,
    ApiJson(body): ApiJson<Code>,
) -> HandlerResult {
    let s = session::require(&state.auth(), &headers).await?;
    limit_2fa(&state, ip, &s.user.id, "verify").await?;
    let codes = match totp::check(&state.auth(), &s.user.id, &body.code).await? {
        totp::Checked::Ok => None,
        totp::Checked::Enrolled(codes) => Some(codes),
    };
    session::mark_mfa(&state.auth(), &s).await?;
    Ok(Reply(json!({ "mfa": true, "recovery_codes": codes })))
}

/// TOTP codes and recovery codes share the per-address and per-account limits (on top of
/// the lock-out after wrong codes, which counts failures only).
async fn limit_2fa(state: &AppState, ip: ClientIp, user_id: &str, step: &str) -> ApiResult<()> {
    ratelimit::enforce_ip(state, Limit::TotpIp, ip, Audited::TwoFactor { step }).await?;
    ratelimit::enforce(
        state,
        Limit::TotpAccount,
        user_id,
        Some(user_id),
        Audited::TwoFactor { step },
    )
    .await
}

/// Verifies the second factor with a (single-use) recovery code.
#[utoipa::path(post, path = "/auth/recovery", tag = "auth", security(("session" = [])),
    request_body = Code,
    responses((status = 201, description = "Verified", body = SecondFactorVerified),
        (status = 400, description = "A malformed body", body = ErrorBody),
        (status = 401, description = "No live session, or the code is not valid",
            body = ErrorBody),
        (status = 429, description = "Too many codes", body = ErrorBody)))]
async fn recovery(
    State(state): State<AppState>,
    ip: ClientIp,
    headers: HeaderMap,
    ApiJson(body): ApiJson<Code>,
) -> HandlerResult {
    let s = session::require(&state.auth(), &headers).await?;
    limit_2fa(&state, ip, &s.user.id, "recovery").await?;
    totp::use_recovery_code(&state.auth(), &s.user.id, &body.code).await?;
    session::mark_mfa(&state.auth(), &s).await?;
    Ok(Reply(json!({ "mfa": true })))
}

/// A Stream user token for the session's user, valid for `WARD_CHAT_TOKEN_SECS` (default
/// one hour) and carrying `iat`, so deprovisioning revokes it.
#[utoipa::path(post, path = "/auth/chat-token", tag = "auth", security(("session" = [])),
    responses((status = 201, description = "A Stream user token", body = ChatToken),
        (status = 403, description = "The second factor is required and not verified, or the \
            policies refuse `Connect`", body = ErrorBody),
        (status = 429, description = "Too many tokens", body = ErrorBody), SessionErrors))]
async fn chat_token(
    State(state): State<AppState>,
    ip: ClientIp,
    headers: HeaderMap,
) -> HandlerResult {
    let audited = || Audited::Denied {
        action: "Connect",
        via: "chat_token",
    };
    ratelimit::enforce_ip(&state, Limit::ChatTokenIp, ip, audited()).await?;
    let s = session::require(&state.auth(), &headers).await?;
    ratelimit::enforce(
        &state,
        Limit::ChatTokenAccount,
        &s.user.id,
        Some(&s.user.id),
        audited(),
    )
    .await?;
    if !s.mfa && session::requires_2fa(&state.auth(), &s.user.role).await? {
        return Err(ApiError::not_allowed(
            "two-factor authentication is required for this account: verify a TOTP code first",
        ));
    }
    Actor::user(s.user.clone()).authorize_app(&state, "Connect")?;
    let now = chrono::Utc::now().timestamp();
    // Never outlives the session; `sid` ties it to the session, so revoking the session
    // revokes the token (and closes the WebSockets it opened).
    let exp = (now + state.config.sessions.chat_token_secs).min(s.expires_at / 1_000_000);
    let token = crate::auth::token::sign(
        &json!({"user_id": s.user.id, "iat": now, "exp": exp, "sid": s.id_hash}),
        state.credentials.secret_bytes(),
    );
    Ok(Reply(json!({
        "token": token,
        "user_id": s.user.id,
        "expires_at": rfc3339(exp * 1_000_000),
    })))
}
