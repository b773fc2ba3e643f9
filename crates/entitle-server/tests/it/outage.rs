//! A PostgreSQL outage, made by cutting a TCP proxy between the server and the database (the
//! machine's PostgreSQL keeps running): requests fail fast with 503, readiness says so within a
//! second, and everything recovers by itself when the proxy is back.

use reqwest::{Method, StatusCode};
use serde_json::json;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

use crate::helpers::{entitle, seed_catalogue, Backend, TestApp};

/// Forwards connections on a local port to `upstream`; `cut` closes every connection and stops
/// listening (connections are refused), `resume` listens again on the same port.
struct Proxy {
    address: SocketAddr,
    upstream: String,
    tasks: Arc<Mutex<Vec<JoinHandle<()>>>>,
}

impl Proxy {
    async fn start(upstream: &str) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let proxy = Proxy {
            address: listener.local_addr().unwrap(),
            upstream: upstream.to_owned(),
            tasks: Arc::default(),
        };
        proxy.serve(listener);
        proxy
    }

    fn serve(&self, listener: TcpListener) {
        let (upstream, tasks) = (self.upstream.clone(), self.tasks.clone());
        let accept = tokio::spawn(async move {
            while let Ok((mut client, _)) = listener.accept().await {
                let upstream = upstream.clone();
                let connection = tokio::spawn(async move {
                    if let Ok(mut server) = TcpStream::connect(&upstream).await {
                        let _ = tokio::io::copy_bidirectional(&mut client, &mut server).await;
                    }
                });
                tasks.lock().unwrap().push(connection);
            }
        });
        self.tasks.lock().unwrap().push(accept);
    }

    fn cut(&self) {
        for task in self.tasks.lock().unwrap().drain(..) {
            task.abort();
        }
    }

    async fn resume(&self) {
        let listener = TcpListener::bind(self.address).await.unwrap();
        self.serve(listener);
    }
}

/// `host:port` of a `postgres://user@host:port/db` URL.
fn authority(url: &str) -> &str {
    let rest = url.split("://").nth(1).unwrap();
    let rest = rest.rsplit_once('@').map_or(rest, |(_, host)| host);
    rest.split('/').next().unwrap()
}

async fn timed(app: &TestApp, method: Method, key: Option<&str>, path: &str) -> (StatusCode, String, Duration) {
    let started = Instant::now();
    let response = app.request(method, key, path, None).await;
    let code = response.body["error"]["code"].as_str().unwrap_or_default().to_owned();
    (response.status, code, started.elapsed())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_outage_fails_fast_and_recovers_by_itself() {
    let Ok(admin) = std::env::var("ENTITLE_TEST_DATABASE_URL") else {
        eprintln!("ENTITLE_TEST_DATABASE_URL is not set: PostgreSQL outage test not run");
        return;
    };
    let upstream = authority(&admin).to_owned();
    let proxy = Proxy::start(&upstream).await;
    let through_proxy = proxy.address.to_string();
    let app = TestApp::spawn_configured(Backend::Postgres, |layer| {
        let url = layer.database_url.take().unwrap();
        layer.database_url = Some(url.replacen(&upstream, &through_proxy, 1));
    })
    .await
    .unwrap();
    let t = app.tenant("Acme").await;
    let c = seed_catalogue(&app, &t.key).await;
    let e = entitle(&app, &t.key, &c.customer_id, "PRO-M", 1).await;
    let activated = app
        .licensing(
            Method::POST,
            "/licensing/v1/activate",
            None,
            "",
            Some(
                json!({"tenant": t.id, "product": c.product_id, "activation_code": e["activation_code"],
                        "seat_id": "machine-1", "seat_name": "Machine 1", "nonce": "nonce-outage-0001"}),
            ),
        )
        .await;
    assert_eq!(activated.status, StatusCode::OK);
    let secret = activated.body["activation_secret"].as_str().unwrap().to_owned();
    let refresh = |nonce: &'static str| {
        let request = app
            .client
            .post(format!("{}/licensing/v1/activation/refresh", app.base))
            .bearer_auth(&secret)
            .header("entitle-nonce", nonce);
        async move {
            let started = Instant::now();
            let status = request.send().await.unwrap().status();
            (status, started.elapsed())
        }
    };

    proxy.cut();
    let (status, took) = {
        let started = Instant::now();
        let response = app.client.get(format!("{}/readyz", app.base)).send().await.unwrap();
        (response.status(), started.elapsed())
    };
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert!(took < Duration::from_millis(1500), "readiness answered in {took:?}");
    // The default acquire timeout is 2 s; the margin is for a machine busy with other tests.
    let (status, code, took) = timed(&app, Method::GET, Some(&t.key), "/api/v1/products").await;
    assert_eq!(
        (status, code.as_str()),
        (StatusCode::SERVICE_UNAVAILABLE, "database_unavailable")
    );
    assert!(took < Duration::from_secs(5), "a management read failed in {took:?}");
    let path = format!("/api/v1/entitlements/{}/disable", e["id"].as_str().unwrap());
    let (status, code, took) = timed(&app, Method::POST, Some(&t.key), &path).await;
    assert_eq!(
        (status, code.as_str()),
        (StatusCode::SERVICE_UNAVAILABLE, "database_unavailable")
    );
    assert!(took < Duration::from_secs(5), "a management write failed in {took:?}");
    let (status, took) = refresh("nonce-outage-0002").await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert!(took < Duration::from_secs(5), "a refresh failed in {took:?}");
    eprintln!("during the outage a refresh failed in {took:?}");

    proxy.resume().await;
    let back = Instant::now();
    loop {
        let ready = app.client.get(format!("{}/readyz", app.base)).send().await.unwrap();
        if ready.status() == StatusCode::OK {
            break;
        }
        assert!(
            back.elapsed() < Duration::from_secs(10),
            "not ready 10 s after the database came back"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    eprintln!("ready again {:?} after the database came back", back.elapsed());
    app.fetch(&t.key, "/api/v1/products").await;
    let (status, _) = refresh("nonce-outage-0003").await;
    assert_eq!(status, StatusCode::OK);
    let entitlement = app
        .fetch(&t.key, &format!("/api/v1/entitlements/{}", e["id"].as_str().unwrap()))
        .await;
    assert_eq!(
        entitlement["status"], "active",
        "the write refused during the outage changed nothing"
    );
    app.stop().await;
}
