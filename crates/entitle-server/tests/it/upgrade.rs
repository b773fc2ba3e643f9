//! Upgrades keep data: a database written by an earlier main starts under this binary with every
//! entitlement, API key, activation secret and signing key working.

use reqwest::{Method, StatusCode};
use serde_json::Value;

use crate::helpers::*;

/// Databases saved from earlier mains (`tests/fixtures/upgrade/`), with what they hold.
const SAVED: &[&str] = &["main-159b4bc"];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn databases_of_earlier_versions_keep_working() {
    let fixtures = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/upgrade");
    for name in SAVED {
        let facts: Value =
            serde_json::from_str(&std::fs::read_to_string(fixtures.join(format!("{name}.json"))).unwrap()).unwrap();
        let dir = TempDir::new();
        std::fs::copy(fixtures.join(format!("{name}.db")), dir.0.join("entitle.db")).unwrap();
        let data_dir = dir.0.clone();
        let app = TestApp::spawn_configured(Backend::Sqlite, move |layer| layer.data_dir = Some(data_dir))
            .await
            .unwrap();
        let key = facts["admin_api_key"].as_str().unwrap();
        let text = |field: &str| facts[field].as_str().unwrap().to_owned();

        let entitlement = app
            .fetch(key, &format!("/api/v1/entitlements/{}", text("entitlement_id")))
            .await;
        assert_eq!(entitlement["activation_code"], facts["activation_code"], "{name}");
        assert_eq!(entitlement["seats_used"], 1, "{name}");

        let jwks = app
            .request(
                Method::GET,
                None,
                &format!("/licensing/v1/tenants/{}/jwks.json", text("tenant_id")),
                None,
            )
            .await;
        assert_eq!(jwks.body, facts["jwks"], "{name}: the signing key is the same");
        let keys = app.keys(&text("tenant_id")).await;

        let state = app
            .licensing(
                Method::GET,
                "/licensing/v1/activation",
                Some(&text("activation_secret")),
                "nonce-after-upgrade",
                None,
            )
            .await;
        assert_eq!(state.status, StatusCode::OK, "{name}: {}", state.body);
        state.verify(&keys);
        assert_eq!(state.body["seat"]["id"], facts["seat_id"]);

        let again = app
            .licensing(
                Method::POST,
                "/licensing/v1/activate",
                None,
                "nonce-reactivate-upgrade",
                Some(serde_json::json!({"nonce": "nonce-reactivate-upgrade", "tenant": text("tenant_id"), "product": text("product_id"),
                    "activation_code": text("activation_code"), "seat_id": text("seat_id")})),
            )
            .await;
        assert_eq!(again.status, StatusCode::OK, "{name}: {}", again.body);
        again.verify(&keys);
        app.stop().await;
        drop(dir);
    }
}

/// A migration edited after it was applied is refused at start, on both databases.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_edited_migration_is_an_error_at_start() {
    use sqlx::Connection;
    let dir = TempDir::new();
    let sqlite = format!("sqlite://{}", dir.0.join("entitle.db").display());
    let mut urls = vec![sqlite];
    let pg = fresh_postgres().await;
    if let Some((url, _)) = &pg {
        urls.push(url.clone());
    }
    for url in &urls {
        let store = entitle_server::store::Store::open(url)
            .await
            .expect("a fresh database migrates");
        store.close().await;
        let again = entitle_server::store::Store::open(url)
            .await
            .expect("an unchanged one opens again");
        again.close().await;
        let mut conn = sqlx::AnyConnection::connect(url).await.unwrap();
        sqlx::query("UPDATE schema_migration_checksums SET sha256 = 'edited' WHERE version = 3")
            .execute(&mut conn)
            .await
            .unwrap();
        conn.close().await.unwrap();
        let refused = entitle_server::store::Store::open(url).await;
        let error = format!("{:#}", refused.err().expect("refused"));
        assert!(error.contains("migration 3 (licensing) was changed"), "{error}");
    }
    if let Some((_, name)) = pg {
        drop_postgres(&name).await;
    }
}
