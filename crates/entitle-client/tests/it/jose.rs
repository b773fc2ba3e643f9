//! Lease tokens are standard JWTs: an independent JOSE library (`jsonwebtoken`) verifies the
//! real server's tokens against its published JWKS, and reaches the vectors' verdicts.

use entitle_client::{Credential, ManualClock};
use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{decode, decode_header, Algorithm, DecodingKey, Validation};
use serde_json::Value;

use crate::harness::{Server, TempDir};

fn verify(token: &str, jwks: &JwkSet, validation: &Validation) -> jsonwebtoken::errors::Result<Value> {
    let kid = decode_header(token)?.kid.unwrap_or_default();
    let jwk = jwks
        .find(&kid)
        .ok_or_else(|| jsonwebtoken::errors::Error::from(jsonwebtoken::errors::ErrorKind::InvalidSignature))?;
    Ok(decode::<Value>(token, &DecodingKey::from_jwk(jwk)?, validation)?.claims)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_servers_lease_tokens_verify_with_jsonwebtoken_against_the_jwks() {
    let mut server = Server::start().await;
    let jwks: JwkSet = serde_json::from_str(&server.jwks).unwrap();
    let mut validation = Validation::new(Algorithm::EdDSA);
    validation.set_audience(&[&server.product]);
    validation.set_issuer(&[&server.tenant]);
    let dir = TempDir::new();
    let client = server.client("jose-seat", &dir.join("c.json"), &ManualClock::starting_now());

    let activated = client
        .activate(Credential::Code(server.code.clone()), None)
        .await
        .unwrap();
    let claims = verify(&client.lease_token().unwrap(), &jwks, &validation).unwrap();
    assert_eq!(claims["sub"], activated.sub.as_str());
    assert_eq!(claims["seat"]["id"], "jose-seat");
    // A refreshed lease is the answer's detached signature attached to its body.
    client.refresh().await.unwrap();
    let refreshed = verify(&client.lease_token().unwrap(), &jwks, &validation).unwrap();
    assert_eq!(refreshed["sub"], claims["sub"]);
    let mut tampered = client.lease_token().unwrap();
    tampered.replace_range(tampered.len() - 4.., "AAAA");
    assert!(verify(&tampered, &jwks, &validation).is_err());
    server.stop().await;
}

#[test]
fn jsonwebtoken_reaches_the_vectors_signature_verdicts() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../protocol/vectors");
    let read =
        |name: &str| -> Value { serde_json::from_str(&std::fs::read_to_string(dir.join(name)).unwrap()).unwrap() };
    let jwks: JwkSet = serde_json::from_value(read("keys.json")["jwks"].clone()).unwrap();
    let mut validation = Validation::new(Algorithm::EdDSA);
    // The vectors' clock is fixed in the past: time is the SDK's check, the signature this one's.
    validation.validate_exp = false;
    validation.validate_aud = false;
    let mut checked = 0;
    for v in read("lease_tokens.json")["vectors"].as_array().unwrap() {
        let outcome = verify(v["token"].as_str().unwrap(), &jwks, &validation);
        match v["verdict"].as_str().unwrap() {
            "bad_signature" => assert!(outcome.is_err(), "{} must not verify", v["name"]),
            _ => assert_eq!(outcome.unwrap()["sub"], "act_vectors", "{}", v["name"]),
        }
        checked += 1;
    }
    assert!(checked >= 10);
}
