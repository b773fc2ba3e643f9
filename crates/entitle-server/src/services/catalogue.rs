//! Products, features, attributes, editions, plans and offerings. Changes to a product's periods,
//! an edition, a plan or an offering reach every entitlement created from it, except for the values
//! those entitlements override.

use serde::Deserialize;
use sqlx::AnyConnection;
use std::collections::BTreeSet;
use utoipa::ToSchema;

use super::entitlements::{reapply_offerings, Scope};
use super::{changes, found, on_duplicate, record, snapshot, Ctx, Page, Paging, ServiceResult};
use crate::domain::{
    attribute_value_from_json, ids, Attribute, AttributeKind, AttributeValue, ConcurrencyMode, Edition, Feature,
    FeatureKind, FeatureValue, Interval, Key, LicenseType, Name, Offering, Overdraft, Periods, Plan, PlanKind,
    PlanStart, PlanTerms, Product, RuleViolation, SeatCount, Sku,
};
use crate::store::catalogue::{self as db, EditionValues, ListFilter};
use crate::store::Store;

/// `?product_id=` filter with paging.
#[derive(Debug, Clone, Default, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct CatalogueQuery {
    pub product_id: Option<String>,
    #[param(inline)]
    pub limit: Option<crate::domain::PageLimit>,
    pub after: Option<String>,
}

impl CatalogueQuery {
    fn paging(&self) -> Paging {
        Paging {
            limit: self.limit,
            after: self.after.clone(),
        }
    }
}

impl CatalogueQuery {
    fn checked_paging(&self) -> ServiceResult<Paging> {
        let paging = self.paging();
        paging.check()?;
        Ok(paging)
    }
}

fn filter<'a>(query: &'a CatalogueQuery, paging: &'a Paging) -> ListFilter<'a> {
    ListFilter {
        product_id: query.product_id.as_deref(),
        after: paging.after(),
        limit: paging.fetch_limit(),
    }
}

async fn product_in(conn: &mut AnyConnection, ctx: &Ctx, product_id: &str) -> ServiceResult<Product> {
    found(db::get_product(conn, &ctx.tenant_id, product_id).await?, "product")
}

// ---- products ----

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewProduct {
    pub name: Name,
    /// Default: 1 day.
    pub lease_period: Option<Interval>,
    /// Default: none (no offline use).
    pub offline_lease_period: Option<Interval>,
    /// Default: 7 days.
    pub grace_period: Option<Interval>,
    /// Default: none.
    pub linger_period: Option<Interval>,
    /// End users activate with email and password; credentials mails carry a password set-up
    /// link instead of the activation code. Default: false.
    pub account_based: Option<bool>,
}

#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ProductPatch {
    pub name: Option<Name>,
    pub lease_period: Option<Interval>,
    pub offline_lease_period: Option<Interval>,
    pub grace_period: Option<Interval>,
    pub linger_period: Option<Interval>,
    pub account_based: Option<bool>,
}

#[tracing::instrument(skip_all, fields(tenant_id = %ctx.tenant_id))]
pub async fn create_product(store: &Store, ctx: &Ctx, input: NewProduct) -> ServiceResult<Product> {
    let defaults = Periods::default();
    let product = Product {
        id: ids::new_id("prd"),
        name: input.name,
        periods: Periods {
            lease_period: input.lease_period.unwrap_or(defaults.lease_period),
            offline_lease_period: input.offline_lease_period.unwrap_or(defaults.offline_lease_period),
            grace_period: input.grace_period.unwrap_or(defaults.grace_period),
            linger_period: input.linger_period.unwrap_or(defaults.linger_period),
        },
        account_based: input.account_based.unwrap_or(false),
        created_at: ctx.now,
        updated_at: ctx.now,
    };
    let mut tx = store.begin().await?;
    db::insert_product(&mut tx, &ctx.tenant_id, &product).await?;
    record(
        &mut tx,
        ctx,
        "product.created",
        "product",
        &product.id,
        snapshot(&product),
    )
    .await?;
    tx.commit().await?;
    Ok(product)
}

#[tracing::instrument(skip_all, fields(tenant_id = %ctx.tenant_id, product_id = %id))]
pub async fn get_product(store: &Store, ctx: &Ctx, id: &str) -> ServiceResult<Product> {
    product_in(&mut *store.read().await?, ctx, id).await
}

#[tracing::instrument(skip_all, fields(tenant_id = %ctx.tenant_id))]
pub async fn list_products(store: &Store, ctx: &Ctx, query: &CatalogueQuery) -> ServiceResult<Page<Product>> {
    let paging = query.checked_paging()?;
    let items = db::list_products(&mut *store.read().await?, &ctx.tenant_id, &filter(query, &paging)).await?;
    Ok(paging.page(items, |p: &Product| &p.id))
}

#[tracing::instrument(skip_all, fields(tenant_id = %ctx.tenant_id, product_id = %id))]
pub async fn update_product(store: &Store, ctx: &Ctx, id: &str, patch: ProductPatch) -> ServiceResult<Product> {
    let mut tx = store.begin().await?;
    let before = product_in(&mut tx, ctx, id).await?;
    let mut product = before.clone();
    let periods = &mut product.periods;
    product.name = patch.name.unwrap_or(product.name);
    periods.lease_period = patch.lease_period.unwrap_or(periods.lease_period);
    periods.offline_lease_period = patch.offline_lease_period.unwrap_or(periods.offline_lease_period);
    periods.grace_period = patch.grace_period.unwrap_or(periods.grace_period);
    periods.linger_period = patch.linger_period.unwrap_or(periods.linger_period);
    product.account_based = patch.account_based.unwrap_or(product.account_based);
    product.updated_at = ctx.now;
    db::update_product(&mut tx, &ctx.tenant_id, &product).await?;
    record(
        &mut tx,
        ctx,
        "product.updated",
        "product",
        id,
        changes(&before, &product),
    )
    .await?;
    if before.periods != product.periods {
        reapply_offerings(&mut tx, store.backend(), ctx, Scope::Product(id)).await?;
    }
    tx.commit().await?;
    Ok(product)
}

// ---- features and attributes ----

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewFeature {
    pub product_id: String,
    pub key: Key,
    pub name: Name,
    pub kind: FeatureKind,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewAttribute {
    pub product_id: String,
    pub key: Key,
    pub name: Name,
    pub kind: AttributeKind,
}

/// A feature's or attribute's key and kind are fixed once created (entitlements depend on them);
/// its name may change.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DefinitionPatch {
    pub name: Option<Name>,
}

#[tracing::instrument(skip_all, fields(tenant_id = %ctx.tenant_id))]
pub async fn create_feature(store: &Store, ctx: &Ctx, input: NewFeature) -> ServiceResult<Feature> {
    let mut tx = store.begin().await?;
    product_in(&mut tx, ctx, &input.product_id).await?;
    let feature = Feature {
        id: ids::new_id("fea"),
        product_id: input.product_id,
        key: input.key,
        name: input.name,
        kind: input.kind,
        created_at: ctx.now,
        updated_at: ctx.now,
    };
    db::insert_feature(&mut tx, &ctx.tenant_id, &feature)
        .await
        .map_err(on_duplicate(
            "key_taken",
            "the product already has a feature with this key",
        ))?;
    record(
        &mut tx,
        ctx,
        "feature.created",
        "feature",
        &feature.id,
        snapshot(&feature),
    )
    .await?;
    tx.commit().await?;
    Ok(feature)
}

#[tracing::instrument(skip_all, fields(tenant_id = %ctx.tenant_id, feature_id = %id))]
pub async fn get_feature(store: &Store, ctx: &Ctx, id: &str) -> ServiceResult<Feature> {
    found(
        db::get_feature(&mut *store.read().await?, &ctx.tenant_id, id).await?,
        "feature",
    )
}

#[tracing::instrument(skip_all, fields(tenant_id = %ctx.tenant_id))]
pub async fn list_features(store: &Store, ctx: &Ctx, query: &CatalogueQuery) -> ServiceResult<Page<Feature>> {
    let paging = query.checked_paging()?;
    let items = db::list_features(&mut *store.read().await?, &ctx.tenant_id, &filter(query, &paging)).await?;
    Ok(paging.page(items, |f: &Feature| &f.id))
}

#[tracing::instrument(skip_all, fields(tenant_id = %ctx.tenant_id, feature_id = %id))]
pub async fn update_feature(store: &Store, ctx: &Ctx, id: &str, patch: DefinitionPatch) -> ServiceResult<Feature> {
    let mut tx = store.begin().await?;
    let before = found(db::get_feature(&mut tx, &ctx.tenant_id, id).await?, "feature")?;
    let mut feature = before.clone();
    feature.name = patch.name.unwrap_or(feature.name);
    feature.updated_at = ctx.now;
    db::rename_feature(&mut tx, &ctx.tenant_id, &feature).await?;
    record(
        &mut tx,
        ctx,
        "feature.updated",
        "feature",
        id,
        changes(&before, &feature),
    )
    .await?;
    tx.commit().await?;
    Ok(feature)
}

#[tracing::instrument(skip_all, fields(tenant_id = %ctx.tenant_id))]
pub async fn create_attribute(store: &Store, ctx: &Ctx, input: NewAttribute) -> ServiceResult<Attribute> {
    let mut tx = store.begin().await?;
    product_in(&mut tx, ctx, &input.product_id).await?;
    let attribute = Attribute {
        id: ids::new_id("atr"),
        product_id: input.product_id,
        key: input.key,
        name: input.name,
        kind: input.kind,
        created_at: ctx.now,
        updated_at: ctx.now,
    };
    db::insert_attribute(&mut tx, &ctx.tenant_id, &attribute)
        .await
        .map_err(on_duplicate(
            "key_taken",
            "the product already has an attribute with this key",
        ))?;
    record(
        &mut tx,
        ctx,
        "attribute.created",
        "attribute",
        &attribute.id,
        snapshot(&attribute),
    )
    .await?;
    tx.commit().await?;
    Ok(attribute)
}

#[tracing::instrument(skip_all, fields(tenant_id = %ctx.tenant_id, attribute_id = %id))]
pub async fn get_attribute(store: &Store, ctx: &Ctx, id: &str) -> ServiceResult<Attribute> {
    found(
        db::get_attribute(&mut *store.read().await?, &ctx.tenant_id, id).await?,
        "attribute",
    )
}

#[tracing::instrument(skip_all, fields(tenant_id = %ctx.tenant_id))]
pub async fn list_attributes(store: &Store, ctx: &Ctx, query: &CatalogueQuery) -> ServiceResult<Page<Attribute>> {
    let paging = query.checked_paging()?;
    let items = db::list_attributes(&mut *store.read().await?, &ctx.tenant_id, &filter(query, &paging)).await?;
    Ok(paging.page(items, |a: &Attribute| &a.id))
}

#[tracing::instrument(skip_all, fields(tenant_id = %ctx.tenant_id, attribute_id = %id))]
pub async fn update_attribute(store: &Store, ctx: &Ctx, id: &str, patch: DefinitionPatch) -> ServiceResult<Attribute> {
    let mut tx = store.begin().await?;
    let before = found(db::get_attribute(&mut tx, &ctx.tenant_id, id).await?, "attribute")?;
    let mut attribute = before.clone();
    attribute.name = patch.name.unwrap_or(attribute.name);
    attribute.updated_at = ctx.now;
    db::rename_attribute(&mut tx, &ctx.tenant_id, &attribute).await?;
    record(
        &mut tx,
        ctx,
        "attribute.updated",
        "attribute",
        id,
        changes(&before, &attribute),
    )
    .await?;
    tx.commit().await?;
    Ok(attribute)
}

// ---- editions ----

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewEdition {
    pub product_id: String,
    pub name: Name,
    /// The features this edition grants; features not listed are not granted.
    #[serde(default)]
    pub features: Vec<FeatureValue>,
    #[serde(default)]
    pub attributes: Vec<AttributeValue>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EditionPatch {
    pub name: Option<Name>,
    /// Replaces the whole list when present.
    pub features: Option<Vec<FeatureValue>>,
    /// Replaces the whole list when present.
    pub attributes: Option<Vec<AttributeValue>>,
}

/// Resolves an edition's keys against its product and checks each value against its kind.
async fn resolve_edition_values(
    conn: &mut AnyConnection,
    ctx: &Ctx,
    product_id: &str,
    features: &[FeatureValue],
    attributes: &[AttributeValue],
) -> ServiceResult<EditionValues> {
    let known_features = db::product_features(conn, &ctx.tenant_id, product_id).await?;
    let known_attributes = db::product_attributes(conn, &ctx.tenant_id, product_id).await?;
    let mut seen = BTreeSet::new();
    let mut resolved = EditionValues {
        features: Vec::new(),
        attributes: Vec::new(),
    };
    for value in features {
        let feature = known_features
            .iter()
            .find(|f| f.key == value.key)
            .ok_or_else(|| unknown_key("feature", &value.key))?;
        if !seen.insert(("f", value.key.clone())) {
            return Err(duplicate_key("feature", &value.key).into());
        }
        value.check(feature.kind)?;
        resolved.features.push((feature.id.clone(), value.clone()));
    }
    for value in attributes {
        let attribute = known_attributes
            .iter()
            .find(|a| a.key == value.key)
            .ok_or_else(|| unknown_key("attribute", &value.key))?;
        if !seen.insert(("a", value.key.clone())) {
            return Err(duplicate_key("attribute", &value.key).into());
        }
        let stored = attribute_value_from_json(&value.key, attribute.kind, &value.value)?;
        resolved.attributes.push((attribute.id.clone(), stored));
    }
    Ok(resolved)
}

pub(crate) fn unknown_key(what: &str, key: &Key) -> RuleViolation {
    RuleViolation::new(
        if what == "feature" {
            "unknown_feature"
        } else {
            "unknown_attribute"
        },
        format!("the product has no {what} with key {key}"),
    )
}

fn duplicate_key(what: &str, key: &Key) -> RuleViolation {
    RuleViolation::new("duplicate_key", format!("{what} {key} is listed twice"))
}

#[tracing::instrument(skip_all, fields(tenant_id = %ctx.tenant_id))]
pub async fn create_edition(store: &Store, ctx: &Ctx, input: NewEdition) -> ServiceResult<Edition> {
    let mut tx = store.begin().await?;
    product_in(&mut tx, ctx, &input.product_id).await?;
    let values = resolve_edition_values(&mut tx, ctx, &input.product_id, &input.features, &input.attributes).await?;
    let id = ids::new_id("edi");
    let edition = Edition {
        id: id.clone(),
        product_id: input.product_id,
        name: input.name,
        features: Vec::new(),
        attributes: Vec::new(),
        created_at: ctx.now,
        updated_at: ctx.now,
    };
    db::insert_edition(&mut tx, &ctx.tenant_id, &edition, &values).await?;
    let edition = found(db::get_edition(&mut tx, &ctx.tenant_id, &id).await?, "edition")?;
    record(&mut tx, ctx, "edition.created", "edition", &id, snapshot(&edition)).await?;
    tx.commit().await?;
    Ok(edition)
}

#[tracing::instrument(skip_all, fields(tenant_id = %ctx.tenant_id, edition_id = %id))]
pub async fn get_edition(store: &Store, ctx: &Ctx, id: &str) -> ServiceResult<Edition> {
    found(
        db::get_edition(&mut *store.read().await?, &ctx.tenant_id, id).await?,
        "edition",
    )
}

#[tracing::instrument(skip_all, fields(tenant_id = %ctx.tenant_id))]
pub async fn list_editions(store: &Store, ctx: &Ctx, query: &CatalogueQuery) -> ServiceResult<Page<Edition>> {
    let paging = query.checked_paging()?;
    let items = db::list_editions(&mut *store.read().await?, &ctx.tenant_id, &filter(query, &paging)).await?;
    Ok(paging.page(items, |e: &Edition| &e.id))
}

#[tracing::instrument(skip_all, fields(tenant_id = %ctx.tenant_id, edition_id = %id))]
pub async fn update_edition(store: &Store, ctx: &Ctx, id: &str, patch: EditionPatch) -> ServiceResult<Edition> {
    let mut tx = store.begin().await?;
    let before = found(db::get_edition(&mut tx, &ctx.tenant_id, id).await?, "edition")?;
    let features = patch.features.unwrap_or_else(|| before.features.clone());
    let attributes = patch.attributes.unwrap_or_else(|| before.attributes.clone());
    let values = resolve_edition_values(&mut tx, ctx, &before.product_id, &features, &attributes).await?;
    let mut edition = before.clone();
    edition.name = patch.name.unwrap_or(edition.name);
    edition.updated_at = ctx.now;
    db::update_edition(&mut tx, &ctx.tenant_id, &edition, &values).await?;
    let edition = found(db::get_edition(&mut tx, &ctx.tenant_id, id).await?, "edition")?;
    record(
        &mut tx,
        ctx,
        "edition.updated",
        "edition",
        id,
        changes(&before, &edition),
    )
    .await?;
    if before.features != edition.features || before.attributes != edition.attributes {
        reapply_offerings(&mut tx, store.backend(), ctx, Scope::Edition(id)).await?;
    }
    tx.commit().await?;
    Ok(edition)
}

// ---- plans ----

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewPlan {
    pub product_id: String,
    pub name: Name,
    pub license_type: LicenseType,
    /// Required for subscriptions; omit for perpetual licences.
    pub duration: Option<Interval>,
    /// Default: `on_creation`.
    pub start: Option<PlanStart>,
    /// Default: `paid`.
    pub kind: Option<PlanKind>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PlanPatch {
    pub name: Option<Name>,
    pub license_type: Option<LicenseType>,
    pub duration: Option<Interval>,
    pub start: Option<PlanStart>,
    pub kind: Option<PlanKind>,
}

#[tracing::instrument(skip_all, fields(tenant_id = %ctx.tenant_id))]
pub async fn create_plan(store: &Store, ctx: &Ctx, input: NewPlan) -> ServiceResult<Plan> {
    let terms = PlanTerms {
        license_type: input.license_type,
        duration: input.duration.unwrap_or(Interval::NONE),
        start: input.start.unwrap_or(PlanStart::OnCreation),
        kind: input.kind.unwrap_or(PlanKind::Paid),
    };
    terms.check()?;
    let mut tx = store.begin().await?;
    product_in(&mut tx, ctx, &input.product_id).await?;
    let plan = Plan {
        id: ids::new_id("pln"),
        product_id: input.product_id,
        name: input.name,
        terms,
        created_at: ctx.now,
        updated_at: ctx.now,
    };
    db::insert_plan(&mut tx, &ctx.tenant_id, &plan).await?;
    record(&mut tx, ctx, "plan.created", "plan", &plan.id, snapshot(&plan)).await?;
    tx.commit().await?;
    Ok(plan)
}

#[tracing::instrument(skip_all, fields(tenant_id = %ctx.tenant_id, plan_id = %id))]
pub async fn get_plan(store: &Store, ctx: &Ctx, id: &str) -> ServiceResult<Plan> {
    found(
        db::get_plan(&mut *store.read().await?, &ctx.tenant_id, id).await?,
        "plan",
    )
}

#[tracing::instrument(skip_all, fields(tenant_id = %ctx.tenant_id))]
pub async fn list_plans(store: &Store, ctx: &Ctx, query: &CatalogueQuery) -> ServiceResult<Page<Plan>> {
    let paging = query.checked_paging()?;
    let items = db::list_plans(&mut *store.read().await?, &ctx.tenant_id, &filter(query, &paging)).await?;
    Ok(paging.page(items, |p: &Plan| &p.id))
}

#[tracing::instrument(skip_all, fields(tenant_id = %ctx.tenant_id, plan_id = %id))]
pub async fn update_plan(store: &Store, ctx: &Ctx, id: &str, patch: PlanPatch) -> ServiceResult<Plan> {
    let mut tx = store.begin().await?;
    let before = found(db::get_plan(&mut tx, &ctx.tenant_id, id).await?, "plan")?;
    let mut plan = before.clone();
    plan.name = patch.name.unwrap_or(plan.name);
    let terms = &mut plan.terms;
    terms.license_type = patch.license_type.unwrap_or(terms.license_type);
    terms.duration = patch.duration.unwrap_or(terms.duration);
    terms.start = patch.start.unwrap_or(terms.start);
    terms.kind = patch.kind.unwrap_or(terms.kind);
    plan.terms.check()?;
    plan.updated_at = ctx.now;
    db::update_plan(&mut tx, &ctx.tenant_id, &plan).await?;
    record(&mut tx, ctx, "plan.updated", "plan", id, changes(&before, &plan)).await?;
    if before.terms != plan.terms {
        reapply_offerings(&mut tx, store.backend(), ctx, Scope::Plan(id)).await?;
    }
    tx.commit().await?;
    Ok(plan)
}

// ---- offerings ----

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewOffering {
    pub sku: Sku,
    pub name: Name,
    pub edition_id: String,
    /// Must belong to the same product as the edition.
    pub plan_id: String,
    /// Seats per unit bought. Default: 1.
    pub seat_count: Option<SeatCount>,
    /// Default: none.
    pub overdraft: Option<Overdraft>,
    /// Default: `node_locked`.
    pub concurrency_mode: Option<ConcurrencyMode>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct OfferingPatch {
    pub sku: Option<Sku>,
    pub name: Option<Name>,
    pub seat_count: Option<SeatCount>,
    pub overdraft: Option<Overdraft>,
    pub concurrency_mode: Option<ConcurrencyMode>,
}

#[tracing::instrument(skip_all, fields(tenant_id = %ctx.tenant_id))]
pub async fn create_offering(store: &Store, ctx: &Ctx, input: NewOffering) -> ServiceResult<Offering> {
    let seat_count = input.seat_count.map_or(1, SeatCount::get);
    let mut tx = store.begin().await?;
    let edition = found(
        db::get_edition(&mut tx, &ctx.tenant_id, &input.edition_id).await?,
        "edition",
    )?;
    let plan = found(db::get_plan(&mut tx, &ctx.tenant_id, &input.plan_id).await?, "plan")?;
    if plan.product_id != edition.product_id {
        return Err(RuleViolation::new(
            "different_product",
            "the plan and the edition belong to different products",
        )
        .into());
    }
    let offering = Offering {
        id: ids::new_id("off"),
        product_id: edition.product_id,
        edition_id: edition.id,
        plan_id: plan.id,
        sku: input.sku,
        name: input.name,
        seat_count,
        overdraft: input.overdraft.unwrap_or(Overdraft::NONE),
        concurrency_mode: input.concurrency_mode.unwrap_or(ConcurrencyMode::NodeLocked),
        created_at: ctx.now,
        updated_at: ctx.now,
    };
    db::insert_offering(&mut tx, &ctx.tenant_id, &offering)
        .await
        .map_err(on_duplicate("sku_taken", "another offering already has this SKU"))?;
    record(
        &mut tx,
        ctx,
        "offering.created",
        "offering",
        &offering.id,
        snapshot(&offering),
    )
    .await?;
    tx.commit().await?;
    Ok(offering)
}

#[tracing::instrument(skip_all, fields(tenant_id = %ctx.tenant_id, offering_id = %id))]
pub async fn get_offering(store: &Store, ctx: &Ctx, id: &str) -> ServiceResult<Offering> {
    found(
        db::get_offering(&mut *store.read().await?, &ctx.tenant_id, id).await?,
        "offering",
    )
}

#[tracing::instrument(skip_all, fields(tenant_id = %ctx.tenant_id))]
pub async fn list_offerings(store: &Store, ctx: &Ctx, query: &CatalogueQuery) -> ServiceResult<Page<Offering>> {
    let paging = query.checked_paging()?;
    let items = db::list_offerings(&mut *store.read().await?, &ctx.tenant_id, &filter(query, &paging)).await?;
    Ok(paging.page(items, |o: &Offering| &o.id))
}

#[tracing::instrument(skip_all, fields(tenant_id = %ctx.tenant_id, offering_id = %id))]
pub async fn update_offering(store: &Store, ctx: &Ctx, id: &str, patch: OfferingPatch) -> ServiceResult<Offering> {
    let mut tx = store.begin().await?;
    let before = found(db::get_offering(&mut tx, &ctx.tenant_id, id).await?, "offering")?;
    let mut offering = before.clone();
    offering.sku = patch.sku.unwrap_or(offering.sku);
    offering.name = patch.name.unwrap_or(offering.name);
    offering.seat_count = patch.seat_count.map_or(offering.seat_count, SeatCount::get);
    offering.overdraft = patch.overdraft.unwrap_or(offering.overdraft);
    offering.concurrency_mode = patch.concurrency_mode.unwrap_or(offering.concurrency_mode);
    offering.updated_at = ctx.now;
    db::update_offering(&mut tx, &ctx.tenant_id, &offering)
        .await
        .map_err(on_duplicate("sku_taken", "another offering already has this SKU"))?;
    record(
        &mut tx,
        ctx,
        "offering.updated",
        "offering",
        id,
        changes(&before, &offering),
    )
    .await?;
    reapply_offerings(&mut tx, store.backend(), ctx, Scope::Offering(id)).await?;
    tx.commit().await?;
    Ok(offering)
}

// ---- reach ----

/// How many entitlements a change to the scope's product, edition, plan or offering reaches
/// (what the console previews before an edit is saved).
#[tracing::instrument(skip_all, fields(tenant_id = %ctx.tenant_id))]
pub async fn reach(store: &Store, ctx: &Ctx, scope: Scope<'_>) -> ServiceResult<i64> {
    Ok(crate::store::entitlements::count_in_scope(&mut *store.read().await?, &ctx.tenant_id, scope).await?)
}
