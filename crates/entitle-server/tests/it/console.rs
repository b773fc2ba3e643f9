//! The admin console over HTTP: staff set a password from their link and sign in; support finds
//! a buyer and acts on the entitlement through the same services as the API; roles and tenants
//! hold on every page and post.

use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use crate::helpers::*;
use crate::mail::buy;
use crate::portal::Visitor;
use entitle_server::domain::staff::StaffRole;

async fn activate_seat(app: &TestApp, tenant: &str, product: &str, code: &str) {
    let activated = app
        .licensing(
            Method::POST,
            "/licensing/v1/activate",
            None,
            "nonce-dashboard-1",
            Some(
                json!({"tenant": tenant, "product": product, "activation_code": code, "seat_id": "dash-1",
                        "nonce": "nonce-dashboard-1"}),
            ),
        )
        .await;
    assert_eq!(activated.status, StatusCode::OK, "{}", activated.body);
}

/// A staff member of `tenant` with `role`, signed in through the console's forms.
pub(crate) async fn staff_visitor<'a>(app: &'a TestApp, tenant: &str, email: &str, role: StaffRole) -> Visitor<'a> {
    let (_, link) = entitle_server::services::staff::create(&app.store, &app.base, tenant, email, role)
        .await
        .unwrap();
    let path = link.strip_prefix(&app.base).unwrap().to_owned();
    let mut visitor = Visitor::new(app, tenant);
    visitor.base = format!("/admin/{tenant}");
    let form = visitor.get(&path).await;
    assert_eq!(form.status, StatusCode::OK, "{}", form.body);
    let token = path.split("token=").nth(1).unwrap().to_owned();
    let base = visitor.base.clone();
    let mismatch = visitor
        .post(
            &format!("{base}/set-password"),
            &[
                ("token", &token),
                ("password", "staff password 1"),
                ("confirm", "other password 1"),
            ],
        )
        .await;
    assert_eq!(mismatch.status, StatusCode::UNPROCESSABLE_ENTITY);
    let set = visitor
        .post(
            &format!("{base}/set-password"),
            &[
                ("token", &token),
                ("password", "staff password 1"),
                ("confirm", "staff password 1"),
            ],
        )
        .await;
    assert_eq!(set.status, StatusCode::OK);
    assert!(set.body.contains("Password set"));
    let again = visitor.get(&path).await;
    assert_eq!(again.status, StatusCode::NOT_FOUND, "the link works once");

    let sign_in = visitor.get(&format!("{base}/sign-in")).await;
    let csrf = Visitor::csrf(&sign_in);
    let wrong = visitor
        .post(
            &format!("{base}/sign-in"),
            &[("csrf", &csrf), ("email", email), ("password", "not the password")],
        )
        .await;
    assert_eq!(wrong.status, StatusCode::UNAUTHORIZED);
    let signed = visitor
        .post(
            &format!("{base}/sign-in"),
            &[("csrf", &csrf), ("email", email), ("password", "staff password 1")],
        )
        .await;
    assert_eq!(signed.status, StatusCode::SEE_OTHER, "{}", signed.body);
    visitor
}

backend_test! {
    async fn support_finds_a_buyer_and_acts_on_the_entitlement(app) {
        let t = app.tenant("Acme").await;
        let c = seed_catalogue(app, &t.key).await;
        let e = buy(app, &t.key, &c.customer_id, "PRO-M", "grace@navy.example").await;
        let id = e["id"].as_str().unwrap().to_owned();
        app.act(Method::PATCH, &t.key, &format!("/api/v1/customers/{}", c.customer_id), json!({"email": "grace@navy.example"})).await;
        let mut support = staff_visitor(app, &t.id, "sam@acme.example", StaffRole::Support).await;
        let base = support.base.clone();

        let dashboard = support.get(&base).await;
        assert_eq!(dashboard.status, StatusCode::OK);
        assert!(dashboard.body.contains("Dashboard") && dashboard.body.contains("Purchases"));
        assert!(dashboard.body.contains("No samples yet"));
        // The housekeeping worker's sample (taken here directly) feeds the seats chart.
        activate_seat(app, &t.id, &c.product_id, e["activation_code"].as_str().unwrap()).await;
        let sampled = entitle_server::services::console::sample_seats(&app.store, chrono::Utc::now()).await.unwrap();
        assert!(sampled >= 1);
        let dashboard = support.get(&base).await;
        assert!(dashboard.body.contains("<svg"), "the seats chart");
        let ctx = entitle_server::services::Ctx {
            tenant_id: t.id.clone(),
            actor: entitle_server::services::Actor::system(),
            now: chrono::Utc::now(),
        };
        let days = entitle_server::services::console::seats_over_time(&app.store, &ctx).await.unwrap();
        assert_eq!(days.last().unwrap().seats_end, 1, "one seat in use across the tenant");

        // One box finds the buyer by email, and the entitlement by its code.
        let found = support.get(&format!("{base}/search?q=grace%40navy.example")).await;
        let unescaped = |body: &str| body.replace("&#x2f;", "/");
        assert!(unescaped(&found.body).contains(&format!("{base}/customers/{}", c.customer_id)), "{}", found.body);
        let by_code = support.get(&format!("{base}/search?q={}", e["activation_code"].as_str().unwrap())).await;
        assert!(unescaped(&by_code.body).contains(&format!("{base}/entitlements/{id}")));
        let customer = support.get(&format!("{base}/customers/{}", c.customer_id)).await;
        assert!(customer.body.contains(&id));

        let page = support.get(&format!("{base}/entitlements/{id}")).await;
        assert_eq!(page.status, StatusCode::OK);
        assert!(page.body.contains("credentials"), "the mail sent for it");
        assert!(page.body.contains("entitlement.created"), "its history");
        let csrf = Visitor::csrf(&page);
        let before = app.fetch(&t.key, &format!("/api/v1/entitlements/{id}")).await;

        let renewed = support.post(&format!("{base}/entitlements/{id}/renew"), &[("csrf", &csrf)]).await;
        assert_eq!(renewed.status, StatusCode::SEE_OTHER);
        let overridden = support
            .post(&format!("{base}/entitlements/{id}/override"), &[("csrf", &csrf), ("seat_count", "12"), ("expires_on", "")])
            .await;
        assert_eq!(overridden.status, StatusCode::SEE_OTHER, "{}", overridden.body);
        let bad = support.post(&format!("{base}/entitlements/{id}/add-seats"), &[("csrf", &csrf), ("count", "0")]).await;
        assert_eq!(bad.status, StatusCode::UNPROCESSABLE_ENTITY);
        let after = app.fetch(&t.key, &format!("/api/v1/entitlements/{id}")).await;
        assert_eq!(after["seat_count"], 12);
        let limits = support
            .post(&format!("{base}/entitlements/{id}/override"), &[("csrf", &csrf), ("limit.renders", "250"), ("overdraft.renders", "10")])
            .await;
        assert_eq!(limits.status, StatusCode::SEE_OTHER, "{}", limits.body);
        let with_limit = app.fetch(&t.key, &format!("/api/v1/entitlements/{id}")).await;
        let renders = with_limit["features"].as_array().unwrap().iter().find(|f| f["key"] == "renders").unwrap().clone();
        assert_eq!(renders["limit"], 250);
        assert_eq!(renders["overridden"], true);
        assert!(time(&after["expires_at"]) > time(&before["expires_at"]), "renewed");
        let page = support.get(&format!("{base}/entitlements/{id}?done=override")).await;
        assert!(page.body.contains("overridden"));

        // The events name the staff member as the actor.
        let events = app.fetch(&t.key, &format!("/api/v1/events?object_id={id}")).await;
        let renew = events["data"].as_array().unwrap().iter().find(|ev| ev["action"] == "entitlement.renewed").unwrap();
        assert_eq!(renew["actor_kind"], "staff");

        // The buyer's portal shows the new seats.
        let mut buyer = Visitor::new(app, &t.id);
        buyer.sign_in_with_code(e["activation_code"].as_str().unwrap()).await;
        let portal = buyer.get(&format!("/portal/{}/entitlements/{id}", t.id)).await;
        assert!(portal.body.contains("1 of 12 in use"), "the portal sees the same live data");

        // Reset the override from the console.
        let reset = support.post(&format!("{base}/entitlements/{id}/reset"), &[("csrf", &csrf), ("field", "seat_count")]).await;
        assert_eq!(reset.status, StatusCode::SEE_OTHER);
        assert_eq!(app.fetch(&t.key, &format!("/api/v1/entitlements/{id}")).await["seat_count"], 5);
    }
}

backend_test! {
    async fn viewers_read_only_and_no_one_reaches_another_tenant(app) {
        let t = app.tenant("Acme").await;
        let c = seed_catalogue(app, &t.key).await;
        let e = entitle(app, &t.key, &c.customer_id, "PRO-M", 1).await;
        let id = e["id"].as_str().unwrap().to_owned();
        let mut viewer = staff_visitor(app, &t.id, "vic@acme.example", StaffRole::Viewer).await;
        let base = viewer.base.clone();
        let page = viewer.get(&format!("{base}/entitlements/{id}")).await;
        assert_eq!(page.status, StatusCode::OK);
        assert!(!page.body.contains("/renew\""), "a viewer is shown no actions");
        let csrf = Visitor::csrf(&page);
        let before = app.fetch(&t.key, &format!("/api/v1/entitlements/{id}")).await;
        for action in ["renew", "disable", "add-seats", "override", "reset", "resend"] {
            let forged = viewer
                .post(&format!("{base}/entitlements/{id}/{action}"), &[("csrf", &csrf), ("count", "3"), ("seat_count", "9")])
                .await;
            assert_eq!(forged.status, StatusCode::FORBIDDEN, "{action}");
        }
        let after = app.fetch(&t.key, &format!("/api/v1/entitlements/{id}")).await;
        assert_eq!(before, after, "nothing changed");

        // Another tenant's ids: not found; this tenant's session does not open the other console.
        let b = app.tenant("Beta").await;
        let cb = seed_catalogue(app, &b.key).await;
        let theirs = entitle(app, &b.key, &cb.customer_id, "PRO-M", 1).await;
        let theirs_id = theirs["id"].as_str().unwrap();
        assert_eq!(viewer.get(&format!("{base}/entitlements/{theirs_id}")).await.status, StatusCode::NOT_FOUND);
        assert_eq!(viewer.get(&format!("{base}/customers/{}", cb.customer_id)).await.status, StatusCode::NOT_FOUND);
        let mut admin = staff_visitor(app, &t.id, "ada@acme.example", StaffRole::Admin).await;
        let admin_page = admin.get(&format!("{base}/entitlements/{id}")).await;
        let admin_csrf = Visitor::csrf(&admin_page);
        let cross = admin.post(&format!("{base}/entitlements/{theirs_id}/disable"), &[("csrf", &admin_csrf)]).await;
        assert_eq!(cross.status, StatusCode::NOT_FOUND);
        assert_eq!(app.fetch(&b.key, &format!("/api/v1/entitlements/{theirs_id}")).await["status"], "active");
        let session = admin.session_cookie().unwrap();
        let mut elsewhere = Visitor::new(app, &b.id);
        elsewhere.base = format!("/admin/{}", b.id);
        elsewhere.set_session_cookie(&session);
        assert_eq!(elsewhere.get(&format!("/admin/{}", b.id)).await.status, StatusCode::SEE_OTHER);
        // A portal session is not a console session.
        let mut buyer = Visitor::new(app, &t.id);
        buyer.sign_in_with_code(e["activation_code"].as_str().unwrap()).await;
        let portal_session = buyer.session_cookie().unwrap();
        let mut intruder = Visitor::new(app, &t.id);
        intruder.set_session_cookie(&portal_session);
        assert_eq!(intruder.get(&base).await.status, StatusCode::SEE_OTHER);

        // Signing out ends the console session on the server.
        let out = admin.post(&format!("{base}/sign-out"), &[("csrf", &admin_csrf)]).await;
        assert_eq!(out.status, StatusCode::SEE_OTHER);
        let mut replay = Visitor::new(app, &t.id);
        replay.set_session_cookie(&session);
        assert_eq!(replay.get(&base).await.status, StatusCode::SEE_OTHER);
        let _: Value = json!(null);
    }
}

backend_test! {
    async fn end_users_are_added_by_admins_and_sent_sign_in_links_by_support(app) {
        let t = app.tenant("Acme").await;
        let c = seed_catalogue(app, &t.key).await;
        let mut admin = staff_visitor(app, &t.id, "ada@acme.example", StaffRole::Admin).await;
        let mut support = staff_visitor(app, &t.id, "sam@acme.example", StaffRole::Support).await;
        let base = admin.base.clone();
        let path = format!("{base}/customers/{}", c.customer_id);

        let page = support.get(&path).await;
        let support_csrf = Visitor::csrf(&page);
        let forged = support.post(&format!("{path}/end-users"), &[("csrf", &support_csrf), ("email", "x@initech.example"), ("role", "admin")]).await;
        assert_eq!(forged.status, StatusCode::FORBIDDEN, "support adds no end users");

        let page = admin.get(&path).await;
        let csrf = Visitor::csrf(&page);
        let added = admin.post(&format!("{path}/end-users"), &[("csrf", &csrf), ("email", "new.dev@initech.example"), ("role", "user")]).await;
        assert_eq!(added.status, StatusCode::SEE_OTHER, "{}", added.body);
        let users = app.fetch(&t.key, &format!("/api/v1/end-users?customer_id={}", c.customer_id)).await;
        let user = users["data"].as_array().unwrap().iter().find(|u| u["email"] == "new.dev@initech.example").unwrap().clone();
        assert_eq!(user["role"], "user");
        let uid = user["id"].as_str().unwrap();
        let role = admin.post(&format!("{path}/end-users/{uid}/role"), &[("csrf", &csrf), ("role", "admin")]).await;
        assert_eq!(role.status, StatusCode::SEE_OTHER);
        assert_eq!(app.fetch(&t.key, &format!("/api/v1/end-users/{uid}")).await["role"], "admin");

        let link = support.post(&format!("{path}/end-users/{uid}/sign-in-link"), &[("csrf", &support_csrf)]).await;
        assert_eq!(link.status, StatusCode::SEE_OTHER);
        let mails = app.fetch(&t.key, "/api/v1/mails").await;
        assert!(mails["data"].as_array().unwrap().iter().any(|m| m["kind"] == "sign_in" && m["recipient"] == "new.dev@initech.example"));

        // Another customer's end user through this customer's URL: not found.
        let other = app.create(&t.key, "/api/v1/customers", json!({"name": "Other"})).await;
        let other_user = app.create(&t.key, "/api/v1/end-users", json!({"customer_id": other["id"], "email": "o@other.example"})).await;
        let cross = admin.post(&format!("{path}/end-users/{}/role", other_user["id"].as_str().unwrap()), &[("csrf", &csrf), ("role", "admin")]).await;
        assert_eq!(cross.status, StatusCode::NOT_FOUND);
        assert_eq!(app.fetch(&t.key, &format!("/api/v1/end-users/{}", other_user["id"].as_str().unwrap())).await["role"], "user");
    }
}

/// The current code of a base32 TOTP secret.
fn current_code(secret: &str) -> String {
    code_at_offset(secret, 0)
}

backend_test! {
    async fn two_step_sign_in_asks_for_a_code_that_works_once(app) {
        let t = app.tenant("Acme").await;
        let mut ada = staff_visitor(app, &t.id, "ada@acme.example", StaffRole::Admin).await;
        let base = ada.base.clone();
        let account = ada.get(&format!("{base}/account")).await;
        assert!(account.body.contains("Off."));
        let csrf = Visitor::csrf(&account);
        let started = ada.post(&format!("{base}/account/second-factor/start"), &[("csrf", &csrf)]).await;
        assert_eq!(started.status, StatusCode::OK);
        let at = started.body.find("id=\"totp-secret\">").unwrap() + "id=\"totp-secret\">".len();
        let secret: String = started.body[at..].chars().take_while(|c| c.is_ascii_alphanumeric()).collect();
        assert_eq!(secret.len(), 32);
        let wrong = ada.post(&format!("{base}/account/second-factor/enable"), &[("csrf", &csrf), ("secret", &secret), ("code", "000000")]).await;
        assert_eq!(wrong.status, StatusCode::UNPROCESSABLE_ENTITY);
        let code = current_code(&secret);
        let on = ada.post(&format!("{base}/account/second-factor/enable"), &[("csrf", &csrf), ("secret", &secret), ("code", &code)]).await;
        assert_eq!(on.status, StatusCode::SEE_OTHER, "{}", on.body);
        assert!(ada.get(&format!("{base}/account")).await.body.contains("On:"));

        // Signing in now takes the password and then a code.
        let mut again = Visitor::new(app, &t.id);
        again.base = base.clone();
        let form = again.get(&format!("{base}/sign-in")).await;
        let pre = Visitor::csrf(&form);
        let step_one = again.post(&format!("{base}/sign-in"), &[("csrf", &pre), ("email", "ada@acme.example"), ("password", "staff password 1")]).await;
        assert_eq!(step_one.status, StatusCode::OK);
        assert!(step_one.body.contains("Enter your code"));
        assert!(again.session_cookie().is_none(), "no session before the code");
        assert_eq!(again.get(&base).await.status, StatusCode::SEE_OTHER, "the pending sign-in opens nothing");
        let bad = again.post(&format!("{base}/sign-in/code"), &[("csrf", &pre), ("code", "123456")]).await;
        assert_eq!(bad.status, StatusCode::UNAUTHORIZED);
        // The step used to turn it on is spent; the next step's code is accepted (one step of skew).
        let next = code_at_offset(&secret, 1);
        let step_two = again.post(&format!("{base}/sign-in/code"), &[("csrf", &pre), ("code", &next)]).await;
        assert_eq!(step_two.status, StatusCode::SEE_OTHER, "{}", step_two.body);
        let code = next;
        assert_eq!(again.get(&base).await.status, StatusCode::OK, "signed in");
        // A code works once: replaying it in a new sign-in is refused.
        let mut replay = Visitor::new(app, &t.id);
        replay.base = base.clone();
        let form = replay.get(&format!("{base}/sign-in")).await;
        let pre = Visitor::csrf(&form);
        replay.post(&format!("{base}/sign-in"), &[("csrf", &pre), ("email", "ada@acme.example"), ("password", "staff password 1")]).await;
        let replayed = replay.post(&format!("{base}/sign-in/code"), &[("csrf", &pre), ("code", &code)]).await;
        assert_eq!(replayed.status, StatusCode::UNAUTHORIZED);
    }
}

/// The code `offset` steps from now.
fn code_at_offset(secret: &str, offset: i64) -> String {
    use entitle_server::domain::totp;
    let bytes = totp::base32_decode(secret).unwrap();
    format!(
        "{:06}",
        totp::code_at_step(&bytes, totp::step_of(chrono::Utc::now().timestamp()) + offset)
    )
}
