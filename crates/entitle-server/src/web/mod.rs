//! The web applications: the end-user portal (`/portal/…`) and, later, the admin console
//! (`/admin/…`). Server-rendered HTML from templates embedded in the binary (MiniJinja, the mail's
//! engine, with HTML autoescaping), one stylesheet, no script needed (a small script only
//! enhances: copy buttons).

pub mod assets;
pub mod chart;
pub mod console;
pub mod console_catalogue;
pub mod console_storefronts;
pub mod cookies;
pub mod portal;

use axum::body::Bytes;
use axum::http::header::{CACHE_CONTROL, CONTENT_SECURITY_POLICY, LOCATION, REFERRER_POLICY, SET_COOKIE};
use axum::http::{HeaderValue, StatusCode};
use serde_json::{json, Value};

use crate::domain::keys::hash_secret;
use axum::response::{Html, IntoResponse, Response};
use minijinja::{AutoEscape, Environment};
use serde::Serialize;
use std::collections::HashMap;
use std::sync::OnceLock;

/// Every page: scripts and styles from our own origin only, images also from https (a tenant's
/// logo), forms only to ourselves, never framed, no referrer (sign-in links carry tokens).
const PAGE_POLICY: &str = "default-src 'none'; style-src 'self'; script-src 'self'; img-src 'self' https: data:; \
                           form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

const TEMPLATES: &[(&str, &str)] = &[
    ("layout.html", include_str!("templates/layout.html")),
    ("message.html", include_str!("templates/message.html")),
    ("sign_in.html", include_str!("templates/sign_in.html")),
    ("link_confirm.html", include_str!("templates/link_confirm.html")),
    ("entitlements.html", include_str!("templates/entitlements.html")),
    ("entitlement.html", include_str!("templates/entitlement.html")),
    ("set_password.html", include_str!("templates/set_password.html")),
    ("admin_layout.html", include_str!("templates/admin_layout.html")),
    (
        "admin_second_factor.html",
        include_str!("templates/admin_second_factor.html"),
    ),
    ("admin_account.html", include_str!("templates/admin_account.html")),
    ("admin_sign_in.html", include_str!("templates/admin_sign_in.html")),
    ("admin_dashboard.html", include_str!("templates/admin_dashboard.html")),
    ("admin_search.html", include_str!("templates/admin_search.html")),
    ("admin_customer.html", include_str!("templates/admin_customer.html")),
    ("admin_events.html", include_str!("templates/admin_events.html")),
    (
        "admin_entitlement.html",
        include_str!("templates/admin_entitlement.html"),
    ),
    (
        "admin_storefronts_list.html",
        include_str!("templates/admin_storefronts_list.html"),
    ),
    (
        "admin_storefronts_connection.html",
        include_str!("templates/admin_storefronts_connection.html"),
    ),
    (
        "admin_storefronts_deliveries.html",
        include_str!("templates/admin_storefronts_deliveries.html"),
    ),
    (
        "admin_storefronts_delivery.html",
        include_str!("templates/admin_storefronts_delivery.html"),
    ),
    ("admin_catalogue.html", include_str!("templates/admin_catalogue.html")),
    (
        "admin_catalogue_field.html",
        include_str!("templates/admin_catalogue_field.html"),
    ),
    (
        "admin_catalogue_forms.html",
        include_str!("templates/admin_catalogue_forms.html"),
    ),
    (
        "admin_catalogue_item.html",
        include_str!("templates/admin_catalogue_item.html"),
    ),
    ("admin_settings.html", include_str!("templates/admin_settings.html")),
    (
        "admin_settings_key.html",
        include_str!("templates/admin_settings_key.html"),
    ),
];

fn environment() -> &'static Environment<'static> {
    static ENVIRONMENT: OnceLock<Environment<'static>> = OnceLock::new();
    ENVIRONMENT.get_or_init(|| {
        let mut env = Environment::new();
        env.set_auto_escape_callback(|_| AutoEscape::Html);
        env.set_undefined_behavior(minijinja::UndefinedBehavior::Strict);
        for (name, source) in TEMPLATES {
            if let Err(error) = env.add_template(name, source) {
                tracing::error!(template = name, %error, "a built-in page template does not parse");
            }
        }
        env
    })
}

/// Renders a built-in page template; a failure is logged and answered as a plain 500 page.
pub fn render(status: StatusCode, template: &str, context: impl Serialize) -> Response {
    let rendered = environment()
        .get_template(template)
        .and_then(|t| t.render(minijinja::Value::from(minijinja::value::Serde(&context))));
    match rendered {
        Ok(html) => page(status, html),
        Err(error) => {
            tracing::error!(template, error = %error, "rendering a page failed");
            page(
                StatusCode::INTERNAL_SERVER_ERROR,
                "<!DOCTYPE html><title>Error</title><p>Something went wrong. Please try again later.</p>".into(),
            )
        }
    }
}

/// An HTML answer with the headers every page carries. Pages show personal data and often
/// secrets (activation codes), so none is stored by any cache.
pub fn page(status: StatusCode, html: String) -> Response {
    let mut response = (status, Html(html)).into_response();
    let headers = response.headers_mut();
    headers.insert(CONTENT_SECURITY_POLICY, HeaderValue::from_static(PAGE_POLICY));
    headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    response
}

// ---- shared by the portal and the console ----

/// The usage section: a chart per series, with its numbers as a table beside it.
pub(crate) fn usage_charts(usage: &crate::services::usage::EntitlementUsage) -> Vec<Value> {
    let mut charts = Vec::new();
    if !usage.seats.is_empty() {
        let rows: Vec<Vec<String>> = usage
            .seats
            .iter()
            .map(|d| {
                vec![
                    d.day.to_string(),
                    d.seats_min.to_string(),
                    d.seats_max.to_string(),
                    d.licensed.to_string(),
                    d.overdraft.map_or_else(|| "unlimited".to_owned(), |o| o.to_string()),
                ]
            })
            .collect();
        charts.push(json!({
            "title": "Seats in use per day",
            "svg": chart::seats_svg("Seats in use per day", &usage.seats),
            "caption": "Fewest and most seats in use each day, against the licensed seats and the overdraft allowed.",
            "header": ["Day", "Fewest", "Most", "Licensed", "Overdraft"],
            "rows": rows,
        }));
    }
    for feature in &usage.features {
        let title = format!("{} used per day", feature.key.as_str());
        let rows: Vec<Vec<String>> = feature
            .days
            .iter()
            .map(|d| vec![d.day.to_string(), d.used.to_string()])
            .collect();
        let limit = feature.limit.map_or_else(|| "unlimited".to_owned(), |l| l.to_string());
        charts.push(json!({
            "title": title,
            "svg": chart::usage_svg(&title, &feature.days, feature.limit, feature.overdraft),
            "caption": format!("Use each day; the allowance is {limit} per period ({} used so far).", feature.used),
            "header": ["Day", "Used"],
            "rows": rows,
        }));
    }
    charts
}

pub(crate) fn internal(error: impl std::fmt::Display) -> Response {
    tracing::error!(%error, "portal request failed");
    page(
        StatusCode::INTERNAL_SERVER_ERROR,
        "<!DOCTYPE html><title>Error</title><p>Something went wrong. Please try again later.</p>".into(),
    )
}

pub(crate) fn not_found_page() -> Response {
    page(
        StatusCode::NOT_FOUND,
        "<!DOCTYPE html><title>Not found</title><p>There is no such page.</p>".into(),
    )
}

pub(crate) fn redirect(to: &str) -> Response {
    (StatusCode::SEE_OTHER, [(LOCATION, to.to_owned())]).into_response()
}

pub(crate) fn with_cookie(mut response: Response, cookie: &str) -> Response {
    if let Ok(value) = HeaderValue::from_str(cookie) {
        response.headers_mut().append(SET_COOKIE, value);
    }
    response
}

/// Compares two secrets without revealing where they differ.
pub(crate) fn same_secret(a: &str, b: &str) -> bool {
    !a.is_empty() && hash_secret(a) == hash_secret(b)
}

/// A sign-in form (before there is a session) carries the token of its double-submit cookie.
pub(crate) fn pre_session_ok(headers: &axum::http::HeaderMap, fields: &HashMap<String, String>) -> bool {
    let cookie = cookies::get(headers, cookies::PRE_SESSION).unwrap_or_default();
    same_secret(cookie, field(fields, "csrf"))
}

/// A form body as fields; anything unreadable is simply absent.
pub(crate) fn form(body: &Bytes) -> HashMap<String, String> {
    serde_urlencoded::from_bytes(body).unwrap_or_default()
}

pub(crate) fn field<'a>(fields: &'a HashMap<String, String>, name: &str) -> &'a str {
    fields.get(name).map(String::as_str).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_template_parses() {
        let env = environment();
        for (name, _) in TEMPLATES {
            assert!(env.get_template(name).is_ok(), "{name} does not parse");
        }
    }
}
