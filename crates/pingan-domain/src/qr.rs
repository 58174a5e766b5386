//! Signed QR doorplates.
//!
//! A doorplate's QR code encodes `/qr/<plate_id>?sig=<signature>`. The signature is an HMAC of the
//! plate id under a versioned key (`v1.<base32hex of 10 bytes>`), so a forged or altered plate id is
//! refused before any other work, and keys can be rotated by printing new plates under `v2`.
//! A static QR code can be photographed, so the signature proves "this is a real plate", not "this
//! is a fresh scan"; rate limits per plate cover the rest.

use std::collections::BTreeMap;

use hmac::Mac;
use subtle::ConstantTimeEq;

use crate::pii::hmac_sha256;

const SIG_BYTES: usize = 10;

/// Signs and verifies doorplate ids under one or more key versions.
#[derive(Clone)]
pub struct QrSigner {
    current: String,
    keys: BTreeMap<String, Vec<u8>>,
}

impl std::fmt::Debug for QrSigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("QrSigner")
            .field("current", &self.current)
            .field("versions", &self.keys.keys().collect::<Vec<_>>())
            .finish()
    }
}

/// Why a signature was refused. Every variant maps to HTTP 403.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    /// Not of the form `<version>.<code>`.
    #[error("malformed signature")]
    Malformed,
    /// The key version is not (or no longer) accepted.
    #[error("unknown signature key version")]
    UnknownVersion,
    /// The code does not match the plate id.
    #[error("signature does not match the doorplate")]
    Mismatch,
}

impl QrSigner {
    /// A signer that signs with `current` and verifies any of `keys` (version → secret).
    pub fn new(current: impl Into<String>, keys: BTreeMap<String, Vec<u8>>) -> QrSigner {
        QrSigner {
            current: current.into(),
            keys,
        }
    }

    /// A signer with a single key version.
    pub fn single(version: &str, key: &[u8]) -> QrSigner {
        QrSigner::new(
            version,
            BTreeMap::from([(version.to_owned(), key.to_vec())]),
        )
    }

    fn code(key: &[u8], plate_id: &str) -> [u8; SIG_BYTES] {
        let mut mac = hmac_sha256(key);
        mac.update(b"pingan-qr-v1\0");
        mac.update(plate_id.as_bytes());
        let full = mac.finalize().into_bytes();
        let mut out = [0u8; SIG_BYTES];
        out.copy_from_slice(&full[..SIG_BYTES]);
        out
    }

    /// The signature for `plate_id` under the current key, or `None` if no current key exists.
    pub fn sign(&self, plate_id: &str) -> Option<String> {
        let key = self.keys.get(&self.current)?;
        Some(format!(
            "{}.{}",
            self.current,
            hex::encode(Self::code(key, plate_id))
        ))
    }

    /// The URL path a doorplate's QR code encodes.
    pub fn signed_path(&self, plate_id: &str) -> Option<String> {
        self.sign(plate_id)
            .map(|sig| format!("/qr/{plate_id}?sig={sig}"))
    }

    /// Checks `sig` for `plate_id` in constant time.
    pub fn verify(&self, plate_id: &str, sig: &str) -> Result<(), SignatureError> {
        let (version, code) = sig.split_once('.').ok_or(SignatureError::Malformed)?;
        let key = self
            .keys
            .get(version)
            .ok_or(SignatureError::UnknownVersion)?;
        let given = hex::decode(code).map_err(|_| SignatureError::Malformed)?;
        if given.len() != SIG_BYTES {
            return Err(SignatureError::Malformed);
        }
        let expected = Self::code(key, plate_id);
        if bool::from(expected.ct_eq(given.as_slice())) {
            Ok(())
        } else {
            Err(SignatureError::Mismatch)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_signed_plate_verifies_and_tampering_does_not() {
        let s = QrSigner::single("v1", b"plate-secret");
        let sig = s.sign("MHQR-102-00000042").unwrap();
        assert!(s.verify("MHQR-102-00000042", &sig).is_ok());
        assert_eq!(
            s.verify("MHQR-102-00000043", &sig),
            Err(SignatureError::Mismatch)
        );
        assert_eq!(
            s.verify("MHQR-102-00000042", &sig[..sig.len() - 2]),
            Err(SignatureError::Malformed)
        );
        assert_eq!(
            s.verify("MHQR-102-00000042", "v9.00"),
            Err(SignatureError::UnknownVersion)
        );
        assert_eq!(
            s.verify("MHQR-102-00000042", "nonsense"),
            Err(SignatureError::Malformed)
        );
        assert_eq!(
            s.verify("MHQR-102-00000042", &sig.to_uppercase().replace("V1", "v1")),
            Ok(()),
            "hex is case-insensitive"
        );
    }

    #[test]
    fn old_key_versions_keep_verifying_after_rotation() {
        let old = QrSigner::single("v1", b"one");
        let sig = old.sign("P1").unwrap();
        let rotated = QrSigner::new(
            "v2",
            BTreeMap::from([
                ("v1".into(), b"one".to_vec()),
                ("v2".into(), b"two".to_vec()),
            ]),
        );
        assert!(rotated.verify("P1", &sig).is_ok());
        assert!(rotated.sign("P1").unwrap().starts_with("v2."));
        assert_eq!(
            rotated.signed_path("P1").unwrap(),
            format!("/qr/P1?sig={}", rotated.sign("P1").unwrap())
        );
    }
}
