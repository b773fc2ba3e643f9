use chrono::{DateTime, Utc};
use serde::Serialize;
use sqlx::AnyConnection;

use super::rows::RowExt;
use super::{millis, StoreResult};

#[derive(Debug, Clone, Serialize)]
pub struct Tenant {
    pub id: String,
    pub name: String,
    pub created_at: DateTime<Utc>,
}

pub async fn insert(conn: &mut AnyConnection, tenant: &Tenant) -> StoreResult<()> {
    sqlx::query("INSERT INTO tenants (id, name, created_at) VALUES ($1, $2, $3)")
        .bind(&tenant.id)
        .bind(&tenant.name)
        .bind(millis(tenant.created_at))
        .execute(conn)
        .await?;
    Ok(())
}

pub async fn get(conn: &mut AnyConnection, id: &str) -> StoreResult<Option<Tenant>> {
    let row = sqlx::query("SELECT id, name, created_at FROM tenants WHERE id = $1")
        .bind(id)
        .fetch_optional(conn)
        .await?;
    row.map(|row| {
        Ok(Tenant {
            id: row.text("id")?,
            name: row.text("name")?,
            created_at: row.time("created_at")?,
        })
    })
    .transpose()
}
