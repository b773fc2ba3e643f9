//! The licensing API for applications: `/licensing/v1/…`. Every answer (denials included) is
//! signed with the tenant's key: the `Entitle-Signature` header is a detached JWS over the exact
//! body bytes, and the body echoes the client's nonce.

use axum::body::Bytes;
use axum::extract::{FromRequestParts, State};
use axum::http::header::{AUTHORIZATION, CACHE_CONTROL, CONTENT_TYPE, RETRY_AFTER};
use axum::http::request::Parts;
use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use entitle_protocol::licence::{self, ACTIVATION_REQUEST_LABEL, DEACTIVATION_REQUEST_LABEL};
use entitle_protocol::{
    ActivateRequest, ActivateResponse, CountRequest, DeactivateResponse, Denial as DenialBody, DenialDetail, Jwks,
    LeaseClaims, OfflineActivationRequest, OfflineDeactivationRequest, UsageRequest, NONCE_HEADER, SIGNATURE_HEADER,
};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use std::net::IpAddr;
use std::sync::Arc;
use utoipa::ToSchema;

use super::error::{ApiError, ErrorBody};
use super::extract::{ApiPath, ClientIp};
use crate::app::AppState;
use crate::domain::licensing::Denial;
use crate::services::attempts::{Budget, Refusal};
use crate::services::licensing::{self as licensing, Activated, Lease, LicensingError, Mode, Origin};
use crate::services::signing::TenantKeys;
use crate::services::ServiceError;

fn origin(ip: IpAddr) -> Origin {
    Origin {
        ip: Some(ip.to_string()),
        now: crate::services::now(),
    }
}

/// A licensing body: JSON, or a signed `invalid_request` denial (the caller signs it).
fn parse_body<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, LicensingError> {
    serde_json::from_slice(bytes).map_err(|error| LicensingError::BadRequest(format!("the body is not valid: {error}")))
}

/// What an unreadable activation body still says: its tenant (to sign the denial) and nonce.
fn body_hints(bytes: &[u8]) -> (Option<String>, Option<String>) {
    let value: serde_json::Value = serde_json::from_slice(bytes).unwrap_or_default();
    let field = |name: &str| {
        value
            .get(name)
            .and_then(|v| v.as_str())
            .filter(|v| v.len() <= 128)
            .map(str::to_owned)
    };
    (field("tenant"), field("nonce"))
}

/// A JSON body, signed when the tenant's keys are known.
fn signed(keys: Option<&TenantKeys>, status: StatusCode, body: Vec<u8>) -> Response {
    let signature = keys.map(|keys| keys.signer.sign_detached(&body));
    let mut response = (status, [(CONTENT_TYPE, "application/json")], body).into_response();
    if let Some(value) = signature.and_then(|s| HeaderValue::from_str(&s).ok()) {
        response.headers_mut().insert(SIGNATURE_HEADER, value);
    }
    response
}

fn to_bytes(value: &impl Serialize) -> Vec<u8> {
    serde_json::to_vec(value).unwrap_or_default()
}

fn denial_response(keys: Option<&TenantKeys>, error: LicensingError, nonce: Option<String>) -> Response {
    let (status, code, message) = match error {
        LicensingError::Denied(denial) => (
            StatusCode::from_u16(denial.status()).unwrap_or(StatusCode::FORBIDDEN),
            denial.code().to_owned(),
            denial.message().to_owned(),
        ),
        LicensingError::BadRequest(message) => (
            StatusCode::BAD_REQUEST,
            Denial::InvalidRequest.code().to_owned(),
            message,
        ),
        LicensingError::Internal(ServiceError::Busy { retry_after_seconds }) => {
            crate::metrics::denial(Denial::ServerBusy.code());
            let body = DenialBody {
                error: DenialDetail {
                    code: Denial::ServerBusy.code().to_owned(),
                    message: Denial::ServerBusy.message().to_owned(),
                },
                nonce,
            };
            let mut response = signed(keys, StatusCode::SERVICE_UNAVAILABLE, to_bytes(&body));
            response.headers_mut().insert(RETRY_AFTER, retry_after_seconds.into());
            return response;
        }
        LicensingError::Internal(error) => return ApiError::from(error).into_response(),
    };
    crate::metrics::denial(&code);
    let body = DenialBody {
        error: DenialDetail { code, message },
        nonce,
    };
    signed(keys, status, to_bytes(&body))
}

async fn tenant_keys(app: &AppState, tenant_id: &str) -> Result<Option<std::sync::Arc<TenantKeys>>, Response> {
    app.keys
        .get(&app.store, tenant_id)
        .await
        .map_err(|e| ApiError::from(e).into_response())
}

/// The lease claims as the body: with the detached signature they form the new lease token.
async fn lease_response(app: &AppState, lease: Lease) -> Response {
    match tenant_keys(app, &lease.tenant_id).await {
        Ok(keys) => signed(keys.as_deref(), StatusCode::OK, to_bytes(&lease.claims)),
        Err(response) => response,
    }
}

/// The budgets an activation attempt draws on: its address, and the account or code prefix.
fn budgets(request: &ActivateRequest, tenant_known: bool, ip: IpAddr) -> Vec<Budget> {
    let tenant = tenant_known.then_some(request.tenant.as_str());
    let mut budgets = vec![Budget::address(tenant, ip)];
    if let Some(tenant) = tenant {
        if let Some(code) = &request.activation_code {
            budgets.push(Budget::code_prefix(tenant, code));
        } else if let Some(email) = &request.email {
            budgets.push(Budget::account(tenant, email));
        }
    }
    budgets
}

/// Activation, online or offline, behind the credential budgets: one unit is reserved from each
/// before the credential is evaluated, and given back unless the credential was wrong.
async fn guarded_activation(
    app: &AppState,
    ip: IpAddr,
    request: &ActivateRequest,
    mode: Mode,
) -> Result<(Activated, Arc<TenantKeys>), Response> {
    let nonce = Some(request.nonce.clone());
    let keys = tenant_keys(app, &request.tenant).await?;
    let admission = match app
        .attempts
        .admit(&app.store, &budgets(request, keys.is_some(), ip))
        .await
    {
        Ok(Ok(admission)) => admission,
        Ok(Err(Refusal::Exhausted { retry_after_seconds })) => {
            let mut response = denial_response(keys.as_deref(), Denial::RateLimited.into(), nonce);
            response
                .headers_mut()
                .insert(RETRY_AFTER, HeaderValue::from(retry_after_seconds));
            return Err(response);
        }
        Ok(Err(Refusal::Busy { retry_after_seconds })) => {
            let busy = ServiceError::Busy { retry_after_seconds };
            return Err(denial_response(keys.as_deref(), busy.into(), nonce));
        }
        Err(error) => return Err(denial_response(keys.as_deref(), error.into(), nonce)),
    };
    let outcome = match &keys {
        Some(_) => licensing::activate(&app.store, request, mode, &origin(ip)).await,
        None => Err(Denial::InvalidCredential.into()),
    };
    let failed = matches!(outcome, Err(LicensingError::Denied(Denial::InvalidCredential)));
    if let Err(error) = app.attempts.settle(&app.store, admission, failed).await {
        tracing::warn!(%error, "settling a credential attempt failed");
    }
    let Some(keys) = keys else {
        return Err(denial_response(None, Denial::InvalidCredential.into(), nonce));
    };
    match outcome {
        Ok(activated) => Ok((activated, keys)),
        Err(error) => Err(denial_response(Some(&keys), error, nonce)),
    }
}

/// Takes a seat with an activation code or an end user's email and password.
#[utoipa::path(post, path = "/licensing/v1/activate", tag = "licensing", request_body = ActivateRequest,
    responses((status = 200, body = ActivateResponse), (status = "4XX", body = DenialBody),
              (status = 503, body = DenialBody, description = "Busy: retry after `Retry-After` seconds")))]
pub async fn activate(State(app): State<AppState>, ClientIp(ip): ClientIp, body: Bytes) -> Response {
    let request: ActivateRequest = match parse_body(&body) {
        Ok(request) => request,
        Err(error) => {
            let (tenant, nonce) = body_hints(&body);
            let keys = match tenant {
                Some(tenant) => tenant_keys(&app, &tenant).await.ok().flatten(),
                None => None,
            };
            return denial_response(keys.as_deref(), error, nonce);
        }
    };
    match guarded_activation(&app, ip, &request, Mode::Online).await {
        Ok((activated, keys)) => {
            crate::metrics::activation("online");
            let body = ActivateResponse {
                activation_id: activated.activation_id,
                activation_secret: activated.secret,
                lease_token: keys.signer.sign_compact(&to_bytes(&activated.lease.claims)),
                nonce: request.nonce,
            };
            signed(Some(&keys), StatusCode::OK, to_bytes(&body))
        }
        Err(response) => response,
    }
}

/// `Authorization: Bearer <activation secret>` and `Entitle-Nonce: <nonce>`.
pub struct ActivationCall {
    secret: String,
    nonce: String,
    origin: Origin,
}

impl<S: Send + Sync> FromRequestParts<S> for ActivationCall {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        let header = |name| {
            parts
                .headers
                .get(name)
                .and_then(|v: &HeaderValue| v.to_str().ok())
                .map(str::trim)
        };
        let nonce = header(NONCE_HEADER).unwrap_or_default().to_owned();
        let Some(secret) = header(AUTHORIZATION.as_str())
            .and_then(|v| v.strip_prefix("Bearer "))
            .map(str::to_owned)
        else {
            return Err(denial_response(None, Denial::InvalidActivation.into(), Some(nonce)));
        };
        Ok(ActivationCall {
            secret,
            nonce,
            origin: origin(ClientIp::of(parts).0),
        })
    }
}

async fn lease_or_denial(app: &AppState, call: &ActivationCall, outcome: Result<Lease, LicensingError>) -> Response {
    match outcome {
        Ok(lease) => lease_response(app, lease).await,
        Err(error) => {
            let keys = tenant_of_secret(app, &call.secret, &error).await;
            denial_response(keys.as_deref(), error, Some(call.nonce.clone()))
        }
    }
}

/// Denials for a known activation are signed with its tenant's key. Not looked up when the
/// database is unreachable: that answer is unsigned anyway, and must not wait twice.
async fn tenant_of_secret(app: &AppState, secret: &str, error: &LicensingError) -> Option<std::sync::Arc<TenantKeys>> {
    if matches!(error, LicensingError::Internal(ServiceError::Store(store)) if store.is_unavailable()) {
        return None;
    }
    let mut conn = app.store.read().await.ok()?;
    let hash = crate::domain::keys::hash_secret(secret);
    let (tenant_id, _) = crate::store::licensing::activation_by_secret(&mut conn, &hash)
        .await
        .ok()??;
    drop(conn);
    app.keys.get(&app.store, &tenant_id).await.ok()?
}

/// The activation's current lease (not extended). The body is the lease claims; with the
/// signature header it forms the lease token.
#[utoipa::path(get, path = "/licensing/v1/activation", tag = "licensing",
    params(("entitle-nonce" = String, Header, description = "A fresh random value, echoed in the signed body")),
    responses((status = 200, body = LeaseClaims), (status = "4XX", body = DenialBody)),
    security(("activation_secret" = [])))]
pub async fn state(State(app): State<AppState>, call: ActivationCall) -> Response {
    let outcome = licensing::state(&app.store, &call.secret, &call.nonce, &call.origin).await;
    lease_or_denial(&app, &call, outcome).await
}

/// Extends the lease (never past the entitlement's expiry plus grace) and answers the new lease.
#[utoipa::path(post, path = "/licensing/v1/activation/refresh", tag = "licensing",
    params(("entitle-nonce" = String, Header)),
    responses((status = 200, body = LeaseClaims), (status = "4XX", body = DenialBody)),
    security(("activation_secret" = [])))]
pub async fn refresh(State(app): State<AppState>, call: ActivationCall) -> Response {
    let outcome = licensing::refresh(&app.store, &app.leases, &call.secret, &call.nonce, &call.origin).await;
    lease_or_denial(&app, &call, outcome).await
}

/// Frees the seat and returns every unit it holds.
#[utoipa::path(delete, path = "/licensing/v1/activation", tag = "licensing",
    params(("entitle-nonce" = String, Header)),
    responses((status = 200, body = DeactivateResponse), (status = "4XX", body = DenialBody)),
    security(("activation_secret" = [])))]
pub async fn deactivate(State(app): State<AppState>, call: ActivationCall) -> Response {
    match licensing::deactivate(&app.store, &call.secret, &call.nonce, &call.origin).await {
        Ok((tenant_id, activation_id)) => {
            let keys = tenant_keys(&app, &tenant_id).await.ok().flatten();
            let body = DeactivateResponse {
                activation_id,
                deactivated: true,
                nonce: Some(call.nonce),
            };
            signed(keys.as_deref(), StatusCode::OK, to_bytes(&body))
        }
        Err(error) => {
            let keys = tenant_of_secret(&app, &call.secret, &error).await;
            denial_response(keys.as_deref(), error, Some(call.nonce))
        }
    }
}

/// How many units a checkout or return is for: one without a body.
fn units(body: &[u8]) -> Result<i64, LicensingError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(1);
    }
    parse_body::<CountRequest>(body).map(|request| request.count)
}

/// Checks out units of an element-pool feature for this seat.
#[utoipa::path(post, path = "/licensing/v1/activation/features/{key}/checkout", tag = "licensing",
    params(("key" = String, Path), ("entitle-nonce" = String, Header)), request_body(content = Option<CountRequest>),
    responses((status = 200, body = LeaseClaims), (status = "4XX", body = DenialBody)),
    security(("activation_secret" = [])))]
pub async fn checkout(
    State(app): State<AppState>,
    call: ActivationCall,
    ApiPath(key): ApiPath<String>,
    body: Bytes,
) -> Response {
    let outcome = match units(&body) {
        Ok(count) => {
            licensing::check_out(&app.store, &call.secret, &key, count, false, &call.nonce, &call.origin).await
        }
        Err(error) => Err(error),
    };
    lease_or_denial(&app, &call, outcome).await
}

/// Returns units of an element-pool feature this seat holds.
#[utoipa::path(post, path = "/licensing/v1/activation/features/{key}/return", tag = "licensing",
    params(("key" = String, Path), ("entitle-nonce" = String, Header)), request_body(content = Option<CountRequest>),
    responses((status = 200, body = LeaseClaims), (status = "4XX", body = DenialBody)),
    security(("activation_secret" = [])))]
pub async fn give_back(
    State(app): State<AppState>,
    call: ActivationCall,
    ApiPath(key): ApiPath<String>,
    body: Bytes,
) -> Response {
    let outcome = match units(&body) {
        Ok(count) => licensing::check_out(&app.store, &call.secret, &key, count, true, &call.nonce, &call.origin).await,
        Err(error) => Err(error),
    };
    lease_or_denial(&app, &call, outcome).await
}

/// Consumes a metered (usage-count) feature; each use is recorded with its time.
#[utoipa::path(post, path = "/licensing/v1/activation/usage", tag = "licensing",
    params(("entitle-nonce" = String, Header)), request_body = UsageRequest,
    responses((status = 200, body = LeaseClaims), (status = "4XX", body = DenialBody)),
    security(("activation_secret" = [])))]
pub async fn usage(State(app): State<AppState>, call: ActivationCall, body: Bytes) -> Response {
    let outcome = match parse_body::<UsageRequest>(&body) {
        Ok(body) => {
            licensing::record_usage(
                &app.store,
                &call.secret,
                &body.feature,
                body.amount,
                &call.nonce,
                &call.origin,
            )
            .await
        }
        Err(error) => Err(error),
    };
    lease_or_denial(&app, &call, outcome).await
}

/// An armoured request file, as the application wrote it.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RequestFile {
    pub request: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct OfflineActivation {
    pub activation_id: String,
    /// Save as the application's licence file.
    pub licence_file: String,
    pub nonce: String,
}

/// Offline activation: a request file in, a signed licence file out.
#[utoipa::path(post, path = "/licensing/v1/offline/activate", tag = "licensing", request_body = RequestFile,
    responses((status = 200, body = OfflineActivation), (status = "4XX", body = DenialBody)))]
pub async fn offline_activate(State(app): State<AppState>, ClientIp(ip): ClientIp, body: Bytes) -> Response {
    let Some(request) = parse_body::<RequestFile>(&body)
        .ok()
        .and_then(|file| licence::read_request::<OfflineActivationRequest>(ACTIVATION_REQUEST_LABEL, &file.request))
    else {
        return denial_response(
            None,
            LicensingError::BadRequest("not an activation request file".into()),
            None,
        );
    };
    let activate = ActivateRequest {
        tenant: request.tenant,
        product: request.product,
        activation_code: Some(request.activation_code),
        seat_id: request.seat_id,
        seat_name: request.seat_name,
        nonce: request.nonce.clone(),
        ..Default::default()
    };
    match guarded_activation(&app, ip, &activate, Mode::Offline).await {
        Ok((activated, keys)) => {
            crate::metrics::activation("offline");
            let token = keys.signer.sign_compact(&to_bytes(&activated.lease.claims));
            let body = OfflineActivation {
                activation_id: activated.activation_id,
                licence_file: licence::write_licence_file(&token, &activated.secret),
                nonce: request.nonce,
            };
            signed(Some(&keys), StatusCode::OK, to_bytes(&body))
        }
        Err(response) => response,
    }
}

/// Offline deactivation: the deactivation request file the application wrote frees its seat.
#[utoipa::path(post, path = "/licensing/v1/offline/deactivate", tag = "licensing", request_body = RequestFile,
    responses((status = 200, body = DeactivateResponse), (status = "4XX", body = DenialBody)))]
pub async fn offline_deactivate(State(app): State<AppState>, ClientIp(ip): ClientIp, body: Bytes) -> Response {
    let Some(request) = parse_body::<RequestFile>(&body).ok().and_then(|file| {
        licence::read_request::<OfflineDeactivationRequest>(DEACTIVATION_REQUEST_LABEL, &file.request)
    }) else {
        return denial_response(
            None,
            LicensingError::BadRequest("not a deactivation request file".into()),
            None,
        );
    };
    let keys = tenant_keys(&app, &request.tenant).await.ok().flatten();
    match licensing::offline_deactivate(&app.store, &request, &origin(ip)).await {
        Ok((_, activation_id)) => {
            let body = DeactivateResponse {
                activation_id,
                deactivated: true,
                nonce: Some(request.nonce),
            };
            signed(keys.as_deref(), StatusCode::OK, to_bytes(&body))
        }
        Err(error) => denial_response(keys.as_deref(), error, Some(request.nonce)),
    }
}

/// The tenant's public keys, to verify lease tokens, licence files and response signatures.
#[utoipa::path(get, path = "/licensing/v1/tenants/{tenant}/jwks.json", tag = "licensing",
    params(("tenant" = String, Path)),
    responses((status = 200, body = Jwks), (status = 404, body = ErrorBody)))]
pub async fn jwks(State(app): State<AppState>, ApiPath(tenant): ApiPath<String>) -> Response {
    match tenant_keys(&app, &tenant).await {
        Ok(Some(keys)) => (
            [
                (CONTENT_TYPE, "application/json"),
                (CACHE_CONTROL, "public, max-age=300"),
            ],
            keys.jwks.clone(),
        )
            .into_response(),
        Ok(None) => ApiError::not_found("tenant").into_response(),
        Err(response) => response,
    }
}
