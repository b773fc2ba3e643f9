//! The admin console's search: small, index-backed lookups of customers, end users,
//! entitlements and seats. Each lookup is a [`Lookup`] (its SQL and values) built by a function
//! here and run by [`fetch`], so a test can ask the database for the plan of exactly the
//! statements search runs (`EXPLAIN`) and prove they use indexes.

use chrono::{DateTime, Utc};
use serde::Serialize;
use sqlx::any::AnyRow;
use sqlx::AnyConnection;
use std::marker::PhantomData;
use utoipa::ToSchema;

use super::rows::RowExt;
use super::{Backend, StoreResult};
use crate::domain::interval::Interval;

/// A value bound to a `$n` placeholder.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Bind {
    Text(String),
    Int(i64),
}

/// One statement with its values, ready to run or to explain.
#[derive(Debug, Clone)]
pub struct Statement {
    pub sql: String,
    pub binds: Vec<Bind>,
}

impl Statement {
    pub fn query(&self) -> sqlx::query::Query<'_, sqlx::Any, sqlx::any::AnyArguments<'_>> {
        let mut query = sqlx::query(&self.sql);
        for bind in &self.binds {
            query = match bind {
                Bind::Text(text) => query.bind(text.as_str()),
                Bind::Int(value) => query.bind(*value),
            };
        }
        query
    }
}

/// A statement whose rows are `T`s.
#[derive(Debug, Clone)]
pub struct Lookup<T> {
    pub statement: Statement,
    hit: PhantomData<fn() -> T>,
}

impl<T> Lookup<T> {
    fn new(sql: String, binds: Vec<Bind>) -> Self {
        Lookup {
            statement: Statement { sql, binds },
            hit: PhantomData,
        }
    }
}

/// A row type a [`Lookup`] answers with.
pub trait Hit: Sized {
    fn from_row(row: &AnyRow) -> StoreResult<Self>;
}

pub async fn fetch<T: Hit>(conn: &mut AnyConnection, lookup: &Lookup<T>) -> StoreResult<Vec<T>> {
    let rows = lookup.statement.query().fetch_all(conn).await?;
    rows.iter().map(T::from_row).collect()
}

/// Sorts after every character, so `prefix || MAX` bounds the strings that start with `prefix`.
const MAX_CHAR: &str = "\u{10FFFF}";

/// `lower(column) starts with lower($first)`, as a range an index on `lower(column)` serves
/// (`LIKE` would not use it on PostgreSQL under a linguistic collation, nor on SQLite, whose `LIKE`
/// is case-insensitive already). Byte order on PostgreSQL to match the index (see migration 13).
/// `column` is a constant of this module's callers, never input.
pub(crate) fn prefix_condition(backend: Backend, column: &str, first: usize) -> String {
    let collate = match backend {
        Backend::Sqlite => "",
        Backend::Postgres => " COLLATE \"C\"",
    };
    let second = first + 1;
    format!("lower({column}){collate} >= lower(${first}) AND lower({column}){collate} < lower(${first}) || ${second}")
}

/// The values for [`prefix_condition`].
pub(crate) fn prefix_binds(prefix: &str) -> [Bind; 2] {
    [Bind::Text(prefix.to_owned()), Bind::Text(MAX_CHAR.to_owned())]
}

/// The `ORDER BY` expression matching [`prefix_condition`]'s index.
fn prefix_order(backend: Backend, column: &str) -> String {
    match backend {
        Backend::Sqlite => format!("lower({column}), id"),
        Backend::Postgres => format!("lower({column}) COLLATE \"C\", id"),
    }
}

fn text(value: &str) -> Bind {
    Bind::Text(value.to_owned())
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct CustomerHit {
    pub id: String,
    pub name: String,
    pub email: Option<String>,
}

impl Hit for CustomerHit {
    fn from_row(row: &AnyRow) -> StoreResult<Self> {
        Ok(CustomerHit {
            id: row.text("id")?,
            name: row.text("name")?,
            email: row.opt_text("email")?,
        })
    }
}

const CUSTOMER_HIT: &str = "SELECT id, name, email FROM customers";

pub fn customer_by_id(tenant_id: &str, id: &str) -> Lookup<CustomerHit> {
    Lookup::new(
        format!("{CUSTOMER_HIT} WHERE tenant_id = $1 AND id = $2"),
        vec![text(tenant_id), text(id)],
    )
}

/// `email` already normalised (lower case), as stored.
pub fn customers_by_email(tenant_id: &str, email: &str, limit: i64) -> Lookup<CustomerHit> {
    Lookup::new(
        format!("{CUSTOMER_HIT} WHERE tenant_id = $1 AND email = $2 ORDER BY id LIMIT $3"),
        vec![text(tenant_id), text(email), Bind::Int(limit)],
    )
}

pub fn customer_by_external_ref(tenant_id: &str, reference: &str) -> Lookup<CustomerHit> {
    Lookup::new(
        format!("{CUSTOMER_HIT} WHERE tenant_id = $1 AND external_ref = $2"),
        vec![text(tenant_id), text(reference)],
    )
}

pub fn customers_by_name_prefix(backend: Backend, tenant_id: &str, prefix: &str, limit: i64) -> Lookup<CustomerHit> {
    let [p, max] = prefix_binds(prefix);
    Lookup::new(
        format!(
            "{CUSTOMER_HIT} WHERE tenant_id = $1 AND {} ORDER BY {} LIMIT $4",
            prefix_condition(backend, "name", 2),
            prefix_order(backend, "name")
        ),
        vec![text(tenant_id), p, max, Bind::Int(limit)],
    )
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct EndUserHit {
    pub id: String,
    pub email: String,
    pub customer_id: String,
}

impl Hit for EndUserHit {
    fn from_row(row: &AnyRow) -> StoreResult<Self> {
        Ok(EndUserHit {
            id: row.text("id")?,
            email: row.text("email")?,
            customer_id: row.text("customer_id")?,
        })
    }
}

const END_USER_HIT: &str = "SELECT id, email, customer_id FROM end_users";

pub fn end_user_by_id(tenant_id: &str, id: &str) -> Lookup<EndUserHit> {
    Lookup::new(
        format!("{END_USER_HIT} WHERE tenant_id = $1 AND id = $2"),
        vec![text(tenant_id), text(id)],
    )
}

/// `email` already normalised (lower case), as stored; unique per tenant.
pub fn end_user_by_email(tenant_id: &str, email: &str) -> Lookup<EndUserHit> {
    Lookup::new(
        format!("{END_USER_HIT} WHERE tenant_id = $1 AND email = $2"),
        vec![text(tenant_id), text(email)],
    )
}

/// An entitlement as search shows it; the service derives its status.
#[derive(Debug, Clone)]
pub struct EntitlementRow {
    pub id: String,
    pub customer_id: String,
    pub sku: String,
    pub order_ref: Option<String>,
    pub starts_at: Option<DateTime<Utc>>,
    pub expires_at: Option<DateTime<Utc>>,
    pub grace_period: Interval,
    pub disabled: bool,
}

impl Hit for EntitlementRow {
    fn from_row(row: &AnyRow) -> StoreResult<Self> {
        Ok(EntitlementRow {
            id: row.text("id")?,
            customer_id: row.text("customer_id")?,
            sku: row.text("sku")?,
            order_ref: row.opt_text("order_ref")?,
            starts_at: row.opt_time("starts_at")?,
            expires_at: row.opt_time("expires_at")?,
            grace_period: row.parse_column("grace_period")?,
            disabled: row.opt_int("disabled_at")?.is_some(),
        })
    }
}

const ENTITLEMENT_HIT: &str =
    "SELECT e.id, e.customer_id, e.sku, e.order_ref, e.starts_at, e.expires_at, e.grace_period, e.disabled_at \
     FROM entitlements e";

pub fn entitlement_by_id(tenant_id: &str, id: &str) -> Lookup<EntitlementRow> {
    Lookup::new(
        format!("{ENTITLEMENT_HIT} WHERE e.tenant_id = $1 AND e.id = $2"),
        vec![text(tenant_id), text(id)],
    )
}

/// `code` in its canonical form; unique per tenant.
pub fn entitlement_by_code(tenant_id: &str, code: &str) -> Lookup<EntitlementRow> {
    Lookup::new(
        format!("{ENTITLEMENT_HIT} WHERE e.tenant_id = $1 AND e.activation_code = $2"),
        vec![text(tenant_id), text(code)],
    )
}

pub fn entitlements_by_order_ref(tenant_id: &str, order_ref: &str, limit: i64) -> Lookup<EntitlementRow> {
    Lookup::new(
        format!("{ENTITLEMENT_HIT} WHERE e.tenant_id = $1 AND e.order_ref = $2 ORDER BY e.id LIMIT $3"),
        vec![text(tenant_id), text(order_ref), Bind::Int(limit)],
    )
}

/// The entitlements of the storefront orders of the provider's customer `reference`.
pub fn entitlements_by_provider_customer(tenant_id: &str, reference: &str, limit: i64) -> Lookup<EntitlementRow> {
    Lookup::new(
        format!(
            "{ENTITLEMENT_HIT} JOIN commerce_orders o ON o.tenant_id = e.tenant_id AND o.order_ref = e.order_ref
             WHERE o.tenant_id = $1 AND o.customer_ref = $2 ORDER BY e.id LIMIT $3"
        ),
        vec![text(tenant_id), text(reference), Bind::Int(limit)],
    )
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct ActivationHit {
    pub id: String,
    pub entitlement_id: String,
    pub seat_id: String,
    pub seat_name: Option<String>,
    /// `null` while the seat is held.
    pub deactivated_at: Option<DateTime<Utc>>,
}

impl Hit for ActivationHit {
    fn from_row(row: &AnyRow) -> StoreResult<Self> {
        Ok(ActivationHit {
            id: row.text("id")?,
            entitlement_id: row.text("entitlement_id")?,
            seat_id: row.text("seat_id")?,
            seat_name: row.opt_text("seat_name")?,
            deactivated_at: row.opt_time("deactivated_at")?,
        })
    }
}

const ACTIVATION_HIT: &str = "SELECT id, entitlement_id, seat_id, seat_name, deactivated_at FROM activations";

pub fn activation_by_id(tenant_id: &str, id: &str) -> Lookup<ActivationHit> {
    Lookup::new(
        format!("{ACTIVATION_HIT} WHERE tenant_id = $1 AND id = $2"),
        vec![text(tenant_id), text(id)],
    )
}

pub fn activations_by_seat_id(tenant_id: &str, seat_id: &str, limit: i64) -> Lookup<ActivationHit> {
    Lookup::new(
        format!("{ACTIVATION_HIT} WHERE tenant_id = $1 AND seat_id = $2 ORDER BY id LIMIT $3"),
        vec![text(tenant_id), text(seat_id), Bind::Int(limit)],
    )
}

pub fn activations_by_seat_name_prefix(
    backend: Backend,
    tenant_id: &str,
    prefix: &str,
    limit: i64,
) -> Lookup<ActivationHit> {
    let [p, max] = prefix_binds(prefix);
    Lookup::new(
        format!(
            "{ACTIVATION_HIT} WHERE tenant_id = $1 AND {} ORDER BY {} LIMIT $4",
            prefix_condition(backend, "seat_name", 2),
            prefix_order(backend, "seat_name")
        ),
        vec![text(tenant_id), p, max, Bind::Int(limit)],
    )
}
