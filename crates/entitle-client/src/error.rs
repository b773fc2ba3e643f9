//! The errors an application matches on: the server's denials, and everything the SDK refuses.

use std::time::Duration;

use entitle_protocol::lease::LeaseError;
use entitle_protocol::wire::denial as code;

/// A refusal from the licensing server, by its stable code.
///
/// The server signs denials like every other answer, so a `Denial` is trustworthy: it was
/// verified against the pinned keys and answers this very request (its nonce matched).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Denial {
    /// The request was malformed (a bug in the SDK or a proxy in the way).
    InvalidRequest,
    /// Unknown activation code, or wrong email or password.
    InvalidCredential,
    /// The activation is unknown, deactivated or revoked: activate again.
    InvalidActivation,
    /// The entitlement starts later.
    EntitlementNotStarted,
    /// The entitlement (and its grace period) ended.
    EntitlementExpired,
    /// The vendor disabled the entitlement.
    EntitlementDisabled,
    /// Every seat (and overdraft seat) is taken: deactivate another device first.
    SeatLimitReached,
    /// The entitlement does not grant this feature, or not as this kind.
    FeatureNotEntitled,
    /// Every unit of the element pool is checked out.
    PoolExhausted,
    /// Returning more units than this seat holds.
    NothingCheckedOut,
    /// The metered allowance (with its overdraft) is used up for this period.
    UsageLimitReached,
    /// A concurrent seat lapsed and was given to another device: activate again.
    LeaseExpired,
    /// The entitlement has no offline lease period.
    OfflineNotAllowed,
    /// Too many failed credentials from this address; wait before trying again.
    RateLimited {
        /// The server's `Retry-After`, when it sent one.
        retry_after: Option<Duration>,
    },
    /// A code this SDK version does not know (a newer server).
    Other(String),
}

impl Denial {
    /// The denial for a wire code; `retry_after` is only kept for `rate_limited`.
    pub fn from_code(wire: &str, retry_after: Option<Duration>) -> Denial {
        match wire {
            code::INVALID_REQUEST => Denial::InvalidRequest,
            code::INVALID_CREDENTIAL => Denial::InvalidCredential,
            code::INVALID_ACTIVATION => Denial::InvalidActivation,
            code::ENTITLEMENT_NOT_STARTED => Denial::EntitlementNotStarted,
            code::ENTITLEMENT_EXPIRED => Denial::EntitlementExpired,
            code::ENTITLEMENT_DISABLED => Denial::EntitlementDisabled,
            code::SEAT_LIMIT_REACHED => Denial::SeatLimitReached,
            code::FEATURE_NOT_ENTITLED => Denial::FeatureNotEntitled,
            code::POOL_EXHAUSTED => Denial::PoolExhausted,
            code::NOTHING_CHECKED_OUT => Denial::NothingCheckedOut,
            code::USAGE_LIMIT_REACHED => Denial::UsageLimitReached,
            code::LEASE_EXPIRED => Denial::LeaseExpired,
            code::OFFLINE_NOT_ALLOWED => Denial::OfflineNotAllowed,
            code::RATE_LIMITED => Denial::RateLimited { retry_after },
            other => Denial::Other(other.to_owned()),
        }
    }

    /// The stable wire code.
    pub fn code(&self) -> &str {
        match self {
            Denial::InvalidRequest => code::INVALID_REQUEST,
            Denial::InvalidCredential => code::INVALID_CREDENTIAL,
            Denial::InvalidActivation => code::INVALID_ACTIVATION,
            Denial::EntitlementNotStarted => code::ENTITLEMENT_NOT_STARTED,
            Denial::EntitlementExpired => code::ENTITLEMENT_EXPIRED,
            Denial::EntitlementDisabled => code::ENTITLEMENT_DISABLED,
            Denial::SeatLimitReached => code::SEAT_LIMIT_REACHED,
            Denial::FeatureNotEntitled => code::FEATURE_NOT_ENTITLED,
            Denial::PoolExhausted => code::POOL_EXHAUSTED,
            Denial::NothingCheckedOut => code::NOTHING_CHECKED_OUT,
            Denial::UsageLimitReached => code::USAGE_LIMIT_REACHED,
            Denial::LeaseExpired => code::LEASE_EXPIRED,
            Denial::OfflineNotAllowed => code::OFFLINE_NOT_ALLOWED,
            Denial::RateLimited { .. } => code::RATE_LIMITED,
            Denial::Other(other) => other,
        }
    }

    /// Denials after which the activation is gone for good: the SDK forgets it.
    pub(crate) fn ends_activation(&self) -> bool {
        matches!(self, Denial::InvalidActivation | Denial::LeaseExpired)
    }

    /// Denials that make the current lease unusable although its signature is still valid:
    /// the SDK keeps the activation (the vendor may re-enable it) but stops trusting the lease.
    pub(crate) fn suspends_lease(&self) -> bool {
        matches!(
            self,
            Denial::EntitlementDisabled | Denial::EntitlementExpired | Denial::EntitlementNotStarted
        )
    }
}

impl std::fmt::Display for Denial {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Denial::RateLimited {
                retry_after: Some(wait),
            } => write!(f, "rate_limited (retry after {} s)", wait.as_secs()),
            other => f.write_str(other.code()),
        }
    }
}

/// Everything that can go wrong. Match on the variants; the messages are for logs.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The server refused the request (see [`Denial`]).
    #[error("the licensing server refused: {0}")]
    Denied(Denial),
    /// There is no activation (never activated, deactivated, or revoked).
    #[error("this installation is not activated")]
    NotActivated,
    /// An answer, lease token or licence file is not signed by the pinned keys (or not signed at all).
    #[error("the signature does not verify against the pinned keys: forged or tampered")]
    BadSignature,
    /// A genuine answer to another request (its nonce is not the one sent): a replay.
    #[error("the answer does not echo this request's nonce: replayed")]
    Replay,
    /// The lease (or offline licence) expired: refresh online, or load a new licence file.
    #[error("the lease expired")]
    LeaseExpired,
    /// The system clock is earlier than a time already seen (or than a token's issue time).
    #[error("the system clock was set back")]
    ClockTampered,
    /// A token issued for another product.
    #[error("the token was issued for another product")]
    WrongProduct,
    /// A token issued for another seat (device).
    #[error("the token was issued for another seat")]
    WrongSeat,
    /// The server could not be reached, or did not answer in time (after the retries).
    #[error("the licensing server could not be reached: {0}")]
    Network(String),
    /// The server failed (5xx) on every attempt, or answered with an unexpected status.
    #[error("the licensing server answered with HTTP {status}")]
    Server {
        /// The last HTTP status.
        status: u16,
    },
    /// An answer, token or file that is signed but not what the protocol says it should be.
    #[error("malformed: {0}")]
    Malformed(String),
    /// Bad configuration (no usable key in the JWKS, a bad URL, …).
    #[error("configuration: {0}")]
    Config(String),
    /// The local cache file could not be read or written.
    #[error("cache file {path}: {source}")]
    Cache {
        /// The cache file.
        path: std::path::PathBuf,
        /// The I/O failure.
        source: std::io::Error,
    },
}

impl Error {
    /// The denial, when this error is one.
    pub fn denial(&self) -> Option<&Denial> {
        match self {
            Error::Denied(denial) => Some(denial),
            _ => None,
        }
    }

    /// Whether the failure is transient (network, server) rather than a verdict: an
    /// application may keep running on its still-valid lease.
    pub fn is_transient(&self) -> bool {
        matches!(self, Error::Network(_) | Error::Server { .. })
    }
}

impl From<LeaseError> for Error {
    fn from(error: LeaseError) -> Error {
        match error {
            LeaseError::Signature(_) => Error::BadSignature,
            LeaseError::Malformed => Error::Malformed("the token's claims are malformed".into()),
            LeaseError::Expired => Error::LeaseExpired,
            LeaseError::WrongProduct => Error::WrongProduct,
            LeaseError::WrongSeat => Error::WrongSeat,
            LeaseError::IssuedInFuture => Error::ClockTampered,
        }
    }
}

/// The SDK's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_round_trip() {
        for wire in [
            "invalid_request",
            "invalid_credential",
            "invalid_activation",
            "entitlement_not_started",
            "entitlement_expired",
            "entitlement_disabled",
            "seat_limit_reached",
            "feature_not_entitled",
            "pool_exhausted",
            "nothing_checked_out",
            "usage_limit_reached",
            "lease_expired",
            "offline_not_allowed",
            "rate_limited",
            "something_new",
        ] {
            assert_eq!(Denial::from_code(wire, None).code(), wire);
        }
        assert_eq!(
            Denial::from_code("something_new", None),
            Denial::Other("something_new".into())
        );
    }
}
