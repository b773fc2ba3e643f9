//! Stripe: `Stripe-Signature: t=<unix>,v1=<hex HMAC-SHA256(secret, "{t}.{body}")>`, 300 s tolerance.
//! Current (basil+) and older API shapes of checkout sessions, subscriptions, invoices, charges and
//! disputes.

use chrono::{DateTime, Utc};
use serde_json::Value;

use super::event::{Change, CommerceEvent, Customer, Item, Lookup};
use super::signature::{verify_timestamped, Rejection, TimestampedScheme};
use super::{s, ParseError, Verification};

pub const TOLERANCE_SECONDS: i64 = 300;

pub fn verify(v: &Verification<'_>) -> Result<(), Rejection> {
    verify_timestamped(
        v,
        &TimestampedScheme {
            header: "stripe-signature",
            separator: ',',
            timestamp_key: "t",
            signature_key: "v1",
            joiner: b".",
            tolerance: TOLERANCE_SECONDS,
        },
    )
}

fn unix(value: &Value) -> Option<DateTime<Utc>> {
    value.as_i64().and_then(|t| DateTime::from_timestamp(t, 0))
}

fn metadata_sku(object: &Value) -> Option<Vec<Item>> {
    let sku = s(&object["metadata"]["sku"])?;
    let quantity = s(&object["metadata"]["quantity"])
        .and_then(|q| q.parse().ok())
        .unwrap_or(1);
    Some(vec![Item {
        provider_ref: None,
        sku: Some(sku),
        quantity,
    }])
}

fn subscription_items(sub: &Value) -> Option<Vec<Item>> {
    if let Some(items) = metadata_sku(sub) {
        return Some(items);
    }
    let data = sub["items"]["data"].as_array()?;
    Some(
        data.iter()
            .map(|item| Item {
                provider_ref: s(&item["price"]["id"]).or_else(|| s(&item["plan"]["id"])),
                sku: None,
                quantity: item["quantity"].as_i64().unwrap_or(1),
            })
            .collect(),
    )
}

fn subscription_period_end(sub: &Value) -> Option<DateTime<Utc>> {
    // basil+: per item; older: on the subscription.
    let per_item = sub["items"]["data"]
        .as_array()
        .and_then(|items| items.iter().filter_map(|i| unix(&i["current_period_end"])).max());
    per_item.or_else(|| unix(&sub["current_period_end"]))
}

/// The subscription's prices on an invoice (basil+: `pricing.price_details.price`; older:
/// `price.id` or `plan.id`), without prorations and one-off invoice items.
fn invoice_items(invoice: &Value) -> Option<Vec<Item>> {
    let lines = invoice["lines"]["data"].as_array()?;
    let items: Vec<Item> = lines
        .iter()
        .filter(|l| l["proration"] != true && l["parent"]["subscription_item_details"]["proration"] != true)
        .filter(|l| {
            l["parent"]["type"]
                .as_str()
                .is_none_or(|t| t == "subscription_item_details")
        })
        .filter(|l| l["type"].as_str().is_none_or(|t| t == "subscription"))
        .filter_map(|l| {
            let price = s(&l["pricing"]["price_details"]["price"])
                .or_else(|| s(&l["price"]["id"]))
                .or_else(|| s(&l["plan"]["id"]))?;
            Some(Item {
                provider_ref: Some(price),
                sku: None,
                quantity: l["quantity"].as_i64().unwrap_or(1),
            })
        })
        .collect();
    (!items.is_empty()).then_some(items)
}

fn ids(values: &[&Value]) -> Vec<String> {
    values.iter().filter_map(|v| s(v).or_else(|| s(&v["id"]))).collect()
}

pub fn parse(body: &[u8]) -> Result<Vec<CommerceEvent>, ParseError> {
    let envelope: Value = serde_json::from_slice(body).map_err(|e| ParseError(e.to_string()))?;
    let event_id = s(&envelope["id"]).ok_or_else(|| ParseError("no event id".into()))?;
    let event_type = s(&envelope["type"]).ok_or_else(|| ParseError("no event type".into()))?;
    let occurred_at = unix(&envelope["created"]).ok_or_else(|| ParseError("no event time".into()))?;
    let o = &envelope["data"]["object"];
    let mut event = CommerceEvent {
        event_id,
        event_type: event_type.clone(),
        occurred_at,
        order_ref: None,
        aliases: vec![],
        change: Change::Ignored,
        customer: Customer::default(),
        items: None,
        period_end: None,
        lookups: Vec::new(),
        refunded_items: Vec::new(),
        missing: None,
        quantity: None,
    };
    match event_type.as_str() {
        "checkout.session.completed" | "checkout.session.async_payment_succeeded" => {
            let paid = o["payment_status"] != "unpaid";
            event.change = if paid { Change::Purchase } else { Change::Ignored };
            event.order_ref = s(&o["subscription"]).or_else(|| s(&o["id"]));
            event.aliases = ids(&[&o["id"], &o["payment_intent"], &o["invoice"]]);
            event.customer = Customer {
                email: s(&o["customer_details"]["email"]).or_else(|| s(&o["customer_email"])),
                name: s(&o["customer_details"]["name"]),
                reference: s(&o["customer"]),
            };
            event.items = metadata_sku(o);
        }
        "customer.subscription.created" | "customer.subscription.updated" | "customer.subscription.resumed" => {
            let scheduled = o["cancel_at_period_end"] == true || !o["cancel_at"].is_null();
            event.change = match o["status"].as_str() {
                Some("trialing") => Change::Trial,
                Some("active") if scheduled => Change::CancelScheduled,
                Some("active") => Change::Active,
                Some("past_due") | Some("unpaid") => Change::PaymentFailed,
                Some("canceled") | Some("incomplete_expired") | Some("paused") => Change::Ended,
                _ => Change::Ignored,
            };
            event.order_ref = s(&o["id"]);
            event.customer.reference = s(&o["customer"]);
            event.customer.email = s(&o["metadata"]["email"]);
            event.items = subscription_items(o);
            event.period_end = subscription_period_end(o).or_else(|| unix(&o["trial_end"]));
        }
        "customer.subscription.deleted" | "customer.subscription.paused" => {
            event.change = Change::Ended;
            event.order_ref = s(&o["id"]);
            event.customer.reference = s(&o["customer"]);
            if let Some(ended) = unix(&o["ended_at"]) {
                event.occurred_at = event.occurred_at.max(ended);
            }
        }
        "invoice.paid" | "invoice.payment_succeeded" | "invoice.payment_failed" => {
            let subscription =
                s(&o["subscription"]).or_else(|| s(&o["parent"]["subscription_details"]["subscription"]));
            let Some(subscription) = subscription else {
                return Ok(vec![event]); // a one-off invoice: nothing for licensing
            };
            event.change = if event_type == "invoice.payment_failed" {
                Change::PaymentFailed
            } else {
                Change::Renewal
            };
            event.order_ref = Some(subscription);
            event.aliases = ids(&[&o["id"], &o["charge"], &o["payment_intent"]]);
            event.customer = Customer {
                email: s(&o["customer_email"]),
                name: s(&o["customer_name"]),
                reference: s(&o["customer"]),
            };
            if event.change == Change::Renewal {
                event.period_end = o["lines"]["data"]
                    .as_array()
                    .and_then(|lines| lines.iter().filter_map(|l| unix(&l["period"]["end"])).max());
                // The lines name the prices, so an invoice alone can start the order.
                event.items = metadata_sku(&o["parent"]["subscription_details"])
                    .or_else(|| metadata_sku(&o["subscription_details"]))
                    .or_else(|| invoice_items(o));
            }
        }
        "charge.refunded" => {
            // Only a full refund ends the licence; a partial one is recorded.
            event.change = if o["refunded"] == true {
                Change::Refunded
            } else {
                Change::PartialRefund
            };
            event.aliases = ids(&[&o["id"], &o["invoice"], &o["payment_intent"]]);
        }
        "charge.dispute.closed" => {
            event.change = if o["status"] == "lost" {
                Change::Refunded
            } else {
                Change::Ignored
            };
            event.aliases = ids(&[&o["charge"], &o["payment_intent"]]);
        }
        _ => {}
    }
    if event.change != Change::Ignored {
        if event.items.is_none() && event_type.starts_with("checkout.session") {
            if let Some(session) = s(&o["id"]) {
                event.lookups.push(Lookup::StripeLineItems { session });
            }
        }
        if let (None, Some(customer)) = (&event.customer.email, &event.customer.reference) {
            event.lookups.push(Lookup::StripeCustomer {
                customer: customer.clone(),
            });
        }
    }
    Ok(vec![event])
}
