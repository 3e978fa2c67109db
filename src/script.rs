//! A SQL script as a list of statements with their line numbers.
//!
//! The splitter understands just enough SQL to find statement ends: `;`
//! outside single-quoted strings, double-quoted identifiers, `--` line
//! comments and `/* */` block comments. Each statement keeps the line where
//! its first token starts, so that errors can point into the file. The REPL
//! uses the same scanner to know when a multi-line input is complete.

/// One statement of a script.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Statement {
    /// 1-based position of the statement in the script.
    pub index: usize,
    /// 1-based line of the statement's first token.
    pub line: usize,
    /// The statement text without its terminating `;`.
    pub sql: String,
}

impl Statement {
    /// The first line of the statement, shortened for messages.
    pub fn head(&self) -> String {
        let first = self
            .sql
            .lines()
            .find(|l| !l.trim().is_empty())
            .unwrap_or("");
        let first = first.trim();
        if first.chars().count() > 60 || self.sql.trim().lines().count() > 1 {
            let short: String = first.chars().take(60).collect();
            format!("{short} …")
        } else {
            first.to_string()
        }
    }
}

/// Splits `text` into statements. Comments before a statement are not part of
/// it; empty statements and comment-only chunks are dropped. The last
/// statement needs no `;`.
pub fn split(text: &str) -> Vec<Statement> {
    let mut out = Vec::new();
    let mut scanner = Scanner::default();
    // Line and byte offset of the current statement's first token.
    let mut first_token: Option<(usize, usize)> = None;
    let mut line = 1;
    let bytes = text.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        let c = bytes[i];
        let step = scanner.step(bytes, i);
        match step {
            Step::Code if c == b';' => {
                if let Some((l, start)) = first_token.take() {
                    push(&mut out, &text[start..i], l);
                }
            }
            Step::Code if !c.is_ascii_whitespace() => {
                first_token.get_or_insert((line, i));
            }
            Step::Quoted => {
                first_token.get_or_insert((line, i));
            }
            _ => {}
        }
        // Count the newlines of everything consumed (`''` and `*/` included).
        line += bytes[i..i + scanner.consumed]
            .iter()
            .filter(|&&b| b == b'\n')
            .count();
        i += scanner.consumed;
    }
    if let Some((l, start)) = first_token {
        push(&mut out, &text[start..], l);
    }
    out
}

fn push(out: &mut Vec<Statement>, sql: &str, line: usize) {
    out.push(Statement {
        index: out.len() + 1,
        line,
        sql: sql.trim_end().to_string(),
    });
}

/// True when `text` holds at least one statement and ends, outside any
/// string or comment, with a `;` (trailing whitespace and comments allowed).
pub fn is_complete(text: &str) -> bool {
    let mut scanner = Scanner::default();
    let bytes = text.as_bytes();
    let mut last_code: Option<u8> = None;
    let mut i = 0;
    while i < bytes.len() {
        match scanner.step(bytes, i) {
            Step::Code if !bytes[i].is_ascii_whitespace() => last_code = Some(bytes[i]),
            Step::Quoted => last_code = Some(b'\''),
            _ => {}
        }
        i += scanner.consumed;
    }
    matches!(scanner.state, State::Code | State::LineComment) && last_code == Some(b';')
}

#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
enum State {
    #[default]
    Code,
    SingleQuoted,
    DoubleQuoted,
    LineComment,
    BlockComment,
}

/// What the byte at the current position is part of.
#[derive(Debug, PartialEq, Eq)]
enum Step {
    Code,
    Quoted,
    Comment,
}

#[derive(Debug, Default)]
struct Scanner {
    state: State,
    /// Bytes consumed by the last step (2 for `--`, `/*`, `*/`, `''`).
    consumed: usize,
}

impl Scanner {
    fn step(&mut self, bytes: &[u8], i: usize) -> Step {
        let c = bytes[i];
        let next = bytes.get(i + 1).copied();
        self.consumed = 1;
        match self.state {
            State::Code => match (c, next) {
                (b'-', Some(b'-')) => {
                    self.state = State::LineComment;
                    self.consumed = 2;
                    Step::Comment
                }
                (b'/', Some(b'*')) => {
                    self.state = State::BlockComment;
                    self.consumed = 2;
                    Step::Comment
                }
                (b'\'', _) => {
                    self.state = State::SingleQuoted;
                    Step::Quoted
                }
                (b'"', _) => {
                    self.state = State::DoubleQuoted;
                    Step::Quoted
                }
                _ => Step::Code,
            },
            State::SingleQuoted | State::DoubleQuoted => {
                let quote = if self.state == State::SingleQuoted {
                    b'\''
                } else {
                    b'"'
                };
                if c == quote {
                    if next == Some(quote) {
                        // An escaped quote ('' or "") stays inside the string.
                        self.consumed = 2;
                    } else {
                        self.state = State::Code;
                    }
                }
                Step::Quoted
            }
            State::LineComment => {
                if c == b'\n' {
                    self.state = State::Code;
                }
                Step::Comment
            }
            State::BlockComment => {
                if c == b'*' && next == Some(b'/') {
                    self.state = State::Code;
                    self.consumed = 2;
                }
                Step::Comment
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lines(text: &str) -> Vec<(usize, String)> {
        split(text).into_iter().map(|s| (s.line, s.sql)).collect()
    }

    #[test]
    fn splits_on_semicolons_outside_strings_and_comments() {
        let text = "-- header comment; not a statement\n\
                    SELECT 'a;b' AS \"x;y\";\n\
                    \n\
                    /* block; comment\n spanning lines */ SELECT 2\n;\n\
                    SELECT 'it''s; fine'";
        assert_eq!(
            lines(text),
            vec![
                (2, "SELECT 'a;b' AS \"x;y\"".to_string()),
                (5, "SELECT 2".to_string()),
                (7, "SELECT 'it''s; fine'".to_string()),
            ]
        );
    }

    #[test]
    fn comment_only_chunks_are_dropped() {
        assert!(split("-- nothing here\n;\n  ;; /* nor here */").is_empty());
        let s = split("SELECT 1; -- trailing comment");
        assert_eq!(s.len(), 1);
        assert_eq!(s[0].index, 1);
    }

    #[test]
    fn first_token_line_skips_leading_comments() {
        let s = split("SELECT 1;\n-- explain\n-- more\n\nSELECT\n  2;");
        assert_eq!(s[1].line, 5);
        assert_eq!(s[1].index, 2);
    }

    #[test]
    fn completeness_for_the_repl() {
        assert!(is_complete("SELECT 1;"));
        assert!(is_complete("SELECT 1; -- done"));
        assert!(is_complete("SELECT\n 1\n;  "));
        assert!(!is_complete("SELECT 1"));
        assert!(!is_complete("SELECT ';"));
        assert!(!is_complete("SELECT 1 /* ; */"));
        assert!(!is_complete("-- ;"));
        assert!(!is_complete(""));
    }

    #[test]
    fn head_shortens_long_statements() {
        let s = &split("SELECT a,\n b FROM t")[0];
        assert_eq!(s.head(), "SELECT a, …");
        assert_eq!(split("SET x = 1")[0].head(), "SET x = 1");
    }
}
