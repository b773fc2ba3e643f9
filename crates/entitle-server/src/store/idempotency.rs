//! Idempotency keys: claimed before a management write runs, completed with its answer after.

use sqlx::AnyConnection;

use super::rows::RowExt;
use super::StoreResult;

/// Whose key it is: keys are per tenant and API key, so two back ends never collide.
#[derive(Debug, Clone)]
pub struct Scope {
    pub tenant_id: String,
    pub api_key_id: String,
}

/// A stored answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Answer {
    pub status: i64,
    pub content_type: Option<String>,
    pub location: Option<String>,
    pub body: String,
}

/// A key's row as it stands.
#[derive(Debug, Clone)]
pub struct Row {
    pub request_hash: String,
    /// `Some` once completed.
    pub answer: Option<Answer>,
}

/// A claim to run a request under a key.
pub struct NewClaim<'a> {
    pub key: &'a str,
    pub request_hash: &'a str,
    pub claim: &'a str,
    pub now: i64,
    pub lease_until: i64,
    /// Rows created at or before this are past retention (not purged yet) and may be reused.
    pub expired_before: i64,
}

/// Claims `key` for a run: inserts it "in progress", or takes over a row whose run crashed
/// (same request, lease over) or whose retention is over. One statement, so of concurrent
/// duplicates on any number of instances exactly one gets the claim. Returns whether it did.
pub async fn claim(conn: &mut AnyConnection, scope: &Scope, new: &NewClaim<'_>) -> StoreResult<bool> {
    let row = sqlx::query(
        "INSERT INTO idempotency_keys AS k
           (tenant_id, api_key_id, idem_key, request_hash, created_at, claim, lease_until, completed)
         VALUES ($1, $2, $3, $4, $5, $6, $7, 0)
         ON CONFLICT (tenant_id, api_key_id, idem_key) DO UPDATE SET
           request_hash = excluded.request_hash, created_at = excluded.created_at,
           claim = excluded.claim, lease_until = excluded.lease_until, completed = 0,
           status = NULL, content_type = NULL, location = NULL, body = NULL
         WHERE k.created_at <= $8
            OR (k.completed = 0 AND k.lease_until <= $5 AND k.request_hash = excluded.request_hash)
         RETURNING claim",
    )
    .bind(&scope.tenant_id)
    .bind(&scope.api_key_id)
    .bind(new.key)
    .bind(new.request_hash)
    .bind(new.now)
    .bind(new.claim)
    .bind(new.lease_until)
    .bind(new.expired_before)
    .fetch_optional(conn)
    .await?;
    Ok(row.is_some())
}

pub async fn find(conn: &mut AnyConnection, scope: &Scope, key: &str) -> StoreResult<Option<Row>> {
    let row = sqlx::query(
        "SELECT request_hash, completed, status, content_type, location, body FROM idempotency_keys
         WHERE tenant_id = $1 AND api_key_id = $2 AND idem_key = $3",
    )
    .bind(&scope.tenant_id)
    .bind(&scope.api_key_id)
    .bind(key)
    .fetch_optional(conn)
    .await?;
    row.map(|row| {
        let answer = if row.int("completed")? != 0 {
            Some(Answer {
                status: row.int("status")?,
                content_type: row.opt_text("content_type")?,
                location: row.opt_text("location")?,
                body: row.text("body")?,
            })
        } else {
            None
        };
        Ok(Row {
            request_hash: row.text("request_hash")?,
            answer,
        })
    })
    .transpose()
}

/// Records the answer of the run holding `claim`. Returns false if the claim was lost (the
/// lease ran out and a retry took over), in which case nothing is written.
pub async fn complete(
    conn: &mut AnyConnection,
    scope: &Scope,
    key: &str,
    claim: &str,
    answer: &Answer,
) -> StoreResult<bool> {
    let done = sqlx::query(
        "UPDATE idempotency_keys
         SET completed = 1, status = $5, content_type = $6, location = $7, body = $8
         WHERE tenant_id = $1 AND api_key_id = $2 AND idem_key = $3 AND claim = $4 AND completed = 0",
    )
    .bind(&scope.tenant_id)
    .bind(&scope.api_key_id)
    .bind(key)
    .bind(claim)
    .bind(answer.status)
    .bind(answer.content_type.as_deref())
    .bind(answer.location.as_deref())
    .bind(&answer.body)
    .execute(conn)
    .await?;
    Ok(done.rows_affected() > 0)
}

/// Gives up the claim without an answer (a 5xx): the next retry runs the request again.
pub async fn release(conn: &mut AnyConnection, scope: &Scope, key: &str, claim: &str) -> StoreResult<()> {
    sqlx::query(
        "DELETE FROM idempotency_keys
         WHERE tenant_id = $1 AND api_key_id = $2 AND idem_key = $3 AND claim = $4 AND completed = 0",
    )
    .bind(&scope.tenant_id)
    .bind(&scope.api_key_id)
    .bind(key)
    .bind(claim)
    .execute(conn)
    .await?;
    Ok(())
}

/// Forgets keys created before `before` (ms); at most `batch` rows. Returns how many went.
pub async fn purge(conn: &mut AnyConnection, before: i64, batch: i64) -> StoreResult<u64> {
    let done = sqlx::query(
        "DELETE FROM idempotency_keys WHERE (tenant_id, api_key_id, idem_key) IN
           (SELECT tenant_id, api_key_id, idem_key FROM idempotency_keys WHERE created_at < $1 LIMIT $2)",
    )
    .bind(before)
    .bind(batch)
    .execute(conn)
    .await?;
    Ok(done.rows_affected())
}
