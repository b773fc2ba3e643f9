//! The web applications: the end-user portal (`/portal/…`) and, later, the admin console
//! (`/admin/…`). Server-rendered HTML from templates embedded in the binary (MiniJinja, the mail's
//! engine, with HTML autoescaping), one stylesheet, no script needed (a small script only
//! enhances: copy buttons).

pub mod assets;
pub mod chart;
pub mod cookies;
pub mod portal;

use axum::http::header::{CACHE_CONTROL, CONTENT_SECURITY_POLICY, REFERRER_POLICY};
use axum::http::{HeaderValue, StatusCode};
use axum::response::{Html, IntoResponse, Response};
use minijinja::{AutoEscape, Environment};
use serde::Serialize;
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
