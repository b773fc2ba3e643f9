//! Storefront connectors: a delivery's signature is checked on the raw bytes, then each provider's
//! payload is read into [`event::CommerceEvent`]s, which one lifecycle (in `services::commerce`)
//! applies to entitlements.

pub mod complete;
pub mod event;
pub mod fastspring;
pub mod generic;
pub mod lemonsqueezy;
pub mod maxio;
pub mod paddle;
pub mod shopify;
pub mod signature;
pub mod stripe;
pub mod zuora;

use axum::http::HeaderMap;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;

use crate::domain::zone::Zone;
use event::CommerceEvent;
use signature::Rejection;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Provider {
    Stripe,
    Paddle,
    LemonSqueezy,
    Shopify,
    #[serde(rename = "fastspring")]
    FastSpring,
    /// Maxio Advanced Billing, formerly Chargify.
    Maxio,
    /// Zuora callout notifications (HMAC header or basic authentication).
    Zuora,
    /// Any other storefront or your own back end (Standard Webhooks signatures).
    Generic,
}

impl Provider {
    pub fn as_str(self) -> &'static str {
        match self {
            Provider::Stripe => "stripe",
            Provider::Paddle => "paddle",
            Provider::LemonSqueezy => "lemon_squeezy",
            Provider::Shopify => "shopify",
            Provider::FastSpring => "fastspring",
            Provider::Maxio => "maxio",
            Provider::Zuora => "zuora",
            Provider::Generic => "generic",
        }
    }

    pub fn parse(text: &str) -> Option<Provider> {
        match text {
            "stripe" => Some(Provider::Stripe),
            "paddle" => Some(Provider::Paddle),
            "lemon_squeezy" => Some(Provider::LemonSqueezy),
            "shopify" => Some(Provider::Shopify),
            "fastspring" => Some(Provider::FastSpring),
            "maxio" | "chargify" => Some(Provider::Maxio),
            "zuora" => Some(Provider::Zuora),
            "generic" => Some(Provider::Generic),
            _ => None,
        }
    }

    pub fn verify(self, v: &Verification<'_>) -> Result<(), Rejection> {
        match self {
            Provider::Stripe => stripe::verify(v),
            Provider::Paddle => paddle::verify(v),
            Provider::LemonSqueezy => lemonsqueezy::verify(v),
            Provider::Shopify => shopify::verify(v),
            Provider::FastSpring => fastspring::verify(v),
            Provider::Maxio => maxio::verify(v),
            Provider::Zuora => zuora::verify(v, v.signature_header),
            Provider::Generic => generic::verify(v),
        }
    }

    /// Reads a delivery; `zone` is the connection's, for dates and date-times without an offset.
    pub fn parse_delivery(
        self,
        headers: &HeaderMap,
        body: &[u8],
        zone: &Zone,
    ) -> Result<Vec<CommerceEvent>, ParseError> {
        match self {
            Provider::Stripe => stripe::parse(body),
            Provider::Paddle => paddle::parse(body),
            Provider::LemonSqueezy => lemonsqueezy::parse(body),
            Provider::Shopify => shopify::parse(headers, body),
            Provider::FastSpring => fastspring::parse(body),
            Provider::Maxio => maxio::parse(body, zone),
            Provider::Zuora => zuora::parse(headers, body, zone),
            Provider::Generic => generic::parse(headers, body),
        }
    }

    /// The zone the provider's local dates are in unless the connection says otherwise.
    pub fn default_zone(self) -> Zone {
        match self {
            Provider::Zuora => Zone::parse(zuora::DEFAULT_ZONE).unwrap_or_else(Zone::utc),
            _ => Zone::utc(),
        }
    }

    /// The headers worth keeping with a stored delivery.
    pub fn kept_headers(self) -> &'static [&'static str] {
        match self {
            Provider::Stripe => &["stripe-signature"],
            Provider::Paddle => &["paddle-signature"],
            Provider::LemonSqueezy => &["x-signature", "x-event-name"],
            Provider::FastSpring => &["x-fs-signature"],
            Provider::Maxio => &["x-chargify-webhook-signature-hmac-sha-256", "x-chargify-webhook-id"],
            Provider::Zuora => &["zuora-notification-id", "zuora-request-id"],
            Provider::Shopify => &[
                "x-shopify-hmac-sha256",
                "x-shopify-topic",
                "x-shopify-webhook-id",
                "x-shopify-event-id",
                "x-shopify-shop-domain",
            ],
            Provider::Generic => &["webhook-id", "webhook-timestamp", "webhook-signature"],
        }
    }
}

/// What a signature check needs.
pub struct Verification<'a> {
    pub headers: &'a HeaderMap,
    pub body: &'a [u8],
    pub secrets: &'a [String],
    pub now: DateTime<Utc>,
    /// Overrides the provider's timestamp tolerance (seconds).
    pub tolerance: Option<i64>,
    /// The header a configurable scheme (Zuora) signs into.
    pub signature_header: Option<&'a str>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unreadable delivery: {0}")]
pub struct ParseError(pub String);

pub(crate) fn header<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

/// A JSON string (or number) as text.
pub(crate) fn s(value: &Value) -> Option<String> {
    match value {
        Value::String(text) if !text.is_empty() => Some(text.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// An RFC 3339 time.
pub(crate) fn at(value: &Value) -> Option<DateTime<Utc>> {
    value
        .as_str()
        .and_then(|t| DateTime::parse_from_rfc3339(t).ok())
        .map(|t| t.with_timezone(&Utc))
}

#[cfg(test)]
mod tests;
