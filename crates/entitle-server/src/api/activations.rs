//! The management side of licensing: seats of an entitlement, revoking one, the activation log.

use axum::extract::State;
use axum::Json;
use serde::Deserialize;

use super::error::{ApiResult, ErrorBody};
use super::extract::{ApiPath, ApiQuery, Caller, Permission};
use crate::app::AppState;
use crate::domain::licensing::Activation;
use crate::services::{licensing, Page, Paging};
use crate::store::licensing::ActivationLogEntry;

#[derive(Debug, Clone, Default, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ActivationQuery {
    /// Only seats still held. Default: all, including ended ones.
    pub live: Option<bool>,
    #[param(inline)]
    pub limit: Option<crate::domain::PageLimit>,
    pub after: Option<String>,
}

#[utoipa::path(get, path = "/entitlements/{id}/activations", tag = "activations", operation_id = "list_activations",
    params(("id" = String, Path), ActivationQuery),
    responses((status = 200, body = Page<Activation>), (status = "4XX", body = ErrorBody)),
    security(("api_key" = [])))]
pub async fn list(
    State(app): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<String>,
    ApiQuery(query): ApiQuery<ActivationQuery>,
) -> ApiResult<Json<Page<Activation>>> {
    let ctx = caller.require(Permission::Read)?;
    let paging = Paging {
        limit: query.limit,
        after: query.after,
    };
    Ok(Json(
        licensing::list_activations(&app.store, &ctx, &id, query.live.unwrap_or(false), &paging).await?,
    ))
}

/// Activations, refreshes, deactivations and denials of an entitlement's seats, oldest first.
#[utoipa::path(get, path = "/entitlements/{id}/activation-log", tag = "activations", operation_id = "activation_log",
    params(("id" = String, Path), Paging),
    responses((status = 200, body = Page<ActivationLogEntry>), (status = "4XX", body = ErrorBody)),
    security(("api_key" = [])))]
pub async fn log(
    State(app): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<String>,
    ApiQuery(paging): ApiQuery<Paging>,
) -> ApiResult<Json<Page<ActivationLogEntry>>> {
    let ctx = caller.require(Permission::Read)?;
    Ok(Json(licensing::activation_log(&app.store, &ctx, &id, &paging).await?))
}

#[utoipa::path(get, path = "/activations/{id}", tag = "activations", operation_id = "get_activation", params(("id" = String, Path)),
    responses((status = 200, body = Activation), (status = "4XX", body = ErrorBody)),
    security(("api_key" = [])))]
pub async fn get(
    State(app): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<String>,
) -> ApiResult<Json<Activation>> {
    let ctx = caller.require(Permission::Read)?;
    Ok(Json(licensing::get_activation(&app.store, &ctx, &id).await?))
}

/// Frees a seat from the vendor's side (a lost or retired machine), returning its units.
/// The application is refused at its next call.
#[utoipa::path(post, path = "/activations/{id}/revoke", tag = "activations", operation_id = "revoke_activation", params(("id" = String, Path)),
    responses((status = 200, body = Activation), (status = "4XX", body = ErrorBody)),
    security(("api_key" = [])))]
pub async fn revoke(
    State(app): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<String>,
) -> ApiResult<Json<Activation>> {
    let ctx = caller.require(Permission::ManageEntitlements)?;
    Ok(Json(licensing::revoke(&app.store, &ctx, &id).await?))
}
