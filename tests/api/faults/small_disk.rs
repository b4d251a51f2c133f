//! A small file system of the test's own (a tmpfs of a few megabytes; mounting needs root),
//! and a ballast file that fills it: the disk is full for real (ENOSPC), and deleting the
//! ballast frees it again.

use std::io::Write;
use std::path::{Path, PathBuf};

pub struct SmallDisk {
    pub dir: PathBuf,
}

impl SmallDisk {
    pub fn mount(megabytes: u32) -> Self {
        let dir = std::env::temp_dir().join(format!("ward_disk_{}", uuid::Uuid::new_v4().simple()));
        std::fs::create_dir_all(&dir).unwrap();
        let out = std::process::Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={megabytes}m"), "tmpfs"])
            .arg(&dir)
            .output()
            .expect("mount runs");
        assert!(
            out.status.success(),
            "mounting a small tmpfs (the full-disk test runs as root, as .ci/run does): {}",
            String::from_utf8_lossy(&out.stderr)
        );
        Self { dir }
    }

    /// Fills the disk with a ballast file until the file system refuses, then gives back
    /// `leave` bytes.
    pub fn fill_leaving(&self, leave: u64) {
        let path = self.ballast();
        let mut file = std::fs::File::create(&path).unwrap();
        let chunk = vec![0u8; 64 * 1024];
        let mut written = 0u64;
        loop {
            match file.write(&chunk) {
                Ok(0) => break,
                Ok(n) => written += n as u64,
                Err(e) if e.raw_os_error() == Some(28) => break, // ENOSPC
                Err(e) => panic!("writing the ballast: {e}"),
            }
        }
        file.set_len(written.saturating_sub(leave)).unwrap();
        file.sync_all().unwrap();
    }

    /// Deletes the ballast: the disk has room again.
    pub fn free(&self) {
        std::fs::remove_file(self.ballast()).unwrap();
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }

    fn ballast(&self) -> PathBuf {
        self.dir.join("ballast")
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        // Lazy: a file still open (the server shutting down) does not keep it mounted.
        let _ = std::process::Command::new("umount")
            .arg("-l")
            .arg(&self.dir)
            .output();
        let _ = std::fs::remove_dir(Path::new(&self.dir));
    }
}
