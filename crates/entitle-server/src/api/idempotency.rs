//! The `Idempotency-Key` header on management writes, as middleware on the `/api/v1` routes:
//! the first request under a key runs and its answer is kept for 24 hours; a retry of the same
//! request gets that answer again (marked `Idempotent-Replayed: true`) instead of running twice.

use axum::body::{to_bytes, Body};
use axum::extract::{Request, State};
use axum::http::header::{AUTHORIZATION, CONTENT_TYPE, LOCATION};
use axum::http::{HeaderName, HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::error::ApiError;
use crate::app::{AppState, MAX_BODY_BYTES};
use crate::domain::idempotency::{fingerprint, keeps, IdempotencyKey};
use crate::services::idempotency::{self as service, Answer, Begin, Scope};
use crate::services::{api_keys, now};

pub const IDEMPOTENCY_KEY: HeaderName = HeaderName::from_static("idempotency-key");
pub const REPLAYED: HeaderName = HeaderName::from_static("idempotent-replayed");

/// The largest answer kept for replay; management answers are far smaller. A larger one is
/// sent but not kept (the key is given up, so a retry runs again).
const MAX_KEPT_ANSWER: usize = 4 * 1024 * 1024;

pub async fn idempotent(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let writes = matches!(
        *request.method(),
        Method::POST | Method::PUT | Method::PATCH | Method::DELETE
    );
    if !writes || !request.uri().path().starts_with("/api/v1/") {
        return next.run(request).await;
    }
    let Some(raw) = request.headers().get(&IDEMPOTENCY_KEY) else {
        return next.run(request).await;
    };
    let key = match raw
        .to_str()
        .map_err(|_| ())
        .and_then(|raw| IdempotencyKey::parse(raw).map_err(|_| ()))
    {
        Ok(key) => key,
        Err(()) => {
            return ApiError::new(
                StatusCode::BAD_REQUEST,
                "invalid_idempotency_key",
                "Idempotency-Key must be 1 to 255 printable ASCII characters",
            )
            .into_response()
        }
    };
    // Keys belong to the caller's tenant and API key. A request without a valid key runs as
    // usual (and is refused 401), so nothing is kept for callers nobody knows.
    let secret = bearer(&request);
    let scope = match scope(&state, secret.as_deref()).await {
        Ok(Some(scope)) => scope,
        Ok(None) => return next.run(request).await,
        Err(error) => return error.into_response(),
    };
    let (parts, body) = request.into_parts();
    let Ok(body) = to_bytes(body, MAX_BODY_BYTES).await else {
        return ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "payload_too_large",
            "the request body is too large",
        )
        .into_response();
    };
    let path = parts.uri.path_and_query().map_or(parts.uri.path(), |pq| pq.as_str());
    let request_hash = fingerprint(parts.method.as_str(), path, &body);
    let claim = match service::begin(&state.store, scope, key, &request_hash, now()).await {
        Ok(Begin::Run(claim)) => claim,
        Ok(Begin::Replay(answer)) => return replay(answer),
        Ok(Begin::InProgress) => {
            return ApiError::new(
                StatusCode::CONFLICT,
                "idempotency_key_in_progress",
                "a request with this Idempotency-Key is still running; retry shortly",
            )
            .retry_after(1)
            .into_response()
        }
        Ok(Begin::Reused) => {
            return ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "idempotency_key_reused",
                "this Idempotency-Key was used for a different request",
            )
            .into_response()
        }
        Err(error) => return ApiError::from(error).into_response(),
    };
    let response = next.run(Request::from_parts(parts, Body::from(body))).await;
    if !keeps(response.status().as_u16()) {
        settle(&state, claim, None).await;
        return response;
    }
    let (parts, body) = response.into_parts();
    let body = match to_bytes(body, MAX_KEPT_ANSWER).await {
        Ok(body) => body,
        Err(error) => {
            settle(&state, claim, None).await;
            return ApiError::internal(anyhow::anyhow!("reading an answer to keep: {error}")).into_response();
        }
    };
    let header = |name| {
        parts
            .headers
            .get(name)
            .and_then(|value: &HeaderValue| value.to_str().ok())
            .map(str::to_owned)
    };
    let answer = String::from_utf8(body.to_vec()).ok().map(|text| Answer {
        status: i64::from(parts.status.as_u16()),
        content_type: header(CONTENT_TYPE),
        location: header(LOCATION),
        body: text,
    });
    settle(&state, claim, answer).await;
    Response::from_parts(parts, Body::from(body))
}

/// Settling failed: the answer still goes out. The key stays "in progress" until its lease
/// runs out, after which a retry runs again — the same as after a crash.
async fn settle(state: &AppState, claim: service::Claim, answer: Option<Answer>) {
    if let Err(error) = service::finish(&state.store, claim, answer).await {
        tracing::warn!(%error, "settling an idempotency key failed");
    }
}

/// The bearer secret, read as [`super::extract::Caller`] reads it.
fn bearer(request: &Request) -> Option<String> {
    request
        .headers()
        .get(AUTHORIZATION)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.strip_prefix("Bearer "))
        .map(str::trim)
        .filter(|secret| !secret.is_empty() && secret.len() <= 256)
        .map(str::to_owned)
}

async fn scope(state: &AppState, secret: Option<&str>) -> Result<Option<Scope>, ApiError> {
    let Some(secret) = secret else {
        return Ok(None);
    };
    Ok(api_keys::authenticate(&state.store, secret).await?.map(|owner| Scope {
        tenant_id: owner.tenant_id,
        api_key_id: owner.key_id,
    }))
}

fn replay(answer: Answer) -> Response {
    let status = u16::try_from(answer.status)
        .ok()
        .and_then(|status| StatusCode::from_u16(status).ok())
        .unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let mut response = (status, answer.body).into_response();
    let headers = response.headers_mut();
    headers.remove(CONTENT_TYPE);
    for (name, value) in [(CONTENT_TYPE, answer.content_type), (LOCATION, answer.location)] {
        if let Some(value) = value.and_then(|value| HeaderValue::from_str(&value).ok()) {
            headers.insert(name, value);
        }
    }
    headers.insert(REPLAYED, HeaderValue::from_static("true"));
    response
}
