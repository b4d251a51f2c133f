//! JWT verification (src/auth/token.rs) on arbitrary tokens: never panics, and a token that
//! verifies under the secret without dev mode carries a user or is a server token.
#![no_main]

use libfuzzer_sys::fuzz_target;
use ward::auth::token;

const SECRET: &[u8] = b"fuzz-secret";
const NOW: i64 = 1_800_000_000;

fuzz_target!(|data: &[u8]| {
    let Ok(raw) = std::str::from_utf8(data) else {
        return;
    };
    for dev in [false, true] {
        if let Ok(claims) = token::verify(raw, SECRET, dev, NOW) {
            assert!(claims.server || claims.user_id.is_some_and(|u| !u.is_empty()));
            assert!(dev || !raw.ends_with(".devtoken"));
        }
    }
});
