//! Outgoing webhooks: a tenant's endpoints, and the fan-out of events to them. Every message is
//! written to the outbox in the transaction of the change it reports (so a rolled-back change sends
//! nothing and a committed one is never lost); `workers::webhooks` delivers them.

use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};
use sqlx::AnyConnection;
use utoipa::ToSchema;

use super::{found, record, Ctx, Page, Paging, ServiceError, ServiceResult};
use crate::domain::webhooks::{new_secret, EndpointUrl, EventType, Subscription};
use crate::domain::{ids, RuleViolation};
use crate::store::webhooks::{self as db, AttemptView, Endpoint, Message};
use crate::store::{commerce as commerce_db, entitlements as entitlements_db, licensing as licensing_db};
use crate::store::{Store, StoreResult};

/// Endpoints a tenant may have at most: each one multiplies every event.
const MAX_ENDPOINTS: usize = 20;
/// How long the old secret goes on signing after a rotation, so receivers can switch over.
const ROTATION_OVERLAP: Duration = Duration::hours(24);
const MAX_DESCRIPTION: usize = 500;

/// A receiver of webhooks.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct WebhookEndpoint {
    pub id: String,
    pub url: String,
    pub description: Option<String>,
    /// Event types it receives, or `["*"]` for all.
    pub events: Vec<String>,
    pub enabled: bool,
    /// Why the server disabled it (it failed for days); enable it again with PATCH.
    pub disabled_reason: Option<String>,
    /// Since when every attempt failed (`null` when the last one succeeded).
    pub failing_since: Option<DateTime<Utc>>,
    /// After a rotation: until then the previous secret signs too (a second `v1,` signature).
    pub previous_secret_expires_at: Option<DateTime<Utc>>,
    /// The signing secret (`whsec_…`): only in the answers to create and rotate-secret. Keep it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub secret: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

fn view(e: &Endpoint, now: DateTime<Utc>) -> WebhookEndpoint {
    WebhookEndpoint {
        id: e.id.clone(),
        url: e.url.clone(),
        description: e.description.clone(),
        events: e.events.clone(),
        enabled: e.enabled,
        disabled_reason: e.disabled_reason.clone(),
        failing_since: e.failing_since,
        previous_secret_expires_at: e.previous_expires_at.filter(|at| *at > now),
        secret: None,
        created_at: e.created_at,
        updated_at: e.updated_at,
    }
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewWebhookEndpoint {
    /// Where to POST events: http or https. Private, loopback and link-local addresses are
    /// refused at delivery unless the operator allows them.
    #[schema(value_type = String)]
    pub url: EndpointUrl,
    /// Event types to receive, or `["*"]` for all.
    pub events: Vec<String>,
    pub description: Option<String>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct WebhookEndpointPatch {
    #[schema(value_type = Option<String>)]
    pub url: Option<EndpointUrl>,
    pub events: Option<Vec<String>>,
    #[serde(default, deserialize_with = "super::nullable")]
    #[schema(value_type = Option<String>)]
    pub description: Option<Option<String>>,
    /// `false` stops deliveries (they wait); `true` resumes them and clears `disabled_reason`.
    pub enabled: Option<bool>,
}

fn check_description(description: Option<&str>) -> Result<Option<String>, RuleViolation> {
    match description.map(str::trim).filter(|d| !d.is_empty()) {
        Some(d) if d.chars().count() > MAX_DESCRIPTION || d.chars().any(char::is_control) => Err(RuleViolation::new(
            "invalid_description",
            format!("a description has at most {MAX_DESCRIPTION} printable characters"),
        )),
        other => Ok(other.map(str::to_owned)),
    }
}

pub async fn create(store: &Store, ctx: &Ctx, input: NewWebhookEndpoint) -> ServiceResult<WebhookEndpoint> {
    let events = Subscription::parse(&input.events)?.to_strings();
    let description = check_description(input.description.as_deref())?;
    let mut tx = store.begin().await?;
    let existing = db::list_endpoints(&mut tx, &ctx.tenant_id, "", MAX_ENDPOINTS as i64 + 1).await?;
    if existing.len() >= MAX_ENDPOINTS {
        return Err(RuleViolation::new(
            "too_many_endpoints",
            format!("a tenant has at most {MAX_ENDPOINTS} webhook endpoints"),
        )
        .into());
    }
    let endpoint = Endpoint {
        id: ids::new_id("whe"),
        tenant_id: ctx.tenant_id.clone(),
        url: input.url.as_str().to_owned(),
        description,
        events,
        enabled: true,
        disabled_reason: None,
        previous_expires_at: None,
        failing_since: None,
        created_at: ctx.now,
        updated_at: ctx.now,
    };
    let secret = new_secret();
    db::insert_endpoint(&mut tx, &endpoint, &secret).await?;
    let summary = serde_json::json!({"url": endpoint.url, "events": endpoint.events});
    record(
        &mut tx,
        ctx,
        "webhook_endpoint.created",
        "webhook_endpoint",
        &endpoint.id,
        summary,
    )
    .await?;
    tx.commit().await?;
    Ok(WebhookEndpoint {
        secret: Some(secret),
        ..view(&endpoint, ctx.now)
    })
}

pub async fn list(store: &Store, ctx: &Ctx, paging: &Paging) -> ServiceResult<Page<WebhookEndpoint>> {
    paging.check()?;
    let items = db::list_endpoints(
        &mut *store.read().await?,
        &ctx.tenant_id,
        paging.after(),
        paging.fetch_limit(),
    )
    .await?;
    let items = items.iter().map(|e| view(e, ctx.now)).collect();
    Ok(paging.page(items, |e: &WebhookEndpoint| &e.id))
}

pub async fn get(store: &Store, ctx: &Ctx, id: &str) -> ServiceResult<WebhookEndpoint> {
    let endpoint = found(
        db::get_endpoint(&mut *store.read().await?, &ctx.tenant_id, id).await?,
        "webhook endpoint",
    )?;
    Ok(view(&endpoint, ctx.now))
}

pub async fn update(store: &Store, ctx: &Ctx, id: &str, patch: WebhookEndpointPatch) -> ServiceResult<WebhookEndpoint> {
    let events = patch
        .events
        .as_deref()
        .map(Subscription::parse)
        .transpose()?
        .map(|s| s.to_strings());
    let description = patch.description.map(|d| check_description(d.as_deref())).transpose()?;
    let mut tx = store.begin().await?;
    let mut endpoint = found(db::get_endpoint(&mut tx, &ctx.tenant_id, id).await?, "webhook endpoint")?;
    let before = view(&endpoint, ctx.now);
    if let Some(url) = patch.url {
        endpoint.url = url.as_str().to_owned();
    }
    if let Some(events) = events {
        endpoint.events = events;
    }
    if let Some(description) = description {
        endpoint.description = description;
    }
    if let Some(enabled) = patch.enabled {
        if enabled && !endpoint.enabled {
            // A fresh start: the failing streak that disabled it is over.
            endpoint.failing_since = None;
            endpoint.disabled_reason = None;
        }
        endpoint.enabled = enabled;
    }
    endpoint.updated_at = ctx.now;
    db::update_endpoint(&mut tx, &endpoint).await?;
    let after = view(&endpoint, ctx.now);
    let diff = super::changes(&before, &after);
    record(&mut tx, ctx, "webhook_endpoint.updated", "webhook_endpoint", id, diff).await?;
    tx.commit().await?;
    Ok(after)
}

/// Deletes an endpoint and its delivery log; messages not yet sent are dropped.
pub async fn delete(store: &Store, ctx: &Ctx, id: &str) -> ServiceResult<WebhookEndpoint> {
    let mut tx = store.begin().await?;
    let endpoint = found(db::get_endpoint(&mut tx, &ctx.tenant_id, id).await?, "webhook endpoint")?;
    db::delete_endpoint(&mut tx, &ctx.tenant_id, id).await?;
    let summary = serde_json::json!({"url": endpoint.url});
    record(
        &mut tx,
        ctx,
        "webhook_endpoint.deleted",
        "webhook_endpoint",
        id,
        summary,
    )
    .await?;
    tx.commit().await?;
    Ok(view(&endpoint, ctx.now))
}

/// A new secret, answered once; the old one goes on signing for a day (both signatures are sent).
pub async fn rotate_secret(store: &Store, ctx: &Ctx, id: &str) -> ServiceResult<WebhookEndpoint> {
    let mut tx = store.begin().await?;
    let mut endpoint = found(db::get_endpoint(&mut tx, &ctx.tenant_id, id).await?, "webhook endpoint")?;
    let secret = new_secret();
    let until = ctx.now + ROTATION_OVERLAP;
    db::write_secret(&mut tx, id, &secret, Some(until)).await?;
    endpoint.previous_expires_at = Some(until);
    record(
        &mut tx,
        ctx,
        "webhook_endpoint.secret_rotated",
        "webhook_endpoint",
        id,
        serde_json::json!({"previous_secret_expires_at": until}),
    )
    .await?;
    tx.commit().await?;
    Ok(WebhookEndpoint {
        secret: Some(secret),
        ..view(&endpoint, ctx.now)
    })
}

/// Queues a `webhook.test` event to this endpoint alone.
pub async fn send_test(store: &Store, ctx: &Ctx, id: &str) -> ServiceResult<Message> {
    let mut tx = store.begin().await?;
    let endpoint = found(db::get_endpoint(&mut tx, &ctx.tenant_id, id).await?, "webhook endpoint")?;
    let event_id = ids::new_id("evt");
    let data = serde_json::to_value(view(&endpoint, ctx.now)).unwrap_or_default();
    let payload = payload_of(&event_id, EventType::WebhookTest, &ctx.tenant_id, ctx.now, data);
    let message = new_message(
        &endpoint,
        &event_id,
        EventType::WebhookTest,
        &endpoint.id,
        payload,
        ctx.now,
    );
    db::insert_message(&mut tx, &message).await?;
    tx.commit().await?;
    Ok(message)
}

#[derive(Debug, Clone, Default, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct DeliveryQuery {
    /// `pending`, `sending`, `delivered` or `failed`.
    pub status: Option<String>,
    #[param(inline)]
    pub limit: Option<crate::domain::PageLimit>,
    pub after: Option<String>,
}

/// An endpoint's delivery log: every message, its state and its last attempt.
pub async fn deliveries(
    store: &Store,
    ctx: &Ctx,
    endpoint_id: &str,
    query: &DeliveryQuery,
) -> ServiceResult<Page<Message>> {
    let paging = Paging {
        limit: query.limit,
        after: query.after.clone(),
    };
    if let Some(status) = query.status.as_deref() {
        if !matches!(status, "pending" | "sending" | "delivered" | "failed") {
            return Err(
                RuleViolation::new("invalid_status", "status is one of pending, sending, delivered, failed").into(),
            );
        }
    }
    let mut conn = store.read().await?;
    found(
        db::get_endpoint(&mut conn, &ctx.tenant_id, endpoint_id).await?,
        "webhook endpoint",
    )?;
    let items = db::list_messages(
        &mut conn,
        &ctx.tenant_id,
        endpoint_id,
        query.status.as_deref(),
        paging.after(),
        paging.fetch_limit(),
    )
    .await?;
    Ok(paging.page(items, |m| &m.id))
}

/// One delivery with every attempt made.
#[derive(Debug, Serialize, ToSchema)]
pub struct DeliveryDetail {
    #[serde(flatten)]
    pub message: Message,
    pub attempt_log: Vec<AttemptView>,
}

pub async fn delivery(store: &Store, ctx: &Ctx, id: &str) -> ServiceResult<DeliveryDetail> {
    let mut conn = store.read().await?;
    let message = found(
        db::get_message(&mut conn, &ctx.tenant_id, id).await?,
        "webhook delivery",
    )?;
    let attempt_log = db::attempts_of(&mut conn, &ctx.tenant_id, id).await?;
    Ok(DeliveryDetail { message, attempt_log })
}

/// Sends a delivered or failed message again, with the same id and body, and a new three-day
/// retry window.
pub async fn replay(store: &Store, ctx: &Ctx, id: &str) -> ServiceResult<Message> {
    let mut tx = store.begin().await?;
    found(db::get_message(&mut tx, &ctx.tenant_id, id).await?, "webhook delivery")?;
    if !db::requeue(&mut tx, &ctx.tenant_id, id, ctx.now).await? {
        return Err(ServiceError::Conflict {
            code: "delivery_in_progress",
            message: "the delivery is still pending or being sent".into(),
        });
    }
    record(
        &mut tx,
        ctx,
        "webhook_delivery.replayed",
        "webhook_delivery",
        id,
        serde_json::json!({}),
    )
    .await?;
    let message = found(db::get_message(&mut tx, &ctx.tenant_id, id).await?, "webhook delivery")?;
    tx.commit().await?;
    Ok(message)
}

// ---- fan-out ----

/// What receivers get: the event and the object's current state, as the management API shows it.
#[derive(Debug, Serialize, ToSchema)]
pub struct WebhookEvent {
    /// The event's id (the same for every endpoint); the `webhook-id` header identifies the message.
    pub id: String,
    #[serde(rename = "type")]
    pub event_type: EventType,
    /// When the change happened.
    pub timestamp: DateTime<Utc>,
    pub tenant_id: String,
    /// The kind of `data`: `entitlement` (also for `seat.*` and `usage.*`), `activation`,
    /// `storefront_delivery`, `mail` or `webhook_endpoint`.
    pub object: String,
    /// The object as `GET` on its management API resource answers it (an `EntitlementView`,
    /// an `Activation`, a `Delivery`, …).
    #[schema(value_type = Object)]
    pub data: serde_json::Value,
}

fn payload_of(
    event_id: &str,
    t: EventType,
    tenant_id: &str,
    at: DateTime<Utc>,
    data: serde_json::Value,
) -> serde_json::Value {
    serde_json::to_value(WebhookEvent {
        id: event_id.to_owned(),
        event_type: t,
        timestamp: at,
        tenant_id: tenant_id.to_owned(),
        object: t.object_kind().to_owned(),
        data,
    })
    .unwrap_or_default()
}

fn new_message(
    endpoint: &Endpoint,
    event_id: &str,
    t: EventType,
    object_id: &str,
    payload: serde_json::Value,
    now: DateTime<Utc>,
) -> Message {
    Message {
        id: ids::new_id("msg"),
        endpoint_id: endpoint.id.clone(),
        event_id: event_id.to_owned(),
        event_type: t.as_str().to_owned(),
        object_id: object_id.to_owned(),
        tenant_id: endpoint.tenant_id.clone(),
        seq: db::next_seq(now),
        payload,
        status: "pending".into(),
        attempts: 0,
        next_attempt_at: now,
        last_status_code: None,
        last_latency_ms: None,
        last_response: None,
        last_error: None,
        queued_at: now,
        created_at: now,
        delivered_at: None,
    }
}

/// The object's current representation; `fallback` (the event's summary) if it cannot be read.
async fn representation(
    conn: &mut AnyConnection,
    tenant_id: &str,
    t: EventType,
    object_id: &str,
    now: DateTime<Utc>,
    fallback: &serde_json::Value,
) -> StoreResult<serde_json::Value> {
    let value = match t.object_kind() {
        "entitlement" => entitlements_db::get(conn, tenant_id, object_id)
            .await?
            .map(|e| serde_json::to_value(e.view(now))),
        "activation" => licensing_db::get_activation(conn, tenant_id, object_id)
            .await?
            .map(serde_json::to_value),
        "storefront_delivery" => commerce_db::get_delivery(conn, tenant_id, object_id)
            .await?
            .map(serde_json::to_value),
        _ => None,
    };
    Ok(match value {
        Some(Ok(value)) => value,
        _ => {
            let mut value = fallback.clone();
            if let Some(object) = value.as_object_mut() {
                object.insert("id".into(), object_id.into());
            }
            value
        }
    })
}

/// Writes one message per subscribed, enabled endpoint of the tenant for an event about
/// `object_id`, in the caller's transaction.
pub(crate) async fn emit(
    conn: &mut AnyConnection,
    tenant_id: &str,
    event_id: &str,
    t: EventType,
    object_id: &str,
    now: DateTime<Utc>,
    summary: &serde_json::Value,
) -> StoreResult<()> {
    let endpoints: Vec<Endpoint> = db::enabled_endpoints(conn, tenant_id)
        .await?
        .into_iter()
        .filter(|e| Subscription::parse(&e.events).is_ok_and(|s| s.matches(t)))
        .collect();
    if endpoints.is_empty() {
        return Ok(());
    }
    let data = representation(conn, tenant_id, t, object_id, now, summary).await?;
    let payload = payload_of(event_id, t, tenant_id, now, data);
    for endpoint in &endpoints {
        let message = new_message(endpoint, event_id, t, object_id, payload.clone(), now);
        db::insert_message(conn, &message).await?;
    }
    Ok(())
}

/// The webhooks a recorded event causes (called by `services::record` for every event).
pub(crate) async fn on_event(
    conn: &mut AnyConnection,
    tenant_id: &str,
    event: &crate::store::events::Event,
) -> StoreResult<()> {
    match EventType::for_action(&event.action) {
        Some(t) => {
            emit(
                conn,
                tenant_id,
                &event.id,
                t,
                &event.object_id,
                event.created_at,
                &event.summary,
            )
            .await
        }
        None => Ok(()),
    }
}

/// For changes the event log does not hold (seats taken and given back): a webhook of its own.
pub(crate) async fn emit_now(
    conn: &mut AnyConnection,
    tenant_id: &str,
    t: EventType,
    object_id: &str,
    now: DateTime<Utc>,
) -> StoreResult<()> {
    emit(
        conn,
        tenant_id,
        &ids::new_id("evt"),
        t,
        object_id,
        now,
        &serde_json::json!({}),
    )
    .await
}

/// The webhook a stored storefront delivery causes: applied to its order, unmapped, or
/// incomplete (it could not be applied: `delivery.failed`).
pub(crate) async fn on_delivery(
    conn: &mut AnyConnection,
    tenant_id: &str,
    delivery: &crate::store::commerce::Delivery,
    now: DateTime<Utc>,
) -> StoreResult<()> {
    let t = match delivery.outcome.as_str() {
        "applied" => EventType::OrderApplied,
        "unmapped" => EventType::DeliveryUnmapped,
        "incomplete" => EventType::DeliveryFailed,
        _ => return Ok(()),
    };
    emit_now(conn, tenant_id, t, &delivery.id, now).await
}
