//! Load benchmark of the licensing hot path, reported as ratios against two baselines measured in
//! the same run on the same machine: an empty axum handler, and a handler that only signs a
//! licensing-sized body (the floor for any signed answer).
//!
//! `cargo run --release -p entitle-bench -- [--seconds N] [--concurrency N] [--database-url URL]
//! [--case all|licensing|mail] [--mails N] [--mail-concurrency N]`
//!
//! The mail case ([`mail`]) reports mails accepted by a loopback relay per second.

mod mail;

use anyhow::Context;
use axum::http::header::CONTENT_TYPE;
use axum::response::IntoResponse;
use axum::routing::get;
use entitle_server::config::{Config, ConfigLayer};
use entitle_server::Application;
use secrecy::ExposeSecret;
use serde_json::json;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Targets: each endpoint's throughput as a share of the sign-only handler's. SQLite runs in the
/// process; PostgreSQL shares the machine's cores with the server and the load generator.
const SQLITE_TARGETS: &[(&str, f64)] = &[
    ("GET  /licensing/v1/activation", 0.25),
    ("POST /licensing/v1/activation/refresh", 0.15),
];
const POSTGRES_TARGETS: &[(&str, f64)] = &[
    ("GET  /licensing/v1/activation", 0.10),
    ("POST /licensing/v1/activation/refresh", 0.05),
];

struct Options {
    seconds: u64,
    concurrency: usize,
    database_url: Option<String>,
    /// `all`, `licensing` or `mail`.
    case: String,
    mails: usize,
    mail_concurrency: usize,
}

fn options() -> anyhow::Result<Options> {
    let mut options = Options {
        seconds: 5,
        concurrency: 32,
        database_url: None,
        case: "all".to_owned(),
        mails: 4000,
        mail_concurrency: 8,
    };
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let value = args.next().with_context(|| format!("{arg} needs a value"))?;
        match arg.as_str() {
            "--seconds" => options.seconds = value.parse()?,
            "--concurrency" => options.concurrency = value.parse()?,
            "--database-url" => options.database_url = Some(value),
            "--case" => options.case = value,
            "--mails" => options.mails = value.parse()?,
            "--mail-concurrency" => options.mail_concurrency = value.parse()?,
            other => anyhow::bail!("unknown option {other}"),
        }
    }
    Ok(options)
}

#[derive(Clone)]
struct Target {
    name: &'static str,
    method: reqwest::Method,
    url: String,
    bearer: Vec<String>,
    body: Option<serde_json::Value>,
}

struct Outcome {
    errors: u64,
    per_second: f64,
    p50: Duration,
    p99: Duration,
}

async fn load(client: &reqwest::Client, target: &Target, options: &Options) -> Outcome {
    let deadline = Instant::now() + Duration::from_secs(options.seconds);
    let counter = Arc::new(AtomicU64::new(0));
    let errors = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let mut workers = Vec::new();
    for worker in 0..options.concurrency {
        let (client, target, counter, errors) = (client.clone(), target.clone(), counter.clone(), errors.clone());
        workers.push(tokio::spawn(async move {
            let mut latencies = Vec::new();
            let mut n = worker;
            while Instant::now() < deadline {
                let mut request = client
                    .request(target.method.clone(), &target.url)
                    .header("entitle-nonce", format!("bench-nonce-{worker}-{n}"));
                if !target.bearer.is_empty() {
                    request = request.bearer_auth(&target.bearer[n % target.bearer.len()]);
                }
                if let Some(body) = &target.body {
                    let mut body = body.clone();
                    body["nonce"] = json!(format!("bench-nonce-{worker}-{n}"));
                    request = request.json(&body);
                }
                let sent = Instant::now();
                match request.send().await {
                    Ok(response) if response.status().is_success() => {
                        let _ = response.bytes().await;
                        latencies.push(sent.elapsed());
                        counter.fetch_add(1, Ordering::Relaxed);
                    }
                    _ => {
                        errors.fetch_add(1, Ordering::Relaxed);
                    }
                }
                n += STRIDE;
            }
            latencies
        }));
    }
    let mut latencies = Vec::new();
    for worker in workers {
        latencies.extend(worker.await.unwrap_or_default());
    }
    let elapsed = started.elapsed().as_secs_f64();
    latencies.sort();
    let at = |q: f64| {
        latencies
            .get(((latencies.len() as f64 * q) as usize).min(latencies.len().saturating_sub(1)))
            .copied()
            .unwrap_or_default()
    };
    let requests = counter.load(Ordering::Relaxed);
    Outcome {
        errors: errors.load(Ordering::Relaxed),
        per_second: requests as f64 / elapsed,
        p50: at(0.50),
        p99: at(0.99),
    }
}

/// Workers step through the activations with a stride so they rarely share one.
const STRIDE: usize = 7;

/// The two baselines: an empty handler, and one that only signs `body`.
async fn baselines(body: Vec<u8>) -> anyhow::Result<String> {
    let signer = Arc::new(entitle_protocol::Signer::from_seed("bench", &[7; 32]));
    let body = Arc::new(body);
    let app = axum::Router::new()
        .route("/empty", get(|| async { ([(CONTENT_TYPE, "application/json")], "{}") }))
        .route(
            "/sign",
            get(move || {
                let (signer, body) = (signer.clone(), body.clone());
                async move {
                    let signature = signer.sign_detached(&body);
                    (
                        [
                            (CONTENT_TYPE, "application/json".to_owned()),
                            (entitle_protocol::SIGNATURE_HEADER.parse().unwrap(), signature),
                        ],
                        body.as_ref().clone(),
                    )
                        .into_response()
                }
            }),
        );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let base = format!("http://{}", listener.local_addr()?);
    tokio::spawn(async move { axum::serve(listener, app).await });
    Ok(base)
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let options = options()?;
    anyhow::ensure!(
        ["all", "licensing", "mail"].contains(&options.case.as_str()),
        "--case is all, licensing or mail"
    );
    let mut missed = 0;
    if options.case != "mail" {
        missed += licensing(&options).await?;
    }
    if options.case != "licensing" {
        let outcome = mail::throughput(options.database_url.clone(), options.mails, options.mail_concurrency).await?;
        let verdict = if outcome.per_second >= mail::TARGET_PER_SECOND {
            "met"
        } else {
            missed += 1;
            "MISSED"
        };
        println!(
            "mail: {} queued mails drained to a loopback relay over {} connections: {:.0} mails/s \
             (target >= {:.0}: {verdict})",
            outcome.mails,
            outcome.concurrency,
            outcome.per_second,
            mail::TARGET_PER_SECOND
        );
    }
    if missed > 0 {
        anyhow::bail!("{missed} target(s) missed");
    }
    Ok(())
}

/// The licensing endpoints against the baselines; how many targets were missed.
async fn licensing(options: &Options) -> anyhow::Result<u32> {
    let data_dir = std::env::temp_dir().join(format!("entitle-bench-{}", std::process::id()));
    let config = Config::from_layer(ConfigLayer {
        listen: Some("127.0.0.1:0".parse()?),
        data_dir: Some(data_dir.clone()),
        database_url: options.database_url.clone(),
        ..Default::default()
    })?;
    let mail = entitle_server::app::mail_settings(&config);
    let app = Application::build(config).await?;
    let base = format!("http://{}", app.local_addr());
    let store = app.store().clone();
    tokio::spawn(app.run_until(std::future::pending()));

    let seeded = entitle_server::demo::seed(&store, &mail).await?;
    let key = seeded.admin_key.expose_secret().to_owned();
    let client = reqwest::Client::builder().pool_max_idle_per_host(256).build()?;
    // A 1000-seat entitlement and 64 activated devices.
    let ent = &seeded.entitlement;
    let path = format!("{base}/api/v1/entitlements/{}", ent.id);
    client
        .patch(&path)
        .bearer_auth(&key)
        .json(&json!({"seat_count": 1000}))
        .send()
        .await?
        .error_for_status()?;
    let activate = |seat: String| {
        json!({"tenant": seeded.tenant_id, "product": seeded.product_id,
        "activation_code": ent.activation_code, "seat_id": seat, "nonce": "bench-nonce-setup"})
    };
    let mut secrets = Vec::new();
    for n in 0..64 {
        let answer: serde_json::Value = client
            .post(format!("{base}/licensing/v1/activate"))
            .json(&activate(format!("bench-device-{n}")))
            .send()
            .await?
            .error_for_status()?
            .json()
            .await?;
        secrets.push(answer["activation_secret"].as_str().context("secret")?.to_owned());
    }
    let lease = client
        .get(format!("{base}/licensing/v1/activation"))
        .bearer_auth(&secrets[0])
        .header("entitle-nonce", "bench-nonce-setup")
        .send()
        .await?
        .bytes()
        .await?
        .to_vec();
    let baseline = baselines(lease.clone()).await?;

    let targets = vec![
        Target {
            name: "empty handler",
            method: reqwest::Method::GET,
            url: format!("{baseline}/empty"),
            bearer: vec![],
            body: None,
        },
        Target {
            name: "sign-only handler",
            method: reqwest::Method::GET,
            url: format!("{baseline}/sign"),
            bearer: vec![],
            body: None,
        },
        Target {
            name: "GET  /licensing/v1/activation",
            method: reqwest::Method::GET,
            url: format!("{base}/licensing/v1/activation"),
            bearer: secrets.clone(),
            body: None,
        },
        Target {
            name: "POST /licensing/v1/activation/refresh",
            method: reqwest::Method::POST,
            url: format!("{base}/licensing/v1/activation/refresh"),
            bearer: secrets.clone(),
            body: None,
        },
        Target {
            name: "POST /licensing/v1/activate (same seat)",
            method: reqwest::Method::POST,
            url: format!("{base}/licensing/v1/activate"),
            bearer: vec![],
            body: Some(activate("bench-device-0".into())),
        },
        Target {
            name: "GET  /api/v1/entitlements/{id}",
            method: reqwest::Method::GET,
            url: path.clone(),
            bearer: vec![key.clone()],
            body: None,
        },
    ];
    println!(
        "entitle-bench: {} s per endpoint, {} concurrent clients, {} bytes of lease claims, database {}",
        options.seconds,
        options.concurrency,
        lease.len(),
        if options.database_url.is_some() {
            "PostgreSQL"
        } else {
            "SQLite"
        }
    );
    println!(
        "{:<42} {:>9} {:>8} {:>8} {:>7} {:>9} {:>11}",
        "endpoint", "req/s", "p50 ms", "p99 ms", "errors", "vs empty", "vs signing"
    );
    let mut results: Vec<(&str, f64)> = Vec::new();
    for target in &targets {
        let outcome = load(&client, target, options).await;
        let empty = results.first().map_or(outcome.per_second, |r| r.1);
        let signing = results.get(1).map_or(outcome.per_second, |r| r.1);
        println!(
            "{:<42} {:>9.0} {:>8.2} {:>8.2} {:>7} {:>9.2} {:>11.2}",
            target.name,
            outcome.per_second,
            outcome.p50.as_secs_f64() * 1000.0,
            outcome.p99.as_secs_f64() * 1000.0,
            outcome.errors,
            outcome.per_second / empty,
            outcome.per_second / signing,
        );
        results.push((target.name, outcome.per_second));
    }
    let signing = results[1].1;
    let mut missed = 0;
    let targets = if options.database_url.is_some() {
        POSTGRES_TARGETS
    } else {
        SQLITE_TARGETS
    };
    for (name, target) in targets {
        let ratio = results.iter().find(|r| r.0 == *name).map_or(0.0, |r| r.1 / signing);
        let verdict = if ratio >= *target {
            "met"
        } else {
            missed += 1;
            "MISSED"
        };
        println!("target {name}: >= {target:.2} x sign-only, measured {ratio:.2}: {verdict}");
    }
    let _ = std::fs::remove_dir_all(&data_dir);
    Ok(missed)
}
