//! Feature extraction for the linear model: one pass over the normalised text plus what the
//! rules already found.
//!
//! * **Character n-grams** (1 … `max_n`) of the normalised text with digits folded to `0` and
//!   every clause break folded to `|`, between `^` and `$` marks. Characters cover unseen
//!   compounds, typos that keep one character right and Latin abbreviations without a word list.
//! * **Negation**: an n-gram that starts where the rules' negation scope starts (a negator at
//!   most two characters before, same clause) is a different feature (`!被偷` is not `被偷`).
//! * **Rule evidence**: per subtype the lexicon's counted score and whether it was negated, the
//!   rules' decision and the rule that made it, the tags: the rules stay high-precision evidence
//!   and the model learns how far to trust them.
//! * **Context**: QR kind, call or QR, inside a compound, scenic area, the operator's prior.
//!
//! Keys are 64-bit hashes of a namespace byte and the feature's content, so no vocabulary is
//! needed to extract and the same text gives the same keys on every machine.

use crate::text::SUBTYPE_CODES;

/// Settings of the extractor; stored in the model file so a model is always read with the
/// extractor it was trained with.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FeatureConfig {
    /// Longest character n-gram.
    pub max_n: usize,
    /// Divisor of a subtype's lexicon score (scores are capped at 2 × this).
    pub lexicon_scale: f32,
}

impl Default for FeatureConfig {
    fn default() -> Self {
        FeatureConfig {
            max_n: 2,
            lexicon_scale: 2.0,
        }
    }
}

/// Where a feature came from, so the heaviest ones can be named for an explanation without
/// building a string for every feature of every text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Origin {
    /// Characters `start .. start + len` of [`Features::chars`].
    Gram { start: u32, len: u8, negated: bool },
    /// The lexicon's counted score for a subtype.
    Lexicon(u8),
    /// A negated lexicon match for a subtype.
    LexiconNegated(u8),
    /// The rules decided this subtype.
    RuleSubtype(u8),
    /// The rule that decided.
    Rule(&'static str),
    /// A tag the lexicon found.
    Tag(&'static str),
    /// A context flag.
    Context(&'static str),
}

/// The features of one text.
#[derive(Debug, Clone, Default)]
pub(crate) struct Features {
    pub(crate) keys: Vec<u64>,
    pub(crate) values: Vec<f32>,
    pub(crate) origins: Vec<Origin>,
    /// The folded characters the n-grams were cut from.
    pub(crate) chars: Vec<char>,
    /// Per character of `chars`: inside a negation scope (scratch).
    negated: Vec<bool>,
}

/// What the rules found in a text: the model's rule-evidence inputs.
#[derive(Debug, Clone, Copy)]
pub(crate) struct RuleEvidence<'a> {
    /// Counted lexicon score per subtype.
    pub(crate) scores: &'a [f32; 62],
    /// Subtypes with a negated lexicon match.
    pub(crate) negated: &'a [bool; 62],
    /// The rules' answer.
    pub(crate) subtype: usize,
    /// The rule that decided.
    pub(crate) rule: &'static str,
    /// Tags found.
    pub(crate) tags: &'a [&'static str],
}

/// Context of a text besides its words.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Context<'a> {
    pub(crate) qr_kind: Option<&'a str>,
    pub(crate) operator_default: Option<usize>,
    pub(crate) inside_compound: bool,
    pub(crate) scenic_area: bool,
}

const NS_GRAM: u64 = 1;
const NS_GRAM_NEG: u64 = 2;
const NS_LEX: u64 = 4;
const NS_LEX_NEG: u64 = 5;
const NS_RULE_SUB: u64 = 6;
const NS_RULE: u64 = 7;
const NS_TAG: u64 = 8;
const NS_CTX: u64 = 9;
const NS_BIAS: u64 = 10;

const QR_KINDS: [&str; 4] = ["alarm", "help", "dispute", "consult"];

fn mix(h: u64, x: u64) -> u64 {
    (h ^ x).wrapping_mul(0x0100_0000_01b3)
}

/// SplitMix64's finaliser: spreads FNV's weak low bits over the whole key.
fn finish(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

fn key(ns: u64, parts: impl IntoIterator<Item = u64>) -> u64 {
    let mut h = mix(0xcbf2_9ce4_8422_2325, ns);
    for p in parts {
        h = mix(h, p);
    }
    finish(h)
}

fn str_key(ns: u64, s: &str) -> u64 {
    key(ns, s.bytes().map(u64::from))
}

/// Folds a character for n-grams: digits to `0`, clause breaks to `|`.
fn fold(ch: char) -> char {
    if ch.is_ascii_digit() || ('０'..='９').contains(&ch) {
        '0'
    } else if crate::text::is_clause_break(ch) {
        '|'
    } else {
        ch
    }
}

impl Features {
    fn push(&mut self, key: u64, value: f32, origin: Origin) {
        self.keys.push(key);
        self.values.push(value);
        self.origins.push(origin);
    }

    /// A readable name of feature `i`, for explanations.
    pub(crate) fn name(&self, i: usize) -> String {
        let code = |s: u8| SUBTYPE_CODES.get(usize::from(s)).copied().unwrap_or("?");
        match self.origins.get(i) {
            Some(Origin::Gram {
                start,
                len,
                negated,
            }) => {
                let from = *start as usize;
                let gram: String = self
                    .chars
                    .get(from..from + usize::from(*len))
                    .map(|c| c.iter().collect())
                    .unwrap_or_default();
                format!("{}{gram}", if *negated { "!" } else { "" })
            }
            Some(Origin::Lexicon(s)) => format!("lexicon:{}", code(*s)),
            Some(Origin::LexiconNegated(s)) => format!("lexicon:!{}", code(*s)),
            Some(Origin::RuleSubtype(s)) => format!("rules:{}", code(*s)),
            Some(Origin::Rule(r)) => format!("rule:{r}"),
            Some(Origin::Tag(t)) => format!("tag:{t}"),
            Some(Origin::Context(c)) => format!("context:{c}"),
            None => String::new(),
        }
    }
}

/// Extracts the features of one text, already normalised ([`crate::text::normalize`]), with
/// the rules' negation scope per byte.
pub(crate) fn extract(
    config: &FeatureConfig,
    normalised: &str,
    negated_at: &[bool],
    rules: &RuleEvidence<'_>,
    context: &Context<'_>,
) -> Features {
    let mut f = Features::default();
    extract_into(&mut f, config, normalised, negated_at, rules, context);
    f
}

/// [`extract`] into `f`, reusing its buffers (the classifier keeps one per thread).
pub(crate) fn extract_into(
    f: &mut Features,
    config: &FeatureConfig,
    normalised: &str,
    negated_at: &[bool],
    rules: &RuleEvidence<'_>,
    context: &Context<'_>,
) {
    f.keys.clear();
    f.values.clear();
    f.origins.clear();
    f.chars.clear();
    f.chars.push('^');
    let mut negated = std::mem::take(&mut f.negated);
    negated.clear();
    negated.push(false);
    let mut prev_break = false;
    for (byte, ch) in normalised.char_indices() {
        let folded = fold(ch);
        // Runs of clause breaks carry no more than one.
        if folded == '|' && prev_break {
            continue;
        }
        prev_break = folded == '|';
        f.chars.push(folded);
        negated.push(negated_at.get(byte).copied().unwrap_or(false));
    }
    f.chars.push('$');
    negated.push(false);

    let n_chars = f.chars.len();
    let max_n = config.max_n.max(1);
    let grams = (1..=max_n)
        .map(|n| n_chars.saturating_sub(n - 1))
        .sum::<usize>();
    // Long texts have more n-grams; scaling keeps a text's n-gram vector at unit length so
    // length alone does not outvote the rule evidence.
    let value = 1.0 / (grams as f32).sqrt().max(1.0);
    f.keys.reserve(grams + 80);
    f.values.reserve(grams + 80);
    f.origins.reserve(grams + 80);
    for start in 0..n_chars {
        let negated = negated[start];
        let mut h = mix(
            0xcbf2_9ce4_8422_2325,
            if negated { NS_GRAM_NEG } else { NS_GRAM },
        );
        for n in 1..=max_n {
            let Some(&ch) = f.chars.get(start + n - 1) else {
                break;
            };
            h = mix(h, u64::from(ch));
            // A lone boundary mark says nothing.
            if n == 1 && (ch == '^' || ch == '$') {
                continue;
            }
            f.push(
                finish(h),
                value,
                Origin::Gram {
                    start: start as u32,
                    len: n as u8,
                    negated,
                },
            );
        }
    }

    let scale = config.lexicon_scale.max(f32::EPSILON);
    for (s, &score) in rules.scores.iter().enumerate() {
        if score > 0.0 {
            f.push(
                key(NS_LEX, [s as u64]),
                (score / scale).min(2.0),
                Origin::Lexicon(s as u8),
            );
        }
        if rules.negated[s] {
            f.push(
                key(NS_LEX_NEG, [s as u64]),
                1.0,
                Origin::LexiconNegated(s as u8),
            );
        }
    }
    f.push(
        key(NS_RULE_SUB, [rules.subtype as u64]),
        1.0,
        Origin::RuleSubtype(rules.subtype as u8),
    );
    f.push(str_key(NS_RULE, rules.rule), 1.0, Origin::Rule(rules.rule));
    for tag in rules.tags {
        f.push(str_key(NS_TAG, tag), 1.0, Origin::Tag(tag));
    }

    let qr = context
        .qr_kind
        .and_then(|k| QR_KINDS.iter().find(|q| k.eq_ignore_ascii_case(q)));
    let source = if context.qr_kind.is_some() {
        "qr"
    } else {
        "call"
    };
    f.push(str_key(NS_CTX, source), 1.0, Origin::Context(source));
    if let Some(kind) = qr {
        f.push(str_key(NS_CTX, kind), 1.0, Origin::Context(kind));
    }
    if context.inside_compound {
        f.push(
            str_key(NS_CTX, "compound"),
            1.0,
            Origin::Context("compound"),
        );
    }
    if context.scenic_area {
        f.push(str_key(NS_CTX, "scenic"), 1.0, Origin::Context("scenic"));
    }
    if let Some(s) = context.operator_default {
        let code = SUBTYPE_CODES.get(s).copied().unwrap_or("?");
        f.push(key(NS_CTX, [1_000 + s as u64]), 1.0, Origin::Context(code));
    }
    let _ = NS_BIAS;
    f.negated = negated;
}

#[cfg(test)]
mod tests {
    use super::*;

    fn no_rules() -> ([f32; 62], [bool; 62]) {
        ([0.0; 62], [false; 62])
    }

    fn names(text: &str) -> Vec<String> {
        let (scores, negated) = no_rules();
        let rules = RuleEvidence {
            scores: &scores,
            negated: &negated,
            subtype: 61,
            rule: "no_evidence",
            tags: &[],
        };
        let text = crate::text::normalize(text);
        let f = extract(
            &FeatureConfig::default(),
            &text,
            &crate::text::negation_starts(&text),
            &rules,
            &Context::default(),
        );
        (0..f.keys.len()).map(|i| f.name(i)).collect()
    }

    #[test]
    fn grams_fold_digits_and_breaks_and_mark_negation() {
        let n = names("不是被偷，是忘在车上了12元");
        assert!(n.contains(&"!被偷".to_owned()), "{n:?}");
        assert!(!n.contains(&"被偷".to_owned()), "{n:?}");
        assert!(n.contains(&"忘在".to_owned()), "{n:?}");
        assert!(n.contains(&"0元".to_owned()), "{n:?}");
        assert!(n.contains(&"!偷|".to_owned()), "{n:?}");
        assert!(n.contains(&"^不".to_owned()), "{n:?}");
    }

    #[test]
    fn the_same_text_gives_the_same_keys() {
        let (scores, negated) = no_rules();
        let rules = RuleEvidence {
            scores: &scores,
            negated: &negated,
            subtype: 0,
            rule: "group:theft",
            tags: &["alcohol"],
        };
        let neg = crate::text::negation_starts("电瓶车被偷了");
        let a = extract(
            &FeatureConfig::default(),
            "电瓶车被偷了",
            &neg,
            &rules,
            &Context::default(),
        );
        let b = extract(
            &FeatureConfig::default(),
            "电瓶车被偷了",
            &neg,
            &rules,
            &Context::default(),
        );
        assert_eq!(a.keys, b.keys);
        assert_eq!(a.values, b.values);
    }

    #[test]
    fn odd_input_never_panics() {
        for text in ["", " ", "😀😀", "\u{0}\u{7}", "a", &"长".repeat(10_000)] {
            let _ = names(text);
        }
    }
}
