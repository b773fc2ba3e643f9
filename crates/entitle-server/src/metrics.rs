//! Metrics through the `metrics` facade, rendered in the Prometheus text format on their own
//! listener (`metrics_listen`), so the public address never shows them.
//!
//! Counters and histograms are recorded where things happen (request middleware, licensing
//! answers, storefront deliveries, the lease writer) without a lock of ours; gauges that are
//! cheap to read (pool sizes, the mail queue) are read when scraped.

use axum::extract::{MatchedPath, Request, State};
use axum::http::{header, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use std::sync::OnceLock;
use std::time::Instant;

use crate::app::AppState;

pub const REQUEST_DURATION: &str = "entitle_http_request_duration_seconds";
pub const ACTIVATIONS: &str = "entitle_licensing_activations_total";
pub const DENIALS: &str = "entitle_licensing_denials_total";
pub const DELIVERIES: &str = "entitle_storefront_deliveries_total";
pub const LEASE_BATCH: &str = "entitle_lease_writer_batch_size";
pub const MAIL_QUEUED: &str = "entitle_mail_queued";
pub const MAIL_OLDEST_AGE: &str = "entitle_mail_oldest_queued_age_seconds";
pub const MAIL_SENDS: &str = "entitle_mail_sends_total";
pub const POOL_CONNECTIONS: &str = "entitle_db_pool_connections";
pub const POOL_IDLE: &str = "entitle_db_pool_idle_connections";

const DURATION_BUCKETS: &[f64] = &[
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
];
const BATCH_BUCKETS: &[f64] = &[1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0, 256.0];

/// The recorder is process-wide (the facade has one global slot), so it is installed once and
/// every server in the process, tests' included, shares it.
static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();

/// Installs the recorder on first use and returns the handle that renders it.
pub fn handle() -> &'static PrometheusHandle {
    HANDLE.get_or_init(|| {
        let builder = PrometheusBuilder::new();
        // Buckets make histograms (aggregatable across instances) instead of summaries.
        let builder = match builder
            .set_buckets_for_metric(Matcher::Full(REQUEST_DURATION.to_owned()), DURATION_BUCKETS)
            .and_then(|b| b.set_buckets_for_metric(Matcher::Full(LEASE_BATCH.to_owned()), BATCH_BUCKETS))
        {
            Ok(builder) => builder,
            Err(error) => {
                tracing::warn!(%error, "metric buckets refused; histograms render as summaries");
                PrometheusBuilder::new()
            }
        };
        let recorder = builder.build_recorder();
        let handle = recorder.handle();
        // Fails only if something else installed a recorder first; then ours renders nothing
        // but the server still runs.
        if metrics::set_global_recorder(recorder).is_err() {
            tracing::warn!("another metrics recorder is installed; /metrics will be empty");
        }
        handle
    })
}

/// Times every request, labelled by method, route template (never the raw path, so the label
/// set stays small) and status.
pub async fn track(request: Request, next: Next) -> Response {
    let started = Instant::now();
    let method = request.method().as_str().to_owned();
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map(|path| path.as_str().to_owned())
        .unwrap_or_else(|| "unmatched".to_owned());
    let response = next.run(request).await;
    metrics::histogram!(
        REQUEST_DURATION,
        "method" => method,
        "route" => route,
        "status" => response.status().as_u16().to_string()
    )
    .record(started.elapsed().as_secs_f64());
    response
}

/// A successful activation (`online` or `offline`).
pub fn activation(mode: &'static str) {
    metrics::counter!(ACTIVATIONS, "mode" => mode).increment(1);
}

/// A licensing denial, by its public code.
pub fn denial(code: &str) {
    metrics::counter!(DENIALS, "code" => code.to_owned()).increment(1);
}

/// A storefront delivery, by provider and outcome.
pub fn delivery(provider: &'static str, outcome: &str) {
    metrics::counter!(DELIVERIES, "provider" => provider, "outcome" => outcome.to_owned()).increment(1);
}

/// A mail send attempt, by outcome: `sent`, `retry` (failed, tried again later) or `failed`
/// (gave up).
pub fn mail_send(outcome: &'static str) {
    metrics::counter!(MAIL_SENDS, "outcome" => outcome).increment(1);
}

/// How many lease refreshes one transaction wrote.
pub fn lease_batch(size: usize) {
    metrics::histogram!(LEASE_BATCH).record(size as f64);
}

/// The router of the metrics listener: `GET /metrics` and nothing else.
pub fn router(state: AppState) -> Router {
    Router::new().route("/metrics", get(scrape)).with_state(state)
}

async fn scrape(State(app): State<AppState>) -> Response {
    for pool in app.store.pool_stats() {
        metrics::gauge!(POOL_CONNECTIONS, "pool" => pool.name).set(f64::from(pool.size));
        metrics::gauge!(POOL_IDLE, "pool" => pool.name).set(pool.idle as f64);
    }
    match crate::services::mail::queue_stats(&app.store).await {
        Ok(queue) => {
            metrics::gauge!(MAIL_QUEUED).set(queue.queued as f64);
            metrics::gauge!(MAIL_OLDEST_AGE).set(queue.oldest_age_seconds);
        }
        // A scrape still answers without the queue; the gauges keep their last values.
        Err(error) => tracing::warn!(%error, "reading the mail queue for metrics failed"),
    }
    let handle = handle();
    // Without the exporter's own HTTP server nothing else runs the upkeep (histogram buckets
    // are drained into their totals here).
    handle.run_upkeep();
    (
        StatusCode::OK,
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")],
        handle.render(),
    )
        .into_response()
}
