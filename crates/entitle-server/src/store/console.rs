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

/// Storefront deliveries that need someone: unmapped, incomplete, unmatched, unreadable or failed.
pub async fn deliveries_needing_attention(conn: &mut AnyConnection, tenant_id: &str) -> StoreResult<i64> {
    let row = sqlx::query(
        "SELECT COUNT(*) AS n FROM commerce_deliveries
         WHERE tenant_id = $1 AND outcome IN ('unmapped', 'incomplete', 'unmatched', 'unreadable', 'failed')",
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

/// Seats in use and licensed, summed per tenant over live entitlements (one pass over the
/// table: the housekeeping worker's sample, never a request's).
pub async fn seat_totals(conn: &mut AnyConnection) -> StoreResult<Vec<(String, i64, i64)>> {
    let rows = sqlx::query(
        "SELECT tenant_id, CAST(SUM(seats_used) AS BIGINT) AS used, CAST(SUM(seat_count) AS BIGINT) AS licensed
         FROM entitlements WHERE disabled_at IS NULL GROUP BY tenant_id",
    )
    .fetch_all(conn)
    .await?;
    rows.iter()
        .map(|row| Ok((row.text("tenant_id")?, row.int("used")?, row.int("licensed")?)))
        .collect()
}

/// Folds one sample into the tenant's day.
pub async fn record_seat_sample(
    conn: &mut AnyConnection,
    tenant_id: &str,
    day_start: i64,
    used: i64,
    licensed: i64,
) -> StoreResult<()> {
    sqlx::query(
        "INSERT INTO tenant_seat_days (tenant_id, day, seats_min, seats_max, seats_end, licensed)
         VALUES ($1, $2, $3, $3, $3, $4)
         ON CONFLICT (tenant_id, day) DO UPDATE SET
           seats_min = CASE WHEN excluded.seats_min < tenant_seat_days.seats_min
                            THEN excluded.seats_min ELSE tenant_seat_days.seats_min END,
           seats_max = CASE WHEN excluded.seats_max > tenant_seat_days.seats_max
                            THEN excluded.seats_max ELSE tenant_seat_days.seats_max END,
           seats_end = excluded.seats_end,
           licensed = excluded.licensed",
    )
    .bind(tenant_id)
    .bind(day_start)
    .bind(used)
    .bind(licensed)
    .execute(conn)
    .await?;
    Ok(())
}

/// The tenant's sampled days from `from` (ms) on: (day start, min, max, end, licensed).
pub async fn seat_days(
    conn: &mut AnyConnection,
    tenant_id: &str,
    from: i64,
) -> StoreResult<Vec<(i64, i64, i64, i64, i64)>> {
    let rows = sqlx::query(
        "SELECT day, seats_min, seats_max, seats_end, licensed FROM tenant_seat_days
         WHERE tenant_id = $1 AND day >= $2 ORDER BY day",
    )
    .bind(tenant_id)
    .bind(from)
    .fetch_all(conn)
    .await?;
    rows.iter()
        .map(|row| {
            Ok((
                row.int("day")?,
                row.int("seats_min")?,
                row.int("seats_max")?,
                row.int("seats_end")?,
                row.int("licensed")?,
            ))
        })
        .collect()
}
