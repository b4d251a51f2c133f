//! Operating a deployment from the shell: backup and restore of the embedded database,
//! root-key escrow, `ward config check`, and the migration plan of a rolling upgrade. An
//! edge like `http`: it calls the layers below and prints nothing itself (`main` does).

pub mod backup;
pub mod check;
pub mod keys;
pub mod migrate;
