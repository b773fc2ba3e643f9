//! Completing payloads from the provider's API: Stripe Checkout line items, Stripe and Paddle
//! customer emails, Zuora accounts. Asked before the event is applied, outside any transaction; a
//! failed look-up leaves the event incomplete (stored for replay), never guessed.
//!
//! The request carries the tenant's API key, so it goes only to the provider's official API hosts
//! (HTTPS) unless the operator allows others (`provider_api_allow_hosts`): a tenant must not be
//! able to point the server, key in hand, at loopback or the internal network. Redirects are not
//! followed (they could lead anywhere), answers are capped, and failures are summarised without the
//! socket error text (which would make the server a port scanner).

use reqwest::Url;
use serde_json::Value;
use std::fmt;
use std::time::Duration;

use super::event::{CommerceEvent, Item, Lookup};
use super::{s, Provider};

pub const STRIPE_API: &str = "https://api.stripe.com";
pub const PADDLE_API: &str = "https://api.paddle.com";
pub const ZUORA_API: &str = "https://rest.zuora.com";
pub const FASTSPRING_API: &str = "https://api.fastspring.com";

/// Provider answers larger than this are refused (the documents asked for are a few KiB).
const MAX_ANSWER_BYTES: usize = 1024 * 1024;
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

/// The official API hosts of each provider; `*.` matches any subdomain (account-specific hosts).
fn official_hosts(provider: Provider) -> &'static [&'static str] {
    match provider {
        Provider::Stripe => &["api.stripe.com"],
        Provider::Paddle => &["api.paddle.com", "sandbox-api.paddle.com"],
        // Zuora's REST endpoints per data centre: production, API sandbox, and the developer
        // and central sandboxes (US Cloud 1 and 2, EU, APAC).
        Provider::Zuora => &[
            "rest.zuora.com",
            "rest.na.zuora.com",
            "rest.eu.zuora.com",
            "rest.ap.zuora.com",
            "rest.apisandbox.zuora.com",
            "rest.sandbox.na.zuora.com",
            "rest.sandbox.eu.zuora.com",
            "rest.test.zuora.com",
            "rest.test.eu.zuora.com",
            "rest.test.ap.zuora.com",
            "rest.pt1.zuora.com",
        ],
        Provider::FastSpring => &["api.fastspring.com"],
        Provider::LemonSqueezy => &["api.lemonsqueezy.com"],
        Provider::Maxio => &["*.chargify.com"],
        Provider::Shopify => &["*.myshopify.com"],
        // Not a provider with an API of its own.
        Provider::Generic => &[],
    }
}

/// Why the provider's API did not answer usefully, in words safe to store and show.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ApiProblem {
    HostNotAllowed,
    Unreachable,
    TimedOut,
    Status(u16),
    TooLarge,
    Unreadable,
}

impl fmt::Display for ApiProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ApiProblem::HostNotAllowed => f.write_str("provider API host not allowed"),
            ApiProblem::Unreachable => f.write_str("provider API unreachable"),
            ApiProblem::TimedOut => f.write_str("provider API timed out"),
            ApiProblem::Status(code) => write!(f, "provider API answered {code}"),
            ApiProblem::TooLarge => f.write_str("provider API answer too large"),
            ApiProblem::Unreadable => f.write_str("provider API answer unreadable"),
        }
    }
}

/// Hosts the operator allows besides the official ones: `host`, `host:port`, or `*` for any.
#[derive(Debug, Clone, Default)]
pub struct AllowedHosts {
    any: bool,
    /// (lower-case host, port if given: without one, any port).
    hosts: Vec<(String, Option<u16>)>,
}

impl AllowedHosts {
    /// Parses the entries of `provider_api_allow_hosts`.
    pub fn parse<S: AsRef<str>>(entries: &[S]) -> Result<AllowedHosts, String> {
        let mut allowed = AllowedHosts::default();
        for entry in entries.iter().map(|e| e.as_ref().trim()).filter(|e| !e.is_empty()) {
            if entry == "*" {
                allowed.any = true;
                continue;
            }
            // `[v6]:port`, `[v6]`, `host:port` or `host`.
            let (host, port) = match entry.rsplit_once(':') {
                Some((host, port)) if !port.contains(']') && (!host.contains(':') || host.ends_with(']')) => {
                    let port = port
                        .parse::<u16>()
                        .map_err(|_| format!("{entry:?} is not host[:port]"))?;
                    (host, Some(port))
                }
                _ => (entry, None),
            };
            if host.is_empty() || host.contains(['/', '@', '?', '#', ' ']) {
                return Err(format!("{entry:?} is not host[:port]"));
            }
            allowed.hosts.push((host.to_ascii_lowercase(), port));
        }
        Ok(allowed)
    }

    fn allows(&self, host: &str, port: Option<u16>) -> bool {
        self.any
            || self
                .hosts
                .iter()
                .any(|(h, p)| h == host && p.is_none_or(|p| Some(p) == port))
    }

    /// Checks a URL the server is about to send `provider`'s API key to: HTTPS to an official host
    /// on the default port, or a host the operator allows (HTTP or HTTPS); never with credentials
    /// in the URL.
    pub fn check(&self, provider: Provider, url: &str) -> Result<Url, ApiProblem> {
        let url = Url::parse(url).map_err(|_| ApiProblem::HostNotAllowed)?;
        let host = url.host_str().ok_or(ApiProblem::HostNotAllowed)?.to_ascii_lowercase();
        if !url.username().is_empty() || url.password().is_some() {
            return Err(ApiProblem::HostNotAllowed);
        }
        let official = url.scheme() == "https"
            && url.port().is_none()
            && official_hosts(provider)
                .iter()
                .any(|pattern| match pattern.strip_prefix("*.") {
                    Some(domain) => host
                        .strip_suffix(domain)
                        .is_some_and(|sub| sub.len() > 1 && sub.ends_with('.') && !sub[..sub.len() - 1].contains('.')),
                    None => host == *pattern,
                });
        let allowed = matches!(url.scheme(), "https" | "http") && self.allows(&host, url.port_or_known_default());
        if official || allowed {
            Ok(url)
        } else {
            Err(ApiProblem::HostNotAllowed)
        }
    }

    /// Checks a connection's `api_base_url` when it is set: allowed host, and a plain base (no
    /// query or fragment, which the paths appended later would garble).
    pub fn check_base(&self, provider: Provider, base: &str) -> Result<(), ApiProblem> {
        let url = self.check(provider, base)?;
        if url.query().is_some() || url.fragment().is_some() {
            return Err(ApiProblem::HostNotAllowed);
        }
        Ok(())
    }
}

/// The HTTP client for providers' APIs, shared by all connections, and the hosts it may call.
pub struct ProviderApi {
    client: reqwest::Client,
    allowed: AllowedHosts,
}

impl ProviderApi {
    pub fn new(allowed: AllowedHosts) -> Result<ProviderApi, reqwest::Error> {
        let client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .connect_timeout(CONNECT_TIMEOUT)
            .timeout(REQUEST_TIMEOUT)
            .build()?;
        Ok(ProviderApi { client, allowed })
    }

    pub fn allowed(&self) -> &AllowedHosts {
        &self.allowed
    }

    /// `base` + the path segments (each percent-encoded, so ids from payloads stay one segment),
    /// checked against the allowed hosts just before the call.
    fn url(&self, provider: Provider, base: &str, segments: &[&str], query: Option<&str>) -> Result<Url, ApiProblem> {
        let mut url = self.allowed.check(provider, base)?;
        url.set_query(None);
        url.set_fragment(None);
        url.path_segments_mut()
            .map_err(|_| ApiProblem::HostNotAllowed)?
            .pop_if_empty()
            .extend(segments);
        url.set_query(query);
        self.allowed.check(provider, url.as_str())
    }

    async fn get(&self, url: Url, provider: Provider, key: &str) -> Result<Value, ApiProblem> {
        let request = match provider {
            // FastSpring's API takes basic authentication: the key is `user:password`.
            Provider::FastSpring => {
                let (user, password) = key.split_once(':').unwrap_or((key, ""));
                self.client.get(url).basic_auth(user, Some(password))
            }
            _ => self.client.get(url).bearer_auth(key),
        };
        let mut response = request.send().await.map_err(|e| {
            // The details stay in the operator's log; the tenant sees the summary.
            tracing::warn!(error = %e, "calling a provider API failed");
            if e.is_timeout() {
                ApiProblem::TimedOut
            } else {
                ApiProblem::Unreachable
            }
        })?;
        let status = response.status();
        if !status.is_success() {
            return Err(ApiProblem::Status(status.as_u16()));
        }
        if response
            .content_length()
            .is_some_and(|length| length > MAX_ANSWER_BYTES as u64)
        {
            return Err(ApiProblem::TooLarge);
        }
        let mut bytes = Vec::new();
        while let Some(chunk) = response.chunk().await.map_err(|e| {
            tracing::warn!(error = %e, "reading a provider API answer failed");
            if e.is_timeout() {
                ApiProblem::TimedOut
            } else {
                ApiProblem::Unreachable
            }
        })? {
            if bytes.len() + chunk.len() > MAX_ANSWER_BYTES {
                return Err(ApiProblem::TooLarge);
            }
            bytes.extend_from_slice(&chunk);
        }
        serde_json::from_slice(&bytes).map_err(|_| ApiProblem::Unreadable)
    }
}

/// What the connection needs to ask its provider.
pub struct ApiAccess<'a> {
    pub provider: Provider,
    pub key: &'a str,
    pub base_url: Option<&'a str>,
}

/// Answers the event's look-ups; an error says why the event stays incomplete.
pub async fn complete(event: &mut CommerceEvent, api: &ProviderApi, access: &ApiAccess<'_>) -> Result<(), ApiProblem> {
    let lookups = std::mem::take(&mut event.lookups);
    let base = |default: &'static str| access.base_url.unwrap_or(default);
    for lookup in lookups {
        match (access.provider, lookup) {
            (Provider::Stripe, Lookup::StripeLineItems { session }) => {
                let url = api.url(
                    access.provider,
                    base(STRIPE_API),
                    &["v1", "checkout", "sessions", &session, "line_items"],
                    Some("limit=100"),
                )?;
                let answer = api.get(url, access.provider, access.key).await?;
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
                let url = api.url(access.provider, base(STRIPE_API), &["v1", "customers", &customer], None)?;
                let answer = api.get(url, access.provider, access.key).await?;
                event.customer.email = event.customer.email.take().or_else(|| s(&answer["email"]));
                event.customer.name = event.customer.name.take().or_else(|| s(&answer["name"]));
            }
            (Provider::Paddle, Lookup::PaddleCustomer { customer }) => {
                let url = api.url(access.provider, base(PADDLE_API), &["customers", &customer], None)?;
                let answer = api.get(url, access.provider, access.key).await?;
                event.customer.email = event.customer.email.take().or_else(|| s(&answer["data"]["email"]));
                event.customer.name = event.customer.name.take().or_else(|| s(&answer["data"]["name"]));
            }
            (Provider::Zuora, Lookup::ZuoraAccount { account }) => {
                let url = api.url(access.provider, base(ZUORA_API), &["v1", "accounts", &account], None)?;
                let answer = api.get(url, access.provider, access.key).await?;
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
            (Provider::FastSpring, Lookup::FastSpringSubscription { subscription }) => {
                let url = api.url(
                    access.provider,
                    base(FASTSPRING_API),
                    &["subscriptions", &subscription],
                    None,
                )?;
                let answer = api.get(url, access.provider, access.key).await?;
                // One id answers the subscription itself; several a list.
                let found = if answer["id"].is_string() {
                    &answer
                } else {
                    &answer["subscriptions"][0]
                };
                if let Some(next) = found["next"].as_i64().and_then(chrono::DateTime::from_timestamp_millis) {
                    event.period_end = Some(next);
                    event.missing = None;
                }
            }
            _ => {}
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_official_https_hosts_unless_the_operator_allows_more() {
        let none = AllowedHosts::default();
        for ok in [
            (Provider::Stripe, "https://api.stripe.com"),
            (Provider::Stripe, "https://API.stripe.com/"),
            (Provider::Paddle, "https://sandbox-api.paddle.com"),
            (Provider::Zuora, "https://rest.test.eu.zuora.com"),
            (Provider::Maxio, "https://acme.chargify.com"),
        ] {
            assert!(none.check_base(ok.0, ok.1).is_ok(), "{ok:?}");
        }
        for refused in [
            (Provider::Stripe, "http://api.stripe.com"),
            (Provider::Stripe, "https://api.stripe.com:8443"),
            (Provider::Stripe, "https://api.stripe.com.evil.example"),
            (Provider::Stripe, "https://user:pw@api.stripe.com"),
            (Provider::Stripe, "https://api.paddle.com"),
            (Provider::Stripe, "http://127.0.0.1:8080"),
            (Provider::Stripe, "http://[::1]/"),
            (Provider::Stripe, "https://api.stripe.com/?x=1"),
            (Provider::Maxio, "https://a.b.chargify.com"),
            (Provider::Maxio, "https://chargify.com"),
            (Provider::Generic, "https://api.stripe.com"),
            (Provider::Stripe, "file:///etc/passwd"),
            (Provider::Stripe, "not a url"),
        ] {
            assert_eq!(
                none.check_base(refused.0, refused.1),
                Err(ApiProblem::HostNotAllowed),
                "{refused:?}"
            );
        }
        let some = AllowedHosts::parse(&["127.0.0.1:4000", " proxy.internal ", "[::1]:9"]).unwrap();
        assert!(some
            .check_base(Provider::Stripe, "http://127.0.0.1:4000/stripe")
            .is_ok());
        assert!(some.check_base(Provider::Stripe, "http://127.0.0.1:4001").is_err());
        assert!(some.check_base(Provider::Paddle, "https://proxy.internal:7443").is_ok());
        assert!(some.check_base(Provider::Paddle, "http://[::1]:9").is_ok());
        assert!(some.check_base(Provider::Stripe, "ftp://proxy.internal").is_err());
        let any = AllowedHosts::parse(&["*"]).unwrap();
        assert!(any.check_base(Provider::Generic, "http://10.0.0.1:1").is_ok());
        assert!(AllowedHosts::parse(&["host:port"]).is_err());
        assert!(AllowedHosts::parse(&["a/b"]).is_err());
    }
}
