//! The binary as a process whose stderr is broken: a full device, a pipe whose reader is gone,
//! and a pipe nobody reads. It must start, send mail, refresh leases and say it is ready,
//! whatever happens to its log.

use serde_json::{json, Value};
use std::net::TcpListener;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::helpers::TempDir;

/// What `entitle demo` seeded: tenant, admin key, product, entitlement and its activation code.
struct Demo {
    tenant: String,
    key: String,
    product: String,
    entitlement: String,
    code: String,
}

fn field(text: &str, label: &str) -> String {
    let line = text.lines().find(|l| l.trim_start().starts_with(label)).expect(label);
    line[line.find(label).unwrap() + label.len()..]
        .split_whitespace()
        .next()
        .unwrap()
        .to_owned()
}

fn demo(dir: &Path) -> Demo {
    let output = Command::new(env!("CARGO_BIN_EXE_entitle"))
        .args(["--data-dir", dir.to_str().unwrap(), "demo"])
        .env_remove("ENTITLE_DATABASE_URL")
        .env_remove("ENTITLE_CONFIG")
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let text = String::from_utf8(output.stdout).unwrap();
    let product_line = text.lines().find(|l| l.trim_start().starts_with("product:")).unwrap();
    let entitlement_line = text
        .lines()
        .find(|l| l.trim_start().starts_with("entitlement:"))
        .unwrap();
    Demo {
        tenant: field(&text, "tenant id:"),
        key: field(&text, "admin API key:"),
        product: product_line.split('(').nth(1).unwrap().trim_end_matches(')').to_owned(),
        entitlement: field(entitlement_line, "entitlement:"),
        code: entitlement_line.rsplit(' ').next().unwrap().to_owned(),
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

fn serve(dir: &Path, port: u16, stderr: Stdio) -> Child {
    Command::new(env!("CARGO_BIN_EXE_entitle"))
        .args([
            "serve",
            "--listen",
            &format!("127.0.0.1:{port}"),
            "--data-dir",
            dir.to_str().unwrap(),
        ])
        .env_remove("ENTITLE_DATABASE_URL")
        .env_remove("ENTITLE_CONFIG")
        // Every request and worker round logs: the broken stderr is met all the time.
        .env("RUST_LOG", "debug,sqlx=info")
        .env("ENTITLE_MAIL_POLL_MS", "200")
        .stdout(Stdio::null())
        .stderr(stderr)
        .spawn()
        .expect("start entitle serve")
}

fn mails_in(dir: &Path) -> usize {
    std::fs::read_dir(dir.join("mail"))
        .map(|entries| {
            entries
                .filter(|e| {
                    e.as_ref()
                        .is_ok_and(|e| e.path().extension().is_some_and(|x| x == "eml"))
                })
                .count()
        })
        .unwrap_or(0)
}

async fn is_ready(client: &reqwest::Client, base: &str) -> bool {
    client
        .get(format!("{base}/readyz"))
        .send()
        .await
        .is_ok_and(|r| r.status() == 200)
}

async fn wait_until(what: &str, mut check: impl AsyncFnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(15);
    while !check().await {
        assert!(Instant::now() < deadline, "timed out waiting until {what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Starts the server with `stderr`, then checks start-up, mail, leases and readiness.
async fn works_with(stderr: Stdio) {
    let dir = TempDir::new();
    let demo = demo(&dir.0);
    let port = free_port();
    let mut child = serve(&dir.0, port, stderr);
    let base = format!("http://127.0.0.1:{port}");
    let client = reqwest::Client::new();
    wait_until("the server is ready", async || is_ready(&client, &base).await).await;
    assert!(child.try_wait().unwrap().is_none(), "still running");

    // A credentials mail queued through the API (the worker logs as it sends).
    let sent_before = mails_in(&dir.0);
    let resend = client
        .post(format!(
            "{base}/api/v1/entitlements/{}/resend-credentials",
            demo.entitlement
        ))
        .bearer_auth(&demo.key)
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    assert_eq!(resend.status(), 200, "{}", resend.text().await.unwrap());
    wait_until("a new mail is sent", async || mails_in(&dir.0) > sent_before).await;

    // Activations and many refreshes (each logged, each through the lease writer).
    let activated: Value = client
        .post(format!("{base}/licensing/v1/activate"))
        .json(
            &json!({"tenant": demo.tenant, "product": demo.product, "activation_code": demo.code,
                      "seat_id": "machine-1", "seat_name": "Machine 1", "nonce": "nonce-broken-log-1"}),
        )
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let secret = activated["activation_secret"].as_str().expect("activated").to_owned();
    for n in 0..50 {
        let refreshed = client
            .post(format!("{base}/licensing/v1/activation/refresh"))
            .bearer_auth(&secret)
            .header("entitle-nonce", format!("nonce-refresh-{n:04}"))
            .send()
            .await
            .unwrap();
        assert_eq!(refreshed.status(), 200, "refresh {n}");
        // Warnings and errors are logged too: a made-up secret is a logged denial.
        let denied = client
            .post(format!("{base}/licensing/v1/activation/refresh"))
            .bearer_auth("eas_made_up")
            .header("entitle-nonce", format!("nonce-denied-{n:04}"))
            .send()
            .await
            .unwrap();
        assert_eq!(denied.status(), 401);
    }
    assert!(is_ready(&client, &base).await, "/readyz: every worker runs");
    assert!(child.try_wait().unwrap().is_none(), "still running");

    // SIGTERM still ends it cleanly (the final log lines are dropped, not waited for forever).
    Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    let asked = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        assert!(
            asked.elapsed() < Duration::from_secs(10),
            "still running 10 s after SIGTERM"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert!(status.success(), "{status:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serves_with_stderr_on_a_full_device() {
    let full = std::fs::OpenOptions::new().write(true).open("/dev/full").unwrap();
    works_with(Stdio::from(full)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serves_with_stderr_a_pipe_whose_reader_is_gone() {
    let (reader, writer) = std::io::pipe().unwrap();
    drop(reader);
    works_with(Stdio::from(writer)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serves_with_stderr_a_pipe_nobody_reads() {
    let (reader, writer) = std::io::pipe().unwrap();
    works_with(Stdio::from(writer)).await;
    drop(reader);
}
