//! `--amoc`: the activity-monitoring operating characteristic over many seeds (issue 22).
//!
//! For every seed, size and gate setting the harness streams the test weeks once with the
//! spikes injected, then reads several operating points off that one run: an alert "pages"
//! at an operating point when it reaches the point's level (yellow, orange or red; an
//! escalation's `updated_at` is when it got there). A stricter level is a higher threshold:
//! yellow p ≤ 1e-4 and ratio ≥ 1.5, orange p ≤ 1e-6 and ratio ≥ 2, red p ≤ 1e-8 and
//! ratio ≥ 3 (hot spots and the burglary rule have their own yellow and orange gates, the
//! CUSUM its h, h + ln 100, h + ln 10⁴). A second run with every yellow gate 10× looser (CUSUM
//! h − ln 10) adds the point below the default. Reading orange from a run with yellow on is
//! exact up to noise control: a yellow alert's cooldown or nesting never holds back a higher
//! level, and group alerts are counted at their own level.
//!
//! False alerts are the alert keys of the same run that match no spike, per town per week —
//! the AMOC's x axis (a spike-free run gives about the same, see the README).
//!
//! ```text
//! evaluate --amoc --seeds 1001-1010 [--sizes 2,3,5] [--jobs 2] [--loose 10] [--shapes]
//!          [--readme README.md --section heldout]
//! ```

use std::collections::BTreeMap;
use std::error::Error;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

use pingan_detect::{AlertRecord, DetectConfig, Level, MethodChoice};

use crate::{
    BASELINE_WEEKS, Scenario, Sim, Spike, TEST_WEEKS, UNLINKED_SHARE, WEEK, arg, baseline,
    configure, inject, matches, run, schedule, shapes, unlinked_callers,
};

/// One operating point: which run (gates as configured, or yellow loosened) and from which
/// level an alert counts.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Point {
    name: &'static str,
    loose: bool,
    min: Level,
}

const POINTS: [Point; 4] = [
    Point {
        name: "yellow gates ×10 looser",
        loose: true,
        min: Level::Yellow,
    },
    Point {
        name: "**default** (yellow and up)",
        loose: false,
        min: Level::Yellow,
    },
    Point {
        name: "orange and up",
        loose: false,
        min: Level::Orange,
    },
    Point {
        name: "red only",
        loose: false,
        min: Level::Red,
    },
];

/// What one run gives at one minimum level.
#[derive(Debug, Clone, Default)]
struct Reading {
    /// Per spike: scenario, target window (s), delay (s) if detected.
    spikes: Vec<(Scenario, i64, Option<i64>)>,
    false_alerts: usize,
    /// False alerts created in the holiday week (shape runs).
    holiday_false: usize,
}

/// Key of a reading: seed, size (as tenths), loose run, minimum level.
type ReadingKey = (u64, u32, bool, Level);

/// The time alert `a` reached at least `min` (its first version at that level).
fn reached(a: &AlertRecord, min: Level) -> Option<i64> {
    (a.level >= min).then(|| {
        if a.version == 1 {
            a.created_at.timestamp()
        } else {
            a.updated_at.timestamp()
        }
    })
}

/// Delay to the first alert about `s` that reached `min`.
fn detection(alerts: &[AlertRecord], s: &Spike, min: Level) -> Option<i64> {
    alerts
        .iter()
        .filter(|a| matches(a, s))
        .filter_map(|a| reached(a, min))
        .filter(|t| *t >= s.start)
        .min()
        .map(|t| t - s.start)
}

/// Alert keys that reached `min` and are about no spike; and how many of them were created
/// in `[from, to)`.
fn false_alerts(
    alerts: &[AlertRecord],
    spikes: &[Spike],
    min: Level,
    span: (i64, i64),
) -> (usize, usize) {
    let mut keys: BTreeMap<&str, (bool, i64)> = BTreeMap::new();
    for a in alerts {
        let e = keys
            .entry(a.id.as_str())
            .or_insert((false, a.created_at.timestamp()));
        if a.level >= min && !spikes.iter().any(|s| matches(a, s)) {
            e.0 = true;
        }
    }
    // A key is false when none of its records is about a spike.
    for a in alerts {
        if spikes.iter().any(|s| matches(a, s))
            && let Some(e) = keys.get_mut(a.id.as_str())
        {
            e.0 = false;
        }
    }
    let f: Vec<i64> = keys.values().filter(|v| v.0).map(|v| v.1).collect();
    let in_span = f.iter().filter(|t| **t >= span.0 && **t < span.1).count();
    (f.len(), in_span)
}

/// Every yellow gate `factor` times looser, the CUSUM's h lower by ln `factor`.
fn loosen(cfg: &mut DetectConfig, factor: f64) {
    cfg.levels_gates.yellow.max_p *= factor;
    for g in cfg.gates_by_level.values_mut() {
        g.yellow.max_p = (g.yellow.max_p * factor).min(0.5);
    }
    for m in cfg.min_counts_by_subtype.values_mut() {
        if let Some(p) = m.yellow_max_p.as_mut() {
            *p = (*p * factor).min(0.5);
        }
    }
    cfg.cusum_threshold -= factor.ln();
    for h in cfg.cusum_threshold_by_level.values_mut() {
        *h -= factor.ln();
    }
}

/// Seeds from `1001-1010` or `1,7,42`.
fn seeds(v: &str) -> Result<Vec<u64>, Box<dyn Error>> {
    let mut out = Vec::new();
    for part in v.split(',').filter(|p| !p.is_empty()) {
        match part.split_once('-') {
            Some((a, b)) => out.extend(a.parse::<u64>()?..=b.parse::<u64>()?),
            None => out.push(part.parse()?),
        }
    }
    Ok(out)
}

/// `mean (min–max)` of `v`, each formatted by `f`.
fn spread(v: &[f64], f: impl Fn(f64) -> String) -> String {
    if v.is_empty() {
        return "–".to_owned();
    }
    let mean = v.iter().sum::<f64>() / v.len() as f64;
    let lo = v.iter().copied().fold(f64::INFINITY, f64::min);
    let hi = v.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    format!("{} ({}–{})", f(mean), f(lo), f(hi))
}

fn median(mut v: Vec<f64>) -> Option<f64> {
    if v.is_empty() {
        return None;
    }
    v.sort_by(f64::total_cmp);
    Some(v[v.len() / 2])
}

pub(crate) fn main(args: &[String]) -> Result<(), Box<dyn Error>> {
    let started = Instant::now();
    let seed_list = seeds(arg(args, "--seeds").unwrap_or("1001-1010"))?;
    let sizes: Vec<f64> = arg(args, "--sizes").map_or(vec![2.0, 3.0, 5.0], |v| {
        v.split(',').filter_map(|x| x.parse().ok()).collect()
    });
    let jobs: usize = arg(args, "--jobs")
        .and_then(|v| v.parse().ok())
        .unwrap_or(2);
    let loose_factor: f64 = arg(args, "--loose")
        .and_then(|v| v.parse().ok())
        .unwrap_or(10.0);
    let with_shapes = args.iter().any(|a| a == "--shapes");
    // Loose runs cost a run each; by default only at 3×.
    let loose_sizes: Vec<f64> = arg(args, "--loose-sizes").map_or(vec![3.0], |v| {
        v.split(',').filter_map(|x| x.parse().ok()).collect()
    });
    let points: Vec<Point> = POINTS
        .into_iter()
        .filter(|p| !p.loose || loose_factor > 1.0)
        .collect();
    let cfg = configure(args, MethodChoice::Auto)?;
    let mut loose_cfg = cfg.clone();
    loosen(&mut loose_cfg, loose_factor);
    loose_cfg.validate()?;

    let mut sim = Sim::new()?;
    if with_shapes {
        sim.holiday = Some(shapes::holiday_start());
    }
    let sim = sim;
    let next = AtomicUsize::new(0);
    let readings: Mutex<BTreeMap<ReadingKey, Reading>> = Mutex::new(BTreeMap::new());
    let failure: Mutex<Option<String>> = Mutex::new(None);
    let mut references: BTreeMap<u64, Vec<(Scenario, f64)>> = BTreeMap::new();
    for &seed in &seed_list {
        let spikes = if with_shapes {
            shapes::schedule(&sim, seed)
        } else {
            schedule(&sim, seed)
        };
        references.insert(
            seed,
            spikes.iter().map(|s| (s.scenario, s.reference)).collect(),
        );
    }
    let report = Report {
        args,
        sizes: &sizes,
        points: &points,
        references: &references,
        with_shapes,
        jobs,
        towns: sim.towns.len(),
    };
    let done: Mutex<Vec<u64>> = Mutex::new(Vec::new());
    let section = (arg(args, "--readme"), arg(args, "--section"));
    std::thread::scope(|scope| {
        for _ in 0..jobs.max(1) {
            scope.spawn(|| {
                while let Some(&seed) = seed_list.get(next.fetch_add(1, Ordering::SeqCst)) {
                    let result = (|| -> Result<(), Box<dyn Error>> {
                        let mut base = baseline(&sim, seed);
                        base.extend(unlinked_callers(&base, UNLINKED_SHARE, seed));
                        let spikes = if with_shapes {
                            shapes::schedule(&sim, seed)
                        } else {
                            schedule(&sim, seed)
                        };
                        for &k in &sizes {
                            let mut extra = inject(&sim, &spikes, k, seed);
                            if with_shapes {
                                extra.extend(shapes::background(&sim, &spikes, seed));
                            }
                            for loose in [false, true] {
                                if loose && (loose_factor <= 1.0 || !loose_sizes.contains(&k)) {
                                    continue;
                                }
                                let t0 = Instant::now();
                                let r = run(if loose { &loose_cfg } else { &cfg }, &base, &extra)?;
                                eprintln!(
                                    "amoc: seed {seed} size {k}× {} done in {:.0}s",
                                    if loose { "loose" } else { "default" },
                                    t0.elapsed().as_secs_f64()
                                );
                                let holiday = shapes::holiday_start();
                                for min in Level::ALL {
                                    let (f, hf) = false_alerts(
                                        &r.alerts,
                                        &spikes,
                                        min,
                                        (holiday, holiday + WEEK),
                                    );
                                    let reading = Reading {
                                        spikes: spikes
                                            .iter()
                                            .map(|s| {
                                                (
                                                    s.scenario,
                                                    s.scenario.target_window(),
                                                    detection(&r.alerts, s, min),
                                                )
                                            })
                                            .collect(),
                                        false_alerts: f,
                                        holiday_false: hf,
                                    };
                                    let mut all = readings.lock().map_err(|_| "poisoned")?;
                                    all.insert((seed, (k * 10.0) as u32, loose, min), reading);
                                }
                            }
                        }
                        // The report so far, so that a run cut short still leaves its seeds.
                        let all = readings.lock().map_err(|_| "poisoned")?;
                        let mut done = done.lock().map_err(|_| "poisoned")?;
                        done.push(seed);
                        done.sort_unstable();
                        if let (Some(path), Some(name)) = section {
                            let minutes = started.elapsed().as_secs_f64() / 60.0;
                            let partial = format!(
                                "*Partial: {} of {} seeds done.*\n\n{}",
                                done.len(),
                                seed_list.len(),
                                report.render(&all, &done, minutes)
                            );
                            write_section(path, name, &partial)?;
                        }
                        Ok(())
                    })();
                    if let Err(e) = result {
                        if let Ok(mut f) = failure.lock() {
                            *f = Some(format!("seed {seed}: {e}"));
                        }
                        return;
                    }
                }
            });
        }
    });
    if let Some(e) = failure.into_inner().map_err(|_| "poisoned")? {
        return Err(e.into());
    }
    let readings = readings.into_inner().map_err(|_| "poisoned")?;
    let minutes = started.elapsed().as_secs_f64() / 60.0;
    let out = report.render(&readings, &seed_list, minutes);
    print!("{out}");
    if let (Some(path), Some(section)) = (arg(args, "--readme"), arg(args, "--section")) {
        write_section(path, section, &out)?;
        eprintln!("amoc: wrote section {section} of {path}");
    }
    eprintln!("amoc: done in {minutes:.1} min");
    Ok(())
}

/// What the report needs besides the readings.
struct Report<'a> {
    args: &'a [String],
    sizes: &'a [f64],
    points: &'a [Point],
    /// Reference E per seed and scenario.
    references: &'a BTreeMap<u64, Vec<(Scenario, f64)>>,
    with_shapes: bool,
    jobs: usize,
    towns: usize,
}

impl Report<'_> {
    /// The markdown report over the seeds in `seed_list` (those finished so far).
    fn render(
        &self,
        readings: &BTreeMap<ReadingKey, Reading>,
        seed_list: &[u64],
        minutes: f64,
    ) -> String {
        let (args, sizes, points, with_shapes, jobs) = (
            self.args,
            self.sizes,
            self.points,
            self.with_shapes,
            self.jobs,
        );
        let mut references: BTreeMap<Scenario, Vec<f64>> = BTreeMap::new();
        for seed in seed_list {
            for (sc, e) in self.references.get(seed).into_iter().flatten() {
                references.entry(*sc).or_default().push(*e);
            }
        }
        let runs = readings
            .keys()
            .filter(|k| k.3 == Level::Yellow && seed_list.contains(&k.0))
            .count();
        let town_weeks = self.towns as f64 * TEST_WEEKS as f64;

        let scenarios: Vec<Scenario> = if with_shapes {
            shapes::SHAPES.to_vec()
        } else {
            Scenario::ALL.to_vec()
        };
        let mut out = String::new();
        let mut shown = Vec::new();
        let mut skip = false;
        for a in args.iter().skip(1) {
            if skip {
                skip = false;
            } else if a == "--readme" || a == "--section" {
                skip = true;
            } else {
                shown.push(a.as_str());
            }
        }
        out.push_str(&format!(
            "Generated by `evaluate {}` ({} seeds: {}; {runs} runs of {BASELINE_WEEKS} seeded + {TEST_WEEKS} streamed weeks; {minutes:.0} min wall time with {jobs} jobs).\n\n",
            shown.join(" "),
            seed_list.len(),
            seed_list
                .iter()
                .map(u64::to_string)
                .collect::<Vec<_>>()
                .join(", ")
        ));
        out.push_str("Reference *E* (mean over seeds): ");
        out.push_str(
            &scenarios
                .iter()
                .map(|s| {
                    let v = references.get(s).cloned().unwrap_or_default();
                    format!(
                        "{} {:.1} ({} per run)",
                        s.name(),
                        v.iter().sum::<f64>() / v.len().max(1) as f64,
                        v.len() / seed_list.len().max(1)
                    )
                })
                .collect::<Vec<_>>()
                .join(", "),
        );
        out.push_str(".\n\n");
        out.push_str("Cells are *mean over seeds (lowest–highest seed)*; \"pooled\" counts every instance of every seed. Delay: mean over seeds of each seed's median `created_at − start`, detected instances only.\n\n");
        out.push_str("| size | spike | operating point | false alerts / town / week | ≤ 1 window | ≤ 2 windows | ≤ 2 windows pooled | detected at all | median delay (min) |\n");
        out.push_str("|---|---|---|---|---|---|---|---|---|\n");
        for &k in sizes {
            let groups: Vec<Option<Scenario>> = scenarios
                .iter()
                .copied()
                .map(Some)
                .chain(std::iter::once(None))
                .collect();
            for group in groups {
                for p in points {
                    if !seed_list.iter().any(|seed| {
                        readings.contains_key(&(*seed, (k * 10.0) as u32, p.loose, p.min))
                    }) {
                        continue;
                    }
                    let (mut fa, mut w1, mut w2, mut det, mut delay) =
                        (Vec::new(), Vec::new(), Vec::new(), Vec::new(), Vec::new());
                    let (mut pooled2, mut pooled) = (0, 0);
                    for &seed in seed_list {
                        let Some(r) = readings.get(&(seed, (k * 10.0) as u32, p.loose, p.min))
                        else {
                            continue;
                        };
                        fa.push(r.false_alerts as f64 / town_weeks);
                        let mine: Vec<_> = r
                            .spikes
                            .iter()
                            .filter(|(s, _, _)| group.is_none_or(|g| g == *s))
                            .collect();
                        if mine.is_empty() {
                            continue;
                        }
                        let n = mine.len() as f64;
                        let within = |m: i64| {
                            mine.iter()
                                .filter(|(_, tw, d)| d.is_some_and(|d| d <= m * tw))
                                .count()
                        };
                        w1.push(100.0 * within(1) as f64 / n);
                        w2.push(100.0 * within(2) as f64 / n);
                        pooled2 += within(2);
                        pooled += mine.len();
                        det.push(100.0 * mine.iter().filter(|x| x.2.is_some()).count() as f64 / n);
                        if let Some(m) = median(
                            mine.iter()
                                .filter_map(|x| x.2.map(|d| d as f64 / 60.0))
                                .collect(),
                        ) {
                            delay.push(m);
                        }
                    }
                    let pct = |x: f64| format!("{x:.0} %");
                    let name = group.map_or(
                        if with_shapes {
                            "all shapes"
                        } else {
                            "all four"
                        },
                        Scenario::name,
                    );
                    out.push_str(&format!(
                        "| {k}× | {name} | {} | {} | {} | {} | {pooled2}/{pooled} | {} | {} |\n",
                        p.name,
                        spread(&fa, |x| format!("{x:.2}")),
                        spread(&w1, pct),
                        spread(&w2, pct),
                        spread(&det, pct),
                        spread(&delay, |x| format!("{x:.0}")),
                    ));
                }
            }
        }
        if with_shapes {
            let hf: Vec<f64> = seed_list
                .iter()
                .filter_map(|&seed| {
                    readings.get(&(
                        seed,
                        (sizes.first().copied().unwrap_or(3.0) * 10.0) as u32,
                        false,
                        Level::Yellow,
                    ))
                })
                .map(|r| r.holiday_false as f64 / self.towns as f64)
                .collect();
            out.push_str(&format!(
                "\nFalse alerts created in the holiday week (default point, per town): {}.\n",
                spread(&hf, |x| format!("{x:.2}"))
            ));
        }
        out
    }
}

/// Replaces the text between `<!-- amoc:SECTION:begin -->` and `<!-- amoc:SECTION:end -->`.
fn write_section(path: &str, section: &str, body: &str) -> Result<(), Box<dyn Error>> {
    let text = std::fs::read_to_string(path)?;
    let (begin, end) = (
        format!("<!-- amoc:{section}:begin -->"),
        format!("<!-- amoc:{section}:end -->"),
    );
    let (Some(a), Some(b)) = (text.find(&begin), text.find(&end)) else {
        return Err(format!("{path} has no {begin} … {end} markers").into());
    };
    if b < a {
        return Err(format!("{path}: {end} before {begin}").into());
    }
    let new = format!("{}{begin}\n{body}{}", &text[..a], &text[b..]);
    std::fs::write(path, new)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seed_lists_take_ranges_and_singles() {
        assert_eq!(seeds("1001-1003,7").ok(), Some(vec![1001, 1002, 1003, 7]));
        assert!(seeds("x").is_err());
    }

    #[test]
    fn spread_is_mean_then_range() {
        assert_eq!(
            spread(&[1.0, 2.0, 6.0], |x| format!("{x:.1}")),
            "3.0 (1.0–6.0)"
        );
        assert_eq!(spread(&[], |x| format!("{x}")), "–");
        assert_eq!(median(vec![5.0, 1.0, 3.0]), Some(3.0));
    }

    #[test]
    fn loosening_moves_every_yellow_gate_and_the_cusum() {
        let base = DetectConfig::default();
        let mut cfg = base.clone();
        loosen(&mut cfg, 10.0);
        assert!(
            (cfg.levels_gates.yellow.max_p - 10.0 * base.levels_gates.yellow.max_p).abs() < 1e-12
        );
        assert_eq!(cfg.levels_gates.orange, base.levels_gates.orange);
        assert!((cfg.cusum_threshold - (base.cusum_threshold - 10f64.ln())).abs() < 1e-12);
        for (level, g) in &cfg.gates_by_level {
            assert!(g.yellow.max_p > base.gates_by_level[level].yellow.max_p);
        }
        assert!(cfg.validate().is_ok());
    }

    #[test]
    fn sections_are_replaced_between_their_markers_only() {
        let path = std::env::temp_dir().join(format!("amoc-{}.md", std::process::id()));
        let text = "a\n<!-- amoc:x:begin -->\nold\n<!-- amoc:x:end -->\nb\n";
        std::fs::write(&path, text).unwrap_or_default();
        let p = path.to_string_lossy().to_string();
        assert!(write_section(&p, "x", "new\n").is_ok());
        let got = std::fs::read_to_string(&path).unwrap_or_default();
        assert_eq!(
            got,
            "a\n<!-- amoc:x:begin -->\nnew\n<!-- amoc:x:end -->\nb\n"
        );
        assert!(write_section(&p, "y", "new\n").is_err());
        let _ = std::fs::remove_file(&path);
    }
}
