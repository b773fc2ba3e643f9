//! Password hashing on a bounded pool. Argon2 takes ~19 MiB and tens of milliseconds per hash by
//! design; run unbounded, a burst of sign-in attempts takes the process to gigabytes. Hashes run
//! on [`THREADS`] long-lived threads of their own (not the blocking pool: every thread that
//! allocates argon2's block keeps its own malloc arena, so hundreds of short-lived blocking
//! threads would keep hundreds of megabytes), at most [`MAX_WAITING`] wait in line, and none
//! waits longer than [`QUEUE_DEADLINE`]: beyond that the caller is told to come back (503 with
//! `Retry-After`), so memory stays bounded whatever arrives.

use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};
use tokio::sync::{mpsc, oneshot};

use super::{ServiceError, ServiceResult};

const THREADS: usize = 2;
const MAX_WAITING: usize = 64;
const QUEUE_DEADLINE: Duration = Duration::from_secs(3);
/// What a refused caller is told to wait.
pub const RETRY_AFTER_SECONDS: u64 = 2;

struct Job {
    deadline: Instant,
    run: Box<dyn FnOnce() + Send>,
}

fn queue() -> &'static mpsc::Sender<Job> {
    static QUEUE: OnceLock<mpsc::Sender<Job>> = OnceLock::new();
    QUEUE.get_or_init(|| {
        let (sender, receiver) = mpsc::channel::<Job>(MAX_WAITING);
        let receiver = std::sync::Arc::new(Mutex::new(receiver));
        for n in 0..THREADS {
            let receiver = receiver.clone();
            let spawned = std::thread::Builder::new()
                .name(format!("password-hashing-{n}"))
                .spawn(move || loop {
                    let job = {
                        let mut receiver = receiver.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
                        receiver.blocking_recv()
                    };
                    let Some(job) = job else { break };
                    // A job that waited past its deadline is dropped: its caller is told to retry.
                    if Instant::now() <= job.deadline {
                        (job.run)();
                    }
                });
            if let Err(error) = spawned {
                tracing::error!(%error, "starting a password hashing thread failed");
            }
        }
        sender
    })
}

fn busy() -> ServiceError {
    ServiceError::Busy {
        retry_after_seconds: RETRY_AFTER_SECONDS,
    }
}

/// Runs `work` (a password hash or verification) on the bounded pool.
pub async fn run<T: Send + 'static>(work: impl FnOnce() -> T + Send + 'static) -> ServiceResult<T> {
    let (reply, answer) = oneshot::channel();
    let job = Job {
        deadline: Instant::now() + QUEUE_DEADLINE,
        run: Box::new(move || {
            let _ = reply.send(work());
        }),
    };
    queue().try_send(job).map_err(|_| busy())?;
    answer.await.map_err(|_| busy())
}
