//! Mail delivery: an outbox in the database, drained by a worker inside `entitle serve`.
//!
//! Mails are queued in the same transaction as the change that causes them, with the data their
//! template needs. The worker ([`crate::workers`]) runs `mail_concurrency` lanes, each with its own
//! SMTP connection; a lane claims one due mail, renders it (on a blocking thread, outside any
//! transaction, a tenant's template under a budget), sends it and records the outcome. Failures
//! are retried with exponential backoff and jitter until the configured number of attempts, then
//! marked `failed` for support to see. Every attempt renders from the same inputs and sends the
//! same Message-ID, so a mail sent twice (its claim lapsed mid-send, or the process died after
//! the relay took it) is recognisable. Once a mail has ended its secrets are redacted from what is
//! kept, and its bodies are emptied after the retention period.

pub mod redact;
pub mod smtp;
pub mod templates;
pub mod transport;

use chrono::{DateTime, Duration as ChronoDuration, Utc};
use rand::Rng;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::domain::sender::{clean_display_name, SenderPolicy};
use crate::store::mail::{OutboxMail, Outcome};
use crate::store::{mail as db, Store};
use crate::workers::Outbox;
pub use transport::Transport;

/// How the worker sends and retries.
#[derive(Debug, Clone)]
pub struct DeliverySettings {
    pub max_attempts: u32,
    /// The first retry's delay; each next one doubles (with ±25 % jitter), up to six hours.
    pub retry_base: Duration,
    /// How often to look for mails queued by other instances or due for a retry.
    pub poll: Duration,
    /// The domain of Message-IDs.
    pub id_domain: String,
    /// Which sender addresses may be used (applied to every mail, also ones queued by older versions).
    pub sender: SenderPolicy,
    /// Mails sent at once (lanes, each with its own SMTP connection).
    pub concurrency: usize,
    /// How long an ended mail keeps its (redacted) bodies.
    pub retention: ChronoDuration,
    /// Names this instance's claims; the same after a restart, so a restarted instance takes
    /// back the claims its crashed predecessor held.
    pub instance: String,
}

/// The delay before attempt `attempt + 1`, given `attempt` failed ones.
pub fn backoff(base: Duration, attempt: u32, jitter: f64) -> Duration {
    let exponent = attempt.saturating_sub(1).min(20);
    let delay = base.saturating_mul(1u32 << exponent).min(Duration::from_secs(6 * 3600));
    delay.mul_f64(1.0 + jitter.clamp(-0.25, 0.25))
}

/// The longest rendering may take (a tenant's template is bounded by its fuel budget well below).
const RENDER_ALLOWANCE: Duration = Duration::from_secs(30);

/// The mail outbox as a [`crate::workers`] queue.
pub struct MailOutbox {
    store: Store,
    transport: Arc<Transport>,
    settings: DeliverySettings,
    /// A claim outlasts the worst attempt (render + connect + send), so a live worker never has
    /// its mail taken by another.
    lease: Duration,
}

pub fn spawn_worker(
    store: Store,
    transport: Arc<Transport>,
    settings: DeliverySettings,
    shutdown: watch::Receiver<bool>,
) -> JoinHandle<()> {
    let lease = transport.worst_send() + RENDER_ALLOWANCE;
    let concurrency = settings.concurrency;
    let signal = store.mail_signal();
    let outbox = MailOutbox {
        store,
        transport,
        settings,
        lease,
    };
    crate::workers::spawn(Arc::new(outbox), concurrency, signal, shutdown)
}

impl Outbox for MailOutbox {
    type Job = OutboxMail;
    type Lane = transport::Connection;
    const NAME: &'static str = "mail";

    fn new_lane(&self) -> transport::Connection {
        transport::Connection::default()
    }

    async fn release_own(&self) -> anyhow::Result<u64> {
        let mut conn = self.store.write_conn().await?;
        Ok(db::release_claims_of(&mut conn, &self.settings.instance).await?)
    }

    async fn claim(&self) -> anyhow::Result<Option<OutboxMail>> {
        let now = Utc::now();
        let until = now + ChronoDuration::from_std(self.lease)?;
        let mut conn = self.store.write_conn().await?;
        Ok(db::claim_one(&mut conn, self.store.backend(), &self.settings.instance, now, until).await?)
    }

    async fn work(&self, lane: &mut transport::Connection, mail: OutboxMail) -> anyhow::Result<()> {
        deliver(&self.store, &self.transport, &self.settings, lane, mail).await
    }

    async fn idle_wait(&self) -> Duration {
        next_wait(&self.store, &self.settings).await
    }

    async fn close_lane(&self, mut lane: transport::Connection) {
        lane.close().await;
    }
}

async fn next_wait(store: &Store, settings: &DeliverySettings) -> Duration {
    let due = match store.read().await {
        Ok(mut conn) => db::next_due(&mut conn).await.ok().flatten(),
        Err(_) => None,
    };
    match due {
        Some(at) => (at - Utc::now()).to_std().unwrap_or(Duration::ZERO).min(settings.poll),
        None => settings.poll,
    }
}

/// Renders, sends and records one claimed mail.
async fn deliver(
    store: &Store,
    transport: &Transport,
    settings: &DeliverySettings,
    lane: &mut transport::Connection,
    mut mail: OutboxMail,
) -> anyhow::Result<()> {
    let context = mail.render_context.clone();
    let outcome = match prepare(store, settings, &mut mail).await {
        Ok(()) => match transport::message(&mail, &settings.id_domain) {
            Ok(message) => transport.send(lane, &mail.id, &message).await,
            Err(error) => Err(format!("{error:#}")),
        },
        Err(error) => Err(format!("{error:#}")),
    };
    let now = Utc::now();
    let attempts = mail.attempts as u32 + 1;
    let retry_at = outcome.as_ref().err().and_then(|_| {
        (attempts < settings.max_attempts).then(|| {
            let jitter = rand::thread_rng().gen_range(-0.25..=0.25);
            retry_time(now, backoff(settings.retry_base, attempts, jitter))
        })
    });
    let mut conn = store.write_conn().await?;
    match (outcome, retry_at) {
        (Ok(()), _) => {
            keep_without_secrets(&mut mail, context.as_deref());
            let ended = Outcome {
                mail: &mail,
                at: now,
                bodies_until: now + settings.retention,
            };
            db::mark_sent(&mut conn, &ended).await?;
            crate::metrics::mail_send("sent");
            tracing::info!(mail = %mail.id, kind = %mail.kind, "mail sent");
        }
        (Err(error), Some(at)) => {
            db::retry_later(&mut conn, &mail.id, &error, at).await?;
            crate::metrics::mail_send("retry");
            tracing::warn!(mail = %mail.id, attempts, %error, "mail not sent; will retry");
        }
        (Err(error), None) => {
            keep_without_secrets(&mut mail, context.as_deref());
            let ended = Outcome {
                mail: &mail,
                at: now,
                bodies_until: now + settings.retention,
            };
            // Given up for good: the tenant's back end hears of it (`mail.failed`) in the same
            // transaction, so a crash cannot record one without the other.
            drop(conn);
            let mut tx = store.begin().await?;
            db::mark_failed(&mut tx, &ended, &error).await?;
            mail.status = "failed".to_owned();
            mail.attempts += 1;
            mail.last_error = Some(error.clone());
            crate::services::webhooks::emit(
                &mut tx,
                &mail.tenant_id,
                &crate::domain::ids::new_id("evt"),
                crate::domain::webhooks::EventType::MailFailed,
                &mail.id,
                now,
                &serde_json::to_value(&mail).unwrap_or_default(),
            )
            .await?;
            tx.commit().await?;
            crate::metrics::mail_send("failed");
            tracing::warn!(mail = %mail.id, attempts, %error, "mail not sent; giving up");
        }
    }
    Ok(())
}

/// Redacts the secrets the mail's template inputs name from its rendering. A mail queued by an
/// older version (rendered when queued, no inputs kept) cannot say which parts are secret: its
/// bodies are dropped whole.
fn keep_without_secrets(mail: &mut OutboxMail, context: Option<&str>) {
    let secrets = context.and_then(|c| serde_json::from_str::<serde_json::Value>(c).ok());
    match secrets {
        Some(context) => {
            let secrets = redact::secrets(&context);
            mail.subject = mail.subject.as_deref().map(|s| redact::redact(s, &secrets));
            mail.text_body = redact::redact(&mail.text_body, &secrets);
            mail.html_body = redact::redact(&mail.html_body, &secrets);
        }
        None => {
            mail.text_body.clear();
            mail.html_body.clear();
        }
    }
}

/// Makes a claimed mail ready to send: renders it if it waits for that, and applies the operator's
/// sender rules (a template, or a mail queued by an older version, may name any address).
async fn prepare(store: &Store, settings: &DeliverySettings, mail: &mut OutboxMail) -> anyhow::Result<()> {
    if let Some(context) = mail.render_context.clone() {
        // Bounded so the claim's lease holds (a render left running on its thread is abandoned).
        tokio::time::timeout(RENDER_ALLOWANCE, render_queued(store, settings, mail, &context))
            .await
            .map_err(|_| anyhow::anyhow!("rendering the mail took longer than {RENDER_ALLOWANCE:?}"))??;
    }
    mail.from_address = settings.sender.address_for(Some(&mail.from_address));
    mail.from_name = clean_display_name(&mail.from_name);
    Ok(())
}

/// Renders a mail from its template inputs (every attempt renders the same inputs).
async fn render_queued(
    store: &Store,
    settings: &DeliverySettings,
    mail: &mut OutboxMail,
    context: &str,
) -> anyhow::Result<()> {
    let context: serde_json::Value = serde_json::from_str(context)?;
    let overrides = {
        let mut conn = store.read().await?;
        db::template(&mut conn, &mail.tenant_id, &mail.kind).await?
    };
    let kind = mail.kind.clone();
    let tenant_name = context["tenant"]["name"].as_str().unwrap_or_default().to_owned();
    let template = overrides.clone();
    // CPU-bound (up to the budget): off the async workers, which serve every tenant's requests.
    let (rendered, replaced) =
        tokio::task::spawn_blocking(move || templates::render_or_fallback(&kind, &template, &context)).await??;
    if let Some(error) = replaced {
        tracing::warn!(mail = %mail.id, tenant = %mail.tenant_id, %error, "tenant mail template failed; using the built-in one");
    }
    let from_name = overrides
        .from_name
        .filter(|name| !name.trim().is_empty())
        .unwrap_or(tenant_name);
    mail.from_name = clean_display_name(&from_name);
    mail.from_address = settings.sender.address_for(overrides.from_address.as_deref());
    mail.subject = Some(rendered.subject);
    mail.text_body = rendered.text;
    mail.html_body = rendered.html;
    Ok(())
}

fn retry_time(now: DateTime<Utc>, delay: Duration) -> DateTime<Utc> {
    now + ChronoDuration::from_std(delay).unwrap_or(ChronoDuration::hours(6))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_with_jitter_and_a_ceiling() {
        let base = Duration::from_secs(30);
        assert_eq!(backoff(base, 1, 0.0), Duration::from_secs(30));
        assert_eq!(backoff(base, 2, 0.0), Duration::from_secs(60));
        assert_eq!(backoff(base, 4, 0.0), Duration::from_secs(240));
        assert_eq!(backoff(base, 30, 0.0), Duration::from_secs(6 * 3600));
        assert_eq!(backoff(base, 1, 0.25), Duration::from_millis(37_500));
        assert_eq!(
            backoff(base, 1, 9.0),
            Duration::from_millis(37_500),
            "jitter is bounded"
        );
    }
}
