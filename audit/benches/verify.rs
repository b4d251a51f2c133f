//! Throughput of the offline verifier: `bundle::verify` over a 1,000,000-entry bundle of
//! realistic (~200-byte) entries, single-threaded. The goal (audit-and-crypto.md §1.4) is
//! at least 1,000,000 entries/s per core.
//!
//! `cargo bench -p ward-audit --bench verify`
//!
//! Environment:
//! * `WARD_AUDIT_BENCH_N` — number of entries (default 1,000,000);
//! * `WARD_AUDIT_BENCH_DIR` — also write the bundle there (plus `vkey`) and time
//!   `Bundle::read` + `verify`, so the CLI can be timed on it:
//!   `time target/release/ward-audit verify $DIR --key $DIR/vkey`.

use std::collections::BTreeMap;
use std::hint::black_box;
use std::time::Instant;

use ward_audit::bundle::{self, Bundle};
use ward_audit::entry::{Entry, encode_meta};
use ward_audit::memlog::MemoryLog;
use ward_audit::note::Signer;

const ORIGIN: &str = "bench.ward.example/audit/v1";

fn entry(i: u64, meta: &[u8]) -> Entry {
    let mut x = i.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
    let mut rnd = |n: usize| -> Vec<u8> {
        (0..n)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                x as u8
            })
            .collect()
    };
    Entry {
        seq: 0,
        prev_chain: [0; 32],
        ts_unix_ms: 1_767_225_600_000 + i,
        event_type: (i % 5) as u16 + 1,
        actor_id: rnd(16).try_into().unwrap_or_default(),
        subject_id: rnd(16).try_into().unwrap_or_default(),
        tenant_id: [7; 16],
        // A room id and a message id.
        object_ref: rnd(32),
        // A field-encryption envelope of a short value: 46 bytes of framing + 12 of data.
        pii_ct: rnd(58),
        meta: meta.to_vec(),
    }
}

fn main() {
    let n: u64 = std::env::var("WARD_AUDIT_BENCH_N")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(1_000_000);
    let signer = Signer::from_seed(ORIGIN, &[0x42; 32]).expect("signer");
    let verifier = signer.verifier();
    let mut meta = BTreeMap::new();
    meta.insert("client".to_owned(), "web".to_owned());
    let meta = encode_meta(&meta).expect("meta");

    let t = Instant::now();
    let mut log = MemoryLog::new(ORIGIN);
    for i in 0..n {
        log.append(entry(i, &meta)).expect("append");
    }
    let b = log.bundle(&signer, 0, n, n, &[]).expect("bundle");
    let bytes: usize = b.entries.iter().map(Vec::len).sum();
    println!(
        "built {n} entries ({:.1} bytes/entry average, {:.1} MB) in {:.2?}",
        bytes as f64 / n as f64,
        bytes as f64 / 1e6,
        t.elapsed()
    );
    drop(log);

    // One warm-up run, then the best and median of five.
    bundle::verify(&b, &verifier, None).expect("verify");
    let mut runs: Vec<f64> = (0..5)
        .map(|_| {
            let t = Instant::now();
            let r = bundle::verify(black_box(&b), &verifier, None).expect("verify");
            black_box(r);
            t.elapsed().as_secs_f64()
        })
        .collect();
    runs.sort_by(f64::total_cmp);
    let (best, median) = (runs[0], runs[2]);
    println!(
        "bundle::verify: {n} entries in {:.3} s (median {:.3} s): {:.2} M entries/s best, {:.2} M entries/s median, {:.0} MB/s, single thread",
        best,
        median,
        n as f64 / best / 1e6,
        n as f64 / median / 1e6,
        bytes as f64 / median / 1e6
    );

    if let Ok(dir) = std::env::var("WARD_AUDIT_BENCH_DIR") {
        let dir = std::path::PathBuf::from(dir);
        b.write(&dir).expect("write bundle");
        std::fs::write(dir.join("vkey"), format!("{}\n", signer.verifier_key())).expect("vkey");
        let t = Instant::now();
        let read = Bundle::read(&dir).expect("read");
        let t_read = t.elapsed();
        bundle::verify(&read, &verifier, None).expect("verify");
        println!(
            "from disk ({}): Bundle::read {:.3} s + verify = {:.3} s total",
            dir.display(),
            t_read.as_secs_f64(),
            t.elapsed().as_secs_f64()
        );
    }
}
