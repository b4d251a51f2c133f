//! Interactive identity: bootstrap admin password login, TOTP enrolment and verification
//! (no reuse, lockout, one-time recovery codes), the 2FA policy enforced on admin
//! endpoints, sessions (listing, revocation, idle and absolute expiry), chat tokens for the
//! SDK, and deprovisioning, which revokes sessions and tokens and closes WebSockets at once.

use serde_json::{Value, json};
use totp_rs::{Algorithm, Builder, Secret};

use crate::helpers::{Db, KEY, TestApp, on_both_databases};

on_both_databases!(
    a_bootstrap_admin_must_enrol_totp_before_administering,
    totp_codes_are_single_use_and_wrong_codes_lock_the_account,
    recovery_codes_work_once_and_an_admin_reset_is_audited,
    sessions_expire_and_can_be_revoked,
    a_chat_token_from_a_session_connects_and_deprovisioning_cuts_everything,
    the_admin_api_stores_sso_providers_with_sealed_secrets,
    revoking_a_session_revokes_its_chat_tokens_and_closes_their_websockets,
);

const PASSWORD: &str = "correct horse battery staple";

/// A browser: one cookie jar for one session.
struct Browser<'a> {
    app: &'a TestApp,
    cookie: Option<String>,
}

impl<'a> Browser<'a> {
    fn new(app: &'a TestApp) -> Self {
        Self { app, cookie: None }
    }

    async fn call(
        &mut self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> (u16, Value) {
        let sep = if path.contains('?') { '&' } else { '?' };
        let mut req = self
            .app
            .http
            .request(method, format!("{}{path}{sep}api_key={KEY}", self.app.base));
        if let Some(c) = &self.cookie {
            req = req.header("cookie", c);
        }
        if let Some(b) = body {
            req = req.json(&b);
        }
        let res = req.send().await.unwrap();
        for v in res.headers().get_all("set-cookie") {
            let v = v.to_str().unwrap();
            let pair = v.split(';').next().unwrap();
            assert!(v.contains("HttpOnly") && v.contains("SameSite=Lax"), "{v}");
            self.cookie = pair
                .strip_prefix("ward_session=")
                .filter(|t| !t.is_empty())
                .map(|_| pair.to_string());
        }
        let status = res.status().as_u16();
        (status, res.json().await.unwrap_or(Value::Null))
    }

    async fn post(&mut self, path: &str, body: Value) -> (u16, Value) {
        self.call(reqwest::Method::POST, path, Some(body)).await
    }

    async fn get(&mut self, path: &str) -> (u16, Value) {
        self.call(reqwest::Method::GET, path, None).await
    }

    async fn login(&mut self, user: &str, password: &str) -> (u16, Value) {
        self.post(
            "/auth/login",
            json!({"user_id": user, "password": password}),
        )
        .await
    }
}

fn code_at(secret_b32: &str, at_secs: u64) -> String {
    let secret = Secret::try_from_base32(secret_b32).unwrap();
    Builder::new()
        .with_algorithm(Algorithm::SHA1)
        .with_secret(secret)
        .build()
        .unwrap()
        .generate(at_secs)
        .to_string()
}

fn now_secs() -> u64 {
    chrono::Utc::now().timestamp() as u64
}

/// A bootstrap admin logged in and enrolled; returns the browser and the TOTP secret.
async fn enrolled_admin<'a>(app: &'a TestApp, id: &str) -> (Browser<'a>, String) {
    let (b, secret, _) = enrolled_admin_at(app, id).await;
    (b, secret)
}

/// As [`enrolled_admin`], also returning the time whose code enrolled it.
async fn enrolled_admin_at<'a>(app: &'a TestApp, id: &str) -> (Browser<'a>, String, u64) {
    ward::auth::bootstrap_admin(&app.state.auth(), id, PASSWORD)
        .await
        .unwrap();
    let mut b = Browser::new(app);
    let (s, body) = b.login(id, PASSWORD).await;
    assert_eq!(s, 201, "{body}");
    let (s, enrol) = b.post("/auth/totp/enroll", json!({})).await;
    assert_eq!(s, 201, "{enrol}");
    let secret = enrol["secret"].as_str().unwrap().to_string();
    let enrolled_at = now_secs();
    let (s, ok) = b
        .post(
            "/auth/totp/verify",
            json!({"code": code_at(&secret, enrolled_at)}),
        )
        .await;
    assert_eq!(s, 201, "{ok}");
    (b, secret, enrolled_at)
}

async fn a_bootstrap_admin_must_enrol_totp_before_administering(db: Db) {
    let app = TestApp::spawn(db).await;
    ward::auth::bootstrap_admin(&app.state.auth(), "root", PASSWORD)
        .await
        .unwrap();
    assert!(
        ward::auth::bootstrap_admin(&app.state.auth(), "root2", "short")
            .await
            .is_err(),
        "weak passwords are refused"
    );

    let mut b = Browser::new(&app);
    let (s, _) = b.login("root", "wrong password here").await;
    assert_eq!(s, 401);
    let (s, _) = b.login("nobody", PASSWORD).await;
    assert_eq!(s, 401);
    let (s, body) = b.login("root", PASSWORD).await;
    assert_eq!(s, 201, "{body}");
    assert_eq!(
        (
            body["mfa_required"].as_bool(),
            body["totp_enrolled"].as_bool()
        ),
        (Some(true), Some(false))
    );

    // No admin endpoint and no chat token before the second factor.
    let (s, body) = b.get("/admin/sso/providers").await;
    assert_eq!((s, body["code"].as_i64()), (403, Some(17)), "{body}");
    let (s, _) = b.post("/auth/chat-token", json!({})).await;
    assert_eq!(s, 403);

    let (s, enrol) = b.post("/auth/totp/enroll", json!({})).await;
    assert_eq!(s, 201, "{enrol}");
    assert!(
        enrol["otpauth_url"]
            .as_str()
            .unwrap()
            .starts_with("otpauth://totp/Ward:root?")
    );
    let png = base64::Engine::decode(
        &base64::engine::general_purpose::STANDARD,
        enrol["qr_png_base64"].as_str().unwrap(),
    )
    .unwrap();
    assert_eq!(&png[1..4], b"PNG");
    let secret = enrol["secret"].as_str().unwrap();
    let (s, _) = b.post("/auth/totp/verify", json!({"code": "000000"})).await;
    assert_eq!(s, 401);
    let (s, done) = b
        .post(
            "/auth/totp/verify",
            json!({"code": code_at(secret, now_secs())}),
        )
        .await;
    assert_eq!(s, 201, "{done}");
    assert_eq!(done["recovery_codes"].as_array().unwrap().len(), 10);
    let (s, body) = b.get("/admin/sso/providers").await;
    assert_eq!(s, 200, "{body}");
    // The seed is stored sealed, never in clear.
    let row = app
        .state
        .store
        .identity
        .find_totp("root")
        .await
        .unwrap()
        .unwrap();
    assert!(!String::from_utf8_lossy(&row.secret).contains(secret));

    let entries = app.audit_entries().await;
    let steps: Vec<&str> = entries
        .iter()
        .filter(|e| e["event"] == "auth.2fa")
        .filter_map(|e| e["meta"]["step"].as_str())
        .collect();
    assert_eq!(steps, ["enroll_started", "failed", "enrolled"]);
    assert!(
        entries
            .iter()
            .any(|e| e["event"] == "auth.login_failed" && e["meta"]["reason"] == "bad_credentials")
    );
    assert!(
        entries
            .iter()
            .any(|e| e["event"] == "auth.login" && e["actor"]["id"] == "root")
    );
}

async fn totp_codes_are_single_use_and_wrong_codes_lock_the_account(db: Db) {
    let app = TestApp::spawn(db).await;
    let (_, secret, enrolled_at) = enrolled_admin_at(&app, "root").await;
    let mut b = Browser::new(&app);
    b.login("root", PASSWORD).await;
    // The code of the step just used for enrolment cannot be used again; neither can an
    // earlier step's (within the skew window). The step is the enrolment's own, whatever
    // time it is now.
    let now = enrolled_at;
    let (s, body) = b
        .post("/auth/totp/verify", json!({"code": code_at(&secret, now)}))
        .await;
    assert_eq!(s, 401, "a reused code is refused: {body}");
    let (s, _) = b
        .post(
            "/auth/totp/verify",
            json!({"code": code_at(&secret, now - 30)}),
        )
        .await;
    assert_eq!(s, 401, "an older step is refused once a later one was used");
    // The next step's code is accepted (one step of skew), once.
    let (s, body) = b
        .post(
            "/auth/totp/verify",
            json!({"code": code_at(&secret, now + 30)}),
        )
        .await;
    assert_eq!(s, 201, "{body}");
    let (s, _) = b
        .post(
            "/auth/totp/verify",
            json!({"code": code_at(&secret, now + 30)}),
        )
        .await;
    assert_eq!(s, 401);
    // Wrong codes lock the account, and then even a right code is refused.
    for _ in 0..ward::auth::totp::FREE_FAILURES {
        b.post("/auth/totp/verify", json!({"code": "123456"})).await;
    }
    let (s, body) = b
        .post(
            "/auth/totp/verify",
            json!({"code": code_at(&secret, now + 60)}),
        )
        .await;
    assert_eq!((s, body["code"].as_i64()), (429, Some(9)), "{body}");
    let entries = app.audit_entries().await;
    assert!(
        entries
            .iter()
            .any(|e| e["event"] == "auth.2fa" && e["meta"]["step"] == "lockout")
    );
    assert!(
        entries
            .iter()
            .any(|e| e["event"] == "auth.2fa" && e["meta"]["reason"] == "reused")
    );
}

async fn recovery_codes_work_once_and_an_admin_reset_is_audited(db: Db) {
    let app = TestApp::spawn(db).await;
    ward::auth::bootstrap_admin(&app.state.auth(), "root", PASSWORD)
        .await
        .unwrap();
    let mut b = Browser::new(&app);
    b.login("root", PASSWORD).await;
    let (_, enrol) = b.post("/auth/totp/enroll", json!({})).await;
    let (_, done) = b
        .post(
            "/auth/totp/verify",
            json!({"code": code_at(enrol["secret"].as_str().unwrap(), now_secs())}),
        )
        .await;
    let code = done["recovery_codes"][0].as_str().unwrap().to_string();

    let mut other = Browser::new(&app);
    other.login("root", PASSWORD).await;
    let (s, _) = other
        .post("/auth/recovery", json!({"code": "ffff-ffff-ffff-ffff"}))
        .await;
    assert_eq!(s, 401);
    let (s, body) = other.post("/auth/recovery", json!({"code": code})).await;
    assert_eq!(s, 201, "{body}");
    let (s, _) = other.get("/admin/sso/providers").await;
    assert_eq!(s, 200, "a recovery code satisfies the second factor");
    let mut third = Browser::new(&app);
    third.login("root", PASSWORD).await;
    let (s, _) = third.post("/auth/recovery", json!({"code": code})).await;
    assert_eq!(s, 401, "a recovery code works once");

    // The locked-out admin's documented path: the operator resets 2FA (audited).
    ward::auth::totp::reset(&app.state.auth(), "root", None, "cli:TICKET-1")
        .await
        .unwrap();
    let (s, body) = third.get("/auth/session").await;
    assert_eq!(s, 200);
    assert_eq!(body["totp_enrolled"], false);
    let entries = app.audit_entries().await;
    assert!(entries.iter().any(|e| e["event"] == "auth.2fa"
        && e["meta"]["step"] == "reset"
        && e["subject"]["id"] == "root"
        && e["meta"]["reason"] == "cli:TICKET-1"));
    assert!(
        entries
            .iter()
            .any(|e| e["event"] == "auth.2fa" && e["meta"]["step"] == "recovery_code_used")
    );
}

async fn sessions_expire_and_can_be_revoked(db: Db) {
    let app = TestApp::spawn(db).await;
    let (mut a, _) = enrolled_admin(&app, "root").await;
    let mut b = Browser::new(&app);
    b.login("root", PASSWORD).await;
    let (s, list) = a.get("/auth/sessions").await;
    assert_eq!(s, 200);
    let sessions = list["sessions"].as_array().unwrap();
    assert_eq!(sessions.len(), 2);
    let other = sessions.iter().find(|x| x["current"] == false).unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string();
    let (s, _) = a
        .call(
            reqwest::Method::DELETE,
            &format!("/auth/sessions/{other}"),
            None,
        )
        .await;
    assert_eq!(s, 200);
    let (s, _) = b.get("/auth/session").await;
    assert_eq!(s, 401, "a revoked session is gone");

    // Idle timeout: a session unused for longer than WARD_SESSION_IDLE_SECS ends (moved
    // back in time in the database rather than waited for).
    let mut c = Browser::new(&app);
    c.login("root", PASSWORD).await;
    let rows = app
        .state
        .store
        .identity
        .find_sessions_of("root")
        .await
        .unwrap();
    let live = rows
        .iter()
        .find(|r| {
            r.revoked_at.is_none()
                && r.created_at == rows.iter().map(|r| r.created_at).max().unwrap()
        })
        .unwrap();
    let idle = app.state.config.sessions.idle_secs * 1_000_000 + 1;
    let sql = format!(
        "UPDATE auth_sessions SET last_seen = last_seen - {idle} WHERE id_hash = '{}'",
        live.id_hash
    );
    raw_sql(&app, db, &sql).await;
    let (s, _) = c.get("/auth/session").await;
    assert_eq!(s, 401, "an idle session ends");
    // Absolute timeout.
    let mut d = Browser::new(&app);
    d.login("root", PASSWORD).await;
    raw_sql(
        &app,
        db,
        "UPDATE auth_sessions SET expires_at = 0 WHERE revoked_at IS NULL",
    )
    .await;
    let (s, _) = d.get("/auth/session").await;
    assert_eq!(s, 401, "an expired session ends");
    let (s, _) = a.get("/auth/session").await;
    assert_eq!(s, 401);
    let entries = app.audit_entries().await;
    for reason in ["user_revoked", "idle_timeout", "absolute_timeout"] {
        assert!(
            entries
                .iter()
                .any(|e| e["event"] == "session.revoked" && e["meta"]["reason"] == reason),
            "{reason}"
        );
    }
    // Logout clears the cookie and ends the session.
    let mut e = Browser::new(&app);
    e.login("root", PASSWORD).await;
    let (s, _) = e.post("/auth/logout", json!({})).await;
    assert_eq!(s, 201);
    assert!(e.cookie.is_none());
}

async fn raw_sql(app: &TestApp, db: Db, sql: &str) {
    let url = &app.state.config.database_url;
    match db {
        Db::Sqlite => {
            let pool = sqlx::SqlitePool::connect(url).await.unwrap();
            sqlx::raw_sql(sqlx::AssertSqlSafe(sql.to_string()))
                .execute(&pool)
                .await
                .unwrap();
        }
        Db::Postgres => {
            let pool = sqlx::PgPool::connect(url).await.unwrap();
            sqlx::raw_sql(sqlx::AssertSqlSafe(sql.to_string()))
                .execute(&pool)
                .await
                .unwrap();
        }
    }
}

async fn a_chat_token_from_a_session_connects_and_deprovisioning_cuts_everything(db: Db) {
    let app = TestApp::spawn(db).await;
    let (mut admin, _) = enrolled_admin(&app, "root").await;
    // A plain user (no 2FA required) logs in; here through a password too.
    app.users(&["nurse"]).await;
    let hash = ward::auth::password::hash(PASSWORD).unwrap();
    app.state
        .store
        .identity
        .upsert_password("nurse", &hash, 0, &[])
        .await
        .unwrap();
    let mut nurse = Browser::new(&app);
    let (s, body) = nurse.login("nurse", PASSWORD).await;
    assert_eq!(s, 201, "{body}");
    assert_eq!(body["mfa_required"], false);
    let (s, minted) = nurse.post("/auth/chat-token", json!({})).await;
    assert_eq!(s, 201, "{minted}");
    let token = minted["token"].as_str().unwrap().to_string();
    let claims = ward::auth::token::verify(
        &token,
        crate::helpers::SECRET.as_bytes(),
        false,
        now_secs() as i64,
    )
    .unwrap();
    assert_eq!(claims.user_id.as_deref(), Some("nurse"));
    assert!(claims.exp.unwrap() - claims.iat.unwrap() <= app.state.config.sessions.chat_token_secs);
    let (s, _) = app.get("/users", &token).await;
    assert_eq!(s, 200);
    let (mut ws, first) = app.connect_raw("nurse", &token).await;
    assert_eq!(first["type"], "health.check");

    // Deprovision: the WebSocket closes, the token and the session stop working, and the
    // client cannot reconnect.
    let (s, body) = admin
        .post("/admin/users/nurse/deprovision", json!({}))
        .await;
    assert_eq!(s, 201, "{body}");
    assert_eq!(body["sessions_revoked"], 1);
    let closed = closes(&mut ws).await;
    assert!(closed.is_ok(), "the open WebSocket is closed");
    let (s, _) = app.get("/users", &token).await;
    assert_eq!(s, 401);
    let (_, refused) = app.connect_raw("nurse", &token).await;
    assert!(refused.get("error").is_some(), "{refused}");
    let (s, _) = nurse.get("/auth/session").await;
    assert_eq!(s, 401);
    let (s, _) = nurse.post("/auth/chat-token", json!({})).await;
    assert_eq!(s, 401);
    let entries = app.audit_entries().await;
    assert!(entries.iter().any(|e| e["event"] == "session.revoked"
        && e["meta"]["reason"] == "deprovisioned"
        && e["subject"]["id"] == "nurse"));
    assert!(entries.iter().any(|e| e["event"] == "token.rejected"));
}

async fn the_admin_api_stores_sso_providers_with_sealed_secrets(db: Db) {
    let app = TestApp::spawn(db).await;
    let (mut admin, _) = enrolled_admin(&app, "root").await;
    let body = json!({"kind": "oidc", "name": "Okta", "config": {"issuer": "https://idp.example.com", "client_id": "ward"}, "secret": "s3cr3t-client-secret"});
    let (s, reply) = admin
        .call(
            reqwest::Method::PUT,
            "/admin/sso/providers/okta",
            Some(body.clone()),
        )
        .await;
    assert_eq!(s, 200, "{reply}");
    assert_eq!(reply["provider"]["has_secret"], true);
    assert!(
        !reply.to_string().contains("s3cr3t"),
        "the secret is never returned"
    );
    let row = app
        .state
        .store
        .identity
        .find_provider("okta")
        .await
        .unwrap()
        .unwrap();
    assert!(
        !String::from_utf8_lossy(row.secret.as_deref().unwrap()).contains("s3cr3t"),
        "sealed at rest"
    );
    let p = ward::auth::sso::find_provider(&app.state.auth(), "okta")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        secrecy::ExposeSecret::expose_secret(p.secret.as_ref().unwrap()),
        "s3cr3t-client-secret"
    );
    // Bad input answers 400; a user token (even an admin's) is not an admin session.
    let (s, _) = admin
        .call(
            reqwest::Method::PUT,
            "/admin/sso/providers/bad",
            Some(json!({"kind": "oidc", "name": "x", "config": {}})),
        )
        .await;
    assert_eq!(s, 400);
    let (s, _) = app
        .call(
            reqwest::Method::PUT,
            "/admin/sso/providers/okta",
            &app.token("root"),
            Some(body.clone()),
        )
        .await;
    assert_eq!(s, 403);
    let (s, _) = app
        .call(
            reqwest::Method::PUT,
            "/admin/sso/providers/okta",
            &app.server_token(),
            Some(body),
        )
        .await;
    assert_eq!(s, 200, "the API secret may configure SSO");
    // The 2FA policy cannot drop admins.
    let (s, _) = admin
        .call(
            reqwest::Method::PUT,
            "/admin/auth/2fa-policy",
            Some(json!({"roles": ["auditor"]})),
        )
        .await;
    assert_eq!(s, 400);
    let (s, p) = admin
        .call(
            reqwest::Method::PUT,
            "/admin/auth/2fa-policy",
            Some(json!({"roles": ["admin", "moderator"]})),
        )
        .await;
    assert_eq!(s, 200, "{p}");
    let entries = app.audit_entries().await;
    assert!(
        entries
            .iter()
            .filter(|e| e["event"] == "config.change")
            .count()
            >= 3
    );
    assert!(!serde_json::to_string(&entries).unwrap().contains("s3cr3t"));
}

async fn revoking_a_session_revokes_its_chat_tokens_and_closes_their_websockets(db: Db) {
    let app = TestApp::spawn(db).await;
    app.users(&["nurse"]).await;
    let hash = ward::auth::password::hash(PASSWORD).unwrap();
    app.state
        .store
        .identity
        .upsert_password("nurse", &hash, 0, &[])
        .await
        .unwrap();
    let mut phone = Browser::new(&app);
    phone.login("nurse", PASSWORD).await;
    let mut laptop = Browser::new(&app);
    laptop.login("nurse", PASSWORD).await;
    let (_, a) = phone.post("/auth/chat-token", json!({})).await;
    let (_, b) = laptop.post("/auth/chat-token", json!({})).await;
    let (phone_token, laptop_token) = (
        a["token"].as_str().unwrap().to_string(),
        b["token"].as_str().unwrap().to_string(),
    );
    let (mut phone_ws, first) = app.connect_raw("nurse", &phone_token).await;
    assert_eq!(first["type"], "health.check");
    let (_laptop_ws, first) = app.connect_raw("nurse", &laptop_token).await;
    assert_eq!(first["type"], "health.check");

    // The user signs the phone out from the laptop.
    let (_, list) = laptop.get("/auth/sessions").await;
    let phone_id = list["sessions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|x| x["current"] == false)
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string();
    let (s, _) = laptop
        .call(
            reqwest::Method::DELETE,
            &format!("/auth/sessions/{phone_id}"),
            None,
        )
        .await;
    assert_eq!(s, 200);
    let closed = closes(&mut phone_ws).await;
    assert!(closed.is_ok(), "the phone's WebSocket is closed");
    let (s, _) = app.get("/users", &phone_token).await;
    assert_eq!(s, 401, "the phone's chat token died with its session");
    let (_, refused) = app.connect_raw("nurse", &phone_token).await;
    assert!(refused.get("error").is_some());
    let (s, _) = app.get("/users", &laptop_token).await;
    assert_eq!(s, 200, "the laptop's session and token are untouched");
}

/// Waits (at most 5 s) for the server to close a WebSocket; `Err` if it stays open.
async fn closes(ws: &mut crate::helpers::WsStream) -> Result<(), tokio::time::error::Elapsed> {
    use futures_util::StreamExt;
    tokio::time::timeout(std::time::Duration::from_secs(5), async {
        loop {
            match ws.next().await {
                Some(Ok(tokio_tungstenite::tungstenite::Message::Close(_)))
                | None
                | Some(Err(_)) => return,
                Some(Ok(_)) => continue,
            }
        }
    })
    .await
}
