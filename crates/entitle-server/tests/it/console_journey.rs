//! Support's side of the journey in a real headless Chromium: a signed purchase arrives, a
//! support member finds the buyer by email, sees the entitlement and the mail sent, overrides the
//! seats and renews; the buyer's portal then shows the new expiry and seats.

use chrono::{Duration, Utc};

use crate::browser::Browser;
use crate::commerce::{connection, deliver, generic};
use crate::helpers::*;
use entitle_server::domain::staff::StaffRole;

async fn wait_for_text(browser: &Browser, expected: &str) -> String {
    for _ in 0..100 {
        let text = browser.main_text().await;
        if text.contains(expected) {
            return text;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    panic!("the page never said {expected:?}: {}", browser.main_text().await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn support_finds_the_buyer_overrides_seats_and_renews() {
    let app = TestApp::spawn(Backend::Sqlite).await.unwrap();
    let t = app.tenant("Acme Software").await;
    let c = seed_catalogue(&app, &t.key).await;
    let conn = connection(&app, &t.key, "generic").await;
    let now = Utc::now();
    let purchase = generic(
        "purchase",
        "order-8001",
        now,
        Some(("PRO-M", 1)),
        Some(now + Duration::days(30)),
        Some("grace@navy.example"),
    );
    let (status, _) = deliver(&app, &conn, "generic", "msg-8001", &purchase).await;
    assert!(status.is_success());
    let entitlements = app.fetch(&t.key, "/api/v1/entitlements?order_ref=order-8001").await;
    let e = entitlements["data"][0].clone();
    let id = e["id"].as_str().unwrap().to_owned();
    let _ = c;

    let (_, link) =
        entitle_server::services::staff::create(&app.store, &app.base, &t.id, "sam@acme.example", StaffRole::Support)
            .await
            .unwrap();
    let browser = Browser::start().await;
    browser.goto(&link).await;
    browser.fill("#password", "support password 1").await;
    browser.fill("#confirm", "support password 1").await;
    browser.find("form button").await.click().await;
    wait_for_text(&browser, "Password set").await;
    browser.goto(&format!("{}/admin/{}", app.base, t.id)).await;
    browser.fill("#email", "sam@acme.example").await;
    browser.fill("#password", "support password 1").await;
    browser.find("main form button").await.click().await;
    wait_for_text(&browser, "Dashboard").await;
    browser.save_screenshot("console-1-dashboard").await;

    // One box finds the buyer by email; the customer page leads to the entitlement.
    // The search box has no button: Enter submits it.
    browser.fill("#q", "grace@navy.example\u{E007}").await;
    wait_for_text(&browser, "grace@navy.example").await;
    browser.save_screenshot("console-2-search").await;
    browser.find("main table a").await.click().await;
    wait_for_text(&browser, "Entitlements").await;
    browser
        .find(&format!("a[href$='/entitlements/{id}']"))
        .await
        .click()
        .await;
    let page = wait_for_text(&browser, "Values and where they come from").await;
    assert!(page.contains("credentials"), "the mail sent for it");
    browser.save_screenshot("console-3-entitlement").await;

    // Override the seats, then renew.
    browser.fill("#override-seats", "9").await;
    browser.find("form[action$='/override'] button").await.click().await;
    wait_for_text(&browser, "Overrides saved").await;
    browser.find("form[action$='/renew'] button").await.click().await;
    wait_for_text(&browser, "Renewed").await;
    let after = app.fetch(&t.key, &format!("/api/v1/entitlements/{id}")).await;
    assert_eq!(after["seat_count"], 9);
    assert_eq!(
        after["overridden_fields"],
        serde_json::json!(["seat_count"]),
        "only what was changed"
    );
    assert!(time(&after["expires_at"]) > time(&e["expires_at"]));
    browser.save_screenshot("console-4-after-actions").await;

    // The buyer's portal shows the new seats and expiry.
    browser.goto(&format!("{}/portal/{}/sign-in", app.base, t.id)).await;
    browser.fill("#code", e["activation_code"].as_str().unwrap()).await;
    browser.find("form[action$='/sign-in/code'] button").await.click().await;
    let list = wait_for_text(&browser, "Your licences").await;
    let expiry = time(&after["expires_at"]).format("%Y-%m-%d").to_string();
    assert!(list.contains(&expiry), "{list}");
    assert!(list.contains("0 / 9"), "{list}");

    browser.quit().await;
    app.stop().await;
}
