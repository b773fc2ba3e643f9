//! The background refresher: renews the lease before it expires, for as long as its handle lives.

use std::time::Duration;

use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::client::Client;

/// What the refresher has done so far.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RefreshStatus {
    /// Successful refreshes.
    pub refreshes: u64,
    /// The lease expiry after the last successful refresh (Unix seconds).
    pub lease_expires_at: Option<i64>,
    /// The last failure, cleared by the next success.
    pub last_error: Option<String>,
}

/// Keeps the background refresher running; dropping it stops the refresher.
#[derive(Debug)]
pub struct RefreshHandle {
    task: JoinHandle<()>,
    status: watch::Receiver<RefreshStatus>,
}

impl RefreshHandle {
    /// The refresher's status now.
    pub fn status(&self) -> RefreshStatus {
        self.status.borrow().clone()
    }

    /// Waits for the next refresh attempt, and returns the status after it.
    pub async fn changed(&mut self) -> RefreshStatus {
        // A closed channel means the task ended (the runtime is shutting down): report as is.
        let _ = self.status.changed().await;
        self.status.borrow_and_update().clone()
    }
}

impl Drop for RefreshHandle {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Client {
    /// Starts refreshing the lease in the background on the current Tokio runtime: when the
    /// schedule's fraction of the remaining lease has passed (by default at half-time), sooner
    /// again after a failure. Denials are applied as by [`Client::refresh`] (a revoked
    /// activation is forgotten). Offline (licence file) activations are left alone.
    ///
    /// Keep the handle for as long as the application runs: dropping it stops the refresher.
    pub fn spawn_refresher(&self) -> RefreshHandle {
        let (sender, status) = watch::channel(RefreshStatus::default());
        let client = self.clone();
        let task = tokio::spawn(async move {
            let mut failed = false;
            loop {
                tokio::time::sleep(client.next_refresh_delay(failed)).await;
                if !client.is_activated() || client.is_offline() {
                    continue;
                }
                let outcome = client.refresh().await;
                failed = outcome.is_err();
                sender.send_modify(|status| match outcome {
                    Ok(claims) => {
                        status.refreshes += 1;
                        status.lease_expires_at = Some(claims.exp);
                        status.last_error = None;
                    }
                    Err(error) => status.last_error = Some(error.to_string()),
                });
            }
        });
        RefreshHandle { task, status }
    }

    fn next_refresh_delay(&self, failed: bool) -> Duration {
        let schedule = self.config().refresh;
        match self.lease() {
            Ok(claims) => {
                let delay = schedule.delay(claims.exp - self.config().clock.now());
                if failed {
                    delay.min(schedule.retry_delay.max(schedule.min_delay))
                } else {
                    delay
                }
            }
            // Expired, suspended, unverifiable, not activated, clock set back: nothing to
            // schedule from, so look again at the retry pace.
            Err(_) => schedule.retry_delay,
        }
    }
}
