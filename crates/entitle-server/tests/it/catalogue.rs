use reqwest::{Method, StatusCode};
use serde_json::json;

use crate::helpers::{backend_test, seed_catalogue};

backend_test! {
    async fn products_are_created_read_listed_and_updated(app) {
        let t = app.tenant("Acme").await;
        let product = app.create(&t.key, "/api/v1/products", json!({"name": "Editor"})).await;
        assert_eq!(product["lease_period"], json!({"unit": "day", "count": 1}), "default lease");
        assert_eq!(product["grace_period"], json!({"unit": "day", "count": 7}), "default grace");
        assert_eq!(product["offline_lease_period"], json!({"unit": "none", "count": 0}));
        let id = product["id"].as_str().unwrap();
        assert!(id.starts_with("prd_"));
        assert_eq!(app.fetch(&t.key, &format!("/api/v1/products/{id}")).await, product);

        let updated = app
            .act(Method::PATCH, &t.key, &format!("/api/v1/products/{id}"),
                 json!({"name": "Editor Pro", "linger_period": {"unit": "minute", "count": 30}}))
            .await;
        assert_eq!(updated["name"], "Editor Pro");
        assert_eq!(updated["linger_period"], json!({"unit": "minute", "count": 30}));
        assert_eq!(updated["lease_period"], product["lease_period"], "untouched fields stay");
        assert_eq!(app.fetch(&t.key, &format!("/api/v1/products/{id}")).await, updated);
    }
}

backend_test! {
    async fn listings_are_cursor_paginated(app) {
        let t = app.tenant("Acme").await;
        let mut ids = Vec::new();
        for n in 0..5 {
            let p = app.create(&t.key, "/api/v1/products", json!({"name": format!("P{n}")})).await;
            ids.push(p["id"].as_str().unwrap().to_owned());
        }
        let mut seen = Vec::new();
        let mut path = "/api/v1/products?limit=2".to_owned();
        loop {
            let page = app.fetch(&t.key, &path).await;
            let data = page["data"].as_array().unwrap();
            assert!(data.len() <= 2);
            seen.extend(data.iter().map(|p| p["id"].as_str().unwrap().to_owned()));
            match page["next_after"].as_str() {
                Some(after) => path = format!("/api/v1/products?limit=2&after={after}"),
                None => break,
            }
        }
        assert_eq!(seen, ids, "every product once, in creation order");
        let bad = app.get(&t.key, "/api/v1/products?limit=0").await;
        assert_eq!(bad.status, StatusCode::UNPROCESSABLE_ENTITY);
        assert_eq!(bad.body["error"]["code"], "invalid_limit");
    }
}

backend_test! {
    async fn a_full_catalogue_can_be_built_and_filtered_by_product(app) {
        let t = app.tenant("Acme").await;
        let c = seed_catalogue(app, &t.key).await;
        let other = app.create(&t.key, "/api/v1/products", json!({"name": "Other"})).await;
        app.create(&t.key, "/api/v1/features",
            json!({"product_id": other["id"], "key": "export", "name": "Export", "kind": "bool"})).await;

        let features = app.fetch(&t.key, &format!("/api/v1/features?product_id={}", c.product_id)).await;
        assert_eq!(features["data"].as_array().unwrap().len(), 3);
        let all = app.fetch(&t.key, "/api/v1/features").await;
        assert_eq!(all["data"].as_array().unwrap().len(), 4);

        let pro = app.fetch(&t.key, &format!("/api/v1/editions/{}", c.pro_edition)).await;
        assert_eq!(pro["features"], json!([
            {"key": "export", "limit": null, "overdraft": 0},
            {"key": "nodes", "limit": 4, "overdraft": 0},
            {"key": "renders", "limit": 100, "overdraft": 10},
        ]));
        assert_eq!(pro["attributes"], json!([{"key": "max_users", "value": 10}]));

        let offerings = app.fetch(&t.key, "/api/v1/offerings").await;
        let skus: Vec<_> = offerings["data"].as_array().unwrap().iter().map(|o| o["sku"].clone()).collect();
        assert_eq!(skus, [json!("BASIC-M"), json!("PRO-M"), json!("PRO-P")]);
        let plan = app.fetch(&t.key, &format!("/api/v1/plans/{}", c.monthly_plan)).await;
        assert_eq!(plan["duration"], json!({"unit": "month", "count": 1}));
        assert_eq!(plan["start"], "on_creation");
        assert_eq!(plan["kind"], "paid");

        let renamed = app.act(Method::PATCH, &t.key, &format!("/api/v1/features/{}", c.feature_ids[0]),
            json!({"name": "Export to PDF"})).await;
        assert_eq!(renamed["name"], "Export to PDF");
        assert_eq!(renamed["key"], "export");
        let attr = app.act(Method::PATCH, &t.key, &format!("/api/v1/attributes/{}", c.attribute_id),
            json!({"name": "Seats for users"})).await;
        assert_eq!(attr["kind"], "number");
        let user = app.fetch(&t.key, &format!("/api/v1/end-users/{}", c.end_user_id)).await;
        assert_eq!(user["role"], "user");
        assert_eq!(user["customer_id"], c.customer_id);
        let users = app.fetch(&t.key, &format!("/api/v1/end-users?customer_id={}", c.customer_id)).await;
        assert_eq!(users["data"].as_array().unwrap().len(), 1);
        let customers = app.fetch(&t.key, "/api/v1/customers?email=IT@initech.example").await;
        assert_eq!(customers["data"][0]["id"], c.customer_id, "email lookups ignore case");
    }
}

backend_test! {
    async fn catalogue_rules_are_enforced(app) {
        let t = app.tenant("Acme").await;
        let c = seed_catalogue(app, &t.key).await;
        let cases = [
            ("/api/v1/features", json!({"product_id": c.product_id, "key": "export", "name": "x", "kind": "bool"}),
             StatusCode::CONFLICT, "key_taken"),
            ("/api/v1/editions", json!({"product_id": c.product_id, "name": "X", "features": [{"key": "nope"}]}),
             StatusCode::UNPROCESSABLE_ENTITY, "unknown_feature"),
            ("/api/v1/editions", json!({"product_id": c.product_id, "name": "X", "features": [{"key": "export", "limit": 3}]}),
             StatusCode::UNPROCESSABLE_ENTITY, "invalid_feature_value"),
            ("/api/v1/editions", json!({"product_id": c.product_id, "name": "X", "features": [{"key": "export"}, {"key": "export"}]}),
             StatusCode::UNPROCESSABLE_ENTITY, "duplicate_key"),
            ("/api/v1/editions", json!({"product_id": c.product_id, "name": "X", "attributes": [{"key": "max_users", "value": "ten"}]}),
             StatusCode::UNPROCESSABLE_ENTITY, "invalid_attribute_value"),
            ("/api/v1/plans", json!({"product_id": c.product_id, "name": "X", "license_type": "subscription"}),
             StatusCode::UNPROCESSABLE_ENTITY, "invalid_plan"),
            ("/api/v1/offerings", json!({"sku": "PRO-M", "name": "dup", "edition_id": c.pro_edition, "plan_id": c.monthly_plan}),
             StatusCode::CONFLICT, "sku_taken"),
            ("/api/v1/offerings", json!({"sku": "NEW", "name": "x", "edition_id": c.pro_edition, "plan_id": c.monthly_plan, "seat_count": -1}),
             StatusCode::UNPROCESSABLE_ENTITY, "invalid_seat_count"),
            ("/api/v1/end-users", json!({"customer_id": c.customer_id, "email": "PETER@initech.example"}),
             StatusCode::CONFLICT, "email_taken"),
            ("/api/v1/features", json!({"product_id": "prd_missing", "key": "x", "name": "x", "kind": "bool"}),
             StatusCode::NOT_FOUND, "not_found"),
        ];
        for (path, body, status, code) in cases {
            let response = app.post(&t.key, path, body.clone()).await;
            assert_eq!(response.status, status, "{path} {body}: {}", response.body);
            assert_eq!(response.body["error"]["code"], code, "{path} {body}");
        }
        let other = app.create(&t.key, "/api/v1/products", json!({"name": "Other"})).await;
        let other_plan = app.create(&t.key, "/api/v1/plans",
            json!({"product_id": other["id"], "name": "P", "license_type": "perpetual"})).await;
        let response = app.post(&t.key, "/api/v1/offerings",
            json!({"sku": "MIX", "name": "x", "edition_id": c.pro_edition, "plan_id": other_plan["id"]})).await;
        assert_eq!(response.body["error"]["code"], "different_product");
    }
}
