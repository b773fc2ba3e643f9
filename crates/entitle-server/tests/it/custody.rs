//! Secrets at rest: signing keys are stored sealed under the master key, a database from an
//! older version is sealed at start, and a wrong master key stops the start.

use crate::helpers::{backend_test, entitle, seed_catalogue, TestApp};
use reqwest::{Method, StatusCode};
use serde_json::json;

backend_test! {
    async fn signing_keys_are_sealed_at_rest_and_still_sign(app) {
        let t = app.tenant("Acme").await;
        let c = seed_catalogue(app, &t.key).await;
        let e = entitle(app, &t.key, &c.customer_id, "PRO-M", 1).await;
        // Counted by rows a no-op update touches, straight in the database.
        let sealed = app.sql("UPDATE signing_keys SET seed = seed WHERE seed LIKE 'sealed:v1:%'").await.unwrap();
        assert!(sealed >= 1, "every signing key is sealed");
        let clear = app.sql("UPDATE signing_keys SET seed = seed WHERE seed NOT LIKE 'sealed:v1:%'").await.unwrap();
        assert_eq!(clear, 0);
        let keys = app.keys(&t.id).await;
        let activated = app
            .licensing(Method::POST, "/licensing/v1/activate", None, "",
                Some(json!({"tenant": t.id, "product": c.product_id, "activation_code": e["activation_code"],
                            "seat_id": "m1", "seat_name": "M1", "nonce": "nonce-custody-0001"})))
            .await;
        assert_eq!(activated.status, StatusCode::OK);
        activated.verify(&keys);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_master_key_stops_the_start_and_the_right_one_opens_the_keys() {
    let app = TestApp::spawn(crate::helpers::Backend::Sqlite).await.unwrap();
    let t = app.tenant("Acme").await;
    let path = format!("/licensing/v1/tenants/{}/jwks.json", t.id);
    let before = app.request(Method::GET, None, &path, None).await.body;
    let app = app.restart(|_| {}).await;
    let after = app.request(Method::GET, None, &path, None).await.body;
    assert_eq!(after, before, "the same key after a restart");
    // Another master key: the server refuses to start rather than fail every signature.
    let mut layer = entitle_server::config::ConfigLayer {
        listen: Some("127.0.0.1:0".parse().unwrap()),
        data_dir: Some(app.data_dir.0.clone()),
        master_key: Some("AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=".into()),
        ..Default::default()
    };
    let config = entitle_server::config::Config::from_layer(layer.clone()).unwrap();
    let refused = entitle_server::Application::build(config).await;
    let error = format!("{:#}", refused.err().expect("a wrong master key is refused"));
    assert!(error.contains("master key"), "{error}");
    // The generated key, given as a file, opens them.
    layer.master_key = None;
    layer.master_key_file = Some(app.data_dir.0.join("master.key"));
    let config = entitle_server::config::Config::from_layer(layer).unwrap();
    entitle_server::Application::build(config).await.expect("the right key");
    app.stop().await;
}
