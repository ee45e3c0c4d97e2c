//! The seam between the migration logic and a database connection.
//!
//! The tracking table's reads and writes (`history`) are written once against
//! [`Db`]: a local SQLite connection (rusqlite) is one side of it, a libSQL
//! server (`libsql` feature) the other, so that both keep the same table,
//! checksums and chain, and reach the same verdicts.

use std::sync::atomic::{AtomicBool, Ordering};

use rusqlite::types::{Value, ValueRef};
use rusqlite::{Connection, ToSql, Transaction};

use crate::error::Error;

/// What the history needs of a connection: statements with parameters, and
/// the rows of a query.
pub(crate) trait Db {
    /// Runs one statement; returns how many rows it changed.
    fn execute(&self, sql: &str, params: &[&dyn ToSql]) -> Result<usize, Error>;
    /// Runs statements separated by semicolons, without parameters.
    fn execute_batch(&self, sql: &str) -> Result<(), Error>;
    /// Every row of a query, each as its column values.
    fn query(&self, sql: &str, params: &[&dyn ToSql]) -> Result<Vec<Vec<Value>>, Error>;
    /// The first column of the first row, lent to `read` without a copy:
    /// the up-to-date check's one read, on every call of every run, costs
    /// no allocation (and, locally, no prepare: see [`PrepareCached`]).
    /// `false` when there is no row.
    fn first_column(
        &self,
        sql: &str,
        params: &[&dyn ToSql],
        read: &mut dyn FnMut(ValueRef<'_>),
    ) -> Result<bool, Error>;
    /// Whether an error means another connection holds a lock, so that the
    /// caller must not read "no answer" into it.
    fn is_busy(&self, error: &Error) -> bool;
    /// How many rows every statement of this connection has written so far,
    /// triggers' writes included (`sqlite3_total_changes`), modulo 2^32; `None`
    /// where it cannot be read (a server), and a write must be read back.
    fn total_changes(&self) -> Option<u32> {
        None
    }
}

/// `Connection::prepare_cached` where this build's rusqlite has it (always
/// before 0.38; since, with its `cache` feature, one of its default
/// features), and `prepare` where it does not. An inherent method wins over
/// a trait's of the same name, so `conn.prepare_cached(..)` with this trait
/// in scope picks rusqlite's cache whenever it exists. Used for the few
/// statements of the up-to-date check, which every call runs: kept prepared
/// on the application's connection, in rusqlite's cache (up to three of its 16
/// places by default), a check costs a step instead of a prepare.
#[allow(dead_code)] // unused when rusqlite has the inherent method
pub(crate) trait PrepareCached {
    fn prepare_cached(&self, sql: &str) -> rusqlite::Result<rusqlite::Statement<'_>>;
}

impl PrepareCached for Connection {
    fn prepare_cached(&self, sql: &str) -> rusqlite::Result<rusqlite::Statement<'_>> {
        self.prepare(sql)
    }
}

/// Whether a call of this process has finished its up-to-date check: from
/// then on, the check's statements are kept prepared.
static CHECKED_BEFORE: AtomicBool = AtomicBool::new(false);

/// Marks the end of a call's up-to-date check (see [`with_check_statement`]).
pub(crate) fn check_done() {
    CHECKED_BEFORE.store(true, Ordering::Relaxed);
}

/// Runs `use_it` on a statement of `sql` for the up-to-date check: kept
/// prepared in rusqlite's cache ([`PrepareCached`]) once a call of this
/// process has finished ([`check_done`]). The first call of a process finds
/// nothing cached and would pay for the cache's first use (its code and
/// memory are cold: 93–101 µs against 141–147 µs for a first call at
/// N = 1,000 in the bench, 41 child processes each), and a process that
/// migrates once at start-up never calls again; every later call gains.
pub(crate) fn with_check_statement<T>(
    conn: &Connection,
    sql: &str,
    use_it: impl FnOnce(&mut rusqlite::Statement<'_>) -> rusqlite::Result<T>,
) -> rusqlite::Result<T> {
    if CHECKED_BEFORE.load(Ordering::Relaxed) {
        #[allow(unused_imports)] // see `PrepareCached`
        use PrepareCached as _;
        let mut statement = conn.prepare_cached(sql)?;
        use_it(&mut statement)
    } else {
        use_it(&mut conn.prepare(sql)?)
    }
}

/// The first row of a query, if any.
pub(crate) fn first_row(
    db: &dyn Db,
    sql: &str,
    params: &[&dyn ToSql],
) -> Result<Option<Vec<Value>>, Error> {
    Ok(db.query(sql, params)?.into_iter().next())
}

impl Db for Connection {
    fn execute(&self, sql: &str, params: &[&dyn ToSql]) -> Result<usize, Error> {
        Ok(self.prepare(sql)?.execute(params)?)
    }

    fn execute_batch(&self, sql: &str) -> Result<(), Error> {
        Ok(Connection::execute_batch(self, sql)?)
    }

    fn query(&self, sql: &str, params: &[&dyn ToSql]) -> Result<Vec<Vec<Value>>, Error> {
        let mut stmt = self.prepare(sql)?;
        let columns = stmt.column_count();
        let mut rows = stmt.query(params)?;
        let mut out = Vec::new();
        while let Some(row) = rows.next()? {
            let mut values = Vec::with_capacity(columns);
            for index in 0..columns {
                values.push(row.get::<_, Value>(index)?);
            }
            out.push(values);
        }
        Ok(out)
    }

    fn first_column(
        &self,
        sql: &str,
        params: &[&dyn ToSql],
        read: &mut dyn FnMut(ValueRef<'_>),
    ) -> Result<bool, Error> {
        Ok(with_check_statement(self, sql, |stmt| {
            let mut rows = stmt.query(params)?;
            match rows.next()? {
                Some(row) => {
                    read(row.get_ref(0)?);
                    Ok(true)
                }
                None => Ok(false),
            }
        })?)
    }

    fn is_busy(&self, error: &Error) -> bool {
        matches!(error, Error::Sqlite(error) if crate::sqlite::is_busy(error))
    }

    fn total_changes(&self) -> Option<u32> {
        // SAFETY: a valid handle, used on this thread; the call only reads
        // a counter. `as`: the C int wraps, the difference of two readings
        // is what counts.
        Some(unsafe { rusqlite::ffi::sqlite3_total_changes(self.handle()) } as u32)
    }
}

impl Db for Transaction<'_> {
    fn execute(&self, sql: &str, params: &[&dyn ToSql]) -> Result<usize, Error> {
        Db::execute(&**self, sql, params)
    }

    fn execute_batch(&self, sql: &str) -> Result<(), Error> {
        Db::execute_batch(&**self, sql)
    }

    fn query(&self, sql: &str, params: &[&dyn ToSql]) -> Result<Vec<Vec<Value>>, Error> {
        Db::query(&**self, sql, params)
    }

    fn first_column(
        &self,
        sql: &str,
        params: &[&dyn ToSql],
        read: &mut dyn FnMut(ValueRef<'_>),
    ) -> Result<bool, Error> {
        Db::first_column(&**self, sql, params, read)
    }

    fn is_busy(&self, error: &Error) -> bool {
        Db::is_busy(&**self, error)
    }

    fn total_changes(&self) -> Option<u32> {
        Db::total_changes(&**self)
    }
}

/// A column's text, if it is text.
pub(crate) fn text(value: &Value) -> Option<&str> {
    match value {
        Value::Text(text) => Some(text),
        _ => None,
    }
}

/// A column's integer, if it is one.
pub(crate) fn integer(value: &Value) -> Option<i64> {
    match value {
        Value::Integer(value) => Some(*value),
        _ => None,
    }
}
