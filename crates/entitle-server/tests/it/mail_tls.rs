//! Mail over TLS without OpenSSL: STARTTLS and implicit TLS (`smtps://`) to a local relay whose
//! certificate a test CA signed, trusted through `smtp_ca_file`; AUTH PLAIN and LOGIN.

use std::sync::Arc;
use std::time::Duration;

use crate::helpers::{seed_catalogue, Backend, TempDir, TestApp};
use crate::mail::{buy, settled};
use crate::smtp::{SinkOptions, SmtpSink};

/// A CA (its PEM) and a TLS acceptor for `localhost` with a certificate it signed.
fn test_pki() -> (String, Arc<tokio_rustls::TlsAcceptor>) {
    use rcgen::{BasicConstraints, CertificateParams, IsCa, KeyPair};
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca_key = KeyPair::generate().unwrap();
    let ca = ca_params.self_signed(&ca_key).unwrap();
    let leaf_key = KeyPair::generate().unwrap();
    let leaf = CertificateParams::new(vec!["localhost".to_owned(), "127.0.0.1".to_owned()])
        .unwrap()
        .signed_by(&leaf_key, &ca, &ca_key)
        .unwrap();
    let provider = Arc::new(tokio_rustls::rustls::crypto::ring::default_provider());
    let config = tokio_rustls::rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(
            vec![leaf.der().clone()],
            rustls_pki_types::PrivateKeyDer::Pkcs8(leaf_key.serialize_der().into()),
        )
        .unwrap();
    (ca.pem(), Arc::new(tokio_rustls::TlsAcceptor::from(Arc::new(config))))
}

/// Sends one credentials mail through a relay with `options` at `url` (`{port}` filled in) and
/// answers what the relay received and what the outbox says.
async fn send_through(
    options: SinkOptions,
    url: &str,
    ca_pem: Option<&str>,
) -> (Vec<crate::smtp::Received>, Vec<serde_json::Value>) {
    let sink = SmtpSink::start_with(0, options).await;
    let dir = TempDir::new();
    let ca_file = dir.0.join("ca.pem");
    if let Some(pem) = ca_pem {
        std::fs::write(&ca_file, pem).unwrap();
    }
    let url = url.replace("{port}", &sink.port.to_string());
    let app = TestApp::spawn_configured(Backend::Sqlite, |c| {
        c.smtp_url = Some(url);
        c.smtp_ca_file = ca_pem.map(|_| ca_file.clone());
        c.mail_max_attempts = Some(1);
    })
    .await
    .unwrap();
    let t = app.tenant("Acme").await;
    let c = seed_catalogue(&app, &t.key).await;
    buy(&app, &t.key, &c.customer_id, "BASIC-M", "buyer@initech.example").await;
    let outbox = settled(&app, &t.key).await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    let received = sink.received();
    app.stop().await;
    sink.stop();
    (received, outbox)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn starttls_with_a_private_ca_and_auth_plain() {
    let (ca, acceptor) = test_pki();
    let options = SinkOptions {
        starttls: Some(acceptor),
        auth: Some(("relay-user".into(), "p@ss word".into())),
        ..Default::default()
    };
    let (received, outbox) = send_through(
        options,
        "smtp://relay-user:p%40ss%20word@localhost:{port}?tls=starttls",
        Some(&ca),
    )
    .await;
    assert_eq!(outbox[0]["status"], "sent", "{outbox:?}");
    assert_eq!(received.len(), 1);
    assert!(received[0].secure, "sent after STARTTLS");
    assert!(received[0].authenticated);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn implicit_tls_with_a_private_ca_and_auth_login() {
    let (ca, acceptor) = test_pki();
    let options = SinkOptions {
        implicit_tls: Some(acceptor),
        auth: Some(("relay-user".into(), "secret".into())),
        login_only: true,
        ..Default::default()
    };
    let (received, outbox) = send_through(options, "smtps://relay-user:secret@localhost:{port}", Some(&ca)).await;
    assert_eq!(outbox[0]["status"], "sent", "{outbox:?}");
    assert_eq!(received.len(), 1);
    assert!(received[0].secure && received[0].authenticated);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_relay_certificate_from_an_untrusted_ca_gets_no_mail() {
    for tls in ["starttls", "implicit"] {
        let (_, acceptor) = test_pki();
        let (options, url) = match tls {
            "starttls" => (
                SinkOptions {
                    starttls: Some(acceptor),
                    ..Default::default()
                },
                "smtp://localhost:{port}?tls=starttls",
            ),
            _ => (
                SinkOptions {
                    implicit_tls: Some(acceptor),
                    ..Default::default()
                },
                "smtps://localhost:{port}",
            ),
        };
        let (received, outbox) = send_through(options, url, None).await;
        assert!(received.is_empty(), "{tls}");
        assert_eq!(outbox[0]["status"], "failed", "{tls}");
        let error = outbox[0]["last_error"].as_str().unwrap().to_lowercase();
        assert!(error.contains("certificate") || error.contains("tls"), "{tls}: {error}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_relay_credentials_are_a_failed_attempt() {
    let (ca, acceptor) = test_pki();
    let options = SinkOptions {
        implicit_tls: Some(acceptor),
        auth: Some(("relay-user".into(), "secret".into())),
        ..Default::default()
    };
    let (received, outbox) = send_through(options, "smtps://relay-user:wrong@localhost:{port}", Some(&ca)).await;
    assert!(received.is_empty());
    assert_eq!(outbox[0]["status"], "failed");
    assert!(outbox[0]["last_error"].as_str().unwrap().contains("authenticat"));
}

/// The binary links no OpenSSL: TLS is rustls throughout (checked on Linux with `ldd`).
#[test]
fn the_binary_links_no_openssl() {
    let Ok(output) = std::process::Command::new("ldd")
        .arg(env!("CARGO_BIN_EXE_entitle"))
        .output()
    else {
        eprintln!("ldd is not available: not checked");
        return;
    };
    let libraries = String::from_utf8_lossy(&output.stdout);
    assert!(!libraries.is_empty(), "ldd printed nothing");
    assert!(
        !libraries.contains("libssl") && !libraries.contains("libcrypto"),
        "{libraries}"
    );
}
