//! The append-only event log.

use chrono::{DateTime, Utc};
use serde::Serialize;
use sqlx::any::AnyRow;
use sqlx::AnyConnection;
use utoipa::ToSchema;

use super::rows::RowExt;
use super::{millis, StoreError, StoreResult};

/// One recorded change: who did what to which object, from where, and when.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Event {
    pub id: String,
    /// `api_key`, `end_user`, `staff`, `storefront` or `system`.
    pub actor_kind: String,
    pub actor_id: Option<String>,
    /// `<object kind>.<verb>`, e.g. `entitlement.renewed`.
    pub action: String,
    pub object_kind: String,
    pub object_id: String,
    /// What changed: the new object's main values, or `{field: {from, to}}` for updates.
    pub summary: serde_json::Value,
    pub ip: Option<String>,
    pub created_at: DateTime<Utc>,
}

fn event(row: &AnyRow) -> StoreResult<Event> {
    Ok(Event {
        id: row.text("id")?,
        actor_kind: row.text("actor_kind")?,
        actor_id: row.opt_text("actor_id")?,
        action: row.text("action")?,
        object_kind: row.text("object_kind")?,
        object_id: row.text("object_id")?,
        summary: row.parsed("summary", |s| serde_json::from_str(s))?,
        ip: row.opt_text("ip")?,
        created_at: row.time("created_at")?,
    })
}

pub async fn insert(conn: &mut AnyConnection, tenant_id: &str, e: &Event) -> StoreResult<()> {
    sqlx::query(
        "INSERT INTO events (id, tenant_id, actor_kind, actor_id, action, object_kind, object_id, summary, ip, created_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
    )
    .bind(&e.id)
    .bind(tenant_id)
    .bind(&e.actor_kind)
    .bind(e.actor_id.as_deref())
    .bind(&e.action)
    .bind(&e.object_kind)
    .bind(&e.object_id)
    .bind(e.summary.to_string())
    .bind(e.ip.as_deref())
    .bind(millis(e.created_at))
    .execute(conn)
    .await
    .map_err(StoreError::from_write)?;
    Ok(())
}

pub struct EventFilter<'a> {
    pub object_id: Option<&'a str>,
    pub object_kind: Option<&'a str>,
    pub action: Option<&'a str>,
    pub since: Option<DateTime<Utc>>,
    pub until: Option<DateTime<Utc>>,
    pub after: &'a str,
    pub limit: i64,
}

pub async fn list(conn: &mut AnyConnection, tenant_id: &str, f: &EventFilter<'_>) -> StoreResult<Vec<Event>> {
    let rows = sqlx::query(
        "SELECT id, actor_kind, actor_id, action, object_kind, object_id, summary, ip, created_at FROM events
         WHERE tenant_id = $1 AND id > $2 AND ($3 = '' OR object_id = $3) AND ($4 = '' OR object_kind = $4)
           AND ($5 = '' OR action = $5) AND created_at >= $6 AND created_at < $7
         ORDER BY id LIMIT $8",
    )
    .bind(tenant_id)
    .bind(f.after)
    .bind(f.object_id.unwrap_or(""))
    .bind(f.object_kind.unwrap_or(""))
    .bind(f.action.unwrap_or(""))
    .bind(f.since.map(millis).unwrap_or(i64::MIN))
    .bind(f.until.map(millis).unwrap_or(i64::MAX))
    .bind(f.limit)
    .fetch_all(conn)
    .await?;
    rows.iter().map(event).collect()
}
