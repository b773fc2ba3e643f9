//! Reminders already handled (sent or skipped), per-plan schedules, and the look-ups the scan needs.

use chrono::{DateTime, Utc};
use sqlx::AnyConnection;

use super::rows::RowExt;
use super::{millis, StoreResult};

/// Entitlements that expire within `[from, to)` and are not disabled: (tenant id, id).
pub async fn candidates(
    conn: &mut AnyConnection,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
    limit: i64,
) -> StoreResult<Vec<(String, String)>> {
    let rows = sqlx::query(
        "SELECT tenant_id, id FROM entitlements
         WHERE expires_at IS NOT NULL AND disabled_at IS NULL AND expires_at >= $1 AND expires_at < $2
         ORDER BY id LIMIT $3",
    )
    .bind(millis(from))
    .bind(millis(to))
    .bind(limit)
    .fetch_all(conn)
    .await?;
    rows.iter()
        .map(|row| Ok((row.text("tenant_id")?, row.text("id")?)))
        .collect()
}

/// One reminder's key: the entitlement, the kind, the expiry it is about and the days ahead.
pub struct Key<'a> {
    pub entitlement_id: &'a str,
    pub kind: &'a str,
    pub expires_at: DateTime<Utc>,
    pub days_before: i64,
}

pub async fn handled(conn: &mut AnyConnection, key: &Key<'_>) -> StoreResult<bool> {
    let row = sqlx::query(
        "SELECT 1 AS done FROM reminders WHERE entitlement_id = $1 AND kind = $2 AND expires_at = $3 AND days_before = $4",
    )
    .bind(key.entitlement_id)
    .bind(key.kind)
    .bind(millis(key.expires_at))
    .bind(key.days_before)
    .fetch_optional(conn)
    .await?;
    Ok(row.is_some())
}

/// Takes the reminder for this transaction: `false` if it was handled already (by this or
/// another instance), in which case the caller does nothing.
pub async fn take(
    conn: &mut AnyConnection,
    tenant_id: &str,
    key: &Key<'_>,
    outcome: &str,
    at: DateTime<Utc>,
) -> StoreResult<bool> {
    let done = sqlx::query(
        "INSERT INTO reminders (entitlement_id, kind, expires_at, days_before, tenant_id, outcome, created_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7)
         ON CONFLICT (entitlement_id, kind, expires_at, days_before) DO NOTHING",
    )
    .bind(key.entitlement_id)
    .bind(key.kind)
    .bind(millis(key.expires_at))
    .bind(key.days_before)
    .bind(tenant_id)
    .bind(outcome)
    .bind(millis(at))
    .execute(conn)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// A plan's reminder days, if it has its own schedule.
pub async fn schedule(conn: &mut AnyConnection, tenant_id: &str, plan_id: &str) -> StoreResult<Option<Vec<i64>>> {
    let row = sqlx::query("SELECT days_before FROM reminder_schedules WHERE tenant_id = $1 AND plan_id = $2")
        .bind(tenant_id)
        .bind(plan_id)
        .fetch_optional(conn)
        .await?;
    row.map(|row| row.parsed("days_before", |s| serde_json::from_str::<Vec<i64>>(s)))
        .transpose()
}

pub async fn put_schedule(
    conn: &mut AnyConnection,
    tenant_id: &str,
    plan_id: &str,
    days: &[i64],
    at: DateTime<Utc>,
) -> StoreResult<()> {
    sqlx::query(
        "INSERT INTO reminder_schedules (tenant_id, plan_id, days_before, updated_at) VALUES ($1, $2, $3, $4)
         ON CONFLICT (tenant_id, plan_id) DO UPDATE SET days_before = excluded.days_before, updated_at = excluded.updated_at",
    )
    .bind(tenant_id)
    .bind(plan_id)
    .bind(serde_json::to_string(days).unwrap_or_else(|_| "[]".to_owned()))
    .bind(millis(at))
    .execute(conn)
    .await?;
    Ok(())
}

/// The merged state of the storefront order an entitlement came from (the first of `refs` found).
pub async fn order_state(conn: &mut AnyConnection, tenant_id: &str, refs: &[String]) -> StoreResult<Option<String>> {
    for order_ref in refs {
        let row = sqlx::query("SELECT state FROM commerce_orders WHERE tenant_id = $1 AND order_ref = $2 LIMIT 1")
            .bind(tenant_id)
            .bind(order_ref)
            .fetch_optional(&mut *conn)
            .await?;
        if let Some(row) = row {
            return Ok(Some(row.text("state")?));
        }
    }
    Ok(None)
}
