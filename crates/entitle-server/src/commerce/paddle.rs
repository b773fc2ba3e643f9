//! Paddle Billing: `Paddle-Signature: ts=<unix>;h1=<hex HMAC-SHA256(secret, "{ts}:{body}")>`;
//! Paddle's SDKs allow 5 s of drift. Subscriptions, transactions and adjustments.

use serde_json::Value;

use super::event::{Change, CommerceEvent, Customer, Item, Lookup};
use super::signature::{verify_timestamped, Rejection, TimestampedScheme};
use super::{at, s, ParseError, Verification};

pub const TOLERANCE_SECONDS: i64 = 5;

pub fn verify(v: &Verification<'_>) -> Result<(), Rejection> {
    verify_timestamped(
        v,
        &TimestampedScheme {
            header: "paddle-signature",
            separator: ';',
            timestamp_key: "ts",
            signature_key: "h1",
            joiner: b":",
            tolerance: TOLERANCE_SECONDS,
        },
    )
}

fn items(data: &Value) -> Option<Vec<Item>> {
    if let Some(sku) = s(&data["custom_data"]["sku"]) {
        let quantity = data["items"][0]["quantity"].as_i64().unwrap_or(1);
        return Some(vec![Item {
            provider_ref: None,
            sku: Some(sku),
            quantity,
        }]);
    }
    let list = data["items"].as_array()?;
    Some(
        list.iter()
            .map(|item| Item {
                provider_ref: s(&item["price"]["id"]).or_else(|| s(&item["price_id"])),
                sku: None,
                quantity: item["quantity"].as_i64().unwrap_or(1),
            })
            .collect(),
    )
}

fn customer(data: &Value) -> Customer {
    Customer {
        email: s(&data["custom_data"]["email"]),
        name: s(&data["custom_data"]["name"]),
        reference: s(&data["customer_id"]),
    }
}

pub fn parse(body: &[u8]) -> Result<Vec<CommerceEvent>, ParseError> {
    let envelope: Value = serde_json::from_slice(body).map_err(|e| ParseError(e.to_string()))?;
    let event_id = s(&envelope["event_id"]).ok_or_else(|| ParseError("no event_id".into()))?;
    let event_type = s(&envelope["event_type"]).ok_or_else(|| ParseError("no event_type".into()))?;
    let occurred_at = at(&envelope["occurred_at"]).ok_or_else(|| ParseError("no occurred_at".into()))?;
    let d = &envelope["data"];
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
    if event_type.starts_with("subscription.") && event_type != "subscription.imported" {
        let cancelling = d["scheduled_change"]["action"] == "cancel";
        event.change = match d["status"].as_str() {
            Some("trialing") => Change::Trial,
            Some("active") if cancelling => Change::CancelScheduled,
            Some("active") => Change::Active,
            Some("past_due") => Change::PaymentFailed,
            Some("paused") | Some("canceled") => Change::Ended,
            _ => Change::Ignored,
        };
        event.order_ref = s(&d["id"]);
        event.aliases = s(&d["transaction_id"]).into_iter().collect();
        event.customer = customer(d);
        event.items = items(d);
        event.period_end = at(&d["current_billing_period"]["ends_at"]);
    } else if event_type == "transaction.completed" {
        let subscription = s(&d["subscription_id"]);
        event.change = if subscription.is_some() && d["origin"] == "subscription_recurring" {
            Change::Renewal
        } else {
            Change::Purchase
        };
        event.order_ref = subscription.or_else(|| s(&d["id"]));
        event.aliases = s(&d["id"]).into_iter().collect();
        event.customer = customer(d);
        event.items = items(d);
        event.period_end = at(&d["billing_period"]["ends_at"]);
    } else if event_type == "transaction.payment_failed" || event_type == "transaction.past_due" {
        event.order_ref = s(&d["subscription_id"]);
        event.change = if event.order_ref.is_some() {
            Change::PaymentFailed
        } else {
            Change::Ignored
        };
    } else if event_type == "adjustment.created" || event_type == "adjustment.updated" {
        let takes_back = matches!(d["action"].as_str(), Some("refund") | Some("chargeback"));
        let full = d["type"] != "partial";
        event.change = match (takes_back && d["status"] == "approved", full) {
            (true, true) => Change::Refunded,
            (true, false) => Change::PartialRefund,
            _ => Change::Ignored,
        };
        event.order_ref = s(&d["subscription_id"]);
        event.aliases = s(&d["transaction_id"]).into_iter().collect();
    }
    if let (
        Change::Purchase | Change::Renewal | Change::Trial | Change::Active | Change::CancelScheduled,
        None,
        Some(customer),
    ) = (event.change, &event.customer.email, &event.customer.reference)
    {
        event.lookups.push(Lookup::PaddleCustomer {
            customer: customer.clone(),
        });
    }
    Ok(vec![event])
}
