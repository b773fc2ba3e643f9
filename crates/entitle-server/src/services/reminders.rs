//! Expiry reminders and notices: before an entitlement expires (30, 7 and 1 days ahead, or the
//! plan's schedule), when its grace period starts and when it has expired, a mail to the
//! customer's admins and an `entitlement.expiring` / `.grace_started` / `.expired` event (and so
//! webhook). Skipped when the storefront subscription renews by itself. Each one is handled
//! exactly once per entitlement and due date, whichever instance scans first (a primary key); a
//! renewal moves the expiry, so the reminders of the old one never fall due.

use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};
use sqlx::AnyConnection;
use utoipa::ToSchema;

use super::mail::MailSettings;
use super::{found, record, Actor, Ctx, ServiceResult};
use crate::commerce::event::OrderState;
use crate::domain::reminders::{due, parse_schedule, renews_by_itself, Due, DEFAULT_DAYS_BEFORE};
use crate::domain::sender::clean_display_name;
use crate::domain::{ids, EndUserRole, Entitlement};
use crate::mail::templates::{EXPIRED, EXPIRING, GRACE_STARTED};
use crate::store::mail::OutboxMail;
use crate::store::reminders::{self as db, Key};
use crate::store::{catalogue as catalogue_db, customers as customers_db, entitlements as entitlements_db};
use crate::store::{mail as mail_db, tenants as tenants_db, Store};

/// Entitlements looked at per scan at most (the rest wait for the next scan).
const SCAN_LIMIT: i64 = 10_000;

/// What one scan did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct ScanReport {
    pub sent: usize,
    pub skipped: usize,
}

/// Handles every reminder due at `now`. The clock is a parameter so tests (and an operator
/// catching up) can scan at any time.
pub async fn scan(store: &Store, settings: &MailSettings, now: DateTime<Utc>) -> ServiceResult<ScanReport> {
    let candidates = {
        let mut conn = store.read().await?;
        db::candidates(
            &mut conn,
            now - Duration::days(400),
            now + Duration::days(366),
            SCAN_LIMIT,
        )
        .await?
    };
    let mut report = ScanReport::default();
    for (tenant_id, id) in candidates {
        let (entitlement, due) = {
            let mut conn = store.read().await?;
            let Some(e) = entitlements_db::get(&mut conn, &tenant_id, &id).await? else {
                continue;
            };
            let Some(due) = due_for(&mut conn, &tenant_id, &e, now).await? else {
                continue;
            };
            if db::handled(&mut conn, &key(&e, &due)?).await? {
                continue;
            }
            (e, due)
        };
        match handle(store, settings, &tenant_id, &entitlement, due, now).await? {
            Some(true) => report.sent += 1,
            Some(false) => report.skipped += 1,
            None => {}
        }
    }
    Ok(report)
}

fn key<'a>(e: &'a Entitlement, due: &Due) -> ServiceResult<Key<'a>> {
    Ok(Key {
        entitlement_id: &e.id,
        kind: due.kind.as_str(),
        expires_at: found(e.expires_at, "expiry")?,
        days_before: due.days_before,
    })
}

async fn due_for(
    conn: &mut AnyConnection,
    tenant_id: &str,
    e: &Entitlement,
    now: DateTime<Utc>,
) -> ServiceResult<Option<Due>> {
    let Some(expires_at) = e.expires_at else {
        return Ok(None);
    };
    if e.disabled_at.is_some() {
        return Ok(None);
    }
    let plan_id = catalogue_db::get_offering(conn, tenant_id, &e.offering_id)
        .await?
        .map(|o| o.plan_id);
    let schedule = match plan_id {
        Some(plan_id) => db::schedule(conn, tenant_id, &plan_id).await?,
        None => None,
    };
    let days = schedule.unwrap_or_else(|| DEFAULT_DAYS_BEFORE.to_vec());
    let grace_ends_at = e.terms.periods.grace_period.after(expires_at);
    Ok(due(e.starts_at, expires_at, grace_ends_at, &days, now))
}

/// Sends (`Some(true)`) or skips (`Some(false)`) one reminder; `None` if another instance had it.
async fn handle(
    store: &Store,
    settings: &MailSettings,
    tenant_id: &str,
    e: &Entitlement,
    due: Due,
    now: DateTime<Utc>,
) -> ServiceResult<Option<bool>> {
    let mut tx = store.begin().await?;
    let renews = match &e.order_ref {
        Some(order_ref) => {
            let refs = super::commerce::order_refs_of(order_ref);
            db::order_state(&mut tx, tenant_id, &refs)
                .await?
                .and_then(|state| serde_json::from_str::<OrderState>(&state).ok())
                .is_some_and(|order| renews_by_itself(&order))
        }
        None => false,
    };
    let outcome = if renews { "skipped_renews" } else { "sent" };
    if !db::take(&mut tx, tenant_id, &key(e, &due)?, outcome, now).await? {
        return Ok(None);
    }
    if !renews {
        let ctx = Ctx {
            tenant_id: tenant_id.to_owned(),
            actor: Actor::system(),
            now,
        };
        let recipients = queue_mails(&mut tx, &ctx, settings, e, &due).await?;
        let summary = serde_json::json!({
            "days_before": (due.kind == crate::domain::reminders::ReminderKind::Expiring).then_some(due.days_before),
            "expires_at": e.expires_at,
            "recipients": recipients,
        });
        record(&mut tx, &ctx, due.kind.action(), "entitlement", &e.id, summary).await?;
    }
    tx.commit().await?;
    store.mail_queued();
    Ok(Some(!renews))
}

/// The customer's admins: its own address and its admin end users.
async fn recipients(
    conn: &mut AnyConnection,
    ctx: &Ctx,
    customer_id: &str,
) -> ServiceResult<Vec<(String, Option<String>)>> {
    let mut out: Vec<(String, Option<String>)> = Vec::new();
    if let Some(customer) = customers_db::get_customer(conn, &ctx.tenant_id, customer_id).await? {
        if let Some(email) = customer.email {
            out.push((email.to_string(), None));
        }
    }
    let users = customers_db::list_end_users(conn, &ctx.tenant_id, Some(customer_id), "", 200).await?;
    for user in users.into_iter().filter(|u| u.role == EndUserRole::Admin) {
        let email = user.email.to_string();
        if !out.iter().any(|(known, _)| known.eq_ignore_ascii_case(&email)) {
            out.push((email, user.name.map(|n| n.to_string())));
        }
    }
    Ok(out)
}

async fn queue_mails(
    conn: &mut AnyConnection,
    ctx: &Ctx,
    settings: &MailSettings,
    e: &Entitlement,
    due: &Due,
) -> ServiceResult<Vec<String>> {
    use crate::domain::reminders::ReminderKind;
    let tenant = found(tenants_db::get(conn, &ctx.tenant_id).await?, "tenant")?;
    let customer = found(
        customers_db::get_customer(conn, &ctx.tenant_id, &e.customer_id).await?,
        "customer",
    )?;
    let product = catalogue_db::get_product(conn, &ctx.tenant_id, &e.product_id)
        .await?
        .map(|p| p.name.to_string())
        .unwrap_or_else(|| e.sku.to_string());
    let kind = match due.kind {
        ReminderKind::Expiring => EXPIRING,
        ReminderKind::GraceStarted => GRACE_STARTED,
        ReminderKind::Expired => EXPIRED,
    };
    let date = |at: Option<DateTime<Utc>>| at.map(|at| at.format("%Y-%m-%d").to_string());
    let grace_ends = e.expires_at.map(|at| e.terms.periods.grace_period.after(at));
    let mut sent = Vec::new();
    for (email, name) in recipients(conn, ctx, &e.customer_id).await? {
        let context = serde_json::json!({
            "tenant": {"name": tenant.name},
            "customer": {"name": customer.name.as_str()},
            "recipient": {"email": email, "name": name},
            "portal_url": format!("{}/portal/{}", settings.public_url, ctx.tenant_id),
            "days_before": due.days_before,
            "entitlement": {
                "id": e.id, "sku": e.sku.to_string(), "product": product, "seats": e.terms.seat_count,
                "expires": date(e.expires_at), "grace_ends": date(grace_ends),
            },
        });
        let mail = OutboxMail {
            id: ids::new_id("mail"),
            tenant_id: ctx.tenant_id.clone(),
            kind: kind.to_owned(),
            recipient: email.clone(),
            from_name: clean_display_name(&tenant.name),
            from_address: settings.sender.default_address().to_owned(),
            subject: None,
            text_body: String::new(),
            html_body: String::new(),
            entitlement_id: Some(e.id.clone()),
            customer_id: Some(e.customer_id.clone()),
            status: "queued".into(),
            attempts: 0,
            next_attempt_at: ctx.now,
            last_error: None,
            created_at: ctx.now,
            sent_at: None,
            render_context: Some(context.to_string()),
        };
        mail_db::enqueue(conn, &mail).await?;
        sent.push(email);
    }
    Ok(sent)
}

/// A plan's reminder schedule: whole days before expiry.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReminderSchedule {
    /// 1 to 10 whole days between 1 and 365 (default `[30, 7, 1]`).
    pub days_before: Vec<i64>,
}

pub async fn get_schedule(store: &Store, ctx: &Ctx, plan_id: &str) -> ServiceResult<ReminderSchedule> {
    let mut conn = store.read().await?;
    found(
        catalogue_db::get_plan(&mut conn, &ctx.tenant_id, plan_id).await?,
        "plan",
    )?;
    let days = db::schedule(&mut conn, &ctx.tenant_id, plan_id)
        .await?
        .unwrap_or_else(|| DEFAULT_DAYS_BEFORE.to_vec());
    Ok(ReminderSchedule { days_before: days })
}

pub async fn put_schedule(
    store: &Store,
    ctx: &Ctx,
    plan_id: &str,
    input: ReminderSchedule,
) -> ServiceResult<ReminderSchedule> {
    let days = parse_schedule(&input.days_before)?;
    let mut tx = store.begin().await?;
    found(catalogue_db::get_plan(&mut tx, &ctx.tenant_id, plan_id).await?, "plan")?;
    db::put_schedule(&mut tx, &ctx.tenant_id, plan_id, &days, ctx.now).await?;
    record(
        &mut tx,
        ctx,
        "plan.reminder_schedule_set",
        "plan",
        plan_id,
        serde_json::json!({"days_before": days}),
    )
    .await?;
    tx.commit().await?;
    Ok(ReminderSchedule { days_before: days })
}
