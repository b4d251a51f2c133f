//! How a GDPR failure leaves Ward: its Stream code, HTTP status and message.

use axum::http::StatusCode;

use super::{ApiError, code};
use crate::gdpr::Error;

impl From<Error> for ApiError {
    fn from(err: Error) -> Self {
        match err {
            Error::Input(m) => ApiError::input(m),
            Error::NotFound(m) => ApiError::not_found(m),
            Error::Held(m) => ApiError::new(code::NOT_ALLOWED, StatusCode::CONFLICT, m),
            Error::Store(e) => e.into(),
            Error::Record(e) => e.into(),
            Error::RecordLost(e) => e.into(),
            Error::Chat(e) => ApiError::from(e),
            Error::Denied(e) => ApiError::from(e),
            Error::Internal(e) => ApiError::new(
                code::INTERNAL,
                StatusCode::INTERNAL_SERVER_ERROR,
                "internal error, please retry",
            )
            .caused_by(e),
        }
    }
}

/// How a GDPR error is answered, for a task that fails with it: whether the caller is at
/// fault (a 4xx), the Stream code and the message.
pub fn answer(err: Error) -> (bool, i32, String) {
    let api = ApiError::from(err);
    (api.status.is_client_error(), api.code, api.message)
}
