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

/// The width tables are fitted to: `COLUMNS` when set, else the terminal's width when stdout
/// is a terminal, else 80.
pub fn terminal_width() -> usize {
    if let Some(w) = std::env::var("COLUMNS").ok().and_then(|c| c.trim().parse::<usize>().ok()) {
        return w.max(20);
    }
    if std::io::IsTerminal::is_terminal(&std::io::stdout()) {
        if let Ok((w, _)) = crossterm::terminal::size() {
            return usize::from(w).max(20);
        }
    }
    80
}

/// Cuts `s` to `max` characters, ending in `…` when cut.
pub fn fit(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        return s.to_owned();
    }
    let cut: String = s.chars().take(max.saturating_sub(1)).collect();
    format!("{cut}…")
}

/// Names short enough for `max` columns, the same everywhere and still unique: a name that
/// does not fit is shortened to its most telling unique part (`efficientnet-lite0` → `lite0`,
/// `dinov2-s14-imgfocus` → `dinov2`), else cut with `…`.
pub fn short_names(names: &[String], max: usize) -> Vec<String> {
    let tokens: Vec<Vec<&str>> = names.iter().map(|n| n.split(['-', '_']).collect()).collect();
    let unique = |cand: &str, me: usize| {
        tokens.iter().enumerate().all(|(i, t)| i == me || !t.contains(&cand) && names[i] != cand)
    };
    names
        .iter()
        .enumerate()
        .map(|(i, name)| {
            if name.chars().count() <= max {
                return name.clone();
            }
            let t = &tokens[i];
            let first = t.first().copied().unwrap_or("");
            let last = t.last().copied().unwrap_or("");
            let picks = [last, first, &format!("{first}-{last}")]
                .into_iter()
                .map(str::to_owned)
                .find(|c| {
                    !c.is_empty()
                        && c.chars().count() <= max
                        && c.chars().any(char::is_numeric)
                        && unique(c, i)
                })
                .or_else(|| {
                    [first, last]
                        .into_iter()
                        .map(str::to_owned)
                        .find(|c| c.chars().count() <= max && unique(c, i))
                });
            picks.unwrap_or_else(|| {
                let cut: String = name.chars().take(max.saturating_sub(1)).collect();
                format!("{cut}…")
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn model_names_shorten_to_their_unique_part() {
        let names: Vec<String> =
            ["efficientnet-lite0", "efficientnet-lite2", "open-nsfw", "dinov2-s14-imgfocus"]
                .map(String::from)
                .to_vec();
        assert_eq!(short_names(&names, 30), names, "names that fit stay whole");
        assert_eq!(short_names(&names, 8), ["lite0", "lite2", "open", "dinov2"]);
        let clip: Vec<String> = ["clip-vit-b32", "clip-vit-l14"].map(String::from).to_vec();
        assert_eq!(short_names(&clip, 6), ["b32", "l14"]);
    }

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
