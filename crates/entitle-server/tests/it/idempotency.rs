//! `Idempotency-Key` on management writes: retries run once and get the first answer.

use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use crate::helpers::{backend_test, join_all, seed_catalogue, Response, TestApp};

async fn send(app: &TestApp, api_key: &str, idem: Option<&str>, method: Method, path: &str, body: Value) -> Response {
    let mut request = app
        .client
        .request(method, format!("{}{path}", app.base))
        .bearer_auth(api_key)
        .json(&body);
    if let Some(idem) = idem {
        request = request.header("idempotency-key", idem);
    }
    let response = request.send().await.expect("send request");
    let status = response.status();
    let headers = response.headers().clone();
    let text = response.text().await.unwrap();
    let body = serde_json::from_str(&text).unwrap_or(Value::String(text));
    Response { status, body, headers }
}

async fn post(app: &TestApp, api_key: &str, idem: &str, path: &str, body: Value) -> Response {
    send(app, api_key, Some(idem), Method::POST, path, body).await
}

fn order(customer_id: &str, order_ref: &str) -> Value {
    json!({"customer_id": customer_id, "sku": "BASIC-M", "send_credentials_to": "buyer@initech.example",
           "order_ref": order_ref})
}

async fn entitlements_of(app: &TestApp, api_key: &str, customer_id: &str) -> usize {
    app.fetch(
        api_key,
        &format!("/api/v1/entitlements?customer_id={customer_id}&limit=200"),
    )
    .await["data"]
        .as_array()
        .unwrap()
        .len()
}

async fn mail_count(app: &TestApp, api_key: &str) -> usize {
    app.fetch(api_key, "/api/v1/mails?limit=200").await["data"]
        .as_array()
        .unwrap()
        .len()
}

fn replayed(response: &Response) -> bool {
    response.headers.get("idempotent-replayed").is_some_and(|v| v == "true")
}

backend_test! {
    async fn a_retried_create_makes_one_entitlement_and_one_mail(app) {
        let t = app.tenant("Acme").await;
        let c = seed_catalogue(app, &t.key).await;
        let mails_before = mail_count(app, &t.key).await;
        let first = post(app, &t.key, "order-1001", "/api/v1/entitlements", order(&c.customer_id, "order-1001")).await;
        assert_eq!(first.status, StatusCode::CREATED, "{}", first.body);
        assert!(!replayed(&first));
        let retry = post(app, &t.key, "order-1001", "/api/v1/entitlements", order(&c.customer_id, "order-1001")).await;
        assert_eq!(retry.status, StatusCode::CREATED);
        assert_eq!(retry.body, first.body, "the retry gets the first answer");
        assert!(replayed(&retry));
        assert_eq!(retry.headers.get("content-type"), first.headers.get("content-type"));
        assert_eq!(entitlements_of(app, &t.key, &c.customer_id).await, 1);
        assert_eq!(mail_count(app, &t.key).await, mails_before + 1, "one credentials mail");

        // Without the header each request runs, as before.
        for _ in 0..2 {
            send(app, &t.key, None, Method::POST, "/api/v1/entitlements", order(&c.customer_id, "order-1002")).await;
        }
        assert_eq!(entitlements_of(app, &t.key, &c.customer_id).await, 3);

        // Keys must be 1–255 printable ASCII.
        for bad in ["k".repeat(256), "tab\tkey".to_owned()] {
            let refused = post(app, &t.key, &bad, "/api/v1/entitlements", order(&c.customer_id, "x")).await;
            assert_eq!(refused.status, StatusCode::BAD_REQUEST, "{bad:?}");
            assert_eq!(refused.body["error"]["code"], "invalid_idempotency_key");
        }
        assert_eq!(entitlements_of(app, &t.key, &c.customer_id).await, 3);

        // The OpenAPI document declares the header on writes.
        let doc = app.request(Method::GET, None, "/api/v1/openapi.json", None).await.body;
        let parameters = doc["paths"]["/api/v1/entitlements"]["post"]["parameters"].as_array().unwrap().clone();
        assert!(parameters.iter().any(|p| p["name"] == "Idempotency-Key" && p["in"] == "header"));
    }
}

backend_test! {
    async fn the_same_key_for_another_request_is_refused(app) {
        let t = app.tenant("Acme").await;
        let c = seed_catalogue(app, &t.key).await;
        let first = post(app, &t.key, "k-1", "/api/v1/entitlements", order(&c.customer_id, "order-1")).await;
        assert_eq!(first.status, StatusCode::CREATED);
        let other = post(app, &t.key, "k-1", "/api/v1/entitlements", order(&c.customer_id, "order-2")).await;
        assert_eq!(other.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", other.body);
        assert_eq!(other.body["error"]["code"], "idempotency_key_reused");
        let elsewhere = post(app, &t.key, "k-1", "/api/v1/customers", json!({"name": "Other"})).await;
        assert_eq!(elsewhere.body["error"]["code"], "idempotency_key_reused");
        assert_eq!(entitlements_of(app, &t.key, &c.customer_id).await, 1);
    }
}

backend_test! {
    async fn concurrent_duplicates_create_exactly_one(app) {
        let t = app.tenant("Acme").await;
        let c = seed_catalogue(app, &t.key).await;
        let answers = join_all((0..8).map(|_| {
            post(app, &t.key, "burst", "/api/v1/entitlements", order(&c.customer_id, "order-7"))
        }))
        .await;
        let created: Vec<&Response> = answers.iter().filter(|a| a.status == StatusCode::CREATED).collect();
        assert!(!created.is_empty());
        assert!(created.iter().all(|a| a.body == created[0].body), "one entitlement, one answer");
        for answer in answers.iter().filter(|a| a.status != StatusCode::CREATED) {
            assert_eq!(answer.status, StatusCode::CONFLICT, "{}", answer.body);
            assert_eq!(answer.body["error"]["code"], "idempotency_key_in_progress");
            assert_eq!(answer.headers.get("retry-after").unwrap(), "1");
        }
        assert_eq!(entitlements_of(app, &t.key, &c.customer_id).await, 1);
        let later = post(app, &t.key, "burst", "/api/v1/entitlements", order(&c.customer_id, "order-7")).await;
        assert_eq!(later.body, created[0].body);
    }
}

backend_test! {
    async fn keys_are_per_tenant(app) {
        let a = app.tenant("Acme").await;
        let b = app.tenant("Bolt").await;
        let ca = seed_catalogue(app, &a.key).await;
        let cb = seed_catalogue(app, &b.key).await;
        let first = post(app, &a.key, "shared", "/api/v1/entitlements", order(&ca.customer_id, "o-1")).await;
        assert_eq!(first.status, StatusCode::CREATED);
        let theirs = post(app, &b.key, "shared", "/api/v1/entitlements", order(&cb.customer_id, "o-1")).await;
        assert_eq!(theirs.status, StatusCode::CREATED, "{}", theirs.body);
        assert!(!replayed(&theirs));
        assert_ne!(theirs.body["id"], first.body["id"]);
        assert_eq!(entitlements_of(app, &b.key, &cb.customer_id).await, 1);
        // A's key is still A's: its retry replays A's answer.
        let again = post(app, &a.key, "shared", "/api/v1/entitlements", order(&ca.customer_id, "o-1")).await;
        assert!(replayed(&again));
        assert_eq!(again.body, first.body);
    }
}

backend_test! {
    async fn client_errors_are_replayed(app) {
        let t = app.tenant("Acme").await;
        let body = json!({"name": "Initech 2", "email": "it2@initech.example", "external_ref": "crm-9"});
        // The 4xx depends on state (the external_ref is taken), so a re-run would answer differently.
        let taken = app.create(&t.key, "/api/v1/customers", body.clone()).await;
        let refused = post(app, &t.key, "dup", "/api/v1/customers", body.clone()).await;
        assert!(refused.status.is_client_error(), "{}", refused.body);
        assert!(!replayed(&refused));
        // Free the external_ref: a re-run would now succeed, a replay still refuses.
        app.act(Method::PATCH, &t.key, &format!("/api/v1/customers/{}", taken["id"].as_str().unwrap()),
            json!({"external_ref": "crm-other"})).await;
        let retry = post(app, &t.key, "dup", "/api/v1/customers", body).await;
        assert_eq!(retry.status, refused.status);
        assert_eq!(retry.body, refused.body);
        assert!(replayed(&retry));
    }
}

backend_test! {
    async fn a_crashed_run_holds_its_key_only_for_its_lease(app) {
        let t = app.tenant("Acme").await;
        let c = seed_catalogue(app, &t.key).await;
        let first = post(app, &t.key, "crash", "/api/v1/entitlements", order(&c.customer_id, "o-9")).await;
        assert_eq!(first.status, StatusCode::CREATED);
        // As if the instance died before recording the answer: in progress, lease running.
        app.sql("UPDATE idempotency_keys SET completed = 0, status = NULL, body = NULL, lease_until = 9000000000000")
            .await
            .unwrap();
        let waiting = post(app, &t.key, "crash", "/api/v1/entitlements", order(&c.customer_id, "o-9")).await;
        assert_eq!(waiting.status, StatusCode::CONFLICT);
        assert_eq!(waiting.body["error"]["code"], "idempotency_key_in_progress");
        // The lease over, the retry runs.
        app.sql("UPDATE idempotency_keys SET lease_until = 0").await.unwrap();
        let rerun = post(app, &t.key, "crash", "/api/v1/entitlements", order(&c.customer_id, "o-9")).await;
        assert_eq!(rerun.status, StatusCode::CREATED);
        assert!(!replayed(&rerun));
        assert_ne!(rerun.body["id"], first.body["id"]);
    }
}

backend_test! {
    async fn keys_are_purged_after_a_day(app) {
        let t = app.tenant("Acme").await;
        let c = seed_catalogue(app, &t.key).await;
        for key in ["old", "fresh"] {
            let created = post(app, &t.key, key, "/api/v1/entitlements", order(&c.customer_id, key)).await;
            assert_eq!(created.status, StatusCode::CREATED);
        }
        let day_and_a_bit = 25 * 60 * 60 * 1000;
        app.sql(&format!(
            "UPDATE idempotency_keys SET created_at = created_at - {day_and_a_bit} WHERE idem_key = 'old'"
        ))
        .await
        .unwrap();
        // The housekeeping worker's purge, run directly.
        let purged = entitle_server::services::idempotency::purge(&app.store, entitle_server::services::now())
            .await
            .unwrap();
        assert_eq!(purged, 1);
        assert_eq!(app.sql("DELETE FROM idempotency_keys WHERE idem_key = 'old'").await.unwrap(), 0, "gone");
        // The fresh key is kept; the old one is free for a new request.
        let reused = post(app, &t.key, "fresh", "/api/v1/entitlements", order(&c.customer_id, "other")).await;
        assert_eq!(reused.body["error"]["code"], "idempotency_key_reused");
        let anew = post(app, &t.key, "old", "/api/v1/entitlements", order(&c.customer_id, "other")).await;
        assert_eq!(anew.status, StatusCode::CREATED, "{}", anew.body);
        assert!(!replayed(&anew));
    }
}
