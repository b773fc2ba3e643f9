use reqwest::{Method, StatusCode};
use serde_json::json;
use std::collections::BTreeSet;

use crate::helpers::{backend_test, configured_backend_test, entitle, seed_catalogue, Backend, TestApp};

/// Scrapes the metrics listener.
async fn scrape(app: &TestApp) -> String {
    let base = app.metrics_base.as_deref().expect("the metrics listener is on");
    let response = app.client.get(format!("{base}/metrics")).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let content_type = response.headers()["content-type"].to_str().unwrap().to_owned();
    assert!(content_type.starts_with("text/plain"), "{content_type}");
    response.text().await.unwrap()
}

/// The value of the sample whose name and labels are exactly `series` (0 when absent). The
/// recorder is process-wide, so tests running in parallel add to the same series: compare
/// before and after rather than expecting exact totals.
fn sample(text: &str, series: &str) -> f64 {
    text.lines()
        .find_map(|line| line.strip_prefix(series).and_then(|rest| rest.strip_prefix(' ')))
        .map_or(0.0, |value| value.trim().parse().unwrap())
}

/// Whether some sample's name is `name` and its labels include every one of `labels`.
fn has_series(text: &str, name: &str, labels: &[&str]) -> bool {
    text.lines().any(|line| {
        line.strip_prefix(name)
            .and_then(|rest| rest.strip_prefix('{'))
            .is_some_and(|rest| labels.iter().all(|label| rest.contains(label)))
    })
}

backend_test! {
    async fn health_readiness_and_request_ids(app) {
        let health = app.request(Method::GET, None, "/healthz", None).await;
        assert_eq!(health.status, StatusCode::OK);
        let ready = app.request(Method::GET, None, "/readyz", None).await;
        assert_eq!(ready.status, StatusCode::OK);
        let request_id = health.headers.get("x-request-id").unwrap().to_str().unwrap();
        assert!(request_id.starts_with("req_"));
    }
}

backend_test! {
    async fn metrics_are_off_by_default_and_never_on_the_public_listener(app) {
        assert!(app.metrics_base.is_none(), "no metrics listener unless metrics_listen is set");
        let public = app.request(Method::GET, None, "/metrics", None).await;
        assert_eq!(public.status, StatusCode::NOT_FOUND);
    }
}

configured_backend_test! {
    configure: |layer: &mut entitle_server::config::ConfigLayer| {
        layer.metrics_listen = Some("127.0.0.1:0".parse().unwrap());
    },
    async fn the_metrics_listener_answers_prometheus_text(app) {
        // The public listener still has no /metrics when the metrics listener is on.
        let public = app.request(Method::GET, None, "/metrics", None).await;
        assert_eq!(public.status, StatusCode::NOT_FOUND);
        let metrics_base = app.metrics_base.clone().unwrap();
        assert_ne!(metrics_base, app.base);
        let other = app.client.get(format!("{metrics_base}/healthz")).send().await.unwrap();
        assert_eq!(other.status(), StatusCode::NOT_FOUND, "the metrics listener serves only /metrics");

        let before = scrape(app).await;
        let t = app.tenant("Acme").await;
        let c = seed_catalogue(app, &t.key).await;
        let e = entitle(app, &t.key, &c.customer_id, "BASIC-M", 1).await;
        app.fetch(&t.key, "/api/v1/products").await;
        app.get(&t.key, "/api/v1/products/prd_missing").await;
        let activate = |seat: &str| {
            json!({"tenant": t.id, "product": c.product_id, "activation_code": e["activation_code"],
                   "seat_id": seat, "seat_name": seat, "nonce": format!("nonce-{seat}")})
        };
        let first = app.licensing(Method::POST, "/licensing/v1/activate", None, "", Some(activate("one"))).await;
        assert_eq!(first.status, StatusCode::OK);
        let second = app.licensing(Method::POST, "/licensing/v1/activate", None, "", Some(activate("two"))).await;
        assert_eq!(second.body["error"]["code"], "seat_limit_reached");
        let secret = first.body["activation_secret"].as_str().unwrap();
        let refreshed = app
            .licensing(Method::POST, "/licensing/v1/activation/refresh", Some(secret), "n-refresh", None)
            .await;
        assert_eq!(refreshed.status, StatusCode::OK);
        let unknown = app.request(Method::POST, None, "/commerce/v1/sfc_missing", Some(json!({}))).await;
        assert_eq!(unknown.status, StatusCode::NOT_FOUND);
        let connection = app
            .create(&t.key, "/api/v1/storefront-connections",
                    json!({"provider": "generic", "name": "Shop", "secrets": ["shop-secret-123"]}))
            .await;
        let forged = app
            .request(Method::POST, None, &format!("/commerce/v1/{}", connection["id"].as_str().unwrap()),
                     Some(json!({"id": "evt_1"})))
            .await;
        assert_eq!(forged.status, StatusCode::UNAUTHORIZED);

        let after = scrape(app).await;
        // Request durations: a histogram labelled by route template, never by raw path.
        assert!(after.contains("# TYPE entitle_http_request_duration_seconds histogram"), "{after}");
        let products = r#"entitle_http_request_duration_seconds_count{method="GET",route="/api/v1/products",status="200"}"#;
        assert!(sample(&after, products) >= sample(&before, products) + 1.0, "{after}");
        let missing = r#"entitle_http_request_duration_seconds_count{method="GET",route="/api/v1/products/{id}",status="404"}"#;
        assert!(sample(&after, missing) >= sample(&before, missing) + 1.0, "{after}");
        assert!(has_series(&after, "entitle_http_request_duration_seconds_bucket",
                           &[r#"route="/api/v1/products""#, r#"le="0.005""#]), "{after}");
        assert!(!after.contains("prd_missing"), "raw paths never become labels");
        // Licensing answers.
        let online = r#"entitle_licensing_activations_total{mode="online"}"#;
        assert!(sample(&after, online) >= sample(&before, online) + 1.0, "{after}");
        let denied = r#"entitle_licensing_denials_total{code="seat_limit_reached"}"#;
        assert!(sample(&after, denied) >= sample(&before, denied) + 1.0, "{after}");
        // Storefront deliveries by provider and outcome.
        let rejected = r#"entitle_storefront_deliveries_total{provider="generic",outcome="rejected"}"#;
        assert!(sample(&after, rejected) >= sample(&before, rejected) + 1.0, "{after}");
        let unknown = r#"entitle_storefront_deliveries_total{provider="unknown",outcome="unknown_connection"}"#;
        assert!(sample(&after, unknown) >= sample(&before, unknown) + 1.0, "{after}");
        // The refresh went through the lease writer.
        assert!(sample(&after, "entitle_lease_writer_batch_size_count") >= 1.0, "{after}");
        // Read at scrape time: pools and the mail queue.
        let pool = match app.backend { Backend::Sqlite => r#"pool="write""#, Backend::Postgres => r#"pool="main""# };
        assert!(has_series(&after, "entitle_db_pool_connections", &[pool]), "{after}");
        assert!(has_series(&after, "entitle_db_pool_idle_connections", &[pool]), "{after}");
        assert!(after.lines().any(|l| l.starts_with("entitle_mail_queued ")), "{after}");
        assert!(after.lines().any(|l| l.starts_with("entitle_mail_oldest_queued_age_seconds ")), "{after}");
    }
}

#[tokio::test]
async fn the_openapi_document_describes_every_route() {
    let app = TestApp::spawn(Backend::Sqlite).await.unwrap();
    let doc = app.request(Method::GET, None, "/api/v1/openapi.json", None).await;
    assert_eq!(doc.status, StatusCode::OK);
    let doc = doc.body;
    assert_eq!(doc["openapi"], "3.1.0");
    assert!(doc["components"]["securitySchemes"]["api_key"].is_object());
    let paths = doc["paths"].as_object().unwrap();
    let mut operation_ids = BTreeSet::new();
    let mut operations = 0;
    for (path, item) in paths {
        assert!(
            path.starts_with("/api/v1/") || path.starts_with("/licensing/v1/") || path.starts_with("/commerce/v1/"),
            "{path}"
        );
        for (method, operation) in item.as_object().unwrap() {
            if !["get", "post", "put", "patch", "delete"].contains(&method.as_str()) {
                continue;
            }
            operations += 1;
            let id = operation["operationId"].as_str().unwrap().to_owned();
            assert!(operation_ids.insert(id.clone()), "duplicate operationId {id}");
            assert!(
                operation["responses"]
                    .as_object()
                    .unwrap()
                    .keys()
                    .any(|s| s.starts_with('2')),
                "{method} {path}"
            );
            // The route exists: it does not answer with the fallback's "route not found".
            let concrete = path.replace("{id}", "x").replace("{key}", "x").replace("{tenant}", "x");
            let answer = app
                .request(method.to_uppercase().parse().unwrap(), None, &concrete, Some(json!({})))
                .await;
            assert_ne!(answer.body["error"]["message"], "route not found", "{method} {path}");
            if path.starts_with("/api/v1/") {
                assert_eq!(answer.status, StatusCode::UNAUTHORIZED, "{method} {path} needs a key");
            }
        }
    }
    assert!(operations >= 50, "{operations} operations documented");
    for schema in [
        "EntitlementView",
        "ErrorBody",
        "Offering",
        "Interval",
        "LeaseClaims",
        "ActivateRequest",
        "Activation",
    ] {
        assert!(doc["components"]["schemas"][schema].is_object(), "schema {schema}");
    }
    app.stop().await;
}

backend_test! {
    async fn readiness_says_not_ready_within_a_second_when_the_database_does_not_answer(app) {
        // Every connection of the pool readiness uses is taken (as in an outage, none is to be had).
        let mut held = Vec::new();
        while let Ok(Ok(conn)) = tokio::time::timeout(std::time::Duration::from_millis(300), app.store.read()).await {
            held.push(conn);
        }
        assert!(!held.is_empty());
        let started = std::time::Instant::now();
        let busy = app.client.get(format!("{}/readyz", app.base)).send().await.unwrap();
        let took = started.elapsed();
        assert_eq!(busy.status(), reqwest::StatusCode::SERVICE_UNAVAILABLE);
        assert!(took < std::time::Duration::from_secs(3), "answered in {took:?}");
        drop(held);
        let ready = app.client.get(format!("{}/readyz", app.base)).send().await.unwrap();
        assert_eq!(ready.status(), reqwest::StatusCode::OK, "it recovers by itself");
    }
}

configured_backend_test! {
    configure: |layer: &mut entitle_server::config::ConfigLayer| {
        layer.metrics_listen = Some("127.0.0.1:0".parse().unwrap());
    },
    async fn sqlite_write_requests_answer_after_a_shared_sync_of_the_log(app) {
        let series = "entitle_sqlite_wal_syncs_total";
        let t = app.tenant("Acme").await;
        let before = sample(&scrape(app).await, series);
        let writes = (0..24).map(|n| {
            app.post(&t.key, "/api/v1/customers", json!({"name": format!("Customer {n}"), "email": format!("c{n}@example.com")}))
        });
        for created in crate::helpers::join_all(writes).await {
            assert_eq!(created.status, StatusCode::CREATED);
        }
        let after = sample(&scrape(app).await, series);
        // Other tests in this process add to the same counter: only "at least one" is certain.
        // (PostgreSQL commits durably itself; its variant checks the writes are answered.)
        if app.backend == Backend::Sqlite {
            assert!(after > before, "{before} → {after}");
        }
    }
}
