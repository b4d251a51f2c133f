//! The strict pre-read of SAML messages (src/auth/saml/xml.rs, the ACS shape and algorithm
//! checks) on arbitrary bytes, and the raw-DEFLATE reader of the HTTP-Redirect binding
//! (src/auth/saml/deflate.rs, flate2) with what it inflates read the same way: no panic, no
//! hang, and the inflater never exceeds its output limit.
#![no_main]

use libfuzzer_sys::fuzz_target;
use ward::auth::saml::{deflate, preparse};

/// The inflater's output limit here: small, so the limit itself is exercised.
const LIMIT: usize = 64 * 1024;

fuzz_target!(|data: &[u8]| {
    let _ = preparse(data.to_vec());
    if let Ok(xml) = deflate::inflate(data, LIMIT) {
        assert!(xml.len() <= LIMIT);
        let _ = preparse(xml);
    }
});
