//! Outgoing webhooks: endpoints, their secrets, the outbox of messages and the attempt log.

use chrono::{DateTime, Utc};
use serde::Serialize;
use sqlx::any::AnyRow;
use sqlx::AnyConnection;
use std::sync::atomic::{AtomicI64, Ordering};
use utoipa::ToSchema;

use super::rows::RowExt;
use super::{millis, opt_millis, Backend, StoreError, StoreResult};

/// A tenant's receiver of webhooks. Its secret is not part of it: see [`write_secret`] and
/// [`read_secrets`].
#[derive(Debug, Clone)]
pub struct Endpoint {
    pub id: String,
    pub tenant_id: String,
    pub url: String,
    pub description: Option<String>,
    /// Event type names, or `["*"]`.
    pub events: Vec<String>,
    pub enabled: bool,
    pub disabled_reason: Option<String>,
    /// While set and in the future, the previous secret signs too.
    pub previous_expires_at: Option<DateTime<Utc>>,
    pub failing_since: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

const ENDPOINT_COLUMNS: &str =
    "id, tenant_id, url, description, events, enabled, disabled_reason, previous_expires_at, \
                                failing_since, created_at, updated_at";

fn endpoint(row: &AnyRow) -> StoreResult<Endpoint> {
    Ok(Endpoint {
        id: row.text("id")?,
        tenant_id: row.text("tenant_id")?,
        url: row.text("url")?,
        description: row.opt_text("description")?,
        events: row.parsed("events", |s| serde_json::from_str::<Vec<String>>(s))?,
        enabled: row.int("enabled")? != 0,
        disabled_reason: row.opt_text("disabled_reason")?,
        previous_expires_at: row.opt_time("previous_expires_at")?,
        failing_since: row.opt_time("failing_since")?,
        created_at: row.time("created_at")?,
        updated_at: row.time("updated_at")?,
    })
}

fn events_json(events: &[String]) -> String {
    serde_json::to_string(events).unwrap_or_else(|_| "[]".to_owned())
}

/// Inserts an endpoint with its first secret.
pub async fn insert_endpoint(conn: &mut AnyConnection, e: &Endpoint, secret: &str) -> StoreResult<()> {
    sqlx::query(
        "INSERT INTO webhook_endpoints (id, tenant_id, url, description, events, enabled, disabled_reason, secret,
             created_at, updated_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, '', $8, $9)",
    )
    .bind(&e.id)
    .bind(&e.tenant_id)
    .bind(&e.url)
    .bind(e.description.as_deref())
    .bind(events_json(&e.events))
    .bind(i64::from(e.enabled))
    .bind(e.disabled_reason.as_deref())
    .bind(millis(e.created_at))
    .bind(millis(e.updated_at))
    .execute(&mut *conn)
    .await
    .map_err(StoreError::from_write)?;
    write_secret(conn, &e.id, secret, None).await
}

/// The one place a secret is written (so encryption at rest wraps one function). With
/// `keep_previous_until`, the current secret goes on signing until then (a rotation).
pub async fn write_secret(
    conn: &mut AnyConnection,
    endpoint_id: &str,
    secret: &str,
    keep_previous_until: Option<DateTime<Utc>>,
) -> StoreResult<()> {
    let sql = match keep_previous_until {
        Some(_) => {
            "UPDATE webhook_endpoints SET previous_secret = secret, previous_expires_at = $3, secret = $2 WHERE id = $1"
        }
        None => {
            "UPDATE webhook_endpoints SET previous_secret = NULL, previous_expires_at = $3, secret = $2 WHERE id = $1"
        }
    };
    sqlx::query(sql)
        .bind(endpoint_id)
        .bind(secret)
        .bind(opt_millis(keep_previous_until))
        .execute(conn)
        .await?;
    Ok(())
}

/// The one place secrets are read: the current one, then the previous one while it still signs.
pub async fn read_secrets(conn: &mut AnyConnection, endpoint_id: &str, now: DateTime<Utc>) -> StoreResult<Vec<String>> {
    let row = sqlx::query("SELECT secret, previous_secret, previous_expires_at FROM webhook_endpoints WHERE id = $1")
        .bind(endpoint_id)
        .fetch_optional(conn)
        .await?;
    let Some(row) = row else {
        return Ok(Vec::new());
    };
    let mut secrets = vec![row.text("secret")?];
    if let (Some(previous), Some(until)) = (row.opt_text("previous_secret")?, row.opt_time("previous_expires_at")?) {
        if until > now {
            secrets.push(previous);
        }
    }
    Ok(secrets)
}

pub async fn update_endpoint(conn: &mut AnyConnection, e: &Endpoint) -> StoreResult<()> {
    sqlx::query(
        "UPDATE webhook_endpoints SET url = $3, description = $4, events = $5, enabled = $6, disabled_reason = $7,
             failing_since = $8, updated_at = $9
         WHERE tenant_id = $1 AND id = $2",
    )
    .bind(&e.tenant_id)
    .bind(&e.id)
    .bind(&e.url)
    .bind(e.description.as_deref())
    .bind(events_json(&e.events))
    .bind(i64::from(e.enabled))
    .bind(e.disabled_reason.as_deref())
    .bind(opt_millis(e.failing_since))
    .bind(millis(e.updated_at))
    .execute(conn)
    .await?;
    Ok(())
}

pub async fn get_endpoint(conn: &mut AnyConnection, tenant_id: &str, id: &str) -> StoreResult<Option<Endpoint>> {
    let sql = format!("SELECT {ENDPOINT_COLUMNS} FROM webhook_endpoints WHERE tenant_id = $1 AND id = $2");
    let row = sqlx::query(&sql).bind(tenant_id).bind(id).fetch_optional(conn).await?;
    row.as_ref().map(endpoint).transpose()
}

pub async fn list_endpoints(
    conn: &mut AnyConnection,
    tenant_id: &str,
    after: &str,
    limit: i64,
) -> StoreResult<Vec<Endpoint>> {
    let sql = format!(
        "SELECT {ENDPOINT_COLUMNS} FROM webhook_endpoints WHERE tenant_id = $1 AND id > $2 ORDER BY id LIMIT $3"
    );
    let rows = sqlx::query(&sql)
        .bind(tenant_id)
        .bind(after)
        .bind(limit)
        .fetch_all(conn)
        .await?;
    rows.iter().map(endpoint).collect()
}

/// The tenant's enabled endpoints, to fan an event out to.
pub async fn enabled_endpoints(conn: &mut AnyConnection, tenant_id: &str) -> StoreResult<Vec<Endpoint>> {
    let sql = format!("SELECT {ENDPOINT_COLUMNS} FROM webhook_endpoints WHERE tenant_id = $1 AND enabled = 1");
    let rows = sqlx::query(&sql).bind(tenant_id).fetch_all(conn).await?;
    rows.iter().map(endpoint).collect()
}

/// Deletes an endpoint with its messages and their attempts; `false` if there was none.
pub async fn delete_endpoint(conn: &mut AnyConnection, tenant_id: &str, id: &str) -> StoreResult<bool> {
    sqlx::query(
        "DELETE FROM webhook_attempts WHERE message_id IN
             (SELECT id FROM webhook_messages WHERE tenant_id = $1 AND endpoint_id = $2)",
    )
    .bind(tenant_id)
    .bind(id)
    .execute(&mut *conn)
    .await?;
    sqlx::query("DELETE FROM webhook_messages WHERE tenant_id = $1 AND endpoint_id = $2")
        .bind(tenant_id)
        .bind(id)
        .execute(&mut *conn)
        .await?;
    let done = sqlx::query("DELETE FROM webhook_endpoints WHERE tenant_id = $1 AND id = $2")
        .bind(tenant_id)
        .bind(id)
        .execute(&mut *conn)
        .await?;
    Ok(done.rows_affected() > 0)
}

/// After an attempt: a success clears the failing streak; a failure starts one if none runs.
pub async fn note_endpoint_health(
    conn: &mut AnyConnection,
    endpoint_id: &str,
    succeeded: bool,
    at: DateTime<Utc>,
) -> StoreResult<Option<DateTime<Utc>>> {
    let sql = if succeeded {
        "UPDATE webhook_endpoints SET failing_since = NULL WHERE id = $1 RETURNING failing_since"
    } else {
        "UPDATE webhook_endpoints SET failing_since = COALESCE(failing_since, $2) WHERE id = $1 RETURNING failing_since"
    };
    let row = sqlx::query(sql)
        .bind(endpoint_id)
        .bind(millis(at))
        .fetch_optional(conn)
        .await?;
    Ok(row.map(|row| row.opt_time("failing_since")).transpose()?.flatten())
}

// ---- messages ----

/// One event on its way to one endpoint (the delivery log lists these).
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Message {
    /// The `webhook-id` header: receivers deduplicate on it.
    pub id: String,
    pub endpoint_id: String,
    /// The payload's `id`, the same for every endpoint the event went to.
    pub event_id: String,
    pub event_type: String,
    /// The object the event is about; its messages go out in order.
    pub object_id: String,
    #[serde(skip)]
    pub tenant_id: String,
    #[serde(skip)]
    pub seq: i64,
    /// The body sent, as JSON.
    #[schema(value_type = Object)]
    pub payload: serde_json::Value,
    /// `pending`, `sending`, `delivered` or `failed` (retries used up; replay to send again).
    pub status: String,
    pub attempts: i64,
    pub next_attempt_at: DateTime<Utc>,
    /// The HTTP status of the last attempt (`null`: no answer).
    pub last_status_code: Option<i64>,
    pub last_latency_ms: Option<i64>,
    /// The first bytes of the receiver's last answer.
    pub last_response: Option<String>,
    pub last_error: Option<String>,
    /// When it was queued (or replayed): retries stop about three days later.
    pub queued_at: DateTime<Utc>,
    pub created_at: DateTime<Utc>,
    pub delivered_at: Option<DateTime<Utc>>,
}

const MESSAGE_COLUMNS: &str = "id, tenant_id, endpoint_id, event_id, event_type, object_id, seq, payload, status, \
     attempts, next_attempt_at, last_status_code, last_latency_ms, last_response, last_error, queued_at, created_at, delivered_at";

fn message(row: &AnyRow) -> StoreResult<Message> {
    Ok(Message {
        id: row.text("id")?,
        tenant_id: row.text("tenant_id")?,
        endpoint_id: row.text("endpoint_id")?,
        event_id: row.text("event_id")?,
        event_type: row.text("event_type")?,
        object_id: row.text("object_id")?,
        seq: row.int("seq")?,
        payload: row.parsed("payload", |s| serde_json::from_str(s))?,
        status: row.text("status")?,
        attempts: row.int("attempts")?,
        next_attempt_at: row.time("next_attempt_at")?,
        last_status_code: row.opt_int("last_status_code")?,
        last_latency_ms: row.opt_int("last_latency_ms")?,
        last_response: row.opt_text("last_response")?,
        last_error: row.opt_text("last_error")?,
        queued_at: row.time("queued_at")?,
        created_at: row.time("created_at")?,
        delivered_at: row.opt_time("delivered_at")?,
    })
}

/// The last sequence number handed out by this process.
static LAST_SEQ: AtomicI64 = AtomicI64::new(0);

/// A number that grows with every message this process writes (microseconds since the epoch,
/// bumped past the last one), so one object's messages keep the order of the changes: changes
/// of one object commit one after the other, each later than the one before.
pub fn next_seq(now: DateTime<Utc>) -> i64 {
    let candidate = now.timestamp_micros().max(Utc::now().timestamp_micros());
    let mut last = LAST_SEQ.load(Ordering::Relaxed);
    loop {
        let next = candidate.max(last + 1);
        match LAST_SEQ.compare_exchange(last, next, Ordering::Relaxed, Ordering::Relaxed) {
            Ok(_) => return next,
            Err(actual) => last = actual,
        }
    }
}

pub async fn insert_message(conn: &mut AnyConnection, m: &Message) -> StoreResult<()> {
    sqlx::query(
        "INSERT INTO webhook_messages (id, tenant_id, endpoint_id, event_id, event_type, object_id, seq, payload, status,
             attempts, next_attempt_at, queued_at, created_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)",
    )
    .bind(&m.id)
    .bind(&m.tenant_id)
    .bind(&m.endpoint_id)
    .bind(&m.event_id)
    .bind(&m.event_type)
    .bind(&m.object_id)
    .bind(m.seq)
    .bind(m.payload.to_string())
    .bind(&m.status)
    .bind(m.attempts)
    .bind(millis(m.next_attempt_at))
    .bind(millis(m.queued_at))
    .bind(millis(m.created_at))
    .execute(conn)
    .await
    .map_err(StoreError::from_write)?;
    Ok(())
}

/// Claims the next message that may go out now, for `claim_until` (a crashed worker's claim
/// lapses then): due, of an enabled endpoint, and the first of its object still to go (an
/// earlier message of the same object and endpoint, pending or being sent, holds it back). On
/// PostgreSQL the row is locked with `SKIP LOCKED`, so instances never claim the same message;
/// SQLite has one writer, which serialises claims by itself.
pub async fn claim_next(
    conn: &mut AnyConnection,
    backend: Backend,
    now: DateTime<Utc>,
    claim_until: DateTime<Utc>,
) -> StoreResult<Option<Message>> {
    let lock = match backend {
        Backend::Postgres => "FOR UPDATE OF m SKIP LOCKED",
        Backend::Sqlite => "",
    };
    let sql = format!(
        "UPDATE webhook_messages SET status = 'sending', claimed_until = $2, attempts = attempts + 1
         WHERE id IN (
             SELECT m.id FROM webhook_messages m
             JOIN webhook_endpoints e ON e.id = m.endpoint_id AND e.enabled = 1
             WHERE ((m.status = 'pending' AND m.next_attempt_at <= $1) OR (m.status = 'sending' AND m.claimed_until < $1))
               AND NOT EXISTS (
                   SELECT 1 FROM webhook_messages p
                   WHERE p.endpoint_id = m.endpoint_id AND p.object_id = m.object_id AND p.seq < m.seq
                     AND p.status IN ('pending', 'sending'))
             ORDER BY m.next_attempt_at LIMIT 1 {lock})
         RETURNING {MESSAGE_COLUMNS}"
    );
    let row = sqlx::query(&sql)
        .bind(millis(now))
        .bind(millis(claim_until))
        .fetch_optional(conn)
        .await?;
    row.as_ref().map(message).transpose()
}

/// What one attempt found.
#[derive(Debug, Clone)]
pub struct Attempt {
    pub id: String,
    pub tenant_id: String,
    pub message_id: String,
    pub status_code: Option<i64>,
    pub latency_ms: i64,
    pub response_excerpt: Option<String>,
    pub error: Option<String>,
    pub created_at: DateTime<Utc>,
}

/// Records an attempt and its outcome on the message: delivered, back to pending until
/// `retry_at`, or failed for good (`retry_at` `None`).
pub async fn finish_attempt(
    conn: &mut AnyConnection,
    a: &Attempt,
    delivered: bool,
    retry_at: Option<DateTime<Utc>>,
) -> StoreResult<()> {
    sqlx::query(
        "INSERT INTO webhook_attempts (id, tenant_id, message_id, status_code, latency_ms, response_excerpt, error, created_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
    )
    .bind(&a.id)
    .bind(&a.tenant_id)
    .bind(&a.message_id)
    .bind(a.status_code)
    .bind(a.latency_ms)
    .bind(a.response_excerpt.as_deref())
    .bind(a.error.as_deref())
    .bind(millis(a.created_at))
    .execute(&mut *conn)
    .await?;
    let (status, next, delivered_at) = match (delivered, retry_at) {
        (true, _) => ("delivered", a.created_at, Some(a.created_at)),
        (false, Some(at)) => ("pending", at, None),
        (false, None) => ("failed", a.created_at, None),
    };
    sqlx::query(
        "UPDATE webhook_messages SET status = $2, next_attempt_at = $3, delivered_at = $4, claimed_until = NULL,
             last_status_code = $5, last_latency_ms = $6, last_response = $7, last_error = $8
         WHERE id = $1",
    )
    .bind(&a.message_id)
    .bind(status)
    .bind(millis(next))
    .bind(opt_millis(delivered_at))
    .bind(a.status_code)
    .bind(a.latency_ms)
    .bind(a.response_excerpt.as_deref())
    .bind(a.error.as_deref())
    .execute(conn)
    .await?;
    Ok(())
}

/// Gives a claimed message back untouched (its endpoint went away or was disabled meanwhile).
pub async fn release(conn: &mut AnyConnection, id: &str, at: DateTime<Utc>) -> StoreResult<()> {
    sqlx::query(
        "UPDATE webhook_messages SET status = 'pending', attempts = attempts - 1, claimed_until = NULL,
             next_attempt_at = $2
         WHERE id = $1 AND status = 'sending'",
    )
    .bind(id)
    .bind(millis(at))
    .execute(conn)
    .await?;
    Ok(())
}

/// The soonest time a message falls due (or a claim lapses), to sleep until then.
pub async fn next_due(conn: &mut AnyConnection) -> StoreResult<Option<DateTime<Utc>>> {
    let row = sqlx::query(
        "SELECT MIN(CASE WHEN status = 'pending' THEN next_attempt_at ELSE claimed_until END) AS due
         FROM webhook_messages WHERE status IN ('pending', 'sending')",
    )
    .fetch_one(conn)
    .await?;
    row.opt_time("due")
}

pub async fn get_message(conn: &mut AnyConnection, tenant_id: &str, id: &str) -> StoreResult<Option<Message>> {
    let sql = format!("SELECT {MESSAGE_COLUMNS} FROM webhook_messages WHERE tenant_id = $1 AND id = $2");
    let row = sqlx::query(&sql).bind(tenant_id).bind(id).fetch_optional(conn).await?;
    row.as_ref().map(message).transpose()
}

pub async fn list_messages(
    conn: &mut AnyConnection,
    tenant_id: &str,
    endpoint_id: &str,
    status: Option<&str>,
    after: &str,
    limit: i64,
) -> StoreResult<Vec<Message>> {
    let sql = format!(
        "SELECT {MESSAGE_COLUMNS} FROM webhook_messages
         WHERE tenant_id = $1 AND endpoint_id = $2 AND id > $3 AND ($4 = '' OR status = $4)
         ORDER BY id LIMIT $5"
    );
    let rows = sqlx::query(&sql)
        .bind(tenant_id)
        .bind(endpoint_id)
        .bind(after)
        .bind(status.unwrap_or(""))
        .bind(limit)
        .fetch_all(conn)
        .await?;
    rows.iter().map(message).collect()
}

/// One attempt as the delivery log shows it.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct AttemptView {
    pub id: String,
    /// The HTTP status (`null`: no answer).
    pub status_code: Option<i64>,
    pub latency_ms: i64,
    pub response_excerpt: Option<String>,
    pub error: Option<String>,
    pub created_at: DateTime<Utc>,
}

pub async fn attempts_of(conn: &mut AnyConnection, tenant_id: &str, message_id: &str) -> StoreResult<Vec<AttemptView>> {
    let rows = sqlx::query(
        "SELECT id, status_code, latency_ms, response_excerpt, error, created_at FROM webhook_attempts
         WHERE tenant_id = $1 AND message_id = $2 ORDER BY id LIMIT 200",
    )
    .bind(tenant_id)
    .bind(message_id)
    .fetch_all(conn)
    .await?;
    rows.iter()
        .map(|row| {
            Ok(AttemptView {
                id: row.text("id")?,
                status_code: row.opt_int("status_code")?,
                latency_ms: row.int("latency_ms")?,
                response_excerpt: row.opt_text("response_excerpt")?,
                error: row.opt_text("error")?,
                created_at: row.time("created_at")?,
            })
        })
        .collect()
}

/// Queues a delivered or failed message again (a replay); `false` while it is still on its way.
pub async fn requeue(conn: &mut AnyConnection, tenant_id: &str, id: &str, at: DateTime<Utc>) -> StoreResult<bool> {
    let done = sqlx::query(
        "UPDATE webhook_messages SET status = 'pending', next_attempt_at = $3, queued_at = $3, claimed_until = NULL,
             delivered_at = NULL
         WHERE tenant_id = $1 AND id = $2 AND status IN ('delivered', 'failed')",
    )
    .bind(tenant_id)
    .bind(id)
    .bind(millis(at))
    .execute(conn)
    .await?;
    Ok(done.rows_affected() > 0)
}
