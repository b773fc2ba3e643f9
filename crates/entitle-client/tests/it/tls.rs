//! `https://` out of the box: the real server behind a TLS terminator whose certificate comes
//! from a private test CA. The SDK trusts that CA only when told to, with rustls (no OpenSSL).

use std::sync::Arc;

use entitle_client::{Client, Credential, Error, ManualClock};
use rcgen::{BasicConstraints, CertificateParams, IsCa, KeyPair};
use tokio_rustls::rustls::pki_types::{PrivateKeyDer, PrivatePkcs8KeyDer};
use tokio_rustls::rustls::{self, ServerConfig};
use tokio_rustls::TlsAcceptor;

use crate::harness::{Server, TempDir};

/// A private CA and a `localhost` certificate it signed.
struct TestPki {
    ca_pem: String,
    server: ServerConfig,
}

fn test_pki() -> TestPki {
    let ca_key = KeyPair::generate().unwrap();
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca = ca_params.self_signed(&ca_key).unwrap();
    let leaf_key = KeyPair::generate().unwrap();
    let leaf = CertificateParams::new(vec!["localhost".to_owned()])
        .unwrap()
        .signed_by(&leaf_key, &ca, &ca_key)
        .unwrap();
    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(leaf_key.serialize_der()));
    let server = ServerConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(vec![leaf.der().clone()], key)
        .unwrap();
    TestPki {
        ca_pem: ca.pem(),
        server,
    }
}

/// Terminates TLS on a free port and forwards each connection to `upstream`; returns the
/// `https://localhost:PORT` URL.
async fn tls_proxy(server: ServerConfig, upstream: String) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let acceptor = TlsAcceptor::from(Arc::new(server));
    tokio::spawn(async move {
        while let Ok((socket, _)) = listener.accept().await {
            let acceptor = acceptor.clone();
            let upstream = upstream.clone();
            tokio::spawn(async move {
                // A refused handshake (the client distrusts the CA) just ends the connection.
                let Ok(mut tls) = acceptor.accept(socket).await else {
                    return;
                };
                let Ok(mut plain) = tokio::net::TcpStream::connect(&upstream).await else {
                    return;
                };
                let _ = tokio::io::copy_bidirectional(&mut tls, &mut plain).await;
            });
        }
    });
    format!("https://localhost:{port}")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn https_works_with_a_private_ca_and_refuses_an_unknown_one() {
    let mut server = Server::start().await;
    let pki = test_pki();
    let upstream = server.base.trim_start_matches("http://").to_owned();
    let url = tls_proxy(pki.server, upstream).await;
    let dir = TempDir::new();
    let clock = ManualClock::starting_now();

    let untrusting = Client::new(server.config_at(&url, "tls-seat", &dir.join("a.json"), &clock)).unwrap();
    let refused = untrusting.activate(Credential::Code(server.code.clone()), None).await;
    assert!(
        matches!(&refused, Err(Error::Network(_))),
        "a certificate from an unknown CA is refused: {refused:?}"
    );
    assert!(!untrusting.is_activated());

    let config = server
        .config_at(&url, "tls-seat", &dir.join("b.json"), &clock)
        .with_root_certificate(pki.ca_pem.as_bytes())
        .unwrap();
    let client = Client::new(config).unwrap();
    let claims = client
        .activate(Credential::Code(server.code.clone()), Some("over TLS"))
        .await
        .unwrap();
    assert_eq!(claims.seat.id, "tls-seat");
    let refreshed = client.refresh().await.unwrap();
    assert_eq!(refreshed.sub, claims.sub);
    client.deactivate().await.unwrap();
    assert!(!client.is_activated());
    server.stop().await;
}
