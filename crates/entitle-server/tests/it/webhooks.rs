//! Outgoing webhooks against a real receiver on loopback: endpoints through the API, every
//! delivery verified with a Standard Webhooks check written here from the specification (not the
//! server's signer), retries that keep each object's order, several instances, and a kill -9.

use axum::body::Bytes;
use axum::http::{HeaderMap, StatusCode as AxumStatus};
use base64::Engine;
use hmac::{Hmac, Mac};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use sha2::Sha256;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::helpers::{backend_test, configured_backend_test, entitle, seed_catalogue, Backend, TempDir, TestApp};

/// One request the receiver got (recorded on arrival, before the answer).
#[derive(Debug, Clone)]
struct Received {
    id: String,
    timestamp: String,
    signature: String,
    body: String,
    /// What the receiver answered.
    status: u16,
}

impl Received {
    fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap()
    }
}

/// A webhook receiver: records every request and answers 500 to the first `fail_first` ones.
#[derive(Clone)]
struct Receiver {
    url: String,
    got: Arc<Mutex<Vec<Received>>>,
}

impl Receiver {
    async fn start(fail_first: usize, delay: Duration) -> Receiver {
        let got: Arc<Mutex<Vec<Received>>> = Arc::default();
        let fail = Arc::new(AtomicUsize::new(fail_first));
        let (got2, fail2) = (got.clone(), fail.clone());
        let handler = move |headers: HeaderMap, body: Bytes| {
            let (got, fail) = (got2.clone(), fail2.clone());
            async move {
                let failing = fail
                    .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
                    .is_ok();
                let header = |name: &str| {
                    headers
                        .get(name)
                        .map(|v| v.to_str().unwrap().to_owned())
                        .unwrap_or_default()
                };
                let status = if failing { 500 } else { 204 };
                got.lock().unwrap().push(Received {
                    id: header("webhook-id"),
                    timestamp: header("webhook-timestamp"),
                    signature: header("webhook-signature"),
                    body: String::from_utf8(body.to_vec()).unwrap(),
                    status,
                });
                tokio::time::sleep(delay).await;
                AxumStatus::from_u16(status).unwrap()
            }
        };
        let router = axum::Router::new().route("/hook", axum::routing::post(handler));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/hook", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, router).await });
        Receiver { url, got }
    }

    fn received(&self) -> Vec<Received> {
        self.got.lock().unwrap().clone()
    }

    /// Requests answered 2xx.
    fn delivered(&self) -> Vec<Received> {
        self.received().into_iter().filter(|r| r.status < 300).collect()
    }

    /// Waits until `done` holds for what was delivered, for at most `seconds`.
    async fn wait_for(&self, seconds: u64, done: impl Fn(&[Received]) -> bool) -> Vec<Received> {
        for _ in 0..seconds * 20 {
            let delivered = self.delivered();
            if done(&delivered) {
                return delivered;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("not delivered in time; got {:#?}", self.received());
    }
}

/// The Standard Webhooks check, from the specification: the secret's base64 part is the HMAC
/// key; the signed content is `id.timestamp.body`; any one `v1,` signature may match; the
/// timestamp must be recent.
fn verify(secret: &str, r: &Received) {
    let key = base64::engine::general_purpose::STANDARD
        .decode(secret.strip_prefix("whsec_").expect("a whsec_ secret"))
        .unwrap();
    let mut mac = Hmac::<Sha256>::new_from_slice(&key).unwrap();
    mac.update(format!("{}.{}.{}", r.id, r.timestamp, r.body).as_bytes());
    let expected = format!(
        "v1,{}",
        base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())
    );
    assert!(
        r.signature.split(' ').any(|s| s == expected),
        "signature {} does not verify with the secret",
        r.signature
    );
    let sent: i64 = r.timestamp.parse().unwrap();
    assert!(
        (chrono::Utc::now().timestamp() - sent).abs() < 300,
        "a recent timestamp"
    );
}

fn allow_private(layer: &mut entitle_server::config::ConfigLayer) {
    layer.webhook_allow_private = Some(true);
    layer.webhook_retry_base_ms = Some(50);
    layer.webhook_poll_ms = Some(20);
}

async fn endpoint(app: &TestApp, key: &str, url: &str, events: Value) -> (String, String) {
    let created = app
        .create(key, "/api/v1/webhook-endpoints", json!({"url": url, "events": events}))
        .await;
    (
        created["id"].as_str().unwrap().to_owned(),
        created["secret"].as_str().unwrap().to_owned(),
    )
}

backend_test! {
    async fn endpoints_are_managed_and_secrets_shown_once(app) {
        let t = app.tenant("Acme").await;
        let created = app.create(&t.key, "/api/v1/webhook-endpoints",
            json!({"url": "https://hooks.example.com/entitle", "events": ["entitlement.created", "entitlement.renewed"],
                   "description": "CRM"})).await;
        let id = created["id"].as_str().unwrap();
        let secret = created["secret"].as_str().unwrap();
        assert!(secret.starts_with("whsec_"));
        assert_eq!(created["enabled"], true);
        let path = format!("/api/v1/webhook-endpoints/{id}");
        let fetched = app.fetch(&t.key, &path).await;
        assert!(fetched.get("secret").is_none(), "the secret is shown once");
        assert_eq!(fetched["events"], json!(["entitlement.created", "entitlement.renewed"]));
        let listed = app.fetch(&t.key, "/api/v1/webhook-endpoints").await;
        assert_eq!(listed["data"].as_array().unwrap().len(), 1);
        assert!(listed["data"][0].get("secret").is_none());

        let patched = app.act(Method::PATCH, &t.key, &path, json!({"events": ["*"], "enabled": false})).await;
        assert_eq!(patched["events"], json!(["*"]));
        assert_eq!(patched["enabled"], false);

        let rotated = app.act(Method::POST, &t.key, &format!("{path}/rotate-secret"), json!({})).await;
        let new_secret = rotated["secret"].as_str().unwrap();
        assert!(new_secret.starts_with("whsec_") && new_secret != secret);
        assert!(rotated["previous_secret_expires_at"].is_string(), "the old secret signs for a while");

        for (body, code) in [
            (json!({"url": "ftp://example.com", "events": ["*"]}), None),
            (json!({"url": "https://a:b@example.com", "events": ["*"]}), None),
            (json!({"url": "https://example.com", "events": []}), Some("invalid_event_types")),
            (json!({"url": "https://example.com", "events": ["entitlement.exploded"]}), Some("invalid_event_types")),
            (json!({"url": "https://example.com", "events": ["*"], "secret": "mine"}), None),
        ] {
            let refused = app.post(&t.key, "/api/v1/webhook-endpoints", body.clone()).await;
            assert_eq!(refused.status, StatusCode::UNPROCESSABLE_ENTITY, "{body}: {}", refused.body);
            if let Some(code) = code {
                assert_eq!(refused.body["error"]["code"], code);
            }
        }

        let other = app.tenant("Globex").await;
        assert_eq!(app.get(&other.key, &path).await.status, StatusCode::NOT_FOUND, "tenants are isolated");
        assert_eq!(
            app.request(Method::DELETE, Some(&other.key), &path, None).await.status,
            StatusCode::NOT_FOUND
        );
        let deleted = app.request(Method::DELETE, Some(&t.key), &path, None).await;
        assert_eq!(deleted.status, StatusCode::OK);
        assert_eq!(app.get(&t.key, &path).await.status, StatusCode::NOT_FOUND);
        let events = app.fetch(&t.key, "/api/v1/events?object_kind=webhook_endpoint").await;
        let actions: Vec<&str> = events["data"].as_array().unwrap().iter().map(|e| e["action"].as_str().unwrap()).collect();
        assert_eq!(actions, ["webhook_endpoint.created", "webhook_endpoint.updated", "webhook_endpoint.secret_rotated",
                             "webhook_endpoint.deleted"]);
    }
}

configured_backend_test! {
    configure: allow_private,
    async fn a_failing_endpoint_gets_every_event_once_and_in_order(app) {
        let receiver = Receiver::start(3, Duration::ZERO).await;
        let t = app.tenant("Acme").await;
        let c = seed_catalogue(app, &t.key).await;
        let (endpoint_id, secret) = endpoint(app, &t.key, &receiver.url, json!(["*"])).await;
        // Only what the endpoint subscribes to reaches it.
        let (_, _) = endpoint(app, &t.key, &receiver.url.replace("/hook", "/never"), json!(["mail.failed"])).await;
        let first = entitle(app, &t.key, &c.customer_id, "PRO-M", 1).await;
        let second = entitle(app, &t.key, &c.customer_id, "BASIC-M", 1).await;
        let path = format!("/api/v1/entitlements/{}", first["id"].as_str().unwrap());
        app.act(Method::POST, &t.key, &format!("{path}/renew"), json!({})).await;
        app.act(Method::POST, &t.key, &format!("{path}/disable"), json!({})).await;
        app.act(Method::POST, &t.key, &format!("{path}/enable"), json!({})).await;

        let delivered = receiver.wait_for(30, |d| d.len() >= 5).await;
        tokio::time::sleep(Duration::from_millis(300)).await;
        let delivered_now = receiver.delivered();
        assert_eq!(delivered_now.len(), 5, "each event exactly once: {delivered:#?}");
        let mut ids: Vec<&str> = delivered_now.iter().map(|r| r.id.as_str()).collect();
        ids.sort();
        ids.dedup();
        assert_eq!(ids.len(), 5, "no message delivered twice");
        assert!(receiver.received().len() >= 8, "three attempts failed first");
        for r in &receiver.received() {
            verify(&secret, r);
        }
        let of = |object: &Value| -> Vec<String> {
            delivered_now
                .iter()
                .map(Received::json)
                .filter(|p| p["data"]["id"] == object["id"])
                .map(|p| p["type"].as_str().unwrap().to_owned())
                .collect()
        };
        assert_eq!(
            of(&first),
            ["entitlement.created", "entitlement.renewed", "entitlement.disabled", "entitlement.enabled"],
            "one object's events arrive in the order they happened, failures notwithstanding"
        );
        assert_eq!(of(&second), ["entitlement.created"]);
        let payload = delivered_now.iter().map(Received::json).find(|p| p["type"] == "entitlement.enabled").unwrap();
        assert_eq!(payload["tenant_id"], t.id.as_str());
        assert_eq!(payload["object"], "entitlement");
        assert!(payload["id"].as_str().unwrap().starts_with("evt_"));
        let current = app.fetch(&t.key, &path).await;
        assert_eq!(payload["data"]["status"], current["status"], "the object as the API shows it");
        assert_eq!(payload["data"]["seat_count"], current["seat_count"]);

        // The delivery log: attempts, status, latency, the answer; and a replay.
        let log = app.fetch(&t.key, &format!("/api/v1/webhook-endpoints/{endpoint_id}/deliveries")).await;
        let log = log["data"].as_array().unwrap();
        assert_eq!(log.len(), 5);
        assert!(log.iter().all(|m| m["status"] == "delivered" && m["last_status_code"] == 204));
        assert!(log.iter().any(|m| m["attempts"].as_i64().unwrap() > 1), "the first one was retried");
        let retried = log.iter().find(|m| m["attempts"].as_i64().unwrap() > 1).unwrap();
        let detail = app.fetch(&t.key, &format!("/api/v1/webhook-deliveries/{}", retried["id"].as_str().unwrap())).await;
        let attempts = detail["attempt_log"].as_array().unwrap();
        assert_eq!(attempts.first().unwrap()["status_code"], 500);
        assert_eq!(attempts.last().unwrap()["status_code"], 204);
        assert!(attempts.iter().all(|a| a["latency_ms"].is_i64()));
        let replayed = app
            .act(Method::POST, &t.key, &format!("/api/v1/webhook-deliveries/{}/replay", retried["id"].as_str().unwrap()), json!({}))
            .await;
        assert_eq!(replayed["status"], "pending");
        let again = receiver.wait_for(10, |d| d.len() >= 6).await;
        assert_eq!(again.last().unwrap().id, retried["id"].as_str().unwrap(), "a replay sends the same message");
        let other = app.tenant("Globex").await;
        assert_eq!(
            app.get(&other.key, &format!("/api/v1/webhook-deliveries/{}", retried["id"].as_str().unwrap())).await.status,
            StatusCode::NOT_FOUND
        );
    }
}

configured_backend_test! {
    configure: allow_private,
    async fn seats_and_test_sends_reach_the_endpoint(app) {
        let receiver = Receiver::start(0, Duration::ZERO).await;
        let t = app.tenant("Acme").await;
        let c = seed_catalogue(app, &t.key).await;
        let (endpoint_id, secret) = endpoint(
            app, &t.key, &receiver.url,
            json!(["activation.created", "activation.deactivated", "seat.limit_reached", "activation.revoked"]),
        ).await;
        let tested = app.post(&t.key, &format!("/api/v1/webhook-endpoints/{endpoint_id}/test"), json!({})).await;
        assert_eq!(tested.status, StatusCode::ACCEPTED);
        let e = entitle(app, &t.key, &c.customer_id, "BASIC-M", 1).await;
        let activated = app
            .licensing(Method::POST, "/licensing/v1/activate", None, "",
                Some(json!({"tenant": t.id, "product": c.product_id, "activation_code": e["activation_code"],
                            "seat_id": "machine-1", "nonce": entitle_server::domain::ids::random_token(12)})))
            .await;
        assert_eq!(activated.status, StatusCode::OK, "{}", activated.body);
        let delivered = receiver.wait_for(20, |d| d.len() >= 3).await;
        for r in &delivered {
            verify(&secret, r);
        }
        let types: Vec<String> = delivered.iter().map(|r| r.json()["type"].as_str().unwrap().to_owned()).collect();
        assert_eq!(types[0], "webhook.test");
        assert!(types.contains(&"activation.created".to_owned()), "{types:?}");
        assert!(types.contains(&"seat.limit_reached".to_owned()), "the only seat is taken: {types:?}");
        let seat = delivered.iter().map(Received::json).find(|p| p["type"] == "seat.limit_reached").unwrap();
        assert_eq!(seat["data"]["id"], e["id"]);
        assert_eq!(seat["data"]["seats_used"], 1);
    }
}

backend_test! {
    async fn private_receivers_are_refused_unless_allowed(app) {
        let receiver = Receiver::start(0, Duration::ZERO).await;
        let t = app.tenant("Acme").await;
        let by_name = receiver.url.replace("127.0.0.1", "localhost");
        for url in [receiver.url.clone(), by_name] {
            let (endpoint_id, _) = endpoint(app, &t.key, &url, json!(["*"])).await;
            let tested = app.post(&t.key, &format!("/api/v1/webhook-endpoints/{endpoint_id}/test"), json!({})).await;
            assert_eq!(tested.status, StatusCode::ACCEPTED);
            let path = format!("/api/v1/webhook-endpoints/{endpoint_id}/deliveries");
            let mut last = Value::Null;
            for _ in 0..100 {
                last = app.fetch(&t.key, &path).await["data"][0].clone();
                if last["attempts"].as_i64().unwrap_or(0) >= 1 && last["status"] != "sending" {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            assert!(
                last["last_error"].as_str().unwrap_or_default().contains("private, loopback or link-local"),
                "{url}: {last}"
            );
            assert!(last["last_status_code"].is_null());
        }
        assert!(receiver.received().is_empty(), "nothing reached the loopback receiver");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_instances_deliver_each_message_once() {
    let Some(first) = TestApp::spawn_configured(Backend::Postgres, allow_private).await else {
        eprintln!("ENTITLE_TEST_DATABASE_URL is not set: PostgreSQL-only test not run");
        return;
    };
    let second = first.another_instance(allow_private).await;
    let receiver = Receiver::start(0, Duration::from_millis(15)).await;
    let t = first.tenant("Acme").await;
    let c = seed_catalogue(&first, &t.key).await;
    let (_, secret) = endpoint(
        &first,
        &t.key,
        &receiver.url,
        json!(["entitlement.created", "entitlement.renewed"]),
    )
    .await;
    let mut expected = 0;
    for i in 0..12 {
        let app = if i % 2 == 0 { &first } else { &second };
        let e = entitle(app, &t.key, &c.customer_id, "PRO-M", 1).await;
        app.act(
            Method::POST,
            &t.key,
            &format!("/api/v1/entitlements/{}/renew", e["id"].as_str().unwrap()),
            json!({}),
        )
        .await;
        expected += 2;
    }
    receiver.wait_for(60, |d| d.len() >= expected).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let delivered = receiver.delivered();
    let mut ids: Vec<&str> = delivered.iter().map(|r| r.id.as_str()).collect();
    ids.sort();
    ids.dedup();
    assert_eq!(delivered.len(), expected, "no message sent twice");
    assert_eq!(ids.len(), expected);
    for r in &delivered {
        verify(&secret, r);
    }
    second.stop().await;
    first.stop().await;
}

/// A server process, killed (SIGKILL) when dropped, also when a test fails.
struct Killed(std::process::Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// `entitle serve` as a process whose log is drained; its address.
fn serve(dir: &TempDir, env: &[(&str, &str)]) -> (Killed, std::net::SocketAddr) {
    use std::io::BufRead;
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_entitle"))
        .args([
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--data-dir",
            dir.0.to_str().unwrap(),
        ])
        .env_remove("ENTITLE_DATABASE_URL")
        .env_remove("ENTITLE_CONFIG")
        .env("RUST_LOG", "info")
        .env("NO_COLOR", "1")
        .envs(env.iter().copied())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("start entitle serve");
    let mut lines = std::io::BufReader::new(child.stderr.take().unwrap()).lines();
    let address = loop {
        let line = lines.next().expect("the server logs where it listens").unwrap();
        if let Some(rest) = line.split("address=").nth(1).filter(|_| line.contains("listening")) {
            let address: String = rest.chars().take_while(|c| !c.is_whitespace()).collect();
            break address.parse().expect("an address");
        }
    };
    std::thread::spawn(move || for _ in lines.by_ref() {});
    (Killed(child), address)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_kill_between_commit_and_delivery_loses_nothing() {
    let dir = TempDir::new();
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_entitle"))
        .args([
            "--data-dir",
            dir.0.to_str().unwrap(),
            "tenant",
            "create",
            "--name",
            "Acme",
        ])
        .env_remove("ENTITLE_DATABASE_URL")
        .env_remove("ENTITLE_CONFIG")
        .output()
        .unwrap();
    assert!(output.status.success());
    let created: Value = serde_json::from_slice(&output.stdout).unwrap();
    let key = created["api_key"].as_str().unwrap().to_owned();
    // A receiver that holds every request for longer than the attempt may take: the first
    // server is killed while its attempt is in flight.
    let stuck = Receiver::start(0, Duration::from_secs(3600)).await;
    let env = [
        ("ENTITLE_WEBHOOK_ALLOW_PRIVATE", "true"),
        ("ENTITLE_WEBHOOK_POLL_MS", "20"),
        ("ENTITLE_WEBHOOK_RETRY_BASE_MS", "50"),
        ("ENTITLE_WEBHOOK_TIMEOUT_MS", "1000"),
    ];
    let (child, address) = serve(&dir, &env);
    let client = reqwest::Client::new();
    let base = format!("http://{address}");
    let post = |path: &str, body: Value| {
        client
            .post(format!("{base}{path}"))
            .bearer_auth(&key)
            .json(&body)
            .send()
    };
    let endpoint: Value = post("/api/v1/webhook-endpoints", json!({"url": stuck.url, "events": ["*"]}))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let customer: Value = post("/api/v1/customers", json!({"name": "Initech"}))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(customer["id"].is_string(), "{customer}");
    // The test send is committed and claimed; the server dies with the attempt in flight.
    let test = post(
        &format!("/api/v1/webhook-endpoints/{}/test", endpoint["id"].as_str().unwrap()),
        json!({}),
    )
    .await
    .unwrap();
    assert_eq!(test.status(), StatusCode::ACCEPTED);
    for _ in 0..100 {
        if !stuck.received().is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(stuck.received().len(), 1, "the attempt is in flight");
    drop(child); // SIGKILL

    // The endpoint now points at a receiver that answers; a new server delivers what was lost.
    let receiver = Receiver::start(0, Duration::ZERO).await;
    let db = dir.0.join("entitle.db");
    sqlx::any::install_default_drivers();
    let mut conn = <sqlx::AnyConnection as sqlx::Connection>::connect(&format!("sqlite://{}", db.display()))
        .await
        .unwrap();
    sqlx::query("UPDATE webhook_endpoints SET url = $1")
        .bind(&receiver.url)
        .execute(&mut conn)
        .await
        .unwrap();
    drop(conn);
    let (_server, _) = serve(&dir, &env);
    let delivered = receiver.wait_for(30, |d| !d.is_empty()).await;
    assert_eq!(
        delivered[0].id,
        stuck.received()[0].id,
        "the same message, once its lease lapsed"
    );
    assert_eq!(delivered[0].json()["type"], "webhook.test");
}

/// Mail that cannot be delivered: the relay's port is closed and one attempt is all there is.
fn failing_mail(layer: &mut entitle_server::config::ConfigLayer) {
    allow_private(layer);
    layer.smtp_url = Some("smtp://127.0.0.1:1".into());
    layer.mail_max_attempts = Some(1);
}

configured_backend_test! {
    configure: failing_mail,
    async fn a_mail_given_up_on_is_told_as_mail_failed(app) {
        let receiver = Receiver::start(0, Duration::ZERO).await;
        let t = app.tenant("Acme").await;
        let c = seed_catalogue(app, &t.key).await;
        let (_, secret) = endpoint(app, &t.key, &receiver.url, json!(["mail.failed"])).await;
        let e = crate::mail::buy(app, &t.key, &c.customer_id, "BASIC-M", "buyer@initech.example").await;
        let delivered = receiver.wait_for(30, |d| !d.is_empty()).await;
        assert_eq!(delivered.len(), 1, "one mail, one notice: {delivered:#?}");
        verify(&secret, &delivered[0]);
        let payload = delivered[0].json();
        assert_eq!(payload["type"], "mail.failed");
        assert_eq!(payload["data"]["status"], "failed");
        assert_eq!(payload["data"]["entitlement_id"], e["id"]);
        assert!(payload["data"]["last_error"].as_str().is_some_and(|e| !e.is_empty()));
        let code = e["activation_code"].as_str().unwrap();
        assert!(!delivered[0].body.contains(code), "the notice carries no activation code");
    }
}
