//! A real SMTP server on loopback that keeps what it receives: the tests' mail sink.

use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

#[derive(Debug, Clone)]
pub struct Received {
    pub from: String,
    pub to: Vec<String>,
    /// The message as transmitted (headers and body, dot-unstuffed).
    pub data: String,
    /// Whether it came over TLS.
    pub secure: bool,
    /// Whether the client had authenticated.
    pub authenticated: bool,
}

impl Received {
    pub fn header(&self, name: &str) -> Option<String> {
        let prefix = format!("{}:", name.to_lowercase());
        let head = self.data.split("\r\n\r\n").next()?;
        let mut lines = head.split("\r\n").peekable();
        while let Some(line) = lines.next() {
            if line.to_lowercase().starts_with(&prefix) {
                let mut value = line[prefix.len()..].trim().to_owned();
                while lines.peek().is_some_and(|next| next.starts_with([' ', '\t'])) {
                    value.push(' ');
                    value.push_str(lines.next().unwrap_or_default().trim());
                }
                return Some(value);
            }
        }
        None
    }

    /// The body with quoted-printable soft line breaks and escapes undone, to search in.
    pub fn decoded(&self) -> String {
        let joined = self.data.replace("=\r\n", "");
        let bytes = joined.as_bytes();
        let mut out = Vec::with_capacity(bytes.len());
        let mut i = 0;
        while i < bytes.len() {
            if bytes[i] == b'=' && i + 2 < bytes.len() {
                if let Ok(v) = u8::from_str_radix(&joined[i + 1..i + 3], 16) {
                    out.push(v);
                    i += 3;
                    continue;
                }
            }
            out.push(bytes[i]);
            i += 1;
        }
        String::from_utf8_lossy(&out).into_owned()
    }
}

pub struct SmtpSink {
    pub port: u16,
    received: Arc<Mutex<Vec<Received>>>,
    task: JoinHandle<()>,
}

/// How the sink behaves: TLS, required authentication, a pause before accepting each message.
#[derive(Clone, Default)]
pub struct SinkOptions {
    /// Offer STARTTLS with this certificate (and refuse mail before it).
    pub starttls: Option<Arc<tokio_rustls::TlsAcceptor>>,
    /// TLS from the first byte.
    pub implicit_tls: Option<Arc<tokio_rustls::TlsAcceptor>>,
    /// `(user, password)`: mail is refused until the client authenticated.
    pub auth: Option<(String, String)>,
    /// Offer AUTH LOGIN only (not PLAIN).
    pub login_only: bool,
    /// Keeps each message, then waits this long before answering `250`.
    pub accept_delay: Duration,
}

trait Io: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send {}
impl<T: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send> Io for T {}

impl SmtpSink {
    pub async fn start() -> SmtpSink {
        Self::start_on(0).await
    }

    pub async fn start_on(port: u16) -> SmtpSink {
        Self::start_with(port, SinkOptions::default()).await
    }

    pub async fn start_with(port: u16, options: SinkOptions) -> SmtpSink {
        let listener = TcpListener::bind(("127.0.0.1", port))
            .await
            .expect("bind the SMTP sink");
        let port = listener.local_addr().unwrap().port();
        let received = Arc::new(Mutex::new(Vec::new()));
        let store = received.clone();
        let task = tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    return;
                };
                let store = store.clone();
                let options = options.clone();
                tokio::spawn(async move {
                    let stream: Box<dyn Io> = match &options.implicit_tls {
                        Some(acceptor) => match acceptor.accept(stream).await {
                            Ok(tls) => Box::new(tls),
                            Err(_) => return,
                        },
                        None => Box::new(stream),
                    };
                    let secure = options.implicit_tls.is_some();
                    let _ = session(stream, secure, store, options).await;
                });
            }
        });
        SmtpSink { port, received, task }
    }

    pub fn url(&self) -> String {
        format!("smtp://127.0.0.1:{}", self.port)
    }

    pub fn received(&self) -> Vec<Received> {
        self.received.lock().unwrap().clone()
    }

    /// Waits until at least `count` messages arrived (or 20 s passed) and returns all of them.
    pub async fn wait_for(&self, count: usize) -> Vec<Received> {
        for _ in 0..400 {
            if self.received.lock().unwrap().len() >= count {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        self.received()
    }

    pub fn stop(self) {
        self.task.abort();
    }
}

/// A port nothing listens on (bound once, then released).
pub async fn closed_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    listener.local_addr().unwrap().port()
}

async fn session(
    stream: Box<dyn Io>,
    mut secure: bool,
    store: Arc<Mutex<Vec<Received>>>,
    options: SinkOptions,
) -> std::io::Result<()> {
    use base64::Engine;
    let b64 = base64::engine::general_purpose::STANDARD;
    let mut conn = BufReader::new(stream);
    conn.get_mut().write_all(b"220 sink.test ESMTP\r\n").await?;
    let (mut from, mut to) = (String::new(), Vec::new());
    let mut authenticated = false;
    let mut line = String::new();
    loop {
        line.clear();
        if conn.read_line(&mut line).await? == 0 {
            return Ok(());
        }
        let command = line.trim_end().to_owned();
        let upper = command.to_uppercase();
        let out = conn.get_mut();
        if upper.starts_with("EHLO") {
            let mut answer = String::from("250-sink.test\r\n250-8BITMIME\r\n");
            if options.starttls.is_some() && !secure {
                answer.push_str("250-STARTTLS\r\n");
            }
            if options.auth.is_some() && secure {
                answer.push_str(if options.login_only {
                    "250-AUTH LOGIN\r\n"
                } else {
                    "250-AUTH PLAIN LOGIN\r\n"
                });
            }
            answer.push_str("250 SMTPUTF8\r\n");
            out.write_all(answer.as_bytes()).await?;
        } else if upper == "STARTTLS" && !secure {
            let Some(acceptor) = options.starttls.clone() else {
                out.write_all(b"502 not implemented\r\n").await?;
                continue;
            };
            out.write_all(b"220 go ahead\r\n").await?;
            let plain = conn.into_inner();
            let tls = acceptor.accept(plain).await?;
            conn = BufReader::new(Box::new(tls) as Box<dyn Io>);
            secure = true;
        } else if upper.starts_with("AUTH PLAIN") && !options.login_only {
            let given = command[10..].trim();
            let decoded = b64.decode(given).unwrap_or_default();
            let parts: Vec<&[u8]> = decoded.split(|b| *b == 0).collect();
            let ok = options.auth.as_ref().is_some_and(|(user, pass)| {
                parts.len() == 3 && parts[1] == user.as_bytes() && parts[2] == pass.as_bytes()
            });
            authenticated = ok;
            out.write_all(if ok { b"235 ok\r\n" } else { b"535 bad credentials\r\n" })
                .await?;
        } else if upper == "AUTH LOGIN" {
            out.write_all(b"334 VXNlcm5hbWU6\r\n").await?;
            line.clear();
            conn.read_line(&mut line).await?;
            let user = b64.decode(line.trim()).unwrap_or_default();
            conn.get_mut().write_all(b"334 UGFzc3dvcmQ6\r\n").await?;
            line.clear();
            conn.read_line(&mut line).await?;
            let pass = b64.decode(line.trim()).unwrap_or_default();
            let ok = options
                .auth
                .as_ref()
                .is_some_and(|(u, p)| user == u.as_bytes() && pass == p.as_bytes());
            authenticated = ok;
            conn.get_mut()
                .write_all(if ok { b"235 ok\r\n" } else { b"535 bad credentials\r\n" })
                .await?;
        } else if upper.starts_with("HELO") || upper.starts_with("NOOP") {
            out.write_all(b"250 OK\r\n").await?;
        } else if upper.starts_with("RSET") {
            from.clear();
            to.clear();
            out.write_all(b"250 OK\r\n").await?;
        } else if upper.starts_with("MAIL FROM:") {
            if (options.starttls.is_some() && !secure) || (options.auth.is_some() && !authenticated) {
                out.write_all(b"530 authentication (and TLS) required\r\n").await?;
                continue;
            }
            from = command[10..].trim().to_owned();
            out.write_all(b"250 OK\r\n").await?;
        } else if upper.starts_with("RCPT TO:") {
            to.push(command[8..].trim().to_owned());
            out.write_all(b"250 OK\r\n").await?;
        } else if upper == "DATA" {
            out.write_all(b"354 go ahead\r\n").await?;
            let mut data = String::new();
            loop {
                line.clear();
                if conn.read_line(&mut line).await? == 0 {
                    return Ok(());
                }
                if line == ".\r\n" {
                    break;
                }
                data.push_str(
                    line.strip_prefix('.')
                        .filter(|_| line.starts_with(".."))
                        .unwrap_or(&line),
                );
            }
            store.lock().unwrap().push(Received {
                from: std::mem::take(&mut from),
                to: std::mem::take(&mut to),
                data,
                secure,
                authenticated,
            });
            if !options.accept_delay.is_zero() {
                tokio::time::sleep(options.accept_delay).await;
            }
            conn.get_mut().write_all(b"250 queued\r\n").await?;
        } else if upper.starts_with("QUIT") {
            out.write_all(b"221 bye\r\n").await?;
            return Ok(());
        } else {
            out.write_all(b"502 not implemented\r\n").await?;
        }
    }
}
