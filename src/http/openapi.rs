//! `GET /openapi.json`: an OpenAPI 3.1 description of Ward's own endpoints (operations,
//! audit, compliance, identity and SSO), generated from the `#[utoipa::path]` attributes
//! on their handlers, so the description changes with the code. The Stream wire-protocol
//! endpoints are not described here: Stream publishes their description.
//!
//! Each handler module declares its operations in a `Doc`; [`document`] merges them with
//! the shared parts (the error body, the security schemes). A test checks that the
//! document lists exactly the Ward-own routes of `authz::routes`, and `schemathesis`
//! (tests/openapi/run.sh) checks the server against it.

mod replies;

use std::collections::BTreeMap;
use std::sync::LazyLock;

use axum::Router;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use utoipa::openapi::security::{ApiKey, ApiKeyValue, SecurityScheme};
use utoipa::openapi::{ContentBuilder, Ref, RefOr, ResponseBuilder};
use utoipa::{IntoResponses, Modify, OpenApi, ToSchema};

use crate::app::AppState;

pub use replies::*;

/// The security scheme names the handlers' `security(...)` attributes use.
pub const API_KEY: &str = "api_key";
pub const TOKEN: &str = "stream_token";
pub const SESSION: &str = "session";

/// Stream's error body, which every failure carries (`crate::http::error::ApiError::body`).
#[derive(ToSchema)]
#[allow(dead_code, reason = "describes the JSON that ApiError::body builds")]
pub struct ErrorBody {
    /// Stream's error code (4 input, 16 does not exist, 17 not allowed, 9 rate limited...).
    code: i32,
    message: String,
    /// The HTTP status, repeated.
    #[schema(rename = "StatusCode")]
    status_code: u16,
    /// Time spent on the request, e.g. `0.42ms`.
    duration: String,
    more_info: String,
}

/// Error replies (Stream's body), by status.
fn errors(list: &[(u16, &str)]) -> BTreeMap<String, RefOr<utoipa::openapi::Response>> {
    list.iter()
        .map(|(status, description)| {
            let body = ContentBuilder::new()
                .schema(Some(Ref::from_schema_name("ErrorBody")))
                .build();
            let reply = ResponseBuilder::new()
                .description(*description)
                .content("application/json", body)
                .build();
            (status.to_string(), RefOr::T(reply))
        })
        .collect()
}

/// The failures of a call authenticated by `api_key` and a Stream token (`http::Auth`).
pub struct TokenCallerErrors;

impl IntoResponses for TokenCallerErrors {
    fn responses() -> BTreeMap<String, RefOr<utoipa::openapi::Response>> {
        errors(&[
            (400, "A malformed query string or parameter"),
            (
                401,
                "api_key or the token is missing, not valid, expired or revoked",
            ),
            (403, "The policies refuse this caller"),
        ])
    }
}

/// The failures of an admin call (`admin_sso::admin_actor`): a live session, or `api_key`
/// and a server token.
pub struct AdminCallerErrors;

impl IntoResponses for AdminCallerErrors {
    fn responses() -> BTreeMap<String, RefOr<utoipa::openapi::Response>> {
        errors(&[
            (400, "A malformed body, query string or parameter"),
            (
                401,
                "No live session, and api_key or the server token is missing or not valid",
            ),
            (
                403,
                "A user token, a session whose required second factor is not verified, or \
                 the policies refuse this caller",
            ),
        ])
    }
}

/// The failure of a call that needs a live session (`auth::session::require`).
pub struct SessionErrors;

impl IntoResponses for SessionErrors {
    fn responses() -> BTreeMap<String, RefOr<utoipa::openapi::Response>> {
        errors(&[(401, "No live session")])
    }
}

/// The failures of an SSO step; the reason of a refusal goes to the audit log, not to the
/// browser.
pub struct SsoErrors;

impl IntoResponses for SsoErrors {
    fn responses() -> BTreeMap<String, RefOr<utoipa::openapi::Response>> {
        errors(&[
            (400, "Malformed parameters"),
            (401, "The identity provider's message is refused"),
            (404, "No such enabled provider"),
            (429, "Too many attempts from this address"),
            (502, "The identity provider could not be reached"),
        ])
    }
}

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Ward",
        description = "Ward's own endpoints: operations, the audit log, compliance, \
            identity administration, interactive login and SSO. The chat endpoints follow \
            the Stream Chat protocol and are described by Stream.",
    ),
    paths(openapi_json),
    components(schemas(ErrorBody)),
    modifiers(&SecuritySchemes),
)]
struct WardApi;

/// The three ways a caller proves who it is (see `http::extract` and `auth::session`).
struct SecuritySchemes;

impl Modify for SecuritySchemes {
    fn modify(&self, doc: &mut utoipa::openapi::OpenApi) {
        let components = doc.components.get_or_insert_with(Default::default);
        let scheme = |key: ApiKey| SecurityScheme::ApiKey(key);
        components.add_security_scheme(
            API_KEY,
            scheme(ApiKey::Query(ApiKeyValue::with_description(
                "api_key",
                "The app's API key (WARD_API_KEY); every token-authenticated call carries it.",
            ))),
        );
        components.add_security_scheme(
            TOKEN,
            scheme(ApiKey::Header(ApiKeyValue::with_description(
                "Authorization",
                "A Stream JWT (HS256, signed with the API secret), with or without `Bearer `: \
                 a server token (`{\"server\": true}`) or a user token (`{\"user_id\": ...}`).",
            ))),
        );
        components.add_security_scheme(
            SESSION,
            scheme(ApiKey::Cookie(ApiKeyValue::with_description(
                crate::auth::session::COOKIE,
                "An interactive session (POST /auth/login or SSO); admin endpoints also want \
                 its second factor verified where the 2FA policy requires it.",
            ))),
        );
    }
}

/// The whole description: the shared parts and every module's operations.
pub fn document() -> utoipa::openapi::OpenApi {
    let mut doc = WardApi::openapi();
    for part in [
        super::ops::Doc::openapi(),
        super::audit::Doc::openapi(),
        super::auth::Doc::openapi(),
        super::admin_sso::Doc::openapi(),
        super::compliance::Doc::openapi(),
        super::sso_oidc::Doc::openapi(),
        super::sso_saml::Doc::openapi(),
    ] {
        doc.merge(part);
    }
    doc
}

/// Rendered once: the description does not change while the server runs.
static DOCUMENT: LazyLock<String> = LazyLock::new(|| {
    document()
        .to_json()
        .expect("the OpenAPI document serialises")
});

pub fn router() -> Router<AppState> {
    Router::new().route("/openapi.json", get(openapi_json))
}

/// This document.
#[utoipa::path(
    get,
    path = "/openapi.json",
    tag = "ops",
    responses((status = 200, description = "The OpenAPI 3.1 description of Ward's own endpoints",
        content_type = "application/json", body = Object)),
)]
async fn openapi_json() -> Response {
    (
        [(header::CONTENT_TYPE, "application/json")],
        DOCUMENT.as_str(),
    )
        .into_response()
}
