//! Configuration in layers: built-in defaults, then a TOML file (`--config`), then environment
//! variables and command-line flags (clap merges those two; the flag wins).

use anyhow::Context;
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::domain::network::TrustedProxies;

pub const DEFAULT_LISTEN: &str = "127.0.0.1:8080";
pub const DEFAULT_DATA_DIR: &str = "./entitle-data";

/// One layer of settings; unset values fall through to the layer below.
#[derive(Debug, Default, Clone, Deserialize, clap::Args)]
#[serde(deny_unknown_fields, rename_all = "snake_case")]
pub struct ConfigLayer {
    /// Address to listen on.
    #[arg(long, env = "ENTITLE_LISTEN", global = true)]
    pub listen: Option<SocketAddr>,
    /// A PEM certificate chain to serve HTTPS with directly (with `tls_key`); re-read when it
    /// changes. Without it the server speaks plain HTTP, for a reverse proxy in front.
    #[arg(long, env = "ENTITLE_TLS_CERT", global = true)]
    pub tls_cert: Option<PathBuf>,
    /// The PEM private key of `tls_cert`.
    #[arg(long, env = "ENTITLE_TLS_KEY", global = true)]
    pub tls_key: Option<PathBuf>,
    /// Address of a separate listener answering `GET /metrics` (Prometheus text); off unless set.
    #[arg(long, env = "ENTITLE_METRICS_LISTEN", global = true)]
    pub metrics_listen: Option<SocketAddr>,
    /// Directory for the SQLite database and mail files.
    #[arg(long, env = "ENTITLE_DATA_DIR", global = true)]
    pub data_dir: Option<PathBuf>,
    /// `postgres://…` to run on PostgreSQL (default: SQLite in the data directory).
    #[arg(long, env = "ENTITLE_DATABASE_URL", global = true, hide_env_values = true)]
    pub database_url: Option<String>,
    /// The base URL of links in mails, e.g. https://licensing.example.com.
    #[arg(long, env = "ENTITLE_PUBLIC_URL", global = true)]
    pub public_url: Option<String>,
    /// `smtp://user:pass@host:587?tls=starttls` (default: write mails as .eml files in the data directory).
    #[arg(long, env = "ENTITLE_SMTP_URL", global = true, hide_env_values = true)]
    pub smtp_url: Option<String>,
    /// PEM certificates of a private CA the SMTP relay's certificate may chain to (besides the
    /// public roots), for an internal relay.
    #[arg(long, env = "ENTITLE_SMTP_CA_FILE", global = true)]
    pub smtp_ca_file: Option<PathBuf>,
    /// Mails sent at once per instance, each lane on its own SMTP connection (default 8).
    #[arg(long, env = "ENTITLE_MAIL_CONCURRENCY", global = true)]
    pub mail_concurrency: Option<usize>,
    /// Days a sent or failed mail keeps its bodies (secrets are removed when it ends) (default 30).
    #[arg(long, env = "ENTITLE_MAIL_RETENTION_DAYS", global = true)]
    pub mail_retention_days: Option<u32>,
    /// This instance's name in work claims; must stay the same across restarts and differ between
    /// instances sharing a database (default: the host name and the listen address).
    #[arg(long, env = "ENTITLE_INSTANCE_ID", global = true)]
    pub instance_id: Option<String>,
    /// The sender address of mails when a tenant has not set its own.
    #[arg(long, env = "ENTITLE_MAIL_FROM", global = true)]
    pub mail_from: Option<String>,
    /// Comma-separated domains tenants' templates may send from (default: none, `mail_from` only).
    #[arg(long, env = "ENTITLE_MAIL_SENDER_DOMAINS", global = true)]
    pub mail_sender_domains: Option<String>,
    /// Delivery attempts before a mail is marked failed.
    #[arg(long, env = "ENTITLE_MAIL_MAX_ATTEMPTS", global = true)]
    pub mail_max_attempts: Option<u32>,
    /// The first retry's delay in milliseconds; each next one doubles.
    #[arg(long, env = "ENTITLE_MAIL_RETRY_BASE_MS", global = true)]
    pub mail_retry_base_ms: Option<u64>,
    /// How often the mail worker looks for mail queued elsewhere, in milliseconds.
    #[arg(long, env = "ENTITLE_MAIL_POLL_MS", global = true)]
    pub mail_poll_ms: Option<u64>,
    /// Reverse proxies whose `Forwarded` / `X-Forwarded-For` headers name the client: a comma
    /// list of addresses or CIDR ranges, e.g. `127.0.0.1,10.0.0.0/8` (default: none).
    #[arg(long, env = "ENTITLE_TRUSTED_PROXIES", global = true)]
    pub trusted_proxies: Option<String>,
    /// Open client connections at most (default: what the open-files limit allows).
    #[arg(long, env = "ENTITLE_MAX_CONNECTIONS", global = true)]
    pub max_connections: Option<usize>,
    /// How long a client may take to send request headers, and how long an idle keep-alive
    /// connection stays open, in milliseconds (default 10000).
    #[arg(long, env = "ENTITLE_HEADER_TIMEOUT_MS", global = true)]
    pub header_timeout_ms: Option<u64>,
    /// The deadline of one request, body included, in milliseconds (default 30000).
    #[arg(long, env = "ENTITLE_REQUEST_TIMEOUT_MS", global = true)]
    pub request_timeout_ms: Option<u64>,
    /// After SIGTERM, how long in-flight requests may take before the process exits, in
    /// milliseconds (default 10000).
    #[arg(long, env = "ENTITLE_SHUTDOWN_GRACE_MS", global = true)]
    pub shutdown_grace_ms: Option<u64>,
    /// Hosts besides the providers' official APIs that storefront connections may send their API
    /// key to: a comma list of host[:port], or `*` for any (default: none).
    #[arg(long, env = "ENTITLE_PROVIDER_API_ALLOW_HOSTS", global = true)]
    pub provider_api_allow_hosts: Option<String>,
    /// Days badly signed storefront deliveries are kept before they are purged (default 7).
    #[arg(long, env = "ENTITLE_REJECTED_DELIVERY_RETENTION_DAYS", global = true)]
    pub rejected_delivery_retention_days: Option<u32>,
    /// Deliver outgoing webhooks to private, loopback and link-local addresses too (default: refused).
    #[arg(long, env = "ENTITLE_WEBHOOK_ALLOW_PRIVATE", global = true, num_args = 0..=1, default_missing_value = "true")]
    pub webhook_allow_private: Option<bool>,
    /// The first webhook retry's delay in milliseconds; each next one doubles (default 30000).
    #[arg(long, env = "ENTITLE_WEBHOOK_RETRY_BASE_MS", global = true)]
    pub webhook_retry_base_ms: Option<u64>,
    /// How often the webhook worker looks for due messages, in milliseconds (default 1000).
    #[arg(long, env = "ENTITLE_WEBHOOK_POLL_MS", global = true)]
    pub webhook_poll_ms: Option<u64>,
    /// The deadline of one webhook attempt, in milliseconds (default 15000).
    #[arg(long, env = "ENTITLE_WEBHOOK_TIMEOUT_MS", global = true)]
    pub webhook_timeout_ms: Option<u64>,
    /// How long a request waits for a PostgreSQL connection before it fails with 503, in
    /// milliseconds (default 2000): during an outage requests fail this fast instead of hanging.
    #[arg(long, env = "ENTITLE_DB_ACQUIRE_TIMEOUT_MS", global = true)]
    pub db_acquire_timeout_ms: Option<u64>,
    /// A file holding the master key that seals signing keys at rest (base64 of 32 bytes);
    /// default: `master.key` in the data directory, generated when absent.
    #[arg(long, env = "ENTITLE_MASTER_KEY_FILE", global = true)]
    pub master_key_file: Option<PathBuf>,
    /// The master key itself (base64 of 32 bytes); wins over the file. Environment only.
    #[arg(skip)]
    #[serde(skip)]
    pub master_key: Option<String>,
}

impl ConfigLayer {
    fn over(self, lower: ConfigLayer) -> ConfigLayer {
        ConfigLayer {
            listen: self.listen.or(lower.listen),
            tls_cert: self.tls_cert.or(lower.tls_cert),
            tls_key: self.tls_key.or(lower.tls_key),
            metrics_listen: self.metrics_listen.or(lower.metrics_listen),
            data_dir: self.data_dir.or(lower.data_dir),
            database_url: self.database_url.or(lower.database_url),
            public_url: self.public_url.or(lower.public_url),
            smtp_url: self.smtp_url.or(lower.smtp_url),
            smtp_ca_file: self.smtp_ca_file.or(lower.smtp_ca_file),
            mail_concurrency: self.mail_concurrency.or(lower.mail_concurrency),
            mail_retention_days: self.mail_retention_days.or(lower.mail_retention_days),
            instance_id: self.instance_id.or(lower.instance_id),
            mail_from: self.mail_from.or(lower.mail_from),
            mail_sender_domains: self.mail_sender_domains.or(lower.mail_sender_domains),
            mail_max_attempts: self.mail_max_attempts.or(lower.mail_max_attempts),
            mail_retry_base_ms: self.mail_retry_base_ms.or(lower.mail_retry_base_ms),
            mail_poll_ms: self.mail_poll_ms.or(lower.mail_poll_ms),
            trusted_proxies: self.trusted_proxies.or(lower.trusted_proxies),
            max_connections: self.max_connections.or(lower.max_connections),
            header_timeout_ms: self.header_timeout_ms.or(lower.header_timeout_ms),
            request_timeout_ms: self.request_timeout_ms.or(lower.request_timeout_ms),
            shutdown_grace_ms: self.shutdown_grace_ms.or(lower.shutdown_grace_ms),
            provider_api_allow_hosts: self.provider_api_allow_hosts.or(lower.provider_api_allow_hosts),
            rejected_delivery_retention_days: self
                .rejected_delivery_retention_days
                .or(lower.rejected_delivery_retention_days),
            webhook_allow_private: self.webhook_allow_private.or(lower.webhook_allow_private),
            webhook_retry_base_ms: self.webhook_retry_base_ms.or(lower.webhook_retry_base_ms),
            webhook_poll_ms: self.webhook_poll_ms.or(lower.webhook_poll_ms),
            webhook_timeout_ms: self.webhook_timeout_ms.or(lower.webhook_timeout_ms),
            db_acquire_timeout_ms: self.db_acquire_timeout_ms.or(lower.db_acquire_timeout_ms),
            master_key_file: self.master_key_file.or(lower.master_key_file),
            master_key: self.master_key.or(lower.master_key),
        }
    }
}

#[derive(Debug, Clone)]
pub struct Config {
    pub listen: SocketAddr,
    /// `None`: plain HTTP on `listen`.
    pub tls: Option<crate::tls::TlsFiles>,
    /// `None`: no metrics listener.
    pub metrics_listen: Option<SocketAddr>,
    pub data_dir: PathBuf,
    /// May hold a password: redacted in `Debug`.
    pub database_url: SecretString,
    pub public_url: String,
    /// May hold a password: redacted in `Debug`.
    pub smtp_url: Option<SecretString>,
    pub smtp_ca_file: Option<PathBuf>,
    pub mail_concurrency: usize,
    pub mail_retention: chrono::Duration,
    /// `None`: derived from the host name and the bound address.
    pub instance_id: Option<String>,
    pub mail_from: String,
    /// Domains tenants may pick a sender address in (lower case).
    pub mail_sender_domains: Vec<String>,
    pub mail_max_attempts: u32,
    pub mail_retry_base: std::time::Duration,
    pub mail_poll: std::time::Duration,
    pub trusted_proxies: TrustedProxies,
    /// `None`: as many as the open-files limit allows.
    pub max_connections: Option<usize>,
    pub header_timeout: Duration,
    pub request_timeout: Duration,
    pub shutdown_grace: Duration,
    /// Extra hosts providers' API calls may go to (`host[:port]` or `*`).
    pub provider_api_allow_hosts: Vec<String>,
    pub rejected_delivery_retention: chrono::Duration,
    pub webhook_allow_private: bool,
    pub webhook_retry_base: Duration,
    pub webhook_poll: Duration,
    pub webhook_timeout: Duration,
    /// The longest wait for a database connection.
    pub db_acquire_timeout: Duration,
    /// Where the master key (sealing secrets at rest) comes from.
    pub master_key: crate::custody::MasterKeySource,
}

impl Config {
    /// Resolves the layers: `overrides` (flags and environment) over the file over the defaults.
    pub fn load(config_file: Option<&Path>, overrides: ConfigLayer) -> anyhow::Result<Config> {
        let file = match config_file {
            Some(path) => {
                let text = std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
                toml::from_str::<ConfigLayer>(&text).with_context(|| format!("parsing {}", path.display()))?
            }
            None => ConfigLayer::default(),
        };
        Config::from_layer(overrides.over(file))
    }

    pub fn from_layer(layer: ConfigLayer) -> anyhow::Result<Config> {
        let listen = match layer.listen {
            Some(listen) => listen,
            None => DEFAULT_LISTEN.parse().context("default listen address")?,
        };
        let tls = match (layer.tls_cert, layer.tls_key) {
            (Some(cert), Some(key)) => Some(crate::tls::TlsFiles { cert, key }),
            (None, None) => None,
            _ => anyhow::bail!("tls_cert and tls_key go together: set both to serve HTTPS, or neither"),
        };
        let scheme = if tls.is_some() { "https" } else { "http" };
        let data_dir = layer.data_dir.unwrap_or_else(|| PathBuf::from(DEFAULT_DATA_DIR));
        let database_url = match layer.database_url {
            Some(url) => url,
            None => format!("sqlite://{}", data_dir.join("entitle.db").display()),
        };
        let public_url = layer
            .public_url
            .unwrap_or_else(|| format!("{scheme}://{listen}"))
            .trim_end_matches('/')
            .to_owned();
        let mail_from = layer.mail_from.unwrap_or_else(|| "entitle@localhost".to_owned());
        anyhow::ensure!(
            crate::domain::Email::parse(mail_from.as_str()).is_ok() || mail_from.ends_with("@localhost"),
            "mail_from {mail_from:?} is not an email address"
        );
        let provider_api_allow_hosts: Vec<String> = layer
            .provider_api_allow_hosts
            .unwrap_or_default()
            .split(',')
            .map(|host| host.trim().to_owned())
            .filter(|host| !host.is_empty())
            .collect();
        crate::commerce::complete::AllowedHosts::parse(&provider_api_allow_hosts)
            .map_err(|problem| anyhow::anyhow!("provider_api_allow_hosts: {problem}"))?;
        let mail_sender_domains =
            crate::domain::sender::parse_domains(layer.mail_sender_domains.as_deref().unwrap_or(""))
                .map_err(|e| anyhow::anyhow!("mail_sender_domains: {e}"))?;
        let master_key = match (layer.master_key.filter(|k| !k.trim().is_empty()), layer.master_key_file) {
            (Some(value), _) => crate::custody::MasterKeySource::Value(SecretString::from(value)),
            (None, Some(path)) => crate::custody::MasterKeySource::File { path, generate: false },
            (None, None) => crate::custody::MasterKeySource::File {
                path: data_dir.join("master.key"),
                generate: true,
            },
        };
        Ok(Config {
            master_key,
            listen,
            tls,
            metrics_listen: layer.metrics_listen,
            data_dir,
            database_url: SecretString::from(database_url),
            public_url,
            smtp_url: layer.smtp_url.map(SecretString::from),
            smtp_ca_file: layer.smtp_ca_file,
            mail_concurrency: layer.mail_concurrency.unwrap_or(8).clamp(1, 256),
            mail_retention: chrono::Duration::days(i64::from(layer.mail_retention_days.unwrap_or(30).max(1))),
            instance_id: layer.instance_id.filter(|id| !id.trim().is_empty()),
            mail_from,
            mail_sender_domains,
            mail_max_attempts: layer.mail_max_attempts.unwrap_or(8).max(1),
            mail_retry_base: std::time::Duration::from_millis(layer.mail_retry_base_ms.unwrap_or(30_000)),
            mail_poll: std::time::Duration::from_millis(layer.mail_poll_ms.unwrap_or(5_000).max(10)),
            trusted_proxies: TrustedProxies::parse(layer.trusted_proxies.as_deref().unwrap_or(""))
                .map_err(|e| anyhow::anyhow!("trusted_proxies: {e}"))?,
            max_connections: layer.max_connections.map(|n| n.max(1)),
            header_timeout: Duration::from_millis(layer.header_timeout_ms.unwrap_or(10_000).max(1)),
            request_timeout: Duration::from_millis(layer.request_timeout_ms.unwrap_or(30_000).max(1)),
            shutdown_grace: Duration::from_millis(layer.shutdown_grace_ms.unwrap_or(10_000)),
            provider_api_allow_hosts,
            rejected_delivery_retention: chrono::Duration::days(i64::from(
                layer.rejected_delivery_retention_days.unwrap_or(7).max(1),
            )),
            webhook_allow_private: layer.webhook_allow_private.unwrap_or(false),
            webhook_retry_base: Duration::from_millis(layer.webhook_retry_base_ms.unwrap_or(30_000).max(1)),
            webhook_poll: Duration::from_millis(layer.webhook_poll_ms.unwrap_or(1_000).max(10)),
            webhook_timeout: Duration::from_millis(layer.webhook_timeout_ms.unwrap_or(15_000).max(100)),
            db_acquire_timeout: layer
                .db_acquire_timeout_ms
                .map_or(crate::store::DEFAULT_ACQUIRE_TIMEOUT, |ms| {
                    Duration::from_millis(ms.max(1))
                }),
        })
    }

    pub fn mail_dir(&self) -> PathBuf {
        self.data_dir.join("mail")
    }

    /// The mail transport in words, for logs (no password).
    pub fn mail_display(&self) -> String {
        match &self.smtp_url {
            Some(url) => mask_password(url.expose_secret()),
            None => format!("files in {}", self.mail_dir().display()),
        }
    }

    /// The store's settings, with the master key loaded (or generated).
    pub fn store_settings(&self) -> anyhow::Result<crate::store::StoreSettings> {
        Ok(crate::store::StoreSettings {
            acquire_timeout: self.db_acquire_timeout,
            sealer: Some(std::sync::Arc::new(crate::custody::Sealer::load(&self.master_key)?)),
        })
    }

    /// The database URL with any password masked, for logs.
    pub fn database_display(&self) -> String {
        mask_password(self.database_url.expose_secret())
    }
}

fn mask_password(url: &str) -> String {
    {
        match (url.find("://"), url.rfind('@')) {
            (Some(scheme), Some(at)) if at > scheme => {
                let credentials = &url[scheme + 3..at];
                match credentials.split_once(':') {
                    Some((user, _)) => format!("{}{}:***{}", &url[..scheme + 3], user, &url[at..]),
                    // A user part alone is often the secret itself (an API token as the user).
                    None => format!("{}***{}", &url[..scheme + 3], &url[at..]),
                }
            }
            _ => url.to_owned(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_zero_configuration() {
        let config = Config::from_layer(ConfigLayer::default()).unwrap();
        assert_eq!(config.listen.to_string(), "127.0.0.1:8080");
        assert_eq!(
            config.database_url.expose_secret(),
            "sqlite://./entitle-data/entitle.db"
        );
        assert_eq!(config.public_url, "http://127.0.0.1:8080");
    }

    #[test]
    fn flags_win_over_the_file_which_wins_over_defaults() {
        let dir = std::env::temp_dir().join(format!("entitle-config-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("entitle.toml");
        std::fs::write(&file, "listen = \"0.0.0.0:9000\"\ndata_dir = \"/var/lib/entitle\"\n").unwrap();
        let flags = ConfigLayer {
            listen: Some("127.0.0.1:7000".parse().unwrap()),
            ..Default::default()
        };
        let config = Config::load(Some(&file), flags).unwrap();
        assert_eq!(config.listen.to_string(), "127.0.0.1:7000");
        assert_eq!(config.data_dir, PathBuf::from("/var/lib/entitle"));
        std::fs::write(&file, "lisen = \"x\"\n").unwrap();
        assert!(
            Config::load(Some(&file), ConfigLayer::default()).is_err(),
            "typos in the file are errors"
        );
    }

    #[test]
    fn secrets_stay_out_of_logs() {
        let layer = ConfigLayer {
            database_url: Some("postgres://app:hunter2@db/entitle".into()),
            ..Default::default()
        };
        let config = Config::from_layer(layer).unwrap();
        assert!(!format!("{config:?}").contains("hunter2"));
        assert_eq!(config.database_display(), "postgres://app:***@db/entitle");
        let token_only = Config::from_layer(ConfigLayer {
            smtp_url: Some("smtps://SG.secret-token@smtp.example.com:465".into()),
            ..Default::default()
        })
        .unwrap();
        assert_eq!(token_only.mail_display(), "smtps://***@smtp.example.com:465");
    }

    #[test]
    fn tls_needs_both_files_and_makes_links_https() {
        let half = ConfigLayer {
            tls_cert: Some("/etc/entitle/cert.pem".into()),
            ..Default::default()
        };
        assert!(Config::from_layer(half).is_err());
        let both = ConfigLayer {
            tls_cert: Some("/etc/entitle/cert.pem".into()),
            tls_key: Some("/etc/entitle/key.pem".into()),
            ..Default::default()
        };
        assert_eq!(Config::from_layer(both).unwrap().public_url, "https://127.0.0.1:8080");
    }

    #[test]
    fn sender_domains_are_a_checked_list() {
        assert!(Config::from_layer(ConfigLayer::default())
            .unwrap()
            .mail_sender_domains
            .is_empty());
        let layer = ConfigLayer {
            mail_sender_domains: Some("Acme.example, initech.example".into()),
            ..Default::default()
        };
        assert_eq!(
            Config::from_layer(layer).unwrap().mail_sender_domains,
            ["acme.example", "initech.example"]
        );
        let layer = ConfigLayer {
            mail_sender_domains: Some("sales@acme.example".into()),
            ..Default::default()
        };
        assert!(Config::from_layer(layer).is_err());
    }
}
