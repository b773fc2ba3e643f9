//! The licensing API's use cases: activation, leases, seats, features and usage, online and
//! offline. Each write is one transaction; nothing here signs (the HTTP layer signs after the
//! transaction has committed, so no lock is held while signing).

use super::webhooks;
use crate::domain::webhooks::{limit_crossed, seat_signal, EventType};
use chrono::{DateTime, Utc};
use entitle_protocol::{ActivateRequest, LeaseClaims, OfflineDeactivationRequest};
use sqlx::AnyConnection;

use super::lease_writer::{Extension, LeaseWriter};
use super::usage;
use super::{found, record, Ctx, Page, Paging, ServiceError, ServiceResult};
use crate::domain::keys::hash_secret;
use crate::domain::licensing::{
    check_nonce, check_seat_id, check_usable, lease_claims, lease_expiry, offline_expiry, seat_ceiling, Activation,
    Denial,
};
use crate::domain::{
    field, ids, initial_period, passwords, ActivationCode, ConcurrencyMode, Email, Entitlement, FeatureKind, PlanStart,
    PlanTerms,
};
use crate::store::entitlements as entitlements_db;
use crate::store::licensing::{self as db, ActivationLogEntry};
use crate::store::{customers as customers_db, Store, StoreError};

#[derive(Debug, thiserror::Error)]
pub enum LicensingError {
    #[error("{}", .0.message())]
    Denied(Denial),
    #[error("{0}")]
    BadRequest(String),
    #[error(transparent)]
    Internal(#[from] ServiceError),
}

impl From<Denial> for LicensingError {
    fn from(denial: Denial) -> Self {
        LicensingError::Denied(denial)
    }
}

impl From<StoreError> for LicensingError {
    fn from(error: StoreError) -> Self {
        LicensingError::Internal(ServiceError::Store(error))
    }
}

impl From<sqlx::Error> for LicensingError {
    fn from(error: sqlx::Error) -> Self {
        LicensingError::Internal(error.into())
    }
}

type Result<T> = std::result::Result<T, LicensingError>;

fn bad(violation: crate::domain::RuleViolation) -> LicensingError {
    LicensingError::BadRequest(violation.message)
}

/// Where and when a licensing request comes from.
#[derive(Debug, Clone)]
pub struct Origin {
    pub ip: Option<String>,
    pub now: DateTime<Utc>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Online,
    Offline,
}

impl Mode {
    fn as_str(self) -> &'static str {
        match self {
            Mode::Online => "online",
            Mode::Offline => "offline",
        }
    }
}

/// A lease to sign and hand out.
pub struct Lease {
    pub tenant_id: String,
    pub claims: LeaseClaims,
}

pub struct Activated {
    pub activation_id: String,
    pub secret: String,
    pub lease: Lease,
}

fn log_entry(
    activation_id: Option<&str>,
    seat_id: &str,
    action: &str,
    code: Option<&str>,
    origin: &Origin,
) -> ActivationLogEntry {
    ActivationLogEntry {
        id: ids::new_id("alg"),
        activation_id: activation_id.map(str::to_owned),
        seat_id: seat_id.to_owned(),
        action: action.to_owned(),
        code: code.map(str::to_owned),
        ip: origin.ip.clone(),
        created_at: origin.now,
    }
}

/// Denials are logged on their own: the transaction that found them has rolled back.
async fn log_denial(
    store: &Store,
    tenant_id: &str,
    entitlement_id: &str,
    activation_id: Option<&str>,
    seat_id: &str,
    denial: Denial,
    origin: &Origin,
) {
    let entry = log_entry(activation_id, seat_id, "denied", Some(denial.code()), origin);
    let logged = async {
        let mut conn = store.write_conn().await?;
        db::log(&mut conn, tenant_id, entitlement_id, &entry).await
    };
    if let Err(error) = logged.await {
        tracing::warn!(%error, "could not log a licensing denial");
    }
}

/// Runs `attempt` and logs a denial it ends in against the entitlement.
async fn logging_denials<T>(
    store: &Store,
    tenant_id: &str,
    entitlement_id: &str,
    activation_id: Option<&str>,
    seat_id: &str,
    origin: &Origin,
    attempt: impl std::future::Future<Output = Result<T>>,
) -> Result<T> {
    let outcome = attempt.await;
    if let Err(LicensingError::Denied(denial)) = &outcome {
        log_denial(
            store,
            tenant_id,
            entitlement_id,
            activation_id,
            seat_id,
            *denial,
            origin,
        )
        .await;
    }
    outcome
}

/// The entitlement a credential opens for this product.
async fn entitlement_for(store: &Store, request: &ActivateRequest) -> Result<Entitlement> {
    let mut conn = store.read().await?;
    if let Some(code) = &request.activation_code {
        let code = ActivationCode::parse(code).map_err(|_| Denial::InvalidCredential)?;
        let entitlement = entitlements_db::find_by_code(&mut conn, &request.tenant, code.as_str())
            .await?
            .filter(|e| e.product_id == request.product)
            .ok_or(Denial::InvalidCredential)?;
        return Ok(entitlement);
    }
    let (Some(email), Some(password)) = (&request.email, &request.password) else {
        return Err(LicensingError::BadRequest(
            "send an activation_code, or an email and password".into(),
        ));
    };
    let account = match Email::parse(email.as_str()) {
        Ok(email) => customers_db::end_user_credentials(&mut conn, &request.tenant, email.as_str()).await?,
        Err(_) => None,
    };
    let (customer_id, hash) = match account {
        Some((customer_id, hash)) => (Some(customer_id), hash),
        None => (None, None),
    };
    let password = password.clone();
    // No pool connection is held while waiting for the hashing pool.
    drop(conn);
    let verified = super::hashing::run(move || passwords::verify(&password, hash.as_deref())).await?;
    let mut conn = store.read().await?;
    let Some(customer_id) = customer_id.filter(|_| verified) else {
        return Err(Denial::InvalidCredential.into());
    };
    let now = super::now();
    let candidates =
        entitlements_db::of_customer_for_product(&mut conn, &request.tenant, &customer_id, &request.product).await?;
    // Prefer an entitlement that can hold a seat now; otherwise answer with why the first cannot.
    let usable = candidates
        .iter()
        .position(|e| check_usable(e.status(now)).is_ok() || e.starts_at.is_none());
    let chosen = usable.or(if candidates.is_empty() { None } else { Some(0) });
    chosen
        .map(|i| candidates[i].clone())
        .ok_or(Denial::InvalidCredential.into())
}

fn check_request(nonce: &str, seat_id: &str, seat_name: Option<&str>) -> Result<()> {
    check_nonce(nonce).map_err(bad)?;
    check_seat_id(seat_id).map_err(bad)?;
    if seat_name.is_some_and(|n| n.chars().count() > 200 || n.chars().any(char::is_control)) {
        return Err(LicensingError::BadRequest(
            "a seat name has at most 200 printable characters".into(),
        ));
    }
    Ok(())
}

/// `POST /licensing/v1/activate` (and offline activation): takes or re-takes a seat.
#[tracing::instrument(skip_all, fields(tenant_id = %request.tenant, entitlement_id = tracing::field::Empty))]
pub async fn activate(store: &Store, request: &ActivateRequest, mode: Mode, origin: &Origin) -> Result<Activated> {
    check_request(&request.nonce, &request.seat_id, request.seat_name.as_deref())?;
    let entitlement = entitlement_for(store, request).await?;
    tracing::Span::current().record("entitlement_id", entitlement.id.as_str());
    let tenant_id = request.tenant.clone();
    logging_denials(
        store,
        &tenant_id,
        &entitlement.id,
        None,
        &request.seat_id,
        origin,
        async { take_seat(store, &tenant_id, &entitlement.id, request, mode, origin).await },
    )
    .await
}

async fn take_seat(
    store: &Store,
    tenant_id: &str,
    entitlement_id: &str,
    request: &ActivateRequest,
    mode: Mode,
    origin: &Origin,
) -> Result<Activated> {
    let now = origin.now;
    let mut tx = store.begin().await?;
    entitlements_db::lock(&mut tx, store.backend(), tenant_id, entitlement_id).await?;
    let mut e = entitlements_db::get(&mut tx, tenant_id, entitlement_id)
        .await?
        .ok_or(Denial::InvalidCredential)?;
    if e.starts_at.is_none() && e.disabled_at.is_none() {
        start_now(&mut tx, &mut e, now).await?;
    }
    check_usable(e.status(now))?;
    let periods = e.terms.periods;
    let lease_expires_at = match mode {
        Mode::Online => lease_expiry(now, periods.lease_period, e.expires_at, periods.grace_period),
        Mode::Offline => offline_expiry(now, periods.offline_lease_period, e.expires_at, periods.grace_period)
            .ok_or(Denial::OfflineNotAllowed)?,
    };
    let secret = format!("eas_{}", ids::random_token(32));
    let secret_hash = hash_secret(&secret);
    let (activation, seats_taken) = match db::live_activation(&mut tx, entitlement_id, &request.seat_id).await? {
        Some(mut existing) => {
            // The same device again: it keeps its seat and gets fresh credentials.
            existing.seat_name = request.seat_name.clone().or(existing.seat_name);
            existing.mode = mode.as_str().to_owned();
            existing.last_lease_at = now;
            existing.lease_expires_at = lease_expires_at;
            existing.ip = origin.ip.clone();
            db::renew_activation(&mut tx, &existing, &secret_hash).await?;
            (existing, None)
        }
        None => {
            let reclaimed_from = if e.terms.concurrency_mode == ConcurrencyMode::Concurrent {
                reclaim_lapsed_seats(&mut tx, tenant_id, entitlement_id, origin).await?
            } else {
                None
            };
            let ceiling = seat_ceiling(e.terms.seat_count, e.terms.overdraft.allowance(e.terms.seat_count));
            let seats_used = db::take_seat(&mut tx, entitlement_id, ceiling)
                .await?
                .ok_or(Denial::SeatLimitReached)?;
            // Reclaiming and taking commit together: nobody saw the count in between, so the
            // rollup records one change, from the count before reclaiming.
            let before = reclaimed_from.unwrap_or(seats_used - 1);
            usage::note_seats(
                &mut tx,
                tenant_id,
                entitlement_id,
                now,
                (before, seats_used),
                (e.terms.seat_count, e.terms.overdraft),
            )
            .await?;
            let activation = Activation {
                id: ids::new_id("act"),
                entitlement_id: entitlement_id.to_owned(),
                seat_id: request.seat_id.clone(),
                seat_name: request.seat_name.clone(),
                mode: mode.as_str().to_owned(),
                overdraft: seats_used > e.terms.seat_count,
                activated_at: now,
                last_lease_at: now,
                lease_expires_at,
                linger_expires_at: periods.linger_period.after(now),
                deactivated_at: None,
                deactivation_reason: None,
                ip: origin.ip.clone(),
            };
            db::insert_activation(&mut tx, tenant_id, &activation, &secret_hash).await?;
            (activation, Some(seats_used))
        }
    };
    if let Some(email) = request.email.as_deref().and_then(|email| Email::parse(email).ok()) {
        // A seat taken with an account is that end user's: the portal shows a `user` their own.
        if let Some(user) = customers_db::find_end_user_by_email(&mut tx, tenant_id, &email).await? {
            crate::store::portal::set_seat_holder(&mut tx, tenant_id, &activation.id, &user.id).await?;
        }
    }
    let entry = log_entry(Some(&activation.id), &activation.seat_id, "activate", None, origin);
    db::log(&mut tx, tenant_id, entitlement_id, &entry).await?;
    if let Some(seats_used) = seats_taken {
        webhooks::emit_now(&mut tx, tenant_id, EventType::ActivationCreated, &activation.id, now).await?;
        if let Some(signal) = seat_signal(seats_used, e.terms.seat_count) {
            webhooks::emit_now(&mut tx, tenant_id, signal, entitlement_id, now).await?;
        }
    }
    tx.commit().await?;
    let lease = lease_for(
        store,
        tenant_id,
        &activation,
        lease_expires_at,
        Some(request.nonce.clone()),
        now,
    )
    .await?;
    Ok(Activated {
        activation_id: activation.id,
        secret,
        lease,
    })
}

/// Starts an entitlement whose plan starts on first activation.
async fn start_now(conn: &mut AnyConnection, e: &mut Entitlement, now: DateTime<Utc>) -> Result<()> {
    let plan = PlanTerms {
        start: PlanStart::OnCreation,
        ..e.plan
    };
    let (starts_at, base_expires_at) = initial_period(&plan, now);
    let expires_at = if e.overrides.contains(field::EXPIRES_AT) {
        e.expires_at
    } else {
        base_expires_at
    };
    db::start_entitlement(conn, &e.id, now, base_expires_at, expires_at).await?;
    e.starts_at = starts_at;
    e.base_expires_at = base_expires_at;
    e.expires_at = expires_at;
    Ok(())
}

/// Concurrent seats whose lease and linger period ran out go back to the pool, with their units.
/// Answers the seats in use before, if any were released.
async fn reclaim_lapsed_seats(
    conn: &mut AnyConnection,
    tenant_id: &str,
    entitlement_id: &str,
    origin: &Origin,
) -> Result<Option<i64>> {
    let lapsed = db::reclaim_lapsed(conn, entitlement_id, origin.now).await?;
    for activation_id in &lapsed {
        db::give_back_all(conn, activation_id).await?;
    }
    let released = lapsed.len() as i64;
    let before = db::release_seats(conn, entitlement_id, released)
        .await?
        .map(|r| r.seats_used + released);
    for activation_id in &lapsed {
        let mut entry = log_entry(Some(activation_id), "", "deactivate", Some("lapsed"), origin);
        entry.seat_id = activation_id.clone();
        db::log(conn, tenant_id, entitlement_id, &entry).await?;
    }
    Ok(before)
}

/// Reads the entitlement afresh and builds the activation's lease claims.
async fn lease_for(
    store: &Store,
    tenant_id: &str,
    activation: &Activation,
    lease_expires_at: DateTime<Utc>,
    nonce: Option<String>,
    now: DateTime<Utc>,
) -> Result<Lease> {
    let mut conn = store.read().await?;
    let e = entitlements_db::get(&mut conn, tenant_id, &activation.entitlement_id)
        .await?
        .ok_or(Denial::InvalidActivation)?;
    claims_for(&mut conn, tenant_id, activation, &e, lease_expires_at, nonce, now).await
}

async fn claims_for(
    conn: &mut AnyConnection,
    tenant_id: &str,
    activation: &Activation,
    e: &Entitlement,
    lease_expires_at: DateTime<Utc>,
    nonce: Option<String>,
    now: DateTime<Utc>,
) -> Result<Lease> {
    let has_pools = e.terms.features.values().any(|g| g.kind == FeatureKind::ElementPool);
    let checkouts = if has_pools {
        db::checkouts_of(conn, &activation.id).await?
    } else {
        Vec::new()
    };
    Ok(Lease {
        tenant_id: tenant_id.to_owned(),
        claims: lease_claims(tenant_id, activation, e, &checkouts, lease_expires_at, now, nonce),
    })
}

/// The live activation behind a bearer secret, with its tenant and entitlement.
struct Holder {
    tenant_id: String,
    activation: Activation,
    entitlement: Entitlement,
    /// Pool units this activation holds: (feature id, units).
    checkouts: Vec<(String, i64)>,
}

impl Holder {
    fn lease(&self, lease_expires_at: DateTime<Utc>, nonce: &str, now: DateTime<Utc>) -> Lease {
        let (a, e) = (&self.activation, &self.entitlement);
        Lease {
            tenant_id: self.tenant_id.clone(),
            claims: lease_claims(
                &self.tenant_id,
                a,
                e,
                &self.checkouts,
                lease_expires_at,
                now,
                Some(nonce.to_owned()),
            ),
        }
    }
}

/// Finds the holder of `secret` in three queries. Holds one connection only while reading: a
/// request never waits for a second connection while holding one, so a busy pool cannot deadlock.
async fn holder(store: &Store, secret: &str) -> Result<std::result::Result<Holder, (String, Activation, Denial)>> {
    let mut conn = store.read().await?;
    let (tenant_id, activation, entitlement, checkouts) =
        entitlements_db::for_activation_secret(&mut conn, &hash_secret(secret))
            .await?
            .ok_or(Denial::InvalidActivation)?;
    if activation.deactivated_at.is_some() {
        let denial = if activation.deactivation_reason.as_deref() == Some("lapsed") {
            Denial::LeaseExpired
        } else {
            Denial::InvalidActivation
        };
        return Ok(Err((tenant_id, activation, denial)));
    }
    Ok(Ok(Holder {
        tenant_id,
        activation,
        entitlement,
        checkouts,
    }))
}

/// Runs `body` for the live activation behind `secret`, logging the denial it may end in.
/// Names the tenant, entitlement and activation in the licensing call's span once the secret has
/// been resolved (the span is opened before anything is known but the secret).
fn record_ids(tenant_id: &str, entitlement_id: &str, activation_id: &str) {
    let span = tracing::Span::current();
    span.record("tenant_id", tenant_id);
    span.record("entitlement_id", entitlement_id);
    span.record("activation_id", activation_id);
}

async fn as_holder<T>(
    store: &Store,
    secret: &str,
    origin: &Origin,
    body: impl AsyncFnOnce(&Holder) -> Result<T>,
) -> Result<T> {
    let holder = match holder(store, secret).await? {
        Ok(holder) => holder,
        Err((tenant_id, a, denial)) => {
            record_ids(&tenant_id, &a.entitlement_id, &a.id);
            log_denial(
                store,
                &tenant_id,
                &a.entitlement_id,
                Some(&a.id),
                &a.seat_id,
                denial,
                origin,
            )
            .await;
            return Err(denial.into());
        }
    };
    record_ids(
        &holder.tenant_id,
        &holder.activation.entitlement_id,
        &holder.activation.id,
    );
    let outcome = body(&holder).await;
    if let Err(LicensingError::Denied(denial)) = &outcome {
        let a = &holder.activation;
        log_denial(
            store,
            &holder.tenant_id,
            &a.entitlement_id,
            Some(&a.id),
            &a.seat_id,
            *denial,
            origin,
        )
        .await;
    }
    outcome
}

/// `POST /licensing/v1/activation/refresh`: a new lease, never past the grace period's end.
#[tracing::instrument(skip_all, fields(tenant_id = tracing::field::Empty, entitlement_id = tracing::field::Empty, activation_id = tracing::field::Empty))]
pub async fn refresh(store: &Store, writer: &LeaseWriter, secret: &str, nonce: &str, origin: &Origin) -> Result<Lease> {
    check_nonce(nonce).map_err(bad)?;
    as_holder(store, secret, origin, async |h| {
        let e = &h.entitlement;
        check_usable(e.status(origin.now))?;
        let periods = e.terms.periods;
        let lease_expires_at = match h.activation.mode.as_str() {
            "offline" => offline_expiry(
                origin.now,
                periods.offline_lease_period,
                e.expires_at,
                periods.grace_period,
            )
            .ok_or(Denial::OfflineNotAllowed)?,
            _ => lease_expiry(origin.now, periods.lease_period, e.expires_at, periods.grace_period),
        };
        let extension = Extension {
            tenant_id: h.tenant_id.clone(),
            entitlement_id: e.id.clone(),
            activation_id: h.activation.id.clone(),
            lease_expires_at,
            log: log_entry(Some(&h.activation.id), &h.activation.seat_id, "refresh", None, origin),
        };
        if !writer.extend(extension).await? {
            return Err(Denial::LeaseExpired.into());
        }
        Ok(h.lease(lease_expires_at, nonce, origin.now))
    })
    .await
}

/// `GET /licensing/v1/activation`: the current lease, unchanged.
#[tracing::instrument(skip_all, fields(tenant_id = tracing::field::Empty, entitlement_id = tracing::field::Empty, activation_id = tracing::field::Empty))]
pub async fn state(store: &Store, secret: &str, nonce: &str, origin: &Origin) -> Result<Lease> {
    check_nonce(nonce).map_err(bad)?;
    as_holder(store, secret, origin, async |h| {
        Ok(h.lease(h.activation.lease_expires_at, nonce, origin.now))
    })
    .await
}

/// Ends an activation: frees its seat and returns every unit it holds. `false` if it had ended.
async fn end(
    conn: &mut AnyConnection,
    tenant_id: &str,
    activation: &Activation,
    reason: &str,
    origin: &Origin,
) -> Result<bool> {
    if !db::end_activation(conn, &activation.id, reason, origin.now).await? {
        return Ok(false);
    }
    db::give_back_all(conn, &activation.id).await?;
    if let Some(released) = db::release_seats(conn, &activation.entitlement_id, 1).await? {
        usage::note_seats(
            conn,
            tenant_id,
            &activation.entitlement_id,
            origin.now,
            (released.seats_used + 1, released.seats_used),
            (released.seat_count, released.overdraft),
        )
        .await?;
    }
    let code = (reason != "deactivated").then_some(reason);
    let entry = log_entry(Some(&activation.id), &activation.seat_id, "deactivate", code, origin);
    db::log(conn, tenant_id, &activation.entitlement_id, &entry).await?;
    // A revocation is a recorded event, whose webhook `activation.revoked` goes out with it.
    if reason != "revoked" {
        webhooks::emit_now(
            conn,
            tenant_id,
            EventType::ActivationDeactivated,
            &activation.id,
            origin.now,
        )
        .await?;
    }
    Ok(true)
}

/// `DELETE /licensing/v1/activation`.
#[tracing::instrument(skip_all, fields(tenant_id = tracing::field::Empty, entitlement_id = tracing::field::Empty, activation_id = tracing::field::Empty))]
pub async fn deactivate(store: &Store, secret: &str, nonce: &str, origin: &Origin) -> Result<(String, String)> {
    check_nonce(nonce).map_err(bad)?;
    as_holder(store, secret, origin, async |h| {
        let mut tx = store.begin().await?;
        if !end(&mut tx, &h.tenant_id, &h.activation, "deactivated", origin).await? {
            return Err(Denial::InvalidActivation.into());
        }
        tx.commit().await?;
        Ok((h.tenant_id.clone(), h.activation.id.clone()))
    })
    .await
}

fn check_units(units: i64) -> Result<()> {
    if !(1..=1_000_000_000).contains(&units) {
        return Err(LicensingError::BadRequest(
            "count and amount must be between 1 and 1000000000".into(),
        ));
    }
    Ok(())
}

/// The feature id of an enabled feature of `kind`, or `feature_not_entitled`.
fn granted(e: &Entitlement, key: &str, kind: FeatureKind) -> Result<String> {
    e.terms
        .features
        .iter()
        .find(|(k, g)| k.as_str() == key && g.kind == kind && g.enabled)
        .map(|(_, g)| g.feature_id.clone())
        .ok_or_else(|| Denial::FeatureNotEntitled.into())
}

/// Element pools: check out or return units for this seat.
#[tracing::instrument(skip_all, fields(tenant_id = tracing::field::Empty, entitlement_id = tracing::field::Empty, activation_id = tracing::field::Empty))]
pub async fn check_out(
    store: &Store,
    secret: &str,
    key: &str,
    units: i64,
    give_back: bool,
    nonce: &str,
    origin: &Origin,
) -> Result<Lease> {
    check_nonce(nonce).map_err(bad)?;
    check_units(units)?;
    as_holder(store, secret, origin, async |h| {
        let e = &h.entitlement;
        let feature_id = granted(e, key, FeatureKind::ElementPool)?;
        if !give_back {
            check_usable(e.status(origin.now))?;
        }
        let mut tx = store.begin().await?;
        if give_back {
            if !db::give_back(&mut tx, &h.activation.id, &e.id, &feature_id, units).await? {
                return Err(Denial::NothingCheckedOut.into());
            }
        } else if db::check_out(&mut tx, &h.activation.id, &e.id, &feature_id, units)
            .await?
            .is_none()
        {
            return Err(Denial::PoolExhausted.into());
        }
        tx.commit().await?;
        let mut conn = store.read().await?;
        let fresh = entitlements_db::get(&mut conn, &h.tenant_id, &e.id)
            .await?
            .ok_or(Denial::InvalidActivation)?;
        let a = &h.activation;
        claims_for(
            &mut conn,
            &h.tenant_id,
            a,
            &fresh,
            a.lease_expires_at,
            Some(nonce.to_owned()),
            origin.now,
        )
        .await
    })
    .await
}

/// Metered features: consume `amount` of the allowance and record it with its time.
#[tracing::instrument(skip_all, fields(tenant_id = tracing::field::Empty, entitlement_id = tracing::field::Empty, activation_id = tracing::field::Empty))]
pub async fn record_usage(
    store: &Store,
    secret: &str,
    key: &str,
    amount: i64,
    nonce: &str,
    origin: &Origin,
) -> Result<Lease> {
    check_nonce(nonce).map_err(bad)?;
    check_units(amount)?;
    as_holder(store, secret, origin, async |h| {
        let e = &h.entitlement;
        let feature_id = granted(e, key, FeatureKind::UsageCount)?;
        check_usable(e.status(origin.now))?;
        let mut tx = store.begin().await?;
        let used = db::consume(&mut tx, &e.id, &feature_id, amount)
            .await?
            .ok_or(Denial::UsageLimitReached)?;
        let a = &h.activation;
        db::insert_usage_record(
            &mut tx,
            &ids::new_id("use"),
            &h.tenant_id,
            &e.id,
            &a.id,
            &feature_id,
            amount,
            origin.now,
        )
        .await?;
        usage::note_use(&mut tx, &h.tenant_id, &e.id, &feature_id, amount, origin.now).await?;
        let limit = e
            .terms
            .features
            .values()
            .find(|g| g.feature_id == feature_id)
            .and_then(|g| g.limit);
        if limit_crossed(used - amount, used, limit) {
            webhooks::emit_now(&mut tx, &h.tenant_id, EventType::UsageLimitReached, &e.id, origin.now).await?;
        }
        tx.commit().await?;
        let mut fresh = e.clone();
        if let Some(grant) = fresh.terms.features.values_mut().find(|g| g.feature_id == feature_id) {
            grant.used = used;
        }
        let mut conn = store.read().await?;
        claims_for(
            &mut conn,
            &h.tenant_id,
            a,
            &fresh,
            a.lease_expires_at,
            Some(nonce.to_owned()),
            origin.now,
        )
        .await
    })
    .await
}

/// Offline deactivation: the request proves possession of the licence file's secret.
#[tracing::instrument(skip_all, fields(tenant_id = tracing::field::Empty, entitlement_id = tracing::field::Empty, activation_id = tracing::field::Empty))]
pub async fn offline_deactivate(
    store: &Store,
    request: &OfflineDeactivationRequest,
    origin: &Origin,
) -> Result<(String, String)> {
    check_nonce(&request.nonce).map_err(bad)?;
    let mut conn = store.read().await?;
    let (tenant_id, activation) = db::activation_by_secret(&mut conn, &hash_secret(&request.activation_secret))
        .await?
        .filter(|(tenant_id, a)| {
            *tenant_id == request.tenant && a.id == request.activation_id && a.seat_id == request.seat_id
        })
        .ok_or(Denial::InvalidActivation)?;
    record_ids(&tenant_id, &activation.entitlement_id, &activation.id);
    drop(conn);
    let mut tx = store.begin().await?;
    if !end(&mut tx, &tenant_id, &activation, "deactivated", origin).await? {
        return Err(Denial::InvalidActivation.into());
    }
    tx.commit().await?;
    Ok((tenant_id, activation.id))
}

// ---- the management side ----

/// The activations of one entitlement (`live` only, or all).
#[tracing::instrument(skip_all, fields(tenant_id = %ctx.tenant_id))]
pub async fn list_activations(
    store: &Store,
    ctx: &Ctx,
    entitlement_id: &str,
    live: bool,
    paging: &Paging,
) -> ServiceResult<Page<Activation>> {
    paging.check()?;
    let mut conn = store.read().await?;
    found(
        entitlements_db::get(&mut conn, &ctx.tenant_id, entitlement_id).await?,
        "entitlement",
    )?;
    let items = db::list_activations(
        &mut conn,
        &ctx.tenant_id,
        entitlement_id,
        live,
        paging.after(),
        paging.fetch_limit(),
    )
    .await?;
    Ok(paging.page(items, |a| &a.id))
}

#[tracing::instrument(skip_all, fields(tenant_id = %ctx.tenant_id, activation_id = %id))]
pub async fn get_activation(store: &Store, ctx: &Ctx, id: &str) -> ServiceResult<Activation> {
    found(
        db::get_activation(&mut *store.read().await?, &ctx.tenant_id, id).await?,
        "activation",
    )
}

/// Frees a seat from the vendor's side (a lost laptop). The application learns at its next call.
#[tracing::instrument(skip_all, fields(tenant_id = %ctx.tenant_id, activation_id = %id))]
pub async fn revoke(store: &Store, ctx: &Ctx, id: &str) -> ServiceResult<Activation> {
    let mut tx = store.begin().await?;
    let activation = found(db::get_activation(&mut tx, &ctx.tenant_id, id).await?, "activation")?;
    entitlements_db::lock(&mut tx, store.backend(), &ctx.tenant_id, &activation.entitlement_id).await?;
    let origin = Origin {
        ip: ctx.actor.ip.clone(),
        now: ctx.now,
    };
    let ended = end(&mut tx, &ctx.tenant_id, &activation, "revoked", &origin)
        .await
        .map_err(|error| match error {
            LicensingError::Internal(error) => error,
            other => ServiceError::Store(StoreError::Other(anyhow::anyhow!("{other}"))),
        })?;
    if ended {
        let summary = serde_json::json!({"entitlement_id": activation.entitlement_id, "seat_id": activation.seat_id});
        record(&mut tx, ctx, "activation.revoked", "activation", id, summary).await?;
    }
    let activation = found(db::get_activation(&mut tx, &ctx.tenant_id, id).await?, "activation")?;
    tx.commit().await?;
    Ok(activation)
}

#[tracing::instrument(skip_all, fields(tenant_id = %ctx.tenant_id))]
pub async fn activation_log(
    store: &Store,
    ctx: &Ctx,
    entitlement_id: &str,
    paging: &Paging,
) -> ServiceResult<Page<ActivationLogEntry>> {
    paging.check()?;
    let mut conn = store.read().await?;
    found(
        entitlements_db::get(&mut conn, &ctx.tenant_id, entitlement_id).await?,
        "entitlement",
    )?;
    let items = db::list_log(
        &mut conn,
        &ctx.tenant_id,
        entitlement_id,
        paging.after(),
        paging.fetch_limit(),
    )
    .await?;
    Ok(paging.page(items, |e| &e.id))
}
