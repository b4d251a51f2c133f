//! A small, strict reader for the SAML messages Ward receives, used before and beside
//! samael: to refuse what no honest IdP sends (comments, processing instructions, DTDs) and
//! to see the message's shape (how many assertions, where, which algorithms) before any
//! signature is checked, and to read a LogoutRequest whose signature has been checked.
//!
//! It is not a general XML parser and never decides that a message is authentic; it only
//! rejects more. Names are compared by local name (any prefix), which over-counts rather
//! than under-counts.

/// Bounds that keep a hostile message cheap to refuse.
const MAX_ELEMENTS: usize = 20_000;
const MAX_DEPTH: usize = 64;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum XmlError {
    /// Not well-formed (or beyond the bounds above).
    Malformed,
    /// A comment: exclusive canonicalisation drops comments, so a comment inside signed
    /// text is invisible to the signature but can split the text a parser reads (the
    /// 2018 NameID truncation attacks). Refused outright.
    Comment,
    /// A DOCTYPE, entity declaration or processing instruction: never part of a SAML
    /// message (SAML Core §1.3, Bindings §3.5.4 send bare documents), an XXE and
    /// entity-expansion vector.
    Declaration,
}

/// One element: its local name, its parent's local name, depth (root = 0), attributes
/// (namespace declarations left out) and its own text (entities decoded, CDATA included).
#[derive(Debug, Clone)]
pub struct Element {
    pub depth: usize,
    pub local: String,
    pub parent: Option<String>,
    pub attrs: Vec<(String, String)>,
    pub text: String,
}

impl Element {
    /// An attribute by local name.
    pub fn attr(&self, local: &str) -> Option<&str> {
        self.attrs
            .iter()
            .find(|(k, _)| local_name(k) == local)
            .map(|(_, v)| v.as_str())
    }
}

fn local_name(qname: &str) -> &str {
    qname.rsplit_once(':').map_or(qname, |(_, l)| l)
}

/// Reads every element of `xml` in document order.
pub fn read(xml: &str) -> Result<Vec<Element>, XmlError> {
    let b = xml.as_bytes();
    let mut out: Vec<Element> = Vec::new();
    // Open elements: (qualified name, index in `out`).
    let mut open: Vec<(String, usize)> = Vec::new();
    let mut root_closed = false;
    let mut i = 0;
    while i < b.len() {
        if b[i] != b'<' {
            let end = find(b, i, b"<").unwrap_or(b.len());
            let text = &xml[i..end];
            match open.last() {
                Some((_, idx)) => out[*idx].text.push_str(&unescape(text)?),
                None if text.trim().is_empty() => {}
                None => return Err(XmlError::Malformed),
            }
            i = end;
            continue;
        }
        let rest = &b[i..];
        if rest.starts_with(b"<!--") {
            return Err(XmlError::Comment);
        }
        if rest.starts_with(b"<![CDATA[") {
            let end = find(b, i + 9, b"]]>").ok_or(XmlError::Malformed)?;
            let (_, idx) = open.last().ok_or(XmlError::Malformed)?;
            out[*idx].text.push_str(&xml[i + 9..end]);
            i = end + 3;
            continue;
        }
        if rest.starts_with(b"<!") {
            return Err(XmlError::Declaration);
        }
        if rest.starts_with(b"<?") {
            // Only the XML declaration, only before the root.
            if !out.is_empty() || !rest.starts_with(b"<?xml") {
                return Err(XmlError::Declaration);
            }
            i = find(b, i, b"?>").ok_or(XmlError::Malformed)? + 2;
            continue;
        }
        if rest.starts_with(b"</") {
            let end = find(b, i, b">").ok_or(XmlError::Malformed)?;
            let name = xml[i + 2..end].trim();
            let (open_name, _) = open.pop().ok_or(XmlError::Malformed)?;
            if open_name != name {
                return Err(XmlError::Malformed);
            }
            root_closed = open.is_empty();
            i = end + 1;
            continue;
        }
        if root_closed {
            return Err(XmlError::Malformed);
        }
        let (tag, next) = start_tag(xml, i)?;
        if out.len() >= MAX_ELEMENTS || open.len() >= MAX_DEPTH {
            return Err(XmlError::Malformed);
        }
        let parent = open.last().map(|(q, _)| local_name(q).to_string());
        out.push(Element {
            depth: open.len(),
            local: local_name(&tag.name).to_string(),
            parent,
            attrs: tag.attrs,
            text: String::new(),
        });
        if tag.empty {
            root_closed = open.is_empty();
        } else {
            open.push((tag.name, out.len() - 1));
        }
        i = next;
    }
    if out.is_empty() || !open.is_empty() {
        return Err(XmlError::Malformed);
    }
    Ok(out)
}

struct StartTag {
    name: String,
    attrs: Vec<(String, String)>,
    empty: bool,
}

/// Parses `<name a="v" …>` or `<name …/>` at `i`; returns the tag and the index after it.
fn start_tag(xml: &str, i: usize) -> Result<(StartTag, usize), XmlError> {
    let b = xml.as_bytes();
    let mut j = i + 1;
    let name_end = scan_name(b, j);
    if name_end == j {
        return Err(XmlError::Malformed);
    }
    let name = xml[j..name_end].to_string();
    j = name_end;
    let mut attrs = Vec::new();
    loop {
        while j < b.len() && b[j].is_ascii_whitespace() {
            j += 1;
        }
        match b.get(j) {
            Some(b'>') => {
                return Ok((
                    StartTag {
                        name,
                        attrs,
                        empty: false,
                    },
                    j + 1,
                ));
            }
            Some(b'/') if b.get(j + 1) == Some(&b'>') => {
                return Ok((
                    StartTag {
                        name,
                        attrs,
                        empty: true,
                    },
                    j + 2,
                ));
            }
            Some(_) => {}
            None => return Err(XmlError::Malformed),
        }
        let key_end = scan_name(b, j);
        if key_end == j {
            return Err(XmlError::Malformed);
        }
        let key = &xml[j..key_end];
        j = key_end;
        while j < b.len() && b[j].is_ascii_whitespace() {
            j += 1;
        }
        if b.get(j) != Some(&b'=') {
            return Err(XmlError::Malformed);
        }
        j += 1;
        while j < b.len() && b[j].is_ascii_whitespace() {
            j += 1;
        }
        let quote = *b.get(j).ok_or(XmlError::Malformed)?;
        if quote != b'"' && quote != b'\'' {
            return Err(XmlError::Malformed);
        }
        let value_end = find(b, j + 1, &[quote]).ok_or(XmlError::Malformed)?;
        let raw = &xml[j + 1..value_end];
        if raw.contains('<') {
            return Err(XmlError::Malformed);
        }
        if key != "xmlns" && !key.starts_with("xmlns:") {
            if attrs.iter().any(|(k, _)| k == key) {
                return Err(XmlError::Malformed);
            }
            attrs.push((key.to_string(), unescape(raw)?));
        }
        j = value_end + 1;
    }
}

fn scan_name(b: &[u8], mut j: usize) -> usize {
    while j < b.len() && !b[j].is_ascii_whitespace() && !matches!(b[j], b'/' | b'>' | b'=' | b'<') {
        j += 1;
    }
    j
}

fn find(b: &[u8], from: usize, needle: &[u8]) -> Option<usize> {
    b.get(from..)?
        .windows(needle.len())
        .position(|w| w == needle)
        .map(|p| p + from)
}

/// Decodes the five predefined entities and character references; anything else (a named
/// entity needs a DTD) is malformed.
fn unescape(s: &str) -> Result<String, XmlError> {
    if !s.contains('&') {
        return Ok(s.to_string());
    }
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(amp) = rest.find('&') {
        out.push_str(&rest[..amp]);
        let after = &rest[amp + 1..];
        let semi = after.find(';').ok_or(XmlError::Malformed)?;
        let entity = &after[..semi];
        let c = match entity {
            "lt" => '<',
            "gt" => '>',
            "amp" => '&',
            "quot" => '"',
            "apos" => '\'',
            _ => {
                let code = if let Some(hex) = entity.strip_prefix("#x") {
                    u32::from_str_radix(hex, 16)
                } else if let Some(dec) = entity.strip_prefix('#') {
                    dec.parse()
                } else {
                    return Err(XmlError::Malformed);
                };
                code.ok()
                    .and_then(char::from_u32)
                    .ok_or(XmlError::Malformed)?
            }
        };
        out.push(c);
        rest = &after[semi + 1..];
    }
    out.push_str(rest);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_elements_attributes_and_text() {
        let els = read(
            r#"<?xml version="1.0"?><p:R xmlns:p="urn:x" ID="a&amp;b"><p:N F='x'>al&lt;ice<![CDATA[&]]></p:N><E/></p:R>"#,
        )
        .unwrap();
        assert_eq!(els.len(), 3);
        assert_eq!(els[0].local, "R");
        assert_eq!(els[0].attr("ID"), Some("a&b"));
        assert_eq!(els[0].attrs.len(), 1, "namespace declarations are left out");
        assert_eq!((els[1].depth, els[1].text.as_str()), (1, "al<ice&"));
        assert_eq!(els[2].parent.as_deref(), Some("R"));
    }

    #[test]
    fn refuses_comments_declarations_and_bad_nesting() {
        assert_eq!(read("<a>x<!---->y</a>").unwrap_err(), XmlError::Comment);
        assert_eq!(read("<!DOCTYPE a><a/>").unwrap_err(), XmlError::Declaration);
        assert_eq!(read("<a><?pi x?></a>").unwrap_err(), XmlError::Declaration);
        assert_eq!(read("<a><b></a></b>").unwrap_err(), XmlError::Malformed);
        assert_eq!(read("<a/><b/>").unwrap_err(), XmlError::Malformed);
        assert_eq!(read("<a>&ext;</a>").unwrap_err(), XmlError::Malformed);
        assert_eq!(read("<a x='1' x='2'/>").unwrap_err(), XmlError::Malformed);
        assert_eq!(read("<a>").unwrap_err(), XmlError::Malformed);
    }
}
