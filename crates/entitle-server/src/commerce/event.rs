//! What a storefront delivery means, in one vocabulary for every provider, and how the events of
//! one order merge into its state. The merge is order-independent: last-writer-wins by the
//! provider's event time for status and items, the latest period end, and refunds that stick — so
//! shuffled, repeated or concurrent deliveries of an order's history end in the same state.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Change {
    /// A paid order or a started subscription.
    Purchase,
    /// A payment for a new period.
    Renewal,
    /// A trial started.
    Trial,
    /// The subscription is (still) active; items or quantity may have changed (plan change).
    Active,
    /// Cancelled at period end: valid until then, no renewal.
    CancelScheduled,
    /// Access ends now.
    Ended,
    /// A payment failed: the grace period runs.
    PaymentFailed,
    /// The whole order refunded, or a chargeback lost: disable.
    Refunded,
    /// Part of the order refunded (`refunded_items` names the lines, when the provider does): a
    /// line refunded in full is disabled, anything less is recorded and changes nothing unless
    /// the connection disables on any refund.
    PartialRefund,
    /// Nothing for licensing (a customer update, a notice…).
    Ignored,
}

impl Change {
    /// Does the event show the order exists and was paid for (so an entitlement is due)?
    fn is_positive(self) -> bool {
        matches!(
            self,
            Change::Purchase | Change::Renewal | Change::Trial | Change::Active | Change::CancelScheduled
        )
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Customer {
    pub email: Option<String>,
    pub name: Option<String>,
    /// The provider's customer id.
    pub reference: Option<String>,
}

/// One purchased line: the provider's price / variant / product id, or an offering SKU passed
/// through checkout metadata.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Item {
    pub provider_ref: Option<String>,
    pub sku: Option<String>,
    pub quantity: i64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CommerceEvent {
    /// The provider's event id: the deduplication key.
    pub event_id: String,
    pub event_type: String,
    pub occurred_at: DateTime<Utc>,
    /// The subscription or order the event is about, when the payload names it.
    pub order_ref: Option<String>,
    /// Other ids naming the same order (invoice, charge, transaction, checkout session), recorded so
    /// that a later refund naming one of them finds the order.
    pub aliases: Vec<String>,
    pub change: Change,
    pub customer: Customer,
    /// `None`: the event does not say what was bought.
    pub items: Option<Vec<Item>>,
    pub period_end: Option<DateTime<Utc>>,
    /// Data the payload lacks and the provider's API can give.
    #[serde(default)]
    pub lookups: Vec<Lookup>,
    /// With `PartialRefund`: the lines refunded and the quantity refunded of each.
    #[serde(default)]
    pub refunded_items: Vec<Item>,
    /// What the event must have before it may be applied (applying it without would record a
    /// payment with no effect): said while a look-up has not filled it.
    #[serde(default)]
    pub missing: Option<String>,
    /// The quantity of the order's first line when the provider gives it apart from the line
    /// (Maxio: a component's allocation); it holds until a later event gives another.
    #[serde(default)]
    pub quantity: Option<i64>,
}

impl Item {
    /// Whether two items name the same line (a refund's line and an order's).
    pub fn same_line(&self, other: &Item) -> bool {
        match (&self.provider_ref, &other.provider_ref) {
            (Some(a), Some(b)) => a == b,
            _ => self.sku.is_some() && self.sku == other.sku,
        }
    }
}

/// A question for the provider's API, asked before the event is applied.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Lookup {
    /// A Stripe Checkout Session's line items (its webhook carries none).
    StripeLineItems { session: String },
    /// A Stripe customer's email and name (subscriptions carry only the id).
    StripeCustomer { customer: String },
    /// A Paddle customer's email and name (Paddle payloads carry none).
    PaddleCustomer { customer: String },
    /// A Zuora account's bill-to contact (callouts carry what the template gives).
    ZuoraAccount { account: String },
    /// A FastSpring subscription's next charge date (a renewal without webhook expansion lacks it).
    FastSpringSubscription { subscription: String },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Standing {
    Active,
    PaymentFailed,
    Ended,
}

/// (time, event id): the order in which last-writer-wins decides.
type Stamp = (DateTime<Utc>, String);

/// Everything known about one order, merged from its events.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct OrderState {
    pub customer: Customer,
    customer_at: Option<Stamp>,
    pub items: Vec<Item>,
    items_at: Option<Stamp>,
    pub period_end: Option<DateTime<Utc>>,
    pub standing: Option<(Standing, DateTime<Utc>)>,
    standing_at: Option<Stamp>,
    pub trial: bool,
    pub cancel_scheduled: bool,
    /// A refund or lost chargeback was seen: stays disabled.
    pub refunded: bool,
    /// A positive event was seen: the order is real and paid for.
    pub purchased: bool,
    /// How many partial refunds were seen.
    #[serde(default)]
    pub partial_refunds: u32,
    /// What partial refunds took back, per line (quantities added up).
    #[serde(default)]
    pub refunded_items: Vec<Item>,
    /// The latest payment (purchase or renewal) and the latest failed one: an end after a failure
    /// that no payment followed is not the customer's choice.
    #[serde(default)]
    pub paid_at: Option<DateTime<Utc>>,
    #[serde(default)]
    pub failed_at: Option<DateTime<Utc>>,
    /// The first line's quantity given apart from the items (see `CommerceEvent::quantity`).
    #[serde(default)]
    pub quantity: Option<i64>,
    #[serde(default)]
    quantity_at: Option<Stamp>,
}

impl OrderState {
    pub fn merge(&mut self, event: &CommerceEvent) {
        let stamp = (event.occurred_at, event.event_id.clone());
        let newer = |current: &Option<Stamp>| current.as_ref().is_none_or(|at| stamp > *at);
        let has_customer = event.customer.email.is_some() || event.customer.name.is_some();
        if has_customer && newer(&self.customer_at) {
            let old = std::mem::take(&mut self.customer);
            self.customer = Customer {
                email: event.customer.email.clone().or(old.email),
                name: event.customer.name.clone().or(old.name),
                reference: event.customer.reference.clone().or(old.reference),
            };
            self.customer_at = Some(stamp.clone());
        } else {
            // Older details only fill gaps.
            let c = &mut self.customer;
            c.email = c.email.take().or_else(|| event.customer.email.clone());
            c.name = c.name.take().or_else(|| event.customer.name.clone());
            c.reference = c.reference.take().or_else(|| event.customer.reference.clone());
        }
        if let Some(items) = event.items.as_ref().filter(|items| !items.is_empty()) {
            if newer(&self.items_at) {
                self.items = items.clone();
                self.items_at = Some(stamp.clone());
            }
        }
        if let Some(quantity) = event.quantity {
            if newer(&self.quantity_at) {
                self.quantity = Some(quantity);
                self.quantity_at = Some(stamp.clone());
            }
        }
        if let Some(end) = event.period_end {
            self.period_end = Some(self.period_end.map_or(end, |current| current.max(end)));
        }
        let standing = match event.change {
            Change::Ended => Some(Standing::Ended),
            Change::PaymentFailed => Some(Standing::PaymentFailed),
            change if change.is_positive() => Some(Standing::Active),
            _ => None,
        };
        if let Some(standing) = standing {
            if newer(&self.standing_at) {
                self.standing = Some((standing, event.occurred_at));
                self.trial = event.change == Change::Trial;
                self.cancel_scheduled = event.change == Change::CancelScheduled;
                self.standing_at = Some(stamp);
            }
        }
        self.refunded |= event.change == Change::Refunded;
        self.purchased |= event.change.is_positive();
        let latest =
            |current: Option<DateTime<Utc>>| Some(current.map_or(event.occurred_at, |c| c.max(event.occurred_at)));
        match event.change {
            Change::Purchase | Change::Renewal => self.paid_at = latest(self.paid_at),
            Change::PaymentFailed => self.failed_at = latest(self.failed_at),
            _ => {}
        }
        if event.change == Change::PartialRefund {
            // Each event is merged once (it is marked seen first), so adding up is order-independent.
            self.partial_refunds += 1;
            for refund in &event.refunded_items {
                match self.refunded_items.iter_mut().find(|r| r.same_line(refund)) {
                    Some(known) => known.quantity += refund.quantity,
                    None => self.refunded_items.push(refund.clone()),
                }
            }
        }
    }

    /// The order's lines, the first with the quantity given apart from the items, if any.
    pub fn lines(&self) -> Vec<Item> {
        let mut lines = self.items.clone();
        if let (Some(first), Some(quantity)) = (lines.first_mut(), self.quantity) {
            first.quantity = quantity;
        }
        lines
    }

    /// Did the order end by choice (a cancellation, not an unpaid renewal)? Grace is for failed
    /// payments: a deliberate end expires at the period end.
    pub fn ended_deliberately(&self) -> bool {
        let unpaid = self
            .failed_at
            .is_some_and(|failed| self.paid_at.is_none_or(|paid| failed > paid));
        matches!(self.standing, Some((Standing::Ended, _))) && !unpaid
    }

    /// Was this line of the order refunded in full (its whole quantity, over one or more refunds)?
    pub fn line_refunded(&self, line: &Item) -> bool {
        self.refunded_items
            .iter()
            .any(|r| r.same_line(line) && r.quantity >= line.quantity.max(1))
    }

    /// When the entitlement should expire given this state, with `fallback` the plan's expiry.
    pub fn expiry(&self, fallback: Option<DateTime<Utc>>) -> Option<DateTime<Utc>> {
        let base = self.period_end.or(fallback);
        match self.standing {
            Some((Standing::Ended, at)) | Some((Standing::PaymentFailed, at)) => Some(base.map_or(at, |b| b.min(at))),
            _ => base,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn t(day: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 1, day, 0, 0, 0).single().unwrap()
    }

    fn event(id: &str, day: u32, change: Change, period_end: Option<u32>, quantity: Option<i64>) -> CommerceEvent {
        CommerceEvent {
            event_id: id.into(),
            event_type: "x".into(),
            occurred_at: t(day),
            order_ref: Some("sub_1".into()),
            aliases: vec![],
            change,
            customer: Customer {
                email: (day == 1).then(|| "a@b.example".into()),
                name: None,
                reference: None,
            },
            items: quantity.map(|q| {
                vec![Item {
                    provider_ref: Some("price_1".into()),
                    sku: None,
                    quantity: q,
                }]
            }),
            period_end: period_end.map(t),
            lookups: Vec::new(),
            refunded_items: Vec::new(),
            missing: None,
            quantity: None,
        }
    }

    fn history() -> Vec<CommerceEvent> {
        vec![
            event("e1", 1, Change::Purchase, Some(10), Some(1)),
            event("e2", 5, Change::Active, None, Some(3)),
            event("e3", 10, Change::Renewal, Some(20), None),
            event("e4", 15, Change::PaymentFailed, None, None),
            event("e5", 16, Change::Renewal, Some(30), None),
            event("e6", 25, Change::CancelScheduled, None, None),
            event("e7", 30, Change::Ended, None, None),
        ]
    }

    fn fold(events: &[CommerceEvent]) -> OrderState {
        let mut state = OrderState::default();
        for e in events {
            state.merge(e);
        }
        state
    }

    #[test]
    fn every_order_of_delivery_and_duplicates_end_in_the_same_state() {
        let events = history();
        let expected = fold(&events);
        assert_eq!(expected.items[0].quantity, 3);
        assert_eq!(expected.period_end, Some(t(30)));
        assert_eq!(expected.standing, Some((Standing::Ended, t(30))));
        assert_eq!(expected.customer.email.as_deref(), Some("a@b.example"));
        // Many permutations (a deterministic shuffle) and repeats.
        let mut seed = 7u64;
        for _ in 0..500 {
            let mut shuffled = events.clone();
            for i in (1..shuffled.len()).rev() {
                seed = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
                shuffled.swap(i, (seed >> 33) as usize % (i + 1));
            }
            shuffled.push(shuffled[(seed >> 40) as usize % events.len()].clone());
            let state = fold(&shuffled);
            assert_eq!(state.items, expected.items);
            assert_eq!(state.period_end, expected.period_end);
            assert_eq!(state.standing, expected.standing);
            assert_eq!(state.customer, expected.customer);
            assert_eq!(state.purchased, expected.purchased);
        }
    }

    #[test]
    fn expiry_follows_the_standing() {
        let mut state = fold(&history()[..3]);
        assert_eq!(state.expiry(None), Some(t(20)));
        state.merge(&event("e4", 15, Change::PaymentFailed, None, None));
        assert_eq!(state.expiry(None), Some(t(15)), "grace runs from the failed payment");
        state.merge(&event("r", 28, Change::Refunded, None, None));
        assert!(state.refunded);
        let only_cancel = fold(&[event("x", 3, Change::Ended, None, None)]);
        assert!(!only_cancel.purchased, "a cancellation alone creates nothing");
    }

    #[test]
    fn an_end_is_deliberate_unless_an_unpaid_failure_came_before() {
        let cancelled = fold(&[
            event("a", 1, Change::Purchase, Some(10), Some(1)),
            event("b", 5, Change::CancelScheduled, None, None),
            event("c", 10, Change::Ended, None, None),
        ]);
        assert!(cancelled.ended_deliberately());
        let lapsed = fold(&[
            event("a", 1, Change::Purchase, Some(10), Some(1)),
            event("b", 10, Change::PaymentFailed, None, None),
            event("c", 17, Change::Ended, None, None),
        ]);
        assert!(!lapsed.ended_deliberately(), "dunning gave up: grace applies");
        let recovered = fold(&[
            event("a", 1, Change::Purchase, Some(10), Some(1)),
            event("b", 10, Change::PaymentFailed, None, None),
            event("r", 11, Change::Renewal, Some(20), None),
            event("c", 15, Change::Ended, None, None),
        ]);
        assert!(recovered.ended_deliberately(), "paid after the failure, then cancelled");
        assert!(!fold(&history()[..3]).ended_deliberately(), "still running");
    }

    #[test]
    fn partial_refunds_add_up_per_line_and_leave_the_standing_alone() {
        let mut state = fold(&history()[..3]);
        let line = state.items[0].clone();
        assert_eq!(line.quantity, 3);
        let mut refund = event("p1", 12, Change::PartialRefund, None, None);
        refund.refunded_items = vec![Item {
            quantity: 2,
            ..line.clone()
        }];
        state.merge(&refund);
        assert_eq!(state.partial_refunds, 1);
        assert!(
            !state.refunded && !state.line_refunded(&line),
            "two of three seats refunded"
        );
        assert_eq!(state.standing.map(|s| s.0), Some(Standing::Active));
        let mut rest = refund.clone();
        rest.event_id = "p2".into();
        rest.refunded_items[0].quantity = 1;
        state.merge(&rest);
        assert!(
            state.line_refunded(&line),
            "the rest of the line refunded: the whole line is"
        );
        let other = Item {
            provider_ref: Some("price_2".into()),
            sku: None,
            quantity: 1,
        };
        assert!(!state.line_refunded(&other));
        // A goodwill refund names no line.
        let mut goodwill = fold(&history()[..3]);
        goodwill.merge(&event("g", 12, Change::PartialRefund, None, None));
        assert_eq!(goodwill.partial_refunds, 1);
        assert!(!goodwill.line_refunded(&line) && !goodwill.refunded);
    }
}
