//! Static assets (stylesheet, script) served with a content hash, and each tenant's accent.
//!
//! The files are compiled into the binary and named by their content (`portal.<hash>.css`), so
//! browsers may keep them forever: a new release changes the name, never the bytes behind one.

use axum::extract::{Path, State};
use axum::http::header::{CACHE_CONTROL, CONTENT_TYPE};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use sha2::{Digest, Sha256};
use std::fmt::Write as _;
use std::sync::OnceLock;

use crate::app::AppState;
use crate::domain::branding::{shades, AccentColour, AccentShades};
use crate::services::branding;

const STYLESHEET: &str = include_str!("static/portal.css");
const SCRIPT: &str = include_str!("static/portal.js");

const IMMUTABLE: &str = "public, max-age=31536000, immutable";
/// Branding changes should show within minutes, while a page view still costs no query for it.
const BRAND_CACHE: &str = "public, max-age=300";

struct Asset {
    /// `/static/portal.<hash>.css`
    href: String,
    body: &'static str,
    content_type: &'static str,
}

impl Asset {
    fn new(stem: &str, extension: &str, body: &'static str, content_type: &'static str) -> Asset {
        let digest = Sha256::digest(body.as_bytes());
        // 16 hex digits (64 bits) tell releases apart; the full digest would only lengthen URLs.
        let hash = digest.iter().take(8).fold(String::with_capacity(16), |mut hex, byte| {
            let _ = write!(hex, "{byte:02x}");
            hex
        });
        Asset {
            href: format!("/static/{stem}.{hash}.{extension}"),
            body,
            content_type,
        }
    }

    fn file_name(&self) -> &str {
        self.href.trim_start_matches("/static/")
    }
}

fn stylesheet() -> &'static Asset {
    static ASSET: OnceLock<Asset> = OnceLock::new();
    ASSET.get_or_init(|| Asset::new("portal", "css", STYLESHEET, "text/css; charset=utf-8"))
}

fn script() -> &'static Asset {
    static ASSET: OnceLock<Asset> = OnceLock::new();
    ASSET.get_or_init(|| Asset::new("portal", "js", SCRIPT, "text/javascript; charset=utf-8"))
}

/// The stylesheet's URL path, for `<link rel="stylesheet" href="…">`.
pub fn stylesheet_href() -> &'static str {
    &stylesheet().href
}

/// The script's URL path, for `<script src="…" defer></script>`.
pub fn script_href() -> &'static str {
    &script().href
}

/// The URL path of a tenant's accent stylesheet; link it after [`stylesheet_href`].
pub fn brand_href(tenant_id: &str) -> String {
    format!("/portal/{tenant_id}/brand.css")
}

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/static/{file}", get(asset))
        .route("/portal/{tenant}/brand.css", get(brand))
}

/// Only the current names answer: an old or made-up hash is a 404, not some other content
/// that a cache would then keep for a year under that name.
async fn asset(Path(file): Path<String>) -> Response {
    match [stylesheet(), script()]
        .into_iter()
        .find(|asset| asset.file_name() == file)
    {
        Some(asset) => (
            [(CONTENT_TYPE, asset.content_type), (CACHE_CONTROL, IMMUTABLE)],
            asset.body,
        )
            .into_response(),
        None => crate::api::error::ApiError::not_found("asset").into_response(),
    }
}

async fn brand(State(app): State<AppState>, Path(tenant): Path<String>) -> Response {
    let (accent, cache) = match branding::accent(&app.store, &tenant).await {
        Ok(accent) => (accent, BRAND_CACHE),
        Err(error) => {
            // The page still renders (portal.css carries the default): serve that, uncached.
            tracing::warn!(error = ?error, "brand stylesheet fell back to the default accent");
            (AccentColour::DEFAULT, "no-store")
        }
    };
    (
        StatusCode::OK,
        [(CONTENT_TYPE, "text/css; charset=utf-8"), (CACHE_CONTROL, cache)],
        brand_css(accent),
    )
        .into_response()
}

fn declarations(shades: &AccentShades) -> String {
    format!(
        "--accent:{};--accent-ink:{};--accent-text:{}",
        shades.fill, shades.ink, shades.text
    )
}

/// `:root` custom properties for one accent, light and dark.
pub fn brand_css(accent: AccentColour) -> String {
    let (light, dark) = shades(accent);
    format!(
        ":root{{{}}}\n@media (prefers-color-scheme: dark){{:root{{{}}}}}\n",
        declarations(&light),
        declarations(&dark)
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::branding::{DARK_BACKGROUNDS, LIGHT_BACKGROUNDS};

    #[test]
    fn names_carry_sixteen_hex_digits_of_the_content_hash() {
        let href = stylesheet_href();
        let hash = href
            .strip_prefix("/static/portal.")
            .and_then(|rest| rest.strip_suffix(".css"))
            .unwrap();
        assert_eq!(hash.len(), 16);
        let full: String = Sha256::digest(STYLESHEET.as_bytes())
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        assert!(full.starts_with(hash));
        assert!(script_href().starts_with("/static/portal.") && script_href().ends_with(".js"));
    }

    #[test]
    fn the_default_brand_stylesheet_matches_the_stylesheets_defaults() {
        let (light, dark) = shades(AccentColour::DEFAULT);
        let css = brand_css(AccentColour::DEFAULT);
        assert!(css.starts_with(":root{--accent:#2563eb;"), "{css}");
        for shade in [light, dark] {
            let declared = declarations(&shade);
            for declaration in declared.split(';') {
                assert!(
                    STYLESHEET.contains(&declaration.replace(':', ": ")),
                    "portal.css should declare {declaration} as its default"
                );
            }
        }
    }

    #[test]
    fn the_backgrounds_checked_for_contrast_are_the_stylesheets() {
        for (name, colour) in [
            ("--bg", LIGHT_BACKGROUNDS[0]),
            ("--surface", LIGHT_BACKGROUNDS[1]),
            ("--surface-sunken", LIGHT_BACKGROUNDS[2]),
            ("--bg", DARK_BACKGROUNDS[0]),
            ("--surface", DARK_BACKGROUNDS[1]),
        ] {
            let declaration = format!("{name}: {colour};");
            assert!(STYLESHEET.contains(&declaration), "portal.css lacks {declaration}");
        }
    }

    /// Every class the portal's templates use has a rule (a page never meets an unstyled class).
    #[test]
    fn the_stylesheet_styles_the_whole_class_vocabulary() {
        let vocabulary = [
            ".site-header",
            ".brand",
            ".brand img",
            ".brand-name",
            ".site-header nav a",
            ".signout",
            "main.container",
            "h1",
            "h2",
            ".muted",
            ".card",
            ".grid",
            "table.data",
            "table.data th",
            "table.data td",
            "td.num",
            ".table-wrap",
            ".badge",
            ".badge-active",
            ".badge-created",
            ".badge-grace",
            ".badge-expired",
            ".badge-disabled",
            ".badge-expiring",
            ".badge-overdraft",
            ".button",
            ".button.secondary",
            ".button.danger",
            ".button.small",
            "form.stack",
            "label",
            "input",
            "select",
            "textarea",
            ".field-error",
            ".form-error",
            ".notice",
            ".code",
            "details.reveal",
            "summary",
            "dl.kv",
            "dt",
            "dd",
            ".tabs",
            "[aria-current=\"page\"]",
            "meter",
            "progress",
            ".chart",
            ".chart-max",
            ".chart-min",
            ".chart-licensed",
            ".chart-overdraft",
            ".chart-use",
            ".chart-limit",
            ".chart-axis",
            ".chart-grid",
            ".sign-in",
            ".footer",
            "button[data-copy]",
            ":focus-visible",
            "prefers-color-scheme: dark",
            "max-width: 600px",
        ];
        let missing: Vec<_> = vocabulary
            .iter()
            .filter(|selector| !STYLESHEET.contains(*selector))
            .collect();
        assert!(missing.is_empty(), "portal.css has no rule for {missing:?}");
    }
}
