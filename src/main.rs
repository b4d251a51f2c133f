//! `ward`: the command line. Thin: parse, configure logging, call the library.

use std::path::PathBuf;

use anyhow::Context;
use clap::{Parser, Subcommand};
use secrecy::ExposeSecret;
use ward::app::Application;
use ward::config::{Config, LogFormat};

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
    Migrate,
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
enum KeysCommand {
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
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let config = Config::load(cli.config.as_deref())?;
    init_logging(config.log_format);
    match cli.command {
        Command::Serve => serve(config).await,
        Command::Migrate => {
            ward::store::Store::connect(&config.database_url)
                .await
                .context("migrating")?;
            println!("ward: database is up to date");
            Ok(())
        }
        Command::Keys { command } => {
            let store = ward::store::Store::connect(&config.database_url)
                .await
                .context("opening the database")?;
            let audit = std::sync::Arc::new(ward::audit::MemorySink::new(64));
            let (store, crypto) = ward::app::open_crypto(&config, store, audit.clone())?;
            let crypto = crypto.context("field encryption is off (WARD_ENCRYPTION=false)")?;
            let audit = audit.as_ref();
            match command {
                KeysCommand::RotateKek => {
                    let (old, new, n) = ward::crypto::rotation::rotate_kek(&crypto, audit).await?;
                    println!("ward: KEK {old} → {new}; {n} data keys re-wrapped");
                }
                KeysCommand::RotateDek { subject } => {
                    let n = ward::crypto::rotation::rotate_dek(
                        &store,
                        &crypto,
                        audit,
                        &subject,
                        |done| {
                            eprintln!("ward: re-encrypted {done} values of {subject}");
                        },
                    )
                    .await?;
                    println!("ward: {subject} has a new data key; {n} values re-encrypted");
                }
            }
            Ok(())
        }
        Command::Policy {
            command: PolicyCommand::Check { dir },
        } => {
            let sink = std::sync::Arc::new(ward::audit::MemorySink::new(1));
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

async fn serve(config: Config) -> anyhow::Result<()> {
    let app = Application::build(config).await?;
    // Tests and tools read this line to find the port when binding to port 0.
    println!("ward: listening on http://{}", app.local_addr());
    tracing::info!(addr = %app.local_addr(), "ward is ready");
    app.run_until(shutdown_signal()).await
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = term => {},
    }
}

fn init_logging(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_env("WARD_LOG")
        .unwrap_or_else(|_| "info,sqlx=warn".into());
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Json => builder.json().init(),
        LogFormat::Text => builder.init(),
    }
}
