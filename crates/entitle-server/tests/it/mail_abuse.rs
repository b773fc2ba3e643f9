//! Mail against abuse by a tenant: templates that cost too much to render, sender addresses that
//! are not the operator's, and the template API answering what its OpenAPI document says.

use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use std::time::{Duration, Instant};

use crate::helpers::{backend_test, seed_catalogue, Backend, TestApp};
use crate::mail::{buy, mails, settled};
use crate::smtp::SmtpSink;

/// 144 million steps: stalled the server for seconds when templates ran unbudgeted.
const NESTED_LOOPS: &str = "{% for a in range(12000) %}{% for b in range(12000) %}{{ a }}{% endfor %}{% endfor %}";

async fn put_template(app: &TestApp, key: &str, template: Value) -> crate::helpers::Response {
    app.request(Method::PUT, Some(key), "/api/v1/mail-templates", Some(template))
        .await
}

backend_test! {
    async fn templates_too_expensive_to_render_are_refused_when_saved(app) {
        let t = app.tenant("Acme").await;
        let cases = [
            json!({"kind": "credentials", "text_body": NESTED_LOOPS}),
            json!({"kind": "credentials", "html_body": "{% set x = 'x' * 90000000 %}{{ x|length }}"}),
            json!({"kind": "credentials", "subject": "{% for a in range(90000) %}{{ 'y' * 50 }}{% endfor %}"}),
            json!({"kind": "credentials", "text_body": "x".repeat(70_000)}),
        ];
        for template in cases {
            let started = Instant::now();
            let refused = put_template(app, &t.key, template).await;
            assert!(started.elapsed() < Duration::from_secs(3), "refused quickly: {:?}", started.elapsed());
            assert_eq!(refused.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", refused.body);
            assert_eq!(refused.body["error"]["code"], "template_too_expensive", "{}", refused.body);
        }
        let broken = put_template(app, &t.key, json!({"kind": "credentials", "subject": "{% for %}"})).await;
        assert_eq!(broken.body["error"]["code"], "invalid_template", "syntax errors keep their code");
        // A template using every part of the data, for both kinds of product, is fine.
        let fine = json!({"kind": "credentials",
            "text_body": "{% for e in entitlements %}{{ e.product }} {{ e.activation_code }}{% endfor %}{% if setup_url %}{{ setup_url }}{% endif %}"});
        assert_eq!(put_template(app, &t.key, fine).await.status, StatusCode::OK);
        let listed = app.fetch(&t.key, "/api/v1/mail-templates").await;
        assert!(listed["data"][0]["text_body"].as_str().unwrap().starts_with("{% for e in entitlements %}"));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stored_expensive_spoofing_template_stalls_nothing_and_the_buyer_still_gets_the_credentials() {
    for backend in [Backend::Sqlite, Backend::Postgres] {
        let sink = SmtpSink::start().await;
        let Some(app) = TestApp::spawn_configured(backend, |c| {
            c.smtp_url = Some(sink.url());
            c.mail_from = Some("licences@operator.example".into());
        })
        .await
        else {
            continue;
        };
        let t = app.tenant("Acme").await;
        let c = seed_catalogue(&app, &t.key).await;
        // Saved by an older version, which neither budgeted templates nor checked senders.
        app.sql(&format!(
            "INSERT INTO mail_templates (tenant_id, kind, from_name, from_address, text_body, updated_at)
             VALUES ('{}', 'credentials', 'PayPal Security\r\nBcc: everyone@victim.example', 'security@paypal.com',
                     '{NESTED_LOOPS}', 0)",
            t.id
        ))
        .await
        .unwrap();

        let started = Instant::now();
        let e = buy(&app, &t.key, &c.customer_id, "PRO-M", "buyer@initech.example").await;
        let took = started.elapsed();
        assert!(took < Duration::from_secs(3), "{backend:?}: the purchase took {took:?}");
        // Meanwhile the server answers others at once.
        let other = app.tenant("Other").await;
        let started = Instant::now();
        app.fetch(&other.key, "/api/v1/products").await;
        assert!(started.elapsed() < Duration::from_secs(1));

        let received = sink.wait_for(1).await;
        assert_eq!(received.len(), 1, "{backend:?}");
        let mail = &received[0];
        assert_eq!(
            mail.from, "<licences@operator.example>",
            "the envelope: the operator's address"
        );
        let from = mail.header("From").unwrap();
        assert!(
            from.contains("licences@operator.example") && !from.contains("paypal.com"),
            "{from}"
        );
        assert!(mail.header("Bcc").is_none(), "the display name cannot add header lines");
        let body = mail.decoded();
        assert!(
            body.contains(e["activation_code"].as_str().unwrap()),
            "the built-in template replaced the failing one"
        );
        assert!(body.contains("Seats: 5"));
        assert!(body.len() < 100_000, "{}", body.len());
        let listed = settled(&app, &t.key).await;
        assert_eq!(listed[0]["status"], "sent");
        assert_eq!(listed[0]["subject"], "Your Editor licence from Acme");
        assert_eq!(listed[0]["from_address"], "licences@operator.example");
        app.stop().await;
        sink.stop();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mail_queued_rendered_by_an_older_version_is_sent_after_the_upgrade() {
    for backend in [Backend::Sqlite, Backend::Postgres] {
        let sink = SmtpSink::start().await;
        let Some(app) = TestApp::spawn_configured(backend, |c| {
            c.smtp_url = Some(sink.url());
            c.mail_from = Some("licences@operator.example".into());
        })
        .await
        else {
            continue;
        };
        let t = app.tenant("Acme").await;
        // As an older version queued it: rendered, no template inputs, and a tenant's address.
        app.sql(&format!(
            "INSERT INTO mail_outbox (id, tenant_id, kind, recipient, from_name, from_address, subject, text_body,
                 html_body, status, attempts, next_attempt_at, created_at)
             VALUES ('mail_old', '{}', 'credentials', 'old@initech.example', 'Acme', 'security@paypal.com',
                     'Your licence from Acme', 'Activation code: OLD-CODE', '<p>Activation code: OLD-CODE</p>',
                     'queued', 0, 0, 0)",
            t.id
        ))
        .await
        .unwrap();
        app.store.mail_queued();
        let received = sink.wait_for(1).await;
        assert_eq!(received.len(), 1, "{backend:?}");
        let mail = &received[0];
        assert_eq!(mail.to, ["<old@initech.example>"]);
        assert_eq!(mail.header("Subject").as_deref(), Some("Your licence from Acme"));
        assert_eq!(
            mail.from, "<licences@operator.example>",
            "a stored spoofed sender is ignored"
        );
        assert!(mail.decoded().contains("Activation code: OLD-CODE"));
        let listed = settled(&app, &t.key).await;
        assert_eq!(listed[0]["status"], "sent");
        app.stop().await;
        sink.stop();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tenants_send_only_from_domains_the_operator_allows() {
    for backend in [Backend::Sqlite, Backend::Postgres] {
        let sink = SmtpSink::start().await;
        let Some(app) = TestApp::spawn_configured(backend, |c| {
            c.smtp_url = Some(sink.url());
            c.mail_from = Some("licences@operator.example".into());
            c.mail_sender_domains = Some("acme-mail.example, other.example".into());
        })
        .await
        else {
            continue;
        };
        let t = app.tenant("Acme").await;
        let c = seed_catalogue(&app, &t.key).await;
        for address in ["security@paypal.com", "x@sub.acme-mail.example", "not an address"] {
            let refused = put_template(&app, &t.key, json!({"kind": "credentials", "from_address": address})).await;
            assert_eq!(refused.status, StatusCode::UNPROCESSABLE_ENTITY, "{address}");
            let code = refused.body["error"]["code"].as_str().unwrap();
            assert!(
                code == "sender_not_allowed" || code == "invalid_email",
                "{address}: {code}"
            );
        }
        for name in ["Acme\r\nBcc: everyone@victim.example", &"A".repeat(65)] {
            let refused = put_template(&app, &t.key, json!({"kind": "credentials", "from_name": name})).await;
            assert_eq!(refused.status, StatusCode::UNPROCESSABLE_ENTITY);
            assert_eq!(refused.body["error"]["code"], "invalid_from_name");
        }
        let allowed =
            json!({"kind": "credentials", "from_name": "Acme Sales", "from_address": "sales@acme-mail.example"});
        let put = put_template(&app, &t.key, allowed).await;
        assert_eq!(put.status, StatusCode::OK, "{}", put.body);
        buy(&app, &t.key, &c.customer_id, "PRO-M", "buyer@initech.example").await;
        let received = sink.wait_for(1).await;
        assert_eq!(received.len(), 1, "{backend:?}");
        assert_eq!(received[0].from, "<sales@acme-mail.example>");
        let from = received[0].header("From").unwrap();
        assert!(
            from.contains("Acme Sales") && from.contains("sales@acme-mail.example"),
            "{from}"
        );
        app.stop().await;
        sink.stop();
    }

    // By default tenants cannot choose a sender address at all.
    let app = TestApp::spawn(Backend::Sqlite).await.unwrap();
    let t = app.tenant("Acme").await;
    let refused = put_template(
        &app,
        &t.key,
        json!({"kind": "credentials", "from_address": "sales@acme.example"}),
    )
    .await;
    assert_eq!(refused.body["error"]["code"], "sender_not_allowed");
    app.stop().await;
}

/// Checks `value` against `schema` for the parts of JSON Schema the document uses.
fn check(doc: &Value, schema: &Value, value: &Value, at: &str, errors: &mut Vec<String>) {
    if let Some(reference) = schema.get("$ref").and_then(Value::as_str) {
        let name = reference.trim_start_matches("#/components/schemas/");
        let target = &doc["components"]["schemas"][name];
        assert!(target.is_object(), "unresolved {reference}");
        return check(doc, target, value, at, errors);
    }
    for part in schema.get("allOf").and_then(Value::as_array).into_iter().flatten() {
        check(doc, part, value, at, errors);
    }
    for key in ["oneOf", "anyOf"] {
        if let Some(options) = schema.get(key).and_then(Value::as_array) {
            let matching = options
                .iter()
                .filter(|option| {
                    let mut scratch = Vec::new();
                    check(doc, option, value, at, &mut scratch);
                    scratch.is_empty()
                })
                .count();
            if matching == 0 || (key == "oneOf" && matching > 1) {
                errors.push(format!("{at}: {matching} of the {key} options match {value}"));
            }
        }
    }
    if let Some(types) = schema.get("type") {
        let types: Vec<&str> = match types {
            Value::String(one) => vec![one.as_str()],
            Value::Array(many) => many.iter().filter_map(Value::as_str).collect(),
            _ => vec![],
        };
        let fits = types.iter().any(|t| match *t {
            "object" => value.is_object(),
            "array" => value.is_array(),
            "string" => value.is_string(),
            "integer" => value.is_i64() || value.is_u64(),
            "number" => value.is_number(),
            "boolean" => value.is_boolean(),
            "null" => value.is_null(),
            _ => true,
        });
        if !fits {
            errors.push(format!("{at}: {value} is not {types:?}"));
        }
    }
    if let Some(allowed) = schema.get("enum").and_then(Value::as_array) {
        if !allowed.contains(value) {
            errors.push(format!("{at}: {value} not in {allowed:?}"));
        }
    }
    if let Some(object) = value.as_object() {
        for required in schema.get("required").and_then(Value::as_array).into_iter().flatten() {
            if !object.contains_key(required.as_str().unwrap_or_default()) {
                errors.push(format!("{at}: {required} is missing"));
            }
        }
        let properties = schema.get("properties").and_then(Value::as_object);
        for (key, item) in object {
            match properties.and_then(|p| p.get(key)) {
                Some(property) => check(doc, property, item, &format!("{at}.{key}"), errors),
                None if schema.get("additionalProperties") == Some(&Value::Bool(false)) => {
                    errors.push(format!("{at}: {key} is not allowed"))
                }
                None => {}
            }
        }
    }
    if let (Some(items), Some(array)) = (schema.get("items"), value.as_array()) {
        for (n, item) in array.iter().enumerate() {
            check(doc, items, item, &format!("{at}[{n}]"), errors);
        }
    }
}

fn conforms(doc: &Value, path: &str, method: &str, answer: &Value) {
    let schema = &doc["paths"][path][method]["responses"]["200"]["content"]["application/json"]["schema"];
    assert!(schema.is_object(), "{method} {path} has no 200 schema");
    let mut errors = Vec::new();
    check(doc, schema, answer, "$", &mut errors);
    assert!(
        errors.is_empty(),
        "{method} {path} breaks its schema: {errors:#?}\n{answer}"
    );
}

backend_test! {
    async fn mail_answers_match_their_openapi_schemas(app) {
        let doc = app.request(Method::GET, None, "/api/v1/openapi.json", None).await.body;
        let t = app.tenant("Acme").await;
        let c = seed_catalogue(app, &t.key).await;
        conforms(&doc, "/api/v1/mail-templates", "get", &app.fetch(&t.key, "/api/v1/mail-templates").await);
        let put = put_template(app, &t.key, json!({"kind": "credentials", "from_name": "Acme Licensing"})).await;
        assert_eq!(put.status, StatusCode::OK, "{}", put.body);
        conforms(&doc, "/api/v1/mail-templates", "put", &put.body);
        let listed = app.fetch(&t.key, "/api/v1/mail-templates").await;
        assert_eq!(listed["data"][0]["kind"], "credentials");
        assert_eq!(listed["data"][0]["from_name"], "Acme Licensing");
        conforms(&doc, "/api/v1/mail-templates", "get", &listed);
        let unknown = put_template(app, &t.key, json!({"kind": "credentials", "colour": "red"})).await;
        assert_eq!(unknown.status, StatusCode::UNPROCESSABLE_ENTITY, "unknown fields are still refused");

        buy(app, &t.key, &c.customer_id, "PRO-M", "buyer@initech.example").await;
        let page = app.fetch(&t.key, "/api/v1/mails?limit=10").await;
        conforms(&doc, "/api/v1/mails", "get", &page);
        settled(app, &t.key).await;
        let page = app.fetch(&t.key, "/api/v1/mails?limit=10").await;
        assert!(page["data"][0]["subject"].is_string());
        conforms(&doc, "/api/v1/mails", "get", &page);
        assert!(mails(app, &t.key, "&status=sent").await.len() == 1);
    }
}
