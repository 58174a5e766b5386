//! Personal data: phone normalisation, keyed pseudonymisation and masking, free-text redaction.
//!
//! A phone number has about 10^10 possible values, so a plain hash is reversible by enumeration.
//! The hash is therefore an HMAC under a secret key that only ingest holds; the key id travels in
//! the hash so keys can be rotated without breaking repeat-caller links inside one key period.

use hmac::{Hmac, Mac};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use sha2::Sha256;

/// A pseudonymised phone number: keyed hash for linking repeat callers, mask for display.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PhoneToken {
    /// `hmac-sha256:<key_id>:<hex>` of the normalised number.
    pub hash: String,
    /// Display form, e.g. `138****1234`.
    pub masked: String,
}

/// Why a phone number was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PhoneError {
    /// Characters other than digits, spaces, dashes, dots, parentheses and a leading `+`.
    #[error("must contain only ASCII digits with optional +, spaces, dashes or parentheses")]
    BadCharacters,
    /// Too few or too many digits.
    #[error("must have 3 to 15 digits, found {0}")]
    BadLength(usize),
}

/// Normalises a phone number to digits only, dropping a Chinese country prefix (`+86`/`0086`) so
/// the same mobile number hashes the same however the CAD wrote it.
pub fn normalize_phone(raw: &str) -> Result<String, PhoneError> {
    let trimmed = raw.trim();
    let mut digits = String::with_capacity(trimmed.len());
    for (i, ch) in trimmed.chars().enumerate() {
        match ch {
            '0'..='9' => digits.push(ch),
            '+' if i == 0 => {}
            ' ' | '-' | '.' | '(' | ')' => {}
            // Full-width or other-script digits are refused rather than guessed: a homoglyph
            // digit would otherwise split one caller into two hashes.
            _ => return Err(PhoneError::BadCharacters),
        }
    }
    let digits = if let Some(rest) = digits.strip_prefix("0086") {
        rest.to_owned()
    } else if trimmed.starts_with('+') {
        digits
            .strip_prefix("86")
            .map(str::to_owned)
            .unwrap_or(digits)
    } else {
        digits
    };
    if !(3..=15).contains(&digits.len()) {
        return Err(PhoneError::BadLength(digits.len()));
    }
    Ok(digits)
}

/// Masks a normalised number for display: `13812341234` → `138****1234`.
pub fn mask_phone(digits: &str) -> String {
    let n = digits.len();
    if n <= 4 {
        return "*".repeat(n);
    }
    let head = if n >= 11 { 3 } else { (n - 4).min(2) };
    format!(
        "{}{}{}",
        &digits[..head],
        "*".repeat(n - head - 4),
        &digits[n - 4..]
    )
}

/// Keyed pseudonymiser for phone numbers.
#[derive(Clone)]
pub struct PhoneHasher {
    key_id: String,
    key: Vec<u8>,
}

impl std::fmt::Debug for PhoneHasher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PhoneHasher")
            .field("key_id", &self.key_id)
            .field("key", &"<redacted>")
            .finish()
    }
}

impl PhoneHasher {
    /// A hasher under `key`, labelled `key_id` in every hash it produces.
    pub fn new(key_id: impl Into<String>, key: &[u8]) -> PhoneHasher {
        PhoneHasher {
            key_id: key_id.into(),
            key: key.to_vec(),
        }
    }

    /// Normalises, hashes and masks `raw`.
    pub fn tokenize(&self, raw: &str) -> Result<PhoneToken, PhoneError> {
        let digits = normalize_phone(raw)?;
        Ok(PhoneToken {
            hash: self.hash_normalized(&digits),
            masked: mask_phone(&digits),
        })
    }

    fn hash_normalized(&self, digits: &str) -> String {
        let mut mac = hmac_sha256(&self.key);
        mac.update(digits.as_bytes());
        format!(
            "hmac-sha256:{}:{}",
            self.key_id,
            hex::encode(mac.finalize().into_bytes())
        )
    }
}

pub(crate) fn hmac_sha256(key: &[u8]) -> Hmac<Sha256> {
    // HMAC accepts keys of any length (long keys are hashed first), so this cannot fail.
    match <Hmac<Sha256> as Mac>::new_from_slice(key) {
        Ok(mac) => mac,
        Err(_) => unreachable!("HMAC-SHA256 accepts keys of any length"),
    }
}

/// Masks runs of 7 or more digits in free text (phone numbers, ID numbers) so the description can
/// be kept as evidence without carrying a caller's number into analytics tables.
pub fn redact_text(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut run = String::new();
    let flush = |run: &mut String, out: &mut String| {
        if run.chars().count() >= 7 {
            out.push_str(&mask_phone(run));
        } else {
            out.push_str(run);
        }
        run.clear();
    };
    for ch in text.chars() {
        if ch.is_ascii_digit() {
            run.push(ch);
        } else {
            flush(&mut run, &mut out);
            out.push(ch);
        }
    }
    flush(&mut run, &mut out);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_same_number_in_any_format_hashes_the_same() {
        let h = PhoneHasher::new("k1", b"secret");
        let a = h.tokenize("13812341234").unwrap();
        let b = h.tokenize("+86 138-1234-1234").unwrap();
        let c = h.tokenize("0086 (138) 1234 1234").unwrap();
        assert_eq!(a, b);
        assert_eq!(a, c);
        assert_eq!(a.masked, "138****1234");
        assert!(a.hash.starts_with("hmac-sha256:k1:"));
        assert!(!a.hash.contains("13812341234"));
    }

    #[test]
    fn a_different_key_gives_a_different_hash() {
        let a = PhoneHasher::new("k1", b"one")
            .tokenize("13812341234")
            .unwrap();
        let b = PhoneHasher::new("k2", b"two")
            .tokenize("13812341234")
            .unwrap();
        assert_ne!(a.hash, b.hash);
    }

    #[test]
    fn odd_numbers_are_refused_or_masked_sensibly() {
        assert_eq!(
            normalize_phone("１３８１２３４１２３４"),
            Err(PhoneError::BadCharacters)
        );
        assert_eq!(normalize_phone("12"), Err(PhoneError::BadLength(2)));
        assert_eq!(
            normalize_phone("1234567890123456"),
            Err(PhoneError::BadLength(16))
        );
        assert_eq!(mask_phone("110"), "***");
        assert_eq!(mask_phone("64881234"), "64**1234");
        assert!(format!("{:?}", PhoneHasher::new("k", b"s3cr3t")).contains("redacted"));
    }

    #[test]
    fn free_text_keeps_short_numbers_and_masks_long_ones() {
        assert_eq!(
            redact_text("莘松路958弄12号，电话13812341234"),
            "莘松路958弄12号，电话138****1234"
        );
    }
}
