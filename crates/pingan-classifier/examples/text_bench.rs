//! Throughput of the text classifier on one core: the rules alone, the rules with the model,
//! and the keyword segmenter, over the training corpus texts (`schemas/classifier/corpus/train`).
//! Each figure is the best of five interleaved rounds, so a busy moment on a shared machine
//! hurts every variant alike instead of one.
//!
//! Run with `cargo run --release -p pingan-classifier --example text_bench`.
#![allow(clippy::print_stdout)]

use std::time::Instant;

use pingan_classifier::model::TrainingSet;
use pingan_classifier::text::{TextClassifier, TextInput};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../schemas/classifier");
    let set = TrainingSet::read(&[root.join("corpus/train")])?;
    let started = Instant::now();
    let model = TextClassifier::builtin()?;
    println!(
        "build: {:.0} ms ({})",
        started.elapsed().as_secs_f64() * 1e3,
        model.version()
    );
    let rules = TextClassifier::rules_only()?;
    let inputs: Vec<TextInput<'_>> = set.cases.iter().map(|c| c.input()).collect();
    let chars: usize = set.cases.iter().map(|c| c.text.chars().count()).sum();
    println!(
        "{} texts, mean {:.1} chars",
        inputs.len(),
        chars as f64 / inputs.len() as f64
    );
    let mut best = [f64::MAX; 3];
    let mut sink = 0usize;
    for _ in 0..5 {
        let t = Instant::now();
        for i in &inputs {
            sink += rules.classify(i).evidence.len();
        }
        best[0] = best[0].min(t.elapsed().as_secs_f64());
        let t = Instant::now();
        for i in &inputs {
            sink += model.classify(i).features.len();
        }
        best[1] = best[1].min(t.elapsed().as_secs_f64());
        let t = Instant::now();
        for i in &inputs {
            sink += model.keywords(i.text, 8).len();
        }
        best[2] = best[2].min(t.elapsed().as_secs_f64());
    }
    let n = inputs.len() as f64;
    for (name, secs) in ["rules alone", "rules + model", "keywords"]
        .iter()
        .zip(best)
    {
        println!(
            "{name:<14} {:>9.0} texts/s  {:>6.2} µs/text",
            n / secs,
            secs / n * 1e6
        );
    }
    println!("(checksum {sink})");
    Ok(())
}
