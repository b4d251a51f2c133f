//! Data-subject rights and record keeping (GDPR Art. 15/17/20, HIPAA retention): export
//! of everything held about a user with a signed manifest, erasure by crypto-shredding,
//! legal holds that block erasure and retention, and retention by channel type.
