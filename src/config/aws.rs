//! The AWS settings: the KMS root-key provider and the S3 checkpoint sink, and the
//! credential sources both use.

use anyhow::{Context, bail};
use secrecy::SecretString;

/// `WARD_AUDIT_S3_BUCKET` and friends: where signed checkpoints are published in S3.
#[derive(Clone)]
pub struct AuditS3Config {
    pub bucket: String,
    pub prefix: String,
    pub region: String,
    pub endpoint: Option<String>,
    /// Object Lock retention (COMPLIANCE mode) for each checkpoint, in days.
    pub retain_days: Option<u32>,
    pub credentials: KmsCredentials,
}

/// `WARD_KMS_KEY_ID`, `WARD_KMS_REGION` (or `AWS_REGION`), `WARD_KMS_ENDPOINT`, and the
/// standard `AWS_ACCESS_KEY_ID` / `AWS_SECRET_ACCESS_KEY` / `AWS_SESSION_TOKEN`.
#[derive(Clone)]
pub struct KmsConfig {
    pub key_id: String,
    pub region: String,
    pub endpoint: Option<String>,
    pub credentials: KmsCredentials,
}

/// Static keys, or the ECS task role through the container credentials endpoint.
#[derive(Clone)]
pub enum KmsCredentials {
    Static {
        access_key_id: String,
        secret_access_key: SecretString,
        session_token: Option<SecretString>,
    },
    Container {
        url: String,
        token: Option<SecretString>,
    },
}

/// The AWS credential sources Ward supports, in the SDKs' order: static keys from the
/// environment, then the ECS container credentials endpoint (the task role).
pub(super) fn kms_credentials(
    env: &impl Fn(&str) -> Option<String>,
) -> anyhow::Result<KmsCredentials> {
    if let Some(access_key_id) = env("AWS_ACCESS_KEY_ID") {
        return Ok(KmsCredentials::Static {
            access_key_id,
            secret_access_key: SecretString::from(
                env("AWS_SECRET_ACCESS_KEY")
                    .context("AWS_ACCESS_KEY_ID is set without AWS_SECRET_ACCESS_KEY")?,
            ),
            session_token: env("AWS_SESSION_TOKEN").map(SecretString::from),
        });
    }
    let url = env("AWS_CONTAINER_CREDENTIALS_FULL_URI").or_else(|| {
        env("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI").map(|p| format!("http://169.254.170.2{p}"))
    });
    match url {
        Some(url) => {
            let token = match env("AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE") {
                Some(path) => Some(
                    std::fs::read_to_string(&path)
                        .with_context(|| format!("reading {path}"))?
                        .trim()
                        .to_string(),
                ),
                None => env("AWS_CONTAINER_AUTHORIZATION_TOKEN"),
            };
            Ok(KmsCredentials::Container {
                url,
                token: token.map(SecretString::from),
            })
        }
        None => bail!(
            "aws-kms needs AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY or an ECS task role (AWS_CONTAINER_CREDENTIALS_*)"
        ),
    }
}
