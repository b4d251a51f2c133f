//! Logging set-up: `WARD_LOG` (an `EnvFilter`, default `info,sqlx=warn`) to stderr, as text
//! or JSON. Libraries that log payloads at their verbose levels (the WebSocket library logs
//! whole frames at trace: message text, names, e-mails) are capped whatever `WARD_LOG` asks,
//! so no log level reveals PHI.

use tracing::Level;

use crate::config::LogFormat;

/// Library targets and the most verbose level they may log at.
const CAPS: &[(&str, Level)] = &[
    ("tungstenite", Level::INFO),
    ("tokio_tungstenite", Level::INFO),
    ("axum", Level::INFO),
    ("hyper", Level::INFO),
    ("hyper_util", Level::INFO),
    ("h2", Level::INFO),
    ("reqwest", Level::INFO),
    ("rustls", Level::INFO),
    ("tokio_rustls", Level::INFO),
    ("redis", Level::INFO),
    ("tower_http", Level::INFO),
    ("samael", Level::INFO),
    ("openidconnect", Level::INFO),
    ("sqlx", Level::WARN),
    ("sqlx_core", Level::WARN),
    ("sqlx_postgres", Level::WARN),
    ("sqlx_sqlite", Level::WARN),
];

/// Whether an event of `target` at `level` is beyond its library's cap.
pub fn capped(target: &str, level: Level) -> bool {
    CAPS.iter().any(|(lib, max)| {
        let ours = target == *lib
            || target
                .strip_prefix(lib)
                .is_some_and(|rest| rest.starts_with("::"));
        ours && level > *max
    })
}

/// `WARD_LOG` with every directive for a capped library clamped to its cap, and the caps
/// appended (they apply under a bare level such as `trace`).
pub fn filter_directives(wanted: &str) -> String {
    let mut parts: Vec<String> = wanted
        .split(',')
        .map(str::trim)
        .filter(|d| !d.is_empty())
        .map(|d| {
            let Some((target, level)) = d.rsplit_once('=') else {
                return d.to_string();
            };
            let name = target.split('[').next().unwrap_or(target);
            match level.parse::<Level>() {
                Ok(level) if capped(name, level) => {
                    let max = CAPS
                        .iter()
                        .filter(|(lib, _)| {
                            name == *lib
                                || name
                                    .strip_prefix(lib)
                                    .is_some_and(|rest| rest.starts_with("::"))
                        })
                        .map(|(_, max)| *max)
                        .min()
                        .unwrap_or(Level::INFO);
                    format!("{target}={max}")
                }
                _ => d.to_string(),
            }
        })
        .collect();
    parts.extend(CAPS.iter().map(|(lib, max)| format!("{lib}={max}")));
    parts.join(",")
}

/// Installs the global subscriber.
pub fn init(format: LogFormat) {
    let wanted = std::env::var("WARD_LOG").unwrap_or_else(|_| "info".into());
    let filter = tracing_subscriber::EnvFilter::try_new(filter_directives(&wanted))
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(filter_directives("info")));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Json => builder.json().init(),
        LogFormat::Text => builder.init(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn library_targets_are_capped_and_ours_are_not() {
        assert!(capped("tungstenite::protocol", Level::TRACE));
        assert!(capped("tokio_tungstenite", Level::DEBUG));
        assert!(!capped("tungstenite::protocol", Level::INFO));
        assert!(capped("sqlx::query", Level::INFO));
        assert!(!capped("ward::ws::session", Level::TRACE));
        assert!(!capped("tungstenite_like", Level::TRACE));
    }

    #[test]
    fn verbose_directives_for_capped_libraries_are_clamped() {
        let d = filter_directives("trace,tungstenite::protocol=trace,ward=debug,hyper=warn");
        assert!(
            d.starts_with("trace,tungstenite::protocol=INFO,ward=debug,hyper=warn,"),
            "{d}"
        );
        assert!(
            d.contains(",tokio_tungstenite=INFO,") && d.ends_with("sqlx_sqlite=WARN"),
            "{d}"
        );
    }
}
