//! `ward config check`: the configuration is valid (it loaded) and every dependency it names
//! answers — the database, the root key (local file or KMS) against the database, Redis,
//! where checkpoints are published, the listen address, the TLS files, and each enabled
//! OIDC provider's discovery document. Changes nothing: no migration, no file but a probe
//! removed at once.

use std::time::Duration;

use crate::config::Config;
use crate::store::Store;

/// One line of the report.
pub struct Check {
    pub name: String,
    pub ok: bool,
    pub detail: String,
}

/// Each dependency gets this long to answer.
const TIMEOUT: Duration = Duration::from_secs(5);

async fn bounded<T>(
    what: impl std::future::Future<Output = anyhow::Result<T>>,
) -> anyhow::Result<T> {
    match tokio::time::timeout(TIMEOUT, what).await {
        Ok(r) => r,
        Err(_) => Err(anyhow::anyhow!("no answer within {} s", TIMEOUT.as_secs())),
    }
}

fn line(name: impl Into<String>, result: anyhow::Result<String>) -> Check {
    match result {
        Ok(detail) => Check {
            name: name.into(),
            ok: true,
            detail,
        },
        Err(e) => Check {
            name: name.into(),
            ok: false,
            detail: crate::startup::render(&e)
                .trim_start_matches("ward: ")
                .to_string(),
        },
    }
}

/// Runs every check; the caller prints [`render`] and exits 1 unless all are ok.
pub async fn run(config: &Config) -> Vec<Check> {
    let mut out = vec![Check {
        name: "configuration".into(),
        ok: true,
        detail: format!(
            "valid ({}, listening on {})",
            if config.is_postgres() {
                "PostgreSQL"
            } else {
                "SQLite"
            },
            config.bind
        ),
    }];
    // The plan opens one direct connection: an unreachable database fails at once (a pool
    // would retry until its timeout).
    let plan = bounded(async {
        crate::ops::migrate::plan(&config.database_url)
            .await
            .map_err(|e| crate::startup::StartupError::database(&config.database_url, &e).into())
    })
    .await;
    let store = match plan {
        Ok(p) => bounded(async {
            Store::connect_without_migrating(&config.database_url)
                .await
                .map_err(|e| {
                    crate::startup::StartupError::database(&config.database_url, &e).into()
                })
        })
        .await
        .map(|s| (s, p)),
        Err(e) => Err(e),
    };
    let store = match store {
        Ok((s, plan)) => {
            let fresh = plan.fresh;
            out.push(line(
                "database",
                Ok(plan).map(|p| {
                    let shown = crate::startup::redact_url(&config.database_url);
                    if p.fresh {
                        format!("{shown} reachable; new (migrated at the first start)")
                    } else if p.pending.is_empty() {
                        format!("{shown} reachable; schema up to date")
                    } else {
                        format!(
                            "{shown} reachable; {} pending migrations (ward migrate --check)",
                            p.pending.len()
                        )
                    }
                }),
            ));
            (!fresh).then_some(s)
        }
        Err(e) => {
            out.push(line("database", Err(e)));
            None
        }
    };
    out.push(line(
        "root key",
        bounded(async {
            let root = crate::app::open_root_existing(config)?;
            match &store {
                Some(store) => {
                    crate::crypto::root::check_against_database(store, root.as_ref()).await?;
                    Ok(format!(
                        "{} (key id {}) opens this database's keys",
                        root.describe(),
                        root.key_id()
                    ))
                }
                None => Ok(format!(
                    "{} (key id {}); no database keys to check yet",
                    root.describe(),
                    root.key_id()
                )),
            }
        })
        .await,
    ));
    if let Some(url) = &config.redis_url {
        out.push(line("redis", bounded(ping_redis(url)).await));
    }
    out.push(line(
        "audit checkpoints",
        bounded(async {
            match crate::app::checkpoint_sink(config)? {
                None => {
                    Ok("not published outside the database (WARD_AUDIT_CHECKPOINT_DIR=off)".into())
                }
                Some(sink) => {
                    let latest = sink.latest().await?;
                    let size = latest
                        .as_deref()
                        .and_then(crate::audit::publish::checkpoint_size);
                    Ok(match size {
                        Some(n) => format!("{}: latest published size {n}", sink.describe()),
                        None => format!("{}: reachable, nothing published yet", sink.describe()),
                    })
                }
            }
        })
        .await,
    ));
    out.push(line("listen address", check_bind(config).await));
    if let Some(tls) = &config.tls {
        out.push(line(
            "tls",
            crate::tls::acceptor(&tls.cert, &tls.key)
                .map(|_| format!("{} and its key load", tls.cert.display())),
        ));
    }
    if let Some(store) = &store {
        match store.identity.find_providers().await {
            Ok(providers) => {
                for p in providers
                    .into_iter()
                    .filter(|p| p.enabled && p.kind == "oidc")
                {
                    let issuer = serde_json::from_str::<serde_json::Value>(&p.config)
                        .ok()
                        .and_then(|c| c["issuer"].as_str().map(str::to_string));
                    let name = format!("oidc {}", p.id);
                    out.push(match issuer {
                        Some(issuer) => line(name, bounded(discover(&issuer)).await),
                        None => line(name, Err(anyhow::anyhow!("the provider has no issuer"))),
                    });
                }
            }
            Err(e) => out.push(line("sso providers", Err(e.into()))),
        }
    }
    out
}

async fn ping_redis(url: &str) -> anyhow::Result<String> {
    let shown = crate::startup::redact_url(url);
    let client = redis::Client::open(url).map_err(|e| anyhow::anyhow!("{shown}: {e}"))?;
    let mut conn = client
        .get_multiplexed_async_connection()
        .await
        .map_err(|e| {
            anyhow::anyhow!(
                "cannot reach Redis at {shown}: {}",
                if e.is_connection_refusal() {
                    "connection refused".to_string()
                } else {
                    e.to_string()
                }
            )
        })?;
    let pong: String = redis::cmd("PING")
        .query_async(&mut conn)
        .await
        .map_err(|e| anyhow::anyhow!("{shown}: {e}"))?;
    anyhow::ensure!(pong == "PONG", "unexpected answer to PING");
    Ok(format!("{} answers PING", crate::startup::redact_url(url)))
}

async fn check_bind(config: &Config) -> anyhow::Result<String> {
    match tokio::net::TcpListener::bind(config.bind).await {
        Ok(_) => Ok(format!("{} is free", config.bind)),
        Err(e) => Err(crate::startup::StartupError::bind(config.bind, &e).into()),
    }
}

async fn discover(issuer: &str) -> anyhow::Result<String> {
    let url = format!(
        "{}/.well-known/openid-configuration",
        issuer.trim_end_matches('/')
    );
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()?;
    let reply = client.get(&url).send().await?;
    anyhow::ensure!(
        reply.status().is_success(),
        "{url} answered {}",
        reply.status()
    );
    let doc: serde_json::Value = reply.json().await?;
    anyhow::ensure!(
        doc["issuer"].as_str() == Some(issuer),
        "{url} names another issuer"
    );
    Ok(format!("{url} answers"))
}

/// The report as a table; the last line says how many failed.
pub fn render(checks: &[Check]) -> String {
    let width = checks.iter().map(|c| c.name.len()).max().unwrap_or(0);
    let mut out = String::new();
    for c in checks {
        out.push_str(&format!(
            "{:<width$}  {:<6}  {}\n",
            c.name,
            if c.ok { "ok" } else { "FAILED" },
            c.detail
        ));
    }
    let failed = checks.iter().filter(|c| !c.ok).count();
    out.push_str(&match failed {
        0 => "all checks passed\n".to_string(),
        n => format!("{n} of {} checks failed\n", checks.len()),
    });
    out
}
