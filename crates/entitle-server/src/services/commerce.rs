//! The order lifecycle, the same for every storefront: a verified delivery's events are merged
//! into their order's state (order-independent, see `commerce::event`), then the order's
//! entitlements are brought in line with that state. A delivery is acknowledged only after its
//! effects are committed; a repeated event changes nothing.

use axum::http::HeaderMap;
use chrono::{DateTime, Utc};
use serde::Deserialize;
use sqlx::AnyConnection;
use utoipa::ToSchema;

use super::mail::MailSettings;
use super::webhook_guard::{WebhookGuard, EXCERPT_BYTES, PURGE_BATCH, REJECTED_CAPS};
use super::{found, on_duplicate, record, snapshot, Actor, ActorKind, Ctx, Page, Paging, ServiceError, ServiceResult};
use crate::commerce::complete::{AllowedHosts, ProviderApi};
use crate::commerce::event::{CommerceEvent, OrderState};
use crate::commerce::signature::Rejection;
use crate::commerce::{Provider, Verification};
use crate::domain::zone::Zone;
use crate::domain::{ids, Email, EndUser, EndUserRole, Name, RuleViolation, Sku};
use crate::store::commerce::{self as db, Connection, Delivery, Mapping};
use crate::store::{catalogue as catalogue_db, customers as customers_db, entitlements as entitlements_db};
use crate::store::{Store, StoreError};

/// What storefront deliveries need besides the store: the client for providers' APIs and the
/// limits on badly signed deliveries. One per server.
pub struct Storefronts {
    pub api: ProviderApi,
    pub guard: WebhookGuard,
}

// ---- connections and mappings (management) ----

/// A storefront connection as shown: its secrets never leave the server.
#[derive(Debug, Clone, serde::Serialize, ToSchema)]
pub struct ConnectionView {
    pub id: String,
    pub provider: Provider,
    pub name: String,
    /// Paste this into the provider's webhook settings.
    pub webhook_url: String,
    /// How many signing secrets are active (several during a rotation).
    pub secret_count: usize,
    pub tolerance_seconds: Option<i64>,
    /// Whether an API key is set (payloads that lack data are completed through the provider's API).
    pub api_configured: bool,
    pub api_base_url: Option<String>,
    /// Zuora: the header the callout template signs into.
    pub signature_header: Option<String>,
    /// The zone the provider's dates and offset-less times are read in.
    pub time_zone: String,
    /// Whether a partial refund disables like a full one (otherwise it is only recorded).
    pub disable_on_any_refund: bool,
    /// Whether a subscription the customer ended keeps the product's grace period.
    pub grace_after_cancel: bool,
    /// Badly signed deliveries that were counted but not stored (over the storage caps), within
    /// the retention period.
    pub rejected_not_stored: i64,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// The zone a connection's local dates are in: its own, or its provider's default.
fn zone_of(c: &Connection) -> Zone {
    let provider = Provider::parse(&c.provider).unwrap_or(Provider::Generic);
    c.time_zone
        .as_deref()
        .and_then(Zone::parse)
        .unwrap_or_else(|| provider.default_zone())
}

fn view(c: &Connection, settings: &MailSettings, rejected_not_stored: i64) -> ConnectionView {
    ConnectionView {
        id: c.id.clone(),
        provider: Provider::parse(&c.provider).unwrap_or(Provider::Generic),
        name: c.name.clone(),
        webhook_url: format!("{}/commerce/v1/{}", settings.public_url, c.id),
        secret_count: c.secrets.len(),
        tolerance_seconds: c.tolerance_seconds,
        api_configured: c.api_key.is_some(),
        api_base_url: c.api_base_url.clone(),
        signature_header: c.signature_header.clone(),
        time_zone: zone_of(c).name().to_owned(),
        disable_on_any_refund: c.disable_on_any_refund,
        grace_after_cancel: c.grace_after_cancel,
        rejected_not_stored,
        created_at: c.created_at,
        updated_at: c.updated_at,
    }
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewConnection {
    pub provider: Provider,
    pub name: Name,
    /// The provider's webhook signing secret(s). Several are accepted during a rotation.
    pub secrets: Vec<String>,
    /// Overrides the provider's timestamp tolerance, in seconds (Stripe 300, Paddle 5).
    pub tolerance_seconds: Option<crate::domain::ToleranceSeconds>,
    /// A read-only API key (Stripe restricted key, Paddle API key) to complete payloads that lack
    /// data: Stripe Checkout line items, Stripe and Paddle customer emails. Never shown again.
    pub api_key: Option<String>,
    /// The provider's API base URL, if not the public one: another of the provider's official
    /// HTTPS API hosts (a sandbox or region), or a host the operator allows
    /// (`provider_api_allow_hosts`: a proxy, or a test double).
    pub api_base_url: Option<String>,
    /// Zuora: the header your callout template puts the HMAC in (default `X-Zuora-Signature`).
    pub signature_header: Option<String>,
    /// The zone of the provider's dates and of times without an offset: `UTC`, a zone such as
    /// `America/Los_Angeles` or `Europe/Berlin`, or a fixed offset `+05:30`. Default: the
    /// provider's (Zuora `America/Los_Angeles`, the others `UTC`).
    pub time_zone: Option<String>,
    /// Disable the order's entitlements on any refund, partial ones too (default false: a partial
    /// refund is recorded and changes nothing; a line refunded in full is disabled either way).
    pub disable_on_any_refund: Option<bool>,
    /// Keep the product's grace period after a subscription the customer cancelled ends (default
    /// false: grace is for failed payments; a deliberate end expires at the period end).
    pub grace_after_cancel: Option<bool>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ConnectionPatch {
    pub name: Option<Name>,
    /// Replaces the secrets (to rotate: send the old and the new, later only the new).
    pub secrets: Option<Vec<String>>,
    pub tolerance_seconds: Option<crate::domain::ToleranceSeconds>,
    pub api_key: Option<String>,
    pub api_base_url: Option<String>,
    pub signature_header: Option<String>,
    pub time_zone: Option<String>,
    pub disable_on_any_refund: Option<bool>,
    pub grace_after_cancel: Option<bool>,
}

fn check_time_zone(zone: Option<&str>) -> Result<(), RuleViolation> {
    match zone {
        Some(zone) if Zone::parse(zone).is_none() => Err(RuleViolation::new(
            "invalid_time_zone",
            format!(
                "time_zone must be a fixed offset (+05:30) or one of: {}",
                Zone::known().collect::<Vec<_>>().join(", ")
            ),
        )),
        _ => Ok(()),
    }
}

/// The API key travels to the base URL: only to the provider's own API, or where the operator allows.
fn check_api_base_url(allowed: &AllowedHosts, provider: Provider, base: Option<&str>) -> Result<(), RuleViolation> {
    match base {
        Some(base) if allowed.check_base(provider, base).is_err() => Err(RuleViolation::new(
            "api_base_url_not_allowed",
            "api_base_url must be one of the provider's official HTTPS API hosts, or a host the operator allows \
             (provider_api_allow_hosts)",
        )),
        _ => Ok(()),
    }
}

fn check_secrets(secrets: &[String]) -> Result<(), RuleViolation> {
    if secrets.is_empty() || secrets.len() > 5 || secrets.iter().any(|s| s.len() < 6 || s.len() > 512) {
        return Err(RuleViolation::new(
            "invalid_secrets",
            "give 1 to 5 signing secrets of 6 to 512 characters",
        ));
    }
    Ok(())
}

pub async fn create_connection(
    store: &Store,
    ctx: &Ctx,
    settings: &MailSettings,
    allowed: &AllowedHosts,
    input: NewConnection,
) -> ServiceResult<ConnectionView> {
    check_secrets(&input.secrets)?;
    check_api_base_url(allowed, input.provider, input.api_base_url.as_deref())?;
    check_time_zone(input.time_zone.as_deref())?;
    let connection = Connection {
        id: ids::new_id("sfc"),
        tenant_id: ctx.tenant_id.clone(),
        provider: input.provider.as_str().to_owned(),
        name: input.name.to_string(),
        secrets: input.secrets,
        tolerance_seconds: input.tolerance_seconds.map(crate::domain::ToleranceSeconds::get),
        api_key: input.api_key,
        api_base_url: input.api_base_url,
        signature_header: input.signature_header.map(|h| h.to_lowercase()),
        // Stored by its canonical name.
        time_zone: input
            .time_zone
            .as_deref()
            .and_then(Zone::parse)
            .map(|z| z.name().to_owned()),
        disable_on_any_refund: input.disable_on_any_refund.unwrap_or(false),
        grace_after_cancel: input.grace_after_cancel.unwrap_or(false),
        created_at: ctx.now,
        updated_at: ctx.now,
    };
    let mut tx = store.begin().await?;
    db::insert_connection(&mut tx, &connection).await?;
    let shown = view(&connection, settings, 0);
    record(
        &mut tx,
        ctx,
        "storefront_connection.created",
        "storefront_connection",
        &connection.id,
        snapshot(&shown),
    )
    .await?;
    tx.commit().await?;
    Ok(shown)
}

pub async fn get_connection(
    store: &Store,
    ctx: &Ctx,
    settings: &MailSettings,
    id: &str,
) -> ServiceResult<ConnectionView> {
    let mut conn = store.read().await?;
    let connection = found(
        db::get_connection(&mut conn, &ctx.tenant_id, id).await?,
        "storefront connection",
    )?;
    let not_stored = db::rejections_not_stored(&mut conn, id).await?;
    Ok(view(&connection, settings, not_stored))
}

pub async fn list_connections(
    store: &Store,
    ctx: &Ctx,
    settings: &MailSettings,
    paging: &Paging,
) -> ServiceResult<Page<ConnectionView>> {
    paging.check()?;
    let mut conn = store.read().await?;
    let items = db::list_connections(&mut conn, &ctx.tenant_id, paging.after(), paging.fetch_limit()).await?;
    let mut views = Vec::with_capacity(items.len());
    for c in &items {
        let not_stored = db::rejections_not_stored(&mut conn, &c.id).await?;
        views.push(view(c, settings, not_stored));
    }
    Ok(paging.page(views, |v: &ConnectionView| &v.id))
}

pub async fn update_connection(
    store: &Store,
    ctx: &Ctx,
    settings: &MailSettings,
    allowed: &AllowedHosts,
    id: &str,
    patch: ConnectionPatch,
) -> ServiceResult<ConnectionView> {
    if let Some(secrets) = &patch.secrets {
        check_secrets(secrets)?;
    }
    check_time_zone(patch.time_zone.as_deref())?;
    let mut tx = store.begin().await?;
    let mut connection = found(
        db::get_connection(&mut tx, &ctx.tenant_id, id).await?,
        "storefront connection",
    )?;
    let provider = Provider::parse(&connection.provider).ok_or(ServiceError::NotFound("storefront connection"))?;
    check_api_base_url(allowed, provider, patch.api_base_url.as_deref())?;
    let not_stored = db::rejections_not_stored(&mut tx, id).await?;
    let before = view(&connection, settings, not_stored);
    connection.name = patch.name.map(|n| n.to_string()).unwrap_or(connection.name);
    let rotated = patch.secrets.is_some();
    connection.secrets = patch.secrets.unwrap_or(connection.secrets);
    connection.tolerance_seconds = patch
        .tolerance_seconds
        .map(crate::domain::ToleranceSeconds::get)
        .or(connection.tolerance_seconds);
    let api_key_changed = patch.api_key.is_some();
    connection.api_key = patch.api_key.or(connection.api_key);
    connection.api_base_url = patch.api_base_url.or(connection.api_base_url);
    connection.signature_header = patch
        .signature_header
        .map(|h| h.to_lowercase())
        .or(connection.signature_header);
    if let Some(zone) = patch.time_zone.as_deref().and_then(Zone::parse) {
        connection.time_zone = Some(zone.name().to_owned());
    }
    connection.disable_on_any_refund = patch.disable_on_any_refund.unwrap_or(connection.disable_on_any_refund);
    connection.grace_after_cancel = patch.grace_after_cancel.unwrap_or(connection.grace_after_cancel);
    connection.updated_at = ctx.now;
    db::update_connection(&mut tx, &connection).await?;
    let after = view(&connection, settings, not_stored);
    let mut summary = super::changes(&before, &after);
    if rotated {
        summary["secrets"] = serde_json::json!("replaced");
    }
    if api_key_changed {
        summary["api_key"] = serde_json::json!("replaced");
    }
    record(
        &mut tx,
        ctx,
        "storefront_connection.updated",
        "storefront_connection",
        id,
        summary,
    )
    .await?;
    tx.commit().await?;
    Ok(after)
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewMapping {
    pub connection_id: String,
    /// The provider's price / variant / product / plan id.
    pub provider_ref: String,
    pub sku: Sku,
    pub trial_sku: Option<Sku>,
    /// `seats` (default): quantity multiplies the offering's seats; `single`: always one unit.
    pub quantity_mode: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct MappingQuery {
    pub connection_id: Option<String>,
    #[param(inline)]
    pub limit: Option<crate::domain::PageLimit>,
    pub after: Option<String>,
}

pub async fn create_mapping(store: &Store, ctx: &Ctx, input: NewMapping) -> ServiceResult<Mapping> {
    let quantity_mode = input.quantity_mode.unwrap_or_else(|| "seats".into());
    if !matches!(quantity_mode.as_str(), "seats" | "single") {
        return Err(RuleViolation::new("invalid_quantity_mode", "quantity_mode is `seats` or `single`").into());
    }
    if input.provider_ref.is_empty() || input.provider_ref.len() > 200 {
        return Err(RuleViolation::new("invalid_provider_ref", "provider_ref must have 1 to 200 characters").into());
    }
    let mut tx = store.begin().await?;
    found(
        db::get_connection(&mut tx, &ctx.tenant_id, &input.connection_id).await?,
        "storefront connection",
    )?;
    for sku in std::iter::once(&input.sku).chain(input.trial_sku.as_ref()) {
        if catalogue_db::find_offering_by_sku(&mut tx, &ctx.tenant_id, sku)
            .await?
            .is_none()
        {
            return Err(RuleViolation::new("unknown_sku", format!("no offering has the SKU {sku}")).into());
        }
    }
    let mapping = Mapping {
        id: ids::new_id("map"),
        connection_id: input.connection_id,
        provider_ref: input.provider_ref,
        sku: input.sku.to_string(),
        trial_sku: input.trial_sku.map(|s| s.to_string()),
        quantity_mode,
        created_at: ctx.now,
    };
    db::insert_mapping(&mut tx, &ctx.tenant_id, &mapping)
        .await
        .map_err(on_duplicate(
            "mapping_exists",
            "this provider reference is mapped already",
        ))?;
    record(
        &mut tx,
        ctx,
        "storefront_mapping.created",
        "storefront_mapping",
        &mapping.id,
        snapshot(&mapping),
    )
    .await?;
    tx.commit().await?;
    Ok(mapping)
}

pub async fn list_mappings(store: &Store, ctx: &Ctx, query: &MappingQuery) -> ServiceResult<Page<Mapping>> {
    let paging = Paging {
        limit: query.limit,
        after: query.after.clone(),
    };
    paging.check()?;
    let items = db::list_mappings(
        &mut *store.read().await?,
        &ctx.tenant_id,
        query.connection_id.as_deref(),
        paging.after(),
        paging.fetch_limit(),
    )
    .await?;
    Ok(paging.page(items, |m| &m.id))
}

pub async fn delete_mapping(store: &Store, ctx: &Ctx, id: &str) -> ServiceResult<Mapping> {
    let mut tx = store.begin().await?;
    let mapping = found(
        db::get_mapping(&mut tx, &ctx.tenant_id, id).await?,
        "storefront mapping",
    )?;
    db::delete_mapping(&mut tx, &ctx.tenant_id, id).await?;
    record(
        &mut tx,
        ctx,
        "storefront_mapping.deleted",
        "storefront_mapping",
        id,
        snapshot(&mapping),
    )
    .await?;
    tx.commit().await?;
    Ok(mapping)
}

#[derive(Debug, Clone, Default, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct DeliveryQuery {
    pub connection_id: Option<String>,
    /// `applied`, `duplicate`, `ignored`, `unmapped`, `incomplete`, `unmatched`, `unreadable`,
    /// `failed` (a permanent error, kept for support), `resolved` (an order a later delivery
    /// applied), `rejected`.
    pub outcome: Option<String>,
    #[param(inline)]
    pub limit: Option<crate::domain::PageLimit>,
    pub after: Option<String>,
}

pub async fn list_deliveries(store: &Store, ctx: &Ctx, query: &DeliveryQuery) -> ServiceResult<Page<Delivery>> {
    let paging = Paging {
        limit: query.limit,
        after: query.after.clone(),
    };
    paging.check()?;
    let items = db::list_deliveries(
        &mut *store.read().await?,
        &ctx.tenant_id,
        query.connection_id.as_deref(),
        query.outcome.as_deref(),
        paging.after(),
        paging.fetch_limit(),
    )
    .await?;
    Ok(paging.page(items, |d| &d.id))
}

pub async fn get_delivery(store: &Store, ctx: &Ctx, id: &str) -> ServiceResult<Delivery> {
    found(
        db::get_delivery(&mut *store.read().await?, &ctx.tenant_id, id).await?,
        "storefront delivery",
    )
}

/// How a console form rotates a connection's signing secrets: the form never sees the stored
/// secrets, so the list for `update_connection`'s patch is built here.
#[derive(Debug)]
pub enum SecretRotation {
    /// Adds a secret; the others stay valid for the overlap while the provider switches.
    Add(String),
    /// Keeps only the newest secret (the one added last), once the provider signs with it.
    KeepNewest,
}

pub async fn rotate_secrets(
    store: &Store,
    ctx: &Ctx,
    settings: &MailSettings,
    allowed: &AllowedHosts,
    id: &str,
    rotation: SecretRotation,
) -> ServiceResult<ConnectionView> {
    let connection = found(
        db::get_connection(&mut *store.read().await?, &ctx.tenant_id, id).await?,
        "storefront connection",
    )?;
    let mut secrets = connection.secrets;
    match rotation {
        SecretRotation::Add(secret) => {
            if secrets.contains(&secret) {
                return Err(RuleViolation::new("secret_exists", "this connection has this secret already").into());
            }
            secrets.push(secret);
        }
        SecretRotation::KeepNewest => {
            let newest = secrets.len().saturating_sub(1);
            secrets.drain(..newest);
        }
    }
    let patch = ConnectionPatch {
        name: None,
        secrets: Some(secrets),
        tolerance_seconds: None,
        api_key: None,
        api_base_url: None,
        signature_header: None,
        time_zone: None,
        disable_on_any_refund: None,
        grace_after_cancel: None,
    };
    update_connection(store, ctx, settings, allowed, id, patch).await
}

/// The order reference an entitlement's `order_ref` came from: `materialize` names later lines
/// `{order}#{n}` and a replaced entitlement `… (replaced)`. Both the reference as it is and the
/// order's are answered, since an order reference may itself end in `#digits`.
pub fn order_refs_of(entitlement_ref: &str) -> Vec<String> {
    let mut refs = vec![entitlement_ref.to_owned()];
    let base = entitlement_ref.strip_suffix(" (replaced)").unwrap_or(entitlement_ref);
    let base = match base.rsplit_once('#') {
        Some((order, line)) if !line.is_empty() && line.bytes().all(|b| b.is_ascii_digit()) => order,
        _ => base,
    };
    if base != entitlement_ref && !base.is_empty() {
        refs.push(base.to_owned());
    }
    refs
}

/// The newest deliveries of the order an entitlement came from (the console's entitlement page).
pub async fn deliveries_of_entitlement_order(
    store: &Store,
    ctx: &Ctx,
    entitlement_ref: &str,
    limit: i64,
) -> ServiceResult<Vec<Delivery>> {
    Ok(db::deliveries_of_orders(
        &mut *store.read().await?,
        &ctx.tenant_id,
        &order_refs_of(entitlement_ref),
        limit,
    )
    .await?)
}

// ---- receiving deliveries ----

#[derive(Debug, thiserror::Error)]
pub enum DeliveryError {
    #[error("unknown storefront connection")]
    UnknownConnection,
    #[error("{0}")]
    Rejected(Rejection),
    /// Badly signed again, after too many such deliveries to this connection.
    #[error("too many badly signed deliveries")]
    Limited { retry_after: u64 },
    #[error("{0}")]
    Unreadable(String),
    #[error(transparent)]
    Internal(#[from] ServiceError),
}

impl From<StoreError> for DeliveryError {
    fn from(error: StoreError) -> Self {
        DeliveryError::Internal(error.into())
    }
}

impl From<sqlx::Error> for DeliveryError {
    fn from(error: sqlx::Error) -> Self {
        DeliveryError::Internal(error.into())
    }
}

/// The outcome of each event of a delivery.
#[derive(Debug, Clone, serde::Serialize, ToSchema)]
pub struct Receipt {
    pub deliveries: Vec<Delivery>,
    /// Events of a batch that failed and should be sent again (FastSpring's partial acknowledgement).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub unprocessed: Vec<String>,
}

fn kept_headers(provider: Provider, headers: &HeaderMap) -> serde_json::Value {
    let mut kept = serde_json::Map::new();
    for name in provider.kept_headers() {
        if let Some(value) = headers.get(*name).and_then(|v| v.to_str().ok()) {
            kept.insert((*name).to_owned(), serde_json::Value::String(value.to_owned()));
        }
    }
    serde_json::Value::Object(kept)
}

fn sha256_hex(body: &[u8]) -> String {
    use sha2::Digest;
    crate::commerce::signature::hex(&sha2::Sha256::digest(body))
}

fn delivery_record(connection: &Connection, headers: serde_json::Value, body: &[u8], now: DateTime<Utc>) -> Delivery {
    Delivery {
        id: ids::new_id("dlv"),
        tenant_id: connection.tenant_id.clone(),
        connection_id: connection.id.clone(),
        event_id: None,
        event_type: None,
        order_ref: None,
        received_at: now,
        outcome: String::new(),
        detail: None,
        headers,
        body: String::from_utf8_lossy(body).into_owned(),
        body_size: i64::try_from(body.len()).ok(),
        body_sha256: Some(sha256_hex(body)),
        body_truncated: false,
        objects: Vec::new(),
    }
}

async fn store_delivery(store: &Store, delivery: &Delivery) -> Result<(), DeliveryError> {
    let mut conn = store.write_conn().await?;
    db::insert_delivery(&mut conn, delivery).await?;
    Ok(())
}

/// Records a badly signed delivery: its first bytes, size and hash (enough to diagnose a wrong
/// secret, or to match a body the provider shows), if the connection's caps leave room; otherwise
/// it is only counted.
async fn store_rejection(
    store: &Store,
    guard: &WebhookGuard,
    connection: &Connection,
    headers: serde_json::Value,
    body: &[u8],
    rejection: &Rejection,
    now: DateTime<Utc>,
) -> Result<(), DeliveryError> {
    let mut conn = store.write_conn().await?;
    let at = now.timestamp_millis();
    let window_start = at - at.rem_euclid(3_600_000);
    let since = at - guard.retention.num_milliseconds();
    if !db::take_rejection_slot(&mut conn, &connection.id, window_start, since, REJECTED_CAPS).await? {
        return Ok(());
    }
    let excerpt = &body[..body.len().min(EXCERPT_BYTES)];
    let mut record = delivery_record(connection, headers, excerpt, now);
    record.body_size = i64::try_from(body.len()).ok();
    record.body_sha256 = Some(sha256_hex(body));
    record.body_truncated = excerpt.len() < body.len();
    record.outcome = "rejected".into();
    record.detail = Some(rejection.to_string());
    db::insert_delivery(&mut conn, &record).await?;
    Ok(())
}

/// Deletes rejected deliveries older than the retention period, in a bounded batch, in the
/// background: run now and then by whichever delivery comes along, so no timer is needed.
fn purge_rejected_now_and_then(store: &Store, storefronts: &std::sync::Arc<Storefronts>, now: DateTime<Utc>) {
    if !storefronts.guard.claim_purge(now) {
        return;
    }
    let store = store.clone();
    let storefronts = storefronts.clone();
    let before = (now - storefronts.guard.retention).timestamp_millis();
    tokio::spawn(async move {
        let purged = async {
            let mut conn = store.write_conn().await?;
            db::purge_rejected(&mut conn, before, PURGE_BATCH).await
        }
        .await;
        match purged {
            Ok(count) if count >= PURGE_BATCH as u64 => storefronts.guard.purge_again_soon(),
            Ok(_) => {}
            Err(error) => tracing::warn!(error = %error, "purging old rejected storefront deliveries failed"),
        }
    });
}

/// `POST /commerce/v1/{connection}`: verify, then apply every event of the delivery.
///
/// Also returns the connection's provider (`None` when the connection is unknown), for metrics.
pub async fn receive(
    store: &Store,
    settings: &MailSettings,
    storefronts: &std::sync::Arc<Storefronts>,
    connection_id: &str,
    headers: &HeaderMap,
    body: &[u8],
    now: DateTime<Utc>,
) -> (Option<Provider>, Result<Receipt, DeliveryError>) {
    let connection = match connection_by_id(store, connection_id).await {
        Ok(connection) => connection,
        Err(error) => return (None, Err(error)),
    };
    purge_rejected_now_and_then(store, storefronts, now);
    let Some(provider) = Provider::parse(&connection.provider) else {
        return (None, Err(DeliveryError::UnknownConnection));
    };
    let outcome = receive_for(store, settings, storefronts, &connection, provider, headers, body, now).await;
    (Some(provider), outcome)
}

async fn connection_by_id(store: &Store, connection_id: &str) -> Result<Connection, DeliveryError> {
    db::connection_by_id(&mut *store.read().await?, connection_id)
        .await?
        .ok_or(DeliveryError::UnknownConnection)
}

#[allow(clippy::too_many_arguments)]
async fn receive_for(
    store: &Store,
    settings: &MailSettings,
    storefronts: &std::sync::Arc<Storefronts>,
    connection: &Connection,
    provider: Provider,
    headers: &HeaderMap,
    body: &[u8],
    now: DateTime<Utc>,
) -> Result<Receipt, DeliveryError> {
    let verification = Verification {
        headers,
        body,
        secrets: &connection.secrets,
        now,
        tolerance: connection.tolerance_seconds,
        signature_header: connection.signature_header.as_deref(),
    };
    let kept = kept_headers(provider, headers);
    // The signature is checked before any limit: a correctly signed delivery is never refused
    // because someone else sent forgeries to the same connection.
    if let Err(rejection) = provider.verify(&verification) {
        let guard = &storefronts.guard;
        if let Some(retry_after) = guard.blocked(&connection.id) {
            return Err(DeliveryError::Limited { retry_after });
        }
        guard.record_forged(&connection.id);
        store_rejection(store, guard, connection, kept, body, &rejection, now).await?;
        return Err(DeliveryError::Rejected(rejection));
    }
    let events = match provider.parse_delivery(headers, body, &zone_of(connection)) {
        Ok(events) => events,
        Err(error) => {
            let mut record = delivery_record(connection, kept, body, now);
            record.outcome = "unreadable".into();
            record.detail = Some(error.to_string());
            store_delivery(store, &record).await?;
            return Err(DeliveryError::Unreadable(error.to_string()));
        }
    };
    let batch = events.len() > 1;
    let mut deliveries = Vec::with_capacity(events.len());
    let mut unprocessed = Vec::new();
    for mut event in events {
        let event_id = event.event_id.clone();
        let mut record = delivery_record(connection, kept.clone(), body, now);
        if let Err(problem) = complete(&storefronts.api, connection, provider, &mut event).await {
            record.detail = Some(problem);
        }
        match apply(store, settings, connection, event, record, now).await {
            Ok(delivery) => deliveries.push(delivery),
            // In a batch, one event's failure must not cost the others their acknowledgement.
            Err(DeliveryError::Internal(error)) if batch => {
                tracing::error!(error = ?error, event = %event_id, "a batched storefront event failed");
                unprocessed.push(event_id);
            }
            Err(other) => return Err(other),
        }
    }
    Ok(Receipt {
        deliveries,
        unprocessed,
    })
}

/// Asks the provider's API for what the event lacks, when the connection has an API key.
async fn complete(
    api: &ProviderApi,
    connection: &Connection,
    provider: Provider,
    event: &mut CommerceEvent,
) -> Result<(), String> {
    let Some(key) = connection.api_key.as_deref() else {
        event.lookups.clear();
        return Ok(());
    };
    if event.lookups.is_empty() {
        return Ok(());
    }
    let access = crate::commerce::complete::ApiAccess {
        provider,
        key,
        base_url: connection.api_base_url.as_deref(),
    };
    crate::commerce::complete::complete(event, api, &access)
        .await
        .map_err(|problem| {
            tracing::warn!(connection = %connection.id, %problem, "completing a storefront event failed");
            format!("the provider's API could not complete the event: {problem}")
        })
}

/// Re-applies a stored delivery (after a mapping was fixed, say). The signature was checked when it
/// arrived; an event already applied changes nothing.
pub async fn replay(
    store: &Store,
    ctx: &Ctx,
    settings: &MailSettings,
    api: &ProviderApi,
    id: &str,
) -> ServiceResult<Receipt> {
    let stored = get_delivery(store, ctx, id).await?;
    if stored.outcome == "rejected" {
        return Err(
            RuleViolation::new("not_replayable", "a delivery whose signature failed cannot be replayed").into(),
        );
    }
    let connection = found(
        db::get_connection(&mut *store.read().await?, &ctx.tenant_id, &stored.connection_id).await?,
        "storefront connection",
    )?;
    let provider = Provider::parse(&connection.provider).ok_or(ServiceError::NotFound("storefront connection"))?;
    let headers = headers_of(&stored);
    let events = provider
        .parse_delivery(&headers, stored.body.as_bytes(), &zone_of(&connection))
        .map_err(|e| RuleViolation::new("unreadable", e.to_string()))?;
    let mut deliveries = Vec::new();
    for mut event in events {
        let mut record = delivery_record(&connection, stored.headers.clone(), stored.body.as_bytes(), ctx.now);
        record.detail = Some(format!("replay of {}", stored.id));
        if let Err(problem) = complete(api, &connection, provider, &mut event).await {
            record.detail = Some(format!("replay of {}; {problem}", stored.id));
        }
        let applied = apply(store, settings, &connection, event, record, ctx.now)
            .await
            .map_err(|e| match e {
                DeliveryError::Internal(error) => error,
                other => ServiceError::Store(StoreError::Other(anyhow::anyhow!("{other}"))),
            })?;
        deliveries.push(applied);
    }
    // The effects are the storefront's (its data decides them); who asked for the replay is
    // recorded here, with the caller as actor.
    let mut tx = store.begin().await?;
    let outcomes: Vec<serde_json::Value> = deliveries
        .iter()
        .map(|d| serde_json::json!({"id": d.id, "outcome": d.outcome}))
        .collect();
    record(
        &mut tx,
        ctx,
        "storefront_delivery.replayed",
        "storefront_delivery",
        &stored.id,
        serde_json::json!({"deliveries": outcomes}),
    )
    .await?;
    tx.commit().await?;
    Ok(Receipt {
        deliveries,
        unprocessed: Vec::new(),
    })
}

/// Why an order's entitlements could not be brought in line (the delivery is kept for replay).
enum Unapplied {
    Unmapped(String),
    Incomplete(String),
    /// A rule the order breaks (more seats than any offering allows…): sending it again would
    /// fail again, so it is acknowledged and kept for support.
    Failed(String),
}

async fn apply(
    store: &Store,
    settings: &MailSettings,
    connection: &Connection,
    event: CommerceEvent,
    mut record: Delivery,
    now: DateTime<Utc>,
) -> Result<Delivery, DeliveryError> {
    record.event_id = Some(event.event_id.clone());
    record.event_type = Some(event.event_type.clone());
    // Every event this delivery causes names it as actor (the delivery names its connection).
    let ctx = Ctx {
        tenant_id: connection.tenant_id.clone(),
        actor: Actor {
            kind: ActorKind::Storefront,
            id: Some(record.id.clone()),
            ip: None,
            adds_end_users: true,
        },
        now,
    };
    if let Some(missing) = &event.missing {
        // Not merged: a replay once the data can be had applies it.
        record.outcome = "incomplete".into();
        record.order_ref = event.order_ref.clone();
        record.detail = Some(match record.detail.take() {
            Some(earlier) => format!("missing {missing} ({earlier})"),
            None => format!("missing {missing}"),
        });
        store_delivery(store, &record).await?;
        return Ok(record);
    }
    // 1. Dedupe and merge the event into its order.
    let mut tx = store.begin().await?;
    db::lock_connection(&mut tx, store.backend(), &connection.id).await?;
    let mut order_ref = event.order_ref.clone();
    if order_ref.is_none() {
        for alias in &event.aliases {
            if let Some(found_ref) = db::order_of_alias(&mut tx, &connection.id, alias).await? {
                order_ref = Some(found_ref);
                break;
            }
        }
    }
    let Some(order_ref) = order_ref else {
        let waiting = event.change != crate::commerce::event::Change::Ignored;
        record.outcome = if waiting { "unmatched" } else { "ignored" }.into();
        record.detail = Some("the event names no order seen yet; it applies when one of its ids is seen".into());
        if waiting {
            for alias in &event.aliases {
                db::add_pending(&mut tx, &connection.id, alias, &record.id, &event.event_id).await?;
            }
        }
        db::insert_delivery(&mut tx, &record).await?;
        tx.commit().await?;
        return Ok(record);
    };
    record.order_ref = Some(order_ref.clone());
    let (fresh, before, state) = merge_into_order(&mut tx, store, connection, &order_ref, &event, now).await?;
    // 2. Bring the order's entitlements in line with its state. Idempotent (a duplicate, or a retry
    // after a crash, converges to the same result) and in a savepoint: if the state cannot be
    // applied yet (an unmapped price, no email), the merged state is kept and nothing half-made is.
    let mut savepoint = sqlx::Connection::begin(&mut *tx).await?;
    let applied = match materialize(&mut savepoint, &ctx, settings, connection, &order_ref, &before, &state).await {
        Ok(applied) => applied,
        Err(error @ (ServiceError::Rule(_) | ServiceError::Conflict { .. } | ServiceError::NotFound(_))) => {
            Err(Unapplied::Failed(error.to_string()))
        }
        Err(error) => return Err(error.into()),
    };
    match applied {
        Ok((objects, changed)) => {
            savepoint.commit().await?;
            if !objects.is_empty() {
                db::resolve_earlier(&mut tx, &connection.tenant_id, &connection.id, &order_ref, &record.id).await?;
            }
            let ignored = event.change == crate::commerce::event::Change::Ignored;
            record.outcome = match (changed, fresh) {
                (true, _) => "applied",
                (false, false) => "duplicate",
                (false, true) if ignored => "ignored",
                (false, true) => "applied",
            }
            .into();
            record.objects = objects;
        }
        Err(unapplied) => {
            savepoint.rollback().await?;
            let (outcome, detail) = match unapplied {
                Unapplied::Unmapped(detail) => ("unmapped", detail),
                Unapplied::Incomplete(detail) => ("incomplete", detail),
                Unapplied::Failed(detail) => ("failed", detail),
            };
            record.outcome = outcome.into();
            record.detail = Some(match record.detail.take() {
                Some(earlier) => format!("{detail} ({earlier})"),
                None => detail,
            });
        }
    }
    db::insert_delivery(&mut tx, &record).await?;
    super::webhooks::on_delivery(&mut tx, &ctx.tenant_id, &record, now).await?;
    tx.commit().await?;
    store.mail_queued();
    Ok(record)
}

/// Marks the event seen and, the first time, merges it (and events that waited for its ids) into
/// the order's state. Answers whether it was new, and the state before and after.
async fn merge_into_order(
    conn: &mut AnyConnection,
    store: &Store,
    connection: &Connection,
    order_ref: &str,
    event: &CommerceEvent,
    now: DateTime<Utc>,
) -> Result<(bool, OrderState, OrderState), DeliveryError> {
    let fresh = db::mark_seen(conn, &connection.id, &event.event_id).await?;
    let text = db::lock_order(
        conn,
        store.backend(),
        &connection.tenant_id,
        &connection.id,
        order_ref,
        now,
    )
    .await?;
    let mut state: OrderState = serde_json::from_str(&text).unwrap_or_default();
    let before = state.clone();
    if fresh {
        state.merge(event);
        for alias in &event.aliases {
            db::add_alias(conn, &connection.id, alias, order_ref).await?;
            merge_pending(conn, connection, alias, &mut state).await?;
        }
        let text = serde_json::to_string(&state).map_err(|e| StoreError::Other(e.into()))?;
        db::save_order(
            conn,
            &connection.id,
            order_ref,
            &text,
            state.customer.reference.as_deref(),
            now,
        )
        .await?;
    }
    Ok((fresh, before, state))
}

/// The kept headers of a stored delivery, to read it again.
fn headers_of(stored: &Delivery) -> HeaderMap {
    let mut headers = HeaderMap::new();
    for (name, value) in stored.headers.as_object().into_iter().flatten() {
        if let (Ok(name), Some(Ok(value))) = (
            axum::http::HeaderName::from_bytes(name.as_bytes()),
            value.as_str().map(axum::http::HeaderValue::from_str),
        ) {
            headers.insert(name, value);
        }
    }
    headers
}

/// Merges the events that were waiting for `alias` (a refund that came before its purchase).
async fn merge_pending(
    conn: &mut AnyConnection,
    connection: &Connection,
    alias: &str,
    state: &mut OrderState,
) -> Result<(), DeliveryError> {
    let provider = Provider::parse(&connection.provider).ok_or(DeliveryError::UnknownConnection)?;
    for (delivery_id, event_id) in db::take_pending(conn, &connection.id, alias).await? {
        let Some(stored) = db::delivery_of_connection(conn, &connection.id, &delivery_id).await? else {
            continue;
        };
        let headers = headers_of(&stored);
        let Ok(events) = provider.parse_delivery(&headers, stored.body.as_bytes(), &zone_of(connection)) else {
            continue;
        };
        for event in events.iter().filter(|e| e.event_id == event_id) {
            if db::mark_seen(conn, &connection.id, &event.event_id).await? {
                state.merge(event);
            }
        }
    }
    Ok(())
}

/// The offering and quantity an order item stands for.
async fn resolve_item(
    conn: &mut AnyConnection,
    ctx: &Ctx,
    connection: &Connection,
    item: &crate::commerce::event::Item,
    trial: bool,
) -> ServiceResult<Result<(crate::domain::Offering, i64), Unapplied>> {
    // An explicit mapping wins; otherwise the item may name an offering SKU itself (checkout
    // metadata, or a storefront SKU equal to the offering's).
    let mapping = match &item.provider_ref {
        Some(reference) => db::find_mapping(conn, &connection.id, reference).await?,
        None => None,
    };
    let (sku, quantity) = match (mapping, &item.sku) {
        (Some(mapping), _) => {
            let sku = if trial {
                mapping.trial_sku.unwrap_or(mapping.sku)
            } else {
                mapping.sku
            };
            let quantity = if mapping.quantity_mode == "single" {
                1
            } else {
                item.quantity
            };
            (sku, quantity)
        }
        (None, Some(sku)) => (sku.clone(), item.quantity),
        (None, None) => {
            let detail = match &item.provider_ref {
                Some(reference) => format!("no mapping for {reference}: map it to an offering SKU, then replay"),
                None => "an item names neither a SKU nor a provider reference".to_owned(),
            };
            return Ok(Err(Unapplied::Unmapped(detail)));
        }
    };
    let Ok(sku) = Sku::parse(sku.as_str()) else {
        return Ok(Err(Unapplied::Unmapped(format!("{sku:?} is not a SKU"))));
    };
    match catalogue_db::find_offering_by_sku(conn, &ctx.tenant_id, &sku).await? {
        Some(offering) => Ok(Ok((offering, quantity.clamp(1, 1_000_000)))),
        None => {
            let reference = item
                .provider_ref
                .as_deref()
                .map(|r| format!(" (provider reference {r})"))
                .unwrap_or_default();
            Ok(Err(Unapplied::Unmapped(format!(
                "no offering has the SKU {sku}{reference}: map it, then replay"
            ))))
        }
    }
}

fn marks(state: &OrderState) -> crate::domain::history::OrderMarks {
    crate::domain::history::OrderMarks {
        cancel_scheduled: state.cancel_scheduled,
        partial_refunds: state.partial_refunds,
        ended: matches!(state.standing, Some((crate::commerce::event::Standing::Ended, _))),
    }
}

async fn materialize(
    conn: &mut AnyConnection,
    ctx: &Ctx,
    settings: &MailSettings,
    connection: &Connection,
    order_ref: &str,
    before: &OrderState,
    state: &OrderState,
) -> ServiceResult<Result<(Vec<String>, bool), Unapplied>> {
    if !state.purchased {
        return Ok(Ok((Vec::new(), false)));
    }
    if state.items.is_empty() {
        return Ok(Err(Unapplied::Incomplete(
            "the order's items are not known yet (pass the SKU in checkout metadata, or wait for the subscription event)".into(),
        )));
    }
    let lines = state.lines();
    let mut resolved = Vec::new();
    for item in &lines {
        match resolve_item(conn, ctx, connection, item, state.trial).await? {
            Ok(pair) => resolved.push(pair),
            Err(unapplied) => return Ok(Err(unapplied)),
        }
    }
    let mut objects = Vec::new();
    let mut created = Vec::new();
    let mut changed = false;
    let notes = crate::domain::history::storefront_notes(marks(before), marks(state));
    // A new entitlement hears everything its order said so far (a cancellation scheduled before
    // the purchase arrived, say).
    let notes_new = crate::domain::history::storefront_notes(Default::default(), marks(state));
    // A full refund takes back every line; a partial one only the lines it refunds in full,
    // unless the connection disables on any refund.
    let refund_all = state.refunded || (connection.disable_on_any_refund && state.partial_refunds > 0);
    for (line, ((offering, quantity), item)) in resolved.into_iter().zip(&lines).enumerate() {
        let refunded = refund_all || state.line_refunded(item);
        // One entitlement per order line: the first line carries the order reference, later lines
        // `{order}#{n}`, so several lines become several entitlements and a plan change of a line
        // changes its entitlement.
        let line_ref = if line == 0 {
            order_ref.to_owned()
        } else {
            format!("{order_ref}#{}", line + 1)
        };
        let mut existing = entitlements_db::of_order(conn, &ctx.tenant_id, &line_ref).await?;
        if let Some(previous) = existing.as_mut().filter(|e| e.product_id != offering.product_id) {
            // Moved to another product: the old licence ends now, a new one is issued.
            let before = previous.view(ctx.now);
            previous.base_expires_at = Some(ctx.now);
            previous.expires_at = Some(ctx.now);
            previous.order_ref = Some(format!("{line_ref} (replaced)"));
            previous.updated_at = ctx.now;
            entitlements_db::update(conn, &ctx.tenant_id, previous).await?;
            record(
                conn,
                ctx,
                "entitlement.replaced",
                "entitlement",
                &previous.id,
                super::changes(&before, &previous.view(ctx.now)),
            )
            .await?;
            objects.push(previous.id.clone());
            changed = true;
            existing = None;
        }
        let is_new = existing.is_none();
        let mut entitlement = match existing {
            Some(e) => e,
            None => {
                let Some(email) = state.customer.email.as_deref().and_then(|e| Email::parse(e).ok()) else {
                    return Ok(Err(Unapplied::Incomplete("the order has no customer email yet".into())));
                };
                let customer_id = upsert_customer(conn, ctx, &email, state).await?;
                let e = super::entitlements::insert_new(
                    conn,
                    ctx,
                    &customer_id,
                    offering.clone(),
                    quantity,
                    Some(line_ref.clone()),
                )
                .await?;
                created.push((e.clone(), email));
                e
            }
        };
        let before = entitlement.view(ctx.now);
        // Grace is for failed payments: a subscription the customer ended expires at its end
        // (unless the connection keeps grace). A grace the vendor set on the entitlement stays.
        let own_grace = !entitlement.overrides.contains(crate::domain::field::GRACE_PERIOD);
        let no_grace = own_grace && state.ended_deliberately() && !connection.grace_after_cancel;
        let grace_back = own_grace
            && !no_grace
            && entitlement.terms.periods.grace_period.is_none()
            && !matches!(state.standing, Some((crate::commerce::event::Standing::Ended, _)));
        if entitlement.offering_id != offering.id || entitlement.quantity != quantity || grace_back {
            // Re-derives the terms (the grace too) from the offering.
            super::entitlements::switch_offering(conn, ctx, &mut entitlement, offering, quantity).await?;
        }
        if no_grace {
            entitlement.terms.periods.grace_period = crate::domain::Interval::NONE;
        }
        let fallback = entitlement.base_expires_at;
        // Stored times have millisecond precision: compare like with like.
        let expiry = state
            .expiry(if state.period_end.is_some() { None } else { fallback })
            .and_then(|at| DateTime::from_timestamp_millis(at.timestamp_millis()));
        if entitlement.plan.license_type == crate::domain::LicenseType::Subscription || state.period_end.is_some() {
            entitlement.base_expires_at = expiry;
            if !entitlement.overrides.contains(crate::domain::field::EXPIRES_AT) {
                entitlement.expires_at = expiry;
            }
            if entitlement.starts_at.is_none() {
                entitlement.starts_at = Some(ctx.now);
            }
        }
        if refunded && entitlement.disabled_at.is_none() {
            entitlement.disabled_at = Some(ctx.now);
        }
        let after = entitlement.view(ctx.now);
        let diff = super::changes(&before, &after);
        if diff.as_object().is_some_and(|d| !d.is_empty()) {
            // The history says what happened (renewed, refunded, offering changed…), not "updated".
            // A new entitlement taking its order's dates in the same delivery is still its creation.
            let action = if is_new {
                "entitlement.updated"
            } else {
                crate::domain::history::storefront_action((&before).into(), (&after).into(), refunded, ctx.now)
            };
            entitlement.updated_at = ctx.now;
            entitlements_db::update(conn, &ctx.tenant_id, &entitlement).await?;
            record(conn, ctx, action, "entitlement", &entitlement.id, diff).await?;
            changed = true;
        }
        for note in if is_new { &notes_new } else { &notes } {
            record(
                conn,
                ctx,
                note,
                "entitlement",
                &entitlement.id,
                serde_json::json!({"order_ref": line_ref, "period_end": state.period_end}),
            )
            .await?;
            changed = true;
        }
        objects.push(entitlement.id.clone());
    }
    changed |= !created.is_empty();
    // One mail per order (and address), listing every entitlement the order created.
    let mut mails: Vec<(Email, Vec<crate::domain::Entitlement>)> = Vec::new();
    for (entitlement, email) in created {
        let fresh = found(
            entitlements_db::get(conn, &ctx.tenant_id, &entitlement.id).await?,
            "entitlement",
        )?;
        match mails.iter_mut().find(|(to, _)| *to == email) {
            Some((_, list)) => list.push(fresh),
            None => mails.push((email, vec![fresh])),
        }
    }
    for (email, entitlements) in mails {
        let mail = super::mail::queue_credentials(conn, ctx, settings, &entitlements, &email).await?;
        objects.push(mail.id);
    }
    Ok(Ok((objects, changed)))
}

/// The buyer as a customer (found by email) with an admin end user.
async fn upsert_customer(
    conn: &mut AnyConnection,
    ctx: &Ctx,
    email: &Email,
    state: &OrderState,
) -> ServiceResult<String> {
    if let Some(user) = customers_db::find_end_user_by_email(conn, &ctx.tenant_id, email).await? {
        return Ok(user.customer_id);
    }
    let customer_id = match customers_db::first_by_email(conn, &ctx.tenant_id, email).await? {
        Some(customer) => customer.id,
        None => {
            let name = match state.customer.name.as_deref().and_then(|n| Name::parse(n).ok()) {
                Some(name) => name,
                None => Name::parse(email.as_str()).or_else(|_| Name::parse("Customer"))?,
            };
            let customer = crate::domain::Customer {
                id: ids::new_id("cus"),
                name,
                email: Some(email.clone()),
                external_ref: None,
                created_at: ctx.now,
                updated_at: ctx.now,
            };
            customers_db::insert_customer(conn, &ctx.tenant_id, &customer).await?;
            record(
                conn,
                ctx,
                "customer.created",
                "customer",
                &customer.id,
                snapshot(&customer),
            )
            .await?;
            customer.id
        }
    };
    let user = EndUser {
        id: ids::new_id("usr"),
        customer_id: customer_id.clone(),
        email: email.clone(),
        name: state.customer.name.as_deref().and_then(|n| Name::parse(n).ok()),
        role: EndUserRole::Admin,
        created_at: ctx.now,
        updated_at: ctx.now,
    };
    customers_db::insert_end_user(conn, &ctx.tenant_id, &user).await?;
    record(conn, ctx, "end_user.created", "end_user", &user.id, snapshot(&user)).await?;
    Ok(customer_id)
}

#[cfg(test)]
mod tests {
    use super::order_refs_of;

    #[test]
    fn an_entitlements_reference_leads_back_to_its_order() {
        assert_eq!(order_refs_of("sub_1"), ["sub_1"]);
        assert_eq!(order_refs_of("sub_1#2"), ["sub_1#2", "sub_1"]);
        assert_eq!(order_refs_of("sub_1 (replaced)"), ["sub_1 (replaced)", "sub_1"]);
        assert_eq!(order_refs_of("sub_1#3 (replaced)"), ["sub_1#3 (replaced)", "sub_1"]);
        assert_eq!(order_refs_of("#1001"), ["#1001"]);
        assert_eq!(order_refs_of("order#x"), ["order#x"]);
    }
}
