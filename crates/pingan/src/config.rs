//! The whole configuration of the `pingan` binary: one TOML file, one section per concern, every
//! key overridable by `PINGAN__SECTION__KEY`.

use serde::{Deserialize, Serialize};

use pingan_ingest::{IngestConfig, IngestSettings, PiiConfig, QrConfig};
use pingan_pipeline::client::KafkaConfig;
use pingan_runtime::config::ClickHouseConfig;
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

/// Listen address of the query API and dashboard.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub(crate) struct ServeSettings {
    /// `host:port` of `pingan serve`.
    pub(crate) listen: String,
}

impl Default for ServeSettings {
    fn default() -> Self {
        ServeSettings {
            listen: "127.0.0.1:8090".into(),
        }
    }
}

/// Everything `pingan` reads from its configuration.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub(crate) struct PinganConfig {
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
    /// Every problem with the loaded configuration.
    pub(crate) fn problems(&self) -> Vec<String> {
        let mut errors = Vec::new();
        self.kafka.validate(&mut errors);
        self.topics.validate(&mut errors);
        self.clickhouse.validate(&mut errors);
        self.aggregator.validate(&mut errors);
        self.classifier.validate(&mut errors);
        if let Err(e) = self.ingest_settings() {
            errors.extend(e.0);
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

    /// The validated settings of `pingan ingest` (sections `ingest`, `qr`, `pii`, `kafka`).
    pub(crate) fn ingest_settings(
        &self,
    ) -> Result<IngestSettings, pingan_ingest::config::ConfigError> {
        IngestSettings::from_config(&self.ingest, &self.qr, &self.pii, &self.kafka)
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
        assert!(c.problems().is_empty());
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
            c.problems(),
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
        assert!(c.problems().is_empty(), "{:?}", c.problems());
    }
}
