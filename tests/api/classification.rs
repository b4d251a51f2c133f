//! `policies/data_classification.toml` classifies every column of both dialects, and only
//! columns that exist.

use std::collections::BTreeSet;

use sqlx::{AssertSqlSafe, Row};

use crate::helpers::{Db, fresh_database, on_both_databases};

const CLASSIFICATION: &str = include_str!("../../policies/data_classification.toml");
const CLASSES: &[&str] = &["public", "internal", "personal", "phi", "secret"];
const ACTIONS: &[&str] = &["export", "erase", "anonymise", "retain"];
const KEYS: &[&str] = &["author", "subject", "channel", "system"];

async fn live_columns(db: Db, url: &str) -> BTreeSet<(String, String)> {
    ward::store::Store::connect(url).await.unwrap();
    let sql = match db {
        Db::Sqlite => {
            "SELECT m.name AS t, p.name AS c FROM sqlite_master m JOIN pragma_table_info(m.name) p \
                       WHERE m.type = 'table' AND m.name NOT LIKE 'sqlite_%'"
        }
        Db::Postgres => {
            "SELECT table_name::text AS t, column_name::text AS c FROM information_schema.columns \
                         WHERE table_schema = 'public'"
        }
    };
    let rows: Vec<(String, String)> = match db {
        Db::Sqlite => {
            let pool = sqlx::SqlitePool::connect(url).await.unwrap();
            sqlx::query(AssertSqlSafe(sql))
                .fetch_all(&pool)
                .await
                .unwrap()
                .iter()
                .map(|r| (r.get("t"), r.get("c")))
                .collect()
        }
        Db::Postgres => {
            let pool = sqlx::PgPool::connect(url).await.unwrap();
            let rows = sqlx::query(AssertSqlSafe(sql))
                .fetch_all(&pool)
                .await
                .unwrap()
                .iter()
                .map(|r| (r.get("t"), r.get("c")))
                .collect();
            pool.close().await;
            rows
        }
    };
    rows.into_iter().collect()
}

async fn every_column_is_classified_and_every_classification_exists(db: Db) {
    let (url, _cleanup) = fresh_database(db);
    let live = live_columns(db, &url).await;
    let doc: toml::Table = CLASSIFICATION
        .parse()
        .expect("the classification is valid TOML");
    let mut classified = BTreeSet::new();
    let mut problems = Vec::new();
    for (table, columns) in &doc {
        for (column, entry) in columns.as_table().expect("a table of columns") {
            classified.insert((table.clone(), column.clone()));
            let get = |k: &str| entry.get(k).and_then(|v| v.as_str());
            let class = get("class").unwrap_or("");
            let gdpr = get("gdpr").unwrap_or("");
            if !CLASSES.contains(&class) {
                problems.push(format!("{table}.{column}: class {class:?}"));
            }
            if !ACTIONS.contains(&gdpr) {
                problems.push(format!("{table}.{column}: gdpr {gdpr:?}"));
            }
            if gdpr == "retain" && get("reason").is_none_or(str::is_empty) {
                problems.push(format!("{table}.{column}: retain needs a reason"));
            }
            if ["personal", "phi", "secret"].contains(&class) {
                match entry.get("encrypted").and_then(|v| v.as_bool()) {
                    Some(true) if !get("key").is_some_and(|k| KEYS.contains(&k)) => {
                        problems.push(format!("{table}.{column}: encrypted needs a key scope"))
                    }
                    Some(false) if get("reason_clear").is_none_or(str::is_empty) => problems.push(
                        format!("{table}.{column}: stored in clear needs reason_clear"),
                    ),
                    None => problems.push(format!(
                        "{table}.{column}: class {class} must say whether it is encrypted"
                    )),
                    _ => {}
                }
            }
        }
    }
    for (t, c) in live.difference(&classified) {
        problems.push(format!("unclassified column {t}.{c}"));
    }
    for (t, c) in classified.difference(&live) {
        problems.push(format!("classified column {t}.{c} does not exist"));
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
    // The minimum: content and profiles are encrypted.
    for (t, c) in [
        ("messages", "text"),
        ("messages", "data"),
        ("users", "data"),
        ("channels", "data"),
        ("reactions", "data"),
    ] {
        assert_eq!(
            doc[t][c]["encrypted"].as_bool(),
            Some(true),
            "{t}.{c} is encrypted"
        );
    }
}

on_both_databases!(every_column_is_classified_and_every_classification_exists);
