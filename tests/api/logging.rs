//! PHI and secrets never reach the logs: message text, custom fields, tokens and the API
//! secret stay out of every log line, at every level, on the success and the error paths.

use std::io::Write;
use std::sync::{Arc, Mutex};

use serde_json::json;

use crate::helpers::{Db, SECRET, TestApp, on_both_databases};

#[derive(Clone, Default)]
struct Capture(Arc<Mutex<Vec<u8>>>);

impl Write for Capture {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

async fn phi_tokens_and_secrets_never_reach_the_logs(db: Db) {
    let capture = Capture::default();
    let writer = capture.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_env_filter("trace")
        .with_ansi(false)
        .with_writer(move || writer.clone())
        .finish();
    // One process per test under nextest: the global subscriber sees every worker thread.
    tracing::subscriber::set_global_default(subscriber)
        .expect("no other subscriber in this process");

    let canary = "PHI-CANARY-diagnosis-7731";
    let app = TestApp::spawn(db).await;
    let (status, _) = app
        .post(
            "/users",
            &app.server_token(),
            json!({"users": {"pat": {"id": "pat", "name": canary}, "doc": {"id": "doc"}}}),
        )
        .await;
    assert_eq!(status, 201);
    app.channel("care", "doc", &["doc", "pat"]).await;
    let mut ws = app.connect("pat").await;
    app.post(
        &format!(
            "/channels/messaging/care/query?connection_id={}",
            ws.connection_id
        ),
        &app.token("pat"),
        json!({"watch": true}),
    )
    .await;
    app.send(
        "messaging:care",
        "doc",
        json!({"id": "m1", "text": canary, "note": canary}),
    )
    .await;
    ws.wait_for("message.new").await;
    // Error paths: a duplicate, an oversized text, a bad filter quoting the canary.
    app.post(
        "/channels/messaging/care/message",
        &app.token("doc"),
        json!({"message": {"id": "m1", "text": canary}}),
    )
    .await;
    app.post(
        "/channels/messaging/care/message",
        &app.token("doc"),
        json!({"message": {"text": canary.repeat(400)}}),
    )
    .await;
    app.post(
        "/channels",
        &app.token("doc"),
        json!({"filter_conditions": {canary: {"$regex": canary}}}),
    )
    .await;
    app.get_payload(
        "/search",
        &app.token("doc"),
        json!({"filter_conditions": {"cid": "messaging:care"}, "query": canary}),
    )
    .await;
    let doc_token = app.token("doc");

    // Key material: the root key, in every encoding a log line could carry.
    let root = std::fs::read(app.state.config.data_dir.join("root.key"))
        .expect("the local root key exists");
    use base64::Engine;
    let root_forms = [
        hex::encode(&root),
        base64::engine::general_purpose::STANDARD.encode(&root),
        format!("{:?}", &root[..8])
            .trim_end_matches(']')
            .to_string(),
    ];

    let logs = String::from_utf8(capture.0.lock().unwrap().clone()).unwrap();
    for form in &root_forms {
        assert!(
            !logs.contains(form.as_str()),
            "root key material leaked into the logs"
        );
    }
    assert!(
        logs.contains("channel created"),
        "the capture works: {} bytes",
        logs.len()
    );
    for (what, needle) in [
        ("message text", canary),
        ("a token", doc_token.as_str()),
        ("the API secret", SECRET),
    ] {
        assert!(!logs.contains(needle), "{what} leaked into the logs");
    }
}

on_both_databases!(phi_tokens_and_secrets_never_reach_the_logs);
