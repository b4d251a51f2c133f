//! Cross-node fan-out benchmark (`cargo bench --bench cluster [-- --conns 1000 --rate 20 --secs 6]`).
//!
//! One `livestream` channel with `--conns` watching WebSockets (distinct users), messages
//! posted through node A's REST API at `--rate` per second for `--secs` seconds; compares all
//! watchers on one node against watchers split evenly across two nodes that share PostgreSQL
//! and Redis. Reports deliveries/s (deliveries ÷ (last receive − first send)), end-to-end
//! latency from the `ts` carried in each message, and connections closed early. Loopback
//! only; bounded in count and time; servers are killed at the end.

// A benchmark or test reports a failure by panicking: unwrapping is how it fails.
#![allow(clippy::unwrap_used)]

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use futures_util::StreamExt;
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use ward::auth::token;

const KEY: &str = "clusterbench";
const SECRET: &str = "cluster-bench-secret";

struct Server {
    child: Child,
    base: String,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn now_ns() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64
}

fn start(
    db_url: &str,
    data_dir: &std::path::Path,
    redis: Option<(&str, &str)>,
    node: &str,
) -> Server {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_ward"));
    cmd.arg("serve")
        // A throughput measurement from one address with few users, not about rate limits.
        .env("WARD_RATE_LIMIT_WRITES_PER_USER", "0")
        .env("WARD_RATE_LIMIT_CONNECT_PER_IP", "0")
        .env("WARD_RATE_LIMIT_CONNECT_PER_USER", "0")
        .env("WARD_BIND", "127.0.0.1:0")
        .env("WARD_DATA_DIR", data_dir)
        .env("WARD_DATABASE_URL", db_url)
        .env("WARD_API_KEY", KEY)
        .env("WARD_API_SECRET", SECRET)
        .env("WARD_NODE_ID", node)
        .env("WARD_WS_QUEUE_LEN", "1024")
        .env("WARD_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::null());
    if let Some((url, channel)) = redis {
        cmd.env("WARD_REDIS_URL", url)
            .env("WARD_REDIS_CHANNEL", channel);
    }
    let mut child = cmd.spawn().expect("the ward binary starts");
    let out = child.stdout.take().unwrap();
    let mut line = String::new();
    BufReader::new(out).read_line(&mut line).unwrap();
    let base = line.trim().rsplit(' ').next().unwrap().to_string();
    Server { child, base }
}

async fn rest(http: &reqwest::Client, base: &str, path: &str, token: &str, body: Value) -> Value {
    let sep = if path.contains('?') { '&' } else { '?' };
    let res = http
        .post(format!("{base}{path}{sep}api_key={KEY}"))
        .header("Authorization", token)
        .header("stream-auth-type", "jwt")
        .json(&body)
        .send()
        .await
        .expect("request sent");
    let status = res.status();
    let v: Value = res.json().await.unwrap_or(Value::Null);
    assert!(status.is_success(), "{path}: {status} {v}");
    v
}

async fn wait_bus_up(http: &reqwest::Client, base: &str) {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let v: Value = http
            .get(format!("{base}/healthz"))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap_or(Value::Null);
        if v["bus"] == "up" {
            return;
        }
        assert!(Instant::now() < deadline, "the node joins the bus");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

struct Stats {
    deliveries: AtomicU64,
    last_recv_ns: AtomicU64,
    latencies: Mutex<Vec<u64>>,
    closed_early: AtomicU64,
}

async fn run(label: &str, nodes: &[Server], conns: usize, rate: u64, secs: u64) {
    let http = reqwest::Client::new();
    let secret = SECRET.as_bytes();
    let server_token = token::server_token(secret);
    for chunk in (0..conns).collect::<Vec<_>>().chunks(100) {
        let users: serde_json::Map<String, Value> = chunk
            .iter()
            .map(|i| (format!("w{i}"), json!({"id": format!("w{i}")})))
            .collect();
        rest(
            &http,
            &nodes[0].base,
            "/users",
            &server_token,
            json!({ "users": users }),
        )
        .await;
    }
    rest(
        &http,
        &nodes[0].base,
        "/users",
        &server_token,
        json!({"users": {"pub": {"id": "pub"}}}),
    )
    .await;
    rest(
        &http,
        &nodes[0].base,
        "/channels/livestream/bench/query",
        &token::user_token("pub", None, secret),
        json!({}),
    )
    .await;

    let stats = Arc::new(Stats {
        deliveries: AtomicU64::new(0),
        last_recv_ns: AtomicU64::new(0),
        latencies: Mutex::new(Vec::new()),
        closed_early: AtomicU64::new(0),
    });
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let limit = Arc::new(tokio::sync::Semaphore::new(64));
    let mut tasks = Vec::new();
    for i in 0..conns {
        let node = &nodes[i % nodes.len()];
        let user = format!("w{i}");
        let tok = token::user_token(&user, None, secret);
        let json_param = serde_urlencoded::to_string([(
            "json",
            json!({"user_id": user, "user_details": {"id": user}}).to_string(),
        )])
        .unwrap();
        let url = format!(
            "{}/connect?{json_param}&api_key={KEY}&authorization={tok}&stream-auth-type=jwt",
            node.base.replace("http", "ws")
        );
        let permit = limit.clone().acquire_owned().await.unwrap();
        let mut config = WebSocketConfig::default();
        config.read_buffer_size = 4096;
        let (mut ws, _) = tokio_tungstenite::connect_async_with_config(url, Some(config), true)
            .await
            .expect("connect");
        let first: Value = match ws.next().await {
            Some(Ok(Message::Text(t))) => serde_json::from_str(&t).unwrap(),
            other => panic!("no handshake: {other:?}"),
        };
        let conn = first["connection_id"].as_str().unwrap().to_string();
        rest(
            &http,
            &node.base,
            &format!("/channels/livestream/bench/query?connection_id={conn}"),
            &tok,
            json!({"watch": true}),
        )
        .await;
        drop(permit);
        let stats = stats.clone();
        let mut stop = stop_rx.clone();
        tasks.push(tokio::spawn(async move {
            loop {
                tokio::select! {
                    _ = stop.changed() => break,
                    frame = ws.next() => match frame {
                        Some(Ok(Message::Text(t))) => {
                            if let Some(pos) = t.find("\"ts\":") {
                                let rest = &t[pos + 5..];
                                let end = rest.find(|c: char| !c.is_ascii_digit()).unwrap_or(rest.len());
                                if let Ok(ts) = rest[..end].parse::<u64>() {
                                    let now = now_ns();
                                    stats.deliveries.fetch_add(1, Ordering::Relaxed);
                                    stats.last_recv_ns.fetch_max(now, Ordering::Relaxed);
                                    stats.latencies.lock().unwrap().push(now.saturating_sub(ts));
                                }
                            }
                        }
                        Some(Ok(Message::Close(_))) | None | Some(Err(_)) => {
                            stats.closed_early.fetch_add(1, Ordering::Relaxed);
                            break;
                        }
                        _ => {}
                    }
                }
            }
        }));
    }
    // Watch state reaches the other node asynchronously: wait until node A counts everyone.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let state = rest(
            &http,
            &nodes[0].base,
            "/channels/livestream/bench/query",
            &token::user_token("pub", None, secret),
            json!({}),
        )
        .await;
        if state["watcher_count"].as_u64() == Some(conns as u64) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "all watchers are known: {}",
            state["watcher_count"]
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    let total = rate * secs;
    let pub_tok = token::user_token("pub", None, secret);
    let first_send = now_ns();
    let interval = Duration::from_nanos(1_000_000_000 / rate);
    let mut tick = tokio::time::interval(interval);
    let mut sends = Vec::new();
    for k in 0..total {
        tick.tick().await;
        let http = http.clone();
        let base = nodes[0].base.clone();
        let tok = pub_tok.clone();
        sends.push(tokio::spawn(async move {
            rest(
                &http,
                &base,
                "/channels/livestream/bench/message",
                &tok,
                json!({"message": {"text": format!("m{k}"), "ts": now_ns()}}),
            )
            .await;
        }));
    }
    for s in sends {
        s.await.unwrap();
    }
    let expected = total * conns as u64;
    let deadline = Instant::now() + Duration::from_secs(60);
    while stats.deliveries.load(Ordering::Relaxed)
        + stats.closed_early.load(Ordering::Relaxed) * total
        < expected
        && Instant::now() < deadline
    {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let _ = stop_tx.send(true);
    for t in tasks {
        let _ = t.await;
    }
    let deliveries = stats.deliveries.load(Ordering::Relaxed);
    let span = (stats
        .last_recv_ns
        .load(Ordering::Relaxed)
        .saturating_sub(first_send)) as f64
        / 1e9;
    let mut lat = stats.latencies.lock().unwrap().clone();
    lat.sort_unstable();
    let pct = |p: f64| {
        lat.get(((lat.len() as f64 * p) as usize).min(lat.len().saturating_sub(1)))
            .copied()
            .unwrap_or(0) as f64
            / 1e6
    };
    println!(
        "RESULT {label}: conns={conns} rate={rate}/s msgs={total} deliveries={deliveries}/{expected} deliveries/s={:.0} p50={:.1}ms p99={:.1}ms closed_early={}",
        deliveries as f64 / span,
        pct(0.50),
        pct(0.99),
        stats.closed_early.load(Ordering::Relaxed)
    );
}

/// Fan-out on one node and on two nodes through Redis.
#[derive(clap::Parser)]
struct Options {
    /// WebSocket watchers.
    #[arg(long, default_value_t = 1000)]
    conns: usize,
    /// Messages published per second.
    #[arg(long, default_value_t = 20)]
    rate: u64,
    /// Seconds of publishing.
    #[arg(long, default_value_t = 6)]
    secs: u64,
    /// Passed by `cargo bench` to `harness = false` targets; ignored.
    #[arg(long = "bench", hide = true)]
    _bench: bool,
}

fn main() {
    let Options {
        conns, rate, secs, ..
    } = <Options as clap::Parser>::parse();
    let pg = std::env::var("WARD_TEST_PG_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432".into());
    let redis =
        std::env::var("WARD_TEST_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into());
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        for (label, n) in [("one node", 1usize), ("two nodes (Redis)", 2)] {
            let id = uuid::Uuid::new_v4().simple().to_string();
            let db = format!("{pg}/ward_cluster_bench_{id}");
            let dir = std::env::temp_dir().join(format!("ward_cluster_bench_{id}"));
            std::fs::create_dir_all(&dir).unwrap();
            let channel = format!("ward-bench:{id}");
            let nodes: Vec<Server> = (0..n)
                .map(|i| {
                    start(
                        &db,
                        &dir,
                        (n > 1).then_some((redis.as_str(), channel.as_str())),
                        &format!("node-{i}"),
                    )
                })
                .collect();
            if n > 1 {
                let http = reqwest::Client::new();
                for node in &nodes {
                    wait_bus_up(&http, &node.base).await;
                }
            }
            run(label, &nodes, conns, rate, secs).await;
            drop(nodes);
            let _ = std::fs::remove_dir_all(&dir);
            let _ = Command::new("psql")
                .args([
                    "-h",
                    "127.0.0.1",
                    "-U",
                    "postgres",
                    "-qc",
                    &format!("DROP DATABASE IF EXISTS ward_cluster_bench_{id} WITH (FORCE)"),
                ])
                .status();
        }
    });
}
