//! The assertion consumer service (SAML Profiles §4.1.4, HTTP-POST binding): the raw
//! message's shape, samael's verification, then the checks samael leaves out, the replay
//! cache, the request the response answers, and the mapping to a Ward identity.

use axum::response::Response;
use chrono::{DateTime, Duration, Utc};
use samael::schema::Assertion;
use samael::service_provider::{Error as SamlError, ServiceProvider};
use serde::{Deserialize, Serialize};
use serde_json::json;

use super::{
    CLOCK_SKEW_SECS, Flow, Reject, STATUS_SUCCESS, SamlProvider, check_algorithms, decode_post,
    flow_key, read_xml, reject, store_failure, with_xmlsec, xml, xml_text,
};
use crate::auth::Ctx;
use crate::auth::sso::{self, ExternalLogin, is_local_path};
use crate::time::now_micros;

const BEARER: &str = "urn:oasis:names:tc:SAML:2.0:cm:bearer";
const TRANSIENT: &str = "urn:oasis:names:tc:SAML:2.0:nameid-format:transient";

/// The ACS form (HTTP-POST binding, Bindings §3.5.4).
#[derive(Deserialize)]
struct AcsForm {
    #[serde(rename = "SAMLResponse")]
    saml_response: String,
    #[serde(rename = "RelayState")]
    relay_state: Option<String>,
}

/// The assertion consumer service: verifies the Response and, if it holds, logs the user in
/// through [`sso::complete_login`]. Every rejection is audited with its reason.
pub async fn finish_login(
    state: &Ctx<'_>,
    limit: &dyn sso::LoginLimit,
    provider_id: &str,
    body: &[u8],
) -> crate::auth::Result<Response> {
    let p = match SamlProvider::load(state, provider_id).await {
        Ok(p) => p,
        Err(e) => {
            if matches!(e, crate::auth::Error::NotFound(_)) {
                sso::record_failure(state, &audit_id(provider_id), "saml", "unknown_provider")
                    .await;
            }
            return Err(e);
        }
    };
    match accept(state, &p, body).await {
        Ok((login, return_to)) => {
            sso::complete_login(state, limit, login, return_to.as_deref()).await
        }
        Err(r) => {
            // The reason goes to the audit log; the answer is the same for every refusal.
            tracing::debug!(provider = %p.id, reason = r.reason, "SAML login rejected");
            sso::record_failure(state, &p.id, "saml", r.reason).await;
            Err(r.into_error())
        }
    }
}

/// A provider id from the path, fit for the audit log.
fn audit_id(id: &str) -> String {
    if id.len() <= 64
        && id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
    {
        id.to_string()
    } else {
        "(invalid)".into()
    }
}

/// What the raw Response says about itself before verification (used only to refuse).
struct Shape {
    destination: Option<String>,
    in_response_to: Option<String>,
}

/// The structural checks of a raw Response: one assertion, a direct child of the Response
/// (XML signature wrapping puts a second one somewhere, or moves the signed one); signatures
/// only where SAML puts them (Core §5.3); allow-listed algorithms; a success status.
fn check_shape(els: &[xml::Element]) -> Result<Shape, Reject> {
    let root = &els[0];
    if root.local != "Response" {
        return Err(reject("malformed"));
    }
    if let Some(status) = els
        .iter()
        .find(|e| e.local == "StatusCode" && e.depth == 2 && e.parent.as_deref() == Some("Status"))
        && status.attr("Value") != Some(STATUS_SUCCESS)
    {
        return Err(reject("idp_status"));
    }
    let assertions: Vec<&xml::Element> = els
        .iter()
        .filter(|e| e.local == "Assertion" || e.local == "EncryptedAssertion")
        .collect();
    match assertions.as_slice() {
        [] => return Err(reject("no_assertion")),
        [one] if one.depth == 1 => {}
        _ => return Err(reject("wrapping")),
    }
    let encrypted = assertions[0].local == "EncryptedAssertion";
    let signatures: Vec<&xml::Element> = els.iter().filter(|e| e.local == "Signature").collect();
    if signatures.is_empty() {
        return Err(reject("unsigned"));
    }
    for s in &signatures {
        let placed = match s.parent.as_deref() {
            Some("Response") => s.depth == 1,
            Some("Assertion") => s.depth == 2,
            _ => false,
        };
        if !placed {
            return Err(reject("wrapping"));
        }
    }
    // An encrypted assertion's own signature is inside the ciphertext: the Response must
    // be signed (its signature covers the ciphertext and is checked before decryption).
    if encrypted && !signatures.iter().any(|s| s.depth == 1) {
        return Err(reject("unsigned"));
    }
    check_algorithms(els)?;
    Ok(Shape {
        destination: root.attr("Destination").map(str::to_string),
        in_response_to: root.attr("InResponseTo").map(str::to_string),
    })
}

/// samael's verdicts as reason codes.
fn reason_of(e: &SamlError) -> Reject {
    match e {
        SamlError::FailedToValidateSignature => reject("bad_signature"),
        SamlError::DestinationValidationError { .. }
        | SamlError::AssertionRecipientMismatch { .. } => reject("recipient"),
        SamlError::AssertionExpired { .. }
        | SamlError::ResponseExpired { .. }
        | SamlError::AssertionConditionExpired { .. }
        | SamlError::AssertionSubjectConfirmationExpired { .. } => reject("expired"),
        SamlError::AssertionConditionExpiredBefore { .. }
        | SamlError::AssertionSubjectConfirmationExpiredBefore { .. } => reject("not_yet_valid"),
        SamlError::AssertionIssuerMismatch { .. } | SamlError::ResponseIssuerMismatch { .. } => {
            reject("issuer")
        }
        SamlError::AssertionConditionAudienceRestrictionFailed { .. } => reject("audience"),
        SamlError::AssertionInResponseToInvalid { .. }
        | SamlError::ResponseInResponseToInvalid { .. } => reject("in_response_to"),
        SamlError::ResponseBadStatusCode { .. } => reject("idp_status"),
        SamlError::AssertionBearerSubjectConfirmationMissing
        | SamlError::AssertionSubjectConfirmationMissing => reject("subject_confirmation"),
        SamlError::MissingPrivateKeySP
        | SamlError::FailedToDecryptAssertion
        | SamlError::EncryptedAssertionInvalid
        | SamlError::MissingEncryptedKeyInfo
        | SamlError::MissingEncryptedValueInfo
        | SamlError::EncryptedAssertionKeyMethodUnsupported { .. }
        | SamlError::EncryptedAssertionValueMethodUnsupported { .. }
        | SamlError::EncryptedAssertionsNotYetSupported => reject("decryption"),
        _ => reject("malformed"),
    }
}

/// The checks samael leaves out, on the verified assertion: a future IssueInstant, the
/// audience restriction required (Profiles §4.1.4.2), the bearer confirmation whose
/// InResponseTo counts, the Response's own Destination and InResponseTo, a NameID.
/// Returns the InResponseTo and when the assertion stops being usable (for the replay cache).
fn check_assertion(
    p: &SamlProvider,
    a: &Assertion,
    shape: &Shape,
    now: DateTime<Utc>,
) -> Result<(Option<String>, DateTime<Utc>), Reject> {
    let skew = Duration::seconds(CLOCK_SKEW_SECS);
    if a.issue_instant > now + skew {
        return Err(reject("not_yet_valid"));
    }
    let restrictions = a
        .conditions
        .as_ref()
        .and_then(|c| c.audience_restrictions.as_ref())
        .filter(|r| !r.is_empty())
        .ok_or(reject("audience"))?;
    if !restrictions
        .iter()
        .all(|r| r.audience.contains(&p.entity_id))
    {
        return Err(reject("audience"));
    }
    if shape.destination.as_deref().is_some_and(|d| d != p.acs_url) {
        return Err(reject("recipient"));
    }
    let subject = a.subject.as_ref().ok_or(reject("subject"))?;
    if subject.name_id.as_ref().is_none_or(|n| n.value.is_empty()) {
        return Err(reject("subject"));
    }
    // The first bearer confirmation samael accepted (same rules, SAML Profiles §4.1.4.2).
    let confirmation = subject
        .subject_confirmations
        .iter()
        .flatten()
        .filter(|c| c.method.as_deref() == Some(BEARER))
        .filter_map(|c| c.subject_confirmation_data.as_ref())
        .find(|d| {
            d.recipient.as_deref() == Some(p.acs_url.as_str())
                && d.not_before.is_none_or(|nb| now >= nb - skew)
                && d.not_on_or_after.is_some_and(|na| now < na + skew)
        })
        .ok_or(reject("subject_confirmation"))?;
    let in_response_to = confirmation.in_response_to.clone();
    if shape.in_response_to.is_some() && shape.in_response_to != in_response_to {
        return Err(reject("in_response_to"));
    }
    let mut until = confirmation.not_on_or_after.unwrap_or(now);
    if let Some(na) = a.conditions.as_ref().and_then(|c| c.not_on_or_after) {
        until = until.max(na);
    }
    Ok((in_response_to, until + skew))
}

/// The posted form, its Response as text, and the Response's shape: everything checked
/// before xmlsec sees the message.
fn read_response(body: &[u8]) -> Result<(AcsForm, String, Shape), Reject> {
    let form: AcsForm = serde_urlencoded::from_bytes(body).map_err(|_| reject("malformed"))?;
    let xml = decode_post(&form.saml_response)?;
    let shape = check_shape(&read_xml(&xml)?)?;
    Ok((form, xml, shape))
}

/// samael's verification through xmlsec: the signature under the IdP's key, and the time,
/// issuer, recipient and destination conditions.
fn verify_signed(sp: &ServiceProvider, xml: &str) -> Result<Assertion, Reject> {
    with_xmlsec(|| sp.parse_xml_response(xml, None)).map_err(|e| reason_of(&e))
}

/// The ACS checks that need no store, in order: the form, the pre-read, xmlsec, then
/// [`check_assertion`] at `now`. The fuzz target `saml_acs` drives it with attacker-made
/// bodies (the replay cache and the request store come after, in `accept`).
#[doc(hidden)]
pub fn check_response(p: &SamlProvider, body: &[u8], now: DateTime<Utc>) -> Result<(), Reject> {
    let (_, xml, shape) = read_response(body)?;
    let assertion = verify_signed(&p.sp, &xml)?;
    check_assertion(p, &assertion, &shape, now).map(|_| ())
}

/// The pre-read of a Response's raw bytes, as [`read_response`] runs it on the decoded
/// message (UTF-8, the strict reader, the shape and algorithm allow-lists); the fuzz target
/// `saml_preparse`.
#[doc(hidden)]
pub fn preparse(xml: Vec<u8>) -> Result<(), Reject> {
    check_shape(&read_xml(&xml_text(xml)?)?).map(|_| ())
}

/// Verifies a posted Response; returns the identity and where to go after login.
async fn accept(
    state: &Ctx<'_>,
    p: &SamlProvider,
    body: &[u8],
) -> Result<(ExternalLogin, Option<String>), Reject> {
    let (form, xml, shape) = read_response(body)?;
    let sp = p.sp.clone();
    let assertion = tokio::task::spawn_blocking(move || verify_signed(&sp, &xml))
        .await
        .map_err(|_| reject("malformed"))??;
    let now = Utc::now();
    let (in_response_to, until) = check_assertion(p, &assertion, &shape, now)?;
    let now_us = now_micros();
    let fresh = state
        .store
        .identity
        .insert_replay(
            &format!("{}:{}", p.id, assertion.id),
            until.timestamp_micros(),
            now_us,
        )
        .await
        .map_err(store_failure)?;
    if !fresh {
        return Err(reject("replay"));
    }
    let return_to = match &in_response_to {
        Some(id) => {
            let flow = state
                .store
                .identity
                .take_flow(&flow_key("authn", id), now_us)
                .await
                .map_err(store_failure)?
                .and_then(|data| serde_json::from_str::<Flow>(&data).ok())
                .filter(|f| f.provider == p.id)
                .ok_or(reject("in_response_to"))?;
            flow.return_to
        }
        None if p.config.allow_idp_initiated => form.relay_state.filter(|r| is_local_path(r)),
        None => return Err(reject("unsolicited")),
    };
    Ok((identity(p, &assertion)?, return_to))
}

/// All values of the attribute named (or friendly-named) `name`, in the IdP's order.
fn attribute_values<'a>(a: &'a Assertion, name: &str) -> Vec<&'a str> {
    a.attribute_statements
        .iter()
        .flatten()
        .flat_map(|s| &s.attributes)
        .filter(|attr| {
            attr.name.as_deref() == Some(name) || attr.friendly_name.as_deref() == Some(name)
        })
        .flat_map(|attr| &attr.values)
        .filter_map(|v| v.value.as_deref())
        .collect()
}

/// What Ward keeps in the session to send a LogoutRequest later (Core §3.7.1 needs the
/// NameID as issued and the SessionIndex); stored in the session's `saml_session_index`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct SloInfo {
    pub name_id: String,
    #[serde(default)]
    pub format: Option<String>,
    #[serde(default)]
    pub session_index: Option<String>,
}

/// Maps a verified assertion to a Ward identity: the user id (NameID or an attribute, taken
/// literally: never trimmed or truncated), the role from the first mapped value, the name.
fn identity(p: &SamlProvider, a: &Assertion) -> Result<ExternalLogin, Reject> {
    let name_id = a
        .subject
        .as_ref()
        .and_then(|s| s.name_id.as_ref())
        .ok_or(reject("subject"))?;
    let user_id = match &p.config.user_id_attribute {
        None => {
            // A transient NameID changes at every login (Core §8.3.8): not a user id.
            if name_id.format.as_deref() == Some(TRANSIENT) {
                return Err(reject("transient_name_id"));
            }
            name_id.value.clone()
        }
        Some(attr) => match attribute_values(a, attr).as_slice() {
            [one] => (*one).to_string(),
            _ => return Err(reject("user_id")),
        },
    };
    if crate::chat::validate_user_id(&user_id).is_err() {
        return Err(reject("user_id"));
    }
    let role = p
        .config
        .role_attribute
        .as_deref()
        .and_then(|attr| {
            attribute_values(a, attr)
                .into_iter()
                .find_map(|v| p.config.role_map.get(v))
        })
        .or(p.config.default_role.as_ref())
        .cloned();
    let name = p
        .config
        .name_attribute
        .as_deref()
        .and_then(|attr| attribute_values(a, attr).first().map(|v| (*v).to_string()));
    let session_index = a
        .authn_statements
        .iter()
        .flatten()
        .find_map(|s| s.session_index.clone());
    let slo = SloInfo {
        name_id: name_id.value.clone(),
        format: name_id.format.clone(),
        session_index,
    };
    Ok(ExternalLogin {
        provider_id: p.id.clone(),
        method: "saml",
        subject: name_id.value.clone(),
        user_id,
        role,
        name,
        saml_session_index: Some(json!(slo).to_string()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shape_refuses_wrapping_and_weak_algorithms() {
        let ok = r##"<p:Response xmlns:p="urn:p" Destination="d"><a:Assertion xmlns:a="urn:a"><ds:Signature xmlns:ds="urn:ds"><ds:SignedInfo><ds:SignatureMethod Algorithm="http://www.w3.org/2001/04/xmldsig-more#rsa-sha256"/><ds:Reference URI="#x"><ds:DigestMethod Algorithm="http://www.w3.org/2001/04/xmlenc#sha256"/></ds:Reference></ds:SignedInfo></ds:Signature></a:Assertion></p:Response>"##;
        let shape = check_shape(&xml::read(ok).unwrap()).unwrap();
        assert_eq!(shape.destination.as_deref(), Some("d"));
        let two = ok.replace(
            "</p:Response>",
            r#"<a:Assertion xmlns:a="urn:a"/></p:Response>"#,
        );
        assert_eq!(
            check_shape(&xml::read(&two).unwrap()).err(),
            Some(reject("wrapping"))
        );
        let sha1 = ok.replace("xmlenc#sha256", "xmldsig#sha1");
        assert_eq!(
            check_shape(&xml::read(&sha1).unwrap()).err(),
            Some(reject("algorithm"))
        );
        let unsigned = r#"<p:Response xmlns:p="urn:p"><a:Assertion xmlns:a="urn:a"/></p:Response>"#;
        assert_eq!(
            check_shape(&xml::read(unsigned).unwrap()).err(),
            Some(reject("unsigned"))
        );
    }
}
