//! Usage over time of an entitlement, for charts (the portal and the admin console draw the same
//! numbers).

use axum::extract::State;
use axum::Json;

use super::error::{ApiResult, ErrorBody};
use super::extract::{ApiPath, ApiQuery, Caller, Permission};
use crate::app::AppState;
use crate::services::usage::{self, EntitlementUsage, UsageQuery};

/// Seats in use per UTC day (fewest and most at any moment, against the seat count and the
/// overdraft allowance) and each metered feature's use per day. Days without a change carry the
/// previous day's values. Default range: the last 30 days; at most 366 days; the answer starts
/// no earlier than the entitlement's creation and ends today at the latest.
#[utoipa::path(get, path = "/entitlements/{id}/usage", tag = "entitlements", operation_id = "entitlement_usage",
    params(("id" = String, Path), UsageQuery),
    responses((status = 200, body = EntitlementUsage), (status = "4XX", body = ErrorBody)),
    security(("api_key" = [])))]
pub async fn get(
    State(app): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<String>,
    ApiQuery(query): ApiQuery<UsageQuery>,
) -> ApiResult<Json<EntitlementUsage>> {
    let ctx = caller.require(Permission::Read)?;
    let range = query.range(ctx.now)?;
    Ok(Json(usage::over_time(&app.store, &ctx, &id, range).await?))
}
