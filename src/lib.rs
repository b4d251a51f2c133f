//! Ward: a self-hosted, compliance-first chat server that speaks the Stream Chat wire
//! protocol, so unmodified `stream-chat` SDKs can use it.
//!
//! Module map (see `ARCHITECTURE.md` in the steering repo for the whole design). Imports
//! point down these layers, never up; `tests/layers.rs` checks every `crate::` path:
//!
//! 1. Edges: `main` and [`cli`] (the `ward` subcommands), [`app`]
//!    ([`app::AppState::build`] opens everything without a port; [`app::Application`] binds
//!    and serves; `AppState::chat()`/`auth()`/`gdpr()` lend the domains their contexts),
//!    [`http`] (REST routers; [`http::error::ApiError`] is the only place that knows Stream
//!    codes and HTTP status, and logs a failure's cause once), [`ws`] (`/connect` sessions),
//!    [`ops`] (backup, escrow, config check, upgrade plan), [`ratelimit`], [`tls`], [`logging`].
//! 2. Domain, each with its own error type and narrow context: [`chat`] (what REST and
//!    WebSocket both call), [`auth`] (tokens, sessions, SSO, TOTP, account lifecycle),
//!    [`gdpr`] (export, erasure, holds, retention), [`usage`], [`jobs`] (the durable queue).
//! 3. Decisions and delivery: [`authz`] (Cedar), [`bus`] (this node's hub `bus::local`, the
//!    read decision `bus::gate`, other nodes through Redis).
//! 4. Records and keys: [`audit`] (appender, checkpoints, proofs), [`crypto`] (keys, frames,
//!    blind index, and the sealing decorators over the store in `crypto::sealed`).
//! 5. Storage: [`store`], one module per aggregate over SQLite and PostgreSQL.
//! 6. Leaves: [`config`], [`time`], [`fsx`], [`startup`], [`metrics`], and `audit::record`
//!    (the audit record types and sink traits).

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
