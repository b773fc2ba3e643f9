//! Web sessions and single-use sign-in links. Secrets are stored as hashes only.

use chrono::{DateTime, Utc};
use sqlx::any::AnyRow;
use sqlx::AnyConnection;

use super::rows::RowExt;
use super::{millis, StoreResult};

/// Who a session speaks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebSession {
    pub tenant_id: String,
    pub realm: String,
    /// `end_user`, or `entitlement` for a session opened with an activation code.
    pub subject_kind: String,
    pub subject_id: String,
    pub csrf_token: String,
    pub created_at: DateTime<Utc>,
    pub last_seen_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
}

const COLUMNS: &str = "tenant_id, realm, subject_kind, subject_id, csrf_token, created_at, last_seen_at, expires_at";

fn from_row(row: &AnyRow) -> StoreResult<WebSession> {
    Ok(WebSession {
        tenant_id: row.text("tenant_id")?,
        realm: row.text("realm")?,
        subject_kind: row.text("subject_kind")?,
        subject_id: row.text("subject_id")?,
        csrf_token: row.text("csrf_token")?,
        created_at: row.time("created_at")?,
        last_seen_at: row.time("last_seen_at")?,
        expires_at: row.time("expires_at")?,
    })
}

pub async fn insert_session(conn: &mut AnyConnection, token_hash: &str, session: &WebSession) -> StoreResult<()> {
    sqlx::query(
        "INSERT INTO web_sessions (token_hash, tenant_id, realm, subject_kind, subject_id, csrf_token,
                                   created_at, last_seen_at, expires_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
    )
    .bind(token_hash)
    .bind(&session.tenant_id)
    .bind(&session.realm)
    .bind(&session.subject_kind)
    .bind(&session.subject_id)
    .bind(&session.csrf_token)
    .bind(millis(session.created_at))
    .bind(millis(session.last_seen_at))
    .bind(millis(session.expires_at))
    .execute(conn)
    .await?;
    Ok(())
}

/// A live session: not ended, not past its absolute end, and seen since `idle_cutoff`.
pub async fn live_session(
    conn: &mut AnyConnection,
    token_hash: &str,
    now: DateTime<Utc>,
    idle_cutoff: DateTime<Utc>,
) -> StoreResult<Option<WebSession>> {
    let sql = format!(
        "SELECT {COLUMNS} FROM web_sessions
         WHERE token_hash = $1 AND ended_at IS NULL AND expires_at > $2 AND last_seen_at > $3"
    );
    let row = sqlx::query(&sql)
        .bind(token_hash)
        .bind(millis(now))
        .bind(millis(idle_cutoff))
        .fetch_optional(conn)
        .await?;
    row.as_ref().map(from_row).transpose()
}

pub async fn touch_session(conn: &mut AnyConnection, token_hash: &str, now: DateTime<Utc>) -> StoreResult<()> {
    sqlx::query("UPDATE web_sessions SET last_seen_at = $2 WHERE token_hash = $1")
        .bind(token_hash)
        .bind(millis(now))
        .execute(conn)
        .await?;
    Ok(())
}

pub async fn end_session(conn: &mut AnyConnection, token_hash: &str, now: DateTime<Utc>) -> StoreResult<()> {
    sqlx::query("UPDATE web_sessions SET ended_at = $2 WHERE token_hash = $1 AND ended_at IS NULL")
        .bind(token_hash)
        .bind(millis(now))
        .execute(conn)
        .await?;
    Ok(())
}

pub async fn insert_sign_in_link(
    conn: &mut AnyConnection,
    token_hash: &str,
    tenant_id: &str,
    end_user_id: &str,
    now: DateTime<Utc>,
    expires_at: DateTime<Utc>,
) -> StoreResult<()> {
    sqlx::query(
        "INSERT INTO sign_in_links (token_hash, tenant_id, end_user_id, created_at, expires_at)
         VALUES ($1, $2, $3, $4, $5)",
    )
    .bind(token_hash)
    .bind(tenant_id)
    .bind(end_user_id)
    .bind(millis(now))
    .bind(millis(expires_at))
    .execute(conn)
    .await?;
    Ok(())
}

/// Whether a link would still sign someone in (for the confirmation page; nothing is used).
pub async fn sign_in_link_valid(
    conn: &mut AnyConnection,
    tenant_id: &str,
    token_hash: &str,
    now: DateTime<Utc>,
) -> StoreResult<bool> {
    let row = sqlx::query(
        "SELECT 1 AS ok FROM sign_in_links
         WHERE token_hash = $1 AND tenant_id = $2 AND used_at IS NULL AND expires_at > $3",
    )
    .bind(token_hash)
    .bind(tenant_id)
    .bind(millis(now))
    .fetch_optional(conn)
    .await?;
    Ok(row.is_some())
}

/// Uses a link once: the end user it signs in, or `None` if it was used, expired or unknown.
/// One conditional update, so two tabs racing with one link get one session between them.
pub async fn use_sign_in_link(
    conn: &mut AnyConnection,
    tenant_id: &str,
    token_hash: &str,
    now: DateTime<Utc>,
) -> StoreResult<Option<String>> {
    let row = sqlx::query(
        "UPDATE sign_in_links SET used_at = $3
         WHERE token_hash = $1 AND tenant_id = $2 AND used_at IS NULL AND expires_at > $3
         RETURNING end_user_id",
    )
    .bind(token_hash)
    .bind(tenant_id)
    .bind(millis(now))
    .fetch_optional(conn)
    .await?;
    row.map(|row| row.text("end_user_id")).transpose()
}

/// Records which end user holds a seat taken with their account.
pub async fn set_seat_holder(
    conn: &mut AnyConnection,
    tenant_id: &str,
    activation_id: &str,
    end_user_id: &str,
) -> StoreResult<()> {
    sqlx::query("UPDATE activations SET end_user_id = $3 WHERE tenant_id = $1 AND id = $2")
        .bind(tenant_id)
        .bind(activation_id)
        .bind(end_user_id)
        .execute(conn)
        .await?;
    Ok(())
}

/// The activation ids (live or not) an end user took with their account.
pub async fn seats_of_end_user(
    conn: &mut AnyConnection,
    tenant_id: &str,
    end_user_id: &str,
) -> StoreResult<Vec<(String, String)>> {
    let rows =
        sqlx::query("SELECT id, entitlement_id FROM activations WHERE tenant_id = $1 AND end_user_id = $2 ORDER BY id")
            .bind(tenant_id)
            .bind(end_user_id)
            .fetch_all(conn)
            .await?;
    rows.iter()
        .map(|row| Ok((row.text("id")?, row.text("entitlement_id")?)))
        .collect()
}

/// Forgets sessions and links that ended before `before`, at most `batch` of each.
pub async fn purge(conn: &mut AnyConnection, before: DateTime<Utc>, batch: i64) -> StoreResult<u64> {
    let sessions = sqlx::query(
        "DELETE FROM web_sessions WHERE token_hash IN
           (SELECT token_hash FROM web_sessions WHERE expires_at < $1 LIMIT $2)",
    )
    .bind(millis(before))
    .bind(batch)
    .execute(&mut *conn)
    .await?;
    let links = sqlx::query(
        "DELETE FROM sign_in_links WHERE token_hash IN
           (SELECT token_hash FROM sign_in_links WHERE expires_at < $1 LIMIT $2)",
    )
    .bind(millis(before))
    .bind(batch)
    .execute(conn)
    .await?;
    Ok(sessions.rows_affected() + links.rows_affected())
}
