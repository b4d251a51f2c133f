//! The migration plan of an upgrade. Migrations are expand-then-contract so that version N
//! and N+1 run side by side on one database during a rolling upgrade:
//!
//! - an **expand** migration only adds (tables, nullable columns or columns with a default,
//!   indexes): version N, which does not know it, keeps working;
//! - a **contract** migration removes or tightens what no running version uses any more; it
//!   ships one release after the code stopped using the thing, and runs only when every node
//!   runs the new version.
//!
//! Each migration from 0008 on declares its phase on its first line (`-- phase: expand` or
//! `-- phase: contract`); 0001–0007 predate the rule (the baseline every deployment has).

use std::collections::HashSet;

use anyhow::Context;
use sqlx::Connection;

/// The last migration of the baseline, written before phases were declared.
pub const BASELINE: i64 = 7;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    Baseline,
    Expand,
    Contract,
    /// No phase line: treated as unsafe.
    Undeclared,
}

impl Phase {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Baseline => "baseline",
            Self::Expand => "expand",
            Self::Contract => "contract",
            Self::Undeclared => "undeclared",
        }
    }
}

/// The phase a migration's SQL declares.
pub fn phase_of(version: i64, sql: &str) -> Phase {
    if version <= BASELINE {
        return Phase::Baseline;
    }
    match sql.lines().next().map(str::trim) {
        Some("-- phase: expand") => Phase::Expand,
        Some("-- phase: contract") => Phase::Contract,
        _ => Phase::Undeclared,
    }
}

/// Statements an expand migration may not contain: they break the version still running.
pub fn contract_only_statements(sql: &str) -> Vec<&'static str> {
    let upper: String = sql
        .lines()
        .filter(|l| !l.trim_start().starts_with("--"))
        .collect::<Vec<_>>()
        .join("\n")
        .to_uppercase();
    let squashed = upper.split_whitespace().collect::<Vec<_>>().join(" ");
    [
        "DROP TABLE",
        "DROP COLUMN",
        "RENAME",
        "SET NOT NULL",
        "ALTER COLUMN",
        "DROP INDEX",
        "DROP TRIGGER",
    ]
    .into_iter()
    .filter(|s| squashed.contains(s))
    .collect()
}

#[derive(Debug, Clone)]
pub struct Migration {
    pub version: i64,
    pub description: String,
    pub phase: Phase,
}

#[derive(Debug)]
pub struct Plan {
    /// No migration table yet: a new database.
    pub fresh: bool,
    pub applied: usize,
    pub pending: Vec<Migration>,
    /// Applied by a newer Ward than this one (during a rolling upgrade, the older nodes see
    /// these).
    pub newer: Vec<i64>,
}

impl Plan {
    /// Whether the pending migrations can run while the previous version serves.
    pub fn safe_while_previous_runs(&self) -> bool {
        self.fresh
            || self
                .pending
                .iter()
                .all(|m| matches!(m.phase, Phase::Expand))
    }
}

/// Compares the embedded migrations with the database's `_sqlx_migrations`, changing
/// nothing (a missing PostgreSQL database counts as fresh).
pub async fn plan(url: &str) -> anyhow::Result<Plan> {
    let migrator = crate::store::Store::migrator(url);
    let applied: Option<Vec<i64>> = if url.starts_with("sqlite:") {
        let path = crate::ops::backup::sqlite_path(url)?;
        if !path.exists() {
            None
        } else {
            let options = sqlx::sqlite::SqliteConnectOptions::new()
                .filename(&path)
                .read_only(true);
            let mut conn = sqlx::SqliteConnection::connect_with(&options)
                .await
                .with_context(|| format!("opening {}", path.display()))?;
            applied_versions_sqlite(&mut conn).await?
        }
    } else {
        use sqlx::migrate::MigrateDatabase;
        if !sqlx::Postgres::database_exists(url).await? {
            None
        } else {
            let mut conn = sqlx::PgConnection::connect(url).await?;
            let exists: bool =
                sqlx::query_scalar("SELECT to_regclass('_sqlx_migrations') IS NOT NULL")
                    .fetch_one(&mut conn)
                    .await?;
            if exists {
                Some(
                    sqlx::query_scalar("SELECT version FROM _sqlx_migrations WHERE success")
                        .fetch_all(&mut conn)
                        .await?,
                )
            } else {
                None
            }
        }
    };
    let fresh = applied.is_none();
    let applied: HashSet<i64> = applied.unwrap_or_default().into_iter().collect();
    let known: HashSet<i64> = migrator.iter().map(|m| m.version).collect();
    let pending = migrator
        .iter()
        .filter(|m| !m.migration_type.is_down_migration() && !applied.contains(&m.version))
        .map(|m| Migration {
            version: m.version,
            description: m.description.to_string(),
            phase: phase_of(m.version, m.sql.as_str()),
        })
        .collect();
    let mut newer: Vec<i64> = applied.difference(&known).copied().collect();
    newer.sort_unstable();
    Ok(Plan {
        fresh,
        applied: applied.len(),
        pending,
        newer,
    })
}

async fn applied_versions_sqlite(
    conn: &mut sqlx::SqliteConnection,
) -> anyhow::Result<Option<Vec<i64>>> {
    let exists: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM sqlite_master WHERE type = 'table' AND name = '_sqlx_migrations'",
    )
    .fetch_one(&mut *conn)
    .await?;
    if exists == 0 {
        return Ok(None);
    }
    Ok(Some(
        sqlx::query_scalar("SELECT version FROM _sqlx_migrations WHERE success")
            .fetch_all(&mut *conn)
            .await?,
    ))
}

/// The plan as the operator reads it.
pub fn render(plan: &Plan) -> String {
    let mut out = String::new();
    if plan.fresh {
        out.push_str("new database: every migration runs at the first start\n");
    } else {
        out.push_str(&format!("{} migrations applied\n", plan.applied));
    }
    if plan.pending.is_empty() {
        out.push_str("no pending migrations\n");
    }
    for m in &plan.pending {
        out.push_str(&format!(
            "pending {:04} {:<28} {}\n",
            m.version,
            m.description,
            m.phase.as_str()
        ));
    }
    for v in &plan.newer {
        out.push_str(&format!(
            "applied {v:04} by a newer version (ignored by this one)\n"
        ));
    }
    if !plan.pending.is_empty() && !plan.fresh {
        if plan.safe_while_previous_runs() {
            out.push_str(
                "safe while the previous version runs: yes (expand only); upgrade node by node\n",
            );
        } else {
            out.push_str("safe while the previous version runs: NO (contract or undeclared migrations): stop every node of the previous version first\n");
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn phases_come_from_the_first_line() {
        assert_eq!(phase_of(3, ""), Phase::Baseline);
        assert_eq!(
            phase_of(8, "-- phase: expand\nALTER TABLE x ADD y TEXT;"),
            Phase::Expand
        );
        assert_eq!(phase_of(9, "-- phase: contract\n"), Phase::Contract);
        assert_eq!(phase_of(9, "ALTER TABLE x ADD y TEXT;"), Phase::Undeclared);
    }

    /// Both dialects have the same migrations; each after the baseline declares its phase,
    /// the same in both, and an expand migration neither drops, renames nor tightens.
    #[test]
    fn every_migration_declares_a_phase_its_sql_keeps() {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("migrations");
        let list = |dialect: &str| {
            let mut files: Vec<(i64, String, String)> = std::fs::read_dir(root.join(dialect))
                .unwrap()
                .map(|e| e.unwrap().path())
                .filter(|p| p.extension().is_some_and(|x| x == "sql"))
                .map(|p| {
                    let name = p.file_name().unwrap().to_str().unwrap().to_string();
                    let version = name.split('_').next().unwrap().parse().unwrap();
                    (version, name, std::fs::read_to_string(&p).unwrap())
                })
                .collect();
            files.sort();
            files
        };
        let (sqlite, postgres) = (list("sqlite"), list("postgres"));
        assert_eq!(
            sqlite.iter().map(|f| &f.1).collect::<Vec<_>>(),
            postgres.iter().map(|f| &f.1).collect::<Vec<_>>(),
            "the dialects have the same migrations"
        );
        for ((v, name, lite), (_, _, pg)) in sqlite.iter().zip(&postgres) {
            let phase = phase_of(*v, lite);
            assert_eq!(
                phase,
                phase_of(*v, pg),
                "{name}: same phase in both dialects"
            );
            assert_ne!(phase, Phase::Undeclared, "{name}: declare its phase");
            if phase == Phase::Expand {
                for sql in [lite, pg] {
                    assert_eq!(
                        contract_only_statements(sql),
                        Vec::<&str>::new(),
                        "{name}: an expand migration may only add"
                    );
                }
            }
        }
    }

    #[test]
    fn destructive_statements_are_found_across_lines_and_cases() {
        assert_eq!(
            contract_only_statements("alter table users\n  drop   column name;"),
            vec!["DROP COLUMN"]
        );
        assert!(
            contract_only_statements("-- DROP TABLE is for later\nCREATE TABLE t (a INT);")
                .is_empty()
        );
    }
}
