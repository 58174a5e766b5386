//! The statistical model on top of the rules: a linear model over character n-grams, negation
//! and contrast marks, the lexicon's evidence and the report's context (see
//! `schemas/classifier/README.md` for how it is trained and how well it does).
//!
//! The rules run first and stay the high-precision evidence; their scores, decision and tags are
//! features of the model, which makes the final call with a calibrated confidence. Empty text
//! stays a rule (`OTH_INVALID`, or the operator's pick).
//!
//! * [`features`]: text + rule evidence → hashed features.
//! * [`linear`]: the model, scoring and its file format.
//! * [`mod@train`]: AdaGrad logistic regression, k-fold cross-validation, temperature fitting.

pub mod features;
pub mod linear;
pub mod train;

use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

pub use features::FeatureConfig;
pub use linear::{LinearModel, ModelError, ModelHeader};
pub use train::TrainConfig;

use crate::evaluation::{LabelledText, Prediction, Report, read_labelled};
use crate::text::{NEEDS_REVIEW_BELOW, TextClassifier};

/// The model file shipped with the crate (`make classifier-model` writes it).
pub const BUILTIN_MODEL: &[u8] = include_bytes!("../../../schemas/classifier/model.bin");

/// SHA-256 (hex) of a text.
pub(crate) fn sha256_hex(bytes: &[u8]) -> String {
    hex_string(&Sha256::digest(bytes))
}

fn hex_string(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Labelled training texts and the hash that names them.
#[derive(Debug, Clone)]
pub struct TrainingSet {
    /// The texts, file by file in name order.
    pub cases: Vec<LabelledText>,
    /// SHA-256 over every file's name and bytes, in name order.
    pub sha256: String,
    /// The files read, with their example counts.
    pub files: Vec<(PathBuf, usize)>,
}

/// Why training data could not be read.
#[derive(Debug, thiserror::Error)]
pub enum TrainingDataError {
    /// A file or directory could not be read.
    #[error("{path}: {source}")]
    Io {
        /// The path.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// A file has a bad line.
    #[error("{path}: {source}")]
    Labels {
        /// The path.
        path: PathBuf,
        /// The cause.
        #[source]
        source: crate::evaluation::EvalError,
    },
    /// Nothing to train on.
    #[error("no training files (*.jsonl) under the given paths")]
    Empty,
}

impl TrainingSet {
    /// Reads every `*.jsonl` file of the given files and directories (directories are not
    /// searched recursively), in file-name order.
    pub fn read(paths: &[PathBuf]) -> Result<TrainingSet, TrainingDataError> {
        let io = |path: &Path| {
            let path = path.to_path_buf();
            move |source| TrainingDataError::Io { path, source }
        };
        let mut files: Vec<PathBuf> = Vec::new();
        for p in paths {
            if p.is_dir() {
                for entry in std::fs::read_dir(p).map_err(io(p))? {
                    let path = entry.map_err(io(p))?.path();
                    if path.extension().is_some_and(|e| e == "jsonl") {
                        files.push(path);
                    }
                }
            } else {
                files.push(p.clone());
            }
        }
        files.sort_by(|a, b| a.file_name().cmp(&b.file_name()).then(a.cmp(b)));
        if files.is_empty() {
            return Err(TrainingDataError::Empty);
        }
        let mut hasher = Sha256::new();
        let mut cases = Vec::new();
        let mut counts = Vec::new();
        for f in files {
            let text = std::fs::read_to_string(&f).map_err(io(&f))?;
            let name = f
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            hasher.update(name.as_bytes());
            hasher.update([0]);
            hasher.update(text.as_bytes());
            let read = read_labelled(&text).map_err(|source| TrainingDataError::Labels {
                path: f.clone(),
                source,
            })?;
            counts.push((f, read.len()));
            cases.extend(read);
        }
        Ok(TrainingSet {
            cases,
            sha256: hex_string(&hasher.finalize()),
            files: counts,
        })
    }
}

/// What [`train()`] produced.
#[derive(Debug)]
pub struct Trained {
    /// The model fitted on every example, with its temperature from cross-validation.
    pub model: LinearModel,
    /// k-fold cross-validation report (each text scored by a model that did not see it).
    pub cross_validation: Report,
    /// Leave-one-writer-out report, when the set has at least two writers: each writer's
    /// texts scored by a model trained only on the others (the closest thing to a blind set
    /// inside the corpus).
    pub by_writer: Option<Report>,
    /// The rules alone on the same texts, for comparison.
    pub rules_only: Report,
}

/// Trains a model on `set` with the rules of `rules` as evidence, with `folds`-fold
/// cross-validation and (when `writer_cv`) leave-one-writer-out. `progress` gets one line per
/// step.
pub fn train(
    rules: &TextClassifier,
    set: &TrainingSet,
    config: &TrainConfig,
    folds: usize,
    writer_cv: bool,
    mut progress: impl FnMut(&str),
) -> Trained {
    let examples: Vec<train::Example> = set
        .cases
        .iter()
        .map(|c| {
            train::Example::new(
                rules.model_features(&config.features, &c.input()),
                c.label(),
            )
        })
        .collect();
    let labels: Vec<usize> = examples.iter().map(|e| e.label).collect();
    let rules_only = crate::evaluation::evaluate(rules, &set.cases);
    progress(&format!(
        "{} examples; rules alone: subtype {:.1}%",
        examples.len(),
        100.0 * rules_only.all.accuracy()
    ));

    let group = train::folds(examples.len(), folds, config.seed);
    let oof = train::out_of_fold(&examples, &group, config, |k, n| {
        progress(&format!("cross-validation fold {k}/{n}"));
    });
    let temperature = train::fit_temperature(&oof, &labels);
    progress(&format!("temperature {temperature:.2}"));
    let report = |logits: &[[f32; linear::CLASSES]]| {
        let predictions: Vec<Prediction> = logits
            .iter()
            .map(|z| {
                let ((best, p), _) = train::top_two(&linear::softmax(z, temperature));
                Prediction {
                    subtype: best,
                    confidence: p,
                    rule: "model",
                }
            })
            .collect();
        Report::build(&set.cases, &predictions, NEEDS_REVIEW_BELOW)
    };
    let cross_validation = report(&oof);

    let mut writers: Vec<&str> = set
        .cases
        .iter()
        .filter_map(|c| c.writer.as_deref())
        .collect();
    writers.sort_unstable();
    writers.dedup();
    let by_writer = (writer_cv && writers.len() >= 2).then(|| {
        let group: Vec<usize> = set
            .cases
            .iter()
            .map(|c| {
                c.writer
                    .as_deref()
                    .and_then(|w| writers.iter().position(|x| *x == w))
                    .unwrap_or(writers.len())
            })
            .collect();
        let oof = train::out_of_fold(&examples, &group, config, |k, n| {
            progress(&format!("leave one writer out {k}/{n}"));
        });
        report(&oof)
    });

    progress("fitting the final model on every example");
    let all: Vec<usize> = (0..examples.len()).collect();
    let fit = train::fit(&examples, &all, config);
    let settings = serde_json::to_value(config).unwrap_or_default();
    let name_hash = sha256_hex(format!("{}{settings}", set.sha256).as_bytes());
    let header = ModelHeader {
        name: format!("lr1-{}", &name_hash[..10]),
        classes: train::class_names(),
        features: 0,
        feature_config: config.features,
        bias: Vec::new(),
        temperature,
        training_sha256: set.sha256.clone(),
        lexicon_sha256: rules.lexicon_sha256().to_owned(),
        examples: examples.len(),
        training: serde_json::json!({ "config": settings, "folds": folds }),
    };
    let model = fit.into_model(header);
    Trained {
        model,
        cross_validation,
        by_writer,
        rules_only,
    }
}

#[cfg(test)]
mod tests {
    use std::collections::{BTreeMap, HashMap};
    use std::path::PathBuf;

    use proptest::prelude::*;

    use super::*;
    use crate::text::{SUBTYPE_CODES, TextInput};

    fn corpus(part: &str) -> PathBuf {
        PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("../../schemas/classifier/corpus")
            .join(part)
    }

    /// The training paths `pingan classify train` uses by default.
    fn training_paths() -> Vec<PathBuf> {
        vec![
            corpus("train"),
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../schemas/classifier/eval.jsonl"),
        ]
    }

    fn classifier() -> &'static TextClassifier {
        static CLF: std::sync::OnceLock<TextClassifier> = std::sync::OnceLock::new();
        CLF.get_or_init(|| TextClassifier::builtin().expect("builtin classifier"))
    }

    #[test]
    fn the_shipped_model_belongs_to_this_lexicon_and_this_corpus() {
        let Some(model) = classifier().model() else {
            panic!("no model is built in: run `make classifier-model`");
        };
        assert_eq!(
            model.header().lexicon_sha256,
            classifier().lexicon_sha256(),
            "the lexicon changed since the model was trained: run `make classifier-model`"
        );
        let set = TrainingSet::read(&training_paths()).expect("corpus");
        assert_eq!(
            model.header().training_sha256,
            set.sha256,
            "the training corpus changed since the model was trained: run `make classifier-model`"
        );
        assert!(classifier().version().starts_with(model.name()));
    }

    #[test]
    fn training_is_reproducible() {
        // The final fit of the default command, from the corpus, gives the shipped weights bit
        // for bit (the temperature comes from cross-validation and is read from the header).
        let Some(shipped) = classifier().model() else {
            panic!("no model is built in");
        };
        let set = TrainingSet::read(&training_paths()).expect("corpus");
        let config: TrainConfig =
            serde_json::from_value(shipped.header().training["config"].clone()).expect("config");
        let rules = TextClassifier::rules_only().expect("rules");
        let examples: Vec<train::Example> = set
            .cases
            .iter()
            .map(|c| {
                train::Example::new(
                    rules.model_features(&config.features, &c.input()),
                    c.label(),
                )
            })
            .collect();
        let all: Vec<usize> = (0..examples.len()).collect();
        let again = train::fit(&examples, &all, &config).into_model(shipped.header().clone());
        assert!(
            again.to_bytes() == shipped.to_bytes(),
            "retraining did not reproduce the shipped model"
        );
    }

    fn grams(text: &str) -> std::collections::BTreeSet<String> {
        let chars: Vec<char> = text.chars().filter(|c| !c.is_whitespace()).collect();
        if chars.len() < 3 {
            return std::iter::once(chars.iter().collect()).collect();
        }
        chars.windows(3).map(|w| w.iter().collect()).collect()
    }

    #[test]
    fn corpus_sets_are_well_formed_and_do_not_overlap() {
        let train = TrainingSet::read(&[corpus("train")]).expect("train");
        let blind = TrainingSet::read(&[corpus("blind")]).expect("blind");
        assert!(train.cases.len() >= 4_000, "{}", train.cases.len());
        assert!(blind.cases.len() >= 600, "{}", blind.cases.len());
        let mut per_subtype: BTreeMap<&str, usize> = BTreeMap::new();
        for c in &train.cases {
            *per_subtype.entry(c.subtype.as_str()).or_default() += 1;
            assert!(c.writer.is_some() && c.department.is_some(), "{:?}", c.id);
        }
        for code in SUBTYPE_CODES {
            let n = per_subtype.get(code).copied().unwrap_or(0);
            assert!(n >= 40, "{code} has {n} training texts");
        }
        let train_writers: std::collections::BTreeSet<_> = train
            .cases
            .iter()
            .filter_map(|c| c.writer.clone())
            .collect();
        for c in &blind.cases {
            let w = c.writer.clone().unwrap_or_default();
            assert!(
                !train_writers.contains(&w),
                "blind writer {w} also wrote training data"
            );
        }
        // Near-duplicates (character-trigram Jaccard ≥ 0.8) within training and across sets.
        let mut index: HashMap<String, Vec<usize>> = HashMap::new();
        let mut seen: Vec<(String, std::collections::BTreeSet<String>)> = Vec::new();
        for (set, is_blind) in [(&blind, true), (&train, false)] {
            for c in &set.cases {
                let g = grams(&c.text);
                let mut candidates: HashMap<usize, usize> = HashMap::new();
                for x in &g {
                    for &j in index.get(x).map(Vec::as_slice).unwrap_or(&[]) {
                        *candidates.entry(j).or_default() += 1;
                    }
                }
                // Jaccard ≥ 0.8 needs at least 0.8 of this text's trigrams in common.
                let need = (g.len() as f64 * 0.8).floor() as usize;
                for (j, _) in candidates.into_iter().filter(|(_, n)| *n >= need.max(1)) {
                    let (other, og) = &seen[j];
                    let inter = g.intersection(og).count();
                    let union = g.union(og).count().max(1);
                    let both_blind = is_blind && other.starts_with('b');
                    assert!(
                        both_blind || (inter as f64 / union as f64) < 0.8,
                        "near-duplicates: {:?} and {other}",
                        c.id
                    );
                }
                let id = c.id.clone().unwrap_or_default();
                for x in &g {
                    index.entry(x.clone()).or_default().push(seen.len());
                }
                seen.push((id, g));
            }
        }
    }

    #[test]
    fn hard_inputs_get_a_valid_code_and_the_same_answer_twice() {
        let long = "有人在门口吵架，".repeat(1250);
        let inputs = [
            "",
            "   \t\n ",
            "😀😀😀",
            "\u{0}\u{1b}[31m\u{7}",
            "hello, someone stole my bike near the metro",
            "ааа бб",
            long.as_str(),
        ];
        for text in inputs {
            let input = TextInput::new(text);
            let a = classifier().classify(&input);
            assert!(SUBTYPE_CODES.contains(&a.subtype), "{text:?}");
            assert!((0.0..=1.0).contains(&a.score));
            assert_eq!(a, classifier().classify(&input), "{text:?}");
        }
        assert_eq!(
            classifier().classify(&TextInput::new("")).subtype,
            "OTH_INVALID"
        );
    }

    #[test]
    fn answers_explain_themselves() {
        let r = classifier().classify(&TextInput::new(
            "报警人称接到自称公安局的电话说其涉嫌洗钱，要求把存款转到安全账户",
        ));
        assert_eq!(r.subtype, "FRAUD_FAKE_GOV");
        assert!(r.rule.starts_with("model"));
        assert!(!r.features.is_empty() && r.features.len() <= crate::text::MAX_FEATURES);
        assert!(r.runner_up.is_some());
        assert!(r.features.windows(2).all(|w| w[0].1 >= w[1].1));
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]

        #[test]
        fn every_input_gets_a_valid_code_and_the_same_output_twice(
            text in "\\PC{0,300}|[\\x00-\\x7f]{0,50}",
            qr in proptest::option::of("alarm|help|dispute|consult|[a-z]{0,6}"),
            inside_compound in any::<bool>(),
            scenic_area in any::<bool>(),
        ) {
            let input = TextInput {
                text: &text,
                qr_kind: qr.as_deref(),
                operator_category: None,
                inside_compound,
                scenic_area,
            };
            let a = classifier().classify(&input);
            prop_assert!(SUBTYPE_CODES.contains(&a.subtype));
            prop_assert!((0.0..=1.0).contains(&a.score));
            if a.rule.starts_with("model") {
                prop_assert_eq!(a.needs_review, a.score < crate::text::NEEDS_REVIEW_BELOW);
            } else {
                prop_assert!(!a.needs_review);
            }
            prop_assert_eq!(&a, &classifier().classify(&input));
        }
    }
}

#[cfg(test)]
mod speed {
    use super::*;
    use crate::text::TextInput;

    #[test]
    #[ignore = "timing breakdown of the model's parts, run in release with --nocapture"]
    fn model_parts_timing() {
        let set = TrainingSet::read(&[std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("../../schemas/classifier/corpus/train")])
        .expect("corpus");
        let clf = TextClassifier::builtin().expect("clf");
        let model = clf.model().expect("model").clone();
        let views: Vec<_> = set
            .cases
            .iter()
            .map(|c| clf.rules_view(&c.input()))
            .collect();
        let inputs: Vec<TextInput<'_>> = set.cases.iter().map(|c| c.input()).collect();
        let n = views.len() as f64;
        let t = std::time::Instant::now();
        let mut feats = Vec::new();
        for (v, i) in views.iter().zip(&inputs) {
            feats.push(clf.features_of(&model, i, v));
        }
        let extract = t.elapsed().as_secs_f64() / n * 1e6;
        let mut rows = Vec::new();
        let mut scaled = Vec::new();
        let t = std::time::Instant::now();
        let mut sink = 0.0;
        for f in &feats {
            sink += model.logits(f, &mut rows, &mut scaled)[0];
        }
        let logits = t.elapsed().as_secs_f64() / n * 1e6;
        let nf: usize = feats.iter().map(|f| f.keys.len()).sum();
        println!(
            "extract {extract:.2} µs, logits {logits:.2} µs, {:.1} features/text ({sink})",
            nf as f64 / n
        );
    }
}
