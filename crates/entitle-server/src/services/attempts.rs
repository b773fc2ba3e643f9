//! Budgets of failed credential attempts (activation codes, end-user passwords, portal sign-in).
//!
//! An attempt is admitted against each budget it draws on *before* the credential is evaluated,
//! atomically in the database: failures plus attempts in flight never exceed the limit. So
//! concurrent guesses cannot all slip through before the first failure is counted, the limits
//! hold across instances sharing a PostgreSQL database, and every budget is scoped to one tenant,
//! so one tenant's callers can never lock out another's. A legitimate attempt leaves no trace;
//! legitimate bursts (many machines activating at once) wait briefly for a place instead.

use chrono::{DateTime, Utc};
use std::net::IpAddr;
use std::time::Duration;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use super::ServiceResult;
use crate::store::budgets as db;
use crate::store::{millis, Store};

/// One budget an attempt draws on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Budget {
    scope: String,
    limit: i64,
    window: Duration,
}

/// Failed attempts one address may make against one tenant per minute.
const PER_ADDRESS: (i64, Duration) = (10, Duration::from_secs(60));
/// Failed attempts against one account (email) per ten minutes, whatever the addresses: stops
/// a password being guessed from many addresses at once.
const PER_ACCOUNT: (i64, Duration) = (20, Duration::from_secs(600));
/// Failed attempts with codes that share their first group per ten minutes: stops guessing the
/// rest of a code someone has seen part of.
const PER_CODE_PREFIX: (i64, Duration) = (20, Duration::from_secs(600));

impl Budget {
    /// An address's attempts against a tenant (`None`: a tenant that does not exist). IPv6
    /// clients are counted per /64, the block one subscriber usually holds.
    pub fn address(tenant: Option<&str>, ip: IpAddr) -> Budget {
        let network = match ip {
            IpAddr::V6(v6) => {
                let segments = v6.segments();
                format!(
                    "{:x}:{:x}:{:x}:{:x}::/64",
                    segments[0], segments[1], segments[2], segments[3]
                )
            }
            IpAddr::V4(v4) => v4.to_string(),
        };
        Budget {
            scope: format!("addr:{}:{network}", tenant.unwrap_or("?")),
            limit: PER_ADDRESS.0,
            window: PER_ADDRESS.1,
        }
    }

    pub fn account(tenant: &str, email: &str) -> Budget {
        Budget {
            scope: format!("account:{tenant}:{}", email.trim().to_lowercase()),
            limit: PER_ACCOUNT.0,
            window: PER_ACCOUNT.1,
        }
    }

    pub fn code_prefix(tenant: &str, code: &str) -> Budget {
        let prefix: String = code
            .chars()
            .filter(char::is_ascii_alphanumeric)
            .map(|c| c.to_ascii_uppercase())
            .take(4)
            .collect();
        Budget {
            scope: format!("code:{tenant}:{prefix}"),
            limit: PER_CODE_PREFIX.0,
            window: PER_CODE_PREFIX.1,
        }
    }
}

/// How long an attempt may wait for a place while others are being evaluated (a deployment
/// script activating many machines at once from one address), before it is told to retry.
const ADMISSION_DEADLINE: Duration = Duration::from_secs(5);
/// How often an attempt looks again when the budget is full of other instances' attempts.
const ADMISSION_POLL: Duration = Duration::from_millis(100);

/// Admits credential attempts; one per server, shared by every route that checks credentials.
///
/// Within this instance, attempts on the same budget queue on a local semaphore (as many places
/// as the budget allows), so a burst waits in line without touching the database; the database
/// admission on top keeps the limit exact across instances and counts the failures.
#[derive(Debug, Default)]
pub struct Attempts {
    local: Mutex<HashMap<String, Arc<Semaphore>>>,
}

/// An admitted attempt: settle it once the credential has been evaluated.
#[must_use]
#[derive(Debug)]
pub struct Admission {
    admitted: Vec<(String, i64)>,
    _places: Vec<OwnedSemaphorePermit>,
}

/// Why an attempt was not evaluated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// A budget's failures are used up: 429 until its window ends.
    Exhausted { retry_after_seconds: u64 },
    /// Too many attempts are being evaluated at once: 503, retry shortly.
    Busy { retry_after_seconds: u64 },
}

fn window_millis(window: Duration) -> i64 {
    i64::try_from(window.as_millis()).unwrap_or(i64::MAX)
}

enum Try {
    Admitted(Vec<(String, i64)>),
    Exhausted(u64),
    Full,
}

const BUSY: Refusal = Refusal::Busy { retry_after_seconds: 1 };

impl Attempts {
    fn semaphore(&self, budget: &Budget) -> Arc<Semaphore> {
        let mut local = self.local.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        local
            .entry(budget.scope.clone())
            .or_insert_with(|| Arc::new(Semaphore::new(usize::try_from(budget.limit).unwrap_or(1).max(1))))
            .clone()
    }

    /// Admits one attempt against every budget at once, or refuses it. An attempt that finds
    /// the budgets full only of attempts in flight waits for a place.
    pub async fn admit(&self, store: &Store, budgets: &[Budget]) -> ServiceResult<Result<Admission, Refusal>> {
        let deadline = tokio::time::Instant::now() + ADMISSION_DEADLINE;
        let mut ordered: Vec<&Budget> = budgets.iter().collect();
        // One order for everyone, so two attempts never hold each other's places.
        ordered.sort_by(|a, b| a.scope.cmp(&b.scope));
        let mut places = Vec::with_capacity(ordered.len());
        for budget in ordered {
            match tokio::time::timeout_at(deadline, self.semaphore(budget).acquire_owned()).await {
                Ok(Ok(place)) => places.push(place),
                _ => {
                    drop(places);
                    self.forget_idle(budgets);
                    return Ok(Err(BUSY));
                }
            }
        }
        loop {
            match try_admit(store, budgets, super::now()).await? {
                Try::Admitted(admitted) => {
                    return Ok(Ok(Admission {
                        admitted,
                        _places: places,
                    }))
                }
                Try::Exhausted(wait) => {
                    drop(places);
                    self.forget_idle(budgets);
                    return Ok(Err(Refusal::Exhausted {
                        retry_after_seconds: wait,
                    }));
                }
                // Full of another instance's attempts: look again shortly.
                Try::Full if tokio::time::Instant::now() + ADMISSION_POLL < deadline => {
                    tokio::time::sleep(ADMISSION_POLL).await;
                }
                Try::Full => {
                    drop(places);
                    self.forget_idle(budgets);
                    return Ok(Err(BUSY));
                }
            }
        }
    }

    /// Ends an attempt: a failed one stays counted against every budget it drew on.
    pub async fn settle(&self, store: &Store, admission: Admission, failed: bool) -> ServiceResult<()> {
        let result = async {
            let mut tx = store.begin().await?;
            for (scope, window_start) in &admission.admitted {
                db::settle(&mut tx, scope, *window_start, failed).await?;
            }
            tx.commit().await?;
            Ok(())
        }
        .await;
        let scopes: Vec<String> = admission.admitted.iter().map(|(scope, _)| scope.clone()).collect();
        drop(admission);
        let mut local = self.local.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        for scope in scopes {
            if local.get(&scope).is_some_and(|s| Arc::strong_count(s) == 1) {
                local.remove(&scope);
            }
        }
        result
    }

    /// Drops the local queues nobody holds or waits on, so the map stays small.
    fn forget_idle(&self, budgets: &[Budget]) {
        let mut local = self.local.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        for budget in budgets {
            if local.get(&budget.scope).is_some_and(|s| Arc::strong_count(s) == 1) {
                local.remove(&budget.scope);
            }
        }
    }
}

async fn try_admit(store: &Store, budgets: &[Budget], now: DateTime<Utc>) -> ServiceResult<Try> {
    let now_ms = millis(now);
    let mut tx = store.begin().await?;
    let mut admitted = Vec::with_capacity(budgets.len());
    for budget in budgets {
        let window = window_millis(budget.window);
        let cutoff = now_ms.saturating_sub(window);
        match db::admit(&mut tx, &budget.scope, now_ms, cutoff, budget.limit).await? {
            Some(window_start) => admitted.push((budget.scope.clone(), window_start)),
            None => {
                // Nothing of this try is kept: the transaction rolls back when dropped.
                let failures = db::failures(&mut tx, &budget.scope).await?;
                return Ok(match failures {
                    Some((used, started)) if used >= budget.limit => {
                        let ends = started.saturating_add(window);
                        Try::Exhausted(u64::try_from(ends.saturating_sub(now_ms).max(1000) / 1000).unwrap_or(1))
                    }
                    _ => Try::Full,
                });
            }
        }
    }
    tx.commit().await?;
    Ok(Try::Admitted(admitted))
}

/// Forgets budgets whose windows ended long ago.
pub async fn purge(store: &Store, now: DateTime<Utc>) -> ServiceResult<u64> {
    let longest = [PER_ADDRESS.1, PER_ACCOUNT.1, PER_CODE_PREFIX.1]
        .into_iter()
        .max()
        .unwrap_or(Duration::from_secs(3600));
    let before = millis(now).saturating_sub(window_millis(longest));
    let mut conn = store.write_conn().await?;
    Ok(db::purge(&mut conn, before, 1000).await?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn budgets_are_scoped_per_tenant_and_ipv6_per_64() {
        let v4: IpAddr = "192.0.2.1".parse().unwrap();
        assert_ne!(Budget::address(Some("ten_a"), v4), Budget::address(Some("ten_b"), v4));
        let a: IpAddr = "2001:db8:1:2:aaaa::1".parse().unwrap();
        let b: IpAddr = "2001:db8:1:2:bbbb::9".parse().unwrap();
        assert_eq!(Budget::address(Some("t"), a), Budget::address(Some("t"), b));
        assert_eq!(
            Budget::account("t", " Ada@Example.com "),
            Budget::account("t", "ada@example.com")
        );
        assert_eq!(
            Budget::code_prefix("t", "ab12-cdef-9999"),
            Budget::code_prefix("t", "AB12-XXXX-0000")
        );
    }
}
