//! The protocol test vectors in `protocol/vectors/`: generated here from fixed keys and times
//! (Ed25519 is deterministic, so the files are reproducible byte for byte), and checked here by
//! reading the committed files back and reaching every verdict with this crate.
//!
//! Regenerate after a deliberate protocol change:
//! `ENTITLE_WRITE_VECTORS=1 cargo test -p entitle-protocol --test vectors -- --test-threads 1`.

use std::path::PathBuf;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use entitle_protocol::lease::{LeaseError, CLOCK_SKEW_SECONDS};
use entitle_protocol::licence::{self, ACTIVATION_REQUEST_LABEL, DEACTIVATION_REQUEST_LABEL, LICENCE_FILE_LABEL};
use entitle_protocol::{
    jws, ActivateResponse, AttributeClaims, EntitlementClaims, FeatureClaim, Jwks, LeaseClaims,
    OfflineActivationRequest, OfflineDeactivationRequest, PublicKey, SeatClaims, Signer,
};
use serde_json::{json, Value};

/// 2026-01-01T00:00:00Z: every vector's clock.
const NOW: i64 = 1_767_225_600;
const TENANT: &str = "ten_vectors";
const PRODUCT: &str = "prd_vectors";
const SEAT: &str = "seat-vectors-1";
const ACTIVATION: &str = "act_vectors";
const SECRET: &str = "eas_vectors_secret";
const NONCE: &str = "vectorNonce0000000000001";
const OTHER_NONCE: &str = "vectorNonce0000000000002";

/// Role, kid and the byte every seed byte is: fixed, so the files are reproducible.
const SEEDS: [(&str, &str, u8); 4] = [
    ("trusted", "vectors-key-1", 0x11),
    ("rotated", "vectors-key-2", 0x22),
    // The trusted kid with another private key: what a forger would use.
    ("impostor", "vectors-key-1", 0x33),
    // A key the JWKS does not hold.
    ("stranger", "vectors-key-9", 0x44),
];

struct Keys {
    trusted: Signer,
    rotated: Signer,
    impostor: Signer,
    stranger: Signer,
}

fn keys() -> Keys {
    let signer = |i: usize| Signer::from_seed(SEEDS[i].1, &[SEEDS[i].2; 32]);
    Keys {
        trusted: signer(0),
        rotated: signer(1),
        impostor: signer(2),
        stranger: signer(3),
    }
}

fn vectors_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../protocol/vectors")
}

fn claims(nonce: &str, offline: bool) -> LeaseClaims {
    LeaseClaims {
        iss: TENANT.into(),
        sub: ACTIVATION.into(),
        aud: PRODUCT.into(),
        iat: NOW - 60,
        exp: NOW + 86_400,
        nonce: Some(nonce.into()),
        entitlement: EntitlementClaims {
            id: "ent_vectors".into(),
            status: "active".into(),
            sku: "VEC-PRO-Y".into(),
            plan_kind: "paid".into(),
            expires_at: Some(NOW + 365 * 86_400),
            grace_expires_at: Some(NOW + 372 * 86_400),
            seat_count: 5,
            seats_used: 1,
            overdraft_seats: Some(1),
            concurrency_mode: "node_locked".into(),
        },
        seat: SeatClaims {
            id: SEAT.into(),
            name: Some("Vector workstation".into()),
            overdraft: false,
            offline,
        },
        features: vec![
            FeatureClaim {
                key: "batch_export".into(),
                kind: "bool".into(),
                enabled: true,
                limit: None,
                overdraft: 0,
                used: 0,
                checked_out: 0,
            },
            FeatureClaim {
                key: "render_nodes".into(),
                kind: "element_pool".into(),
                enabled: true,
                limit: Some(4),
                overdraft: 0,
                used: 1,
                checked_out: 1,
            },
        ],
        attributes: vec![AttributeClaims {
            key: "max_users".into(),
            value: json!(5),
        }],
    }
}

fn body(claims: &LeaseClaims) -> Vec<u8> {
    serde_json::to_vec(claims).expect("claims serialise")
}

/// Replaces the payload of a compact JWS, keeping its header and signature.
fn with_payload(token: &str, payload: &[u8]) -> String {
    let parts: Vec<&str> = token.split('.').collect();
    format!("{}.{}.{}", parts[0], URL_SAFE_NO_PAD.encode(payload), parts[2])
}

fn lease_vector(name: &str, about: &str, token: &str, now: i64, verdict: &str) -> Value {
    json!({"name": name, "about": about, "token": token, "now": now, "last_seen": null,
           "product": PRODUCT, "seat_id": SEAT, "verdict": verdict})
}

fn lease_tokens(k: &Keys) -> Value {
    let good = claims(NONCE, false);
    let token = k.trusted.sign_compact(&body(&good));
    let mut altered = good.clone();
    altered.entitlement.seat_count = 500;
    let none_alg = format!(
        "{}.{}.",
        URL_SAFE_NO_PAD.encode(r#"{"alg":"none","typ":"JWT","kid":"vectors-key-1"}"#),
        URL_SAFE_NO_PAD.encode(body(&good))
    );
    let mut valid = lease_vector("valid", "signed by the trusted key", &token, NOW, "valid");
    valid["claims"] = serde_json::to_value(&good).expect("claims");
    let mut rotated = lease_vector(
        "valid_rotated_key",
        "signed by the second key of the JWKS (after a rotation)",
        &k.rotated.sign_compact(&body(&good)),
        NOW,
        "valid",
    );
    rotated["claims"] = valid["claims"].clone();
    let mut clock_back = lease_vector(
        "clock_set_back_after_last_seen",
        "a genuine token, but the clock reads more than the tolerance before the latest time seen",
        &token,
        NOW,
        "clock_set_back",
    );
    clock_back["last_seen"] = json!(NOW + CLOCK_SKEW_SECONDS + 1);
    let mut wrong_product = lease_vector(
        "wrong_product",
        "a genuine token checked by another product",
        &token,
        NOW,
        "wrong_product",
    );
    wrong_product["product"] = json!("prd_other");
    let mut wrong_seat = lease_vector(
        "wrong_seat",
        "a genuine token copied to another device",
        &token,
        NOW,
        "wrong_seat",
    );
    wrong_seat["seat_id"] = json!("seat-somewhere-else");
    let vectors = vec![
        valid,
        rotated,
        lease_vector(
            "altered_body",
            "the payload changed (seat_count 5 to 500), the signature kept",
            &with_payload(&token, &body(&altered)),
            NOW,
            "bad_signature",
        ),
        lease_vector(
            "wrong_key",
            "signed by another private key under the trusted kid",
            &k.impostor.sign_compact(&body(&good)),
            NOW,
            "bad_signature",
        ),
        lease_vector(
            "unknown_kid",
            "signed by a key the JWKS does not hold",
            &k.stranger.sign_compact(&body(&good)),
            NOW,
            "bad_signature",
        ),
        lease_vector(
            "alg_none",
            "an unsigned token (alg none)",
            &none_alg,
            NOW,
            "bad_signature",
        ),
        lease_vector(
            "expired",
            "a genuine token checked at its expiry",
            &token,
            good.exp,
            "expired",
        ),
        lease_vector(
            "clock_set_back_before_issue",
            "a genuine token checked more than the tolerance before its issue time",
            &token,
            good.iat - CLOCK_SKEW_SECONDS - 1,
            "clock_set_back",
        ),
        clock_back,
        wrong_product,
        wrong_seat,
    ];
    json!({
        "about": "Lease tokens (compact JWS, EdDSA). Verify the signature with the JWKS key named by kid, then: aud = product, seat.id = seat_id, iat <= now + clock_skew_seconds, now < exp, and now + clock_skew_seconds >= last_seen when last_seen is set (the latest time the client saw).",
        "clock_skew_seconds": CLOCK_SKEW_SECONDS,
        "vectors": vectors,
    })
}

fn answer(name: &str, about: &str, status: u16, body: &[u8], signature: &str, verdict: &str) -> Value {
    json!({"name": name, "about": about, "status": status, "body": String::from_utf8_lossy(body),
           "signature": signature, "request_nonce": NONCE, "verdict": verdict})
}

fn answers(k: &Keys) -> Value {
    let lease = body(&claims(NONCE, false));
    let lease_signature = k.trusted.sign_detached(&lease);
    let activation = serde_json::to_vec(&ActivateResponse {
        activation_id: ACTIVATION.into(),
        activation_secret: SECRET.into(),
        lease_token: k.trusted.sign_compact(&lease),
        nonce: NONCE.into(),
    })
    .expect("activation answer");
    let denial = format!(
        r#"{{"error":{{"code":"seat_limit_reached","message":"every seat of this entitlement is taken"}},"nonce":"{NONCE}"}}"#
    )
    .into_bytes();
    let replayed = body(&claims(OTHER_NONCE, false));
    let altered = String::from_utf8_lossy(&lease).replace("\"seat_count\":5", "\"seat_count\":500");
    let mut refresh = answer(
        "refresh_lease",
        "a refresh answer: its signature and body attach into the new lease token",
        200,
        &lease,
        &lease_signature,
        "valid",
    );
    refresh["lease_token"] = json!(jws::attach(&lease_signature, &lease).expect("attach"));
    let mut denied = answer(
        "denial",
        "a signed denial: act on its error.code",
        409,
        &denial,
        &k.trusted.sign_detached(&denial),
        "valid",
    );
    denied["denial_code"] = json!("seat_limit_reached");
    let vectors = vec![
        answer(
            "activation",
            "an activation answer",
            200,
            &activation,
            &k.trusted.sign_detached(&activation),
            "valid",
        ),
        refresh,
        denied,
        answer(
            "altered_body",
            "the body changed after signing",
            200,
            altered.as_bytes(),
            &lease_signature,
            "bad_signature",
        ),
        answer(
            "wrong_key",
            "signed by another private key under the trusted kid",
            200,
            &lease,
            &k.impostor.sign_detached(&lease),
            "bad_signature",
        ),
        answer(
            "denial_wrong_key",
            "a denial forged with another key: a client must not act on it",
            409,
            &denial,
            &k.impostor.sign_detached(&denial),
            "bad_signature",
        ),
        answer(
            "unsigned",
            "no Entitle-Signature header",
            200,
            &lease,
            "",
            "bad_signature",
        ),
        answer(
            "wrong_nonce",
            "a genuine answer to an earlier request (its nonce is not this request's): a replay",
            200,
            &replayed,
            &k.trusted.sign_detached(&replayed),
            "replay",
        ),
    ];
    json!({
        "about": "HTTP answers of /licensing/v1. signature is the Entitle-Signature header, a detached JWS (RFC 7515 appendix F); empty means no header. Verify it over the exact body bytes (the UTF-8 of body), then body.nonce = request_nonce. A valid non-2xx answer is a denial: act on error.code. A valid lease answer's signature and body attach into the new lease token.",
        "vectors": vectors,
    })
}

fn licence_vector(name: &str, about: &str, text: String, now: i64, verdict: &str) -> Value {
    json!({"name": name, "about": about, "text": text, "now": now, "tenant": TENANT, "product": PRODUCT,
           "seat_id": SEAT, "pending_request_nonce": NONCE, "verdict": verdict})
}

fn licence_files(k: &Keys) -> Value {
    let offline = claims(NONCE, true);
    let token = k.trusted.sign_compact(&body(&offline));
    let file = licence::write_licence_file(&token, SECRET);
    let mut valid = licence_vector(
        "valid",
        "a licence file answering the pending request",
        file.clone(),
        NOW,
        "valid",
    );
    valid["activation_secret"] = json!(SECRET);
    valid["claims"] = serde_json::to_value(&offline).expect("claims");
    let mut altered = offline.clone();
    altered.exp += 10 * 365 * 86_400;
    let vectors = vec![
        valid,
        licence_vector(
            "altered_body",
            "the expiry pushed ten years on, the signature kept",
            licence::write_licence_file(&with_payload(&token, &body(&altered)), SECRET),
            NOW,
            "bad_signature",
        ),
        licence_vector(
            "wrong_key",
            "signed by another private key under the trusted kid",
            licence::write_licence_file(&k.impostor.sign_compact(&body(&offline)), SECRET),
            NOW,
            "bad_signature",
        ),
        licence_vector(
            "expired",
            "a genuine licence file loaded at its expiry",
            file.clone(),
            offline.exp,
            "expired",
        ),
        licence_vector(
            "clock_set_back",
            "a genuine licence file loaded more than the tolerance before its issue time",
            file,
            offline.iat - CLOCK_SKEW_SECONDS - 1,
            "clock_set_back",
        ),
        licence_vector(
            "wrong_nonce",
            "a genuine licence file answering an earlier request (an old file loaded again)",
            licence::write_licence_file(&k.trusted.sign_compact(&body(&claims(OTHER_NONCE, true))), SECRET),
            NOW,
            "replay",
        ),
        licence_vector(
            "online_lease",
            "a genuine online lease token armoured as a licence file (seat.offline is false)",
            licence::write_licence_file(&k.trusted.sign_compact(&body(&claims(NONCE, false))), SECRET),
            NOW,
            "malformed",
        ),
    ];
    json!({
        "about": format!("Licence files: the lease token between '-----BEGIN {LICENCE_FILE_LABEL}-----' and '-----END …-----' lines (whitespace inside is ignored), the activation secret in a second block. Verify the token as a lease token, then seat.offline = true, iss = tenant, and nonce = pending_request_nonce (the nonce of the latest activation request file written)."),
        "vectors": vectors,
    })
}

fn request_files() -> Value {
    let activation = OfflineActivationRequest {
        tenant: TENANT.into(),
        product: PRODUCT.into(),
        activation_code: "7KQ2-M9XD-4FRT-0BWN-HC8E-P3VZ".into(),
        seat_id: SEAT.into(),
        seat_name: Some("Vector workstation".into()),
        nonce: NONCE.into(),
    };
    let deactivation = OfflineDeactivationRequest {
        tenant: TENANT.into(),
        activation_id: ACTIVATION.into(),
        activation_secret: SECRET.into(),
        seat_id: SEAT.into(),
        nonce: OTHER_NONCE.into(),
    };
    let activation_text = licence::write_request(ACTIVATION_REQUEST_LABEL, &activation);
    json!({
        "about": "Request files an air-gapped application writes: standard padded base64 of the JSON request, in lines of 64 characters between armour lines named by label. They are not signed: the server checks the code or the activation secret inside.",
        "vectors": [
            {"name": "activation_request", "label": ACTIVATION_REQUEST_LABEL,
             "text": activation_text, "request": activation, "verdict": "valid"},
            {"name": "deactivation_request", "label": DEACTIVATION_REQUEST_LABEL,
             "text": licence::write_request(DEACTIVATION_REQUEST_LABEL, &deactivation),
             "request": deactivation, "verdict": "valid"},
            {"name": "wrong_label", "label": DEACTIVATION_REQUEST_LABEL,
             "text": activation_text, "request": null, "verdict": "malformed"},
        ],
    })
}

fn key_file(k: &Keys) -> Value {
    let seed = |i: usize| {
        let hex: String = [SEEDS[i].2; 32].iter().map(|b| format!("{b:02x}")).collect();
        json!({"role": SEEDS[i].0, "kid": SEEDS[i].1, "ed25519_seed_hex": hex})
    };
    json!({
        "about": "The keys behind every vector. jwks is what a client pins (the trusted key and a rotated one); other_public_keys are the impostor's and a stranger's. The seeds are test-only Ed25519 private keys (RFC 8032), so another implementation can re-sign and compare: Ed25519 signatures are deterministic.",
        "tenant": TENANT,
        "now": NOW,
        "jwks": Jwks::from_keys([&k.trusted.public_key(), &k.rotated.public_key()]),
        "other_public_keys": Jwks::from_keys([&k.impostor.public_key(), &k.stranger.public_key()]),
        "seeds": (0..SEEDS.len()).map(seed).collect::<Vec<_>>(),
    })
}

fn generate() -> Vec<(&'static str, Value)> {
    let k = keys();
    vec![
        ("keys.json", key_file(&k)),
        ("lease_tokens.json", lease_tokens(&k)),
        ("answers.json", answers(&k)),
        ("licence_files.json", licence_files(&k)),
        ("request_files.json", request_files()),
    ]
}

/// Pretty JSON with sorted keys, whether or not serde_json keeps insertion order (a feature
/// other crates of the workspace switch on).
fn render(value: &Value) -> String {
    fn sorted(value: &Value) -> Value {
        match value {
            Value::Object(map) => {
                let mut keys: Vec<&String> = map.keys().collect();
                keys.sort();
                Value::Object(keys.into_iter().map(|k| (k.clone(), sorted(&map[k]))).collect())
            }
            Value::Array(items) => Value::Array(items.iter().map(sorted).collect()),
            other => other.clone(),
        }
    }
    serde_json::to_string_pretty(&sorted(value)).expect("JSON") + "\n"
}

#[test]
fn the_committed_vectors_are_the_generated_ones() {
    let dir = vectors_dir();
    let write = std::env::var_os("ENTITLE_WRITE_VECTORS").is_some();
    for (name, value) in generate() {
        let path = dir.join(name);
        if write {
            std::fs::write(&path, render(&value)).expect("write a vector file");
        }
        let committed = std::fs::read_to_string(&path).unwrap_or_default();
        assert!(
            committed == render(&value),
            "{name} differs from the generator: regenerate with ENTITLE_WRITE_VECTORS=1 if the change is deliberate"
        );
    }
}

// The checks below read the committed files only, as another implementation would.

fn load(name: &str) -> Value {
    let text = std::fs::read_to_string(vectors_dir().join(name)).expect("a vector file");
    serde_json::from_str(&text).expect("vector JSON")
}

fn pinned_keys() -> Vec<PublicKey> {
    let jwks: Jwks = serde_json::from_value(load("keys.json")["jwks"].clone()).expect("jwks");
    jwks.public_keys()
}

fn text<'a>(v: &'a Value, field: &str) -> &'a str {
    v[field]
        .as_str()
        .unwrap_or_else(|| panic!("{field} of vector {}", v["name"]))
}

fn lease_verdict(error: LeaseError) -> &'static str {
    match error {
        LeaseError::Signature(_) => "bad_signature",
        LeaseError::Malformed => "malformed",
        LeaseError::Expired => "expired",
        LeaseError::WrongProduct => "wrong_product",
        LeaseError::WrongSeat => "wrong_seat",
        LeaseError::IssuedInFuture => "clock_set_back",
    }
}

#[test]
fn lease_token_verdicts() {
    let keys = pinned_keys();
    let file = load("lease_tokens.json");
    let skew = file["clock_skew_seconds"].as_i64().expect("skew");
    for v in file["vectors"].as_array().expect("vectors") {
        let now = v["now"].as_i64().expect("now");
        let verdict = match v["last_seen"].as_i64() {
            Some(last_seen) if now + skew < last_seen => "clock_set_back",
            _ => match LeaseClaims::verify(text(v, "token"), &keys, now, text(v, "product"), text(v, "seat_id")) {
                Ok(claims) => {
                    assert_eq!(serde_json::to_value(&claims).unwrap(), v["claims"], "{}", v["name"]);
                    "valid"
                }
                Err(error) => lease_verdict(error),
            },
        };
        assert_eq!(verdict, text(v, "verdict"), "lease token vector {}", v["name"]);
    }
}

#[test]
fn answer_verdicts() {
    let keys = pinned_keys();
    for v in load("answers.json")["vectors"].as_array().expect("vectors") {
        let body = text(v, "body").as_bytes();
        let signature = text(v, "signature");
        let verdict = match jws::verify_detached(signature, body, &keys) {
            Err(_) => "bad_signature",
            Ok(()) => {
                let value: Value = serde_json::from_slice(body).expect("a signed body is JSON");
                if value["nonce"].as_str() != Some(text(v, "request_nonce")) {
                    "replay"
                } else {
                    if v["status"].as_u64().expect("status") >= 400 {
                        assert_eq!(value["error"]["code"], v["denial_code"], "{}", v["name"]);
                    }
                    if let Some(token) = v["lease_token"].as_str() {
                        assert_eq!(jws::attach(signature, body).unwrap(), token, "{}", v["name"]);
                    }
                    "valid"
                }
            }
        };
        assert_eq!(verdict, text(v, "verdict"), "answer vector {}", v["name"]);
    }
}

#[test]
fn licence_file_verdicts() {
    let keys = pinned_keys();
    for v in load("licence_files.json")["vectors"].as_array().expect("vectors") {
        let file = text(v, "text");
        let now = v["now"].as_i64().expect("now");
        let verdict = match licence::verify_licence_file(file, &keys, now, text(v, "product"), text(v, "seat_id")) {
            Err(error) => lease_verdict(error),
            Ok(claims) if claims.iss != text(v, "tenant") => "malformed",
            Ok(claims) if claims.nonce.as_deref() != Some(text(v, "pending_request_nonce")) => "replay",
            Ok(claims) => {
                assert_eq!(serde_json::to_value(&claims).unwrap(), v["claims"], "{}", v["name"]);
                assert_eq!(
                    licence::read_licence_secret(file).as_deref(),
                    v["activation_secret"].as_str(),
                    "{}",
                    v["name"]
                );
                "valid"
            }
        };
        assert_eq!(verdict, text(v, "verdict"), "licence file vector {}", v["name"]);
    }
}

#[test]
fn request_file_verdicts() {
    for v in load("request_files.json")["vectors"].as_array().expect("vectors") {
        let decoded: Option<Value> = licence::read_request(text(v, "label"), text(v, "text"));
        let verdict = match &decoded {
            Some(request) => {
                assert_eq!(request, &v["request"], "{}", v["name"]);
                "valid"
            }
            None => "malformed",
        };
        assert_eq!(verdict, text(v, "verdict"), "request file vector {}", v["name"]);
    }
}
