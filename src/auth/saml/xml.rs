//! A small, strict reader for the SAML messages Ward receives, used before and beside
//! samael: to refuse what no honest IdP sends (comments, processing instructions, DTDs) and
//! to see the message's shape (how many assertions, where, which algorithms) before any
//! signature is checked, and to read a LogoutRequest whose signature has been checked.
//!
//! It is not a general XML parser and never decides that a message is authentic; it only
//! rejects more. Names are compared by local name (any prefix), which over-counts rather
//! than under-counts.

/// Bounds that keep a hostile message cheap to refuse, and cheap for xmlsec to process once
/// it passes: its canonicalisation does work per element for every namespace in scope and
/// every ancestor (measured: 20,000 elements 60 deep with 60 namespaces in scope held
/// xmlsec for 3.5 s). A SAML response is a dozen levels deep with a dozen namespaces
/// (Okta redeclares two on every AttributeValue: those are not in scope of each other).
const MAX_ELEMENTS: usize = 5_000;
const MAX_DEPTH: usize = 24;
/// Namespace declarations in scope at any element (redeclarations counted).
const MAX_NAMESPACES_IN_SCOPE: usize = 32;

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
    /// Not UTF-8: a byte order mark other than UTF-8's, bytes that are not UTF-8, control
    /// characters, or an XML declaration naming another encoding. libxml2 honours the
    /// declared encoding (UTF-7, UTF-16, EBCDIC…) while this reader reads UTF-8, so the two
    /// would see different documents: markup hidden from this reader would reach xmlsec.
    Encoding,
}

/// The UTF-8 byte order mark.
const UTF8_BOM: &[u8] = b"\xEF\xBB\xBF";

/// A received message as text, refused unless it is UTF-8 and nothing but UTF-8: without a
/// byte order mark other than UTF-8's (dropped), starting with `<` or white space (so no
/// UTF-16, UTF-32, UTF-7 or EBCDIC signature), valid UTF-8, without control characters.
/// The declared encoding is checked by [`read`].
pub fn text(bytes: Vec<u8>) -> Result<String, XmlError> {
    let mut bytes = bytes;
    if bytes.starts_with(UTF8_BOM) {
        bytes.drain(..UTF8_BOM.len());
    }
    if !matches!(bytes.first(), Some(b'<' | b' ' | b'\t' | b'\n' | b'\r')) {
        return Err(XmlError::Encoding);
    }
    let text = String::from_utf8(bytes).map_err(|_| XmlError::Encoding)?;
    check_chars(&text)?;
    Ok(text)
}

/// Characters XML 1.0 does not allow (§2.2): C0 controls other than tab, LF and CR (a NUL
/// is also the mark of UTF-16 and UTF-32 text read as UTF-8), U+FFFE and U+FFFF.
fn check_chars(xml: &str) -> Result<(), XmlError> {
    if xml.chars().any(|c| {
        (c < ' ' && !matches!(c, '\t' | '\n' | '\r')) || matches!(c, '\u{FFFE}' | '\u{FFFF}')
    }) {
        return Err(XmlError::Encoding);
    }
    Ok(())
}

fn is_space(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\n' | b'\r')
}

/// The XML declaration at the start of `xml`, if any (XML 1.0 §2.8):
/// `<?xml` S `version` Eq "1.0" (S `encoding` Eq "UTF-8")? (S `standalone` Eq "yes"|"no")? S? `?>`,
/// either quote, the encoding name in any case. Anything else is refused: another
/// encoding (`Encoding`), another version or pseudo-attribute (`Declaration`). Returns the
/// index after the declaration (0 without one).
fn declaration(xml: &str) -> Result<usize, XmlError> {
    let b = xml.as_bytes();
    if !b.starts_with(b"<?xml") || !b.get(5).copied().is_some_and(is_space) {
        // `<?xml-stylesheet …?>` and the like are processing instructions (refused by
        // `read`); a declaration after leading white space is not a declaration either.
        return Ok(0);
    }
    let end = find(b, 5, b"?>").ok_or(XmlError::Malformed)?;
    let inner = &b[5..end];
    let mut j = 0;
    let mut seen: Vec<&[u8]> = Vec::new();
    loop {
        let spaces = inner[j..].iter().take_while(|c| is_space(**c)).count();
        j += spaces;
        if j == inner.len() {
            break;
        }
        if spaces == 0 {
            return Err(XmlError::Declaration);
        }
        let name_end = j + inner[j..]
            .iter()
            .take_while(|c| c.is_ascii_alphabetic())
            .count();
        let name = &inner[j..name_end];
        j = name_end
            + inner[name_end..]
                .iter()
                .take_while(|c| is_space(**c))
                .count();
        if inner.get(j) != Some(&b'=') {
            return Err(XmlError::Declaration);
        }
        j += 1;
        j += inner[j..].iter().take_while(|c| is_space(**c)).count();
        let quote = *inner.get(j).ok_or(XmlError::Declaration)?;
        if quote != b'"' && quote != b'\'' {
            return Err(XmlError::Declaration);
        }
        let close = find(inner, j + 1, &[quote]).ok_or(XmlError::Declaration)?;
        let value = &inner[j + 1..close];
        j = close + 1;
        let expected: &[&[u8]] = match seen.len() {
            0 => &[b"version"],
            1 => &[b"encoding", b"standalone"],
            2 if seen[1] == b"encoding" => &[b"standalone"],
            _ => &[],
        };
        if !expected.contains(&name) {
            // An encoding given out of order is still an encoding Ward does not read.
            return Err(if name.eq_ignore_ascii_case(b"encoding") {
                XmlError::Encoding
            } else {
                XmlError::Declaration
            });
        }
        let ok = match name {
            b"version" => value == b"1.0",
            b"standalone" => value == b"yes" || value == b"no",
            _ => {
                if !value.eq_ignore_ascii_case(b"UTF-8") {
                    return Err(XmlError::Encoding);
                }
                true
            }
        };
        if !ok {
            return Err(XmlError::Declaration);
        }
        seen.push(name);
    }
    if seen.is_empty() {
        return Err(XmlError::Declaration);
    }
    Ok(end + 2)
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

/// Reads every element of `xml` in document order. The text must be what [`text`] returns
/// (it is checked again here: any declared encoding but UTF-8 is refused).
pub fn read(xml: &str) -> Result<Vec<Element>, XmlError> {
    check_chars(xml)?;
    let b = xml.as_bytes();
    let mut out: Vec<Element> = Vec::new();
    // Open elements: (qualified name, index in `out`, namespace declarations in scope).
    let mut open: Vec<(String, usize, usize)> = Vec::new();
    // Namespace prefixes declared by the open elements, innermost last.
    let mut prefixes: Vec<String> = Vec::new();
    let mut prefixes_at: Vec<usize> = Vec::new();
    let mut root_closed = false;
    let mut i = declaration(xml)?;
    while i < b.len() {
        if b[i] != b'<' {
            let end = find(b, i, b"<").unwrap_or(b.len());
            let text = &xml[i..end];
            if text.contains("]]>") {
                return Err(XmlError::Malformed);
            }
            match open.last() {
                Some((_, idx, _)) => out[*idx].text.push_str(&unescape(text)?),
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
            let (_, idx, _) = open.last().ok_or(XmlError::Malformed)?;
            out[*idx].text.push_str(&xml[i + 9..end]);
            i = end + 3;
            continue;
        }
        if rest.starts_with(b"<!") {
            return Err(XmlError::Declaration);
        }
        if rest.starts_with(b"<?") {
            // The XML declaration was read above; anything else is a processing
            // instruction (or a declaration out of place).
            return Err(XmlError::Declaration);
        }
        if rest.starts_with(b"</") {
            let end = find(b, i, b">").ok_or(XmlError::Malformed)?;
            let name = xml[i + 2..end].trim();
            let (open_name, _, _) = open.pop().ok_or(XmlError::Malformed)?;
            if open_name != name {
                return Err(XmlError::Malformed);
            }
            prefixes.truncate(prefixes_at.pop().unwrap_or(0));
            root_closed = open.is_empty();
            i = end + 1;
            continue;
        }
        if root_closed {
            return Err(XmlError::Malformed);
        }
        let (tag, next) = start_tag(xml, i)?;
        let in_scope = open.last().map_or(0, |(_, _, n)| *n) + tag.namespace_decls;
        if out.len() >= MAX_ELEMENTS
            || open.len() >= MAX_DEPTH
            || in_scope > MAX_NAMESPACES_IN_SCOPE
        {
            return Err(XmlError::Malformed);
        }
        // Every prefix used is declared (libxml2 would report an undeclared one, with the
        // line of the message, on standard error).
        let before = prefixes.len();
        prefixes.extend(tag.prefixes.iter().cloned());
        let declared = |q: &str| {
            q.split_once(':')
                .is_none_or(|(p, _)| p == "xml" || prefixes.iter().any(|d| d == p))
        };
        if !declared(&tag.name) || !tag.attrs.iter().all(|(k, _)| declared(k)) {
            return Err(XmlError::Malformed);
        }
        let parent = open.last().map(|(q, _, _)| local_name(q).to_string());
        out.push(Element {
            depth: open.len(),
            local: local_name(&tag.name).to_string(),
            parent,
            attrs: tag.attrs,
            text: String::new(),
        });
        if tag.empty {
            root_closed = open.is_empty();
            prefixes.truncate(before);
        } else {
            open.push((tag.name, out.len() - 1, in_scope));
            prefixes_at.push(before);
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
    namespace_decls: usize,
    /// The prefixes this tag declares.
    prefixes: Vec<String>,
    empty: bool,
}

/// A qualified name as SAML writes them: ASCII NCNames, at most one prefix. (XML allows
/// more; what libxml2 would refuse or warn about on standard error must not get past here.)
fn qname_ok(q: &str) -> bool {
    let ncname = |n: &str| {
        n.as_bytes()
            .first()
            .is_some_and(|c| c.is_ascii_alphabetic() || *c == b'_')
            && n.bytes()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'_' | b'-' | b'.'))
    };
    match q.split_once(':') {
        Some((p, l)) => ncname(p) && ncname(l),
        None => ncname(q),
    }
}

/// A namespace name libxml2 takes without a warning: an absolute URI (a scheme, then
/// characters URIs allow).
fn namespace_ok(uri: &str) -> bool {
    uri.split_once(':').is_some_and(|(scheme, rest)| {
        scheme
            .as_bytes()
            .first()
            .is_some_and(u8::is_ascii_alphabetic)
            && scheme
                .bytes()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'+' | b'-' | b'.'))
            && !rest.is_empty()
            && rest.bytes().all(|c| {
                c.is_ascii_graphic()
                    && !matches!(
                        c,
                        b'<' | b'>' | b'"' | b'{' | b'}' | b'|' | b'\\' | b'^' | b'`'
                    )
            })
    })
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
    if !qname_ok(&name) {
        return Err(XmlError::Malformed);
    }
    j = name_end;
    let mut attrs: Vec<(String, String)> = Vec::new();
    let mut namespace_decls = 0;
    let mut prefixes: Vec<String> = Vec::new();
    let mut default_declared = false;
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
                        namespace_decls,
                        prefixes,
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
                        namespace_decls,
                        prefixes,
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
        if !qname_ok(key) {
            return Err(XmlError::Malformed);
        }
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
        if key == "xmlns" || key.starts_with("xmlns:") {
            namespace_decls += 1;
            let uri = unescape(raw)?;
            match key.strip_prefix("xmlns:") {
                // `xmlns=""` undeclares the default namespace; a prefix cannot be undeclared
                // (Namespaces in XML 1.0 §3), nor `xml`/`xmlns` redeclared.
                None => {
                    if default_declared || !(uri.is_empty() || namespace_ok(&uri)) {
                        return Err(XmlError::Malformed);
                    }
                    default_declared = true;
                }
                Some(prefix) => {
                    if prefixes.iter().any(|p| p == prefix)
                        || matches!(prefix, "xml" | "xmlns")
                        || !namespace_ok(&uri)
                    {
                        return Err(XmlError::Malformed);
                    }
                    prefixes.push(prefix.to_string());
                }
            }
        } else {
            // Two attributes with one local name (`Algorithm` and `x:Algorithm`) would let
            // this reader, which goes by local name, check another one than xmlsec uses.
            if attrs.iter().any(|(k, _)| local_name(k) == local_name(key)) {
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
                    .filter(|c| check_chars(c.encode_utf8(&mut [0; 4])).is_ok())
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
mod tests;
