//! Raw DEFLATE (RFC 1951) for the HTTP-Redirect binding, which carries SAML messages
//! deflated without a zlib header (SAML Bindings §3.4.4.1), through `flate2` (zlib-rs).
//! The input is unauthenticated: [`inflate`] writes into a buffer of `limit + 1` bytes and
//! never grows it, so a deflate bomb costs at most that much memory and is refused.

use flate2::{Compression, Decompress, FlushDecompress, Status};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InflateError;

/// Inflates one complete raw DEFLATE stream of at most `limit` bytes of output. A stream
/// that is malformed, truncated or longer than `limit` is refused.
pub fn inflate(data: &[u8], limit: usize) -> Result<Vec<u8>, InflateError> {
    // One byte of room over the limit tells an oversized stream from one exactly at it.
    let mut out = Vec::with_capacity(limit.saturating_add(1));
    let status = Decompress::new(false)
        .decompress_vec(data, &mut out, FlushDecompress::Finish)
        .map_err(|_| InflateError)?;
    if status != Status::StreamEnd || out.len() > limit {
        return Err(InflateError);
    }
    Ok(out)
}

/// Deflates `data` as one raw DEFLATE stream.
pub fn deflate(data: &[u8]) -> Vec<u8> {
    use std::io::Write;
    let mut encoder = flate2::write::DeflateEncoder::new(Vec::new(), Compression::default());
    // Writing into a Vec cannot fail.
    let _ = encoder.write_all(data);
    encoder.finish().unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_up_to_the_limit_and_no_further() {
        let data: Vec<u8> = (0..200_000u32).map(|i| (i % 251) as u8).collect();
        let packed = deflate(&data);
        assert_eq!(inflate(&packed, data.len()).unwrap(), data);
        assert_eq!(inflate(&packed, data.len() - 1), Err(InflateError));
        assert_eq!(inflate(&deflate(b""), 0).unwrap(), b"");
    }

    #[test]
    fn inflates_stored_and_fixed_blocks() {
        // A stored block holding "hi".
        assert_eq!(
            inflate(&[0x01, 0x02, 0x00, 0xfd, 0xff, b'h', b'i'], 10).unwrap(),
            b"hi"
        );
        // "aaaaaaaaaa" with fixed codes (zlib level 9, raw), using a back-reference.
        assert_eq!(
            inflate(&[0x4b, 0x4c, 0x84, 0x01, 0x00], 100).unwrap(),
            b"aaaaaaaaaa"
        );
        assert_eq!(
            inflate(&[0x4b, 0x4c, 0x84, 0x01, 0x00], 5),
            Err(InflateError)
        );
    }

    #[test]
    fn refuses_malformed_truncated_and_bombs() {
        // A reserved block type.
        assert_eq!(inflate(&[0x07], 5), Err(InflateError));
        // A stream cut short (no final block end).
        let packed = deflate(b"<samlp:LogoutRequest/>");
        assert_eq!(
            inflate(&packed[..packed.len() - 2], 1024),
            Err(InflateError)
        );
        // 64 MiB of zeros deflate to ~64 KiB; a 512 KiB limit refuses them without
        // allocating more than the limit.
        let bomb = deflate(&vec![0u8; 64 << 20]);
        assert!(bomb.len() < 128 * 1024);
        assert_eq!(inflate(&bomb, 512 * 1024), Err(InflateError));
        assert_eq!(inflate(&[], 10), Err(InflateError));
    }
}
