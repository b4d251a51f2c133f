//! `ward serve` terminating TLS itself (WARD_TLS_CERT / WARD_TLS_KEY): HTTPS with a
//! certificate the client trusts, plain HTTP refused on that port, session cookies marked
//! `Secure`, and a certificate/key mismatch stopping the start.

use std::process::Command;

use serde_json::json;
use ward::app::Application;
use ward::config::Config;

use crate::helpers::{KEY, SECRET, fresh_database};

/// A self-signed certificate for 127.0.0.1 made with the openssl command.
fn certificate(dir: &std::path::Path, name: &str) -> (std::path::PathBuf, std::path::PathBuf) {
    let (cert, key) = (
        dir.join(format!("{name}.crt")),
        dir.join(format!("{name}.key")),
    );
    let out = Command::new("openssl")
        .args([
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-nodes",
            "-days",
            "1",
        ])
        .args([
            "-subj",
            "/CN=127.0.0.1",
            "-addext",
            "subjectAltName=IP:127.0.0.1",
            "-addext",
            "basicConstraints=critical,CA:FALSE",
        ])
        .arg("-keyout")
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .output()
        .expect("openssl is installed");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    (cert, key)
}

fn config(
    url: &str,
    data_dir: &std::path::Path,
    cert: &std::path::Path,
    key: &std::path::Path,
) -> Config {
    let env = [
        ("WARD_BIND", "127.0.0.1:0".to_string()),
        ("WARD_DATA_DIR", data_dir.display().to_string()),
        ("WARD_DATABASE_URL", url.to_string()),
        ("WARD_API_KEY", KEY.to_string()),
        ("WARD_API_SECRET", SECRET.to_string()),
        ("WARD_TLS_CERT", cert.display().to_string()),
        ("WARD_TLS_KEY", key.display().to_string()),
    ];
    Config::from_sources(None, |k| {
        env.iter().find(|(n, _)| *n == k).map(|(_, v)| v.clone())
    })
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ward_serves_https_with_secure_cookies() {
    let dir = std::env::temp_dir().join(format!("ward_tls_{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(&dir).unwrap();
    let (cert, key) = certificate(&dir, "server");
    let (url, _cleanup) = fresh_database(crate::helpers::Db::Sqlite);
    crate::helpers::install_server_logs();
    let app = Application::build(config(&url, &dir, &cert, &key))
        .await
        .unwrap();
    let addr = app.local_addr();
    let state = app.state();
    assert_eq!(state.config.public_url, format!("https://{addr}"));
    assert!(state.config.sessions.secure_cookies);
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(app.run_until(async {
        let _ = stopped.await;
    }));

    let trusted = reqwest::Client::builder()
        .add_root_certificate(
            reqwest::Certificate::from_pem(&std::fs::read(&cert).unwrap()).unwrap(),
        )
        .build()
        .unwrap();
    let res = trusted
        .get(format!("https://{addr}/healthz"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    // ALPN settles on HTTP/1.1 for a client that offers h2 first (the server offers only
    // what it serves).
    let alpn = tokio::task::spawn_blocking(move || {
        Command::new("openssl")
            .args([
                "s_client",
                "-connect",
                &addr.to_string(),
                "-alpn",
                "h2,http/1.1",
            ])
            .stdin(std::process::Stdio::null())
            .output()
            .expect("openssl is installed")
    })
    .await
    .unwrap();
    let text = String::from_utf8_lossy(&alpn.stdout);
    assert!(text.contains("ALPN protocol: http/1.1"), "{text}");
    // Without the certificate the client refuses; plain HTTP gets no answer.
    assert!(
        reqwest::get(format!("https://{addr}/healthz"))
            .await
            .is_err()
    );
    let plain = reqwest::Client::builder()
        .timeout(std::time::Duration::from_secs(5))
        .build()
        .unwrap();
    assert!(
        plain
            .get(format!("http://{addr}/healthz"))
            .send()
            .await
            .is_err()
    );

    // A session cookie over HTTPS is Secure.
    ward::auth::bootstrap_admin(&state.auth(), "root", "correct horse battery staple")
        .await
        .unwrap();
    let res = trusted
        .post(format!("https://{addr}/auth/login?api_key={KEY}"))
        .json(&json!({"user_id": "root", "password": "correct horse battery staple"}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 201);
    let cookie = res
        .headers()
        .get("set-cookie")
        .unwrap()
        .to_str()
        .unwrap()
        .to_string();
    assert!(
        cookie.contains("; Secure") && cookie.contains("HttpOnly"),
        "{cookie}"
    );

    let _ = stop.send(());
    server.await.unwrap().unwrap();
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_key_that_does_not_match_the_certificate_stops_the_start() {
    let dir = std::env::temp_dir().join(format!("ward_tls_{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(&dir).unwrap();
    let (cert, _) = certificate(&dir, "one");
    let (_, other_key) = certificate(&dir, "two");
    let (url, _cleanup) = fresh_database(crate::helpers::Db::Sqlite);
    let err = match Application::build(config(&url, &dir, &cert, &other_key)).await {
        Ok(_) => panic!("a mismatched key must stop the start"),
        Err(e) => format!("{e:#}"),
    };
    assert!(err.contains("do not match"), "{err}");
    assert!(
        !err.contains("PRIVATE KEY"),
        "the key never reaches the error: {err}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}
