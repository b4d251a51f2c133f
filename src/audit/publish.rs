//! Signed checkpoints published outside the database. The hash chain and the Merkle tree live
//! in the database, so someone who can rewrite the database can rewrite them consistently;
//! only a signed checkpoint held where that person cannot write catches it
//! (audit-and-crypto.md §1.4 "Checkpoints"). A [`CheckpointSink`] is that place: a directory
//! (ideally on storage the database's operators can't rewrite) or, in the AWS stack, an S3
//! bucket with Object Lock in COMPLIANCE mode.
//!
//! Both keep one immutable object per tree size — publishing a different text for a size
//! already published fails, because a log that signs two views of one size is exactly what
//! an auditor must be able to prove — and a "latest" pointer that only moves forward, which
//! the server compares with the database at startup to detect a rollback.

use std::io::Write;
use std::path::{Path, PathBuf};

#[async_trait::async_trait]
pub trait CheckpointSink: Send + Sync {
    /// Publishes the signed checkpoint for `size`. Idempotent: publishing the same text for
    /// the same size again is Ok; a DIFFERENT text for a size already published is an error
    /// (the log must never sign two views of one size) and the stored object is left
    /// untouched. Also updates the "latest" pointer, never moving it to a smaller size.
    async fn publish(&self, size: u64, signed_note: &str) -> anyhow::Result<()>;
    /// The latest published checkpoint text, if any (the server compares it with the
    /// database at startup to detect a rollback).
    async fn latest(&self) -> anyhow::Result<Option<String>>;
    /// For logs and the ops endpoint: where checkpoints go (never credentials).
    fn describe(&self) -> String;
}

/// The tree size a checkpoint commits to: its second line (C2SP tlog-checkpoint: origin,
/// decimal size without leading zeros, base64 root hash, then the signatures).
pub fn checkpoint_size(note: &str) -> Option<u64> {
    let line = note.split('\n').nth(1)?;
    let canonical = !line.is_empty()
        && line.bytes().all(|b| b.is_ascii_digit())
        && (line == "0" || !line.starts_with('0'));
    canonical.then(|| line.parse().ok()).flatten()
}

/// Refuses a text that is not a checkpoint for `size`: stored under the wrong name it would
/// make the "one view per size" check compare the wrong things, and the latest pointer is
/// ordered by the size in the text.
fn ensure_for_size(size: u64, note: &str) -> anyhow::Result<()> {
    anyhow::ensure!(
        checkpoint_size(note) == Some(size),
        "the checkpoint text is not for tree size {size} (its second line must be the size)"
    );
    Ok(())
}

/// The per-size object's name: zero-padded so names sort by size.
fn size_name(size: u64) -> String {
    format!("{size:020}")
}

/// Checkpoints as files: `<dir>/checkpoints/<size, 20 digits>` (never overwritten) and
/// `<dir>/checkpoint` (the latest).
pub struct DirectorySink {
    dir: PathBuf,
}

impl DirectorySink {
    /// Creates `dir` (and `dir/checkpoints`) if missing.
    pub fn new(dir: impl Into<PathBuf>) -> anyhow::Result<Self> {
        let dir = dir.into();
        crate::fsx::private_dir(&dir)?;
        crate::fsx::private_dir(&dir.join("checkpoints"))?;
        Ok(Self { dir })
    }
}

#[async_trait::async_trait]
impl CheckpointSink for DirectorySink {
    async fn publish(&self, size: u64, signed_note: &str) -> anyhow::Result<()> {
        ensure_for_size(size, signed_note)?;
        let dir = self.dir.clone();
        let note = signed_note.to_string();
        // Blocking file IO (and a blocking lock) off the async workers.
        tokio::task::spawn_blocking(move || publish_to_dir(&dir, size, &note)).await?
    }

    async fn latest(&self) -> anyhow::Result<Option<String>> {
        let path = self.dir.join("checkpoint");
        tokio::task::spawn_blocking(move || read_if_exists(&path)).await?
    }

    fn describe(&self) -> String {
        format!("directory {}", self.dir.display())
    }
}

fn read_if_exists(path: &Path) -> anyhow::Result<Option<String>> {
    match std::fs::read_to_string(path) {
        Ok(text) => Ok(Some(text)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(anyhow::anyhow!("reading {}: {e}", path.display())),
    }
}

/// Writes `bytes` to a fresh temporary file in `dir`, flushed to disk, so that the name it
/// is then linked or renamed to never shows a partial checkpoint, even after a crash.
fn durable_temp(dir: &Path, bytes: &[u8]) -> anyhow::Result<PathBuf> {
    let tmp = dir.join(format!(".tmp-{}", uuid::Uuid::new_v4().simple()));
    let mut file = crate::fsx::private_file_options()
        .write(true)
        .create_new(true)
        .open(&tmp)?;
    file.write_all(bytes)?;
    file.sync_all()?;
    Ok(tmp)
}

/// Makes a directory entry change (link, rename) durable.
fn sync_dir(dir: &Path) -> anyhow::Result<()> {
    std::fs::File::open(dir)?.sync_all()?;
    Ok(())
}

fn publish_to_dir(dir: &Path, size: u64, note: &str) -> anyhow::Result<()> {
    // One publisher at a time, across processes too (several nodes may share the
    // directory): the latest pointer is a read-compare-replace. Released when dropped.
    let lock = crate::fsx::private_file_options()
        .create(true)
        .truncate(false)
        .write(true)
        .open(dir.join(".lock"))?;
    lock.lock()?;

    let sizes = dir.join("checkpoints");
    let path = sizes.join(size_name(size));
    let existing = match read_if_exists(&path)? {
        Some(existing) => Some(existing),
        None => {
            let tmp = durable_temp(&sizes, note.as_bytes())?;
            // A hard link never replaces an existing name (a rename would): the per-size
            // file is created once, whatever else writes to the directory.
            let linked = std::fs::hard_link(&tmp, &path);
            std::fs::remove_file(&tmp)?;
            match linked {
                Ok(()) => {
                    sync_dir(&sizes)?;
                    None
                }
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                    Some(std::fs::read_to_string(&path)?)
                }
                Err(e) => return Err(anyhow::anyhow!("creating {}: {e}", path.display())),
            }
        }
    };
    if let Some(existing) = existing {
        anyhow::ensure!(
            existing == note,
            "a different checkpoint for tree size {size} is already published at {}; refusing \
             to publish a second view of that size",
            path.display()
        );
    }

    let latest = dir.join("checkpoint");
    if let Some(current) = read_if_exists(&latest)? {
        let current = checkpoint_size(&current).ok_or_else(|| {
            anyhow::anyhow!("{} is not a checkpoint; fix it by hand", latest.display())
        })?;
        if current >= size {
            return Ok(());
        }
    }
    let tmp = durable_temp(dir, note.as_bytes())?;
    std::fs::rename(&tmp, &latest)?;
    sync_dir(dir)
}

#[cfg(feature = "s3-checkpoints")]
pub use s3::{S3Sink, S3SinkConfig};

#[cfg(feature = "s3-checkpoints")]
mod s3 {
    use base64::Engine;
    use base64::engine::general_purpose::STANDARD;
    use reqwest::{Method, StatusCode, Url};
    use sha2::{Digest, Sha256};

    use super::{CheckpointSink, checkpoint_size, ensure_for_size, size_name};
    use crate::crypto::aws::{AwsClient, CredentialSource, uri_encode};

    /// How often the latest pointer's compare-and-swap is tried. Each failed try means
    /// another publisher's write landed in between, so N concurrent publishers (one
    /// appender per node) need at most N tries.
    const SWAP_ATTEMPTS: usize = 16;

    /// Where the S3 sink writes. Never `Debug` (it holds credentials).
    pub struct S3SinkConfig {
        pub bucket: String,
        /// Prepended to the object keys as it is (`checkpoints/` gives
        /// `checkpoints/checkpoints/<size>` and `checkpoints/checkpoint`).
        pub prefix: String,
        pub region: String,
        /// Defaults to `https://s3.<region>.amazonaws.com`; path-style URLs are used.
        pub endpoint: Option<String>,
        pub credentials: CredentialSource,
        /// Object Lock: when `Some(days)`, each per-size object is written with COMPLIANCE
        /// retention until now + `days` — then nobody, root account included, can delete or
        /// overwrite it before then. The bucket must have Object Lock enabled.
        pub retain_days: Option<u32>,
    }

    /// Checkpoints in an S3 bucket: `<prefix>checkpoints/<size, 20 digits>` (written once,
    /// with `If-None-Match: *`) and `<prefix>checkpoint` (the latest, replaced with
    /// `If-Match` on the ETag read, so concurrent publishers never move it backwards).
    ///
    /// The role needs `s3:GetObject` and `s3:PutObject` on the prefix, `s3:ListBucket` (so a
    /// missing object reads as 404 rather than 403) and, with `retain_days`,
    /// `s3:PutObjectRetention`.
    pub struct S3Sink {
        aws: AwsClient,
        /// `scheme://host[:port]`, no trailing slash.
        origin: String,
        bucket: String,
        prefix: String,
        retain_days: Option<u32>,
    }

    /// What a conditional PUT did.
    enum Put {
        Done,
        /// The condition failed: someone else wrote the object since we read it.
        Conflict,
    }

    impl S3Sink {
        pub fn new(config: S3SinkConfig) -> anyhow::Result<Self> {
            let S3SinkConfig {
                bucket,
                prefix,
                region,
                endpoint,
                credentials,
                retain_days,
            } = config;
            anyhow::ensure!(
                !bucket.is_empty() && !bucket.contains('/'),
                "the checkpoint bucket name {bucket:?} is not a bucket name"
            );
            anyhow::ensure!(
                !prefix.starts_with('/'),
                "the checkpoint key prefix must not start with /"
            );
            let endpoint = endpoint.unwrap_or_else(|| format!("https://s3.{region}.amazonaws.com"));
            let url = Url::parse(&endpoint)
                .map_err(|e| anyhow::anyhow!("the S3 endpoint is not a URL: {e}"))?;
            // Credentials belong in `credentials`; a path would be lost in the object URLs.
            anyhow::ensure!(
                url.username().is_empty()
                    && url.password().is_none()
                    && url.path() == "/"
                    && url.query().is_none(),
                "the S3 endpoint must be scheme://host[:port] only"
            );
            let origin = url.as_str().trim_end_matches('/').to_string();
            let aws = AwsClient::new(
                "s3",
                &region,
                credentials,
                std::time::Duration::from_secs(10),
            )?;
            Ok(Self {
                aws,
                origin,
                bucket,
                prefix,
                retain_days,
            })
        }

        fn url(&self, key: &str) -> anyhow::Result<Url> {
            Ok(Url::parse(&format!(
                "{}/{}/{}",
                self.origin,
                uri_encode(&self.bucket, false),
                uri_encode(key, true)
            ))?)
        }

        /// `s3://bucket/key`, for errors.
        fn name(&self, key: &str) -> String {
            format!("s3://{}/{key}", self.bucket)
        }

        /// The object and its ETag, or `None` when there is no such key (any other error,
        /// a missing bucket included, is an error).
        async fn get(&self, key: &str) -> anyhow::Result<Option<(Vec<u8>, Option<String>)>> {
            let res = self
                .aws
                .send(Method::GET, self.url(key)?, &[], Vec::new())
                .await?;
            let status = res.status();
            let etag = res
                .headers()
                .get("etag")
                .and_then(|v| v.to_str().ok())
                .map(str::to_string);
            let delete_marker = res.headers().contains_key("x-amz-delete-marker");
            let body = res.bytes().await?.to_vec();
            if status.is_success() {
                return Ok(Some((body, etag)));
            }
            let code = error_code(&body);
            if status == StatusCode::NOT_FOUND && code == "NoSuchKey" {
                // In a versioned (Object Lock) bucket a delete marker hides an object that
                // still exists: publishing over it could sign a second view of its size.
                anyhow::ensure!(
                    !delete_marker,
                    "{} was deleted (a delete marker hides it); refusing to write over it",
                    self.name(key)
                );
                return Ok(None);
            }
            anyhow::bail!("S3 GET {} failed ({status}): {code}", self.name(key))
        }

        /// PUT with an integrity checksum (Object Lock requires one) plus `headers`.
        async fn put(
            &self,
            key: &str,
            body: &str,
            headers: &[(&str, &str)],
        ) -> anyhow::Result<Put> {
            let checksum = STANDARD.encode(Sha256::digest(body.as_bytes()));
            let mut all = vec![
                ("content-type", "text/plain; charset=utf-8"),
                ("x-amz-sdk-checksum-algorithm", "SHA256"),
                ("x-amz-checksum-sha256", checksum.as_str()),
            ];
            all.extend_from_slice(headers);
            let res = self
                .aws
                .send(Method::PUT, self.url(key)?, &all, body.as_bytes().to_vec())
                .await?;
            let status = res.status();
            if status.is_success() {
                return Ok(Put::Done);
            }
            // 412: the condition failed; 409: a concurrent conditional write won the race.
            if status == StatusCode::PRECONDITION_FAILED || status == StatusCode::CONFLICT {
                return Ok(Put::Conflict);
            }
            let body = res.bytes().await.unwrap_or_default();
            anyhow::bail!(
                "S3 PUT {} failed ({status}): {}",
                self.name(key),
                error_code(&body)
            )
        }

        /// Writes the per-size object once; an existing one must hold the same bytes.
        async fn publish_size(&self, size: u64, note: &str) -> anyhow::Result<()> {
            let key = format!("{}checkpoints/{}", self.prefix, size_name(size));
            let existing = match self.get(&key).await? {
                Some((bytes, _)) => bytes,
                None => {
                    let until = self.retain_days.map(|days| {
                        (chrono::Utc::now() + chrono::Duration::days(days.into()))
                            .to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
                    });
                    let mut headers = vec![("if-none-match", "*")];
                    if let Some(until) = &until {
                        headers.push(("x-amz-object-lock-mode", "COMPLIANCE"));
                        headers.push(("x-amz-object-lock-retain-until-date", until));
                    }
                    match self.put(&key, note, &headers).await? {
                        Put::Done => return Ok(()),
                        Put::Conflict => self.get(&key).await?.map(|(b, _)| b).unwrap_or_default(),
                    }
                }
            };
            anyhow::ensure!(
                existing == note.as_bytes(),
                "a different checkpoint for tree size {size} is already published at {}; \
                 refusing to publish a second view of that size",
                self.name(&key)
            );
            Ok(())
        }

        /// Moves the latest pointer forward to `size` (compare-and-swap on the ETag).
        async fn advance_latest(&self, size: u64, note: &str) -> anyhow::Result<()> {
            let key = format!("{}checkpoint", self.prefix);
            for _ in 0..SWAP_ATTEMPTS {
                let condition = match self.get(&key).await? {
                    None => ("if-none-match", "*".to_string()),
                    Some((text, etag)) => {
                        let current = std::str::from_utf8(&text)
                            .ok()
                            .and_then(checkpoint_size)
                            .ok_or_else(|| {
                                anyhow::anyhow!("{} is not a checkpoint", self.name(&key))
                            })?;
                        if current >= size {
                            return Ok(());
                        }
                        let etag = etag.ok_or_else(|| {
                            anyhow::anyhow!("S3 returned no ETag for {}", self.name(&key))
                        })?;
                        ("if-match", etag)
                    }
                };
                if let Put::Done = self.put(&key, note, &[(condition.0, &condition.1)]).await? {
                    return Ok(());
                }
            }
            anyhow::bail!(
                "{} kept changing while moving it to size {size}",
                self.name(&key)
            )
        }
    }

    /// The `<Code>` of an S3 XML error: it names the failure and never carries a secret
    /// (the `<Message>` and other fields can echo request details, so they are left out).
    fn error_code(body: &[u8]) -> String {
        let text = String::from_utf8_lossy(body);
        text.split_once("<Code>")
            .and_then(|(_, rest)| rest.split_once("</Code>"))
            .map(|(code, _)| code.to_string())
            .unwrap_or_else(|| "no error code".to_string())
    }

    #[async_trait::async_trait]
    impl CheckpointSink for S3Sink {
        async fn publish(&self, size: u64, signed_note: &str) -> anyhow::Result<()> {
            ensure_for_size(size, signed_note)?;
            self.publish_size(size, signed_note).await?;
            self.advance_latest(size, signed_note).await
        }

        async fn latest(&self) -> anyhow::Result<Option<String>> {
            let key = format!("{}checkpoint", self.prefix);
            match self.get(&key).await? {
                None => Ok(None),
                Some((bytes, _)) => {
                    Ok(Some(String::from_utf8(bytes).map_err(|_| {
                        anyhow::anyhow!("{} is not UTF-8", self.name(&key))
                    })?))
                }
            }
        }

        fn describe(&self) -> String {
            let lock = match self.retain_days {
                Some(days) => format!(", Object Lock COMPLIANCE {days} days"),
                None => String::new(),
            };
            format!(
                "s3://{}/{} via {}{lock}",
                self.bucket, self.prefix, self.origin
            )
        }
    }
}

#[cfg(test)]
mod tests {
    use super::checkpoint_size;

    #[test]
    fn the_size_is_the_canonical_decimal_second_line() {
        let note = "example.com/log\n42\nqINS1GRFhWHwdkUeqLEoP4yEMkTBBzxBkGwGQlVlVcs=\n\n— example.com/log Az3grlgt...\n";
        assert_eq!(checkpoint_size(note), Some(42));
        assert_eq!(checkpoint_size("o\n0\nh\n"), Some(0));
        for bad in ["o\n042\nh\n", "o\n+42\nh\n", "o\n\nh\n", "o", "o\n4 2\nh\n"] {
            assert_eq!(checkpoint_size(bad), None, "{bad:?}");
        }
    }
}
