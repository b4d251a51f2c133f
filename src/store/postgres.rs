//! PostgreSQL, for production and for several nodes sharing one database.

use sqlx::migrate::MigrateDatabase;
use sqlx::postgres::PgPoolOptions;

pub struct PgStore {
    pool: sqlx::PgPool,
}

impl PgStore {
    /// Connects, creating the database when it does not exist yet, and migrates.
    pub async fn connect(url: &str) -> anyhow::Result<Self> {
        if !sqlx::Postgres::database_exists(url).await? {
            sqlx::Postgres::create_database(url).await?;
        }
        let pool = PgPoolOptions::new()
            .max_connections(16)
            .connect(url)
            .await?;
        sqlx::migrate!("./migrations/postgres").run(&pool).await?;
        Ok(Self { pool })
    }
}

super::sql::impl_sql_store!(PgStore, sqlx::Postgres, sqlx::postgres::PgRow);
