//! Rule-based Chinese text classifier for 110 call descriptions and QR
//! doorplate reports (DOMAIN §8).
//!
//! How it works, in the order `classify` applies it:
//!
//! 1. **Normalise** the text (full-width → half-width, Latin lowercase,
//!    whitespace collapsed) so "ＷＸ", "Wx" and "wx" are one cue.
//! 2. **Match** the curated lexicon on the raw normalised text with one
//!    Aho-Corasick automaton (`LeftmostLongest`, so 入室盗窃 beats 盗窃).
//!    Segmentation is *not* used here: jieba splits colloquial cues.
//! 3. **Negate** matches preceded by 没/没有/未/不是/并非/并没有/无 in the same
//!    clause; they stay in the evidence with `negated: true` but count for
//!    nothing (not even for tags or classes).
//! 4. **Condition**: a row may need a class (`needs:fight`), be cancelled by
//!    one (`unless:alcohol`), or be a dispute party cue that only counts when
//!    the text is a quarrel (`party`). Fraud only counts with an anchor.
//! 5. **Precedence**: groups are tried life-safety first; the first whose best
//!    subtype reaches [`FIRE_THRESHOLD`] wins, highest sum inside the group.
//! 6. **Bends**: a handful of documented corrections to strict precedence
//!    (family violence with injuries stays domestic violence; a drunk person
//!    making trouble is `PUB_DRUNK`; disputes in a scenic area are tourist
//!    disputes; tip-offs; complaints about the police).
//! 7. **Fallbacks** when no group fires: invalid-call phrases, then the
//!    operator's category, then the QR kind, then weak evidence, then
//!    `OTH_UNCLASSIFIED`.
//!
//! The classifier is pure and deterministic: no I/O, no clock, no hash-map
//! iteration; scores live in a fixed array indexed by taxonomy position.

mod keywords;
mod lexicon;
mod negation;
mod normalize;
mod priors;
mod taxonomy;

#[cfg(test)]
mod tests;

use std::fmt;

use aho_corasick::{AhoCorasick, AhoCorasickBuilder, MatchKind};
use serde::Serialize;

pub use keywords::Keywords;
pub use lexicon::{LexiconError, LexiconProblem, ProblemKind, TAGS};
pub(crate) use negation::negation_starts;
pub(crate) use normalize::is_clause_break;
pub use normalize::normalize;
pub use taxonomy::{
    CATEGORY_CODES, Group, SUBTYPE_CODES, category_of, group_at, group_of, subtype_code,
};

use crate::model::{LinearModel, features};
use lexicon::{Lexicon, Rule};
use priors::Prior;

/// Version of the rules and lexicon; stored with every classification so a
/// re-run can be compared against the version that produced a row.
pub const CLASSIFIER_VERSION: &str = "kw-2026.11.1";

/// The curated lexicon shipped with the crate.
pub const BUILTIN_LEXICON: &str = include_str!("../../../schemas/classifier/lexicon.tsv");
/// The jieba user dictionary shipped with the crate.
pub const BUILTIN_USERDICT: &str = include_str!("../../../schemas/classifier/userdict.txt");
/// The keyword stop-word list shipped with the crate.
pub const BUILTIN_STOPWORDS: &str = include_str!("../../../schemas/classifier/stopwords.txt");

/// A group fires when its best subtype's summed evidence reaches this.
pub const FIRE_THRESHOLD: f32 = 1.0;
/// Below the firing threshold, the best subtype still wins the fallback if
/// its evidence reaches this and nothing else decided.
pub const WEAK_THRESHOLD: f32 = 0.5;
/// A specific subtype beats its group's catch-all (`*_OTHER`) when its own
/// evidence reaches this and at least [`SPECIFIC_SHARE`] of the catch-all's,
/// even if the catch-all summed more (several generic fraud anchors should
/// not outvote one 刷单, but a pile of street-con cues should outvote one
/// stray 冒充快递).
pub const SPECIFIC_MIN: f32 = 0.8;
/// See [`SPECIFIC_MIN`].
pub const SPECIFIC_SHARE: f32 = 0.5;
/// A complaint about the police overrides a fired group of lower urgency
/// (public order and below) when its evidence reaches this.
pub const COMPLAINT_OVERRIDE: f32 = 1.5;
/// At most this many evidence entries are returned (scoring uses all).
pub const MAX_EVIDENCE: usize = 64;
/// An answer whose calibrated confidence is below this keeps its subtype and is tagged
/// `needs_review`.
pub const NEEDS_REVIEW_BELOW: f32 = 0.5;
/// The heaviest model features named in an explanation.
pub const MAX_FEATURES: usize = 6;

/// Groups in precedence order, after the empty-text check.
const PRECEDENCE: [Group; 11] = [
    Group::LifeSafety,
    Group::Violent,
    Group::Fraud,
    Group::Theft,
    Group::Hazard,
    Group::Public,
    Group::Dispute,
    Group::Traffic,
    Group::Help,
    Group::Report,
    Group::NonPolice,
];

/// Catch-all subtypes that yield to a specific sibling with enough evidence.
/// Their cue words are generic (被偷, 被骗, 吵架); `HELP_OTHER` is not listed
/// because its cues (被困, 抛锚) are specific.
const CATCH_ALLS: [&str; 3] = ["CRIM_THEFT_OTHER", "FRAUD_OTHER", "DSP_OTHER"];

/// What the classifier looks at for one event.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TextInput<'a> {
    /// The call description or QR report text (any UTF-8).
    pub text: &'a str,
    /// QR report kind: `alarm`, `help`, `dispute` or `consult`.
    pub qr_kind: Option<&'a str>,
    /// The operator's pick: a Chinese label (纠纷, 诈骗, 盗窃, 交通, 求助,
    /// 火警, …) or a taxonomy code (`FRAUD_INVEST`, `DSP`).
    pub operator_category: Option<&'a str>,
    /// The location resolved to inside a residential compound.
    pub inside_compound: bool,
    /// The location is in a scenic area (七宝老街 …).
    pub scenic_area: bool,
}

impl<'a> TextInput<'a> {
    /// Input with only text.
    pub fn new(text: &'a str) -> Self {
        Self {
            text,
            ..Self::default()
        }
    }
}

/// One matched lexicon term and what it contributed.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Evidence {
    /// The lexicon term (normalised) that matched.
    pub term: String,
    /// The subtype it speaks for; `None` for rows that only carry a tag,
    /// a class or a fraud anchor.
    pub subtype: Option<&'static str>,
    /// The row's weight for that subtype.
    pub weight: f32,
    /// The match was negated (没有被偷) and counted for nothing.
    pub negated: bool,
    /// The weight was added to the subtype's score (not negated, and its
    /// `needs`/`unless`/`party` conditions held).
    pub counted: bool,
}

/// The classifier's answer for one event.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TextClassification {
    /// A subtype code from the taxonomy (the rules alone never answer `OTH_DUPLICATE`).
    pub subtype: &'static str,
    /// Confidence in `0..=1`: grows with the winner's evidence and shrinks
    /// with the runner-up's.
    pub score: f32,
    /// Every lexicon match, in text order (at most [`MAX_EVIDENCE`]).
    pub evidence: Vec<Evidence>,
    /// The best other subtype and its confidence, for audit.
    pub runner_up: Option<(&'static str, f32)>,
    /// Tags found in the text, in [`TAGS`] order (`alcohol`, `injury`,
    /// `weapon`). Time and place tags are the caller's job.
    pub tags: Vec<&'static str>,
    /// Which rule decided: `model` (the model, disagreeing with the rules),
    /// `model+rules` (the model, agreeing with them) or, without a model or
    /// for empty text, the rules' own: `group:<name>`, `bend:<name>`,
    /// `empty_text`, `invalid_phrase`, `prior:operator`, `prior:qr_kind`,
    /// `weak_evidence` or `no_evidence`.
    pub rule: &'static str,
    /// What the rules alone said.
    pub rules_subtype: &'static str,
    /// The confidence is below [`NEEDS_REVIEW_BELOW`]: a person should look.
    pub needs_review: bool,
    /// The model features that pushed hardest towards the answer, with their
    /// contribution to its score (at most [`MAX_FEATURES`]).
    pub features: Vec<(String, f32)>,
}

impl TextClassification {
    /// The category code of [`Self::subtype`].
    pub fn category(&self) -> &'static str {
        category_of(self.subtype)
    }
}

/// Class bits the decision logic refers to by name; `0` when the lexicon
/// does not define the class, which simply disables the related bend.
#[derive(Debug, Clone, Copy, Default)]
struct Bits {
    compound: u64,
    scenic: u64,
    conflict: u64,
    alcohol: u64,
    brawl: u64,
    report: u64,
}

/// The text classifier: lexicon automaton, rules and the keyword segmenter.
/// Build it once and share it; `classify` and `keywords` take `&self`.
pub struct TextClassifier {
    rules: Vec<Rule>,
    matcher: AhoCorasick,
    bits: Bits,
    keywords: Keywords,
    lexicon_sha256: String,
    model: Option<LinearModel>,
}

/// What the rules made of one text: their answer and the model's rule evidence.
#[derive(Debug, Clone)]
pub(crate) struct RuleView {
    /// The normalised text.
    pub(crate) text: String,
    /// Per byte of `text`: a match starting there is negated.
    pub(crate) negated_at: Vec<bool>,
    pub(crate) result: TextClassification,
    pub(crate) scores: [f32; 62],
    pub(crate) negated: [bool; 62],
    pub(crate) empty: bool,
    pub(crate) operator_default: Option<usize>,
}

impl fmt::Debug for TextClassifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TextClassifier")
            .field("version", &self.version())
            .field("rules", &self.rules.len())
            .field("keywords", &self.keywords)
            .finish_non_exhaustive()
    }
}

/// One automaton match after the boundary check.
#[derive(Debug, Clone, Copy)]
struct Hit {
    rule: usize,
    negated: bool,
}

impl TextClassifier {
    /// Builds the classifier from the lexicon, user dictionary, stop-words and
    /// model embedded in the crate.
    ///
    /// # Errors
    ///
    /// A [`LexiconError`] if an embedded file is invalid (a test guards this).
    pub fn builtin() -> Result<Self, LexiconError> {
        let rules = Self::rules_only()?;
        if crate::model::BUILTIN_MODEL.is_empty() {
            return Ok(rules);
        }
        Ok(rules.with_model(LinearModel::from_bytes(crate::model::BUILTIN_MODEL)?))
    }

    /// The embedded rules without the model (for training and comparisons).
    ///
    /// # Errors
    ///
    /// A [`LexiconError`] if an embedded file is invalid.
    pub fn rules_only() -> Result<Self, LexiconError> {
        Self::from_parts(BUILTIN_LEXICON, BUILTIN_USERDICT, BUILTIN_STOPWORDS)
    }

    /// This classifier deciding with `model` on top of its rules.
    pub fn with_model(mut self, model: LinearModel) -> Self {
        self.model = Some(model);
        self
    }

    /// The model, when there is one.
    pub fn model(&self) -> Option<&LinearModel> {
        self.model.as_ref()
    }

    /// What every classification is stamped with (`classifier_version`): the
    /// model's name and the rules' version, or the rules' version alone.
    pub fn version(&self) -> String {
        match &self.model {
            Some(m) => format!("{}+{CLASSIFIER_VERSION}", m.name()),
            None => CLASSIFIER_VERSION.to_owned(),
        }
    }

    /// SHA-256 of the lexicon text the rules were built from.
    pub fn lexicon_sha256(&self) -> &str {
        &self.lexicon_sha256
    }

    /// Builds the classifier from a custom lexicon TSV, with the embedded user
    /// dictionary and stop-words.
    ///
    /// # Errors
    ///
    /// [`LexiconError::Invalid`] listing every bad row with its line number.
    pub fn from_lexicon(tsv: &str) -> Result<Self, LexiconError> {
        Self::from_parts(tsv, BUILTIN_USERDICT, BUILTIN_STOPWORDS)
    }

    /// Builds the classifier from all three source texts.
    ///
    /// # Errors
    ///
    /// A [`LexiconError`] for an invalid lexicon or user dictionary.
    pub fn from_parts(tsv: &str, userdict: &str, stopwords: &str) -> Result<Self, LexiconError> {
        let Lexicon { rules, classes } = lexicon::parse(tsv)?;
        let matcher = AhoCorasickBuilder::new()
            .match_kind(MatchKind::LeftmostLongest)
            .build(rules.iter().map(|r| r.term.as_str()))
            .map_err(LexiconError::Automaton)?;
        let bit = |name: &str| {
            classes
                .iter()
                .position(|c| c == name)
                .map_or(0, |idx| 1u64 << idx)
        };
        let bits = Bits {
            compound: bit("compound"),
            scenic: bit("scenic"),
            conflict: bit("conflict"),
            alcohol: bit("alcohol"),
            brawl: bit("brawl"),
            report: bit("report"),
        };
        let keywords = Keywords::new(userdict, stopwords)?;
        Ok(Self {
            rules,
            matcher,
            bits,
            keywords,
            lexicon_sha256: crate::model::sha256_hex(tsv.as_bytes()),
            model: None,
        })
    }

    /// Number of lexicon rules.
    pub fn rule_count(&self) -> usize {
        self.rules.len()
    }

    /// Word-frequency tokens of `text` (see [`Keywords::extract`]).
    pub fn keywords(&self, text: &str, max: usize) -> Vec<String> {
        self.keywords.extract(text, max)
    }

    /// Classifies one event: the rules, then the model when there is one.
    /// Total: every input yields a taxonomy code.
    pub fn classify(&self, input: &TextInput<'_>) -> TextClassification {
        let view = self.rules(input);
        match &self.model {
            Some(model) if !view.empty => decide(model, input, view),
            _ => view.result,
        }
    }

    /// The rules' answer alone.
    pub fn classify_rules(&self, input: &TextInput<'_>) -> TextClassification {
        self.rules(input).result
    }

    /// The model's features of one text (for training).
    pub(crate) fn model_features(
        &self,
        config: &features::FeatureConfig,
        input: &TextInput<'_>,
    ) -> features::Features {
        let view = self.rules(input);
        features::extract(
            config,
            &view.text,
            &view.negated_at,
            &evidence_of(&view),
            &context_of(input, &view),
        )
    }

    /// The rules' view (for the model's timing test).
    #[cfg(test)]
    pub(crate) fn rules_view(&self, input: &TextInput<'_>) -> RuleView {
        self.rules(input)
    }

    /// The features `model` reads for a text (for the model's timing test).
    #[cfg(test)]
    pub(crate) fn features_of(
        &self,
        model: &LinearModel,
        input: &TextInput<'_>,
        view: &RuleView,
    ) -> features::Features {
        features::extract(
            model.feature_config(),
            &view.text,
            &view.negated_at,
            &evidence_of(view),
            &context_of(input, view),
        )
    }

    fn rules(&self, input: &TextInput<'_>) -> RuleView {
        let text = normalize(input.text);
        let operator = input.operator_category.and_then(priors::operator);
        let qr = input.qr_kind.and_then(priors::qr_kind);

        let operator_default = operator.map(|p| p.default);
        if !normalize::has_content(&text) {
            // An operator who picked a category has talked to the caller, so
            // an empty description is a missing note, not an invalid call.
            let result = match operator {
                Some(prior) => prior_only(&prior, &[0.0; 62]),
                None => decided("OTH_INVALID", 1.0, "empty_text"),
            };
            return RuleView {
                negated_at: negation_starts(&text),
                text,
                result,
                scores: [0.0; 62],
                negated: [false; 62],
                empty: true,
                operator_default,
            };
        }

        let negated_at = negation_starts(&text);
        let hits = self.find_hits(&text, &negated_at);

        // Context: classes and anchors from un-negated matches and the input.
        let mut classes = 0u64;
        let mut anchored = false;
        let mut tag_seen = [false; TAGS.len()];
        for hit in hits.iter().filter(|h| !h.negated) {
            let rule = &self.rules[hit.rule];
            classes |= rule.classes;
            anchored |= rule.anchor;
            for &tag in &rule.tags {
                tag_seen[tag] = true;
            }
        }
        if input.inside_compound {
            classes |= self.bits.compound;
        }
        if input.scenic_area {
            classes |= self.bits.scenic;
        }
        for prior in operator.iter().chain(qr.iter()) {
            if prior.is_dispute() {
                classes |= self.bits.conflict;
            }
            if prior.is_fraud() {
                anchored = true;
            }
        }

        // Scores and evidence.
        let mut scores = [0.0f32; 62];
        let mut negated = [false; 62];
        let mut evidence = Vec::new();
        for hit in &hits {
            let rule = &self.rules[hit.rule];
            if rule.effects.is_empty() && evidence.len() < MAX_EVIDENCE {
                evidence.push(Evidence {
                    term: rule.term.clone(),
                    subtype: None,
                    weight: 0.0,
                    negated: hit.negated,
                    counted: false,
                });
            }
            for effect in &rule.effects {
                let counted = !hit.negated
                    && effect.needs.iter().all(|need| classes & need != 0)
                    && classes & effect.unless == 0;
                if counted {
                    scores[effect.subtype] += effect.weight;
                }
                if hit.negated
                    && let Some(n) = negated.get_mut(effect.subtype)
                {
                    *n = true;
                }
                if evidence.len() < MAX_EVIDENCE {
                    evidence.push(Evidence {
                        term: rule.term.clone(),
                        subtype: SUBTYPE_CODES.get(effect.subtype).copied(),
                        weight: effect.weight,
                        negated: hit.negated,
                        counted,
                    });
                }
            }
        }
        let tags: Vec<&'static str> = TAGS
            .iter()
            .zip(tag_seen)
            .filter(|(_, seen)| *seen)
            .map(|(t, _)| *t)
            .collect();

        let mut result = self.decide(input, &scores, classes, anchored, operator, qr);
        result.evidence = evidence;
        result.tags = tags;
        RuleView {
            text,
            negated_at,
            result,
            scores,
            negated,
            empty: false,
            operator_default,
        }
    }

    /// Runs the automaton and applies the ASCII word-boundary check and
    /// negation to every match.
    fn find_hits(&self, text: &str, negated_at: &[bool]) -> Vec<Hit> {
        self.matcher
            .find_iter(text)
            .filter(|m| ascii_boundaries_ok(text, m.start(), m.end()))
            .map(|m| Hit {
                rule: m.pattern().as_usize(),
                negated: negated_at.get(m.start()).copied().unwrap_or(false),
            })
            .collect()
    }

    /// Chooses the subtype from the scores (precedence, bends, fallbacks).
    fn decide(
        &self,
        input: &TextInput<'_>,
        scores: &[f32; 62],
        classes: u64,
        anchored: bool,
        operator: Option<Prior>,
        qr: Option<Prior>,
    ) -> TextClassification {
        // Priors nudge the choice *inside* a fired group, never the firing.
        let mut nudged = *scores;
        for prior in operator.iter().chain(qr.iter()) {
            nudged[prior.default] += prior.weight;
        }

        for group in PRECEDENCE {
            if group == Group::Fraud && !anchored {
                continue;
            }
            let top = max_in(scores, |i| group_at(i) == group);
            if top < FIRE_THRESHOLD {
                continue;
            }
            let Some(winner) = best_in_group(group, scores, &nudged) else {
                continue;
            };
            let (winner, rule) = self.bend(input, winner, group, scores, classes);
            return with_confidence(winner, scores, anchored, rule);
        }

        if scores[idx("OTH_INVALID")] >= FIRE_THRESHOLD {
            return with_confidence(idx("OTH_INVALID"), scores, anchored, "invalid_phrase");
        }
        if let Some(prior) = operator.or(qr) {
            return prior_only(&prior, scores);
        }
        let weak = best_where(scores, |i, code| {
            code != "OTH_DUPLICATE" && (anchored || group_at(i) != Group::Fraud) && scores[i] > 0.0
        });
        if let Some(i) = weak.filter(|&i| scores[i] >= WEAK_THRESHOLD) {
            // Bends express facts about the situation, not about how strong
            // the evidence is, so they apply to weak winners too.
            let (bent, rule) = self.bend(input, i, group_at(i), scores, classes);
            let rule = if bent == i { "weak_evidence" } else { rule };
            return with_confidence(bent, scores, anchored, rule);
        }
        let mut result = decided("OTH_UNCLASSIFIED", 0.0, "no_evidence");
        result.runner_up = runner_up(idx("OTH_UNCLASSIFIED"), scores, anchored);
        result
    }

    /// Documented corrections to strict precedence. Returns the (possibly
    /// changed) winner index and the rule name.
    fn bend(
        &self,
        input: &TextInput<'_>,
        winner: usize,
        group: Group,
        scores: &[f32; 62],
        classes: u64,
    ) -> (usize, &'static str) {
        let code = SUBTYPE_CODES[winner];
        // Violence between family members stays domestic violence, even with
        // injuries, alcohol or more fight words than family words: the
        // relationship decides the protocol (protection orders, 妇联).
        if matches!(code, "CRIM_ASSAULT" | "PUB_FIGHT" | "PUB_DISORDER")
            && scores[idx("PUB_DOMESTIC_VIOLENCE")] >= FIRE_THRESHOLD
        {
            return (idx("PUB_DOMESTIC_VIOLENCE"), "bend:domestic");
        }
        // One drunk person hitting or smashing is 醉酒滋事; a mutual brawl
        // among drinkers stays a fight (tag `alcohol` marks it either way).
        if matches!(code, "PUB_FIGHT" | "PUB_DISORDER" | "PUB_VANDALISM")
            && classes & self.bits.alcohol != 0
            && classes & self.bits.brawl == 0
        {
            return (idx("PUB_DRUNK"), "bend:drunk_disorder");
        }
        // A generic or consumer dispute in a scenic area goes to the scenic
        // authority (DOMAIN §6.2 DSP_TOURIST).
        if input.scenic_area && matches!(code, "DSP_OTHER" | "DSP_CONSUMER") {
            return (idx("DSP_TOURIST"), "bend:scenic_dispute");
        }
        // "I want to report a drug den" is a tip-off, not an incident in progress.
        if code == "PUB_VICE" && classes & self.bits.report != 0 {
            return (idx("RPT_TIP"), "bend:tip_off");
        }
        // A complaint about police handling mentions the original incident;
        // the complaint is what the caller wants handled.
        if group >= Group::Public && scores[idx("RPT_POLICE_COMPLAINT")] >= COMPLAINT_OVERRIDE {
            return (idx("RPT_POLICE_COMPLAINT"), "bend:police_complaint");
        }
        (winner, group_rule(group))
    }
}

/// Index of a known-good subtype code. The codes passed are literals from
/// [`SUBTYPE_CODES`]; a test checks every literal used in this module.
fn idx(code: &str) -> usize {
    SUBTYPE_CODES
        .iter()
        .position(|c| *c == code)
        .unwrap_or(SUBTYPE_CODES.len() - 1)
}

/// Rule name for a group win.
fn group_rule(group: Group) -> &'static str {
    match group {
        Group::Invalid => "group:invalid",
        Group::LifeSafety => "group:life_safety",
        Group::Violent => "group:violent",
        Group::Fraud => "group:fraud",
        Group::Theft => "group:theft",
        Group::Public => "group:public_order",
        Group::Dispute => "group:dispute",
        Group::Traffic => "group:traffic",
        Group::Hazard => "group:hazard",
        Group::Help => "group:help",
        Group::Report => "group:report",
        Group::NonPolice => "group:non_police",
        Group::Fallback => "group:fallback",
    }
}

/// Highest score among subtypes whose index satisfies `keep`.
fn max_in(scores: &[f32; 62], keep: impl Fn(usize) -> bool) -> f32 {
    scores
        .iter()
        .enumerate()
        .filter(|(i, _)| keep(*i))
        .map(|(_, s)| *s)
        .fold(0.0, f32::max)
}

/// Index of the highest score among subtypes satisfying `keep`; ties go to
/// the earlier taxonomy position so the result never depends on iteration
/// quirks.
fn best_where(scores: &[f32; 62], keep: impl Fn(usize, &str) -> bool) -> Option<usize> {
    let mut best: Option<usize> = None;
    for (i, code) in SUBTYPE_CODES.iter().enumerate() {
        if !keep(i, code) {
            continue;
        }
        if best.is_none_or(|b| scores[i] > scores[b]) {
            best = Some(i);
        }
    }
    best
}

/// Best subtype inside a fired group by nudged score, letting a specific
/// subtype with enough text evidence beat the group's catch-all.
fn best_in_group(group: Group, scores: &[f32; 62], nudged: &[f32; 62]) -> Option<usize> {
    let best = best_where(nudged, |i, _| group_at(i) == group)?;
    if CATCH_ALLS.contains(&SUBTYPE_CODES[best]) {
        let specific = best_where(nudged, |i, code| {
            group_at(i) == group && !CATCH_ALLS.contains(&code) && scores[i] >= SPECIFIC_MIN
        });
        if let Some(s) = specific
            .filter(|&s| scores[s] >= SPECIFIC_MIN && scores[s] >= SPECIFIC_SHARE * scores[best])
        {
            return Some(s);
        }
    }
    Some(best)
}

/// Confidence for evidence `w` against a competitor with evidence `r`:
/// saturates with `w` and is discounted by the competitor's share.
fn confidence(w: f32, r: f32) -> f32 {
    if w <= 0.0 {
        return 0.0;
    }
    let saturation = 1.0 - (-w / 1.5).exp();
    (saturation * w / (w + r.max(0.0))).clamp(0.0, 1.0)
}

/// Best subtype other than `winner` with positive evidence.
fn runner_up(winner: usize, scores: &[f32; 62], anchored: bool) -> Option<(&'static str, f32)> {
    let i = best_where(scores, |i, _| {
        i != winner && scores[i] > 0.0 && (anchored || group_at(i) != Group::Fraud)
    })?;
    Some((SUBTYPE_CODES[i], confidence(scores[i], scores[winner])))
}

/// A result decided by text scores.
fn with_confidence(
    winner: usize,
    scores: &[f32; 62],
    anchored: bool,
    rule: &'static str,
) -> TextClassification {
    let runner = runner_up(winner, scores, anchored);
    let r = runner.map_or(0.0, |(code, _)| scores[idx(code)]);
    TextClassification {
        subtype: SUBTYPE_CODES[winner],
        score: confidence(scores[winner], r),
        evidence: Vec::new(),
        runner_up: runner,
        tags: Vec::new(),
        rule,
        rules_subtype: SUBTYPE_CODES[winner],
        needs_review: false,
        features: Vec::new(),
    }
}

/// A result decided by a prior: the best covered subtype with any text
/// evidence, else the prior's default. Confidence is deliberately low.
fn prior_only(prior: &Prior, scores: &[f32; 62]) -> TextClassification {
    let chosen =
        best_where(scores, |i, _| prior.covers(i) && scores[i] > 0.0).unwrap_or(prior.default);
    let mut result = decided(SUBTYPE_CODES[chosen], 0.3, prior.rule);
    result.runner_up = runner_up(chosen, scores, true);
    result
}

/// A result with a fixed score and no runner-up.
fn decided(code: &'static str, score: f32, rule: &'static str) -> TextClassification {
    TextClassification {
        subtype: code,
        score,
        evidence: Vec::new(),
        runner_up: None,
        tags: Vec::new(),
        rule,
        rules_subtype: code,
        needs_review: false,
        features: Vec::new(),
    }
}

/// Latin terms ("app", "wx", "ktv") must not match inside longer Latin words
/// ("happy", "wxyz"): reject a match whose Latin edge touches another Latin
/// letter.
fn ascii_boundaries_ok(text: &str, start: usize, end: usize) -> bool {
    let bytes = text.as_bytes();
    // Digits may touch a Latin term ("2000usdt"); letters may not.
    let word = |b: u8| b.is_ascii_alphabetic();
    let starts_latin = bytes.get(start).copied().is_some_and(word);
    let ends_latin = end > 0 && bytes.get(end - 1).copied().is_some_and(word);
    let before = start.checked_sub(1).and_then(|i| bytes.get(i)).copied();
    let after = bytes.get(end).copied();
    !(starts_latin && before.is_some_and(word) || ends_latin && after.is_some_and(word))
}

fn evidence_of(view: &RuleView) -> features::RuleEvidence<'_> {
    features::RuleEvidence {
        scores: &view.scores,
        negated: &view.negated,
        subtype: idx(view.result.subtype),
        rule: view.result.rule,
        tags: &view.result.tags,
    }
}

fn context_of<'a>(input: &TextInput<'a>, view: &RuleView) -> features::Context<'a> {
    features::Context {
        qr_kind: input.qr_kind,
        operator_default: view.operator_default,
        inside_compound: input.inside_compound,
        scenic_area: input.scenic_area,
    }
}

/// The model's call on top of the rules' view: the most probable subtype with its calibrated
/// confidence, the runner-up, and the features that pushed hardest towards the answer.
fn decide(model: &LinearModel, input: &TextInput<'_>, view: RuleView) -> TextClassification {
    /// Buffers one text's scoring needs, kept per thread: allocating them per text cost as
    /// much as the arithmetic.
    #[derive(Default)]
    struct Scratch {
        features: features::Features,
        rows: Vec<u32>,
        scaled: Vec<(usize, f32)>,
    }
    thread_local! {
        static SCRATCH: std::cell::RefCell<Scratch> = std::cell::RefCell::default();
    }
    SCRATCH.with(|cell| {
        let mut scratch = cell.borrow_mut();
        let Scratch {
            features: feats,
            rows,
            scaled,
        } = &mut *scratch;
        features::extract_into(
            feats,
            model.feature_config(),
            &view.text,
            &view.negated_at,
            &evidence_of(&view),
            &context_of(input, &view),
        );
        let logits = model.logits(feats, rows, scaled);
        let p = model.probabilities(&logits);
        explain(model, feats, rows, &p, view)
    })
}

/// The answer from the probabilities, with the runner-up and the heaviest features.
fn explain(
    model: &LinearModel,
    feats: &features::Features,
    rows: &[u32],
    p: &[f32; 62],
    view: RuleView,
) -> TextClassification {
    let ((best, confidence), (second, second_p)) = crate::model::train::top_two(p);
    // The heaviest pushes towards the answer: keep the best few while scanning, name only those.
    let mut top: Vec<(f32, usize)> = Vec::with_capacity(MAX_FEATURES * 2 + 1);
    for (i, row) in rows.iter().enumerate() {
        if *row == u32::MAX {
            continue;
        }
        let c = model.weight(*row, best) * feats.values[i];
        if c > 0.0 && (top.len() < MAX_FEATURES * 2 || c > top[top.len() - 1].0) {
            let at = top.partition_point(|(t, _)| *t >= c);
            top.insert(at, (c, i));
            top.truncate(MAX_FEATURES * 2);
        }
    }
    let mut features: Vec<(String, f32)> = Vec::with_capacity(MAX_FEATURES);
    for (c, i) in top {
        // An n-gram and its after-contrast copy, or a repeated one, share a name.
        let name = feats.name(i);
        if let Some(f) = features.iter_mut().find(|(n, _)| *n == name) {
            f.1 += c;
        } else if features.len() < MAX_FEATURES {
            features.push((name, c));
        }
    }
    features.sort_by(|a, b| b.1.total_cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    let mut result = view.result;
    let subtype = SUBTYPE_CODES[best];
    result.rule = if subtype == result.rules_subtype {
        "model+rules"
    } else {
        "model"
    };
    result.subtype = subtype;
    result.score = confidence;
    result.runner_up = Some((SUBTYPE_CODES[second], second_p));
    result.needs_review = confidence < NEEDS_REVIEW_BELOW;
    result.features = features;
    result
}
