//! The one place the two databases differ: which pool a store holds ([`Db`]), how a write
//! transaction begins and how a job claim locks ([`Dialect`]), how many parameters one
//! statement may bind ([`BIND_LIMIT`]), and the decoding of a row of either ([`Row`]).
//!
//! Everything else is one SQL text for both. The SQL stays portable by convention: `$n`
//! placeholders (sqlx's SQLite driver accepts them too), `BIGINT` times, JSON as text,
//! `ON CONFLICT`, `RETURNING`, and `LOWER(..) LIKE` for case-insensitive search. A query is
//! written once as a [`Query`] (text plus [`Arg`]s) and bound to the driver of the pool or
//! transaction it runs on, so each query is type-checked once, not once per dialect.

use std::fmt::Write;
use std::str::FromStr;
use std::time::Duration;

use sqlx::migrate::MigrateDatabase;
use sqlx::postgres::{PgPool, PgPoolOptions, PgRow};
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteRow,
    SqliteSynchronous,
};
use sqlx::{
    AssertSqlSafe, ColumnIndex, Connection, Database, Decode, Encode, Postgres, Sqlite, Type,
};

/// The most parameters one statement binds. SQLite refuses a statement with more than
/// `SQLITE_MAX_VARIABLE_NUMBER` of them (32,766 since SQLite 3.32; PostgreSQL allows
/// 65,535), so multi-row writes and long `IN` lists are sent in chunks that stay below it.
pub const BIND_LIMIT: usize = 32_766;

/// Which database a store talks to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    Sqlite,
    Postgres,
}

impl Dialect {
    /// The name `Store::dialect` reports.
    pub fn name(self) -> &'static str {
        match self {
            Self::Sqlite => "sqlite",
            Self::Postgres => "postgres",
        }
    }

    /// SQLite write transactions take the write lock at BEGIN: a deferred transaction that
    /// read first would get SQLITE_BUSY at once (not after the busy timeout) when another
    /// connection (the audit appender, say) committed in between.
    fn begin_write(self) -> &'static str {
        match self {
            Self::Sqlite => "BEGIN IMMEDIATE",
            Self::Postgres => "BEGIN",
        }
    }

    /// How the pick of a job claim locks its row. PostgreSQL locks it, and concurrent claims
    /// skip it and take the next due job rather than wait (the queue pattern PostgreSQL
    /// documents for `SKIP LOCKED`). SQLite needs nothing: the claim's IMMEDIATE
    /// transaction is the only writer.
    pub fn claim_lock(self) -> &'static str {
        match self {
            Self::Sqlite => "",
            Self::Postgres => " FOR UPDATE SKIP LOCKED",
        }
    }
}

/// A pool of either database.
pub enum Db {
    Sqlite(SqlitePool),
    Postgres(PgPool),
}

impl Db {
    /// Opens the database named by `url` (`sqlite:` or `postgres://`), creating it when
    /// missing, and with `migrate` runs the migrations of its dialect.
    pub async fn connect(url: &str, migrate: bool) -> anyhow::Result<Self> {
        let db = if url.starts_with("sqlite:") {
            Self::Sqlite(connect_sqlite(url).await?)
        } else {
            Self::Postgres(connect_postgres(url, migrate).await?)
        };
        if migrate {
            match &db {
                Self::Sqlite(pool) => migrator(url).run(pool).await?,
                Self::Postgres(pool) => migrator(url).run(pool).await?,
            }
        }
        Ok(db)
    }

    pub fn dialect(&self) -> Dialect {
        match self {
            Self::Sqlite(_) => Dialect::Sqlite,
            Self::Postgres(_) => Dialect::Postgres,
        }
    }

    /// Begins a transaction that will write (see [`Dialect::begin_write`]).
    pub async fn begin_write(&self) -> Result<Tx, sqlx::Error> {
        let begin = self.dialect().begin_write();
        Ok(match self {
            Self::Sqlite(pool) => Tx::Sqlite(pool.begin_with(begin).await?),
            Self::Postgres(pool) => Tx::Postgres(pool.begin_with(begin).await?),
        })
    }
}

/// The embedded default: SQLite in WAL mode, one file under the data dir.
async fn connect_sqlite(url: &str) -> anyhow::Result<SqlitePool> {
    let options = SqliteConnectOptions::from_str(url)?
        .create_if_missing(true)
        .journal_mode(SqliteJournalMode::Wal)
        .synchronous(SqliteSynchronous::Normal)
        .busy_timeout(Duration::from_secs(5))
        .foreign_keys(true);
    // A pooled connection that still counts a transaction as open is closed, not handed
    // out: when a write fails for lack of space (SQLITE_FULL) SQLite rolls the transaction
    // back itself, sqlx's own ROLLBACK then fails, and every later BEGIN on that connection
    // would fail too ("non-zero transaction depth") long after the disk has room again.
    Ok(SqlitePoolOptions::new()
        .max_connections(8)
        .before_acquire(|conn, _| Box::pin(async move { Ok(!conn.is_in_transaction()) }))
        .connect_with(options)
        .await?)
}

/// How long a request waits for a PostgreSQL connection (sqlx retries a refused connect
/// until then): while PostgreSQL is down or restarting, requests fail with a 503 after
/// this, well inside client timeouts, instead of hanging for sqlx's default 30 s.
const ACQUIRE_TIMEOUT: Duration = Duration::from_secs(1);

/// PostgreSQL, for production and for several nodes sharing one database.
async fn connect_postgres(url: &str, migrate: bool) -> anyhow::Result<PgPool> {
    if migrate && !Postgres::database_exists(url).await? {
        Postgres::create_database(url).await?;
    }
    Ok(PgPoolOptions::new()
        .max_connections(16)
        .acquire_timeout(ACQUIRE_TIMEOUT)
        .connect(url)
        .await?)
}

/// The embedded migrations of the dialect `url` names. Migrations applied by a newer Ward
/// are ignored, not refused: during a rolling upgrade the previous version restarts against
/// a database the next one has expanded (README "Upgrades").
pub fn migrator(url: &str) -> sqlx::migrate::Migrator {
    let mut m = if url.starts_with("sqlite:") {
        sqlx::migrate!("./migrations/sqlite")
    } else {
        sqlx::migrate!("./migrations/postgres")
    };
    m.set_ignore_missing(true);
    m
}

/// A transaction of either database.
pub enum Tx {
    Sqlite(sqlx::Transaction<'static, Sqlite>),
    Postgres(sqlx::Transaction<'static, Postgres>),
}

impl Tx {
    pub async fn commit(self) -> Result<(), sqlx::Error> {
        match self {
            Self::Sqlite(tx) => tx.commit().await,
            Self::Postgres(tx) => tx.commit().await,
        }
    }

    pub async fn rollback(self) -> Result<(), sqlx::Error> {
        match self {
            Self::Sqlite(tx) => tx.rollback().await,
            Self::Postgres(tx) => tx.rollback().await,
        }
    }
}

/// Where a query runs: the pool, or an open transaction.
pub enum On<'a> {
    Pool(&'a Db),
    Tx(&'a mut Tx),
}

impl<'a> From<&'a Db> for On<'a> {
    fn from(db: &'a Db) -> Self {
        Self::Pool(db)
    }
}

impl<'a> From<&'a mut Tx> for On<'a> {
    fn from(tx: &'a mut Tx) -> Self {
        Self::Tx(tx)
    }
}

/// One bound parameter, typed as its column is (a `NULL` keeps its type: PostgreSQL checks
/// it). Deliberately not `Debug`: parameters carry personal data and ciphertext.
#[derive(Clone)]
pub enum Arg {
    Text(Option<String>),
    Int(Option<i64>),
    Int32(Option<i32>),
    Bool(bool),
    Bytes(Option<Vec<u8>>),
}

impl From<&str> for Arg {
    fn from(v: &str) -> Self {
        Self::Text(Some(v.to_owned()))
    }
}
impl From<String> for Arg {
    fn from(v: String) -> Self {
        Self::Text(Some(v))
    }
}
impl From<&String> for Arg {
    fn from(v: &String) -> Self {
        Self::Text(Some(v.clone()))
    }
}
impl From<Option<String>> for Arg {
    fn from(v: Option<String>) -> Self {
        Self::Text(v)
    }
}
impl From<&Option<String>> for Arg {
    fn from(v: &Option<String>) -> Self {
        Self::Text(v.clone())
    }
}
impl From<Option<&str>> for Arg {
    fn from(v: Option<&str>) -> Self {
        Self::Text(v.map(str::to_owned))
    }
}
impl From<i64> for Arg {
    fn from(v: i64) -> Self {
        Self::Int(Some(v))
    }
}
impl From<Option<i64>> for Arg {
    fn from(v: Option<i64>) -> Self {
        Self::Int(v)
    }
}
impl From<i32> for Arg {
    fn from(v: i32) -> Self {
        Self::Int32(Some(v))
    }
}
impl From<bool> for Arg {
    fn from(v: bool) -> Self {
        Self::Bool(v)
    }
}
impl From<Vec<u8>> for Arg {
    fn from(v: Vec<u8>) -> Self {
        Self::Bytes(Some(v))
    }
}
impl From<&Vec<u8>> for Arg {
    fn from(v: &Vec<u8>) -> Self {
        Self::Bytes(Some(v.clone()))
    }
}
impl From<&[u8]> for Arg {
    fn from(v: &[u8]) -> Self {
        Self::Bytes(Some(v.to_vec()))
    }
}
impl From<&Option<Vec<u8>>> for Arg {
    fn from(v: &Option<Vec<u8>>) -> Self {
        Self::Bytes(v.clone())
    }
}

/// A statement and its parameters, built once for both dialects; runtime-checked like
/// `sqlx::query`. Parameters are appended in order: [`Query::bind`] for the `$n` the text
/// already holds, [`Query::push_bind`] to append the next `$n` while building.
pub struct Query {
    sql: String,
    args: Vec<Arg>,
}

/// Starts a query.
pub fn query(sql: impl Into<String>) -> Query {
    Query {
        sql: sql.into(),
        args: Vec::new(),
    }
}

impl Query {
    pub fn bind(mut self, value: impl Into<Arg>) -> Self {
        self.args.push(value.into());
        self
    }

    pub fn push(&mut self, sql: impl AsRef<str>) -> &mut Self {
        self.sql.push_str(sql.as_ref());
        self
    }

    /// Binds `value` as the next parameter and appends its placeholder.
    pub fn push_bind(&mut self, value: impl Into<Arg>) -> &mut Self {
        self.args.push(value.into());
        // Writing to a String cannot fail.
        let _ = write!(self.sql, "${}", self.args.len());
        self
    }

    /// Appends `(a, b, …)`, one parameter per item.
    pub fn push_list<T: Into<Arg>>(&mut self, items: impl IntoIterator<Item = T>) -> &mut Self {
        self.push("(");
        for (i, item) in items.into_iter().enumerate() {
            if i > 0 {
                self.push(", ");
            }
            self.push_bind(item);
        }
        self.push(")")
    }

    /// Appends `VALUES (…), (…)`: one parenthesised row per item, its parameters from `row`.
    pub fn push_values<T>(
        &mut self,
        items: impl IntoIterator<Item = T>,
        row: impl Fn(T) -> Vec<Arg>,
    ) -> &mut Self {
        self.push(" VALUES ");
        for (i, item) in items.into_iter().enumerate() {
            if i > 0 {
                self.push(", ");
            }
            self.push_list(row(item));
        }
        self
    }

    /// Runs the statement; returns the number of rows it changed.
    pub async fn execute<'a>(self, on: impl Into<On<'a>>) -> Result<u64, sqlx::Error> {
        let done = match on.into() {
            On::Pool(Db::Sqlite(pool)) => self.sqlite().execute(pool).await?.rows_affected(),
            On::Pool(Db::Postgres(pool)) => self.postgres().execute(pool).await?.rows_affected(),
            On::Tx(Tx::Sqlite(tx)) => self.sqlite().execute(&mut **tx).await?.rows_affected(),
            On::Tx(Tx::Postgres(tx)) => self.postgres().execute(&mut **tx).await?.rows_affected(),
        };
        Ok(done)
    }

    pub async fn fetch_all<'a>(self, on: impl Into<On<'a>>) -> Result<Vec<Row>, sqlx::Error> {
        Ok(match on.into() {
            On::Pool(Db::Sqlite(pool)) => rows(self.sqlite().fetch_all(pool).await?, Row::Sqlite),
            On::Pool(Db::Postgres(pool)) => {
                rows(self.postgres().fetch_all(pool).await?, Row::Postgres)
            }
            On::Tx(Tx::Sqlite(tx)) => rows(self.sqlite().fetch_all(&mut **tx).await?, Row::Sqlite),
            On::Tx(Tx::Postgres(tx)) => {
                rows(self.postgres().fetch_all(&mut **tx).await?, Row::Postgres)
            }
        })
    }

    pub async fn fetch_optional<'a>(
        self,
        on: impl Into<On<'a>>,
    ) -> Result<Option<Row>, sqlx::Error> {
        Ok(match on.into() {
            On::Pool(Db::Sqlite(pool)) => {
                self.sqlite().fetch_optional(pool).await?.map(Row::Sqlite)
            }
            On::Pool(Db::Postgres(pool)) => self
                .postgres()
                .fetch_optional(pool)
                .await?
                .map(Row::Postgres),
            On::Tx(Tx::Sqlite(tx)) => self
                .sqlite()
                .fetch_optional(&mut **tx)
                .await?
                .map(Row::Sqlite),
            On::Tx(Tx::Postgres(tx)) => self
                .postgres()
                .fetch_optional(&mut **tx)
                .await?
                .map(Row::Postgres),
        })
    }

    pub async fn fetch_one<'a>(self, on: impl Into<On<'a>>) -> Result<Row, sqlx::Error> {
        self.fetch_optional(on)
            .await?
            .ok_or(sqlx::Error::RowNotFound)
    }

    /// The first column of the one row.
    pub async fn scalar_one<'a, T: Value>(self, on: impl Into<On<'a>>) -> Result<T, sqlx::Error> {
        self.fetch_one(on).await?.try_get(0)
    }

    /// The first column of the row, if there is one.
    pub async fn scalar_optional<'a, T: Value>(
        self,
        on: impl Into<On<'a>>,
    ) -> Result<Option<T>, sqlx::Error> {
        self.fetch_optional(on)
            .await?
            .map(|r| r.try_get(0))
            .transpose()
    }

    /// The first column of every row.
    pub async fn scalar_all<'a, T: Value>(
        self,
        on: impl Into<On<'a>>,
    ) -> Result<Vec<T>, sqlx::Error> {
        self.fetch_all(on)
            .await?
            .iter()
            .map(|r| r.try_get(0))
            .collect()
    }

    fn sqlite(self) -> sqlx::query::Query<'static, Sqlite, <Sqlite as Database>::Arguments> {
        bind_all(self.sql, self.args)
    }

    fn postgres(self) -> sqlx::query::Query<'static, Postgres, <Postgres as Database>::Arguments> {
        bind_all(self.sql, self.args)
    }
}

/// The driver's query: the text (built only from constants and placeholders, never from
/// values, which is what `AssertSqlSafe` asserts) with every parameter bound.
fn bind_all<DB: Database>(
    sql: String,
    args: Vec<Arg>,
) -> sqlx::query::Query<'static, DB, DB::Arguments>
where
    Option<String>: for<'t> Encode<'t, DB> + Type<DB>,
    Option<i64>: for<'t> Encode<'t, DB> + Type<DB>,
    Option<i32>: for<'t> Encode<'t, DB> + Type<DB>,
    bool: for<'t> Encode<'t, DB> + Type<DB>,
    Option<Vec<u8>>: for<'t> Encode<'t, DB> + Type<DB>,
{
    args.into_iter()
        .fold(sqlx::query(AssertSqlSafe(sql)), |q, arg| match arg {
            Arg::Text(v) => q.bind(v),
            Arg::Int(v) => q.bind(v),
            Arg::Int32(v) => q.bind(v),
            Arg::Bool(v) => q.bind(v),
            Arg::Bytes(v) => q.bind(v),
        })
}

fn rows<R>(found: Vec<R>, wrap: fn(R) -> Row) -> Vec<Row> {
    found.into_iter().map(wrap).collect()
}

/// A value both drivers decode.
pub trait Value:
    for<'r> Decode<'r, Sqlite> + Type<Sqlite> + for<'r> Decode<'r, Postgres> + Type<Postgres>
{
}

impl<T> Value for T where
    T: for<'r> Decode<'r, Sqlite> + Type<Sqlite> + for<'r> Decode<'r, Postgres> + Type<Postgres>
{
}

/// A result row of either database.
pub enum Row {
    Sqlite(SqliteRow),
    Postgres(PgRow),
}

impl Row {
    /// The column `index` (a name or a position) decoded as `T`.
    pub fn try_get<T: Value, I>(&self, index: I) -> Result<T, sqlx::Error>
    where
        I: ColumnIndex<SqliteRow> + ColumnIndex<PgRow>,
    {
        match self {
            Self::Sqlite(row) => sqlx::Row::try_get(row, index),
            Self::Postgres(row) => sqlx::Row::try_get(row, index),
        }
    }
}
