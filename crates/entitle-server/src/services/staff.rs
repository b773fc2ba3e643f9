//! The vendor's staff and the console's sign-in: accounts made by the CLI (or, later, an admin in
//! the console), passwords chosen from a single-use link, sessions of the `admin` realm.

use chrono::Duration;
use std::net::IpAddr;

use super::attempts::{Attempts, Budget, Refusal};
use super::portal::SignInError;
use super::sessions::{self, SessionPolicy};
use super::{found, on_duplicate, record, Actor, ActorKind, Ctx, ServiceResult};
use crate::domain::keys::hash_secret;
use crate::domain::staff::{StaffMember, StaffRole};
use crate::domain::{ids, passwords, Email, RuleViolation};
use crate::store::staff as db;
use crate::store::{tenants as tenants_db, Store};

pub const REALM: &str = "admin";
const SUBJECT: &str = "staff";
/// How long a link to choose a password works.
const PASSWORD_LINK_LIFETIME: Duration = Duration::days(3);

/// A signed-in staff member.
#[derive(Debug, Clone)]
pub struct StaffSession {
    pub token_hash: String,
    pub member: StaffMember,
    pub csrf_token: String,
}

impl StaffSession {
    /// The context use cases run in on this member's behalf: events name them as the actor.
    pub fn ctx(&self, ip: Option<IpAddr>) -> Ctx {
        Ctx {
            tenant_id: self.member.tenant_id.clone(),
            actor: Actor {
                kind: ActorKind::Staff,
                id: Some(self.member.id.clone()),
                ip: ip.map(|ip| ip.to_string()),
                adds_end_users: self.member.role == StaffRole::Admin,
            },
            now: super::now(),
        }
    }
}

/// Adds a staff member and a link to choose their password (`public_url` + path + token).
pub async fn create(
    store: &Store,
    public_url: &str,
    tenant_id: &str,
    email: &str,
    role: StaffRole,
) -> ServiceResult<(StaffMember, String)> {
    let email = Email::parse(email)?;
    let now = super::now();
    let mut tx = store.begin().await?;
    found(tenants_db::get(&mut tx, tenant_id).await?, "tenant")?;
    let member = StaffMember {
        id: ids::new_id("stf"),
        tenant_id: tenant_id.to_owned(),
        email,
        role,
        created_at: now,
        updated_at: now,
        disabled_at: None,
    };
    db::insert(&mut tx, &member).await.map_err(on_duplicate(
        "staff_email_taken",
        "a staff member with this email exists",
    ))?;
    let token = ids::random_token(32);
    db::insert_password_link(
        &mut tx,
        &hash_secret(&token),
        tenant_id,
        &member.id,
        now,
        now + PASSWORD_LINK_LIFETIME,
    )
    .await?;
    let ctx = Ctx {
        tenant_id: tenant_id.to_owned(),
        actor: Actor::system(),
        now,
    };
    let summary = serde_json::json!({"email": member.email.as_str(), "role": role.as_str()});
    record(&mut tx, &ctx, "staff.created", "staff", &member.id, summary).await?;
    tx.commit().await?;
    Ok((
        member,
        format!("{public_url}/admin/{tenant_id}/set-password?token={token}"),
    ))
}

pub async fn password_link_valid(store: &Store, tenant_id: &str, token: &str) -> ServiceResult<bool> {
    if token.len() > 128 {
        return Ok(false);
    }
    Ok(db::password_link_valid(&mut *store.read().await?, tenant_id, &hash_secret(token), super::now()).await?)
}

/// Sets a member's password from their single-use link (looked up before any hashing).
pub async fn set_password_with_link(
    store: &Store,
    tenant_id: &str,
    token: &str,
    password: String,
) -> ServiceResult<()> {
    passwords::check_strength(&password)?;
    let invalid = || RuleViolation::new("invalid_link", "this link was used already or has expired");
    if !password_link_valid(store, tenant_id, token).await? {
        return Err(invalid().into());
    }
    let hash = super::hashing::run(move || passwords::hash(&password))
        .await?
        .map_err(|e| crate::store::StoreError::Other(anyhow::anyhow!("password hashing: {e}")))?;
    let now = super::now();
    let mut tx = store.begin().await?;
    let staff_id = db::use_password_link(&mut tx, tenant_id, &hash_secret(token), now)
        .await?
        .ok_or_else(invalid)?;
    db::set_password(&mut tx, tenant_id, &staff_id, &hash, now).await?;
    let ctx = Ctx {
        tenant_id: tenant_id.to_owned(),
        actor: Actor {
            kind: ActorKind::Staff,
            id: Some(staff_id.clone()),
            ip: None,
            adds_end_users: false,
        },
        now,
    };
    record(
        &mut tx,
        &ctx,
        "staff.password_set",
        "staff",
        &staff_id,
        serde_json::json!({}),
    )
    .await?;
    tx.commit().await?;
    Ok(())
}

/// Signs a staff member in with email and password, behind the attempt budgets.
pub async fn sign_in(
    store: &Store,
    attempts: &Attempts,
    policy: &SessionPolicy,
    tenant_id: &str,
    email: &str,
    password: &str,
    ip: IpAddr,
) -> Result<String, SignInError> {
    let budgets = [
        Budget::address(Some(tenant_id), ip),
        Budget::account(tenant_id, &format!("staff:{email}")),
    ];
    let admission = match attempts.admit(store, &budgets).await? {
        Ok(admission) => admission,
        Err(Refusal::Exhausted { retry_after_seconds }) => return Err(SignInError::RateLimited(retry_after_seconds)),
        Err(Refusal::Busy { retry_after_seconds }) => return Err(SignInError::Busy(retry_after_seconds)),
    };
    let outcome = check_password(store, tenant_id, email, password).await;
    attempts.settle(store, admission, matches!(outcome, Ok(None))).await?;
    let member = outcome?.ok_or(SignInError::Invalid)?;
    Ok(sessions::open(
        store,
        policy,
        REALM,
        tenant_id,
        (SUBJECT, &member.id),
        ActorKind::Staff,
        ip,
    )
    .await?)
}

async fn check_password(
    store: &Store,
    tenant_id: &str,
    email: &str,
    password: &str,
) -> ServiceResult<Option<StaffMember>> {
    let Ok(email) = Email::parse(email) else {
        return Ok(None);
    };
    let found = db::credentials(&mut *store.read().await?, tenant_id, email.as_str()).await?;
    let (member, hash) = match found {
        Some((member, hash)) if member.disabled_at.is_none() => (Some(member), hash),
        _ => (None, None),
    };
    let password = password.to_owned();
    // Unknown members are checked against a dummy hash: both answers take the same time.
    let verified = super::hashing::run(move || passwords::verify(&password, hash.as_deref())).await?;
    Ok(member.filter(|_| verified))
}

/// The live console session behind a cookie's secret, for this tenant.
pub async fn session(
    store: &Store,
    policy: &SessionPolicy,
    tenant_id: &str,
    token: &str,
) -> ServiceResult<Option<StaffSession>> {
    let Some(live) = sessions::live(store, policy, REALM, tenant_id, token).await? else {
        return Ok(None);
    };
    if live.session.subject_kind != SUBJECT {
        return Ok(None);
    }
    let member = db::get(&mut *store.read().await?, tenant_id, &live.session.subject_id).await?;
    Ok(member.filter(|m| m.disabled_at.is_none()).map(|member| StaffSession {
        token_hash: live.token_hash,
        member,
        csrf_token: live.session.csrf_token,
    }))
}

pub async fn sign_out(store: &Store, session: &StaffSession) -> ServiceResult<()> {
    sessions::end(store, &session.token_hash).await
}
