//! Field encryption cost (`cargo bench --bench crypto`): seal+open of one field in Ward's
//! frame (header, AAD binding the location, key lookup by id) against raw AES-256-GCM
//! encrypt+decrypt of the same sizes with the same key.

// A benchmark or test reports a failure by panicking: unwrapping is how it fails.
#![allow(clippy::unwrap_used)]

use std::time::Instant;

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use ward::crypto::frame::{self, Dek, Field};

fn rate(label: &str, size: usize, iterations: usize, mut f: impl FnMut()) -> f64 {
    let start = Instant::now();
    for _ in 0..iterations {
        f();
    }
    let secs = start.elapsed().as_secs_f64();
    let per_sec = iterations as f64 / secs;
    println!(
        "RESULT {label} {size} B: {per_sec:.0} round trips/s ({:.1} MiB/s)",
        per_sec * size as f64 / (1024.0 * 1024.0)
    );
    per_sec
}

fn main() {
    let dek = Dek::generate();
    let field = Field {
        table: "messages",
        column: "text",
        row_id: "0190f0f0-0000-7000-8000-000000000000",
    };
    let raw = Aes256Gcm::new_from_slice(dek.secret()).unwrap();
    let nonce = Nonce::try_from(&[7u8; 12][..]).unwrap();
    for (size, iterations) in [
        (64usize, 200_000usize),
        (1024, 100_000),
        (16 * 1024, 10_000),
    ] {
        let plain = vec![0x5au8; size];
        let raw_rate = rate("raw aes-256-gcm", size, iterations, || {
            let ct = raw
                .encrypt(
                    &nonce,
                    Payload {
                        msg: &plain,
                        aad: b"",
                    },
                )
                .unwrap();
            let pt = raw.decrypt(&nonce, Payload { msg: &ct, aad: b"" }).unwrap();
            std::hint::black_box(pt);
        });
        let ward_rate = rate("ward frame seal+open", size, iterations, || {
            let sealed = frame::seal(&dek, field, &plain);
            let opened = frame::open(&dek, field, &sealed).unwrap();
            std::hint::black_box(opened);
        });
        println!(
            "RESULT ratio {size} B: ward/raw = {:.2}",
            ward_rate / raw_rate
        );
    }
}
