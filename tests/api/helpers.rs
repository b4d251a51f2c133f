//! Spawns the real application on port 0 with a fresh database (a temporary SQLite file,
//! or a fresh PostgreSQL database) and talks to it over HTTP and WebSocket.

use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio::net::TcpStream;
use tokio::sync::oneshot;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};
use ward::app::Application;
use ward::auth::token;
use ward::config::Config;

pub const KEY: &str = "test-key";
pub const SECRET: &str = "test-secret-that-is-long-enough";
/// Planted in the names and custom fields of the users and messages the helpers create: in a
/// server log it is PHI that leaked (tests/logscan/scan.py looks for it).
pub const PHI_MARKER: &str = "WARDPHI";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Db {
    Sqlite,
    Postgres,
}

/// Where PostgreSQL tests create their databases. A test that cannot reach it fails.
pub fn pg_base_url() -> String {
    std::env::var("WARD_TEST_PG_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432".into())
}

/// A fresh database URL of the given kind, and what to clean up afterwards.
pub fn fresh_database(db: Db) -> (String, Cleanup) {
    let name = format!("ward_test_{}", uuid::Uuid::new_v4().simple());
    match db {
        Db::Sqlite => {
            let dir = std::env::temp_dir().join(name);
            std::fs::create_dir_all(&dir).unwrap();
            (
                format!("sqlite://{}", dir.join("ward.db").display()),
                Cleanup::Dir(dir),
            )
        }
        Db::Postgres => (
            format!("{}/{name}", pg_base_url()),
            Cleanup::PgDatabase(name),
        ),
    }
}

/// The shared Redis for cross-node tests. A test that cannot reach it fails.
pub fn redis_url() -> String {
    std::env::var("WARD_TEST_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into())
}

/// A Redis server of the test's own, on a free loopback port, that the test can stop and
/// start again (same port) to simulate an outage.
pub struct RedisServer {
    pub port: u16,
    child: Option<std::process::Child>,
}

impl RedisServer {
    pub async fn start() -> Self {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let mut server = Self { port, child: None };
        server.resume().await;
        server
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// (Re)starts the server and waits until it answers PING.
    pub async fn resume(&mut self) {
        let child = std::process::Command::new("redis-server")
            .args([
                "--bind",
                "127.0.0.1",
                "--port",
                &self.port.to_string(),
                "--save",
                "",
                "--appendonly",
                "no",
            ])
            .stdout(std::process::Stdio::null())
            .spawn()
            .expect("redis-server is installed");
        self.child = Some(child);
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        loop {
            if let Ok(client) = redis::Client::open(self.url())
                && let Ok(mut c) = client.get_multiplexed_async_connection().await
                && redis::cmd("PING")
                    .query_async::<String>(&mut c)
                    .await
                    .is_ok()
            {
                return;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "redis-server starts"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Polls `cond` until it holds, failing after `secs` seconds. For state that changes in the
/// background with no event to wait on (another node's view, a metric).
pub async fn eventually(secs: u64, what: &str, mut cond: impl AsyncFnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(secs);
    while !cond().await {
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting until {what}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// The directory where this run keeps every server's log (scripts/test.sh sets
/// `WARD_TEST_LOG_DIR`), for tests/logscan/scan.py to search for PHI and secrets afterwards.
fn log_dir() -> Option<std::path::PathBuf> {
    std::env::var_os("WARD_TEST_LOG_DIR").map(Into::into)
}

/// Where the in-process servers of this test process log. With `RUST_LOG` set, to the
/// test's output. In a run that keeps logs, at `WARD_LOG` (default `debug`, library caps
/// applied as in the binary) to a file of this process's own. Whichever subscriber a process
/// installs first stays (tests/api/logging.rs installs its own before it starts a server).
pub fn install_server_logs() {
    if std::env::var_os("RUST_LOG").is_some() {
        let _ = tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
            .with_test_writer()
            .try_init();
    } else if let Some(dir) = log_dir() {
        let wanted = std::env::var("WARD_LOG").unwrap_or_else(|_| "debug".into());
        let filter = ward::logging::filter_directives(&wanted);
        let _ = tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::new(filter))
            .with_ansi(false)
            .with_writer(std::sync::Arc::new(test_log_file(&dir, "")))
            .try_init();
    }
}

/// `WARD_LOG` for a `ward` process a test spawns: `debug` in a run that keeps logs, else
/// `fallback`.
pub fn spawned_log_level(fallback: &'static str) -> &'static str {
    if log_dir().is_some() {
        "debug"
    } else {
        fallback
    }
}

/// The stderr of a `ward` process a test spawns and does not read: a log file of its own in
/// a run that keeps logs, else nowhere.
pub fn spawned_stderr() -> std::process::Stdio {
    match log_dir() {
        Some(dir) => test_log_file(&dir, &spawned_suffix()).into(),
        None => std::process::Stdio::null(),
    }
}

/// Keeps what a test read from a spawned process's stderr in a log file of its own, in a
/// run that keeps logs.
pub fn keep_spawned_log(text: &str) {
    if let Some(dir) = log_dir() {
        use std::io::Write;
        let _ = test_log_file(&dir, &spawned_suffix()).write_all(text.as_bytes());
    }
}

fn spawned_suffix() -> String {
    format!("-ward-{}", &uuid::Uuid::new_v4().simple().to_string()[..8])
}

/// `<dir>/api-<test name>-<pid><suffix>.log`, named after the running test (nextest runs one
/// test per process, on a thread of the test's name) so a scanner hit points at its test.
fn test_log_file(dir: &std::path::Path, suffix: &str) -> std::fs::File {
    std::fs::create_dir_all(dir).expect("WARD_TEST_LOG_DIR can be created");
    let test = std::thread::current()
        .name()
        .unwrap_or("main")
        .replace("::", ".");
    let path = dir.join(format!("api-{test}-{}{suffix}.log", std::process::id()));
    std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&path)
        .unwrap_or_else(|e| panic!("cannot open the test log {}: {e}", path.display()))
}

pub enum Cleanup {
    Dir(std::path::PathBuf),
    PgDatabase(String),
    /// Another node of the same test owns the database.
    Shared,
}

impl Drop for Cleanup {
    fn drop(&mut self) {
        match self {
            Cleanup::Dir(dir) => {
                let _ = std::fs::remove_dir_all(dir);
            }
            Cleanup::Shared => {}
            Cleanup::PgDatabase(name) => {
                let sql = format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)");
                // Drop may run inside the test's runtime: use a thread with its own.
                let _ = std::thread::spawn(move || {
                    let rt = tokio::runtime::Builder::new_current_thread()
                        .enable_all()
                        .build()
                        .unwrap();
                    rt.block_on(async {
                        use sqlx::Connection;
                        if let Ok(mut c) =
                            sqlx::PgConnection::connect(&format!("{}/postgres", pg_base_url()))
                                .await
                        {
                            let _ = sqlx::raw_sql(sqlx::AssertSqlSafe(sql))
                                .execute(&mut c)
                                .await;
                        }
                    });
                })
                .join();
            }
        }
    }
}

pub struct TestApp {
    pub base: String,
    pub ws_base: String,
    pub http: reqwest::Client,
    pub state: ward::app::AppState,
    shutdown: Option<oneshot::Sender<()>>,
    server: Option<tokio::task::JoinHandle<anyhow::Result<()>>>,
    _cleanup: Cleanup,
}

impl TestApp {
    pub async fn spawn(db: Db) -> Self {
        Self::spawn_with(db, |_| {}).await
    }

    pub async fn spawn_with(db: Db, tweak: impl FnOnce(&mut Config)) -> Self {
        let (url, cleanup) = fresh_database(db);
        Self::spawn_on(url, cleanup, tweak).await
    }

    /// `n` nodes sharing one fresh database and one Redis bus channel (real Redis at
    /// `WARD_TEST_REDIS_URL`, default `redis://127.0.0.1:6379`).
    pub async fn spawn_cluster(
        db: Db,
        n: usize,
        redis_url: &str,
        tweak: impl Fn(&mut Config),
    ) -> Vec<Self> {
        let (url, cleanup) = fresh_database(db);
        let channel = format!("ward-test:{}", uuid::Uuid::new_v4().simple());
        // Nodes of one deployment share the root key (a KMS key in production; here the
        // local key file in one data dir).
        let shared_dir =
            std::env::temp_dir().join(format!("ward_cluster_{}", uuid::Uuid::new_v4().simple()));
        let mut cleanup = Some(cleanup);
        let mut nodes = Vec::new();
        for i in 0..n {
            let redis = redis_url.to_string();
            let channel = channel.clone();
            let node = Self::spawn_on(
                url.clone(),
                cleanup.take().unwrap_or(Cleanup::Shared),
                |c| {
                    c.redis_url = Some(redis);
                    c.redis_channel = channel;
                    c.node_id = format!("node-{i}");
                    c.data_dir = shared_dir.clone();
                    tweak(c);
                },
            )
            .await;
            nodes.push(node);
        }
        nodes
    }

    pub async fn spawn_on(url: String, cleanup: Cleanup, tweak: impl FnOnce(&mut Config)) -> Self {
        install_server_logs();
        let data_dir =
            std::env::temp_dir().join(format!("ward_data_{}", uuid::Uuid::new_v4().simple()));
        let env = [
            ("WARD_BIND", "127.0.0.1:0".to_string()),
            ("WARD_DATA_DIR", data_dir.display().to_string()),
            ("WARD_DATABASE_URL", url),
            ("WARD_API_KEY", KEY.to_string()),
            ("WARD_API_SECRET", SECRET.to_string()),
        ];
        let mut config = Config::from_sources(None, |k| {
            env.iter().find(|(n, _)| *n == k).map(|(_, v)| v.clone())
        })
        .unwrap();
        tweak(&mut config);
        let app = Application::build(config)
            .await
            .unwrap_or_else(|e| panic!("the app must start (is the database reachable?): {e:#}"));
        let addr = app.local_addr();
        let state = app.state();
        let (tx, rx) = oneshot::channel::<()>();
        let server = tokio::spawn(app.run_until(async {
            let _ = rx.await;
        }));
        Self {
            base: format!("http://{addr}"),
            ws_base: format!("ws://{addr}"),
            http: reqwest::Client::new(),
            state,
            shutdown: Some(tx),
            server: Some(server),
            _cleanup: cleanup,
        }
    }

    /// Starts a graceful shutdown and waits for the server to finish.
    pub async fn shutdown(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(server) = self.server.take() {
            tokio::time::timeout(Duration::from_secs(10), server)
                .await
                .expect("server stops")
                .unwrap()
                .unwrap();
        }
    }

    pub fn server_token(&self) -> String {
        token::server_token(SECRET.as_bytes())
    }

    /// Every audit entry, oldest first, as auditors see it (after chaining everything
    /// committed so far).
    pub async fn audit_entries(&self) -> Vec<serde_json::Value> {
        let size = self.state.audit.sync().await.unwrap();
        let rows = self
            .state
            .store
            .audit
            .find_audit_range(0, size as i64)
            .await
            .unwrap();
        assert_eq!(rows.len() as u64, size, "every chained entry is stored");
        ward::audit::view::entries_json(
            self.state.store.audit.as_ref(),
            self.state.crypto.as_deref(),
            &rows,
        )
        .await
        .unwrap()
    }

    pub fn token(&self, user_id: &str) -> String {
        token::user_token(user_id, None, SECRET.as_bytes())
    }

    fn url(&self, path: &str) -> String {
        let sep = if path.contains('?') { '&' } else { '?' };
        format!("{}{path}{sep}api_key={KEY}", self.base)
    }

    /// Sends a request with a raw token; returns status and JSON body.
    pub async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        token: &str,
        body: Option<Value>,
    ) -> (u16, Value) {
        let mut req = self
            .http
            .request(method, self.url(path))
            .header("Authorization", token)
            .header("stream-auth-type", "jwt");
        if let Some(b) = body {
            req = req.json(&b);
        }
        let res = req.send().await.expect("request is sent");
        let status = res.status().as_u16();
        let text = res.text().await.unwrap();
        let json = serde_json::from_str(&text).unwrap_or_else(|_| panic!("reply is JSON: {text}"));
        (status, json)
    }

    pub async fn post(&self, path: &str, token: &str, body: Value) -> (u16, Value) {
        self.call(reqwest::Method::POST, path, token, Some(body))
            .await
    }

    pub async fn get(&self, path: &str, token: &str) -> (u16, Value) {
        self.call(reqwest::Method::GET, path, token, None).await
    }

    /// GET with a JSON `payload` query parameter, as the SDK sends it.
    pub async fn get_payload(&self, path: &str, token: &str, payload: Value) -> (u16, Value) {
        let encoded: String = url_encode(&payload.to_string());
        self.get(&format!("{path}?payload={encoded}"), token).await
    }

    /// Creates users through the server API.
    pub async fn users(&self, ids: &[&str]) {
        let users: serde_json::Map<String, Value> = ids
            .iter()
            .map(|id| {
                (
                    id.to_string(),
                    json!({"id": id, "name": format!("User {id} {PHI_MARKER}"), "diagnosis": PHI_MARKER}),
                )
            })
            .collect();
        let (status, body) = self
            .post("/users", &self.server_token(), json!({ "users": users }))
            .await;
        assert_eq!(status, 201, "{body}");
    }

    /// Creates a messaging channel as `creator` with the given members.
    pub async fn channel(&self, id: &str, creator: &str, members: &[&str]) -> Value {
        let (status, body) = self
            .post(
                &format!("/channels/messaging/{id}/query"),
                &self.token(creator),
                json!({"data": {"members": members}, "state": true}),
            )
            .await;
        assert_eq!(status, 201, "{body}");
        body
    }

    /// Sends a message as `user`, with the PHI marker in a custom field; returns the stored
    /// message.
    pub async fn send(&self, cid: &str, user: &str, mut message: Value) -> Value {
        if let Some(fields) = message.as_object_mut() {
            fields
                .entry("phi_probe")
                .or_insert_with(|| json!(format!("{PHI_MARKER} note")));
        }
        let path = format!("/channels/{}/message", cid.replacen(':', "/", 1));
        let (status, body) = self
            .post(&path, &self.token(user), json!({ "message": message }))
            .await;
        assert_eq!(status, 201, "{body}");
        body["message"].clone()
    }

    /// Opens the SDK's WebSocket for `user` and reads the first frame.
    pub async fn connect(&self, user: &str) -> Ws {
        let (ws, first) = self.connect_raw(user, &self.token(user)).await;
        assert_eq!(first["type"], "health.check", "{first}");
        Ws {
            connection_id: first["connection_id"].as_str().unwrap().to_string(),
            me: first["me"].clone(),
            stream: ws,
        }
    }

    pub async fn connect_raw(&self, user: &str, token: &str) -> (WsStream, Value) {
        let json = json!({"user_id": user, "user_details": {"id": user}}).to_string();
        let url = format!(
            "{}/connect?json={}&api_key={KEY}&authorization={}&stream-auth-type=jwt",
            self.ws_base,
            url_encode(&json),
            url_encode(token)
        );
        let (mut ws, _) = tokio_tungstenite::connect_async(url)
            .await
            .expect("upgrade succeeds");
        let first = next_json(&mut ws).await;
        (ws, first)
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
    }
}

pub type WsStream = WebSocketStream<MaybeTlsStream<TcpStream>>;

pub fn url_encode(text: &str) -> String {
    serde_urlencoded::to_string([("v", text)]).unwrap()[2..].to_string()
}

/// How long a test waits for an event before failing (a guard, not a synchronisation).
const EVENT_TIMEOUT: Duration = Duration::from_secs(5);

pub async fn next_json(ws: &mut WsStream) -> Value {
    loop {
        let msg = tokio::time::timeout(EVENT_TIMEOUT, ws.next())
            .await
            .expect("a frame arrives in time")
            .expect("the socket is open")
            .expect("the frame is valid");
        match msg {
            Message::Text(t) => return serde_json::from_str(&t).unwrap(),
            Message::Close(f) => panic!("socket closed: {f:?}"),
            _ => continue,
        }
    }
}

pub struct Ws {
    pub stream: WsStream,
    pub connection_id: String,
    pub me: Value,
}

impl Ws {
    /// Waits for the next event of `kind`, skipping others.
    pub async fn wait_for(&mut self, kind: &str) -> Value {
        loop {
            let ev = next_json(&mut self.stream).await;
            if ev["type"] == kind {
                return ev;
            }
        }
    }

    /// Waits for the next event of `kind` that satisfies `pred`.
    pub async fn wait_for_where(&mut self, kind: &str, pred: impl Fn(&Value) -> bool) -> Value {
        loop {
            let ev = self.wait_for(kind).await;
            if pred(&ev) {
                return ev;
            }
        }
    }

    pub async fn send_text(&mut self, text: &str) {
        self.stream.send(Message::Text(text.into())).await.unwrap();
    }

    /// Waits for the server to close the socket and returns the close code.
    pub async fn closed_with(&mut self) -> u16 {
        loop {
            let msg = tokio::time::timeout(EVENT_TIMEOUT, self.stream.next())
                .await
                .expect("the socket closes in time");
            match msg {
                Some(Ok(Message::Close(Some(frame)))) => return frame.code.into(),
                Some(Ok(Message::Close(None))) | None => return 1005,
                Some(Ok(_)) => continue,
                Some(Err(e)) => panic!("socket error before close frame: {e}"),
            }
        }
    }
}

/// Generates one test per database from `async fn name(db: Db)` functions.
macro_rules! on_both_databases {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name($crate::helpers::Db::Sqlite).await
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name($crate::helpers::Db::Postgres).await
                }
            )*
        }
    };
}
pub(crate) use on_both_databases;
