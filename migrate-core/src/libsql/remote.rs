//! A libSQL connection on the history's side of the seam ([`Db`]).
//!
//! The runner is synchronous; on libSQL it runs on a blocking thread of the
//! caller's tokio runtime (`spawn_blocking`), where each statement is sent
//! with `Handle::block_on`: the one place where a blocking wait is allowed
//! inside a runtime, on either flavour.

use std::future::Future;

use rusqlite::types::{ToSqlOutput, Value, ValueRef};
use rusqlite::ToSql;
use tokio::runtime::Handle;

use crate::db::Db;
use crate::error::Error;

/// A libSQL connection and the runtime that drives it.
pub(crate) struct Remote {
    pub handle: Handle,
    pub conn: libsql::Connection,
    /// The caller's own connection, outside any transaction: each request
    /// goes on a stream of its own. A stream left open between two requests
    /// (as `libsql` leaves it after a query) expires on the server after a
    /// few idle seconds, and a run can be idle on it for longer than that
    /// (while its transaction, a stream of its own, works).
    pub fresh_streams: bool,
}

impl Remote {
    /// The caller's connection.
    pub fn direct(handle: Handle, conn: libsql::Connection) -> Remote {
        Remote {
            handle,
            conn,
            fresh_streams: true,
        }
    }

    /// Waits for one request to the server.
    pub fn wait<T>(&self, request: impl Future<Output = libsql::Result<T>>) -> Result<T, Error> {
        self.handle
            .block_on(async {
                if self.fresh_streams {
                    self.conn.reset().await;
                }
                let answer = request.await;
                if self.fresh_streams {
                    self.conn.reset().await;
                }
                answer
            })
            .map_err(Error::Libsql)
    }
}

impl Db for Remote {
    fn execute(&self, sql: &str, params: &[&dyn ToSql]) -> Result<usize, Error> {
        let params = to_params(params)?;
        let changed = self.wait(self.conn.execute(sql, params))?;
        Ok(usize::try_from(changed).unwrap_or(usize::MAX))
    }

    fn execute_batch(&self, sql: &str) -> Result<(), Error> {
        self.wait(self.conn.execute_batch(sql)).map(|_| ())
    }

    fn query(&self, sql: &str, params: &[&dyn ToSql]) -> Result<Vec<Vec<Value>>, Error> {
        let params = to_params(params)?;
        self.wait(async {
            let mut rows = self.conn.query(sql, params).await?;
            let columns = rows.column_count();
            let mut out = Vec::new();
            while let Some(row) = rows.next().await? {
                let mut values = Vec::new();
                for index in 0..columns {
                    values.push(from_value(row.get_value(index)?));
                }
                out.push(values);
            }
            Ok(out)
        })
    }

    fn first_column(
        &self,
        sql: &str,
        params: &[&dyn ToSql],
        read: &mut dyn FnMut(ValueRef<'_>),
    ) -> Result<bool, Error> {
        let first = crate::db::first_row(self, sql, params)?;
        Ok(match first.as_ref().and_then(|row| row.first()) {
            Some(value) => {
                read(ValueRef::from(value));
                true
            }
            None => false,
        })
    }

    /// A lock held elsewhere, or the server ending the transaction: also
    /// when a step failed of it (its source), since nothing of the run is
    /// left then either.
    fn is_busy(&self, error: &Error) -> bool {
        match error {
            Error::Libsql(error) => is_busy(error),
            Error::Failed { source, .. } => {
                source.downcast_ref::<libsql::Error>().is_some_and(is_busy)
                    || matches!(source.downcast_ref::<Error>(), Some(Error::Libsql(error)) if is_busy(error))
            }
            _ => false,
        }
    }
}

/// SQLITE_BUSY / SQLITE_LOCKED as the server reports them, and the server
/// ending a transaction that held the write lock too long while another
/// writer waited (sqld's `TRANSACTION_TIMEOUT`, about 5 s).
pub(crate) fn is_busy(error: &libsql::Error) -> bool {
    if let libsql::Error::SqliteFailure(code, _) = error {
        if matches!(code & 0xff, 5 | 6) {
            return true;
        }
    }
    // sqld 0.24 says "Transaction timed out" (an API error, no code), and
    // "Transaction timed-out" when a replica forwarded the transaction.
    let text = error.to_string().to_ascii_lowercase();
    [
        "database is locked",
        "sqlite_busy",
        "sqlite_locked",
        "transaction_timeout",
        "transaction timed out",
        "transaction timed-out",
    ]
    .iter()
    .any(|needle| text.contains(needle))
}

/// An error a waiter looks again after: a lock, or a replica applying the
/// primary's frames, which can list the tracking table in `sqlite_master` a
/// moment before a statement can read it ("no such table").
pub(crate) fn is_transient(error: &libsql::Error) -> bool {
    is_busy(error) || error.to_string().contains("no such table")
}

fn to_params(params: &[&dyn ToSql]) -> Result<libsql::params::Params, Error> {
    let mut values = Vec::with_capacity(params.len());
    for param in params {
        let value = match param.to_sql()? {
            ToSqlOutput::Borrowed(value) => to_value(value),
            ToSqlOutput::Owned(value) => to_value(ValueRef::from(&value)),
            _ => {
                return Err(Error::Sqlite(rusqlite::Error::ToSqlConversionFailure(
                    "a parameter kind libSQL does not take".into(),
                )))
            }
        };
        values.push(value);
    }
    Ok(libsql::params::Params::Positional(values))
}

fn to_value(value: ValueRef<'_>) -> libsql::Value {
    match value {
        ValueRef::Null => libsql::Value::Null,
        ValueRef::Integer(value) => libsql::Value::Integer(value),
        ValueRef::Real(value) => libsql::Value::Real(value),
        ValueRef::Text(text) => libsql::Value::Text(String::from_utf8_lossy(text).into_owned()),
        ValueRef::Blob(blob) => libsql::Value::Blob(blob.to_vec()),
    }
}

fn from_value(value: libsql::Value) -> Value {
    match value {
        libsql::Value::Null => Value::Null,
        libsql::Value::Integer(value) => Value::Integer(value),
        libsql::Value::Real(value) => Value::Real(value),
        libsql::Value::Text(text) => Value::Text(text),
        libsql::Value::Blob(blob) => Value::Blob(blob),
    }
}

#[cfg(test)]
mod tests {
    use super::{is_busy, is_transient};

    fn server_error(message: &str) -> libsql::Error {
        libsql::Error::Hrana(message.into())
    }

    /// The server ending a transaction is a busy error, however it reaches
    /// the client (a probe's finding: through a replica, sqld says
    /// "timed-out", and the run failed instead of starting again).
    #[test]
    fn the_server_ending_a_transaction_is_busy() {
        for message in [
            "stream error: Transaction timed out",
            "error executing a request on the primary: Transaction timed-out",
            "SQLite error: database is locked",
        ] {
            assert!(is_busy(&server_error(message)), "{message}");
        }
        for message in [
            "SQLite error: no such table: main.migrations",
            "The stream has expired due to inactivity",
        ] {
            assert!(!is_busy(&server_error(message)), "{message}");
        }
        assert!(is_transient(&server_error(
            "SQLite error: no such table: main.migrations"
        )));
    }
}
