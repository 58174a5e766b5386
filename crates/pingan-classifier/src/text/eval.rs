//! Evaluation of the classifier against a labelled JSONL set
//! (`schemas/classifier/eval.jsonl`), used by `pingan classify --eval FILE`.

use std::collections::BTreeMap;
use std::fmt;

use serde::Deserialize;

use super::taxonomy::{CATEGORY_CODES, SUBTYPE_CODES, category_of, subtype_code};
use super::{TextClassifier, TextInput};

/// One labelled example.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct EvalCase {
    text: String,
    subtype: String,
    #[serde(default)]
    qr_kind: Option<String>,
    #[serde(default)]
    operator_category: Option<String>,
    #[serde(default)]
    inside_compound: bool,
    #[serde(default)]
    scenic_area: bool,
    #[serde(default)]
    note: Option<String>,
}

/// Error reading an evaluation set.
#[derive(Debug, thiserror::Error)]
pub enum EvalError {
    /// A line is not a valid example object.
    #[error("eval line {line}: invalid example")]
    Json {
        /// 1-based line number.
        line: usize,
        /// The decoding error.
        #[source]
        source: serde_json::Error,
    },
    /// A line's label is not a taxonomy code.
    #[error("eval line {line}: unknown subtype code `{code}`")]
    UnknownSubtype {
        /// 1-based line number.
        line: usize,
        /// The offending label.
        code: String,
    },
    /// The set has no examples.
    #[error("eval set has no examples")]
    Empty,
}

/// Accuracy for one category (exact subtype match, and category match).
#[derive(Debug, Clone, PartialEq)]
pub struct CategoryStats {
    /// Category code.
    pub category: &'static str,
    /// Examples labelled in this category.
    pub support: usize,
    /// Of those, predicted with the exact subtype.
    pub correct: usize,
    /// Of those, predicted in the right category (any subtype).
    pub category_correct: usize,
}

/// Precision and recall for one subtype.
#[derive(Debug, Clone, PartialEq)]
pub struct SubtypeStats {
    /// Subtype code.
    pub subtype: &'static str,
    /// Examples labelled with this subtype.
    pub support: usize,
    /// Of those, predicted correctly.
    pub correct: usize,
    /// Examples predicted as this subtype (right or wrong).
    pub predicted: usize,
}

impl SubtypeStats {
    /// `correct / predicted`, or 0 when nothing was predicted.
    pub fn precision(&self) -> f64 {
        ratio(self.correct, self.predicted)
    }

    /// `correct / support`, or 0 when there is no support.
    pub fn recall(&self) -> f64 {
        ratio(self.correct, self.support)
    }
}

/// A (label, prediction) pair and how often it happened.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Confusion {
    /// The label.
    pub expected: &'static str,
    /// What the classifier said.
    pub predicted: &'static str,
    /// Number of examples.
    pub count: usize,
}

/// One misclassified example.
#[derive(Debug, Clone, PartialEq)]
pub struct Miss {
    /// 1-based line in the eval file.
    pub line: usize,
    /// The text.
    pub text: String,
    /// The label.
    pub expected: &'static str,
    /// What the classifier said.
    pub predicted: &'static str,
    /// The rule that decided.
    pub rule: &'static str,
    /// The example's note, if any.
    pub note: Option<String>,
}

/// Result of [`evaluate`].
#[derive(Debug, Clone, PartialEq)]
pub struct EvalReport {
    /// Number of examples.
    pub total: usize,
    /// Exact subtype matches.
    pub correct: usize,
    /// Category matches (any subtype in the right category).
    pub category_correct: usize,
    /// Per category, in taxonomy order (categories without examples omitted).
    pub per_category: Vec<CategoryStats>,
    /// Per subtype, in taxonomy order (subtypes never labelled nor predicted
    /// omitted).
    pub per_subtype: Vec<SubtypeStats>,
    /// Confusions, most frequent first (ties by code).
    pub confusions: Vec<Confusion>,
    /// Every miss, in file order.
    pub misses: Vec<Miss>,
}

impl EvalReport {
    /// Exact subtype accuracy.
    pub fn accuracy(&self) -> f64 {
        ratio(self.correct, self.total)
    }

    /// Category accuracy.
    pub fn category_accuracy(&self) -> f64 {
        ratio(self.category_correct, self.total)
    }
}

fn ratio(a: usize, b: usize) -> f64 {
    if b == 0 { 0.0 } else { a as f64 / b as f64 }
}

/// Classifies every example of a JSONL evaluation set and reports accuracy.
///
/// Each non-blank line is `{"text", "subtype", "qr_kind"?,
/// "operator_category"?, "inside_compound"?, "scenic_area"?, "note"?}`.
///
/// # Errors
///
/// [`EvalError`] for a malformed line, an unknown label, or an empty set.
pub fn evaluate(classifier: &TextClassifier, jsonl: &str) -> Result<EvalReport, EvalError> {
    let mut cases = Vec::new();
    for (idx, line) in jsonl.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let case: EvalCase = serde_json::from_str(line).map_err(|source| EvalError::Json {
            line: idx + 1,
            source,
        })?;
        let Some(expected) = subtype_code(&case.subtype) else {
            return Err(EvalError::UnknownSubtype {
                line: idx + 1,
                code: case.subtype,
            });
        };
        cases.push((idx + 1, expected, case));
    }
    if cases.is_empty() {
        return Err(EvalError::Empty);
    }

    let mut per_subtype: BTreeMap<usize, SubtypeStats> = BTreeMap::new();
    let mut per_category: BTreeMap<usize, CategoryStats> = BTreeMap::new();
    let mut confusions: BTreeMap<(&'static str, &'static str), usize> = BTreeMap::new();
    let mut misses = Vec::new();
    let mut correct = 0;
    let mut category_correct = 0;

    let position = |code: &str| SUBTYPE_CODES.iter().position(|c| *c == code).unwrap_or(0);
    let cat_position = |cat: &str| CATEGORY_CODES.iter().position(|c| *c == cat).unwrap_or(0);
    let subtype_entry = |map: &mut BTreeMap<usize, SubtypeStats>, code: &'static str| {
        map.entry(position(code))
            .or_insert(SubtypeStats {
                subtype: code,
                support: 0,
                correct: 0,
                predicted: 0,
            })
            .clone()
    };

    for (line, expected, case) in &cases {
        let input = TextInput {
            text: &case.text,
            qr_kind: case.qr_kind.as_deref(),
            operator_category: case.operator_category.as_deref(),
            inside_compound: case.inside_compound,
            scenic_area: case.scenic_area,
        };
        let result = classifier.classify(&input);
        let predicted = result.subtype;
        let hit = predicted == *expected;
        let cat_hit = category_of(predicted) == category_of(expected);

        let _ = subtype_entry(&mut per_subtype, expected);
        let _ = subtype_entry(&mut per_subtype, predicted);
        if let Some(s) = per_subtype.get_mut(&position(expected)) {
            s.support += 1;
            s.correct += usize::from(hit);
        }
        if let Some(s) = per_subtype.get_mut(&position(predicted)) {
            s.predicted += 1;
        }
        let cat = category_of(expected);
        let c = per_category
            .entry(cat_position(cat))
            .or_insert(CategoryStats {
                category: cat,
                support: 0,
                correct: 0,
                category_correct: 0,
            });
        c.support += 1;
        c.correct += usize::from(hit);
        c.category_correct += usize::from(cat_hit);
        correct += usize::from(hit);
        category_correct += usize::from(cat_hit);
        if !hit {
            *confusions.entry((*expected, predicted)).or_default() += 1;
            misses.push(Miss {
                line: *line,
                text: case.text.clone(),
                expected,
                predicted,
                rule: result.rule,
                note: case.note.clone(),
            });
        }
    }

    let mut confusions: Vec<Confusion> = confusions
        .into_iter()
        .map(|((expected, predicted), count)| Confusion {
            expected,
            predicted,
            count,
        })
        .collect();
    confusions.sort_by(|a, b| b.count.cmp(&a.count).then(a.expected.cmp(b.expected)));

    Ok(EvalReport {
        total: cases.len(),
        correct,
        category_correct,
        per_category: per_category.into_values().collect(),
        per_subtype: per_subtype.into_values().collect(),
        confusions,
        misses,
    })
}

impl fmt::Display for EvalReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "examples: {}  subtype accuracy: {:.1}% ({}/{})  category accuracy: {:.1}% ({}/{})",
            self.total,
            100.0 * self.accuracy(),
            self.correct,
            self.total,
            100.0 * self.category_accuracy(),
            self.category_correct,
            self.total,
        )?;
        writeln!(
            f,
            "\n{:<8} {:>7} {:>9} {:>9}",
            "category", "support", "subtype%", "category%"
        )?;
        for c in &self.per_category {
            writeln!(
                f,
                "{:<8} {:>7} {:>8.1}% {:>8.1}%",
                c.category,
                c.support,
                100.0 * ratio(c.correct, c.support),
                100.0 * ratio(c.category_correct, c.support),
            )?;
        }
        writeln!(
            f,
            "\n{:<24} {:>7} {:>7} {:>9} {:>10} {:>7}",
            "subtype", "support", "correct", "predicted", "precision", "recall"
        )?;
        for s in &self.per_subtype {
            writeln!(
                f,
                "{:<24} {:>7} {:>7} {:>9} {:>9.1}% {:>6.1}%",
                s.subtype,
                s.support,
                s.correct,
                s.predicted,
                100.0 * s.precision(),
                100.0 * s.recall(),
            )?;
        }
        writeln!(f, "\ntop confusions (expected -> predicted):")?;
        for c in self.confusions.iter().take(15) {
            writeln!(f, "  {:>3}  {} -> {}", c.count, c.expected, c.predicted)?;
        }
        writeln!(f, "\nmisses ({}):", self.misses.len())?;
        for m in &self.misses {
            writeln!(
                f,
                "  line {:>3}: {} -> {} [{}] {}{}",
                m.line,
                m.expected,
                m.predicted,
                m.rule,
                m.text,
                m.note
                    .as_deref()
                    .map(|n| format!("  ({n})"))
                    .unwrap_or_default(),
            )?;
        }
        Ok(())
    }
}
