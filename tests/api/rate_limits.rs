//! Rate limits: password login, `POST /auth/chat-token`, WebSocket connects, the SAML ACS
//! and REST writes, per client address and per account. Each test configures small limits
//! per minute, so no window passes during the test and nothing sleeps. A second client
//! address is real: the client binds 127.0.0.2 (all of 127/8 is loopback on Linux).

use std::net::{IpAddr, SocketAddr};

use serde_json::{Value, json};
use tokio_tungstenite::tungstenite;
use ward::auth::sso::{ExternalLogin, ProviderKind, SsoProvider, complete_login, save_provider};
use ward::config::Config;
use ward::ratelimit::Cidr;

use crate::helpers::{Db, KEY, TestApp, on_both_databases, url_encode};

on_both_databases!(
    password_login_is_limited_per_address_and_a_spoofed_forwarded_for_changes_nothing,
    password_login_is_limited_per_account_and_other_accounts_still_log_in,
    forwarded_for_counts_only_behind_a_trusted_proxy,
    chat_tokens_are_limited_per_account_and_per_address,
    websocket_connects_are_limited_per_user_and_per_address,
    rest_writes_are_limited_per_user_and_server_calls_are_not,
    the_saml_acs_is_limited_per_address,
);

const PASSWORD: &str = "correct horse battery staple";
const OTHER_IP: &str = "127.0.0.2";

/// An HTTP client whose connections come from `ip`.
fn client_from(ip: &str) -> reqwest::Client {
    reqwest::Client::builder()
        .local_address(ip.parse::<IpAddr>().unwrap())
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

#[derive(Debug)]
struct Reply {
    status: u16,
    body: Value,
    retry_after: Option<u64>,
    cookie: Option<String>,
}

async fn send(req: reqwest::RequestBuilder) -> Reply {
    let res = req.send().await.expect("request is sent");
    let status = res.status().as_u16();
    let retry_after = res
        .headers()
        .get("retry-after")
        .map(|v| v.to_str().unwrap().parse().expect("Retry-After is seconds"));
    let cookie = res
        .headers()
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().unwrap().split(';').next().unwrap().to_string())
        .find(|c| c.starts_with("ward_session=") && c.len() > "ward_session=".len());
    let body = res.json().await.unwrap_or(Value::Null);
    Reply {
        status,
        body,
        retry_after,
        cookie,
    }
}

async fn login(
    app: &TestApp,
    http: &reqwest::Client,
    user: &str,
    password: &str,
    forwarded_for: Option<&str>,
) -> Reply {
    let mut req = http
        .post(format!("{}/auth/login?api_key={KEY}", app.base))
        .json(&json!({"user_id": user, "password": password}));
    if let Some(xff) = forwarded_for {
        req = req.header("x-forwarded-for", xff);
    }
    send(req).await
}

/// A Stream-shaped 429: code 9, `StatusCode` 429, and a Retry-After within the window.
fn assert_limited(r: &Reply, what: &str) {
    assert_eq!(r.status, 429, "{what}: {}", r.body);
    assert_eq!(r.body["code"], 9, "{what}: {}", r.body);
    assert_eq!(r.body["StatusCode"], 429, "{what}: {}", r.body);
    assert!(
        r.body["message"]
            .as_str()
            .unwrap()
            .starts_with("Too many requests"),
        "{what}: {}",
        r.body
    );
    let secs = r
        .retry_after
        .unwrap_or_else(|| panic!("{what}: no Retry-After"));
    assert!((1..=60).contains(&secs), "{what}: Retry-After {secs}");
}

/// The audit records of rate-limit refusals under `limit`.
async fn refusals(app: &TestApp, limit: &str) -> Vec<Value> {
    app.audit_entries()
        .await
        .into_iter()
        .filter(|e| e["meta"]["reason"] == "rate_limited" && e["meta"]["limit"] == limit)
        .collect()
}

async fn spawn(db: Db, tweak: impl FnOnce(&mut Config)) -> TestApp {
    TestApp::spawn_with(db, tweak).await
}

async fn password_login_is_limited_per_address_and_a_spoofed_forwarded_for_changes_nothing(db: Db) {
    let app = spawn(db, |c| {
        c.rate_limits.login_per_ip = 3;
        c.rate_limits.login_per_account = 100;
    })
    .await;
    ward::auth::bootstrap_admin(&app.state.auth(), "root", PASSWORD)
        .await
        .unwrap();
    let here = client_from("127.0.0.1");
    // Guesses at three different accounts use up this address's three.
    for i in 0..3 {
        let r = login(&app, &here, &format!("guess-{i}"), "wrong password", None).await;
        assert_eq!(r.status, 401, "{}", r.body);
    }
    let r = login(&app, &here, "guess-3", "wrong password", None).await;
    assert_limited(&r, "the fourth guess from one address");
    let r = login(&app, &here, "root", PASSWORD, None).await;
    assert_limited(&r, "even the right password, from the limited address");
    // Without WARD_TRUSTED_PROXIES, X-Forwarded-For is the client's own claim: ignored.
    for spoofed in ["198.51.100.7", "127.0.0.2", "198.51.100.8, 198.51.100.9"] {
        let r = login(&app, &here, "root", PASSWORD, Some(spoofed)).await;
        assert_limited(&r, &format!("X-Forwarded-For: {spoofed}"));
    }
    // Another address logs in to the right account.
    let r = login(&app, &client_from(OTHER_IP), "root", PASSWORD, None).await;
    assert_eq!(r.status, 201, "{}", r.body);
    assert!(r.cookie.is_some(), "a session starts");
    // Five refusals, one audit record for the window.
    let audited = refusals(&app, "login.ip").await;
    assert_eq!(audited.len(), 1, "{audited:?}");
    assert_eq!(audited[0]["event"], "auth.login_failed");
    assert_eq!(audited[0]["meta"]["method"], "password");
}

async fn password_login_is_limited_per_account_and_other_accounts_still_log_in(db: Db) {
    let app = spawn(db, |c| {
        c.rate_limits.login_per_ip = 100;
        c.rate_limits.login_per_account = 3;
    })
    .await;
    for admin in ["root", "ops"] {
        ward::auth::bootstrap_admin(&app.state.auth(), admin, PASSWORD)
            .await
            .unwrap();
    }
    let here = client_from("127.0.0.1");
    for _ in 0..3 {
        let r = login(&app, &here, "root", "wrong password", None).await;
        assert_eq!(r.status, 401, "{}", r.body);
    }
    let r = login(&app, &here, "root", PASSWORD, None).await;
    assert_limited(&r, "the locked account, right password");
    let r = login(&app, &client_from(OTHER_IP), "root", PASSWORD, None).await;
    assert_limited(&r, "the locked account from another address");
    let r = login(&app, &here, "ops", PASSWORD, None).await;
    assert_eq!(r.status, 201, "another account logs in: {}", r.body);
    let audited = refusals(&app, "login.account").await;
    assert_eq!(audited.len(), 1, "{audited:?}");
    assert_eq!(audited[0]["event"], "auth.login_failed");
    assert_eq!(audited[0]["actor"]["id"], "root", "{}", audited[0]);
}

async fn forwarded_for_counts_only_behind_a_trusted_proxy(db: Db) {
    let app = spawn(db, |c| {
        c.rate_limits.login_per_ip = 2;
        c.rate_limits.login_per_account = 100;
        c.rate_limits.trusted_proxies = vec![Cidr::parse("127.0.0.1").unwrap()];
    })
    .await;
    let proxy = client_from("127.0.0.1");
    let a = "198.51.100.1";
    for _ in 0..2 {
        let r = login(&app, &proxy, "x", "wrong password", Some(a)).await;
        assert_eq!(r.status, 401, "{}", r.body);
    }
    assert_limited(
        &login(&app, &proxy, "x", "wrong password", Some(a)).await,
        "client a, third",
    );
    // A hop the client wrote itself, left of the proxy's, does not make it someone else.
    assert_limited(
        &login(
            &app,
            &proxy,
            "x",
            "wrong password",
            Some(&format!("203.0.113.9, {a}")),
        )
        .await,
        "client a with a prepended hop",
    );
    let r = login(&app, &proxy, "x", "wrong password", Some("198.51.100.2")).await;
    assert_eq!(r.status, 401, "client b is counted apart: {}", r.body);
    // A peer that is not a trusted proxy is counted by its own address, whatever it says.
    let direct = client_from(OTHER_IP);
    for _ in 0..2 {
        let r = login(&app, &direct, "x", "wrong password", Some("198.51.100.3")).await;
        assert_eq!(r.status, 401, "{}", r.body);
    }
    assert_limited(
        &login(&app, &direct, "x", "wrong password", Some("198.51.100.4")).await,
        "an untrusted peer's X-Forwarded-For is ignored",
    );
}

/// A browser session of a plain user, as SSO starts it.
async fn session_of(app: &TestApp, user: &str) -> String {
    let res = complete_login(
        &app.state.auth(),
        &ward::ratelimit::SsoLogins(&app.state),
        ExternalLogin {
            provider_id: "okta".into(),
            method: "oidc",
            subject: user.into(),
            user_id: user.into(),
            role: None,
            name: None,
            saml_session_index: None,
        },
        None,
    )
    .await
    .unwrap();
    res.headers()
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().unwrap().split(';').next().unwrap().to_string())
        .find(|c| c.starts_with("ward_session="))
        .expect("a session cookie")
}

async fn sso_provider(app: &TestApp) {
    save_provider(
        &app.state.auth(),
        &SsoProvider {
            id: "okta".into(),
            kind: ProviderKind::Oidc,
            name: "Okta".into(),
            enabled: true,
            config: json!({"issuer": "https://idp.invalid", "client_id": "ward"}),
            secret: None,
        },
        None,
    )
    .await
    .unwrap();
}

async fn chat_token(app: &TestApp, http: &reqwest::Client, cookie: &str) -> Reply {
    send(
        http.post(format!("{}/auth/chat-token?api_key={KEY}", app.base))
            .header("cookie", cookie),
    )
    .await
}

async fn chat_tokens_are_limited_per_account_and_per_address(db: Db) {
    let app = spawn(db, |c| {
        c.rate_limits.chat_token_per_account = 2;
        c.rate_limits.chat_token_per_ip = 4;
    })
    .await;
    sso_provider(&app).await;
    let alice = session_of(&app, "alice").await;
    let bob = session_of(&app, "bob").await;
    let here = client_from("127.0.0.1");
    for _ in 0..2 {
        let r = chat_token(&app, &here, &alice).await;
        assert_eq!(r.status, 201, "{}", r.body);
    }
    assert_limited(
        &chat_token(&app, &here, &alice).await,
        "alice's third token",
    );
    // Three of this address's four are used: bob gets one from here, then none.
    let r = chat_token(&app, &here, &bob).await;
    assert_eq!(r.status, 201, "bob is not limited by alice: {}", r.body);
    assert!(r.body["token"].is_string());
    assert_limited(&chat_token(&app, &here, &bob).await, "the address's fifth");
    let r = chat_token(&app, &client_from(OTHER_IP), &bob).await;
    assert_eq!(r.status, 201, "bob from another address: {}", r.body);
    let by_account = refusals(&app, "chat_token.account").await;
    assert_eq!(by_account.len(), 1, "{by_account:?}");
    assert_eq!(by_account[0]["event"], "authz.denied");
    assert_eq!(by_account[0]["actor"]["id"], "alice");
    assert_eq!(refusals(&app, "chat_token.ip").await.len(), 1);
}

/// Opens `/connect` for `user` from `ip`: the first frame, or the HTTP refusal.
async fn connect_from(app: &TestApp, ip: &str, user: &str) -> Result<Value, Reply> {
    let json = json!({"user_id": user, "user_details": {"id": user}}).to_string();
    let url = format!(
        "{}/connect?json={}&api_key={KEY}&authorization={}&stream-auth-type=jwt",
        app.ws_base,
        url_encode(&json),
        url_encode(&app.token(user))
    );
    let server: SocketAddr = app.base.trim_start_matches("http://").parse().unwrap();
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket
        .bind(SocketAddr::new(ip.parse().unwrap(), 0))
        .unwrap();
    let tcp = socket.connect(server).await.unwrap();
    let tcp = tokio_tungstenite::MaybeTlsStream::Plain(tcp);
    match tokio_tungstenite::client_async(url, tcp).await {
        Ok((mut ws, _)) => Ok(crate::helpers::next_json(&mut ws).await),
        Err(tungstenite::Error::Http(res)) => {
            let status = res.status().as_u16();
            let retry_after = res
                .headers()
                .get("retry-after")
                .map(|v| v.to_str().unwrap().parse().unwrap());
            let body = res
                .body()
                .as_ref()
                .map(|b| serde_json::from_slice(b).unwrap())
                .unwrap_or(Value::Null);
            Err(Reply {
                status,
                body,
                retry_after,
                cookie: None,
            })
        }
        Err(e) => panic!("connect failed otherwise: {e}"),
    }
}

async fn websocket_connects_are_limited_per_user_and_per_address(db: Db) {
    let app = spawn(db, |c| {
        c.rate_limits.connect_per_user = 2;
        c.rate_limits.connect_per_ip = 4;
    })
    .await;
    app.users(&["alice", "bob"]).await;
    for _ in 0..2 {
        let first = connect_from(&app, "127.0.0.1", "alice").await.unwrap();
        assert_eq!(first["type"], "health.check", "{first}");
    }
    let refused = connect_from(&app, "127.0.0.1", "alice").await.unwrap_err();
    assert_limited(&refused, "alice's third connect");
    let first = connect_from(&app, "127.0.0.1", "bob")
        .await
        .unwrap_or_else(|r| panic!("bob is not limited by alice: {}", r.body));
    assert_eq!(first["type"], "health.check");
    let refused = connect_from(&app, "127.0.0.1", "bob").await.unwrap_err();
    assert_limited(&refused, "the address's fifth connect");
    let first = connect_from(&app, OTHER_IP, "bob")
        .await
        .unwrap_or_else(|r| panic!("bob from another address: {}", r.body));
    assert_eq!(first["type"], "health.check");
    let by_user = refusals(&app, "connect.user").await;
    assert_eq!(by_user.len(), 1, "{by_user:?}");
    assert_eq!(by_user[0]["event"], "authz.denied");
    assert_eq!(by_user[0]["meta"]["via"], "ws");
    assert_eq!(by_user[0]["actor"]["id"], "alice");
    assert_eq!(refusals(&app, "connect.ip").await.len(), 1);
}

async fn rest_writes_are_limited_per_user_and_server_calls_are_not(db: Db) {
    let app = spawn(db, |c| c.rate_limits.writes_per_user = 3).await;
    app.users(&["alice", "bob", "carol"]).await;
    app.channel("ward", "carol", &["alice", "bob", "carol"])
        .await;
    let path = "/channels/messaging/ward/message";
    for i in 0..3 {
        let (s, body) = app
            .post(
                path,
                &app.token("alice"),
                json!({"message": {"text": format!("a{i}")}}),
            )
            .await;
        assert_eq!(s, 201, "{body}");
    }
    let res = app
        .http
        .post(format!("{}{path}?api_key={KEY}", app.base))
        .header("Authorization", app.token("alice"))
        .header("stream-auth-type", "jwt")
        .json(&json!({"message": {"text": "a3"}}));
    assert_limited(&send(res).await, "alice's fourth write");
    // Deletes count as writes too; reads do not.
    let (s, body) = app
        .call(
            reqwest::Method::DELETE,
            "/channels/messaging/ward",
            &app.token("alice"),
            None,
        )
        .await;
    assert_eq!((s, body["code"].as_i64()), (429, Some(9)), "{body}");
    let (s, body) = app
        .get_payload(
            "/users",
            &app.token("alice"),
            json!({"filter_conditions": {"id": {"$in": ["alice", "bob"]}}}),
        )
        .await;
    assert_eq!(s, 200, "a read is not limited: {body}");
    let (s, body) = app
        .post(path, &app.token("bob"), json!({"message": {"text": "b0"}}))
        .await;
    assert_eq!(s, 201, "bob is not limited by alice: {body}");
    // Server-side calls (the API secret) acting for alice are not limited.
    for i in 0..5 {
        let (s, body) = app
            .post(
                path,
                &app.server_token(),
                json!({"message": {"text": format!("s{i}"), "user_id": "alice"}}),
            )
            .await;
        assert_eq!(s, 201, "{body}");
    }
    let audited = refusals(&app, "writes.user").await;
    assert_eq!(audited.len(), 1, "two refusals, one record: {audited:?}");
    assert_eq!(audited[0]["event"], "authz.denied");
    assert_eq!(audited[0]["actor"]["id"], "alice");
    assert_eq!(audited[0]["meta"]["via"], "rest");
}

async fn the_saml_acs_is_limited_per_address(db: Db) {
    let app = spawn(db, |c| c.rate_limits.sso_per_ip = 2).await;
    let here = client_from("127.0.0.1");
    let acs = format!("{}/auth/saml/corp/acs", app.base);
    for _ in 0..2 {
        let r = send(here.post(&acs).form(&[("SAMLResponse", "bm90IHhtbA==")])).await;
        assert_ne!(r.status, 429, "{}", r.body);
    }
    let r = send(here.post(&acs).form(&[("SAMLResponse", "bm90IHhtbA==")])).await;
    assert_limited(&r, "the third ACS post");
    let r = send(
        client_from(OTHER_IP)
            .post(&acs)
            .form(&[("SAMLResponse", "bm90IHhtbA==")]),
    )
    .await;
    assert_ne!(r.status, 429, "another address: {}", r.body);
    let audited = refusals(&app, "sso.ip").await;
    assert_eq!(audited.len(), 1, "{audited:?}");
    assert_eq!(audited[0]["event"], "auth.login_failed");
    assert_eq!(audited[0]["meta"]["method"], "saml");
}
