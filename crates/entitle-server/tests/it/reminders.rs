//! Expiry reminders with a moved clock: the scan takes the time, so the test runs it days ahead.
//! Each reminder goes out once (mail to the customer's admins, event, webhook), a renewal cancels
//! the ones still to come, and a subscription that renews by itself gets none.

use chrono::{DateTime, Duration, Utc};
use reqwest::Method;
use serde_json::{json, Value};

use crate::helpers::{backend_test, entitle, seed_catalogue, time, TestApp};
use entitle_server::services::reminders::{scan, ScanReport};

fn settings(app: &TestApp) -> entitle_server::services::mail::MailSettings {
    entitle_server::services::mail::MailSettings {
        public_url: app.base.clone(),
        sender: entitle_server::domain::sender::SenderPolicy::new("entitle@localhost", vec![]),
        setup_link_lifetime: Duration::days(7),
    }
}

async fn scan_at(app: &TestApp, at: DateTime<Utc>) -> ScanReport {
    scan(&app.store, &settings(app), at).await.unwrap()
}

fn sent(n: usize) -> ScanReport {
    ScanReport { sent: n, skipped: 0 }
}

/// The reminder events of an entitlement: (action, days_before).
async fn reminders_of(app: &TestApp, key: &str, id: &str) -> Vec<(String, Value)> {
    let events = app
        .fetch(key, &format!("/api/v1/events?object_id={id}&limit=200"))
        .await;
    events["data"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| {
            let action = e["action"].as_str().unwrap();
            action == "entitlement.expiring" || action == "entitlement.grace_started" || action == "entitlement.expired"
        })
        .map(|e| {
            (
                e["action"].as_str().unwrap().to_owned(),
                e["summary"]["days_before"].clone(),
            )
        })
        .collect()
}

backend_test! {
    async fn a_moved_clock_sends_each_reminder_once_and_a_renewal_cancels_the_rest(app) {
        let t = app.tenant("Acme").await;
        let c = seed_catalogue(app, &t.key).await;
        let e = entitle(app, &t.key, &c.customer_id, "PRO-M", 1).await;
        let id = e["id"].as_str().unwrap();
        let path = format!("/api/v1/entitlements/{id}");
        // Sixty more days, so every reminder falls after the start whatever the month's length.
        let e = app.act(Method::POST, &t.key, &format!("{path}/renew"), json!({"duration": {"unit": "day", "count": 60}})).await;
        let expires = time(&e["expires_at"]);
        let hour = Duration::hours(1);

        assert_eq!(scan_at(app, expires - Duration::days(31)).await, sent(0), "nothing before 30 days ahead");
        assert_eq!(scan_at(app, expires - Duration::days(30) + hour).await, sent(1));
        assert_eq!(scan_at(app, expires - Duration::days(30) + hour).await, sent(0), "not twice");
        assert_eq!(scan_at(app, expires - Duration::days(29)).await, sent(0), "not again the next day either");
        assert_eq!(scan_at(app, expires - Duration::days(7) + hour).await, sent(1));

        // A renewal: the 1-day reminder of the old expiry never comes.
        let renewed = app.act(Method::POST, &t.key, &format!("{path}/renew"), json!({"duration": {"unit": "day", "count": 60}})).await;
        let new_expires = time(&renewed["expires_at"]);
        assert_eq!(scan_at(app, expires - Duration::days(1) + hour).await, sent(0), "the renewal cancelled it");
        assert_eq!(scan_at(app, new_expires - Duration::days(1) + hour).await, sent(1), "the nearest of the new expiry");
        assert_eq!(scan_at(app, new_expires + hour).await, sent(1), "grace started");
        assert_eq!(scan_at(app, new_expires + Duration::days(5) + hour).await, sent(1), "expired after 5 days of grace");
        assert_eq!(scan_at(app, new_expires + Duration::days(6)).await, sent(0));

        let reminders = reminders_of(app, &t.key, id).await;
        assert_eq!(
            reminders,
            [
                ("entitlement.expiring".to_owned(), json!(30)),
                ("entitlement.expiring".to_owned(), json!(7)),
                ("entitlement.expiring".to_owned(), json!(1)),
                ("entitlement.grace_started".to_owned(), Value::Null),
                ("entitlement.expired".to_owned(), Value::Null),
            ]
        );
        let mails = app.fetch(&t.key, &format!("/api/v1/mails?entitlement_id={id}&limit=200")).await;
        let kinds: Vec<(&str, &str)> = mails["data"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|m| m["kind"] != "credentials")
            .map(|m| (m["kind"].as_str().unwrap(), m["recipient"].as_str().unwrap()))
            .collect();
        assert_eq!(
            kinds,
            [
                ("expiring", "it@initech.example"),
                ("expiring", "it@initech.example"),
                ("expiring", "it@initech.example"),
                ("grace_started", "it@initech.example"),
                ("expired", "it@initech.example"),
            ],
            "to the customer's address"
        );
    }
}

backend_test! {
    async fn a_subscription_set_to_renew_gets_no_reminder(app) {
        let t = app.tenant("Acme").await;
        let c = seed_catalogue(app, &t.key).await;
        let e = app
            .create(&t.key, "/api/v1/entitlements",
                json!({"customer_id": c.customer_id, "sku": "PRO-M", "quantity": 1, "order_ref": "sub_renews"}))
            .await;
        let id = e["id"].as_str().unwrap();
        let e = app.act(Method::POST, &t.key, &format!("/api/v1/entitlements/{id}/renew"),
            json!({"duration": {"unit": "day", "count": 60}})).await;
        let expires = time(&e["expires_at"]);
        let mut order = entitle_server::commerce::event::OrderState::default();
        order.standing = Some((entitle_server::commerce::event::Standing::Active, Utc::now()));
        order.purchased = true;
        let state = |order: &entitle_server::commerce::event::OrderState| serde_json::to_string(order).unwrap();
        app.sql(&format!(
            "INSERT INTO commerce_orders (connection_id, order_ref, tenant_id, state, updated_at)
             VALUES ('sfc_test', 'sub_renews', '{}', '{}', 0)",
            t.id, state(&order)
        ))
        .await
        .unwrap();

        let report = scan_at(app, expires - Duration::days(30) + Duration::hours(1)).await;
        assert_eq!(report, ScanReport { sent: 0, skipped: 1 }, "it renews by itself");
        assert!(reminders_of(app, &t.key, id).await.is_empty());

        // Set to cancel at the period's end: now the customer needs the reminder.
        order.cancel_scheduled = true;
        app.sql(&format!("UPDATE commerce_orders SET state = '{}' WHERE order_ref = 'sub_renews'", state(&order)))
            .await
            .unwrap();
        assert_eq!(scan_at(app, expires - Duration::days(30) + Duration::hours(2)).await, sent(0), "handled once, skipped");
        assert_eq!(scan_at(app, expires - Duration::days(7) + Duration::hours(1)).await, sent(1));
        assert_eq!(reminders_of(app, &t.key, id).await, [("entitlement.expiring".to_owned(), json!(7))]);
    }
}
