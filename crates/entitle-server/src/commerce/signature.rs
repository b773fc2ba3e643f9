//! HMAC-SHA256 checks over the raw request bytes, in constant time.

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use hmac::{Hmac, Mac};
use sha2::Sha256;

type HmacSha256 = Hmac<Sha256>;

/// Why a delivery is refused before it is read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Rejection {
    #[error("the signature header is missing")]
    MissingSignature,
    #[error("the signature header is malformed")]
    MalformedSignature,
    #[error("no configured secret produces this signature")]
    BadSignature,
    #[error("the signed timestamp is outside the tolerance")]
    Stale,
}

pub fn mac(secret: &[u8], parts: &[&[u8]]) -> HmacSha256 {
    #[allow(clippy::expect_used)]
    let mut mac = HmacSha256::new_from_slice(secret).expect("HMAC takes keys of any length");
    for part in parts {
        mac.update(part);
    }
    mac
}

/// Does `expected` (raw MAC bytes) match HMAC(secret, parts) for any secret? Constant time per check.
pub fn any_matches(secrets: &[String], parts: &[&[u8]], expected: &[u8]) -> bool {
    secrets
        .iter()
        .any(|secret| mac(secret.as_bytes(), parts).verify_slice(expected).is_ok())
}

pub fn decode_hex(text: &str) -> Result<Vec<u8>, Rejection> {
    let text = text.trim();
    if !text.len().is_multiple_of(2) {
        return Err(Rejection::MalformedSignature);
    }
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&text[i..i + 2], 16).map_err(|_| Rejection::MalformedSignature))
        .collect()
}

pub fn decode_base64(text: &str) -> Result<Vec<u8>, Rejection> {
    STANDARD.decode(text.trim()).map_err(|_| Rejection::MalformedSignature)
}

pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Signs like a provider would (for tests and the generic format's documentation).
pub fn sign_hex(secret: &[u8], parts: &[&[u8]]) -> String {
    hex(&mac(secret, parts).finalize().into_bytes())
}

pub fn sign_base64(secret: &[u8], parts: &[&[u8]]) -> String {
    STANDARD.encode(mac(secret, parts).finalize().into_bytes())
}

/// Schemes that sign `"{timestamp}{joiner}{body}"` and send the timestamp and hex signatures as
/// `key=value` pairs in one header: Stripe (`t=…,v1=…`) and Paddle (`ts=…;h1=…`). Several
/// signatures may be present during a secret rotation; one match is enough.
pub struct TimestampedScheme {
    pub header: &'static str,
    pub separator: char,
    pub timestamp_key: &'static str,
    pub signature_key: &'static str,
    pub joiner: &'static [u8],
    /// How old a signature may be, in seconds, unless the connection says otherwise.
    pub tolerance: i64,
}

pub fn verify_timestamped(v: &super::Verification<'_>, scheme: &TimestampedScheme) -> Result<(), Rejection> {
    let value = super::header(v.headers, scheme.header).ok_or(Rejection::MissingSignature)?;
    let mut timestamp = None;
    let mut signatures = Vec::new();
    for pair in value.split(scheme.separator) {
        match pair.trim().split_once('=') {
            Some((key, ts)) if key == scheme.timestamp_key => timestamp = Some(ts.to_owned()),
            Some((key, sig)) if key == scheme.signature_key => signatures.push(decode_hex(sig)?),
            _ => {}
        }
    }
    let timestamp = timestamp.ok_or(Rejection::MalformedSignature)?;
    let signed_at: i64 = timestamp.parse().map_err(|_| Rejection::MalformedSignature)?;
    if v.now.timestamp() - signed_at > v.tolerance.unwrap_or(scheme.tolerance) {
        return Err(Rejection::Stale);
    }
    let parts: [&[u8]; 3] = [timestamp.as_bytes(), scheme.joiner, v.body];
    if signatures.iter().any(|sig| any_matches(v.secrets, &parts, sig)) {
        Ok(())
    } else {
        Err(Rejection::BadSignature)
    }
}
