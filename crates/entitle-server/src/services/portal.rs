//! The end-user portal's use cases: signing in (emailed link, password, activation code),
//! sessions, and what each signed-in person may see and do. A customer's `admin` sees all of the
//! customer's entitlements; a `user` sees the entitlements where they hold seats, and only their
//! own seats; whoever signs in with an activation code sees that one entitlement.

use chrono::{DateTime, Duration, Utc};
use std::collections::BTreeSet;
use std::net::IpAddr;

use super::attempts::{Attempts, Budget, Refusal};
use super::{Actor, ActorKind, Ctx, Page, Paging, ServiceError, ServiceResult};
use crate::domain::keys::hash_secret;
use crate::domain::{ids, passwords, ActivationCode, Email, EndUser, EndUserRole, EntitlementView};
use crate::services::mail::MailSettings;
use crate::store::licensing::ActivationLogEntry;
use crate::store::portal as db;
use crate::store::{customers as customers_db, entitlements as entitlements_db, tenants as tenants_db, Store};

pub use super::sessions::SessionPolicy;

pub const REALM: &str = "portal";
const SUBJECT_END_USER: &str = "end_user";
const SUBJECT_ENTITLEMENT: &str = "entitlement";

/// Who is signed in, as far as what they may see goes.
#[derive(Debug, Clone)]
pub enum Viewer {
    /// A customer's end user (`admin` or `user`).
    EndUser(EndUser),
    /// Whoever holds one entitlement's activation code.
    CodeHolder { entitlement_id: String },
}

/// A live session.
#[derive(Debug, Clone)]
pub struct Session {
    pub token_hash: String,
    pub tenant_id: String,
    pub viewer: Viewer,
    /// The token every form of this session carries.
    pub csrf_token: String,
}

impl Session {
    /// The context use cases run in on this person's behalf.
    pub fn ctx(&self, ip: Option<IpAddr>) -> Ctx {
        let id = match &self.viewer {
            Viewer::EndUser(user) => Some(user.id.clone()),
            Viewer::CodeHolder { entitlement_id } => Some(format!("code:{entitlement_id}")),
        };
        Ctx {
            tenant_id: self.tenant_id.clone(),
            actor: Actor {
                kind: ActorKind::EndUser,
                id,
                ip: ip.map(|ip| ip.to_string()),
                adds_end_users: false,
            },
            now: super::now(),
        }
    }

    pub fn display_name(&self) -> String {
        match &self.viewer {
            Viewer::EndUser(user) => user.email.to_string(),
            Viewer::CodeHolder { .. } => "Signed in with a code".to_owned(),
        }
    }
}

/// Why signing in did not work.
#[derive(Debug, thiserror::Error)]
pub enum SignInError {
    #[error("the credentials are not valid")]
    Invalid,
    #[error("too many attempts; try again in {0} s")]
    RateLimited(u64),
    #[error("the server is busy; try again in {0} s")]
    Busy(u64),
    #[error(transparent)]
    Internal(#[from] ServiceError),
}

impl From<crate::store::StoreError> for SignInError {
    fn from(error: crate::store::StoreError) -> Self {
        SignInError::Internal(error.into())
    }
}

pub async fn tenant_exists(store: &Store, tenant_id: &str) -> ServiceResult<Option<String>> {
    if tenant_id.len() > 64 {
        return Ok(None);
    }
    let tenant = tenants_db::get(&mut *store.read().await?, tenant_id).await?;
    Ok(tenant.map(|t| t.name))
}

async fn open_session(
    store: &Store,
    policy: &SessionPolicy,
    tenant_id: &str,
    subject_kind: &str,
    subject_id: &str,
    ip: IpAddr,
) -> ServiceResult<String> {
    super::sessions::open(
        store,
        policy,
        REALM,
        tenant_id,
        (subject_kind, subject_id),
        ActorKind::EndUser,
        ip,
    )
    .await
}

/// The live session behind a cookie's token, for this tenant.
pub async fn session(
    store: &Store,
    policy: &SessionPolicy,
    tenant_id: &str,
    token: &str,
) -> ServiceResult<Option<Session>> {
    let Some(live) = super::sessions::live(store, policy, REALM, tenant_id, token).await? else {
        return Ok(None);
    };
    let stored = live.session;
    let viewer = match stored.subject_kind.as_str() {
        SUBJECT_END_USER => {
            match customers_db::get_end_user(&mut *store.read().await?, tenant_id, &stored.subject_id).await? {
                Some(user) => Viewer::EndUser(user),
                None => return Ok(None),
            }
        }
        SUBJECT_ENTITLEMENT => Viewer::CodeHolder {
            entitlement_id: stored.subject_id.clone(),
        },
        _ => return Ok(None),
    };
    Ok(Some(Session {
        token_hash: live.token_hash,
        tenant_id: stored.tenant_id,
        viewer,
        csrf_token: stored.csrf_token,
    }))
}

/// Ends a session on the server: its cookie no longer works anywhere.
pub async fn sign_out(store: &Store, session: &Session) -> ServiceResult<()> {
    super::sessions::end(store, &session.token_hash).await
}

async fn admit(
    attempts: &Attempts,
    store: &Store,
    budgets: &[Budget],
) -> Result<super::attempts::Admission, SignInError> {
    match attempts.admit(store, budgets).await? {
        Ok(admission) => Ok(admission),
        Err(Refusal::Exhausted { retry_after_seconds }) => Err(SignInError::RateLimited(retry_after_seconds)),
        Err(Refusal::Busy { retry_after_seconds }) => Err(SignInError::Busy(retry_after_seconds)),
    }
}

/// Signs in with an activation code: a session that sees that one entitlement.
pub async fn sign_in_with_code(
    store: &Store,
    attempts: &Attempts,
    policy: &SessionPolicy,
    tenant_id: &str,
    code: &str,
    ip: IpAddr,
) -> Result<String, SignInError> {
    let budgets = [
        Budget::address(Some(tenant_id), ip),
        Budget::code_prefix(tenant_id, code),
    ];
    let admission = admit(attempts, store, &budgets).await?;
    let found = match ActivationCode::parse(code) {
        Ok(code) => entitlements_db::find_by_code(&mut *store.read().await?, tenant_id, code.as_str()).await,
        Err(_) => Ok(None),
    };
    let failed = matches!(found, Ok(None));
    attempts.settle(store, admission, failed).await?;
    let entitlement = found?.ok_or(SignInError::Invalid)?;
    Ok(open_session(store, policy, tenant_id, SUBJECT_ENTITLEMENT, &entitlement.id, ip).await?)
}

/// Signs in an end user with their email and password (account-based licensing).
pub async fn sign_in_with_password(
    store: &Store,
    attempts: &Attempts,
    policy: &SessionPolicy,
    tenant_id: &str,
    email: &str,
    password: &str,
    ip: IpAddr,
) -> Result<String, SignInError> {
    let budgets = [Budget::address(Some(tenant_id), ip), Budget::account(tenant_id, email)];
    let admission = admit(attempts, store, &budgets).await?;
    let outcome = check_password(store, tenant_id, email, password).await;
    let failed = matches!(outcome, Ok(None));
    attempts.settle(store, admission, failed).await?;
    let user = outcome?.ok_or(SignInError::Invalid)?;
    Ok(open_session(store, policy, tenant_id, SUBJECT_END_USER, &user.id, ip).await?)
}

async fn check_password(store: &Store, tenant_id: &str, email: &str, password: &str) -> ServiceResult<Option<EndUser>> {
    let Ok(email) = Email::parse(email) else {
        return Ok(None);
    };
    let (user, hash) = {
        let mut conn = store.read().await?;
        let credentials = customers_db::end_user_credentials(&mut conn, tenant_id, email.as_str()).await?;
        let user = customers_db::find_end_user_by_email(&mut conn, tenant_id, &email).await?;
        (user, credentials.and_then(|(_, hash)| hash))
    };
    let password = password.to_owned();
    // Unknown users are checked against a dummy hash: both answers take the same time.
    let verified = super::hashing::run(move || passwords::verify(&password, hash.as_deref())).await?;
    Ok(user.filter(|_| verified))
}

/// Mails a single-use sign-in link to `email` if it is an end user of this tenant. The answer
/// is the same either way, so the form tells nobody who has an account.
pub async fn send_sign_in_link(
    store: &Store,
    attempts: &Attempts,
    settings: &MailSettings,
    policy: &SessionPolicy,
    tenant_id: &str,
    email: &str,
    ip: IpAddr,
) -> Result<(), SignInError> {
    let budgets = [Budget::address(Some(tenant_id), ip), Budget::account(tenant_id, email)];
    let admission = admit(attempts, store, &budgets).await?;
    let outcome = queue_sign_in_link(store, settings, policy, tenant_id, email, ip).await;
    // Every request counts: links are mail to a person, and asking is not free.
    attempts.settle(store, admission, true).await?;
    outcome?;
    Ok(())
}

/// Queues a sign-in link to an end user of this tenant (support's "send a sign-in link"; the
/// portal's form goes through [`send_sign_in_link`] and its budgets). Nothing for an unknown address.
pub async fn queue_sign_in_link(
    store: &Store,
    settings: &MailSettings,
    policy: &SessionPolicy,
    tenant_id: &str,
    email: &str,
    ip: IpAddr,
) -> ServiceResult<()> {
    let Ok(email) = Email::parse(email) else {
        return Ok(());
    };
    let now = super::now();
    let mut tx = store.begin().await?;
    let Some(user) = customers_db::find_end_user_by_email(&mut tx, tenant_id, &email).await? else {
        return Ok(());
    };
    let token = ids::random_token(32);
    let expires_at = now + policy.link_lifetime;
    db::insert_sign_in_link(&mut tx, &hash_secret(&token), tenant_id, &user.id, now, expires_at).await?;
    let ctx = Ctx {
        tenant_id: tenant_id.to_owned(),
        actor: Actor {
            kind: ActorKind::EndUser,
            id: Some(user.id.clone()),
            ip: Some(ip.to_string()),
            adds_end_users: false,
        },
        now,
    };
    let link = format!("{}/portal/{tenant_id}/sign-in/link/{token}", settings.public_url);
    super::mail::queue_sign_in_link(&mut tx, &ctx, settings, &user, &link, expires_at).await?;
    tx.commit().await?;
    store.mail_queued();
    Ok(())
}

/// Whether a sign-in link would still work (the confirmation page; nothing is used up).
pub async fn sign_in_link_valid(store: &Store, tenant_id: &str, token: &str) -> ServiceResult<bool> {
    if token.len() > 128 {
        return Ok(false);
    }
    Ok(db::sign_in_link_valid(&mut *store.read().await?, tenant_id, &hash_secret(token), super::now()).await?)
}

/// Uses a sign-in link (once) and opens a session for its end user.
pub async fn sign_in_with_link(
    store: &Store,
    policy: &SessionPolicy,
    tenant_id: &str,
    token: &str,
    ip: IpAddr,
) -> Result<String, SignInError> {
    if token.len() > 128 {
        return Err(SignInError::Invalid);
    }
    let used = db::use_sign_in_link(
        &mut *store.write_conn().await?,
        tenant_id,
        &hash_secret(token),
        super::now(),
    )
    .await?;
    let user_id = used.ok_or(SignInError::Invalid)?;
    Ok(open_session(store, policy, tenant_id, SUBJECT_END_USER, &user_id, ip).await?)
}

/// An entitlement as the portal lists it, with the names a person reads.
#[derive(Debug, Clone, serde::Serialize)]
pub struct PortalEntitlement {
    pub view: EntitlementView,
    pub product: String,
    pub edition: String,
    pub plan: String,
    /// `active`, `created`, `grace`, `expired`, `disabled`, or `expiring` (active, ending within
    /// 30 days).
    pub badge: String,
}

/// The ids of the seats (activations) this viewer may see on an entitlement, `None` for all.
async fn own_seats(store: &Store, session: &Session) -> ServiceResult<Option<BTreeSet<(String, String)>>> {
    match &session.viewer {
        Viewer::EndUser(user) if user.role == EndUserRole::User => {
            let seats = db::seats_of_end_user(&mut *store.read().await?, &session.tenant_id, &user.id).await?;
            Ok(Some(seats.into_iter().collect()))
        }
        _ => Ok(None),
    }
}

/// May this viewer see this entitlement?
async fn may_see(store: &Store, session: &Session, view: &EntitlementView) -> ServiceResult<bool> {
    Ok(match &session.viewer {
        Viewer::CodeHolder { entitlement_id } => *entitlement_id == view.id,
        Viewer::EndUser(user) if user.customer_id != view.customer_id => false,
        Viewer::EndUser(user) if user.role == EndUserRole::Admin => true,
        Viewer::EndUser(_) => own_seats(store, session)
            .await?
            .is_some_and(|seats| seats.iter().any(|(_, entitlement)| *entitlement == view.id)),
    })
}

fn badge(view: &EntitlementView, now: DateTime<Utc>) -> String {
    let status = serde_json::to_value(view.status)
        .ok()
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_default();
    let expiring = view
        .expires_at
        .is_some_and(|at| at > now && at - now <= Duration::days(30));
    if status == "active" && expiring {
        "expiring".to_owned()
    } else {
        status
    }
}

async fn describe(store: &Store, ctx: &Ctx, view: EntitlementView) -> ServiceResult<PortalEntitlement> {
    use super::catalogue;
    let product = catalogue::get_product(store, ctx, &view.product_id).await?;
    let offering = catalogue::get_offering(store, ctx, &view.offering_id).await?;
    let edition = catalogue::get_edition(store, ctx, &offering.edition_id).await?;
    let plan = catalogue::get_plan(store, ctx, &offering.plan_id).await?;
    Ok(PortalEntitlement {
        badge: badge(&view, ctx.now),
        product: product.name.to_string(),
        edition: edition.name.to_string(),
        plan: plan.name.to_string(),
        view,
    })
}

/// Everything the viewer may see, newest first.
pub async fn entitlements(store: &Store, session: &Session) -> ServiceResult<Vec<PortalEntitlement>> {
    let ctx = session.ctx(None);
    let views: Vec<EntitlementView> = match &session.viewer {
        Viewer::CodeHolder { entitlement_id } => {
            vec![super::entitlements::get(store, &ctx, entitlement_id).await?]
        }
        Viewer::EndUser(user) => {
            let query = super::entitlements::EntitlementQuery {
                customer_id: Some(user.customer_id.clone()),
                sku: None,
                order_ref: None,
                limit: crate::domain::PageLimit::new(200).ok(),
                after: None,
            };
            super::entitlements::list(store, &ctx, &query).await?.data
        }
    };
    let mut out = Vec::new();
    for view in views {
        if may_see(store, session, &view).await? {
            out.push(describe(store, &ctx, view).await?);
        }
    }
    out.reverse();
    Ok(out)
}

/// One entitlement, if the viewer may see it (`NotFound` otherwise: nothing tells it exists).
pub async fn entitlement(store: &Store, session: &Session, id: &str) -> ServiceResult<PortalEntitlement> {
    let ctx = session.ctx(None);
    let view = super::entitlements::get(store, &ctx, id).await?;
    if !may_see(store, session, &view).await? {
        return Err(ServiceError::NotFound("entitlement"));
    }
    describe(store, &ctx, view).await
}

/// The seats of an entitlement the viewer may see (a `user`: their own).
pub async fn seats(
    store: &Store,
    session: &Session,
    entitlement_id: &str,
) -> ServiceResult<Vec<crate::domain::licensing::Activation>> {
    entitlement(store, session, entitlement_id).await?;
    let ctx = session.ctx(None);
    let own = own_seats(store, session).await?;
    let paging = Paging {
        limit: crate::domain::PageLimit::new(200).ok(),
        after: None,
    };
    let page: Page<crate::domain::licensing::Activation> =
        super::licensing::list_activations(store, &ctx, entitlement_id, true, &paging).await?;
    Ok(page
        .data
        .into_iter()
        .filter(|a| own.as_ref().is_none_or(|own| own.iter().any(|(id, _)| *id == a.id)))
        .collect())
}

/// Frees a seat, as the vendor's revoke does: the application's next call is refused.
pub async fn release_seat(
    store: &Store,
    session: &Session,
    entitlement_id: &str,
    activation_id: &str,
    ip: IpAddr,
) -> ServiceResult<()> {
    let visible = seats(store, session, entitlement_id).await?;
    if !visible.iter().any(|a| a.id == activation_id) {
        return Err(ServiceError::NotFound("seat"));
    }
    super::licensing::revoke(store, &session.ctx(Some(ip)), activation_id).await?;
    Ok(())
}

/// Every entry of the entitlement's activation history, oldest first (a `user`: their seats').
pub async fn activation_history(
    store: &Store,
    session: &Session,
    entitlement_id: &str,
) -> ServiceResult<Vec<ActivationLogEntry>> {
    entitlement(store, session, entitlement_id).await?;
    let ctx = session.ctx(None);
    let own = own_seats(store, session).await?;
    let mut entries = Vec::new();
    let mut after = None;
    loop {
        let paging = Paging {
            limit: crate::domain::PageLimit::new(200).ok(),
            after,
        };
        let page = super::licensing::activation_log(store, &ctx, entitlement_id, &paging).await?;
        entries.extend(page.data.into_iter().filter(|entry| {
            own.as_ref().is_none_or(|own| {
                entry
                    .activation_id
                    .as_ref()
                    .is_some_and(|id| own.iter().any(|(seat, _)| seat == id))
            })
        }));
        match page.next_after {
            Some(next) if entries.len() < 100_000 => after = Some(next),
            _ => break,
        }
    }
    Ok(entries)
}

/// Seats per day and each metered feature's use per day over the last `days` days.
pub async fn usage(
    store: &Store,
    session: &Session,
    entitlement_id: &str,
    days: u32,
) -> ServiceResult<super::usage::EntitlementUsage> {
    entitlement(store, session, entitlement_id).await?;
    let ctx = session.ctx(None);
    let today = crate::domain::usage::day_of(ctx.now);
    let from = today
        .checked_sub_days(chrono::Days::new(u64::from(days.saturating_sub(1))))
        .unwrap_or(today);
    let range = crate::domain::usage::DayRange { from, to: today };
    super::usage::over_time(store, &ctx, entitlement_id, range).await
}
