//! The console's journey in a real headless Chromium: an admin builds a catalogue (a product, two
//! editions, a plan, an offering), connects Stripe and maps a price; a signed purchase arrives;
//! a support member finds the buyer by email, sees the entitlement and the mail sent, overrides
//! the seats and renews; the buyer's portal then shows the new expiry and seats.

use chrono::Utc;
use serde_json::json;

use crate::browser::Browser;
use crate::commerce::{deliver, SECRET};
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

/// Waits for a navigation to a URL containing `part`, and answers the URL without its query.
async fn wait_for_url(browser: &Browser, part: &str) -> String {
    for _ in 0..100 {
        let url = browser.current_url().await;
        if url.contains(part) {
            return url.split(['?', '#']).next().unwrap_or_default().to_owned();
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    browser.save_screenshot("console-journey-stuck").await;
    panic!(
        "never reached …{part}…; at {}: {}",
        browser.current_url().await,
        browser.main_text().await
    );
}

/// Sets a form control's value (selects included) as a person choosing it would.
async fn choose(browser: &Browser, css: &str, value: &str) {
    browser
        .execute(
            "document.querySelector(arguments[0]).value = arguments[1];",
            json!([css, value]),
        )
        .await;
}

/// Chooses the option whose text is `text` in the select `css`.
async fn choose_text(browser: &Browser, css: &str, text: &str) {
    browser
        .execute(
            "const s = document.querySelector(arguments[0]); \
             s.value = [...s.options].find(o => o.text.trim() === arguments[1]).value;",
            json!([css, text]),
        )
        .await;
}

async fn open_forms(browser: &Browser) {
    browser
        .execute(
            "document.querySelectorAll('details').forEach(d => d.open = true);",
            json!([]),
        )
        .await;
}

/// Sets a member's password from their link and signs them in.
async fn sign_in_staff(browser: &Browser, app: &TestApp, tenant: &str, email: &str, role: StaffRole) {
    let (_, link) = entitle_server::services::staff::create(&app.store, &app.base, tenant, email, role)
        .await
        .unwrap();
    browser.goto(&link).await;
    browser.fill("#password", "staff password 1").await;
    browser.fill("#confirm", "staff password 1").await;
    browser.find("form button").await.click().await;
    wait_for_text(browser, "Password set").await;
    browser.goto(&format!("{}/admin/{tenant}/sign-in", app.base)).await;
    browser.fill("#email", email).await;
    browser.fill("#password", "staff password 1").await;
    browser.find("main form button").await.click().await;
    wait_for_text(browser, "Dashboard").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_admin_sets_up_stripe_and_support_serves_the_buyer() {
    let app = TestApp::spawn(Backend::Sqlite).await.unwrap();
    let t = app.tenant("Acme Software").await;
    let base = format!("{}/admin/{}", app.base, t.id);
    let browser = Browser::start().await;

    // The admin builds the catalogue.
    sign_in_staff(&browser, &app, &t.id, "ada@acme.example", StaffRole::Admin).await;
    browser.save_screenshot("console-1-dashboard").await;
    browser.goto(&format!("{base}/catalogue")).await;
    browser.fill("#new-product-name", "PhotoForge").await;
    browser
        .find("form[action$='/catalogue/products'] button")
        .await
        .click()
        .await;
    let product = wait_for_url(&browser, "/catalogue/products/").await;
    for edition in ["Basic", "Pro"] {
        browser.goto(&product).await;
        open_forms(&browser).await;
        browser.fill("#new-editions-name", edition).await;
        browser
            .find("form[action$='/catalogue/editions'] button")
            .await
            .click()
            .await;
        // New parts of a product lead back to the product's page.
        wait_for_text(&browser, "Created.").await;
    }
    browser.goto(&product).await;
    open_forms(&browser).await;
    browser.fill("#new-plans-name", "Monthly").await;
    choose(&browser, "#new-plans-type", "subscription").await;
    browser.fill("#new-plans-duration-count", "1").await;
    choose(&browser, "#new-plans-duration-unit", "month").await;
    browser
        .find("form[action$='/catalogue/plans'] button")
        .await
        .click()
        .await;
    wait_for_text(&browser, "Created.").await;
    browser.goto(&product).await;
    open_forms(&browser).await;
    browser.fill("#new-offerings-name", "Pro monthly").await;
    browser.fill("#new-offerings-sku", "PF-PRO-M").await;
    choose_text(&browser, "#new-offerings-edition", "Pro").await;
    choose_text(&browser, "#new-offerings-plan", "Monthly").await;
    browser.fill("#new-offerings-seats", "3").await;
    browser
        .find("form[action$='/catalogue/offerings'] button")
        .await
        .click()
        .await;
    wait_for_text(&browser, "Created.").await;
    browser.goto(&product).await;
    browser.save_screenshot("console-2-catalogue").await;
    let offerings = app.fetch(&t.key, "/api/v1/offerings").await;
    assert_eq!(offerings["data"][0]["sku"], "PF-PRO-M", "{offerings}");
    assert_eq!(offerings["data"][0]["seat_count"], 3);

    // … connects Stripe and maps a price to the offering.
    browser.goto(&format!("{base}/storefronts")).await;
    choose(&browser, "#provider", "stripe").await;
    browser.fill("#name", "Stripe").await;
    browser.fill("#secret", SECRET).await;
    browser.find("form[action$='/storefronts'] button").await.click().await;
    let connection_page = wait_for_url(&browser, "/storefronts/connections/").await;
    let connection = connection_page.rsplit('/').next().unwrap().to_owned();
    browser.fill("#provider_ref", "price_pf_pro_monthly").await;
    browser.fill("#sku", "PF-PRO-M").await;
    browser.find("form[action$='/mappings'] button").await.click().await;
    wait_for_text(&browser, "price_pf_pro_monthly").await;
    browser.save_screenshot("console-3-storefront").await;

    // A signed purchase arrives from Stripe.
    let now = Utc::now();
    let checkout = json!({"id": "evt_cs_77", "type": "checkout.session.completed", "created": now.timestamp(),
        "data": {"object": {"id": "cs_77", "mode": "subscription", "payment_status": "paid", "subscription": "sub_77",
            "customer": "cus_stripe_77", "metadata": {},
            "customer_details": {"email": "grace@navy.example", "name": "Grace Hopper"}}}});
    let subscription = json!({"id": "evt_sub_77", "type": "customer.subscription.created", "created": now.timestamp(),
        "data": {"object": {"id": "sub_77", "object": "subscription", "customer": "cus_stripe_77", "status": "active",
            "cancel_at_period_end": false, "metadata": {}, "items": {"data": [
                {"price": {"id": "price_pf_pro_monthly"}, "quantity": 1,
                 "current_period_end": (now + chrono::Duration::days(30)).timestamp()}]}}}});
    for (id, body) in [("evt_cs_77", &checkout), ("evt_sub_77", &subscription)] {
        let (status, receipt) = deliver(&app, &connection, "stripe", id, body).await;
        assert!(status.is_success(), "{status} {receipt}");
    }
    let entitlements = app.fetch(&t.key, "/api/v1/entitlements").await;
    let e = entitlements["data"][0].clone();
    assert_eq!(e["sku"], "PF-PRO-M", "{entitlements}");
    let id = e["id"].as_str().unwrap().to_owned();

    // Support finds the buyer by email, sees the entitlement and the mail sent.
    browser.find("form.signout button").await.click().await;
    wait_for_url(&browser, "/sign-in").await;
    sign_in_staff(&browser, &app, &t.id, "sam@acme.example", StaffRole::Support).await;
    // The search box has no button: Enter submits it.
    browser.fill("#q", "grace@navy.example\u{E007}").await;
    wait_for_text(&browser, "grace@navy.example").await;
    browser.save_screenshot("console-4-search").await;
    browser.find("main table a").await.click().await;
    wait_for_text(&browser, "Entitlements").await;
    browser
        .find(&format!("a[href$='/entitlements/{id}']"))
        .await
        .click()
        .await;
    let page = wait_for_text(&browser, "Values and where they come from").await;
    assert!(page.contains("credentials"), "the mail sent for it");
    assert!(
        page.contains("evt_sub_77") || page.contains("customer.subscription.created"),
        "its deliveries"
    );
    browser.save_screenshot("console-5-entitlement").await;
    browser.set_window_size(390, 900).await;
    browser.save_screenshot("console-6-entitlement-phone").await;
    let sideways = browser
        .execute(
            "return document.documentElement.scrollWidth > document.documentElement.clientWidth;",
            json!([]),
        )
        .await;
    assert_eq!(
        sideways,
        json!(false),
        "the console's entitlement page does not scroll sideways on a phone"
    );
    browser.set_window_size(1280, 900).await;

    // … overrides the seats, then renews.
    browser.fill("#override-seats", "9").await;
    browser.find("form[action$='/override'] button").await.click().await;
    wait_for_text(&browser, "Overrides saved").await;
    browser.find("form[action$='/renew'] button").await.click().await;
    wait_for_text(&browser, "Renewed").await;
    let after = app.fetch(&t.key, &format!("/api/v1/entitlements/{id}")).await;
    assert_eq!(after["seat_count"], 9);
    assert_eq!(
        after["overridden_fields"],
        json!(["seat_count"]),
        "only what was changed"
    );
    assert!(time(&after["expires_at"]) > time(&e["expires_at"]));

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
