//! The admin console's search (`GET /api/v1/search`) and the indexed list filters: each kind of
//! text finds what it should and nothing of another tenant, and every statement is served by
//! indexes (plans read from the database after seeding thousands of rows and `ANALYZE`).

use chrono::Utc;
use entitle_protocol::ActivateRequest;
use entitle_server::domain::{ids, ActivationCode};
use entitle_server::services::licensing::{self, Mode, Origin};
use entitle_server::store::customers::{list_customers_statement, CustomerFilter};
use entitle_server::store::entitlements::{list_statement, EntitlementFilter};
use entitle_server::store::search::{self as lookups, Bind, Statement};
use entitle_server::store::Store;
use serde_json::{json, Value};
use std::time::Instant;

use crate::commerce::{connection, deliver, generic};
use crate::helpers::{backend_test, seed_catalogue, TestApp};
use crate::plans::{analyze, assert_indexed};

/// What one tenant holds, made through the API, the licensing service and a storefront delivery.
struct Seeded {
    customer: String,
    end_user: String,
    entitlement: String,
    code: String,
    order_entitlement: String,
    activation: String,
}

async fn seed(app: &TestApp, name: &str) -> (crate::helpers::Tenant, Seeded) {
    let t = app.tenant(name).await;
    let c = seed_catalogue(app, &t.key).await;
    let customer = app
        .create(
            &t.key,
            "/api/v1/customers",
            json!({"name": "Acme Rockets", "email": "buyer@acme.example", "external_ref": "crm-42"}),
        )
        .await;
    let customer_id = customer["id"].as_str().unwrap().to_owned();
    let user = app
        .create(
            &t.key,
            "/api/v1/end-users",
            json!({"customer_id": customer_id, "email": "Wile@Acme.example"}),
        )
        .await;
    let e = app
        .create(
            &t.key,
            "/api/v1/entitlements",
            json!({"customer_id": customer_id, "sku": "PRO-M", "quantity": 1, "order_ref": "PO-7781"}),
        )
        .await;
    let code = e["activation_code"].as_str().unwrap().to_owned();
    let activated = licensing::activate(
        &app.store,
        &ActivateRequest {
            tenant: t.id.clone(),
            product: c.product_id.clone(),
            activation_code: Some(code.clone()),
            email: None,
            password: None,
            seat_id: "fp-9c1e77".into(),
            seat_name: Some("Build Server 3".into()),
            nonce: ids::random_token(12),
        },
        Mode::Online,
        &Origin {
            ip: None,
            now: Utc::now(),
        },
    )
    .await
    .unwrap();
    // A storefront subscription of the provider's customer `cus_NffrFeUfNV2Hib`.
    let conn = connection(app, &t.key, "generic").await;
    let mut body = generic(
        "purchase",
        "sub_1Nq2",
        Utc::now(),
        Some(("PRO-P", 1)),
        None,
        Some("roadrunner@desert.example"),
    );
    body["customer"]["ref"] = json!("cus_NffrFeUfNV2Hib");
    let (status, answer) = deliver(app, &conn, "generic", &format!("evt-{name}"), &body).await;
    assert!(status.is_success(), "{status} {answer}");
    let listed = app.fetch(&t.key, "/api/v1/entitlements?order_ref=sub_1Nq2").await;
    let order_entitlement = listed["data"][0]["id"]
        .as_str()
        .expect("the order's entitlement")
        .to_owned();
    let seeded = Seeded {
        customer: customer_id,
        end_user: user["id"].as_str().unwrap().to_owned(),
        entitlement: e["id"].as_str().unwrap().to_owned(),
        code,
        order_entitlement,
        activation: activated.activation_id,
    };
    (t, seeded)
}

fn ids_of(hits: &Value) -> Vec<String> {
    hits.as_array()
        .unwrap()
        .iter()
        .map(|h| h["id"].as_str().unwrap().to_owned())
        .collect()
}

async fn search(app: &TestApp, key: &str, q: &str) -> Value {
    let q: String = q
        .bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-_.".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect();
    app.fetch(key, &format!("/api/v1/search?q={q}")).await
}

backend_test! {
    async fn each_kind_of_text_finds_its_objects_and_nothing_of_another_tenant(app) {
        let (t, a) = seed(app, "Acme").await;
        // The other tenant holds the very same names, emails, references and seat ids.
        let (_other, b) = seed(app, "Other").await;
        let all_b = [&b.customer, &b.end_user, &b.entitlement, &b.order_entitlement, &b.activation];

        let check = |found: &Value, group: &str, expected: &[&String]| {
            let got = ids_of(&found[group]);
            for id in expected {
                assert!(got.contains(id), "{group} of {found} lacks {id}");
            }
            for id in all_b {
                assert!(!got.contains(id), "another tenant's {id} found: {found}");
            }
        };

        // The activation code, typed sloppily.
        let typed = a.code.to_lowercase().replace('-', " ");
        let found = search(app, &t.key, &typed).await;
        check(&found, "entitlements", &[&a.entitlement]);
        assert_eq!(found["entitlements"][0]["status"], "active", "{found}");
        assert_eq!(found["entitlements"][0]["sku"], "PRO-M");

        // Emails, case-insensitively: the customer's and the end user's.
        let found = search(app, &t.key, " BUYER@acme.example ").await;
        check(&found, "customers", &[&a.customer]);
        let found = search(app, &t.key, "wile@ACME.example").await;
        check(&found, "end_users", &[&a.end_user]);
        assert_eq!(found["end_users"][0]["customer_id"], a.customer.as_str());

        // Our ids.
        for (id, group) in [(&a.customer, "customers"), (&a.entitlement, "entitlements"),
                            (&a.activation, "activations"), (&a.end_user, "end_users")] {
            check(&search(app, &t.key, id).await, group, &[id]);
            // Another tenant's id finds nothing.
        }
        for (id, group) in [(&b.customer, "customers"), (&b.entitlement, "entitlements"),
                            (&b.activation, "activations"), (&b.end_user, "end_users")] {
            assert_eq!(search(app, &t.key, id).await[group], json!([]));
        }

        // Order reference, provider subscription id and provider customer id.
        check(&search(app, &t.key, "PO-7781").await, "entitlements", &[&a.entitlement]);
        check(&search(app, &t.key, "sub_1Nq2").await, "entitlements", &[&a.order_entitlement]);
        let found = search(app, &t.key, "cus_NffrFeUfNV2Hib").await;
        check(&found, "entitlements", &[&a.order_entitlement]);
        assert_eq!(ids_of(&found["entitlements"]).len(), 1, "{found}");

        // External ref, seat id, and name prefixes (case-insensitive).
        check(&search(app, &t.key, "crm-42").await, "customers", &[&a.customer]);
        check(&search(app, &t.key, "fp-9c1e77").await, "activations", &[&a.activation]);
        let found = search(app, &t.key, "acme ro").await;
        check(&found, "customers", &[&a.customer]);
        assert_eq!(found["customers"].as_array().unwrap().len(), 1, "only names that start so: {found}");
        let found = search(app, &t.key, "BUILD serv").await;
        check(&found, "activations", &[&a.activation]);
        assert_eq!(found["activations"][0]["seat_name"], "Build Server 3");

        // Not a prefix, nothing; no text, nothing; too long, refused.
        let found = search(app, &t.key, "rockets").await;
        assert_eq!(found["customers"], json!([]), "{found}");
        assert_eq!(search(app, &t.key, "  ").await,
            json!({"customers": [], "end_users": [], "entitlements": [], "activations": []}));
        let long = "x".repeat(300);
        let refused = app.get(&t.key, &format!("/api/v1/search?q={long}")).await;
        assert!(refused.status.is_client_error(), "{}", refused.body);
        assert_eq!(refused.body["error"]["code"], "invalid_query");

        // The list filters: ?q= name prefix on customers; the entitlement filters as before.
        let listed = app.fetch(&t.key, "/api/v1/customers?q=ACME").await;
        assert_eq!(ids_of(&listed["data"]), vec![a.customer.clone()]);
        let listed = app.fetch(&t.key, "/api/v1/customers?q=").await;
        assert!(listed["data"].as_array().unwrap().len() >= 3, "an empty filter filters nothing");
        let listed = app.fetch(&t.key, "/api/v1/entitlements?order_ref=PO-7781&sku=PRO-M").await;
        assert_eq!(ids_of(&listed["data"]), vec![a.entitlement.clone()]);
        let listed = app.fetch(&t.key, "/api/v1/entitlements?order_ref=PO-7781&sku=PRO-P").await;
        assert_eq!(listed["data"], json!([]));
    }
}

backend_test! {
    async fn support_keys_may_search_integration_keys_may_not(app) {
        let t = app.tenant("Acme").await;
        let key = app.create(&t.key, "/api/v1/api-keys", json!({"name": "support", "role": "support"})).await;
        let found = app.get(key["secret"].as_str().unwrap(), "/api/v1/search?q=nothing").await;
        assert_eq!(found.status, reqwest::StatusCode::OK, "{}", found.body);
        let key = app.create(&t.key, "/api/v1/api-keys", json!({"name": "shop", "role": "integration"})).await;
        let refused = app.get(key["secret"].as_str().unwrap(), "/api/v1/search?q=nothing").await;
        assert_eq!(refused.status, reqwest::StatusCode::FORBIDDEN, "{}", refused.body);
        let anonymous = app.request(reqwest::Method::GET, None, "/api/v1/search?q=x", None).await;
        assert_eq!(anonymous.status, reqwest::StatusCode::UNAUTHORIZED);
    }
}

/// Bulk rows for plan checks and timings: `customers` customers (one end user each), `entitlements`
/// entitlements spread over them (copies of `template` with their own ids, codes and order refs),
/// one seat per entitlement and one storefront order per ten. One transaction, multi-row inserts.
pub async fn seed_bulk(store: &Store, tenant_id: &str, template: &str, customers: usize, entitlements: usize) {
    const CHUNK: usize = 500;
    let now = Utc::now().timestamp_millis();
    let mut tx = store.begin().await.unwrap();
    let customer_ids: Vec<String> = (0..customers).map(|_| ids::new_id("cus")).collect();
    for (chunk_no, chunk) in customer_ids.chunks(CHUNK).enumerate() {
        let values: Vec<String> = chunk
            .iter()
            .enumerate()
            .map(|(i, id)| {
                let n = chunk_no * CHUNK + i;
                format!("('{id}', '{tenant_id}', 'Customer {n:07}', 'buyer{n}@bulk.example', 'ext-{n}', {now}, {now})")
            })
            .collect();
        sqlx::raw_sql(&format!(
            "INSERT INTO customers (id, tenant_id, name, email, external_ref, created_at, updated_at) VALUES {}",
            values.join(", ")
        ))
        .execute(&mut *tx)
        .await
        .unwrap();
        let values: Vec<String> = chunk
            .iter()
            .enumerate()
            .map(|(i, id)| {
                let n = chunk_no * CHUNK + i;
                format!(
                    "('{}', '{tenant_id}', '{id}', 'user{n}@bulk.example', 'user', {now}, {now})",
                    ids::new_id("usr")
                )
            })
            .collect();
        sqlx::raw_sql(&format!(
            "INSERT INTO end_users (id, tenant_id, customer_id, email, role, created_at, updated_at) VALUES {}",
            values.join(", ")
        ))
        .execute(&mut *tx)
        .await
        .unwrap();
    }
    let columns = "id, tenant_id, customer_id, product_id, offering_id, sku, order_ref, quantity, extra_seats, \
        activation_code, seat_count, overdraft_kind, overdraft_value, concurrency_mode, lease_period, \
        offline_lease_period, grace_period, linger_period, license_type, duration, start_mode, plan_kind, starts_at, \
        base_expires_at, expires_at, disabled_at, overrides, seats_used, created_at, updated_at";
    let copied = "v.column1, t.tenant_id, v.column2, t.product_id, t.offering_id, t.sku, v.column3, t.quantity, \
        t.extra_seats, v.column4, t.seat_count, t.overdraft_kind, t.overdraft_value, t.concurrency_mode, \
        t.lease_period, t.offline_lease_period, t.grace_period, t.linger_period, t.license_type, t.duration, \
        t.start_mode, t.plan_kind, t.starts_at, t.base_expires_at, t.expires_at, t.disabled_at, t.overrides, 1, \
        t.created_at, t.updated_at";
    for start in (0..entitlements).step_by(CHUNK) {
        let end = (start + CHUNK).min(entitlements);
        let mut rows = Vec::new();
        let mut seats = Vec::new();
        let mut orders = Vec::new();
        for n in start..end {
            let id = ids::new_id("ent");
            let customer = &customer_ids[n % customer_ids.len()];
            let code = ActivationCode::generate();
            rows.push(format!("('{id}', '{customer}', 'ORD-{n:07}', '{}')", code.as_str()));
            seats.push(format!(
                "('{}', '{tenant_id}', '{id}', 'fp-{n:07}', 'Host {n:07}', '{}', 'online', 0, {now}, {now}, {now}, {now})",
                ids::new_id("act"), ids::random_token(16)
            ));
            if n % 10 == 0 {
                orders.push(format!(
                    "('conn-{tenant_id}', 'ORD-{n:07}', '{tenant_id}', '{{}}', {now}, 'pcus-{n:07}')"
                ));
            }
        }
        sqlx::raw_sql(&format!(
            "INSERT INTO entitlements ({columns}) SELECT {copied} FROM (VALUES {}) v CROSS JOIN entitlements t WHERE t.id = '{template}'",
            rows.join(", ")
        )).execute(&mut *tx).await.unwrap();
        sqlx::raw_sql(&format!(
            "INSERT INTO activations (id, tenant_id, entitlement_id, seat_id, seat_name, secret_hash, mode, overdraft, \
             activated_at, last_lease_at, lease_expires_at, linger_expires_at) VALUES {}",
            seats.join(", ")
        ))
        .execute(&mut *tx)
        .await
        .unwrap();
        if !orders.is_empty() {
            sqlx::raw_sql(&format!(
                "INSERT INTO commerce_orders (connection_id, order_ref, tenant_id, state, updated_at, customer_ref) VALUES {}",
                orders.join(", ")
            )).execute(&mut *tx).await.unwrap();
        }
    }
    tx.commit().await.unwrap();
}

/// Every statement search and the list filters run, for one tenant, with values that exist.
fn statements(store: &Store, tenant: &str) -> Vec<Statement> {
    let backend = store.backend();
    let filter = |email, external_ref, name_prefix| CustomerFilter {
        email,
        external_ref,
        name_prefix,
        after: "",
        limit: 51,
    };
    let ent_filter = |customer_id, sku, order_ref| EntitlementFilter {
        customer_id,
        sku,
        order_ref,
        after: "",
        limit: 51,
    };
    vec![
        lookups::customer_by_id(tenant, "cus_x").statement,
        lookups::customers_by_email(tenant, "buyer17@bulk.example", 10).statement,
        lookups::customer_by_external_ref(tenant, "ext-17").statement,
        lookups::customers_by_name_prefix(backend, tenant, "customer 00017", 10).statement,
        lookups::customers_by_name_prefix(backend, tenant, "c", 10).statement,
        lookups::end_user_by_id(tenant, "usr_x").statement,
        lookups::end_user_by_email(tenant, "user17@bulk.example").statement,
        lookups::entitlement_by_id(tenant, "ent_x").statement,
        lookups::entitlement_by_code(tenant, ActivationCode::generate().as_str()).statement,
        lookups::entitlements_by_order_ref(tenant, "ORD-0000017", 10).statement,
        lookups::entitlements_by_provider_customer(tenant, "pcus-0000010", 10).statement,
        lookups::activation_by_id(tenant, "act_x").statement,
        lookups::activations_by_seat_id(tenant, "fp-0000017", 10).statement,
        lookups::activations_by_seat_name_prefix(backend, tenant, "host 00001", 10).statement,
        list_customers_statement(backend, tenant, &filter(Some("buyer17@bulk.example"), None, None)),
        list_customers_statement(backend, tenant, &filter(None, Some("ext-17"), None)),
        list_customers_statement(backend, tenant, &filter(None, None, Some("customer 0001"))),
        list_statement(tenant, &ent_filter(None, None, Some("ORD-0000017"))),
        list_statement(tenant, &ent_filter(Some("cus_x"), None, None)),
        list_statement(tenant, &ent_filter(None, Some("PRO-M"), Some("ORD-0000017"))),
    ]
}

const BIG_TABLES: &[&str] = &[
    "customers",
    "end_users",
    "entitlements",
    "activations",
    "commerce_orders",
];

/// A tenant with the catalogue and one entitlement to copy.
async fn bulk_tenant(app: &TestApp) -> (String, String, String) {
    let t = app.tenant("Bulk").await;
    let c = seed_catalogue(app, &t.key).await;
    let e = app
        .create(
            &t.key,
            "/api/v1/entitlements",
            json!({"customer_id": c.customer_id, "sku": "PRO-M", "quantity": 1}),
        )
        .await;
    (t.id, e["id"].as_str().unwrap().to_owned(), t.key)
}

backend_test! {
    async fn every_search_and_filter_statement_uses_indexes(app) {
        let (tenant, template, _) = bulk_tenant(app).await;
        // A second tenant, so "the tenant's rows" is not "every row".
        let (other, other_template, _) = bulk_tenant(app).await;
        seed_bulk(&app.store, &tenant, &template, 2_000, 4_000).await;
        seed_bulk(&app.store, &other, &other_template, 2_000, 4_000).await;
        analyze(&app.store).await;
        for statement in statements(&app.store, &tenant) {
            assert_indexed(&app.store, &statement, BIG_TABLES).await;
        }
    }
}

backend_test! {
    /// The check must see a walk, or a green check means nothing: a table with no usable index,
    /// and an index that narrows to the tenant only (every row of the tenant is read).
    async fn the_plan_check_sees_a_walk(app) {
        let (tenant, template, _) = bulk_tenant(app).await;
        seed_bulk(&app.store, &tenant, &template, 500, 3_000).await;
        analyze(&app.store).await;
        let no_index = Statement {
            sql: "SELECT id FROM activations WHERE seat_name LIKE $1".into(),
            binds: vec![Bind::Text("%7".into())],
        };
        let tenant_only = Statement {
            sql: "SELECT id FROM activations WHERE tenant_id = $1 AND substr(seat_name, 2, 3) = $2".into(),
            binds: vec![Bind::Text(tenant.clone()), Bind::Text("ost".into())],
        };
        for statement in [no_index, tenant_only] {
            let plan = crate::plans::plan(&app.store, &statement).await.join("\n");
            let walks = crate::plans::scans(&app.store, &statement, BIG_TABLES).await;
            assert!(!walks.is_empty(), "a walk went unnoticed:\n{}\n{plan}", statement.sql);
        }
    }
}

backend_test! {
    /// Timings at 100,000 entitlements, printed, not asserted. Opt-in (it takes a while):
    /// `ENTITLE_SEARCH_BENCH=1 cargo test -p entitle-server --test it timings -- --nocapture`.
    async fn timings_at_a_hundred_thousand_entitlements(app) {
        if std::env::var("ENTITLE_SEARCH_BENCH").is_err() {
            eprintln!("ENTITLE_SEARCH_BENCH is not set: timings not taken");
            return;
        }
        let (tenant, template, key) = bulk_tenant(app).await;
        let started = Instant::now();
        seed_bulk(&app.store, &tenant, &template, 20_000, 100_000).await;
        eprintln!("{:?}: seeded 20k customers, 20k end users, 100k entitlements, 100k seats, 10k orders in {:?}",
            app.backend, started.elapsed());
        analyze(&app.store).await;
        let key = key.as_str();
        for q in ["Customer 00123", "customer 0", "buyer123@bulk.example", "user77@bulk.example", "ORD-0054321",
                  "pcus-0054320", "fp-0099999", "host 00999", "ext-19999"] {
            let started = Instant::now();
            let found = search(app, key, q).await;
            let elapsed = started.elapsed();
            let hits: usize = ["customers", "end_users", "entitlements", "activations"].iter()
                .map(|g| found[g].as_array().unwrap().len()).sum();
            eprintln!("{:?}: search {q:?}: {hits} hits in {elapsed:?} (HTTP round trip)", app.backend);
            assert!(hits > 0, "{q}: {found}");
        }
        for statement in statements(&app.store, &tenant) {
            assert_indexed(&app.store, &statement, BIG_TABLES).await;
        }
    }
}
