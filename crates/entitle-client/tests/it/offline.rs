//! Air-gapped machines: request file out, licence file in, deactivation request out.

use entitle_client::{Client, Error, ManualClock};

use crate::harness::{now, Server, TempDir};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn offline_activation_and_deactivation_round_trip() {
    let mut server = Server::start().await;
    let dir = TempDir::new();
    let cache = dir.join("licence.json");
    let clock = ManualClock::starting_now();
    let client = server.client("air-gapped-1", &cache, &clock);

    let request = client.write_activation_request(&server.code, Some("Lab PC")).unwrap();
    assert!(request.starts_with("-----BEGIN ENTITLE ACTIVATION REQUEST-----"));
    // The operator carries the file to a connected machine and posts it.
    let (status, body) = server
        .post_request_file("/licensing/v1/offline/activate", &request)
        .await;
    assert_eq!(status, 200, "{body}");
    let licence = body["licence_file"].as_str().unwrap().to_owned();

    // The licence is bound to its product and seat.
    let elsewhere = server.client("air-gapped-2", &dir.join("other.json"), &clock);
    assert!(matches!(elsewhere.load_licence_file(&licence), Err(Error::WrongSeat)));
    let other_product = Client::new(
        entitle_client::Config::new(
            &server.base,
            &server.tenant,
            "prd_other",
            &server.jwks,
            "air-gapped-1",
            dir.join("product.json"),
        )
        .unwrap(),
    )
    .unwrap();
    assert!(matches!(
        other_product.load_licence_file(&licence),
        Err(Error::WrongProduct)
    ));
    let tampered = licence.replacen(
        "-----BEGIN ENTITLE LICENCE FILE-----\n",
        "-----BEGIN ENTITLE LICENCE FILE-----\nx",
        1,
    );
    assert!(client.load_licence_file(&tampered).is_err());

    let claims = client.load_licence_file(&licence).unwrap();
    assert!(claims.seat.offline);
    assert_eq!(claims.seat.name.as_deref(), Some("Lab PC"));
    assert!(
        (claims.exp - (now() + 30 * 86_400)).abs() < 60,
        "the demo's 30-day offline lease"
    );
    assert!(client.is_offline());
    assert!(client.is_enabled("batch_export").unwrap());
    assert_eq!(server.entitlement().await["seats_used"], 1);
    assert!(
        matches!(client.load_licence_file(&licence), Err(Error::Replay)),
        "a licence answers one request"
    );

    // The air-gapped machine restarts; the server is out of its reach.
    let unreachable = server.config_at("http://127.0.0.1:9", "air-gapped-1", &cache, &clock);
    let restarted = Client::new(unreachable).unwrap();
    assert!(restarted.is_offline());
    assert_eq!(restarted.ensure_lease().await.unwrap().exp, claims.exp);
    // Later, on a copy of that machine (moving this one's clock back would be tampering):
    // the licence ends at its expiry.
    let copy = dir.join("copy.json");
    std::fs::copy(&cache, &copy).unwrap();
    let later = ManualClock::new(claims.exp);
    let expired = Client::new(server.config_at("http://127.0.0.1:9", "air-gapped-1", &copy, &later)).unwrap();
    assert!(matches!(expired.lease(), Err(Error::LeaseExpired)));
    assert!(matches!(expired.ensure_lease().await, Err(Error::LeaseExpired)));

    let deactivation = restarted.write_deactivation_request().unwrap();
    assert!(
        !restarted.is_activated(),
        "the licence is gone before the request leaves"
    );
    let (status, body) = server
        .post_request_file("/licensing/v1/offline/deactivate", &deactivation)
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["deactivated"], true);
    assert_eq!(server.entitlement().await["seats_used"], 0);
    let reloaded = restarted.load_licence_file(&licence);
    assert!(
        matches!(reloaded, Err(Error::Replay)),
        "the old licence cannot be loaded again: {reloaded:?}"
    );
    server.stop().await;
}
