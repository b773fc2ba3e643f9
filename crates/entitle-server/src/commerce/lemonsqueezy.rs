//! Lemon Squeezy: `X-Signature: <hex HMAC-SHA256(secret, body)>`, no timestamp. JSON:API payloads;
//! no event id is documented, so an event is identified by (event name, object id, `updated_at`).
//! An order and the subscription it starts share one order reference: `order:{order id}`;
//! subscription invoices find it through the alias `sub:{subscription id}`.

use serde_json::Value;

use super::event::{Change, CommerceEvent, Customer, Item};
use super::signature::{any_matches, decode_hex, Rejection};
use super::{at, header, s, ParseError, Verification};

pub fn verify(v: &Verification<'_>) -> Result<(), Rejection> {
    let signature = decode_hex(header(v.headers, "x-signature").ok_or(Rejection::MissingSignature)?)?;
    if any_matches(v.secrets, &[v.body], &signature) {
        Ok(())
    } else {
        Err(Rejection::BadSignature)
    }
}

/// A refund is whole when the status says `refunded` or the refunded amount reaches the total;
/// `partial_refund`, or a smaller amount, is partial; `refunded: true` alone is whole. `None`:
/// the object says nothing of a refund.
fn refund(a: &Value) -> Option<Change> {
    let refunded = a["refunded_amount"].as_i64().unwrap_or(0);
    let total = a["total"].as_i64().unwrap_or(0);
    match a["status"].as_str() {
        Some("refunded") => Some(Change::Refunded),
        Some("partial_refund") => Some(Change::PartialRefund),
        _ if total > 0 && refunded >= total => Some(Change::Refunded),
        _ if refunded > 0 => Some(Change::PartialRefund),
        // Refunded, and nothing says it was partial.
        _ if a["refunded"] == true => Some(Change::Refunded),
        _ => None,
    }
}

pub fn parse(body: &[u8]) -> Result<Vec<CommerceEvent>, ParseError> {
    let envelope: Value = serde_json::from_slice(body).map_err(|e| ParseError(e.to_string()))?;
    let name = s(&envelope["meta"]["event_name"]).ok_or_else(|| ParseError("no meta.event_name".into()))?;
    let data = &envelope["data"];
    let a = &data["attributes"];
    let id = s(&data["id"]).ok_or_else(|| ParseError("no data.id".into()))?;
    let updated = s(&a["updated_at"]).unwrap_or_default();
    let occurred_at = at(&a["updated_at"])
        .or_else(|| at(&a["created_at"]))
        .ok_or_else(|| ParseError("no updated_at".into()))?;
    let custom = &envelope["meta"]["custom_data"];
    let mut event = CommerceEvent {
        event_id: format!("{name}:{id}:{updated}"),
        event_type: name.clone(),
        occurred_at,
        order_ref: None,
        aliases: vec![],
        change: Change::Ignored,
        customer: Customer {
            email: s(&custom["email"]).or_else(|| s(&a["user_email"])),
            name: s(&a["user_name"]),
            reference: s(&a["customer_id"]),
        },
        items: None,
        period_end: None,
        lookups: Vec::new(),
        refunded_items: Vec::new(),
        missing: None,
        quantity: None,
    };
    let sku_item = |quantity: i64| {
        s(&custom["sku"]).map(|sku| {
            vec![Item {
                provider_ref: None,
                sku: Some(sku),
                quantity,
            }]
        })
    };
    match name.as_str() {
        "order_created" | "order_refunded" => {
            event.order_ref = Some(format!("order:{id}"));
            let paid = a["status"] == "paid";
            event.change = match name.as_str() {
                "order_refunded" => refund(a).unwrap_or(Change::Refunded),
                _ if paid => Change::Purchase,
                _ => Change::Ignored,
            };
            let variant = s(&a["first_order_item"]["variant_id"]);
            event.items = sku_item(1).or_else(|| {
                variant.map(|v| {
                    vec![Item {
                        provider_ref: Some(v),
                        sku: None,
                        quantity: 1,
                    }]
                })
            });
        }
        "subscription_created"
        | "subscription_updated"
        | "subscription_resumed"
        | "subscription_unpaused"
        | "subscription_cancelled"
        | "subscription_expired"
        | "subscription_paused" => {
            event.order_ref = s(&a["order_id"]).map(|order| format!("order:{order}"));
            event.aliases = vec![format!("sub:{id}")];
            let quantity = a["first_subscription_item"]["quantity"].as_i64().unwrap_or(1);
            event.items = sku_item(quantity).or_else(|| {
                s(&a["variant_id"]).map(|v| {
                    vec![Item {
                        provider_ref: Some(v),
                        sku: None,
                        quantity,
                    }]
                })
            });
            event.change = match (name.as_str(), a["status"].as_str()) {
                ("subscription_expired", _) | (_, Some("expired")) | (_, Some("paused")) => Change::Ended,
                ("subscription_cancelled", _) | (_, Some("cancelled")) => Change::CancelScheduled,
                (_, Some("on_trial")) => Change::Trial,
                (_, Some("past_due")) | (_, Some("unpaid")) => Change::PaymentFailed,
                (_, Some("active")) => Change::Active,
                _ => Change::Ignored,
            };
            event.period_end = match event.change {
                Change::Trial => at(&a["trial_ends_at"]),
                Change::CancelScheduled | Change::Ended => at(&a["ends_at"]),
                _ => at(&a["renews_at"]),
            };
        }
        "subscription_payment_success"
        | "subscription_payment_recovered"
        | "subscription_payment_failed"
        | "subscription_payment_refunded" => {
            event.aliases = s(&a["subscription_id"])
                .map(|sub| format!("sub:{sub}"))
                .into_iter()
                .collect();
            event.change = match name.as_str() {
                "subscription_payment_failed" => Change::PaymentFailed,
                "subscription_payment_refunded" => refund(a).unwrap_or(Change::Ignored),
                _ => Change::Renewal,
            };
        }
        _ => {}
    }
    Ok(vec![event])
}
