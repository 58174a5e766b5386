//! Layered configuration: compiled defaults, then a TOML file, then `PINGAN__SECTION__KEY`
//! environment variables (highest priority).
//!
//! The loader works on a JSON tree so the three layers merge key by key; environment values are
//! typed by the default they replace (a string default stays a string even when the value looks
//! like a number), and list defaults accept comma-separated values. Unknown env keys and unknown
//! file keys are all reported together, because an operator fixing a deployment wants the whole
//! list in one run.

use std::fmt;
use std::path::Path;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::{Map, Value};

/// Prefix of configuration environment variables.
pub const ENV_PREFIX: &str = "PINGAN__";

/// Everything wrong with a configuration, listed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid configuration:\n  - {}", .0.join("\n  - "))]
pub struct ConfigError(pub Vec<String>);

/// A secret that never appears in `Debug` output or in a printed configuration.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Sensitive(String);

impl Sensitive {
    /// Wraps a secret.
    pub fn new(s: impl Into<String>) -> Sensitive {
        Sensitive(s.into())
    }
    /// The secret itself; call only where it is used.
    pub fn expose(&self) -> &str {
        &self.0
    }
    /// Whether no secret was configured.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl fmt::Debug for Sensitive {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(if self.0.is_empty() {
            "\"\""
        } else {
            "\"<redacted>\""
        })
    }
}

impl Serialize for Sensitive {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        // Printing a configuration must never leak a secret; an empty one shows as empty so an
        // operator can see that it is missing.
        s.serialize_str(if self.0.is_empty() { "" } else { "<redacted>" })
    }
}

impl<'de> Deserialize<'de> for Sensitive {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Sensitive, D::Error> {
        String::deserialize(d).map(Sensitive)
    }
}

/// Connection settings for ClickHouse, shared by the aggregator and the query API.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ClickHouseConfig {
    /// HTTP endpoint of the server.
    pub url: String,
    /// Database that holds pingan's tables.
    pub database: String,
    /// User name.
    pub user: String,
    /// Password (redacted when printed).
    pub password: Sensitive,
}

impl Default for ClickHouseConfig {
    fn default() -> Self {
        ClickHouseConfig {
            url: "http://127.0.0.1:8123".into(),
            database: "pingan".into(),
            user: "default".into(),
            password: Sensitive::default(),
        }
    }
}

impl ClickHouseConfig {
    /// Checks the settings, appending problems to `errors`.
    pub fn validate(&self, errors: &mut Vec<String>) {
        if !(self.url.starts_with("http://") || self.url.starts_with("https://")) {
            errors.push(format!(
                "clickhouse.url {:?} must start with http:// or https://",
                self.url
            ));
        }
        if self.database.is_empty()
            || !self
                .database
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_')
        {
            errors.push(format!(
                "clickhouse.database {:?} must be a plain identifier",
                self.database
            ));
        }
    }
}

fn merge(base: &mut Value, over: Value) {
    match (base, over) {
        (Value::Object(b), Value::Object(o)) => {
            for (k, v) in o {
                match b.get_mut(&k) {
                    Some(slot) => merge(slot, v),
                    None => {
                        b.insert(k, v);
                    }
                }
            }
        }
        (slot, v) => *slot = v,
    }
}

fn typed_env_value(default: Option<&Value>, raw: &str) -> Value {
    match default {
        Some(Value::String(_)) => Value::String(raw.to_owned()),
        Some(Value::Bool(_)) => match raw.to_ascii_lowercase().as_str() {
            "true" | "1" | "yes" | "on" => Value::Bool(true),
            "false" | "0" | "no" | "off" => Value::Bool(false),
            _ => Value::String(raw.to_owned()),
        },
        Some(Value::Number(_)) => raw
            .parse::<i64>()
            .map(Value::from)
            .or_else(|_| raw.parse::<f64>().map(Value::from))
            .unwrap_or_else(|_| Value::String(raw.to_owned())),
        Some(Value::Array(_)) => Value::Array(
            raw.split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(|s| Value::String(s.to_owned()))
                .collect(),
        ),
        _ => raw
            .parse::<i64>()
            .map(Value::from)
            .or_else(|_| raw.parse::<bool>().map(Value::Bool))
            .unwrap_or_else(|_| Value::String(raw.to_owned())),
    }
}

fn known_paths(v: &Value, prefix: &str, out: &mut Vec<String>) {
    if let Value::Object(m) = v {
        for (k, child) in m {
            let p = if prefix.is_empty() {
                k.clone()
            } else {
                format!("{prefix}.{k}")
            };
            out.push(p.clone());
            known_paths(child, &p, out);
        }
    }
}

/// Loads `T` from its defaults, an optional TOML file and the environment.
///
/// `env` is passed in (rather than read here) so tests do not touch the process environment.
pub fn load<T>(file: Option<&Path>, env: &[(String, String)]) -> Result<T, ConfigError>
where
    T: Default + Serialize + DeserializeOwned,
{
    let mut errors = Vec::new();
    let defaults = serde_json::to_value(T::default())
        .map_err(|e| ConfigError(vec![format!("defaults: {e}")]))?;
    let mut tree = defaults.clone();
    if let Some(path) = file {
        match std::fs::read_to_string(path) {
            Err(e) => errors.push(format!("cannot read {}: {e}", path.display())),
            Ok(text) => match toml::from_str::<toml::Value>(&text) {
                Err(e) => errors.push(format!("{}: {e}", path.display())),
                Ok(t) => match serde_json::to_value(t) {
                    Ok(v) => merge(&mut tree, v),
                    Err(e) => errors.push(format!("{}: {e}", path.display())),
                },
            },
        }
    }
    let mut known = Vec::new();
    known_paths(&defaults, "", &mut known);
    let mut env: Vec<&(String, String)> = env
        .iter()
        .filter(|(k, _)| k.starts_with(ENV_PREFIX))
        .collect();
    env.sort();
    for (key, raw) in env {
        let path: Vec<String> = key[ENV_PREFIX.len()..]
            .split("__")
            .map(str::to_ascii_lowercase)
            .collect();
        let dotted = path.join(".");
        if !known.contains(&dotted) {
            errors.push(format!("{key}: no configuration key {dotted}"));
            continue;
        }
        let default = path.iter().try_fold(&defaults, |v, k| v.get(k));
        let value = typed_env_value(default, raw);
        let mut over = value;
        for k in path.iter().rev() {
            let mut m = Map::new();
            m.insert(k.clone(), over);
            over = Value::Object(m);
        }
        merge(&mut tree, over);
    }
    if !errors.is_empty() {
        return Err(ConfigError(errors));
    }
    serde_json::from_value(tree).map_err(|e| ConfigError(vec![e.to_string()]))
}

/// The process environment as pairs, for [`load`].
pub fn process_env() -> Vec<(String, String)> {
    std::env::vars().collect()
}

/// Human durations (`250ms`, `5s`, `2m`, `1h`) for the sections' readers; the parser lives in
/// [`crate::duration`].
pub use crate::duration::parse_duration;

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, Serialize, Deserialize, PartialEq)]
    #[serde(deny_unknown_fields, default)]
    struct Kafka {
        bootstrap_servers: String,
        partitions: u32,
        topics: Vec<String>,
    }
    impl Default for Kafka {
        fn default() -> Self {
            Kafka {
                bootstrap_servers: "127.0.0.1:9092".into(),
                partitions: 4,
                topics: vec!["a".into()],
            }
        }
    }
    #[derive(Debug, Default, Serialize, Deserialize, PartialEq)]
    #[serde(deny_unknown_fields, default)]
    struct App {
        kafka: Kafka,
        clickhouse: ClickHouseConfig,
    }

    fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn env_overrides_defaults_with_the_right_types() {
        let app: App = load(
            None,
            &env(&[
                ("PINGAN__KAFKA__BOOTSTRAP_SERVERS", "10.0.0.1:9092"),
                ("PINGAN__KAFKA__PARTITIONS", "8"),
                ("PINGAN__KAFKA__TOPICS", "x, y"),
                ("PINGAN__CLICKHOUSE__DATABASE", "12345"),
                ("UNRELATED", "1"),
            ]),
        )
        .unwrap();
        assert_eq!(app.kafka.bootstrap_servers, "10.0.0.1:9092");
        assert_eq!(app.kafka.partitions, 8);
        assert_eq!(app.kafka.topics, vec!["x", "y"]);
        assert_eq!(app.clickhouse.database, "12345", "a string stays a string");
    }

    #[test]
    fn a_file_layer_sits_between_defaults_and_env() {
        let dir = std::env::temp_dir().join(format!("pingan-cfg-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let f = dir.join("c.toml");
        std::fs::write(
            &f,
            "[kafka]\npartitions = 2\nbootstrap_servers = \"file:9092\"\n",
        )
        .unwrap();
        let app: App = load(Some(&f), &env(&[("PINGAN__KAFKA__PARTITIONS", "3")])).unwrap();
        assert_eq!(app.kafka.partitions, 3);
        assert_eq!(app.kafka.bootstrap_servers, "file:9092");
    }

    #[test]
    fn every_unknown_env_key_is_listed() {
        let err = load::<App>(
            None,
            &env(&[("PINGAN__KAFKA__BOOTSTRAP", "x"), ("PINGAN__NOPE__X", "y")]),
        )
        .unwrap_err();
        assert_eq!(err.0.len(), 2, "{err}");
        assert!(err.to_string().contains("kafka.bootstrap"));
    }

    #[test]
    fn secrets_are_redacted() {
        let s = ClickHouseConfig {
            password: Sensitive::new("hunter2"),
            ..Default::default()
        };
        assert!(!format!("{s:?}").contains("hunter2"));
        assert!(!serde_json::to_string(&s).unwrap().contains("hunter2"));
    }
}
