//! Idempotency keys on management writes: which keys are acceptable, what identifies "the same
//! request", which answers are kept for replay, and what a retry gets.

use sha2::{Digest, Sha256};

use super::RuleViolation;

/// How long a key and its answer are kept: a retry within this window gets the first answer.
pub const RETENTION_MS: i64 = 24 * 60 * 60 * 1000;

/// How long a claimed key stays "in progress" without an answer. A run that crashed leaves its
/// key claimed; after the lease a retry may run the request again instead of waiting a day.
pub const LEASE_MS: i64 = 60 * 1000;

/// The longest key accepted (Stripe's limit; long enough for a UUID with a prefix, short enough
/// to index).
pub const MAX_KEY_LEN: usize = 255;

/// A client-chosen `Idempotency-Key`: 1–255 printable ASCII characters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdempotencyKey(String);

impl IdempotencyKey {
    pub fn parse(raw: &str) -> Result<Self, RuleViolation> {
        let printable = raw.bytes().all(|b| (0x20..=0x7e).contains(&b));
        if raw.is_empty() || raw.len() > MAX_KEY_LEN || !printable {
            return Err(RuleViolation::new(
                "invalid_idempotency_key",
                "Idempotency-Key must be 1 to 255 printable ASCII characters",
            ));
        }
        Ok(Self(raw.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// What makes two requests "the same" for a key: method, path with query, and the body bytes.
/// Each part is length-prefixed so no two different requests can run together into one input.
pub fn fingerprint(method: &str, path_and_query: &str, body: &[u8]) -> String {
    let mut hasher = Sha256::new();
    for part in [method.as_bytes(), path_and_query.as_bytes(), body] {
        hasher.update((part.len() as u64).to_be_bytes());
        hasher.update(part);
    }
    hasher.finalize().iter().map(|byte| format!("{byte:02x}")).collect()
}

/// Is an answer with this status kept and replayed? Successes and the client's own mistakes
/// are final; server errors are not (the retry should run again), nor are the 4xx that only
/// say "not now" (408 timeout, 429 rate limited), which a later retry may get past.
pub fn keeps(status: u16) -> bool {
    match status {
        200..=299 => true,
        408 | 429 => false,
        400..=499 => true,
        _ => false,
    }
}

/// A key already on record, as far as the decision needs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Recorded {
    /// A request is running under the key (or crashed before its lease ran out).
    InProgress { request_hash: String },
    /// The key has its answer.
    Completed { request_hash: String },
}

/// What a request whose key is already on record gets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// The same request, answered: send the stored answer again.
    Replay,
    /// The same request, still running: try again shortly.
    InProgress,
    /// The key was used for a different request: a client bug, refused.
    Reused,
}

pub fn verdict(recorded: &Recorded, request_hash: &str) -> Verdict {
    match recorded {
        Recorded::InProgress { request_hash: hash } | Recorded::Completed { request_hash: hash }
            if hash != request_hash =>
        {
            Verdict::Reused
        }
        Recorded::InProgress { .. } => Verdict::InProgress,
        Recorded::Completed { .. } => Verdict::Replay,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_one_to_255_printable_ascii() {
        assert!(IdempotencyKey::parse("a").is_ok());
        assert!(IdempotencyKey::parse(&"k".repeat(255)).is_ok());
        assert!(IdempotencyKey::parse("order 42/retry:1").is_ok());
        assert!(IdempotencyKey::parse("").is_err());
        assert!(IdempotencyKey::parse(&"k".repeat(256)).is_err());
        assert!(IdempotencyKey::parse("tab\there").is_err());
        assert!(IdempotencyKey::parse("clé").is_err());
    }

    #[test]
    fn fingerprints_tell_requests_apart() {
        let base = fingerprint("POST", "/api/v1/entitlements", b"{}");
        assert_eq!(base, fingerprint("POST", "/api/v1/entitlements", b"{}"));
        assert_ne!(base, fingerprint("PUT", "/api/v1/entitlements", b"{}"));
        assert_ne!(base, fingerprint("POST", "/api/v1/customers", b"{}"));
        assert_ne!(base, fingerprint("POST", "/api/v1/entitlements", b"{ }"));
        // Length prefixes: moving bytes between parts changes the fingerprint.
        assert_ne!(fingerprint("POST", "/a", b"b"), fingerprint("POST", "/ab", b""));
    }

    #[test]
    fn successes_and_client_errors_are_kept_server_errors_are_not() {
        for status in [200, 201, 204, 400, 403, 404, 409, 422] {
            assert!(keeps(status), "{status}");
        }
        for status in [408, 429, 500, 502, 503, 301] {
            assert!(!keeps(status), "{status}");
        }
    }

    #[test]
    fn verdicts() {
        let done = Recorded::Completed {
            request_hash: "a".into(),
        };
        let running = Recorded::InProgress {
            request_hash: "a".into(),
        };
        assert_eq!(verdict(&done, "a"), Verdict::Replay);
        assert_eq!(verdict(&done, "b"), Verdict::Reused);
        assert_eq!(verdict(&running, "a"), Verdict::InProgress);
        assert_eq!(verdict(&running, "b"), Verdict::Reused);
    }
}
