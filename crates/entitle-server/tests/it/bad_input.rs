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
