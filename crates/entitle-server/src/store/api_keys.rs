use chrono::{DateTime, Utc};
use serde::Serialize;
use sqlx::any::AnyRow;
use sqlx::AnyConnection;
use utoipa::ToSchema;

use super::rows::{some, RowExt};
use super::{millis, StoreError, StoreResult};
use crate::domain::Role;

/// An API key as listed: never the secret, which is shown once at creation.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ApiKey {
    pub id: String,
    pub name: String,
    pub role: Role,
    /// The first characters of the secret, to tell keys apart.
    pub display_prefix: String,
    pub created_at: DateTime<Utc>,
    pub revoked_at: Option<DateTime<Utc>>,
}

/// Who a bearer key belongs to.
#[derive(Debug, Clone)]
pub struct KeyOwner {
    pub tenant_id: String,
    pub key_id: String,
    pub role: Role,
}

const COLUMNS: &str = "id, name, role, display_prefix, created_at, revoked_at";

fn from_row(row: &AnyRow) -> StoreResult<ApiKey> {
    Ok(ApiKey {
        id: row.text("id")?,
        name: row.text("name")?,
        role: row.parsed("role", |s| some(Role::parse(s)))?,
        display_prefix: row.text("display_prefix")?,
        created_at: row.time("created_at")?,
        revoked_at: row.opt_time("revoked_at")?,
    })
}

pub async fn insert(conn: &mut AnyConnection, tenant_id: &str, key: &ApiKey, key_hash: &str) -> StoreResult<()> {
    sqlx::query(
        "INSERT INTO api_keys (id, tenant_id, name, role, key_hash, display_prefix, created_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7)",
    )
    .bind(&key.id)
    .bind(tenant_id)
    .bind(&key.name)
    .bind(key.role.as_str())
    .bind(key_hash)
    .bind(&key.display_prefix)
    .bind(millis(key.created_at))
    .execute(conn)
    .await
    .map_err(StoreError::from_write)?;
    Ok(())
}

pub async fn find_owner(conn: &mut AnyConnection, key_hash: &str) -> StoreResult<Option<KeyOwner>> {
    let row = sqlx::query("SELECT id, tenant_id, role FROM api_keys WHERE key_hash = $1 AND revoked_at IS NULL")
        .bind(key_hash)
        .fetch_optional(conn)
        .await?;
    row.map(|row| {
        Ok(KeyOwner {
            tenant_id: row.text("tenant_id")?,
            key_id: row.text("id")?,
            role: row.parsed("role", |s| some(Role::parse(s)))?,
        })
    })
    .transpose()
}

pub async fn get(conn: &mut AnyConnection, tenant_id: &str, id: &str) -> StoreResult<Option<ApiKey>> {
    let sql = format!("SELECT {COLUMNS} FROM api_keys WHERE tenant_id = $1 AND id = $2");
    let row = sqlx::query(&sql).bind(tenant_id).bind(id).fetch_optional(conn).await?;
    row.as_ref().map(from_row).transpose()
}

pub async fn list(conn: &mut AnyConnection, tenant_id: &str, after: &str, limit: i64) -> StoreResult<Vec<ApiKey>> {
    let sql = format!("SELECT {COLUMNS} FROM api_keys WHERE tenant_id = $1 AND id > $2 ORDER BY id LIMIT $3");
    let rows = sqlx::query(&sql)
        .bind(tenant_id)
        .bind(after)
        .bind(limit)
        .fetch_all(conn)
        .await?;
    rows.iter().map(from_row).collect()
}

/// Revokes a key once; a second revocation changes nothing.
pub async fn revoke(conn: &mut AnyConnection, tenant_id: &str, id: &str, at: DateTime<Utc>) -> StoreResult<bool> {
    let done =
        sqlx::query("UPDATE api_keys SET revoked_at = $3 WHERE tenant_id = $1 AND id = $2 AND revoked_at IS NULL")
            .bind(tenant_id)
            .bind(id)
            .bind(millis(at))
            .execute(conn)
            .await?;
    Ok(done.rows_affected() > 0)
}
