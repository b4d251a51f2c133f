//! SAML 2.0 endpoints (`/auth/saml/{provider}/…`): SP metadata, SP-initiated login, the
//! assertion consumer service and single logout. Unauthenticated by nature (the browser
//! arrives without a session), so `PUBLIC` in the route table; the SAML module verifies.

use axum::Router;
use axum::body::Bytes;
use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde::Deserialize;

use super::ApiPath;
use super::openapi::SsoErrors;
use crate::app::AppState;
use crate::auth::saml::{self, SamlProvider, logout};
use crate::http::error::{ApiError, ApiResult};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/auth/saml/{provider}/metadata", get(get_metadata))
        .route("/auth/saml/{provider}/login", get(start_login))
        .route("/auth/saml/{provider}/acs", post(consume_assertion))
        .route(
            "/auth/saml/{provider}/logout",
            get(logout_redirect).post(logout_post),
        )
}

/// This module's operations in the OpenAPI description (`super::openapi`).
#[derive(utoipa::OpenApi)]
#[openapi(paths(
    get_metadata,
    start_login,
    consume_assertion,
    logout_redirect,
    logout_post
))]
pub(super) struct Doc;

/// The HTTP-POST binding's form (SAML Bindings §3.5).
#[derive(utoipa::ToSchema)]
#[allow(dead_code, reason = "describes the form the SAML module parses")]
struct SamlPost {
    #[schema(rename = "SAMLResponse")]
    saml_response: Option<String>,
    #[schema(rename = "SAMLRequest")]
    saml_request: Option<String>,
    #[schema(rename = "RelayState")]
    relay_state: Option<String>,
}

/// SP metadata (SAML Metadata §2.4.4), for the IdP administrator.
#[utoipa::path(get, path = "/auth/saml/{provider}/metadata", tag = "sso",
    params(("provider" = String, Path)),
    responses((status = 200, description = "This service provider's SAML metadata",
        content_type = "application/samlmetadata+xml", body = String), SsoErrors))]
async fn get_metadata(
    State(state): State<AppState>,
    ApiPath(provider): ApiPath<String>,
) -> ApiResult<Response> {
    let p = SamlProvider::load(&state.auth(), &provider).await?;
    let xml = p.metadata_xml()?;
    Ok((
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/samlmetadata+xml"),
        )],
        xml,
    )
        .into_response())
}

#[derive(Deserialize)]
struct LoginQuery {
    return_to: Option<String>,
}

/// SP-initiated SSO: a 303 to the IdP with the AuthnRequest (Profiles §4.1.3).
#[utoipa::path(get, path = "/auth/saml/{provider}/login", tag = "sso",
    params(("provider" = String, Path),
        ("return_to" = Option<String>, Query, description = "A path on this server")),
    responses((status = 303, description = "To the identity provider"), SsoErrors))]
async fn start_login(
    State(state): State<AppState>,
    ApiPath(provider): ApiPath<String>,
    RawQuery(query): RawQuery,
) -> ApiResult<Response> {
    let q: LoginQuery = serde_urlencoded::from_str(query.as_deref().unwrap_or(""))
        .map_err(|_| ApiError::input("the query string is not valid"))?;
    let p = SamlProvider::load(&state.auth(), &provider).await?;
    let url = saml::start_login(&state.auth(), &p, q.return_to.as_deref()).await?;
    let mut res = StatusCode::SEE_OTHER.into_response();
    res.headers_mut().insert(
        header::LOCATION,
        HeaderValue::from_str(&url).map_err(ApiError::internal)?,
    );
    Ok(res)
}

/// The assertion consumer service (HTTP-POST binding, Bindings §3.5).
#[utoipa::path(post, path = "/auth/saml/{provider}/acs", tag = "sso",
    params(("provider" = String, Path)),
    request_body(content = SamlPost, content_type = "application/x-www-form-urlencoded"),
    responses((status = 303, description = "Logged in: to `RelayState`, with the session cookie"),
        SsoErrors))]
async fn consume_assertion(
    State(state): State<AppState>,
    ip: crate::ratelimit::ClientIp,
    ApiPath(provider): ApiPath<String>,
    body: Bytes,
) -> ApiResult<Response> {
    // Before the XML is touched: signature checks are the costly part.
    crate::ratelimit::enforce_ip(
        &state,
        crate::ratelimit::Limit::SsoIp,
        ip,
        crate::ratelimit::Audited::Login {
            method: "saml",
            provider: &provider,
        },
    )
    .await?;
    Ok(saml::finish_login(
        &state.auth(),
        &crate::ratelimit::SsoLogins(&state),
        &provider,
        &body,
    )
    .await?)
}

#[utoipa::path(get, path = "/auth/saml/{provider}/logout", tag = "sso",
    params(("provider" = String, Path),
        ("SAMLRequest" = Option<String>, Query), ("SAMLResponse" = Option<String>, Query),
        ("RelayState" = Option<String>, Query), ("SigAlg" = Option<String>, Query),
        ("Signature" = Option<String>, Query), ("return_to" = Option<String>, Query)),
    security((), ("session" = [])),
    responses((status = 303, description = "To the identity provider or back"), SsoErrors))]
async fn logout_redirect(
    State(state): State<AppState>,
    ApiPath(provider): ApiPath<String>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> ApiResult<Response> {
    let query = query.unwrap_or_default();
    Ok(logout::logout(
        &state.auth(),
        &provider,
        &headers,
        logout::Binding::Redirect(&query),
    )
    .await?)
}

#[utoipa::path(post, path = "/auth/saml/{provider}/logout", tag = "sso",
    params(("provider" = String, Path)),
    request_body(content = SamlPost, content_type = "application/x-www-form-urlencoded"),
    security((), ("session" = [])),
    responses((status = 303, description = "To the identity provider or back"), SsoErrors))]
async fn logout_post(
    State(state): State<AppState>,
    ApiPath(provider): ApiPath<String>,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult<Response> {
    Ok(logout::logout(
        &state.auth(),
        &provider,
        &headers,
        logout::Binding::Post(&body),
    )
    .await?)
}
