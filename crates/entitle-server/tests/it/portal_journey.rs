//! The whole journey in a real headless Chromium: a signed storefront purchase, the credentials
//! mail in the SMTP sink, its portal link, signing in with the mailed code, the application
//! activating, the device appearing, the buyer releasing it, and the application refused.
//! Screenshots of each page land in the screenshot folder (see `browser::screenshot_dir`).

use chrono::{Duration, Utc};
use reqwest::{Method, StatusCode};
use serde_json::json;

use crate::browser::Browser;
use crate::commerce::{connection, deliver, generic};
use crate::helpers::*;
use crate::smtp::SmtpSink;

/// The first `http…` URL in `text` that contains `needle`.
fn url_containing(text: &str, needle: &str) -> String {
    let at = text.find(needle).expect("the link in the mail");
    let start = text[..at].rfind("http").expect("a URL");
    text[start..]
        .chars()
        .take_while(|c| !c.is_whitespace() && *c != '"' && *c != '<')
        .collect()
}

/// The activation code printed after `Activation code:` in the plain-text part.
fn code_in(text: &str) -> String {
    let at = text.find("Activation code:").expect("a code in the mail") + "Activation code:".len();
    text[at..]
        .trim_start()
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric() || *c == '-')
        .collect()
}

/// Waits (up to 10 s) for a navigation a click started: until the URL ends with `suffix`.
async fn wait_for_url(browser: &Browser, suffix: &str) {
    for _ in 0..100 {
        if browser.current_url().await.ends_with(suffix) {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    panic!("never reached …{suffix}; at {}", browser.current_url().await);
}

/// Waits (up to 10 s) until the page's main text contains `expected`, and returns it.
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
async fn a_buyer_follows_the_mail_into_the_portal_and_releases_a_device() {
    let sink = SmtpSink::start().await;
    let app = TestApp::spawn_configured(Backend::Sqlite, |c| c.smtp_url = Some(sink.url()))
        .await
        .unwrap();
    let t = app.tenant("Acme Software").await;
    let c = seed_catalogue(&app, &t.key).await;
    let branded = app
        .request(
            Method::PUT,
            Some(&t.key),
            "/api/v1/branding",
            Some(json!({"display_name": "PhotoForge", "accent_colour": "#6d28d9"})),
        )
        .await;
    assert_eq!(branded.status, StatusCode::OK, "{}", branded.body);

    // A signed purchase arrives; the credentials mail goes out.
    let conn = connection(&app, &t.key, "generic").await;
    let now = Utc::now();
    let purchase = generic(
        "purchase",
        "order-7001",
        now,
        Some(("PRO-M", 1)),
        Some(now + Duration::days(30)),
        Some("grace@navy.example"),
    );
    let (status, _) = deliver(&app, &conn, "generic", "msg-7001", &purchase).await;
    assert!(status.is_success(), "{status}");
    let mail = sink.wait_for(1).await.remove(0).decoded();
    let portal_link = url_containing(&mail, &format!("/portal/{}", t.id));
    let code = code_in(&mail);
    assert_eq!(code.len(), 29, "{code}");

    // The link lands on the sign-in page; the mailed code signs in.
    let browser = Browser::start().await;
    browser.goto(&portal_link).await;
    wait_for_url(&browser, "/sign-in").await;
    assert!(browser.title().await.contains("PhotoForge"), "the tenant's branding");
    browser.save_screenshot("portal-1-sign-in").await;
    browser.fill("#code", &code).await;
    browser.find("form[action$='/sign-in/code'] button").await.click().await;
    wait_for_url(&browser, "/entitlements").await;
    wait_for_text(&browser, "Editor").await;
    browser.save_screenshot("portal-2-licences").await;

    // The application activates with the mailed code; the device appears.
    let activated = app
        .licensing(
            Method::POST,
            "/licensing/v1/activate",
            None,
            "nonce-journey-01",
            Some(json!({"tenant": t.id, "product": c.product_id, "activation_code": code,
                        "seat_id": "studio-mac-01", "seat_name": "Studio Mac", "nonce": "nonce-journey-01"})),
        )
        .await;
    assert_eq!(activated.status, StatusCode::OK, "{}", activated.body);
    let secret = activated.body["activation_secret"].as_str().unwrap().to_owned();
    app.licensing(
        Method::POST,
        "/licensing/v1/activation/usage",
        Some(&secret),
        "nonce-journey-02",
        Some(json!({"feature": "renders", "amount": 7})),
    )
    .await;
    browser.find("main table a").await.click().await;
    let page = wait_for_text(&browser, "Devices and seats").await;
    assert!(page.contains("Studio Mac") && page.contains("studio-mac-01"), "{page}");
    assert!(page.contains("1 of 5 in use"), "{page}");
    assert_eq!(browser.count("figure.chart svg").await, 2, "seats and renders charts");
    browser.find("details.reveal summary").await.click().await;
    assert!(browser.text("#activation-code").await.contains(&code));
    browser.save_screenshot("portal-3-licence").await;
    let licence_page = browser.current_url().await;
    browser.goto(&format!("{licence_page}#usage")).await;
    browser.save_screenshot("portal-6-usage").await;
    browser.goto(&licence_page).await;
    browser.set_window_size(390, 900).await;
    browser.save_screenshot("portal-4-licence-phone").await;
    let sideways = browser
        .execute(
            "return document.documentElement.scrollWidth > document.documentElement.clientWidth;",
            serde_json::json!([]),
        )
        .await;
    assert_eq!(
        sideways,
        serde_json::json!(false),
        "the licence page does not scroll sideways on a phone"
    );
    browser.set_window_size(1280, 900).await;

    // The buyer releases the device: the application's next refresh is refused.
    browser.find("form[action$='/release'] button").await.click().await;
    wait_for_text(&browser, "The seat is released").await;
    assert!(!browser.main_text().await.contains("Studio Mac"));
    browser.save_screenshot("portal-5-released").await;
    let refused = app
        .licensing(
            Method::POST,
            "/licensing/v1/activation/refresh",
            Some(&secret),
            "nonce-journey-03",
            None,
        )
        .await;
    assert_eq!(refused.status, StatusCode::UNAUTHORIZED);
    assert_eq!(refused.body["error"]["code"], "invalid_activation");

    browser.quit().await;
    app.stop().await;
}
