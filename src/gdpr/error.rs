//! What can go wrong with data-subject rights and record keeping, in its own terms. The
//! HTTP edge (`http::error::gdpr`) turns each variant into Stream's error code, status and
//! message; the text of a variant is what the caller reads.

use crate::audit::{RecordError, RecordLost};
use crate::store::StoreError;

/// A GDPR failure.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The request is not acceptable as sent.
    #[error("{0}")]
    Input(String),
    /// What the request names does not exist.
    #[error("{0}")]
    NotFound(String),
    /// A legal hold covers what was to be erased (the holds are named).
    #[error("{0}")]
    Held(String),
    /// A database failure.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// An audit record could not be stored: the action fails.
    #[error(transparent)]
    Record(#[from] RecordError),
    /// An audit record was lost after the action.
    #[error(transparent)]
    RecordLost(#[from] RecordLost),
    /// An error of another domain (chat), passed on as it is.
    #[error(transparent)]
    Chat(#[from] crate::chat::Error),
    /// The policy refused the action.
    #[error(transparent)]
    Denied(#[from] crate::authz::Denied),
    /// Ward itself failed; the cause is for the log (no personal data in it).
    #[error("internal error: {0:#}")]
    Internal(anyhow::Error),
}

/// The result of a GDPR operation.
pub type Result<T> = std::result::Result<T, Error>;

impl Error {
    pub fn input(message: impl Into<String>) -> Self {
        Self::Input(message.into())
    }

    pub fn not_found(message: impl Into<String>) -> Self {
        Self::NotFound(message.into())
    }

    /// Ward failed; `cause` is kept for the log. It must not hold personal data.
    pub fn internal(cause: impl std::fmt::Display) -> Self {
        Self::Internal(anyhow::anyhow!("{cause:#}"))
    }
}
