//! The usage rollup: per entitlement and UTC day, seats in use (start, min, max, end) with the
//! licensed count, and each metered feature's use. Each write is one upsert in the transaction
//! of the change it records; the change itself has locked the entitlement's row (its counter
//! update), so the upserts of one entitlement run in the order the changes commit and the
//! day's end value is the last change's.

use chrono::NaiveDate;
use sqlx::any::AnyRow;
use sqlx::AnyConnection;

use super::rows::RowExt;
use super::{StoreError, StoreResult};
use crate::domain::usage::{day_from_millis, day_start_millis, DayRange, SeatDayRow};

/// A change of the seats in use, from `before` to `after`, with the terms at that moment.
#[derive(Debug, Clone, Copy)]
pub struct SeatChange {
    pub before: i64,
    pub after: i64,
    pub licensed: i64,
    pub overdraft: Option<i64>,
}

pub async fn seats_changed(
    conn: &mut AnyConnection,
    tenant_id: &str,
    entitlement_id: &str,
    day: NaiveDate,
    change: SeatChange,
) -> StoreResult<()> {
    // The first change of a day inserts: before it, `before` seats were in use all day.
    sqlx::query(
        "INSERT INTO seat_usage_days
            (entitlement_id, tenant_id, day, seats_start, seats_min, seats_max, seats_end, licensed, overdraft)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
         ON CONFLICT (entitlement_id, day) DO UPDATE SET
            seats_min = CASE WHEN excluded.seats_min < seat_usage_days.seats_min
                             THEN excluded.seats_min ELSE seat_usage_days.seats_min END,
            seats_max = CASE WHEN excluded.seats_max > seat_usage_days.seats_max
                             THEN excluded.seats_max ELSE seat_usage_days.seats_max END,
            seats_end = excluded.seats_end,
            licensed = excluded.licensed,
            overdraft = excluded.overdraft",
    )
    .bind(entitlement_id)
    .bind(tenant_id)
    .bind(day_start_millis(day))
    .bind(change.before)
    .bind(change.before.min(change.after))
    .bind(change.before.max(change.after))
    .bind(change.after)
    .bind(change.licensed)
    .bind(change.overdraft)
    .execute(conn)
    .await?;
    Ok(())
}

/// The terms changed (seat count, overdraft): the day's row takes them; seats stay as counted.
/// Call after the entitlement's row was written, so its row lock is held and `seats_used` is
/// the committed count.
pub async fn terms_changed(
    conn: &mut AnyConnection,
    entitlement_id: &str,
    day: NaiveDate,
    licensed: i64,
    overdraft: Option<i64>,
) -> StoreResult<()> {
    sqlx::query(
        "INSERT INTO seat_usage_days
            (entitlement_id, tenant_id, day, seats_start, seats_min, seats_max, seats_end, licensed, overdraft)
         SELECT id, tenant_id, $2, seats_used, seats_used, seats_used, seats_used, $3, $4
         FROM entitlements WHERE id = $1
         ON CONFLICT (entitlement_id, day) DO UPDATE SET licensed = excluded.licensed, overdraft = excluded.overdraft",
    )
    .bind(entitlement_id)
    .bind(day_start_millis(day))
    .bind(licensed)
    .bind(overdraft)
    .execute(conn)
    .await?;
    Ok(())
}

pub async fn feature_used(
    conn: &mut AnyConnection,
    tenant_id: &str,
    entitlement_id: &str,
    feature_id: &str,
    day: NaiveDate,
    amount: i64,
) -> StoreResult<()> {
    sqlx::query(
        "INSERT INTO feature_usage_days (entitlement_id, feature_id, tenant_id, day, used)
         VALUES ($1, $2, $3, $4, $5)
         ON CONFLICT (entitlement_id, feature_id, day) DO UPDATE SET used = feature_usage_days.used + excluded.used",
    )
    .bind(entitlement_id)
    .bind(feature_id)
    .bind(tenant_id)
    .bind(day_start_millis(day))
    .bind(amount)
    .execute(conn)
    .await?;
    Ok(())
}

const SEAT_COLUMNS: &str = "day, seats_start, seats_min, seats_max, seats_end, licensed, overdraft";

fn day(row: &AnyRow) -> StoreResult<NaiveDate> {
    day_from_millis(row.int("day")?).ok_or_else(|| StoreError::Corrupt("column day: out of range".into()))
}

fn seat_row(row: &AnyRow) -> StoreResult<SeatDayRow> {
    Ok(SeatDayRow {
        day: day(row)?,
        start: row.int("seats_start")?,
        min: row.int("seats_min")?,
        max: row.int("seats_max")?,
        end: row.int("seats_end")?,
        licensed: row.int("licensed")?,
        overdraft: row.opt_int("overdraft")?,
    })
}

/// The rows a seat series over `range` needs: the last row before it, the rows in it, and the
/// first row after it (only asked for when there is neither of the others).
pub struct SeatRows {
    pub before: Option<SeatDayRow>,
    pub rows: Vec<SeatDayRow>,
    pub after: Option<SeatDayRow>,
}

pub async fn seat_rows(
    conn: &mut AnyConnection,
    tenant_id: &str,
    entitlement_id: &str,
    range: DayRange,
) -> StoreResult<SeatRows> {
    let (from, to) = (day_start_millis(range.from), day_start_millis(range.to));
    let sql = format!(
        "SELECT {SEAT_COLUMNS} FROM seat_usage_days
         WHERE tenant_id = $1 AND entitlement_id = $2 AND day >= $3 AND day <= $4 ORDER BY day"
    );
    let rows = sqlx::query(&sql)
        .bind(tenant_id)
        .bind(entitlement_id)
        .bind(from)
        .bind(to)
        .fetch_all(&mut *conn)
        .await?
        .iter()
        .map(seat_row)
        .collect::<StoreResult<Vec<_>>>()?;
    let sql = format!(
        "SELECT {SEAT_COLUMNS} FROM seat_usage_days
         WHERE tenant_id = $1 AND entitlement_id = $2 AND day < $3 ORDER BY day DESC LIMIT 1"
    );
    let before = sqlx::query(&sql)
        .bind(tenant_id)
        .bind(entitlement_id)
        .bind(from)
        .fetch_optional(&mut *conn)
        .await?
        .as_ref()
        .map(seat_row)
        .transpose()?;
    let after = if before.is_none() && rows.is_empty() {
        let sql = format!(
            "SELECT {SEAT_COLUMNS} FROM seat_usage_days
             WHERE tenant_id = $1 AND entitlement_id = $2 AND day > $3 ORDER BY day LIMIT 1"
        );
        sqlx::query(&sql)
            .bind(tenant_id)
            .bind(entitlement_id)
            .bind(to)
            .fetch_optional(&mut *conn)
            .await?
            .as_ref()
            .map(seat_row)
            .transpose()?
    } else {
        None
    };
    Ok(SeatRows { before, rows, after })
}

/// (feature id, day, used) for every day of `range` some usage was recorded on.
pub async fn feature_rows(
    conn: &mut AnyConnection,
    tenant_id: &str,
    entitlement_id: &str,
    range: DayRange,
) -> StoreResult<Vec<(String, NaiveDate, i64)>> {
    let rows = sqlx::query(
        "SELECT feature_id, day, used FROM feature_usage_days
         WHERE tenant_id = $1 AND entitlement_id = $2 AND day >= $3 AND day <= $4 ORDER BY feature_id, day",
    )
    .bind(tenant_id)
    .bind(entitlement_id)
    .bind(day_start_millis(range.from))
    .bind(day_start_millis(range.to))
    .fetch_all(conn)
    .await?;
    rows.iter()
        .map(|row| Ok((row.text("feature_id")?, day(row)?, row.int("used")?)))
        .collect()
}
