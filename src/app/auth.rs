//! The application state lending authentication its narrow context.

use super::AppState;

impl AppState {
    /// What authentication works with, borrowed from this state.
    pub fn auth(&self) -> crate::auth::Ctx<'_> {
        crate::auth::Ctx {
            store: &self.store,
            bus: &self.bus,
            authz: &self.authz,
            audit: &self.audit,
            crypto: self.crypto.as_deref(),
            sessions: &self.config.sessions,
            public_url: &self.config.public_url,
            shutdown: &self.shutdown,
            chat: self.chat(),
        }
    }
}

/// Authentication's jobs and sweep run in the application state.
impl crate::auth::Host for AppState {
    fn auth(&self) -> crate::auth::Ctx<'_> {
        AppState::auth(self)
    }
}
