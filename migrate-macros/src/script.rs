//! One SQL file made ready for the runner.
//!
//! The runner runs each migration inside a transaction of its own, so a file
//! written for a runner that does not (a hand-written `user_version` or
//! `schema_migrations` runner, `sqlite3 db < file.sql`) is adapted here:
//! - its `BEGIN … COMMIT` (or `END`) wrappers are dropped: a file whose
//!   statements all sit inside one or more such blocks runs as one migration
//!   (comments, `PRAGMA foreign_keys` and `PRAGMA user_version` lines may
//!   stand outside them, and the last `COMMIT` may lack its `;`). Any other transaction statement is
//!   refused, with advice that keeps the file a migration;
//! - `PRAGMA foreign_keys = OFF` at top level makes it a `foreign_keys = off`
//!   migration (the runner turns foreign keys off before its `BEGIN`, checks
//!   them before `COMMIT`, and restores them), and every top-level
//!   `PRAGMA foreign_keys` statement is dropped: inside the runner's
//!   transaction it would do nothing;
//! - an empty or comment-only file is a no-op migration.
//!
//! The checksum is not affected: it is taken over the file's text.

use std::ops::Range;

use crate::sql::{self, Kind, Statement};

/// A file ready to register.
#[derive(Debug, PartialEq, Eq)]
pub struct Script {
    /// The SQL the runner executes, when it is not the file's text as it is.
    pub executed: Option<String>,
    /// A `PRAGMA foreign_keys = OFF` stood at top level.
    pub foreign_keys_off: bool,
    /// The step runs outside any transaction, its text as it is.
    pub no_transaction: bool,
}

/// sqlx's convention, kept so that sqlx directories run unchanged: a file
/// whose text starts with this runs outside any transaction.
const NO_TRANSACTION: &str = "-- no-transaction";

/// A script that runs outside any transaction, as written: its own
/// `BEGIN`/`COMMIT` and pragmas are its business there.
pub fn outside_transaction() -> Script {
    Script {
        executed: None,
        foreign_keys_off: false,
        no_transaction: true,
    }
}

/// Something in the file that cannot run, with its line.
#[derive(Debug, PartialEq, Eq)]
pub struct Problem {
    pub line: usize,
    pub message: String,
}

/// Reads `text` and decides how it runs.
pub fn prepare(text: &str) -> Result<Script, Vec<Problem>> {
    // A byte order mark (an editor's, on Windows) is not part of the text.
    if text
        .trim_start_matches('\u{feff}')
        .starts_with(NO_TRANSACTION)
    {
        return Ok(outside_transaction());
    }
    let tokens = sql::tokenize(text);
    let statements = sql::statements(text, &tokens);
    let kinds: Vec<Kind> = statements
        .iter()
        .map(|s| sql::classify(text, &tokens, s))
        .collect();

    let mut dropped: Vec<Range<usize>> = Vec::new();
    let mut problems = Vec::new();
    let controls_transactions = kinds
        .iter()
        .any(|k| matches!(k, Kind::Begin | Kind::Commit(_) | Kind::Rollback));
    if controls_transactions {
        wrappers(text, &statements, &kinds, &mut dropped, &mut problems);
    }
    let mut foreign_keys_off = false;
    for (statement, kind) in statements.iter().zip(&kinds) {
        if let Kind::ForeignKeys(value) = kind {
            foreign_keys_off |= *value == Some(false);
            dropped.push(statement.span.clone());
        }
    }
    if !problems.is_empty() {
        problems.sort_by_key(|p| p.line);
        return Err(problems);
    }

    let runs_something = statements
        .iter()
        .zip(&kinds)
        .any(|(s, k)| *k != Kind::Empty && !dropped.contains(&s.span));
    let executed = if !runs_something {
        // Nothing to run: an empty batch, whatever comments the file holds.
        (!text.is_empty()).then(String::new)
    } else if dropped.is_empty() {
        None
    } else {
        Some(blank_out(text, &dropped))
    };
    Ok(Script {
        executed,
        foreign_keys_off,
        no_transaction: false,
    })
}

/// Checks that the transaction statements are wrappers, and marks them to
/// be dropped.
fn wrappers(
    text: &str,
    statements: &[Statement],
    kinds: &[Kind],
    dropped: &mut Vec<Range<usize>>,
    problems: &mut Vec<Problem>,
) {
    // The line of the BEGIN of the block we are in.
    let mut open: Option<usize> = None;
    // Without any BEGIN, a stray COMMIT or ROLLBACK is the only problem:
    // the other statements have no blocks to stand outside of.
    let has_blocks = kinds.contains(&Kind::Begin);
    for (statement, kind) in statements.iter().zip(kinds) {
        let line = statement.line;
        match kind {
            // A user_version runner's `PRAGMA user_version = N`, often
            // after the last COMMIT, runs as written, in the transaction.
            Kind::Empty | Kind::ForeignKeys(_) | Kind::UserVersion => {}
            Kind::Begin => match open {
                Some(begin) => problems.push(Problem {
                    line,
                    message: format!(
                        "`BEGIN` inside the transaction that line {begin} begins: SQLite does not \
                         nest transactions; delete one of the two BEGINs (the file stays one migration)"
                    ),
                }),
                None => {
                    open = Some(line);
                    dropped.push(statement.span.clone());
                }
            },
            Kind::Commit(keyword) => match open {
                Some(_) => {
                    open = None;
                    dropped.push(statement.span.clone());
                }
                None => problems.push(Problem {
                    line,
                    message: format!(
                        "`{keyword}` without a `BEGIN` before it: delete it, or add `BEGIN;` where \
                         its transaction starts; the runner runs the whole file as one migration, \
                         in one transaction"
                    ),
                }),
            },
            Kind::Rollback => {
                // It ends its block, for the statements after it.
                let advice = if open.take().is_some() {
                    "replace it with `COMMIT` (the runner then drops the block's BEGIN and \
                     COMMIT), or delete it"
                } else {
                    "delete it (the file stays a migration)"
                };
                problems.push(Problem {
                    line,
                    message: format!(
                        "`ROLLBACK` would end the runner's transaction: {advice}; the runner rolls \
                         a migration back by itself when one of its statements fails, and \
                         `SAVEPOINT` … `ROLLBACK TO` undoes part of one"
                    ),
                })
            }
            Kind::Other => {
                if has_blocks && open.is_none() {
                    problems.push(Problem {
                        line,
                        message: format!(
                            "`{}` stands outside the file's BEGIN … COMMIT blocks: move it inside \
                             one, or delete the file's BEGIN and COMMIT lines; either way the whole \
                             file runs as one migration, in one transaction",
                            opening_words(text, statement)
                        ),
                    });
                }
            }
        }
    }
    if let Some(begin) = open {
        problems.push(Problem {
            line: begin,
            message: "`BEGIN` that is never committed: end its block with `COMMIT;` (the runner \
                      then drops both and runs the file in its own transaction), or delete it"
                .to_owned(),
        });
    }
}

/// The first words of a statement, for messages.
fn opening_words(text: &str, statement: &Statement) -> String {
    let words: Vec<&str> = text[statement.span.clone()].split_whitespace().collect();
    let whole = words.join(" ");
    if whole.chars().count() <= 40 {
        return whole;
    }
    let mut shown: String = whole.chars().take(40).collect();
    shown.push_str(" …");
    shown
}

/// `text` with the bytes of `ranges` replaced by spaces (newlines kept, so
/// SQLite's messages and the file keep their line numbers).
fn blank_out(text: &str, ranges: &[Range<usize>]) -> String {
    let mut bytes = text.as_bytes().to_vec();
    for range in ranges {
        for b in &mut bytes[range.clone()] {
            if *b != b'\n' && *b != b'\r' {
                *b = b' ';
            }
        }
    }
    // Whole statements were blanked, and statements begin and end on ASCII
    // characters, so the text stays UTF-8; should that ever fail, the lossy
    // conversion still yields the same statements.
    String::from_utf8(bytes).unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(text: &str) -> Script {
        prepare(text).unwrap_or_else(|p| panic!("{text}: {p:?}"))
    }

    fn refused(text: &str) -> Vec<(usize, String)> {
        match prepare(text) {
            Ok(script) => panic!("{text}: accepted as {script:?}"),
            Err(problems) => problems.into_iter().map(|p| (p.line, p.message)).collect(),
        }
    }

    #[test]
    fn no_transaction_after_a_byte_order_mark_counts() {
        for text in [
            "-- no-transaction\nVACUUM;",
            "\u{feff}-- no-transaction\r\nVACUUM;",
        ] {
            assert!(run(text).no_transaction, "{text:?}");
        }
        assert!(!run("\u{feff}CREATE TABLE a (x);").no_transaction);
    }

    /// SQLite reads a byte order mark where a token could start as a blank
    /// (round 16: `\u{feff}BEGIN` was one word to the lexer, so the file's
    /// COMMIT had "no BEGIN before it", and a top-level `PRAGMA
    /// foreign_keys = OFF` after a mark was not seen).
    #[test]
    fn a_byte_order_mark_is_a_blank() {
        let wrapped = run("\u{feff}BEGIN;\nCREATE TABLE a (x);\nCOMMIT;\n");
        assert!(wrapped.executed.is_some(), "{wrapped:?}");
        assert!(run("\u{feff}PRAGMA foreign_keys = OFF;\nCREATE TABLE a (x);").foreign_keys_off);
        assert!(run("CREATE TABLE a (x);\n\u{feff}PRAGMA foreign_keys = OFF;").foreign_keys_off);
    }

    #[test]
    fn plain_files_run_as_they_are() {
        let script = run("CREATE TABLE a (x);\nINSERT INTO a VALUES (1);\n");
        assert_eq!(script.executed, None);
        assert!(!script.foreign_keys_off);
    }

    #[test]
    fn wrappers_are_dropped() {
        let text = "-- users\nBEGIN TRANSACTION;\nCREATE TABLE a (x);\nCOMMIT;\n";
        let script = run(text);
        assert_eq!(
            script.executed.as_deref(),
            Some("-- users\n                  \nCREATE TABLE a (x);\n       \n")
        );
        for text in [
            "BEGIN; CREATE TABLE a (x); COMMIT",
            "begin immediate transaction;\nCREATE TABLE a (x);\nend transaction;",
            "BEGIN DEFERRED; CREATE TABLE a (x); END; BEGIN EXCLUSIVE; CREATE TABLE b (x); COMMIT TRANSACTION;",
            "/* header */ BEGIN;\nCREATE TABLE a (x);\nCOMMIT;\n-- trailer\n;\n",
        ] {
            let executed = run(text).executed.expect("rewritten");
            let tokens = sql::tokenize(&executed);
            let left: Vec<Kind> = sql::statements(&executed, &tokens)
                .iter()
                .map(|s| sql::classify(&executed, &tokens, s))
                .filter(|k| *k != Kind::Empty)
                .collect();
            assert!(left.iter().all(|k| *k == Kind::Other), "{text}: {executed}");
            assert!(!executed.to_ascii_uppercase().contains("BEGIN"), "{executed}");
            assert_eq!(executed.len(), text.len(), "line structure kept");
        }
    }

    #[test]
    fn a_trigger_inside_a_wrapper() {
        let text = "BEGIN;\nCREATE TABLE t (begin, end);\nCREATE TRIGGER g AFTER INSERT ON t BEGIN\n  UPDATE t SET end = NEW.end + 1;\nEND;\nCOMMIT;\n";
        let executed = run(text).executed.expect("rewritten");
        assert_eq!(
            executed,
            "      \nCREATE TABLE t (begin, end);\nCREATE TRIGGER g AFTER INSERT ON t BEGIN\n  UPDATE t SET end = NEW.end + 1;\nEND;\n       \n"
        );
    }

    #[test]
    fn foreign_keys_off_is_read_and_dropped() {
        let text = "PRAGMA foreign_keys = OFF;\nBEGIN;\nCREATE TABLE b (x);\nCOMMIT;\nPRAGMA foreign_keys = ON;\n";
        let script = run(text);
        assert!(script.foreign_keys_off);
        let executed = script.executed.expect("rewritten");
        assert_eq!(executed.trim(), "CREATE TABLE b (x);");
        // Inside the wrapper, without any wrapper, any spelling.
        for text in [
            "BEGIN;\nPRAGMA foreign_keys=off;\nCREATE TABLE b (x);\nCOMMIT;",
            "pragma main.FOREIGN_KEYS = 'off'; CREATE TABLE b (x);",
            "PRAGMA foreign_keys = 0; CREATE TABLE b (x); PRAGMA foreign_keys = 1;",
            "PRAGMA foreign_keys = false\n;CREATE TABLE b (x)",
        ] {
            let script = run(text);
            assert!(script.foreign_keys_off, "{text}");
            let executed = script.executed.expect("rewritten").to_ascii_lowercase();
            assert!(executed.contains("create table b (x)"), "{text}");
            for dropped in ["pragma", "begin", "commit"] {
                assert!(!executed.contains(dropped), "{text}: {executed}");
            }
        }
        // ON alone: dropped (a no-op in a transaction), not an off migration.
        let script = run("PRAGMA foreign_keys = ON;\nCREATE TABLE b (x);");
        assert!(!script.foreign_keys_off);
        assert_eq!(
            script.executed.as_deref().map(str::trim),
            Some("CREATE TABLE b (x);")
        );
        // Other pragmas run as written.
        assert_eq!(run("PRAGMA user_version = 3;").executed, None);
    }

    #[test]
    fn user_version_may_stand_outside_the_blocks() {
        for text in [
            "BEGIN;\nCREATE TABLE a (x);\nCOMMIT;\nPRAGMA user_version = 1;\n",
            "PRAGMA user_version=1; BEGIN; CREATE TABLE a (x); COMMIT;",
            "BEGIN; CREATE TABLE a (x); COMMIT; PRAGMA main.\"user_version\" = 1",
            "BEGIN; CREATE TABLE a (x); COMMIT; PRAGMA USER_VERSION(1);",
        ] {
            let executed = run(text).executed.expect("wrappers dropped");
            let lower = executed.to_ascii_lowercase();
            assert!(lower.contains("create table a (x)"), "{text}");
            assert!(
                lower.contains("user_version"),
                "runs as written: {executed}"
            );
            assert!(
                !lower.contains("begin") && !lower.contains("commit"),
                "{executed}"
            );
        }
        // Other pragmas still may not.
        let problems = refused("BEGIN; CREATE TABLE a (x); COMMIT; PRAGMA application_id = 7;");
        assert!(problems[0].1.contains("stands outside"), "{problems:?}");
    }

    #[test]
    fn empty_and_comment_only_files_are_no_ops() {
        assert_eq!(run("").executed, None);
        for text in [
            "\n\n",
            "-- nothing yet\n",
            "/* a */ ;\n-- b",
            "BEGIN;\nCOMMIT;\n",
            "PRAGMA foreign_keys = ON;",
        ] {
            assert_eq!(run(text).executed.as_deref(), Some(""), "{text:?}");
        }
    }

    #[test]
    fn other_transaction_statements_are_refused_with_advice() {
        let problems = refused("BEGIN;\nCREATE TABLE a (x);\nROLLBACK;\n");
        assert_eq!(problems.len(), 1, "{problems:?}");
        assert_eq!(problems[0].0, 3);
        assert!(
            problems[0].1.contains("replace it with `COMMIT`"),
            "{problems:?}"
        );
        let problems = refused("CREATE TABLE a (x);\nROLLBACK;\n");
        assert_eq!(problems.len(), 1, "{problems:?}");
        assert!(problems[0]
            .1
            .contains("delete it (the file stays a migration)"));

        let problems = refused("BEGIN;\nCREATE TABLE a (x);\nCOMMIT;\nCREATE TABLE b (y);\nBEGIN;\nCREATE TABLE c (z);\nCOMMIT;\n");
        assert_eq!(problems.len(), 1);
        assert_eq!(problems[0].0, 4);
        assert!(
            problems[0]
                .1
                .starts_with("`CREATE TABLE b (y);` stands outside"),
            "{problems:?}"
        );

        let problems = refused("BEGIN;\nBEGIN;\nCREATE TABLE a (x);\nCOMMIT;\n");
        assert_eq!(problems, vec![(2, "`BEGIN` inside the transaction that line 1 begins: SQLite does not nest transactions; delete one of the two BEGINs (the file stays one migration)".to_owned())]);

        let problems = refused("CREATE TABLE a (x);\nCOMMIT;\n");
        assert_eq!(problems.len(), 1);
        assert_eq!(problems[0].0, 2);
        assert!(problems[0].1.starts_with("`COMMIT` without a `BEGIN`"));

        let problems = refused("CREATE TABLE a (x);\nEND;\n");
        assert!(problems[0].1.starts_with("`END` without a `BEGIN`"));
        let problems = refused("BEGIN; SELECT 1; COMMIT; COMMIT;");
        assert_eq!(problems.len(), 1);
        assert!(problems[0].1.starts_with("`COMMIT` without a `BEGIN`"));

        // None of the advice removes the file.
        for text in [
            "ROLLBACK;",
            "COMMIT;",
            "BEGIN;",
            "SELECT 1; BEGIN; SELECT 2; COMMIT;",
        ] {
            for (_, message) in refused(text) {
                assert!(!message.contains("remove the file"), "{message}");
            }
        }
    }
}
