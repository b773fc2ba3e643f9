//! Entitlement routes: the resource and its lifecycle actions.

use axum::extract::State;
use axum::Json;

use super::crud::crud;
use super::error::{ApiResult, ErrorBody};
use super::extract::{ApiJson, ApiPath, Caller, OptionalJson, Permission};
use crate::app::AppState;
use crate::domain::EntitlementView;
use crate::services::entitlements::{
    self, EntitlementPatch, EntitlementQuery, NewEntitlement, OfferingChange, Renewal, ResetOverrides, SeatAddition,
};

crud!(
    resource,
    "entitlements",
    "/entitlements",
    "/entitlements/{id}",
    "entitlement",
    item = EntitlementView,
    new = NewEntitlement,
    patch = EntitlementPatch,
    query = EntitlementQuery,
    create_permission = Permission::CreateEntitlements,
    update_permission = Permission::ManageEntitlements,
    create = entitlements::create,
    list = entitlements::list,
    get = entitlements::get,
    update = entitlements::update
);

/// Extends the licence period: from the old expiry while active or in grace, from now once
/// expired. Usage counters start again from zero.
#[utoipa::path(post, path = "/entitlements/{id}/renew", tag = "entitlements", params(("id" = String, Path)),
    request_body(content = Option<Renewal>),
    responses((status = 200, body = EntitlementView), (status = "4XX", body = ErrorBody)),
    security(("api_key" = [])))]
pub async fn renew(
    State(app): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<String>,
    OptionalJson(body): OptionalJson<Renewal>,
) -> ApiResult<Json<EntitlementView>> {
    let ctx = caller.require(Permission::ManageEntitlements)?;
    Ok(Json(entitlements::renew(&app.store, &ctx, &id, body).await?))
}

/// Moves the entitlement to another offering of the same product (upgrade, downgrade, plan
/// change). Overridden values stay.
#[utoipa::path(post, path = "/entitlements/{id}/change-offering", tag = "entitlements", params(("id" = String, Path)),
    request_body = OfferingChange,
    responses((status = 200, body = EntitlementView), (status = "4XX", body = ErrorBody)),
    security(("api_key" = [])))]
pub async fn change_offering(
    State(app): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<String>,
    ApiJson(body): ApiJson<OfferingChange>,
) -> ApiResult<Json<EntitlementView>> {
    let ctx = caller.require(Permission::ManageEntitlements)?;
    Ok(Json(entitlements::change_offering(&app.store, &ctx, &id, body).await?))
}

#[utoipa::path(post, path = "/entitlements/{id}/add-seats", tag = "entitlements", params(("id" = String, Path)),
    request_body = SeatAddition,
    responses((status = 200, body = EntitlementView), (status = "4XX", body = ErrorBody)),
    security(("api_key" = [])))]
pub async fn add_seats(
    State(app): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<String>,
    ApiJson(body): ApiJson<SeatAddition>,
) -> ApiResult<Json<EntitlementView>> {
    let ctx = caller.require(Permission::ManageEntitlements)?;
    Ok(Json(entitlements::add_seats(&app.store, &ctx, &id, body).await?))
}

#[utoipa::path(post, path = "/entitlements/{id}/disable", tag = "entitlements", params(("id" = String, Path)),
    responses((status = 200, body = EntitlementView), (status = "4XX", body = ErrorBody)),
    security(("api_key" = [])))]
pub async fn disable(
    State(app): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<String>,
) -> ApiResult<Json<EntitlementView>> {
    let ctx = caller.require(Permission::ManageEntitlements)?;
    Ok(Json(entitlements::disable(&app.store, &ctx, &id).await?))
}

#[utoipa::path(post, path = "/entitlements/{id}/enable", tag = "entitlements", params(("id" = String, Path)),
    responses((status = 200, body = EntitlementView), (status = "4XX", body = ErrorBody)),
    security(("api_key" = [])))]
pub async fn enable(
    State(app): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<String>,
) -> ApiResult<Json<EntitlementView>> {
    let ctx = caller.require(Permission::ManageEntitlements)?;
    Ok(Json(entitlements::enable(&app.store, &ctx, &id).await?))
}

/// Returns overridden values (all, or the listed `fields`) to the offering's.
#[utoipa::path(post, path = "/entitlements/{id}/reset-overrides", tag = "entitlements", params(("id" = String, Path)),
    request_body(content = Option<ResetOverrides>),
    responses((status = 200, body = EntitlementView), (status = "4XX", body = ErrorBody)),
    security(("api_key" = [])))]
pub async fn reset_overrides(
    State(app): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<String>,
    OptionalJson(body): OptionalJson<ResetOverrides>,
) -> ApiResult<Json<EntitlementView>> {
    let ctx = caller.require(Permission::ManageEntitlements)?;
    Ok(Json(entitlements::reset_overrides(&app.store, &ctx, &id, body).await?))
}
