//! The native half of the `entitle` Node.js module: `entitle-client` behind napi-rs. Calls that
//! talk to the server return Promises (run on napi's Tokio runtime); failures reject with an
//! Error whose message starts with `[code]`, which `index.js` turns into an `EntitleError`.

use std::sync::{Arc, Mutex};

use entitle_client::{Client as Core, Config, Credential, Error, LeaseClaims, RefreshHandle, RefreshSchedule};
use entitle_protocol::{licence, Jwks};
use napi::{Env, JsObject, Result, Status};
use napi_derive::napi;
use serde_json::Value;

fn code(error: &Error) -> String {
    match error {
        Error::Denied(denial) => denial.code(),
        Error::NotActivated => "not_activated",
        Error::BadSignature => "bad_signature",
        Error::Replay => "replay",
        Error::LeaseExpired => "expired",
        Error::ClockTampered => "clock_set_back",
        Error::WrongProduct => "wrong_product",
        Error::WrongSeat => "wrong_seat",
        Error::Network(_) => "network",
        Error::Server { .. } => "server",
        Error::Config(_) => "config",
        Error::Cache { .. } => "cache",
        _ => "malformed",
    }
    .to_owned()
}

fn js_error(error: Error) -> napi::Error {
    napi::Error::new(Status::GenericFailure, format!("[{}] {error}", code(&error)))
}

fn config_error(message: String) -> napi::Error {
    napi::Error::new(Status::InvalidArg, format!("[config] {message}"))
}

fn to_json(value: &impl serde::Serialize) -> Result<Value> {
    serde_json::to_value(value).map_err(|e| js_error(Error::Malformed(e.to_string())))
}

fn lease(claims: entitle_client::Result<LeaseClaims>) -> Result<Value> {
    to_json(&claims.map_err(js_error)?)
}

#[napi(object)]
pub struct ClientOptions {
    pub server_url: String,
    pub tenant: String,
    pub product: String,
    /// The tenant's jwks.json text, pinned in the application.
    pub jwks: String,
    pub seat_id: String,
    pub cache_path: String,
    pub root_ca_pem: Option<String>,
    pub timeout_seconds: Option<f64>,
    pub refresh_interval_seconds: Option<f64>,
}

#[napi(js_name = "NativeClient")]
pub struct Client {
    core: Core,
    refresher: Arc<Mutex<Option<RefreshHandle>>>,
}

#[napi]
impl Client {
    #[napi(constructor)]
    pub fn new(options: ClientOptions) -> Result<Client> {
        let mut config = Config::new(
            options.server_url,
            options.tenant,
            options.product,
            &options.jwks,
            options.seat_id,
            options.cache_path,
        )
        .map_err(js_error)?;
        if let Some(pem) = options.root_ca_pem {
            config = config.with_root_certificate(pem.as_bytes()).map_err(js_error)?;
        }
        if let Some(seconds) = options.timeout_seconds {
            config = config.with_timeout(std::time::Duration::from_secs_f64(seconds.max(0.001)));
        }
        if let Some(seconds) = options.refresh_interval_seconds {
            let every = std::time::Duration::from_secs_f64(seconds.max(0.01));
            config = config.with_refresh_schedule(RefreshSchedule {
                min_delay: every,
                max_delay: every,
                retry_delay: every,
                ..RefreshSchedule::default()
            });
        }
        Ok(Client {
            core: Core::new(config).map_err(js_error)?,
            refresher: Arc::new(Mutex::new(None)),
        })
    }

    #[napi(ts_return_type = "Promise<Lease>")]
    pub fn activate(
        &self,
        env: Env,
        code: Option<String>,
        email: Option<String>,
        password: Option<String>,
        seat_name: Option<String>,
    ) -> Result<JsObject> {
        let credential = match (code, email, password) {
            (Some(code), None, None) => Credential::Code(code),
            (None, Some(email), Some(password)) => Credential::Account { email, password },
            _ => return Err(config_error("give a code, or an email and a password".into())),
        };
        let core = self.core.clone();
        env.spawn_future(async move { lease(core.activate(credential, seat_name.as_deref()).await) })
    }

    #[napi(ts_return_type = "Promise<Lease>")]
    pub fn state(&self, env: Env) -> Result<JsObject> {
        let core = self.core.clone();
        env.spawn_future(async move { lease(core.state().await) })
    }

    #[napi(ts_return_type = "Promise<Lease>")]
    pub fn refresh(&self, env: Env) -> Result<JsObject> {
        let core = self.core.clone();
        env.spawn_future(async move { lease(core.refresh().await) })
    }

    #[napi(ts_return_type = "Promise<Lease>")]
    pub fn ensure_lease(&self, env: Env) -> Result<JsObject> {
        let core = self.core.clone();
        env.spawn_future(async move { lease(core.ensure_lease().await) })
    }

    #[napi(ts_return_type = "Promise<void>")]
    pub fn deactivate(&self, env: Env) -> Result<JsObject> {
        let core = self.core.clone();
        env.spawn_future(async move { core.deactivate().await.map_err(js_error) })
    }

    #[napi(ts_return_type = "Promise<Lease>")]
    pub fn checkout(&self, env: Env, feature: String, count: u32) -> Result<JsObject> {
        let core = self.core.clone();
        env.spawn_future(async move { lease(core.checkout(&feature, count).await) })
    }

    #[napi(ts_return_type = "Promise<Lease>")]
    pub fn give_back(&self, env: Env, feature: String, count: u32) -> Result<JsObject> {
        let core = self.core.clone();
        env.spawn_future(async move { lease(core.give_back(&feature, count).await) })
    }

    #[napi(ts_return_type = "Promise<Lease>")]
    pub fn record_usage(&self, env: Env, feature: String, amount: u32) -> Result<JsObject> {
        let core = self.core.clone();
        env.spawn_future(async move { lease(core.record_usage(&feature, amount).await) })
    }

    /// Starts the background refresher on napi's runtime (it needs a Tokio context, which the
    /// promise's task has). Calling it again is harmless.
    #[napi(ts_return_type = "Promise<void>")]
    pub fn start_refresher(&self, env: Env) -> Result<JsObject> {
        let core = self.core.clone();
        let slot = self.refresher.clone();
        env.spawn_future(async move {
            let mut refresher = slot.lock().unwrap_or_else(|p| p.into_inner());
            if refresher.is_none() {
                *refresher = Some(core.spawn_refresher());
            }
            Ok(())
        })
    }

    /// `{refreshes, leaseExpiresAt, lastError}` of the refresher, or null when not started.
    #[napi(ts_return_type = "RefreshStatus | null")]
    pub fn refresh_status(&self) -> Option<Value> {
        let refresher = self.refresher.lock().unwrap_or_else(|p| p.into_inner());
        refresher.as_ref().map(|handle| {
            let status = handle.status();
            serde_json::json!({
                "refreshes": status.refreshes,
                "leaseExpiresAt": status.lease_expires_at,
                "lastError": status.last_error,
            })
        })
    }

    #[napi(ts_return_type = "Lease")]
    pub fn lease(&self) -> Result<Value> {
        lease(self.core.lease())
    }

    #[napi]
    pub fn is_enabled(&self, feature: String) -> Result<bool> {
        self.core.is_enabled(&feature).map_err(js_error)
    }

    #[napi(ts_return_type = "Feature | null")]
    pub fn feature(&self, key: String) -> Result<Option<Value>> {
        match self.core.feature(&key).map_err(js_error)? {
            Some(feature) => to_json(&feature).map(Some),
            None => Ok(None),
        }
    }

    #[napi(ts_return_type = "unknown")]
    pub fn attribute(&self, key: String) -> Result<Option<Value>> {
        let claims = self.core.lease().map_err(js_error)?;
        Ok(claims.attributes.into_iter().find(|a| a.key == key).map(|a| a.value))
    }

    #[napi(getter)]
    pub fn is_activated(&self) -> bool {
        self.core.is_activated()
    }

    #[napi(getter)]
    pub fn activation_id(&self) -> Option<String> {
        self.core.activation_id()
    }

    #[napi(getter)]
    pub fn lease_token(&self) -> Option<String> {
        self.core.lease_token()
    }

    #[napi(getter)]
    pub fn seat_id(&self) -> String {
        self.core.seat_id().to_owned()
    }

    #[napi]
    pub fn write_activation_request(&self, code: String, seat_name: Option<String>) -> Result<String> {
        self.core
            .write_activation_request(&code, seat_name.as_deref())
            .map_err(js_error)
    }

    #[napi(ts_return_type = "Lease")]
    pub fn load_licence_file(&self, text: String) -> Result<Value> {
        lease(self.core.load_licence_file(&text))
    }

    #[napi]
    pub fn write_deactivation_request(&self) -> Result<String> {
        self.core.write_deactivation_request().map_err(js_error)
    }
}

#[napi]
pub fn device_fingerprint(product: String, fallback_file: String) -> Result<String> {
    entitle_client::device_fingerprint(&product, fallback_file.as_ref())
        .map_err(|e| napi::Error::new(Status::GenericFailure, format!("[cache] {e}")))
}

fn pinned(jwks: &str) -> Result<Vec<entitle_protocol::PublicKey>> {
    let jwks: Jwks = serde_json::from_str(jwks).map_err(|e| config_error(format!("not a JWKS: {e}")))?;
    Ok(jwks.public_keys())
}

#[napi(ts_return_type = "Lease")]
pub fn verify_lease_token(jwks: String, token: String, product: String, seat_id: String, now: i64) -> Result<Value> {
    let claims = LeaseClaims::verify(&token, &pinned(&jwks)?, now, &product, &seat_id);
    lease(claims.map_err(Error::from))
}

#[napi(ts_return_type = "Lease")]
pub fn verify_licence_file(jwks: String, text: String, product: String, seat_id: String, now: i64) -> Result<Value> {
    let claims = licence::verify_licence_file(&text, &pinned(&jwks)?, now, &product, &seat_id);
    lease(claims.map_err(Error::from))
}
