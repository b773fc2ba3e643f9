//! The test harness: the real server on port 0 over a real SQLite file or a fresh PostgreSQL
//! database, and a small HTTP client.

use entitle_server::config::{Config, ConfigLayer};
use entitle_server::store::Store;
use entitle_server::Application;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use sqlx::Connection;
use std::path::PathBuf;
use tokio::sync::oneshot;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// Runs each test body once per backend: SQLite always, PostgreSQL when
/// `ENTITLE_TEST_DATABASE_URL` is set (CI sets it).
macro_rules! backend_test {
    ($(#[$meta:meta])* async fn $name:ident($app:ident) $body:block) => {
        mod $name {
            #[allow(unused_imports)]
            use super::*;

            async fn run($app: &$crate::helpers::TestApp) $body

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                let app = $crate::helpers::TestApp::spawn($crate::helpers::Backend::Sqlite).await.unwrap();
                run(&app).await;
                app.stop().await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                let Some(app) = $crate::helpers::TestApp::spawn($crate::helpers::Backend::Postgres).await else {
                    eprintln!("ENTITLE_TEST_DATABASE_URL is not set: PostgreSQL variant not run");
                    return;
                };
                run(&app).await;
                app.stop().await;
            }
        }
    };
}
pub(crate) use backend_test;

/// `backend_test!` on a server whose settings the closure adjusts (`|layer: &mut ConfigLayer| …`).
macro_rules! configured_backend_test {
    (configure: $configure:expr, async fn $name:ident($app:ident) $body:block) => {
        mod $name {
            #[allow(unused_imports)]
            use super::*;

            async fn run($app: &$crate::helpers::TestApp) $body

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                let app = $crate::helpers::TestApp::spawn_configured($crate::helpers::Backend::Sqlite, $configure)
                    .await
                    .unwrap();
                run(&app).await;
                app.stop().await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                let Some(app) =
                    $crate::helpers::TestApp::spawn_configured($crate::helpers::Backend::Postgres, $configure).await
                else {
                    eprintln!("ENTITLE_TEST_DATABASE_URL is not set: PostgreSQL variant not run");
                    return;
                };
                run(&app).await;
                app.stop().await;
            }
        }
    };
}
pub(crate) use configured_backend_test;

/// A directory removed when dropped.
pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new() -> TempDir {
        let dir = std::env::temp_dir().join(format!("entitle-it-{}", entitle_server::domain::ids::random_token(10)));
        std::fs::create_dir_all(&dir).unwrap();
        TempDir(dir)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A fresh PostgreSQL database for one test, or `None` without `ENTITLE_TEST_DATABASE_URL`.
pub async fn fresh_postgres() -> Option<(String, String)> {
    // (url, database name)
    let admin_url = std::env::var("ENTITLE_TEST_DATABASE_URL")
        .ok()
        .filter(|u| !u.is_empty())?;
    sqlx::any::install_default_drivers();
    let name = format!("entitle_t_{}", entitle_server::domain::ids::random_token(10));
    let mut conn = sqlx::AnyConnection::connect(&admin_url)
        .await
        .expect("connect to ENTITLE_TEST_DATABASE_URL");
    sqlx::raw_sql(&format!("CREATE DATABASE {name}"))
        .execute(&mut conn)
        .await
        .unwrap();
    conn.close().await.ok();
    let (base, _) = admin_url.rsplit_once('/').expect("database URL with a path");
    Some((format!("{base}/{name}"), name))
}

pub async fn drop_postgres(name: &str) {
    if let Ok(admin_url) = std::env::var("ENTITLE_TEST_DATABASE_URL") {
        if let Ok(mut conn) = sqlx::AnyConnection::connect(&admin_url).await {
            let _ = sqlx::raw_sql(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                .execute(&mut conn)
                .await;
        }
    }
}

pub struct TestApp {
    pub base: String,
    /// The metrics listener's base URL, when `metrics_listen` was set.
    pub metrics_base: Option<String>,
    pub client: reqwest::Client,
    pub store: Store,
    pub backend: Backend,
    pub data_dir: TempDir,
    pg_database: Option<String>,
    shutdown: Option<oneshot::Sender<()>>,
    server: tokio::task::JoinHandle<anyhow::Result<()>>,
}

pub struct Tenant {
    pub id: String,
    pub key: String,
}

/// A licensing answer with its exact bytes and signature header.
pub struct Signed {
    pub status: StatusCode,
    pub body: Value,
    pub bytes: Vec<u8>,
    pub signature: Option<String>,
    pub retry_after: Option<String>,
}

impl Signed {
    /// Checks the detached signature over the body against the tenant's keys.
    pub fn verify(&self, keys: &[entitle_protocol::PublicKey]) {
        let signature = self.signature.as_deref().expect("a signed answer");
        entitle_protocol::jws::verify_detached(signature, &self.bytes, keys).expect("a valid signature");
    }

    /// The lease token a lease answer makes (signature + body).
    pub fn token(&self) -> String {
        entitle_protocol::jws::attach(self.signature.as_deref().unwrap(), &self.bytes).unwrap()
    }
}

pub struct Response {
    pub status: StatusCode,
    pub body: Value,
    pub headers: reqwest::header::HeaderMap,
}

impl TestApp {
    pub async fn spawn(backend: Backend) -> Option<TestApp> {
        Self::spawn_configured(backend, |_| {}).await
    }

    /// A server whose settings `configure` adjusts (SMTP URL, retry timing, …).
    pub async fn spawn_configured(backend: Backend, configure: impl FnOnce(&mut ConfigLayer)) -> Option<TestApp> {
        let data_dir = TempDir::new();
        let pg_database = match backend {
            Backend::Sqlite => None,
            Backend::Postgres => Some(fresh_postgres().await?),
        };
        Some(Self::start(backend, data_dir, pg_database, configure).await)
    }

    async fn start(
        backend: Backend,
        data_dir: TempDir,
        pg_database: Option<(String, String)>,
        configure: impl FnOnce(&mut ConfigLayer),
    ) -> TestApp {
        let mut layer = ConfigLayer {
            listen: Some("127.0.0.1:0".parse().unwrap()),
            data_dir: Some(data_dir.0.clone()),
            database_url: pg_database.as_ref().map(|(url, _)| url.clone()),
            mail_poll_ms: Some(200),
            ..Default::default()
        };
        configure(&mut layer);
        let config = Config::from_layer(layer).unwrap();
        let app = Application::build(config).await.expect("build the application");
        let base = format!("http://{}", app.local_addr());
        let metrics_base = app.metrics_addr().map(|addr| format!("http://{addr}"));
        let store = app.store().clone();
        let (tx, rx) = oneshot::channel();
        let server = tokio::spawn(app.run_until(async {
            let _ = rx.await;
        }));
        TestApp {
            base,
            metrics_base,
            client: reqwest::Client::new(),
            store,
            backend,
            data_dir,
            pg_database: pg_database.map(|(_, name)| name),
            shutdown: Some(tx),
            server,
        }
    }

    /// Stops this server and starts a new one on the same data (a restart).
    pub async fn restart(mut self, configure: impl FnOnce(&mut ConfigLayer)) -> TestApp {
        self.halt().await;
        let data_dir = std::mem::replace(&mut self.data_dir, TempDir::new());
        let pg = self.pg_database.take().map(|name| (self.database_url_of(&name), name));
        Self::start(self.backend, data_dir, pg, configure).await
    }

    fn database_url_of(&self, name: &str) -> String {
        let admin = std::env::var("ENTITLE_TEST_DATABASE_URL").unwrap();
        let (base, _) = admin.rsplit_once('/').unwrap();
        format!("{base}/{name}")
    }

    /// A second server on the same PostgreSQL database (several instances behind one balancer).
    pub async fn another_instance(&self, configure: impl FnOnce(&mut ConfigLayer)) -> TestApp {
        let name = self.pg_database.clone().expect("a PostgreSQL test");
        let url = self.database_url_of(&name);
        // Instances of one database share its master key.
        let master_key = self.data_dir.0.join("master.key");
        let configure = move |layer: &mut ConfigLayer| {
            layer.master_key_file = Some(master_key);
            configure(layer);
        };
        let mut other = Self::start(self.backend, TempDir::new(), Some((url, name)), configure).await;
        other.pg_database = None; // the first instance drops the database
        other
    }

    async fn halt(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        let server = std::mem::replace(&mut self.server, tokio::spawn(async { Ok(()) }));
        server.await.expect("server task").expect("server ran cleanly");
    }

    pub async fn stop(mut self) {
        self.halt().await;
        if let Some(name) = &self.pg_database {
            drop_postgres(name).await;
        }
    }

    pub async fn tenant(&self, name: &str) -> Tenant {
        let created =
            entitle_server::services::tenants::create(&self.store, &entitle_server::domain::Name::parse(name).unwrap())
                .await
                .unwrap();
        use secrecy::ExposeSecret;
        Tenant {
            id: created.tenant.id,
            key: created.admin_key.expose_secret().to_owned(),
        }
    }

    pub async fn request(&self, method: Method, key: Option<&str>, path: &str, body: Option<Value>) -> Response {
        let mut request = self.client.request(method, format!("{}{path}", self.base));
        if let Some(key) = key {
            request = request.bearer_auth(key);
        }
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.expect("send request");
        let status = response.status();
        let headers = response.headers().clone();
        let text = response.text().await.unwrap();
        let body = serde_json::from_str(&text).unwrap_or(Value::String(text));
        Response { status, body, headers }
    }

    /// A licensing call: the raw body is kept, to check its signature.
    pub async fn licensing(
        &self,
        method: Method,
        path: &str,
        bearer: Option<&str>,
        nonce: &str,
        body: Option<Value>,
    ) -> Signed {
        let mut request = self
            .client
            .request(method, format!("{}{path}", self.base))
            .header("entitle-nonce", nonce);
        if let Some(bearer) = bearer {
            request = request.bearer_auth(bearer);
        }
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.expect("send request");
        let status = response.status();
        let signature = response
            .headers()
            .get(entitle_protocol::SIGNATURE_HEADER)
            .map(|v| v.to_str().unwrap().to_owned());
        let retry_after = response
            .headers()
            .get("retry-after")
            .map(|v| v.to_str().unwrap().to_owned());
        let bytes = response.bytes().await.unwrap().to_vec();
        let body = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        Signed {
            status,
            body,
            bytes,
            signature,
            retry_after,
        }
    }

    /// The tenant's public keys, from its JWKS.
    pub async fn keys(&self, tenant_id: &str) -> Vec<entitle_protocol::PublicKey> {
        let response = self
            .request(
                Method::GET,
                None,
                &format!("/licensing/v1/tenants/{tenant_id}/jwks.json"),
                None,
            )
            .await;
        assert_eq!(response.status, StatusCode::OK);
        let jwks: entitle_protocol::Jwks = serde_json::from_value(response.body).unwrap();
        jwks.public_keys()
    }

    pub async fn get(&self, key: &str, path: &str) -> Response {
        self.request(Method::GET, Some(key), path, None).await
    }

    pub async fn post(&self, key: &str, path: &str, body: Value) -> Response {
        self.request(Method::POST, Some(key), path, Some(body)).await
    }

    pub async fn patch(&self, key: &str, path: &str, body: Value) -> Response {
        self.request(Method::PATCH, Some(key), path, Some(body)).await
    }

    /// POST that must answer 201; returns the body.
    pub async fn create(&self, key: &str, path: &str, body: Value) -> Value {
        let response = self.post(key, path, body).await;
        assert_eq!(response.status, StatusCode::CREATED, "POST {path}: {}", response.body);
        response.body
    }

    /// GET that must answer 200; returns the body.
    pub async fn fetch(&self, key: &str, path: &str) -> Value {
        let response = self.get(key, path).await;
        assert_eq!(response.status, StatusCode::OK, "GET {path}: {}", response.body);
        response.body
    }

    /// POST or PATCH that must answer 200; returns the body.
    pub async fn act(&self, method: Method, key: &str, path: &str, body: Value) -> Value {
        let response = self.request(method.clone(), Some(key), path, Some(body)).await;
        assert_eq!(response.status, StatusCode::OK, "{method} {path}: {}", response.body);
        response.body
    }

    /// Runs SQL straight against the test's database (to set up states the API cannot reach).
    pub async fn sql(&self, statement: &str) -> Result<u64, sqlx::Error> {
        let url = match self.backend {
            Backend::Sqlite => format!("sqlite://{}", self.data_dir.0.join("entitle.db").display()),
            Backend::Postgres => {
                let admin = std::env::var("ENTITLE_TEST_DATABASE_URL").unwrap();
                let (base, _) = admin.rsplit_once('/').unwrap();
                format!("{base}/{}", self.pg_database.as_deref().unwrap())
            }
        };
        let mut conn = sqlx::AnyConnection::connect(&url).await?;
        let done = sqlx::raw_sql(statement).execute(&mut conn).await?;
        conn.close().await.ok();
        Ok(done.rows_affected())
    }
}

/// The identifiers of a small good / better catalogue made through the API.
pub struct Catalogue {
    pub product_id: String,
    pub feature_ids: Vec<String>,
    pub attribute_id: String,
    pub pro_edition: String,
    pub monthly_plan: String,
    pub offering_ids: Vec<String>,
    pub customer_id: String,
    pub end_user_id: String,
}

/// Basic (export) and Pro (export, nodes pool of 4, renders 100 + 10 overdraft, max_users 10),
/// monthly and perpetual; SKUs BASIC-M (1 seat), PRO-M (5 seats, 2 overdraft), PRO-P (5 seats).
pub async fn seed_catalogue(app: &TestApp, key: &str) -> Catalogue {
    let product = app
        .create(
            key,
            "/api/v1/products",
            json!({"name": "Editor", "grace_period": {"unit": "day", "count": 5}}),
        )
        .await;
    let product_id = product["id"].as_str().unwrap().to_owned();
    let mut feature_ids = Vec::new();
    for (k, kind) in [
        ("export", "bool"),
        ("nodes", "element_pool"),
        ("renders", "usage_count"),
    ] {
        let feature = app
            .create(
                key,
                "/api/v1/features",
                json!({"product_id": product_id, "key": k, "name": k, "kind": kind}),
            )
            .await;
        feature_ids.push(feature["id"].as_str().unwrap().to_owned());
    }
    let attribute = app
        .create(
            key,
            "/api/v1/attributes",
            json!({"product_id": product_id, "key": "max_users", "name": "Max users", "kind": "number"}),
        )
        .await;
    let basic = app
        .create(
            key,
            "/api/v1/editions",
            json!({"product_id": product_id, "name": "Basic", "features": [{"key": "export"}],
                   "attributes": [{"key": "max_users", "value": 1}]}),
        )
        .await;
    let pro = app
        .create(
            key,
            "/api/v1/editions",
            json!({"product_id": product_id, "name": "Pro",
                   "features": [{"key": "export"}, {"key": "nodes", "limit": 4},
                                {"key": "renders", "limit": 100, "overdraft": 10}],
                   "attributes": [{"key": "max_users", "value": 10}]}),
        )
        .await;
    let monthly = app
        .create(
            key,
            "/api/v1/plans",
            json!({"product_id": product_id, "name": "Monthly", "license_type": "subscription",
                   "duration": {"unit": "month", "count": 1}}),
        )
        .await;
    let perpetual = app
        .create(
            key,
            "/api/v1/plans",
            json!({"product_id": product_id, "name": "Perpetual", "license_type": "perpetual"}),
        )
        .await;
    let mut offering_ids = Vec::new();
    for (sku, edition, plan, seats, overdraft) in [
        ("BASIC-M", &basic, &monthly, 1, json!({"kind": "none"})),
        ("PRO-M", &pro, &monthly, 5, json!({"kind": "absolute", "value": 2})),
        ("PRO-P", &pro, &perpetual, 5, json!({"kind": "none"})),
    ] {
        let offering = app
            .create(
                key,
                "/api/v1/offerings",
                json!({"sku": sku, "name": sku, "edition_id": edition["id"], "plan_id": plan["id"],
                       "seat_count": seats, "overdraft": overdraft}),
            )
            .await;
        offering_ids.push(offering["id"].as_str().unwrap().to_owned());
    }
    let customer = app
        .create(
            key,
            "/api/v1/customers",
            json!({"name": "Initech", "email": "it@initech.example"}),
        )
        .await;
    let customer_id = customer["id"].as_str().unwrap().to_owned();
    let user = app
        .create(
            key,
            "/api/v1/end-users",
            json!({"customer_id": customer_id, "email": "peter@initech.example"}),
        )
        .await;
    Catalogue {
        product_id,
        feature_ids,
        attribute_id: attribute["id"].as_str().unwrap().to_owned(),
        pro_edition: pro["id"].as_str().unwrap().to_owned(),
        monthly_plan: monthly["id"].as_str().unwrap().to_owned(),
        offering_ids,
        customer_id,
        end_user_id: user["id"].as_str().unwrap().to_owned(),
    }
}

pub async fn entitle(app: &TestApp, key: &str, customer_id: &str, sku: &str, quantity: i64) -> Value {
    app.create(
        key,
        "/api/v1/entitlements",
        json!({"customer_id": customer_id, "sku": sku, "quantity": quantity, "order_ref": "order-1"}),
    )
    .await
}

pub fn time(value: &Value) -> chrono::DateTime<chrono::Utc> {
    value.as_str().expect("a timestamp").parse().expect("RFC 3339")
}

/// `join_all` without the futures crate: spawn-free, polls all together.
pub async fn join_all<F: std::future::Future>(futures: impl IntoIterator<Item = F>) -> Vec<F::Output> {
    let mut set = Vec::new();
    for future in futures {
        set.push(Box::pin(future));
    }
    let mut outputs: Vec<Option<F::Output>> = set.iter().map(|_| None).collect();
    std::future::poll_fn(|cx| {
        let mut pending = false;
        for (i, future) in set.iter_mut().enumerate() {
            if outputs[i].is_none() {
                match future.as_mut().poll(cx) {
                    std::task::Poll::Ready(output) => outputs[i] = Some(output),
                    std::task::Poll::Pending => pending = true,
                }
            }
        }
        if pending {
            std::task::Poll::Pending
        } else {
            std::task::Poll::Ready(())
        }
    })
    .await;
    outputs.into_iter().map(|o| o.expect("completed")).collect()
}
