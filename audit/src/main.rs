//! `ward-audit`: the offline verifier auditors run. Thin: parse arguments, call the
//! library, print exactly one line.
//!
//! Exit codes: 0 = `OK …`, 1 = `FAIL <reason>` (the evidence or the state did not verify, or
//! could not be read), 2 = usage error (bad arguments, unusable `--key`).

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::Parser;
use ward_audit::bundle::{RawBundle, State};
use ward_audit::note::{Signer, Verifier};
use ward_audit::proof::{ConsistencyProof, InclusionProof};

#[derive(Parser)]
#[command(
    name = "ward-audit",
    version,
    about = "Offline verifier for Ward audit logs"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(clap::Subcommand)]
enum Command {
    /// Verify an auditor bundle directory against the pinned log key.
    Verify {
        /// The bundle directory (checkpoint, entries, bundle.json).
        bundle: PathBuf,
        /// The log's verifier key (`name+keyid+base64`), or a file containing it.
        #[arg(long)]
        key: String,
        /// The auditor's last accepted checkpoint; read if present, written on success.
        #[arg(long)]
        state: Option<PathBuf>,
    },
    /// Verify a C2SP tlog-proof file for one entry.
    ProveInclusion {
        /// The proof file (c2sp.org/tlog-proof@v1).
        proof: PathBuf,
        /// The raw entry bytes.
        #[arg(long)]
        entry: PathBuf,
        /// The log's verifier key, or a file containing it.
        #[arg(long)]
        key: String,
    },
    /// Verify a consistency proof file between two signed checkpoints.
    ProveConsistency {
        /// The proof file (ward-audit/consistency-proof@v1).
        proof: PathBuf,
        /// The log's verifier key, or a file containing it.
        #[arg(long)]
        key: String,
    },
    /// Print the verifier key for a name and a 32-byte Ed25519 seed (tests and vectors only:
    /// a real log key never leaves its signer).
    Keygen {
        #[arg(long)]
        name: String,
        /// 64 hex digits.
        #[arg(long)]
        seed_hex: String,
    },
}

/// A failure: the message and the exit code.
struct Fail(String, u8);

fn fail(msg: impl std::fmt::Display) -> Fail {
    Fail(msg.to_string(), 1)
}

fn usage(msg: impl std::fmt::Display) -> Fail {
    Fail(msg.to_string(), 2)
}

/// `--key` is the verifier key itself, or a path to a file holding it (one trailing newline
/// allowed).
fn load_key(arg: &str) -> Result<Verifier, Fail> {
    if let Ok(v) = Verifier::parse(arg) {
        return Ok(v);
    }
    let text = std::fs::read_to_string(arg).map_err(|e| {
        usage(format!(
            "--key is neither a verifier key nor a readable file: {e}"
        ))
    })?;
    let text = text.strip_suffix('\n').unwrap_or(&text);
    let text = text.strip_suffix('\r').unwrap_or(text);
    Verifier::parse(text).map_err(|e| usage(format!("--key file: {e}")))
}

fn read_text(path: &Path, what: &str) -> Result<String, Fail> {
    std::fs::read_to_string(path)
        .map_err(|e| fail(format!("cannot read {what} {}: {e}", path.display())))
}

fn run(command: Command) -> Result<String, Fail> {
    match command {
        Command::Verify { bundle, key, state } => {
            let verifier = load_key(&key)?;
            let prior = match &state {
                Some(p) if p.exists() => {
                    Some(State::load(p).map_err(|e| fail(format!("state: {e}")))?)
                }
                _ => None,
            };
            let b = RawBundle::read(&bundle).map_err(|e| fail(format!("bundle: {e}")))?;
            let report = b.verify(&verifier, prior.as_ref()).map_err(fail)?;
            if let Some(p) = &state {
                report.new_state().save(p).map_err(|e| {
                    fail(format!(
                        "verified, but cannot write state {}: {e}",
                        p.display()
                    ))
                })?;
            }
            Ok(report.to_string())
        }
        Command::ProveInclusion { proof, entry, key } => {
            let verifier = load_key(&key)?;
            let text = read_text(&proof, "proof")?;
            let entry = std::fs::read(&entry)
                .map_err(|e| fail(format!("cannot read entry {}: {e}", entry.display())))?;
            let p = InclusionProof::parse(&text).map_err(fail)?;
            let r = p.verify(&entry, &verifier).map_err(fail)?;
            Ok(format!(
                "OK {} entry {} included in tree size {} root {}",
                r.checkpoint.origin,
                r.index,
                r.checkpoint.size,
                base64_root(&r.checkpoint.root)
            ))
        }
        Command::ProveConsistency { proof, key } => {
            let verifier = load_key(&key)?;
            let text = read_text(&proof, "proof")?;
            let p = ConsistencyProof::parse(&text).map_err(fail)?;
            let r = p.verify(&verifier).map_err(fail)?;
            Ok(format!(
                "OK {} tree size {} root {} is consistent with tree size {} root {}",
                r.new.origin,
                r.new.size,
                base64_root(&r.new.root),
                r.old.size,
                base64_root(&r.old.root)
            ))
        }
        Command::Keygen { name, seed_hex } => {
            let seed =
                parse_seed(&seed_hex).ok_or_else(|| usage("--seed-hex must be 64 hex digits"))?;
            let signer = Signer::from_seed(&name, &seed).map_err(usage)?;
            Ok(signer.verifier_key())
        }
    }
}

fn base64_root(root: &[u8; 32]) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(root)
}

fn parse_seed(text: &str) -> Option<[u8; 32]> {
    let mut out = [0u8; 32];
    hex::decode_to_slice(text, &mut out).ok()?;
    Some(out)
}

/// One line, always: control characters in a reason (which can quote hostile input) are
/// replaced so the output stays a single line.
fn one_line(s: &str) -> String {
    s.chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect()
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        // clap prints usage (stderr, exit 2) or help/version (stdout, exit 0).
        Err(e) => e.exit(),
    };
    match run(cli.command) {
        Ok(line) => {
            println!("{}", one_line(&line));
            ExitCode::SUCCESS
        }
        Err(Fail(msg, code)) => {
            println!("FAIL {}", one_line(&msg));
            ExitCode::from(code)
        }
    }
}
