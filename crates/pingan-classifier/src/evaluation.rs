//! Labelled texts and how well the classifier does on them: `pingan classify --eval FILE`,
//! the training command's cross-validation and the corpus tests share this report.
//!
//! A labelled line is either the corpus format (`schemas/classifier/corpus/`: `id`, `writer`,
//! `source`, `qr_kind`, `text`, `subtype`, `category`, `department`, `inside_compound`,
//! `scenic_area`, `phenomena`) or the older `eval.jsonl` format (`text`, `subtype`, `qr_kind`?,
//! `operator_category`?, `inside_compound`?, `scenic_area`?, `note`?).

use std::collections::BTreeMap;
use std::fmt;

use pingan_domain::routing::{RouteContext, Router};
use serde::Deserialize;

use crate::enrich::text_suggests_compound;
use crate::text::{CATEGORY_CODES, SUBTYPE_CODES, TextClassifier, TextInput, category_of};

/// One labelled text.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LabelledText {
    /// Example id (corpus lines).
    #[serde(default)]
    pub id: Option<String>,
    /// Who wrote it (corpus lines).
    #[serde(default)]
    pub writer: Option<String>,
    /// `call` or `qr`; derived from `qr_kind` when absent.
    #[serde(default)]
    pub source: Option<String>,
    /// The text.
    pub text: String,
    /// The subtype label.
    pub subtype: String,
    /// The category label (checked against the subtype when present).
    #[serde(default)]
    pub category: Option<String>,
    /// The primary department label (`null` for invalid and duplicate calls); absent in the
    /// older format, where department accuracy is not reported.
    #[serde(default, deserialize_with = "present")]
    pub department: Option<Option<String>>,
    /// QR report kind.
    #[serde(default)]
    pub qr_kind: Option<String>,
    /// The operator's category pick.
    #[serde(default)]
    pub operator_category: Option<String>,
    /// The place is inside a residential compound.
    #[serde(default)]
    pub inside_compound: bool,
    /// The place is in a scenic area.
    #[serde(default)]
    pub scenic_area: bool,
    /// Hard features the writer put in (negation, typo, …).
    #[serde(default)]
    pub phenomena: Vec<String>,
    /// A note (older format).
    #[serde(default)]
    pub note: Option<String>,
}

fn present<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<Option<String>>, D::Error> {
    Option::<String>::deserialize(d).map(Some)
}

impl LabelledText {
    /// `call` or `qr`.
    pub fn source(&self) -> &str {
        match self.source.as_deref() {
            Some(s) => s,
            None if self.qr_kind.is_some() => "qr",
            None => "call",
        }
    }

    /// The classifier input this text stands for.
    pub fn input(&self) -> TextInput<'_> {
        TextInput {
            text: &self.text,
            qr_kind: self.qr_kind.as_deref(),
            operator_category: self.operator_category.as_deref(),
            inside_compound: self.inside_compound,
            scenic_area: self.scenic_area,
        }
    }

    /// The label's index in [`SUBTYPE_CODES`].
    pub fn label(&self) -> usize {
        SUBTYPE_CODES
            .iter()
            .position(|c| *c == self.subtype)
            .unwrap_or(SUBTYPE_CODES.len() - 1)
    }

    /// The department the pipeline would route `subtype` to at this text's place (the
    /// enricher's rule: the resolved place, or compound words in the text).
    pub fn department_for(&self, subtype: &str) -> Option<&'static str> {
        Router::builtin()
            .route(
                subtype,
                RouteContext {
                    scenic_area: self.scenic_area,
                    inside_compound: self.inside_compound || text_suggests_compound(&self.text),
                },
            )
            .primary
    }
}

/// Error reading labelled texts.
#[derive(Debug, thiserror::Error)]
pub enum EvalError {
    /// A line is not a valid example object.
    #[error("line {line}: invalid example")]
    Json {
        /// 1-based line number.
        line: usize,
        /// The decoding error.
        #[source]
        source: serde_json::Error,
    },
    /// A line's label is not a taxonomy code, or its category does not match.
    #[error("line {line}: unknown subtype code `{code}` or a category that is not its own")]
    UnknownSubtype {
        /// 1-based line number.
        line: usize,
        /// The offending label.
        code: String,
    },
    /// The set has no examples.
    #[error("no examples")]
    Empty,
}

/// Reads labelled JSON lines (blank lines skipped).
pub fn read_labelled(jsonl: &str) -> Result<Vec<LabelledText>, EvalError> {
    let mut out = Vec::new();
    for (idx, line) in jsonl.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let case: LabelledText = serde_json::from_str(line).map_err(|source| EvalError::Json {
            line: idx + 1,
            source,
        })?;
        let known = SUBTYPE_CODES.contains(&case.subtype.as_str())
            && case
                .category
                .as_deref()
                .is_none_or(|c| c == category_of(&case.subtype));
        if !known {
            return Err(EvalError::UnknownSubtype {
                line: idx + 1,
                code: case.subtype,
            });
        }
        out.push(case);
    }
    if out.is_empty() {
        return Err(EvalError::Empty);
    }
    Ok(out)
}

/// What the classifier said about one text.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Prediction {
    /// Subtype index in [`SUBTYPE_CODES`].
    pub subtype: usize,
    /// Calibrated confidence of that answer.
    pub confidence: f32,
    /// The rule or decider.
    pub rule: &'static str,
}

/// Accuracy of one slice (all, calls, QR texts, one category, one writer …).
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Slice {
    /// Examples.
    pub total: usize,
    /// Exact subtype matches.
    pub correct: usize,
    /// Category matches.
    pub category_correct: usize,
    /// Examples with a department label.
    pub with_department: usize,
    /// Department matches among those.
    pub department_correct: usize,
}

impl Slice {
    fn add(&mut self, hit: bool, cat_hit: bool, dept: Option<bool>) {
        self.total += 1;
        self.correct += usize::from(hit);
        self.category_correct += usize::from(cat_hit);
        if let Some(d) = dept {
            self.with_department += 1;
            self.department_correct += usize::from(d);
        }
    }
    /// Subtype accuracy.
    pub fn accuracy(&self) -> f64 {
        ratio(self.correct, self.total)
    }
    /// Category accuracy.
    pub fn category_accuracy(&self) -> f64 {
        ratio(self.category_correct, self.total)
    }
    /// Department accuracy (over examples with a department label).
    pub fn department_accuracy(&self) -> f64 {
        ratio(self.department_correct, self.with_department)
    }
}

/// Precision and recall for one subtype.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SubtypeStats {
    /// Subtype code.
    pub subtype: &'static str,
    /// Examples labelled with it.
    pub support: usize,
    /// Of those, predicted correctly.
    pub correct: usize,
    /// Examples predicted as it.
    pub predicted: usize,
}

impl SubtypeStats {
    /// `correct / predicted`.
    pub fn precision(&self) -> f64 {
        ratio(self.correct, self.predicted)
    }
    /// `correct / support`.
    pub fn recall(&self) -> f64 {
        ratio(self.correct, self.support)
    }
    /// Harmonic mean of precision and recall.
    pub fn f1(&self) -> f64 {
        let (p, r) = (self.precision(), self.recall());
        if p + r == 0.0 {
            0.0
        } else {
            2.0 * p * r / (p + r)
        }
    }
}

/// A (label, prediction) pair and how often it happened.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Confusion {
    /// The label.
    pub expected: &'static str,
    /// What the classifier said.
    pub predicted: &'static str,
    /// How often.
    pub count: usize,
}

/// One calibration bin: predictions whose confidence fell in `[lo, hi)`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Bin {
    /// Lower edge.
    pub lo: f32,
    /// Predictions in the bin.
    pub count: usize,
    /// Mean confidence.
    pub confidence: f64,
    /// Share correct.
    pub accuracy: f64,
}

/// One misclassified example.
#[derive(Debug, Clone, PartialEq)]
pub struct Miss {
    /// Position in the input (1-based, blank lines not counted).
    pub index: usize,
    /// Example id, when the set has ids.
    pub id: Option<String>,
    /// The text.
    pub text: String,
    /// The label.
    pub expected: &'static str,
    /// What the classifier said.
    pub predicted: &'static str,
    /// Its confidence.
    pub confidence: f32,
    /// The rule or decider.
    pub rule: &'static str,
}

/// The evaluation report.
#[derive(Debug, Clone, PartialEq)]
pub struct Report {
    /// Every example.
    pub all: Slice,
    /// Per source (`call`, `qr`).
    pub by_source: BTreeMap<String, Slice>,
    /// Per labelled category, in taxonomy order.
    pub by_category: Vec<(&'static str, Slice)>,
    /// Per writer (corpus sets).
    pub by_writer: BTreeMap<String, Slice>,
    /// Per phenomenon (corpus sets).
    pub by_phenomenon: BTreeMap<String, Slice>,
    /// Per subtype, in taxonomy order (subtypes never labelled nor predicted omitted).
    pub per_subtype: Vec<SubtypeStats>,
    /// Mean F1 over the subtypes that have examples.
    pub macro_f1: f64,
    /// Confusions, most frequent first.
    pub confusions: Vec<Confusion>,
    /// Calibration bins (ten, by confidence).
    pub calibration: Vec<Bin>,
    /// Expected calibration error: the count-weighted mean |accuracy − confidence| of the bins.
    pub ece: f64,
    /// Answers flagged for review (confidence below the review threshold) and how many of those
    /// were right.
    pub needs_review: (usize, usize),
    /// Every miss, in input order.
    pub misses: Vec<Miss>,
}

fn ratio(a: usize, b: usize) -> f64 {
    if b == 0 { 0.0 } else { a as f64 / b as f64 }
}

impl Report {
    /// Scores `predictions` (one per case, same order) against the labels.
    pub fn build(cases: &[LabelledText], predictions: &[Prediction], review_below: f32) -> Report {
        let mut all = Slice::default();
        let mut by_source: BTreeMap<String, Slice> = BTreeMap::new();
        let mut by_cat: BTreeMap<usize, Slice> = BTreeMap::new();
        let mut by_writer: BTreeMap<String, Slice> = BTreeMap::new();
        let mut by_phenomenon: BTreeMap<String, Slice> = BTreeMap::new();
        let mut support = [0usize; 62];
        let mut correct = [0usize; 62];
        let mut predicted = [0usize; 62];
        let mut confusions: BTreeMap<(usize, usize), usize> = BTreeMap::new();
        let mut bins = [(0usize, 0.0f64, 0usize); 10];
        let mut review = (0, 0);
        let mut misses = Vec::new();
        for (i, (case, p)) in cases.iter().zip(predictions).enumerate() {
            let expected = case.label();
            let hit = p.subtype == expected;
            let exp_code = SUBTYPE_CODES[expected];
            let got_code = SUBTYPE_CODES
                .get(p.subtype)
                .copied()
                .unwrap_or("OTH_UNCLASSIFIED");
            let cat_hit = category_of(exp_code) == category_of(got_code);
            let dept = case
                .department
                .as_ref()
                .map(|want| case.department_for(got_code) == want.as_deref());
            all.add(hit, cat_hit, dept);
            by_source
                .entry(case.source().to_owned())
                .or_default()
                .add(hit, cat_hit, dept);
            let cat = CATEGORY_CODES
                .iter()
                .position(|c| *c == category_of(exp_code))
                .unwrap_or(0);
            by_cat.entry(cat).or_default().add(hit, cat_hit, dept);
            if let Some(w) = &case.writer {
                by_writer
                    .entry(w.clone())
                    .or_default()
                    .add(hit, cat_hit, dept);
            }
            for ph in &case.phenomena {
                by_phenomenon
                    .entry(ph.clone())
                    .or_default()
                    .add(hit, cat_hit, dept);
            }
            support[expected] += 1;
            correct[expected] += usize::from(hit);
            if let Some(n) = predicted.get_mut(p.subtype) {
                *n += 1;
            }
            let conf = p.confidence.clamp(0.0, 1.0);
            let b = ((conf * 10.0) as usize).min(9);
            bins[b].0 += 1;
            bins[b].1 += f64::from(conf);
            bins[b].2 += usize::from(hit);
            if conf < review_below {
                review.0 += 1;
                review.1 += usize::from(hit);
            }
            if !hit {
                *confusions.entry((expected, p.subtype)).or_default() += 1;
                misses.push(Miss {
                    index: i + 1,
                    id: case.id.clone(),
                    text: case.text.clone(),
                    expected: exp_code,
                    predicted: got_code,
                    confidence: conf,
                    rule: p.rule,
                });
            }
        }
        let per_subtype: Vec<SubtypeStats> = (0..62)
            .filter(|&s| support[s] > 0 || predicted[s] > 0)
            .map(|s| SubtypeStats {
                subtype: SUBTYPE_CODES[s],
                support: support[s],
                correct: correct[s],
                predicted: predicted[s],
            })
            .collect();
        let with_support: Vec<&SubtypeStats> =
            per_subtype.iter().filter(|s| s.support > 0).collect();
        let macro_f1 = if with_support.is_empty() {
            0.0
        } else {
            with_support.iter().map(|s| s.f1()).sum::<f64>() / with_support.len() as f64
        };
        let mut confusions: Vec<Confusion> = confusions
            .into_iter()
            .map(|((e, p), count)| Confusion {
                expected: SUBTYPE_CODES[e],
                predicted: SUBTYPE_CODES.get(p).copied().unwrap_or("?"),
                count,
            })
            .collect();
        confusions.sort_by(|a, b| {
            b.count
                .cmp(&a.count)
                .then(a.expected.cmp(b.expected))
                .then(a.predicted.cmp(b.predicted))
        });
        let total = all.total.max(1) as f64;
        let mut ece = 0.0;
        let calibration: Vec<Bin> = bins
            .iter()
            .enumerate()
            .filter(|(_, b)| b.0 > 0)
            .map(|(i, &(count, conf, hits))| {
                let bin = Bin {
                    lo: i as f32 / 10.0,
                    count,
                    confidence: conf / count as f64,
                    accuracy: hits as f64 / count as f64,
                };
                ece += count as f64 / total * (bin.accuracy - bin.confidence).abs();
                bin
            })
            .collect();
        Report {
            all,
            by_source,
            by_category: by_cat
                .into_iter()
                .map(|(c, s)| (CATEGORY_CODES[c], s))
                .collect(),
            by_writer,
            by_phenomenon,
            per_subtype,
            macro_f1,
            confusions,
            calibration,
            ece,
            needs_review: review,
            misses,
        }
    }
}

/// Classifies every labelled text and reports.
pub fn evaluate(classifier: &TextClassifier, cases: &[LabelledText]) -> Report {
    let predictions: Vec<Prediction> = cases
        .iter()
        .map(|c| {
            let r = classifier.classify(&c.input());
            Prediction {
                subtype: SUBTYPE_CODES
                    .iter()
                    .position(|s| *s == r.subtype)
                    .unwrap_or(61),
                confidence: r.score,
                rule: r.rule,
            }
        })
        .collect();
    Report::build(cases, &predictions, crate::text::NEEDS_REVIEW_BELOW)
}

fn pct(x: f64) -> String {
    format!("{:.1}%", 100.0 * x)
}

fn slice_row(f: &mut fmt::Formatter<'_>, name: &str, s: &Slice) -> fmt::Result {
    writeln!(
        f,
        "  {:<16} {:>6} {:>9} {:>9} {:>11}",
        name,
        s.total,
        pct(s.accuracy()),
        pct(s.category_accuracy()),
        if s.with_department > 0 {
            pct(s.department_accuracy())
        } else {
            "-".into()
        },
    )
}

impl Report {
    /// The headline and the slice tables, without per-subtype rows and misses.
    pub fn summary(&self) -> String {
        struct Summary<'a>(&'a Report);
        impl fmt::Display for Summary<'_> {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                self.0.write_summary(f)
            }
        }
        Summary(self).to_string()
    }

    fn write_summary(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let a = &self.all;
        writeln!(
            f,
            "examples {}: subtype {} ({}/{}), category {}, department {}, macro-F1 {:.3}, ECE {:.3}",
            a.total,
            pct(a.accuracy()),
            a.correct,
            a.total,
            pct(a.category_accuracy()),
            if a.with_department > 0 {
                pct(a.department_accuracy())
            } else {
                "-".into()
            },
            self.macro_f1,
            self.ece,
        )?;
        writeln!(
            f,
            "needs review: {} answers ({} of them right)",
            self.needs_review.0, self.needs_review.1
        )?;
        writeln!(
            f,
            "\n  {:<16} {:>6} {:>9} {:>9} {:>11}",
            "slice", "n", "subtype", "category", "department"
        )?;
        for (name, s) in &self.by_source {
            slice_row(f, name, s)?;
        }
        for (name, s) in &self.by_category {
            slice_row(f, name, s)?;
        }
        if !self.by_writer.is_empty() {
            for (name, s) in &self.by_writer {
                slice_row(f, &format!("writer {name}"), s)?;
            }
        }
        for (name, s) in &self.by_phenomenon {
            slice_row(f, name, s)?;
        }
        writeln!(
            f,
            "\ncalibration (confidence bin: n, mean confidence, accuracy):"
        )?;
        for b in &self.calibration {
            writeln!(
                f,
                "  {:.1}-{:.1}  {:>5}  {:>6.3}  {:>6.3}",
                b.lo,
                b.lo + 0.1,
                b.count,
                b.confidence,
                b.accuracy
            )?;
        }
        writeln!(f, "\ntop confusions (expected -> predicted):")?;
        for c in self.confusions.iter().take(15) {
            writeln!(f, "  {:>3}  {} -> {}", c.count, c.expected, c.predicted)?;
        }
        Ok(())
    }
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.write_summary(f)?;
        writeln!(
            f,
            "\n  {:<24} {:>7} {:>7} {:>9} {:>9} {:>7} {:>6}",
            "subtype", "support", "correct", "predicted", "precision", "recall", "F1"
        )?;
        for s in &self.per_subtype {
            writeln!(
                f,
                "  {:<24} {:>7} {:>7} {:>9} {:>9} {:>7} {:>6.3}",
                s.subtype,
                s.support,
                s.correct,
                s.predicted,
                pct(s.precision()),
                pct(s.recall()),
                s.f1(),
            )?;
        }
        writeln!(f, "\nmisses ({}):", self.misses.len())?;
        for m in &self.misses {
            writeln!(
                f,
                "  {:>4} {}: {} -> {} ({:.2}, {}) {}",
                m.index,
                m.id.as_deref().unwrap_or(""),
                m.expected,
                m.predicted,
                m.confidence,
                m.rule,
                m.text,
            )?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn case(text: &str, subtype: &str, dept: Option<Option<&str>>) -> LabelledText {
        LabelledText {
            id: None,
            writer: Some("t".into()),
            source: None,
            text: text.into(),
            subtype: subtype.into(),
            category: None,
            department: dept.map(|d| d.map(str::to_owned)),
            qr_kind: None,
            operator_category: None,
            inside_compound: false,
            scenic_area: false,
            phenomena: vec!["plain".into()],
            note: None,
        }
    }

    fn at(code: &str) -> usize {
        SUBTYPE_CODES.iter().position(|c| *c == code).unwrap_or(0)
    }

    #[test]
    fn the_report_counts_what_it_says() {
        let cases = [
            case("a", "PUB_FIGHT", Some(Some("POLICE"))),
            case("b", "PUB_FIGHT", Some(Some("POLICE"))),
            case("c", "DSP_CONSUMER", Some(Some("SAMR"))),
            case("d", "OTH_INVALID", Some(None)),
        ];
        let p = |s: &str, c: f32| Prediction {
            subtype: at(s),
            confidence: c,
            rule: "model",
        };
        let preds = [
            p("PUB_FIGHT", 0.95),
            p("PUB_DRUNK", 0.4),
            p("DSP_CONSUMER", 0.9),
            p("OTH_INVALID", 0.85),
        ];
        let r = Report::build(&cases, &preds, 0.5);
        assert_eq!(r.all.total, 4);
        assert_eq!(r.all.correct, 3);
        assert_eq!(r.all.category_correct, 4);
        // PUB_DRUNK is routed to POLICE like a fight.
        assert_eq!(r.all.department_correct, 4);
        assert_eq!(r.needs_review, (1, 0));
        assert_eq!(r.misses.len(), 1);
        assert_eq!(r.confusions[0].expected, "PUB_FIGHT");
        // F1: fight p=1 r=.5 → .667; consumer 1; invalid 1 → mean .889.
        assert!((r.macro_f1 - (2.0 / 3.0 + 2.0) / 3.0).abs() < 1e-9);
        let n: usize = r.calibration.iter().map(|b| b.count).sum();
        assert_eq!(n, 4);
        assert!(r.ece >= 0.0 && r.ece <= 1.0);
    }

    #[test]
    fn both_line_formats_read_and_bad_lines_are_named() {
        let old =
            r#"{"text": "有人打架", "subtype": "PUB_FIGHT", "qr_kind": "alarm", "note": "x"}"#;
        let new = r#"{"id":"w1-1","writer":"w1","source":"call","qr_kind":null,"text":"打架","subtype":"PUB_FIGHT","category":"PUB","department":"POLICE","inside_compound":false,"scenic_area":false,"phenomena":["minimal"]}"#;
        let cases = read_labelled(&format!("{old}\n\n{new}\n")).expect("reads");
        assert_eq!(cases.len(), 2);
        assert_eq!(cases[0].source(), "qr");
        assert_eq!(cases[0].department, None);
        assert_eq!(cases[1].department, Some(Some("POLICE".into())));
        assert!(matches!(read_labelled(""), Err(EvalError::Empty)));
        assert!(matches!(
            read_labelled("{nope"),
            Err(EvalError::Json { line: 1, .. })
        ));
        assert!(matches!(
            read_labelled(r#"{"text":"x","subtype":"PUB_FIGHT","category":"DSP"}"#),
            Err(EvalError::UnknownSubtype { line: 1, .. })
        ));
    }
}
