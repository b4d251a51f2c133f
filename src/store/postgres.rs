//! PostgreSQL, for production and for several nodes sharing one database.

use sqlx::migrate::MigrateDatabase;
use sqlx::postgres::PgPoolOptions;

pub struct PgStore {
    pool: sqlx::PgPool,
    /// The audit appender's leader lease: a dedicated connection holding a session-level
    /// advisory lock. Async mutex: checking it is a round trip.
    lease: tokio::sync::Mutex<Option<sqlx::PgConnection>>,
}

/// How long a request waits for a connection (sqlx retries a refused connect until then):
/// while PostgreSQL is down or restarting, requests fail with a 503 after this, well inside
/// client timeouts, instead of hanging for sqlx's default 30 s.
const ACQUIRE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(1);

const BEGIN_WRITE: &str = "BEGIN";

/// Claiming a job locks the row it picks; concurrent claims skip it and take the next due
/// job rather than wait (the queue pattern PostgreSQL documents for `SKIP LOCKED`).
const CLAIM_LOCK: &str = " FOR UPDATE SKIP LOCKED";

/// The advisory lock key of the audit appender (any fixed number; ASCII "wardaudt").
const AUDIT_LEASE_KEY: i64 = 0x7761_7264_6175_6474;

impl PgStore {
    /// Connects, creating the database when it does not exist yet, and migrates.
    pub async fn connect(url: &str, migrate: bool) -> anyhow::Result<Self> {
        if migrate && !sqlx::Postgres::database_exists(url).await? {
            sqlx::Postgres::create_database(url).await?;
        }
        let pool = PgPoolOptions::new()
            .max_connections(16)
            .acquire_timeout(ACQUIRE_TIMEOUT)
            .connect(url)
            .await?;
        if migrate {
            migrator().run(&pool).await?;
        }
        Ok(Self {
            pool,
            lease: tokio::sync::Mutex::new(None),
        })
    }
}

impl PgStore {
    /// Whether this process is the one audit appender: it holds the advisory lock on its own
    /// connection (checked alive each time); when that connection dies, PostgreSQL releases
    /// the lock and another node can take over. Two appenders racing anyway would collide on
    /// `audit_log.seq`, the primary key, rather than fork the chain.
    async fn audit_lease(&self) -> crate::store::StoreResult<bool> {
        use sqlx::Connection;
        let mut lease = self.lease.lock().await;
        if let Some(conn) = lease.as_mut() {
            if conn.ping().await.is_ok() {
                return Ok(true);
            }
            *lease = None;
        }
        let mut conn = self.pool.acquire().await?.detach();
        let held: bool = sqlx::query_scalar("SELECT pg_try_advisory_lock($1)")
            .bind(AUDIT_LEASE_KEY)
            .fetch_one(&mut conn)
            .await?;
        if held {
            *lease = Some(conn);
        } else {
            let _ = conn.close().await;
        }
        Ok(held)
    }
}

super::sql::impl_sql_store!(PgStore, sqlx::Postgres, sqlx::postgres::PgRow);

/// This dialect's migrations, embedded. Migrations applied by a newer Ward are ignored, not
/// refused: during a rolling upgrade the previous version restarts against a database the
/// next one has expanded (README "Upgrades").
pub fn migrator() -> sqlx::migrate::Migrator {
    let mut m = sqlx::migrate!("./migrations/postgres");
    m.set_ignore_missing(true);
    m
}
