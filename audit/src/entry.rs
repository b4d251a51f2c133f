//! Entry v1: the exact bytes that are chained, hashed into the Merkle tree and stored.
//!
//! Why a fixed binary layout rather than JSON or CBOR (audit-and-crypto.md §2.4): a value has
//! exactly one encoding by construction, any language can reproduce it with big-endian
//! integer writes, and nothing is ever re-serialised. The stored bytes *are* the hashed bytes,
//! so a library upgrade that reorders JSON keys or normalises a timestamp cannot silently
//! change a historical hash. The decoder is strict (exact lengths, no trailing bytes,
//! canonical metadata) so that every accepted byte string is the one canonical encoding of
//! its [`Entry`]: `decode(b).encode() == b` for every `b` that decodes.
//!
//! Layout (all integers big-endian; offsets in bytes; see README.md "Entry v1"):
//!
//! ```text
//!   0  u8      version = 1
//!   1  u64     seq            (0-based; equals the Merkle leaf index)
//!   9  [32]    prev_chain     (C_{seq-1}; 32 zero bytes for seq 0)
//!  41  u64     ts_unix_ms     (server clock; advisory only)
//!  49  u16     event_type
//!  51  [16]    actor_id       (pseudonymous)
//!  67  [16]    subject_id     (pseudonymous, or zeros)
//!  83  [16]    tenant_id
//!  99  u32 n + n bytes  object_ref
//!      u32 n + n bytes  pii_ct  (ciphertext under the subject's key; opaque here)
//!      u32 n + n bytes  meta    (canonical, see [`encode_meta`])
//! ```

use std::collections::BTreeMap;

use sha2::{Digest, Sha256};

use crate::Hash;

/// The only entry version this crate reads or writes.
pub const VERSION: u8 = 1;

/// The largest entry: a tlog-tiles entry bundle frames each entry with a `u16` length
/// (c2sp.org/tlog-tiles, "Log Entries"), so anything longer could not be served as tiles.
pub const MAX_ENTRY_LEN: usize = 65_535;

/// Bytes before the first variable-length field.
pub const FIXED_LEN: usize = 99;

/// The smallest possible entry: the fixed part plus three empty length-prefixed fields.
pub const MIN_ENTRY_LEN: usize = FIXED_LEN + 12;

/// Domain separation for the chain hash, so a chain hash can never be confused with a
/// Merkle leaf (`0x00` prefix) or node (`0x01` prefix) hash of the same bytes.
pub const CHAIN_DOMAIN: &[u8] = b"ward-audit/chain/v1\0";

/// The longest metadata key.
pub const MAX_META_KEY_LEN: usize = 64;

/// One audit entry, decoded. See the module documentation for the byte layout.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Entry {
    pub seq: u64,
    pub prev_chain: Hash,
    pub ts_unix_ms: u64,
    pub event_type: u16,
    pub actor_id: [u8; 16],
    pub subject_id: [u8; 16],
    pub tenant_id: [u8; 16],
    pub object_ref: Vec<u8>,
    pub pii_ct: Vec<u8>,
    pub meta: Vec<u8>,
}

/// Why bytes are not a valid v1 entry (or metadata is not canonical).
#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
pub enum EntryError {
    #[error("entry is {len} bytes; the maximum is {MAX_ENTRY_LEN}")]
    TooLong { len: usize },
    #[error("entry is truncated in field {0}")]
    Truncated(&'static str),
    #[error("unsupported entry version {0} (expected {VERSION})")]
    Version(u8),
    #[error("entry has {0} trailing bytes after the last field")]
    TrailingBytes(usize),
    #[error("metadata is truncated")]
    MetaTruncated,
    #[error("metadata has {0} trailing bytes")]
    MetaTrailingBytes(usize),
    #[error("metadata key is not 1..=64 bytes of [a-z0-9_.-]")]
    MetaKey,
    #[error("metadata value is not UTF-8 without control characters")]
    MetaValue,
    #[error("metadata value is longer than 65535 bytes")]
    MetaValueTooLong,
    #[error("metadata has more than 65535 pairs")]
    MetaTooManyPairs,
    #[error("metadata keys are not strictly ascending (unsorted or duplicate): not canonical")]
    MetaOrder,
    #[error("empty metadata must be encoded as zero bytes, not a zero count: not canonical")]
    MetaEmptyCount,
}

/// A borrowed, validated view of an encoded entry: the verifier's hot path decodes
/// without copying any field.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct EntryRef<'a> {
    pub seq: u64,
    pub prev_chain: &'a Hash,
    pub ts_unix_ms: u64,
    pub event_type: u16,
    pub actor_id: &'a [u8; 16],
    pub subject_id: &'a [u8; 16],
    pub tenant_id: &'a [u8; 16],
    pub object_ref: &'a [u8],
    pub pii_ct: &'a [u8],
    pub meta: &'a [u8],
}

struct Reader<'a> {
    buf: &'a [u8],
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize, field: &'static str) -> Result<&'a [u8], EntryError> {
        if self.buf.len() < n {
            return Err(EntryError::Truncated(field));
        }
        let (head, tail) = self.buf.split_at(n);
        self.buf = tail;
        Ok(head)
    }

    fn array<const N: usize>(&mut self, field: &'static str) -> Result<&'a [u8; N], EntryError> {
        // `take` returned exactly N bytes, so the conversion cannot fail.
        self.take(N, field)?
            .try_into()
            .map_err(|_| EntryError::Truncated(field))
    }

    fn u64(&mut self, field: &'static str) -> Result<u64, EntryError> {
        Ok(u64::from_be_bytes(*self.array::<8>(field)?))
    }

    fn u32(&mut self, field: &'static str) -> Result<u32, EntryError> {
        Ok(u32::from_be_bytes(*self.array::<4>(field)?))
    }

    fn u16(&mut self, field: &'static str) -> Result<u16, EntryError> {
        Ok(u16::from_be_bytes(*self.array::<2>(field)?))
    }

    fn var(&mut self, field: &'static str) -> Result<&'a [u8], EntryError> {
        let len = self.u32(field)? as usize;
        self.take(len, field)
    }
}

impl<'a> EntryRef<'a> {
    /// Strictly parses `bytes`: version 1, every field present, no trailing bytes, at most
    /// [`MAX_ENTRY_LEN`] bytes, canonical metadata. Does not allocate.
    pub fn parse(bytes: &'a [u8]) -> Result<Self, EntryError> {
        if bytes.len() > MAX_ENTRY_LEN {
            return Err(EntryError::TooLong { len: bytes.len() });
        }
        let mut r = Reader { buf: bytes };
        let version = r.array::<1>("version")?[0];
        if version != VERSION {
            return Err(EntryError::Version(version));
        }
        let entry = EntryRef {
            seq: r.u64("seq")?,
            prev_chain: r.array("prev_chain")?,
            ts_unix_ms: r.u64("ts_unix_ms")?,
            event_type: r.u16("event_type")?,
            actor_id: r.array("actor_id")?,
            subject_id: r.array("subject_id")?,
            tenant_id: r.array("tenant_id")?,
            object_ref: r.var("object_ref")?,
            pii_ct: r.var("pii_ct")?,
            meta: r.var("meta")?,
        };
        if !r.buf.is_empty() {
            return Err(EntryError::TrailingBytes(r.buf.len()));
        }
        validate_meta(entry.meta)?;
        Ok(entry)
    }

    /// Copies the view into an owned [`Entry`].
    pub fn to_entry(&self) -> Entry {
        Entry {
            seq: self.seq,
            prev_chain: *self.prev_chain,
            ts_unix_ms: self.ts_unix_ms,
            event_type: self.event_type,
            actor_id: *self.actor_id,
            subject_id: *self.subject_id,
            tenant_id: *self.tenant_id,
            object_ref: self.object_ref.to_vec(),
            pii_ct: self.pii_ct.to_vec(),
            meta: self.meta.to_vec(),
        }
    }
}

impl Entry {
    /// The encoded length, or `TooLong` when it would exceed [`MAX_ENTRY_LEN`].
    pub fn encoded_len(&self) -> Result<usize, EntryError> {
        let len = MIN_ENTRY_LEN
            .saturating_add(self.object_ref.len())
            .saturating_add(self.pii_ct.len())
            .saturating_add(self.meta.len());
        if len > MAX_ENTRY_LEN {
            return Err(EntryError::TooLong { len });
        }
        Ok(len)
    }

    /// Encodes the entry. Fails if it would be longer than [`MAX_ENTRY_LEN`] or if `meta`
    /// is not canonical (an entry the encoder writes must be one the decoder accepts).
    pub fn encode(&self) -> Result<Vec<u8>, EntryError> {
        let len = self.encoded_len()?;
        validate_meta(&self.meta)?;
        let mut out = Vec::with_capacity(len);
        out.push(VERSION);
        out.extend_from_slice(&self.seq.to_be_bytes());
        out.extend_from_slice(&self.prev_chain);
        out.extend_from_slice(&self.ts_unix_ms.to_be_bytes());
        out.extend_from_slice(&self.event_type.to_be_bytes());
        out.extend_from_slice(&self.actor_id);
        out.extend_from_slice(&self.subject_id);
        out.extend_from_slice(&self.tenant_id);
        for field in [&self.object_ref, &self.pii_ct, &self.meta] {
            // Each length is below MAX_ENTRY_LEN, checked above, so it fits a u32.
            out.extend_from_slice(&(field.len() as u32).to_be_bytes());
            out.extend_from_slice(field);
        }
        debug_assert_eq!(out.len(), len);
        Ok(out)
    }

    /// Strictly decodes an entry; see [`EntryRef::parse`].
    pub fn decode(bytes: &[u8]) -> Result<Entry, EntryError> {
        EntryRef::parse(bytes).map(|e| e.to_entry())
    }
}

/// The chain hash `C_i = SHA-256("ward-audit/chain/v1\0" || E_i)`.
///
/// `E_i` embeds `C_{i-1}` as `prev_chain` at a fixed offset, so this is
/// `H(prev || canonical entry)` with domain separation. The chain lets a plain SQL window
/// query check every row's link and catches gaps and reorders cheaply; it does **not**
/// stop someone with write access to the database, who can recompute it (tamper case 1b).
/// Only signed checkpoints held outside the database do.
pub fn chain_hash(entry_bytes: &[u8]) -> Hash {
    let mut h = Sha256::new();
    h.update(CHAIN_DOMAIN);
    h.update(entry_bytes);
    h.finalize().into()
}

fn valid_key(key: &[u8]) -> bool {
    (1..=MAX_META_KEY_LEN).contains(&key.len())
        && key
            .iter()
            .all(|&b| matches!(b, b'a'..=b'z' | b'0'..=b'9' | b'_' | b'.' | b'-'))
}

fn valid_value(value: &str) -> bool {
    !value.chars().any(char::is_control)
}

/// Encodes non-personal metadata canonically:
/// `u16 count`, then per pair in ascending key order
/// `u8 key_len | key | u16 val_len | value`. An empty map encodes as zero bytes.
///
/// Keys are 1..=64 bytes of `[a-z0-9_.-]`; values are UTF-8 without control characters.
/// The restrictions keep the metadata printable and free of anything that could smuggle
/// personal data in a structured way; it never holds personal data (README.md, "What is
/// and isn't proven").
pub fn encode_meta(pairs: &BTreeMap<String, String>) -> Result<Vec<u8>, EntryError> {
    if pairs.is_empty() {
        return Ok(Vec::new());
    }
    let count = u16::try_from(pairs.len()).map_err(|_| EntryError::MetaTooManyPairs)?;
    let mut out = Vec::new();
    out.extend_from_slice(&count.to_be_bytes());
    // BTreeMap<String, _> iterates in byte order of the keys, which is the canonical order.
    for (key, value) in pairs {
        if !valid_key(key.as_bytes()) {
            return Err(EntryError::MetaKey);
        }
        if !valid_value(value) {
            return Err(EntryError::MetaValue);
        }
        let vlen = u16::try_from(value.len()).map_err(|_| EntryError::MetaValueTooLong)?;
        out.push(key.len() as u8);
        out.extend_from_slice(key.as_bytes());
        out.extend_from_slice(&vlen.to_be_bytes());
        out.extend_from_slice(value.as_bytes());
    }
    Ok(out)
}

/// Walks canonical metadata, calling `pair` for each (key, value); no allocation.
fn walk_meta<'a>(
    bytes: &'a [u8],
    mut pair: impl FnMut(&'a str, &'a str),
) -> Result<(), EntryError> {
    if bytes.is_empty() {
        return Ok(());
    }
    let mut r = Reader { buf: bytes };
    let count = r.u16("meta").map_err(|_| EntryError::MetaTruncated)?;
    if count == 0 {
        return Err(EntryError::MetaEmptyCount);
    }
    let mut prev: Option<&[u8]> = None;
    for _ in 0..count {
        let klen = r
            .array::<1>("meta")
            .map_err(|_| EntryError::MetaTruncated)?[0] as usize;
        let key = r
            .take(klen, "meta")
            .map_err(|_| EntryError::MetaTruncated)?;
        if !valid_key(key) {
            return Err(EntryError::MetaKey);
        }
        if prev.is_some_and(|p| p >= key) {
            return Err(EntryError::MetaOrder);
        }
        prev = Some(key);
        let vlen = r.u16("meta").map_err(|_| EntryError::MetaTruncated)? as usize;
        let value = r
            .take(vlen, "meta")
            .map_err(|_| EntryError::MetaTruncated)?;
        let value = std::str::from_utf8(value).map_err(|_| EntryError::MetaValue)?;
        if !valid_value(value) {
            return Err(EntryError::MetaValue);
        }
        // Keys are ASCII, checked above.
        let key = std::str::from_utf8(key).map_err(|_| EntryError::MetaKey)?;
        pair(key, value);
    }
    if !r.buf.is_empty() {
        return Err(EntryError::MetaTrailingBytes(r.buf.len()));
    }
    Ok(())
}

/// Checks that `bytes` is canonical metadata without allocating.
pub fn validate_meta(bytes: &[u8]) -> Result<(), EntryError> {
    walk_meta(bytes, |_, _| {})
}

/// Decodes canonical metadata; rejects anything [`encode_meta`] would not produce.
pub fn decode_meta(bytes: &[u8]) -> Result<BTreeMap<String, String>, EntryError> {
    let mut map = BTreeMap::new();
    walk_meta(bytes, |k, v| {
        map.insert(k.to_owned(), v.to_owned());
    })?;
    Ok(map)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Entry {
        let mut meta = BTreeMap::new();
        meta.insert("channel.type".to_owned(), "messaging".to_owned());
        meta.insert("app".to_owned(), "ward".to_owned());
        Entry {
            seq: 7,
            prev_chain: [0xab; 32],
            ts_unix_ms: 1_700_000_000_000,
            event_type: 2,
            actor_id: [1; 16],
            subject_id: [2; 16],
            tenant_id: [3; 16],
            object_ref: b"room/1".to_vec(),
            pii_ct: vec![9; 40],
            meta: encode_meta(&meta).unwrap(),
        }
    }

    #[test]
    fn encode_then_decode_round_trips_and_offsets_match_the_spec() {
        let e = sample();
        let b = e.encode().unwrap();
        assert_eq!(b[0], 1);
        assert_eq!(&b[1..9], &7u64.to_be_bytes());
        assert_eq!(&b[9..41], &[0xab; 32]);
        assert_eq!(&b[49..51], &2u16.to_be_bytes());
        assert_eq!(&b[83..99], &[3; 16]);
        assert_eq!(&b[99..103], &6u32.to_be_bytes());
        assert_eq!(Entry::decode(&b).unwrap(), e);
    }

    #[test]
    fn decode_rejects_trailing_bytes_truncation_and_other_versions() {
        let b = sample().encode().unwrap();
        let mut long = b.clone();
        long.push(0);
        assert_eq!(Entry::decode(&long), Err(EntryError::TrailingBytes(1)));
        assert_eq!(
            Entry::decode(&b[..b.len() - 1]),
            Err(EntryError::Truncated("meta"))
        );
        assert_eq!(Entry::decode(&[]), Err(EntryError::Truncated("version")));
        let mut v2 = b;
        v2[0] = 2;
        assert_eq!(Entry::decode(&v2), Err(EntryError::Version(2)));
    }

    #[test]
    fn oversized_entries_are_refused_both_ways() {
        let mut e = sample();
        e.pii_ct = vec![0; MAX_ENTRY_LEN];
        assert!(matches!(e.encode(), Err(EntryError::TooLong { .. })));
        assert!(matches!(
            Entry::decode(&vec![1; MAX_ENTRY_LEN + 1]),
            Err(EntryError::TooLong { .. })
        ));
    }

    #[test]
    fn meta_is_canonical() {
        assert_eq!(encode_meta(&BTreeMap::new()).unwrap(), Vec::<u8>::new());
        assert_eq!(decode_meta(&[]).unwrap(), BTreeMap::new());
        assert_eq!(decode_meta(&[0, 0]), Err(EntryError::MetaEmptyCount));
        let m = sample().meta;
        let map = decode_meta(&m).unwrap();
        assert_eq!(encode_meta(&map).unwrap(), m);
        // Swap the two pairs: same content, non-canonical order.
        let unsorted = [
            &[0u8, 2][..],
            &[12],
            b"channel.type",
            &[0, 9],
            b"messaging",
            &[3],
            b"app",
            &[0, 4],
            b"ward",
        ]
        .concat();
        assert_eq!(decode_meta(&unsorted), Err(EntryError::MetaOrder));
        let dup = [&[0u8, 2][..], &[1], b"a", &[0, 0], &[1], b"a", &[0, 0]].concat();
        assert_eq!(decode_meta(&dup), Err(EntryError::MetaOrder));
        let upper = [&[0u8, 1][..], &[1], b"A", &[0, 0]].concat();
        assert_eq!(decode_meta(&upper), Err(EntryError::MetaKey));
        let ctl = [&[0u8, 1][..], &[1], b"a", &[0, 1], b"\n"].concat();
        assert_eq!(decode_meta(&ctl), Err(EntryError::MetaValue));
        let mut trailing = m.clone();
        trailing.push(0);
        assert_eq!(
            decode_meta(&trailing),
            Err(EntryError::MetaTrailingBytes(1))
        );
        let mut bad = BTreeMap::new();
        bad.insert("Name".to_owned(), "x".to_owned());
        assert_eq!(encode_meta(&bad), Err(EntryError::MetaKey));
    }

    #[test]
    fn an_entry_with_non_canonical_meta_is_not_an_entry() {
        let mut e = sample();
        e.meta = vec![0, 0];
        assert_eq!(e.encode(), Err(EntryError::MetaEmptyCount));
    }

    #[test]
    fn chain_hash_is_domain_separated_sha256() {
        let b = sample().encode().unwrap();
        let mut h = Sha256::new();
        h.update(b"ward-audit/chain/v1\0");
        h.update(&b);
        assert_eq!(chain_hash(&b), <Hash>::from(h.finalize()));
        assert_ne!(chain_hash(&b), crate::merkle::leaf_hash(&b));
    }
}
