//! The generic format, for any other storefront or a vendor's own back end. Signed like Standard
//! Webhooks (standardwebhooks.com): `webhook-id`, `webhook-timestamp` and
//! `webhook-signature: v1,<base64 HMAC-SHA256(secret, "{id}.{timestamp}.{body}")>` (several
//! space-separated signatures during a secret rotation; a `whsec_` secret is base64 of the key).
//!
//! ```json
//! {"type": "purchase", "occurred_at": "2026-05-01T12:00:00Z", "order_ref": "order-1001",
//!  "customer": {"email": "buyer@example.com", "name": "Ada", "ref": "crm-42"},
//!  "items": [{"sku": "PF-PRO-Y", "quantity": 2}], "period_end": "2027-05-01T12:00:00Z"}
//! ```
//! `type` is one of `purchase`, `renewal`, `trial`, `active`, `cancellation_scheduled`, `ended`,
//! `payment_failed`, `refunded`. Items name an offering `sku` or a mapped `ref`.

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use chrono::{DateTime, Utc};
use serde::Deserialize;

use super::event::{Change, CommerceEvent, Customer, Item};
use super::signature::{decode_base64, mac, Rejection};
use super::{header, ParseError, Verification};
use hmac::Mac;

pub const TOLERANCE_SECONDS: i64 = 300;

fn key_bytes(secret: &str) -> Vec<u8> {
    match secret.strip_prefix("whsec_") {
        Some(encoded) => STANDARD.decode(encoded).unwrap_or_else(|_| secret.as_bytes().to_vec()),
        None => secret.as_bytes().to_vec(),
    }
}

pub fn verify(v: &Verification<'_>) -> Result<(), Rejection> {
    let id = header(v.headers, "webhook-id").ok_or(Rejection::MissingSignature)?;
    let timestamp = header(v.headers, "webhook-timestamp").ok_or(Rejection::MissingSignature)?;
    let signatures = header(v.headers, "webhook-signature").ok_or(Rejection::MissingSignature)?;
    let at: i64 = timestamp.trim().parse().map_err(|_| Rejection::MalformedSignature)?;
    if (v.now.timestamp() - at).abs() > v.tolerance.unwrap_or(TOLERANCE_SECONDS) {
        return Err(Rejection::Stale);
    }
    for candidate in signatures.split_whitespace() {
        let Some(encoded) = candidate.strip_prefix("v1,") else {
            continue;
        };
        let Ok(expected) = decode_base64(encoded) else { continue };
        for secret in v.secrets {
            let parts: [&[u8]; 5] = [id.as_bytes(), b".", timestamp.as_bytes(), b".", v.body];
            if mac(&key_bytes(secret), &parts).verify_slice(&expected).is_ok() {
                return Ok(());
            }
        }
    }
    Err(Rejection::BadSignature)
}

/// The headers a sender sets (for documentation examples and tests).
pub fn sign(secret: &str, id: &str, timestamp: i64, body: &[u8]) -> String {
    let ts = timestamp.to_string();
    let parts: [&[u8]; 5] = [id.as_bytes(), b".", ts.as_bytes(), b".", body];
    format!(
        "v1,{}",
        STANDARD.encode(mac(&key_bytes(secret), &parts).finalize().into_bytes())
    )
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Payload {
    #[serde(rename = "type")]
    kind: String,
    occurred_at: DateTime<Utc>,
    order_ref: String,
    #[serde(default)]
    customer: Option<GenericCustomer>,
    #[serde(default)]
    items: Option<Vec<GenericItem>>,
    #[serde(default)]
    period_end: Option<DateTime<Utc>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct GenericCustomer {
    email: Option<String>,
    name: Option<String>,
    #[serde(rename = "ref")]
    reference: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct GenericItem {
    sku: Option<String>,
    #[serde(rename = "ref")]
    reference: Option<String>,
    #[serde(default = "one")]
    quantity: i64,
}

fn one() -> i64 {
    1
}

pub fn parse(headers: &axum::http::HeaderMap, body: &[u8]) -> Result<Vec<CommerceEvent>, ParseError> {
    let id = header(headers, "webhook-id").ok_or_else(|| ParseError("webhook-id header missing".into()))?;
    let payload: Payload = serde_json::from_slice(body).map_err(|e| ParseError(e.to_string()))?;
    let change = match payload.kind.as_str() {
        "purchase" => Change::Purchase,
        "renewal" => Change::Renewal,
        "trial" => Change::Trial,
        "active" => Change::Active,
        "cancellation_scheduled" => Change::CancelScheduled,
        "ended" => Change::Ended,
        "payment_failed" => Change::PaymentFailed,
        "refunded" => Change::Refunded,
        "partial_refund" => Change::PartialRefund,
        other => return Err(ParseError(format!("unknown type {other:?}"))),
    };
    let customer = payload.customer.map_or_else(Customer::default, |c| Customer {
        email: c.email,
        name: c.name,
        reference: c.reference,
    });
    let items = payload.items.map(|items| {
        items
            .into_iter()
            .map(|i| Item {
                provider_ref: i.reference,
                sku: i.sku,
                quantity: i.quantity,
            })
            .collect()
    });
    // A partial refund's items are the lines it takes back, not what the order holds.
    let (items, refunded_items) = match change {
        Change::PartialRefund => (None, items.unwrap_or_default()),
        _ => (items, Vec::new()),
    };
    Ok(vec![CommerceEvent {
        event_id: id.to_owned(),
        event_type: payload.kind,
        occurred_at: payload.occurred_at,
        order_ref: Some(payload.order_ref),
        aliases: vec![],
        change,
        customer,
        items,
        period_end: payload.period_end,
        lookups: Vec::new(),
        refunded_items,
        missing: None,
        quantity: None,
    }])
}
