//! `ward audit`: auditor bundles and the key auditors pin.

use std::path::Path;

use anyhow::Context;

use crate::audit::{AuditEvent, AuditSink, EventType, OutboxSink};
use crate::config::Config;
use crate::store::Store;

/// `ward audit verifier-key`: the log's verifier key, which auditors pin.
pub async fn verifier_key(config: &Config) -> anyhow::Result<()> {
    let store = open(config).await?;
    let root = crate::app::open_root(config)?;
    println!(
        "{}",
        crate::audit::appender::verifier_key(&store, root.as_ref()).await?
    );
    Ok(())
}

/// What `ward audit export` writes: the entries in a time range (RFC 3339 bounds, the whole
/// log without them), with a consistency proof from `since`.
pub struct Export<'a> {
    pub from: Option<String>,
    pub to: Option<String>,
    pub out: &'a Path,
    pub since: Option<u64>,
}

/// `ward audit export`: an auditor bundle that `ward-audit verify` checks offline; the
/// export itself is recorded in the log.
pub async fn export(config: &Config, args: Export<'_>) -> anyhow::Result<()> {
    let store = open(config).await?;
    let time = |name: &str, v: Option<String>, default: i64| -> anyhow::Result<i64> {
        match v {
            None => Ok(default),
            Some(v) => Ok(chrono::DateTime::parse_from_rfc3339(&v)
                .with_context(|| format!("--{name} must be an RFC 3339 time"))?
                .timestamp_millis()),
        }
    };
    let (from_ms, to_ms) = (
        time("from", args.from, i64::MIN)?,
        time("to", args.to, i64::MAX)?,
    );
    let origin = store
        .settings
        .find_setting("audit_origin")
        .await?
        .context("this database has no audit log yet (start the server once)")?;
    let Some((lo, hi)) = store.audit.find_seq_bounds(from_ms, to_ms).await? else {
        anyhow::bail!("no audit entries in that time range");
    };
    let bundle = crate::audit::tree::export_bundle(
        store.audit.as_ref(),
        &origin,
        lo as u64,
        hi as u64 + 1,
        args.since,
    )
    .await?;
    let out = args.out;
    bundle
        .write(out)
        .with_context(|| format!("writing the bundle to {}", out.display()))?;
    let sink = OutboxSink::new(store.clone());
    sink.record(
        AuditEvent::new(EventType::AuditExport)
            .object("audit", origin.clone())
            .meta("first", bundle.first)
            .meta("count", bundle.entries.len())
            .meta("via", "cli"),
    );
    sink.flush().await.context("recording the export")?;
    println!(
        "ward: wrote entries {}..{} to {}; check it with: ward-audit verify {} --key <verifier key>",
        bundle.first,
        bundle.first + bundle.entries.len() as u64,
        out.display(),
        out.display()
    );
    Ok(())
}

async fn open(config: &Config) -> anyhow::Result<Store> {
    Store::connect(&config.database_url)
        .await
        .context("opening the database")
}
