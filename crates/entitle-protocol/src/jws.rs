//! JSON Web Signatures with EdDSA (Ed25519): compact (JWT) and detached forms.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use ed25519_dalek::{Signature, Signer as _, SigningKey, Verifier, VerifyingKey};
use serde::Deserialize;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum JwsError {
    #[error("not a well-formed JWS")]
    Malformed,
    #[error("unsupported signature algorithm (only EdDSA is accepted)")]
    UnsupportedAlgorithm,
    #[error("signed with an unknown key id")]
    UnknownKey,
    #[error("the signature does not match")]
    BadSignature,
}

#[derive(Deserialize)]
struct Header {
    alg: String,
    kid: Option<String>,
}

/// A public key with its key id, as published in the tenant's JWKS.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PublicKey {
    pub kid: String,
    pub key: VerifyingKey,
}

/// A private signing key with its key id. The protected header is encoded once.
pub struct Signer {
    kid: String,
    key: SigningKey,
    protected: String,
}

impl std::fmt::Debug for Signer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Signer").field("kid", &self.kid).finish_non_exhaustive()
    }
}

impl Signer {
    /// From a 32-byte Ed25519 seed.
    pub fn from_seed(kid: impl Into<String>, seed: &[u8; 32]) -> Signer {
        let kid = kid.into();
        let header = serde_json::json!({"alg": "EdDSA", "typ": "JWT", "kid": kid});
        Signer {
            protected: URL_SAFE_NO_PAD.encode(header.to_string()),
            key: SigningKey::from_bytes(seed),
            kid,
        }
    }

    pub fn kid(&self) -> &str {
        &self.kid
    }

    pub fn public_key(&self) -> PublicKey {
        PublicKey {
            kid: self.kid.clone(),
            key: self.key.verifying_key(),
        }
    }

    fn signature(&self, encoded_payload: &str) -> String {
        let mut input = String::with_capacity(self.protected.len() + 1 + encoded_payload.len());
        input.push_str(&self.protected);
        input.push('.');
        input.push_str(encoded_payload);
        URL_SAFE_NO_PAD.encode(self.key.sign(input.as_bytes()).to_bytes())
    }

    /// `header.payload.signature`: a JWT when the payload is a claims object.
    pub fn sign_compact(&self, payload: &[u8]) -> String {
        let encoded = URL_SAFE_NO_PAD.encode(payload);
        let signature = self.signature(&encoded);
        format!("{}.{encoded}.{signature}", self.protected)
    }

    /// `header..signature`: the payload travels separately (as the HTTP body).
    pub fn sign_detached(&self, payload: &[u8]) -> String {
        let signature = self.signature(&URL_SAFE_NO_PAD.encode(payload));
        format!("{}..{signature}", self.protected)
    }
}

fn split(jws: &str) -> Result<(&str, &str, &str), JwsError> {
    let mut parts = jws.trim().splitn(3, '.');
    match (parts.next(), parts.next(), parts.next()) {
        (Some(h), Some(p), Some(s)) if !s.contains('.') => Ok((h, p, s)),
        _ => Err(JwsError::Malformed),
    }
}

fn check(protected: &str, encoded_payload: &str, signature: &str, keys: &[PublicKey]) -> Result<(), JwsError> {
    let header_bytes = URL_SAFE_NO_PAD.decode(protected).map_err(|_| JwsError::Malformed)?;
    let header: Header = serde_json::from_slice(&header_bytes).map_err(|_| JwsError::Malformed)?;
    if header.alg != "EdDSA" {
        return Err(JwsError::UnsupportedAlgorithm);
    }
    let key = match &header.kid {
        Some(kid) => keys.iter().find(|k| &k.kid == kid).ok_or(JwsError::UnknownKey)?,
        None => return Err(JwsError::UnknownKey),
    };
    let signature_bytes = URL_SAFE_NO_PAD.decode(signature).map_err(|_| JwsError::Malformed)?;
    let signature = Signature::from_slice(&signature_bytes).map_err(|_| JwsError::Malformed)?;
    let input = format!("{protected}.{encoded_payload}");
    key.key
        .verify(input.as_bytes(), &signature)
        .map_err(|_| JwsError::BadSignature)
}

/// Verifies a compact JWS against `keys` and returns its payload.
pub fn verify_compact(jws: &str, keys: &[PublicKey]) -> Result<Vec<u8>, JwsError> {
    let (protected, payload, signature) = split(jws)?;
    check(protected, payload, signature, keys)?;
    URL_SAFE_NO_PAD.decode(payload).map_err(|_| JwsError::Malformed)
}

/// Verifies a detached JWS (`header..signature`) over `payload` (the exact body bytes).
pub fn verify_detached(detached: &str, payload: &[u8], keys: &[PublicKey]) -> Result<(), JwsError> {
    let (protected, empty, signature) = split(detached)?;
    if !empty.is_empty() {
        return Err(JwsError::Malformed);
    }
    check(protected, &URL_SAFE_NO_PAD.encode(payload), signature, keys)
}

/// Joins a detached signature and its payload into a compact JWS. A refresh response's
/// signature and body make the new lease token this way.
pub fn attach(detached: &str, payload: &[u8]) -> Result<String, JwsError> {
    let (protected, empty, signature) = split(detached)?;
    if !empty.is_empty() {
        return Err(JwsError::Malformed);
    }
    Ok(format!("{protected}.{}.{signature}", URL_SAFE_NO_PAD.encode(payload)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn signer(kid: &str, byte: u8) -> Signer {
        Signer::from_seed(kid, &[byte; 32])
    }

    #[test]
    fn compact_and_detached_round_trip_and_attach() {
        let s = signer("k1", 7);
        let keys = [s.public_key()];
        let payload = br#"{"sub":"act_1","exp":1}"#;
        let token = s.sign_compact(payload);
        assert_eq!(verify_compact(&token, &keys).unwrap(), payload);
        let detached = s.sign_detached(payload);
        verify_detached(&detached, payload, &keys).unwrap();
        assert_eq!(attach(&detached, payload).unwrap(), token, "Ed25519 is deterministic");
    }

    #[test]
    fn forgeries_are_refused() {
        let s = signer("k1", 7);
        let keys = [s.public_key()];
        let payload = br#"{"a":1}"#;
        let detached = s.sign_detached(payload);
        assert_eq!(
            verify_detached(&detached, br#"{"a":2}"#, &keys),
            Err(JwsError::BadSignature)
        );
        let impostor = signer("k1", 9);
        assert_eq!(
            verify_detached(&impostor.sign_detached(payload), payload, &keys),
            Err(JwsError::BadSignature)
        );
        let other_kid = signer("k2", 7);
        assert_eq!(
            verify_detached(&other_kid.sign_detached(payload), payload, &keys),
            Err(JwsError::UnknownKey)
        );
        assert_eq!(verify_compact("a.b", &keys), Err(JwsError::Malformed));
        let none_alg = format!(
            "{}.{}.",
            URL_SAFE_NO_PAD.encode(r#"{"alg":"none","kid":"k1"}"#),
            URL_SAFE_NO_PAD.encode(payload)
        );
        assert_eq!(verify_compact(&none_alg, &keys), Err(JwsError::UnsupportedAlgorithm));
        let token = s.sign_compact(payload);
        let mut tampered = token.clone();
        tampered.replace_range(token.len() - 3.., "AAA");
        assert!(verify_compact(&tampered, &keys).is_err());
    }

    /// RFC 8037 appendix A: the Ed25519 test key signs "Example of Ed25519 signing" to a known value.
    #[test]
    fn matches_the_rfc_8037_test_vector() {
        let seed: [u8; 32] = URL_SAFE_NO_PAD
            .decode("nWGxne_9WmC6hEr0kuwsxERJxWl7MmkZcDusAxyuf2A")
            .unwrap()
            .try_into()
            .unwrap();
        let key = SigningKey::from_bytes(&seed);
        assert_eq!(
            URL_SAFE_NO_PAD.encode(key.verifying_key().to_bytes()),
            "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"
        );
        let input = "eyJhbGciOiJFZERTQSJ9.RXhhbXBsZSBvZiBFZDI1NTE5IHNpZ25pbmc";
        assert_eq!(
            URL_SAFE_NO_PAD.encode(key.sign(input.as_bytes()).to_bytes()),
            "hgyY0il_MGCjP0JzlnLWG1PPOt7-09PGcvMg3AIbQR6dWbhijcNR4ki4iylGjg5BhVsPt9g7sVvpAr_MuM0KAg"
        );
    }
}
