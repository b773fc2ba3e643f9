//! The vendor's staff and their password links.

use chrono::{DateTime, Utc};
use sqlx::any::AnyRow;
use sqlx::{AnyConnection, Row};

use super::rows::{some, RowExt};
use super::{millis, StoreResult};
use crate::domain::staff::{StaffMember, StaffRole};
use crate::domain::Email;

const COLUMNS: &str = "id, tenant_id, email, role, created_at, updated_at, disabled_at";

fn from_row(row: &AnyRow) -> StoreResult<StaffMember> {
    Ok(StaffMember {
        id: row.text("id")?,
        tenant_id: row.text("tenant_id")?,
        email: row.parsed("email", |s| Email::parse(s))?,
        role: row.parsed("role", |s| some(StaffRole::parse(s)))?,
        created_at: row.time("created_at")?,
        updated_at: row.time("updated_at")?,
        disabled_at: row.opt_time("disabled_at")?,
    })
}

pub async fn insert(conn: &mut AnyConnection, member: &StaffMember) -> StoreResult<()> {
    sqlx::query(
        "INSERT INTO staff (id, tenant_id, email, role, created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(&member.id)
    .bind(&member.tenant_id)
    .bind(member.email.as_str())
    .bind(member.role.as_str())
    .bind(millis(member.created_at))
    .bind(millis(member.updated_at))
    .execute(conn)
    .await
    .map_err(super::StoreError::from_write)?;
    Ok(())
}

pub async fn get(conn: &mut AnyConnection, tenant_id: &str, id: &str) -> StoreResult<Option<StaffMember>> {
    let sql = format!("SELECT {COLUMNS} FROM staff WHERE tenant_id = $1 AND id = $2");
    let row = sqlx::query(&sql).bind(tenant_id).bind(id).fetch_optional(conn).await?;
    row.as_ref().map(from_row).transpose()
}

/// A member by email, with their password hash (for signing in).
pub async fn credentials(
    conn: &mut AnyConnection,
    tenant_id: &str,
    email: &str,
) -> StoreResult<Option<(StaffMember, Option<String>)>> {
    let sql = format!("SELECT {COLUMNS}, password_hash FROM staff WHERE tenant_id = $1 AND email = $2");
    let row = sqlx::query(&sql)
        .bind(tenant_id)
        .bind(email)
        .fetch_optional(conn)
        .await?;
    row.as_ref()
        .map(|row| Ok((from_row(row)?, row.opt_text("password_hash")?)))
        .transpose()
}

pub async fn list(conn: &mut AnyConnection, tenant_id: &str) -> StoreResult<Vec<StaffMember>> {
    let sql = format!("SELECT {COLUMNS} FROM staff WHERE tenant_id = $1 ORDER BY email");
    let rows = sqlx::query(&sql).bind(tenant_id).fetch_all(conn).await?;
    rows.iter().map(from_row).collect()
}

pub async fn set_password(
    conn: &mut AnyConnection,
    tenant_id: &str,
    id: &str,
    hash: &str,
    at: DateTime<Utc>,
) -> StoreResult<()> {
    sqlx::query("UPDATE staff SET password_hash = $3, updated_at = $4 WHERE tenant_id = $1 AND id = $2")
        .bind(tenant_id)
        .bind(id)
        .bind(hash)
        .bind(millis(at))
        .execute(conn)
        .await?;
    Ok(())
}

pub async fn insert_password_link(
    conn: &mut AnyConnection,
    token_hash: &str,
    tenant_id: &str,
    staff_id: &str,
    now: DateTime<Utc>,
    expires_at: DateTime<Utc>,
) -> StoreResult<()> {
    sqlx::query(
        "INSERT INTO staff_password_links (token_hash, tenant_id, staff_id, created_at, expires_at)
         VALUES ($1, $2, $3, $4, $5)",
    )
    .bind(token_hash)
    .bind(tenant_id)
    .bind(staff_id)
    .bind(millis(now))
    .bind(millis(expires_at))
    .execute(conn)
    .await?;
    Ok(())
}

pub async fn password_link_valid(
    conn: &mut AnyConnection,
    tenant_id: &str,
    token_hash: &str,
    now: DateTime<Utc>,
) -> StoreResult<bool> {
    let row = sqlx::query(
        "SELECT 1 AS ok FROM staff_password_links
         WHERE token_hash = $1 AND tenant_id = $2 AND used_at IS NULL AND expires_at > $3",
    )
    .bind(token_hash)
    .bind(tenant_id)
    .bind(millis(now))
    .fetch_optional(conn)
    .await?;
    Ok(row.is_some())
}

/// Uses a link once: the member it is for, or `None`.
pub async fn use_password_link(
    conn: &mut AnyConnection,
    tenant_id: &str,
    token_hash: &str,
    now: DateTime<Utc>,
) -> StoreResult<Option<String>> {
    let row = sqlx::query(
        "UPDATE staff_password_links SET used_at = $3
         WHERE token_hash = $1 AND tenant_id = $2 AND used_at IS NULL AND expires_at > $3
         RETURNING staff_id",
    )
    .bind(token_hash)
    .bind(tenant_id)
    .bind(millis(now))
    .fetch_optional(conn)
    .await?;
    row.map(|row| row.text("staff_id")).transpose()
}

/// Changes a member's role; false when there is no such member.
pub async fn set_role(
    conn: &mut AnyConnection,
    tenant_id: &str,
    id: &str,
    role: StaffRole,
    at: DateTime<Utc>,
) -> StoreResult<bool> {
    let done = sqlx::query("UPDATE staff SET role = $3, updated_at = $4 WHERE tenant_id = $1 AND id = $2")
        .bind(tenant_id)
        .bind(id)
        .bind(role.as_str())
        .bind(millis(at))
        .execute(conn)
        .await?;
    Ok(done.rows_affected() > 0)
}

/// Disables a member (once: a disabled member keeps the first moment).
pub async fn disable(conn: &mut AnyConnection, tenant_id: &str, id: &str, at: DateTime<Utc>) -> StoreResult<bool> {
    let done = sqlx::query(
        "UPDATE staff SET disabled_at = $3, updated_at = $3 WHERE tenant_id = $1 AND id = $2 AND disabled_at IS NULL",
    )
    .bind(tenant_id)
    .bind(id)
    .bind(millis(at))
    .execute(conn)
    .await?;
    Ok(done.rows_affected() > 0)
}

/// A member's TOTP secret (base32) and the last step used, if they set up a second factor.
pub async fn totp(conn: &mut AnyConnection, tenant_id: &str, id: &str) -> StoreResult<Option<(String, Option<i64>)>> {
    let row = sqlx::query("SELECT totp_secret, totp_last_step FROM staff WHERE tenant_id = $1 AND id = $2")
        .bind(tenant_id)
        .bind(id)
        .fetch_optional(conn)
        .await?;
    let Some(row) = row else { return Ok(None) };
    let secret = row.opt_text("totp_secret")?;
    Ok(secret.map(|secret| (secret, row.try_get::<Option<i64>, _>("totp_last_step").ok().flatten())))
}

/// Sets (or, with `None`, removes) a member's TOTP secret.
pub async fn set_totp(
    conn: &mut AnyConnection,
    tenant_id: &str,
    id: &str,
    secret: Option<&str>,
    step: Option<i64>,
) -> StoreResult<()> {
    sqlx::query("UPDATE staff SET totp_secret = $3, totp_last_step = $4 WHERE tenant_id = $1 AND id = $2")
        .bind(tenant_id)
        .bind(id)
        .bind(secret)
        .bind(step)
        .execute(conn)
        .await?;
    Ok(())
}

/// Records that `step` was used, if it is later than the last one used: false for a replay.
pub async fn use_totp_step(conn: &mut AnyConnection, tenant_id: &str, id: &str, step: i64) -> StoreResult<bool> {
    let done = sqlx::query(
        "UPDATE staff SET totp_last_step = $3
         WHERE tenant_id = $1 AND id = $2 AND (totp_last_step IS NULL OR totp_last_step < $3)",
    )
    .bind(tenant_id)
    .bind(id)
    .bind(step)
    .execute(conn)
    .await?;
    Ok(done.rows_affected() == 1)
}
