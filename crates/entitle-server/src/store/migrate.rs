//! A small migrator: numbered SQL files, applied in order, each in its own transaction, recorded in
//! `schema_migrations`. Shared files run on both backends; dialect files only on theirs.

use anyhow::Context;
use sqlx::{Connection, Row};

use super::{Backend, Store};

struct Migration {
    version: i64,
    name: &'static str,
    sqlite: &'static str,
    postgres: &'static str,
}

const SCHEMA: &str = include_str!("../../migrations/common/0001_schema.sql");
const LICENSING: &str = include_str!("../../migrations/common/0003_licensing.sql");
const MAIL: &str = include_str!("../../migrations/common/0004_mail.sql");
const COMMERCE: &str = include_str!("../../migrations/common/0005_commerce.sql");
const CREDENTIAL_BUDGETS: &str = include_str!("../../migrations/common/0006_credential_budgets.sql");
const MAIL_RENDER_CONTEXT: &str = include_str!("../../migrations/common/0007_mail_render_context.sql");
const COMMERCE_REJECTIONS: &str = include_str!("../../migrations/common/0008_commerce_rejections.sql");
const USAGE_ROLLUP: &str = include_str!("../../migrations/common/0009_usage_rollup.sql");
const PORTAL: &str = include_str!("../../migrations/common/0010_portal.sql");
const BRANDING: &str = include_str!("../../migrations/common/0011_branding.sql");
const STAFF: &str = include_str!("../../migrations/common/0012_staff.sql");
const STAFF_TOTP: &str = include_str!("../../migrations/common/0014_staff_totp.sql");
const TENANT_SEAT_DAYS: &str = include_str!("../../migrations/common/0016_tenant_seat_days.sql");
const IDEMPOTENCY_KEYS: &str = include_str!("../../migrations/common/0017_idempotency_keys.sql");
const STOREFRONT_SETTINGS: &str = include_str!("../../migrations/common/0018_storefront_settings.sql");
const STOREFRONT_GRACE: &str = include_str!("../../migrations/common/0019_storefront_grace.sql");
const WEBHOOKS: &str = include_str!("../../migrations/common/0022_webhooks.sql");
const REMINDERS: &str = include_str!("../../migrations/common/0023_reminders.sql");
const DELIVERIES_BY_ORDER: &str = include_str!("../../migrations/common/0015_deliveries_by_order.sql");
const MAIL_CLAIMS: &str = include_str!("../../migrations/common/0020_mail_claims.sql");
const MAIL_BODY_RETENTION: &str = include_str!("../../migrations/common/0021_mail_body_retention.sql");

const MIGRATIONS: &[Migration] = &[
    Migration {
        version: 1,
        name: "schema",
        sqlite: SCHEMA,
        postgres: SCHEMA,
    },
    Migration {
        version: 2,
        name: "events_append_only",
        sqlite: include_str!("../../migrations/sqlite/0002_events_append_only.sql"),
        postgres: include_str!("../../migrations/postgres/0002_events_append_only.sql"),
    },
    Migration {
        version: 3,
        name: "licensing",
        sqlite: LICENSING,
        postgres: LICENSING,
    },
    Migration {
        version: 4,
        name: "mail",
        sqlite: MAIL,
        postgres: MAIL,
    },
    Migration {
        version: 5,
        name: "commerce",
        sqlite: COMMERCE,
        postgres: COMMERCE,
    },
    Migration {
        version: 6,
        name: "credential_budgets",
        sqlite: CREDENTIAL_BUDGETS,
        postgres: CREDENTIAL_BUDGETS,
    },
    Migration {
        version: 7,
        name: "mail_render_context",
        sqlite: MAIL_RENDER_CONTEXT,
        postgres: MAIL_RENDER_CONTEXT,
    },
    Migration {
        version: 8,
        name: "commerce_rejections",
        sqlite: COMMERCE_REJECTIONS,
        postgres: COMMERCE_REJECTIONS,
    },
    Migration {
        version: 9,
        name: "usage_rollup",
        sqlite: USAGE_ROLLUP,
        postgres: USAGE_ROLLUP,
    },
    Migration {
        version: 10,
        name: "portal",
        sqlite: PORTAL,
        postgres: PORTAL,
    },
    Migration {
        version: 11,
        name: "branding",
        sqlite: BRANDING,
        postgres: BRANDING,
    },
    Migration {
        version: 12,
        name: "staff",
        sqlite: STAFF,
        postgres: STAFF,
    },
    Migration {
        version: 13,
        name: "search",
        sqlite: include_str!("../../migrations/sqlite/0013_search.sql"),
        postgres: include_str!("../../migrations/postgres/0013_search.sql"),
    },
    Migration {
        version: 14,
        name: "staff_totp",
        sqlite: STAFF_TOTP,
        postgres: STAFF_TOTP,
    },
    Migration {
        version: 15,
        name: "deliveries_by_order",
        sqlite: DELIVERIES_BY_ORDER,
        postgres: DELIVERIES_BY_ORDER,
    },
    Migration {
        version: 16,
        name: "tenant_seat_days",
        sqlite: TENANT_SEAT_DAYS,
        postgres: TENANT_SEAT_DAYS,
    },
    Migration {
        version: 17,
        name: "idempotency_keys",
        sqlite: IDEMPOTENCY_KEYS,
        postgres: IDEMPOTENCY_KEYS,
    },
    Migration {
        version: 18,
        name: "storefront_settings",
        sqlite: STOREFRONT_SETTINGS,
        postgres: STOREFRONT_SETTINGS,
    },
    Migration {
        version: 19,
        name: "storefront_grace",
        sqlite: STOREFRONT_GRACE,
        postgres: STOREFRONT_GRACE,
    },
    Migration {
        version: 20,
        name: "mail_claims",
        sqlite: MAIL_CLAIMS,
        postgres: MAIL_CLAIMS,
    },
    Migration {
        version: 21,
        name: "mail_body_retention",
        sqlite: MAIL_BODY_RETENTION,
        postgres: MAIL_BODY_RETENTION,
    },
    Migration {
        version: 22,
        name: "webhooks",
        sqlite: WEBHOOKS,
        postgres: WEBHOOKS,
    },
    Migration {
        version: 23,
        name: "reminders",
        sqlite: REMINDERS,
        postgres: REMINDERS,
    },
];

pub(super) async fn run(store: &Store) -> anyhow::Result<()> {
    let mut conn = store.write_conn().await?;
    if store.backend == Backend::Postgres {
        // Several instances may start at once against one database: one migrates, the others wait.
        sqlx::query("SELECT pg_advisory_lock(7452012)")
            .execute(&mut *conn)
            .await?;
    }
    let result = apply_pending(store.backend, &mut conn).await;
    if store.backend == Backend::Postgres {
        sqlx::query("SELECT pg_advisory_unlock(7452012)")
            .execute(&mut *conn)
            .await?;
    }
    result
}

async fn apply_pending(backend: Backend, conn: &mut sqlx::AnyConnection) -> anyhow::Result<()> {
    sqlx::raw_sql(
        "CREATE TABLE IF NOT EXISTS schema_migrations (
            version BIGINT PRIMARY KEY, name TEXT NOT NULL, applied_at BIGINT NOT NULL)",
    )
    .execute(&mut *conn)
    .await?;
    // The SHA-256 of each applied migration's SQL: a migration edited after it ran is an error at
    // start, not silently skipped (databases from before this check record theirs on first start).
    sqlx::raw_sql(
        "CREATE TABLE IF NOT EXISTS schema_migration_checksums (version BIGINT PRIMARY KEY, sha256 TEXT NOT NULL)",
    )
    .execute(&mut *conn)
    .await?;
    let applied: Vec<i64> = sqlx::query("SELECT version FROM schema_migrations")
        .fetch_all(&mut *conn)
        .await?
        .iter()
        .map(|row| row.try_get::<i64, _>(0))
        .collect::<Result<_, _>>()?;
    for migration in MIGRATIONS.iter().filter(|m| applied.contains(&m.version)) {
        check_unchanged(conn, migration, checksum(sql_for(backend, migration))).await?;
    }
    for migration in MIGRATIONS.iter().filter(|m| !applied.contains(&m.version)) {
        let sql = sql_for(backend, migration);
        let mut tx = conn.begin().await?;
        sqlx::raw_sql(sql)
            .execute(&mut *tx)
            .await
            .with_context(|| format!("migration {} ({})", migration.version, migration.name))?;
        sqlx::query("INSERT INTO schema_migrations (version, name, applied_at) VALUES ($1, $2, $3)")
            .bind(migration.version)
            .bind(migration.name)
            .bind(chrono::Utc::now().timestamp_millis())
            .execute(&mut *tx)
            .await?;
        sqlx::query("INSERT INTO schema_migration_checksums (version, sha256) VALUES ($1, $2)")
            .bind(migration.version)
            .bind(checksum(sql))
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        tracing::info!(version = migration.version, name = migration.name, "applied migration");
    }
    Ok(())
}

fn sql_for(backend: Backend, migration: &Migration) -> &'static str {
    match backend {
        Backend::Sqlite => migration.sqlite,
        Backend::Postgres => migration.postgres,
    }
}

fn checksum(sql: &str) -> String {
    crate::domain::keys::hash_secret(sql)
}

/// Refuses to start on a database whose applied migration differs from this binary's; records
/// the checksum of one applied before checksums were kept.
async fn check_unchanged(conn: &mut sqlx::AnyConnection, migration: &Migration, current: String) -> anyhow::Result<()> {
    let stored: Option<String> = sqlx::query("SELECT sha256 FROM schema_migration_checksums WHERE version = $1")
        .bind(migration.version)
        .fetch_optional(&mut *conn)
        .await?
        .map(|row| row.try_get::<String, _>(0))
        .transpose()?;
    match stored {
        Some(stored) if stored == current => Ok(()),
        Some(_) => anyhow::bail!(
            "migration {} ({}) was changed after it was applied to this database: its checksum differs; \
             restore the original migration file and add a new migration instead",
            migration.version,
            migration.name
        ),
        None => {
            sqlx::query("INSERT INTO schema_migration_checksums (version, sha256) VALUES ($1, $2)")
                .bind(migration.version)
                .bind(current)
                .execute(&mut *conn)
                .await?;
            Ok(())
        }
    }
}
