//! Configuration of the ingest service: the raw `[ingest]`, `[qr]` and `[pii]` sections as an
//! operator writes them, and [`IngestSettings`], the validated form [`crate::run`] takes.
//!
//! Secrets (`ingest.api_tokens`, `qr.keys`, `pii.key`) are [`Sensitive`]: they never appear in
//! `Debug` output or in `pingan --check-config`. Their defaults are empty. Production is the
//! default: without `--dev` an unset secret is a configuration error (every missing one listed),
//! because a service that quietly fell back to a public key would pseudonymise phones and verify
//! doorplates with a key anyone can read. In development mode (`--dev`) an empty QR or PII key
//! falls back to a fixed development key and an empty token list opens `/v1/calls`, each with a
//! loud startup warning.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use pingan_domain::pii::PhoneHasher;
use pingan_domain::qr::QrSigner;
use pingan_pipeline::client::KafkaConfig;
use pingan_runtime::config::{Sensitive, parse_duration};
use serde::{Deserialize, Serialize};

/// Key version and secret of the development QR key (used when `qr.keys` is empty).
pub const DEV_QR_KEY: (&str, &str) = ("dev", "pingan-dev-qr-key-not-for-production");
/// Key id and secret of the development phone-hash key (used when `pii.key` is empty).
pub const DEV_PII_KEY: (&str, &str) = ("dev", "pingan-dev-pii-key-not-for-production");

/// Shortest accepted secret, in bytes (HMAC keys shorter than this are guessable).
const MIN_SECRET_LEN: usize = 16;

/// The `[ingest]` section.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct IngestConfig {
    /// `host:port` the HTTP API listens on.
    pub listen: String,
    /// Bearer tokens accepted on `POST /v1/calls`; empty means the CAD feed needs no token
    /// (a warning is logged). The QR endpoints stay public: the plate signature is their
    /// credential.
    pub api_tokens: Vec<Sensitive>,
    /// Largest `POST /v1/calls` body in bytes (the contract says 1 MiB).
    pub calls_max_body_bytes: usize,
    /// Largest `POST /v1/qr-scans` body in bytes.
    pub qr_max_body_bytes: usize,
    /// How long a client may take to send the request headers (slowloris guard).
    pub header_timeout: String,
    /// How long a client may take to send the request body before a 408.
    pub body_timeout: String,
    /// Upper bound of a whole request (body, validation and the Kafka wait); a safety net above
    /// `body_timeout` + `kafka.message_timeout`.
    pub request_timeout: String,
    /// Most open client connections; further connections are closed at once.
    pub max_connections: usize,
    /// On shutdown, how long in-flight requests may take to finish, and then how long the
    /// producer may take to flush.
    pub drain_timeout: String,
    /// `Retry-After` seconds sent with a 503 when Kafka cannot take the records.
    pub retry_after_secs: u64,
    /// QR reports accepted per minute from one client address (IPv4 address or IPv6 /64);
    /// generous because of carrier-grade NAT.
    pub qr_client_per_minute: u32,
    /// Burst allowance per client address.
    pub qr_client_burst: u32,
    /// QR reports accepted per minute for one doorplate.
    pub qr_plate_per_minute: u32,
    /// Burst allowance per doorplate.
    pub qr_plate_burst: u32,
    /// Reverse proxies whose `X-Forwarded-For` is trusted to name the client; empty means the
    /// peer address is the client.
    pub trusted_proxies: Vec<String>,
}

impl Default for IngestConfig {
    fn default() -> Self {
        IngestConfig {
            listen: "127.0.0.1:8080".into(),
            api_tokens: Vec::new(),
            calls_max_body_bytes: 1024 * 1024,
            qr_max_body_bytes: 16 * 1024,
            header_timeout: "10s".into(),
            body_timeout: "10s".into(),
            request_timeout: "60s".into(),
            max_connections: 1024,
            drain_timeout: "20s".into(),
            retry_after_secs: 5,
            qr_client_per_minute: 20,
            qr_client_burst: 10,
            qr_plate_per_minute: 12,
            qr_plate_burst: 6,
            trusted_proxies: Vec::new(),
        }
    }
}

/// The `[qr]` section: doorplate signing keys.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct QrConfig {
    /// Key version new plates are signed with, e.g. `v2`; must name one of `keys`.
    pub current: String,
    /// Accepted keys as `"<version>:<secret>"`, e.g. `["v1:…", "v2:…"]`; old versions stay
    /// listed while their plates are in service. Empty: the development key (warning).
    pub keys: Vec<Sensitive>,
}

/// The `[pii]` section: the phone pseudonymisation key.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PiiConfig {
    /// Id of `key`, carried in every hash (`hmac-sha256:<key_id>:…`) so keys can rotate.
    pub key_id: String,
    /// HMAC secret for phone numbers. Empty: the development key (warning).
    pub key: Sensitive,
}

impl Default for PiiConfig {
    fn default() -> Self {
        PiiConfig {
            key_id: "k1".into(),
            key: Sensitive::default(),
        }
    }
}

impl QrConfig {
    /// The line reporting that no doorplate key is configured, when none is.
    pub fn missing_secret(&self) -> Option<String> {
        self.keys
            .is_empty()
            .then(|| missing_secret("qr.keys", "PINGAN__QR__KEYS"))
    }

    /// The signer these keys describe, and whether it is the development key.
    /// Problems are appended to `errors`.
    pub fn signer(&self, errors: &mut Vec<String>) -> (QrSigner, bool) {
        if self.keys.is_empty() {
            return (
                QrSigner::single(DEV_QR_KEY.0, DEV_QR_KEY.1.as_bytes()),
                true,
            );
        }
        let mut keys = std::collections::BTreeMap::new();
        for (i, entry) in self.keys.iter().enumerate() {
            let Some((version, secret)) = entry.expose().split_once(':') else {
                errors.push(format!(
                    "qr.keys[{i}] must look like \"<version>:<secret>\""
                ));
                continue;
            };
            if version.is_empty() || !version.bytes().all(|b| b.is_ascii_alphanumeric()) {
                errors.push(format!(
                    "qr.keys[{i}]: version {version:?} must be ASCII letters and digits, e.g. v1"
                ));
            } else if secret.len() < MIN_SECRET_LEN {
                errors.push(format!(
                    "qr.keys[{i}] ({version}): the secret must have at least {MIN_SECRET_LEN} bytes"
                ));
            } else if keys
                .insert(version.to_owned(), secret.as_bytes().to_vec())
                .is_some()
            {
                errors.push(format!("qr.keys: version {version} is listed twice"));
            }
        }
        let current = if self.current.is_empty() && keys.len() == 1 {
            keys.keys().next().cloned().unwrap_or_default()
        } else {
            self.current.clone()
        };
        if !keys.contains_key(&current) {
            errors.push(format!(
                "qr.current {:?} must name one of the versions in qr.keys",
                self.current
            ));
        }
        (QrSigner::new(current, keys), false)
    }
}

impl PiiConfig {
    /// The phone hasher this key describes, and whether it is the development key.
    /// Problems are appended to `errors`.
    pub fn hasher(&self, errors: &mut Vec<String>) -> (PhoneHasher, bool) {
        if self.key.is_empty() {
            return (
                PhoneHasher::new(DEV_PII_KEY.0, DEV_PII_KEY.1.as_bytes()),
                true,
            );
        }
        if self.key.expose().len() < MIN_SECRET_LEN {
            errors.push(format!("pii.key must have at least {MIN_SECRET_LEN} bytes"));
        }
        if self.key_id.is_empty()
            || !self
                .key_id
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        {
            errors.push(format!(
                "pii.key_id {:?} must be ASCII letters, digits, - or _",
                self.key_id
            ));
        }
        (
            PhoneHasher::new(self.key_id.clone(), self.key.expose().as_bytes()),
            false,
        )
    }
}

/// Rate for one GCRA limiter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateSettings {
    /// Sustained requests per minute.
    pub per_minute: u32,
    /// Requests allowed at once.
    pub burst: u32,
}

/// What the ingest service runs with: its three sections validated together, the Kafka
/// connection and where its metrics go.
#[derive(Debug, Clone)]
pub struct IngestSettings {
    /// `[kafka]`.
    pub kafka: KafkaConfig,
    /// Receives the `pingan_ingest_*` metrics (a fresh registry unless the caller shares one).
    pub registry: prometheus::Registry,
    /// Listen address.
    pub listen: SocketAddr,
    /// Accepted bearer tokens (empty: no auth on `/v1/calls`).
    pub api_tokens: Vec<Sensitive>,
    /// Body limit of `POST /v1/calls`.
    pub calls_max_body_bytes: usize,
    /// Body limit of `POST /v1/qr-scans`.
    pub qr_max_body_bytes: usize,
    /// Header read timeout.
    pub header_timeout: Duration,
    /// Body read timeout.
    pub body_timeout: Duration,
    /// Whole-request timeout.
    pub request_timeout: Duration,
    /// Connection limit.
    pub max_connections: usize,
    /// Drain deadline on shutdown.
    pub drain_timeout: Duration,
    /// How long a publish may wait for its delivery reports (`kafka.message_timeout` plus a
    /// small margin, so librdkafka's own verdict normally arrives first).
    pub publish_deadline: Duration,
    /// `Retry-After` of a 503.
    pub retry_after_secs: u64,
    /// Per-client QR rate.
    pub qr_client_rate: RateSettings,
    /// Per-plate QR rate.
    pub qr_plate_rate: RateSettings,
    /// Trusted reverse proxies.
    pub trusted_proxies: Vec<IpAddr>,
    /// Doorplate signer.
    pub signer: QrSigner,
    /// Whether `signer` is the development key.
    pub dev_qr_key: bool,
    /// Phone pseudonymiser.
    pub hasher: PhoneHasher,
    /// Whether `hasher` is the development key.
    pub dev_pii_key: bool,
    /// Topic of call records: `pingan.call110.v1` (the contract); only benchmarks and tests
    /// point it elsewhere.
    pub calls_topic: &'static str,
    /// Topic of QR reports: `pingan.qrscan.v1` (the contract).
    pub qr_topic: &'static str,
}

/// Every problem found in the ingest configuration.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid ingest configuration: {}", .0.join("; "))]
pub struct ConfigError(pub Vec<String>);

fn duration(key: &str, raw: &str, errors: &mut Vec<String>) -> Duration {
    match parse_duration(raw) {
        Ok(d) if !d.is_zero() => d,
        Ok(_) => {
            errors.push(format!("{key} must be greater than zero"));
            Duration::from_secs(1)
        }
        Err(e) => {
            errors.push(format!("{key}: {e}"));
            Duration::from_secs(1)
        }
    }
}

/// The secrets of `pingan ingest` that are not set, one line each naming its key and env var.
pub fn missing_secrets(ingest: &IngestConfig, qr: &QrConfig, pii: &PiiConfig) -> Vec<String> {
    let mut missing = Vec::new();
    if pii.key.is_empty() {
        missing.push(missing_secret("pii.key", "PINGAN__PII__KEY"));
    }
    missing.extend(qr.missing_secret());
    if ingest.api_tokens.is_empty() {
        missing.push(missing_secret(
            "ingest.api_tokens",
            "PINGAN__INGEST__API_TOKENS",
        ));
    }
    missing
}

/// The line that reports an unset secret outside development mode.
pub fn missing_secret(key: &str, env: &str) -> String {
    format!(
        "{key} is not set ({env}); it is required outside development mode (--dev or PINGAN__DEV=true)"
    )
}

impl IngestSettings {
    /// Validates the three sections together with the Kafka settings (for the publish
    /// deadline), reporting every problem at once. Outside development mode (`dev` false) every
    /// secret must be set: `pii.key`, `qr.keys` and `ingest.api_tokens`.
    pub fn from_config(
        ingest: &IngestConfig,
        qr: &QrConfig,
        pii: &PiiConfig,
        kafka: &KafkaConfig,
        dev: bool,
    ) -> Result<IngestSettings, ConfigError> {
        let mut errors = Vec::new();
        if !dev {
            errors.extend(missing_secrets(ingest, qr, pii));
        }
        let listen = ingest.listen.parse::<SocketAddr>().unwrap_or_else(|_| {
            errors.push(format!(
                "ingest.listen {:?} is not a host:port address such as 127.0.0.1:8080",
                ingest.listen
            ));
            SocketAddr::from(([127, 0, 0, 1], 8080))
        });
        for (i, t) in ingest.api_tokens.iter().enumerate() {
            if t.expose().len() < MIN_SECRET_LEN
                || t.expose().bytes().any(|b| !b.is_ascii_graphic())
            {
                errors.push(format!(
                    "ingest.api_tokens[{i}] must be at least {MIN_SECRET_LEN} visible ASCII characters"
                ));
            }
        }
        if !(1024..=64 * 1024 * 1024).contains(&ingest.calls_max_body_bytes) {
            errors.push("ingest.calls_max_body_bytes must be between 1 KiB and 64 MiB".into());
        }
        if !(1024..=1024 * 1024).contains(&ingest.qr_max_body_bytes) {
            errors.push("ingest.qr_max_body_bytes must be between 1 KiB and 1 MiB".into());
        }
        let header_timeout = duration("ingest.header_timeout", &ingest.header_timeout, &mut errors);
        let body_timeout = duration("ingest.body_timeout", &ingest.body_timeout, &mut errors);
        let request_timeout = duration(
            "ingest.request_timeout",
            &ingest.request_timeout,
            &mut errors,
        );
        let drain_timeout = duration("ingest.drain_timeout", &ingest.drain_timeout, &mut errors);
        let message_timeout =
            parse_duration(&kafka.message_timeout).unwrap_or(Duration::from_secs(10));
        let publish_deadline = message_timeout + Duration::from_millis(500);
        if request_timeout <= body_timeout + publish_deadline {
            errors.push(format!(
                "ingest.request_timeout ({}) must exceed ingest.body_timeout + kafka.message_timeout ({} + {})",
                ingest.request_timeout, ingest.body_timeout, kafka.message_timeout
            ));
        }
        if ingest.max_connections == 0 {
            errors.push("ingest.max_connections must be at least 1".into());
        }
        if !(1..=3600).contains(&ingest.retry_after_secs) {
            errors.push("ingest.retry_after_secs must be between 1 and 3600".into());
        }
        for (key, v) in [
            ("ingest.qr_client_per_minute", ingest.qr_client_per_minute),
            ("ingest.qr_client_burst", ingest.qr_client_burst),
            ("ingest.qr_plate_per_minute", ingest.qr_plate_per_minute),
            ("ingest.qr_plate_burst", ingest.qr_plate_burst),
        ] {
            if !(1..=1_000_000).contains(&v) {
                errors.push(format!("{key} must be between 1 and 1000000"));
            }
        }
        let mut trusted_proxies = Vec::new();
        for p in &ingest.trusted_proxies {
            match p.parse::<IpAddr>() {
                Ok(ip) => trusted_proxies.push(ip),
                Err(_) => errors.push(format!(
                    "ingest.trusted_proxies: {p:?} is not an IP address"
                )),
            }
        }
        let (signer, dev_qr_key) = qr.signer(&mut errors);
        let (hasher, dev_pii_key) = pii.hasher(&mut errors);
        if !errors.is_empty() {
            return Err(ConfigError(errors));
        }
        Ok(IngestSettings {
            kafka: kafka.clone(),
            registry: prometheus::Registry::new(),
            listen,
            api_tokens: ingest.api_tokens.clone(),
            calls_max_body_bytes: ingest.calls_max_body_bytes,
            qr_max_body_bytes: ingest.qr_max_body_bytes,
            header_timeout,
            body_timeout,
            request_timeout,
            max_connections: ingest.max_connections,
            drain_timeout,
            publish_deadline,
            retry_after_secs: ingest.retry_after_secs,
            qr_client_rate: RateSettings {
                per_minute: ingest.qr_client_per_minute,
                burst: ingest.qr_client_burst,
            },
            qr_plate_rate: RateSettings {
                per_minute: ingest.qr_plate_per_minute,
                burst: ingest.qr_plate_burst,
            },
            trusted_proxies,
            signer,
            dev_qr_key,
            hasher,
            dev_pii_key,
            calls_topic: pingan_domain::events::TOPIC_CALLS,
            qr_topic: pingan_domain::events::TOPIC_QR,
        })
    }

    /// Settings for tests and tools: the defaults in development mode (the development keys).
    pub fn for_tests() -> IngestSettings {
        match IngestSettings::from_config(
            &IngestConfig::default(),
            &QrConfig::default(),
            &PiiConfig::default(),
            &KafkaConfig::default(),
            true,
        ) {
            Ok(s) => s,
            Err(e) => unreachable!("the defaults are valid: {e}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid_and_use_the_dev_keys() {
        let s = IngestSettings::for_tests();
        assert!(s.dev_qr_key && s.dev_pii_key);
        assert!(s.api_tokens.is_empty());
        assert_eq!(s.calls_max_body_bytes, 1024 * 1024);
        assert_eq!(s.publish_deadline, Duration::from_millis(10_500));
    }

    #[test]
    fn every_problem_is_listed() {
        let ingest = IngestConfig {
            listen: "nope".into(),
            api_tokens: vec![Sensitive::new("short")],
            body_timeout: "10 parsecs".into(),
            trusted_proxies: vec!["proxy.local".into()],
            qr_plate_burst: 0,
            ..IngestConfig::default()
        };
        let qr = QrConfig {
            current: "v3".into(),
            keys: vec![Sensitive::new("v1:0123456789abcdef"), Sensitive::new("bad")],
        };
        let pii = PiiConfig {
            key_id: "k 1".into(),
            key: Sensitive::new("tiny"),
        };
        let err = IngestSettings::from_config(&ingest, &qr, &pii, &KafkaConfig::default(), false)
            .unwrap_err();
        let text = err.to_string();
        for needle in [
            "ingest.listen",
            "api_tokens[0]",
            "body_timeout",
            "trusted_proxies",
            "qr_plate_burst",
            "qr.keys[1]",
            "qr.current",
            "pii.key must",
            "pii.key_id",
        ] {
            assert!(text.contains(needle), "{needle} missing from {text}");
        }
        assert!(
            !text.contains("0123456789abcdef"),
            "secrets never appear in errors"
        );
    }

    #[test]
    fn configured_keys_are_used() {
        let qr = QrConfig {
            current: String::new(),
            keys: vec![Sensitive::new("v7:0123456789abcdef0123")],
        };
        let pii = PiiConfig {
            key_id: "k2".into(),
            key: Sensitive::new("0123456789abcdef0123"),
        };
        let ingest = IngestConfig {
            api_tokens: vec![Sensitive::new("cad-token-0123456789")],
            ..IngestConfig::default()
        };
        let s = IngestSettings::from_config(&ingest, &qr, &pii, &KafkaConfig::default(), false)
            .unwrap();
        assert!(!s.dev_qr_key && !s.dev_pii_key);
        assert!(s.signer.sign("P").unwrap().starts_with("v7."));
        assert!(
            s.hasher
                .tokenize("13812341234")
                .unwrap()
                .hash
                .starts_with("hmac-sha256:k2:")
        );
    }

    #[test]
    fn outside_dev_mode_every_missing_secret_is_listed() {
        let err = IngestSettings::from_config(
            &IngestConfig::default(),
            &QrConfig::default(),
            &PiiConfig::default(),
            &KafkaConfig::default(),
            false,
        )
        .unwrap_err();
        assert_eq!(err.0.len(), 3, "{err}");
        for key in ["pii.key", "qr.keys", "ingest.api_tokens"] {
            assert!(
                err.0
                    .iter()
                    .any(|e| e.starts_with(&format!("{key} is not set"))),
                "{key} missing from {err}"
            );
        }
    }

    #[test]
    fn the_request_timeout_must_cover_the_kafka_wait() {
        let kafka = KafkaConfig {
            message_timeout: "120s".into(),
            ..KafkaConfig::default()
        };
        let err = IngestSettings::from_config(
            &IngestConfig::default(),
            &QrConfig::default(),
            &PiiConfig::default(),
            &kafka,
            true,
        )
        .unwrap_err();
        assert!(err.to_string().contains("request_timeout"), "{err}");
    }
}
