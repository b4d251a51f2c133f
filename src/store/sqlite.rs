//! The embedded default: SQLite in WAL mode, one file under the data dir.

use std::str::FromStr;
use std::time::Duration;

use sqlx::Connection;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};

pub struct SqliteStore {
    pool: sqlx::SqlitePool,
}

impl SqliteStore {
    /// A pooled connection that still counts a transaction as open is closed, not handed
    /// out: when a write fails for lack of space (SQLITE_FULL) SQLite rolls the transaction
    /// back itself, sqlx's own ROLLBACK then fails, and every later BEGIN on that connection
    /// would fail too ("non-zero transaction depth") long after the disk has room again.
    pub async fn connect(url: &str, migrate: bool) -> anyhow::Result<Self> {
        let options = SqliteConnectOptions::from_str(url)?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Normal)
            .busy_timeout(Duration::from_secs(5))
            .foreign_keys(true);
        let pool = SqlitePoolOptions::new()
            .max_connections(8)
            .before_acquire(|conn, _| Box::pin(async move { Ok(!conn.is_in_transaction()) }))
            .connect_with(options)
            .await?;
        if migrate {
            migrator().run(&pool).await?;
        }
        Ok(Self { pool })
    }
}

/// Write transactions take the write lock at BEGIN: a deferred transaction that read first
/// would get SQLITE_BUSY at once (not after the busy timeout) when another connection (the
/// audit appender, say) committed in between.
const BEGIN_WRITE: &str = "BEGIN IMMEDIATE";

/// Claiming a job needs no row lock here: the claim's IMMEDIATE transaction is the only
/// writer.
const CLAIM_LOCK: &str = "";

impl SqliteStore {
    /// One process owns an SQLite file: it is always the appender. (Two processes on one
    /// file would collide on `audit_log.seq`, the primary key, rather than fork the chain.)
    async fn audit_lease(&self) -> crate::store::StoreResult<bool> {
        Ok(true)
    }
}

super::sql::impl_sql_store!(SqliteStore, sqlx::Sqlite, sqlx::sqlite::SqliteRow);

/// This dialect's migrations, embedded. Migrations applied by a newer Ward are ignored, not
/// refused: during a rolling upgrade the previous version restarts against a database the
/// next one has expanded (README "Upgrades").
pub fn migrator() -> sqlx::migrate::Migrator {
    let mut m = sqlx::migrate!("./migrations/sqlite");
    m.set_ignore_missing(true);
    m
}
