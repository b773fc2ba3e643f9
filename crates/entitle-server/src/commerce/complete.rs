//! Completing payloads from the provider's API: Stripe Checkout line items, Stripe and Paddle
//! customer emails. Asked before the event is applied, outside any transaction; a failed look-up
//! leaves the event incomplete (stored for replay), never guessed.

use serde_json::Value;
use std::time::Duration;

use super::event::{CommerceEvent, Item, Lookup};
use super::{s, Provider};

pub const STRIPE_API: &str = "https://api.stripe.com";
pub const PADDLE_API: &str = "https://api.paddle.com";
pub const ZUORA_API: &str = "https://rest.zuora.com";

/// What the connection needs to ask its provider.
pub struct ApiAccess<'a> {
    pub provider: Provider,
    pub key: &'a str,
    pub base_url: Option<&'a str>,
}

fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap_or_default()
}

async fn get(client: &reqwest::Client, url: &str, key: &str) -> Result<Value, String> {
    let response = client
        .get(url)
        .bearer_auth(key)
        .send()
        .await
        .map_err(|e| format!("{url}: {e}"))?;
    let status = response.status();
    if !status.is_success() {
        return Err(format!("{url}: HTTP {status}"));
    }
    response.json().await.map_err(|e| format!("{url}: {e}"))
}

/// Answers the event's look-ups; errors say which one failed (the event stays incomplete).
pub async fn complete(event: &mut CommerceEvent, api: &ApiAccess<'_>) -> Result<(), String> {
    let client = client();
    let lookups = std::mem::take(&mut event.lookups);
    for lookup in lookups {
        match (api.provider, lookup) {
            (Provider::Stripe, Lookup::StripeLineItems { session }) => {
                let base = api.base_url.unwrap_or(STRIPE_API).trim_end_matches('/');
                let url = format!("{base}/v1/checkout/sessions/{session}/line_items?limit=100");
                let answer = get(&client, &url, api.key).await?;
                let items: Vec<Item> = answer["data"]
                    .as_array()
                    .map(|lines| {
                        lines
                            .iter()
                            .map(|line| Item {
                                provider_ref: s(&line["price"]["id"]),
                                sku: None,
                                quantity: line["quantity"].as_i64().unwrap_or(1),
                            })
                            .collect()
                    })
                    .unwrap_or_default();
                if !items.is_empty() {
                    event.items = Some(items);
                }
            }
            (Provider::Stripe, Lookup::StripeCustomer { customer }) => {
                let base = api.base_url.unwrap_or(STRIPE_API).trim_end_matches('/');
                let answer = get(&client, &format!("{base}/v1/customers/{customer}"), api.key).await?;
                event.customer.email = event.customer.email.take().or_else(|| s(&answer["email"]));
                event.customer.name = event.customer.name.take().or_else(|| s(&answer["name"]));
            }
            (Provider::Paddle, Lookup::PaddleCustomer { customer }) => {
                let base = api.base_url.unwrap_or(PADDLE_API).trim_end_matches('/');
                let answer = get(&client, &format!("{base}/customers/{customer}"), api.key).await?;
                event.customer.email = event.customer.email.take().or_else(|| s(&answer["data"]["email"]));
                event.customer.name = event.customer.name.take().or_else(|| s(&answer["data"]["name"]));
            }
            (Provider::Zuora, Lookup::ZuoraAccount { account }) => {
                let base = api.base_url.unwrap_or(ZUORA_API).trim_end_matches('/');
                let answer = get(&client, &format!("{base}/v1/accounts/{account}"), api.key).await?;
                let contact = &answer["billToContact"];
                event.customer.email = event.customer.email.take().or_else(|| s(&contact["workEmail"]));
                let name = format!(
                    "{} {}",
                    s(&contact["firstName"]).unwrap_or_default(),
                    s(&contact["lastName"]).unwrap_or_default()
                );
                event.customer.name = event
                    .customer
                    .name
                    .take()
                    .or_else(|| Some(name.trim().to_owned()).filter(|n| !n.is_empty()));
            }
            _ => {}
        }
    }
    Ok(())
}
