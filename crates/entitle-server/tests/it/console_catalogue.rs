//! The console's catalogue and settings pages: an admin builds a catalogue and manages keys,
//! branding, mail templates and staff through the same services as the API; support and viewers
//! read but their forged posts change nothing; another tenant's ids are not found.

use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use crate::console::staff_visitor;
use crate::helpers::*;
use crate::mail::{mails, settled};
use crate::portal::{Page, Visitor};
use entitle_server::domain::staff::StaffRole;

fn unescaped(body: &str) -> String {
    body.replace("&#x2f;", "/")
}

/// The id in a redirect to `…/{kind}/{id}?done=…`.
fn id_in(location: &Option<String>, kind: &str) -> String {
    let location = location.as_deref().expect("a redirect");
    let rest = &location[location.find(&format!("/{kind}/")).unwrap() + kind.len() + 2..];
    rest.split('?').next().unwrap().to_owned()
}

fn ids(list: &Value) -> Vec<String> {
    list["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["id"].as_str().unwrap().to_owned())
        .collect()
}

fn by_name<'a>(list: &'a Value, name: &str) -> &'a Value {
    list["data"]
        .as_array()
        .unwrap()
        .iter()
        .find(|o| o["name"] == name)
        .unwrap()
}

async fn post(visitor: &mut Visitor<'_>, path: &str, csrf: &str, form: &[(&str, &str)]) -> Page {
    let mut fields = vec![("csrf", csrf)];
    fields.extend_from_slice(form);
    visitor.post(path, &fields).await
}

backend_test! {
    async fn an_admin_builds_a_catalogue_through_the_pages(app) {
        let t = app.tenant("Acme").await;
        let mut admin = staff_visitor(app, &t.id, "ada@acme.example", StaffRole::Admin).await;
        let base = admin.base.clone();
        let list = admin.get(&format!("{base}/catalogue")).await;
        assert_eq!(list.status, StatusCode::OK, "{}", list.body);
        assert!(list.body.contains("New product"));
        let csrf = Visitor::csrf(&list);

        // A form the API's rules refuse comes back with the message and the values entered.
        let bad = post(&mut admin, &format!("{base}/catalogue/products"), &csrf,
            &[("name", "Kept Studio"), ("grace_period_count", "five"), ("grace_period_unit", "day")]).await;
        assert_eq!(bad.status, StatusCode::UNPROCESSABLE_ENTITY);
        assert!(bad.body.contains("whole number") && bad.body.contains("Kept Studio"), "{}", bad.body);
        let bad = post(&mut admin, &format!("{base}/catalogue/products"), &csrf, &[("name", "")]).await;
        assert_eq!(bad.status, StatusCode::UNPROCESSABLE_ENTITY, "an empty name breaks the API's rule");

        let created = post(&mut admin, &format!("{base}/catalogue/products"), &csrf,
            &[("name", "Studio"), ("grace_period_count", "5"), ("grace_period_unit", "day")]).await;
        assert_eq!(created.status, StatusCode::SEE_OTHER, "{}", created.body);
        let product_id = id_in(&created.location, "products");
        let page = admin.get(created.location.as_deref().unwrap()).await;
        assert_eq!(page.status, StatusCode::OK, "{}", page.body);
        assert!(page.body.contains("Created."));

        let parts: [(&str, &[(&str, &str)]); 4] = [
            ("features", &[("key", "export"), ("name", "Export"), ("kind", "bool")]),
            ("features", &[("key", "nodes"), ("name", "Nodes"), ("kind", "element_pool")]),
            ("attributes", &[("key", "tier"), ("name", "Tier"), ("kind", "string")]),
            ("attributes", &[("key", "max_users"), ("name", "Max users"), ("kind", "number")]),
        ];
        for (kind, form) in parts {
            let mut fields = vec![("product_id", product_id.as_str())];
            fields.extend_from_slice(form);
            let done = post(&mut admin, &format!("{base}/catalogue/{kind}"), &csrf, &fields).await;
            assert_eq!(done.status, StatusCode::SEE_OTHER, "{kind}: {}", done.body);
        }
        let taken = post(&mut admin, &format!("{base}/catalogue/features"), &csrf,
            &[("product_id", &product_id), ("key", "export"), ("name", "Again"), ("kind", "bool")]).await;
        assert_eq!(taken.status, StatusCode::UNPROCESSABLE_ENTITY);
        assert!(taken.body.contains("already has a feature with this key"), "{}", taken.body);

        for (name, form) in [
            ("Basic", vec![("feature.export", "on"), ("attr.tier", "basic"), ("attr.max_users", "1")]),
            ("Pro", vec![("feature.export", "on"), ("feature.nodes", "on"), ("limit.nodes", "4"), ("attr.tier", "pro"), ("attr.max_users", "10")]),
        ] {
            let mut fields = vec![("product_id", product_id.as_str()), ("name", name)];
            fields.extend(form);
            let done = post(&mut admin, &format!("{base}/catalogue/editions"), &csrf, &fields).await;
            assert_eq!(done.status, StatusCode::SEE_OTHER, "{name}: {}", done.body);
        }
        let wrong = post(&mut admin, &format!("{base}/catalogue/editions"), &csrf,
            &[("product_id", &product_id), ("name", "Odd"), ("attr.max_users", "many")]).await;
        assert_eq!(wrong.status, StatusCode::UNPROCESSABLE_ENTITY);
        let plan = post(&mut admin, &format!("{base}/catalogue/plans"), &csrf,
            &[("product_id", &product_id), ("name", "Monthly"), ("license_type", "subscription"),
              ("duration_count", "1"), ("duration_unit", "month"), ("start", "on_creation"), ("kind", "paid")]).await;
        assert_eq!(plan.status, StatusCode::SEE_OTHER, "{}", plan.body);
        let no_duration = post(&mut admin, &format!("{base}/catalogue/plans"), &csrf,
            &[("product_id", &product_id), ("name", "Broken"), ("license_type", "subscription"), ("duration_unit", "")]).await;
        assert_eq!(no_duration.status, StatusCode::UNPROCESSABLE_ENTITY, "a subscription needs a duration");
        assert!(no_duration.body.contains("needs a duration"));

        // The management API lists what the pages made.
        let products = app.fetch(&t.key, "/api/v1/products").await;
        assert_eq!(products["data"].as_array().unwrap().len(), 1);
        assert_eq!(products["data"][0]["name"], "Studio");
        assert_eq!(products["data"][0]["grace_period"], json!({"unit": "day", "count": 5}));
        let editions = app.fetch(&t.key, &format!("/api/v1/editions?product_id={product_id}")).await;
        assert_eq!(editions["data"].as_array().unwrap().len(), 2);
        let pro = by_name(&editions, "Pro");
        assert_eq!(pro["features"].as_array().unwrap().len(), 2);
        assert!(pro["features"].as_array().unwrap().iter().any(|f| f["key"] == "nodes" && f["limit"] == 4), "{pro}");
        assert!(pro["attributes"].as_array().unwrap().iter().any(|a| a["key"] == "max_users" && a["value"] == 10), "{pro}");
        let pro_id = pro["id"].as_str().unwrap().to_owned();
        let basic_id = by_name(&editions, "Basic")["id"].as_str().unwrap().to_owned();
        let plans = app.fetch(&t.key, &format!("/api/v1/plans?product_id={product_id}")).await;
        assert_eq!(ids(&plans).len(), 1);
        let plan_id = ids(&plans)[0].clone();

        let offering = post(&mut admin, &format!("{base}/catalogue/offerings"), &csrf,
            &[("sku", "STUDIO-PRO-M"), ("name", "Studio Pro monthly"), ("edition_id", &pro_id), ("plan_id", &plan_id),
              ("seat_count", "3"), ("overdraft_kind", "absolute"), ("overdraft_value", "1"), ("concurrency_mode", "")]).await;
        assert_eq!(offering.status, StatusCode::SEE_OTHER, "{}", offering.body);
        let offerings = app.fetch(&t.key, &format!("/api/v1/offerings?product_id={product_id}")).await;
        assert_eq!(offerings["data"].as_array().unwrap().len(), 1);
        let o = &offerings["data"][0];
        assert_eq!((o["sku"].as_str(), o["seat_count"].as_i64()), (Some("STUDIO-PRO-M"), Some(3)));
        assert_eq!(o["overdraft"], json!({"kind": "absolute", "value": 1}));
        let offering_id = o["id"].as_str().unwrap().to_owned();
        let sku_taken = post(&mut admin, &format!("{base}/catalogue/offerings"), &csrf,
            &[("sku", "STUDIO-PRO-M"), ("name", "Again"), ("edition_id", &basic_id), ("plan_id", &plan_id)]).await;
        assert_eq!(sku_taken.status, StatusCode::UNPROCESSABLE_ENTITY);
        assert!(sku_taken.body.contains("Again"), "the values entered are kept");

        // Two entitlements: each edit page previews the change's reach.
        let customer = app.create(&t.key, "/api/v1/customers", json!({"name": "Initech"})).await;
        let customer_id = customer["id"].as_str().unwrap();
        let first = entitle(app, &t.key, customer_id, "STUDIO-PRO-M", 1).await;
        entitle(app, &t.key, customer_id, "STUDIO-PRO-M", 1).await;
        for (kind, id, n) in [("offerings", &offering_id, 2), ("editions", &pro_id, 2), ("plans", &plan_id, 2),
                              ("products", &product_id, 2), ("editions", &basic_id, 0)] {
            let page = admin.get(&format!("{base}/catalogue/{kind}/{id}")).await;
            assert_eq!(page.status, StatusCode::OK, "{kind}: {}", page.body);
            assert!(page.body.contains(&format!("reaches <strong>{n}</strong> entitlement")), "{kind} {id}: {}", page.body);
        }

        // An edit through the page reaches the entitlements, as through the API.
        let edit = admin.get(&format!("{base}/catalogue/offerings/{offering_id}")).await;
        assert!(edit.body.contains("value=\"STUDIO-PRO-M\""), "the form shows the current values");
        let bad = post(&mut admin, &format!("{base}/catalogue/offerings/{offering_id}"), &csrf,
            &[("sku", "STUDIO-PRO-M"), ("name", "Renamed"), ("seat_count", "x")]).await;
        assert_eq!(bad.status, StatusCode::UNPROCESSABLE_ENTITY);
        assert!(bad.body.contains("Renamed"));
        let saved = post(&mut admin, &format!("{base}/catalogue/offerings/{offering_id}"), &csrf,
            &[("sku", "STUDIO-PRO-M"), ("name", "Studio Pro"), ("seat_count", "7"), ("overdraft_kind", "none"),
              ("overdraft_value", "0"), ("concurrency_mode", "node_locked")]).await;
        assert_eq!(saved.status, StatusCode::SEE_OTHER, "{}", saved.body);
        let after = app.fetch(&t.key, &format!("/api/v1/entitlements/{}", first["id"].as_str().unwrap())).await;
        assert_eq!(after["seat_count"], 7);
        let edition = post(&mut admin, &format!("{base}/catalogue/editions/{pro_id}"), &csrf,
            &[("name", "Pro"), ("feature.export", "on"), ("feature.nodes", "on"), ("limit.nodes", "8"), ("attr.tier", "pro")]).await;
        assert_eq!(edition.status, StatusCode::SEE_OTHER, "{}", edition.body);
        let pro = app.fetch(&t.key, &format!("/api/v1/editions/{pro_id}")).await;
        assert!(pro["features"].as_array().unwrap().iter().any(|f| f["key"] == "nodes" && f["limit"] == 8), "{pro}");
        assert_eq!(pro["attributes"].as_array().unwrap().len(), 1, "the form's grants replace the list");
        let events = app.fetch(&t.key, &format!("/api/v1/events?object_id={offering_id}")).await;
        let updated = events["data"].as_array().unwrap().iter().find(|e| e["action"] == "offering.updated").unwrap();
        assert_eq!(updated["actor_kind"], "staff");
    }
}

backend_test! {
    async fn support_and_viewers_read_but_change_nothing_and_other_tenants_are_not_found(app) {
        let t = app.tenant("Acme").await;
        let c = seed_catalogue(app, &t.key).await;
        let pro_m = c.offering_ids[1].clone();
        let key_id = ids(&app.fetch(&t.key, "/api/v1/api-keys").await)[0].clone();
        let mut admin = staff_visitor(app, &t.id, "ada@acme.example", StaffRole::Admin).await;
        let admin_page = admin.get(&format!("{}/settings", admin.base)).await;
        let admin_id = {
            let body = unescaped(&admin_page.body);
            let at = body.find("/settings/staff/").map(|at| &body[at + 16..]);
            // The admin's own row has no actions: find the id through the API's events instead.
            assert!(at.is_none(), "no actions on oneself");
            let events = app.fetch(&t.key, "/api/v1/events?action=staff.created").await;
            events["data"][0]["object_id"].as_str().unwrap().to_owned()
        };

        for (email, role) in [("sam@acme.example", StaffRole::Support), ("vic@acme.example", StaffRole::Viewer)] {
            let mut member = staff_visitor(app, &t.id, email, role).await;
            let base = member.base.clone();
            let list = member.get(&format!("{base}/catalogue")).await;
            assert_eq!(list.status, StatusCode::OK);
            assert!(list.body.contains("Editor") && !list.body.contains("New product"), "reads, no forms");
            let offering = member.get(&format!("{base}/catalogue/offerings/{pro_m}")).await;
            assert_eq!(offering.status, StatusCode::OK);
            assert!(!offering.body.contains("type=\"submit\" class=\"button\">Save"));
            let settings = member.get(&format!("{base}/settings")).await;
            assert_eq!(settings.status, StatusCode::OK);
            assert!(!settings.body.contains("Create key") && !settings.body.contains(&key_id[..8]), "no API keys");
            assert!(!settings.body.contains("Add and invite"));
            let csrf = Visitor::csrf(&settings);
            let role_text = if role == StaffRole::Support { "support" } else { "viewer" };
            let forged: Vec<(String, Vec<(&str, &str)>)> = vec![
                (format!("{base}/catalogue/products"), vec![("name", "Forged")]),
                (format!("{base}/catalogue/features"), vec![("product_id", &c.product_id), ("key", "forged"), ("name", "F"), ("kind", "bool")]),
                (format!("{base}/catalogue/offerings/{pro_m}"), vec![("seat_count", "99")]),
                (format!("{base}/catalogue/products/{}", c.product_id), vec![("name", "Forged")]),
                (format!("{base}/settings/branding"), vec![("display_name", "Forged")]),
                (format!("{base}/settings/mail-templates"), vec![("kind", "credentials"), ("subject", "Forged"), ("op", "save")]),
                (format!("{base}/settings/mail-templates"), vec![("kind", "credentials"), ("subject", "Forged"), ("op", "preview")]),
                (format!("{base}/settings/api-keys"), vec![("name", "forged"), ("role", "admin")]),
                (format!("{base}/settings/api-keys/{key_id}/revoke"), vec![("confirm", "yes")]),
                (format!("{base}/settings/staff"), vec![("email", "evil@acme.example"), ("role", "admin")]),
                (format!("{base}/settings/staff/{admin_id}/role"), vec![("role", "viewer")]),
                (format!("{base}/settings/staff/{admin_id}/disable"), vec![("confirm", "yes")]),
            ];
            for (path, form) in &forged {
                let answer = post(&mut member, path, &csrf, form).await;
                assert_eq!(answer.status, StatusCode::FORBIDDEN, "{role_text} {path}");
            }
            let still = member.get(&format!("{base}/settings")).await;
            assert!(still.body.contains(&format!("{email} ({role_text})")), "still signed in with the same role");
        }

        // Nothing changed.
        let products = app.fetch(&t.key, "/api/v1/products").await;
        assert_eq!(products["data"].as_array().unwrap().len(), 1);
        assert_eq!(products["data"][0]["name"], "Editor");
        assert_eq!(app.fetch(&t.key, "/api/v1/features").await["data"].as_array().unwrap().len(), 3);
        assert_eq!(app.fetch(&t.key, &format!("/api/v1/offerings/{pro_m}")).await["seat_count"], 5);
        assert_eq!(app.fetch(&t.key, "/api/v1/branding").await["display_name"], Value::Null);
        assert_eq!(app.fetch(&t.key, "/api/v1/mail-templates").await["data"][0]["subject"], Value::Null);
        let keys = app.fetch(&t.key, "/api/v1/api-keys").await;
        assert_eq!(keys["data"].as_array().unwrap().len(), 1);
        assert_eq!(keys["data"][0]["revoked_at"], Value::Null);
        let staff_page = admin.get(&format!("{}/settings", admin.base)).await;
        assert!(!staff_page.body.contains("evil@acme.example"));
        assert!(staff_page.body.contains("ada@acme.example (admin)"), "the admin keeps the role");

        // Another tenant's admin finds none of these ids.
        let other = app.tenant("Globex").await;
        let mut stranger = staff_visitor(app, &other.id, "ed@globex.example", StaffRole::Admin).await;
        let base = stranger.base.clone();
        let page = stranger.get(&format!("{base}/settings")).await;
        let csrf = Visitor::csrf(&page);
        for (kind, id) in [("products", &c.product_id), ("editions", &c.pro_edition), ("plans", &c.monthly_plan),
                           ("offerings", &pro_m), ("features", &c.feature_ids[0]), ("attributes", &c.attribute_id)] {
            assert_eq!(stranger.get(&format!("{base}/catalogue/{kind}/{id}")).await.status, StatusCode::NOT_FOUND, "{kind}");
            let answer = post(&mut stranger, &format!("{base}/catalogue/{kind}/{id}"), &csrf, &[("name", "Stolen")]).await;
            assert_eq!(answer.status, StatusCode::NOT_FOUND, "{kind}");
        }
        let answer = post(&mut stranger, &format!("{base}/catalogue/features"), &csrf,
            &[("product_id", &c.product_id), ("key", "stolen"), ("name", "S"), ("kind", "bool")]).await;
        assert_eq!(answer.status, StatusCode::NOT_FOUND, "a part of another tenant's product");
        let answer = post(&mut stranger, &format!("{base}/settings/api-keys/{key_id}/revoke"), &csrf, &[("confirm", "yes")]).await;
        assert_eq!(answer.status, StatusCode::NOT_FOUND);
        for action in ["role", "disable"] {
            let answer = post(&mut stranger, &format!("{base}/settings/staff/{admin_id}/{action}"), &csrf,
                &[("role", "viewer"), ("confirm", "yes")]).await;
            assert_eq!(answer.status, StatusCode::NOT_FOUND, "{action}");
        }
        assert_eq!(app.fetch(&t.key, "/api/v1/products").await["data"][0]["name"], "Editor");
        assert_eq!(app.fetch(&t.key, "/api/v1/api-keys").await["data"][0]["revoked_at"], Value::Null);
        let staff_page = admin.get(&format!("{}/settings", admin.base)).await;
        assert_eq!(staff_page.status, StatusCode::OK, "the admin is neither demoted nor disabled");
        assert!(staff_page.body.contains("ada@acme.example (admin)"));
    }
}

backend_test! {
    async fn an_admin_manages_branding_templates_keys_and_staff(app) {
        let t = app.tenant("Acme").await;
        let mut admin = staff_visitor(app, &t.id, "ada@acme.example", StaffRole::Admin).await;
        let base = admin.base.clone();
        let page = admin.get(&format!("{base}/settings")).await;
        assert_eq!(page.status, StatusCode::OK, "{}", page.body);
        let csrf = Visitor::csrf(&page);

        // Branding.
        let bad = post(&mut admin, &format!("{base}/settings/branding"), &csrf,
            &[("display_name", "Acme Licensing"), ("accent_colour", "blue"), ("logo_url", "")]).await;
        assert_eq!(bad.status, StatusCode::UNPROCESSABLE_ENTITY);
        assert!(bad.body.contains("value=\"blue\""), "the value entered is kept");
        let saved = post(&mut admin, &format!("{base}/settings/branding"), &csrf,
            &[("display_name", "Acme Licensing"), ("accent_colour", "#112233"), ("logo_url", "")]).await;
        assert_eq!(saved.status, StatusCode::SEE_OTHER, "{}", saved.body);
        let branding = app.fetch(&t.key, "/api/v1/branding").await;
        assert_eq!((branding["display_name"].as_str(), branding["accent_colour"].as_str()), (Some("Acme Licensing"), Some("#112233")));

        // A mail template: previewed on the sample data without saving, refused when broken, saved.
        let template = [("kind", "credentials"), ("subject", "{{ tenant.name }} for {{ customer.name }}"),
                        ("html_body", "<p>Hi {{ customer.name }}</p>"), ("text_body", ""), ("from_name", ""), ("from_address", "")];
        let mut preview = template.to_vec();
        preview.push(("op", "preview"));
        let shown = post(&mut admin, &format!("{base}/settings/mail-templates"), &csrf, &preview).await;
        assert_eq!(shown.status, StatusCode::OK, "{}", shown.body);
        assert!(shown.body.contains("Tenant for Customer"), "{}", shown.body);
        assert!(shown.body.contains("&lt;p&gt;Hi Customer&lt;") && !shown.body.contains("<p>Hi Customer"), "the HTML is shown as text");
        assert_eq!(app.fetch(&t.key, "/api/v1/mail-templates").await["data"][0]["subject"], Value::Null, "not saved");
        let broken = post(&mut admin, &format!("{base}/settings/mail-templates"), &csrf,
            &[("kind", "credentials"), ("subject", "{% if %}"), ("op", "preview")]).await;
        assert_eq!(broken.status, StatusCode::UNPROCESSABLE_ENTITY);
        assert!(broken.body.contains("subject"), "{}", broken.body);
        let mut save = template.to_vec();
        save.push(("op", "save"));
        let saved = post(&mut admin, &format!("{base}/settings/mail-templates"), &csrf, &save).await;
        assert_eq!(saved.status, StatusCode::SEE_OTHER, "{}", saved.body);
        let templates = app.fetch(&t.key, "/api/v1/mail-templates").await;
        assert_eq!(templates["data"][0]["subject"], "{{ tenant.name }} for {{ customer.name }}");
        assert_eq!(templates["data"][0]["text_body"], Value::Null);

        // An API key: the secret shown once, working; revoked after confirming.
        let created = post(&mut admin, &format!("{base}/settings/api-keys"), &csrf, &[("name", "shop"), ("role", "integration")]).await;
        assert_eq!(created.status, StatusCode::CREATED, "{}", created.body);
        let marker = "id=\"key-secret\">";
        let at = created.body.find(marker).unwrap() + marker.len();
        let secret = created.body[at..].split('<').next().unwrap().to_owned();
        assert!(created.body.contains("data-copy=\"#key-secret\""));
        let customer = app.request(Method::POST, Some(&secret), "/api/v1/customers", Some(json!({"name": "Initech"}))).await;
        assert_eq!(customer.status, StatusCode::CREATED, "{:?}", customer.body);
        let keys = app.fetch(&t.key, "/api/v1/api-keys").await;
        let shop = by_name(&keys, "shop")["id"].as_str().unwrap().to_owned();
        let settings = admin.get(&format!("{base}/settings")).await;
        assert!(settings.body.contains(&shop) || unescaped(&settings.body).contains(&format!("/api-keys/{shop}/revoke")));
        let unconfirmed = post(&mut admin, &format!("{base}/settings/api-keys/{shop}/revoke"), &csrf, &[]).await;
        assert_eq!(unconfirmed.status, StatusCode::UNPROCESSABLE_ENTITY);
        assert_eq!(app.request(Method::GET, Some(&secret), "/api/v1/customers", None).await.status, StatusCode::FORBIDDEN,
            "integration keys cannot read, but the key still works");
        let revoked = post(&mut admin, &format!("{base}/settings/api-keys/{shop}/revoke"), &csrf, &[("confirm", "yes")]).await;
        assert_eq!(revoked.status, StatusCode::SEE_OTHER);
        let refused = app.request(Method::POST, Some(&secret), "/api/v1/customers", Some(json!({"name": "Late"}))).await;
        assert_eq!(refused.status, StatusCode::UNAUTHORIZED);

        // Staff: an invitation mail with the set-password link; role changes; disabling ends the session.
        let bad = post(&mut admin, &format!("{base}/settings/staff"), &csrf, &[("email", "not an email"), ("role", "support")]).await;
        assert_eq!(bad.status, StatusCode::UNPROCESSABLE_ENTITY);
        assert!(bad.body.contains("not an email"));
        let invited = post(&mut admin, &format!("{base}/settings/staff"), &csrf, &[("email", "newbie@acme.example"), ("role", "support")]).await;
        assert_eq!(invited.status, StatusCode::SEE_OTHER, "{}", invited.body);
        let again = post(&mut admin, &format!("{base}/settings/staff"), &csrf, &[("email", "newbie@acme.example"), ("role", "viewer")]).await;
        assert_eq!(again.status, StatusCode::UNPROCESSABLE_ENTITY);
        let sent = settled(app, &t.key).await;
        let mail = sent.iter().find(|m| m["kind"] == "invitation").expect("an invitation mail");
        assert_eq!((mail["recipient"].as_str(), mail["status"].as_str()), (Some("newbie@acme.example"), Some("sent")));
        assert_eq!(mails(app, &t.key, "").await.len(), sent.len());
        let file = app.data_dir.0.join("mail").join(format!("{}.eml", mail["id"].as_str().unwrap()));
        let text = std::fs::read_to_string(&file).expect("the .eml file").replace("=\r\n", "").replace("=3D", "=");
        let at = text.find(&format!("/admin/{}/set-password?token=", t.id)).expect("the link in the mail");
        let token: String = text[at..].split("token=").nth(1).unwrap().chars().take_while(|c| c.is_ascii_alphanumeric() || *c == '-' || *c == '_').collect();
        let mut newbie = Visitor::new(app, &t.id);
        newbie.base = base.clone();
        let set = newbie.post(&format!("{base}/set-password"), &[("token", &token), ("password", "newbie password 1"), ("confirm", "newbie password 1")]).await;
        assert_eq!(set.status, StatusCode::OK, "{}", set.body);
        let sign_in = newbie.get(&format!("{base}/sign-in")).await;
        let token_field = Visitor::csrf(&sign_in);
        let signed = newbie.post(&format!("{base}/sign-in"), &[("csrf", &token_field), ("email", "newbie@acme.example"), ("password", "newbie password 1")]).await;
        assert_eq!(signed.status, StatusCode::SEE_OTHER);
        let home = newbie.get(&base).await;
        assert!(home.body.contains("newbie@acme.example (support)"));

        let settings = unescaped(&admin.get(&format!("{base}/settings")).await.body);
        let at = settings.find("/settings/staff/").unwrap() + 16;
        let newbie_id = settings[at..].split('/').next().unwrap().to_owned();
        let changed = post(&mut admin, &format!("{base}/settings/staff/{newbie_id}/role"), &csrf, &[("role", "viewer")]).await;
        assert_eq!(changed.status, StatusCode::SEE_OTHER);
        assert!(newbie.get(&base).await.body.contains("newbie@acme.example (viewer)"));
        let unconfirmed = post(&mut admin, &format!("{base}/settings/staff/{newbie_id}/disable"), &csrf, &[]).await;
        assert_eq!(unconfirmed.status, StatusCode::UNPROCESSABLE_ENTITY);
        let disabled = post(&mut admin, &format!("{base}/settings/staff/{newbie_id}/disable"), &csrf, &[("confirm", "yes")]).await;
        assert_eq!(disabled.status, StatusCode::SEE_OTHER);
        let gone = newbie.get(&base).await;
        assert_eq!(gone.status, StatusCode::SEE_OTHER, "a disabled member's session stops working");
        let retry = newbie.post(&format!("{base}/sign-in"), &[("csrf", &token_field), ("email", "newbie@acme.example"), ("password", "newbie password 1")]).await;
        assert_eq!(retry.status, StatusCode::UNAUTHORIZED);
        let events = app.fetch(&t.key, &format!("/api/v1/events?object_id={newbie_id}")).await;
        for action in ["staff.created", "staff.role_changed", "staff.disabled"] {
            let event = events["data"].as_array().unwrap().iter().find(|e| e["action"] == action).expect(action);
            assert_eq!(event["actor_kind"], "staff", "{action}");
        }
    }
}
