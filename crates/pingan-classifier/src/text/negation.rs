//! Negation scoping: "没有被偷" or "不是被偷，是忘在出租车上了" must not count as
//! theft evidence.
//!
//! A match is negated when a negator ends at most [`MAX_GAP`] characters
//! before it, inside the same clause (no punctuation in between). The gap
//! lets "没有人受伤" and "没被人偷走" negate, while "未成年人被打" does not,
//! because 未成年 is listed as a false friend.

/// Negators, longest first so "并没有" is preferred over "没有" and "没".
const NEGATORS: [&str; 7] = ["并没有", "没有", "并非", "不是", "没", "未", "无"];

/// Words that contain a negator but do not negate what follows them.
/// Each entry is the whole word; it is checked around the negator occurrence.
const FALSE_FRIENDS: [&str; 22] = [
    "没想到",
    "没多久",
    "没过多久",
    "没注意",
    "没留意",
    "没几天",
    "没一会",
    "没过几天",
    "没反应过来",
    "没办法",
    "未成年",
    "是不是",
    "不是很",
    "无故",
    "无缘无故",
    "无法",
    "无论",
    "没事",
    "未经",
    "无意中",
    "不是第一次",
    "并非第一次",
];

/// How many characters may sit between the end of a negator and the match.
pub(crate) const MAX_GAP: usize = 2;

/// How far back (in characters) to look for a negator.
#[cfg(test)]
const WINDOW: usize = 6;

/// The reference definition (kept for the tests that hold `negation_starts` to it).
#[cfg(test)]
/// Returns true if the match starting at byte `start` of the normalised
/// `text` is negated.
///
/// `start` must be a char boundary of `text`; out-of-range or mid-char
/// offsets are treated as "not negated" rather than panicking, because this
/// runs on untrusted input.
pub(crate) fn is_negated(text: &str, start: usize) -> bool {
    let Some(before) = text.get(..start) else {
        return false;
    };
    // Walk back at most WINDOW chars, stopping at a clause break.
    let mut window_start = start;
    for (idx, ch) in before.char_indices().rev().take(WINDOW) {
        if super::normalize::is_clause_break(ch) {
            break;
        }
        window_start = idx;
    }
    let window = &text[window_start..start];
    if window.is_empty() {
        return false;
    }
    for negator in NEGATORS {
        for (pos, _) in window.match_indices(negator) {
            let end = pos + negator.len();
            let gap = window[end..].chars().count();
            if gap > MAX_GAP {
                continue;
            }
            let abs = window_start + pos;
            if !is_false_friend(text, abs, negator) {
                return true;
            }
        }
    }
    false
}

/// For every byte offset of the normalised `text` (and its end), whether a match starting there
/// would be negated: `is_negated` (the reference definition) for all positions in one pass. The rules ask it for every
/// lexicon match and the model for every character, and a window scan per position was a
/// fifth of the classifier's time.
pub(crate) fn negation_starts(text: &str) -> Vec<bool> {
    let mut out = vec![false; text.len() + 1];
    let chars: Vec<(usize, char)> = text.char_indices().collect();
    for (i, &(byte, ch)) in chars.iter().enumerate() {
        // Every negator starts with one of these.
        if !matches!(ch, '并' | '没' | '不' | '未' | '无') {
            continue;
        }
        let rest = &text[byte..];
        for negator in NEGATORS {
            if !rest.starts_with(negator) || is_false_friend(text, byte, negator) {
                continue;
            }
            let end = i + negator.chars().count();
            // A match may start right after the negator or up to MAX_GAP characters later,
            // never across a clause break.
            for &(at, c) in chars.iter().skip(end).take(MAX_GAP + 1) {
                out[at] = true;
                if super::normalize::is_clause_break(c) {
                    break;
                }
            }
        }
    }
    out
}

/// True if the negator occurring at byte `abs` of `text` is part of a
/// false-friend word such as 没想到 or 是不是.
fn is_false_friend(text: &str, abs: usize, negator: &str) -> bool {
    FALSE_FRIENDS.iter().any(|word| {
        word.match_indices(negator).any(|(offset, _)| {
            abs.checked_sub(offset)
                .and_then(|from| text.get(from..))
                .is_some_and(|rest| rest.starts_with(word))
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn neg(text: &str, term: &str) -> bool {
        let start = text.find(term).expect("term in text");
        is_negated(text, start)
    }

    #[test]
    fn direct_negation() {
        assert!(neg("不是被偷,是忘在出租车上了", "被偷"));
        assert!(neg("家里没有被偷", "被偷"));
        assert!(neg("并非被盗", "被盗"));
        assert!(neg("没有人受伤", "受伤"));
        assert!(neg("无人受伤", "受伤"));
        assert!(neg("并没有被骗", "被骗"));
    }

    #[test]
    fn negation_does_not_cross_punctuation_or_distance() {
        assert!(!neg("没有,被偷了", "被偷"));
        assert!(!neg("没有关好门窗的时候被偷", "被偷"));
        assert!(!neg("手机被偷", "被偷"));
    }

    #[test]
    fn false_friends_do_not_negate() {
        assert!(!neg("没想到被骗了", "被骗"));
        assert!(!neg("未成年人被打", "被打"));
        assert!(!neg("不知道是不是被偷了", "被偷"));
        assert!(!neg("被公司无故辞退", "辞退"));
    }

    #[test]
    fn negation_starts_agree_with_is_negated_everywhere() {
        for text in [
            "不是被偷,是忘在出租车上了",
            "家里没有被偷",
            "没有,被偷了",
            "没想到被骗了",
            "未成年人被打",
            "并没有被骗也没有人受伤",
            "无人受伤 没 被打",
            "没",
            "",
        ] {
            let starts = negation_starts(text);
            for (byte, _) in text.char_indices() {
                assert_eq!(
                    starts[byte],
                    is_negated(text, byte),
                    "{text:?} at byte {byte}"
                );
            }
        }
    }

    #[test]
    fn odd_offsets_are_safe() {
        assert!(!is_negated("没有", 1));
        assert!(!is_negated("", 5));
        assert!(!is_negated("被偷", 0));
    }
}
