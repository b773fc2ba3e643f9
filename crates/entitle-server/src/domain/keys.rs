//! API keys: high-entropy bearer secrets, shown once and stored as a SHA-256 hash.
//! A slow password hash is unnecessary for 256-bit random secrets, and a fast one keeps
//! authentication off the critical path of every request.

use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use utoipa::ToSchema;

use super::ids::random_token;

const KEY_PREFIX: &str = "esk_";

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// Everything, including API keys.
    Admin,
    /// Read everything; lifecycle actions on entitlements. No catalogue or key management.
    Support,
    /// A storefront or back end: create customers and entitlements, nothing else.
    Integration,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Admin => "admin",
            Role::Support => "support",
            Role::Integration => "integration",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "admin" => Some(Role::Admin),
            "support" => Some(Role::Support),
            "integration" => Some(Role::Integration),
            _ => None,
        }
    }
}

/// A freshly generated key: the secret goes to the caller once, the hash to the database.
pub struct ApiKeySecret {
    pub secret: SecretString,
    pub hash: String,
    /// The first characters, shown in listings so people can tell their keys apart.
    pub display_prefix: String,
}

impl ApiKeySecret {
    pub fn generate() -> Self {
        let secret = format!("{KEY_PREFIX}{}", random_token(32));
        let hash = hash_secret(&secret);
        let display_prefix = secret[..KEY_PREFIX.len() + 6].to_owned();
        Self {
            secret: SecretString::from(secret),
            hash,
            display_prefix,
        }
    }

    pub fn expose(&self) -> &str {
        self.secret.expose_secret()
    }
}

/// The stored form of a bearer secret (API key, and later activation secrets).
pub fn hash_secret(secret: &str) -> String {
    let digest = Sha256::digest(secret.as_bytes());
    let mut hex = String::with_capacity(64);
    for byte in digest {
        hex.push_str(&format!("{byte:02x}"));
    }
    hex
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_unique_prefixed_and_hash_deterministically() {
        let a = ApiKeySecret::generate();
        let b = ApiKeySecret::generate();
        assert!(a.expose().starts_with("esk_"));
        assert_ne!(a.expose(), b.expose());
        assert_eq!(hash_secret(a.expose()), a.hash);
        assert_eq!(a.hash.len(), 64);
        assert!(a.expose().starts_with(&a.display_prefix));
        assert!(!format!("{:?}", a.secret).contains(a.expose()));
    }
}
