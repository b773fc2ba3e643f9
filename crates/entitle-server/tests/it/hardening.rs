//! Abuse hardening: attempt budgets that hold under concurrency and behind proxies, roles that
//! cannot be escalated, signed answers for every licensing failure, safe headers.

use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use std::collections::BTreeMap;

use crate::helpers::*;

/// Like `backend_test!`, on a server that trusts the loopback proxy's forwarding headers.
macro_rules! proxied_test {
    (async fn $name:ident($app:ident) $body:block) => {
        mod $name {
            #[allow(unused_imports)]
            use super::*;

            async fn run($app: &TestApp) $body

            fn trust_loopback(layer: &mut entitle_server::config::ConfigLayer) {
                layer.trusted_proxies = Some("127.0.0.0/8".into());
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                let app = TestApp::spawn_configured(Backend::Sqlite, trust_loopback).await.unwrap();
                run(&app).await;
                app.stop().await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                let Some(app) = TestApp::spawn_configured(Backend::Postgres, trust_loopback).await else {
                    return;
                };
                run(&app).await;
                app.stop().await;
            }
        }
    };
}

/// An activation attempt with a made-up code, from `forwarded_for` when given.
async fn guess(
    app: &TestApp,
    tenant: &str,
    product: &str,
    forwarded_for: Option<&str>,
    n: usize,
) -> (StatusCode, Value) {
    let mut request = app.client.post(format!("{}/licensing/v1/activate", app.base)).json(
        &json!({"tenant": tenant, "product": product, "activation_code": format!("ZZZZ-{n:04}-AAAA-BBBB-CCCC-DDDD"),
                      "seat_id": "guesser", "nonce": format!("nonce-guess-{n:06}")}),
    );
    if let Some(address) = forwarded_for {
        request = request.header("x-forwarded-for", address);
    }
    let response = request.send().await.unwrap();
    let status = response.status();
    (status, response.json().await.unwrap_or(Value::Null))
}

fn count(results: &[(StatusCode, Value)], status: StatusCode) -> usize {
    results.iter().filter(|(s, _)| *s == status).count()
}

backend_test! {
    async fn concurrent_guesses_never_exceed_the_budget(app) {
        let t = app.tenant("Acme").await;
        let c = seed_catalogue(app, &t.key).await;
        let results = join_all((0..60).map(|n| guess(app, &t.id, &c.product_id, None, n))).await;
        assert_eq!(count(&results, StatusCode::UNAUTHORIZED), 10, "exactly the budget is evaluated");
        assert_eq!(count(&results, StatusCode::TOO_MANY_REQUESTS), 50);
        // Another tenant's callers from the same address are not locked out.
        let b = app.tenant("Beta").await;
        let cb = seed_catalogue(app, &b.key).await;
        let e = entitle(app, &b.key, &cb.customer_id, "PRO-M", 1).await;
        let ok = app
            .licensing(Method::POST, "/licensing/v1/activate", None, "nonce-other-tenant",
                Some(json!({"nonce": "nonce-other-tenant", "tenant": b.id, "product": cb.product_id, "activation_code": e["activation_code"],
                            "seat_id": "beta-device"})))
            .await;
        assert_eq!(ok.status, StatusCode::OK, "{}", ok.body);
        // A legitimate activation gives its reservation back: it never uses up the budget.
        for n in 0..15 {
            let again = app
                .licensing(Method::POST, "/licensing/v1/activate", None, &format!("nonce-again-{n:04}"),
                    Some(json!({"nonce": &format!("nonce-again-{n:04}"), "tenant": b.id, "product": cb.product_id, "activation_code": e["activation_code"],
                                "seat_id": "beta-device"})))
                .await;
            assert_eq!(again.status, StatusCode::OK, "{}", again.body);
        }
    }
}

backend_test! {
    async fn a_client_cannot_pick_its_address(app) {
        let t = app.tenant("Acme").await;
        let c = seed_catalogue(app, &t.key).await;
        // Without trusted proxies, X-Forwarded-For is ignored: every guess is 127.0.0.1's.
        let spoofed = join_all((0..12).map(|n| {
            let address = format!("198.51.100.{n}");
            let (tenant, product) = (t.id.clone(), c.product_id.clone());
            async move { guess(app, &tenant, &product, Some(&address), n).await }
        }))
        .await;
        assert_eq!(count(&spoofed, StatusCode::TOO_MANY_REQUESTS), 2);
    }
}

proxied_test! {
    async fn one_account_is_not_guessed_from_many_addresses(app) {
        let t = app.tenant("Acme").await;
        let c = seed_catalogue(app, &t.key).await;
        let attempts = join_all((0..30).map(|n| {
            let tenant = t.id.clone();
            let product = c.product_id.clone();
            async move {
                let response = app
                    .client
                    .post(format!("{}/licensing/v1/activate", app.base))
                    .header("x-forwarded-for", format!("203.0.113.{n}"))
                    .json(&json!({"tenant": tenant, "product": product, "email": "ada@initech.example",
                                  "password": format!("guess number {n}"), "seat_id": "s1",
                                  "nonce": format!("nonce-account-{n:04}")}))
                    .send()
                    .await
                    .unwrap();
                (response.status(), Value::Null)
            }
        }))
        .await;
        assert_eq!(count(&attempts, StatusCode::UNAUTHORIZED), 20, "the account's budget holds across addresses");
        assert_eq!(count(&attempts, StatusCode::TOO_MANY_REQUESTS), 10);
    }
}

proxied_test! {
    async fn the_real_client_address_comes_from_trusted_proxies_only(app) {
        let t = app.tenant("Acme").await;
        let c = seed_catalogue(app, &t.key).await;
        // Ten typos from one client behind the proxy do not block another client.
        for n in 0..11 {
            let (status, _) = guess(app, &t.id, &c.product_id, Some("6.6.6.6, 198.51.100.7"), n).await;
            let expected = if n < 10 { StatusCode::UNAUTHORIZED } else { StatusCode::TOO_MANY_REQUESTS };
            assert_eq!(status, expected, "attempt {n}");
        }
        let (other, _) = guess(app, &t.id, &c.product_id, Some("198.51.100.8"), 99).await;
        assert_eq!(other, StatusCode::UNAUTHORIZED, "another client behind the same proxy is evaluated");
        // The activation log names the client, not the proxy.
        let e = entitle(app, &t.key, &c.customer_id, "PRO-M", 1).await;
        let activated = app
            .client
            .post(format!("{}/licensing/v1/activate", app.base))
            .header("forwarded", "for=\"[2001:db8::5]:4711\";proto=https")
            .json(&json!({"tenant": t.id, "product": c.product_id, "activation_code": e["activation_code"],
                          "seat_id": "dev-1", "nonce": "nonce-forwarded"}))
            .send()
            .await
            .unwrap();
        assert_eq!(activated.status(), StatusCode::OK);
        let log = app.fetch(&t.key, &format!("/api/v1/entitlements/{}/activation-log", e["id"].as_str().unwrap())).await;
        assert!(log.to_string().contains("2001:db8::5"), "{log}");
        assert!(!log.to_string().contains("127.0.0.1"), "{log}");
    }
}

backend_test! {
    async fn every_licensing_failure_is_signed(app) {
        let t = app.tenant("Acme").await;
        let c = seed_catalogue(app, &t.key).await;
        let keys = app.keys(&t.id).await;
        // An activation body that does not parse, but names its tenant.
        let response = app
            .client
            .post(format!("{}/licensing/v1/activate", app.base))
            .header("content-type", "application/json")
            .body(format!("{{\"tenant\": \"{}\", \"nonce\": \"nonce-broken-body\", \"seat_id\": 5}}", t.id))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::BAD_REQUEST);
        assert_eq!(response.headers()["content-type"], "application/json");
        let signature = response.headers()[entitle_protocol::SIGNATURE_HEADER].to_str().unwrap().to_owned();
        let bytes = response.bytes().await.unwrap();
        entitle_protocol::jws::verify_detached(&signature, &bytes, &keys).expect("signed by the tenant");
        let body: Value = serde_json::from_slice(&bytes).unwrap();
        assert_eq!(body["error"]["code"], "invalid_request");
        assert_eq!(body["nonce"], "nonce-broken-body");

        // Checkout, return and usage with unreadable bodies: signed JSON denials, never text/plain.
        let e = entitle(app, &t.key, &c.customer_id, "PRO-M", 1).await;
        let activated = app
            .licensing(Method::POST, "/licensing/v1/activate", None, "nonce-activate-1",
                Some(json!({"nonce": "nonce-activate-1", "tenant": t.id, "product": c.product_id, "activation_code": e["activation_code"], "seat_id": "d1"})))
            .await;
        let secret = activated.body["activation_secret"].as_str().unwrap().to_owned();
        for path in ["/licensing/v1/activation/features/nodes/checkout", "/licensing/v1/activation/features/nodes/return",
                     "/licensing/v1/activation/usage"] {
            let response = app
                .client
                .post(format!("{}{path}", app.base))
                .bearer_auth(&secret)
                .header("entitle-nonce", "nonce-bad-count")
                .header("content-type", "application/json")
                .body("{\"count\": \"many\"")
                .send()
                .await
                .unwrap();
            assert_eq!(response.status(), StatusCode::BAD_REQUEST, "{path}");
            assert_eq!(response.headers()["content-type"], "application/json", "{path}");
            let signature = response.headers()[entitle_protocol::SIGNATURE_HEADER].to_str().unwrap().to_owned();
            let bytes = response.bytes().await.unwrap();
            entitle_protocol::jws::verify_detached(&signature, &bytes, &keys).expect("signed");
            let body: Value = serde_json::from_slice(&bytes).unwrap();
            assert_eq!(body["error"]["code"], "invalid_request", "{path}");
            assert_eq!(body["nonce"], "nonce-bad-count", "{path}");
        }
        // Answers carrying a new secret are never cached.
        assert_eq!(activated_headers(app, &t.id, &c.product_id, e["activation_code"].as_str().unwrap()).await, "no-store");
        let key = app.post(&t.key, "/api/v1/api-keys", json!({"name": "CI", "role": "support"})).await;
        assert_eq!(key.headers["cache-control"], "no-store");
        assert_eq!(key.headers["x-content-type-options"], "nosniff");
    }
}

async fn activated_headers(app: &TestApp, tenant: &str, product: &str, code: &str) -> String {
    let response = app
        .client
        .post(format!("{}/licensing/v1/activate", app.base))
        .json(&json!({"tenant": tenant, "product": product, "activation_code": code, "seat_id": "d2", "nonce": "nonce-cache-1"}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    response.headers()["cache-control"].to_str().unwrap().to_owned()
}

backend_test! {
    async fn support_and_integration_keys_cannot_make_account_holders(app) {
        let t = app.tenant("Acme").await;
        let c = seed_catalogue(app, &t.key).await;
        app.act(Method::PATCH, &t.key, &format!("/api/v1/products/{}", c.product_id), json!({"account_based": true})).await;
        let support = app.create(&t.key, "/api/v1/api-keys", json!({"name": "Support", "role": "support"})).await;
        let support = support["secret"].as_str().unwrap();
        let integration = app.create(&t.key, "/api/v1/api-keys", json!({"name": "Shop", "role": "integration"})).await;
        let integration = integration["secret"].as_str().unwrap();
        let users_before = app.fetch(&t.key, "/api/v1/end-users?limit=200").await["data"].as_array().unwrap().len();
        let ents_before = app.fetch(&t.key, "/api/v1/entitlements?limit=200").await["data"].as_array().unwrap().len();

        // Support resends to an address of its choosing: refused, nobody added.
        let e = entitle(app, &t.key, &c.customer_id, "PRO-M", 1).await;
        let refused = app
            .post(support, &format!("/api/v1/entitlements/{}/resend-credentials", e["id"].as_str().unwrap()),
                json!({"to": "attacker@evil.example"}))
            .await;
        assert_eq!(refused.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", refused.body);
        assert_eq!(refused.body["error"]["code"], "recipient_not_end_user");
        // An integration key creating an entitlement with a set-up link to its own address: refused
        // as a whole (no entitlement either).
        let refused = app
            .post(integration, "/api/v1/entitlements",
                json!({"customer_id": c.customer_id, "sku": "PRO-M", "send_credentials_to": "attacker@evil.example"}))
            .await;
        assert_eq!(refused.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", refused.body);
        let users_after = app.fetch(&t.key, "/api/v1/end-users?limit=200").await["data"].as_array().unwrap().len();
        let ents_after = app.fetch(&t.key, "/api/v1/entitlements?limit=200").await["data"].as_array().unwrap().len();
        assert_eq!(users_after, users_before, "no end user was created");
        assert_eq!(ents_after, ents_before + 1, "only the admin's entitlement exists");

        // The customer's own address still works for an integration key (its first account holder).
        let customer = app.create(integration, "/api/v1/customers", json!({"name": "Buyer", "email": "buyer@initech.example"})).await;
        let created = app
            .post(integration, "/api/v1/entitlements",
                json!({"customer_id": customer["id"], "sku": "PRO-M", "send_credentials_to": "buyer@initech.example"}))
            .await;
        assert_eq!(created.status, StatusCode::CREATED, "{}", created.body);
        // And an admin key may add an account holder anywhere.
        let admin = app
            .post(&t.key, &format!("/api/v1/entitlements/{}/resend-credentials", e["id"].as_str().unwrap()),
                json!({"to": "new.colleague@initech.example"}))
            .await;
        assert_eq!(admin.status, StatusCode::OK, "{}", admin.body);
    }
}

/// The permission table, written once here: which roles may call each management operation.
fn allowed_roles(method: &str, path: &str) -> &'static [&'static str] {
    const ALL: &[&str] = &["admin", "support"];
    let path = path.trim_start_matches("/api/v1");
    match (method, path) {
        ("get", "/api-keys") | ("post", "/api-keys") | ("delete", "/api-keys/{id}") => &["admin"],
        ("get", _) => ALL,
        ("post", "/customers") => &["admin", "integration"],
        ("post", "/entitlements") => &["admin", "integration"],
        ("patch", "/entitlements/{id}") => ALL,
        ("post", p) if p.starts_with("/entitlements/{id}/") => ALL,
        ("post", "/activations/{id}/revoke")
        | ("post", "/storefront-deliveries/{id}/replay")
        | ("post", "/webhook-deliveries/{id}/replay") => ALL,
        _ => &["admin"],
    }
}

backend_test! {
    async fn every_operation_enforces_the_permission_table(app) {
        let t = app.tenant("Acme").await;
        let mut keys = BTreeMap::new();
        keys.insert("admin", t.key.clone());
        for role in ["support", "integration"] {
            let key = app.create(&t.key, "/api/v1/api-keys", json!({"name": role, "role": role})).await;
            keys.insert(role, key["secret"].as_str().unwrap().to_owned());
        }
        let doc = app.request(Method::GET, None, "/api/v1/openapi.json", None).await.body;
        let mut walked = 0;
        for (path, operations) in doc["paths"].as_object().unwrap() {
            if !path.starts_with("/api/v1") {
                continue;
            }
            for method in operations.as_object().unwrap().keys() {
                let concrete = path.replace("{id}", "xyz_00000000000000000000000000");
                let allowed = allowed_roles(method, path);
                for (role, key) in &keys {
                    let verb = Method::from_bytes(method.to_uppercase().as_bytes()).unwrap();
                    // An empty object: a forbidden caller is refused before the body is read.
                    let body = (verb != Method::GET && verb != Method::DELETE).then(|| json!({}));
                    let response = app.request(verb, Some(key), &concrete, body).await;
                    if allowed.contains(role) {
                        assert_ne!(response.status, StatusCode::FORBIDDEN, "{role} {method} {path}: {}", response.body);
                        assert!(!response.status.is_server_error(), "{role} {method} {path}: {}", response.body);
                    } else {
                        assert_eq!(response.status, StatusCode::FORBIDDEN, "{role} {method} {path}: {}", response.body);
                    }
                }
                walked += 1;
            }
        }
        assert!(walked >= 60, "walked {walked} operations");
    }
}

backend_test! {
    async fn request_ids_and_security_headers(app) {
        let long = "x".repeat(300);
        let response = app.client.get(format!("{}/healthz", app.base)).header("x-request-id", &long).send().await.unwrap();
        let echoed = response.headers()["x-request-id"].to_str().unwrap().to_owned();
        assert_ne!(echoed, long, "an over-long request id is replaced");
        assert!(echoed.len() <= 64);
        let short = app.client.get(format!("{}/healthz", app.base)).header("x-request-id", "trace-123").send().await.unwrap();
        assert_eq!(short.headers()["x-request-id"], "trace-123", "a sane one is echoed");
        let page = app.client.get(format!("{}/portal/set-password?token=nope", app.base)).send().await.unwrap();
        let csp = page.headers()["content-security-policy"].to_str().unwrap();
        assert!(csp.contains("frame-ancestors 'none'"), "{csp}");
        assert_eq!(page.headers()["x-content-type-options"], "nosniff");
        assert_eq!(page.headers()["x-frame-options"], "DENY");
    }
}

backend_test! {
    async fn made_up_set_up_tokens_are_refused(app) {
        // Every post with a made-up token is refused as an expired link. (That none of them costs
        // a password hash is shown by the memory test in `connections`, which fails without it.)
        let posts = join_all((0..100).map(|n| {
            app.client
                .post(format!("{}/portal/set-password", app.base))
                .header("content-type", "application/x-www-form-urlencoded")
                .body(format!("token=madeup{n:050}&password=long+enough+pw&confirm=long+enough+pw"))
                .send()
        }))
        .await;
        for post in posts {
            assert_eq!(post.unwrap().status(), StatusCode::NOT_FOUND);
        }
    }
}

/// Two instances on one PostgreSQL database share the budgets: guesses split between them are
/// still limited to one budget in all.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn budgets_hold_across_instances() {
    let Some(first) = TestApp::spawn(Backend::Postgres).await else {
        eprintln!("ENTITLE_TEST_DATABASE_URL is not set: not run");
        return;
    };
    let second = first.another_instance(|_| {}).await;
    let t = first.tenant("Acme").await;
    let c = seed_catalogue(&first, &t.key).await;
    let results = join_all((0..40).map(|n| {
        let app = if n % 2 == 0 { &first } else { &second };
        let (tenant, product) = (t.id.clone(), c.product_id.clone());
        async move { guess(app, &tenant, &product, None, n).await }
    }))
    .await;
    assert_eq!(
        count(&results, StatusCode::UNAUTHORIZED),
        10,
        "one budget for both instances"
    );
    assert_eq!(count(&results, StatusCode::TOO_MANY_REQUESTS), 30);
    second.stop().await;
    first.stop().await;
}
