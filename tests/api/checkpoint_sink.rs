//! Checkpoint sinks, the copies of the signed checkpoints kept outside the database: one
//! immutable object per tree size, and a latest pointer that never moves back. The directory
//! sink on a temporary directory; the S3 sink against `moto_server` with Object Lock.

use ward::audit::publish::{CheckpointSink, DirectorySink};

/// A checkpoint-shaped signed note (C2SP tlog-checkpoint): origin, size, root hash, then a
/// signature line. The signature is not checked by the sinks, only the size line.
fn note(size: u64, root: &str) -> String {
    format!(
        "ward.test/audit/v1\n{size}\n{root}=\n\n\u{2014} ward.test/audit/v1 AAAAAXNpZ25hdHVyZQ==\n"
    )
}

fn size_file(dir: &std::path::Path, size: u64) -> std::path::PathBuf {
    dir.join("checkpoints").join(format!("{size:020}"))
}

#[tokio::test]
async fn a_directory_sink_keeps_one_view_per_size_and_never_moves_latest_back() {
    let dir = std::env::temp_dir().join(format!(
        "ward_checkpoints_{}",
        uuid::Uuid::new_v4().simple()
    ));
    let sink = DirectorySink::new(&dir).unwrap();
    assert!(sink.describe().contains(&dir.display().to_string()));
    assert_eq!(sink.latest().await.unwrap(), None);

    let (one, three) = (note(1, "one"), note(3, "three"));
    sink.publish(1, &one).await.unwrap();
    sink.publish(3, &three).await.unwrap();
    assert_eq!(std::fs::read(size_file(&dir, 1)).unwrap(), one.as_bytes());
    assert_eq!(std::fs::read(size_file(&dir, 3)).unwrap(), three.as_bytes());
    assert_eq!(
        std::fs::read(dir.join("checkpoint")).unwrap(),
        three.as_bytes()
    );
    assert_eq!(
        sink.latest().await.unwrap().as_deref(),
        Some(three.as_str())
    );

    sink.publish(3, &three)
        .await
        .expect("publishing the same text again is a no-op");
    let err = sink.publish(3, &note(3, "fork")).await.unwrap_err();
    assert!(
        err.to_string().contains("different checkpoint"),
        "a second view of size 3 is refused: {err:#}"
    );
    assert_eq!(std::fs::read(size_file(&dir, 3)).unwrap(), three.as_bytes());
    assert_eq!(
        sink.latest().await.unwrap().as_deref(),
        Some(three.as_str())
    );

    let two = note(2, "two");
    sink.publish(2, &two).await.unwrap();
    assert_eq!(std::fs::read(size_file(&dir, 2)).unwrap(), two.as_bytes());
    assert_eq!(
        sink.latest().await.unwrap().as_deref(),
        Some(three.as_str()),
        "an older size does not move latest back"
    );

    assert!(
        sink.publish(4, &note(5, "five")).await.is_err(),
        "a text for another size is refused"
    );
    assert!(!size_file(&dir, 4).exists());
    let mut names: Vec<String> = std::fs::read_dir(dir.join("checkpoints"))
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    names.sort();
    assert_eq!(
        names,
        [1, 2, 3].map(|s| format!("{s:020}")),
        "one file per size, no temporary files left behind"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

/// Publishers racing (several nodes, retries): concurrent sizes leave latest at the highest,
/// and of two views of one size exactly one is published. Holds whatever the interleaving.
async fn race(sink: &dyn CheckpointSink) {
    let notes: Vec<String> = (1..=8).map(|s| note(s, "n")).collect();
    let published = futures_util::future::join_all(
        notes
            .iter()
            .zip(1u64..)
            .map(|(n, size)| sink.publish(size, n)),
    )
    .await;
    assert!(published.iter().all(Result::is_ok), "{published:?}");
    assert_eq!(sink.latest().await.unwrap(), Some(note(8, "n")));

    let forks = [note(9, "left"), note(9, "right")];
    let published = futures_util::future::join_all(forks.iter().map(|n| sink.publish(9, n))).await;
    let winners: Vec<&String> = forks
        .iter()
        .zip(&published)
        .filter_map(|(n, r)| r.is_ok().then_some(n))
        .collect();
    assert_eq!(winners.len(), 1, "one view of size 9: {published:?}");
    assert_eq!(sink.latest().await.unwrap().as_ref(), Some(winners[0]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn racing_directory_publishers_keep_one_view_per_size_and_the_highest_latest() {
    let dir = std::env::temp_dir().join(format!(
        "ward_checkpoints_{}",
        uuid::Uuid::new_v4().simple()
    ));
    race(&DirectorySink::new(&dir).unwrap()).await;
    std::fs::remove_dir_all(&dir).unwrap();
}

#[cfg(feature = "s3-checkpoints")]
mod s3 {
    use reqwest::{Method, StatusCode, Url};
    use secrecy::SecretString;
    use ward::audit::publish::{CheckpointSink, S3Sink, S3SinkConfig};
    use ward::crypto::aws::{AwsClient, CredentialSource, Credentials};

    use super::{note, race};
    use crate::moto::{Moto, credentials};

    const BUCKET: &str = "ward-checkpoints";
    const SECRET: &str = "do-not-print-this-secret";

    fn client() -> AwsClient {
        AwsClient::new(
            "s3",
            "us-east-1",
            CredentialSource::Static(credentials()),
            std::time::Duration::from_secs(10),
        )
        .unwrap()
    }

    /// CreateBucket with Object Lock (which also turns versioning on), signed like the sink's
    /// own requests.
    async fn create_locked_bucket(moto: &Moto) {
        let res = client()
            .send(
                Method::PUT,
                Url::parse(&format!("{}/{BUCKET}", moto.url)).unwrap(),
                &[("x-amz-bucket-object-lock-enabled", "true")],
                Vec::new(),
            )
            .await
            .unwrap();
        assert!(res.status().is_success(), "CreateBucket: {}", res.status());
    }

    async fn send(moto: &Moto, method: Method, key_and_query: &str) -> reqwest::Response {
        client()
            .send(
                method,
                Url::parse(&format!("{}/{BUCKET}/{key_and_query}", moto.url)).unwrap(),
                &[],
                Vec::new(),
            )
            .await
            .unwrap()
    }

    async fn get(moto: &Moto, key: &str) -> (StatusCode, String) {
        let res = send(moto, Method::GET, key).await;
        (res.status(), res.text().await.unwrap())
    }

    async fn object(moto: &Moto, key: &str) -> String {
        let (status, body) = get(moto, key).await;
        assert_eq!(status, StatusCode::OK, "GET {key}: {body}");
        body
    }

    fn sink(moto: &Moto, bucket: &str, credentials: CredentialSource) -> S3Sink {
        S3Sink::new(S3SinkConfig {
            bucket: bucket.into(),
            prefix: "audit/".into(),
            region: "us-east-1".into(),
            endpoint: Some(moto.url.clone()),
            credentials,
            retain_days: Some(30),
        })
        .unwrap()
    }

    fn static_keys() -> CredentialSource {
        CredentialSource::Static(Credentials {
            access_key_id: "testing".into(),
            secret_access_key: SecretString::from(SECRET),
            session_token: None,
        })
    }

    #[tokio::test]
    async fn an_s3_sink_writes_locked_objects_once_and_never_moves_latest_back() {
        let moto = Moto::start().await;
        create_locked_bucket(&moto).await;
        let sink = sink(&moto, BUCKET, static_keys());
        let described = sink.describe();
        assert!(
            described.contains("s3://ward-checkpoints/audit/"),
            "{described}"
        );
        assert!(!described.contains(SECRET) && !described.contains("testing"));
        assert_eq!(sink.latest().await.unwrap(), None);

        let (one, three) = (note(1, "one"), note(3, "three"));
        sink.publish(1, &one).await.unwrap();
        sink.publish(3, &three).await.unwrap();
        let (key1, key3) = (
            "audit/checkpoints/00000000000000000001",
            "audit/checkpoints/00000000000000000003",
        );
        assert_eq!(object(&moto, key1).await, one);
        assert_eq!(object(&moto, key3).await, three);
        assert_eq!(object(&moto, "audit/checkpoint").await, three);
        assert_eq!(
            sink.latest().await.unwrap().as_deref(),
            Some(three.as_str())
        );

        // The lock as GetObject reports it (moto 5.2.5 does not implement
        // GetObjectRetention, `?retention`; S3 returns the same fields in these headers).
        let res = send(&moto, Method::GET, key3).await;
        let header = |name: &str| {
            res.headers()
                .get(name)
                .unwrap_or_else(|| panic!("{name} on GET {key3}"))
                .to_str()
                .unwrap()
                .to_string()
        };
        assert_eq!(header("x-amz-object-lock-mode"), "COMPLIANCE");
        let until =
            chrono::DateTime::parse_from_rfc3339(&header("x-amz-object-lock-retain-until-date"))
                .unwrap();
        assert!(
            until > chrono::Utc::now() + chrono::Duration::days(29),
            "retained for the configured 30 days: {until}"
        );
        let version = header("x-amz-version-id");
        let res = send(
            &moto,
            Method::DELETE,
            &format!("{key3}?versionId={version}"),
        )
        .await;
        assert!(
            !res.status().is_success(),
            "a locked version cannot be deleted: {}",
            res.status()
        );
        assert_eq!(object(&moto, key3).await, three);

        sink.publish(3, &three)
            .await
            .expect("publishing the same text again is a no-op");
        let err = sink.publish(3, &note(3, "fork")).await.unwrap_err();
        assert!(
            err.to_string().contains("different checkpoint"),
            "a second view of size 3 is refused: {err:#}"
        );
        assert_eq!(
            object(&moto, key3).await,
            three,
            "the stored object is untouched"
        );
        assert_eq!(object(&moto, "audit/checkpoint").await, three);

        let two = note(2, "two");
        sink.publish(2, &two).await.unwrap();
        assert_eq!(
            object(&moto, "audit/checkpoints/00000000000000000002").await,
            two
        );
        assert_eq!(
            sink.latest().await.unwrap().as_deref(),
            Some(three.as_str()),
            "an older size does not move latest back"
        );
        let (status, _) = get(&moto, "audit/checkpoints/00000000000000000004").await;
        assert_eq!(status, StatusCode::NOT_FOUND);
    }

    /// A stand-in for the ECS container credentials endpoint that refuses every caller.
    async fn refusing_credentials_endpoint() -> String {
        let app = axum::Router::new().route(
            "/creds",
            axum::routing::get(|| async { axum::http::StatusCode::FORBIDDEN }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        format!("http://{addr}/creds")
    }

    #[tokio::test]
    async fn an_s3_sink_fails_without_its_bucket_or_credentials_and_prints_no_secret() {
        let moto = Moto::start().await;
        let missing = sink(&moto, "no-such-bucket", static_keys());
        let err = missing.publish(1, &note(1, "one")).await.unwrap_err();
        let err = format!("{err:#}");
        assert!(err.contains("NoSuchBucket"), "{err}");
        assert!(!err.contains(SECRET), "{err}");
        assert!(
            missing.latest().await.is_err(),
            "a missing bucket is not an empty one"
        );

        create_locked_bucket(&moto).await;
        let token = "task-token-do-not-print";
        let refused = sink(
            &moto,
            BUCKET,
            CredentialSource::Container {
                url: refusing_credentials_endpoint().await,
                token: Some(SecretString::from(token)),
            },
        );
        let err = refused.publish(1, &note(1, "one")).await.unwrap_err();
        let err = format!("{err:#}");
        assert!(err.contains("403"), "{err}");
        assert!(!err.contains(token), "{err}");
        let (status, _) = get(&moto, "audit/checkpoints/00000000000000000001").await;
        assert_eq!(status, StatusCode::NOT_FOUND, "nothing was written");
    }

    #[tokio::test]
    async fn racing_s3_publishers_keep_one_view_per_size_and_the_highest_latest() {
        let moto = Moto::start().await;
        create_locked_bucket(&moto).await;
        race(&sink(&moto, BUCKET, static_keys())).await;
    }
}
