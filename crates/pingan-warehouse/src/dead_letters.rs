//! Dead letters in ClickHouse: the `dead_letters` table the aggregator's dead-letter stage
//! writes (one row per record a stage could not process, keyed by where it came from), the
//! filtered reads of `pingan dlq list|show`, and the replay log `dead_letter_replays`.
//!
//! A row is keyed by its origin (topic, partition, offset) in a ReplacingMergeTree and carries
//! only what the dead-letter record carried, so writing the same dead letter twice (a
//! redelivery after a crash) stores the same row, folded by `FINAL`.

use clickhouse::{Client, Row};
use serde::{Deserialize, Serialize};

/// One row of `dead_letters` (`schemas/clickhouse/0003_alerts_dead_letters.sql`), in column order.
#[derive(Debug, Clone, PartialEq, Eq, Row, Serialize, Deserialize)]
pub struct DeadLetterRow {
    /// When the record was dead-lettered (the dead-letter record's Kafka time), Unix seconds.
    pub stored_at: u32,
    /// Stage that gave up on it (`classifier`, `aggregator`).
    pub stage: String,
    /// Stable reason code (`invalid_json`, `schema_mismatch`, `unknown_subtype`,
    /// `clickhouse_rejected` …).
    pub reason: String,
    /// Human-readable detail.
    pub message: String,
    /// Origin topic.
    pub topic: String,
    /// Origin partition.
    pub partition: u16,
    /// Origin offset.
    pub offset: u64,
    /// Original key (bytes).
    #[serde(with = "bytes")]
    pub key: Vec<u8>,
    /// Original payload (bytes, untouched).
    #[serde(with = "bytes")]
    pub payload: Vec<u8>,
}

/// Writes `Vec<u8>` as a ClickHouse `String` (length and bytes) instead of an array, so payloads
/// that are not UTF-8 survive unchanged.
mod bytes {
    use serde::{Deserializer, Serializer, de::Visitor};

    pub(super) fn serialize<S: Serializer>(v: &[u8], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_bytes(v)
    }

    struct Bytes;

    impl Visitor<'_> for Bytes {
        type Value = Vec<u8>;
        fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("bytes")
        }
        fn visit_bytes<E>(self, v: &[u8]) -> Result<Vec<u8>, E> {
            Ok(v.to_vec())
        }
        fn visit_byte_buf<E>(self, v: Vec<u8>) -> Result<Vec<u8>, E> {
            Ok(v)
        }
        fn visit_str<E>(self, v: &str) -> Result<Vec<u8>, E> {
            Ok(v.as_bytes().to_vec())
        }
        fn visit_string<E>(self, v: String) -> Result<Vec<u8>, E> {
            Ok(v.into_bytes())
        }
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        d.deserialize_byte_buf(Bytes)
    }
}

/// Writes dead-letter rows in one INSERT that may take `timeout`.
pub async fn insert(
    client: &Client,
    rows: &[DeadLetterRow],
    timeout: std::time::Duration,
) -> clickhouse::error::Result<()> {
    let mut insert = client
        .insert::<DeadLetterRow>("dead_letters")
        .await?
        .with_timeouts(Some(timeout), Some(timeout));
    for r in rows {
        insert.write(r).await?;
    }
    insert.end().await
}

/// Which dead letters a list, show or replay is about. Empty fields do not filter.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Filter {
    /// Origin topic.
    pub topic: Option<String>,
    /// Reason code.
    pub reason: Option<String>,
    /// Stage.
    pub stage: Option<String>,
    /// Dead-lettered at or after (Unix seconds).
    pub since: Option<u32>,
    /// Dead-lettered before (Unix seconds).
    pub until: Option<u32>,
    /// One dead letter: origin (topic, partition, offset).
    pub at: Option<(String, u16, u64)>,
    /// `Some(false)`: only letters never replayed; `Some(true)`: only replayed ones.
    pub replayed: Option<bool>,
    /// At most this many (0: no limit).
    pub limit: u64,
}

/// A dead letter with its replay history (the fields of [`DeadLetterRow`], then the replays).
#[derive(Debug, Clone, PartialEq, Eq, Row, Deserialize)]
pub struct Listed {
    /// See [`DeadLetterRow::stored_at`].
    pub stored_at: u32,
    /// See [`DeadLetterRow::stage`].
    pub stage: String,
    /// See [`DeadLetterRow::reason`].
    pub reason: String,
    /// See [`DeadLetterRow::message`].
    pub message: String,
    /// See [`DeadLetterRow::topic`].
    pub topic: String,
    /// See [`DeadLetterRow::partition`].
    pub partition: u16,
    /// See [`DeadLetterRow::offset`].
    pub offset: u64,
    /// See [`DeadLetterRow::key`].
    #[serde(with = "bytes")]
    pub key: Vec<u8>,
    /// See [`DeadLetterRow::payload`].
    #[serde(with = "bytes")]
    pub payload: Vec<u8>,
    /// How often `pingan dlq replay` published it again.
    pub replays: u64,
    /// When it was last replayed (Unix seconds; 0 = never).
    pub last_replayed_at: u32,
}

impl Listed {
    /// Its id for `pingan dlq show|replay`: `topic/partition/offset` of the origin.
    pub fn id(&self) -> String {
        format!("{}/{}/{}", self.topic, self.partition, self.offset)
    }
}

/// Parses a dead letter's id `topic/partition/offset` (Kafka topic names never contain `/`).
pub fn parse_id(id: &str) -> Option<(String, u16, u64)> {
    let mut parts = id.rsplitn(3, '/');
    let offset = parts.next()?.parse().ok()?;
    let partition = parts.next()?.parse().ok()?;
    let topic = parts.next()?;
    (!topic.is_empty()).then(|| (topic.to_owned(), partition, offset))
}

/// The columns of [`Listed`], in order.
const LISTED_COLUMNS: &str = "toUInt32(stored_at) AS stored_at, stage, reason, message, topic, `partition`, `offset`, key, payload, replays, toUInt32(last_replayed_at) AS last_replayed_at";

/// The dead letters with their replays (one row per letter; `?where` is replaced by the
/// filter's conditions, `?limit` by its limit). One JOIN per SELECT keeps it valid on 18.16.
pub const LIST_SQL: &str = "SELECT ?columns FROM \
     (SELECT stored_at, stage, reason, message, topic, `partition`, `offset`, key, payload FROM dead_letters FINAL) AS letters \
     ANY LEFT JOIN \
     (SELECT topic, `partition`, `offset`, count() AS replays, max(replayed_at) AS last_replayed_at FROM dead_letter_replays GROUP BY topic, `partition`, `offset`) AS replays_of \
     USING (topic, `partition`, `offset`) \
     WHERE ?where ORDER BY stored_at, topic, `partition`, `offset` ?limit";

/// Records one replay of the dead letter at an origin position.
#[derive(Debug, Clone, PartialEq, Eq, Row, Serialize)]
pub struct ReplayRow {
    /// Origin topic.
    pub topic: String,
    /// Origin partition.
    pub partition: u16,
    /// Origin offset.
    pub offset: u64,
    /// When it was published again, Unix seconds.
    pub replayed_at: u32,
    /// 1: a corrected payload was published instead of the original bytes.
    pub edited: u8,
    /// The operator's note.
    pub note: String,
}

/// A statement with `?` placeholders and the values to bind, in order.
#[derive(Debug, Clone, PartialEq)]
pub struct Bound {
    /// The SQL.
    pub sql: String,
    /// Values, in placeholder order.
    pub params: Vec<Param>,
}

/// A bound value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Param {
    /// A string.
    Text(String),
    /// A number.
    Number(u64),
}

/// The list statement for `filter`.
pub fn list_sql(filter: &Filter) -> Bound {
    let mut conds = Vec::new();
    let mut params = Vec::new();
    let mut text = |cond: &str, v: &Option<String>, conds: &mut Vec<String>| {
        if let Some(v) = v {
            conds.push(cond.to_owned());
            params.push(Param::Text(v.clone()));
        }
    };
    text("topic = ?", &filter.topic, &mut conds);
    text("reason = ?", &filter.reason, &mut conds);
    text("stage = ?", &filter.stage, &mut conds);
    if let Some(s) = filter.since {
        conds.push("stored_at >= toDateTime(?)".into());
        params.push(Param::Number(u64::from(s)));
    }
    if let Some(u) = filter.until {
        conds.push("stored_at < toDateTime(?)".into());
        params.push(Param::Number(u64::from(u)));
    }
    if let Some((t, p, o)) = &filter.at {
        conds.push("topic = ? AND `partition` = ? AND `offset` = ?".into());
        params.push(Param::Text(t.clone()));
        params.push(Param::Number(u64::from(*p)));
        params.push(Param::Number(*o));
    }
    match filter.replayed {
        Some(true) => conds.push("replays > 0".into()),
        Some(false) => conds.push("replays = 0".into()),
        None => {}
    }
    let cond = if conds.is_empty() {
        "1".to_owned()
    } else {
        conds.join(" AND ")
    };
    let limit = if filter.limit > 0 {
        format!("LIMIT {}", filter.limit)
    } else {
        String::new()
    };
    Bound {
        sql: LIST_SQL
            .replacen("?columns", LISTED_COLUMNS, 1)
            .replacen("?where", &cond, 1)
            .replacen("?limit", &limit, 1)
            .trim_end()
            .to_owned(),
        params,
    }
}

/// The dead letters `filter` selects, oldest first.
pub async fn list(client: &Client, filter: &Filter) -> clickhouse::error::Result<Vec<Listed>> {
    let b = list_sql(filter);
    let mut q = client.query(&b.sql);
    for p in b.params {
        q = match p {
            Param::Text(t) => q.bind(t),
            Param::Number(n) => q.bind(n),
        };
    }
    q.fetch_all().await
}

/// Records replays.
pub async fn record_replays(client: &Client, rows: &[ReplayRow]) -> clickhouse::error::Result<()> {
    let mut insert = client.insert::<ReplayRow>("dead_letter_replays").await?;
    for r in rows {
        insert.write(r).await?;
    }
    insert.end().await
}

/// The event id in a payload, when it is JSON with one (dead letters are any bytes).
pub fn event_id(payload: &[u8]) -> Option<String> {
    #[derive(Deserialize)]
    struct Id {
        event_id: String,
    }
    serde_json::from_slice::<Id>(payload)
        .ok()
        .map(|i| i.event_id)
}

/// The statements above with sample parameters.
pub(crate) fn templates() -> Vec<(&'static str, String)> {
    let all = list_sql(&Filter {
        topic: Some("x".into()),
        reason: Some("x".into()),
        stage: Some("x".into()),
        since: Some(1),
        until: Some(2),
        at: Some(("x".into(), 1, 2)),
        replayed: Some(false),
        limit: 10,
    });
    let mut sql = all.sql;
    for p in all.params {
        let v = match p {
            Param::Text(t) => format!("'{t}'"),
            Param::Number(n) => n.to_string(),
        };
        sql = sql.replacen('?', &v, 1);
    }
    vec![
        ("dlq_list", sql),
        ("dlq_list_all", list_sql(&Filter::default()).sql),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filters_become_bound_conditions() {
        let b = list_sql(&Filter {
            topic: Some("pingan.enriched.v1".into()),
            since: Some(100),
            replayed: Some(false),
            limit: 5,
            ..Filter::default()
        });
        assert!(
            b.sql.contains(
                "WHERE topic = ? AND stored_at >= toDateTime(?) AND replays = 0 ORDER BY"
            ),
            "{}",
            b.sql
        );
        assert!(b.sql.ends_with("LIMIT 5"));
        assert_eq!(
            b.params,
            vec![Param::Text("pingan.enriched.v1".into()), Param::Number(100)]
        );
        assert_eq!(b.sql.matches('?').count(), 2);
        assert!(
            list_sql(&Filter::default())
                .sql
                .contains("WHERE 1 ORDER BY")
        );
    }

    #[test]
    fn event_ids_are_read_when_present() {
        assert_eq!(event_id(br#"{"event_id":"a","x":1}"#).as_deref(), Some("a"));
        assert_eq!(event_id(b"{not json"), None);
        assert_eq!(
            parse_id("pingan.enriched.v1/3/42"),
            Some(("pingan.enriched.v1".into(), 3, 42))
        );
        assert_eq!(parse_id("3/42"), None);
        assert_eq!(parse_id("t/x/42"), None);
    }
}
