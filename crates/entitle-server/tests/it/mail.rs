//! Credential delivery: the outbox, SMTP to a real sink on loopback, retries, restarts, templates,
//! password set-up links.

use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use std::time::Duration;

use crate::helpers::{backend_test, join_all, seed_catalogue, Backend, TestApp};
use crate::smtp::{closed_port, SmtpSink};

const PUBLIC_URL: &str = "https://licensing.example.com";

pub(crate) async fn buy(app: &TestApp, key: &str, customer_id: &str, sku: &str, to: &str) -> Value {
    app.create(
        key,
        "/api/v1/entitlements",
        json!({"customer_id": customer_id, "sku": sku, "send_credentials_to": to, "order_ref": "order-9"}),
    )
    .await
}

pub(crate) async fn mails(app: &TestApp, key: &str, query: &str) -> Vec<Value> {
    app.fetch(key, &format!("/api/v1/mails?limit=200{query}")).await["data"]
        .as_array()
        .unwrap()
        .clone()
}

/// Polls the outbox until every mail has left `queued`/`sending` or 20 s pass.
pub(crate) async fn settled(app: &TestApp, key: &str) -> Vec<Value> {
    for _ in 0..200 {
        let all = mails(app, key, "").await;
        if all.iter().all(|m| m["status"] == "sent" || m["status"] == "failed") {
            return all;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    mails(app, key, "").await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_buyer_receives_the_credentials_mail_over_smtp() {
    for backend in [Backend::Sqlite, Backend::Postgres] {
        let sink = SmtpSink::start().await;
        let Some(app) = TestApp::spawn_configured(backend, |c| {
            c.smtp_url = Some(sink.url());
            c.public_url = Some(PUBLIC_URL.into());
            c.mail_from = Some("licences@vendor.example".into());
        })
        .await
        else {
            continue;
        };
        let t = app.tenant("Acme Software").await;
        let c = seed_catalogue(&app, &t.key).await;
        app.act(
            Method::PATCH,
            &t.key,
            &format!("/api/v1/customers/{}", c.customer_id),
            json!({"name": "Initech <b>Ltd</b>"}),
        )
        .await;
        let e = buy(&app, &t.key, &c.customer_id, "PRO-M", "Buyer@Initech.example").await;
        let received = sink.wait_for(1).await;
        assert_eq!(received.len(), 1, "{backend:?}");
        let mail = &received[0];
        assert_eq!(mail.to, ["<buyer@initech.example>"]);
        assert_eq!(mail.from, "<licences@vendor.example>", "the envelope sender");
        assert!(
            mail.header("From").unwrap().contains("Acme Software"),
            "{:?}",
            mail.header("From")
        );
        assert!(mail.header("From").unwrap().contains("licences@vendor.example"));
        assert_eq!(
            mail.header("Subject").as_deref(),
            Some("Your Editor licence from Acme Software")
        );
        let listed = mails(&app, &t.key, &format!("&entitlement_id={}", e["id"].as_str().unwrap())).await;
        assert_eq!(listed.len(), 1);
        assert_eq!(
            mail.header("Message-ID").unwrap(),
            format!("<{}@licensing.example.com>", listed[0]["id"].as_str().unwrap()),
            "a stable Message-ID derived from the outbox id"
        );
        assert!(mail
            .header("Content-Type")
            .unwrap()
            .starts_with("multipart/alternative"));
        let body = mail.decoded();
        assert!(body.contains("Content-Type: text/plain") && body.contains("Content-Type: text/html"));
        let code = e["activation_code"].as_str().unwrap();
        assert_eq!(body.matches(code).count(), 2, "the code in both parts");
        assert!(body.contains("Seats: 5"));
        assert!(body.contains("Editor Pro (Monthly)"));
        assert!(body.contains("https://licensing.example.com/portal"));
        assert!(body.contains("Initech <b>Ltd</b>"), "plain text as written");
        assert!(
            body.contains("Initech &lt;b&gt;Ltd&lt;&#x2f;b&gt;"),
            "HTML escaped: no injected markup"
        );
        assert!(!body.contains("<b>Ltd</b></p>"));
        let status = settled(&app, &t.key).await;
        assert_eq!(status[0]["status"], "sent");
        assert_eq!(status[0]["attempts"], 1);
        assert!(
            status[0].get("text_body").is_none(),
            "listings leave the bodies (and codes) out"
        );

        // Another tenant's mails are not visible, and its data never reaches this tenant's mail.
        let other = app.tenant("Other Vendor").await;
        assert!(mails(&app, &other.key, "").await.is_empty());
        app.stop().await;
        sink.stop();
    }
}

backend_test! {
    async fn without_smtp_mails_are_written_as_files(app) {
        let t = app.tenant("Acme").await;
        let c = seed_catalogue(app, &t.key).await;
        let e = buy(app, &t.key, &c.customer_id, "BASIC-M", "buyer@initech.example").await;
        let sent = settled(app, &t.key).await;
        assert_eq!(sent[0]["status"], "sent");
        let file = app.data_dir.0.join("mail").join(format!("{}.eml", sent[0]["id"].as_str().unwrap()));
        let text = std::fs::read_to_string(&file).expect("the .eml file");
        assert!(text.replace("=\r\n", "").contains(e["activation_code"].as_str().unwrap()));
        assert!(text.contains("Subject: Your Editor licence from Acme"));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_smtp_outage_delays_mail_but_loses_and_duplicates_none() {
    for backend in [Backend::Sqlite, Backend::Postgres] {
        let port = closed_port().await;
        let Some(app) = TestApp::spawn_configured(backend, |c| {
            c.smtp_url = Some(format!("smtp://127.0.0.1:{port}"));
            c.mail_retry_base_ms = Some(100);
            c.mail_max_attempts = Some(100);
        })
        .await
        else {
            continue;
        };
        let t = app.tenant("Acme").await;
        let c = seed_catalogue(&app, &t.key).await;
        let buys = (0..6).map(|n| {
            let (key, customer) = (t.key.clone(), c.customer_id.clone());
            let app = &app;
            async move { buy(app, &key, &customer, "PRO-M", &format!("buyer{n}@initech.example")).await }
        });
        join_all(buys).await;
        tokio::time::sleep(Duration::from_millis(800)).await;
        let waiting = mails(&app, &t.key, "").await;
        assert_eq!(waiting.len(), 6);
        for mail in &waiting {
            assert_ne!(mail["status"], "sent");
            assert!(mail["attempts"].as_i64().unwrap() >= 1, "{mail}");
            assert!(mail["last_error"].is_string());
        }
        // The relay comes back: every mail arrives, once.
        let sink = SmtpSink::start_on(port).await;
        let received = sink.wait_for(6).await;
        tokio::time::sleep(Duration::from_millis(600)).await;
        let received_after = sink.received();
        assert_eq!(received_after.len(), 6, "{backend:?}: none lost, none twice");
        let mut recipients: Vec<_> = received.iter().map(|m| m.to[0].clone()).collect();
        recipients.sort();
        recipients.dedup();
        assert_eq!(recipients.len(), 6);
        assert!(settled(&app, &t.key).await.iter().all(|m| m["status"] == "sent"));
        app.stop().await;
        sink.stop();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mail_queued_before_a_restart_is_delivered_after_it() {
    for backend in [Backend::Sqlite, Backend::Postgres] {
        let port = closed_port().await;
        let down = format!("smtp://127.0.0.1:{port}");
        let Some(app) = TestApp::spawn_configured(backend, |c| {
            c.smtp_url = Some(down.clone());
            c.mail_retry_base_ms = Some(60_000);
        })
        .await
        else {
            continue;
        };
        let t = app.tenant("Acme").await;
        let c = seed_catalogue(&app, &t.key).await;
        for n in 0..3 {
            buy(
                &app,
                &t.key,
                &c.customer_id,
                "BASIC-M",
                &format!("b{n}@initech.example"),
            )
            .await;
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
        let sink = SmtpSink::start().await;
        let app = app
            .restart(|c| {
                c.smtp_url = Some(sink.url());
                c.mail_retry_base_ms = Some(60_000);
            })
            .await;
        // The first attempt failed before the restart and its retry is a minute away; a restart
        // must not wait for it: due mails, and mails claimed by the dead process, are picked up.
        sqlx_reset_retry(&app).await;
        assert_eq!(sink.wait_for(3).await.len(), 3, "{backend:?}");
        app.stop().await;
        sink.stop();
    }
}

/// Makes every queued mail due now (as if the retry delay had passed).
async fn sqlx_reset_retry(app: &TestApp) {
    app.sql("UPDATE mail_outbox SET next_attempt_at = 0 WHERE status = 'queued'")
        .await
        .unwrap();
    app.store.mail_queued();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn undeliverable_mail_is_marked_failed_after_the_configured_attempts() {
    let port = closed_port().await;
    let app = TestApp::spawn_configured(Backend::Sqlite, |c| {
        c.smtp_url = Some(format!("smtp://127.0.0.1:{port}"));
        c.mail_retry_base_ms = Some(50);
        c.mail_max_attempts = Some(3);
    })
    .await
    .unwrap();
    let t = app.tenant("Acme").await;
    let c = seed_catalogue(&app, &t.key).await;
    buy(&app, &t.key, &c.customer_id, "BASIC-M", "b@initech.example").await;
    let failed = settled(&app, &t.key).await;
    assert_eq!(failed[0]["status"], "failed");
    assert_eq!(failed[0]["attempts"], 3);
    assert!(failed[0]["last_error"].as_str().unwrap().len() > 3);
    let listed = mails(&app, &t.key, "&status=failed").await;
    assert_eq!(listed.len(), 1, "support finds failed mail");
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn several_instances_never_send_the_same_mail() {
    let sink = SmtpSink::start().await;
    let configure = |c: &mut entitle_server::config::ConfigLayer| {
        c.smtp_url = Some(sink.url());
        c.mail_poll_ms = Some(20);
    };
    let Some(first) = TestApp::spawn_configured(Backend::Postgres, configure).await else {
        eprintln!("ENTITLE_TEST_DATABASE_URL is not set: multi-instance mail test not run");
        return;
    };
    let second = first.another_instance(configure).await;
    let t = first.tenant("Acme").await;
    let c = seed_catalogue(&first, &t.key).await;
    let buys = (0..30).map(|n| {
        let (key, customer) = (t.key.clone(), c.customer_id.clone());
        let app = if n % 2 == 0 { &first } else { &second };
        async move { buy(app, &key, &customer, "BASIC-M", &format!("b{n}@initech.example")).await }
    });
    join_all(buys).await;
    sink.wait_for(30).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let received = sink.received();
    let mut ids: Vec<_> = received.iter().map(|m| m.header("Message-ID").unwrap()).collect();
    ids.sort();
    ids.dedup();
    assert_eq!((received.len(), ids.len()), (30, 30));
    second.stop().await;
    first.stop().await;
    sink.stop();
}

backend_test! {
    async fn account_based_products_mail_a_single_use_password_link(app) {
        let t = app.tenant("Acme").await;
        let c = seed_catalogue(app, &t.key).await;
        app.act(Method::PATCH, &t.key, &format!("/api/v1/products/{}", c.product_id), json!({"account_based": true})).await;
        let e = buy(app, &t.key, &c.customer_id, "PRO-M", "new.person@initech.example").await;
        let sent = settled(app, &t.key).await;
        let file = app.data_dir.0.join("mail").join(format!("{}.eml", sent[0]["id"].as_str().unwrap()));
        let text = std::fs::read_to_string(file).unwrap().replace("=\r\n", "").replace("=3D", "=");
        assert!(!text.contains(e["activation_code"].as_str().unwrap()), "no code for account-based licensing");
        let start = text.find("/portal/set-password?token=").expect("a set-up link");
        let token: String = text[start + 27..].chars().take_while(|c| c.is_ascii_alphanumeric()).collect();
        assert_eq!(token.len(), 52);

        let page = app.request(Method::GET, None, &format!("/portal/set-password?token={token}"), None).await;
        assert_eq!(page.status, StatusCode::OK);
        assert!(page.body.as_str().unwrap().contains("Choose your password"));
        assert_eq!(page.headers.get("cache-control").unwrap(), "no-store");
        let form = |password: &str, confirm: &str| format!("token={token}&password={password}&confirm={confirm}");
        let post = |body: String| {
            app.client
                .post(format!("{}/portal/set-password", app.base))
                .header("content-type", "application/x-www-form-urlencoded")
                .body(body)
                .send()
        };
        let mismatch = post(form("long+enough+pw", "different+pw+here")).await.unwrap();
        assert_eq!(mismatch.status(), StatusCode::UNPROCESSABLE_ENTITY);
        let done = post(form("long+enough+pw", "long+enough+pw")).await.unwrap();
        assert_eq!(done.status(), StatusCode::OK);
        let again = post(form("another+password", "another+password")).await.unwrap();
        assert_eq!(again.status(), StatusCode::NOT_FOUND, "the link works once");
        let bogus = app.request(Method::GET, None, "/portal/set-password?token=%22%3E%3Cscript%3E", None).await;
        assert_eq!(bogus.status, StatusCode::NOT_FOUND);

        // The new end user signs in to the application with the password.
        let activated = app.licensing(Method::POST, "/licensing/v1/activate", None, "", Some(json!({
            "tenant": t.id, "product": c.product_id, "email": "new.person@initech.example",
            "password": "long enough pw", "seat_id": "laptop", "nonce": "nonce-123456789"}))).await;
        assert_eq!(activated.status, StatusCode::OK, "{}", activated.body);
    }
}

backend_test! {
    async fn support_resends_credentials_and_tenants_set_their_templates(app) {
        let t = app.tenant("Acme").await;
        let c = seed_catalogue(app, &t.key).await;
        let e = crate::helpers::entitle(app, &t.key, &c.customer_id, "PRO-M", 1).await;
        let path = format!("/api/v1/entitlements/{}/resend-credentials", e["id"].as_str().unwrap());
        let bad = app.request(Method::PUT, Some(&t.key), "/api/v1/mail-templates", Some(json!({"kind": "credentials", "subject": "{% if %}"}))).await;
        assert_eq!(bad.status, StatusCode::UNPROCESSABLE_ENTITY);
        assert_eq!(bad.body["error"]["code"], "invalid_template");
        let template = json!({"kind": "credentials", "from_name": "Acme Licensing", "subject": "{{ tenant.name }} key for {{ customer.name }}"});
        let put = app.request(Method::PUT, Some(&t.key), "/api/v1/mail-templates", Some(template)).await;
        assert_eq!(put.status, StatusCode::OK, "{}", put.body);
        let listed = app.fetch(&t.key, "/api/v1/mail-templates").await;
        assert_eq!(listed["data"][0]["from_name"], "Acme Licensing");

        let resent = app.act(Method::POST, &t.key, &path, json!({})).await;
        assert_eq!(resent["recipient"], "it@initech.example", "the customer's address by default");
        assert!(resent["subject"].is_null(), "rendered by the mail worker, just before sending: {resent}");
        let to_other = app.act(Method::POST, &t.key, &path, json!({"to": "cto@initech.example"})).await;
        assert_eq!(to_other["recipient"], "cto@initech.example");
        for sent in settled(app, &t.key).await {
            assert_eq!(sent["status"], "sent");
            assert_eq!(sent["subject"], "Acme key for Initech");
            assert_eq!(sent["from_name"], "Acme Licensing");
        }
        let by_customer = mails(app, &t.key, &format!("&customer_id={}", c.customer_id)).await;
        assert_eq!(by_customer.len(), 2);
        let events = app.fetch(&t.key, "/api/v1/events?action=mail.queued").await;
        assert_eq!(events["data"].as_array().unwrap().len(), 2);
    }
}

/// The outbox columns that could hold a mail's secrets, for every mail of the database.
async fn kept_bodies(app: &TestApp) -> Vec<(String, String, String, Option<String>)> {
    use sqlx::Row;
    let mut conn = app.store.read().await.unwrap();
    sqlx::query("SELECT subject, text_body, html_body, render_context FROM mail_outbox ORDER BY id")
        .fetch_all(&mut *conn)
        .await
        .unwrap()
        .iter()
        .map(|row| (row.get(0), row.get(1), row.get(2), row.get(3)))
        .collect()
}

backend_test! {
    async fn secrets_leave_the_database_once_a_mail_is_sent_and_bodies_after_the_retention(app) {
        let t = app.tenant("Acme").await;
        let c = seed_catalogue(app, &t.key).await;
        let code_mail = buy(app, &t.key, &c.customer_id, "PRO-M", "buyer@initech.example").await;
        let code = code_mail["activation_code"].as_str().unwrap().to_owned();
        app.act(Method::PATCH, &t.key, &format!("/api/v1/products/{}", c.product_id), json!({"account_based": true})).await;
        buy(app, &t.key, &c.customer_id, "PRO-M", "new.person@initech.example").await;
        let queued = kept_bodies(app).await;
        assert!(queued.iter().any(|(_, _, _, context)| context.as_deref().is_some_and(|c| c.contains("set-password?token="))),
            "while queued, the inputs hold the link");

        let sent = settled(app, &t.key).await;
        assert!(sent.iter().all(|m| m["status"] == "sent"));
        let files: Vec<String> = sent.iter()
            .map(|m| std::fs::read_to_string(app.data_dir.0.join("mail").join(format!("{}.eml", m["id"].as_str().unwrap()))).unwrap())
            .map(|text| text.replace("=\r\n", "").replace("=3D", "="))
            .collect();
        assert!(files.iter().any(|text| text.contains(&code)), "the buyer got the code");
        let link = files.iter().find_map(|text| {
            let start = text.find("set-password?token=")? + 19;
            Some(text[start..].chars().take_while(|c| c.is_ascii_alphanumeric()).collect::<String>())
        }).expect("the set-up link was sent");

        let kept = kept_bodies(app).await;
        assert_eq!(kept.len(), 2);
        for (subject, text, html, context) in &kept {
            assert!(context.is_none(), "no template inputs once sent");
            for part in [subject, text, html] {
                assert!(!part.contains(&code) && !part.contains(&link), "a secret kept: {part}");
            }
            assert!(text.contains("[removed]") && html.contains("[removed]"), "{text}");
            assert!(text.contains("Editor"), "the rest of the mail is kept for support: {text}");
        }

        // Past the retention, the bodies go too (the housekeeping round does this every minute).
        entitle_server::services::mail::purge_bodies(&app.store, chrono::Utc::now()).await.unwrap();
        assert_eq!(kept_bodies(app).await.iter().filter(|(_, text, _, _)| text.is_empty()).count(), 0, "not yet");
        let later = chrono::Utc::now() + chrono::Duration::days(31);
        let purged = entitle_server::services::mail::purge_bodies(&app.store, later).await.unwrap();
        assert_eq!(purged, 2);
        for (_, text, html, _) in kept_bodies(app).await {
            assert!(text.is_empty() && html.is_empty());
        }
        assert_eq!(mails(app, &t.key, "&status=sent").await.len(), 2, "the records stay");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mail_goes_out_over_several_connections_at_once() {
    // Each message takes the relay 100 ms to accept: one connection at a time would need 2.4 s.
    let sink = SmtpSink::start_with(
        0,
        crate::smtp::SinkOptions {
            accept_delay: Duration::from_millis(100),
            ..Default::default()
        },
    )
    .await;
    let app = TestApp::spawn_configured(Backend::Sqlite, |c| {
        c.smtp_url = Some(sink.url());
        c.mail_concurrency = Some(8);
        c.metrics_listen = Some("127.0.0.1:0".parse().unwrap());
    })
    .await
    .unwrap();
    let sent_so_far = || async {
        let base = app.metrics_base.as_deref().unwrap();
        let text = app
            .client
            .get(format!("{base}/metrics"))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        text.lines()
            .find_map(|line| line.strip_prefix(r#"entitle_mail_sends_total{outcome="sent"} "#))
            .map_or(0.0, |value| value.parse::<f64>().unwrap())
    };
    let before = sent_so_far().await;
    let t = app.tenant("Acme").await;
    let c = seed_catalogue(&app, &t.key).await;
    let buys = (0..24).map(|n| {
        let (key, customer) = (t.key.clone(), c.customer_id.clone());
        let app = &app;
        async move { buy(app, &key, &customer, "BASIC-M", &format!("b{n}@initech.example")).await }
    });
    join_all(buys).await;
    let started = std::time::Instant::now();
    let received = sink.wait_for(24).await;
    assert_eq!(received.len(), 24);
    let elapsed = started.elapsed();
    assert!(
        elapsed < Duration::from_millis(1500),
        "sent in parallel lanes: {elapsed:?}"
    );
    let sent = settled(&app, &t.key).await;
    assert!(
        sent.iter().all(|m| m["status"] == "sent" && m["attempts"] == 1),
        "{sent:?}"
    );
    // The metrics recorder is shared by every test in this process: at least ours were counted.
    assert!(sent_so_far().await >= before + 24.0, "sends counted by outcome");
    app.stop().await;
    sink.stop();
}
