//! The strict pre-read of SAML messages (src/auth/saml/xml.rs, the ACS shape and algorithm
//! checks) on arbitrary bytes, and the raw-DEFLATE reader of the HTTP-Redirect binding
//! (src/auth/saml/deflate.rs) with what it inflates read the same way: no panic, no hang,
//! the inflater never exceeds its output limit, and what it inflates is what zlib (flate2)
//! inflates from the same bytes.
#![no_main]

use std::io::Read;

use flate2::read::DeflateDecoder;
use libfuzzer_sys::fuzz_target;
use ward::auth::saml::{deflate, preparse};

/// The inflater's output limit here: small, so the limit itself is exercised.
const LIMIT: usize = 64 * 1024;

fuzz_target!(|data: &[u8]| {
    let _ = preparse(data.to_vec());
    if let Ok(xml) = deflate::inflate(data, LIMIT) {
        assert!(xml.len() <= LIMIT);
        let mut reference = Vec::new();
        let zlib = DeflateDecoder::new(data)
            .take(LIMIT as u64 + 1)
            .read_to_end(&mut reference);
        assert!(zlib.is_ok(), "zlib refuses a stream the inflater accepts");
        assert_eq!(reference, xml, "zlib inflates the stream differently");
        let _ = preparse(xml);
    }
});
