//! Idempotent management writes: a request sent with an `Idempotency-Key` runs once per key;
//! its retries get the first answer, from whichever instance they reach.

use chrono::{DateTime, Utc};

use super::ServiceResult;
use crate::domain::idempotency::{self as rules, IdempotencyKey, Recorded, Verdict};
use crate::domain::ids;
use crate::store::idempotency::{self as db, NewClaim};
use crate::store::Store;

pub use db::{Answer, Scope};

/// The right to run a request under a key, to be settled with [`finish`].
pub struct Claim {
    scope: Scope,
    key: IdempotencyKey,
    token: String,
}

/// What to do with a request that carries a key.
pub enum Begin {
    /// Run it, then [`finish`] with its answer.
    Run(Claim),
    /// Send this stored answer again.
    Replay(Answer),
    /// The same request is running: the client should retry shortly.
    InProgress,
    /// The key was used for another request.
    Reused,
}

pub async fn begin(
    store: &Store,
    scope: Scope,
    key: IdempotencyKey,
    request_hash: &str,
    now: DateTime<Utc>,
) -> ServiceResult<Begin> {
    let now = now.timestamp_millis();
    let token = ids::new_id("idem");
    let claimed = {
        let mut conn = store.write_conn().await?;
        let claim = NewClaim {
            key: key.as_str(),
            request_hash,
            claim: &token,
            now,
            lease_until: now + rules::LEASE_MS,
            expired_before: now - rules::RETENTION_MS,
        };
        db::claim(&mut conn, &scope, &claim).await?
    };
    if claimed {
        return Ok(Begin::Run(Claim { scope, key, token }));
    }
    let row = db::find(&mut *store.read().await?, &scope, key.as_str()).await?;
    // Gone between the two statements (purged or released): the client's retry will claim it.
    let Some(row) = row else {
        return Ok(Begin::InProgress);
    };
    let recorded = match &row.answer {
        Some(_) => Recorded::Completed {
            request_hash: row.request_hash.clone(),
        },
        None => Recorded::InProgress {
            request_hash: row.request_hash.clone(),
        },
    };
    Ok(match (rules::verdict(&recorded, request_hash), row.answer) {
        (Verdict::Replay, Some(answer)) => Begin::Replay(answer),
        (Verdict::Reused, _) => Begin::Reused,
        (Verdict::Replay | Verdict::InProgress, _) => Begin::InProgress,
    })
}

/// Settles a claim: keeps the answer for replay, or (`None`: a server error, or an answer that
/// cannot be kept) gives the key up so the next retry runs the request again.
pub async fn finish(store: &Store, claim: Claim, answer: Option<Answer>) -> ServiceResult<()> {
    let mut conn = store.write_conn().await?;
    match answer {
        Some(answer) => {
            let kept = db::complete(&mut conn, &claim.scope, claim.key.as_str(), &claim.token, &answer).await?;
            if !kept {
                tracing::warn!("an idempotent request outlived its lease; its answer was not kept");
            }
        }
        None => db::release(&mut conn, &claim.scope, claim.key.as_str(), &claim.token).await?,
    }
    Ok(())
}

/// Forgets keys past their retention, in one bounded batch.
pub async fn purge(store: &Store, now: DateTime<Utc>) -> ServiceResult<u64> {
    let before = now.timestamp_millis() - rules::RETENTION_MS;
    Ok(db::purge(&mut *store.write_conn().await?, before, 1000).await?)
}
