//! Building the application state from the configuration: open the store (migrating it),
//! the root key, field encryption and the audit log, settle the app credentials, and start
//! the bus. [`AppState::build`] binds no port (`ward worker`, `ward admin`, `ward gdpr` run
//! on it); [`Application`] adds the listeners and serves until a shutdown signal.

mod server;

mod jobs;

mod auth;
mod chat;
mod gdpr;
mod uploads;
// Issue 16 item 8 (tier 2): the reminder sweep.
mod tier2;

use std::ops::Deref;
use std::sync::Arc;

use anyhow::Context;
use rand::RngCore;
use secrecy::{ExposeSecret, SecretString};
use tokio::sync::watch;

use crate::audit::AuditLog;
use crate::authz::Authz;
use crate::bus::Bus;
use crate::bus::local::Hub;
use crate::bus::redis::RedisBus;
use crate::config::{Config, KeyProvider};
use crate::crypto::fields::FieldCrypto;
use crate::crypto::keyring::Keyring;
use crate::crypto::root::LocalRootKey;
use crate::metrics::Metrics;
use crate::startup::StartupError;
use crate::store::Store;
use crate::usage::Meter;
pub use server::Application;

/// The app credentials SDKs use: a public key and the HS256 signing secret.
pub struct Credentials {
    pub api_key: String,
    secret: SecretString,
}

impl Credentials {
    pub fn new(api_key: String, secret: SecretString) -> Self {
        Self { api_key, secret }
    }

    pub fn secret_bytes(&self) -> &[u8] {
        self.secret.expose_secret().as_bytes()
    }
}

/// Shared state: one cheap-to-clone handle.
#[derive(Clone)]
pub struct AppState(Arc<Inner>);

pub struct Inner {
    pub config: Config,
    pub store: Store,
    /// Event fan-out and connection state (this node's hub, and the other nodes').
    pub bus: Bus,
    pub credentials: Credentials,
    /// Flips to true once shutdown starts; WebSocket sessions close with a close frame.
    pub shutdown: watch::Receiver<bool>,
    /// What flips [`Inner::shutdown`] ([`AppState::begin_shutdown`]).
    shutdown_tx: watch::Sender<bool>,
    pub metrics: Arc<Metrics>,
    pub usage: Arc<Meter>,
    pub authz: Arc<Authz>,
    /// The verifiable audit log.
    pub audit: Arc<AuditLog>,
    /// Field encryption (keys and blind index); `None` when switched off.
    pub crypto: Option<Arc<FieldCrypto>>,
    /// The job kinds this process runs, and how its workers run them.
    pub jobs: Arc<crate::jobs::Jobs>,
    /// This node's rate limiters (per node: a client spread over n nodes gets n times the
    /// limit, which still bounds guessing).
    pub rate_limits: crate::ratelimit::RateLimits,
    /// Where uploaded files are kept, sealed (`None` when field encryption is off).
    pub blobs: Option<crate::crypto::blobs::SealedBlobs>,
}

impl Deref for AppState {
    type Target = Inner;
    fn deref(&self) -> &Inner {
        &self.0
    }
}

/// What the state holds besides its configuration, opened from it.
struct Parts {
    store: Store,
    bus: Bus,
    credentials: Credentials,
    metrics: Arc<Metrics>,
    usage: Arc<Meter>,
    authz: Arc<Authz>,
    audit: Arc<AuditLog>,
    crypto: Option<Arc<FieldCrypto>>,
    blobs: Option<crate::crypto::blobs::SealedBlobs>,
}

impl AppState {
    /// The whole state from the configuration (database, root key, field encryption, audit
    /// log, credentials, policies, bus, jobs), without binding a port.
    pub async fn build(config: Config) -> anyhow::Result<Self> {
        let parts = Parts::open(&config).await?;
        Ok(Self::assemble(config, parts))
    }

    fn assemble(config: Config, parts: Parts) -> Self {
        let (shutdown_tx, shutdown) = watch::channel(false);
        let rate_limits = crate::ratelimit::RateLimits::new(&config.rate_limits);
        Self(Arc::new(Inner {
            rate_limits,
            bus: parts.bus,
            store: parts.store,
            credentials: parts.credentials,
            config,
            shutdown,
            shutdown_tx,
            metrics: parts.metrics,
            usage: parts.usage,
            authz: parts.authz,
            audit: parts.audit,
            crypto: parts.crypto,
            blobs: parts.blobs,
            jobs: {
                let jobs = Arc::new(crate::jobs::Jobs::default());
                crate::gdpr::register_jobs::<Self>(
                    &jobs,
                    crate::http::error::answer::<crate::gdpr::Error>,
                );
                crate::auth::lifecycle::register_jobs::<Self>(
                    &jobs,
                    crate::http::error::answer::<crate::auth::Error>,
                );
                jobs
            },
        }))
    }

    /// Starts the shutdown: [`Inner::shutdown`] flips to true (WebSocket sessions close,
    /// sweeps stop, `/healthz` answers 503).
    pub fn begin_shutdown(&self) {
        let _ = self.shutdown_tx.send(true);
    }
}

impl Parts {
    async fn open(config: &Config) -> anyhow::Result<Self> {
        if !config.is_postgres() {
            private_data_dir(config)?;
            // An in-memory database has no file to protect.
            if let Ok(db) = crate::ops::backup::sqlite_path(&config.database_url) {
                crate::fsx::private_sqlite_file(&db)
                    .with_context(|| format!("creating the database file {}", db.display()))?;
            }
        }
        let store = Store::connect(&config.database_url)
            .await
            .map_err(|e| StartupError::database(&config.database_url, &e))?;
        if let KeyProvider::Local = config.key_provider {
            crate::crypto::root::refuse_missing_local_key(&store, &config.data_dir).await?;
        }
        let root = open_root(config)?;
        crate::crypto::root::check_against_database(&store, root.as_ref()).await?;
        // The keyring records key operations, and the log seals personal data with the
        // keyring: the keyring records into the log's queue, which the log drains once it
        // runs.
        let queue = crate::audit::Queue::new();
        let (store, crypto) = open_crypto(config, store, queue.recorder(), root.clone())?;
        let audit = crate::audit::appender::start_with_queue(
            store.clone(),
            crypto.clone(),
            root.clone(),
            crate::audit::appender::AppenderConfig {
                origin: config.audit.origin.clone(),
                sink: checkpoint_sink(config)?,
            },
            queue,
        )
        .await
        .context("opening the audit log")?;
        let credentials = settle_credentials(config, &store, root.as_ref(), &audit).await?;
        let authz = Arc::new(match &config.policy_dir {
            Some(dir) => Authz::from_dir(dir, audit.clone()).with_context(|| {
                format!("loading the authorization policies from {}", dir.display())
            })?,
            None => Authz::embedded(audit.clone())
                .context("loading the built-in authorization policies")?,
        });
        let hub = Arc::new(Hub::new(config.limits.ws_queue_len));
        // Every event naming a channel passes the read decision on the node that delivers it.
        hub.set_gate(Arc::new(crate::bus::gate::Gate::new(Arc::new(
            crate::ws::read_policy::ChannelReadPolicy::new(
                store.users.clone(),
                store.channels.clone(),
                authz.clone(),
            ),
        ))));
        let metrics = Arc::new(Metrics::default());
        let cluster = match &config.redis_url {
            Some(url) => Some(RedisBus::start(
                url,
                &config.redis_channel,
                &config.node_id,
                hub.clone(),
                metrics.clone(),
            )?),
            None => None,
        };
        let usage = Arc::new(Meter::new(store.clone(), config.node_id.clone()));
        if let Some(cluster) = &cluster {
            cluster.attach_caches(crate::bus::Caches {
                keyring: crypto.as_ref().map(|c| c.keyring.clone()),
                audit: Some(audit.clone()),
            });
        }
        let blobs = uploads::open_blobs(config, crypto.as_ref())?;
        Ok(Self {
            blobs,
            store,
            bus: Bus::new(hub, cluster),
            credentials,
            metrics,
            usage,
            authz,
            audit,
            crypto,
        })
    }
}

/// Wraps the store in field encryption (unless switched off), with the local root key in the
/// data dir. Also used by the `ward keys` commands.
pub fn open_crypto(
    config: &Config,
    store: Store,
    audit: Arc<dyn crate::audit::AuditSink>,
    root: Arc<dyn crate::crypto::root::RootKey>,
) -> anyhow::Result<(Store, Option<Arc<FieldCrypto>>)> {
    if !config.encryption {
        tracing::warn!(
            "field encryption is OFF: message text and profiles are stored in plaintext"
        );
        return Ok((store, None));
    }
    let crypto = Arc::new(FieldCrypto::new(Arc::new(Keyring::new(
        store.keys.clone(),
        root,
        audit,
    ))));
    Ok((
        crate::crypto::sealed::seal_store(store, crypto.clone()),
        Some(crypto),
    ))
}

/// Where signed checkpoints are published outside the database: S3 when configured, else
/// a directory (default `<data dir>/audit-checkpoints`), or nowhere when switched off.
pub fn checkpoint_sink(
    config: &Config,
) -> anyhow::Result<Option<Arc<dyn crate::audit::publish::CheckpointSink>>> {
    if let Some(s3) = &config.audit.s3 {
        #[cfg(not(feature = "s3-checkpoints"))]
        {
            let _ = s3;
            anyhow::bail!(
                "this build cannot publish checkpoints to S3 (cargo feature s3-checkpoints)"
            );
        }
        #[cfg(feature = "s3-checkpoints")]
        {
            let sink = crate::audit::publish::S3Sink::new(crate::audit::publish::S3SinkConfig {
                bucket: s3.bucket.clone(),
                prefix: s3.prefix.clone(),
                region: s3.region.clone(),
                endpoint: s3.endpoint.clone(),
                credentials: credential_source(&s3.credentials),
                retain_days: s3.retain_days,
            })?;
            return Ok(Some(Arc::new(sink)));
        }
    }
    match &config.audit.checkpoint_dir {
        Some(dir) => Ok(Some(Arc::new(crate::audit::publish::DirectorySink::new(
            dir.clone(),
        )?))),
        None => {
            tracing::warn!(
                "audit checkpoints are not published outside the database (WARD_AUDIT_CHECKPOINT_DIR=off)"
            );
            Ok(None)
        }
    }
}

#[cfg(any(feature = "aws-kms", feature = "s3-checkpoints"))]
fn credential_source(c: &crate::config::KmsCredentials) -> crate::crypto::aws::CredentialSource {
    use crate::config::KmsCredentials;
    use crate::crypto::aws::{CredentialSource, Credentials};
    match c {
        KmsCredentials::Static {
            access_key_id,
            secret_access_key,
            session_token,
        } => CredentialSource::Static(Credentials {
            access_key_id: access_key_id.clone(),
            secret_access_key: secret_access_key.clone(),
            session_token: session_token.clone(),
        }),
        KmsCredentials::Container { url, token } => CredentialSource::Container {
            url: url.clone(),
            token: token.clone(),
        },
    }
}

/// As [`open_root`], without creating a local root key (for checks that change nothing).
pub fn open_root_existing(
    config: &Config,
) -> anyhow::Result<Arc<dyn crate::crypto::root::RootKey>> {
    if let KeyProvider::Local = config.key_provider {
        let path = config.data_dir.join("root.key");
        if !path.exists() {
            return Err(StartupError::new(
                format!("there is no root key at {}", path.display()),
                "the first ward serve creates it; a further node needs a copy of the first node's root.key (or WARD_KEY_PROVIDER=aws-kms)",
            )
            .into());
        }
    }
    open_root(config)
}

/// The root key: what wraps the KEKs and the audit log's signing key.
pub fn open_root(config: &Config) -> anyhow::Result<Arc<dyn crate::crypto::root::RootKey>> {
    private_data_dir(config)?;
    let root: Arc<dyn crate::crypto::root::RootKey> = match &config.key_provider {
        KeyProvider::Local => Arc::new(LocalRootKey::open_or_create(&config.data_dir)?),
        #[cfg(not(feature = "aws-kms"))]
        KeyProvider::AwsKms(_) => {
            anyhow::bail!("this build has no AWS KMS support (cargo feature aws-kms)")
        }
        #[cfg(feature = "aws-kms")]
        KeyProvider::AwsKms(k) => {
            let credentials = credential_source(&k.credentials);
            let client =
                crate::crypto::kms::KmsClient::new(&k.region, k.endpoint.as_deref(), credentials)?;
            Arc::new(crate::crypto::kms::KmsRootKey::new(client, &k.key_id))
        }
    };
    Ok(root)
}

/// Creates the data dir (or narrows an existing one) to mode 0700: it holds the database,
/// the root key, checkpoints and export archives.
fn private_data_dir(config: &Config) -> anyhow::Result<()> {
    crate::fsx::private_dir(&config.data_dir)
        .with_context(|| format!("creating data dir {}", config.data_dir.display()))
}

/// Uses the configured credentials, or the ones generated on first start, generating and
/// printing them once when there are none. The stored secret is sealed under the root key
/// (one stored in clear by an older version is sealed in place, even when the configured
/// credentials are used).
async fn settle_credentials(
    config: &Config,
    store: &Store,
    root: &dyn crate::crypto::root::RootKey,
    audit: &AuditLog,
) -> anyhow::Result<Credentials> {
    use crate::crypto::setting;
    let stored = setting::find(store, root, audit, "api_secret").await?;
    if let (Some(key), Some(secret)) = (&config.api_key, &config.api_secret) {
        return Ok(Credentials::new(key.clone(), secret.clone()));
    }
    let key = store
        .settings
        .insert_setting_if_absent("api_key", &random_token(10))
        .await?;
    if let Some(secret) = stored {
        return Ok(Credentials::new(key, secret));
    }
    let fresh = SecretString::from(random_token(32));
    let (secret, ours) = setting::insert_if_absent(store, root, audit, "api_secret", fresh).await?;
    if ours {
        // Printed once, on the console of the operator who started the first instance;
        // never logged.
        println!("ward: generated app credentials (shown once; stored sealed in the database)");
        println!("ward:   api key:    {key}");
        println!("ward:   api secret: {}", secret.expose_secret());
    }
    Ok(Credentials::new(key, secret))
}

fn random_token(bytes: usize) -> String {
    let mut buf = vec![0u8; bytes];
    rand::rngs::OsRng.fill_bytes(&mut buf);
    hex::encode(buf)
}
