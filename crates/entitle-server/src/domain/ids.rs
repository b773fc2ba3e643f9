//! Identifiers: a type prefix and a ULID-like body (48 bits of milliseconds, 80 random bits) in
//! lower-case Crockford base32, so ids sort by creation time and cursor pagination by id is stable.

use rand::RngCore;

pub(crate) const CROCKFORD: &[u8; 32] = b"0123456789ABCDEFGHJKMNPQRSTVWXYZ";

/// Encodes the low `chars * 5` bits of `value` as `chars` Crockford symbols, most significant first.
fn encode_u128(value: u128, chars: usize, out: &mut String) {
    for i in (0..chars).rev() {
        let symbol = ((value >> (i * 5)) & 0x1f) as usize;
        out.push(CROCKFORD[symbol].to_ascii_lowercase() as char);
    }
}

/// A new id such as `ent_01jd5x0m3c7w4e8r9t2y6u1i0p`.
pub fn new_id(prefix: &str) -> String {
    let millis = chrono::Utc::now().timestamp_millis().max(0) as u128;
    let mut random = [0u8; 10];
    rand::thread_rng().fill_bytes(&mut random);
    let mut value = millis & ((1u128 << 48) - 1);
    for byte in random {
        value = (value << 8) | byte as u128;
    }
    let mut id = String::with_capacity(prefix.len() + 27);
    id.push_str(prefix);
    id.push('_');
    encode_u128(value, 26, &mut id);
    id
}

/// `n` random bytes as Crockford base32 (lower case), for secrets.
pub fn random_token(bytes: usize) -> String {
    let mut buf = vec![0u8; bytes];
    rand::thread_rng().fill_bytes(&mut buf);
    let mut out = String::with_capacity(bytes * 8 / 5 + 1);
    let (mut acc, mut bits) = (0u32, 0u32);
    for byte in buf {
        acc = (acc << 8) | byte as u32;
        bits += 8;
        while bits >= 5 {
            bits -= 5;
            out.push(CROCKFORD[((acc >> bits) & 0x1f) as usize].to_ascii_lowercase() as char);
        }
    }
    if bits > 0 {
        out.push(CROCKFORD[((acc << (5 - bits)) & 0x1f) as usize].to_ascii_lowercase() as char);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_have_prefix_fixed_length_and_sort_by_time() {
        let a = new_id("ent");
        std::thread::sleep(std::time::Duration::from_millis(2));
        let b = new_id("ent");
        assert!(a.starts_with("ent_"));
        assert_eq!(a.len(), 4 + 26);
        assert!(a < b, "{a} should sort before {b}");
        assert_ne!(new_id("x"), new_id("x"));
    }

    #[test]
    fn random_token_length_matches_entropy() {
        assert_eq!(random_token(32).len(), 52);
        assert!(random_token(32).bytes().all(|c| c.is_ascii_alphanumeric()));
    }
}
