//! Branding routes: how the tenant's portal looks.

use axum::extract::State;
use axum::Json;

use super::error::{ApiResult, ErrorBody};
use super::extract::{ApiJson, Caller, Permission};
use crate::app::AppState;
use crate::domain::branding::BrandingSettings;
use crate::services::branding;

/// The tenant's branding as set; `null` parts use the defaults (the tenant's name, no logo,
/// accent `#2563eb`).
#[utoipa::path(get, path = "/branding", tag = "branding", operation_id = "get_branding",
    responses((status = 200, body = BrandingSettings), (status = "4XX", body = ErrorBody)),
    security(("api_key" = [])))]
pub async fn get(State(app): State<AppState>, caller: Caller) -> ApiResult<Json<BrandingSettings>> {
    let ctx = caller.require(Permission::Read)?;
    Ok(Json(branding::settings(&app.store, &ctx).await?))
}

/// Replaces the tenant's branding: a part left out or `null` goes back to its default.
/// `display_name` is one line of at most 80 characters (`invalid_display_name`), `logo_url` an
/// `https://` URL (`http://` for localhost only; `invalid_logo_url`), `accent_colour` `#RRGGBB`
/// (`invalid_accent_colour`).
#[utoipa::path(put, path = "/branding", tag = "branding", operation_id = "put_branding", request_body = BrandingSettings,
    responses((status = 200, body = BrandingSettings), (status = "4XX", body = ErrorBody)),
    security(("api_key" = [])))]
pub async fn put(
    State(app): State<AppState>,
    caller: Caller,
    ApiJson(body): ApiJson<BrandingSettings>,
) -> ApiResult<Json<BrandingSettings>> {
    let ctx = caller.require(Permission::ManageCatalogue)?;
    Ok(Json(branding::put(&app.store, &ctx, body).await?))
}
