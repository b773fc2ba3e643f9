//! A tenant's public keys as a JSON Web Key Set (RFC 7517, OKP keys of RFC 8037).

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use ed25519_dalek::VerifyingKey;
use serde::{Deserialize, Serialize};

use crate::jws::PublicKey;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Jwk {
    pub kty: String,
    pub crv: String,
    /// The public key, base64url.
    pub x: String,
    pub kid: String,
    pub alg: String,
    #[serde(rename = "use")]
    pub use_: String,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Jwks {
    pub keys: Vec<Jwk>,
}

impl From<&PublicKey> for Jwk {
    fn from(key: &PublicKey) -> Jwk {
        Jwk {
            kty: "OKP".into(),
            crv: "Ed25519".into(),
            x: URL_SAFE_NO_PAD.encode(key.key.to_bytes()),
            kid: key.kid.clone(),
            alg: "EdDSA".into(),
            use_: "sig".into(),
        }
    }
}

impl Jwks {
    pub fn from_keys<'a>(keys: impl IntoIterator<Item = &'a PublicKey>) -> Jwks {
        Jwks {
            keys: keys.into_iter().map(Jwk::from).collect(),
        }
    }

    /// The Ed25519 signing keys of the set; other key types are skipped.
    pub fn public_keys(&self) -> Vec<PublicKey> {
        self.keys
            .iter()
            .filter(|k| k.kty == "OKP" && k.crv == "Ed25519")
            .filter_map(|k| {
                let bytes: [u8; 32] = URL_SAFE_NO_PAD.decode(&k.x).ok()?.try_into().ok()?;
                Some(PublicKey {
                    kid: k.kid.clone(),
                    key: VerifyingKey::from_bytes(&bytes).ok()?,
                })
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Signer;

    #[test]
    fn round_trips_through_json() {
        let signer = Signer::from_seed("k1", &[3; 32]);
        let jwks = Jwks::from_keys([&signer.public_key()]);
        let json = serde_json::to_string(&jwks).unwrap();
        assert!(json.contains(r#""kty":"OKP""#) && json.contains(r#""use":"sig""#));
        let back: Jwks = serde_json::from_str(&json).unwrap();
        assert_eq!(back.public_keys(), vec![signer.public_key()]);
    }
}
