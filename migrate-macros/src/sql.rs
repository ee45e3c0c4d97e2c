//! Just enough of SQLite's lexical structure to split a migration file into
//! its statements and to recognise the few statements `embed_migrations!`
//! cares about: transaction control and `PRAGMA foreign_keys`.
//!
//! The tokenizer follows SQLite's (`tokenize.c`): strings, quoted
//! identifiers (`"…"`, `` `…` ``, `[…]`), blobs, numbers, parameters
//! (`?1`, `:a`, `@a`, `$a`), `--` and `/* */` comments. Statements end at a
//! `;`, except inside `CREATE [TEMP] TRIGGER … BEGIN … END`, which ends at a
//! `;` that follows `; END` — the rule of SQLite's own `sqlite3_complete()`,
//! so a `CASE … END` or a column named `end` (`NEW.end`) inside the body
//! never ends it early, since a trigger's commands never start with `END`.
//!
//! Only a statement's first words decide what it is, so `BEGIN` or `END` as
//! identifiers (`CREATE TABLE t (begin, end)`) are never mistaken for
//! transaction control.

use std::ops::Range;

/// What kind of token.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TokenKind {
    /// A keyword or a bare identifier.
    Word,
    /// `'…'`.
    String,
    /// `"…"`, `` `…` `` or `[…]`.
    QuotedIdentifier,
    /// `X'…'`.
    Blob,
    Number,
    /// `?`, `?1`, `:name`, `@name`, `$name`, `#name`.
    Parameter,
    /// `;`.
    Semicolon,
    /// Any other character (operators, parentheses, `.`, `,`).
    Punct,
}

/// One token: its kind, its bytes in the text and its 1-based line.
#[derive(Clone, Debug)]
pub struct Token {
    pub kind: TokenKind,
    pub span: Range<usize>,
    pub line: usize,
}

/// Whether a line ends at `bytes[at]`: LF, CRLF (at its LF) or a lone CR
/// (an old Mac file), as an editor and the checksum count lines.
fn ends_line(bytes: &[u8], at: usize) -> bool {
    bytes[at] == b'\n' || is_lone_cr(bytes, at)
}

/// A CR not followed by LF: a line end to an editor, whitespace to SQLite.
fn is_lone_cr(bytes: &[u8], at: usize) -> bool {
    bytes[at] == b'\r' && bytes.get(at + 1) != Some(&b'\n')
}

/// Splits `sql` into tokens; whitespace and comments are left out.
pub fn tokenize(sql: &str) -> Vec<Token> {
    let bytes = sql.as_bytes();
    let mut tokens = Vec::new();
    let mut line = 1;
    let mut i = 0;
    // Counts the line ends in bytes[from..to] into `line`.
    let count = |from: usize, to: usize, line: &mut usize| {
        *line += (from..to).filter(|&at| ends_line(bytes, at)).count();
    };
    while i < bytes.len() {
        let start = i;
        let start_line = line;
        let b = bytes[i];
        let kind = match b {
            b' ' | b'\t' | b'\n' | b'\x0c' | b'\r' => {
                if ends_line(bytes, i) {
                    line += 1;
                }
                i += 1;
                continue;
            }
            b'-' if bytes.get(i + 1) == Some(&b'-') => {
                while i < bytes.len() && bytes[i] != b'\n' {
                    i += 1;
                }
                continue;
            }
            b'/' if bytes.get(i + 1) == Some(&b'*') => {
                i = find(bytes, i + 2, b"*/").map_or(bytes.len(), |end| end + 2);
                count(start, i, &mut line);
                continue;
            }
            b'\'' | b'"' | b'`' => {
                i = quoted_end(bytes, i, b);
                count(start, i, &mut line);
                if b == b'\'' {
                    TokenKind::String
                } else {
                    TokenKind::QuotedIdentifier
                }
            }
            b'[' => {
                i = bytes[i..]
                    .iter()
                    .position(|&c| c == b']')
                    .map_or(bytes.len(), |end| i + end + 1);
                count(start, i, &mut line);
                TokenKind::QuotedIdentifier
            }
            b'x' | b'X' if bytes.get(i + 1) == Some(&b'\'') => {
                i = quoted_end(bytes, i + 1, b'\'');
                count(start, i, &mut line);
                TokenKind::Blob
            }
            b';' => {
                i += 1;
                TokenKind::Semicolon
            }
            b'0'..=b'9' => {
                i = number_end(bytes, i);
                TokenKind::Number
            }
            b'.' if bytes.get(i + 1).is_some_and(u8::is_ascii_digit) => {
                i = number_end(bytes, i);
                TokenKind::Number
            }
            b'?' => {
                i += 1;
                while i < bytes.len() && bytes[i].is_ascii_digit() {
                    i += 1;
                }
                TokenKind::Parameter
            }
            b':' | b'@' | b'$' | b'#' if bytes.get(i + 1).is_some_and(|&c| is_id_char(c)) => {
                i += 1;
                while i < bytes.len() && (is_id_char(bytes[i]) || bytes[i] == b':') {
                    i += 1;
                }
                TokenKind::Parameter
            }
            // A byte order mark where a token could start is a blank to
            // SQLite (its tokenizer's CC_BOM); inside a word it is part of
            // the word, as any byte >= 0x80.
            0xef if bytes.get(i + 1) == Some(&0xbb) && bytes.get(i + 2) == Some(&0xbf) => {
                i += 3;
                continue;
            }
            c if is_id_start(c) => {
                while i < bytes.len() && is_id_char(bytes[i]) {
                    i += 1;
                }
                TokenKind::Word
            }
            _ => {
                // One character (a UTF-8 sequence never starts here: every
                // byte >= 0x80 is an identifier character).
                i += 1;
                TokenKind::Punct
            }
        };
        tokens.push(Token {
            kind,
            span: start..i,
            line: start_line,
        });
    }
    tokens
}

/// The line of the first text a `--` comment hides behind a lone carriage
/// return, lines counted as an editor and the checksum count them (LF, CRLF
/// or a lone CR ends one): SQLite ends a `--` comment only at a line feed,
/// so in a file with old Mac line endings everything after a comment up to
/// the next line feed is comment, never run, while the file shows it as
/// statements and its checksum reads it as lines of their own.
pub fn hidden_by_lone_cr(sql: &str) -> Option<usize> {
    let bytes = sql.as_bytes();
    // Comments are only ever between tokens (a string or a quoted name can
    // hold `--`): look in those gaps.
    let tokens = tokenize(sql);
    let gaps = std::iter::once(0)
        .chain(tokens.iter().map(|t| t.span.end))
        .zip(tokens.iter().map(|t| t.span.start).chain([bytes.len()]));
    for (from, to) in gaps {
        let mut i = from;
        while i < to {
            if bytes[i..to].starts_with(b"/*") {
                i = find(bytes, i + 2, b"*/").map_or(to, |end| end + 2);
            } else if bytes[i..to].starts_with(b"--") {
                let end = find(bytes, i, b"\n").map_or(to, |end| end.min(to));
                // What follows each lone CR up to the next: hidden from
                // SQLite. Another comment hides nothing that would run.
                let mut at = i;
                while let Some(cr) = (at..end).find(|&k| is_lone_cr(bytes, k)) {
                    let next = (cr + 1..end).find(|&k| bytes[k] == b'\r').unwrap_or(end);
                    let text = (cr + 1..next).find(|&k| !bytes[k].is_ascii_whitespace());
                    if let Some(start) = text.filter(|&k| !bytes[k..next].starts_with(b"--")) {
                        let line_ends = (0..start).filter(|&k| ends_line(bytes, k)).count();
                        return Some(line_ends + 1);
                    }
                    at = next;
                }
                i = end;
            } else {
                i += 1;
            }
        }
    }
    None
}

fn find(bytes: &[u8], from: usize, needle: &[u8]) -> Option<usize> {
    bytes
        .get(from..)?
        .windows(needle.len())
        .position(|w| w == needle)
        .map(|p| from + p)
}

/// The end (exclusive) of a quoted token opening at `open`; a doubled quote
/// is an escaped quote. An unterminated one runs to the end of the text.
fn quoted_end(bytes: &[u8], open: usize, quote: u8) -> usize {
    let mut i = open + 1;
    while i < bytes.len() {
        if bytes[i] == quote {
            if bytes.get(i + 1) == Some(&quote) {
                i += 2;
                continue;
            }
            return i + 1;
        }
        i += 1;
    }
    bytes.len()
}

fn number_end(bytes: &[u8], start: usize) -> usize {
    let mut i = start;
    while i < bytes.len() {
        let c = bytes[i];
        let exponent_sign = (c == b'+' || c == b'-')
            && i > start
            && matches!(bytes[i - 1], b'e' | b'E')
            && !(bytes[start] == b'0' && matches!(bytes.get(start + 1), Some(b'x' | b'X')));
        if c.is_ascii_alphanumeric() || c == b'.' || c == b'_' || exponent_sign {
            i += 1;
        } else {
            break;
        }
    }
    i
}

fn is_id_start(c: u8) -> bool {
    c.is_ascii_alphabetic() || c == b'_' || c >= 0x80
}

fn is_id_char(c: u8) -> bool {
    c.is_ascii_alphanumeric() || c == b'_' || c == b'$' || c >= 0x80
}

/// One statement: its tokens (its `;` included when it has one).
#[derive(Clone, Debug)]
pub struct Statement {
    pub tokens: Range<usize>,
    /// Bytes from the first token to the `;` (or the last token) included.
    pub span: Range<usize>,
    pub line: usize,
}

/// Splits tokens into statements. A lone `;` is a statement of its own.
pub fn statements(sql: &str, tokens: &[Token]) -> Vec<Statement> {
    let mut statements = Vec::new();
    let mut start = 0;
    let mut trigger = TriggerState::default();
    for (i, token) in tokens.iter().enumerate() {
        let word = word_of(sql, token);
        let ends = trigger.feed(token.kind, word.as_deref());
        if ends {
            statements.push(statement(tokens, start..i + 1));
            start = i + 1;
            trigger = TriggerState::default();
        }
    }
    if start < tokens.len() {
        statements.push(statement(tokens, start..tokens.len()));
    }
    statements
}

fn statement(tokens: &[Token], range: Range<usize>) -> Statement {
    let first = &tokens[range.start];
    let last = &tokens[range.end - 1];
    Statement {
        span: first.span.start..last.span.end,
        line: first.line,
        tokens: range,
    }
}

/// The upper-cased text of a word token.
fn word_of(sql: &str, token: &Token) -> Option<String> {
    (token.kind == TokenKind::Word).then(|| sql[token.span.clone()].to_ascii_uppercase())
}

/// `sqlite3_complete()`'s state machine, reduced to what decides where a
/// statement ends: `EXPLAIN`, `CREATE [TEMP|TEMPORARY] TRIGGER`, and inside a
/// trigger, `; END ;`.
#[derive(Default)]
struct TriggerState {
    /// Tokens seen in this statement so far.
    seen: usize,
    phase: Phase,
}

#[derive(Default, PartialEq, Eq)]
enum Phase {
    #[default]
    Start,
    Explain,
    Create,
    Normal,
    /// Inside a trigger.
    Trigger,
    /// Inside a trigger, just after a `;`.
    TriggerSemicolon,
    /// Inside a trigger, after `; END`.
    TriggerEnd,
}

impl TriggerState {
    /// Feeds one token; true when it ends the statement.
    fn feed(&mut self, kind: TokenKind, word: Option<&str>) -> bool {
        self.seen += 1;
        let semicolon = kind == TokenKind::Semicolon;
        self.phase = match (&self.phase, word) {
            (Phase::Start | Phase::Normal | Phase::Explain | Phase::Create, _) if semicolon => {
                return true
            }
            (Phase::Start, Some("EXPLAIN")) => Phase::Explain,
            (Phase::Start | Phase::Explain, Some("CREATE")) => Phase::Create,
            (Phase::Create, Some("TEMP" | "TEMPORARY")) => Phase::Create,
            (Phase::Create, Some("TRIGGER")) => Phase::Trigger,
            (Phase::Explain, _) => Phase::Explain,
            (Phase::Start | Phase::Create | Phase::Normal, _) => Phase::Normal,
            (Phase::Trigger, _) if semicolon => Phase::TriggerSemicolon,
            (Phase::TriggerSemicolon, _) if semicolon => Phase::TriggerSemicolon,
            (Phase::TriggerSemicolon, Some("END")) => Phase::TriggerEnd,
            (Phase::TriggerEnd, _) if semicolon => return true,
            (Phase::Trigger | Phase::TriggerSemicolon | Phase::TriggerEnd, _) => Phase::Trigger,
        };
        false
    }
}

/// What a statement is, as far as the runner's transaction is concerned.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Kind {
    /// A lone `;`.
    Empty,
    /// `BEGIN [DEFERRED|IMMEDIATE|EXCLUSIVE] [TRANSACTION [name]]`.
    Begin,
    /// `COMMIT` or `END` `[TRANSACTION [name]]`; the keyword as written.
    Commit(String),
    /// `ROLLBACK [TRANSACTION [name]]`, not `ROLLBACK … TO` a savepoint.
    Rollback,
    /// `PRAGMA [schema.]foreign_keys`, with the value it sets: `Some(true)`
    /// on, `Some(false)` off, `None` a query (no value).
    ForeignKeys(Option<bool>),
    /// `PRAGMA [schema.]user_version [= N]`, as user_version runners write
    /// it after a file's `COMMIT`: it runs as written.
    UserVersion,
    /// Anything else.
    Other,
}

/// Classifies one statement by its first words.
pub fn classify(sql: &str, tokens: &[Token], statement: &Statement) -> Kind {
    let tokens = &tokens[statement.tokens.clone()];
    let words: Vec<Option<String>> = tokens.iter().map(|t| word_of(sql, t)).collect();
    let first = match (tokens.first(), words.first()) {
        (Some(t), _) if t.kind == TokenKind::Semicolon => return Kind::Empty,
        (_, Some(Some(word))) => word.as_str(),
        _ => return Kind::Other,
    };
    match first {
        "BEGIN" => Kind::Begin,
        "COMMIT" | "END" => Kind::Commit(sql[tokens[0].span.clone()].to_owned()),
        "ROLLBACK" => {
            if words.iter().any(|w| w.as_deref() == Some("TO")) {
                Kind::Other
            } else {
                Kind::Rollback
            }
        }
        "PRAGMA" => match foreign_keys(sql, tokens) {
            Some(value) => Kind::ForeignKeys(value),
            None if pragma_name(sql, tokens)
                .is_some_and(|(name, _)| name.eq_ignore_ascii_case("user_version")) =>
            {
                Kind::UserVersion
            }
            None => Kind::Other,
        },
        _ => Kind::Other,
    }
}

/// `PRAGMA [schema.]foreign_keys [= value | (value)] [;]` → the value set
/// (`None` for the query form). `None` (outer) for any other pragma, or a
/// form SQLite would not parse: such a statement is left as it is.
fn foreign_keys(sql: &str, tokens: &[Token]) -> Option<Option<bool>> {
    let text = |t: &Token| &sql[t.span.clone()];
    let name_of = |t: &Token| match t.kind {
        TokenKind::Word | TokenKind::String | TokenKind::QuotedIdentifier => Some(dequote(text(t))),
        _ => None,
    };
    let (name, rest) = pragma_name(sql, tokens)?;
    if !name.eq_ignore_ascii_case("foreign_keys") {
        return None;
    }
    let value: &[Token] = match rest {
        [] => return Some(None),
        [eq, value @ ..] if text(eq) == "=" => value,
        [open, value @ .., close] if text(open) == "(" && text(close) == ")" => value,
        _ => return None,
    };
    let value = match value {
        // SQLite's grammar drops a `+` and keeps a `-` (which no number
        // parse then accepts: `-1` turns the pragma off).
        [sign, number] if text(sign) == "+" && number.kind == TokenKind::Number => {
            text(number).to_owned()
        }
        [sign, number] if text(sign) == "-" && number.kind == TokenKind::Number => {
            format!("-{}", text(number))
        }
        [one] if one.kind == TokenKind::Number => text(one).to_owned(),
        [one] => name_of(one)?,
        _ => return None,
    };
    Some(Some(sqlite_boolean(&value)))
}

/// A `PRAGMA [schema.]name …[;]` statement's pragma name (dequoted) and the
/// tokens after it, without the `;`.
fn pragma_name<'t>(sql: &str, tokens: &'t [Token]) -> Option<(String, &'t [Token])> {
    let text = |t: &Token| &sql[t.span.clone()];
    let mut rest = tokens.get(1..)?;
    if let [before @ .., last] = rest {
        if last.kind == TokenKind::Semicolon {
            rest = before;
        }
    }
    let name_of = |t: &Token| match t.kind {
        TokenKind::Word | TokenKind::String | TokenKind::QuotedIdentifier => Some(dequote(text(t))),
        _ => None,
    };
    match rest {
        [schema, dot, name, after @ ..] if text(dot) == "." && name_of(schema).is_some() => {
            Some((name_of(name)?, after))
        }
        [name, after @ ..] => Some((name_of(name)?, after)),
        [] => None,
    }
}

/// `'it''s'` → `it's`, `"a""b"` → `a"b`, `[x]` → `x`, a word as it is.
pub fn dequote(text: &str) -> String {
    let bytes = text.as_bytes();
    match bytes.first() {
        Some(&q @ (b'\'' | b'"' | b'`')) => {
            let inner = text
                .get(1..text.len().saturating_sub(1).max(1))
                .unwrap_or("");
            let quote = char::from(q).to_string();
            inner.replace(&quote.repeat(2), &quote)
        }
        Some(b'[') => text
            .get(1..text.len().saturating_sub(1).max(1))
            .unwrap_or("")
            .to_owned(),
        _ => text.to_owned(),
    }
}

/// How SQLite reads a boolean pragma's value (`sqlite3GetBoolean(z, 0)`):
/// a value starting with a digit is a number, true unless its low byte is
/// 0 (`0`, `256`, or anything that overflows 32 bits); `on`, `yes` and
/// `true` are true, `off`, `no` and `false` false, case-insensitively; any
/// other word is false.
pub fn sqlite_boolean(value: &str) -> bool {
    let bytes = value.as_bytes();
    if bytes.first().is_some_and(u8::is_ascii_digit) {
        return sqlite_atoi(bytes) as u8 != 0;
    }
    ["on", "yes", "true"]
        .iter()
        .any(|word| value.eq_ignore_ascii_case(word))
}

/// SQLite's `sqlite3Atoi` for text starting with a digit: decimal or `0x`
/// hexadecimal; 0 when the value does not fit in 32 bits.
fn sqlite_atoi(bytes: &[u8]) -> i64 {
    if bytes.len() > 2
        && bytes[0] == b'0'
        && matches!(bytes[1], b'x' | b'X')
        && bytes[2].is_ascii_hexdigit()
    {
        let digits: Vec<u8> = bytes[2..]
            .iter()
            .copied()
            .skip_while(|&c| c == b'0')
            .collect();
        let taken = digits
            .iter()
            .take(8)
            .take_while(|c| c.is_ascii_hexdigit())
            .count();
        let mut value: u32 = 0;
        for &c in &digits[..taken] {
            value = value * 16 + char::from(c).to_digit(16).unwrap_or(0);
        }
        if value & 0x8000_0000 != 0 || digits.get(taken).is_some_and(u8::is_ascii_hexdigit) {
            return 0;
        }
        return i64::from(value);
    }
    let digits: Vec<u8> = bytes.iter().copied().skip_while(|&c| c == b'0').collect();
    let count = digits
        .iter()
        .take(11)
        .take_while(|c| c.is_ascii_digit())
        .count();
    if count > 10 {
        return 0;
    }
    let value = digits[..count]
        .iter()
        .fold(0i64, |v, &c| v * 10 + i64::from(c - b'0'));
    if value > i64::from(i32::MAX) {
        return 0;
    }
    value
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Each statement's text and kind.
    fn kinds(sql: &str) -> Vec<(String, Kind)> {
        let tokens = tokenize(sql);
        statements(sql, &tokens)
            .iter()
            .map(|s| (sql[s.span.clone()].to_owned(), classify(sql, &tokens, s)))
            .collect()
    }

    /// The kinds of the statements that are not `Other`, with their lines.
    fn control(sql: &str) -> Vec<(usize, Kind)> {
        let tokens = tokenize(sql);
        statements(sql, &tokens)
            .iter()
            .map(|s| (s.line, classify(sql, &tokens, s)))
            .filter(|(_, k)| *k != Kind::Other)
            .collect()
    }

    fn commit(word: &str) -> Kind {
        Kind::Commit(word.to_owned())
    }

    #[test]
    fn text_hidden_by_a_lone_carriage_return_is_found() {
        assert_eq!(
            hidden_by_lone_cr("-- users\rCREATE TABLE u (x);\r"),
            Some(2)
        );
        assert_eq!(
            hidden_by_lone_cr("CREATE TABLE a (x);\n-- b\r\n-- c\rDROP TABLE a;"),
            Some(4)
        );
        // CR as whitespace between statements, CRLF, a comment ending the
        // file with a lone CR, a CR in a string or a block comment: nothing hidden.
        assert_eq!(
            hidden_by_lone_cr("CREATE TABLE a (x);\rCREATE TABLE b (y);\r"),
            None
        );
        assert_eq!(hidden_by_lone_cr("-- a\r\nCREATE TABLE a (x);\r\n"), None);
        assert_eq!(hidden_by_lone_cr("CREATE TABLE a (x); -- done\r  \r"), None);
        assert_eq!(
            hidden_by_lone_cr("SELECT '--\rx'; /* --\rx */ SELECT 1;"),
            None
        );
        // The line the hidden statement is on (CR CR is two line ends), and
        // comments after comments, which hide nothing that runs.
        assert_eq!(hidden_by_lone_cr("-- a\r\rCREATE TABLE b (y);\n"), Some(3));
        assert_eq!(
            hidden_by_lone_cr("-- one\r-- two\r\nCREATE TABLE a (x);"),
            None
        );
        assert_eq!(
            hidden_by_lone_cr("-- one\r-- two\rDROP TABLE a;\n"),
            Some(3)
        );
        // After a block comment in the same gap (cargo-mutants: skipping
        // past the gap's end went unnoticed).
        assert_eq!(
            hidden_by_lone_cr("SELECT 1; /* a */ -- x\rDROP TABLE a;"),
            Some(2)
        );
        assert_eq!(
            hidden_by_lone_cr("/* a *//* b */ -- x\rDROP TABLE a;"),
            Some(2)
        );
    }

    #[test]
    fn finds_transaction_control() {
        let sql = "BEGIN TRANSACTION;\nCREATE TABLE a (x);\nCOMMIT;\n";
        assert_eq!(control(sql), vec![(1, Kind::Begin), (3, commit("COMMIT"))]);
        assert_eq!(
            control("begin immediate; end transaction;"),
            vec![(1, Kind::Begin), (1, commit("end"))]
        );
        assert_eq!(
            control("BEGIN EXCLUSIVE TRANSACTION t;"),
            vec![(1, Kind::Begin)]
        );
        assert_eq!(control("rollback;"), vec![(1, Kind::Rollback)]);
        assert_eq!(control("ROLLBACK TRANSACTION"), vec![(1, Kind::Rollback)]);
        // The last COMMIT may lack its `;`.
        assert_eq!(
            control("BEGIN;\nCREATE TABLE a (x);\nCOMMIT"),
            vec![(1, Kind::Begin), (3, commit("COMMIT"))]
        );
    }

    #[test]
    fn savepoints_are_not_transaction_control() {
        assert!(control(
            "SAVEPOINT s; ROLLBACK TO s; ROLLBACK TRANSACTION TO SAVEPOINT s; RELEASE s;"
        )
        .is_empty());
    }

    #[test]
    fn strings_identifiers_and_comments_hide_keywords() {
        let sql = "
            -- BEGIN; in a comment
            /* COMMIT; in a block comment; END; */
            INSERT INTO t (v) VALUES ('a; BEGIN; b'), (\"COMMIT;\"), (`END;`), ([ROLLBACK;]);
            INSERT INTO t (v) VALUES ('it''s; END'), (X'3B'), (x'00');
            CREATE TABLE [begin] (x);
            CREATE TABLE \"end\" (\"begin;\" TEXT, `commit;` TEXT);
            /* unterminated comments run to the end: COMMIT;";
        assert!(control(sql).is_empty(), "{:?}", control(sql));
        assert_eq!(kinds(sql).len(), 4);
    }

    #[test]
    fn begin_and_end_as_identifiers() {
        // BEGIN and END fall back to identifiers in SQLite's grammar.
        let sql = "CREATE TABLE spans (begin INTEGER, end INTEGER);
                   INSERT INTO spans (begin, end) VALUES (1, 2);
                   SELECT begin, end FROM spans WHERE end > begin;
                   CREATE INDEX spans_end ON spans (end);";
        assert!(control(sql).is_empty(), "{:?}", control(sql));
        assert_eq!(kinds(sql).len(), 4);
    }

    #[test]
    fn parameters_are_not_words() {
        let sql = "INSERT INTO t VALUES (:end, @begin, $commit, ?1, ?, $a::b);";
        assert_eq!(kinds(sql).len(), 1);
        let tokens = tokenize(sql);
        let params: Vec<&str> = tokens
            .iter()
            .filter(|t| t.kind == TokenKind::Parameter)
            .map(|t| &sql[t.span.clone()])
            .collect();
        assert_eq!(params, [":end", "@begin", "$commit", "?1", "?", "$a::b"]);
    }

    #[test]
    fn trigger_bodies_end_at_their_own_end() {
        let sql = "CREATE TRIGGER t AFTER INSERT ON a BEGIN
                       UPDATE a SET v = CASE WHEN NEW.v = 'x' THEN 'y' ELSE NEW.v END;
                       UPDATE a SET w = CASE WHEN 1 THEN CASE WHEN 2 THEN 3 END ELSE 4 END;
                       DELETE FROM b;
                   END;
                   COMMIT;";
        assert_eq!(control(sql), vec![(6, commit("COMMIT"))]);
        assert_eq!(kinds(sql).len(), 2);
    }

    #[test]
    fn a_column_named_end_in_a_trigger_does_not_end_it() {
        // The false positive this lexer once had: `NEW.end` took the
        // trigger's body for ended, and its real END for a transaction's.
        let sql = "CREATE TRIGGER spans_check BEFORE INSERT ON spans
                   WHEN NEW.end < NEW.begin
                   BEGIN
                       SELECT RAISE(ABORT, 'end before begin') WHERE NEW.end < NEW.begin;
                       UPDATE spans SET end = NEW.end, \"end\" = OLD.\"end\" WHERE spans.end IS NULL;
                       INSERT INTO log (end) SELECT end FROM spans WHERE t.end = 1;
                   END;
                   CREATE TRIGGER spans_case AFTER UPDATE OF end ON spans BEGIN
                       UPDATE spans SET kind = CASE WHEN NEW.end > 10 THEN 'long' ELSE 'short' END;
                   END;";
        assert!(control(sql).is_empty(), "{:?}", control(sql));
        assert_eq!(kinds(sql).len(), 2);
    }

    #[test]
    fn every_form_of_create_trigger() {
        for head in [
            "CREATE TRIGGER t",
            "CREATE TEMP TRIGGER t",
            "CREATE TEMPORARY TRIGGER IF NOT EXISTS main.t",
            "create trigger if not exists t",
            "EXPLAIN CREATE TRIGGER t",
        ] {
            for timing in [
                "BEFORE DELETE ON a",
                "INSTEAD OF UPDATE ON v",
                "AFTER INSERT ON a FOR EACH ROW WHEN NEW.x = 1",
            ] {
                let sql = format!(
                    "{head} {timing} BEGIN DELETE FROM b; INSERT INTO c VALUES (1); END;\nEND;"
                );
                assert_eq!(control(&sql), vec![(2, commit("END"))], "{sql}");
                assert_eq!(kinds(&sql).len(), 2, "{sql}");
            }
        }
    }

    #[test]
    fn a_trigger_named_begin_and_a_table_named_trigger() {
        let sql = "CREATE TRIGGER \"begin\" AFTER INSERT ON [end] BEGIN SELECT 1; END; CREATE TABLE \"trigger\" (x); END;";
        assert_eq!(control(sql), vec![(1, commit("END"))]);
        assert_eq!(kinds(sql).len(), 3);
    }

    #[test]
    fn a_trigger_named_begin_or_end_unquoted() {
        // BEGIN and END are identifiers where SQLite expects a name: a
        // lexer that counted BEGIN … END pairs took `begin` for the body's
        // start and swallowed the statements after the trigger.
        for name in ["begin", "end", "case"] {
            let sql =
                format!("CREATE TRIGGER {name} AFTER INSERT ON a BEGIN SELECT 1; END;\nCOMMIT;");
            assert_eq!(control(&sql), vec![(2, commit("COMMIT"))], "{sql}");
        }
        let conn = rusqlite::Connection::open_in_memory().expect("open");
        conn.execute_batch(
            "CREATE TABLE a (x); CREATE TRIGGER begin AFTER INSERT ON a BEGIN SELECT 1; END;",
        )
        .expect("SQLite takes `begin` for a trigger's name");
    }

    #[test]
    fn case_end_outside_triggers() {
        let sql = "CREATE VIEW v AS SELECT CASE WHEN x THEN CASE y WHEN 1 THEN 'a' END END AS z FROM t; END;";
        assert_eq!(control(sql), vec![(1, commit("END"))]);
    }

    #[test]
    fn lines_count_newlines_inside_tokens() {
        let sql = "INSERT INTO t VALUES ('a\nb');\n/* c\nd */\n\"e\nf\";\n[g\nh];\nCOMMIT;";
        assert_eq!(control(sql), vec![(9, commit("COMMIT"))]);
        for newline in ["\r\n", "\r"] {
            let sql = format!("BEGIN;{newline}/* a{newline}b */ 'c{newline}d';{newline}COMMIT;");
            assert_eq!(
                control(&sql),
                vec![(1, Kind::Begin), (5, commit("COMMIT"))],
                "{sql:?}"
            );
        }
    }

    #[test]
    fn empty_statements_and_numbers() {
        assert_eq!(
            kinds(";;SELECT 1.5e+3, .5, 0x1F;"),
            vec![
                (";".to_owned(), Kind::Empty),
                (";".to_owned(), Kind::Empty),
                ("SELECT 1.5e+3, .5, 0x1F;".to_owned(), Kind::Other)
            ]
        );
        assert!(kinds("  -- only a comment\n/* and another */ ").is_empty());
    }

    #[test]
    fn foreign_keys_pragmas() {
        let fk = |sql: &str| control(sql).into_iter().map(|(_, k)| k).collect::<Vec<_>>();
        for off in [
            "PRAGMA foreign_keys = OFF;",
            "pragma foreign_keys=off",
            "PRAGMA foreign_keys = 0;",
            "PRAGMA foreign_keys = false;",
            "PRAGMA foreign_keys = no;",
            "PRAGMA foreign_keys = 'off';",
            "PRAGMA foreign_keys = \"OFF\";",
            "PRAGMA main.foreign_keys = OFF;",
            "PRAGMA \"foreign_keys\" = OFF;",
            "PRAGMA foreign_keys(0);",
            "PRAGMA FOREIGN_KEYS = -1;",
        ] {
            assert_eq!(fk(off), vec![Kind::ForeignKeys(Some(false))], "{off}");
        }
        for on in [
            "PRAGMA foreign_keys = ON;",
            "PRAGMA foreign_keys = 1",
            "PRAGMA foreign_keys = yes;",
            "PRAGMA foreign_keys('true');",
        ] {
            assert_eq!(fk(on), vec![Kind::ForeignKeys(Some(true))], "{on}");
        }
        assert_eq!(fk("PRAGMA foreign_keys;"), vec![Kind::ForeignKeys(None)]);
        // Other pragmas, and forms SQLite would not parse, are left alone.
        assert!(fk("PRAGMA foreign_key_check;").is_empty());
        assert_eq!(fk("PRAGMA user_version = 3;"), vec![Kind::UserVersion]);
        assert_eq!(fk("pragma main.USER_VERSION(3)"), vec![Kind::UserVersion]);
        assert_eq!(fk("PRAGMA user_version;"), vec![Kind::UserVersion]);
        assert!(fk("PRAGMA user_versions = 3;").is_empty());
        assert!(fk("PRAGMA foreign_keys = OFF OFF;").is_empty());
        // Inside a trigger or a string it is not a statement of its own.
        assert!(fk("SELECT 'PRAGMA foreign_keys = OFF;';").is_empty());
    }

    #[test]
    fn booleans_as_sqlite_reads_them() {
        for (value, expected) in [
            ("0", false),
            ("1", true),
            ("2", true),
            ("256", false),
            ("257", true),
            ("00001", true),
            ("0x0", false),
            ("0x1", true),
            ("0x100", false),
            ("0x80000001", false),
            ("99999999999", false),
            ("2147483648", false),
            ("1.5", true),
            ("0.9", false),
            ("on", true),
            ("ON", true),
            ("yes", true),
            ("TRUE", true),
            ("off", false),
            ("No", false),
            ("false", false),
            ("full", false),
            ("banana", false),
            ("-1", false),
            ("+1", false),
        ] {
            assert_eq!(sqlite_boolean(value), expected, "{value}");
        }
    }

    #[test]
    fn dequoting() {
        assert_eq!(dequote("'it''s'"), "it's");
        assert_eq!(dequote("\"a\"\"b\""), "a\"b");
        assert_eq!(dequote("[x y]"), "x y");
        assert_eq!(dequote("`a`"), "a");
        assert_eq!(dequote("word"), "word");
        assert_eq!(dequote("'"), "");
    }

    /// Files these tests split; [`sqlite_agrees`] checks each against SQLite.
    const SAMPLES: &[&str] = &[
        "BEGIN TRANSACTION;\nCREATE TABLE a (x);\nCOMMIT;\n",
        "CREATE TABLE spans (id INTEGER PRIMARY KEY, begin INTEGER, end INTEGER, kind TEXT);
         CREATE TABLE log (end INTEGER, note TEXT);
         CREATE VIEW open_spans AS SELECT id, begin, end FROM spans WHERE end IS NULL;
         INSERT INTO spans (begin, end) VALUES (1, 2), (3, NULL);
         INSERT INTO log VALUES (0, 'a; BEGIN; b'), (1, \"x\"), (2, 'it''s; END');
         CREATE TRIGGER spans_check BEFORE INSERT ON spans
         WHEN NEW.end < NEW.begin
         BEGIN
             SELECT RAISE(ABORT, 'end before begin; END;') WHERE NEW.end < NEW.begin;
             UPDATE spans SET end = NEW.end, \"end\" = OLD.\"end\" WHERE spans.end IS NULL;
             INSERT INTO log (end) SELECT end FROM spans WHERE spans.end = 1;
         END;
         CREATE TRIGGER spans_case AFTER UPDATE OF end ON spans BEGIN
             UPDATE spans SET kind = CASE WHEN NEW.end > 10 THEN CASE WHEN NEW.end > 100 THEN 'huge' END ELSE 'short' END
             WHERE id = NEW.id;
             -- END; in a comment
             /* COMMIT; */
             DELETE FROM log WHERE note = 'END;';
         END;
         CREATE TEMP TRIGGER IF NOT EXISTS open_spans_insert INSTEAD OF INSERT ON open_spans FOR EACH ROW BEGIN
             INSERT INTO spans (begin, end) VALUES (NEW.begin, NULL);
         END;
         CREATE TEMPORARY TRIGGER \"begin\" AFTER DELETE ON [spans] BEGIN DELETE FROM log WHERE end = OLD.end; END;
         CREATE TABLE [end] (`begin` TEXT, [commit;] BLOB DEFAULT X'3B');
         SAVEPOINT s; ROLLBACK TO s; RELEASE s;
         ;;
         SELECT begin, end, :end, @begin, $commit, ?1 FROM spans;
         SELECT 1 -- trailing comment without a semicolon",
        "CREATE VIEW v AS SELECT CASE WHEN 1 THEN CASE 2 WHEN 1 THEN 'a' END END AS z; END;",
        "CREATE TRIGGER t AFTER INSERT ON a BEGIN SELECT 1; END;\nCOMMIT;",
        "CREATE TRIGGER begin AFTER INSERT ON a BEGIN SELECT 1; END; CREATE TRIGGER end BEFORE DELETE ON a BEGIN DELETE FROM b; END; COMMIT;",
    ];

    /// The ends of our statements are exactly where `sqlite3_complete()`
    /// says a statement is complete.
    #[test]
    fn sqlite_agrees() {
        for sample in SAMPLES {
            let tokens = tokenize(sample);
            let ends: Vec<usize> = statements(sample, &tokens)
                .iter()
                .filter(|s| tokens[s.tokens.end - 1].kind == TokenKind::Semicolon)
                .map(|s| s.span.end)
                .collect();
            let mut complete = Vec::new();
            for token in tokens.iter().filter(|t| t.kind == TokenKind::Semicolon) {
                let prefix = std::ffi::CString::new(&sample[..token.span.end]).expect("no NUL");
                // SAFETY: a NUL-terminated string, read during the call only.
                if unsafe { rusqlite::ffi::sqlite3_complete(prefix.as_ptr()) } != 0 {
                    // Complete up to here: the next statement starts afresh.
                    complete.push(token.span.end);
                }
            }
            // sqlite3_complete() looks at the whole prefix: once a prefix is
            // complete, every later `;` outside a trigger completes it again,
            // exactly where our statements end.
            assert_eq!(ends, complete, "{sample}");
        }
    }

    /// Run one by one, our statements are the ones SQLite runs: each is
    /// whole (a statement cut inside a trigger would not parse).
    #[test]
    fn each_statement_runs_alone() {
        let sample = SAMPLES[1];
        let conn = rusqlite::Connection::open_in_memory().expect("open");
        let tokens = tokenize(sample);
        let statements = statements(sample, &tokens);
        assert_eq!(statements.len(), 17);
        for statement in &statements {
            let text = &sample[statement.span.clone()];
            conn.execute_batch(text)
                .unwrap_or_else(|e| panic!("{text}: {e}"));
        }
        let triggers: i64 = conn
            .query_row(
                "SELECT (SELECT count(*) FROM sqlite_master WHERE type = 'trigger') + (SELECT count(*) FROM sqlite_temp_master WHERE type = 'trigger')",
                [],
                |r| r.get(0),
            )
            .expect("count");
        assert_eq!(triggers, 4);
    }

    /// What `PRAGMA foreign_keys = value` does in SQLite, for every value
    /// the classification reads.
    #[test]
    fn foreign_keys_values_agree_with_sqlite() {
        let conn = rusqlite::Connection::open_in_memory().expect("open");
        let values = [
            "ON",
            "OFF",
            "on",
            "off",
            "Off",
            "yes",
            "no",
            "true",
            "false",
            "TRUE",
            "1",
            "0",
            "2",
            "256",
            "257",
            "0x1",
            "0x100",
            "99999999999",
            "2147483648",
            "-1",
            "+1",
            "1.5",
            "0.5",
            "'off'",
            "'ON'",
            "\"off\"",
            "\"yes\"",
            "[off]",
            "`off`",
            "'0'",
            "'1'",
            "full",
            "banana",
            "DEFAULT",
            "DELETE",
        ];
        let mut checked = 0;
        for value in values {
            for (start, form) in [("ON", "="), ("OFF", "="), ("ON", "()"), ("OFF", "()")] {
                conn.execute_batch(&format!("PRAGMA foreign_keys = {start}"))
                    .expect("reset");
                let statement = match form {
                    "=" => format!("PRAGMA foreign_keys = {value};"),
                    _ => format!("PRAGMA foreign_keys({value});"),
                };
                if conn.execute_batch(&statement).is_err() {
                    continue;
                }
                let on: bool = conn
                    .query_row("PRAGMA foreign_keys", [], |r| r.get(0))
                    .expect("read");
                let tokens = tokenize(&statement);
                let statements = statements(&statement, &tokens);
                assert_eq!(
                    classify(&statement, &tokens, &statements[0]),
                    Kind::ForeignKeys(Some(on)),
                    "{statement}"
                );
                checked += 1;
            }
        }
        assert!(checked > 120, "{checked} forms SQLite accepted");
    }
}
