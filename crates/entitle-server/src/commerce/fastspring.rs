//! FastSpring: `X-FS-Signature: <base64 HMAC-SHA256(secret, body)>` over the whole batch
//! `{"events": [...]}`; no timestamp. Payloads in both layouts (webhook expansion on: objects;
//! off: id strings). Each event in the batch is applied on its own; the endpoint answers 202 with
//! the ids it processed when some could not be.

use chrono::{DateTime, Utc};
use serde_json::Value;

use super::event::{Change, CommerceEvent, Customer, Item, Lookup};
use super::signature::{any_matches, decode_base64, Rejection};
use super::{header, s, ParseError, Verification};

pub fn verify(v: &Verification<'_>) -> Result<(), Rejection> {
    let signature = decode_base64(header(v.headers, "x-fs-signature").ok_or(Rejection::MissingSignature)?)?;
    if any_matches(v.secrets, &[v.body], &signature) {
        Ok(())
    } else {
        Err(Rejection::BadSignature)
    }
}

fn millis(value: &Value) -> Option<DateTime<Utc>> {
    value.as_i64().and_then(DateTime::from_timestamp_millis)
}

/// An id whether the field holds it directly or an expanded object with `id`.
fn id_of(value: &Value) -> Option<String> {
    s(value).or_else(|| s(&value["id"]))
}

fn customer_of(data: &Value) -> Customer {
    let contact = if data["customer"].is_object() {
        &data["customer"]
    } else {
        &data["account"]["contact"]
    };
    let name = format!(
        "{} {}",
        s(&contact["first"]).unwrap_or_default(),
        s(&contact["last"]).unwrap_or_default()
    );
    Customer {
        email: s(&contact["email"]),
        name: Some(name.trim().to_owned()).filter(|n| !n.is_empty()),
        reference: id_of(&data["account"]),
    }
}

fn product_of(value: &Value) -> Option<String> {
    s(value).or_else(|| s(&value["product"]))
}

fn event_of(entry: &Value) -> Result<CommerceEvent, ParseError> {
    let event_id = s(&entry["id"]).ok_or_else(|| ParseError("an event has no id".into()))?;
    let event_type = s(&entry["type"]).ok_or_else(|| ParseError("an event has no type".into()))?;
    let d = &entry["data"];
    let occurred_at = millis(&entry["created"])
        .or_else(|| millis(&d["changed"]))
        .ok_or_else(|| ParseError("an event has no time".into()))?;
    let mut event = CommerceEvent {
        event_id,
        event_type: event_type.clone(),
        occurred_at,
        order_ref: None,
        aliases: vec![],
        change: Change::Ignored,
        customer: customer_of(d),
        items: None,
        period_end: None,
        lookups: Vec::new(),
        refunded_items: Vec::new(),
        missing: None,
        quantity: None,
    };
    match event_type.as_str() {
        "order.completed" => {
            let order = s(&d["id"]).or_else(|| s(&d["order"]));
            let subscription = d["items"]
                .as_array()
                .and_then(|items| items.iter().find_map(|i| id_of(&i["subscription"])));
            event.change = if d["completed"] == false {
                Change::Ignored
            } else {
                Change::Purchase
            };
            event.order_ref = subscription.or(order.clone());
            event.aliases = order.into_iter().chain(s(&d["reference"])).collect();
            event.items = d["items"].as_array().map(|items| {
                items
                    .iter()
                    .map(|i| Item {
                        provider_ref: product_of(&i["product"]),
                        sku: None,
                        quantity: i["quantity"].as_i64().unwrap_or(1),
                    })
                    .collect()
            });
        }
        "subscription.activated"
        | "subscription.updated"
        | "subscription.uncanceled"
        | "subscription.canceled"
        | "subscription.deactivated"
        | "subscription.payment.overdue"
        | "subscription.charge.failed" => {
            event.order_ref = s(&d["id"]).or_else(|| s(&d["subscription"]));
            event.items = product_of(&d["product"]).map(|product| {
                vec![Item {
                    provider_ref: Some(product),
                    sku: None,
                    quantity: d["quantity"].as_i64().unwrap_or(1),
                }]
            });
            event.period_end = millis(&d["next"]);
            event.change = match (event_type.as_str(), d["state"].as_str()) {
                ("subscription.deactivated", _) | (_, Some("deactivated")) => Change::Ended,
                ("subscription.canceled", _) | (_, Some("canceled")) => Change::CancelScheduled,
                ("subscription.payment.overdue", _) | ("subscription.charge.failed", _) | (_, Some("overdue")) => {
                    Change::PaymentFailed
                }
                (_, Some("trial")) => Change::Trial,
                _ => Change::Active,
            };
        }
        "subscription.charge.completed" => {
            event.order_ref = id_of(&d["subscription"]);
            event.aliases = id_of(&d["order"]).into_iter().collect();
            event.change = Change::Renewal;
            event.period_end = millis(&d["subscription"]["next"]);
            if event.period_end.is_none() {
                // Without webhook expansion the subscription is an id: its next charge date
                // comes from the API, or the renewal waits (it must not look applied).
                if let Some(subscription) = event.order_ref.clone() {
                    event.lookups.push(Lookup::FastSpringSubscription { subscription });
                }
                event.missing = Some(
                    "the subscription's next charge date (sent only with webhook expansion): give the connection \
                     FastSpring API credentials (`user:password`) or turn webhook expansion on, then replay"
                        .into(),
                );
            }
        }
        "return.created" => {
            let original = &d["original"];
            event.aliases = id_of(original).into_iter().chain(s(&original["reference"])).collect();
            event.refunded_items = d["items"]
                .as_array()
                .map(|items| {
                    items
                        .iter()
                        .map(|i| Item {
                            provider_ref: product_of(&i["product"]),
                            sku: None,
                            quantity: i["quantity"].as_i64().unwrap_or(1),
                        })
                        .collect()
                })
                .unwrap_or_default();
            // Whole when the amount returned reaches the order's total, or when the return says
            // neither amounts nor lines; otherwise the lines decide.
            let returned = d["totalReturn"]
                .as_f64()
                .or_else(|| d["totalReturnInPayoutCurrency"].as_f64());
            let total = original["total"].as_f64();
            event.change = match (returned, total) {
                (Some(returned), Some(total)) if total > 0.0 && returned >= total => Change::Refunded,
                (None, _) | (_, None) if event.refunded_items.is_empty() => Change::Refunded,
                _ => Change::PartialRefund,
            };
        }
        _ => {}
    }
    Ok(event)
}

pub fn parse(body: &[u8]) -> Result<Vec<CommerceEvent>, ParseError> {
    let batch: Value = serde_json::from_slice(body).map_err(|e| ParseError(e.to_string()))?;
    let events = batch["events"]
        .as_array()
        .ok_or_else(|| ParseError("no events array".into()))?;
    events.iter().map(event_of).collect()
}
