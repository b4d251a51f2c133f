//! Command-line options the benches share (`cargo bench --bench NAME -- --help`).

/// Which databases a bench runs on, and where PostgreSQL is.
#[derive(Debug, Clone, clap::Args)]
pub struct Databases {
    /// Databases to run on, comma-separated.
    #[arg(long = "db", value_delimiter = ',', default_values = ["sqlite", "postgres"],
          value_parser = ["sqlite", "postgres"])]
    pub dbs: Vec<String>,
    /// PostgreSQL server (a fresh database is created on it per run).
    #[arg(long, default_value = "postgres://postgres@127.0.0.1:5432",
          value_parser = |s: &str| anyhow::Ok(s.trim_end_matches('/').to_string()))]
    pub pg_url: String,
    /// Passed by `cargo bench` to `harness = false` targets; ignored.
    #[arg(long = "bench", hide = true)]
    _bench: bool,
}
