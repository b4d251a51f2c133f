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
            Error::Internal(e) => ApiError::failed(e),
        }
    }
}
