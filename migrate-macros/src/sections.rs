//! Files that hold both directions of a migration: goose's
//! `-- +goose Up` / `-- +goose Down`, dbmate's `-- migrate:up` /
//! `-- migrate:down` and sql-migrate's `-- +migrate Up` / `-- +migrate Down`.
//!
//! Such a file is the migration (its up section) and its rollback (its down
//! section). The markers are read line by line, as each tool reads them
//! (pressly/goose `internal/sqlparser/parser.go`, amacneil/dbmate
//! `pkg/dbmate/migration.go`, rubenv/sql-migrate `sqlparse/sqlparse.go`):
//! - goose: a line that starts with `--` and holds `+goose` is an
//!   annotation; without its `--`s and its `+goose`, trimmed, it is one of
//!   `Up`, `Down`, `StatementBegin`, `StatementEnd`, `NO TRANSACTION`,
//!   `ENVSUB ON`, `ENVSUB OFF`, in any case (goose refuses anything else, an
//!   annotation with leading whitespace, two `+goose` on a line). The up
//!   section comes first; statements before it, a second `Up` or `Down`
//!   are refused, as goose refuses them.
//! - dbmate: the first line matching `^--\s*migrate:up(\s|$)` starts the up
//!   block, the first matching `^--\s*migrate:down(\s|$)` the down block
//!   (case-sensitive); options follow the marker (`transaction:false`).
//!   Statements before the up block, or a down block before it, are
//!   refused, as dbmate refuses them.
//! - sql-migrate: a line starting with `-- +migrate ` followed by `Up` or
//!   `Down` (case-sensitive; options after it, `notransaction`) starts a
//!   section, in any order and number; `StatementBegin`/`StatementEnd` and
//!   unknown commands are comments. sql-migrate ignores statements before
//!   the first section: they are refused here, rather than silently dropped.
//!
//! `StatementBegin`/`StatementEnd` only matter to the tools' own statement
//! splitting: SQLite splits statements itself (triggers included), so they
//! stay comments. A section keeps the file's line numbers (the lines outside
//! it are emptied, not removed), so SQLite's messages and the runner's
//! point at the file's lines. A migration that should run outside a
//! transaction (`-- +goose NO TRANSACTION`, dbmate's `transaction:false`,
//! sql-migrate's `notransaction`) is refused for now: every migration runs
//! in a transaction of its own.

use std::ops::Range;

use crate::script::Problem;
use crate::sql;

/// The tool whose markers a file holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Tool {
    Goose,
    Dbmate,
    SqlMigrate,
}

impl Tool {
    pub fn name(self) -> &'static str {
        match self {
            Tool::Goose => "goose",
            Tool::Dbmate => "dbmate",
            Tool::SqlMigrate => "sql-migrate",
        }
    }
}

/// A file's sections.
#[derive(Debug, PartialEq, Eq)]
pub struct Sections {
    pub tool: Tool,
    /// The bytes of the up sections (each from the line after its marker).
    pub up: Vec<Range<usize>>,
    /// The bytes of the down sections.
    pub down: Vec<Range<usize>>,
    /// The line of the (first) up marker, 1 when there is none.
    pub up_line: usize,
    /// The line of the (first) down marker.
    pub down_line: Option<usize>,
    /// The up (down) section runs outside a transaction (goose's `NO
    /// TRANSACTION`, dbmate's `transaction:false`, sql-migrate's
    /// `notransaction`).
    pub up_no_transaction: bool,
    pub down_no_transaction: bool,
}

/// What a marker line says.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Mark {
    Up,
    Down,
    /// An annotation that starts no section (`StatementBegin`, …).
    Other,
}

/// One marker line of a file.
#[derive(Debug)]
struct Marker {
    tool: Tool,
    mark: Mark,
    /// 1-based.
    line: usize,
    /// Where the marker's line starts, and where the next line starts.
    start: usize,
    next: usize,
    /// It asks for a migration outside a transaction.
    no_transaction: bool,
    /// The line as written, for messages.
    text: String,
}

/// Reads the markers of `text`: `None` when it has none (an ordinary file).
pub fn split(text: &str) -> Result<Option<Sections>, Vec<Problem>> {
    let mut markers = Vec::new();
    let mut problems = Vec::new();
    for line in lines(text) {
        let found = goose(line.text)
            .map(|m| m.map(|(mark, no_tx)| (Tool::Goose, mark, no_tx)))
            .or_else(|| {
                dbmate(line.text).map(|m| m.map(|(mark, no_tx)| (Tool::Dbmate, mark, no_tx)))
            })
            .or_else(|| {
                sql_migrate(line.text)
                    .map(|m| m.map(|(mark, no_tx)| (Tool::SqlMigrate, mark, no_tx)))
            });
        match found {
            None => {}
            Some(Err(message)) => problems.push(Problem {
                line: line.number,
                message,
            }),
            Some(Ok((tool, mark, no_transaction))) => markers.push(Marker {
                tool,
                mark,
                line: line.number,
                start: line.start,
                next: line.next,
                no_transaction,
                text: line.text.trim().to_owned(),
            }),
        }
    }
    let Some(first) = markers.first() else {
        return if problems.is_empty() {
            Ok(None)
        } else {
            Err(problems)
        };
    };
    let tool = first.tool;
    if let Some(other) = markers.iter().find(|m| m.tool != tool) {
        problems.push(Problem {
            line: other.line,
            message: format!(
                "`{}` is {}'s marker, but line {} has {}'s (`{}`): a file is written for one \
                 tool; keep one tool's markers",
                other.text,
                other.tool.name(),
                first.line,
                tool.name(),
                first.text
            ),
        });
        return Err(problems);
    }
    let sections = match tool {
        Tool::Goose => goose_sections(text, &markers, &mut problems),
        Tool::Dbmate => dbmate_sections(text, &markers, &mut problems),
        Tool::SqlMigrate => sql_migrate_sections(text, &markers, &mut problems),
    };
    // dbmate reads the options of its first up and first down marker only
    // (later ones are comments to it); the other tools read every marker.
    let counts = |m: &Marker| {
        tool != Tool::Dbmate
            || markers
                .iter()
                .find(|first| first.mark == m.mark)
                .is_some_and(|first| first.start == m.start)
    };
    // A section runs outside a transaction when its marker says so (goose's
    // `NO TRANSACTION` stands for the whole file).
    let file_wide = tool == Tool::Goose && markers.iter().any(|m| m.no_transaction);
    let mut sections = sections;
    if let Some(sections) = sections.as_mut() {
        for marker in markers.iter().filter(|m| counts(m)) {
            match marker.mark {
                Mark::Up => sections.up_no_transaction |= marker.no_transaction,
                Mark::Down => sections.down_no_transaction |= marker.no_transaction,
                Mark::Other => {}
            }
        }
        if file_wide {
            sections.up_no_transaction = true;
            sections.down_no_transaction = true;
        }
    }
    if problems.is_empty() {
        Ok(sections)
    } else {
        problems.sort_by_key(|p| p.line);
        Err(problems)
    }
}

/// The text of `ranges`, every other line emptied but kept, so that line
/// numbers stay the file's.
pub fn section_text(text: &str, ranges: &[Range<usize>]) -> String {
    let mut kept = String::with_capacity(ranges.iter().map(|r| r.len()).sum());
    for (at, c) in text.char_indices() {
        if c == '\n' || c == '\r' || ranges.iter().any(|r| r.contains(&at)) {
            kept.push(c);
        }
    }
    kept
}

/// A line of the file, as the tools' line scanners see it (split at LF,
/// a trailing CR dropped).
struct Line<'a> {
    text: &'a str,
    /// 1-based, counted as the SQL tokenizer counts lines (a lone CR ends
    /// one too).
    number: usize,
    start: usize,
    next: usize,
}

fn lines(text: &str) -> impl Iterator<Item = Line<'_>> {
    let mut start = 0;
    let mut number = 1;
    std::iter::from_fn(move || {
        if start >= text.len() {
            return None;
        }
        let rest = &text[start..];
        let (chunk, next) = match rest.find('\n') {
            Some(at) => (&rest[..at], start + at + 1),
            None => (rest, text.len()),
        };
        let chunk = chunk.strip_suffix('\r').unwrap_or(chunk);
        let line = Line {
            // A byte order mark (an editor's, on Windows) is not part of
            // the first line's annotation; SQLite skips it too.
            text: if start == 0 {
                chunk.trim_start_matches('\u{feff}')
            } else {
                chunk
            },
            number,
            start,
            next,
        };
        number += line_ends(&text[start..next]);
        start = next;
        Some(line)
    })
}

/// Line ends in `text`: LF, CRLF, or a lone CR.
fn line_ends(text: &str) -> usize {
    let bytes = text.as_bytes();
    (0..bytes.len())
        .filter(|&at| {
            bytes[at] == b'\n' || (bytes[at] == b'\r' && bytes.get(at + 1) != Some(&b'\n'))
        })
        .count()
}

/// goose's reading of a line: `None` when it is no annotation.
fn goose(line: &str) -> Option<Result<(Mark, bool), String>> {
    if !(line.trim().starts_with("--") && line.contains("+goose")) {
        return None;
    }
    let shown = line.trim();
    if line.starts_with([' ', '\t']) {
        return Some(Err(format!(
            "`{shown}`: goose refuses an annotation with whitespace before its `--`; remove it"
        )));
    }
    let command = line.replace("--", "").replacen("+goose", "", 1);
    if command.contains("+goose") {
        return Some(Err(format!(
            "`{shown}`: two `+goose` annotations on one line, which goose refuses; put each on a \
             line of its own"
        )));
    }
    let command = command.trim();
    let known = |name: &str| command.eq_ignore_ascii_case(name);
    let read = if known("Up") {
        (Mark::Up, false)
    } else if known("Down") {
        (Mark::Down, false)
    } else if known("NO TRANSACTION") {
        (Mark::Other, true)
    } else if known("StatementBegin") || known("StatementEnd") || known("ENVSUB OFF") {
        (Mark::Other, false)
    } else if known("ENVSUB ON") {
        return Some(Err(format!(
            "`{shown}` is not supported: goose would replace `${{VAR}}` in the statements with \
             environment variables when it runs them; write the statements as they should run \
             and delete the line"
        )));
    } else {
        let what = if command.is_empty() {
            "an empty annotation".to_owned()
        } else {
            format!("no annotation `{command}`")
        };
        return Some(Err(format!(
            "`{shown}`: goose knows {what}, and refuses the file; its annotations are Up, Down, \
             StatementBegin, StatementEnd, NO TRANSACTION, ENVSUB ON and ENVSUB OFF (in any \
             case), each on a line starting with `-- +goose`"
        )));
    };
    Some(Ok(read))
}

/// dbmate's reading of a line (`^--\s*migrate:(up|down)(\s…|$)`, `\s`
/// being RE2's `[\t\n\f\r ]`): the mark and whether it says
/// `transaction:false`.
fn dbmate(line: &str) -> Option<Result<(Mark, bool), String>> {
    let space = |c: char| matches!(c, '\t' | '\n' | '\x0c' | '\r' | ' ');
    let rest = line.strip_prefix("--")?.trim_start_matches(space);
    for (marker, mark) in [("migrate:up", Mark::Up), ("migrate:down", Mark::Down)] {
        let Some(options) = rest
            .get(..marker.len())
            .filter(|head| head.eq_ignore_ascii_case(marker))
            .map(|_| &rest[marker.len()..])
        else {
            continue;
        };
        if !(options.is_empty() || options.starts_with(space)) {
            continue;
        }
        if !rest.starts_with(marker) {
            // dbmate would not see it, and would run the whole file as
            // one block, or refuse it.
            return Some(Err(format!(
                "`{}`: dbmate's markers are `-- {marker}`, in lower case; write it so",
                line.trim()
            )));
        }
        let no_transaction = options
            .split(space)
            .any(|option| option == "transaction:false");
        return Some(Ok((mark, no_transaction)));
    }
    None
}

/// sql-migrate's reading of a line: `-- +migrate Up [options]`.
fn sql_migrate(line: &str) -> Option<Result<(Mark, bool), String>> {
    let rest = line.strip_prefix("-- +migrate ")?;
    let mut fields = rest.split_whitespace();
    let Some(command) = fields.next() else {
        return Some(Err(format!(
            "`{}`: an incomplete sql-migrate command, which sql-migrate refuses; write \
             `-- +migrate Up` or `-- +migrate Down`",
            line.trim()
        )));
    };
    let mark = match command {
        "Up" => Mark::Up,
        "Down" => Mark::Down,
        _ if command.eq_ignore_ascii_case("up") || command.eq_ignore_ascii_case("down") => {
            return Some(Err(format!(
                "`{}`: sql-migrate's markers are `-- +migrate Up` and `-- +migrate Down`, \
                 capitalised (this line is a comment to it, and a file without sections is \
                 refused); write it so",
                line.trim()
            )))
        }
        // StatementBegin, StatementEnd, and what sql-migrate ignores.
        _ => Mark::Other,
    };
    let no_transaction = mark != Mark::Other && fields.any(|option| option == "notransaction");
    Some(Ok((mark, no_transaction)))
}

/// Statements before `before` (the first section's marker), which the
/// tools refuse (goose, dbmate) or ignore (sql-migrate).
fn statements_before(text: &str, before: &Marker, tool: Tool, problems: &mut Vec<Problem>) {
    let head = &text[..before.start];
    let tokens = sql::tokenize(head);
    let Some(first) = tokens.iter().find(|t| t.kind != sql::TokenKind::Semicolon) else {
        return;
    };
    let statements = sql::statements(head, &tokens);
    let shown = statements
        .iter()
        .find(|s| s.line >= first.line)
        .map(|s| {
            head[s.span.clone()]
                .split_whitespace()
                .take(6)
                .collect::<Vec<_>>()
                .join(" ")
        })
        .unwrap_or_default();
    let why = match tool {
        Tool::Goose => "goose refuses statements before its up section",
        Tool::Dbmate => "dbmate refuses statements before its up block",
        Tool::SqlMigrate => {
            "sql-migrate ignores statements before its first section, so it never ran them"
        }
    };
    problems.push(Problem {
        line: first.line,
        message: format!(
            "`{shown}` stands before `{}` (line {}): {why}; move it into the up section (below \
             that line), or delete it",
            before.text, before.line
        ),
    });
}

fn goose_sections(text: &str, markers: &[Marker], problems: &mut Vec<Problem>) -> Option<Sections> {
    let mut up: Option<&Marker> = None;
    let mut down: Option<&Marker> = None;
    for marker in markers {
        match (marker.mark, up, down) {
            (Mark::Other, ..) => {}
            (Mark::Up, None, _) => up = Some(marker),
            (Mark::Up, Some(first), _) => problems.push(Problem {
                line: marker.line,
                message: format!(
                    "a second `-- +goose Up` (line {} has the first), which goose refuses: delete \
                     one of the two lines",
                    first.line
                ),
            }),
            (Mark::Down, None, _) => problems.push(Problem {
                line: marker.line,
                message: "`-- +goose Down` before any `-- +goose Up`, which goose refuses: the up \
                          section comes first; add `-- +goose Up` above the migration's statements"
                    .to_owned(),
            }),
            (Mark::Down, Some(_), None) => down = Some(marker),
            (Mark::Down, Some(_), Some(first)) => problems.push(Problem {
                line: marker.line,
                message: format!(
                    "a second `-- +goose Down` (line {} has the first), which goose refuses: \
                     delete one of the two lines",
                    first.line
                ),
            }),
        }
    }
    let Some(up) = up else {
        if problems.is_empty() {
            let first = &markers[0];
            problems.push(Problem {
                line: first.line,
                message: format!(
                    "`{}` is a goose annotation, but the file has no `-- +goose Up`, which goose \
                     refuses: add `-- +goose Up` above the migration's statements",
                    first.text
                ),
            });
        }
        return None;
    };
    statements_before(text, up, Tool::Goose, problems);
    Some(two_sections(text, Tool::Goose, up, down))
}

fn dbmate_sections(
    text: &str,
    markers: &[Marker],
    problems: &mut Vec<Problem>,
) -> Option<Sections> {
    // The first of each: dbmate looks for each marker once.
    let up = markers.iter().find(|m| m.mark == Mark::Up);
    let down = markers.iter().find(|m| m.mark == Mark::Down);
    let Some(up) = up else {
        if let Some(down) = down {
            problems.push(Problem {
                line: down.line,
                message: "`-- migrate:down` without a `-- migrate:up` before it, which dbmate \
                          refuses: add `-- migrate:up` above the migration's statements"
                    .to_owned(),
            });
        }
        return None;
    };
    if let Some(down) = down.filter(|down| down.start < up.start) {
        problems.push(Problem {
            line: down.line,
            message: format!(
                "`{}` comes before `{}` (line {}), which dbmate refuses: move the down block \
                 after the up block",
                down.text, up.text, up.line
            ),
        });
        return None;
    }
    statements_before(text, up, Tool::Dbmate, problems);
    // Only the first markers count; later ones are comments of a section.
    Some(two_sections(text, Tool::Dbmate, up, down))
}

/// The up section from `up` to `down` (or the end), the down section from
/// `down` to the end.
fn two_sections(text: &str, tool: Tool, up: &Marker, down: Option<&Marker>) -> Sections {
    let end = text.len();
    Sections {
        tool,
        up: std::iter::once(up.next..down.map_or(end, |d| d.start)).collect(),
        down: down.map(|d| d.next..end).into_iter().collect(),
        up_line: up.line,
        down_line: down.map(|d| d.line),
        up_no_transaction: false,
        down_no_transaction: false,
    }
}

fn sql_migrate_sections(
    text: &str,
    markers: &[Marker],
    problems: &mut Vec<Problem>,
) -> Option<Sections> {
    let starts: Vec<&Marker> = markers.iter().filter(|m| m.mark != Mark::Other).collect();
    let Some(first) = starts.first() else {
        let first = &markers[0];
        problems.push(Problem {
            line: first.line,
            message: format!(
                "`{}` is an sql-migrate command, but the file has no `-- +migrate Up` or \
                 `-- +migrate Down`, which sql-migrate refuses: add `-- +migrate Up` above the \
                 migration's statements",
                first.text
            ),
        });
        return None;
    };
    statements_before(text, first, Tool::SqlMigrate, problems);
    let mut sections = Sections {
        tool: Tool::SqlMigrate,
        up: Vec::new(),
        down: Vec::new(),
        up_line: 1,
        down_line: None,
        up_no_transaction: false,
        down_no_transaction: false,
    };
    let mut up_line = None;
    for (k, marker) in starts.iter().enumerate() {
        let end = starts.get(k + 1).map_or(text.len(), |m| m.start);
        let range = marker.next..end;
        if marker.mark == Mark::Up {
            up_line.get_or_insert(marker.line);
            sections.up.push(range);
        } else {
            sections.down_line.get_or_insert(marker.line);
            sections.down.push(range);
        }
    }
    sections.up_line = up_line.unwrap_or(first.line);
    Some(sections)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sections(text: &str) -> Sections {
        match split(text) {
            Ok(Some(sections)) => sections,
            other => panic!("{text}: {other:?}"),
        }
    }

    fn up_and_down(text: &str) -> (String, String) {
        let s = sections(text);
        (section_text(text, &s.up), section_text(text, &s.down))
    }

    fn refused(text: &str) -> Vec<(usize, String)> {
        match split(text) {
            Err(problems) => problems.into_iter().map(|p| (p.line, p.message)).collect(),
            other => panic!("{text}: accepted as {other:?}"),
        }
    }

    #[test]
    fn a_byte_order_mark_before_the_first_annotation_is_not_part_of_it() {
        for (text, up, down) in [
            (
                "\u{feff}-- +goose Up\nCREATE TABLE a (x);\n-- +goose Down\nDROP TABLE a;\n",
                "CREATE TABLE a (x);",
                "DROP TABLE a;",
            ),
            (
                "\u{feff}-- migrate:up\r\nCREATE TABLE a (x);\r\n-- migrate:down\r\nDROP TABLE a;\r\n",
                "CREATE TABLE a (x);",
                "DROP TABLE a;",
            ),
            (
                "\u{feff}-- +migrate Up\nCREATE TABLE a (x);\n-- +migrate Down\nDROP TABLE a;\n",
                "CREATE TABLE a (x);",
                "DROP TABLE a;",
            ),
        ] {
            let (found_up, found_down) = up_and_down(text);
            assert_eq!((found_up.trim(), found_down.trim()), (up, down), "{text:?}");
        }
    }

    #[test]
    fn ordinary_files_have_no_sections() {
        for text in [
            "",
            "CREATE TABLE a (x);",
            "-- migrate the users\nCREATE TABLE a (x);",
            "-- migrate:upgrade\nCREATE TABLE a (x);",
            "--+migrate Up\nCREATE TABLE a (x);",
            "-- +migrateUp\n",
            "SELECT '+goose';",
        ] {
            assert_eq!(split(text), Ok(None), "{text}");
        }
    }

    #[test]
    fn goose_sections_keep_their_lines() {
        let text =
            "-- header\n-- +goose Up\nCREATE TABLE a (x);\n\n-- +goose Down\nDROP TABLE a;\n";
        let s = sections(text);
        assert_eq!(s.tool, Tool::Goose);
        assert_eq!((s.up_line, s.down_line), (2, Some(5)));
        let (up, down) = up_and_down(text);
        assert_eq!(up, "\n\nCREATE TABLE a (x);\n\n\n\n");
        assert_eq!(down, "\n\n\n\n\nDROP TABLE a;\n");
    }

    #[test]
    fn goose_annotations_in_any_case_and_spacing() {
        for (up, down) in [
            ("-- +goose Up", "-- +goose Down"),
            ("-- +goose up", "-- +goose down"),
            ("--+goose UP", "--+goose DOWN"),
            ("-- +goose   Up   ", "--   +goose Down\r"),
            ("---- +goose Up --", "-- +goose Down --"),
        ] {
            let text = format!("{up}\nCREATE TABLE a (x);\n{down}\nDROP TABLE a;\n");
            let (u, d) = up_and_down(&text);
            assert_eq!(u.trim(), "CREATE TABLE a (x);", "{text}");
            assert_eq!(d.trim(), "DROP TABLE a;", "{text}");
        }
        // Statement markers and ENVSUB OFF are comments to SQLite.
        let text = "-- +goose Up\n-- +goose StatementBegin\nCREATE TRIGGER t AFTER INSERT ON a BEGIN SELECT 1; END;\n-- +goose StatementEnd\n-- +goose ENVSUB OFF\n";
        let (up, _) = up_and_down(text);
        assert!(up.contains("CREATE TRIGGER"), "{up}");
        assert!(sections(text).down.is_empty());
    }

    #[test]
    fn goose_files_goose_refuses_are_refused() {
        let cases: [(&str, usize, &str); 9] = [
            (
                "CREATE TABLE a (x);\n-- +goose Up\nSELECT 1;\n",
                1,
                "stands before `-- +goose Up`",
            ),
            (
                "-- +goose Down\nDROP TABLE a;\n",
                1,
                "before any `-- +goose Up`",
            ),
            (
                "-- +goose Up\nSELECT 1;\n-- +goose Up\n",
                3,
                "a second `-- +goose Up` (line 1",
            ),
            (
                "-- +goose Up\n-- +goose Down\n-- +goose Down\n",
                3,
                "a second `-- +goose Down`",
            ),
            (
                "-- +goose Up\n -- +goose Down\n",
                2,
                "whitespace before its `--`",
            ),
            ("-- +goose Up +goose Down\n", 1, "two `+goose` annotations"),
            (
                "-- +goose NO TRANSACTIONS --\n-- +goose Up\n",
                1,
                "no annotation `NO TRANSACTIONS`",
            ),
            (
                "-- +goose ENVSUB ON\n-- +goose Up\nSELECT '${X}';\n",
                1,
                "${VAR}",
            ),
            (
                "-- +goose StatementBegin\nSELECT 1;\n",
                1,
                "has no `-- +goose Up`",
            ),
        ];
        for (text, line, needle) in cases {
            let problems = refused(text);
            assert_eq!(problems.len(), 1, "{text}: {problems:?}");
            assert_eq!(problems[0].0, line, "{text}: {problems:?}");
            assert!(problems[0].1.contains(needle), "{text}: {problems:?}");
        }
    }

    #[test]
    fn no_transaction_options_mark_their_sections() {
        for (text, up, down) in [
            (
                "-- +goose NO TRANSACTION\n-- +goose Up\nVACUUM;\n-- +goose Down\nVACUUM;\n",
                true,
                true,
            ),
            (
                "-- +goose Up\n-- +goose no transaction\nVACUUM;\n",
                true,
                true,
            ),
            (
                "-- migrate:up transaction:false\nVACUUM;\n-- migrate:down\nSELECT 1;\n",
                true,
                false,
            ),
            (
                "-- migrate:up\nSELECT 1;\n-- migrate:down transaction:false\nVACUUM;\n",
                false,
                true,
            ),
            ("-- +migrate Up notransaction\nVACUUM;\n", true, false),
            ("-- +migrate Up\nSELECT 1;\n", false, false),
        ] {
            let sections = split(text)
                .unwrap_or_else(|p| panic!("{text}: {p:?}"))
                .unwrap_or_else(|| panic!("{text}: no sections"));
            assert_eq!(
                (sections.up_no_transaction, sections.down_no_transaction),
                (up, down),
                "{text}"
            );
        }
    }

    #[test]
    fn dbmate_blocks() {
        let text = "-- a comment\n--migrate:up\nCREATE TABLE a (x);\n-- migrate:up again, a comment\n--\tmigrate:down\nDROP TABLE a;\n-- migrate:down\n";
        let s = sections(text);
        assert_eq!(s.tool, Tool::Dbmate);
        assert_eq!((s.up_line, s.down_line), (2, Some(5)));
        let (up, down) = up_and_down(text);
        assert!(
            up.contains("CREATE TABLE a (x);\n-- migrate:up again"),
            "{up}"
        );
        assert!(!up.contains("DROP"), "{up}");
        assert!(down.contains("DROP TABLE a;\n-- migrate:down"), "{down}");
        // Without a down block: a migration without rollback.
        let s = sections("-- migrate:up\nCREATE TABLE a (x);\n");
        assert!(s.down.is_empty());
        assert_eq!(s.down_line, None);
        // What dbmate refuses.
        let problems =
            refused("-- migrate:down\nDROP TABLE a;\n-- migrate:up\nCREATE TABLE a (x);\n");
        assert!(
            problems[0]
                .1
                .contains("comes before `-- migrate:up` (line 3)"),
            "{problems:?}"
        );
        let problems = refused("-- migrate:down\nDROP TABLE a;\n");
        assert!(
            problems[0].1.contains("without a `-- migrate:up`"),
            "{problems:?}"
        );
        let problems = refused("CREATE TABLE a (x);\n-- migrate:up\n");
        assert_eq!(problems[0].0, 1);
        assert!(
            problems[0]
                .1
                .contains("`CREATE TABLE a (x);` stands before"),
            "{problems:?}"
        );
        // Case matters to dbmate: a near miss is refused.
        let problems = refused("-- migrate:UP\nSELECT 1;\n");
        assert!(problems[0].1.contains("in lower case"), "{problems:?}");
    }

    #[test]
    fn sql_migrate_sections_in_any_order() {
        let text = "-- +migrate Down\nDROP TABLE b;\n-- +migrate Up\nCREATE TABLE a (x);\n-- +migrate StatementBegin\nCREATE TABLE b (y);\n-- +migrate StatementEnd\n-- +migrate Down\nDROP TABLE a;\n";
        let s = sections(text);
        assert_eq!(s.tool, Tool::SqlMigrate);
        assert_eq!((s.up_line, s.down_line), (3, Some(1)));
        let (up, down) = up_and_down(text);
        assert!(up.contains("CREATE TABLE a (x);") && up.contains("CREATE TABLE b (y);"));
        assert!(!up.contains("DROP"), "{up}");
        assert!(down.contains("DROP TABLE b;") && down.contains("DROP TABLE a;"));
        assert!(!down.contains("CREATE"), "{down}");
        // Case matters to sql-migrate: a near miss is refused.
        let problems = refused("-- +migrate up\nSELECT 1;\n-- +migrate down\nSELECT 2;\n");
        assert_eq!(problems.len(), 2, "{problems:?}");
        assert!(problems[0].1.contains("capitalised"), "{problems:?}");
        let problems = refused("-- +migrate StatementBegin\nSELECT 1;\n");
        assert!(
            problems[0].1.contains("no `-- +migrate Up`"),
            "{problems:?}"
        );
        let problems = refused("SELECT 1;\n-- +migrate Up\nSELECT 2;\n");
        assert!(
            problems[0].1.contains("sql-migrate ignores statements"),
            "{problems:?}"
        );
        let problems = refused("-- +migrate \n");
        assert!(problems[0].1.contains("incomplete"), "{problems:?}");
    }

    #[test]
    fn one_tool_per_file() {
        let problems = refused("-- +goose Up\nSELECT 1;\n-- migrate:down\nSELECT 2;\n");
        assert_eq!(problems.len(), 1);
        assert_eq!(problems[0].0, 3);
        assert!(
            problems[0]
                .1
                .contains("dbmate's marker, but line 1 has goose's"),
            "{problems:?}"
        );
    }

    #[test]
    fn sections_keep_crlf_and_lone_cr_lines() {
        let text = "-- +goose Up\r\nCREATE TABLE a (x);\r\n-- +goose Down\r\nDROP TABLE a;\r\n";
        let (up, down) = up_and_down(text);
        assert_eq!(up, "\r\nCREATE TABLE a (x);\r\n\r\n\r\n");
        assert_eq!(down, "\r\n\r\n\r\nDROP TABLE a;\r\n");
        // A lone CR ends a line for SQLite's line numbers, not for the tools.
        let s = sections("-- x\rmore\n-- +goose Up\nSELECT 1;\n");
        assert_eq!(s.up_line, 3);
    }
}
