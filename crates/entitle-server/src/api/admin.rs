//! API keys and the event log.

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;

use super::error::{ApiResult, ErrorBody};
use super::extract::{ApiJson, ApiPath, ApiQuery, Caller, Permission};
use crate::app::AppState;
use crate::services::api_keys::{self, CreatedApiKey, NewApiKey};
use crate::services::events::{self, EventQuery};
use crate::services::{Page, Paging};
use crate::store::api_keys::ApiKey;
use crate::store::events::Event;

/// Creates a key. The response carries its secret: the only time it is shown.
#[utoipa::path(post, path = "/api-keys", tag = "api-keys", request_body = NewApiKey,
    responses((status = 201, body = CreatedApiKey), (status = "4XX", body = ErrorBody)),
    security(("api_key" = [])))]
pub async fn create_api_key(
    State(app): State<AppState>,
    caller: Caller,
    ApiJson(body): ApiJson<NewApiKey>,
) -> ApiResult<(StatusCode, Json<CreatedApiKey>)> {
    let ctx = caller.require(Permission::ManageKeys)?;
    Ok((
        StatusCode::CREATED,
        Json(api_keys::create(&app.store, &ctx, body).await?),
    ))
}

#[utoipa::path(get, path = "/api-keys", tag = "api-keys", params(Paging),
    responses((status = 200, body = Page<ApiKey>), (status = "4XX", body = ErrorBody)),
    security(("api_key" = [])))]
pub async fn list_api_keys(
    State(app): State<AppState>,
    caller: Caller,
    ApiQuery(paging): ApiQuery<Paging>,
) -> ApiResult<Json<Page<ApiKey>>> {
    let ctx = caller.require(Permission::ManageKeys)?;
    paging.check().map_err(crate::services::ServiceError::from)?;
    Ok(Json(api_keys::list(&app.store, &ctx, &paging).await?))
}

/// Revokes a key at once. Revoking a revoked key changes nothing.
#[utoipa::path(delete, path = "/api-keys/{id}", tag = "api-keys", params(("id" = String, Path)),
    responses((status = 200, body = ApiKey), (status = "4XX", body = ErrorBody)),
    security(("api_key" = [])))]
pub async fn revoke_api_key(
    State(app): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<String>,
) -> ApiResult<Json<ApiKey>> {
    let ctx = caller.require(Permission::ManageKeys)?;
    Ok(Json(api_keys::revoke(&app.store, &ctx, &id).await?))
}

/// Every recorded change, oldest first; filter by object, kind, action and time.
#[utoipa::path(get, path = "/events", tag = "events", params(EventQuery),
    responses((status = 200, body = Page<Event>), (status = "4XX", body = ErrorBody)),
    security(("api_key" = [])))]
pub async fn list_events(
    State(app): State<AppState>,
    caller: Caller,
    ApiQuery(query): ApiQuery<EventQuery>,
) -> ApiResult<Json<Page<Event>>> {
    let ctx = caller.require(Permission::Read)?;
    Ok(Json(events::list(&app.store, &ctx, &query).await?))
}
