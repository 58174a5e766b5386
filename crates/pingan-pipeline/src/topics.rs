//! Topic provisioning: create the pipeline's topics with the partitions, replication factor and
//! durability settings the configuration asks for, and say plainly where an existing topic differs.
//!
//! Brokers run with `auto.create.topics.enable=false`, so a topic exists only because someone
//! created it — this module, or an operator. A topic created with replication factor 1 loses
//! acknowledged records when its one broker loses its disk, and nothing later fixes that without
//! a reassignment, so it is checked before anything is created and reported on every run.

use std::collections::BTreeMap;
use std::time::Duration;

use rdkafka::admin::{
    AdminClient, AdminOptions, NewPartitions, NewTopic, ResourceSpecifier, TopicReplication,
    TopicResult,
};
use rdkafka::client::DefaultClientContext;
use rdkafka::error::KafkaError;
use serde::{Deserialize, Serialize};

use crate::client::KafkaConfig;

/// How topics are laid out (`[topics]` in the configuration file).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TopicsConfig {
    /// Partitions per topic: the most consumers of one group that can share a topic's work.
    pub partitions: i32,
    /// Copies of every partition. 3 survives one broker lost while a second is restarting.
    pub replication_factor: i32,
    /// In-sync copies an `acks=all` write needs (`min.insync.replicas`): with 2 of 3, one broker
    /// may be down and nothing acknowledged lives on a single disk.
    pub min_insync_replicas: i32,
}

impl Default for TopicsConfig {
    fn default() -> Self {
        TopicsConfig {
            partitions: 4,
            replication_factor: 3,
            min_insync_replicas: 2,
        }
    }
}

impl TopicsConfig {
    /// Checks the settings, appending problems to `errors`.
    pub fn validate(&self, errors: &mut Vec<String>) {
        if !(1..=10_000).contains(&self.partitions) {
            errors.push(format!(
                "topics.partitions {} must be between 1 and 10000",
                self.partitions
            ));
        }
        if !(1..=32).contains(&self.replication_factor) {
            errors.push(format!(
                "topics.replication_factor {} must be between 1 and 32",
                self.replication_factor
            ));
        }
        if self.min_insync_replicas < 1 || self.min_insync_replicas > self.replication_factor {
            errors.push(format!(
                "topics.min_insync_replicas {} must be between 1 and topics.replication_factor ({})",
                self.min_insync_replicas, self.replication_factor
            ));
        }
    }

    /// The broker-side settings every pipeline topic gets at creation.
    fn topic_configs(&self) -> [(&'static str, String); 2] {
        [
            ("min.insync.replicas", self.min_insync_replicas.to_string()),
            // An out-of-sync replica elected leader would drop acknowledged records.
            ("unclean.leader.election.enable", "false".to_string()),
        ]
    }
}

/// What was found or done for one topic.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TopicReport {
    /// Topic name.
    pub topic: String,
    /// Partitions after this run.
    pub partitions: i32,
    /// Replication factor (copies of partition 0; all partitions are checked).
    pub replication_factor: i32,
    /// `min.insync.replicas` as the broker reports it, when it could be read.
    pub min_insync_replicas: Option<i32>,
    /// What happened.
    pub action: TopicAction,
    /// Differences from the configuration that this run did not (or could not) fix.
    pub problems: Vec<String>,
}

/// What a run did to a topic.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum TopicAction {
    /// It was missing and has been created.
    Created,
    /// It had fewer partitions than configured and has been raised.
    PartitionsRaised,
    /// It already matched (or `--check` only looked).
    Unchanged,
    /// It is missing and `--check` did not create it.
    Missing,
}

/// Why provisioning could not run at all.
#[derive(Debug, thiserror::Error)]
pub enum TopicsError {
    /// The admin client could not be created.
    #[error("cannot create the Kafka admin client: {0}")]
    Client(KafkaError),
    /// The cluster did not answer.
    #[error("cannot read cluster metadata from {bootstrap}: {source}")]
    Metadata {
        /// Where we asked.
        bootstrap: String,
        /// Why it failed.
        source: KafkaError,
    },
    /// The cluster has fewer brokers than copies asked for.
    #[error(
        "topics.replication_factor is {wanted} but the cluster has {brokers} broker(s); \
         lower it (1 only for a single-broker development setup) or add brokers"
    )]
    TooFewBrokers {
        /// Configured replication factor.
        wanted: i32,
        /// Brokers the cluster reports.
        brokers: usize,
    },
    /// An admin request failed.
    #[error("{op} {topic}: {reason}")]
    Admin {
        /// What was attempted.
        op: &'static str,
        /// On which topic.
        topic: String,
        /// The broker's or client's answer.
        reason: String,
    },
}

/// Makes `topics` exist as configured; with `check_only`, only looks. Never lowers partitions,
/// never changes a replication factor (both would need a reassignment an operator plans) and
/// never rewrites topic configs of existing topics (the non-incremental AlterConfigs request
/// would reset every other dynamic setting): those differences are reported as problems.
pub async fn provision(
    kafka: &KafkaConfig,
    layout: &TopicsConfig,
    topics: &[&str],
    check_only: bool,
    timeout: Duration,
) -> Result<Vec<TopicReport>, TopicsError> {
    let admin: AdminClient<DefaultClientContext> = kafka
        .admin_config("topics")
        .create()
        .map_err(TopicsError::Client)?;
    let options = AdminOptions::new()
        .request_timeout(Some(timeout))
        .operation_timeout(Some(timeout));
    let existing = describe(&admin, kafka, timeout)?;
    if !check_only && existing.brokers < layout.replication_factor as usize {
        return Err(TopicsError::TooFewBrokers {
            wanted: layout.replication_factor,
            brokers: existing.brokers,
        });
    }

    let mut reports = Vec::with_capacity(topics.len());
    for &topic in topics {
        let report = match existing.topics.get(topic) {
            None if check_only => TopicReport {
                topic: topic.to_string(),
                partitions: 0,
                replication_factor: 0,
                min_insync_replicas: None,
                action: TopicAction::Missing,
                problems: vec!["missing".into()],
            },
            None => {
                let configs = layout.topic_configs();
                let mut new = NewTopic::new(
                    topic,
                    layout.partitions,
                    TopicReplication::Fixed(layout.replication_factor),
                );
                for (k, v) in &configs {
                    new = new.set(k, v);
                }
                admin_result("create", topic, admin.create_topics([&new], &options).await)?;
                TopicReport {
                    topic: topic.to_string(),
                    partitions: layout.partitions,
                    replication_factor: layout.replication_factor,
                    min_insync_replicas: Some(layout.min_insync_replicas),
                    action: TopicAction::Created,
                    problems: Vec::new(),
                }
            }
            Some(found) => {
                let mut problems = Vec::new();
                let mut partitions = found.partitions;
                let mut action = TopicAction::Unchanged;
                if found.partitions < layout.partitions {
                    if check_only {
                        problems.push(format!(
                            "{} partitions, configured {}",
                            found.partitions, layout.partitions
                        ));
                    } else {
                        let more = NewPartitions::new(topic, layout.partitions as usize);
                        admin_result(
                            "raise partitions of",
                            topic,
                            admin.create_partitions([&more], &options).await,
                        )?;
                        partitions = layout.partitions;
                        action = TopicAction::PartitionsRaised;
                    }
                } else if found.partitions > layout.partitions {
                    problems.push(format!(
                        "{} partitions, configured {} (partitions are never removed)",
                        found.partitions, layout.partitions
                    ));
                }
                if found.min_replicas != layout.replication_factor
                    || found.max_replicas != layout.replication_factor
                {
                    problems.push(format!(
                        "replication factor {}, configured {} (change it with a partition reassignment)",
                        found.min_replicas, layout.replication_factor
                    ));
                }
                TopicReport {
                    topic: topic.to_string(),
                    partitions,
                    replication_factor: found.min_replicas,
                    min_insync_replicas: None,
                    action,
                    problems,
                }
            }
        };
        reports.push(report);
    }
    read_min_insync(&admin, &options, layout, &mut reports).await;
    Ok(reports)
}

struct Found {
    partitions: i32,
    min_replicas: i32,
    max_replicas: i32,
}

struct ClusterState {
    brokers: usize,
    topics: BTreeMap<String, Found>,
}

fn describe(
    admin: &AdminClient<DefaultClientContext>,
    kafka: &KafkaConfig,
    timeout: Duration,
) -> Result<ClusterState, TopicsError> {
    let md = admin
        .inner()
        .fetch_metadata(None, timeout)
        .map_err(|source| TopicsError::Metadata {
            bootstrap: kafka.bootstrap_servers.clone(),
            source,
        })?;
    let topics = md
        .topics()
        .iter()
        .filter(|t| t.error().is_none() && !t.partitions().is_empty())
        .map(|t| {
            let copies = t.partitions().iter().map(|p| p.replicas().len() as i32);
            let found = Found {
                partitions: t.partitions().len() as i32,
                min_replicas: copies.clone().min().unwrap_or(0),
                max_replicas: copies.max().unwrap_or(0),
            };
            (t.name().to_string(), found)
        })
        .collect();
    Ok(ClusterState {
        brokers: md.brokers().len(),
        topics,
    })
}

/// Fills in `min.insync.replicas` and flags a topic whose value is below the configured one.
/// Best effort: a broker that refuses DescribeConfigs (ACLs) leaves the column empty.
async fn read_min_insync(
    admin: &AdminClient<DefaultClientContext>,
    options: &AdminOptions,
    layout: &TopicsConfig,
    reports: &mut [TopicReport],
) {
    let present: Vec<String> = reports
        .iter()
        .filter(|r| r.action != TopicAction::Missing)
        .map(|r| r.topic.clone())
        .collect();
    let specs: Vec<ResourceSpecifier<'_>> = present
        .iter()
        .map(|t| ResourceSpecifier::Topic(t))
        .collect();
    let Ok(results) = admin.describe_configs(specs.iter(), options).await else {
        return;
    };
    for (topic, result) in present.iter().zip(results) {
        let Ok(resource) = result else { continue };
        let value = resource
            .get("min.insync.replicas")
            .and_then(|e| e.value.as_deref())
            .and_then(|v| v.parse::<i32>().ok());
        if let Some(report) = reports.iter_mut().find(|r| &r.topic == topic) {
            report.min_insync_replicas = value;
            if let Some(v) = value.filter(|v| *v < layout.min_insync_replicas) {
                report.problems.push(format!(
                    "min.insync.replicas {v}, configured {}",
                    layout.min_insync_replicas
                ));
            }
        }
    }
}

fn admin_result(
    op: &'static str,
    topic: &str,
    result: Result<Vec<TopicResult>, KafkaError>,
) -> Result<(), TopicsError> {
    let fail = |reason: String| TopicsError::Admin {
        op,
        topic: topic.to_string(),
        reason,
    };
    for r in result.map_err(|e| fail(e.to_string()))? {
        match r {
            Ok(_) => {}
            // Another instance created it between our describe and create: the goal is met.
            Err((_, rdkafka::types::RDKafkaErrorCode::TopicAlreadyExists)) if op == "create" => {}
            Err((_, code)) => return Err(fail(code.to_string())),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_survive_a_broker_loss() {
        let c = TopicsConfig::default();
        let mut errors = Vec::new();
        c.validate(&mut errors);
        assert!(errors.is_empty(), "{errors:?}");
        assert!(c.replication_factor >= 3 && c.min_insync_replicas >= 2);
    }

    #[test]
    fn every_bad_value_is_listed_with_its_key() {
        let c = TopicsConfig {
            partitions: 0,
            replication_factor: 2,
            min_insync_replicas: 3,
        };
        let mut errors = Vec::new();
        c.validate(&mut errors);
        assert_eq!(errors.len(), 2, "{errors:?}");
        assert!(errors[0].starts_with("topics.partitions"));
        assert!(errors[1].starts_with("topics.min_insync_replicas"));
    }
}
