//! The catalogue: products, features, attributes, editions, plans and offerings.

use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::{Email, FeatureAmount, Interval, Key, Name, RuleViolation, Sku};

/// Enums stored as their snake_case name; `parse` is the inverse of `as_str`.
macro_rules! text_enum {
    ($(#[$doc:meta])* $name:ident { $($(#[$vdoc:meta])* $variant:ident = $text:literal),+ $(,)? }) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, ::serde::Serialize, ::serde::Deserialize, ::utoipa::ToSchema)]
        #[serde(rename_all = "snake_case")]
        pub enum $name { $($(#[$vdoc])* $variant),+ }

        impl $name {
            pub fn as_str(self) -> &'static str {
                match self { $(Self::$variant => $text),+ }
            }

            pub fn parse(text: &str) -> Option<Self> {
                match text { $($text => Some(Self::$variant),)+ _ => None }
            }
        }
    };
}
pub(crate) use text_enum;

text_enum!(
    /// How a feature is granted and consumed.
    FeatureKind {
        /// On or off.
        Bool = "bool",
        /// A pool of units checked out and returned (floating features).
        ElementPool = "element_pool",
        /// A metered count, consumed and reset on renewal.
        UsageCount = "usage_count",
    }
);

text_enum!(AttributeKind { Number = "number", String = "string", Date = "date" });

text_enum!(LicenseType { Subscription = "subscription", Perpetual = "perpetual" });

text_enum!(
    /// When the licence period starts.
    PlanStart { OnCreation = "on_creation", OnFirstActivation = "on_first_activation" }
);

text_enum!(PlanKind { Paid = "paid", Trial = "trial", Free = "free", Internal = "internal", NotForResale = "not_for_resale" });

text_enum!(
    /// `node_locked` seats stay until deactivated; `concurrent` seats return to the pool when their lease lapses.
    ConcurrencyMode { NodeLocked = "node_locked", Concurrent = "concurrent" }
);

text_enum!(OverdraftKind { None = "none", Absolute = "absolute", Percentage = "percentage", Unlimited = "unlimited" });

text_enum!(
    /// `admin` sees all of the customer's entitlements in the portal, `user` only their own.
    EndUserRole { Admin = "admin", User = "user" }
);

/// How many seats beyond the seat count may be used (and are then flagged as overdraft).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(try_from = "OverdraftRepr")]
pub struct Overdraft {
    pub kind: OverdraftKind,
    /// Seats for `absolute`, percent of the seat count for `percentage`; ignored otherwise.
    #[schema(minimum = 0, maximum = 1_000_000_000)]
    pub value: u32,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct OverdraftRepr {
    kind: OverdraftKind,
    #[serde(default)]
    value: u32,
}

impl Overdraft {
    /// A billion seats (or percent) at most, so the allowance of the largest seat count fits an i64.
    pub const MAX_VALUE: u32 = 1_000_000_000;

    pub fn new(kind: OverdraftKind, value: u32) -> Result<Self, RuleViolation> {
        if value > Self::MAX_VALUE {
            return Err(RuleViolation::new(
                "invalid_overdraft",
                format!("an overdraft value must be between 0 and {}", Self::MAX_VALUE),
            ));
        }
        Ok(Self { kind, value })
    }
}

impl TryFrom<OverdraftRepr> for Overdraft {
    type Error = super::bounds::Rejected;
    fn try_from(repr: OverdraftRepr) -> Result<Self, Self::Error> {
        Ok(Overdraft::new(repr.kind, repr.value)?)
    }
}

impl Overdraft {
    pub const NONE: Overdraft = Overdraft {
        kind: OverdraftKind::None,
        value: 0,
    };

    /// Overdraft seats allowed on top of `seat_count`; `None` means unlimited.
    pub fn allowance(&self, seat_count: i64) -> Option<i64> {
        match self.kind {
            OverdraftKind::None => Some(0),
            OverdraftKind::Absolute => Some(self.value as i64),
            // Rounded up: 10% of 5 seats allows one extra seat, not none.
            OverdraftKind::Percentage => {
                Some(seat_count.max(0).saturating_mul(self.value as i64).saturating_add(99) / 100)
            }
            OverdraftKind::Unlimited => None,
        }
    }
}

/// The four periods every product defines and every entitlement inherits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Periods {
    /// How often an application must check in.
    pub lease_period: Interval,
    /// How long a seat may stay offline (offline activation); `none` disables offline use.
    pub offline_lease_period: Interval,
    /// How long the entitlement stays usable after it expires.
    pub grace_period: Interval,
    /// The minimum time a concurrent seat stays taken after activation.
    pub linger_period: Interval,
}

impl Default for Periods {
    fn default() -> Self {
        Self {
            lease_period: Interval::days(1),
            offline_lease_period: Interval::NONE,
            grace_period: Interval::days(7),
            linger_period: Interval::NONE,
        }
    }
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Product {
    pub id: String,
    pub name: Name,
    #[serde(flatten)]
    pub periods: Periods,
    /// End users sign in with email and password instead of typing an activation code: their
    /// credentials mail carries a password set-up link rather than the code.
    pub account_based: bool,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Feature {
    pub id: String,
    pub product_id: String,
    pub key: Key,
    pub name: Name,
    pub kind: FeatureKind,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Attribute {
    pub id: String,
    pub product_id: String,
    pub key: Key,
    pub name: Name,
    pub kind: AttributeKind,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// A feature granted by an edition: its limit (pool size or usage allowance; `null` = unlimited,
/// always `null` for `bool`) and, for `usage_count`, how far usage may run over the limit.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct FeatureValue {
    pub key: Key,
    #[serde(default)]
    pub limit: Option<FeatureAmount>,
    #[serde(default = "no_overdraft")]
    pub overdraft: FeatureAmount,
}

pub(crate) fn no_overdraft() -> FeatureAmount {
    FeatureAmount::ZERO
}

impl FeatureValue {
    pub fn check(&self, kind: FeatureKind) -> Result<(), RuleViolation> {
        check_feature_limits(&self.key, kind, self.limit, self.overdraft)
    }
}

/// Whether a limit and overdraft suit the feature's kind (their range is `FeatureAmount`'s).
pub fn check_feature_limits(
    key: &Key,
    kind: FeatureKind,
    limit: Option<FeatureAmount>,
    overdraft: FeatureAmount,
) -> Result<(), RuleViolation> {
    let invalid = |message: String| Err(RuleViolation::new("invalid_feature_value", message));
    match kind {
        FeatureKind::Bool if limit.is_some() || overdraft != FeatureAmount::ZERO => {
            invalid(format!("feature {key} is a bool: it takes no limit or overdraft"))
        }
        FeatureKind::ElementPool if overdraft != FeatureAmount::ZERO => {
            invalid(format!("feature {key} is an element pool: it takes no overdraft"))
        }
        _ => Ok(()),
    }
}

/// An attribute value as stored (text), converted to and from JSON according to the attribute's kind.
pub fn attribute_value_from_json(
    key: &Key,
    kind: AttributeKind,
    value: &serde_json::Value,
) -> Result<String, RuleViolation> {
    let invalid = |expected: &str| {
        Err(RuleViolation::new(
            "invalid_attribute_value",
            format!("attribute {key} is a {}: expected {expected}", kind.as_str()),
        ))
    };
    match (kind, value) {
        (AttributeKind::Number, serde_json::Value::Number(n)) if n.as_f64().is_some_and(f64::is_finite) => {
            Ok(n.to_string())
        }
        (AttributeKind::Number, _) => invalid("a number"),
        (AttributeKind::String, serde_json::Value::String(s)) if s.chars().count() <= 1000 => Ok(s.clone()),
        (AttributeKind::String, _) => invalid("a string of at most 1000 characters"),
        (AttributeKind::Date, serde_json::Value::String(s)) if NaiveDate::parse_from_str(s, "%Y-%m-%d").is_ok() => {
            Ok(s.clone())
        }
        (AttributeKind::Date, _) => invalid("a date such as \"2026-12-31\""),
    }
}

pub fn attribute_value_to_json(kind: AttributeKind, stored: &str) -> serde_json::Value {
    match kind {
        AttributeKind::Number => serde_json::from_str::<serde_json::Number>(stored)
            .map(serde_json::Value::Number)
            .unwrap_or_else(|_| serde_json::Value::String(stored.to_owned())),
        AttributeKind::String | AttributeKind::Date => serde_json::Value::String(stored.to_owned()),
    }
}

/// An attribute value set by an edition or an entitlement.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct AttributeValue {
    pub key: Key,
    /// A number, string or `YYYY-MM-DD` date, according to the attribute's kind.
    pub value: serde_json::Value,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Edition {
    pub id: String,
    pub product_id: String,
    pub name: Name,
    pub features: Vec<FeatureValue>,
    pub attributes: Vec<AttributeValue>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// The terms a plan gives: copied onto each entitlement created from an offering of the plan.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct PlanTerms {
    pub license_type: LicenseType,
    /// The licence period of a subscription (renewals extend by it); `none` for perpetual licences.
    pub duration: Interval,
    pub start: PlanStart,
    pub kind: PlanKind,
}

impl PlanTerms {
    pub fn check(&self) -> Result<(), RuleViolation> {
        match self.license_type {
            LicenseType::Subscription if self.duration.is_none() => Err(RuleViolation::new(
                "invalid_plan",
                "a subscription plan needs a duration",
            )),
            LicenseType::Perpetual if !self.duration.is_none() => {
                Err(RuleViolation::new("invalid_plan", "a perpetual plan has no duration"))
            }
            _ => Ok(()),
        }
    }
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Plan {
    pub id: String,
    pub product_id: String,
    pub name: Name,
    #[serde(flatten)]
    pub terms: PlanTerms,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// What a storefront sells: an edition on a plan, with seats.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Offering {
    pub id: String,
    pub product_id: String,
    pub edition_id: String,
    pub plan_id: String,
    pub sku: Sku,
    pub name: Name,
    pub seat_count: i64,
    pub overdraft: Overdraft,
    pub concurrency_mode: ConcurrencyMode,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// For seat counts formed by arithmetic (seats × quantity + extra seats); inputs are `SeatCount`s.
pub fn check_seat_count(seats: i64) -> Result<(), RuleViolation> {
    super::SeatCount::new(seats).map(|_| ())
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Customer {
    pub id: String,
    pub name: Name,
    pub email: Option<Email>,
    /// The vendor's own reference for this customer (CRM id, storefront customer id).
    pub external_ref: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct EndUser {
    pub id: String,
    pub customer_id: String,
    pub email: Email,
    pub name: Option<Name>,
    pub role: EndUserRole,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

pub fn check_external_ref(value: &str) -> Result<(), RuleViolation> {
    if value.is_empty() || value.chars().count() > 200 || value.chars().any(char::is_control) {
        return Err(RuleViolation::new(
            "invalid_reference",
            "a reference must have 1 to 200 characters and no control characters",
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn overdraft_allowance() {
        let pct = Overdraft {
            kind: OverdraftKind::Percentage,
            value: 10,
        };
        assert_eq!(pct.allowance(5), Some(1));
        assert_eq!(pct.allowance(100), Some(10));
        assert_eq!(Overdraft::NONE.allowance(10), Some(0));
        assert_eq!(
            Overdraft {
                kind: OverdraftKind::Absolute,
                value: 3
            }
            .allowance(10),
            Some(3)
        );
        assert_eq!(
            Overdraft {
                kind: OverdraftKind::Unlimited,
                value: 0
            }
            .allowance(10),
            None
        );
    }

    #[test]
    fn feature_values_match_their_kind() {
        let key = Key::parse("f").unwrap();
        let n = |v: i64| FeatureAmount::new(v).unwrap();
        assert!(check_feature_limits(&key, FeatureKind::Bool, None, n(0)).is_ok());
        assert!(check_feature_limits(&key, FeatureKind::Bool, Some(n(3)), n(0)).is_err());
        assert!(check_feature_limits(&key, FeatureKind::ElementPool, Some(n(3)), n(0)).is_ok());
        assert!(check_feature_limits(&key, FeatureKind::ElementPool, Some(n(3)), n(1)).is_err());
        assert!(FeatureAmount::new(-1).is_err());
        assert!(check_feature_limits(&key, FeatureKind::UsageCount, None, n(10)).is_ok());
    }

    use serde_json::json;

    #[test]
    fn attribute_values_match_their_kind() {
        let key = Key::parse("a").unwrap();
        assert_eq!(
            attribute_value_from_json(&key, AttributeKind::Number, &json!(25)).unwrap(),
            "25"
        );
        assert!(attribute_value_from_json(&key, AttributeKind::Number, &json!("25")).is_err());
        assert!(attribute_value_from_json(&key, AttributeKind::Date, &json!("2026-02-30")).is_err());
        assert!(attribute_value_from_json(&key, AttributeKind::Date, &json!("2026-02-28")).is_ok());
        assert_eq!(attribute_value_to_json(AttributeKind::Number, "2.5"), json!(2.5));
        assert_eq!(attribute_value_to_json(AttributeKind::String, "eu"), json!("eu"));
    }

    #[test]
    fn plans_are_consistent() {
        let mut terms = PlanTerms {
            license_type: LicenseType::Subscription,
            duration: Interval::NONE,
            start: PlanStart::OnCreation,
            kind: PlanKind::Paid,
        };
        assert!(terms.check().is_err());
        terms.duration = Interval::years(1);
        assert!(terms.check().is_ok());
        terms.license_type = LicenseType::Perpetual;
        assert!(terms.check().is_err());
    }
}
