//! Operations endpoints: liveness and readiness. (Metrics are on their own listener: see
//! `crate::metrics`.)

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::get;
use axum::Router;

use crate::app::AppState;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
}

/// The process is up.
async fn healthz() -> &'static str {
    "ok"
}

/// How long readiness waits for the database: a balancer asks often and must hear "not ready"
/// quickly, not after the pool's acquire timeout.
const READY_WITHIN: std::time::Duration = std::time::Duration::from_millis(900);

/// The process can serve: its background workers run and its database answers, within
/// [`READY_WITHIN`].
async fn readyz(State(app): State<AppState>) -> impl IntoResponse {
    let down = app.workers.down();
    if !down.is_empty() {
        let names: Vec<&str> = down.iter().map(|(name, _)| *name).collect();
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            format!("background worker down: {}", names.join(", ")),
        );
    }
    match tokio::time::timeout(READY_WITHIN, app.store.ping()).await {
        Ok(Ok(())) => (StatusCode::OK, "ready".to_owned()),
        Ok(Err(error)) => {
            tracing::warn!(%error, "readiness check failed");
            (StatusCode::SERVICE_UNAVAILABLE, "database unavailable".to_owned())
        }
        Err(_) => {
            tracing::warn!("readiness check timed out: the database did not answer in time");
            (StatusCode::SERVICE_UNAVAILABLE, "database not answering".to_owned())
        }
    }
}
