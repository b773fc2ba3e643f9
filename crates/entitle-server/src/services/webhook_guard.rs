//! Limits on badly signed storefront deliveries. Anyone who knows a connection's webhook URL can
//! post to it, so what a bad delivery costs must be bounded: a per-connection limiter answers 429
//! to floods of them (never to a correctly signed delivery, which is verified first), their bodies
//! are kept only as an excerpt and within caps (`store::commerce::take_rejection_slot`), and they
//! are purged after a retention period.

use chrono::{DateTime, Duration as Age, Utc};
use std::collections::HashMap;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::store::commerce::RejectionCaps;

/// Badly signed deliveries allowed per connection and window before 429. Providers sign every
/// delivery, so more than a few means a wrong secret (the stored ones show it) or someone guessing.
const FORGED_PER_WINDOW: u32 = 20;
const FORGED_WINDOW: Duration = Duration::from_secs(60);

/// Rejected deliveries stored per connection: enough examples to diagnose a wrong secret, few
/// enough that a flood costs a few MiB at most (each keeps at most `EXCERPT_BYTES` of its body).
pub const REJECTED_CAPS: RejectionCaps = RejectionCaps {
    per_hour: 10,
    in_total: 200,
};

/// How much of a rejected delivery's body is kept.
pub const EXCERPT_BYTES: usize = 2048;

/// Rejected deliveries deleted per purge run, so one run never holds the database for long.
pub const PURGE_BATCH: i64 = 500;
/// How often (at most) one instance runs the purge.
const PURGE_EVERY_MS: i64 = 60_000;

pub struct WebhookGuard {
    /// Connection id → (window start, bad deliveries in it). Keys are existing connections only
    /// (unknown ids are answered 404 before they are counted), so the map stays small.
    forged: Mutex<HashMap<String, (Instant, u32)>>,
    /// How long rejected deliveries are kept.
    pub retention: Age,
    /// When this instance last purged (UTC milliseconds).
    last_purge: AtomicI64,
}

impl WebhookGuard {
    pub fn new(retention: Age) -> WebhookGuard {
        WebhookGuard {
            forged: Mutex::new(HashMap::new()),
            retention,
            last_purge: AtomicI64::new(i64::MIN),
        }
    }

    /// `Some(seconds to wait)` while the connection has had too many bad deliveries.
    pub fn blocked(&self, connection_id: &str) -> Option<u64> {
        let forged = self.forged.lock().unwrap_or_else(|p| p.into_inner());
        let (started, count) = forged.get(connection_id)?;
        let elapsed = started.elapsed();
        (*count >= FORGED_PER_WINDOW && elapsed < FORGED_WINDOW).then(|| (FORGED_WINDOW - elapsed).as_secs().max(1))
    }

    pub fn record_forged(&self, connection_id: &str) {
        let mut forged = self.forged.lock().unwrap_or_else(|p| p.into_inner());
        let now = Instant::now();
        if forged.len() > 10_000 {
            forged.retain(|_, (started, _)| now.duration_since(*started) < FORGED_WINDOW);
        }
        let entry = forged.entry(connection_id.to_owned()).or_insert((now, 0));
        if now.duration_since(entry.0) >= FORGED_WINDOW {
            *entry = (now, 0);
        }
        entry.1 += 1;
    }

    /// Whether this instance should purge now (at most once a minute); claims the run if so.
    pub fn claim_purge(&self, now: DateTime<Utc>) -> bool {
        let now = now.timestamp_millis();
        let last = self.last_purge.load(Ordering::Relaxed);
        now.saturating_sub(last) >= PURGE_EVERY_MS
            && self
                .last_purge
                .compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed)
                .is_ok()
    }

    /// A full batch means more may be waiting: let the next delivery purge again.
    pub fn purge_again_soon(&self) {
        self.last_purge.store(i64::MIN, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_per_connection() {
        let guard = WebhookGuard::new(Age::days(7));
        for _ in 0..FORGED_PER_WINDOW {
            assert!(guard.blocked("sfc_a").is_none());
            guard.record_forged("sfc_a");
        }
        assert!(guard.blocked("sfc_a").is_some());
        assert!(guard.blocked("sfc_b").is_none(), "another connection is not affected");
    }

    #[test]
    fn purges_at_most_once_a_minute() {
        let guard = WebhookGuard::new(Age::days(7));
        let now = Utc::now();
        assert!(guard.claim_purge(now));
        assert!(!guard.claim_purge(now + Age::seconds(30)));
        assert!(guard.claim_purge(now + Age::seconds(61)));
        guard.purge_again_soon();
        assert!(guard.claim_purge(now + Age::seconds(62)));
    }
}
