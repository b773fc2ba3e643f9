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
use crate::domain::{ids, passwords, totp, Email, RuleViolation};
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

/// Adds a staff member and a link to choose their password (`public_url` + path + token), as the
/// system (the CLI).
pub async fn create(
    store: &Store,
    public_url: &str,
    tenant_id: &str,
    email: &str,
    role: StaffRole,
) -> ServiceResult<(StaffMember, String)> {
    let ctx = Ctx {
        tenant_id: tenant_id.to_owned(),
        actor: Actor::system(),
        now: super::now(),
    };
    let mut tx = store.begin().await?;
    found(tenants_db::get(&mut tx, tenant_id).await?, "tenant")?;
    let (member, link, _) = insert_member(&mut tx, &ctx, public_url, email, role).await?;
    tx.commit().await?;
    Ok((member, link))
}

/// The member, their password link and when it expires, in the caller's transaction.
async fn insert_member(
    conn: &mut sqlx::AnyConnection,
    ctx: &Ctx,
    public_url: &str,
    email: &str,
    role: StaffRole,
) -> ServiceResult<(StaffMember, String, chrono::DateTime<chrono::Utc>)> {
    let email = Email::parse(email)?;
    let (tenant_id, now) = (ctx.tenant_id.as_str(), ctx.now);
    let member = StaffMember {
        id: ids::new_id("stf"),
        tenant_id: tenant_id.to_owned(),
        email,
        role,
        created_at: now,
        updated_at: now,
        disabled_at: None,
    };
    db::insert(conn, &member).await.map_err(on_duplicate(
        "staff_email_taken",
        "a staff member with this email exists",
    ))?;
    let token = ids::random_token(32);
    let expires_at = now + PASSWORD_LINK_LIFETIME;
    db::insert_password_link(conn, &hash_secret(&token), tenant_id, &member.id, now, expires_at).await?;
    let summary = serde_json::json!({"email": member.email.as_str(), "role": role.as_str()});
    record(conn, ctx, "staff.created", "staff", &member.id, summary).await?;
    let link = format!("{public_url}/admin/{tenant_id}/set-password?token={token}");
    Ok((member, link, expires_at))
}

/// An admin adds a member from the console: the member, and an invitation mail with the link to
/// choose their password (the link is never shown to the admin: it is the new member's secret).
pub async fn invite(
    store: &Store,
    ctx: &Ctx,
    settings: &super::mail::MailSettings,
    email: &str,
    role: StaffRole,
) -> ServiceResult<StaffMember> {
    let mut tx = store.begin().await?;
    let (member, link, expires_at) = insert_member(&mut tx, ctx, &settings.public_url, email, role).await?;
    super::mail::queue_invitation(&mut tx, ctx, settings, &member, &link, expires_at).await?;
    tx.commit().await?;
    store.mail_queued();
    Ok(member)
}

pub async fn list(store: &Store, ctx: &Ctx) -> ServiceResult<Vec<StaffMember>> {
    Ok(db::list(&mut *store.read().await?, &ctx.tenant_id).await?)
}

/// Members may not change their own role or disable themselves: a console must not lose its
/// last admin by a slip, and another admin can always do it.
fn not_self(ctx: &Ctx, id: &str) -> ServiceResult<()> {
    if ctx.actor.kind == ActorKind::Staff && ctx.actor.id.as_deref() == Some(id) {
        return Err(RuleViolation::new("own_account", "you cannot change your own role or disable yourself").into());
    }
    Ok(())
}

pub async fn set_role(store: &Store, ctx: &Ctx, id: &str, role: StaffRole) -> ServiceResult<StaffMember> {
    not_self(ctx, id)?;
    let mut tx = store.begin().await?;
    let before = found(db::get(&mut tx, &ctx.tenant_id, id).await?, "staff member")?;
    if before.role != role {
        db::set_role(&mut tx, &ctx.tenant_id, id, role, ctx.now).await?;
        let summary = serde_json::json!({"role": {"before": before.role.as_str(), "after": role.as_str()}});
        record(&mut tx, ctx, "staff.role_changed", "staff", id, summary).await?;
    }
    let member = found(db::get(&mut tx, &ctx.tenant_id, id).await?, "staff member")?;
    tx.commit().await?;
    Ok(member)
}

/// Disables a member: they cannot sign in, and their open sessions stop working at once
/// ([`session`] refuses disabled members).
pub async fn disable(store: &Store, ctx: &Ctx, id: &str) -> ServiceResult<StaffMember> {
    not_self(ctx, id)?;
    let mut tx = store.begin().await?;
    found(db::get(&mut tx, &ctx.tenant_id, id).await?, "staff member")?;
    if db::disable(&mut tx, &ctx.tenant_id, id, ctx.now).await? {
        record(&mut tx, ctx, "staff.disabled", "staff", id, serde_json::json!({})).await?;
    }
    let member = found(db::get(&mut tx, &ctx.tenant_id, id).await?, "staff member")?;
    tx.commit().await?;
    Ok(member)
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

/// What a correct password leads to.
#[derive(Debug)]
pub enum SignedIn {
    /// A session (the cookie's secret).
    Session(String),
    /// The member has a second factor: a short-lived pending session (its secret) that only
    /// [`complete_second_factor`] turns into a session.
    SecondFactor(String),
}

const PENDING: &str = "staff_pending";

/// How long a password-checked sign-in waits for its code.
fn pending_policy() -> SessionPolicy {
    SessionPolicy {
        idle: Duration::minutes(5),
        absolute: Duration::minutes(5),
        ..SessionPolicy::default()
    }
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

/// Signs a staff member in with email and password, behind the attempt budgets.
pub async fn sign_in(
    store: &Store,
    attempts: &Attempts,
    policy: &SessionPolicy,
    tenant_id: &str,
    email: &str,
    password: &str,
    ip: IpAddr,
) -> Result<SignedIn, SignInError> {
    let budgets = [
        Budget::address(Some(tenant_id), ip),
        Budget::account(tenant_id, &format!("staff:{email}")),
    ];
    let admission = admit(attempts, store, &budgets).await?;
    let outcome = check_password(store, tenant_id, email, password).await;
    attempts.settle(store, admission, matches!(outcome, Ok(None))).await?;
    let member = outcome?.ok_or(SignInError::Invalid)?;
    let has_second_factor = db::totp(&mut *store.read().await?, tenant_id, &member.id)
        .await?
        .is_some();
    if has_second_factor {
        let pending = sessions::open(
            store,
            &pending_policy(),
            REALM,
            tenant_id,
            (PENDING, &member.id),
            ActorKind::Staff,
            ip,
        )
        .await?;
        return Ok(SignedIn::SecondFactor(pending));
    }
    let token = sessions::open(
        store,
        policy,
        REALM,
        tenant_id,
        (SUBJECT, &member.id),
        ActorKind::Staff,
        ip,
    )
    .await?;
    Ok(SignedIn::Session(token))
}

/// The second step: the code from the member's authenticator turns a pending sign-in into a
/// session. Each code works once; wrong codes draw on the attempt budgets.
pub async fn complete_second_factor(
    store: &Store,
    attempts: &Attempts,
    policy: &SessionPolicy,
    tenant_id: &str,
    pending: &str,
    code: &str,
    ip: IpAddr,
) -> Result<String, SignInError> {
    let Some(live) = sessions::live(store, &pending_policy(), REALM, tenant_id, pending).await? else {
        return Err(SignInError::Invalid);
    };
    if live.session.subject_kind != PENDING {
        return Err(SignInError::Invalid);
    }
    let member_id = live.session.subject_id.clone();
    let budgets = [
        Budget::address(Some(tenant_id), ip),
        Budget::account(tenant_id, &format!("staff-totp:{member_id}")),
    ];
    let admission = admit(attempts, store, &budgets).await?;
    let outcome = check_code(store, tenant_id, &member_id, code).await;
    attempts.settle(store, admission, matches!(outcome, Ok(false))).await?;
    if !outcome? {
        return Err(SignInError::Invalid);
    }
    sessions::end(store, &live.token_hash).await?;
    Ok(sessions::open(
        store,
        policy,
        REALM,
        tenant_id,
        (SUBJECT, &member_id),
        ActorKind::Staff,
        ip,
    )
    .await?)
}

/// Checks a member's current code and uses its time step up (a replayed code is refused).
async fn check_code(store: &Store, tenant_id: &str, member_id: &str, code: &str) -> ServiceResult<bool> {
    let Some((secret, _)) = db::totp(&mut *store.read().await?, tenant_id, member_id).await? else {
        return Ok(false);
    };
    let Some(secret) = totp::base32_decode(&secret) else {
        return Ok(false);
    };
    let Some(step) = totp::matching_step(&secret, code, super::now().timestamp()) else {
        return Ok(false);
    };
    Ok(db::use_totp_step(&mut *store.write_conn().await?, tenant_id, member_id, step).await?)
}

/// Whether the member signs in with a second factor.
pub async fn has_second_factor(store: &Store, session: &StaffSession) -> ServiceResult<bool> {
    Ok(
        db::totp(&mut *store.read().await?, &session.member.tenant_id, &session.member.id)
            .await?
            .is_some(),
    )
}

/// Turns the second factor on with a new secret, once a code from it proves the app has it.
pub async fn enable_second_factor(
    store: &Store,
    session: &StaffSession,
    secret: &str,
    code: &str,
    ip: IpAddr,
) -> ServiceResult<()> {
    let wrong = || {
        RuleViolation::new(
            "invalid_code",
            "that code does not match: check the app's clock and try the next one",
        )
    };
    let bytes = totp::base32_decode(secret)
        .filter(|b| b.len() >= 16)
        .ok_or_else(wrong)?;
    let step = totp::matching_step(&bytes, code, super::now().timestamp()).ok_or_else(wrong)?;
    let ctx = session.ctx(Some(ip));
    let mut tx = store.begin().await?;
    db::set_totp(&mut tx, &ctx.tenant_id, &session.member.id, Some(secret), Some(step)).await?;
    record(
        &mut tx,
        &ctx,
        "staff.second_factor_enabled",
        "staff",
        &session.member.id,
        serde_json::json!({}),
    )
    .await?;
    tx.commit().await?;
    Ok(())
}

/// Turns the second factor off; a current code is required.
pub async fn disable_second_factor(store: &Store, session: &StaffSession, code: &str, ip: IpAddr) -> ServiceResult<()> {
    let ctx = session.ctx(Some(ip));
    if !check_code(store, &ctx.tenant_id, &session.member.id, code).await? {
        return Err(RuleViolation::new("invalid_code", "that code does not match").into());
    }
    let mut tx = store.begin().await?;
    db::set_totp(&mut tx, &ctx.tenant_id, &session.member.id, None, None).await?;
    record(
        &mut tx,
        &ctx,
        "staff.second_factor_disabled",
        "staff",
        &session.member.id,
        serde_json::json!({}),
    )
    .await?;
    tx.commit().await?;
    Ok(())
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
