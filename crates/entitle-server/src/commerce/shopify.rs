//! Shopify: `X-Shopify-Hmac-Sha256: <base64 HMAC-SHA256(app secret, body)>`, no timestamp. Orders are
//! one-time purchases: `orders/paid` grants, `orders/cancelled` takes back, `refunds/create` takes back the lines it
//! refunds in full.
//! Deliveries are identified by `X-Shopify-Webhook-Id` (newer) or `X-Shopify-Event-Id` (older).

use axum::http::HeaderMap;
use serde_json::Value;

use super::event::{Change, CommerceEvent, Customer, Item};
use super::signature::{any_matches, decode_base64, Rejection};
use super::{at, header, s, ParseError, Verification};

pub fn verify(v: &Verification<'_>) -> Result<(), Rejection> {
    let signature = decode_base64(header(v.headers, "x-shopify-hmac-sha256").ok_or(Rejection::MissingSignature)?)?;
    if any_matches(v.secrets, &[v.body], &signature) {
        Ok(())
    } else {
        Err(Rejection::BadSignature)
    }
}

pub fn parse(headers: &HeaderMap, body: &[u8]) -> Result<Vec<CommerceEvent>, ParseError> {
    let topic =
        header(headers, "x-shopify-topic").ok_or_else(|| ParseError("X-Shopify-Topic header missing".into()))?;
    let event_id = header(headers, "x-shopify-webhook-id")
        .or_else(|| header(headers, "x-shopify-event-id"))
        .ok_or_else(|| ParseError("X-Shopify-Webhook-Id header missing".into()))?;
    let o: Value = serde_json::from_slice(body).map_err(|e| ParseError(e.to_string()))?;
    let occurred_at = at(&o["updated_at"])
        .or_else(|| at(&o["processed_at"]))
        .or_else(|| at(&o["created_at"]))
        .ok_or_else(|| ParseError("no updated_at".into()))?;
    let mut event = CommerceEvent {
        event_id: event_id.to_owned(),
        event_type: topic.to_owned(),
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
    match topic {
        "orders/paid" | "orders/create" | "orders/cancelled" => {
            event.order_ref = s(&o["id"]);
            let paid = matches!(o["financial_status"].as_str(), Some("paid"));
            event.change = match topic {
                "orders/cancelled" => Change::Refunded,
                _ if paid => Change::Purchase,
                _ => Change::Ignored,
            };
            let first = s(&o["customer"]["first_name"]).unwrap_or_default();
            let last = s(&o["customer"]["last_name"]).unwrap_or_default();
            let name = format!("{first} {last}").trim().to_owned();
            event.customer = Customer {
                email: s(&o["email"])
                    .or_else(|| s(&o["contact_email"]))
                    .or_else(|| s(&o["customer"]["email"])),
                name: (!name.is_empty()).then_some(name),
                reference: s(&o["customer"]["id"]),
            };
            event.items = o["line_items"].as_array().map(|lines| {
                lines
                    .iter()
                    .map(|line| Item {
                        provider_ref: s(&line["variant_id"]).or_else(|| s(&line["product_id"])),
                        sku: s(&line["sku"]),
                        quantity: line["quantity"].as_i64().unwrap_or(1),
                    })
                    .collect()
            });
        }
        "refunds/create" => {
            // A refund names the lines it takes back (with the quantity); a goodwill refund
            // names none. Whether a line is refunded in full is decided against the order.
            event.order_ref = s(&o["order_id"]);
            event.change = Change::PartialRefund;
            event.refunded_items = o["refund_line_items"]
                .as_array()
                .map(|lines| {
                    lines
                        .iter()
                        .map(|refund| Item {
                            provider_ref: s(&refund["line_item"]["variant_id"])
                                .or_else(|| s(&refund["line_item"]["product_id"])),
                            sku: s(&refund["line_item"]["sku"]),
                            quantity: refund["quantity"].as_i64().unwrap_or(1),
                        })
                        .collect()
                })
                .unwrap_or_default();
        }
        _ => {}
    }
    Ok(vec![event])
}
