//! Throughput of the text classifier: `classify` alone, `keywords` alone, and
//! both, over the texts of `schemas/classifier/eval.jsonl`.
//!
//! Run with `cargo run --release -p pingan-classifier --example text_bench`.
#![allow(clippy::print_stdout)]

use std::time::Instant;

use pingan_classifier::text::{TextClassifier, TextInput};

const EVAL_SET: &str = include_str!("../../../schemas/classifier/eval.jsonl");

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let started = Instant::now();
    let clf = TextClassifier::builtin()?;
    println!("build: {:.0} ms", started.elapsed().as_secs_f64() * 1e3);

    let short: Vec<String> = EVAL_SET
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter_map(|v| v["text"].as_str().map(str::to_owned))
        .collect();
    // Eval texts are short; joining three gives the 30–80 char range of
    // typical operator notes.
    let long: Vec<String> = short.chunks(3).map(|c| c.join("，")).collect();
    for texts in [&short, &long] {
        run(&clf, texts);
    }
    Ok(())
}

fn run(clf: &TextClassifier, texts: &[String]) {
    let chars: usize = texts.iter().map(|t| t.chars().count()).sum();
    println!(
        "\n{} texts, mean {:.1} chars",
        texts.len(),
        chars as f64 / texts.len() as f64
    );

    let rounds = 200;
    let total = (rounds * texts.len()) as f64;
    let mut sink = 0usize;

    let t = Instant::now();
    for _ in 0..rounds {
        for text in texts {
            sink += clf.classify(&TextInput::new(text)).evidence.len();
        }
    }
    println!(
        "classify:          {:>9.0} texts/s",
        total / t.elapsed().as_secs_f64()
    );

    let t = Instant::now();
    for _ in 0..rounds {
        for text in texts {
            sink += clf.keywords(text, 10).len();
        }
    }
    println!(
        "keywords:          {:>9.0} texts/s",
        total / t.elapsed().as_secs_f64()
    );

    let t = Instant::now();
    for _ in 0..rounds {
        for text in texts {
            sink += clf.classify(&TextInput::new(text)).evidence.len();
            sink += clf.keywords(text, 10).len();
        }
    }
    println!(
        "classify+keywords: {:>9.0} texts/s",
        total / t.elapsed().as_secs_f64()
    );
    println!("(checksum {sink})");
}
