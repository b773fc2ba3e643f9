//! Impostors: a server signing with another key, unsigned answers, and replayed genuine answers.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::Router;
use entitle_client::{Client, Credential, Error, ManualClock};
use entitle_protocol::{
    ActivateRequest, ActivateResponse, EntitlementClaims, FeatureClaim, Jwks, LeaseClaims, SeatClaims, Signer,
};
use serde_json::json;

use crate::harness::{now, Server, TempDir};

async fn serve(router: Router) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, router).await });
    format!("http://{address}")
}

fn respond(status: u16, signature: Option<String>, bytes: Vec<u8>) -> Response {
    let mut response = (StatusCode::from_u16(status).unwrap(), bytes).into_response();
    response
        .headers_mut()
        .insert("content-type", HeaderValue::from_static("application/json"));
    if let Some(signature) = signature {
        response
            .headers_mut()
            .insert("entitle-signature", HeaderValue::from_str(&signature).unwrap());
    }
    response
}

/// Answers everything itself, with plausible bodies signed by its own key under the real kid.
struct Forger {
    signer: Signer,
    tenant: String,
}

impl Forger {
    fn claims(&self, product: &str, seat: &str, nonce: &str) -> LeaseClaims {
        LeaseClaims {
            iss: self.tenant.clone(),
            sub: "act_forged".into(),
            aud: product.into(),
            iat: now(),
            exp: now() + 10 * 365 * 86_400,
            nonce: Some(nonce.into()),
            entitlement: EntitlementClaims {
                id: "ent_forged".into(),
                status: "active".into(),
                sku: "PF-STUDIO-Y".into(),
                plan_kind: "paid".into(),
                expires_at: None,
                grace_expires_at: None,
                seat_count: 1000,
                seats_used: 1,
                overdraft_seats: None,
                concurrency_mode: "node_locked".into(),
            },
            seat: SeatClaims {
                id: seat.into(),
                name: None,
                overdraft: false,
                offline: false,
            },
            features: vec![FeatureClaim {
                key: "ai_upscale".into(),
                kind: "bool".into(),
                enabled: true,
                limit: None,
                overdraft: 0,
                used: 0,
                checked_out: 0,
            }],
            attributes: vec![],
        }
    }
}

async fn forged(
    State((forger, product, seat)): State<(Arc<Forger>, String, String)>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let header_nonce = headers
        .get("entitle-nonce")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    let bytes = if uri.path() == "/licensing/v1/activate" {
        let request: ActivateRequest = serde_json::from_slice(&body).unwrap();
        let claims = forger.claims(&request.product, &request.seat_id, &request.nonce);
        serde_json::to_vec(&ActivateResponse {
            activation_id: "act_forged".into(),
            activation_secret: "eas_forged".into(),
            lease_token: forger.signer.sign_compact(&serde_json::to_vec(&claims).unwrap()),
            nonce: request.nonce,
        })
        .unwrap()
    } else if method == Method::DELETE {
        // A denial meant to make the application drop its genuine activation, unsigned.
        let denial = json!({"error": {"code": "invalid_activation", "message": "revoked"}, "nonce": header_nonce});
        return respond(401, None, denial.to_string().into_bytes());
    } else {
        serde_json::to_vec(&forger.claims(&product, &seat, &header_nonce)).unwrap()
    };
    let signature = forger.signer.sign_detached(&bytes);
    respond(200, Some(signature), bytes)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_impostor_signing_with_another_key_is_refused() {
    let mut server = Server::start().await;
    let dir = TempDir::new();
    let clock = ManualClock::starting_now();
    let jwks: Jwks = serde_json::from_str(&server.jwks).unwrap();
    let forger = Arc::new(Forger {
        signer: Signer::from_seed(jwks.keys[0].kid.clone(), &[7; 32]),
        tenant: server.tenant.clone(),
    });
    let impostor = serve(Router::new().fallback(forged).with_state((
        forger,
        server.product.clone(),
        "seat-a".to_owned(),
    )))
    .await;

    let fooled = Client::new(server.config_at(&impostor, "seat-x", &dir.join("x.json"), &clock)).unwrap();
    assert!(matches!(
        fooled.activate(Credential::Code("ANY".into()), None).await,
        Err(Error::BadSignature)
    ));
    assert!(!fooled.is_activated());

    // A genuinely activated installation that then talks to the impostor keeps its lease.
    let cache = dir.join("a.json");
    let genuine = server.client("seat-a", &cache, &clock);
    genuine
        .activate(Credential::Code(server.code.clone()), None)
        .await
        .unwrap();
    let token = genuine.lease_token();
    let redirected = Client::new(server.config_at(&impostor, "seat-a", &cache, &clock)).unwrap();
    assert!(matches!(redirected.refresh().await, Err(Error::BadSignature)));
    assert!(matches!(
        redirected.checkout("render_nodes", 1).await,
        Err(Error::BadSignature)
    ));
    assert!(
        matches!(redirected.deactivate().await, Err(Error::BadSignature)),
        "an unsigned denial is not believed"
    );
    assert!(redirected.is_activated());
    assert_eq!(redirected.lease_token(), token);
    assert!(!redirected.is_enabled("ai_upscale").unwrap());
    assert!(
        !server
            .client("seat-a", &cache, &clock)
            .is_enabled("ai_upscale")
            .unwrap(),
        "nothing forged reached the cache file"
    );
    server.stop().await;
}

/// An answer as it went over the wire: status, signature header, body.
type Recorded = (u16, Option<String>, Vec<u8>);

/// Forwards to the real server and remembers each path's last answer; in replay mode it
/// answers with the remembered one instead.
struct Proxy {
    target: String,
    http: reqwest::Client,
    replay: AtomicBool,
    recorded: Mutex<HashMap<String, Recorded>>,
}

async fn proxy(State(p): State<Arc<Proxy>>, method: Method, uri: Uri, headers: HeaderMap, body: Bytes) -> Response {
    let path = uri.path().to_owned();
    if p.replay.load(Ordering::SeqCst) {
        if let Some((status, signature, bytes)) = p.recorded.lock().unwrap().get(&path).cloned() {
            return respond(status, signature, bytes);
        }
    }
    let mut request = p.http.request(method, format!("{}{}", p.target, uri));
    for name in ["authorization", "entitle-nonce", "content-type"] {
        if let Some(value) = headers.get(name) {
            request = request.header(name, value.clone());
        }
    }
    let response = request.body(body.to_vec()).send().await.unwrap();
    let status = response.status().as_u16();
    let signature = response
        .headers()
        .get("entitle-signature")
        .map(|v| v.to_str().unwrap().to_owned());
    let bytes = response.bytes().await.unwrap().to_vec();
    p.recorded
        .lock()
        .unwrap()
        .insert(path, (status, signature.clone(), bytes.clone()));
    respond(status, signature, bytes)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replayed_genuine_answer_is_refused() {
    let mut server = Server::start().await;
    let dir = TempDir::new();
    let clock = ManualClock::starting_now();
    let state = Arc::new(Proxy {
        target: server.base.clone(),
        http: reqwest::Client::new(),
        replay: AtomicBool::new(false),
        recorded: Mutex::new(HashMap::new()),
    });
    let url = serve(Router::new().fallback(proxy).with_state(state.clone())).await;
    let client = Client::new(server.config_at(&url, "seat-a", &dir.join("a.json"), &clock)).unwrap();

    client
        .activate(Credential::Code(server.code.clone()), None)
        .await
        .unwrap();
    client.checkout("render_nodes", 1).await.unwrap();
    client.refresh().await.unwrap();
    client.give_back("render_nodes", 1).await.unwrap();
    let token = client.lease_token();

    state.replay.store(true, Ordering::SeqCst);
    assert!(matches!(client.refresh().await, Err(Error::Replay)));
    assert!(
        matches!(client.checkout("render_nodes", 1).await, Err(Error::Replay)),
        "an old answer (with a unit checked out) is refused"
    );
    assert!(matches!(
        client.activate(Credential::Code(server.code.clone()), None).await,
        Err(Error::Replay)
    ));
    assert_eq!(client.lease_token(), token, "the lease is unchanged");
    assert_eq!(client.feature("render_nodes").unwrap().unwrap().checked_out, 0);

    state.replay.store(false, Ordering::SeqCst);
    client.refresh().await.unwrap();
    server.stop().await;
}
