//! The console's storefront pages over HTTP: an admin connects a storefront, rotates its secret
//! and maps a price; a signed delivery arrives; support finds it in the inspector and replays it;
//! other roles' forged posts and other tenants' ids change nothing.

use chrono::{Duration, Utc};
use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::commerce::{deliver, order_entitlement, SECRET};
use crate::console::staff_visitor;
use crate::helpers::*;
use crate::portal::{Page, Visitor};
use entitle_server::domain::staff::StaffRole;

/// A page's text as a browser shows it (MiniJinja escapes `/` and quotes).
fn text(page: &Page) -> String {
    page.body
        .replace("&#x2f;", "/")
        .replace("&quot;", "\"")
        .replace("&#x27;", "'")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&amp;", "&")
}

/// Stripe's checkout (the buyer's email) and subscription (the price bought) for `order`.
fn stripe_order(order: &str, price: &str) -> [(String, Value); 2] {
    let now = Utc::now();
    [
        (
            format!("evt_cs_{order}"),
            json!({"id": format!("evt_cs_{order}"), "type": "checkout.session.completed", "created": now.timestamp(),
                "data": {"object": {"id": format!("cs_{order}"), "mode": "subscription", "payment_status": "paid",
                    "subscription": order, "customer": "cus_1", "metadata": {},
                    "customer_details": {"email": "buyer@shop.example", "name": "Buyer"}}}}),
        ),
        (
            format!("evt_sub_{order}"),
            json!({"id": format!("evt_sub_{order}"), "type": "customer.subscription.updated", "created": now.timestamp() + 1,
                "data": {"object": {"id": order, "object": "subscription", "customer": "cus_1", "status": "active",
                    "cancel_at_period_end": false, "metadata": {}, "items": {"data": [
                        {"price": {"id": price}, "quantity": 1,
                         "current_period_end": (now + Duration::days(30)).timestamp()}]}}}}),
        ),
    ]
}

fn connection_of(location: &str) -> String {
    let rest = location.split("/storefronts/connections/").nth(1).unwrap();
    rest.split('?').next().unwrap().to_owned()
}

backend_test! {
    async fn an_admin_connects_stripe_and_support_replays_a_delivery(app) {
        let t = app.tenant("Acme").await;
        seed_catalogue(app, &t.key).await;
        let mut admin = staff_visitor(app, &t.id, "ada@acme.example", StaffRole::Admin).await;
        let base = admin.base.clone();
        let list = admin.get(&format!("{base}/storefronts")).await;
        assert_eq!(list.status, StatusCode::OK);
        assert!(list.body.contains("Connect a storefront"));
        let csrf = Visitor::csrf(&list);

        // A rule of the API, shown next to its field, the other values kept, the secret not.
        let bad = admin
            .post(&format!("{base}/storefronts"), &[("csrf", &csrf), ("provider", "stripe"), ("name", "Stripe shop"), ("secret", "short")])
            .await;
        assert_eq!(bad.status, StatusCode::UNPROCESSABLE_ENTITY);
        assert!(text(&bad).contains("give 1 to 5 signing secrets"), "{}", bad.body);
        assert!(bad.body.contains("field-error") && bad.body.contains("value=\"Stripe shop\""));
        assert!(!bad.body.contains("value=\"short\""), "a secret is never shown again");

        let created = admin
            .post(&format!("{base}/storefronts"), &[("csrf", &csrf), ("provider", "stripe"), ("name", "Stripe shop"), ("secret", "old-secret-123")])
            .await;
        assert_eq!(created.status, StatusCode::SEE_OTHER, "{}", created.body);
        let conn = connection_of(created.location.as_deref().unwrap());
        let view = app.fetch(&t.key, &format!("/api/v1/storefront-connections/{conn}")).await;
        assert_eq!((view["provider"].clone(), view["name"].clone(), view["secret_count"].clone()), (json!("stripe"), json!("Stripe shop"), json!(1)));
        let page = admin.get(&format!("{base}/storefronts/connections/{conn}?done=created")).await;
        assert_eq!(page.status, StatusCode::OK);
        assert!(text(&page).contains(view["webhook_url"].as_str().unwrap()), "the webhook URL to copy");
        assert!(page.body.contains("data-copy"));
        assert!(!page.body.contains("old-secret-123"));

        // Signed with a secret the connection does not have yet: refused.
        let [checkout, subscription] = stripe_order("sub_console", "price_new");
        let (status, _) = deliver(app, &conn, "stripe", &checkout.0, &checkout.1).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);

        // Rotation: add the new secret (both valid), later keep only it.
        let csrf = Visitor::csrf(&page);
        let added = admin.post(&format!("{base}/storefronts/connections/{conn}/add-secret"), &[("csrf", &csrf), ("secret", SECRET)]).await;
        assert_eq!(added.status, StatusCode::SEE_OTHER, "{}", added.body);
        assert_eq!(app.fetch(&t.key, &format!("/api/v1/storefront-connections/{conn}")).await["secret_count"], 2);
        let twice = admin.post(&format!("{base}/storefronts/connections/{conn}/add-secret"), &[("csrf", &csrf), ("secret", SECRET)]).await;
        assert_eq!(twice.status, StatusCode::UNPROCESSABLE_ENTITY);
        assert!(twice.body.contains("secret-error"));
        let page = admin.get(&format!("{base}/storefronts/connections/{conn}")).await;
        assert!(page.body.contains("/keep-newest\""), "removal offered behind a confirmation");
        let kept = admin.post(&format!("{base}/storefronts/connections/{conn}/keep-newest"), &[("csrf", &csrf)]).await;
        assert_eq!(kept.status, StatusCode::SEE_OTHER);
        assert_eq!(app.fetch(&t.key, &format!("/api/v1/storefront-connections/{conn}")).await["secret_count"], 1);

        // The new secret (kept) verifies; the price is not mapped yet.
        let (status, _) = deliver(app, &conn, "stripe", &checkout.0, &checkout.1).await;
        assert_eq!(status, StatusCode::OK);
        let (status, receipt) = deliver(app, &conn, "stripe", &subscription.0, &subscription.1).await;
        assert_eq!(status, StatusCode::OK, "{receipt}");
        assert_eq!(receipt["deliveries"][0]["outcome"], "unmapped", "{receipt}");
        let unmapped = receipt["deliveries"][0]["id"].as_str().unwrap().to_owned();
        assert!(order_entitlement(app, &t.key, "sub_console").await.is_none());

        // A mapping through the page: the API's errors next to the field, then the mapping.
        let unknown = admin
            .post(&format!("{base}/storefronts/connections/{conn}/mappings"), &[("csrf", &csrf), ("provider_ref", "price_new"), ("sku", "NOPE"), ("trial_sku", ""), ("quantity_mode", "seats")])
            .await;
        assert_eq!(unknown.status, StatusCode::UNPROCESSABLE_ENTITY);
        assert!(unknown.body.contains("sku-error") && unknown.body.contains("no offering has the SKU NOPE"), "{}", unknown.body);
        assert!(unknown.body.contains("value=\"price_new\""), "the entered values are kept");
        let trial = admin
            .post(&format!("{base}/storefronts/connections/{conn}/mappings"), &[("csrf", &csrf), ("provider_ref", "price_new"), ("sku", "PRO-M"), ("trial_sku", "TRIAL-X"), ("quantity_mode", "seats")])
            .await;
        assert_eq!(trial.status, StatusCode::UNPROCESSABLE_ENTITY);
        assert!(trial.body.contains("trial_sku-error"), "{}", trial.body);
        let mapped = admin
            .post(&format!("{base}/storefronts/connections/{conn}/mappings"), &[("csrf", &csrf), ("provider_ref", "price_new"), ("sku", "PRO-M"), ("trial_sku", ""), ("quantity_mode", "seats")])
            .await;
        assert_eq!(mapped.status, StatusCode::SEE_OTHER, "{}", mapped.body);
        let mappings = app.fetch(&t.key, &format!("/api/v1/storefront-mappings?connection_id={conn}")).await;
        assert_eq!(mappings["data"][0]["provider_ref"], "price_new");
        assert_eq!(mappings["data"][0]["sku"], "PRO-M");
        let again = admin
            .post(&format!("{base}/storefronts/connections/{conn}/mappings"), &[("csrf", &csrf), ("provider_ref", "price_new"), ("sku", "PRO-M")])
            .await;
        assert_eq!(again.status, StatusCode::UNPROCESSABLE_ENTITY);
        assert!(again.body.contains("provider_ref-error"));

        // Support finds the delivery in the inspector, reads it, and replays it.
        let mut support = staff_visitor(app, &t.id, "sam@acme.example", StaffRole::Support).await;
        let inspector = support.get(&format!("{base}/storefronts/deliveries?outcome=unmapped&connection={conn}")).await;
        assert_eq!(inspector.status, StatusCode::OK);
        assert!(text(&inspector).contains(&format!("{base}/storefronts/deliveries/{unmapped}")), "{}", inspector.body);
        let applied = support.get(&format!("{base}/storefronts/deliveries?outcome=applied")).await;
        assert!(!text(&applied).contains(&unmapped), "filtered by outcome");
        let delivery = support.get(&format!("{base}/storefronts/deliveries/{unmapped}")).await;
        assert_eq!(delivery.status, StatusCode::OK);
        let shown = text(&delivery);
        assert!(shown.contains("\"type\": \"customer.subscription.updated\""), "pretty-printed JSON: {shown}");
        assert!(shown.contains("stripe-signature") && shown.contains("verified") && shown.contains("unmapped"));
        assert!(shown.contains("/replay\""), "support may replay");
        let csrf = Visitor::csrf(&delivery);

        // A viewer sees it but may not replay, even with a valid token.
        let mut viewer = staff_visitor(app, &t.id, "vic@acme.example", StaffRole::Viewer).await;
        let seen = viewer.get(&format!("{base}/storefronts/deliveries/{unmapped}")).await;
        assert_eq!(seen.status, StatusCode::OK);
        assert!(!seen.body.contains("/replay\""));
        let viewer_csrf = Visitor::csrf(&seen);
        let deliveries_before = app.fetch(&t.key, "/api/v1/storefront-deliveries?limit=200").await;
        let refused = viewer.post(&format!("{base}/storefronts/deliveries/{unmapped}/replay"), &[("csrf", &viewer_csrf)]).await;
        assert_eq!(refused.status, StatusCode::FORBIDDEN);
        assert_eq!(app.fetch(&t.key, "/api/v1/storefront-deliveries?limit=200").await, deliveries_before, "nothing replayed");
        assert!(order_entitlement(app, &t.key, "sub_console").await.is_none());

        let replayed = support.post(&format!("{base}/storefronts/deliveries/{unmapped}/replay"), &[("csrf", &csrf)]).await;
        assert_eq!(replayed.status, StatusCode::SEE_OTHER, "{}", replayed.body);
        let record = support.get(replayed.location.as_deref().unwrap()).await;
        assert!(record.body.contains("Replayed") && record.body.contains("applied"), "{}", record.body);
        let replay_id = replayed.location.as_deref().unwrap().rsplit('/').next().unwrap().split('?').next().unwrap().to_owned();
        let later = text(&support.get(&format!("{base}/storefronts/deliveries?after={unmapped}")).await);
        assert!(later.contains(&replay_id) && !later.contains(&format!("deliveries/{unmapped}\"")), "paged after an id");
        let e = order_entitlement(app, &t.key, "sub_console").await.expect("the replay made the entitlement");
        assert_eq!(e["sku"], "PRO-M");
        let events = app.fetch(&t.key, &format!("/api/v1/events?object_id={unmapped}")).await;
        let event = events["data"].as_array().unwrap().iter().find(|ev| ev["action"] == "storefront_delivery.replayed").expect("the replay is recorded");
        assert_eq!(event["actor_kind"], "staff", "the staff member is the actor");
        let events = app.fetch(&t.key, &format!("/api/v1/events?object_id={conn}")).await;
        assert!(events["data"].as_array().unwrap().iter().all(|ev| ev["actor_kind"] == "staff"), "{events}");

        // The entitlement page lists the deliveries of its order.
        let page = support.get(&format!("{base}/entitlements/{}", e["id"].as_str().unwrap())).await;
        assert_eq!(page.status, StatusCode::OK);
        let shown = text(&page);
        assert!(shown.contains("Storefront deliveries"));
        assert!(shown.contains(&format!("{base}/storefronts/deliveries/{unmapped}")), "{shown}");
        assert!(shown.contains(&format!("{base}/storefronts/deliveries/{}", receipt["deliveries"][0]["id"].as_str().unwrap())));
        // Its history names the delivery that made it, with a link.
        assert!(page.body.contains(&format!("/storefronts/deliveries/{replay_id}\">storefront {replay_id}</a>")), "{}", page.body);

        // Support and viewers: every admin-only post is refused and changes nothing.
        let mapping = mappings["data"][0]["id"].as_str().unwrap().to_owned();
        let connection_before = app.fetch(&t.key, &format!("/api/v1/storefront-connections/{conn}")).await;
        let support_csrf = csrf;
        for (who, csrf) in [(&mut support, support_csrf), (&mut viewer, viewer_csrf)] {
            let forged = [
                (format!("{base}/storefronts"), vec![("provider", "stripe"), ("name", "Forged"), ("secret", "forged-secret")]),
                (format!("{base}/storefronts/connections/{conn}/add-secret"), vec![("secret", "forged-secret")]),
                (format!("{base}/storefronts/connections/{conn}/keep-newest"), vec![]),
                (format!("{base}/storefronts/connections/{conn}/settings"), vec![("name", "Forged"), ("api_key", "rk_forged")]),
                (format!("{base}/storefronts/connections/{conn}/mappings"), vec![("provider_ref", "price_forged"), ("sku", "PRO-P")]),
                (format!("{base}/storefronts/mappings/{mapping}/delete"), vec![]),
            ];
            for (path, mut fields) in forged {
                fields.push(("csrf", csrf.as_str()));
                assert_eq!(who.post(&path, &fields).await.status, StatusCode::FORBIDDEN, "{path}");
            }
        }
        assert_eq!(app.fetch(&t.key, &format!("/api/v1/storefront-connections/{conn}")).await, connection_before);
        assert_eq!(app.fetch(&t.key, "/api/v1/storefront-connections").await["data"].as_array().unwrap().len(), 1);
        assert_eq!(app.fetch(&t.key, "/api/v1/storefront-mappings").await["data"].as_array().unwrap().len(), 1);

        // The admin deletes the mapping, after the confirmation.
        let page = admin.get(&format!("{base}/storefronts/connections/{conn}")).await;
        assert!(page.body.contains("Yes, delete the mapping"));
        let csrf = Visitor::csrf(&page);
        let deleted = admin.post(&format!("{base}/storefronts/mappings/{mapping}/delete"), &[("csrf", &csrf)]).await;
        assert_eq!(deleted.status, StatusCode::SEE_OTHER);
        assert!(deleted.location.unwrap().contains(&conn));
        assert!(app.fetch(&t.key, "/api/v1/storefront-mappings").await["data"].as_array().unwrap().is_empty());
    }
}

backend_test! {
    async fn api_settings_are_never_shown_and_other_tenants_ids_are_not_found(app) {
        let t = app.tenant("Acme").await;
        seed_catalogue(app, &t.key).await;
        let mut admin = staff_visitor(app, &t.id, "ada@acme.example", StaffRole::Admin).await;
        let base = admin.base.clone();
        let csrf = Visitor::csrf(&admin.get(&format!("{base}/storefronts")).await);
        let created = admin
            .post(&format!("{base}/storefronts"), &[("csrf", &csrf), ("provider", "paddle"), ("name", "Paddle"), ("secret", SECRET)])
            .await;
        assert_eq!(created.status, StatusCode::SEE_OTHER, "{}", created.body);
        let conn = connection_of(created.location.as_deref().unwrap());

        // The API key is stored, never displayed; a base URL the operator does not allow is refused.
        let saved = admin
            .post(&format!("{base}/storefronts/connections/{conn}/settings"), &[("csrf", &csrf), ("name", "Paddle EU"), ("api_key", "pdl_live_secret_key_1"), ("api_base_url", "")])
            .await;
        assert_eq!(saved.status, StatusCode::SEE_OTHER, "{}", saved.body);
        let view = app.fetch(&t.key, &format!("/api/v1/storefront-connections/{conn}")).await;
        assert_eq!((view["name"].clone(), view["api_configured"].clone()), (json!("Paddle EU"), json!(true)));
        let page = admin.get(&format!("{base}/storefronts/connections/{conn}")).await;
        assert!(!page.body.contains("pdl_live_secret_key_1") && !page.body.contains(SECRET));
        assert!(page.body.contains("Provider API key</dt><dd>set"));
        let list = admin.get(&format!("{base}/storefronts")).await;
        assert!(!list.body.contains("pdl_live_secret_key_1"));
        let refused = admin
            .post(&format!("{base}/storefronts/connections/{conn}/settings"), &[("csrf", &csrf), ("name", "Paddle EU"), ("api_key", "pdl_other_key_22"), ("api_base_url", "https://evil.example")])
            .await;
        assert_eq!(refused.status, StatusCode::UNPROCESSABLE_ENTITY);
        assert!(refused.body.contains("api_base_url-error"), "{}", refused.body);
        assert!(text(&refused).contains("https://evil.example"), "the entered value is kept");
        assert!(!refused.body.contains("pdl_other_key_22"));
        assert_eq!(app.fetch(&t.key, &format!("/api/v1/storefront-connections/{conn}")).await, view);

        // The storefront's semantics: its dates' zone and what refunds and cancellations do.
        let settings = format!("{base}/storefronts/connections/{conn}/settings");
        let bad_zone = admin.post(&settings, &[("csrf", &csrf), ("name", "Paddle EU"), ("time_zone", "Mars/Olympus"), ("flags", "1")]).await;
        assert_eq!(bad_zone.status, StatusCode::UNPROCESSABLE_ENTITY);
        assert!(bad_zone.body.contains("time_zone-error"), "{}", bad_zone.body);
        let saved = admin
            .post(&settings, &[("csrf", &csrf), ("name", "Paddle EU"), ("time_zone", "Europe/Berlin"), ("flags", "1"), ("disable_on_any_refund", "on")])
            .await;
        assert_eq!(saved.status, StatusCode::SEE_OTHER, "{}", saved.body);
        let view = app.fetch(&t.key, &format!("/api/v1/storefront-connections/{conn}")).await;
        assert_eq!((view["time_zone"].clone(), view["disable_on_any_refund"].clone(), view["grace_after_cancel"].clone()),
            (json!("Europe/Berlin"), json!(true), json!(false)));
        let page = admin.get(&format!("{base}/storefronts/connections/{conn}")).await;
        assert!(page.body.contains("any refund disables") && page.body.contains("Europe/Berlin"));
        // A form without the checkboxes (an older page) leaves them alone.
        admin.post(&settings, &[("csrf", &csrf), ("name", "Paddle EU")]).await;
        assert_eq!(app.fetch(&t.key, &format!("/api/v1/storefront-connections/{conn}")).await["disable_on_any_refund"], true);

        // Another tenant's connection, mapping and delivery: not found, by page and by post.
        let b = app.tenant("Beta").await;
        seed_catalogue(app, &b.key).await;
        let theirs = crate::commerce::connection(app, &b.key, "generic").await;
        let mapping = app.create(&b.key, "/api/v1/storefront-mappings", json!({"connection_id": theirs, "provider_ref": "p1", "sku": "PRO-M"})).await;
        let mapping = mapping["id"].as_str().unwrap();
        let body = crate::commerce::generic("purchase", "order-b", Utc::now(), Some(("PRO-M", 1)), None, Some("b@beta.example"));
        let (status, receipt) = deliver(app, &theirs, "generic", "msg-b", &body).await;
        assert_eq!(status, StatusCode::OK);
        let delivery = receipt["deliveries"][0]["id"].as_str().unwrap();
        assert_eq!(admin.get(&format!("{base}/storefronts/connections/{theirs}")).await.status, StatusCode::NOT_FOUND);
        assert_eq!(admin.get(&format!("{base}/storefronts/deliveries/{delivery}")).await.status, StatusCode::NOT_FOUND);
        let inspector = admin.get(&format!("{base}/storefronts/deliveries?connection={theirs}")).await;
        assert!(!inspector.body.contains(delivery));
        for (path, fields) in [
            (format!("{base}/storefronts/connections/{theirs}/add-secret"), vec![("secret", "intruder-secret")]),
            (format!("{base}/storefronts/connections/{theirs}/keep-newest"), vec![]),
            (format!("{base}/storefronts/connections/{theirs}/settings"), vec![("name", "Mine")]),
            (format!("{base}/storefronts/connections/{theirs}/mappings"), vec![("provider_ref", "p2"), ("sku", "PRO-M")]),
            (format!("{base}/storefronts/mappings/{mapping}/delete"), vec![]),
            (format!("{base}/storefronts/deliveries/{delivery}/replay"), vec![]),
        ] {
            let mut fields = fields;
            fields.push(("csrf", csrf.as_str()));
            assert_eq!(admin.post(&path, &fields).await.status, StatusCode::NOT_FOUND, "{path}");
        }
        let view = app.fetch(&b.key, &format!("/api/v1/storefront-connections/{theirs}")).await;
        assert_eq!((view["name"].clone(), view["secret_count"].clone()), (json!("generic shop"), json!(2)));
        assert_eq!(app.fetch(&b.key, "/api/v1/storefront-mappings").await["data"].as_array().unwrap().len(), 1);
        assert_eq!(app.fetch(&b.key, "/api/v1/storefront-deliveries").await["data"].as_array().unwrap().len(), 1);
    }
}
