//! What a change to an entitlement was, in words a history reader wants: renewed, offering
//! changed, seats changed, refunded, disabled, ended — not just "updated"; and what an order says
//! without changing a value (a cancellation scheduled, a partial refund).

use chrono::{DateTime, Utc};

use super::EntitlementView;

/// The values of an entitlement that name a change.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Terms<'a> {
    pub disabled: bool,
    pub offering_id: &'a str,
    pub seat_count: i64,
    pub quantity: i64,
    pub expires_at: Option<DateTime<Utc>>,
}

impl<'a> From<&'a EntitlementView> for Terms<'a> {
    fn from(view: &'a EntitlementView) -> Self {
        Terms {
            disabled: view.disabled_at.is_some(),
            offering_id: &view.offering_id,
            seat_count: view.seat_count,
            quantity: view.quantity,
            expires_at: view.expires_at,
        }
    }
}

/// The event action for a change a storefront order brought (`refunded`: the order was).
pub fn storefront_action(before: Terms<'_>, after: Terms<'_>, refunded: bool, now: DateTime<Utc>) -> &'static str {
    if !before.disabled && after.disabled {
        return if refunded {
            "entitlement.refunded"
        } else {
            "entitlement.disabled"
        };
    }
    if before.offering_id != after.offering_id {
        return "entitlement.offering_changed";
    }
    if before.seat_count != after.seat_count || before.quantity != after.quantity {
        return "entitlement.seats_changed";
    }
    match (before.expires_at, after.expires_at) {
        (_, Some(new)) if new <= now => "entitlement.ended",
        (Some(old), Some(new)) if new > old => "entitlement.renewed",
        (None, Some(_)) => "entitlement.renewed",
        (Some(old), Some(new)) if new < old => "entitlement.shortened",
        _ => "entitlement.updated",
    }
}

/// What a storefront order says beyond an entitlement's values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct OrderMarks {
    pub cancel_scheduled: bool,
    pub partial_refunds: u32,
    pub ended: bool,
}

/// The history entries an order's change brings even when no value of the entitlement changes:
/// a cancellation scheduled for the period end (or taken back), a partial refund recorded.
pub fn storefront_notes(before: OrderMarks, after: OrderMarks) -> Vec<&'static str> {
    let mut notes = Vec::new();
    if after.cancel_scheduled && !before.cancel_scheduled {
        notes.push("entitlement.cancel_scheduled");
    }
    if before.cancel_scheduled && !after.cancel_scheduled && !after.ended {
        notes.push("entitlement.cancel_withdrawn");
    }
    if after.partial_refunds > before.partial_refunds {
        notes.push("entitlement.partially_refunded");
    }
    notes
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn day(d: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 12, d, 0, 0, 0).single().unwrap()
    }

    fn terms(expires: Option<DateTime<Utc>>) -> Terms<'static> {
        Terms {
            disabled: false,
            offering_id: "off_a",
            seat_count: 5,
            quantity: 1,
            expires_at: expires,
        }
    }

    #[test]
    fn names_each_kind_of_change() {
        let now = day(10);
        let base = terms(Some(day(20)));
        let action = |after: Terms<'static>, refunded| storefront_action(base, after, refunded, now);
        assert_eq!(action(terms(Some(day(30))), false), "entitlement.renewed");
        assert_eq!(action(terms(Some(day(15))), false), "entitlement.shortened");
        assert_eq!(action(terms(Some(day(9))), false), "entitlement.ended");
        assert_eq!(action(Terms { disabled: true, ..base }, true), "entitlement.refunded");
        assert_eq!(action(Terms { disabled: true, ..base }, false), "entitlement.disabled");
        assert_eq!(
            action(
                Terms {
                    offering_id: "off_b",
                    ..base
                },
                false
            ),
            "entitlement.offering_changed"
        );
        assert_eq!(
            action(
                Terms {
                    quantity: 3,
                    seat_count: 15,
                    ..base
                },
                false
            ),
            "entitlement.seats_changed"
        );
        assert_eq!(action(base, false), "entitlement.updated");
        assert_eq!(
            storefront_action(terms(None), terms(Some(day(30))), false, now),
            "entitlement.renewed"
        );
    }

    #[test]
    fn notes_say_what_the_values_do_not() {
        let none = OrderMarks::default();
        let scheduled = OrderMarks {
            cancel_scheduled: true,
            ..none
        };
        assert_eq!(storefront_notes(none, scheduled), ["entitlement.cancel_scheduled"]);
        assert!(storefront_notes(scheduled, scheduled).is_empty(), "said once");
        assert_eq!(storefront_notes(scheduled, none), ["entitlement.cancel_withdrawn"]);
        let ended = OrderMarks { ended: true, ..none };
        assert!(storefront_notes(scheduled, ended).is_empty(), "the end says it itself");
        let refunded = OrderMarks {
            partial_refunds: 1,
            ..none
        };
        assert_eq!(storefront_notes(none, refunded), ["entitlement.partially_refunded"]);
    }
}
