//! Mail throughput: how many queued credentials mails one instance hands to a loopback SMTP relay
//! per second. The outbox is filled first, then the server starts and drains it; the figure is
//! mails accepted by the relay per second of draining.

use anyhow::Context;
use entitle_server::config::{Config, ConfigLayer};
use entitle_server::services::{self, Actor, Ctx};
use entitle_server::Application;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpListener;

/// The target on the 2-core development machine.
pub const TARGET_PER_SECOND: f64 = 400.0;

pub struct MailOutcome {
    pub mails: usize,
    pub per_second: f64,
    pub concurrency: usize,
}

/// A minimal relay on loopback that accepts everything and counts messages (one task per
/// connection, one write per answer).
async fn relay(accepted: Arc<AtomicUsize>) -> anyhow::Result<u16> {
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let port = listener.local_addr()?.port();
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let accepted = accepted.clone();
            tokio::spawn(async move {
                let _ = stream.set_nodelay(true);
                let (read, mut write) = stream.into_split();
                let mut lines = BufReader::new(read);
                let mut line = String::new();
                let mut in_data = false;
                write.write_all(b"220 bench relay\r\n").await?;
                loop {
                    line.clear();
                    if lines.read_line(&mut line).await? == 0 {
                        return Ok::<(), std::io::Error>(());
                    }
                    if in_data {
                        if line == ".\r\n" {
                            in_data = false;
                            accepted.fetch_add(1, Ordering::Relaxed);
                            write.write_all(b"250 queued\r\n").await?;
                        }
                        continue;
                    }
                    let upper = line.to_ascii_uppercase();
                    let answer: &[u8] = if upper.starts_with("EHLO") {
                        b"250-bench\r\n250-8BITMIME\r\n250 SMTPUTF8\r\n"
                    } else if upper.starts_with("DATA") {
                        in_data = true;
                        b"354 go ahead\r\n"
                    } else if upper.starts_with("QUIT") {
                        write.write_all(b"221 bye\r\n").await?;
                        return Ok(());
                    } else {
                        b"250 OK\r\n"
                    };
                    write.write_all(answer).await?;
                }
            });
        }
    });
    Ok(port)
}

/// Queues `mails` credentials mails, then starts the server and times the drain.
pub async fn throughput(database_url: Option<String>, mails: usize, concurrency: usize) -> anyhow::Result<MailOutcome> {
    let accepted = Arc::new(AtomicUsize::new(0));
    let port = relay(accepted.clone()).await?;
    let data_dir = std::env::temp_dir().join(format!("entitle-bench-mail-{}", std::process::id()));
    let config = Config::from_layer(ConfigLayer {
        listen: Some("127.0.0.1:0".parse()?),
        data_dir: Some(data_dir.clone()),
        database_url,
        smtp_url: Some(format!("smtp://127.0.0.1:{port}")),
        mail_concurrency: Some(concurrency),
        ..Default::default()
    })?;
    let settings = entitle_server::app::mail_settings(&config);
    let app = Application::build(config).await?;
    let store = app.store().clone();
    let seeded = entitle_server::demo::seed(&store, &settings).await?;
    let ctx = Ctx {
        tenant_id: seeded.tenant_id.clone(),
        actor: Actor::system(),
        now: services::now(),
    };
    for n in 0..mails {
        let input = services::mail::ResendCredentials {
            to: Some(entitle_server::domain::Email::parse(format!("buyer{n}@bench.example"))?),
        };
        services::mail::resend_credentials(&store, &ctx, &settings, &seeded.entitlement.id, input)
            .await
            .map_err(|e| anyhow::anyhow!("queueing a mail: {e}"))?;
    }
    let queued: i64 = {
        use sqlx::Row;
        let mut conn = store.read().await?;
        sqlx::query("SELECT COUNT(*) AS queued FROM mail_outbox WHERE status = 'queued'")
            .fetch_one(&mut *conn)
            .await?
            .try_get("queued")?
    };
    let queued = usize::try_from(queued)?;
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let started = Instant::now();
    let server = tokio::spawn(app.run_until(async {
        let _ = stopped.await;
    }));
    while accepted.load(Ordering::Relaxed) < queued {
        anyhow::ensure!(started.elapsed() < Duration::from_secs(300), "the outbox did not drain");
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    let elapsed = started.elapsed();
    let _ = stop.send(());
    server.await.context("the server task")??;
    let _ = std::fs::remove_dir_all(&data_dir);
    Ok(MailOutcome {
        mails: queued,
        per_second: queued as f64 / elapsed.as_secs_f64(),
        concurrency,
    })
}
