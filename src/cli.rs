//! The bodies of the `ward` subcommands: `main` parses the command line and calls one of
//! these, which run the library and print what the operator reads. An edge like `ops` (which
//! does the work and prints nothing); the commands that need the whole state build it with
//! [`crate::app::AppState::build`], without binding a port.

pub mod admin;
pub mod audit;
pub mod gdpr;
pub mod keys;
pub mod serve;

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;
use secrecy::ExposeSecret;

use crate::config::Config;
use crate::startup::StartupError;

/// `ward config check`: every check, then exit 1 on any failure.
pub async fn config_check(config: &Config) -> ExitCode {
    let checks = crate::ops::check::run(config).await;
    print!("{}", crate::ops::check::render(&checks));
    if checks.iter().all(|c| c.ok) {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

/// `ward backup`.
pub async fn backup(config: &Config, out: &Path) -> anyhow::Result<()> {
    let s = crate::ops::backup::backup(config, out).await?;
    println!(
        "ward: backed up to {} ({} bytes, {} messages, audit log of {} entries, last signed checkpoint at size {})",
        out.display(),
        s.bytes,
        s.messages,
        s.audit_size,
        s.checkpoint_size.map_or("none".into(), |n| n.to_string())
    );
    println!(
        "ward: the backup does not hold the root key: keep an escrow of it (ward keys export-root) apart from the backups"
    );
    Ok(())
}

/// `ward restore`.
pub async fn restore(config: &Config, file: &Path, replace: bool) -> anyhow::Result<()> {
    let r = crate::ops::backup::restore(config, file, replace).await?;
    if let Some(previous) = &r.previous {
        println!(
            "ward: the database it replaced is kept at {}",
            previous.display()
        );
    }
    println!(
        "ward: restored {} ({} messages, audit log of {} entries); start ward serve: it checks the log against the published checkpoints",
        file.display(),
        r.summary.messages,
        r.summary.audit_size
    );
    Ok(())
}

/// `ward migrate`: the plan with `check`, else the migrations themselves.
pub async fn migrate(config: &Config, check: bool) -> anyhow::Result<()> {
    if check {
        let plan = crate::ops::migrate::plan(&config.database_url)
            .await
            .map_err(|e| StartupError::database(&config.database_url, &e))?;
        print!("{}", crate::ops::migrate::render(&plan));
    } else {
        crate::store::Store::connect(&config.database_url)
            .await
            .map_err(|e| StartupError::database(&config.database_url, &e))?;
        println!("ward: database is up to date");
    }
    Ok(())
}

/// `ward policy check`: the policies in `dir` (the built-in set without it).
pub fn policy_check(dir: Option<&PathBuf>) -> anyhow::Result<()> {
    let sink = std::sync::Arc::new(crate::audit::MemorySink::new());
    let authz = match dir {
        Some(dir) => crate::authz::Authz::from_dir(dir, sink)?,
        None => crate::authz::Authz::embedded(sink)?,
    };
    println!(
        "ward: {} policies validate against the schema",
        authz.policy_count()
    );
    Ok(())
}

/// `ward usage report`.
pub async fn usage_report(
    config: &Config,
    month: Option<String>,
    json: bool,
) -> anyhow::Result<()> {
    let store = crate::store::Store::connect(&config.database_url)
        .await
        .context("opening the database")?;
    let month = month.unwrap_or_else(|| crate::usage::month_of(crate::time::now_micros()));
    let report = crate::usage::report(&store, &month, config.plan).await?;
    if json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print!("{}", crate::usage::render_table(&report));
    }
    Ok(())
}

/// `ward token`: a user token signed with the configured API secret.
pub fn token(config: &Config, user_id: &str, expires_in: Option<i64>) -> anyhow::Result<()> {
    let secret = config
        .api_secret
        .as_ref()
        .context("ward token needs WARD_API_SECRET")?;
    let exp = expires_in.map(|s| chrono::Utc::now().timestamp() + s);
    println!(
        "{}",
        crate::auth::token::user_token(user_id, exp, secret.expose_secret().as_bytes())
    );
    Ok(())
}

/// `ward healthcheck`: GET /healthz on this node's own address (0.0.0.0 is asked on
/// loopback).
pub async fn healthcheck(config: &Config) -> anyhow::Result<ExitCode> {
    let mut addr = config.bind;
    if addr.ip().is_unspecified() {
        addr.set_ip(if addr.is_ipv4() {
            std::net::Ipv4Addr::LOCALHOST.into()
        } else {
            std::net::Ipv6Addr::LOCALHOST.into()
        });
    }
    let scheme = if config.tls.is_some() {
        "https"
    } else {
        "http"
    };
    let client = reqwest::Client::builder()
        .timeout(std::time::Duration::from_secs(3))
        // The certificate names the public host, not loopback.
        .danger_accept_invalid_certs(config.tls.is_some())
        .build()?;
    let url = format!("{scheme}://{addr}/healthz");
    match client.get(&url).send().await {
        Ok(r) if r.status().is_success() => Ok(ExitCode::SUCCESS),
        Ok(r) => {
            eprintln!("ward: {url} answered {}", r.status());
            Ok(ExitCode::FAILURE)
        }
        Err(e) => {
            eprintln!("ward: {url}: {e}");
            Ok(ExitCode::FAILURE)
        }
    }
}

/// One line from stdin (a prompt on stderr when stdin is a terminal; it echoes).
fn read_secret_line(prompt: &str) -> anyhow::Result<String> {
    use std::io::IsTerminal;
    if std::io::stdin().is_terminal() {
        eprint!("{prompt}: ");
    }
    let mut line = String::new();
    std::io::stdin()
        .read_line(&mut line)
        .context("reading the passphrase from stdin")?;
    Ok(line.trim_end_matches(['\n', '\r']).to_string())
}
