//! Time: a lease is trusted offline until it expires, and a clock set back is caught.

use entitle_client::{Credential, Error, ManualClock};

use crate::harness::{Server, TempDir};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn runs_offline_from_the_cache_until_the_lease_expires() {
    let mut server = Server::start().await;
    let dir = TempDir::new();
    let cache = dir.join("licence.json");
    let clock = ManualClock::starting_now();
    let claims = {
        let client = server.client("seat-a", &cache, &clock);
        client
            .activate(Credential::Code(server.code.clone()), None)
            .await
            .unwrap()
    };
    assert!(claims.exp - claims.iat >= 86_000, "the demo product leases for a day");
    server.stop().await;

    let offline = server.client("seat-a", &cache, &clock);
    assert!(offline.is_enabled("batch_export").unwrap());
    // Past half-time a refresh is due; the server is gone, so the cached lease is used.
    clock.set(claims.iat + (claims.exp - claims.iat) * 3 / 4);
    assert_eq!(offline.ensure_lease().await.unwrap().exp, claims.exp);
    assert!(matches!(offline.refresh().await, Err(Error::Network(_))));
    assert!(offline.is_enabled("batch_export").unwrap());
    clock.set(claims.exp - 1);
    assert!(offline.is_enabled("batch_export").unwrap());

    clock.set(claims.exp);
    assert!(matches!(offline.is_enabled("batch_export"), Err(Error::LeaseExpired)));
    assert!(matches!(offline.ensure_lease().await, Err(Error::LeaseExpired)));
    assert!(
        offline.is_activated(),
        "still activated: a refresh online brings it back"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_clock_set_back_is_detected_across_restarts() {
    let mut server = Server::start().await;
    let dir = TempDir::new();
    let cache = dir.join("licence.json");
    let clock = ManualClock::starting_now();
    let client = server.client("seat-a", &cache, &clock);
    client
        .activate(Credential::Code(server.code.clone()), None)
        .await
        .unwrap();

    clock.advance(3_600);
    assert!(client.is_enabled("batch_export").unwrap());
    clock.advance(-200);
    assert!(
        client.is_enabled("batch_export").unwrap(),
        "small corrections are tolerated"
    );
    clock.advance(-3_400);
    assert!(matches!(client.is_enabled("batch_export"), Err(Error::ClockTampered)));
    assert!(matches!(client.refresh().await, Err(Error::ClockTampered)));
    let restarted = server.client("seat-a", &cache, &clock);
    assert!(
        matches!(restarted.lease(), Err(Error::ClockTampered)),
        "the latest time seen is kept in the cache file"
    );

    clock.advance(3_600);
    assert!(restarted.is_enabled("batch_export").unwrap(), "the right time again");

    // A fresh installation (no cache) set back before the token's issue time is caught too.
    let early = ManualClock::new(crate::harness::now() - 7_200);
    let fresh = server.client("seat-b", &dir.join("b.json"), &early);
    assert!(matches!(
        fresh.activate(Credential::Code(server.code.clone()), None).await,
        Err(Error::ClockTampered)
    ));
    server.stop().await;
}
