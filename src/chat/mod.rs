//! The chat operations: channels, members, messages, reactions, reads and events. REST
//! handlers and the WebSocket both call these; nothing here knows about HTTP.
//!
//! Every operation takes the [`Actor`] it acts for, asks the policy engine ([`crate::authz`])
//! whether that actor may do it, writes through the store, then publishes the resulting
//! events once through the bus.

pub mod channel;
pub mod channel_type;
pub mod channel_update;
mod error;
pub mod event;
pub mod filter;
pub mod message;
// Issue 16 item 8 (tier 2).
pub mod draft;
pub mod listing;
pub mod poll;
pub mod reaction;
pub mod read;
pub mod reminder;
pub mod sync;
pub mod user;
pub mod usergroup;
pub mod view;
// Uploads (issue 16).
pub mod upload;
// Threads, reads and delivery (issue 16).
pub mod delivery;
pub mod thread;
// Messages and reactions beyond send/edit (issue 16, items 5 and 6).
pub mod message_extra;
pub mod og;
pub mod pin;
pub mod reaction_query;
// presence (issue 16, item 7)
pub mod presence;
// push devices (issue 16)
pub mod device;
pub mod guest;
// Members, invites and slow mode (issue 16, item 4).
pub mod channel_delete;
pub mod invite;
pub mod member;
pub mod member_query;
pub mod slow_mode;

use std::sync::Arc;

use crate::audit::AuditLog;
use crate::authz::{Authz, Denied};
use crate::bus::Bus;
use crate::store::{Store, UserRow};

pub use error::{Error, Result};

/// What chat operations use: the store, delivery, the policies, the audit log and the
/// message length limit. The edge builds one per request (`AppState::chat`).
#[derive(Clone, Copy)]
pub struct Ctx<'a> {
    pub store: &'a Store,
    pub bus: &'a Bus,
    pub authz: &'a Arc<Authz>,
    pub audit: &'a AuditLog,
    /// The longest message text, in characters (`config.limits`).
    pub max_message_length: usize,
}

impl AsRef<Authz> for Ctx<'_> {
    fn as_ref(&self) -> &Authz {
        self.authz
    }
}

/// Who an operation acts for: an end user, or a server-side caller acting for the user
/// named in the request (if any).
#[derive(Debug, Clone)]
pub struct Actor {
    pub server: bool,
    pub anonymous: bool,
    pub user: Option<UserRow>,
}

impl Actor {
    pub fn server(user: Option<UserRow>) -> Self {
        Self {
            server: true,
            anonymous: false,
            user,
        }
    }

    pub fn user(user: UserRow) -> Self {
        Self {
            server: false,
            anonymous: false,
            user: Some(user),
        }
    }

    pub fn anonymous() -> Self {
        Self {
            server: false,
            anonymous: true,
            user: None,
        }
    }

    pub fn user_id(&self) -> Option<&str> {
        self.user.as_ref().map(|u| u.id.as_str())
    }

    /// The acting user, required for operations that are attributed to one.
    pub fn require_user(&self) -> Result<&UserRow> {
        self.user.as_ref().ok_or_else(|| {
            if self.server {
                Error::input("either user or user_id must be provided when using server side auth")
            } else {
                Error::not_allowed("anonymous users cannot perform this action")
            }
        })
    }

    pub fn is_admin(&self) -> bool {
        self.server || self.user.as_ref().is_some_and(|u| u.role == "admin")
    }

    pub fn is_moderator(&self) -> bool {
        self.is_admin() || self.user.as_ref().is_some_and(|u| u.role == "moderator")
    }

    pub fn is_anonymous(&self) -> bool {
        self.anonymous
    }

    /// The actor as the policy engine sees it.
    /// An audit record of `event` by this actor (`via` says whether it came with the API
    /// secret or a user token).
    pub fn audit(&self, event: crate::audit::EventType) -> crate::audit::AuditEvent {
        crate::audit::AuditEvent::new(event)
            .actor_opt(self.user_id())
            .meta("via", if self.server { "server" } else { "client" })
    }

    pub fn principal(&self) -> crate::authz::Principal<'_> {
        use crate::authz::Principal;
        match (&self.user, self.server) {
            (user, true) => Principal::Server {
                acting_for: user.as_ref().map(|u| u.id.as_str()),
            },
            (Some(u), false) => Principal::User {
                id: &u.id,
                role: &u.role,
            },
            (None, false) => Principal::User {
                id: "anonymous",
                role: "anonymous",
            },
        }
    }

    /// Asks the policies about an app-level action (a [`Denied`] names it; the edge
    /// answers code 17). `authz` is anything that holds the policies.
    pub fn authorize_app(
        &self,
        authz: &impl AsRef<Authz>,
        action: &str,
    ) -> std::result::Result<(), Denied> {
        authz
            .as_ref()
            .authorize(self.principal(), action, &crate::authz::Resource::App)
    }
}

fn valid_chars(text: &str, max: usize, extra: &[char]) -> bool {
    !text.is_empty()
        && text.len() <= max
        && text
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-' || extra.contains(&c))
}

/// Channel types match `^[\w_-]+$`.
pub fn validate_channel_type(kind: &str) -> Result<()> {
    if valid_chars(kind, 64, &[]) {
        Ok(())
    } else {
        Err(Error::input(format!(
            "channel type {kind:?} is invalid: it must match ^[\\w_-]+$"
        )))
    }
}

/// Channel ids match `^[\w!_-]+$` (no `:`), at most 64 characters.
pub fn validate_channel_id(id: &str) -> Result<()> {
    if valid_chars(id, 64, &['!']) {
        Ok(())
    } else {
        Err(Error::input(format!(
            "channel id {id:?} is invalid: it must match ^[\\w!_-]+$"
        )))
    }
}

/// User ids use letters, digits, `@`, `_` and `-` (Stream's rule), at most 255 characters.
pub fn validate_user_id(id: &str) -> Result<()> {
    if valid_chars(id, 255, &['@', '.']) {
        Ok(())
    } else {
        Err(Error::input(format!(
            "user id {id:?} is invalid: use letters, digits, @, _ and -"
        )))
    }
}

/// Message ids are client-supplied UUIDs or similar, at most 255 characters.
pub fn validate_message_id(id: &str) -> Result<()> {
    if valid_chars(id, 255, &['@', '.', ':', '!']) {
        Ok(())
    } else {
        Err(Error::input(format!("message id {id:?} is invalid")))
    }
}

/// Splits and validates a `type:id` channel id.
pub fn parse_cid(cid: &str) -> Result<(&str, &str)> {
    let (kind, id) = cid
        .split_once(':')
        .ok_or_else(|| Error::input(format!("cid {cid:?} is invalid: expected type:id")))?;
    validate_channel_type(kind)?;
    validate_channel_id(id)?;
    Ok((kind, id))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_follow_streams_rules() {
        assert!(validate_channel_type("messaging").is_ok());
        assert!(validate_channel_type("bad:type").is_err());
        assert!(validate_channel_id("!members-abc").is_ok());
        assert!(validate_channel_id("a:b").is_err());
        assert!(validate_channel_id("").is_err());
        assert!(validate_user_id("jane@example_1").is_ok());
        assert!(validate_user_id("no spaces").is_err());
        assert_eq!(parse_cid("team:general").unwrap(), ("team", "general"));
        assert!(parse_cid("team").is_err());
    }
}
