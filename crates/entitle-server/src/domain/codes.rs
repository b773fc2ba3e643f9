//! Activation codes: the licence-key credential a buyer types into the application.
//!
//! 23 random Crockford base32 symbols (115 bits) and one Luhn mod 32 check symbol, shown in six
//! groups of four: `7KQ2-M9XD-4FRT-0BWN-HC8E-P3VZ`. Parsing forgives case, spaces, hyphens and the
//! look-alikes Crockford maps (O→0, I/L→1), and rejects typos through the check symbol before any
//! database lookup.

use rand::Rng;
use serde::{Deserialize, Serialize};
use std::fmt;
use utoipa::ToSchema;

use super::ids::CROCKFORD;
use super::RuleViolation;

const RANDOM_SYMBOLS: usize = 23;

#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(try_from = "String", into = "String")]
pub struct ActivationCode(String);

fn symbol_value(c: char) -> Option<u32> {
    let c = match c.to_ascii_uppercase() {
        'O' => '0',
        'I' | 'L' => '1',
        other => other,
    };
    CROCKFORD.iter().position(|&s| s as char == c).map(|p| p as u32)
}

/// Luhn mod N check symbol over the values, N = 32.
fn check_value(values: &[u32]) -> u32 {
    let mut factor = 2;
    let mut sum = 0;
    for &value in values.iter().rev() {
        let addend = factor * value;
        sum += addend / 32 + addend % 32;
        factor = if factor == 2 { 1 } else { 2 };
    }
    (32 - sum % 32) % 32
}

impl ActivationCode {
    pub fn generate() -> Self {
        let mut rng = rand::thread_rng();
        let values: Vec<u32> = (0..RANDOM_SYMBOLS).map(|_| rng.gen_range(0..32)).collect();
        Self::from_values(&values)
    }

    fn from_values(values: &[u32]) -> Self {
        let check = check_value(values);
        let symbols: Vec<char> = values
            .iter()
            .chain(std::iter::once(&check))
            .map(|&v| CROCKFORD[v as usize] as char)
            .collect();
        let groups: Vec<String> = symbols.chunks(4).map(|g| g.iter().collect()).collect();
        Self(groups.join("-"))
    }

    /// Accepts what a person may type; answers with the canonical form.
    pub fn parse(input: &str) -> Result<Self, RuleViolation> {
        let invalid = || RuleViolation::new("invalid_activation_code", "this is not a valid activation code");
        let mut values = Vec::with_capacity(RANDOM_SYMBOLS + 1);
        for c in input.chars() {
            if c == '-' || c.is_whitespace() {
                continue;
            }
            values.push(symbol_value(c).ok_or_else(invalid)?);
            if values.len() > RANDOM_SYMBOLS + 1 {
                return Err(invalid());
            }
        }
        let Some((&check, body)) = values.split_last() else {
            return Err(invalid());
        };
        if body.len() != RANDOM_SYMBOLS || check_value(body) != check {
            return Err(invalid());
        }
        Ok(Self::from_values(body))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for ActivationCode {
    type Error = RuleViolation;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        Self::parse(&value)
    }
}

impl From<ActivationCode> for String {
    fn from(value: ActivationCode) -> String {
        value.0
    }
}

impl fmt::Display for ActivationCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_codes_parse_back_in_any_typed_form() {
        for _ in 0..200 {
            let code = ActivationCode::generate();
            assert_eq!(code.as_str().len(), 29);
            assert_eq!(ActivationCode::parse(code.as_str()).unwrap(), code);
            let sloppy = code
                .as_str()
                .replace('-', " ")
                .to_lowercase()
                .replace('0', "o")
                .replace('1', "l");
            assert_eq!(ActivationCode::parse(&sloppy).unwrap(), code);
        }
    }

    #[test]
    fn every_single_symbol_typo_and_adjacent_swap_is_detected() {
        let code = ActivationCode::generate();
        let compact: Vec<char> = code.as_str().chars().filter(|&c| c != '-').collect();
        for i in 0..compact.len() {
            for &replacement in CROCKFORD {
                let replacement = replacement as char;
                if replacement == compact[i] {
                    continue;
                }
                let mut typo = compact.clone();
                typo[i] = replacement;
                let typed: String = typo.iter().collect();
                assert!(ActivationCode::parse(&typed).is_err(), "typo {typed} accepted");
            }
        }
        for i in 0..compact.len() - 1 {
            if compact[i] == compact[i + 1] {
                continue;
            }
            let mut swapped = compact.clone();
            swapped.swap(i, i + 1);
            let typed: String = swapped.iter().collect();
            // Luhn mod N misses only the swap of the two symbols whose values sum to N - 1.
            let (a, b) = (symbol_value(compact[i]).unwrap(), symbol_value(compact[i + 1]).unwrap());
            if a + b != 31 {
                assert!(ActivationCode::parse(&typed).is_err(), "swap {typed} accepted");
            }
        }
    }

    #[test]
    fn garbage_is_refused() {
        for bad in ["", "ABCD", "U", &"A".repeat(100), "7KQ2-M9XD-4FRT-0BWN-HC8E-P3V!"] {
            assert!(ActivationCode::parse(bad).is_err(), "{bad} accepted");
        }
    }
}
