//! What can go wrong in authentication, in its own terms. The HTTP edge
//! (`http::error::auth`) turns each variant into Stream's error code, status and message;
//! the text of a variant is the message the caller reads, so it never holds a token, a
//! secret or an IdP's answer.

use crate::audit::{RecordError, RecordLost};
use crate::store::StoreError;

/// Why a token is refused (Stream codes 40–43 at the edge).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    /// `exp` has passed.
    #[error("JWTAuth error: token is expired (exp)")]
    Expired,
    /// `nbf` lies ahead.
    #[error("JWTAuth error: token is not valid yet (nbf)")]
    NotValidYet,
    /// `iat` lies ahead.
    #[error("JWTAuth error: token used before issue at (iat)")]
    UsedBeforeIat,
    /// Malformed, badly signed, revoked or otherwise not acceptable; the text says which.
    #[error("{0}")]
    Invalid(&'static str),
}

/// An authentication failure.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The request is not acceptable as sent.
    #[error("{0}")]
    Input(String),
    /// What the request names does not exist.
    #[error("{0}")]
    NotFound(String),
    /// The caller may not do this.
    #[error("{0}")]
    NotAllowed(String),
    /// Who is calling is not established: no live session, a wrong second factor, a
    /// refused login.
    #[error("{0}")]
    NotAuthenticated(String),
    /// A token is refused.
    #[error(transparent)]
    Token(#[from] TokenError),
    /// Too many logins for one account: the caller may retry after this many seconds.
    #[error("too many logins, retry in {0} s")]
    RateLimited(u64),
    /// Too many wrong attempts: the caller may try again later.
    #[error("{0}")]
    TooManyAttempts(String),
    /// The identity provider could not be used (discovery, token or key endpoint).
    #[error("{0}")]
    IdpUnavailable(String),
    /// A database failure.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// An audit record could not be stored: the action fails.
    #[error(transparent)]
    Record(#[from] RecordError),
    /// An audit record was lost after the action.
    #[error(transparent)]
    RecordLost(#[from] RecordLost),
    /// An error of the chat domain, passed on as it is (users are saved through chat).
    #[error(transparent)]
    Chat(Box<dyn std::error::Error + Send + Sync>),
    /// Ward itself failed; the cause is for the log (no personal data in it).
    #[error("internal error: {0:#}")]
    Internal(anyhow::Error),
}

/// The result of an authentication operation.
pub type Result<T> = std::result::Result<T, Error>;

impl Error {
    pub fn input(message: impl Into<String>) -> Self {
        Self::Input(message.into())
    }

    pub fn not_found(message: impl Into<String>) -> Self {
        Self::NotFound(message.into())
    }

    pub fn not_allowed(message: impl Into<String>) -> Self {
        Self::NotAllowed(message.into())
    }

    pub fn not_authenticated(message: impl Into<String>) -> Self {
        Self::NotAuthenticated(message.into())
    }

    /// Ward failed; `cause` is kept for the log. It must not hold personal data.
    pub fn internal(cause: impl std::fmt::Display) -> Self {
        Self::Internal(anyhow::anyhow!("{cause:#}"))
    }

    /// Whether the caller is at fault (a 4xx at the edge), as opposed to the server.
    pub fn is_callers(&self) -> bool {
        matches!(
            self,
            Self::Input(_)
                | Self::NotFound(_)
                | Self::NotAllowed(_)
                | Self::NotAuthenticated(_)
                | Self::Token(_)
                | Self::RateLimited(_)
                | Self::TooManyAttempts(_)
                | Self::Store(StoreError::Conflict(_))
        )
    }
}
