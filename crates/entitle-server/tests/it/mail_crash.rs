//! The mail exactly-once statement, tested on the real binary: kill -9 while mails are being sent,
//! start it again, and no mail is lost; the only duplicates are mails whose SMTP transaction was in
//! flight (at most one per lane), each sent again with the same Message-ID; and the mails the dead
//! process held go out within seconds of the restart, not after their claims' leases.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::helpers::{drop_postgres, fresh_postgres, Backend, TempDir};
use crate::smtp::{SinkOptions, SmtpSink};

const MAILS: usize = 240;
const CONCURRENCY: usize = 4;

/// `entitle serve` as its own process; the address it listens on.
fn serve(dir: &TempDir, database_url: Option<&str>, listen: &str, smtp_url: &str) -> (Child, SocketAddr) {
    let mut command = Command::new(env!("CARGO_BIN_EXE_entitle"));
    command
        .args(["serve", "--listen", listen, "--data-dir", dir.0.to_str().unwrap()])
        .env_remove("ENTITLE_DATABASE_URL")
        .env_remove("ENTITLE_CONFIG")
        .env_remove("ENTITLE_INSTANCE_ID")
        .env("ENTITLE_SMTP_URL", smtp_url)
        .env("ENTITLE_MAIL_CONCURRENCY", CONCURRENCY.to_string())
        .env("ENTITLE_MAIL_POLL_MS", "200")
        .env("RUST_LOG", "info")
        .env("NO_COLOR", "1")
        .stderr(Stdio::piped());
    if let Some(url) = database_url {
        command.env("ENTITLE_DATABASE_URL", url);
    }
    let mut child = command.spawn().expect("start entitle serve");
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    let address = loop {
        let line = lines.next().expect("the server logs where it listens").unwrap();
        if line.contains("listening") {
            if let Some(rest) = line.split("address=").nth(1) {
                let address: String = rest.chars().take_while(|c| !c.is_whitespace()).collect();
                break address.parse().expect("an address");
            }
        }
    };
    std::thread::spawn(move || for _ in lines.by_ref() {});
    (child, address)
}

async fn crash_mid_send(backend: Backend) {
    let dir = TempDir::new();
    let pg = match backend {
        Backend::Sqlite => None,
        Backend::Postgres => match fresh_postgres().await {
            Some(pg) => Some(pg),
            None => {
                eprintln!("ENTITLE_TEST_DATABASE_URL is not set: PostgreSQL variant not run");
                return;
            }
        },
    };
    let database_url = pg
        .as_ref()
        .map(|(url, _)| url.clone())
        .unwrap_or_else(|| format!("sqlite://{}", dir.0.join("entitle.db").display()));

    // A demo tenant with an entitlement, written straight to the database.
    let config = entitle_server::Config::from_layer(entitle_server::config::ConfigLayer {
        data_dir: Some(dir.0.clone()),
        database_url: Some(database_url.clone()),
        ..Default::default()
    })
    .unwrap();
    let store = entitle_server::store::Store::open(&database_url).await.unwrap();
    let seeded = entitle_server::demo::seed(&store, &entitle_server::app::mail_settings(&config))
        .await
        .unwrap();
    store.close().await;
    let key = secrecy::ExposeSecret::expose_secret(&seeded.admin_key).to_owned();

    // The relay keeps each message, then takes 40 ms to say so: at any instant some transactions
    // are in flight, and the whole batch takes seconds.
    let sink = SmtpSink::start_with(
        0,
        SinkOptions {
            accept_delay: Duration::from_millis(40),
            ..Default::default()
        },
    )
    .await;
    let pg_url = pg.as_ref().map(|(url, _)| url.as_str());
    let (mut first, address) = serve(&dir, pg_url, "127.0.0.1:0", &sink.url());
    let base = format!("http://{address}");
    let client = reqwest::Client::new();
    let resend = format!(
        "{base}/api/v1/entitlements/{}/resend-credentials",
        seeded.entitlement.id
    );
    // Queued faster than the relay accepts them.
    let posts = (0..MAILS).map(|n| {
        let (client, resend, key) = (&client, &resend, &key);
        async move {
            let answer = client
                .post(resend)
                .bearer_auth(key)
                .json(&serde_json::json!({"to": format!("buyer{n}@crash.example")}))
                .send()
                .await
                .unwrap();
            assert!(answer.status().is_success(), "{}", answer.status());
        }
    });
    crate::helpers::join_all(posts).await;
    // Kill it in the middle of the stream.
    let started = Instant::now();
    while sink.received().len() < MAILS / 3 && started.elapsed() < Duration::from_secs(20) {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    first.kill().unwrap();
    first.wait().unwrap();
    let before_restart = sink.received().len();
    assert!(
        before_restart < MAILS,
        "{backend:?}: the crash came too late to test anything"
    );

    // Same data, same address: the same instance, which takes back its predecessor's claims.
    let restarted = Instant::now();
    let (mut second, _) = serve(&dir, pg_url, &address.to_string(), &sink.url());
    let ours = |m: &crate::smtp::Received| m.to[0].ends_with("@crash.example>");
    loop {
        let mut recipients: Vec<String> = sink
            .received()
            .iter()
            .filter(|m| ours(m))
            .map(|m| m.to[0].clone())
            .collect();
        recipients.sort();
        recipients.dedup();
        if recipients.len() == MAILS || restarted.elapsed() > Duration::from_secs(60) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let drained_in = restarted.elapsed();
    tokio::time::sleep(Duration::from_millis(500)).await;

    let mut by_recipient: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for mail in sink.received().iter().filter(|m| ours(m)) {
        by_recipient
            .entry(mail.to[0].clone())
            .or_default()
            .push(mail.header("Message-ID").unwrap());
    }
    assert_eq!(by_recipient.len(), MAILS, "{backend:?}: none lost");
    let duplicated: Vec<_> = by_recipient.iter().filter(|(_, ids)| ids.len() > 1).collect();
    assert!(
        duplicated.len() <= CONCURRENCY,
        "{backend:?}: only mails in flight are sent twice: {duplicated:?}"
    );
    for (recipient, ids) in &duplicated {
        assert!(
            ids.len() == 2 && ids[0] == ids[1],
            "{recipient}: the same Message-ID again: {ids:?}"
        );
    }
    assert!(
        drained_in < Duration::from_secs(15),
        "{backend:?}: the rest went out {drained_in:?} after the restart, not after the claims' leases"
    );
    eprintln!(
        "{backend:?}: {before_restart} received before kill -9, {} sent twice, the rest drained {drained_in:?} after restart",
        duplicated.len()
    );

    // The outbox agrees: everything sent, each attempt counted once per try.
    let listed: serde_json::Value = client
        .get(format!("{base}/api/v1/mails?limit=200&status=sent"))
        .bearer_auth(&key)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(!listed["data"].as_array().unwrap().is_empty());
    let waiting: serde_json::Value = client
        .get(format!("{base}/api/v1/mails?limit=200&status=queued"))
        .bearer_auth(&key)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(waiting["data"].as_array().unwrap().is_empty(), "{waiting}");
    second.kill().unwrap();
    second.wait().unwrap();
    sink.stop();
    if let Some((_, name)) = pg {
        drop_postgres(&name).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_mid_send_loses_no_mail_and_duplicates_only_those_in_flight_sqlite() {
    crash_mid_send(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_mid_send_loses_no_mail_and_duplicates_only_those_in_flight_postgres() {
    crash_mid_send(Backend::Postgres).await;
}
