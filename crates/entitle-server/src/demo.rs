//! `entitle demo`: a realistic good / better / best catalogue to explore the API with.

use anyhow::Context;
use secrecy::{ExposeSecret, SecretString};
use serde::de::DeserializeOwned;
use serde_json::{json, Value};

use crate::domain::{EntitlementView, Name};
use crate::services::{self, Actor, Ctx};
use crate::store::Store;

pub struct Seeded {
    pub tenant_id: String,
    pub admin_key: SecretString,
    pub product_id: String,
    pub skus: Vec<String>,
    pub entitlement: EntitlementView,
}

fn input<T: DeserializeOwned>(value: Value) -> anyhow::Result<T> {
    serde_json::from_value(value).context("demo input")
}

pub async fn seed(store: &Store, mail: &services::mail::MailSettings) -> anyhow::Result<Seeded> {
    use services::catalogue as cat;
    let tenant = services::tenants::create(store, &Name::parse("Demo Software Ltd")?).await?;
    let ctx = Ctx {
        tenant_id: tenant.tenant.id.clone(),
        actor: Actor::system(),
        now: services::now(),
    };
    let product = cat::create_product(
        store,
        &ctx,
        input(json!({
            "name": "PhotoForge",
            "lease_period": {"unit": "day", "count": 1},
            "offline_lease_period": {"unit": "day", "count": 30},
            "grace_period": {"unit": "day", "count": 7},
            "linger_period": {"unit": "hour", "count": 1}
        }))?,
    )
    .await?;
    let p = &product.id;
    for (key, name, kind) in [
        ("raw_import", "RAW import", "bool"),
        ("batch_export", "Batch export", "bool"),
        ("ai_upscale", "AI upscaling", "bool"),
        ("render_nodes", "Network render nodes", "element_pool"),
        ("cloud_renders", "Cloud renders per period", "usage_count"),
    ] {
        cat::create_feature(
            store,
            &ctx,
            input(json!({"product_id": p, "key": key, "name": name, "kind": kind}))?,
        )
        .await?;
    }
    for (key, name, kind) in [
        ("max_users", "Maximum users", "number"),
        ("support_tier", "Support tier", "string"),
    ] {
        cat::create_attribute(
            store,
            &ctx,
            input(json!({"product_id": p, "key": key, "name": name, "kind": kind}))?,
        )
        .await?;
    }
    let editions = [
        ("Basic", json!([{"key": "raw_import"}]), 1, "community"),
        (
            "Pro",
            json!([{"key": "raw_import"}, {"key": "batch_export"}, {"key": "render_nodes", "limit": 2},
                   {"key": "cloud_renders", "limit": 100, "overdraft": 10}]),
            5,
            "standard",
        ),
        (
            "Studio",
            json!([{"key": "raw_import"}, {"key": "batch_export"}, {"key": "ai_upscale"},
                   {"key": "render_nodes", "limit": 10}, {"key": "cloud_renders", "limit": 1000, "overdraft": 100}]),
            25,
            "priority",
        ),
    ];
    let monthly = cat::create_plan(
        store,
        &ctx,
        input(
            json!({"product_id": p, "name": "Monthly", "license_type": "subscription",
                     "duration": {"unit": "month", "count": 1}}),
        )?,
    )
    .await?;
    let yearly = cat::create_plan(
        store,
        &ctx,
        input(
            json!({"product_id": p, "name": "Yearly", "license_type": "subscription",
                     "duration": {"unit": "year", "count": 1}}),
        )?,
    )
    .await?;
    let mut skus = Vec::new();
    for (name, features, max_users, support) in editions {
        let edition = cat::create_edition(
            store,
            &ctx,
            input(json!({"product_id": p, "name": name, "features": features,
                         "attributes": [{"key": "max_users", "value": max_users},
                                        {"key": "support_tier", "value": support}]}))?,
        )
        .await?;
        for (plan, suffix) in [(&monthly, "M"), (&yearly, "Y")] {
            let sku = format!("PF-{}-{suffix}", name.to_uppercase());
            let (seats, mode, overdraft) = match name {
                "Basic" => (1, "node_locked", json!({"kind": "none"})),
                "Pro" => (3, "node_locked", json!({"kind": "absolute", "value": 1})),
                _ => (10, "concurrent", json!({"kind": "percentage", "value": 20})),
            };
            cat::create_offering(
                store,
                &ctx,
                input(json!({"sku": sku, "name": format!("PhotoForge {name} ({})", plan.name),
                             "edition_id": edition.id, "plan_id": plan.id, "seat_count": seats,
                             "concurrency_mode": mode, "overdraft": overdraft}))?,
            )
            .await?;
            skus.push(sku);
        }
    }
    let customer = services::customers::create_customer(
        store,
        &ctx,
        input(json!({"name": "Northwind Studios", "email": "it@northwind.example"}))?,
    )
    .await?;
    services::customers::create_end_user(
        store,
        &ctx,
        input(
            json!({"customer_id": customer.id, "email": "ada@northwind.example", "name": "Ada Lovelace",
                     "role": "admin"}),
        )?,
    )
    .await?;
    let entitlement = services::entitlements::create(
        store,
        &ctx,
        mail,
        input(json!({"customer_id": customer.id, "sku": "PF-PRO-Y", "quantity": 2, "order_ref": "demo-order-1001"}))?,
    )
    .await?;
    Ok(Seeded {
        tenant_id: tenant.tenant.id,
        admin_key: tenant.admin_key,
        product_id: product.id,
        skus,
        entitlement,
    })
}

pub fn instructions(seeded: &Seeded, base_url: &str) -> String {
    let key = seeded.admin_key.expose_secret();
    format!(
        "Demo tenant created.\n\n\
         tenant id:      {tenant}\n\
         admin API key:  {key}   (shown once: keep it)\n\
         product:        PhotoForge ({product})\n\
         offerings:      {skus}\n\
         entitlement:    {ent} for Northwind Studios, {seats} seats, activation code {code}\n\n\
         Start the server (`entitle serve`), then try:\n\n\
         export ENTITLE_KEY={key}\n\
         curl -s {base}/api/v1/offerings -H \"Authorization: Bearer $ENTITLE_KEY\"\n\
         curl -s {base}/api/v1/entitlements/{ent} -H \"Authorization: Bearer $ENTITLE_KEY\"\n\
         curl -s -X POST {base}/api/v1/entitlements/{ent}/change-offering -H \"Authorization: Bearer $ENTITLE_KEY\" \\\n\
         \x20    -H 'Content-Type: application/json' -d '{{\"sku\": \"PF-STUDIO-Y\"}}'\n\
         curl -s \"{base}/api/v1/events?object_id={ent}\" -H \"Authorization: Bearer $ENTITLE_KEY\"\n\n\
         The API is described at {base}/api/v1/openapi.json\n",
        tenant = seeded.tenant_id,
        product = seeded.product_id,
        skus = seeded.skus.join(", "),
        ent = seeded.entitlement.id,
        seats = seeded.entitlement.seat_count,
        code = seeded.entitlement.activation_code,
        base = base_url,
    )
}
