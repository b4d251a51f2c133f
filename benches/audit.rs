//! Audit log append throughput (`cargo bench --bench audit`), on SQLite and PostgreSQL:
//!
//! - **direct**: `--conc` tasks (default 512) each record entries through `AuditLog::record`,
//!   waiting for each to be durable, as a read or a connection does; the one appender
//!   chains whatever has queued while the previous batch committed (group commit).
//! - **outbox**: `--backlog` records (default 100,000) committed to the outbox first, as
//!   audited writes leave them, then drained and chained by the appender.
//!
//! Every run ends by exporting the whole log and verifying it offline, so the figures are of
//! a log that verifies. Options: `--db sqlite,postgres` `--records 200000` `--conc 512`
//! `--backlog 100000` `--pg-url postgres://postgres@127.0.0.1:5432`.

// A benchmark or test reports a failure by panicking: unwrapping is how it fails.
#![allow(clippy::unwrap_used)]

#[path = "common/options.rs"]
mod common;

use std::sync::Arc;
use std::time::Instant;

use ward::audit::appender::{AppenderConfig, start};
use ward::audit::{AuditEvent, EventType};
use ward::crypto::root::LocalRootKey;
use ward::store::Store;

/// Audit log throughput: direct appends, an outbox backlog drained, offline verification.
#[derive(clap::Parser)]
struct Options {
    #[command(flatten)]
    db: common::Databases,
    /// Direct records appended.
    #[arg(long, default_value_t = 200_000)]
    records: usize,
    /// Direct appends in flight.
    #[arg(long, default_value_t = 512)]
    conc: usize,
    /// Records left in the outbox for the appender to drain.
    #[arg(long, default_value_t = 100_000)]
    backlog: usize,
}

fn event(i: usize) -> AuditEvent {
    AuditEvent::new(EventType::MessageRead)
        .actor(format!("user-{}", i % 1000))
        .object("channel", format!("messaging:room-{}", i % 100))
        .meta("channel_type", "messaging")
        .meta("count", 20)
        .meta("via", "client:query")
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let o = <Options as clap::Parser>::parse();
    for db in &o.db.dbs {
        let name = format!("ward_bench_audit_{}", uuid::Uuid::new_v4().simple());
        let dir = std::env::temp_dir().join(&name);
        std::fs::create_dir_all(&dir)?;
        let url = match db.as_str() {
            "sqlite" => format!("sqlite://{}", dir.join("ward.db").display()),
            "postgres" => format!("{}/{name}", o.db.pg_url),
            other => anyhow::bail!("--db takes sqlite and/or postgres, not {other}"),
        };
        let store = Store::connect(&url).await?;
        let root = Arc::new(LocalRootKey::open_or_create(&dir)?);
        let log = start(
            store.clone(),
            None,
            root,
            AppenderConfig {
                origin: None,
                sink: None,
            },
        )
        .await?;

        // Direct records, `conc` in flight.
        let started = Instant::now();
        let per_task = o.records / o.conc;
        let mut tasks = Vec::new();
        for t in 0..o.conc {
            let log = log.clone();
            tasks.push(tokio::spawn(async move {
                let mut worst = 0f64;
                for i in 0..per_task {
                    let one = Instant::now();
                    log.record(event(t * per_task + i)).await?;
                    worst = worst.max(one.elapsed().as_secs_f64());
                }
                anyhow::Ok(worst)
            }));
        }
        let mut worst = 0f64;
        for t in tasks {
            worst = worst.max(t.await??);
        }
        let secs = started.elapsed().as_secs_f64();
        let n = per_task * o.conc;
        println!(
            "RESULT {db} direct: {n} records, {} in flight: {:.0} appends/s (slowest append {:.1} ms)",
            o.conc,
            n as f64 / secs,
            worst * 1000.0
        );

        // An outbox backlog, drained by the appender.
        let events: Vec<_> = (0..o.backlog).map(event).collect();
        log.audited(events, async |rows| {
            for chunk in rows.chunks(5000) {
                store.audit.insert_outbox(chunk).await?;
            }
            anyhow::Ok(())
        })
        .await?;
        let started = Instant::now();
        let size = log.sync().await?;
        let secs = started.elapsed().as_secs_f64();
        println!(
            "RESULT {db} outbox: {} records drained and chained: {:.0} appends/s (tree size {size})",
            o.backlog,
            o.backlog as f64 / secs
        );

        // The whole log verifies offline.
        let started = Instant::now();
        let bundle =
            ward::audit::tree::export_bundle(store.audit.as_ref(), &log.origin, 0, size, None)
                .await?;
        let export = started.elapsed().as_secs_f64();
        let verifier = ward_audit::note::Verifier::parse(&log.verifier_key)?;
        let started = Instant::now();
        let report = ward_audit::bundle::verify(&bundle, &verifier, None)?;
        let verify = started.elapsed().as_secs_f64();
        println!(
            "RESULT {db} verify: {} entries exported in {export:.2} s, verified in {verify:.3} s ({:.0} entries/s)",
            report.count,
            report.count as f64 / verify
        );
        let _ = std::fs::remove_dir_all(&dir);
    }
    Ok(())
}
