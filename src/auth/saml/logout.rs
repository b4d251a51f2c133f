//! Single Logout (SAML Profiles §4.4) at `/auth/saml/{provider}/logout`:
//! - SP-initiated (a plain GET): the Ward session is revoked and its cookie cleared first,
//!   then, when the session came from this IdP and its metadata has an HTTP-Redirect
//!   SingleLogoutService, the browser is sent there with a LogoutRequest (Core §3.7.1);
//! - the IdP's LogoutResponse (`SAMLResponse`, Redirect or POST binding) ends that flow: it
//!   must answer a LogoutRequest Ward sent (single use) and only chooses the local page to
//!   return to. Its signature is not checked: it grants nothing (the session already ended);
//! - an IdP-initiated LogoutRequest (`SAMLRequest`) must be signed by the IdP's metadata key
//!   (Profiles §4.4.4.1): the query signature in the Redirect binding (Bindings §3.4.4.1),
//!   the XML signature in the POST binding. It revokes the matching sessions and is answered
//!   with a LogoutResponse (Core §3.7.2).

use std::collections::HashMap;

use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use chrono::{DateTime, Duration, SecondsFormat, Utc};
use samael::crypto::{CryptoProvider, ReduceMode};
use samael::metadata::HTTP_REDIRECT_BINDING;
use serde_json::json;

use super::{
    ALLOWED_SIGNATURES, CLOCK_SKEW_SECS, FLOW_TTL_SECS, Flow, MAX_ISSUE_DELAY_SECS,
    MAX_MESSAGE_BYTES, Reject, STATUS_SUCCESS, SamlProvider, SloInfo, check_algorithms,
    decode_post, deflate, flow_key, new_id, read_xml, reject, store_failure, with_xmlsec, xml_text,
};
use crate::auth::Ctx;
use crate::auth::error::Error;
use crate::auth::session;
use crate::auth::sso::is_local_path;
use crate::time::now_micros;

/// How the message (if any) arrived.
pub enum Binding<'a> {
    /// A GET: the raw query string (signatures are over it as received).
    Redirect(&'a str),
    /// A POST: the form body.
    Post(&'a [u8]),
}

/// The logout endpoint.
pub async fn logout(
    state: &Ctx<'_>,
    provider_id: &str,
    headers: &HeaderMap,
    binding: Binding<'_>,
) -> crate::auth::Result<Response> {
    let p = SamlProvider::load(state, provider_id).await?;
    let params: HashMap<String, String> = match &binding {
        Binding::Redirect(q) => serde_urlencoded::from_str(q),
        Binding::Post(body) => serde_urlencoded::from_bytes(body),
    }
    .map_err(|_| Error::input("the logout parameters are not valid"))?;
    let result = if let Some(request) = params.get("SAMLRequest") {
        idp_request(
            state,
            &p,
            headers,
            &binding,
            request,
            params.get("RelayState"),
        )
        .await
    } else if let Some(response) = params.get("SAMLResponse") {
        idp_response(state, &p, &binding, response).await
    } else if matches!(binding, Binding::Redirect(_)) {
        return sp_logout(
            state,
            &p,
            headers,
            params.get("return_to").map(String::as_str),
        )
        .await;
    } else {
        Err(reject("malformed"))
    };
    result.map_err(|r| {
        // The reason is one of Ward's codes, never message content.
        tracing::debug!(provider = %p.id, reason = r.reason, "SAML logout message rejected");
        r.into_error()
    })
}

/// The IdP's HTTP-Redirect SingleLogoutService: (Location, ResponseLocation or Location).
fn idp_slo(p: &SamlProvider) -> Option<(String, String)> {
    p.sp.idp_metadata
        .idp_sso_descriptors
        .iter()
        .flatten()
        .flat_map(|d| &d.single_logout_services)
        .find(|e| e.binding == HTTP_REDIRECT_BINDING)
        .map(|e| {
            let response = e
                .response_location
                .clone()
                .unwrap_or_else(|| e.location.clone());
            (e.location.clone(), response)
        })
}

async fn sp_logout(
    state: &Ctx<'_>,
    p: &SamlProvider,
    headers: &HeaderMap,
    return_to: Option<&str>,
) -> crate::auth::Result<Response> {
    let current = session::from_headers(state, headers).await?;
    let mut slo = None;
    if let Some(s) = &current {
        session::revoke(state, &s.id_hash, &s.user.id, Some(&s.user.id), "logout").await?;
        if s.provider.as_deref() == Some(p.id.as_str()) {
            slo = s
                .saml_session_index
                .as_deref()
                .and_then(|v| serde_json::from_str::<SloInfo>(v).ok());
        }
    }
    let return_to = return_to.filter(|r| is_local_path(r)).map(str::to_string);
    let target = match (slo, idp_slo(p)) {
        (Some(info), Some((location, _))) => {
            let id = new_id();
            let flow = Flow {
                provider: p.id.clone(),
                return_to: return_to.clone(),
            };
            let now = now_micros();
            state
                .store
                .identity
                .insert_flow(
                    &flow_key("logout", &id),
                    &serde_json::to_string(&flow).map_err(Error::internal)?,
                    now + FLOW_TTL_SECS * 1_000_000,
                    now,
                )
                .await?;
            let xml = logout_request_xml(p, &id, &location, &info);
            tracing::info!(provider = %p.id, "SAML logout {} sent to the IdP", p.id);
            Some(redirect_url(p, &location, "SAMLRequest", &xml, None)?)
        }
        _ => return_to,
    };
    let mut res = match target {
        Some(url) => see_other(&url)?,
        None => axum::Json(json!({ "logged_out": current.is_some() })).into_response(),
    };
    res.headers_mut()
        .append(header::SET_COOKIE, session::clear_cookie());
    Ok(res)
}

fn see_other(location: &str) -> crate::auth::Result<Response> {
    let mut res = StatusCode::SEE_OTHER.into_response();
    res.headers_mut().insert(
        header::LOCATION,
        HeaderValue::from_str(location).map_err(Error::internal)?,
    );
    Ok(res)
}

/// XML text and attribute escaping.
fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\'', "&apos;")
}

fn instant() -> String {
    Utc::now().to_rfc3339_opts(SecondsFormat::Secs, true)
}

/// A LogoutRequest (Core §3.7.1) for the NameID and SessionIndex of the login.
fn logout_request_xml(p: &SamlProvider, id: &str, destination: &str, info: &SloInfo) -> String {
    let format = info
        .format
        .as_deref()
        .map(|f| format!(" Format=\"{}\"", esc(f)))
        .unwrap_or_default();
    let index = info
        .session_index
        .as_deref()
        .map(|i| format!("<samlp:SessionIndex>{}</samlp:SessionIndex>", esc(i)))
        .unwrap_or_default();
    format!(
        "<samlp:LogoutRequest xmlns:samlp=\"urn:oasis:names:tc:SAML:2.0:protocol\" \
         xmlns:saml=\"urn:oasis:names:tc:SAML:2.0:assertion\" ID=\"{id}\" Version=\"2.0\" \
         IssueInstant=\"{}\" Destination=\"{}\"><saml:Issuer>{}</saml:Issuer>\
         <saml:NameID{format}>{}</saml:NameID>{index}</samlp:LogoutRequest>",
        instant(),
        esc(destination),
        esc(&p.entity_id),
        esc(&info.name_id),
    )
}

/// A LogoutResponse (Core §3.7.2) with a success status.
fn logout_response_xml(p: &SamlProvider, in_response_to: &str, destination: &str) -> String {
    format!(
        "<samlp:LogoutResponse xmlns:samlp=\"urn:oasis:names:tc:SAML:2.0:protocol\" \
         xmlns:saml=\"urn:oasis:names:tc:SAML:2.0:assertion\" ID=\"{}\" Version=\"2.0\" \
         IssueInstant=\"{}\" Destination=\"{}\" InResponseTo=\"{}\">\
         <saml:Issuer>{}</saml:Issuer><samlp:Status><samlp:StatusCode \
         Value=\"{STATUS_SUCCESS}\"/></samlp:Status></samlp:LogoutResponse>",
        new_id(),
        instant(),
        esc(destination),
        esc(in_response_to),
        esc(&p.entity_id),
    )
}

/// `location` with the message in the HTTP-Redirect binding (deflated, base64, signed over
/// the query when the provider has an SP key: Bindings §3.4.4.1).
fn redirect_url(
    p: &SamlProvider,
    location: &str,
    param: &str,
    xml: &str,
    relay_state: Option<&str>,
) -> crate::auth::Result<String> {
    let message = STANDARD.encode(deflate::deflate(xml.as_bytes()));
    let mut pairs = vec![(param, message.as_str())];
    if let Some(r) = relay_state {
        pairs.push(("RelayState", r));
    }
    let query = serde_urlencoded::to_string(pairs).map_err(Error::internal)?;
    let sep = if location.contains('?') { '&' } else { '?' };
    let url = format!("{location}{sep}{query}");
    match &p.key {
        None => Ok(url),
        Some(key) => {
            let parsed = url
                .parse()
                .map_err(|_| Error::internal("the IdP logout URL is not a URL"))?;
            Ok(samael::crypto::sign_url(parsed, key)
                .map_err(Error::internal)?
                .to_string())
        }
    }
}

/// What a verified LogoutRequest asks for.
struct LogoutRequest {
    id: String,
    name_id: String,
    session_indexes: Vec<String>,
}

async fn idp_request(
    state: &Ctx<'_>,
    p: &SamlProvider,
    headers: &HeaderMap,
    binding: &Binding<'_>,
    message: &str,
    relay_state: Option<&String>,
) -> Result<Response, Reject> {
    let xml = match binding {
        Binding::Redirect(raw_query) => verified_redirect_request(p, raw_query, message)?,
        Binding::Post(_) => verified_post_request(p, message).await?,
    };
    let req = read_logout_request(p, &xml, Utc::now())?;
    // The session of this browser, when it is the one being logged out.
    if let Some(s) = session::from_headers(state, headers)
        .await
        .map_err(store_failure)?
        && s.provider.as_deref() == Some(p.id.as_str())
        && let Some(info) = s
            .saml_session_index
            .as_deref()
            .and_then(|v| serde_json::from_str::<SloInfo>(v).ok())
        && info.name_id == req.name_id
        && (req.session_indexes.is_empty()
            || info
                .session_index
                .as_ref()
                .is_some_and(|i| req.session_indexes.contains(i)))
    {
        session::revoke(state, &s.id_hash, &s.user.id, None, "idp_logout")
            .await
            .map_err(store_failure)?;
    }
    // Where the NameID is the Ward user id, every session of that user ends (the IdP
    // session is gone; a back-channel request carries no cookie).
    if p.config.user_id_attribute.is_none() && crate::chat::validate_user_id(&req.name_id).is_ok() {
        session::revoke_all(state, &req.name_id, None, "idp_logout")
            .await
            .map_err(store_failure)?;
    }
    tracing::info!(provider = %p.id, "SAML IdP-initiated logout from {} accepted", p.id);
    let mut res = match idp_slo(p) {
        Some((_, response_location)) => {
            let xml = logout_response_xml(p, &req.id, &response_location);
            let url = redirect_url(
                p,
                &response_location,
                "SAMLResponse",
                &xml,
                relay_state.map(String::as_str),
            )
            .map_err(|_| reject("malformed"))?;
            see_other(&url).map_err(|_| reject("malformed"))?
        }
        None => axum::Json(json!({ "logged_out": true })).into_response(),
    };
    res.headers_mut()
        .append(header::SET_COOKIE, session::clear_cookie());
    Ok(res)
}

/// The Redirect binding: the query signature over `SAMLRequest`, `RelayState` and `SigAlg`
/// as received, with an IdP metadata certificate; then the inflated XML.
fn verified_redirect_request(
    p: &SamlProvider,
    raw_query: &str,
    message: &str,
) -> Result<String, Reject> {
    let params: HashMap<String, String> =
        serde_urlencoded::from_str(raw_query).map_err(|_| reject("malformed"))?;
    let (Some(sig_alg), Some(_)) = (params.get("SigAlg"), params.get("Signature")) else {
        return Err(reject("unsigned"));
    };
    // The algorithms samael's URL verifier implements (it panics on others), both SHA-256.
    if ![
        "http://www.w3.org/2001/04/xmldsig-more#rsa-sha256",
        "http://www.w3.org/2001/04/xmldsig-more#ecdsa-sha256",
    ]
    .contains(&sig_alg.as_str())
    {
        return Err(reject("algorithm"));
    }
    let uri = format!("/?{raw_query}");
    let verified = p.idp_certs.iter().any(|cert| {
        samael::crypto::UrlVerifier::from_x509(cert)
            .and_then(|v| v.verify_percent_encoded_request_uri_string(&uri))
            .unwrap_or(false)
    });
    if !verified {
        return Err(reject("bad_signature"));
    }
    let raw = STANDARD.decode(message).map_err(|_| reject("malformed"))?;
    let xml = deflate::inflate(&raw, MAX_MESSAGE_BYTES).map_err(|_| reject("malformed"))?;
    xml_text(xml)
}

/// The POST binding: the XML signature with an IdP metadata certificate; returns only the
/// signed content (what xmlsec verified), so nothing unsigned is read after this.
async fn verified_post_request(p: &SamlProvider, message: &str) -> Result<String, Reject> {
    let xml = decode_post(message)?;
    let els = read_xml(&xml)?;
    let signatures: Vec<&super::xml::Element> =
        els.iter().filter(|e| e.local == "Signature").collect();
    match signatures.as_slice() {
        [] => return Err(reject("unsigned")),
        [one] if one.depth == 1 => {}
        _ => return Err(reject("wrapping")),
    }
    check_algorithms(&els)?;
    let certs = p.idp_certs.clone();
    tokio::task::spawn_blocking(move || {
        with_xmlsec(|| {
            samael::crypto::Crypto::reduce_xml_to_signed_with_allowed_algorithms(
                &xml,
                &certs,
                ReduceMode::ValidateAndMarkNoAncestors,
                Some(ALLOWED_SIGNATURES),
            )
        })
    })
    .await
    .map_err(|_| reject("malformed"))?
    .map_err(|_| reject("bad_signature"))
}

/// Reads a LogoutRequest whose signature has been checked: the issuer, destination and
/// validity window (Core §3.7.1, §3.2.2), the NameID and SessionIndexes.
fn read_logout_request(
    p: &SamlProvider,
    xml: &str,
    now: DateTime<Utc>,
) -> Result<LogoutRequest, Reject> {
    let els = read_xml(xml)?;
    let root = &els[0];
    if root.local != "LogoutRequest" {
        return Err(reject("malformed"));
    }
    let child = |local: &str| els.iter().find(|e| e.depth == 1 && e.local == local);
    if child("Issuer").is_none_or(|i| i.text.trim() != p.idp_entity_id()) {
        return Err(reject("issuer"));
    }
    if root.attr("Destination").is_some_and(|d| d != p.slo_url) {
        return Err(reject("recipient"));
    }
    let time = |name: &str| -> Result<Option<DateTime<Utc>>, Reject> {
        root.attr(name)
            .map(|t| DateTime::parse_from_rfc3339(t).map(|t| t.with_timezone(&Utc)))
            .transpose()
            .map_err(|_| reject("malformed"))
    };
    let skew = Duration::seconds(CLOCK_SKEW_SECS);
    let issued = time("IssueInstant")?.ok_or(reject("malformed"))?;
    if issued > now + skew {
        return Err(reject("not_yet_valid"));
    }
    if issued + Duration::seconds(MAX_ISSUE_DELAY_SECS) < now
        || time("NotOnOrAfter")?.is_some_and(|t| t + skew <= now)
    {
        return Err(reject("expired"));
    }
    let id = root
        .attr("ID")
        .filter(|id| !id.is_empty())
        .ok_or(reject("malformed"))?
        .to_string();
    let name_id = child("NameID")
        .map(|n| n.text.clone())
        .filter(|n| !n.is_empty())
        .ok_or(reject("subject"))?;
    let session_indexes = els
        .iter()
        .filter(|e| e.depth == 1 && e.local == "SessionIndex")
        .map(|e| e.text.trim().to_string())
        .collect();
    Ok(LogoutRequest {
        id,
        name_id,
        session_indexes,
    })
}

/// The IdP's answer to Ward's LogoutRequest: ends the flow and returns to its page.
async fn idp_response(
    state: &Ctx<'_>,
    p: &SamlProvider,
    binding: &Binding<'_>,
    message: &str,
) -> Result<Response, Reject> {
    let xml = match binding {
        Binding::Redirect(_) => {
            let raw = STANDARD.decode(message).map_err(|_| reject("malformed"))?;
            let xml = deflate::inflate(&raw, MAX_MESSAGE_BYTES).map_err(|_| reject("malformed"))?;
            xml_text(xml)?
        }
        Binding::Post(_) => decode_post(message)?,
    };
    let els = read_xml(&xml)?;
    if els[0].local != "LogoutResponse" {
        return Err(reject("malformed"));
    }
    let in_response_to = els[0]
        .attr("InResponseTo")
        .ok_or(reject("in_response_to"))?;
    let flow = state
        .store
        .identity
        .take_flow(&flow_key("logout", in_response_to), now_micros())
        .await
        .map_err(store_failure)?
        .and_then(|data| serde_json::from_str::<Flow>(&data).ok())
        .filter(|f| f.provider == p.id)
        .ok_or(reject("in_response_to"))?;
    let status = els
        .iter()
        .find(|e| e.local == "StatusCode" && e.depth == 2)
        .and_then(|e| e.attr("Value"));
    if status != Some(STATUS_SUCCESS) {
        // The Ward session ended regardless; the IdP may keep its own (partial logout). The
        // status is not logged: this message is unsigned, its text the sender's choice.
        tracing::warn!(provider = %p.id, "SAML logout at the IdP did not fully succeed");
    }
    match flow.return_to {
        Some(path) => see_other(&path).map_err(|_| reject("malformed")),
        None => Ok(axum::Json(json!({ "logged_out": true })).into_response()),
    }
}
