//! Products, features, attributes, editions, plans and offerings.

use sqlx::any::AnyRow;
use sqlx::AnyConnection;

use super::rows::{some, RowExt};
use super::{millis, StoreError, StoreResult};
use crate::domain::{
    attribute_value_to_json, Attribute, AttributeKind, AttributeValue, ConcurrencyMode, Edition, Feature,
    FeatureAmount, FeatureKind, FeatureValue, Key, LicenseType, Name, Offering, Overdraft, OverdraftKind, Periods,
    Plan, PlanKind, PlanStart, PlanTerms, Product, Sku,
};

/// Paging and the optional product filter shared by catalogue listings.
pub struct ListFilter<'a> {
    pub product_id: Option<&'a str>,
    pub after: &'a str,
    pub limit: i64,
}

// ---- products ----

const PRODUCT_COLUMNS: &str =
    "id, name, lease_period, offline_lease_period, grace_period, linger_period, account_based, created_at, updated_at";

fn product(row: &AnyRow) -> StoreResult<Product> {
    Ok(Product {
        id: row.text("id")?,
        name: row.parsed("name", |s| Name::parse(s))?,
        periods: Periods {
            lease_period: row.parse_column("lease_period")?,
            offline_lease_period: row.parse_column("offline_lease_period")?,
            grace_period: row.parse_column("grace_period")?,
            linger_period: row.parse_column("linger_period")?,
        },
        account_based: row.int("account_based")? != 0,
        created_at: row.time("created_at")?,
        updated_at: row.time("updated_at")?,
    })
}

pub async fn insert_product(conn: &mut AnyConnection, tenant_id: &str, p: &Product) -> StoreResult<()> {
    sqlx::query(
        "INSERT INTO products (id, tenant_id, name, lease_period, offline_lease_period, grace_period,
                               linger_period, created_at, updated_at, account_based)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
    )
    .bind(&p.id)
    .bind(tenant_id)
    .bind(p.name.as_str())
    .bind(p.periods.lease_period.to_string())
    .bind(p.periods.offline_lease_period.to_string())
    .bind(p.periods.grace_period.to_string())
    .bind(p.periods.linger_period.to_string())
    .bind(millis(p.created_at))
    .bind(millis(p.updated_at))
    .bind(p.account_based as i64)
    .execute(conn)
    .await
    .map_err(StoreError::from_write)?;
    Ok(())
}

pub async fn update_product(conn: &mut AnyConnection, tenant_id: &str, p: &Product) -> StoreResult<()> {
    sqlx::query(
        "UPDATE products SET name = $3, lease_period = $4, offline_lease_period = $5, grace_period = $6,
                             linger_period = $7, updated_at = $8, account_based = $9
         WHERE tenant_id = $1 AND id = $2",
    )
    .bind(tenant_id)
    .bind(&p.id)
    .bind(p.name.as_str())
    .bind(p.periods.lease_period.to_string())
    .bind(p.periods.offline_lease_period.to_string())
    .bind(p.periods.grace_period.to_string())
    .bind(p.periods.linger_period.to_string())
    .bind(millis(p.updated_at))
    .bind(p.account_based as i64)
    .execute(conn)
    .await
    .map_err(StoreError::from_write)?;
    Ok(())
}

pub async fn get_product(conn: &mut AnyConnection, tenant_id: &str, id: &str) -> StoreResult<Option<Product>> {
    let sql = format!("SELECT {PRODUCT_COLUMNS} FROM products WHERE tenant_id = $1 AND id = $2");
    let row = sqlx::query(&sql).bind(tenant_id).bind(id).fetch_optional(conn).await?;
    row.as_ref().map(product).transpose()
}

/// `filter.product_id` is ignored: products are not nested.
pub async fn list_products(
    conn: &mut AnyConnection,
    tenant_id: &str,
    filter: &ListFilter<'_>,
) -> StoreResult<Vec<Product>> {
    let sql = format!("SELECT {PRODUCT_COLUMNS} FROM products WHERE tenant_id = $1 AND id > $2 ORDER BY id LIMIT $3");
    let rows = sqlx::query(&sql)
        .bind(tenant_id)
        .bind(filter.after)
        .bind(filter.limit)
        .fetch_all(conn)
        .await?;
    rows.iter().map(product).collect()
}

// ---- features and attributes ----

const DEFINITION_COLUMNS: &str = "id, product_id, key, name, kind, created_at, updated_at";

fn feature(row: &AnyRow) -> StoreResult<Feature> {
    Ok(Feature {
        id: row.text("id")?,
        product_id: row.text("product_id")?,
        key: row.parsed("key", |s| Key::parse(s))?,
        name: row.parsed("name", |s| Name::parse(s))?,
        kind: row.parsed("kind", |s| some(FeatureKind::parse(s)))?,
        created_at: row.time("created_at")?,
        updated_at: row.time("updated_at")?,
    })
}

fn attribute(row: &AnyRow) -> StoreResult<Attribute> {
    Ok(Attribute {
        id: row.text("id")?,
        product_id: row.text("product_id")?,
        key: row.parsed("key", |s| Key::parse(s))?,
        name: row.parsed("name", |s| Name::parse(s))?,
        kind: row.parsed("kind", |s| some(AttributeKind::parse(s)))?,
        created_at: row.time("created_at")?,
        updated_at: row.time("updated_at")?,
    })
}

/// Features and attributes share a shape; `table` is one of two constants, never user input.
#[allow(clippy::too_many_arguments)]
async fn insert_definition(
    conn: &mut AnyConnection,
    table: &str,
    tenant_id: &str,
    id: &str,
    product_id: &str,
    key: &Key,
    name: &Name,
    kind: &str,
    at: i64,
) -> StoreResult<()> {
    let sql = format!(
        "INSERT INTO {table} (id, tenant_id, product_id, key, name, kind, created_at, updated_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $7)"
    );
    sqlx::query(&sql)
        .bind(id)
        .bind(tenant_id)
        .bind(product_id)
        .bind(key.as_str())
        .bind(name.as_str())
        .bind(kind)
        .bind(at)
        .execute(conn)
        .await
        .map_err(StoreError::from_write)?;
    Ok(())
}

async fn rename_definition(
    conn: &mut AnyConnection,
    table: &str,
    tenant_id: &str,
    id: &str,
    name: &Name,
    at: i64,
) -> StoreResult<()> {
    let sql = format!("UPDATE {table} SET name = $3, updated_at = $4 WHERE tenant_id = $1 AND id = $2");
    sqlx::query(&sql)
        .bind(tenant_id)
        .bind(id)
        .bind(name.as_str())
        .bind(at)
        .execute(conn)
        .await?;
    Ok(())
}

async fn definition_rows(
    conn: &mut AnyConnection,
    table: &str,
    tenant_id: &str,
    filter: &ListFilter<'_>,
) -> StoreResult<Vec<AnyRow>> {
    let sql = format!(
        "SELECT {DEFINITION_COLUMNS} FROM {table}
         WHERE tenant_id = $1 AND id > $2 AND ($3 = '' OR product_id = $3) ORDER BY id LIMIT $4"
    );
    Ok(sqlx::query(&sql)
        .bind(tenant_id)
        .bind(filter.after)
        .bind(filter.product_id.unwrap_or(""))
        .bind(filter.limit)
        .fetch_all(conn)
        .await?)
}

async fn definition_row(
    conn: &mut AnyConnection,
    table: &str,
    tenant_id: &str,
    id: &str,
) -> StoreResult<Option<AnyRow>> {
    let sql = format!("SELECT {DEFINITION_COLUMNS} FROM {table} WHERE tenant_id = $1 AND id = $2");
    Ok(sqlx::query(&sql).bind(tenant_id).bind(id).fetch_optional(conn).await?)
}

pub async fn insert_feature(conn: &mut AnyConnection, tenant_id: &str, f: &Feature) -> StoreResult<()> {
    let at = millis(f.created_at);
    insert_definition(
        conn,
        "features",
        tenant_id,
        &f.id,
        &f.product_id,
        &f.key,
        &f.name,
        f.kind.as_str(),
        at,
    )
    .await
}

pub async fn rename_feature(conn: &mut AnyConnection, tenant_id: &str, f: &Feature) -> StoreResult<()> {
    rename_definition(conn, "features", tenant_id, &f.id, &f.name, millis(f.updated_at)).await
}

pub async fn get_feature(conn: &mut AnyConnection, tenant_id: &str, id: &str) -> StoreResult<Option<Feature>> {
    definition_row(conn, "features", tenant_id, id)
        .await?
        .as_ref()
        .map(feature)
        .transpose()
}

pub async fn list_features(
    conn: &mut AnyConnection,
    tenant_id: &str,
    filter: &ListFilter<'_>,
) -> StoreResult<Vec<Feature>> {
    definition_rows(conn, "features", tenant_id, filter)
        .await?
        .iter()
        .map(feature)
        .collect()
}

pub async fn insert_attribute(conn: &mut AnyConnection, tenant_id: &str, a: &Attribute) -> StoreResult<()> {
    let at = millis(a.created_at);
    insert_definition(
        conn,
        "attributes",
        tenant_id,
        &a.id,
        &a.product_id,
        &a.key,
        &a.name,
        a.kind.as_str(),
        at,
    )
    .await
}

pub async fn rename_attribute(conn: &mut AnyConnection, tenant_id: &str, a: &Attribute) -> StoreResult<()> {
    rename_definition(conn, "attributes", tenant_id, &a.id, &a.name, millis(a.updated_at)).await
}

pub async fn get_attribute(conn: &mut AnyConnection, tenant_id: &str, id: &str) -> StoreResult<Option<Attribute>> {
    definition_row(conn, "attributes", tenant_id, id)
        .await?
        .as_ref()
        .map(attribute)
        .transpose()
}

pub async fn list_attributes(
    conn: &mut AnyConnection,
    tenant_id: &str,
    filter: &ListFilter<'_>,
) -> StoreResult<Vec<Attribute>> {
    definition_rows(conn, "attributes", tenant_id, filter)
        .await?
        .iter()
        .map(attribute)
        .collect()
}

/// All features of a product (a product has tens, not thousands).
pub async fn product_features(
    conn: &mut AnyConnection,
    tenant_id: &str,
    product_id: &str,
) -> StoreResult<Vec<Feature>> {
    let sql =
        format!("SELECT {DEFINITION_COLUMNS} FROM features WHERE tenant_id = $1 AND product_id = $2 ORDER BY key");
    let rows = sqlx::query(&sql)
        .bind(tenant_id)
        .bind(product_id)
        .fetch_all(conn)
        .await?;
    rows.iter().map(feature).collect()
}

pub async fn product_attributes(
    conn: &mut AnyConnection,
    tenant_id: &str,
    product_id: &str,
) -> StoreResult<Vec<Attribute>> {
    let sql =
        format!("SELECT {DEFINITION_COLUMNS} FROM attributes WHERE tenant_id = $1 AND product_id = $2 ORDER BY key");
    let rows = sqlx::query(&sql)
        .bind(tenant_id)
        .bind(product_id)
        .fetch_all(conn)
        .await?;
    rows.iter().map(attribute).collect()
}

// ---- editions ----

/// An edition's values resolved to feature and attribute ids, ready to store.
pub struct EditionValues {
    pub features: Vec<(String, FeatureValue)>,
    pub attributes: Vec<(String, String)>,
}

pub async fn insert_edition(
    conn: &mut AnyConnection,
    tenant_id: &str,
    e: &Edition,
    values: &EditionValues,
) -> StoreResult<()> {
    sqlx::query(
        "INSERT INTO editions (id, tenant_id, product_id, name, created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(&e.id)
    .bind(tenant_id)
    .bind(&e.product_id)
    .bind(e.name.as_str())
    .bind(millis(e.created_at))
    .bind(millis(e.updated_at))
    .execute(&mut *conn)
    .await?;
    insert_edition_values(conn, &e.id, values).await
}

pub async fn update_edition(
    conn: &mut AnyConnection,
    tenant_id: &str,
    e: &Edition,
    values: &EditionValues,
) -> StoreResult<()> {
    sqlx::query("UPDATE editions SET name = $3, updated_at = $4 WHERE tenant_id = $1 AND id = $2")
        .bind(tenant_id)
        .bind(&e.id)
        .bind(e.name.as_str())
        .bind(millis(e.updated_at))
        .execute(&mut *conn)
        .await?;
    sqlx::query("DELETE FROM edition_features WHERE edition_id = $1")
        .bind(&e.id)
        .execute(&mut *conn)
        .await?;
    sqlx::query("DELETE FROM edition_attributes WHERE edition_id = $1")
        .bind(&e.id)
        .execute(&mut *conn)
        .await?;
    insert_edition_values(conn, &e.id, values).await
}

async fn insert_edition_values(conn: &mut AnyConnection, edition_id: &str, values: &EditionValues) -> StoreResult<()> {
    for (feature_id, value) in &values.features {
        sqlx::query(
            "INSERT INTO edition_features (edition_id, feature_id, limit_value, overdraft) VALUES ($1, $2, $3, $4)",
        )
        .bind(edition_id)
        .bind(feature_id)
        .bind(value.limit.map(FeatureAmount::get))
        .bind(value.overdraft.get())
        .execute(&mut *conn)
        .await?;
    }
    for (attribute_id, value) in &values.attributes {
        sqlx::query("INSERT INTO edition_attributes (edition_id, attribute_id, value) VALUES ($1, $2, $3)")
            .bind(edition_id)
            .bind(attribute_id)
            .bind(value)
            .execute(&mut *conn)
            .await?;
    }
    Ok(())
}

fn feature_amount(value: i64) -> StoreResult<FeatureAmount> {
    FeatureAmount::new(value).map_err(|_| StoreError::Corrupt("edition feature limit".into()))
}

async fn edition_with_values(conn: &mut AnyConnection, row: &AnyRow) -> StoreResult<Edition> {
    let id = row.text("id")?;
    let feature_rows = sqlx::query(
        "SELECT f.key, ef.limit_value, ef.overdraft FROM edition_features ef
         JOIN features f ON f.id = ef.feature_id WHERE ef.edition_id = $1 ORDER BY f.key",
    )
    .bind(&id)
    .fetch_all(&mut *conn)
    .await?;
    let features = feature_rows
        .iter()
        .map(|r| {
            Ok(FeatureValue {
                key: r.parsed("key", |s| Key::parse(s))?,
                limit: r.opt_int("limit_value")?.map(feature_amount).transpose()?,
                overdraft: feature_amount(r.int("overdraft")?)?,
            })
        })
        .collect::<StoreResult<_>>()?;
    let attribute_rows = sqlx::query(
        "SELECT a.key, a.kind, ea.value FROM edition_attributes ea
         JOIN attributes a ON a.id = ea.attribute_id WHERE ea.edition_id = $1 ORDER BY a.key",
    )
    .bind(&id)
    .fetch_all(&mut *conn)
    .await?;
    let attributes = attribute_rows
        .iter()
        .map(|r| {
            let kind = r.parsed("kind", |s| some(AttributeKind::parse(s)))?;
            Ok(AttributeValue {
                key: r.parsed("key", |s| Key::parse(s))?,
                value: attribute_value_to_json(kind, &r.text("value")?),
            })
        })
        .collect::<StoreResult<_>>()?;
    Ok(Edition {
        id,
        product_id: row.text("product_id")?,
        name: row.parsed("name", |s| Name::parse(s))?,
        features,
        attributes,
        created_at: row.time("created_at")?,
        updated_at: row.time("updated_at")?,
    })
}

pub async fn get_edition(conn: &mut AnyConnection, tenant_id: &str, id: &str) -> StoreResult<Option<Edition>> {
    let row = sqlx::query(
        "SELECT id, product_id, name, created_at, updated_at FROM editions WHERE tenant_id = $1 AND id = $2",
    )
    .bind(tenant_id)
    .bind(id)
    .fetch_optional(&mut *conn)
    .await?;
    match row {
        Some(row) => Ok(Some(edition_with_values(conn, &row).await?)),
        None => Ok(None),
    }
}

pub async fn list_editions(
    conn: &mut AnyConnection,
    tenant_id: &str,
    filter: &ListFilter<'_>,
) -> StoreResult<Vec<Edition>> {
    let rows = sqlx::query(
        "SELECT id, product_id, name, created_at, updated_at FROM editions
         WHERE tenant_id = $1 AND id > $2 AND ($3 = '' OR product_id = $3) ORDER BY id LIMIT $4",
    )
    .bind(tenant_id)
    .bind(filter.after)
    .bind(filter.product_id.unwrap_or(""))
    .bind(filter.limit)
    .fetch_all(&mut *conn)
    .await?;
    let mut editions = Vec::with_capacity(rows.len());
    for row in &rows {
        editions.push(edition_with_values(conn, row).await?);
    }
    Ok(editions)
}

// ---- plans ----

const PLAN_COLUMNS: &str = "id, product_id, name, license_type, duration, start_mode, kind, created_at, updated_at";

fn plan(row: &AnyRow) -> StoreResult<Plan> {
    Ok(Plan {
        id: row.text("id")?,
        product_id: row.text("product_id")?,
        name: row.parsed("name", |s| Name::parse(s))?,
        terms: PlanTerms {
            license_type: row.parsed("license_type", |s| some(LicenseType::parse(s)))?,
            duration: row.parse_column("duration")?,
            start: row.parsed("start_mode", |s| some(PlanStart::parse(s)))?,
            kind: row.parsed("kind", |s| some(PlanKind::parse(s)))?,
        },
        created_at: row.time("created_at")?,
        updated_at: row.time("updated_at")?,
    })
}

pub async fn insert_plan(conn: &mut AnyConnection, tenant_id: &str, p: &Plan) -> StoreResult<()> {
    sqlx::query(
        "INSERT INTO plans (id, tenant_id, product_id, name, license_type, duration, start_mode, kind, created_at, updated_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
    )
    .bind(&p.id)
    .bind(tenant_id)
    .bind(&p.product_id)
    .bind(p.name.as_str())
    .bind(p.terms.license_type.as_str())
    .bind(p.terms.duration.to_string())
    .bind(p.terms.start.as_str())
    .bind(p.terms.kind.as_str())
    .bind(millis(p.created_at))
    .bind(millis(p.updated_at))
    .execute(conn)
    .await?;
    Ok(())
}

pub async fn update_plan(conn: &mut AnyConnection, tenant_id: &str, p: &Plan) -> StoreResult<()> {
    sqlx::query(
        "UPDATE plans SET name = $3, license_type = $4, duration = $5, start_mode = $6, kind = $7, updated_at = $8
         WHERE tenant_id = $1 AND id = $2",
    )
    .bind(tenant_id)
    .bind(&p.id)
    .bind(p.name.as_str())
    .bind(p.terms.license_type.as_str())
    .bind(p.terms.duration.to_string())
    .bind(p.terms.start.as_str())
    .bind(p.terms.kind.as_str())
    .bind(millis(p.updated_at))
    .execute(conn)
    .await?;
    Ok(())
}

pub async fn get_plan(conn: &mut AnyConnection, tenant_id: &str, id: &str) -> StoreResult<Option<Plan>> {
    let sql = format!("SELECT {PLAN_COLUMNS} FROM plans WHERE tenant_id = $1 AND id = $2");
    let row = sqlx::query(&sql).bind(tenant_id).bind(id).fetch_optional(conn).await?;
    row.as_ref().map(plan).transpose()
}

pub async fn list_plans(conn: &mut AnyConnection, tenant_id: &str, filter: &ListFilter<'_>) -> StoreResult<Vec<Plan>> {
    let sql = format!(
        "SELECT {PLAN_COLUMNS} FROM plans WHERE tenant_id = $1 AND id > $2 AND ($3 = '' OR product_id = $3)
         ORDER BY id LIMIT $4"
    );
    let rows = sqlx::query(&sql)
        .bind(tenant_id)
        .bind(filter.after)
        .bind(filter.product_id.unwrap_or(""))
        .bind(filter.limit)
        .fetch_all(conn)
        .await?;
    rows.iter().map(plan).collect()
}

// ---- offerings ----

const OFFERING_COLUMNS: &str = "id, product_id, edition_id, plan_id, sku, name, seat_count, overdraft_kind, \
                                overdraft_value, concurrency_mode, created_at, updated_at";

fn offering(row: &AnyRow) -> StoreResult<Offering> {
    Ok(Offering {
        id: row.text("id")?,
        product_id: row.text("product_id")?,
        edition_id: row.text("edition_id")?,
        plan_id: row.text("plan_id")?,
        sku: row.parsed("sku", |s| Sku::parse(s))?,
        name: row.parsed("name", |s| Name::parse(s))?,
        seat_count: row.int("seat_count")?,
        overdraft: Overdraft {
            kind: row.parsed("overdraft_kind", |s| some(OverdraftKind::parse(s)))?,
            value: u32::try_from(row.int("overdraft_value")?)
                .map_err(|_| StoreError::Corrupt("overdraft_value".into()))?,
        },
        concurrency_mode: row.parsed("concurrency_mode", |s| some(ConcurrencyMode::parse(s)))?,
        created_at: row.time("created_at")?,
        updated_at: row.time("updated_at")?,
    })
}

pub async fn insert_offering(conn: &mut AnyConnection, tenant_id: &str, o: &Offering) -> StoreResult<()> {
    sqlx::query(
        "INSERT INTO offerings (id, tenant_id, product_id, edition_id, plan_id, sku, name, seat_count, overdraft_kind,
                                overdraft_value, concurrency_mode, created_at, updated_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)",
    )
    .bind(&o.id)
    .bind(tenant_id)
    .bind(&o.product_id)
    .bind(&o.edition_id)
    .bind(&o.plan_id)
    .bind(o.sku.as_str())
    .bind(o.name.as_str())
    .bind(o.seat_count)
    .bind(o.overdraft.kind.as_str())
    .bind(o.overdraft.value as i64)
    .bind(o.concurrency_mode.as_str())
    .bind(millis(o.created_at))
    .bind(millis(o.updated_at))
    .execute(conn)
    .await
    .map_err(StoreError::from_write)?;
    Ok(())
}

pub async fn update_offering(conn: &mut AnyConnection, tenant_id: &str, o: &Offering) -> StoreResult<()> {
    sqlx::query(
        "UPDATE offerings SET edition_id = $3, plan_id = $4, sku = $5, name = $6, seat_count = $7, overdraft_kind = $8,
                              overdraft_value = $9, concurrency_mode = $10, updated_at = $11
         WHERE tenant_id = $1 AND id = $2",
    )
    .bind(tenant_id)
    .bind(&o.id)
    .bind(&o.edition_id)
    .bind(&o.plan_id)
    .bind(o.sku.as_str())
    .bind(o.name.as_str())
    .bind(o.seat_count)
    .bind(o.overdraft.kind.as_str())
    .bind(o.overdraft.value as i64)
    .bind(o.concurrency_mode.as_str())
    .bind(millis(o.updated_at))
    .execute(conn)
    .await
    .map_err(StoreError::from_write)?;
    Ok(())
}

pub async fn get_offering(conn: &mut AnyConnection, tenant_id: &str, id: &str) -> StoreResult<Option<Offering>> {
    let sql = format!("SELECT {OFFERING_COLUMNS} FROM offerings WHERE tenant_id = $1 AND id = $2");
    let row = sqlx::query(&sql).bind(tenant_id).bind(id).fetch_optional(conn).await?;
    row.as_ref().map(offering).transpose()
}

pub async fn find_offering_by_sku(
    conn: &mut AnyConnection,
    tenant_id: &str,
    sku: &Sku,
) -> StoreResult<Option<Offering>> {
    let sql = format!("SELECT {OFFERING_COLUMNS} FROM offerings WHERE tenant_id = $1 AND sku = $2");
    let row = sqlx::query(&sql)
        .bind(tenant_id)
        .bind(sku.as_str())
        .fetch_optional(conn)
        .await?;
    row.as_ref().map(offering).transpose()
}

pub async fn list_offerings(
    conn: &mut AnyConnection,
    tenant_id: &str,
    filter: &ListFilter<'_>,
) -> StoreResult<Vec<Offering>> {
    let sql = format!(
        "SELECT {OFFERING_COLUMNS} FROM offerings WHERE tenant_id = $1 AND id > $2 AND ($3 = '' OR product_id = $3)
         ORDER BY id LIMIT $4"
    );
    let rows = sqlx::query(&sql)
        .bind(tenant_id)
        .bind(filter.after)
        .bind(filter.product_id.unwrap_or(""))
        .bind(filter.limit)
        .fetch_all(conn)
        .await?;
    rows.iter().map(offering).collect()
}
