//! Usage over time: the per-day rollup kept by activations, deactivations, revocations,
//! reclaimed concurrent seats, offline seats, seat count changes and usage records, read back
//! through the service (with chosen times) and the real endpoint.

use chrono::{DateTime, Duration, NaiveDate, Utc};
use entitle_protocol::{ActivateRequest, OfflineDeactivationRequest};
use entitle_server::domain::usage::{DayRange, SeatDay};
use entitle_server::services::licensing::{self, Mode, Origin};
use entitle_server::services::usage::{self, EntitlementUsage};
use entitle_server::services::{Actor, Ctx};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use crate::helpers::{backend_test, entitle, join_all, seed_catalogue, TestApp};

fn nonce() -> String {
    entitle_server::domain::ids::random_token(12)
}

fn origin(now: DateTime<Utc>) -> Origin {
    Origin { ip: None, now }
}

fn ctx(tenant_id: &str, now: DateTime<Utc>) -> Ctx {
    Ctx {
        tenant_id: tenant_id.to_owned(),
        actor: Actor::system(),
        now,
    }
}

/// The start of the UTC day `days` after today.
fn day_start(days: i64) -> DateTime<Utc> {
    let today = Utc::now().date_naive() + Duration::days(days);
    today.and_hms_opt(0, 0, 0).unwrap().and_utc()
}

fn day(days: i64) -> NaiveDate {
    day_start(days).date_naive()
}

struct Seat {
    activation_id: String,
    secret: String,
}

async fn take(
    app: &TestApp,
    tenant: &str,
    product: &str,
    code: &Value,
    seat: &str,
    mode: Mode,
    at: DateTime<Utc>,
) -> Seat {
    let request = ActivateRequest {
        tenant: tenant.to_owned(),
        product: product.to_owned(),
        activation_code: code.as_str().map(str::to_owned),
        email: None,
        password: None,
        seat_id: seat.to_owned(),
        seat_name: None,
        nonce: nonce(),
    };
    let activated = licensing::activate(&app.store, &request, mode, &origin(at))
        .await
        .unwrap_or_else(|e| panic!("activate {seat}: {e}"));
    Seat {
        activation_id: activated.activation_id,
        secret: activated.secret,
    }
}

async fn read(app: &TestApp, tenant: &str, id: &str, range: DayRange, now: DateTime<Utc>) -> EntitlementUsage {
    usage::over_time(&app.store, &ctx(tenant, now), id, range)
        .await
        .unwrap()
}

/// (min, max, end) per day.
fn seats(series: &[SeatDay]) -> Vec<(i64, i64, i64)> {
    series.iter().map(|d| (d.seats_min, d.seats_max, d.seats_end)).collect()
}

backend_test! {
    async fn seats_and_use_per_day_follow_every_change(app) {
        let t = app.tenant("Acme").await;
        let c = seed_catalogue(app, &t.key).await;
        // 5 seats and 2 overdraft seats; renders: 100 and 10 overdraft.
        let e = entitle(app, &t.key, &c.customer_id, "PRO-M", 1).await;
        let id = e["id"].as_str().unwrap();
        let path = format!("/api/v1/entitlements/{id}");
        app.act(Method::PATCH, &t.key, &path, json!({"offline_lease_period": {"unit": "day", "count": 30}})).await;
        let code = &e["activation_code"];
        let hour = |d: i64, h: i64| day_start(d) + Duration::hours(h);

        // Day 1: three seats, one deactivated, usage twice.
        let a = take(app, &t.id, &c.product_id, code, "a", Mode::Online, hour(1, 9)).await;
        let b = take(app, &t.id, &c.product_id, code, "b", Mode::Online, hour(1, 10)).await;
        take(app, &t.id, &c.product_id, code, "c", Mode::Online, hour(1, 11)).await;
        licensing::deactivate(&app.store, &b.secret, &nonce(), &origin(hour(1, 12))).await.unwrap();
        for amount in [3, 4] {
            licensing::record_usage(&app.store, &a.secret, "renders", amount, &nonce(), &origin(hour(1, 13))).await.unwrap();
        }
        // The same device again keeps its seat: no change.
        take(app, &t.id, &c.product_id, code, "a", Mode::Online, hour(1, 14)).await;
        // Day 2: nothing. Day 3: an offline seat comes and goes, one seat comes, one is revoked.
        let offline = take(app, &t.id, &c.product_id, code, "o", Mode::Offline, hour(3, 8)).await;
        let request = OfflineDeactivationRequest {
            tenant: t.id.clone(),
            activation_id: offline.activation_id.clone(),
            activation_secret: offline.secret.clone(),
            seat_id: "o".into(),
            nonce: nonce(),
        };
        licensing::offline_deactivate(&app.store, &request, &origin(hour(3, 9))).await.unwrap();
        take(app, &t.id, &c.product_id, code, "d", Mode::Online, hour(3, 10)).await;
        licensing::revoke(&app.store, &ctx(&t.id, hour(3, 11)), &a.activation_id).await.unwrap();
        // A seat that has ended records nothing.
        let refused = licensing::record_usage(&app.store, &b.secret, "renders", 1, &nonce(), &origin(hour(3, 12))).await;
        assert!(refused.is_err());
        let sole = take(app, &t.id, &c.product_id, code, "e", Mode::Online, hour(3, 12)).await;
        licensing::record_usage(&app.store, &sole.secret, "renders", 5, &nonce(), &origin(hour(3, 13))).await.unwrap();
        licensing::deactivate(&app.store, &sole.secret, &nonce(), &origin(hour(3, 14))).await.unwrap();

        // Asked from yesterday to day 5 on day 4: the answer starts at creation (today) and
        // ends on day 4.
        let range = DayRange { from: day(-1), to: day(5) };
        let u = read(app, &t.id, id, range, hour(4, 12)).await;
        assert_eq!((u.from, u.to, u.bucket.as_str()), (day(0), day(4), "day"));
        assert_eq!(u.seats.iter().map(|d| d.day).collect::<Vec<_>>(), (0..=4).map(day).collect::<Vec<_>>());
        assert_eq!(seats(&u.seats), [
            (0, 0, 0),
            (0, 3, 2), // a, b, c; b leaves
            (2, 2, 2), // carried forward
            (2, 3, 2), // o comes and goes, d comes, a is revoked, e comes and goes
            (2, 2, 2),
        ]);
        assert!(u.seats.iter().all(|d| d.licensed == 5 && d.overdraft == Some(2)), "{:?}", u.seats);
        let view = app.fetch(&t.key, &path).await;
        assert_eq!(view["seats_used"], u.seats[4].seats_end, "the chart agrees with the entitlement");
        let renders = u.features.iter().find(|f| f.key.as_str() == "renders").expect("renders is metered");
        assert_eq!(renders.days.iter().map(|d| d.used).collect::<Vec<_>>(), [0, 7, 0, 5, 0]);
        assert_eq!((renders.limit, renders.overdraft, renders.used), (Some(100), 10, 12));
        assert_eq!(u.features.len(), 1, "only metered features: {:?}", u.features);

        // A range inside the history carries the last earlier day's end; one before creation
        // is empty.
        let u = read(app, &t.id, id, DayRange { from: day(2), to: day(2) }, hour(4, 12)).await;
        assert_eq!(seats(&u.seats), [(2, 2, 2)]);
        let u = read(app, &t.id, id, DayRange { from: day(-9), to: day(-2) }, hour(4, 12)).await;
        assert!(u.seats.is_empty() && u.features[0].days.is_empty());

        // Another tenant does not see it.
        let other = app.tenant("Other").await;
        let refused = usage::over_time(&app.store, &ctx(&other.id, hour(4, 12)), id, range).await;
        assert!(matches!(refused, Err(entitle_server::services::ServiceError::NotFound(_))));
    }
}

backend_test! {
    async fn a_lapsed_concurrent_seat_counts_until_it_is_reclaimed(app) {
        let t = app.tenant("Acme").await;
        let c = seed_catalogue(app, &t.key).await;
        // One seat, no overdraft.
        let e = entitle(app, &t.key, &c.customer_id, "BASIC-M", 1).await;
        let id = e["id"].as_str().unwrap();
        let path = format!("/api/v1/entitlements/{id}");
        app.act(Method::PATCH, &t.key, &path, json!({"concurrency_mode": "concurrent",
            "lease_period": {"unit": "hour", "count": 1}, "linger_period": {"unit": "hour", "count": 1}})).await;
        let code = &e["activation_code"];
        take(app, &t.id, &c.product_id, code, "first", Mode::Online, day_start(1) + Duration::hours(9)).await;
        // On day 3 the first seat's lease and linger are long over: the second takes its seat.
        take(app, &t.id, &c.product_id, code, "second", Mode::Online, day_start(3) + Duration::hours(9)).await;
        let u = read(app, &t.id, id, DayRange { from: day(0), to: day(3) }, day_start(3) + Duration::hours(10)).await;
        // Day 2: the lapsed seat still counts (as `seats_used` does); day 3: reclaiming and taking
        // happen in one transaction, so the count never shows 0.
        assert_eq!(seats(&u.seats), [(0, 0, 0), (0, 1, 1), (1, 1, 1), (1, 1, 1)]);
        assert!(u.seats.iter().all(|d| d.licensed == 1 && d.overdraft == Some(0)));
        assert_eq!(app.fetch(&t.key, &path).await["seats_used"], 1);

        // Unlimited overdraft from today (the terms change writes today's row), then a second
        // seat beyond the seat count on day 3 (while the second's lease runs).
        app.act(Method::PATCH, &t.key, &path, json!({"overdraft": {"kind": "unlimited"}})).await;
        take(app, &t.id, &c.product_id, code, "third", Mode::Online, day_start(3) + Duration::minutes(9 * 60 + 30)).await;
        let u = read(app, &t.id, id, DayRange { from: day(0), to: day(3) }, day_start(3) + Duration::hours(12)).await;
        let overdraft: Vec<Option<i64>> = u.seats.iter().map(|d| d.overdraft).collect();
        assert_eq!(overdraft, [None, Some(0), Some(0), None]);
        assert_eq!(seats(&u.seats)[3], (1, 2, 2));
    }
}

async fn activate_http(app: &TestApp, tenant: &str, product: &str, code: &Value, seat: &str) -> String {
    let body =
        json!({"tenant": tenant, "product": product, "activation_code": code, "seat_id": seat, "nonce": nonce()});
    let answer = app
        .licensing(Method::POST, "/licensing/v1/activate", None, "", Some(body))
        .await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.body);
    answer.body["activation_secret"].as_str().unwrap().to_owned()
}

backend_test! {
    async fn the_usage_endpoint_answers_today_validates_and_isolates_tenants(app) {
        let t = app.tenant("Acme").await;
        let c = seed_catalogue(app, &t.key).await;
        let e = entitle(app, &t.key, &c.customer_id, "PRO-M", 1).await;
        let id = e["id"].as_str().unwrap();
        let usage_path = format!("/api/v1/entitlements/{id}/usage");
        let mut secrets = Vec::new();
        for seat in ["m1", "m2", "m3"] {
            secrets.push(activate_http(app, &t.id, &c.product_id, &e["activation_code"], seat).await);
        }
        let deactivated = app.licensing(Method::DELETE, "/licensing/v1/activation", Some(&secrets[2]), &nonce(), None).await;
        assert_eq!(deactivated.status, StatusCode::OK, "{}", deactivated.body);
        for amount in [2, 9] {
            let used = app.licensing(Method::POST, "/licensing/v1/activation/usage", Some(&secrets[0]), &nonce(),
                Some(json!({"feature": "renders", "amount": amount}))).await;
            assert_eq!(used.status, StatusCode::OK, "{}", used.body);
        }
        // More seats: today's licensed count follows.
        app.act(Method::POST, &t.key, &format!("/api/v1/entitlements/{id}/add-seats"), json!({"count": 2})).await;

        let today = Utc::now().date_naive().to_string();
        let u = app.fetch(&t.key, &usage_path).await;
        assert_eq!((u["from"].as_str(), u["to"].as_str(), u["bucket"].as_str()), (Some(&*today), Some(&*today), Some("day")));
        assert_eq!(u["seats"], json!([{"day": today, "seats_min": 0, "seats_max": 3, "seats_end": 2,
                                       "licensed": 7, "overdraft": 2}]));
        let renders = u["features"].as_array().unwrap().iter().find(|f| f["key"] == "renders").unwrap();
        assert_eq!(renders["days"], json!([{"day": today, "used": 11}]));
        assert_eq!((renders["limit"].as_i64(), renders["overdraft"].as_i64()), (Some(100), Some(10)));
        let explicit = app.fetch(&t.key, &format!("{usage_path}?from=2000-01-01&to=2000-12-31&bucket=day")).await;
        assert_eq!(explicit["seats"], json!([]), "before the entitlement existed");
        assert_eq!((explicit["from"].as_str(), explicit["to"].as_str()), (Some("2000-01-01"), Some("2000-12-31")));
        // 366 days is the most.
        app.fetch(&t.key, &format!("{usage_path}?from=2023-01-01&to=2024-01-01")).await;

        // Support keys read it too (Read permission).
        let support = app.create(&t.key, "/api/v1/api-keys", json!({"name": "support", "role": "support"})).await;
        let support_key = support["secret"].as_str().unwrap();
        assert_eq!(app.get(support_key, &usage_path).await.status, StatusCode::OK);

        for (query, code) in [
            ("bucket=week", "invalid_bucket"),
            ("from=2024-02-30", "invalid_date"),
            ("to=tomorrow", "invalid_date"),
            ("from=2024-03-02&to=2024-03-01", "invalid_range"),
            ("from=2023-01-01&to=2024-01-02", "invalid_range"),
        ] {
            let refused = app.get(&t.key, &format!("{usage_path}?{query}")).await;
            assert_eq!(refused.status, StatusCode::UNPROCESSABLE_ENTITY, "{query}: {}", refused.body);
            assert_eq!(refused.body["error"]["code"], code, "{query}");
        }
        let other = app.tenant("Other").await;
        let hidden = app.get(&other.key, &usage_path).await;
        assert_eq!(hidden.status, StatusCode::NOT_FOUND, "{}", hidden.body);
        assert_eq!(app.get(&t.key, "/api/v1/entitlements/ent_missing/usage").await.status, StatusCode::NOT_FOUND);

        // Described in the OpenAPI document.
        let doc = app.request(Method::GET, None, "/api/v1/openapi.json", None).await.body;
        let operation = &doc["paths"]["/api/v1/entitlements/{id}/usage"]["get"];
        assert_eq!(operation["operationId"], "entitlement_usage");
        let params: Vec<&str> = operation["parameters"].as_array().unwrap().iter().filter_map(|p| p["name"].as_str()).collect();
        assert_eq!(params, ["id", "from", "to", "bucket"]);
    }
}

backend_test! {
    async fn concurrent_seat_changes_leave_the_day_exact(app) {
        let t = app.tenant("Acme").await;
        let c = seed_catalogue(app, &t.key).await;
        // 5 seats, no overdraft: of 8 devices at once, 5 get one.
        let e = entitle(app, &t.key, &c.customer_id, "PRO-P", 1).await;
        let id = e["id"].as_str().unwrap();
        let seats: Vec<String> = (0..8).map(|i| format!("device-{i}")).collect();
        let answers = join_all(seats.iter().map(|seat| {
            let body = json!({"tenant": t.id, "product": c.product_id, "activation_code": e["activation_code"],
                              "seat_id": seat, "nonce": nonce()});
            app.licensing(Method::POST, "/licensing/v1/activate", None, "", Some(body))
        })).await;
        let secrets: Vec<String> = answers.iter().filter(|a| a.status == StatusCode::OK)
            .map(|a| a.body["activation_secret"].as_str().unwrap().to_owned()).collect();
        assert_eq!(secrets.len(), 5);
        // Four leave at once.
        let nonces: Vec<String> = (0..4).map(|_| nonce()).collect();
        let left = join_all(secrets.iter().zip(&nonces).map(|(secret, nonce)| {
            app.licensing(Method::DELETE, "/licensing/v1/activation", Some(secret), nonce, None)
        })).await;
        assert!(left.iter().all(|a| a.status == StatusCode::OK));
        let u = app.fetch(&t.key, &format!("/api/v1/entitlements/{id}/usage")).await;
        let today = u["seats"].as_array().unwrap().last().unwrap().clone();
        assert_eq!((&today["seats_min"], &today["seats_max"], &today["seats_end"]), (&json!(0), &json!(5), &json!(1)));
        assert_eq!(app.fetch(&t.key, &format!("/api/v1/entitlements/{id}")).await["seats_used"], 1);
    }
}
