//! Signing keys, activations, feature checkouts, usage records and the activation log.
//! Counters change only through conditional single-statement updates, so concurrent requests
//! (on any number of instances) can never take more seats or units than allowed.

use chrono::{DateTime, Utc};
use sqlx::any::AnyRow;
use sqlx::AnyConnection;

use super::entitlements::overdraft_of;
use super::rows::RowExt;
use super::{millis, opt_millis, StoreError, StoreResult};
use crate::domain::licensing::Activation;
use crate::domain::Overdraft;

// ---- signing keys ----

pub struct StoredSigningKey {
    pub kid: String,
    pub seed: String,
    pub retired: bool,
}

pub async fn insert_signing_key(
    conn: &mut AnyConnection,
    tenant_id: &str,
    kid: &str,
    seed: &str,
    at: DateTime<Utc>,
) -> StoreResult<()> {
    sqlx::query("INSERT INTO signing_keys (id, tenant_id, seed, created_at) VALUES ($1, $2, $3, $4)")
        .bind(kid)
        .bind(tenant_id)
        .bind(seed)
        .bind(millis(at))
        .execute(conn)
        .await?;
    Ok(())
}

/// The tenant's keys, newest first.
pub async fn signing_keys(conn: &mut AnyConnection, tenant_id: &str) -> StoreResult<Vec<StoredSigningKey>> {
    let rows = sqlx::query(
        "SELECT id, seed, retired_at FROM signing_keys WHERE tenant_id = $1 ORDER BY created_at DESC, id DESC",
    )
    .bind(tenant_id)
    .fetch_all(conn)
    .await?;
    rows.iter()
        .map(|row| {
            Ok(StoredSigningKey {
                kid: row.text("id")?,
                seed: row.text("seed")?,
                retired: row.opt_int("retired_at")?.is_some(),
            })
        })
        .collect()
}

/// Seals every signing key still stored in clear (written by a version without a master key),
/// in one transaction, and checks that the master key opens the sealed ones: a wrong key stops
/// the start instead of failing every signature later.
pub(crate) async fn seal_signing_keys(store: &super::Store, sealer: &crate::custody::Sealer) -> anyhow::Result<()> {
    use anyhow::Context;
    use base64::Engine;
    let mut tx = store.begin().await?;
    let rows = sqlx::query("SELECT id, seed FROM signing_keys ORDER BY id")
        .fetch_all(&mut *tx)
        .await?;
    let mut sealed = 0;
    let mut checked = false;
    for row in &rows {
        let (kid, seed) = (row.text("id")?, row.text("seed")?);
        if crate::custody::is_sealed(&seed) {
            if !checked {
                sealer.open(&seed, &kid).with_context(|| {
                    format!("signing key {kid}: is this the master key the database was sealed with?")
                })?;
                checked = true;
            }
            continue;
        }
        let plain = base64::engine::general_purpose::STANDARD
            .decode(&seed)
            .with_context(|| format!("signing key {kid} is not readable"))?;
        sqlx::query("UPDATE signing_keys SET seed = $1 WHERE id = $2")
            .bind(sealer.seal(&plain, &kid)?)
            .bind(&kid)
            .execute(&mut *tx)
            .await?;
        sealed += 1;
    }
    tx.commit().await?;
    if sealed > 0 {
        tracing::info!(sealed, "sealed signing keys stored in clear by an older version");
    }
    Ok(())
}

// ---- activations ----

const ACTIVATION_COLUMNS: &str =
    "id, entitlement_id, seat_id, seat_name, mode, overdraft, activated_at, last_lease_at, \
    lease_expires_at, linger_expires_at, deactivated_at, deactivation_reason, ip";

/// The activation columns aliased `a_…`, for joins with entitlements.
pub(crate) const ACTIVATION_COLUMNS_AS_A: &str = "a.id AS a_id, a.entitlement_id AS a_entitlement_id, \
    a.seat_id AS a_seat_id, a.seat_name AS a_seat_name, a.mode AS a_mode, a.overdraft AS a_overdraft, \
    a.activated_at AS a_activated_at, a.last_lease_at AS a_last_lease_at, a.lease_expires_at AS a_lease_expires_at, \
    a.linger_expires_at AS a_linger_expires_at, a.deactivated_at AS a_deactivated_at, \
    a.deactivation_reason AS a_deactivation_reason, a.ip AS a_ip";

fn activation(row: &AnyRow) -> StoreResult<Activation> {
    activation_with_prefix(row, "")
}

pub(crate) fn activation_with_prefix(row: &AnyRow, prefix: &str) -> StoreResult<Activation> {
    let c = |name: &str| format!("{prefix}{name}");
    Ok(Activation {
        id: row.text(&c("id"))?,
        entitlement_id: row.text(&c("entitlement_id"))?,
        seat_id: row.text(&c("seat_id"))?,
        seat_name: row.opt_text(&c("seat_name"))?,
        mode: row.text(&c("mode"))?,
        overdraft: row.int(&c("overdraft"))? != 0,
        activated_at: row.time(&c("activated_at"))?,
        last_lease_at: row.time(&c("last_lease_at"))?,
        lease_expires_at: row.time(&c("lease_expires_at"))?,
        linger_expires_at: row.time(&c("linger_expires_at"))?,
        deactivated_at: row.opt_time(&c("deactivated_at"))?,
        deactivation_reason: row.opt_text(&c("deactivation_reason"))?,
        ip: row.opt_text(&c("ip"))?,
    })
}

pub async fn insert_activation(
    conn: &mut AnyConnection,
    tenant_id: &str,
    a: &Activation,
    secret_hash: &str,
) -> StoreResult<()> {
    sqlx::query(
        "INSERT INTO activations (id, tenant_id, entitlement_id, seat_id, seat_name, secret_hash, mode, overdraft,
            activated_at, last_lease_at, lease_expires_at, linger_expires_at, ip)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)",
    )
    .bind(&a.id)
    .bind(tenant_id)
    .bind(&a.entitlement_id)
    .bind(&a.seat_id)
    .bind(a.seat_name.as_deref())
    .bind(secret_hash)
    .bind(&a.mode)
    .bind(a.overdraft as i64)
    .bind(millis(a.activated_at))
    .bind(millis(a.last_lease_at))
    .bind(millis(a.lease_expires_at))
    .bind(millis(a.linger_expires_at))
    .bind(a.ip.as_deref())
    .execute(conn)
    .await
    .map_err(StoreError::from_write)?;
    Ok(())
}

/// The live activation of a seat id on an entitlement, if any.
pub async fn live_activation(
    conn: &mut AnyConnection,
    entitlement_id: &str,
    seat_id: &str,
) -> StoreResult<Option<Activation>> {
    let sql = format!(
        "SELECT {ACTIVATION_COLUMNS} FROM activations
         WHERE entitlement_id = $1 AND seat_id = $2 AND deactivated_at IS NULL"
    );
    let row = sqlx::query(&sql)
        .bind(entitlement_id)
        .bind(seat_id)
        .fetch_optional(conn)
        .await?;
    row.as_ref().map(activation).transpose()
}

/// The activation a bearer secret belongs to (live or not), with its tenant.
pub async fn activation_by_secret(
    conn: &mut AnyConnection,
    secret_hash: &str,
) -> StoreResult<Option<(String, Activation)>> {
    let sql = format!("SELECT tenant_id, {ACTIVATION_COLUMNS} FROM activations WHERE secret_hash = $1");
    let row = sqlx::query(&sql).bind(secret_hash).fetch_optional(conn).await?;
    row.map(|row| Ok((row.text("tenant_id")?, activation(&row)?)))
        .transpose()
}

pub async fn get_activation(conn: &mut AnyConnection, tenant_id: &str, id: &str) -> StoreResult<Option<Activation>> {
    let sql = format!("SELECT {ACTIVATION_COLUMNS} FROM activations WHERE tenant_id = $1 AND id = $2");
    let row = sqlx::query(&sql).bind(tenant_id).bind(id).fetch_optional(conn).await?;
    row.as_ref().map(activation).transpose()
}

pub async fn list_activations(
    conn: &mut AnyConnection,
    tenant_id: &str,
    entitlement_id: &str,
    live_only: bool,
    after: &str,
    limit: i64,
) -> StoreResult<Vec<Activation>> {
    let sql = format!(
        "SELECT {ACTIVATION_COLUMNS} FROM activations
         WHERE tenant_id = $1 AND entitlement_id = $2 AND id > $3 AND ($4 = 0 OR deactivated_at IS NULL)
         ORDER BY id LIMIT $5"
    );
    let rows = sqlx::query(&sql)
        .bind(tenant_id)
        .bind(entitlement_id)
        .bind(after)
        .bind(live_only as i64)
        .bind(limit)
        .fetch_all(conn)
        .await?;
    rows.iter().map(activation).collect()
}

/// Extends a live activation's lease; `false` if it is no longer live.
pub async fn extend_lease(
    conn: &mut AnyConnection,
    id: &str,
    lease_expires_at: DateTime<Utc>,
    at: DateTime<Utc>,
) -> StoreResult<bool> {
    let done = sqlx::query(
        "UPDATE activations SET lease_expires_at = $2, last_lease_at = $3 WHERE id = $1 AND deactivated_at IS NULL",
    )
    .bind(id)
    .bind(millis(lease_expires_at))
    .bind(millis(at))
    .execute(conn)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// Ends a live activation; `false` if it had already ended.
pub async fn end_activation(conn: &mut AnyConnection, id: &str, reason: &str, at: DateTime<Utc>) -> StoreResult<bool> {
    let done = sqlx::query(
        "UPDATE activations SET deactivated_at = $2, deactivation_reason = $3 WHERE id = $1 AND deactivated_at IS NULL",
    )
    .bind(id)
    .bind(millis(at))
    .bind(reason)
    .execute(conn)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// Ends the concurrent seats of an entitlement whose lease and linger period have both run out.
pub async fn reclaim_lapsed(
    conn: &mut AnyConnection,
    entitlement_id: &str,
    now: DateTime<Utc>,
) -> StoreResult<Vec<String>> {
    let rows = sqlx::query(
        "UPDATE activations SET deactivated_at = $2, deactivation_reason = 'lapsed'
         WHERE entitlement_id = $1 AND deactivated_at IS NULL AND mode = 'online'
           AND lease_expires_at <= $2 AND linger_expires_at <= $2
         RETURNING id",
    )
    .bind(entitlement_id)
    .bind(millis(now))
    .fetch_all(conn)
    .await?;
    rows.iter().map(|row| row.text("id")).collect()
}

// ---- seat and unit counters ----

/// Takes one seat if fewer than `ceiling` are taken (`None`: no ceiling). Answers the new count.
pub async fn take_seat(
    conn: &mut AnyConnection,
    entitlement_id: &str,
    ceiling: Option<i64>,
) -> StoreResult<Option<i64>> {
    let row = sqlx::query(
        "UPDATE entitlements SET seats_used = seats_used + 1
         WHERE id = $1 AND ($2 < 0 OR seats_used < $2) RETURNING seats_used",
    )
    .bind(entitlement_id)
    .bind(ceiling.unwrap_or(-1))
    .fetch_optional(conn)
    .await?;
    row.map(|row| row.int("seats_used")).transpose()
}

/// The seat counter after a release, with the seat terms it was released under.
#[derive(Debug, Clone, Copy)]
pub struct Released {
    pub seats_used: i64,
    pub seat_count: i64,
    pub overdraft: Overdraft,
}

/// Gives `seats` back; `None` if there was nothing to release (or fewer seats were counted).
pub async fn release_seats(
    conn: &mut AnyConnection,
    entitlement_id: &str,
    seats: i64,
) -> StoreResult<Option<Released>> {
    if seats <= 0 {
        return Ok(None);
    }
    let row = sqlx::query(
        "UPDATE entitlements SET seats_used = seats_used - $2 WHERE id = $1 AND seats_used >= $2
         RETURNING seats_used, seat_count, overdraft_kind, overdraft_value",
    )
    .bind(entitlement_id)
    .bind(seats)
    .fetch_optional(conn)
    .await?;
    row.map(|row| {
        Ok(Released {
            seats_used: row.int("seats_used")?,
            seat_count: row.int("seat_count")?,
            overdraft: overdraft_of(&row)?,
        })
    })
    .transpose()
}

/// Checks out `units` of a pool if they are free. Answers the pool's new usage.
pub async fn check_out(
    conn: &mut AnyConnection,
    activation_id: &str,
    entitlement_id: &str,
    feature_id: &str,
    units: i64,
) -> StoreResult<Option<i64>> {
    let row = sqlx::query(
        "UPDATE entitlement_features SET used = used + $3
         WHERE entitlement_id = $1 AND feature_id = $2 AND enabled = 1 AND (limit_value IS NULL OR used + $3 <= limit_value)
         RETURNING used",
    )
    .bind(entitlement_id)
    .bind(feature_id)
    .bind(units)
    .fetch_optional(&mut *conn)
    .await?;
    let Some(row) = row else {
        return Ok(None);
    };
    sqlx::query(
        "INSERT INTO feature_checkouts (activation_id, feature_id, entitlement_id, units) VALUES ($1, $2, $3, $4)
         ON CONFLICT (activation_id, feature_id) DO UPDATE SET units = feature_checkouts.units + excluded.units",
    )
    .bind(activation_id)
    .bind(feature_id)
    .bind(entitlement_id)
    .bind(units)
    .execute(conn)
    .await?;
    Ok(Some(row.int("used")?))
}

/// Returns `units` this activation holds; `false` if it holds fewer.
pub async fn give_back(
    conn: &mut AnyConnection,
    activation_id: &str,
    entitlement_id: &str,
    feature_id: &str,
    units: i64,
) -> StoreResult<bool> {
    let done = sqlx::query(
        "UPDATE feature_checkouts SET units = units - $3 WHERE activation_id = $1 AND feature_id = $2 AND units >= $3",
    )
    .bind(activation_id)
    .bind(feature_id)
    .bind(units)
    .execute(&mut *conn)
    .await?;
    if done.rows_affected() == 0 {
        return Ok(false);
    }
    sqlx::query("UPDATE entitlement_features SET used = used - $3 WHERE entitlement_id = $1 AND feature_id = $2")
        .bind(entitlement_id)
        .bind(feature_id)
        .bind(units)
        .execute(&mut *conn)
        .await?;
    sqlx::query("DELETE FROM feature_checkouts WHERE activation_id = $1 AND feature_id = $2 AND units = 0")
        .bind(activation_id)
        .bind(feature_id)
        .execute(conn)
        .await?;
    Ok(true)
}

/// Returns every unit the activations hold (on deactivation or reclamation).
pub async fn give_back_all(conn: &mut AnyConnection, activation_id: &str) -> StoreResult<()> {
    let rows = sqlx::query("SELECT feature_id, entitlement_id, units FROM feature_checkouts WHERE activation_id = $1")
        .bind(activation_id)
        .fetch_all(&mut *conn)
        .await?;
    for row in &rows {
        sqlx::query("UPDATE entitlement_features SET used = used - $3 WHERE entitlement_id = $1 AND feature_id = $2")
            .bind(row.text("entitlement_id")?)
            .bind(row.text("feature_id")?)
            .bind(row.int("units")?)
            .execute(&mut *conn)
            .await?;
    }
    sqlx::query("DELETE FROM feature_checkouts WHERE activation_id = $1")
        .bind(activation_id)
        .execute(conn)
        .await?;
    Ok(())
}

/// Units each feature is checked out by this activation: (feature id, units).
pub async fn checkouts_of(conn: &mut AnyConnection, activation_id: &str) -> StoreResult<Vec<(String, i64)>> {
    let rows = sqlx::query("SELECT feature_id, units FROM feature_checkouts WHERE activation_id = $1")
        .bind(activation_id)
        .fetch_all(conn)
        .await?;
    rows.iter()
        .map(|row| Ok((row.text("feature_id")?, row.int("units")?)))
        .collect()
}

/// Consumes `amount` of a usage allowance if it stays within limit + overdraft. Answers the new total.
pub async fn consume(
    conn: &mut AnyConnection,
    entitlement_id: &str,
    feature_id: &str,
    amount: i64,
) -> StoreResult<Option<i64>> {
    let row = sqlx::query(
        "UPDATE entitlement_features SET used = used + $3
         WHERE entitlement_id = $1 AND feature_id = $2 AND enabled = 1
           AND (limit_value IS NULL OR used + $3 <= limit_value + overdraft)
         RETURNING used",
    )
    .bind(entitlement_id)
    .bind(feature_id)
    .bind(amount)
    .fetch_optional(conn)
    .await?;
    row.map(|row| row.int("used")).transpose()
}

#[allow(clippy::too_many_arguments)]
pub async fn insert_usage_record(
    conn: &mut AnyConnection,
    id: &str,
    tenant_id: &str,
    entitlement_id: &str,
    activation_id: &str,
    feature_id: &str,
    amount: i64,
    at: DateTime<Utc>,
) -> StoreResult<()> {
    sqlx::query(
        "INSERT INTO usage_records (id, tenant_id, entitlement_id, activation_id, feature_id, amount, recorded_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7)",
    )
    .bind(id)
    .bind(tenant_id)
    .bind(entitlement_id)
    .bind(activation_id)
    .bind(feature_id)
    .bind(amount)
    .bind(millis(at))
    .execute(conn)
    .await?;
    Ok(())
}

/// Starts an entitlement whose plan starts on first activation; `false` if it had started.
pub async fn start_entitlement(
    conn: &mut AnyConnection,
    entitlement_id: &str,
    starts_at: DateTime<Utc>,
    base_expires_at: Option<DateTime<Utc>>,
    expires_at: Option<DateTime<Utc>>,
) -> StoreResult<bool> {
    let done = sqlx::query(
        "UPDATE entitlements SET starts_at = $2, base_expires_at = $3, expires_at = $4
         WHERE id = $1 AND starts_at IS NULL",
    )
    .bind(entitlement_id)
    .bind(millis(starts_at))
    .bind(opt_millis(base_expires_at))
    .bind(opt_millis(expires_at))
    .execute(conn)
    .await?;
    Ok(done.rows_affected() == 1)
}

// ---- the activation log ----

#[derive(Debug, Clone, serde::Serialize, utoipa::ToSchema)]
pub struct ActivationLogEntry {
    pub id: String,
    pub activation_id: Option<String>,
    pub seat_id: String,
    /// `activate`, `refresh`, `deactivate` or `denied`.
    pub action: String,
    /// The denial code, or why a seat was deactivated.
    pub code: Option<String>,
    pub ip: Option<String>,
    pub created_at: DateTime<Utc>,
}

pub async fn log(
    conn: &mut AnyConnection,
    tenant_id: &str,
    entitlement_id: &str,
    entry: &ActivationLogEntry,
) -> StoreResult<()> {
    sqlx::query(
        "INSERT INTO activation_log (id, tenant_id, entitlement_id, activation_id, seat_id, action, code, ip, created_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
    )
    .bind(&entry.id)
    .bind(tenant_id)
    .bind(entitlement_id)
    .bind(entry.activation_id.as_deref())
    .bind(&entry.seat_id)
    .bind(&entry.action)
    .bind(entry.code.as_deref())
    .bind(entry.ip.as_deref())
    .bind(millis(entry.created_at))
    .execute(conn)
    .await?;
    Ok(())
}

pub async fn list_log(
    conn: &mut AnyConnection,
    tenant_id: &str,
    entitlement_id: &str,
    after: &str,
    limit: i64,
) -> StoreResult<Vec<ActivationLogEntry>> {
    let rows = sqlx::query(
        "SELECT id, activation_id, seat_id, action, code, ip, created_at FROM activation_log
         WHERE tenant_id = $1 AND entitlement_id = $2 AND id > $3 ORDER BY id LIMIT $4",
    )
    .bind(tenant_id)
    .bind(entitlement_id)
    .bind(after)
    .bind(limit)
    .fetch_all(conn)
    .await?;
    rows.iter()
        .map(|row| {
            Ok(ActivationLogEntry {
                id: row.text("id")?,
                activation_id: row.opt_text("activation_id")?,
                seat_id: row.text("seat_id")?,
                action: row.text("action")?,
                code: row.opt_text("code")?,
                ip: row.opt_text("ip")?,
                created_at: row.time("created_at")?,
            })
        })
        .collect()
}

/// Re-activation of a seat that is still live: new secret, new lease, same seat.
pub async fn renew_activation(conn: &mut AnyConnection, a: &Activation, secret_hash: &str) -> StoreResult<()> {
    sqlx::query(
        "UPDATE activations SET secret_hash = $2, seat_name = $3, mode = $4, last_lease_at = $5, lease_expires_at = $6,
            ip = $7
         WHERE id = $1 AND deactivated_at IS NULL",
    )
    .bind(&a.id)
    .bind(secret_hash)
    .bind(a.seat_name.as_deref())
    .bind(&a.mode)
    .bind(millis(a.last_lease_at))
    .bind(millis(a.lease_expires_at))
    .bind(a.ip.as_deref())
    .execute(conn)
    .await?;
    Ok(())
}
