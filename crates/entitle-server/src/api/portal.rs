//! The end-user portal's first page: choosing a password from a set-up link. (The rest of the
//! portal comes with its own issue.)

use axum::extract::{Query, State};
use axum::http::header::{CACHE_CONTROL, CONTENT_SECURITY_POLICY, REFERRER_POLICY};
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use axum::{Form, Router};
use serde::Deserialize;

use crate::app::AppState;
use crate::services::{mail, ServiceError};

pub fn router() -> Router<AppState> {
    Router::new().route("/portal/set-password", get(form).post(submit))
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\'', "&#39;")
}

/// Pages that carry a secret token: never cached, never leaked through the Referer header, no scripts.
fn page(status: StatusCode, title: &str, body: &str) -> Response {
    let html = format!(
        "<!DOCTYPE html><html><head><meta charset=\"utf-8\"><meta name=\"viewport\" content=\"width=device-width\">\
         <title>{title}</title></head><body style=\"font-family: sans-serif; max-width: 28em; margin: 3em auto;\">\
         <h1>{title}</h1>{body}</body></html>"
    );
    (
        status,
        [
            (CACHE_CONTROL, "no-store"),
            (REFERRER_POLICY, "no-referrer"),
            (
                CONTENT_SECURITY_POLICY,
                "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; frame-ancestors 'none'",
            ),
        ],
        Html(html),
    )
        .into_response()
}

#[derive(Deserialize)]
pub struct Link {
    token: Option<String>,
}

fn password_form(token: &str, problem: Option<&str>) -> String {
    let problem = problem
        .map(|p| format!("<p role=\"alert\" style=\"color: #a00;\">{}</p>", escape(p)))
        .unwrap_or_default();
    format!(
        "{problem}<form method=\"post\" action=\"/portal/set-password\">\
         <input type=\"hidden\" name=\"token\" value=\"{token}\">\
         <p><label>New password (at least 10 characters)<br><input type=\"password\" name=\"password\" minlength=\"10\" required autocomplete=\"new-password\"></label></p>\
         <p><label>Repeat it<br><input type=\"password\" name=\"confirm\" minlength=\"10\" required autocomplete=\"new-password\"></label></p>\
         <p><button type=\"submit\">Set password</button></p></form>",
        token = escape(token)
    )
}

const EXPIRED: &str = "<p>This link was used already or has expired. Ask for a new one.</p>";

async fn form(State(app): State<AppState>, Query(link): Query<Link>) -> Response {
    let token = link.token.unwrap_or_default();
    match mail::setup_link_valid(&app.store, &token).await {
        Ok(true) => page(StatusCode::OK, "Choose your password", &password_form(&token, None)),
        Ok(false) => page(StatusCode::NOT_FOUND, "Link expired", EXPIRED),
        Err(error) => internal(error),
    }
}

#[derive(Deserialize)]
pub struct NewPassword {
    token: String,
    password: String,
    confirm: String,
}

async fn submit(State(app): State<AppState>, Form(input): Form<NewPassword>) -> Response {
    if input.password != input.confirm {
        return page(
            StatusCode::UNPROCESSABLE_ENTITY,
            "Choose your password",
            &password_form(&input.token, Some("The two passwords differ.")),
        );
    }
    match mail::set_password_with_link(&app.store, &input.token, input.password).await {
        Ok(()) => page(
            StatusCode::OK,
            "Password set",
            "<p>Your password is set. Sign in to the application with your email address and this password.</p>",
        ),
        Err(ServiceError::Rule(rule)) if rule.code == "invalid_link" => {
            page(StatusCode::NOT_FOUND, "Link expired", EXPIRED)
        }
        Err(ServiceError::Rule(rule)) => page(
            StatusCode::UNPROCESSABLE_ENTITY,
            "Choose your password",
            &password_form(&input.token, Some(&rule.message)),
        ),
        Err(error) => internal(error),
    }
}

fn internal(error: ServiceError) -> Response {
    tracing::error!(error = ?error, "portal request failed");
    page(
        StatusCode::INTERNAL_SERVER_ERROR,
        "Something went wrong",
        "<p>Please try again later.</p>",
    )
}
