//! Building and running the application: open the store (migrating it), settle the app
//! credentials, bind the listener (port 0 in tests), and serve until a shutdown signal.

mod chat;

use std::net::SocketAddr;
use std::ops::Deref;
use std::sync::Arc;

use anyhow::Context;
use rand::RngCore;
use secrecy::{ExposeSecret, SecretString};
use tokio::net::TcpListener;
use tokio::sync::watch;

use crate::audit::{AuditEvent, AuditLog, AuditSink};
use crate::authz::Authz;
use crate::bus::Bus;
use crate::bus::redis::RedisBus;
use crate::config::{Config, KeyProvider};
use crate::crypto::fields::FieldCrypto;
use crate::crypto::keyring::Keyring;
use crate::crypto::root::LocalRootKey;
use crate::metrics::Metrics;
use crate::startup::StartupError;
use crate::store::Store;
use crate::usage::Meter;
use crate::ws::hub::Hub;

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
    pub hub: Arc<Hub>,
    pub bus: Bus,
    pub credentials: Credentials,
    /// Flips to true once shutdown starts; WebSocket sessions close with a close frame.
    pub shutdown: watch::Receiver<bool>,
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
}

impl Deref for AppState {
    type Target = Inner;
    fn deref(&self) -> &Inner {
        &self.0
    }
}

pub struct Application {
    listener: TcpListener,
    /// `GET /metrics`, apart from the API (`WARD_METRICS_BIND`); `None` when off.
    metrics_listener: Option<TcpListener>,
    tls: Option<tokio_rustls::TlsAcceptor>,
    state: AppState,
    shutdown_tx: watch::Sender<bool>,
}

impl Application {
    pub async fn build(config: Config) -> anyhow::Result<Self> {
        if !config.is_postgres() {
            private_data_dir(&config)?;
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
        let root = open_root(&config)?;
        crate::crypto::root::check_against_database(&store, root.as_ref()).await?;
        // The keyring records key operations, and the log seals personal data with the
        // keyring: the keyring's sink forwards to the log once it runs.
        let late = Arc::new(LateSink::default());
        let (store, crypto) = open_crypto(&config, store, late.clone(), root.clone())?;
        let audit = crate::audit::appender::start(
            store.clone(),
            crypto.clone(),
            root.clone(),
            crate::audit::appender::AppenderConfig {
                origin: config.audit.origin.clone(),
                sink: checkpoint_sink(&config)?,
            },
        )
        .await
        .context("opening the audit log")?;
        late.attach(audit.clone());
        let credentials = settle_credentials(&config, &store, root.as_ref(), &audit).await?;
        let listener = TcpListener::bind(config.bind)
            .await
            .map_err(|e| StartupError::bind(config.bind, &e))?;
        let metrics_listener = match config.metrics_bind {
            Some(addr) => Some(
                TcpListener::bind(addr)
                    .await
                    .map_err(|e| StartupError::bind(addr, &e))?,
            ),
            None => None,
        };
        let mut config = config;
        // Bound to port 0 (tests, tools) without WARD_PUBLIC_URL: use the real port.
        let scheme = if config.tls.is_some() {
            "https"
        } else {
            "http"
        };
        if config.public_url == format!("{scheme}://{}", config.bind) && config.bind.port() == 0 {
            config.public_url = format!("{scheme}://{}", listener.local_addr()?);
        }
        // Load the certificate now, so a bad one stops the start, not the first client.
        let tls = match &config.tls {
            Some(t) => Some(crate::tls::acceptor(&t.cert, &t.key)?),
            None => None,
        };
        let authz = Arc::new(match &config.policy_dir {
            Some(dir) => Authz::from_dir(dir, late.clone()).with_context(|| {
                format!("loading the authorization policies from {}", dir.display())
            })?,
            None => Authz::embedded(late.clone())
                .context("loading the built-in authorization policies")?,
        });
        let hub = Arc::new(Hub::new(config.limits.ws_queue_len));
        // Every event naming a channel passes the read decision on the node that delivers it.
        hub.set_gate(Arc::new(crate::ws::gate::Gate::new(
            store.users.clone(),
            store.channels.clone(),
            authz.clone(),
        )));
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
        let (shutdown_tx, shutdown) = watch::channel(false);
        let rate_limits = crate::ratelimit::RateLimits::new(&config.rate_limits);
        let state = AppState(Arc::new(Inner {
            rate_limits,
            bus: Bus::new(hub.clone(), cluster),
            hub,
            store,
            credentials,
            config,
            shutdown,
            metrics,
            usage,
            authz,
            audit,
            crypto,
            jobs: {
                let jobs = Arc::new(crate::jobs::Jobs::default());
                crate::gdpr::register_jobs(&jobs);
                crate::auth::lifecycle::register_jobs(&jobs);
                jobs
            },
        }));
        Ok(Self {
            listener,
            metrics_listener,
            tls,
            state,
            shutdown_tx,
        })
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.listener
            .local_addr()
            .expect("a bound listener has an address")
    }

    /// Where `GET /metrics` is served, when it is.
    pub fn metrics_addr(&self) -> Option<SocketAddr> {
        self.metrics_listener
            .as_ref()
            .and_then(|l| l.local_addr().ok())
    }

    pub fn state(&self) -> AppState {
        self.state.clone()
    }

    /// Serves until `signal` resolves, then closes WebSockets with a close frame and
    /// finishes in-flight requests.
    pub async fn run_until(
        self,
        signal: impl Future<Output = ()> + Send + 'static,
    ) -> anyhow::Result<()> {
        let router = crate::http::router(self.state.clone());
        let shutdown_tx = self.shutdown_tx;
        let sampler_state = self.state.clone();
        let sampler = tokio::spawn(async move {
            let hub = sampler_state.hub.clone();
            sampler_state
                .usage
                .run_sampler(move || hub.connection_count())
                .await;
        });
        let workers = crate::jobs::Workers::spawn(&self.state, crate::jobs::DEFAULT_WORKERS);
        let retention = crate::gdpr::retention::schedule(self.state.clone());
        let sweep = crate::auth::lifecycle::spawn_sweep(self.state.clone());
        let limits_sweep = crate::ratelimit::spawn_sweep(self.state.clone());
        let metrics = self
            .metrics_listener
            .map(|l| serve_metrics(l, self.state.clone()));
        // The peer address reaches the rate limits as `ConnectInfo<Peer>`.
        let router = router.into_make_service_with_connect_info::<crate::ratelimit::Peer>();
        let stop = async move {
            signal.await;
            tracing::info!("shutting down: closing WebSockets, finishing requests");
            let _ = shutdown_tx.send(true);
        };
        match self.tls {
            Some(acceptor) => {
                let listener = crate::tls::TlsListener::new(self.listener, acceptor);
                axum::serve(listener, router)
                    .with_graceful_shutdown(stop)
                    .await?;
            }
            None => {
                // Events are small frames: sent at once (no Nagle delay behind the REST
                // reply); the listener also records each connection's peer address.
                let listener = crate::ratelimit::PlainListener(self.listener);
                axum::serve(listener, router)
                    .with_graceful_shutdown(stop)
                    .await?;
            }
        }
        // WebSocket sessions run outside the HTTP connections graceful shutdown waits for:
        // let them send their 1001 close frames (each send is bounded to 1 s) first.
        let _ = tokio::time::timeout(
            std::time::Duration::from_secs(3),
            self.state.hub.wait_idle(),
        )
        .await;
        sampler.abort();
        sweep.abort();
        limits_sweep.abort();
        if let Some(m) = metrics {
            m.abort();
        }
        if let Some(r) = retention {
            r.abort();
        }
        // Before the audit flush: a job finishing in the grace period may record entries.
        workers.stop().await;
        if let Err(e) = self.state.audit.flush().await {
            tracing::error!(error = %e, "could not chain and publish the last audit records");
        }
        if let Err(e) = self.state.usage.flush().await {
            tracing::warn!(error = %e, "could not record the last connection peak");
        }
        Ok(())
    }
}

/// Serves `GET /metrics` on its own listener until the shutdown flag flips.
fn serve_metrics(listener: TcpListener, state: AppState) -> tokio::task::JoinHandle<()> {
    let mut shutdown = state.shutdown.clone();
    let router = crate::http::metrics::router(state);
    tokio::spawn(async move {
        let stop = async move {
            let _ = shutdown.wait_for(|s| *s).await;
        };
        if let Err(e) = axum::serve(listener, router)
            .with_graceful_shutdown(stop)
            .await
        {
            tracing::error!(error = %e, "the metrics listener stopped");
        }
    })
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
    Ok((store.encrypted(crypto.clone()), Some(crypto)))
}

/// Forwards records to the audit log once it is attached; records made before (none are
/// expected: the keyring works lazily) wait in memory and are handed over on attach.
#[derive(Default)]
pub struct LateSink {
    log: std::sync::OnceLock<Arc<AuditLog>>,
    early: std::sync::Mutex<Vec<AuditEvent>>,
}

impl LateSink {
    pub fn attach(&self, log: Arc<AuditLog>) {
        let _ = self.log.set(log.clone());
        for e in std::mem::take(&mut *self.early.lock().unwrap_or_else(|e| e.into_inner())) {
            log.record_detached(e);
        }
    }
}

impl AuditSink for LateSink {
    fn record(&self, event: AuditEvent) {
        match self.log.get() {
            Some(log) => AuditSink::record(log.as_ref(), event),
            None => self
                .early
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .push(event),
        }
    }
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
