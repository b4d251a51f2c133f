//! The `ward-audit` binary against the committed vectors: one line of output, exit codes
//! 0/1/2, state written only on success.

use std::path::{Path, PathBuf};
use std::process::Command;

fn vectors() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("vectors")
}

fn vkey() -> String {
    std::fs::read_to_string(vectors().join("vkey"))
        .unwrap()
        .trim_end()
        .to_owned()
}

/// Runs the binary; returns (exit code, stdout).
fn run(args: &[&str]) -> (i32, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_ward-audit"))
        .args(args)
        .output()
        .unwrap();
    (
        out.status.code().unwrap(),
        String::from_utf8(out.stdout).unwrap(),
    )
}

fn tmpdir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("ward-audit-cli-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn p(path: &Path) -> &str {
    path.to_str().unwrap()
}

#[test]
fn verify_prints_one_ok_line_with_the_key_given_inline_or_as_a_file() {
    let full = vectors().join("valid/full");
    let want = "OK audit.ward.example/tenant-0001/v1 entries 0..16 of tree size 16 root UdGPvDWjOuazVa5eVRajNUqQkzXGfGBe3rctuC9IWGE=\n";
    assert_eq!(
        run(&["verify", p(&full), "--key", &vkey()]),
        (0, want.to_owned())
    );
    let keyfile = vectors().join("vkey");
    assert_eq!(
        run(&["verify", p(&full), "--key", p(&keyfile)]),
        (0, want.to_owned())
    );
}

#[test]
fn every_tampered_vector_fails_with_exit_1_and_one_line() {
    let key = vkey();
    let tmp = tmpdir("tampered");
    for entry in std::fs::read_dir(vectors().join("tampered")).unwrap() {
        let dir = entry.unwrap().path();
        let mut args = vec![
            "verify".to_owned(),
            p(&dir).to_owned(),
            "--key".to_owned(),
            key.clone(),
        ];
        let state_copy = tmp.join(dir.file_name().unwrap());
        if dir.join("state").exists() {
            std::fs::copy(dir.join("state"), &state_copy).unwrap();
            args.extend(["--state".to_owned(), p(&state_copy).to_owned()]);
        }
        let before = std::fs::read(&state_copy).ok();
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let (code, out) = run(&args);
        assert_eq!(code, 1, "{}: {out}", dir.display());
        assert!(out.starts_with("FAIL "), "{out}");
        assert_eq!(out.lines().count(), 1, "{out}");
        // The state is untouched on failure.
        assert_eq!(std::fs::read(&state_copy).ok(), before);
    }
}

#[test]
fn the_state_file_is_created_advanced_and_then_enforced() {
    let tmp = tmpdir("state");
    let state = tmp.join("state");
    let key = vkey();
    // First run: no state yet (trust on first use), written on success.
    let (code, out) = run(&[
        "verify",
        p(&vectors().join("valid/prefix")),
        "--key",
        &key,
        "--state",
        p(&state),
    ]);
    assert_eq!(code, 0, "{out}");
    let text = std::fs::read_to_string(&state).unwrap();
    assert_eq!(
        text,
        "audit.ward.example/tenant-0001/v1\n16\nUdGPvDWjOuazVa5eVRajNUqQkzXGfGBe3rctuC9IWGE=\n"
    );
    // Second run against the same size: consistent with 16.
    let (code, out) = run(&[
        "verify",
        p(&vectors().join("valid/full")),
        "--key",
        &key,
        "--state",
        p(&state),
    ]);
    assert_eq!(code, 0, "{out}");
    assert!(out.ends_with(" consistent with size 16\n"), "{out}");
    // A rollback to 12 is refused and the state keeps 16.
    let (code, out) = run(&[
        "verify",
        p(&vectors().join("tampered/rollback")),
        "--key",
        &key,
        "--state",
        p(&state),
    ]);
    assert_eq!(code, 1);
    assert!(out.starts_with("FAIL rollback"), "{out}");
    assert_eq!(std::fs::read_to_string(&state).unwrap(), text);
}

#[test]
fn prove_inclusion_and_consistency() {
    let v = vectors().join("proofs");
    let key = vkey();
    let (code, out) = run(&[
        "prove-inclusion",
        p(&v.join("inclusion-5.tlog-proof")),
        "--entry",
        p(&v.join("entry-5")),
        "--key",
        &key,
    ]);
    assert_eq!(code, 0, "{out}");
    assert_eq!(
        out,
        "OK audit.ward.example/tenant-0001/v1 entry 5 included in tree size 16 root UdGPvDWjOuazVa5eVRajNUqQkzXGfGBe3rctuC9IWGE=\n"
    );
    // Another entry's bytes under the same proof.
    let tmp = tmpdir("inclusion");
    let other = tmp.join("entry");
    let mut bytes = std::fs::read(v.join("entry-5")).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 1;
    std::fs::write(&other, &bytes).unwrap();
    let (code, out) = run(&[
        "prove-inclusion",
        p(&v.join("inclusion-5.tlog-proof")),
        "--entry",
        p(&other),
        "--key",
        &key,
    ]);
    assert_eq!(code, 1, "{out}");
    assert!(out.starts_with("FAIL "));

    let (code, out) = run(&[
        "prove-consistency",
        p(&v.join("consistency-6-16.proof")),
        "--key",
        &key,
    ]);
    assert_eq!(code, 0, "{out}");
    assert!(
        out.starts_with("OK audit.ward.example/tenant-0001/v1 tree size 16 root "),
        "{out}"
    );
    assert!(out.contains("consistent with tree size 6 root "), "{out}");
    let (code, out) = run(&[
        "prove-consistency",
        p(&v.join("consistency-6-16-tampered.proof")),
        "--key",
        &key,
    ]);
    assert_eq!(code, 1, "{out}");
    assert!(out.starts_with("FAIL proof: "), "{out}");
}

#[test]
fn usage_errors_exit_2() {
    assert_eq!(run(&["verify"]).0, 2);
    assert_eq!(run(&["frobnicate"]).0, 2);
    let (code, out) = run(&[
        "verify",
        p(&vectors().join("valid/full")),
        "--key",
        "not-a-key",
    ]);
    assert_eq!(code, 2);
    assert!(out.starts_with("FAIL --key"), "{out}");
    let (code, out) = run(&[
        "verify",
        p(&vectors().join("does-not-exist")),
        "--key",
        &vkey(),
    ]);
    assert_eq!(code, 1);
    assert!(out.starts_with("FAIL bundle: cannot read"), "{out}");
}

#[test]
fn keygen_prints_the_vectors_vkey() {
    let (code, out) = run(&[
        "keygen",
        "--name",
        "audit.ward.example/tenant-0001/v1",
        "--seed-hex",
        &"42".repeat(32),
    ]);
    assert_eq!(code, 0);
    assert_eq!(out.trim_end(), vkey());
    assert_eq!(run(&["keygen", "--name", "x", "--seed-hex", "+f"]).0, 2);
}

#[test]
fn a_damaged_bundle_directory_fails_cleanly() {
    let tmp = tmpdir("damaged");
    let src = vectors().join("valid/full");
    for f in ["checkpoint", "entries", "bundle.json"] {
        std::fs::copy(src.join(f), tmp.join(f)).unwrap();
    }
    let entries = std::fs::read(tmp.join("entries")).unwrap();
    std::fs::write(tmp.join("entries"), &entries[..entries.len() - 3]).unwrap();
    let (code, out) = run(&["verify", p(&tmp), "--key", &vkey()]);
    assert_eq!(
        (code, out.as_str()),
        (1, "FAIL bundle: entries is not valid: truncated entry\n")
    );
    std::fs::write(tmp.join("entries"), &entries).unwrap();
    let json = std::fs::read_to_string(tmp.join("bundle.json")).unwrap();
    std::fs::write(
        tmp.join("bundle.json"),
        json.replace("\"count\": 16", "\"count\": 15"),
    )
    .unwrap();
    let (code, out) = run(&["verify", p(&tmp), "--key", &vkey()]);
    assert_eq!(code, 1);
    assert!(
        out.contains("holds 16 entries but bundle.json declares 15"),
        "{out}"
    );
    std::fs::write(
        tmp.join("bundle.json"),
        json.replace("\"first\"", "\"extra\": 1, \"first\""),
    )
    .unwrap();
    let (code, out) = run(&["verify", p(&tmp), "--key", &vkey()]);
    assert_eq!(code, 1);
    assert!(
        out.starts_with("FAIL bundle: bundle.json is not valid: unknown field"),
        "{out}"
    );
}
