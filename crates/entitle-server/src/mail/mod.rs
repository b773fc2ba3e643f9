//! Mail delivery: an outbox in the database, drained by a worker inside `entitle serve`.
//!
//! Mails are queued in the same transaction as the change that causes them, with the data their
//! template needs; the worker renders each one just before its first attempt (on a blocking thread,
//! outside any transaction, a tenant's template under a budget) and stores the result. The
//! worker claims due mails (row locks with `SKIP LOCKED` on PostgreSQL, so instances never send the
//! same mail), sends them, and records the outcome; failures are retried with exponential backoff
//! and jitter until the configured number of attempts, then marked `failed` for support to see. The
//! worker wakes as soon as a mail is queued on this instance, and polls for the others.

pub mod templates;
pub mod transport;

use chrono::{DateTime, Duration as ChronoDuration, Utc};
use rand::Rng;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::domain::sender::{clean_display_name, SenderPolicy};
use crate::store::mail::OutboxMail;
use crate::store::{mail as db, Store};
pub use transport::Transport;

/// How the worker retries.
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
}

/// The delay before attempt `attempt + 1`, given `attempt` failed ones.
pub fn backoff(base: Duration, attempt: u32, jitter: f64) -> Duration {
    let exponent = attempt.saturating_sub(1).min(20);
    let delay = base.saturating_mul(1u32 << exponent).min(Duration::from_secs(6 * 3600));
    delay.mul_f64(1.0 + jitter.clamp(-0.25, 0.25))
}

/// A worker's claim on a mail lasts this long; a worker that died mid-send loses it then.
const CLAIM: Duration = Duration::from_secs(120);
const BATCH: i64 = 20;

pub fn spawn_worker(
    store: Store,
    transport: Arc<Transport>,
    settings: DeliverySettings,
    mut shutdown: watch::Receiver<bool>,
) -> JoinHandle<()> {
    tokio::spawn(async move {
        let signal = store.mail_signal();
        loop {
            let idle = match deliver_due(&store, &transport, &settings).await {
                Ok(()) => next_wait(&store, &settings).await,
                Err(error) => {
                    tracing::error!(error = %error, "mail delivery round failed");
                    settings.poll
                }
            };
            tokio::select! {
                _ = signal.notified() => {}
                _ = tokio::time::sleep(idle) => {}
                _ = shutdown.changed() => break,
            }
            if *shutdown.borrow() {
                break;
            }
        }
        tracing::info!("mail worker stopped");
    })
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

/// Sends every mail that is due now.
pub async fn deliver_due(store: &Store, transport: &Transport, settings: &DeliverySettings) -> anyhow::Result<()> {
    loop {
        let now = Utc::now();
        let claimed = {
            let mut tx = store.begin().await?;
            let claim_until = now + ChronoDuration::from_std(CLAIM)?;
            let claimed = db::claim_due(&mut tx, store.backend(), now, claim_until, BATCH).await?;
            tx.commit().await?;
            claimed
        };
        if claimed.is_empty() {
            return Ok(());
        }
        for mut mail in claimed {
            let outcome = match prepare(store, settings, &mut mail).await {
                Ok(()) => match transport::message(&mail, &settings.id_domain) {
                    Ok(message) => transport.send(&mail.id, &message).await,
                    Err(error) => Err(format!("{error:#}")),
                },
                Err(error) => Err(format!("{error:#}")),
            };
            let mut conn = store.write_conn().await?;
            match outcome {
                Ok(()) => {
                    db::mark_sent(&mut conn, &mail.id, Utc::now()).await?;
                    tracing::info!(mail = %mail.id, kind = %mail.kind, "mail sent");
                }
                Err(error) => {
                    let attempts = mail.attempts as u32;
                    let retry_at = (attempts < settings.max_attempts).then(|| {
                        let jitter = rand::thread_rng().gen_range(-0.25..=0.25);
                        retry_time(Utc::now(), backoff(settings.retry_base, attempts, jitter))
                    });
                    tracing::warn!(mail = %mail.id, attempts, %error, give_up = retry_at.is_none(), "mail not sent");
                    db::mark_attempt_failed(&mut conn, &mail.id, &error, retry_at).await?;
                }
            }
        }
    }
}

/// Makes a claimed mail ready to send: renders it if it waits for that, and applies the operator's
/// sender rules (a template, or a mail queued by an older version, may name any address).
async fn prepare(store: &Store, settings: &DeliverySettings, mail: &mut OutboxMail) -> anyhow::Result<()> {
    if let Some(context) = mail.render_context.take() {
        render_queued(store, settings, mail, &context).await?;
    }
    mail.from_address = settings.sender.address_for(Some(&mail.from_address));
    mail.from_name = clean_display_name(&mail.from_name);
    Ok(())
}

/// Renders a mail queued with its template inputs and stores the result, so a retry sends the same.
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
    db::store_rendered(&mut *store.write_conn().await?, mail).await?;
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
