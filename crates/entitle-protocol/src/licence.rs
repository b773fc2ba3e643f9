//! Files exchanged with air-gapped machines: licence files (a lease token in armour) and the
//! activation and deactivation requests an application writes.

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use serde::{de::DeserializeOwned, Serialize};

use crate::jws::PublicKey;
use crate::lease::{LeaseClaims, LeaseError};

pub const LICENCE_FILE_LABEL: &str = "ENTITLE LICENCE FILE";
pub const ACTIVATION_SECRET_LABEL: &str = "ENTITLE ACTIVATION SECRET";
pub const ACTIVATION_REQUEST_LABEL: &str = "ENTITLE ACTIVATION REQUEST";
pub const DEACTIVATION_REQUEST_LABEL: &str = "ENTITLE DEACTIVATION REQUEST";

fn armour(label: &str, body: &str) -> String {
    let mut out = format!("-----BEGIN {label}-----\n");
    for chunk in body.as_bytes().chunks(64) {
        out.push_str(&String::from_utf8_lossy(chunk));
        out.push('\n');
    }
    out.push_str(&format!("-----END {label}-----\n"));
    out
}

fn unarmour(label: &str, text: &str) -> Option<String> {
    let begin = format!("-----BEGIN {label}-----");
    let end = format!("-----END {label}-----");
    let start = text.find(&begin)? + begin.len();
    let stop = text[start..].find(&end)? + start;
    Some(text[start..stop].chars().filter(|c| !c.is_whitespace()).collect())
}

/// A licence file: the armoured lease token of an offline activation, and the activation's
/// secret in a second block (the application needs it to write an offline deactivation request).
pub fn write_licence_file(lease_token: &str, activation_secret: &str) -> String {
    armour(LICENCE_FILE_LABEL, lease_token) + &armour(ACTIVATION_SECRET_LABEL, activation_secret)
}

/// The lease token inside a licence file.
pub fn read_licence_file(text: &str) -> Option<String> {
    unarmour(LICENCE_FILE_LABEL, text)
}

/// The activation secret inside a licence file.
pub fn read_licence_secret(text: &str) -> Option<String> {
    unarmour(ACTIVATION_SECRET_LABEL, text)
}

/// Verifies a licence file for this product and seat at time `now` (Unix seconds).
pub fn verify_licence_file(
    text: &str,
    keys: &[PublicKey],
    now: i64,
    product: &str,
    seat_id: &str,
) -> Result<LeaseClaims, LeaseError> {
    let token = read_licence_file(text).ok_or(LeaseError::Malformed)?;
    let claims = LeaseClaims::verify(&token, keys, now, product, seat_id)?;
    if !claims.seat.offline {
        return Err(LeaseError::Malformed);
    }
    Ok(claims)
}

/// A request file: JSON, base64 in armour, so it survives email and copy-paste.
pub fn write_request<T: Serialize>(label: &str, request: &T) -> String {
    armour(label, &STANDARD.encode(serde_json::to_vec(request).unwrap_or_default()))
}

pub fn read_request<T: DeserializeOwned>(label: &str, text: &str) -> Option<T> {
    let body = unarmour(label, text)?;
    serde_json::from_slice(&STANDARD.decode(body).ok()?).ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::OfflineActivationRequest;
    use crate::Signer;

    #[test]
    fn requests_round_trip_through_armour() {
        let request = OfflineActivationRequest {
            tenant: "ten_1".into(),
            product: "prd_1".into(),
            activation_code: "AAAA".into(),
            seat_id: "air-gapped-1".into(),
            seat_name: Some("Lab PC".into()),
            nonce: "n".into(),
        };
        let text = write_request(ACTIVATION_REQUEST_LABEL, &request);
        assert!(text.starts_with("-----BEGIN ENTITLE ACTIVATION REQUEST-----\n"));
        let back: OfflineActivationRequest = read_request(ACTIVATION_REQUEST_LABEL, &text).unwrap();
        assert_eq!(back.seat_id, "air-gapped-1");
        assert!(read_request::<OfflineActivationRequest>(LICENCE_FILE_LABEL, &text).is_none());
    }

    #[test]
    fn licence_files_verify_only_when_offline_and_untampered() {
        let signer = Signer::from_seed("k", &[2; 32]);
        let keys = [signer.public_key()];
        let mut claims = crate::lease::tests::sample(10_000);
        claims.seat.offline = true;
        let file = write_licence_file(
            &signer.sign_compact(&serde_json::to_vec(&claims).unwrap()),
            "eas_secret",
        );
        assert_eq!(read_licence_secret(&file).as_deref(), Some("eas_secret"));
        assert!(verify_licence_file(&file, &keys, 5_000, "prd_1", "machine-1").is_ok());
        assert!(verify_licence_file(&file.replace('A', "B"), &keys, 5_000, "prd_1", "machine-1").is_err());
        claims.seat.offline = false;
        let online = write_licence_file(&signer.sign_compact(&serde_json::to_vec(&claims).unwrap()), "s");
        assert!(verify_licence_file(&online, &keys, 5_000, "prd_1", "machine-1").is_err());
    }
}
