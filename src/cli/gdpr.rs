//! `ward gdpr`: erasure (Art. 17) and exports (Art. 15/20), checked offline.

use std::path::{Path, PathBuf};

use anyhow::Context;

use crate::app::AppState;
use crate::config::Config;
use crate::gdpr::{erase, export};

/// `ward gdpr erase`: the erasure certificate on stdout.
pub async fn erase(config: Config, user_id: &str, hard: bool) -> anyhow::Result<()> {
    let state = AppState::build(config).await?;
    let mode = if hard {
        erase::Mode::Hard
    } else {
        erase::Mode::Soft
    };
    let options = erase::Options {
        user: mode,
        messages: mode,
    };
    let certificate = erase::erase_user(&state.gdpr(), user_id, options, None, None)
        .await
        .map_err(|e| anyhow::anyhow!(crate::http::error::ApiError::from(e).message))?;
    state.audit.flush().await?;
    println!("{}", serde_json::to_string_pretty(&certificate)?);
    Ok(())
}

/// `ward gdpr verify-export`: `key` is the verifier key, or a file holding it.
pub fn verify_export(file: &Path, key: &str) -> anyhow::Result<()> {
    let key = match std::fs::read_to_string(key) {
        Ok(text) => text.strip_suffix('\n').unwrap_or(&text).to_string(),
        Err(_) => key.to_string(),
    };
    let m =
        export::verify_export(file, &key).with_context(|| format!("FAIL {}", file.display()))?;
    let count = |name: &str| m.file(name).map_or(0, |f| f.count);
    println!(
        "OK {}: signed manifest, {} files, {} messages, {} audit entries proven in tree size {}",
        file.display(),
        m.files.len(),
        count("messages.ndjson"),
        count("audit.ndjson"),
        m.audit_tree_size
    );
    Ok(())
}

/// `ward gdpr export`: one ZIP for one user, a directory of them for several.
pub async fn export(config: Config, user_ids: &[String], out: PathBuf) -> anyhow::Result<()> {
    // The full application state (keys, audit log), without serving.
    let state = AppState::build(config).await?;
    let written = if let [user_id] = user_ids {
        let mut shown = progress_line(String::new());
        let m = export::export_user(&state.gdpr(), user_id, &out, &mut shown)
            .await
            .map_err(|e| anyhow::anyhow!(crate::http::error::ApiError::from(e).message))?;
        vec![(out, m)]
    } else {
        crate::fsx::create_private_dir(&out)
            .with_context(|| format!("creating {}", out.display()))?;
        let n = user_ids.len();
        let mut lines: Vec<_> = (1..=n)
            .map(|i| progress_line(format!("user {i}/{n}: ")))
            .collect();
        let mut shown = |i: usize, done, total| lines[i](done, total);
        export::export_users(&state.gdpr(), user_ids, &out, &mut shown)
            .await
            .map_err(|e| anyhow::anyhow!(crate::http::error::ApiError::from(e).message))?
    };
    state.audit.flush().await?;
    let key = &state.audit.verifier_key;
    for (path, m) in &written {
        let count = |name: &str| m.file(name).map_or(0, |f| f.count);
        println!(
            "ward: wrote {}: {} messages, {} reactions, {} audit entries (tree size {})",
            path.display(),
            count("messages.ndjson"),
            count("reactions.ndjson"),
            count("audit.ndjson"),
            m.audit_tree_size
        );
    }
    println!("ward: verifier key: {key}");
    println!("ward: check with: ward gdpr verify-export FILE --key '{key}'");
    Ok(())
}

/// `exported N/M records` on stderr: rewritten in place on a terminal (each percent),
/// one line per tenth otherwise.
fn progress_line(label: String) -> impl FnMut(u64, u64) + Send {
    use std::io::IsTerminal;
    let tty = std::io::stderr().is_terminal();
    let mut shown = None;
    move |done, total| {
        let pct = (done * 100).checked_div(total).unwrap_or(100);
        let step = if tty { pct } else { pct / 10 * 10 };
        if shown == Some(step) {
            return;
        }
        shown = Some(step);
        let end = if tty && pct < 100 { "" } else { "\n" };
        let start = if tty { "\r" } else { "" };
        eprint!("{start}ward: {label}exported {done}/{total} records{end}");
    }
}
