//! Providers checked against their own published samples and signature vectors.

use axum::http::{HeaderMap, HeaderValue};
use chrono::{DateTime, Utc};

use super::event::Change;
use super::signature::{sign_hex, Rejection};
use super::{Provider, Verification};
use crate::domain::zone::Zone;

fn fixture(path: &str) -> Vec<u8> {
    let full = format!(
        "{}/../../../shared/fixtures/webhooks/{path}",
        env!("CARGO_MANIFEST_DIR")
    );
    std::fs::read(&full).unwrap_or_else(|e| panic!("{full}: {e}"))
}

fn headers(pairs: &[(&'static str, String)]) -> HeaderMap {
    let mut map = HeaderMap::new();
    for (name, value) in pairs {
        map.insert(*name, HeaderValue::from_str(value).unwrap());
    }
    map
}

fn at(unix: i64) -> DateTime<Utc> {
    DateTime::from_timestamp(unix, 0).unwrap()
}

const PADDLE_SECRET: &str = "pdl_ntfset_01hs0t3tw21j988db1pam5xg8m_GrOWLNef+vmtjJYq4mSnHNzvc8uWoJ1I";

/// Paddle's own known-answer vectors (paddle-python-sdk tests): the signature code is checked
/// against the provider, not only against itself.
#[test]
fn paddle_known_answer_vectors_verify() {
    for (file, header) in [
        (
            "paddle/paddle-python-sdk_standard_payload.json",
            "ts=1710498758;h1=558bf93944dbeb4790c7a8af6cb2ea435c8ca9c8396aafc1a4e37424ac132744",
        ),
        (
            "paddle/paddle-python-sdk_special_chars_payload.json",
            "ts=1710498288;h1=38219b3ba1578184e625c29d201a27cd25bd69e2ec9c3ab87dcb90d87ff73a41",
        ),
    ] {
        let mut body = fixture(file);
        while body.last() == Some(&b'\n') {
            body.pop();
        }
        let h = headers(&[("paddle-signature", header.to_owned())]);
        let secrets = vec!["old-rotated-secret".to_owned(), PADDLE_SECRET.to_owned()];
        let ts: i64 = header[3..13].parse().unwrap();
        let v = Verification {
            headers: &h,
            body: &body,
            secrets: &secrets,
            now: at(ts + 2),
            tolerance: None,
            signature_header: None,
        };
        assert_eq!(Provider::Paddle.verify(&v), Ok(()), "{file}");
        let late = Verification { now: at(ts + 60), ..v };
        assert_eq!(
            Provider::Paddle.verify(&late),
            Err(Rejection::Stale),
            "Paddle allows 5 s"
        );
        let mut tampered = body.clone();
        tampered[10] ^= 1;
        let forged = Verification {
            body: &tampered,
            now: at(ts),
            headers: &h,
            secrets: &secrets,
            tolerance: None,
            signature_header: None,
        };
        assert_eq!(Provider::Paddle.verify(&forged), Err(Rejection::BadSignature));
        let wrong = vec!["not-the-secret".to_owned()];
        let unknown = Verification {
            secrets: &wrong,
            body: &body,
            now: at(ts),
            headers: &h,
            tolerance: None,
            signature_header: None,
        };
        assert_eq!(Provider::Paddle.verify(&unknown), Err(Rejection::BadSignature));
    }
}

#[test]
fn stripe_signatures_follow_the_documented_scheme() {
    let body = fixture("stripe/openapi-fixtures3_event.json");
    let secret = "whsec_test_secret".to_owned();
    let t = 1_767_225_600i64;
    let sig = sign_hex(secret.as_bytes(), &[t.to_string().as_bytes(), b".", &body]);
    let h = headers(&[("stripe-signature", format!("t={t},v1=00ff,v1={sig},v0=abcd"))]);
    let secrets = vec![secret];
    let v = Verification {
        headers: &h,
        body: &body,
        secrets: &secrets,
        now: at(t + 100),
        tolerance: None,
        signature_header: None,
    };
    assert_eq!(Provider::Stripe.verify(&v), Ok(()), "any v1 may match (secret rolling)");
    assert_eq!(
        Provider::Stripe.verify(&Verification { now: at(t + 301), ..v }),
        Err(Rejection::Stale)
    );
    let reserialised = serde_json::to_vec(&serde_json::from_slice::<serde_json::Value>(&body).unwrap()).unwrap();
    let v2 = Verification {
        headers: &h,
        body: &reserialised,
        secrets: &secrets,
        now: at(t),
        tolerance: None,
        signature_header: None,
    };
    assert_eq!(
        Provider::Stripe.verify(&v2),
        Err(Rejection::BadSignature),
        "re-serialised JSON fails"
    );
    let none = HeaderMap::new();
    let v3 = Verification {
        headers: &none,
        body: &body,
        secrets: &secrets,
        now: at(t),
        tolerance: None,
        signature_header: None,
    };
    assert_eq!(Provider::Stripe.verify(&v3), Err(Rejection::MissingSignature));
}

#[test]
fn generic_signatures_are_standard_webhooks() {
    let body = br#"{"type":"purchase","occurred_at":"2026-05-01T12:00:00Z","order_ref":"o-1","items":[{"sku":"A"}]}"#;
    let secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw".to_owned();
    let sig = super::generic::sign(&secret, "msg_1", 1_767_225_600, body);
    let h = headers(&[
        ("webhook-id", "msg_1".into()),
        ("webhook-timestamp", "1767225600".into()),
        ("webhook-signature", format!("v1,bogus {sig}")),
    ]);
    let secrets = vec![secret];
    let v = Verification {
        headers: &h,
        body,
        secrets: &secrets,
        now: at(1_767_225_700),
        tolerance: None,
        signature_header: None,
    };
    assert_eq!(Provider::Generic.verify(&v), Ok(()));
    assert_eq!(
        Provider::Generic.verify(&Verification {
            now: at(1_767_226_000),
            ..v
        }),
        Err(Rejection::Stale)
    );
    let events = Provider::Generic.parse_delivery(&h, body, &Zone::utc()).unwrap();
    assert_eq!(events[0].event_id, "msg_1");
    assert_eq!(events[0].change, Change::Purchase);
}

#[test]
fn stripe_payloads_of_both_api_generations_are_read() {
    let session = fixture("stripe/pay-rails_data_checkout.session.completed.json");
    let mut envelope: serde_json::Value =
        serde_json::json!({"id": "evt_1", "type": "checkout.session.completed", "created": 1_700_000_000});
    envelope["data"] = serde_json::from_slice(&session).unwrap();
    let events = super::stripe::parse(&serde_json::to_vec(&envelope).unwrap()).unwrap();
    let e = &events[0];
    assert_eq!(e.change, Change::Purchase);
    assert_eq!(e.order_ref.as_deref(), Some("sub_1LNkeSKXBGcbgpbZ7jMqOPSi"));
    assert_eq!(e.customer.email.as_deref(), Some("chris@gorails.com"));
    assert!(e.items.is_none(), "a checkout session carries no line items");

    for (file, kind) in [
        (
            "stripe/openapi-fixtures3_subscription.json",
            "customer.subscription.updated",
        ),
        (
            "stripe/pay-rails_data_subscription.created.json",
            "customer.subscription.created",
        ),
    ] {
        let mut object: serde_json::Value = serde_json::from_slice(&fixture(file)).unwrap();
        if let Some(inner) = object.get("object").filter(|v| v.is_object()).cloned() {
            object = inner;
        }
        let envelope =
            serde_json::json!({"id": "evt_2", "type": kind, "created": 1_700_000_000, "data": {"object": object}});
        let e = &super::stripe::parse(&serde_json::to_vec(&envelope).unwrap()).unwrap()[0];
        assert!(e.order_ref.as_deref().unwrap().starts_with("sub_"), "{file}");
        let items = e.items.as_ref().unwrap();
        assert!(items[0].provider_ref.is_some(), "{file}: {items:?}");
        assert!(e.period_end.is_some(), "{file}: period end from either shape");
    }

    let invoice: serde_json::Value = serde_json::from_slice(&fixture("stripe/openapi-fixtures3_invoice.json")).unwrap();
    let envelope = serde_json::json!({"id": "evt_3", "type": "invoice.paid", "created": 1_700_000_000, "data": {"object": invoice}});
    let e = &super::stripe::parse(&serde_json::to_vec(&envelope).unwrap()).unwrap()[0];
    assert!(matches!(e.change, Change::Renewal | Change::Ignored));
}

#[test]
fn paddle_payloads_are_read() {
    let cases = [
        (
            "paddle/paddle-python-sdk_subscription.created.json",
            "subscription.created",
            Change::Active,
        ),
        (
            "paddle/paddle-python-sdk_subscription.canceled.json",
            "subscription.canceled",
            Change::Ended,
        ),
        (
            "paddle/paddle-python-sdk_subscription.past_due.json",
            "subscription.past_due",
            Change::PaymentFailed,
        ),
        (
            "paddle/paddle-python-sdk_subscription.trialing.json",
            "subscription.trialing",
            Change::Trial,
        ),
    ];
    for (file, kind, change) in cases {
        let data: serde_json::Value = serde_json::from_slice(&fixture(file)).unwrap();
        let envelope = serde_json::json!({"event_id": "evt_p", "event_type": kind, "occurred_at": "2024-04-12T10:18:49.621022Z", "data": data});
        let e = &super::paddle::parse(&serde_json::to_vec(&envelope).unwrap()).unwrap()[0];
        assert_eq!(e.change, change, "{file}");
        assert!(e.order_ref.as_deref().unwrap().starts_with("sub_"));
        if change != Change::Ended {
            assert!(e.items.as_ref().unwrap()[0]
                .provider_ref
                .as_deref()
                .unwrap()
                .starts_with("pri_"));
        }
    }
    let data: serde_json::Value =
        serde_json::from_slice(&fixture("paddle/paddle-python-sdk_transaction.completed.json")).unwrap();
    let envelope = serde_json::json!({"event_id": "evt_t", "event_type": "transaction.completed", "occurred_at": "2024-04-12T10:18:49Z", "data": data});
    let e = &super::paddle::parse(&serde_json::to_vec(&envelope).unwrap()).unwrap()[0];
    assert!(matches!(e.change, Change::Purchase | Change::Renewal));
    assert!(e.aliases[0].starts_with("txn_"));
}

#[test]
fn lemon_squeezy_and_shopify_sign_the_raw_body() {
    let secret = "shared-secret-123".to_owned();
    let secrets = vec![secret.clone()];
    let body = fixture("lemonsqueezy/pay-rails_subscription_created.json");
    let h = headers(&[("x-signature", sign_hex(secret.as_bytes(), &[&body]))]);
    let v = Verification {
        headers: &h,
        body: &body,
        secrets: &secrets,
        now: at(0),
        tolerance: None,
        signature_header: None,
    };
    assert_eq!(Provider::LemonSqueezy.verify(&v), Ok(()));
    let other = headers(&[("x-signature", sign_hex(b"wrong", &[&body]))]);
    assert_eq!(
        Provider::LemonSqueezy.verify(&Verification { headers: &other, ..v }),
        Err(Rejection::BadSignature)
    );

    let order = fixture("shopify/shopify-test-notification-order_via-kanvas-ecosystem-api.json");
    let sig = super::signature::sign_base64(secret.as_bytes(), &[&order]);
    let h = headers(&[
        ("x-shopify-hmac-sha256", sig),
        ("x-shopify-topic", "orders/paid".into()),
        ("x-shopify-webhook-id", "wh-1".into()),
    ]);
    let v = Verification {
        headers: &h,
        body: &order,
        secrets: &secrets,
        now: at(0),
        tolerance: None,
        signature_header: None,
    };
    assert_eq!(Provider::Shopify.verify(&v), Ok(()));
    let e = &Provider::Shopify.parse_delivery(&h, &order, &Zone::utc()).unwrap()[0];
    assert_eq!(
        e.order_ref.as_deref(),
        Some("820982911946154508"),
        "64-bit order ids survive"
    );
    assert_eq!(e.event_id, "wh-1");
    assert_eq!(e.customer.email.as_deref(), Some("jon@example.com"));
    assert!(!e.items.as_ref().unwrap().is_empty());
    assert_eq!(e.change, Change::Ignored, "the sample order is voided, not paid");
}

#[test]
fn lemon_squeezy_payloads_are_read() {
    let cases = [
        ("lemonsqueezy/pay-rails_order_created.json", Change::Purchase),
        ("lemonsqueezy/pay-rails_subscription_created.json", Change::Trial),
        ("lemonsqueezy/pay-rails_subscription_updated.json", Change::Trial),
        (
            "lemonsqueezy/pay-rails_subscription_payment_success.json",
            Change::Renewal,
        ),
        (
            "lemonsqueezy/pay-rails_subscription_payment_refunded.json",
            Change::Refunded,
        ),
    ];
    for (file, change) in cases {
        let e = &Provider::LemonSqueezy
            .parse_delivery(&HeaderMap::new(), &fixture(file), &Zone::utc())
            .unwrap()[0];
        assert_eq!(e.change, change, "{file}");
        assert!(
            e.order_ref.is_some() || !e.aliases.is_empty(),
            "{file}: names its order"
        );
    }
    let sub = &Provider::LemonSqueezy
        .parse_delivery(
            &HeaderMap::new(),
            &fixture("lemonsqueezy/pay-rails_subscription_created.json"),
            &Zone::utc(),
        )
        .unwrap()[0];
    assert_eq!(
        sub.order_ref.as_deref(),
        Some("order:2"),
        "the subscription shares its order's reference"
    );
    assert_eq!(sub.items.as_ref().unwrap()[0].quantity, 5);
    assert_eq!(sub.customer.email.as_deref(), Some("dan@lemonsqueezy.com"));
}

#[test]
fn fastspring_batches_and_maxio_forms_are_read() {
    let secret = "fs-secret-123".to_owned();
    let data: serde_json::Value =
        serde_json::from_slice(&fixture("fastspring/cashier-fastspring_order_completed.json")).unwrap();
    let sub: serde_json::Value =
        serde_json::from_slice(&fixture("fastspring/cashier-fastspring_subscription_deactivated.json")).unwrap();
    let batch = serde_json::json!({"events": [
        {"id": "fs-1", "type": "order.completed", "created": 1_501_611_722_763i64, "data": data},
        {"id": "fs-2", "type": "subscription.deactivated", "created": 1_508_177_103_541i64, "data": sub},
    ]});
    let body = serde_json::to_vec(&batch).unwrap();
    let h = headers(&[(
        "x-fs-signature",
        super::signature::sign_base64(secret.as_bytes(), &[&body]),
    )]);
    let secrets = vec![secret];
    let v = Verification {
        headers: &h,
        body: &body,
        secrets: &secrets,
        now: at(0),
        tolerance: None,
        signature_header: None,
    };
    assert_eq!(Provider::FastSpring.verify(&v), Ok(()));
    let events = Provider::FastSpring.parse_delivery(&h, &body, &Zone::utc()).unwrap();
    assert_eq!(events.len(), 2, "one event per batch entry");
    assert_eq!(events[0].change, Change::Purchase);
    assert_eq!(
        events[0].order_ref.as_deref(),
        Some("ttyyWWxQRv-P0WXUYXphzg"),
        "the subscription the order started"
    );
    assert_eq!(events[0].customer.email.as_deref(), Some("ne1@all.com"));
    assert_eq!(
        events[0].items.as_ref().unwrap()[0].provider_ref.as_deref(),
        Some("falcon-monthly-subscriptions")
    );
    assert_eq!(events[1].change, Change::Ended);

    let form = fixture("chargify/maxio-ab-golang-sdk_payment_success_body.txt");
    let e = &Provider::Maxio
        .parse_delivery(&HeaderMap::new(), &form, &Zone::utc())
        .unwrap()[0];
    assert_eq!(e.event_id, "141765008");
    assert_eq!(e.order_ref.as_deref(), Some("15100141"));
    assert_eq!(e.change, Change::Active);
    assert_eq!(e.customer.email.as_deref(), Some("pookie999@example.com"));
    assert_eq!(e.items.as_ref().unwrap()[0].provider_ref.as_deref(), Some("basic"));
    assert!(e.period_end.is_some(), "local times with offsets are read");
    let key = "site-shared-key".to_owned();
    let h = headers(&[(
        "x-chargify-webhook-signature-hmac-sha-256",
        sign_hex(key.as_bytes(), &[&form]),
    )]);
    let keys = vec![key];
    assert_eq!(
        Provider::Maxio.verify(&Verification {
            headers: &h,
            body: &form,
            secrets: &keys,
            now: at(0),
            tolerance: None,
            signature_header: None,
        }),
        Ok(())
    );
}

#[test]
fn zuora_callouts_accept_a_configured_hmac_header_or_basic_auth() {
    let body = br#"{"event":"CreateSubscription","timestamp":"2026-05-01T12:00:00Z","subscription":"A-S0001","account":"8a8a","email":"z@example.com","rate_plan":"rp_pro","quantity":"2.0","term_end":"2027-05-01","status":"Active"}"#;
    let secrets = vec!["zuora-hmac-key".to_owned(), "basic:zuora:s3cret".to_owned()];
    let signed = super::signature::sign_base64(b"zuora-hmac-key", &[body]);
    let h = headers(&[("x-entitle-hmac", signed), ("zuora-notification-id", "n-1".into())]);
    let v = Verification {
        headers: &h,
        body,
        secrets: &secrets,
        now: at(0),
        tolerance: None,
        signature_header: Some("x-entitle-hmac"),
    };
    assert_eq!(Provider::Zuora.verify(&v), Ok(()));
    let default_header = Verification {
        signature_header: None,
        ..v
    };
    assert_eq!(
        Provider::Zuora.verify(&default_header),
        Err(Rejection::MissingSignature)
    );
    use base64::Engine;
    let basic = base64::engine::general_purpose::STANDARD.encode("zuora:s3cret");
    let h = headers(&[
        ("authorization", format!("Basic {basic}")),
        ("zuora-notification-id", "n-1".into()),
    ]);
    let v = Verification {
        headers: &h,
        body,
        secrets: &secrets,
        now: at(0),
        tolerance: None,
        signature_header: None,
    };
    assert_eq!(Provider::Zuora.verify(&v), Ok(()));
    let wrong = base64::engine::general_purpose::STANDARD.encode("zuora:guess");
    let h2 = headers(&[("authorization", format!("Basic {wrong}"))]);
    assert_eq!(
        Provider::Zuora.verify(&Verification { headers: &h2, ..v }),
        Err(Rejection::BadSignature)
    );
    let e = &Provider::Zuora.parse_delivery(&h, body, &Zone::utc()).unwrap()[0];
    assert_eq!(e.event_id, "n-1");
    assert_eq!(e.change, Change::Purchase);
    assert_eq!(e.order_ref.as_deref(), Some("A-S0001"));
    assert_eq!(e.items.as_ref().unwrap()[0].quantity, 2);
    assert!(e.period_end.is_some());
}

fn zuora(body: &str) -> super::event::CommerceEvent {
    let h = headers(&[("zuora-notification-id", "n-tz".into())]);
    let la = Provider::Zuora.default_zone();
    Provider::Zuora
        .parse_delivery(&h, body.as_bytes(), &la)
        .unwrap()
        .remove(0)
}

fn utc(text: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(text).unwrap().with_timezone(&Utc)
}

#[test]
fn zuora_reads_pacific_dates_and_tells_a_scheduled_cancellation_from_an_end() {
    // Zuora's documented date-time form, without an offset, in the skipped hour of 8 March 2015.
    let created = zuora(
        r#"{"event":"CreateSubscription","timestamp":"2015-03-08T02:00:00","subscription":"A-S1","rate_plan":"rp",
            "term_end":"2016-03-08","status":"Active","email":"z@example.com"}"#,
    );
    assert_eq!(created.occurred_at, utc("2015-03-08T10:00:00Z"));
    assert_eq!(
        created.period_end,
        Some(utc("2016-03-08T08:00:00Z")),
        "midnight Pacific, not UTC"
    );
    // Cancelled today, effective at the term end: valid until then.
    let scheduled = zuora(
        r#"{"event":"CancelSubscription","timestamp":"2015-06-01T09:00:00","subscription":"A-S1",
            "term_end":"2016-03-08","status":"Cancelled"}"#,
    );
    assert_eq!(scheduled.change, Change::CancelScheduled);
    assert_eq!(scheduled.period_end, Some(utc("2016-03-08T08:00:00Z")));
    let dated = zuora(
        r#"{"event":"CancelSubscription","timestamp":"2015-06-01T09:00:00","subscription":"A-S1",
            "effective_date":"2015-07-01","term_end":"2016-03-08","status":"Cancelled"}"#,
    );
    assert_eq!(dated.change, Change::CancelScheduled);
    assert_eq!(
        dated.period_end,
        Some(utc("2015-07-01T07:00:00Z")),
        "the effective date wins"
    );
    // Effective now (or in the past): the licence ends.
    let now = zuora(
        r#"{"event":"CancelSubscription","timestamp":"2015-06-01T09:00:00","subscription":"A-S1",
            "effective_date":"2015-06-01","term_end":"2016-03-08","status":"Cancelled"}"#,
    );
    assert_eq!(now.change, Change::Ended);
    let partial = zuora(
        r#"{"event":"RefundProcessed","timestamp":"2015-06-01T09:00:00Z","subscription":"A-S1",
            "refund_amount":"10.00","payment_amount":"99.00"}"#,
    );
    assert_eq!(partial.change, Change::PartialRefund);
    let full = zuora(r#"{"event":"RefundProcessed","timestamp":"2015-06-01T09:00:00Z","subscription":"A-S1"}"#);
    assert_eq!(full.change, Change::Refunded);
}

#[test]
fn refunds_are_whole_or_partial_by_the_providers_own_fields() {
    // Lemon Squeezy: the published sample is a whole refund; a partial one says so.
    let mut body: serde_json::Value =
        serde_json::from_slice(&fixture("lemonsqueezy/pay-rails_subscription_payment_refunded.json")).unwrap();
    let read = |body: &serde_json::Value| {
        Provider::LemonSqueezy
            .parse_delivery(&HeaderMap::new(), &serde_json::to_vec(body).unwrap(), &Zone::utc())
            .unwrap()
            .remove(0)
    };
    assert_eq!(read(&body).change, Change::Refunded);
    body["data"]["attributes"]["status"] = "partial_refund".into();
    body["data"]["attributes"]["refunded_amount"] = 100.into();
    assert_eq!(read(&body).change, Change::PartialRefund);
    let mut order: serde_json::Value =
        serde_json::from_slice(&fixture("lemonsqueezy/pay-rails_order_created.json")).unwrap();
    order["meta"]["event_name"] = "order_refunded".into();
    order["data"]["attributes"]["status"] = "partial_refund".into();
    order["data"]["attributes"]["refunded"] = true.into();
    order["data"]["attributes"]["refunded_amount"] = 1000.into();
    assert_eq!(read(&order).change, Change::PartialRefund);
    order["data"]["attributes"]["status"] = "refunded".into();
    assert_eq!(read(&order).change, Change::Refunded);

    // Shopify: a refund names its lines; a goodwill refund none.
    let refund = serde_json::json!({"id": 1, "order_id": 820982911946154508u64, "created_at": "2026-01-01T00:00:00Z",
        "refund_line_items": [{"line_item_id": 866550311766439020u64, "quantity": 1,
            "line_item": {"id": 866550311766439020u64, "variant_id": 49121760117052u64, "quantity": 1, "sku": null}}]});
    let h = headers(&[
        ("x-shopify-topic", "refunds/create".into()),
        ("x-shopify-webhook-id", "r-1".into()),
    ]);
    let e = &Provider::Shopify
        .parse_delivery(&h, &serde_json::to_vec(&refund).unwrap(), &Zone::utc())
        .unwrap()[0];
    assert_eq!(e.change, Change::PartialRefund);
    assert_eq!(e.order_ref.as_deref(), Some("820982911946154508"));
    assert_eq!(e.refunded_items[0].provider_ref.as_deref(), Some("49121760117052"));

    // Maxio: amounts in cents.
    let form = |refund: u32| {
        format!(
            "id=5&event=refund_success&payload[subscription_id]=777&payload[timestamp]=2026-01-01%2010:00:00%20-0500\
                 &payload[refund_amount_in_cents]={refund}&payload[payment_amount_in_cents]=5000"
        )
    };
    let maxio = |refund| {
        Provider::Maxio
            .parse_delivery(&HeaderMap::new(), form(refund).as_bytes(), &Zone::utc())
            .unwrap()
            .remove(0)
    };
    assert_eq!(maxio(1000).change, Change::PartialRefund);
    assert_eq!(maxio(1000).order_ref.as_deref(), Some("777"));
    assert_eq!(maxio(5000).change, Change::Refunded);

    // FastSpring: the amount returned against the order's total, or the lines returned.
    let fs = |data: serde_json::Value| {
        let body = serde_json::json!({"events": [{"id": "r", "type": "return.created", "created": 1, "data": data}]});
        Provider::FastSpring
            .parse_delivery(&HeaderMap::new(), &serde_json::to_vec(&body).unwrap(), &Zone::utc())
            .unwrap()
            .remove(0)
    };
    let whole = fs(serde_json::json!({"totalReturn": 30.0, "original": {"id": "o1", "total": 30.0}}));
    assert_eq!(whole.change, Change::Refunded);
    let part = fs(
        serde_json::json!({"totalReturn": 10.0, "original": {"id": "o1", "total": 30.0},
        "items": [{"product": "editor-pro-monthly", "quantity": 1}]}),
    );
    assert_eq!(part.change, Change::PartialRefund);
    assert_eq!(
        part.refunded_items[0].provider_ref.as_deref(),
        Some("editor-pro-monthly")
    );
    assert_eq!(
        fs(serde_json::json!({"original": {"id": "o1"}})).change,
        Change::Refunded,
        "nothing said: whole"
    );
}

#[test]
fn a_fastspring_renewal_without_expansion_asks_for_its_next_date() {
    let data = serde_json::from_slice::<serde_json::Value>(&fixture(
        "fastspring/cashier-fastspring_subscription_charge_completed.json",
    ))
    .unwrap();
    let batch = |data: &serde_json::Value| {
        let body = serde_json::json!({"events": [{"id": "c", "type": "subscription.charge.completed", "created": 1, "data": data}]});
        Provider::FastSpring
            .parse_delivery(&HeaderMap::new(), &serde_json::to_vec(&body).unwrap(), &Zone::utc())
            .unwrap()
            .remove(0)
    };
    let expanded = batch(&data);
    assert!(expanded.period_end.is_some() && expanded.missing.is_none() && expanded.lookups.is_empty());
    let mut flat = data.clone();
    flat["subscription"] = data["subscription"]["id"].clone();
    let e = batch(&flat);
    assert_eq!(e.change, Change::Renewal);
    assert!(e.period_end.is_none() && e.missing.is_some());
    assert!(matches!(
        &e.lookups[..],
        [super::event::Lookup::FastSpringSubscription { .. }]
    ));
}

#[test]
fn a_stripe_invoice_names_its_subscription_prices() {
    let mut data: serde_json::Value =
        serde_json::from_slice(&fixture("stripe/pay-rails_data_invoice.payment_failed.json")).unwrap();
    data["object"]["status"] = "paid".into();
    let envelope = serde_json::json!({"id": "evt_inv", "type": "invoice.paid", "created": 1_700_000_000, "data": data});
    let e = &super::stripe::parse(&serde_json::to_vec(&envelope).unwrap()).unwrap()[0];
    assert_eq!(e.change, Change::Renewal);
    assert_eq!(e.order_ref.as_deref(), Some("sub_1234"));
    let items = e.items.as_ref().expect("the invoice's lines");
    assert_eq!(items[0].provider_ref.as_deref(), Some("price_1234"));
    assert_eq!(items[0].quantity, 1);
}

#[test]
fn a_maxio_component_allocation_is_the_subscriptions_quantity_until_another() {
    let form =
        "id=77&event=component_allocation_change&payload[subscription][id]=777&payload[subscription][state]=active\
                &payload[subscription][updated_at]=2026-02-01%2010:00:00%20-0500&payload[product][handle]=basic\
                &payload[component][id]=55&payload[component][handle]=seats&payload[previous_allocation]=1\
                &payload[new_allocation]=7";
    let e = Provider::Maxio
        .parse_delivery(&HeaderMap::new(), form.as_bytes(), &Zone::utc())
        .unwrap()
        .remove(0);
    assert_eq!(e.quantity, Some(7));
    assert_eq!(e.change, Change::Active);
    assert_eq!(e.items.as_ref().unwrap()[0].provider_ref.as_deref(), Some("basic"));
    // A renewal after it says nothing of the quantity: the allocation holds, in any order.
    let renewal = "id=78&event=renewal_success&payload[subscription][id]=777&payload[subscription][state]=active\
                   &payload[subscription][updated_at]=2026-03-01%2010:00:00%20-0500\
                   &payload[subscription][product][handle]=basic";
    let r = Provider::Maxio
        .parse_delivery(&HeaderMap::new(), renewal.as_bytes(), &Zone::utc())
        .unwrap()
        .remove(0);
    assert_eq!(r.quantity, None);
    for order in [[&e, &r], [&r, &e]] {
        let mut state = super::event::OrderState::default();
        for event in order {
            state.merge(event);
        }
        assert_eq!(state.lines()[0].quantity, 7);
    }
}

#[test]
fn the_providers_published_samples_mean_what_the_providers_say() {
    let stripe = |kind: &str, file: &str| {
        let data: serde_json::Value = serde_json::from_slice(&fixture(file)).unwrap();
        let data = if data.get("object").is_some() {
            data
        } else {
            serde_json::json!({ "object": data })
        };
        let envelope =
            serde_json::json!({"id": format!("evt_{kind}"), "type": kind, "created": 1_700_000_000, "data": data});
        super::stripe::parse(&serde_json::to_vec(&envelope).unwrap())
            .unwrap()
            .remove(0)
    };
    // pay's sample refund returns 500 of 1500: partial.
    assert_eq!(
        stripe("charge.refunded", "stripe/pay-rails_data_charge.refunded.json").change,
        Change::PartialRefund
    );
    assert_eq!(
        stripe(
            "customer.subscription.deleted",
            "stripe/pay-rails_data_subscription.deleted.json"
        )
        .change,
        Change::Ended
    );
    // A dispute still open takes nothing back.
    assert_eq!(
        stripe("charge.dispute.closed", "stripe/openapi-fixtures3_dispute.json").change,
        Change::Ignored
    );

    let fastspring = |kind: &str, file: &str| {
        let data: serde_json::Value = serde_json::from_slice(&fixture(file)).unwrap();
        let body = serde_json::json!({"events": [{"id": "e", "type": kind, "created": 1, "data": data}]});
        Provider::FastSpring
            .parse_delivery(&HeaderMap::new(), &serde_json::to_vec(&body).unwrap(), &Zone::utc())
            .unwrap()
            .remove(0)
    };
    let activated = fastspring(
        "subscription.activated",
        "fastspring/cashier-fastspring_subscription_activated.json",
    );
    assert_eq!(activated.change, Change::Active);
    assert_eq!(activated.period_end.map(|t| t.timestamp_millis()), Some(1504224000000));
    assert_eq!(
        fastspring(
            "subscription.canceled",
            "fastspring/cashier-fastspring_subscription_canceled.json"
        )
        .change,
        Change::CancelScheduled
    );
    assert_eq!(
        fastspring(
            "subscription.deactivated",
            "fastspring/cashier-fastspring_subscription_deactivated.json"
        )
        .change,
        Change::Ended
    );
    assert_eq!(
        fastspring(
            "subscription.charge.completed",
            "fastspring/cashier-fastspring_subscription_charge_completed.json"
        )
        .change,
        Change::Renewal
    );

    // Paddle: a refund pending approval takes nothing back; approved, it is full or partial.
    let paddle = |status: &str, kind: Option<&str>| {
        let mut data: serde_json::Value =
            serde_json::from_slice(&fixture("paddle/paddle-python-sdk_adjustment.updated.json")).unwrap();
        data["status"] = status.into();
        if let Some(kind) = kind {
            data["type"] = kind.into();
        }
        let envelope = serde_json::json!({"event_id": "evt_adj", "event_type": "adjustment.updated",
            "occurred_at": "2026-01-01T00:00:00Z", "data": data});
        super::paddle::parse(&serde_json::to_vec(&envelope).unwrap())
            .unwrap()
            .remove(0)
    };
    assert_eq!(paddle("pending_approval", None).change, Change::Ignored);
    assert_eq!(paddle("approved", None).change, Change::Refunded);
    assert_eq!(paddle("approved", Some("partial")).change, Change::PartialRefund);
    assert_eq!(
        paddle("approved", Some("partial")).order_ref.as_deref(),
        Some("sub_01hvccbx32q2gb40sqx7n42430")
    );
}
