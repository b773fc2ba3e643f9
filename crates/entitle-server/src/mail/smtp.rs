//! SMTP connections the server opens itself, then hands to lettre's SMTP client: so every
//! connection runs with TCP_NODELAY (released lettre leaves Nagle's algorithm on, and a relay's
//! delayed ACK then holds each message's final `.` for ~40 ms), and implicit TLS and STARTTLS
//! trust an operator's private CA as well as the public roots.

use anyhow::Context;
use lettre::transport::smtp::authentication::{Credentials, Mechanism};
use lettre::transport::smtp::client::{AsyncSmtpConnection, AsyncTokioStream, Certificate, TlsParameters};
use lettre::transport::smtp::extension::ClientId;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, ServerName};
use std::io;
use std::path::Path;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context as TaskContext, Poll};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio_rustls::rustls;

/// How the connection is protected.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Security {
    /// Plain text (a relay on loopback or a private network).
    None,
    /// STARTTLS when the relay offers it, plain text otherwise.
    Opportunistic,
    /// STARTTLS, or no mail.
    StartTls,
    /// TLS from the first byte (`smtps://`, port 465).
    Implicit,
}

/// Where and how to reach the relay.
pub struct Relay {
    pub host: String,
    pub port: u16,
    pub security: Security,
    credentials: Option<Credentials>,
    /// PEM of the operator's CA certificates, trusted besides the public roots.
    ca_pem: Option<Vec<u8>>,
    tls: Arc<rustls::ClientConfig>,
    hello: ClientId,
    pub connect_timeout: Duration,
}

impl std::fmt::Debug for Relay {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Relay")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("security", &self.security)
            .field("authenticates", &self.credentials.is_some())
            .finish_non_exhaustive()
    }
}

fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            if let Ok(value) = u8::from_str_radix(&text[i + 1..i + 3], 16) {
                out.push(value);
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

impl Relay {
    /// `smtp://[user:pass@]host[:port][?tls=none|starttls|opportunistic]` or `smtps://…` (implicit
    /// TLS). Default ports: 25 for `smtp`, 587 with STARTTLS, 465 for `smtps`. `ca_file`: PEM
    /// certificates of a private CA to trust as well.
    pub fn from_url(url: &str, ca_file: Option<&Path>) -> anyhow::Result<Relay> {
        let (scheme, rest) = url
            .split_once("://")
            .context("an SMTP URL starts with smtp:// or smtps://")?;
        let (authority, query) = rest.split_once('?').unwrap_or((rest, ""));
        let authority = authority.trim_end_matches('/');
        let (userinfo, host_port) = match authority.rsplit_once('@') {
            Some((userinfo, host)) => (Some(userinfo), host),
            None => (None, authority),
        };
        let (host, port) = match host_port.rsplit_once(':') {
            Some((host, port)) if !host.is_empty() => (host, Some(port.parse::<u16>().context("SMTP port")?)),
            _ => (host_port, None),
        };
        anyhow::ensure!(!host.is_empty(), "the SMTP URL has no host");
        let tls = query.split('&').find_map(|pair| pair.strip_prefix("tls="));
        let (security, default_port) = match (scheme, tls) {
            ("smtps", None | Some("implicit")) => (Security::Implicit, 465),
            ("smtp", Some("starttls") | Some("required")) => (Security::StartTls, 587),
            ("smtp", Some("opportunistic")) => (Security::Opportunistic, 25),
            ("smtp", None | Some("none")) => (Security::None, 25),
            (scheme, tls) => anyhow::bail!("unsupported SMTP URL: scheme {scheme:?} with tls={tls:?}"),
        };
        let credentials = userinfo.map(|userinfo| {
            let (user, pass) = userinfo.split_once(':').unwrap_or((userinfo, ""));
            Credentials::new(percent_decode(user), percent_decode(pass))
        });
        let ca_pem = match ca_file {
            Some(path) => {
                Some(std::fs::read(path).with_context(|| format!("reading the SMTP CA file {}", path.display()))?)
            }
            None => None,
        };
        let extra_roots = match &ca_pem {
            Some(pem) => {
                let certs = CertificateDer::pem_slice_iter(pem)
                    .collect::<Result<Vec<_>, _>>()
                    .map_err(|e| anyhow::anyhow!("the SMTP CA file is not PEM certificates: {e}"))?;
                anyhow::ensure!(!certs.is_empty(), "the SMTP CA file holds no certificate");
                certs
            }
            None => Vec::new(),
        };
        Ok(Relay {
            host: host.trim_start_matches('[').trim_end_matches(']').to_owned(),
            port: port.unwrap_or(default_port),
            security,
            credentials,
            ca_pem,
            tls: Arc::new(client_config(extra_roots)?),
            hello: ClientId::default(),
            connect_timeout: Duration::from_secs(10),
        })
    }

    /// Opens a connection ready for mail: TCP (no Nagle), TLS as configured, EHLO, AUTH.
    pub async fn connect(&self) -> anyhow::Result<AsyncSmtpConnection> {
        let tcp = tokio::time::timeout(
            self.connect_timeout,
            TcpStream::connect((self.host.as_str(), self.port)),
        )
        .await
        .map_err(|_| anyhow::anyhow!("connecting to {}:{} timed out", self.host, self.port))?
        .with_context(|| format!("connecting to {}:{}", self.host, self.port))?;
        tcp.set_nodelay(true).context("setting TCP_NODELAY")?;
        let stream: Box<dyn AsyncTokioStream> = match self.security {
            Security::Implicit => {
                let name = ServerName::try_from(self.host.clone()).context("the SMTP host as a TLS name")?;
                let tls = tokio_rustls::TlsConnector::from(self.tls.clone())
                    .connect(name, tcp)
                    .await
                    .context("TLS with the SMTP relay")?;
                Box::new(ImplicitTls(tls))
            }
            _ => Box::new(tcp),
        };
        let mut conn = AsyncSmtpConnection::connect_with_transport(stream, &self.hello)
            .await
            .context("greeting the SMTP relay")?;
        let upgrade = match self.security {
            Security::StartTls => true,
            Security::Opportunistic => conn.can_starttls(),
            Security::None | Security::Implicit => false,
        };
        if upgrade {
            conn.starttls(self.starttls_parameters()?, &self.hello)
                .await
                .context("STARTTLS with the SMTP relay")?;
        }
        if let Some(credentials) = &self.credentials {
            conn.auth(&[Mechanism::Plain, Mechanism::Login], credentials)
                .await
                .context("authenticating with the SMTP relay")?;
        }
        Ok(conn)
    }

    fn starttls_parameters(&self) -> anyhow::Result<TlsParameters> {
        let mut builder = TlsParameters::builder(self.host.clone());
        if let Some(pem) = &self.ca_pem {
            builder = builder.add_root_certificate(Certificate::from_pem(pem).context("the SMTP CA file")?);
        }
        builder.build_rustls().context("TLS settings for STARTTLS")
    }
}

fn client_config(extra_roots: Vec<CertificateDer<'static>>) -> anyhow::Result<rustls::ClientConfig> {
    let mut roots = rustls::RootCertStore::empty();
    roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
    for cert in extra_roots {
        roots.add(cert).context("a certificate of the SMTP CA file")?;
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    Ok(rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .context("TLS protocol versions")?
        .with_root_certificates(roots)
        .with_no_client_auth())
}

/// A TLS stream lettre can drive as if it were its own (its trait is only implemented for plain TCP).
struct ImplicitTls(tokio_rustls::client::TlsStream<TcpStream>);

impl std::fmt::Debug for ImplicitTls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ImplicitTls")
    }
}

impl AsyncTokioStream for ImplicitTls {
    fn peer_addr(&self) -> io::Result<std::net::SocketAddr> {
        self.0.get_ref().0.peer_addr()
    }
}

impl AsyncRead for ImplicitTls {
    fn poll_read(self: Pin<&mut Self>, cx: &mut TaskContext<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().0).poll_read(cx, buf)
    }
}

impl AsyncWrite for ImplicitTls {
    fn poll_write(self: Pin<&mut Self>, cx: &mut TaskContext<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().0).poll_write(cx, buf)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut TaskContext<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().0).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut TaskContext<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().0).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn smtp_urls_parse() {
        let relay = Relay::from_url("smtp://localhost:2525", None).unwrap();
        assert_eq!((relay.port, relay.security), (2525, Security::None));
        let relay = Relay::from_url("smtp://user:p%40ss@mail.example.com?tls=starttls", None).unwrap();
        assert_eq!((relay.port, relay.security), (587, Security::StartTls));
        let relay = Relay::from_url("smtps://user:pass@mail.example.com", None).unwrap();
        assert_eq!((relay.port, relay.security), (465, Security::Implicit));
        let relay = Relay::from_url("smtp://mail.example.com?tls=opportunistic", None).unwrap();
        assert_eq!((relay.port, relay.security), (25, Security::Opportunistic));
        for url in ["http://x", "smtp://", "smtp://host:notaport", "smtp://host?tls=maybe"] {
            assert!(Relay::from_url(url, None).is_err(), "{url}");
        }
        assert!(
            Relay::from_url("smtps://h", Some(Path::new("/nonexistent/ca.pem"))).is_err(),
            "a CA file that cannot be read stops the start"
        );
        assert_eq!(percent_decode("p%40ss%3A"), "p@ss:");
    }
}
