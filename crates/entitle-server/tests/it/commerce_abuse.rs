//! Abuse of the storefront endpoints: forged deliveries must not fill the disk or lock out the
//! provider, and a connection's API settings must not turn the server into a proxy for the
//! tenant's API key.

use chrono::{Duration, Utc};
use reqwest::StatusCode;
use serde_json::{json, Value};
use sha2::Digest;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use crate::commerce::{connection, deliver, generic, mappings, order_entitlement, SECRET};
use crate::helpers::{backend_test, configured_backend_test, seed_catalogue, TestApp};

/// Posts `body` to the connection with a signature made with the wrong secret.
async fn forge(app: &TestApp, conn: &str, body: impl Into<reqwest::Body>) -> reqwest::Response {
    let now = Utc::now().timestamp();
    app.client
        .post(format!("{}/commerce/v1/{conn}", app.base))
        .header("webhook-id", "msg-forged")
        .header("webhook-timestamp", now.to_string())
        .header(
            "webhook-signature",
            entitle_server::commerce::generic::sign("not-the-secret", "msg-forged", now, b"whatever"),
        )
        .body(body)
        .send()
        .await
        .unwrap()
}

async fn rejected(app: &TestApp, key: &str, conn: &str) -> Vec<Value> {
    app.fetch(
        key,
        &format!("/api/v1/storefront-deliveries?connection_id={conn}&outcome=rejected&limit=100"),
    )
    .await["data"]
        .as_array()
        .unwrap()
        .clone()
}

backend_test! {
    async fn rejected_deliveries_keep_an_excerpt_and_stay_within_caps(app) {
        let t = app.tenant("Acme").await;
        let conn = connection(app, &t.key, "generic").await;
        let big = format!("{{\"pad\": \"{}\"}}", "x".repeat(600 * 1024)).into_bytes();
        let response = forge(app, &conn, big.clone()).await;
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
        let stored = rejected(app, &t.key, &conn).await;
        assert_eq!(stored.len(), 1);
        let d = &stored[0];
        assert!(d["body"].as_str().unwrap().len() <= 2048, "only an excerpt is kept, not {} bytes", d["body"].as_str().unwrap().len());
        assert!(d["body"].as_str().unwrap().starts_with("{\"pad\": \"xxx"));
        assert_eq!(d["body_truncated"], true);
        assert_eq!(d["body_size"], big.len());
        assert_eq!(d["body_sha256"], entitle_server::commerce::signature::hex(&sha2::Sha256::digest(&big)));

        // Beyond the per-connection cap (10 an hour) they are counted, not stored.
        for _ in 0..14 {
            assert_eq!(forge(app, &conn, "{}").await.status(), StatusCode::UNAUTHORIZED);
        }
        assert_eq!(rejected(app, &t.key, &conn).await.len(), 10);
        let view = app.fetch(&t.key, &format!("/api/v1/storefront-connections/{conn}")).await;
        assert_eq!(view["rejected_not_stored"], 5);

        // A correctly signed delivery is still kept whole (even one that cannot be read).
        let body = json!({"type": "purchase", "occurred_at": Utc::now().to_rfc3339(), "order_ref": "o-1",
            "pad": "y".repeat(4096)});
        let (status, answer) = deliver(app, &conn, "generic", "msg-ok", &body).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{answer}");
        let unreadable = app.fetch(&t.key, &format!("/api/v1/storefront-deliveries?connection_id={conn}&outcome=unreadable")).await;
        let kept = &unreadable["data"][0];
        assert_eq!(kept["body_truncated"], false);
        assert_eq!(kept["body"].as_str().unwrap().as_bytes(), serde_json::to_vec(&body).unwrap());
    }
}

backend_test! {
    async fn old_rejected_deliveries_are_purged(app) {
        let t = app.tenant("Acme").await;
        let conn = connection(app, &t.key, "generic").await;
        let old = (Utc::now() - Duration::days(8)).timestamp_millis();
        let recent = (Utc::now() - Duration::days(6)).timestamp_millis();
        for (id, outcome, at) in [("dlv_old_rejected", "rejected", old), ("dlv_old_applied", "applied", old),
                                  ("dlv_recent_rejected", "rejected", recent)] {
            app.sql(&format!(
                "INSERT INTO commerce_deliveries (id, tenant_id, connection_id, received_at, outcome, headers, body, objects)
                 VALUES ('{id}', '{}', '{conn}', {at}, '{outcome}', '{{}}', 'x', '[]')", t.id)).await.unwrap();
        }
        let old_window = old - old.rem_euclid(3_600_000);
        app.sql(&format!("INSERT INTO commerce_rejections (connection_id, window_start, stored, dropped)
                          VALUES ('{conn}', {old_window}, 10, 3)")).await.unwrap();
        assert_eq!(app.fetch(&t.key, &format!("/api/v1/storefront-connections/{conn}")).await["rejected_not_stored"], 3);

        // Any delivery (here a forged one) starts a purge in the background.
        assert_eq!(forge(app, &conn, "{}").await.status(), StatusCode::UNAUTHORIZED);
        let mut purged = false;
        for _ in 0..50 {
            if app.get(&t.key, "/api/v1/storefront-deliveries/dlv_old_rejected").await.status == StatusCode::NOT_FOUND {
                purged = true;
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
        assert!(purged, "a rejected delivery older than the retention period (7 days) is purged");
        assert_eq!(app.get(&t.key, "/api/v1/storefront-deliveries/dlv_old_applied").await.status, StatusCode::OK,
            "verified deliveries are kept");
        assert_eq!(app.get(&t.key, "/api/v1/storefront-deliveries/dlv_recent_rejected").await.status, StatusCode::OK,
            "within the retention period they are kept");
        assert_eq!(rejected(app, &t.key, &conn).await.len(), 2, "the recent one and the new one");
        assert_eq!(app.fetch(&t.key, &format!("/api/v1/storefront-connections/{conn}")).await["rejected_not_stored"], 0,
            "old counts go too");
    }
}

backend_test! {
    async fn forgeries_to_one_connection_never_block_correctly_signed_deliveries(app) {
        let a = app.tenant("Tenant A").await;
        let b = app.tenant("Tenant B").await;
        seed_catalogue(app, &a.key).await;
        seed_catalogue(app, &b.key).await;
        let conn_a = connection(app, &a.key, "generic").await;
        let conn_b = connection(app, &b.key, "generic").await;
        let mut limited = false;
        for _ in 0..25 {
            let response = forge(app, &conn_a, "{}").await;
            if response.status() == StatusCode::TOO_MANY_REQUESTS {
                assert!(response.headers().get("retry-after").is_some());
                limited = true;
            } else {
                assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
            }
        }
        assert!(limited, "a flood of forgeries to one connection gets 429");

        let now = Utc::now();
        for (tenant, conn, order) in [(&b, &conn_b, "b-order"), (&a, &conn_a, "a-order")] {
            let body = generic("purchase", order, now, Some(("PRO-M", 1)), Some(now + Duration::days(30)), Some("buyer@example.com"));
            let (status, receipt) = deliver(app, conn, "generic", &format!("{order}-1"), &body).await;
            assert_eq!(status, StatusCode::OK, "a correctly signed delivery is accepted: {receipt}");
            assert_eq!(receipt["deliveries"][0]["outcome"], "applied");
            assert!(order_entitlement(app, &tenant.key, order).await.is_some(), "and applied");
        }
        assert_eq!(forge(app, &conn_a, "{}").await.status(), StatusCode::TOO_MANY_REQUESTS, "more forgeries still get 429");
        let unknown = app.client.post(format!("{}/commerce/v1/sfc_unknown", app.base)).body("{}").send().await.unwrap();
        assert_eq!(unknown.status(), StatusCode::NOT_FOUND);
    }
}

/// A fake provider API that counts its calls. `/v1/customers/{id}` answers a customer,
/// `/redirect/v1/customers/{id}` redirects to it, `/big/v1/customers/{id}` answers 2 MiB.
async fn counting_api() -> (String, Arc<AtomicUsize>) {
    use axum::extract::Path;
    use axum::response::IntoResponse;
    use axum::routing::get;
    let hits = Arc::new(AtomicUsize::new(0));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let counted = hits.clone();
    let target = base.clone();
    let app =
        axum::Router::new()
            .route(
                "/v1/customers/{id}",
                get(move |Path(id): Path<String>| {
                    let counted = counted.clone();
                    async move {
                        counted.fetch_add(1, Ordering::SeqCst);
                        axum::Json(json!({"id": id, "email": "leaked@example.com"}))
                    }
                }),
            )
            .route(
                "/redirect/v1/customers/{id}",
                get(move |Path(id): Path<String>| {
                    let target = target.clone();
                    async move {
                        axum::response::Redirect::temporary(&format!("{target}/v1/customers/{id}")).into_response()
                    }
                }),
            )
            .route(
                "/big/v1/customers/{id}",
                get(|Path(id): Path<String>| async move {
                    axum::Json(json!({"id": id, "email": "big@example.com", "pad": "z".repeat(2 * 1024 * 1024)}))
                }),
            );
    tokio::spawn(async move { axum::serve(listener, app).await });
    (base, hits)
}

/// A Stripe subscription that names only its customer: the email must come from Stripe's API.
fn subscription(n: u32) -> Value {
    json!({"id": format!("evt_sub_{n}"), "type": "customer.subscription.created", "created": Utc::now().timestamp(),
        "data": {"object": {"id": format!("sub_{n}"), "customer": "cus_9", "status": "active", "metadata": {},
            "items": {"data": [{"price": {"id": "price_pro_monthly"}, "quantity": 1,
                "current_period_end": (Utc::now() + Duration::days(30)).timestamp()}]}}}})
}

async fn stripe_connection(app: &TestApp, key: &str, base: &str) -> crate::helpers::Response {
    app.post(
        key,
        "/api/v1/storefront-connections",
        json!({"provider": "stripe", "name": "Stripe",
        "secrets": [SECRET], "api_key": "rk_live_secret", "api_base_url": base}),
    )
    .await
}

backend_test! {
    async fn api_keys_go_only_to_the_providers_official_apis(app) {
        let t = app.tenant("Acme").await;
        seed_catalogue(app, &t.key).await;
        let (fake, hits) = counting_api().await;
        for refused in [fake.as_str(), "http://127.0.0.1:22", "http://api.stripe.com", "https://api.stripe.com.evil.example",
                        "https://api.stripe.com:8443", "https://user@api.stripe.com", "http://169.254.169.254/latest"] {
            let response = stripe_connection(app, &t.key, refused).await;
            assert_eq!(response.status, StatusCode::UNPROCESSABLE_ENTITY, "{refused}: {}", response.body);
            assert_eq!(response.body["error"]["code"], "api_base_url_not_allowed");
        }
        let sandbox = app.post(&t.key, "/api/v1/storefront-connections", json!({"provider": "paddle", "name": "Paddle sandbox",
            "secrets": [SECRET], "api_key": "pdl_sdbx", "api_base_url": "https://sandbox-api.paddle.com"})).await;
        assert_eq!(sandbox.status, StatusCode::CREATED, "{}", sandbox.body);
        let created = stripe_connection(app, &t.key, "https://api.stripe.com").await;
        assert_eq!(created.status, StatusCode::CREATED, "{}", created.body);
        let conn = created.body["id"].as_str().unwrap().to_owned();
        let patched = app.patch(&t.key, &format!("/api/v1/storefront-connections/{conn}"), json!({"api_base_url": fake})).await;
        assert_eq!(patched.status, StatusCode::UNPROCESSABLE_ENTITY);
        assert_eq!(patched.body["error"]["code"], "api_base_url_not_allowed");

        // A base URL that got in some other way (set before this check, say) is checked again
        // before each call: the key never leaves.
        mappings(app, &t.key, &conn, "stripe").await;
        app.sql(&format!("UPDATE storefront_connections SET api_base_url = '{fake}' WHERE id = '{conn}'")).await.unwrap();
        let (status, receipt) = deliver(app, &conn, "stripe", "evt_sub_1", &subscription(1)).await;
        assert_eq!(status, StatusCode::OK, "{receipt}");
        assert_eq!(receipt["deliveries"][0]["outcome"], "incomplete");
        assert!(receipt["deliveries"][0]["detail"].as_str().unwrap().contains("provider API host not allowed"), "{receipt}");
        assert_eq!(hits.load(Ordering::SeqCst), 0, "the fake API was never called");
    }
}

configured_backend_test! {
    configure: |layer: &mut entitle_server::config::ConfigLayer| layer.provider_api_allow_hosts = Some("127.0.0.1".into()),
    async fn provider_api_calls_follow_no_redirects_and_answer_in_summaries(app) {
        let t = app.tenant("Acme").await;
        seed_catalogue(app, &t.key).await;
        let (fake, hits) = counting_api().await;
        let free_port = {
            let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            listener.local_addr().unwrap().port()
        };
        let cases = [
            (format!("{fake}/redirect"), "provider API answered 307"),
            (format!("http://127.0.0.1:{free_port}"), "provider API unreachable"),
            (format!("{fake}/big"), "provider API answer too large"),
        ];
        for (n, (base, summary)) in cases.iter().enumerate() {
            let created = stripe_connection(app, &t.key, base).await;
            assert_eq!(created.status, StatusCode::CREATED, "an allowed host: {}", created.body);
            let conn = created.body["id"].as_str().unwrap().to_owned();
            mappings(app, &t.key, &conn, "stripe").await;
            let (status, receipt) = deliver(app, &conn, "stripe", "evt", &subscription(n as u32 + 10)).await;
            assert_eq!(status, StatusCode::OK, "{receipt}");
            let delivery = &receipt["deliveries"][0];
            assert_eq!(delivery["outcome"], "incomplete", "{receipt}");
            let detail = delivery["detail"].as_str().unwrap();
            assert!(detail.contains(summary), "{base}: {detail}");
            assert!(!detail.contains("127.0.0.1") && !detail.to_lowercase().contains("refused"),
                "no socket error text or address: {detail}");
            let stored = app.fetch(&t.key, &format!("/api/v1/storefront-deliveries/{}", delivery["id"].as_str().unwrap())).await;
            assert_eq!(stored["detail"], delivery["detail"]);
        }
        assert_eq!(hits.load(Ordering::SeqCst), 0, "the redirect was not followed");

        // The allowed host itself works.
        let created = stripe_connection(app, &t.key, &fake).await;
        let conn = created.body["id"].as_str().unwrap().to_owned();
        mappings(app, &t.key, &conn, "stripe").await;
        let (_, receipt) = deliver(app, &conn, "stripe", "evt", &subscription(20)).await;
        assert_eq!(receipt["deliveries"][0]["outcome"], "applied", "{receipt}");
        assert_eq!(hits.load(Ordering::SeqCst), 1);
    }
}
