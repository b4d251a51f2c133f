//! The one error type at the HTTP edge. Every failure leaves Ward as Stream's error body
//! `{code, message, StatusCode, duration, more_info}` so the SDK can read `code`.
//! Internal causes are logged here and never returned to the caller.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::json;

use crate::http::timing;

/// Stream error codes used by Ward (the SDK's `src/errors.ts` table).
pub mod code {
    pub const INTERNAL: i32 = -1;
    pub const ACCESS_KEY: i32 = 2;
    pub const INPUT: i32 = 4;
    pub const DOES_NOT_EXIST: i32 = 16;
    pub const NOT_ALLOWED: i32 = 17;
    pub const MESSAGE_TOO_LONG: i32 = 20;
    pub const MULTIPLE_NESTING: i32 = 21;
    pub const PAYLOAD_TOO_BIG: i32 = 22;
    pub const TOKEN_EXPIRED: i32 = 40;
    pub const TOKEN_NOT_VALID_YET: i32 = 41;
    pub const TOKEN_USED_BEFORE_IAT: i32 = 42;
    pub const TOKEN_SIGNATURE_INVALID: i32 = 43;
    pub const TOO_MANY_CONNECTIONS: i32 = 71;
    pub const RATE_LIMITED: i32 = 9;
}

const MORE_INFO: &str = "https://getstream.io/chat/docs/api_errors_response";

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    pub code: i32,
    pub status: StatusCode,
    pub message: String,
    /// Seconds for a `Retry-After` header (rate limits).
    pub retry_after: Option<u64>,
}

pub type ApiResult<T> = Result<T, ApiError>;

impl ApiError {
    pub fn new(code: i32, status: StatusCode, message: impl Into<String>) -> Self {
        Self {
            code,
            status,
            message: message.into(),
            retry_after: None,
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

    /// An unexpected failure: the cause is logged, the caller sees a neutral message.
    /// Callers must not put personal data into `cause` (it reaches the log).
    pub fn internal(cause: impl std::fmt::Display) -> Self {
        tracing::error!(error = %cause, "internal error");
        Self::new(
            code::INTERNAL,
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal error, please retry",
        )
    }

    /// A database failure, by what the caller can do about it: the database unreachable
    /// (down, restarting, refusing connections, every connection busy past the pool's acquire
    /// timeout) is a 503 and storage full a 507 (RFC 4918 §11.5: the server cannot store what
    /// the request needs), both with the retryable code -1 since they pass without the
    /// caller changing anything; anything else is an internal error. The cause is logged.
    pub fn database(err: sqlx::Error) -> Self {
        match DbFault::of(&err) {
            DbFault::Unavailable => {
                tracing::warn!(error = %err, "database unavailable");
                Self::new(
                    code::INTERNAL,
                    StatusCode::SERVICE_UNAVAILABLE,
                    "the database is unavailable, please retry",
                )
            }
            DbFault::Full => {
                tracing::error!(error = %err, "database storage full");
                Self::new(
                    code::INTERNAL,
                    StatusCode::INSUFFICIENT_STORAGE,
                    "the server's storage is full, please retry later",
                )
            }
            DbFault::Other => Self::internal(err),
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

/// What a database error means for the caller.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum DbFault {
    Unavailable,
    Full,
    Other,
}

impl DbFault {
    fn of(err: &sqlx::Error) -> Self {
        match err {
            sqlx::Error::Io(_)
            | sqlx::Error::Tls(_)
            | sqlx::Error::PoolTimedOut
            | sqlx::Error::PoolClosed
            | sqlx::Error::WorkerCrashed => Self::Unavailable,
            sqlx::Error::Database(e) => Self::of_code(e.code().as_deref().unwrap_or("")),
            _ => Self::Other,
        }
    }

    /// PostgreSQL SQLSTATEs (appendix A: class 08 connection exceptions, 57P01–57P03 the
    /// server shutting down or starting, 53300 too many connections, 53100 disk full) and
    /// SQLite's SQLITE_FULL (13).
    fn of_code(code: &str) -> Self {
        match code {
            "57P01" | "57P02" | "57P03" | "53300" => Self::Unavailable,
            c if c.starts_with("08") => Self::Unavailable,
            "53100" | "13" => Self::Full,
            _ => Self::Other,
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut res = (self.status, axum::Json(self.body())).into_response();
        if let Some(secs) = self.retry_after {
            res.headers_mut()
                .insert(axum::http::header::RETRY_AFTER, secs.into());
        }
        res
    }
}

#[cfg(test)]
mod tests {
    use super::DbFault;

    #[test]
    fn outages_and_full_disks_are_told_apart_from_other_database_errors() {
        for code in ["57P01", "57P03", "08006", "08001", "53300"] {
            assert_eq!(DbFault::of_code(code), DbFault::Unavailable, "{code}");
        }
        for code in ["53100", "13"] {
            assert_eq!(DbFault::of_code(code), DbFault::Full, "{code}");
        }
        for code in ["23505", "2067", "5", ""] {
            assert_eq!(DbFault::of_code(code), DbFault::Other, "{code}");
        }
        assert_eq!(
            DbFault::of(&sqlx::Error::PoolTimedOut),
            DbFault::Unavailable
        );
        assert_eq!(DbFault::of(&sqlx::Error::RowNotFound), DbFault::Other);
    }
}
