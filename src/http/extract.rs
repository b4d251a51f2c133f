//! Extractors that fail with Stream-shaped errors: the caller ([`Auth`]), JSON bodies
//! ([`ApiJson`]), path parameters ([`ApiPath`]) and `payload=` query objects.
//!
//! NUL (U+0000) is refused wherever input enters (path, query, JSON bodies, JSON in query
//! parameters, token claims) with code 4: PostgreSQL cannot store it in text (SQLSTATE
//! 22021, which would surface as a 500), SQLite would store it and let the two databases
//! disagree, and no id, filter or cursor needs it. Lone surrogates cannot arrive: JSON with
//! one is refused by the parser, and a Rust string cannot hold one.

use std::collections::HashMap;

use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, Path, Request};
use axum::http::StatusCode;
use axum::http::request::Parts;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use serde::de::DeserializeOwned;

use crate::app::AppState;
use crate::auth::{Caller, token};
use crate::chat::{Actor, user};
use crate::http::error::{ApiError, code};

/// The authenticated caller of a REST request, with the query parameters decoded with
/// form rules (`+` is a space), as the SDK encodes them.
pub struct Auth {
    pub caller: Caller,
    pub actor: Actor,
    pub connection_id: Option<String>,
    pub query: HashMap<String, String>,
}

impl Auth {
    /// Decodes the JSON object in the `payload` query parameter (GET endpoints).
    pub fn payload<T: DeserializeOwned + Default>(&self) -> Result<T, ApiError> {
        match self.query.get("payload") {
            None => Ok(T::default()),
            Some(text) => serde_json::from_str(text)
                .map_err(|e| ApiError::input(format!("payload is not valid: {e}"))),
        }
    }

    /// The actor a request acts for: a server-side call acts for the user it names (who must
    /// exist); a user acts for themselves, and naming anyone else is refused.
    pub async fn actor_for(
        &self,
        state: &AppState,
        named: Option<&str>,
    ) -> Result<Actor, ApiError> {
        Ok(user::act_as(&state.chat(), &self.actor, named).await?)
    }

    /// The `user_id` query parameter (server-side DELETEs and GETs name their user there).
    pub fn query_user(&self) -> Option<&str> {
        self.query.get("user_id").map(String::as_str)
    }

    pub fn flag(&self, name: &str) -> bool {
        self.query
            .get(name)
            .is_some_and(|v| v == "true" || v == "1")
    }
}

/// The query parameters; a value holding NUL, raw or as a JSON `\u0000` escape (`payload=`
/// and the WebSocket's `json=` carry JSON), is refused.
pub fn decode_query(raw: Option<&str>) -> Result<HashMap<String, String>, ApiError> {
    let pairs: Vec<(String, String)> = serde_urlencoded::from_str(raw.unwrap_or(""))
        .map_err(|_| ApiError::input("the query string is not valid"))?;
    if pairs
        .iter()
        .any(|(k, v)| k.contains('\0') || v.contains('\0') || json_has_nul(v.as_bytes()))
    {
        return Err(nul_refused());
    }
    Ok(pairs.into_iter().collect())
}

fn nul_refused() -> ApiError {
    ApiError::input("the request holds a NUL character, which no field accepts")
}

/// Whether JSON text holds an escaped NUL (`\u0000`) in a string; a raw NUL byte is already
/// invalid JSON. Escapes are skipped whole, so an escaped backslash followed by `u0000` is
/// text, not NUL.
pub fn json_has_nul(json: &[u8]) -> bool {
    let mut i = 0;
    while i < json.len() {
        if json[i] == b'\\' {
            if json.get(i + 1..i + 6) == Some(b"u0000") {
                return true;
            }
            i += 2;
        } else {
            i += 1;
        }
    }
    false
}

/// Refuses a request whose path or query holds a percent-encoded NUL (`%00`) before any
/// handler or extractor decodes it.
pub async fn refuse_encoded_nul(req: Request, next: Next) -> Response {
    let encoded_nul = |s: &str| s.as_bytes().windows(3).any(|w| w == b"%00");
    if encoded_nul(req.uri().path()) || req.uri().query().is_some_and(encoded_nul) {
        return nul_refused().into_response();
    }
    next.run(req).await
}

/// Verifies a token against the app secret; shared by REST and the WebSocket.
pub fn verify_token(state: &AppState, raw: &str) -> Result<token::Claims, ApiError> {
    let raw = raw.strip_prefix("Bearer ").unwrap_or(raw);
    let now = chrono::Utc::now().timestamp();
    let claims = token::verify(
        raw,
        state.credentials.secret_bytes(),
        state.config.dev_tokens,
        now,
    )?;
    if claims
        .user_id
        .as_deref()
        .is_some_and(|id| id.contains('\0'))
    {
        return Err(nul_refused());
    }
    Ok(claims)
}

/// Records a rejected token (the reason is the Stream error code: never the token or its
/// claims). The caller is unknown, so the entry has no actor. A server-side failure (the
/// revocation check could not reach the database) rejected nothing, and waiting for the
/// audit log then would only hold the failed request longer.
pub async fn record_rejection(state: &AppState, transport: &str, err: &ApiError) {
    if err.status.is_server_error() {
        return;
    }
    let event = crate::audit::AuditEvent::new(crate::audit::EventType::TokenRejected)
        .outcome(crate::audit::Outcome::Denied)
        .meta("reason", err.code)
        .meta("transport", transport);
    if let Err(e) = state.audit.record(event).await {
        tracing::error!(error = %e, "could not record a token rejection");
    }
}

pub fn check_api_key(state: &AppState, query: &HashMap<String, String>) -> Result<(), ApiError> {
    match query.get("api_key") {
        Some(k) if *k == state.credentials.api_key => Ok(()),
        Some(_) => Err(ApiError::unauthorized(
            code::ACCESS_KEY,
            "api_key not valid",
        )),
        None => Err(ApiError::unauthorized(
            code::ACCESS_KEY,
            "api_key not found: add ?api_key=… to the request",
        )),
    }
}

impl FromRequestParts<AppState> for Auth {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let query = decode_query(parts.uri.query())?;
        check_api_key(state, &query)?;
        let header = |name: &str| parts.headers.get(name).and_then(|v| v.to_str().ok());
        let caller = match (header("stream-auth-type"), header("authorization")) {
            (Some("anonymous"), _) => Caller::Anonymous,
            (_, Some(raw)) if !raw.is_empty() => {
                let claims = match verify_token(state, raw) {
                    Ok(c) => c,
                    Err(e) => {
                        record_rejection(state, "rest", &e).await;
                        return Err(e);
                    }
                };
                if let Err(e) = crate::auth::check_revocation(&state.auth(), &claims).await {
                    let e = ApiError::from(e);
                    record_rejection(state, "rest", &e).await;
                    return Err(e);
                }
                if claims.server {
                    Caller::Server
                } else {
                    Caller::User(claims.user_id.unwrap_or_default())
                }
            }
            _ => {
                return Err(ApiError::unauthorized(
                    code::ACCESS_KEY,
                    "the Authorization header is missing",
                ));
            }
        };
        // Writes per user; server-side calls (the API secret) are not limited.
        if let Caller::User(id) = &caller
            && matches!(
                parts.method,
                axum::http::Method::POST
                    | axum::http::Method::PUT
                    | axum::http::Method::PATCH
                    | axum::http::Method::DELETE
            )
        {
            crate::ratelimit::enforce(
                state,
                crate::ratelimit::Limit::WritesUser,
                id,
                Some(id),
                crate::ratelimit::Audited::Denied {
                    action: "write",
                    via: "rest",
                },
            )
            .await?;
        }
        let actor = match &caller {
            Caller::Server => Actor::server(None),
            Caller::User(id) => Actor::user(user::find_or_create(&state.chat(), id).await?),
            Caller::Anonymous => Actor::anonymous(),
        };
        Ok(Self {
            connection_id: query.get("connection_id").cloned(),
            caller,
            actor,
            query,
        })
    }
}

/// The user a server-side body names: `user_id`, or `user.id`.
pub fn named_user(body: &serde_json::Map<String, serde_json::Value>) -> Option<&str> {
    body.get("user_id")
        .and_then(serde_json::Value::as_str)
        .or_else(|| {
            body.get("user")
                .and_then(|u| u.get("id"))
                .and_then(serde_json::Value::as_str)
        })
}

/// A JSON body. An empty body reads as `{}`; too large is code 22, malformed is code 4.
pub struct ApiJson<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for ApiJson<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        let bytes = Bytes::from_request(req, state).await.map_err(|e| {
            if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
                ApiError::new(
                    code::PAYLOAD_TOO_BIG,
                    StatusCode::PAYLOAD_TOO_LARGE,
                    "request body is too large",
                )
            } else {
                ApiError::input("the request body could not be read")
            }
        })?;
        let body: &[u8] = if bytes.iter().all(u8::is_ascii_whitespace) {
            b"{}"
        } else {
            &bytes
        };
        if json_has_nul(body) {
            return Err(nul_refused());
        }
        serde_json::from_slice(body)
            .map(ApiJson)
            .map_err(|e| ApiError::input(format!("invalid request body: {e}")))
    }
}

/// Path parameters, with a Stream-shaped error when they cannot be decoded.
pub struct ApiPath<T>(pub T);

impl<T: DeserializeOwned + Send, S: Send + Sync> FromRequestParts<S> for ApiPath<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        Path::<T>::from_request_parts(parts, state)
            .await
            .map(|Path(v)| ApiPath(v))
            .map_err(|e| ApiError::input(format!("invalid path: {e}")))
    }
}
