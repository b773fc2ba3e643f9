//! Entitlements with their feature and attribute grants.

use sqlx::any::AnyRow;
use sqlx::AnyConnection;
use std::collections::{BTreeMap, BTreeSet};

use super::rows::{some, RowExt};
use super::search::{Bind, Statement};
use super::{millis, opt_millis, Backend, StoreError, StoreResult};
use crate::domain::usage::day_of;
use crate::domain::{
    ActivationCode, AttributeGrant, AttributeKind, ConcurrencyMode, Entitlement, FeatureGrant, FeatureKind, Key,
    LicenseType, Overdraft, OverdraftKind, Periods, PlanKind, PlanStart, PlanTerms, Sku, Terms,
};

const COLUMNS: &str = "id, customer_id, product_id, offering_id, sku, order_ref, quantity, extra_seats, activation_code, \
    seat_count, overdraft_kind, overdraft_value, concurrency_mode, lease_period, offline_lease_period, grace_period, \
    linger_period, license_type, duration, start_mode, plan_kind, starts_at, base_expires_at, expires_at, disabled_at, overrides, \
    seats_used, created_at, updated_at";

/// [`COLUMNS`] qualified by the alias `e`, for joins.
const COLUMNS_OF_E: &str = "e.id, e.customer_id, e.product_id, e.offering_id, e.sku, e.order_ref, e.quantity, \
    e.extra_seats, e.activation_code, e.seat_count, e.overdraft_kind, e.overdraft_value, e.concurrency_mode, \
    e.lease_period, e.offline_lease_period, e.grace_period, e.linger_period, e.license_type, e.duration, \
    e.start_mode, e.plan_kind, e.starts_at, e.base_expires_at, e.expires_at, e.disabled_at, e.overrides, \
    e.seats_used, e.created_at, e.updated_at";

pub async fn insert(conn: &mut AnyConnection, tenant_id: &str, e: &Entitlement) -> StoreResult<()> {
    sqlx::query(
        "INSERT INTO entitlements (id, tenant_id, customer_id, product_id, offering_id, sku, order_ref, quantity,
            extra_seats, activation_code, seat_count, overdraft_kind, overdraft_value, concurrency_mode, lease_period,
            offline_lease_period, grace_period, linger_period, license_type, duration, start_mode, plan_kind,
            starts_at, base_expires_at, expires_at, disabled_at, overrides, seats_used, created_at, updated_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20, $21, $22,
            $23, $24, $25, $26, $27, $28, $29, $30)",
    )
    .bind(&e.id)
    .bind(tenant_id)
    .bind(&e.customer_id)
    .bind(&e.product_id)
    .bind(&e.offering_id)
    .bind(e.sku.as_str())
    .bind(e.order_ref.as_deref())
    .bind(e.quantity)
    .bind(e.extra_seats)
    .bind(e.activation_code.as_str())
    .bind(e.terms.seat_count)
    .bind(e.terms.overdraft.kind.as_str())
    .bind(e.terms.overdraft.value as i64)
    .bind(e.terms.concurrency_mode.as_str())
    .bind(e.terms.periods.lease_period.to_string())
    .bind(e.terms.periods.offline_lease_period.to_string())
    .bind(e.terms.periods.grace_period.to_string())
    .bind(e.terms.periods.linger_period.to_string())
    .bind(e.plan.license_type.as_str())
    .bind(e.plan.duration.to_string())
    .bind(e.plan.start.as_str())
    .bind(e.plan.kind.as_str())
    .bind(opt_millis(e.starts_at))
    .bind(opt_millis(e.base_expires_at))
    .bind(opt_millis(e.expires_at))
    .bind(opt_millis(e.disabled_at))
    .bind(overrides_text(&e.overrides))
    .bind(e.seats_used)
    .bind(millis(e.created_at))
    .bind(millis(e.updated_at))
    .execute(&mut *conn)
    .await
    .map_err(StoreError::from_write)?;
    insert_grants(conn, e).await?;
    note_terms(conn, e, e.created_at).await
}

/// Every write of an entitlement passes its seat terms to the usage rollup, so the chart's
/// licensed line follows seat changes from any path (edits, offering changes, storefronts).
async fn note_terms(conn: &mut AnyConnection, e: &Entitlement, at: chrono::DateTime<chrono::Utc>) -> StoreResult<()> {
    let licensed = e.terms.seat_count;
    let overdraft = e.terms.overdraft.allowance(licensed);
    super::usage::terms_changed(conn, &e.id, day_of(at), licensed, overdraft).await
}

/// Writes every value of `e` back, except the counters the licensing API owns (`seats_used`,
/// the features' `used`).
pub async fn update(conn: &mut AnyConnection, tenant_id: &str, e: &Entitlement) -> StoreResult<()> {
    sqlx::query(
        "UPDATE entitlements SET offering_id = $3, sku = $4, order_ref = $5, quantity = $6, extra_seats = $7,
            seat_count = $8, overdraft_kind = $9, overdraft_value = $10, concurrency_mode = $11, lease_period = $12,
            offline_lease_period = $13, grace_period = $14, linger_period = $15, license_type = $16, duration = $17,
            start_mode = $18, plan_kind = $19, starts_at = $20, base_expires_at = $21, expires_at = $22,
            disabled_at = $23, overrides = $24, updated_at = $25
         WHERE tenant_id = $1 AND id = $2",
    )
    .bind(tenant_id)
    .bind(&e.id)
    .bind(&e.offering_id)
    .bind(e.sku.as_str())
    .bind(e.order_ref.as_deref())
    .bind(e.quantity)
    .bind(e.extra_seats)
    .bind(e.terms.seat_count)
    .bind(e.terms.overdraft.kind.as_str())
    .bind(e.terms.overdraft.value as i64)
    .bind(e.terms.concurrency_mode.as_str())
    .bind(e.terms.periods.lease_period.to_string())
    .bind(e.terms.periods.offline_lease_period.to_string())
    .bind(e.terms.periods.grace_period.to_string())
    .bind(e.terms.periods.linger_period.to_string())
    .bind(e.plan.license_type.as_str())
    .bind(e.plan.duration.to_string())
    .bind(e.plan.start.as_str())
    .bind(e.plan.kind.as_str())
    .bind(opt_millis(e.starts_at))
    .bind(opt_millis(e.base_expires_at))
    .bind(opt_millis(e.expires_at))
    .bind(opt_millis(e.disabled_at))
    .bind(overrides_text(&e.overrides))
    .bind(millis(e.updated_at))
    .execute(&mut *conn)
    .await?;
    sync_grants(conn, e).await?;
    // Callers set `updated_at` to the time of the change.
    note_terms(conn, e, e.updated_at).await
}

/// Brings the grant rows in line with `e.terms` without touching the `used` counters, which
/// belong to the licensing API (concurrent checkouts and usage must never be overwritten).
async fn sync_grants(conn: &mut AnyConnection, e: &Entitlement) -> StoreResult<()> {
    let existing = sqlx::query("SELECT feature_id FROM entitlement_features WHERE entitlement_id = $1")
        .bind(&e.id)
        .fetch_all(&mut *conn)
        .await?;
    for row in &existing {
        let feature_id = row.text("feature_id")?;
        if !e.terms.features.values().any(|g| g.feature_id == feature_id) {
            sqlx::query("DELETE FROM entitlement_features WHERE entitlement_id = $1 AND feature_id = $2")
                .bind(&e.id)
                .bind(&feature_id)
                .execute(&mut *conn)
                .await?;
        }
    }
    for grant in e.terms.features.values() {
        sqlx::query(
            "INSERT INTO entitlement_features (entitlement_id, feature_id, enabled, limit_value, overdraft, used)
             VALUES ($1, $2, $3, $4, $5, 0)
             ON CONFLICT (entitlement_id, feature_id) DO UPDATE
             SET enabled = excluded.enabled, limit_value = excluded.limit_value, overdraft = excluded.overdraft",
        )
        .bind(&e.id)
        .bind(&grant.feature_id)
        .bind(grant.enabled as i64)
        .bind(grant.limit)
        .bind(grant.overdraft)
        .execute(&mut *conn)
        .await?;
    }
    sqlx::query("DELETE FROM entitlement_attributes WHERE entitlement_id = $1")
        .bind(&e.id)
        .execute(&mut *conn)
        .await?;
    for grant in e.terms.attributes.values() {
        sqlx::query("INSERT INTO entitlement_attributes (entitlement_id, attribute_id, value) VALUES ($1, $2, $3)")
            .bind(&e.id)
            .bind(&grant.attribute_id)
            .bind(&grant.value)
            .execute(&mut *conn)
            .await?;
    }
    Ok(())
}

async fn insert_grants(conn: &mut AnyConnection, e: &Entitlement) -> StoreResult<()> {
    for grant in e.terms.features.values() {
        sqlx::query(
            "INSERT INTO entitlement_features (entitlement_id, feature_id, enabled, limit_value, overdraft, used)
             VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(&e.id)
        .bind(&grant.feature_id)
        .bind(grant.enabled as i64)
        .bind(grant.limit)
        .bind(grant.overdraft)
        .bind(grant.used)
        .execute(&mut *conn)
        .await?;
    }
    for grant in e.terms.attributes.values() {
        sqlx::query("INSERT INTO entitlement_attributes (entitlement_id, attribute_id, value) VALUES ($1, $2, $3)")
            .bind(&e.id)
            .bind(&grant.attribute_id)
            .bind(&grant.value)
            .execute(&mut *conn)
            .await?;
    }
    Ok(())
}

/// Takes the entitlement's row lock for the rest of the transaction, so a read-modify-write of
/// the entitlement cannot interleave with another. SQLite needs none: it has a single writer.
pub async fn lock(conn: &mut AnyConnection, backend: Backend, tenant_id: &str, id: &str) -> StoreResult<()> {
    if backend == Backend::Postgres {
        sqlx::query("SELECT id FROM entitlements WHERE tenant_id = $1 AND id = $2 FOR UPDATE")
            .bind(tenant_id)
            .bind(id)
            .fetch_optional(conn)
            .await?;
    }
    Ok(())
}

/// Which entitlements a catalogue change reaches.
#[derive(Debug, Clone, Copy)]
pub enum Scope<'a> {
    Product(&'a str),
    Edition(&'a str),
    Plan(&'a str),
    Offering(&'a str),
}

/// The condition on `$2` (with the tenant as `$1`) selecting a scope's entitlements.
fn scope_condition(scope: Scope<'_>) -> (&'static str, &str) {
    match scope {
        Scope::Product(id) => ("product_id = $2", id),
        Scope::Offering(id) => ("offering_id = $2", id),
        Scope::Edition(id) => (
            "offering_id IN (SELECT id FROM offerings WHERE tenant_id = $1 AND edition_id = $2)",
            id,
        ),
        Scope::Plan(id) => (
            "offering_id IN (SELECT id FROM offerings WHERE tenant_id = $1 AND plan_id = $2)",
            id,
        ),
    }
}

pub async fn ids_in_scope(conn: &mut AnyConnection, tenant_id: &str, scope: Scope<'_>) -> StoreResult<Vec<String>> {
    let (condition, id) = scope_condition(scope);
    let sql = format!("SELECT id FROM entitlements WHERE tenant_id = $1 AND {condition} ORDER BY id");
    let rows = sqlx::query(&sql).bind(tenant_id).bind(id).fetch_all(conn).await?;
    rows.iter().map(|row| row.text("id")).collect()
}

/// How many entitlements a catalogue change would reach (the console's preview before an edit).
pub async fn count_in_scope(conn: &mut AnyConnection, tenant_id: &str, scope: Scope<'_>) -> StoreResult<i64> {
    let (condition, id) = scope_condition(scope);
    let sql = format!("SELECT COUNT(*) AS n FROM entitlements WHERE tenant_id = $1 AND {condition}");
    let row = sqlx::query(&sql).bind(tenant_id).bind(id).fetch_one(conn).await?;
    row.int("n")
}

/// The newest entitlement of the tenant matching `condition` on `$2` (`condition` is a constant of
/// this module, never input).
async fn one_where(
    conn: &mut AnyConnection,
    tenant_id: &str,
    condition: &str,
    value: &str,
) -> StoreResult<Option<Entitlement>> {
    let sql =
        format!("SELECT {COLUMNS} FROM entitlements WHERE tenant_id = $1 AND {condition} ORDER BY id DESC LIMIT 1");
    let row = sqlx::query(&sql)
        .bind(tenant_id)
        .bind(value)
        .fetch_optional(&mut *conn)
        .await?;
    match row {
        Some(row) => Ok(Some(with_grants(conn, &row).await?)),
        None => Ok(None),
    }
}

/// Rows of entitlements with their grants.
async fn all_with_grants(conn: &mut AnyConnection, rows: &[AnyRow]) -> StoreResult<Vec<Entitlement>> {
    let mut entitlements = Vec::with_capacity(rows.len());
    for row in rows {
        entitlements.push(with_grants(conn, row).await?);
    }
    Ok(entitlements)
}

pub async fn get(conn: &mut AnyConnection, tenant_id: &str, id: &str) -> StoreResult<Option<Entitlement>> {
    one_where(conn, tenant_id, "id = $2", id).await
}

/// Everything a licensing call needs in three queries: the activation behind a secret hash, its
/// tenant, its entitlement with grants, and the pool units it holds.
pub async fn for_activation_secret(
    conn: &mut AnyConnection,
    secret_hash: &str,
) -> StoreResult<
    Option<(
        String,
        crate::domain::licensing::Activation,
        Entitlement,
        Vec<(String, i64)>,
    )>,
> {
    let sql = format!(
        "SELECT a.tenant_id AS a_tenant_id, {}, {COLUMNS_OF_E}
         FROM activations a JOIN entitlements e ON e.id = a.entitlement_id WHERE a.secret_hash = $1",
        super::licensing::ACTIVATION_COLUMNS_AS_A
    );
    let Some(row) = sqlx::query(&sql).bind(secret_hash).fetch_optional(&mut *conn).await? else {
        return Ok(None);
    };
    let tenant_id = row.text("a_tenant_id")?;
    let activation = super::licensing::activation_with_prefix(&row, "a_")?;
    let (entitlement, checkouts) = with_grants_and_checkouts(conn, &row, &activation.id).await?;
    Ok(Some((tenant_id, activation, entitlement, checkouts)))
}

/// The entitlement a storefront order line holds (the newest, if several).
pub async fn of_order(conn: &mut AnyConnection, tenant_id: &str, order_ref: &str) -> StoreResult<Option<Entitlement>> {
    one_where(conn, tenant_id, "order_ref = $2", order_ref).await
}

/// The entitlement an activation code opens.
pub async fn find_by_code(conn: &mut AnyConnection, tenant_id: &str, code: &str) -> StoreResult<Option<Entitlement>> {
    one_where(conn, tenant_id, "activation_code = $2", code).await
}

/// A customer's entitlements to one product (account-based licensing picks among them).
pub async fn of_customer_for_product(
    conn: &mut AnyConnection,
    tenant_id: &str,
    customer_id: &str,
    product_id: &str,
) -> StoreResult<Vec<Entitlement>> {
    let sql = format!(
        "SELECT {COLUMNS} FROM entitlements WHERE tenant_id = $1 AND customer_id = $2 AND product_id = $3 ORDER BY id"
    );
    let rows = sqlx::query(&sql)
        .bind(tenant_id)
        .bind(customer_id)
        .bind(product_id)
        .fetch_all(&mut *conn)
        .await?;
    all_with_grants(conn, &rows).await
}

pub struct EntitlementFilter<'a> {
    pub customer_id: Option<&'a str>,
    pub sku: Option<&'a str>,
    pub order_ref: Option<&'a str>,
    pub after: &'a str,
    pub limit: i64,
}

pub async fn list(
    conn: &mut AnyConnection,
    tenant_id: &str,
    filter: &EntitlementFilter<'_>,
) -> StoreResult<Vec<Entitlement>> {
    let rows = list_statement(tenant_id, filter).query().fetch_all(&mut *conn).await?;
    all_with_grants(conn, &rows).await
}

/// Only the filters given become conditions: `($n = '' OR order_ref = $n)` would hide the
/// indexes from the planner, which then walks every entitlement of the tenant (issue 18).
pub fn list_statement(tenant_id: &str, filter: &EntitlementFilter<'_>) -> Statement {
    let mut binds = vec![Bind::Text(tenant_id.to_owned()), Bind::Text(filter.after.to_owned())];
    let mut sql = format!("SELECT {COLUMNS} FROM entitlements WHERE tenant_id = $1 AND id > $2");
    for (column, value) in [
        ("customer_id", filter.customer_id),
        ("sku", filter.sku),
        ("order_ref", filter.order_ref),
    ] {
        if let Some(value) = value {
            binds.push(Bind::Text(value.to_owned()));
            sql.push_str(&format!(" AND {column} = ${}", binds.len()));
        }
    }
    binds.push(Bind::Int(filter.limit));
    sql.push_str(&format!(" ORDER BY id LIMIT ${}", binds.len()));
    Statement { sql, binds }
}

fn overrides_text(overrides: &BTreeSet<String>) -> String {
    serde_json::Value::from(overrides.iter().cloned().collect::<Vec<_>>()).to_string()
}

async fn with_grants(conn: &mut AnyConnection, row: &AnyRow) -> StoreResult<Entitlement> {
    Ok(with_grants_and_checkouts(conn, row, "").await?.0)
}

/// The entitlement of `row` with its grants, and the units `activation_id` holds of each pool
/// (fetched in the same query, for the licensing hot path).
async fn with_grants_and_checkouts(
    conn: &mut AnyConnection,
    row: &AnyRow,
    activation_id: &str,
) -> StoreResult<(Entitlement, Vec<(String, i64)>)> {
    let id = row.text("id")?;
    let feature_rows = sqlx::query(
        "SELECT f.key, f.kind, ef.feature_id, ef.enabled, ef.limit_value, ef.overdraft, ef.used,
                COALESCE(fc.units, 0) AS checked_out
         FROM entitlement_features ef JOIN features f ON f.id = ef.feature_id
         LEFT JOIN feature_checkouts fc ON fc.feature_id = ef.feature_id AND fc.activation_id = $2
         WHERE ef.entitlement_id = $1",
    )
    .bind(&id)
    .bind(activation_id)
    .fetch_all(&mut *conn)
    .await?;
    let mut features = BTreeMap::new();
    let mut checkouts = Vec::new();
    for r in &feature_rows {
        let units = r.int("checked_out")?;
        if units > 0 {
            checkouts.push((r.text("feature_id")?, units));
        }
        features.insert(
            r.parsed("key", |s| Key::parse(s))?,
            FeatureGrant {
                feature_id: r.text("feature_id")?,
                kind: r.parsed("kind", |s| some(FeatureKind::parse(s)))?,
                enabled: r.int("enabled")? != 0,
                limit: r.opt_int("limit_value")?,
                overdraft: r.int("overdraft")?,
                used: r.int("used")?,
            },
        );
    }
    let attribute_rows = sqlx::query(
        "SELECT a.key, a.kind, ea.attribute_id, ea.value
         FROM entitlement_attributes ea JOIN attributes a ON a.id = ea.attribute_id WHERE ea.entitlement_id = $1",
    )
    .bind(&id)
    .fetch_all(&mut *conn)
    .await?;
    let mut attributes = BTreeMap::new();
    for r in &attribute_rows {
        attributes.insert(
            r.parsed("key", |s| Key::parse(s))?,
            AttributeGrant {
                attribute_id: r.text("attribute_id")?,
                kind: r.parsed("kind", |s| some(AttributeKind::parse(s)))?,
                value: r.text("value")?,
            },
        );
    }
    let overrides: Vec<String> = row.parsed("overrides", |s| serde_json::from_str(s))?;
    let entitlement = Entitlement {
        id,
        customer_id: row.text("customer_id")?,
        product_id: row.text("product_id")?,
        offering_id: row.text("offering_id")?,
        sku: row.parsed("sku", |s| Sku::parse(s))?,
        order_ref: row.opt_text("order_ref")?,
        quantity: row.int("quantity")?,
        extra_seats: row.int("extra_seats")?,
        activation_code: row.parsed("activation_code", ActivationCode::parse)?,
        terms: Terms {
            seat_count: row.int("seat_count")?,
            overdraft: overdraft_of(row)?,
            concurrency_mode: row.parsed("concurrency_mode", |s| some(ConcurrencyMode::parse(s)))?,
            periods: Periods {
                lease_period: row.parse_column("lease_period")?,
                offline_lease_period: row.parse_column("offline_lease_period")?,
                grace_period: row.parse_column("grace_period")?,
                linger_period: row.parse_column("linger_period")?,
            },
            features,
            attributes,
        },
        plan: PlanTerms {
            license_type: row.parsed("license_type", |s| some(LicenseType::parse(s)))?,
            duration: row.parse_column("duration")?,
            start: row.parsed("start_mode", |s| some(PlanStart::parse(s)))?,
            kind: row.parsed("plan_kind", |s| some(PlanKind::parse(s)))?,
        },
        starts_at: row.opt_time("starts_at")?,
        base_expires_at: row.opt_time("base_expires_at")?,
        expires_at: row.opt_time("expires_at")?,
        disabled_at: row.opt_time("disabled_at")?,
        overrides: overrides.into_iter().collect(),
        seats_used: row.int("seats_used")?,
        created_at: row.time("created_at")?,
        updated_at: row.time("updated_at")?,
    };
    Ok((entitlement, checkouts))
}

/// The overdraft terms of an entitlement row (`overdraft_kind`, `overdraft_value`).
pub(crate) fn overdraft_of(row: &AnyRow) -> StoreResult<Overdraft> {
    Ok(Overdraft {
        kind: row.parsed("overdraft_kind", |s| some(OverdraftKind::parse(s)))?,
        value: u32::try_from(row.int("overdraft_value")?).map_err(|_| StoreError::Corrupt("overdraft_value".into()))?,
    })
}

/// Usage counters start again from zero (on renewal).
pub async fn reset_usage(conn: &mut AnyConnection, entitlement_id: &str) -> StoreResult<()> {
    sqlx::query(
        "UPDATE entitlement_features SET used = 0 WHERE entitlement_id = $1
           AND feature_id IN (SELECT id FROM features WHERE kind = 'usage_count')",
    )
    .bind(entitlement_id)
    .execute(conn)
    .await?;
    Ok(())
}
