//! HTTP APIs. The management API's routes are registered together with their OpenAPI
//! descriptions, so the document served at `/api/v1/openapi.json` cannot drift from the code.

pub mod activations;
pub mod admin;
pub mod branding;
pub mod commerce;
mod crud;
pub mod entitlements;
pub mod error;
pub mod extract;
pub mod idempotency;
pub mod licensing;
pub mod mail;
pub mod ops;
pub mod permissions;
pub mod reminders;
pub mod resources;
pub mod search;
pub mod usage;
pub mod webhooks;

use axum::routing::get;
use axum::{Json, Router};
use std::sync::Arc;
use utoipa::openapi::security::{Http, HttpAuthScheme, SecurityScheme};
use utoipa::openapi::OpenApi as OpenApiDoc;
use utoipa::{Modify, OpenApi};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::app::AppState;
use error::ApiError;
use resources::*;

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Entitle API",
        description = "The management API (`/api/v1`) is the vendor's back end: catalogue, customers, \
                       entitlements, activations, API keys and the event log. Authenticate with \
                       `Authorization: Bearer <API key>`. Errors are \
                       `{\"error\": {\"code\": \"…\", \"message\": \"…\"}}`; match on `code`. \
                       Lists are cursor-paginated with `limit` and `after`. \
                       The licensing API (`/licensing/v1`) is for applications: every answer is signed \
                       (`Entitle-Signature`, a detached EdDSA JWS over the body) and echoes the client's nonce."
    ),
    modifiers(&BearerAuth),
    tags(
        (name = "catalogue", description = "Products, features, attributes, editions, plans and offerings"),
        (name = "customers", description = "Customers and their end users"),
        (name = "entitlements", description = "Entitlements and their lifecycle"),
        (name = "events", description = "The append-only record of every change"),
        (name = "api-keys", description = "Keys for this API"),
        (name = "activations", description = "Seats held by devices and users"),
        (name = "mail", description = "Credential mails and their templates"),
        (name = "storefronts", description = "Storefront connections, mappings, deliveries, and the webhook endpoint"),
        (name = "licensing", description = "For applications: activation, leases, features, usage, offline"),
        (name = "branding", description = "How the tenant's portal looks: name, logo, accent colour"),
        (name = "search", description = "One search box over customers, end users, entitlements and seats"),
        (name = "webhooks", description = "Outgoing webhooks: endpoints, the delivery log and replays. Every \
                                           message is a `WebhookEvent` (see the schemas), signed the Standard \
                                           Webhooks way (`webhook-id`, `webhook-timestamp`, `webhook-signature`)"),
    ),
    components(schemas(crate::services::webhooks::WebhookEvent, crate::domain::webhooks::EventType))
)]
struct ManagementApi;

struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut OpenApiDoc) {
        if let Some(components) = openapi.components.as_mut() {
            components.add_security_scheme("api_key", SecurityScheme::Http(Http::new(HttpAuthScheme::Bearer)));
            components.add_security_scheme(
                "activation_secret",
                SecurityScheme::Http(Http::new(HttpAuthScheme::Bearer)),
            );
        }
    }
}

fn management() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(products::create, products::list))
        .routes(routes!(products::get, products::update))
        .routes(routes!(features::create, features::list))
        .routes(routes!(features::get, features::update))
        .routes(routes!(attributes::create, attributes::list))
        .routes(routes!(attributes::get, attributes::update))
        .routes(routes!(editions::create, editions::list))
        .routes(routes!(editions::get, editions::update))
        .routes(routes!(plans::create, plans::list))
        .routes(routes!(plans::get, plans::update))
        .routes(routes!(reminders::get, reminders::put))
        .routes(routes!(offerings::create, offerings::list))
        .routes(routes!(offerings::get, offerings::update))
        .routes(routes!(customer_routes::create, customer_routes::list))
        .routes(routes!(customer_routes::get, customer_routes::update))
        .routes(routes!(end_users::create, end_users::list))
        .routes(routes!(end_users::get, end_users::update))
        .routes(routes!(entitlements::resource::create, entitlements::resource::list))
        .routes(routes!(entitlements::resource::get, entitlements::resource::update))
        .routes(routes!(entitlements::renew))
        .routes(routes!(entitlements::change_offering))
        .routes(routes!(entitlements::add_seats))
        .routes(routes!(entitlements::disable))
        .routes(routes!(entitlements::enable))
        .routes(routes!(entitlements::reset_overrides))
        .routes(routes!(entitlements::resend_credentials))
        .routes(routes!(usage::get))
        .routes(routes!(mail::list))
        .routes(routes!(mail::templates, mail::put_template))
        .routes(routes!(admin::create_api_key, admin::list_api_keys))
        .routes(routes!(admin::revoke_api_key))
        .routes(routes!(admin::list_events))
        .routes(routes!(activations::list))
        .routes(routes!(activations::log))
        .routes(routes!(activations::get))
        .routes(routes!(activations::revoke))
        .routes(routes!(commerce::create_connection, commerce::list_connections))
        .routes(routes!(commerce::get_connection, commerce::update_connection))
        .routes(routes!(commerce::create_mapping, commerce::list_mappings))
        .routes(routes!(commerce::delete_mapping))
        .routes(routes!(commerce::list_deliveries))
        .routes(routes!(commerce::get_delivery))
        .routes(routes!(commerce::replay))
        .routes(routes!(branding::get, branding::put))
        .routes(routes!(search::get))
        .routes(routes!(webhooks::create, webhooks::list))
        .routes(routes!(webhooks::get, webhooks::update, webhooks::delete))
        .routes(routes!(webhooks::rotate_secret))
        .routes(routes!(webhooks::test))
        .routes(routes!(webhooks::deliveries))
        .routes(routes!(webhooks::delivery))
        .routes(routes!(webhooks::replay))
}

fn licensing_routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(licensing::activate))
        .routes(routes!(licensing::state, licensing::deactivate))
        .routes(routes!(licensing::refresh))
        .routes(routes!(licensing::checkout))
        .routes(routes!(licensing::give_back))
        .routes(routes!(licensing::usage))
        .routes(routes!(licensing::offline_activate))
        .routes(routes!(licensing::offline_deactivate))
        .routes(routes!(licensing::jwks))
        .routes(routes!(commerce::receive))
}

fn all_routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::with_openapi(ManagementApi::openapi())
        .nest("/api/v1", management())
        .merge(licensing_routes())
}

/// The OpenAPI document of every JSON endpoint.
pub fn openapi() -> OpenApiDoc {
    let (_, mut doc) = all_routes().split_for_parts();
    document_idempotency_key(&mut doc);
    doc
}

/// Adds the optional `Idempotency-Key` header to every management write. Done on the finished
/// document because the header is honoured by middleware, not declared by each handler.
fn document_idempotency_key(doc: &mut OpenApiDoc) {
    use utoipa::openapi::path::{ParameterBuilder, ParameterIn};
    use utoipa::openapi::{ObjectBuilder, Required, Type};
    let parameter = ParameterBuilder::new()
        .name("Idempotency-Key")
        .parameter_in(ParameterIn::Header)
        .required(Required::False)
        .description(Some(
            "Makes the request safe to retry: a retry of the same request (method, path, body) \
             under the same key within 24 hours gets the first answer again (with \
             `Idempotent-Replayed: true`) instead of running twice. The same key with another \
             request: 422 `idempotency_key_reused`; while the first still runs: 409 \
             `idempotency_key_in_progress`. 5xx answers are not kept.",
        ))
        .schema(Some(
            ObjectBuilder::new()
                .schema_type(Type::String)
                .min_length(Some(1))
                .max_length(Some(crate::domain::idempotency::MAX_KEY_LEN)),
        ))
        .build();
    for (path, item) in doc.paths.paths.iter_mut() {
        if !path.starts_with("/api/v1/") {
            continue;
        }
        for operation in [&mut item.post, &mut item.put, &mut item.patch, &mut item.delete]
            .into_iter()
            .flatten()
        {
            operation
                .parameters
                .get_or_insert_with(Vec::new)
                .push(parameter.clone());
        }
    }
}

/// Every route of the server.
pub fn router(state: AppState) -> Router {
    let (api, mut doc) = all_routes().split_for_parts();
    document_idempotency_key(&mut doc);
    let doc = Arc::new(doc);
    let api = api.layer(axum::middleware::from_fn_with_state(
        state.clone(),
        idempotency::idempotent,
    ));
    api.route(
        "/api/v1/openapi.json",
        get(move || std::future::ready(Json(doc.as_ref().clone()))),
    )
    .merge(ops::router())
    .merge(crate::web::portal::router())
    .merge(crate::web::assets::router())
    .merge(crate::web::console::router())
    .merge(crate::web::console_storefronts::router())
    .merge(crate::web::console_catalogue::router())
    .fallback(|| async { ApiError::not_found("route") })
    .with_state(state)
}
