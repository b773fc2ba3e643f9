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

backend_test! {
    async fn storefront_changes_say_what_happened(app) {
        use crate::commerce::{connection, deliver, generic, order_entitlement};
        let t = app.tenant("Acme").await;
        seed_catalogue(app, &t.key).await;
        let conn = connection(app, &t.key, "generic").await;
        let start = chrono::Utc::now() - chrono::Duration::days(1);
        let send = |n: u32, body: serde_json::Value| {
            let conn = conn.clone();
            async move {
                let (status, _) = deliver(app, &conn, "generic", &format!("hist-{n}"), &body).await;
                assert!(status.is_success());
            }
        };
        send(1, generic("purchase", "sub-h", start, Some(("PRO-M", 1)), Some(start + chrono::Duration::days(30)), Some("h@b.example"))).await;
        send(2, generic("renewal", "sub-h", start + chrono::Duration::hours(1), None, Some(start + chrono::Duration::days(60)), None)).await;
        send(3, generic("refunded", "sub-h", start + chrono::Duration::hours(2), None, None, None)).await;
        let e = order_entitlement(app, &t.key, "sub-h").await.unwrap();
        let events = app.fetch(&t.key, &format!("/api/v1/events?object_id={}", e["id"].as_str().unwrap())).await;
        let actions: Vec<&str> = events["data"].as_array().unwrap().iter().map(|ev| ev["action"].as_str().unwrap()).collect();
        // The purchase creates the entitlement and gives it the order's period (one delivery).
        assert_eq!(actions, ["entitlement.created", "entitlement.updated", "entitlement.renewed", "entitlement.refunded"], "{events}");
        assert!(events["data"].as_array().unwrap().iter().all(|ev| ev["actor_kind"] == "storefront"));
    }
}
