//! The ciphertext frame of one encrypted field (`audit-and-crypto.md` §3.7):
//!
//! ```text
//! offset 0   version  = 0x01
//!        1   alg      = 0x01 (AES-256-GCM, 96-bit random nonce)
//!        2   key_id   16 bytes: the DEK that sealed it (picked by id; never trial-decrypt)
//!        18  nonce    12 bytes
//!        30  ciphertext ‖ tag (16 bytes)
//! ```
//!
//! The AAD binds the header and where the value lives — `"ward-fle/v1" ‖ version ‖ alg ‖
//! key_id ‖ lp(table) ‖ lp(column) ‖ lp(row_id)` — so a frame copied to another row or
//! column, or with a header edited, fails to open.

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use rand::RngCore;
use zeroize::Zeroizing;

pub const VERSION: u8 = 0x01;
pub const ALG_AES_256_GCM: u8 = 0x01;
pub const HEADER_LEN: usize = 2 + 16 + 12;
pub const TAG_LEN: usize = 16;
const AAD_DOMAIN: &[u8] = b"ward-fle/v1";

/// A data-encryption key: an id and 32 secret bytes, zeroized on drop. No `Debug`, no
/// `Serialize`.
pub struct Dek {
    pub id: [u8; 16],
    key: Zeroizing<[u8; 32]>,
}

impl Dek {
    pub fn new(id: [u8; 16], key: Zeroizing<[u8; 32]>) -> Self {
        Self { id, key }
    }

    /// A fresh random key with a UUIDv7 id.
    pub fn generate() -> Self {
        let mut key = Zeroizing::new([0u8; 32]);
        rand::rngs::OsRng.fill_bytes(key.as_mut());
        Self {
            id: *uuid::Uuid::now_v7().as_bytes(),
            key,
        }
    }

    pub fn secret(&self) -> &[u8; 32] {
        &self.key
    }
}

/// Where an encrypted value lives; bound into the AAD.
#[derive(Debug, Clone, Copy)]
pub struct Field<'a> {
    pub table: &'a str,
    pub column: &'a str,
    pub row_id: &'a str,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FrameError {
    #[error("the value is not an encrypted frame (too short or unknown version/algorithm)")]
    Malformed,
    #[error("the value does not authenticate under its key (tampered, moved, or wrong key)")]
    Authentication,
}

fn lp(out: &mut Vec<u8>, s: &str) {
    out.extend_from_slice(&(s.len() as u32).to_be_bytes());
    out.extend_from_slice(s.as_bytes());
}

fn aad(key_id: &[u8; 16], field: Field<'_>) -> Vec<u8> {
    let mut out = Vec::with_capacity(64);
    out.extend_from_slice(AAD_DOMAIN);
    out.push(VERSION);
    out.push(ALG_AES_256_GCM);
    out.extend_from_slice(key_id);
    lp(&mut out, field.table);
    lp(&mut out, field.column);
    lp(&mut out, field.row_id);
    out
}

/// Encrypts `plaintext` for `field` under `dek`.
pub fn seal(dek: &Dek, field: Field<'_>, plaintext: &[u8]) -> Vec<u8> {
    let mut nonce = [0u8; 12];
    rand::rngs::OsRng.fill_bytes(&mut nonce);
    let cipher = Aes256Gcm::new_from_slice(dek.key.as_ref()).expect("a 32-byte key");
    let nonce_arr = Nonce::try_from(&nonce[..]).expect("a 12-byte nonce");
    let ct = cipher
        .encrypt(
            &nonce_arr,
            Payload {
                msg: plaintext,
                aad: &aad(&dek.id, field),
            },
        )
        .expect("AES-GCM encryption does not fail for in-range lengths");
    let mut out = Vec::with_capacity(HEADER_LEN + ct.len());
    out.push(VERSION);
    out.push(ALG_AES_256_GCM);
    out.extend_from_slice(&dek.id);
    out.extend_from_slice(&nonce);
    out.extend_from_slice(&ct);
    out
}

/// The id of the key that sealed `frame` (to look it up; never trial-decrypt).
pub fn key_id(frame: &[u8]) -> Result<[u8; 16], FrameError> {
    if frame.len() < HEADER_LEN + TAG_LEN || frame[0] != VERSION || frame[1] != ALG_AES_256_GCM {
        return Err(FrameError::Malformed);
    }
    Ok(frame[2..18].try_into().expect("16 bytes"))
}

/// Decrypts `frame` for `field` with `dek` (whose id must be the frame's).
pub fn open(dek: &Dek, field: Field<'_>, frame: &[u8]) -> Result<Zeroizing<Vec<u8>>, FrameError> {
    let id = key_id(frame)?;
    if id != dek.id {
        return Err(FrameError::Authentication);
    }
    let cipher = Aes256Gcm::new_from_slice(dek.key.as_ref()).expect("a 32-byte key");
    let nonce = Nonce::try_from(&frame[18..30]).expect("a 12-byte nonce");
    cipher
        .decrypt(
            &nonce,
            Payload {
                msg: &frame[HEADER_LEN..],
                aad: &aad(&id, field),
            },
        )
        .map(Zeroizing::new)
        .map_err(|_| FrameError::Authentication)
}

#[cfg(test)]
mod tests {
    use super::*;

    const HERE: Field<'static> = Field {
        table: "messages",
        column: "text",
        row_id: "m-1",
    };

    #[test]
    fn a_sealed_value_opens_where_it_was_sealed() {
        let dek = Dek::generate();
        let frame = seal(&dek, HERE, b"BP 120/80");
        assert_eq!(frame.len(), HEADER_LEN + 9 + TAG_LEN);
        assert_eq!(key_id(&frame).unwrap(), dek.id);
        assert_eq!(open(&dek, HERE, &frame).unwrap().as_slice(), b"BP 120/80");
        assert!(
            !frame.windows(9).any(|w| w == b"BP 120/80"),
            "no plaintext in the frame"
        );
    }

    #[test]
    fn moved_flipped_or_foreign_frames_fail() {
        let dek = Dek::generate();
        let frame = seal(&dek, HERE, b"secret");
        let other_row = Field {
            row_id: "m-2",
            ..HERE
        };
        let other_column = Field {
            column: "data",
            ..HERE
        };
        assert_eq!(
            open(&dek, other_row, &frame).unwrap_err(),
            FrameError::Authentication
        );
        assert_eq!(
            open(&dek, other_column, &frame).unwrap_err(),
            FrameError::Authentication
        );
        for i in [0usize, 1, 5, 20, frame.len() - 1] {
            let mut flipped = frame.clone();
            flipped[i] ^= 0x01;
            assert!(
                open(&dek, HERE, &flipped).is_err(),
                "bit flip at {i} is caught"
            );
        }
        let other = Dek::generate();
        assert_eq!(
            open(&other, HERE, &frame).unwrap_err(),
            FrameError::Authentication,
            "unknown key id"
        );
        assert_eq!(key_id(b"short").unwrap_err(), FrameError::Malformed);
    }
}
