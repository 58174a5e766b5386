//! Word-frequency tokens (词频分析) with jieba-rs, a domain user dictionary and
//! a stop-word list.
//!
//! Segmentation is only used for this feature: classification matches raw
//! text, because jieba splits colloquial cues across tokens (DOMAIN §8.1).

use std::collections::BTreeSet;
use std::fmt;

use jieba_rs::Jieba;

use super::lexicon::LexiconError;
use super::normalize::{has_content, is_cjk, normalize};

/// Segmenter plus stop-words.
pub struct Keywords {
    jieba: Jieba,
    stopwords: BTreeSet<String>,
}

impl fmt::Debug for Keywords {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Keywords")
            .field("stopwords", &self.stopwords.len())
            .finish_non_exhaustive()
    }
}

impl Keywords {
    /// Builds the segmenter from jieba's default dictionary plus `userdict`
    /// (one `word [freq] [tag]` per line, `#` comments allowed) and a
    /// stop-word list (one word per line, `#` comments allowed).
    ///
    /// # Errors
    ///
    /// [`LexiconError::UserDict`] if a user-dictionary line has a numeric
    /// frequency that is not a positive integer.
    pub fn new(userdict: &str, stopwords: &str) -> Result<Self, LexiconError> {
        let mut jieba = Jieba::new();
        for (idx, line) in userdict.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let mut parts = line.split_whitespace();
            let Some(word) = parts.next() else { continue };
            // The second column is a frequency when it is numeric, otherwise
            // the tag (so "报警人 n" works as well as "报警人 50 n").
            let mut freq = None;
            let mut tag = None;
            if let Some(second) = parts.next() {
                if second.chars().all(|c| c.is_ascii_digit()) {
                    match second.parse::<usize>() {
                        // Without a frequency jieba suggests one that forces the
                        // word to be kept whole, which is what a domain dictionary wants.
                        Ok(n) if n > 0 => freq = Some(n),
                        _ => {
                            return Err(LexiconError::UserDict {
                                line: idx + 1,
                                message: format!("frequency `{second}` is not a positive integer"),
                            });
                        }
                    }
                    tag = parts.next();
                } else {
                    tag = Some(second);
                }
            }
            jieba.add_word(&normalize(word), freq, tag);
        }
        let stopwords = stopwords
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty() && !l.starts_with('#'))
            .map(normalize)
            .collect();
        Ok(Self { jieba, stopwords })
    }

    /// Returns up to `max` keyword tokens of `text` in order of first
    /// appearance: normalised, segmented, at least two characters, not a
    /// stop-word, not a number, deduplicated.
    pub fn extract(&self, text: &str, max: usize) -> Vec<String> {
        if max == 0 {
            return Vec::new();
        }
        let text = normalize(text);
        let mut seen = BTreeSet::new();
        let mut out = Vec::new();
        for token in self.jieba.cut(&text, true) {
            let word = token.word.trim();
            if word.chars().count() < 2
                || !has_content(word)
                || is_numeric(word)
                || self.stopwords.contains(word)
            {
                continue;
            }
            if seen.insert(word) {
                out.push(word.to_owned());
                if out.len() >= max {
                    break;
                }
            }
        }
        out
    }

    /// True if jieba knows `word` (default or user dictionary).
    pub fn has_word(&self, word: &str) -> bool {
        self.jieba.has_word(word)
    }
}

/// True for tokens that are numbers, amounts or counters ("8000", "12号",
/// "三千元" is kept because it is CJK): digits plus at most one CJK counter.
fn is_numeric(word: &str) -> bool {
    let digits = word.chars().filter(char::is_ascii_digit).count();
    let others: Vec<char> = word.chars().filter(|c| !c.is_ascii_digit()).collect();
    digits > 0
        && (others.is_empty()
            || (others.len() == 1 && (is_cjk(others[0]) || others[0] == '.' || others[0] == '%')))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numeric_tokens() {
        assert!(is_numeric("8000"));
        assert!(is_numeric("12号"));
        assert!(is_numeric("3.5"));
        assert!(!is_numeric("usdt"));
        assert!(!is_numeric("9号线"));
    }
}
