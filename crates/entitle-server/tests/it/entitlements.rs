use chrono::{Duration, Months, Utc};
use reqwest::{Method, StatusCode};
use serde_json::json;

use crate::helpers::{backend_test, entitle, join_all, seed_catalogue, time};

backend_test! {
    async fn an_entitlement_copies_its_offering(app) {
        let t = app.tenant("Acme").await;
        let c = seed_catalogue(app, &t.key).await;
        let before = Utc::now() - Duration::seconds(1);
        let e = entitle(app, &t.key, &c.customer_id, "PRO-M", 3).await;
        assert!(e["id"].as_str().unwrap().starts_with("ent_"));
        assert_eq!(e["status"], "active");
        assert_eq!(e["sku"], "PRO-M");
        assert_eq!(e["order_ref"], "order-1");
        assert_eq!(e["quantity"], 3);
        assert_eq!(e["seat_count"], 15, "5 seats x 3");
        assert_eq!(e["overdraft"], json!({"kind": "absolute", "value": 2}));
        assert_eq!(e["overdraft_seats"], 2);
        assert_eq!(e["concurrency_mode"], "node_locked");
        assert_eq!(e["grace_period"], json!({"unit": "day", "count": 5}), "from the product");
        assert_eq!(e["plan"]["license_type"], "subscription");
        let starts = time(&e["starts_at"]);
        let expires = time(&e["expires_at"]);
        assert!(starts >= before && starts <= Utc::now());
        assert_eq!(expires, starts.checked_add_months(Months::new(1)).unwrap(), "one calendar month");
        assert_eq!(time(&e["grace_expires_at"]), expires + Duration::days(5));
        let features = e["features"].as_array().unwrap();
        assert_eq!(features.len(), 3);
        assert_eq!(features[1], json!({"key": "nodes", "kind": "element_pool", "enabled": true, "limit": 4,
                                       "overdraft": 0, "used": 0, "overridden": false}));
        assert_eq!(e["attributes"], json!([{"key": "max_users", "kind": "number", "value": 10, "overridden": false}]));
        assert_eq!(e["overridden_fields"], json!([]));
        let code = e["activation_code"].as_str().unwrap();
        assert_eq!(code.len(), 29);
        assert_eq!(code.matches('-').count(), 5);
        assert_eq!(app.fetch(&t.key, &format!("/api/v1/entitlements/{}", e["id"].as_str().unwrap())).await, e);

        let perpetual = entitle(app, &t.key, &c.customer_id, "PRO-P", 1).await;
        assert_eq!(perpetual["expires_at"], json!(null));
        assert_eq!(perpetual["status"], "active");
        let other = entitle(app, &t.key, &c.customer_id, "BASIC-M", 1).await;
        assert_ne!(other["activation_code"], e["activation_code"]);

        let listed = app.fetch(&t.key, &format!("/api/v1/entitlements?customer_id={}&sku=PRO-M", c.customer_id)).await;
        assert_eq!(listed["data"].as_array().unwrap().len(), 1);
        let by_order = app.fetch(&t.key, "/api/v1/entitlements?order_ref=order-1").await;
        assert_eq!(by_order["data"].as_array().unwrap().len(), 3);
    }
}

backend_test! {
    async fn status_follows_dates_and_flags(app) {
        let t = app.tenant("Acme").await;
        let c = seed_catalogue(app, &t.key).await;
        let plan = app.create(&t.key, "/api/v1/plans", json!({"product_id": c.product_id, "name": "On activation",
            "license_type": "subscription", "duration": {"unit": "year", "count": 1}, "start": "on_first_activation"})).await;
        app.create(&t.key, "/api/v1/offerings", json!({"sku": "PRO-Y-LATE", "name": "x",
            "edition_id": c.pro_edition, "plan_id": plan["id"]})).await;
        let late = entitle(app, &t.key, &c.customer_id, "PRO-Y-LATE", 1).await;
        assert_eq!(late["status"], "created");
        assert_eq!(late["starts_at"], json!(null));

        let e = entitle(app, &t.key, &c.customer_id, "PRO-M", 1).await;
        let path = format!("/api/v1/entitlements/{}", e["id"].as_str().unwrap());
        let in_grace = (Utc::now() - Duration::days(2)).to_rfc3339();
        let patched = app.act(Method::PATCH, &t.key, &path, json!({"expires_at": in_grace})).await;
        assert_eq!(patched["status"], "grace");
        let expired = (Utc::now() - Duration::days(6)).to_rfc3339();
        assert_eq!(app.act(Method::PATCH, &t.key, &path, json!({"expires_at": expired})).await["status"], "expired");

        let disabled = app.act(Method::POST, &t.key, &format!("{path}/disable"), json!({})).await;
        assert_eq!(disabled["status"], "disabled");
        assert!(disabled["disabled_at"].is_string());
        let again = app.act(Method::POST, &t.key, &format!("{path}/disable"), json!({})).await;
        assert_eq!(again["disabled_at"], disabled["disabled_at"], "disabling twice keeps the first date");
        let enabled = app.act(Method::POST, &t.key, &format!("{path}/enable"), json!({})).await;
        assert_eq!(enabled["status"], "expired");
        assert_eq!(enabled["disabled_at"], json!(null));
    }
}

backend_test! {
    async fn renewal_extends_from_expiry_or_from_now_and_resets_usage(app) {
        let t = app.tenant("Acme").await;
        let c = seed_catalogue(app, &t.key).await;
        let e = entitle(app, &t.key, &c.customer_id, "PRO-M", 1).await;
        let id = e["id"].as_str().unwrap();
        let path = format!("/api/v1/entitlements/{id}");
        let expiry = time(&e["expires_at"]);

        app.sql(&format!("UPDATE entitlement_features SET used = 7 WHERE entitlement_id = '{id}'")).await.unwrap();
        let renewed = app.act(Method::POST, &t.key, &format!("{path}/renew"), json!({})).await;
        assert_eq!(time(&renewed["expires_at"]), expiry.checked_add_months(Months::new(1)).unwrap());
        let used: Vec<_> = renewed["features"].as_array().unwrap().iter().map(|f| (f["key"].clone(), f["used"].clone())).collect();
        assert_eq!(used, [(json!("export"), json!(7)), (json!("nodes"), json!(7)), (json!("renders"), json!(0))],
            "only usage counters reset; checked-out pool units stay");

        // In grace: continues from the old expiry, no gap and no loss.
        let grace_expiry = Utc::now() - Duration::days(2);
        app.act(Method::PATCH, &t.key, &path, json!({"expires_at": grace_expiry.to_rfc3339()})).await;
        let renewed = app.act(Method::POST, &t.key, &format!("{path}/renew"), json!({"duration": {"unit": "day", "count": 30}})).await;
        let expected = grace_expiry + Duration::days(30);
        assert!((time(&renewed["expires_at"]) - expected).num_milliseconds().abs() <= 1);
        assert_eq!(renewed["overridden_fields"], json!([]), "a renewal sets the expiry explicitly");

        // Expired beyond grace: runs from now.
        app.act(Method::PATCH, &t.key, &path, json!({"expires_at": (Utc::now() - Duration::days(60)).to_rfc3339()})).await;
        let before = Utc::now();
        let renewed = app.act(Method::POST, &t.key, &format!("{path}/renew"), json!({"duration": {"unit": "day", "count": 30}})).await;
        let new_expiry = time(&renewed["expires_at"]);
        assert!(new_expiry >= before + Duration::days(30) - Duration::seconds(1) && new_expiry <= Utc::now() + Duration::days(30));
        assert_eq!(renewed["status"], "active");

        let perpetual = entitle(app, &t.key, &c.customer_id, "PRO-P", 1).await;
        let refused = app.post(&t.key, &format!("/api/v1/entitlements/{}/renew", perpetual["id"].as_str().unwrap()), json!({})).await;
        assert_eq!(refused.status, StatusCode::UNPROCESSABLE_ENTITY);
        assert_eq!(refused.body["error"]["code"], "not_renewable");
        // A renewal without any body at all uses the plan's duration.
        let bare = app.request(Method::POST, Some(&t.key), &format!("{path}/renew"), None).await;
        assert_eq!(bare.status, StatusCode::OK, "{}", bare.body);
    }
}

backend_test! {
    async fn overrides_stick_follow_nothing_and_can_be_reset(app) {
        let t = app.tenant("Acme").await;
        let c = seed_catalogue(app, &t.key).await;
        let e = entitle(app, &t.key, &c.customer_id, "PRO-M", 2).await;
        let path = format!("/api/v1/entitlements/{}", e["id"].as_str().unwrap());
        let patched = app.act(Method::PATCH, &t.key, &path, json!({
            "seat_count": 50,
            "lease_period": {"unit": "hour", "count": 6},
            "features": [{"key": "renders", "limit": 5000}, {"key": "export", "enabled": false}],
            "attributes": [{"key": "max_users", "value": 99}],
        })).await;
        assert_eq!(patched["seat_count"], 50);
        assert_eq!(patched["overridden_fields"],
            json!(["attributes.max_users", "features.export", "features.renders", "lease_period", "seat_count"]));
        let renders = &patched["features"][2];
        assert_eq!((renders["limit"].clone(), renders["overridden"].clone()), (json!(5000), json!(true)));
        assert_eq!(patched["features"][0]["enabled"], false);
        assert_eq!(patched["attributes"][0]["value"], 99);

        // The offering changes: non-overridden values follow, overridden ones stay.
        let offering = &c.offering_ids[1];
        app.act(Method::PATCH, &t.key, &format!("/api/v1/offerings/{offering}"),
            json!({"seat_count": 7, "concurrency_mode": "concurrent"})).await;
        app.act(Method::PATCH, &t.key, &format!("/api/v1/editions/{}", c.pro_edition),
            json!({"features": [{"key": "export"}, {"key": "nodes", "limit": 8}, {"key": "renders", "limit": 200}]})).await;
        let after = app.fetch(&t.key, &path).await;
        assert_eq!(after["seat_count"], 50, "overridden");
        assert_eq!(after["concurrency_mode"], "concurrent", "inherited");
        assert_eq!(after["features"][1]["limit"], 8, "inherited from the edition");
        assert_eq!(after["features"][2]["limit"], 5000, "overridden");

        let partly = app.act(Method::POST, &t.key, &format!("{path}/reset-overrides"),
            json!({"fields": ["seat_count", "features.renders"]})).await;
        assert_eq!(partly["seat_count"], 14, "7 seats x 2");
        assert_eq!(partly["features"][2]["limit"], 200);
        assert_eq!(partly["overridden_fields"], json!(["attributes.max_users", "features.export", "lease_period"]));

        let bad = app.post(&t.key, &format!("{path}/reset-overrides"), json!({"fields": ["colour"]})).await;
        assert_eq!(bad.body["error"]["code"], "invalid_field");

        let reset = app.act(Method::POST, &t.key, &format!("{path}/reset-overrides"), json!({})).await;
        assert_eq!(reset["overridden_fields"], json!([]));
        assert_eq!(reset["features"][0]["enabled"], true);
        assert_eq!(reset["attributes"][0]["value"], 10);
        assert_eq!(reset["lease_period"], json!({"unit": "day", "count": 1}));

        let unknown = app.patch(&t.key, &path, json!({"features": [{"key": "teleport"}]})).await;
        assert_eq!(unknown.body["error"]["code"], "unknown_feature");
    }
}

backend_test! {
    async fn expiry_override_resets_to_the_plan_expiry(app) {
        let t = app.tenant("Acme").await;
        let c = seed_catalogue(app, &t.key).await;
        let e = entitle(app, &t.key, &c.customer_id, "PRO-M", 1).await;
        let path = format!("/api/v1/entitlements/{}", e["id"].as_str().unwrap());
        let perpetual = app.act(Method::PATCH, &t.key, &path, json!({"expires_at": null})).await;
        assert_eq!(perpetual["expires_at"], json!(null));
        assert_eq!(perpetual["overridden_fields"], json!(["expires_at"]));
        let reset = app.act(Method::POST, &t.key, &format!("{path}/reset-overrides"), json!({"fields": ["expires_at"]})).await;
        assert_eq!(reset["expires_at"], e["expires_at"]);
    }
}

backend_test! {
    async fn change_offering_and_add_seats(app) {
        let t = app.tenant("Acme").await;
        let c = seed_catalogue(app, &t.key).await;
        let e = entitle(app, &t.key, &c.customer_id, "BASIC-M", 1).await;
        let path = format!("/api/v1/entitlements/{}", e["id"].as_str().unwrap());

        let more = app.act(Method::POST, &t.key, &format!("{path}/add-seats"), json!({"count": 3})).await;
        assert_eq!(more["seat_count"], 4);
        assert_eq!(more["extra_seats"], 3);

        let upgraded = app.act(Method::POST, &t.key, &format!("{path}/change-offering"), json!({"sku": "PRO-M", "quantity": 2})).await;
        assert_eq!(upgraded["sku"], "PRO-M");
        assert_eq!(upgraded["seat_count"], 13, "5 x 2 + the 3 added");
        assert_eq!(upgraded["features"].as_array().unwrap().len(), 3);
        assert_eq!(upgraded["expires_at"], e["expires_at"], "a subscription keeps its period");

        let to_perpetual = app.act(Method::POST, &t.key, &format!("{path}/change-offering"), json!({"sku": "PRO-P"})).await;
        assert_eq!(to_perpetual["expires_at"], json!(null));
        assert_eq!(to_perpetual["plan"]["license_type"], "perpetual");

        let other = app.create(&t.key, "/api/v1/products", json!({"name": "Other"})).await;
        let edition = app.create(&t.key, "/api/v1/editions", json!({"product_id": other["id"], "name": "E"})).await;
        let plan = app.create(&t.key, "/api/v1/plans", json!({"product_id": other["id"], "name": "P", "license_type": "perpetual"})).await;
        app.create(&t.key, "/api/v1/offerings", json!({"sku": "OTHER", "name": "o", "edition_id": edition["id"], "plan_id": plan["id"]})).await;
        for (sku, code) in [("OTHER", "different_product"), ("NOPE", "unknown_sku")] {
            let refused = app.post(&t.key, &format!("{path}/change-offering"), json!({"sku": sku})).await;
            assert_eq!(refused.status, StatusCode::UNPROCESSABLE_ENTITY);
            assert_eq!(refused.body["error"]["code"], code);
        }
        let zero = app.post(&t.key, &format!("{path}/add-seats"), json!({"count": 0})).await;
        assert_eq!(zero.body["error"]["code"], "invalid_seat_count");
    }
}

backend_test! {
    async fn concurrent_actions_on_one_entitlement_all_apply(app) {
        let t = app.tenant("Acme").await;
        let c = seed_catalogue(app, &t.key).await;
        let e = entitle(app, &t.key, &c.customer_id, "PRO-M", 1).await;
        let path = format!("/api/v1/entitlements/{}/add-seats", e["id"].as_str().unwrap());
        let calls = (0..25).map(|_| app.post(&t.key, &path, json!({"count": 1})));
        for response in join_all(calls).await {
            assert_eq!(response.status, StatusCode::OK, "{}", response.body);
        }
        let after = app.fetch(&t.key, &format!("/api/v1/entitlements/{}", e["id"].as_str().unwrap())).await;
        assert_eq!(after["seat_count"], 30, "5 + 25: no lost update");
        assert_eq!(after["extra_seats"], 25);
        let events = app.fetch(&t.key, &format!("/api/v1/events?object_id={}&action=entitlement.seats_added&limit=200",
            e["id"].as_str().unwrap())).await;
        assert_eq!(events["data"].as_array().unwrap().len(), 25);
    }
}
