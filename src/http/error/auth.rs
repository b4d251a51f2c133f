//! How an authentication failure leaves Ward: its Stream code, HTTP status and message.

use axum::http::StatusCode;

use super::{ApiError, code};
use crate::auth::{Error, TokenError};

impl From<TokenError> for ApiError {
    fn from(err: TokenError) -> Self {
        let code = match err {
            TokenError::Expired => code::TOKEN_EXPIRED,
            TokenError::NotValidYet => code::TOKEN_NOT_VALID_YET,
            TokenError::UsedBeforeIat => code::TOKEN_USED_BEFORE_IAT,
            TokenError::Invalid(_) => code::TOKEN_SIGNATURE_INVALID,
        };
        ApiError::unauthorized(code, err.to_string())
    }
}

impl From<Error> for ApiError {
    fn from(err: Error) -> Self {
        match err {
            Error::Input(m) => ApiError::input(m),
            Error::NotFound(m) => ApiError::not_found(m),
            Error::NotAllowed(m) => ApiError::not_allowed(m),
            Error::NotAuthenticated(m) => ApiError::unauthorized(code::ACCESS_KEY, m),
            Error::Token(t) => t.into(),
            Error::RateLimited(secs) => ApiError::rate_limited(secs),
            Error::TooManyAttempts(m) => {
                ApiError::new(code::RATE_LIMITED, StatusCode::TOO_MANY_REQUESTS, m)
            }
            Error::IdpUnavailable(m) => ApiError::new(code::INTERNAL, StatusCode::BAD_GATEWAY, m),
            Error::Store(e) => e.into(),
            Error::Record(e) => e.into(),
            Error::RecordLost(e) => e.into(),
            Error::Chat(e) => ApiError::from(e),
            Error::Denied(e) => ApiError::from(e),
            Error::Internal(e) => ApiError::failed(e),
        }
    }
}
