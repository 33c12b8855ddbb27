//! Pseudonymisation of patient identifiers.
//!
//! NHS numbers and local patient ids never reach the lake: they become a `patient_key`, a keyed
//! HMAC-SHA256 of the normalised identifier. The same key maps the same patient to the same
//! `patient_key` across feeds (so ADT and ED rows join), while nobody without the key can test a
//! guessed NHS number against the lake. Ingest and the simulator both go through [`PseudoKey`].

use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;

/// Shortest key accepted (bytes): below this a key is guessable.
pub const MIN_KEY_LEN: usize = 16;

/// Bytes of the HMAC kept in a `patient_key` (128 bits, shown as 32 hex digits).
const KEY_BYTES: usize = 16;

/// A secret pseudonymisation key.
#[derive(Clone)]
pub struct PseudoKey(Vec<u8>);

impl std::fmt::Debug for PseudoKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never print the secret, not even in debug logs.
        f.write_str("PseudoKey(..)")
    }
}

/// A key too short to be safe.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("pseudonymisation key is {len} bytes; at least {MIN_KEY_LEN} are required")]
pub struct WeakKey {
    /// Length given.
    pub len: usize,
}

impl PseudoKey {
    /// Wraps a secret of at least [`MIN_KEY_LEN`] bytes.
    pub fn new(secret: impl Into<Vec<u8>>) -> Result<Self, WeakKey> {
        let secret = secret.into();
        if secret.len() < MIN_KEY_LEN {
            return Err(WeakKey { len: secret.len() });
        }
        Ok(PseudoKey(secret))
    }

    /// The `patient_key` for an identifier within a namespace (`nhs` for NHS numbers, the
    /// issuing organisation's code for local ids), so equal local numbers from two trusts do
    /// not collide. Spaces and case are ignored: `943 476 5919` and `9434765919` are one
    /// patient.
    pub fn patient_key(&self, namespace: &str, identifier: &str) -> String {
        let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(&self.0)
            .expect("HMAC accepts keys of any length");
        mac.update(namespace.to_ascii_lowercase().as_bytes());
        mac.update(b"\x1f");
        for byte in identifier.bytes().filter(|b| !b.is_ascii_whitespace()) {
            mac.update(&[byte.to_ascii_uppercase()]);
        }
        let digest = mac.finalize().into_bytes();
        let mut out = String::with_capacity(KEY_BYTES * 2);
        for byte in &digest[..KEY_BYTES] {
            out.push(char::from_digit(u32::from(byte >> 4), 16).expect("nibble"));
            out.push(char::from_digit(u32::from(byte & 0xf), 16).expect("nibble"));
        }
        out
    }
}

/// Namespace of NHS numbers.
pub const NHS_NUMBER: &str = "nhs";

/// Namespace of local patient ids (hospital numbers); callers put the issuing organisation in
/// the id (`RXX/H123`), since two trusts can use the same hospital number.
pub const LOCAL_ID: &str = "local";

#[cfg(test)]
mod tests {
    use super::*;

    fn key() -> PseudoKey {
        PseudoKey::new("0123456789abcdef-test").unwrap()
    }

    #[test]
    fn same_patient_same_key_regardless_of_spacing() {
        let k = key();
        assert_eq!(
            k.patient_key(NHS_NUMBER, "943 476 5919"),
            k.patient_key(NHS_NUMBER, "9434765919")
        );
        assert_eq!(k.patient_key(NHS_NUMBER, "9434765919").len(), 32);
    }

    #[test]
    fn namespaces_and_keys_separate_patients() {
        let k = key();
        assert_ne!(
            k.patient_key(NHS_NUMBER, "123"),
            k.patient_key("X01", "123")
        );
        let other = PseudoKey::new("another-key-of-16-bytes").unwrap();
        assert_ne!(
            k.patient_key(NHS_NUMBER, "123"),
            other.patient_key(NHS_NUMBER, "123")
        );
    }

    #[test]
    fn known_answer() {
        // HMAC-SHA256(key = "0123456789abcdef-test", "nhs" 0x1f "9434765919"), first 16 bytes,
        // computed independently with Python's hmac module.
        assert_eq!(key().patient_key(NHS_NUMBER, "9434765919"), KNOWN_ANSWER);
    }

    const KNOWN_ANSWER: &str = "e1b4decc9a24adbcf5071e2a89db1d1a";

    #[test]
    fn short_keys_are_refused() {
        assert_eq!(PseudoKey::new("short").unwrap_err(), WeakKey { len: 5 });
        assert!(!format!("{:?}", key()).contains("0123"));
    }
}
