//! The TOML configuration file (`--config`): its keys, and errors that name the line.

use std::path::{Path, PathBuf};

use serde::Deserialize;

use super::{Limits, LogFormat, Plan};

/// The TOML file: every key optional.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct FileConfig {
    pub(super) bind: Option<String>,
    pub(super) data_dir: Option<PathBuf>,
    pub(super) database_url: Option<String>,
    pub(super) api_key: Option<String>,
    pub(super) api_secret: Option<String>,
    pub(super) dev_tokens: Option<bool>,
    // guests and anonymous users (issue 16)
    pub(super) guest_users: Option<bool>,
    pub(super) anonymous_users: Option<bool>,
    pub(super) log_format: Option<LogFormat>,
    pub(super) limits: Option<Limits>,
    pub(super) redis_url: Option<String>,
    pub(super) redis_channel: Option<String>,
    pub(super) node_id: Option<String>,
    pub(super) plan: Option<Plan>,
    pub(super) policy_dir: Option<PathBuf>,
    pub(super) encryption: Option<bool>,
}

/// Parses the TOML file; an error names the file, the line and the key, on one line.
pub(super) fn parse_file(path: &Path, text: &str) -> anyhow::Result<FileConfig> {
    toml::from_str(text).map_err(|e| {
        let line = e
            .span()
            .map(|s| text[..s.start.min(text.len())].matches('\n').count() + 1);
        let key = e.span().and_then(|s| {
            let start = text[..s.start.min(text.len())]
                .rfind('\n')
                .map_or(0, |i| i + 1);
            let end = text[start..].find('\n').map_or(text.len(), |i| start + i);
            text[start..end]
                .split_once('=')
                .map(|(k, _)| k.trim().trim_matches('"').to_string())
                .filter(|k| !k.is_empty() && !k.starts_with('['))
        });
        let message = e.message().split_whitespace().collect::<Vec<_>>().join(" ");
        let mut at = format!("config file {}", path.display());
        if let Some(line) = line {
            at.push_str(&format!(", line {line}"));
        }
        if let Some(key) = key {
            at.push_str(&format!(", key `{key}`"));
        }
        anyhow::Error::new(crate::startup::StartupError::new(
            format!("{at}: {message}"),
            "correct that line (every key is optional; README \"Configuration\" lists them)",
        ))
    })
}
