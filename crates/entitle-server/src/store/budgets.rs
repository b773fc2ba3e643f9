//! Attempt budgets: a fixed window per scope with the failures in it and the attempts in flight.
//! Admission is one conditional upsert, so concurrent attempts on any number of instances sharing
//! the database can never have more than the limit evaluated.

use sqlx::AnyConnection;

use super::rows::RowExt;
use super::StoreResult;

/// Admits one attempt for `scope` if its failures plus attempts in flight are under `limit`,
/// starting a new window at `now` when the last one began at or before `window_cutoff`.
/// Returns the window it was admitted to, or `None`.
pub async fn admit(
    conn: &mut AnyConnection,
    scope: &str,
    now: i64,
    window_cutoff: i64,
    limit: i64,
) -> StoreResult<Option<i64>> {
    let row = sqlx::query(
        "INSERT INTO credential_budgets AS b (scope, window_start, used, in_flight) VALUES ($1, $2, 0, 1)
         ON CONFLICT (scope) DO UPDATE SET
           used = CASE WHEN b.window_start <= $3 THEN 0 ELSE b.used END,
           in_flight = CASE WHEN b.window_start <= $3 THEN 1 ELSE b.in_flight + 1 END,
           window_start = CASE WHEN b.window_start <= $3 THEN $2 ELSE b.window_start END
         WHERE b.window_start <= $3 OR b.used + b.in_flight < $4
         RETURNING window_start",
    )
    .bind(scope)
    .bind(now)
    .bind(window_cutoff)
    .bind(limit)
    .fetch_optional(conn)
    .await?;
    row.map(|row| row.int("window_start")).transpose()
}

/// The failures counted in `scope`'s current window and when it started.
pub async fn failures(conn: &mut AnyConnection, scope: &str) -> StoreResult<Option<(i64, i64)>> {
    let row = sqlx::query("SELECT used, window_start FROM credential_budgets WHERE scope = $1")
        .bind(scope)
        .fetch_optional(conn)
        .await?;
    row.map(|row| Ok((row.int("used")?, row.int("window_start")?)))
        .transpose()
}

/// Ends an admitted attempt; a failed one stays counted for the rest of the window.
pub async fn settle(conn: &mut AnyConnection, scope: &str, window_start: i64, failed: bool) -> StoreResult<()> {
    sqlx::query(
        "UPDATE credential_budgets
         SET in_flight = CASE WHEN in_flight > 0 THEN in_flight - 1 ELSE 0 END,
             used = used + $3
         WHERE scope = $1 AND window_start = $2",
    )
    .bind(scope)
    .bind(window_start)
    .bind(i64::from(failed))
    .execute(conn)
    .await?;
    Ok(())
}

/// Forgets windows that began before `before` (ms); at most `batch` rows, so the writer is
/// never held for long. Returns how many went.
pub async fn purge(conn: &mut AnyConnection, before: i64, batch: i64) -> StoreResult<u64> {
    let done = sqlx::query(
        "DELETE FROM credential_budgets WHERE scope IN
           (SELECT scope FROM credential_budgets WHERE window_start < $1 LIMIT $2)",
    )
    .bind(before)
    .bind(batch)
    .execute(conn)
    .await?;
    Ok(done.rows_affected())
}
