//! Serving the state: bind the listeners (port 0 in tests), then serve until a shutdown
//! signal, closing WebSockets with a close frame and finishing in-flight requests.

use std::net::SocketAddr;

use tokio::net::TcpListener;

use super::{AppState, Parts};
use crate::config::Config;
use crate::startup::StartupError;

/// The state with its listeners bound: what `ward serve` and the tests run.
pub struct Application {
    listener: TcpListener,
    /// `GET /metrics`, apart from the API (`WARD_METRICS_BIND`); `None` when off.
    metrics_listener: Option<TcpListener>,
    tls: Option<tokio_rustls::TlsAcceptor>,
    state: AppState,
}

impl Application {
    /// Builds the state ([`AppState::build`]), then binds the API listener (and the metrics
    /// one, when configured) and loads the TLS certificate.
    pub async fn build(config: Config) -> anyhow::Result<Self> {
        let parts = Parts::open(&config).await?;
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
        Ok(Self {
            listener,
            metrics_listener,
            tls,
            state: AppState::assemble(config, parts),
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
        let sampler_state = self.state.clone();
        let sampler = tokio::spawn(async move {
            let bus = sampler_state.bus.clone();
            sampler_state
                .usage
                .run_sampler(move || bus.connection_count())
                .await;
        });
        let workers = crate::jobs::Workers::spawn(&self.state, crate::jobs::DEFAULT_WORKERS);
        let retention = crate::gdpr::retention::schedule(self.state.clone());
        let sweep = crate::auth::lifecycle::spawn_sweep(self.state.clone());
        let limits_sweep = crate::ratelimit::spawn_sweep(self.state.clone());
        let reminder_sweep = super::tier2::spawn_reminder_sweep(self.state.clone());
        let metrics = self
            .metrics_listener
            .map(|l| serve_metrics(l, self.state.clone()));
        // The peer address reaches the rate limits as `ConnectInfo<Peer>`.
        let router = router.into_make_service_with_connect_info::<crate::ratelimit::Peer>();
        let stopping = self.state.clone();
        let stop = async move {
            signal.await;
            tracing::info!("shutting down: closing WebSockets, finishing requests");
            stopping.begin_shutdown();
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
            self.state.bus.wait_idle(),
        )
        .await;
        sampler.abort();
        sweep.abort();
        limits_sweep.abort();
        reminder_sweep.abort();
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
