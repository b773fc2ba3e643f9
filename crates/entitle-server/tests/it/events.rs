use chrono::{Duration, Utc};
use reqwest::Method;
use serde_json::json;

use crate::helpers::{backend_test, entitle, seed_catalogue};

backend_test! {
    async fn every_change_is_recorded_with_actor_and_address(app) {
        let t = app.tenant("Acme").await;
        let c = seed_catalogue(app, &t.key).await;
        let e = entitle(app, &t.key, &c.customer_id, "PRO-M", 1).await;
        let id = e["id"].as_str().unwrap();
        let path = format!("/api/v1/entitlements/{id}");
        app.act(Method::POST, &t.key, &format!("{path}/renew"), json!({})).await;
        app.act(Method::PATCH, &t.key, &path, json!({"seat_count": 9})).await;
        app.act(Method::POST, &t.key, &format!("{path}/disable"), json!({})).await;
        app.act(Method::POST, &t.key, &format!("{path}/disable"), json!({})).await;

        let events = app.fetch(&t.key, &format!("/api/v1/events?object_id={id}")).await;
        let events = events["data"].as_array().unwrap();
        let actions: Vec<_> = events.iter().map(|e| e["action"].as_str().unwrap()).collect();
        assert_eq!(actions, ["entitlement.created", "entitlement.renewed", "entitlement.updated", "entitlement.disabled"],
            "a no-op (second disable) records nothing");
        let key_id = app.fetch(&t.key, "/api/v1/api-keys").await["data"][0]["id"].clone();
        for event in events {
            assert_eq!(event["actor_kind"], "api_key");
            assert_eq!(event["actor_id"], key_id);
            assert_eq!(event["ip"], "127.0.0.1");
            assert_eq!(event["object_kind"], "entitlement");
        }
        assert_eq!(events[2]["summary"]["seat_count"], json!({"from": 5, "to": 9}));
        assert_eq!(events[2]["summary"]["overridden_fields"], json!({"from": [], "to": ["seat_count"]}));
        assert!(events[0]["summary"].get("activation_code").is_none(), "credentials stay out of the log");
        assert!(events[1]["summary"]["expires_at"]["to"].is_string());

        let products = app.fetch(&t.key, "/api/v1/events?object_kind=product").await;
        assert_eq!(products["data"].as_array().unwrap().len(), 1);
        let future = (Utc::now() + Duration::hours(1)).to_rfc3339().replace('+', "%2B");
        let none = app.fetch(&t.key, &format!("/api/v1/events?since={future}")).await;
        assert_eq!(none["data"], json!([]));
        let past = (Utc::now() - Duration::hours(1)).to_rfc3339().replace('+', "%2B");
        let none = app.fetch(&t.key, &format!("/api/v1/events?until={past}")).await;
        assert_eq!(none["data"], json!([]));
        let all = app.fetch(&t.key, &format!("/api/v1/events?since={past}&limit=200")).await;
        assert!(all["data"].as_array().unwrap().len() > 10);
    }
}

backend_test! {
    async fn the_event_log_is_append_only(app) {
        let t = app.tenant("Acme").await;
        app.create(&t.key, "/api/v1/products", json!({"name": "Editor"})).await;
        assert!(app.sql("UPDATE events SET action = 'forged'").await.is_err(), "update refused");
        assert!(app.sql("DELETE FROM events").await.is_err(), "delete refused");
        let events = app.fetch(&t.key, "/api/v1/events?object_kind=product").await;
        assert_eq!(events["data"][0]["action"], "product.created");
    }
}
