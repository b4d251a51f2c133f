//! What can go wrong in a chat operation, in chat's terms. The messages are the ones the
//! caller reads (they go on the wire unchanged); the edge (`http::error`) picks the Stream
//! code and HTTP status for each variant. Storage and record failures keep their source.

use crate::audit::RecordError;
use crate::authz::Denied;
use crate::store::StoreError;

/// A chat operation's failure.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The request is malformed or names something invalid.
    #[error("{0}")]
    Input(String),
    /// The channel, message or user does not exist.
    #[error("{0}")]
    NotFound(String),
    /// The actor may not do this (a rule of chat itself, not a policy decision).
    #[error("{0}")]
    NotAllowed(String),
    /// The policies refused the action.
    #[error(transparent)]
    Denied(#[from] Denied),
    /// A message text longer than the deployment's limit.
    #[error("message is too long: the maximum is {max} characters")]
    MessageTooLong { max: usize },
    /// A reply to a reply.
    #[error("replies to replies are not allowed")]
    MultipleNesting,
    /// An event type only the server sends (`message.new`, `member.added`, …).
    #[error("event type {0} cannot be sent by clients")]
    ServerOnlyEvent(String),
    /// Custom event data over its size limit.
    #[error("{0}")]
    PayloadTooBig(String),
    /// A message sent before the channel's cooldown has passed (slow mode).
    #[error("{0}")]
    SlowMode(String),
    /// The store failed (or refused a duplicate: [`StoreError::Conflict`]).
    #[error(transparent)]
    Store(#[from] StoreError),
    /// An audit record could not be made durable, so the action did not happen.
    #[error(transparent)]
    Record(#[from] RecordError),
}

/// A chat operation's result.
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
}
