//! Configuration: defaults, then an optional TOML file (`--config`), then `WARD_*`
//! environment variables. Validated once at start; secrets are `SecretString`.
//!
//! A leaf: it imports nothing above `startup`. The AWS settings (`aws`), the file
//! (`file`) and the rate-limit settings ([`rate_limits`]) sit in their own files.

mod aws;
mod file;
pub mod rate_limits;
pub mod uploads;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use secrecy::SecretString;
use serde::Deserialize;

use aws::kms_credentials;
pub use aws::{AuditS3Config, KmsConfig, KmsCredentials};
use file::{FileConfig, parse_file};
pub use rate_limits::{Cidr, RateLimitConfig};
pub use uploads::{UploadConfig, UploadRules, UploadS3Config};

/// The validated configuration of one process.
#[derive(Clone)]
pub struct Config {
    /// Address to listen on. Never 3030: the SDK rewrites `:3030` in its WebSocket URL.
    pub bind: SocketAddr,
    pub data_dir: PathBuf,
    /// `sqlite://…` (default: `ward.db` in the data dir) or `postgres://…`.
    pub database_url: String,
    pub api_key: Option<String>,
    pub api_secret: Option<SecretString>,
    /// Accept Stream "dev tokens" (signature `devtoken`). Never in production.
    pub dev_tokens: bool,
    pub log_format: LogFormat,
    pub limits: Limits,
    /// `redis://…`: cross-node fan-out and presence. Unset: one node, in-process bus.
    pub redis_url: Option<String>,
    /// The pub/sub channel nodes of one deployment share.
    pub redis_channel: String,
    /// This node's name in the cluster and in usage samples (default: host name + random).
    pub node_id: String,
    /// Plan limits that usage reports compare against.
    pub plan: Plan,
    /// Load the authorization policies from this directory instead of the ones built in.
    pub policy_dir: Option<PathBuf>,
    /// Seal the classified columns (default on; off only for measuring its cost).
    pub encryption: bool,
    /// What wraps the KEKs: a local key file (default) or AWS KMS.
    pub key_provider: KeyProvider,
    pub audit: AuditConfig,
    /// `WARD_PUBLIC_URL`: how browsers and identity providers reach this server (SSO
    /// redirect URIs, SAML ACS and metadata); default `http://<bind>`.
    pub public_url: String,
    pub sessions: SessionConfig,
    /// `WARD_TLS_CERT` and `WARD_TLS_KEY` (PEM paths): terminate TLS in `ward serve`, for
    /// deployments without a load balancer.
    pub tls: Option<TlsConfig>,
    /// `WARD_RATE_LIMIT_*` and `WARD_TRUSTED_PROXIES`.
    pub rate_limits: RateLimitConfig,
    /// `WARD_METRICS_BIND`: where `GET /metrics` is served, on a listener of its own (never
    /// on the API port); unset or `off`: not served.
    pub metrics_bind: Option<SocketAddr>,
    /// `WARD_UPLOADS_*`: file and image uploads.
    pub uploads: UploadConfig,
    /// `WARD_URL_ENRICHMENT` (default false): serve `GET /og` (link previews fetch
    /// third-party URLs). `WARD_URL_ENRICHMENT_ALLOW_LOOPBACK` lets it fetch loopback
    /// addresses: for tests only.
    pub url_enrichment: UrlEnrichment,
    /// `WARD_GUEST_USERS` (file: `guest_users`): `POST /guest` creates guest users (role
    /// `guest`). Off by default.
    pub guest_users: bool,
    /// `WARD_ANONYMOUS_USERS` (file: `anonymous_users`): anonymous WebSocket connections
    /// (`connectAnonymousUser`), which read only public channel types (livestream), never
    /// `phi`. Off by default.
    pub anonymous_users: bool,
}

/// `GET /og` (link previews): off by default (see `chat::og`).
#[derive(Debug, Clone, Copy, Default)]
pub struct UrlEnrichment {
    pub enabled: bool,
    /// Fetch loopback addresses too: for tests against a local server only.
    pub allow_loopback: bool,
}

#[derive(Clone)]
pub struct TlsConfig {
    pub cert: PathBuf,
    pub key: PathBuf,
}

/// Interactive sessions (SSO and password logins).
#[derive(Clone)]
pub struct SessionConfig {
    /// `WARD_SESSION_IDLE_SECS` (default 1800): a session unused this long ends.
    pub idle_secs: i64,
    /// `WARD_SESSION_MAX_SECS` (default 43200): no session lives longer.
    pub absolute_secs: i64,
    /// `WARD_COOKIE_SECURE` (default: true when `WARD_PUBLIC_URL` is https).
    pub secure_cookies: bool,
    /// `WARD_CHAT_TOKEN_SECS` (default 3600): lifetime of tokens from `/auth/chat-token`.
    pub chat_token_secs: i64,
}

/// The audit log: its identity and where checkpoints are published outside the database.
#[derive(Clone)]
pub struct AuditConfig {
    /// `WARD_AUDIT_ORIGIN`: the log's C2SP origin (fixed when the log is created).
    pub origin: Option<String>,
    /// `WARD_AUDIT_CHECKPOINT_DIR` (default `<data dir>/audit-checkpoints`; `off` for none).
    pub checkpoint_dir: Option<PathBuf>,
    /// `WARD_AUDIT_S3_BUCKET` and friends: publish to S3 (Object Lock) instead of a directory.
    pub s3: Option<AuditS3Config>,
}

#[derive(Clone)]
pub enum KeyProvider {
    /// `<data dir>/root.key`, for one machine.
    Local,
    AwsKms(KmsConfig),
}

/// A plan's included monthly active users and peak concurrent connections.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
pub struct Plan {
    pub mau: Option<u64>,
    pub pcc: Option<u64>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    Text,
    Json,
}

/// Input and resource limits. Defaults follow Stream's where Stream publishes one.
#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct Limits {
    /// Largest REST request body (code 22 beyond it).
    pub max_body_bytes: usize,
    /// Largest WebSocket message a client may send.
    pub max_ws_frame_bytes: usize,
    /// Longest message text in characters (code 20 beyond it).
    pub max_message_length: usize,
    /// Open WebSockets per user (code 71 beyond it).
    pub max_connections_per_user: usize,
    /// Events queued for one connection before it is closed as too slow.
    pub ws_queue_len: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_body_bytes: 512 * 1024,
            max_ws_frame_bytes: 64 * 1024,
            max_message_length: 5000,
            max_connections_per_user: 50,
            ws_queue_len: 256,
        }
    }
}

impl Config {
    /// Loads the configuration: file (if any) then the process environment.
    pub fn load(file: Option<&Path>) -> anyhow::Result<Self> {
        Self::from_sources(file, |name| std::env::var(name).ok())
    }

    /// As [`Config::load`], with the environment given as a lookup function (for tests).
    pub fn from_sources(
        file: Option<&Path>,
        env: impl Fn(&str) -> Option<String>,
    ) -> anyhow::Result<Self> {
        let file_cfg: FileConfig = match file {
            Some(path) => {
                let text = std::fs::read_to_string(path)
                    .with_context(|| format!("reading config file {}", path.display()))?;
                parse_file(path, &text)?
            }
            None => FileConfig::default(),
        };
        let bind_source = if env("WARD_BIND").is_some() {
            "WARD_BIND".to_string()
        } else if let (Some(path), Some(_)) = (file, &file_cfg.bind) {
            format!("config file {}, key `bind`", path.display())
        } else {
            "WARD_BIND".to_string()
        };
        let bind_text = env("WARD_BIND")
            .or(file_cfg.bind)
            .unwrap_or_else(|| "127.0.0.1:8080".into());
        let bind: SocketAddr = bind_text.parse().with_context(|| {
            format!("{bind_source}: {bind_text:?} is not an address like 127.0.0.1:8080")
        })?;
        if bind.port() == 3030 {
            bail!("port 3030 cannot be used: the Stream SDK rewrites :3030 in its WebSocket URL");
        }
        let data_dir = env("WARD_DATA_DIR")
            .map(PathBuf::from)
            .or(file_cfg.data_dir)
            .unwrap_or_else(|| PathBuf::from("./data"));
        let database_url = env("WARD_DATABASE_URL")
            .or(file_cfg.database_url)
            .unwrap_or_else(|| format!("sqlite://{}", data_dir.join("ward.db").display()));
        if !(database_url.starts_with("sqlite:")
            || database_url.starts_with("postgres://")
            || database_url.starts_with("postgresql://"))
        {
            bail!("WARD_DATABASE_URL must start with sqlite: or postgres://");
        }
        let api_key = env("WARD_API_KEY").or(file_cfg.api_key);
        let api_secret = env("WARD_API_SECRET")
            .or(file_cfg.api_secret)
            .map(SecretString::from);
        if api_key.is_some() != api_secret.is_some() {
            bail!("WARD_API_KEY and WARD_API_SECRET must be set together");
        }
        let dev_tokens = match env("WARD_DEV_TOKENS") {
            Some(v) => parse_bool(&v).context("WARD_DEV_TOKENS must be true or false")?,
            None => file_cfg.dev_tokens.unwrap_or(false),
        };
        let log_format = match env("WARD_LOG_FORMAT").as_deref() {
            Some("json") => LogFormat::Json,
            Some("text") => LogFormat::Text,
            Some(other) => bail!("WARD_LOG_FORMAT {other:?} must be text or json"),
            None => file_cfg.log_format.unwrap_or(LogFormat::Text),
        };
        let mut limits = file_cfg.limits.unwrap_or_default();
        if let Some(v) = env("WARD_MAX_CONNECTIONS_PER_USER") {
            limits.max_connections_per_user = v
                .parse()
                .context("WARD_MAX_CONNECTIONS_PER_USER must be a number")?;
        }
        if let Some(v) = env("WARD_WS_QUEUE_LEN") {
            limits.ws_queue_len = v.parse().context("WARD_WS_QUEUE_LEN must be a number")?;
        }
        if limits.ws_queue_len == 0 || limits.max_connections_per_user == 0 {
            bail!("limits must be positive");
        }
        let redis_url = env("WARD_REDIS_URL")
            .or(file_cfg.redis_url)
            .filter(|u| !u.is_empty());
        if let Some(url) = &redis_url
            && !(url.starts_with("redis://") || url.starts_with("rediss://"))
        {
            bail!("WARD_REDIS_URL must start with redis:// or rediss://");
        }
        let redis_channel = env("WARD_REDIS_CHANNEL")
            .or(file_cfg.redis_channel)
            .unwrap_or_else(|| "ward:bus".into());
        let node_id = env("WARD_NODE_ID").or(file_cfg.node_id).unwrap_or_else(|| {
            let host = std::fs::read_to_string("/etc/hostname").unwrap_or_default();
            let short = uuid::Uuid::new_v4().simple().to_string();
            format!("{}-{}", host.trim(), &short[..8])
                .trim_start_matches('-')
                .to_string()
        });
        let mut plan = file_cfg.plan.unwrap_or_default();
        if let Some(v) = env("WARD_PLAN_MAU") {
            plan.mau = Some(v.parse().context("WARD_PLAN_MAU must be a number")?);
        }
        if let Some(v) = env("WARD_PLAN_PCC") {
            plan.pcc = Some(v.parse().context("WARD_PLAN_PCC must be a number")?);
        }
        let tls = match (env("WARD_TLS_CERT"), env("WARD_TLS_KEY")) {
            (Some(cert), Some(key)) => Some(TlsConfig {
                cert: PathBuf::from(cert),
                key: PathBuf::from(key),
            }),
            (None, None) => None,
            _ => bail!("WARD_TLS_CERT and WARD_TLS_KEY must be set together"),
        };
        let scheme = if tls.is_some() { "https" } else { "http" };
        let public_url = env("WARD_PUBLIC_URL")
            .unwrap_or_else(|| format!("{scheme}://{bind}"))
            .trim_end_matches('/')
            .to_string();
        if !(public_url.starts_with("http://") || public_url.starts_with("https://")) {
            bail!("WARD_PUBLIC_URL must start with http:// or https://");
        }
        let secs = |name: &str, default: i64| -> anyhow::Result<i64> {
            match env(name) {
                Some(v) => {
                    let n: i64 = v
                        .parse()
                        .with_context(|| format!("{name} must be a number of seconds"))?;
                    anyhow::ensure!(n > 0, "{name} must be positive");
                    Ok(n)
                }
                None => Ok(default),
            }
        };
        let sessions = SessionConfig {
            idle_secs: secs("WARD_SESSION_IDLE_SECS", 1800)?,
            absolute_secs: secs("WARD_SESSION_MAX_SECS", 43200)?,
            chat_token_secs: secs("WARD_CHAT_TOKEN_SECS", 3600)?,
            secure_cookies: match env("WARD_COOKIE_SECURE") {
                Some(v) => parse_bool(&v).context("WARD_COOKIE_SECURE must be true or false")?,
                None => public_url.starts_with("https://"),
            },
        };
        let checkpoint_dir = match env("WARD_AUDIT_CHECKPOINT_DIR").as_deref() {
            Some("off") => None,
            Some(dir) => Some(PathBuf::from(dir)),
            None => Some(data_dir.join("audit-checkpoints")),
        };
        let rate_limits = rate_limits::from_env(&env)?;
        let metrics_bind = match env("WARD_METRICS_BIND").as_deref().map(str::trim) {
            None | Some("" | "off") => None,
            Some(text) => Some(text.parse().with_context(|| {
                format!(
                    "WARD_METRICS_BIND: {text:?} is not an address like 127.0.0.1:9464 (or off)"
                )
            })?),
        };
        let uploads = uploads::from_env(&env)?;
        let url_enrichment = UrlEnrichment {
            enabled: match env("WARD_URL_ENRICHMENT") {
                Some(v) => parse_bool(&v).context("WARD_URL_ENRICHMENT must be true or false")?,
                None => false,
            },
            allow_loopback: match env("WARD_URL_ENRICHMENT_ALLOW_LOOPBACK") {
                Some(v) => parse_bool(&v)
                    .context("WARD_URL_ENRICHMENT_ALLOW_LOOPBACK must be true or false")?,
                None => false,
            },
        };
        // guests and anonymous users (issue 16)
        let guest_users = match env("WARD_GUEST_USERS") {
            Some(v) => parse_bool(&v).context("WARD_GUEST_USERS must be true or false")?,
            None => file_cfg.guest_users.unwrap_or(false),
        };
        let anonymous_users = match env("WARD_ANONYMOUS_USERS") {
            Some(v) => parse_bool(&v).context("WARD_ANONYMOUS_USERS must be true or false")?,
            None => file_cfg.anonymous_users.unwrap_or(false),
        };
        Ok(Self {
            uploads,
            url_enrichment,
            guest_users,
            anonymous_users,
            metrics_bind,
            bind,
            data_dir,
            database_url,
            api_key,
            api_secret,
            dev_tokens,
            log_format,
            limits,
            redis_url,
            redis_channel,
            node_id,
            plan,
            policy_dir: env("WARD_POLICY_DIR")
                .map(PathBuf::from)
                .or(file_cfg.policy_dir),
            key_provider: match env("WARD_KEY_PROVIDER").as_deref() {
                None | Some("local") => KeyProvider::Local,
                Some("aws-kms") => KeyProvider::AwsKms(KmsConfig {
                    key_id: env("WARD_KMS_KEY_ID")
                        .context("WARD_KEY_PROVIDER=aws-kms needs WARD_KMS_KEY_ID")?,
                    region: env("WARD_KMS_REGION")
                        .or_else(|| env("AWS_REGION"))
                        .unwrap_or_else(|| "us-east-1".into()),
                    endpoint: env("WARD_KMS_ENDPOINT"),
                    credentials: kms_credentials(&env)?,
                }),
                Some(other) => bail!("WARD_KEY_PROVIDER {other:?} must be local or aws-kms"),
            },
            encryption: match env("WARD_ENCRYPTION") {
                Some(v) => parse_bool(&v).context("WARD_ENCRYPTION must be true or false")?,
                None => file_cfg.encryption.unwrap_or(true),
            },
            audit: AuditConfig {
                origin: env("WARD_AUDIT_ORIGIN").filter(|o| !o.is_empty()),
                checkpoint_dir,
                s3: match env("WARD_AUDIT_S3_BUCKET").filter(|b| !b.is_empty()) {
                    None => None,
                    Some(bucket) => Some(AuditS3Config {
                        bucket,
                        prefix: env("WARD_AUDIT_S3_PREFIX").unwrap_or_else(|| "ward-audit/".into()),
                        region: env("WARD_AUDIT_S3_REGION")
                            .or_else(|| env("AWS_REGION"))
                            .unwrap_or_else(|| "us-east-1".into()),
                        endpoint: env("WARD_AUDIT_S3_ENDPOINT"),
                        retain_days: env("WARD_AUDIT_S3_RETAIN_DAYS")
                            .map(|v| {
                                v.parse()
                                    .context("WARD_AUDIT_S3_RETAIN_DAYS must be a number of days")
                            })
                            .transpose()?,
                        credentials: kms_credentials(&env)?,
                    }),
                },
            },
            public_url,
            sessions,
            tls,
            rate_limits,
        })
    }

    pub fn is_postgres(&self) -> bool {
        self.database_url.starts_with("postgres")
    }
}

fn parse_bool(v: &str) -> anyhow::Result<bool> {
    match v {
        "1" | "true" | "yes" => Ok(true),
        "0" | "false" | "no" => Ok(false),
        _ => bail!("not a boolean"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn env(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let map: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        move |k| map.get(k).cloned()
    }

    #[test]
    fn defaults_bind_loopback_8080_and_sqlite_in_data_dir() {
        let cfg = Config::from_sources(None, env(&[])).unwrap();
        assert_eq!(cfg.bind.to_string(), "127.0.0.1:8080");
        assert_eq!(cfg.database_url, "sqlite://./data/ward.db");
        assert!(!cfg.dev_tokens);
    }

    #[test]
    fn environment_overrides_the_file() {
        let dir = std::env::temp_dir().join(format!("ward-cfg-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("ward.toml");
        std::fs::write(&path, "bind = \"127.0.0.1:9000\"\ndev_tokens = true\n").unwrap();
        let cfg =
            Config::from_sources(Some(&path), env(&[("WARD_BIND", "127.0.0.1:9001")])).unwrap();
        assert_eq!(cfg.bind.port(), 9001);
        assert!(cfg.dev_tokens);
    }

    #[test]
    fn kms_credentials_come_from_keys_or_the_task_role() {
        let base = [("WARD_KEY_PROVIDER", "aws-kms"), ("WARD_KMS_KEY_ID", "k")];
        assert!(
            Config::from_sources(None, env(&base)).is_err(),
            "no credentials at all"
        );
        let with_keys = [
            base[0],
            base[1],
            ("AWS_ACCESS_KEY_ID", "a"),
            ("AWS_SECRET_ACCESS_KEY", "s"),
        ];
        match Config::from_sources(None, env(&with_keys))
            .unwrap()
            .key_provider
        {
            KeyProvider::AwsKms(k) => {
                assert!(matches!(k.credentials, KmsCredentials::Static { .. }))
            }
            KeyProvider::Local => panic!("aws-kms expected"),
        }
        let task_role = [
            base[0],
            base[1],
            (
                "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
                "/v2/credentials/x",
            ),
        ];
        match Config::from_sources(None, env(&task_role))
            .unwrap()
            .key_provider
        {
            KeyProvider::AwsKms(k) => match k.credentials {
                KmsCredentials::Container { url, .. } => {
                    assert_eq!(url, "http://169.254.170.2/v2/credentials/x")
                }
                KmsCredentials::Static { .. } => panic!("container credentials expected"),
            },
            KeyProvider::Local => panic!("aws-kms expected"),
        }
    }

    #[test]
    fn a_malformed_file_names_the_file_line_and_key() {
        let dir = std::env::temp_dir().join(format!("ward-cfg-{}", uuid::Uuid::new_v4().simple()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("ward.toml");
        for (text, line, key, what) in [
            (
                "bind = \"127.0.0.1:8081\"\nbnid = 1\n",
                2,
                "bnid",
                "unknown field",
            ),
            (
                "data_dir = \"x\"\nencryption = \"yes\"\n",
                2,
                "encryption",
                "bool",
            ),
        ] {
            std::fs::write(&path, text).unwrap();
            let err = Config::from_sources(Some(&path), env(&[])).err().unwrap();
            let shown = crate::startup::render(&err);
            assert!(!shown.contains('\n'), "{shown}");
            assert!(shown.contains(&format!("line {line}")), "{shown}");
            assert!(shown.contains(&format!("key `{key}`")), "{shown}");
            assert!(shown.contains(what), "{shown}");
            assert!(shown.contains("ward.toml"), "{shown}");
        }
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn rate_limits_and_trusted_proxies_come_from_the_environment() {
        let cfg = Config::from_sources(
            None,
            env(&[
                ("WARD_RATE_LIMIT_LOGIN_PER_IP", "5"),
                ("WARD_RATE_LIMIT_WRITES_PER_USER", "0"),
                ("WARD_TRUSTED_PROXIES", "10.0.0.0/8, ::1"),
            ]),
        )
        .unwrap();
        assert_eq!(cfg.rate_limits.login_per_ip, 5);
        assert_eq!(cfg.rate_limits.writes_per_user, 0);
        assert_eq!(cfg.rate_limits.login_per_account, 10, "default");
        assert_eq!(cfg.rate_limits.trusted_proxies.len(), 2);
        assert!(
            Config::from_sources(None, env(&[("WARD_TRUSTED_PROXIES", "10.0.0.0/40")])).is_err()
        );
        assert!(
            Config::from_sources(None, env(&[("WARD_RATE_LIMIT_LOGIN_PER_IP", "many")])).is_err()
        );
    }

    #[test]
    fn port_3030_and_half_credentials_are_refused() {
        assert!(Config::from_sources(None, env(&[("WARD_BIND", "127.0.0.1:3030")])).is_err());
        assert!(Config::from_sources(None, env(&[("WARD_API_KEY", "k")])).is_err());
    }
}
