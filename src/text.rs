//! Untrusted text (captions, file names) made safe for a terminal.

/// Removes control characters and escape sequences (CSI, OSC, DCS…) so that untrusted text
/// cannot move the cursor, set the clipboard (OSC 52) or change colours. Tabs and newlines
/// become spaces.
pub fn sanitize(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\u{1b}' => skip_escape(&mut chars),
            '\u{9b}' => skip_until_final(&mut chars), // 8-bit CSI
            '\u{9d}' | '\u{90}' | '\u{9e}' | '\u{9f}' => skip_until_st(&mut chars), // 8-bit OSC/DCS/PM/APC
            '\t' | '\n' | '\r' => out.push(' '),
            c if c.is_control() => {}
            '\u{200b}'..='\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}' => {} // bidi overrides
            c => out.push(c),
        }
    }
    out
}

/// Like [`sanitize`], line by line, keeping the newlines.
pub fn sanitize_lines(s: &str) -> String {
    s.split('\n').map(sanitize).collect::<Vec<_>>().join("\n")
}

fn skip_escape(chars: &mut std::iter::Peekable<std::str::Chars<'_>>) {
    match chars.next() {
        Some('[') => skip_until_final(chars),
        Some(']' | 'P' | '^' | '_' | 'X') => skip_until_st(chars),
        _ => {} // two-character escape: already consumed
    }
}

fn skip_until_final(chars: &mut std::iter::Peekable<std::str::Chars<'_>>) {
    for c in chars.by_ref() {
        if ('\u{40}'..='\u{7e}').contains(&c) {
            break;
        }
    }
}

fn skip_until_st(chars: &mut std::iter::Peekable<std::str::Chars<'_>>) {
    while let Some(c) = chars.next() {
        if c == '\u{7}' || c == '\u{9c}' {
            break;
        }
        if c == '\u{1b}' && chars.peek() == Some(&'\\') {
            chars.next();
            break;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::sanitize;

    #[test]
    fn osc52_clipboard_write_is_removed() {
        assert_eq!(sanitize("a dog\u{1b}]52;c;ZWNobyBwd25lZA==\u{7} runs"), "a dog runs");
        assert_eq!(sanitize("x\u{1b}]0;title\u{1b}\\y"), "xy");
    }

    #[test]
    fn cursor_movement_and_colours_are_removed() {
        assert_eq!(sanitize("\u{1b}[2J\u{1b}[1;1Hred \u{1b}[31mdog\u{1b}[0m"), "red dog");
        assert_eq!(sanitize("bell\u{7}\u{8}!"), "bell!");
    }

    #[test]
    fn plain_text_and_unicode_survive() {
        assert_eq!(sanitize("Ein Hund läuft\tim Schnee"), "Ein Hund läuft im Schnee");
    }
}
