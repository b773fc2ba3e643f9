//! Every SQL statement lives here. One set of SQL serves SQLite and PostgreSQL through sqlx's
//! `Any` driver (`$n` placeholders, TEXT and BIGINT columns only); the few statements that must
//! differ are chosen by [`Backend`].

pub mod durability;
mod migrate;
mod rows;

pub mod api_keys;
pub mod branding;
pub mod budgets;
pub mod catalogue;
pub mod commerce;
pub mod console;
pub mod customers;
pub mod entitlements;
pub mod events;
pub mod idempotency;
pub mod licensing;
pub mod mail;
pub mod portal;
pub mod reminders;
pub mod search;
pub mod staff;
pub mod tenants;
pub mod usage;
pub mod webhooks;

use anyhow::Context;
use chrono::{DateTime, Utc};
use sqlx::any::{AnyConnectOptions, AnyPoolOptions};
use sqlx::pool::PoolConnection;
use sqlx::{Any, AnyPool, Connection, Transaction};
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Notify;

pub use sqlx::AnyConnection as Conn;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// A uniqueness constraint refused the write (a duplicate SKU, email, key…).
    #[error("duplicate value")]
    Duplicate,
    /// A stored value could not be read back into its domain type.
    #[error("corrupt row: {0}")]
    Corrupt(String),
    #[error(transparent)]
    Database(#[from] sqlx::Error),
    /// The database could not be reached in time (reported by a component that lost the
    /// original error, like the lease writer answering a whole batch).
    #[error("the database is unavailable: {0}")]
    Unavailable(String),
    #[error(transparent)]
    Other(#[from] anyhow::Error),
}

impl StoreError {
    /// No connection could be had in time, or it broke: an outage (or every connection busy)
    /// rather than a fault of the request, which may succeed when retried.
    pub fn is_unavailable(&self) -> bool {
        matches!(
            self,
            StoreError::Unavailable(_)
                | StoreError::Database(sqlx::Error::PoolTimedOut | sqlx::Error::PoolClosed | sqlx::Error::Io(_))
        )
    }

    pub(crate) fn from_write(error: sqlx::Error) -> Self {
        match &error {
            sqlx::Error::Database(db) if db.kind() == sqlx::error::ErrorKind::UniqueViolation => StoreError::Duplicate,
            _ => StoreError::Database(error),
        }
    }
}

pub type StoreResult<T> = Result<T, StoreError>;

/// How the store waits for its database, and seals secrets.
#[derive(Debug, Clone)]
pub struct StoreSettings {
    /// The longest a request waits for a PostgreSQL connection before it fails (during an
    /// outage every database-bound request fails this fast instead of hanging).
    pub acquire_timeout: Duration,
    /// Seals secrets stored at rest (signing keys); `None` stores them in clear, as older
    /// versions did (tools and tests that open a database directly).
    pub sealer: Option<Arc<crate::custody::Sealer>>,
}

pub const DEFAULT_ACQUIRE_TIMEOUT: Duration = Duration::from_secs(2);

impl Default for StoreSettings {
    fn default() -> Self {
        StoreSettings {
            acquire_timeout: DEFAULT_ACQUIRE_TIMEOUT,
            sealer: None,
        }
    }
}

/// Connection pools. SQLite allows one writer at a time, so writes go through a single-connection
/// pool (no `SQLITE_BUSY` races, no lock upgrades) while reads use several connections in WAL mode.
/// On PostgreSQL both are the same pool.
#[derive(Clone)]
pub struct Store {
    read: AnyPool,
    write: AnyPool,
    backend: Backend,
    /// Rung after a transaction that queued mail commits, so this instance's mail worker wakes
    /// at once instead of at its next poll.
    mail_signal: Arc<Notify>,
    /// SQLite: syncs the write-ahead log before write requests are answered (see `durability`).
    wal_sync: Option<Arc<durability::GroupSync>>,
    /// Seals and opens secrets at rest; `None` when opened without a master key.
    sealer: Option<Arc<crate::custody::Sealer>>,
}

impl Store {
    /// Connects to `url` (`sqlite://…` or `postgres://…`) and applies pending migrations.
    pub async fn open(url: &str) -> anyhow::Result<Store> {
        Self::open_with(url, StoreSettings::default()).await
    }

    /// [`Store::open`] with explicit settings.
    pub async fn open_with(url: &str, settings: StoreSettings) -> anyhow::Result<Store> {
        sqlx::any::install_default_drivers();
        let mut store = if url.starts_with("sqlite:") {
            Self::open_sqlite(url).await?
        } else if url.starts_with("postgres:") || url.starts_with("postgresql:") {
            let options = AnyConnectOptions::from_str(url).context("parsing the database URL")?;
            let pool = AnyPoolOptions::new()
                .max_connections(16)
                .acquire_timeout(settings.acquire_timeout)
                .connect_with(options)
                .await
                .context("connecting to PostgreSQL")?;
            Store {
                read: pool.clone(),
                write: pool,
                backend: Backend::Postgres,
                mail_signal: Arc::default(),
                wal_sync: None,
                sealer: None,
            }
        } else {
            anyhow::bail!("unsupported database URL: use sqlite://PATH or postgres://…");
        };
        migrate::run(&store).await.context("applying database migrations")?;
        if let Some(sealer) = settings.sealer {
            licensing::seal_signing_keys(&store, &sealer)
                .await
                .context("sealing the signing keys with the master key")?;
            store.sealer = Some(sealer);
        }
        Ok(store)
    }

    async fn open_sqlite(url: &str) -> anyhow::Result<Store> {
        let url = if url.contains('?') {
            url.to_owned()
        } else {
            format!("{url}?mode=rwc")
        };
        let file = url
            .strip_prefix("sqlite://")
            .and_then(|rest| rest.split('?').next())
            .filter(|path| !path.is_empty() && !path.contains(":memory:"));
        if let Some(path) = file {
            if let Some(parent) = Path::new(path).parent().filter(|p| !p.as_os_str().is_empty()) {
                std::fs::create_dir_all(parent).with_context(|| format!("creating {}", parent.display()))?;
            }
        }
        let options = AnyConnectOptions::from_str(&url).context("parsing the SQLite URL")?;
        let pool = |max: u32| {
            AnyPoolOptions::new()
                .max_connections(max)
                .acquire_timeout(Duration::from_secs(30))
                .after_connect(|conn, _meta| {
                    Box::pin(async move {
                        for pragma in [
                            "PRAGMA journal_mode = WAL",
                            "PRAGMA synchronous = NORMAL",
                            "PRAGMA foreign_keys = ON",
                            "PRAGMA busy_timeout = 10000",
                        ] {
                            sqlx::Executor::execute(&mut *conn, pragma).await?;
                        }
                        Ok(())
                    })
                })
        };
        let write = pool(1)
            .connect_with(options.clone())
            .await
            .context("opening the SQLite database")?;
        let read = pool(8)
            .connect_with(options)
            .await
            .context("opening the SQLite database")?;
        Ok(Store {
            read,
            write,
            backend: Backend::Sqlite,
            mail_signal: Arc::default(),
            sealer: None,
            wal_sync: file.map(|path| durability::GroupSync::wal(PathBuf::from(format!("{path}-wal")))),
        })
    }

    pub fn sealer(&self) -> Option<&crate::custody::Sealer> {
        self.sealer.as_deref()
    }

    pub fn backend(&self) -> Backend {
        self.backend
    }

    pub fn mail_signal(&self) -> Arc<Notify> {
        self.mail_signal.clone()
    }

    /// Call after committing a transaction that queued mail.
    pub fn mail_queued(&self) {
        self.mail_signal.notify_one();
    }

    /// A transaction for a unit of work that writes.
    pub async fn begin(&self) -> StoreResult<Transaction<'static, Any>> {
        Ok(patiently(&self.write, || self.write.begin()).await?)
    }

    /// Returns once every transaction committed before this call is on disk (SQLite commits
    /// reach the write-ahead log in `NORMAL` mode; this syncs the log, shared among callers).
    /// Write requests call it before they answer.
    pub async fn durable(&self) -> std::io::Result<()> {
        match &self.wal_sync {
            Some(sync) => sync.durable().await,
            None => Ok(()),
        }
    }

    /// A connection for reads outside a transaction.
    pub async fn read(&self) -> StoreResult<PoolConnection<Any>> {
        Ok(patiently(&self.read, || self.read.acquire()).await?)
    }

    /// For readiness checks: can we reach the database at all?
    pub async fn ping(&self) -> StoreResult<()> {
        let mut conn = self.read.acquire().await?;
        conn.ping().await?;
        Ok(())
    }

    pub async fn close(&self) {
        self.read.close().await;
        self.write.close().await;
    }

    /// Open and idle connections of each pool, for metrics (one pool on PostgreSQL).
    pub fn pool_stats(&self) -> Vec<PoolStats> {
        let stats = |name, pool: &AnyPool| PoolStats {
            name,
            size: pool.size(),
            idle: pool.num_idle(),
        };
        match self.backend {
            Backend::Postgres => vec![stats("main", &self.read)],
            Backend::Sqlite => vec![stats("read", &self.read), stats("write", &self.write)],
        }
    }

    pub async fn write_conn(&self) -> StoreResult<PoolConnection<Any>> {
        Ok(patiently(&self.write, || self.write.acquire()).await?)
    }
}

/// Acquire timeouts a request sits out while the pool is merely busy (so at most this many
/// times the acquire timeout in all).
const BUSY_ROUNDS: u32 = 5;

/// Takes a connection from `pool`. A timeout is the answer when the database is unreachable
/// (its connections have failed, so the pool is not full); while every connection of a full pool
/// is in use, the database answers, just not yet for us (a burst), and the request waits longer.
async fn patiently<T, F, Fut>(pool: &AnyPool, mut attempt: F) -> Result<T, sqlx::Error>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, sqlx::Error>>,
{
    let mut rounds = 1;
    loop {
        match attempt().await {
            Err(sqlx::Error::PoolTimedOut)
                if rounds < BUSY_ROUNDS
                    && pool.num_idle() == 0
                    && pool.size() >= pool.options().get_max_connections() =>
            {
                rounds += 1;
            }
            outcome => return outcome,
        }
    }
}

pub struct PoolStats {
    pub name: &'static str,
    pub size: u32,
    pub idle: usize,
}

pub(crate) fn millis(at: DateTime<Utc>) -> i64 {
    at.timestamp_millis()
}

pub(crate) fn opt_millis(at: Option<DateTime<Utc>>) -> Option<i64> {
    at.map(millis)
}
