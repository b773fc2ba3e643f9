//! Usage over time: seats in use per day against the licensed count, and each metered
//! feature's use per day. The licensing use cases keep the rollup in their own transactions
//! (`note_…` below); reading a range reads the rollup only, never the activation log.

use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};
use sqlx::AnyConnection;
use utoipa::ToSchema;

use super::{found, Ctx, ServiceResult};
use crate::domain::usage::{day_of, seat_series, use_series, DayRange, SeatDay, SeatsNow, UseDay};
use crate::domain::{FeatureKind, Key, Overdraft};
use crate::store::entitlements as entitlements_db;
use crate::store::usage::{self as db, SeatChange};
use crate::store::{Store, StoreResult};

/// Seats in use went from `before` to `after` at `at`, under these seat terms.
pub(crate) async fn note_seats(
    conn: &mut AnyConnection,
    tenant_id: &str,
    entitlement_id: &str,
    at: DateTime<Utc>,
    (before, after): (i64, i64),
    (seat_count, overdraft): (i64, Overdraft),
) -> StoreResult<()> {
    let change = SeatChange {
        before,
        after,
        licensed: seat_count,
        overdraft: overdraft.allowance(seat_count),
    };
    db::seats_changed(conn, tenant_id, entitlement_id, day_of(at), change).await
}

/// `amount` of a metered feature was used at `at`.
pub(crate) async fn note_use(
    conn: &mut AnyConnection,
    tenant_id: &str,
    entitlement_id: &str,
    feature_id: &str,
    amount: i64,
    at: DateTime<Utc>,
) -> StoreResult<()> {
    db::feature_used(conn, tenant_id, entitlement_id, feature_id, day_of(at), amount).await
}

/// The query of `GET /entitlements/{id}/usage`.
#[derive(Debug, Clone, Default, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct UsageQuery {
    /// The first day (UTC, `YYYY-MM-DD`). Default: 29 days before `to`.
    pub from: Option<String>,
    /// The last day (UTC, `YYYY-MM-DD`). Default: today. At most 366 days from `from`.
    pub to: Option<String>,
    /// Only `day` for now.
    pub bucket: Option<String>,
}

impl UsageQuery {
    pub fn range(&self, now: DateTime<Utc>) -> ServiceResult<DayRange> {
        Ok(DayRange::parse(
            self.from.as_deref(),
            self.to.as_deref(),
            self.bucket.as_deref(),
            day_of(now),
        )?)
    }
}

/// A metered feature's use per day, against its allowance.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct FeatureUsage {
    pub key: Key,
    pub feature_id: String,
    /// The allowance per licence period; `null`: unlimited.
    pub limit: Option<i64>,
    /// Use allowed beyond the limit.
    pub overdraft: i64,
    /// Used so far in the current licence period.
    pub used: i64,
    pub days: Vec<UseDay>,
}

/// Usage over time of one entitlement.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct EntitlementUsage {
    pub entitlement_id: String,
    /// The first day answered: the range asked for, from the entitlement's creation on (as
    /// asked, with no days, if the range lies wholly before its creation or after today).
    #[schema(value_type = String, format = Date)]
    pub from: NaiveDate,
    /// The last day answered: the range asked for, up to today.
    #[schema(value_type = String, format = Date)]
    pub to: NaiveDate,
    /// Always `day`.
    pub bucket: String,
    /// Seats in use per day: a day without a change carries the previous day's end value.
    pub seats: Vec<SeatDay>,
    /// Each metered (`usage_count`) feature the entitlement grants.
    pub features: Vec<FeatureUsage>,
}

/// The usage of the tenant's entitlement over `range` (cut to the days between its creation and
/// `ctx.now`). Another tenant's entitlement is not found.
pub async fn over_time(
    store: &Store,
    ctx: &Ctx,
    entitlement_id: &str,
    range: DayRange,
) -> ServiceResult<EntitlementUsage> {
    let mut conn = store.read().await?;
    let e = found(
        entitlements_db::get(&mut conn, &ctx.tenant_id, entitlement_id).await?,
        "entitlement",
    )?;
    let within = range.within(day_of(e.created_at), day_of(ctx.now));
    // A range wholly before the entitlement or after today is answered as asked, with no days.
    let range = if within.is_empty() { range } else { within };
    let (seats, feature_rows) = if within.is_empty() {
        (Vec::new(), Vec::new())
    } else {
        let rows = db::seat_rows(&mut conn, &ctx.tenant_id, &e.id, range).await?;
        let now = SeatsNow {
            seats_used: e.seats_used,
            licensed: e.terms.seat_count,
            overdraft: e.terms.overdraft.allowance(e.terms.seat_count),
        };
        let seats = seat_series(range, rows.before.as_ref(), &rows.rows, rows.after.as_ref(), now);
        (seats, db::feature_rows(&mut conn, &ctx.tenant_id, &e.id, range).await?)
    };
    let features = e
        .terms
        .features
        .iter()
        .filter(|(_, g)| g.kind == FeatureKind::UsageCount && g.enabled)
        .map(|(key, g)| {
            let days: Vec<(NaiveDate, i64)> = feature_rows
                .iter()
                .filter(|(feature_id, _, _)| *feature_id == g.feature_id)
                .map(|(_, day, used)| (*day, *used))
                .collect();
            FeatureUsage {
                key: key.clone(),
                feature_id: g.feature_id.clone(),
                limit: g.limit,
                overdraft: g.overdraft,
                used: g.used,
                days: if within.is_empty() {
                    Vec::new()
                } else {
                    use_series(range, &days)
                },
            }
        })
        .collect();
    Ok(EntitlementUsage {
        entitlement_id: e.id,
        from: range.from,
        to: range.to,
        bucket: "day".into(),
        seats,
        features,
    })
}
