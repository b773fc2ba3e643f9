use reqwest::{Method, StatusCode};
use serde_json::json;
use std::collections::BTreeSet;

use crate::helpers::{backend_test, Backend, TestApp};

backend_test! {
    async fn health_readiness_metrics_and_request_ids(app) {
        let health = app.request(Method::GET, None, "/healthz", None).await;
        assert_eq!(health.status, StatusCode::OK);
        let ready = app.request(Method::GET, None, "/readyz", None).await;
        assert_eq!(ready.status, StatusCode::OK);
        let request_id = health.headers.get("x-request-id").unwrap().to_str().unwrap();
        assert!(request_id.starts_with("req_"));

        let t = app.tenant("Acme").await;
        app.fetch(&t.key, "/api/v1/products").await;
        app.get(&t.key, "/api/v1/products/prd_missing").await;
        let metrics = app.request(Method::GET, None, "/metrics", None).await;
        let text = metrics.body.as_str().unwrap();
        assert!(text.contains(r#"entitle_http_requests_total{method="GET",route="/api/v1/products",status="200"} 1"#), "{text}");
        assert!(text.contains(r#"route="/api/v1/products/{id}",status="404"} 1"#), "labels use the route template: {text}");
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
