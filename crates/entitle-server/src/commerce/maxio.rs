//! Maxio Advanced Billing (Chargify): form-encoded bodies with bracketed keys
//! (`payload[subscription][product][handle]`), signed with
//! `X-Chargify-Webhook-Signature-Hmac-Sha-256: <hex HMAC-SHA256(site shared key, body)>`; no timestamp.
//! The form field `id` is the delivery's stable id. Times are local with an offset.

use chrono::{DateTime, Utc};
use std::collections::HashMap;

use super::event::{Change, CommerceEvent, Customer, Item};
use super::signature::{any_matches, decode_hex, Rejection};
use super::{header, ParseError, Verification};
use crate::domain::zone::{read_time, Zone};

pub fn verify(v: &Verification<'_>) -> Result<(), Rejection> {
    let value = header(v.headers, "x-chargify-webhook-signature-hmac-sha-256").ok_or(Rejection::MissingSignature)?;
    let signature = decode_hex(value)?;
    if any_matches(v.secrets, &[v.body], &signature) {
        Ok(())
    } else {
        Err(Rejection::BadSignature)
    }
}

fn time(value: Option<&String>, zone: &Zone) -> Option<DateTime<Utc>> {
    let text = value?;
    DateTime::parse_from_str(text, "%Y-%m-%d %H:%M:%S %z")
        .ok()
        .map(|t| t.with_timezone(&Utc))
        .or_else(|| read_time(text, zone))
}

/// Maxio sends amounts in cents.
fn cents(value: Option<&String>) -> Option<i64> {
    value?.parse().ok()
}

pub fn parse(body: &[u8], zone: &Zone) -> Result<Vec<CommerceEvent>, ParseError> {
    let pairs: Vec<(String, String)> = serde_urlencoded::from_bytes(body).map_err(|e| ParseError(e.to_string()))?;
    let form: HashMap<String, String> = pairs.into_iter().collect();
    let get = |key: &str| form.get(key).filter(|v| !v.is_empty());
    let sub = |field: &str| get(&format!("payload[subscription][{field}]"));
    let id = get("id").ok_or_else(|| ParseError("no id field".into()))?.clone();
    let kind = get("event").ok_or_else(|| ParseError("no event field".into()))?.clone();
    let time = |value| time(value, zone);
    let occurred_at = time(sub("updated_at"))
        .or_else(|| time(get("payload[transaction][created_at]")))
        .or_else(|| time(get("payload[timestamp]")))
        .or_else(|| time(sub("created_at")))
        .ok_or_else(|| ParseError("no time in the payload".into()))?;
    let first = get("payload[subscription][customer][first_name]")
        .cloned()
        .unwrap_or_default();
    let last = get("payload[subscription][customer][last_name]")
        .cloned()
        .unwrap_or_default();
    let name = format!("{first} {last}").trim().to_owned();
    let state = sub("state").map(String::as_str);
    let scheduled = sub("cancel_at_end_of_period").is_some_and(|v| v == "true");
    // `refund_success` names the refund's and the refunded payment's amounts: less than the
    // payment is a partial refund. Without the amounts the refund is taken as whole.
    let refund = match (
        cents(get("payload[refund_amount_in_cents]")),
        cents(get("payload[payment_amount_in_cents]")),
    ) {
        (Some(refund), Some(paid)) if refund < paid => Change::PartialRefund,
        _ => Change::Refunded,
    };
    let change = match (kind.as_str(), state) {
        ("refund_success", _) => refund,
        ("renewal_failure", _) | ("payment_failure", _) => Change::PaymentFailed,
        ("renewal_success", _) => Change::Renewal,
        ("signup_success", _) => Change::Purchase,
        (_, Some("canceled")) | (_, Some("expired")) | (_, Some("suspended")) | (_, Some("on_hold")) => Change::Ended,
        (_, Some("past_due")) | (_, Some("unpaid")) => Change::PaymentFailed,
        (_, Some("trialing")) => Change::Trial,
        (_, Some("active")) if scheduled => Change::CancelScheduled,
        (_, Some("active")) => Change::Active,
        _ => Change::Ignored,
    };
    let product = get("payload[subscription][product][handle]")
        .or_else(|| get("payload[subscription][product][id]"))
        .or_else(|| get("payload[product][handle]"))
        .or_else(|| get("payload[product][id]"))
        .cloned();
    Ok(vec![CommerceEvent {
        event_id: id,
        event_type: kind,
        occurred_at,
        order_ref: sub("id").or_else(|| get("payload[subscription_id]")).cloned(),
        aliases: vec![],
        change,
        customer: Customer {
            email: get("payload[subscription][customer][email]").cloned(),
            name: (!name.is_empty()).then_some(name),
            reference: get("payload[subscription][customer][reference]")
                .or_else(|| get("payload[subscription][customer][id]"))
                .cloned(),
        },
        items: product.map(|p| {
            vec![Item {
                provider_ref: Some(p),
                sku: None,
                quantity: 1,
            }]
        }),
        period_end: time(sub("current_period_ends_at")),
        lookups: Vec::new(),
        refunded_items: Vec::new(),
        missing: None,
        // Seats are a quantity-based component: its allocation is the subscription's quantity.
        quantity: get("payload[new_allocation]")
            .or_else(|| get("payload[allocation][quantity]"))
            .and_then(|q| q.parse::<f64>().ok())
            .filter(|q| q.is_finite() && *q >= 0.0)
            .map(|q| q.ceil() as i64),
    }])
}
