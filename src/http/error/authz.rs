//! A policy denial answers code 17 (403) with the denial's message, which names the action.

use super::ApiError;
use crate::authz::Denied;

impl From<Denied> for ApiError {
    fn from(denied: Denied) -> Self {
        ApiError::not_allowed(denied.0)
    }
}
