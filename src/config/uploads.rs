//! The upload settings (`WARD_UPLOADS_*`): size limit, allowed and blocked MIME types and
//! extensions, how long a download link lives, and where the sealed blobs are kept (the data
//! directory by default, an S3 bucket when `WARD_UPLOADS_S3_BUCKET` is set).

use anyhow::Context;

use super::KmsCredentials;

/// What `POST …/file|image` accepts, as `GET /app` reports it (`file_upload_config`,
/// `image_upload_config`).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct UploadRules {
    /// Lower-case extensions without the dot; empty: any.
    pub allowed_extensions: Vec<String>,
    pub blocked_extensions: Vec<String>,
    /// Lower-case MIME types, compared with the sniffed type; empty: any.
    pub allowed_mime_types: Vec<String>,
    pub blocked_mime_types: Vec<String>,
}

#[derive(Clone)]
pub struct UploadConfig {
    /// `WARD_UPLOADS_MAX_BYTES`: the largest file (default 100 MiB, as Stream's).
    pub max_bytes: usize,
    /// `WARD_UPLOADS_URL_TTL_SECS`: how long a download link works (default 14 days; the
    /// link also stops working when the uploader loses access to the channel, is erased,
    /// or the file is deleted).
    pub url_ttl_secs: i64,
    /// `WARD_UPLOADS_FILE_*` rules for `…/file`.
    pub file: UploadRules,
    /// `WARD_UPLOADS_IMAGE_*` rules for `…/image` (on top of: only real JPEG, PNG, GIF or
    /// WebP images).
    pub image: UploadRules,
    /// `WARD_UPLOADS_S3_BUCKET` and friends; unset: blobs live under `<data dir>/uploads`.
    pub s3: Option<UploadS3Config>,
}

/// `WARD_UPLOADS_S3_BUCKET`, `WARD_UPLOADS_S3_PREFIX`, `WARD_UPLOADS_S3_REGION` (or
/// `AWS_REGION`), `WARD_UPLOADS_S3_ENDPOINT` and the AWS credentials. Never `Debug`.
#[derive(Clone)]
pub struct UploadS3Config {
    pub bucket: String,
    pub prefix: String,
    pub region: String,
    pub endpoint: Option<String>,
    pub credentials: KmsCredentials,
}

/// Commonly abused executable and script extensions, blocked for files by default.
const DEFAULT_BLOCKED_FILE_EXTENSIONS: &[&str] = &[
    "exe", "dll", "bat", "cmd", "com", "scr", "msi", "ps1", "vbs", "js", "jar", "sh", "html",
    "htm", "svg", "xhtml",
];

fn list(env: &impl Fn(&str) -> Option<String>, name: &str, default: &[&str]) -> Vec<String> {
    match env(name) {
        Some(v) => v
            .split(',')
            .map(|s| s.trim().trim_start_matches('.').to_lowercase())
            .filter(|s| !s.is_empty())
            .collect(),
        None => default.iter().map(|s| s.to_string()).collect(),
    }
}

fn rules(env: &impl Fn(&str) -> Option<String>, kind: &str, blocked_ext: &[&str]) -> UploadRules {
    UploadRules {
        allowed_extensions: list(env, &format!("WARD_UPLOADS_{kind}_ALLOWED_EXTENSIONS"), &[]),
        blocked_extensions: list(
            env,
            &format!("WARD_UPLOADS_{kind}_BLOCKED_EXTENSIONS"),
            blocked_ext,
        ),
        allowed_mime_types: list(env, &format!("WARD_UPLOADS_{kind}_ALLOWED_MIME_TYPES"), &[]),
        blocked_mime_types: list(env, &format!("WARD_UPLOADS_{kind}_BLOCKED_MIME_TYPES"), &[]),
    }
}

pub(super) fn from_env(env: &impl Fn(&str) -> Option<String>) -> anyhow::Result<UploadConfig> {
    let max_bytes = match env("WARD_UPLOADS_MAX_BYTES") {
        Some(v) => v
            .trim()
            .parse()
            .context("WARD_UPLOADS_MAX_BYTES must be a number of bytes")?,
        None => 100 * 1024 * 1024,
    };
    anyhow::ensure!(max_bytes > 0, "WARD_UPLOADS_MAX_BYTES must be above 0");
    let url_ttl_secs = match env("WARD_UPLOADS_URL_TTL_SECS") {
        Some(v) => v
            .trim()
            .parse()
            .context("WARD_UPLOADS_URL_TTL_SECS must be a number of seconds")?,
        None => 14 * 24 * 3600,
    };
    anyhow::ensure!(
        url_ttl_secs > 0,
        "WARD_UPLOADS_URL_TTL_SECS must be above 0"
    );
    let s3 = match env("WARD_UPLOADS_S3_BUCKET").filter(|b| !b.is_empty()) {
        None => None,
        Some(bucket) => Some(UploadS3Config {
            bucket,
            prefix: env("WARD_UPLOADS_S3_PREFIX").unwrap_or_else(|| "ward-uploads/".into()),
            region: env("WARD_UPLOADS_S3_REGION")
                .or_else(|| env("AWS_REGION"))
                .unwrap_or_else(|| "us-east-1".into()),
            endpoint: env("WARD_UPLOADS_S3_ENDPOINT"),
            credentials: super::aws::kms_credentials(env)?,
        }),
    };
    Ok(UploadConfig {
        max_bytes,
        url_ttl_secs,
        file: rules(env, "FILE", DEFAULT_BLOCKED_FILE_EXTENSIONS),
        image: rules(env, "IMAGE", &[]),
        s3,
    })
}
