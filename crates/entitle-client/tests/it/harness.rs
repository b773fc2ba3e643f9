//! The test server and helpers: admin calls, client configurations, temporary directories.

use std::path::{Path, PathBuf};
use std::time::Duration;

use entitle_client::{Client, Config, ManualClock, RetryPolicy};
use entitle_server::config::{Config as ServerConfig, ConfigLayer};
use entitle_server::Application;
use reqwest::Method;
use secrecy::ExposeSecret;
use serde_json::Value;
use tokio::sync::oneshot;

/// A directory removed when dropped.
pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new() -> TempDir {
        let dir = std::env::temp_dir().join(format!("entitle-sdk-{:016x}", rand::random::<u64>()));
        std::fs::create_dir_all(&dir).unwrap();
        TempDir(dir)
    }

    pub fn join(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// The real server with the demo catalogue seeded.
pub struct Server {
    pub base: String,
    pub tenant: String,
    pub product: String,
    pub admin_key: String,
    pub entitlement_id: String,
    pub code: String,
    pub jwks: String,
    pub http: reqwest::Client,
    _dir: TempDir,
    shutdown: Option<oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<anyhow::Result<()>>>,
}

impl Server {
    pub async fn start() -> Server {
        let dir = TempDir::new();
        let config = ServerConfig::from_layer(ConfigLayer {
            listen: Some("127.0.0.1:0".parse().unwrap()),
            data_dir: Some(dir.0.clone()),
            ..Default::default()
        })
        .unwrap();
        let mail = entitle_server::app::mail_settings(&config);
        let app = Application::build(config).await.expect("build the server");
        let base = format!("http://{}", app.local_addr());
        let store = app.store().clone();
        let seeded = entitle_server::demo::seed(&store, &mail).await.expect("seed the demo");
        let (tx, rx) = oneshot::channel();
        let task = tokio::spawn(app.run_until(async {
            let _ = rx.await;
        }));
        let http = reqwest::Client::new();
        let jwks = http
            .get(format!("{base}/licensing/v1/tenants/{}/jwks.json", seeded.tenant_id))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        Server {
            base,
            tenant: seeded.tenant_id,
            product: seeded.product_id,
            admin_key: seeded.admin_key.expose_secret().to_owned(),
            entitlement_id: seeded.entitlement.id.clone(),
            code: seeded.entitlement.activation_code.to_string(),
            jwks,
            http,
            _dir: dir,
            shutdown: Some(tx),
            task: Some(task),
        }
    }

    /// Stops the server (its port then refuses connections).
    pub async fn stop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(task) = self.task.take() {
            task.await.expect("server task").expect("server ran cleanly");
        }
    }

    /// A client configuration against `url` with fast retries, for a seat and cache file.
    pub fn config_at(&self, url: &str, seat: &str, cache: &Path, clock: &ManualClock) -> Config {
        Config::new(url, &self.tenant, &self.product, &self.jwks, seat, cache)
            .unwrap()
            .with_clock(clock.clone())
            .with_timeout(Duration::from_secs(5))
            .with_retry(RetryPolicy {
                max_attempts: 3,
                initial_backoff: Duration::from_millis(10),
                max_backoff: Duration::from_millis(50),
            })
    }

    pub fn config(&self, seat: &str, cache: &Path, clock: &ManualClock) -> Config {
        self.config_at(&self.base, seat, cache, clock)
    }

    pub fn client(&self, seat: &str, cache: &Path, clock: &ManualClock) -> Client {
        Client::new(self.config(seat, cache, clock)).unwrap()
    }

    /// An admin API call that must succeed; returns the body.
    pub async fn admin(&self, method: Method, path: &str, body: Option<Value>) -> Value {
        let mut request = self
            .http
            .request(method.clone(), format!("{}{path}", self.base))
            .bearer_auth(&self.admin_key);
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.unwrap();
        let status = response.status();
        let body: Value = response.json().await.unwrap_or(Value::Null);
        assert!(status.is_success(), "{method} {path}: {status} {body}");
        body
    }

    pub async fn entitlement(&self) -> Value {
        self.admin(
            Method::GET,
            &format!("/api/v1/entitlements/{}", self.entitlement_id),
            None,
        )
        .await
    }

    pub async fn patch_entitlement(&self, patch: Value) -> Value {
        self.admin(
            Method::PATCH,
            &format!("/api/v1/entitlements/{}", self.entitlement_id),
            Some(patch),
        )
        .await
    }

    /// Posts a request file like an operator at a connected machine; returns status and body.
    pub async fn post_request_file(&self, path: &str, file: &str) -> (u16, Value) {
        let response = self
            .http
            .post(format!("{}{path}", self.base))
            .json(&serde_json::json!({ "request": file }))
            .send()
            .await
            .unwrap();
        let status = response.status().as_u16();
        (status, response.json().await.unwrap_or(Value::Null))
    }
}

pub fn now() -> i64 {
    chrono::Utc::now().timestamp()
}
