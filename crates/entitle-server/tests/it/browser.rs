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
        assert_eq!(browser.title().await, "Link expired");
        assert_eq!(browser.text("h1").await, "Link expired");
        assert!(browser.text("body").await.contains("used already or has expired"));
        assert!(browser.page_source().await.contains("<h1>Link expired</h1>"));
        assert_eq!(browser.count("form").await, 0, "an expired link offers no form");
        assert_eq!(browser.find("meta[name=viewport]").await.attribute("content").await.as_deref(),
            Some("width=device-width"));
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
        assert_eq!(browser.text("[role=alert]").await, "The two passwords differ.");
        browser.fill("input[name=password]", "correct horse battery").await;
        browser.fill("input[name=confirm]", "correct horse battery").await;
        browser.find("button[type=submit]").await.click().await;
        assert_eq!(browser.text("h1").await, "Password set");
        browser.quit().await;
    }
}
