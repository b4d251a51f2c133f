//! What the fuzz targets share: the pinned audit key the seed corpora are signed with.

use std::sync::OnceLock;

use ward_audit::note::{Signer, Verifier};

/// The audit log's key name (the log origin) in the seeds of `audit_*` and `export_verify`.
pub const AUDIT_ORIGIN: &str = "fuzz.ward.example/audit";
/// The seed of that Ed25519 key: fixed, so committed seeds verify.
pub const AUDIT_SEED: [u8; 32] = [7; 32];

/// The audit signer of the seeds.
pub fn audit_signer() -> Signer {
    Signer::from_seed(AUDIT_ORIGIN, &AUDIT_SEED).expect("a valid key name")
}

/// The pinned verifier key every audit target checks against.
pub fn audit_verifier() -> &'static Verifier {
    static V: OnceLock<Verifier> = OnceLock::new();
    V.get_or_init(|| audit_signer().verifier())
}

/// Splits fuzz input into `N` parts at 0xFF bytes (a byte UTF-8 text never holds), the
/// last part keeping any further 0xFF; missing parts are empty.
pub fn split<const N: usize>(data: &[u8]) -> [&[u8]; N] {
    let mut parts = data.splitn(N, |&b| b == 0xff);
    std::array::from_fn(|_| parts.next().unwrap_or_default())
}
