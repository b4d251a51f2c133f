//! Root-key escrow: the local root key sealed under a passphrase, so losing `root.key` does
//! not lose every encrypted row. The file is JSON and carries its own parameters:
//!
//! ```json
//! {"format": "ward-root-key-escrow/v1", "key_id": "<fingerprint>",
//!  "kdf": {"name": "argon2id", "version": 19, "m_cost_kib": 65536, "t_cost": 3, "p_cost": 1,
//!          "salt": "<base64, 16 bytes>"},
//!  "cipher": {"name": "aes-256-gcm", "nonce": "<base64, 12 bytes>"},
//!  "ciphertext": "<base64: the 32-byte key and the 16-byte tag>"}
//! ```
//!
//! The AES-256-GCM key is argon2id(passphrase, salt); the associated data is the format name
//! and the key id, so neither can be swapped without the tag failing. Import recomputes the
//! fingerprint of the opened key and compares it with `key_id`.

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use anyhow::{Context, bail};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use rand::RngCore;
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

pub const FORMAT: &str = "ward-root-key-escrow/v1";

/// argon2id cost: 64 MiB, 3 passes (OWASP's first recommendation), one lane.
const M_COST_KIB: u32 = 64 * 1024;
const T_COST: u32 = 3;
const P_COST: u32 = 1;
/// A short passphrase makes the file as weak as the passphrase: refuse the shortest ones.
pub const MIN_PASSPHRASE_CHARS: usize = 12;
/// Accept files with higher costs than ours (a newer Ward), but bound what a crafted file
/// can make us spend.
const MAX_M_COST_KIB: u32 = 4 * 1024 * 1024;
const MAX_T_COST: u32 = 64;

#[derive(Serialize, Deserialize)]
struct EscrowFile {
    format: String,
    key_id: String,
    kdf: Kdf,
    cipher: Cipher,
    ciphertext: String,
}

#[derive(Serialize, Deserialize)]
struct Kdf {
    name: String,
    version: u32,
    m_cost_kib: u32,
    t_cost: u32,
    p_cost: u32,
    salt: String,
}

#[derive(Serialize, Deserialize)]
struct Cipher {
    name: String,
    nonce: String,
}

#[derive(Debug, thiserror::Error)]
pub enum EscrowError {
    #[error("the passphrase does not open this escrow file (or the file was altered)")]
    WrongPassphrase,
    #[error("not a Ward root-key escrow file: {0}")]
    Malformed(String),
    #[error("the passphrase must have at least {MIN_PASSPHRASE_CHARS} characters")]
    WeakPassphrase,
}

fn derive(passphrase: &str, salt: &[u8], kdf: &Kdf) -> anyhow::Result<Zeroizing<[u8; 32]>> {
    let params = argon2::Params::new(kdf.m_cost_kib, kdf.t_cost, kdf.p_cost, Some(32))
        .map_err(|e| EscrowError::Malformed(format!("argon2 parameters: {e}")))?;
    let argon = argon2::Argon2::new(argon2::Algorithm::Argon2id, argon2::Version::V0x13, params);
    let mut out = Zeroizing::new([0u8; 32]);
    argon
        .hash_password_into(passphrase.as_bytes(), salt, out.as_mut())
        .map_err(|e| EscrowError::Malformed(format!("argon2: {e}")))?;
    Ok(out)
}

fn aad(key_id: &str) -> Vec<u8> {
    [FORMAT.as_bytes(), b"\0", key_id.as_bytes()].concat()
}

/// Seals `key` under `passphrase`; returns the file's text.
pub fn seal(key: &[u8; 32], passphrase: &str) -> anyhow::Result<String> {
    if passphrase.chars().count() < MIN_PASSPHRASE_CHARS {
        return Err(EscrowError::WeakPassphrase.into());
    }
    let mut salt = [0u8; 16];
    let mut nonce = [0u8; 12];
    rand::rngs::OsRng.fill_bytes(&mut salt);
    rand::rngs::OsRng.fill_bytes(&mut nonce);
    let kdf = Kdf {
        name: "argon2id".into(),
        version: 0x13,
        m_cost_kib: M_COST_KIB,
        t_cost: T_COST,
        p_cost: P_COST,
        salt: STANDARD.encode(salt),
    };
    let key_id = super::root::fingerprint(key);
    let wrapping = derive(passphrase, &salt, &kdf)?;
    let cipher = Aes256Gcm::new_from_slice(wrapping.as_ref()).context("a 32-byte key")?;
    let n = Nonce::try_from(&nonce[..]).context("a 12-byte nonce")?;
    let ct = cipher
        .encrypt(
            &n,
            Payload {
                msg: key,
                aad: &aad(&key_id),
            },
        )
        .map_err(|_| anyhow::anyhow!("sealing the root key failed"))?;
    let file = EscrowFile {
        format: FORMAT.into(),
        key_id,
        kdf,
        cipher: Cipher {
            name: "aes-256-gcm".into(),
            nonce: STANDARD.encode(nonce),
        },
        ciphertext: STANDARD.encode(ct),
    };
    Ok(serde_json::to_string_pretty(&file)? + "\n")
}

/// Opens an escrow file's text with `passphrase`: the root key and its fingerprint.
pub fn open(text: &str, passphrase: &str) -> Result<(Zeroizing<[u8; 32]>, String), EscrowError> {
    let malformed = |what: &str| EscrowError::Malformed(what.to_string());
    let file: EscrowFile =
        serde_json::from_str(text).map_err(|_| malformed("the file is not the expected JSON"))?;
    if file.format != FORMAT {
        return Err(malformed(
            "unknown format (expected ward-root-key-escrow/v1)",
        ));
    }
    if file.kdf.name != "argon2id" || file.kdf.version != 0x13 {
        return Err(malformed("unsupported key derivation"));
    }
    if file.kdf.m_cost_kib > MAX_M_COST_KIB || file.kdf.t_cost > MAX_T_COST || file.kdf.p_cost > 16
    {
        return Err(malformed("key derivation costs beyond the accepted bounds"));
    }
    if file.cipher.name != "aes-256-gcm" {
        return Err(malformed("unsupported cipher"));
    }
    let salt = STANDARD
        .decode(&file.kdf.salt)
        .map_err(|_| malformed("salt is not base64"))?;
    let nonce = STANDARD
        .decode(&file.cipher.nonce)
        .map_err(|_| malformed("nonce is not base64"))?;
    let ct = STANDARD
        .decode(&file.ciphertext)
        .map_err(|_| malformed("ciphertext is not base64"))?;
    if salt.len() < 16 || nonce.len() != 12 || ct.len() != 32 + 16 {
        return Err(malformed("wrong field sizes"));
    }
    let wrapping = derive(passphrase, &salt, &file.kdf).map_err(|_| malformed("key derivation"))?;
    let cipher = Aes256Gcm::new_from_slice(wrapping.as_ref())
        .map_err(|_| malformed("key derivation output"))?;
    let n = Nonce::try_from(&nonce[..]).map_err(|_| malformed("nonce"))?;
    let plain = Zeroizing::new(
        cipher
            .decrypt(
                &n,
                Payload {
                    msg: &ct,
                    aad: &aad(&file.key_id),
                },
            )
            .map_err(|_| EscrowError::WrongPassphrase)?,
    );
    let mut key = Zeroizing::new([0u8; 32]);
    key.copy_from_slice(&plain);
    if super::root::fingerprint(&key) != file.key_id {
        return Err(malformed("the key does not match its recorded key id"));
    }
    Ok((key, file.key_id))
}

/// Refuses to write over an existing root key that differs from `key`; writes `dir/root.key`
/// (0600) otherwise. Returns whether a file was written (false: the same key was there).
pub fn install(dir: &std::path::Path, key: &[u8; 32]) -> anyhow::Result<bool> {
    let path = dir.join("root.key");
    match std::fs::read(&path) {
        Ok(existing) => {
            let existing = Zeroizing::new(existing);
            if existing.as_slice() == key.as_slice() {
                return Ok(false);
            }
            bail!(
                "{} holds a different root key (key id {}); move it away first if you mean to replace it",
                path.display(),
                <[u8; 32]>::try_from(existing.as_slice())
                    .map(|k| super::root::fingerprint(&k))
                    .unwrap_or_else(|_| "unreadable".into())
            )
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            crate::fsx::private_dir(dir)
                .with_context(|| format!("creating data dir {}", dir.display()))?;
            super::root::write_private(&path, key)?;
            Ok(true)
        }
        Err(e) => Err(anyhow::anyhow!("reading {}: {e}", path.display())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sealed_key_opens_with_its_passphrase_only() {
        let key = [7u8; 32];
        let text = seal(&key, "correct horse battery").unwrap();
        let (opened, id) = open(&text, "correct horse battery").unwrap();
        assert_eq!(*opened, key);
        assert_eq!(id, crate::crypto::root::fingerprint(&key));
        assert!(matches!(
            open(&text, "wrong horse battery"),
            Err(EscrowError::WrongPassphrase)
        ));
        assert!(!text.contains(&STANDARD.encode(key)));
    }

    #[test]
    fn an_altered_file_is_refused() {
        let key = [9u8; 32];
        let text = seal(&key, "correct horse battery").unwrap();
        let mut v: serde_json::Value = serde_json::from_str(&text).unwrap();
        v["key_id"] = "0000000000000000".into();
        assert!(matches!(
            open(&v.to_string(), "correct horse battery"),
            Err(EscrowError::WrongPassphrase)
        ));
        let mut v: serde_json::Value = serde_json::from_str(&text).unwrap();
        v["kdf"]["m_cost_kib"] = (u32::MAX).into();
        assert!(matches!(
            open(&v.to_string(), "correct horse battery"),
            Err(EscrowError::Malformed(_))
        ));
        assert!(matches!(
            seal(&key, "short"),
            Err(e) if e.downcast_ref::<EscrowError>().is_some()
        ));
    }
}
