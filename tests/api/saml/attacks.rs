//! Every known attack on a SAML SP is refused with 401 (400 when malformed), no session, no
//! provisioned user, and an `auth.login_failed` audit entry naming the reason.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use chrono::{Duration, Utc};

use super::idp::*;
use crate::helpers::{Db, on_both_databases};

async fn an_unsigned_response_is_rejected(db: Db) {
    let app = setup(db, false).await;
    let request_id = start_login(&app, "/").await;
    let a = Assertion::new(&app, "mallory@example.com", Some(&request_id));
    let r = post_response(&app, &a.response(&a.xml(None)), None).await;
    assert_rejected(&app, &r, 401, "unsigned").await;
}

async fn a_response_signed_by_another_key_is_rejected_even_with_its_cert_in_key_info(db: Db) {
    let app = setup(db, false).await;
    let request_id = start_login(&app, "/").await;
    let a = Assertion::new(&app, "mallory@example.com", Some(&request_id));
    // The attacker's certificate in KeyInfo: xmlsec must use the metadata key only.
    let r = post_response(&app, &a.signed_by(attacker_key()), None).await;
    assert_rejected(&app, &r, 401, "bad_signature").await;
    // The attacker's signature with the IdP's certificate in KeyInfo.
    let forged = sign(&a.response(&a.xml(Some(idp_key()))), attacker_key());
    let r = post_response(&app, &forged, None).await;
    assert_rejected(&app, &r, 401, "bad_signature").await;
    // A genuine response whose content was changed after signing.
    let tampered = a
        .signed()
        .replace("mallory@example.com", "alice@example.com");
    let r = post_response(&app, &tampered, None).await;
    assert_rejected(&app, &r, 401, "bad_signature").await;
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
        assert_rejected(&app, &r, 401, "wrapping").await;
    }
    // 2. The signed assertion moved under Extensions, a forged one in its place.
    let moved = genuine.response(&format!(
        "<samlp:Extensions>{signed}</samlp:Extensions>{forged_xml}"
    ));
    let r = post_response(&app, &moved, None).await;
    assert_rejected(&app, &r, 401, "wrapping").await;
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
    assert_rejected(&app, &r, 401, "wrapping").await;
}

async fn expired_and_not_yet_valid_assertions_are_rejected(db: Db) {
    let app = setup(db, false).await;
    let request_id = start_login(&app, "/").await;
    let mut expired = Assertion::new(&app, "mallory@example.com", Some(&request_id));
    expired.issued = Utc::now() - Duration::minutes(20);
    expired.not_before = expired.issued;
    expired.not_on_or_after = Utc::now() - Duration::minutes(10);
    let r = post_response(&app, &expired.signed(), None).await;
    assert_rejected(&app, &r, 401, "expired").await;
    // Just past NotOnOrAfter plus the 60 s skew.
    let mut stale = Assertion::new(&app, "mallory@example.com", Some(&request_id));
    stale.not_on_or_after = Utc::now() - Duration::seconds(90);
    let r = post_response(&app, &stale.signed(), None).await;
    assert_rejected(&app, &r, 401, "expired").await;

    let mut early = Assertion::new(&app, "mallory@example.com", Some(&request_id));
    early.not_before = Utc::now() + Duration::minutes(10);
    early.not_on_or_after = Utc::now() + Duration::minutes(20);
    let r = post_response(&app, &early.signed(), None).await;
    assert_rejected(&app, &r, 401, "not_yet_valid").await;
}

async fn a_wrong_audience_or_recipient_is_rejected(db: Db) {
    let app = setup(db, false).await;
    let request_id = start_login(&app, "/").await;
    let mut a = Assertion::new(&app, "mallory@example.com", Some(&request_id));
    a.audience = "https://other-sp.example/metadata".into();
    let r = post_response(&app, &a.signed(), None).await;
    assert_rejected(&app, &r, 401, "audience").await;

    let mut a = Assertion::new(&app, "mallory@example.com", Some(&request_id));
    a.recipient = "https://other-sp.example/acs".into();
    let r = post_response(&app, &a.signed(), None).await;
    assert_rejected(&app, &r, 401, "recipient").await;

    let mut a = Assertion::new(&app, "mallory@example.com", Some(&request_id));
    a.destination = "https://other-sp.example/acs".into();
    let r = post_response(&app, &a.signed(), None).await;
    assert_rejected(&app, &r, 401, "recipient").await;
}

async fn a_replayed_assertion_is_rejected(db: Db) {
    let app = setup(db, false).await;
    let request_id = start_login(&app, "/").await;
    let a = Assertion::new(&app, "alice@example.com", Some(&request_id));
    let signed = a.signed();
    let first = post_response(&app, &signed, None).await;
    assert_eq!(first.status, 303, "{}", first.body);
    let again = post_response(&app, &signed, None).await;
    assert_eq!(again.status, 401, "{}", again.body);
    assert!(again.cookie.is_none());
    assert!(again.body.contains("(replay)"), "{}", again.body);
    assert_eq!(failure_reasons(&app).await, vec!["replay".to_string()]);
    // The same assertion id in a new response to a new request is a replay too.
    let request_id = start_login(&app, "/").await;
    let mut b = Assertion::new(&app, "alice@example.com", Some(&request_id));
    b.id = a.id.clone();
    let r = post_response(&app, &b.signed(), None).await;
    assert_eq!(r.status, 401, "{}", r.body);
    assert!(r.body.contains("(replay)"), "{}", r.body);
}

async fn in_response_to_must_answer_an_outstanding_request(db: Db) {
    let app = setup(db, false).await;
    let a = Assertion::new(&app, "mallory@example.com", Some("ward_0123456789abcdef"));
    let r = post_response(&app, &a.signed(), None).await;
    assert_rejected(&app, &r, 401, "in_response_to").await;
    // Unsolicited responses are refused unless the provider allows IdP-initiated login.
    let a = Assertion::new(&app, "mallory@example.com", None);
    let r = post_response(&app, &a.signed(), None).await;
    assert_rejected(&app, &r, 401, "unsolicited").await;
    // A request id is answered once.
    let request_id = start_login(&app, "/").await;
    let a = Assertion::new(&app, "alice@example.com", Some(&request_id));
    assert_eq!(post_response(&app, &a.signed(), None).await.status, 303);
    let b = Assertion::new(&app, "alice@example.com", Some(&request_id));
    let r = post_response(&app, &b.signed(), None).await;
    assert_eq!(r.status, 401, "{}", r.body);
    assert!(r.body.contains("(in_response_to)"), "{}", r.body);
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
    assert_rejected(&app, &r, 401, "comment").await;
    // A comment present when the IdP signed is refused the same way.
    let a = Assertion::new(&app, "admin<!---->@evil.example", Some(&request_id));
    let r = post_response(&app, &a.signed(), None).await;
    assert_rejected(&app, &r, 401, "comment").await;
    // A NameID that is not a valid Ward user id is refused, never trimmed.
    let a = Assertion::new(&app, "admin &lt;x&gt;", Some(&request_id));
    let r = post_response(&app, &a.signed(), None).await;
    assert_rejected(&app, &r, 401, "user_id").await;
}

async fn sha1_signatures_are_rejected(db: Db) {
    let app = setup(db, false).await;
    let request_id = start_login(&app, "/").await;
    let mut a = Assertion::new(&app, "mallory@example.com", Some(&request_id));
    a.sig_alg = "http://www.w3.org/2000/09/xmldsig#rsa-sha1";
    a.digest = "http://www.w3.org/2000/09/xmldsig#sha1";
    let r = post_response(&app, &a.signed(), None).await;
    assert_rejected(&app, &r, 401, "algorithm").await;
    // RSA-SHA256 over a SHA-1 digest is SHA-1 all the same.
    a.sig_alg = RSA_SHA256;
    let r = post_response(&app, &a.signed(), None).await;
    assert_rejected(&app, &r, 401, "algorithm").await;
}

async fn malformed_messages_are_rejected_with_400(db: Db) {
    let app = setup(db, false).await;
    let r = post_form(&app, "acs", &[("SAMLResponse", "%%% not base64")], None).await;
    assert_rejected(&app, &r, 400, "malformed").await;
    let doctype = STANDARD.encode(r#"<!DOCTYPE r [<!ENTITY x "y">]><r/>"#);
    let r = post_form(&app, "acs", &[("SAMLResponse", &doctype)], None).await;
    assert_rejected(&app, &r, 400, "declaration").await;
    let r = post_form(&app, "acs", &[("Other", "x")], None).await;
    assert_rejected(&app, &r, 400, "malformed").await;
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
    malformed_messages_are_rejected_with_400,
);
