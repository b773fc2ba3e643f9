//! Pure business rules: no I/O, no clock, no database. Everything here is unit-tested.

pub mod bounds;
pub mod branding;
pub mod catalogue;
pub mod codes;
pub mod entitlement;
pub mod history;
pub mod idempotency;
pub mod ids;
pub mod interval;
pub mod keys;
pub mod licensing;
pub mod network;
pub mod passwords;
pub mod reminders;
pub mod sender;
pub mod staff;
pub mod text;
pub mod totp;
pub mod usage;
pub mod webhooks;
pub mod zone;

pub use bounds::{FeatureAmount, PageLimit, Quantity, SeatCount, SeatIncrement, ToleranceSeconds};
pub use catalogue::*;
pub use codes::ActivationCode;
pub use entitlement::*;
pub use interval::{Interval, IntervalUnit};
pub use keys::{ApiKeySecret, Role};
pub use text::{Email, Key, Name, Sku};

/// A request that breaks a business rule. `code` is stable and part of the API contract.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct RuleViolation {
    pub code: &'static str,
    pub message: String,
}

impl RuleViolation {
    pub fn new(code: &'static str, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
        }
    }
}
