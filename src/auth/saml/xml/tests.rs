//! The reader's acceptance and refusals.

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
    assert_eq!(
        read("<a x:Algorithm='1' Algorithm='2'/>").unwrap_err(),
        XmlError::Malformed,
        "two attributes of one local name"
    );
    assert_eq!(read("<a>&#0;</a>").unwrap_err(), XmlError::Malformed);
    // What libxml2 would complain about on standard error, quoting the message.
    for bad in [
        "<p:a/>",
        "<a p:x='1'/>",
        "<a xmlns:p='urn:p'/><p:b/>",
        "<r><a xmlns:p='urn:p'/><p:b/></r>",
        "<a xmlns:p='urn:p' xmlns:p='urn:q'/>",
        "<a xmlns:p=''/>",
        "<a xmlns:p='not absolute'/>",
        "<a xmlns='relative'/>",
        "<a xmlns:xmlns='urn:x'/>",
        "<a$b/>",
        "<a:b:c xmlns:a='urn:a'/>",
        "<1a/>",
        "<a b$='1'/>",
    ] {
        assert_eq!(read(bad).unwrap_err(), XmlError::Malformed, "{bad}");
    }
    assert!(read("<p:a xmlns:p='urn:p' xml:lang='en'><p:b xmlns=''/></p:a>").is_ok());
    assert_eq!(read("<a>]]></a>").unwrap_err(), XmlError::Malformed);
    assert_eq!(
        read("<?xml-stylesheet href='x'?><a/>").unwrap_err(),
        XmlError::Declaration
    );
    assert_eq!(
        read(" <?xml version='1.0'?><a/>").unwrap_err(),
        XmlError::Declaration,
        "a declaration only at the very start"
    );
}

#[test]
fn only_utf8_is_read() {
    for ok in [
        "<?xml version=\"1.0\"?><a/>",
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?><a/>",
        "<?xml version='1.0' encoding='utf-8' standalone='yes' ?><a/>",
        "<?xml\tversion = \"1.0\"\nencoding=\"Utf-8\"?>\n<a/>",
    ] {
        assert!(read(ok).is_ok(), "{ok}");
    }
    for declared in [
        "UTF-7",
        "utf-7",
        "UTF-16",
        "UTF-16LE",
        "ISO-8859-1",
        "EBCDIC-US",
        "UTF8",
        " UTF-8",
        "UTF-8 ",
    ] {
        for quote in ['"', '\''] {
            for (before, eq) in [(" ", "="), ("\n\t", " = "), ("  ", "\r\n=\r\n")] {
                let doc = format!(
                    "<?xml version={quote}1.0{quote}{before}encoding{eq}{quote}{declared}{quote}?><a/>"
                );
                assert_eq!(read(&doc).unwrap_err(), XmlError::Encoding, "{doc}");
            }
        }
    }
    for bad in [
        // Out of order, or without the space XML requires.
        "<?xml encoding='UTF-7' version='1.0'?><a/>",
        "<?xml version='1.0' standalone='no' encoding='UTF-7'?><a/>",
    ] {
        assert_eq!(read(bad).unwrap_err(), XmlError::Encoding, "{bad}");
    }
    for bad in [
        "<?xml version='1.1'?><a/>",
        "<?xml?><a/>",
        "<?xml version='1.0' foo='x'?><a/>",
        "<?xml version='1.0' standalone='maybe'?><a/>",
        "<?xml version='1.0'encoding='UTF-7'?><a/>",
    ] {
        assert_eq!(read(bad).unwrap_err(), XmlError::Declaration, "{bad}");
    }
    // Byte order marks and first bytes of other encodings.
    let utf16le: Vec<u8> = "<a/>".encode_utf16().flat_map(u16::to_le_bytes).collect();
    let utf16be: Vec<u8> = "<a/>".encode_utf16().flat_map(u16::to_be_bytes).collect();
    for bytes in [
        [&b"\xFF\xFE"[..], &utf16le].concat(),
        [&b"\xFE\xFF"[..], &utf16be].concat(),
        utf16le.clone(),
        utf16be.clone(),
        b"\x00\x00\xFE\xFF\x00\x00\x00<".to_vec(),
        b"\xFF\xFE\x00\x00<\x00\x00\x00".to_vec(),
        b"+/v8-+ADw-a/+AD4-".to_vec(),
        b"\x4C\x6F\xA7\x94".to_vec(),
        b"<a>\xC3</a>".to_vec(),
        b"<a>\x01</a>".to_vec(),
        b"<a>\x00</a>".to_vec(),
        b"".to_vec(),
    ] {
        assert_eq!(
            text(bytes.clone()).unwrap_err(),
            XmlError::Encoding,
            "{bytes:?}"
        );
    }
    assert_eq!(text(b"\xEF\xBB\xBF<a/>".to_vec()).unwrap(), "<a/>");
    assert_eq!(
        text(b"\n<a>\xC3\xA9</a>".to_vec()).unwrap(),
        "\n<a>\u{e9}</a>"
    );
}
