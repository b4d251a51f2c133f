//! C2SP `signed-note` (<https://c2sp.org/signed-note>) with Ed25519 signatures
//! (signature type `0x01`), compatible with Go's `golang.org/x/mod/sumdb/note`.
//!
//! A note is UTF-8 text ending in `\n`, one blank line, then signature lines
//! `— <key name> <base64(u32 key ID big-endian || signature)>\n` (an em dash, U+2014, and a
//! space). The signed message is the text including its final newline. Key IDs are
//! `SHA-256(name || 0x0A || 0x01 || public key)[:4]`, so the same public key under another
//! name is another key: that is what stops a checkpoint of one origin being replayed as
//! another's when keys are shared.
//!
//! The verifier rules implemented by [`open`] (signed-note "Verifying notes"): signatures
//! from unknown `(name, key ID)` pairs are ignored (which is what makes key rotation and
//! witness cosignatures possible), a known key with a bad signature rejects the whole
//! note, and a note without any verified signature from a known key is rejected.

use ed25519_dalek::{Signature, Signer as _, SigningKey, VerifyingKey};
use sha2::{Digest, Sha256};

use crate::b64;

/// Signature type byte for Ed25519 in key IDs and verifier keys.
pub const SIGTYPE_ED25519: u8 = 0x01;

/// Notes with more signature lines than this are rejected; the spec requires accepting at
/// least 16 and suggests bounding the work (Go's `note` uses 100).
pub const MAX_SIGNATURES: usize = 100;

/// Upper bound on a note's size, to bound the work done on hostile input.
pub const MAX_NOTE_LEN: usize = 1 << 20;

/// Why a note, key or signature was rejected.
#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
pub enum NoteError {
    #[error("invalid key name (must be non-empty, without spaces, '+' or control characters)")]
    InvalidName,
    #[error("malformed verifier key: {0}")]
    MalformedKey(&'static str),
    #[error("verifier key ID does not match its name and public key")]
    KeyIdMismatch,
    #[error("malformed note: {0}")]
    Malformed(&'static str),
    #[error("note has more than {MAX_SIGNATURES} signatures")]
    TooManySignatures,
    #[error("signature by {name}+{id:08x} does not verify")]
    BadSignature { name: String, id: u32 },
    #[error(
        "note has no valid signature from a trusted key ({unknown} signatures by unknown keys ignored)"
    )]
    NoTrustedSignature { unknown: usize },
}

/// `SHA-256(name || 0x0A || 0x01 || public key)[:4]` as a big-endian `u32`.
pub fn key_id(name: &str, public_key: &[u8; 32]) -> u32 {
    let mut h = Sha256::new();
    h.update(name.as_bytes());
    h.update([b'\n', SIGTYPE_ED25519]);
    h.update(public_key);
    let d = h.finalize();
    u32::from_be_bytes([d[0], d[1], d[2], d[3]])
}

/// Key names (and checkpoint origins): non-empty, no Unicode whitespace, no `+`. Control
/// characters are excluded too since they cannot appear in a note at all.
pub fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && !name
            .chars()
            .any(|c| c.is_whitespace() || c == '+' || c.is_control())
}

/// A valid note text: non-empty, ends with `\n`, no control characters but `\n`.
fn check_text(text: &str) -> Result<(), NoteError> {
    if text.is_empty() || !text.ends_with('\n') {
        return Err(NoteError::Malformed("text must end with a newline"));
    }
    check_controls(text)
}

/// Go's rule: no ASCII control characters other than newline (we also refuse DEL).
fn check_controls(text: &str) -> Result<(), NoteError> {
    if text.bytes().any(|b| (b < 0x20 && b != b'\n') || b == 0x7f) {
        return Err(NoteError::Malformed("control character"));
    }
    Ok(())
}

/// An Ed25519 note signer. Holds the secret key, which is zeroized on drop
/// (`ed25519-dalek`'s `SigningKey` implements `ZeroizeOnDrop`); deliberately no `Debug`,
/// `Clone` or serialisation so it cannot leak through logs.
pub struct Signer {
    name: String,
    key: SigningKey,
    id: u32,
}

impl Signer {
    /// A signer from a 32-byte RFC 8032 seed. The caller should zeroize its copy of the seed.
    pub fn from_seed(name: &str, seed: &[u8; 32]) -> Result<Self, NoteError> {
        if !valid_name(name) {
            return Err(NoteError::InvalidName);
        }
        let key = SigningKey::from_bytes(seed);
        let id = key_id(name, key.verifying_key().as_bytes());
        Ok(Signer {
            name: name.to_owned(),
            key,
            id,
        })
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn key_id(&self) -> u32 {
        self.id
    }

    pub fn public_key(&self) -> [u8; 32] {
        self.key.verifying_key().to_bytes()
    }

    /// The verifier key text form `<name>+<8 lowercase hex key ID>+<base64(0x01 || key)>`
    /// (Go `note.NewVerifier`), which auditors pin.
    pub fn verifier_key(&self) -> String {
        let mut raw = [0u8; 33];
        raw[0] = SIGTYPE_ED25519;
        raw[1..].copy_from_slice(&self.public_key());
        format!("{}+{:08x}+{}", self.name, self.id, b64::encode(&raw))
    }

    /// The verifier for this signer's key.
    pub fn verifier(&self) -> Verifier {
        Verifier {
            name: self.name.clone(),
            id: self.id,
            key: self.key.verifying_key(),
        }
    }

    /// The signature line for `text` (without checking `text`).
    fn signature_line(&self, text: &str) -> String {
        let sig = self.key.sign(text.as_bytes());
        let mut raw = Vec::with_capacity(68);
        raw.extend_from_slice(&self.id.to_be_bytes());
        raw.extend_from_slice(&sig.to_bytes());
        format!("— {} {}\n", self.name, b64::encode(&raw))
    }

    /// Signs a note text: returns `text + "\n" + "— <name> <base64(key ID || sig)>\n"`.
    pub fn sign(&self, text: &str) -> Result<String, NoteError> {
        check_text(text)?;
        Ok(format!("{text}\n{}", self.signature_line(text)))
    }
}

/// A pinned Ed25519 verifier key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Verifier {
    name: String,
    id: u32,
    key: VerifyingKey,
}

impl Verifier {
    /// Strictly parses the verifier key text form `<name>+<8 lowercase hex>+<base64>`.
    /// The base64 must decode to `0x01 || 32-byte Ed25519 public key`, and the key ID must
    /// match the one computed from the name and key. Surrounding whitespace is not accepted
    /// (callers reading a file trim one trailing newline).
    pub fn parse(vkey: &str) -> Result<Self, NoteError> {
        let mut parts = vkey.splitn(3, '+');
        let (Some(name), Some(hex), Some(key64)) = (parts.next(), parts.next(), parts.next())
        else {
            return Err(NoteError::MalformedKey("expected <name>+<key id>+<key>"));
        };
        if !valid_name(name) {
            return Err(NoteError::InvalidName);
        }
        if hex.len() != 8 || !hex.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
            return Err(NoteError::MalformedKey(
                "key id is not 8 lowercase hex digits",
            ));
        }
        let id = u32::from_str_radix(hex, 16)
            .map_err(|_| NoteError::MalformedKey("key id is not 8 lowercase hex digits"))?;
        let raw =
            b64::decode(key64).ok_or(NoteError::MalformedKey("key is not canonical base64"))?;
        if raw.first() != Some(&SIGTYPE_ED25519) {
            return Err(NoteError::MalformedKey("key type is not Ed25519 (0x01)"));
        }
        let pk: [u8; 32] = raw[1..]
            .try_into()
            .map_err(|_| NoteError::MalformedKey("Ed25519 key is not 32 bytes"))?;
        let key = VerifyingKey::from_bytes(&pk)
            .map_err(|_| NoteError::MalformedKey("not an Ed25519 public key"))?;
        if key_id(name, &pk) != id {
            return Err(NoteError::KeyIdMismatch);
        }
        Ok(Verifier {
            name: name.to_owned(),
            id,
            key,
        })
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn key_id(&self) -> u32 {
        self.id
    }

    pub fn public_key(&self) -> [u8; 32] {
        self.key.to_bytes()
    }

    fn verify(&self, text: &str, sig: &[u8]) -> bool {
        let Ok(sig) = <[u8; 64]>::try_from(sig) else {
            return false;
        };
        // `verify_strict` also rejects small-order keys and non-canonical signature
        // encodings, so one message has one accepted signature per key.
        self.key
            .verify_strict(text.as_bytes(), &Signature::from_bytes(&sig))
            .is_ok()
    }
}

/// One parsed signature line.
struct SigLine<'a> {
    name: &'a str,
    id: u32,
    sig: Vec<u8>,
}

fn parse_sig_line(line: &str) -> Result<SigLine<'_>, NoteError> {
    let rest = line.strip_prefix("— ").ok_or(NoteError::Malformed(
        "signature line does not start with an em dash",
    ))?;
    let (name, sig64) = rest
        .split_once(' ')
        .ok_or(NoteError::Malformed("signature line has no signature"))?;
    if !valid_name(name) {
        return Err(NoteError::Malformed(
            "signature line has an invalid key name",
        ));
    }
    let raw =
        b64::decode(sig64).ok_or(NoteError::Malformed("signature is not canonical base64"))?;
    if raw.len() < 5 {
        return Err(NoteError::Malformed("signature is shorter than 5 bytes"));
    }
    Ok(SigLine {
        name,
        id: u32::from_be_bytes([raw[0], raw[1], raw[2], raw[3]]),
        sig: raw[4..].to_vec(),
    })
}

/// Splits a signed note into its text (including the final `\n`) and its signature block,
/// checking the framing only.
fn split_note(note: &str) -> Result<(&str, &str), NoteError> {
    if note.len() > MAX_NOTE_LEN {
        return Err(NoteError::Malformed("note is too large"));
    }
    check_controls(note)?;
    if !note.ends_with('\n') {
        return Err(NoteError::Malformed("note does not end with a newline"));
    }
    // The signature block starts after the *last* blank line.
    let split = note
        .rfind("\n\n")
        .ok_or(NoteError::Malformed("no blank line before the signatures"))?;
    let text = &note[..split + 1];
    let sigs = &note[split + 2..];
    if sigs.is_empty() {
        return Err(NoteError::Malformed("no signature lines"));
    }
    check_text(text)?;
    Ok((text, sigs))
}

/// Verifies a signed note against pinned verifiers and returns its text (body including
/// the final `\n`). See the module documentation for the rules.
pub fn open(note: &str, verifiers: &[Verifier]) -> Result<String, NoteError> {
    let (text, sigs) = split_note(note)?;
    // `sigs` ends with '\n' (the note does), so splitting by lines is exact.
    let lines: Vec<&str> = sigs[..sigs.len() - 1].split('\n').collect();
    if lines.len() > MAX_SIGNATURES {
        return Err(NoteError::TooManySignatures);
    }
    let mut verified = 0usize;
    let mut unknown = 0usize;
    let mut seen: Vec<(&str, u32)> = Vec::new();
    for line in lines {
        let sig = parse_sig_line(line)?;
        let Some(v) = verifiers
            .iter()
            .find(|v| v.name == sig.name && v.id == sig.id)
        else {
            unknown += 1;
            continue;
        };
        // A repeated line by the same key is checked once (as Go's `note` does).
        if seen.contains(&(sig.name, sig.id)) {
            continue;
        }
        seen.push((sig.name, sig.id));
        if !v.verify(text, &sig.sig) {
            return Err(NoteError::BadSignature {
                name: sig.name.to_owned(),
                id: sig.id,
            });
        }
        verified += 1;
    }
    if verified == 0 {
        return Err(NoteError::NoTrustedSignature { unknown });
    }
    Ok(text.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    // Go's golang.org/x/mod/sumdb/note test vector (note_test.go, TestSign / TestOpen):
    // skey PRIVATE+KEY+PeterNeumann+c74f20a3+AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz
    const GO_VKEY: &str = "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW";
    const GO_TEXT: &str = "If you think cryptography is the answer to your problem,\n\
                           then you don't know what your problem is.\n";
    const GO_SIG: &str = "— PeterNeumann x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvqfqdngotpRZb6KE6RyyBwJnAM=\n";

    fn go_signer() -> Signer {
        let raw = b64::decode("AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz").unwrap();
        assert_eq!(raw[0], 1);
        Signer::from_seed("PeterNeumann", raw[1..].try_into().unwrap()).unwrap()
    }

    #[test]
    fn matches_the_go_note_package_vectors() {
        let s = go_signer();
        assert_eq!(s.verifier_key(), GO_VKEY);
        assert_eq!(s.key_id(), 0xc74f20a3);
        let signed = s.sign(GO_TEXT).unwrap();
        assert_eq!(signed, format!("{GO_TEXT}\n{GO_SIG}"));
        let v = Verifier::parse(GO_VKEY).unwrap();
        assert_eq!(open(&signed, &[v]).unwrap(), GO_TEXT);
    }

    #[test]
    fn verifier_key_parsing_is_strict() {
        assert!(Verifier::parse(GO_VKEY).is_ok());
        assert_eq!(
            Verifier::parse("PeterNeumann+C74F20A3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW"),
            Err(NoteError::MalformedKey(
                "key id is not 8 lowercase hex digits"
            ))
        );
        assert_eq!(
            Verifier::parse("PeterNeumann+c74f20a4+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW"),
            Err(NoteError::KeyIdMismatch)
        );
        assert_eq!(
            Verifier::parse("Peter+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW"),
            Err(NoteError::KeyIdMismatch)
        );
        assert!(Verifier::parse(&format!("{GO_VKEY}\n")).is_err());
        assert!(Verifier::parse("PeterNeumann+c74f20a3").is_err());
        assert!(Verifier::parse("+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW").is_err());
        // Type byte 0x02 instead of 0x01.
        assert_eq!(
            Verifier::parse("PeterNeumann+c74f20a3+Alpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW"),
            Err(NoteError::MalformedKey("key type is not Ed25519 (0x01)"))
        );
    }

    #[test]
    fn signer_refuses_bad_names_and_texts() {
        assert!(Signer::from_seed("a b", &[1; 32]).is_err());
        assert!(Signer::from_seed("a+b", &[1; 32]).is_err());
        assert!(Signer::from_seed("", &[1; 32]).is_err());
        let s = go_signer();
        assert!(s.sign("no newline").is_err());
        assert!(s.sign("tab\there\n").is_err());
        assert!(s.sign("").is_err());
    }

    #[test]
    fn open_follows_the_signed_note_rules() {
        let s = go_signer();
        let v = s.verifier();
        let signed = s.sign(GO_TEXT).unwrap();
        // Unknown signatures are ignored, before and after.
        let other = Signer::from_seed("other", &[7; 32]).unwrap();
        let extra = other.signature_line(GO_TEXT);
        let with_unknown = format!("{GO_TEXT}\n{extra}{GO_SIG}{extra}");
        assert_eq!(
            open(&with_unknown, std::slice::from_ref(&v)).unwrap(),
            GO_TEXT
        );
        // Only unknown signatures: rejected.
        let only_unknown = format!("{GO_TEXT}\n{extra}");
        assert_eq!(
            open(&only_unknown, std::slice::from_ref(&v)),
            Err(NoteError::NoTrustedSignature { unknown: 1 })
        );
        // No blank line.
        assert!(matches!(
            open(&signed.replacen("\n\n", "\n", 1), std::slice::from_ref(&v)),
            Err(NoteError::Malformed(_))
        ));
        // Control character in the text.
        assert_eq!(
            open(&signed.replacen("If", "I\x07", 1), std::slice::from_ref(&v)),
            Err(NoteError::Malformed("control character"))
        );
        // Too many signatures.
        let many = format!("{GO_TEXT}\n{}", extra.repeat(MAX_SIGNATURES + 1));
        assert_eq!(
            open(&many, std::slice::from_ref(&v)),
            Err(NoteError::TooManySignatures)
        );
        // Exactly the maximum is fine when one verifies.
        let max = format!("{GO_TEXT}\n{}{GO_SIG}", extra.repeat(MAX_SIGNATURES - 1));
        assert!(open(&max, std::slice::from_ref(&v)).is_ok());
        // Missing final newline.
        assert!(open(signed.trim_end_matches('\n'), std::slice::from_ref(&v)).is_err());
        // Non-canonical base64: flip the last character's unused bits ('M' -> 'N').
        let noncanon = signed.replace("JnAM=", "JnAN=");
        assert_eq!(
            open(&noncanon, std::slice::from_ref(&v)),
            Err(NoteError::Malformed("signature is not canonical base64"))
        );
        // Missing padding.
        assert!(matches!(
            open(&signed.replace("JnAM=", "JnAM"), std::slice::from_ref(&v)),
            Err(NoteError::Malformed(_))
        ));
        // A tampered text fails under the known key.
        let tampered = signed.replacen("answer", "Answer", 1);
        assert!(matches!(
            open(&tampered, &[v]),
            Err(NoteError::BadSignature { .. })
        ));
    }
}
