//! Data-subject rights and record keeping (GDPR Art. 15/17/20, HIPAA retention): export
//! of everything held about a user with a signed manifest, erasure by crypto-shredding,
//! legal holds that block erasure and retention, and retention by channel type.

pub mod erase;
mod error;
pub mod export;
pub mod hold;
pub mod retention;

pub use error::{Error, Result};

/// How the edge answers an error: whether the caller is at fault, the code and the
/// message it sends (a task fails with them).
pub type Answer = fn(Error) -> (bool, i32, String);

/// Registers the GDPR job kinds with this process's workers.
pub fn register_jobs(jobs: &crate::jobs::Jobs, answer: Answer) {
    jobs.register(erase::EraseJob { answer });
    jobs.register(export::ExportJob { answer });
    jobs.register(retention::RetentionJob);
}
