//! What a WebSocket peer controls (src/ws/, src/bus/wire.rs): the `/connect` query string
//! (its `json=` payload and token), a client's text frames, and the binary frames another
//! node publishes on the bus. The same bytes go to each parser; none may panic, and a bus
//! frame that decodes re-encodes to one that decodes the same.
#![no_main]

use libfuzzer_sys::fuzz_target;
use ward::bus::wire;

const SECRET: &[u8] = b"fuzz-secret";
const NOW: i64 = 1_800_000_000;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        if let Ok(claims) = ward::ws::parse_connect(Some(text), SECRET, NOW) {
            assert!(claims.server || claims.user_id.is_some_and(|u| !u.is_empty()));
        }
    }
    if let Ok(Some(cid)) = ward::bus::gate::channel_of_bytes(data) {
        assert!(!cid.is_empty() && cid != "*");
    }
    if let Some(frame) = wire::decode(data) {
        let again = wire::encode(&frame.node, frame.sent_at, &frame.body);
        assert_eq!(wire::decode(&again), Some(frame));
    }
});
