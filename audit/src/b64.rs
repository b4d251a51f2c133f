//! Strict base64 (RFC 4648 §4, standard alphabet, padded), as every C2SP format uses.
//!
//! The `base64` crate's `STANDARD` engine already requires canonical padding and rejects
//! non-zero trailing bits, so each byte string has exactly one accepted text form. That
//! matters because signed texts are compared byte for byte: a lenient decoder would let two
//! different texts carry the same hash.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;

use crate::Hash;

pub(crate) fn encode(bytes: &[u8]) -> String {
    STANDARD.encode(bytes)
}

/// Decodes canonical padded base64; `None` for anything else (including whitespace).
pub(crate) fn decode(text: &str) -> Option<Vec<u8>> {
    let bytes = STANDARD.decode(text).ok()?;
    // Belt and braces: the decoder is canonical, but re-encoding proves it for any version.
    (STANDARD.encode(&bytes) == text).then_some(bytes)
}

/// Decodes a base64 SHA-256 hash: exactly 44 characters, exactly 32 bytes.
pub(crate) fn decode_hash(text: &str) -> Option<Hash> {
    if text.len() != 44 {
        return None;
    }
    decode(text)?.try_into().ok()
}
