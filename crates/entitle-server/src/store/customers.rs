//! Customers and their end users.

use sqlx::any::AnyRow;
use sqlx::AnyConnection;

use super::rows::{some, RowExt};
use super::search::{prefix_binds, prefix_condition, Bind, Statement};
use super::{millis, Backend, StoreError, StoreResult};
use crate::domain::{Customer, Email, EndUser, EndUserRole, Name};

const CUSTOMER_COLUMNS: &str = "id, name, email, external_ref, created_at, updated_at";

fn customer(row: &AnyRow) -> StoreResult<Customer> {
    Ok(Customer {
        id: row.text("id")?,
        name: row.parsed("name", |s| Name::parse(s))?,
        email: row
            .opt_text("email")?
            .map(Email::parse)
            .transpose()
            .map_err(|_| StoreError::Corrupt("email".into()))?,
        external_ref: row.opt_text("external_ref")?,
        created_at: row.time("created_at")?,
        updated_at: row.time("updated_at")?,
    })
}

pub async fn insert_customer(conn: &mut AnyConnection, tenant_id: &str, c: &Customer) -> StoreResult<()> {
    sqlx::query(
        "INSERT INTO customers (id, tenant_id, name, email, external_ref, created_at, updated_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7)",
    )
    .bind(&c.id)
    .bind(tenant_id)
    .bind(c.name.as_str())
    .bind(c.email.as_ref().map(Email::as_str))
    .bind(c.external_ref.as_deref())
    .bind(millis(c.created_at))
    .bind(millis(c.updated_at))
    .execute(conn)
    .await
    .map_err(StoreError::from_write)?;
    Ok(())
}

pub async fn update_customer(conn: &mut AnyConnection, tenant_id: &str, c: &Customer) -> StoreResult<()> {
    sqlx::query(
        "UPDATE customers SET name = $3, email = $4, external_ref = $5, updated_at = $6 WHERE tenant_id = $1 AND id = $2",
    )
    .bind(tenant_id)
    .bind(&c.id)
    .bind(c.name.as_str())
    .bind(c.email.as_ref().map(Email::as_str))
    .bind(c.external_ref.as_deref())
    .bind(millis(c.updated_at))
    .execute(conn)
    .await
    .map_err(StoreError::from_write)?;
    Ok(())
}

pub async fn get_customer(conn: &mut AnyConnection, tenant_id: &str, id: &str) -> StoreResult<Option<Customer>> {
    let sql = format!("SELECT {CUSTOMER_COLUMNS} FROM customers WHERE tenant_id = $1 AND id = $2");
    let row = sqlx::query(&sql).bind(tenant_id).bind(id).fetch_optional(conn).await?;
    row.as_ref().map(customer).transpose()
}

/// The oldest customer with this (normalised) email.
pub async fn first_by_email(conn: &mut AnyConnection, tenant_id: &str, email: &Email) -> StoreResult<Option<Customer>> {
    let sql =
        format!("SELECT {CUSTOMER_COLUMNS} FROM customers WHERE tenant_id = $1 AND email = $2 ORDER BY id LIMIT 1");
    let row = sqlx::query(&sql)
        .bind(tenant_id)
        .bind(email.as_str())
        .fetch_optional(conn)
        .await?;
    row.as_ref().map(customer).transpose()
}

pub struct CustomerFilter<'a> {
    pub email: Option<&'a str>,
    pub external_ref: Option<&'a str>,
    /// Names starting with this, case-insensitively.
    pub name_prefix: Option<&'a str>,
    pub after: &'a str,
    pub limit: i64,
}

pub async fn list_customers(
    conn: &mut AnyConnection,
    backend: Backend,
    tenant_id: &str,
    filter: &CustomerFilter<'_>,
) -> StoreResult<Vec<Customer>> {
    list_customers_statement(backend, tenant_id, filter)
        .query()
        .fetch_all(conn)
        .await?
        .iter()
        .map(customer)
        .collect()
}

/// Only the filters given become conditions: `($n = '' OR email = $n)` would hide the email
/// index from the planner, which then walks every customer of the tenant.
pub fn list_customers_statement(backend: Backend, tenant_id: &str, filter: &CustomerFilter<'_>) -> Statement {
    let mut binds = vec![Bind::Text(tenant_id.to_owned()), Bind::Text(filter.after.to_owned())];
    let mut sql = format!("SELECT {CUSTOMER_COLUMNS} FROM customers WHERE tenant_id = $1 AND id > $2");
    for (column, value) in [("email", filter.email), ("external_ref", filter.external_ref)] {
        if let Some(value) = value {
            binds.push(Bind::Text(value.to_owned()));
            sql.push_str(&format!(" AND {column} = ${}", binds.len()));
        }
    }
    if let Some(prefix) = filter.name_prefix {
        sql.push_str(&format!(" AND {}", prefix_condition(backend, "name", binds.len() + 1)));
        binds.extend(prefix_binds(prefix));
    }
    binds.push(Bind::Int(filter.limit));
    sql.push_str(&format!(" ORDER BY id LIMIT ${}", binds.len()));
    Statement { sql, binds }
}

const END_USER_COLUMNS: &str = "id, customer_id, email, name, role, created_at, updated_at";

fn end_user(row: &AnyRow) -> StoreResult<EndUser> {
    Ok(EndUser {
        id: row.text("id")?,
        customer_id: row.text("customer_id")?,
        email: row.parsed("email", |s| Email::parse(s))?,
        name: row
            .opt_text("name")?
            .map(Name::parse)
            .transpose()
            .map_err(|_| StoreError::Corrupt("name".into()))?,
        role: row.parsed("role", |s| some(EndUserRole::parse(s)))?,
        created_at: row.time("created_at")?,
        updated_at: row.time("updated_at")?,
    })
}

pub async fn insert_end_user(conn: &mut AnyConnection, tenant_id: &str, u: &EndUser) -> StoreResult<()> {
    sqlx::query(
        "INSERT INTO end_users (id, tenant_id, customer_id, email, name, role, created_at, updated_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
    )
    .bind(&u.id)
    .bind(tenant_id)
    .bind(&u.customer_id)
    .bind(u.email.as_str())
    .bind(u.name.as_ref().map(Name::as_str))
    .bind(u.role.as_str())
    .bind(millis(u.created_at))
    .bind(millis(u.updated_at))
    .execute(conn)
    .await
    .map_err(StoreError::from_write)?;
    Ok(())
}

pub async fn update_end_user(conn: &mut AnyConnection, tenant_id: &str, u: &EndUser) -> StoreResult<()> {
    sqlx::query(
        "UPDATE end_users SET email = $3, name = $4, role = $5, updated_at = $6 WHERE tenant_id = $1 AND id = $2",
    )
    .bind(tenant_id)
    .bind(&u.id)
    .bind(u.email.as_str())
    .bind(u.name.as_ref().map(Name::as_str))
    .bind(u.role.as_str())
    .bind(millis(u.updated_at))
    .execute(conn)
    .await
    .map_err(StoreError::from_write)?;
    Ok(())
}

pub async fn get_end_user(conn: &mut AnyConnection, tenant_id: &str, id: &str) -> StoreResult<Option<EndUser>> {
    let sql = format!("SELECT {END_USER_COLUMNS} FROM end_users WHERE tenant_id = $1 AND id = $2");
    let row = sqlx::query(&sql).bind(tenant_id).bind(id).fetch_optional(conn).await?;
    row.as_ref().map(end_user).transpose()
}

pub async fn find_end_user_by_email(
    conn: &mut AnyConnection,
    tenant_id: &str,
    email: &Email,
) -> StoreResult<Option<EndUser>> {
    let sql = format!("SELECT {END_USER_COLUMNS} FROM end_users WHERE tenant_id = $1 AND email = $2");
    let row = sqlx::query(&sql)
        .bind(tenant_id)
        .bind(email.as_str())
        .fetch_optional(conn)
        .await?;
    row.as_ref().map(end_user).transpose()
}

pub async fn list_end_users(
    conn: &mut AnyConnection,
    tenant_id: &str,
    customer_id: Option<&str>,
    after: &str,
    limit: i64,
) -> StoreResult<Vec<EndUser>> {
    let sql = format!(
        "SELECT {END_USER_COLUMNS} FROM end_users WHERE tenant_id = $1 AND id > $2 AND ($3 = '' OR customer_id = $3)
         ORDER BY id LIMIT $4"
    );
    let rows = sqlx::query(&sql)
        .bind(tenant_id)
        .bind(after)
        .bind(customer_id.unwrap_or(""))
        .bind(limit)
        .fetch_all(conn)
        .await?;
    rows.iter().map(end_user).collect()
}

/// The customer and password hash of an end user, for account-based activation.
pub async fn end_user_credentials(
    conn: &mut AnyConnection,
    tenant_id: &str,
    email: &str,
) -> StoreResult<Option<(String, Option<String>)>> {
    let row = sqlx::query("SELECT customer_id, password_hash FROM end_users WHERE tenant_id = $1 AND email = $2")
        .bind(tenant_id)
        .bind(email)
        .fetch_optional(conn)
        .await?;
    row.map(|row| Ok((row.text("customer_id")?, row.opt_text("password_hash")?)))
        .transpose()
}

pub async fn set_password(conn: &mut AnyConnection, tenant_id: &str, id: &str, hash: &str) -> StoreResult<()> {
    sqlx::query("UPDATE end_users SET password_hash = $3 WHERE tenant_id = $1 AND id = $2")
        .bind(tenant_id)
        .bind(id)
        .bind(hash)
        .execute(conn)
        .await?;
    Ok(())
}
