//! The end-user portal: `/portal/{tenant}/…`. The buyer signs in from the credentials mail (with
//! the activation code, an emailed link, or a password) and sees their licences live. Handlers
//! parse, call `services::portal`, and render; every rule lives in the services.
//!
//! Handlers answer early with a finished page (`Result<_, Response>`): the error side is the
//! page itself, built once and returned at once, so its size does not matter.
#![allow(clippy::result_large_err)]

use axum::body::Bytes;
use axum::extract::{Query, State};
use axum::http::header::{CACHE_CONTROL, CONTENT_DISPOSITION, CONTENT_TYPE, RETRY_AFTER};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use chrono::{DateTime, Utc};
use entitle_protocol::licence::{self, ACTIVATION_REQUEST_LABEL, DEACTIVATION_REQUEST_LABEL};
use entitle_protocol::{ActivateRequest, OfflineActivationRequest, OfflineDeactivationRequest};
use serde::Deserialize;
use serde_json::{json, Value};
use std::collections::HashMap;
use std::net::IpAddr;

use super::cookies;
use super::{field, form, internal, not_found_page, page, redirect, render, same_secret, usage_charts, with_cookie};
use crate::api::extract::{ApiPath, ClientIp};
use crate::app::AppState;
use crate::domain::{ids, ActivationCode, EndUserRole};
use crate::services::licensing::{self, Mode, Origin};
use crate::services::portal::{self as portal, PortalEntitlement, Session, SessionPolicy, SignInError, Viewer};
use crate::services::{mail, ServiceError};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/portal", get(landing))
        .route("/portal/set-password", get(set_password_form).post(set_password))
        .route("/portal/{tenant}", get(home))
        .route("/portal/{tenant}/sign-in", get(sign_in_page))
        .route("/portal/{tenant}/sign-in/code", post(sign_in_with_code))
        .route("/portal/{tenant}/sign-in/password", post(sign_in_with_password))
        .route("/portal/{tenant}/sign-in/link", post(request_link))
        .route("/portal/{tenant}/sign-in/link/{token}", get(link_page).post(use_link))
        .route("/portal/{tenant}/sign-out", post(sign_out))
        .route("/portal/{tenant}/entitlements", get(entitlements))
        .route("/portal/{tenant}/entitlements/{id}", get(entitlement))
        .route(
            "/portal/{tenant}/entitlements/{id}/seats/{seat}/release",
            post(release_seat),
        )
        .route("/portal/{tenant}/entitlements/{id}/activations.csv", get(history_csv))
        .route(
            "/portal/{tenant}/entitlements/{id}/offline/activate",
            post(offline_activate),
        )
        .route(
            "/portal/{tenant}/entitlements/{id}/offline/deactivate",
            post(offline_deactivate),
        )
}

fn policy() -> SessionPolicy {
    SessionPolicy::default()
}

/// What every page of one tenant's portal shows around its content.
struct Frame {
    tenant_id: String,
    base: String,
    brand_name: String,
    logo_url: Option<String>,
    secure: bool,
}

impl Frame {
    /// The template context: the frame's fields, the viewer's (when signed in), then the page's.
    fn context(&self, session: Option<&Session>, csrf: &str, fields: Value) -> Value {
        let mut context = json!({
            "title": "",
            "base": self.base,
            "brand": {"name": self.brand_name, "logo_url": self.logo_url},
            "assets": {
                "css": super::assets::stylesheet_href(),
                "js": super::assets::script_href(),
                "brand_css": super::assets::brand_href(&self.tenant_id),
            },
            "viewer": session.map(|s| json!({"name": s.display_name()})),
            "csrf": csrf,
            "nav": "",
            "notice": null,
            "error": null,
        });
        if let (Some(context), Value::Object(fields)) = (context.as_object_mut(), fields) {
            context.extend(fields);
        }
        context
    }

    fn render(
        &self,
        status: StatusCode,
        template: &str,
        session: Option<&Session>,
        csrf: &str,
        fields: Value,
    ) -> Response {
        render(status, template, self.context(session, csrf, fields))
    }

    fn message(&self, status: StatusCode, title: &str, message: &str) -> Response {
        let link = json!({"href": format!("{}/sign-in", self.base), "text": "Sign in"});
        self.render(
            status,
            "message.html",
            None,
            "",
            json!({"title": title, "message": message, "link": link}),
        )
    }

    fn session_cookie(&self, token: &str) -> String {
        cookies::set(
            cookies::SESSION,
            token,
            &self.base,
            policy().absolute.num_seconds(),
            self.secure,
            "Lax",
        )
    }
}

async fn frame(app: &AppState, tenant_id: &str) -> Result<Frame, Response> {
    if tenant_id.len() > 64 {
        return Err(not_found_page());
    }
    match crate::services::branding::get(&app.store, tenant_id).await {
        Ok(brand) => Ok(Frame {
            tenant_id: tenant_id.to_owned(),
            base: format!("/portal/{tenant_id}"),
            brand_name: brand.display_name,
            logo_url: brand.logo_url.map(|url| url.as_str().to_owned()),
            secure: app.config.public_url.starts_with("https://"),
        }),
        Err(ServiceError::NotFound(_)) => Err(not_found_page()),
        Err(error) => Err(internal(error)),
    }
}

/// The live session behind the request's cookie, or a redirect to sign in.
async fn signed_in(app: &AppState, frame: &Frame, headers: &HeaderMap) -> Result<Session, Response> {
    let token = cookies::get(headers, cookies::SESSION).unwrap_or_default();
    match portal::session(&app.store, &policy(), &frame.tenant_id, token).await {
        Ok(Some(session)) => Ok(session),
        Ok(None) => Err(redirect(&format!("{}/sign-in", frame.base))),
        Err(error) => Err(internal(error)),
    }
}

/// A state-changing form of a session must carry the session's token.
fn check_csrf(session: &Session, fields: &HashMap<String, String>) -> Result<(), Response> {
    if same_secret(field(fields, "csrf"), &session.csrf_token) {
        Ok(())
    } else {
        Err(page(
            StatusCode::FORBIDDEN,
            "<!DOCTYPE html><title>Form expired</title><p>This form has expired. Go back, reload the page and try again.</p>"
                .into(),
        ))
    }
}

async fn landing() -> Response {
    page(
        StatusCode::OK,
        "<!DOCTYPE html><html lang=\"en\"><title>Customer portal</title><h1>Customer portal</h1>\
         <p>Open the portal link in the mail you received with your licence.</p></html>"
            .into(),
    )
}

async fn home(State(app): State<AppState>, ApiPath(tenant): ApiPath<String>, headers: HeaderMap) -> Response {
    let frame = match frame(&app, &tenant).await {
        Ok(frame) => frame,
        Err(response) => return response,
    };
    match signed_in(&app, &frame, &headers).await {
        Ok(_) => redirect(&format!("{}/entitlements", frame.base)),
        Err(response) => response,
    }
}

// ---- signing in ----

/// The sign-in forms' token (double submit): the cookie's, or a new one the answer sets.
fn pre_session_token(headers: &HeaderMap) -> (String, bool) {
    match cookies::get(headers, cookies::PRE_SESSION).filter(|t| t.len() >= 16 && t.len() <= 64) {
        Some(token) => (token.to_owned(), false),
        None => (ids::random_token(20), true),
    }
}

fn sign_in_form(frame: &Frame, headers: &HeaderMap, status: StatusCode, error: Option<&str>) -> Response {
    let (token, fresh) = pre_session_token(headers);
    let response = frame.render(
        status,
        "sign_in.html",
        None,
        &token,
        json!({"title": "Sign in", "error": error}),
    );
    if fresh {
        with_cookie(
            response,
            &cookies::set(cookies::PRE_SESSION, &token, "/portal", 3600, frame.secure, "Strict"),
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

/// The checks every sign-in post passes first: a known tenant and the form's token.
async fn sign_in_post(
    app: &AppState,
    tenant: &str,
    headers: &HeaderMap,
    fields: &HashMap<String, String>,
) -> Result<Frame, Response> {
    let frame = frame(app, tenant).await?;
    if !super::pre_session_ok(headers, fields) {
        return Err(sign_in_form(
            &frame,
            headers,
            StatusCode::FORBIDDEN,
            Some("The form expired. Please try again."),
        ));
    }
    Ok(frame)
}

fn signed_in_response(
    frame: &Frame,
    outcome: Result<String, SignInError>,
    headers: &HeaderMap,
    invalid: &str,
) -> Response {
    match outcome {
        Ok(token) => with_cookie(
            redirect(&format!("{}/entitlements", frame.base)),
            &frame.session_cookie(&token),
        ),
        Err(SignInError::Invalid) => sign_in_form(frame, headers, StatusCode::UNAUTHORIZED, Some(invalid)),
        Err(SignInError::RateLimited(wait)) => {
            let message = format!("Too many attempts. Please wait {wait} seconds and try again.");
            let mut response = sign_in_form(frame, headers, StatusCode::TOO_MANY_REQUESTS, Some(&message));
            response.headers_mut().insert(RETRY_AFTER, wait.into());
            response
        }
        Err(SignInError::Busy(wait))
        | Err(SignInError::Internal(ServiceError::Busy {
            retry_after_seconds: wait,
        })) => {
            let message = "The server is busy. Please try again in a moment.";
            let mut response = sign_in_form(frame, headers, StatusCode::SERVICE_UNAVAILABLE, Some(message));
            response.headers_mut().insert(RETRY_AFTER, wait.into());
            response
        }
        Err(SignInError::Internal(error)) => internal(error),
    }
}

async fn sign_in_with_code(
    State(app): State<AppState>,
    ApiPath(tenant): ApiPath<String>,
    ClientIp(ip): ClientIp,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let fields = form(&body);
    let frame = match sign_in_post(&app, &tenant, &headers, &fields).await {
        Ok(frame) => frame,
        Err(response) => return response,
    };
    let code = field(&fields, "code").trim();
    let outcome = portal::sign_in_with_code(&app.store, &app.attempts, &policy(), &tenant, code, ip).await;
    signed_in_response(&frame, outcome, &headers, "That activation code is not valid.")
}

async fn sign_in_with_password(
    State(app): State<AppState>,
    ApiPath(tenant): ApiPath<String>,
    ClientIp(ip): ClientIp,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let fields = form(&body);
    let frame = match sign_in_post(&app, &tenant, &headers, &fields).await {
        Ok(frame) => frame,
        Err(response) => return response,
    };
    let (email, password) = (field(&fields, "email").trim(), field(&fields, "password"));
    let outcome =
        portal::sign_in_with_password(&app.store, &app.attempts, &policy(), &tenant, email, password, ip).await;
    signed_in_response(
        &frame,
        outcome,
        &headers,
        "The email address or the password is not right.",
    )
}

async fn request_link(
    State(app): State<AppState>,
    ApiPath(tenant): ApiPath<String>,
    ClientIp(ip): ClientIp,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let fields = form(&body);
    let frame = match sign_in_post(&app, &tenant, &headers, &fields).await {
        Ok(frame) => frame,
        Err(response) => return response,
    };
    let email = field(&fields, "email").trim();
    match portal::send_sign_in_link(&app.store, &app.attempts, &app.mail, &policy(), &tenant, email, ip).await {
        Ok(()) => frame.render(
            StatusCode::OK,
            "message.html",
            None,
            "",
            json!({"title": "Check your mail",
                   "message": "If that address belongs to an account here, a sign-in link is on its way. It works once, for 15 minutes.",
                   "link": null}),
        ),
        Err(error) => signed_in_response(&frame, Err(error), &headers, ""),
    }
}

async fn link_page(
    State(app): State<AppState>,
    ApiPath((tenant, token)): ApiPath<(String, String)>,
    headers: HeaderMap,
) -> Response {
    let frame = match frame(&app, &tenant).await {
        Ok(frame) => frame,
        Err(response) => return response,
    };
    // Mail scanners follow links: only the button below uses the link up.
    match portal::sign_in_link_valid(&app.store, &tenant, &token).await {
        Ok(true) => {
            let (csrf, fresh) = pre_session_token(&headers);
            let action = format!("{}/sign-in/link/{token}", frame.base);
            let response = frame.render(
                StatusCode::OK,
                "link_confirm.html",
                None,
                &csrf,
                json!({"title": "Sign in", "action": action}),
            );
            if fresh {
                with_cookie(
                    response,
                    &cookies::set(cookies::PRE_SESSION, &csrf, "/portal", 3600, frame.secure, "Strict"),
                )
            } else {
                response
            }
        }
        Ok(false) => frame.message(
            StatusCode::NOT_FOUND,
            "Link expired",
            "This sign-in link was used already or has expired. Ask for a new one.",
        ),
        Err(error) => internal(error),
    }
}

async fn use_link(
    State(app): State<AppState>,
    ApiPath((tenant, token)): ApiPath<(String, String)>,
    ClientIp(ip): ClientIp,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let fields = form(&body);
    let frame = match sign_in_post(&app, &tenant, &headers, &fields).await {
        Ok(frame) => frame,
        Err(response) => return response,
    };
    match portal::sign_in_with_link(&app.store, &policy(), &tenant, &token, ip).await {
        Err(SignInError::Invalid) => frame.message(
            StatusCode::NOT_FOUND,
            "Link expired",
            "This sign-in link was used already or has expired. Ask for a new one.",
        ),
        outcome => signed_in_response(&frame, outcome, &headers, ""),
    }
}

async fn sign_out(
    State(app): State<AppState>,
    ApiPath(tenant): ApiPath<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let frame = match frame(&app, &tenant).await {
        Ok(frame) => frame,
        Err(response) => return response,
    };
    let session = match signed_in(&app, &frame, &headers).await {
        Ok(session) => session,
        Err(response) => return response,
    };
    if let Err(response) = check_csrf(&session, &form(&body)) {
        return response;
    }
    if let Err(error) = portal::sign_out(&app.store, &session).await {
        return internal(error);
    }
    with_cookie(
        redirect(&format!("{}/sign-in", frame.base)),
        &cookies::clear(cookies::SESSION, &frame.base, frame.secure),
    )
}

// ---- licences ----

fn badge_text(badge: &str) -> &'static str {
    match badge {
        "active" => "Active",
        "created" => "Starts on first activation",
        "grace" => "Grace period",
        "expired" => "Expired",
        "disabled" => "Disabled",
        "expiring" => "Expiring soon",
        _ => "Unknown",
    }
}

fn day(at: Option<DateTime<Utc>>) -> String {
    at.map_or_else(|| "—".to_owned(), |at| at.format("%Y-%m-%d").to_string())
}

fn moment(at: DateTime<Utc>) -> String {
    at.format("%Y-%m-%d %H:%M UTC").to_string()
}

fn expiry(e: &PortalEntitlement) -> String {
    match (e.view.expires_at, e.view.starts_at) {
        (Some(at), _) => day(Some(at)),
        (None, None) => "one period from the first activation".to_owned(),
        (None, Some(_)) => "never".to_owned(),
    }
}

fn summary(e: &PortalEntitlement) -> Value {
    json!({
        "id": e.view.id,
        "product": e.product,
        "edition": e.edition,
        "plan": e.plan,
        "badge": e.badge,
        "badge_text": badge_text(&e.badge),
        "expires": expiry(e),
        "seats_used": e.view.seats_used,
        "seat_count": e.view.seat_count,
    })
}

async fn entitlements(State(app): State<AppState>, ApiPath(tenant): ApiPath<String>, headers: HeaderMap) -> Response {
    let frame = match frame(&app, &tenant).await {
        Ok(frame) => frame,
        Err(response) => return response,
    };
    let session = match signed_in(&app, &frame, &headers).await {
        Ok(session) => session,
        Err(response) => return response,
    };
    match portal::entitlements(&app.store, &session).await {
        Ok(list) => {
            let rows: Vec<Value> = list.iter().map(summary).collect();
            frame.render(
                StatusCode::OK,
                "entitlements.html",
                Some(&session),
                &session.csrf_token,
                json!({"title": "Your licences", "nav": "entitlements", "entitlements": rows}),
            )
        }
        Err(error) => internal(error),
    }
}

#[derive(Debug, Deserialize)]
pub struct DetailQuery {
    days: Option<u32>,
    done: Option<String>,
}

fn notice(done: Option<&str>) -> Option<&'static str> {
    match done? {
        "released" => Some("The seat is released. The device is signed out at its next check."),
        "deactivated" => Some("The offline machine's seat is free again."),
        _ => None,
    }
}

/// The entitlement page's context (also re-rendered with a form error).
async fn detail_context(app: &AppState, session: &Session, id: &str, days: u32) -> Result<Value, ServiceError> {
    let e = portal::entitlement(&app.store, session, id).await?;
    let seats = portal::seats(&app.store, session, id).await?;
    let shows_code = !matches!(&session.viewer, Viewer::EndUser(user) if user.role == EndUserRole::User);
    let features: Vec<Value> = e
        .view
        .features
        .iter()
        .filter(|f| f.enabled)
        .map(|f| {
            let kind = serde_json::to_value(f.kind).unwrap_or_default();
            json!({"key": f.key.as_str(), "kind": kind,
                   "limit": f.limit.map_or_else(|| "unlimited".to_owned(), |l| l.to_string()),
                   "used": f.used})
        })
        .collect();
    let attributes: Vec<Value> = e
        .view
        .attributes
        .iter()
        .map(|a| {
            let value = match &a.value {
                Value::String(text) => text.clone(),
                other => other.to_string(),
            };
            json!({"key": a.key.as_str(), "value": value})
        })
        .collect();
    let seats: Vec<Value> = seats
        .iter()
        .map(|s| {
            json!({"id": s.id, "name": s.seat_name.clone().unwrap_or_else(|| "Unnamed device".to_owned()),
                   "seat_id": s.seat_id, "first_seen": moment(s.activated_at), "last_seen": moment(s.last_lease_at),
                   "lease_until": moment(s.lease_expires_at), "overdraft": s.overdraft, "offline": s.mode == "offline"})
        })
        .collect();
    let mut entitlement = summary(&e);
    if let Some(fields) = entitlement.as_object_mut() {
        fields.insert("sku".into(), json!(e.view.sku.as_str()));
        fields.insert(
            "grace_expires".into(),
            json!(e.view.grace_expires_at.map(|at| day(Some(at)))),
        );
        fields.insert("seat_meter_max".into(), json!(e.view.seat_count.max(1)));
        fields.insert(
            "overdraft_seats".into(),
            json!(e.view.overdraft_seats.filter(|n| *n > 0)),
        );
        fields.insert(
            "code".into(),
            json!(shows_code.then(|| e.view.activation_code.as_str().to_owned())),
        );
        fields.insert("features".into(), json!(features));
        fields.insert("attributes".into(), json!(attributes));
    }
    let usage = usage_charts(&portal::usage(&app.store, session, id, days).await?);
    Ok(json!({
        "title": format!("{} licence", e.product),
        "nav": "entitlements",
        "e": entitlement,
        "seats": seats,
        "days": days,
        "usage": usage,
    }))
}

async fn entitlement(
    State(app): State<AppState>,
    ApiPath((tenant, id)): ApiPath<(String, String)>,
    Query(query): Query<DetailQuery>,
    headers: HeaderMap,
) -> Response {
    let frame = match frame(&app, &tenant).await {
        Ok(frame) => frame,
        Err(response) => return response,
    };
    let session = match signed_in(&app, &frame, &headers).await {
        Ok(session) => session,
        Err(response) => return response,
    };
    let days = if query.days == Some(90) { 90 } else { 30 };
    match detail_context(&app, &session, &id, days).await {
        Ok(mut context) => {
            if let Some(fields) = context.as_object_mut() {
                fields.insert("notice".into(), json!(notice(query.done.as_deref())));
            }
            frame.render(
                StatusCode::OK,
                "entitlement.html",
                Some(&session),
                &session.csrf_token,
                context,
            )
        }
        Err(ServiceError::NotFound(_)) => not_found_page(),
        Err(error) => internal(error),
    }
}

/// A session form on one entitlement: the frame, the session, and the checked form fields.
async fn entitlement_post(
    app: &AppState,
    tenant: &str,
    headers: &HeaderMap,
    body: &Bytes,
) -> Result<(Frame, Session, HashMap<String, String>), Response> {
    let frame = frame(app, tenant).await?;
    let session = signed_in(app, &frame, headers).await?;
    let fields = form(body);
    check_csrf(&session, &fields)?;
    Ok((frame, session, fields))
}

async fn release_seat(
    State(app): State<AppState>,
    ApiPath((tenant, id, seat)): ApiPath<(String, String, String)>,
    ClientIp(ip): ClientIp,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let (frame, session, _) = match entitlement_post(&app, &tenant, &headers, &body).await {
        Ok(parts) => parts,
        Err(response) => return response,
    };
    match portal::release_seat(&app.store, &session, &id, &seat, ip).await {
        Ok(()) => redirect(&format!("{}/entitlements/{id}?done=released", frame.base)),
        Err(ServiceError::NotFound(_)) => not_found_page(),
        Err(error) => internal(error),
    }
}

/// A CSV cell: quoted, and never read as a formula by a spreadsheet (seat ids come from devices).
fn csv_cell(value: &str) -> String {
    let guarded = if value.starts_with(['=', '+', '-', '@', '\t', '\r']) {
        format!("'{value}")
    } else {
        value.to_owned()
    };
    format!("\"{}\"", guarded.replace('"', "\"\""))
}

async fn history_csv(
    State(app): State<AppState>,
    ApiPath((tenant, id)): ApiPath<(String, String)>,
    headers: HeaderMap,
) -> Response {
    let frame = match frame(&app, &tenant).await {
        Ok(frame) => frame,
        Err(response) => return response,
    };
    let session = match signed_in(&app, &frame, &headers).await {
        Ok(session) => session,
        Err(response) => return response,
    };
    match portal::activation_history(&app.store, &session, &id).await {
        Ok(entries) => {
            let mut csv = String::from("time,action,seat_id,activation_id,reason,ip\r\n");
            for entry in entries {
                let cells = [
                    entry.created_at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
                    entry.action,
                    entry.seat_id,
                    entry.activation_id.unwrap_or_default(),
                    entry.code.unwrap_or_default(),
                    entry.ip.unwrap_or_default(),
                ];
                let line: Vec<String> = cells.iter().map(|c| csv_cell(c)).collect();
                csv.push_str(&line.join(","));
                csv.push_str("\r\n");
            }
            download("text/csv; charset=utf-8", &format!("activations-{id}.csv"), csv)
        }
        Err(ServiceError::NotFound(_)) => not_found_page(),
        Err(error) => internal(error),
    }
}

fn download(content_type: &'static str, filename: &str, body: String) -> Response {
    let disposition = format!(
        "attachment; filename=\"{}\"",
        filename.replace(['"', '\\', '\r', '\n'], "_")
    );
    let mut response = (StatusCode::OK, [(CONTENT_TYPE, content_type)], body).into_response();
    if let Ok(value) = HeaderValue::from_str(&disposition) {
        response.headers_mut().insert(CONTENT_DISPOSITION, value);
    }
    response
        .headers_mut()
        .insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

/// The entitlement page again, with a problem shown above the form that caused it.
async fn detail_with_error(app: &AppState, frame: &Frame, session: &Session, id: &str, problem: &str) -> Response {
    match detail_context(app, session, id, 30).await {
        Ok(mut context) => {
            if let Some(fields) = context.as_object_mut() {
                fields.insert("error".into(), json!(problem));
            }
            frame.render(
                StatusCode::UNPROCESSABLE_ENTITY,
                "entitlement.html",
                Some(session),
                &session.csrf_token,
                context,
            )
        }
        Err(ServiceError::NotFound(_)) => not_found_page(),
        Err(error) => internal(error),
    }
}

fn origin(ip: IpAddr) -> Origin {
    Origin {
        ip: Some(ip.to_string()),
        now: crate::services::now(),
    }
}

async fn offline_activate(
    State(app): State<AppState>,
    ApiPath((tenant, id)): ApiPath<(String, String)>,
    ClientIp(ip): ClientIp,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let (frame, session, fields) = match entitlement_post(&app, &tenant, &headers, &body).await {
        Ok(parts) => parts,
        Err(response) => return response,
    };
    let e = match portal::entitlement(&app.store, &session, &id).await {
        Ok(e) => e,
        Err(ServiceError::NotFound(_)) => return not_found_page(),
        Err(error) => return internal(error),
    };
    let request =
        licence::read_request::<OfflineActivationRequest>(ACTIVATION_REQUEST_LABEL, field(&fields, "request"));
    // The file must be for this licence: this tenant, this product, this entitlement's code.
    let Some(request) = request.filter(|r| {
        r.tenant == tenant
            && r.product == e.view.product_id
            && ActivationCode::parse(&r.activation_code).is_ok_and(|code| code == e.view.activation_code)
    }) else {
        return detail_with_error(
            &app,
            &frame,
            &session,
            &id,
            "That is not an activation request file for this licence.",
        )
        .await;
    };
    let activate = ActivateRequest {
        tenant: request.tenant,
        product: request.product,
        activation_code: Some(request.activation_code),
        seat_id: request.seat_id,
        seat_name: request.seat_name,
        nonce: request.nonce,
        ..Default::default()
    };
    let activated = match licensing::activate(&app.store, &activate, Mode::Offline, &origin(ip)).await {
        Ok(activated) => activated,
        Err(licensing::LicensingError::Denied(denial)) => {
            return detail_with_error(&app, &frame, &session, &id, denial.message()).await
        }
        Err(licensing::LicensingError::BadRequest(message)) => {
            return detail_with_error(&app, &frame, &session, &id, &message).await
        }
        Err(licensing::LicensingError::Internal(error)) => return internal(error),
    };
    let keys = match app.keys.get(&app.store, &tenant).await {
        Ok(Some(keys)) => keys,
        Ok(None) => return internal("the tenant has no signing key"),
        Err(error) => return internal(error),
    };
    let claims = serde_json::to_vec(&activated.lease.claims).unwrap_or_default();
    let token = keys.signer.sign_compact(&claims);
    let file = licence::write_licence_file(&token, &activated.secret);
    download("application/octet-stream", "licence.lic", file)
}

async fn offline_deactivate(
    State(app): State<AppState>,
    ApiPath((tenant, id)): ApiPath<(String, String)>,
    ClientIp(ip): ClientIp,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let (frame, session, fields) = match entitlement_post(&app, &tenant, &headers, &body).await {
        Ok(parts) => parts,
        Err(response) => return response,
    };
    if let Err(error) = portal::entitlement(&app.store, &session, &id).await {
        return match error {
            ServiceError::NotFound(_) => not_found_page(),
            other => internal(other),
        };
    }
    let request =
        licence::read_request::<OfflineDeactivationRequest>(DEACTIVATION_REQUEST_LABEL, field(&fields, "request"));
    let Some(request) = request.filter(|r| r.tenant == tenant) else {
        return detail_with_error(
            &app,
            &frame,
            &session,
            &id,
            "That is not a deactivation request file for this licence.",
        )
        .await;
    };
    match licensing::offline_deactivate(&app.store, &request, &origin(ip)).await {
        Ok(_) => redirect(&format!("{}/entitlements/{id}?done=deactivated", frame.base)),
        Err(licensing::LicensingError::Internal(error)) => internal(error),
        Err(other) => detail_with_error(&app, &frame, &session, &id, &other.to_string()).await,
    }
}

// ---- choosing a password from a set-up link (account-based products) ----

#[derive(Deserialize)]
pub struct SetupLink {
    token: Option<String>,
}

fn set_password_page(status: StatusCode, fields: Value) -> Response {
    let mut context = json!({
        "title": "Choose your password",
        "base": "/portal",
        "brand": {"name": "Customer portal", "logo_url": null},
        "assets": {"css": super::assets::stylesheet_href(), "js": super::assets::script_href(), "brand_css": "/portal/-/brand.css"},
        "viewer": null, "csrf": "", "nav": "", "notice": null, "error": null,
        "token": "", "done": false, "expired": false, "action": "/portal/set-password",
        "done_message": "Your password is set. Sign in to the application with your email address and this password.",
    });
    if let (Some(context), Value::Object(fields)) = (context.as_object_mut(), fields) {
        context.extend(fields);
    }
    render(status, "set_password.html", context)
}

async fn set_password_form(State(app): State<AppState>, Query(link): Query<SetupLink>) -> Response {
    let token = link.token.unwrap_or_default();
    match mail::setup_link_valid(&app.store, &token).await {
        Ok(true) => set_password_page(StatusCode::OK, json!({"token": token})),
        Ok(false) => set_password_page(StatusCode::NOT_FOUND, json!({"title": "Link expired", "expired": true})),
        Err(error) => internal(error),
    }
}

async fn set_password(State(app): State<AppState>, body: Bytes) -> Response {
    let fields = form(&body);
    let (token, password) = (field(&fields, "token"), field(&fields, "password"));
    if password != field(&fields, "confirm") {
        return set_password_page(
            StatusCode::UNPROCESSABLE_ENTITY,
            json!({"token": token, "error": "The two passwords differ."}),
        );
    }
    match mail::set_password_with_link(&app.store, token, password.to_owned()).await {
        Ok(()) => set_password_page(StatusCode::OK, json!({"title": "Password set", "done": true})),
        Err(ServiceError::Rule(rule)) if rule.code == "invalid_link" => {
            set_password_page(StatusCode::NOT_FOUND, json!({"title": "Link expired", "expired": true}))
        }
        Err(ServiceError::Rule(rule)) => set_password_page(
            StatusCode::UNPROCESSABLE_ENTITY,
            json!({"token": token, "error": rule.message}),
        ),
        Err(ServiceError::Busy { retry_after_seconds }) => {
            let mut response = set_password_page(
                StatusCode::SERVICE_UNAVAILABLE,
                json!({"token": token, "error": "The server is busy. Please try again in a moment."}),
            );
            response.headers_mut().insert(RETRY_AFTER, retry_after_seconds.into());
            response
        }
        Err(error) => internal(error),
    }
}
