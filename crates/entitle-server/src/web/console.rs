//! The admin console: `/admin/{tenant}/…`, for the vendor's staff. It calls the same services as
//! the management API, checks the same permissions (a staff role grants what the matching API
//! key role grants; `viewer` only reads), and records every action with the staff member as actor.
//!
//! Handlers answer early with a finished page (`Result<_, Response>`): the error side is the
//! page itself, built once and returned at once, so its size does not matter.
#![allow(clippy::result_large_err)]

use axum::body::Bytes;
use axum::extract::{Query, State};
use axum::http::header::RETRY_AFTER;
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use axum::routing::{get, post};
use axum::Router;
use chrono::{DateTime, NaiveDate, Utc};
use serde::Deserialize;
use serde_json::{json, Value};
use std::collections::HashMap;

use super::{
    cookies, field, form, internal, not_found_page, page, redirect, render, same_secret, usage_charts, with_cookie,
};
use crate::api::extract::{staff_allows, ApiPath, ClientIp, Permission};
use crate::app::AppState;
use crate::domain::{ids, totp, EntitlementView};
use crate::services::portal::SignInError;
use crate::services::sessions::SessionPolicy;
use crate::services::staff::{self, SignedIn, StaffSession};
use crate::services::{self, Ctx, Paging, ServiceError};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/admin/{tenant}", get(dashboard))
        .route("/admin/{tenant}/sign-in", get(sign_in_page).post(sign_in))
        .route("/admin/{tenant}/sign-in/code", post(sign_in_code))
        .route("/admin/{tenant}/account", get(account))
        .route("/admin/{tenant}/account/second-factor/{action}", post(account_action))
        .route(
            "/admin/{tenant}/set-password",
            get(set_password_form).post(set_password),
        )
        .route("/admin/{tenant}/sign-out", post(sign_out))
        .route("/admin/{tenant}/search", get(search))
        .route("/admin/{tenant}/customers/{id}", get(customer))
        .route("/admin/{tenant}/customers/{id}/end-users", post(add_end_user))
        .route(
            "/admin/{tenant}/customers/{id}/end-users/{user}/{action}",
            post(end_user_action),
        )
        .route("/admin/{tenant}/entitlements/{id}", get(entitlement))
        .route("/admin/{tenant}/entitlements/{id}/{action}", post(entitlement_action))
        .route("/admin/{tenant}/activations/{id}/revoke", post(revoke))
}

fn policy() -> SessionPolicy {
    SessionPolicy::default()
}

/// What every console page shows around its content.
pub(crate) struct Frame {
    pub tenant_id: String,
    /// `/admin/{tenant}`: every console link starts here.
    pub base: String,
    pub brand_name: String,
    pub secure: bool,
}

impl Frame {
    pub(crate) fn context(&self, session: Option<&StaffSession>, csrf: &str, fields: Value) -> Value {
        let mut context = json!({
            "title": "",
            "base": self.base,
            "brand": {"name": self.brand_name, "logo_url": null},
            "assets": {
                "css": super::assets::stylesheet_href(),
                "js": super::assets::script_href(),
                "brand_css": super::assets::brand_href(&self.tenant_id),
            },
            "staff": session.map(|s| json!({"email": s.member.email.as_str(), "role": s.member.role.as_str()})),
            "csrf": csrf,
            "nav": "",
            "q": "",
            "notice": null,
            "error": null,
        });
        if let (Some(context), Value::Object(fields)) = (context.as_object_mut(), fields) {
            context.extend(fields);
        }
        context
    }

    /// Renders a console page: the frame's and the session's fields, then `fields`.
    pub(crate) fn render(
        &self,
        status: StatusCode,
        template: &str,
        session: Option<&StaffSession>,
        fields: Value,
    ) -> Response {
        let csrf = session.map(|s| s.csrf_token.as_str()).unwrap_or_default();
        render(status, template, self.context(session, csrf, fields))
    }
}

pub(crate) async fn frame(app: &AppState, tenant_id: &str) -> Result<Frame, Response> {
    if tenant_id.len() > 64 {
        return Err(not_found_page());
    }
    match services::branding::get(&app.store, tenant_id).await {
        Ok(brand) => Ok(Frame {
            tenant_id: tenant_id.to_owned(),
            base: format!("/admin/{tenant_id}"),
            brand_name: brand.display_name,
            secure: app.config.public_url.starts_with("https://"),
        }),
        Err(ServiceError::NotFound(_)) => Err(not_found_page()),
        Err(error) => Err(internal(error)),
    }
}

pub(crate) async fn signed_in(app: &AppState, frame: &Frame, headers: &HeaderMap) -> Result<StaffSession, Response> {
    let token = cookies::get(headers, cookies::SESSION).unwrap_or_default();
    match staff::session(&app.store, &policy(), &frame.tenant_id, token).await {
        Ok(Some(session)) => Ok(session),
        Ok(None) => Err(redirect(&format!("{}/sign-in", frame.base))),
        Err(error) => Err(internal(error)),
    }
}

/// The frame and session of a page, or the answer that replaces it.
pub(crate) async fn open(app: &AppState, tenant: &str, headers: &HeaderMap) -> Result<(Frame, StaffSession), Response> {
    let frame = frame(app, tenant).await?;
    let session = signed_in(app, &frame, headers).await?;
    Ok((frame, session))
}

/// A state-changing form's page: the frame, the session, and the form's fields once its CSRF
/// token and the member's role (`permission`) have passed.
pub(crate) async fn open_post(
    app: &AppState,
    tenant: &str,
    headers: &HeaderMap,
    body: &Bytes,
    permission: Permission,
) -> Result<(Frame, StaffSession, HashMap<String, String>), Response> {
    let (frame, session) = open(app, tenant, headers).await?;
    let fields = form(body);
    check(&session, &fields, permission)?;
    Ok((frame, session, fields))
}

pub(crate) fn forbidden() -> Response {
    page(
        StatusCode::FORBIDDEN,
        "<!DOCTYPE html><title>Not allowed</title><p>Your role does not allow this.</p>".into(),
    )
}

/// A state-changing form: the session's token, and a role allowed to do it.
pub(crate) fn check(
    session: &StaffSession,
    fields: &HashMap<String, String>,
    permission: Permission,
) -> Result<(), Response> {
    if !same_secret(field(fields, "csrf"), &session.csrf_token) {
        return Err(page(
            StatusCode::FORBIDDEN,
            "<!DOCTYPE html><title>Form expired</title><p>This form has expired. Go back, reload the page and try again.</p>"
                .into(),
        ));
    }
    if !staff_allows(session.member.role, permission) {
        return Err(forbidden());
    }
    Ok(())
}

pub(crate) fn moment(at: DateTime<Utc>) -> String {
    at.format("%Y-%m-%d %H:%M UTC").to_string()
}

pub(crate) fn day(at: Option<DateTime<Utc>>) -> String {
    at.map_or_else(|| "—".to_owned(), |at| at.format("%Y-%m-%d").to_string())
}

fn status_text(view: &EntitlementView) -> String {
    serde_json::to_value(view.status)
        .ok()
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_default()
}

fn row(view: &EntitlementView) -> Value {
    json!({"id": view.id, "sku": view.sku.as_str(), "status": status_text(view), "expires": day(view.expires_at),
           "seats_used": view.seats_used, "seat_count": view.seat_count, "order_ref": view.order_ref})
}

// ---- signing in ----

fn sign_in_form(frame: &Frame, headers: &HeaderMap, status: StatusCode, error: Option<&str>) -> Response {
    let (token, fresh) = match cookies::get(headers, cookies::PRE_SESSION).filter(|t| t.len() >= 16 && t.len() <= 64) {
        Some(token) => (token.to_owned(), false),
        None => (ids::random_token(20), true),
    };
    let response = render(
        status,
        "admin_sign_in.html",
        frame.context(None, &token, json!({"title": "Sign in", "error": error})),
    );
    if fresh {
        with_cookie(
            response,
            &cookies::set(cookies::PRE_SESSION, &token, "/admin", 3600, frame.secure, "Strict"),
        )
    } else {
        response
    }
}

async fn sign_in_page(State(app): State<AppState>, ApiPath(tenant): ApiPath<String>, headers: HeaderMap) -> Response {
    match frame(&app, &tenant).await {
        Ok(frame) => sign_in_form(&frame, &headers, StatusCode::OK, None),
        Err(response) => response,
    }
}

async fn sign_in(
    State(app): State<AppState>,
    ApiPath(tenant): ApiPath<String>,
    ClientIp(ip): ClientIp,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let frame = match frame(&app, &tenant).await {
        Ok(frame) => frame,
        Err(response) => return response,
    };
    let fields = form(&body);
    if !super::pre_session_ok(&headers, &fields) {
        return sign_in_form(
            &frame,
            &headers,
            StatusCode::FORBIDDEN,
            Some("The form expired. Please try again."),
        );
    }
    let (email, password) = (field(&fields, "email").trim(), field(&fields, "password"));
    let outcome = staff::sign_in(&app.store, &app.attempts, &policy(), &tenant, email, password, ip).await;
    match outcome {
        Ok(SignedIn::Session(token)) => signed_in_answer(&frame, &token),
        Ok(SignedIn::SecondFactor(pending)) => with_cookie(
            second_factor_form(&frame, &headers, StatusCode::OK, None),
            &cookies::set(PENDING_COOKIE, &pending, &frame.base, 300, frame.secure, "Strict"),
        ),
        Err(error) => sign_in_refused(
            &frame,
            &headers,
            error,
            "The email address or the password is not right.",
        ),
    }
}

/// The cookie that carries a password-checked sign-in to its second step.
const PENDING_COOKIE: &str = "entitle_pending";

fn signed_in_answer(frame: &Frame, token: &str) -> Response {
    with_cookie(
        redirect(&frame.base),
        &cookies::set(
            cookies::SESSION,
            token,
            &frame.base,
            policy().absolute.num_seconds(),
            frame.secure,
            "Lax",
        ),
    )
}

fn sign_in_refused(frame: &Frame, headers: &HeaderMap, error: SignInError, invalid: &str) -> Response {
    match error {
        SignInError::Invalid => sign_in_form(frame, headers, StatusCode::UNAUTHORIZED, Some(invalid)),
        SignInError::RateLimited(wait) | SignInError::Busy(wait) => {
            let message = format!("Too many attempts or too busy. Please wait {wait} seconds and try again.");
            let mut response = sign_in_form(frame, headers, StatusCode::TOO_MANY_REQUESTS, Some(&message));
            response.headers_mut().insert(RETRY_AFTER, wait.into());
            response
        }
        SignInError::Internal(error) => internal(error),
    }
}

fn second_factor_form(frame: &Frame, headers: &HeaderMap, status: StatusCode, error: Option<&str>) -> Response {
    let token = cookies::get(headers, cookies::PRE_SESSION).unwrap_or_default();
    render(
        status,
        "admin_second_factor.html",
        frame.context(None, token, json!({"title": "Sign in", "error": error})),
    )
}

async fn sign_in_code(
    State(app): State<AppState>,
    ApiPath(tenant): ApiPath<String>,
    ClientIp(ip): ClientIp,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let frame = match frame(&app, &tenant).await {
        Ok(frame) => frame,
        Err(response) => return response,
    };
    let fields = form(&body);
    if !super::pre_session_ok(&headers, &fields) {
        return sign_in_form(
            &frame,
            &headers,
            StatusCode::FORBIDDEN,
            Some("The form expired. Please try again."),
        );
    }
    let pending = cookies::get(&headers, PENDING_COOKIE).unwrap_or_default();
    let code = field(&fields, "code");
    match staff::complete_second_factor(&app.store, &app.attempts, &policy(), &tenant, pending, code, ip).await {
        Ok(token) => with_cookie(
            signed_in_answer(&frame, &token),
            &cookies::clear(PENDING_COOKIE, &frame.base, frame.secure),
        ),
        Err(SignInError::Invalid) if !pending.is_empty() => second_factor_form(
            &frame,
            &headers,
            StatusCode::UNAUTHORIZED,
            Some("That code is not right (or was used already). Enter the current one."),
        ),
        Err(error) => sign_in_refused(&frame, &headers, error, "Sign in again: the first step expired."),
    }
}

// ---- your account: the second factor ----

async fn account(State(app): State<AppState>, ApiPath(tenant): ApiPath<String>, headers: HeaderMap) -> Response {
    let (frame, session) = match open(&app, &tenant, &headers).await {
        Ok(parts) => parts,
        Err(response) => return response,
    };
    match staff::has_second_factor(&app.store, &session).await {
        Ok(enabled) => frame.render(
            StatusCode::OK,
            "admin_account.html",
            Some(&session),
            json!({"title": "Your account", "enabled": enabled, "secret": null, "uri": null}),
        ),
        Err(error) => internal(error),
    }
}

async fn account_action(
    State(app): State<AppState>,
    ApiPath((tenant, action)): ApiPath<(String, String)>,
    ClientIp(ip): ClientIp,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let (frame, session, fields) = match open_post(&app, &tenant, &headers, &body, Permission::Read).await {
        Ok(parts) => parts,
        Err(response) => return response,
    };
    let show = |status: StatusCode, secret: Option<&str>, enabled: bool, error: Option<&str>| {
        let uri = secret.map(|s| totp::provisioning_uri(&frame.brand_name, session.member.email.as_str(), s));
        frame.render(
            status,
            "admin_account.html",
            Some(&session),
            json!({"title": "Your account", "enabled": enabled, "secret": secret, "uri": uri, "error": error}),
        )
    };
    let outcome = match action.as_str() {
        "start" => return show(StatusCode::OK, Some(&totp::new_secret()), false, None),
        "enable" => {
            let secret = field(&fields, "secret");
            match staff::enable_second_factor(&app.store, &session, secret, field(&fields, "code"), ip).await {
                Err(ServiceError::Rule(rule)) => {
                    return show(
                        StatusCode::UNPROCESSABLE_ENTITY,
                        Some(secret),
                        false,
                        Some(&rule.message),
                    )
                }
                other => other,
            }
        }
        "disable" => match staff::disable_second_factor(&app.store, &session, field(&fields, "code"), ip).await {
            Err(ServiceError::Rule(rule)) => {
                return show(StatusCode::UNPROCESSABLE_ENTITY, None, true, Some(&rule.message))
            }
            other => other,
        },
        _ => return not_found_page(),
    };
    match outcome {
        Ok(()) => redirect(&format!("{}/account", frame.base)),
        Err(error) => internal(error),
    }
}

async fn sign_out(
    State(app): State<AppState>,
    ApiPath(tenant): ApiPath<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let (frame, session) = match open(&app, &tenant, &headers).await {
        Ok(parts) => parts,
        Err(response) => return response,
    };
    if let Err(response) = check(&session, &form(&body), Permission::Read) {
        return response;
    }
    if let Err(error) = staff::sign_out(&app.store, &session).await {
        return internal(error);
    }
    with_cookie(
        redirect(&format!("{}/sign-in", frame.base)),
        &cookies::clear(cookies::SESSION, &frame.base, frame.secure),
    )
}

#[derive(Deserialize)]
pub struct TokenQuery {
    token: Option<String>,
}

fn set_password_page(frame: &Frame, status: StatusCode, fields: Value) -> Response {
    let mut context = frame.context(
        None,
        "",
        json!({"title": "Choose your password", "token": "", "done": false,
        "expired": false, "action": format!("{}/set-password", frame.base),
        "done_message": "Your password is set. Sign in to the console with your email address and this password.",
        "viewer": null}),
    );
    if let (Some(context), Value::Object(fields)) = (context.as_object_mut(), fields) {
        context.extend(fields);
    }
    render(status, "set_password.html", context)
}

async fn set_password_form(
    State(app): State<AppState>,
    ApiPath(tenant): ApiPath<String>,
    Query(query): Query<TokenQuery>,
) -> Response {
    let frame = match frame(&app, &tenant).await {
        Ok(frame) => frame,
        Err(response) => return response,
    };
    let token = query.token.unwrap_or_default();
    match staff::password_link_valid(&app.store, &tenant, &token).await {
        Ok(true) => set_password_page(&frame, StatusCode::OK, json!({"token": token})),
        Ok(false) => set_password_page(
            &frame,
            StatusCode::NOT_FOUND,
            json!({"title": "Link expired", "expired": true}),
        ),
        Err(error) => internal(error),
    }
}

async fn set_password(State(app): State<AppState>, ApiPath(tenant): ApiPath<String>, body: Bytes) -> Response {
    let frame = match frame(&app, &tenant).await {
        Ok(frame) => frame,
        Err(response) => return response,
    };
    let fields = form(&body);
    let (token, password) = (field(&fields, "token"), field(&fields, "password"));
    if password != field(&fields, "confirm") {
        return set_password_page(
            &frame,
            StatusCode::UNPROCESSABLE_ENTITY,
            json!({"token": token, "error": "The two passwords differ."}),
        );
    }
    match staff::set_password_with_link(&app.store, &tenant, token, password.to_owned()).await {
        Ok(()) => set_password_page(&frame, StatusCode::OK, json!({"title": "Password set", "done": true})),
        Err(ServiceError::Rule(rule)) if rule.code == "invalid_link" => set_password_page(
            &frame,
            StatusCode::NOT_FOUND,
            json!({"title": "Link expired", "expired": true}),
        ),
        Err(ServiceError::Rule(rule)) => set_password_page(
            &frame,
            StatusCode::UNPROCESSABLE_ENTITY,
            json!({"token": token, "error": rule.message}),
        ),
        Err(error) => internal(error),
    }
}

// ---- pages ----

async fn dashboard(State(app): State<AppState>, ApiPath(tenant): ApiPath<String>, headers: HeaderMap) -> Response {
    let (frame, session) = match open(&app, &tenant, &headers).await {
        Ok(parts) => parts,
        Err(response) => return response,
    };
    let ctx = session.ctx(None);
    let numbers = async {
        let numbers = services::console::dashboard(&app.store, &ctx).await?;
        let mut expiring = Vec::new();
        for id in &numbers.expiring {
            expiring.push(row(&services::entitlements::get(&app.store, &ctx, id).await?));
        }
        let seats = services::console::seats_over_time(&app.store, &ctx).await?;
        let chart = (!seats.is_empty()).then(|| super::chart::seats_svg("Seats in use across all customers", &seats));
        Ok::<_, ServiceError>(json!({"today": numbers.purchases_today, "week": numbers.purchases_week,
            "deliveries": numbers.deliveries_needing_attention, "failed_mails": numbers.failed_mails,
            "expiring": expiring, "seats_chart": chart}))
    }
    .await;
    match numbers {
        Ok(d) => frame.render(
            StatusCode::OK,
            "admin_dashboard.html",
            Some(&session),
            json!({"title": "Dashboard", "nav": "dashboard", "d": d}),
        ),
        Err(error) => internal(error),
    }
}

#[derive(Deserialize)]
pub struct SearchQuery {
    q: Option<String>,
}

async fn search(
    State(app): State<AppState>,
    ApiPath(tenant): ApiPath<String>,
    Query(query): Query<SearchQuery>,
    headers: HeaderMap,
) -> Response {
    let (frame, session) = match open(&app, &tenant, &headers).await {
        Ok(parts) => parts,
        Err(response) => return response,
    };
    let q = query.q.unwrap_or_default().trim().chars().take(200).collect::<String>();
    match services::console::search(&app.store, &session.ctx(None), &q).await {
        Ok(hits) => {
            let hits: Vec<Value> = hits
                .into_iter()
                .map(|hit| {
                    let href = format!("{}/{}/{}", frame.base, hit.path, hit.id);
                    json!({"kind": hit.kind, "label": hit.label, "detail": hit.detail, "href": href})
                })
                .collect();
            frame.render(
                StatusCode::OK,
                "admin_search.html",
                Some(&session),
                json!({"title": "Search", "q": q, "hits": hits}),
            )
        }
        Err(error) => internal(error),
    }
}

async fn events_of(app: &AppState, ctx: &Ctx, object_id: &str) -> Result<Vec<Value>, ServiceError> {
    let query = services::events::EventQuery {
        object_id: Some(object_id.to_owned()),
        object_kind: None,
        action: None,
        since: None,
        until: None,
        limit: crate::domain::PageLimit::new(100).ok(),
        after: None,
    };
    let page = services::events::list(&app.store, ctx, &query).await?;
    Ok(page
        .data
        .iter()
        .map(|ev| {
            let actor = match &ev.actor_id {
                Some(id) => format!("{} {id}", ev.actor_kind),
                None => ev.actor_kind.clone(),
            };
            let mut summary = ev.summary.to_string();
            summary.truncate(300);
            // A storefront's changes name the delivery that caused them: a link to it.
            let delivery = ev
                .actor_id
                .as_deref()
                .filter(|id| ev.actor_kind == "storefront" && id.starts_with("dlv_"));
            json!({"at": moment(ev.created_at), "action": ev.action, "actor": actor, "delivery": delivery,
                   "summary": summary})
        })
        .collect())
}

#[derive(Deserialize)]
pub struct CustomerQuery {
    done: Option<String>,
}

async fn customer(
    State(app): State<AppState>,
    ApiPath((tenant, id)): ApiPath<(String, String)>,
    Query(query): Query<CustomerQuery>,
    headers: HeaderMap,
) -> Response {
    let (frame, session) = match open(&app, &tenant, &headers).await {
        Ok(parts) => parts,
        Err(response) => return response,
    };
    let ctx = session.ctx(None);
    let page = async {
        let customer = services::customers::get_customer(&app.store, &ctx, &id).await?;
        let limit = crate::domain::PageLimit::new(200).ok();
        let entitlements = services::entitlements::list(
            &app.store,
            &ctx,
            &services::entitlements::EntitlementQuery {
                customer_id: Some(id.clone()),
                sku: None,
                order_ref: None,
                limit,
                after: None,
            },
        )
        .await?;
        let users = services::customers::list_end_users(
            &app.store,
            &ctx,
            &services::customers::EndUserQuery {
                customer_id: Some(id.clone()),
                limit,
                after: None,
            },
        )
        .await?;
        let users: Vec<Value> = users
            .data
            .iter()
            .map(|u| json!({"id": u.id, "email": u.email.as_str(), "role": serde_json::to_value(u.role).unwrap_or_default(), "created": day(Some(u.created_at))}))
            .collect();
        Ok::<_, ServiceError>(json!({
            "title": customer.name.as_str(),
            "c": {"id": customer.id, "name": customer.name.as_str(), "email": customer.email.as_ref().map(|e| e.as_str())},
            "can_manage": staff_allows(session.member.role, Permission::ManageCustomers),
            "can_act": staff_allows(session.member.role, Permission::ManageEntitlements),
            "entitlements": entitlements.data.iter().map(row).collect::<Vec<_>>(),
            "users": users,
            "events": events_of(&app, &ctx, &id).await?,
        }))
    }
    .await;
    match page {
        Ok(mut fields) => {
            fields["notice"] = json!(match query.done.as_deref() {
                Some("added") => Some("End user added."),
                Some("role") => Some("Role changed."),
                Some("link") => Some("A sign-in link is on its way."),
                _ => None,
            });
            frame.render(StatusCode::OK, "admin_customer.html", Some(&session), fields)
        }
        Err(ServiceError::NotFound(_)) => not_found_page(),
        Err(error) => internal(error),
    }
}

async fn entitlement_page(app: &AppState, session: &StaffSession, id: &str) -> Result<Value, ServiceError> {
    let ctx = session.ctx(None);
    let view = services::entitlements::get(&app.store, &ctx, id).await?;
    let limit = crate::domain::PageLimit::new(200).ok();
    let seats =
        services::licensing::list_activations(&app.store, &ctx, id, true, &Paging { limit, after: None }).await?;
    let seats: Vec<Value> = seats
        .data
        .iter()
        .map(|s| json!({"id": s.id, "name": s.seat_name.clone().unwrap_or_else(|| "Unnamed device".into()),
                        "seat_id": s.seat_id, "first_seen": moment(s.activated_at), "lease_until": moment(s.lease_expires_at),
                        "overdraft": s.overdraft}))
        .collect();
    let log = services::licensing::activation_log(
        &app.store,
        &ctx,
        id,
        &Paging {
            limit: crate::domain::PageLimit::new(50).ok(),
            after: None,
        },
    )
    .await?;
    let log: Vec<Value> = log
        .data
        .iter()
        .rev()
        .map(|l| json!({"at": moment(l.created_at), "action": l.action, "seat_id": l.seat_id, "code": l.code, "ip": l.ip}))
        .collect();
    let mails = services::mail::list(
        &app.store,
        &ctx,
        &services::mail::MailQuery {
            entitlement_id: Some(id.to_owned()),
            customer_id: None,
            status: None,
            limit,
            after: None,
        },
    )
    .await?;
    let mails: Vec<Value> = mails
        .data
        .iter()
        .map(|m| json!({"at": moment(m.created_at), "kind": m.kind, "to": m.recipient, "status": m.status}))
        .collect();
    let today = crate::domain::usage::day_of(ctx.now);
    let range = crate::domain::usage::DayRange {
        from: today.checked_sub_days(chrono::Days::new(29)).unwrap_or(today),
        to: today,
    };
    let usage = usage_charts(&services::usage::over_time(&app.store, &ctx, id, range).await?);
    let overridden: Vec<&str> = view.overridden_fields.iter().map(String::as_str).collect();
    let mut values = vec![
        json!({"name": "Seat count", "field": "seat_count", "value": view.seat_count}),
        json!({"name": "Expiry", "field": "expires_at", "value": day(view.expires_at)}),
        json!({"name": "Concurrency", "field": "concurrency_mode", "value": serde_json::to_value(view.concurrency_mode).unwrap_or_default()}),
        json!({"name": "Overdraft", "field": "overdraft", "value": serde_json::to_value(view.overdraft).unwrap_or_default().to_string()}),
    ];
    let limits: Vec<Value> = view
        .features
        .iter()
        .filter(|f| f.enabled && f.kind != crate::domain::FeatureKind::Bool)
        .map(|f| {
            json!({"key": f.key.as_str(), "limit": f.limit, "overdraft": f.overdraft,
                        "own": overridden.contains(&format!("features.{}", f.key.as_str()).as_str())})
        })
        .collect();
    for f in &view.features {
        let limit = f.limit.map_or_else(|| "unlimited".to_owned(), |l| l.to_string());
        values.push(
            json!({"name": format!("Feature {}", f.key.as_str()), "field": format!("features.{}", f.key.as_str()),
                           "value": format!("{} (limit {limit})", if f.enabled { "on" } else { "off" })}),
        );
    }
    for a in &view.attributes {
        values.push(
            json!({"name": format!("Attribute {}", a.key.as_str()), "field": format!("attributes.{}", a.key.as_str()),
                           "value": a.value.to_string()}),
        );
    }
    for value in &mut values {
        let field = value["field"].as_str().unwrap_or_default().to_owned();
        value["overridden"] = json!(overridden.contains(&field.as_str()));
    }
    let mut e = row(&view);
    if let Some(fields) = e.as_object_mut() {
        fields.insert("customer_id".into(), json!(view.customer_id));
        fields.insert("code".into(), json!(view.activation_code.as_str()));
        fields.insert(
            "seat_count_own".into(),
            json!(if overridden.contains(&"seat_count") {
                Some(view.seat_count)
            } else {
                None
            }),
        );
        // Prefilled only when overridden: an untouched form must not turn the plan's expiry into an
        // override (at midnight) by being submitted for another field.
        let expiry_overridden = overridden.contains(&"expires_at");
        fields.insert(
            "expires_on".into(),
            json!(view
                .expires_at
                .filter(|_| expiry_overridden)
                .map(|at| at.format("%Y-%m-%d").to_string())),
        );
    }
    Ok(json!({
        "title": view.sku.as_str(),
        "e": e,
        "values": values,
        "overridden": !overridden.is_empty(),
        "can_act": staff_allows(session.member.role, Permission::ManageEntitlements),
        "limits": limits,
        "seats": seats,
        "log": log,
        "mails": mails,
        "usage": usage,
        "events": events_of(app, &ctx, id).await?,
        "deliveries": super::console_storefronts::entitlement_deliveries(app, &ctx, view.order_ref.as_deref()).await?,
    }))
}

#[derive(Deserialize)]
pub struct DoneQuery {
    done: Option<String>,
}

fn notice(done: Option<&str>) -> Option<&'static str> {
    Some(match done? {
        "renew" => "Renewed.",
        "add-seats" => "Seats added.",
        "override" => "Overrides saved.",
        "reset" => "Reset to the offering's values.",
        "disable" => "Disabled: its seats are refused at their next check.",
        "enable" => "Enabled.",
        "resend" => "The credentials mail is queued.",
        "revoke" => "The seat is revoked.",
        _ => return None,
    })
}

async fn entitlement(
    State(app): State<AppState>,
    ApiPath((tenant, id)): ApiPath<(String, String)>,
    Query(query): Query<DoneQuery>,
    headers: HeaderMap,
) -> Response {
    let (frame, session) = match open(&app, &tenant, &headers).await {
        Ok(parts) => parts,
        Err(response) => return response,
    };
    match entitlement_page(&app, &session, &id).await {
        Ok(mut fields) => {
            fields["notice"] = json!(notice(query.done.as_deref()));
            frame.render(StatusCode::OK, "admin_entitlement.html", Some(&session), fields)
        }
        Err(ServiceError::NotFound(_)) => not_found_page(),
        Err(error) => internal(error),
    }
}

/// The override form's values as the management API's patch (so the same rules apply).
fn override_patch(fields: &HashMap<String, String>) -> Result<services::entitlements::EntitlementPatch, String> {
    let mut patch = serde_json::Map::new();
    let seats = field(fields, "seat_count").trim();
    if !seats.is_empty() {
        let count: i64 = seats
            .parse()
            .map_err(|_| "The seat count must be a whole number.".to_owned())?;
        patch.insert("seat_count".into(), json!(count));
    }
    let features: Vec<Value> = fields
        .iter()
        .filter_map(|(name, value)| {
            let key = name.strip_prefix("limit.")?;
            let value = value.trim();
            (!value.is_empty()).then(|| (key.to_owned(), value.to_owned()))
        })
        .map(|(key, value)| {
            let limit: i64 = value
                .parse()
                .map_err(|_| format!("The limit of {key} must be a whole number."))?;
            let overdraft = field(fields, &format!("overdraft.{key}")).parse::<i64>().unwrap_or(0);
            Ok(json!({"key": key, "limit": limit, "overdraft": overdraft}))
        })
        .collect::<Result<_, String>>()?;
    if !features.is_empty() {
        patch.insert("features".into(), Value::Array(features));
    }
    let expiry = field(fields, "expires_on").trim();
    if !expiry.is_empty() {
        let date =
            NaiveDate::parse_from_str(expiry, "%Y-%m-%d").map_err(|_| "The expiry must be a date.".to_owned())?;
        let at = date
            .and_hms_opt(0, 0, 0)
            .map(|t| t.and_utc())
            .ok_or("The expiry must be a date.")?;
        patch.insert("expires_at".into(), json!(at));
    }
    serde_json::from_value(Value::Object(patch)).map_err(|error| error.to_string())
}

async fn entitlement_action(
    State(app): State<AppState>,
    ApiPath((tenant, id, action)): ApiPath<(String, String, String)>,
    ClientIp(ip): ClientIp,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let (frame, session, fields) = match open_post(&app, &tenant, &headers, &body, Permission::ManageEntitlements).await
    {
        Ok(parts) => parts,
        Err(response) => return response,
    };
    let ctx = session.ctx(Some(ip));
    let store = &app.store;
    use services::entitlements as e;
    let outcome: Result<(), ServiceError> = match action.as_str() {
        "renew" => e::renew(store, &ctx, &id, e::Renewal { duration: None })
            .await
            .map(drop),
        "disable" => e::disable(store, &ctx, &id).await.map(drop),
        "enable" => e::enable(store, &ctx, &id).await.map(drop),
        "add-seats" => match serde_json::from_value::<e::SeatAddition>(
            json!({"count": field(&fields, "count").parse::<i64>().unwrap_or(0)}),
        ) {
            Ok(input) => e::add_seats(store, &ctx, &id, input).await.map(drop),
            Err(_) => Err(crate::domain::RuleViolation::new("invalid_seat_count", "add 1 to 1,000,000 seats").into()),
        },
        "reset" => {
            let field = field(&fields, "field");
            let fields = (!field.is_empty()).then(|| vec![field.to_owned()]);
            e::reset_overrides(store, &ctx, &id, e::ResetOverrides { fields })
                .await
                .map(drop)
        }
        "override" => match override_patch(&fields) {
            Ok(patch) => e::update(store, &ctx, &id, patch).await.map(drop),
            Err(message) => Err(crate::domain::RuleViolation::new("invalid_override", message).into()),
        },
        "resend" => services::mail::resend_credentials(
            store,
            &ctx,
            &app.mail,
            &id,
            services::mail::ResendCredentials::default(),
        )
        .await
        .map(drop),
        _ => return not_found_page(),
    };
    match outcome {
        Ok(()) => redirect(&format!("{}/entitlements/{id}?done={action}", frame.base)),
        Err(ServiceError::NotFound(_)) => not_found_page(),
        Err(ServiceError::Rule(rule)) => match entitlement_page(&app, &session, &id).await {
            Ok(mut page) => {
                page["error"] = json!(rule.message);
                frame.render(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    "admin_entitlement.html",
                    Some(&session),
                    page,
                )
            }
            Err(error) => internal(error),
        },
        Err(error) => internal(error),
    }
}

async fn revoke(
    State(app): State<AppState>,
    ApiPath((tenant, id)): ApiPath<(String, String)>,
    ClientIp(ip): ClientIp,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let (frame, session, _) = match open_post(&app, &tenant, &headers, &body, Permission::ManageEntitlements).await {
        Ok(parts) => parts,
        Err(response) => return response,
    };
    match services::licensing::revoke(&app.store, &session.ctx(Some(ip)), &id).await {
        Ok(activation) => redirect(&format!(
            "{}/entitlements/{}?done=revoke",
            frame.base, activation.entitlement_id
        )),
        Err(ServiceError::NotFound(_)) => not_found_page(),
        Err(error) => internal(error),
    }
}

async fn add_end_user(
    State(app): State<AppState>,
    ApiPath((tenant, id)): ApiPath<(String, String)>,
    ClientIp(ip): ClientIp,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let (frame, session, fields) = match open_post(&app, &tenant, &headers, &body, Permission::ManageCustomers).await {
        Ok(parts) => parts,
        Err(response) => return response,
    };
    let input = json!({"customer_id": id, "email": field(&fields, "email").trim(), "role": field(&fields, "role")});
    let outcome = match serde_json::from_value::<services::customers::NewEndUser>(input) {
        Ok(input) => services::customers::create_end_user(&app.store, &session.ctx(Some(ip)), input)
            .await
            .map(drop),
        Err(_) => Err(crate::domain::RuleViolation::new("invalid_email", "enter an email address").into()),
    };
    after_customer_action(&frame, &id, outcome, "added")
}

async fn end_user_action(
    State(app): State<AppState>,
    ApiPath((tenant, id, user, action)): ApiPath<(String, String, String, String)>,
    ClientIp(ip): ClientIp,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let (frame, session) = match open(&app, &tenant, &headers).await {
        Ok(parts) => parts,
        Err(response) => return response,
    };
    let fields = form(&body);
    let ctx = session.ctx(Some(ip));
    // The end user must be this customer's: another customer's id is not found.
    match services::customers::get_end_user(&app.store, &ctx, &user).await {
        Ok(end_user) if end_user.customer_id == id => {}
        Ok(_) | Err(ServiceError::NotFound(_)) => return not_found_page(),
        Err(error) => return internal(error),
    }
    let outcome = match action.as_str() {
        "role" => {
            if let Err(response) = check(&session, &fields, Permission::ManageCustomers) {
                return response;
            }
            match serde_json::from_value::<services::customers::EndUserPatch>(json!({"role": field(&fields, "role")})) {
                Ok(patch) => services::customers::update_end_user(&app.store, &ctx, &user, patch)
                    .await
                    .map(drop),
                Err(_) => Err(crate::domain::RuleViolation::new("invalid_role", "choose admin or user").into()),
            }
        }
        "sign-in-link" => {
            if let Err(response) = check(&session, &fields, Permission::ManageEntitlements) {
                return response;
            }
            match services::customers::get_end_user(&app.store, &ctx, &user).await {
                Ok(end_user) => {
                    services::portal::queue_sign_in_link(
                        &app.store,
                        &app.mail,
                        &SessionPolicy::default(),
                        &tenant,
                        end_user.email.as_str(),
                        ip,
                    )
                    .await
                }
                Err(error) => Err(error),
            }
        }
        _ => return not_found_page(),
    };
    let done = if action == "role" { "role" } else { "link" };
    after_customer_action(&frame, &id, outcome, done)
}

fn after_customer_action(frame: &Frame, customer_id: &str, outcome: Result<(), ServiceError>, done: &str) -> Response {
    let (status, message) = match outcome {
        Ok(()) => return redirect(&format!("{}/customers/{customer_id}?done={done}", frame.base)),
        Err(ServiceError::NotFound(_)) => return not_found_page(),
        Err(ServiceError::Rule(rule)) => (StatusCode::UNPROCESSABLE_ENTITY, rule.message),
        Err(ServiceError::Conflict { message, .. }) => (StatusCode::CONFLICT, message),
        Err(error) => return internal(error),
    };
    page(
        status,
        format!(
            "<!DOCTYPE html><title>Not saved</title><p>{}</p><p><a href=\"{}/customers/{}\">Back</a></p>",
            super::chart::escape(&message),
            frame.base,
            customer_id
        ),
    )
}
