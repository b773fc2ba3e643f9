//! The console's storefront pages: connections (webhook URL, secret rotation, API settings),
//! their mappings, and the deliveries inspector with replay. Every write calls the service the
//! management API calls, with the permission the API requires for it (`api/permissions.rs`):
//! connections and mappings `ManageCatalogue` (admin only), replay `ManageEntitlements`.
//!
//! Handlers answer early with a finished page (`Result<_, Response>`), as in `console.rs`.
#![allow(clippy::result_large_err)]

use axum::body::Bytes;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use axum::routing::{get, post};
use axum::Router;
use serde::Deserialize;
use serde_json::{json, Map, Value};
use std::collections::HashMap;

use super::console::{check, moment, open, open_post, Frame};
use super::{field, form, internal, not_found_page, redirect};
use crate::api::extract::{staff_allows, ApiPath, ClientIp, Permission};
use crate::app::AppState;
use crate::commerce::Provider;
use crate::domain::{Name, PageLimit, RuleViolation, Sku};
use crate::services::commerce::{
    self as commerce, ConnectionPatch, ConnectionView, DeliveryQuery, MappingQuery, NewConnection, NewMapping,
    SecretRotation,
};
use crate::services::staff::StaffSession;
use crate::services::{Ctx, Paging, ServiceError};
use crate::store::commerce::Delivery;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/admin/{tenant}/storefronts", get(connections).post(create_connection))
        .route("/admin/{tenant}/storefronts/connections/{id}", get(connection))
        .route(
            "/admin/{tenant}/storefronts/connections/{id}/{action}",
            post(connection_action),
        )
        .route("/admin/{tenant}/storefronts/mappings/{id}/delete", post(delete_mapping))
        .route("/admin/{tenant}/storefronts/deliveries", get(deliveries))
        .route("/admin/{tenant}/storefronts/deliveries/{id}", get(delivery))
        .route("/admin/{tenant}/storefronts/deliveries/{id}/replay", post(replay))
}

/// The providers a connection can be made for, as the form offers them.
const PROVIDERS: &[(&str, &str)] = &[
    ("stripe", "Stripe"),
    ("paddle", "Paddle Billing"),
    ("fastspring", "FastSpring"),
    ("maxio", "Maxio Advanced Billing (Chargify)"),
    ("zuora", "Zuora"),
    ("lemon_squeezy", "Lemon Squeezy"),
    ("shopify", "Shopify"),
    ("generic", "Generic (Standard Webhooks)"),
];

/// A delivery's possible outcomes (the inspector's filter).
const OUTCOMES: &[&str] = &[
    "applied",
    "duplicate",
    "ignored",
    "unmapped",
    "incomplete",
    "unmatched",
    "unreadable",
    "failed",
    "resolved",
    "rejected",
];

/// Every field of this area's forms: error messages are keyed by these (all present, so the
/// strict templates can test them).
const FIELDS: &[&str] = &[
    "provider",
    "name",
    "secret",
    "api_key",
    "api_base_url",
    "time_zone",
    "provider_ref",
    "sku",
    "trial_sku",
    "quantity_mode",
];

/// A form's error: the message, next to the field it is about (or above the form).
struct FormError {
    field: &'static str,
    message: String,
}

impl FormError {
    fn at(field: &'static str, rule: RuleViolation) -> FormError {
        FormError {
            field,
            message: rule.message,
        }
    }

    /// The errors object for the templates: every field, one with its message.
    fn fields(error: Option<&FormError>) -> Value {
        let mut errors: Map<String, Value> = FIELDS.iter().map(|f| ((*f).to_owned(), Value::Null)).collect();
        if let Some(error) = error.filter(|e| !e.field.is_empty()) {
            errors.insert(error.field.into(), json!(error.message));
        }
        Value::Object(errors)
    }
}

/// Which field the API's error code is about.
fn field_of(code: &str) -> &'static str {
    match code {
        "invalid_secrets" | "secret_exists" => "secret",
        "api_base_url_not_allowed" => "api_base_url",
        "invalid_time_zone" => "time_zone",
        "invalid_provider_ref" | "mapping_exists" => "provider_ref",
        "unknown_sku" | "invalid_sku" => "sku",
        "invalid_quantity_mode" => "quantity_mode",
        "invalid_name" => "name",
        _ => "",
    }
}

/// A service's refusal as a form error; anything else is the page that replaces the form.
fn form_error(error: ServiceError) -> Result<FormError, Response> {
    match error {
        ServiceError::Rule(rule) => Ok(FormError {
            field: field_of(rule.code),
            message: rule.message,
        }),
        ServiceError::Conflict { code, message } => Ok(FormError {
            field: field_of(code),
            message,
        }),
        ServiceError::NotFound(_) => Err(not_found_page()),
        other => Err(internal(other)),
    }
}

/// The form's values, kept when it is shown again (never a secret or an API key).
fn kept(fields: &HashMap<String, String>) -> Value {
    let mut kept = Map::new();
    for name in FIELDS {
        let value = if matches!(*name, "secret" | "api_key") {
            ""
        } else {
            field(fields, name)
        };
        kept.insert((*name).to_owned(), json!(value));
    }
    Value::Object(kept)
}

fn paging(after: Option<&str>) -> Paging {
    Paging {
        limit: None,
        after: after.filter(|a| !a.is_empty() && a.len() <= 100).map(str::to_owned),
    }
}

fn provider_label(provider: Provider) -> &'static str {
    PROVIDERS
        .iter()
        .find(|(p, _)| *p == provider.as_str())
        .map_or("Other", |(_, label)| *label)
}

fn connection_row(c: &ConnectionView) -> Value {
    json!({"id": c.id, "provider": provider_label(c.provider), "name": c.name, "webhook_url": c.webhook_url,
           "secret_count": c.secret_count, "api_configured": c.api_configured, "api_base_url": c.api_base_url,
           "rejected_not_stored": c.rejected_not_stored, "created": moment(c.created_at), "time_zone": c.time_zone,
           "disable_on_any_refund": c.disable_on_any_refund, "grace_after_cancel": c.grace_after_cancel})
}

#[derive(Deserialize)]
pub struct ListQuery {
    after: Option<String>,
    done: Option<String>,
}

// ---- connections ----

async fn connections_fields(app: &AppState, ctx: &Ctx, after: Option<&str>) -> Result<Value, ServiceError> {
    let page = commerce::list_connections(&app.store, ctx, &app.mail, &paging(after)).await?;
    Ok(json!({
        "title": "Storefronts",
        "nav": "storefronts",
        "connections": page.data.iter().map(connection_row).collect::<Vec<_>>(),
        "next": page.next_after,
        "providers": PROVIDERS.iter().map(|(value, label)| json!({"value": value, "label": label})).collect::<Vec<_>>(),
    }))
}

fn connections_page(
    frame: &Frame,
    session: &StaffSession,
    status: StatusCode,
    mut fields: Value,
    values: Value,
    error: Option<&FormError>,
) -> Response {
    fields["can_manage"] = json!(staff_allows(session.member.role, Permission::ManageCatalogue));
    fields["f"] = values;
    fields["errors"] = FormError::fields(error);
    fields["error"] = json!(error.filter(|e| e.field.is_empty()).map(|e| e.message.as_str()));
    frame.render(status, "admin_storefronts_list.html", Some(session), fields)
}

async fn connections(
    State(app): State<AppState>,
    ApiPath(tenant): ApiPath<String>,
    Query(query): Query<ListQuery>,
    headers: HeaderMap,
) -> Response {
    let (frame, session) = match open(&app, &tenant, &headers).await {
        Ok(parts) => parts,
        Err(response) => return response,
    };
    match connections_fields(&app, &session.ctx(None), query.after.as_deref()).await {
        Ok(fields) => connections_page(&frame, &session, StatusCode::OK, fields, kept(&HashMap::new()), None),
        Err(error) => internal(error),
    }
}

/// The create form's values as the management API's input (so the same rules apply).
fn new_connection(fields: &HashMap<String, String>) -> Result<NewConnection, FormError> {
    let provider = Provider::parse(field(fields, "provider")).ok_or(FormError {
        field: "provider",
        message: "Choose a provider.".into(),
    })?;
    let name = Name::parse(field(fields, "name").trim()).map_err(|rule| FormError::at("name", rule))?;
    let optional = |name: &str| Some(field(fields, name).trim().to_owned()).filter(|v| !v.is_empty());
    Ok(NewConnection {
        provider,
        name,
        secrets: vec![field(fields, "secret").trim().to_owned()],
        tolerance_seconds: None,
        api_key: optional("api_key"),
        api_base_url: optional("api_base_url"),
        signature_header: None,
        time_zone: None,
        disable_on_any_refund: None,
        grace_after_cancel: None,
    })
}

async fn create_connection(
    State(app): State<AppState>,
    ApiPath(tenant): ApiPath<String>,
    ClientIp(ip): ClientIp,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let (frame, session, fields) = match open_post(&app, &tenant, &headers, &body, Permission::ManageCatalogue).await {
        Ok(parts) => parts,
        Err(response) => return response,
    };
    let ctx = session.ctx(Some(ip));
    let outcome = match new_connection(&fields) {
        Ok(input) => {
            commerce::create_connection(&app.store, &ctx, &app.mail, app.storefronts.api.allowed(), input).await
        }
        Err(error) => {
            return again_connections(&app, &frame, &session, &fields, error).await;
        }
    };
    match outcome {
        Ok(created) => redirect(&format!(
            "{}/storefronts/connections/{}?done=created",
            frame.base, created.id
        )),
        Err(error) => match form_error(error) {
            Ok(error) => again_connections(&app, &frame, &session, &fields, error).await,
            Err(response) => response,
        },
    }
}

async fn again_connections(
    app: &AppState,
    frame: &Frame,
    session: &StaffSession,
    fields: &HashMap<String, String>,
    error: FormError,
) -> Response {
    match connections_fields(app, &session.ctx(None), None).await {
        Ok(page) => connections_page(
            frame,
            session,
            StatusCode::UNPROCESSABLE_ENTITY,
            page,
            kept(fields),
            Some(&error),
        ),
        Err(error) => internal(error),
    }
}

fn notice(done: Option<&str>) -> Option<&'static str> {
    Some(match done? {
        "created" => "The connection is made. Paste its webhook URL into the provider's settings.",
        "settings" => "Settings saved.",
        "add-secret" => "The new secret is added; the old ones stay valid until you remove them.",
        "keep-newest" => "Only the newest secret is valid now.",
        "mappings" => "The mapping is added.",
        "mapping-deleted" => "The mapping is deleted.",
        "replay" => "Replayed: this is the record of the replay.",
        _ => return None,
    })
}

async fn connection_fields(app: &AppState, ctx: &Ctx, id: &str, after: Option<&str>) -> Result<Value, ServiceError> {
    let c = commerce::get_connection(&app.store, ctx, &app.mail, id).await?;
    let paging = paging(after);
    let mappings = commerce::list_mappings(
        &app.store,
        ctx,
        &MappingQuery {
            connection_id: Some(c.id.clone()),
            limit: paging.limit,
            after: paging.after,
        },
    )
    .await?;
    let rows: Vec<Value> = mappings
        .data
        .iter()
        .map(|m| {
            json!({"id": m.id, "provider_ref": m.provider_ref, "sku": m.sku, "trial_sku": m.trial_sku,
                        "quantity_mode": m.quantity_mode, "created": moment(m.created_at)})
        })
        .collect();
    Ok(json!({
        "title": c.name,
        "nav": "storefronts",
        "c": connection_row(&c),
        "mappings": rows,
        "next": mappings.next_after,
    }))
}

fn connection_view(
    frame: &Frame,
    session: &StaffSession,
    status: StatusCode,
    mut fields: Value,
    values: Value,
    error: Option<&FormError>,
) -> Response {
    fields["can_manage"] = json!(staff_allows(session.member.role, Permission::ManageCatalogue));
    fields["f"] = values;
    fields["errors"] = FormError::fields(error);
    if let Some(error) = error.filter(|e| e.field.is_empty()) {
        fields["error"] = json!(error.message);
    }
    frame.render(status, "admin_storefronts_connection.html", Some(session), fields)
}

async fn connection(
    State(app): State<AppState>,
    ApiPath((tenant, id)): ApiPath<(String, String)>,
    Query(query): Query<ListQuery>,
    headers: HeaderMap,
) -> Response {
    let (frame, session) = match open(&app, &tenant, &headers).await {
        Ok(parts) => parts,
        Err(response) => return response,
    };
    match connection_fields(&app, &session.ctx(None), &id, query.after.as_deref()).await {
        Ok(mut fields) => {
            fields["notice"] = json!(notice(query.done.as_deref()));
            let mut values = kept(&HashMap::new());
            values["api_base_url"] = fields["c"]["api_base_url"].clone();
            values["quantity_mode"] = json!("seats");
            connection_view(&frame, &session, StatusCode::OK, fields, values, None)
        }
        Err(ServiceError::NotFound(_)) => not_found_page(),
        Err(error) => internal(error),
    }
}

/// The settings form as the management API's patch: empty fields leave their value as it is
/// (the API key is never shown, so it can only be replaced).
fn settings_patch(fields: &HashMap<String, String>) -> Result<ConnectionPatch, FormError> {
    let optional = |name: &str| Some(field(fields, name).trim().to_owned()).filter(|v| !v.is_empty());
    let name = optional("name")
        .map(Name::parse)
        .transpose()
        .map_err(|rule| FormError::at("name", rule))?;
    // The checkboxes say something only when the form that has them was sent (an unchecked box
    // sends nothing).
    let flags = field(fields, "flags") == "1";
    let checked = |name: &str| flags.then(|| field(fields, name) == "on");
    Ok(ConnectionPatch {
        name,
        secrets: None,
        tolerance_seconds: None,
        api_key: optional("api_key"),
        api_base_url: optional("api_base_url"),
        signature_header: None,
        time_zone: optional("time_zone"),
        disable_on_any_refund: checked("disable_on_any_refund"),
        grace_after_cancel: checked("grace_after_cancel"),
    })
}

fn new_mapping(connection_id: &str, fields: &HashMap<String, String>) -> Result<NewMapping, FormError> {
    let sku = Sku::parse(field(fields, "sku").trim()).map_err(|rule| FormError::at("sku", rule))?;
    let trial = field(fields, "trial_sku").trim();
    let trial_sku = (!trial.is_empty())
        .then(|| Sku::parse(trial))
        .transpose()
        .map_err(|rule| FormError::at("trial_sku", rule))?;
    Ok(NewMapping {
        connection_id: connection_id.to_owned(),
        provider_ref: field(fields, "provider_ref").trim().to_owned(),
        sku,
        trial_sku,
        quantity_mode: Some(field(fields, "quantity_mode").to_owned()).filter(|m| !m.is_empty()),
    })
}

async fn connection_action(
    State(app): State<AppState>,
    ApiPath((tenant, id, action)): ApiPath<(String, String, String)>,
    ClientIp(ip): ClientIp,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let (frame, session, fields) = match open_post(&app, &tenant, &headers, &body, Permission::ManageCatalogue).await {
        Ok(parts) => parts,
        Err(response) => return response,
    };
    let ctx = session.ctx(Some(ip));
    let (store, mail, allowed) = (&app.store, &app.mail, app.storefronts.api.allowed());
    let outcome: Result<Result<(), ServiceError>, FormError> = match action.as_str() {
        "settings" => match settings_patch(&fields) {
            Ok(patch) => Ok(commerce::update_connection(store, &ctx, mail, allowed, &id, patch)
                .await
                .map(drop)),
            Err(error) => Err(error),
        },
        "add-secret" => {
            let secret = field(&fields, "secret").trim().to_owned();
            Ok(
                commerce::rotate_secrets(store, &ctx, mail, allowed, &id, SecretRotation::Add(secret))
                    .await
                    .map(drop),
            )
        }
        "keep-newest" => Ok(
            commerce::rotate_secrets(store, &ctx, mail, allowed, &id, SecretRotation::KeepNewest)
                .await
                .map(drop),
        ),
        "mappings" => match new_mapping(&id, &fields) {
            Ok(input) => Ok(commerce::create_mapping(store, &ctx, input).await.map(drop)),
            Err(error) => Err(error),
        },
        _ => return not_found_page(),
    };
    let error = match outcome {
        Ok(Ok(())) => return redirect(&format!("{}/storefronts/connections/{id}?done={action}", frame.base)),
        Ok(Err(error)) => match form_error(error) {
            Ok(error) => error,
            Err(response) => return response,
        },
        Err(error) => error,
    };
    let error = trial_sku_error(&fields, error);
    match connection_fields(&app, &session.ctx(None), &id, None).await {
        Ok(page) => connection_view(
            &frame,
            &session,
            StatusCode::UNPROCESSABLE_ENTITY,
            page,
            kept(&fields),
            Some(&error),
        ),
        Err(ServiceError::NotFound(_)) => not_found_page(),
        Err(error) => internal(error),
    }
}

/// `unknown_sku` names the SKU no offering has: next to the trial SKU's field if it is that one.
fn trial_sku_error(fields: &HashMap<String, String>, mut error: FormError) -> FormError {
    let (sku, trial) = (field(fields, "sku").trim(), field(fields, "trial_sku").trim());
    if error.field == "sku" && !trial.is_empty() && trial != sku && error.message.ends_with(&format!(" {trial}")) {
        error.field = "trial_sku";
    }
    error
}

async fn delete_mapping(
    State(app): State<AppState>,
    ApiPath((tenant, id)): ApiPath<(String, String)>,
    ClientIp(ip): ClientIp,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let (frame, session, _) = match open_post(&app, &tenant, &headers, &body, Permission::ManageCatalogue).await {
        Ok(parts) => parts,
        Err(response) => return response,
    };
    match commerce::delete_mapping(&app.store, &session.ctx(Some(ip)), &id).await {
        Ok(mapping) => redirect(&format!(
            "{}/storefronts/connections/{}?done=mapping-deleted",
            frame.base, mapping.connection_id
        )),
        Err(ServiceError::NotFound(_)) => not_found_page(),
        Err(error) => internal(error),
    }
}

// ---- deliveries ----

#[derive(Deserialize)]
pub struct DeliveriesQuery {
    connection: Option<String>,
    outcome: Option<String>,
    after: Option<String>,
}

fn delivery_row(d: &Delivery, names: &HashMap<String, String>) -> Value {
    json!({"id": d.id, "received": moment(d.received_at), "connection": names.get(&d.connection_id).unwrap_or(&d.connection_id),
           "event_type": d.event_type, "event_id": d.event_id, "order_ref": d.order_ref, "outcome": d.outcome,
           "detail": d.detail})
}

/// The tenant's connections by id (for names and the filter), at most one page of 200.
async fn connection_names(app: &AppState, ctx: &Ctx) -> Result<Vec<(String, String)>, ServiceError> {
    let paging = Paging {
        limit: PageLimit::new(200).ok(),
        after: None,
    };
    let page = commerce::list_connections(&app.store, ctx, &app.mail, &paging).await?;
    Ok(page.data.into_iter().map(|c| (c.id, c.name)).collect())
}

async fn deliveries(
    State(app): State<AppState>,
    ApiPath(tenant): ApiPath<String>,
    Query(query): Query<DeliveriesQuery>,
    headers: HeaderMap,
) -> Response {
    let (frame, session) = match open(&app, &tenant, &headers).await {
        Ok(parts) => parts,
        Err(response) => return response,
    };
    let ctx = session.ctx(None);
    // An unknown filter value filters nothing rather than failing the page.
    let connection = query.connection.filter(|c| !c.is_empty() && c.len() <= 100);
    let outcome = query.outcome.filter(|o| OUTCOMES.contains(&o.as_str()));
    let page = async {
        let connections = connection_names(&app, &ctx).await?;
        let paging = paging(query.after.as_deref());
        let list = commerce::list_deliveries(
            &app.store,
            &ctx,
            &DeliveryQuery {
                connection_id: connection.clone(),
                outcome: outcome.clone(),
                limit: paging.limit,
                after: paging.after,
            },
        )
        .await?;
        Ok::<_, ServiceError>((connections, list))
    }
    .await;
    let (connections, list) = match page {
        Ok(parts) => parts,
        Err(error) => return internal(error),
    };
    let names: HashMap<String, String> = connections.iter().cloned().collect();
    let next = list.next_after.map(|after| {
        let mut pairs = vec![("after", after)];
        pairs.extend(connection.clone().map(|c| ("connection", c)));
        pairs.extend(outcome.clone().map(|o| ("outcome", o)));
        format!("?{}", serde_urlencoded::to_string(&pairs).unwrap_or_default())
    });
    frame.render(
        StatusCode::OK,
        "admin_storefronts_deliveries.html",
        Some(&session),
        json!({
            "title": "Storefront deliveries",
            "nav": "storefronts",
            "deliveries": list.data.iter().map(|d| delivery_row(d, &names)).collect::<Vec<_>>(),
            "next": next,
            "connections": connections.iter().map(|(id, name)| json!({"id": id, "name": name})).collect::<Vec<_>>(),
            "outcomes": OUTCOMES,
            "connection": connection.unwrap_or_default(),
            "outcome": outcome.unwrap_or_default(),
        }),
    )
}

/// The payload as the inspector shows it: pretty-printed when it is JSON, else as received.
fn payload(body: &str) -> (&'static str, String) {
    match serde_json::from_str::<Value>(body) {
        Ok(value) if !body.trim().is_empty() => (
            "JSON",
            serde_json::to_string_pretty(&value).unwrap_or_else(|_| body.to_owned()),
        ),
        _ => ("text", body.to_owned()),
    }
}

/// Where a touched object is shown in the console, if it has a page.
fn object_path(id: &str) -> Option<&'static str> {
    if id.starts_with("ent_") {
        Some("entitlements")
    } else if id.starts_with("cus_") {
        Some("customers")
    } else {
        None
    }
}

async fn delivery_fields(app: &AppState, session: &StaffSession, id: &str) -> Result<Value, ServiceError> {
    let ctx = session.ctx(None);
    let d = commerce::get_delivery(&app.store, &ctx, id).await?;
    let connection = commerce::get_connection(&app.store, &ctx, &app.mail, &d.connection_id).await?;
    let (kind, text) = payload(&d.body);
    let headers: Vec<Value> = d
        .headers
        .as_object()
        .map(|h| {
            h.iter()
                .map(|(name, value)| json!({"name": name, "value": value.as_str().map_or_else(|| value.to_string(), str::to_owned)}))
                .collect()
        })
        .unwrap_or_default();
    let objects: Vec<Value> = d
        .objects
        .iter()
        .map(|o| json!({"id": o, "path": object_path(o)}))
        .collect();
    let replayable = d.outcome != "rejected";
    Ok(json!({
        "title": format!("Delivery {}", d.id),
        "nav": "storefronts",
        "d": {"id": d.id, "connection_id": d.connection_id, "connection": connection.name,
              "provider": provider_label(connection.provider), "event_id": d.event_id, "event_type": d.event_type,
              "order_ref": d.order_ref, "received": moment(d.received_at), "outcome": d.outcome, "detail": d.detail,
              "signature": if replayable { "verified" } else { "failed" },
              "body_size": d.body_size, "body_sha256": d.body_sha256, "body_truncated": d.body_truncated},
        "headers": headers,
        "payload": text,
        "payload_kind": kind,
        "objects": objects,
        "replayable": replayable,
        "can_replay": staff_allows(session.member.role, Permission::ManageEntitlements),
    }))
}

#[derive(Deserialize)]
pub struct DoneQuery {
    done: Option<String>,
}

async fn delivery(
    State(app): State<AppState>,
    ApiPath((tenant, id)): ApiPath<(String, String)>,
    Query(query): Query<DoneQuery>,
    headers: HeaderMap,
) -> Response {
    let (frame, session) = match open(&app, &tenant, &headers).await {
        Ok(parts) => parts,
        Err(response) => return response,
    };
    match delivery_fields(&app, &session, &id).await {
        Ok(mut fields) => {
            fields["notice"] = json!(notice(query.done.as_deref()));
            frame.render(
                StatusCode::OK,
                "admin_storefronts_delivery.html",
                Some(&session),
                fields,
            )
        }
        Err(ServiceError::NotFound(_)) => not_found_page(),
        Err(error) => internal(error),
    }
}

async fn replay(
    State(app): State<AppState>,
    ApiPath((tenant, id)): ApiPath<(String, String)>,
    ClientIp(ip): ClientIp,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let (frame, session) = match open(&app, &tenant, &headers).await {
        Ok(parts) => parts,
        Err(response) => return response,
    };
    if let Err(response) = check(&session, &form(&body), Permission::ManageEntitlements) {
        return response;
    }
    let ctx = session.ctx(Some(ip));
    match commerce::replay(&app.store, &ctx, &app.mail, &app.storefronts.api, &id).await {
        // The replay is recorded as new deliveries (one per event): show the first.
        Ok(receipt) => {
            let shown = receipt.deliveries.first().map_or(id.as_str(), |d| d.id.as_str());
            redirect(&format!("{}/storefronts/deliveries/{shown}?done=replay", frame.base))
        }
        Err(ServiceError::NotFound(_)) => not_found_page(),
        Err(ServiceError::Rule(rule)) => match delivery_fields(&app, &session, &id).await {
            Ok(mut fields) => {
                fields["error"] = json!(rule.message);
                frame.render(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    "admin_storefronts_delivery.html",
                    Some(&session),
                    fields,
                )
            }
            Err(error) => internal(error),
        },
        Err(error) => internal(error),
    }
}

/// The entitlement page's "Storefront deliveries": the newest deliveries of its order.
pub(crate) async fn entitlement_deliveries(
    app: &AppState,
    ctx: &Ctx,
    order_ref: Option<&str>,
) -> Result<Vec<Value>, ServiceError> {
    let Some(order_ref) = order_ref else {
        return Ok(Vec::new());
    };
    let found = commerce::deliveries_of_entitlement_order(&app.store, ctx, order_ref, 50).await?;
    Ok(found
        .iter()
        .map(|d| json!({"id": d.id, "received": moment(d.received_at), "event_type": d.event_type, "outcome": d.outcome}))
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn payloads_are_pretty_when_they_are_json() {
        assert_eq!(payload("{\"a\":1}"), ("JSON", "{\n  \"a\": 1\n}".to_owned()));
        assert_eq!(payload("a=1&b=<2>"), ("text", "a=1&b=<2>".to_owned()));
        assert_eq!(payload(""), ("text", String::new()));
    }

    #[test]
    fn every_api_error_code_of_the_forms_has_its_field() {
        for code in [
            "invalid_secrets",
            "api_base_url_not_allowed",
            "unknown_sku",
            "mapping_exists",
        ] {
            assert!(FIELDS.contains(&field_of(code)), "{code}");
        }
    }
}
