//! OpenID Connect endpoints (`/auth/oidc/{provider}/…`): the login redirect and the
//! redirection endpoint the IdP sends the browser back to (OIDC Core §3.1.2.5). The browser
//! arrives without a session, so both are `PUBLIC` in the route table; `auth::oidc`
//! verifies, and nothing here serves data beyond the login itself.
//!
//! The `state` of a login is also set as a short-lived cookie scoped to these paths, and the
//! callback must present both: a response the browser did not ask for (login CSRF, RFC 9700
//! §4.7) is refused.

use axum::Router;
use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde::Deserialize;

use super::ApiPath;
use super::openapi::SsoErrors;
use crate::app::AppState;
use crate::auth::oidc::{self, CallbackParams};
use crate::http::error::{ApiError, ApiResult};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/auth/oidc/{provider}/login", get(start_login))
        .route("/auth/oidc/{provider}/callback", get(finish_login))
}

/// This module's operations in the OpenAPI description (`super::openapi`).
#[derive(utoipa::OpenApi)]
#[openapi(paths(start_login, finish_login))]
pub(super) struct Doc;

/// The cookie that binds a login's `state` to the browser that started it.
const FLOW_COOKIE: &str = "ward_oidc_state";
/// Where the flow cookie is sent: these endpoints only.
const FLOW_COOKIE_PATH: &str = "/auth/oidc/";

#[derive(Deserialize)]
struct LoginQuery {
    return_to: Option<String>,
}

fn query<T: serde::de::DeserializeOwned>(raw: Option<&str>) -> ApiResult<T> {
    serde_urlencoded::from_str(raw.unwrap_or(""))
        .map_err(|_| ApiError::input("the query string is not valid"))
}

/// `SameSite=Lax`: sent on the IdP's top-level redirect back, not on cross-site
/// subrequests.
fn flow_cookie(state: &AppState, value: &str, max_age: i64) -> ApiResult<HeaderValue> {
    let secure = if state.config.sessions.secure_cookies {
        "; Secure"
    } else {
        ""
    };
    HeaderValue::from_str(&format!(
        "{FLOW_COOKIE}={value}; Path={FLOW_COOKIE_PATH}; HttpOnly; SameSite=Lax; Max-Age={max_age}{secure}"
    ))
    .map_err(ApiError::internal)
}

fn cookie_value<'h>(headers: &'h HeaderMap, name: &str) -> Option<&'h str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
        .filter(|v| !v.is_empty())
}

/// `GET /auth/oidc/{provider}/login?return_to=/path`: a 303 to the IdP's authorization
/// endpoint (OIDC Core §3.1.2.1), setting the flow cookie.
#[utoipa::path(get, path = "/auth/oidc/{provider}/login", tag = "sso",
    params(("provider" = String, Path),
        ("return_to" = Option<String>, Query, description = "A path on this server")),
    responses((status = 303, description = "To the identity provider"), SsoErrors))]
async fn start_login(
    State(state): State<AppState>,
    ApiPath(provider): ApiPath<String>,
    RawQuery(raw): RawQuery,
) -> ApiResult<Response> {
    let q: LoginQuery = query(raw.as_deref())?;
    let p = oidc::find_oidc_provider(&state.auth(), &provider).await?;
    let redirect = oidc::begin_login(&state.auth(), &p, q.return_to.as_deref()).await?;
    let mut res = StatusCode::SEE_OTHER.into_response();
    let headers = res.headers_mut();
    headers.insert(
        header::LOCATION,
        HeaderValue::from_str(&redirect.url).map_err(ApiError::internal)?,
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.append(
        header::SET_COOKIE,
        flow_cookie(&state, &redirect.csrf_state, 600)?,
    );
    Ok(res)
}

/// `GET /auth/oidc/{provider}/callback?code=…&state=…` (or `?error=…&state=…`): verifies
/// the response and starts the session; the flow cookie is cleared whatever the outcome.
#[utoipa::path(get, path = "/auth/oidc/{provider}/callback", tag = "sso",
    params(("provider" = String, Path),
        ("code" = Option<String>, Query), ("state" = Option<String>, Query),
        ("error" = Option<String>, Query)),
    responses((status = 303, description = "Logged in: to `return_to`, with the session cookie"),
        SsoErrors))]
async fn finish_login(
    State(state): State<AppState>,
    ip: crate::ratelimit::ClientIp,
    headers: HeaderMap,
    ApiPath(provider): ApiPath<String>,
    RawQuery(raw): RawQuery,
) -> ApiResult<Response> {
    crate::ratelimit::enforce_ip(
        &state,
        crate::ratelimit::Limit::SsoIp,
        ip,
        crate::ratelimit::Audited::Login {
            method: "oidc",
            provider: &provider,
        },
    )
    .await?;
    let params: CallbackParams = query(raw.as_deref())?;
    let p = oidc::find_oidc_provider(&state.auth(), &provider).await?;
    let bound = cookie_value(&headers, FLOW_COOKIE);
    let mut res = match oidc::finish_login(
        &state.auth(),
        &crate::ratelimit::SsoLogins(&state),
        &p,
        params,
        bound,
    )
    .await
    {
        Ok(res) => res,
        Err(e) => ApiError::from(e).into_response(),
    };
    res.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    res.headers_mut()
        .append(header::SET_COOKIE, flow_cookie(&state, "", 0)?);
    Ok(res)
}
