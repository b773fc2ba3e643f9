//! HTTPS served directly (`--tls-cert`, `--tls-key`), for deployments without a reverse proxy.
//!
//! The certificate is re-read when its files change, so a renewal (certbot, an ACME client, a
//! secrets mount) takes effect on the next handshake without a restart. A renewal that leaves
//! the files unreadable or mismatched keeps the last good certificate and logs why.

use anyhow::Context;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::{Duration, SystemTime};
use tokio_rustls::rustls::crypto::{ring, CryptoProvider};
use tokio_rustls::rustls::server::{ClientHello, ResolvesServerCert};
use tokio_rustls::rustls::sign::CertifiedKey;
use tokio_rustls::rustls::ServerConfig;
use tokio_rustls::TlsAcceptor;

/// How often, at most, a handshake looks whether the certificate files changed.
const RELOAD_CHECK_INTERVAL: Duration = Duration::from_secs(1);

/// The certificate and key files to serve HTTPS with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsFiles {
    pub cert: PathBuf,
    pub key: PathBuf,
}

/// An acceptor for the public listener. Fails at start when the files are unreadable, not PEM,
/// or the key does not belong to the certificate.
pub fn acceptor(files: &TlsFiles) -> anyhow::Result<TlsAcceptor> {
    let provider = Arc::new(ring::default_provider());
    let resolver = ReloadingCert::load(files.clone(), provider.clone())?;
    let mut config = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .context("TLS protocol versions")?
        .with_no_client_auth()
        .with_cert_resolver(Arc::new(resolver));
    // The server speaks HTTP/1.1 only.
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(TlsAcceptor::from(Arc::new(config)))
}

fn certified_key(files: &TlsFiles, provider: &CryptoProvider) -> anyhow::Result<CertifiedKey> {
    let chain = CertificateDer::pem_file_iter(&files.cert)
        .with_context(|| format!("reading the TLS certificate {}", files.cert.display()))?
        .collect::<Result<Vec<_>, _>>()
        .with_context(|| format!("parsing the TLS certificate {}", files.cert.display()))?;
    anyhow::ensure!(!chain.is_empty(), "{} holds no PEM certificate", files.cert.display());
    let key = PrivateKeyDer::from_pem_file(&files.key)
        .with_context(|| format!("reading the TLS key {}", files.key.display()))?;
    CertifiedKey::from_der(chain, key, provider).with_context(|| {
        format!(
            "the TLS key {} does not fit the certificate {}",
            files.key.display(),
            files.cert.display()
        )
    })
}

fn modified(path: &Path) -> Option<SystemTime> {
    std::fs::metadata(path).and_then(|meta| meta.modified()).ok()
}

/// Serves the current certificate, reloading it when either file's modification time changes.
#[derive(Debug)]
struct ReloadingCert {
    files: TlsFiles,
    provider: Arc<CryptoProvider>,
    current: RwLock<Loaded>,
    /// Milliseconds since the epoch of the last look at the files.
    last_check_ms: AtomicI64,
}

#[derive(Debug)]
struct Loaded {
    key: Arc<CertifiedKey>,
    stamps: (Option<SystemTime>, Option<SystemTime>),
}

impl ReloadingCert {
    fn load(files: TlsFiles, provider: Arc<CryptoProvider>) -> anyhow::Result<ReloadingCert> {
        let stamps = (modified(&files.cert), modified(&files.key));
        let key = Arc::new(certified_key(&files, &provider)?);
        Ok(ReloadingCert {
            files,
            provider,
            current: RwLock::new(Loaded { key, stamps }),
            last_check_ms: AtomicI64::new(chrono::Utc::now().timestamp_millis()),
        })
    }

    fn reload_if_changed(&self) {
        let now = chrono::Utc::now().timestamp_millis();
        let last = self.last_check_ms.load(Ordering::Relaxed);
        let interval = i64::try_from(RELOAD_CHECK_INTERVAL.as_millis()).unwrap_or(i64::MAX);
        if now.saturating_sub(last) < interval
            || self
                .last_check_ms
                .compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed)
                .is_err()
        {
            return;
        }
        let stamps = (modified(&self.files.cert), modified(&self.files.key));
        let unchanged = self
            .current
            .read()
            .map(|loaded| loaded.stamps == stamps)
            .unwrap_or(false);
        if unchanged {
            return;
        }
        match certified_key(&self.files, &self.provider) {
            Ok(key) => {
                if let Ok(mut loaded) = self.current.write() {
                    *loaded = Loaded {
                        key: Arc::new(key),
                        stamps,
                    };
                    tracing::info!(cert = %self.files.cert.display(), "TLS certificate reloaded");
                }
            }
            Err(error) => {
                // Keep serving the last good one; a half-written renewal is retried next check.
                tracing::warn!(error = format!("{error:#}"), "TLS certificate not reloaded");
            }
        }
    }
}

impl ResolvesServerCert for ReloadingCert {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        self.reload_if_changed();
        self.current.read().ok().map(|loaded| loaded.key.clone())
    }
}
