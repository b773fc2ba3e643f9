//! Request and response bodies of the licensing API.

use serde::{Deserialize, Serialize};

/// `POST /licensing/v1/activate`. The credential is an activation code, or an end user's
/// email and password (account-based licensing).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct ActivateRequest {
    pub tenant: String,
    pub product: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub activation_code: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password: Option<String>,
    /// Device fingerprint or user id, at most 128 characters.
    pub seat_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seat_name: Option<String>,
    /// Echoed in the signed response: a fresh random value per request.
    pub nonce: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ActivateResponse {
    pub activation_id: String,
    /// Send as `Authorization: Bearer …` on the activation's later calls. Keep it secret.
    pub activation_secret: String,
    /// A JWT (EdDSA) with [`crate::LeaseClaims`].
    pub lease_token: String,
    pub nonce: String,
}

/// `POST /licensing/v1/activation/features/{key}/checkout` and `…/return`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct CountRequest {
    /// Units, at least 1. Default 1.
    #[serde(default = "one")]
    pub count: i64,
}

/// `POST /licensing/v1/activation/usage`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct UsageRequest {
    pub feature: String,
    /// Units consumed, at least 1. Default 1.
    #[serde(default = "one")]
    pub amount: i64,
}

fn one() -> i64 {
    1
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct DeactivateResponse {
    pub activation_id: String,
    pub deactivated: bool,
    pub nonce: Option<String>,
}

/// A refusal: `code` is stable, match on it.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Denial {
    pub error: DenialDetail,
    pub nonce: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct DenialDetail {
    pub code: String,
    pub message: String,
}

/// The stable denial codes of the licensing API.
pub mod denial {
    pub const INVALID_REQUEST: &str = "invalid_request";
    pub const INVALID_CREDENTIAL: &str = "invalid_credential";
    pub const INVALID_ACTIVATION: &str = "invalid_activation";
    pub const ENTITLEMENT_NOT_STARTED: &str = "entitlement_not_started";
    pub const ENTITLEMENT_EXPIRED: &str = "entitlement_expired";
    pub const ENTITLEMENT_DISABLED: &str = "entitlement_disabled";
    pub const SEAT_LIMIT_REACHED: &str = "seat_limit_reached";
    pub const FEATURE_NOT_ENTITLED: &str = "feature_not_entitled";
    pub const POOL_EXHAUSTED: &str = "pool_exhausted";
    pub const NOTHING_CHECKED_OUT: &str = "nothing_checked_out";
    pub const USAGE_LIMIT_REACHED: &str = "usage_limit_reached";
    pub const LEASE_EXPIRED: &str = "lease_expired";
    pub const OFFLINE_NOT_ALLOWED: &str = "offline_not_allowed";
    pub const RATE_LIMITED: &str = "rate_limited";
    /// The server is at capacity (password hashing): retry after `Retry-After` seconds.
    pub const SERVER_BUSY: &str = "server_busy";
}

/// Offline activation: the request an air-gapped application writes to a file.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct OfflineActivationRequest {
    pub tenant: String,
    pub product: String,
    pub activation_code: String,
    pub seat_id: String,
    #[serde(default)]
    pub seat_name: Option<String>,
    pub nonce: String,
}

/// Offline deactivation: written by the application once it has deleted its licence file.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct OfflineDeactivationRequest {
    pub tenant: String,
    pub activation_id: String,
    /// The secret from the licence file, proving the request comes from that installation.
    pub activation_secret: String,
    pub seat_id: String,
    pub nonce: String,
}
