//! The export ZIP being written: one file at a time (ZIP entries are sequential), each
//! hashed and counted as its bytes go in. The `zip` writer does blocking file I/O, so every
//! write runs on the blocking pool with the writer moved there and back; the async side
//! only serialises a page.

use std::fs::File;
use std::path::PathBuf;

use anyhow::Context;
use serde::Serialize;
use sha2::{Digest, Sha256};
use zip::write::{SimpleFileOptions, ZipWriter};
use zip::{CompressionMethod, DateTime};

use super::FileEntry;

pub(super) struct Archive {
    /// `None` only while a write runs on the blocking pool (or after one panicked).
    zip: Option<ZipWriter<File>>,
    options: SimpleFileOptions,
    files: Vec<FileEntry>,
    open: Option<Open>,
}

struct Open {
    name: &'static str,
    hash: Sha256,
    bytes: u64,
    count: u64,
}

impl Archive {
    /// Creates (or truncates) the file, readable by its owner only: it holds personal data.
    pub(super) async fn create(path: PathBuf) -> anyhow::Result<Self> {
        let file = tokio::task::spawn_blocking(move || {
            crate::fsx::private_file_options()
                .write(true)
                .create(true)
                .truncate(true)
                .open(&path)
        })
        .await?
        .context("creating the archive file")?;
        let now = chrono::Utc::now().naive_utc();
        let modified = {
            use chrono::{Datelike, Timelike};
            DateTime::from_date_and_time(
                now.year().clamp(1980, 2107) as u16,
                now.month() as u8,
                now.day() as u8,
                now.hour() as u8,
                now.minute() as u8,
                now.second() as u8,
            )
            .unwrap_or_default()
        };
        Ok(Self {
            zip: Some(ZipWriter::new(file)),
            options: SimpleFileOptions::default()
                .compression_method(CompressionMethod::Deflated)
                .last_modified_time(modified)
                .unix_permissions(0o600)
                // Message and audit files of a long-standing user can pass 4 GiB.
                .large_file(true),
            files: Vec::new(),
            open: None,
        })
    }

    /// Runs `f` on the writer on the blocking pool.
    async fn blocking<R: Send + 'static>(
        &mut self,
        f: impl FnOnce(&mut ZipWriter<File>) -> anyhow::Result<R> + Send + 'static,
    ) -> anyhow::Result<R> {
        let mut zip = self.zip.take().context("an earlier archive write failed")?;
        let (zip, out) = tokio::task::spawn_blocking(move || {
            let out = f(&mut zip);
            (zip, out)
        })
        .await?;
        self.zip = Some(zip);
        out
    }

    pub(super) async fn start(&mut self, name: &'static str) -> anyhow::Result<()> {
        anyhow::ensure!(self.open.is_none(), "a file is still open");
        let options = self.options;
        self.blocking(move |zip| Ok(zip.start_file(name, options)?))
            .await?;
        self.open = Some(Open {
            name,
            hash: Sha256::new(),
            bytes: 0,
            count: 0,
        });
        Ok(())
    }

    /// Appends `bytes` holding `records` records to the open file.
    pub(super) async fn write(&mut self, bytes: Vec<u8>, records: u64) -> anyhow::Result<()> {
        let open = self.open.as_mut().context("no file is open")?;
        open.hash.update(&bytes);
        open.bytes += bytes.len() as u64;
        open.count += records;
        if bytes.is_empty() {
            return Ok(());
        }
        self.blocking(move |zip| {
            use std::io::Write;
            Ok(zip.write_all(&bytes)?)
        })
        .await
    }

    /// Appends one JSON value per line (NDJSON).
    pub(super) async fn lines<T: Serialize>(
        &mut self,
        values: impl IntoIterator<Item = T>,
    ) -> anyhow::Result<()> {
        let mut bytes = Vec::new();
        let mut n = 0;
        for v in values {
            serde_json::to_writer(&mut bytes, &v)?;
            bytes.push(b'\n');
            n += 1;
        }
        self.write(bytes, n).await
    }

    pub(super) async fn finish_file(&mut self) -> anyhow::Result<()> {
        let open = self.open.take().context("no file is open")?;
        self.files.push(FileEntry {
            name: open.name.to_string(),
            sha256: hex::encode(open.hash.finalize()),
            bytes: open.bytes,
            count: open.count,
        });
        Ok(())
    }

    /// A whole (small) JSON file.
    pub(super) async fn json_file(
        &mut self,
        name: &'static str,
        value: &impl Serialize,
        count: u64,
    ) -> anyhow::Result<()> {
        self.start(name).await?;
        let mut bytes = serde_json::to_vec_pretty(value)?;
        bytes.push(b'\n');
        self.write(bytes, count).await?;
        self.finish_file().await
    }

    /// The files written so far, for the manifest.
    pub(super) fn files(&self) -> &[FileEntry] {
        &self.files
    }

    /// Adds the manifest and its signature (not listed in the manifest), then writes the
    /// central directory and syncs the file to disk.
    pub(super) async fn close(
        mut self,
        manifest: Vec<u8>,
        signature: Vec<u8>,
    ) -> anyhow::Result<()> {
        anyhow::ensure!(self.open.is_none(), "a file is still open");
        let options = self.options.large_file(false);
        self.blocking(move |zip| {
            use std::io::Write;
            zip.start_file("manifest.json", options)?;
            zip.write_all(&manifest)?;
            zip.start_file("manifest.sig", options)?;
            zip.write_all(&signature)?;
            Ok(())
        })
        .await?;
        let zip = self.zip.take().context("an earlier archive write failed")?;
        tokio::task::spawn_blocking(move || -> anyhow::Result<()> {
            zip.finish()?.sync_all()?;
            Ok(())
        })
        .await?
    }
}
