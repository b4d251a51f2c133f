//! Password hashing (argon2id, PHC strings) for bootstrap admins and recovery codes.

use argon2::{Argon2, PasswordHash, PasswordHasher, PasswordVerifier};

pub fn hash(secret: &str) -> anyhow::Result<String> {
    Argon2::default()
        .hash_password(secret.as_bytes())
        .map(|h| h.to_string())
        .map_err(|e| anyhow::anyhow!("hashing failed: {e}"))
}

/// Whether `secret` matches the PHC string `stored` (false for a malformed one).
pub fn verify(secret: &str, stored: &str) -> bool {
    PasswordHash::new(stored).is_ok_and(|h| {
        Argon2::default()
            .verify_password(secret.as_bytes(), &h)
            .is_ok()
    })
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_hash_verifies_its_password_only() {
        let h = super::hash("correct horse").unwrap();
        assert!(h.starts_with("$argon2id$"));
        assert!(super::verify("correct horse", &h));
        assert!(!super::verify("correct horsf", &h));
        assert!(!super::verify("correct horse", "not a hash"));
    }
}
