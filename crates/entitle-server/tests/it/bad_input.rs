//! Bad input gets a clear 4xx with a stable code, and changes nothing.

use reqwest::StatusCode;
use serde_json::json;

use crate::helpers::{backend_test, seed_catalogue, TestApp};

/// Path, content type, body, expected status, expected error code.
type Case<'a> = (&'a str, Option<&'a str>, Vec<u8>, StatusCode, &'a str);

async fn raw(
    app: &TestApp,
    key: &str,
    path: &str,
    content_type: Option<&str>,
    body: Vec<u8>,
) -> (StatusCode, serde_json::Value) {
    let mut request = app
        .client
        .post(format!("{}{path}", app.base))
        .bearer_auth(key)
        .body(body);
    if let Some(content_type) = content_type {
        request = request.header("content-type", content_type);
    }
    let response = request.send().await.unwrap();
    let status = response.status();
    (status, response.json().await.unwrap_or(json!(null)))
}

/// Sends the headers of a 10 MB JSON POST and reads the answer. (Streaming the body itself races
/// the server closing the connection after its early 413.)
async fn declared_huge_body(app: &TestApp, key: &str) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let address = app.base.trim_start_matches("http://");
    let mut stream = tokio::net::TcpStream::connect(address).await.unwrap();
    let head = format!(
        "POST /api/v1/products HTTP/1.1\r\nHost: {address}\r\nAuthorization: Bearer {key}\r\n\
         Content-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{{\"name\": \"",
        10 * 1024 * 1024
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    let mut answer = Vec::new();
    let _ = tokio::time::timeout(std::time::Duration::from_secs(10), stream.read_to_end(&mut answer)).await;
    String::from_utf8_lossy(&answer).into_owned()
}

async fn counts(app: &TestApp, key: &str) -> Vec<usize> {
    let mut counts = Vec::new();
    for path in [
        "/api/v1/events?limit=200",
        "/api/v1/entitlements?limit=200",
        "/api/v1/products?limit=200",
        "/api/v1/customers?limit=200",
    ] {
        counts.push(app.fetch(key, path).await["data"].as_array().unwrap().len());
    }
    counts
}

backend_test! {
    async fn malformed_oversized_and_mistyped_requests_are_refused_and_change_nothing(app) {
        let t = app.tenant("Acme").await;
        let c = seed_catalogue(app, &t.key).await;
        let before = counts(app, &t.key).await;
        let json_type = Some("application/json");
        let cases: Vec<Case> = vec![
            ("/api/v1/products", json_type, b"{\"name\": ".to_vec(), StatusCode::BAD_REQUEST, "malformed_json"),
            ("/api/v1/products", json_type, b"not json".to_vec(), StatusCode::BAD_REQUEST, "malformed_json"),
            ("/api/v1/products", None, br#"{"name": "X"}"#.to_vec(), StatusCode::UNSUPPORTED_MEDIA_TYPE, "unsupported_media_type"),
            ("/api/v1/products", json_type, br#"{"name": 42}"#.to_vec(), StatusCode::UNPROCESSABLE_ENTITY, "invalid_body"),
            ("/api/v1/products", json_type, br#"{"name": ""}"#.to_vec(), StatusCode::UNPROCESSABLE_ENTITY, "invalid_body"),
            ("/api/v1/products", json_type, br#"{"name": "X", "colour": "red"}"#.to_vec(), StatusCode::UNPROCESSABLE_ENTITY, "invalid_body"),
            ("/api/v1/products", json_type, br#"{"name": "X", "lease_period": {"unit": "fortnight", "count": 1}}"#.to_vec(), StatusCode::UNPROCESSABLE_ENTITY, "invalid_body"),
            ("/api/v1/products", json_type, br#"[1, 2, 3]"#.to_vec(), StatusCode::UNPROCESSABLE_ENTITY, "invalid_body"),
            ("/api/v1/customers", json_type, br#"{"name": "X", "email": "not-an-email"}"#.to_vec(), StatusCode::UNPROCESSABLE_ENTITY, "invalid_body"),
            ("/api/v1/entitlements", json_type, serde_json::to_vec(&json!({"customer_id": c.customer_id, "sku": "NO-SUCH-SKU"})).unwrap(), StatusCode::UNPROCESSABLE_ENTITY, "unknown_sku"),
            ("/api/v1/entitlements", json_type, serde_json::to_vec(&json!({"customer_id": c.customer_id, "sku": "bad sku!"})).unwrap(), StatusCode::UNPROCESSABLE_ENTITY, "invalid_body"),
            ("/api/v1/entitlements", json_type, serde_json::to_vec(&json!({"customer_id": c.customer_id, "sku": "PRO-M", "quantity": -2})).unwrap(), StatusCode::UNPROCESSABLE_ENTITY, "invalid_quantity"),
            ("/api/v1/entitlements", json_type, serde_json::to_vec(&json!({"customer_id": c.customer_id, "sku": "PRO-M", "quantity": "two"})).unwrap(), StatusCode::UNPROCESSABLE_ENTITY, "invalid_body"),
            ("/api/v1/entitlements", json_type, serde_json::to_vec(&json!({"customer_id": "cus_nobody", "sku": "PRO-M"})).unwrap(), StatusCode::NOT_FOUND, "not_found"),
            ("/api/v1/offerings", json_type, serde_json::to_vec(&json!({"sku": "NEG", "name": "n", "edition_id": c.pro_edition, "plan_id": c.monthly_plan, "seat_count": -5})).unwrap(), StatusCode::UNPROCESSABLE_ENTITY, "invalid_seat_count"),
        ];
        for (path, content_type, body, status, code) in cases {
            let shown = String::from_utf8_lossy(&body).chars().take(80).collect::<String>();
            let (got, answer) = raw(app, &t.key, path, content_type, body).await;
            assert_eq!(got, status, "{path} {shown}: {answer}");
            assert_eq!(answer["error"]["code"], code, "{path} {shown}: {answer}");
            assert!(answer["error"]["message"].as_str().is_some_and(|m| !m.is_empty()));
        }

        // A 10 MB body is refused from its declared length, before a byte of it is read.
        let answer = declared_huge_body(app, &t.key).await;
        assert!(answer.starts_with("HTTP/1.1 413"), "{answer}");
        assert!(answer.contains(r#""code":"payload_too_large""#), "{answer}");

        let query = app.get(&t.key, "/api/v1/events?since=yesterday").await;
        assert_eq!(query.status, StatusCode::BAD_REQUEST);
        assert_eq!(query.body["error"]["code"], "invalid_query");
        let unknown_route = app.get(&t.key, "/api/v1/nothing-here").await;
        assert_eq!(unknown_route.status, StatusCode::NOT_FOUND);
        assert_eq!(unknown_route.body["error"]["code"], "not_found");

        assert_eq!(counts(app, &t.key).await, before, "refused requests wrote nothing");
    }
}

backend_test! {
    async fn numbers_and_periods_out_of_range_are_refused_with_stable_codes(app) {
        let t = app.tenant("Acme").await;
        let c = seed_catalogue(app, &t.key).await;
        let entitlement = crate::helpers::entitle(app, &t.key, &c.customer_id, "PRO-M", 1).await;
        let ent = format!("/api/v1/entitlements/{}", entitlement["id"].as_str().unwrap());
        let product = format!("/api/v1/products/{}", c.product_id);
        let edition = format!("/api/v1/editions/{}", c.pro_edition);
        let offering = format!("/api/v1/offerings/{}", c.offering_ids[1]);
        let before = counts(app, &t.key).await;
        let max = i64::MAX;
        let (post, patch) = (reqwest::Method::POST, reqwest::Method::PATCH);
        let cases = [
            // A period without a count used to be read as "no period": it removed the grace period of
            // every entitlement of the product.
            (patch.clone(), product.clone(), json!({"grace_period": {"unit": "day"}}), "invalid_interval"),
            (patch.clone(), product.clone(), json!({"lease_period": {"unit": "hour", "count": 0}}), "invalid_interval"),
            (patch.clone(), product.clone(), json!({"linger_period": {"unit": "none", "count": 4}}), "invalid_interval"),
            (patch.clone(), product.clone(), json!({"grace_period": {"unit": "year", "count": 101}}), "invalid_interval"),
            (post.clone(), "/api/v1/plans".into(), json!({"product_id": c.product_id, "name": "P", "license_type": "subscription", "duration": {"unit": "month"}}), "invalid_interval"),
            (patch.clone(), ent.clone(), json!({"grace_period": {"unit": "week"}}), "invalid_interval"),
            (post.clone(), format!("{ent}/renew"), json!({"duration": {"unit": "month"}}), "invalid_interval"),
            // limit + overdraft at i64::MAX overflowed PostgreSQL's bigint when usage was checked.
            (patch.clone(), edition.clone(), json!({"features": [{"key": "renders", "limit": max, "overdraft": max}]}), "invalid_feature_value"),
            (patch.clone(), edition.clone(), json!({"features": [{"key": "renders", "limit": -1}]}), "invalid_feature_value"),
            (patch.clone(), ent.clone(), json!({"features": [{"key": "renders", "limit": 5, "overdraft": max}]}), "invalid_feature_value"),
            (post.clone(), "/api/v1/offerings".into(), json!({"sku": "BIG", "name": "n", "edition_id": c.pro_edition, "plan_id": c.monthly_plan, "seat_count": 1_000_000_001}), "invalid_seat_count"),
            (patch.clone(), offering.clone(), json!({"seat_count": max}), "invalid_seat_count"),
            (patch.clone(), offering.clone(), json!({"overdraft": {"kind": "percentage", "value": 4_000_000_000u64}}), "invalid_overdraft"),
            (patch.clone(), ent.clone(), json!({"seat_count": -1}), "invalid_seat_count"),
            (patch.clone(), ent.clone(), json!({"overdraft": {"kind": "absolute", "value": 1_000_000_001}}), "invalid_overdraft"),
            (post.clone(), format!("{ent}/add-seats"), json!({"count": max}), "invalid_seat_count"),
            (post.clone(), format!("{ent}/change-offering"), json!({"sku": "PRO-P", "quantity": 0}), "invalid_quantity"),
            (post.clone(), "/api/v1/entitlements".into(), json!({"customer_id": c.customer_id, "sku": "PRO-M", "quantity": 1_000_001}), "invalid_quantity"),
            (post.clone(), "/api/v1/storefront-connections".into(), json!({"provider": "stripe", "name": "S", "secrets": ["whsec_123456"], "tolerance_seconds": -5}), "invalid_tolerance"),
        ];
        for (method, path, body, code) in cases {
            let answer = app.request(method.clone(), Some(&t.key), &path, Some(body.clone())).await;
            assert_eq!(answer.status, StatusCode::UNPROCESSABLE_ENTITY, "{method} {path} {body}: {}", answer.body);
            assert_eq!(answer.body["error"]["code"], code, "{method} {path} {body}: {}", answer.body);
        }
        for path in ["/api/v1/products", "/api/v1/entitlements", "/api/v1/events", "/api/v1/api-keys", "/api/v1/customers"] {
            for limit in ["0", "201", "-1", "4294967297"] {
                let answer = app.get(&t.key, &format!("{path}?limit={limit}")).await;
                assert_eq!(answer.status, StatusCode::UNPROCESSABLE_ENTITY, "{path}?limit={limit}: {}", answer.body);
                assert_eq!(answer.body["error"]["code"], "invalid_limit", "{path}?limit={limit}");
            }
            let answer = app.get(&t.key, &format!("{path}?limit=ten")).await;
            assert_eq!(answer.status, StatusCode::BAD_REQUEST, "{path}?limit=ten");
            assert_eq!(answer.body["error"]["code"], "invalid_query");
            assert_eq!(app.get(&t.key, &format!("{path}?limit=200")).await.status, StatusCode::OK);
        }

        assert_eq!(counts(app, &t.key).await, before, "refused requests wrote nothing");
        let entitlement = app.fetch(&t.key, &ent).await;
        assert_eq!(entitlement["grace_period"], json!({"unit": "day", "count": 5}), "grace period kept");
        assert_eq!(entitlement["seat_count"], 5);

        // The largest accepted values still work end to end, on both databases.
        let top = 1_000_000_000_000i64;
        let updated = app.patch(&t.key, &edition, json!({"features": [{"key": "renders", "limit": top, "overdraft": top}]})).await;
        assert_eq!(updated.status, StatusCode::OK, "{}", updated.body);
        let added = app.post(&t.key, &format!("{ent}/add-seats"), json!({"count": 1_000_000})).await;
        assert_eq!(added.status, StatusCode::OK, "{}", added.body);
        assert_eq!(added.body["seat_count"], 1_000_005);
    }
}
