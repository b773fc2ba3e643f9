//! What the admin console shows that no single management route answers: the dashboard's
//! numbers and the one-box search.

use chrono::Duration;
use serde::Serialize;

use super::{Ctx, ServiceResult};
use crate::domain::{ActivationCode, Email};
use crate::store::{console as db, customers as customers_db, entitlements as entitlements_db, Store};

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

/// Exact lookups by activation code, email, order reference or id; each an indexed query.
pub async fn search(store: &Store, ctx: &Ctx, q: &str) -> ServiceResult<Vec<Hit>> {
    let q = q.trim();
    let mut hits = Vec::new();
    if q.is_empty() || q.len() > 200 {
        return Ok(hits);
    }
    let mut conn = store.read().await?;
    let t = &ctx.tenant_id;
    let entitlement_hit = |e: &crate::domain::Entitlement, why: &str| Hit {
        kind: "entitlement",
        path: "entitlements",
        id: e.id.clone(),
        label: format!("{} · {}", e.sku.as_str(), e.id),
        detail: why.to_owned(),
    };
    if let Ok(code) = ActivationCode::parse(q) {
        if let Some(e) = entitlements_db::find_by_code(&mut conn, t, code.as_str()).await? {
            hits.push(entitlement_hit(&e, "activation code"));
        }
    }
    if let Ok(email) = Email::parse(q) {
        if let Some(user) = customers_db::find_end_user_by_email(&mut conn, t, &email).await? {
            hits.push(Hit {
                kind: "end user",
                path: "customers",
                id: user.customer_id.clone(),
                label: user.email.to_string(),
                detail: "an end user of this customer".into(),
            });
        }
        let filter = customers_db::CustomerFilter {
            email: Some(email.as_str()),
            external_ref: None,
            after: "",
            limit: 20,
        };
        for customer in customers_db::list_customers(&mut conn, t, &filter).await? {
            hits.push(Hit {
                kind: "customer",
                path: "customers",
                id: customer.id.clone(),
                label: customer.name.to_string(),
                detail: email.to_string(),
            });
        }
    }
    if let Some(e) = entitlements_db::of_order(&mut conn, t, q).await? {
        hits.push(entitlement_hit(&e, "order reference"));
    }
    if q.starts_with("ent_") {
        if let Some(e) = entitlements_db::get(&mut conn, t, q).await? {
            hits.push(entitlement_hit(&e, "id"));
        }
    }
    if q.starts_with("cus_") {
        if let Some(customer) = customers_db::get_customer(&mut conn, t, q).await? {
            hits.push(Hit {
                kind: "customer",
                path: "customers",
                id: customer.id.clone(),
                label: customer.name.to_string(),
                detail: "id".into(),
            });
        }
    }
    Ok(hits)
}
