//! Expiry reminders and notices: which one is due for an entitlement at a given time, and when a
//! storefront subscription makes them unnecessary.

use chrono::{DateTime, Duration, Utc};

use super::RuleViolation;
use crate::commerce::event::{OrderState, Standing};

/// Days before expiry a reminder goes out when the plan has no schedule of its own.
pub const DEFAULT_DAYS_BEFORE: [i64; 3] = [30, 7, 1];
/// A reminder found due later than this (the server was down, or it is new) is not sent: it
/// would say something stale.
pub const STALE_AFTER: Duration = Duration::days(3);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReminderKind {
    /// Before expiry (`entitlement.expiring`), `days_before` ahead.
    Expiring,
    /// The entitlement expired and its grace period runs (`entitlement.grace_started`).
    GraceStarted,
    /// The grace period is over too (`entitlement.expired`).
    Expired,
}

impl ReminderKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ReminderKind::Expiring => "expiring",
            ReminderKind::GraceStarted => "grace_started",
            ReminderKind::Expired => "expired",
        }
    }

    /// The event-log action (and webhook type) it is recorded as.
    pub fn action(self) -> &'static str {
        match self {
            ReminderKind::Expiring => "entitlement.expiring",
            ReminderKind::GraceStarted => "entitlement.grace_started",
            ReminderKind::Expired => "entitlement.expired",
        }
    }
}

/// One reminder: its kind, how many days ahead (expiring only, else 0), and when it fell due.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Due {
    pub kind: ReminderKind,
    pub days_before: i64,
    pub due_at: DateTime<Utc>,
}

/// The reminder due at `now` for an entitlement that started at `starts_at`, expires at
/// `expires_at` and stays usable until `grace_ends_at`: the latest one whose time has come (a
/// scan that runs late sends the nearest reminder, not every one it missed), unless it fell due
/// before the entitlement started or is stale.
pub fn due(
    starts_at: Option<DateTime<Utc>>,
    expires_at: DateTime<Utc>,
    grace_ends_at: DateTime<Utc>,
    days_before: &[i64],
    now: DateTime<Utc>,
) -> Option<Due> {
    let found = if now >= grace_ends_at {
        Due {
            kind: ReminderKind::Expired,
            days_before: 0,
            due_at: grace_ends_at,
        }
    } else if now >= expires_at {
        Due {
            kind: ReminderKind::GraceStarted,
            days_before: 0,
            due_at: expires_at,
        }
    } else {
        let days = days_before
            .iter()
            .copied()
            .filter(|d| expires_at - Duration::days(*d) <= now)
            .min()?;
        Due {
            kind: ReminderKind::Expiring,
            days_before: days,
            due_at: expires_at - Duration::days(days),
        }
    };
    let started_before = starts_at.is_some_and(|start| found.due_at >= start);
    (started_before && now - found.due_at <= STALE_AFTER).then_some(found)
}

/// Whether the storefront will renew the subscription by itself: active, not set to cancel, not
/// refunded. Then reminders would only alarm the customer; after a failed payment or a
/// scheduled cancellation they are what the customer needs.
pub fn renews_by_itself(order: &OrderState) -> bool {
    matches!(order.standing, Some((Standing::Active, _))) && !order.cancel_scheduled && !order.refunded
}

/// Most reminder days a schedule may list.
const MAX_DAYS: usize = 10;

/// A plan's schedule: 1 to 10 distinct whole days between 1 and 365, largest first.
pub fn parse_schedule(days: &[i64]) -> Result<Vec<i64>, RuleViolation> {
    let mut days = days.to_vec();
    days.sort_unstable_by(|a, b| b.cmp(a));
    days.dedup();
    if days.is_empty() || days.len() > MAX_DAYS || days.iter().any(|d| !(1..=365).contains(d)) {
        return Err(RuleViolation::new(
            "invalid_reminder_schedule",
            format!("list 1 to {MAX_DAYS} whole days between 1 and 365"),
        ));
    }
    Ok(days)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn day(n: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(1_700_000_000, 0).unwrap() + Duration::days(n)
    }

    #[test]
    fn the_nearest_reminder_is_due() {
        let (start, expires, grace) = (Some(day(0)), day(100), day(105));
        let at = |n: i64| due(start, expires, grace, &DEFAULT_DAYS_BEFORE, day(n));
        assert_eq!(at(60), None, "nothing before 30 days ahead");
        assert_eq!(
            at(70).map(|d| (d.kind, d.days_before)),
            Some((ReminderKind::Expiring, 30))
        );
        assert_eq!(at(93).map(|d| d.days_before), Some(7));
        assert_eq!(at(99).map(|d| d.days_before), Some(1));
        assert_eq!(at(100).map(|d| d.kind), Some(ReminderKind::GraceStarted));
        assert_eq!(at(105).map(|d| d.kind), Some(ReminderKind::Expired));
        assert_eq!(at(120), None, "stale");
        assert_eq!(
            at(80),
            None,
            "the 30-day one is stale after three days; the 7-day one not due"
        );
    }

    #[test]
    fn nothing_falls_due_before_the_start() {
        // A 20-day entitlement: its 30-day reminder would predate it.
        assert_eq!(due(Some(day(80)), day(100), day(100), &[30], day(81)), None);
        assert_eq!(due(None, day(100), day(100), &[30], day(81)), None, "not started");
        // No grace period: expired at once.
        let d = due(Some(day(0)), day(100), day(100), &[30], day(100)).unwrap();
        assert_eq!(d.kind, ReminderKind::Expired);
    }

    #[test]
    fn schedules_are_checked() {
        assert_eq!(parse_schedule(&[1, 30, 7, 7]).unwrap(), [30, 7, 1]);
        assert!(parse_schedule(&[]).is_err());
        assert!(parse_schedule(&[0]).is_err());
        assert!(parse_schedule(&[400]).is_err());
    }

    #[test]
    fn only_an_active_uncancelled_subscription_renews() {
        let mut order = OrderState::default();
        assert!(!renews_by_itself(&order));
        order.standing = Some((Standing::Active, day(0)));
        assert!(renews_by_itself(&order));
        order.cancel_scheduled = true;
        assert!(!renews_by_itself(&order));
        order.cancel_scheduled = false;
        order.standing = Some((Standing::PaymentFailed, day(0)));
        assert!(!renews_by_itself(&order));
    }
}
