//! Builds the application: opens the store, binds the listener, wires routes and middleware.

use anyhow::Context;
use axum::body::Body;
use axum::extract::DefaultBodyLimit;
use axum::http::header::CONTENT_LENGTH;
use axum::http::{HeaderName, Request, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::Router;
use secrecy::ExposeSecret;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use tokio::net::TcpListener;
use tower_http::request_id::{MakeRequestId, PropagateRequestIdLayer, RequestId, SetRequestIdLayer};
use tower_http::trace::TraceLayer;

use crate::api::error::ApiError;
use crate::api::rate_limit::FailureLimiter;
use crate::config::Config;
use crate::domain::ids;
use crate::mail::{DeliverySettings, Transport};
use crate::metrics::Metrics;
use crate::services::lease_writer::LeaseWriter;
use crate::services::mail::MailSettings;
use crate::services::signing::KeyRing;
use crate::store::Store;

/// Request bodies larger than this are refused with 413 before they are read.
pub const MAX_BODY_BYTES: usize = 1024 * 1024;

const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

#[derive(Clone)]
pub struct AppState {
    pub store: Store,
    pub metrics: Arc<Metrics>,
    pub config: Arc<Config>,
    pub keys: Arc<KeyRing>,
    /// Failed licensing credentials per address.
    pub failures: Arc<FailureLimiter>,
    /// Storefront deliveries refused for their signature, per address.
    pub forged_deliveries: Arc<FailureLimiter>,
    /// Writes lease refreshes in groups.
    pub leases: LeaseWriter,
    pub mail: Arc<MailSettings>,
}

/// Failed activation credentials allowed per address and window before 429.
const CREDENTIAL_FAILURES: u32 = 10;
const CREDENTIAL_WINDOW: std::time::Duration = std::time::Duration::from_secs(60);
/// Badly signed storefront deliveries allowed per address and window before 429 (providers never
/// send these; a flood of them is someone guessing).
const FORGED_DELIVERIES: u32 = 20;

/// A bound, ready-to-run server. Tests build it on port 0 and read the port back.
pub struct Application {
    listener: TcpListener,
    state: AppState,
}

#[derive(Clone, Copy)]
struct NewRequestId;

impl MakeRequestId for NewRequestId {
    fn make_request_id<B>(&mut self, _request: &Request<B>) -> Option<RequestId> {
        ids::new_id("req").parse().ok().map(RequestId::new)
    }
}

pub fn mail_settings(config: &Config) -> MailSettings {
    MailSettings {
        public_url: config.public_url.clone(),
        sender: sender_policy(config),
        setup_link_lifetime: chrono::Duration::days(7),
    }
}

fn sender_policy(config: &Config) -> crate::domain::sender::SenderPolicy {
    crate::domain::sender::SenderPolicy::new(config.mail_from.clone(), config.mail_sender_domains.clone())
}

fn delivery_settings(config: &Config) -> DeliverySettings {
    let id_domain = config
        .public_url
        .split("://")
        .nth(1)
        .and_then(|rest| rest.split(['/', ':']).next())
        .filter(|host| !host.is_empty())
        .unwrap_or("entitle.invalid")
        .to_owned();
    DeliverySettings {
        max_attempts: config.mail_max_attempts,
        retry_base: config.mail_retry_base,
        poll: config.mail_poll,
        id_domain,
        sender: sender_policy(config),
    }
}

impl Application {
    pub async fn build(config: Config) -> anyhow::Result<Application> {
        let store = Store::open(config.database_url.expose_secret()).await?;
        let listener = TcpListener::bind(config.listen)
            .await
            .with_context(|| format!("binding {}", config.listen))?;
        let mut config = config;
        if config.public_url == format!("http://{}", config.listen) {
            // The derived default names the address actually bound (port 0 becomes the real port).
            config.public_url = format!("http://{}", listener.local_addr().context("the bound address")?);
        }
        let mail = Arc::new(mail_settings(&config));
        Ok(Application {
            listener,
            state: AppState {
                store: store.clone(),
                metrics: Arc::new(Metrics::default()),
                config: Arc::new(config),
                keys: Arc::new(KeyRing::default()),
                failures: Arc::new(FailureLimiter::new(CREDENTIAL_FAILURES, CREDENTIAL_WINDOW)),
                forged_deliveries: Arc::new(FailureLimiter::new(FORGED_DELIVERIES, CREDENTIAL_WINDOW)),
                leases: LeaseWriter::start(store.clone()),
                mail,
            },
        })
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.listener.local_addr().unwrap_or(self.state.config.listen)
    }

    pub fn port(&self) -> u16 {
        self.local_addr().port()
    }

    pub fn store(&self) -> &Store {
        &self.state.store
    }

    /// Serves until `shutdown` completes, then finishes in-flight requests, stops the mail worker
    /// (after the mail it is sending) and closes the store.
    pub async fn run_until(self, shutdown: impl Future<Output = ()> + Send + 'static) -> anyhow::Result<()> {
        let Application { listener, state } = self;
        let store = state.store.clone();
        let smtp_url = state.config.smtp_url.as_ref().map(|url| url.expose_secret().to_owned());
        let transport = Transport::from_settings(smtp_url.as_deref(), state.config.mail_dir())?;
        let (stop_worker, worker_stopped) = tokio::sync::watch::channel(false);
        let worker = crate::mail::spawn_worker(
            store.clone(),
            Arc::new(transport),
            delivery_settings(&state.config),
            worker_stopped,
        );
        let app = router(state);
        let served = axum::serve(listener, app.into_make_service_with_connect_info::<SocketAddr>())
            .with_graceful_shutdown(shutdown)
            .await
            .context("serving HTTP");
        let _ = stop_worker.send(true);
        let _ = worker.await;
        store.close().await;
        served
    }
}

/// Refuses a body whose declared length is over the limit before reading any of it.
/// (Bodies without a declared length are cut off by `DefaultBodyLimit` as they are read.)
async fn refuse_oversized(request: Request<Body>, next: Next) -> Response {
    let declared = request
        .headers()
        .get(CONTENT_LENGTH)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.parse::<u64>().ok());
    if declared.is_some_and(|length| length > MAX_BODY_BYTES as u64) {
        return ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "payload_too_large",
            "the request body is too large",
        )
        .into_response();
    }
    next.run(request).await
}

pub fn router(state: AppState) -> Router {
    let metrics = axum::middleware::from_fn_with_state(state.clone(), crate::metrics::track);
    crate::api::router(state)
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .layer(axum::middleware::from_fn(refuse_oversized))
        .layer(metrics)
        .layer(PropagateRequestIdLayer::new(REQUEST_ID))
        .layer(TraceLayer::new_for_http().make_span_with(|request: &Request<_>| {
            let request_id = request
                .headers()
                .get(REQUEST_ID)
                .and_then(|value| value.to_str().ok())
                .unwrap_or("-");
            tracing::info_span!("request", method = %request.method(), path = %request.uri().path(), request_id)
        }))
        .layer(SetRequestIdLayer::new(REQUEST_ID, NewRequestId))
}
