//! Prints a few generated events with their labels: `cargo run -p pingan-sim --example sample -- [N] [SEED]`.
#![allow(clippy::print_stdout, clippy::unwrap_used)]

use pingan_domain::qr::QrSigner;
use pingan_sim::{Body, Generator, GeneratorSettings};

fn main() {
    let mut args = std::env::args().skip(1);
    let n: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(20);
    let seed: u64 = args.next().and_then(|a| a.parse().ok()).unwrap_or(1);
    let start = chrono::DateTime::parse_from_rfc3339("2019-12-31T08:00:00+08:00").unwrap();
    let signer = QrSigner::single("dev", b"pingan-dev-qr-key-not-for-production");
    let generator = Generator::new(GeneratorSettings::new(seed, start, signer)).unwrap();
    for ev in generator.take(n) {
        let (channel, text) = match &ev.body {
            Body::Call(c) => ("call", c.description.clone()),
            Body::Qr(q) => ("qr  ", q.description.clone()),
        };
        println!(
            "{} {channel} {:<24} {} {}",
            ev.event_time.format("%m-%d %H:%M"),
            ev.label.subtype,
            ev.label.town_code,
            text
        );
    }
}
