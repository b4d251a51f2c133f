//! The GDPR export verifier (src/gdpr/export/verify.rs) on arbitrary archives, with the
//! pinned key of the seed exports: no panic, no hang, no unbounded allocation.
#![no_main]

use std::io::Cursor;
use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use ward::gdpr::export::verify_archive;
use ward_fuzz::audit_signer;

fn vkey() -> &'static str {
    static K: OnceLock<String> = OnceLock::new();
    K.get_or_init(|| audit_signer().verifier_key())
}

fuzz_target!(|data: &[u8]| {
    let _ = verify_archive(Cursor::new(data), vkey());
});
