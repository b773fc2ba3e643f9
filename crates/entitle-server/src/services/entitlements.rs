//! Entitlements: creation from an offering, overrides and their reset, and the lifecycle actions.
//! Every write locks the entitlement (PostgreSQL) before reading it, so concurrent actions apply
//! one after the other.

use chrono::{DateTime, Utc};
use serde::Deserialize;
use sqlx::AnyConnection;
use std::collections::HashMap;
use utoipa::ToSchema;

use super::catalogue::unknown_key;
use super::{changes, found, nullable, on_duplicate, record, Ctx, Page, Paging, ServiceResult};
use crate::domain::FeatureAmount;
use crate::domain::{
    check_external_ref, check_feature_limits, check_seat_count, field, ids, initial_period, is_overridable_field,
    merge_terms, period_after_plan_change, renewed_period, ActivationCode, Attribute, AttributeGrant, AttributeValue,
    ConcurrencyMode, Edition, Entitlement, EntitlementView, Feature, FeatureGrant, Interval, Key, Offering,
    OfferingTemplate, Overdraft, Plan, Product, Quantity, RuleViolation, SeatCount, SeatIncrement, Sku,
};
use crate::store::catalogue as catalogue_db;
pub use crate::store::entitlements::Scope;
use crate::store::entitlements::{self as db, EntitlementFilter};
use crate::store::{Backend, Store};

/// An offering with everything it hands down, loaded once per unit of work.
struct TemplateParts {
    offering: Offering,
    plan: Plan,
    product: Product,
    edition: Edition,
    features: Vec<Feature>,
    attributes: Vec<Attribute>,
}

impl TemplateParts {
    async fn load(conn: &mut AnyConnection, tenant_id: &str, offering: Offering) -> ServiceResult<Self> {
        let plan = found(
            catalogue_db::get_plan(conn, tenant_id, &offering.plan_id).await?,
            "plan",
        )?;
        let product = found(
            catalogue_db::get_product(conn, tenant_id, &offering.product_id).await?,
            "product",
        )?;
        let edition = found(
            catalogue_db::get_edition(conn, tenant_id, &offering.edition_id).await?,
            "edition",
        )?;
        let features = catalogue_db::product_features(conn, tenant_id, &offering.product_id).await?;
        let attributes = catalogue_db::product_attributes(conn, tenant_id, &offering.product_id).await?;
        Ok(Self {
            offering,
            plan,
            product,
            edition,
            features,
            attributes,
        })
    }

    fn template(&self) -> OfferingTemplate<'_> {
        OfferingTemplate {
            offering: &self.offering,
            plan: &self.plan,
            product: &self.product,
            edition: &self.edition,
            features: &self.features,
            attributes: &self.attributes,
        }
    }

    /// Re-derives the entitlement's values from this offering, keeping its overrides.
    fn apply_to(&self, e: &mut Entitlement) -> ServiceResult<()> {
        let inherited = self.template().terms(e.quantity, e.extra_seats)?;
        e.terms = merge_terms(&e.terms, inherited, &e.overrides);
        e.plan = self.plan.terms;
        e.offering_id = self.offering.id.clone();
        e.sku = self.offering.sku.clone();
        Ok(())
    }
}

async fn offering_by_sku(conn: &mut AnyConnection, ctx: &Ctx, sku: &Sku) -> ServiceResult<Offering> {
    catalogue_db::find_offering_by_sku(conn, &ctx.tenant_id, sku)
        .await?
        .ok_or_else(|| RuleViolation::new("unknown_sku", format!("no offering has the SKU {sku}")).into())
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewEntitlement {
    pub customer_id: String,
    /// The offering bought.
    pub sku: Sku,
    /// Units bought; seats are the offering's seat count times this. Default: 1.
    pub quantity: Option<Quantity>,
    /// The order or subscription reference at the storefront.
    pub order_ref: Option<String>,
    /// Queue the credentials mail (activation code, or a password set-up link for account-based
    /// products) to this address, in the same transaction.
    pub send_credentials_to: Option<crate::domain::Email>,
}

#[tracing::instrument(skip_all, fields(tenant_id = %ctx.tenant_id))]
pub async fn create(
    store: &Store,
    ctx: &Ctx,
    mail: &super::mail::MailSettings,
    input: NewEntitlement,
) -> ServiceResult<EntitlementView> {
    let quantity = input.quantity.map_or(1, Quantity::get);
    if let Some(reference) = &input.order_ref {
        check_external_ref(reference)?;
    }
    let mut tx = store.begin().await?;
    found(
        crate::store::customers::get_customer(&mut tx, &ctx.tenant_id, &input.customer_id).await?,
        "customer",
    )?;
    let offering = offering_by_sku(&mut tx, ctx, &input.sku).await?;
    let entitlement = insert_new(
        &mut tx,
        ctx,
        &input.customer_id,
        offering,
        quantity,
        input.order_ref.clone(),
    )
    .await?;
    let view = entitlement.view(ctx.now);
    if let Some(recipient) = &input.send_credentials_to {
        super::mail::queue_credentials(&mut tx, ctx, mail, std::slice::from_ref(&entitlement), recipient).await?;
    }
    tx.commit().await?;
    if input.send_credentials_to.is_some() {
        store.mail_queued();
    }
    Ok(view)
}

/// A new entitlement of `quantity` units of `offering` for the customer, with its event, in the
/// caller's transaction.
pub(crate) async fn insert_new(
    conn: &mut AnyConnection,
    ctx: &Ctx,
    customer_id: &str,
    offering: Offering,
    quantity: i64,
    order_ref: Option<String>,
) -> ServiceResult<Entitlement> {
    let parts = TemplateParts::load(conn, &ctx.tenant_id, offering).await?;
    let terms = parts.template().terms(quantity, 0)?;
    let (starts_at, expires_at) = initial_period(&parts.plan.terms, ctx.now);
    let entitlement = Entitlement {
        id: ids::new_id("ent"),
        customer_id: customer_id.to_owned(),
        product_id: parts.product.id.clone(),
        offering_id: parts.offering.id.clone(),
        sku: parts.offering.sku.clone(),
        order_ref,
        quantity,
        extra_seats: 0,
        activation_code: ActivationCode::generate(),
        terms,
        plan: parts.plan.terms,
        starts_at,
        base_expires_at: expires_at,
        expires_at,
        disabled_at: None,
        overrides: Default::default(),
        seats_used: 0,
        created_at: ctx.now,
        updated_at: ctx.now,
    };
    db::insert(conn, &ctx.tenant_id, &entitlement)
        .await
        .map_err(on_duplicate(
            "activation_code_taken",
            "activation code collision; retry",
        ))?;
    let mut summary = super::snapshot(&entitlement.view(ctx.now));
    if let Some(object) = summary.as_object_mut() {
        // The event log is read by support staff; it need not repeat the credential.
        object.remove("activation_code");
    }
    record(
        conn,
        ctx,
        "entitlement.created",
        "entitlement",
        &entitlement.id,
        summary,
    )
    .await?;
    Ok(entitlement)
}

/// Moves an entitlement to `offering` (same product) and `quantity`, keeping its overrides and
/// a licence period that still makes sense.
pub(crate) async fn switch_offering(
    conn: &mut AnyConnection,
    ctx: &Ctx,
    e: &mut Entitlement,
    offering: Offering,
    quantity: i64,
) -> ServiceResult<()> {
    if offering.product_id != e.product_id {
        return Err(RuleViolation::new(
            "different_product",
            "an entitlement can only change to an offering of the same product",
        )
        .into());
    }
    e.quantity = quantity;
    let parts = TemplateParts::load(conn, &ctx.tenant_id, offering).await?;
    parts.apply_to(e)?;
    let (starts_at, base_expires_at) = period_after_plan_change(&e.plan, e.starts_at, e.base_expires_at, ctx.now);
    e.starts_at = starts_at;
    e.base_expires_at = base_expires_at;
    if !e.overrides.contains(field::EXPIRES_AT) {
        e.expires_at = base_expires_at;
    }
    Ok(())
}

#[tracing::instrument(skip_all, fields(tenant_id = %ctx.tenant_id, entitlement_id = %id))]
pub async fn get(store: &Store, ctx: &Ctx, id: &str) -> ServiceResult<EntitlementView> {
    let entitlement = found(
        db::get(&mut *store.read().await?, &ctx.tenant_id, id).await?,
        "entitlement",
    )?;
    Ok(entitlement.view(ctx.now))
}

#[derive(Debug, Clone, Default, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct EntitlementQuery {
    pub customer_id: Option<String>,
    pub sku: Option<String>,
    pub order_ref: Option<String>,
    #[param(inline)]
    pub limit: Option<crate::domain::PageLimit>,
    pub after: Option<String>,
}

#[tracing::instrument(skip_all, fields(tenant_id = %ctx.tenant_id))]
pub async fn list(store: &Store, ctx: &Ctx, query: &EntitlementQuery) -> ServiceResult<Page<EntitlementView>> {
    let paging = Paging {
        limit: query.limit,
        after: query.after.clone(),
    };
    paging.check()?;
    // An empty value means no filter, as before filters became separate conditions.
    let filter = EntitlementFilter {
        customer_id: given(&query.customer_id),
        sku: given(&query.sku),
        order_ref: given(&query.order_ref),
        after: paging.after(),
        limit: paging.fetch_limit(),
    };
    let entitlements = db::list(&mut *store.read().await?, &ctx.tenant_id, &filter).await?;
    let views = entitlements.iter().map(|e| e.view(ctx.now)).collect();
    Ok(paging.page(views, |v: &EntitlementView| &v.id))
}

fn given(value: &Option<String>) -> Option<&str> {
    value.as_deref().filter(|v| !v.is_empty())
}

/// Runs `change` on the locked entitlement in one transaction and records `action` with what changed.
async fn modify(
    store: &Store,
    ctx: &Ctx,
    id: &str,
    action: &str,
    change: impl AsyncFnOnce(&mut AnyConnection, &mut Entitlement) -> ServiceResult<()>,
) -> ServiceResult<EntitlementView> {
    let mut tx = store.begin().await?;
    db::lock(&mut tx, store.backend(), &ctx.tenant_id, id).await?;
    let mut entitlement = found(db::get(&mut tx, &ctx.tenant_id, id).await?, "entitlement")?;
    let before = entitlement.view(ctx.now);
    change(&mut tx, &mut entitlement).await?;
    let after = entitlement.view(ctx.now);
    let diff = changes(&before, &after);
    let changed = diff.as_object().is_some_and(|d| !d.is_empty());
    if changed {
        entitlement.updated_at = ctx.now;
        db::update(&mut tx, &ctx.tenant_id, &entitlement).await?;
        record(&mut tx, ctx, action, "entitlement", id, diff).await?;
        tx.commit().await?;
        return Ok(entitlement.view(ctx.now));
    }
    tx.commit().await?;
    Ok(after)
}

/// A feature as set on one entitlement.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct FeatureOverride {
    pub key: Key,
    /// `false` withdraws a feature the offering grants. Default: true.
    #[serde(default = "enabled_by_default")]
    pub enabled: bool,
    #[serde(default)]
    pub limit: Option<FeatureAmount>,
    #[serde(default = "crate::domain::catalogue::no_overdraft")]
    pub overdraft: FeatureAmount,
}

fn enabled_by_default() -> bool {
    true
}

/// Values set here override the offering's and are marked as overridden until reset.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EntitlementPatch {
    pub seat_count: Option<SeatCount>,
    pub overdraft: Option<Overdraft>,
    pub concurrency_mode: Option<ConcurrencyMode>,
    pub lease_period: Option<Interval>,
    pub offline_lease_period: Option<Interval>,
    pub grace_period: Option<Interval>,
    pub linger_period: Option<Interval>,
    /// `null` makes the entitlement perpetual.
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<DateTime<Utc>>)]
    pub expires_at: Option<Option<DateTime<Utc>>>,
    /// Not an override: the storefront reference. `null` removes it.
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<String>)]
    pub order_ref: Option<Option<String>>,
    pub features: Option<Vec<FeatureOverride>>,
    pub attributes: Option<Vec<AttributeValue>>,
}

#[tracing::instrument(skip_all, fields(tenant_id = %ctx.tenant_id, entitlement_id = %id))]
pub async fn update(store: &Store, ctx: &Ctx, id: &str, patch: EntitlementPatch) -> ServiceResult<EntitlementView> {
    if let Some(Some(reference)) = &patch.order_ref {
        check_external_ref(reference)?;
    }
    let tenant_id = ctx.tenant_id.clone();
    modify(store, ctx, id, "entitlement.updated", async |conn, e| {
        let overrides = &mut e.overrides;
        let terms = &mut e.terms;
        let mut set = |name: &str| {
            overrides.insert(name.to_owned());
        };
        if let Some(seats) = patch.seat_count {
            terms.seat_count = seats.get();
            set(field::SEAT_COUNT);
        }
        if let Some(overdraft) = patch.overdraft {
            terms.overdraft = overdraft;
            set(field::OVERDRAFT);
        }
        if let Some(mode) = patch.concurrency_mode {
            terms.concurrency_mode = mode;
            set(field::CONCURRENCY_MODE);
        }
        let periods = &mut terms.periods;
        for (value, slot, name) in [
            (patch.lease_period, &mut periods.lease_period, field::LEASE_PERIOD),
            (
                patch.offline_lease_period,
                &mut periods.offline_lease_period,
                field::OFFLINE_LEASE_PERIOD,
            ),
            (patch.grace_period, &mut periods.grace_period, field::GRACE_PERIOD),
            (patch.linger_period, &mut periods.linger_period, field::LINGER_PERIOD),
        ] {
            if let Some(value) = value {
                *slot = value;
                set(name);
            }
        }
        if let Some(expires_at) = patch.expires_at {
            e.expires_at = expires_at;
            set(field::EXPIRES_AT);
        }
        if let Some(order_ref) = patch.order_ref {
            e.order_ref = order_ref;
        }
        if patch.features.is_some() || patch.attributes.is_some() {
            let features = catalogue_db::product_features(conn, &tenant_id, &e.product_id).await?;
            for value in patch.features.unwrap_or_default() {
                let feature = features
                    .iter()
                    .find(|f| f.key == value.key)
                    .ok_or_else(|| unknown_key("feature", &value.key))?;
                check_feature_limits(&value.key, feature.kind, value.limit, value.overdraft)?;
                let used = e.terms.features.get(&value.key).map_or(0, |g| g.used);
                e.terms.features.insert(
                    value.key.clone(),
                    FeatureGrant {
                        feature_id: feature.id.clone(),
                        kind: feature.kind,
                        enabled: value.enabled,
                        limit: value.limit.map(FeatureAmount::get),
                        overdraft: value.overdraft.get(),
                        used,
                    },
                );
                e.overrides.insert(field::feature(value.key.as_str()));
            }
            let attributes = catalogue_db::product_attributes(conn, &tenant_id, &e.product_id).await?;
            for value in patch.attributes.unwrap_or_default() {
                let attribute = attributes
                    .iter()
                    .find(|a| a.key == value.key)
                    .ok_or_else(|| unknown_key("attribute", &value.key))?;
                let stored = crate::domain::attribute_value_from_json(&value.key, attribute.kind, &value.value)?;
                e.terms.attributes.insert(
                    value.key.clone(),
                    AttributeGrant {
                        attribute_id: attribute.id.clone(),
                        kind: attribute.kind,
                        value: stored,
                    },
                );
                e.overrides.insert(field::attribute(value.key.as_str()));
            }
        }
        Ok(())
    })
    .await
}

#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ResetOverrides {
    /// The overridden fields to reset (as listed in `overridden_fields`). Default: all.
    pub fields: Option<Vec<String>>,
}

#[tracing::instrument(skip_all, fields(tenant_id = %ctx.tenant_id, entitlement_id = %id))]
pub async fn reset_overrides(
    store: &Store,
    ctx: &Ctx,
    id: &str,
    input: ResetOverrides,
) -> ServiceResult<EntitlementView> {
    if let Some(bad) = input.fields.iter().flatten().find(|f| !is_overridable_field(f)) {
        return Err(RuleViolation::new("invalid_field", format!("{bad} is not a field that can be overridden")).into());
    }
    let tenant_id = ctx.tenant_id.clone();
    modify(store, ctx, id, "entitlement.overrides_reset", async |conn, e| {
        match input.fields {
            Some(fields) => fields.iter().for_each(|f| {
                e.overrides.remove(f);
            }),
            None => e.overrides.clear(),
        }
        if !e.overrides.contains(field::EXPIRES_AT) {
            e.expires_at = e.base_expires_at;
        }
        let offering = found(
            catalogue_db::get_offering(conn, &tenant_id, &e.offering_id).await?,
            "offering",
        )?;
        TemplateParts::load(conn, &tenant_id, offering).await?.apply_to(e)
    })
    .await
}

#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Renewal {
    /// Default: the plan's duration.
    pub duration: Option<Interval>,
}

#[tracing::instrument(skip_all, fields(tenant_id = %ctx.tenant_id, entitlement_id = %id))]
pub async fn renew(store: &Store, ctx: &Ctx, id: &str, input: Renewal) -> ServiceResult<EntitlementView> {
    let now = ctx.now;
    modify(store, ctx, id, "entitlement.renewed", async |conn, e| {
        let duration = input.duration.unwrap_or(e.plan.duration);
        let (starts_at, expires_at) = renewed_period(
            &e.plan,
            duration,
            e.starts_at,
            e.expires_at,
            e.terms.periods.grace_period,
            now,
        )?;
        e.starts_at = Some(starts_at);
        e.base_expires_at = Some(expires_at);
        e.expires_at = Some(expires_at);
        // A renewal sets the expiry explicitly: it follows the plan again from here.
        e.overrides.remove(field::EXPIRES_AT);
        for grant in e.terms.features.values_mut() {
            if grant.kind == crate::domain::FeatureKind::UsageCount {
                grant.used = 0;
            }
        }
        db::reset_usage(conn, &e.id).await?;
        Ok(())
    })
    .await
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct OfferingChange {
    /// The new offering: same product.
    pub sku: Sku,
    /// Default: unchanged.
    pub quantity: Option<Quantity>,
}

#[tracing::instrument(skip_all, fields(tenant_id = %ctx.tenant_id, entitlement_id = %id))]
pub async fn change_offering(
    store: &Store,
    ctx: &Ctx,
    id: &str,
    input: OfferingChange,
) -> ServiceResult<EntitlementView> {
    modify(store, ctx, id, "entitlement.offering_changed", async |conn, e| {
        let offering = offering_by_sku(conn, ctx, &input.sku).await?;
        let quantity = input.quantity.map_or(e.quantity, Quantity::get);
        switch_offering(conn, ctx, e, offering, quantity).await
    })
    .await
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SeatAddition {
    /// Seats to add; they stay through later offering changes.
    pub count: SeatIncrement,
}

#[tracing::instrument(skip_all, fields(tenant_id = %ctx.tenant_id, entitlement_id = %id))]
pub async fn add_seats(store: &Store, ctx: &Ctx, id: &str, input: SeatAddition) -> ServiceResult<EntitlementView> {
    let count = input.count.get();
    modify(store, ctx, id, "entitlement.seats_added", async |_conn, e| {
        let too_many = || RuleViolation::new("invalid_seat_count", "too many seats");
        e.extra_seats = e.extra_seats.checked_add(count).ok_or_else(too_many)?;
        e.terms.seat_count = e.terms.seat_count.checked_add(count).ok_or_else(too_many)?;
        check_seat_count(e.terms.seat_count)?;
        Ok(())
    })
    .await
}

#[tracing::instrument(skip_all, fields(tenant_id = %ctx.tenant_id, entitlement_id = %id))]
pub async fn disable(store: &Store, ctx: &Ctx, id: &str) -> ServiceResult<EntitlementView> {
    let now = ctx.now;
    modify(store, ctx, id, "entitlement.disabled", async |_conn, e| {
        e.disabled_at = e.disabled_at.or(Some(now));
        Ok(())
    })
    .await
}

#[tracing::instrument(skip_all, fields(tenant_id = %ctx.tenant_id, entitlement_id = %id))]
pub async fn enable(store: &Store, ctx: &Ctx, id: &str) -> ServiceResult<EntitlementView> {
    modify(store, ctx, id, "entitlement.enabled", async |_conn, e| {
        e.disabled_at = None;
        Ok(())
    })
    .await
}

/// After a catalogue change: every entitlement in `scope` takes the new values, except overrides.
pub(crate) async fn reapply_offerings(
    conn: &mut AnyConnection,
    backend: Backend,
    ctx: &Ctx,
    scope: Scope<'_>,
) -> ServiceResult<()> {
    let ids = db::ids_in_scope(conn, &ctx.tenant_id, scope).await?;
    let mut templates: HashMap<String, TemplateParts> = HashMap::new();
    for id in ids {
        db::lock(conn, backend, &ctx.tenant_id, &id).await?;
        let Some(mut entitlement) = db::get(conn, &ctx.tenant_id, &id).await? else {
            continue;
        };
        if !templates.contains_key(&entitlement.offering_id) {
            let offering = found(
                catalogue_db::get_offering(conn, &ctx.tenant_id, &entitlement.offering_id).await?,
                "offering",
            )?;
            let parts = TemplateParts::load(conn, &ctx.tenant_id, offering).await?;
            templates.insert(entitlement.offering_id.clone(), parts);
        }
        let before = entitlement.view(ctx.now);
        if let Some(parts) = templates.get(&entitlement.offering_id) {
            parts.apply_to(&mut entitlement)?;
        }
        let diff = changes(&before, &entitlement.view(ctx.now));
        if diff.as_object().is_some_and(|d| !d.is_empty()) {
            entitlement.updated_at = ctx.now;
            db::update(conn, &ctx.tenant_id, &entitlement).await?;
            record(conn, ctx, "entitlement.updated", "entitlement", &id, diff).await?;
        }
    }
    Ok(())
}
