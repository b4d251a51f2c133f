//! Checking an export offline, as its recipient does, with the archive and the audit log's
//! verifier key pinned beforehand (never the key the manifest names):
//!
//! 1. `manifest.sig` opens under the key (C2SP signed note), and its text is exactly
//!    [`Manifest::signed_text`] of `manifest.json`, whose fields hold no whitespace;
//! 2. the archive holds exactly the listed files, `manifest.json` and `manifest.sig`;
//! 3. every file's SHA-256, size and record count match the manifest;
//! 4. `audit_checkpoint.txt` is a checkpoint signed by the same key for
//!    `audit_tree_size`, and every entry of `audit.ndjson` leads, through its inclusion
//!    proof, from its bytes to that checkpoint's root.

use std::fs::File;
use std::io::{BufRead, BufReader, Read, Seek};
use std::path::Path;

use anyhow::{Context, bail, ensure};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde_json::Value;
use sha2::{Digest, Sha256};
use ward_audit::Hash;
use ward_audit::checkpoint::Checkpoint;
use ward_audit::entry::Entry;
use ward_audit::merkle::{leaf_hash, verify_inclusion};
use ward_audit::note::{self, Verifier};
use zip::ZipArchive;

use super::{FORMAT, Manifest};

/// Largest `manifest.json`, `manifest.sig`, checkpoint or `.json` file read into memory.
const SMALL: u64 = 64 << 20;

/// Verifies the archive at `path` against the pinned verifier key `vkey`; returns its
/// manifest. Errors name the file and the check that failed, never the data.
pub fn verify_export(path: &Path, vkey: &str) -> anyhow::Result<Manifest> {
    let file = File::open(path).context("opening the archive")?;
    verify_archive(file, vkey)
}

/// [`verify_export`] on an archive already open (or in memory: the fuzz target feeds it
/// arbitrary bytes).
pub fn verify_archive(archive: impl Read + Seek, vkey: &str) -> anyhow::Result<Manifest> {
    let verifier = Verifier::parse(vkey).context("the verifier key does not parse")?;
    let mut zip = ZipArchive::new(archive).context("the archive is not a readable ZIP")?;

    let signed = read_small(&mut zip, "manifest.sig")?;
    let signed = String::from_utf8(signed).context("manifest.sig is not UTF-8")?;
    let text = note::open(&signed, std::slice::from_ref(&verifier))
        .map_err(|e| anyhow::anyhow!("manifest.sig does not verify under the key: {e}"))?;
    let manifest: Manifest = serde_json::from_slice(&read_small(&mut zip, "manifest.json")?)
        .context("manifest.json is not a manifest")?;
    ensure!(manifest.format == FORMAT, "unknown export format");
    check_fields(&manifest)?;
    ensure!(
        manifest.signed_text() == text,
        "manifest.json differs from the signed manifest"
    );

    let mut expected: Vec<String> = manifest.files.iter().map(|f| f.name.clone()).collect();
    expected.extend(["manifest.json".to_string(), "manifest.sig".to_string()]);
    expected.sort();
    let mut found = (0..zip.len())
        .map(|i| Ok(zip.by_index_raw(i)?.name()?.to_string()))
        .collect::<anyhow::Result<Vec<String>>>()
        .context("reading the archive's file names")?;
    found.sort();
    ensure!(
        found == expected,
        "the archive's files differ from the manifest's list"
    );

    let checkpoint = match manifest.file("audit_checkpoint.txt") {
        Some(_) => {
            let text = String::from_utf8(read_small(&mut zip, "audit_checkpoint.txt")?)
                .context("audit_checkpoint.txt is not UTF-8")?;
            let c = Checkpoint::open(&text, &verifier)
                .map_err(|e| anyhow::anyhow!("audit_checkpoint.txt does not verify: {e}"))?;
            ensure!(
                c.size == manifest.audit_tree_size,
                "audit_checkpoint.txt is not for the manifest's tree size"
            );
            Some(c)
        }
        None => None,
    };

    for f in &manifest.files {
        let entry = zip
            .by_name(&f.name)
            .with_context(|| format!("reading {}", f.name))?;
        let mut reader = BufReader::new(entry);
        let (mut hash, mut bytes, mut count) = (Sha256::new(), 0u64, 0u64);
        if f.name.ends_with(".ndjson") {
            let mut line = Vec::new();
            loop {
                line.clear();
                let n = reader
                    .read_until(b'\n', &mut line)
                    .with_context(|| format!("reading {}", f.name))?;
                if n == 0 {
                    break;
                }
                hash.update(&line);
                bytes += n as u64;
                count += 1;
                ensure!(line.ends_with(b"\n"), "{}: the last line is cut", f.name);
                if f.name == "audit.ndjson" {
                    let c = checkpoint
                        .as_ref()
                        .context("audit.ndjson without audit_checkpoint.txt")?;
                    check_audit_line(&line, c)
                        .with_context(|| format!("audit.ndjson line {count}"))?;
                }
            }
        } else {
            let mut all = Vec::new();
            (&mut reader)
                .take(SMALL + 1)
                .read_to_end(&mut all)
                .with_context(|| format!("reading {}", f.name))?;
            ensure!(all.len() as u64 <= SMALL, "{} is too large", f.name);
            hash.update(&all);
            bytes = all.len() as u64;
            count = if f.name.ends_with(".json") {
                match serde_json::from_slice::<Value>(&all) {
                    Ok(Value::Array(items)) => items.len() as u64,
                    Ok(_) => 1,
                    Err(_) => bail!("{} is not JSON", f.name),
                }
            } else {
                1
            };
        }
        ensure!(
            hex::encode(hash.finalize()) == f.sha256,
            "{}: the SHA-256 differs",
            f.name
        );
        ensure!(bytes == f.bytes, "{}: the size differs", f.name);
        ensure!(count == f.count, "{}: the record count differs", f.name);
    }
    Ok(manifest)
}

fn read_small(zip: &mut ZipArchive<impl Read + Seek>, name: &str) -> anyhow::Result<Vec<u8>> {
    let file = zip
        .by_name(name)
        .with_context(|| format!("the archive has no {name}"))?;
    let mut out = Vec::new();
    file.take(SMALL + 1)
        .read_to_end(&mut out)
        .with_context(|| format!("reading {name}"))?;
    ensure!(out.len() as u64 <= SMALL, "{name} is too large");
    Ok(out)
}

/// No field of the signed text may hold whitespace or control characters (else two
/// manifests could share one text).
fn check_fields(m: &Manifest) -> anyhow::Result<()> {
    let plain = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_graphic());
    ensure!(
        plain(&m.user_id) && plain(&m.created_at) && plain(&m.verifier_key),
        "manifest.json has a malformed field"
    );
    for f in &m.files {
        ensure!(
            plain(&f.name)
                && f.sha256.len() == 64
                && f.sha256
                    .bytes()
                    .all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')),
            "manifest.json lists a malformed file"
        );
    }
    Ok(())
}

/// One audit entry: its bytes decode, sit at the proof's index, and the proof leads to the
/// signed root.
fn check_audit_line(line: &[u8], checkpoint: &Checkpoint) -> anyhow::Result<()> {
    let v: Value = serde_json::from_slice(line).context("not JSON")?;
    let bytes = STANDARD
        .decode(v["entry"].as_str().context("no entry bytes")?)
        .context("the entry bytes are not base64")?;
    let entry = Entry::decode(&bytes).context("the entry bytes do not decode")?;
    let proof = &v["inclusion_proof"];
    ensure!(
        proof["leaf_index"].as_u64() == Some(entry.seq),
        "the proof is for another entry"
    );
    ensure!(
        proof["tree_size"].as_u64() == Some(checkpoint.size),
        "the proof is for another tree size"
    );
    let hashes = proof["hashes"]
        .as_array()
        .context("no proof hashes")?
        .iter()
        .map(|h| {
            let raw = STANDARD.decode(h.as_str().context("a proof hash is not text")?)?;
            Hash::try_from(raw.as_slice()).context("a proof hash is not 32 bytes")
        })
        .collect::<anyhow::Result<Vec<Hash>>>()?;
    verify_inclusion(
        &leaf_hash(&bytes),
        entry.seq,
        checkpoint.size,
        &hashes,
        &checkpoint.root,
    )
    .map_err(|e| anyhow::anyhow!("the inclusion proof does not verify: {e}"))
}
