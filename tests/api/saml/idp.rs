//! The test IdP: an RSA key and certificate made here (and an attacker's), IdP metadata,
//! Responses built from a template and signed with samael/xmlsec, and a browser that posts
//! them to Ward and reads what comes back.

use std::sync::OnceLock;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use chrono::{Duration, SecondsFormat, Utc};
use samael::crypto::{CertificateDer, Crypto, CryptoProvider};
use samael::idp::{CertificateParams, IdentityProvider, KeyType, Rsa};
use serde_json::{Value, json};
use ward::auth::saml::{deflate, validate_config};
use ward::auth::session;
use ward::auth::sso::{ProviderKind, SsoProvider, save_provider};

use crate::helpers::{Db, TestApp};

pub const IDP_ENTITY: &str = "https://idp.test/metadata";
pub const IDP_SSO: &str = "https://idp.test/sso";
pub const IDP_SLO: &str = "https://idp.test/slo";
pub const PROVIDER: &str = "corp";
pub const RSA_SHA256: &str = "http://www.w3.org/2001/04/xmldsig-more#rsa-sha256";
pub const SHA256: &str = "http://www.w3.org/2001/04/xmlenc#sha256";

/// A signing key and its self-signed certificate.
pub struct Key {
    pub der: Vec<u8>,
    pub cert_b64: String,
}

pub fn make_key(cn: &str) -> Key {
    let idp = IdentityProvider::generate_new(KeyType::Rsa(Rsa::Rsa2048)).unwrap();
    let cert: CertificateDer = idp
        .create_certificate(&CertificateParams {
            common_name: cn,
            issuer_name: cn,
            days_until_expiration: 30,
        })
        .unwrap();
    Key {
        der: idp.export_private_key_der().unwrap(),
        cert_b64: STANDARD.encode(cert.der_data()),
    }
}

/// The IdP's key and an attacker's, made once (RSA generation is slow). Signing once here
/// also initialises libxml2/xmlsec before any test thread uses them.
pub fn keys() -> &'static (Key, Key) {
    static KEYS: OnceLock<(Key, Key)> = OnceLock::new();
    KEYS.get_or_init(|| {
        let keys = (make_key("idp.test"), make_key("attacker.test"));
        let probe = format!(
            "<r ID=\"x\">{}</r>",
            signature_template("x", RSA_SHA256, SHA256, &keys.0.cert_b64)
        );
        Crypto::sign_xml(probe, &keys.0.der).unwrap();
        keys
    })
}

pub fn idp_key() -> &'static Key {
    &keys().0
}

pub fn attacker_key() -> &'static Key {
    &keys().1
}

pub fn metadata(cert_b64: Option<&str>) -> String {
    let key = cert_b64.map_or(String::new(), |c| {
        format!(
            r#"<md:KeyDescriptor use="signing"><ds:KeyInfo xmlns:ds="http://www.w3.org/2000/09/xmldsig#"><ds:X509Data><ds:X509Certificate>{c}</ds:X509Certificate></ds:X509Data></ds:KeyInfo></md:KeyDescriptor>"#
        )
    });
    format!(
        r#"<md:EntityDescriptor xmlns:md="urn:oasis:names:tc:SAML:2.0:metadata" entityID="{IDP_ENTITY}"><md:IDPSSODescriptor protocolSupportEnumeration="urn:oasis:names:tc:SAML:2.0:protocol">{key}<md:SingleLogoutService Binding="urn:oasis:names:tc:SAML:2.0:bindings:HTTP-Redirect" Location="{IDP_SLO}"/><md:SingleSignOnService Binding="urn:oasis:names:tc:SAML:2.0:bindings:HTTP-Redirect" Location="{IDP_SSO}"/></md:IDPSSODescriptor></md:EntityDescriptor>"#
    )
}

pub fn provider_config(allow_idp_initiated: bool) -> Value {
    json!({
        "idp_metadata_xml": metadata(Some(&idp_key().cert_b64)),
        "allow_idp_initiated": allow_idp_initiated,
        "user_id_attribute": null,
        "role_attribute": "groups",
        "role_map": {"ward-admins": "admin", "ward-mods": "moderator"},
        "default_role": "user",
        "name_attribute": "displayName",
    })
}

pub async fn setup(db: Db, allow_idp_initiated: bool) -> TestApp {
    let _ = keys();
    let app = TestApp::spawn(db).await;
    let config = provider_config(allow_idp_initiated);
    validate_config(&config).unwrap();
    save_provider(
        &app.state.auth(),
        &SsoProvider {
            id: PROVIDER.into(),
            kind: ProviderKind::Saml,
            name: "Corp IdP".into(),
            enabled: true,
            config,
            secret: None,
        },
        None,
    )
    .await
    .unwrap();
    app
}

pub fn sp_url(app: &TestApp, what: &str) -> String {
    format!(
        "{}/auth/saml/{PROVIDER}/{what}",
        app.state.config.public_url
    )
}

pub fn browser() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

pub fn signature_template(id: &str, sig_alg: &str, digest: &str, cert_b64: &str) -> String {
    format!(
        r##"<ds:Signature xmlns:ds="http://www.w3.org/2000/09/xmldsig#"><ds:SignedInfo><ds:CanonicalizationMethod Algorithm="http://www.w3.org/2001/10/xml-exc-c14n#"/><ds:SignatureMethod Algorithm="{sig_alg}"/><ds:Reference URI="#{id}"><ds:Transforms><ds:Transform Algorithm="http://www.w3.org/2000/09/xmldsig#enveloped-signature"/><ds:Transform Algorithm="http://www.w3.org/2001/10/xml-exc-c14n#"/></ds:Transforms><ds:DigestMethod Algorithm="{digest}"/><ds:DigestValue></ds:DigestValue></ds:Reference></ds:SignedInfo><ds:SignatureValue></ds:SignatureValue><ds:KeyInfo><ds:X509Data><ds:X509Certificate>{cert_b64}</ds:X509Certificate></ds:X509Data></ds:KeyInfo></ds:Signature>"##
    )
}

pub fn instant(t: chrono::DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Secs, true)
}

/// What the test IdP puts in a Response; every field can be bent by a test.
#[derive(Clone)]
pub struct Assertion {
    pub id: String,
    pub name_id: String,
    pub in_response_to: Option<String>,
    pub audience: String,
    pub recipient: String,
    pub destination: String,
    pub issued: chrono::DateTime<Utc>,
    pub not_before: chrono::DateTime<Utc>,
    pub not_on_or_after: chrono::DateTime<Utc>,
    pub groups: Vec<&'static str>,
    pub sig_alg: &'static str,
    pub digest: &'static str,
}

impl Assertion {
    pub fn new(app: &TestApp, name_id: &str, in_response_to: Option<&str>) -> Self {
        let now = Utc::now();
        Self {
            id: format!("_a{}", uuid::Uuid::new_v4().simple()),
            name_id: name_id.into(),
            in_response_to: in_response_to.map(str::to_string),
            audience: sp_url(app, "metadata"),
            recipient: sp_url(app, "acs"),
            destination: sp_url(app, "acs"),
            issued: now,
            not_before: now - Duration::seconds(30),
            not_on_or_after: now + Duration::minutes(5),
            groups: vec!["staff", "ward-admins"],
            sig_alg: RSA_SHA256,
            digest: SHA256,
        }
    }

    /// The `<saml:Assertion>` element, with a signature template when `signed_by` is given.
    pub fn xml(&self, signed_by: Option<&Key>) -> String {
        let irt = self
            .in_response_to
            .as_ref()
            .map_or(String::new(), |i| format!(r#" InResponseTo="{i}""#));
        let sig = signed_by.map_or(String::new(), |k| {
            signature_template(&self.id, self.sig_alg, self.digest, &k.cert_b64)
        });
        let groups: String = self
            .groups
            .iter()
            .map(|g| {
                format!(r#"<saml:AttributeValue xsi:type="xs:string">{g}</saml:AttributeValue>"#)
            })
            .collect();
        format!(
            r#"<saml:Assertion xmlns:saml="urn:oasis:names:tc:SAML:2.0:assertion" xmlns:xs="http://www.w3.org/2001/XMLSchema" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" ID="{id}" Version="2.0" IssueInstant="{issued}"><saml:Issuer>{IDP_ENTITY}</saml:Issuer>{sig}<saml:Subject><saml:NameID Format="urn:oasis:names:tc:SAML:1.1:nameid-format:emailAddress">{name_id}</saml:NameID><saml:SubjectConfirmation Method="urn:oasis:names:tc:SAML:2.0:cm:bearer"><saml:SubjectConfirmationData{irt} NotOnOrAfter="{nooa}" Recipient="{recipient}"/></saml:SubjectConfirmation></saml:Subject><saml:Conditions NotBefore="{nb}" NotOnOrAfter="{nooa}"><saml:AudienceRestriction><saml:Audience>{audience}</saml:Audience></saml:AudienceRestriction></saml:Conditions><saml:AuthnStatement AuthnInstant="{issued}" SessionIndex="_s{id}"><saml:AuthnContext><saml:AuthnContextClassRef>urn:oasis:names:tc:SAML:2.0:ac:classes:PasswordProtectedTransport</saml:AuthnContextClassRef></saml:AuthnContext></saml:AuthnStatement><saml:AttributeStatement><saml:Attribute Name="groups">{groups}</saml:Attribute><saml:Attribute Name="displayName"><saml:AttributeValue xsi:type="xs:string">Alice Example</saml:AttributeValue></saml:Attribute></saml:AttributeStatement></saml:Assertion>"#,
            id = self.id,
            issued = instant(self.issued),
            name_id = self.name_id,
            nooa = instant(self.not_on_or_after),
            nb = instant(self.not_before),
            recipient = self.recipient,
            audience = self.audience,
        )
    }

    /// A Response wrapping `inner` (assertions or anything else), unsigned.
    pub fn response(&self, inner: &str) -> String {
        let irt = self
            .in_response_to
            .as_ref()
            .map_or(String::new(), |i| format!(r#" InResponseTo="{i}""#));
        format!(
            r#"<samlp:Response xmlns:samlp="urn:oasis:names:tc:SAML:2.0:protocol" xmlns:saml="urn:oasis:names:tc:SAML:2.0:assertion" ID="_r{id}" Version="2.0" IssueInstant="{issued}" Destination="{dest}"{irt}><saml:Issuer>{IDP_ENTITY}</saml:Issuer><samlp:Status><samlp:StatusCode Value="urn:oasis:names:tc:SAML:2.0:status:Success"/></samlp:Status>{inner}</samlp:Response>"#,
            id = self.id,
            issued = instant(self.issued),
            dest = self.destination,
        )
    }

    /// The usual IdP output: the assertion signed by `key`.
    pub fn signed_by(&self, key: &Key) -> String {
        sign(&self.response(&self.xml(Some(key))), key)
    }

    pub fn signed(&self) -> String {
        self.signed_by(idp_key())
    }
}

pub fn sign(xml: &str, key: &Key) -> String {
    Crypto::sign_xml(xml, &key.der).expect("the test IdP signs")
}

/// The signed `<saml:Assertion>` element cut out of a signed document.
pub fn signed_assertion_element(signed: &str) -> String {
    let start = signed.find("<saml:Assertion").unwrap();
    let end = signed.rfind("</saml:Assertion>").unwrap() + "</saml:Assertion>".len();
    signed[start..end].to_string()
}

/// Starts an SP-initiated login; returns the AuthnRequest ID the IdP must answer.
pub async fn start_login(app: &TestApp, return_to: &str) -> String {
    let res = browser()
        .get(format!(
            "{}/auth/saml/{PROVIDER}/login?return_to={return_to}",
            app.base
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 303);
    let location = res.headers()["location"].to_str().unwrap().to_string();
    assert!(
        location.starts_with(&format!("{IDP_SSO}?SAMLRequest=")),
        "{location}"
    );
    let query = location.split_once('?').unwrap().1;
    let params: Vec<(String, String)> = serde_urlencoded::from_str(query).unwrap();
    let xml = inflate_param(&params, "SAMLRequest");
    assert!(xml.contains(&format!(
        r#"AssertionConsumerServiceURL="{}""#,
        sp_url(app, "acs")
    )));
    attr(&xml, "ID")
}

pub fn inflate_param(params: &[(String, String)], name: &str) -> String {
    let b64 = &params.iter().find(|(k, _)| k == name).unwrap().1;
    let raw = STANDARD.decode(b64).unwrap();
    String::from_utf8(deflate::inflate(&raw, 1 << 20).unwrap()).unwrap()
}

/// The first `name="…"` attribute value in `xml`.
pub fn attr(xml: &str, name: &str) -> String {
    let start = xml.find(&format!(" {name}=\"")).unwrap() + name.len() + 3;
    let end = xml[start..].find('"').unwrap() + start;
    xml[start..end].to_string()
}

pub struct Reply {
    pub status: u16,
    pub location: Option<String>,
    pub cookie: Option<String>,
    pub body: String,
}

pub async fn post_form(
    app: &TestApp,
    what: &str,
    fields: &[(&str, &str)],
    cookie: Option<&str>,
) -> Reply {
    let mut req = browser()
        .post(format!("{}/auth/saml/{PROVIDER}/{what}", app.base))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(serde_urlencoded::to_string(fields).unwrap());
    if let Some(c) = cookie {
        req = req.header("cookie", c);
    }
    reply(req.send().await.unwrap()).await
}

pub async fn reply(res: reqwest::Response) -> Reply {
    let status = res.status().as_u16();
    let location = res
        .headers()
        .get("location")
        .map(|v| v.to_str().unwrap().to_string());
    let cookie = res
        .headers()
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().unwrap())
        .find(|v| v.starts_with("ward_session=") && !v.contains("Max-Age=0"))
        .map(|v| v.split(';').next().unwrap().to_string());
    Reply {
        status,
        location,
        cookie,
        body: res.text().await.unwrap(),
    }
}

pub async fn post_response(app: &TestApp, xml: &str, relay_state: Option<&str>) -> Reply {
    let encoded = STANDARD.encode(xml);
    let mut fields = vec![("SAMLResponse", encoded.as_str())];
    if let Some(r) = relay_state {
        fields.push(("RelayState", r));
    }
    post_form(app, "acs", &fields, None).await
}

pub async fn live_session(app: &TestApp, cookie: &str) -> Option<session::Session> {
    let mut headers = axum::http::HeaderMap::new();
    headers.insert("cookie", cookie.parse().unwrap());
    session::from_headers(&app.state.auth(), &headers)
        .await
        .unwrap()
}

pub async fn failure_reasons(app: &TestApp) -> Vec<String> {
    app.audit_entries()
        .await
        .iter()
        .filter(|e| e["event"] == "auth.login_failed")
        .map(|e| {
            assert_eq!(e["meta"]["method"], "saml", "{e}");
            e["meta"]["reason"].as_str().unwrap().to_string()
        })
        .collect()
}

/// The one answer to every refused SAML message: the same status and body whatever failed.
pub const REFUSED_BODY: &str = "SAML message refused";

/// The message is refused with the generic answer (401, code 2, [`REFUSED_BODY`]), no session
/// starts, and the audit log (only it) names `reason`.
pub async fn assert_refused(app: &TestApp, r: &Reply, reason: &str) {
    assert_eq!(r.status, 401, "{}", r.body);
    assert!(r.cookie.is_none(), "no session cookie on a rejection");
    let body: Value = serde_json::from_str(&r.body).unwrap();
    assert_eq!(
        (body["code"].as_i64(), body["message"].as_str()),
        (Some(2), Some(REFUSED_BODY)),
        "the answer never says which check failed: {}",
        r.body
    );
    let reasons = failure_reasons(app).await;
    assert_eq!(
        reasons.last().map(String::as_str),
        Some(reason),
        "{reasons:?}"
    );
}

/// [`assert_refused`], and nobody was provisioned.
pub async fn assert_rejected(app: &TestApp, r: &Reply, reason: &str) {
    assert_refused(app, r, reason).await;
    for user in [
        "alice@example.com",
        "admin",
        "admin@evil.example",
        "mallory@example.com",
    ] {
        assert!(
            app.state
                .store
                .users
                .find_user(user)
                .await
                .unwrap()
                .is_none(),
            "{user} was not provisioned"
        );
    }
}

/// Logs alice in; returns her cookie.
pub async fn login(app: &TestApp) -> String {
    let request_id = start_login(app, "/").await;
    let a = Assertion::new(app, "alice@example.com", Some(&request_id));
    let r = post_response(app, &a.signed(), None).await;
    assert_eq!(r.status, 303, "{}", r.body);
    r.cookie.unwrap()
}

pub fn logout_request(app: &TestApp, name_id: &str, signed_by: Option<&Key>) -> String {
    let id = format!("_lq{}", uuid::Uuid::new_v4().simple());
    let sig = signed_by.map_or(String::new(), |k| {
        signature_template(&id, RSA_SHA256, SHA256, &k.cert_b64)
    });
    let xml = format!(
        r#"<samlp:LogoutRequest xmlns:samlp="urn:oasis:names:tc:SAML:2.0:protocol" xmlns:saml="urn:oasis:names:tc:SAML:2.0:assertion" ID="{id}" Version="2.0" IssueInstant="{}" Destination="{}"><saml:Issuer>{IDP_ENTITY}</saml:Issuer>{sig}<saml:NameID>{name_id}</saml:NameID></samlp:LogoutRequest>"#,
        instant(Utc::now()),
        sp_url(app, "logout"),
    );
    match signed_by {
        Some(k) => sign(&xml, k),
        None => xml,
    }
}
