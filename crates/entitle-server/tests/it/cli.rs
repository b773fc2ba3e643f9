//! The `entitle` binary as an operator runs it.

use serde_json::Value;
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

use crate::helpers::TempDir;

fn entitle(data_dir: &TempDir, args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_entitle"))
        .args(["--data-dir", data_dir.0.to_str().unwrap()])
        .args(args)
        .env_remove("ENTITLE_DATABASE_URL")
        .env_remove("ENTITLE_CONFIG")
        .output()
        .expect("run entitle")
}

#[test]
fn tenant_create_and_demo_print_credentials() {
    let dir = TempDir::new();
    let output = entitle(&dir, &["tenant", "create", "--name", "Acme"]);
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let created: Value = serde_json::from_slice(&output.stdout).expect("JSON on stdout");
    assert!(created["tenant_id"].as_str().unwrap().starts_with("ten_"));
    assert!(created["api_key"].as_str().unwrap().starts_with("esk_"));
    assert!(dir.0.join("entitle.db").exists(), "SQLite in the data directory");

    let demo = entitle(&dir, &["demo"]);
    assert!(demo.status.success(), "{}", String::from_utf8_lossy(&demo.stderr));
    let text = String::from_utf8(demo.stdout).unwrap();
    for expected in [
        "admin API key:  esk_",
        "PF-BASIC-M",
        "PF-STUDIO-Y",
        "activation code",
        "openapi.json",
    ] {
        assert!(text.contains(expected), "{expected} missing from:\n{text}");
    }
    let refused = entitle(&dir, &["tenant", "create", "--name", "  "]);
    assert!(!refused.status.success());
}

#[test]
fn serve_answers_and_stops_cleanly_on_sigterm() {
    let dir = TempDir::new();
    let mut child = Command::new(env!("CARGO_BIN_EXE_entitle"))
        .args([
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--data-dir",
            dir.0.to_str().unwrap(),
        ])
        .env_remove("ENTITLE_DATABASE_URL")
        .env("RUST_LOG", "info")
        .env("NO_COLOR", "1")
        .stderr(Stdio::piped())
        .spawn()
        .expect("start entitle serve");
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    let mut address = None;
    let mut log = String::new();
    for line in lines.by_ref() {
        let line = line.unwrap();
        log.push_str(&line);
        log.push('\n');
        if line.contains("listening") {
            address = line
                .split("address=")
                .nth(1)
                .map(|a| a.split_whitespace().next().unwrap().to_owned());
            break;
        }
    }
    let address = address.unwrap_or_else(|| panic!("no listening line in:\n{log}"));
    assert!(log.contains("entitle.db"), "the log says where the data is:\n{log}");

    let healthy = Command::new(env!("CARGO_BIN_EXE_entitle"))
        .args(["healthcheck", "--listen", &address])
        .output()
        .unwrap();
    assert!(healthy.status.success(), "{}", String::from_utf8_lossy(&healthy.stderr));

    Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    let status = child.wait().unwrap();
    assert!(status.success(), "exit status {status}");
    let rest: Vec<String> = lines.map_while(Result::ok).collect();
    assert!(rest.iter().any(|l| l.contains("stopped")), "{rest:?}");

    let down = Command::new(env!("CARGO_BIN_EXE_entitle"))
        .args(["healthcheck", "--listen", &address])
        .output()
        .unwrap();
    assert!(!down.status.success(), "healthcheck fails once the server is gone");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn send_test_email_checks_the_mail_configuration() {
    let sink = crate::smtp::SmtpSink::start().await;
    let dir = TempDir::new();
    let output = tokio::process::Command::new(env!("CARGO_BIN_EXE_entitle"))
        .args([
            "send-test-email",
            "--to",
            "ops@vendor.example",
            "--smtp-url",
            &sink.url(),
        ])
        .args(["--data-dir", dir.0.to_str().unwrap()])
        .output()
        .await
        .unwrap();
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let received = sink.wait_for(1).await;
    assert_eq!(received[0].to, ["<ops@vendor.example>"]);
    assert_eq!(received[0].header("Subject").as_deref(), Some("Entitle test mail"));

    let down = crate::smtp::closed_port().await;
    let failed = tokio::process::Command::new(env!("CARGO_BIN_EXE_entitle"))
        .args([
            "send-test-email",
            "--to",
            "ops@vendor.example",
            "--smtp-url",
            &format!("smtp://127.0.0.1:{down}"),
        ])
        .args(["--data-dir", dir.0.to_str().unwrap()])
        .output()
        .await
        .unwrap();
    assert!(!failed.status.success(), "an unreachable relay is reported");
    sink.stop();
}

#[test]
fn staff_create_prints_a_one_time_set_password_link() {
    let dir = TempDir::new();
    let output = entitle(&dir, &["tenant", "create", "--name", "Acme"]);
    let created: Value = serde_json::from_slice(&output.stdout).unwrap();
    let tenant = created["tenant_id"].as_str().unwrap();
    let staff = entitle(
        &dir,
        &[
            "staff",
            "create",
            "--tenant",
            tenant,
            "--email",
            "sam@acme.example",
            "--role",
            "support",
        ],
    );
    assert!(staff.status.success(), "{}", String::from_utf8_lossy(&staff.stderr));
    let printed: Value = serde_json::from_slice(&staff.stdout).expect("JSON on stdout");
    assert_eq!(printed["role"], "support");
    let link = printed["set_password_url"].as_str().unwrap();
    assert!(link.contains(&format!("/admin/{tenant}/set-password?token=")), "{link}");
    let again = entitle(
        &dir,
        &[
            "staff",
            "create",
            "--tenant",
            tenant,
            "--email",
            "sam@acme.example",
            "--role",
            "admin",
        ],
    );
    assert!(!again.status.success(), "one account per email and tenant");
    let bad_role = entitle(
        &dir,
        &[
            "staff",
            "create",
            "--tenant",
            tenant,
            "--email",
            "x@acme.example",
            "--role",
            "owner",
        ],
    );
    assert!(!bad_role.status.success());
}
