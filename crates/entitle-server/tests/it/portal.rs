//! The end-user portal over HTTP: signing in three ways, what each person may see and do, CSRF,
//! sessions that end, and nobody reaching another customer's licences.

use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::time::Duration;

use crate::helpers::*;
use crate::mail::{buy, settled};

/// A browser-like client for one tenant's portal: keeps its cookies, follows no redirects.
pub(crate) struct Visitor<'a> {
    app: &'a TestApp,
    client: reqwest::Client,
    cookies: BTreeMap<String, String>,
    pub base: String,
}

pub(crate) struct Page {
    pub status: StatusCode,
    pub body: String,
    pub location: Option<String>,
    pub headers: reqwest::header::HeaderMap,
}

impl<'a> Visitor<'a> {
    pub fn new(app: &'a TestApp, tenant: &str) -> Visitor<'a> {
        Visitor {
            app,
            client: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .unwrap(),
            cookies: BTreeMap::new(),
            base: format!("/portal/{tenant}"),
        }
    }

    async fn send(&mut self, method: Method, path: &str, form: Option<&[(&str, &str)]>) -> Page {
        let mut request = self.client.request(method, format!("{}{path}", self.app.base));
        if !self.cookies.is_empty() {
            let cookie: Vec<String> = self.cookies.iter().map(|(k, v)| format!("{k}={v}")).collect();
            request = request.header("cookie", cookie.join("; "));
        }
        if let Some(form) = form {
            request = request
                .header("content-type", "application/x-www-form-urlencoded")
                .body(serde_urlencoded::to_string(form).unwrap());
        }
        let response = request.send().await.unwrap();
        for value in response.headers().get_all("set-cookie") {
            let text = value.to_str().unwrap();
            let (pair, attributes) = text.split_once(';').unwrap_or((text, ""));
            let (name, value) = pair.split_once('=').unwrap();
            if attributes.contains("Max-Age=0") {
                self.cookies.remove(name);
            } else {
                self.cookies.insert(name.to_owned(), value.to_owned());
            }
        }
        Page {
            status: response.status(),
            location: response
                .headers()
                .get("location")
                .map(|l| l.to_str().unwrap().to_owned()),
            headers: response.headers().clone(),
            body: response.text().await.unwrap(),
        }
    }

    pub async fn get(&mut self, path: &str) -> Page {
        self.send(Method::GET, path, None).await
    }

    pub async fn post(&mut self, path: &str, form: &[(&str, &str)]) -> Page {
        self.send(Method::POST, path, Some(form)).await
    }

    /// The hidden `csrf` field of the last form on a page.
    pub fn csrf(page: &Page) -> String {
        let at = page.body.rfind("name=\"csrf\" value=\"").expect("a form with a token");
        let rest = &page.body[at + 19..];
        rest[..rest.find('"').unwrap()].to_owned()
    }

    /// Signs in with an activation code through the sign-in form.
    pub async fn sign_in_with_code(&mut self, code: &str) -> Page {
        let form = self.get(&format!("{}/sign-in", self.base)).await;
        assert_eq!(form.status, StatusCode::OK);
        let csrf = Self::csrf(&form);
        let base = self.base.clone();
        self.post(&format!("{base}/sign-in/code"), &[("csrf", &csrf), ("code", code)])
            .await
    }

    pub fn session_cookie(&self) -> Option<String> {
        self.cookies.get("entitle_session").cloned()
    }

    pub fn set_session_cookie(&mut self, value: &str) {
        self.cookies.insert("entitle_session".into(), value.into());
    }
}

async fn activate_device(app: &TestApp, tenant: &str, product: &str, code: &str, seat: &str) -> String {
    let activated = app
        .licensing(
            Method::POST,
            "/licensing/v1/activate",
            None,
            &format!("nonce-{seat}-0001"),
            Some(
                json!({"tenant": tenant, "product": product, "activation_code": code, "seat_id": seat,
                        "seat_name": format!("{seat} laptop"), "nonce": format!("nonce-{seat}-0001")}),
            ),
        )
        .await;
    assert_eq!(activated.status, StatusCode::OK, "{}", activated.body);
    activated.body["activation_secret"].as_str().unwrap().to_owned()
}

backend_test! {
    async fn a_code_opens_that_licence_only_and_releasing_a_seat_signs_the_device_out(app) {
        let t = app.tenant("Acme").await;
        let c = seed_catalogue(app, &t.key).await;
        let mine = entitle(app, &t.key, &c.customer_id, "PRO-M", 1).await;
        let other_customer = app.create(&t.key, "/api/v1/customers", json!({"name": "Other"})).await;
        let theirs = entitle(app, &t.key, other_customer["id"].as_str().unwrap(), "PRO-M", 1).await;
        let code = mine["activation_code"].as_str().unwrap();
        let secret = activate_device(app, &t.id, &c.product_id, code, "dev-a").await;

        let mut visitor = Visitor::new(app, &t.id);
        let unsigned = visitor.get(&format!("/portal/{}/entitlements", t.id)).await;
        assert_eq!(unsigned.status, StatusCode::SEE_OTHER, "signed out: to the sign-in page");
        let wrong = visitor.sign_in_with_code("AAAA-BBBB-CCCC-DDDD-EEEE-FFFF").await;
        assert_eq!(wrong.status, StatusCode::UNAUTHORIZED);
        let signed = visitor.sign_in_with_code(code).await;
        assert_eq!(signed.status, StatusCode::SEE_OTHER, "{}", signed.body);
        let cookie = signed.headers.get("set-cookie").unwrap().to_str().unwrap().to_owned();
        assert!(cookie.contains("HttpOnly") && cookie.contains("SameSite=Lax"), "{cookie}");

        let list = visitor.get(&format!("/portal/{}/entitlements", t.id)).await;
        assert_eq!(list.status, StatusCode::OK);
        assert!(list.body.contains("Editor") && list.body.contains("Pro"), "names, not SKUs");
        assert!(list.body.contains(mine["id"].as_str().unwrap()));
        assert!(!list.body.contains(theirs["id"].as_str().unwrap()));
        assert_eq!(list.headers["cache-control"], "no-store");
        assert!(list.headers["content-security-policy"].to_str().unwrap().contains("frame-ancestors 'none'"));

        let page = visitor.get(&format!("/portal/{}/entitlements/{}", t.id, mine["id"].as_str().unwrap())).await;
        assert_eq!(page.status, StatusCode::OK);
        for expected in ["dev-a laptop", "dev-a", code, "1 of 5 in use", "renders", "Seats in use per day", "<svg",
                         "renders used per day"] {
            assert!(page.body.contains(expected), "{expected} missing");
        }
        // Another customer's licence by direct URL: as if it did not exist.
        let other = visitor.get(&format!("/portal/{}/entitlements/{}", t.id, theirs["id"].as_str().unwrap())).await;
        assert_eq!(other.status, StatusCode::NOT_FOUND);

        // Release the seat: the application's next refresh is refused.
        let activation = app.fetch(&t.key, &format!("/api/v1/entitlements/{}/activations", mine["id"].as_str().unwrap())).await;
        let activation_id = activation["data"][0]["id"].as_str().unwrap().to_owned();
        let csrf = Visitor::csrf(&page);
        let path = format!("/portal/{}/entitlements/{}/seats/{activation_id}/release", t.id, mine["id"].as_str().unwrap());
        let forged = visitor.post(&path, &[("csrf", "not-the-token")]).await;
        assert_eq!(forged.status, StatusCode::FORBIDDEN, "a post without the session's token changes nothing");
        let still = app.licensing(Method::POST, "/licensing/v1/activation/refresh", Some(&secret), "nonce-refresh-1", None).await;
        assert_eq!(still.status, StatusCode::OK);
        let released = visitor.post(&path, &[("csrf", &csrf)]).await;
        assert_eq!(released.status, StatusCode::SEE_OTHER);
        let refused = app.licensing(Method::POST, "/licensing/v1/activation/refresh", Some(&secret), "nonce-refresh-2", None).await;
        assert_eq!(refused.status, StatusCode::UNAUTHORIZED);
        assert_eq!(refused.body["error"]["code"], "invalid_activation");

        // The history as CSV.
        let csv = visitor.get(&format!("/portal/{}/entitlements/{}/activations.csv", t.id, mine["id"].as_str().unwrap())).await;
        assert_eq!(csv.status, StatusCode::OK);
        assert!(csv.headers["content-type"].to_str().unwrap().starts_with("text/csv"));
        assert!(csv.body.starts_with("time,action,seat_id"));
        assert!(csv.body.contains("\"activate\"") && csv.body.contains("\"dev-a\""), "{}", csv.body);

        // Signing out ends the session on the server: the old cookie no longer works.
        let session = visitor.session_cookie().unwrap();
        let list = visitor.get(&format!("/portal/{}/entitlements", t.id)).await;
        let out = visitor.post(&format!("/portal/{}/sign-out", t.id), &[("csrf", &Visitor::csrf(&list))]).await;
        assert_eq!(out.status, StatusCode::SEE_OTHER);
        let mut replay = Visitor::new(app, &t.id);
        replay.set_session_cookie(&session);
        assert_eq!(replay.get(&format!("/portal/{}/entitlements", t.id)).await.status, StatusCode::SEE_OTHER);
    }
}

backend_test! {
    async fn emailed_links_sign_in_once_and_expire(app) {
        let t = app.tenant("Acme").await;
        let c = seed_catalogue(app, &t.key).await;
        app.act(Method::PATCH, &t.key, &format!("/api/v1/customers/{}", c.customer_id), json!({"email": "ada@initech.example"})).await;
        app.create(&t.key, "/api/v1/end-users", json!({"customer_id": c.customer_id, "email": "ada@initech.example", "role": "admin"})).await;
        let mine = entitle(app, &t.key, &c.customer_id, "PRO-M", 1).await;

        let mut visitor = Visitor::new(app, &t.id);
        let form = visitor.get(&format!("/portal/{}/sign-in", t.id)).await;
        let csrf = Visitor::csrf(&form);
        // A post without the sign-in form's token is refused.
        let mut stranger = Visitor::new(app, &t.id);
        let forged = stranger.post(&format!("/portal/{}/sign-in/link", t.id), &[("csrf", "x"), ("email", "ada@initech.example")]).await;
        assert_eq!(forged.status, StatusCode::FORBIDDEN);
        // Unknown addresses get the same answer, and no mail.
        let unknown = visitor.post(&format!("/portal/{}/sign-in/link", t.id), &[("csrf", &csrf), ("email", "nobody@initech.example")]).await;
        let known = visitor.post(&format!("/portal/{}/sign-in/link", t.id), &[("csrf", &csrf), ("email", "ada@initech.example")]).await;
        assert_eq!(unknown.status, StatusCode::OK);
        assert_eq!(known.status, StatusCode::OK);
        assert_eq!(unknown.body, known.body, "nobody learns who has an account");

        let sent = settled(app, &t.key).await;
        let sign_in: Vec<&Value> = sent.iter().filter(|m| m["kind"] == "sign_in").collect();
        assert_eq!(sign_in.len(), 1);
        let file = app.data_dir.0.join("mail").join(format!("{}.eml", sign_in[0]["id"].as_str().unwrap()));
        let text = std::fs::read_to_string(file).unwrap().replace("=\r\n", "").replace("=3D", "=");
        let marker = format!("/portal/{}/sign-in/link/", t.id);
        let start = text.find(&marker).expect("a sign-in link") + marker.len();
        let token: String = text[start..].chars().take_while(|c| c.is_ascii_alphanumeric()).collect();
        let link = format!("/portal/{}/sign-in/link/{token}", t.id);

        // Opening the link (as a mail scanner would) uses nothing; the button does.
        let mut ada = Visitor::new(app, &t.id);
        let confirm = ada.get(&link).await;
        assert_eq!(confirm.status, StatusCode::OK);
        assert_eq!(confirm.headers["referrer-policy"], "no-referrer");
        let confirm_again = ada.get(&link).await;
        let signed = ada.post(&link, &[("csrf", &Visitor::csrf(&confirm_again))]).await;
        assert_eq!(signed.status, StatusCode::SEE_OTHER, "{}", signed.body);
        let list = ada.get(&format!("/portal/{}/entitlements", t.id)).await;
        assert!(list.body.contains(mine["id"].as_str().unwrap()), "the customer's admin sees its licences");
        // Used once: a second use is refused.
        let mut again = Visitor::new(app, &t.id);
        assert_eq!(again.get(&link).await.status, StatusCode::NOT_FOUND);

        // An expired link is refused.
        let form = visitor.get(&format!("/portal/{}/sign-in", t.id)).await;
        visitor.post(&format!("/portal/{}/sign-in/link", t.id), &[("csrf", &Visitor::csrf(&form)), ("email", "ada@initech.example")]).await;
        app.sql("UPDATE sign_in_links SET expires_at = 0 WHERE used_at IS NULL").await.unwrap();
        let sent = settled(app, &t.key).await;
        let newest = sent.iter().filter(|m| m["kind"] == "sign_in").count();
        assert_eq!(newest, 2);
        let mut late = Visitor::new(app, &t.id);
        // Any unused link is now expired; the page says so.
        let page = late.get(&format!("/portal/{}/sign-in/link/{}", t.id, "x".repeat(52))).await;
        assert_eq!(page.status, StatusCode::NOT_FOUND);
    }
}

backend_test! {
    async fn a_user_sees_only_their_own_seats_and_sessions_stay_in_their_tenant(app) {
        let t = app.tenant("Acme").await;
        let c = seed_catalogue(app, &t.key).await;
        app.act(Method::PATCH, &t.key, &format!("/api/v1/products/{}", c.product_id), json!({"account_based": true})).await;
        let e = buy(app, &t.key, &c.customer_id, "PRO-M", "boss@initech.example").await;
        settled(app, &t.key).await;
        let user = app.create(&t.key, "/api/v1/end-users", json!({"customer_id": c.customer_id, "email": "dev@initech.example", "role": "user"})).await;
        // Passwords through the service (the set-up link flow is tested elsewhere).
        for (id, password) in [(user["id"].as_str().unwrap().to_owned(), "dev password 1")] {
            let hash = entitle_server::domain::passwords::hash(password).unwrap();
            app.sql(&format!("UPDATE end_users SET password_hash = '{hash}' WHERE id = '{id}'")).await.unwrap();
        }
        // The user takes one seat with their account; someone else takes another with the code.
        let mine = app
            .licensing(Method::POST, "/licensing/v1/activate", None, "nonce-user-seat",
                Some(json!({"tenant": t.id, "product": c.product_id, "email": "dev@initech.example",
                            "password": "dev password 1", "seat_id": "dev-seat", "nonce": "nonce-user-seat"})))
            .await;
        assert_eq!(mine.status, StatusCode::OK, "{}", mine.body);
        activate_device(app, &t.id, &c.product_id, e["activation_code"].as_str().unwrap(), "other-seat").await;

        let mut dev = Visitor::new(app, &t.id);
        let form = dev.get(&format!("/portal/{}/sign-in", t.id)).await;
        let wrong = dev.post(&format!("/portal/{}/sign-in/password", t.id),
            &[("csrf", &Visitor::csrf(&form)), ("email", "dev@initech.example"), ("password", "not my password")]).await;
        assert_eq!(wrong.status, StatusCode::UNAUTHORIZED);
        let signed = dev.post(&format!("/portal/{}/sign-in/password", t.id),
            &[("csrf", &Visitor::csrf(&form)), ("email", "dev@initech.example"), ("password", "dev password 1")]).await;
        assert_eq!(signed.status, StatusCode::SEE_OTHER, "{}", signed.body);
        let page = dev.get(&format!("/portal/{}/entitlements/{}", t.id, e["id"].as_str().unwrap())).await;
        assert_eq!(page.status, StatusCode::OK);
        assert!(page.body.contains("dev-seat"));
        assert!(!page.body.contains("other-seat"), "a user sees only their own seats");
        assert!(!page.body.contains(e["activation_code"].as_str().unwrap()), "nor the code that takes more");
        // Releasing someone else's seat by a forged post: refused, the seat stays.
        let seats = app.fetch(&t.key, &format!("/api/v1/entitlements/{}/activations", e["id"].as_str().unwrap())).await;
        let other = seats["data"].as_array().unwrap().iter().find(|s| s["seat_id"] == "other-seat").unwrap();
        let path = format!("/portal/{}/entitlements/{}/seats/{}/release", t.id, e["id"].as_str().unwrap(), other["id"].as_str().unwrap());
        let refused = dev.post(&path, &[("csrf", &Visitor::csrf(&page))]).await;
        assert_eq!(refused.status, StatusCode::NOT_FOUND);
        let seats = app.fetch(&t.key, &format!("/api/v1/entitlements/{}/activations", e["id"].as_str().unwrap())).await;
        assert_eq!(seats["data"].as_array().unwrap().len(), 2);

        // The session does not open another tenant's portal.
        let b = app.tenant("Beta").await;
        let session = dev.session_cookie().unwrap();
        let mut elsewhere = Visitor::new(app, &b.id);
        elsewhere.set_session_cookie(&session);
        let page = elsewhere.get(&format!("/portal/{}/entitlements", b.id)).await;
        assert_eq!(page.status, StatusCode::SEE_OTHER);
        // And another session's token does not pass for this one's.
        let mut boss = Visitor::new(app, &t.id);
        boss.sign_in_with_code(e["activation_code"].as_str().unwrap()).await;
        let boss_page = boss.get(&format!("/portal/{}/entitlements/{}", t.id, e["id"].as_str().unwrap())).await;
        let boss_token = Visitor::csrf(&boss_page);
        let mine_id = seats["data"].as_array().unwrap().iter().find(|s| s["seat_id"] == "dev-seat").unwrap()["id"].clone();
        let path = format!("/portal/{}/entitlements/{}/seats/{}/release", t.id, e["id"].as_str().unwrap(), mine_id.as_str().unwrap());
        assert_eq!(dev.post(&path, &[("csrf", &boss_token)]).await.status, StatusCode::FORBIDDEN);
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

backend_test! {
    async fn the_credentials_mail_links_to_this_tenants_portal(app) {
        let t = app.tenant("Acme").await;
        let c = seed_catalogue(app, &t.key).await;
        buy(app, &t.key, &c.customer_id, "PRO-M", "buyer@initech.example").await;
        let sent = settled(app, &t.key).await;
        let file = app.data_dir.0.join("mail").join(format!("{}.eml", sent[0]["id"].as_str().unwrap()));
        let text = std::fs::read_to_string(file).unwrap().replace("=\r\n", "").replace("=3D", "=");
        let link = format!("{}/portal/{}", app.base, t.id);
        assert!(text.contains(&link), "{text}");
        let mut visitor = Visitor::new(app, &t.id);
        let landing = visitor.get(&format!("/portal/{}", t.id)).await;
        assert_eq!(landing.status, StatusCode::SEE_OTHER);
        assert_eq!(landing.location.as_deref(), Some(format!("/portal/{}/sign-in", t.id).as_str()));
        let sign_in = visitor.get(&format!("/portal/{}/sign-in", t.id)).await;
        assert_eq!(sign_in.status, StatusCode::OK);
        assert!(sign_in.body.contains("Activation code") && sign_in.body.contains("Acme"));
        assert_eq!(visitor.get("/portal/ten_nobody/sign-in").await.status, StatusCode::NOT_FOUND);
    }
}

backend_test! {
    async fn offline_machines_get_licence_files_from_the_portal(app) {
        use entitle_protocol::licence::{self, ACTIVATION_REQUEST_LABEL, DEACTIVATION_REQUEST_LABEL};
        use entitle_protocol::{OfflineActivationRequest, OfflineDeactivationRequest};
        let t = app.tenant("Acme").await;
        let c = seed_catalogue(app, &t.key).await;
        let e = entitle(app, &t.key, &c.customer_id, "PRO-M", 1).await;
        let id = e["id"].as_str().unwrap();
        app.act(Method::PATCH, &t.key, &format!("/api/v1/entitlements/{id}"),
            json!({"offline_lease_period": {"unit": "day", "count": 30}})).await;
        let code = e["activation_code"].as_str().unwrap();
        let mut visitor = Visitor::new(app, &t.id);
        visitor.sign_in_with_code(code).await;
        let page = visitor.get(&format!("/portal/{}/entitlements/{id}", t.id)).await;
        let csrf = Visitor::csrf(&page);

        // A request for another licence (a code this licence does not have) is refused.
        let foreign = licence::write_request(ACTIVATION_REQUEST_LABEL, &OfflineActivationRequest {
            tenant: t.id.clone(), product: c.product_id.clone(), activation_code: "AAAA-BBBB-CCCC-DDDD-EEEE-FFFF".into(),
            seat_id: "air-gapped-1".into(), seat_name: None, nonce: "nonce-offline-00".into(),
        });
        let path = format!("/portal/{}/entitlements/{id}/offline/activate", t.id);
        let refused = visitor.post(&path, &[("csrf", &csrf), ("request", &foreign)]).await;
        assert_eq!(refused.status, StatusCode::UNPROCESSABLE_ENTITY);

        let request = licence::write_request(ACTIVATION_REQUEST_LABEL, &OfflineActivationRequest {
            tenant: t.id.clone(), product: c.product_id.clone(), activation_code: code.into(),
            seat_id: "air-gapped-1".into(), seat_name: Some("Lab PC".into()), nonce: "nonce-offline-01".into(),
        });
        let file = visitor.post(&path, &[("csrf", &csrf), ("request", &request)]).await;
        assert_eq!(file.status, StatusCode::OK, "{}", file.body);
        assert!(file.headers["content-disposition"].to_str().unwrap().contains("licence.lic"));
        let keys = app.keys(&t.id).await;
        let now = chrono::Utc::now().timestamp();
        let claims = licence::verify_licence_file(&file.body, &keys, now, &c.product_id, "air-gapped-1")
            .expect("a licence file signed by the tenant");
        assert!(claims.seat.offline);
        let page = visitor.get(&format!("/portal/{}/entitlements/{id}", t.id)).await;
        assert!(page.body.contains("Lab PC"));

        // The machine gives its seat back with a deactivation request.
        let deactivation = licence::write_request(DEACTIVATION_REQUEST_LABEL, &OfflineDeactivationRequest {
            tenant: t.id.clone(), activation_id: claims.sub.clone(),
            activation_secret: licence::read_licence_secret(&file.body).unwrap(),
            seat_id: "air-gapped-1".into(), nonce: "nonce-offline-02".into(),
        });
        let freed = visitor.post(&format!("/portal/{}/entitlements/{id}/offline/deactivate", t.id),
            &[("csrf", &csrf), ("request", &deactivation)]).await;
        assert_eq!(freed.status, StatusCode::SEE_OTHER, "{}", freed.body);
        let page = visitor.get(&format!("/portal/{}/entitlements/{id}?done=deactivated", t.id)).await;
        assert!(!page.body.contains("Lab PC"));
        assert!(page.body.contains("seat is free again"));
    }
}
