//! Runs the reminder scan inside `serve`: every few minutes, on every instance (the reminders'
//! primary key makes each one happen once, whichever instance gets there first).

use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::services::mail::MailSettings;
use crate::store::Store;

/// The first scan waits this long after start, so a restart loop cannot hammer the database.
const FIRST_AFTER: Duration = Duration::from_secs(60);
const EVERY: Duration = Duration::from_secs(300);

pub fn spawn(store: Store, settings: Arc<MailSettings>, mut shutdown: watch::Receiver<bool>) -> JoinHandle<()> {
    tokio::spawn(async move {
        let mut wait = FIRST_AFTER;
        loop {
            tokio::select! {
                _ = tokio::time::sleep(wait) => {}
                _ = shutdown.changed() => break,
            }
            if *shutdown.borrow() {
                break;
            }
            wait = EVERY;
            match crate::services::reminders::scan(&store, &settings, crate::services::now()).await {
                Ok(report) if report.sent + report.skipped > 0 => {
                    tracing::info!(sent = report.sent, skipped = report.skipped, "expiry reminders handled")
                }
                Ok(_) => {}
                Err(error) => tracing::warn!(%error, "the reminder scan failed"),
            }
        }
    })
}
