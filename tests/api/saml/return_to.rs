//! Where a login may return to, in both SSO flows: only a path on this server. The SAML and
//! OIDC login starts refuse anything else with 400; SAML's RelayState (IdP-initiated) and the
//! shared `complete_login` (the end of both flows) fall back to the JSON answer. Never an
//! off-site redirect, never a 500.

use serde_json::json;
use ward::auth::sso::{ExternalLogin, ProviderKind, SsoProvider, complete_login, save_provider};

use super::idp::*;
use crate::helpers::{Db, on_both_databases};

/// Values an attacker puts in `return_to` / RelayState (after URL decoding by the server).
const OFF_SITE: &[&str] = &[
    "/\t/evil.example/",
    "/%09/evil.example/",
    "/%2509/evil.example/%09",
    "//evil.example",
    "//evil.example/x",
    "/\\evil.example",
    "/%5Cevil.example",
    "/%2F/evil.example",
    "\\\\evil.example",
    "https://evil.example",
    "https://evil.example/",
    "javascript:alert(1)",
    "evil.example",
    "/x\r\nSet-Cookie: a=b",
    "/x\nLocation: https://evil.example",
    "/x%0d%0aSet-Cookie: a=b",
    "/\u{7f}x",
    "/caf\u{e9}",
    "",
];

fn query(v: &str) -> String {
    serde_urlencoded::to_string([("return_to", v)]).unwrap()
}

async fn saml_login_refuses_a_return_to_off_site(db: Db) {
    let app = setup(db, true).await;
    for bad in OFF_SITE {
        let res = browser()
            .get(format!(
                "{}/auth/saml/{PROVIDER}/login?{}",
                app.base,
                query(bad)
            ))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 400, "{bad:?}");
        assert!(res.headers().get("location").is_none(), "{bad:?}");
    }
    // A local path is kept through the IdP and back.
    let request_id = start_login(&app, "/inbox?tab=2").await;
    let a = Assertion::new(&app, "alice@example.com", Some(&request_id));
    let r = post_response(&app, &a.signed(), None).await;
    assert_eq!(
        (r.status, r.location.as_deref()),
        (303, Some("/inbox?tab=2")),
        "{}",
        r.body
    );
    // IdP-initiated: RelayState off-site gives the JSON answer, never a redirect or a 500.
    for bad in OFF_SITE {
        let a = Assertion::new(&app, "alice@example.com", None);
        let r = post_response(&app, &a.signed(), Some(bad)).await;
        assert_eq!(r.status, 201, "{bad:?}: {}", r.body);
        assert!(r.location.is_none(), "{bad:?}: {:?}", r.location);
        assert!(r.cookie.is_some(), "{bad:?}: the login itself succeeds");
    }
    // Logout (without an IdP session to end): return_to off-site is dropped.
    for bad in OFF_SITE {
        let res = browser()
            .get(format!(
                "{}/auth/saml/{PROVIDER}/logout?{}",
                app.base,
                query(bad)
            ))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 200, "{bad:?}");
        assert!(res.headers().get("location").is_none(), "{bad:?}");
    }
}

async fn oidc_login_refuses_a_return_to_off_site(db: Db) {
    let app = crate::helpers::TestApp::spawn(db).await;
    save_provider(
        &app.state.auth(),
        &SsoProvider {
            id: "okta".into(),
            kind: ProviderKind::Oidc,
            name: "Okta".into(),
            enabled: true,
            // Never contacted: return_to is checked before the IdP's discovery document.
            config: json!({"issuer": "https://idp.invalid", "client_id": "ward"}),
            secret: None,
        },
        None,
    )
    .await
    .unwrap();
    for bad in OFF_SITE {
        let res = browser()
            .get(format!("{}/auth/oidc/okta/login?{}", app.base, query(bad)))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 400, "{bad:?}");
        assert!(res.headers().get("location").is_none(), "{bad:?}");
    }
    // The end of both flows: a verified identity with a return_to off-site (a flow stored
    // before this check existed) gets the JSON answer; a local one its redirect.
    let login = |user: &str| ExternalLogin {
        provider_id: "okta".into(),
        method: "oidc",
        subject: user.into(),
        user_id: user.into(),
        role: None,
        name: None,
        saml_session_index: None,
    };
    for bad in OFF_SITE {
        let res = complete_login(
            &app.state.auth(),
            &ward::ratelimit::SsoLogins(&app.state),
            login("alice"),
            Some(bad),
        )
        .await
        .unwrap_or_else(|e| panic!("{bad:?}: {e:?}"));
        assert!(res.headers().get("location").is_none(), "{bad:?}");
        assert!(res.status().is_success(), "{bad:?}: {}", res.status());
    }
    let res = complete_login(
        &app.state.auth(),
        &ward::ratelimit::SsoLogins(&app.state),
        login("alice"),
        Some("/inbox"),
    )
    .await
    .unwrap();
    assert_eq!(res.status(), 303);
    assert_eq!(res.headers()["location"], "/inbox");
}

#[test]
fn is_local_path_accepts_paths_only() {
    use ward::auth::sso::is_local_path;
    for ok in [
        "/",
        "/inbox",
        "/a/b?c=d&e=%2F#f",
        "/x%20y",
        "/caf%C3%A9",
        "/a//b",
    ] {
        assert!(is_local_path(ok), "{ok:?}");
    }
    for bad in OFF_SITE {
        assert!(!is_local_path(bad), "{bad:?}");
    }
}

on_both_databases!(
    saml_login_refuses_a_return_to_off_site,
    oidc_login_refuses_a_return_to_off_site,
);
