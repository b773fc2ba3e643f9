//! Authentication, roles and tenant isolation.

use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use std::collections::BTreeMap;

use crate::helpers::{backend_test, entitle, seed_catalogue};

backend_test! {
    async fn requests_without_a_live_key_are_refused(app) {
        let t = app.tenant("Acme").await;
        let none = app.request(Method::GET, None, "/api/v1/products", None).await;
        assert_eq!(none.status, StatusCode::UNAUTHORIZED);
        assert_eq!(none.body["error"]["code"], "unauthorized");
        let wrong = app.get("esk_notakey", "/api/v1/products").await;
        assert_eq!(wrong.status, StatusCode::UNAUTHORIZED);

        let created = app.create(&t.key, "/api/v1/api-keys", json!({"name": "CI", "role": "admin"})).await;
        let secret = created["secret"].as_str().unwrap();
        assert!(secret.starts_with(created["display_prefix"].as_str().unwrap()));
        app.fetch(secret, "/api/v1/products").await;
        let listed = app.fetch(&t.key, "/api/v1/api-keys").await;
        assert_eq!(listed["data"].as_array().unwrap().len(), 2);
        assert!(!listed.to_string().contains(secret), "listings never show secrets");

        let id = created["id"].as_str().unwrap();
        let revoked = app.request(Method::DELETE, Some(&t.key), &format!("/api/v1/api-keys/{id}"), None).await;
        assert_eq!(revoked.status, StatusCode::OK);
        assert!(revoked.body["revoked_at"].is_string());
        assert_eq!(app.get(secret, "/api/v1/products").await.status, StatusCode::UNAUTHORIZED);
        let twice = app.request(Method::DELETE, Some(&t.key), &format!("/api/v1/api-keys/{id}"), None).await;
        assert_eq!(twice.body["revoked_at"], revoked.body["revoked_at"]);
    }
}

backend_test! {
    async fn roles_limit_what_a_key_can_do(app) {
        let t = app.tenant("Acme").await;
        let c = seed_catalogue(app, &t.key).await;
        let e = entitle(app, &t.key, &c.customer_id, "PRO-M", 1).await;
        let ent = format!("/api/v1/entitlements/{}", e["id"].as_str().unwrap());
        let support = app.create(&t.key, "/api/v1/api-keys", json!({"name": "Support", "role": "support"})).await;
        let support = support["secret"].as_str().unwrap();
        let integration = app.create(&t.key, "/api/v1/api-keys", json!({"name": "Shop", "role": "integration"})).await;
        let integration = integration["secret"].as_str().unwrap();

        // Support: reads and lifecycle actions, nothing else.
        app.fetch(support, &ent).await;
        app.fetch(support, "/api/v1/events").await;
        app.act(Method::POST, support, &format!("{ent}/renew"), json!({})).await;
        app.act(Method::POST, support, &format!("{ent}/add-seats"), json!({"count": 1})).await;
        for (method, path, body) in [
            (Method::POST, "/api/v1/products".to_owned(), json!({"name": "X"})),
            (Method::PATCH, format!("/api/v1/offerings/{}", c.offering_ids[0]), json!({"name": "X"})),
            (Method::GET, "/api/v1/api-keys".to_owned(), json!(null)),
            (Method::POST, "/api/v1/api-keys".to_owned(), json!({"name": "X", "role": "admin"})),
            (Method::POST, "/api/v1/customers".to_owned(), json!({"name": "X"})),
        ] {
            let body = (!body.is_null()).then_some(body);
            let refused = app.request(method.clone(), Some(support), &path, body).await;
            assert_eq!(refused.status, StatusCode::FORBIDDEN, "support {method} {path}");
            assert_eq!(refused.body["error"]["code"], "forbidden");
        }

        // Integration: creates customers and entitlements only.
        let customer = app.create(integration, "/api/v1/customers", json!({"name": "Shop buyer"})).await;
        app.create(integration, "/api/v1/entitlements", json!({"customer_id": customer["id"], "sku": "BASIC-M"})).await;
        for (method, path) in [
            (Method::GET, ent.clone()),
            (Method::GET, "/api/v1/customers".to_owned()),
            (Method::GET, "/api/v1/events".to_owned()),
            (Method::POST, format!("{ent}/disable")),
            (Method::GET, "/api/v1/api-keys".to_owned()),
        ] {
            let refused = app.request(method.clone(), Some(integration), &path, None).await;
            assert_eq!(refused.status, StatusCode::FORBIDDEN, "integration {method} {path}");
        }
    }
}

/// Fills each `{id}` of a documented path with tenant B's object of the matching kind.
fn object_for(path: &str, ids: &BTreeMap<&str, String>) -> Option<String> {
    let collection = path.trim_start_matches("/api/v1/").split('/').next()?;
    let id = ids.get(collection)?;
    Some(path.replace("{id}", id))
}

/// A plausible body, so that a refusal can only come from the object not being found.
fn body_for(method: &str, path: &str, b_sku: &str) -> Option<Value> {
    match (method, path.rsplit('/').next()?) {
        ("post", "change-offering") => Some(json!({"sku": b_sku})),
        ("post", "add-seats") => Some(json!({"count": 1})),
        ("post", "revoke") => None,
        ("post", _) | ("patch", _) => Some(json!({})),
        _ => None,
    }
}

backend_test! {
    async fn no_route_reaches_another_tenants_objects(app) {
        let a = app.tenant("Tenant A").await;
        let b = app.tenant("Tenant B").await;
        seed_catalogue(app, &a.key).await;
        let cb = seed_catalogue(app, &b.key).await;
        let eb = entitle(app, &b.key, &cb.customer_id, "PRO-M", 1).await;
        let b_key = app.create(&b.key, "/api/v1/api-keys", json!({"name": "B support", "role": "support"})).await;
        let activated = app
            .request(Method::POST, None, "/licensing/v1/activate", Some(json!({
                "tenant": b.id, "product": cb.product_id, "activation_code": eb["activation_code"],
                "seat_id": "b-machine", "nonce": "nonce-0123456789"})))
            .await;
        assert_eq!(activated.status, StatusCode::OK, "{}", activated.body);
        let b_connection = app
            .create(&b.key, "/api/v1/storefront-connections", json!({"provider": "generic", "name": "B shop", "secrets": ["b-secret-123"]}))
            .await;
        let b_mapping = app
            .create(&b.key, "/api/v1/storefront-mappings", json!({"connection_id": b_connection["id"], "provider_ref": "price_b", "sku": "PRO-M"}))
            .await;
        let unsigned = app
            .client
            .post(format!("{}/commerce/v1/{}", app.base, b_connection["id"].as_str().unwrap()))
            .body("{}")
            .send()
            .await
            .unwrap();
        assert_eq!(unsigned.status(), StatusCode::UNAUTHORIZED);
        let b_delivery = app.fetch(&b.key, "/api/v1/storefront-deliveries").await["data"][0]["id"].clone();
        let b_endpoint = app
            .create(&b.key, "/api/v1/webhook-endpoints", json!({"url": "https://hooks.example.invalid/b", "events": ["mail.failed"]}))
            .await;
        let b_message = app
            .post(&b.key, &format!("/api/v1/webhook-endpoints/{}/test", b_endpoint["id"].as_str().unwrap()), json!({}))
            .await
            .body;
        let ids: BTreeMap<&str, String> = [
            ("products", cb.product_id.clone()),
            ("features", cb.feature_ids[0].clone()),
            ("attributes", cb.attribute_id.clone()),
            ("editions", cb.pro_edition.clone()),
            ("plans", cb.monthly_plan.clone()),
            ("offerings", cb.offering_ids[1].clone()),
            ("customers", cb.customer_id.clone()),
            ("end-users", cb.end_user_id.clone()),
            ("entitlements", eb["id"].as_str().unwrap().to_owned()),
            ("api-keys", b_key["id"].as_str().unwrap().to_owned()),
            ("activations", activated.body["activation_id"].as_str().unwrap().to_owned()),
            ("storefront-connections", b_connection["id"].as_str().unwrap().to_owned()),
            ("storefront-mappings", b_mapping["id"].as_str().unwrap().to_owned()),
            ("storefront-deliveries", b_delivery.as_str().unwrap().to_owned()),
            ("webhook-endpoints", b_endpoint["id"].as_str().unwrap().to_owned()),
            ("webhook-deliveries", b_message["id"].as_str().unwrap().to_owned()),
        ]
        .into();

        let doc = app.request(Method::GET, None, "/api/v1/openapi.json", None).await.body;
        let paths = doc["paths"].as_object().unwrap();
        let mut before = BTreeMap::new();
        for (collection, id) in &ids {
            // Webhook endpoints and deliveries change as the worker tries to deliver.
            if !["api-keys", "storefront-mappings", "webhook-endpoints", "webhook-deliveries"].contains(collection) {
                let path = format!("/api/v1/{collection}/{id}");
                before.insert(path.clone(), app.fetch(&b.key, &path).await);
            }
        }
        let mut checked = 0;
        for (path, item) in paths.iter().filter(|(path, _)| path.starts_with("/api/v1/")) {
            for method in ["get", "post", "patch", "delete"] {
                if item.get(method).is_none() {
                    continue;
                }
                if !path.contains("{id}") {
                    // Collections: A's listings hold none of B's objects.
                    if method == "get" {
                        let listing = app.fetch(&a.key, &format!("{path}?limit=200")).await.to_string();
                        for id in ids.values() {
                            assert!(!listing.contains(id.as_str()), "GET {path} shows tenant B's {id}");
                        }
                        checked += 1;
                    }
                    continue;
                }
                let target = object_for(path, &ids).unwrap_or_else(|| panic!("no tenant B object for {path}"));
                let response = app
                    .request(method.to_uppercase().parse().unwrap(), Some(&a.key), &target, body_for(method, path, "PRO-M"))
                    .await;
                assert_eq!(response.status, StatusCode::NOT_FOUND, "{method} {target} with tenant A's key: {}", response.body);
                assert_eq!(response.body["error"]["code"], "not_found");
                checked += 1;
            }
        }
        assert!(checked >= 30, "only {checked} routes checked");
        // Nothing of B's changed, and B's own events show no actor from A.
        for (path, view) in before {
            assert_eq!(app.fetch(&b.key, &path).await, view, "{path} changed");
        }
        let events = app.fetch(&b.key, "/api/v1/events?limit=200").await;
        assert!(events["data"].as_array().unwrap().iter().all(|e| e["actor_id"] != json!(a.id)));
        let b_keys = app.fetch(&b.key, "/api/v1/api-keys").await;
        assert!(b_keys["data"].as_array().unwrap().iter().all(|k| k["revoked_at"].is_null()), "A revoked none of B's keys");
    }
}
