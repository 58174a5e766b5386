//! Text normalisation applied to both lexicon terms and input text, so that
//! matching is insensitive to width and Latin case ("ＷＸ", "Wx" and "wx" are
//! the same cue).

/// Normalises `text` for matching.
///
/// - Full-width ASCII (U+FF01..U+FF5E) becomes half-width, and the ideographic
///   space (U+3000) becomes a space: Chinese IMEs emit full-width Latin.
/// - Latin letters are lowercased.
/// - Every run of whitespace collapses to one ASCII space and the ends are
///   trimmed, so "shua  dan" still matches "shua dan".
///
/// Chinese characters and punctuation are left alone; negation scoping needs
/// to see the original punctuation.
pub fn normalize(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut pending_space = false;
    for ch in text.chars() {
        let ch = fold_width(ch);
        if ch.is_whitespace() {
            pending_space = !out.is_empty();
            continue;
        }
        if pending_space {
            out.push(' ');
            pending_space = false;
        }
        if ch.is_ascii() {
            out.push(ch.to_ascii_lowercase());
        } else if !is_cjk(ch) && ch.is_alphabetic() {
            // Non-ASCII Latin/Greek/Cyrillic letters: lowercase too. CJK has
            // no case, and skipping it keeps the common path cheap.
            out.extend(ch.to_lowercase());
        } else {
            out.push(ch);
        }
    }
    out
}

/// Maps full-width ASCII variants and the ideographic space to ASCII.
fn fold_width(ch: char) -> char {
    match ch {
        '\u{3000}' => ' ',
        '\u{FF01}'..='\u{FF5E}' => char::from_u32(ch as u32 - 0xFEE0).unwrap_or(ch),
        _ => ch,
    }
}

/// True for CJK ideographs (the blocks call text actually uses).
pub(crate) fn is_cjk(ch: char) -> bool {
    matches!(ch,
        '\u{4E00}'..='\u{9FFF}'
        | '\u{3400}'..='\u{4DBF}'
        | '\u{F900}'..='\u{FAFF}'
        | '\u{20000}'..='\u{2FA1F}')
}

/// True for characters that end a clause for negation scoping: ASCII and CJK
/// punctuation, plus whitespace (after normalisation whitespace is one space).
pub(crate) fn is_clause_break(ch: char) -> bool {
    ch.is_ascii_punctuation()
        || ch == ' '
        || matches!(
            ch,
            '，' | '。'
                | '、'
                | '；'
                | '：'
                | '！'
                | '？'
                | '…'
                | '—'
                | '“'
                | '”'
                | '‘'
                | '’'
                | '（'
                | '）'
                | '《'
                | '》'
                | '【'
                | '】'
                | '「'
                | '」'
                | '～'
                | '·'
        )
}

/// True if the text carries anything a call-taker could act on: at least one
/// CJK ideograph, letter or digit. Emoji and punctuation alone do not count.
pub(crate) fn has_content(text: &str) -> bool {
    text.chars().any(|c| is_cjk(c) || c.is_alphanumeric())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn folds_width_and_case() {
        assert_eq!(normalize("ＷＸ上加了Dy"), "wx上加了dy");
        assert_eq!(normalize("  下载ＡＰＰ　 后 "), "下载app 后");
        assert_eq!(normalize("Shua   Dan"), "shua dan");
        assert_eq!(normalize("报警人称，钱被转走了。"), "报警人称,钱被转走了。");
    }

    #[test]
    fn content_detection() {
        assert!(!has_content(""));
        assert!(!has_content("  \t"));
        assert!(!has_content("😀😀！！"));
        assert!(has_content("无声"));
        assert!(has_content("ok"));
    }
}
