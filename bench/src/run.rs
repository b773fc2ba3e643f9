//! `bench/run`: seeds a database, starts `entitle serve` as its own process (as deployed) and the
//! baselines as another, loads each case with wrk (same threads, connections and duration for
//! every case), and prints one table — also written as JSON — of req/s, p50, p99, errors, the
//! ratio to the sign-only baseline and the server's peak resident memory during the case.

use anyhow::Context;
use entitle_server::config::{Config, ConfigLayer};
use entitle_server::store::Store;
use secrecy::ExposeSecret;
use serde_json::{json, Value};
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::wrk::{self, Figures, Load, Requests};

/// Issue 13's targets, as shares of the sign-only baseline: (case, SQLite, PostgreSQL).
const TARGETS: &[(&str, f64, f64)] = &[
    ("state read", 0.6, 0.35),
    ("refresh", 0.5, 0.25),
    ("new activation", 0.2, 0.1),
];

struct Options {
    entitle: PathBuf,
    seconds: u64,
    threads: u32,
    connections: u32,
    database_url: Option<String>,
    json: PathBuf,
    strict: bool,
    /// `all`, `licensing` or `mail`.
    cases: String,
    mails: usize,
    mail_concurrency: usize,
}

impl Options {
    fn parse(args: &[String]) -> anyhow::Result<Options> {
        let beside_me = std::env::current_exe()?.with_file_name("entitle");
        let mut options = Options {
            entitle: beside_me,
            seconds: 5,
            threads: 2,
            connections: 64,
            database_url: None,
            json: PathBuf::from("bench/latest.json"),
            strict: false,
            cases: "all".to_owned(),
            mails: 4000,
            mail_concurrency: 8,
        };
        let mut args = args.iter();
        while let Some(arg) = args.next() {
            if arg == "--strict" {
                options.strict = true;
                continue;
            }
            let value = args.next().with_context(|| format!("{arg} needs a value"))?;
            match arg.as_str() {
                "--entitle" => options.entitle = PathBuf::from(value),
                "--seconds" => options.seconds = value.parse()?,
                "--threads" => options.threads = value.parse()?,
                "--connections" => options.connections = value.parse()?,
                "--database-url" => options.database_url = Some(value.clone()),
                "--json" => options.json = PathBuf::from(value),
                "--cases" => options.cases = value.clone(),
                "--mails" => options.mails = value.parse()?,
                "--mail-concurrency" => options.mail_concurrency = value.parse()?,
                other => anyhow::bail!("unknown option {other}"),
            }
        }
        anyhow::ensure!(
            ["all", "licensing", "mail"].contains(&options.cases.as_str()),
            "--cases is all, licensing or mail"
        );
        Ok(options)
    }
}

/// A child process killed when dropped, so a failed run leaves nothing behind.
struct Process(Child);

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

impl Process {
    fn pid(&self) -> u32 {
        self.0.id()
    }

    /// Peak resident memory since the last reset, in MiB.
    fn peak_rss_mib(&self) -> f64 {
        std::fs::read_to_string(format!("/proc/{}/status", self.pid()))
            .ok()
            .and_then(|status| {
                status
                    .lines()
                    .find(|line| line.starts_with("VmHWM:"))
                    .and_then(|line| line.split_whitespace().nth(1))
                    .and_then(|kib| kib.parse::<f64>().ok())
            })
            .map_or(0.0, |kib| kib / 1024.0)
    }

    /// Starts a new peak-memory window (Linux: writing 5 to clear_refs resets VmHWM).
    fn reset_peak_rss(&self) {
        let _ = std::fs::write(format!("/proc/{}/clear_refs", self.pid()), "5");
    }
}

struct Seeded {
    tenant_id: String,
    product_id: String,
    admin_key: String,
    entitlement_id: String,
    customer_id: String,
}

pub fn main(args: &[String]) -> anyhow::Result<()> {
    let options = Options::parse(args)?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()?;
    runtime.block_on(run(options))
}

fn free_address() -> anyhow::Result<std::net::SocketAddr> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
    Ok(listener.local_addr()?)
}

async fn seed(data_dir: &Path, database_url: Option<&str>) -> anyhow::Result<Seeded> {
    let config = Config::from_layer(ConfigLayer {
        data_dir: Some(data_dir.to_path_buf()),
        database_url: database_url.map(str::to_owned),
        ..Default::default()
    })?;
    let store = Store::open(config.database_url.expose_secret()).await?;
    let seeded = entitle_server::demo::seed(&store, &entitle_server::app::mail_settings(&config)).await?;
    store.close().await;
    Ok(Seeded {
        tenant_id: seeded.tenant_id,
        product_id: seeded.product_id,
        admin_key: seeded.admin_key.expose_secret().to_owned(),
        entitlement_id: seeded.entitlement.id.clone(),
        customer_id: seeded.entitlement.customer_id.clone(),
    })
}

fn start_server(options: &Options, data_dir: &Path, address: std::net::SocketAddr) -> anyhow::Result<Process> {
    let log = std::fs::File::create(data_dir.join("server.log"))?;
    let mut command = Command::new(&options.entitle);
    command
        .args(["serve", "--listen", &address.to_string(), "--data-dir"])
        .arg(data_dir)
        .env("RUST_LOG", "warn")
        .env_remove("ENTITLE_CONFIG")
        .env_remove("ENTITLE_DATABASE_URL")
        .stdout(Stdio::null())
        .stderr(log);
    if let Some(url) = &options.database_url {
        command.args(["--database-url", url]);
    }
    let child = command
        .spawn()
        .with_context(|| format!("starting {}", options.entitle.display()))?;
    Ok(Process(child))
}

fn start_baselines(lease_bytes: usize, data_dir: &Path) -> anyhow::Result<(Process, String)> {
    let mut child = Command::new(std::env::current_exe()?)
        .args(["baseline", "--lease-bytes", &lease_bytes.to_string(), "--data-dir"])
        .arg(data_dir.join("baseline"))
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .context("starting the baselines")?;
    let stdout = child.stdout.take().context("the baselines' output")?;
    let process = Process(child);
    let mut line = String::new();
    BufReader::new(stdout).read_line(&mut line)?;
    let address = line
        .trim()
        .strip_prefix("listening on ")
        .with_context(|| format!("the baselines said {line:?}"))?;
    Ok((process, format!("http://{address}")))
}

async fn wait_until_healthy(client: &reqwest::Client, base: &str) -> anyhow::Result<()> {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if let Ok(answer) = client.get(format!("{base}/healthz")).send().await {
            if answer.status().is_success() {
                return Ok(());
            }
        }
        anyhow::ensure!(Instant::now() < deadline, "the server did not become healthy");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn call(request: reqwest::RequestBuilder) -> anyhow::Result<Value> {
    let answer = request.send().await?;
    let status = answer.status();
    let body: Value = answer.json().await.unwrap_or(Value::Null);
    anyhow::ensure!(status.is_success(), "setup call answered {status}: {body}");
    Ok(body)
}

/// Large seat counts and unlimited pools and usage, so the cases measure work, not denials.
fn roomy() -> Value {
    json!({"seat_count": 1_000_000,
           "features": [{"key": "render_nodes", "limit": null}, {"key": "cloud_renders", "limit": null}]})
}

struct Fixtures {
    secrets: Vec<String>,
    codes: Vec<String>,
    lease_bytes: usize,
}

async fn prepare(client: &reqwest::Client, base: &str, seeded: &Seeded) -> anyhow::Result<Fixtures> {
    let key = &seeded.admin_key;
    let entitlement_url = format!("{base}/api/v1/entitlements/{}", seeded.entitlement_id);
    let entitlement = call(client.patch(&entitlement_url).bearer_auth(key).json(&roomy())).await?;
    let code = entitlement["activation_code"]
        .as_str()
        .context("the activation code")?
        .to_owned();
    let activate = |code: &str, seat: String| {
        json!({"tenant": seeded.tenant_id, "product": seeded.product_id, "activation_code": code,
               "seat_id": seat, "nonce": "bench-setup-nonce"})
    };
    let mut secrets = Vec::new();
    for n in 0..256 {
        let answer = call(
            client
                .post(format!("{base}/licensing/v1/activate"))
                .json(&activate(&code, format!("bench-device-{n}"))),
        )
        .await?;
        secrets.push(
            answer["activation_secret"]
                .as_str()
                .context("an activation secret")?
                .to_owned(),
        );
    }
    // New activations spread over many entitlements.
    let mut codes = Vec::new();
    for _ in 0..64 {
        let created = call(
            client
                .post(format!("{base}/api/v1/entitlements"))
                .bearer_auth(key)
                .json(&json!({"customer_id": seeded.customer_id, "sku": "PF-PRO-Y"})),
        )
        .await?;
        let id = created["id"].as_str().context("an entitlement id")?;
        call(
            client
                .patch(format!("{base}/api/v1/entitlements/{id}"))
                .bearer_auth(key)
                .json(&roomy()),
        )
        .await?;
        codes.push(
            created["activation_code"]
                .as_str()
                .context("an activation code")?
                .to_owned(),
        );
    }
    let lease = client
        .get(format!("{base}/licensing/v1/activation"))
        .bearer_auth(&secrets[0])
        .header("entitle-nonce", "bench-setup-nonce")
        .send()
        .await?
        .bytes()
        .await?;
    Ok(Fixtures {
        secrets,
        codes,
        lease_bytes: lease.len(),
    })
}

fn machine() -> Value {
    let read = |path: &str| std::fs::read_to_string(path).unwrap_or_default();
    let cpu = read("/proc/cpuinfo")
        .lines()
        .find(|line| line.starts_with("model name"))
        .and_then(|line| line.split(':').nth(1))
        .map(|model| model.trim().to_owned())
        .unwrap_or_default();
    let memory = read("/proc/meminfo")
        .lines()
        .find(|line| line.starts_with("MemTotal"))
        .map(|line| line.split_whitespace().skip(1).collect::<Vec<_>>().join(" "))
        .unwrap_or_default();
    json!({
        "cores": std::thread::available_parallelism().map_or(0, |n| n.get()),
        "cpu": cpu,
        "memory": memory,
        "kernel": read("/proc/sys/kernel/osrelease").trim(),
    })
}

async fn run(options: Options) -> anyhow::Result<()> {
    let work_dir = std::env::temp_dir().join(format!("entitle-bench-{}", std::process::id()));
    std::fs::create_dir_all(&work_dir)?;
    let outcome = measure(&options, &work_dir).await;
    let _ = std::fs::remove_dir_all(&work_dir);
    outcome
}

async fn measure(options: &Options, work_dir: &Path) -> anyhow::Result<()> {
    let mut report = json!({"machine": machine()});
    let mut missed = 0;
    if options.cases != "mail" {
        let (licensing, licensing_missed) = licensing(options, work_dir).await?;
        report["licensing"] = licensing;
        missed += licensing_missed;
    }
    if options.cases != "licensing" {
        let outcome =
            crate::mail::throughput(options.database_url.clone(), options.mails, options.mail_concurrency).await?;
        let met = outcome.per_second >= crate::mail::TARGET_PER_SECOND;
        missed += usize::from(!met);
        println!(
            "mail: {} queued mails drained to a loopback relay over {} connections: {:.0} mails/s (target >= {:.0}: {})",
            outcome.mails,
            outcome.concurrency,
            outcome.per_second,
            crate::mail::TARGET_PER_SECOND,
            if met { "met" } else { "MISSED" }
        );
        report["mail"] = json!({"mails": outcome.mails, "connections": outcome.concurrency,
                                "mails_per_second": outcome.per_second,
                                "target": crate::mail::TARGET_PER_SECOND, "met": met});
    }
    if let Some(parent) = options.json.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent)?;
    }
    std::fs::write(&options.json, serde_json::to_string_pretty(&report)?)?;
    println!("written to {}", options.json.display());
    if options.strict && missed > 0 {
        anyhow::bail!("{missed} target(s) missed");
    }
    Ok(())
}

/// The licensing cases against the baselines: the report and how many targets were missed.
async fn licensing(options: &Options, work_dir: &Path) -> anyhow::Result<(Value, usize)> {
    let seeded = seed(work_dir, options.database_url.as_deref()).await?;
    let address = free_address()?;
    let server = start_server(options, work_dir, address)?;
    let base = format!("http://{address}");
    let client = reqwest::Client::new();
    wait_until_healthy(&client, &base).await?;
    let fixtures = prepare(&client, &base, &seeded).await?;
    let (_baselines, baseline) = start_baselines(fixtures.lease_bytes, work_dir)?;
    let database = if options.database_url.is_some() {
        "PostgreSQL"
    } else {
        "SQLite"
    };
    let holder = |method, path: &str, body: Option<&str>| Requests::Holder {
        method,
        path: path.to_owned(),
        secrets: fixtures.secrets.clone(),
        body: body.map(str::to_owned),
    };
    let cases: Vec<(&str, &str, Requests)> = vec![
        (
            "(a) empty handler",
            &baseline,
            Requests::Plain {
                method: "GET",
                path: "/empty".into(),
            },
        ),
        (
            "(b) sign-only handler",
            &baseline,
            Requests::Plain {
                method: "GET",
                path: "/sign".into(),
            },
        ),
        (
            "(c) SQLite insert transaction",
            &baseline,
            Requests::Plain {
                method: "POST",
                path: "/sqlite".into(),
            },
        ),
        ("state read", &base, holder("GET", "/licensing/v1/activation", None)),
        (
            "refresh",
            &base,
            holder("POST", "/licensing/v1/activation/refresh", None),
        ),
        (
            "new activation",
            &base,
            Requests::Activate {
                tenant: seeded.tenant_id.clone(),
                product: seeded.product_id.clone(),
                codes: fixtures.codes.clone(),
            },
        ),
        (
            "pool checkout",
            &base,
            holder(
                "POST",
                "/licensing/v1/activation/features/render_nodes/checkout",
                Some(r#"{"count":1}"#),
            ),
        ),
        (
            "usage",
            &base,
            holder(
                "POST",
                "/licensing/v1/activation/usage",
                Some(r#"{"feature":"cloud_renders","amount":1}"#),
            ),
        ),
    ];
    let load = Load {
        threads: options.threads,
        connections: options.connections,
        seconds: options.seconds,
    };
    println!(
        "entitle bench: {database}, wrk -t{} -c{} -d{}s per case, lease body {} bytes",
        load.threads, load.connections, load.seconds, fixtures.lease_bytes
    );
    println!(
        "{:<32} {:>9} {:>8} {:>8} {:>7} {:>9} {:>10}",
        "case", "req/s", "p50 ms", "p99 ms", "errors", "vs (b)", "peak MiB"
    );
    let mut rows = Vec::new();
    let mut signing = None;
    for (index, (name, target, requests)) in cases.iter().enumerate() {
        let on_server = *target == base.as_str();
        if on_server {
            server.reset_peak_rss();
        }
        let figures: Figures = wrk::run(target, requests, &load, work_dir, &format!("case{index}"))?;
        let rate = figures.per_second();
        if name.starts_with("(b)") {
            signing = Some(rate);
        }
        let ratio = signing.map(|s| rate / s);
        let peak = on_server.then(|| server.peak_rss_mib());
        println!(
            "{:<32} {:>9.0} {:>8.2} {:>8.2} {:>7} {:>9} {:>10}",
            name,
            rate,
            figures.p50_us as f64 / 1000.0,
            figures.p99_us as f64 / 1000.0,
            figures.errors(),
            ratio.map_or("-".to_owned(), |r| format!("{r:.2}")),
            peak.map_or("-".to_owned(), |p| format!("{p:.0}")),
        );
        rows.push(json!({
            "case": name, "requests_per_second": rate, "p50_ms": figures.p50_us as f64 / 1000.0,
            "p99_ms": figures.p99_us as f64 / 1000.0, "errors": figures.errors(),
            "ratio_to_sign_only": ratio, "server_peak_rss_mib": peak,
        }));
    }
    let mut verdicts = Vec::new();
    let mut missed = 0;
    for (case, sqlite, postgres) in TARGETS {
        let target = if options.database_url.is_some() {
            *postgres
        } else {
            *sqlite
        };
        let measured = rows
            .iter()
            .find(|row| row["case"] == *case)
            .and_then(|row| row["ratio_to_sign_only"].as_f64())
            .unwrap_or(0.0);
        let met = measured >= target;
        missed += usize::from(!met);
        println!(
            "target {case}: >= {target:.2} x (b), measured {measured:.2}: {}",
            if met { "met" } else { "MISSED" }
        );
        verdicts.push(json!({"case": case, "target": target, "measured": measured, "met": met}));
    }
    let report = json!({
        "database": database,
        "load": {"tool": "wrk", "threads": load.threads, "connections": load.connections, "seconds": load.seconds},
        "lease_bytes": fixtures.lease_bytes, "cases": rows, "targets": verdicts,
    });
    drop(server);
    Ok((report, missed))
}
