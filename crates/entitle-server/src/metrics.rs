//! Request metrics in the Prometheus text format, labelled by method, route template and status
//! (never by raw path, so the label set stays small).

use axum::extract::{MatchedPath, Request, State};
use axum::middleware::Next;
use axum::response::Response;
use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::Mutex;
use std::time::Instant;

use crate::app::AppState;

/// (method, route template, status) → (count, total seconds).
type RequestTotals = BTreeMap<(String, String, u16), (u64, f64)>;

#[derive(Default)]
pub struct Metrics {
    requests: Mutex<RequestTotals>,
}

impl Metrics {
    pub fn observe(&self, method: &str, route: &str, status: u16, seconds: f64) {
        let mut requests = self.requests.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        let entry = requests
            .entry((method.to_owned(), route.to_owned(), status))
            .or_insert((0, 0.0));
        entry.0 += 1;
        entry.1 += seconds;
    }

    pub fn render(&self) -> String {
        let requests = self.requests.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        let mut out = String::new();
        out.push_str("# HELP entitle_http_requests_total HTTP requests answered.\n");
        out.push_str("# TYPE entitle_http_requests_total counter\n");
        for ((method, route, status), (count, _)) in requests.iter() {
            let _ = writeln!(
                out,
                "entitle_http_requests_total{{method=\"{method}\",route=\"{route}\",status=\"{status}\"}} {count}"
            );
        }
        out.push_str("# HELP entitle_http_request_duration_seconds_sum Time spent answering HTTP requests.\n");
        out.push_str("# TYPE entitle_http_request_duration_seconds_sum counter\n");
        for ((method, route, status), (_, seconds)) in requests.iter() {
            let _ = writeln!(
                out,
                "entitle_http_request_duration_seconds_sum{{method=\"{method}\",route=\"{route}\",status=\"{status}\"}} {seconds:.6}"
            );
        }
        out
    }
}

pub async fn track(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let started = Instant::now();
    let method = request.method().as_str().to_owned();
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map(|path| path.as_str().to_owned())
        .unwrap_or_else(|| "unmatched".to_owned());
    let response = next.run(request).await;
    state.metrics.observe(
        &method,
        &route,
        response.status().as_u16(),
        started.elapsed().as_secs_f64(),
    );
    response
}
