//! SAML 2.0 service provider: Web Browser SSO (SAML Profiles §4.1) with the HTTP-Redirect
//! binding for the AuthnRequest and the HTTP-POST binding for the Response, SP metadata
//! (SAML Metadata §2.4.4), and Single Logout (Profiles §4.4, in [`logout`]).
//!
//! samael (with xmlsec) checks the XML signature and the time, issuer, recipient and
//! destination conditions. Around it Ward adds what samael leaves to the caller or does
//! loosely:
//! - a strict pre-read of the raw message ([`xml`]): no comments, DTDs or processing
//!   instructions; exactly one assertion, a direct child of the Response; signatures only on
//!   the Response or the Assertion; allow-listed algorithms (no SHA-1);
//! - IdP metadata without a signing certificate is refused ([`validate_config`]): samael
//!   would otherwise accept unsigned responses; the key comes from the metadata only, never
//!   from a `KeyInfo` in the message (samael gives xmlsec the key and no key manager);
//! - the audience restriction is required (Profiles §4.1.4.2), not only checked when present;
//! - `InResponseTo` is matched against the AuthnRequests Ward sent (single use), and
//!   unsolicited responses are refused unless the provider allows IdP-initiated login;
//! - assertion ids are remembered until they expire (Profiles §4.1.4.5, replay).
//!
//! - one encoding: the message must be UTF-8 (`xml::text`, `xml::read`), so the pre-read
//!   and libxml2 read the same document (a UTF-7 declaration once hid markup from it);
//! - the transforms xmlsec may run are vetted before it sees the message
//!   (`check_algorithms`): no XSLT or XPath, and bounded work.
//!
//! Every rejection is recorded as `auth.login_failed` with a short reason code, never the
//! message content; the sender gets the same answer ([`REFUSED`]) whatever failed.

mod acs;
mod algorithms;
pub mod deflate;
pub mod logout;
mod xml;

use acs::SloInfo;
pub use acs::finish_login;
#[doc(hidden)]
pub use acs::{check_response, preparse};
use algorithms::check_algorithms;

use std::collections::BTreeMap;
use std::sync::Mutex;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use chrono::Duration;
use samael::crypto::{AllowedSignatureAlgorithm, CertificateDer, CryptoProvider};
use samael::metadata::{EntityDescriptor, HTTP_POST_BINDING, HTTP_REDIRECT_BINDING};
use samael::service_provider::ServiceProvider;
use samael::traits::ToXml;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::sso::{self, ProviderKind, is_local_path};
use crate::auth::Ctx;
use crate::auth::error::Error;
use crate::time::now_micros;

/// The SP private key type samael signs and decrypts with (an OpenSSL key).
type SpKey = <samael::crypto::Crypto as CryptoProvider>::PrivateKey;

/// Clock skew tolerated on NotBefore / NotOnOrAfter (SAML Core §2.5.1.2 leaves it to the
/// relying party).
pub const CLOCK_SKEW_SECS: i64 = 60;
/// How old an IssueInstant may be (transit time plus skew).
const MAX_ISSUE_DELAY_SECS: i64 = 180;
/// How long an AuthnRequest or LogoutRequest stays answerable.
const FLOW_TTL_SECS: i64 = 600;
/// The largest decoded message accepted.
const MAX_MESSAGE_BYTES: usize = 512 * 1024;

/// Signature algorithms accepted (SHA-256 or stronger, no SHA-1: NIST SP 800-131A).
pub const ALLOWED_SIGNATURES: &[AllowedSignatureAlgorithm] = &[
    AllowedSignatureAlgorithm::RsaSha256,
    AllowedSignatureAlgorithm::RsaSha384,
    AllowedSignatureAlgorithm::RsaSha512,
    AllowedSignatureAlgorithm::EcdsaSha256,
    AllowedSignatureAlgorithm::EcdsaSha384,
    AllowedSignatureAlgorithm::EcdsaSha512,
];
/// Canonicalisation and reference transforms a SAML signature uses (SAML Core §5.4.3–4);
/// anything else (XPath, XSLT, with-comments variants) is refused before xmlsec sees it.
const ALLOWED_TRANSFORMS: &[&str] = &[
    "http://www.w3.org/2000/09/xmldsig#enveloped-signature",
    "http://www.w3.org/2001/10/xml-exc-c14n#",
    "http://www.w3.org/TR/2001/REC-xml-c14n-20010315",
    "http://www.w3.org/2006/12/xml-c14n11",
];
/// Canonicalisation methods of SignedInfo (the C14N family of [`ALLOWED_TRANSFORMS`]).
const ALLOWED_C14N: &[&str] = &[
    "http://www.w3.org/2001/10/xml-exc-c14n#",
    "http://www.w3.org/TR/2001/REC-xml-c14n-20010315",
    "http://www.w3.org/2006/12/xml-c14n11",
];
/// Signatures in one message: the Response's and the Assertion's (Core §5.3).
const MAX_SIGNATURES: usize = 2;
/// Transforms in one Reference: enveloped-signature and a canonicalisation (Core §5.4.4),
/// with room for one more.
const MAX_TRANSFORMS: usize = 3;
/// Digests of RSA-OAEP's mask generation (XML Encryption §5.4.2; SHA-1 is its default and
/// is not used for a signature there).
const ALLOWED_OAEP_DIGESTS: &[&str] = &[
    "http://www.w3.org/2000/09/xmldsig#sha1",
    "http://www.w3.org/2001/04/xmlenc#sha256",
];
/// Encryption of assertions (XML Encryption): RSA-OAEP key transport only (no PKCS#1 v1.5),
/// AES content encryption. The ciphertext is covered by the Response signature, which is
/// checked before decryption.
const ALLOWED_ENCRYPTION: &[&str] = &[
    "http://www.w3.org/2001/04/xmlenc#rsa-oaep-mgf1p",
    "http://www.w3.org/2009/xmlenc11#aes128-gcm",
    "http://www.w3.org/2001/04/xmlenc#aes128-cbc",
];
const STATUS_SUCCESS: &str = "urn:oasis:names:tc:SAML:2.0:status:Success";

/// The roles a provider may map to (those `chat::user` accepts, minus `anonymous`).
const ROLES: &[&str] = &[
    "admin",
    "moderator",
    "user",
    "guest",
    "auditor",
    "compliance_officer",
];

/// libxml2 and xmlsec keep global state (parser initialisation, error callbacks) that is not
/// safe to initialise from several threads at once; every call into them holds this lock.
/// A sync mutex: it is only taken inside `spawn_blocking`, around CPU-bound C calls.
static XMLSEC: Mutex<()> = Mutex::new(());

fn with_xmlsec<T>(f: impl FnOnce() -> T) -> T {
    let _guard = XMLSEC.lock().unwrap_or_else(|e| e.into_inner());
    f()
}

/// A provider's `config` JSON.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SamlConfig {
    /// The IdP's metadata (`<EntityDescriptor>` with an IDPSSODescriptor). Its signing
    /// certificates are the only keys Ward trusts for this provider.
    pub idp_metadata_xml: String,
    /// Accept unsolicited responses (IdP-initiated SSO, Profiles §4.1.5). Off by default:
    /// they cannot be bound to a request and are the usual vector of login CSRF.
    #[serde(default)]
    pub allow_idp_initiated: bool,
    /// The attribute holding the Ward user id; `null` uses the NameID.
    #[serde(default)]
    pub user_id_attribute: Option<String>,
    /// The attribute whose values are mapped through `role_map` (e.g. `groups`).
    #[serde(default)]
    pub role_attribute: Option<String>,
    /// IdP value → Ward role. The first value (in the IdP's order) with an entry decides.
    #[serde(default)]
    pub role_map: BTreeMap<String, String>,
    /// The role when no value maps; `null` leaves an existing user's role unchanged.
    #[serde(default)]
    pub default_role: Option<String>,
    /// The attribute holding the display name.
    #[serde(default)]
    pub name_attribute: Option<String>,
    /// The SP certificate (PEM) published in the SP metadata; its private key (PEM) is the
    /// provider's sealed `secret`. With a key, AuthnRequests and LogoutRequests are signed
    /// and encrypted assertions can be decrypted.
    #[serde(default)]
    pub sp_certificate: Option<String>,
}

/// Checks a provider `config` before it is stored: the schema, the IdP metadata, at least one
/// signing certificate in it (without one samael would accept unsigned responses), the
/// roles, and the SP certificate.
pub fn validate_config(config: &Value) -> Result<(), String> {
    let (cfg, _, _) = parse_config(config)?;
    for role in cfg.role_map.values().chain(cfg.default_role.iter()) {
        if !ROLES.contains(&role.as_str()) {
            return Err(format!("role {role:?} is not a Ward role"));
        }
    }
    if let Some(pem) = &cfg.sp_certificate {
        let der = pem_body(pem).ok_or("sp_certificate is not a PEM certificate")?;
        samael::crypto::UrlVerifier::from_x509(&CertificateDer::from(der))
            .map_err(|_| "sp_certificate is not a valid X.509 certificate")?;
    }
    Ok(())
}

fn parse_config(
    config: &Value,
) -> Result<(SamlConfig, EntityDescriptor, Vec<CertificateDer>), String> {
    let cfg: SamlConfig = serde_json::from_value(config.clone())
        .map_err(|e| format!("invalid SAML provider config: {e}"))?;
    let idp: EntityDescriptor = cfg
        .idp_metadata_xml
        .parse()
        .map_err(|_| "idp_metadata_xml is not valid SAML metadata".to_string())?;
    if idp.entity_id.as_deref().is_none_or(str::is_empty) {
        return Err("the IdP metadata has no entityID".into());
    }
    if idp.idp_sso_descriptors.as_ref().is_none_or(Vec::is_empty) {
        return Err("the IdP metadata has no IDPSSODescriptor".into());
    }
    let probe = ServiceProvider {
        idp_metadata: idp.clone(),
        ..ServiceProvider::default()
    };
    let certs = probe
        .idp_signing_certs()
        .map_err(|_| "a certificate in the IdP metadata cannot be decoded".to_string())?
        .unwrap_or_default();
    if certs.is_empty() {
        return Err("the IdP metadata has no signing certificate: unsigned responses cannot be refused without one".into());
    }
    for cert in &certs {
        samael::crypto::UrlVerifier::from_x509(cert)
            .map_err(|_| "a signing certificate in the IdP metadata is not valid X.509")?;
    }
    if !cfg.allow_idp_initiated && probe.sso_binding_location(HTTP_REDIRECT_BINDING).is_none() {
        return Err("the IdP metadata has no HTTP-Redirect SingleSignOnService".into());
    }
    Ok((cfg, idp, certs))
}

/// The base64 body of a PEM block.
fn pem_body(pem: &str) -> Option<Vec<u8>> {
    let body: String = pem
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with("-----"))
        .collect();
    STANDARD.decode(body).ok().filter(|d| !d.is_empty())
}

/// A SAML provider ready to use: its config, the IdP metadata, and the samael SP.
pub struct SamlProvider {
    pub id: String,
    pub config: SamlConfig,
    pub entity_id: String,
    pub acs_url: String,
    pub slo_url: String,
    idp_certs: Vec<CertificateDer>,
    sp: ServiceProvider,
    key: Option<SpKey>,
}

impl SamlProvider {
    /// Loads an enabled SAML provider; unknown, disabled or non-SAML ids are 404.
    pub async fn load(state: &Ctx<'_>, id: &str) -> crate::auth::Result<Self> {
        let p = sso::find_provider(state, id)
            .await?
            .filter(|p| p.kind == ProviderKind::Saml && p.enabled)
            .ok_or_else(|| Error::not_found("no such SAML provider"))?;
        Self::from_provider(p, state.public_url)
    }

    /// A provider from its stored row, its endpoints under `public_url`.
    pub fn from_provider(p: sso::SsoProvider, public_url: &str) -> crate::auth::Result<Self> {
        let id = &p.id;
        let (config, idp, idp_certs) = parse_config(&p.config).map_err(|e| {
            Error::internal(format!("SAML provider {id} has an invalid config: {e}"))
        })?;
        let key = match &p.secret {
            None => None,
            Some(secret) => {
                use secrecy::ExposeSecret;
                Some(
                    SpKey::private_key_from_pem(secret.expose_secret().as_bytes()).map_err(
                        |_| {
                            Error::internal(format!(
                                "SAML provider {id}: the SP key is not a PEM private key"
                            ))
                        },
                    )?,
                )
            }
        };
        let certificate = config
            .sp_certificate
            .as_deref()
            .and_then(pem_body)
            .map(CertificateDer::from);
        let base = format!("{public_url}/auth/saml/{id}");
        let (entity_id, acs_url, slo_url) = (
            format!("{base}/metadata"),
            format!("{base}/acs"),
            format!("{base}/logout"),
        );
        let sp = ServiceProvider {
            entity_id: Some(entity_id.clone()),
            key: key.clone(),
            certificate,
            metadata_url: Some(entity_id.clone()),
            acs_url: Some(acs_url.clone()),
            slo_url: Some(slo_url.clone()),
            idp_metadata: idp,
            // InResponseTo is matched here against the flow store (single use), so samael
            // is told not to; see `accept`.
            allow_idp_initiated: true,
            max_issue_delay: Duration::seconds(MAX_ISSUE_DELAY_SECS),
            max_clock_skew: Duration::seconds(CLOCK_SKEW_SECS),
            allowed_signature_algorithms: Some(ALLOWED_SIGNATURES.to_vec()),
            ..ServiceProvider::default()
        };
        Ok(Self {
            id: p.id,
            config,
            entity_id,
            acs_url,
            slo_url,
            idp_certs,
            sp,
            key,
        })
    }

    fn idp_entity_id(&self) -> &str {
        self.sp
            .idp_metadata
            .entity_id
            .as_deref()
            .unwrap_or_default()
    }

    /// The SP metadata document (SAML Metadata §2.4.4): entity id, the POST ACS, the SLO
    /// endpoint in both bindings, and the SP certificate when there is one.
    pub fn metadata_xml(&self) -> crate::auth::Result<String> {
        let mut md = self.sp.metadata().map_err(Error::internal)?;
        if let Some(sp) = md.sp_sso_descriptors.as_mut().and_then(|d| d.first_mut()) {
            sp.authn_requests_signed = Some(self.key.is_some());
            sp.want_assertions_signed = Some(true);
            // samael labels both key descriptors "signing"; the one with encryption methods is
            // the encryption key (Metadata §2.4.1.1).
            for kd in sp.key_descriptors.iter_mut().flatten() {
                if kd.encryption_methods.is_some() {
                    kd.key_use = Some("encryption".into());
                }
            }
            sp.single_logout_services = Some(
                [HTTP_REDIRECT_BINDING, HTTP_POST_BINDING]
                    .iter()
                    .map(|b| samael::metadata::Endpoint {
                        binding: (*b).to_string(),
                        location: self.slo_url.clone(),
                        response_location: None,
                    })
                    .collect(),
            );
        }
        md.to_string().map_err(Error::internal)
    }
}

/// A fresh message ID: 128 random bits, an NCName (SAML Core §1.3.4).
fn new_id() -> String {
    format!("ward_{}", uuid::Uuid::new_v4().simple())
}

fn flow_key(kind: &str, id: &str) -> String {
    format!("saml:{kind}:{id}")
}

/// What Ward remembers of a request it sent, until the answer comes back.
#[derive(Serialize, Deserialize)]
struct Flow {
    provider: String,
    return_to: Option<String>,
}

/// Starts SP-initiated SSO: stores the AuthnRequest id (for InResponseTo) and returns the
/// IdP URL carrying the request in the HTTP-Redirect binding (Bindings §3.4), signed when the
/// provider has an SP key.
pub async fn start_login(
    state: &Ctx<'_>,
    p: &SamlProvider,
    return_to: Option<&str>,
) -> crate::auth::Result<String> {
    // As for OIDC: a return_to that is not a local path is refused here, before the user
    // signs in, rather than dropped after (a link carrying one is not Ward's own).
    if return_to.is_some_and(|r| !is_local_path(r)) {
        return Err(Error::input("return_to must be a path on this server"));
    }
    let sso_url =
        p.sp.sso_binding_location(HTTP_REDIRECT_BINDING)
            .ok_or_else(|| Error::not_found("this IdP has no HTTP-Redirect sign-on endpoint"))?;
    let mut req =
        p.sp.make_authentication_request(&sso_url)
            .map_err(Error::internal)?;
    req.id = new_id();
    let flow = Flow {
        provider: p.id.clone(),
        return_to: return_to.map(str::to_string),
    };
    let now = now_micros();
    state
        .store
        .identity
        .insert_flow(
            &flow_key("authn", &req.id),
            &serde_json::to_string(&flow).map_err(Error::internal)?,
            now + FLOW_TTL_SECS * 1_000_000,
            now,
        )
        .await?;
    let url = match &p.key {
        Some(key) => req.signed_redirect("", key),
        None => req.redirect(""),
    }
    .map_err(Error::internal)?
    .ok_or_else(|| Error::internal("the AuthnRequest has no destination"))?;
    tracing::info!(provider = %p.id, "SAML login {} started", p.id);
    Ok(url.to_string())
}

/// A refused message: the reason code, which goes to the audit log only. Every refusal
/// answers the same status and text ([`REFUSED`]): naming the check that failed (`wrapping`,
/// `audience`…) would guide an attacker through them one by one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Reject {
    pub reason: &'static str,
    /// Not the sender's fault (a store failure): a 500.
    internal: bool,
}

/// The one answer to every refused SAML message.
pub const REFUSED: &str = "SAML message refused";

const fn reject(reason: &'static str) -> Reject {
    Reject {
        reason,
        internal: false,
    }
}

/// A store failure while checking a message (not the sender's fault: a 500).
fn store_failure(e: impl std::fmt::Display) -> Reject {
    tracing::error!(error = %e, "the SAML replay, flow or session store failed");
    Reject {
        reason: "store",
        internal: true,
    }
}

impl Reject {
    fn into_error(self) -> Error {
        if self.internal {
            Error::internal("the SAML store failed")
        } else {
            Error::not_authenticated(REFUSED)
        }
    }
}

/// Decodes a base64 message of the POST binding (line breaks allowed) to UTF-8 text.
fn decode_post(b64: &str) -> Result<String, Reject> {
    let clean: String = b64.chars().filter(|c| !c.is_ascii_whitespace()).collect();
    if clean.len() > MAX_MESSAGE_BYTES * 4 / 3 + 4 {
        return Err(reject("too_large"));
    }
    let bytes = STANDARD.decode(clean).map_err(|_| reject("malformed"))?;
    xml_text(bytes)
}

/// A received message as UTF-8 text, or `encoding` (see [`xml::text`]).
fn xml_text(bytes: Vec<u8>) -> Result<String, Reject> {
    xml::text(bytes).map_err(xml_reject)
}

fn xml_reject(e: xml::XmlError) -> Reject {
    match e {
        xml::XmlError::Comment => reject("comment"),
        xml::XmlError::Declaration => reject("declaration"),
        xml::XmlError::Encoding => reject("encoding"),
        xml::XmlError::Malformed => reject("malformed"),
    }
}

fn read_xml(xml: &str) -> Result<Vec<xml::Element>, Reject> {
    xml::read(xml).map_err(xml_reject)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_inflater_reads_what_samael_deflates() {
        let sp = ServiceProvider::default();
        let req = sp
            .make_authentication_request("https://idp.example/sso")
            .unwrap();
        let url = req.redirect("").unwrap().unwrap();
        let encoded = url
            .query_pairs()
            .find(|(k, _)| k == "SAMLRequest")
            .unwrap()
            .1
            .to_string();
        let raw = STANDARD.decode(encoded).unwrap();
        let xml = deflate::inflate(&raw, MAX_MESSAGE_BYTES).unwrap();
        assert_eq!(String::from_utf8(xml).unwrap(), req.to_string().unwrap());
    }
}
