//! End-user passwords: argon2id, verified off the async runtime by the caller. Unknown users are
//! checked against a fixed dummy hash so that both answers take the same time.

use argon2::password_hash::rand_core::OsRng;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::Argon2;
use std::sync::OnceLock;

use super::RuleViolation;

pub fn check_strength(password: &str) -> Result<(), RuleViolation> {
    let length = password.chars().count();
    if !(10..=256).contains(&length) {
        return Err(RuleViolation::new(
            "weak_password",
            "a password must have 10 to 256 characters",
        ));
    }
    Ok(())
}

pub fn hash(password: &str) -> Result<String, argon2::password_hash::Error> {
    let salt = SaltString::generate(&mut OsRng);
    Ok(Argon2::default().hash_password(password.as_bytes(), &salt)?.to_string())
}

/// Verifies `password` against `stored` (or, with `None`, against a dummy hash, answering false).
pub fn verify(password: &str, stored: Option<&str>) -> bool {
    static DUMMY: OnceLock<String> = OnceLock::new();
    let dummy = DUMMY.get_or_init(|| hash("dummy password for timing").unwrap_or_default());
    let (candidate, real) = match stored {
        Some(stored) => (stored, true),
        None => (dummy.as_str(), false),
    };
    let Ok(parsed) = PasswordHash::new(candidate) else {
        return false;
    };
    Argon2::default().verify_password(password.as_bytes(), &parsed).is_ok() && real
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashes_verify_and_unknown_users_never_pass() {
        let stored = hash("correct horse battery").unwrap();
        assert!(stored.starts_with("$argon2id$"));
        assert!(verify("correct horse battery", Some(&stored)));
        assert!(!verify("wrong horse battery", Some(&stored)));
        assert!(!verify("dummy password for timing", None));
        assert!(check_strength("short").is_err());
        assert!(check_strength("long enough pass").is_ok());
    }
}
