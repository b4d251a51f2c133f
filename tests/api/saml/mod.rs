//! SAML 2.0 service provider: a test IdP ([`idp`]: keys generated here, responses built and
//! signed with samael/xmlsec) logs users in (SP- and IdP-initiated) and out (both ways);
//! [`attacks`] holds the refusals, [`return_to`] where a login may return to (OIDC too).

mod attacks;
pub(crate) mod idp;
mod return_to;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use chrono::Utc;
use serde_json::json;
use ward::auth::saml::validate_config;

use crate::helpers::{Db, on_both_databases};
use idp::*;

async fn a_valid_sp_initiated_login_provisions_the_user_with_the_mapped_role(db: Db) {
    let app = setup(db, false).await;
    let request_id = start_login(&app, "/welcome").await;
    let a = Assertion::new(&app, "alice@example.com", Some(&request_id));
    let r = post_response(&app, &a.signed(), None).await;
    assert_eq!(r.status, 303, "{}", r.body);
    assert_eq!(r.location.as_deref(), Some("/welcome"));
    let cookie = r.cookie.expect("a session cookie");
    let s = live_session(&app, &cookie).await.expect("a live session");
    assert_eq!(s.user.id, "alice@example.com");
    assert_eq!(s.user.role, "admin", "ward-admins maps to admin");
    assert_eq!(s.user.data["name"], "Alice Example");
    assert_eq!(s.provider.as_deref(), Some(PROVIDER));
    let entries = app.audit_entries().await;
    assert!(
        entries
            .iter()
            .any(|e| e["event"] == "auth.login" && e["meta"]["method"] == "saml"),
        "the login is audited"
    );
    assert!(failure_reasons(&app).await.is_empty());

    // The same person again, now only in a group without a mapping: the default role.
    let request_id = start_login(&app, "/").await;
    let mut a = Assertion::new(&app, "alice@example.com", Some(&request_id));
    a.groups = vec!["staff"];
    let r = post_response(&app, &a.signed(), None).await;
    assert_eq!(r.status, 303, "{}", r.body);
    let user = app
        .state
        .store
        .users
        .find_user("alice@example.com")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(user.role, "user");
}

async fn a_response_signed_on_the_response_element_is_accepted(db: Db) {
    let app = setup(db, false).await;
    let request_id = start_login(&app, "/").await;
    let a = Assertion::new(&app, "alice@example.com", Some(&request_id));
    let unsigned = a.response(&a.xml(None));
    let with_template = unsigned.replacen(
        "</saml:Issuer>",
        &format!(
            "</saml:Issuer>{}",
            signature_template(
                &format!("_r{}", a.id),
                RSA_SHA256,
                SHA256,
                &idp_key().cert_b64
            )
        ),
        1,
    );
    let r = post_response(&app, &sign(&with_template, idp_key()), None).await;
    assert_eq!(r.status, 303, "{}", r.body);
    assert!(r.cookie.is_some());
}

async fn metadata_without_a_signing_certificate_is_refused(db: Db) {
    let mut config = provider_config(false);
    config["idp_metadata_xml"] = json!(metadata(None));
    let err = validate_config(&config).unwrap_err();
    assert!(err.contains("signing certificate"), "{err}");
    let mut config = provider_config(false);
    config["role_map"] = json!({"x": "superuser"});
    assert!(
        validate_config(&config).is_err(),
        "unknown roles are refused"
    );
    let mut config = provider_config(false);
    config["unknown"] = json!(true);
    assert!(
        validate_config(&config).is_err(),
        "unknown keys are refused"
    );
    // The SP metadata names Ward's entity id, ACS and SLO endpoints.
    let app = setup(db, false).await;
    let res = browser()
        .get(format!("{}/auth/saml/{PROVIDER}/metadata", app.base))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let xml = res.text().await.unwrap();
    assert!(
        xml.contains(&format!(r#"entityID="{}""#, sp_url(&app, "metadata"))),
        "{xml}"
    );
    assert!(xml.contains(&sp_url(&app, "acs")), "{xml}");
    assert!(xml.contains(&sp_url(&app, "logout")), "{xml}");
    let res = browser()
        .get(format!("{}/auth/saml/nope/metadata", app.base))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 404);
}

async fn idp_initiated_login_works_only_when_allowed(db: Db) {
    let app = setup(db, true).await;
    let a = Assertion::new(&app, "alice@example.com", None);
    let r = post_response(&app, &a.signed(), Some("/inbox")).await;
    assert_eq!(r.status, 303, "{}", r.body);
    assert_eq!(r.location.as_deref(), Some("/inbox"));
    assert!(r.cookie.is_some());
    // RelayState is never an open redirect.
    let a = Assertion::new(&app, "alice@example.com", None);
    let r = post_response(&app, &a.signed(), Some("https://evil.example/")).await;
    assert_eq!(r.status, 201, "a JSON answer, no redirect: {}", r.body);
    assert!(r.location.is_none());
}

async fn logout_revokes_the_session_and_asks_the_idp_to_log_out(db: Db) {
    let app = setup(db, false).await;
    let cookie = login(&app).await;
    let res = browser()
        .get(format!(
            "{}/auth/saml/{PROVIDER}/logout?return_to=/bye",
            app.base
        ))
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 303);
    let cleared = res
        .headers()
        .get_all("set-cookie")
        .iter()
        .any(|v| v.to_str().unwrap().starts_with("ward_session=;"));
    assert!(cleared, "the cookie is cleared");
    let location = res.headers()["location"].to_str().unwrap().to_string();
    assert!(
        location.starts_with(&format!("{IDP_SLO}?SAMLRequest=")),
        "{location}"
    );
    assert!(
        live_session(&app, &cookie).await.is_none(),
        "the session is revoked"
    );
    let entries = app.audit_entries().await;
    assert!(entries.iter().any(|e| e["event"] == "auth.logout"));

    let params: Vec<(String, String)> =
        serde_urlencoded::from_str(location.split_once('?').unwrap().1).unwrap();
    let request = inflate_param(&params, "SAMLRequest");
    assert!(
        request.contains(">alice@example.com</saml:NameID>"),
        "{request}"
    );
    assert!(request.contains("<samlp:SessionIndex>"), "{request}");
    assert_eq!(attr(&request, "Destination"), IDP_SLO);

    // The IdP answers; the flow ends on the page the user asked for, once.
    let response = format!(
        r#"<samlp:LogoutResponse xmlns:samlp="urn:oasis:names:tc:SAML:2.0:protocol" xmlns:saml="urn:oasis:names:tc:SAML:2.0:assertion" ID="_lr1" Version="2.0" IssueInstant="{}" InResponseTo="{}"><saml:Issuer>{IDP_ENTITY}</saml:Issuer><samlp:Status><samlp:StatusCode Value="urn:oasis:names:tc:SAML:2.0:status:Success"/></samlp:Status></samlp:LogoutResponse>"#,
        instant(Utc::now()),
        attr(&request, "ID")
    );
    let encoded = STANDARD.encode(&response);
    let r = post_form(&app, "logout", &[("SAMLResponse", &encoded)], None).await;
    assert_eq!(
        (r.status, r.location.as_deref()),
        (303, Some("/bye")),
        "{}",
        r.body
    );
    let r = post_form(&app, "logout", &[("SAMLResponse", &encoded)], None).await;
    assert_eq!(r.status, 401, "{}", r.body);
}

async fn an_idp_logout_request_must_be_signed_by_the_idp(db: Db) {
    let app = setup(db, false).await;
    let cookie = login(&app).await;
    for forged in [
        logout_request(&app, "alice@example.com", None),
        logout_request(&app, "alice@example.com", Some(attacker_key())),
    ] {
        let encoded = STANDARD.encode(&forged);
        let r = post_form(&app, "logout", &[("SAMLRequest", &encoded)], Some(&cookie)).await;
        assert_eq!(r.status, 401, "{}", r.body);
        assert!(
            live_session(&app, &cookie).await.is_some(),
            "the session survives"
        );
    }
    let genuine = logout_request(&app, "alice@example.com", Some(idp_key()));
    let encoded = STANDARD.encode(&genuine);
    let r = post_form(
        &app,
        "logout",
        &[("SAMLRequest", &encoded), ("RelayState", "rs1")],
        Some(&cookie),
    )
    .await;
    assert_eq!(r.status, 303, "{}", r.body);
    let location = r.location.unwrap();
    assert!(
        location.starts_with(&format!("{IDP_SLO}?SAMLResponse=")),
        "{location}"
    );
    let params: Vec<(String, String)> =
        serde_urlencoded::from_str(location.split_once('?').unwrap().1).unwrap();
    assert!(params.contains(&("RelayState".into(), "rs1".into())));
    let response = inflate_param(&params, "SAMLResponse");
    assert_eq!(attr(&response, "InResponseTo"), attr(&genuine, "ID"));
    assert!(
        live_session(&app, &cookie).await.is_none(),
        "the session is revoked"
    );
}

on_both_databases!(
    a_valid_sp_initiated_login_provisions_the_user_with_the_mapped_role,
    a_response_signed_on_the_response_element_is_accepted,
    metadata_without_a_signing_certificate_is_refused,
    idp_initiated_login_works_only_when_allowed,
    logout_revokes_the_session_and_asks_the_idp_to_log_out,
    an_idp_logout_request_must_be_signed_by_the_idp,
);
