//! OpenID Connect relying party: the authorization code flow with PKCE, state and nonce
//! (OIDC Core §3.1; RFC 7636), ID tokens verified by the `openidconnect` crate against the
//! provider's discovered metadata and JWKS (OIDC Core §3.1.3.7; OIDC Discovery §4), then
//! the verified claims mapped to a Ward user id and role and handed to
//! [`sso::complete_login`].
//!
//! A login flow is two requests. [`begin_login`] draws `state`, `nonce` and a PKCE verifier,
//! keeps them server-side (`auth_flows`, single use, ten minutes) under `oidc:<state>`, and
//! answers the IdP's authorization URL. [`finish_login`] takes the flow back by `state`
//! (which must also equal the value the browser carries in its flow cookie: RFC 9700 §4.7,
//! login CSRF), exchanges the code with the verifier, verifies the ID token, and starts the
//! session. Every rejection on the way is audited as `auth.login_failed` with a short reason
//! code ([`Failure::reason`]); tokens, claims and secrets never reach a log or an error.
//!
//! Provider configuration (`SsoProvider.config`; the client secret is `SsoProvider.secret`)
//! and the claim mapping: [`OidcConfig`], in `oidc/config.rs`.

use std::collections::HashMap;
use std::sync::{Arc, LazyLock, Mutex};
use std::time::{Duration, Instant};

use axum::response::Response;
use openidconnect::core::{
    CoreAuthDisplay, CoreAuthPrompt, CoreAuthenticationFlow, CoreClientAuthMethod,
    CoreErrorResponseType, CoreGenderClaim, CoreJsonWebKey, CoreJweContentEncryptionAlgorithm,
    CoreJwsSigningAlgorithm, CoreProviderMetadata, CoreRevocableToken, CoreRevocationErrorResponse,
    CoreTokenIntrospectionResponse, CoreTokenType,
};
use openidconnect::{
    AdditionalClaims, AuthType, AuthorizationCode, ClaimsVerificationError, Client, ClientId,
    ClientSecret, CsrfToken, EmptyExtraTokenFields, EndpointMaybeSet, EndpointNotSet, EndpointSet,
    IdToken, IdTokenFields, IssuerUrl, Nonce, OAuth2TokenResponse, PkceCodeChallenge,
    PkceCodeVerifier, RedirectUrl, RequestTokenError, Scope, StandardErrorResponse,
    StandardTokenResponse, TokenResponse, UserInfoClaims, reqwest,
};
use secrecy::ExposeSecret;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::sso::{self, ExternalLogin, ProviderKind, SsoProvider};
use crate::auth::Ctx;
use crate::auth::error::Error;
use crate::time::now_micros;

mod config;
mod id_token;

use config::needs_userinfo;
pub use config::{
    Mapped, OidcConfig, UserIdClaim, map_claims, map_role, map_user_id, validate_config,
};
use id_token::{IdTokenError, verify_id_token};

/// How long a login may take between the redirect to the IdP and the callback.
const FLOW_TTL_SECS: i64 = 600;
/// How long discovered metadata and keys are reused before they are fetched again.
const DISCOVERY_TTL: Duration = Duration::from_secs(300);
/// Clock skew tolerated on `iat`: an ID token issued further in the future is refused.
const IAT_SKEW_SECS: i64 = 300;

// --- Failures -------------------------------------------------------------------------------

/// Why a login failed. The reason is a short code for the audit log; it never carries a
/// token, a claim or an IdP message.
#[derive(Debug)]
pub enum Failure {
    /// The login is refused (401).
    Rejected(&'static str),
    /// The IdP could not be used (502).
    Unavailable(&'static str),
    /// Ward itself failed (its own error).
    Internal(Error),
}

impl Failure {
    pub fn reason(&self) -> &'static str {
        match self {
            Self::Rejected(r) | Self::Unavailable(r) => r,
            Self::Internal(_) => "internal_error",
        }
    }

    fn into_error(self) -> Error {
        match self {
            Self::Rejected(r) => Error::not_authenticated(format!("OIDC login refused ({r})")),
            Self::Unavailable(r) => {
                Error::IdpUnavailable(format!("the identity provider could not be used ({r})"))
            }
            Self::Internal(e) => e,
        }
    }
}

impl From<Error> for Failure {
    fn from(e: Error) -> Self {
        Self::Internal(e)
    }
}

/// The reason code of an ID token the verifier refused (OIDC Core §3.1.3.7).
pub fn claims_error_reason(e: &ClaimsVerificationError) -> &'static str {
    match e {
        ClaimsVerificationError::Expired(_) => "id_token_expired",
        ClaimsVerificationError::InvalidAudience(_) => "audience_mismatch",
        ClaimsVerificationError::InvalidIssuer(_) => "issuer_mismatch",
        ClaimsVerificationError::InvalidNonce(_) => "nonce_mismatch",
        ClaimsVerificationError::SignatureVerification(_) => "signature_invalid",
        _ => "id_token_invalid",
    }
}

// --- Discovery and the HTTP client ----------------------------------------------------------

/// The relying party's process-wide machinery: one HTTP client and the discovery cache.
/// It lives in a static rather than in `AppState` because it holds nothing per deployment:
/// metadata is keyed by issuer and expires on its own.
struct Rp {
    /// Never follows redirects (the crate's guidance against SSRF); short timeouts so a slow
    /// IdP cannot pin request handlers.
    http: reqwest::Client,
    /// Issuer -> (fetched at, metadata with its JWKS). A sync mutex: it is held only to copy
    /// an `Arc` in or out, never across an await.
    discovered: Mutex<HashMap<String, (Instant, Arc<CoreProviderMetadata>)>>,
}

static RP: LazyLock<Result<Rp, String>> = LazyLock::new(|| {
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .connect_timeout(Duration::from_secs(5))
        .timeout(Duration::from_secs(10))
        .build()
        .map_err(|e| format!("the OIDC HTTP client could not be built: {e}"))?;
    Ok(Rp {
        http,
        discovered: Mutex::new(HashMap::new()),
    })
});

fn rp() -> Result<&'static Rp, Failure> {
    RP.as_ref()
        .map_err(|e| Failure::Internal(Error::internal(e)))
}

impl Rp {
    /// The issuer's metadata and keys (OIDC Discovery §4), from the cache unless `fresh`
    /// (a key the cache does not know: the IdP may have rotated its keys).
    async fn metadata(
        &self,
        issuer: &str,
        fresh: bool,
    ) -> Result<Arc<CoreProviderMetadata>, Failure> {
        if !fresh
            && let Some((at, m)) = self.cache().get(issuer)
            && at.elapsed() < DISCOVERY_TTL
        {
            return Ok(m.clone());
        }
        let url = IssuerUrl::new(issuer.to_string())
            .map_err(|_| Failure::Unavailable("issuer_invalid"))?;
        let metadata = CoreProviderMetadata::discover_async(url, &self.http)
            .await
            .map_err(|e| {
                tracing::warn!(issuer = %issuer, error = %e, "OIDC discovery of {issuer} failed");
                Failure::Unavailable("discovery_failed")
            })?;
        let metadata = Arc::new(metadata);
        let mut cache = self.cache();
        cache.retain(|_, (at, _)| at.elapsed() < DISCOVERY_TTL);
        cache.insert(issuer.to_string(), (Instant::now(), metadata.clone()));
        Ok(metadata)
    }

    fn cache(
        &self,
    ) -> std::sync::MutexGuard<'_, HashMap<String, (Instant, Arc<CoreProviderMetadata>)>> {
        self.discovered.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// Claims beyond the standard ones (`groups` and the like), kept as JSON.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
struct ExtraClaims {
    #[serde(flatten)]
    other: Map<String, Value>,
}

impl AdditionalClaims for ExtraClaims {}

type RpIdToken = IdToken<
    ExtraClaims,
    CoreGenderClaim,
    CoreJweContentEncryptionAlgorithm,
    CoreJwsSigningAlgorithm,
>;

type RpTokenResponse = StandardTokenResponse<
    IdTokenFields<
        ExtraClaims,
        EmptyExtraTokenFields,
        CoreGenderClaim,
        CoreJweContentEncryptionAlgorithm,
        CoreJwsSigningAlgorithm,
    >,
    CoreTokenType,
>;

/// `CoreClient` with [`ExtraClaims`], built from discovered metadata.
type RpClient = Client<
    ExtraClaims,
    CoreAuthDisplay,
    CoreGenderClaim,
    CoreJweContentEncryptionAlgorithm,
    CoreJsonWebKey,
    CoreAuthPrompt,
    StandardErrorResponse<CoreErrorResponseType>,
    RpTokenResponse,
    CoreTokenIntrospectionResponse,
    CoreRevocableToken,
    CoreRevocationErrorResponse,
    EndpointSet,
    EndpointNotSet,
    EndpointNotSet,
    EndpointNotSet,
    EndpointMaybeSet,
    EndpointMaybeSet,
>;

fn redirect_uri(state: &Ctx<'_>, provider_id: &str) -> Result<RedirectUrl, Failure> {
    let base = state.public_url.trim_end_matches('/');
    RedirectUrl::new(format!("{base}/auth/oidc/{provider_id}/callback"))
        .map_err(|e| Failure::Internal(Error::internal(e)))
}

fn client(
    state: &Ctx<'_>,
    provider: &SsoProvider,
    cfg: &OidcConfig,
    metadata: &CoreProviderMetadata,
) -> Result<RpClient, Failure> {
    let secret = provider
        .secret
        .as_ref()
        .map(|s| ClientSecret::new(s.expose_secret().to_string()));
    let confidential = secret.is_some();
    let mut client = RpClient::from_provider_metadata(
        metadata.clone(),
        ClientId::new(cfg.client_id.clone()),
        secret,
    )
    .set_redirect_uri(redirect_uri(state, &provider.id)?);
    // client_secret_basic is the default (OIDC Core §9); use client_secret_post when the
    // provider lists only that one.
    if confidential
        && let Some(methods) = metadata.token_endpoint_auth_methods_supported()
        && !methods.contains(&CoreClientAuthMethod::ClientSecretBasic)
        && methods.contains(&CoreClientAuthMethod::ClientSecretPost)
    {
        client = client.set_auth_type(AuthType::RequestBody);
    }
    Ok(client)
}

/// The algorithms the provider says it signs ID tokens with, never `none` (OIDC Core
/// §3.1.3.7 step 7; the crate refuses `none` on its own as well).
fn allowed_algs(metadata: &CoreProviderMetadata) -> Vec<CoreJwsSigningAlgorithm> {
    metadata
        .id_token_signing_alg_values_supported()
        .iter()
        .filter(|a| **a != CoreJwsSigningAlgorithm::None)
        .cloned()
        .collect()
}

// --- The flow -------------------------------------------------------------------------------

/// What is kept between the redirect and the callback, under `oidc:<state>`.
#[derive(Serialize, Deserialize)]
struct Flow {
    provider: String,
    nonce: String,
    pkce_verifier: String,
    return_to: Option<String>,
}

fn flow_key(csrf_state: &str) -> String {
    format!("oidc:{csrf_state}")
}

/// The enabled OIDC provider `id`, or a 404 (unknown, disabled and SAML providers look the
/// same from outside).
pub async fn find_oidc_provider(state: &Ctx<'_>, id: &str) -> crate::auth::Result<SsoProvider> {
    match sso::find_provider(state, id).await? {
        Some(p) if p.enabled && p.kind == ProviderKind::Oidc => Ok(p),
        _ => Err(Error::not_found("this OIDC provider does not exist")),
    }
}

/// Where to send the browser, and the `state` its flow cookie must carry back.
pub struct LoginRedirect {
    pub url: String,
    pub csrf_state: String,
}

/// Starts a login: an authorization request (OIDC Core §3.1.2.1) for the code flow with
/// `state`, `nonce` and an S256 PKCE challenge (RFC 7636 §4.2).
pub async fn begin_login(
    state: &Ctx<'_>,
    provider: &SsoProvider,
    return_to: Option<&str>,
) -> crate::auth::Result<LoginRedirect> {
    if return_to.is_some_and(|r| !sso::is_local_path(r)) {
        return Err(Error::input("return_to must be a path on this server"));
    }
    let cfg = OidcConfig::parse(&provider.config).map_err(|e| {
        Error::internal(format!(
            "OIDC provider {} has an invalid config: {e}",
            provider.id
        ))
    })?;
    let begin = async {
        let metadata = rp()?.metadata(&cfg.issuer, false).await?;
        let client = client(state, provider, &cfg, &metadata)?;
        let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
        let (url, csrf, nonce) = client
            .authorize_url(
                CoreAuthenticationFlow::AuthorizationCode,
                CsrfToken::new_random,
                Nonce::new_random,
            )
            .add_scopes(
                cfg.scopes
                    .iter()
                    .filter(|s| *s != "openid") // the crate adds openid itself
                    .map(|s| Scope::new(s.clone())),
            )
            .set_pkce_challenge(challenge)
            .url();
        let flow = Flow {
            provider: provider.id.clone(),
            nonce: nonce.secret().clone(),
            pkce_verifier: verifier.secret().clone(),
            return_to: return_to.map(str::to_string),
        };
        let data = serde_json::to_string(&flow).map_err(Error::internal)?;
        let now = now_micros();
        state
            .store
            .identity
            .insert_flow(
                &flow_key(csrf.secret()),
                &data,
                now + FLOW_TTL_SECS * 1_000_000,
                now,
            )
            .await
            .map_err(Error::from)?;
        Ok::<_, Failure>(LoginRedirect {
            url: url.to_string(),
            csrf_state: csrf.secret().clone(),
        })
    };
    begin.await.map_err(Failure::into_error)
}

/// The parameters of the authorization response (OIDC Core §3.1.2.5 and §3.1.2.6; `iss`
/// from RFC 9207).
#[derive(Debug, Default, Deserialize)]
pub struct CallbackParams {
    pub code: Option<String>,
    pub state: Option<String>,
    pub error: Option<String>,
    pub iss: Option<String>,
}

/// Completes a login: checks the response against the flow, redeems the code, verifies the
/// ID token, maps the claims, and starts the session ([`sso::complete_login`]). `bound_state`
/// is the `state` the browser's flow cookie carries. Every refusal is audited.
pub async fn finish_login(
    state: &Ctx<'_>,
    limit: &dyn sso::LoginLimit,
    provider: &SsoProvider,
    params: CallbackParams,
    bound_state: Option<&str>,
) -> crate::auth::Result<Response> {
    let verified = verify_callback(state, provider, params, bound_state).await;
    let failure = match verified {
        Ok((login, return_to)) => {
            return sso::complete_login(state, limit, login, return_to.as_deref()).await;
        }
        Err(f) => f,
    };
    let reason = failure.reason();
    tracing::warn!(provider = %provider.id, reason, "OIDC login at provider {} refused: {reason}", provider.id);
    sso::record_failure(state, &provider.id, "oidc", reason).await;
    Err(failure.into_error())
}

async fn verify_callback(
    state: &Ctx<'_>,
    provider: &SsoProvider,
    params: CallbackParams,
    bound_state: Option<&str>,
) -> Result<(ExternalLogin, Option<String>), Failure> {
    use Failure::Rejected;
    let idp_error = params.error.is_some();
    let Some(csrf_state) = params.state.filter(|s| !s.is_empty()) else {
        return Err(Rejected(if idp_error {
            "idp_error"
        } else {
            "state_missing"
        }));
    };
    // RFC 6749 §10.12 / RFC 9700 §4.7: the state must be the one this browser started with
    // (checked first, so a stranger's request cannot consume someone else's flow).
    if bound_state != Some(csrf_state.as_str()) {
        return Err(Rejected(if idp_error {
            "idp_error"
        } else {
            "state_mismatch"
        }));
    }
    // The flow is consumed whatever happens next: a state is good for one answer.
    let flow = state
        .store
        .identity
        .take_flow(&flow_key(&csrf_state), now_micros())
        .await
        .map_err(Error::from)?;
    if idp_error {
        return Err(Rejected("idp_error"));
    }
    let flow: Flow = match flow {
        Some(data) => serde_json::from_str(&data).map_err(Error::internal)?,
        None => return Err(Rejected("state_unknown")),
    };
    // A flow started at another provider answered here: an IdP mix-up (RFC 9700 §4.4).
    if flow.provider != provider.id {
        return Err(Rejected("state_mismatch"));
    }
    let cfg = OidcConfig::parse(&provider.config).map_err(|e| {
        Error::internal(format!(
            "OIDC provider {} has an invalid config: {e}",
            provider.id
        ))
    })?;
    if params.iss.as_ref().is_some_and(|iss| *iss != cfg.issuer) {
        return Err(Rejected("issuer_mismatch"));
    }
    let code = params
        .code
        .filter(|c| !c.is_empty())
        .ok_or(Rejected("code_missing"))?;

    let rp = rp()?;
    let mut metadata = rp.metadata(&cfg.issuer, false).await?;
    let mut client = client(state, provider, &cfg, &metadata)?;
    // OIDC Core §3.1.3: the token request, with the PKCE verifier (RFC 7636 §4.5).
    let token = client
        .exchange_code(AuthorizationCode::new(code))
        .map_err(|_| Failure::Unavailable("token_endpoint_missing"))?
        .set_pkce_verifier(PkceCodeVerifier::new(flow.pkce_verifier))
        .request_async(&rp.http)
        .await
        .map_err(|e| {
            // The OAuth error code only: the body may echo what was sent.
            let kind = match &e {
                RequestTokenError::ServerResponse(r) => r.error().to_string(),
                RequestTokenError::Request(_) => "request failed".into(),
                RequestTokenError::Parse(..) => "unparseable response".into(),
                RequestTokenError::Other(_) => "other".into(),
            };
            tracing::warn!(provider = %provider.id, error = %kind, "OIDC token request to provider {} failed: {kind}", provider.id);
            match e {
                RequestTokenError::Request(_) => Failure::Unavailable("token_endpoint_unreachable"),
                _ => Rejected("token_exchange_failed"),
            }
        })?;
    let id_token = token.id_token().ok_or(Rejected("id_token_missing"))?;
    let nonce = Nonce::new(flow.nonce);

    // A key the cached JWKS lacks may be a rotation: fetch the metadata once more.
    let access_token = token.access_token();
    let mut verified = verify_id_token(&client, &metadata, id_token, access_token, &nonce);
    if verified.as_ref().is_err_and(IdTokenError::is_unknown_key) {
        metadata = rp.metadata(&cfg.issuer, true).await?;
        client = self::client(state, provider, &cfg, &metadata)?;
        verified = verify_id_token(&client, &metadata, id_token, access_token, &nonce);
    }
    let mut claims = verified.map_err(|e| Rejected(e.reason()))?;
    let subject = claims
        .get("sub")
        .and_then(Value::as_str)
        .map(str::to_string)
        .ok_or(Rejected("id_token_invalid"))?;

    // OIDC Core §5.3: claims the ID token lacks, from UserInfo; its `sub` must be the ID
    // token's (§5.3.2), which the crate checks.
    if needs_userinfo(&cfg, &claims)
        && let Ok(request) = client.user_info(
            token.access_token().clone(),
            Some(openidconnect::SubjectIdentifier::new(subject.clone())),
        )
    {
        let info: UserInfoClaims<ExtraClaims, CoreGenderClaim> = request
            .request_async(&rp.http)
            .await
            .map_err(|e| {
                tracing::warn!(provider = %provider.id, error = %e, "OIDC UserInfo request to provider {} failed", provider.id);
                Rejected("userinfo_failed")
            })?;
        if let Ok(Value::Object(extra)) = serde_json::to_value(&info) {
            for (k, v) in extra {
                claims.entry(k).or_insert(v);
            }
        }
    }

    let mapped = map_claims(&cfg, &claims).map_err(Rejected)?;
    Ok((
        ExternalLogin {
            provider_id: provider.id.clone(),
            method: "oidc",
            subject,
            user_id: mapped.user_id,
            role: mapped.role,
            name: mapped.name,
            saml_session_index: None,
        },
        flow.return_to,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use openidconnect::SignatureVerificationError;
    use serde_json::json;

    #[test]
    fn id_token_refusals_have_reason_codes() {
        use ClaimsVerificationError as E;
        let cases = [
            (E::Expired("x".into()), "id_token_expired"),
            (E::InvalidAudience("x".into()), "audience_mismatch"),
            (E::InvalidIssuer("x".into()), "issuer_mismatch"),
            (E::InvalidNonce("x".into()), "nonce_mismatch"),
            (
                E::SignatureVerification(SignatureVerificationError::NoSignature),
                "signature_invalid",
            ),
            (
                E::SignatureVerification(SignatureVerificationError::DisallowedAlg("none".into())),
                "signature_invalid",
            ),
            (E::Unsupported("x".into()), "id_token_invalid"),
            (E::InvalidSubject("x".into()), "id_token_invalid"),
        ];
        for (e, reason) in cases {
            assert_eq!(claims_error_reason(&e), reason, "{e:?}");
        }
        assert_eq!(
            Failure::Rejected("state_mismatch").reason(),
            "state_mismatch"
        );
        assert_eq!(
            Failure::Internal(Error::input("x")).reason(),
            "internal_error"
        );
        let err = Failure::Rejected("nonce_mismatch").into_error();
        assert!(matches!(&err, Error::NotAuthenticated(m) if m.contains("nonce_mismatch")));
        assert!(matches!(
            Failure::Unavailable("discovery_failed").into_error(),
            Error::IdpUnavailable(_)
        ));
    }

    #[test]
    fn none_is_never_an_allowed_algorithm() {
        let metadata: CoreProviderMetadata = serde_json::from_value(json!({
            "issuer": "https://idp.example.com",
            "authorization_endpoint": "https://idp.example.com/auth",
            "jwks_uri": "https://idp.example.com/jwks",
            "response_types_supported": ["code"],
            "subject_types_supported": ["public"],
            "id_token_signing_alg_values_supported": ["RS256", "none", "ES256"],
        }))
        .unwrap();
        assert_eq!(
            allowed_algs(&metadata),
            [
                CoreJwsSigningAlgorithm::RsaSsaPkcs1V15Sha256,
                CoreJwsSigningAlgorithm::EcdsaP256Sha256
            ]
        );
    }
}
