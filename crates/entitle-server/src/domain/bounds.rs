//! Bounded numbers: every number the management API accepts is one of these, so a value outside
//! its range is refused while the request is parsed (422 with the type's stable code) and can never
//! reach arithmetic or the database. The bounds are chosen so that every sum and product formed
//! from them fits in an i64 on both SQLite and PostgreSQL (PostgreSQL raises an error on bigint
//! overflow where SQLite silently switches to floating point).

use serde::{Deserialize, Serialize};
use std::fmt;
use utoipa::openapi::schema::{KnownFormat, ObjectBuilder, SchemaFormat, Type};
use utoipa::openapi::{RefOr, Schema};

use super::RuleViolation;

/// The error of a bounded value's deserialization. Serde keeps only an error's text, so the text
/// carries the stable code in a marker that the API's error mapping reads back (`rule_code_in`).
#[derive(Debug)]
pub struct Rejected(pub RuleViolation);

const MARKER: &str = " [code: ";

impl fmt::Display for Rejected {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}{MARKER}{}]", self.0.message, self.0.code)
    }
}

impl From<RuleViolation> for Rejected {
    fn from(rule: RuleViolation) -> Self {
        Rejected(rule)
    }
}

/// Every code a `Rejected` may carry, so the mapping answers a `&'static str` and nothing a
/// client sent can become a code.
const CODES: &[&str] = &[
    "invalid_limit",
    "invalid_seat_count",
    "invalid_quantity",
    "invalid_feature_value",
    "invalid_overdraft",
    "invalid_interval",
    "invalid_tolerance",
    // Branding (`domain::branding`): text, but refused the same way.
    "invalid_display_name",
    "invalid_logo_url",
    "invalid_accent_colour",
];

/// The stable code that a `Rejected` left in a deserialization error's text, if any.
pub fn rule_code_in(text: &str) -> Option<&'static str> {
    let start = text.rfind(MARKER)? + MARKER.len();
    let rest = &text[start..];
    let code = &rest[..rest.find(']')?];
    CODES.iter().copied().find(|known| *known == code)
}

macro_rules! bounded {
    ($(#[$doc:meta])* $name:ident($int:ty), $min:expr, $max:expr, $code:literal, $what:literal) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
        #[serde(try_from = "i64", into = "i64")]
        pub struct $name($int);

        impl $name {
            pub const MIN: $int = $min;
            pub const MAX: $int = $max;

            pub fn new(value: i64) -> Result<Self, RuleViolation> {
                match <$int>::try_from(value) {
                    Ok(value) if (Self::MIN..=Self::MAX).contains(&value) => Ok(Self(value)),
                    _ => Err(RuleViolation::new(
                        $code,
                        format!(concat!($what, " must be between {} and {}"), Self::MIN, Self::MAX),
                    )),
                }
            }

            pub fn get(self) -> $int {
                self.0
            }
        }

        impl TryFrom<i64> for $name {
            type Error = Rejected;
            fn try_from(value: i64) -> Result<Self, Self::Error> {
                Ok(Self::new(value)?)
            }
        }

        impl From<$name> for i64 {
            fn from(value: $name) -> i64 {
                value.0 as i64
            }
        }

        impl utoipa::PartialSchema for $name {
            fn schema() -> RefOr<Schema> {
                ObjectBuilder::new()
                    .schema_type(Type::Integer)
                    .format(Some(SchemaFormat::KnownFormat(KnownFormat::Int64)))
                    .minimum(Some(Self::MIN as f64))
                    .maximum(Some(Self::MAX as f64))
                    .into()
            }
        }

        impl utoipa::ToSchema for $name {}
    };
}

bounded!(
    /// `?limit=`: how many items a page holds.
    PageLimit(u32), 1, 200, "invalid_limit", "limit"
);

bounded!(
    /// Seats of an offering or an entitlement.
    SeatCount(i64), 0, 1_000_000_000, "invalid_seat_count", "a seat count"
);

bounded!(
    /// Seats added to an entitlement at once.
    SeatIncrement(i64), 1, 1_000_000, "invalid_seat_count", "count"
);

bounded!(
    /// Units bought.
    Quantity(i64), 1, 1_000_000, "invalid_quantity", "quantity"
);

bounded!(
    /// A feature's limit (pool size, usage allowance) or usage overdraft. A trillion is far above any
    /// real allowance, and limit + overdraft + one metered amount still fits in an i64.
    FeatureAmount(i64), 0, 1_000_000_000_000, "invalid_feature_value", "a feature's limit and overdraft"
);

bounded!(
    /// A storefront's signature timestamp tolerance, in seconds: up to a day.
    ToleranceSeconds(i64), 1, 86_400, "invalid_tolerance", "tolerance_seconds"
);

impl FeatureAmount {
    pub const ZERO: FeatureAmount = FeatureAmount(0);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bounds_are_enforced_while_parsing_and_keep_their_code() {
        assert_eq!(serde_json::from_str::<PageLimit>("200").unwrap().get(), 200);
        for bad in ["0", "201", "-1", "4294967297", "1.5", "\"7\""] {
            assert!(serde_json::from_str::<PageLimit>(bad).is_err(), "{bad} accepted");
        }
        let error = serde_json::from_str::<FeatureAmount>("9223372036854775807").unwrap_err();
        assert_eq!(rule_code_in(&error.to_string()), Some("invalid_feature_value"));
        assert_eq!(rule_code_in("nothing here"), None);
        assert_eq!(rule_code_in("x [code: made_up]"), None);
    }
}
