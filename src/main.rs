//! `ward`: the command line. Thin: parse, configure logging, and call the subcommand's body
//! in the library ([`ward::cli`]).

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use ward::cli;
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
async fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli).await {
        Ok(code) => code,
        Err(e) => {
            // One line naming the cause and the fix; the chain and backtrace only on request.
            eprintln!("{}", ward::startup::render(&e));
            if ward::startup::backtrace_wanted() {
                eprintln!("{e:?}");
            }
            ExitCode::FAILURE
        }
    }
}

async fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    let config = Config::load(cli.config.as_deref())?;
    ward::logging::init(config.log_format);
    match cli.command {
        Command::Config {
            command: ConfigCommand::Check,
        } => Ok(cli::config_check(&config).await),
        Command::Healthcheck => cli::healthcheck(&config).await,
        command => dispatch(config, command).await.map(|()| ExitCode::SUCCESS),
    }
}

/// The commands that exit 0 on success.
async fn dispatch(config: Config, command: Command) -> anyhow::Result<()> {
    match command {
        Command::Config { .. } | Command::Healthcheck => unreachable!("handled by run"),
        Command::Backup { out } => cli::backup(&config, &out).await,
        Command::Restore { file, replace } => cli::restore(&config, &file, replace).await,
        Command::Serve => cli::serve::serve(config).await,
        Command::Worker { concurrency } => cli::serve::worker(config, concurrency).await,
        Command::Migrate { check } => cli::migrate(&config, check).await,
        Command::Keys { command } => match command {
            KeysCommand::ExportRoot { out } => cli::keys::export_root(&config, &out).await,
            KeysCommand::ImportRoot { file } => cli::keys::import_root(&config, &file).await,
            KeysCommand::RotateKek => cli::keys::rotate(&config, cli::keys::Rotation::Kek).await,
            KeysCommand::RotateDek { subject } => {
                cli::keys::rotate(&config, cli::keys::Rotation::Dek { subject }).await
            }
        },
        Command::Audit { command } => match command {
            AuditCommand::VerifierKey => cli::audit::verifier_key(&config).await,
            AuditCommand::Export {
                from,
                to,
                out,
                since,
            } => {
                let export = cli::audit::Export {
                    from,
                    to,
                    out: &out,
                    since,
                };
                cli::audit::export(&config, export).await
            }
        },
        Command::Gdpr { command } => match command {
            GdprCommand::Erase { user_id, hard } => cli::gdpr::erase(config, &user_id, hard).await,
            GdprCommand::Export { user_ids, out } => {
                cli::gdpr::export(config, &user_ids, out).await
            }
            GdprCommand::VerifyExport { file, key } => cli::gdpr::verify_export(&file, &key),
        },
        Command::Admin { command } => match command {
            AdminCommand::Bootstrap { user_id } => cli::admin::bootstrap(config, &user_id).await,
            AdminCommand::Reset2fa { user_id, reason } => {
                cli::admin::reset_2fa(config, &user_id, &reason).await
            }
        },
        Command::Policy {
            command: PolicyCommand::Check { dir },
        } => cli::policy_check(dir.as_ref()),
        Command::Usage {
            command: UsageCommand::Report { month, json },
        } => cli::usage_report(&config, month, json).await,
        Command::Token {
            user_id,
            expires_in,
        } => cli::token(&config, &user_id, expires_in),
    }
}
