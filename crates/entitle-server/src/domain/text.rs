//! Validated text newtypes. Each has exactly one constructor that checks its input, and they
//! deserialize through it, so a value of these types is always valid.

use serde::{Deserialize, Serialize};
use std::fmt;
use utoipa::openapi::schema::{ObjectBuilder, Type};
use utoipa::openapi::{RefOr, Schema};
use utoipa::ToSchema;

use super::RuleViolation;

/// A string schema stating what the constructor accepts, so the OpenAPI document tells the truth.
fn text_schema(min: usize, max: usize, pattern: &str) -> RefOr<Schema> {
    ObjectBuilder::new()
        .schema_type(Type::String)
        .min_length(Some(min))
        .max_length(Some(max))
        .pattern(Some(pattern))
        .into()
}

macro_rules! text_newtype {
    ($(#[$doc:meta])* $name:ident, schema = ($min:expr, $max:expr, $pattern:expr), $check:expr) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(try_from = "String", into = "String")]
        pub struct $name(String);

        impl utoipa::PartialSchema for $name {
            fn schema() -> RefOr<Schema> {
                text_schema($min, $max, $pattern)
            }
        }

        impl ToSchema for $name {}

        impl $name {
            pub fn parse(value: impl Into<String>) -> Result<Self, RuleViolation> {
                let check: fn(String) -> Result<String, RuleViolation> = $check;
                check(value.into()).map(Self)
            }

            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl TryFrom<String> for $name {
            type Error = RuleViolation;
            fn try_from(value: String) -> Result<Self, Self::Error> {
                Self::parse(value)
            }
        }

        impl From<$name> for String {
            fn from(value: $name) -> String {
                value.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl AsRef<str> for $name {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }
    };
}

text_newtype!(
    /// A display name: 1–200 characters after trimming, no control characters.
    Name,
    // No control characters (Unicode Cc) and at least one character that is not a space.
    schema = (1, 200, r"^[^\x00-\x1f\x7f-\x9f]*[^\s\x00-\x1f\x7f-\x9f][^\x00-\x1f\x7f-\x9f]*$"),
    |value| {
        let trimmed = value.trim();
        if trimmed.is_empty() || trimmed.chars().count() > 200 {
            return Err(RuleViolation::new("invalid_name", "a name must have 1 to 200 characters"));
        }
        if trimmed.chars().any(char::is_control) {
            return Err(RuleViolation::new("invalid_name", "a name may not contain control characters"));
        }
        Ok(trimmed.to_owned())
    }
);

text_newtype!(
    /// A machine key for features and attributes: 1–64 of `a-z 0-9 _ . -`, starting with a letter.
    Key,
    schema = (1, 64, r"^[a-z][a-z0-9_.-]*$"),
    |value| {
        let valid = (1..=64).contains(&value.len())
            && value.starts_with(|c: char| c.is_ascii_lowercase())
            && value
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '_' | '.' | '-'));
        if valid {
            Ok(value)
        } else {
            Err(RuleViolation::new(
                "invalid_key",
                format!("{value:?} is not a key: use 1-64 of a-z, 0-9, '_', '.', '-', starting with a letter"),
            ))
        }
    }
);

text_newtype!(
    /// A stock-keeping unit, the join key between a storefront and an offering:
    /// 1–64 of `A-Z a-z 0-9 _ . : -`.
    Sku,
    schema = (1, 64, r"^[A-Za-z0-9_.:-]+$"),
    |value| {
        let valid = (1..=64).contains(&value.len())
            && value
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | ':' | '-'));
        if valid {
            Ok(value)
        } else {
            Err(RuleViolation::new(
                "invalid_sku",
                format!("{value:?} is not a SKU: use 1-64 of A-Z, a-z, 0-9, '_', '.', ':', '-'"),
            ))
        }
    }
);

text_newtype!(
    /// An email address, trimmed and lower-cased so that lookups by email are exact.
    /// The check is deliberately structural (one `@`, a dotted domain, no spaces): deliverability is
    /// proven by the mail arriving, not by a regular expression.
    Email,
    schema = (3, 254, r"^[^\s@\x00-\x1f\x7f-\x9f]{1,64}@[^\s@.\x00-\x1f\x7f-\x9f]+(\.[^\s@.\x00-\x1f\x7f-\x9f]+)+$"),
    |value| {
        let email = value.trim().to_lowercase();
        let bad = || RuleViolation::new("invalid_email", format!("{value:?} is not an email address"));
        if email.len() > 254 || email.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(bad());
        }
        let (local, domain) = email.rsplit_once('@').ok_or_else(bad)?;
        let domain_ok = domain.contains('.')
            && !domain.starts_with('.')
            && !domain.ends_with('.')
            && !domain.contains("..")
            && !domain.contains('@');
        if local.is_empty() || local.len() > 64 || local.contains('@') || !domain_ok {
            return Err(bad());
        }
        Ok(email)
    }
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn emails_are_normalised_and_checked() {
        assert_eq!(Email::parse(" Ada@Example.COM ").unwrap().as_str(), "ada@example.com");
        for bad in [
            "",
            "ada",
            "ada@",
            "@example.com",
            "ada@example",
            "a b@example.com",
            "a@b@c.com",
            "a@.com",
        ] {
            assert!(Email::parse(bad).is_err(), "{bad} accepted");
        }
    }

    #[test]
    fn skus_keys_and_names() {
        assert!(Sku::parse("PRO-YEARLY:v2").is_ok());
        assert!(Sku::parse("pro yearly").is_err());
        assert!(Sku::parse("").is_err());
        assert!(Key::parse("max_users").is_ok());
        assert!(Key::parse("MaxUsers").is_err());
        assert!(Key::parse("1x").is_err());
        assert_eq!(Name::parse("  Acme  ").unwrap().as_str(), "Acme");
        assert!(Name::parse("   ").is_err());
        assert!(Name::parse("a\u{0}b").is_err());
        assert!(serde_json::from_str::<Sku>("\"bad sku\"").is_err());
    }
}
