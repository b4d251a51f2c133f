//! Field-level encryption (envelope): a root key wraps KEKs, KEKs wrap one DEK per data
//! subject, DEKs seal fields in the [`frame`] format. This is the first increment: the frame,
//! the keys' hygiene (zeroized, never `Debug`), and the local root-key provider; the keyring
//! tables and the store integration follow (see the field-encryption issue).

pub mod frame;
pub mod root;
