//! The licensing API as applications use it: signed answers, seats, leases, features, usage,
//! offline files, and the management side of seats.

use chrono::{Duration, Utc};
use entitle_protocol::licence::{self, ACTIVATION_REQUEST_LABEL, DEACTIVATION_REQUEST_LABEL};
use entitle_protocol::{LeaseClaims, OfflineActivationRequest, OfflineDeactivationRequest};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use crate::helpers::{backend_test, entitle, join_all, seed_catalogue, Signed, TestApp};

fn nonce() -> String {
    entitle_server::domain::ids::random_token(12)
}

async fn activate(app: &TestApp, tenant: &str, product: &str, code: &Value, seat: &str) -> Signed {
    let body = json!({"tenant": tenant, "product": product, "activation_code": code, "seat_id": seat,
                      "seat_name": format!("{seat}'s laptop"), "nonce": nonce()});
    app.licensing(Method::POST, "/licensing/v1/activate", None, "", Some(body))
        .await
}

/// Activates as the SDK does under load: a `server_busy` answer (the attempt waited its turn too
/// long) is retried after its `Retry-After`. What is asserted is never weakened: seats stay exact.
async fn activate_patiently(app: &TestApp, tenant: &str, product: &str, code: &Value, seat: &str) -> Signed {
    for _ in 0..20 {
        let answer = activate(app, tenant, product, code, seat).await;
        if answer.status != StatusCode::SERVICE_UNAVAILABLE || answer.body["error"]["code"] != "server_busy" {
            return answer;
        }
        let wait: u64 = answer.retry_after.as_deref().and_then(|s| s.parse().ok()).unwrap_or(1);
        tokio::time::sleep(std::time::Duration::from_secs(wait)).await;
    }
    panic!("the server stayed busy for {seat}");
}

fn secret(answer: &Signed) -> String {
    answer.body["activation_secret"]
        .as_str()
        .expect("an activation secret")
        .to_owned()
}

async fn call(app: &TestApp, method: Method, path: &str, secret: &str, body: Option<Value>) -> (Signed, String) {
    let nonce = nonce();
    (app.licensing(method, path, Some(secret), &nonce, body).await, nonce)
}

async fn entitlement(app: &TestApp, key: &str, id: &Value) -> Value {
    app.fetch(key, &format!("/api/v1/entitlements/{}", id.as_str().unwrap()))
        .await
}

fn code(answer: &Signed) -> &str {
    answer.body["error"]["code"].as_str().unwrap_or("")
}

backend_test! {
    async fn an_application_activates_refreshes_reads_and_deactivates_with_signed_answers(app) {
        let t = app.tenant("Acme").await;
        let c = seed_catalogue(app, &t.key).await;
        let e = entitle(app, &t.key, &c.customer_id, "PRO-M", 1).await;
        let keys = app.keys(&t.id).await;
        assert_eq!(keys.len(), 1);

        let activated = activate(app, &t.id, &c.product_id, &e["activation_code"], "machine-1").await;
        assert_eq!(activated.status, StatusCode::OK, "{}", activated.body);
        activated.verify(&keys);
        let secret = secret(&activated);
        assert!(secret.starts_with("eas_"));
        let token = activated.body["lease_token"].as_str().unwrap();
        let now = Utc::now().timestamp();
        let claims = LeaseClaims::verify(token, &keys, now, &c.product_id, "machine-1").unwrap();
        assert_eq!(claims.iss, t.id);
        assert_eq!(claims.sub, activated.body["activation_id"].as_str().unwrap());
        assert_eq!(claims.entitlement.id, e["id"].as_str().unwrap());
        assert_eq!(claims.entitlement.status, "active");
        assert_eq!(claims.entitlement.seats_used, 1);
        assert_eq!(claims.seat.name.as_deref(), Some("machine-1's laptop"));
        assert!(!claims.seat.overdraft && !claims.seat.offline);
        assert!(claims.is_enabled("export"));
        assert_eq!(claims.feature("nodes").unwrap().limit, Some(4));
        assert_eq!(claims.attributes[0].value, json!(10));
        assert!((claims.exp - (now + 86_400)).abs() <= 2, "a one-day lease");
        assert!(LeaseClaims::verify(token, &keys, now, &c.product_id, "machine-2").is_err(), "bound to its seat");
        assert_eq!(entitlement(app, &t.key, &e["id"]).await["seats_used"], 1);

        let (refreshed, sent) = call(app, Method::POST, "/licensing/v1/activation/refresh", &secret, None).await;
        assert_eq!(refreshed.status, StatusCode::OK, "{}", refreshed.body);
        refreshed.verify(&keys);
        assert_eq!(refreshed.body["nonce"], sent, "the nonce is echoed");
        let renewed = LeaseClaims::verify(&refreshed.token(), &keys, now, &c.product_id, "machine-1").unwrap();
        assert!(renewed.exp >= claims.exp);

        let (state, sent) = call(app, Method::GET, "/licensing/v1/activation", &secret, None).await;
        state.verify(&keys);
        assert_eq!(state.body["nonce"], sent);
        assert_eq!(state.body["exp"], renewed.exp, "reading does not extend");

        // The same device again keeps its seat and gets new credentials.
        let again = activate(app, &t.id, &c.product_id, &e["activation_code"], "machine-1").await;
        assert_eq!(again.body["activation_id"], activated.body["activation_id"]);
        assert_eq!(entitlement(app, &t.key, &e["id"]).await["seats_used"], 1);
        let (stale, _) = call(app, Method::POST, "/licensing/v1/activation/refresh", &secret, None).await;
        assert_eq!(stale.status, StatusCode::UNAUTHORIZED, "the old secret is replaced");
        let secret = self::secret(&again);

        let (gone, sent) = call(app, Method::DELETE, "/licensing/v1/activation", &secret, None).await;
        assert_eq!(gone.status, StatusCode::OK, "{}", gone.body);
        gone.verify(&keys);
        assert_eq!(gone.body["nonce"], sent);
        assert_eq!(entitlement(app, &t.key, &e["id"]).await["seats_used"], 0);
        let (after, sent) = call(app, Method::POST, "/licensing/v1/activation/refresh", &secret, None).await;
        assert_eq!(after.status, StatusCode::UNAUTHORIZED);
        assert_eq!(code(&after), "invalid_activation");
        after.verify(&keys);
        assert_eq!(after.body["nonce"], sent, "denials echo the nonce too");

        let log = app.fetch(&t.key, &format!("/api/v1/entitlements/{}/activation-log", e["id"].as_str().unwrap())).await;
        let actions: Vec<_> = log["data"].as_array().unwrap().iter().map(|l| l["action"].as_str().unwrap().to_owned()).collect();
        assert_eq!(actions, ["activate", "refresh", "activate", "deactivate", "denied"], "an unknown secret names no entitlement to log against");
        assert_eq!(log["data"][0]["ip"], "127.0.0.1");
    }
}

backend_test! {
    async fn denials_have_stable_codes(app) {
        let t = app.tenant("Acme").await;
        let c = seed_catalogue(app, &t.key).await;
        let keys = app.keys(&t.id).await;
        let basic = entitle(app, &t.key, &c.customer_id, "BASIC-M", 1).await;

        let wrong = activate(app, &t.id, &c.product_id, &json!("7KQ2-M9XD-4FRT-0BWN-HC8E-P3VZ"), "m").await;
        assert_eq!((wrong.status, code(&wrong)), (StatusCode::UNAUTHORIZED, "invalid_credential"));
        wrong.verify(&keys);
        let other_product = app.create(&t.key, "/api/v1/products", json!({"name": "Other"})).await;
        let elsewhere = activate(app, &t.id, other_product["id"].as_str().unwrap(), &basic["activation_code"], "m").await;
        assert_eq!(code(&elsewhere), "invalid_credential", "a code opens only its own product");
        let no_tenant = activate(app, "ten_nobody", &c.product_id, &basic["activation_code"], "m").await;
        assert_eq!(code(&no_tenant), "invalid_credential");

        let first = activate(app, &t.id, &c.product_id, &basic["activation_code"], "one").await;
        assert_eq!(first.status, StatusCode::OK);
        let second = activate(app, &t.id, &c.product_id, &basic["activation_code"], "two").await;
        assert_eq!((second.status, code(&second)), (StatusCode::CONFLICT, "seat_limit_reached"));
        second.verify(&keys);

        let path = format!("/api/v1/entitlements/{}", basic["id"].as_str().unwrap());
        app.act(Method::POST, &t.key, &format!("{path}/disable"), json!({})).await;
        let (disabled, _) = call(app, Method::POST, "/licensing/v1/activation/refresh", &secret(&first), None).await;
        assert_eq!((disabled.status, code(&disabled)), (StatusCode::FORBIDDEN, "entitlement_disabled"));
        app.act(Method::POST, &t.key, &format!("{path}/enable"), json!({})).await;
        app.act(Method::PATCH, &t.key, &path, json!({"expires_at": (Utc::now() - Duration::days(30)).to_rfc3339()})).await;
        let (expired, _) = call(app, Method::POST, "/licensing/v1/activation/refresh", &secret(&first), None).await;
        assert_eq!(code(&expired), "entitlement_expired");

        let bad_nonce = app
            .licensing(Method::POST, "/licensing/v1/activate", None, "",
                Some(json!({"tenant": t.id, "product": c.product_id, "activation_code": basic["activation_code"],
                            "seat_id": "x", "nonce": "short"})))
            .await;
        assert_eq!((bad_nonce.status, code(&bad_nonce)), (StatusCode::BAD_REQUEST, "invalid_request"));
        let no_credential = app
            .licensing(Method::POST, "/licensing/v1/activate", None, "",
                Some(json!({"tenant": t.id, "product": c.product_id, "seat_id": "x", "nonce": nonce()})))
            .await;
        assert_eq!(code(&no_credential), "invalid_request");
        let no_secret = app.licensing(Method::GET, "/licensing/v1/activation", None, &nonce(), None).await;
        assert_eq!((no_secret.status, code(&no_secret)), (StatusCode::UNAUTHORIZED, "invalid_activation"));
    }
}

backend_test! {
    async fn overdraft_seats_are_allowed_up_to_the_limit_and_flagged(app) {
        let t = app.tenant("Acme").await;
        let c = seed_catalogue(app, &t.key).await;
        let keys = app.keys(&t.id).await;
        let e = entitle(app, &t.key, &c.customer_id, "PRO-M", 1).await; // 5 seats + 2 overdraft
        let mut overdraft = Vec::new();
        for n in 0..7 {
            let answer = activate(app, &t.id, &c.product_id, &e["activation_code"], &format!("m{n}")).await;
            assert_eq!(answer.status, StatusCode::OK, "seat {n}: {}", answer.body);
            let token = answer.body["lease_token"].as_str().unwrap();
            let claims = LeaseClaims::verify(token, &keys, Utc::now().timestamp(), &c.product_id, &format!("m{n}")).unwrap();
            overdraft.push(claims.seat.overdraft);
        }
        assert_eq!(overdraft, [false, false, false, false, false, true, true]);
        let eighth = activate(app, &t.id, &c.product_id, &e["activation_code"], "m7").await;
        assert_eq!(code(&eighth), "seat_limit_reached");
        let view = entitlement(app, &t.key, &e["id"]).await;
        assert_eq!((view["seats_used"].clone(), view["overdraft_seats_used"].clone()), (json!(7), json!(2)));
        let seats = app.fetch(&t.key, &format!("/api/v1/entitlements/{}/activations?live=true", e["id"].as_str().unwrap())).await;
        let flagged = seats["data"].as_array().unwrap().iter().filter(|a| a["overdraft"] == true).count();
        assert_eq!(flagged, 2);
    }
}

/// A 10-seat offering, with a 4-unit pool and a usage allowance of 100 + 10 overdraft.
async fn ten_seats(app: &TestApp, key: &str, c: &crate::helpers::Catalogue) {
    let editions = app
        .fetch(key, &format!("/api/v1/editions?product_id={}", c.product_id))
        .await;
    let pro = editions["data"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["name"] == "Pro")
        .unwrap()
        .clone();
    let plans = app
        .fetch(key, &format!("/api/v1/plans?product_id={}", c.product_id))
        .await;
    app.create(
        key,
        "/api/v1/offerings",
        json!({"sku": "TEN", "name": "Ten seats", "edition_id": pro["id"],
        "plan_id": plans["data"][0]["id"], "seat_count": 10}),
    )
    .await;
}

backend_test! {
    async fn concurrent_activations_never_take_more_seats_than_there_are(app) {
        let t = app.tenant("Acme").await;
        let c = seed_catalogue(app, &t.key).await;
        ten_seats(app, &t.key, &c).await;
        for round in 0..3 {
            let e = entitle(app, &t.key, &c.customer_id, "TEN", 1).await;
            let attempts = (0..200).map(|n| {
                let code = e["activation_code"].clone();
                let (tenant, product) = (t.id.clone(), c.product_id.clone());
                async move { activate_patiently(app, &tenant, &product, &code, &format!("r{round}-device-{n}")).await }
            });
            let answers = join_all(attempts).await;
            let granted = answers.iter().filter(|a| a.status == StatusCode::OK).count();
            let refused = answers.iter().filter(|a| code(a) == "seat_limit_reached").count();
            assert_eq!((granted, refused), (10, 190), "round {round}");
            assert_eq!(entitlement(app, &t.key, &e["id"]).await["seats_used"], 10);
        }
    }
}

backend_test! {
    async fn concurrent_checkouts_and_usage_stay_within_their_limits(app) {
        let t = app.tenant("Acme").await;
        let c = seed_catalogue(app, &t.key).await;
        ten_seats(app, &t.key, &c).await;
        let e = entitle(app, &t.key, &c.customer_id, "TEN", 1).await;
        let mut secrets = Vec::new();
        for n in 0..10 {
            secrets.push(secret(&activate(app, &t.id, &c.product_id, &e["activation_code"], &format!("d{n}")).await));
        }
        for round in 0..2 {
            let checkouts = (0..200).map(|n| {
                let secret = secrets[n % 10].clone();
                async move { call(app, Method::POST, "/licensing/v1/activation/features/nodes/checkout", &secret, None).await.0 }
            });
            let answers = join_all(checkouts).await;
            let granted = answers.iter().filter(|a| a.status == StatusCode::OK).count();
            let exhausted = answers.iter().filter(|a| code(a) == "pool_exhausted").count();
            assert_eq!((granted, exhausted), (4, 196), "round {round}");
            let view = entitlement(app, &t.key, &e["id"]).await;
            assert_eq!(view["features"][1]["used"], 4);
            // Every holder returns what it holds, so the next round starts from an empty pool.
            for secret in &secrets {
                loop {
                    let (back, _) = call(app, Method::POST, "/licensing/v1/activation/features/nodes/return", secret, None).await;
                    if back.status != StatusCode::OK {
                        assert_eq!(code(&back), "nothing_checked_out");
                        break;
                    }
                }
            }
            assert_eq!(entitlement(app, &t.key, &e["id"]).await["features"][1]["used"], 0);
        }

        let uses = (0..200).map(|n| {
            let secret = secrets[n % 10].clone();
            async move {
                call(app, Method::POST, "/licensing/v1/activation/usage", &secret, Some(json!({"feature": "renders"}))).await.0
            }
        });
        let answers = join_all(uses).await;
        let granted = answers.iter().filter(|a| a.status == StatusCode::OK).count();
        let refused = answers.iter().filter(|a| code(a) == "usage_limit_reached").count();
        assert_eq!((granted, refused), (110, 90), "100 allowed plus 10 overdraft");
        let recorded = app.sql(&format!("UPDATE usage_records SET amount = amount WHERE entitlement_id = '{}'", e["id"].as_str().unwrap())).await.unwrap();
        assert_eq!(recorded, 110, "every use is recorded with its time");
        let renewed = app.act(Method::POST, &t.key, &format!("/api/v1/entitlements/{}/renew", e["id"].as_str().unwrap()), json!({})).await;
        assert_eq!(renewed["features"][2]["used"], 0, "renewal resets usage");
        let (again, _) = call(app, Method::POST, "/licensing/v1/activation/usage", &secrets[0], Some(json!({"feature": "renders", "amount": 5}))).await;
        assert_eq!(again.status, StatusCode::OK);
        assert_eq!(again.body["features"][2]["used"], 5);
    }
}

backend_test! {
    async fn features_are_checked_out_returned_and_freed_on_deactivation(app) {
        let t = app.tenant("Acme").await;
        let c = seed_catalogue(app, &t.key).await;
        let keys = app.keys(&t.id).await;
        let e = entitle(app, &t.key, &c.customer_id, "PRO-M", 1).await;
        let secret = secret(&activate(app, &t.id, &c.product_id, &e["activation_code"], "m").await);
        let checkout = "/licensing/v1/activation/features/nodes/checkout";
        let (three, _) = call(app, Method::POST, checkout, &secret, Some(json!({"count": 3}))).await;
        assert_eq!(three.status, StatusCode::OK, "{}", three.body);
        three.verify(&keys);
        let claims = LeaseClaims::verify(&three.token(), &keys, Utc::now().timestamp(), &c.product_id, "m").unwrap();
        let nodes = claims.feature("nodes").unwrap();
        assert_eq!((nodes.used, nodes.checked_out), (3, 3));
        let (two, _) = call(app, Method::POST, checkout, &secret, Some(json!({"count": 2}))).await;
        assert_eq!(code(&two), "pool_exhausted");
        let (back, _) = call(app, Method::POST, "/licensing/v1/activation/features/nodes/return", &secret, Some(json!({"count": 5}))).await;
        assert_eq!(code(&back), "nothing_checked_out");
        for (path, body) in [
            ("/licensing/v1/activation/features/export/checkout", None),
            ("/licensing/v1/activation/features/teleport/checkout", None),
            ("/licensing/v1/activation/usage", Some(json!({"feature": "nodes"}))),
        ] {
            let (refused, _) = call(app, Method::POST, path, &secret, body).await;
            assert_eq!((refused.status, code(&refused)), (StatusCode::FORBIDDEN, "feature_not_entitled"), "{path}");
        }
        let (bad, _) = call(app, Method::POST, checkout, &secret, Some(json!({"count": 0}))).await;
        assert_eq!(code(&bad), "invalid_request");

        call(app, Method::DELETE, "/licensing/v1/activation", &secret, None).await;
        let view = entitlement(app, &t.key, &e["id"]).await;
        assert_eq!(view["features"][1]["used"], 0, "deactivation returns every unit");
        assert_eq!(view["seats_used"], 0);
    }
}

backend_test! {
    async fn lapsed_concurrent_seats_are_reclaimed_by_the_next_activation(app) {
        let t = app.tenant("Acme").await;
        let c = seed_catalogue(app, &t.key).await;
        let e = entitle(app, &t.key, &c.customer_id, "BASIC-M", 1).await;
        let path = format!("/api/v1/entitlements/{}", e["id"].as_str().unwrap());
        app.act(Method::PATCH, &t.key, &path, json!({"concurrency_mode": "concurrent",
            "linger_period": {"unit": "hour", "count": 1}})).await;
        let first = activate(app, &t.id, &c.product_id, &e["activation_code"], "first").await;
        assert_eq!(first.status, StatusCode::OK);
        let lapse = |linger: &str| format!(
            "UPDATE activations SET lease_expires_at = {past}, linger_expires_at = {linger} WHERE id = '{id}'",
            past = (Utc::now() - Duration::minutes(5)).timestamp_millis(),
            id = first.body["activation_id"].as_str().unwrap());
        // The lease lapsed but the linger period has not: the seat stays taken.
        app.sql(&lapse(&(Utc::now() + Duration::minutes(30)).timestamp_millis().to_string())).await.unwrap();
        let refused = activate(app, &t.id, &c.product_id, &e["activation_code"], "second").await;
        assert_eq!(code(&refused), "seat_limit_reached");
        // Both over: the next activation takes the seat back in its own transaction.
        app.sql(&lapse(&(Utc::now() - Duration::minutes(1)).timestamp_millis().to_string())).await.unwrap();
        let second = activate(app, &t.id, &c.product_id, &e["activation_code"], "second").await;
        assert_eq!(second.status, StatusCode::OK, "{}", second.body);
        assert_eq!(entitlement(app, &t.key, &e["id"]).await["seats_used"], 1);
        let (late, _) = call(app, Method::POST, "/licensing/v1/activation/refresh", &secret(&first), None).await;
        assert_eq!((late.status, code(&late)), (StatusCode::CONFLICT, "lease_expired"));

        // Node-locked seats never lapse.
        let locked = entitle(app, &t.key, &c.customer_id, "BASIC-M", 1).await;
        let held = activate(app, &t.id, &c.product_id, &locked["activation_code"], "desk").await;
        app.sql(&format!("UPDATE activations SET lease_expires_at = 0, linger_expires_at = 0 WHERE id = '{}'",
            held.body["activation_id"].as_str().unwrap())).await.unwrap();
        let other = activate(app, &t.id, &c.product_id, &locked["activation_code"], "laptop").await;
        assert_eq!(code(&other), "seat_limit_reached");
        let (back, _) = call(app, Method::POST, "/licensing/v1/activation/refresh", &secret(&held), None).await;
        assert_eq!(back.status, StatusCode::OK, "a node-locked seat refreshes after its lease lapsed");
    }
}

backend_test! {
    async fn leases_end_with_the_grace_period_and_plans_start_on_first_activation(app) {
        let t = app.tenant("Acme").await;
        let c = seed_catalogue(app, &t.key).await;
        let keys = app.keys(&t.id).await;
        let e = entitle(app, &t.key, &c.customer_id, "PRO-M", 1).await;
        let path = format!("/api/v1/entitlements/{}", e["id"].as_str().unwrap());
        let expiry = Utc::now() + Duration::hours(2);
        app.act(Method::PATCH, &t.key, &path, json!({"expires_at": expiry.to_rfc3339(), "grace_period": {"unit": "hour", "count": 1}})).await;
        let answer = activate(app, &t.id, &c.product_id, &e["activation_code"], "m").await;
        let claims = LeaseClaims::verify(answer.body["lease_token"].as_str().unwrap(), &keys, Utc::now().timestamp(), &c.product_id, "m").unwrap();
        assert_eq!(claims.exp, (expiry + Duration::hours(1)).timestamp(), "never past expiry + grace");

        let plan = app.create(&t.key, "/api/v1/plans", json!({"product_id": c.product_id, "name": "Yearly from first use",
            "license_type": "subscription", "duration": {"unit": "year", "count": 1}, "start": "on_first_activation"})).await;
        let editions = app.fetch(&t.key, &format!("/api/v1/editions?product_id={}", c.product_id)).await;
        app.create(&t.key, "/api/v1/offerings", json!({"sku": "LATE", "name": "Late", "edition_id": editions["data"][0]["id"], "plan_id": plan["id"]})).await;
        let late = entitle(app, &t.key, &c.customer_id, "LATE", 1).await;
        assert_eq!(late["status"], "created");
        let before = Utc::now();
        let started = activate(app, &t.id, &c.product_id, &late["activation_code"], "m").await;
        assert_eq!(started.status, StatusCode::OK, "{}", started.body);
        let view = entitlement(app, &t.key, &late["id"]).await;
        assert_eq!(view["status"], "active");
        let starts = crate::helpers::time(&view["starts_at"]);
        assert!(starts >= before - Duration::seconds(1));
        assert_eq!(crate::helpers::time(&view["expires_at"]), starts.checked_add_months(chrono::Months::new(12)).unwrap());
    }
}

backend_test! {
    async fn end_users_activate_with_email_and_password(app) {
        let t = app.tenant("Acme").await;
        let c = seed_catalogue(app, &t.key).await;
        entitle(app, &t.key, &c.customer_id, "PRO-M", 1).await;
        let weak = app.patch(&t.key, &format!("/api/v1/end-users/{}", c.end_user_id), json!({"password": "short"})).await;
        assert_eq!(weak.body["error"]["code"], "weak_password");
        app.act(Method::PATCH, &t.key, &format!("/api/v1/end-users/{}", c.end_user_id), json!({"password": "correct horse battery"})).await;
        let attempt = |email: &str, password: &str| {
            json!({"tenant": t.id, "product": c.product_id, "email": email, "password": password, "seat_id": "peter", "nonce": nonce()})
        };
        let ok = app.licensing(Method::POST, "/licensing/v1/activate", None, "", Some(attempt("Peter@Initech.example", "correct horse battery"))).await;
        assert_eq!(ok.status, StatusCode::OK, "{}", ok.body);
        for (email, password) in [("peter@initech.example", "wrong horse battery"), ("nobody@initech.example", "correct horse battery")] {
            let refused = app.licensing(Method::POST, "/licensing/v1/activate", None, "", Some(attempt(email, password))).await;
            assert_eq!(code(&refused), "invalid_credential", "{email}");
        }
        let events = app.fetch(&t.key, &format!("/api/v1/events?object_id={}", c.end_user_id)).await;
        let summary = events["data"].as_array().unwrap().last().unwrap()["summary"].to_string();
        assert!(!summary.contains("horse"), "passwords never reach the log: {summary}");
    }
}

backend_test! {
    async fn guessing_codes_is_rate_limited_per_address(app) {
        let t = app.tenant("Acme").await;
        let c = seed_catalogue(app, &t.key).await;
        let e = entitle(app, &t.key, &c.customer_id, "PRO-M", 1).await;
        for n in 0..10 {
            let guess = activate(app, &t.id, &c.product_id, &json!(format!("GUESS-{n}")), "m").await;
            assert_eq!(code(&guess), "invalid_credential");
        }
        let limited = activate(app, &t.id, &c.product_id, &e["activation_code"], "m").await;
        assert_eq!((limited.status, code(&limited)), (StatusCode::TOO_MANY_REQUESTS, "rate_limited"));
        let wait: u64 = limited.retry_after.as_deref().expect("Retry-After").parse().unwrap();
        assert!((1..=60).contains(&wait));
        limited.verify(&app.keys(&t.id).await);
    }
}

backend_test! {
    async fn air_gapped_machines_activate_and_deactivate_with_files(app) {
        let t = app.tenant("Acme").await;
        let c = seed_catalogue(app, &t.key).await;
        let keys = app.keys(&t.id).await;
        let e = entitle(app, &t.key, &c.customer_id, "PRO-M", 1).await;
        let request = OfflineActivationRequest {
            tenant: t.id.clone(),
            product: c.product_id.clone(),
            activation_code: e["activation_code"].as_str().unwrap().to_owned(),
            seat_id: "lab-pc-7".into(),
            seat_name: Some("Lab PC 7".into()),
            nonce: nonce(),
        };
        let file = licence::write_request(ACTIVATION_REQUEST_LABEL, &request);
        let answer = app.licensing(Method::POST, "/licensing/v1/offline/activate", None, "", Some(json!({"request": file}))).await;
        assert_eq!(code(&answer), "offline_not_allowed", "the product has no offline lease period");

        let path = format!("/api/v1/entitlements/{}", e["id"].as_str().unwrap());
        app.act(Method::PATCH, &t.key, &path, json!({"offline_lease_period": {"unit": "day", "count": 30}})).await;
        let answer = app.licensing(Method::POST, "/licensing/v1/offline/activate", None, "", Some(json!({"request": file}))).await;
        assert_eq!(answer.status, StatusCode::OK, "{}", answer.body);
        answer.verify(&keys);
        let licence_file = answer.body["licence_file"].as_str().unwrap();
        assert!(licence_file.starts_with("-----BEGIN ENTITLE LICENCE FILE-----"));
        let now = Utc::now().timestamp();
        let claims = licence::verify_licence_file(licence_file, &keys, now, &c.product_id, "lab-pc-7").unwrap();
        assert!(claims.seat.offline);
        assert!((claims.exp - (now + 30 * 86_400)).abs() <= 2 || claims.exp <= claims.entitlement.grace_expires_at.unwrap());
        assert!(licence::verify_licence_file(licence_file, &keys, now, &c.product_id, "other-pc").is_err());
        assert_eq!(entitlement(app, &t.key, &e["id"]).await["seats_used"], 1);

        let deactivation = OfflineDeactivationRequest {
            tenant: t.id.clone(),
            activation_id: answer.body["activation_id"].as_str().unwrap().to_owned(),
            activation_secret: licence::read_licence_secret(licence_file).unwrap(),
            seat_id: "lab-pc-7".into(),
            nonce: nonce(),
        };
        let mut forged = deactivation.clone();
        forged.activation_secret = "eas_forged".into();
        let refused = app.licensing(Method::POST, "/licensing/v1/offline/deactivate", None, "",
            Some(json!({"request": licence::write_request(DEACTIVATION_REQUEST_LABEL, &forged)}))).await;
        assert_eq!(code(&refused), "invalid_activation");
        let done = app.licensing(Method::POST, "/licensing/v1/offline/deactivate", None, "",
            Some(json!({"request": licence::write_request(DEACTIVATION_REQUEST_LABEL, &deactivation)}))).await;
        assert_eq!(done.status, StatusCode::OK, "{}", done.body);
        done.verify(&keys);
        assert_eq!(entitlement(app, &t.key, &e["id"]).await["seats_used"], 0);
        let garbage = app.licensing(Method::POST, "/licensing/v1/offline/activate", None, "", Some(json!({"request": "hello"}))).await;
        assert_eq!(code(&garbage), "invalid_request");
    }
}

backend_test! {
    async fn vendors_list_and_revoke_seats(app) {
        let t = app.tenant("Acme").await;
        let c = seed_catalogue(app, &t.key).await;
        let e = entitle(app, &t.key, &c.customer_id, "PRO-M", 1).await;
        let a = activate(app, &t.id, &c.product_id, &e["activation_code"], "lost-laptop").await;
        let b = activate(app, &t.id, &c.product_id, &e["activation_code"], "desk").await;
        let list = format!("/api/v1/entitlements/{}/activations", e["id"].as_str().unwrap());
        let seats = app.fetch(&t.key, &list).await;
        assert_eq!(seats["data"].as_array().unwrap().len(), 2);
        assert_eq!(seats["data"][0]["seat_id"], "lost-laptop");
        assert_eq!(seats["data"][0]["status"], json!(null), "status is computed in views only");

        let id = a.body["activation_id"].as_str().unwrap();
        let support = app.create(&t.key, "/api/v1/api-keys", json!({"name": "Support", "role": "support"})).await;
        let revoked = app.act(Method::POST, support["secret"].as_str().unwrap(), &format!("/api/v1/activations/{id}/revoke"), json!({})).await;
        assert_eq!(revoked["deactivation_reason"], "revoked");
        assert_eq!(entitlement(app, &t.key, &e["id"]).await["seats_used"], 1);
        let (refused, _) = call(app, Method::POST, "/licensing/v1/activation/refresh", &secret(&a), None).await;
        assert_eq!(code(&refused), "invalid_activation");
        let (fine, _) = call(app, Method::POST, "/licensing/v1/activation/refresh", &secret(&b), None).await;
        assert_eq!(fine.status, StatusCode::OK);
        let live = app.fetch(&t.key, &format!("{list}?live=true")).await;
        assert_eq!(live["data"].as_array().unwrap().len(), 1);
        let events = app.fetch(&t.key, &format!("/api/v1/events?object_id={id}")).await;
        assert_eq!(events["data"][0]["action"], "activation.revoked");
    }
}
