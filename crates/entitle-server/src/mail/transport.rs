//! Where mails go: an SMTP relay (configured by URL), or `.eml` files in the data directory
//! (the zero-configuration default, so a person can open what would have been sent).

use anyhow::Context;
use lettre::message::{header, Mailbox, MultiPart};
use lettre::transport::smtp::client::AsyncSmtpConnection;
use lettre::Message;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use super::smtp::Relay;
use crate::store::mail::OutboxMail;

/// The longest one SMTP transaction (MAIL, RCPT, DATA and the relay's answer) may take.
pub const SEND_TIMEOUT: Duration = Duration::from_secs(30);
/// A connection idle longer than this is checked (NOOP) before it carries a mail: relays close
/// idle connections, and a mail must not fail for that.
const IDLE_CHECK: Duration = Duration::from_secs(5);

pub enum Transport {
    Smtp(Box<Relay>),
    Files(PathBuf),
}

impl std::fmt::Debug for Transport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Transport::Smtp(relay) => write!(f, "Transport::Smtp({relay:?})"),
            Transport::Files(dir) => write!(f, "Transport::Files({})", dir.display()),
        }
    }
}

/// One lane's SMTP connection, kept open between mails.
#[derive(Default)]
pub struct Connection {
    open: Option<(AsyncSmtpConnection, Instant)>,
}

impl Connection {
    /// Says goodbye to the relay, if connected.
    pub async fn close(&mut self) {
        if let Some((mut conn, _)) = self.open.take() {
            let _ = tokio::time::timeout(Duration::from_secs(2), conn.quit()).await;
        }
    }
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
    pub fn from_settings(
        smtp_url: Option<&str>,
        ca_file: Option<&Path>,
        mail_dir: PathBuf,
    ) -> anyhow::Result<Transport> {
        match smtp_url {
            Some(url) => Ok(Transport::Smtp(Box::new(Relay::from_url(url, ca_file)?))),
            None => Ok(Transport::Files(mail_dir)),
        }
    }

    /// The worst time one [`Transport::send`] can take: a worker's claim must outlast it.
    pub fn worst_send(&self) -> Duration {
        match self {
            Transport::Smtp(relay) => relay.connect_timeout * 2 + SEND_TIMEOUT,
            Transport::Files(_) => SEND_TIMEOUT,
        }
    }

    /// Sends one message on the lane's connection (opened or reopened as needed).
    pub async fn send(&self, lane: &mut Connection, id: &str, message: &Message) -> Result<(), String> {
        match self {
            Transport::Smtp(relay) => {
                let bytes = message.formatted();
                let result = tokio::time::timeout(SEND_TIMEOUT + relay.connect_timeout * 2, async {
                    let mut conn = match lane.open.take() {
                        Some((mut conn, last)) if !conn.has_broken() => {
                            if last.elapsed() < IDLE_CHECK || conn.test_connected().await {
                                conn
                            } else {
                                relay.connect().await.map_err(|e| format!("{e:#}"))?
                            }
                        }
                        _ => relay.connect().await.map_err(|e| format!("{e:#}"))?,
                    };
                    let sent = tokio::time::timeout(SEND_TIMEOUT, conn.send(message.envelope(), &bytes))
                        .await
                        .map_err(|_| "the SMTP relay did not answer in time".to_owned())
                        .and_then(|sent| sent.map_err(|e| e.to_string()));
                    // lettre marks a connection broken after any error; the next mail reconnects.
                    if sent.is_ok() {
                        lane.open = Some((conn, Instant::now()));
                    }
                    sent.map(|_| ())
                })
                .await;
                result.unwrap_or_else(|_| Err("connecting to the SMTP relay timed out".to_owned()))
            }
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

/// Deletes the `.eml` files last written before `cutoff` from the mail directory (they hold what
/// was sent, secrets included); how many.
pub fn purge_files(dir: &Path, cutoff: std::time::SystemTime) -> std::io::Result<u64> {
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(0),
        Err(error) => return Err(error),
    };
    let mut purged = 0;
    for entry in entries {
        let entry = entry?;
        let is_mail = entry.file_name().to_str().is_some_and(|name| name.ends_with(".eml"));
        if is_mail && entry.metadata()?.modified()? < cutoff {
            std::fs::remove_file(entry.path())?;
            purged += 1;
        }
    }
    Ok(purged)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::SystemTime;

    #[test]
    fn mail_files_past_the_retention_are_deleted() {
        let dir = std::env::temp_dir().join(format!("entitle-mail-files-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let old = dir.join("mail_old.eml");
        let new = dir.join("mail_new.eml");
        let other = dir.join("notes.txt");
        for path in [&old, &new, &other] {
            std::fs::write(path, "x").unwrap();
        }
        let long_ago = SystemTime::now() - Duration::from_secs(40 * 86_400);
        for path in [&old, &other] {
            std::fs::File::options()
                .write(true)
                .open(path)
                .unwrap()
                .set_modified(long_ago)
                .unwrap();
        }
        let cutoff = SystemTime::now() - Duration::from_secs(30 * 86_400);
        assert_eq!(purge_files(&dir, cutoff).unwrap(), 1);
        assert!(!old.exists() && new.exists() && other.exists());
        assert_eq!(purge_files(&dir.join("missing"), cutoff).unwrap(), 0);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
