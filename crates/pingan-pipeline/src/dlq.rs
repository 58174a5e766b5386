//! Dead letters: records a stage could not process, with their original bytes and a reason.
//!
//! A dead letter goes to `<source topic>.dlq` under the original key, with the original payload
//! untouched and the reason in headers, so an operator can fix and replay it.

use crate::batch::RecordMeta;
use crate::producer::{OutRecord, PublishError, Publisher};

/// One record that could not be processed.
#[derive(Debug, Clone)]
pub struct DeadLetter {
    /// Where it came from.
    pub meta: RecordMeta,
    /// Original payload.
    pub payload: Vec<u8>,
    /// Stable reason code.
    pub code: &'static str,
    /// Human-readable detail.
    pub message: String,
}

/// The DLQ topic of `topic`.
pub fn dlq_topic(topic: &str) -> String {
    format!("{topic}.dlq")
}

/// Writes dead letters for one stage.
#[derive(Debug, Clone)]
pub struct DeadLetters {
    publisher: Publisher,
    stage: &'static str,
}

impl DeadLetters {
    /// Dead letters of `stage`, written through `publisher`.
    pub fn new(publisher: Publisher, stage: &'static str) -> DeadLetters {
        DeadLetters { publisher, stage }
    }

    /// Writes `letters`; `Ok` once Kafka acknowledged all of them.
    pub async fn write(&self, letters: &[DeadLetter]) -> Result<(), PublishError> {
        if letters.is_empty() {
            return Ok(());
        }
        let topics: Vec<String> = letters.iter().map(|l| dlq_topic(&l.meta.topic)).collect();
        let offsets: Vec<String> = letters.iter().map(|l| l.meta.offset.to_string()).collect();
        let partitions: Vec<String> = letters
            .iter()
            .map(|l| l.meta.partition.to_string())
            .collect();
        let headers: Vec<[(&str, &[u8]); 6]> = letters
            .iter()
            .enumerate()
            .map(|(i, l)| {
                [
                    ("x-pingan-stage", self.stage.as_bytes()),
                    ("x-pingan-reason", l.code.as_bytes()),
                    ("x-pingan-error", l.message.as_bytes()),
                    ("x-pingan-origin-topic", l.meta.topic.as_bytes()),
                    ("x-pingan-origin-partition", partitions[i].as_bytes()),
                    ("x-pingan-origin-offset", offsets[i].as_bytes()),
                ]
            })
            .collect();
        self.publisher
            .publish(letters.iter().enumerate().map(|(i, l)| OutRecord {
                topic: &topics[i],
                key: l.meta.key.as_deref(),
                payload: &l.payload,
                headers: &headers[i],
            }))
            .await
    }
}
