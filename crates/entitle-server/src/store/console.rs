//! The numbers the console's dashboard shows, each one indexed count or short list.

use chrono::{DateTime, Utc};
use sqlx::AnyConnection;

use super::rows::RowExt;
use super::{millis, StoreResult};

/// Entitlements created since `since` (purchases and manual grants alike).
pub async fn entitlements_created_since(
    conn: &mut AnyConnection,
    tenant_id: &str,
    since: DateTime<Utc>,
) -> StoreResult<i64> {
    let row = sqlx::query("SELECT COUNT(*) AS n FROM entitlements WHERE tenant_id = $1 AND created_at >= $2")
        .bind(tenant_id)
        .bind(millis(since))
        .fetch_one(conn)
        .await?;
    row.int("n")
}

/// Ids of entitlements whose expiry falls between `from` and `to`, soonest first.
pub async fn expiring_between(
    conn: &mut AnyConnection,
    tenant_id: &str,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
    limit: i64,
) -> StoreResult<Vec<String>> {
    let rows = sqlx::query(
        "SELECT id FROM entitlements
         WHERE tenant_id = $1 AND expires_at >= $2 AND expires_at < $3 AND disabled_at IS NULL
         ORDER BY expires_at LIMIT $4",
    )
    .bind(tenant_id)
    .bind(millis(from))
    .bind(millis(to))
    .bind(limit)
    .fetch_all(conn)
    .await?;
    rows.iter().map(|row| row.text("id")).collect()
}

/// Storefront deliveries that need someone: unmapped, incomplete or unmatched.
pub async fn deliveries_needing_attention(conn: &mut AnyConnection, tenant_id: &str) -> StoreResult<i64> {
    let row = sqlx::query(
        "SELECT COUNT(*) AS n FROM commerce_deliveries
         WHERE tenant_id = $1 AND outcome IN ('unmapped', 'incomplete', 'unmatched', 'unreadable')",
    )
    .bind(tenant_id)
    .fetch_one(conn)
    .await?;
    row.int("n")
}

pub async fn failed_mails(conn: &mut AnyConnection, tenant_id: &str) -> StoreResult<i64> {
    let row = sqlx::query("SELECT COUNT(*) AS n FROM mail_outbox WHERE tenant_id = $1 AND status = 'failed'")
        .bind(tenant_id)
        .fetch_one(conn)
        .await?;
    row.int("n")
}
