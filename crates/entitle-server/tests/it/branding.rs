//! Per-tenant branding through the management API, the brand stylesheet, and the content-hashed
//! static assets.

use crate::helpers::*;
use entitle_server::services::branding;
use entitle_server::web::assets::{script_href, stylesheet_href};
use reqwest::{Method, StatusCode};
use serde_json::json;
use sha2::{Digest, Sha256};

backend_test! {
    async fn branding_round_trips_and_falls_back_to_the_tenant(app) {
        let t = app.tenant("Acme").await;
        let unset = app.fetch(&t.key, "/api/v1/branding").await;
        assert_eq!(unset, json!({"display_name": null, "logo_url": null, "accent_colour": null}));
        let shown = branding::get(&app.store, &t.id).await.unwrap();
        assert_eq!(shown.display_name, "Acme", "the tenant's name by default");
        assert_eq!(shown.accent_colour.to_string(), "#2563eb");
        assert!(shown.logo_url.is_none());

        let set = json!({"display_name": "  Acme Licensing ", "logo_url": "https://cdn.acme.example/logo.svg",
                         "accent_colour": "#C0FFEE"});
        let answer = app.request(Method::PUT, Some(&t.key), "/api/v1/branding", Some(set)).await;
        assert_eq!(answer.status, StatusCode::OK, "{}", answer.body);
        let expected = json!({"display_name": "Acme Licensing", "logo_url": "https://cdn.acme.example/logo.svg",
                              "accent_colour": "#c0ffee"});
        assert_eq!(answer.body, expected);
        assert_eq!(app.fetch(&t.key, "/api/v1/branding").await, expected);
        let shown = branding::get(&app.store, &t.id).await.unwrap();
        assert_eq!(shown.display_name, "Acme Licensing");
        assert_eq!(shown.logo_url.unwrap().as_str(), "https://cdn.acme.example/logo.svg");
        assert_eq!(shown.accent_colour.to_string(), "#c0ffee");

        let events = app.fetch(&t.key, &format!("/api/v1/events?object_id={}", t.id)).await;
        let updated = events["data"].as_array().unwrap().iter()
            .find(|e| e["action"] == "branding.updated").expect("a branding.updated event");
        assert_eq!(updated["summary"]["accent_colour"], json!({"from": null, "to": "#c0ffee"}));

        // PUT replaces: what is left out goes back to its default.
        let answer = app.request(Method::PUT, Some(&t.key), "/api/v1/branding",
            Some(json!({"logo_url": "http://localhost:8080/logo.png"}))).await;
        assert_eq!(answer.status, StatusCode::OK, "{}", answer.body);
        let shown = branding::get(&app.store, &t.id).await.unwrap();
        assert_eq!(shown.display_name, "Acme");
        assert_eq!(shown.accent_colour.to_string(), "#2563eb");

        // Another tenant sees only its own.
        let other = app.tenant("Globex").await;
        assert_eq!(app.fetch(&other.key, "/api/v1/branding").await["logo_url"], json!(null));
        assert!(branding::get(&app.store, "ten_nosuchtenant").await.is_err());
    }
}

backend_test! {
    async fn bad_branding_is_refused_and_changes_nothing(app) {
        let t = app.tenant("Acme").await;
        let good = json!({"display_name": "Acme", "accent_colour": "#123456"});
        assert_eq!(app.request(Method::PUT, Some(&t.key), "/api/v1/branding", Some(good)).await.status, StatusCode::OK);
        for (body, code) in [
            (json!({"accent_colour": "red"}), "invalid_accent_colour"),
            (json!({"accent_colour": "#12345"}), "invalid_accent_colour"),
            (json!({"accent_colour": "#1234567"}), "invalid_accent_colour"),
            (json!({"accent_colour": "#12345g"}), "invalid_accent_colour"),
            (json!({"logo_url": "http://cdn.acme.example/logo.png"}), "invalid_logo_url"),
            (json!({"logo_url": "javascript:alert(1)"}), "invalid_logo_url"),
            (json!({"logo_url": "https://cdn.acme.example@evil.example/x.png"}), "invalid_logo_url"),
            (json!({"logo_url": "https://cdn.acme.example/\"><script>"}), "invalid_logo_url"),
            (json!({"logo_url": format!("https://cdn.acme.example/{}", "a".repeat(1100))}), "invalid_logo_url"),
            (json!({"display_name": "Acme\nSecond line"}), "invalid_display_name"),
            (json!({"display_name": "x".repeat(81)}), "invalid_display_name"),
            (json!({"display_name": "   "}), "invalid_display_name"),
        ] {
            let answer = app.request(Method::PUT, Some(&t.key), "/api/v1/branding", Some(body.clone())).await;
            assert_eq!(answer.status, StatusCode::UNPROCESSABLE_ENTITY, "{body}: {}", answer.body);
            assert_eq!(answer.body["error"]["code"], code, "{body}: {}", answer.body);
        }
        let unknown = app.request(Method::PUT, Some(&t.key), "/api/v1/branding", Some(json!({"colour": "#123456"}))).await;
        assert_eq!(unknown.status, StatusCode::UNPROCESSABLE_ENTITY, "unknown fields are refused");
        assert_eq!(app.fetch(&t.key, "/api/v1/branding").await["accent_colour"], "#123456", "unchanged");

        // Support may read the branding but not change it.
        let support = app.create(&t.key, "/api/v1/api-keys", json!({"name": "Support", "role": "support"})).await;
        let support = support["secret"].as_str().unwrap();
        app.fetch(support, "/api/v1/branding").await;
        let refused = app.request(Method::PUT, Some(support), "/api/v1/branding", Some(json!({}))).await;
        assert_eq!(refused.status, StatusCode::FORBIDDEN);
        assert_eq!(app.fetch(&t.key, "/api/v1/branding").await["display_name"], "Acme");
    }
}

backend_test! {
    async fn brand_stylesheet_carries_the_tenants_accent(app) {
        let t = app.tenant("Acme").await;
        let css = |path: String| async move {
            let response = app.client.get(format!("{}{path}", app.base)).send().await.unwrap();
            assert_eq!(response.status(), StatusCode::OK);
            assert_eq!(response.headers()["content-type"], "text/css; charset=utf-8");
            assert_eq!(response.headers()["cache-control"], "public, max-age=300");
            response.text().await.unwrap()
        };
        let default = css(format!("/portal/{}/brand.css", t.id)).await;
        assert!(default.starts_with(":root{--accent:#2563eb;"), "{default}");
        assert!(default.contains("@media (prefers-color-scheme: dark)"), "{default}");

        app.request(Method::PUT, Some(&t.key), "/api/v1/branding", Some(json!({"accent_colour": "#FFFF00"}))).await;
        let yellow = css(format!("/portal/{}/brand.css", t.id)).await;
        // Yellow is the brand's fill; text on it is dark, and yellow text is darkened for white pages.
        assert!(yellow.starts_with(":root{--accent:#ffff00;--accent-ink:#111827;--accent-text:#"), "{yellow}");
        let (light, dark) = yellow.split_once("@media").unwrap();
        assert!(!light.contains("--accent-text:#ffff00"), "{yellow}");
        assert!(dark.contains("--accent-text:#ffff00"), "yellow reads well on dark pages: {yellow}");

        // Unknown tenants (and absurd ids) get the default, not an error that tells tenants apart.
        assert_eq!(css("/portal/ten_nosuchtenant/brand.css".to_owned()).await, default);
        assert_eq!(css(format!("/portal/{}/brand.css", "x".repeat(300))).await, default);
    }
}

backend_test! {
    async fn static_assets_are_content_addressed_and_immutable(app) {
        for (href, content_type, needle) in [
            (stylesheet_href(), "text/css; charset=utf-8", "--accent"),
            (script_href(), "text/javascript; charset=utf-8", "data-copy"),
        ] {
            let response = app.client.get(format!("{}{href}", app.base)).send().await.unwrap();
            assert_eq!(response.status(), StatusCode::OK, "{href}");
            assert_eq!(response.headers()["content-type"], content_type);
            assert_eq!(response.headers()["cache-control"], "public, max-age=31536000, immutable");
            assert_eq!(response.headers()["x-content-type-options"], "nosniff");
            let body = response.bytes().await.unwrap();
            assert!(String::from_utf8_lossy(&body).contains(needle));
            let digest: String = Sha256::digest(&body).iter().map(|b| format!("{b:02x}")).collect();
            assert!(href.contains(&format!(".{}.", &digest[..16])), "{href} names its content");
        }
        for missing in [
            "/static/portal.css",
            "/static/portal.js",
            "/static/portal.0000000000000000.css",
            "/static/../Cargo.toml",
            "/static/a/b.css",
            "/static/",
        ] {
            let response = app.client.get(format!("{}{missing}", app.base)).send().await.unwrap();
            assert_eq!(response.status(), StatusCode::NOT_FOUND, "{missing}");
            assert_eq!(response.headers()["cache-control"], "no-store", "{missing}: a miss is not cached for a year");
        }
    }
}
