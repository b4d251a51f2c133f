//! An OIDC provider's settings (`SsoProvider.config`) and the mapping of verified claims
//! to a Ward user: the user id rule, groups to roles, and which claims must come from
//! UserInfo.

use std::collections::BTreeMap;

use serde::Deserialize;
use serde_json::{Map, Value};

// --- Configuration -------------------------------------------------------------------------

/// Which claim names the Ward user.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum UserIdClaim {
    /// The provider's subject (OIDC Core §2: unique and never reassigned within the issuer).
    #[default]
    Sub,
    /// The e-mail address; only accepted when `email_verified` is true (unless
    /// `require_email_verified` is false). OIDC Core §5.7: e-mail is not a stable identifier,
    /// so use it only with an IdP that owns the addresses.
    Email,
    PreferredUsername,
}

impl UserIdClaim {
    fn name(self) -> &'static str {
        match self {
            Self::Sub => "sub",
            Self::Email => "email",
            Self::PreferredUsername => "preferred_username",
        }
    }
}

/// An OIDC provider's settings, as stored in `SsoProvider.config`:
///
/// ```json
/// {
///   "issuer": "https://idp.example.com",          // required; https (http on loopback only)
///   "client_id": "ward",                           // required
///   "scopes": ["openid", "email", "profile"],      // default; must contain "openid"
///   "user_id_claim": "sub",                        // sub (default) | email | preferred_username
///   "user_id_prefix": "okta-",                     // optional, prepended to the mapped id
///   "role_claim": "groups",                        // optional; a string or array claim
///   "role_map": {"chat-admins": "admin"},          // IdP value -> Ward role (needs role_claim)
///   "default_role": "user",                        // role when nothing maps
///   "require_email_verified": true                 // default; for user_id_claim = email
/// }
/// ```
///
/// The client secret is `SsoProvider.secret` (sealed at rest); without one Ward is a public
/// client and relies on PKCE alone. Unknown keys are refused, so a typo does not silently
/// drop a setting.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OidcConfig {
    pub issuer: String,
    pub client_id: String,
    #[serde(default = "default_scopes")]
    pub scopes: Vec<String>,
    #[serde(default)]
    pub user_id_claim: UserIdClaim,
    #[serde(default)]
    pub user_id_prefix: Option<String>,
    #[serde(default)]
    pub role_claim: Option<String>,
    #[serde(default)]
    pub role_map: BTreeMap<String, String>,
    #[serde(default)]
    pub default_role: Option<String>,
    #[serde(default = "yes")]
    pub require_email_verified: bool,
}

fn default_scopes() -> Vec<String> {
    ["openid", "email", "profile"].map(String::from).to_vec()
}

fn yes() -> bool {
    true
}

/// Roles an IdP may grant, most privileged first: when several of a user's groups map, the
/// first role of this list wins. `anonymous` is not a login role.
const ROLE_PRECEDENCE: &[&str] = &[
    "admin",
    "compliance_officer",
    "auditor",
    "moderator",
    "user",
    "guest",
];

/// Checks a provider's settings (called by the admin API before a provider is saved).
pub fn validate_config(config: &Value) -> Result<(), String> {
    OidcConfig::parse(config).map(|_| ())
}

impl OidcConfig {
    pub fn parse(config: &Value) -> Result<Self, String> {
        let cfg: Self = serde_json::from_value(config.clone()).map_err(|e| e.to_string())?;
        check_issuer(&cfg.issuer)?;
        if cfg.client_id.is_empty() || cfg.client_id.len() > 255 {
            return Err("client_id must be 1-255 characters".into());
        }
        if !cfg.scopes.iter().any(|s| s == "openid") {
            return Err("scopes must include openid (OIDC Core §3.1.2.1)".into());
        }
        // RFC 6749 §3.3: scope-token = 1*( %x21 / %x23-5B / %x5D-7E )
        if let Some(bad) = cfg.scopes.iter().find(|s| {
            s.is_empty()
                || !s
                    .bytes()
                    .all(|b| b == 0x21 || (0x23..=0x5b).contains(&b) || (0x5d..=0x7e).contains(&b))
        }) {
            return Err(format!("scope {bad:?} is not a valid scope token"));
        }
        if let Some(p) = &cfg.user_id_prefix
            && (p.is_empty() || p.len() > 32 || !p.chars().all(is_user_id_char))
        {
            return Err("user_id_prefix must be 1-32 characters of a-z, 0-9, @, ., _ and -".into());
        }
        if cfg.role_claim.as_deref().is_some_and(str::is_empty) {
            return Err("role_claim must not be empty".into());
        }
        if !cfg.role_map.is_empty() && cfg.role_claim.is_none() {
            return Err("role_map needs role_claim (the claim whose values it maps)".into());
        }
        for (value, role) in &cfg.role_map {
            if value.is_empty() {
                return Err("role_map keys must not be empty".into());
            }
            check_role(role)?;
        }
        if let Some(role) = &cfg.default_role {
            check_role(role)?;
        }
        Ok(cfg)
    }
}

fn check_role(role: &str) -> Result<(), String> {
    if ROLE_PRECEDENCE.contains(&role) {
        Ok(())
    } else {
        Err(format!(
            "role {role:?} cannot be granted by an IdP (one of {})",
            ROLE_PRECEDENCE.join(", ")
        ))
    }
}

/// The issuer must be an absolute https URL (OIDC Discovery §3: "using the https scheme"),
/// with plain http tolerated on loopback only (development and tests), and without query or
/// fragment.
fn check_issuer(issuer: &str) -> Result<(), String> {
    let url = openidconnect::url::Url::parse(issuer)
        .map_err(|_| "issuer must be an absolute URL".to_string())?;
    let loopback = match url.host() {
        Some(openidconnect::url::Host::Domain(d)) => d == "localhost",
        Some(openidconnect::url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(openidconnect::url::Host::Ipv6(ip)) => ip.is_loopback(),
        None => false,
    };
    match url.scheme() {
        "https" => {}
        "http" if loopback => {}
        _ => return Err("issuer must use https (http only on a loopback address)".into()),
    }
    if url.query().is_some() || url.fragment().is_some() || !url.username().is_empty() {
        return Err("issuer must not have credentials, a query or a fragment".into());
    }
    Ok(())
}

// --- Claims -> Ward user --------------------------------------------------------------------

fn is_user_id_char(c: char) -> bool {
    c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '@' | '.' | '_' | '-')
}

/// Maps a claim value to a Ward user id. The rule: trim, lowercase, replace every character
/// outside `a-z 0-9 @ . _ -` with `_`, prepend `user_id_prefix`; the result must be at most
/// 255 characters (never truncated: two long ids would collide) and keep at least one letter
/// or digit of its own. Distinct values can meet (`A.B` and `a.b`, `a+b` and `a_b`): map a
/// claim the IdP keeps unique in that form (`sub` by default), and give providers that share
/// a Ward a `user_id_prefix` each so one IdP's subject cannot become another IdP's user.
pub fn map_user_id(raw: &str, prefix: Option<&str>) -> Option<String> {
    let mapped: String = raw
        .trim()
        .to_lowercase()
        .chars()
        .map(|c| if is_user_id_char(c) { c } else { '_' })
        .collect();
    if !mapped.chars().any(|c| c.is_ascii_alphanumeric()) {
        return None;
    }
    let id = format!("{}{mapped}", prefix.unwrap_or(""));
    (id.len() <= 255 && crate::chat::validate_user_id(&id).is_ok()).then_some(id)
}

/// The role the claims grant: with `role_claim`, the most privileged role any of the claim's
/// values maps to (values match exactly, case included), else `default_role`, else `user`,
/// so a user the IdP no longer puts in a group loses its role at the next login. Without
/// `role_claim`, `default_role` if set, else `None`: the role Ward has stays as it is.
pub fn map_role(cfg: &OidcConfig, claims: &Map<String, Value>) -> Option<String> {
    let Some(claim) = &cfg.role_claim else {
        return cfg.default_role.clone();
    };
    let values: Vec<&str> = match claims.get(claim) {
        Some(Value::String(s)) => vec![s.as_str()],
        Some(Value::Array(items)) => items.iter().filter_map(Value::as_str).collect(),
        _ => Vec::new(),
    };
    let granted: Vec<&str> = values
        .iter()
        .filter_map(|v| cfg.role_map.get(*v).map(String::as_str))
        .collect();
    let role = ROLE_PRECEDENCE
        .iter()
        .find(|r| granted.contains(r))
        .map(|r| r.to_string());
    Some(role.unwrap_or_else(|| cfg.default_role.clone().unwrap_or_else(|| "user".into())))
}

/// A verified identity, mapped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mapped {
    pub user_id: String,
    pub role: Option<String>,
    pub name: Option<String>,
}

/// Maps verified claims (ID token, completed from UserInfo) to a Ward user, or the reason
/// code of the refusal.
pub fn map_claims(cfg: &OidcConfig, claims: &Map<String, Value>) -> Result<Mapped, &'static str> {
    let raw = claims
        .get(cfg.user_id_claim.name())
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
        .ok_or("user_id_claim_missing")?;
    if cfg.user_id_claim == UserIdClaim::Email && cfg.require_email_verified {
        // Some IdPs send the boolean as a string.
        let verified = matches!(claims.get("email_verified"), Some(Value::Bool(true)))
            || claims.get("email_verified").and_then(Value::as_str) == Some("true");
        if !verified {
            return Err("email_unverified");
        }
    }
    let user_id = map_user_id(raw, cfg.user_id_prefix.as_deref()).ok_or("user_id_invalid")?;
    Ok(Mapped {
        user_id,
        role: map_role(cfg, claims),
        name: claims
            .get("name")
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
            .map(str::to_string),
    })
}

/// Whether the ID token lacks a claim the mapping reads (then UserInfo is asked: in the code
/// flow many IdPs put profile claims only there, OIDC Core §5.4).
pub(super) fn needs_userinfo(cfg: &OidcConfig, claims: &Map<String, Value>) -> bool {
    let mut wanted = vec![cfg.user_id_claim.name()];
    if cfg.user_id_claim == UserIdClaim::Email && cfg.require_email_verified {
        wanted.push("email_verified");
    }
    if let Some(c) = &cfg.role_claim {
        wanted.push(c);
    }
    wanted.iter().any(|c| !claims.contains_key(*c))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn cfg(v: Value) -> OidcConfig {
        OidcConfig::parse(&v).unwrap()
    }

    fn base() -> Value {
        json!({"issuer": "https://idp.example.com", "client_id": "ward"})
    }

    fn with(extra: Value) -> Value {
        let mut v = base();
        for (k, x) in extra.as_object().unwrap() {
            v[k] = x.clone();
        }
        v
    }

    fn claims(v: Value) -> Map<String, Value> {
        v.as_object().unwrap().clone()
    }

    #[test]
    fn a_minimal_config_takes_the_defaults() {
        let c = cfg(base());
        assert_eq!(c.scopes, ["openid", "email", "profile"]);
        assert_eq!(c.user_id_claim, UserIdClaim::Sub);
        assert!(c.require_email_verified);
        assert!(c.role_claim.is_none() && c.role_map.is_empty() && c.default_role.is_none());
        assert!(validate_config(&base()).is_ok());
    }

    #[test]
    fn a_full_config_is_accepted() {
        let v = with(json!({
            "scopes": ["openid", "email", "profile", "groups"],
            "user_id_claim": "preferred_username",
            "user_id_prefix": "corp-",
            "role_claim": "groups",
            "role_map": {"chat-admins": "admin", "Chat Mods": "moderator"},
            "default_role": "guest",
            "require_email_verified": false,
        }));
        let c = cfg(v);
        assert_eq!(c.user_id_claim, UserIdClaim::PreferredUsername);
        assert_eq!(c.role_map.len(), 2);
    }

    #[test]
    fn invalid_configs_are_refused_with_a_reason() {
        let cases = [
            (json!({"client_id": "ward"}), "issuer"),
            (json!({"issuer": "https://idp.example.com"}), "client_id"),
            (with(json!({"issuer": "http://idp.example.com"})), "https"),
            (with(json!({"issuer": "ftp://127.0.0.1"})), "https"),
            (with(json!({"issuer": "not a url"})), "absolute URL"),
            (
                with(json!({"issuer": "https://idp.example.com/?tenant=1"})),
                "query",
            ),
            (with(json!({"client_id": ""})), "client_id"),
            (with(json!({"scopes": ["email"]})), "openid"),
            (with(json!({"scopes": ["openid", "two words"]})), "scope"),
            (with(json!({"user_id_claim": "name"})), "unknown variant"),
            (with(json!({"user_id_prefix": "Corp:"})), "user_id_prefix"),
            (with(json!({"role_map": {"g": "admin"}})), "role_claim"),
            (
                with(json!({"role_claim": "groups", "role_map": {"g": "root"}})),
                "root",
            ),
            (
                with(json!({"role_claim": "groups", "role_map": {"g": "anonymous"}})),
                "anonymous",
            ),
            (with(json!({"role_claim": ""})), "role_claim"),
            (with(json!({"default_role": "superuser"})), "superuser"),
            (with(json!({"client_secret": "s3cret"})), "unknown field"),
            (json!("https://idp.example.com"), "invalid type"),
        ];
        for (config, expected) in cases {
            let err = validate_config(&config).expect_err(&config.to_string());
            assert!(err.contains(expected), "{config}: {err}");
        }
    }

    #[test]
    fn http_issuers_are_accepted_on_loopback_only() {
        for issuer in [
            "http://127.0.0.1:4455",
            "http://localhost:8080/realms/x",
            "http://[::1]:9000",
        ] {
            assert!(
                validate_config(&with(json!({"issuer": issuer}))).is_ok(),
                "{issuer}"
            );
        }
        assert!(validate_config(&with(json!({"issuer": "http://10.0.0.1"}))).is_err());
    }

    #[test]
    fn claim_values_become_valid_user_ids() {
        assert_eq!(
            map_user_id("248289761001", None).as_deref(),
            Some("248289761001")
        );
        assert_eq!(
            map_user_id("Jane.Doe@Example.COM", None).as_deref(),
            Some("jane.doe@example.com")
        );
        assert_eq!(map_user_id(" a+b c/d ", None).as_deref(), Some("a_b_c_d"));
        assert_eq!(map_user_id("josé", None).as_deref(), Some("jos_"));
        assert_eq!(
            map_user_id("auth0|5f7c", Some("okta-")).as_deref(),
            Some("okta-auth0_5f7c")
        );
        for id in ["Jane Doe", "x:y", "ÅSA"] {
            let mapped = map_user_id(id, None).unwrap();
            assert!(crate::chat::validate_user_id(&mapped).is_ok(), "{mapped}");
        }
        // Nothing of its own left, or too long (never truncated).
        assert_eq!(map_user_id("", None), None);
        assert_eq!(map_user_id("日本", Some("corp-")), None);
        assert_eq!(map_user_id(&"a".repeat(256), None), None);
        assert_eq!(map_user_id(&"a".repeat(250), Some("corp-ab")), None);
        assert!(map_user_id(&"a".repeat(255), None).is_some());
    }

    #[test]
    fn the_configured_claim_names_the_user() {
        let all = claims(json!({
            "sub": "AbC123", "email": "Ann@Example.com", "email_verified": true,
            "preferred_username": "ann.k", "name": "Ann K"
        }));
        let m = map_claims(&cfg(base()), &all).unwrap();
        assert_eq!(m.user_id, "abc123");
        assert_eq!(m.name.as_deref(), Some("Ann K"));
        assert_eq!(m.role, None);
        let by_email = cfg(with(json!({"user_id_claim": "email"})));
        assert_eq!(
            map_claims(&by_email, &all).unwrap().user_id,
            "ann@example.com"
        );
        let by_name = cfg(with(
            json!({"user_id_claim": "preferred_username", "user_id_prefix": "x-"}),
        ));
        assert_eq!(map_claims(&by_name, &all).unwrap().user_id, "x-ann.k");
    }

    #[test]
    fn unverified_or_missing_identifiers_are_refused() {
        let by_email = cfg(with(json!({"user_id_claim": "email"})));
        let unverified = claims(json!({"sub": "1", "email": "a@b.c", "email_verified": false}));
        assert_eq!(map_claims(&by_email, &unverified), Err("email_unverified"));
        let silent = claims(json!({"sub": "1", "email": "a@b.c"}));
        assert_eq!(map_claims(&by_email, &silent), Err("email_unverified"));
        let as_string = claims(json!({"sub": "1", "email": "a@b.c", "email_verified": "true"}));
        assert_eq!(map_claims(&by_email, &as_string).unwrap().user_id, "a@b.c");
        let trusting = cfg(with(
            json!({"user_id_claim": "email", "require_email_verified": false}),
        ));
        assert_eq!(map_claims(&trusting, &silent).unwrap().user_id, "a@b.c");
        assert_eq!(
            map_claims(
                &cfg(with(json!({"user_id_claim": "preferred_username"}))),
                &silent
            ),
            Err("user_id_claim_missing")
        );
        assert_eq!(
            map_claims(&cfg(base()), &claims(json!({"sub": "日本"}))),
            Err("user_id_invalid")
        );
    }

    #[test]
    fn groups_map_to_the_most_privileged_role() {
        let c = cfg(with(json!({
            "role_claim": "groups",
            "role_map": {"chat-admins": "admin", "chat-mods": "moderator", "auditors": "auditor"},
        })));
        let role = |v: Value| map_role(&c, &claims(json!({ "groups": v })));
        assert_eq!(
            role(json!(["staff", "chat-mods"])).as_deref(),
            Some("moderator")
        );
        assert_eq!(
            role(json!(["chat-mods", "chat-admins"])).as_deref(),
            Some("admin")
        );
        assert_eq!(
            role(json!(["chat-mods", "auditors"])).as_deref(),
            Some("auditor")
        );
        assert_eq!(role(json!("chat-admins")).as_deref(), Some("admin"));
        // Exact match only; nothing mapped falls back to default_role, else user.
        assert_eq!(role(json!(["Chat-Admins"])).as_deref(), Some("user"));
        assert_eq!(
            role(json!([1, {"x": "chat-admins"}])).as_deref(),
            Some("user")
        );
        assert_eq!(map_role(&c, &claims(json!({}))).as_deref(), Some("user"));
        let guest = cfg(with(
            json!({"role_claim": "roles", "role_map": {"a": "admin"}, "default_role": "guest"}),
        ));
        assert_eq!(
            map_role(&guest, &claims(json!({"roles": ["b"]}))).as_deref(),
            Some("guest")
        );
        // Without role_claim: default_role when set, else Ward keeps the role it has.
        assert_eq!(
            map_role(
                &cfg(with(json!({"default_role": "guest"}))),
                &claims(json!({}))
            )
            .as_deref(),
            Some("guest")
        );
        assert_eq!(
            map_role(&cfg(base()), &claims(json!({"groups": ["chat-admins"]}))),
            None
        );
    }

    #[test]
    fn userinfo_is_asked_only_for_missing_claims() {
        let c = cfg(with(
            json!({"role_claim": "groups", "role_map": {"a": "admin"}}),
        ));
        assert!(needs_userinfo(&c, &claims(json!({"sub": "1"}))));
        assert!(!needs_userinfo(
            &c,
            &claims(json!({"sub": "1", "groups": []}))
        ));
        assert!(!needs_userinfo(&cfg(base()), &claims(json!({"sub": "1"}))));
        let e = cfg(with(json!({"user_id_claim": "email"})));
        assert!(needs_userinfo(
            &e,
            &claims(json!({"sub": "1", "email": "a@b.c"}))
        ));
    }
}
