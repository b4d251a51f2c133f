//! Who is calling: Stream-compatible tokens and the resulting caller identity.

pub mod session;
pub mod sso;
pub mod token;

/// The authenticated caller of a REST request or WebSocket.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Caller {
    /// A backend holding the API secret (`{"server": true}` token). Acts for the user named
    /// in the request body, and is always attributed.
    Server,
    /// An end user, by the `user_id` claim of their token.
    User(String),
    /// An anonymous client (`stream-auth-type: anonymous`): read-only public data.
    Anonymous,
}

impl Caller {
    pub fn user_id(&self) -> Option<&str> {
        match self {
            Caller::User(id) => Some(id),
            _ => None,
        }
    }
}
