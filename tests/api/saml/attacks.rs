//! Every known attack on a SAML SP is refused with the same answer (401, "SAML message
//! refused"), no session, no provisioned user, and an `auth.login_failed` audit entry naming
//! the reason (only there).

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use chrono::{Duration, Utc};

use super::idp::*;
use crate::helpers::{Db, TestApp, on_both_databases};

async fn an_unsigned_response_is_rejected(db: Db) {
    let app = setup(db, false).await;
    let request_id = start_login(&app, "/").await;
    let a = Assertion::new(&app, "mallory@example.com", Some(&request_id));
    let r = post_response(&app, &a.response(&a.xml(None)), None).await;
    assert_rejected(&app, &r, "unsigned").await;
}

async fn a_response_signed_by_another_key_is_rejected_even_with_its_cert_in_key_info(db: Db) {
    let app = setup(db, false).await;
    let request_id = start_login(&app, "/").await;
    let a = Assertion::new(&app, "mallory@example.com", Some(&request_id));
    // The attacker's certificate in KeyInfo: xmlsec must use the metadata key only.
    let r = post_response(&app, &a.signed_by(attacker_key()), None).await;
    assert_rejected(&app, &r, "bad_signature").await;
    // The attacker's signature with the IdP's certificate in KeyInfo.
    let forged = sign(&a.response(&a.xml(Some(idp_key()))), attacker_key());
    let r = post_response(&app, &forged, None).await;
    assert_rejected(&app, &r, "bad_signature").await;
    // A genuine response whose content was changed after signing.
    let tampered = a
        .signed()
        .replace("mallory@example.com", "alice@example.com");
    let r = post_response(&app, &tampered, None).await;
    assert_rejected(&app, &r, "bad_signature").await;
}

async fn signature_wrapping_is_rejected(db: Db) {
    let app = setup(db, false).await;
    let request_id = start_login(&app, "/").await;
    let genuine = Assertion::new(&app, "alice@example.com", Some(&request_id));
    let signed = signed_assertion_element(&genuine.signed());
    let mut forged = Assertion::new(&app, "admin", Some(&request_id));
    forged.groups = vec!["ward-admins"];
    let forged_xml = forged.xml(None);

    // 1. A second, unsigned assertion next to the signed one (before and after it).
    for inner in [
        format!("{forged_xml}{signed}"),
        format!("{signed}{forged_xml}"),
    ] {
        let r = post_response(&app, &genuine.response(&inner), None).await;
        assert_rejected(&app, &r, "wrapping").await;
    }
    // 2. The signed assertion moved under Extensions, a forged one in its place.
    let moved = genuine.response(&format!(
        "<samlp:Extensions>{signed}</samlp:Extensions>{forged_xml}"
    ));
    let r = post_response(&app, &moved, None).await;
    assert_rejected(&app, &r, "wrapping").await;
    // 3. The signed assertion moved under the forged one's Signature/Object, with the
    //    forged one carrying the genuine ID.
    let mut same_id = forged.clone();
    same_id.id = genuine.id.clone();
    let object = format!(
        r#"<ds:Signature xmlns:ds="http://www.w3.org/2000/09/xmldsig#"><ds:Object>{signed}</ds:Object></ds:Signature>"#
    );
    let wrapped =
        same_id
            .xml(None)
            .replacen("</saml:Issuer>", &format!("</saml:Issuer>{object}"), 1);
    let r = post_response(&app, &genuine.response(&wrapped), None).await;
    assert_rejected(&app, &r, "wrapping").await;
}

async fn expired_and_not_yet_valid_assertions_are_rejected(db: Db) {
    let app = setup(db, false).await;
    let request_id = start_login(&app, "/").await;
    let mut expired = Assertion::new(&app, "mallory@example.com", Some(&request_id));
    expired.issued = Utc::now() - Duration::minutes(20);
    expired.not_before = expired.issued;
    expired.not_on_or_after = Utc::now() - Duration::minutes(10);
    let r = post_response(&app, &expired.signed(), None).await;
    assert_rejected(&app, &r, "expired").await;
    // Just past NotOnOrAfter plus the 60 s skew.
    let mut stale = Assertion::new(&app, "mallory@example.com", Some(&request_id));
    stale.not_on_or_after = Utc::now() - Duration::seconds(90);
    let r = post_response(&app, &stale.signed(), None).await;
    assert_rejected(&app, &r, "expired").await;

    let mut early = Assertion::new(&app, "mallory@example.com", Some(&request_id));
    early.not_before = Utc::now() + Duration::minutes(10);
    early.not_on_or_after = Utc::now() + Duration::minutes(20);
    let r = post_response(&app, &early.signed(), None).await;
    assert_rejected(&app, &r, "not_yet_valid").await;
}

async fn a_wrong_audience_or_recipient_is_rejected(db: Db) {
    let app = setup(db, false).await;
    let request_id = start_login(&app, "/").await;
    let mut a = Assertion::new(&app, "mallory@example.com", Some(&request_id));
    a.audience = "https://other-sp.example/metadata".into();
    let r = post_response(&app, &a.signed(), None).await;
    assert_rejected(&app, &r, "audience").await;

    let mut a = Assertion::new(&app, "mallory@example.com", Some(&request_id));
    a.recipient = "https://other-sp.example/acs".into();
    let r = post_response(&app, &a.signed(), None).await;
    assert_rejected(&app, &r, "recipient").await;

    let mut a = Assertion::new(&app, "mallory@example.com", Some(&request_id));
    a.destination = "https://other-sp.example/acs".into();
    let r = post_response(&app, &a.signed(), None).await;
    assert_rejected(&app, &r, "recipient").await;
}

async fn a_replayed_assertion_is_rejected(db: Db) {
    let app = setup(db, false).await;
    let request_id = start_login(&app, "/").await;
    let a = Assertion::new(&app, "alice@example.com", Some(&request_id));
    let signed = a.signed();
    let first = post_response(&app, &signed, None).await;
    assert_eq!(first.status, 303, "{}", first.body);
    let again = post_response(&app, &signed, None).await;
    assert_refused(&app, &again, "replay").await;
    assert_eq!(failure_reasons(&app).await, vec!["replay".to_string()]);
    // The same assertion id in a new response to a new request is a replay too.
    let request_id = start_login(&app, "/").await;
    let mut b = Assertion::new(&app, "alice@example.com", Some(&request_id));
    b.id = a.id.clone();
    let r = post_response(&app, &b.signed(), None).await;
    assert_refused(&app, &r, "replay").await;
}

async fn in_response_to_must_answer_an_outstanding_request(db: Db) {
    let app = setup(db, false).await;
    let a = Assertion::new(&app, "mallory@example.com", Some("ward_0123456789abcdef"));
    let r = post_response(&app, &a.signed(), None).await;
    assert_rejected(&app, &r, "in_response_to").await;
    // Unsolicited responses are refused unless the provider allows IdP-initiated login.
    let a = Assertion::new(&app, "mallory@example.com", None);
    let r = post_response(&app, &a.signed(), None).await;
    assert_rejected(&app, &r, "unsolicited").await;
    // A request id is answered once.
    let request_id = start_login(&app, "/").await;
    let a = Assertion::new(&app, "alice@example.com", Some(&request_id));
    assert_eq!(post_response(&app, &a.signed(), None).await.status, 303);
    let b = Assertion::new(&app, "alice@example.com", Some(&request_id));
    let r = post_response(&app, &b.signed(), None).await;
    assert_refused(&app, &r, "in_response_to").await;
}

async fn a_comment_injected_name_id_is_never_truncated(db: Db) {
    let app = setup(db, false).await;
    let request_id = start_login(&app, "/").await;
    // The IdP signed "admin@evil.example"; a comment inserted afterwards keeps the signature
    // valid (exclusive c14n drops comments) and would make a naive reader see "admin".
    let a = Assertion::new(&app, "admin@evil.example", Some(&request_id));
    let injected = a
        .signed()
        .replace(">admin@evil.example<", ">admin<!---->@evil.example<");
    let r = post_response(&app, &injected, None).await;
    assert_rejected(&app, &r, "comment").await;
    // A comment present when the IdP signed is refused the same way.
    let a = Assertion::new(&app, "admin<!---->@evil.example", Some(&request_id));
    let r = post_response(&app, &a.signed(), None).await;
    assert_rejected(&app, &r, "comment").await;
    // A NameID that is not a valid Ward user id is refused, never trimmed.
    let a = Assertion::new(&app, "admin &lt;x&gt;", Some(&request_id));
    let r = post_response(&app, &a.signed(), None).await;
    assert_rejected(&app, &r, "user_id").await;
}

async fn sha1_signatures_are_rejected(db: Db) {
    let app = setup(db, false).await;
    let request_id = start_login(&app, "/").await;
    let mut a = Assertion::new(&app, "mallory@example.com", Some(&request_id));
    a.sig_alg = "http://www.w3.org/2000/09/xmldsig#rsa-sha1";
    a.digest = "http://www.w3.org/2000/09/xmldsig#sha1";
    let r = post_response(&app, &a.signed(), None).await;
    assert_rejected(&app, &r, "algorithm").await;
    // RSA-SHA256 over a SHA-1 digest is SHA-1 all the same.
    a.sig_alg = RSA_SHA256;
    let r = post_response(&app, &a.signed(), None).await;
    assert_rejected(&app, &r, "algorithm").await;
}

async fn malformed_messages_are_refused(db: Db) {
    let app = setup(db, false).await;
    let r = post_form(&app, "acs", &[("SAMLResponse", "%%% not base64")], None).await;
    assert_rejected(&app, &r, "malformed").await;
    let doctype = STANDARD.encode(r#"<!DOCTYPE r [<!ENTITY x "y">]><r/>"#);
    let r = post_form(&app, "acs", &[("SAMLResponse", &doctype)], None).await;
    assert_rejected(&app, &r, "declaration").await;
    let r = post_form(&app, "acs", &[("Other", "x")], None).await;
    assert_rejected(&app, &r, "malformed").await;
}

/// The most work a message Ward passes to xmlsec can ask for, within the body limit: two
/// signatures whose references cover the whole document through the three transforms
/// allowed (xmlsec stops at the first that fails: without the IdP's key a sender gets one
/// signature's worth per IdP certificate), the most elements, nesting and namespaces in
/// scope the pre-read allows, attributes in many namespaces (canonicalisation sorts and
/// renders them). It reaches xmlsec (the reason is `bad_signature`) and the time is
/// printed; the bound is loose so a loaded machine does not fail it, while the XSLT above
/// would take hours.
async fn the_costliest_message_ward_lets_through_is_cheap(db: Db) {
    let app = setup(db, false).await;
    let request_id = start_login(&app, "/").await;
    let a = Assertion::new(&app, "mallory@example.com", Some(&request_id));
    // Each signature template has enveloped-signature and exclusive C14N; one more.
    let c14n = r#"<ds:Transform Algorithm="http://www.w3.org/2006/12/xml-c14n11"/>"#;
    let whole = |xml: String| {
        xml.replace(&format!(r##"URI="#{}""##, a.id), r#"URI="""#)
            .replace(&format!(r##"URI="#_r{}""##, a.id), r#"URI="""#)
            .replace(ENVELOPED, &format!("{ENVELOPED}{c14n}"))
    };
    // 27 namespaces (the Response and Assertion declare the other 5 of the 32 allowed in
    // scope).
    let ns: String = (0..27)
        .map(|i| format!(r#" xmlns:n{i}="urn:n{i}""#))
        .collect();
    // Eight attributes per element, each in its own namespace: the costliest mix of
    // elements and bytes measured (more attributes means fewer elements in the body limit).
    let attrs: String = (0..8).map(|i| format!(r#" n{i}:a{i}="{i}""#)).collect();
    let mut chunk = String::from("<x/>");
    // Response, Assertion, Advice, then 20 levels and a leaf: the 24 levels allowed.
    for i in 0..20 {
        chunk = format!("<n{}:e{attrs}>{chunk}</n{}:e>", i % 27, i % 27);
    }
    let limit = app.state.config.limits.max_body_bytes;
    let mut filler = String::new();
    let mut elements = 0;
    loop {
        let assertion = a.xml(Some(idp_key())).replacen(
            "<saml:Subject>",
            &format!("<saml:Advice{ns}>{filler}{chunk}</saml:Advice><saml:Subject>"),
            1,
        );
        let response = a.response(&assertion).replacen(
            "</saml:Issuer>",
            &format!(
                "</saml:Issuer>{}",
                signature_template(
                    &format!("_r{}", a.id),
                    RSA_SHA256,
                    SHA256,
                    &idp_key().cert_b64
                )
            ),
            1,
        );
        let body = serde_urlencoded::to_string([(
            "SAMLResponse",
            STANDARD.encode(whole(response.clone())),
        )])
        .unwrap();
        if body.len() > limit || elements + 21 > 4_900 {
            break;
        }
        filler.push_str(&chunk);
        elements += 21;
    }
    let assertion = a.xml(Some(idp_key())).replacen(
        "<saml:Subject>",
        &format!("<saml:Advice{ns}>{filler}</saml:Advice><saml:Subject>"),
        1,
    );
    let xml = whole(a.response(&assertion).replacen(
        "</saml:Issuer>",
        &format!(
            "</saml:Issuer>{}",
            signature_template(
                &format!("_r{}", a.id),
                RSA_SHA256,
                SHA256,
                &idp_key().cert_b64
            )
        ),
        1,
    ));
    let started = std::time::Instant::now();
    let r = post_response(&app, &xml, None).await;
    let took = started.elapsed();
    eprintln!(
        "costliest accepted shape: {} bytes, {elements} filler elements: refused by xmlsec in {took:?}",
        xml.len()
    );
    assert_rejected(&app, &r, "bad_signature").await;
    assert!(took < std::time::Duration::from_secs(10), "{took:?}");
}

/// The IdP's LogoutRequest (POST binding) goes through the same checks before xmlsec.
async fn logout_requests_in_another_encoding_or_with_xslt_are_refused(db: Db) {
    let app = setup(db, false).await;
    let cookie = login(&app).await;
    let genuine = logout_request(&app, "alice@example.com", Some(idp_key()));
    let hidden =
        undeclared(&genuine.replacen(ENVELOPED, &format!("{ENVELOPED}{}", slow_xslt()), 1));
    for forged in [
        format!(
            "<?xml version=\"1.0\" encoding=\"UTF-7\"?>{}",
            utf7(&hidden)
        ),
        hidden.clone(),
    ] {
        let started = std::time::Instant::now();
        let encoded = STANDARD.encode(&forged);
        let r = post_form(&app, "logout", &[("SAMLRequest", &encoded)], Some(&cookie)).await;
        assert_eq!(r.status, 401, "{}", r.body);
        let body: serde_json::Value = serde_json::from_str(&r.body).unwrap();
        assert_eq!(body["message"], REFUSED_BODY);
        assert!(
            started.elapsed() < std::time::Duration::from_secs(10),
            "refused before the XSLT could run"
        );
        assert!(
            live_session(&app, &cookie).await.is_some(),
            "the session survives"
        );
    }
}

on_both_databases!(
    an_unsigned_response_is_rejected,
    a_response_signed_by_another_key_is_rejected_even_with_its_cert_in_key_info,
    signature_wrapping_is_rejected,
    expired_and_not_yet_valid_assertions_are_rejected,
    a_wrong_audience_or_recipient_is_rejected,
    a_replayed_assertion_is_rejected,
    in_response_to_must_answer_an_outstanding_request,
    a_comment_injected_name_id_is_never_truncated,
    sha1_signatures_are_rejected,
    malformed_messages_are_refused,
    a_response_in_another_encoding_is_refused_before_xmlsec,
    xslt_xpath_and_other_transforms_are_refused_unevaluated,
    every_refusal_answers_the_same,
    the_costliest_message_ward_lets_through_is_cheap,
    logout_requests_in_another_encoding_or_with_xslt_are_refused,
);

/// `s` in UTF-7 (RFC 2152) as an encoder hiding markup writes it: letters, digits and
/// `'(),-./:?` and white space as themselves, every other character as `+…-` (modified base64
/// of its UTF-16).
fn utf7(s: &str) -> String {
    s.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || " \t\r\n'(),-./:?".contains(c) {
                c.to_string()
            } else {
                let units: Vec<u8> = c
                    .encode_utf16(&mut [0; 2])
                    .iter()
                    .flat_map(|u| u.to_be_bytes())
                    .collect();
                format!("+{}-", STANDARD.encode(units).trim_end_matches('='))
            }
        })
        .collect()
}

/// `xml` without its XML declaration.
fn undeclared(xml: &str) -> String {
    match xml.strip_prefix("<?xml") {
        Some(rest) => rest[rest.find("?>").unwrap() + 2..]
            .trim_start()
            .to_string(),
        None => xml.to_string(),
    }
}

fn utf16le(s: &str, bom: bool) -> Vec<u8> {
    let bom: &[u8] = if bom { b"\xFF\xFE" } else { b"" };
    [
        bom.to_vec(),
        s.encode_utf16().flat_map(u16::to_le_bytes).collect(),
    ]
    .concat()
}

pub async fn post_bytes(app: &TestApp, xml: &[u8]) -> Reply {
    let encoded = STANDARD.encode(xml);
    post_form(app, "acs", &[("SAMLResponse", &encoded)], None).await
}

const ENVELOPED: &str =
    r#"<ds:Transform Algorithm="http://www.w3.org/2000/09/xmldsig#enveloped-signature"/>"#;

/// An XSLT that runs for hours when evaluated: five nested loops over every node.
fn slow_xslt() -> String {
    let mut body = String::from(r#"<xsl:value-of select="count(//node())"/>"#);
    for _ in 0..5 {
        body = format!(r#"<xsl:for-each select="//node() | //@*">{body}</xsl:for-each>"#);
    }
    format!(
        r#"<ds:Transform Algorithm="http://www.w3.org/TR/1999/REC-xslt-19991116"><xsl:stylesheet xmlns:xsl="http://www.w3.org/1999/XSL/Transform" version="1.0"><xsl:template match="/">{body}</xsl:template></xsl:stylesheet></ds:Transform>"#
    )
}

/// A genuine signed response with `extra` after the enveloped-signature transform of the
/// assertion's signature (the signature no longer holds; it is never checked).
fn with_transform(a: &Assertion, extra: &str) -> String {
    let signed = a.signed();
    assert!(signed.contains(ENVELOPED), "{signed}");
    signed.replacen(ENVELOPED, &format!("{ENVELOPED}{extra}"), 1)
}

async fn a_response_in_another_encoding_is_refused_before_xmlsec(db: Db) {
    let app = setup(db, false).await;
    let request_id = start_login(&app, "/").await;
    let a = Assertion::new(&app, "mallory@example.com", Some(&request_id));
    // Without the `<?xml version="1.0"?>` libxml2 writes, to put other declarations there.
    let signed = undeclared(&a.signed());
    // The UTF-7 attack: in UTF-7 the XSLT transform is no markup to a reader of UTF-8 bytes,
    // while libxml2 decodes it. Refused as soon as the declaration is read.
    let hidden = undeclared(&with_transform(&a, &slow_xslt()));
    let declared = |enc: &str, q: char| format!("<?xml version={q}1.0{q} encoding={q}{enc}{q}?>");
    let mut cases: Vec<(String, Vec<u8>)> = vec![
        (
            "UTF-7".into(),
            format!("{}{}", declared("UTF-7", '"'), utf7(&hidden)).into_bytes(),
        ),
        (
            "utf-7, single quotes, spaces".into(),
            format!(
                "<?xml version='1.0'\n\tencoding = 'utf-7' ?>{}",
                utf7(&hidden)
            )
            .into_bytes(),
        ),
        (
            "UTF-16 with a BOM".into(),
            utf16le(&format!("{}{signed}", declared("UTF-16", '"')), true),
        ),
        (
            "UTF-16 with a BOM, undeclared".into(),
            utf16le(&signed, true),
        ),
        ("UTF-16 without a BOM".into(), utf16le(&signed, false)),
        (
            "UTF-16 declared over ASCII".into(),
            format!("{}{signed}", declared("UTF-16", '\'')).into_bytes(),
        ),
        (
            "ISO-8859-1 declared".into(),
            format!("{}{signed}", declared("ISO-8859-1", '"')).into_bytes(),
        ),
        (
            "not UTF-8".into(),
            signed
                .replacen("Alice Example", "Alice \u{e9}", 1)
                .into_bytes()
                .into_iter()
                .filter(|b| *b != 0xA9)
                .collect(),
        ),
        (
            "a NUL".into(),
            signed
                .replacen("Alice Example", "Alice\u{0}Example", 1)
                .into_bytes(),
        ),
    ];
    // A UTF-8 byte order mark and a UTF-8 declaration are fine: they reach the signature
    // check (and fail it only because of the changed content).
    cases.push((
        "UTF-8 BOM and declaration, tampered".into(),
        [
            b"\xEF\xBB\xBF".to_vec(),
            format!(
                "{}{}",
                declared("UTF-8", '"'),
                signed.replace("mallory@", "mal@")
            )
            .into_bytes(),
        ]
        .concat(),
    ));
    for (what, bytes) in cases {
        let started = std::time::Instant::now();
        let r = post_bytes(&app, &bytes).await;
        let took = started.elapsed();
        eprintln!("{what}: refused in {took:?}");
        let reason = if what.starts_with("UTF-8 BOM") {
            "bad_signature"
        } else {
            "encoding"
        };
        assert_rejected(&app, &r, reason).await;
        // Had the XSLT been evaluated this would take hours; the refusal comes from the
        // encoding check, before xmlsec (the audit reason says so).
        assert!(
            took < std::time::Duration::from_secs(10),
            "{what}: {took:?}"
        );
    }
    // The same response in UTF-8 with its UTF-8 declaration logs in.
    let r = post_bytes(
        &app,
        format!("{}{signed}", declared("UTF-8", '"')).as_bytes(),
    )
    .await;
    assert_eq!(r.status, 303, "{}", r.body);
}

async fn xslt_xpath_and_other_transforms_are_refused_unevaluated(db: Db) {
    let app = setup(db, false).await;
    let request_id = start_login(&app, "/").await;
    let a = Assertion::new(&app, "mallory@example.com", Some(&request_id));
    let transform = |alg: &str, inner: &str| {
        format!(r#"<ds:Transform Algorithm="{alg}">{inner}</ds:Transform>"#)
    };
    let xpath = "http://www.w3.org/TR/1999/REC-xpath-19991116";
    let cases = [
        ("XSLT", with_transform(&a, &slow_xslt()), "transform"),
        (
            "XPath",
            with_transform(
                &a,
                &transform(
                    xpath,
                    "<ds:XPath>count(//. | //@* | //namespace::*) &gt; 0</ds:XPath>",
                ),
            ),
            "transform",
        ),
        (
            "XPath Filter 2.0",
            with_transform(
                &a,
                &transform(
                    "http://www.w3.org/2002/06/xmldsig-filter2",
                    r#"<dsig-xpath:XPath xmlns:dsig-xpath="http://www.w3.org/2002/06/xmldsig-filter2" Filter="union">//.</dsig-xpath:XPath>"#,
                ),
            ),
            "transform",
        ),
        (
            "base64",
            with_transform(&a, &transform("http://www.w3.org/2000/09/xmldsig#base64", "")),
            "transform",
        ),
        (
            "c14n with comments",
            with_transform(
                &a,
                &transform("http://www.w3.org/2001/10/xml-exc-c14n#WithComments", ""),
            ),
            "transform",
        ),
        (
            "an XPath element under an allowed transform",
            with_transform(
                &a,
                &transform(
                    "http://www.w3.org/2001/10/xml-exc-c14n#",
                    "<ds:XPath>count(//.)</ds:XPath>",
                ),
            ),
            "transform",
        ),
        (
            "XPath in a RetrievalMethod in KeyInfo",
            a.signed().replacen(
                "<ds:X509Data>",
                &format!(
                    r##"<ds:RetrievalMethod URI="#x"><ds:Transforms>{}</ds:Transforms></ds:RetrievalMethod><ds:X509Data>"##,
                    transform(xpath, "<ds:XPath>1</ds:XPath>")
                ),
                1,
            ),
            "transform",
        ),
        (
            "an allowed prefixed Algorithm beside an XSLT one",
            with_transform(
                &a,
                r#"<ds:Transform xmlns:x="urn:x" x:Algorithm="http://www.w3.org/2001/10/xml-exc-c14n#" Algorithm="http://www.w3.org/TR/1999/REC-xslt-19991116"/>"#,
            ),
            "malformed",
        ),
        (
            "an external reference",
            a.signed().replacen(
                &format!(r##"URI="#{}""##, a.id),
                r#"URI="http://169.254.169.254/latest/meta-data/""#,
                1,
            ),
            "references",
        ),
        (
            "an XPointer reference",
            a.signed().replacen(
                &format!(r##"URI="#{}""##, a.id),
                r##"URI="#xpointer(//.)""##,
                1,
            ),
            "references",
        ),
        (
            "four transforms",
            with_transform(
                &a,
                &transform("http://www.w3.org/2001/10/xml-exc-c14n#", "").repeat(3),
            ),
            "references",
        ),
        (
            "two references",
            {
                let signed = a.signed();
                let start = signed.find("<ds:Reference ").unwrap();
                let end = signed.find("</ds:Reference>").unwrap() + "</ds:Reference>".len();
                let reference = &signed[start..end];
                signed.replacen(reference, &reference.repeat(2), 1)
            },
            "references",
        ),
    ];
    for (what, xml, reason) in cases {
        let started = std::time::Instant::now();
        let r = post_response(&app, &xml, None).await;
        eprintln!("{what}: refused in {:?}", started.elapsed());
        assert_rejected(&app, &r, reason).await;
        assert!(
            started.elapsed() < std::time::Duration::from_secs(10),
            "{what}"
        );
    }
}

/// Every refusal answers the same status and text; only the audit log tells them apart.
async fn every_refusal_answers_the_same(db: Db) {
    let app = setup(db, false).await;
    let request_id = start_login(&app, "/").await;
    let a = Assertion::new(&app, "mallory@example.com", Some(&request_id));
    let mut wrong_audience = a.clone();
    wrong_audience.audience = "https://other-sp.example/metadata".into();
    let mut forged = a.clone();
    forged.id = "_forged".into();
    let wrapped = a.response(&format!(
        "{}{}",
        forged.xml(None),
        signed_assertion_element(&a.signed())
    ));
    let utf7 = format!(
        "<?xml version=\"1.0\" encoding=\"UTF-7\"?>{}",
        utf7(&undeclared(&a.signed()))
    );
    let cases: Vec<(&str, Reply)> = vec![
        (
            "unsigned",
            post_response(&app, &a.response(&a.xml(None)), None).await,
        ),
        (
            "audience",
            post_response(&app, &wrong_audience.signed(), None).await,
        ),
        ("wrapping", post_response(&app, &wrapped, None).await),
        ("encoding", post_response(&app, &utf7, None).await),
        (
            "bad_signature",
            post_response(&app, &a.signed_by(attacker_key()), None).await,
        ),
        (
            "transform",
            post_response(&app, &with_transform(&a, &slow_xslt()), None).await,
        ),
        (
            "malformed",
            post_form(&app, "acs", &[("SAMLResponse", "%%% not base64")], None).await,
        ),
        (
            "declaration",
            post_response(&app, r#"<!DOCTYPE r [<!ENTITY x "y">]><r/>"#, None).await,
        ),
    ];
    // The body without the time the request took.
    let answer = |r: &Reply| {
        let mut body: serde_json::Value = serde_json::from_str(&r.body).unwrap();
        body.as_object_mut().unwrap().remove("duration");
        (r.status, body)
    };
    let first = &cases[0].1;
    for (reason, r) in &cases {
        assert_eq!(
            answer(r),
            answer(first),
            "{reason} is answered like any other refusal"
        );
        assert!(!r.body.contains(reason), "{}", r.body);
    }
    let (status, body) = answer(first);
    assert_eq!(status, 401);
    assert_eq!(
        (body["code"].as_i64(), body["message"].as_str()),
        (Some(2), Some(REFUSED_BODY))
    );
    let expected: Vec<String> = cases.iter().map(|(r, _)| (*r).to_string()).collect();
    assert_eq!(
        failure_reasons(&app).await,
        expected,
        "the audit log has each reason"
    );
}
