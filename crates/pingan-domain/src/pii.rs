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
    /// Display form, e.g. `*******1234` (at most the last 4 digits).
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

/// Masks a normalised number for display, showing at most its last 4 digits:
/// `13812341234` → `*******1234`. (The common `138****1234` form also shows the carrier prefix,
/// which narrows the number further for no operational gain.)
pub fn mask_phone(digits: &str) -> String {
    let n = digits.chars().count();
    if n <= 4 {
        return "*".repeat(n);
    }
    let tail: String = digits.chars().skip(n - 4).collect();
    format!("{}{tail}", "*".repeat(n - 4))
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

/// Provinces' one-character abbreviations that start a licence plate (and 使/领 plates).
const PLATE_PREFIXES: &str = "京津沪渝冀豫云辽黑湘皖鲁新苏浙赣鄂桂甘晋蒙陕吉闽贵粤青藏川宁琼使领";

/// Full-width digits and letters as ASCII, full-width space and dashes as ASCII: what a person
/// typing on a Chinese keyboard produces for the same number.
fn half_width(c: char) -> char {
    match c {
        '\u{FF10}'..='\u{FF19}' | '\u{FF21}'..='\u{FF3A}' | '\u{FF41}'..='\u{FF5A}' => {
            char::from_u32(c as u32 - 0xFEE0).unwrap_or(c)
        }
        '\u{3000}' => ' ',
        '\u{FF0D}' | '\u{2010}'..='\u{2014}' => '-',
        _ => c,
    }
}

/// Redacts personal numbers in free text so the description can be kept as evidence without
/// carrying them into analytics tables or the API: phone numbers (also written with spaces,
/// dashes or full-width digits), 18-digit ID card numbers (with a final `X`), bank card numbers
/// and any other run of 7 or more digits keep at most their last 4 digits; licence plates keep
/// only the province and issuing-office letters (`沪A·12345` → `沪A*****`).
///
/// Digits separated by single spaces or dashes count as one number when every group after the
/// first has at least 3 digits (`138 1234 1234`, `021-64881234`, `6222 0212 3456 7890`), so dates
/// (`2019-12-31`) and short counts stay readable.
pub fn redact_text(text: &str) -> String {
    let chars: Vec<char> = text.chars().collect();
    let norm: Vec<char> = chars.iter().map(|c| half_width(*c)).collect();
    let mut out = String::with_capacity(text.len());
    let mut i = 0;
    while i < chars.len() {
        if let Some(end) = plate_at(&norm, i) {
            out.push(chars[i]);
            out.push(norm[i + 1].to_ascii_uppercase());
            let hidden = norm[i + 2..end]
                .iter()
                .filter(|c| c.is_ascii_alphanumeric())
                .count();
            out.push_str(&"*".repeat(hidden));
            i = end;
            continue;
        }
        if norm[i].is_ascii_digit() {
            let (end, digits) = number_at(&norm, i);
            if digits.len() >= 7 {
                out.push_str(&mask_phone(&digits));
            } else {
                out.extend(&chars[i..end]);
            }
            i = end;
            continue;
        }
        out.push(chars[i]);
        i += 1;
    }
    out
}

/// The end of a licence plate starting at `i`: a province character, a letter, an optional
/// separator, then 5 (or 6, new-energy) letters and digits not followed by another one.
fn plate_at(norm: &[char], i: usize) -> Option<usize> {
    if !PLATE_PREFIXES.contains(norm[i]) || !norm.get(i + 1)?.is_ascii_alphabetic() {
        return None;
    }
    let mut j = i + 2;
    if matches!(norm.get(j), Some('·' | '•' | '.' | ' ' | '-')) {
        j += 1;
    }
    let start = j;
    while j < norm.len() && norm[j].is_ascii_alphanumeric() && j - start < 6 {
        j += 1;
    }
    let n = j - start;
    let body_has_digit = norm[start..j].iter().any(char::is_ascii_digit);
    let next_is_alnum = norm.get(j).is_some_and(char::is_ascii_alphanumeric);
    ((n == 5 || n == 6) && body_has_digit && !next_is_alnum).then_some(j)
}

/// The end of the number starting at `i` and its digits (a final `X` of an ID card included).
fn number_at(norm: &[char], i: usize) -> (usize, String) {
    let mut digits = String::new();
    let mut j = i;
    loop {
        while j < norm.len() && norm[j].is_ascii_digit() {
            digits.push(norm[j]);
            j += 1;
        }
        // One separator, then a group of at least 3 digits, continues the same number.
        if matches!(norm.get(j), Some(' ' | '-')) {
            let group = norm[j + 1..]
                .iter()
                .take_while(|c| c.is_ascii_digit())
                .count();
            if group >= 3 {
                j += 1;
                continue;
            }
        }
        break;
    }
    if digits.len() == 17 && matches!(norm.get(j), Some('X' | 'x')) {
        digits.push('X');
        j += 1;
    }
    (j, digits)
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
        assert_eq!(a.masked, "*******1234");
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
        assert_eq!(mask_phone("64881234"), "****1234");
        assert!(format!("{:?}", PhoneHasher::new("k", b"s3cr3t")).contains("redacted"));
    }

    #[test]
    fn free_text_redaction_catches_personal_numbers_in_every_usual_form() {
        // (input, expected output): one row per form a person or a CAD operator writes.
        let cases: &[(&str, &str)] = &[
            (
                "莘松路958弄12号，电话13812341234",
                "莘松路958弄12号，电话*******1234",
            ),
            ("电话 138 1234 1234 找我", "电话 *******1234 找我"),
            ("电话138-1234-1234。", "电话*******1234。"),
            ("手机１３８１２３４１２３４", "手机*******1234"),
            ("手机１３８－１２３４－１２３４", "手机*******1234"),
            ("+86 138 1234 1234", "+*********1234"),
            ("座机021-64881234", "座机*******1234"),
            ("身份证310112199001011234", "身份证**************1234"),
            ("身份证号31011219900101123X", "身份证号**************123X"),
            (
                "卡号6222 0212 3456 7890 123被盗刷",
                "卡号***************0123被盗刷",
            ),
            ("卡号6222021234567890被盗刷", "卡号************7890被盗刷"),
            ("车牌沪A·12345撞了人", "车牌沪A*****撞了人"),
            ("车牌沪AD12345是新能源车", "车牌沪A******是新能源车"),
            ("车牌 苏E 6Z789 逃逸", "车牌 苏E***** 逃逸"),
            ("车牌京ｂ１２３４５", "车牌京B*****"),
            // What must stay readable.
            ("2019-12-31晚上10点", "2019-12-31晚上10点"),
            ("被骗了50000元", "被骗了50000元"),
            ("3号楼1203室", "3号楼1203室"),
            ("沪闵路", "沪闵路"),
            ("上海康城110弄", "上海康城110弄"),
        ];
        for (input, want) in cases {
            assert_eq!(&redact_text(input), want, "input {input:?}");
        }
    }
}
