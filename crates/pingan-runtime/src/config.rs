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
        if self.url.starts_with("https://") {
            // The clickhouse crate is built without TLS: an https:// URL would fail at the first
            // query (or, worse, be "fixed" to http:// by an operator in a hurry).
            errors.push(format!(
                "clickhouse.url {:?}: https:// is not supported by this build (no TLS client); use http:// on a trusted network or a local TLS-terminating proxy",
                redact_url(&self.url)
            ));
        } else if !self.url.starts_with("http://") {
            errors.push(format!(
                "clickhouse.url {:?} must start with http://",
                redact_url(&self.url)
            ));
        }
        if self.url.contains('@') {
            errors.push(
                "clickhouse.url must not carry credentials; set clickhouse.user and clickhouse.password"
                    .into(),
            );
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

/// A URL with any `user:password@` part replaced, for messages and printed configurations.
pub fn redact_url(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme), Some(at)) if at > scheme => {
            format!("{}<redacted>@{}", &url[..scheme + 3], &url[at + 1..])
        }
        _ => url.to_owned(),
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
    match load_partial(file, env) {
        (Some(t), errors) if errors.is_empty() => Ok(t),
        (_, errors) => Err(ConfigError(errors)),
    }
}

/// Loads `T` like [`load`], but keeps going past bad values: every value that does not fit its
/// key (wrong type, unknown key) is listed with the key it was given for and left at its
/// default, so the caller can still validate everything else and report all problems in one run.
/// The value is `None` only when even the defaults cannot be built.
pub fn load_partial<T>(file: Option<&Path>, env: &[(String, String)]) -> (Option<T>, Vec<String>)
where
    T: Default + Serialize + DeserializeOwned,
{
    let mut errors = Vec::new();
    let defaults = match serde_json::to_value(T::default()) {
        Ok(d) => d,
        Err(e) => return (None, vec![format!("defaults: {e}")]),
    };
    // Everything the file and the environment set, env winning, before it meets the defaults.
    let mut overlay = Value::Object(Map::new());
    if let Some(path) = file {
        match std::fs::read_to_string(path) {
            Err(e) => errors.push(format!("cannot read {}: {e}", path.display())),
            Ok(text) => match toml::from_str::<toml::Value>(&text) {
                Err(e) => errors.push(format!("{}: {e}", path.display())),
                Ok(t) => match serde_json::to_value(t) {
                    Ok(v) => merge(&mut overlay, v),
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
        let mut over = typed_env_value(default, raw);
        for k in path.iter().rev() {
            let mut m = Map::new();
            m.insert(k.clone(), over);
            over = Value::Object(m);
        }
        merge(&mut overlay, over);
    }
    let mut accepted = defaults;
    accept::<T>(&mut accepted, &mut Vec::new(), overlay, &mut errors);
    match serde_json::from_value(accepted) {
        Ok(t) => (Some(t), errors),
        Err(e) => {
            errors.push(e.to_string());
            (None, errors)
        }
    }
}

/// Merges `over` into `accepted` at `path` if the result still deserializes as `T`; otherwise
/// narrows down to the offending keys one level at a time and reports each with its full key.
/// One trial for a clean configuration; a bad value costs a trial per level of its key.
fn accept<T: DeserializeOwned>(
    accepted: &mut Value,
    path: &mut Vec<String>,
    over: Value,
    errors: &mut Vec<String>,
) {
    let mut trial = accepted.clone();
    set_at(&mut trial, path, over.clone());
    let Err(err) = serde_json::from_value::<T>(trial.clone()) else {
        *accepted = trial;
        return;
    };
    let base_is_section = path
        .iter()
        .try_fold(&*accepted, |v, k| v.get(k))
        .is_some_and(Value::is_object);
    match over {
        Value::Object(children) if base_is_section && !children.is_empty() => {
            for (k, child) in children {
                path.push(k);
                accept::<T>(accepted, path, child, errors);
                path.pop();
            }
        }
        _ => {
            let key = if path.is_empty() {
                "configuration".to_owned()
            } else {
                path.join(".")
            };
            errors.push(format!("{key}: {}", strip_position(&err.to_string())));
        }
    }
}

/// serde_json appends "at line 0 column 0" to errors from a `Value`: noise for an operator.
fn strip_position(msg: &str) -> &str {
    msg.split(" at line ").next().unwrap_or(msg)
}

fn set_at(tree: &mut Value, path: &[String], v: Value) {
    let mut over = v;
    for k in path.iter().rev() {
        let mut m = Map::new();
        m.insert(k.clone(), over);
        over = Value::Object(m);
    }
    merge(tree, over);
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
    fn a_wrong_type_names_its_key_and_hides_nothing_else() {
        let (app, errors) = load_partial::<App>(
            None,
            &env(&[
                ("PINGAN__KAFKA__PARTITIONS", "-3"),
                ("PINGAN__KAFKA__BOOTSTRAP_SERVERS", "10.0.0.9:9092"),
                ("PINGAN__CLICKHOUSE__USER", "reader"),
                ("PINGAN__NOPE", "1"),
            ]),
        );
        assert_eq!(errors.len(), 2, "{errors:?}");
        assert!(
            errors
                .iter()
                .any(|e| e.starts_with("kafka.partitions: ") && e.contains("-3")),
            "{errors:?}"
        );
        assert!(
            errors.iter().any(|e| e.contains("PINGAN__NOPE")),
            "{errors:?}"
        );
        let app = app.unwrap();
        assert_eq!(
            app.kafka.partitions, 4,
            "the bad value is left at its default"
        );
        assert_eq!(
            app.kafka.bootstrap_servers, "10.0.0.9:9092",
            "good values beside it still apply"
        );
        assert_eq!(app.clickhouse.user, "reader");
    }

    #[test]
    fn every_bad_file_value_is_listed_with_its_key() {
        let dir = std::env::temp_dir().join(format!("pingan-cfg-bad-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let f = dir.join("c.toml");
        std::fs::write(
            &f,
            "[kafka]\npartitions = \"many\"\ntopics = 3\nbootstrap = \"x\"\n[clickhouse]\nurl = 5\n",
        )
        .unwrap();
        let err = load::<App>(Some(&f), &[]).unwrap_err();
        std::fs::remove_dir_all(&dir).ok();
        for key in [
            "kafka.partitions: ",
            "kafka.topics: ",
            "kafka.bootstrap: ",
            "clickhouse.url: ",
        ] {
            assert!(
                err.0.iter().any(|e| e.starts_with(key)),
                "{key} missing from {err}"
            );
        }
        assert_eq!(err.0.len(), 4, "{err}");
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

    #[test]
    fn urls_with_credentials_are_refused_and_redacted() {
        let c = ClickHouseConfig {
            url: "https://bob:hunter2@ch:8443".into(),
            ..Default::default()
        };
        let mut errors = Vec::new();
        c.validate(&mut errors);
        assert_eq!(errors.len(), 2, "{errors:?}");
        assert!(!errors.join(" ").contains("hunter2"), "{errors:?}");
        assert_eq!(redact_url("http://a:b@h:1/x"), "http://<redacted>@h:1/x");
        assert_eq!(redact_url("http://h:1"), "http://h:1");
    }
}
