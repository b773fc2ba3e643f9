//! The mail outbox, per-tenant templates and password set-up tokens.

use chrono::{DateTime, Utc};
use serde::Serialize;
use sqlx::any::AnyRow;
use sqlx::AnyConnection;
use utoipa::ToSchema;

use super::rows::RowExt;
use super::{millis, Backend, StoreResult};

/// A mail in the outbox. It is queued with its template inputs (`render_context`) in the
/// transaction that causes it, and rendered by the mail worker just before each attempt; once it
/// has ended, the rendering is kept with its secrets redacted and the inputs are dropped.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct OutboxMail {
    pub id: String,
    /// `credentials` or `test`.
    pub kind: String,
    pub recipient: String,
    pub from_name: String,
    pub from_address: String,
    /// Null until the mail has been sent (or has failed for good); secrets in it are redacted.
    pub subject: Option<String>,
    #[serde(skip)]
    pub text_body: String,
    #[serde(skip)]
    pub html_body: String,
    pub entitlement_id: Option<String>,
    pub customer_id: Option<String>,
    /// `queued`, `sending`, `sent` or `failed` (gave up after the configured attempts).
    pub status: String,
    pub attempts: i64,
    pub next_attempt_at: DateTime<Utc>,
    pub last_error: Option<String>,
    pub created_at: DateTime<Utc>,
    pub sent_at: Option<DateTime<Utc>>,
    #[serde(skip)]
    pub tenant_id: String,
    /// The JSON the template sees, while the mail waits to be rendered (then `None`). Mails queued
    /// by older versions were rendered when queued and never have one.
    #[serde(skip)]
    pub render_context: Option<String>,
}

const COLUMNS: &str = "id, tenant_id, kind, recipient, from_name, from_address, subject, text_body, html_body, \
    entitlement_id, customer_id, status, attempts, next_attempt_at, last_error, created_at, sent_at, render_context";

fn mail(row: &AnyRow) -> StoreResult<OutboxMail> {
    let render_context = row.opt_text("render_context")?;
    Ok(OutboxMail {
        id: row.text("id")?,
        tenant_id: row.text("tenant_id")?,
        kind: row.text("kind")?,
        recipient: row.text("recipient")?,
        from_name: row.text("from_name")?,
        from_address: row.text("from_address")?,
        subject: match render_context {
            Some(_) => None,
            None => Some(row.text("subject")?),
        },
        text_body: row.text("text_body")?,
        html_body: row.text("html_body")?,
        entitlement_id: row.opt_text("entitlement_id")?,
        customer_id: row.opt_text("customer_id")?,
        status: row.text("status")?,
        attempts: row.int("attempts")?,
        next_attempt_at: row.time("next_attempt_at")?,
        last_error: row.opt_text("last_error")?,
        created_at: row.time("created_at")?,
        sent_at: row.opt_time("sent_at")?,
        render_context,
    })
}

/// Queues a mail. The rendered columns are empty while `render_context` is set.
pub async fn enqueue(conn: &mut AnyConnection, m: &OutboxMail) -> StoreResult<()> {
    sqlx::query(
        "INSERT INTO mail_outbox (id, tenant_id, kind, recipient, from_name, from_address, subject, text_body,
            html_body, entitlement_id, customer_id, status, attempts, next_attempt_at, created_at, render_context)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, 'queued', 0, $12, $12, $13)",
    )
    .bind(&m.id)
    .bind(&m.tenant_id)
    .bind(&m.kind)
    .bind(&m.recipient)
    .bind(&m.from_name)
    .bind(&m.from_address)
    .bind(m.subject.as_deref().unwrap_or(""))
    .bind(&m.text_body)
    .bind(&m.html_body)
    .bind(m.entitlement_id.as_deref())
    .bind(m.customer_id.as_deref())
    .bind(millis(m.created_at))
    .bind(m.render_context.as_deref())
    .execute(conn)
    .await?;
    Ok(())
}

/// Claims the mail due soonest for `instance` until `claim_until` (a crashed worker's claim lapses
/// then): one mail, just before it is sent, so a crash strands at most the mails in flight.
/// A lapsed claim first (its mail has waited longest), else the queued mail due soonest: each
/// found through its own index, so a claim stays cheap however long the outbox grows.
/// On PostgreSQL the row is locked with `SKIP LOCKED`, so concurrent claims (from any instance)
/// never take the same mail; SQLite has one writer, which serialises claims by itself.
pub async fn claim_one(
    conn: &mut AnyConnection,
    backend: Backend,
    instance: &str,
    now: DateTime<Utc>,
    claim_until: DateTime<Utc>,
) -> StoreResult<Option<OutboxMail>> {
    let lock = match backend {
        Backend::Postgres => "FOR UPDATE SKIP LOCKED",
        Backend::Sqlite => "",
    };
    let sql = format!(
        "UPDATE mail_outbox SET status = 'sending', claimed_until = $2, claimed_by = $3
         WHERE id = COALESCE(
             (SELECT id FROM mail_outbox WHERE status = 'sending' AND claimed_until < $1 LIMIT 1 {lock}),
             (SELECT id FROM mail_outbox WHERE status = 'queued' AND next_attempt_at <= $1
              ORDER BY next_attempt_at LIMIT 1 {lock}))
         RETURNING {COLUMNS}"
    );
    let row = sqlx::query(&sql)
        .bind(millis(now))
        .bind(millis(claim_until))
        .bind(instance)
        .fetch_optional(conn)
        .await?;
    row.as_ref().map(mail).transpose()
}

/// Hands back the claims `instance` still holds: at start, those are a crashed predecessor's
/// (same instance id), whose mails would otherwise wait for their leases to lapse.
pub async fn release_claims_of(conn: &mut AnyConnection, instance: &str) -> StoreResult<u64> {
    let done = sqlx::query(
        "UPDATE mail_outbox SET status = 'queued', claimed_until = NULL, claimed_by = NULL
         WHERE status = 'sending' AND claimed_by = $1",
    )
    .bind(instance)
    .execute(conn)
    .await?;
    Ok(done.rows_affected())
}

/// A mail that has ended (sent, or failed for good) as it is kept: its rendering with the secrets
/// redacted.
pub struct Outcome<'a> {
    pub mail: &'a OutboxMail,
    pub at: DateTime<Utc>,
    /// Until when a mail that has ended keeps its (redacted) bodies.
    pub bodies_until: DateTime<Utc>,
}

/// Sent: counts the attempt, stores the redacted rendering and ends the claim.
pub async fn mark_sent(conn: &mut AnyConnection, o: &Outcome<'_>) -> StoreResult<()> {
    let m = o.mail;
    sqlx::query(
        "UPDATE mail_outbox SET status = 'sent', sent_at = $2, attempts = attempts + 1, claimed_until = NULL,
            claimed_by = NULL, last_error = NULL, from_name = $3, from_address = $4, subject = $5, text_body = $6,
            html_body = $7, render_context = NULL, bodies_until = $8
         WHERE id = $1",
    )
    .bind(&m.id)
    .bind(millis(o.at))
    .bind(&m.from_name)
    .bind(&m.from_address)
    .bind(m.subject.as_deref().unwrap_or(""))
    .bind(&m.text_body)
    .bind(&m.html_body)
    .bind(millis(o.bodies_until))
    .execute(conn)
    .await?;
    Ok(())
}

/// A tried send that failed and will be tried again at `retry_at`: counts the attempt, ends the
/// claim. The template inputs stay, so the retry renders the same message with the same
/// Message-ID. A mail already `sent` (another instance took a lapsed claim) stays sent.
pub async fn retry_later(conn: &mut AnyConnection, id: &str, error: &str, retry_at: DateTime<Utc>) -> StoreResult<()> {
    sqlx::query(
        "UPDATE mail_outbox SET status = 'queued', next_attempt_at = $2, attempts = attempts + 1,
            claimed_until = NULL, claimed_by = NULL, last_error = $3
         WHERE id = $1 AND status = 'sending'",
    )
    .bind(id)
    .bind(millis(retry_at))
    .bind(error)
    .execute(conn)
    .await?;
    Ok(())
}

/// The last attempt failed: `failed` for good (support sees it and can resend), with the
/// redacted rendering when there is one. A mail already `sent` stays sent.
pub async fn mark_failed(conn: &mut AnyConnection, o: &Outcome<'_>, error: &str) -> StoreResult<()> {
    let m = o.mail;
    sqlx::query(
        "UPDATE mail_outbox SET status = 'failed', attempts = attempts + 1, claimed_until = NULL,
            claimed_by = NULL, last_error = $2, bodies_until = $3, from_name = $4, from_address = $5,
            subject = $6, text_body = $7, html_body = $8, render_context = NULL
         WHERE id = $1 AND status = 'sending'",
    )
    .bind(&m.id)
    .bind(error)
    .bind(millis(o.bodies_until))
    .bind(&m.from_name)
    .bind(&m.from_address)
    .bind(m.subject.as_deref().unwrap_or(""))
    .bind(&m.text_body)
    .bind(&m.html_body)
    .execute(conn)
    .await?;
    Ok(())
}

/// Empties the bodies of up to `limit` ended mails past their retention; how many.
pub async fn purge_bodies(conn: &mut AnyConnection, now: DateTime<Utc>, limit: i64) -> StoreResult<u64> {
    let done = sqlx::query(
        "UPDATE mail_outbox SET text_body = '', html_body = '', render_context = NULL, bodies_until = NULL
         WHERE id IN (SELECT id FROM mail_outbox WHERE bodies_until < $1 LIMIT $2)",
    )
    .bind(millis(now))
    .bind(limit)
    .execute(conn)
    .await?;
    Ok(done.rows_affected())
}

/// The soonest time a queued mail falls due, to sleep until then.
pub async fn next_due(conn: &mut AnyConnection) -> StoreResult<Option<DateTime<Utc>>> {
    let row = sqlx::query(
        "SELECT MIN(CASE WHEN status = 'queued' THEN next_attempt_at ELSE claimed_until END) AS due
         FROM mail_outbox WHERE status IN ('queued', 'sending')",
    )
    .fetch_one(conn)
    .await?;
    row.opt_time("due")
}

/// Mail waiting to go out (queued or being sent), across tenants, for metrics.
pub struct QueueDepth {
    pub queued: i64,
    pub oldest_created_at: Option<DateTime<Utc>>,
}

pub async fn queue_depth(conn: &mut AnyConnection) -> StoreResult<QueueDepth> {
    let row = sqlx::query(
        "SELECT COUNT(*) AS queued, MIN(created_at) AS oldest FROM mail_outbox WHERE status IN ('queued', 'sending')",
    )
    .fetch_one(conn)
    .await?;
    Ok(QueueDepth {
        queued: row.int("queued")?,
        oldest_created_at: row.opt_time("oldest")?,
    })
}

pub struct MailFilter<'a> {
    pub entitlement_id: Option<&'a str>,
    pub customer_id: Option<&'a str>,
    pub status: Option<&'a str>,
    pub after: &'a str,
    pub limit: i64,
}

pub async fn list(conn: &mut AnyConnection, tenant_id: &str, f: &MailFilter<'_>) -> StoreResult<Vec<OutboxMail>> {
    let sql = format!(
        "SELECT {COLUMNS} FROM mail_outbox
         WHERE tenant_id = $1 AND id > $2 AND ($3 = '' OR entitlement_id = $3) AND ($4 = '' OR customer_id = $4)
           AND ($5 = '' OR status = $5)
         ORDER BY id LIMIT $6"
    );
    let rows = sqlx::query(&sql)
        .bind(tenant_id)
        .bind(f.after)
        .bind(f.entitlement_id.unwrap_or(""))
        .bind(f.customer_id.unwrap_or(""))
        .bind(f.status.unwrap_or(""))
        .bind(f.limit)
        .fetch_all(conn)
        .await?;
    rows.iter().map(mail).collect()
}

// ---- templates ----

/// A tenant's override of one mail kind; unset parts fall back to the built-in template.
/// (The API's shape of it is `services::mail::MailTemplate`.)
#[derive(Debug, Clone, Default)]
pub struct TemplateOverride {
    pub from_name: Option<String>,
    pub from_address: Option<String>,
    /// A template (MiniJinja syntax), like the bodies.
    pub subject: Option<String>,
    pub text_body: Option<String>,
    /// HTML-escaped automatically: `{{ customer.name }}` cannot inject markup.
    pub html_body: Option<String>,
}

pub async fn template(conn: &mut AnyConnection, tenant_id: &str, kind: &str) -> StoreResult<TemplateOverride> {
    let row = sqlx::query(
        "SELECT from_name, from_address, subject, text_body, html_body FROM mail_templates WHERE tenant_id = $1 AND kind = $2",
    )
    .bind(tenant_id)
    .bind(kind)
    .fetch_optional(conn)
    .await?;
    match row {
        None => Ok(TemplateOverride::default()),
        Some(row) => Ok(TemplateOverride {
            from_name: row.opt_text("from_name")?,
            from_address: row.opt_text("from_address")?,
            subject: row.opt_text("subject")?,
            text_body: row.opt_text("text_body")?,
            html_body: row.opt_text("html_body")?,
        }),
    }
}

pub async fn put_template(
    conn: &mut AnyConnection,
    tenant_id: &str,
    kind: &str,
    t: &TemplateOverride,
    at: DateTime<Utc>,
) -> StoreResult<()> {
    sqlx::query(
        "INSERT INTO mail_templates (tenant_id, kind, from_name, from_address, subject, text_body, html_body, updated_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
         ON CONFLICT (tenant_id, kind) DO UPDATE SET from_name = excluded.from_name, from_address = excluded.from_address,
             subject = excluded.subject, text_body = excluded.text_body, html_body = excluded.html_body,
             updated_at = excluded.updated_at",
    )
    .bind(tenant_id)
    .bind(kind)
    .bind(t.from_name.as_deref())
    .bind(t.from_address.as_deref())
    .bind(t.subject.as_deref())
    .bind(t.text_body.as_deref())
    .bind(t.html_body.as_deref())
    .bind(millis(at))
    .execute(conn)
    .await?;
    Ok(())
}

// ---- password set-up tokens ----

pub async fn insert_setup_token(
    conn: &mut AnyConnection,
    token_hash: &str,
    tenant_id: &str,
    end_user_id: &str,
    expires_at: DateTime<Utc>,
) -> StoreResult<()> {
    sqlx::query(
        "INSERT INTO password_setup_tokens (token_hash, tenant_id, end_user_id, expires_at) VALUES ($1, $2, $3, $4)",
    )
    .bind(token_hash)
    .bind(tenant_id)
    .bind(end_user_id)
    .bind(millis(expires_at))
    .execute(conn)
    .await?;
    Ok(())
}

/// Uses a token once: answers its tenant and end user if it was unused and unexpired.
pub async fn use_setup_token(
    conn: &mut AnyConnection,
    token_hash: &str,
    now: DateTime<Utc>,
) -> StoreResult<Option<(String, String)>> {
    let row = sqlx::query(
        "UPDATE password_setup_tokens SET used_at = $2
         WHERE token_hash = $1 AND used_at IS NULL AND expires_at > $2
         RETURNING tenant_id, end_user_id",
    )
    .bind(token_hash)
    .bind(millis(now))
    .fetch_optional(conn)
    .await?;
    row.map(|row| Ok((row.text("tenant_id")?, row.text("end_user_id")?)))
        .transpose()
}

/// Whether a token could still be used (for showing the form).
pub async fn setup_token_valid(conn: &mut AnyConnection, token_hash: &str, now: DateTime<Utc>) -> StoreResult<bool> {
    let row = sqlx::query(
        "SELECT 1 AS ok FROM password_setup_tokens WHERE token_hash = $1 AND used_at IS NULL AND expires_at > $2",
    )
    .bind(token_hash)
    .bind(millis(now))
    .fetch_optional(conn)
    .await?;
    Ok(row.is_some())
}
