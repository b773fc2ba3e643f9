//! HTTPS served directly (`tls_cert` / `tls_key`): a client that trusts the test CA gets real
//! answers, a renewed certificate is picked up without a restart, and a client that never
//! finishes its handshake is cut off like one that never sends headers.

use std::path::Path;
use std::time::{Duration, Instant};

use entitle_server::app::Application;
use entitle_server::config::{Config, ConfigLayer};
use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, KeyPair};
use tokio::io::AsyncReadExt;
use tokio::sync::oneshot;

use crate::helpers::TempDir;

/// A test certificate authority.
struct TestCa {
    cert: rcgen::Certificate,
    key: KeyPair,
}

impl TestCa {
    fn new(name: &str) -> TestCa {
        let key = KeyPair::generate().unwrap();
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.distinguished_name.push(DnType::CommonName, name);
        let cert = params.self_signed(&key).unwrap();
        TestCa { cert, key }
    }

    /// Writes a `localhost` certificate signed by this CA, and its key, as PEM files.
    fn issue_into(&self, cert_path: &Path, key_path: &Path) {
        let key = KeyPair::generate().unwrap();
        let cert = CertificateParams::new(vec!["localhost".to_owned()])
            .unwrap()
            .signed_by(&key, &self.cert, &self.key)
            .unwrap();
        std::fs::write(cert_path, cert.pem()).unwrap();
        std::fs::write(key_path, key.serialize_pem()).unwrap();
    }

    fn client(&self) -> reqwest::Client {
        reqwest::Client::builder()
            .tls_built_in_root_certs(false)
            .add_root_certificate(reqwest::Certificate::from_pem(self.cert.pem().as_bytes()).unwrap())
            .build()
            .unwrap()
    }
}

struct HttpsServer {
    port: u16,
    stop: Option<oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<anyhow::Result<()>>,
    _dir: TempDir,
}

impl HttpsServer {
    async fn start(dir: TempDir, header_timeout_ms: u64) -> HttpsServer {
        let layer = ConfigLayer {
            listen: Some("127.0.0.1:0".parse().unwrap()),
            data_dir: Some(dir.0.clone()),
            tls_cert: Some(dir.0.join("cert.pem")),
            tls_key: Some(dir.0.join("key.pem")),
            header_timeout_ms: Some(header_timeout_ms),
            ..Default::default()
        };
        let app = Application::build(Config::from_layer(layer).unwrap()).await.unwrap();
        let port = app.port();
        let (stop, stopped) = oneshot::channel();
        let task = tokio::spawn(app.run_until(async {
            let _ = stopped.await;
        }));
        HttpsServer {
            port,
            stop: Some(stop),
            task,
            _dir: dir,
        }
    }

    fn url(&self, path: &str) -> String {
        format!("https://localhost:{}{path}", self.port)
    }

    async fn stop(mut self) {
        let _ = self.stop.take().map(|stop| stop.send(()));
        (&mut self.task).await.unwrap().unwrap();
    }
}

#[tokio::test]
async fn https_is_served_with_the_configured_certificate_and_renewals_need_no_restart() {
    let dir = TempDir::new();
    let first_ca = TestCa::new("Entitle test CA one");
    first_ca.issue_into(&dir.0.join("cert.pem"), &dir.0.join("key.pem"));
    let server = HttpsServer::start(dir, 10_000).await;
    let cert_path = server._dir.0.join("cert.pem");
    let key_path = server._dir.0.join("key.pem");

    let answer = first_ca.client().get(server.url("/healthz")).send().await.unwrap();
    assert_eq!(answer.status(), 200);
    let openapi: serde_json::Value = first_ca
        .client()
        .get(server.url("/api/v1/openapi.json"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(openapi["paths"].is_object(), "the API answers over TLS");

    // Plain HTTP on the TLS port gets no HTTP answer.
    let plain = reqwest::Client::new()
        .get(format!("http://localhost:{}/healthz", server.port))
        .timeout(Duration::from_secs(5))
        .send()
        .await;
    assert!(
        plain.map(|r| !r.status().is_success()).unwrap_or(true),
        "plain HTTP is not served on the TLS port"
    );

    // A client that does not trust the CA refuses the server.
    let stranger = TestCa::new("Someone else");
    assert!(stranger.client().get(server.url("/healthz")).send().await.is_err());

    // Renewal: new files signed by another CA are served from the next handshakes on.
    let second_ca = TestCa::new("Entitle test CA two");
    second_ca.issue_into(&cert_path, &key_path);
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        // A fresh client each time: no pooled connection from before the renewal.
        if let Ok(answer) = second_ca.client().get(server.url("/healthz")).send().await {
            assert_eq!(answer.status(), 200);
            break;
        }
        assert!(Instant::now() < deadline, "the renewed certificate was not picked up");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert!(
        first_ca.client().get(server.url("/healthz")).send().await.is_err(),
        "the old certificate is no longer served"
    );

    // A renewal that breaks the files keeps the last good certificate.
    std::fs::write(&cert_path, "not a certificate").unwrap();
    tokio::time::sleep(Duration::from_millis(1_500)).await;
    let answer = second_ca.client().get(server.url("/healthz")).send().await.unwrap();
    assert_eq!(answer.status(), 200);
    server.stop().await;
}

#[tokio::test]
async fn a_client_that_never_finishes_its_handshake_is_cut_off() {
    let dir = TempDir::new();
    TestCa::new("Entitle test CA").issue_into(&dir.0.join("cert.pem"), &dir.0.join("key.pem"));
    let server = HttpsServer::start(dir, 500).await;
    let mut silent = tokio::net::TcpStream::connect(("127.0.0.1", server.port))
        .await
        .unwrap();
    let started = Instant::now();
    let mut buffer = [0u8; 16];
    let read = tokio::time::timeout(Duration::from_secs(5), silent.read(&mut buffer))
        .await
        .expect("the server closes the silent connection");
    assert!(matches!(read, Ok(0) | Err(_)), "closed without an answer: {read:?}");
    assert!(started.elapsed() >= Duration::from_millis(400));
    server.stop().await;
}

#[tokio::test]
async fn a_missing_or_mismatched_key_stops_the_start() {
    let dir = TempDir::new();
    let ca = TestCa::new("Entitle test CA");
    ca.issue_into(&dir.0.join("cert.pem"), &dir.0.join("key.pem"));
    // The key of another certificate.
    ca.issue_into(&dir.0.join("other.pem"), &dir.0.join("other-key.pem"));
    let layer = |key: &str| ConfigLayer {
        listen: Some("127.0.0.1:0".parse().unwrap()),
        data_dir: Some(dir.0.clone()),
        tls_cert: Some(dir.0.join("cert.pem")),
        tls_key: Some(dir.0.join(key)),
        ..Default::default()
    };
    let mismatched = Application::build(Config::from_layer(layer("other-key.pem")).unwrap()).await;
    let message = format!("{:#}", mismatched.err().expect("a mismatched key is refused"));
    assert!(message.contains("does not fit"), "{message}");
    let missing = Application::build(Config::from_layer(layer("absent.pem")).unwrap()).await;
    assert!(missing.is_err());
}
