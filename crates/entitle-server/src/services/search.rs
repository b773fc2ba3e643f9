//! One search box for support: whatever they type (a customer's name or email, an end user's
//! email, an activation code, an order reference, a provider's customer or subscription id, one
//! of our ids, a seat id or seat name) answers with the matching customers, end users,
//! entitlements and seats of the tenant. What the text looks like decides which lookups run, so
//! each is an exact or prefix match on an index: fast at millions of rows.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::{Ctx, ServiceResult};
use crate::domain::entitlement::status;
use crate::domain::{ActivationCode, Email, EntitlementStatus, PageLimit, RuleViolation};
use crate::store::search::{self as db, ActivationHit, CustomerHit, EndUserHit, Hit, Lookup};
use crate::store::{Conn, Store};

/// Longer than any id, code, email or reference we keep.
const MAX_QUERY_CHARS: usize = 256;
const DEFAULT_LIMIT: u32 = 10;

#[derive(Debug, Clone, Default, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct SearchQuery {
    /// What support typed. Leading and trailing spaces are ignored.
    pub q: Option<String>,
    /// Hits per group (1–200, default 10).
    #[param(inline)]
    pub limit: Option<PageLimit>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct EntitlementHit {
    pub id: String,
    pub customer_id: String,
    pub sku: String,
    pub order_ref: Option<String>,
    pub status: EntitlementStatus,
}

/// The hits, grouped by kind; each group holds at most `limit`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, ToSchema)]
pub struct SearchResults {
    pub customers: Vec<CustomerHit>,
    pub end_users: Vec<EndUserHit>,
    pub entitlements: Vec<EntitlementHit>,
    pub activations: Vec<ActivationHit>,
}

/// What the typed text is taken for. Pure, so the rules are testable without a database.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Term {
    Nothing,
    Code(ActivationCode),
    Email(Email),
    CustomerId(String),
    EntitlementId(String),
    ActivationId(String),
    EndUserId(String),
    /// Anything else: an order or provider reference, a seat id, or the start of a name.
    Text(String),
}

impl Term {
    pub fn classify(input: &str) -> Term {
        let text = input.trim();
        if text.is_empty() {
            return Term::Nothing;
        }
        if let Ok(code) = ActivationCode::parse(text) {
            return Term::Code(code);
        }
        if text.contains('@') {
            if let Ok(email) = Email::parse(text) {
                return Term::Email(email);
            }
        }
        // Only our own shape (prefix + 26 lower-case Crockford symbols) is taken for our id:
        // Stripe's `cus_NffrFeUfNV2Hib` is a provider reference to look up as text.
        let id = text.to_owned();
        let ours = |body: &str| body.len() == 26 && body.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit());
        match text
            .split_once('_')
            .filter(|(_, body)| ours(body))
            .map(|(prefix, _)| prefix)
        {
            Some("cus") => Term::CustomerId(id),
            Some("ent") => Term::EntitlementId(id),
            Some("act") => Term::ActivationId(id),
            Some("usr") => Term::EndUserId(id),
            _ => Term::Text(id),
        }
    }
}

pub async fn search(store: &Store, ctx: &Ctx, query: &str, limit: Option<PageLimit>) -> ServiceResult<SearchResults> {
    if query.chars().count() > MAX_QUERY_CHARS {
        return Err(RuleViolation::new(
            "invalid_query",
            format!("a search is at most {MAX_QUERY_CHARS} characters"),
        )
        .into());
    }
    let limit = i64::from(limit.map_or(DEFAULT_LIMIT, PageLimit::get));
    let tenant = ctx.tenant_id.as_str();
    let backend = store.backend();
    let mut conn = store.read().await?;
    let conn: &mut Conn = &mut conn;
    let mut results = SearchResults::default();
    let mut entitlements = Vec::new();
    match Term::classify(query) {
        Term::Nothing => {}
        Term::Code(code) => entitlements.extend(run(conn, &db::entitlement_by_code(tenant, code.as_str())).await?),
        Term::Email(email) => {
            results.customers = run(conn, &db::customers_by_email(tenant, email.as_str(), limit)).await?;
            results.end_users = run(conn, &db::end_user_by_email(tenant, email.as_str())).await?;
            // Account-based seats are held under the user's email.
            results.activations = run(conn, &db::activations_by_seat_id(tenant, query.trim(), limit)).await?;
        }
        Term::CustomerId(id) => results.customers = run(conn, &db::customer_by_id(tenant, &id)).await?,
        Term::EntitlementId(id) => entitlements.extend(run(conn, &db::entitlement_by_id(tenant, &id)).await?),
        Term::ActivationId(id) => results.activations = run(conn, &db::activation_by_id(tenant, &id)).await?,
        Term::EndUserId(id) => results.end_users = run(conn, &db::end_user_by_id(tenant, &id)).await?,
        Term::Text(text) => {
            results.customers = run(conn, &db::customer_by_external_ref(tenant, &text)).await?;
            let by_name = run(conn, &db::customers_by_name_prefix(backend, tenant, &text, limit)).await?;
            merge(&mut results.customers, by_name, |c| &c.id);
            entitlements.extend(run(conn, &db::entitlements_by_order_ref(tenant, &text, limit)).await?);
            let by_customer = run(conn, &db::entitlements_by_provider_customer(tenant, &text, limit)).await?;
            merge(&mut entitlements, by_customer, |e| &e.id);
            results.activations = run(conn, &db::activations_by_seat_id(tenant, &text, limit)).await?;
            let by_name = run(
                conn,
                &db::activations_by_seat_name_prefix(backend, tenant, &text, limit),
            )
            .await?;
            merge(&mut results.activations, by_name, |a| &a.id);
        }
    }
    results.entitlements = entitlements
        .into_iter()
        .map(|e| EntitlementHit {
            status: status(ctx.now, e.starts_at, e.expires_at, e.grace_period, e.disabled),
            id: e.id,
            customer_id: e.customer_id,
            sku: e.sku,
            order_ref: e.order_ref,
        })
        .collect();
    let cap = usize::try_from(limit).unwrap_or(usize::MAX);
    results.customers.truncate(cap);
    results.end_users.truncate(cap);
    results.entitlements.truncate(cap);
    results.activations.truncate(cap);
    Ok(results)
}

async fn run<T: Hit>(conn: &mut Conn, lookup: &Lookup<T>) -> ServiceResult<Vec<T>> {
    Ok(db::fetch(conn, lookup).await?)
}

/// Appends the hits of `more` not already in `hits`.
fn merge<T>(hits: &mut Vec<T>, more: Vec<T>, id: impl Fn(&T) -> &String) {
    for hit in more {
        if !hits.iter().any(|h| id(h) == id(&hit)) {
            hits.push(hit);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_text_decides_the_lookup() {
        let code = ActivationCode::generate();
        let typed = code.as_str().to_lowercase().replace('-', " ");
        assert_eq!(Term::classify(&format!("  {typed} ")), Term::Code(code));
        assert_eq!(
            Term::classify(" Ada@Example.com "),
            Term::Email(Email::parse("ada@example.com").unwrap())
        );
        let ours = |prefix: &str| crate::domain::ids::new_id(prefix);
        let (c, e, a, u) = (ours("cus"), ours("ent"), ours("act"), ours("usr"));
        assert_eq!(Term::classify(&c), Term::CustomerId(c.clone()));
        assert_eq!(Term::classify(&e), Term::EntitlementId(e.clone()));
        assert_eq!(Term::classify(&a), Term::ActivationId(a.clone()));
        assert_eq!(Term::classify(&u), Term::EndUserId(u.clone()));
        assert_eq!(
            Term::classify("cus_NffrFeUfNV2Hib"),
            Term::Text("cus_NffrFeUfNV2Hib".into())
        );
        assert_eq!(Term::classify("sub_1Nx"), Term::Text("sub_1Nx".into()));
        assert_eq!(Term::classify("Acme"), Term::Text("Acme".into()));
        assert_eq!(Term::classify("not@an email"), Term::Text("not@an email".into()));
        assert_eq!(Term::classify("   "), Term::Nothing);
    }
}
