//! Builds the application: opens the store, binds the listener, wires routes and middleware.

use anyhow::Context;
use axum::body::Body;
use axum::extract::{ConnectInfo, DefaultBodyLimit, MatchedPath, State};
use axum::http::header::{
    CACHE_CONTROL, CONTENT_LENGTH, CONTENT_SECURITY_POLICY, X_CONTENT_TYPE_OPTIONS, X_FRAME_OPTIONS,
};
use axum::http::{HeaderName, HeaderValue, Request, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::Router;
use secrecy::ExposeSecret;
use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use tokio::net::TcpListener;
use tower_http::request_id::{MakeRequestId, PropagateRequestIdLayer, RequestId, SetRequestIdLayer};
use tower_http::timeout::{RequestBodyTimeoutLayer, TimeoutLayer};
use tower_http::trace::TraceLayer;

use crate::api::error::ApiError;
use crate::api::extract::ClientIp;
use crate::config::Config;
use crate::domain::ids;
use crate::mail::{DeliverySettings, Transport};
use crate::server::ConnectionLimits;
use crate::services::commerce::Storefronts;
use crate::services::lease_writer::LeaseWriter;
use crate::services::mail::MailSettings;
use crate::services::signing::KeyRing;
use crate::services::webhook_guard::WebhookGuard;
use crate::store::Store;
use crate::supervisor::{supervise, Workers};

/// Request bodies larger than this are refused with 413 before they are read.
pub const MAX_BODY_BYTES: usize = 1024 * 1024;

const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

#[derive(Clone)]
pub struct AppState {
    pub store: Store,
    pub config: Arc<Config>,
    pub keys: Arc<KeyRing>,
    /// Admits credential attempts (activation codes, passwords) against their budgets.
    pub attempts: Arc<crate::services::attempts::Attempts>,
    /// Providers' API client and the limits on badly signed storefront deliveries.
    pub storefronts: Arc<Storefronts>,
    /// Writes lease refreshes in groups.
    pub leases: LeaseWriter,
    pub mail: Arc<MailSettings>,
    /// The background workers' health, for `/readyz`.
    pub workers: Arc<Workers>,
}

/// A bound, ready-to-run server. Tests build it on port 0 and read the port back.
pub struct Application {
    listener: TcpListener,
    /// The separate `GET /metrics` listener, when `metrics_listen` is set.
    metrics_listener: Option<TcpListener>,
    /// Set when the public listener serves HTTPS itself.
    tls: Option<tokio_rustls::TlsAcceptor>,
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

fn storefronts(config: &Config) -> anyhow::Result<Storefronts> {
    let allowed = crate::commerce::complete::AllowedHosts::parse(&config.provider_api_allow_hosts)
        .map_err(|problem| anyhow::anyhow!("provider_api_allow_hosts: {problem}"))?;
    Ok(Storefronts {
        api: crate::commerce::complete::ProviderApi::new(allowed).context("the provider API client")?,
        guard: WebhookGuard::new(config.rejected_delivery_retention),
    })
}

fn sender_policy(config: &Config) -> crate::domain::sender::SenderPolicy {
    crate::domain::sender::SenderPolicy::new(config.mail_from.clone(), config.mail_sender_domains.clone())
}

fn delivery_settings(config: &Config, bound: SocketAddr) -> DeliverySettings {
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
        concurrency: config.mail_concurrency,
        retention: config.mail_retention,
        instance: instance_id(config, bound),
    }
}

/// Stable across restarts of the same deployment, distinct between instances sharing a database:
/// two instances on one host cannot listen on the same address.
fn instance_id(config: &Config, bound: SocketAddr) -> String {
    if let Some(id) = &config.instance_id {
        return id.clone();
    }
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .or_else(|| std::env::var("HOSTNAME").ok())
        .map(|name| name.trim().to_owned())
        .filter(|name| !name.is_empty())
        .unwrap_or_else(|| "localhost".to_owned());
    format!("{host}/{bound}")
}

fn webhook_settings(config: &Config) -> crate::workers::webhooks::WebhookSettings {
    crate::workers::webhooks::WebhookSettings {
        allow_private: config.webhook_allow_private,
        retry_base: config.webhook_retry_base,
        poll: config.webhook_poll,
        timeout: config.webhook_timeout,
    }
}

impl Application {
    pub async fn build(config: Config) -> anyhow::Result<Application> {
        let store = Store::open_with(config.database_url.expose_secret(), config.store_settings()?).await?;
        let listener = TcpListener::bind(config.listen)
            .await
            .with_context(|| format!("binding {}", config.listen))?;
        let metrics_listener = match config.metrics_listen {
            Some(address) => {
                // Installed before any request so nothing recorded is lost.
                crate::metrics::handle();
                let listener = TcpListener::bind(address)
                    .await
                    .with_context(|| format!("binding the metrics listener {address}"))?;
                Some(listener)
            }
            None => None,
        };
        let tls = config.tls.as_ref().map(crate::tls::acceptor).transpose()?;
        let mut config = config;
        let scheme = if tls.is_some() { "https" } else { "http" };
        if config.public_url == format!("{scheme}://{}", config.listen) {
            // The derived default names the address actually bound (port 0 becomes the real port).
            config.public_url = format!("{scheme}://{}", listener.local_addr().context("the bound address")?);
        }
        let mail = Arc::new(mail_settings(&config));
        let storefronts = Arc::new(storefronts(&config)?);
        let workers = Arc::new(Workers::default());
        Ok(Application {
            listener,
            metrics_listener,
            tls,
            state: AppState {
                store: store.clone(),
                config: Arc::new(config),
                keys: Arc::new(KeyRing::default()),
                attempts: Arc::default(),
                storefronts,
                leases: LeaseWriter::start(store.clone(), workers.clone()),
                mail,
                workers,
            },
        })
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.listener.local_addr().unwrap_or(self.state.config.listen)
    }

    pub fn port(&self) -> u16 {
        self.local_addr().port()
    }

    /// Where the metrics listener is bound, if it is on.
    pub fn metrics_addr(&self) -> Option<SocketAddr> {
        self.metrics_listener
            .as_ref()
            .and_then(|listener| listener.local_addr().ok())
    }

    pub fn store(&self) -> &Store {
        &self.state.store
    }

    /// Serves until `shutdown` completes, then finishes in-flight requests, stops the mail worker
    /// (after the mail it is sending) and closes the store.
    pub async fn run_until(self, shutdown: impl Future<Output = ()> + Send + 'static) -> anyhow::Result<()> {
        let Application {
            listener,
            metrics_listener,
            tls,
            state,
        } = self;
        let store = state.store.clone();
        let bound = listener.local_addr().unwrap_or(state.config.listen);
        let smtp_url = state.config.smtp_url.as_ref().map(|url| url.expose_secret().to_owned());
        let transport = Arc::new(Transport::from_settings(
            smtp_url.as_deref(),
            state.config.smtp_ca_file.as_deref(),
            state.config.mail_dir(),
        )?);
        let (stop_worker, worker_stopped) = tokio::sync::watch::channel(false);
        let worker = {
            let (store, settings, stopped) = (
                store.clone(),
                delivery_settings(&state.config, bound),
                worker_stopped.clone(),
            );
            supervise(state.workers.clone(), "mail", Some(worker_stopped.clone()), move || {
                let task =
                    crate::mail::spawn_worker(store.clone(), transport.clone(), settings.clone(), stopped.clone());
                crate::supervisor::joined(task)
            })
        };
        let limits = ConnectionLimits {
            header_timeout: state.config.header_timeout,
            max_connections: state
                .config
                .max_connections
                .unwrap_or_else(crate::server::connection_capacity),
            shutdown_grace: state.config.shutdown_grace,
        };
        let mail_files = smtp_url.is_none().then(|| crate::services::housekeeping::MailFiles {
            dir: state.config.mail_dir(),
            retention: state.config.mail_retention.to_std().unwrap_or(std::time::Duration::MAX),
        });
        let housekeeping = {
            let (store, stopped) = (store.clone(), worker_stopped.clone());
            supervise(
                state.workers.clone(),
                "housekeeping",
                Some(worker_stopped.clone()),
                move || {
                    let task = crate::services::housekeeping::spawn(store.clone(), mail_files.clone(), stopped.clone());
                    crate::supervisor::joined(task)
                },
            )
        };
        let webhooks = {
            let (store, settings, stopped) = (store.clone(), webhook_settings(&state.config), worker_stopped.clone());
            supervise(
                state.workers.clone(),
                "webhooks",
                Some(worker_stopped.clone()),
                move || {
                    let task = crate::workers::webhooks::spawn(store.clone(), settings.clone(), stopped.clone());
                    crate::supervisor::joined(task)
                },
            )
        };
        let reminders = {
            let (store, mail, stopped) = (store.clone(), state.mail.clone(), worker_stopped.clone());
            supervise(state.workers.clone(), "reminders", Some(worker_stopped), move || {
                let task = crate::workers::reminders::spawn(store.clone(), mail.clone(), stopped.clone());
                crate::supervisor::joined(task)
            })
        };
        // The metrics listener stops with the main one; scrapes are quick, so it gets a few
        // connections and a short grace.
        let (stop_metrics, metrics_stopped) = tokio::sync::watch::channel(false);
        let metrics_server = metrics_listener.map(|metrics_listener| {
            let metrics_limits = ConnectionLimits {
                max_connections: METRICS_MAX_CONNECTIONS,
                shutdown_grace: limits.shutdown_grace.min(std::time::Duration::from_secs(1)),
                ..limits
            };
            let mut stopped = metrics_stopped;
            let stopping = async move {
                let _ = stopped.wait_for(|stop| *stop).await;
            };
            tokio::spawn(crate::server::serve(
                metrics_listener,
                crate::metrics::router(state.clone()),
                metrics_limits,
                None,
                stopping,
            ))
        });
        let app = router(state);
        crate::server::serve(listener, app, limits, tls, shutdown).await;
        let _ = stop_metrics.send(true);
        if let Some(metrics_server) = metrics_server {
            let _ = metrics_server.await;
        }
        let _ = stop_worker.send(true);
        let _ = worker.await;
        let _ = housekeeping.await;
        let _ = webhooks.await;
        let _ = reminders.await;
        store.close().await;
        Ok(())
    }
}

/// Open connections at most on the metrics listener (scrapers are few).
const METRICS_MAX_CONNECTIONS: usize = 16;

/// The longest client-supplied `x-request-id` echoed; longer or odd ones are replaced by our own.
const MAX_REQUEST_ID: usize = 64;

/// The first thing every request meets: the client's real address (through trusted proxies
/// only), a request id that is safe to echo and log, and headers every answer carries.
async fn front_door(State(state): State<AppState>, mut request: Request<Body>, next: Next) -> Response {
    let unsafe_id = request.headers().get(&REQUEST_ID).is_some_and(|id| {
        id.len() > MAX_REQUEST_ID
            || !id
                .as_bytes()
                .iter()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b':'))
    });
    if unsafe_id {
        request.headers_mut().remove(&REQUEST_ID);
    }
    let peer = request
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map_or(IpAddr::from([0, 0, 0, 0]), |ConnectInfo(addr)| addr.ip());
    let headers = request.headers();
    let values = |name: &str| {
        headers
            .get_all(name)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .collect::<Vec<_>>()
    };
    let client = state.config.trusted_proxies.client_address(
        peer,
        values("forwarded").into_iter(),
        values("x-forwarded-for").into_iter(),
    );
    request.extensions_mut().insert(ClientIp(client));
    let mut response = next.run(request).await;
    let headers = response.headers_mut();
    headers.insert(X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    // Answers are per caller and many carry secrets (API keys, activation secrets, codes): no
    // cache keeps them unless a route says otherwise (the public JWKS does).
    if !headers.contains_key(CACHE_CONTROL) {
        headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    if !headers.contains_key(CONTENT_SECURITY_POLICY) {
        headers.insert(
            CONTENT_SECURITY_POLICY,
            HeaderValue::from_static("default-src 'none'; frame-ancestors 'none'"),
        );
    }
    headers.insert(X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    response
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

/// Answers a request that may have written only once its writes are on disk (SQLite syncs its
/// log for many requests at once: `store::durability`). A storefront stops retrying at a 2xx, so
/// an acknowledged purchase must survive a power loss.
async fn durable_writes(State(state): State<AppState>, request: Request<Body>, next: Next) -> Response {
    let writes = !request.method().is_safe();
    let response = next.run(request).await;
    let acknowledged = response.status().is_success() || response.status().is_redirection();
    if writes && acknowledged {
        if let Err(error) = state.store.durable().await {
            tracing::error!(%error, "could not sync the database log; the write is not acknowledged");
            return ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "storage_unavailable",
                "the change could not be confirmed on disk; retry it",
            )
            .retry_after(1)
            .into_response();
        }
    }
    response
}

pub fn router(state: AppState) -> Router {
    let durable = axum::middleware::from_fn_with_state(state.clone(), durable_writes);
    let metrics = axum::middleware::from_fn(crate::metrics::track);
    let front_door = axum::middleware::from_fn_with_state(state.clone(), front_door);
    let request_timeout = state.config.request_timeout;
    crate::api::router(state)
        .layer(durable)
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .layer(axum::middleware::from_fn(refuse_oversized))
        .layer(RequestBodyTimeoutLayer::new(request_timeout))
        .layer(TimeoutLayer::with_status_code(
            StatusCode::SERVICE_UNAVAILABLE,
            request_timeout,
        ))
        .layer(metrics)
        .layer(PropagateRequestIdLayer::new(REQUEST_ID))
        .layer(TraceLayer::new_for_http().make_span_with(|request: &Request<_>| {
            let request_id = request
                .headers()
                .get(REQUEST_ID)
                .and_then(|value| value.to_str().ok())
                .unwrap_or("-");
            let client = request
                .extensions()
                .get::<ClientIp>()
                .map(|ClientIp(ip)| ip.to_string())
                .unwrap_or_default();
            // The route template (`/api/v1/entitlements/{id}`), not the raw path: log indexes stay
            // small and a request's ids are in the fields of the spans below it. Requests that match
            // no route keep their path, which is what one needs to see then.
            match request.extensions().get::<MatchedPath>() {
                Some(route) => tracing::info_span!("request", method = %request.method(), route = route.as_str(), request_id, client),
                None => tracing::info_span!("request", method = %request.method(), path = %request.uri().path(), request_id, client),
            }
        }))
        .layer(SetRequestIdLayer::new(REQUEST_ID, NewRequestId))
        .layer(front_door)
}
