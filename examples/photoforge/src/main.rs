//! PhotoForge: an example application licensed with `entitle-client`. Copy it.
//!
//! ```text
//! photoforge activate <code> [seat name]   take a seat with the activation code
//! photoforge status                        edition, features, expiry, seats (from the token)
//! photoforge export                        needs `batch_export` (Pro and Studio)
//! photoforge upscale                       needs `ai_upscale` (Studio)
//! photoforge render <n>                    uses n `cloud_renders` (metered)
//! photoforge nodes <n>                     borrows n `render_nodes` (a floating pool) for a job
//! photoforge deactivate                    frees the seat
//! photoforge offline-request <code>        prints an activation request file (air-gapped)
//! photoforge offline-load <licence file>   loads the licence file the server answered
//! photoforge offline-deactivate            removes the licence, prints a deactivation request
//! ```
//!
//! Configuration: `ENTITLE_URL`, `ENTITLE_TENANT`, `ENTITLE_PRODUCT`, `ENTITLE_JWKS` (path to the
//! tenant's jwks.json) and optionally `ENTITLE_CACHE` (the licence cache file). A shipped
//! application would compile these in, the JWKS with `include_str!`: the environment is only
//! there so the example runs against any server.

use std::path::PathBuf;
use std::process::ExitCode;

use entitle_client::{device_fingerprint, Client, Config, Credential, Denial, Error, LeaseClaims};

const USAGE: &str = "usage: photoforge <activate CODE [NAME] | status | export | upscale | render N | nodes N | \
                     deactivate | offline-request CODE | offline-load FILE | offline-deactivate>";

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let client = match client() {
        Ok(client) => client,
        Err(message) => {
            eprintln!("photoforge: {message}");
            return ExitCode::from(2);
        }
    };
    match run(&client, &args).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(Failure::Usage) => {
            eprintln!("{USAGE}");
            ExitCode::from(2)
        }
        Err(Failure::Licence(error)) => {
            eprintln!("photoforge: {}", explain(&error));
            ExitCode::FAILURE
        }
        Err(Failure::Io(message)) => {
            eprintln!("photoforge: {message}");
            ExitCode::FAILURE
        }
    }
}

enum Failure {
    Usage,
    Licence(Error),
    Io(String),
}

impl From<Error> for Failure {
    fn from(error: Error) -> Self {
        Failure::Licence(error)
    }
}

fn env(name: &str) -> Result<String, String> {
    std::env::var(name).map_err(|_| format!("{name} is not set"))
}

/// The licence cache: `ENTITLE_CACHE`, else the user's data directory.
fn cache_path() -> PathBuf {
    if let Ok(path) = std::env::var("ENTITLE_CACHE") {
        return PathBuf::from(path);
    }
    let data = std::env::var_os("XDG_DATA_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|home| PathBuf::from(home).join(".local/share")))
        .or_else(|| std::env::var_os("APPDATA").map(PathBuf::from))
        .unwrap_or_else(|| PathBuf::from("."));
    data.join("photoforge").join("licence.json")
}

fn client() -> Result<Client, String> {
    let url = std::env::var("ENTITLE_URL").unwrap_or_else(|_| "http://127.0.0.1:8080".into());
    let tenant = env("ENTITLE_TENANT")?;
    let product = env("ENTITLE_PRODUCT")?;
    let jwks_path = env("ENTITLE_JWKS")?;
    let jwks = std::fs::read_to_string(&jwks_path).map_err(|e| format!("{jwks_path}: {e}"))?;
    let cache = cache_path();
    // The fallback id lives next to the cache, so a machine without a machine id keeps its seat.
    let fallback = cache.with_file_name("installation-id");
    let seat = device_fingerprint(&product, &fallback).map_err(|e| format!("device fingerprint: {e}"))?;
    let config = Config::new(url, tenant, product, &jwks, seat, cache).map_err(|e| e.to_string())?;
    Client::new(config).map_err(|e| e.to_string())
}

async fn run(client: &Client, args: &[String]) -> Result<(), Failure> {
    let arg = |i: usize| args.get(i).map(String::as_str);
    match (arg(0), arg(1)) {
        (Some("activate"), Some(code)) => {
            let name = arg(2).map(str::to_owned).or_else(hostname);
            let lease = client
                .activate(Credential::Code(code.to_owned()), name.as_deref())
                .await?;
            println!("Activated {} on this computer.", lease.entitlement.sku);
            print_status(&lease);
        }
        (Some("status"), None) => print_status(&client.ensure_lease().await?),
        (Some("export"), None) => {
            require(client, "batch_export", "Batch export needs PhotoForge Pro or Studio.").await?;
            println!("Exported 24 photos to ./export/.");
        }
        (Some("upscale"), None) => {
            require(client, "ai_upscale", "AI upscaling needs PhotoForge Studio.").await?;
            println!("Upscaled photo.raw to 4x.");
        }
        (Some("render"), Some(n)) => {
            let n = count(n)?;
            let lease = client.record_usage("cloud_renders", n).await?;
            println!("Rendered {n} frame(s) in the cloud.");
            if let Some(renders) = lease.feature("cloud_renders") {
                println!(
                    "Cloud renders this period: {} of {}",
                    renders.used,
                    limit(renders.limit)
                );
            }
        }
        (Some("nodes"), Some(n)) => {
            let n = count(n)?;
            // Floating units: borrowed for the job only, so other computers can use them after.
            client.checkout("render_nodes", n).await?;
            println!("Rendering on {n} network node(s)…");
            client.give_back("render_nodes", n).await?;
            println!("Done; the nodes are back in the pool.");
        }
        (Some("deactivate"), None) => {
            client.deactivate().await?;
            println!("Deactivated: the seat is free for another computer.");
        }
        (Some("offline-request"), Some(code)) => {
            print!("{}", client.write_activation_request(code, hostname().as_deref())?);
            eprintln!("Post this file to your licensing server (/licensing/v1/offline/activate), then run");
            eprintln!("`photoforge offline-load <licence file>` with the licence it answers.");
        }
        (Some("offline-load"), Some(path)) => {
            let text = std::fs::read_to_string(path).map_err(|e| Failure::Io(format!("{path}: {e}")))?;
            let lease = client.load_licence_file(&text)?;
            println!("Licence loaded.");
            print_status(&lease);
        }
        (Some("offline-deactivate"), None) => {
            print!("{}", client.write_deactivation_request()?);
            eprintln!("The licence is removed. Post this file to /licensing/v1/offline/deactivate to free the seat.");
        }
        _ => return Err(Failure::Usage),
    }
    Ok(())
}

/// Gates a feature on the lease: refreshed when due, else the cached one (works offline).
async fn require(client: &Client, feature: &str, upsell: &str) -> Result<(), Failure> {
    if client.ensure_lease().await?.is_enabled(feature) {
        Ok(())
    } else {
        Err(Failure::Io(upsell.to_owned()))
    }
}

fn count(n: &str) -> Result<u32, Failure> {
    n.parse().ok().filter(|&n| n > 0).ok_or(Failure::Usage)
}

fn limit(limit: Option<i64>) -> String {
    limit.map_or_else(|| "unlimited".into(), |l| l.to_string())
}

fn hostname() -> Option<String> {
    std::env::var("HOSTNAME")
        .or_else(|_| std::env::var("COMPUTERNAME"))
        .ok()
        .or_else(|| std::fs::read_to_string("/etc/hostname").ok())
        .map(|h| h.trim().to_owned())
        .filter(|h| !h.is_empty())
}

fn in_time(unix: i64) -> String {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64);
    let left = unix - now;
    if left <= 0 {
        return "expired".into();
    }
    match left {
        s if s >= 2 * 86_400 => format!("in {} days", s / 86_400),
        s if s >= 3_600 => format!("in {} h {} min", s / 3_600, s % 3_600 / 60),
        s => format!("in {} min", (s + 59) / 60),
    }
}

fn print_status(lease: &LeaseClaims) {
    let e = &lease.entitlement;
    println!("Edition:  {} ({}, {})", e.sku, e.plan_kind, e.status);
    println!(
        "Seats:    {} of {} used ({})",
        e.seats_used, e.seat_count, e.concurrency_mode
    );
    let seat = lease.seat.name.as_deref().unwrap_or("this computer");
    let offline = if lease.seat.offline { ", offline licence" } else { "" };
    println!("Seat:     {seat}{offline}");
    match e.expires_at {
        Some(at) => println!("Expires:  {}", in_time(at)),
        None => println!("Expires:  never"),
    }
    println!(
        "Lease:    valid {} without the server",
        in_time(lease.exp).replace("in ", "for ")
    );
    println!("Features:");
    for f in &lease.features {
        let detail = match f.kind.as_str() {
            "element_pool" => format!("pool of {}, {} in use, {} here", limit(f.limit), f.used, f.checked_out),
            "usage_count" => format!("{} of {} used this period", f.used, limit(f.limit)),
            _ => String::new(),
        };
        let mark = if f.enabled { "✓" } else { "✗" };
        println!("{}", format!("  {mark} {:<14} {detail}", f.key).trim_end());
    }
}

/// What to tell the user, per error the SDK can return.
fn explain(error: &Error) -> String {
    match error {
        Error::NotActivated => "not activated: run `photoforge activate <code>`".into(),
        Error::Denied(Denial::InvalidCredential) => "that activation code is not valid".into(),
        Error::Denied(Denial::SeatLimitReached) => {
            "every seat is in use: deactivate PhotoForge on another computer first".into()
        }
        Error::Denied(Denial::InvalidActivation | Denial::LeaseExpired) => {
            "this computer's activation ended: activate again".into()
        }
        Error::Denied(Denial::EntitlementExpired) => "your PhotoForge subscription has ended".into(),
        Error::Denied(Denial::EntitlementDisabled) => "your licence was suspended: contact support".into(),
        Error::Denied(Denial::EntitlementNotStarted) => "your licence has not started yet".into(),
        Error::Denied(Denial::FeatureNotEntitled) => "your edition does not include this".into(),
        Error::Denied(Denial::PoolExhausted) => "all render nodes are busy: try again later".into(),
        Error::Denied(Denial::UsageLimitReached) => "your cloud renders for this period are used up".into(),
        Error::Denied(Denial::OfflineNotAllowed) => "your licence does not allow offline activation".into(),
        Error::Denied(Denial::RateLimited { retry_after }) => match retry_after {
            Some(wait) => format!("too many attempts: try again in {} s", wait.as_secs()),
            None => "too many attempts: try again later".into(),
        },
        Error::LeaseExpired => "the licence needs to be renewed: connect to the internet and run again".into(),
        Error::ClockTampered => "the system clock is wrong: set it to the correct time".into(),
        Error::Network(_) | Error::Server { .. } => format!("the licensing server is unreachable ({error})"),
        Error::BadSignature | Error::Replay | Error::WrongProduct | Error::WrongSeat => {
            format!("the licence could not be verified ({error})")
        }
        other => other.to_string(),
    }
}
