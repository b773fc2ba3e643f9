//! What the application ships with: server, tenant, product, pinned keys, seat, cache file, and
//! the tunables (retries, timeouts, refresh schedule, clock).

use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use entitle_protocol::{Jwks, PublicKey};

use crate::clock::{Clock, SystemClock};
use crate::error::{Error, Result};

/// How network failures, timeouts and 5xx answers are retried: exponential backoff with jitter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Attempts in all, at least 1.
    pub max_attempts: u32,
    /// The wait before the second attempt; each next wait doubles.
    pub initial_backoff: Duration,
    /// The longest wait between attempts.
    pub max_backoff: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            max_attempts: 4,
            initial_backoff: Duration::from_millis(500),
            max_backoff: Duration::from_secs(8),
        }
    }
}

impl RetryPolicy {
    /// No retries: one attempt.
    pub fn none() -> Self {
        RetryPolicy {
            max_attempts: 1,
            ..RetryPolicy::default()
        }
    }

    /// The wait before attempt `attempt + 1` (`attempt` counts from 1), before jitter.
    pub(crate) fn backoff(&self, attempt: u32) -> Duration {
        let factor = 2u32.saturating_pow(attempt.saturating_sub(1));
        self.initial_backoff.saturating_mul(factor).min(self.max_backoff)
    }
}

/// When the background refresher renews the lease.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RefreshSchedule {
    /// Refresh when this fraction of the remaining lease time has passed (0.5: at half-time).
    pub fraction: f64,
    /// Never sooner than this after the previous attempt (keeps a short lease from hammering the server).
    pub min_delay: Duration,
    /// Never later than this (a long offline lease still learns about changes).
    pub max_delay: Duration,
    /// The wait after a failed attempt (the server unreachable), capped by the schedule above.
    pub retry_delay: Duration,
}

impl Default for RefreshSchedule {
    fn default() -> Self {
        RefreshSchedule {
            fraction: 0.5,
            min_delay: Duration::from_secs(30),
            max_delay: Duration::from_secs(24 * 3600),
            retry_delay: Duration::from_secs(120),
        }
    }
}

impl RefreshSchedule {
    /// The wait before the next refresh of a lease with `remaining` seconds left.
    pub(crate) fn delay(&self, remaining: i64) -> Duration {
        let remaining = Duration::from_secs(u64::try_from(remaining).unwrap_or(0));
        remaining
            .mul_f64(self.fraction.clamp(0.0, 1.0))
            .clamp(self.min_delay, self.max_delay.max(self.min_delay))
    }
}

/// The SDK's configuration. Build it with [`Config::new`], then adjust with the `with_…` methods.
#[derive(Clone)]
pub struct Config {
    pub(crate) server_url: String,
    pub(crate) tenant: String,
    pub(crate) product: String,
    pub(crate) keys: Vec<PublicKey>,
    pub(crate) seat_id: String,
    pub(crate) cache_path: PathBuf,
    pub(crate) retry: RetryPolicy,
    pub(crate) timeout: Duration,
    pub(crate) refresh: RefreshSchedule,
    pub(crate) clock: Arc<dyn Clock>,
    pub(crate) clock_tolerance: i64,
    /// Extra trust anchors for the server's TLS certificate, besides the built-in web roots.
    pub(crate) root_certificates: Vec<reqwest::Certificate>,
}

impl fmt::Debug for Config {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Config")
            .field("server_url", &self.server_url)
            .field("tenant", &self.tenant)
            .field("product", &self.product)
            .field("keys", &self.keys.iter().map(|k| &k.kid).collect::<Vec<_>>())
            .field("seat_id", &self.seat_id)
            .field("cache_path", &self.cache_path)
            .field("retry", &self.retry)
            .field("timeout", &self.timeout)
            .field("refresh", &self.refresh)
            .field("clock_tolerance", &self.clock_tolerance)
            .field("root_certificates", &self.root_certificates.len())
            .finish_non_exhaustive()
    }
}

impl Config {
    /// The configuration of one product on one device.
    ///
    /// * `server_url`: the licensing server's base URL, e.g. `https://licensing.example.com`.
    /// * `jwks_json`: the tenant's `jwks.json`, pinned in the build (`include_str!`): the SDK
    ///   trusts nothing else, so a compromised network cannot substitute keys.
    /// * `seat_id`: a stable device fingerprint ([`crate::device_fingerprint`]) or a user id.
    /// * `cache_path`: where the lease and activation secret are kept between runs.
    pub fn new(
        server_url: impl Into<String>,
        tenant: impl Into<String>,
        product: impl Into<String>,
        jwks_json: &str,
        seat_id: impl Into<String>,
        cache_path: impl Into<PathBuf>,
    ) -> Result<Config> {
        let jwks: Jwks =
            serde_json::from_str(jwks_json).map_err(|e| Error::Config(format!("the JWKS is not valid JSON: {e}")))?;
        let keys = jwks.public_keys();
        if keys.is_empty() {
            return Err(Error::Config("the JWKS holds no Ed25519 key".into()));
        }
        let server_url = server_url.into().trim_end_matches('/').to_owned();
        if !(server_url.starts_with("http://") || server_url.starts_with("https://")) {
            return Err(Error::Config(format!("not an http(s) URL: {server_url}")));
        }
        let seat_id = seat_id.into();
        if seat_id.is_empty() || seat_id.chars().count() > 128 {
            return Err(Error::Config("a seat id has 1 to 128 characters".into()));
        }
        Ok(Config {
            server_url,
            tenant: tenant.into(),
            product: product.into(),
            keys,
            seat_id,
            cache_path: cache_path.into(),
            retry: RetryPolicy::default(),
            timeout: Duration::from_secs(15),
            refresh: RefreshSchedule::default(),
            clock: Arc::new(SystemClock),
            clock_tolerance: entitle_protocol::lease::CLOCK_SKEW_SECONDS,
            root_certificates: Vec::new(),
        })
    }

    /// How failed requests are retried (default: 4 attempts, 0.5 s doubling up to 8 s).
    pub fn with_retry(mut self, retry: RetryPolicy) -> Config {
        self.retry = retry;
        self
    }

    /// The timeout of each attempt (default 15 s).
    pub fn with_timeout(mut self, timeout: Duration) -> Config {
        self.timeout = timeout;
        self
    }

    /// When the background refresher renews the lease (default: at half-time).
    pub fn with_refresh_schedule(mut self, schedule: RefreshSchedule) -> Config {
        self.refresh = schedule;
        self
    }

    /// The clock (default: the system clock). Tests inject a [`crate::ManualClock`].
    pub fn with_clock(mut self, clock: impl Clock) -> Config {
        self.clock = Arc::new(clock);
        self
    }

    /// How far the clock may go back before it counts as tampered (default 300 s: NTP
    /// corrections and daylight-saving mistakes stay well below).
    pub fn with_clock_tolerance(mut self, tolerance: Duration) -> Config {
        self.clock_tolerance = i64::try_from(tolerance.as_secs()).unwrap_or(i64::MAX);
        self
    }

    /// Also trusts the certificate authorities in `pem` (one or more PEM certificates) for the
    /// server's TLS certificate: the private CA of an on-premises server. The built-in web roots
    /// stay trusted; `https://` works without this for a server with a public certificate.
    pub fn with_root_certificate(mut self, pem: &[u8]) -> Result<Config> {
        let certificates = reqwest::Certificate::from_pem_bundle(pem)
            .map_err(|e| Error::Config(format!("not a PEM certificate: {e}")))?;
        if certificates.is_empty() {
            return Err(Error::Config("no PEM certificate in the root certificate".into()));
        }
        self.root_certificates.extend(certificates);
        Ok(self)
    }

    /// The seat id this configuration activates.
    pub fn seat_id(&self) -> &str {
        &self.seat_id
    }

    /// The cache file.
    pub fn cache_path(&self) -> &std::path::Path {
        &self.cache_path
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_up_to_the_cap() {
        let policy = RetryPolicy::default();
        let waits: Vec<_> = (1..=6).map(|a| policy.backoff(a).as_millis()).collect();
        assert_eq!(waits, [500, 1000, 2000, 4000, 8000, 8000]);
    }

    #[test]
    fn refresh_at_half_time_within_bounds() {
        let schedule = RefreshSchedule::default();
        assert_eq!(schedule.delay(86_400), Duration::from_secs(43_200));
        assert_eq!(schedule.delay(10), Duration::from_secs(30));
        assert_eq!(schedule.delay(-5), Duration::from_secs(30));
        assert_eq!(schedule.delay(10 * 86_400), Duration::from_secs(86_400));
    }

    #[test]
    fn refuses_a_jwks_without_keys() {
        let error = Config::new("http://x", "t", "p", r#"{"keys": []}"#, "seat", "/tmp/c").unwrap_err();
        assert!(matches!(error, Error::Config(_)));
    }

    #[test]
    fn refuses_a_root_certificate_that_is_not_pem() {
        let config = Config::new("https://x", "t", "p", JWKS_SAMPLE, "seat", "/tmp/c").unwrap();
        assert!(matches!(
            config.with_root_certificate(b"not a certificate"),
            Err(Error::Config(_))
        ));
    }

    const JWKS_SAMPLE: &str = r#"{"keys":[{"kty":"OKP","crv":"Ed25519","x":"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo","kid":"k1","alg":"EdDSA","use":"sig"}]}"#;
}
