//! Seats: a full entitlement refuses a second device until the first one deactivates.

use entitle_client::{Credential, Denial, Error, ManualClock};
use serde_json::json;

use crate::harness::{Server, TempDir};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_released_seat_can_be_taken_by_another_device() {
    let mut server = Server::start().await;
    server
        .patch_entitlement(json!({"seat_count": 1, "overdraft": {"kind": "none"}}))
        .await;
    let dir = TempDir::new();
    let clock = ManualClock::starting_now();
    let first = server.client("device-1", &dir.join("1.json"), &clock);
    let second = server.client("device-2", &dir.join("2.json"), &clock);
    let code = Credential::Code(server.code.clone());

    let claims = first.activate(code.clone(), Some("first")).await.unwrap();
    assert_eq!(claims.entitlement.seat_count, 1);
    assert!(matches!(
        second.activate(code.clone(), Some("second")).await,
        Err(Error::Denied(Denial::SeatLimitReached))
    ));
    assert!(!second.is_activated());
    // Activating the same device again keeps its seat.
    first.activate(code.clone(), Some("first")).await.unwrap();
    assert_eq!(server.entitlement().await["seats_used"], 1);

    first.deactivate().await.unwrap();
    let claims = second.activate(code, Some("second")).await.unwrap();
    assert_eq!(claims.seat.id, "device-2");
    assert!(second.is_enabled("batch_export").unwrap());
    assert_eq!(server.entitlement().await["seats_used"], 1);
    server.stop().await;
}
