//! The C ABI of the Entitle SDK: `entitle-client` behind an opaque handle, for C, C++ and any
//! language with a C foreign-function interface. `include/entitle.h` is the contract.
//!
//! Every function returns a status (`status.rs`), catches panics (none crosses the boundary)
//! and leaves a message for `entitle_last_error` on the calling thread. Strings handed out are
//! owned by the caller and freed with `entitle_string_free`. A handle may be shared by threads:
//! the client is internally synchronised and its runtime accepts calls from any thread.

// The safety contract of every function (valid pointers, NUL-terminated UTF-8, a handle from
// entitle_client_new used until entitle_client_free) is stated once, in entitle.h.
#![allow(clippy::missing_safety_doc)]

mod status;

use std::cell::RefCell;
use std::ffi::{c_char, c_int, CStr, CString};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::ptr;
use std::sync::Mutex;

use entitle_client::{Client, Config, Credential, Error, FeatureClaim, RefreshHandle};

/// The opaque handle: one product on one device.
pub struct EntitleClient {
    refresher: Mutex<Option<RefreshHandle>>,
    client: Client,
    runtime: tokio::runtime::Runtime,
}

/// A feature of the current lease.
#[repr(C)]
pub struct EntitleFeature {
    /// 0 `bool`, 1 `element_pool`, 2 `usage_count`, 3 another kind.
    pub kind: c_int,
    /// 1 when granted and enabled.
    pub enabled: c_int,
    /// Pool size or usage allowance; -1 is unlimited.
    pub limit: i64,
    pub overdraft: i64,
    /// Units checked out by every seat (pool) or used this period (usage).
    pub used: i64,
    /// Units this seat holds (pool).
    pub checked_out: i64,
}

struct Failure {
    status: c_int,
    message: String,
}

impl From<Error> for Failure {
    fn from(error: Error) -> Failure {
        Failure {
            status: status::of_error(&error),
            message: error.to_string(),
        }
    }
}

fn invalid(message: &str) -> Failure {
    Failure {
        status: status::INVALID_ARGUMENT,
        message: message.to_owned(),
    }
}

thread_local! {
    static LAST_ERROR: RefCell<Option<CString>> = const { RefCell::new(None) };
}

fn set_last_error(message: Option<String>) {
    let message = message.map(|m| CString::new(m.replace('\0', " ")).unwrap_or_default());
    LAST_ERROR.with(|last| *last.borrow_mut() = message);
}

/// Runs `body`, turning its failure or panic into a status and the thread's last error.
fn guard(body: impl FnOnce() -> Result<(), Failure>) -> c_int {
    match catch_unwind(AssertUnwindSafe(body)) {
        Ok(Ok(())) => {
            set_last_error(None);
            status::OK
        }
        Ok(Err(failure)) => {
            set_last_error(Some(failure.message));
            failure.status
        }
        Err(_) => {
            set_last_error(Some("internal error in the Entitle SDK (a panic, caught)".into()));
            status::PANIC
        }
    }
}

unsafe fn text<'a>(ptr: *const c_char, what: &str) -> Result<&'a str, Failure> {
    if ptr.is_null() {
        return Err(invalid(&format!("{what} is NULL")));
    }
    CStr::from_ptr(ptr)
        .to_str()
        .map_err(|_| invalid(&format!("{what} is not UTF-8")))
}

unsafe fn optional_text<'a>(ptr: *const c_char, what: &str) -> Result<Option<&'a str>, Failure> {
    if ptr.is_null() {
        Ok(None)
    } else {
        text(ptr, what).map(Some)
    }
}

unsafe fn handle<'a>(ptr: *const EntitleClient) -> Result<&'a EntitleClient, Failure> {
    ptr.as_ref().ok_or_else(|| invalid("the client handle is NULL"))
}

unsafe fn out_ptr<'a, T>(ptr: *mut T) -> Result<&'a mut T, Failure> {
    ptr.as_mut().ok_or_else(|| invalid("the output pointer is NULL"))
}

/// Checked before a call with side effects, so that its output is never lost.
fn require_out<T>(out: *mut T) -> Result<(), Failure> {
    if out.is_null() {
        Err(invalid("the output pointer is NULL"))
    } else {
        Ok(())
    }
}

unsafe fn put_string(out: *mut *mut c_char, value: String) -> Result<(), Failure> {
    let out = out_ptr(out)?;
    let value = CString::new(value).map_err(|_| invalid("the string holds a NUL byte"))?;
    *out = value.into_raw();
    Ok(())
}

impl EntitleClient {
    fn run<T>(&self, call: impl std::future::Future<Output = entitle_client::Result<T>>) -> Result<T, Failure> {
        self.runtime.block_on(call).map_err(Failure::from)
    }
}

/// The library version, a static string.
#[no_mangle]
pub extern "C" fn entitle_version() -> *const c_char {
    concat!(env!("CARGO_PKG_VERSION"), "\0").as_ptr().cast()
}

/// The stable name of a status (`"seat_limit_reached"`, …), a static string; NULL if unknown.
#[no_mangle]
pub extern "C" fn entitle_status_name(status: c_int) -> *const c_char {
    status::name(status).map_or(ptr::null(), CStr::as_ptr)
}

/// The message of this thread's last failed call, valid until its next call; NULL after a success.
#[no_mangle]
pub extern "C" fn entitle_last_error() -> *const c_char {
    LAST_ERROR.with(|last| last.borrow().as_ref().map_or(ptr::null(), |m| m.as_ptr()))
}

#[no_mangle]
pub unsafe extern "C" fn entitle_string_free(value: *mut c_char) {
    if !value.is_null() {
        let _ = catch_unwind(AssertUnwindSafe(|| drop(CString::from_raw(value))));
    }
}

#[no_mangle]
pub unsafe extern "C" fn entitle_device_fingerprint(
    product: *const c_char,
    fallback_file: *const c_char,
    out: *mut *mut c_char,
) -> c_int {
    guard(|| {
        require_out(out)?;
        let product = text(product, "product")?;
        let file = text(fallback_file, "fallback_file")?;
        let seat = entitle_client::device_fingerprint(product, file.as_ref()).map_err(|e| Failure {
            status: status::CACHE,
            message: format!("installation id file {file}: {e}"),
        })?;
        put_string(out, seat)
    })
}

#[no_mangle]
#[allow(clippy::too_many_arguments)]
pub unsafe extern "C" fn entitle_client_new(
    server_url: *const c_char,
    tenant: *const c_char,
    product: *const c_char,
    jwks_json: *const c_char,
    seat_id: *const c_char,
    cache_path: *const c_char,
    root_ca_pem: *const c_char,
    out: *mut *mut EntitleClient,
) -> c_int {
    guard(|| {
        let out = out_ptr(out)?;
        *out = ptr::null_mut();
        let mut config = Config::new(
            text(server_url, "server_url")?,
            text(tenant, "tenant")?,
            text(product, "product")?,
            text(jwks_json, "jwks_json")?,
            text(seat_id, "seat_id")?,
            text(cache_path, "cache_path")?,
        )?;
        if let Some(pem) = optional_text(root_ca_pem, "root_ca_pem")? {
            config = config.with_root_certificate(pem.as_bytes())?;
        }
        // One worker: it runs the background refresher; calls run on the caller's thread.
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("entitle-sdk")
            .enable_all()
            .build()
            .map_err(|e| Failure {
                status: status::CONFIG,
                message: format!("cannot start the SDK's runtime: {e}"),
            })?;
        let client = Client::new(config)?;
        *out = Box::into_raw(Box::new(EntitleClient {
            refresher: Mutex::new(None),
            client,
            runtime,
        }));
        Ok(())
    })
}

/// Stops the refresher and frees the handle. NULL is ignored.
#[no_mangle]
pub unsafe extern "C" fn entitle_client_free(client: *mut EntitleClient) {
    if !client.is_null() {
        let _ = catch_unwind(AssertUnwindSafe(|| drop(Box::from_raw(client))));
    }
}

/// 1 when activated, 0 when not, -1 for a NULL handle.
#[no_mangle]
pub unsafe extern "C" fn entitle_is_activated(client: *const EntitleClient) -> c_int {
    match client.as_ref() {
        Some(c) => catch_unwind(AssertUnwindSafe(|| c_int::from(c.client.is_activated()))).unwrap_or(-1),
        None => -1,
    }
}

#[no_mangle]
pub unsafe extern "C" fn entitle_activate_code(
    client: *const EntitleClient,
    code: *const c_char,
    seat_name: *const c_char,
) -> c_int {
    guard(|| {
        let c = handle(client)?;
        let credential = Credential::Code(text(code, "code")?.to_owned());
        let seat_name = optional_text(seat_name, "seat_name")?;
        c.run(c.client.activate(credential, seat_name)).map(drop)
    })
}

#[no_mangle]
pub unsafe extern "C" fn entitle_activate_account(
    client: *const EntitleClient,
    email: *const c_char,
    password: *const c_char,
    seat_name: *const c_char,
) -> c_int {
    guard(|| {
        let c = handle(client)?;
        let credential = Credential::Account {
            email: text(email, "email")?.to_owned(),
            password: text(password, "password")?.to_owned(),
        };
        let seat_name = optional_text(seat_name, "seat_name")?;
        c.run(c.client.activate(credential, seat_name)).map(drop)
    })
}

/// The activation's current lease from the server (not extended).
#[no_mangle]
pub unsafe extern "C" fn entitle_state(client: *const EntitleClient) -> c_int {
    guard(|| {
        let c = handle(client)?;
        c.run(c.client.state()).map(drop)
    })
}

#[no_mangle]
pub unsafe extern "C" fn entitle_refresh(client: *const EntitleClient) -> c_int {
    guard(|| {
        let c = handle(client)?;
        c.run(c.client.refresh()).map(drop)
    })
}

/// At start-up: the cached lease, refreshed first when due; offline, a still-valid lease is OK.
#[no_mangle]
pub unsafe extern "C" fn entitle_ensure_lease(client: *const EntitleClient) -> c_int {
    guard(|| {
        let c = handle(client)?;
        c.run(c.client.ensure_lease()).map(drop)
    })
}

#[no_mangle]
pub unsafe extern "C" fn entitle_checkout(client: *const EntitleClient, feature: *const c_char, count: u32) -> c_int {
    guard(|| {
        let c = handle(client)?;
        c.run(c.client.checkout(text(feature, "feature")?, count)).map(drop)
    })
}

#[no_mangle]
pub unsafe extern "C" fn entitle_return(client: *const EntitleClient, feature: *const c_char, count: u32) -> c_int {
    guard(|| {
        let c = handle(client)?;
        c.run(c.client.give_back(text(feature, "feature")?, count)).map(drop)
    })
}

#[no_mangle]
pub unsafe extern "C" fn entitle_record_usage(
    client: *const EntitleClient,
    feature: *const c_char,
    amount: u32,
) -> c_int {
    guard(|| {
        let c = handle(client)?;
        c.run(c.client.record_usage(text(feature, "feature")?, amount))
            .map(drop)
    })
}

#[no_mangle]
pub unsafe extern "C" fn entitle_deactivate(client: *const EntitleClient) -> c_int {
    guard(|| {
        let c = handle(client)?;
        c.run(c.client.deactivate())
    })
}

/// Renews the lease in the background until the handle is freed. Calling it again is harmless.
#[no_mangle]
pub unsafe extern "C" fn entitle_start_refresher(client: *const EntitleClient) -> c_int {
    guard(|| {
        let c = handle(client)?;
        let mut refresher = c.refresher.lock().unwrap_or_else(|p| p.into_inner());
        if refresher.is_none() {
            let _runtime = c.runtime.enter();
            *refresher = Some(c.client.spawn_refresher());
        }
        Ok(())
    })
}

/// `*out` is 1 when the current lease grants and enables `feature`, else 0 (offline).
#[no_mangle]
pub unsafe extern "C" fn entitle_is_enabled(
    client: *const EntitleClient,
    feature: *const c_char,
    out: *mut c_int,
) -> c_int {
    guard(|| {
        let c = handle(client)?;
        let enabled = c.client.is_enabled(text(feature, "feature")?)?;
        *out_ptr(out)? = c_int::from(enabled);
        Ok(())
    })
}

/// A feature of the current lease (offline); `ENTITLE_NOT_FOUND` when the lease has none.
#[no_mangle]
pub unsafe extern "C" fn entitle_get_feature(
    client: *const EntitleClient,
    feature: *const c_char,
    out: *mut EntitleFeature,
) -> c_int {
    guard(|| {
        let c = handle(client)?;
        let key = text(feature, "feature")?;
        let claim: FeatureClaim = c.client.feature(key)?.ok_or_else(|| Failure {
            status: status::NOT_FOUND,
            message: format!("the lease has no feature {key:?}"),
        })?;
        *out_ptr(out)? = EntitleFeature {
            kind: match claim.kind.as_str() {
                "bool" => 0,
                "element_pool" => 1,
                "usage_count" => 2,
                _ => 3,
            },
            enabled: c_int::from(claim.enabled),
            limit: claim.limit.unwrap_or(-1),
            overdraft: claim.overdraft,
            used: claim.used,
            checked_out: claim.checked_out,
        };
        Ok(())
    })
}

/// An attribute's value as JSON (`5`, `"gold"`, …); `ENTITLE_NOT_FOUND` when the lease has none.
#[no_mangle]
pub unsafe extern "C" fn entitle_attribute_json(
    client: *const EntitleClient,
    key: *const c_char,
    out: *mut *mut c_char,
) -> c_int {
    guard(|| {
        let c = handle(client)?;
        let key = text(key, "key")?;
        let lease = c.client.lease()?;
        let attribute = lease.attributes.iter().find(|a| a.key == key).ok_or_else(|| Failure {
            status: status::NOT_FOUND,
            message: format!("the lease has no attribute {key:?}"),
        })?;
        put_string(out, attribute.value.to_string())
    })
}

/// The current lease's claims as JSON, verified now (offline).
#[no_mangle]
pub unsafe extern "C" fn entitle_lease_json(client: *const EntitleClient, out: *mut *mut c_char) -> c_int {
    guard(|| {
        let c = handle(client)?;
        let lease = c.client.lease()?;
        let json = serde_json::to_string(&lease).map_err(|e| Failure {
            status: status::MALFORMED,
            message: e.to_string(),
        })?;
        put_string(out, json)
    })
}

/// The current lease token (a JWT), e.g. to show the application's own backend.
#[no_mangle]
pub unsafe extern "C" fn entitle_lease_token(client: *const EntitleClient, out: *mut *mut c_char) -> c_int {
    guard(|| {
        let c = handle(client)?;
        let token = c.client.lease_token().ok_or(Error::NotActivated)?;
        put_string(out, token)
    })
}

#[no_mangle]
pub unsafe extern "C" fn entitle_write_activation_request(
    client: *const EntitleClient,
    code: *const c_char,
    seat_name: *const c_char,
    out: *mut *mut c_char,
) -> c_int {
    guard(|| {
        require_out(out)?;
        let c = handle(client)?;
        let request = c
            .client
            .write_activation_request(text(code, "code")?, optional_text(seat_name, "seat_name")?)?;
        put_string(out, request)
    })
}

#[no_mangle]
pub unsafe extern "C" fn entitle_load_licence_file(client: *const EntitleClient, licence: *const c_char) -> c_int {
    guard(|| {
        let c = handle(client)?;
        c.client.load_licence_file(text(licence, "licence")?).map(drop)?;
        Ok(())
    })
}

#[no_mangle]
pub unsafe extern "C" fn entitle_write_deactivation_request(
    client: *const EntitleClient,
    out: *mut *mut c_char,
) -> c_int {
    guard(|| {
        require_out(out)?;
        let c = handle(client)?;
        let request = c.client.write_deactivation_request()?;
        put_string(out, request)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_panic_becomes_a_status_and_a_message() {
        let status = guard(|| panic!("boom"));
        assert_eq!(status, status::PANIC);
        let message = unsafe { CStr::from_ptr(entitle_last_error()) };
        assert!(message.to_str().unwrap().contains("panic"));
        assert_eq!(guard(|| Ok(())), status::OK);
        assert!(entitle_last_error().is_null());
    }

    #[test]
    fn null_handles_and_outputs_are_refused() {
        unsafe {
            assert_eq!(entitle_refresh(ptr::null()), status::INVALID_ARGUMENT);
            assert_eq!(
                entitle_device_fingerprint(c"prd".as_ptr(), c"/tmp/x".as_ptr(), ptr::null_mut()),
                status::INVALID_ARGUMENT
            );
            entitle_client_free(ptr::null_mut());
            entitle_string_free(ptr::null_mut());
        }
    }
}
