//! A one-line prompt with the editing keys of readline: ← → Home End (Ctrl-A, Ctrl-E),
//! Backspace, Delete, Ctrl-U (to start), Ctrl-K (to end), Ctrl-W (word), Tab (complete a path).

/// What the prompt asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PromptKind {
    Filter,
    ImagePath,
    Text,
}

/// One editing key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Edit {
    Insert(char),
    Backspace,
    Delete,
    Left,
    Right,
    Home,
    End,
    KillToStart,
    KillToEnd,
    KillWord,
    Complete,
}

/// The prompt's text and cursor (in characters).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Prompt {
    pub kind: PromptKind,
    chars: Vec<char>,
    cursor: usize,
    /// Completions offered by the last Tab, when more than one matched.
    pub candidates: Vec<String>,
}

impl Prompt {
    pub fn new(kind: PromptKind, start: &str) -> Self {
        let chars: Vec<char> = start.chars().collect();
        Self { kind, cursor: chars.len(), chars, candidates: Vec::new() }
    }

    pub fn text(&self) -> String {
        self.chars.iter().collect()
    }

    /// The cursor's position in characters.
    pub fn cursor(&self) -> usize {
        self.cursor
    }

    /// Applies one key; returns the text to complete when Tab asks for completions.
    pub fn edit(&mut self, e: Edit) -> Option<String> {
        self.candidates.clear();
        match e {
            Edit::Insert(c) => {
                self.chars.insert(self.cursor, c);
                self.cursor += 1;
            }
            Edit::Backspace if self.cursor > 0 => {
                self.cursor -= 1;
                self.chars.remove(self.cursor);
            }
            Edit::Delete if self.cursor < self.chars.len() => {
                self.chars.remove(self.cursor);
            }
            Edit::Left => self.cursor = self.cursor.saturating_sub(1),
            Edit::Right => self.cursor = (self.cursor + 1).min(self.chars.len()),
            Edit::Home => self.cursor = 0,
            Edit::End => self.cursor = self.chars.len(),
            Edit::KillToStart => {
                self.chars.drain(..self.cursor);
                self.cursor = 0;
            }
            Edit::KillToEnd => self.chars.truncate(self.cursor),
            Edit::KillWord => {
                let mut start = self.cursor;
                while start > 0 && self.chars[start - 1] == ' ' {
                    start -= 1;
                }
                while start > 0 && !matches!(self.chars[start - 1], ' ' | '/') {
                    start -= 1;
                }
                self.chars.drain(start..self.cursor);
                self.cursor = start;
            }
            Edit::Complete if self.kind == PromptKind::ImagePath => return Some(self.text()),
            _ => {}
        }
        None
    }

    /// Takes the completions of the text: one replaces it, several extend it to their common
    /// prefix and are listed.
    pub fn complete(&mut self, list: &[String]) {
        let Some(first) = list.first() else { return };
        let common = list.iter().fold(first.clone(), |acc, s| {
            acc.chars().zip(s.chars()).take_while(|(a, b)| a == b).map(|(a, _)| a).collect()
        });
        if common.chars().count() >= self.chars.len() {
            self.chars = common.chars().collect();
            self.cursor = self.chars.len();
        }
        if list.len() > 1 {
            self.candidates = list.to_vec();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn typed(s: &str) -> Prompt {
        let mut p = Prompt::new(PromptKind::ImagePath, "");
        s.chars().for_each(|c| {
            p.edit(Edit::Insert(c));
        });
        p
    }

    #[test]
    fn readline_keys_edit_at_the_cursor() {
        let mut p = typed("a dog in snow");
        p.edit(Edit::KillWord);
        assert_eq!(p.text(), "a dog in ");
        p.edit(Edit::Home);
        p.edit(Edit::Delete);
        p.edit(Edit::Insert('A'));
        assert_eq!((p.text().as_str(), p.cursor()), ("A dog in ", 1));
        p.edit(Edit::KillToEnd);
        assert_eq!(p.text(), "A");
        p.edit(Edit::End);
        p.edit(Edit::KillToStart);
        assert_eq!(p.text(), "");
        let mut p = typed("~/photos/dog");
        p.edit(Edit::KillWord);
        assert_eq!(p.text(), "~/photos/", "Ctrl-W stops at a path separator");
    }

    #[test]
    fn tab_completes_one_match_and_extends_several_to_their_common_prefix() {
        let mut p = typed("~/ph");
        assert_eq!(p.edit(Edit::Complete), Some("~/ph".into()));
        p.complete(&["~/photos/".into()]);
        assert_eq!(p.text(), "~/photos/");
        p.complete(&["~/photos/dog1.jpg".into(), "~/photos/dog2.jpg".into()]);
        assert_eq!(p.text(), "~/photos/dog");
        assert_eq!(p.candidates.len(), 2);
        let mut f = Prompt::new(PromptKind::Filter, "x");
        assert_eq!(f.edit(Edit::Complete), None, "only paths complete");
    }
}
