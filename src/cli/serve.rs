//! `ward serve` and `ward worker`: the long-running commands, until SIGINT or SIGTERM.

use anyhow::Context;

use crate::app::{AppState, Application};
use crate::config::Config;

/// `ward serve`: migrates, binds, and serves (job workers included).
pub async fn serve(config: Config) -> anyhow::Result<()> {
    // One process serves an SQLite file; `ward restore` waits for this lock too.
    let _lock = if config.is_postgres() {
        None
    } else {
        Some(crate::ops::backup::DataDirLock::acquire(&config.data_dir)?)
    };
    let app = Application::build(config).await?;
    let state = app.state();
    if let Some(reminder) = crate::ops::keys::escrow_reminder(
        &state.config,
        &state.store,
        crate::app::open_root(&state.config)?.as_ref(),
    )
    .await?
    {
        tracing::warn!("{reminder}");
    }
    let shutdown = shutdown_signal()?;
    // Tests and tools read this line to find the port when binding to port 0.
    // Before the listening line: a reader that waits for that line has seen this one.
    if let Some(addr) = app.metrics_addr() {
        println!("ward: metrics on http://{addr}/metrics");
    }
    println!("ward: listening on http://{}", app.local_addr());
    tracing::info!(addr = %app.local_addr(), "ward is ready");
    app.run_until(shutdown).await
}

/// `ward worker`: job workers without serving HTTP (no port bound).
pub async fn worker(config: Config, concurrency: usize) -> anyhow::Result<()> {
    if !config.is_postgres() {
        // One process owns an SQLite file (the audit appender assumes it).
        tracing::warn!("ward worker on SQLite: stop ward serve first; it runs workers itself");
    }
    // The full application state (keys, audit log), without serving.
    let state = AppState::build(config).await?;
    let shutdown = shutdown_signal()?;
    let workers = crate::jobs::Workers::spawn(&state, concurrency.max(1));
    println!("ward: {} job workers running", concurrency.max(1));
    shutdown.await;
    tracing::info!("shutting down: letting running jobs finish or handing them back");
    workers.stop().await;
    state.audit.flush().await?;
    Ok(())
}

/// Registers the SIGINT and SIGTERM handlers now, before the caller says it is running (a
/// signal sent as soon as it says so would otherwise kill the process with the default
/// action), and returns what completes on the first of them.
fn shutdown_signal() -> anyhow::Result<impl Future<Output = ()>> {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let mut interrupt = signal(SignalKind::interrupt()).context("handling SIGINT")?;
        let mut terminate = signal(SignalKind::terminate()).context("handling SIGTERM")?;
        Ok(async move {
            tokio::select! {
                _ = interrupt.recv() => {},
                _ = terminate.recv() => {},
            }
        })
    }
    #[cfg(not(unix))]
    Ok(async {
        let _ = tokio::signal::ctrl_c().await;
    })
}
