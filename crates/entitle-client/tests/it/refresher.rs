//! The background refresher renews a short lease by itself, and stops with its handle.

use std::time::Duration;

use entitle_client::{Credential, ManualClock, RefreshSchedule};
use serde_json::json;

use crate::harness::{Server, TempDir};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_background_refresher_renews_a_short_lease() {
    let mut server = Server::start().await;
    server
        .patch_entitlement(json!({"lease_period": {"unit": "minute", "count": 1}}))
        .await;
    let dir = TempDir::new();
    let cache = dir.join("licence.json");
    let clock = ManualClock::starting_now();
    let schedule = RefreshSchedule {
        fraction: 0.0,
        min_delay: Duration::from_millis(1_100),
        max_delay: Duration::from_millis(1_100),
        retry_delay: Duration::from_millis(200),
    };
    let client =
        entitle_client::Client::new(server.config("seat-a", &cache, &clock).with_refresh_schedule(schedule)).unwrap();
    let first = client
        .activate(Credential::Code(server.code.clone()), None)
        .await
        .unwrap();
    assert!(first.exp - first.iat <= 60, "a one-minute lease");

    let mut handle = client.spawn_refresher();
    let status = tokio::time::timeout(Duration::from_secs(10), handle.changed())
        .await
        .expect("the refresher ran");
    assert_eq!(status.refreshes, 1, "{status:?}");
    assert!(status.last_error.is_none());
    let renewed = client.lease().unwrap();
    assert!(renewed.exp > first.exp, "{} > {}", renewed.exp, first.exp);
    assert_eq!(status.lease_expires_at, Some(renewed.exp));
    let from_disk = server.client("seat-a", &cache, &clock);
    assert_eq!(
        from_disk.lease().unwrap().exp,
        renewed.exp,
        "the cache file holds the new token"
    );

    drop(handle);
    let token = client.lease_token();
    tokio::time::sleep(Duration::from_millis(2_500)).await;
    assert_eq!(client.lease_token(), token, "a dropped handle stops the refresher");
    server.stop().await;
}
