//! Integration tests: one binary. Every test runs against SQLite and PostgreSQL; the
//! helper spawns the real application on port 0 with a fresh database.

// A benchmark or test reports a failure by panicking: unwrapping is how it fails.
#![allow(clippy::unwrap_used)]

mod helpers;

mod audit_crash;
mod audit_durability;
mod audit_log;
mod auth;
mod authz_api;
mod authz_matrix;
mod bad_input;
mod channels;
mod checkpoint_sink;
mod classification;
mod cluster;
mod delivery_gate;
mod devices;
mod drafts_reminders;
mod encryption;
mod faults;
mod fuzz_seeds;
mod gdpr_erase;
mod gdpr_export;
mod gdpr_resume;
mod guest;
mod hardening;
mod identity;
mod jobs;
#[cfg(feature = "aws-kms")]
mod kms;
mod logging;
mod members;
mod message_extras;
mod messages;
#[cfg(any(feature = "aws-kms", feature = "s3-checkpoints"))]
mod moto;
mod openapi;
mod ops;
mod polls;
mod presence;
mod properties;
mod rate_limits;
mod reads_and_reactions;
mod retention;
mod revocation;
mod saml;
mod store_contract;
mod threads;
mod tier2;
mod tls;
mod uploads;
mod usage;
mod websocket;
