//! What an uploaded file really is (from its first bytes, never the client's word), and
//! image metadata stripping: EXIF/XMP/IPTC (GPS positions, camera serials, names) leave JPEG
//! (APP1, APP13 segments, comments), PNG (`eXIf`, `tEXt`, `iTXt`, `zTXt`, `tIME` chunks) and
//! WebP (`EXIF`, `XMP ` chunks) before anything is stored. The parsers are small and
//! bounds-checked: a truncated or lying length is [`Malformed`], never a panic.

/// The image types `…/image` accepts.
pub const IMAGE_TYPES: &[&str] = &["image/jpeg", "image/png", "image/gif", "image/webp"];

/// The MIME type of `bytes`, from magic numbers. Text that is valid UTF-8 without control
/// characters is `text/plain` (never `text/html`: nothing served is rendered as a page).
pub fn sniff(bytes: &[u8]) -> &'static str {
    let starts = |m: &[u8]| bytes.starts_with(m);
    if starts(&[0xFF, 0xD8, 0xFF]) {
        "image/jpeg"
    } else if starts(b"\x89PNG\r\n\x1a\n") {
        "image/png"
    } else if starts(b"GIF87a") || starts(b"GIF89a") {
        "image/gif"
    } else if bytes.len() >= 12 && starts(b"RIFF") && &bytes[8..12] == b"WEBP" {
        "image/webp"
    } else if bytes.len() >= 12 && starts(b"RIFF") && &bytes[8..12] == b"WAVE" {
        "audio/wav"
    } else if starts(b"%PDF-") {
        "application/pdf"
    } else if starts(b"PK\x03\x04") {
        "application/zip"
    } else if bytes.len() >= 12 && &bytes[4..8] == b"ftyp" {
        if bytes[8..12].starts_with(b"M4A") {
            "audio/mp4"
        } else if &bytes[8..12] == b"qt  " {
            "video/quicktime"
        } else {
            "video/mp4"
        }
    } else if starts(b"ID3") || starts(&[0xFF, 0xFB]) {
        "audio/mpeg"
    } else if starts(b"OggS") {
        "audio/ogg"
    } else if starts(&[0x1A, 0x45, 0xDF, 0xA3]) {
        "video/webm"
    } else if starts(b"BM") && bytes.len() > 14 {
        "image/bmp"
    } else if is_text(bytes) {
        "text/plain"
    } else {
        "application/octet-stream"
    }
}

fn is_text(bytes: &[u8]) -> bool {
    // A multi-byte character cut at the sniffing window still counts as text.
    let text = match std::str::from_utf8(bytes) {
        Ok(t) => t,
        Err(e) if e.error_len().is_none() => match std::str::from_utf8(&bytes[..e.valid_up_to()]) {
            Ok(t) => t,
            Err(_) => return false,
        },
        Err(_) => return false,
    };
    text.chars()
        .all(|c| !c.is_control() || matches!(c, '\n' | '\r' | '\t' | '\u{c}'))
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the image is malformed (a truncated segment or a length that does not fit)")]
pub struct Malformed;

/// `bytes` without the personal metadata its format can carry; other types pass as they are.
pub fn strip_metadata(mime: &str, bytes: &[u8]) -> Result<Vec<u8>, Malformed> {
    match mime {
        "image/jpeg" => strip_jpeg(bytes),
        "image/png" => strip_png(bytes),
        "image/webp" => strip_webp(bytes),
        _ => Ok(bytes.to_vec()),
    }
}

/// JPEG (ITU T.81 B.1): markers `FF xx`, each segment but SOI/EOI/RSTn/TEM with a 2-byte
/// big-endian length that counts itself; after SOS the entropy-coded data runs to the end
/// and is copied as it is. APP1 (EXIF, XMP), APP13 (Photoshop/IPTC) and COM are dropped;
/// APP0 (JFIF), APP2 (ICC profile), APP14 (Adobe colour) and the coding segments stay.
fn strip_jpeg(b: &[u8]) -> Result<Vec<u8>, Malformed> {
    if !b.starts_with(&[0xFF, 0xD8]) {
        return Err(Malformed);
    }
    let mut out = Vec::with_capacity(b.len());
    out.extend_from_slice(&b[..2]);
    let mut i = 2;
    loop {
        // Fill bytes (FF FF …) may precede a marker.
        while b.get(i) == Some(&0xFF) && b.get(i + 1) == Some(&0xFF) {
            i += 1;
        }
        if b.get(i) != Some(&0xFF) {
            return Err(Malformed);
        }
        let marker = *b.get(i + 1).ok_or(Malformed)?;
        match marker {
            0xD9 => {
                out.extend_from_slice(&b[i..i + 2]);
                return Ok(out);
            }
            0x01 | 0xD0..=0xD7 => {
                out.extend_from_slice(&b[i..i + 2]);
                i += 2;
                continue;
            }
            _ => {}
        }
        let len_bytes = b.get(i + 2..i + 4).ok_or(Malformed)?;
        let len = usize::from(u16::from_be_bytes([len_bytes[0], len_bytes[1]]));
        if len < 2 {
            return Err(Malformed);
        }
        let end = i.checked_add(2 + len).ok_or(Malformed)?;
        let segment = b.get(i..end).ok_or(Malformed)?;
        let drop = matches!(marker, 0xE1 | 0xED | 0xFE);
        if !drop {
            out.extend_from_slice(segment);
        }
        i = end;
        if marker == 0xDA {
            // Start of scan: the rest is image data (and any trailing segments inside it,
            // which carry no metadata).
            out.extend_from_slice(&b[i..]);
            return Ok(out);
        }
    }
}

/// PNG (ISO/IEC 15948 §5.3): signature, then chunks `length(4, BE) type(4) data crc(4)`
/// up to `IEND`. Text chunks, `eXIf` and `tIME` are dropped; everything else is kept with
/// its CRC.
fn strip_png(b: &[u8]) -> Result<Vec<u8>, Malformed> {
    const SIG: &[u8] = b"\x89PNG\r\n\x1a\n";
    if !b.starts_with(SIG) {
        return Err(Malformed);
    }
    let mut out = Vec::with_capacity(b.len());
    out.extend_from_slice(SIG);
    let mut i = SIG.len();
    loop {
        let head = b.get(i..i + 8).ok_or(Malformed)?;
        let len = u32::from_be_bytes([head[0], head[1], head[2], head[3]]) as usize;
        // §5.3: the length is at most 2^31 - 1.
        if len > 0x7FFF_FFFF {
            return Err(Malformed);
        }
        let kind = &head[4..8];
        let end = i
            .checked_add(12)
            .and_then(|v| v.checked_add(len))
            .ok_or(Malformed)?;
        let chunk = b.get(i..end).ok_or(Malformed)?;
        let drop = matches!(kind, b"eXIf" | b"tEXt" | b"iTXt" | b"zTXt" | b"tIME");
        if !drop {
            out.extend_from_slice(chunk);
        }
        i = end;
        if kind == b"IEND" {
            return Ok(out);
        }
    }
}

/// WebP (RIFF container, RFC 9649): `RIFF size WEBP`, then chunks `fourcc size(4, LE) data`
/// padded to even length. `EXIF` and `XMP ` chunks are dropped, the VP8X flags that announce
/// them cleared, and the RIFF size rewritten.
fn strip_webp(b: &[u8]) -> Result<Vec<u8>, Malformed> {
    if b.len() < 12 || !b.starts_with(b"RIFF") || &b[8..12] != b"WEBP" {
        return Err(Malformed);
    }
    let riff_len = u32::from_le_bytes([b[4], b[5], b[6], b[7]]) as usize;
    let end_of_riff = riff_len.checked_add(8).ok_or(Malformed)?.min(b.len());
    let mut out = Vec::with_capacity(b.len());
    out.extend_from_slice(&b[..12]);
    let mut i = 12;
    while i < end_of_riff {
        let head = b.get(i..i + 8).ok_or(Malformed)?;
        let len = u32::from_le_bytes([head[4], head[5], head[6], head[7]]) as usize;
        let padded = len.checked_add(len & 1).ok_or(Malformed)?;
        let end = i
            .checked_add(8)
            .and_then(|v| v.checked_add(padded))
            .ok_or(Malformed)?;
        // The last chunk's pad byte may be missing.
        let chunk = b
            .get(i..end)
            .or_else(|| b.get(i..end - 1).filter(|_| len & 1 == 1));
        let chunk = chunk.ok_or(Malformed)?;
        match &head[..4] {
            b"EXIF" | b"XMP " => {}
            b"VP8X" => {
                let mut c = chunk.to_vec();
                if let Some(flags) = c.get_mut(8) {
                    // Bit 3: EXIF present; bit 2: XMP present.
                    *flags &= !0b0000_1100;
                }
                out.extend_from_slice(&c);
            }
            _ => out.extend_from_slice(chunk),
        }
        i = end;
    }
    let size = u32::try_from(out.len() - 8).map_err(|_| Malformed)?;
    out[4..8].copy_from_slice(&size.to_le_bytes());
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn jpeg_with_exif() -> Vec<u8> {
        let mut j = vec![0xFF, 0xD8];
        j.extend_from_slice(&[0xFF, 0xE0, 0x00, 0x06, b'J', b'F', b'I', b'F']);
        let exif = b"Exif\0\0GPS-52.5N-13.4E";
        j.extend_from_slice(&[0xFF, 0xE1, 0x00, (exif.len() + 2) as u8]);
        j.extend_from_slice(exif);
        j.extend_from_slice(&[0xFF, 0xDA, 0x00, 0x04, 0x01, 0x02, 0xAB, 0xCD, 0xFF, 0xD9]);
        j
    }

    #[test]
    fn magic_numbers_decide_the_type() {
        assert_eq!(sniff(&jpeg_with_exif()), "image/jpeg");
        assert_eq!(sniff(b"\x89PNG\r\n\x1a\n...."), "image/png");
        assert_eq!(sniff(b"%PDF-1.7"), "application/pdf");
        assert_eq!(sniff(b"<html><script>"), "text/plain");
        assert_eq!(sniff(b"hello\0world"), "application/octet-stream");
        assert_eq!(sniff(b""), "text/plain");
    }

    #[test]
    fn jpeg_exif_is_dropped_and_the_rest_kept() {
        let out = strip_jpeg(&jpeg_with_exif()).unwrap();
        assert!(!out.windows(3).any(|w| w == b"GPS"));
        assert!(out.windows(4).any(|w| w == b"JFIF"));
        assert!(out.ends_with(&[0xAB, 0xCD, 0xFF, 0xD9]));
    }

    #[test]
    fn every_truncation_and_corruption_is_refused_or_stripped_without_panic() {
        let j = jpeg_with_exif();
        for n in 0..j.len() {
            let _ = strip_metadata("image/jpeg", &j[..n]);
            for v in [0x00, 0x01, 0x7F, 0xFF] {
                let mut k = j.clone();
                k[n] = v;
                if let Ok(out) = strip_metadata("image/jpeg", &k) {
                    assert!(out.len() <= k.len() + 2);
                }
            }
        }
    }
}
