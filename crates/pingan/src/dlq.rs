//! `pingan dlq list|show|replay`: the dead letters the aggregator stored in ClickHouse.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use chrono::{NaiveDate, NaiveDateTime, TimeZone};
use clap::{Args, Subcommand};
use pingan_pipeline::producer::{OutRecord, Publisher};
use pingan_warehouse::dead_letters::{self, Filter, Listed, ReplayRow};

use crate::config::PinganConfig;

/// What `pingan dlq` does.
#[derive(Debug, Subcommand)]
pub(crate) enum DlqCommand {
    /// List dead letters, oldest first: when, stage, reason, id (origin topic/partition/offset),
    /// event id, how often replayed, and the error. Example:
    /// pingan dlq list --reason clickhouse_rejected --since 2026-12-06 --pending
    List {
        #[command(flatten)]
        filter: FilterArgs,
        /// One JSON object per line (payload as text) instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Show one dead letter in full: headers, error, replays and its payload. Example:
    /// pingan dlq show pingan.enriched.v1/3/120455 --raw > letter.json
    Show {
        /// The dead letter: origin `topic/partition/offset`, as `list` prints it.
        id: String,
        /// Write only the payload bytes, exactly as stored (to edit and replay with --payload).
        #[arg(long)]
        raw: bool,
    },
    /// Publish dead letters back to their origin topic, after the cause was fixed, so they take
    /// the normal path again. Every count pingan serves is a distinct count of event_id, so a
    /// record that arrives again is never counted twice; each replay is also recorded and a
    /// letter already replayed is skipped unless --again. Examples:
    /// pingan dlq replay --reason clickhouse_rejected --since 2026-12-06 (after fixing the
    /// server); pingan dlq replay pingan.enriched.v1/3/120455 --payload fixed.json (a corrected
    /// record).
    Replay {
        /// Dead letters to replay by id (`topic/partition/offset`); or select them with filters.
        ids: Vec<String>,
        #[command(flatten)]
        filter: FilterArgs,
        /// Replay every dead letter the filters select, even with no filter at all.
        #[arg(long)]
        all: bool,
        /// Publish this file's bytes instead of the stored payload (one id only): for a record
        /// whose own data was wrong. Get the original with `pingan dlq show ID --raw`.
        #[arg(long, value_name = "FILE")]
        payload: Option<PathBuf>,
        /// Replay letters that were replayed before too.
        #[arg(long)]
        again: bool,
        /// Print what would be replayed and stop.
        #[arg(long)]
        dry_run: bool,
        /// A note stored with the replay (who, which fix).
        #[arg(long, default_value = "")]
        note: String,
    },
}

/// Filters shared by `list` and `replay`.
#[derive(Debug, Args)]
pub(crate) struct FilterArgs {
    /// Origin topic, e.g. pingan.enriched.v1.
    #[arg(long)]
    topic: Option<String>,
    /// Reason code, e.g. invalid_json, schema_mismatch, unknown_subtype, clickhouse_rejected.
    #[arg(long)]
    reason: Option<String>,
    /// Stage that dead-lettered it: classifier or aggregator.
    #[arg(long)]
    stage: Option<String>,
    /// Dead-lettered at or after: 2026-12-06, "2026-12-06 10:00" (Shanghai time), an RFC 3339
    /// time, or an age such as 2h or 7d.
    #[arg(long, value_name = "TIME")]
    since: Option<String>,
    /// Dead-lettered before (same forms as --since).
    #[arg(long, value_name = "TIME")]
    until: Option<String>,
    /// Only letters never replayed.
    #[arg(long, conflicts_with = "replayed")]
    pending: bool,
    /// Only letters replayed at least once.
    #[arg(long)]
    replayed: bool,
    /// At most this many (0: all).
    #[arg(long, default_value_t = 100)]
    limit: u64,
}

/// Exit code for bad arguments.
const EXIT_USAGE: u8 = 2;

fn now() -> i64 {
    chrono::Utc::now().timestamp()
}

/// Parses a time argument into Unix seconds (see `--since`).
fn parse_time(s: &str, now: i64) -> Result<u32, String> {
    let s = s.trim();
    let unit = |c: char| match c {
        'm' => Some(60),
        'h' => Some(3_600),
        'd' => Some(86_400),
        _ => None,
    };
    let secs = if let Some(mult) = s.chars().last().and_then(unit)
        && let Ok(n) = s[..s.len() - 1].parse::<i64>()
    {
        now - n * mult
    } else if let Ok(t) = chrono::DateTime::parse_from_rfc3339(s) {
        t.timestamp()
    } else {
        let tz = pingan_domain::time::shanghai();
        let naive = NaiveDateTime::parse_from_str(s, "%Y-%m-%d %H:%M:%S")
            .or_else(|_| NaiveDateTime::parse_from_str(s, "%Y-%m-%d %H:%M"))
            .or_else(|_| NaiveDateTime::parse_from_str(s, "%Y-%m-%dT%H:%M:%S"))
            .or_else(|_| NaiveDateTime::parse_from_str(s, "%Y-%m-%dT%H:%M"))
            .or_else(|_| {
                NaiveDate::parse_from_str(s, "%Y-%m-%d").map(|d| d.and_time(Default::default()))
            })
            .map_err(|_| {
                format!(
                    "{s:?} is not a time: use 2026-12-06, \"2026-12-06 10:00\", RFC 3339, or an age like 2h / 7d"
                )
            })?;
        tz.from_local_datetime(&naive)
            .single()
            .map(|t| t.timestamp())
            .ok_or_else(|| format!("{s:?} is not a valid Shanghai time"))?
    };
    u32::try_from(secs).map_err(|_| format!("{s:?} is outside 1970..2106"))
}

impl FilterArgs {
    fn filter(&self) -> Result<Filter, String> {
        let now = now();
        Ok(Filter {
            topic: self.topic.clone(),
            reason: self.reason.clone(),
            stage: self.stage.clone(),
            since: self
                .since
                .as_deref()
                .map(|s| parse_time(s, now))
                .transpose()?,
            until: self
                .until
                .as_deref()
                .map(|s| parse_time(s, now))
                .transpose()?,
            at: None,
            replayed: if self.pending {
                Some(false)
            } else if self.replayed {
                Some(true)
            } else {
                None
            },
            limit: self.limit,
        })
    }

    fn is_empty(&self) -> bool {
        self.topic.is_none()
            && self.reason.is_none()
            && self.stage.is_none()
            && self.since.is_none()
            && self.until.is_none()
    }
}

fn local_time(unix: u32) -> String {
    if unix == 0 {
        return "-".into();
    }
    pingan_domain::time::shanghai()
        .timestamp_opt(i64::from(unix), 0)
        .single()
        .map_or_else(
            || unix.to_string(),
            |t| t.format("%Y-%m-%d %H:%M:%S").to_string(),
        )
}

fn short(text: &str, max: usize) -> String {
    let one_line = text.replace(['\n', '\t'], " ");
    if one_line.chars().count() <= max {
        one_line
    } else {
        let cut: String = one_line.chars().take(max - 1).collect();
        format!("{cut}…")
    }
}

fn usage_error(what: &str) -> ExitCode {
    let _ = writeln!(std::io::stderr(), "pingan dlq: {what}");
    ExitCode::from(EXIT_USAGE)
}

/// Runs `pingan dlq …`.
pub(crate) fn run(config: &PinganConfig, command: DlqCommand) -> ExitCode {
    let client = pingan_warehouse::client(&config.clickhouse, pingan_warehouse::Role::Writer);
    match command {
        DlqCommand::List { filter, json } => {
            let filter = match filter.filter() {
                Ok(f) => f,
                Err(e) => return usage_error(&e),
            };
            crate::commands::block_on("dlq list", async move {
                let letters = dead_letters::list(&client, &filter).await?;
                print_list(&letters, json);
                Ok::<(), clickhouse::error::Error>(())
            })
        }
        DlqCommand::Show { id, raw } => {
            let Some(at) = dead_letters::parse_id(&id) else {
                return usage_error(&format!(
                    "{id:?} is not a dead letter id (topic/partition/offset, as `pingan dlq list` prints it)"
                ));
            };
            crate::commands::block_on("dlq show", async move {
                let letters = dead_letters::list(
                    &client,
                    &Filter {
                        at: Some(at),
                        ..Filter::default()
                    },
                )
                .await
                .map_err(|e| e.to_string())?;
                let Some(l) = letters.first() else {
                    return Err(format!("no dead letter {id}"));
                };
                let mut out = std::io::stdout().lock();
                if raw {
                    let _ = out.write_all(&l.payload);
                } else {
                    let _ = writeln!(out, "id            {}", l.id());
                    let _ = writeln!(out, "dead-lettered {}", local_time(l.stored_at));
                    let _ = writeln!(out, "stage         {}", l.stage);
                    let _ = writeln!(out, "reason        {}", l.reason);
                    let _ = writeln!(out, "error         {}", l.message);
                    let _ = writeln!(out, "key           {}", String::from_utf8_lossy(&l.key));
                    let _ = writeln!(
                        out,
                        "event id      {}",
                        dead_letters::event_id(&l.payload).unwrap_or_else(|| "-".into())
                    );
                    let _ = writeln!(
                        out,
                        "replays       {} (last {})",
                        l.replays,
                        local_time(l.last_replayed_at)
                    );
                    let _ = writeln!(out, "payload       {} bytes:", l.payload.len());
                    let _ = writeln!(out, "{}", String::from_utf8_lossy(&l.payload));
                }
                Ok(())
            })
        }
        DlqCommand::Replay {
            ids,
            filter,
            all,
            payload,
            again,
            dry_run,
            note,
        } => {
            let mut base = match filter.filter() {
                Ok(f) => f,
                Err(e) => return usage_error(&e),
            };
            if ids.is_empty() && filter.is_empty() && !all {
                return usage_error(
                    "name the dead letters to replay: ids, filters (--reason, --topic, --since …), or --all",
                );
            }
            if payload.is_some() && ids.len() != 1 {
                return usage_error(
                    "--payload replaces the bytes of exactly one dead letter: give one id",
                );
            }
            let mut at = Vec::new();
            for id in &ids {
                match dead_letters::parse_id(id) {
                    Some(a) => at.push(a),
                    None => {
                        return usage_error(&format!(
                            "{id:?} is not a dead letter id (topic/partition/offset)"
                        ));
                    }
                }
            }
            let fixed = match &payload {
                Some(path) => match std::fs::read(path) {
                    Ok(b) => Some(b),
                    Err(e) => return usage_error(&format!("--payload {}: {e}", path.display())),
                },
                None => None,
            };
            if !again {
                base.replayed = Some(false);
            }
            let kafka = config.kafka.clone();
            crate::commands::block_on("dlq replay", async move {
                replay(&client, &kafka, base, at, fixed, dry_run, &note).await
            })
        }
    }
}

fn print_list(letters: &[Listed], json: bool) {
    let mut out = std::io::stdout().lock();
    if json {
        for l in letters {
            let v = serde_json::json!({
                "id": l.id(),
                "dead_lettered_at": l.stored_at,
                "stage": l.stage,
                "reason": l.reason,
                "message": l.message,
                "topic": l.topic,
                "partition": l.partition,
                "offset": l.offset,
                "event_id": dead_letters::event_id(&l.payload),
                "replays": l.replays,
                "payload": String::from_utf8_lossy(&l.payload),
            });
            let _ = writeln!(out, "{v}");
        }
        return;
    }
    let _ = writeln!(
        out,
        "{:<19}  {:<10}  {:<20}  {:<32}  {:<36}  {:>7}  ERROR",
        "DEAD-LETTERED", "STAGE", "REASON", "ID", "EVENT", "REPLAYS"
    );
    for l in letters {
        let _ = writeln!(
            out,
            "{:<19}  {:<10}  {:<20}  {:<32}  {:<36}  {:>7}  {}",
            local_time(l.stored_at),
            l.stage,
            l.reason,
            l.id(),
            dead_letters::event_id(&l.payload).unwrap_or_else(|| "-".into()),
            l.replays,
            short(&l.message, 60)
        );
    }
    let _ = writeln!(out, "{} dead letter(s)", letters.len());
}

/// Publishes the selected letters to their origin topics and records each replay.
async fn replay(
    client: &clickhouse::Client,
    kafka: &pingan_pipeline::client::KafkaConfig,
    base: Filter,
    at: Vec<(String, u16, u64)>,
    fixed: Option<Vec<u8>>,
    dry_run: bool,
    note: &str,
) -> Result<(), String> {
    let mut letters = Vec::new();
    let mut skipped = Vec::new();
    if at.is_empty() {
        letters = dead_letters::list(client, &base)
            .await
            .map_err(|e| e.to_string())?;
    } else {
        for a in at {
            let id = format!("{}/{}/{}", a.0, a.1, a.2);
            let one = Filter {
                at: Some(a),
                ..base.clone()
            };
            let found = dead_letters::list(client, &one)
                .await
                .map_err(|e| e.to_string())?;
            match found.into_iter().next() {
                Some(l) => letters.push(l),
                None if base.replayed == Some(false) => skipped.push(id),
                None => return Err(format!("no dead letter {id}")),
            }
        }
    }
    let mut out = std::io::stdout().lock();
    for id in &skipped {
        let _ = writeln!(
            out,
            "skipped {id}: unknown or already replayed (see `pingan dlq show {id}`; --again to replay it again)"
        );
    }
    if letters.is_empty() {
        let _ = writeln!(out, "nothing to replay");
        return Ok(());
    }
    for l in &letters {
        let _ = writeln!(
            out,
            "{} {} → {} ({}, event {})",
            if dry_run { "would replay" } else { "replaying" },
            l.id(),
            l.topic,
            l.reason,
            dead_letters::event_id(fixed.as_deref().unwrap_or(&l.payload))
                .unwrap_or_else(|| "-".into())
        );
    }
    if dry_run {
        return Ok(());
    }
    let publisher =
        Publisher::new(kafka, "dlq-replay", Duration::from_secs(30)).map_err(|e| e.to_string())?;
    let ids: Vec<String> = letters.iter().map(Listed::id).collect();
    let headers: Vec<[(&str, &[u8]); 1]> = ids
        .iter()
        .map(|id| [("x-pingan-replay-of", id.as_bytes())])
        .collect();
    // Acknowledged by the broker (idempotent producer) before the replay is recorded: a crash
    // in between means a second replay publishes again, which event_id identity absorbs.
    publisher
        .publish(letters.iter().enumerate().map(|(i, l)| OutRecord {
            topic: &l.topic,
            key: (!l.key.is_empty()).then_some(l.key.as_slice()),
            payload: fixed.as_deref().unwrap_or(&l.payload),
            headers: &headers[i],
        }))
        .await
        .map_err(|e| format!("publishing to kafka failed, nothing recorded: {e}"))?;
    let _ = publisher.flush(Duration::from_secs(5));
    let replayed_at = u32::try_from(now()).unwrap_or(0);
    let rows: Vec<ReplayRow> = letters
        .iter()
        .map(|l| ReplayRow {
            topic: l.topic.clone(),
            partition: l.partition,
            offset: l.offset,
            replayed_at,
            edited: u8::from(fixed.is_some()),
            note: note.to_owned(),
        })
        .collect();
    dead_letters::record_replays(client, &rows)
        .await
        .map_err(|e| format!("replayed, but recording the replay failed: {e}"))?;
    let _ = writeln!(out, "replayed {} dead letter(s)", letters.len());
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_parse_in_shanghai_and_as_ages() {
        // 2026-12-06 00:00 +08:00
        assert_eq!(parse_time("2026-12-06", 0), Ok(1_796_486_400));
        assert_eq!(
            parse_time("2026-12-06 10:00", 0),
            Ok(1_796_486_400 + 36_000)
        );
        assert_eq!(
            parse_time("2026-12-06T02:00:00Z", 0),
            Ok(1_796_486_400 + 36_000)
        );
        assert_eq!(parse_time("2h", 10_000), Ok(10_000 - 7_200));
        assert_eq!(parse_time("7d", 1_000_000), Ok(1_000_000 - 604_800));
        assert!(parse_time("yesterday", 0).is_err());
    }

    #[test]
    fn long_errors_are_cut_on_one_line() {
        assert_eq!(short("a\nb", 10), "a b");
        assert_eq!(short("abcdefghijkl", 5), "abcd…");
    }
}
