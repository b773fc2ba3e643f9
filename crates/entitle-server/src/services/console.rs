//! What the admin console shows that no single management route answers: the dashboard's
//! numbers and the one-box search.

use chrono::Duration;
use serde::Serialize;

use super::{Ctx, ServiceResult};
use crate::store::{console as db, Store};

#[derive(Debug, Clone, Serialize)]
pub struct Dashboard {
    pub purchases_today: i64,
    pub purchases_week: i64,
    /// Entitlement ids expiring in the next 30 days, soonest first (at most 20).
    pub expiring: Vec<String>,
    pub deliveries_needing_attention: i64,
    pub failed_mails: i64,
}

pub async fn dashboard(store: &Store, ctx: &Ctx) -> ServiceResult<Dashboard> {
    let mut conn = store.read().await?;
    let t = &ctx.tenant_id;
    let midnight = ctx
        .now
        .date_naive()
        .and_hms_opt(0, 0, 0)
        .map_or(ctx.now, |at| at.and_utc());
    Ok(Dashboard {
        purchases_today: db::entitlements_created_since(&mut conn, t, midnight).await?,
        purchases_week: db::entitlements_created_since(&mut conn, t, ctx.now - Duration::days(7)).await?,
        expiring: db::expiring_between(&mut conn, t, ctx.now, ctx.now + Duration::days(30), 20).await?,
        deliveries_needing_attention: db::deliveries_needing_attention(&mut conn, t).await?,
        failed_mails: db::failed_mails(&mut conn, t).await?,
    })
}

/// One search result: what it is, where its page is (`path`/`id` under the console), and how
/// to show it.
#[derive(Debug, Clone, Serialize)]
pub struct Hit {
    pub kind: &'static str,
    pub path: &'static str,
    pub id: String,
    pub label: String,
    pub detail: String,
}

/// The one-box search ([`super::search`]) as rows to show, each linking to its page.
pub async fn search(store: &Store, ctx: &Ctx, q: &str) -> ServiceResult<Vec<Hit>> {
    let q = q.trim();
    if q.is_empty() {
        return Ok(Vec::new());
    }
    let found = super::search::search(store, ctx, q, crate::domain::PageLimit::new(20).ok()).await?;
    let mut hits = Vec::new();
    for c in found.customers {
        hits.push(Hit {
            kind: "customer",
            path: "customers",
            id: c.id,
            label: c.name,
            detail: c.email.unwrap_or_default(),
        });
    }
    for u in found.end_users {
        hits.push(Hit {
            kind: "end user",
            path: "customers",
            id: u.customer_id,
            label: u.email,
            detail: "an end user of this customer".into(),
        });
    }
    for e in found.entitlements {
        let status = serde_json::to_value(e.status)
            .ok()
            .and_then(|v| v.as_str().map(str::to_owned))
            .unwrap_or_default();
        hits.push(Hit {
            kind: "entitlement",
            path: "entitlements",
            id: e.id.clone(),
            label: format!("{} · {}", e.sku, e.id),
            detail: format!(
                "{status}{}",
                e.order_ref.map(|o| format!(" · order {o}")).unwrap_or_default()
            ),
        });
    }
    for a in found.activations {
        let held = if a.deactivated_at.is_some() { "released" } else { "held" };
        hits.push(Hit {
            kind: "seat",
            path: "entitlements",
            id: a.entitlement_id,
            label: a.seat_name.unwrap_or_else(|| a.seat_id.clone()),
            detail: format!("seat {} · {held}", a.seat_id),
        });
    }
    Ok(hits)
}

/// Samples seats in use for every tenant into today's row (the housekeeping worker calls it).
pub async fn sample_seats(store: &Store, now: chrono::DateTime<chrono::Utc>) -> ServiceResult<usize> {
    let totals = db::seat_totals(&mut *store.read().await?).await?;
    let day = crate::domain::usage::day_start_millis(crate::domain::usage::day_of(now));
    let mut conn = store.write_conn().await?;
    for (tenant_id, used, licensed) in &totals {
        db::record_seat_sample(&mut conn, tenant_id, day, *used, *licensed).await?;
    }
    Ok(totals.len())
}

/// Seats in use across the tenant per day for the last 30 days, as sampled; days without a
/// sample carry the last one forward.
pub async fn seats_over_time(store: &Store, ctx: &Ctx) -> ServiceResult<Vec<crate::domain::usage::SeatDay>> {
    use crate::domain::usage::{day_from_millis, day_of, SeatDay};
    let today = day_of(ctx.now);
    let first = today.checked_sub_days(chrono::Days::new(29)).unwrap_or(today);
    let rows = db::seat_days(
        &mut *store.read().await?,
        &ctx.tenant_id,
        crate::domain::usage::day_start_millis(first),
    )
    .await?;
    let mut sampled = rows.iter().filter_map(|(day, min, max, end, licensed)| {
        day_from_millis(*day).map(|day| (day, (*min, *max, *end, *licensed)))
    });
    let mut next = sampled.next();
    let mut last: Option<(i64, i64)> = None;
    let mut days = Vec::new();
    let mut day = first;
    while day <= today {
        match next {
            Some((at, (min, max, end, licensed))) if at == day => {
                days.push(SeatDay {
                    day,
                    seats_min: min,
                    seats_max: max,
                    seats_end: end,
                    licensed,
                    overdraft: Some(0),
                });
                last = Some((end, licensed));
                next = sampled.next();
            }
            _ => {
                if let Some((end, licensed)) = last {
                    days.push(SeatDay {
                        day,
                        seats_min: end,
                        seats_max: end,
                        seats_end: end,
                        licensed,
                        overdraft: Some(0),
                    });
                }
            }
        }
        match day.succ_opt() {
            Some(following) => day = following,
            None => break,
        }
    }
    Ok(days)
}
