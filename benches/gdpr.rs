//! GDPR export time (`cargo bench --bench gdpr`), on SQLite and PostgreSQL: one user with
//! `--messages` messages (default 100,000) in a channel they share with another user, each
//! message stored encrypted with its `message.create` audit record (so the export carries as
//! many audit entries, each with an inclusion proof), plus `--reactions` reactions they left
//! on the other user's messages. Measures `export_user` (phases from its progress calls),
//! the archive's size, the process's memory, and `verify_export` on the result.
//!
//! Options: `--db sqlite,postgres` `--messages 100000` `--reactions 1000` `--conc 8`
//! `--pg-url postgres://postgres@127.0.0.1:5432`.

// A benchmark or test reports a failure by panicking: unwrapping is how it fails.
#![allow(clippy::unwrap_used)]

#[path = "common/options.rs"]
mod common;

use std::sync::Arc;
use std::time::Instant;

use serde_json::json;
use ward::app::{AppState, Application};
use ward::audit::{AuditEvent, EventType};
use ward::config::Config;
use ward::store::{ChannelRow, MemberRow, MessageRow, ReactionRow, UserRow};

/// GDPR export and erasure of one data subject among many.
#[derive(clap::Parser)]
struct Options {
    #[command(flatten)]
    db: common::Databases,
    /// Messages of the data subject.
    #[arg(long, default_value_t = 100_000)]
    messages: usize,
    /// Reactions of the data subject.
    #[arg(long, default_value_t = 1_000)]
    reactions: usize,
    /// Seeding tasks in flight.
    #[arg(long, default_value_t = 8)]
    conc: usize,
}

/// `VmRSS` and `VmHWM` of this process, in MiB.
fn memory() -> (u64, u64) {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|kib| kib.parse::<u64>().ok())
            .map_or(0, |kib| kib / 1024)
    };
    (field("VmRSS:"), field("VmHWM:"))
}

fn message(id: String, user: &str, text: String, at: i64) -> MessageRow {
    MessageRow {
        id,
        cid: "messaging:bench".into(),
        user_id: user.into(),
        kind: "regular".into(),
        text,
        data: serde_json::from_value(json!({"attachments": [], "mood": "fine"})).unwrap(),
        parent_id: None,
        show_in_channel: false,
        silent: false,
        pinned: false,
        reply_count: 0,
        created_at: at,
        updated_at: at,
        deleted_at: None,
        text_updated_at: None,
    }
}

async fn seed(state: &AppState, o: &Options) -> anyhow::Result<()> {
    let now = ward::time::now_micros();
    for id in ["subject", "other"] {
        let data = json!({"name": format!("Bench {id}"), "email": format!("{id}@example.org")});
        state
            .store
            .users
            .upsert_user(
                &UserRow {
                    id: id.into(),
                    role: "user".into(),
                    data: serde_json::from_value(data)?,
                    created_at: now,
                    updated_at: now,
                    last_active: None,
                    deactivated_at: None,
                    deleted_at: None,
                    banned: false,
                },
                &[],
            )
            .await?;
    }
    let member = |user: &str| MemberRow {
        cid: "messaging:bench".into(),
        user_id: user.into(),
        channel_role: "channel_member".into(),
        created_at: now,
        updated_at: now,
        ..Default::default()
    };
    state
        .store
        .channels
        .insert_channel(
            &ChannelRow {
                cid: "messaging:bench".into(),
                kind: "messaging".into(),
                id: "bench".into(),
                created_by_id: Some("subject".into()),
                data: Default::default(),
                created_at: now,
                updated_at: now,
                last_message_at: None,
                deleted_at: None,
                truncated_at: None,
                frozen: false,
                message_count: 0,
                member_count: 0,
            },
            &[member("subject"), member("other")],
            &[],
        )
        .await?;

    // The other user's messages (as many as the subject's reactions), then the subject's.
    let t0 = now - 10_000_000_000;
    let mut others = Vec::new();
    for i in 0..o.reactions {
        let id = uuid::Uuid::now_v7().to_string();
        let row = message(id.clone(), "other", format!("other {i}"), t0 + i as i64);
        state
            .store
            .messages
            .insert_message(&row, false, &[])
            .await?;
        others.push(id);
    }
    for (i, id) in others.iter().enumerate() {
        state
            .store
            .messages
            .upsert_reaction(
                &ReactionRow {
                    message_id: id.clone(),
                    user_id: "subject".into(),
                    kind: "like".into(),
                    score: 1,
                    data: serde_json::from_value(json!({"i": i}))?,
                    created_at: now,
                    updated_at: now,
                },
                false,
            )
            .await?;
    }
    let started = Instant::now();
    let per_task = o.messages.div_ceil(o.conc);
    let mut tasks = Vec::new();
    for t in 0..o.conc {
        let state = state.clone();
        let (from, to) = (t * per_task, ((t + 1) * per_task).min(o.messages));
        tasks.push(tokio::spawn(async move {
            for i in from..to {
                let id = uuid::Uuid::now_v7().to_string();
                let text = format!("subject {i}: blood pressure 120/80, next visit in two weeks");
                let row = message(id.clone(), "subject", text, t0 + 1_000_000 + i as i64);
                let record = AuditEvent::new(EventType::MessageCreate)
                    .actor("subject")
                    .subject("subject")
                    .object("message", id)
                    .meta("channel_type", "messaging")
                    .meta("message_type", "regular");
                let messages = &state.store.messages;
                state
                    .audit
                    .audited([record], async |records| {
                        messages.insert_message(&row, false, &records).await
                    })
                    .await?;
            }
            anyhow::Ok(())
        }));
    }
    for t in tasks {
        t.await??;
    }
    let size = state.audit.sync().await?;
    println!(
        "seeded {} messages (+{} of the other user, {} reactions) in {:.1} s; audit tree size {size}",
        o.messages,
        o.reactions,
        o.reactions,
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let o = <Options as clap::Parser>::parse();
    // Failures inside the export are logged (the error it returns is neutral).
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("WARD_LOG")
                .unwrap_or_else(|_| "warn,sqlx=warn".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    for db in &o.db.dbs {
        let name = format!("ward_bench_gdpr_{}", uuid::Uuid::new_v4().simple());
        let dir = std::env::temp_dir().join(&name);
        std::fs::create_dir_all(&dir)?;
        let url = match db.as_str() {
            "sqlite" => format!("sqlite://{}", dir.join("ward.db").display()),
            "postgres" => format!("{}/{name}", o.db.pg_url),
            other => anyhow::bail!("--db takes sqlite and/or postgres, not {other}"),
        };
        let env = [
            ("WARD_BIND", "127.0.0.1:0".to_string()),
            ("WARD_DATA_DIR", dir.display().to_string()),
            ("WARD_DATABASE_URL", url),
            ("WARD_API_KEY", "bench".to_string()),
            (
                "WARD_API_SECRET",
                "bench-secret-that-is-long-enough".to_string(),
            ),
        ];
        let config = Config::from_sources(None, |k| {
            env.iter().find(|(n, _)| *n == k).map(|(_, v)| v.clone())
        })?;
        let app = Application::build(config).await?;
        let state = app.state();
        seed(&state, &o).await?;
        if db == "postgres" {
            // Planner statistics as after autovacuum, not as right after a bulk load.
            use sqlx::Connection;
            let mut c = sqlx::PgConnection::connect(&state.config.database_url).await?;
            sqlx::raw_sql("ANALYZE").execute(&mut c).await?;
        }

        let out = dir.join("subject.zip");
        let (rss_before, _) = memory();
        let started = Instant::now();
        let marks = Arc::new(std::sync::Mutex::new(Vec::new()));
        let mut progress = {
            let marks = marks.clone();
            move |done: u64, total: u64| {
                marks
                    .lock()
                    .unwrap()
                    .push((started.elapsed().as_secs_f64(), done, total));
            }
        };
        let manifest =
            ward::gdpr::export::export_user(&state.gdpr(), "subject", &out, &mut progress)
                .await
                .map_err(|e| anyhow::anyhow!("{e}"))?;
        let secs = started.elapsed().as_secs_f64();
        let (rss_after, hwm) = memory();
        let marks = marks.lock().unwrap().clone();
        let messages = manifest.file("messages.ndjson").map_or(0, |f| f.count);
        let entries = manifest.file("audit.ndjson").map_or(0, |f| f.count);
        let counted = marks.first().map_or(0.0, |m| m.0);
        let messages_done = marks.iter().find(|m| m.1 >= messages).map_or(0.0, |m| m.0);
        let audit_start = marks.iter().find(|m| m.1 > messages).map_or(secs, |m| m.0);
        let bytes = std::fs::metadata(&out)?.len();
        println!(
            "RESULT {db} export: {messages} messages, {} reactions, {entries} audit entries with proofs in {secs:.2} s \
             ({:.0} messages/s); archive {:.1} MiB; RSS {rss_before} → {rss_after} MiB (peak {hwm} MiB, seeding included)",
            manifest.file("reactions.ndjson").map_or(0, |f| f.count),
            messages as f64 / secs,
            bytes as f64 / (1 << 20) as f64
        );
        println!(
            "RESULT {db} phases: counting {counted:.2} s, messages {:.2} s, reactions and the rest {:.2} s, \
             audit entries and proofs (first page included in the previous) ~{:.2} s",
            messages_done - counted,
            audit_start - messages_done,
            secs - audit_start
        );
        let started = Instant::now();
        ward::gdpr::export::verify_export(&out, &state.audit.verifier_key)?;
        println!(
            "RESULT {db} verify-export: {:.2} s",
            started.elapsed().as_secs_f64()
        );
        // Erasure of the same user: shred, remove rows, certificate, unlink pseudonyms.
        let started = Instant::now();
        let options = ward::gdpr::erase::Options {
            user: ward::gdpr::erase::Mode::Hard,
            messages: ward::gdpr::erase::Mode::Hard,
        };
        let certificate =
            ward::gdpr::erase::erase_user(&state.gdpr(), "subject", options, None, None)
                .await
                .map_err(|e| anyhow::anyhow!("{e}"))?;
        println!(
            "RESULT {db} erase: {} messages, {} reactions removed, {} keys destroyed, {} pseudonyms unlinked in {:.2} s",
            certificate["removed"]["messages"],
            certificate["removed"]["reactions"],
            certificate["keys_destroyed"],
            certificate["pseudonyms_unlinked"],
            started.elapsed().as_secs_f64()
        );
        drop(app);
        let _ = std::fs::remove_dir_all(&dir);
        if db == "postgres" {
            use sqlx::Connection;
            let mut c = sqlx::PgConnection::connect(&format!("{}/postgres", o.db.pg_url)).await?;
            let sql = format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)");
            sqlx::raw_sql(sqlx::AssertSqlSafe(sql))
                .execute(&mut c)
                .await?;
        }
    }
    Ok(())
}
