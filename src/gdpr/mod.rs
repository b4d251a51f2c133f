//! Data-subject rights and record keeping (GDPR Art. 15/17/20, HIPAA retention): export
//! of everything held about a user with a signed manifest, erasure by crypto-shredding,
//! legal holds that block erasure and retention, and retention by channel type.

pub mod erase;
mod error;
pub mod export;
pub mod hold;
pub mod retention;

pub use error::{Error, Result};

use std::path::Path;

use crate::audit::AuditLog;
use crate::bus::Bus;
use crate::crypto::fields::FieldCrypto;
use crate::jobs::JobQueue;
use crate::store::Store;

/// What the data-subject rights work with, borrowed from the application for one
/// operation: the edge builds it (`AppState::gdpr`), so this domain needs nothing above it.
#[derive(Clone, Copy)]
pub struct Ctx<'a> {
    pub store: &'a Store,
    pub bus: &'a Bus,
    /// The verifiable audit log.
    pub audit: &'a AuditLog,
    /// Field encryption (erasure shreds its keys); `None` when switched off.
    pub crypto: Option<&'a FieldCrypto>,
    /// The public base URL (export download links).
    pub public_url: &'a str,
    /// The data directory (export archives live under `exports/`).
    pub data_dir: &'a Path,
    /// The API secret, which signs export download links.
    pub api_secret: &'a [u8],
    /// Uploaded files (erasure and retention delete them); `None` when encryption is off.
    pub blobs: Option<&'a crate::crypto::blobs::SealedBlobs>,
}

/// What the GDPR jobs and the retention schedule run in: a cheap-to-clone handle that
/// lends a GDPR context and queues jobs.
pub trait Host: JobQueue + Clone + Send + Sync + 'static {
    fn gdpr(&self) -> Ctx<'_>;
}

/// How the edge answers an error: whether the caller is at fault, the code and the
/// message it sends (a task fails with them).
pub type Answer = fn(Error) -> (bool, i32, String);

/// Registers the GDPR job kinds with this process's workers.
pub fn register_jobs<H: Host>(jobs: &crate::jobs::Jobs, answer: Answer) {
    jobs.register(erase::EraseJob::<H>::new(answer));
    jobs.register(export::ExportJob::<H>::new(answer));
    jobs.register(retention::RetentionJob::<H>::new());
}
