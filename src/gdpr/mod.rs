//! Data-subject rights and record keeping (GDPR Art. 15/17/20, HIPAA retention): export
//! of everything held about a user with a signed manifest, erasure by crypto-shredding,
//! legal holds that block erasure and retention, and retention by channel type.

pub mod erase;
pub mod export;
pub mod hold;
pub mod retention;

/// Registers the GDPR job kinds with this process's workers.
pub fn register_jobs(jobs: &crate::jobs::Jobs) {
    jobs.register(erase::EraseJob);
    jobs.register(export::ExportJob);
    jobs.register(retention::RetentionJob);
}
