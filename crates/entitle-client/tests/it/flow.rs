//! The whole life of an activation, and the denials an application matches on.

use entitle_client::{Client, Credential, Denial, Error, ManualClock};

use crate::harness::{Server, TempDir};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn activate_use_features_refresh_and_deactivate() {
    let mut server = Server::start().await;
    let dir = TempDir::new();
    let clock = ManualClock::starting_now();
    let cache = dir.join("licence.json");
    let client = server.client("seat-a", &cache, &clock);
    assert!(!client.is_activated());
    assert!(matches!(client.lease(), Err(Error::NotActivated)));
    assert!(matches!(client.refresh().await, Err(Error::NotActivated)));

    let claims = client
        .activate(Credential::Code(server.code.clone()), Some("Ada's workstation"))
        .await
        .unwrap();
    assert_eq!(claims.aud, server.product);
    assert_eq!(claims.seat.id, "seat-a");
    assert_eq!(claims.seat.name.as_deref(), Some("Ada's workstation"));
    assert_eq!(claims.entitlement.sku, "PF-PRO-Y");
    assert_eq!(claims.entitlement.seat_count, 6);
    assert_eq!(claims.entitlement.seats_used, 1);
    assert_eq!(client.activation_id().as_deref(), Some(claims.sub.as_str()));
    assert!(client.is_enabled("raw_import").unwrap());
    assert!(client.is_enabled("batch_export").unwrap());
    assert!(!client.is_enabled("ai_upscale").unwrap(), "a Studio feature");
    assert!(!client.is_enabled("no_such_feature").unwrap());
    assert_eq!(client.feature("render_nodes").unwrap().unwrap().limit, Some(2));

    let out = client.checkout("render_nodes", 2).await.unwrap();
    let nodes = out.feature("render_nodes").unwrap();
    assert_eq!((nodes.checked_out, nodes.used), (2, 2));
    assert_eq!(
        client.feature("render_nodes").unwrap().unwrap().checked_out,
        2,
        "cached"
    );
    assert!(matches!(
        client.checkout("render_nodes", 1).await,
        Err(Error::Denied(Denial::PoolExhausted))
    ));
    let back = client.give_back("render_nodes", 2).await.unwrap();
    assert_eq!(back.feature("render_nodes").unwrap().checked_out, 0);
    assert!(matches!(
        client.give_back("render_nodes", 1).await,
        Err(Error::Denied(Denial::NothingCheckedOut))
    ));

    let used = client.record_usage("cloud_renders", 5).await.unwrap();
    assert_eq!(used.feature("cloud_renders").unwrap().used, 5);
    assert!(matches!(
        client.record_usage("batch_export", 1).await,
        Err(Error::Denied(Denial::FeatureNotEntitled))
    ));
    assert!(
        client.is_enabled("batch_export").unwrap(),
        "a denial leaves the lease alone"
    );

    let refreshed = client.refresh().await.unwrap();
    assert!(refreshed.exp >= claims.exp);
    assert_eq!(refreshed.feature("cloud_renders").unwrap().used, 5);
    let state = client.state().await.unwrap();
    assert_eq!(state.exp, refreshed.exp, "reading does not extend");
    assert_eq!(client.lease().unwrap().exp, refreshed.exp);
    assert_eq!(server.entitlement().await["seats_used"], 1);

    // The application starts again from its cache file, without a request.
    let restarted = server.client("seat-a", &cache, &clock);
    assert_eq!(restarted.activation_id(), client.activation_id());
    assert_eq!(restarted.lease_token(), client.lease_token());
    assert!(restarted.is_enabled("batch_export").unwrap());

    client.deactivate().await.unwrap();
    assert!(!client.is_activated());
    assert!(matches!(client.is_enabled("raw_import"), Err(Error::NotActivated)));
    assert_eq!(server.entitlement().await["seats_used"], 0);
    assert!(
        !server.client("seat-a", &cache, &clock).is_activated(),
        "the cache forgot it"
    );
    // The other instance still holds the old secret: the server answers it is gone, and it forgets.
    assert!(matches!(
        restarted.refresh().await,
        Err(Error::Denied(Denial::InvalidActivation))
    ));
    assert!(!restarted.is_activated());
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn denials_are_typed_and_a_disabled_entitlement_suspends_the_lease() {
    let mut server = Server::start().await;
    let dir = TempDir::new();
    let clock = ManualClock::starting_now();
    let client = server.client("seat-a", &dir.join("a.json"), &clock);
    let code = Credential::Code(server.code.clone());
    client.activate(code.clone(), None).await.unwrap();

    let path = format!("/api/v1/entitlements/{}", server.entitlement_id);
    server
        .admin(
            reqwest::Method::POST,
            &format!("{path}/disable"),
            Some(serde_json::json!({})),
        )
        .await;
    let refused = client.refresh().await.unwrap_err();
    assert!(
        matches!(refused, Error::Denied(Denial::EntitlementDisabled)),
        "{refused:?}"
    );
    assert_eq!(refused.denial().map(Denial::code), Some("entitlement_disabled"));
    assert!(matches!(
        client.is_enabled("batch_export"),
        Err(Error::Denied(Denial::EntitlementDisabled))
    ));
    assert!(
        client.is_activated(),
        "the activation survives: the vendor may enable it again"
    );
    let other = server.client("seat-b", &dir.join("b.json"), &clock);
    assert!(matches!(
        other.activate(code.clone(), None).await,
        Err(Error::Denied(Denial::EntitlementDisabled))
    ));

    server
        .admin(
            reqwest::Method::POST,
            &format!("{path}/enable"),
            Some(serde_json::json!({})),
        )
        .await;
    client.ensure_lease().await.unwrap();
    assert!(client.is_enabled("batch_export").unwrap());

    // Wrong codes are typed, and after ten the server throttles this address.
    let wrong = Credential::Code("7KQ2-M9XD-4FRT-0BWN-HC8E-P3VZ".into());
    for _ in 0..10 {
        assert!(matches!(
            other.activate(wrong.clone(), None).await,
            Err(Error::Denied(Denial::InvalidCredential))
        ));
    }
    match other.activate(wrong, None).await {
        Err(Error::Denied(Denial::RateLimited { retry_after })) => assert!(retry_after.is_some()),
        other => panic!("expected rate_limited, got {other:?}"),
    }
    assert!(!other.is_activated());
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_client_shares_the_cache_state() {
    // Clones share one state: what one refreshes, the other sees.
    let mut server = Server::start().await;
    let dir = TempDir::new();
    let clock = ManualClock::starting_now();
    let client: Client = server.client("seat-a", &dir.join("a.json"), &clock);
    let clone = client.clone();
    client
        .activate(Credential::Code(server.code.clone()), None)
        .await
        .unwrap();
    clone.checkout("render_nodes", 1).await.unwrap();
    assert_eq!(client.feature("render_nodes").unwrap().unwrap().checked_out, 1);
    server.stop().await;
}
