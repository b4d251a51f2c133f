//! Ward: a self-hosted, compliance-first chat server that speaks the Stream Chat wire
//! protocol, so unmodified `stream-chat` SDKs can use it.
//!
//! Module map (see `ARCHITECTURE.md` in the steering repo for the whole design):
//!
//! - [`config`]: one [`config::Config`] from an optional TOML file and `WARD_*` variables.
//! - [`app`]: [`app::AppState::build`] opens everything from the configuration (migrating
//!   the database) without a port; [`app::Application`] binds and serves until shutdown.
//! - [`cli`]: the bodies of the `ward` subcommands (`main` parses and dispatches).
//! - [`auth`]: Stream-compatible HS256 tokens and the caller identity.
//! - [`authz`]: the Cedar policy engine every action goes through; [`audit`]: the audit sink.
//! - [`store`]: one trait per aggregate (users, channels, messages, settings) with a SQLite
//!   and a PostgreSQL implementation.
//! - [`chat`]: the chat operations REST and WebSocket both call; no HTTP types there.
//! - [`http`]: thin REST routers, one module per resource.
//! - [`ws`]: the `/connect` WebSocket and per-connection sessions.
//! - [`bus`]: event fan-out and connection state: this node's hub (`bus::local`), the read
//!   decision deliveries pass (`bus::gate`), and the other nodes through Redis.
//! - [`time`]: timestamps as microseconds since the epoch, rendered as RFC 3339.
//! - [`usage`]: MAU and peak-concurrent-connection metering; [`metrics`]: `/metrics`.
//! - [`ops`]: operating from the shell: backup/restore of the embedded database, root-key
//!   escrow, `ward config check`, the migration plan of a rolling upgrade.
//! - [`startup`]: start-up refusals as one line naming the cause and the fix (a leaf);
//!   [`logging`]: the subscriber, with library targets capped so no level logs PHI.
//! - [`ratelimit`]: per-address and per-account rate limits (429, code 9).
//! - [`jobs`]: the durable job queue (claims, leases, retries, progress, resumption) and
//!   its workers, run by `ward serve` and `ward worker`.
//! - [`fsx`]: files 0600 and directories 0700 whatever the umask (a leaf).

pub mod app;
pub mod audit;
pub mod auth;
pub mod authz;
pub mod bus;
pub mod chat;
pub mod cli;
pub mod config;
pub mod crypto;
pub mod fsx;
pub mod gdpr;
pub mod http;
pub mod jobs;
pub mod logging;
pub mod metrics;
pub mod ops;
pub mod ratelimit;
pub mod startup;
pub mod store;
pub mod time;
pub mod tls;
pub mod usage;
pub mod ws;
