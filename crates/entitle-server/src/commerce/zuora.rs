//! Zuora callout notifications. Zuora has no fixed signature or payload: the vendor configures the
//! callout template. Entitle accepts either
//! * HMAC: algorithm SHA-256, key = a connection secret, data = the request body, sent in the header
//!   the connection names (`signature_header`, default `X-Zuora-Signature`), hex or base64; or
//! * Basic authentication: a connection secret `basic:user:password`.
//!
//! The body is the JSON template documented in the README (Zuora merge fields inside), and the
//! `Zuora-Notification-Id` header (stable across retries) deduplicates.

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use chrono::{DateTime, Utc};
use serde_json::Value;

use super::event::{Change, CommerceEvent, Customer, Item, Lookup};
use super::signature::{any_matches, decode_base64, decode_hex, Rejection};
use super::{header, s, ParseError, Verification};
use crate::domain::zone::{read_time, Zone};

/// The default zone of a Zuora tenant.
pub const DEFAULT_ZONE: &str = "America/Los_Angeles";

/// A refund is whole unless the template's `refund_amount` is below its `payment_amount`.
fn refund(b: &Value) -> Change {
    let amount = |field: &str| s(&b[field]).and_then(|a| a.parse::<f64>().ok());
    match (amount("refund_amount"), amount("payment_amount")) {
        (Some(refund), Some(paid)) if refund < paid => Change::PartialRefund,
        _ => Change::Refunded,
    }
}

pub const DEFAULT_SIGNATURE_HEADER: &str = "x-zuora-signature";

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

pub fn verify(v: &Verification<'_>, signature_header: Option<&str>) -> Result<(), Rejection> {
    let basic: Vec<&str> = v.secrets.iter().filter_map(|s| s.strip_prefix("basic:")).collect();
    if let Some(credentials) = header(v.headers, "authorization").and_then(|a| a.strip_prefix("Basic ")) {
        let decoded = STANDARD
            .decode(credentials.trim())
            .map_err(|_| Rejection::MalformedSignature)?;
        return if basic
            .iter()
            .any(|expected| constant_time_eq(expected.as_bytes(), &decoded))
        {
            Ok(())
        } else {
            Err(Rejection::BadSignature)
        };
    }
    let name = signature_header.unwrap_or(DEFAULT_SIGNATURE_HEADER);
    let value = header(v.headers, name).ok_or(Rejection::MissingSignature)?;
    let expected = decode_hex(value).or_else(|_| decode_base64(value))?;
    let hmac_secrets: Vec<String> = v.secrets.iter().filter(|s| !s.starts_with("basic:")).cloned().collect();
    if any_matches(&hmac_secrets, &[v.body], &expected) {
        Ok(())
    } else {
        Err(Rejection::BadSignature)
    }
}

/// Zuora's dates (`2026-03-31`) and date-times (`2015-03-08T02:00:00`) are in the tenant's zone.
fn date(value: &Value, zone: &Zone) -> Option<DateTime<Utc>> {
    read_time(value.as_str()?.trim(), zone)
}

pub fn parse(headers: &axum::http::HeaderMap, body: &[u8], zone: &Zone) -> Result<Vec<CommerceEvent>, ParseError> {
    let id = header(headers, "zuora-notification-id")
        .ok_or_else(|| ParseError("Zuora-Notification-Id header missing".into()))?;
    let b: Value = serde_json::from_slice(body).map_err(|e| ParseError(e.to_string()))?;
    let kind = s(&b["event"]).ok_or_else(|| ParseError("no event field".into()))?;
    let occurred_at = date(&b["timestamp"], zone).ok_or_else(|| ParseError("no readable timestamp field".into()))?;
    let status = b["status"].as_str().unwrap_or_default().to_lowercase();
    let term_end = date(&b["term_end"], zone);
    // A cancellation submitted today may take effect at the end of the term: until its effective
    // date (or, without one, the term end) the customer has paid and keeps the licence.
    let cancel_end = date(&b["effective_date"], zone).or(term_end);
    let cancelled = || match cancel_end {
        Some(end) if end > occurred_at => Change::CancelScheduled,
        _ => Change::Ended,
    };
    let change = match (kind.as_str(), status.as_str()) {
        ("PaymentDeclined", _) => Change::PaymentFailed,
        ("PaymentProcessed", _) | ("RenewSubscription", _) => Change::Renewal,
        ("CreditBalanceRefundProcessed", _) | ("RefundProcessed", _) => refund(&b),
        ("CancelSubscription", _) | (_, "cancelled") => cancelled(),
        (_, "expired") | (_, "suspended") => Change::Ended,
        ("CreateSubscription", _) => Change::Purchase,
        (_, "active") => Change::Active,
        _ => Change::Ignored,
    };
    let period_end = match change {
        Change::CancelScheduled => cancel_end,
        _ => term_end,
    };
    let account = s(&b["account"]);
    let customer = Customer {
        email: s(&b["email"]),
        name: s(&b["name"]),
        reference: account.clone(),
    };
    let mut lookups = Vec::new();
    if let (None, Some(account)) = (&customer.email, &account) {
        lookups.push(Lookup::ZuoraAccount {
            account: account.clone(),
        });
    }
    Ok(vec![CommerceEvent {
        event_id: id.to_owned(),
        event_type: kind,
        occurred_at,
        order_ref: s(&b["subscription"]),
        aliases: vec![],
        change,
        customer,
        items: s(&b["rate_plan"]).map(|plan| {
            let quantity = s(&b["quantity"])
                .and_then(|q| q.parse::<f64>().ok())
                .map_or(1, |q| q.max(1.0) as i64);
            vec![Item {
                provider_ref: Some(plan),
                sku: None,
                quantity,
            }]
        }),
        period_end,
        lookups,
        refunded_items: Vec::new(),
        missing: None,
        quantity: None,
    }])
}
