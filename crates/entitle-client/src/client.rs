//! The client: activation, the verified lease it keeps (in memory and in the cache file), and
//! the calls that change it.

use std::fmt;
use std::sync::{Arc, Mutex, MutexGuard};

use entitle_protocol::{jws, ActivateRequest, ActivateResponse, DeactivateResponse, FeatureClaim, LeaseClaims};
use reqwest::Method;
use serde_json::json;

use crate::cache::{self, CacheFile, StoredActivation};
use crate::config::Config;
use crate::error::{Denial, Error, Result};
use crate::http::{Idempotence, Transport};

/// How the end user proves they may use the product.
#[derive(Clone)]
pub enum Credential {
    /// The activation code the buyer received, e.g. `7KQ2-M9XD-4FRT-0BWN-HC8E-P3VZ`.
    Code(String),
    /// An end user's email and password (account-based products).
    Account {
        /// The end user's email address.
        email: String,
        /// The end user's password.
        password: String,
    },
}

impl fmt::Debug for Credential {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Credential::Code(_) => f.write_str("Code(…)"),
            Credential::Account { email, .. } => {
                f.debug_struct("Account").field("email", email).finish_non_exhaustive()
            }
        }
    }
}

/// The licensing client of one product on one device. Cheap to clone (clones share state).
///
/// Every answer, token and licence file is verified against the pinned keys before use; the
/// last valid lease is kept in the cache file so the application works offline until it expires.
#[derive(Clone)]
pub struct Client {
    pub(crate) inner: Arc<Inner>,
}

pub(crate) struct Inner {
    pub config: Config,
    pub transport: Transport,
    state: Mutex<State>,
}

pub(crate) struct State {
    pub cache: CacheFile,
    /// The claims of the cached token, once its signature and identity verified (not its time).
    pub claims: Option<LeaseClaims>,
    /// The `last_seen` value last written to disk.
    persisted_last_seen: i64,
}

/// How far `last_seen` may run ahead of the file before it is written again: often enough to
/// catch a clock set back across restarts, seldom enough not to write on every feature check.
const PERSIST_LAST_SEEN_EVERY: i64 = 60;

impl fmt::Debug for Client {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Client")
            .field("config", &self.inner.config)
            .field("activated", &self.is_activated())
            .finish()
    }
}

impl Client {
    /// A client for `config`, starting from its cache file when there is one (offline: no
    /// request is made). A cached token is re-verified; one that fails keeps its activation so
    /// that [`Client::refresh`] can replace it (e.g. after the keys were rotated).
    pub fn new(config: Config) -> Result<Client> {
        let transport = Transport::new(&config)?;
        let mut cache = CacheFile::empty(&config.tenant, &config.product, &config.seat_id);
        if let Some(stored) = cache::load(&config.cache_path)? {
            cache.last_seen = stored.last_seen;
            if stored.tenant == config.tenant && stored.product == config.product && stored.seat_id == config.seat_id {
                cache.activation = stored.activation;
                cache.pending_offline_nonce = stored.pending_offline_nonce;
            }
        }
        let claims = cache
            .activation
            .as_ref()
            .and_then(|a| verify_identity(&config, &a.id, &a.lease_token).ok());
        let persisted_last_seen = cache.last_seen;
        Ok(Client {
            inner: Arc::new(Inner {
                config,
                transport,
                state: Mutex::new(State {
                    cache,
                    claims,
                    persisted_last_seen,
                }),
            }),
        })
    }

    /// The configuration.
    pub fn config(&self) -> &Config {
        &self.inner.config
    }

    /// The seat id this client activates.
    pub fn seat_id(&self) -> &str {
        &self.inner.config.seat_id
    }

    pub(crate) fn locked(&self) -> MutexGuard<'_, State> {
        // A panic elsewhere while holding the lock leaves consistent data (every update is a
        // plain assignment), so a poisoned lock is still usable.
        self.inner.state.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Whether there is an activation (its lease may still have expired).
    pub fn is_activated(&self) -> bool {
        self.locked().cache.activation.is_some()
    }

    /// Whether the activation is an offline one (a licence file).
    pub fn is_offline(&self) -> bool {
        self.locked().cache.activation.as_ref().is_some_and(|a| a.offline)
    }

    /// The activation id, when activated.
    pub fn activation_id(&self) -> Option<String> {
        self.locked().cache.activation.as_ref().map(|a| a.id.clone())
    }

    /// The current lease token (a JWT any JOSE library verifies), e.g. to show your own backend
    /// what this installation may do. `None` when not activated.
    pub fn lease_token(&self) -> Option<String> {
        self.locked().cache.activation.as_ref().map(|a| a.lease_token.clone())
    }

    /// The current lease, verified now, offline: signature, product, seat, expiry, and the clock.
    ///
    /// Errors: [`Error::NotActivated`], [`Error::LeaseExpired`], [`Error::ClockTampered`],
    /// [`Error::Denied`] when the server suspended it (a disabled or expired entitlement), or
    /// [`Error::BadSignature`] for a cached token the pinned keys do not verify.
    pub fn lease(&self) -> Result<LeaseClaims> {
        let mut state = self.locked();
        let now = self.observe_time(&mut state)?;
        let Some(activation) = state.cache.activation.clone() else {
            return Err(Error::NotActivated);
        };
        if let Some(code) = &activation.suspended {
            return Err(Error::Denied(Denial::from_code(code, None)));
        }
        let claims = match &state.claims {
            Some(claims) => claims.clone(),
            None => verify_identity(&self.inner.config, &activation.id, &activation.lease_token)?,
        };
        claims.check(now, &self.inner.config.product, &self.inner.config.seat_id)?;
        Ok(claims)
    }

    /// Whether a feature is granted and enabled by the current lease (offline).
    pub fn is_enabled(&self, feature: &str) -> Result<bool> {
        Ok(self.lease()?.is_enabled(feature))
    }

    /// A feature of the current lease (offline): its kind, limit, use, and this seat's units.
    pub fn feature(&self, feature: &str) -> Result<Option<FeatureClaim>> {
        Ok(self.lease()?.feature(feature).cloned())
    }

    /// Reads the clock, refusing one set back more than the tolerance before the latest time seen.
    pub(crate) fn observe_time(&self, state: &mut State) -> Result<i64> {
        let now = self.inner.config.clock.now();
        if now.saturating_add(self.inner.config.clock_tolerance) < state.cache.last_seen {
            return Err(Error::ClockTampered);
        }
        if now > state.cache.last_seen {
            state.cache.last_seen = now;
            if now - state.persisted_last_seen >= PERSIST_LAST_SEEN_EVERY {
                // Best effort: a read-only disk must not stop feature checks; the next
                // state change reports the failure.
                if cache::save(&self.inner.config.cache_path, &state.cache).is_ok() {
                    state.persisted_last_seen = now;
                }
            }
        }
        Ok(now)
    }

    pub(crate) fn save(&self, state: &mut State) -> Result<()> {
        cache::save(&self.inner.config.cache_path, &state.cache)?;
        state.persisted_last_seen = state.cache.last_seen;
        Ok(())
    }

    /// Activates this seat with a credential and keeps the lease. Activating an activated seat
    /// again is allowed (it keeps its seat and gets new credentials).
    pub async fn activate(&self, credential: Credential, seat_name: Option<&str>) -> Result<LeaseClaims> {
        let config = &self.inner.config;
        let request = |nonce: &str| {
            let (activation_code, email, password) = match &credential {
                Credential::Code(code) => (Some(code.clone()), None, None),
                Credential::Account { email, password } => (None, Some(email.clone()), Some(password.clone())),
            };
            let body = ActivateRequest {
                tenant: config.tenant.clone(),
                product: config.product.clone(),
                activation_code,
                email,
                password,
                seat_id: config.seat_id.clone(),
                seat_name: seat_name.map(str::to_owned),
                nonce: nonce.to_owned(),
            };
            serde_json::to_vec(&body).ok()
        };
        let answer = self
            .inner
            .transport
            .call(
                Method::POST,
                "/licensing/v1/activate",
                None,
                request,
                Idempotence::Idempotent,
            )
            .await?;
        let activated: ActivateResponse =
            serde_json::from_slice(&answer.bytes).map_err(|_| Error::Malformed("not an activation answer".into()))?;
        let activation = StoredActivation {
            id: activated.activation_id,
            secret: activated.activation_secret,
            lease_token: activated.lease_token,
            offline: false,
            suspended: None,
        };
        self.install(activation, &answer.nonce)
    }

    /// Verifies a new activation's token and makes it the current one.
    pub(crate) fn install(&self, activation: StoredActivation, nonce: &str) -> Result<LeaseClaims> {
        let mut state = self.locked();
        let now = self.observe_time(&mut state)?;
        let claims = self.verify_fresh(&activation.id, &activation.lease_token, nonce, now)?;
        state.cache.activation = Some(activation);
        state.claims = Some(claims.clone());
        self.save(&mut state)?;
        Ok(claims)
    }

    /// A token just received: signed, valid now for this product and seat, for this tenant and
    /// activation, and answering this request's nonce.
    fn verify_fresh(&self, activation_id: &str, token: &str, nonce: &str, now: i64) -> Result<LeaseClaims> {
        let config = &self.inner.config;
        let claims = LeaseClaims::verify(token, &config.keys, now, &config.product, &config.seat_id)?;
        check_issuer(config, activation_id, &claims)?;
        if claims.nonce.as_deref() != Some(nonce) {
            return Err(Error::Replay);
        }
        Ok(claims)
    }

    fn credentials(&self) -> Result<(String, String)> {
        self.locked()
            .cache
            .activation
            .as_ref()
            .map(|a| (a.id.clone(), a.secret.clone()))
            .ok_or(Error::NotActivated)
    }

    /// A call answered with a lease: the answer's signature and body form the new lease token.
    async fn lease_call(
        &self,
        method: Method,
        path: &str,
        body: Option<serde_json::Value>,
        idempotence: Idempotence,
    ) -> Result<LeaseClaims> {
        let (id, secret) = self.credentials()?;
        let bytes = body.map(|b| b.to_string().into_bytes());
        let outcome = self
            .inner
            .transport
            .call(method, path, Some(&secret), |_| bytes.clone(), idempotence)
            .await;
        let answer = match outcome {
            Ok(answer) => answer,
            Err(error) => {
                self.after_denial(&id, &error)?;
                return Err(error);
            }
        };
        let token = jws::attach(&answer.signature, &answer.bytes).map_err(|_| Error::BadSignature)?;
        let mut guard = self.locked();
        let state = &mut *guard;
        let now = self.observe_time(state)?;
        let claims = self.verify_fresh(&id, &token, &answer.nonce, now)?;
        let Some(activation) = state.cache.activation.as_mut().filter(|a| a.id == id) else {
            // Deactivated (or re-activated) while this call was in flight: the answer is stale.
            return Ok(claims);
        };
        // Two calls in flight (the refresher and the application) may answer out of order.
        let newer = !matches!(&state.claims, Some(current) if current.iat > claims.iat);
        if newer || activation.suspended.is_some() {
            activation.lease_token = token;
            activation.suspended = None;
            state.claims = Some(claims.clone());
            self.save(state)?;
        }
        Ok(claims)
    }

    /// Applies a verified denial to the local state: some end the activation, some suspend it.
    fn after_denial(&self, id: &str, error: &Error) -> Result<()> {
        let Error::Denied(denial) = error else {
            return Ok(());
        };
        let mut state = self.locked();
        if state.cache.activation.as_ref().map(|a| a.id.as_str()) != Some(id) {
            return Ok(());
        }
        if denial.ends_activation() {
            state.cache.activation = None;
            state.claims = None;
            self.save(&mut state)?;
        } else if denial.suspends_lease() {
            if let Some(activation) = state.cache.activation.as_mut() {
                activation.suspended = Some(denial.code().to_owned());
            }
            self.save(&mut state)?;
        }
        Ok(())
    }

    /// The activation's current lease from the server (not extended), verified and cached.
    pub async fn state(&self) -> Result<LeaseClaims> {
        self.lease_call(Method::GET, "/licensing/v1/activation", None, Idempotence::Idempotent)
            .await
    }

    /// Extends the lease (never past the entitlement's expiry plus grace) and caches it.
    pub async fn refresh(&self) -> Result<LeaseClaims> {
        self.lease_call(
            Method::POST,
            "/licensing/v1/activation/refresh",
            None,
            Idempotence::Idempotent,
        )
        .await
    }

    /// The lease to run on, refreshing it first when more than the schedule's fraction of it
    /// has passed. When the server cannot be reached, a still-valid lease is returned: call this
    /// at start-up and the application runs offline until the lease expires. Offline (licence
    /// file) activations are not refreshed: a new licence file renews them.
    pub async fn ensure_lease(&self) -> Result<LeaseClaims> {
        let offline = self.is_offline();
        match self.lease() {
            Ok(claims) if offline || !self.refresh_due(&claims) => Ok(claims),
            Ok(claims) => match self.refresh().await {
                Err(error) if error.is_transient() => Ok(claims),
                other => other,
            },
            // Offline the application cannot run past expiry: say so rather than "unreachable".
            Err(Error::LeaseExpired) if !offline => match self.refresh().await {
                Err(error) if error.is_transient() => Err(Error::LeaseExpired),
                other => other,
            },
            Err(Error::BadSignature) if !offline => self.refresh().await,
            Err(Error::Denied(denial)) if denial.suspends_lease() => self.refresh().await,
            Err(error) => Err(error),
        }
    }

    fn refresh_due(&self, claims: &LeaseClaims) -> bool {
        let fraction = self.inner.config.refresh.fraction.clamp(0.0, 1.0);
        let lifetime = (claims.exp - claims.iat).max(0) as f64;
        self.inner.config.clock.now() as f64 >= claims.iat as f64 + lifetime * fraction
    }

    /// Frees this seat (and every unit it holds) and forgets the activation. An activation the
    /// server no longer knows counts as deactivated: the seat is free either way.
    pub async fn deactivate(&self) -> Result<()> {
        let (id, secret) = self.credentials()?;
        let outcome = self
            .inner
            .transport
            .call(
                Method::DELETE,
                "/licensing/v1/activation",
                Some(&secret),
                |_| None,
                Idempotence::Idempotent,
            )
            .await;
        match outcome {
            Ok(answer) => {
                let gone: DeactivateResponse = serde_json::from_slice(&answer.bytes)
                    .map_err(|_| Error::Malformed("not a deactivation answer".into()))?;
                if gone.activation_id != id || !gone.deactivated {
                    return Err(Error::Malformed("the answer deactivates another activation".into()));
                }
            }
            Err(Error::Denied(Denial::InvalidActivation)) => {}
            Err(error) => return Err(error),
        }
        self.forget()
    }

    /// Forgets the activation locally, without telling the server (the seat stays taken until
    /// the vendor revokes it or, for concurrent seats, its lease lapses).
    pub fn forget(&self) -> Result<()> {
        let mut state = self.locked();
        state.cache.activation = None;
        state.claims = None;
        self.save(&mut state)
    }

    /// Checks out `count` units of an element-pool feature (e.g. render nodes) for this seat.
    pub async fn checkout(&self, feature: &str, count: u32) -> Result<LeaseClaims> {
        self.lease_call(
            Method::POST,
            &format!("/licensing/v1/activation/features/{}/checkout", path_segment(feature)?),
            Some(json!({ "count": count })),
            Idempotence::CountsTwice,
        )
        .await
    }

    /// Returns `count` units of an element-pool feature this seat holds (`return` is a keyword).
    pub async fn give_back(&self, feature: &str, count: u32) -> Result<LeaseClaims> {
        self.lease_call(
            Method::POST,
            &format!("/licensing/v1/activation/features/{}/return", path_segment(feature)?),
            Some(json!({ "count": count })),
            Idempotence::CountsTwice,
        )
        .await
    }

    /// Records `amount` units of a metered (usage-count) feature.
    pub async fn record_usage(&self, feature: &str, amount: u32) -> Result<LeaseClaims> {
        self.lease_call(
            Method::POST,
            "/licensing/v1/activation/usage",
            Some(json!({ "feature": feature, "amount": amount })),
            Idempotence::CountsTwice,
        )
        .await
    }
}

/// Feature keys go into the URL path: only keys that need no escaping are sent.
fn path_segment(key: &str) -> Result<&str> {
    if !key.is_empty() && key.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b)) {
        Ok(key)
    } else {
        Err(Error::Config(format!("not a feature key: {key:?}")))
    }
}

fn check_issuer(config: &Config, activation_id: &str, claims: &LeaseClaims) -> Result<()> {
    if claims.iss != config.tenant {
        return Err(Error::Malformed("the token was issued by another tenant".into()));
    }
    if claims.sub != activation_id {
        return Err(Error::Malformed("the token belongs to another activation".into()));
    }
    Ok(())
}

/// A stored token's signature and identity (not its time, which [`Client::lease`] checks).
pub(crate) fn verify_identity(config: &Config, activation_id: &str, token: &str) -> Result<LeaseClaims> {
    let payload = jws::verify_compact(token, &config.keys).map_err(|_| Error::BadSignature)?;
    let claims: LeaseClaims =
        serde_json::from_slice(&payload).map_err(|_| Error::Malformed("the token's claims are malformed".into()))?;
    if claims.aud != config.product {
        return Err(Error::WrongProduct);
    }
    if claims.seat.id != config.seat_id {
        return Err(Error::WrongSeat);
    }
    check_issuer(config, activation_id, &claims)?;
    Ok(claims)
}
