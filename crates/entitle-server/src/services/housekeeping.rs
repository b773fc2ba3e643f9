//! Periodic clean-up inside `serve`: forgets what is only kept for a while (attempt budgets,
//! ended web sessions, used or expired sign-in links, idempotency keys older than a day, the
//! bodies of mails past their retention, and `.eml` files as old).
//! Each round deletes in bounded batches so the writer is never held for long.

use std::time::Duration;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::store::Store;

const EVERY: Duration = Duration::from_secs(60);

/// The `.eml` files of the file mail transport, and how long they are kept.
#[derive(Debug, Clone)]
pub struct MailFiles {
    pub dir: std::path::PathBuf,
    pub retention: Duration,
}

pub fn spawn(store: Store, mail_files: Option<MailFiles>, mut shutdown: watch::Receiver<bool>) -> JoinHandle<()> {
    tokio::spawn(async move {
        let mut ticks: u64 = 0;
        loop {
            tokio::select! {
                _ = tokio::time::sleep(EVERY) => {}
                _ = shutdown.changed() => break,
            }
            if *shutdown.borrow() {
                break;
            }
            match super::attempts::purge(&store, super::now()).await {
                Ok(0) => {}
                Ok(purged) => tracing::debug!(purged, "forgot old attempt budgets"),
                Err(error) => tracing::warn!(%error, "purging attempt budgets failed"),
            }
            // Every ten minutes, and on the first round: the dashboard's tenant-wide seat counts.
            if ticks.is_multiple_of(10) {
                if let Err(error) = super::console::sample_seats(&store, super::now()).await {
                    tracing::warn!(%error, "sampling seats in use failed");
                }
            }
            ticks += 1;
            match super::sessions::purge(&store, super::now()).await {
                Ok(0) => {}
                Ok(purged) => tracing::debug!(purged, "forgot ended web sessions and sign-in links"),
                Err(error) => tracing::warn!(%error, "purging web sessions failed"),
            }
            match super::idempotency::purge(&store, super::now()).await {
                Ok(0) => {}
                Ok(purged) => tracing::debug!(purged, "forgot old idempotency keys"),
                Err(error) => tracing::warn!(%error, "purging idempotency keys failed"),
            }
            match super::mail::purge_bodies(&store, super::now()).await {
                Ok(0) => {}
                Ok(purged) => tracing::debug!(purged, "emptied the bodies of mails past their retention"),
                Err(error) => tracing::warn!(%error, "purging mail bodies failed"),
            }
            if let Some(files) = &mail_files {
                let dir = files.dir.clone();
                let cutoff = std::time::SystemTime::now().checked_sub(files.retention);
                let purged = tokio::task::spawn_blocking(move || match cutoff {
                    Some(cutoff) => crate::mail::transport::purge_files(&dir, cutoff),
                    None => Ok(0),
                })
                .await;
                match purged {
                    Ok(Ok(0)) => {}
                    Ok(Ok(purged)) => tracing::debug!(purged, "deleted mail files past their retention"),
                    Ok(Err(error)) => tracing::warn!(%error, "deleting old mail files failed"),
                    Err(error) => tracing::warn!(%error, "deleting old mail files failed"),
                }
            }
        }
    })
}
