//! Delivers outgoing webhooks: claims one due message at a time (a lease that outlasts the worst
//! attempt; `SKIP LOCKED` on PostgreSQL so instances never send one twice), signs it the Standard
//! Webhooks way, POSTs it, and records the attempt. Failures are retried with exponential backoff
//! and jitter for about three days, then the message is marked failed; an endpoint that has failed
//! for days is disabled and the tenant told (an event in its log).
//!
//! Receivers are untrusted: connect and total timeouts, at most an excerpt of the answer is read,
//! redirects are not followed, no proxy from the environment is used, and unless the operator allows
//! it (`webhook_allow_private`) no connection is made to a private, loopback or link-local address:
//! the resolved addresses are checked, not the host name, so a name pointing inside is refused too.

use chrono::{DateTime, Duration as ChronoDuration, Utc};
use rand::Rng;
use reqwest::dns::{Addrs, Name, Resolve, Resolving};
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::domain::ids;
use crate::domain::webhooks::{is_public, retry_at, should_disable, signature_header};
use crate::services::{record, Actor, Ctx};
use crate::store::webhooks::{self as db, Attempt, Message};
use crate::store::Store;

/// How the worker delivers.
#[derive(Debug, Clone)]
pub struct WebhookSettings {
    /// Allow receivers on private, loopback and link-local addresses (tests, internal receivers).
    pub allow_private: bool,
    /// The first retry's delay; each next one doubles.
    pub retry_base: Duration,
    /// How often to look for due messages.
    pub poll: Duration,
    /// The deadline of one attempt, connection included.
    pub timeout: Duration,
}

/// How much of a receiver's answer is read and kept.
const EXCERPT_BYTES: usize = 1024;
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// Refuses names that resolve only to addresses receivers may not have.
struct PublicOnly;

#[derive(Debug)]
struct NotAllowed;

impl std::fmt::Display for NotAllowed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("the receiver's address is private, loopback or link-local")
    }
}

impl std::error::Error for NotAllowed {}

impl Resolve for PublicOnly {
    fn resolve(&self, name: Name) -> Resolving {
        let host = name.as_str().to_owned();
        Box::pin(async move {
            let resolved: Vec<SocketAddr> = tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            let public: Vec<SocketAddr> = resolved.into_iter().filter(|a| is_public(a.ip())).collect();
            if public.is_empty() {
                return Err(Box::new(NotAllowed) as Box<dyn std::error::Error + Send + Sync>);
            }
            Ok(Box::new(public.into_iter()) as Addrs)
        })
    }
}

pub fn client(settings: &WebhookSettings) -> reqwest::Result<reqwest::Client> {
    let builder = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .no_proxy()
        .connect_timeout(CONNECT_TIMEOUT.min(settings.timeout))
        .timeout(settings.timeout)
        .user_agent("Entitle-Webhooks/1");
    let builder = if settings.allow_private {
        builder
    } else {
        builder.dns_resolver(Arc::new(PublicOnly))
    };
    builder.build()
}

pub fn spawn(store: Store, settings: WebhookSettings, mut shutdown: watch::Receiver<bool>) -> JoinHandle<()> {
    tokio::spawn(async move {
        let client = match client(&settings) {
            Ok(client) => client,
            Err(error) => {
                tracing::error!(%error, "the webhook client could not be built; webhooks are not delivered");
                return;
            }
        };
        loop {
            let idle = match deliver_one(&store, &client, &settings).await {
                Ok(true) => Duration::ZERO,
                Ok(false) => next_wait(&store, &settings).await,
                Err(error) => {
                    tracing::error!(error = %format!("{error:#}"), "webhook delivery round failed");
                    settings.poll
                }
            };
            if *shutdown.borrow() {
                break;
            }
            if idle.is_zero() {
                continue;
            }
            tokio::select! {
                _ = tokio::time::sleep(idle) => {}
                _ = shutdown.changed() => break,
            }
        }
        tracing::info!("webhook worker stopped");
    })
}

async fn next_wait(store: &Store, settings: &WebhookSettings) -> Duration {
    let due = match store.read().await {
        Ok(mut conn) => db::next_due(&mut conn).await.ok().flatten(),
        Err(_) => None,
    };
    match due {
        Some(at) => (at - Utc::now())
            .to_std()
            .unwrap_or(Duration::ZERO)
            .clamp(Duration::from_millis(10), settings.poll),
        None => settings.poll,
    }
}

/// What one attempt found.
enum Outcome {
    Answered { status: u16, excerpt: String },
    NoAnswer(&'static str),
}

/// Delivers the next due message, if any: `true` if there was one.
pub async fn deliver_one(store: &Store, client: &reqwest::Client, settings: &WebhookSettings) -> anyhow::Result<bool> {
    use anyhow::Context;
    let now = Utc::now();
    // Longer than the worst attempt (the total timeout) plus recording it.
    let lease = ChronoDuration::from_std(settings.timeout * 2 + Duration::from_secs(5))?;
    let claimed = {
        let mut tx = store.begin().await?;
        let claimed = db::claim_next(&mut tx, store.backend(), now, now + lease)
            .await
            .context("claiming a webhook message")?;
        tx.commit().await?;
        claimed
    };
    let Some(message) = claimed else {
        return Ok(false);
    };
    let (endpoint, secrets) = {
        let mut conn = store.read().await?;
        let endpoint = db::get_endpoint(&mut conn, &message.tenant_id, &message.endpoint_id).await?;
        let secrets = db::read_secrets(&mut conn, &message.endpoint_id, now).await?;
        (endpoint, secrets)
    };
    let Some(endpoint) = endpoint.filter(|e| e.enabled) else {
        db::release(&mut *store.write_conn().await?, &message.id, now).await?;
        return Ok(true);
    };
    let started = Instant::now();
    let outcome = send(client, settings.allow_private, &endpoint.url, &message, &secrets).await;
    let latency_ms = started.elapsed().as_millis().min(i64::MAX as u128) as i64;
    let finished = Utc::now();
    let (delivered, status_code, excerpt, error) = match outcome {
        Outcome::Answered { status, excerpt } => (
            (200..300).contains(&status),
            Some(i64::from(status)),
            Some(excerpt),
            (!(200..300).contains(&status)).then(|| format!("answered {status}")),
        ),
        Outcome::NoAnswer(why) => (false, None, None, Some(why.to_owned())),
    };
    let retry = if delivered {
        None
    } else {
        let jitter = rand::thread_rng().gen_range(-0.25..=0.25);
        retry_at(
            settings.retry_base,
            message.attempts.max(1) as u32,
            jitter,
            message.queued_at,
            finished,
        )
    };
    let attempt = Attempt {
        id: ids::new_id("wha"),
        tenant_id: message.tenant_id.clone(),
        message_id: message.id.clone(),
        status_code,
        latency_ms,
        response_excerpt: excerpt,
        error: error.clone(),
        created_at: finished,
    };
    let mut tx = store.begin().await?;
    db::finish_attempt(&mut tx, &attempt, delivered, retry).await?;
    let failing_since = db::note_endpoint_health(&mut tx, &endpoint.id, delivered, finished).await?;
    if !delivered && should_disable(failing_since, finished) {
        disable(&mut tx, &message.tenant_id, &endpoint.id, failing_since, finished).await?;
    }
    tx.commit().await?;
    match (delivered, retry) {
        (true, _) => tracing::info!(message = %message.id, endpoint = %endpoint.id, latency_ms, "webhook delivered"),
        (false, Some(at)) => {
            tracing::warn!(message = %message.id, endpoint = %endpoint.id, error = ?error, retry_at = %at, "webhook not delivered")
        }
        (false, None) => {
            tracing::warn!(message = %message.id, endpoint = %endpoint.id, error = ?error, "webhook failed for good")
        }
    }
    Ok(true)
}

/// Disables an endpoint that has failed for days, and tells the tenant through its event log.
async fn disable(
    conn: &mut sqlx::AnyConnection,
    tenant_id: &str,
    endpoint_id: &str,
    failing_since: Option<DateTime<Utc>>,
    now: DateTime<Utc>,
) -> anyhow::Result<()> {
    let Some(mut endpoint) = db::get_endpoint(conn, tenant_id, endpoint_id).await? else {
        return Ok(());
    };
    if !endpoint.enabled {
        return Ok(());
    }
    endpoint.enabled = false;
    endpoint.disabled_reason = Some(format!(
        "every delivery failed since {}",
        failing_since.unwrap_or(now).format("%Y-%m-%d %H:%M UTC")
    ));
    endpoint.updated_at = now;
    db::update_endpoint(conn, &endpoint).await?;
    let ctx = Ctx {
        tenant_id: tenant_id.to_owned(),
        actor: Actor::system(),
        now,
    };
    let summary = serde_json::json!({"url": endpoint.url, "reason": endpoint.disabled_reason});
    record(
        conn,
        &ctx,
        "webhook_endpoint.disabled",
        "webhook_endpoint",
        endpoint_id,
        summary,
    )
    .await?;
    tracing::warn!(endpoint = %endpoint_id, tenant = %tenant_id, "webhook endpoint disabled after failing for days");
    Ok(())
}

/// An IP address written in the URL itself (no resolver is asked for those).
fn literal_ip(url: &reqwest::Url) -> Option<IpAddr> {
    url.host_str()?
        .trim_start_matches('[')
        .trim_end_matches(']')
        .parse()
        .ok()
}

async fn send(
    client: &reqwest::Client,
    allow_private: bool,
    url: &str,
    message: &Message,
    secrets: &[String],
) -> Outcome {
    let Ok(url) = reqwest::Url::parse(url) else {
        return Outcome::NoAnswer("the endpoint URL is invalid");
    };
    if !allow_private && literal_ip(&url).is_some_and(|ip| !is_public(ip)) {
        return Outcome::NoAnswer("the receiver's address is private, loopback or link-local");
    }
    let body = message.payload.to_string();
    let timestamp = Utc::now().timestamp();
    let secrets: Vec<&str> = secrets.iter().map(String::as_str).collect();
    let signature = signature_header(&secrets, &message.id, timestamp, body.as_bytes());
    let sent = client
        .post(url)
        .header("content-type", "application/json")
        .header("webhook-id", &message.id)
        .header("webhook-timestamp", timestamp.to_string())
        .header("webhook-signature", signature)
        .body(body)
        .send()
        .await;
    let mut response = match sent {
        Ok(response) => response,
        Err(error) => return Outcome::NoAnswer(describe(&error)),
    };
    let status = response.status().as_u16();
    // Only the start of the answer is read: a receiver cannot make us download much.
    let mut bytes = Vec::new();
    while bytes.len() < EXCERPT_BYTES {
        match response.chunk().await {
            Ok(Some(chunk)) => bytes.extend_from_slice(&chunk),
            Ok(None) | Err(_) => break,
        }
    }
    bytes.truncate(EXCERPT_BYTES);
    Outcome::Answered {
        status,
        excerpt: String::from_utf8_lossy(&bytes).into_owned(),
    }
}

/// A summary of why there was no answer, without the socket error text (which would let a
/// tenant use the server as a port scanner).
fn describe(error: &reqwest::Error) -> &'static str {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(error);
    while let Some(e) = source {
        if e.is::<NotAllowed>() {
            return "the receiver's address is private, loopback or link-local";
        }
        source = e.source();
    }
    if error.is_timeout() {
        "timed out"
    } else if error.is_connect() {
        "could not connect"
    } else {
        "the request failed"
    }
}
