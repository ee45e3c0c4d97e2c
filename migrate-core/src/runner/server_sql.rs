//! What a file's guard refuses and a libSQL server cannot: a server has no
//! authorizer, so a step's SQL is read before it is sent, and a statement
//! that would write a tracking table (any set's), change its definition,
//! index it, put a trigger on it, or touch the runner's own triggers is
//! refused, nothing sent. The check after each step
//! (`history::untouched`) stays: it sees what this reading cannot, an
//! `async fn` step's statements.
//!
//! The reading is by position, as SQLite's grammar places a table that a
//! statement writes: after `INTO`, `UPDATE [OR …]`, `DELETE FROM`,
//! `ALTER TABLE`, `DROP TABLE`, `REINDEX`, `ANALYZE`, and after the `ON` of
//! `CREATE INDEX` and `CREATE TRIGGER`, a trigger's body included. A
//! tracking table read (`FROM`, `JOIN`, a subquery) is allowed, as on a
//! file, and so is a column that happens to share its name.

use std::borrow::Cow;

use crate::sql_tokens::{statements, tokenize, Token};

/// The first statement of `sql` that a step may not run, with its line in
/// `sql` and why; `tracking` holds the names of every tracking table in
/// `main`.
pub(crate) fn refused_statement(sql: &str, tracking: &[String]) -> Option<(u32, String)> {
    statements(tokenize(sql))
        .into_iter()
        .find_map(|(line, tokens)| refusal(&tokens, tracking).map(|why| (line, why)))
}

/// The first trigger of the database (`(name, sql)`) that writes or is
/// put on a tracking table, but for the runner's own (`own`): created
/// before the tracking table it names existed (the check of its statement
/// knew only the tables of its time), or by hand. On a file the guard
/// refuses the statement when the trigger fires; a server cannot see
/// that, so no step runs while such a trigger exists.
pub(crate) fn trigger_writing_history<'t>(
    triggers: &'t [(String, String)],
    tracking: &[String],
    own: &[String],
) -> Option<(&'t str, String)> {
    triggers
        .iter()
        .filter(|(name, _)| !own.iter().any(|o| o.eq_ignore_ascii_case(name)))
        .find_map(|(name, sql)| {
            let tokens: Vec<Token> = tokenize(sql).into_iter().map(|(t, _)| t).collect();
            refusal(&tokens, tracking).map(|why| (name.as_str(), why))
        })
}

fn refusal(tokens: &[Token], tracking: &[String]) -> Option<String> {
    if tokens.first().is_some_and(|t| t.is_word("pragma"))
        && tokens.iter().any(|t| t.is_word("writable_schema"))
    {
        return Some(
            "it sets PRAGMA writable_schema, which could rewrite a tracking table's definition"
                .to_owned(),
        );
    }
    if let Some(trigger) = runner_trigger(tokens) {
        return Some(format!(
            "it creates or drops the trigger {trigger:?}, named like migrate-core's own on a tracking table"
        ));
    }
    let create_on = tokens.first().is_some_and(|t| t.is_word("create"))
        && tokens
            .iter()
            .take(4)
            .any(|t| t.is_word("index") || t.is_word("trigger"));
    let mut first_on = create_on;
    for (i, token) in tokens.iter().enumerate() {
        let target = if token.is_word("on") && first_on {
            first_on = false;
            true
        } else {
            writes_next(tokens, i)
        };
        if !target {
            continue;
        }
        let Some(table) = table_at(tokens, i + 1) else {
            continue;
        };
        if let Some(name) = tracking.iter().find(|n| n.eq_ignore_ascii_case(&table)) {
            return Some(format!(
                "it writes, alters, indexes or puts a trigger on the tracking table {name:?}"
            ));
        }
    }
    None
}

/// Whether the token after `tokens[i]` names a table the statement writes
/// or changes.
fn writes_next(tokens: &[Token], i: usize) -> bool {
    let word = |k: usize, w: &str| tokens.get(k).is_some_and(|t| t.is_word(w));
    let before = |w: &str| i > 0 && word(i - 1, w);
    let token = &tokens[i];
    if token.is_word("into") || token.is_word("reindex") || token.is_word("analyze") {
        return true;
    }
    // `DELETE FROM t`; not `SELECT … FROM t`.
    if token.is_word("from") {
        return before("delete");
    }
    // `ALTER TABLE t`, `DROP TABLE t`, `DROP TABLE IF EXISTS t`.
    if token.is_word("table") {
        return before("alter") || before("drop");
    }
    if token.is_word("exists") {
        return i >= 3 && word(i - 1, "if") && word(i - 2, "table") && word(i - 3, "drop");
    }
    // `UPDATE t`, `UPDATE OR IGNORE t`; not `UPDATE OF c` (a trigger's
    // event), `UPDATE SET` (an upsert's) or `UPDATE ON` (a trigger's event).
    if token.is_word("update") {
        return !(word(i + 1, "of")
            || word(i + 1, "set")
            || word(i + 1, "on")
            || word(i + 1, "or"));
    }
    if i >= 2 && word(i - 1, "or") && word(i - 2, "update") {
        return true;
    }
    false
}

/// The table named at `tokens[at]`: a name, or `main.name`; `None` for
/// another schema's (TEMP, attached), which is not a tracking table of
/// `main`.
fn table_at(tokens: &[Token], at: usize) -> Option<Cow<'_, str>> {
    let first = tokens.get(at)?.object_name()?;
    if tokens.get(at + 1).is_some_and(|t| t.is_punct(".")) {
        let table = tokens.get(at + 2)?.object_name()?;
        return first.eq_ignore_ascii_case("main").then_some(table);
    }
    Some(first)
}

/// The name of a trigger this statement creates or drops, when it is
/// named like the runner's own (`migrate_core_…`).
fn runner_trigger(tokens: &[Token]) -> Option<Cow<'_, str>> {
    let verb = tokens.first()?;
    if !(verb.is_word("create") || verb.is_word("drop")) {
        return None;
    }
    let at = tokens.iter().take(3).position(|t| t.is_word("trigger"))? + 1;
    // `IF NOT EXISTS` / `IF EXISTS`.
    let at = tokens[at..]
        .iter()
        .position(|t| !(t.is_word("if") || t.is_word("not") || t.is_word("exists")))?
        + at;
    let name = table_at(tokens, at).or_else(|| tokens.get(at + 2)?.object_name())?;
    let prefix = "migrate_core_";
    (name.len() >= prefix.len() && name[..prefix.len()].eq_ignore_ascii_case(prefix))
        .then_some(name)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refused(sql: &str) -> Option<u32> {
        let tracking = ["migrations".to_owned(), "migrations_other".to_owned()];
        refused_statement(sql, &tracking).map(|(line, _)| line)
    }

    #[test]
    fn writes_and_changes_of_any_tracking_table_are_refused() {
        for sql in [
            "DELETE FROM migrations WHERE id = 0",
            "delete from MIGRATIONS",
            "UPDATE migrations SET chain = 'x'",
            "UPDATE OR IGNORE \"Migrations_Other\" SET name = 'x'",
            "INSERT INTO migrations_other VALUES (9, 'x', 0, 'x', 'x')",
            "INSERT OR REPLACE INTO main.migrations VALUES (1)",
            "REPLACE INTO [migrations] VALUES (1)",
            "ALTER TABLE migrations ADD COLUMN extra",
            "ALTER TABLE `migrations_other` RENAME TO gone",
            "DROP TABLE IF EXISTS migrations",
            "DROP TABLE main.migrations_other",
            "CREATE INDEX sneaky ON migrations (name)",
            "CREATE UNIQUE INDEX IF NOT EXISTS sneaky ON main.migrations_other (checksum)",
            "CREATE TRIGGER t AFTER INSERT ON migrations BEGIN SELECT 1; END",
            "CREATE TRIGGER t AFTER UPDATE OF x ON users BEGIN UPDATE migrations SET chain = 'x'; END",
            "CREATE TRIGGER t AFTER DELETE ON users BEGIN DELETE FROM migrations_other; END",
            "CREATE TEMP TRIGGER t AFTER INSERT ON users BEGIN INSERT INTO main.migrations VALUES (1); END",
            "REINDEX migrations",
            "DROP TRIGGER migrate_core_edit_migrations",
            "CREATE TRIGGER IF NOT EXISTS Migrate_Core_insert_x AFTER INSERT ON users BEGIN SELECT 1; END",
            "PRAGMA writable_schema = ON",
            // SQLite takes a string literal where a name goes.
            "DELETE FROM 'migrations' WHERE id = 1",
            "UPDATE main.'migrations_other' SET chain = 'x'",
            "CREATE TRIGGER t AFTER INSERT ON users BEGIN DELETE FROM 'Migrations'; END",
            "DROP TRIGGER 'migrate_core_edit_migrations'",
            "CREATE TRIGGER temp.migrate_core_edit_migrations AFTER INSERT ON users BEGIN SELECT 1; END",
            "DROP TRIGGER IF EXISTS aux.MIGRATE_CORE_insert_migrations",
            // `trigger` as a table's name does not start a trigger's body.
            "CREATE TABLE trigger (x); CREATE INDEX i ON trigger (x); CREATE TRIGGER evil BEFORE DELETE ON migrations BEGIN SELECT RAISE(IGNORE); END",
        ] {
            assert_eq!(refused(sql), Some(1), "{sql}");
        }
    }

    #[test]
    fn reads_other_schemas_and_names_elsewhere_are_allowed() {
        for sql in [
            "SELECT * FROM migrations",
            "INSERT INTO audit SELECT id, name FROM migrations",
            "CREATE TABLE copy AS SELECT * FROM migrations_other",
            "CREATE VIEW applied AS SELECT name FROM migrations",
            "UPDATE users SET migrations = 1",
            "INSERT INTO users (migrations) VALUES ('migrations')",
            "DELETE FROM temp.migrations",
            "INSERT INTO temp.migrations VALUES (1)",
            "CREATE TEMP TABLE migrations (x)",
            "CREATE TRIGGER t AFTER UPDATE ON users BEGIN UPDATE users SET n = (SELECT count(*) FROM migrations); END",
            "INSERT INTO t VALUES (1) ON CONFLICT DO UPDATE SET x = 2",
            "CREATE INDEX users_by_migrations ON users (migrations)",
            "-- DELETE FROM migrations\nSELECT 1",
            "SELECT 'DELETE FROM migrations'",
            "DROP TRIGGER my_trigger",
        ] {
            assert_eq!(refused(sql), None, "{sql}");
        }
    }

    /// Over every SQL file of the fixtures (the corpus of 12 public
    /// projects, the test sets; the hostile ones aside), with `migrations`
    /// and `schema_migrations` taken as tracking tables: refused are exactly
    /// the two files that insert into `schema_migrations` (a Rails-style
    /// runner's seeds); Authelia's `CREATE TABLE migrations`, comments and
    /// everything else run.
    #[test]
    fn real_migrations_are_not_refused() -> std::io::Result<()> {
        fn sql_files(
            dir: &std::path::Path,
            out: &mut Vec<std::path::PathBuf>,
        ) -> std::io::Result<()> {
            for entry in std::fs::read_dir(dir)? {
                let path = entry?.path();
                if path.is_dir() {
                    sql_files(&path, out)?;
                } else if path.extension().is_some_and(|e| e == "sql") {
                    out.push(path);
                }
            }
            Ok(())
        }
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures");
        let mut files = Vec::new();
        sql_files(&root, &mut files)?;
        assert!(
            files.len() > 200,
            "{} files under {}",
            files.len(),
            root.display()
        );
        let tracking = ["migrations".to_owned(), "schema_migrations".to_owned()];
        let mut refused = Vec::new();
        for file in &files {
            let text = String::from_utf8_lossy(&std::fs::read(file)?).into_owned();
            let hostile = file.to_string_lossy().contains("hostile");
            if !hostile && refused_statement(&text, &tracking).is_some() {
                let name = file.file_name().map(|n| n.to_string_lossy().into_owned());
                refused.push(name.unwrap_or_default());
            }
        }
        refused.sort();
        assert_eq!(refused, ["001_create_posts.sql", "002_add_comments.sql"]);
        Ok(())
    }

    /// The words after `UPDATE` that are not a table: a trigger's event
    /// (`UPDATE OF c`, `UPDATE ON t`), an upsert's (`DO UPDATE SET`), a
    /// conflict clause (`UPDATE OR IGNORE t`), even with tracking tables
    /// named like them (cargo-mutants found nothing pinning these).
    #[test]
    fn keywords_after_update_are_not_taken_for_tables() {
        let tracking = ["of", "set", "on", "or"].map(str::to_owned);
        for sql in [
            "CREATE TRIGGER t AFTER UPDATE OF x ON users BEGIN SELECT 1; END",
            "CREATE TRIGGER t AFTER UPDATE ON users BEGIN SELECT 1; END",
            "INSERT INTO t VALUES (1) ON CONFLICT DO UPDATE SET x = 2",
            "UPDATE OR IGNORE users SET x = 1",
        ] {
            assert_eq!(refused_statement(sql, &tracking), None, "{sql}");
        }
        assert!(refused_statement("UPDATE OR IGNORE \"of\" SET x = 1", &tracking).is_some());
    }

    #[test]
    fn a_drop_trigger_before_a_statement_does_not_hide_it() {
        for sql in [
            "DROP TRIGGER IF EXISTS old; CREATE UNIQUE INDEX sneaky ON migrations (applied_at)",
            "DROP TRIGGER IF EXISTS old; CREATE TRIGGER evil BEFORE INSERT ON migrations BEGIN SELECT RAISE(IGNORE); END",
            "DROP TRIGGER IF EXISTS old; DROP TRIGGER migrate_core_edit_migrations",
            "DROP TRIGGER IF EXISTS old; PRAGMA writable_schema = ON",
        ] {
            assert_eq!(refused(sql), Some(1), "{sql}");
        }
    }

    #[test]
    fn a_trigger_in_the_database_writing_a_tracking_table_is_found() {
        let tracking = ["migrations".to_owned(), "migrations_late".to_owned()];
        let own = ["migrate_core_edit_migrations".to_owned()];
        let trigger = |name: &str, sql: &str| (name.to_owned(), sql.to_owned());
        let harmless = [
            trigger(
                "migrate_core_edit_migrations",
                "CREATE TRIGGER migrate_core_edit_migrations AFTER UPDATE ON migrations BEGIN UPDATE migrations SET chain = 'x'; END",
            ),
            trigger(
                "audit",
                "CREATE TRIGGER audit AFTER INSERT ON users BEGIN INSERT INTO log SELECT count(*) FROM migrations; END",
            ),
        ];
        assert_eq!(trigger_writing_history(&harmless, &tracking, &own), None);
        let mut all = harmless.to_vec();
        all.push(trigger(
            "wipe",
            "CREATE TRIGGER wipe AFTER INSERT ON users WHEN new.name = 'go' BEGIN DELETE FROM migrations_late; END",
        ));
        assert_eq!(
            trigger_writing_history(&all, &tracking, &own).map(|(name, _)| name),
            Some("wipe")
        );
    }

    #[test]
    fn the_refused_statements_line_is_given() {
        let sql = "CREATE TABLE a (x);\n\nINSERT INTO a VALUES (1);\nUPDATE migrations\n  SET name = 'x';";
        assert_eq!(refused(sql), Some(4));
    }
}
