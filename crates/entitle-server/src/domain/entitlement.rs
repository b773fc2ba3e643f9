//! Entitlements: inheritance from the offering, overrides, status and lifecycle rules.

use chrono::{DateTime, Utc};
use serde::Serialize;
use std::collections::{BTreeMap, BTreeSet};
use utoipa::ToSchema;

use super::catalogue::text_enum;
use super::FeatureAmount;
use super::{
    attribute_value_to_json, check_seat_count, ActivationCode, Attribute, AttributeKind, ConcurrencyMode, Edition,
    Feature, FeatureKind, Interval, Key, LicenseType, Offering, Overdraft, Periods, Plan, PlanStart, PlanTerms,
    Product, RuleViolation, Sku,
};

text_enum!(
    /// Always computed from dates and flags, never stored.
    EntitlementStatus {
        /// Exists, but its licence period has not started (plans that start on first activation).
        Created = "created",
        Active = "active",
        /// Past its expiry but within the grace period: still usable.
        Grace = "grace",
        Expired = "expired",
        Disabled = "disabled",
    }
);

/// Names of the values an entitlement may override. Features and attributes are
/// `features.<key>` and `attributes.<key>`.
pub mod field {
    pub const SEAT_COUNT: &str = "seat_count";
    pub const OVERDRAFT: &str = "overdraft";
    pub const CONCURRENCY_MODE: &str = "concurrency_mode";
    pub const LEASE_PERIOD: &str = "lease_period";
    pub const OFFLINE_LEASE_PERIOD: &str = "offline_lease_period";
    pub const GRACE_PERIOD: &str = "grace_period";
    pub const LINGER_PERIOD: &str = "linger_period";
    pub const EXPIRES_AT: &str = "expires_at";
    pub const SCALARS: [&str; 8] = [
        SEAT_COUNT,
        OVERDRAFT,
        CONCURRENCY_MODE,
        LEASE_PERIOD,
        OFFLINE_LEASE_PERIOD,
        GRACE_PERIOD,
        LINGER_PERIOD,
        EXPIRES_AT,
    ];

    pub fn feature(key: &str) -> String {
        format!("features.{key}")
    }

    pub fn attribute(key: &str) -> String {
        format!("attributes.{key}")
    }
}

pub fn is_overridable_field(name: &str) -> bool {
    field::SCALARS.contains(&name)
        || name
            .strip_prefix("features.")
            .or_else(|| name.strip_prefix("attributes."))
            .is_some_and(|key| Key::parse(key).is_ok())
}

pub fn status(
    now: DateTime<Utc>,
    starts_at: Option<DateTime<Utc>>,
    expires_at: Option<DateTime<Utc>>,
    grace_period: Interval,
    disabled: bool,
) -> EntitlementStatus {
    if disabled {
        return EntitlementStatus::Disabled;
    }
    if starts_at.is_none_or(|start| start > now) {
        return EntitlementStatus::Created;
    }
    match expires_at {
        None => EntitlementStatus::Active,
        Some(expiry) if now < expiry => EntitlementStatus::Active,
        Some(expiry) if now < grace_period.after(expiry) => EntitlementStatus::Grace,
        Some(_) => EntitlementStatus::Expired,
    }
}

/// A feature as one entitlement grants it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FeatureGrant {
    pub feature_id: String,
    pub kind: FeatureKind,
    pub enabled: bool,
    pub limit: Option<i64>,
    pub overdraft: i64,
    /// Units checked out (element pool) or consumed since the last renewal (usage count).
    pub used: i64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AttributeGrant {
    pub attribute_id: String,
    pub kind: AttributeKind,
    pub value: String,
}

/// The values an entitlement takes from its offering, each of which may be overridden.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Terms {
    pub seat_count: i64,
    pub overdraft: Overdraft,
    pub concurrency_mode: ConcurrencyMode,
    pub periods: Periods,
    pub features: BTreeMap<Key, FeatureGrant>,
    pub attributes: BTreeMap<Key, AttributeGrant>,
}

/// Everything an offering hands down to the entitlements created from it.
pub struct OfferingTemplate<'a> {
    pub offering: &'a Offering,
    pub plan: &'a Plan,
    pub product: &'a Product,
    pub edition: &'a Edition,
    /// All features and attributes of the product, to resolve the edition's keys.
    pub features: &'a [Feature],
    pub attributes: &'a [Attribute],
}

impl OfferingTemplate<'_> {
    /// The terms an entitlement of `quantity` units of this offering gets, before overrides.
    pub fn terms(&self, quantity: i64, extra_seats: i64) -> Result<Terms, RuleViolation> {
        let seat_count = self
            .offering
            .seat_count
            .checked_mul(quantity)
            .and_then(|seats| seats.checked_add(extra_seats))
            .ok_or_else(|| RuleViolation::new("invalid_seat_count", "too many seats"))?;
        check_seat_count(seat_count)?;
        let mut features = BTreeMap::new();
        for value in &self.edition.features {
            let Some(feature) = self.features.iter().find(|f| f.key == value.key) else {
                continue;
            };
            features.insert(
                value.key.clone(),
                FeatureGrant {
                    feature_id: feature.id.clone(),
                    kind: feature.kind,
                    enabled: true,
                    limit: value.limit.map(FeatureAmount::get),
                    overdraft: value.overdraft.get(),
                    used: 0,
                },
            );
        }
        let mut attributes = BTreeMap::new();
        for value in &self.edition.attributes {
            let Some(attribute) = self.attributes.iter().find(|a| a.key == value.key) else {
                continue;
            };
            let stored = super::attribute_value_from_json(&value.key, attribute.kind, &value.value)?;
            attributes.insert(
                value.key.clone(),
                AttributeGrant {
                    attribute_id: attribute.id.clone(),
                    kind: attribute.kind,
                    value: stored,
                },
            );
        }
        Ok(Terms {
            seat_count,
            overdraft: self.offering.overdraft,
            concurrency_mode: self.offering.concurrency_mode,
            periods: self.product.periods,
            features,
            attributes,
        })
    }
}

/// `inherited` with every overridden value of `current` kept. Usage counters survive for
/// features both sides grant.
pub fn merge_terms(current: &Terms, mut inherited: Terms, overrides: &BTreeSet<String>) -> Terms {
    let kept = |name: &str| overrides.contains(name);
    if kept(field::SEAT_COUNT) {
        inherited.seat_count = current.seat_count;
    }
    if kept(field::OVERDRAFT) {
        inherited.overdraft = current.overdraft;
    }
    if kept(field::CONCURRENCY_MODE) {
        inherited.concurrency_mode = current.concurrency_mode;
    }
    let (periods, old) = (&mut inherited.periods, &current.periods);
    if kept(field::LEASE_PERIOD) {
        periods.lease_period = old.lease_period;
    }
    if kept(field::OFFLINE_LEASE_PERIOD) {
        periods.offline_lease_period = old.offline_lease_period;
    }
    if kept(field::GRACE_PERIOD) {
        periods.grace_period = old.grace_period;
    }
    if kept(field::LINGER_PERIOD) {
        periods.linger_period = old.linger_period;
    }
    for (key, grant) in &current.features {
        if kept(&field::feature(key.as_str())) {
            inherited.features.insert(key.clone(), grant.clone());
        } else if let Some(new) = inherited.features.get_mut(key) {
            new.used = grant.used;
        }
    }
    // An override that removed a feature the offering grants keeps it removed.
    inherited
        .features
        .retain(|key, _| !kept(&field::feature(key.as_str())) || current.features.contains_key(key));
    for (key, grant) in &current.attributes {
        if kept(&field::attribute(key.as_str())) {
            inherited.attributes.insert(key.clone(), grant.clone());
        }
    }
    inherited
        .attributes
        .retain(|key, _| !kept(&field::attribute(key.as_str())) || current.attributes.contains_key(key));
    inherited
}

/// When a new entitlement's licence period starts and ends.
pub fn initial_period(plan: &PlanTerms, now: DateTime<Utc>) -> (Option<DateTime<Utc>>, Option<DateTime<Utc>>) {
    match plan.start {
        PlanStart::OnFirstActivation => (None, None),
        PlanStart::OnCreation => (Some(now), expiry_from(plan, now)),
    }
}

fn expiry_from(plan: &PlanTerms, start: DateTime<Utc>) -> Option<DateTime<Utc>> {
    match plan.license_type {
        LicenseType::Perpetual => None,
        LicenseType::Subscription => Some(plan.duration.after(start)),
    }
}

/// Renewal: while active or in grace the new period follows the old one without a gap;
/// once expired (grace over) it runs from now. An entitlement not yet started starts now,
/// because the buyer is paying for the time.
pub fn renewed_period(
    plan: &PlanTerms,
    duration: Interval,
    starts_at: Option<DateTime<Utc>>,
    expires_at: Option<DateTime<Utc>>,
    grace_period: Interval,
    now: DateTime<Utc>,
) -> Result<(DateTime<Utc>, DateTime<Utc>), RuleViolation> {
    if plan.license_type == LicenseType::Perpetual && duration.is_none() {
        return Err(RuleViolation::new(
            "not_renewable",
            "a perpetual entitlement does not expire, so it cannot be renewed without a duration",
        ));
    }
    if duration.is_none() {
        return Err(RuleViolation::new("invalid_interval", "a renewal needs a duration"));
    }
    let start = starts_at.filter(|s| *s <= now).unwrap_or(now);
    let from = match expires_at {
        Some(expiry) if now < grace_period.after(expiry) => expiry,
        _ => now,
    };
    Ok((start, duration.after(from)))
}

/// The licence period after a change of plan (change of offering). The current period is kept
/// where it still makes sense: a subscription keeps its expiry, a move to a perpetual plan drops it,
/// and a move from perpetual (or a start on creation for an entitlement not yet started) starts
/// the new plan's period now.
pub fn period_after_plan_change(
    new_plan: &PlanTerms,
    starts_at: Option<DateTime<Utc>>,
    base_expires_at: Option<DateTime<Utc>>,
    now: DateTime<Utc>,
) -> (Option<DateTime<Utc>>, Option<DateTime<Utc>>) {
    let starts_at = match (starts_at, new_plan.start) {
        (None, PlanStart::OnCreation) => Some(now),
        (starts_at, _) => starts_at,
    };
    let Some(start) = starts_at else {
        return (None, None);
    };
    let expires = match (new_plan.license_type, base_expires_at) {
        (LicenseType::Perpetual, _) => None,
        (LicenseType::Subscription, Some(expiry)) => Some(expiry),
        (LicenseType::Subscription, None) => expiry_from(new_plan, start.max(now)),
    };
    (Some(start), expires)
}

/// An entitlement: a customer's right to an offering.
#[derive(Debug, Clone)]
pub struct Entitlement {
    pub id: String,
    pub customer_id: String,
    pub product_id: String,
    pub offering_id: String,
    pub sku: Sku,
    pub order_ref: Option<String>,
    pub quantity: i64,
    /// Seats added on top of the offering's (quantity × seats); kept across offering changes.
    pub extra_seats: i64,
    pub activation_code: ActivationCode,
    pub terms: Terms,
    pub plan: PlanTerms,
    pub starts_at: Option<DateTime<Utc>>,
    /// The expiry the plan and renewals give; `expires_at` differs only while overridden.
    pub base_expires_at: Option<DateTime<Utc>>,
    pub expires_at: Option<DateTime<Utc>>,
    pub disabled_at: Option<DateTime<Utc>>,
    pub overrides: BTreeSet<String>,
    pub seats_used: i64,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl Entitlement {
    pub fn status(&self, now: DateTime<Utc>) -> EntitlementStatus {
        status(
            now,
            self.starts_at,
            self.expires_at,
            self.terms.periods.grace_period,
            self.disabled_at.is_some(),
        )
    }

    pub fn view(&self, now: DateTime<Utc>) -> EntitlementView {
        let overdraft_seats = self.terms.overdraft.allowance(self.terms.seat_count);
        EntitlementView {
            id: self.id.clone(),
            customer_id: self.customer_id.clone(),
            product_id: self.product_id.clone(),
            offering_id: self.offering_id.clone(),
            sku: self.sku.clone(),
            order_ref: self.order_ref.clone(),
            quantity: self.quantity,
            extra_seats: self.extra_seats,
            activation_code: self.activation_code.clone(),
            status: self.status(now),
            seat_count: self.terms.seat_count,
            seats_used: self.seats_used,
            seats_available: (self.terms.seat_count - self.seats_used).max(0),
            overdraft: self.terms.overdraft,
            overdraft_seats,
            overdraft_seats_used: (self.seats_used - self.terms.seat_count).max(0),
            concurrency_mode: self.terms.concurrency_mode,
            periods: self.terms.periods,
            plan: self.plan,
            starts_at: self.starts_at,
            expires_at: self.expires_at,
            grace_expires_at: self.expires_at.map(|e| self.terms.periods.grace_period.after(e)),
            disabled_at: self.disabled_at,
            features: self
                .terms
                .features
                .iter()
                .map(|(key, grant)| FeatureGrantView {
                    key: key.clone(),
                    kind: grant.kind,
                    enabled: grant.enabled,
                    limit: grant.limit,
                    overdraft: grant.overdraft,
                    used: grant.used,
                    overridden: self.overrides.contains(&field::feature(key.as_str())),
                })
                .collect(),
            attributes: self
                .terms
                .attributes
                .iter()
                .map(|(key, grant)| AttributeGrantView {
                    key: key.clone(),
                    kind: grant.kind,
                    value: attribute_value_to_json(grant.kind, &grant.value),
                    overridden: self.overrides.contains(&field::attribute(key.as_str())),
                })
                .collect(),
            overridden_fields: self.overrides.iter().cloned().collect(),
            created_at: self.created_at,
            updated_at: self.updated_at,
        }
    }
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct FeatureGrantView {
    pub key: Key,
    pub kind: FeatureKind,
    pub enabled: bool,
    /// Pool size or usage allowance; `null` is unlimited.
    pub limit: Option<i64>,
    pub overdraft: i64,
    pub used: i64,
    pub overridden: bool,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct AttributeGrantView {
    pub key: Key,
    pub kind: AttributeKind,
    pub value: serde_json::Value,
    pub overridden: bool,
}

/// An entitlement as the management API shows it, with its computed status.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct EntitlementView {
    pub id: String,
    pub customer_id: String,
    pub product_id: String,
    pub offering_id: String,
    pub sku: Sku,
    pub order_ref: Option<String>,
    pub quantity: i64,
    pub extra_seats: i64,
    pub activation_code: ActivationCode,
    pub status: EntitlementStatus,
    pub seat_count: i64,
    pub seats_used: i64,
    pub seats_available: i64,
    pub overdraft: Overdraft,
    /// Seats allowed beyond the seat count; `null` is unlimited.
    pub overdraft_seats: Option<i64>,
    pub overdraft_seats_used: i64,
    pub concurrency_mode: ConcurrencyMode,
    #[serde(flatten)]
    pub periods: Periods,
    pub plan: PlanTerms,
    pub starts_at: Option<DateTime<Utc>>,
    pub expires_at: Option<DateTime<Utc>>,
    pub grace_expires_at: Option<DateTime<Utc>>,
    pub disabled_at: Option<DateTime<Utc>>,
    pub features: Vec<FeatureGrantView>,
    pub attributes: Vec<AttributeGrantView>,
    /// Values set on this entitlement that no longer follow the offering.
    pub overridden_fields: Vec<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{FeatureValue, Name, PlanKind};
    use chrono::TimeZone;

    fn t(day: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 3, day, 0, 0, 0).single().unwrap()
    }

    fn monthly() -> PlanTerms {
        PlanTerms {
            license_type: LicenseType::Subscription,
            duration: Interval::days(10),
            start: PlanStart::OnCreation,
            kind: PlanKind::Paid,
        }
    }

    #[test]
    fn status_follows_dates_and_flags() {
        let grace = Interval::days(3);
        assert_eq!(status(t(5), None, None, grace, false), EntitlementStatus::Created);
        assert_eq!(
            status(t(5), Some(t(6)), Some(t(9)), grace, false),
            EntitlementStatus::Created
        );
        assert_eq!(status(t(5), Some(t(1)), None, grace, false), EntitlementStatus::Active);
        assert_eq!(
            status(t(5), Some(t(1)), Some(t(6)), grace, false),
            EntitlementStatus::Active
        );
        assert_eq!(
            status(t(6), Some(t(1)), Some(t(6)), grace, false),
            EntitlementStatus::Grace
        );
        assert_eq!(
            status(t(8), Some(t(1)), Some(t(6)), grace, false),
            EntitlementStatus::Grace
        );
        assert_eq!(
            status(t(9), Some(t(1)), Some(t(6)), grace, false),
            EntitlementStatus::Expired
        );
        assert_eq!(
            status(t(9), Some(t(1)), Some(t(6)), Interval::NONE, false),
            EntitlementStatus::Expired
        );
        assert_eq!(
            status(t(2), Some(t(1)), Some(t(6)), grace, true),
            EntitlementStatus::Disabled
        );
    }

    #[test]
    fn renewal_extends_from_old_expiry_while_active_or_in_grace_and_from_now_after() {
        let plan = monthly();
        let grace = Interval::days(3);
        let d = plan.duration;
        // active
        assert_eq!(
            renewed_period(&plan, d, Some(t(1)), Some(t(11)), grace, t(5)).unwrap(),
            (t(1), t(21))
        );
        // in grace
        assert_eq!(
            renewed_period(&plan, d, Some(t(1)), Some(t(11)), grace, t(12)).unwrap(),
            (t(1), t(21))
        );
        // expired
        assert_eq!(
            renewed_period(&plan, d, Some(t(1)), Some(t(11)), grace, t(20)).unwrap(),
            (t(1), t(30))
        );
        // not yet started
        assert_eq!(
            renewed_period(&plan, d, None, None, grace, t(4)).unwrap(),
            (t(4), t(14))
        );
        let perpetual = PlanTerms {
            license_type: LicenseType::Perpetual,
            duration: Interval::NONE,
            ..plan
        };
        assert_eq!(
            renewed_period(&perpetual, Interval::NONE, Some(t(1)), None, grace, t(2))
                .unwrap_err()
                .code,
            "not_renewable"
        );
    }

    #[test]
    fn plan_changes_keep_the_period_where_it_makes_sense() {
        let monthly = monthly();
        let perpetual = PlanTerms {
            license_type: LicenseType::Perpetual,
            duration: Interval::NONE,
            ..monthly
        };
        assert_eq!(
            period_after_plan_change(&monthly, Some(t(1)), Some(t(11)), t(5)),
            (Some(t(1)), Some(t(11)))
        );
        assert_eq!(
            period_after_plan_change(&perpetual, Some(t(1)), Some(t(11)), t(5)),
            (Some(t(1)), None)
        );
        assert_eq!(
            period_after_plan_change(&monthly, Some(t(1)), None, t(5)),
            (Some(t(1)), Some(t(15)))
        );
        assert_eq!(
            period_after_plan_change(&monthly, None, None, t(5)),
            (Some(t(5)), Some(t(15)))
        );
        let on_activation = PlanTerms {
            start: PlanStart::OnFirstActivation,
            ..monthly
        };
        assert_eq!(period_after_plan_change(&on_activation, None, None, t(5)), (None, None));
    }

    #[test]
    fn initial_period_depends_on_the_plan() {
        assert_eq!(initial_period(&monthly(), t(1)), (Some(t(1)), Some(t(11))));
        let on_activation = PlanTerms {
            start: PlanStart::OnFirstActivation,
            ..monthly()
        };
        assert_eq!(initial_period(&on_activation, t(1)), (None, None));
        let perpetual = PlanTerms {
            license_type: LicenseType::Perpetual,
            duration: Interval::NONE,
            ..monthly()
        };
        assert_eq!(initial_period(&perpetual, t(1)), (Some(t(1)), None));
    }

    fn key(k: &str) -> Key {
        Key::parse(k).unwrap()
    }

    fn grant(id: &str, limit: Option<i64>, used: i64) -> FeatureGrant {
        FeatureGrant {
            feature_id: id.into(),
            kind: FeatureKind::UsageCount,
            enabled: true,
            limit,
            overdraft: 0,
            used,
        }
    }

    fn terms(seats: i64, features: &[(&str, Option<i64>, i64)]) -> Terms {
        Terms {
            seat_count: seats,
            overdraft: Overdraft::NONE,
            concurrency_mode: ConcurrencyMode::NodeLocked,
            periods: Periods::default(),
            features: features.iter().map(|(k, l, u)| (key(k), grant(k, *l, *u))).collect(),
            attributes: BTreeMap::new(),
        }
    }

    #[test]
    fn merge_keeps_overrides_and_usage_and_takes_the_rest_from_the_offering() {
        let current = terms(
            50,
            &[("exports", Some(999), 7), ("api", Some(10), 4), ("gone", None, 1)],
        );
        let inherited = terms(5, &[("exports", Some(100), 0), ("api", Some(20), 0), ("new", None, 0)]);
        let overrides: BTreeSet<String> = ["seat_count".to_string(), "features.exports".to_string()].into();
        let merged = merge_terms(&current, inherited, &overrides);
        assert_eq!(merged.seat_count, 50);
        assert_eq!(merged.features[&key("exports")].limit, Some(999));
        assert_eq!(merged.features[&key("api")].limit, Some(20));
        assert_eq!(merged.features[&key("api")].used, 4, "usage survives");
        assert!(merged.features.contains_key(&key("new")));
        assert!(!merged.features.contains_key(&key("gone")));

        let no_overrides = merge_terms(&current, terms(5, &[]), &BTreeSet::new());
        assert_eq!(no_overrides.seat_count, 5);
        assert!(no_overrides.features.is_empty());
    }

    #[test]
    fn a_removed_feature_stays_removed_while_overridden() {
        let current = terms(1, &[]);
        let inherited = terms(1, &[("exports", None, 0)]);
        let overrides: BTreeSet<String> = ["features.exports".to_string()].into();
        assert!(merge_terms(&current, inherited, &overrides).features.is_empty());
    }

    #[test]
    fn template_multiplies_seats_and_resolves_keys() {
        let now = t(1);
        let product = Product {
            account_based: false,
            id: "prd".into(),
            name: Name::parse("P").unwrap(),
            periods: Periods::default(),
            created_at: now,
            updated_at: now,
        };
        let feature = Feature {
            id: "fea_1".into(),
            product_id: "prd".into(),
            key: key("exports"),
            name: Name::parse("Exports").unwrap(),
            kind: FeatureKind::ElementPool,
            created_at: now,
            updated_at: now,
        };
        let edition = Edition {
            id: "edi".into(),
            product_id: "prd".into(),
            name: Name::parse("Pro").unwrap(),
            features: vec![FeatureValue {
                key: key("exports"),
                limit: Some(FeatureAmount::new(3).unwrap()),
                overdraft: FeatureAmount::ZERO,
            }],
            attributes: vec![],
            created_at: now,
            updated_at: now,
        };
        let plan = Plan {
            id: "pln".into(),
            product_id: "prd".into(),
            name: Name::parse("M").unwrap(),
            terms: monthly(),
            created_at: now,
            updated_at: now,
        };
        let offering = Offering {
            id: "off".into(),
            product_id: "prd".into(),
            edition_id: "edi".into(),
            plan_id: "pln".into(),
            sku: Sku::parse("PRO-M").unwrap(),
            name: Name::parse("Pro monthly").unwrap(),
            seat_count: 5,
            overdraft: Overdraft::NONE,
            concurrency_mode: ConcurrencyMode::Concurrent,
            created_at: now,
            updated_at: now,
        };
        let features = [feature];
        let template = OfferingTemplate {
            offering: &offering,
            plan: &plan,
            product: &product,
            edition: &edition,
            features: &features,
            attributes: &[],
        };
        let terms = template.terms(3, 2).unwrap();
        assert_eq!(terms.seat_count, 17);
        assert_eq!(terms.concurrency_mode, ConcurrencyMode::Concurrent);
        assert_eq!(terms.features[&key("exports")].feature_id, "fea_1");
        assert_eq!(template.terms(i64::MAX, 0).unwrap_err().code, "invalid_seat_count");
    }
}
