//! Mail delivery: an outbox in the database, drained by a worker inside `entitle serve`.
//!
//! Mails are queued (already rendered) in the same transaction as the change that causes them. The
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
        for mail in claimed {
            let outcome = match transport::message(&mail, &settings.id_domain) {
                Ok(message) => transport.send(&mail.id, &message).await,
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
