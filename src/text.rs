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

/// True when the terminal announces 24-bit colour (COLORTERM=truecolor or 24bit); otherwise
/// images are drawn in the 256-colour palette.
pub fn truecolor() -> bool {
    std::env::var("COLORTERM").is_ok_and(|v| v == "truecolor" || v == "24bit")
}

/// Terminal rows: `LINES` when set, else the terminal's height when stdout is a terminal,
/// else 24.
pub fn terminal_height() -> usize {
    if let Some(h) = std::env::var("LINES").ok().and_then(|v| v.trim().parse::<usize>().ok()) {
        return h.max(8);
    }
    if std::io::IsTerminal::is_terminal(&std::io::stdout()) {
        if let Ok((_, h)) = crossterm::terminal::size() {
            return usize::from(h).max(8);
        }
    }
    24
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

/// A table for the terminal: columns that do not fit are dropped, least important first, and
/// the one flexible column (free text) is cut with `…` before that; no row ever wraps.
pub struct Table {
    headers: Vec<String>,
    rows: Vec<Vec<String>>,
    right: Vec<bool>,
    /// Per column: 0 is never dropped; larger numbers go first.
    drop_order: Vec<u8>,
    flexible: Option<usize>,
}

impl Table {
    /// `columns`: (header, right-aligned, drop order: 0 = keep).
    pub fn new(columns: &[(&str, bool, u8)]) -> Self {
        Self {
            headers: columns.iter().map(|c| c.0.to_owned()).collect(),
            rows: Vec::new(),
            right: columns.iter().map(|c| c.1).collect(),
            drop_order: columns.iter().map(|c| c.2).collect(),
            flexible: None,
        }
    }

    /// Marks column `i` as the one that is cut first (free text such as a caption).
    pub fn flexible(mut self, i: usize) -> Self {
        self.flexible = Some(i);
        self
    }

    /// Adds a row; cells are sanitised (they may hold captions and file names).
    pub fn row(&mut self, cells: Vec<String>) {
        self.rows.push(cells.into_iter().map(|c| sanitize(&c)).collect());
    }

    /// The table in at most `width` columns.
    pub fn render(&self, width: usize) -> String {
        let n = self.headers.len();
        let mut keep: Vec<bool> = vec![true; n];
        let natural: Vec<usize> = (0..n)
            .map(|i| {
                let cells = self.rows.iter().map(|r| r.get(i).map_or(0, |c| c.chars().count()));
                cells.chain([self.headers[i].chars().count()]).max().unwrap_or(0)
            })
            .collect();
        let mut widths = natural.clone();
        let total = |w: &[usize], k: &[bool]| {
            let shown: Vec<usize> = (0..n).filter(|&i| k[i]).map(|i| w[i]).collect();
            shown.iter().sum::<usize>() + 2 * shown.len().saturating_sub(1)
        };
        loop {
            let over = total(&widths, &keep).saturating_sub(width);
            if over == 0 {
                break;
            }
            if let Some(f) = self.flexible.filter(|&f| keep[f] && widths[f] > 12) {
                widths[f] = widths[f].saturating_sub(over).max(12);
                continue;
            }
            let drop = (0..n)
                .filter(|&i| keep[i] && self.drop_order[i] > 0)
                .max_by_key(|&i| (self.drop_order[i], i));
            match drop {
                Some(i) => keep[i] = false,
                None => break,
            }
        }
        let line = |cells: &[String]| {
            let parts: Vec<String> = (0..n)
                .filter(|&i| keep[i])
                .map(|i| {
                    let c = fit(cells.get(i).map_or("", String::as_str), widths[i]);
                    let pad = widths[i].saturating_sub(c.chars().count());
                    if self.right[i] {
                        format!("{}{c}", " ".repeat(pad))
                    } else {
                        format!("{c}{}", " ".repeat(pad))
                    }
                })
                .collect();
            fit(parts.join("  ").trim_end(), width)
        };
        let mut out = line(&self.headers);
        out.push('\n');
        for r in &self.rows {
            out.push_str(&line(r));
            out.push('\n');
        }
        out
    }
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
    fn tables_cut_free_text_then_drop_columns_and_never_wrap() {
        let mut t =
            Table::new(&[("model", false, 0), ("dim", true, 2), ("caption", false, 0)]).flexible(2);
        t.row(vec![
            "lite0".into(),
            "1280".into(),
            "A dog runs through the deep snow of a field".into(),
        ]);
        let wide = t.render(80);
        assert!(
            wide.contains("lite0  1280  A dog runs through the deep snow of a field"),
            "{wide}"
        );
        let narrow = t.render(30);
        assert!(narrow.lines().all(|l| l.chars().count() <= 30), "{narrow}");
        assert!(narrow.contains("1280") && narrow.contains('…'), "caption cut first: {narrow}");
        let tiny = t.render(20);
        assert!(tiny.lines().all(|l| l.chars().count() <= 20) && !tiny.contains("1280"), "{tiny}");
    }

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
