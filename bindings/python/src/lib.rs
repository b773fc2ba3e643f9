//! The `entitle` Python module: `entitle-client` for Python. Calls that talk to the server
//! release the GIL; leases come back as dicts (the lease claims); every denial and verdict is
//! its own exception class under `entitle.EntitleError`.

use std::sync::Mutex;

use entitle_client::{Client as Core, Config, Credential, Denial, Error, LeaseClaims, RefreshHandle, RefreshSchedule};
use entitle_protocol::{licence, Jwks};
use pyo3::create_exception;
use pyo3::exceptions::PyException;
use pyo3::prelude::*;
use pyo3::types::PyDict;

create_exception!(entitle, EntitleError, PyException, "Every failure of the SDK.");
create_exception!(
    entitle,
    Denied,
    EntitleError,
    "A signed refusal of the server; `code` is its denial code."
);
create_exception!(entitle, InvalidRequest, Denied);
create_exception!(
    entitle,
    InvalidCredential,
    Denied,
    "Unknown activation code, or wrong email or password."
);
create_exception!(
    entitle,
    InvalidActivation,
    Denied,
    "Deactivated or revoked: activate again."
);
create_exception!(entitle, EntitlementNotStarted, Denied);
create_exception!(entitle, EntitlementExpired, Denied);
create_exception!(entitle, EntitlementDisabled, Denied);
create_exception!(entitle, SeatLimitReached, Denied, "Every seat is taken.");
create_exception!(entitle, FeatureNotEntitled, Denied);
create_exception!(entitle, PoolExhausted, Denied);
create_exception!(entitle, NothingCheckedOut, Denied);
create_exception!(entitle, UsageLimitReached, Denied);
create_exception!(
    entitle,
    LeaseExpired,
    Denied,
    "A concurrent seat lapsed and went to another device."
);
create_exception!(entitle, OfflineNotAllowed, Denied);
create_exception!(
    entitle,
    RateLimited,
    Denied,
    "Too many failed credentials; `retry_after` in seconds."
);
create_exception!(entitle, NotActivated, EntitleError);
create_exception!(
    entitle,
    BadSignature,
    EntitleError,
    "Not signed by the pinned keys: forged or tampered."
);
create_exception!(entitle, Replay, EntitleError, "A genuine answer to another request.");
create_exception!(entitle, Expired, EntitleError, "The lease or licence file expired.");
create_exception!(entitle, ClockSetBack, EntitleError);
create_exception!(entitle, WrongProduct, EntitleError);
create_exception!(entitle, WrongSeat, EntitleError);
create_exception!(
    entitle,
    NetworkError,
    EntitleError,
    "Unreachable or timed out, after the retries."
);
create_exception!(entitle, ServerError, EntitleError, "5xx on every attempt.");
create_exception!(entitle, Malformed, EntitleError);
create_exception!(entitle, ConfigError, EntitleError);
create_exception!(entitle, CacheError, EntitleError);

fn denial_error(py: Python<'_>, denial: &Denial, message: String) -> PyErr {
    let error = match denial {
        Denial::InvalidRequest => InvalidRequest::new_err(message),
        Denial::InvalidCredential => InvalidCredential::new_err(message),
        Denial::InvalidActivation => InvalidActivation::new_err(message),
        Denial::EntitlementNotStarted => EntitlementNotStarted::new_err(message),
        Denial::EntitlementExpired => EntitlementExpired::new_err(message),
        Denial::EntitlementDisabled => EntitlementDisabled::new_err(message),
        Denial::SeatLimitReached => SeatLimitReached::new_err(message),
        Denial::FeatureNotEntitled => FeatureNotEntitled::new_err(message),
        Denial::PoolExhausted => PoolExhausted::new_err(message),
        Denial::NothingCheckedOut => NothingCheckedOut::new_err(message),
        Denial::UsageLimitReached => UsageLimitReached::new_err(message),
        Denial::LeaseExpired => LeaseExpired::new_err(message),
        Denial::OfflineNotAllowed => OfflineNotAllowed::new_err(message),
        Denial::RateLimited { .. } => RateLimited::new_err(message),
        Denial::Other(_) => Denied::new_err(message),
    };
    let value = error.value(py);
    let _ = value.setattr("code", denial.code());
    if let Denial::RateLimited {
        retry_after: Some(wait),
    } = denial
    {
        let _ = value.setattr("retry_after", wait.as_secs());
    }
    error
}

fn to_py(error: Error) -> PyErr {
    let message = error.to_string();
    match error {
        Error::Denied(denial) => Python::with_gil(|py| denial_error(py, &denial, message)),
        Error::NotActivated => NotActivated::new_err(message),
        Error::BadSignature => BadSignature::new_err(message),
        Error::Replay => Replay::new_err(message),
        Error::LeaseExpired => Expired::new_err(message),
        Error::ClockTampered => ClockSetBack::new_err(message),
        Error::WrongProduct => WrongProduct::new_err(message),
        Error::WrongSeat => WrongSeat::new_err(message),
        Error::Network(_) => NetworkError::new_err(message),
        Error::Server { .. } => ServerError::new_err(message),
        Error::Config(_) => ConfigError::new_err(message),
        Error::Cache { .. } => CacheError::new_err(message),
        _ => Malformed::new_err(message),
    }
}

/// JSON into Python objects through the standard library (no extra dependency).
fn json_to_py(py: Python<'_>, value: &impl serde::Serialize) -> PyResult<PyObject> {
    let text = serde_json::to_string(value).map_err(|e| Malformed::new_err(e.to_string()))?;
    Ok(py.import("json")?.call_method1("loads", (text,))?.unbind())
}

fn lease(py: Python<'_>, claims: entitle_client::Result<LeaseClaims>) -> PyResult<PyObject> {
    json_to_py(py, &claims.map_err(to_py)?)
}

/// The licensing client of one product on one device. Thread-safe; share one per process.
#[pyclass(module = "entitle", frozen)]
struct Client {
    core: Core,
    runtime: tokio::runtime::Runtime,
    refresher: Mutex<Option<RefreshHandle>>,
}

impl Client {
    /// Runs a call on the SDK's runtime with the GIL released.
    fn run<T: Send>(
        &self,
        py: Python<'_>,
        call: impl std::future::Future<Output = entitle_client::Result<T>> + Send,
    ) -> entitle_client::Result<T> {
        py.allow_threads(|| self.runtime.block_on(call))
    }
}

#[pymethods]
impl Client {
    /// `jwks`: the tenant's jwks.json text, pinned in the application. `cache_path`: where the
    /// lease and the activation secret are kept. `root_ca_pem`: a private CA for the server's
    /// TLS certificate. Reads the cache file; makes no request.
    /// `refresh_interval_seconds`: refresh the lease at this fixed pace instead of at half-time.
    #[new]
    #[pyo3(signature = (server_url, tenant, product, jwks, seat_id, cache_path, root_ca_pem=None, timeout_seconds=None, refresh_interval_seconds=None))]
    #[allow(clippy::too_many_arguments)]
    fn new(
        server_url: &str,
        tenant: &str,
        product: &str,
        jwks: &str,
        seat_id: &str,
        cache_path: std::path::PathBuf,
        root_ca_pem: Option<&str>,
        timeout_seconds: Option<f64>,
        refresh_interval_seconds: Option<f64>,
    ) -> PyResult<Client> {
        let mut config = Config::new(server_url, tenant, product, jwks, seat_id, cache_path).map_err(to_py)?;
        if let Some(pem) = root_ca_pem {
            config = config.with_root_certificate(pem.as_bytes()).map_err(to_py)?;
        }
        if let Some(seconds) = timeout_seconds {
            config = config.with_timeout(std::time::Duration::from_secs_f64(seconds.max(0.001)));
        }
        if let Some(seconds) = refresh_interval_seconds {
            let every = std::time::Duration::from_secs_f64(seconds.max(0.01));
            config = config.with_refresh_schedule(RefreshSchedule {
                min_delay: every,
                max_delay: every,
                retry_delay: every,
                ..RefreshSchedule::default()
            });
        }
        // One worker thread: it runs the background refresher.
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("entitle-sdk")
            .enable_all()
            .build()
            .map_err(|e| ConfigError::new_err(format!("cannot start the SDK's runtime: {e}")))?;
        Ok(Client {
            core: Core::new(config).map_err(to_py)?,
            runtime,
            refresher: Mutex::new(None),
        })
    }

    /// Activates this seat with an activation code, or an end user's email and password.
    #[pyo3(signature = (code=None, *, email=None, password=None, seat_name=None))]
    fn activate(
        &self,
        py: Python<'_>,
        code: Option<String>,
        email: Option<String>,
        password: Option<String>,
        seat_name: Option<String>,
    ) -> PyResult<PyObject> {
        let credential = match (code, email, password) {
            (Some(code), None, None) => Credential::Code(code),
            (None, Some(email), Some(password)) => Credential::Account { email, password },
            _ => return Err(ConfigError::new_err("give a code, or an email and a password")),
        };
        let claims = self.run(py, self.core.activate(credential, seat_name.as_deref()));
        lease(py, claims)
    }

    /// The activation's current lease from the server (not extended).
    fn state(&self, py: Python<'_>) -> PyResult<PyObject> {
        let claims = self.run(py, self.core.state());
        lease(py, claims)
    }

    /// Extends the lease.
    fn refresh(&self, py: Python<'_>) -> PyResult<PyObject> {
        let claims = self.run(py, self.core.refresh());
        lease(py, claims)
    }

    /// At start-up: the cached lease, refreshed first when due; offline, a still-valid lease.
    fn ensure_lease(&self, py: Python<'_>) -> PyResult<PyObject> {
        let claims = self.run(py, self.core.ensure_lease());
        lease(py, claims)
    }

    /// Frees this seat and every unit it holds, and forgets the activation.
    fn deactivate(&self, py: Python<'_>) -> PyResult<()> {
        self.run(py, self.core.deactivate()).map_err(to_py)
    }

    /// Checks out pool units; use as `with client.checkout("render_nodes", 2): …` to give them
    /// back when the block ends.
    #[pyo3(signature = (feature, count=1))]
    fn checkout(slf: &Bound<'_, Self>, feature: String, count: u32) -> PyResult<Checkout> {
        let py = slf.py();
        let this = slf.get();
        let claims = this.run(py, this.core.checkout(&feature, count));
        let lease = lease(py, claims)?;
        Ok(Checkout {
            client: slf.clone().unbind(),
            feature,
            count,
            lease,
            held: Mutex::new(true),
        })
    }

    /// Returns pool units this seat holds.
    #[pyo3(signature = (feature, count=1))]
    fn give_back(&self, py: Python<'_>, feature: &str, count: u32) -> PyResult<PyObject> {
        let claims = self.run(py, self.core.give_back(feature, count));
        lease(py, claims)
    }

    /// Records units of a metered feature.
    #[pyo3(signature = (feature, amount=1))]
    fn record_usage(&self, py: Python<'_>, feature: &str, amount: u32) -> PyResult<PyObject> {
        let claims = self.run(py, self.core.record_usage(feature, amount));
        lease(py, claims)
    }

    /// The current lease's claims, verified now (offline).
    fn lease(&self, py: Python<'_>) -> PyResult<PyObject> {
        lease(py, self.core.lease())
    }

    /// Whether the current lease grants and enables a feature (offline).
    fn is_enabled(&self, feature: &str) -> PyResult<bool> {
        self.core.is_enabled(feature).map_err(to_py)
    }

    /// A feature of the current lease as a dict, or None (offline).
    fn feature(&self, py: Python<'_>, key: &str) -> PyResult<PyObject> {
        match self.core.feature(key).map_err(to_py)? {
            Some(feature) => json_to_py(py, &feature),
            None => Ok(py.None()),
        }
    }

    /// An attribute's value, or `default` (offline).
    #[pyo3(signature = (key, default=None))]
    fn attribute(&self, py: Python<'_>, key: &str, default: Option<PyObject>) -> PyResult<PyObject> {
        let claims = self.core.lease().map_err(to_py)?;
        match claims.attributes.iter().find(|a| a.key == key) {
            Some(attribute) => json_to_py(py, &attribute.value),
            None => Ok(default.unwrap_or_else(|| py.None())),
        }
    }

    #[getter]
    fn is_activated(&self) -> bool {
        self.core.is_activated()
    }

    #[getter]
    fn activation_id(&self) -> Option<String> {
        self.core.activation_id()
    }

    /// The current lease token (a JWT), or None.
    #[getter]
    fn lease_token(&self) -> Option<String> {
        self.core.lease_token()
    }

    #[getter]
    fn seat_id(&self) -> String {
        self.core.seat_id().to_owned()
    }

    /// Renews the lease on a background thread until the client is dropped. Idempotent.
    fn start_refresher(&self) {
        let mut refresher = self.refresher.lock().unwrap_or_else(|p| p.into_inner());
        if refresher.is_none() {
            let _runtime = self.runtime.enter();
            *refresher = Some(self.core.spawn_refresher());
        }
    }

    /// The refresher's status: `refreshes`, `lease_expires_at`, `last_error`; None if not started.
    fn refresh_status<'py>(&self, py: Python<'py>) -> PyResult<Option<Bound<'py, PyDict>>> {
        let refresher = self.refresher.lock().unwrap_or_else(|p| p.into_inner());
        let Some(handle) = refresher.as_ref() else {
            return Ok(None);
        };
        let status = handle.status();
        let dict = PyDict::new(py);
        dict.set_item("refreshes", status.refreshes)?;
        dict.set_item("lease_expires_at", status.lease_expires_at)?;
        dict.set_item("last_error", status.last_error)?;
        Ok(Some(dict))
    }

    /// The text of an activation request file, for an air-gapped machine.
    #[pyo3(signature = (code, seat_name=None))]
    fn write_activation_request(&self, code: &str, seat_name: Option<&str>) -> PyResult<String> {
        self.core.write_activation_request(code, seat_name).map_err(to_py)
    }

    /// Verifies a licence file and makes it the current activation.
    fn load_licence_file(&self, py: Python<'_>, licence: &str) -> PyResult<PyObject> {
        lease(py, self.core.load_licence_file(licence))
    }

    /// Forgets the activation and returns the deactivation request file that frees the seat.
    fn write_deactivation_request(&self) -> PyResult<String> {
        self.core.write_deactivation_request().map_err(to_py)
    }
}

/// Pool units held; a context manager that gives them back when its block ends.
#[pyclass(module = "entitle", frozen)]
struct Checkout {
    client: Py<Client>,
    #[pyo3(get)]
    feature: String,
    #[pyo3(get)]
    count: u32,
    /// The lease after the checkout.
    #[pyo3(get)]
    lease: PyObject,
    held: Mutex<bool>,
}

#[pymethods]
impl Checkout {
    fn __enter__(slf: Py<Self>) -> Py<Self> {
        slf
    }

    #[pyo3(signature = (*_args))]
    fn __exit__(&self, py: Python<'_>, _args: &Bound<'_, pyo3::types::PyTuple>) -> PyResult<bool> {
        self.release(py)?;
        Ok(false)
    }

    /// Gives the units back now (once); returns the lease after, or None if already given back.
    fn release(&self, py: Python<'_>) -> PyResult<PyObject> {
        {
            let mut held = self.held.lock().unwrap_or_else(|p| p.into_inner());
            if !*held {
                return Ok(py.None());
            }
            *held = false;
        }
        let client = self.client.get();
        let claims = client.run(py, client.core.give_back(&self.feature, self.count));
        lease(py, claims)
    }
}

/// A stable seat id: the platform machine id hashed with the product id, or (in a container, or
/// without one) a random id kept in `fallback_file`.
#[pyfunction]
fn device_fingerprint(product: &str, fallback_file: std::path::PathBuf) -> PyResult<String> {
    entitle_client::device_fingerprint(product, &fallback_file).map_err(|e| CacheError::new_err(e.to_string()))
}

fn pinned(jwks: &str) -> PyResult<Vec<entitle_protocol::PublicKey>> {
    let jwks: Jwks = serde_json::from_str(jwks).map_err(|e| ConfigError::new_err(format!("not a JWKS: {e}")))?;
    Ok(jwks.public_keys())
}

/// Verifies a lease token offline (signature, product, seat, expiry, issue time) at `now`
/// (Unix seconds) and returns its claims: what the protocol test vectors check.
#[pyfunction]
fn verify_lease_token(
    py: Python<'_>,
    jwks: &str,
    token: &str,
    product: &str,
    seat_id: &str,
    now: i64,
) -> PyResult<PyObject> {
    let claims =
        LeaseClaims::verify(token, &pinned(jwks)?, now, product, seat_id).map_err(|e| to_py(Error::from(e)))?;
    json_to_py(py, &claims)
}

/// Verifies a licence file offline, like `verify_lease_token`, and that it is an offline lease.
#[pyfunction]
fn verify_licence_file(
    py: Python<'_>,
    jwks: &str,
    text: &str,
    product: &str,
    seat_id: &str,
    now: i64,
) -> PyResult<PyObject> {
    let claims =
        licence::verify_licence_file(text, &pinned(jwks)?, now, product, seat_id).map_err(|e| to_py(Error::from(e)))?;
    json_to_py(py, &claims)
}

#[pymodule]
#[pyo3(name = "entitle")]
fn entitle_module(m: &Bound<'_, PyModule>) -> PyResult<()> {
    let py = m.py();
    m.add_class::<Client>()?;
    m.add_class::<Checkout>()?;
    m.add_function(wrap_pyfunction!(device_fingerprint, m)?)?;
    m.add_function(wrap_pyfunction!(verify_lease_token, m)?)?;
    m.add_function(wrap_pyfunction!(verify_licence_file, m)?)?;
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    m.add("EntitleError", py.get_type::<EntitleError>())?;
    m.add("Denied", py.get_type::<Denied>())?;
    m.add("InvalidRequest", py.get_type::<InvalidRequest>())?;
    m.add("InvalidCredential", py.get_type::<InvalidCredential>())?;
    m.add("InvalidActivation", py.get_type::<InvalidActivation>())?;
    m.add("EntitlementNotStarted", py.get_type::<EntitlementNotStarted>())?;
    m.add("EntitlementExpired", py.get_type::<EntitlementExpired>())?;
    m.add("EntitlementDisabled", py.get_type::<EntitlementDisabled>())?;
    m.add("SeatLimitReached", py.get_type::<SeatLimitReached>())?;
    m.add("FeatureNotEntitled", py.get_type::<FeatureNotEntitled>())?;
    m.add("PoolExhausted", py.get_type::<PoolExhausted>())?;
    m.add("NothingCheckedOut", py.get_type::<NothingCheckedOut>())?;
    m.add("UsageLimitReached", py.get_type::<UsageLimitReached>())?;
    m.add("LeaseExpired", py.get_type::<LeaseExpired>())?;
    m.add("OfflineNotAllowed", py.get_type::<OfflineNotAllowed>())?;
    m.add("RateLimited", py.get_type::<RateLimited>())?;
    m.add("NotActivated", py.get_type::<NotActivated>())?;
    m.add("BadSignature", py.get_type::<BadSignature>())?;
    m.add("Replay", py.get_type::<Replay>())?;
    m.add("Expired", py.get_type::<Expired>())?;
    m.add("ClockSetBack", py.get_type::<ClockSetBack>())?;
    m.add("WrongProduct", py.get_type::<WrongProduct>())?;
    m.add("WrongSeat", py.get_type::<WrongSeat>())?;
    m.add("NetworkError", py.get_type::<NetworkError>())?;
    m.add("ServerError", py.get_type::<ServerError>())?;
    m.add("Malformed", py.get_type::<Malformed>())?;
    m.add("ConfigError", py.get_type::<ConfigError>())?;
    m.add("CacheError", py.get_type::<CacheError>())?;
    Ok(())
}
