//! The one error type at the HTTP edge. Every failure leaves Ward as Stream's error body
//! `{code, message, StatusCode, duration, more_info}` so the SDK can read `code`.
//! A server-side failure keeps its cause chain; the chain is logged once, when the error
//! becomes a response (or a WebSocket failure frame), and never returned to the caller.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::json;

mod authz;
mod chat;

use crate::http::timing;
use crate::store::Fault;

/// Stream error codes used by Ward (the SDK's `src/errors.ts` table).
pub mod code {
    pub const INTERNAL: i32 = -1;
    pub const ACCESS_KEY: i32 = 2;
    pub const INPUT: i32 = 4;
    pub const DOES_NOT_EXIST: i32 = 16;
    pub const NOT_ALLOWED: i32 = 17;
    /// An event type clients may not send.
    pub const EVENT_NOT_SUPPORTED: i32 = 18;
    pub const MESSAGE_TOO_LONG: i32 = 20;
    pub const MULTIPLE_NESTING: i32 = 21;
    pub const PAYLOAD_TOO_BIG: i32 = 22;
    pub const TOKEN_EXPIRED: i32 = 40;
    pub const TOKEN_NOT_VALID_YET: i32 = 41;
    pub const TOKEN_USED_BEFORE_IAT: i32 = 42;
    pub const TOKEN_SIGNATURE_INVALID: i32 = 43;
    pub const TOO_MANY_CONNECTIONS: i32 = 71;
    pub const RATE_LIMITED: i32 = 9;
    /// Slow mode: a message before the channel's cooldown has passed.
    pub const COOL_DOWN: i32 = 60;
}

mod auth;
mod gdpr;

const MORE_INFO: &str = "https://getstream.io/chat/docs/api_errors_response";

#[derive(Debug, Clone)]
pub struct ApiError {
    pub code: i32,
    pub status: StatusCode,
    pub message: String,
    /// Seconds for a `Retry-After` header (rate limits).
    pub retry_after: Option<u64>,
    /// What went wrong inside, for the log (never for the caller). Causes must not hold
    /// personal data: they are database, I/O and key errors, not request content.
    cause: Option<std::sync::Arc<anyhow::Error>>,
}

pub type ApiResult<T> = Result<T, ApiError>;

impl ApiError {
    pub fn new(code: i32, status: StatusCode, message: impl Into<String>) -> Self {
        Self {
            code,
            status,
            message: message.into(),
            retry_after: None,
            cause: None,
        }
    }

    /// Keeps `cause` for the log line written when this error is answered.
    pub fn caused_by(mut self, cause: impl Into<anyhow::Error>) -> Self {
        self.cause = Some(std::sync::Arc::new(cause.into()));
        self
    }

    /// Logs the cause chain, once, where the error leaves Ward: a warning for an outage
    /// that passes by itself, an error for anything else on the server's side.
    pub fn log(&self) {
        let Some(cause) = &self.cause else {
            return;
        };
        if self.status == StatusCode::SERVICE_UNAVAILABLE {
            tracing::warn!(status = self.status.as_u16(), error = %format!("{cause:#}"), "request failed");
        } else {
            tracing::error!(status = self.status.as_u16(), error = %format!("{cause:#}"), "request failed");
        }
    }

    /// Too many requests (code 9, 429); the caller may retry after `secs` seconds.
    pub fn rate_limited(secs: u64) -> Self {
        Self {
            retry_after: Some(secs),
            ..Self::new(
                code::RATE_LIMITED,
                StatusCode::TOO_MANY_REQUESTS,
                format!("Too many requests, retry in {secs} s"),
            )
        }
    }

    pub fn input(message: impl Into<String>) -> Self {
        Self::new(code::INPUT, StatusCode::BAD_REQUEST, message)
    }

    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(code::DOES_NOT_EXIST, StatusCode::NOT_FOUND, message)
    }

    pub fn not_allowed(message: impl Into<String>) -> Self {
        Self::new(code::NOT_ALLOWED, StatusCode::FORBIDDEN, message)
    }

    pub fn unauthorized(code: i32, message: impl Into<String>) -> Self {
        Self::new(code, StatusCode::UNAUTHORIZED, message)
    }

    /// An unexpected failure: the caller sees a neutral message, the cause is logged when
    /// the error is answered. Callers must not put personal data into `cause`.
    pub fn internal(cause: impl std::fmt::Display) -> Self {
        Self::failed(anyhow::anyhow!("{cause:#}"))
    }

    /// Ward itself failed with `cause` (kept for the log; no personal data in it).
    pub fn failed(cause: anyhow::Error) -> Self {
        Self::new(
            code::INTERNAL,
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal error, please retry",
        )
        .caused_by(cause)
    }

    /// A database failure, by what the caller can do about it: see [`ApiError::of_fault`].
    pub fn database(err: sqlx::Error) -> Self {
        Self::of_fault(Fault::of(&err), err)
    }

    /// The answer to a failure of class `fault`: the database unreachable (down,
    /// restarting, refusing connections, every connection busy past the pool's acquire
    /// timeout) is a 503 and storage full a 507 (RFC 4918 §11.5: the server cannot store
    /// what the request needs), both with the retryable code -1 since they pass without the
    /// caller changing anything; anything else is an internal error.
    pub fn of_fault(fault: Fault, err: impl std::fmt::Display) -> Self {
        match fault {
            Fault::Unavailable => Self::new(
                code::INTERNAL,
                StatusCode::SERVICE_UNAVAILABLE,
                "the database is unavailable, please retry",
            )
            .caused_by(anyhow::anyhow!("{err:#}")),
            Fault::Full => Self::new(
                code::INTERNAL,
                StatusCode::INSUFFICIENT_STORAGE,
                "the server's storage is full, please retry later",
            )
            .caused_by(anyhow::anyhow!("{err:#}")),
            Fault::Other => Self::internal(err),
        }
    }

    /// The JSON body Stream sends, also used as the WebSocket failure frame.
    pub fn body(&self) -> serde_json::Value {
        json!({
            "code": self.code,
            "message": self.message,
            "StatusCode": self.status.as_u16(),
            "duration": timing::duration(),
            "more_info": MORE_INFO,
        })
    }
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "code {}: {}", self.code, self.message)
    }
}

impl std::error::Error for ApiError {}

impl From<crate::store::StoreError> for ApiError {
    fn from(err: crate::store::StoreError) -> Self {
        match err {
            crate::store::StoreError::Conflict(what) => ApiError::input(what),
            // NUL or another character the database cannot store (PostgreSQL SQLSTATE
            // 22021 / 22P05): bad input that slipped past the edge's checks, not a fault.
            crate::store::StoreError::Database(sqlx::Error::Database(e))
                if matches!(e.code().as_deref(), Some("22021" | "22P05")) =>
            {
                ApiError::input("a value holds a character that cannot be stored")
            }
            crate::store::StoreError::Database(e) => ApiError::database(e),
            crate::store::StoreError::Crypto(e) => ApiError::internal(e),
        }
    }
}

impl From<crate::audit::RecordError> for ApiError {
    /// A record that could not be stored fails its action: 507 on a full disk, 503 while
    /// the database is away, 500 otherwise.
    fn from(err: crate::audit::RecordError) -> Self {
        ApiError::of_fault(err.fault, err)
    }
}

impl From<crate::audit::RecordLost> for ApiError {
    fn from(err: crate::audit::RecordLost) -> Self {
        ApiError::of_fault(err.fault, err)
    }
}

/// How a domain error is answered, for a task that fails with it: whether the caller is at
/// fault (a 4xx), the Stream code and the message.
pub fn answer<E: Into<ApiError>>(err: E) -> (bool, i32, String) {
    let api = err.into();
    (api.status.is_client_error(), api.code, api.message)
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        self.log();
        let mut res = (self.status, axum::Json(self.body())).into_response();
        if let Some(secs) = self.retry_after {
            res.headers_mut()
                .insert(axum::http::header::RETRY_AFTER, secs.into());
        }
        res
    }
}
