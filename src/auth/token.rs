//! HS256 JSON Web Tokens as Stream issues them (RFC 7519, RFC 7515 §3.1 compact form).
//!
//! A user token carries `{"user_id": "…"}` and optionally `exp`/`iat`/`nbf`; a server token
//! carries `{"server": true}`. Verification maps each failure to Stream's error code:
//! 40 expired, 41 not valid yet, 42 used before `iat`, 43 bad signature.

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use hmac::{Hmac, Mac};
use serde::Deserialize;
use sha2::Sha256;

use super::error::TokenError;

type HmacSha256 = Hmac<Sha256>;

/// Clock skew tolerated on `exp`, `nbf` and `iat`, in seconds.
const LEEWAY_SECS: i64 = 5;

#[derive(Debug, Clone, Default, Deserialize)]
pub struct Claims {
    pub user_id: Option<String>,
    #[serde(default)]
    pub server: bool,
    pub exp: Option<i64>,
    pub iat: Option<i64>,
    pub nbf: Option<i64>,
    /// Set on tokens from `POST /auth/chat-token`: the interactive session they belong to
    /// (the session's row key); such a token dies with its session.
    pub sid: Option<String>,
}

#[derive(Deserialize)]
struct Header {
    alg: String,
}

/// Signs `claims` (a JSON object) with HS256.
pub fn sign(claims: &serde_json::Value, secret: &[u8]) -> String {
    let header = URL_SAFE_NO_PAD.encode(br#"{"alg":"HS256","typ":"JWT"}"#);
    let payload = URL_SAFE_NO_PAD.encode(claims.to_string());
    let signing_input = format!("{header}.{payload}");
    let mut mac = HmacSha256::new_from_slice(secret).expect("HMAC accepts any key length");
    mac.update(signing_input.as_bytes());
    let sig = URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes());
    format!("{signing_input}.{sig}")
}

/// A user token, as the server SDK's `createToken(user_id, exp?, iat?)` makes it.
pub fn user_token(user_id: &str, exp: Option<i64>, secret: &[u8]) -> String {
    let mut claims = serde_json::json!({ "user_id": user_id });
    if let Some(exp) = exp {
        claims["exp"] = exp.into();
    }
    sign(&claims, secret)
}

/// A server token (`{"server": true}`), as the server SDK sends it.
pub fn server_token(secret: &[u8]) -> String {
    sign(&serde_json::json!({ "server": true }), secret)
}

/// Verifies `token` and returns its claims. `now` is the current Unix time in seconds.
pub fn verify(
    token: &str,
    secret: &[u8],
    dev_tokens: bool,
    now: i64,
) -> Result<Claims, TokenError> {
    let malformed = || TokenError::Invalid("JWTAuth error: token is malformed");
    let mut parts = token.split('.');
    let (Some(header_b64), Some(payload_b64), Some(sig_b64), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(malformed());
    };
    let payload = decode_segment(payload_b64).ok_or_else(malformed)?;
    let claims: Claims = serde_json::from_slice(&payload).map_err(|_| malformed())?;

    if sig_b64 == "devtoken" {
        // Stream's dev tokens are unsigned; accepted only in explicit dev mode, and never
        // for server privileges.
        if !dev_tokens || claims.server {
            return Err(bad_signature());
        }
    } else {
        let header: Header = decode_segment(header_b64)
            .and_then(|h| serde_json::from_slice(&h).ok())
            .ok_or_else(malformed)?;
        if header.alg != "HS256" {
            return Err(bad_signature());
        }
        let sig = URL_SAFE_NO_PAD
            .decode(sig_b64.trim_end_matches('='))
            .map_err(|_| bad_signature())?;
        let mut mac = HmacSha256::new_from_slice(secret).expect("HMAC accepts any key length");
        mac.update(header_b64.as_bytes());
        mac.update(b".");
        mac.update(payload_b64.as_bytes());
        mac.verify_slice(&sig).map_err(|_| bad_signature())?;
    }

    if claims.exp.is_some_and(|exp| now > exp + LEEWAY_SECS) {
        return Err(TokenError::Expired);
    }
    if claims.nbf.is_some_and(|nbf| now + LEEWAY_SECS < nbf) {
        return Err(TokenError::NotValidYet);
    }
    if claims.iat.is_some_and(|iat| now + LEEWAY_SECS < iat) {
        return Err(TokenError::UsedBeforeIat);
    }
    if !claims.server && claims.user_id.as_deref().is_none_or(str::is_empty) {
        return Err(TokenError::Invalid(
            "JWTAuth error: token has no user_id claim",
        ));
    }
    Ok(claims)
}

fn bad_signature() -> TokenError {
    TokenError::Invalid(
        "JWTAuth error: signature is not valid. Make sure the token is created using the secret for this API key",
    )
}

/// Decodes a JWT segment: base64url without padding, or (for Stream dev tokens) standard
/// base64 with `=` padding.
fn decode_segment(segment: &str) -> Option<Vec<u8>> {
    URL_SAFE_NO_PAD
        .decode(segment.trim_end_matches('='))
        .ok()
        .or_else(|| STANDARD.decode(segment).ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &[u8] = b"secret";
    const NOW: i64 = 1_800_000_000;

    #[test]
    fn a_user_token_verifies_and_names_the_user() {
        let claims = verify(&user_token("alice", None, SECRET), SECRET, false, NOW).unwrap();
        assert_eq!(claims.user_id.as_deref(), Some("alice"));
        assert!(!claims.server);
    }

    #[test]
    fn failures_map_to_stream_codes() {
        let expired = user_token("a", Some(NOW - 60), SECRET);
        assert_eq!(
            verify(&expired, SECRET, false, NOW).unwrap_err(),
            TokenError::Expired
        );
        let future = sign(
            &serde_json::json!({"user_id": "a", "nbf": NOW + 60}),
            SECRET,
        );
        assert_eq!(
            verify(&future, SECRET, false, NOW).unwrap_err(),
            TokenError::NotValidYet
        );
        let iat = sign(
            &serde_json::json!({"user_id": "a", "iat": NOW + 60}),
            SECRET,
        );
        assert_eq!(
            verify(&iat, SECRET, false, NOW).unwrap_err(),
            TokenError::UsedBeforeIat
        );
        let wrong = user_token("a", None, b"other");
        assert!(matches!(
            verify(&wrong, SECRET, false, NOW).unwrap_err(),
            TokenError::Invalid(_)
        ));
        assert!(matches!(
            verify("garbage", SECRET, false, NOW).unwrap_err(),
            TokenError::Invalid(_)
        ));
    }

    #[test]
    fn alg_none_is_refused() {
        let header = URL_SAFE_NO_PAD.encode(br#"{"alg":"none"}"#);
        let payload = URL_SAFE_NO_PAD.encode(br#"{"user_id":"a"}"#);
        let token = format!("{header}.{payload}.");
        assert!(matches!(
            verify(&token, SECRET, false, NOW).unwrap_err(),
            TokenError::Invalid(_)
        ));
    }

    #[test]
    fn dev_tokens_only_in_dev_mode_and_never_as_server() {
        // The SDK's devToken: padded standard base64 payload, literal signature.
        let payload = STANDARD.encode(br#"{"user_id":"bob"}"#);
        let token = format!("eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.{payload}.devtoken");
        assert!(matches!(
            verify(&token, SECRET, false, NOW).unwrap_err(),
            TokenError::Invalid(_)
        ));
        assert_eq!(
            verify(&token, SECRET, true, NOW)
                .unwrap()
                .user_id
                .as_deref(),
            Some("bob")
        );
        let server = format!("x.{}.devtoken", STANDARD.encode(br#"{"server":true}"#));
        assert!(verify(&server, SECRET, true, NOW).is_err());
    }
}
