//! The application state lending the data-subject rights their narrow context.

use super::AppState;

impl AppState {
    /// What the GDPR domain works with, borrowed from this state.
    pub fn gdpr(&self) -> crate::gdpr::Ctx<'_> {
        crate::gdpr::Ctx {
            store: &self.store,
            bus: &self.bus,
            audit: &self.audit,
            crypto: self.crypto.as_deref(),
            public_url: &self.config.public_url,
            data_dir: &self.config.data_dir,
            api_secret: self.credentials.secret_bytes(),
            blobs: self.blobs.as_ref(),
        }
    }
}

/// The GDPR jobs and the retention schedule run in the application state.
impl crate::gdpr::Host for AppState {
    fn gdpr(&self) -> crate::gdpr::Ctx<'_> {
        AppState::gdpr(self)
    }
}
