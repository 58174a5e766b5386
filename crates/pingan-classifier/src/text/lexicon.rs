//! Parsing and validation of the curated lexicon (`schemas/classifier/lexicon.tsv`).
//!
//! One row per term, tab-separated:
//!
//! ```text
//! term <TAB> target <TAB> weight [<TAB> flags]
//! ```
//!
//! - `target` is a subtype code from the taxonomy, `-` for a row that only
//!   carries flags (a tag, a class, a fraud anchor), or `=other term` for an
//!   alias that copies another row (`wx <TAB> =微信`); alias rows use `-` as weight.
//! - `weight` is the evidence the term adds to its subtype, in `0..=10`
//!   (must be `> 0` when the target is a subtype).
//! - `flags` is a comma-separated list, see [`Rule`] and the README.
//!
//! Validation is exhaustive: every problem in the file is reported with its
//! line number, not just the first one (house rule 3: parse, don't validate).

use std::collections::BTreeMap;
use std::fmt;

use super::normalize::normalize;
use super::taxonomy::{SUBTYPE_CODES, subtype_code};

/// Tags the text classifier can attach (DOMAIN §8.1). `night`,
/// `morning_peak` and `tourist_area` are added by the caller, not here.
pub const TAGS: [&str; 3] = ["alcohol", "injury", "weapon"];

/// Classes set by the classifier itself rather than by lexicon rows, so rows
/// may refer to them without defining them.
///
/// - `compound`: [`super::TextInput::inside_compound`] is set.
/// - `scenic`: [`super::TextInput::scenic_area`] is set.
/// - `conflict`: also set by a dispute prior (QR kind `dispute`, operator
///   category 纠纷), so party cues work on short QR reports.
pub(crate) const BUILTIN_CLASSES: [&str; 3] = ["compound", "scenic", "conflict"];

/// Most distinct classes a lexicon may define; classes are a `u64` bit set.
pub(crate) const MAX_CLASSES: usize = 64;

/// Upper bound on a row weight; larger values are almost certainly typos.
pub(crate) const MAX_WEIGHT: f32 = 10.0;

/// One contribution of a matched term to a subtype score.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Effect {
    /// Index into [`SUBTYPE_CODES`].
    pub(crate) subtype: usize,
    /// Evidence weight added when the effect counts.
    pub(crate) weight: f32,
    /// Bit set of classes that must all be present (each `needs:` flag is one
    /// entry; an entry with `a|b` alternatives is satisfied by any of them).
    pub(crate) needs: Vec<u64>,
    /// Bit set of classes whose presence cancels the effect.
    pub(crate) unless: u64,
}

/// A validated lexicon row.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Rule {
    /// The term after [`normalize`], as matched against normalised text.
    pub(crate) term: String,
    /// Line number in the source file (1-based), for audit and errors.
    pub(crate) line: usize,
    /// Effects on subtype scores; empty for `-` rows.
    pub(crate) effects: Vec<Effect>,
    /// `anchor`: proof that money or credentials changed hands under
    /// deception; fraud subtypes only win when an anchor is present.
    pub(crate) anchor: bool,
    /// Classes this row sets when it matches un-negated (`class:` flags).
    pub(crate) classes: u64,
    /// Indices into [`TAGS`] attached when the row matches un-negated.
    pub(crate) tags: Vec<usize>,
}

/// The parsed lexicon: rules plus the class-name table.
#[derive(Debug, Clone)]
pub(crate) struct Lexicon {
    /// Rules in file order (aliases resolved).
    pub(crate) rules: Vec<Rule>,
    /// Class names; the position is the bit index.
    pub(crate) classes: Vec<String>,
}

impl Lexicon {
    /// Bit for a class name, if defined.
    #[cfg(test)]
    pub(crate) fn class_bit(&self, name: &str) -> Option<u64> {
        self.classes
            .iter()
            .position(|c| c == name)
            .map(|idx| 1u64 << idx)
    }
}

/// Error returned when a lexicon cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum LexiconError {
    /// One or more rows are invalid; every problem is listed.
    #[error("lexicon has {} invalid row(s): {}", .problems.len(), ProblemList(.problems))]
    Invalid {
        /// All problems found, in line order.
        problems: Vec<LexiconProblem>,
    },
    /// The lexicon has no rows at all.
    #[error("lexicon has no rows")]
    Empty,
    /// The Aho-Corasick automaton could not be built.
    #[error("failed to build the term matcher")]
    Automaton(#[source] aho_corasick::BuildError),
    /// A line of the jieba user dictionary is malformed.
    #[error("user dictionary line {line}: {message}")]
    UserDict {
        /// 1-based line number.
        line: usize,
        /// What is wrong.
        message: String,
    },
    /// The embedded model file is unreadable.
    #[error("classifier model: {0}")]
    Model(#[from] crate::model::ModelError),
}

/// One invalid lexicon row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LexiconProblem {
    /// 1-based line number in the TSV.
    pub line: usize,
    /// What is wrong with it.
    pub kind: ProblemKind,
}

/// The kinds of problem a lexicon row can have.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProblemKind {
    /// Fewer than 3 or more than 4 tab-separated columns.
    ColumnCount(usize),
    /// The term is empty after normalisation.
    EmptyTerm,
    /// The target is not a taxonomy code, `-` or an alias.
    UnknownSubtype(String),
    /// The weight is not a number in range.
    BadWeight(String),
    /// The (normalised) term already appeared on an earlier line.
    DuplicateTerm {
        /// The normalised term.
        term: String,
        /// Line of the first occurrence.
        first_line: usize,
    },
    /// A flag is not recognised.
    UnknownFlag(String),
    /// A `tag:` flag names an unknown tag.
    UnknownTag(String),
    /// A `needs:`/`unless:` flag names a class no row defines.
    UndefinedClass(String),
    /// An alias points at a missing term or at another alias.
    BadAlias(String),
    /// More than `MAX_CLASSES` classes are defined.
    TooManyClasses,
}

impl fmt::Display for LexiconProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let line = self.line;
        match &self.kind {
            ProblemKind::ColumnCount(n) => {
                write!(f, "line {line}: expected 3 or 4 columns, found {n}")
            }
            ProblemKind::EmptyTerm => write!(f, "line {line}: empty term"),
            ProblemKind::UnknownSubtype(s) => write!(f, "line {line}: unknown subtype code `{s}`"),
            ProblemKind::BadWeight(w) => write!(f, "line {line}: bad weight `{w}`"),
            ProblemKind::DuplicateTerm { term, first_line } => {
                write!(
                    f,
                    "line {line}: duplicate term `{term}` (first on line {first_line})"
                )
            }
            ProblemKind::UnknownFlag(s) => write!(f, "line {line}: unknown flag `{s}`"),
            ProblemKind::UnknownTag(s) => write!(f, "line {line}: unknown tag `{s}`"),
            ProblemKind::UndefinedClass(s) => write!(f, "line {line}: undefined class `{s}`"),
            ProblemKind::BadAlias(s) => write!(f, "line {line}: bad alias target `{s}`"),
            ProblemKind::TooManyClasses => {
                write!(f, "line {line}: more than {MAX_CLASSES} classes defined")
            }
        }
    }
}

/// Renders a problem list as "line 3: …; line 9: …".
struct ProblemList<'a>(&'a [LexiconProblem]);

impl fmt::Display for ProblemList<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (idx, problem) in self.0.iter().enumerate() {
            if idx > 0 {
                f.write_str("; ")?;
            }
            write!(f, "{problem}")?;
        }
        Ok(())
    }
}

/// A row before class names are resolved to bits.
struct RawRow {
    term: String,
    line: usize,
    target: RawTarget,
    flags: Vec<String>,
}

enum RawTarget {
    Subtype(usize, f32),
    None,
    Alias(String),
}

/// An effect before class names are resolved.
struct RawEffect {
    subtype: usize,
    weight: f32,
    needs: Vec<Vec<String>>,
    unless: Vec<String>,
}

/// Parses and validates a lexicon TSV.
///
/// # Errors
///
/// [`LexiconError::Invalid`] listing every bad row, or
/// [`LexiconError::Empty`] when there are no rows.
pub(crate) fn parse(tsv: &str) -> Result<Lexicon, LexiconError> {
    let mut problems = Vec::new();
    let mut rows: Vec<RawRow> = Vec::new();
    let mut seen: BTreeMap<String, usize> = BTreeMap::new();

    for (idx, raw_line) in tsv.lines().enumerate() {
        let line = idx + 1;
        let trimmed = raw_line.trim_end_matches('\r');
        if trimmed.trim().is_empty() || trimmed.trim_start().starts_with('#') {
            continue;
        }
        let cols: Vec<&str> = trimmed.split('\t').collect();
        if !(3..=4).contains(&cols.len()) {
            problems.push(LexiconProblem {
                line,
                kind: ProblemKind::ColumnCount(cols.len()),
            });
            continue;
        }
        let term = normalize(cols[0]);
        if term.is_empty() {
            problems.push(LexiconProblem {
                line,
                kind: ProblemKind::EmptyTerm,
            });
            continue;
        }
        if let Some(&first_line) = seen.get(&term) {
            problems.push(LexiconProblem {
                line,
                kind: ProblemKind::DuplicateTerm {
                    term: term.clone(),
                    first_line,
                },
            });
            continue;
        }
        seen.insert(term.clone(), line);

        let target_col = cols[1].trim();
        let weight_col = cols[2].trim();
        let target = if let Some(alias) = target_col.strip_prefix('=') {
            RawTarget::Alias(normalize(alias))
        } else if target_col == "-" {
            match parse_weight(weight_col, false) {
                Some(_) => RawTarget::None,
                None => {
                    problems.push(LexiconProblem {
                        line,
                        kind: ProblemKind::BadWeight(weight_col.to_owned()),
                    });
                    continue;
                }
            }
        } else {
            let Some(code) = subtype_code(target_col) else {
                problems.push(LexiconProblem {
                    line,
                    kind: ProblemKind::UnknownSubtype(target_col.to_owned()),
                });
                continue;
            };
            let Some(weight) = parse_weight(weight_col, true) else {
                problems.push(LexiconProblem {
                    line,
                    kind: ProblemKind::BadWeight(weight_col.to_owned()),
                });
                continue;
            };
            let index = SUBTYPE_CODES.iter().position(|c| *c == code).unwrap_or(0);
            RawTarget::Subtype(index, weight)
        };
        let flags = cols
            .get(3)
            .map(|f| {
                f.split(',')
                    .map(str::trim)
                    .filter(|s| !s.is_empty())
                    .map(str::to_owned)
                    .collect()
            })
            .unwrap_or_default();
        rows.push(RawRow {
            term,
            line,
            target,
            flags,
        });
    }

    // Class table: builtin classes first, then every `class:` name in file order.
    let mut classes: Vec<String> = BUILTIN_CLASSES.iter().map(|c| (*c).to_owned()).collect();
    let mut too_many_reported = false;
    for row in &rows {
        for flag in &row.flags {
            if let Some(name) = flag.strip_prefix("class:")
                && !classes.iter().any(|c| c == name)
            {
                if classes.len() >= MAX_CLASSES {
                    if !too_many_reported {
                        problems.push(LexiconProblem {
                            line: row.line,
                            kind: ProblemKind::TooManyClasses,
                        });
                        too_many_reported = true;
                    }
                } else {
                    classes.push(name.to_owned());
                }
            }
        }
    }
    let bit = |name: &str| classes.iter().position(|c| c == name).map(|i| 1u64 << i);

    // Resolve aliases against non-alias rows.
    let by_term: BTreeMap<&str, usize> = rows
        .iter()
        .enumerate()
        .map(|(i, r)| (r.term.as_str(), i))
        .collect();

    let mut rules = Vec::with_capacity(rows.len());
    for row in &rows {
        let (source, extra_flags): (&RawRow, &[String]) = match &row.target {
            RawTarget::Alias(target) => match by_term.get(target.as_str()).map(|&i| &rows[i]) {
                Some(found) if !matches!(found.target, RawTarget::Alias(_)) => (found, &row.flags),
                _ => {
                    problems.push(LexiconProblem {
                        line: row.line,
                        kind: ProblemKind::BadAlias(target.clone()),
                    });
                    continue;
                }
            },
            _ => (row, &[]),
        };
        let mut rule = Rule {
            term: row.term.clone(),
            line: row.line,
            effects: Vec::new(),
            anchor: false,
            classes: 0,
            tags: Vec::new(),
        };
        let mut primary = match source.target {
            RawTarget::Subtype(subtype, weight) => Some(RawEffect {
                subtype,
                weight,
                needs: Vec::new(),
                unless: Vec::new(),
            }),
            _ => None,
        };
        let mut extra_effects = Vec::new();
        let mut ok = true;
        for flag in source.flags.iter().chain(extra_flags) {
            let (key, value) = flag.split_once(':').unwrap_or((flag.as_str(), ""));
            let mut problem = |kind| {
                problems.push(LexiconProblem {
                    line: row.line,
                    kind,
                });
                ok = false;
            };
            match key {
                "anchor" if value.is_empty() => rule.anchor = true,
                "party" if value.is_empty() => match primary.as_mut() {
                    Some(effect) => effect.needs.push(vec!["conflict".to_owned()]),
                    None => problem(ProblemKind::UnknownFlag(flag.clone())),
                },
                "class" if !value.is_empty() => match bit(value) {
                    Some(b) => rule.classes |= b,
                    None => problem(ProblemKind::TooManyClasses),
                },
                "tag" => match TAGS.iter().position(|t| *t == value) {
                    Some(idx) => rule.tags.push(idx),
                    None => problem(ProblemKind::UnknownTag(value.to_owned())),
                },
                "needs" | "unless" if !value.is_empty() => match primary.as_mut() {
                    Some(effect) if key == "needs" => {
                        effect
                            .needs
                            .push(value.split('|').map(str::to_owned).collect());
                    }
                    Some(effect) => effect.unless.push(value.to_owned()),
                    None => problem(ProblemKind::UnknownFlag(flag.clone())),
                },
                "also" => match parse_also(value) {
                    Some(effect) => extra_effects.push(effect),
                    None => problem(ProblemKind::UnknownFlag(flag.clone())),
                },
                _ => problem(ProblemKind::UnknownFlag(flag.clone())),
            }
        }
        let mut resolve = |names: &[String]| -> u64 {
            let mut mask = 0;
            for name in names {
                match bit(name) {
                    Some(b) => mask |= b,
                    None => {
                        problems.push(LexiconProblem {
                            line: row.line,
                            kind: ProblemKind::UndefinedClass(name.clone()),
                        });
                        ok = false;
                    }
                }
            }
            mask
        };
        for raw in primary.into_iter().chain(extra_effects) {
            let needs = raw.needs.iter().map(|alts| resolve(alts)).collect();
            let unless = resolve(&raw.unless);
            rule.effects.push(Effect {
                subtype: raw.subtype,
                weight: raw.weight,
                needs,
                unless,
            });
        }
        rule.tags.sort_unstable();
        rule.tags.dedup();
        if ok {
            rules.push(rule);
        }
    }

    // `class:` names referenced only through needs/unless must be defined by
    // some row; `resolve` already reported those. Sort problems for stable output.
    if !problems.is_empty() {
        problems.sort_by_key(|p| p.line);
        return Err(LexiconError::Invalid { problems });
    }
    if rules.is_empty() {
        return Err(LexiconError::Empty);
    }
    Ok(Lexicon { rules, classes })
}

/// Parses a weight column. Subtype rows need `0 < w <= MAX_WEIGHT`; `-` rows
/// accept `0` or `-` because their weight is unused.
fn parse_weight(text: &str, positive: bool) -> Option<f32> {
    if !positive && (text == "-" || text.is_empty()) {
        return Some(0.0);
    }
    let w: f32 = text.parse().ok()?;
    let in_range = w.is_finite() && w <= MAX_WEIGHT && if positive { w > 0.0 } else { w >= 0.0 };
    in_range.then_some(w)
}

/// Parses `CODE@weight[@class[|alt]…]` from an `also:` flag: a second effect
/// with its own condition (family words add to domestic violence when there
/// is a fight, and to family disputes when there is a quarrel).
fn parse_also(value: &str) -> Option<RawEffect> {
    let mut parts = value.split('@');
    let code = subtype_code(parts.next()?)?;
    let weight = parse_weight(parts.next()?, true)?;
    let needs = parts
        .map(|p| p.split('|').map(str::to_owned).collect::<Vec<_>>())
        .filter(|alts| alts.iter().all(|a| !a.is_empty()))
        .collect();
    let subtype = SUBTYPE_CODES.iter().position(|c| *c == code)?;
    Some(RawEffect {
        subtype,
        weight,
        needs,
        unless: Vec::new(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn problems(tsv: &str) -> Vec<LexiconProblem> {
        match parse(tsv) {
            Err(LexiconError::Invalid { problems }) => problems,
            other => panic!("expected invalid lexicon, got {other:?}"),
        }
    }

    #[test]
    fn parses_rows_flags_and_aliases() {
        let lex = parse(
            "# comment\n\
             微信\t-\t0\tclass:social\n\
             wx\t=微信\t-\n\
             邻居\tDSP_NEIGHBOUR\t1.5\tparty\n\
             流血\tCRIM_ASSAULT\t1\ttag:injury,needs:fight\n\
             打架\tPUB_FIGHT\t1.5\tclass:fight\n\
             老公\tPUB_DOMESTIC_VIOLENCE\t1.5\tneeds:fight,also:DSP_FAMILY@1.5@conflict\n",
        )
        .expect("valid");
        assert_eq!(lex.rules.len(), 6);
        let wx = &lex.rules[1];
        assert_eq!(wx.term, "wx");
        assert_eq!(wx.classes, lex.class_bit("social").expect("class"));
        let husband = &lex.rules[5];
        assert_eq!(husband.effects.len(), 2);
        assert_eq!(
            husband.effects[1].needs,
            vec![lex.class_bit("conflict").expect("builtin")]
        );
    }

    #[test]
    fn reports_every_problem_with_line_numbers() {
        let found = problems(
            "打架\tPUB_FIGHT\t1.5\n\
             偷\tCRIM_NOPE\t1\n\
             抢\tCRIM_ROBBERY\tabc\n\
             抢2\tCRIM_ROBBERY\t-1\n\
             打架\tPUB_FIGHT\t1\n\
             醉\tPUB_DRUNK\t1\ttag:sleepy\n\
             只有两列\tPUB_DRUNK\n\
             喝多\tPUB_DRUNK\t1\tneeds:nowhere\n\
             ｗｘ\t=微信\t-\n",
        );
        let lines: Vec<usize> = found.iter().map(|p| p.line).collect();
        assert_eq!(lines, vec![2, 3, 4, 5, 6, 7, 8, 9]);
        assert!(matches!(&found[0].kind, ProblemKind::UnknownSubtype(s) if s == "CRIM_NOPE"));
        assert!(matches!(found[1].kind, ProblemKind::BadWeight(_)));
        assert!(matches!(found[2].kind, ProblemKind::BadWeight(_)));
        assert!(matches!(
            found[3].kind,
            ProblemKind::DuplicateTerm { first_line: 1, .. }
        ));
        assert!(matches!(found[4].kind, ProblemKind::UnknownTag(_)));
        assert!(matches!(found[5].kind, ProblemKind::ColumnCount(2)));
        assert!(matches!(found[6].kind, ProblemKind::UndefinedClass(_)));
        assert!(matches!(found[7].kind, ProblemKind::BadAlias(_)));
        let message = LexiconError::Invalid { problems: found }.to_string();
        assert!(
            message.contains("line 2: unknown subtype code `CRIM_NOPE`"),
            "{message}"
        );
    }

    #[test]
    fn duplicates_are_detected_after_normalisation() {
        let found = problems("ＡＰＰ\t-\t0\tanchor\napp\t-\t0\tanchor\n");
        assert!(matches!(&found[0].kind, ProblemKind::DuplicateTerm { term, .. } if term == "app"));
    }

    #[test]
    fn weights_must_be_in_range() {
        for bad in ["0", "11", "NaN", "inf", ""] {
            let tsv = format!("打架\tPUB_FIGHT\t{bad}\n");
            assert!(
                matches!(problems(&tsv)[0].kind, ProblemKind::BadWeight(_)),
                "{bad}"
            );
        }
        assert!(matches!(parse(""), Err(LexiconError::Empty)));
    }
}
