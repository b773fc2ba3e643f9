//! What each storefront's events mean, with the providers' published sample payloads where they
//! exist: a cancellation at the term end, local dates, partial refunds per line, a renewal that
//! lacks its date, permanent failures, one mail per order, deliveries resolved by later ones, and
//! a history that names the delivery that caused each change.

use base64::Engine;
use chrono::{DateTime, Duration, Utc};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use crate::commerce::{connection, deliver, generic, order_entitlement, SECRET};
use crate::helpers::{backend_test, configured_backend_test, seed_catalogue, time, TestApp};
use entitle_server::domain::zone::Zone;

fn fixture(path: &str) -> Value {
    let full = format!(
        "{}/../../../shared/fixtures/webhooks/{path}",
        env!("CARGO_MANIFEST_DIR")
    );
    serde_json::from_slice(&std::fs::read(&full).unwrap_or_else(|e| panic!("{full}: {e}"))).unwrap()
}

async fn map(app: &TestApp, key: &str, conn: &str, provider_ref: &str, sku: &str) {
    app.create(
        key,
        "/api/v1/storefront-mappings",
        json!({"connection_id": conn, "provider_ref": provider_ref, "sku": sku}),
    )
    .await;
}

/// The entitlement's history, oldest first.
async fn history(app: &TestApp, key: &str, entitlement: &Value) -> Vec<Value> {
    let id = entitlement["id"].as_str().unwrap();
    app.fetch(key, &format!("/api/v1/events?object_id={id}")).await["data"]
        .as_array()
        .unwrap()
        .clone()
}

fn actions(events: &[Value]) -> Vec<&str> {
    events.iter().map(|e| e["action"].as_str().unwrap()).collect()
}

async fn entitlement(app: &TestApp, key: &str, order: &str) -> Value {
    order_entitlement(app, key, order)
        .await
        .unwrap_or_else(|| panic!("no entitlement for {order}"))
}

backend_test! {
    async fn a_zuora_cancellation_at_the_term_end_keeps_the_licence_until_the_pacific_term_end(app) {
        let t = app.tenant("Acme").await;
        seed_catalogue(app, &t.key).await;
        let zuora = connection(app, &t.key, "zuora").await;
        let path = format!("/api/v1/storefront-connections/{zuora}");
        assert_eq!(app.fetch(&t.key, &path).await["time_zone"], "America/Los_Angeles", "Zuora's default zone");
        map(app, &t.key, &zuora, "rp_pro", "PRO-M").await;
        let la = Zone::parse("America/Los_Angeles").unwrap();
        let term_end = (Utc::now() + Duration::days(60)).date_naive();
        // Zuora's documented date-time form has no offset.
        let local = |at: DateTime<Utc>| at.naive_utc().format("%Y-%m-%dT%H:%M:%S").to_string();
        let callout = |event: &str, at: DateTime<Utc>, extra: Value| {
            let mut body = json!({"event": event, "timestamp": local(at), "subscription": "A-S77", "rate_plan": "rp_pro",
                "quantity": "1", "term_end": term_end.format("%Y-%m-%d").to_string(), "status": "Active",
                "email": "z@zuora.example"});
            for (field, value) in extra.as_object().unwrap() {
                body[field] = value.clone();
            }
            body
        };
        let (status, receipt) = deliver(app, &zuora, "zuora", "zn-1", &callout("CreateSubscription", Utc::now() - Duration::days(2), json!({}))).await;
        assert_eq!(status, StatusCode::OK, "{receipt}");
        assert_eq!(receipt["deliveries"][0]["outcome"], "applied");
        let e = entitlement(app, &t.key, "A-S77").await;
        assert_eq!(time(&e["expires_at"]), la.start_of(term_end), "the term ends at midnight Pacific, not UTC");

        // Cancelled today, effective at the term end: paid until then.
        let (_, receipt) = deliver(app, &zuora, "zuora", "zn-2",
            &callout("CancelSubscription", Utc::now() - Duration::days(1), json!({"status": "Cancelled"}))).await;
        assert_eq!(receipt["deliveries"][0]["outcome"], "applied", "{receipt}");
        let e = entitlement(app, &t.key, "A-S77").await;
        assert_eq!(e["status"], "active");
        assert_eq!(time(&e["expires_at"]), la.start_of(term_end));
        let events = history(app, &t.key, &e).await;
        let note = events.iter().find(|ev| ev["action"] == "entitlement.cancel_scheduled").expect("the scheduled cancellation is in the history");
        assert_eq!(note["actor_kind"], "storefront");
        assert_eq!(note["actor_id"], receipt["deliveries"][0]["id"], "the event names the delivery that caused it");
        assert!(events.iter().all(|ev| ev["actor_id"].as_str().unwrap().starts_with("dlv_")), "{events:?}");

        // Effective yesterday: the licence ends.
        let yesterday = (Utc::now() - Duration::days(1)).date_naive().format("%Y-%m-%d").to_string();
        deliver(app, &zuora, "zuora", "zn-3", &callout("CancelSubscription", Utc::now() - Duration::hours(12),
            json!({"status": "Cancelled", "effective_date": yesterday}))).await;
        let e = entitlement(app, &t.key, "A-S77").await;
        assert_ne!(e["status"], "active", "{e}");
        assert!(time(&e["expires_at"]) < Utc::now());

        // The zone is the connection's to set.
        let bad = app.patch(&t.key, &path, json!({"time_zone": "Mars/Olympus"})).await;
        assert_eq!(bad.status, StatusCode::UNPROCESSABLE_ENTITY);
        assert_eq!(bad.body["error"]["code"], "invalid_time_zone");
        let set = app.patch(&t.key, &path, json!({"time_zone": "europe/berlin"})).await;
        assert_eq!(set.status, StatusCode::OK);
        assert_eq!(app.fetch(&t.key, &path).await["time_zone"], "Europe/Berlin");
    }
}

backend_test! {
    async fn partial_refunds_are_recorded_and_change_nothing_full_ones_disable(app) {
        let t = app.tenant("Acme").await;
        seed_catalogue(app, &t.key).await;
        let ls = connection(app, &t.key, "lemon_squeezy").await;
        map(app, &t.key, &ls, "1", "PRO-P").await;
        // Lemon Squeezy's published sample order.
        let mut order = fixture("lemonsqueezy/pay-rails_order_created.json");
        let (status, receipt) = deliver(app, &ls, "lemon_squeezy", "ls-1", &order).await;
        assert_eq!(status, StatusCode::OK, "{receipt}");
        assert_eq!(receipt["deliveries"][0]["outcome"], "applied");
        let e = entitlement(app, &t.key, "order:1").await;
        assert_eq!(e["status"], "active");

        order["meta"]["event_name"] = json!("order_refunded");
        let a = &mut order["data"]["attributes"];
        a["status"] = json!("partial_refund");
        a["refunded"] = json!(true);
        a["refunded_amount"] = json!(1000);
        a["updated_at"] = json!("2023-01-18T10:00:00.000000Z");
        let (_, receipt) = deliver(app, &ls, "lemon_squeezy", "ls-2", &order).await;
        assert_eq!(receipt["deliveries"][0]["outcome"], "applied", "{receipt}");
        let e = entitlement(app, &t.key, "order:1").await;
        assert_eq!(e["status"], "active", "a partial refund changes nothing");
        assert!(e["disabled_at"].is_null());
        let events = history(app, &t.key, &e).await;
        assert!(actions(&events).contains(&"entitlement.partially_refunded"), "{events:?}");

        let a = &mut order["data"]["attributes"];
        a["status"] = json!("refunded");
        a["refunded_amount"] = json!(5899);
        a["updated_at"] = json!("2023-01-19T10:00:00.000000Z");
        deliver(app, &ls, "lemon_squeezy", "ls-3", &order).await;
        let e = entitlement(app, &t.key, "order:1").await;
        assert_eq!(e["status"], "disabled", "a full refund disables");
        assert_eq!(actions(&history(app, &t.key, &e).await).last(), Some(&"entitlement.refunded"));

        // A connection set to disable on any refund.
        let strict = app.create(&t.key, "/api/v1/storefront-connections", json!({"provider": "generic", "name": "strict",
            "secrets": [SECRET], "disable_on_any_refund": true})).await;
        assert_eq!(strict["disable_on_any_refund"], true);
        let strict = strict["id"].as_str().unwrap().to_owned();
        let now = Utc::now();
        deliver(app, &strict, "generic", "g-1", &generic("purchase", "g-order", now, Some(("PRO-M", 1)), Some(now + Duration::days(30)), Some("g@example.com"))).await;
        deliver(app, &strict, "generic", "g-2", &generic("partial_refund", "g-order", now + Duration::seconds(1), None, None, None)).await;
        assert_eq!(entitlement(app, &t.key, "g-order").await["status"], "disabled");
    }
}

backend_test! {
    async fn a_shopify_refund_takes_back_only_the_lines_it_refunds_in_full_and_one_mail_serves_the_order(app) {
        let t = app.tenant("Acme").await;
        seed_catalogue(app, &t.key).await;
        let shop = connection(app, &t.key, "shopify").await;
        map(app, &t.key, &shop, "49121760117052", "PRO-P").await;
        map(app, &t.key, &shop, "49121760182588", "BASIC-M").await;
        // Shopify's sample order (a voided test notification: paid here), two lines.
        let mut order = fixture("shopify/shopify-test-notification-order_via-kanvas-ecosystem-api.json");
        order["financial_status"] = json!("paid");
        order["__topic"] = json!("orders/paid");
        let (status, receipt) = deliver(app, &shop, "shopify", "sh-1", &order).await;
        assert_eq!(status, StatusCode::OK, "{receipt}");
        let first = entitlement(app, &t.key, "820982911946154508").await;
        let second = entitlement(app, &t.key, "820982911946154508%232").await;
        let mails = app.fetch(&t.key, "/api/v1/mails").await;
        assert_eq!(mails["data"].as_array().unwrap().len(), 1, "one credentials mail for the order: {mails}");
        let objects = receipt["deliveries"][0]["objects"].as_array().unwrap().clone();
        assert!(objects.contains(&first["id"]) && objects.contains(&second["id"]) && objects.contains(&mails["data"][0]["id"]));

        // A goodwill refund names no line: nothing changes, the refund is recorded.
        let refund = |id: u64, lines: Value| json!({"id": id, "order_id": 820982911946154508u64, "created_at": Utc::now().to_rfc3339(),
            "refund_line_items": lines, "__topic": "refunds/create"});
        deliver(app, &shop, "shopify", "sh-2", &refund(1, json!([]))).await;
        for (order_ref, e) in [("820982911946154508", &first), ("820982911946154508%232", &second)] {
            assert_eq!(entitlement(app, &t.key, order_ref).await["status"], "active");
            assert!(actions(&history(app, &t.key, e).await).contains(&"entitlement.partially_refunded"));
        }
        // The first line refunded in full: only its licence is taken back.
        let line = json!([{"line_item_id": 866550311766439020u64, "quantity": 1, "line_item": {"id": 866550311766439020u64,
            "variant_id": 49121760117052u64, "product_id": 9313716535612u64, "quantity": 1, "sku": null}}]);
        deliver(app, &shop, "shopify", "sh-3", &refund(2, line)).await;
        assert_eq!(entitlement(app, &t.key, "820982911946154508").await["status"], "disabled");
        assert_eq!(entitlement(app, &t.key, "820982911946154508%232").await["status"], "active");
    }
}

/// A local stand-in for FastSpring's API (basic authentication, `user:password`).
async fn fake_fastspring(next: i64) -> String {
    use axum::extract::Path;
    use axum::http::HeaderMap;
    use axum::response::IntoResponse;
    use axum::routing::get;
    let app = axum::Router::new().route(
        "/subscriptions/{id}",
        get(move |Path(id): Path<String>, headers: HeaderMap| async move {
            let expected = format!(
                "Basic {}",
                base64::engine::general_purpose::STANDARD.encode("fsuser:fspass")
            );
            if headers.get("authorization").and_then(|v| v.to_str().ok()) != Some(expected.as_str()) {
                return (axum::http::StatusCode::UNAUTHORIZED, axum::Json(json!({}))).into_response();
            }
            axum::Json(json!({"id": id, "state": "active", "next": next})).into_response()
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    base
}

fn fastspring_batch(events: &[(&str, &str, Value)]) -> Value {
    let created = Utc::now().timestamp_millis();
    let events: Vec<Value> = events
        .iter()
        .enumerate()
        .map(|(n, (id, kind, data))| json!({"id": id, "type": kind, "created": created + n as i64, "live": false, "data": data}))
        .collect();
    json!({ "events": events })
}

configured_backend_test! {
    configure: |layer: &mut entitle_server::config::ConfigLayer| layer.provider_api_allow_hosts = Some("127.0.0.1".into()),
    async fn a_fastspring_renewal_without_its_date_waits_until_the_api_gives_it(app) {
        let t = app.tenant("Acme").await;
        seed_catalogue(app, &t.key).await;
        let fs = connection(app, &t.key, "fastspring").await;
        map(app, &t.key, &fs, "falcon-monthly-subscriptions", "PRO-M").await;
        let subscription = "ttyyWWxQRv-P0WXUYXphzg";
        // FastSpring's sample order (webhook expansion on).
        let order = fixture("fastspring/cashier-fastspring_order_completed.json");
        let (status, receipt) = deliver(app, &fs, "fastspring", "", &fastspring_batch(&[("fs-o-1", "order.completed", order)])).await;
        assert_eq!(status, StatusCode::OK, "{receipt}");
        let before = entitlement(app, &t.key, subscription).await["expires_at"].clone();

        // The sample renewal without expansion: the subscription is an id, its next date is not there.
        let mut charge = fixture("fastspring/cashier-fastspring_subscription_charge_completed.json");
        charge["subscription"] = json!(subscription);
        charge["order"] = json!("renewal-order-2");
        let (status, receipt) = deliver(app, &fs, "fastspring", "", &fastspring_batch(&[("fs-c-1", "subscription.charge.completed", charge)])).await;
        assert_eq!(status, StatusCode::OK, "{receipt}");
        let waiting = &receipt["deliveries"][0];
        assert_eq!(waiting["outcome"], "incomplete", "never applied with no effect: {receipt}");
        assert!(waiting["detail"].as_str().unwrap().contains("next charge date"), "{waiting}");
        assert_eq!(entitlement(app, &t.key, subscription).await["expires_at"], before);
        let listed = app.fetch(&t.key, "/api/v1/storefront-deliveries?outcome=incomplete").await;
        assert!(listed["data"].as_array().unwrap().iter().any(|d| d["id"] == waiting["id"]), "visible to support");

        // With API credentials, a replay fetches the date and the renewal counts.
        let next = (Utc::now() + Duration::days(61)).timestamp_millis();
        let api = fake_fastspring(next).await;
        let patched = app.patch(&t.key, &format!("/api/v1/storefront-connections/{fs}"),
            json!({"api_key": "fsuser:fspass", "api_base_url": api})).await;
        assert_eq!(patched.status, StatusCode::OK, "{}", patched.body);
        let replay = app.act(Method::POST, &t.key, &format!("/api/v1/storefront-deliveries/{}/replay", waiting["id"].as_str().unwrap()), json!({})).await;
        assert_eq!(replay["deliveries"][0]["outcome"], "applied", "{replay}");
        let e = entitlement(app, &t.key, subscription).await;
        assert_eq!(time(&e["expires_at"]).timestamp_millis(), next);
        assert_eq!(actions(&history(app, &t.key, &e).await).last(), Some(&"entitlement.renewed"));
    }
}

backend_test! {
    async fn a_permanent_failure_is_acknowledged_kept_and_listed_and_the_batch_goes_on(app) {
        let t = app.tenant("Acme").await;
        seed_catalogue(app, &t.key).await;
        let product = app.create(&t.key, "/api/v1/products", json!({"name": "Site licence"})).await;
        let edition = app.create(&t.key, "/api/v1/editions", json!({"product_id": product["id"], "name": "Site"})).await;
        let plan = app.create(&t.key, "/api/v1/plans", json!({"product_id": product["id"], "name": "Forever", "license_type": "perpetual"})).await;
        app.create(&t.key, "/api/v1/offerings", json!({"sku": "SITE", "name": "Site", "edition_id": edition["id"],
            "plan_id": plan["id"], "seat_count": 1_000_000_000})).await;
        let fs = connection(app, &t.key, "fastspring").await;
        map(app, &t.key, &fs, "site", "SITE").await;
        map(app, &t.key, &fs, "editor-pro-monthly", "PRO-M").await;
        let order = |id: &str, product: &str, quantity: i64| json!({"id": id, "completed": true,
            "customer": {"email": "batch@example.com"}, "items": [{"product": product, "quantity": quantity}]});
        // Two sites of a billion seats each is more than any entitlement may have: that will never work.
        let batch = fastspring_batch(&[
            ("fs-too-big", "order.completed", order("o-big", "site", 2)),
            ("fs-fine", "order.completed", order("o-fine", "editor-pro-monthly", 1)),
        ]);
        let (status, receipt) = deliver(app, &fs, "fastspring", "", &batch).await;
        assert_eq!(status, StatusCode::OK, "acknowledged whole: nothing to retry: {receipt}");
        assert_eq!(receipt["deliveries"][0]["outcome"], "failed");
        assert!(receipt["deliveries"][0]["detail"].as_str().unwrap().contains("seat"), "{receipt}");
        assert_eq!(receipt["deliveries"][1]["outcome"], "applied");
        assert!(order_entitlement(app, &t.key, "o-big").await.is_none());
        assert!(order_entitlement(app, &t.key, "o-fine").await.is_some());
        // Alone, too: 2xx, not a 422 the provider would retry forever.
        let (status, receipt) = deliver(app, &fs, "fastspring", "", &fastspring_batch(&[("fs-big-2", "order.completed", order("o-big-2", "site", 3))])).await;
        assert_eq!(status, StatusCode::OK, "{receipt}");
        let failed = app.fetch(&t.key, "/api/v1/storefront-deliveries?outcome=failed").await;
        assert_eq!(failed["data"].as_array().unwrap().len(), 2, "listed for support: {failed}");
    }
}

backend_test! {
    async fn stripe_deliveries_completed_later_are_resolved_and_an_invoice_alone_starts_an_order(app) {
        let t = app.tenant("Acme").await;
        seed_catalogue(app, &t.key).await;
        let stripe = connection(app, &t.key, "stripe").await;
        map(app, &t.key, &stripe, "price_pro_monthly", "PRO-M").await;
        map(app, &t.key, &stripe, "price_1234", "BASIC-M").await;
        let now = Utc::now();
        // Checkout for a subscription: no line items in the webhook, no API key to fetch them.
        let session = json!({"id": "evt_cs_r1", "type": "checkout.session.completed", "created": now.timestamp(),
            "data": {"object": {"id": "cs_r1", "mode": "subscription", "payment_status": "paid", "subscription": "sub_r1",
                "customer": "cus_r1", "customer_details": {"email": "r@example.com"}, "metadata": {}}}});
        let (_, receipt) = deliver(app, &stripe, "stripe", "", &session).await;
        assert_eq!(receipt["deliveries"][0]["outcome"], "incomplete", "{receipt}");
        let first = receipt["deliveries"][0]["id"].clone();
        let created = json!({"id": "evt_sub_r1", "type": "customer.subscription.created", "created": now.timestamp() + 1,
            "data": {"object": {"id": "sub_r1", "customer": "cus_r1", "status": "active", "metadata": {},
                "items": {"data": [{"price": {"id": "price_pro_monthly"}, "quantity": 1,
                    "current_period_end": (now + Duration::days(30)).timestamp()}]}}}});
        let (_, receipt) = deliver(app, &stripe, "stripe", "", &created).await;
        assert_eq!(receipt["deliveries"][0]["outcome"], "applied", "{receipt}");
        let earlier = app.fetch(&t.key, &format!("/api/v1/storefront-deliveries/{}", first.as_str().unwrap())).await;
        assert_eq!(earlier["outcome"], "resolved", "the order was completed by a later event: {earlier}");
        let attention = app.fetch(&t.key, "/api/v1/storefront-deliveries?outcome=incomplete").await;
        assert!(attention["data"].as_array().unwrap().is_empty(), "{attention}");

        // `invoice.paid` alone (pay's sample invoice, current API shape): the lines name the price.
        let mut data = fixture("stripe/pay-rails_data_invoice.payment_failed.json");
        data["object"]["status"] = json!("paid");
        data["object"]["lines"]["data"][0]["period"]["end"] = json!((now + Duration::days(365)).timestamp());
        let invoice = json!({"id": "evt_inv_1", "type": "invoice.paid", "created": now.timestamp(), "data": data});
        let (status, receipt) = deliver(app, &stripe, "stripe", "", &invoice).await;
        assert_eq!(status, StatusCode::OK, "{receipt}");
        assert_eq!(receipt["deliveries"][0]["outcome"], "applied", "{receipt}");
        let e = entitlement(app, &t.key, "sub_1234").await;
        assert_eq!(e["sku"], "BASIC-M");
        assert_eq!(time(&e["expires_at"]).timestamp(), (now + Duration::days(365)).timestamp());
    }
}

/// A subscription bought, then cancelled (or its renewal failed), then ended.
async fn journey(
    app: &TestApp,
    key: &str,
    conn: &str,
    order: &str,
    failed: bool,
    (start, end): (DateTime<Utc>, DateTime<Utc>),
) -> Value {
    let purchase = generic(
        "purchase",
        order,
        start,
        Some(("PRO-M", 1)),
        Some(end),
        Some("c@example.com"),
    );
    let (status, receipt) = deliver(app, conn, "generic", &format!("{order}-1"), &purchase).await;
    assert_eq!(status, StatusCode::OK, "{receipt}");
    let middle = if failed {
        "payment_failed"
    } else {
        "cancellation_scheduled"
    };
    deliver(
        app,
        conn,
        "generic",
        &format!("{order}-2"),
        &generic(middle, order, end - Duration::days(3), None, None, None),
    )
    .await;
    deliver(
        app,
        conn,
        "generic",
        &format!("{order}-3"),
        &generic("ended", order, end, None, None, None),
    )
    .await;
    entitlement(app, key, order).await
}

backend_test! {
    async fn grace_is_for_failed_payments_a_cancelled_subscription_expires_at_its_end(app) {
        let t = app.tenant("Acme").await;
        seed_catalogue(app, &t.key).await;
        let conn = connection(app, &t.key, "generic").await;
        let lenient = app.create(&t.key, "/api/v1/storefront-connections", json!({"provider": "generic", "name": "lenient",
            "secrets": [SECRET], "grace_after_cancel": true})).await;
        assert_eq!(lenient["grace_after_cancel"], true);
        let lenient = lenient["id"].as_str().unwrap().to_owned();
        let now = Utc::now();
        let (start, end) = (now - Duration::days(30), now - Duration::days(1));
        let cancelled = journey(app, &t.key, &conn, "cancelled", false, (start, end)).await;
        assert_eq!(cancelled["status"], "expired", "the customer's choice: no grace");
        assert_eq!(time(&cancelled["expires_at"]).timestamp_millis(), end.timestamp_millis());
        assert_eq!(actions(&history(app, &t.key, &cancelled).await).last(), Some(&"entitlement.ended"));
        let lapsed = journey(app, &t.key, &conn, "lapsed", true, (start, end)).await;
        assert_eq!(lapsed["status"], "grace", "an unpaid renewal keeps the grace period");
        let kept = journey(app, &t.key, &lenient, "kept", false, (start, end)).await;
        assert_eq!(kept["status"], "grace", "the connection keeps grace after a cancellation");
    }
}

backend_test! {
    async fn a_maxio_subscription_takes_its_seats_from_the_component_and_keeps_them_through_renewals_and_partial_refunds(app) {
        let t = app.tenant("Acme").await;
        seed_catalogue(app, &t.key).await;
        let maxio = connection(app, &t.key, "maxio").await;
        map(app, &t.key, &maxio, "basic", "BASIC-M").await;
        let now = Utc::now();
        let at = |t: DateTime<Utc>| t.format("%Y-%m-%d %H:%M:%S -0000").to_string().replace(" ", "%20");
        let sub = |id: u32, event: &str, t: DateTime<Utc>, extra: &str| {
            json!(format!(
                "id={id}&event={event}&payload[subscription][id]=888&payload[subscription][state]=active\
                 &payload[subscription][updated_at]={}&payload[subscription][product][handle]=basic\
                 &payload[subscription][customer][email]=seats%40maxio.example{extra}",
                at(t)
            ))
        };
        let period = |t: DateTime<Utc>| format!("&payload[subscription][current_period_ends_at]={}", at(t));
        let maxio = maxio.as_str();
        let send = |body: Value| async move {
            let (status, receipt) = deliver(app, maxio, "maxio", "", &body).await;
            assert_eq!(status, StatusCode::OK, "{receipt}");
            receipt
        };
        send(sub(1, "signup_success", now - Duration::days(20), &period(now + Duration::days(10)))).await;
        assert_eq!(entitlement(app, &t.key, "888").await["seat_count"], 1);
        send(sub(2, "component_allocation_change", now - Duration::days(10), "&payload[component][handle]=seats&payload[previous_allocation]=1&payload[new_allocation]=6")).await;
        assert_eq!(entitlement(app, &t.key, "888").await["seat_count"], 6, "the allocation is the quantity");
        send(sub(3, "renewal_success", now - Duration::days(1), &period(now + Duration::days(40)))).await;
        let e = entitlement(app, &t.key, "888").await;
        assert_eq!(e["seat_count"], 6, "a renewal keeps the seats");
        assert_eq!(time(&e["expires_at"]).timestamp(), (now + Duration::days(40)).timestamp());
        send(json!(format!("id=4&event=refund_success&payload[subscription_id]=888&payload[timestamp]={}\
            &payload[refund_amount_in_cents]=500&payload[payment_amount_in_cents]=6000", at(now)))).await;
        assert_eq!(entitlement(app, &t.key, "888").await["status"], "active", "a partial refund changes nothing");
        send(sub(5, "pending_cancellation_change", now + Duration::seconds(1), "&payload[subscription][cancel_at_end_of_period]=true")).await;
        let e = entitlement(app, &t.key, "888").await;
        assert_eq!(e["status"], "active");
        assert!(actions(&history(app, &t.key, &e).await).contains(&"entitlement.cancel_scheduled"));
        send(json!(format!("id=6&event=refund_success&payload[subscription_id]=888&payload[timestamp]={}\
            &payload[refund_amount_in_cents]=6000&payload[payment_amount_in_cents]=6000", at(now + Duration::seconds(2))))).await;
        assert_eq!(entitlement(app, &t.key, "888").await["status"], "disabled", "a full refund disables");
    }
}

backend_test! {
    async fn a_cancellation_that_arrives_before_its_purchase_is_still_in_the_history(app) {
        let t = app.tenant("Acme").await;
        seed_catalogue(app, &t.key).await;
        let conn = connection(app, &t.key, "generic").await;
        let now = Utc::now();
        let (_, receipt) = deliver(app, &conn, "generic", "early-2", &generic("cancellation_scheduled", "early", now, None, Some(now + Duration::days(30)), None)).await;
        assert!(order_entitlement(app, &t.key, "early").await.is_none(), "{receipt}");
        deliver(app, &conn, "generic", "early-1", &generic("purchase", "early", now - Duration::seconds(5), Some(("PRO-M", 1)), Some(now + Duration::days(30)), Some("e@example.com"))).await;
        let e = entitlement(app, &t.key, "early").await;
        assert_eq!(e["status"], "active");
        assert!(actions(&history(app, &t.key, &e).await).contains(&"entitlement.cancel_scheduled"));
    }
}
