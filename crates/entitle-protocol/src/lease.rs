//! The claims of a lease token: what one activation may do until the lease expires.

use serde::{Deserialize, Serialize};

use crate::jws::{verify_compact, JwsError, PublicKey};

/// Lease token claims. Times are Unix seconds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct LeaseClaims {
    /// The tenant (software vendor).
    pub iss: String,
    /// The activation.
    pub sub: String,
    /// The product.
    pub aud: String,
    pub iat: i64,
    /// The lease expiry: trust this token offline until then.
    pub exp: i64,
    /// The client's nonce of the request this lease answers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nonce: Option<String>,
    pub entitlement: EntitlementClaims,
    pub seat: SeatClaims,
    pub features: Vec<FeatureClaim>,
    pub attributes: Vec<AttributeClaims>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct EntitlementClaims {
    pub id: String,
    /// `active` or `grace` (a lease is never issued otherwise).
    pub status: String,
    pub sku: String,
    /// `paid`, `trial`, `free`, `internal`, `not_for_resale`.
    pub plan_kind: String,
    pub expires_at: Option<i64>,
    pub grace_expires_at: Option<i64>,
    pub seat_count: i64,
    pub seats_used: i64,
    /// Seats allowed beyond the seat count; `None` is unlimited.
    pub overdraft_seats: Option<i64>,
    /// `node_locked` or `concurrent`.
    pub concurrency_mode: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct SeatClaims {
    /// The device fingerprint or user id the seat is bound to.
    pub id: String,
    pub name: Option<String>,
    /// This seat is beyond the seat count (an overdraft seat).
    pub overdraft: bool,
    /// Activated offline (a licence file).
    pub offline: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct FeatureClaim {
    pub key: String,
    /// `bool`, `element_pool` or `usage_count`.
    pub kind: String,
    pub enabled: bool,
    /// Pool size or usage allowance; `None` is unlimited.
    pub limit: Option<i64>,
    pub overdraft: i64,
    /// Units checked out across all seats (pool) or consumed this period (usage).
    pub used: i64,
    /// Units this seat holds (pool).
    pub checked_out: i64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct AttributeClaims {
    pub key: String,
    pub value: serde_json::Value,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LeaseError {
    #[error(transparent)]
    Signature(#[from] JwsError),
    #[error("the token's claims are malformed")]
    Malformed,
    #[error("the lease expired")]
    Expired,
    #[error("the token was issued for another product")]
    WrongProduct,
    #[error("the token was issued for another seat")]
    WrongSeat,
    #[error("the token was issued in the future: the clock was set back")]
    IssuedInFuture,
}

/// How far a token's issue time may lie ahead of the verifier's clock before the clock is
/// considered set back.
pub const CLOCK_SKEW_SECONDS: i64 = 300;

impl LeaseClaims {
    /// Verifies a lease token's signature and that it is valid `now` for this product and seat.
    pub fn verify(
        token: &str,
        keys: &[PublicKey],
        now: i64,
        product: &str,
        seat_id: &str,
    ) -> Result<LeaseClaims, LeaseError> {
        let payload = verify_compact(token, keys)?;
        let claims: LeaseClaims = serde_json::from_slice(&payload).map_err(|_| LeaseError::Malformed)?;
        claims.check(now, product, seat_id)?;
        Ok(claims)
    }

    pub fn check(&self, now: i64, product: &str, seat_id: &str) -> Result<(), LeaseError> {
        if self.aud != product {
            return Err(LeaseError::WrongProduct);
        }
        if self.seat.id != seat_id {
            return Err(LeaseError::WrongSeat);
        }
        if self.iat > now + CLOCK_SKEW_SECONDS {
            return Err(LeaseError::IssuedInFuture);
        }
        if now >= self.exp {
            return Err(LeaseError::Expired);
        }
        Ok(())
    }

    pub fn feature(&self, key: &str) -> Option<&FeatureClaim> {
        self.features.iter().find(|f| f.key == key)
    }

    /// A feature is usable when it is granted and enabled.
    pub fn is_enabled(&self, key: &str) -> bool {
        self.feature(key).is_some_and(|f| f.enabled)
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::Signer;

    pub(crate) fn sample(exp: i64) -> LeaseClaims {
        LeaseClaims {
            iss: "ten_1".into(),
            sub: "act_1".into(),
            aud: "prd_1".into(),
            iat: 1_000,
            exp,
            nonce: Some("n1".into()),
            entitlement: EntitlementClaims {
                id: "ent_1".into(),
                status: "active".into(),
                sku: "PRO".into(),
                plan_kind: "paid".into(),
                expires_at: None,
                grace_expires_at: None,
                seat_count: 5,
                seats_used: 1,
                overdraft_seats: Some(0),
                concurrency_mode: "node_locked".into(),
            },
            seat: SeatClaims {
                id: "machine-1".into(),
                name: None,
                overdraft: false,
                offline: false,
            },
            features: vec![FeatureClaim {
                key: "export".into(),
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

    #[test]
    fn verifies_product_seat_expiry_and_clock() {
        let signer = Signer::from_seed("k", &[1; 32]);
        let keys = [signer.public_key()];
        let token = signer.sign_compact(&serde_json::to_vec(&sample(2_000)).unwrap());
        let claims = LeaseClaims::verify(&token, &keys, 1_500, "prd_1", "machine-1").unwrap();
        assert!(claims.is_enabled("export"));
        assert!(!claims.is_enabled("import"));
        assert_eq!(
            LeaseClaims::verify(&token, &keys, 2_000, "prd_1", "machine-1"),
            Err(LeaseError::Expired)
        );
        assert_eq!(
            LeaseClaims::verify(&token, &keys, 1_500, "prd_2", "machine-1"),
            Err(LeaseError::WrongProduct)
        );
        assert_eq!(
            LeaseClaims::verify(&token, &keys, 1_500, "prd_1", "machine-2"),
            Err(LeaseError::WrongSeat)
        );
        assert_eq!(
            LeaseClaims::verify(&token, &keys, 500, "prd_1", "machine-1"),
            Err(LeaseError::IssuedInFuture)
        );
    }
}
