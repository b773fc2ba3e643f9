//! A real headless Chromium driven over WebDriver (the W3C JSON wire protocol, spoken with
//! reqwest), for tests of the web pages as a person's browser sees them.
//!
//! Needs Debian's `chromium` and `chromium-driver` (`/usr/bin/chromium`, `/usr/bin/chromedriver`;
//! `CHROMIUM` and `CHROMEDRIVER` override the paths). Without them these tests fail and say so:
//! a skipped browser test would pass CI while the pages went untested.

use base64::Engine as _;
use reqwest::StatusCode;
use serde_json::{json, Value};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::helpers::*;

/// The W3C name of the key that holds an element reference.
const ELEMENT_KEY: &str = "element-6066-11e4-a52e-4f735466cecf";

fn executable(variable: &str, default: &str) -> PathBuf {
    let path = std::env::var_os(variable).map_or_else(|| PathBuf::from(default), PathBuf::from);
    assert!(
        path.is_file(),
        "browser tests need {} (set {variable} to use another path): install Chromium and its driver, \
         e.g. `apt-get install chromium chromium-driver`",
        path.display()
    );
    path
}

fn free_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("a free port");
    listener.local_addr().expect("its address").port()
}

/// Where screenshots go: `$CARGO_TARGET_DIR/screenshots`, else the workspace's `target/screenshots`.
pub fn screenshot_dir() -> PathBuf {
    let dir = std::env::var_os("CARGO_TARGET_DIR").map_or_else(
        || PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../target"),
        PathBuf::from,
    );
    dir.join("screenshots")
}

/// A chromedriver process and one headless browser session in it.
pub struct Browser {
    driver: Child,
    http: reqwest::Client,
    /// `http://127.0.0.1:<port>/session/<id>`
    session: String,
    open: bool,
}

/// An element found on the current page.
pub struct Element<'b> {
    browser: &'b Browser,
    id: String,
}

impl Browser {
    /// Starts chromedriver on a free port and opens a headless 1280×900 session.
    pub async fn start() -> Browser {
        let driver_path = executable("CHROMEDRIVER", "/usr/bin/chromedriver");
        let chromium = executable("CHROMIUM", "/usr/bin/chromium");
        let port = free_port();
        let mut command = Command::new(&driver_path);
        command
            .arg(format!("--port={port}"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        // Its own process group, so dropping the browser also ends the Chromium processes the
        // driver started, even when a failing test never reached `quit`.
        std::os::unix::process::CommandExt::process_group(&mut command, 0);
        let driver = command
            .spawn()
            .unwrap_or_else(|e| panic!("starting {}: {e}", driver_path.display()));
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(60))
            .build()
            .unwrap();
        let base = format!("http://127.0.0.1:{port}");
        let mut browser = Browser {
            driver,
            http,
            session: String::new(),
            open: false,
        };
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let ready = browser.http.get(format!("{base}/status")).send().await;
            if let Ok(response) = ready {
                let status: Value = response.json().await.unwrap_or_default();
                if status["value"]["ready"] == true {
                    break;
                }
            }
            assert!(
                Instant::now() < deadline,
                "chromedriver did not become ready on port {port}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let capabilities = json!({"capabilities": {"alwaysMatch": {
            "browserName": "chrome",
            "goog:chromeOptions": {
                "binary": chromium,
                "args": ["--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1280,900",
                         "--disable-gpu", "--no-first-run", "--disable-extensions"],
            },
        }}});
        let created = browser
            .call(reqwest::Method::POST, &format!("{base}/session"), Some(capabilities))
            .await;
        let id = created["sessionId"].as_str().expect("a session id").to_owned();
        browser.session = format!("{base}/session/{id}");
        browser.open = true;
        browser
    }

    /// One WebDriver command; answers its `value`, panicking with the driver's error otherwise.
    async fn call(&self, method: reqwest::Method, url: &str, body: Option<Value>) -> Value {
        let mut request = self.http.request(method.clone(), url);
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request
            .send()
            .await
            .unwrap_or_else(|e| panic!("WebDriver {method} {url}: {e}"));
        let status = response.status();
        let body: Value = response.json().await.unwrap_or_default();
        assert_eq!(status, StatusCode::OK, "WebDriver {method} {url}: {body}");
        body["value"].clone()
    }

    /// The text of the page's `main`, or "" while a navigation makes the page unreadable (for
    /// polling after a click: an element found before the navigation goes stale).
    pub async fn main_text(&self) -> String {
        let script = "const main = document.querySelector('main'); return main ? main.innerText : '';";
        let response = self
            .http
            .post(format!("{}/execute/sync", self.session))
            .json(&json!({"script": script, "args": []}))
            .send()
            .await;
        match response {
            Ok(response) if response.status() == StatusCode::OK => {
                let body: Value = response.json().await.unwrap_or_default();
                body["value"].as_str().unwrap_or_default().to_owned()
            }
            _ => String::new(),
        }
    }

    /// Waits (up to 10 s) until the element matching `css` reads `expected`, reading through
    /// navigations a click started; panics with what it read last.
    pub async fn wait_for(&self, css: &str, expected: &str) {
        let script = "const e = document.querySelector(arguments[0]); return e ? e.innerText.trim() : null;";
        let mut last = Value::Null;
        for _ in 0..100 {
            let response = self
                .http
                .post(format!("{}/execute/sync", self.session))
                .json(&json!({"script": script, "args": [css]}))
                .send()
                .await;
            if let Ok(response) = response {
                if response.status() == StatusCode::OK {
                    let body: Value = response.json().await.unwrap_or_default();
                    last = body["value"].clone();
                    if last.as_str() == Some(expected) {
                        return;
                    }
                }
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("{css} never read {expected:?}; last read {last}");
    }

    async fn command(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> Value {
        self.call(method, &format!("{}{path}", self.session), body).await
    }

    pub async fn goto(&self, url: &str) {
        self.command(reqwest::Method::POST, "/url", Some(json!({"url": url})))
            .await;
    }

    pub async fn current_url(&self) -> String {
        self.command(reqwest::Method::GET, "/url", None)
            .await
            .as_str()
            .unwrap_or_default()
            .to_owned()
    }

    pub async fn title(&self) -> String {
        self.command(reqwest::Method::GET, "/title", None)
            .await
            .as_str()
            .unwrap_or_default()
            .to_owned()
    }

    pub async fn page_source(&self) -> String {
        self.command(reqwest::Method::GET, "/source", None)
            .await
            .as_str()
            .unwrap_or_default()
            .to_owned()
    }

    /// The first element matching `css`; panics when there is none.
    pub async fn find(&self, css: &str) -> Element<'_> {
        let found = self
            .command(
                reqwest::Method::POST,
                "/element",
                Some(json!({"using": "css selector", "value": css})),
            )
            .await;
        let id = found[ELEMENT_KEY]
            .as_str()
            .unwrap_or_else(|| panic!("no element {css}: {found}"));
        Element {
            browser: self,
            id: id.to_owned(),
        }
    }

    /// How many elements match `css` (zero is an answer, not an error).
    pub async fn count(&self, css: &str) -> usize {
        let found = self
            .command(
                reqwest::Method::POST,
                "/elements",
                Some(json!({"using": "css selector", "value": css})),
            )
            .await;
        found.as_array().map_or(0, Vec::len)
    }

    /// Replaces the value of the field matching `css` with `text`.
    pub async fn fill(&self, css: &str, text: &str) {
        let element = self.find(css).await;
        element.command(reqwest::Method::POST, "/clear", json!({})).await;
        element
            .command(reqwest::Method::POST, "/value", json!({"text": text}))
            .await;
    }

    /// The rendered text of the element matching `css`.
    pub async fn text(&self, css: &str) -> String {
        self.find(css).await.text().await
    }

    /// A computed colour of the element matching `css` as `#rrggbb` (Chromium answers either
    /// `rgb(…)` or `rgba(…, 1)` for the same colour); a transparent one keeps its `rgba(…)`.
    pub async fn colour(&self, css: &str, property: &str) -> String {
        let value = self.css_value(css, property).await;
        let numbers: Vec<f64> = value
            .trim_start_matches(|c: char| c.is_ascii_alphabetic())
            .trim_matches(|c| c == '(' || c == ')')
            .split(',')
            .filter_map(|part| part.trim().parse().ok())
            .collect();
        match numbers[..] {
            [r, g, b] | [r, g, b, 1.0] => format!("#{:02x}{:02x}{:02x}", r as u8, g as u8, b as u8),
            _ => value,
        }
    }

    /// A computed CSS property of the element matching `css` (what the stylesheet did).
    pub async fn css_value(&self, css: &str, property: &str) -> String {
        let element = self.find(css).await;
        let value = self
            .command(
                reqwest::Method::GET,
                &format!("/element/{}/css/{property}", element.id),
                None,
            )
            .await;
        value.as_str().unwrap_or_default().to_owned()
    }

    /// Runs `script` (a function body; `arguments` holds `args`) in the page and answers its result.
    pub async fn execute(&self, script: &str, args: Value) -> Value {
        self.command(
            reqwest::Method::POST,
            "/execute/sync",
            Some(json!({"script": script, "args": args})),
        )
        .await
    }

    /// Emulates the user's light or dark colour-scheme preference (Chrome DevTools, through the driver).
    pub async fn prefer_dark(&self, dark: bool) {
        let value = if dark { "dark" } else { "light" };
        self.command(
            reqwest::Method::POST,
            "/goog/cdp/execute",
            Some(json!({"cmd": "Emulation.setEmulatedMedia",
                        "params": {"features": [{"name": "prefers-color-scheme", "value": value}]}})),
        )
        .await;
    }

    pub async fn set_window_size(&self, width: u32, height: u32) {
        self.command(
            reqwest::Method::POST,
            "/window/rect",
            Some(json!({"width": width, "height": height})),
        )
        .await;
    }

    /// The viewport as a PNG, written to `path` (directories made as needed).
    pub async fn screenshot(&self, path: &std::path::Path) -> Vec<u8> {
        let encoded = self.command(reqwest::Method::GET, "/screenshot", None).await;
        let png = base64::engine::general_purpose::STANDARD
            .decode(encoded.as_str().expect("base64 PNG"))
            .expect("valid base64");
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).unwrap();
        }
        std::fs::write(path, &png).unwrap();
        png
    }

    /// A screenshot named `name.png` in [`screenshot_dir`], for people to look at after a run.
    pub async fn save_screenshot(&self, name: &str) -> PathBuf {
        let path = screenshot_dir().join(format!("{name}.png"));
        self.screenshot(&path).await;
        path
    }

    /// Ends the session (closing Chromium) and the driver.
    pub async fn quit(mut self) {
        if self.open {
            self.open = false;
            let _ = self.http.delete(&self.session).send().await;
        }
        // Drop ends chromedriver.
    }
}

impl Element<'_> {
    async fn command(&self, method: reqwest::Method, path: &str, body: Value) -> Value {
        let body = (method != reqwest::Method::GET).then_some(body);
        self.browser
            .command(method, &format!("/element/{}{path}", self.id), body)
            .await
    }

    pub async fn click(&self) {
        self.command(reqwest::Method::POST, "/click", json!({})).await;
    }

    pub async fn text(&self) -> String {
        let text = self.command(reqwest::Method::GET, "/text", Value::Null).await;
        text.as_str().unwrap_or_default().to_owned()
    }

    /// An attribute's value, `None` when the element does not have it.
    pub async fn attribute(&self, name: &str) -> Option<String> {
        let value = self
            .command(reqwest::Method::GET, &format!("/attribute/{name}"), Value::Null)
            .await;
        value.as_str().map(str::to_owned)
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        // The whole process group: chromedriver and the Chromium it started.
        let group = format!("-{}", self.driver.id());
        let _ = Command::new("kill")
            .args(["-TERM", "--", &group])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}

backend_test! {
    async fn the_harness_drives_a_real_page(app) {
        let browser = Browser::start().await;
        let page = format!("{}/portal/set-password?token=x", app.base);
        browser.goto(&page).await;
        assert_eq!(browser.current_url().await, page);
        assert!(browser.title().await.starts_with("Link expired"));
        assert_eq!(browser.text("h1").await, "Link expired");
        assert!(browser.text("body").await.contains("used already or has expired"));
        assert!(browser.page_source().await.contains("<h1>Link expired</h1>"));
        assert_eq!(browser.count("form").await, 0, "an expired link offers no form");
        assert_eq!(browser.find("meta[name=viewport]").await.attribute("content").await.as_deref(),
            Some("width=device-width, initial-scale=1"));
        assert_eq!(browser.find("meta[charset]").await.attribute("nonexistent").await, None);

        let backend = format!("{:?}", app.backend).to_lowercase();
        let wide = browser.save_screenshot(&format!("harness-expired-link-{backend}")).await;
        let png = std::fs::read(&wide).unwrap();
        assert!(png.len() > 1000 && png.starts_with(b"\x89PNG\r\n\x1a\n"), "{} is a PNG", wide.display());

        // A phone's width: the harness resizes the window.
        browser.set_window_size(375, 800).await;
        let narrow = browser.save_screenshot(&format!("harness-expired-link-375-{backend}")).await;
        assert!(std::fs::metadata(&narrow).unwrap().len() > 1000);

        // The stylesheet, as the browser fetches it: its URL answers with the immutable cache header.
        let stylesheet = format!("{}{}", app.base, entitle_server::web::assets::stylesheet_href());
        let response = app.client.get(&stylesheet).send().await.unwrap();
        assert_eq!(response.headers()["cache-control"], "public, max-age=31536000, immutable");
        browser.goto(&stylesheet).await;
        assert!(browser.text("body").await.contains("--accent: #2563eb"), "the browser shows the CSS");
        browser.quit().await;
    }
}

backend_test! {
    async fn the_harness_fills_forms_and_clicks(app) {
        // A real set-up link from a real mail: the form, a mismatched pair of passwords, the error
        // shown; then a matching pair, and the page says the password is set.
        let t = app.tenant("Acme").await;
        let c = seed_catalogue(app, &t.key).await;
        app.act(reqwest::Method::PATCH, &t.key, &format!("/api/v1/products/{}", c.product_id),
            json!({"account_based": true})).await;
        crate::mail::buy(app, &t.key, &c.customer_id, "PRO-M", "new.person@initech.example").await;
        let sent = crate::mail::settled(app, &t.key).await;
        let file = app.data_dir.0.join("mail").join(format!("{}.eml", sent[0]["id"].as_str().unwrap()));
        let text = std::fs::read_to_string(file).unwrap().replace("=\r\n", "").replace("=3D", "=");
        let start = text.find("/portal/set-password?token=").expect("a set-up link") + 27;
        let token: String = text[start..].chars().take_while(|c| c.is_ascii_alphanumeric()).collect();

        let browser = Browser::start().await;
        browser.goto(&format!("{}/portal/set-password?token={token}", app.base)).await;
        assert_eq!(browser.text("h1").await, "Choose your password");
        browser.fill("input[name=password]", "correct horse battery").await;
        browser.fill("input[name=confirm]", "correct horse battery staple").await;
        browser.find("button[type=submit]").await.click().await;
        browser.wait_for("[role=alert]", "The two passwords differ.").await;
        browser.fill("input[name=password]", "correct horse battery").await;
        browser.fill("input[name=confirm]", "correct horse battery").await;
        browser.find("button[type=submit]").await.click().await;
        browser.wait_for("h1", "Password set").await;
        browser.quit().await;
    }
}

/// Serves `html` at `/` on a loopback port of its own and answers its URL. (A `data:` URL page
/// would do, but Chromium treats it as a public page and will not let it load loopback assets.)
async fn serve_page(html: String) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/", listener.local_addr().unwrap());
    let page = axum::Router::new().route(
        "/",
        axum::routing::get(move || async move { axum::response::Html(html) }),
    );
    // Ends with the test's runtime.
    tokio::spawn(async move { axum::serve(listener, page).await });
    url
}

/// Every class of the portal's vocabulary on one page, for the stylesheet's browser test (and a
/// screenshot to look at). `{css}`, `{js}` and `{brand}` are the assets' URLs.
const GALLERY: &str = r##"<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>Style gallery</title><link rel="stylesheet" href="{css}"><link rel="stylesheet" href="{brand}"></head>
<body>
<header class="site-header">
  <a class="brand" href="#"><img src="data:image/gif;base64,R0lGODlhAQABAAAAACw=" alt=""><span class="brand-name">Acme Licensing</span></a>
  <nav><a href="#" aria-current="page">Licences</a><a href="#">Devices</a><a href="#">Usage</a><a href="#">Account</a></nav>
  <form class="signout" method="post" action="#"><button type="submit">Sign out</button></form>
</header>
<main class="container">
  <h1>Your licences</h1>
  <p class="muted">Everything Initech holds, as of today.</p>
  <p class="notice" role="status">Your password is set.</p>
  <nav class="tabs"><a href="#" aria-current="page">Overview</a><a href="#">Seats</a><a href="#">History</a></nav>
  <div class="grid">
    <section class="card"><h2>Editor Pro</h2>
      <p><span class="badge badge-active">Active</span> <span class="badge badge-expiring">Expires in 5 days</span></p>
      <dl class="kv"><dt>Plan</dt><dd>Pro, monthly</dd><dt>Seats</dt><dd>3 of 5 in use</dd></dl>
      <div class="meter"><meter id="seats" min="0" max="5" low="4" high="5" optimum="0" value="3">3 of 5</meter></div>
      <p><span class="code" id="code">ABCD-EFGH-JKLM-NPQR</span> <button type="button" class="button small secondary" data-copy="#code">Copy</button></p>
      <details class="reveal"><summary>Show the activation code</summary><p class="code">WXYZ-2345-6789-ABCD</p></details>
    </section>
    <section class="card"><h2>States</h2>
      <p><span class="badge badge-created">Created</span> <span class="badge badge-grace">Grace</span>
         <span class="badge badge-expired">Expired</span> <span class="badge badge-disabled">Disabled</span>
         <span class="badge badge-overdraft">Overdraft</span></p>
      <progress max="100" value="70">70%</progress>
      <p class="actions"><a class="button" href="#">Renew</a><a class="button secondary" href="#">Details</a><button class="button danger" type="button">Release seat</button></p>
    </section>
  </div>
  <div class="table-wrap"><table class="data">
    <thead><tr><th>Device</th><th>Activated</th><th>Last seen</th><th class="num">Renders used</th><th>Status</th></tr></thead>
    <tbody>
      <tr><td>peter-laptop.initech.example (macOS 14.5, arm64)</td><td>2026-01-05 09:12</td><td>2026-02-01 17:40</td><td class="num">1,204</td><td><span class="badge badge-active">Active</span></td></tr>
      <tr><td>render-node-07.initech.example (Linux)</td><td>2026-01-09 13:03</td><td>2026-01-30 08:15</td><td class="num">98</td><td><span class="badge badge-expired">Expired</span></td></tr>
    </tbody></table></div>
  <figure class="chart"><svg viewBox="0 0 400 120" role="img" aria-label="Seats in use">
    <line class="chart-grid" x1="30" y1="20" x2="390" y2="20"/><line class="chart-grid" x1="30" y1="60" x2="390" y2="60"/>
    <line class="chart-axis" x1="30" y1="100" x2="390" y2="100"/><line class="chart-axis" x1="30" y1="10" x2="30" y2="100"/>
    <line class="chart-licensed" x1="30" y1="40" x2="390" y2="40"/><line class="chart-limit" x1="30" y1="30" x2="390" y2="30"/>
    <polyline class="chart-max" points="30,80 120,50 210,45 300,35 390,25"/><polyline class="chart-min" points="30,95 120,80 210,70 300,60 390,55"/>
    <polyline class="chart-use" points="30,90 120,65 210,55 300,50 390,40"/><rect class="chart-overdraft" x="300" y="25" width="90" height="15"/>
    <text x="0" y="104">0</text><text x="0" y="44">5</text></svg><figcaption>Seats in use, last 30 days</figcaption></figure>
  <section class="card"><h2>Change your password</h2>
    <p class="form-error" role="alert">Please correct the fields below.</p>
    <form class="stack" method="post" action="#">
      <label>Email <input type="email" name="email" value="peter@initech.example"></label>
      <label>New password <input type="password" name="password" aria-invalid="true"><span class="field-error">At least 10 characters.</span></label>
      <label>Role <select name="role"><option>User</option><option>Admin</option></select></label>
      <label>Note <textarea name="note"></textarea></label>
      <button type="submit">Save</button>
    </form>
  </section>
  <section class="card sign-in"><h1>Sign in</h1><form class="stack"><label>Email <input type="email"></label><button type="submit">Sign in</button></form></section>
</main>
<footer class="footer">Acme Licensing · Powered by Entitle</footer>
<script src="{js}"></script>
</body></html>"##;

backend_test! {
    async fn the_stylesheet_styles_pages_light_dark_and_narrow(app) {
        let t = app.tenant("Acme").await;
        let set = app.request(reqwest::Method::PUT, Some(&t.key), "/api/v1/branding",
            Some(json!({"accent_colour": "#7c3aed"}))).await;
        assert_eq!(set.status, StatusCode::OK);
        let html = GALLERY
            .replace("{css}", &format!("{}{}", app.base, entitle_server::web::assets::stylesheet_href()))
            .replace("{js}", &format!("{}{}", app.base, entitle_server::web::assets::script_href()))
            .replace("{brand}", &format!("{}{}", app.base, entitle_server::web::assets::brand_href(&t.id)));
        let url = serve_page(html).await;
        let backend = format!("{:?}", app.backend).to_lowercase();
        let browser = Browser::start().await;
        browser.prefer_dark(false).await;
        browser.goto(&url).await;

        // The stylesheet applies, with the tenant's accent on primary buttons.
        assert_eq!(browser.colour("body", "background-color").await, "#f6f7f9");
        assert_eq!(browser.colour("a.button", "background-color").await, "#7c3aed");
        assert_eq!(browser.colour("a.button", "color").await, "#ffffff");
        assert_eq!(browser.colour(".badge-expired", "color").await, "#991b1b");
        assert!(browser.css_value(".code", "font-family").await.contains("monospace"));
        let target = browser.execute(
            "return document.querySelector('.site-header nav a').getBoundingClientRect().height", json!([])).await;
        assert!(target.as_f64().unwrap() >= 44.0, "navigation links are large enough to hit: {target}");

        // The script: copy buttons appear, and a click says so.
        assert_eq!(browser.css_value("button[data-copy]", "display").await, "inline-flex");
        browser.find("button[data-copy]").await.click().await;
        let said = browser.text("button[data-copy]").await;
        assert!(said == "Copied" || said == "Press Ctrl+C to copy", "the button answers: {said}");
        browser.save_screenshot(&format!("gallery-light-{backend}")).await;

        // Dark: the page turns dark, the accent stays readable.
        browser.prefer_dark(true).await;
        assert_eq!(browser.colour("body", "background-color").await, "#0f1216");
        assert_eq!(browser.colour(".card", "background-color").await, "#181c22");
        browser.save_screenshot(&format!("gallery-dark-{backend}")).await;
        browser.prefer_dark(false).await;

        // A phone: nothing runs off the side except inside the table's own scroller.
        browser.set_window_size(375, 900).await;
        let widths = browser.execute(
            "const wrap = document.querySelector('.table-wrap');
             return [document.documentElement.scrollWidth, document.documentElement.clientWidth,
                     wrap.scrollWidth, wrap.clientWidth,
                     getComputedStyle(document.querySelector('.grid')).gridTemplateColumns.split(' ').length];",
            json!([])).await;
        let w: Vec<f64> = widths.as_array().unwrap().iter().map(|v| v.as_f64().unwrap()).collect();
        assert!(w[0] <= w[1], "the page does not scroll sideways at 375 px: {widths}");
        assert!(w[2] > w[3], "the table scrolls inside its wrapper: {widths}");
        assert_eq!(w[4], 1.0, "cards stack in one column: {widths}");
        browser.save_screenshot(&format!("gallery-375-{backend}")).await;
        browser.quit().await;
    }
}
