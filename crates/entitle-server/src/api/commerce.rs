//! Storefront routes: the webhook endpoint each connection gets, and the management of
//! connections, mappings and deliveries.

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;

use super::error::{ApiError, ApiResult, ErrorBody};
use super::extract::{ApiJson, ApiPath, ApiQuery, Caller, OptionalJson, Permission};
use crate::app::AppState;
use crate::commerce::signature::Rejection;
use crate::services::commerce::{
    self as commerce, ConnectionPatch, ConnectionView, DeliveryError, DeliveryQuery, MappingQuery, NewConnection,
    NewMapping, Receipt,
};
use crate::services::{Page, Paging};
use crate::store::commerce::{Delivery, Mapping};

/// The webhook URL of a storefront connection: paste it into the provider's dashboard. Answers 2xx
/// only after the delivery and its effects are committed.
#[utoipa::path(post, path = "/commerce/v1/{id}", tag = "storefronts", operation_id = "receive_delivery",
    params(("id" = String, Path, description = "The storefront connection")),
    request_body(content = String, description = "The provider's payload, byte for byte"),
    responses((status = 200, body = Receipt), (status = "4XX", body = ErrorBody)))]
pub async fn receive(
    State(app): State<AppState>,
    ApiPath(id): ApiPath<String>,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult<Response> {
    let now = crate::services::now();
    let (provider, outcome) =
        commerce::receive(&app.store, &app.mail, &app.storefronts, &id, &headers, &body, now).await;
    count_delivery(provider.map_or("unknown", |p| p.as_str()), &outcome);
    match outcome {
        // A batch partly processed: 202 with the processed event ids, one per line, so FastSpring
        // resends only the others.
        Ok(receipt) if !receipt.unprocessed.is_empty() => {
            let processed: Vec<String> = receipt.deliveries.iter().filter_map(|d| d.event_id.clone()).collect();
            Ok((StatusCode::ACCEPTED, processed.join("\n")).into_response())
        }
        Ok(receipt) => Ok(Json(receipt).into_response()),
        Err(DeliveryError::UnknownConnection) => Err(ApiError::not_found("storefront connection")),
        Err(DeliveryError::Rejected(Rejection::Stale)) => Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "stale_delivery",
            "the signed timestamp is outside the tolerance",
        )),
        Err(DeliveryError::Rejected(rejection)) => Err(ApiError::new(
            StatusCode::UNAUTHORIZED,
            "invalid_signature",
            rejection.to_string(),
        )),
        Err(DeliveryError::Limited { retry_after }) => {
            let mut response = ApiError::new(
                StatusCode::TOO_MANY_REQUESTS,
                "rate_limited",
                "too many badly signed deliveries",
            )
            .into_response();
            response
                .headers_mut()
                .insert(axum::http::header::RETRY_AFTER, retry_after.into());
            Ok(response)
        }
        Err(DeliveryError::Unreadable(detail)) => {
            Err(ApiError::new(StatusCode::BAD_REQUEST, "unreadable_delivery", detail))
        }
        Err(DeliveryError::Internal(error)) => Err(error.into()),
    }
}

/// Counts a delivery by provider and outcome: each event's stored outcome, `failed` for events of
/// a batch to be sent again, or why the delivery as a whole was refused.
fn count_delivery(provider: &'static str, outcome: &Result<Receipt, DeliveryError>) {
    match outcome {
        Ok(receipt) => {
            for delivery in &receipt.deliveries {
                crate::metrics::delivery(provider, &delivery.outcome);
            }
            for _ in &receipt.unprocessed {
                crate::metrics::delivery(provider, "failed");
            }
        }
        Err(error) => {
            let outcome = match error {
                DeliveryError::UnknownConnection => "unknown_connection",
                DeliveryError::Rejected(Rejection::Stale) => "stale",
                DeliveryError::Rejected(_) => "rejected",
                DeliveryError::Limited { .. } => "rate_limited",
                DeliveryError::Unreadable(_) => "unreadable",
                DeliveryError::Internal(_) => "error",
            };
            crate::metrics::delivery(provider, outcome);
        }
    }
}

#[utoipa::path(post, path = "/storefront-connections", tag = "storefronts", operation_id = "create_storefront_connection",
    request_body = NewConnection,
    responses((status = 201, body = ConnectionView), (status = "4XX", body = ErrorBody)),
    security(("api_key" = [])))]
pub async fn create_connection(
    State(app): State<AppState>,
    caller: Caller,
    ApiJson(body): ApiJson<NewConnection>,
) -> ApiResult<(StatusCode, Json<ConnectionView>)> {
    let ctx = caller.require(Permission::ManageCatalogue)?;
    Ok((
        StatusCode::CREATED,
        Json(commerce::create_connection(&app.store, &ctx, &app.mail, app.storefronts.api.allowed(), body).await?),
    ))
}

#[utoipa::path(get, path = "/storefront-connections", tag = "storefronts", operation_id = "list_storefront_connections",
    params(Paging),
    responses((status = 200, body = Page<ConnectionView>), (status = "4XX", body = ErrorBody)),
    security(("api_key" = [])))]
pub async fn list_connections(
    State(app): State<AppState>,
    caller: Caller,
    ApiQuery(paging): ApiQuery<Paging>,
) -> ApiResult<Json<Page<ConnectionView>>> {
    let ctx = caller.require(Permission::Read)?;
    Ok(Json(
        commerce::list_connections(&app.store, &ctx, &app.mail, &paging).await?,
    ))
}

#[utoipa::path(get, path = "/storefront-connections/{id}", tag = "storefronts", operation_id = "get_storefront_connection",
    params(("id" = String, Path)),
    responses((status = 200, body = ConnectionView), (status = "4XX", body = ErrorBody)),
    security(("api_key" = [])))]
pub async fn get_connection(
    State(app): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<String>,
) -> ApiResult<Json<ConnectionView>> {
    let ctx = caller.require(Permission::Read)?;
    Ok(Json(commerce::get_connection(&app.store, &ctx, &app.mail, &id).await?))
}

/// Renames, rotates secrets (send old and new, later only new), or changes the tolerance.
#[utoipa::path(patch, path = "/storefront-connections/{id}", tag = "storefronts", operation_id = "update_storefront_connection",
    params(("id" = String, Path)), request_body = ConnectionPatch,
    responses((status = 200, body = ConnectionView), (status = "4XX", body = ErrorBody)),
    security(("api_key" = [])))]
pub async fn update_connection(
    State(app): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<String>,
    ApiJson(patch): ApiJson<ConnectionPatch>,
) -> ApiResult<Json<ConnectionView>> {
    let ctx = caller.require(Permission::ManageCatalogue)?;
    Ok(Json(
        commerce::update_connection(&app.store, &ctx, &app.mail, app.storefronts.api.allowed(), &id, patch).await?,
    ))
}

/// Maps a provider price / variant / product id to an offering SKU.
#[utoipa::path(post, path = "/storefront-mappings", tag = "storefronts", operation_id = "create_storefront_mapping",
    request_body = NewMapping,
    responses((status = 201, body = Mapping), (status = "4XX", body = ErrorBody)),
    security(("api_key" = [])))]
pub async fn create_mapping(
    State(app): State<AppState>,
    caller: Caller,
    ApiJson(body): ApiJson<NewMapping>,
) -> ApiResult<(StatusCode, Json<Mapping>)> {
    let ctx = caller.require(Permission::ManageCatalogue)?;
    Ok((
        StatusCode::CREATED,
        Json(commerce::create_mapping(&app.store, &ctx, body).await?),
    ))
}

#[utoipa::path(get, path = "/storefront-mappings", tag = "storefronts", operation_id = "list_storefront_mappings",
    params(MappingQuery),
    responses((status = 200, body = Page<Mapping>), (status = "4XX", body = ErrorBody)),
    security(("api_key" = [])))]
pub async fn list_mappings(
    State(app): State<AppState>,
    caller: Caller,
    ApiQuery(query): ApiQuery<MappingQuery>,
) -> ApiResult<Json<Page<Mapping>>> {
    let ctx = caller.require(Permission::Read)?;
    Ok(Json(commerce::list_mappings(&app.store, &ctx, &query).await?))
}

#[utoipa::path(delete, path = "/storefront-mappings/{id}", tag = "storefronts", operation_id = "delete_storefront_mapping",
    params(("id" = String, Path)),
    responses((status = 200, body = Mapping), (status = "4XX", body = ErrorBody)),
    security(("api_key" = [])))]
pub async fn delete_mapping(
    State(app): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<String>,
) -> ApiResult<Json<Mapping>> {
    let ctx = caller.require(Permission::ManageCatalogue)?;
    Ok(Json(commerce::delete_mapping(&app.store, &ctx, &id).await?))
}

/// Every delivery received, with its outcome; filter by connection and outcome.
#[utoipa::path(get, path = "/storefront-deliveries", tag = "storefronts", operation_id = "list_storefront_deliveries",
    params(DeliveryQuery),
    responses((status = 200, body = Page<Delivery>), (status = "4XX", body = ErrorBody)),
    security(("api_key" = [])))]
pub async fn list_deliveries(
    State(app): State<AppState>,
    caller: Caller,
    ApiQuery(query): ApiQuery<DeliveryQuery>,
) -> ApiResult<Json<Page<Delivery>>> {
    let ctx = caller.require(Permission::Read)?;
    Ok(Json(commerce::list_deliveries(&app.store, &ctx, &query).await?))
}

#[utoipa::path(get, path = "/storefront-deliveries/{id}", tag = "storefronts", operation_id = "get_storefront_delivery",
    params(("id" = String, Path)),
    responses((status = 200, body = Delivery), (status = "4XX", body = ErrorBody)),
    security(("api_key" = [])))]
pub async fn get_delivery(
    State(app): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<String>,
) -> ApiResult<Json<Delivery>> {
    let ctx = caller.require(Permission::Read)?;
    Ok(Json(commerce::get_delivery(&app.store, &ctx, &id).await?))
}

/// Applies a stored delivery again (after fixing a mapping). Already applied events change nothing.
#[utoipa::path(post, path = "/storefront-deliveries/{id}/replay", tag = "storefronts", operation_id = "replay_storefront_delivery",
    params(("id" = String, Path)),
    responses((status = 200, body = Receipt), (status = "4XX", body = ErrorBody)),
    security(("api_key" = [])))]
pub async fn replay(
    State(app): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<String>,
    OptionalJson(_body): OptionalJson<serde_json::Value>,
) -> ApiResult<Json<Receipt>> {
    let ctx = caller.require(Permission::ManageEntitlements)?;
    Ok(Json(
        commerce::replay(&app.store, &ctx, &app.mail, &app.storefronts.api, &id).await?,
    ))
}
