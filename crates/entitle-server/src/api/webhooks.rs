//! Outgoing webhook endpoints, their delivery log, and replays.

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;

use super::error::{ApiResult, ErrorBody};
use super::extract::{ApiJson, ApiPath, ApiQuery, Caller, Permission};
use crate::app::AppState;
use crate::services::webhooks::{
    self as webhooks, DeliveryDetail, DeliveryQuery, NewWebhookEndpoint, WebhookEndpoint, WebhookEndpointPatch,
};
use crate::services::{Page, Paging};
use crate::store::webhooks::Message;

/// Adds an endpoint. The answer holds its signing `secret` (`whsec_…`), shown this once.
#[utoipa::path(post, path = "/webhook-endpoints", tag = "webhooks", operation_id = "create_webhook_endpoint",
    request_body = NewWebhookEndpoint,
    responses((status = 201, body = WebhookEndpoint), (status = "4XX", body = ErrorBody)),
    security(("api_key" = [])))]
pub async fn create(
    State(app): State<AppState>,
    caller: Caller,
    ApiJson(body): ApiJson<NewWebhookEndpoint>,
) -> ApiResult<(StatusCode, Json<WebhookEndpoint>)> {
    let ctx = caller.require(Permission::ManageCatalogue)?;
    Ok((
        StatusCode::CREATED,
        Json(webhooks::create(&app.store, &ctx, body).await?),
    ))
}

#[utoipa::path(get, path = "/webhook-endpoints", tag = "webhooks", operation_id = "list_webhook_endpoints",
    params(Paging),
    responses((status = 200, body = Page<WebhookEndpoint>), (status = "4XX", body = ErrorBody)),
    security(("api_key" = [])))]
pub async fn list(
    State(app): State<AppState>,
    caller: Caller,
    ApiQuery(paging): ApiQuery<Paging>,
) -> ApiResult<Json<Page<WebhookEndpoint>>> {
    let ctx = caller.require(Permission::Read)?;
    Ok(Json(webhooks::list(&app.store, &ctx, &paging).await?))
}

#[utoipa::path(get, path = "/webhook-endpoints/{id}", tag = "webhooks", operation_id = "get_webhook_endpoint",
    params(("id" = String, Path)),
    responses((status = 200, body = WebhookEndpoint), (status = "4XX", body = ErrorBody)),
    security(("api_key" = [])))]
pub async fn get(
    State(app): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<String>,
) -> ApiResult<Json<WebhookEndpoint>> {
    let ctx = caller.require(Permission::Read)?;
    Ok(Json(webhooks::get(&app.store, &ctx, &id).await?))
}

/// Changes the URL, events or description; `enabled` pauses or resumes deliveries.
#[utoipa::path(patch, path = "/webhook-endpoints/{id}", tag = "webhooks", operation_id = "update_webhook_endpoint",
    params(("id" = String, Path)),
    request_body = WebhookEndpointPatch,
    responses((status = 200, body = WebhookEndpoint), (status = "4XX", body = ErrorBody)),
    security(("api_key" = [])))]
pub async fn update(
    State(app): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<String>,
    ApiJson(patch): ApiJson<WebhookEndpointPatch>,
) -> ApiResult<Json<WebhookEndpoint>> {
    let ctx = caller.require(Permission::ManageCatalogue)?;
    Ok(Json(webhooks::update(&app.store, &ctx, &id, patch).await?))
}

/// Deletes the endpoint with its delivery log; what was not sent yet is dropped.
#[utoipa::path(delete, path = "/webhook-endpoints/{id}", tag = "webhooks", operation_id = "delete_webhook_endpoint",
    params(("id" = String, Path)),
    responses((status = 200, body = WebhookEndpoint), (status = "4XX", body = ErrorBody)),
    security(("api_key" = [])))]
pub async fn delete(
    State(app): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<String>,
) -> ApiResult<Json<WebhookEndpoint>> {
    let ctx = caller.require(Permission::ManageCatalogue)?;
    Ok(Json(webhooks::delete(&app.store, &ctx, &id).await?))
}

/// A new signing secret, shown this once. For 24 hours the old one signs too: every message
/// carries both signatures, so receivers can switch over without losing any.
#[utoipa::path(post, path = "/webhook-endpoints/{id}/rotate-secret", tag = "webhooks", operation_id = "rotate_webhook_secret",
    params(("id" = String, Path)),
    responses((status = 200, body = WebhookEndpoint), (status = "4XX", body = ErrorBody)),
    security(("api_key" = [])))]
pub async fn rotate_secret(
    State(app): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<String>,
) -> ApiResult<Json<WebhookEndpoint>> {
    let ctx = caller.require(Permission::ManageCatalogue)?;
    Ok(Json(webhooks::rotate_secret(&app.store, &ctx, &id).await?))
}

/// Queues a `webhook.test` event to this endpoint (whatever it subscribes to); follow it in the
/// delivery log.
#[utoipa::path(post, path = "/webhook-endpoints/{id}/test", tag = "webhooks", operation_id = "test_webhook_endpoint",
    params(("id" = String, Path)),
    responses((status = 202, body = Message), (status = "4XX", body = ErrorBody)),
    security(("api_key" = [])))]
pub async fn test(
    State(app): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<String>,
) -> ApiResult<(StatusCode, Json<Message>)> {
    let ctx = caller.require(Permission::ManageCatalogue)?;
    Ok((
        StatusCode::ACCEPTED,
        Json(webhooks::send_test(&app.store, &ctx, &id).await?),
    ))
}

/// The endpoint's delivery log: each message with its state and its last attempt's status,
/// latency and answer.
#[utoipa::path(get, path = "/webhook-endpoints/{id}/deliveries", tag = "webhooks", operation_id = "list_webhook_deliveries",
    params(("id" = String, Path), DeliveryQuery),
    responses((status = 200, body = Page<Message>), (status = "4XX", body = ErrorBody)),
    security(("api_key" = [])))]
pub async fn deliveries(
    State(app): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<String>,
    ApiQuery(query): ApiQuery<DeliveryQuery>,
) -> ApiResult<Json<Page<Message>>> {
    let ctx = caller.require(Permission::Read)?;
    Ok(Json(webhooks::deliveries(&app.store, &ctx, &id, &query).await?))
}

/// One delivery with every attempt.
#[utoipa::path(get, path = "/webhook-deliveries/{id}", tag = "webhooks", operation_id = "get_webhook_delivery",
    params(("id" = String, Path)),
    responses((status = 200, body = DeliveryDetail), (status = "4XX", body = ErrorBody)),
    security(("api_key" = [])))]
pub async fn delivery(
    State(app): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<String>,
) -> ApiResult<Json<DeliveryDetail>> {
    let ctx = caller.require(Permission::Read)?;
    Ok(Json(webhooks::delivery(&app.store, &ctx, &id).await?))
}

/// Sends a delivered or failed message again (same `webhook-id` and body); 409 while it is
/// still pending.
#[utoipa::path(post, path = "/webhook-deliveries/{id}/replay", tag = "webhooks", operation_id = "replay_webhook_delivery",
    params(("id" = String, Path)),
    responses((status = 200, body = Message), (status = "4XX", body = ErrorBody)),
    security(("api_key" = [])))]
pub async fn replay(
    State(app): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<String>,
) -> ApiResult<Json<Message>> {
    let ctx = caller.require(Permission::ManageEntitlements)?;
    Ok(Json(webhooks::replay(&app.store, &ctx, &id).await?))
}
