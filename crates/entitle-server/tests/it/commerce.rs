//! Storefront deliveries become entitlements: signatures, the lifecycle, duplicates, shuffled and
//! concurrent histories, unmapped items and their replay.

use chrono::{DateTime, Duration, Utc};
use entitle_server::commerce::signature::sign_hex;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use crate::helpers::{backend_test, configured_backend_test, join_all, seed_catalogue, TestApp};

pub(crate) const SECRET: &str = "whsec_c2VjcmV0LWZvci10ZXN0cy0xMjM0NTY=";

pub(crate) async fn connection(app: &TestApp, key: &str, provider: &str) -> String {
    let c = app
        .create(
            key,
            "/api/v1/storefront-connections",
            json!({"provider": provider, "name": format!("{provider} shop"), "secrets": ["old-secret-123", SECRET]}),
        )
        .await;
    assert!(c["webhook_url"]
        .as_str()
        .unwrap()
        .ends_with(&format!("/commerce/v1/{}", c["id"].as_str().unwrap())));
    assert!(c.get("secrets").is_none(), "secrets are never shown");
    c["id"].as_str().unwrap().to_owned()
}

/// Signs and posts a delivery the way `provider` would.
pub(crate) async fn deliver(
    app: &TestApp,
    connection: &str,
    provider: &str,
    id: &str,
    body: &Value,
) -> (StatusCode, Value) {
    // Maxio posts forms: its test bodies are the form text.
    let bytes = match body.as_str() {
        Some(form) => form.as_bytes().to_vec(),
        None => serde_json::to_vec(body).unwrap(),
    };
    let now = Utc::now().timestamp();
    let mut request = app
        .client
        .post(format!("{}/commerce/v1/{connection}", app.base))
        .body(bytes.clone());
    request = match provider {
        "stripe" => request.header(
            "stripe-signature",
            format!(
                "t={now},v1={}",
                sign_hex(SECRET.as_bytes(), &[now.to_string().as_bytes(), b".", &bytes])
            ),
        ),
        "paddle" => request.header(
            "paddle-signature",
            format!(
                "ts={now};h1={}",
                sign_hex(SECRET.as_bytes(), &[now.to_string().as_bytes(), b":", &bytes])
            ),
        ),
        "lemon_squeezy" => request.header("x-signature", sign_hex(SECRET.as_bytes(), &[&bytes])),
        "fastspring" => request.header(
            "x-fs-signature",
            entitle_server::commerce::signature::sign_base64(SECRET.as_bytes(), &[&bytes]),
        ),
        "maxio" => request
            .header("content-type", "application/x-www-form-urlencoded")
            .header(
                "x-chargify-webhook-signature-hmac-sha-256",
                sign_hex(SECRET.as_bytes(), &[&bytes]),
            ),
        "zuora" => request.header("zuora-notification-id", id).header(
            "x-zuora-signature",
            entitle_server::commerce::signature::sign_base64(SECRET.as_bytes(), &[&bytes]),
        ),
        "shopify" => request
            .header(
                "x-shopify-hmac-sha256",
                entitle_server::commerce::signature::sign_base64(SECRET.as_bytes(), &[&bytes]),
            )
            .header("x-shopify-topic", body["__topic"].as_str().unwrap_or("orders/paid"))
            .header("x-shopify-webhook-id", id),
        _ => request
            .header("webhook-id", id)
            .header("webhook-timestamp", now.to_string())
            .header(
                "webhook-signature",
                entitle_server::commerce::generic::sign(SECRET, id, now, &bytes),
            ),
    };
    let response = request.send().await.unwrap();
    let status = response.status();
    (status, response.json().await.unwrap_or(Value::Null))
}

fn ts(t: DateTime<Utc>) -> String {
    t.to_rfc3339()
}

pub(crate) fn generic(
    kind: &str,
    order: &str,
    at: DateTime<Utc>,
    sku: Option<(&str, i64)>,
    period_end: Option<DateTime<Utc>>,
    email: Option<&str>,
) -> Value {
    let mut body = json!({"type": kind, "occurred_at": ts(at), "order_ref": order});
    if let Some((sku, quantity)) = sku {
        body["items"] = json!([{"sku": sku, "quantity": quantity}]);
    }
    if let Some(end) = period_end {
        body["period_end"] = json!(ts(end));
    }
    if let Some(email) = email {
        body["customer"] = json!({"email": email, "name": "Grace Hopper"});
    }
    body
}

pub(crate) async fn order_entitlement(app: &TestApp, key: &str, order: &str) -> Option<Value> {
    let list = app.fetch(key, &format!("/api/v1/entitlements?order_ref={order}")).await;
    list["data"].as_array().unwrap().first().cloned()
}

/// The parts of an entitlement a storefront history decides.
fn outcome(e: &Value) -> Value {
    json!({"sku": e["sku"], "quantity": e["quantity"], "seat_count": e["seat_count"], "expires_at": e["expires_at"],
           "disabled": !e["disabled_at"].is_null(), "status": e["status"]})
}

backend_test! {
    async fn a_purchase_creates_customer_entitlement_and_mail_once(app) {
        let t = app.tenant("Acme").await;
        seed_catalogue(app, &t.key).await;
        let conn = connection(app, &t.key, "generic").await;
        let now = Utc::now();
        let body = generic("purchase", "order-1", now, Some(("PRO-M", 2)), Some(now + Duration::days(30)), Some("Grace@Navy.example"));
        let (status, receipt) = deliver(app, &conn, "generic", "msg-1", &body).await;
        assert_eq!(status, StatusCode::OK, "{receipt}");
        assert_eq!(receipt["deliveries"][0]["outcome"], "applied");
        let e = order_entitlement(app, &t.key, "order-1").await.expect("an entitlement");
        assert_eq!((e["sku"].clone(), e["seat_count"].clone()), (json!("PRO-M"), json!(10)));
        assert_eq!(crate::helpers::time(&e["expires_at"]).timestamp(), (now + Duration::days(30)).timestamp());
        let customer = app.fetch(&t.key, &format!("/api/v1/customers/{}", e["customer_id"].as_str().unwrap())).await;
        assert_eq!(customer["email"], "grace@navy.example");
        assert_eq!(customer["name"], "Grace Hopper");
        let users = app.fetch(&t.key, &format!("/api/v1/end-users?customer_id={}", e["customer_id"].as_str().unwrap())).await;
        assert_eq!(users["data"][0]["role"], "admin");
        let mails = app.fetch(&t.key, "/api/v1/mails").await;
        assert_eq!(mails["data"].as_array().unwrap().len(), 1, "credentials queued with the entitlement");
        assert_eq!(mails["data"][0]["recipient"], "grace@navy.example");

        let events_before = app.fetch(&t.key, "/api/v1/events?limit=200").await["data"].as_array().unwrap().len();
        let (again, receipt) = deliver(app, &conn, "generic", "msg-1", &body).await;
        assert_eq!(again, StatusCode::OK);
        assert_eq!(receipt["deliveries"][0]["outcome"], "duplicate");
        assert_eq!(app.fetch(&t.key, "/api/v1/entitlements").await["data"].as_array().unwrap().len(), 1);
        assert_eq!(app.fetch(&t.key, "/api/v1/mails").await["data"].as_array().unwrap().len(), 1);
        assert_eq!(app.fetch(&t.key, "/api/v1/events?limit=200").await["data"].as_array().unwrap().len(), events_before, "a duplicate changes nothing");
        let deliveries = app.fetch(&t.key, &format!("/api/v1/storefront-deliveries?connection_id={conn}")).await;
        let outcomes: Vec<_> = deliveries["data"].as_array().unwrap().iter().map(|d| d["outcome"].clone()).collect();
        assert_eq!(outcomes, [json!("applied"), json!("duplicate")]);
        assert!(deliveries["data"][0]["body"].as_str().unwrap().contains("order-1"), "the raw body is kept");
        assert!(deliveries["data"][0]["objects"].as_array().unwrap().iter().any(|o| o == &e["id"]));
    }
}

backend_test! {
    async fn the_lifecycle_follows_the_order(app) {
        let t = app.tenant("Acme").await;
        seed_catalogue(app, &t.key).await;
        let conn = connection(app, &t.key, "generic").await;
        let start = Utc::now() - Duration::days(40);
        let send = |n: u32, body: Value| {
            let conn = conn.clone();
            async move {
                let (status, receipt) = deliver(app, &conn, "generic", &format!("life-{n}"), &body).await;
                assert_eq!(status, StatusCode::OK, "{receipt}");
            }
        };
        send(1, generic("purchase", "sub-9", start, Some(("PRO-M", 1)), Some(start + Duration::days(30)), Some("a@b.example"))).await;
        send(2, generic("renewal", "sub-9", start + Duration::days(30), None, Some(start + Duration::days(60)), None)).await;
        let e = order_entitlement(app, &t.key, "sub-9").await.unwrap();
        assert_eq!(e["status"], "active");
        assert_eq!(crate::helpers::time(&e["expires_at"]).timestamp(), (start + Duration::days(60)).timestamp(), "renewal extends");

        send(3, generic("active", "sub-9", start + Duration::days(31), Some(("PRO-P", 3)), None, None)).await;
        let e = order_entitlement(app, &t.key, "sub-9").await.unwrap();
        assert_eq!((e["sku"].clone(), e["seat_count"].clone()), (json!("PRO-P"), json!(15)), "plan change: offering and seats follow");

        send(4, generic("payment_failed", "sub-9", start + Duration::days(38), None, None, None)).await;
        let e = order_entitlement(app, &t.key, "sub-9").await.unwrap();
        assert_eq!(e["status"], "grace", "a failed payment starts the grace period");

        send(5, generic("cancellation_scheduled", "sub-9", start + Duration::days(39), None, None, None)).await;
        let e = order_entitlement(app, &t.key, "sub-9").await.unwrap();
        assert_eq!(e["status"], "active", "valid until the period ends");

        send(6, generic("refunded", "sub-9", start + Duration::days(39), None, None, None)).await;
        let e = order_entitlement(app, &t.key, "sub-9").await.unwrap();
        assert_eq!(e["status"], "disabled");

        send(7, generic("ended", "sub-10", start, None, None, None)).await;
        assert!(order_entitlement(app, &t.key, "sub-10").await.is_none(), "an ending alone creates nothing");
        send(8, generic("purchase", "sub-10", start - Duration::days(1), Some(("BASIC-M", 1)), Some(start + Duration::days(29)), Some("c@d.example"))).await;
        let late = order_entitlement(app, &t.key, "sub-10").await.unwrap();
        assert_eq!(late["status"], "expired", "the cancellation that came first still applies");
    }
}

/// The order reference the provider's payloads give the test order `order`.
fn order_ref_of(provider: &str, order: &str) -> String {
    match provider {
        "lemon_squeezy" => format!(
            "order:{}",
            order.len() as i64 * 1000 + order.bytes().map(i64::from).sum::<i64>()
        ),
        "shopify" => (5_551_000_000_000_000_000u64 + order.len() as u64).to_string(),
        _ => order.to_owned(),
    }
}

/// One order's history in a provider's own format: (event id, body).
fn history(provider: &str, order: &str, base: DateTime<Utc>) -> Vec<(String, Value)> {
    let t = |days: i64| base + Duration::days(days);
    let id = |n: u32| format!("{order}-evt-{n}");
    match provider {
        "stripe" => {
            let sub = |n: u32, day: i64, status: &str, price: &str, quantity: i64, end: i64| {
                (
                    id(n),
                    json!({"id": id(n), "type": "customer.subscription.updated", "created": t(day).timestamp(),
                    "data": {"object": {"id": order, "object": "subscription", "customer": "cus_1", "status": status,
                        "cancel_at_period_end": false, "metadata": {}, "items": {"data": [
                            {"price": {"id": price}, "quantity": quantity, "current_period_end": t(end).timestamp()}]}}}}),
                )
            };
            vec![
                (
                    id(1),
                    json!({"id": id(1), "type": "checkout.session.completed", "created": t(0).timestamp(),
                    "data": {"object": {"id": format!("cs_{order}"), "mode": "subscription", "payment_status": "paid",
                        "subscription": order, "customer": "cus_1", "metadata": {},
                        "customer_details": {"email": "buyer@shop.example", "name": "Buyer"}}}}),
                ),
                sub(2, 0, "active", "price_pro_monthly", 1, 30),
                (
                    id(3),
                    json!({"id": id(3), "type": "invoice.paid", "created": t(30).timestamp(),
                    "data": {"object": {"id": format!("in_{order}"), "subscription": order, "customer": "cus_1",
                        "customer_email": "buyer@shop.example", "charge": format!("ch_{order}"),
                        "lines": {"data": [{"period": {"end": t(60).timestamp()}}]}}}}),
                ),
                sub(4, 35, "active", "price_pro_perpetual", 3, 60),
                sub(5, 50, "past_due", "price_pro_perpetual", 3, 60),
                (
                    id(6),
                    json!({"id": id(6), "type": "charge.refunded", "created": t(55).timestamp(),
                    "data": {"object": {"id": format!("ch_{order}"), "refunded": true, "invoice": format!("in_{order}")}}}),
                ),
            ]
        }
        "paddle" => {
            let sub = |n: u32, day: i64, kind: &str, status: &str, price: &str, quantity: i64, end: i64| {
                (
                    id(n),
                    json!({"event_id": id(n), "event_type": kind, "occurred_at": t(day).to_rfc3339(),
                    "data": {"id": order, "status": status, "customer_id": "ctm_1",
                        "custom_data": {"email": "buyer@shop.example"},
                        "items": [{"price": {"id": price}, "quantity": quantity}],
                        "current_billing_period": {"ends_at": t(end).to_rfc3339()}}}),
                )
            };
            vec![
                sub(1, 0, "subscription.created", "active", "pri_pro_monthly", 1, 30),
                (
                    id(2),
                    json!({"event_id": id(2), "event_type": "transaction.completed", "occurred_at": t(30).to_rfc3339(),
                    "data": {"id": format!("txn_{order}"), "subscription_id": order, "origin": "subscription_recurring",
                        "customer_id": "ctm_1", "items": [{"price": {"id": "pri_pro_monthly"}, "quantity": 1}],
                        "billing_period": {"ends_at": t(60).to_rfc3339()}}}),
                ),
                sub(3, 35, "subscription.updated", "active", "pri_pro_perpetual", 3, 60),
                sub(4, 50, "subscription.past_due", "past_due", "pri_pro_perpetual", 3, 60),
                sub(5, 58, "subscription.canceled", "canceled", "pri_pro_perpetual", 3, 60),
            ]
        }
        "fastspring" => {
            let batch = |n: u32, kind: &str, day: i64, data: Value| {
                (
                    id(n),
                    json!({"events": [{"id": id(n), "type": kind, "created": t(day).timestamp_millis() + n as i64, "data": data}]}),
                )
            };
            let sub = |state: &str, product: &str, quantity: i64, next: i64| json!({"id": order, "state": state, "product": product, "quantity": quantity, "next": t(next).timestamp_millis()});
            vec![
                batch(
                    1,
                    "order.completed",
                    0,
                    json!({"id": format!("fso-{order}"), "completed": true,
                    "customer": {"first": "Buy", "last": "Er", "email": "buyer@shop.example"},
                    "items": [{"product": "fs_monthly", "quantity": 1, "subscription": order}]}),
                ),
                batch(2, "subscription.activated", 0, sub("active", "fs_monthly", 1, 30)),
                batch(
                    3,
                    "subscription.charge.completed",
                    30,
                    json!({"subscription": {"id": order, "next": t(60).timestamp_millis()}}),
                ),
                batch(4, "subscription.updated", 35, sub("active", "fs_perpetual", 3, 60)),
                batch(
                    5,
                    "subscription.payment.overdue",
                    50,
                    sub("overdue", "fs_perpetual", 3, 60),
                ),
                batch(
                    6,
                    "subscription.deactivated",
                    58,
                    sub("deactivated", "fs_perpetual", 3, 60),
                ),
            ]
        }
        "maxio" => {
            let when = |day: i64| {
                t(day)
                    .format("%Y-%m-%d %H:%M:%S +0000")
                    .to_string()
                    .replace(' ', "%20")
                    .replace('+', "%2B")
            };
            let form = |n: u32, kind: &str, day: i64, state: &str, handle: &str, end: i64| {
                (id(n), Value::String(format!(
                    "id={}&event={kind}&payload[subscription][id]={order}&payload[subscription][state]={state}\
                     &payload[subscription][updated_at]={}&payload[subscription][current_period_ends_at]={}\
                     &payload[subscription][product][handle]={handle}&payload[subscription][customer][email]=buyer%40shop.example",
                    id(n), when(day), when(end))))
            };
            vec![
                form(1, "signup_success", 0, "active", "mx_monthly", 30),
                form(2, "renewal_success", 30, "active", "mx_monthly", 60),
                form(3, "subscription_product_change", 35, "active", "mx_perpetual", 60),
                form(4, "payment_failure", 50, "past_due", "mx_perpetual", 60),
                form(5, "subscription_state_change", 58, "canceled", "mx_perpetual", 60),
            ]
        }
        "zuora" => {
            let callout = |n: u32, event: &str, day: i64, status: &str, plan: &str, quantity: &str, end: i64| {
                (
                    id(n),
                    json!({"event": event, "timestamp": t(day).to_rfc3339(), "subscription": order, "account": "acc_1",
                    "email": "buyer@shop.example", "rate_plan": plan, "quantity": quantity,
                    "term_end": t(end).to_rfc3339(), "status": status}),
                )
            };
            vec![
                callout(1, "CreateSubscription", 0, "Active", "zr_monthly", "1", 30),
                callout(2, "RenewSubscription", 30, "Active", "zr_monthly", "1", 60),
                callout(3, "AmendmentProcessed", 35, "Active", "zr_perpetual", "3", 60),
                callout(4, "PaymentDeclined", 50, "Active", "zr_perpetual", "3", 60),
                callout(5, "CancelSubscription", 58, "Cancelled", "zr_perpetual", "3", 60),
            ]
        }
        "lemon_squeezy" => {
            let number = order.len() as i64 * 1000 + order.bytes().map(i64::from).sum::<i64>();
            let sub = |name: &str, day: i64, status: &str, variant: &str, quantity: i64, renews: i64| {
                json!({"meta": {"event_name": name}, "data": {"type": "subscriptions", "id": format!("{number}"),
                    "attributes": {"order_id": number, "customer_id": 9, "variant_id": variant, "status": status,
                        "user_email": "buyer@shop.example", "user_name": "Buyer",
                        "first_subscription_item": {"quantity": quantity},
                        "renews_at": t(renews).to_rfc3339(), "updated_at": t(day).to_rfc3339()}}})
            };
            let invoice = |name: &str, day: i64, refunded: bool| {
                json!({"meta": {"event_name": name}, "data": {"type": "subscription-invoices", "id": format!("inv{number}-{day}"),
                    "attributes": {"subscription_id": number, "refunded": refunded, "updated_at": t(day).to_rfc3339()}}})
            };
            vec![
                (id(1), sub("subscription_created", 0, "active", "v_monthly", 1, 30)),
                (
                    id(2),
                    json!({"meta": {"event_name": "order_created"}, "data": {"type": "orders", "id": format!("{number}"),
                    "attributes": {"status": "paid", "user_email": "buyer@shop.example", "customer_id": 9,
                        "first_order_item": {"variant_id": "v_monthly"}, "updated_at": t(0).to_rfc3339()}}}),
                ),
                (id(3), invoice("subscription_payment_success", 30, false)),
                (id(4), sub("subscription_updated", 35, "active", "v_perpetual", 3, 60)),
                (id(5), invoice("subscription_payment_failed", 50, false)),
                (id(6), invoice("subscription_payment_refunded", 55, true)),
            ]
        }
        "shopify" => vec![
            (
                id(1),
                json!({"id": 5_551_000_000_000_000_000u64 + order.len() as u64, "financial_status": "paid", "email": "buyer@shop.example",
                "updated_at": t(0).to_rfc3339(), "customer": {"id": 42, "first_name": "Buy", "last_name": "Er"},
                "line_items": [{"variant_id": 111, "sku": "SHOP-PRO", "quantity": 2}], "__topic": "orders/paid"}),
            ),
            (
                id(2),
                json!({"order_id": 5_551_000_000_000_000_000u64 + order.len() as u64, "id": 77, "updated_at": t(3).to_rfc3339(),
                "created_at": t(3).to_rfc3339(), "__topic": "refunds/create",
                "refund_line_items": [{"quantity": 2, "line_item": {"variant_id": 111, "sku": "SHOP-PRO", "quantity": 2}}]}),
            ),
        ],
        _ => vec![
            (
                id(1),
                generic(
                    "purchase",
                    order,
                    t(0),
                    Some(("PRO-M", 1)),
                    Some(t(30)),
                    Some("buyer@shop.example"),
                ),
            ),
            (id(2), generic("renewal", order, t(30), None, Some(t(60)), None)),
            (id(3), generic("active", order, t(35), Some(("PRO-P", 3)), None, None)),
            (id(4), generic("payment_failed", order, t(50), None, None, None)),
            (id(5), generic("ended", order, t(58), None, None, None)),
        ],
    }
}

pub(crate) async fn mappings(app: &TestApp, key: &str, conn: &str, provider: &str) {
    let refs = match provider {
        "stripe" => [("price_pro_monthly", "PRO-M"), ("price_pro_perpetual", "PRO-P")],
        "lemon_squeezy" => [("v_monthly", "PRO-M"), ("v_perpetual", "PRO-P")],
        "fastspring" => [("fs_monthly", "PRO-M"), ("fs_perpetual", "PRO-P")],
        "maxio" => [("mx_monthly", "PRO-M"), ("mx_perpetual", "PRO-P")],
        "zuora" => [("zr_monthly", "PRO-M"), ("zr_perpetual", "PRO-P")],
        "shopify" => [("111", "PRO-P"), ("222", "BASIC-M")],
        _ => [("pri_pro_monthly", "PRO-M"), ("pri_pro_perpetual", "PRO-P")],
    };
    for (provider_ref, sku) in refs {
        app.create(
            key,
            "/api/v1/storefront-mappings",
            json!({"connection_id": conn, "provider_ref": provider_ref, "sku": sku}),
        )
        .await;
    }
}

backend_test! {
    async fn shuffled_repeated_and_concurrent_histories_end_in_the_same_state(app) {
        let t = app.tenant("Acme").await;
        seed_catalogue(app, &t.key).await;
        let base = Utc::now() - Duration::days(45);
        for provider in ["generic", "stripe", "paddle", "lemon_squeezy", "shopify", "fastspring", "maxio", "zuora"] {
            let conn = connection(app, &t.key, provider).await;
            mappings(app, &t.key, &conn, provider).await;
            // In order, once.
            let reference = format!("{provider}_sub_inorder");
            for (id, body) in history(provider, &reference, base) {
                let (status, receipt) = deliver(app, &conn, provider, &id, &body).await;
                assert_eq!(status, StatusCode::OK, "{provider} {id}: {receipt}");
            }
            let expected = outcome(&order_entitlement(app, &t.key, &order_ref_of(provider, &reference)).await.unwrap_or_else(|| panic!("{provider}: no entitlement")));
            // Shuffled with duplicates, one by one; then all at once, concurrently.
            let mut seed = 11u64;
            for round in 0..3 {
                let order = format!("{provider}_sub_shuffled_{round}");
                let mut events = history(provider, &order, base);
                for i in (1..events.len()).rev() {
                    seed = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
                    events.swap(i, (seed >> 33) as usize % (i + 1));
                }
                let repeat = events[(seed >> 40) as usize % events.len()].clone();
                events.push(repeat);
                for (id, body) in &events {
                    let (status, _) = deliver(app, &conn, provider, id, body).await;
                    assert_eq!(status, StatusCode::OK);
                }
                let got = outcome(&order_entitlement(app, &t.key, &order_ref_of(provider, &order)).await.unwrap());
                assert_eq!(got, expected, "{provider} round {round}: {events:?}");
            }
            let order = format!("{provider}_sub_concurrent");
            let mut events = history(provider, &order, base);
            events.extend(history(provider, &order, base));
            let sends = events.iter().map(|(id, body)| {
                let conn = conn.clone();
                async move { deliver(app, &conn, provider, id, body).await.0 }
            });
            for status in join_all(sends).await {
                assert_eq!(status, StatusCode::OK);
            }
            let got = outcome(&order_entitlement(app, &t.key, &order_ref_of(provider, &order)).await.unwrap());
            if got != expected {
                let all = app.fetch(&t.key, "/api/v1/storefront-deliveries?limit=200").await;
                for d in all["data"].as_array().unwrap().iter().filter(|d| d["body"].as_str().unwrap().contains(&order)) {
                    eprintln!("DLV {} {} {} {} {}", d["event_id"], d["event_type"], d["order_ref"], d["outcome"], d["detail"]);
                }
            }
            assert_eq!(got, expected, "{provider} concurrent");
            let count = app.fetch(&t.key, &format!("/api/v1/entitlements?order_ref={}", order_ref_of(provider, &order))).await["data"].as_array().unwrap().len();
            assert_eq!(count, 1, "{provider}: one entitlement however the events arrive");
        }
    }
}

backend_test! {
    async fn forged_truncated_reserialised_and_stale_deliveries_are_refused(app) {
        let t = app.tenant("Acme").await;
        seed_catalogue(app, &t.key).await;
        let conn = connection(app, &t.key, "stripe").await;
        let body = json!({"id": "evt_x", "type": "checkout.session.completed", "created": Utc::now().timestamp(),
            "data": {"object": {"id": "cs_x", "payment_status": "paid", "metadata": {"sku": "PRO-M"},
                "customer_details": {"email": "x@y.example"}}}});
        let bytes = serde_json::to_vec(&body).unwrap();
        let now = Utc::now().timestamp();
        let good = sign_hex(SECRET.as_bytes(), &[now.to_string().as_bytes(), b".", &bytes]);
        let stale_at = now - 3600;
        let stale = sign_hex(SECRET.as_bytes(), &[stale_at.to_string().as_bytes(), b".", &bytes]);
        let pretty = serde_json::to_vec_pretty(&body).unwrap();
        let cases: Vec<(Vec<u8>, Option<String>, StatusCode, &str)> = vec![
            (bytes.clone(), Some(format!("t={now},v1={}", "ab".repeat(32))), StatusCode::UNAUTHORIZED, "invalid_signature"),
            (bytes[..bytes.len() - 5].to_vec(), Some(format!("t={now},v1={good}")), StatusCode::UNAUTHORIZED, "invalid_signature"),
            (pretty, Some(format!("t={now},v1={good}")), StatusCode::UNAUTHORIZED, "invalid_signature"),
            (bytes.clone(), Some(format!("t={stale_at},v1={stale}")), StatusCode::BAD_REQUEST, "stale_delivery"),
            (bytes.clone(), None, StatusCode::UNAUTHORIZED, "invalid_signature"),
        ];
        for (payload, header, status, code) in cases {
            let mut request = app.client.post(format!("{}/commerce/v1/{conn}", app.base)).body(payload);
            if let Some(header) = header {
                request = request.header("stripe-signature", header);
            }
            let response = request.send().await.unwrap();
            assert_eq!(response.status(), status);
            let answer: Value = response.json().await.unwrap();
            assert_eq!(answer["error"]["code"], code);
        }
        assert!(app.fetch(&t.key, "/api/v1/entitlements").await["data"].as_array().unwrap().is_empty(), "nothing written");
        let rejected = app.fetch(&t.key, "/api/v1/storefront-deliveries?outcome=rejected").await;
        assert_eq!(rejected["data"].as_array().unwrap().len(), 5, "but every refusal is recorded");
        // Correctly signed first (before the address is limited): accepted.
        let response = app.client.post(format!("{}/commerce/v1/{conn}", app.base))
            .header("stripe-signature", format!("t={now},v1={good}")).body(bytes.clone()).send().await.unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        assert_eq!(app.fetch(&t.key, "/api/v1/entitlements").await["data"].as_array().unwrap().len(), 1);
        // A flood of forgeries from one address is cut off.
        let mut limited = None;
        for _ in 0..25 {
            let response = app.client.post(format!("{}/commerce/v1/{conn}", app.base))
                .header("stripe-signature", format!("t={now},v1={}", "cd".repeat(32))).body("{}").send().await.unwrap();
            if response.status() == StatusCode::TOO_MANY_REQUESTS {
                limited = response.headers().get("retry-after").map(|v| v.to_str().unwrap().to_owned());
                break;
            }
        }
        assert!(limited.is_some(), "429 with Retry-After");
        let unknown = app.client.post(format!("{}/commerce/v1/sfc_unknown", app.base)).body("{}").send().await.unwrap();
        assert_eq!(unknown.status(), StatusCode::NOT_FOUND, "the limit is per connection, not per address");
    }
}

backend_test! {
    async fn unmapped_items_are_kept_and_replayed_after_the_fix(app) {
        let t = app.tenant("Acme").await;
        seed_catalogue(app, &t.key).await;
        let conn = connection(app, &t.key, "paddle").await;
        let events = history("paddle", "sub_unmapped", Utc::now() - Duration::days(1));
        let (status, receipt) = deliver(app, &conn, "paddle", &events[0].0, &events[0].1).await;
        assert_eq!(status, StatusCode::OK, "stored and acknowledged, not dropped");
        assert_eq!(receipt["deliveries"][0]["outcome"], "unmapped");
        assert!(receipt["deliveries"][0]["detail"].as_str().unwrap().contains("pri_pro_monthly"));
        assert!(order_entitlement(app, &t.key, "sub_unmapped").await.is_none(), "not guessed");

        let bad = app.post(&t.key, "/api/v1/storefront-mappings", json!({"connection_id": conn, "provider_ref": "pri_x", "sku": "NOPE"})).await;
        assert_eq!(bad.body["error"]["code"], "unknown_sku");
        mappings(app, &t.key, &conn, "paddle").await;
        let delivery = receipt["deliveries"][0]["id"].as_str().unwrap();
        let replayed = app.act(Method::POST, &t.key, &format!("/api/v1/storefront-deliveries/{delivery}/replay"), json!({})).await;
        assert_eq!(replayed["deliveries"][0]["outcome"], "applied", "{replayed}");
        let e = order_entitlement(app, &t.key, "sub_unmapped").await.unwrap();
        assert_eq!(e["sku"], "PRO-M");
        let again = app.act(Method::POST, &t.key, &format!("/api/v1/storefront-deliveries/{delivery}/replay"), json!({})).await;
        assert_eq!(again["deliveries"][0]["outcome"], "duplicate");
        assert_eq!(app.fetch(&t.key, "/api/v1/mails").await["data"].as_array().unwrap().len(), 1);
    }
}

backend_test! {
    async fn fastspring_batches_and_maxio_forms_become_entitlements(app) {
        let t = app.tenant("Acme").await;
        seed_catalogue(app, &t.key).await;
        let fs = connection(app, &t.key, "fastspring").await;
        app.create(&t.key, "/api/v1/storefront-mappings", json!({"connection_id": fs, "provider_ref": "editor-pro-monthly", "sku": "PRO-M"})).await;
        let now = Utc::now();
        let batch = json!({"events": [
            {"id": "fs-evt-1", "type": "order.completed", "created": now.timestamp_millis(), "data": {
                "id": "fs-order-1", "reference": "ACME-1", "completed": true,
                "customer": {"first": "Leeroy", "last": "Jenkins", "email": "leeroy@guild.example"},
                "items": [{"product": "editor-pro-monthly", "quantity": 2, "subscription": "fs-sub-1"}]}},
            {"id": "fs-evt-2", "type": "subscription.activated", "created": now.timestamp_millis() + 1, "data": {
                "id": "fs-sub-1", "state": "active", "product": "editor-pro-monthly", "quantity": 2,
                "next": (now + Duration::days(30)).timestamp_millis(), "account": {"contact": {"email": "leeroy@guild.example"}}}},
        ]});
        let bytes = serde_json::to_vec(&batch).unwrap();
        let response = app.client.post(format!("{}/commerce/v1/{fs}", app.base))
            .header("x-fs-signature", entitle_server::commerce::signature::sign_base64(SECRET.as_bytes(), &[&bytes]))
            .body(bytes).send().await.unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        let receipt: Value = response.json().await.unwrap();
        assert_eq!(receipt["deliveries"].as_array().unwrap().len(), 2, "one outcome per batched event");
        let e = order_entitlement(app, &t.key, "fs-sub-1").await.expect("an entitlement for the subscription");
        assert_eq!(e["seat_count"], 10);
        assert_eq!(crate::helpers::time(&e["expires_at"]).timestamp_millis() / 1000, (now + Duration::days(30)).timestamp());

        let maxio = connection(app, &t.key, "maxio").await;
        app.create(&t.key, "/api/v1/storefront-mappings", json!({"connection_id": maxio, "provider_ref": "basic", "sku": "BASIC-M"})).await;
        let form = format!(
            "id=9001&event=signup_success&payload[subscription][id]=777&payload[subscription][state]=active\
             &payload[subscription][updated_at]={}&payload[subscription][current_period_ends_at]={}\
             &payload[subscription][product][handle]=basic&payload[subscription][customer][email]=ada%40maxio.example\
             &payload[subscription][customer][first_name]=Ada&payload[subscription][customer][last_name]=Byron",
            now.format("%Y-%m-%d %H:%M:%S -0500").to_string().replace(' ', "%20"),
            ((now + Duration::days(30)).format("%Y-%m-%d %H:%M:%S -0500")).to_string().replace(' ', "%20"),
        );
        let response = app.client.post(format!("{}/commerce/v1/{maxio}", app.base))
            .header("content-type", "application/x-www-form-urlencoded")
            .header("x-chargify-webhook-signature-hmac-sha-256", sign_hex(SECRET.as_bytes(), &[form.as_bytes()]))
            .body(form).send().await.unwrap();
        assert_eq!(response.status(), StatusCode::OK, "{}", response.text().await.unwrap());
        let e = order_entitlement(app, &t.key, "777").await.expect("an entitlement for the Maxio subscription");
        assert_eq!(e["sku"], "BASIC-M");
        let customer = app.fetch(&t.key, &format!("/api/v1/customers/{}", e["customer_id"].as_str().unwrap())).await;
        assert_eq!(customer["name"], "Ada Byron");
    }
}

/// A local stand-in for Stripe's and Paddle's APIs: the tests never reach the internet.
async fn fake_provider_api() -> String {
    use axum::extract::Path;
    use axum::http::HeaderMap;
    use axum::routing::get;
    fn authorised(headers: &HeaderMap) -> bool {
        headers.get("authorization").and_then(|v| v.to_str().ok()) == Some("Bearer rk_test_fake")
    }
    let app = axum::Router::new()
        .route(
            "/v1/checkout/sessions/{id}/line_items",
            get(|Path(id): Path<String>, headers: HeaderMap| async move {
                if !authorised(&headers) {
                    return (axum::http::StatusCode::UNAUTHORIZED, axum::Json(json!({}))).into_response();
                }
                axum::Json(json!({"object": "list", "data": [{"id": format!("li_{id}"), "quantity": 4,
                    "price": {"id": "price_pro_monthly", "product": "prod_1"}}]})).into_response()
            }),
        )
        .route(
            "/v1/customers/{id}",
            get(|Path(id): Path<String>, headers: HeaderMap| async move {
                if !authorised(&headers) {
                    return (axum::http::StatusCode::UNAUTHORIZED, axum::Json(json!({}))).into_response();
                }
                axum::Json(json!({"id": id, "object": "customer", "email": "stripe.buyer@example.com", "name": "Stripe Buyer"})).into_response()
            }),
        )
        .route(
            "/v1/accounts/{id}",
            get(|Path(id): Path<String>, headers: HeaderMap| async move {
                if !authorised(&headers) {
                    return (axum::http::StatusCode::UNAUTHORIZED, axum::Json(json!({}))).into_response();
                }
                axum::Json(json!({"basicInfo": {"id": id}, "billToContact": {"workEmail": "zuora.buyer@example.com",
                    "firstName": "Zed", "lastName": "Uora"}})).into_response()
            }),
        )
        .route(
            "/customers/{id}",
            get(|Path(id): Path<String>, headers: HeaderMap| async move {
                if !authorised(&headers) {
                    return (axum::http::StatusCode::UNAUTHORIZED, axum::Json(json!({}))).into_response();
                }
                axum::Json(json!({"data": {"id": id, "email": "paddle.buyer@example.com", "name": "Paddle Buyer"}})).into_response()
            }),
        );
    use axum::response::IntoResponse;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    base
}

configured_backend_test! {
    configure: |layer: &mut entitle_server::config::ConfigLayer| layer.provider_api_allow_hosts = Some("127.0.0.1".into()),
    async fn payloads_that_lack_data_are_completed_from_the_provider_api(app) {
        let t = app.tenant("Acme").await;
        seed_catalogue(app, &t.key).await;
        let api = fake_provider_api().await;
        let stripe = app.create(&t.key, "/api/v1/storefront-connections", json!({"provider": "stripe", "name": "Stripe",
            "secrets": [SECRET], "api_key": "rk_test_fake", "api_base_url": api})).await;
        assert_eq!(stripe["api_configured"], true);
        assert!(stripe.get("api_key").is_none(), "the API key is never shown");
        let stripe = stripe["id"].as_str().unwrap().to_owned();
        mappings(app, &t.key, &stripe, "stripe").await;
        // A one-time Checkout payment: no line items in the webhook, no metadata.
        let session = json!({"id": "evt_cs_1", "type": "checkout.session.completed", "created": Utc::now().timestamp(),
            "data": {"object": {"id": "cs_1", "mode": "payment", "payment_status": "paid", "metadata": {},
                "customer_details": {"email": "checkout@example.com"}}}});
        let (status, receipt) = deliver(app, &stripe, "stripe", "evt_cs_1", &session).await;
        assert_eq!(status, StatusCode::OK, "{receipt}");
        let e = order_entitlement(app, &t.key, "cs_1").await.expect("line items fetched from the API");
        assert_eq!((e["sku"].clone(), e["quantity"].clone()), (json!("PRO-M"), json!(4)));
        // A subscription created outside Checkout: only a customer id.
        let sub = json!({"id": "evt_sub_9", "type": "customer.subscription.created", "created": Utc::now().timestamp(),
            "data": {"object": {"id": "sub_9", "customer": "cus_9", "status": "active", "metadata": {},
                "items": {"data": [{"price": {"id": "price_pro_monthly"}, "quantity": 1,
                    "current_period_end": (Utc::now() + Duration::days(30)).timestamp()}]}}}});
        deliver(app, &stripe, "stripe", "evt_sub_9", &sub).await;
        let e = order_entitlement(app, &t.key, "sub_9").await.expect("customer email fetched from the API");
        let customer = app.fetch(&t.key, &format!("/api/v1/customers/{}", e["customer_id"].as_str().unwrap())).await;
        assert_eq!(customer["email"], "stripe.buyer@example.com");

        let paddle = app.create(&t.key, "/api/v1/storefront-connections", json!({"provider": "paddle", "name": "Paddle",
            "secrets": [SECRET], "api_key": "rk_test_fake", "api_base_url": api})).await["id"].as_str().unwrap().to_owned();
        mappings(app, &t.key, &paddle, "paddle").await;
        let created = json!({"event_id": "evt_p_1", "event_type": "subscription.created", "occurred_at": Utc::now().to_rfc3339(),
            "data": {"id": "sub_p_1", "status": "active", "customer_id": "ctm_1",
                "items": [{"price": {"id": "pri_pro_monthly"}, "quantity": 1}],
                "current_billing_period": {"ends_at": (Utc::now() + Duration::days(30)).to_rfc3339()}}});
        deliver(app, &paddle, "paddle", "evt_p_1", &created).await;
        let e = order_entitlement(app, &t.key, "sub_p_1").await.expect("Paddle customer email fetched");
        let customer = app.fetch(&t.key, &format!("/api/v1/customers/{}", e["customer_id"].as_str().unwrap())).await;
        assert_eq!(customer["email"], "paddle.buyer@example.com");

        // Zuora: the callout template signs into a header of the vendor's choice and carries ids only.
        let zuora = app.create(&t.key, "/api/v1/storefront-connections", json!({"provider": "zuora", "name": "Zuora",
            "secrets": [SECRET], "api_key": "rk_test_fake", "api_base_url": api, "signature_header": "X-Entitle-HMAC"})).await;
        let zuora = zuora["id"].as_str().unwrap().to_owned();
        app.create(&t.key, "/api/v1/storefront-mappings", json!({"connection_id": zuora, "provider_ref": "rp_pro", "sku": "PRO-P"})).await;
        let callout = serde_json::to_vec(&json!({"event": "CreateSubscription", "timestamp": Utc::now().to_rfc3339(),
            "subscription": "A-S00000042", "account": "8a8a0001", "rate_plan": "rp_pro", "quantity": "1",
            "status": "Active"})).unwrap();
        let response = app.client.post(format!("{}/commerce/v1/{zuora}", app.base))
            .header("zuora-notification-id", "zn-1")
            .header("x-entitle-hmac", entitle_server::commerce::signature::sign_base64(SECRET.as_bytes(), &[&callout]))
            .body(callout).send().await.unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        let e = order_entitlement(app, &t.key, "A-S00000042").await.expect("a Zuora entitlement");
        let customer = app.fetch(&t.key, &format!("/api/v1/customers/{}", e["customer_id"].as_str().unwrap())).await;
        assert_eq!(customer["email"], "zuora.buyer@example.com", "completed through Zuora's API");

        // A wrong key: the event is kept as incomplete, with the reason, not guessed.
        let wrong = app.create(&t.key, "/api/v1/storefront-connections", json!({"provider": "paddle", "name": "Paddle 2",
            "secrets": [SECRET], "api_key": "rk_wrong", "api_base_url": api})).await["id"].as_str().unwrap().to_owned();
        mappings(app, &t.key, &wrong, "paddle").await;
        let mut other = created.clone();
        other["event_id"] = json!("evt_p_2");
        other["data"]["id"] = json!("sub_p_2");
        let (_, receipt) = deliver(app, &wrong, "paddle", "evt_p_2", &other).await;
        assert_eq!(receipt["deliveries"][0]["outcome"], "incomplete");
        assert!(receipt["deliveries"][0]["detail"].as_str().unwrap().contains("401"), "{receipt}");
    }
}

backend_test! {
    async fn several_lines_become_several_entitlements_and_a_product_switch_replaces_one(app) {
        let t = app.tenant("Acme").await;
        seed_catalogue(app, &t.key).await;
        let conn = connection(app, &t.key, "generic").await;
        let now = Utc::now();
        let mut two_lines = generic("purchase", "o-77", now, None, Some(now + Duration::days(30)), Some("multi@example.com"));
        two_lines["items"] = json!([{"sku": "PRO-M", "quantity": 1}, {"sku": "BASIC-M", "quantity": 2}]);
        let (status, receipt) = deliver(app, &conn, "generic", "lines-1", &two_lines).await;
        assert_eq!(status, StatusCode::OK, "{receipt}");
        let first = order_entitlement(app, &t.key, "o-77").await.unwrap();
        let second = order_entitlement(app, &t.key, "o-77%232").await.unwrap();
        assert_eq!((first["sku"].clone(), second["sku"].clone()), (json!("PRO-M"), json!("BASIC-M")));
        assert_eq!(second["seat_count"], 2);
        assert_eq!(app.fetch(&t.key, "/api/v1/mails").await["data"].as_array().unwrap().len(), 1, "one mail lists the order's entitlements");

        // The first line moves to another product: its licence ends and a new one is issued.
        let other = app.create(&t.key, "/api/v1/products", json!({"name": "Other"})).await;
        let edition = app.create(&t.key, "/api/v1/editions", json!({"product_id": other["id"], "name": "E"})).await;
        let plan = app.create(&t.key, "/api/v1/plans", json!({"product_id": other["id"], "name": "P", "license_type": "perpetual"})).await;
        app.create(&t.key, "/api/v1/offerings", json!({"sku": "OTHER-P", "name": "o", "edition_id": edition["id"], "plan_id": plan["id"]})).await;
        let mut switched = generic("active", "o-77", now + Duration::seconds(5), None, None, None);
        switched["items"] = json!([{"sku": "OTHER-P", "quantity": 1}, {"sku": "BASIC-M", "quantity": 2}]);
        deliver(app, &conn, "generic", "lines-2", &switched).await;
        let replacement = order_entitlement(app, &t.key, "o-77").await.unwrap();
        assert_eq!(replacement["sku"], "OTHER-P");
        let old = app.fetch(&t.key, &format!("/api/v1/entitlements/{}", first["id"].as_str().unwrap())).await;
        assert_ne!(old["status"], "active", "the replaced licence no longer runs");
        assert_eq!(order_entitlement(app, &t.key, "o-77%232").await.unwrap()["id"], second["id"], "the other line is untouched");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fastspring_batch_partly_failing_is_acknowledged_partly() {
    let app = TestApp::spawn(crate::helpers::Backend::Sqlite).await.unwrap();
    let t = app.tenant("Acme").await;
    seed_catalogue(&app, &t.key).await;
    let fs = connection(&app, &t.key, "fastspring").await;
    // The database refuses one order's entitlement: that event fails, the other must still count.
    app.sql(
        "CREATE TRIGGER refuse_boom BEFORE INSERT ON entitlements WHEN NEW.order_ref = 'fs-boom'
         BEGIN SELECT RAISE(ABORT, 'refused for the test'); END",
    )
    .await
    .unwrap();
    let now = Utc::now().timestamp_millis();
    let order = |id: &str, order: &str| {
        json!({"id": id, "type": "order.completed", "created": now, "data": {"id": order, "completed": true,
            "customer": {"email": "batch@example.com"}, "items": [{"product": "p", "quantity": 1, "sku": "x"}]}})
    };
    let mut fine = order("fs-ok", "fs-fine");
    fine["data"]["items"] = json!([{"product": "PRO-M", "quantity": 1}]);
    let mut boom = order("fs-bad", "fs-boom");
    boom["data"]["items"] = json!([{"product": "PRO-M", "quantity": 1}]);
    app.create(
        &t.key,
        "/api/v1/storefront-mappings",
        json!({"connection_id": fs, "provider_ref": "PRO-M", "sku": "PRO-M"}),
    )
    .await;
    let bytes = serde_json::to_vec(&json!({"events": [fine, boom]})).unwrap();
    let response = app
        .client
        .post(format!("{}/commerce/v1/{fs}", app.base))
        .header(
            "x-fs-signature",
            entitle_server::commerce::signature::sign_base64(SECRET.as_bytes(), &[&bytes]),
        )
        .body(bytes)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::ACCEPTED);
    assert_eq!(
        response.text().await.unwrap(),
        "fs-ok",
        "only the processed event is acknowledged"
    );
    assert!(order_entitlement(&app, &t.key, "fs-fine").await.is_some());
    assert!(order_entitlement(&app, &t.key, "fs-boom").await.is_none());
    app.stop().await;
}
