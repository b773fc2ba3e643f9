//! Outgoing webhooks: the event types a tenant can subscribe to and which recorded changes they
//! come from, endpoint URLs and the addresses they may reach, Standard Webhooks secrets and
//! signatures, and the retry schedule.

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine;
use chrono::{DateTime, Duration, Utc};
use hmac::{Hmac, Mac};
use rand::RngCore;
use serde::{Deserialize, Serialize};
use sha2::Sha256;
use std::net::IpAddr;
use utoipa::ToSchema;

use super::RuleViolation;

/// What happened, as receivers see it. The strings are part of the API.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
pub enum EventType {
    #[serde(rename = "entitlement.created")]
    EntitlementCreated,
    #[serde(rename = "entitlement.updated")]
    EntitlementUpdated,
    #[serde(rename = "entitlement.renewed")]
    EntitlementRenewed,
    #[serde(rename = "entitlement.offering_changed")]
    EntitlementOfferingChanged,
    #[serde(rename = "entitlement.disabled")]
    EntitlementDisabled,
    #[serde(rename = "entitlement.enabled")]
    EntitlementEnabled,
    #[serde(rename = "entitlement.expiring")]
    EntitlementExpiring,
    #[serde(rename = "entitlement.grace_started")]
    EntitlementGraceStarted,
    #[serde(rename = "entitlement.expired")]
    EntitlementExpired,
    #[serde(rename = "activation.created")]
    ActivationCreated,
    #[serde(rename = "activation.deactivated")]
    ActivationDeactivated,
    #[serde(rename = "activation.revoked")]
    ActivationRevoked,
    #[serde(rename = "seat.limit_reached")]
    SeatLimitReached,
    #[serde(rename = "seat.overdraft_used")]
    SeatOverdraftUsed,
    #[serde(rename = "usage.limit_reached")]
    UsageLimitReached,
    #[serde(rename = "order.applied")]
    OrderApplied,
    #[serde(rename = "delivery.unmapped")]
    DeliveryUnmapped,
    #[serde(rename = "delivery.failed")]
    DeliveryFailed,
    #[serde(rename = "mail.failed")]
    MailFailed,
    /// Sent by the test-send action only; no subscription needed.
    #[serde(rename = "webhook.test")]
    WebhookTest,
}

impl EventType {
    pub const ALL: [EventType; 20] = [
        EventType::EntitlementCreated,
        EventType::EntitlementUpdated,
        EventType::EntitlementRenewed,
        EventType::EntitlementOfferingChanged,
        EventType::EntitlementDisabled,
        EventType::EntitlementEnabled,
        EventType::EntitlementExpiring,
        EventType::EntitlementGraceStarted,
        EventType::EntitlementExpired,
        EventType::ActivationCreated,
        EventType::ActivationDeactivated,
        EventType::ActivationRevoked,
        EventType::SeatLimitReached,
        EventType::SeatOverdraftUsed,
        EventType::UsageLimitReached,
        EventType::OrderApplied,
        EventType::DeliveryUnmapped,
        EventType::DeliveryFailed,
        EventType::MailFailed,
        EventType::WebhookTest,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            EventType::EntitlementCreated => "entitlement.created",
            EventType::EntitlementUpdated => "entitlement.updated",
            EventType::EntitlementRenewed => "entitlement.renewed",
            EventType::EntitlementOfferingChanged => "entitlement.offering_changed",
            EventType::EntitlementDisabled => "entitlement.disabled",
            EventType::EntitlementEnabled => "entitlement.enabled",
            EventType::EntitlementExpiring => "entitlement.expiring",
            EventType::EntitlementGraceStarted => "entitlement.grace_started",
            EventType::EntitlementExpired => "entitlement.expired",
            EventType::ActivationCreated => "activation.created",
            EventType::ActivationDeactivated => "activation.deactivated",
            EventType::ActivationRevoked => "activation.revoked",
            EventType::SeatLimitReached => "seat.limit_reached",
            EventType::SeatOverdraftUsed => "seat.overdraft_used",
            EventType::UsageLimitReached => "usage.limit_reached",
            EventType::OrderApplied => "order.applied",
            EventType::DeliveryUnmapped => "delivery.unmapped",
            EventType::DeliveryFailed => "delivery.failed",
            EventType::MailFailed => "mail.failed",
            EventType::WebhookTest => "webhook.test",
        }
    }

    pub fn parse(text: &str) -> Option<EventType> {
        EventType::ALL.into_iter().find(|t| t.as_str() == text)
    }

    /// The kind of object the payload's `data` holds.
    pub fn object_kind(self) -> &'static str {
        match self {
            EventType::ActivationCreated | EventType::ActivationDeactivated | EventType::ActivationRevoked => {
                "activation"
            }
            EventType::OrderApplied | EventType::DeliveryUnmapped | EventType::DeliveryFailed => "storefront_delivery",
            EventType::MailFailed => "mail",
            EventType::WebhookTest => "webhook_endpoint",
            _ => "entitlement",
        }
    }

    /// The webhook a recorded change (an event log action) becomes, if any. Changes that only
    /// adjust an entitlement's values (seats added, overrides reset, replaced by the storefront)
    /// are `entitlement.updated` to receivers, who care about the new state, not the verb.
    pub fn for_action(action: &str) -> Option<EventType> {
        Some(match action {
            "entitlement.created" => EventType::EntitlementCreated,
            "entitlement.updated"
            | "entitlement.seats_added"
            | "entitlement.overrides_reset"
            | "entitlement.replaced" => EventType::EntitlementUpdated,
            "entitlement.renewed" => EventType::EntitlementRenewed,
            "entitlement.offering_changed" => EventType::EntitlementOfferingChanged,
            "entitlement.disabled" => EventType::EntitlementDisabled,
            "entitlement.enabled" => EventType::EntitlementEnabled,
            "entitlement.expiring" => EventType::EntitlementExpiring,
            "entitlement.grace_started" => EventType::EntitlementGraceStarted,
            "entitlement.expired" => EventType::EntitlementExpired,
            "activation.created" => EventType::ActivationCreated,
            "activation.deactivated" => EventType::ActivationDeactivated,
            "activation.revoked" => EventType::ActivationRevoked,
            "seat.limit_reached" => EventType::SeatLimitReached,
            "seat.overdraft_used" => EventType::SeatOverdraftUsed,
            "usage.limit_reached" => EventType::UsageLimitReached,
            "order.applied" => EventType::OrderApplied,
            "delivery.unmapped" => EventType::DeliveryUnmapped,
            "delivery.failed" => EventType::DeliveryFailed,
            "mail.failed" => EventType::MailFailed,
            _ => return None,
        })
    }
}

/// The vendor notice a seat taken causes: the last seat of the seat count is in use
/// (`seat.limit_reached`), or the first overdraft seat (`seat.overdraft_used`).
pub fn seat_signal(seats_used: i64, seat_count: i64) -> Option<EventType> {
    if seats_used == seat_count {
        Some(EventType::SeatLimitReached)
    } else if seats_used == seat_count + 1 {
        Some(EventType::SeatOverdraftUsed)
    } else {
        None
    }
}

/// Whether metered use went from below its allowance to at or over it.
pub fn limit_crossed(before: i64, after: i64, limit: Option<i64>) -> bool {
    limit.is_some_and(|limit| before < limit && after >= limit)
}

/// Which event types an endpoint receives: a list, or every type (`["*"]`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Subscription {
    All,
    Only(Vec<EventType>),
}

/// Event types an endpoint may list at most (every type fits).
const MAX_TYPES: usize = 64;

impl Subscription {
    pub fn parse<S: AsRef<str>>(items: &[S]) -> Result<Subscription, RuleViolation> {
        let invalid = |message: String| RuleViolation::new("invalid_event_types", message);
        if items.is_empty() {
            return Err(invalid("list at least one event type, or \"*\" for all".into()));
        }
        if items.len() > MAX_TYPES {
            return Err(invalid(format!("at most {MAX_TYPES} event types")));
        }
        if items.iter().any(|i| i.as_ref() == "*") {
            return Ok(Subscription::All);
        }
        let mut types = Vec::new();
        for item in items {
            let item = item.as_ref();
            let t = EventType::parse(item)
                .filter(|t| *t != EventType::WebhookTest)
                .ok_or_else(|| invalid(format!("{item:?} is not an event type")))?;
            if !types.contains(&t) {
                types.push(t);
            }
        }
        Ok(Subscription::Only(types))
    }

    pub fn matches(&self, t: EventType) -> bool {
        t == EventType::WebhookTest
            || match self {
                Subscription::All => true,
                Subscription::Only(types) => types.contains(&t),
            }
    }

    pub fn to_strings(&self) -> Vec<String> {
        match self {
            Subscription::All => vec!["*".to_owned()],
            Subscription::Only(types) => types.iter().map(|t| t.as_str().to_owned()).collect(),
        }
    }
}

/// An endpoint's URL: http or https, a host, no credentials or fragment, at most 2,048 bytes.
/// Where it may point is checked again on every delivery, against the resolved address.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(try_from = "String", into = "String")]
#[schema(value_type = String)]
pub struct EndpointUrl(String);

impl EndpointUrl {
    pub fn parse(text: &str) -> Result<EndpointUrl, RuleViolation> {
        let invalid = |why: &str| RuleViolation::new("invalid_url", format!("the endpoint URL {why}"));
        if text.len() > 2048 {
            return Err(invalid("is longer than 2048 bytes"));
        }
        let url = reqwest::Url::parse(text).map_err(|_| invalid("is not a URL"))?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(invalid("must be http or https"));
        }
        if url.host_str().is_none_or(str::is_empty) {
            return Err(invalid("has no host"));
        }
        if !url.username().is_empty() || url.password().is_some() {
            return Err(invalid("must not carry credentials"));
        }
        if url.fragment().is_some() {
            return Err(invalid("must not have a fragment"));
        }
        Ok(EndpointUrl(url.to_string()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for EndpointUrl {
    type Error = RuleViolation;

    fn try_from(value: String) -> Result<Self, Self::Error> {
        EndpointUrl::parse(&value)
    }
}

impl From<EndpointUrl> for String {
    fn from(value: EndpointUrl) -> Self {
        value.0
    }
}

/// Whether a receiver at `ip` may be called without the operator's `webhook_allow_private`:
/// not loopback, private, link-local, carrier-grade NAT, unique-local, multicast or unspecified,
/// so a tenant cannot make the server probe its own network or a cloud metadata service.
pub fn is_public(ip: IpAddr) -> bool {
    let ip = match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    };
    match ip {
        IpAddr::V4(v4) => {
            let [a, b, ..] = v4.octets();
            !(v4.is_loopback()
                || v4.is_private()
                || v4.is_link_local()
                || v4.is_unspecified()
                || v4.is_broadcast()
                || v4.is_multicast()
                || v4.is_documentation()
                || a == 0
                || (a == 100 && (64..128).contains(&b))
                || (a == 198 && (b == 18 || b == 19))
                || a >= 240)
        }
        IpAddr::V6(v6) => {
            let first = v6.segments()[0];
            !(v6.is_loopback()
                || v6.is_unspecified()
                || v6.is_multicast()
                || (first & 0xfe00) == 0xfc00
                || (first & 0xffc0) == 0xfe80
                || (first == 0x64 && v6.segments()[1] == 0xff9b)
                || first == 0x2001 && v6.segments()[1] == 0x0db8)
        }
    }
}

/// The prefix of Standard Webhooks secrets.
pub const SECRET_PREFIX: &str = "whsec_";

/// A new endpoint secret: `whsec_` and 32 random bytes in base64.
pub fn new_secret() -> String {
    let mut bytes = [0u8; 32];
    rand::thread_rng().fill_bytes(&mut bytes);
    format!("{SECRET_PREFIX}{}", BASE64.encode(bytes))
}

/// The HMAC key of a secret: the bytes its base64 part stands for.
fn secret_key(secret: &str) -> Option<Vec<u8>> {
    BASE64.decode(secret.strip_prefix(SECRET_PREFIX).unwrap_or(secret)).ok()
}

/// The `webhook-signature` header: `v1,<base64 HMAC-SHA256 of "id.timestamp.body">` for each
/// secret, separated by spaces (during a rotation receivers holding either secret verify it).
pub fn signature_header(secrets: &[&str], message_id: &str, timestamp: i64, body: &[u8]) -> String {
    let mut signatures = Vec::new();
    for secret in secrets {
        let Some(key) = secret_key(secret) else {
            continue;
        };
        let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(&key) else {
            continue;
        };
        mac.update(message_id.as_bytes());
        mac.update(b".");
        mac.update(timestamp.to_string().as_bytes());
        mac.update(b".");
        mac.update(body);
        signatures.push(format!("v1,{}", BASE64.encode(mac.finalize().into_bytes())));
    }
    signatures.join(" ")
}

/// How long a message is retried before it is marked failed.
pub const GIVE_UP_AFTER: Duration = Duration::days(3);
/// How long an endpoint may fail without a single success before it is disabled.
pub const DISABLE_AFTER: Duration = Duration::days(5);
/// The longest wait between two attempts.
const MAX_DELAY: std::time::Duration = std::time::Duration::from_secs(8 * 3600);

/// When to try again after `attempts` failed attempts of a message created at `created_at`, or
/// `None` to give up: `base` doubling per attempt (±25 % jitter, at most eight hours), for about
/// three days (with a 30 s base: 15 attempts).
pub fn retry_at(
    base: std::time::Duration,
    attempts: u32,
    jitter: f64,
    created_at: DateTime<Utc>,
    now: DateTime<Utc>,
) -> Option<DateTime<Utc>> {
    let exponent = attempts.saturating_sub(1).min(24);
    let delay = base
        .saturating_mul(1u32 << exponent)
        .min(MAX_DELAY)
        .mul_f64(1.0 + jitter.clamp(-0.25, 0.25));
    let at = now + Duration::from_std(delay).unwrap_or(Duration::hours(8));
    (at - created_at <= GIVE_UP_AFTER).then_some(at)
}

/// Whether an endpoint failing since `failing_since` has failed long enough to be disabled.
pub fn should_disable(failing_since: Option<DateTime<Utc>>, now: DateTime<Utc>) -> bool {
    failing_since.is_some_and(|since| now - since >= DISABLE_AFTER)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_type_round_trips_and_actions_map() {
        for t in EventType::ALL {
            assert_eq!(EventType::parse(t.as_str()), Some(t));
            assert_eq!(serde_json::to_value(t).unwrap(), t.as_str());
        }
        assert_eq!(
            EventType::for_action("entitlement.seats_added"),
            Some(EventType::EntitlementUpdated)
        );
        assert_eq!(
            EventType::for_action("entitlement.renewed"),
            Some(EventType::EntitlementRenewed)
        );
        assert_eq!(
            EventType::for_action("activation.revoked"),
            Some(EventType::ActivationRevoked)
        );
        assert_eq!(EventType::for_action("product.created"), None);
        assert_eq!(EventType::for_action("webhook.test"), None);
        assert_eq!(EventType::SeatLimitReached.object_kind(), "entitlement");
    }

    #[test]
    fn seats_and_usage_signal_once_at_the_limit() {
        assert_eq!(seat_signal(4, 5), None);
        assert_eq!(seat_signal(5, 5), Some(EventType::SeatLimitReached));
        assert_eq!(seat_signal(6, 5), Some(EventType::SeatOverdraftUsed));
        assert_eq!(seat_signal(7, 5), None);
        assert!(limit_crossed(90, 100, Some(100)));
        assert!(limit_crossed(99, 120, Some(100)));
        assert!(!limit_crossed(100, 101, Some(100)), "already over");
        assert!(!limit_crossed(10, 20, Some(100)));
        assert!(!limit_crossed(10, 2000, None), "unlimited");
    }

    #[test]
    fn subscriptions_parse_and_match() {
        assert_eq!(Subscription::parse(&["*"]).unwrap(), Subscription::All);
        let some = Subscription::parse(&["entitlement.created", "entitlement.created", "activation.revoked"]).unwrap();
        assert_eq!(some.to_strings(), ["entitlement.created", "activation.revoked"]);
        assert!(some.matches(EventType::EntitlementCreated));
        assert!(!some.matches(EventType::EntitlementRenewed));
        assert!(some.matches(EventType::WebhookTest), "a test is always welcome");
        assert_eq!(
            Subscription::parse::<&str>(&[]).unwrap_err().code,
            "invalid_event_types"
        );
        assert!(Subscription::parse(&["entitlement.exploded"]).is_err());
        assert!(Subscription::parse(&["webhook.test"]).is_err());
    }

    #[test]
    fn urls_are_http_without_credentials() {
        assert!(EndpointUrl::parse("https://hooks.example.com/entitle?x=1").is_ok());
        assert!(EndpointUrl::parse("http://127.0.0.1:9000/").is_ok());
        for bad in [
            "ftp://example.com/",
            "https://user:pw@example.com/",
            "https://example.com/#frag",
            "not a url",
            "file:///etc/passwd",
        ] {
            assert_eq!(EndpointUrl::parse(bad).unwrap_err().code, "invalid_url", "{bad}");
        }
    }

    #[test]
    fn internal_addresses_are_not_public() {
        for internal in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "100.64.0.1",
            "0.0.0.0",
            "::1",
            "fe80::1",
            "fd00::1",
            "::ffff:127.0.0.1",
            "::ffff:169.254.169.254",
            "64:ff9b::a00:1",
        ] {
            assert!(!is_public(internal.parse().unwrap()), "{internal}");
        }
        for public in ["93.184.216.34", "2606:4700::1111", "8.8.8.8"] {
            assert!(is_public(public.parse().unwrap()), "{public}");
        }
    }

    #[test]
    fn signatures_follow_standard_webhooks() {
        // The example of the Standard Webhooks specification's reference libraries.
        let secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
        let body = br#"{"test": 2432232314}"#;
        let header = signature_header(&[secret], "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, body);
        assert_eq!(header, "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=");
        let two = signature_header(&[secret, &new_secret()], "msg_1", 1, b"{}");
        assert_eq!(two.split(' ').count(), 2);
        assert!(new_secret().starts_with("whsec_"));
    }

    #[test]
    fn retries_back_off_for_about_three_days() {
        let base = std::time::Duration::from_secs(30);
        let created = DateTime::from_timestamp(1_700_000_000, 0).unwrap();
        assert_eq!(
            retry_at(base, 1, 0.0, created, created),
            Some(created + Duration::seconds(30))
        );
        assert_eq!(
            retry_at(base, 3, 0.0, created, created),
            Some(created + Duration::seconds(120))
        );
        let mut now = created;
        let mut attempts = 0;
        while let Some(at) = retry_at(base, attempts + 1, 0.0, created, now) {
            attempts += 1;
            now = at;
            assert!(attempts < 100);
        }
        assert!(now - created > Duration::days(2), "retried for {:?}", now - created);
        assert!(now - created <= GIVE_UP_AFTER);
        assert!((12..=20).contains(&attempts), "{attempts} attempts");
        assert!(should_disable(Some(created), created + Duration::days(6)));
        assert!(!should_disable(Some(created), created + Duration::days(1)));
        assert!(!should_disable(None, created));
    }
}
