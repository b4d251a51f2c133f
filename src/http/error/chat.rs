//! How a chat failure answers: its Stream code and HTTP status. The message is the
//! error's own text (already what the caller reads); storage and record failures keep
//! their cause for the log line written when the error is answered.

use axum::http::StatusCode;

use super::{ApiError, code};
use crate::chat::Error;

impl From<Error> for ApiError {
    fn from(err: Error) -> Self {
        match err {
            Error::Input(message) => ApiError::input(message),
            Error::NotFound(message) => ApiError::not_found(message),
            Error::NotAllowed(message) => ApiError::not_allowed(message),
            Error::Denied(denied) => denied.into(),
            Error::MessageTooLong { .. } => ApiError::new(
                code::MESSAGE_TOO_LONG,
                StatusCode::BAD_REQUEST,
                err.to_string(),
            ),
            Error::MultipleNesting => ApiError::new(
                code::MULTIPLE_NESTING,
                StatusCode::BAD_REQUEST,
                err.to_string(),
            ),
            Error::ServerOnlyEvent(_) => ApiError::new(
                code::EVENT_NOT_SUPPORTED,
                StatusCode::BAD_REQUEST,
                err.to_string(),
            ),
            Error::PayloadTooBig(message) => ApiError::new(
                code::PAYLOAD_TOO_BIG,
                StatusCode::PAYLOAD_TOO_LARGE,
                message,
            ),
            Error::SlowMode(message) => {
                ApiError::new(code::COOL_DOWN, StatusCode::FORBIDDEN, message)
            }
            Error::Store(e) => e.into(),
            Error::Record(e) => e.into(),
        }
    }
}
