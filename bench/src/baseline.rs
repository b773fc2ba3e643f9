//! The baselines, in a process of their own built like the server (a multi-threaded tokio
//! runtime, axum, the same Ed25519 crate and the same SQLite settings):
//! (a) `GET /empty`: an empty axum handler — what HTTP and the runtime cost;
//! (b) `GET /sign`: signs a body of the lease's size — the floor of any signed answer;
//! (c) `POST /sqlite`: one single-row insert transaction in SQLite opened by the server's own store
//!     (WAL, its synchronous setting, one writer) — the floor of any durable write.
//!
//! `entitle-bench baseline --lease-bytes N --data-dir DIR` prints `listening on ADDR`.

use anyhow::Context;
use axum::extract::State;
use axum::http::header::CONTENT_TYPE;
use axum::http::{HeaderName, StatusCode};
use axum::response::IntoResponse;
use axum::routing::{get, post};
use entitle_server::store::Store;
use std::io::Write;
use std::path::PathBuf;
use std::sync::Arc;

#[derive(Clone)]
struct Baselines {
    signer: Arc<entitle_protocol::Signer>,
    body: Arc<Vec<u8>>,
    store: Store,
}

pub fn main(args: &[String]) -> anyhow::Result<()> {
    let mut lease_bytes = 1024usize;
    let mut data_dir = std::env::temp_dir().join(format!("entitle-baseline-{}", std::process::id()));
    let mut args = args.iter();
    while let Some(arg) = args.next() {
        let value = args.next().with_context(|| format!("{arg} needs a value"))?;
        match arg.as_str() {
            "--lease-bytes" => lease_bytes = value.parse()?,
            "--data-dir" => data_dir = PathBuf::from(value),
            other => anyhow::bail!("unknown option {other}"),
        }
    }
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?
        .block_on(serve(lease_bytes, data_dir))
}

async fn serve(lease_bytes: usize, data_dir: PathBuf) -> anyhow::Result<()> {
    std::fs::create_dir_all(&data_dir)?;
    let store = Store::open(&format!("sqlite://{}", data_dir.join("baseline.db").display())).await?;
    {
        let mut tx = store.begin().await?;
        sqlx::query(
            "CREATE TABLE IF NOT EXISTS bench_rows (id INTEGER PRIMARY KEY, note TEXT NOT NULL, at BIGINT NOT NULL)",
        )
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
    }
    // A body like a lease's claims: JSON text of the measured size.
    let body = format!("{{\"claims\":\"{}\"}}", "x".repeat(lease_bytes.saturating_sub(13)));
    let state = Baselines {
        signer: Arc::new(entitle_protocol::Signer::from_seed("bench", &[7; 32])),
        body: Arc::new(body.into_bytes()),
        store,
    };
    let app = axum::Router::new()
        .route("/empty", get(|| async { ([(CONTENT_TYPE, "application/json")], "{}") }))
        .route("/sign", get(sign))
        .route("/sqlite", post(insert))
        .with_state(state);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let mut stdout = std::io::stdout();
    writeln!(stdout, "listening on {}", listener.local_addr()?)?;
    stdout.flush()?;
    axum::serve(listener, app).await?;
    Ok(())
}

async fn sign(State(baselines): State<Baselines>) -> impl IntoResponse {
    let signature = baselines.signer.sign_detached(&baselines.body);
    (
        [
            (CONTENT_TYPE, "application/json".to_owned()),
            (HeaderName::from_static("entitle-signature"), signature),
        ],
        baselines.body.as_ref().clone(),
    )
}

async fn insert(State(baselines): State<Baselines>) -> StatusCode {
    let written = async {
        let mut tx = baselines.store.begin().await?;
        sqlx::query("INSERT INTO bench_rows (note, at) VALUES ($1, $2)")
            .bind("baseline")
            .bind(chrono_now_ms())
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        anyhow::Ok(())
    };
    match written.await {
        Ok(()) => StatusCode::NO_CONTENT,
        Err(_) => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

fn chrono_now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}
