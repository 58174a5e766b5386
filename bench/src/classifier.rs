//! Step 1: the classifier on one core, offline.
//!
//! In process: `Enricher::enrich` over simulated records (classification, location, routing,
//! keywords), with the model and with the rules alone, best of three interleaved rounds. As a
//! command: `pingan classify --stdin` over the same records as JSON lines (parsing and writing
//! included), pinned to one core with `taskset` where it exists, model and `--rules-only`.

use std::io::Write;
use std::process::{Command, Stdio};
use std::time::Instant;

use chrono::Utc;
use pingan_classifier::enrich::{Enricher, RawEvent};
use pingan_classifier::text::TextClassifier;
use pingan_domain::events::EnrichedEvent;
use pingan_sim::Body;
use pingan_sim::target::{call_record, qr_record};
use serde_json::{Value, json};

use crate::Ctx;
use crate::util::{generator_since, step};

/// Records per measurement.
const RECORDS: usize = 20_000;
/// Lines fed to `pingan classify --stdin`.
const STDIN_LINES: usize = 100_000;

/// The figures, and the enriched events (with the model) for the later steps.
pub(crate) async fn run(ctx: &Ctx) -> (Value, Vec<EnrichedEvent>) {
    step("classifier texts/s (offline, one core)");
    // 20,000 records at the district's volume span about 15 days: start 30 days back, so none
    // lies in the future (`classify --stdin` validates like ingest and refuses those).
    let events: Vec<_> = generator_since(&ctx.ingest, 1.0, 1, chrono::Duration::days(30))
        .take(RECORDS)
        .collect();
    let raws: Vec<RawEvent> = events
        .iter()
        .map(|e| match &e.body {
            Body::Call(c) => {
                RawEvent::Call(call_record(c, e.event_id, Utc::now(), &ctx.ingest.hasher))
            }
            Body::Qr(q) => RawEvent::Qr(qr_record(q, e.event_id, e.event_time, &ctx.ingest.hasher)),
        })
        .collect();
    let mut with_model = Enricher::builtin().unwrap();
    let mut rules = Enricher::with_text(TextClassifier::rules_only().unwrap()).unwrap();
    let mut best = [f64::MAX; 2];
    let mut enriched: Vec<EnrichedEvent> = Vec::new();
    let mut agree = [0usize; 2];
    for round in 0..3 {
        for (i, enricher) in [&mut with_model, &mut rules].into_iter().enumerate() {
            let t = Instant::now();
            let out: Vec<EnrichedEvent> = raws.iter().map(|r| enricher.enrich(r).0).collect();
            best[i] = best[i].min(t.elapsed().as_secs_f64());
            if round == 0 {
                agree[i] = out
                    .iter()
                    .zip(&events)
                    .filter(|(o, e)| o.subtype == e.label.subtype)
                    .count();
                if i == 0 {
                    enriched = out;
                }
            }
        }
    }
    let n = raws.len() as f64;
    let stdin = stdin_rates(ctx, &events);
    let v = json!({
        "texts_per_sec_one_core": n / best[0],
        "rules_only_texts_per_sec_one_core": n / best[1],
        "agrees_with_intended_subtype": agree[0] as f64 / n,
        "rules_only_agrees_with_intended_subtype": agree[1] as f64 / n,
        "classifier_version": enriched.first().map(|e| e.classifier_version.clone()),
        "stdin": stdin,
    });
    println!(
        "classifier: {:.0} texts/s on one core with the model, {:.0} rules alone; simulated labels agree {:.1}% / {:.1}%; classify --stdin {} / {} lines/s",
        n / best[0],
        n / best[1],
        100.0 * agree[0] as f64 / n,
        100.0 * agree[1] as f64 / n,
        v["stdin"]["lines_per_sec"]
            .as_f64()
            .unwrap_or(f64::NAN)
            .round(),
        v["stdin"]["rules_only_lines_per_sec"]
            .as_f64()
            .unwrap_or(f64::NAN)
            .round(),
    );
    (v, enriched)
}

/// `pingan classify --stdin` over the simulated records (repeated to [`STDIN_LINES`]), best of
/// three interleaved runs with the model and with `--rules-only`.
fn stdin_rates(ctx: &Ctx, events: &[pingan_sim::SimEvent]) -> Value {
    let lines: Vec<String> = events
        .iter()
        .filter_map(|e| match &e.body {
            Body::Call(c) => serde_json::to_string(c).ok(),
            Body::Qr(q) => serde_json::to_string(q).ok(),
        })
        .collect();
    let mut input = String::new();
    for line in lines.iter().cycle().take(STDIN_LINES) {
        input.push_str(line);
        input.push('\n');
    }
    let pinned = Command::new("taskset")
        .args(["-c", "0", "true"])
        .status()
        .is_ok_and(|s| s.success());
    let run = |extra: &[&str]| -> Option<f64> {
        let mut cmd = if pinned {
            let mut c = Command::new("taskset");
            c.args(["-c", "0"]).arg(&ctx.bin);
            c
        } else {
            Command::new(&ctx.bin)
        };
        let mut child = cmd
            .args(["classify", "--stdin"])
            .args(extra)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .ok()?;
        let t = Instant::now();
        let mut stdin = child.stdin.take()?;
        let stdout = child.stdout.take()?;
        let feed = input.clone();
        let writer = std::thread::spawn(move || stdin.write_all(feed.as_bytes()));
        // Every line must come back classified: a rejected line costs almost nothing, so a
        // rate over rejected input would be a wrong figure, not a fast one.
        let reader = std::thread::spawn(move || {
            use std::io::BufRead;
            let (mut ok, mut rejected) = (0usize, 0usize);
            for line in std::io::BufReader::new(stdout)
                .lines()
                .map_while(Result::ok)
            {
                if line.starts_with("{\"error\"") {
                    rejected += 1;
                } else {
                    ok += 1;
                }
            }
            (ok, rejected)
        });
        let _ = writer.join();
        let (ok, rejected) = reader.join().ok()?;
        let exited = child.wait().ok()?.success();
        let elapsed = t.elapsed().as_secs_f64();
        if rejected > 0 || ok != STDIN_LINES {
            eprintln!(
                "    classify --stdin {extra:?}: {ok} classified, {rejected} rejected of {STDIN_LINES}: no rate reported"
            );
            return None;
        }
        exited.then(|| STDIN_LINES as f64 / elapsed)
    };
    let mut best = [0.0f64; 2];
    for _ in 0..3 {
        for (i, extra) in [&[][..], &["--rules-only"][..]].iter().enumerate() {
            best[i] = best[i].max(run(extra).unwrap_or(0.0));
        }
    }
    json!({
        "lines": STDIN_LINES,
        "pinned_to_one_core": pinned,
        "lines_per_sec": best[0],
        "rules_only_lines_per_sec": best[1],
    })
}
