//! Outbox workers: one design for every effect outside our database (mail today; outgoing
//! webhooks and reminders can plug in the same way).
//!
//! A row is written in the same transaction as its cause. A worker runs a fixed number of lanes
//! (its concurrency); each lane claims ONE due row just before working on it, with a lease longer
//! than the worst attempt ([`Outbox::LEASE`] > the outbox's own time limit on one attempt), works
//! on it, and records the outcome. A crash therefore strands only the rows in flight, at most one
//! per lane, and those go out again when their lease lapses — or at once when the same instance
//! restarts, since claims name the instance ([`Outbox::release_own`]).
//!
//! Lanes sleep until something is queued on this instance (a [`Notify`]), the next row falls due,
//! or the poll interval passes (rows queued by other instances). A lane that found work wakes one
//! more, so a burst fans out to every lane within a few claims.
//!
//! The outgoing-webhook and reminder workers below predate this trait and poll on their own loop;
//! folding them into it is the next step.

pub mod reminders;
pub mod webhooks;

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{watch, Notify};
use tokio::task::JoinHandle;

/// A queue of work that lanes claim one row at a time.
pub trait Outbox: Send + Sync + 'static {
    /// One claimed row.
    type Job: Send;
    /// What a lane keeps between jobs (an open SMTP connection, an HTTP client…).
    type Lane: Send + 'static;

    /// The worker's name in logs.
    const NAME: &'static str;

    fn new_lane(&self) -> Self::Lane;

    /// Gives back this instance's claims left by a crashed predecessor (called once, at start).
    fn release_own(&self) -> impl Future<Output = anyhow::Result<u64>> + Send;

    /// Claims the row due soonest, if any is due.
    fn claim(&self) -> impl Future<Output = anyhow::Result<Option<Self::Job>>> + Send;

    /// Works on a claimed row and records the outcome (sent, retry later, failed for good).
    fn work(&self, lane: &mut Self::Lane, job: Self::Job) -> impl Future<Output = anyhow::Result<()>> + Send;

    /// How long to sleep at most before looking again (until the next row falls due).
    fn idle_wait(&self) -> impl Future<Output = Duration> + Send;

    /// Called once per lane when the worker stops (closes connections politely).
    fn close_lane(&self, lane: Self::Lane) -> impl Future<Output = ()> + Send;
}

/// Runs `concurrency` lanes over `outbox` until `shutdown` turns true; each lane finishes the job
/// it is on first.
pub fn spawn<O: Outbox>(
    outbox: Arc<O>,
    concurrency: usize,
    signal: Arc<Notify>,
    shutdown: watch::Receiver<bool>,
) -> JoinHandle<()> {
    tokio::spawn(async move {
        match outbox.release_own().await {
            Ok(0) => {}
            Ok(released) => tracing::info!(
                worker = O::NAME,
                released,
                "took back claims of this instance's predecessor"
            ),
            Err(error) => tracing::warn!(worker = O::NAME, %error, "taking back this instance's old claims failed"),
        }
        let lanes: Vec<_> = (0..concurrency.max(1))
            .map(|_| tokio::spawn(supervised_lane(outbox.clone(), signal.clone(), shutdown.clone())))
            .collect();
        for lane in lanes {
            let _ = lane.await;
        }
        tracing::info!(worker = O::NAME, "worker stopped");
    })
}

/// A lane that panicked (a bug) is started again after a pause; its claim lapses with its lease.
async fn supervised_lane<O: Outbox>(outbox: Arc<O>, signal: Arc<Notify>, shutdown: watch::Receiver<bool>) {
    loop {
        let run = tokio::spawn(lane(outbox.clone(), signal.clone(), shutdown.clone()));
        match run.await {
            Err(error) if error.is_panic() && !*shutdown.borrow() => {
                tracing::error!(worker = O::NAME, %error, "a worker lane panicked; starting it again");
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
            _ => return,
        }
    }
}

async fn lane<O: Outbox>(outbox: Arc<O>, signal: Arc<Notify>, mut shutdown: watch::Receiver<bool>) {
    let mut state = outbox.new_lane();
    loop {
        if *shutdown.borrow() {
            break;
        }
        let wait = match outbox.claim().await {
            Ok(Some(job)) => {
                // More may be due: let another lane look while this one works.
                signal.notify_one();
                if let Err(error) = outbox.work(&mut state, job).await {
                    tracing::error!(
                        worker = O::NAME,
                        error = format!("{error:#}"),
                        "recording an outcome failed"
                    );
                }
                continue;
            }
            Ok(None) => outbox.idle_wait().await,
            Err(error) => {
                tracing::error!(worker = O::NAME, error = format!("{error:#}"), "claiming work failed");
                Duration::from_secs(1)
            }
        };
        tokio::select! {
            _ = signal.notified() => {}
            _ = tokio::time::sleep(wait) => {}
            _ = shutdown.changed() => {}
        }
    }
    outbox.close_lane(state).await;
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::VecDeque;
    use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
    use std::sync::Mutex;

    /// An in-memory queue: the worker's scheduling is what is under test here.
    #[derive(Default)]
    struct Queue {
        jobs: Mutex<VecDeque<u32>>,
        active: AtomicUsize,
        peak: AtomicUsize,
        done: Mutex<Vec<u32>>,
        released: AtomicBool,
        closed: AtomicUsize,
    }

    impl Outbox for Queue {
        type Job = u32;
        type Lane = ();
        const NAME: &'static str = "test";

        fn new_lane(&self) {}

        async fn release_own(&self) -> anyhow::Result<u64> {
            self.released.store(true, Ordering::SeqCst);
            Ok(0)
        }

        async fn claim(&self) -> anyhow::Result<Option<u32>> {
            Ok(self.jobs.lock().unwrap().pop_front())
        }

        async fn work(&self, _lane: &mut (), job: u32) -> anyhow::Result<()> {
            assert_ne!(job, 7, "job 7 is a bug");
            let now = self.active.fetch_add(1, Ordering::SeqCst) + 1;
            self.peak.fetch_max(now, Ordering::SeqCst);
            tokio::time::sleep(Duration::from_millis(10)).await;
            self.active.fetch_sub(1, Ordering::SeqCst);
            self.done.lock().unwrap().push(job);
            Ok(())
        }

        async fn idle_wait(&self) -> Duration {
            Duration::from_millis(20)
        }

        async fn close_lane(&self, _lane: ()) {
            self.closed.fetch_add(1, Ordering::SeqCst);
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn lanes_bound_the_concurrency_survive_a_panic_and_stop_on_shutdown() {
        let queue = Arc::new(Queue::default());
        let (stop, stopped) = watch::channel(false);
        let signal = Arc::new(Notify::new());
        let worker = spawn(queue.clone(), 4, signal.clone(), stopped);
        let wait_until_done = |count: usize| {
            let queue = queue.clone();
            async move {
                for _ in 0..300 {
                    if queue.done.lock().unwrap().len() == count {
                        break;
                    }
                    tokio::time::sleep(Duration::from_millis(10)).await;
                }
            }
        };
        queue.jobs.lock().unwrap().extend(0..40);
        signal.notify_one();
        wait_until_done(39).await;
        // The lane that panicked is back after its pause: four lanes work the next backlog.
        tokio::time::sleep(Duration::from_millis(1500)).await;
        queue.jobs.lock().unwrap().extend(40..60);
        signal.notify_one();
        wait_until_done(59).await;
        let mut done = queue.done.lock().unwrap().clone();
        done.sort_unstable();
        assert_eq!(done, (0..60).filter(|n| *n != 7).collect::<Vec<_>>());
        assert_eq!(
            queue.peak.load(Ordering::SeqCst),
            4,
            "at most (and, with a backlog, exactly) 4 at once"
        );
        assert!(queue.released.load(Ordering::SeqCst));
        stop.send(true).unwrap();
        tokio::time::timeout(Duration::from_secs(2), worker)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(
            queue.closed.load(Ordering::SeqCst),
            4,
            "every lane closed its connection"
        );
    }
}
