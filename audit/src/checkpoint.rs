//! C2SP `tlog-checkpoint` (<https://c2sp.org/tlog-checkpoint>): the signed tree head.
//!
//! The body is exactly three lines: the origin (the log's identity, equal to the key name),
//! the tree size in ASCII decimal without leading zeros, and the padded standard base64 of
//! the RFC 6962 root hash. Extension lines are allowed by the spec but NOT RECOMMENDED
//! because monitors cannot audit them; this log never produces them and the verifier
//! refuses them, so a signed checkpoint has exactly one text for a given (origin, size, root).

use crate::note::{self, NoteError, Signer, Verifier};
use crate::{Hash, b64};

/// Why a checkpoint was rejected.
#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
pub enum CheckpointError {
    #[error("checkpoint signature: {0}")]
    Note(#[from] NoteError),
    #[error("malformed checkpoint: {0}")]
    Malformed(&'static str),
    #[error("checkpoint origin {found:?} is not the pinned origin {expected:?}")]
    OriginMismatch { expected: String, found: String },
}

/// A checkpoint body: `origin\nsize\nbase64(root)\n`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Checkpoint {
    pub origin: String,
    pub size: u64,
    pub root: Hash,
}

/// Parses a tree size: ASCII digits, no sign, no leading zeros (except `0` itself), fits u64.
pub(crate) fn parse_size(text: &str) -> Option<u64> {
    if text.is_empty()
        || !text.bytes().all(|b| b.is_ascii_digit())
        || (text.len() > 1 && text.starts_with('0'))
    {
        return None;
    }
    text.parse().ok()
}

impl Checkpoint {
    /// The note text: `origin\nsize\nbase64(root)\n`.
    pub fn body(&self) -> String {
        format!(
            "{}\n{}\n{}\n",
            self.origin,
            self.size,
            b64::encode(&self.root)
        )
    }

    /// Strictly parses a body: exactly three lines each ending in `\n`; origin a valid key
    /// name; canonical decimal size; canonical padded base64 of exactly 32 bytes.
    pub fn parse_body(text: &str) -> Result<Self, CheckpointError> {
        let body = text.strip_suffix('\n').ok_or(CheckpointError::Malformed(
            "body does not end with a newline",
        ))?;
        let lines: Vec<&str> = body.split('\n').collect();
        if lines.len() < 3 {
            return Err(CheckpointError::Malformed(
                "body has fewer than three lines",
            ));
        }
        if lines.len() > 3 {
            return Err(CheckpointError::Malformed(
                "extension lines are not accepted",
            ));
        }
        let origin = lines[0];
        if !note::valid_name(origin) {
            return Err(CheckpointError::Malformed(
                "origin is empty or has spaces, '+' or control characters",
            ));
        }
        let size = parse_size(lines[1]).ok_or(CheckpointError::Malformed(
            "size is not a canonical decimal number",
        ))?;
        let root = b64::decode_hash(lines[2]).ok_or(CheckpointError::Malformed(
            "root is not canonical base64 of 32 bytes",
        ))?;
        Ok(Checkpoint {
            origin: origin.to_owned(),
            size,
            root,
        })
    }

    /// Signs the body as a note. The signer's name must equal the origin
    /// (tlog-checkpoint: the key name SHOULD be the origin; this log makes it a MUST).
    pub fn sign(&self, signer: &Signer) -> Result<String, CheckpointError> {
        if signer.name() != self.origin {
            return Err(CheckpointError::OriginMismatch {
                expected: signer.name().to_owned(),
                found: self.origin.clone(),
            });
        }
        // Round-trip through the parser so we never sign what we would refuse to open.
        let body = self.body();
        Checkpoint::parse_body(&body)?;
        Ok(signer.sign(&body)?)
    }

    /// Opens a signed checkpoint under the pinned verifier and requires origin == key name.
    /// The origin is pinned through the key, never learnt from the server (immudb
    /// CVE-2022-39199: a server that can change its claimed identity escapes client state).
    pub fn open(signed: &str, verifier: &Verifier) -> Result<Self, CheckpointError> {
        let text = note::open(signed, std::slice::from_ref(verifier))?;
        let cp = Checkpoint::parse_body(&text)?;
        if cp.origin != verifier.name() {
            return Err(CheckpointError::OriginMismatch {
                expected: verifier.name().to_owned(),
                found: cp.origin,
            });
        }
        Ok(cp)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn signer() -> Signer {
        Signer::from_seed("example.com/log", &[0x42; 32]).unwrap()
    }

    fn cp() -> Checkpoint {
        Checkpoint {
            origin: "example.com/log".into(),
            size: 20852163,
            root: [7; 32],
        }
    }

    #[test]
    fn body_round_trips() {
        let c = cp();
        assert_eq!(
            c.body(),
            "example.com/log\n20852163\nBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwc=\n"
        );
        assert_eq!(Checkpoint::parse_body(&c.body()).unwrap(), c);
    }

    #[test]
    fn parse_body_is_strict() {
        let r = "BwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwc=";
        for (text, why) in [
            (format!("o\n012\n{r}\n"), "leading zero"),
            (format!("o\n+12\n{r}\n"), "sign"),
            (format!("o\n-1\n{r}\n"), "negative"),
            (format!("o\n\n{r}\n"), "empty size"),
            (format!("o\n18446744073709551616\n{r}\n"), "overflow"),
            (format!("o\n1\n{r}"), "no final newline"),
            (format!("o\n1\n{r}\next\n"), "extension line"),
            (format!("o\n1\n{r}\n\n"), "empty extension line"),
            (
                "o\n1\nBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBw==\n".to_owned(),
                "31 bytes",
            ),
            (
                "o\n1\nBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcH\n".to_owned(),
                "33 bytes",
            ),
            (
                "o\n1\nBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwd=\n".to_owned(),
                "non-canonical",
            ),
            (format!("o p\n1\n{r}\n"), "space in origin"),
            (format!("o+p\n1\n{r}\n"), "plus in origin"),
            (format!("\n1\n{r}\n"), "empty origin"),
            ("o\n1\n".to_owned(), "two lines"),
        ] {
            assert!(Checkpoint::parse_body(&text).is_err(), "{why}");
        }
        assert_eq!(
            Checkpoint::parse_body(&format!("o\n0\n{r}\n"))
                .unwrap()
                .size,
            0
        );
    }

    #[test]
    fn sign_and_open() {
        let s = signer();
        let v = s.verifier();
        let signed = cp().sign(&s).unwrap();
        assert_eq!(Checkpoint::open(&signed, &v).unwrap(), cp());
        // Wrong origin for the signer.
        let mut other = cp();
        other.origin = "other".into();
        assert!(matches!(
            other.sign(&s),
            Err(CheckpointError::OriginMismatch { .. })
        ));
        // Another origin's body signed under our key name: the signature is fine, the
        // origin is not.
        let forged = s.sign(&other.body()).unwrap();
        assert!(matches!(
            Checkpoint::open(&forged, &v),
            Err(CheckpointError::OriginMismatch { .. })
        ));
    }
}
