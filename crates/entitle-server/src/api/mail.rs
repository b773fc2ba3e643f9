//! Mail routes: the outbox as support sees it, and tenant templates.

use axum::extract::State;
use axum::Json;

use super::error::{ApiResult, ErrorBody};
use super::extract::{ApiJson, ApiQuery, Caller, Permission};
use crate::app::AppState;
use crate::services::mail::{self, MailQuery, MailTemplate};
use crate::services::Page;
use crate::store::mail::OutboxMail;

/// Mails queued, sent and failed, filtered by entitlement, customer or status.
#[utoipa::path(get, path = "/mails", tag = "mail", operation_id = "list_mails", params(MailQuery),
    responses((status = 200, body = Page<OutboxMail>), (status = "4XX", body = ErrorBody)),
    security(("api_key" = [])))]
pub async fn list(
    State(app): State<AppState>,
    caller: Caller,
    ApiQuery(query): ApiQuery<MailQuery>,
) -> ApiResult<Json<Page<OutboxMail>>> {
    let ctx = caller.require(Permission::Read)?;
    Ok(Json(mail::list(&app.store, &ctx, &query).await?))
}

/// The tenant's template overrides, one per kind of mail (unset parts use the built-in template).
#[utoipa::path(get, path = "/mail-templates", tag = "mail", operation_id = "list_mail_templates",
    responses((status = 200, body = Page<MailTemplate>), (status = "4XX", body = ErrorBody)),
    security(("api_key" = [])))]
pub async fn templates(State(app): State<AppState>, caller: Caller) -> ApiResult<Json<Page<MailTemplate>>> {
    let ctx = caller.require(Permission::Read)?;
    Ok(Json(mail::templates(&app.store, &ctx).await?))
}

/// Sets the tenant's template of one kind. It is rendered with sample data first: a template
/// that does not render is refused with `invalid_template`, one that exceeds the render budget
/// with `template_too_expensive`. `from_address` must be in a sender domain the operator allows
/// (`sender_not_allowed`); `from_name` is one line of at most 64 characters (`invalid_from_name`).
#[utoipa::path(put, path = "/mail-templates", tag = "mail", operation_id = "put_mail_template", request_body = MailTemplate,
    responses((status = 200, body = MailTemplate), (status = "4XX", body = ErrorBody)),
    security(("api_key" = [])))]
pub async fn put_template(
    State(app): State<AppState>,
    caller: Caller,
    ApiJson(body): ApiJson<MailTemplate>,
) -> ApiResult<Json<MailTemplate>> {
    let ctx = caller.require(Permission::ManageCatalogue)?;
    Ok(Json(mail::put_template(&app.store, &ctx, &app.mail, body).await?))
}
