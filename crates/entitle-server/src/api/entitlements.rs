//! Entitlement routes: the resource and its lifecycle actions.

use axum::extract::State;
use axum::Json;

use super::error::{ApiResult, ErrorBody};
use super::extract::{ApiJson, ApiPath, Caller, OptionalJson, Permission};
use crate::app::AppState;
use crate::domain::EntitlementView;
use crate::services::entitlements::{
    self, EntitlementPatch, EntitlementQuery, NewEntitlement, OfferingChange, Renewal, ResetOverrides, SeatAddition,
};
use crate::services::mail::ResendCredentials;
use crate::store::mail::OutboxMail;

pub mod resource {
    use axum::extract::State;
    use axum::http::StatusCode;
    use axum::Json;

    use super::*;
    use crate::api::extract::{ApiJson, ApiQuery};
    use crate::services::Page;

    /// Creates an entitlement from an offering; with `send_credentials_to`, queues the credentials
    /// mail in the same transaction.
    #[utoipa::path(post, path = "/entitlements", tag = "entitlements", operation_id = "create_entitlement",
        request_body = NewEntitlement,
        responses((status = 201, body = EntitlementView), (status = "4XX", body = ErrorBody)),
        security(("api_key" = [])))]
    pub async fn create(
        State(app): State<AppState>,
        caller: Caller,
        ApiJson(body): ApiJson<NewEntitlement>,
    ) -> ApiResult<(StatusCode, Json<EntitlementView>)> {
        let ctx = caller.require(Permission::CreateEntitlements)?;
        Ok((
            StatusCode::CREATED,
            Json(entitlements::create(&app.store, &ctx, &app.mail, body).await?),
        ))
    }

    #[utoipa::path(get, path = "/entitlements", tag = "entitlements", operation_id = "list_entitlements",
        params(EntitlementQuery),
        responses((status = 200, body = Page<EntitlementView>), (status = "4XX", body = ErrorBody)),
        security(("api_key" = [])))]
    pub async fn list(
        State(app): State<AppState>,
        caller: Caller,
        ApiQuery(query): ApiQuery<EntitlementQuery>,
    ) -> ApiResult<Json<Page<EntitlementView>>> {
        let ctx = caller.require(Permission::Read)?;
        Ok(Json(entitlements::list(&app.store, &ctx, &query).await?))
    }

    #[utoipa::path(get, path = "/entitlements/{id}", tag = "entitlements", operation_id = "get_entitlement",
        params(("id" = String, Path)),
        responses((status = 200, body = EntitlementView), (status = "4XX", body = ErrorBody)),
        security(("api_key" = [])))]
    pub async fn get(
        State(app): State<AppState>,
        caller: Caller,
        ApiPath(id): ApiPath<String>,
    ) -> ApiResult<Json<EntitlementView>> {
        let ctx = caller.require(Permission::Read)?;
        Ok(Json(entitlements::get(&app.store, &ctx, &id).await?))
    }

    /// Overrides values on this entitlement; they stop following the offering until reset.
    #[utoipa::path(patch, path = "/entitlements/{id}", tag = "entitlements", operation_id = "update_entitlement",
        params(("id" = String, Path)),
        request_body = EntitlementPatch,
        responses((status = 200, body = EntitlementView), (status = "4XX", body = ErrorBody)),
        security(("api_key" = [])))]
    pub async fn update(
        State(app): State<AppState>,
        caller: Caller,
        ApiPath(id): ApiPath<String>,
        ApiJson(patch): ApiJson<EntitlementPatch>,
    ) -> ApiResult<Json<EntitlementView>> {
        let ctx = caller.require(Permission::ManageEntitlements)?;
        Ok(Json(entitlements::update(&app.store, &ctx, &id, patch).await?))
    }
}

/// Queues the credentials mail again (to `to`, or the customer's address).
#[utoipa::path(post, path = "/entitlements/{id}/resend-credentials", tag = "entitlements", params(("id" = String, Path)),
    request_body(content = Option<ResendCredentials>),
    responses((status = 200, body = OutboxMail), (status = "4XX", body = ErrorBody)),
    security(("api_key" = [])))]
pub async fn resend_credentials(
    State(app): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<String>,
    OptionalJson(body): OptionalJson<ResendCredentials>,
) -> ApiResult<Json<OutboxMail>> {
    let ctx = caller.require(Permission::ManageEntitlements)?;
    Ok(Json(
        crate::services::mail::resend_credentials(&app.store, &ctx, &app.mail, &id, body).await?,
    ))
}

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
