//! Storefront connections, mappings, deliveries, seen events and merged order states.

use chrono::{DateTime, Utc};
use serde::Serialize;
use sqlx::any::AnyRow;
use sqlx::AnyConnection;
use utoipa::ToSchema;

use super::rows::RowExt;
use super::{millis, Backend, StoreError, StoreResult};

#[derive(Debug, Clone)]
pub struct Connection {
    pub id: String,
    pub tenant_id: String,
    pub provider: String,
    pub name: String,
    pub secrets: Vec<String>,
    pub tolerance_seconds: Option<i64>,
    /// For completing payloads through the provider's API.
    pub api_key: Option<String>,
    pub api_base_url: Option<String>,
    /// The header a configurable scheme (Zuora) carries its signature in.
    pub signature_header: Option<String>,
    /// The zone of the provider's local dates; `None`: the provider's default.
    pub time_zone: Option<String>,
    /// A partial refund disables the order's entitlements like a full one.
    pub disable_on_any_refund: bool,
    /// A subscription the customer ended keeps the product's grace period (otherwise grace is
    /// for failed payments only).
    pub grace_after_cancel: bool,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

const CONNECTION_COLUMNS: &str =
    "id, tenant_id, provider, name, secrets, tolerance_seconds, api_key, api_base_url, signature_header, time_zone,
     disable_on_any_refund, grace_after_cancel, created_at, updated_at";

fn connection(row: &AnyRow) -> StoreResult<Connection> {
    Ok(Connection {
        id: row.text("id")?,
        tenant_id: row.text("tenant_id")?,
        provider: row.text("provider")?,
        name: row.text("name")?,
        secrets: row.parsed("secrets", |s| serde_json::from_str(s))?,
        tolerance_seconds: row.opt_int("tolerance_seconds")?,
        api_key: row.opt_text("api_key")?,
        api_base_url: row.opt_text("api_base_url")?,
        signature_header: row.opt_text("signature_header")?,
        time_zone: row.opt_text("time_zone")?,
        disable_on_any_refund: row.int("disable_on_any_refund")? != 0,
        grace_after_cancel: row.int("grace_after_cancel")? != 0,
        created_at: row.time("created_at")?,
        updated_at: row.time("updated_at")?,
    })
}

pub async fn insert_connection(conn: &mut AnyConnection, c: &Connection) -> StoreResult<()> {
    sqlx::query(
        "INSERT INTO storefront_connections (id, tenant_id, provider, name, secrets, tolerance_seconds, created_at, updated_at,
            api_key, api_base_url, signature_header, time_zone, disable_on_any_refund, grace_after_cancel)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)",
    )
    .bind(&c.id)
    .bind(&c.tenant_id)
    .bind(&c.provider)
    .bind(&c.name)
    .bind(serde_json::Value::from(c.secrets.clone()).to_string())
    .bind(c.tolerance_seconds)
    .bind(millis(c.created_at))
    .bind(millis(c.updated_at))
    .bind(c.api_key.as_deref())
    .bind(c.api_base_url.as_deref())
    .bind(c.signature_header.as_deref())
    .bind(c.time_zone.as_deref())
    .bind(i64::from(c.disable_on_any_refund))
    .bind(i64::from(c.grace_after_cancel))
    .execute(conn)
    .await?;
    Ok(())
}

pub async fn update_connection(conn: &mut AnyConnection, c: &Connection) -> StoreResult<()> {
    sqlx::query(
        "UPDATE storefront_connections SET name = $3, secrets = $4, tolerance_seconds = $5, updated_at = $6,
            api_key = $7, api_base_url = $8, signature_header = $9, time_zone = $10, disable_on_any_refund = $11,
            grace_after_cancel = $12
         WHERE tenant_id = $1 AND id = $2",
    )
    .bind(&c.tenant_id)
    .bind(&c.id)
    .bind(&c.name)
    .bind(serde_json::Value::from(c.secrets.clone()).to_string())
    .bind(c.tolerance_seconds)
    .bind(millis(c.updated_at))
    .bind(c.api_key.as_deref())
    .bind(c.api_base_url.as_deref())
    .bind(c.signature_header.as_deref())
    .bind(c.time_zone.as_deref())
    .bind(i64::from(c.disable_on_any_refund))
    .bind(i64::from(c.grace_after_cancel))
    .execute(conn)
    .await?;
    Ok(())
}

/// By id alone: the webhook URL carries the connection id, and the connection names its tenant.
pub async fn connection_by_id(conn: &mut AnyConnection, id: &str) -> StoreResult<Option<Connection>> {
    let sql = format!("SELECT {CONNECTION_COLUMNS} FROM storefront_connections WHERE id = $1");
    let row = sqlx::query(&sql).bind(id).fetch_optional(conn).await?;
    row.as_ref().map(connection).transpose()
}

pub async fn get_connection(conn: &mut AnyConnection, tenant_id: &str, id: &str) -> StoreResult<Option<Connection>> {
    Ok(connection_by_id(conn, id).await?.filter(|c| c.tenant_id == tenant_id))
}

pub async fn list_connections(
    conn: &mut AnyConnection,
    tenant_id: &str,
    after: &str,
    limit: i64,
) -> StoreResult<Vec<Connection>> {
    let sql = format!(
        "SELECT {CONNECTION_COLUMNS} FROM storefront_connections WHERE tenant_id = $1 AND id > $2 ORDER BY id LIMIT $3"
    );
    let rows = sqlx::query(&sql)
        .bind(tenant_id)
        .bind(after)
        .bind(limit)
        .fetch_all(conn)
        .await?;
    rows.iter().map(connection).collect()
}

// ---- mappings ----

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Mapping {
    pub id: String,
    pub connection_id: String,
    /// The provider's price / variant / product / plan id.
    pub provider_ref: String,
    /// The offering sold.
    pub sku: String,
    /// The offering while the subscription is trialing, if it differs.
    pub trial_sku: Option<String>,
    /// `seats`: the quantity bought multiplies the offering's seats; `single`: one unit whatever the quantity.
    pub quantity_mode: String,
    pub created_at: DateTime<Utc>,
}

const MAPPING_COLUMNS: &str = "id, connection_id, provider_ref, sku, trial_sku, quantity_mode, created_at";

fn mapping(row: &AnyRow) -> StoreResult<Mapping> {
    Ok(Mapping {
        id: row.text("id")?,
        connection_id: row.text("connection_id")?,
        provider_ref: row.text("provider_ref")?,
        sku: row.text("sku")?,
        trial_sku: row.opt_text("trial_sku")?,
        quantity_mode: row.text("quantity_mode")?,
        created_at: row.time("created_at")?,
    })
}

pub async fn insert_mapping(conn: &mut AnyConnection, tenant_id: &str, m: &Mapping) -> StoreResult<()> {
    sqlx::query(
        "INSERT INTO storefront_mappings (id, tenant_id, connection_id, provider_ref, sku, trial_sku, quantity_mode, created_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
    )
    .bind(&m.id)
    .bind(tenant_id)
    .bind(&m.connection_id)
    .bind(&m.provider_ref)
    .bind(&m.sku)
    .bind(m.trial_sku.as_deref())
    .bind(&m.quantity_mode)
    .bind(millis(m.created_at))
    .execute(conn)
    .await
    .map_err(StoreError::from_write)?;
    Ok(())
}

pub async fn get_mapping(conn: &mut AnyConnection, tenant_id: &str, id: &str) -> StoreResult<Option<Mapping>> {
    let sql = format!("SELECT {MAPPING_COLUMNS} FROM storefront_mappings WHERE tenant_id = $1 AND id = $2");
    let row = sqlx::query(&sql).bind(tenant_id).bind(id).fetch_optional(conn).await?;
    row.as_ref().map(mapping).transpose()
}

pub async fn delete_mapping(conn: &mut AnyConnection, tenant_id: &str, id: &str) -> StoreResult<()> {
    sqlx::query("DELETE FROM storefront_mappings WHERE tenant_id = $1 AND id = $2")
        .bind(tenant_id)
        .bind(id)
        .execute(conn)
        .await?;
    Ok(())
}

pub async fn find_mapping(
    conn: &mut AnyConnection,
    connection_id: &str,
    provider_ref: &str,
) -> StoreResult<Option<Mapping>> {
    let sql =
        format!("SELECT {MAPPING_COLUMNS} FROM storefront_mappings WHERE connection_id = $1 AND provider_ref = $2");
    let row = sqlx::query(&sql)
        .bind(connection_id)
        .bind(provider_ref)
        .fetch_optional(conn)
        .await?;
    row.as_ref().map(mapping).transpose()
}

pub async fn list_mappings(
    conn: &mut AnyConnection,
    tenant_id: &str,
    connection_id: Option<&str>,
    after: &str,
    limit: i64,
) -> StoreResult<Vec<Mapping>> {
    let sql = format!(
        "SELECT {MAPPING_COLUMNS} FROM storefront_mappings WHERE tenant_id = $1 AND id > $2 AND ($3 = '' OR connection_id = $3)
         ORDER BY id LIMIT $4"
    );
    let rows = sqlx::query(&sql)
        .bind(tenant_id)
        .bind(after)
        .bind(connection_id.unwrap_or(""))
        .bind(limit)
        .fetch_all(conn)
        .await?;
    rows.iter().map(mapping).collect()
}

// ---- deliveries ----

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Delivery {
    pub id: String,
    pub connection_id: String,
    pub event_id: Option<String>,
    pub event_type: Option<String>,
    pub order_ref: Option<String>,
    pub received_at: DateTime<Utc>,
    /// `applied`, `duplicate`, `ignored`, `unmapped`, `incomplete`, `unmatched`, `unreadable` or `rejected`.
    pub outcome: String,
    pub detail: Option<String>,
    /// The headers that matter (signature, ids).
    pub headers: serde_json::Value,
    /// The raw body as received; for a rejected delivery only its first bytes (see `body_truncated`).
    pub body: String,
    /// How many bytes the body had (unknown for deliveries stored before this was recorded).
    pub body_size: Option<i64>,
    /// The SHA-256 of the whole body, in hex.
    pub body_sha256: Option<String>,
    /// Whether `body` is an excerpt: rejected deliveries are not kept whole, so forgeries cannot
    /// fill the disk.
    pub body_truncated: bool,
    /// Ids of the objects the delivery created or changed.
    pub objects: Vec<String>,
    #[serde(skip)]
    pub tenant_id: String,
}

const DELIVERY_COLUMNS: &str =
    "id, tenant_id, connection_id, event_id, event_type, order_ref, received_at, outcome, detail,
    headers, body, objects, body_size, body_sha256, body_truncated";

fn delivery(row: &AnyRow) -> StoreResult<Delivery> {
    Ok(Delivery {
        id: row.text("id")?,
        tenant_id: row.text("tenant_id")?,
        connection_id: row.text("connection_id")?,
        event_id: row.opt_text("event_id")?,
        event_type: row.opt_text("event_type")?,
        order_ref: row.opt_text("order_ref")?,
        received_at: row.time("received_at")?,
        outcome: row.text("outcome")?,
        detail: row.opt_text("detail")?,
        headers: row.parsed("headers", |s| serde_json::from_str(s))?,
        body: row.text("body")?,
        body_size: row.opt_int("body_size")?,
        body_sha256: row.opt_text("body_sha256")?,
        body_truncated: row.int("body_truncated")? != 0,
        objects: row.parsed("objects", |s| serde_json::from_str(s))?,
    })
}

/// Marks the order's deliveries that could not be applied (`incomplete`, `unmapped`) as
/// `resolved` once a later delivery brought the order in line: support's list keeps only what
/// still needs someone.
pub async fn resolve_earlier(
    conn: &mut AnyConnection,
    tenant_id: &str,
    connection_id: &str,
    order_ref: &str,
    by: &str,
) -> StoreResult<u64> {
    let done = sqlx::query(
        "UPDATE commerce_deliveries SET outcome = 'resolved', detail = $4
         WHERE tenant_id = $1 AND order_ref = $3 AND connection_id = $2 AND outcome IN ('incomplete', 'unmapped')",
    )
    .bind(tenant_id)
    .bind(connection_id)
    .bind(order_ref)
    .bind(format!("the order was applied by a later delivery, {by}"))
    .execute(conn)
    .await?;
    Ok(done.rows_affected())
}

pub async fn insert_delivery(conn: &mut AnyConnection, d: &Delivery) -> StoreResult<()> {
    sqlx::query(
        "INSERT INTO commerce_deliveries (id, tenant_id, connection_id, event_id, event_type, order_ref, received_at, outcome,
            detail, headers, body, objects, body_size, body_sha256, body_truncated)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15)",
    )
    .bind(&d.id)
    .bind(&d.tenant_id)
    .bind(&d.connection_id)
    .bind(d.event_id.as_deref())
    .bind(d.event_type.as_deref())
    .bind(d.order_ref.as_deref())
    .bind(millis(d.received_at))
    .bind(&d.outcome)
    .bind(d.detail.as_deref())
    .bind(d.headers.to_string())
    .bind(&d.body)
    .bind(serde_json::Value::from(d.objects.clone()).to_string())
    .bind(d.body_size)
    .bind(d.body_sha256.as_deref())
    .bind(i64::from(d.body_truncated))
    .execute(conn)
    .await?;
    Ok(())
}

// ---- rejected deliveries: caps and purge ----

/// How many rejected deliveries of one connection may be stored.
#[derive(Debug, Clone, Copy)]
pub struct RejectionCaps {
    /// Per hour (the window starting at `window_start`).
    pub per_hour: i64,
    /// In all windows since `since` (the retention period).
    pub in_total: i64,
}

/// Takes a storage slot for a rejected delivery of `connection_id`: `true` if it may be stored,
/// `false` if it is over a cap (then it is only counted).
pub async fn take_rejection_slot(
    conn: &mut AnyConnection,
    connection_id: &str,
    window_start: i64,
    since: i64,
    caps: RejectionCaps,
) -> StoreResult<bool> {
    sqlx::query(
        "INSERT INTO commerce_rejections (connection_id, window_start, stored, dropped) VALUES ($1, $2, 0, 0)
         ON CONFLICT (connection_id, window_start) DO NOTHING",
    )
    .bind(connection_id)
    .bind(window_start)
    .execute(&mut *conn)
    .await?;
    // SUM over BIGINT is NUMERIC on PostgreSQL, which the Any driver cannot decode: cast it back.
    let kept = sqlx::query(
        "SELECT CAST(COALESCE(SUM(stored), 0) AS BIGINT) AS kept FROM commerce_rejections
         WHERE connection_id = $1 AND window_start >= $2",
    )
    .bind(connection_id)
    .bind(since)
    .fetch_one(&mut *conn)
    .await?
    .int("kept")?;
    if kept < caps.in_total {
        // The condition is checked on the row as locked, so concurrent deliveries cannot overshoot.
        let taken = sqlx::query(
            "UPDATE commerce_rejections SET stored = stored + 1
             WHERE connection_id = $1 AND window_start = $2 AND stored < $3",
        )
        .bind(connection_id)
        .bind(window_start)
        .bind(caps.per_hour)
        .execute(&mut *conn)
        .await?;
        if taken.rows_affected() == 1 {
            return Ok(true);
        }
    }
    sqlx::query("UPDATE commerce_rejections SET dropped = dropped + 1 WHERE connection_id = $1 AND window_start = $2")
        .bind(connection_id)
        .bind(window_start)
        .execute(conn)
        .await?;
    Ok(false)
}

/// Rejected deliveries of a connection that were counted but not stored (over a cap), in the
/// windows not purged yet.
pub async fn rejections_not_stored(conn: &mut AnyConnection, connection_id: &str) -> StoreResult<i64> {
    sqlx::query(
        "SELECT CAST(COALESCE(SUM(dropped), 0) AS BIGINT) AS dropped FROM commerce_rejections WHERE connection_id = $1",
    )
    .bind(connection_id)
    .fetch_one(conn)
    .await?
    .int("dropped")
}

/// Deletes up to `limit` rejected deliveries received before `before`, and the counting windows
/// that started before it. Answers how many deliveries went.
pub async fn purge_rejected(conn: &mut AnyConnection, before: i64, limit: i64) -> StoreResult<u64> {
    let done = sqlx::query(
        "DELETE FROM commerce_deliveries WHERE id IN (
            SELECT id FROM commerce_deliveries WHERE outcome = 'rejected' AND received_at < $1 LIMIT $2)",
    )
    .bind(before)
    .bind(limit)
    .execute(&mut *conn)
    .await?;
    sqlx::query("DELETE FROM commerce_rejections WHERE window_start < $1")
        .bind(before)
        .execute(conn)
        .await?;
    Ok(done.rows_affected())
}

pub async fn get_delivery(conn: &mut AnyConnection, tenant_id: &str, id: &str) -> StoreResult<Option<Delivery>> {
    let sql = format!("SELECT {DELIVERY_COLUMNS} FROM commerce_deliveries WHERE tenant_id = $1 AND id = $2");
    let row = sqlx::query(&sql).bind(tenant_id).bind(id).fetch_optional(conn).await?;
    row.as_ref().map(delivery).transpose()
}

pub async fn list_deliveries(
    conn: &mut AnyConnection,
    tenant_id: &str,
    connection_id: Option<&str>,
    outcome: Option<&str>,
    after: &str,
    limit: i64,
) -> StoreResult<Vec<Delivery>> {
    let sql = format!(
        "SELECT {DELIVERY_COLUMNS} FROM commerce_deliveries
         WHERE tenant_id = $1 AND id > $2 AND ($3 = '' OR connection_id = $3) AND ($4 = '' OR outcome = $4)
         ORDER BY id LIMIT $5"
    );
    let rows = sqlx::query(&sql)
        .bind(tenant_id)
        .bind(after)
        .bind(connection_id.unwrap_or(""))
        .bind(outcome.unwrap_or(""))
        .bind(limit)
        .fetch_all(conn)
        .await?;
    rows.iter().map(delivery).collect()
}

/// The newest deliveries of a tenant whose order reference is one of `order_refs` (the
/// `commerce_deliveries_order` index).
pub async fn deliveries_of_orders(
    conn: &mut AnyConnection,
    tenant_id: &str,
    order_refs: &[String],
    limit: i64,
) -> StoreResult<Vec<Delivery>> {
    // At most two references (see the service): a fixed statement keeps both dialects alike.
    let first = order_refs.first().map(String::as_str).unwrap_or("");
    let second = order_refs.get(1).map(String::as_str).unwrap_or(first);
    let sql = format!(
        "SELECT {DELIVERY_COLUMNS} FROM commerce_deliveries
         WHERE tenant_id = $1 AND order_ref IN ($2, $3) ORDER BY id DESC LIMIT $4"
    );
    let rows = sqlx::query(&sql)
        .bind(tenant_id)
        .bind(first)
        .bind(second)
        .bind(limit)
        .fetch_all(conn)
        .await?;
    rows.iter().map(delivery).collect()
}

// ---- seen events, orders and aliases ----

/// Marks an event seen; `false` if it had been (a duplicate). A conflict clause rather than a
/// caught violation, because a failed statement aborts a PostgreSQL transaction.
pub async fn mark_seen(conn: &mut AnyConnection, connection_id: &str, event_id: &str) -> StoreResult<bool> {
    let done = sqlx::query(
        "INSERT INTO commerce_events (connection_id, event_id) VALUES ($1, $2) ON CONFLICT (connection_id, event_id) DO NOTHING",
    )
    .bind(connection_id)
    .bind(event_id)
    .execute(conn)
    .await?;
    Ok(done.rows_affected() == 1)
}

pub async fn add_pending(
    conn: &mut AnyConnection,
    connection_id: &str,
    alias: &str,
    delivery_id: &str,
    event_id: &str,
) -> StoreResult<()> {
    sqlx::query(
        "INSERT INTO commerce_pending (connection_id, alias, delivery_id, event_id) VALUES ($1, $2, $3, $4)
         ON CONFLICT (connection_id, alias, delivery_id) DO NOTHING",
    )
    .bind(connection_id)
    .bind(alias)
    .bind(delivery_id)
    .bind(event_id)
    .execute(conn)
    .await?;
    Ok(())
}

/// Pending deliveries waiting for `alias` (delivery id, event id), removed from the waiting list.
pub async fn take_pending(
    conn: &mut AnyConnection,
    connection_id: &str,
    alias: &str,
) -> StoreResult<Vec<(String, String)>> {
    let rows =
        sqlx::query("SELECT delivery_id, event_id FROM commerce_pending WHERE connection_id = $1 AND alias = $2")
            .bind(connection_id)
            .bind(alias)
            .fetch_all(&mut *conn)
            .await?;
    sqlx::query("DELETE FROM commerce_pending WHERE connection_id = $1 AND alias = $2")
        .bind(connection_id)
        .bind(alias)
        .execute(conn)
        .await?;
    rows.iter()
        .map(|r| Ok((r.text("delivery_id")?, r.text("event_id")?)))
        .collect()
}

/// A delivery by id within a connection (for pending events).
pub async fn delivery_of_connection(
    conn: &mut AnyConnection,
    connection_id: &str,
    id: &str,
) -> StoreResult<Option<Delivery>> {
    let sql = format!("SELECT {DELIVERY_COLUMNS} FROM commerce_deliveries WHERE connection_id = $1 AND id = $2");
    let row = sqlx::query(&sql)
        .bind(connection_id)
        .bind(id)
        .fetch_optional(conn)
        .await?;
    row.as_ref().map(delivery).transpose()
}

/// Serialises deliveries of one connection on PostgreSQL (SQLite has one writer anyway), so that
/// an event waiting for an order id and the event that registers the id cannot pass each other.
pub async fn lock_connection(conn: &mut AnyConnection, backend: Backend, id: &str) -> StoreResult<()> {
    if backend == Backend::Postgres {
        sqlx::query("SELECT id FROM storefront_connections WHERE id = $1 FOR UPDATE")
            .bind(id)
            .fetch_optional(conn)
            .await?;
    }
    Ok(())
}

/// The order's merged state (JSON), created empty if new, and locked for this transaction.
pub async fn lock_order(
    conn: &mut AnyConnection,
    backend: Backend,
    tenant_id: &str,
    connection_id: &str,
    order_ref: &str,
    now: DateTime<Utc>,
) -> StoreResult<String> {
    sqlx::query(
        "INSERT INTO commerce_orders (connection_id, order_ref, tenant_id, state, updated_at) VALUES ($1, $2, $3, '{}', $4)
         ON CONFLICT (connection_id, order_ref) DO NOTHING",
    )
    .bind(connection_id)
    .bind(order_ref)
    .bind(tenant_id)
    .bind(millis(now))
    .execute(&mut *conn)
    .await?;
    let lock = if backend == Backend::Postgres {
        " FOR UPDATE"
    } else {
        ""
    };
    let sql = format!("SELECT state FROM commerce_orders WHERE connection_id = $1 AND order_ref = $2{lock}");
    let row = sqlx::query(&sql)
        .bind(connection_id)
        .bind(order_ref)
        .fetch_one(conn)
        .await?;
    row.text("state")
}

/// Stores the merged state, and the provider's customer id from it in its own column so search
/// can find the order by it.
pub async fn save_order(
    conn: &mut AnyConnection,
    connection_id: &str,
    order_ref: &str,
    state: &str,
    customer_ref: Option<&str>,
    now: DateTime<Utc>,
) -> StoreResult<()> {
    sqlx::query(
        "UPDATE commerce_orders SET state = $3, customer_ref = $4, updated_at = $5 WHERE connection_id = $1 AND order_ref = $2",
    )
        .bind(connection_id)
        .bind(order_ref)
        .bind(state)
        .bind(customer_ref)
        .bind(millis(now))
        .execute(conn)
        .await?;
    Ok(())
}

pub async fn add_alias(conn: &mut AnyConnection, connection_id: &str, alias: &str, order_ref: &str) -> StoreResult<()> {
    sqlx::query(
        "INSERT INTO commerce_order_aliases (connection_id, alias, order_ref) VALUES ($1, $2, $3)
         ON CONFLICT (connection_id, alias) DO NOTHING",
    )
    .bind(connection_id)
    .bind(alias)
    .bind(order_ref)
    .execute(conn)
    .await?;
    Ok(())
}

pub async fn order_of_alias(conn: &mut AnyConnection, connection_id: &str, alias: &str) -> StoreResult<Option<String>> {
    let row = sqlx::query("SELECT order_ref FROM commerce_order_aliases WHERE connection_id = $1 AND alias = $2")
        .bind(connection_id)
        .bind(alias)
        .fetch_optional(conn)
        .await?;
    row.map(|r| r.text("order_ref")).transpose()
}
