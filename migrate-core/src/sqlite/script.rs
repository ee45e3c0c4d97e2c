//! Running the statements of an SQL file, in time linear in its length.
//!
//! rusqlite's `execute_batch` hands SQLite the rest of the text with its
//! length and no NUL after it, and SQLite then copies all of that rest
//! before it compiles the next statement: a 50 MB file of INSERTs ran for
//! more than ten minutes (a probe's finding; the `sqlite3` shell takes 3 s).
//! Here the text is copied once, with its NUL, and each statement compiled
//! in place.

use std::ffi::{c_char, CStr, CString};

use rusqlite::{ffi, Connection};

/// Runs every statement of `sql`, in order, each stepped to its end as
/// `sqlite3_exec` and the `sqlite3` shell do (rusqlite's `execute_batch`
/// steps once, so an error in a later row of a statement returning rows,
/// or a function's effect on them, went unseen: round 18), stopping at the
/// first error, whose message says at which line of `sql` the failing
/// statement starts.
pub(crate) fn execute_script(conn: &Connection, sql: &str) -> rusqlite::Result<()> {
    // SQLite reads no further than a NUL anyway; rusqlite's own call
    // reports such a text as it always has.
    let Ok(text) = CString::new(sql) else {
        return conn.execute_batch(sql);
    };
    // SAFETY: the handle of a live connection, used on this thread only
    // for the length of this call.
    let db = unsafe { conn.handle() };
    let mut rest: *const c_char = text.as_ptr();
    loop {
        let mut statement = std::ptr::null_mut();
        let mut tail: *const c_char = std::ptr::null();
        // SAFETY: `rest` points into `text`, NUL-terminated, alive for the
        // whole loop; SQLite sets `tail` to a place in the same text.
        let prepared = unsafe { ffi::sqlite3_prepare_v2(db, rest, -1, &mut statement, &mut tail) };
        let at = |code| error(db, code, sql, rest as usize - text.as_ptr() as usize);
        if prepared != ffi::SQLITE_OK {
            return Err(at(prepared));
        }
        if !statement.is_null() {
            let stepped = loop {
                // SAFETY: a statement just prepared, finalized right after.
                match unsafe { ffi::sqlite3_step(statement) } {
                    ffi::SQLITE_ROW => continue,
                    other => break other,
                }
            };
            // The loop above leaves only DONE or an error.
            let failure = (stepped != ffi::SQLITE_DONE).then(|| at(stepped));
            // SAFETY: as above; finalized once.
            unsafe { ffi::sqlite3_finalize(statement) };
            if let Some(failure) = failure {
                return Err(failure);
            }
        }
        // SAFETY: `tail` is NULL or points into `text`, up to its NUL.
        if tail.is_null() || tail == rest || unsafe { *tail } == 0 {
            return Ok(());
        }
        rest = tail;
    }
}

/// The error SQLite reports for `code`, with its message and where in
/// `sql` the statement it failed on starts (`from`, a byte offset, perhaps
/// before the statement's leading blanks and comments).
fn error(db: *mut ffi::sqlite3, code: std::ffi::c_int, sql: &str, from: usize) -> rusqlite::Error {
    // SAFETY: a live handle; SQLite returns a NUL-terminated message.
    let message = unsafe { CStr::from_ptr(ffi::sqlite3_errmsg(db)) };
    let mut message = message.to_string_lossy().into_owned();
    let start = from + blanks_and_comments(sql.get(from..).unwrap_or_default());
    if let Some(statement) = sql.get(start..).filter(|s| !s.is_empty()) {
        let line = sql.as_bytes()[..start]
            .iter()
            .filter(|&&b| b == b'\n')
            .count()
            + 1;
        let first_line = statement.lines().next().unwrap_or_default().trim_end();
        let shown: String = first_line.chars().take(80).collect();
        let more = if shown.len() < first_line.len() {
            "…"
        } else {
            ""
        };
        message.push_str(&format!(" (the statement at line {line}: {shown}{more})"));
    }
    rusqlite::Error::SqliteFailure(ffi::Error::new(code), Some(message))
}

/// How many bytes of blanks (a byte order mark among them, as SQLite reads
/// it) and comments `text` starts with: what SQLite skips before the
/// statement it then compiles (round 18: a comment after the previous
/// statement was named as the failing statement).
fn blanks_and_comments(text: &str) -> usize {
    let mut rest = text;
    loop {
        let trimmed = rest.trim_start_matches(|c: char| c.is_whitespace() || c == '\u{feff}');
        rest = if let Some(comment) = trimmed.strip_prefix("--") {
            comment.find('\n').map_or("", |end| &comment[end + 1..])
        } else if let Some(comment) = trimmed.strip_prefix("/*") {
            comment.find("*/").map_or("", |end| &comment[end + 2..])
        } else {
            return text.len() - trimmed.len();
        };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every outcome `execute_batch` has, the same here.
    #[test]
    fn runs_as_execute_batch_does() -> rusqlite::Result<()> {
        let scripts = [
            "",
            "   -- only a comment",
            "CREATE TABLE t (x); INSERT INTO t VALUES (1); INSERT INTO t VALUES (2)",
            "CREATE TABLE t (x);;; INSERT INTO t VALUES ('a;b') ; -- end",
            "CREATE TABLE t (x); SELECT * FROM t; PRAGMA user_version = 3; /* trailing",
            "CREATE TABLE t (x); INSERT INTO nope VALUES (1); CREATE TABLE never (x)",
            "CREATE TABLE t (x UNIQUE); INSERT INTO t VALUES (1); INSERT INTO t VALUES (1)",
            "CREATE TABLE t (x); SELEC 1; CREATE TABLE never (x)",
            "CREATE TABLE t (x);\0 CREATE TABLE after_nul (x)",
            "CREATE TRIGGER tr AFTER INSERT ON t BEGIN SELECT 1; END; CREATE TABLE t (x)",
            "CREATE TABLE t (x); INSERT INTO t VALUES (1), (2); SELECT x FROM t; DROP TABLE t",
        ];
        let state = |conn: &Connection| -> rusqlite::Result<(Vec<String>, i64)> {
            let mut names = conn.prepare("SELECT name FROM sqlite_master ORDER BY name")?;
            let names = names
                .query_map([], |row| row.get(0))?
                .collect::<rusqlite::Result<Vec<String>>>()?;
            let version = conn.query_row("PRAGMA user_version", [], |row| row.get(0))?;
            Ok((names, version))
        };
        for script in scripts {
            let theirs = Connection::open_in_memory()?;
            let ours = Connection::open_in_memory()?;
            // The same outcome and SQLite message (rusqlite may add the
            // text after the error; this adds where the statement starts).
            let expected = theirs.execute_batch(script).map_err(|e| e.to_string());
            let got = execute_script(&ours, script).map_err(|e| e.to_string());
            match (got, expected) {
                (Ok(()), Ok(())) => {}
                (Err(got), Err(expected)) => {
                    let sqlite_message = expected.split(" in ").next().unwrap_or_default();
                    assert!(got.starts_with(sqlite_message), "{script:?}: {got}");
                }
                (got, expected) => panic!("{script:?}: {got:?} against {expected:?}"),
            }
            assert_eq!(state(&ours)?, state(&theirs)?, "{script:?}");
        }
        Ok(())
    }

    /// No copy of the rest of the text per statement: SQLite's memory peak
    /// stays far below the script's size (rusqlite's `execute_batch` needs
    /// a copy of all of it for the first statement).
    #[test]
    fn a_long_script_is_not_copied_statement_by_statement() -> rusqlite::Result<()> {
        let conn = Connection::open_in_memory()?;
        let mut script = String::from("CREATE TABLE t (x);\n");
        while script.len() < 16 << 20 {
            script.push_str("INSERT INTO t VALUES (1);\n");
        }
        // SAFETY: reading and resetting SQLite's global counter.
        unsafe { ffi::sqlite3_memory_highwater(1) };
        execute_script(&conn, &script)?;
        // SAFETY: as above.
        let peak = unsafe { ffi::sqlite3_memory_highwater(1) };
        assert!(peak < 8 << 20, "SQLite's memory peaked at {peak} bytes");
        let rows: i64 = conn.query_row("SELECT count(*) FROM t", [], |row| row.get(0))?;
        assert!(rows > 600_000);
        Ok(())
    }

    /// Every row of a statement is stepped, as the `sqlite3` shell does: an
    /// error in the second row fails the script (`execute_batch` stops at
    /// the first row and goes on).
    #[test]
    fn every_row_of_a_statement_is_stepped() -> rusqlite::Result<()> {
        let conn = Connection::open_in_memory()?;
        let script = "CREATE TABLE t (x); INSERT INTO t VALUES (1), (-9223372036854775808);
                      SELECT abs(x) FROM t; CREATE TABLE after (x);";
        assert!(
            conn.execute_batch(script).is_ok(),
            "execute_batch misses it"
        );
        let conn = Connection::open_in_memory()?;
        let error = execute_script(&conn, script).expect_err("the second row overflows");
        assert!(error.to_string().contains("integer overflow"), "{error}");
        Ok(())
    }

    /// The line named is the failing statement's, after the comments and
    /// blanks before it (a comment after the previous statement, a byte
    /// order mark).
    #[test]
    fn the_failing_statement_s_line_is_named() -> rusqlite::Result<()> {
        let conn = Connection::open_in_memory()?;
        let script = "CREATE TABLE tags (name TEXT); -- the tags\n\
                      -- more words\n/* and a\nblock */\n\u{feff}INSERT INTO tags (titel) VALUES (1);\n";
        let error = execute_script(&conn, script).expect_err("no such column");
        let message = error.to_string();
        assert!(
            message.contains("(the statement at line 5: INSERT INTO tags (titel)"),
            "{message}"
        );
        Ok(())
    }
}
