//! A plan's expiry-reminder schedule.

use axum::extract::State;
use axum::Json;

use super::error::{ApiResult, ErrorBody};
use super::extract::{ApiJson, ApiPath, Caller, Permission};
use crate::app::AppState;
use crate::services::reminders::{self, ReminderSchedule};

/// When the plan's entitlements remind their customers before expiry (default 30, 7 and 1 days).
#[utoipa::path(get, path = "/plans/{id}/reminder-schedule", tag = "catalogue", operation_id = "get_reminder_schedule",
    params(("id" = String, Path)),
    responses((status = 200, body = ReminderSchedule), (status = "4XX", body = ErrorBody)),
    security(("api_key" = [])))]
pub async fn get(
    State(app): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<String>,
) -> ApiResult<Json<ReminderSchedule>> {
    let ctx = caller.require(Permission::Read)?;
    Ok(Json(reminders::get_schedule(&app.store, &ctx, &id).await?))
}

/// Sets the days before expiry the plan's entitlements send a reminder (`invalid_reminder_schedule`
/// unless 1 to 10 whole days between 1 and 365).
#[utoipa::path(put, path = "/plans/{id}/reminder-schedule", tag = "catalogue", operation_id = "put_reminder_schedule",
    params(("id" = String, Path)),
    request_body = ReminderSchedule,
    responses((status = 200, body = ReminderSchedule), (status = "4XX", body = ErrorBody)),
    security(("api_key" = [])))]
pub async fn put(
    State(app): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<String>,
    ApiJson(body): ApiJson<ReminderSchedule>,
) -> ApiResult<Json<ReminderSchedule>> {
    let ctx = caller.require(Permission::ManageCatalogue)?;
    Ok(Json(reminders::put_schedule(&app.store, &ctx, &id, body).await?))
}
