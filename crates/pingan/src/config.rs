//! The whole configuration of the `pingan` binary: one TOML file, one section per concern, every
//! key overridable by `PINGAN__SECTION__KEY`.

use serde::{Deserialize, Serialize};

use pingan_ingest::{IngestConfig, IngestSettings, PiiConfig, QrConfig};
use pingan_pipeline::client::KafkaConfig;
use pingan_runtime::config::{ClickHouseConfig, Sensitive};
use pingan_runtime::telemetry::LogFormat;

/// Logging.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub(crate) struct LogSettings {
    /// `pretty` for people, `json` for log collectors.
    pub(crate) format: LogFormat,
    /// Default filter when `RUST_LOG` is not set.
    pub(crate) filter: String,
}

impl Default for LogSettings {
    fn default() -> Self {
        LogSettings {
            format: LogFormat::Pretty,
            filter: "info,rdkafka=warn,librdkafka=warn".into(),
        }
    }
}

/// The `[serve]` section: listen address and read tokens of the query API and dashboard.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub(crate) struct ServeSettings {
    /// `host:port` of `pingan serve`.
    pub(crate) listen: String,
    /// Read tokens `"<name>:<role>:<scope>:<secret>"` (CONTRACT §9); required outside `--dev`.
    pub(crate) tokens: Vec<Sensitive>,
}

impl Default for ServeSettings {
    fn default() -> Self {
        ServeSettings {
            listen: "127.0.0.1:8090".into(),
            tokens: Vec::new(),
        }
    }
}

/// Which secrets a command needs: outside development mode an unset one is a configuration
/// error (CONTRACT §9 "Production by default").
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Needs {
    /// No secret (classify, aggregate, migrate, offline tools).
    Nothing,
    /// `pingan ingest`: `pii.key`, `qr.keys`, `ingest.api_tokens`.
    Ingest,
    /// `pingan serve`: `serve.tokens`.
    Serve,
    /// `pingan qr sign` and `pingan simulate`: the doorplate and phone keys they sign and hash
    /// with, which must be the ingest's own.
    Keys,
    /// `pingan demo` runs everything, always in development mode.
    Demo,
}

/// Everything `pingan` reads from its configuration.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub(crate) struct PinganConfig {
    /// Development mode (`--dev`, `PINGAN__DEV=true`): the public development keys and an open
    /// API are accepted with a warning, and the dashboard shows DEV. Never in a deployment.
    pub(crate) dev: bool,
    /// Logging.
    pub(crate) log: LogSettings,
    /// Kafka connection.
    pub(crate) kafka: KafkaConfig,
    /// Topic layout (`pingan topics`).
    pub(crate) topics: pingan_pipeline::topics::TopicsConfig,
    /// ClickHouse connection.
    pub(crate) clickhouse: ClickHouseConfig,
    /// Ingest service.
    pub(crate) ingest: IngestConfig,
    /// QR doorplate signing keys (ingest verifies, `pingan qr sign` signs).
    pub(crate) qr: QrConfig,
    /// Phone pseudonymisation key (ingest).
    pub(crate) pii: PiiConfig,
    /// Query API and dashboard.
    pub(crate) serve: ServeSettings,
    /// Aggregator service.
    pub(crate) aggregator: pingan_aggregator::AggregatorConfig,
    /// Classifier service.
    pub(crate) classifier: pingan_classifier::ClassifierConfig,
}

impl PinganConfig {
    /// Every problem with the loaded configuration for a command that `needs` these secrets.
    pub(crate) fn problems(&self, needs: Needs) -> Vec<String> {
        let mut errors = Vec::new();
        self.kafka.validate(&mut errors);
        self.topics.validate(&mut errors);
        self.clickhouse.validate(&mut errors);
        self.aggregator.validate(&mut errors);
        self.classifier.validate(&mut errors);
        if self.aggregator.alerts.webhook_url.starts_with("https://") {
            errors.push(
                "aggregator.alerts.webhook_url: https:// is not supported by this build (plain HTTP client); use http:// to a local TLS-terminating proxy"
                    .into(),
            );
        }
        // Formats are checked for every command; presence only where the command needs it.
        if let Err(e) =
            IngestSettings::from_config(&self.ingest, &self.qr, &self.pii, &self.kafka, true)
        {
            errors.extend(e.0);
        }
        let mut token_errors = Vec::new();
        pingan_query::auth::parse_tokens(&self.serve.tokens, &mut token_errors);
        errors.extend(token_errors);
        if !self.dev {
            errors.extend(self.missing_secrets(needs));
        }
        for (key, addr) in [("serve.listen", &self.serve.listen)] {
            if addr.parse::<std::net::SocketAddr>().is_err() {
                errors.push(format!(
                    "{key} {addr:?} is not a host:port address such as 127.0.0.1:8080"
                ));
            }
        }
        errors
    }

    /// The secrets `needs` asks for that are not set.
    fn missing_secrets(&self, needs: Needs) -> Vec<String> {
        use pingan_ingest::config::{missing_secret, missing_secrets};
        match needs {
            Needs::Nothing | Needs::Demo => Vec::new(),
            Needs::Ingest => missing_secrets(&self.ingest, &self.qr, &self.pii),
            Needs::Serve => {
                if self.serve.tokens.is_empty() {
                    vec![missing_secret("serve.tokens", "PINGAN__SERVE__TOKENS")]
                } else {
                    Vec::new()
                }
            }
            Needs::Keys => {
                let mut m: Vec<String> = self.qr.missing_secret().into_iter().collect();
                if self.pii.key.is_empty() {
                    m.push(missing_secret("pii.key", "PINGAN__PII__KEY"));
                }
                m
            }
        }
    }

    /// The validated settings of `pingan ingest` (sections `ingest`, `qr`, `pii`, `kafka`); the
    /// development keys only in development mode.
    pub(crate) fn ingest_settings(
        &self,
    ) -> Result<IngestSettings, pingan_ingest::config::ConfigError> {
        IngestSettings::from_config(&self.ingest, &self.qr, &self.pii, &self.kafka, self.dev)
    }

    /// The doorplate signer and phone hasher for tools that must match ingest (`qr sign`,
    /// `simulate`); [`PinganConfig::problems`] with [`Needs::Keys`] has checked that they are
    /// set outside development mode.
    pub(crate) fn key_settings(
        &self,
    ) -> Result<IngestSettings, pingan_ingest::config::ConfigError> {
        IngestSettings::from_config(&self.ingest, &self.qr, &self.pii, &self.kafka, true)
    }

    /// The read tokens of `pingan serve`.
    pub(crate) fn read_tokens(&self) -> Result<Vec<pingan_query::auth::ReadToken>, Vec<String>> {
        let mut errors = Vec::new();
        let tokens = pingan_query::auth::parse_tokens(&self.serve.tokens, &mut errors);
        if errors.is_empty() {
            Ok(tokens)
        } else {
            Err(errors)
        }
    }

    /// The configuration as `--check-config` prints it: every secret redacted, including
    /// pass-through librdkafka properties and credentials in URLs.
    pub(crate) fn redacted_toml(&self) -> String {
        let mut c = self.clone();
        c.clickhouse.url = pingan_runtime::config::redact_url(&c.clickhouse.url);
        c.aggregator.alerts.webhook_url =
            pingan_runtime::config::redact_url(&c.aggregator.alerts.webhook_url);
        for (k, v) in &mut c.kafka.librdkafka {
            if KafkaConfig::is_secret_property(k) {
                *v = "<redacted>".into();
            }
        }
        toml::to_string_pretty(&c).unwrap_or_else(|e| format!("# cannot render: {e}\n"))
    }

    /// What `pingan classify` runs with; its metrics go to `registry`.
    pub(crate) fn classifier_settings(
        &self,
        registry: &prometheus::Registry,
        stage_metrics: &pingan_pipeline::metrics::StageMetrics,
    ) -> pingan_classifier::ClassifierSettings {
        pingan_classifier::ClassifierSettings {
            config: self.classifier.clone(),
            kafka: self.kafka.clone(),
            registry: registry.clone(),
            stage_metrics: stage_metrics.clone(),
        }
    }

    /// What `pingan aggregate` runs with; its metrics go to `registry`.
    pub(crate) fn aggregator_settings(
        &self,
        registry: &prometheus::Registry,
        stage_metrics: &pingan_pipeline::metrics::StageMetrics,
    ) -> pingan_aggregator::AggregatorSettings {
        pingan_aggregator::AggregatorSettings {
            config: self.aggregator.clone(),
            kafka: self.kafka.clone(),
            clickhouse: self.clickhouse.clone(),
            registry: registry.clone(),
            stage_metrics: stage_metrics.clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_match_the_contract() {
        let c = PinganConfig::default();
        assert_eq!(c.kafka.bootstrap_servers, "127.0.0.1:9092");
        assert_eq!(c.clickhouse.url, "http://127.0.0.1:8123");
        assert_eq!(c.clickhouse.database, "pingan");
        assert_eq!(c.ingest.listen, "127.0.0.1:8080");
        assert_eq!(c.serve.listen, "127.0.0.1:8090");
        assert!(c.problems(Needs::Nothing).is_empty());
        assert!(!c.dev, "production is the default");
    }

    #[test]
    fn outside_dev_mode_services_list_every_missing_secret() {
        let c = PinganConfig::default();
        let ingest = c.problems(Needs::Ingest);
        assert_eq!(ingest.len(), 3, "{ingest:?}");
        for key in ["pii.key", "qr.keys", "ingest.api_tokens"] {
            assert!(
                ingest.iter().any(|e| e.starts_with(key)),
                "{key}: {ingest:?}"
            );
        }
        assert_eq!(c.problems(Needs::Serve).len(), 1);
        assert!(c.problems(Needs::Serve)[0].starts_with("serve.tokens"));
        let dev = PinganConfig {
            dev: true,
            ..PinganConfig::default()
        };
        assert!(dev.problems(Needs::Ingest).is_empty());
        assert!(dev.problems(Needs::Serve).is_empty());
    }

    #[test]
    fn a_wrong_type_and_a_bad_value_are_both_reported_with_their_keys() {
        let env: Vec<(String, String)> = [
            ("PINGAN__INGEST__QR_CLIENT_PER_MINUTE", "-3"),
            ("PINGAN__KAFKA__MESSAGE_TIMEOUT", "soon"),
            ("PINGAN__DEV", "true"),
        ]
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        let (c, mut errors) = pingan_runtime::config::load_partial::<PinganConfig>(None, &env);
        let c = c.unwrap();
        assert!(c.dev);
        errors.extend(c.problems(Needs::Ingest));
        assert!(
            errors
                .iter()
                .any(|e| e.starts_with("ingest.qr_client_per_minute") && e.contains("-3")),
            "{errors:?}"
        );
        assert!(
            errors
                .iter()
                .any(|e| e.starts_with("kafka.message_timeout") && e.contains("soon")),
            "{errors:?}"
        );
    }

    #[test]
    fn check_config_output_redacts_every_secret() {
        let secrets = [
            "pii-secret-0123456789",
            "qr-secret-0123456789",
            "cad-token-0123456789",
            "read-token-0123456789",
            "ch-password-0123456789",
            "sasl-password-0123456789",
            "url-password-0123456789",
            "webhook-secret-0123456789",
        ];
        let env: Vec<(String, String)> = [
            ("PINGAN__PII__KEY", secrets[0].to_owned()),
            ("PINGAN__QR__KEYS", format!("v1:{}", secrets[1])),
            ("PINGAN__INGEST__API_TOKENS", secrets[2].to_owned()),
            (
                "PINGAN__SERVE__TOKENS",
                format!("ops:admin:*:{}", secrets[3]),
            ),
            ("PINGAN__CLICKHOUSE__PASSWORD", secrets[4].to_owned()),
            (
                "PINGAN__AGGREGATOR__ALERTS__WEBHOOK_SECRET",
                secrets[7].to_owned(),
            ),
            (
                "PINGAN__AGGREGATOR__ALERTS__WEBHOOK_URL",
                format!("http://hook:{}@h:1/x", secrets[6]),
            ),
        ]
        .iter()
        .map(|(k, v)| (k.to_string(), v.clone()))
        .collect();
        let mut c: PinganConfig = pingan_runtime::config::load(None, &env).unwrap();
        c.kafka
            .librdkafka
            .insert("sasl.password".into(), secrets[5].into());
        c.clickhouse.url = format!("http://u:{}@ch:8123", secrets[6]);
        let printed = c.redacted_toml();
        let mut problems = c.problems(Needs::Ingest);
        problems.extend(c.problems(Needs::Serve));
        // URLs with credentials are refused by validation (see `problems`); the Debug form of the
        // Kafka section, which is logged by nothing but could be, redacts pass-through secrets.
        let text = format!("{printed}\n{}\n{:?}", problems.join("\n"), c.kafka);
        for s in secrets {
            assert!(!text.contains(s), "{s} leaked:\n{text}");
        }
        assert!(printed.contains("<redacted>"));
        assert!(
            problems
                .iter()
                .any(|p| p.contains("must not carry credentials")),
            "{problems:?}"
        );
    }

    #[test]
    fn contract_env_vars_work() {
        let env: Vec<(String, String)> = [
            ("PINGAN__KAFKA__BOOTSTRAP_SERVERS", "k:1"),
            ("PINGAN__CLICKHOUSE__URL", "http://c:2"),
            ("PINGAN__CLICKHOUSE__DATABASE", "x"),
            ("PINGAN__INGEST__LISTEN", "0.0.0.0:1"),
            ("PINGAN__AGGREGATOR__ALERTS__DETECT__LINK_MINUTES", "7"),
            ("PINGAN__SERVE__LISTEN", "0.0.0.0:2"),
        ]
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        let c: PinganConfig = pingan_runtime::config::load(None, &env).unwrap();
        assert_eq!(
            (
                c.kafka.bootstrap_servers.as_str(),
                c.clickhouse.url.as_str()
            ),
            ("k:1", "http://c:2")
        );
        assert_eq!(
            (
                c.ingest.listen.as_str(),
                c.serve.listen.as_str(),
                c.clickhouse.database.as_str()
            ),
            ("0.0.0.0:1", "0.0.0.0:2", "x")
        );
        assert_eq!(c.aggregator.alerts.detect.link_minutes, 7);
    }

    #[test]
    fn detection_is_tunable_from_the_file_and_checked() {
        let dir = std::env::temp_dir().join(format!("pingan-detect-cfg-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("pingan.toml");
        std::fs::write(
            &path,
            "[aggregator.alerts.detect]\nlink_minutes = 5\nmin_observed = 0\n\
             [aggregator.alerts.detect.min_counts_by_subtype.CRIM_BURGLARY]\n\
             min_observed = 3\nmin_excess = 2.0\nlevels = [\"compound\"]\n",
        )
        .unwrap();
        let c: PinganConfig = pingan_runtime::config::load(Some(&path), &[]).unwrap();
        std::fs::remove_dir_all(&dir).ok();
        let d = &c.aggregator.alerts.detect;
        assert_eq!(d.link_minutes, 5);
        assert_eq!(d.min_counts_by_subtype["CRIM_BURGLARY"].min_observed, 3);
        // Unset fields keep the defaults.
        assert_eq!((d.cooldown_minutes, d.hold_nested_windows), (180, true));
        assert_eq!(
            c.problems(Needs::Nothing),
            ["aggregator.alerts.detect.min_observed must be >= 1"]
        );
    }

    #[test]
    fn the_example_config_parses() {
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../deploy/config/pingan.example.toml"
        );
        let c: PinganConfig =
            pingan_runtime::config::load(Some(std::path::Path::new(path)), &[]).unwrap();
        assert!(
            c.problems(Needs::Nothing).is_empty(),
            "{:?}",
            c.problems(Needs::Nothing)
        );
    }
}
