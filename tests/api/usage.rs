//! Usage metering: MAU and peak concurrent connections as Stream defines them, across nodes,
//! surviving restarts; the admin API, the CLI and `/metrics`.

use serde_json::{Value, json};
use ward::config::Plan;
use ward::store::Store;
use ward::time::parse_rfc3339;
use ward::usage::{Meter, report};

use crate::helpers::{Db, TestApp, fresh_database, on_both_databases};

fn at(text: &str) -> i64 {
    parse_rfc3339(text).unwrap()
}

async fn a_scripted_month_gives_exact_mau_pcc_and_overage(db: Db) {
    let (url, _cleanup) = fresh_database(db);
    let store = Store::connect(&url).await.unwrap();
    let node_a = Meter::new(store.clone(), "node-a".into());
    let node_b = Meter::new(store.clone(), "node-b".into());

    // Connections (user, node, time, that node's open connections right after).
    let script: [(&str, &Meter, &str, usize); 9] = [
        ("u5", &node_a, "2026-02-28T23:59:59Z", 1), // previous month
        ("u1", &node_a, "2026-03-01T09:00:01Z", 1),
        ("u1", &node_a, "2026-03-01T09:00:02Z", 2), // second device, same user
        ("u2", &node_b, "2026-03-01T09:00:03Z", 1),
        ("u1", &node_b, "2026-03-05T10:00:00Z", 2), // u1 again, other node, other day
        ("u3", &node_a, "2026-03-05T10:00:01Z", 3),
        ("u4", &node_a, "2026-03-20T08:00:00Z", 4),
        ("u4", &node_a, "2026-03-20T08:00:00Z", 4), // a repeated report changes nothing
        ("u6", &node_b, "2026-04-01T00:00:00Z", 1), // next month
    ];
    for (user, meter, time, open) in script {
        meter.connection_opened(user, at(time), open).await.unwrap();
    }
    node_a.flush().await.unwrap();
    node_b.flush().await.unwrap();

    let plan = Plan {
        mau: Some(3),
        pcc: Some(4),
    };
    let r = report(&store, "2026-03", plan).await.unwrap();
    assert_eq!(r.mau, 4, "u1..u4, each once");
    // 09:00:00–09:00:10 holds node a's 2 and node b's 1; 10:00:00–10:00:10 holds b's 2 and
    // a's 3 (five at once); 08:00 on the 20th holds a's 4.
    assert_eq!(r.pcc, 5);
    assert_eq!(r.pcc_at.as_deref(), Some("2026-03-05T10:00:00.000000Z"));
    assert_eq!((r.overage.mau_units, r.overage.mau_percent), (1, 33.33));
    assert_eq!((r.overage.pcc_units, r.overage.pcc_percent), (1, 25.0));
    assert_eq!(
        r.overage.billed,
        Some("mau"),
        "the higher overage is billed"
    );
    assert_eq!(r.daily.len(), 31);
    let day = |d: &str| r.daily.iter().find(|x| x.day == d).unwrap().clone();
    assert_eq!(
        (
            day("2026-03-01").active_users,
            day("2026-03-01").cumulative_mau,
            day("2026-03-01").peak_connections
        ),
        (2, 2, 3)
    );
    assert_eq!(
        (
            day("2026-03-05").active_users,
            day("2026-03-05").cumulative_mau,
            day("2026-03-05").peak_connections
        ),
        (2, 3, 5)
    );
    assert_eq!(
        (
            day("2026-03-20").active_users,
            day("2026-03-20").cumulative_mau
        ),
        (1, 4)
    );
    assert_eq!(day("2026-03-31").cumulative_mau, 4);

    // Metering lives in the database: a restarted node (a new meter) adds to it.
    let restarted = Meter::new(Store::connect(&url).await.unwrap(), "node-a".into());
    restarted
        .connection_opened("u7", at("2026-03-21T00:00:00Z"), 1)
        .await
        .unwrap();
    assert_eq!(report(&store, "2026-03", plan).await.unwrap().mau, 5);
    let feb = report(&store, "2026-02", plan).await.unwrap();
    assert_eq!((feb.mau, feb.daily.len()), (1, 28));
}

async fn connections_are_metered_and_reported_to_server_callers(db: Db) {
    let app = TestApp::spawn_with(db, |c| {
        c.plan = Plan {
            mau: Some(1),
            pcc: Some(10),
        }
    })
    .await;
    app.users(&["a", "b"]).await;
    let _a1 = app.connect("a").await;
    let _a2 = app.connect("a").await;
    let _b = app.connect("b").await;
    app.state.usage.flush().await.unwrap();
    let (status, body) = app.get("/usage", &app.server_token()).await;
    assert_eq!(status, 200, "{body}");
    let usage = &body["usage"];
    assert_eq!(usage["mau"], 2);
    assert_eq!(usage["pcc"], 3, "every connection counts");
    assert_eq!(usage["overage"]["billed"], "mau");
    assert_eq!(usage["granularity_seconds"], 10);
    let (status, _) = app.get("/usage", &app.token("a")).await;
    assert_eq!(status, 403);
    let (status, _) = app.get("/usage?month=2026-13", &app.server_token()).await;
    assert_eq!(status, 400);
}

async fn the_cli_prints_the_report_as_json_and_as_a_table(db: Db) {
    let (url, _cleanup) = fresh_database(db);
    let store = Store::connect(&url).await.unwrap();
    Meter::new(store, "n".into())
        .connection_opened("cli-user", at("2026-05-02T12:00:00Z"), 1)
        .await
        .unwrap();
    let run = |extra: &[&str]| {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_ward"))
            .args(["usage", "report", "--month", "2026-05"])
            .args(extra)
            .env("WARD_DATABASE_URL", &url)
            .env("WARD_PLAN_MAU", "100")
            .env_remove("WARD_API_KEY")
            .env_remove("WARD_API_SECRET")
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    };
    let json: Value = serde_json::from_str(&run(&["--json"])).unwrap();
    assert_eq!(json["mau"], 1);
    assert_eq!(json["plan"]["mau"], 100);
    let table = run(&[]);
    assert!(
        table.contains("MAU") && table.contains("2026-05-02"),
        "{table}"
    );
}

async fn metrics_expose_connections_deliveries_and_latency(db: Db) {
    let app = TestApp::spawn_with(db, |c| {
        c.metrics_bind = Some("127.0.0.1:0".parse().unwrap());
    })
    .await;
    app.users(&["a"]).await;
    app.channel("m", "a", &["a"]).await;
    let mut ws = app.connect("a").await;
    app.post(
        &format!(
            "/channels/messaging/m/query?connection_id={}",
            ws.connection_id
        ),
        &app.token("a"),
        json!({"watch": true}),
    )
    .await;
    app.send("messaging:m", "a", json!({"text": "x"})).await;
    ws.wait_for("message.new").await;
    let text = app
        .http
        .get(format!("{}/metrics", app.metrics_base.as_ref().unwrap()))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    for line in [
        "ward_open_connections 1",
        "# TYPE ward_events_delivered_total counter",
        "ward_queue_drops_total 0",
        "ward_slow_consumers_closed_total 0",
        "# TYPE ward_bus_lag_seconds histogram",
        "ward_bus_up 1",
    ] {
        assert!(text.contains(line), "{line} in\n{text}");
    }
    assert!(text.contains(r#"ward_http_request_duration_seconds_count{method="POST",route="/channels/{type}/{id}/message"} 1"#), "{text}");
    let delivered: u64 = text
        .lines()
        .find_map(|l| l.strip_prefix("ward_events_delivered_total "))
        .unwrap()
        .parse()
        .unwrap();
    assert!(delivered >= 1);
}

on_both_databases!(
    a_scripted_month_gives_exact_mau_pcc_and_overage,
    connections_are_metered_and_reported_to_server_callers,
    the_cli_prints_the_report_as_json_and_as_a_table,
    metrics_expose_connections_deliveries_and_latency,
);
