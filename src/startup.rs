//! Start-up failures an operator can act on. Each refusal to start is one line naming the
//! cause and the fix (`ward: <cause>: <fix>`); `main` prints it without a backtrace unless
//! `RUST_BACKTRACE` asks. A leaf: imports nothing of Ward's.

use std::fmt;
use std::net::SocketAddr;

/// A refusal to start: what is wrong, and what the operator does about it.
#[derive(Debug)]
pub struct StartupError {
    pub cause: String,
    pub fix: String,
}

impl fmt::Display for StartupError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.cause, self.fix)
    }
}

impl std::error::Error for StartupError {}

impl StartupError {
    pub fn new(cause: impl Into<String>, fix: impl Into<String>) -> Self {
        Self {
            cause: cause.into(),
            fix: fix.into(),
        }
    }

    /// The listener could not bind.
    pub fn bind(addr: SocketAddr, err: &std::io::Error) -> Self {
        match err.kind() {
            std::io::ErrorKind::AddrInUse => Self::new(
                format!("cannot listen on {addr}: the port is in use by another process"),
                "stop that process (`ss -ltnp` names it) or set WARD_BIND to a free address",
            ),
            std::io::ErrorKind::PermissionDenied => Self::new(
                format!("cannot listen on {addr}: permission denied"),
                "ports below 1024 need privileges: use a higher port in WARD_BIND (8080) behind a load balancer",
            ),
            std::io::ErrorKind::AddrNotAvailable => Self::new(
                format!("cannot listen on {addr}: no interface of this machine has that address"),
                "set WARD_BIND to an address of this machine (0.0.0.0:8080 for all)",
            ),
            _ => Self::new(format!("cannot listen on {addr}: {err}"), "check WARD_BIND"),
        }
    }

    /// The database could not be opened or migrated. `url` is shown without its password.
    pub fn database(url: &str, err: &anyhow::Error) -> Self {
        let shown = redact_url(url);
        let sqlite = url.starts_with("sqlite:");
        let sqlx = err.chain().find_map(|e| e.downcast_ref::<sqlx::Error>());
        match sqlx {
            Some(sqlx::Error::Io(io)) if !sqlite => Self::new(
                format!("cannot reach PostgreSQL at {shown} ({})", io_reason(io)),
                "start PostgreSQL, or correct the host and port in WARD_DATABASE_URL",
            ),
            Some(sqlx::Error::PoolTimedOut) => Self::new(
                format!("timed out connecting to the database at {shown}"),
                "check that the database is up and reachable from this machine (firewall, security group)",
            ),
            Some(sqlx::Error::Tls(_)) => Self::new(
                format!("the TLS handshake with the database at {shown} failed"),
                "check sslmode and the server certificate in WARD_DATABASE_URL",
            ),
            Some(sqlx::Error::Database(db)) if !sqlite => {
                let code = db.code().map(|c| c.to_string()).unwrap_or_default();
                match code.as_str() {
                    "28P01" | "28000" => Self::new(
                        format!("PostgreSQL at {shown} refused the login"),
                        "check the user and password in WARD_DATABASE_URL (and pg_hba.conf)",
                    ),
                    "42501" => Self::new(
                        format!("the database user of {shown} lacks a privilege Ward needs"),
                        "run the migrations as the owner (`ward migrate`), then serve as the app role (deploy/postgres/app-role.sql)",
                    ),
                    _ => Self::new(
                        format!("the database at {shown} refused Ward (SQLSTATE {code})"),
                        "check WARD_DATABASE_URL and the server log of the database",
                    ),
                }
            }
            Some(sqlx::Error::Database(_)) | Some(sqlx::Error::Io(_)) => Self::new(
                format!("cannot open the SQLite database {shown}"),
                "check that WARD_DATA_DIR exists and this user may write it, and that the disk is not full",
            ),
            Some(sqlx::Error::Migrate(m)) => Self::new(
                format!("the schema of the database at {shown} cannot be upgraded ({m})"),
                "run `ward migrate --check` to see the pending migrations; restore the backup taken before the upgrade if one failed half-way",
            ),
            _ => Self::new(
                format!(
                    "cannot open the database at {shown} ({})",
                    one_line(&format!("{err:#}"))
                ),
                "check WARD_DATABASE_URL",
            ),
        }
    }
}

fn io_reason(err: &std::io::Error) -> &'static str {
    match err.kind() {
        std::io::ErrorKind::ConnectionRefused => "connection refused",
        std::io::ErrorKind::TimedOut => "timed out",
        std::io::ErrorKind::NotFound => "host not found",
        std::io::ErrorKind::PermissionDenied => "permission denied",
        _ => "network error",
    }
}

/// `postgres://user:secret@host/db` → `postgres://user@host/db`; other URLs as they are.
pub fn redact_url(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_string();
    };
    let (authority, tail) = match rest.find(['/', '?']) {
        Some(i) => rest.split_at(i),
        None => (rest, ""),
    };
    let Some((userinfo, host)) = authority.rsplit_once('@') else {
        return url.to_string();
    };
    let user = userinfo.split(':').next().unwrap_or("");
    format!("{scheme}://{user}@{host}{tail}")
}

fn one_line(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// What `main` prints for a failed command: one line, `ward: <cause>: <fix>` for a known
/// refusal, the error and its causes joined by ": " otherwise.
pub fn render(err: &anyhow::Error) -> String {
    match err.chain().find_map(|e| e.downcast_ref::<StartupError>()) {
        Some(s) => format!("ward: {}", one_line(&s.to_string())),
        None => format!("ward: {}", one_line(&format!("{err:#}"))),
    }
}

/// Whether the operator asked for backtraces (`RUST_BACKTRACE` or `RUST_LIB_BACKTRACE` set
/// to anything but 0).
pub fn backtrace_wanted() -> bool {
    ["RUST_LIB_BACKTRACE", "RUST_BACKTRACE"]
        .iter()
        .any(|v| std::env::var(v).is_ok_and(|v| !v.is_empty() && v != "0"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn database_urls_are_shown_without_their_password() {
        assert_eq!(
            redact_url("postgres://ward:s3cret@db.internal:5432/ward?sslmode=require"),
            "postgres://ward@db.internal:5432/ward?sslmode=require"
        );
        assert_eq!(
            redact_url("postgres://ward@db/ward"),
            "postgres://ward@db/ward"
        );
        assert_eq!(
            redact_url("postgres://db:5432/ward"),
            "postgres://db:5432/ward"
        );
        assert_eq!(redact_url("sqlite://data/ward.db"), "sqlite://data/ward.db");
    }

    #[test]
    fn a_known_refusal_renders_as_one_line_with_its_fix() {
        let err = anyhow::Error::new(StartupError::new("cause\nhere", "do this"))
            .context("opening the database");
        assert_eq!(render(&err), "ward: cause here: do this");
        let other = anyhow::anyhow!("inner").context("outer");
        assert_eq!(render(&other), "ward: outer: inner");
    }
}
