//! The `entitle` command line.

use anyhow::Context;
use clap::{Parser, Subcommand};
use secrecy::ExposeSecret;
use std::io::Write;
use std::path::PathBuf;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::config::{Config, ConfigLayer};
use crate::domain::Name;
use crate::store::Store;
use crate::{demo, services, Application};

#[derive(Debug, Parser)]
#[command(name = "entitle", version, about = "Self-hosted entitlement and licensing server")]
pub struct Cli {
    /// A TOML file with settings (flags and environment variables win over it).
    #[arg(long, env = "ENTITLE_CONFIG", global = true)]
    pub config: Option<PathBuf>,
    /// How log lines are written: `text`, or `json` (one object a line).
    #[arg(long, env = "ENTITLE_LOG_FORMAT", global = true, value_enum, default_value_t)]
    pub log_format: crate::telemetry::LogFormat,
    #[command(flatten)]
    pub settings: ConfigLayer,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the server.
    Serve,
    /// Manage tenants (software vendors).
    Tenant {
        #[command(subcommand)]
        command: TenantCommand,
    },
    /// Manage the vendor's staff, who use the admin console.
    Staff {
        #[command(subcommand)]
        command: StaffCommand,
    },
    /// Seed a demo tenant with a good / better / best catalogue and print what to try.
    Demo,
    /// Exit 0 if the server at the configured address answers /healthz.
    Healthcheck,
    /// Send a test mail through the configured transport, to check the mail set-up.
    SendTestEmail {
        #[arg(long)]
        to: String,
    },
}

#[derive(Debug, Subcommand)]
pub enum TenantCommand {
    /// Create a tenant; prints its id and first admin API key as JSON.
    Create {
        #[arg(long)]
        name: String,
    },
}

#[derive(Debug, Subcommand)]
pub enum StaffCommand {
    /// Add a staff member; prints their id and a one-time link to choose a password, as JSON.
    Create {
        #[arg(long)]
        tenant: String,
        #[arg(long)]
        email: String,
        /// `admin`, `support` or `viewer`.
        #[arg(long)]
        role: String,
    },
}

pub async fn run(cli: Cli) -> anyhow::Result<()> {
    let mut settings = cli.settings;
    // From the environment only: a flag would show the key to anyone running `ps`.
    settings.master_key = std::env::var("ENTITLE_MASTER_KEY").ok();
    let config = Config::load(cli.config.as_deref(), settings)?;
    match cli.command {
        Command::Serve => serve(config).await,
        Command::Tenant {
            command: TenantCommand::Create { name },
        } => {
            let name = Name::parse(name)?;
            let store = Store::open_with(config.database_url.expose_secret(), config.store_settings()?).await?;
            let created = services::tenants::create(&store, &name).await?;
            let out = serde_json::json!({
                "tenant_id": created.tenant.id,
                "api_key": created.admin_key.expose_secret(),
            });
            writeln!(std::io::stdout(), "{out:#}")?;
            store.close().await;
            Ok(())
        }
        Command::Staff {
            command: StaffCommand::Create { tenant, email, role },
        } => {
            let role = crate::domain::staff::StaffRole::parse(&role)
                .with_context(|| format!("role {role:?}: use admin, support or viewer"))?;
            let store = Store::open_with(config.database_url.expose_secret(), config.store_settings()?).await?;
            let (member, link) = services::staff::create(&store, &config.public_url, &tenant, &email, role).await?;
            let out = serde_json::json!({
                "staff_id": member.id,
                "email": member.email.as_str(),
                "role": role.as_str(),
                "set_password_url": link,
                "console_url": format!("{}/admin/{tenant}", config.public_url),
            });
            writeln!(std::io::stdout(), "{out:#}")?;
            store.close().await;
            Ok(())
        }
        Command::Demo => {
            let store = Store::open_with(config.database_url.expose_secret(), config.store_settings()?).await?;
            let seeded = demo::seed(&store, &crate::app::mail_settings(&config)).await?;
            writeln!(std::io::stdout(), "{}", demo::instructions(&seeded, &config.public_url))?;
            store.close().await;
            Ok(())
        }
        Command::Healthcheck => healthcheck(&config).await,
        Command::SendTestEmail { to } => send_test_email(&config, &to).await,
    }
}

async fn send_test_email(config: &Config, to: &str) -> anyhow::Result<()> {
    let to = crate::domain::Email::parse(to)?;
    let smtp_url = config.smtp_url.as_ref().map(|url| url.expose_secret().to_owned());
    let transport =
        crate::mail::Transport::from_settings(smtp_url.as_deref(), config.smtp_ca_file.as_deref(), config.mail_dir())?;
    let now = crate::services::now();
    let mail = crate::store::mail::OutboxMail {
        id: crate::domain::ids::new_id("mail"),
        tenant_id: String::new(),
        kind: "test".into(),
        recipient: to.to_string(),
        from_name: "Entitle".into(),
        from_address: config.mail_from.clone(),
        subject: Some("Entitle test mail".into()),
        text_body: format!(
            "This test mail was sent by `entitle send-test-email` via {}.\n",
            config.mail_display()
        ),
        html_body: format!(
            "<p>This test mail was sent by <code>entitle send-test-email</code> via {}.</p>",
            config.mail_display()
        ),
        entitlement_id: None,
        customer_id: None,
        status: "sending".into(),
        attempts: 1,
        next_attempt_at: now,
        last_error: None,
        created_at: now,
        sent_at: None,
        render_context: None,
    };
    let message = crate::mail::transport::message(&mail, "entitle.invalid")?;
    let mut connection = crate::mail::transport::Connection::default();
    transport
        .send(&mut connection, &mail.id, &message)
        .await
        .map_err(|e| anyhow::anyhow!("sending failed: {e}"))?;
    writeln!(
        std::io::stdout(),
        "sent a test mail to {to} via {}",
        config.mail_display()
    )?;
    Ok(())
}

async fn serve(config: Config) -> anyhow::Result<()> {
    tracing::info!(
        data_dir = %config.data_dir.display(),
        database = %config.database_display(),
        mail = %config.mail_display(),
        "starting"
    );
    let app = Application::build(config).await?;
    tracing::info!(address = %app.local_addr(), "listening");
    app.run_until(shutdown_signal()).await?;
    tracing::info!("stopped");
    Ok(())
}

/// Ctrl-C or SIGTERM.
async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = terminate => {},
    }
    tracing::info!("shutting down");
}

/// A dependency-free HTTP/1.1 probe, for container health checks.
async fn healthcheck(config: &Config) -> anyhow::Result<()> {
    let mut address = config.listen;
    if address.ip().is_unspecified() {
        address.set_ip(std::net::Ipv4Addr::LOCALHOST.into());
    }
    let probe = async {
        let mut stream = tokio::net::TcpStream::connect(address).await?;
        stream
            .write_all(b"GET /healthz HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
            .await?;
        let mut response = Vec::new();
        stream.read_to_end(&mut response).await?;
        Ok::<_, std::io::Error>(response)
    };
    let response = tokio::time::timeout(std::time::Duration::from_secs(5), probe)
        .await
        .context("timed out")?
        .with_context(|| format!("connecting to {address}"))?;
    anyhow::ensure!(response.starts_with(b"HTTP/1.1 200"), "unhealthy answer from {address}");
    writeln!(std::io::stdout(), "ok")?;
    Ok(())
}
