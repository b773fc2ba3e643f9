//! The console's catalogue (`/admin/{tenant}/catalogue…`) and settings (`/admin/{tenant}/settings…`)
//! pages. Forms are turned into the management API's input types through serde, so the very same
//! validation and services apply; posts check the permission the API uses for the same call.
#![allow(clippy::result_large_err)]

use axum::body::Bytes;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use axum::routing::{get, post};
use axum::Router;
use serde::de::DeserializeOwned;
use serde::Deserialize;
use serde_json::{json, Map, Value};
use std::collections::HashMap;

use super::console::{check, day, moment, open, open_post, Frame};
use super::{field, form, internal, not_found_page, redirect};
use crate::api::extract::{staff_allows, ApiPath, ClientIp, Permission};
use crate::app::AppState;
use crate::domain::staff::{StaffMember, StaffRole};
use crate::domain::{PageLimit, RuleViolation};
use crate::services::catalogue::{self as catalogue, CatalogueQuery};
use crate::services::entitlements::Scope;
use crate::services::staff::StaffSession;
use crate::services::{self, Ctx, Paging, ServiceError, ServiceResult};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/admin/{tenant}/catalogue", get(catalogue_list))
        .route("/admin/{tenant}/catalogue/{kind}", post(create))
        .route("/admin/{tenant}/catalogue/{kind}/{id}", get(item).post(update))
        .route("/admin/{tenant}/settings", get(settings))
        .route("/admin/{tenant}/settings/branding", post(put_branding))
        .route("/admin/{tenant}/settings/mail-templates", post(mail_template))
        .route("/admin/{tenant}/settings/api-keys", post(create_key))
        .route("/admin/{tenant}/settings/api-keys/{id}/revoke", post(revoke_key))
        .route("/admin/{tenant}/settings/staff", post(add_staff))
        .route("/admin/{tenant}/settings/staff/{id}/{action}", post(staff_action))
}

/// Lists shown on one page; longer ones page with `?after=`.
const PAGE: i64 = 50;

fn limit(n: i64) -> Option<PageLimit> {
    PageLimit::new(n).ok()
}

#[derive(Deserialize)]
pub struct ListQuery {
    after: Option<String>,
    done: Option<String>,
}

/// A form the input type refuses reads like any other rule the API enforces.
fn invalid_input(message: impl Into<String>) -> ServiceError {
    RuleViolation::new("invalid_input", message).into()
}

/// A conflict (a key, SKU or email taken) is shown beside the form like a broken rule.
fn readable(error: ServiceError) -> ServiceError {
    match error {
        ServiceError::Conflict { code, message } => RuleViolation::new(code, message).into(),
        other => other,
    }
}

fn parse<T: DeserializeOwned>(input: Value) -> ServiceResult<T> {
    serde_json::from_value(input).map_err(|error| invalid_input(error.to_string()))
}

// ---- forms as the API's input ----

/// The catalogue's kinds of object, as they appear in paths.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Product,
    Feature,
    Attribute,
    Edition,
    Plan,
    Offering,
}

impl Kind {
    fn parse(path: &str) -> Option<Kind> {
        Some(match path {
            "products" => Kind::Product,
            "features" => Kind::Feature,
            "attributes" => Kind::Attribute,
            "editions" => Kind::Edition,
            "plans" => Kind::Plan,
            "offerings" => Kind::Offering,
            _ => return None,
        })
    }

    fn path(self) -> &'static str {
        match self {
            Kind::Product => "products",
            Kind::Feature => "features",
            Kind::Attribute => "attributes",
            Kind::Edition => "editions",
            Kind::Plan => "plans",
            Kind::Offering => "offerings",
        }
    }

    fn label(self) -> &'static str {
        match self {
            Kind::Product => "product",
            Kind::Feature => "feature",
            Kind::Attribute => "attribute",
            Kind::Edition => "edition",
            Kind::Plan => "plan",
            Kind::Offering => "offering",
        }
    }

    /// The entitlements an edit of this object reaches (features and attributes reach none:
    /// only their names change).
    fn scope(self, id: &str) -> Option<Scope<'_>> {
        match self {
            Kind::Product => Some(Scope::Product(id)),
            Kind::Edition => Some(Scope::Edition(id)),
            Kind::Plan => Some(Scope::Plan(id)),
            Kind::Offering => Some(Scope::Offering(id)),
            Kind::Feature | Kind::Attribute => None,
        }
    }
}

/// Copies a text field that the form has (even empty, so the API's rule about it applies).
fn put_text(input: &mut Map<String, Value>, fields: &HashMap<String, String>, name: &str) {
    if let Some(value) = fields.get(name) {
        input.insert(name.into(), json!(value.trim()));
    }
}

/// Copies a choice (a `<select>`); left empty, the API's default applies.
fn put_choice(input: &mut Map<String, Value>, fields: &HashMap<String, String>, name: &str) {
    let value = field(fields, name).trim();
    if !value.is_empty() {
        input.insert(name.into(), json!(value));
    }
}

fn whole(text: &str, what: &str) -> ServiceResult<Option<i64>> {
    let text = text.trim();
    if text.is_empty() {
        return Ok(None);
    }
    text.parse()
        .map(Some)
        .map_err(|_| invalid_input(format!("{what} must be a whole number")))
}

fn put_number(
    input: &mut Map<String, Value>,
    fields: &HashMap<String, String>,
    name: &str,
    what: &str,
) -> ServiceResult<()> {
    if let Some(n) = whole(field(fields, name), what)? {
        input.insert(name.into(), json!(n));
    }
    Ok(())
}

/// `{name}_unit` and `{name}_count` as an interval; no unit chosen leaves the API's default.
fn put_interval(
    input: &mut Map<String, Value>,
    fields: &HashMap<String, String>,
    name: &str,
    what: &str,
) -> ServiceResult<()> {
    let unit = field(fields, &format!("{name}_unit")).trim();
    if unit.is_empty() {
        return Ok(());
    }
    let count = whole(field(fields, &format!("{name}_count")), what)?.unwrap_or(0);
    input.insert(name.into(), json!({"unit": unit, "count": count}));
    Ok(())
}

/// An edition's grants: a checked `feature.{key}` with its `limit.{key}` and `overdraft.{key}`;
/// a non-empty `attr.{key}`, typed by the attribute's kind.
fn edition_values(
    input: &mut Map<String, Value>,
    fields: &HashMap<String, String>,
    attributes: &[(String, String)],
) -> ServiceResult<()> {
    let mut features = Vec::new();
    let mut keys: Vec<&String> = fields.keys().filter(|k| k.starts_with("feature.")).collect();
    keys.sort();
    for name in keys {
        let key = &name["feature.".len()..];
        let mut value = json!({"key": key});
        if let Some(limit) = whole(field(fields, &format!("limit.{key}")), &format!("the limit of {key}"))? {
            value["limit"] = json!(limit);
        }
        if let Some(overdraft) = whole(
            field(fields, &format!("overdraft.{key}")),
            &format!("the overdraft of {key}"),
        )? {
            value["overdraft"] = json!(overdraft);
        }
        features.push(value);
    }
    let mut values = Vec::new();
    for (key, kind) in attributes {
        let text = field(fields, &format!("attr.{key}")).trim();
        if text.is_empty() {
            continue;
        }
        let value = if kind == "number" {
            match text.parse::<f64>().ok().and_then(serde_json::Number::from_f64) {
                Some(number) => Value::Number(text.parse::<i64>().map_or(number, Into::into)),
                None => return Err(invalid_input(format!("attribute {key} must be a number"))),
            }
        } else {
            json!(text)
        };
        values.push(json!({"key": key, "value": value}));
    }
    input.insert("features".into(), Value::Array(features));
    input.insert("attributes".into(), Value::Array(values));
    Ok(())
}

/// The API's input for creating (`creating`) or changing an object of `kind` from a form.
fn input_of(
    kind: Kind,
    creating: bool,
    fields: &HashMap<String, String>,
    attributes: &[(String, String)],
) -> ServiceResult<Value> {
    let mut input = Map::new();
    put_text(&mut input, fields, "name");
    if creating && kind != Kind::Product && kind != Kind::Offering {
        put_text(&mut input, fields, "product_id");
    }
    match kind {
        Kind::Product => {
            for (name, what) in [
                ("lease_period", "the lease period"),
                ("offline_lease_period", "the offline lease period"),
                ("grace_period", "the grace period"),
                ("linger_period", "the linger period"),
            ] {
                put_interval(&mut input, fields, name, what)?;
            }
            input.insert("account_based".into(), json!(fields.contains_key("account_based")));
        }
        Kind::Feature | Kind::Attribute => {
            if creating {
                put_text(&mut input, fields, "key");
                put_choice(&mut input, fields, "kind");
            }
        }
        Kind::Edition => edition_values(&mut input, fields, attributes)?,
        Kind::Plan => {
            for name in ["license_type", "start", "kind"] {
                put_choice(&mut input, fields, name);
            }
            put_interval(&mut input, fields, "duration", "the duration")?;
        }
        Kind::Offering => {
            put_text(&mut input, fields, "sku");
            if creating {
                put_choice(&mut input, fields, "edition_id");
                put_choice(&mut input, fields, "plan_id");
            }
            put_number(&mut input, fields, "seat_count", "the seat count")?;
            put_choice(&mut input, fields, "concurrency_mode");
            let overdraft = field(fields, "overdraft_kind").trim();
            if !overdraft.is_empty() {
                let value = whole(field(fields, "overdraft_value"), "the overdraft")?.unwrap_or(0);
                input.insert("overdraft".into(), json!({"kind": overdraft, "value": value}));
            }
        }
    }
    Ok(Value::Object(input))
}

/// An object's JSON as form fields: nested objects flattened with `_` (`lease_period_unit`),
/// an edition's grants as their checkbox and value fields.
fn form_values(item: &Value) -> Value {
    let mut values = Map::new();
    let text = |value: &Value| match value {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        other => other.to_string(),
    };
    if let Value::Object(fields) = item {
        for (name, value) in fields {
            match value {
                Value::Object(inner) => {
                    for (part, value) in inner {
                        values.insert(format!("{name}_{part}"), json!(text(value)));
                    }
                }
                Value::Array(list) if name == "features" => {
                    for f in list {
                        let key = text(&f["key"]);
                        values.insert(format!("feature.{key}"), json!("on"));
                        values.insert(format!("limit.{key}"), json!(text(&f["limit"])));
                        values.insert(format!("overdraft.{key}"), json!(text(&f["overdraft"])));
                    }
                }
                Value::Array(list) if name == "attributes" => {
                    for a in list {
                        values.insert(format!("attr.{}", text(&a["key"])), json!(text(&a["value"])));
                    }
                }
                Value::Bool(true) => {
                    values.insert(name.clone(), json!("on"));
                }
                Value::Bool(false) => {}
                other => {
                    values.insert(name.clone(), json!(text(other)));
                }
            }
        }
    }
    Value::Object(values)
}

fn posted(fields: &HashMap<String, String>) -> Value {
    let mut values = Map::new();
    for (name, value) in fields {
        if name != "csrf" {
            values.insert(name.clone(), json!(value));
        }
    }
    Value::Object(values)
}

// ---- catalogue reads ----

fn by_product(product_id: &str, n: i64) -> CatalogueQuery {
    CatalogueQuery {
        product_id: Some(product_id.to_owned()),
        limit: limit(n),
        after: None,
    }
}

/// An object as JSON and the product it belongs to (404 for another tenant's).
async fn load(app: &AppState, ctx: &Ctx, kind: Kind, id: &str) -> ServiceResult<(Value, String)> {
    let s = &app.store;
    let json = |v: Result<Value, serde_json::Error>| v.map_err(|e| internal_error(e.to_string()));
    Ok(match kind {
        Kind::Product => {
            let p = catalogue::get_product(s, ctx, id).await?;
            (json(serde_json::to_value(&p))?, p.id)
        }
        Kind::Feature => {
            let f = catalogue::get_feature(s, ctx, id).await?;
            (json(serde_json::to_value(&f))?, f.product_id)
        }
        Kind::Attribute => {
            let a = catalogue::get_attribute(s, ctx, id).await?;
            (json(serde_json::to_value(&a))?, a.product_id)
        }
        Kind::Edition => {
            let e = catalogue::get_edition(s, ctx, id).await?;
            (json(serde_json::to_value(&e))?, e.product_id)
        }
        Kind::Plan => {
            let p = catalogue::get_plan(s, ctx, id).await?;
            (json(serde_json::to_value(&p))?, p.product_id)
        }
        Kind::Offering => {
            let o = catalogue::get_offering(s, ctx, id).await?;
            (json(serde_json::to_value(&o))?, o.product_id)
        }
    })
}

fn internal_error(message: String) -> ServiceError {
    ServiceError::Store(crate::store::StoreError::Other(anyhow::anyhow!(message)))
}

/// A product's features and attributes, editions, plans and offerings (the first 200 of each:
/// more than a console page can usefully show).
async fn product_parts(app: &AppState, ctx: &Ctx, product_id: &str) -> ServiceResult<Value> {
    let s = &app.store;
    let q = by_product(product_id, 200);
    let to = |v: Result<Value, serde_json::Error>| v.map_err(|e| internal_error(e.to_string()));
    let features = catalogue::list_features(s, ctx, &q).await?.data;
    let attributes = catalogue::list_attributes(s, ctx, &q).await?.data;
    let editions = catalogue::list_editions(s, ctx, &q).await?.data;
    let plans = catalogue::list_plans(s, ctx, &q).await?.data;
    let offerings = catalogue::list_offerings(s, ctx, &q).await?.data;
    Ok(json!({
        "features": to(serde_json::to_value(&features))?,
        "attributes": to(serde_json::to_value(&attributes))?,
        "editions": to(serde_json::to_value(&editions))?,
        "plans": to(serde_json::to_value(&plans))?,
        "offerings": to(serde_json::to_value(&offerings))?,
    }))
}

async fn attribute_kinds(app: &AppState, ctx: &Ctx, product_id: &str) -> ServiceResult<Vec<(String, String)>> {
    let attributes = catalogue::list_attributes(&app.store, ctx, &by_product(product_id, 200)).await?;
    Ok(attributes
        .data
        .iter()
        .map(|a| (a.key.to_string(), a.kind.as_str().to_owned()))
        .collect())
}

fn can_edit(session: &StaffSession) -> bool {
    staff_allows(session.member.role, Permission::ManageCatalogue)
}

async fn list_page(app: &AppState, session: &StaffSession, after: Option<String>) -> ServiceResult<Value> {
    let ctx = session.ctx(None);
    let query = CatalogueQuery {
        product_id: None,
        limit: limit(PAGE),
        after,
    };
    let page = catalogue::list_products(&app.store, &ctx, &query).await?;
    let products = serde_json::to_value(&page.data).map_err(|e| internal_error(e.to_string()))?;
    Ok(
        json!({"title": "Catalogue", "nav": "catalogue", "products": products, "next_after": page.next_after,
              "can_edit": can_edit(session), "v": {}, "error_at": ""}),
    )
}

/// The page of one object: its edit form with the entitlements an edit reaches; for a product,
/// also its parts with their create forms.
async fn item_page(app: &AppState, session: &StaffSession, kind: Kind, id: &str) -> ServiceResult<Value> {
    let ctx = session.ctx(None);
    let (item, product_id) = load(app, &ctx, kind, id).await?;
    let reach = match kind.scope(id) {
        Some(scope) => Some(catalogue::reach(&app.store, &ctx, scope).await?),
        None => None,
    };
    let product = if kind == Kind::Product {
        item.clone()
    } else {
        load(app, &ctx, Kind::Product, &product_id).await?.0
    };
    let title = format!("{} {}", kind.label(), item["name"].as_str().unwrap_or_default());
    Ok(json!({
        "title": title, "nav": "catalogue", "kind": kind.path(), "label": kind.label(),
        "item": item.clone(), "v": form_values(&item), "product": product, "reach": reach,
        "parts": product_parts(app, &ctx, &product_id).await?,
        "can_edit": can_edit(session), "new": {}, "error_at": "",
    }))
}

fn item_href(frame: &Frame, kind: Kind, id: &str) -> String {
    format!("{}/catalogue/{}/{id}", frame.base, kind.path())
}

fn catalogue_notice(done: Option<&str>) -> Option<&'static str> {
    Some(match done? {
        "created" => "Created.",
        "saved" => "Saved.",
        _ => return None,
    })
}

async fn catalogue_list(
    State(app): State<AppState>,
    ApiPath(tenant): ApiPath<String>,
    Query(query): Query<ListQuery>,
    headers: HeaderMap,
) -> Response {
    let (frame, session) = match open(&app, &tenant, &headers).await {
        Ok(parts) => parts,
        Err(response) => return response,
    };
    match list_page(&app, &session, query.after).await {
        Ok(mut page) => {
            page["notice"] = json!(catalogue_notice(query.done.as_deref()));
            frame.render(StatusCode::OK, "admin_catalogue.html", Some(&session), page)
        }
        Err(ServiceError::Rule(rule)) => frame.render(
            StatusCode::UNPROCESSABLE_ENTITY,
            "admin_catalogue.html",
            Some(&session),
            json!({"title": "Catalogue", "nav": "catalogue", "products": [], "next_after": null,
                   "can_edit": false, "v": {}, "error_at": "", "error": rule.message}),
        ),
        Err(error) => internal(error),
    }
}

async fn item(
    State(app): State<AppState>,
    ApiPath((tenant, kind, id)): ApiPath<(String, String, String)>,
    Query(query): Query<ListQuery>,
    headers: HeaderMap,
) -> Response {
    let (frame, session) = match open(&app, &tenant, &headers).await {
        Ok(parts) => parts,
        Err(response) => return response,
    };
    let Some(kind) = Kind::parse(&kind) else {
        return not_found_page();
    };
    match item_page(&app, &session, kind, &id).await {
        Ok(mut page) => {
            page["notice"] = json!(catalogue_notice(query.done.as_deref()));
            frame.render(StatusCode::OK, "admin_catalogue_item.html", Some(&session), page)
        }
        Err(ServiceError::NotFound(_)) => not_found_page(),
        Err(error) => internal(error),
    }
}

async fn create_item(app: &AppState, ctx: &Ctx, kind: Kind, input: Value) -> ServiceResult<(Kind, String)> {
    let s = &app.store;
    Ok(match kind {
        Kind::Product => (kind, catalogue::create_product(s, ctx, parse(input)?).await?.id),
        // A product's parts are made from its page, and the page is where to go back to.
        Kind::Feature => (
            Kind::Product,
            catalogue::create_feature(s, ctx, parse(input)?).await?.product_id,
        ),
        Kind::Attribute => (
            Kind::Product,
            catalogue::create_attribute(s, ctx, parse(input)?).await?.product_id,
        ),
        Kind::Edition => (
            Kind::Product,
            catalogue::create_edition(s, ctx, parse(input)?).await?.product_id,
        ),
        Kind::Plan => (
            Kind::Product,
            catalogue::create_plan(s, ctx, parse(input)?).await?.product_id,
        ),
        Kind::Offering => (
            Kind::Product,
            catalogue::create_offering(s, ctx, parse(input)?).await?.product_id,
        ),
    })
}

async fn create(
    State(app): State<AppState>,
    ApiPath((tenant, kind)): ApiPath<(String, String)>,
    ClientIp(ip): ClientIp,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let (frame, session, fields) = match open_post(&app, &tenant, &headers, &body, Permission::ManageCatalogue).await {
        Ok(parts) => parts,
        Err(response) => return response,
    };
    let Some(kind) = Kind::parse(&kind) else {
        return not_found_page();
    };
    let ctx = session.ctx(Some(ip));
    let mut product_id = field(&fields, "product_id").to_owned();
    if kind == Kind::Offering {
        // An offering's product is its edition's (and the page to go back to on an error).
        if let Ok((_, id)) = load(&app, &ctx, Kind::Edition, field(&fields, "edition_id")).await {
            product_id = id;
        }
    }
    let outcome = async {
        let attributes = if kind == Kind::Edition {
            attribute_kinds(&app, &ctx, &product_id).await?
        } else {
            Vec::new()
        };
        create_item(&app, &ctx, kind, input_of(kind, true, &fields, &attributes)?).await
    }
    .await
    .map_err(readable);
    match outcome {
        Ok((to, id)) => redirect(&format!("{}?done=created", item_href(&frame, to, &id))),
        Err(ServiceError::Rule(rule)) => {
            // Back to the form the values came from, with the API's message beside it.
            let page = if kind == Kind::Product {
                list_page(&app, &session, None).await.map(|mut page| {
                    page["v"] = posted(&fields);
                    page
                })
            } else {
                item_page(&app, &session, Kind::Product, &product_id)
                    .await
                    .map(|mut page| {
                        page["new"] = posted(&fields);
                        page
                    })
            };
            let template = if kind == Kind::Product {
                "admin_catalogue.html"
            } else {
                "admin_catalogue_item.html"
            };
            match page {
                Ok(mut page) => {
                    page["error_at"] = json!(kind.path());
                    page["error"] = json!(rule.message);
                    frame.render(StatusCode::UNPROCESSABLE_ENTITY, template, Some(&session), page)
                }
                Err(ServiceError::NotFound(_)) => not_found_page(),
                Err(error) => internal(error),
            }
        }
        Err(ServiceError::NotFound(_)) => not_found_page(),
        Err(error) => internal(error),
    }
}

async fn update_item(app: &AppState, ctx: &Ctx, kind: Kind, id: &str, input: Value) -> ServiceResult<()> {
    let s = &app.store;
    match kind {
        Kind::Product => catalogue::update_product(s, ctx, id, parse(input)?).await.map(drop),
        Kind::Feature => catalogue::update_feature(s, ctx, id, parse(input)?).await.map(drop),
        Kind::Attribute => catalogue::update_attribute(s, ctx, id, parse(input)?).await.map(drop),
        Kind::Edition => catalogue::update_edition(s, ctx, id, parse(input)?).await.map(drop),
        Kind::Plan => catalogue::update_plan(s, ctx, id, parse(input)?).await.map(drop),
        Kind::Offering => catalogue::update_offering(s, ctx, id, parse(input)?).await.map(drop),
    }
}

async fn update(
    State(app): State<AppState>,
    ApiPath((tenant, kind, id)): ApiPath<(String, String, String)>,
    ClientIp(ip): ClientIp,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let (frame, session, fields) = match open_post(&app, &tenant, &headers, &body, Permission::ManageCatalogue).await {
        Ok(parts) => parts,
        Err(response) => return response,
    };
    let Some(kind) = Kind::parse(&kind) else {
        return not_found_page();
    };
    let ctx = session.ctx(Some(ip));
    let outcome = async {
        let (_, product_id) = load(&app, &ctx, kind, &id).await?;
        let attributes = if kind == Kind::Edition {
            attribute_kinds(&app, &ctx, &product_id).await?
        } else {
            Vec::new()
        };
        update_item(&app, &ctx, kind, &id, input_of(kind, false, &fields, &attributes)?).await
    }
    .await
    .map_err(readable);
    match outcome {
        Ok(()) => redirect(&format!("{}?done=saved", item_href(&frame, kind, &id))),
        Err(ServiceError::Rule(rule)) => match item_page(&app, &session, kind, &id).await {
            Ok(mut page) => {
                page["v"] = posted(&fields);
                page["error_at"] = json!("edit");
                page["error"] = json!(rule.message);
                frame.render(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    "admin_catalogue_item.html",
                    Some(&session),
                    page,
                )
            }
            Err(error) => internal(error),
        },
        Err(ServiceError::NotFound(_)) => not_found_page(),
        Err(error) => internal(error),
    }
}

// ---- settings ----

fn staff_row(member: &StaffMember, me: &str) -> Value {
    json!({"id": member.id, "email": member.email.as_str(), "role": member.role.as_str(),
           "added": day(Some(member.created_at)), "disabled": member.disabled_at.map(moment),
           "me": member.id == me})
}

/// The settings page: branding and mail templates (everyone reads; admins change), API keys
/// (admins only, as `GET /api-keys` needs `ManageKeys`), and the staff.
async fn settings_page(app: &AppState, session: &StaffSession, after: Option<String>) -> ServiceResult<Value> {
    let ctx = session.ctx(None);
    let role = session.member.role;
    let branding = services::branding::settings(&app.store, &ctx).await?;
    let templates = services::mail::templates(&app.store, &ctx).await?.data;
    let keys = if staff_allows(role, Permission::ManageKeys) {
        let paging = Paging {
            limit: limit(PAGE),
            after,
        };
        let page = services::api_keys::list(&app.store, &ctx, &paging).await?;
        let rows: Vec<Value> = page
            .data
            .iter()
            .map(|k| {
                json!({"id": k.id, "name": k.name, "role": serde_json::to_value(k.role).unwrap_or_default(),
                            "prefix": k.display_prefix, "created": day(Some(k.created_at)),
                            "revoked": k.revoked_at.map(moment)})
            })
            .collect();
        Some(json!({"rows": rows, "next_after": page.next_after}))
    } else {
        None
    };
    let staff: Vec<Value> = services::staff::list(&app.store, &ctx)
        .await?
        .iter()
        .map(|m| staff_row(m, &session.member.id))
        .collect();
    let templates: Vec<Value> = templates
        .iter()
        .map(|t| serde_json::to_value(t).unwrap_or_default())
        .collect();
    Ok(json!({
        "title": "Settings", "nav": "settings",
        "branding": serde_json::to_value(&branding).unwrap_or_default(),
        "templates": templates, "keys": keys, "members": staff,
        "can_edit": staff_allows(role, Permission::ManageCatalogue),
        "can_manage_staff": staff_allows(role, Permission::ManageKeys),
        "roles": ["admin", "support", "viewer"],
        "error_at": "", "v": {}, "preview": null,
    }))
}

fn settings_notice(done: Option<&str>) -> Option<&'static str> {
    Some(match done? {
        "branding" => "Branding saved.",
        "template" => "Mail template saved.",
        "revoked" => "The key is revoked: requests with it are refused from now on.",
        "invited" => "Staff member added: the invitation with their set-password link is queued.",
        "role" => "Role changed.",
        "disable" => "Staff member disabled: they are signed out and cannot sign in.",
        _ => return None,
    })
}

async fn settings(
    State(app): State<AppState>,
    ApiPath(tenant): ApiPath<String>,
    Query(query): Query<ListQuery>,
    headers: HeaderMap,
) -> Response {
    let (frame, session) = match open(&app, &tenant, &headers).await {
        Ok(parts) => parts,
        Err(response) => return response,
    };
    match settings_page(&app, &session, query.after).await {
        Ok(mut page) => {
            page["notice"] = json!(settings_notice(query.done.as_deref()));
            frame.render(StatusCode::OK, "admin_settings.html", Some(&session), page)
        }
        Err(ServiceError::Rule(rule)) => settings_error(&app, &frame, &session, "keys", rule.message, json!({})).await,
        Err(error) => internal(error),
    }
}

/// The settings page again, 422, with the API's message beside the form at `at` and the entered
/// values (`extra`) kept.
async fn settings_error(
    app: &AppState,
    frame: &Frame,
    session: &StaffSession,
    at: &str,
    message: String,
    extra: Value,
) -> Response {
    match settings_page(app, session, None).await {
        Ok(mut page) => {
            page["error_at"] = json!(at);
            page["error"] = json!(message);
            if let (Some(page), Value::Object(extra)) = (page.as_object_mut(), extra) {
                page.extend(extra);
            }
            frame.render(
                StatusCode::UNPROCESSABLE_ENTITY,
                "admin_settings.html",
                Some(session),
                page,
            )
        }
        Err(error) => internal(error),
    }
}

/// Opens a settings post: the page's frame and session, its fields, once the token and
/// `permission` are checked.
async fn settings_post(
    app: &AppState,
    tenant: &str,
    headers: &HeaderMap,
    body: &Bytes,
    permission: Permission,
) -> Result<(Frame, StaffSession, HashMap<String, String>), Response> {
    let (frame, session) = open(app, tenant, headers).await?;
    let fields = form(body);
    check(&session, &fields, permission)?;
    Ok((frame, session, fields))
}

async fn settings_outcome(
    app: &AppState,
    frame: &Frame,
    session: &StaffSession,
    outcome: ServiceResult<()>,
    done: &str,
    at: &str,
    fields: &HashMap<String, String>,
) -> Response {
    match outcome.map_err(readable) {
        Ok(()) => redirect(&format!("{}/settings?done={done}", frame.base)),
        Err(ServiceError::Rule(rule)) => {
            settings_error(app, frame, session, at, rule.message, json!({"v": posted(fields)})).await
        }
        Err(ServiceError::NotFound(_)) => not_found_page(),
        Err(error) => internal(error),
    }
}

async fn put_branding(
    State(app): State<AppState>,
    ApiPath(tenant): ApiPath<String>,
    ClientIp(ip): ClientIp,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let (frame, session, fields) =
        match settings_post(&app, &tenant, &headers, &body, Permission::ManageCatalogue).await {
            Ok(parts) => parts,
            Err(response) => return response,
        };
    let mut input = Map::new();
    for name in ["display_name", "logo_url", "accent_colour"] {
        let value = field(&fields, name).trim();
        // An empty field goes back to the default, as `null` does in the API.
        input.insert(name.into(), if value.is_empty() { Value::Null } else { json!(value) });
    }
    let outcome = async {
        let settings = parse(Value::Object(input))?;
        services::branding::put(&app.store, &session.ctx(Some(ip)), settings)
            .await
            .map(drop)
    }
    .await;
    settings_outcome(&app, &frame, &session, outcome, "branding", "branding", &fields).await
}

fn template_input(fields: &HashMap<String, String>) -> Value {
    let mut input = Map::new();
    input.insert("kind".into(), json!(field(fields, "kind")));
    for name in ["from_name", "from_address", "subject", "text_body", "html_body"] {
        let value = field(fields, name);
        // An empty part uses the built-in template, as leaving it out does in the API.
        input.insert(
            name.into(),
            if value.trim().is_empty() {
                Value::Null
            } else {
                json!(value.replace("\r\n", "\n"))
            },
        );
    }
    Value::Object(input)
}

async fn mail_template(
    State(app): State<AppState>,
    ApiPath(tenant): ApiPath<String>,
    ClientIp(ip): ClientIp,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let (frame, session, fields) =
        match settings_post(&app, &tenant, &headers, &body, Permission::ManageCatalogue).await {
            Ok(parts) => parts,
            Err(response) => return response,
        };
    let input = template_input(&fields);
    if field(&fields, "op") == "preview" {
        let preview = async { services::mail::preview_template(&app.mail, parse(input)?).await }.await;
        return match preview {
            Ok(rendered) => {
                let samples: Vec<Value> = rendered
                    .iter()
                    .map(|r| json!({"subject": r.subject, "text": r.text, "html": r.html}))
                    .collect();
                match settings_page(&app, &session, None).await {
                    Ok(mut page) => {
                        page["preview"] = json!({"kind": field(&fields, "kind"), "samples": samples});
                        page["v"] = posted(&fields);
                        page["error_at"] = json!("templates");
                        frame.render(StatusCode::OK, "admin_settings.html", Some(&session), page)
                    }
                    Err(error) => internal(error),
                }
            }
            Err(ServiceError::Rule(rule)) => {
                settings_error(
                    &app,
                    &frame,
                    &session,
                    "templates",
                    rule.message,
                    json!({"v": posted(&fields)}),
                )
                .await
            }
            Err(error) => internal(error),
        };
    }
    let outcome = async {
        services::mail::put_template(&app.store, &session.ctx(Some(ip)), &app.mail, parse(input)?)
            .await
            .map(drop)
    }
    .await;
    settings_outcome(&app, &frame, &session, outcome, "template", "templates", &fields).await
}

async fn create_key(
    State(app): State<AppState>,
    ApiPath(tenant): ApiPath<String>,
    ClientIp(ip): ClientIp,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let (frame, session, fields) = match settings_post(&app, &tenant, &headers, &body, Permission::ManageKeys).await {
        Ok(parts) => parts,
        Err(response) => return response,
    };
    let input = json!({"name": field(&fields, "name").trim(), "role": field(&fields, "role")});
    let created = async { services::api_keys::create(&app.store, &session.ctx(Some(ip)), parse(input)?).await }.await;
    match created {
        Ok(created) => {
            use secrecy::ExposeSecret;
            // The one time the secret is shown: on this page, never in a redirect's URL.
            frame.render(
                StatusCode::CREATED,
                "admin_settings_key.html",
                Some(&session),
                json!({"title": "API key created", "nav": "settings",
                       "key": {"id": created.key.id, "name": created.key.name,
                               "role": serde_json::to_value(created.key.role).unwrap_or_default()},
                       "secret": created.secret.expose_secret()}),
            )
        }
        Err(error) => settings_outcome(&app, &frame, &session, Err(error), "", "keys", &fields).await,
    }
}

/// A destructive post carries `confirm=yes`, the second button of its `<details>`.
fn confirmed(fields: &HashMap<String, String>) -> ServiceResult<()> {
    if field(fields, "confirm") == "yes" {
        Ok(())
    } else {
        Err(RuleViolation::new("not_confirmed", "confirm with the second button").into())
    }
}

async fn revoke_key(
    State(app): State<AppState>,
    ApiPath((tenant, id)): ApiPath<(String, String)>,
    ClientIp(ip): ClientIp,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let (frame, session, fields) = match settings_post(&app, &tenant, &headers, &body, Permission::ManageKeys).await {
        Ok(parts) => parts,
        Err(response) => return response,
    };
    let outcome = async {
        confirmed(&fields)?;
        services::api_keys::revoke(&app.store, &session.ctx(Some(ip)), &id)
            .await
            .map(drop)
    }
    .await;
    settings_outcome(&app, &frame, &session, outcome, "revoked", "keys", &fields).await
}

fn role_of(fields: &HashMap<String, String>) -> ServiceResult<StaffRole> {
    StaffRole::parse(field(fields, "role"))
        .ok_or_else(|| RuleViolation::new("invalid_role", "choose admin, support or viewer").into())
}

// Staff are managed with `ManageKeys`: like API keys they grant access to the tenant, and the
// management API has no staff routes whose permission could be borrowed; only admins have it.
async fn add_staff(
    State(app): State<AppState>,
    ApiPath(tenant): ApiPath<String>,
    ClientIp(ip): ClientIp,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let (frame, session, fields) = match settings_post(&app, &tenant, &headers, &body, Permission::ManageKeys).await {
        Ok(parts) => parts,
        Err(response) => return response,
    };
    let outcome = async {
        let role = role_of(&fields)?;
        services::staff::invite(
            &app.store,
            &session.ctx(Some(ip)),
            &app.mail,
            field(&fields, "email").trim(),
            role,
        )
        .await
        .map(drop)
    }
    .await;
    settings_outcome(&app, &frame, &session, outcome, "invited", "staff", &fields).await
}

async fn staff_action(
    State(app): State<AppState>,
    ApiPath((tenant, id, action)): ApiPath<(String, String, String)>,
    ClientIp(ip): ClientIp,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let (frame, session, fields) = match settings_post(&app, &tenant, &headers, &body, Permission::ManageKeys).await {
        Ok(parts) => parts,
        Err(response) => return response,
    };
    let ctx = session.ctx(Some(ip));
    let outcome = match action.as_str() {
        "role" => {
            async {
                let role = role_of(&fields)?;
                services::staff::set_role(&app.store, &ctx, &id, role).await.map(drop)
            }
            .await
        }
        "disable" => {
            async {
                confirmed(&fields)?;
                services::staff::disable(&app.store, &ctx, &id).await.map(drop)
            }
            .await
        }
        _ => return not_found_page(),
    };
    settings_outcome(&app, &frame, &session, outcome, &action, "staff", &fields).await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn render(template: &str, fields: Value) -> Result<String, String> {
        let frame = Frame {
            tenant_id: "ten_1".into(),
            base: "/admin/ten_1".into(),
            brand_name: "Acme".into(),
            secure: false,
        };
        let context = frame.context(None, "token", fields);
        super::super::environment()
            .get_template(template)
            .and_then(|t| t.render(minijinja::Value::from(minijinja::value::Serde(&context))))
            .map_err(|e| format!("{e:#}"))
    }

    #[test]
    fn the_pages_render_with_and_without_values() {
        let product = json!({"id": "prd_1", "name": "Studio", "lease_period": {"unit": "day", "count": 1},
            "offline_lease_period": {"unit": "none", "count": 0}, "grace_period": {"unit": "day", "count": 7},
            "linger_period": {"unit": "none", "count": 0}, "account_based": false, "created_at": "2026-01-01T00:00:00Z"});
        let list = json!({"title": "Catalogue", "products": [product.clone()], "next_after": "prd_1", "can_edit": true,
            "v": {}, "error_at": ""});
        let html = render("admin_catalogue.html", list).unwrap();
        assert!(html.contains("Studio") && html.contains("New product"));
        let parts = json!({"features": [{"id": "fea_1", "key": "nodes", "name": "Nodes", "kind": "element_pool"}],
            "attributes": [{"id": "atr_1", "key": "tier", "name": "Tier", "kind": "string"}],
            "editions": [{"id": "edi_1", "name": "Pro", "features": [], "attributes": []}],
            "plans": [{"id": "pln_1", "name": "Monthly", "license_type": "subscription", "duration": {"unit": "month", "count": 1}, "kind": "paid"}],
            "offerings": [{"id": "off_1", "name": "Pro M", "sku": "PRO-M", "seat_count": 3, "concurrency_mode": "node_locked"}]});
        for (kind, can_edit) in [
            ("products", true),
            ("products", false),
            ("editions", true),
            ("offerings", true),
        ] {
            let page = json!({"title": "x", "kind": kind, "label": "product", "item": product.clone(),
                "v": form_values(&product), "product": product.clone(), "reach": 2, "parts": parts.clone(),
                "can_edit": can_edit, "new": {}, "error_at": ""});
            render("admin_catalogue_item.html", page).unwrap();
        }
    }

    #[test]
    fn the_settings_page_renders() {
        for (can, keys, preview) in [
            (
                true,
                json!({"rows": [{"id": "key_1", "name": "ci", "role": "admin", "prefix": "ent_", "created": "2026-01-01", "revoked": null}], "next_after": null}),
                json!({"kind": "credentials", "samples": [{"subject": "S", "text": "T", "html": "<p>H</p>"}]}),
            ),
            (false, Value::Null, Value::Null),
        ] {
            let page = json!({"title": "Settings", "branding": {"display_name": null, "logo_url": null, "accent_colour": null},
                "templates": [{"kind": "credentials", "from_name": null, "from_address": null, "subject": null, "text_body": null, "html_body": null}],
                "keys": keys, "members": [{"id": "stf_1", "email": "a@b.example", "role": "admin", "added": "2026-01-01", "disabled": null, "me": false}],
                "can_edit": can, "can_manage_staff": can, "roles": ["admin", "support", "viewer"], "error_at": "templates", "v": {"kind": "credentials"}, "preview": preview});
            let html = render("admin_settings.html", page).unwrap();
            assert!(!html.contains("<p>H</p>"));
        }
    }
}
