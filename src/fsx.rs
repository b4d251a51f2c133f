//! Files and directories readable by their owner only, whatever the umask: the data dir
//! holds the database (wrapped keys, ciphertext, pseudonyms), the root key, checkpoints,
//! export archives and backups. Modes are set at creation (`mode` only removes what the
//! umask removes, so 0700/0600 survive a umask of 000) rather than fixed afterwards, so no
//! file is readable by others even for a moment. A leaf: std and `tracing` only.

use std::io;
use std::path::{Path, PathBuf};

/// Directories Ward creates: owner only.
pub const DIR_MODE: u32 = 0o700;
/// Files Ward creates: owner read/write only.
pub const FILE_MODE: u32 = 0o600;

/// Creates `path` and any missing parents with mode 0700; an existing directory is left as
/// it is (it may be an operator's own, such as an export destination).
pub fn create_private_dir(path: &Path) -> io::Result<()> {
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, DIR_MODE);
    builder.create(path)
}

/// As [`create_private_dir`], and narrows an existing directory to 0700 too: for the
/// directories Ward owns (the data dir, the checkpoint directory), so an installation made
/// before this rule (0755) is fixed on its next start. A directory another user owns (a
/// mount point an operator prepared) cannot be narrowed: that is a warning, not a refusal.
pub fn private_dir(path: &Path) -> io::Result<()> {
    create_private_dir(path)?;
    match narrow(path, DIR_MODE) {
        Err(e) if e.kind() == io::ErrorKind::PermissionDenied => {
            tracing::warn!(path = %path.display(), "cannot narrow a directory this user does not own to mode 0700");
            Ok(())
        }
        other => other,
    }
}

/// Options that create a file with mode 0600 (add `create`/`create_new` and the access).
pub fn private_file_options() -> std::fs::OpenOptions {
    let mut options = std::fs::OpenOptions::new();
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, FILE_MODE);
    options
}

/// Makes the SQLite database at `db` private before SQLite opens it: creates it empty with
/// mode 0600 when missing (an empty file is a valid, empty database) and narrows an existing
/// one and its `-wal`/`-shm` files to 0600. SQLite gives the `-wal` and `-shm` files it
/// creates the database file's mode, so they are born 0600 as well.
pub fn private_sqlite_file(db: &Path) -> io::Result<()> {
    if let Some(dir) = db.parent().filter(|p| !p.as_os_str().is_empty()) {
        create_private_dir(dir)?;
    }
    private_file_options()
        .write(true)
        .create(true)
        .truncate(false)
        .open(db)?;
    for path in [
        db.to_path_buf(),
        side_file(db, "-wal"),
        side_file(db, "-shm"),
    ] {
        if path.exists() {
            narrow(&path, FILE_MODE)?;
        }
    }
    Ok(())
}

fn side_file(db: &Path, suffix: &str) -> PathBuf {
    let mut name = db.as_os_str().to_owned();
    name.push(suffix);
    PathBuf::from(name)
}

/// Clears the group and other bits of `path` beyond `mode` (never widens it).
#[cfg(unix)]
fn narrow(path: &Path, mode: u32) -> io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    let current = std::fs::metadata(path)?.permissions().mode() & 0o777;
    if current & !mode != 0 {
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(current & mode))?;
    }
    Ok(())
}

#[cfg(not(unix))]
fn narrow(_path: &Path, _mode: u32) -> io::Result<()> {
    Ok(())
}

#[cfg(all(test, unix))]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn mode(path: &Path) -> u32 {
        std::fs::metadata(path)
            .expect("the file was just made")
            .permissions()
            .mode()
            & 0o777
    }

    #[test]
    fn a_world_readable_database_and_its_wal_are_narrowed_and_a_missing_one_is_born_private() {
        let dir = std::env::temp_dir().join(format!("ward-fsx-{}", uuid::Uuid::new_v4().simple()));
        let nested = dir.join("a/b");
        private_dir(&nested).unwrap();
        assert_eq!(mode(&dir), 0o700);
        assert_eq!(mode(&nested), 0o700);
        let db = nested.join("ward.db");
        private_sqlite_file(&db).unwrap();
        assert_eq!(mode(&db), 0o600);
        let wal = side_file(&db, "-wal");
        std::fs::write(&wal, b"").unwrap();
        std::fs::set_permissions(&wal, std::fs::Permissions::from_mode(0o644)).unwrap();
        std::fs::set_permissions(&nested, std::fs::Permissions::from_mode(0o755)).unwrap();
        private_sqlite_file(&db).unwrap();
        private_dir(&nested).unwrap();
        assert_eq!(mode(&wal), 0o600);
        assert_eq!(mode(&nested), 0o700);
        std::fs::remove_dir_all(dir).unwrap();
    }
}
