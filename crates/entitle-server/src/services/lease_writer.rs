//! Group commit for lease refreshes, the most frequent write of the licensing API.
//!
//! Refreshes arriving together are written in one transaction: each caller hands its lease
//! extension to the writer and waits until the transaction holding it has committed, so an
//! answered refresh is durable (nothing is acknowledged before it is stored). On SQLite, whose
//! single writer would otherwise commit once per refresh, this multiplies refresh throughput.

use chrono::{DateTime, Utc};
use std::sync::Arc;
use tokio::sync::{mpsc, oneshot, Mutex};

use crate::store::licensing::{self as db, ActivationLogEntry};
use crate::store::{Store, StoreError, StoreResult};

/// The most refreshes written in one transaction.
const BATCH: usize = 256;

pub struct Extension {
    pub tenant_id: String,
    pub entitlement_id: String,
    pub activation_id: String,
    pub lease_expires_at: DateTime<Utc>,
    pub log: ActivationLogEntry,
}

/// `Err((message, unavailable))`: the batch failed, and whether the database was unreachable.
type Reply = oneshot::Sender<Result<bool, (String, bool)>>;
type Queue = Arc<Mutex<mpsc::Receiver<(Extension, Reply)>>>;

#[derive(Clone)]
pub struct LeaseWriter {
    sender: mpsc::Sender<(Extension, Reply)>,
}

impl LeaseWriter {
    /// Starts the writer task, supervised (a panic restarts it on the same queue; only the
    /// refreshes of the batch in hand fail); it ends once every `LeaseWriter` clone is dropped.
    pub fn start(store: Store, workers: Arc<crate::supervisor::Workers>) -> LeaseWriter {
        let (sender, receiver) = mpsc::channel(4 * BATCH);
        let queue: Queue = Arc::new(Mutex::new(receiver));
        crate::supervisor::supervise(workers, "lease_writer", None, move || {
            let (store, queue) = (store.clone(), queue.clone());
            async move {
                run(store, queue).await;
                Ok(())
            }
        });
        LeaseWriter { sender }
    }

    /// Extends a live activation's lease and logs the refresh; `false` if the activation had ended.
    pub async fn extend(&self, extension: Extension) -> StoreResult<bool> {
        let (reply, answer) = oneshot::channel();
        let closed = || StoreError::Other(anyhow::anyhow!("the lease writer has stopped"));
        self.sender.send((extension, reply)).await.map_err(|_| closed())?;
        answer.await.map_err(|_| closed())?.map_err(|(message, unavailable)| {
            if unavailable {
                StoreError::Unavailable(message)
            } else {
                StoreError::Other(anyhow::anyhow!(message))
            }
        })
    }
}

async fn run(store: Store, queue: Queue) {
    let mut receiver = queue.lock().await;
    let mut batch = Vec::with_capacity(BATCH);
    while receiver.recv_many(&mut batch, BATCH).await > 0 {
        crate::metrics::lease_batch(batch.len());
        match write(&store, &batch).await {
            Ok(live) => {
                for ((_, reply), live) in batch.drain(..).zip(live) {
                    let _ = reply.send(Ok(live));
                }
            }
            Err(error) => {
                tracing::error!(%error, refreshes = batch.len(), "could not write lease refreshes");
                for (_, reply) in batch.drain(..) {
                    let _ = reply.send(Err((error.to_string(), error.is_unavailable())));
                }
            }
        }
    }
}

async fn write(store: &Store, batch: &[(Extension, Reply)]) -> StoreResult<Vec<bool>> {
    let mut tx = store.begin().await?;
    let mut live = Vec::with_capacity(batch.len());
    for (extension, _) in batch {
        let extended = db::extend_lease(
            &mut tx,
            &extension.activation_id,
            extension.lease_expires_at,
            extension.log.created_at,
        )
        .await?;
        if extended {
            db::log(&mut tx, &extension.tenant_id, &extension.entitlement_id, &extension.log).await?;
        }
        live.push(extended);
    }
    tx.commit().await?;
    Ok(live)
}
