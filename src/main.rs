//! `ward`: the command line. Thin: parse, configure logging, call the library.

use std::path::PathBuf;

use anyhow::Context;
use clap::{Parser, Subcommand};
use secrecy::ExposeSecret;
use ward::app::Application;
use ward::config::Config;

#[derive(Parser)]
#[command(
    name = "ward",
    version,
    about = "Compliance-first chat server speaking the Stream Chat protocol"
)]
struct Cli {
    /// Optional TOML configuration file; WARD_* environment variables override it.
    #[arg(long, global = true, env = "WARD_CONFIG")]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the server (migrates the database first).
    Serve,
    /// Create or upgrade the database schema, then exit.
    Migrate {
        /// List the pending migrations and whether they are safe while the previous version
        /// still runs (a rolling upgrade); change nothing.
        #[arg(long)]
        check: bool,
    },
    /// Check the configuration and reach every dependency it names (database, root key,
    /// Redis, checkpoint sink, listen address, TLS files, OIDC discovery); exit 1 on any
    /// failure.
    Config {
        #[command(subcommand)]
        command: ConfigCommand,
    },
    /// Take a consistent online backup of the embedded SQLite database (PostgreSQL: pg_dump).
    Backup {
        /// The file to write (never overwritten).
        #[arg(long)]
        out: PathBuf,
    },
    /// Put a backup in place of the data dir's database; refused while a server runs on it.
    Restore {
        file: PathBuf,
        /// Restore over an existing database (it is kept beside, renamed).
        #[arg(long)]
        replace: bool,
    },
    /// Exit 0 when this node's /healthz answers 200 (the container's HEALTHCHECK).
    Healthcheck,
    /// Run job workers (GDPR, retention, …) without serving HTTP, until SIGINT/SIGTERM.
    /// `ward serve` runs workers too; this adds capacity on other machines (PostgreSQL).
    Worker {
        /// How many jobs to run at once.
        #[arg(long, default_value_t = ward::jobs::DEFAULT_WORKERS)]
        concurrency: usize,
    },
    /// Field-encryption keys.
    Keys {
        #[command(subcommand)]
        command: KeysCommand,
    },
    /// Authorization policies.
    Policy {
        #[command(subcommand)]
        command: PolicyCommand,
    },
    /// Usage metering (MAU, peak concurrent connections, overage).
    Usage {
        #[command(subcommand)]
        command: UsageCommand,
    },
    /// Identity administration from the operator's shell (audited).
    Admin {
        #[command(subcommand)]
        command: AdminCommand,
    },
    /// The audit log: auditor bundles and the key auditors pin.
    Audit {
        #[command(subcommand)]
        command: AuditCommand,
    },
    /// GDPR data-subject rights: exports (Art. 15/20), checked offline.
    Gdpr {
        #[command(subcommand)]
        command: GdprCommand,
    },
    /// Print a user token signed with the configured API secret (for trying the SDK).
    Token {
        #[arg(long)]
        user_id: String,
        /// Expiry in seconds from now.
        #[arg(long)]
        expires_in: Option<i64>,
    },
}

#[derive(Subcommand)]
enum ConfigCommand {
    /// Validate the configuration and reach every configured dependency.
    Check,
}

#[derive(Subcommand)]
enum KeysCommand {
    /// Write the local root key sealed under a passphrase read from stdin (argon2id and
    /// AES-256-GCM, parameters in the file). Keep the file and the passphrase apart.
    ExportRoot {
        #[arg(long)]
        out: PathBuf,
    },
    /// Restore the local root key from an escrow file (passphrase from stdin); refused when
    /// it does not open this database's keys or another root key is in place.
    ImportRoot { file: PathBuf },
    /// Re-wrap every data key under a new key-encryption key (data untouched).
    RotateKek,
    /// Give a subject (user:<id> or channel:<cid>) a new data key and re-encrypt its values;
    /// resumes an interrupted run.
    RotateDek {
        #[arg(long)]
        subject: String,
    },
}

#[derive(Subcommand)]
enum AdminCommand {
    /// Create the first admin, for deployments whose IdP is not configured yet. The password
    /// is read from stdin (or WARD_BOOTSTRAP_PASSWORD); TOTP enrolment is mandatory at the
    /// first login.
    Bootstrap {
        #[arg(long)]
        user_id: String,
    },
    /// The recovery path for a locked-out user: remove their TOTP (they enrol again at the
    /// next login) and revoke their sessions. Recorded in the audit log.
    Reset2fa {
        #[arg(long)]
        user_id: String,
        /// Why (ticket number, approver): stored in the audit record.
        #[arg(long)]
        reason: String,
    },
}

#[derive(Subcommand)]
enum AuditCommand {
    /// Write an auditor bundle (entries, signed checkpoint, proofs) that `ward-audit verify`
    /// checks offline. Without a range: the whole log.
    Export {
        /// Entries from this time (RFC 3339), inclusive.
        #[arg(long)]
        from: Option<String>,
        /// Entries before this time (RFC 3339).
        #[arg(long)]
        to: Option<String>,
        /// The bundle directory to create.
        #[arg(long)]
        out: PathBuf,
        /// The tree size the auditor last accepted: adds a consistency proof from it.
        #[arg(long)]
        since: Option<u64>,
    },
    /// Print the log's verifier key (`<origin>+<key id>+<key>`), which auditors pin.
    VerifierKey,
}

#[derive(Subcommand)]
enum GdprCommand {
    /// Erase a user (GDPR Art. 17): tokens and sessions revoked, keys crypto-shredded, rows
    /// removed, a certificate in the audit log. Refused while a legal hold covers them.
    Erase {
        #[arg(long)]
        user_id: String,
        /// Delete the user row and their messages (default: keep empty, marked deleted).
        #[arg(long)]
        hard: bool,
    },
    /// Export everything held about a user into a ZIP whose manifest is signed with the
    /// audit log key (README "GDPR export"). Recorded in the audit log.
    Export {
        /// The user to export; repeat it for several, and --out is then a directory that
        /// gets one `<user id>.zip` each.
        #[arg(long = "user-id", required = true)]
        user_ids: Vec<String>,
        /// The ZIP to write (a directory with several users).
        #[arg(long)]
        out: PathBuf,
    },
    /// Check an export offline: the manifest's signature under the pinned key, every file's
    /// SHA-256, size and record count, and the audit entries' inclusion proofs.
    VerifyExport {
        file: PathBuf,
        /// The audit log's verifier key (`ward audit verifier-key`), or a file holding it.
        #[arg(long)]
        key: String,
    },
}

#[derive(Subcommand)]
enum PolicyCommand {
    /// Validate policy files against the schema, offline (the built-in set without --dir).
    Check {
        #[arg(long)]
        dir: Option<PathBuf>,
    },
}

#[derive(Subcommand)]
enum UsageCommand {
    /// The report for one calendar month (UTC), as a table or JSON.
    Report {
        /// YYYY-MM; the current month when omitted.
        #[arg(long)]
        month: Option<String>,
        #[arg(long)]
        json: bool,
    },
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    match run(cli).await {
        Ok(code) => code,
        Err(e) => {
            // One line naming the cause and the fix; the chain and backtrace only on request.
            eprintln!("{}", ward::startup::render(&e));
            if ward::startup::backtrace_wanted() {
                eprintln!("{e:?}");
            }
            std::process::ExitCode::FAILURE
        }
    }
}

async fn run(cli: Cli) -> anyhow::Result<std::process::ExitCode> {
    let config = Config::load(cli.config.as_deref())?;
    ward::logging::init(config.log_format);
    match cli.command {
        Command::Config {
            command: ConfigCommand::Check,
        } => {
            let checks = ward::ops::check::run(&config).await;
            print!("{}", ward::ops::check::render(&checks));
            Ok(if checks.iter().all(|c| c.ok) {
                std::process::ExitCode::SUCCESS
            } else {
                std::process::ExitCode::FAILURE
            })
        }
        Command::Healthcheck => healthcheck(&config).await,
        command => run_command(config, command)
            .await
            .map(|()| std::process::ExitCode::SUCCESS),
    }
}

async fn run_command(config: Config, command: Command) -> anyhow::Result<()> {
    match command {
        Command::Config { .. } | Command::Healthcheck => unreachable!("handled by run"),
        Command::Backup { out } => {
            let s = ward::ops::backup::backup(&config, &out).await?;
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
        Command::Restore { file, replace } => {
            let r = ward::ops::backup::restore(&config, &file, replace).await?;
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
        Command::Serve => serve(config).await,
        Command::Worker { concurrency } => worker(config, concurrency).await,
        Command::Migrate { check: true } => {
            let plan = ward::ops::migrate::plan(&config.database_url)
                .await
                .map_err(|e| ward::startup::StartupError::database(&config.database_url, &e))?;
            print!("{}", ward::ops::migrate::render(&plan));
            Ok(())
        }
        Command::Migrate { check: false } => {
            ward::store::Store::connect(&config.database_url)
                .await
                .map_err(|e| ward::startup::StartupError::database(&config.database_url, &e))?;
            println!("ward: database is up to date");
            Ok(())
        }
        Command::Keys {
            command: KeysCommand::ExportRoot { out },
        } => {
            let passphrase = read_secret_line("escrow passphrase (12 characters or more)")?;
            let id = ward::ops::keys::export_root(&config, &out, &passphrase).await?;
            println!(
                "ward: root key {id} sealed into {}; keep it and the passphrase apart (ward keys import-root restores it)",
                out.display()
            );
            Ok(())
        }
        Command::Keys {
            command: KeysCommand::ImportRoot { file },
        } => {
            let passphrase = read_secret_line("escrow passphrase")?;
            let (id, written) = ward::ops::keys::import_root(&config, &file, &passphrase).await?;
            if written {
                println!(
                    "ward: root key {id} restored to {}",
                    config.data_dir.join("root.key").display()
                );
            } else {
                println!("ward: root key {id} was already in place; nothing changed");
            }
            Ok(())
        }
        Command::Keys { command } => {
            let store = ward::store::Store::connect(&config.database_url)
                .await
                .context("opening the database")?;
            let sink = std::sync::Arc::new(ward::audit::OutboxSink::new(store.clone()));
            let root = ward::app::open_root(&config)?;
            let (store, crypto) = ward::app::open_crypto(&config, store, sink.clone(), root)?;
            let crypto = crypto.context("field encryption is off (WARD_ENCRYPTION=false)")?;
            let audit = sink.as_ref();
            match &command {
                KeysCommand::RotateKek => {
                    let (old, new, n) = ward::crypto::rotation::rotate_kek(&crypto, audit).await?;
                    println!("ward: KEK {old} → {new}; {n} data keys re-wrapped");
                }
                KeysCommand::ExportRoot { .. } | KeysCommand::ImportRoot { .. } => {
                    unreachable!("handled above")
                }
                KeysCommand::RotateDek { subject } => {
                    let n = ward::crypto::rotation::rotate_dek(
                        &store,
                        &crypto,
                        audit,
                        subject,
                        |done| {
                            eprintln!("ward: re-encrypted {done} values of {subject}");
                        },
                    )
                    .await?;
                    println!("ward: {subject} has a new data key; {n} values re-encrypted");
                }
            }
            sink.flush().await.context("recording the key operation")?;
            // Serving nodes cache keys: tell them to drop what the rotation changed.
            if let Some(url) = &config.redis_url {
                let subject = match &command {
                    KeysCommand::RotateDek { subject } => Some(subject.clone()),
                    _ => None,
                };
                // Its own node id: nodes ignore frames that carry theirs.
                let node = format!("{}-cli-{}", config.node_id, std::process::id());
                if let Err(e) = ward::bus::redis::publish_control_once(
                    url,
                    &config.redis_channel,
                    &node,
                    ward::bus::wire::Control::EvictKeys { subject },
                )
                .await
                {
                    eprintln!(
                        "ward: could not tell the serving nodes to drop their cached keys ({e}); they do within 5 minutes"
                    );
                }
            }
            Ok(())
        }
        Command::Audit { command } => audit_command(&config, command).await,
        Command::Gdpr { command } => gdpr_command(config, command).await,
        Command::Admin { command } => admin_command(config, command).await,
        Command::Policy {
            command: PolicyCommand::Check { dir },
        } => {
            let sink = std::sync::Arc::new(ward::audit::MemorySink::new());
            let authz = match &dir {
                Some(dir) => ward::authz::Authz::from_dir(dir, sink)?,
                None => ward::authz::Authz::embedded(sink)?,
            };
            println!(
                "ward: {} policies validate against the schema",
                authz.policy_count()
            );
            Ok(())
        }
        Command::Usage {
            command: UsageCommand::Report { month, json },
        } => {
            let store = ward::store::Store::connect(&config.database_url)
                .await
                .context("opening the database")?;
            let month = month.unwrap_or_else(|| ward::usage::month_of(ward::time::now_micros()));
            let report = ward::usage::report(&store, &month, config.plan).await?;
            if json {
                println!("{}", serde_json::to_string_pretty(&report)?);
            } else {
                print!("{}", ward::usage::render_table(&report));
            }
            Ok(())
        }
        Command::Token {
            user_id,
            expires_in,
        } => {
            let secret = config
                .api_secret
                .as_ref()
                .context("ward token needs WARD_API_SECRET")?;
            let exp = expires_in.map(|s| chrono::Utc::now().timestamp() + s);
            println!(
                "{}",
                ward::auth::token::user_token(&user_id, exp, secret.expose_secret().as_bytes())
            );
            Ok(())
        }
    }
}

async fn admin_command(config: Config, command: AdminCommand) -> anyhow::Result<()> {
    // The full application state (keys, audit log), without serving.
    let app = Application::build(Config {
        bind: "127.0.0.1:0".parse()?,
        ..config
    })
    .await?;
    let state = app.state();
    match command {
        AdminCommand::Bootstrap { user_id } => {
            let password = match std::env::var("WARD_BOOTSTRAP_PASSWORD") {
                Ok(p) => p,
                Err(_) => {
                    let mut line = String::new();
                    std::io::stdin().read_line(&mut line)?;
                    line.trim_end_matches(['\n', '\r']).to_string()
                }
            };
            ward::auth::bootstrap_admin(&state, &user_id, &password)
                .await
                .map_err(|e| anyhow::anyhow!(ward::http::error::ApiError::from(e).message))?;
            println!(
                "ward: admin {user_id} created; log in with POST /auth/login, then enrol TOTP (POST /auth/totp/enroll)"
            );
        }
        AdminCommand::Reset2fa { user_id, reason } => {
            ward::auth::totp::reset(&state, &user_id, None, &format!("cli:{reason}"))
                .await
                .map_err(|e| anyhow::anyhow!(ward::http::error::ApiError::from(e).message))?;
            let n = ward::auth::session::revoke_all(&state, &user_id, None, "2fa_reset")
                .await
                .map_err(|e| anyhow::anyhow!(ward::http::error::ApiError::from(e).message))?;
            println!(
                "ward: TOTP removed for {user_id}; {n} sessions revoked; they enrol again at the next login"
            );
        }
    }
    state.audit.flush().await?;
    Ok(())
}

async fn audit_command(config: &Config, command: AuditCommand) -> anyhow::Result<()> {
    let store = ward::store::Store::connect(&config.database_url)
        .await
        .context("opening the database")?;
    match command {
        AuditCommand::VerifierKey => {
            let root = ward::app::open_root(config)?;
            println!(
                "{}",
                ward::audit::appender::verifier_key(&store, root.as_ref()).await?
            );
        }
        AuditCommand::Export {
            from,
            to,
            out,
            since,
        } => {
            let time = |name: &str, v: Option<String>, default: i64| -> anyhow::Result<i64> {
                match v {
                    None => Ok(default),
                    Some(v) => Ok(chrono::DateTime::parse_from_rfc3339(&v)
                        .with_context(|| format!("--{name} must be an RFC 3339 time"))?
                        .timestamp_millis()),
                }
            };
            let (from_ms, to_ms) = (time("from", from, i64::MIN)?, time("to", to, i64::MAX)?);
            let origin = store
                .settings
                .find_setting("audit_origin")
                .await?
                .context("this database has no audit log yet (start the server once)")?;
            let Some((lo, hi)) = store.audit.find_seq_bounds(from_ms, to_ms).await? else {
                anyhow::bail!("no audit entries in that time range");
            };
            let bundle = ward::audit::tree::export_bundle(
                store.audit.as_ref(),
                &origin,
                lo as u64,
                hi as u64 + 1,
                since,
            )
            .await?;
            bundle
                .write(&out)
                .with_context(|| format!("writing the bundle to {}", out.display()))?;
            let sink = ward::audit::OutboxSink::new(store.clone());
            use ward::audit::AuditSink;
            sink.record(
                ward::audit::AuditEvent::new(ward::audit::EventType::AuditExport)
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
        }
    }
    Ok(())
}

async fn gdpr_command(config: Config, command: GdprCommand) -> anyhow::Result<()> {
    use ward::gdpr::export;
    match command {
        GdprCommand::Erase { user_id, hard } => {
            let app = Application::build(Config {
                bind: "127.0.0.1:0".parse()?,
                ..config
            })
            .await?;
            let state = app.state();
            let mode = if hard {
                ward::gdpr::erase::Mode::Hard
            } else {
                ward::gdpr::erase::Mode::Soft
            };
            let options = ward::gdpr::erase::Options {
                user: mode,
                messages: mode,
            };
            let certificate = ward::gdpr::erase::erase_user(&state, &user_id, options, None, None)
                .await
                .map_err(|e| anyhow::anyhow!(ward::http::error::ApiError::from(e).message))?;
            state.audit.flush().await?;
            println!("{}", serde_json::to_string_pretty(&certificate)?);
        }
        GdprCommand::VerifyExport { file, key } => {
            let key = match std::fs::read_to_string(&key) {
                Ok(text) => text.strip_suffix('\n').unwrap_or(&text).to_string(),
                Err(_) => key,
            };
            let m = export::verify_export(&file, &key)
                .with_context(|| format!("FAIL {}", file.display()))?;
            let count = |name: &str| m.file(name).map_or(0, |f| f.count);
            println!(
                "OK {}: signed manifest, {} files, {} messages, {} audit entries proven in tree size {}",
                file.display(),
                m.files.len(),
                count("messages.ndjson"),
                count("audit.ndjson"),
                m.audit_tree_size
            );
        }
        GdprCommand::Export { user_ids, out } => {
            // The full application state (keys, audit log), without serving.
            let app = Application::build(Config {
                bind: "127.0.0.1:0".parse()?,
                ..config
            })
            .await?;
            let state = app.state();
            let written = if let [user_id] = user_ids.as_slice() {
                let mut shown = progress_line(String::new());
                let m = export::export_user(&state, user_id, &out, &mut shown)
                    .await
                    .map_err(|e| anyhow::anyhow!(ward::http::error::ApiError::from(e).message))?;
                vec![(out, m)]
            } else {
                ward::fsx::create_private_dir(&out)
                    .with_context(|| format!("creating {}", out.display()))?;
                let n = user_ids.len();
                let mut lines: Vec<_> = (1..=n)
                    .map(|i| progress_line(format!("user {i}/{n}: ")))
                    .collect();
                let mut shown = |i: usize, done, total| lines[i](done, total);
                export::export_users(&state, &user_ids, &out, &mut shown)
                    .await
                    .map_err(|e| anyhow::anyhow!(ward::http::error::ApiError::from(e).message))?
            };
            state.audit.flush().await?;
            let key = &state.audit.verifier_key;
            for (path, m) in &written {
                let count = |name: &str| m.file(name).map_or(0, |f| f.count);
                println!(
                    "ward: wrote {}: {} messages, {} reactions, {} audit entries (tree size {})",
                    path.display(),
                    count("messages.ndjson"),
                    count("reactions.ndjson"),
                    count("audit.ndjson"),
                    m.audit_tree_size
                );
            }
            println!("ward: verifier key: {key}");
            println!("ward: check with: ward gdpr verify-export FILE --key '{key}'");
        }
    }
    Ok(())
}

/// `exported N/M records` on stderr: rewritten in place on a terminal (each percent),
/// one line per tenth otherwise.
fn progress_line(label: String) -> impl FnMut(u64, u64) + Send {
    use std::io::IsTerminal;
    let tty = std::io::stderr().is_terminal();
    let mut shown = None;
    move |done, total| {
        let pct = (done * 100).checked_div(total).unwrap_or(100);
        let step = if tty { pct } else { pct / 10 * 10 };
        if shown == Some(step) {
            return;
        }
        shown = Some(step);
        let end = if tty && pct < 100 { "" } else { "\n" };
        let start = if tty { "\r" } else { "" };
        eprint!("{start}ward: {label}exported {done}/{total} records{end}");
    }
}

async fn serve(config: Config) -> anyhow::Result<()> {
    // One process serves an SQLite file; `ward restore` waits for this lock too.
    let _lock = if config.is_postgres() {
        None
    } else {
        Some(ward::ops::backup::DataDirLock::acquire(&config.data_dir)?)
    };
    let app = Application::build(config).await?;
    let state = app.state();
    if let Some(reminder) = ward::ops::keys::escrow_reminder(
        &state.config,
        &state.store,
        ward::app::open_root(&state.config)?.as_ref(),
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

/// GET /healthz on this node's own address (0.0.0.0 is asked on loopback).
async fn healthcheck(config: &Config) -> anyhow::Result<std::process::ExitCode> {
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
        Ok(r) if r.status().is_success() => Ok(std::process::ExitCode::SUCCESS),
        Ok(r) => {
            eprintln!("ward: {url} answered {}", r.status());
            Ok(std::process::ExitCode::FAILURE)
        }
        Err(e) => {
            eprintln!("ward: {url}: {e}");
            Ok(std::process::ExitCode::FAILURE)
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

async fn worker(config: Config, concurrency: usize) -> anyhow::Result<()> {
    if !config.is_postgres() {
        // One process owns an SQLite file (the audit appender assumes it).
        tracing::warn!("ward worker on SQLite: stop ward serve first; it runs workers itself");
    }
    // The full application state (keys, audit log), without serving.
    let app = Application::build(Config {
        bind: "127.0.0.1:0".parse()?,
        ..config
    })
    .await?;
    let state = app.state();
    let shutdown = shutdown_signal()?;
    let workers = ward::jobs::Workers::spawn(&state, concurrency.max(1));
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
