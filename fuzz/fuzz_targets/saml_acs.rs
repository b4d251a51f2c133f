//! The SAML assertion consumer service (src/auth/saml/acs.rs) on attacker-made Responses,
//! through the form, the pre-read and xmlsec, for a provider whose IdP key is made at
//! start-up and never leaves this process: with no valid signature every message must be
//! refused, never accepted, never a panic or a hang. Input: the Response XML, posted as
//! the HTTP-POST binding does (or a raw form body when it starts with `SAMLResponse=`).
#![no_main]

use std::sync::OnceLock;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use chrono::{DateTime, Utc};
use libfuzzer_sys::fuzz_target;
use samael::crypto::CertificateDer;
use samael::idp::{CertificateParams, IdentityProvider, KeyType, Rsa};
use serde_json::json;
use ward::auth::saml::{SamlProvider, check_response};
use ward::auth::sso::{ProviderKind, SsoProvider};

/// The seeds' IdP and SP names (tests/api/fuzz_seeds.rs makes the seeds with them).
const IDP_ENTITY: &str = "https://idp.test/metadata";
const PUBLIC_URL: &str = "https://ward.test";

fn provider() -> &'static SamlProvider {
    static P: OnceLock<SamlProvider> = OnceLock::new();
    P.get_or_init(|| {
        let idp = IdentityProvider::generate_new(KeyType::Rsa(Rsa::Rsa2048)).expect("an RSA key");
        let cert: CertificateDer = idp
            .create_certificate(&CertificateParams {
                common_name: "idp.test",
                issuer_name: "idp.test",
                days_until_expiration: 30,
            })
            .expect("a certificate");
        let metadata = format!(
            r#"<md:EntityDescriptor xmlns:md="urn:oasis:names:tc:SAML:2.0:metadata" entityID="{IDP_ENTITY}"><md:IDPSSODescriptor protocolSupportEnumeration="urn:oasis:names:tc:SAML:2.0:protocol"><md:KeyDescriptor use="signing"><ds:KeyInfo xmlns:ds="http://www.w3.org/2000/09/xmldsig#"><ds:X509Data><ds:X509Certificate>{}</ds:X509Certificate></ds:X509Data></ds:KeyInfo></md:KeyDescriptor><md:SingleSignOnService Binding="urn:oasis:names:tc:SAML:2.0:bindings:HTTP-Redirect" Location="https://idp.test/sso"/></md:IDPSSODescriptor></md:EntityDescriptor>"#,
            STANDARD.encode(cert.der_data())
        );
        let row = SsoProvider {
            id: "corp".into(),
            kind: ProviderKind::Saml,
            name: "Corp IdP".into(),
            enabled: true,
            config: json!({ "idp_metadata_xml": metadata, "allow_idp_initiated": true }),
            secret: None,
        };
        SamlProvider::from_provider(row, PUBLIC_URL).expect("the provider loads")
    })
}

fn now() -> DateTime<Utc> {
    DateTime::from_timestamp(1_800_000_000, 0).expect("a valid time")
}

fuzz_target!(|data: &[u8]| {
    let body = if data.starts_with(b"SAMLResponse=") {
        data.to_vec()
    } else {
        serde_urlencoded::to_string([("SAMLResponse", STANDARD.encode(data))])
            .expect("a form")
            .into_bytes()
    };
    assert!(check_response(provider(), &body, now()).is_err());
});
