//! Test helpers for applications (feature `testing`).
//!
//! [`check_reversible`] proves, on a scratch in-memory database, that every
//! rollback undoes its migration's schema changes exactly. Call it from one
//! test:
//!
//! ```
//! use migrate_core::rusqlite::Transaction;
//! use migrate_core::Migrator;
//!
//! let m = Migrator::new()
//!     .set("docs_testing")
//!     .add(0, "create_posts", |tx: &Transaction| tx.execute_batch("CREATE TABLE posts (id INTEGER PRIMARY KEY)"))
//!     .add(1, "add_title", |tx: &Transaction| tx.execute_batch("ALTER TABLE posts ADD COLUMN title TEXT"))
//!     .add_rollback(1, |tx: &Transaction| tx.execute_batch("ALTER TABLE posts DROP COLUMN title"));
//! migrate_core::testing::assert_reversible(&m);
//! ```

use std::fmt;

use rusqlite::Connection;

use crate::error::Error;
use crate::migrator::Migrator;

/// Why [`check_reversible`] failed.
///
/// ```
/// # use migrate_core::{Migrator, rusqlite::Transaction};
/// let m = Migrator::new()
///     .set("docs_not_reversible")
///     .add(0, "create_a", |tx: &Transaction| tx.execute_batch("CREATE TABLE a (x)"))
///     .add(1, "create_b", |tx: &Transaction| tx.execute_batch("CREATE TABLE b (x); CREATE INDEX b_x ON b (x)"))
///     .add_rollback(1, |tx: &Transaction| tx.execute_batch("DROP INDEX b_x"));
/// let failure = migrate_core::testing::check_reversible(&m).unwrap_err();
/// assert!(failure.to_string().contains("table b"), "{failure}");
/// ```
#[derive(Debug)]
#[non_exhaustive]
pub enum NotReversible {
    /// After the rollback of `id` the schema differs from before `id`.
    SchemaDiffers {
        /// The migration id.
        id: u32,
        /// Its name.
        name: String,
        /// The first difference, readably.
        difference: String,
    },
    /// Applying or rolling back failed.
    Failed(Error),
}

impl fmt::Display for NotReversible {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            NotReversible::SchemaDiffers { id, name, difference } => write!(
                f,
                "the rollback of migration {id} `{name}` does not restore the schema as it was before it: {difference}"
            ),
            NotReversible::Failed(error) => write!(f, "the reversibility check could not run: {error}"),
        }
    }
}

impl std::error::Error for NotReversible {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            NotReversible::Failed(error) => Some(error),
            NotReversible::SchemaDiffers { .. } => None,
        }
    }
}

impl From<Error> for NotReversible {
    fn from(error: Error) -> Self {
        NotReversible::Failed(error)
    }
}

/// For every migration that has a rollback, on a scratch in-memory database:
/// snapshot the schema (`sqlite_master`, normalised), apply the migration,
/// roll it back, and compare; then apply it again and go on. Returns the ids
/// checked.
///
/// ```
/// # use migrate_core::{Migrator, rusqlite::Transaction};
/// let m = Migrator::new()
///     .set("docs_check_reversible")
///     .add(0, "create_a", |tx: &Transaction| tx.execute_batch("CREATE TABLE a (x)"))
///     .add_rollback(0, |tx: &Transaction| tx.execute_batch("DROP TABLE a"));
/// assert_eq!(migrate_core::testing::check_reversible(&m)?, vec![0]);
/// # Ok::<(), migrate_core::testing::NotReversible>(())
/// ```
pub fn check_reversible(migrator: &Migrator) -> Result<Vec<u32>, NotReversible> {
    let mut conn = Connection::open_in_memory().map_err(Error::from)?;
    conn.execute_batch("PRAGMA foreign_keys = ON")
        .map_err(Error::from)?;
    let pending = migrator.pending_migrations(&conn)?;
    let mut checked = Vec::new();
    for migration in pending {
        if migration.has_rollback {
            let before = schema(&conn)?;
            migrator.migrate_to(&mut conn, migration.id)?;
            migrator.rollback_migration(&mut conn)?;
            let after = schema(&conn)?;
            if let Some(difference) = first_difference(&before, &after) {
                return Err(NotReversible::SchemaDiffers {
                    id: migration.id,
                    name: migration.name,
                    difference,
                });
            }
            checked.push(migration.id);
        }
        migrator.migrate_to(&mut conn, migration.id)?;
    }
    Ok(checked)
}

/// [`check_reversible`], panicking with the first difference.
///
/// ```
/// # use migrate_core::{Migrator, rusqlite::Transaction};
/// let m = Migrator::new()
///     .set("docs_assert_reversible")
///     .add(0, "create_a", |tx: &Transaction| tx.execute_batch("CREATE TABLE a (x)"))
///     .add_rollback(0, |tx: &Transaction| tx.execute_batch("DROP TABLE a"));
/// migrate_core::testing::assert_reversible(&m);
/// ```
#[track_caller]
pub fn assert_reversible(migrator: &Migrator) {
    if let Err(failure) = check_reversible(migrator) {
        panic!("{failure}");
    }
}

/// One schema object: `(type, name, normalised sql)`.
type Object = (String, String, String);

/// The schema except SQLite's own objects and our tracking tables.
fn schema(conn: &Connection) -> Result<Vec<Object>, Error> {
    let mut stmt = conn.prepare(
        "SELECT type, name, coalesce(sql, '') FROM sqlite_master \
         WHERE name NOT LIKE 'sqlite\\_%' ESCAPE '\\' \
         AND instr(coalesce(sql, ''), 'migrate-core tracking table') = 0 \
         ORDER BY type, name",
    )?;
    let rows = stmt.query_map(rusqlite::params![], |r| {
        Ok((
            r.get::<_, String>(0)?,
            r.get::<_, String>(1)?,
            normalise(&r.get::<_, String>(2)?),
        ))
    })?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// Collapses white space, drops it next to punctuation, and unquotes simple
/// identifiers, so that `ADD COLUMN` then `DROP COLUMN`, or a rename that
/// quotes the table's name, compare equal to the original.
fn normalise(sql: &str) -> String {
    unquote_simple_identifiers(&collapse_white_space(sql))
}

fn collapse_white_space(sql: &str) -> String {
    let mut out = String::with_capacity(sql.len());
    let mut pending_space = false;
    for c in sql.chars() {
        if c.is_whitespace() {
            pending_space = true;
            continue;
        }
        let punctuation = matches!(c, '(' | ')' | ',' | ';');
        if pending_space && !punctuation && !out.is_empty() && !out.ends_with(['(', ',']) {
            out.push(' ');
        }
        pending_space = false;
        out.push(c);
    }
    out
}

/// `"posts"` → `posts`; a quoted name that needs its quotes keeps them.
fn unquote_simple_identifiers(sql: &str) -> String {
    let mut out = String::with_capacity(sql.len());
    let mut rest = sql;
    while let Some(start) = rest.find('"') {
        out.push_str(&rest[..start]);
        let after = &rest[start + 1..];
        match after.find('"') {
            Some(end) => {
                let inner = &after[..end];
                let simple = !inner.is_empty()
                    && !inner.starts_with(|c: char| c.is_ascii_digit())
                    && inner.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
                if simple {
                    out.push_str(inner);
                } else {
                    out.push('"');
                    out.push_str(inner);
                    out.push('"');
                }
                rest = &after[end + 1..];
            }
            None => {
                out.push_str(&rest[start..]);
                rest = "";
            }
        }
    }
    out.push_str(rest);
    out
}

fn first_difference(before: &[Object], after: &[Object]) -> Option<String> {
    for (kind, name, sql) in before {
        match after.iter().find(|(k, n, _)| k == kind && n == name) {
            None => {
                return Some(format!(
                    "{kind} {name} is missing after the rollback (it was `{sql}`)"
                ))
            }
            Some((_, _, now)) if now != sql => {
                return Some(format!("{kind} {name} was `{sql}` and is now `{now}`"));
            }
            Some(_) => {}
        }
    }
    after
        .iter()
        .find(|(k, n, _)| !before.iter().any(|(bk, bn, _)| bk == k && bn == n))
        .map(|(kind, name, sql)| format!("{kind} {name} is left over after the rollback (`{sql}`)"))
}

#[cfg(test)]
mod tests {
    use super::normalise;

    #[test]
    fn normalises_white_space() {
        assert_eq!(
            normalise("CREATE TABLE t (\n    a TEXT ,\n    b INT\n)"),
            normalise("CREATE TABLE t (a TEXT, b INT)")
        );
        assert_ne!(
            normalise("CREATE TABLE t (a TEXT)"),
            normalise("CREATE TABLE t (a INT)")
        );
        assert_eq!(
            normalise("CREATE TABLE \"posts\" (a)"),
            normalise("CREATE TABLE posts (a)")
        );
        assert_ne!(
            normalise("CREATE TABLE \"my posts\" (a)"),
            normalise("CREATE TABLE my posts (a)")
        );
    }
}
