//! The AWS KMS root-key provider against `moto_server` (PyPI `moto[server]`) on loopback:
//! KEKs wrapped by KMS, the whole app working on top, and the encryption context enforced.

use secrecy::SecretString;
use serde_json::json;
use ward::config::{KeyProvider, KmsConfig, KmsCredentials};
use ward::crypto::kms::{CredentialSource, KmsClient, KmsRootKey};
use ward::crypto::root::RootKey;

use crate::helpers::{Db, TestApp, on_both_databases};
use crate::moto::{Moto, credentials};

fn client(moto: &Moto) -> KmsClient {
    KmsClient::new(
        "us-east-1",
        Some(&moto.url),
        CredentialSource::Static(credentials()),
    )
    .unwrap()
}

async fn create_key(moto: &Moto) -> String {
    let reply = client(moto)
        .call(
            "CreateKey",
            &json!({"Description": "ward test root key", "KeyUsage": "ENCRYPT_DECRYPT"}),
        )
        .await
        .unwrap();
    reply["KeyMetadata"]["KeyId"].as_str().unwrap().to_string()
}

async fn kms_wraps_and_unwraps_keks_with_the_context_bound(_db: Db) {
    let moto = Moto::start().await;
    let key_id = create_key(&moto).await;
    let root = KmsRootKey::new(client(&moto), &key_id);
    let wrapped = root.wrap(&[7u8; 32], "kek:one").await.unwrap();
    assert!(
        !wrapped.windows(32).any(|w| w == [7u8; 32]),
        "the KEK does not appear in the wrapped blob"
    );
    assert_eq!(
        root.unwrap(&wrapped, "kek:one").await.unwrap().as_slice(),
        &[7u8; 32]
    );
    assert!(
        root.unwrap(&wrapped, "kek:two").await.is_err(),
        "a different encryption context is refused"
    );
    assert!(root.describe().starts_with("aws-kms:"));
}

/// A stand-in for the ECS container credentials endpoint (the task role), on loopback:
/// answers only with the right authorization token, and counts its calls.
async fn container_credentials_endpoint() -> (String, std::sync::Arc<std::sync::atomic::AtomicUsize>)
{
    use std::sync::atomic::{AtomicUsize, Ordering};
    let hits = std::sync::Arc::new(AtomicUsize::new(0));
    let counter = hits.clone();
    let app = axum::Router::new().route(
        "/creds",
        axum::routing::get(move |headers: axum::http::HeaderMap| {
            let counter = counter.clone();
            async move {
                if headers.get("authorization").and_then(|v| v.to_str().ok()) != Some("task-token") {
                    return (axum::http::StatusCode::UNAUTHORIZED, axum::Json(json!({})));
                }
                counter.fetch_add(1, Ordering::Relaxed);
                let expires = (chrono::Utc::now() + chrono::Duration::hours(1)).to_rfc3339();
                (
                    axum::http::StatusCode::OK,
                    axum::Json(json!({"AccessKeyId": "testing", "SecretAccessKey": "testing", "Token": "session", "Expiration": expires})),
                )
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (format!("http://{addr}/creds"), hits)
}

async fn the_app_runs_on_a_kms_root_key_with_task_role_credentials(db: Db) {
    let moto = Moto::start().await;
    let key_id = create_key(&moto).await;
    let url = moto.url.clone();
    let (creds_url, hits) = container_credentials_endpoint().await;
    let kms = KmsConfig {
        key_id,
        region: "us-east-1".into(),
        endpoint: Some(url),
        credentials: KmsCredentials::Container {
            url: creds_url,
            token: Some(SecretString::from("task-token")),
        },
    };
    let app = TestApp::spawn_with(db, move |c| c.key_provider = KeyProvider::AwsKms(kms)).await;
    app.users(&["a", "b"]).await;
    app.channel("kms", "a", &["a", "b"]).await;
    let m = app
        .send(
            "messaging:kms",
            "a",
            json!({"text": "sealed under a KMS-wrapped KEK"}),
        )
        .await;
    let (_, got) = app
        .get(
            &format!("/messages/{}", m["id"].as_str().unwrap()),
            &app.token("b"),
        )
        .await;
    assert_eq!(got["message"]["text"], "sealed under a KMS-wrapped KEK");
    let crypto = app.state.crypto.clone().unwrap();
    assert!(crypto.keyring.root_description().starts_with("aws-kms:"));
    let (_, _, rewrapped) =
        ward::crypto::rotation::rotate_kek(&crypto, &ward::audit::MemorySink::new())
            .await
            .unwrap();
    assert!(rewrapped >= 1);
    let (_, got) = app
        .get(
            &format!("/messages/{}", m["id"].as_str().unwrap()),
            &app.token("b"),
        )
        .await;
    assert_eq!(got["message"]["text"], "sealed under a KMS-wrapped KEK");
    assert_eq!(
        hits.load(std::sync::atomic::Ordering::Relaxed),
        1,
        "task-role credentials are fetched once and cached until near expiry"
    );
}

on_both_databases!(
    kms_wraps_and_unwraps_keks_with_the_context_bound,
    the_app_runs_on_a_kms_root_key_with_task_role_credentials
);
