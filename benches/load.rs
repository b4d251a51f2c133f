//! Load benchmark for Ward (`cargo bench --bench load [-- OPTIONS]`).
//!
//! For each database in `--db` (default `sqlite,postgres`) it starts the real server binary
//! on 127.0.0.1 with a fresh data dir (and a fresh PostgreSQL database), then runs:
//!
//! * **Scenario A**: two users, each with one WebSocket watching one `messaging` channel. A
//!   sender posts `--a-messages` messages through REST with `--a-conc` requests in flight.
//!   Reports accepted messages/s, REST latency p50/p99, end-to-end latency and whether both
//!   watchers received every `message.new`.
//! * **Scenario B**: `--b-conns` WebSocket connections (distinct users) watching one
//!   `livestream` channel. A publisher posts messages through REST at each rate of
//!   `--b-rates` for `--b-secs` seconds. Reports deliveries/s (deliveries ÷ (last receive −
//!   first send)), end-to-end latency from the `ts` field carried in the message, and
//!   connections the server closed early.
//!
//! The publisher takes `ts` (unix ns) just before each REST call and keeps at most 256
//! requests in flight; when the server cannot keep up, the achieved `publish_rate` falls
//! below the target. `other_frames` are mostly the `health.check` replies to the pings
//! every watcher sends every 25 s, as the SDK does.
//!
//! Client side follows `fanout-baseline.md`: few OS threads (`--threads` current_thread
//! runtimes for the watchers, one for the publisher), 4 KiB WebSocket read buffers.
//!
//! Every loop is bounded in count and in time, a watchdog kills the servers and exits after
//! `--deadline-secs`, and the servers are killed on every exit path.
//!
//! Options: `cargo bench --bench load -- --help` lists them with their defaults.
//! Env `WARD_BENCH_SERVER_BIN=/path/to/ward` runs that server binary instead of the one cargo built.

// A benchmark or test reports a failure by panicking: unwrapping is how it fails.
#![allow(clippy::unwrap_used)]

#[path = "common/options.rs"]
mod common;

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::rc::Rc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{Context, anyhow, bail};
use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio::net::TcpStream;
use tokio::sync::{Semaphore, watch};
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use ward::auth::token;

type Ws = WebSocketStream<TcpStream>;

const API_KEY: &str = "benchkey";
/// How long a REST call may take before it counts as failed.
const REST_TIMEOUT: Duration = Duration::from_secs(30);
/// The SDK pings 25 s after each health.check; the server drops a silent socket after 70 s.
const PING_EVERY: Duration = Duration::from_secs(25);

// ---------------------------------------------------------------------------------------
// Options

/// Load benchmark for Ward: scenario A (REST sends to two watchers) and scenario B (fan-out
/// to many WebSocket watchers); see the module documentation.
#[derive(Clone, Debug, clap::Parser)]
struct Opts {
    #[command(flatten)]
    db: common::Databases,
    /// Scenario A: messages sent.
    #[arg(long, default_value_t = 2000)]
    a_messages: usize,
    /// Scenario A: REST requests in flight.
    #[arg(long, default_value_t = 8, value_parser = positive)]
    a_conc: usize,
    /// Scenario B: WebSocket watchers.
    #[arg(long, default_value_t = 1000)]
    b_conns: usize,
    /// Scenario B: publish rates (messages/s), comma-separated.
    #[arg(long, value_delimiter = ',', default_values_t = [20, 100],
          value_parser = clap::value_parser!(u32).range(1..))]
    b_rates: Vec<u32>,
    /// Scenario B: seconds at each rate.
    #[arg(long, default_value_t = 6.0)]
    b_secs: f64,
    /// Runtimes (OS threads) for the watchers.
    #[arg(long, default_value_t = 2, value_parser = positive)]
    threads: usize,
    /// Scenarios to run, comma-separated.
    #[arg(long, value_delimiter = ',', default_values = ["a", "b"], value_parser = ["a", "b"])]
    scenarios: Vec<String>,
    /// A watchdog kills the servers and exits after this many seconds.
    #[arg(long, default_value_t = 1500)]
    deadline_secs: u64,
    /// Keep data dirs and PostgreSQL databases.
    #[arg(long)]
    keep: bool,
}

/// A count that must be at least 1.
pub fn positive(s: &str) -> Result<usize, String> {
    match s.parse::<usize>() {
        Ok(0) => Err("must be at least 1".into()),
        Ok(n) => Ok(n),
        Err(e) => Err(e.to_string()),
    }
}

// ---------------------------------------------------------------------------------------
// Small helpers

fn now_ns() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0)
}

/// Nearest-rank percentile of a sorted slice.
fn pct(sorted: &[u64], q: f64) -> u64 {
    if sorted.is_empty() {
        return 0;
    }
    let rank = ((q * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    sorted[rank - 1]
}

fn ms(ns: u64) -> String {
    let m = ns as f64 / 1e6;
    if m >= 100.0 {
        format!("{m:.0}ms")
    } else if m >= 10.0 {
        format!("{m:.1}ms")
    } else {
        format!("{m:.2}ms")
    }
}

fn rate(x: f64) -> String {
    if x >= 1e6 {
        format!("{:.2}M", x / 1e6)
    } else if x >= 1e4 {
        format!("{:.1}k", x / 1e3)
    } else {
        format!("{x:.0}")
    }
}

/// utime + stime of a process (None = this process), in clock ticks (100 Hz).
fn cpu_ticks(pid: Option<u32>) -> u64 {
    let path = match pid {
        Some(p) => format!("/proc/{p}/stat"),
        None => "/proc/self/stat".into(),
    };
    let Ok(text) = std::fs::read_to_string(path) else {
        return 0;
    };
    let Some(rest) = text.rsplit_once(')').map(|(_, r)| r) else {
        return 0;
    };
    let f: Vec<&str> = rest.split_whitespace().collect();
    // After the command name: state(0) ppid(1) … utime(11) stime(12).
    f.get(11).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0)
        + f.get(12).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0)
}

fn rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        })
        .unwrap_or(0)
}

/// Busy and total jiffies of the whole machine (all cores), from /proc/stat.
fn machine_ticks() -> (u64, u64) {
    let text = std::fs::read_to_string("/proc/stat").unwrap_or_default();
    let f: Vec<u64> = text
        .lines()
        .next()
        .unwrap_or("")
        .split_whitespace()
        .skip(1)
        .filter_map(|v| v.parse().ok())
        .collect();
    let total: u64 = f.iter().take(8).sum();
    let idle = f.get(3).copied().unwrap_or(0) + f.get(4).copied().unwrap_or(0);
    (total - idle, total)
}

/// CPU ticks of every PostgreSQL process (the database side of the `postgres` runs).
fn postgres_ticks() -> u64 {
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return 0;
    };
    dir.filter_map(Result::ok)
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| {
            std::fs::read_to_string(format!("/proc/{pid}/comm"))
                .is_ok_and(|c| c.trim() == "postgres")
        })
        .map(|pid| cpu_ticks(Some(pid)))
        .sum()
}

/// CPU use over a window, in % of one core (so 200 % is both cores of this machine).
struct CpuWindow {
    server_pid: u32,
    t0: Instant,
    server0: u64,
    client0: u64,
    pg0: u64,
    machine0: (u64, u64),
}

struct Cpu {
    server: f64,
    client: f64,
    postgres: f64,
    /// The whole machine: everything, other people's builds included.
    machine: f64,
}

impl Cpu {
    fn text(&self) -> String {
        format!(
            "server_cpu={:.0}% client_cpu={:.0}% postgres_cpu={:.0}% machine_cpu={:.0}%/{}% other_procs_cpu={:.0}%",
            self.server,
            self.client,
            self.postgres,
            self.machine,
            100 * std::thread::available_parallelism().map_or(1, |n| n.get()),
            (self.machine - self.server - self.client - self.postgres).max(0.0)
        )
    }
}

impl CpuWindow {
    fn start(server_pid: u32) -> Self {
        Self {
            server_pid,
            t0: Instant::now(),
            server0: cpu_ticks(Some(server_pid)),
            client0: cpu_ticks(None),
            pg0: postgres_ticks(),
            machine0: machine_ticks(),
        }
    }
    fn finish(&self) -> Cpu {
        let secs = self.t0.elapsed().as_secs_f64().max(1e-3);
        let s = cpu_ticks(Some(self.server_pid)).saturating_sub(self.server0) as f64;
        let c = cpu_ticks(None).saturating_sub(self.client0) as f64;
        let pg = postgres_ticks().saturating_sub(self.pg0) as f64;
        let (busy, total) = machine_ticks();
        let ncpu = std::thread::available_parallelism().map_or(1, |n| n.get()) as f64;
        let machine = (busy - self.machine0.0) as f64 / ((total - self.machine0.1).max(1) as f64)
            * 100.0
            * ncpu;
        // Ticks are 10 ms: ticks per second == percent of one core.
        Cpu {
            server: s / secs,
            client: c / secs,
            postgres: pg / secs,
            machine,
        }
    }
}

fn load_avg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_default()
}

// ---------------------------------------------------------------------------------------
// Server process

static PIDS: Mutex<Vec<u32>> = Mutex::new(Vec::new());

fn kill_pid(pid: u32) {
    let _ = Command::new("kill").arg("-9").arg(pid.to_string()).status();
}

struct Server {
    child: Child,
    pid: u32,
    port: u16,
    secret: String,
    data_dir: PathBuf,
    log_path: PathBuf,
    keep: bool,
}

impl Server {
    fn start(db: &str, database_url: Option<&str>, keep: bool) -> anyhow::Result<Self> {
        let data_dir = std::env::temp_dir().join(format!(
            "ward-bench-{}-{db}-{}",
            std::process::id(),
            now_ns() % 1_000_000_000
        ));
        std::fs::create_dir_all(&data_dir)?;
        let log_path = data_dir.join("server.log");
        let log = std::fs::File::create(&log_path)?;
        let secret = format!("bench-secret-{}", now_ns());
        // WARD_BENCH_SERVER_BIN pins a server build (e.g. a copy of target/release/ward) while
        // others rebuild the tree; by default the binary cargo built for this bench.
        let bin = std::env::var_os("WARD_BENCH_SERVER_BIN")
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from(env!("CARGO_BIN_EXE_ward")));
        let mut cmd = Command::new(&bin);
        cmd.arg("serve")
            .env_remove("WARD_CONFIG")
            .env_remove("WARD_DATABASE_URL")
            .env_remove("WARD_MAX_CONNECTIONS_PER_USER")
            .env_remove("WARD_WS_QUEUE_LEN")
            // A throughput measurement from one address with few users, not about rate limits.
            .env("WARD_RATE_LIMIT_WRITES_PER_USER", "0")
            .env("WARD_RATE_LIMIT_CONNECT_PER_IP", "0")
            .env("WARD_RATE_LIMIT_CONNECT_PER_USER", "0")
            .env("WARD_BIND", "127.0.0.1:0")
            .env("WARD_DATA_DIR", &data_dir)
            .env("WARD_API_KEY", API_KEY)
            .env("WARD_API_SECRET", &secret)
            .env(
                "WARD_LOG",
                std::env::var("WARD_LOG").unwrap_or_else(|_| "info,sqlx=warn".into()),
            )
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::from(log));
        if let Some(url) = database_url {
            cmd.env("WARD_DATABASE_URL", url);
        }
        let mut child = cmd
            .spawn()
            .with_context(|| format!("spawning {}", bin.display()))?;
        let pid = child.id();
        PIDS.lock().unwrap().push(pid);
        let stdout = child.stdout.take().expect("piped stdout");
        let (tx, rx) = std::sync::mpsc::channel::<u16>();
        std::thread::spawn(move || {
            // Reads the port, then keeps draining stdout so the server never blocks on it.
            let mut tx = Some(tx);
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if let Some(rest) = line.strip_prefix("ward: listening on http://")
                    && let Some(port) = rest.rsplit(':').next().and_then(|p| p.trim().parse().ok())
                    && let Some(tx) = tx.take()
                {
                    let _ = tx.send(port);
                }
            }
        });
        let mut server = Self {
            child,
            pid,
            port: 0,
            secret,
            data_dir,
            log_path,
            keep,
        };
        match rx.recv_timeout(Duration::from_secs(90)) {
            Ok(port) => server.port = port,
            Err(_) => {
                let log = std::fs::read_to_string(&server.log_path).unwrap_or_default();
                bail!("the server did not report its port within 90 s; its log:\n{log}");
            }
        }
        Ok(server)
    }

    fn secret(&self) -> &[u8] {
        self.secret.as_bytes()
    }

    /// Lines of the server log at WARN or ERROR.
    fn log_problems(&self) -> Vec<String> {
        std::fs::read_to_string(&self.log_path)
            .unwrap_or_default()
            .lines()
            .filter(|l| l.contains("WARN") || l.contains("ERROR") || l.contains("panicked"))
            .map(String::from)
            .collect()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        PIDS.lock().unwrap().retain(|p| *p != self.pid);
        if !self.keep {
            let _ = std::fs::remove_dir_all(&self.data_dir);
        } else {
            eprintln!("bench: kept {}", self.data_dir.display());
        }
    }
}

// ---------------------------------------------------------------------------------------
// REST and WebSocket clients

#[derive(Clone)]
struct Api {
    http: reqwest::Client,
    base: String,
}

impl Api {
    fn new(port: u16, pool: usize) -> anyhow::Result<Self> {
        let http = reqwest::Client::builder()
            .no_proxy()
            .tcp_nodelay(true)
            .pool_max_idle_per_host(pool)
            .timeout(REST_TIMEOUT)
            .build()?;
        Ok(Self {
            http,
            base: format!("http://127.0.0.1:{port}"),
        })
    }

    /// POSTs `body`; returns the JSON reply of a 2xx, an error with the reply otherwise.
    async fn post(
        &self,
        path: &str,
        token: &str,
        conn_id: Option<&str>,
        body: &Value,
    ) -> anyhow::Result<Value> {
        let mut url = format!("{}{}?api_key={API_KEY}", self.base, path);
        if let Some(c) = conn_id {
            url.push_str("&connection_id=");
            url.push_str(c);
        }
        let res = self
            .http
            .post(url)
            .header("Authorization", token)
            .header("stream-auth-type", "jwt")
            .json(body)
            .send()
            .await?;
        let status = res.status();
        let bytes = res.bytes().await?;
        if !status.is_success() {
            bail!(
                "POST {path}: HTTP {status}: {}",
                String::from_utf8_lossy(&bytes)
            );
        }
        Ok(serde_json::from_slice(&bytes)?)
    }

    async fn upsert_users(&self, server_token: &str, ids: &[String]) -> anyhow::Result<()> {
        for chunk in ids.chunks(100) {
            let users: serde_json::Map<String, Value> = chunk
                .iter()
                .map(|id| (id.clone(), json!({ "id": id })))
                .collect();
            self.post("/users", server_token, None, &json!({ "users": users }))
                .await?;
        }
        Ok(())
    }
}

/// Opens `/connect` for `user` and returns the socket and its `connection_id`.
async fn ws_connect(port: u16, user: &str, token: &str) -> anyhow::Result<(Ws, String)> {
    let payload = json!({ "user_id": user, "user_details": { "id": user } }).to_string();
    let query = serde_urlencoded::to_string([
        ("json", payload.as_str()),
        ("api_key", API_KEY),
        ("authorization", token),
        ("stream-auth-type", "jwt"),
    ])?;
    let url = format!("ws://127.0.0.1:{port}/connect?{query}");
    let tcp = TcpStream::connect(("127.0.0.1", port)).await?;
    tcp.set_nodelay(true)?;
    let config = WebSocketConfig::default()
        .read_buffer_size(4096)
        .write_buffer_size(0);
    let (mut ws, _) = tokio::time::timeout(
        Duration::from_secs(30),
        tokio_tungstenite::client_async_with_config(url, tcp, Some(config)),
    )
    .await
    .context("WebSocket handshake timed out")??;
    loop {
        let frame = tokio::time::timeout(Duration::from_secs(30), ws.next())
            .await
            .context("no health.check within 30 s")?
            .ok_or_else(|| anyhow!("socket closed before health.check"))??;
        match frame {
            Message::Text(t) => {
                let v: Value = serde_json::from_str(&t)?;
                if let Some(id) = v.get("connection_id").and_then(Value::as_str) {
                    return Ok((ws, id.to_string()));
                }
                bail!("first frame is not a health.check: {t}");
            }
            Message::Close(c) => bail!("closed before health.check: {c:?}"),
            _ => continue,
        }
    }
}

/// Picks the integer after `"key":` out of a frame without a JSON parse.
fn field_u64(text: &str, key: &str) -> Option<u64> {
    let pos = text.find(key)? + key.len();
    let digits: &str = &text[pos..];
    let end = digits
        .bytes()
        .position(|b| !b.is_ascii_digit())
        .unwrap_or(digits.len());
    digits[..end].parse().ok()
}

/// A `message.new` carrying the bench fields: (run, seq, ts in unix ns).
fn parse_delivery(text: &str) -> Option<(u32, u32, u64)> {
    if !text.contains("\"type\":\"message.new\"") {
        return None;
    }
    Some((
        field_u64(text, "\"run\":")? as u32,
        field_u64(text, "\"seq\":")? as u32,
        field_u64(text, "\"ts\":")?,
    ))
}

/// Counters of frames other than bench deliveries, shared by all watchers of a scenario.
#[derive(Default)]
struct FrameCounts {
    /// Size of the largest `message.new` frame seen (bytes of JSON text).
    delivery_bytes: AtomicU64,
    watching_start: AtomicU64,
    other: AtomicU64,
}

/// How a watcher's socket ended.
#[derive(Debug, Clone)]
enum End {
    /// We closed it after the scenario.
    Stopped,
    /// The server sent a close frame (code, reason).
    Closed(u16, String),
    Eof,
    Error(String),
}

/// Reads events until `stop` or until the server closes the socket; pings like the SDK.
async fn watch_loop(
    mut ws: Ws,
    client_id: String,
    mut stop: watch::Receiver<bool>,
    counts: Arc<FrameCounts>,
    mut on_delivery: impl FnMut(u32, u32, u64, u64),
) -> End {
    let ping = Message::Text(
        json!([{ "type": "health.check", "client_id": client_id }])
            .to_string()
            .into(),
    );
    let mut ticker = tokio::time::interval_at(tokio::time::Instant::now() + PING_EVERY, PING_EVERY);
    loop {
        tokio::select! {
            biased;
            _ = async { let _ = stop.wait_for(|s| *s).await; } => {
                let _ = tokio::time::timeout(Duration::from_secs(1), ws.close(None)).await;
                return End::Stopped;
            }
            frame = ws.next() => match frame {
                Some(Ok(Message::Text(t))) => {
                    if let Some((run, seq, ts)) = parse_delivery(&t) {
                        on_delivery(run, seq, ts, now_ns());
                        counts.delivery_bytes.fetch_max(t.len() as u64, Ordering::Relaxed);
                    } else if t.contains("\"type\":\"user.watching.start\"") {
                        counts.watching_start.fetch_add(1, Ordering::Relaxed);
                    } else {
                        counts.other.fetch_add(1, Ordering::Relaxed);
                    }
                }
                Some(Ok(Message::Close(c))) => {
                    return match c {
                        Some(f) => End::Closed(f.code.into(), f.reason.to_string()),
                        None => End::Closed(1005, String::new()),
                    };
                }
                Some(Ok(_)) => {}
                Some(Err(e)) => return End::Error(e.to_string()),
                None => return End::Eof,
            },
            _ = ticker.tick() => {
                if let Err(e) = ws.send(ping.clone()).await {
                    return End::Error(format!("ping: {e}"));
                }
            }
        }
    }
}

fn summarize_ends(ends: &[End]) -> (usize, String) {
    let mut by_kind: BTreeMap<String, usize> = BTreeMap::new();
    for e in ends {
        let k = match e {
            End::Stopped => continue,
            End::Closed(code, reason) => format!("close {code} {reason}"),
            End::Eof => "eof".into(),
            End::Error(e) => format!("error {e}"),
        };
        *by_kind.entry(k).or_default() += 1;
    }
    let n = by_kind.values().sum();
    let text = by_kind
        .iter()
        .map(|(k, v)| format!("{v}x[{k}]"))
        .collect::<Vec<_>>()
        .join(" ");
    (n, text)
}

// ---------------------------------------------------------------------------------------
// Results

struct Row {
    db: String,
    scenario: String,
    load: String,
    throughput: String,
    lat: String,
    deliveries: String,
    closed_early: usize,
    cpu: String,
}

// ---------------------------------------------------------------------------------------
// Scenario A: REST messages/s with 2 users watching

async fn scenario_a(srv: &Server, db: &str, o: &Opts) -> anyhow::Result<Row> {
    let n = o.a_messages;
    let api = Api::new(srv.port, o.a_conc + 2)?;
    let server_token = token::server_token(srv.secret());
    let users = vec!["a-alice".to_string(), "a-bob".to_string()];
    api.upsert_users(&server_token, &users).await?;
    let tokens: Vec<String> = users
        .iter()
        .map(|u| token::user_token(u, None, srv.secret()))
        .collect();

    let (stop_tx, stop_rx) = watch::channel(false);
    let counts = Arc::new(FrameCounts::default());
    // Per watcher: seen seqs, duplicates, latencies.
    struct Seen {
        seen: Vec<bool>,
        distinct: usize,
        dups: usize,
        lat: Vec<u64>,
        last_recv: u64,
    }
    let mut seen = Vec::new();
    let mut tasks = Vec::new();
    let mut conns = Vec::new();
    for (i, user) in users.iter().enumerate() {
        let (ws, conn_id) = ws_connect(srv.port, user, &tokens[i])
            .await
            .with_context(|| format!("connecting {user}"))?;
        conns.push((ws, conn_id));
    }
    // Alice creates the channel with both members; each watches with its own connection.
    let body0 = json!({ "data": { "members": users }, "watch": true, "state": true });
    api.post(
        "/channels/messaging/bench-a/query",
        &tokens[0],
        Some(&conns[0].1),
        &body0,
    )
    .await
    .context("creating the channel")?;
    api.post(
        "/channels/messaging/bench-a/query",
        &tokens[1],
        Some(&conns[1].1),
        &json!({ "watch": true, "state": true }),
    )
    .await
    .context("bob watching")?;
    for (i, (ws, _)) in conns.into_iter().enumerate() {
        let s = Arc::new(Mutex::new(Seen {
            seen: vec![false; n],
            distinct: 0,
            dups: 0,
            lat: Vec::with_capacity(n),
            last_recv: 0,
        }));
        seen.push(s.clone());
        let client_id = format!("{}--{}", users[i], uuid::Uuid::new_v4());
        let stop = stop_rx.clone();
        let counts = counts.clone();
        tasks.push(tokio::spawn(watch_loop(
            ws,
            client_id,
            stop,
            counts,
            move |run, seq, ts, now| {
                if run != 0 {
                    return;
                }
                let mut s = s.lock().unwrap();
                match s.seen.get_mut(seq as usize) {
                    Some(b) if !*b => {
                        *b = true;
                        s.distinct += 1;
                    }
                    Some(_) => s.dups += 1,
                    None => return,
                }
                s.lat.push(now.saturating_sub(ts));
                s.last_recv = s.last_recv.max(now);
            },
        )));
    }
    tokio::time::sleep(Duration::from_millis(200)).await;

    // Sender: o.a_conc workers pulling sequence numbers; bounded by count and by time.
    let next = Arc::new(AtomicUsize::new(0));
    let deadline = Instant::now() + Duration::from_secs(300);
    let cpu = CpuWindow::start(srv.pid);
    let first_send = now_ns();
    let mut workers = Vec::new();
    for _ in 0..o.a_conc {
        let api = api.clone();
        let next = next.clone();
        let tok = tokens[0].clone();
        workers.push(tokio::spawn(async move {
            let mut lat = Vec::new();
            let mut errors = Vec::new();
            let mut last_reply = 0u64;
            loop {
                let seq = next.fetch_add(1, Ordering::Relaxed);
                if seq >= n || Instant::now() > deadline {
                    break;
                }
                let ts = now_ns();
                let body = json!({ "message": {
                    "text": format!("scenario a message {seq} lorem ipsum dolor sit amet"),
                    "run": 0, "seq": seq, "ts": ts,
                }});
                let t0 = Instant::now();
                match api
                    .post("/channels/messaging/bench-a/message", &tok, None, &body)
                    .await
                {
                    Ok(v) if v.get("message").and_then(|m| m.get("id")).is_some() => {
                        lat.push(t0.elapsed().as_nanos() as u64);
                        last_reply = now_ns();
                    }
                    Ok(v) => errors.push(format!("reply without message: {v}")),
                    Err(e) => errors.push(e.to_string()),
                }
            }
            (lat, errors, last_reply)
        }));
    }
    let mut rest_lat = Vec::new();
    let mut errors = Vec::new();
    let mut last_reply = 0;
    for w in workers {
        let (l, e, lr) = w.await?;
        rest_lat.extend(l);
        errors.extend(e);
        last_reply = last_reply.max(lr);
    }
    let ok = rest_lat.len();
    let elapsed_s = (last_reply.saturating_sub(first_send)) as f64 / 1e9;
    // Wait (bounded) for the watchers to receive everything.
    let expected = 2 * ok;
    let wait_until = Instant::now() + Duration::from_secs(15);
    loop {
        let got: usize = seen.iter().map(|s| s.lock().unwrap().distinct).sum();
        if got >= expected || Instant::now() > wait_until || tasks.iter().all(|t| t.is_finished()) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let c = cpu.finish();
    let (srv_cpu, cli_cpu, cpu_text) = (c.server, c.client, c.text());
    let _ = stop_tx.send(true);
    let mut ends = Vec::new();
    for t in tasks {
        ends.push(
            tokio::time::timeout(Duration::from_secs(5), t)
                .await
                .map(|r| r.unwrap_or(End::Error("task panicked".into())))
                .unwrap_or(End::Error("did not stop".into())),
        );
    }
    let (closed_early, closed_text) = summarize_ends(&ends);

    rest_lat.sort_unstable();
    let mut e2e: Vec<u64> = Vec::new();
    let mut got = 0;
    let mut dups = 0;
    let mut per_watcher = Vec::new();
    let mut last_recv = 0;
    for s in &seen {
        let s = s.lock().unwrap();
        got += s.distinct;
        dups += s.dups;
        per_watcher.push(format!("{}/{}", s.distinct, ok));
        e2e.extend(&s.lat);
        last_recv = last_recv.max(s.last_recv);
    }
    e2e.sort_unstable();
    let mps = ok as f64 / elapsed_s.max(1e-9);
    if !errors.is_empty() {
        eprintln!(
            "bench: scenario A had {} failed sends; first: {}",
            errors.len(),
            errors[0]
        );
    }
    println!(
        "RESULT db={db} scenario=A sent={n} conc={} ok={ok} errors={} elapsed={elapsed_s:.2}s msgs_per_s={mps:.0} rest_p50={} rest_p99={} rest_max={} \
         deliveries={got}/{expected} per_watcher={} dups={dups} all_received={} e2e_p50={} e2e_p99={} closed_early={closed_early} \
         frame_bytes={} frames_watching_start={} frames_other={} {cpu_text} server_rss={}KiB",
        o.a_conc,
        errors.len(),
        ms(pct(&rest_lat, 0.5)),
        ms(pct(&rest_lat, 0.99)),
        ms(rest_lat.last().copied().unwrap_or(0)),
        per_watcher.join(","),
        got == expected && ok == n,
        ms(pct(&e2e, 0.5)),
        ms(pct(&e2e, 0.99)),
        counts.delivery_bytes.load(Ordering::Relaxed),
        counts.watching_start.load(Ordering::Relaxed),
        counts.other.load(Ordering::Relaxed),
        rss_kib(srv.pid),
    );
    if closed_early > 0 {
        println!("  closed early: {closed_text}");
    }
    Ok(Row {
        db: db.into(),
        scenario: "A".into(),
        load: format!("{n} msgs, {} in flight", o.a_conc),
        throughput: format!("{mps:.0} msg/s"),
        lat: format!(
            "REST {} / {}",
            ms(pct(&rest_lat, 0.5)),
            ms(pct(&rest_lat, 0.99))
        ),
        deliveries: format!("{got}/{expected}"),
        closed_early,
        cpu: format!(
            "{srv_cpu:.0}% / {:.0}% / {cli_cpu:.0}% / {:.0}%",
            c.postgres, c.machine
        ),
    })
}

// ---------------------------------------------------------------------------------------
// Scenario B: deliveries/s for one channel with many watching connections

#[derive(Default)]
struct RunStats {
    lat: Vec<u64>,
    deliveries: u64,
    last_recv: u64,
}

/// One watcher thread's share: stats per run, and how each socket ended.
#[derive(Default)]
struct ThreadStats {
    runs: Vec<RunStats>,
    ends: Vec<End>,
    setup_errors: Vec<String>,
}

struct BShared {
    port: u16,
    secret: Vec<u8>,
    runs: usize,
    /// Sockets past the handshake (not watching yet).
    ws_open: AtomicUsize,
    /// Sockets watching the channel.
    connected: AtomicUsize,
    failed: AtomicUsize,
    /// Sockets that ended before the stop signal.
    ended: AtomicUsize,
    counts: Arc<FrameCounts>,
}

fn watcher_thread(
    users: Vec<String>,
    shared: Arc<BShared>,
    stats: Arc<Mutex<ThreadStats>>,
    go: watch::Receiver<bool>,
    stop: watch::Receiver<bool>,
) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let local = tokio::task::LocalSet::new();
    local.block_on(&rt, async move {
        let api = match Api::new(shared.port, 32) {
            Ok(a) => a,
            Err(e) => {
                stats.lock().unwrap().setup_errors.push(e.to_string());
                return;
            }
        };
        let sem = Rc::new(Semaphore::new(32));
        let mut handles = Vec::new();
        for user in users {
            let sem = sem.clone();
            let api = api.clone();
            let shared = shared.clone();
            let stats = stats.clone();
            let stop = stop.clone();
            let mut go = go.clone();
            handles.push(tokio::task::spawn_local(async move {
                let tok = token::user_token(&user, None, &shared.secret);
                let mut stop_early = stop.clone();
                let setup = async {
                    // Phase 1: open the socket. Phase 2 (after every socket is open and the
                    // idle memory is measured): watch the channel.
                    let (ws, conn_id) = {
                        let _permit = sem.acquire().await?;
                        ws_connect(shared.port, &user, &tok).await?
                    };
                    shared.ws_open.fetch_add(1, Ordering::Relaxed);
                    tokio::select! {
                        _ = async { let _ = go.wait_for(|g| *g).await; } => {}
                        _ = async { let _ = stop_early.wait_for(|s| *s).await; } => bail!("stopped before watching"),
                    }
                    let _permit = sem.acquire().await?;
                    api.post(
                        "/channels/livestream/bench-b/query",
                        &tok,
                        Some(&conn_id),
                        &json!({ "watch": true, "state": true }),
                    )
                    .await?;
                    anyhow::Ok(ws)
                };
                let ws = match setup.await {
                    Ok(ws) => ws,
                    Err(e) => {
                        shared.failed.fetch_add(1, Ordering::Relaxed);
                        stats
                            .lock()
                            .unwrap()
                            .setup_errors
                            .push(format!("{user}: {e:#}"));
                        return;
                    }
                };
                shared.connected.fetch_add(1, Ordering::Relaxed);
                let client_id = format!("{user}--{}", uuid::Uuid::new_v4());
                let runs = shared.runs;
                let st = stats.clone();
                let end = watch_loop(
                    ws,
                    client_id,
                    stop,
                    shared.counts.clone(),
                    move |run, _seq, ts, now| {
                        let run = run as usize;
                        if run >= runs {
                            return;
                        }
                        let mut s = st.lock().unwrap();
                        let r = &mut s.runs[run];
                        r.deliveries += 1;
                        r.lat.push(now.saturating_sub(ts));
                        r.last_recv = r.last_recv.max(now);
                    },
                )
                .await;
                if !matches!(end, End::Stopped) {
                    shared.ended.fetch_add(1, Ordering::Relaxed);
                }
                stats.lock().unwrap().ends.push(end);
            }));
        }
        for h in handles {
            let _ = h.await;
        }
    });
}

struct PubStats {
    sent: usize,
    ok: usize,
    errors: Vec<String>,
    first_send: u64,
    last_send: u64,
    rest_lat: Vec<u64>,
}

/// Publishes `m` messages at `r`/s on its own thread; each message carries `ts`.
fn publisher(port: u16, tok: String, run: usize, m: usize, r: u32) -> PubStats {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let local = tokio::task::LocalSet::new();
    local.block_on(&rt, async move {
        let api = Api::new(port, 64).expect("http client");
        let results: Rc<RefCell<(Vec<u64>, Vec<String>)>> = Rc::default();
        let in_flight = Arc::new(Semaphore::new(256));
        let period = Duration::from_secs_f64(1.0 / r as f64);
        let start = tokio::time::Instant::now() + Duration::from_millis(10);
        let hard_stop = Instant::now() + Duration::from_secs_f64(m as f64 / r as f64 * 3.0 + 30.0);
        let mut first_send = 0;
        let mut last_send = 0;
        let mut sent = 0;
        let mut handles = Vec::new();
        let filler = "x".repeat(40);
        for seq in 0..m {
            tokio::time::sleep_until(start + period * seq as u32).await;
            if Instant::now() > hard_stop {
                break;
            }
            let Ok(permit) = in_flight.clone().acquire_owned().await else {
                break;
            };
            let ts = now_ns();
            if seq == 0 {
                first_send = ts;
            }
            last_send = ts;
            sent += 1;
            let body = json!({ "message": {
                "text": format!("scenario b run {run} message {seq} {filler}"),
                "run": run, "seq": seq, "ts": ts,
            }});
            let api = api.clone();
            let tok = tok.clone();
            let results = results.clone();
            handles.push(tokio::task::spawn_local(async move {
                let t0 = Instant::now();
                let res = api
                    .post("/channels/livestream/bench-b/message", &tok, None, &body)
                    .await;
                let mut r = results.borrow_mut();
                match res {
                    Ok(v) if v.get("message").is_some() => r.0.push(t0.elapsed().as_nanos() as u64),
                    Ok(v) => r.1.push(format!("reply without message: {v}")),
                    Err(e) => r.1.push(e.to_string()),
                }
                drop(permit);
            }));
        }
        for h in handles {
            let _ = h.await;
        }
        let (mut rest_lat, errors) = std::mem::take(&mut *results.borrow_mut());
        rest_lat.sort_unstable();
        PubStats {
            sent,
            ok: rest_lat.len(),
            errors,
            first_send,
            last_send,
            rest_lat,
        }
    })
}

async fn scenario_b(srv: &Server, db: &str, o: &Opts) -> anyhow::Result<Vec<Row>> {
    let n = o.b_conns;
    let api = Api::new(srv.port, 4)?;
    let server_token = token::server_token(srv.secret());
    let users: Vec<String> = (0..n).map(|i| format!("b-{i:05}")).collect();
    let publisher_id = "b-publisher".to_string();
    let t_users = Instant::now();
    api.upsert_users(&server_token, &users).await?;
    api.upsert_users(&server_token, std::slice::from_ref(&publisher_id))
        .await?;
    let pub_token = token::user_token(&publisher_id, None, srv.secret());
    api.post(
        "/channels/livestream/bench-b/query",
        &pub_token,
        None,
        &json!({ "data": {}, "watch": false, "state": false }),
    )
    .await
    .context("creating the livestream channel")?;
    let users_s = t_users.elapsed().as_secs_f64();

    let shared = Arc::new(BShared {
        port: srv.port,
        secret: srv.secret().to_vec(),
        runs: o.b_rates.len(),
        ws_open: AtomicUsize::new(0),
        connected: AtomicUsize::new(0),
        failed: AtomicUsize::new(0),
        ended: AtomicUsize::new(0),
        counts: Arc::new(FrameCounts::default()),
    });
    let (stop_tx, stop_rx) = watch::channel(false);
    let (go_tx, go_rx) = watch::channel(false);
    let mut thread_stats = Vec::new();
    let mut threads = Vec::new();
    let t_connect = Instant::now();
    let rss0 = rss_kib(srv.pid);
    let cpu_setup = CpuWindow::start(srv.pid);
    for t in 0..o.threads {
        let mine: Vec<String> = users.iter().skip(t).step_by(o.threads).cloned().collect();
        let stats = Arc::new(Mutex::new(ThreadStats {
            runs: (0..o.b_rates.len()).map(|_| RunStats::default()).collect(),
            ..Default::default()
        }));
        thread_stats.push(stats.clone());
        let shared = shared.clone();
        let stop = stop_rx.clone();
        let go = go_rx.clone();
        threads.push(
            std::thread::Builder::new()
                .name(format!("watchers-{t}"))
                .spawn(move || watcher_thread(mine, shared, stats, go, stop))?,
        );
    }
    // Guard: on any early return, stop and join the watcher threads.
    struct StopGuard(
        Option<watch::Sender<bool>>,
        Vec<std::thread::JoinHandle<()>>,
    );
    impl Drop for StopGuard {
        fn drop(&mut self) {
            if let Some(tx) = self.0.take() {
                let _ = tx.send(true);
            }
            for t in self.1.drain(..) {
                let _ = t.join();
            }
        }
    }
    let mut guard = StopGuard(Some(stop_tx), threads);

    let connect_deadline = Instant::now() + Duration::from_secs(180);
    // Phase 1: every socket open, nothing watched yet: idle memory per connection.
    loop {
        let done = shared.ws_open.load(Ordering::Relaxed) + shared.failed.load(Ordering::Relaxed);
        if done >= n || Instant::now() > connect_deadline {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let ws_open = shared.ws_open.load(Ordering::Relaxed);
    let open_s = t_connect.elapsed().as_secs_f64();
    tokio::time::sleep(Duration::from_secs(1)).await;
    let rss_idle = rss_kib(srv.pid);
    let t_watch = Instant::now();
    let _ = go_tx.send(true);
    // Phase 2: every socket watching.
    loop {
        let done = shared.connected.load(Ordering::Relaxed) + shared.failed.load(Ordering::Relaxed);
        if done >= n || Instant::now() > connect_deadline {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let connected = shared.connected.load(Ordering::Relaxed);
    let failed = shared.failed.load(Ordering::Relaxed);
    let watch_s = t_watch.elapsed().as_secs_f64();
    // Let the join-time events (user.watching.start) drain before measuring.
    let mut last = u64::MAX;
    for _ in 0..100 {
        tokio::time::sleep(Duration::from_millis(200)).await;
        let c = shared.counts.watching_start.load(Ordering::Relaxed);
        if c == last {
            break;
        }
        last = c;
    }
    let setup_cpu = cpu_setup.finish();
    let setup_srv_cpu = setup_cpu.server;
    let setup_pg_cpu = setup_cpu.postgres;
    let setup_s = t_connect.elapsed().as_secs_f64();
    let rss1 = rss_kib(srv.pid);
    let ended_in_setup = shared.ended.load(Ordering::Relaxed);
    let first_err = thread_stats
        .iter()
        .find_map(|s| s.lock().unwrap().setup_errors.first().cloned());
    // One channel-state query at full size, as a late joiner (or a reconnect) makes it.
    let t_probe = Instant::now();
    let probe = api
        .post(
            "/channels/livestream/bench-b/query",
            &pub_token,
            None,
            &json!({ "watch": false, "state": true }),
        )
        .await
        .context("state query probe")?;
    let probe_ms = t_probe.elapsed().as_secs_f64() * 1e3;
    let probe_kib = probe.to_string().len() as f64 / 1024.0;
    let probe_watchers = probe
        .get("watchers")
        .and_then(Value::as_array)
        .map_or(0, Vec::len);
    println!(
        "SETUP db={db} scenario=B users_and_channel={users_s:.2}s ws_open={ws_open}/{n} in {open_s:.2}s watching={connected}/{n} in {watch_s:.2}s failed={failed} \
         settle_total={setup_s:.2}s server_cpu_during_setup={setup_srv_cpu:.0}% postgres_cpu_during_setup={setup_pg_cpu:.0}% \
         watching_start_frames={} (n(n+1)/2={}) other_frames={} closed_during_setup={ended_in_setup} \
         server_rss: start={rss0}KiB open_idle={rss_idle}KiB ({:.1} KiB/conn) watching={rss1}KiB ({:.1} KiB/conn) \
         state_query_at_{connected}_watchers={probe_kib:.0}KiB/{probe_ms:.1}ms (watchers[]={probe_watchers}) load={}",
        shared.counts.watching_start.load(Ordering::Relaxed),
        n * (n + 1) / 2,
        shared.counts.other.load(Ordering::Relaxed),
        (rss_idle as f64 - rss0 as f64) / n.max(1) as f64,
        (rss1 as f64 - rss0 as f64) / n.max(1) as f64,
        load_avg(),
    );
    if let Some(e) = first_err {
        println!("  first setup error: {e}");
    }
    if connected == 0 {
        bail!("no watcher connected");
    }

    let mut rows = Vec::new();
    for (run, &r) in o.b_rates.iter().enumerate() {
        let m = ((r as f64 * o.b_secs).round() as usize).max(1);
        let open = connected - shared.ended.load(Ordering::Relaxed);
        let ended_before = shared.ended.load(Ordering::Relaxed);
        let other_before = shared.counts.other.load(Ordering::Relaxed);
        tokio::time::sleep(Duration::from_millis(500)).await;
        let cpu = CpuWindow::start(srv.pid);
        let (port, tok) = (srv.port, pub_token.clone());
        let ps = tokio::task::spawn_blocking(move || publisher(port, tok, run, m, r)).await?;
        let expected = (ps.ok * open) as u64;
        let total = |ts: &[Arc<Mutex<ThreadStats>>]| {
            ts.iter()
                .map(|s| s.lock().unwrap().runs[run].deliveries)
                .sum::<u64>()
        };
        // Wait (bounded) until everything arrived or progress stops.
        let wait_until = Instant::now() + Duration::from_secs(30);
        let mut last_total = 0;
        let mut last_progress = Instant::now();
        loop {
            let got = total(&thread_stats);
            if got >= expected
                || Instant::now() > wait_until
                || last_progress.elapsed() > Duration::from_secs(5)
            {
                break;
            }
            if got != last_total {
                last_total = got;
                last_progress = Instant::now();
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let c = cpu.finish();
        let (srv_cpu, cli_cpu, cpu_text) = (c.server, c.client, c.text());
        let mut lat = Vec::new();
        let mut got = 0;
        let mut last_recv = 0;
        for s in &thread_stats {
            let mut s = s.lock().unwrap();
            let r = &mut s.runs[run];
            got += r.deliveries;
            last_recv = last_recv.max(r.last_recv);
            lat.append(&mut r.lat);
        }
        lat.sort_unstable();
        let window_s = last_recv.saturating_sub(ps.first_send) as f64 / 1e9;
        let dps = got as f64 / window_s.max(1e-9);
        let pub_rate = if ps.sent > 1 {
            (ps.sent - 1) as f64
                / (ps.last_send.saturating_sub(ps.first_send) as f64 / 1e9).max(1e-9)
        } else {
            0.0
        };
        let closed_early = shared.ended.load(Ordering::Relaxed) - ended_before;
        if !ps.errors.is_empty() {
            eprintln!(
                "bench: scenario B run {run}: {} failed sends; first: {}",
                ps.errors.len(),
                ps.errors[0]
            );
        }
        let cpu_ns_per_deliv = |pct_core: f64| {
            if got > 0 {
                pct_core / 100.0 * cpu.t0.elapsed().as_secs_f64() * 1e9 / got as f64
            } else {
                0.0
            }
        };
        println!(
            "RESULT db={db} scenario=B conns={open} rate={r}/s sent={} ok={} errors={} publish_rate={pub_rate:.1}/s deliveries={got}/{expected} \
             deliv_per_s={dps:.0} window={window_s:.2}s e2e_p50={} e2e_p99={} e2e_p999={} e2e_max={} rest_p50={} rest_p99={} \
             closed_early={closed_early} frame_bytes={} other_frames={} {cpu_text} server_ns_per_deliv={:.0} server_rss={}KiB",
            ps.sent,
            ps.ok,
            ps.errors.len(),
            ms(pct(&lat, 0.5)),
            ms(pct(&lat, 0.99)),
            ms(pct(&lat, 0.999)),
            ms(lat.last().copied().unwrap_or(0)),
            ms(pct(&ps.rest_lat, 0.5)),
            ms(pct(&ps.rest_lat, 0.99)),
            shared.counts.delivery_bytes.load(Ordering::Relaxed),
            shared.counts.other.load(Ordering::Relaxed) - other_before,
            cpu_ns_per_deliv(srv_cpu),
            rss_kib(srv.pid),
        );
        rows.push(Row {
            db: db.into(),
            scenario: "B".into(),
            load: format!("{open} conns, {r} msg/s x {m}"),
            throughput: format!("{} deliv/s", rate(dps)),
            lat: format!("e2e {} / {}", ms(pct(&lat, 0.5)), ms(pct(&lat, 0.99))),
            deliveries: format!("{got}/{expected}"),
            closed_early,
            cpu: format!(
                "{srv_cpu:.0}% / {:.0}% / {cli_cpu:.0}% / {:.0}%",
                c.postgres, c.machine
            ),
        });
    }

    // Stop the watchers and join their threads (off the async runtime).
    let _ = guard.0.take().map(|tx| tx.send(true));
    let threads = std::mem::take(&mut guard.1);
    tokio::task::spawn_blocking(move || {
        for t in threads {
            let _ = t.join();
        }
    })
    .await?;
    let ends: Vec<End> = thread_stats
        .iter()
        .flat_map(|s| std::mem::take(&mut s.lock().unwrap().ends))
        .collect();
    let (closed, text) = summarize_ends(&ends);
    if closed > 0 {
        println!(
            "  scenario B sockets closed by the server or failed before the end: {closed}: {text}"
        );
    }
    Ok(rows)
}

// ---------------------------------------------------------------------------------------
// Driver

async fn run_db(db: &str, o: &Opts) -> anyhow::Result<Vec<Row>> {
    let pg_url = (db == "postgres").then(|| {
        format!(
            "{}/ward_bench_{}_{}",
            o.db.pg_url,
            std::process::id(),
            now_ns() % 1_000_000_000
        )
    });
    let srv = Server::start(db, pg_url.as_deref(), o.keep)?;
    println!(
        "bench: {db}: server pid {} on 127.0.0.1:{} (log {}) load={}",
        srv.pid,
        srv.port,
        srv.log_path.display(),
        load_avg()
    );
    let mut rows = Vec::new();
    let result = async {
        if o.scenarios.iter().any(|s| s == "a") {
            rows.push(scenario_a(&srv, db, o).await.context("scenario A")?);
        }
        if o.scenarios.iter().any(|s| s == "b") {
            rows.extend(scenario_b(&srv, db, o).await.context("scenario B")?);
        }
        anyhow::Ok(())
    }
    .await;
    let problems = srv.log_problems();
    if !problems.is_empty() {
        println!(
            "bench: {db}: server log has {} WARN/ERROR lines; first ones:",
            problems.len()
        );
        for p in problems.iter().take(5) {
            println!("  {p}");
        }
    }
    drop(srv);
    if let Some(url) = pg_url.filter(|_| !o.keep) {
        use sqlx::migrate::MigrateDatabase;
        if let Err(e) = sqlx::Postgres::drop_database(&url).await {
            eprintln!("bench: could not drop {url}: {e}");
        }
    }
    result.map(|_| rows)
}

fn main() {
    let opts = <Opts as clap::Parser>::parse();
    // Watchdog: whatever happens, servers die and the bench ends by the deadline.
    let deadline = Duration::from_secs(opts.deadline_secs);
    std::thread::spawn(move || {
        std::thread::sleep(deadline);
        eprintln!(
            "bench: deadline of {}s reached: killing the servers",
            deadline.as_secs()
        );
        for pid in PIDS.lock().unwrap().iter() {
            kill_pid(*pid);
        }
        std::process::exit(3);
    });
    // A panic anywhere kills the servers too (Drop runs on unwind, this covers the rest).
    let default_hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        default_hook(info);
        if std::thread::current().name() == Some("main") {
            for pid in PIDS.lock().map(|p| p.clone()).unwrap_or_default() {
                kill_pid(pid);
            }
        }
    }));

    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let started = Instant::now();
    println!(
        "bench: ward load benchmark; dbs={:?} scenarios={:?} A: {} msgs x {} in flight; B: {} conns, rates {:?}/s x {}s, {} watcher threads; load={}",
        opts.db.dbs,
        opts.scenarios,
        opts.a_messages,
        opts.a_conc,
        opts.b_conns,
        opts.b_rates,
        opts.b_secs,
        opts.threads,
        load_avg()
    );
    let mut rows = Vec::new();
    let mut failed = false;
    for db in &opts.db.dbs {
        match rt.block_on(run_db(db, &opts)) {
            Ok(r) => rows.extend(r),
            Err(e) => {
                failed = true;
                println!("RESULT db={db} FAILED: {e:#}");
            }
        }
    }
    rt.shutdown_timeout(Duration::from_secs(2));

    println!();
    println!(
        "SUMMARY (load average at end: {}; total {:.0}s)",
        load_avg(),
        started.elapsed().as_secs_f64()
    );
    let header = [
        "db",
        "scn",
        "load",
        "throughput",
        "latency p50 / p99",
        "deliveries",
        "closed early",
        "CPU srv / pg / client / machine",
    ];
    let cells: Vec<[String; 8]> = rows
        .iter()
        .map(|r| {
            [
                r.db.clone(),
                r.scenario.clone(),
                r.load.clone(),
                r.throughput.clone(),
                r.lat.clone(),
                r.deliveries.clone(),
                r.closed_early.to_string(),
                r.cpu.clone(),
            ]
        })
        .collect();
    let widths: Vec<usize> = (0..8)
        .map(|i| {
            cells
                .iter()
                .map(|c| c[i].chars().count())
                .chain([header[i].len()])
                .max()
                .unwrap_or(0)
        })
        .collect();
    let line = |c: &[String]| {
        let parts: Vec<String> = c
            .iter()
            .zip(&widths)
            .map(|(s, w)| format!("{s:<w$}"))
            .collect();
        format!("| {} |", parts.join(" | "))
    };
    println!("{}", line(&header.map(String::from)));
    println!(
        "|{}|",
        widths
            .iter()
            .map(|w| "-".repeat(w + 2))
            .collect::<Vec<_>>()
            .join("|")
    );
    for c in &cells {
        println!("{}", line(c));
    }
    if failed {
        std::process::exit(1);
    }
}
