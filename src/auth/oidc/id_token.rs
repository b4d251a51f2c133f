//! Checking an OpenID Connect ID token (OIDC Core §3.1.3.7) and the `at_hash` binding its
//! access token (§3.1.3.8).

use openidconnect::core::{CoreJsonWebKey, CoreProviderMetadata};
use openidconnect::{
    AccessToken, AccessTokenHash, ClaimsVerificationError, JsonWebKey, JwsSigningAlgorithm, Nonce,
    SignatureVerificationError,
};
use serde_json::{Map, Value};

use super::{IAT_SKEW_SECS, RpClient, RpIdToken, allowed_algs, claims_error_reason};

/// Why an ID token was refused.
pub(super) enum IdTokenError {
    Claims(ClaimsVerificationError),
    /// `at_hash` does not match the access token (OIDC Core §3.1.3.8).
    AccessTokenHash,
}

impl IdTokenError {
    pub(super) fn reason(&self) -> &'static str {
        match self {
            Self::Claims(e) => claims_error_reason(e),
            Self::AccessTokenHash => "at_hash_mismatch",
        }
    }

    pub(super) fn is_unknown_key(&self) -> bool {
        matches!(
            self,
            Self::Claims(ClaimsVerificationError::SignatureVerification(
                SignatureVerificationError::NoMatchingKey
            ))
        )
    }
}

impl From<ClaimsVerificationError> for IdTokenError {
    fn from(e: ClaimsVerificationError) -> Self {
        Self::Claims(e)
    }
}

/// Validates the ID token (OIDC Core §3.1.3.7): issuer, audience (no untrusted extra
/// audience, `azp`), expiry, `iat` not in the future, nonce, and the signature against the
/// provider's JWKS with an algorithm its metadata lists; then `at_hash`, which binds the
/// access token used for UserInfo to this ID token (§3.1.3.8). Returns the claims as JSON.
pub(super) fn verify_id_token(
    client: &RpClient,
    metadata: &CoreProviderMetadata,
    id_token: &RpIdToken,
    access_token: &AccessToken,
    nonce: &Nonce,
) -> Result<Map<String, Value>, IdTokenError> {
    let now = chrono::Utc::now();
    let verifier = client
        .id_token_verifier()
        .set_allowed_algs(allowed_algs(metadata))
        .set_issue_time_verifier_fn(move |iat| {
            if (iat - now).num_seconds() > IAT_SKEW_SECS {
                Err("issued in the future".into())
            } else {
                Ok(())
            }
        });
    let claims = id_token.claims(&verifier, nonce)?;
    if let Some(expected) = claims.access_token_hash() {
        let alg = id_token
            .signing_alg()
            .map_err(ClaimsVerificationError::SignatureVerification)?;
        let actual = if alg.uses_shared_secret() {
            // The hash depends on the algorithm only; the MAC key plays no part in it.
            AccessTokenHash::from_token(
                access_token,
                alg,
                &CoreJsonWebKey::new_symmetric(Vec::new()),
            )
        } else {
            let key = id_token
                .signing_key(&verifier)
                .map_err(ClaimsVerificationError::SignatureVerification)?;
            AccessTokenHash::from_token(access_token, alg, key)
        };
        if actual.ok().as_ref() != Some(expected) {
            return Err(IdTokenError::AccessTokenHash);
        }
    }
    match serde_json::to_value(claims) {
        Ok(Value::Object(m)) => Ok(m),
        _ => Err(ClaimsVerificationError::Other("claims are not an object".into()).into()),
    }
}
