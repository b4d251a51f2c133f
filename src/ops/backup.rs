//! Backup and restore of the embedded SQLite database.
//!
//! `ward backup` takes a consistent online copy with `VACUUM INTO` (one read transaction: a
//! snapshot, while the server keeps writing), checks it, and records it in the audit log.
//! `ward restore` puts a copy back into a data dir no running `ward serve` holds (the
//! server keeps an exclusive lock on `<data dir>/ward.lock`); the database it replaces is
//! kept beside it, never deleted. PostgreSQL deployments use `pg_dump` or point-in-time
//! recovery (README "Backup and restore").
//!
//! What a backup does not hold: the root key (`root.key`, or the KMS key it names; export it
//! once with `ward keys export-root`) and the published audit checkpoints. After a restore
//! the server checks the restored log against the newest published checkpoint and refuses to
//! serve a log that is behind it.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, bail};
use sqlx::Connection;
use sqlx::sqlite::{SqliteConnectOptions, SqliteConnection};

use crate::audit::{AuditEvent, AuditSink, EventType, OutboxSink};
use crate::config::Config;
use crate::startup::StartupError;

/// An exclusive lock on `<data dir>/ward.lock`, held by `ward serve` on SQLite for its whole
/// life (the OS releases it when the process dies) and by `ward restore` while it swaps
/// files.
pub struct DataDirLock {
    _file: std::fs::File,
}

impl DataDirLock {
    pub fn acquire(data_dir: &Path) -> anyhow::Result<Self> {
        crate::fsx::private_dir(data_dir)
            .with_context(|| format!("creating data dir {}", data_dir.display()))?;
        let path = data_dir.join("ward.lock");
        let file = crate::fsx::private_file_options()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .with_context(|| format!("opening {}", path.display()))?;
        match file.try_lock() {
            Ok(()) => Ok(Self { _file: file }),
            Err(std::fs::TryLockError::WouldBlock) => Err(StartupError::new(
                format!(
                    "the data dir {} is in use by a running ward process",
                    data_dir.display()
                ),
                "stop that process first (a data dir with SQLite serves one process at a time)",
            )
            .into()),
            Err(std::fs::TryLockError::Error(e)) => {
                Err(anyhow::anyhow!("locking {}: {e}", path.display()))
            }
        }
    }
}

/// The file an `sqlite:` URL names.
pub fn sqlite_path(url: &str) -> anyhow::Result<PathBuf> {
    let rest = url
        .strip_prefix("sqlite://")
        .or_else(|| url.strip_prefix("sqlite:"))
        .context("not an sqlite: URL")?;
    let path = rest.split('?').next().unwrap_or(rest);
    if path.is_empty() || path == ":memory:" {
        bail!("an in-memory SQLite database cannot be backed up or restored");
    }
    Ok(PathBuf::from(path))
}

fn postgres_refusal() -> anyhow::Error {
    StartupError::new(
        "ward backup and ward restore handle the embedded SQLite database; this deployment uses PostgreSQL",
        "use pg_dump / pg_restore or point-in-time recovery, and keep the root key (or KMS key id) and the audit checkpoint directory or bucket as README \"Backup and restore\" lists",
    )
    .into()
}

/// What a backup file holds, read back from it.
#[derive(Debug, Clone)]
pub struct Summary {
    pub bytes: u64,
    /// Entries in the audit log.
    pub audit_size: u64,
    /// The size the newest signed checkpoint in the file commits to.
    pub checkpoint_size: Option<u64>,
    pub messages: u64,
}

async fn open_read_only(path: &Path) -> anyhow::Result<SqliteConnection> {
    let options = SqliteConnectOptions::new()
        .filename(path)
        .read_only(true)
        .create_if_missing(false)
        .busy_timeout(Duration::from_secs(30));
    SqliteConnection::connect_with(&options)
        .await
        .with_context(|| format!("opening {}", path.display()))
}

/// Checks a database file (integrity, the tables Ward needs) and summarises it.
pub async fn inspect(path: &Path) -> anyhow::Result<Summary> {
    let bytes = std::fs::metadata(path)
        .with_context(|| format!("reading {}", path.display()))?
        .len();
    let mut conn = open_read_only(path).await?;
    let check: String = sqlx::query_scalar("PRAGMA integrity_check")
        .fetch_one(&mut conn)
        .await
        .with_context(|| format!("{} is not an SQLite database", path.display()))?;
    if check != "ok" {
        bail!("{} fails SQLite's integrity check: {check}", path.display());
    }
    let ward: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM sqlite_master WHERE type = 'table' AND name IN ('_sqlx_migrations', 'audit_log', 'messages', 'settings')",
    )
    .fetch_one(&mut conn)
    .await?;
    if ward != 4 {
        bail!("{} is not a Ward database", path.display());
    }
    let audit_size: i64 = sqlx::query_scalar("SELECT COALESCE(MAX(seq) + 1, 0) FROM audit_log")
        .fetch_one(&mut conn)
        .await?;
    let note: Option<String> =
        sqlx::query_scalar("SELECT note FROM audit_checkpoints ORDER BY size DESC LIMIT 1")
            .fetch_optional(&mut conn)
            .await?;
    let messages: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM messages")
        .fetch_one(&mut conn)
        .await?;
    conn.close().await.ok();
    Ok(Summary {
        bytes,
        audit_size: audit_size as u64,
        checkpoint_size: note
            .as_deref()
            .and_then(crate::audit::publish::checkpoint_size),
        messages: messages as u64,
    })
}

/// `ward backup --out FILE`: a consistent copy of the running server's database.
pub async fn backup(config: &Config, out: &Path) -> anyhow::Result<Summary> {
    if config.is_postgres() {
        return Err(postgres_refusal());
    }
    let db = sqlite_path(&config.database_url)?;
    if !db.exists() {
        bail!("there is no database at {} to back up", db.display());
    }
    if out.exists() {
        bail!(
            "{} exists; choose a new file name (a backup never overwrites)",
            out.display()
        );
    }
    let tmp = partial_name(out);
    let _ = std::fs::remove_file(&tmp);
    // The copy holds wrapped keys and ciphertext: born readable by the owner only (VACUUM
    // INTO fills an empty file and keeps its mode).
    crate::fsx::private_file_options()
        .write(true)
        .create_new(true)
        .open(&tmp)
        .with_context(|| format!("creating {}", tmp.display()))?;
    let mut conn = open_read_only(&db).await?;
    let target = tmp.to_str().context("the backup path is not UTF-8")?;
    sqlx::query("VACUUM INTO ?")
        .bind(target)
        .execute(&mut conn)
        .await
        .context("copying the database (VACUUM INTO)")?;
    conn.close().await.ok();
    std::fs::File::open(&tmp)?.sync_all()?;
    let summary = inspect(&tmp).await?;
    std::fs::rename(&tmp, out).with_context(|| format!("naming the backup {}", out.display()))?;
    // The server's appender chains outbox rows within a second.
    record(config, EventType::OpsBackup, &summary).await?;
    Ok(summary)
}

/// What a restore did.
pub struct Restored {
    pub summary: Summary,
    /// Where the database it replaced was moved, if there was one.
    pub previous: Option<PathBuf>,
}

/// `ward restore FILE`: puts a backup in place of the data dir's database. Refused while a
/// server holds the data dir, and without `replace` when a database is there.
pub async fn restore(config: &Config, file: &Path, replace: bool) -> anyhow::Result<Restored> {
    if config.is_postgres() {
        return Err(postgres_refusal());
    }
    let summary = inspect(file)
        .await
        .with_context(|| format!("checking the backup {}", file.display()))?;
    let db = sqlite_path(&config.database_url)?;
    let dir = db
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let _lock = DataDirLock::acquire(&config.data_dir)?;
    let previous = if db.exists() {
        if !replace {
            bail!(
                "{} already holds a database; pass --replace to restore over it (it is kept as ward.db.before-restore-<time>)",
                db.display()
            );
        }
        let stamp = chrono::Utc::now().format("%Y%m%dT%H%M%SZ");
        let kept = db.with_file_name(format!(
            "{}.before-restore-{stamp}",
            db.file_name().and_then(|n| n.to_str()).unwrap_or("ward.db")
        ));
        std::fs::rename(&db, &kept).with_context(|| format!("moving {} aside", db.display()))?;
        for suffix in ["-wal", "-shm"] {
            let side = PathBuf::from(format!("{}{suffix}", db.display()));
            if side.exists() {
                std::fs::rename(&side, format!("{}{suffix}", kept.display()))?;
            }
        }
        Some(kept)
    } else {
        crate::fsx::create_private_dir(dir)
            .with_context(|| format!("creating {}", dir.display()))?;
        None
    };
    let tmp = partial_name(&db);
    std::fs::copy(file, &tmp).with_context(|| format!("copying {}", file.display()))?;
    set_private(&tmp)?;
    std::fs::File::open(&tmp)?.sync_all()?;
    std::fs::rename(&tmp, &db).with_context(|| format!("naming {}", db.display()))?;
    // Chained by the next server start, before anything else.
    record(config, EventType::OpsRestore, &summary).await?;
    Ok(Restored { summary, previous })
}

/// Puts the audit record of a backup or restore in the database's outbox.
async fn record(config: &Config, event: EventType, summary: &Summary) -> anyhow::Result<()> {
    let store = crate::store::Store::connect(&config.database_url)
        .await
        .map_err(|e| StartupError::database(&config.database_url, &e))?;
    let sink = OutboxSink::new(store);
    sink.record(
        AuditEvent::new(event)
            .object("database", "sqlite")
            .meta("audit_size", summary.audit_size)
            .meta("bytes", summary.bytes)
            .meta("via", "cli"),
    );
    sink.flush().await.context("recording it in the audit log")
}

fn partial_name(path: &Path) -> PathBuf {
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(".partial");
    path.with_file_name(name)
}

#[cfg(unix)]
fn set_private(path: &Path) -> anyhow::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))
        .with_context(|| format!("restricting {}", path.display()))
}

#[cfg(not(unix))]
fn set_private(_path: &Path) -> anyhow::Result<()> {
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sqlite_urls_name_their_file() {
        assert_eq!(
            sqlite_path("sqlite://./data/ward.db").unwrap(),
            PathBuf::from("./data/ward.db")
        );
        assert_eq!(
            sqlite_path("sqlite:/var/lib/ward/ward.db?mode=rwc").unwrap(),
            PathBuf::from("/var/lib/ward/ward.db")
        );
        assert!(sqlite_path("sqlite::memory:").is_err());
    }

    #[test]
    fn a_data_dir_is_locked_by_one_holder_at_a_time() {
        let dir = std::env::temp_dir().join(format!("ward-lock-{}", uuid::Uuid::new_v4().simple()));
        let held = DataDirLock::acquire(&dir).unwrap();
        let err = DataDirLock::acquire(&dir).err().unwrap();
        assert!(
            crate::startup::render(&err).contains("in use by a running ward process"),
            "{err:#}"
        );
        drop(held);
        DataDirLock::acquire(&dir).unwrap();
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
