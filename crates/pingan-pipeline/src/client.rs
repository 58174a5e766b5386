//! librdkafka configuration assembly.
//!
//! Some keys carry the delivery guarantees (idempotence, manual offset storing, isolation level,
//! group id); a user pass-through map may set anything else, but never those.

use std::collections::BTreeMap;

use rdkafka::ClientConfig;
use serde::{Deserialize, Serialize};

/// Keys the pipeline owns: overriding them would silently break delivery guarantees.
pub const OWNED_KEYS: &[&str] = &[
    "enable.idempotence",
    "acks",
    "enable.auto.commit",
    "enable.auto.offset.store",
    "isolation.level",
    "group.id",
    "bootstrap.servers",
];

/// Kafka connection settings (`[kafka]` in the configuration file). `Debug` redacts the
/// pass-through properties that hold secrets ([`KafkaConfig::is_secret_property`]).
#[derive(Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct KafkaConfig {
    /// Comma-separated `host:port` list.
    pub bootstrap_servers: String,
    /// Prefix of `client.id`; the service name is appended.
    pub client_id: String,
    /// How long a produced record may wait for its delivery report before ingest answers 503
    /// (librdkafka `message.timeout.ms`).
    pub message_timeout: String,
    /// Extra librdkafka properties (security, tuning); owned keys are refused.
    pub librdkafka: BTreeMap<String, String>,
}

impl std::fmt::Debug for KafkaConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let props: BTreeMap<&str, &str> = self
            .librdkafka
            .iter()
            .map(|(k, v)| {
                let v = if KafkaConfig::is_secret_property(k) {
                    "<redacted>"
                } else {
                    v.as_str()
                };
                (k.as_str(), v)
            })
            .collect();
        f.debug_struct("KafkaConfig")
            .field("bootstrap_servers", &self.bootstrap_servers)
            .field("client_id", &self.client_id)
            .field("message_timeout", &self.message_timeout)
            .field("librdkafka", &props)
            .finish()
    }
}

impl Default for KafkaConfig {
    fn default() -> Self {
        KafkaConfig {
            bootstrap_servers: "127.0.0.1:9092".into(),
            client_id: "pingan".into(),
            message_timeout: "10s".into(),
            librdkafka: BTreeMap::new(),
        }
    }
}

impl KafkaConfig {
    /// Checks the settings, appending problems to `errors`.
    pub fn validate(&self, errors: &mut Vec<String>) {
        if self.bootstrap_servers.trim().is_empty() {
            errors.push("kafka.bootstrap_servers is empty".into());
        }
        for k in self.librdkafka.keys() {
            if OWNED_KEYS.contains(&k.as_str()) {
                errors.push(format!(
                    "kafka.librdkafka.{k} is set by pingan itself and cannot be overridden"
                ));
            }
        }
        self.check_supported(errors);
        match parse_ms(&self.message_timeout) {
            Some(ms) if ms >= 1000 => {}
            _ => errors.push(format!(
                "kafka.message_timeout {:?} must be a duration of at least 1s",
                self.message_timeout
            )),
        }
    }

    /// Refuses settings this build's librdkafka cannot serve (asked of librdkafka itself through
    /// `builtin.features`): a security protocol or SASL mechanism it was built without would
    /// otherwise fail only at the first connection, or not at all until a broker insists.
    fn check_supported(&self, errors: &mut Vec<String>) {
        let features = ClientConfig::new()
            .create_native_config()
            .and_then(|c| c.get("builtin.features"))
            .unwrap_or_default();
        let has = |f: &str| features.split(',').any(|x| x.trim() == f);
        let get = |k: &str| {
            self.librdkafka
                .get(k)
                .map(|v| v.trim().to_ascii_lowercase())
        };
        if let Some(proto) = get("security.protocol") {
            let needs: &[&str] = match proto.as_str() {
                "plaintext" => &[],
                "ssl" => &["ssl"],
                "sasl_plaintext" => &["sasl"],
                "sasl_ssl" => &["ssl", "sasl"],
                _ => {
                    errors.push(format!(
                        "kafka.librdkafka.security.protocol {proto:?} is not one of plaintext, ssl, sasl_plaintext, sasl_ssl"
                    ));
                    &[]
                }
            };
            for f in needs {
                if !has(f) {
                    errors.push(format!(
                        "kafka.librdkafka.security.protocol {proto:?} needs {f} support, which this build of pingan does not have (librdkafka builtin.features: {features})"
                    ));
                }
            }
        }
        if let Some(mech) = get("sasl.mechanisms").or_else(|| get("sasl.mechanism")) {
            let feature = match mech.as_str() {
                "plain" => "sasl_plain",
                "scram-sha-256" | "scram-sha-512" => "sasl_scram",
                "gssapi" => "sasl_gssapi",
                "oauthbearer" => "sasl_oauthbearer",
                _ => "",
            };
            if feature.is_empty() || !has(feature) {
                errors.push(format!(
                    "kafka.librdkafka.sasl.mechanisms {mech:?} is not supported by this build of pingan (librdkafka builtin.features: {features})"
                ));
            }
        }
        if self
            .librdkafka
            .keys()
            .any(|k| k.starts_with("ssl.") || k.starts_with("ssl_"))
            && !has("ssl")
        {
            errors.push(format!(
                "kafka.librdkafka sets ssl.* properties, but this build of pingan has no TLS support (librdkafka builtin.features: {features})"
            ));
        }
    }

    /// Whether a pass-through librdkafka property holds a secret (printed redacted).
    pub fn is_secret_property(key: &str) -> bool {
        let k = key.to_ascii_lowercase();
        [
            "password",
            "secret",
            "sasl.username",
            "ssl.key",
            "keystore",
            "oauthbearer.config",
            "sasl.jaas",
        ]
        .iter()
        .any(|s| k.contains(s))
    }

    fn base(&self, service: &str) -> ClientConfig {
        let mut c = ClientConfig::new();
        c.set("bootstrap.servers", &self.bootstrap_servers);
        c.set("client.id", format!("{}-{service}", self.client_id));
        for (k, v) in &self.librdkafka {
            if !OWNED_KEYS.contains(&k.as_str()) {
                c.set(k, v);
            }
        }
        c
    }

    /// An admin client configuration (topic provisioning).
    pub fn admin_config(&self, service: &str) -> ClientConfig {
        self.base(service)
    }

    /// An idempotent producer configuration (acks=all, retries, in-flight ≤ 5).
    pub fn producer_config(&self, service: &str) -> ClientConfig {
        let mut c = self.base(service);
        c.set("enable.idempotence", "true");
        c.set("acks", "all");
        c.set(
            "message.timeout.ms",
            parse_ms(&self.message_timeout)
                .unwrap_or(10_000)
                .to_string(),
        );
        c.set_if_absent("linger.ms", "5");
        c.set_if_absent("compression.type", "lz4");
        // A bounded queue turns a dead broker into a fast 503 instead of unbounded memory.
        c.set_if_absent("queue.buffering.max.kbytes", "65536");
        c
    }

    /// A consumer configuration with manual offset storing and auto-commit of stored offsets.
    pub fn consumer_config(&self, service: &str, group_id: &str) -> ClientConfig {
        let mut c = self.base(service);
        c.set("group.id", group_id);
        c.set("enable.auto.commit", "true");
        c.set("enable.auto.offset.store", "false");
        c.set("isolation.level", "read_committed");
        c.set_if_absent("auto.offset.reset", "earliest");
        c.set_if_absent("enable.partition.eof", "false");
        c.set_if_absent("partition.assignment.strategy", "cooperative-sticky");
        c.set_if_absent("auto.commit.interval.ms", "1000");
        c.set_if_absent("session.timeout.ms", "30000");
        // Bounded prefetch keeps memory flat when the sink is slower than the topic.
        c.set_if_absent("queued.max.messages.kbytes", "16384");
        // Feeds the lag gauge (`pingan_stage_lag_events`).
        c.set_if_absent("statistics.interval.ms", "5000");
        c
    }
}

trait SetIfAbsent {
    fn set_if_absent(&mut self, k: &str, v: &str) -> &mut Self;
}

impl SetIfAbsent for ClientConfig {
    fn set_if_absent(&mut self, k: &str, v: &str) -> &mut Self {
        if self.get(k).is_none() {
            self.set(k, v);
        }
        self
    }
}

/// Milliseconds of a duration string such as `10s` or `250ms`.
pub fn parse_ms(s: &str) -> Option<u64> {
    let s = s.trim();
    if let Some(n) = s.strip_suffix("ms") {
        return n.trim().parse().ok();
    }
    if let Some(n) = s.strip_suffix('s') {
        return n.trim().parse::<f64>().ok().map(|x| (x * 1000.0) as u64);
    }
    if let Some(n) = s.strip_suffix('m') {
        return n.trim().parse::<f64>().ok().map(|x| (x * 60_000.0) as u64);
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn owned_keys_cannot_be_overridden() {
        let mut s = KafkaConfig::default();
        s.librdkafka
            .insert("enable.auto.offset.store".into(), "true".into());
        s.librdkafka.insert("linger.ms".into(), "50".into());
        let mut errors = Vec::new();
        s.validate(&mut errors);
        assert_eq!(errors.len(), 1, "{errors:?}");
        let c = s.consumer_config("t", "g");
        assert_eq!(c.get("enable.auto.offset.store"), Some("false"));
        assert_eq!(s.producer_config("t").get("linger.ms"), Some("50"));
        assert_eq!(
            s.producer_config("t").get("enable.idempotence"),
            Some("true")
        );
    }

    #[test]
    fn settings_this_build_cannot_serve_are_refused() {
        let mut s = KafkaConfig::default();
        s.librdkafka
            .insert("security.protocol".into(), "SASL_SSL".into());
        s.librdkafka
            .insert("sasl.mechanisms".into(), "SCRAM-SHA-512".into());
        s.librdkafka
            .insert("sasl.password".into(), "hunter2-hunter2".into());
        let mut errors = Vec::new();
        s.validate(&mut errors);
        // This build has neither TLS nor SCRAM (see Cargo.toml); if it ever gains them, this
        // test must be updated together with the documentation.
        assert!(
            errors
                .iter()
                .any(|e| e.contains("security.protocol") && e.contains("ssl")),
            "{errors:?}"
        );
        assert!(
            errors
                .iter()
                .any(|e| e.contains("SCRAM") || e.contains("scram")),
            "{errors:?}"
        );
        assert!(!errors.join(" ").contains("hunter2"), "{errors:?}");
        let mut plain = KafkaConfig::default();
        plain
            .librdkafka
            .insert("security.protocol".into(), "plaintext".into());
        let mut errors = Vec::new();
        plain.validate(&mut errors);
        assert!(errors.is_empty(), "{errors:?}");
    }

    #[test]
    fn secret_properties_are_recognised() {
        for k in [
            "sasl.password",
            "ssl.key.password",
            "ssl.keystore.password",
            "ssl.key.pem",
            "sasl.oauthbearer.client.secret",
        ] {
            assert!(KafkaConfig::is_secret_property(k), "{k}");
        }
        assert!(!KafkaConfig::is_secret_property("linger.ms"));
    }

    #[test]
    fn durations_convert_to_milliseconds() {
        assert_eq!(parse_ms("10s"), Some(10_000));
        assert_eq!(parse_ms("250ms"), Some(250));
        assert_eq!(parse_ms("1m"), Some(60_000));
        assert_eq!(parse_ms("soon"), None);
    }
}
