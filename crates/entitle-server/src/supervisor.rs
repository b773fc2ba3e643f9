//! Supervision of the background workers inside `serve` (lease writer, mail worker,
//! housekeeping…): a worker that panics or fails is restarted with exponential backoff, each
//! restart is counted (`entitle_worker_restarts_total{worker}`), and while one is down `/readyz`
//! answers 503, so a balancer sends traffic to an instance whose workers run.
//!
//! A worker that finishes with `Ok(())` has stopped on purpose (shutdown, or nothing left to
//! serve) and is not restarted.

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::watch;
use tokio::task::{JoinError, JoinHandle};

pub const WORKER_RESTARTS: &str = "entitle_worker_restarts_total";
pub const WORKER_UP: &str = "entitle_worker_up";

/// The first restart's delay; each next one doubles, up to [`MAX_BACKOFF`].
const FIRST_BACKOFF: Duration = Duration::from_millis(100);
const MAX_BACKOFF: Duration = Duration::from_secs(30);
/// A worker that ran this long before failing starts its backoff over.
const HEALTHY_AFTER: Duration = Duration::from_secs(60);

/// Which workers are down now, and why; shared by the supervisors and `/readyz`.
#[derive(Debug, Default)]
pub struct Workers {
    down: Mutex<BTreeMap<&'static str, String>>,
}

impl Workers {
    /// The workers down now, with their last failure.
    pub fn down(&self) -> Vec<(&'static str, String)> {
        match self.down.lock() {
            Ok(down) => down.iter().map(|(name, why)| (*name, why.clone())).collect(),
            // A panic while holding this lock cannot leave the map half-written; read it anyway.
            Err(poisoned) => poisoned
                .into_inner()
                .iter()
                .map(|(name, why)| (*name, why.clone()))
                .collect(),
        }
    }

    fn set(&self, name: &'static str, failure: Option<String>) {
        let mut down = self.down.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        metrics::gauge!(WORKER_UP, "worker" => name).set(if failure.is_some() { 0.0 } else { 1.0 });
        match failure {
            Some(why) => down.insert(name, why),
            None => down.remove(name),
        };
    }
}

/// The delay before restart number `failures` (1-based) of a worker failing in a row.
pub fn backoff(failures: u32) -> Duration {
    FIRST_BACKOFF
        .saturating_mul(1u32 << failures.saturating_sub(1).min(16))
        .min(MAX_BACKOFF)
}

/// What a panic said, for the log and readiness.
pub fn panic_message(error: JoinError) -> String {
    if !error.is_panic() {
        return error.to_string();
    }
    let payload = error.into_panic();
    let text = payload
        .downcast_ref::<&str>()
        .map(|s| (*s).to_owned())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "a panic without a message".to_owned());
    format!("panicked: {text}")
}

/// Awaits a task spawned elsewhere as a worker outcome: its panic becomes an error.
pub async fn joined(task: JoinHandle<()>) -> anyhow::Result<()> {
    task.await.map_err(|error| anyhow::anyhow!(panic_message(error)))
}

/// Runs `start()` as worker `name`, starting it again after every failure or panic until it
/// finishes with `Ok(())`. While waiting to restart, `shutdown` (when given) ends the
/// supervision at once.
pub fn supervise<F, Fut>(
    workers: Arc<Workers>,
    name: &'static str,
    shutdown: Option<watch::Receiver<bool>>,
    mut start: F,
) -> JoinHandle<()>
where
    F: FnMut() -> Fut + Send + 'static,
    Fut: Future<Output = anyhow::Result<()>> + Send + 'static,
{
    tokio::spawn(async move {
        workers.set(name, None);
        let mut failures = 0u32;
        loop {
            let started = Instant::now();
            let why = match tokio::spawn(start()).await {
                Ok(Ok(())) => return,
                Ok(Err(error)) => format!("{error:#}"),
                // Cancelled: the runtime is shutting down.
                Err(error) if error.is_cancelled() => return,
                Err(error) => panic_message(error),
            };
            if started.elapsed() >= HEALTHY_AFTER {
                failures = 0;
            }
            failures = failures.saturating_add(1);
            let delay = backoff(failures);
            workers.set(name, Some(why.clone()));
            metrics::counter!(WORKER_RESTARTS, "worker" => name).increment(1);
            tracing::error!(worker = name, error = %why, restart_in_ms = delay.as_millis() as u64, "background worker stopped; restarting it");
            let stopping = async {
                match shutdown.clone() {
                    Some(mut stop) => {
                        let _ = stop.wait_for(|stop| *stop).await;
                    }
                    None => std::future::pending::<()>().await,
                }
            };
            tokio::select! {
                _ = tokio::time::sleep(delay) => {}
                _ = stopping => {
                    workers.set(name, None);
                    return;
                }
            }
            workers.set(name, None);
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicU32, Ordering};

    #[test]
    fn backoff_doubles_up_to_a_ceiling() {
        assert_eq!(backoff(1), Duration::from_millis(100));
        assert_eq!(backoff(2), Duration::from_millis(200));
        assert_eq!(backoff(4), Duration::from_millis(800));
        assert_eq!(backoff(40), MAX_BACKOFF);
    }

    #[tokio::test]
    async fn a_panicking_worker_is_restarted_and_reported_down_meanwhile() {
        let workers = Arc::new(Workers::default());
        let runs = Arc::new(AtomicU32::new(0));
        let (release, released) = watch::channel(false);
        let counted = runs.clone();
        let supervisor = supervise(workers.clone(), "flaky", None, move || {
            let run = counted.fetch_add(1, Ordering::SeqCst);
            let mut released = released.clone();
            async move {
                match run {
                    0 => panic!("first run dies"),
                    1 => anyhow::bail!("second run fails"),
                    // The third run works until released, then stops on purpose.
                    _ => {
                        let _ = released.wait_for(|go| *go).await;
                        Ok(())
                    }
                }
            }
        });
        let mut seen_down = Vec::new();
        let deadline = Instant::now() + Duration::from_secs(5);
        while runs.load(Ordering::SeqCst) < 3 && Instant::now() < deadline {
            seen_down.extend(workers.down());
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        assert_eq!(
            runs.load(Ordering::SeqCst),
            3,
            "restarted after a panic and after an error"
        );
        assert!(
            seen_down
                .iter()
                .any(|(name, why)| *name == "flaky" && why.contains("first run dies")),
            "{seen_down:?}"
        );
        assert!(seen_down.iter().any(|(_, why)| why.contains("second run fails")));
        tokio::time::sleep(Duration::from_millis(20)).await;
        assert!(workers.down().is_empty(), "up again once restarted");
        release.send(true).unwrap();
        tokio::time::timeout(Duration::from_secs(5), supervisor)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(
            runs.load(Ordering::SeqCst),
            3,
            "a worker that finishes is not restarted"
        );
    }

    #[tokio::test]
    async fn shutdown_ends_the_wait_for_a_restart() {
        let workers = Arc::new(Workers::default());
        let (stop, stopped) = watch::channel(false);
        let supervisor = supervise(workers.clone(), "broken", Some(stopped), || async {
            anyhow::bail!("always fails")
        });
        tokio::time::sleep(Duration::from_millis(50)).await;
        stop.send(true).unwrap();
        tokio::time::timeout(Duration::from_secs(1), supervisor)
            .await
            .unwrap()
            .unwrap();
        assert!(workers.down().is_empty());
    }
}
