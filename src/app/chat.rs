//! The chat context the edge hands to `chat` operations: the parts of the state chat uses.

use super::AppState;

impl AppState {
    /// What chat operations need, borrowed from the state.
    pub fn chat(&self) -> crate::chat::Ctx<'_> {
        crate::chat::Ctx {
            store: &self.store,
            bus: &self.bus,
            authz: &self.authz,
            audit: &self.audit,
            max_message_length: self.config.limits.max_message_length,
        }
    }
}

impl AsRef<crate::authz::Authz> for AppState {
    fn as_ref(&self) -> &crate::authz::Authz {
        &self.authz
    }
}
