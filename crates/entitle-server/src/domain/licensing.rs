//! Licensing rules: which entitlement states may hold seats, how long a lease runs, how many
//! seats and units may be taken.

use chrono::{DateTime, Duration, Utc};

use super::{EntitlementStatus, Interval, RuleViolation};

/// Without a lease period and without an expiry, a lease still ends: the application checks in
/// at least this often.
const LONGEST_LEASE_DAYS: i64 = 365;

/// Why a licensing request is refused. Each maps to a stable wire code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Denial {
    InvalidRequest,
    InvalidCredential,
    InvalidActivation,
    EntitlementNotStarted,
    EntitlementExpired,
    EntitlementDisabled,
    SeatLimitReached,
    FeatureNotEntitled,
    PoolExhausted,
    NothingCheckedOut,
    UsageLimitReached,
    LeaseExpired,
    OfflineNotAllowed,
    RateLimited,
    ServerBusy,
}

impl Denial {
    pub fn code(self) -> &'static str {
        use entitle_protocol::denial::*;
        match self {
            Denial::InvalidRequest => INVALID_REQUEST,
            Denial::InvalidCredential => INVALID_CREDENTIAL,
            Denial::InvalidActivation => INVALID_ACTIVATION,
            Denial::EntitlementNotStarted => ENTITLEMENT_NOT_STARTED,
            Denial::EntitlementExpired => ENTITLEMENT_EXPIRED,
            Denial::EntitlementDisabled => ENTITLEMENT_DISABLED,
            Denial::SeatLimitReached => SEAT_LIMIT_REACHED,
            Denial::FeatureNotEntitled => FEATURE_NOT_ENTITLED,
            Denial::PoolExhausted => POOL_EXHAUSTED,
            Denial::NothingCheckedOut => NOTHING_CHECKED_OUT,
            Denial::UsageLimitReached => USAGE_LIMIT_REACHED,
            Denial::LeaseExpired => LEASE_EXPIRED,
            Denial::OfflineNotAllowed => OFFLINE_NOT_ALLOWED,
            Denial::RateLimited => RATE_LIMITED,
            Denial::ServerBusy => SERVER_BUSY,
        }
    }

    pub fn message(self) -> &'static str {
        match self {
            Denial::InvalidRequest => "the request is malformed",
            Denial::InvalidCredential => "the activation code or the email and password are not valid",
            Denial::InvalidActivation => "this activation does not exist or was deactivated",
            Denial::EntitlementNotStarted => "the entitlement has not started yet",
            Denial::EntitlementExpired => "the entitlement has expired",
            Denial::EntitlementDisabled => "the entitlement is disabled",
            Denial::SeatLimitReached => "every seat of the entitlement is taken",
            Denial::FeatureNotEntitled => "the entitlement does not grant this feature",
            Denial::PoolExhausted => "every unit of this feature is checked out",
            Denial::NothingCheckedOut => "this seat has not checked out that many units",
            Denial::UsageLimitReached => "the usage allowance of this feature is used up",
            Denial::LeaseExpired => "the lease lapsed and the seat was released; activate again",
            Denial::OfflineNotAllowed => "the entitlement does not allow offline use",
            Denial::RateLimited => "too many failed attempts; retry later",
            Denial::ServerBusy => "the server is busy; retry after the time it says",
        }
    }

    /// The HTTP status it is answered with.
    pub fn status(self) -> u16 {
        match self {
            Denial::InvalidRequest => 400,
            Denial::InvalidCredential | Denial::InvalidActivation => 401,
            Denial::EntitlementNotStarted
            | Denial::EntitlementExpired
            | Denial::EntitlementDisabled
            | Denial::FeatureNotEntitled
            | Denial::OfflineNotAllowed => 403,
            Denial::SeatLimitReached
            | Denial::PoolExhausted
            | Denial::NothingCheckedOut
            | Denial::UsageLimitReached
            | Denial::LeaseExpired => 409,
            Denial::RateLimited => 429,
            Denial::ServerBusy => 503,
        }
    }
}

/// May an entitlement in this state hold and renew seats?
pub fn check_usable(status: EntitlementStatus) -> Result<(), Denial> {
    match status {
        EntitlementStatus::Active | EntitlementStatus::Grace => Ok(()),
        EntitlementStatus::Created => Err(Denial::EntitlementNotStarted),
        EntitlementStatus::Expired => Err(Denial::EntitlementExpired),
        EntitlementStatus::Disabled => Err(Denial::EntitlementDisabled),
    }
}

/// When a lease granted `now` expires: one lease period on, but never past the end of the
/// entitlement's grace period.
pub fn lease_expiry(
    now: DateTime<Utc>,
    lease_period: Interval,
    expires_at: Option<DateTime<Utc>>,
    grace_period: Interval,
) -> DateTime<Utc> {
    let usable_until = expires_at.map(|expiry| grace_period.after(expiry));
    let lease = if lease_period.is_none() {
        usable_until.unwrap_or(now + Duration::days(LONGEST_LEASE_DAYS))
    } else {
        lease_period.after(now)
    };
    match usable_until {
        Some(end) => lease.min(end),
        None => lease,
    }
}

/// When an offline activation made `now` stops being valid; `None` if offline use is not allowed.
pub fn offline_expiry(
    now: DateTime<Utc>,
    offline_lease_period: Interval,
    expires_at: Option<DateTime<Utc>>,
    grace_period: Interval,
) -> Option<DateTime<Utc>> {
    if offline_lease_period.is_none() {
        return None;
    }
    Some(lease_expiry(now, offline_lease_period, expires_at, grace_period))
}

/// The most seats that may be taken, overdraft included; `None` is unlimited.
pub fn seat_ceiling(seat_count: i64, overdraft_allowance: Option<i64>) -> Option<i64> {
    overdraft_allowance.map(|extra| seat_count.saturating_add(extra))
}

/// Device fingerprints and user ids: 1–128 printable characters.
pub fn check_seat_id(seat_id: &str) -> Result<(), RuleViolation> {
    if seat_id.is_empty() || seat_id.chars().count() > 128 || seat_id.chars().any(char::is_control) {
        return Err(RuleViolation::new(
            "invalid_seat_id",
            "a seat id must have 1 to 128 printable characters",
        ));
    }
    Ok(())
}

/// Nonces: 8–128 printable ASCII characters, so a client cannot skip them.
pub fn check_nonce(nonce: &str) -> Result<(), RuleViolation> {
    if !(8..=128).contains(&nonce.len()) || !nonce.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(RuleViolation::new(
            "invalid_nonce",
            "a nonce must have 8 to 128 printable ASCII characters",
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn t(day: u32, hour: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 5, day, hour, 0, 0).single().unwrap()
    }

    #[test]
    fn leases_never_outlive_the_grace_period() {
        let day = Interval::days(1);
        assert_eq!(lease_expiry(t(1, 0), day, None, Interval::NONE), t(2, 0));
        assert_eq!(lease_expiry(t(1, 0), day, Some(t(10, 0)), Interval::days(3)), t(2, 0));
        assert_eq!(
            lease_expiry(t(12, 12), day, Some(t(10, 0)), Interval::days(3)),
            t(13, 0)
        );
        assert_eq!(
            lease_expiry(t(1, 0), Interval::NONE, Some(t(10, 0)), Interval::NONE),
            t(10, 0)
        );
        assert_eq!(
            lease_expiry(t(1, 0), Interval::NONE, None, Interval::NONE),
            t(1, 0) + Duration::days(365)
        );
    }

    #[test]
    fn offline_needs_an_offline_period() {
        assert_eq!(offline_expiry(t(1, 0), Interval::NONE, None, Interval::NONE), None);
        assert_eq!(
            offline_expiry(t(1, 0), Interval::days(30), Some(t(5, 0)), Interval::NONE),
            Some(t(5, 0))
        );
    }

    #[test]
    fn usable_states_and_ceilings() {
        assert!(check_usable(EntitlementStatus::Grace).is_ok());
        assert_eq!(
            check_usable(EntitlementStatus::Expired),
            Err(Denial::EntitlementExpired)
        );
        assert_eq!(
            check_usable(EntitlementStatus::Disabled),
            Err(Denial::EntitlementDisabled)
        );
        assert_eq!(seat_ceiling(10, Some(2)), Some(12));
        assert_eq!(seat_ceiling(10, None), None);
        assert!(check_seat_id("").is_err());
        assert!(check_seat_id(&"x".repeat(129)).is_err());
        assert!(check_nonce("short").is_err());
        assert!(check_nonce("0123456789abcdef").is_ok());
        assert_eq!(Denial::SeatLimitReached.code(), "seat_limit_reached");
        assert_eq!(Denial::RateLimited.status(), 429);
    }
}

/// One seat held by a device or user.
#[derive(Debug, Clone, serde::Serialize, utoipa::ToSchema)]
pub struct Activation {
    pub id: String,
    pub entitlement_id: String,
    pub seat_id: String,
    pub seat_name: Option<String>,
    /// `online` or `offline` (a licence file).
    pub mode: String,
    /// Took a seat beyond the seat count.
    pub overdraft: bool,
    pub activated_at: DateTime<Utc>,
    pub last_lease_at: DateTime<Utc>,
    pub lease_expires_at: DateTime<Utc>,
    pub linger_expires_at: DateTime<Utc>,
    pub deactivated_at: Option<DateTime<Utc>>,
    /// `deactivated` (by the application), `lapsed` (a concurrent seat whose lease ran out),
    /// `revoked` (by the vendor).
    pub deactivation_reason: Option<String>,
    pub ip: Option<String>,
}

impl Activation {
    /// `active`, `lease_expired` (still holding its seat) or `deactivated`.
    pub fn status(&self, now: DateTime<Utc>) -> &'static str {
        if self.deactivated_at.is_some() {
            "deactivated"
        } else if self.lease_expires_at <= now {
            "lease_expired"
        } else {
            "active"
        }
    }
}

/// The claims of the lease an activation holds until `lease_expires_at`.
pub fn lease_claims(
    tenant_id: &str,
    activation: &Activation,
    entitlement: &super::Entitlement,
    checkouts: &[(String, i64)],
    lease_expires_at: DateTime<Utc>,
    now: DateTime<Utc>,
    nonce: Option<String>,
) -> entitle_protocol::LeaseClaims {
    use entitle_protocol::{AttributeClaims, EntitlementClaims, FeatureClaim, LeaseClaims, SeatClaims};
    let terms = &entitlement.terms;
    let grace_expires_at = entitlement.expires_at.map(|e| terms.periods.grace_period.after(e));
    LeaseClaims {
        iss: tenant_id.to_owned(),
        sub: activation.id.clone(),
        aud: entitlement.product_id.clone(),
        iat: now.timestamp(),
        exp: lease_expires_at.timestamp(),
        nonce,
        entitlement: EntitlementClaims {
            id: entitlement.id.clone(),
            status: entitlement.status(now).as_str().to_owned(),
            sku: entitlement.sku.to_string(),
            plan_kind: entitlement.plan.kind.as_str().to_owned(),
            expires_at: entitlement.expires_at.map(|e| e.timestamp()),
            grace_expires_at: grace_expires_at.map(|e| e.timestamp()),
            seat_count: terms.seat_count,
            seats_used: entitlement.seats_used,
            overdraft_seats: terms.overdraft.allowance(terms.seat_count),
            concurrency_mode: terms.concurrency_mode.as_str().to_owned(),
        },
        seat: SeatClaims {
            id: activation.seat_id.clone(),
            name: activation.seat_name.clone(),
            overdraft: activation.overdraft,
            offline: activation.mode == "offline",
        },
        features: terms
            .features
            .iter()
            .map(|(key, grant)| FeatureClaim {
                key: key.to_string(),
                kind: grant.kind.as_str().to_owned(),
                enabled: grant.enabled,
                limit: grant.limit,
                overdraft: grant.overdraft,
                used: grant.used,
                checked_out: checkouts
                    .iter()
                    .find(|(feature_id, _)| *feature_id == grant.feature_id)
                    .map_or(0, |(_, units)| *units),
            })
            .collect(),
        attributes: terms
            .attributes
            .iter()
            .map(|(key, grant)| AttributeClaims {
                key: key.to_string(),
                value: super::attribute_value_to_json(grant.kind, &grant.value),
            })
            .collect(),
    }
}
