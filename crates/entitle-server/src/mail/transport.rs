//! Where mails go: an SMTP relay (configured by URL), or `.eml` files in the data directory
//! (the zero-configuration default, so a person can open what would have been sent).

use anyhow::Context;
use lettre::message::{header, Mailbox, MultiPart};
use lettre::transport::smtp::authentication::Credentials;
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use std::path::PathBuf;
use std::time::Duration;

use crate::store::mail::OutboxMail;

pub enum Transport {
    Smtp(Box<AsyncSmtpTransport<Tokio1Executor>>),
    Files(PathBuf),
}

impl std::fmt::Debug for Transport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Transport::Smtp(_) => f.write_str("Transport::Smtp"),
            Transport::Files(dir) => write!(f, "Transport::Files({})", dir.display()),
        }
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

/// `smtp://[user:pass@]host[:port][?tls=none|starttls|opportunistic]` or `smtps://…` (implicit TLS).
/// Default ports: 25 for `smtp`, 587 with STARTTLS, 465 for `smtps`.
pub fn smtp_from_url(url: &str) -> anyhow::Result<AsyncSmtpTransport<Tokio1Executor>> {
    let (scheme, rest) = url
        .split_once("://")
        .context("an SMTP URL starts with smtp:// or smtps://")?;
    let (authority, query) = rest.split_once('?').unwrap_or((rest, ""));
    let authority = authority.trim_end_matches('/');
    let (credentials, host_port) = match authority.rsplit_once('@') {
        Some((userinfo, host)) => (Some(userinfo), host),
        None => (None, authority),
    };
    let (host, port) = match host_port.rsplit_once(':') {
        Some((host, port)) if !host.is_empty() => (host, Some(port.parse::<u16>().context("SMTP port")?)),
        _ => (host_port, None),
    };
    anyhow::ensure!(!host.is_empty(), "the SMTP URL has no host");
    let tls = query
        .split('&')
        .find_map(|pair| pair.strip_prefix("tls="))
        .unwrap_or(if scheme == "smtps" { "implicit" } else { "none" });
    let builder = match (scheme, tls) {
        ("smtps", _) => AsyncSmtpTransport::<Tokio1Executor>::relay(host)?.port(port.unwrap_or(465)),
        ("smtp", "starttls") | ("smtp", "required") => {
            AsyncSmtpTransport::<Tokio1Executor>::starttls_relay(host)?.port(port.unwrap_or(587))
        }
        ("smtp", "opportunistic") => {
            use lettre::transport::smtp::client::{Tls, TlsParameters};
            AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(host)
                .port(port.unwrap_or(25))
                .tls(Tls::Opportunistic(TlsParameters::new(host.to_owned())?))
        }
        ("smtp", "none") => AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(host).port(port.unwrap_or(25)),
        (scheme, tls) => anyhow::bail!("unsupported SMTP URL: scheme {scheme:?} with tls={tls:?}"),
    };
    let builder = match credentials {
        Some(userinfo) => {
            let (user, pass) = userinfo.split_once(':').unwrap_or((userinfo, ""));
            builder.credentials(Credentials::new(percent_decode(user), percent_decode(pass)))
        }
        None => builder,
    };
    Ok(builder.timeout(Some(Duration::from_secs(30))).build())
}

/// The message of an outbox mail. Its Message-ID derives from the outbox id, so a mail sent again
/// after a crash carries the same id and receivers can recognise it.
pub fn message(mail: &OutboxMail, id_domain: &str) -> anyhow::Result<Message> {
    let from = Mailbox::new(
        Some(mail.from_name.clone()),
        mail.from_address.parse().context("sender address")?,
    );
    let to: Mailbox = mail.recipient.parse().context("recipient address")?;
    let subject = mail.subject.clone().context("the mail is not rendered yet")?;
    Message::builder()
        .message_id(Some(format!("<{}@{id_domain}>", mail.id)))
        .from(from)
        .to(to)
        .subject(subject)
        .header(header::MIME_VERSION_1_0)
        .multipart(MultiPart::alternative_plain_html(
            mail.text_body.clone(),
            mail.html_body.clone(),
        ))
        .context("building the message")
}

impl Transport {
    pub fn from_settings(smtp_url: Option<&str>, mail_dir: PathBuf) -> anyhow::Result<Transport> {
        match smtp_url {
            Some(url) => Ok(Transport::Smtp(Box::new(smtp_from_url(url)?))),
            None => Ok(Transport::Files(mail_dir)),
        }
    }

    pub async fn send(&self, id: &str, message: &Message) -> Result<(), String> {
        match self {
            Transport::Smtp(smtp) => smtp.send(message.clone()).await.map(|_| ()).map_err(|e| e.to_string()),
            Transport::Files(dir) => {
                let write = async {
                    tokio::fs::create_dir_all(dir).await?;
                    let partial = dir.join(format!(".{id}.eml.partial"));
                    tokio::fs::write(&partial, message.formatted()).await?;
                    tokio::fs::rename(&partial, dir.join(format!("{id}.eml"))).await
                };
                write.await.map_err(|e| format!("writing the mail file: {e}"))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A tokio test: building a pooled transport starts its pool's task.
    #[tokio::test]
    async fn smtp_urls_parse() {
        for url in [
            "smtp://localhost:2525",
            "smtp://user:p%40ss@mail.example.com:587?tls=starttls",
            "smtps://user:pass@mail.example.com",
            "smtp://mail.example.com?tls=opportunistic",
        ] {
            assert!(smtp_from_url(url).is_ok(), "{url}");
        }
        for url in ["http://x", "smtp://", "smtp://host:notaport", "smtp://host?tls=maybe"] {
            assert!(smtp_from_url(url).is_err(), "{url}");
        }
        assert_eq!(percent_decode("p%40ss%3A"), "p@ss:");
    }
}
