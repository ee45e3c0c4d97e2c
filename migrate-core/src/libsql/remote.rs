//! A libSQL connection on the history's side of the seam ([`Db`]).
//!
//! The runner is synchronous; on libSQL it runs on a blocking thread of the
//! caller's tokio runtime (`spawn_blocking`), where each statement is sent
//! with `Handle::block_on`: the one place where a blocking wait is allowed
//! inside a runtime, on either flavour.

use std::future::Future;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use rusqlite::types::{ToSqlOutput, Value, ValueRef};
use rusqlite::ToSql;
use tokio::runtime::Handle;

use crate::db::Db;
use crate::error::Error;

/// A libSQL connection and the runtime that drives it.
pub(crate) struct Remote {
    pub handle: Handle,
    pub conn: libsql::Connection,
    /// The caller's own connection, outside any transaction. A stream
    /// left open between two requests (as `libsql` leaves it after a query)
    /// expires on the server after a few idle seconds, and a run can be
    /// idle on it for longer than that (while its transaction, a stream of
    /// its own, works): a stream idle for [`STREAM_REUSE`] is replaced
    /// before the next request. Not after every request: the server keeps
    /// an abandoned stream, and its connection, until it expires, and
    /// refuses new ones past about 128 ("429 Too Many Requests"; a probe's
    /// finding: a `wait_until_current` polling on fresh streams, or eight
    /// of them at once, took the server's connections from every client).
    pub fresh_streams: bool,
    /// When the caller's connection last answered (`None`: not yet in this
    /// call).
    last_answer: Mutex<Option<Instant>>,
}

/// How long the caller's stream may idle and still be used: well inside
/// the server's idle expiry (sqld's is about 10 s).
const STREAM_REUSE: Duration = Duration::from_secs(2);

impl Remote {
    /// The caller's connection.
    pub fn direct(handle: Handle, conn: libsql::Connection) -> Remote {
        Remote {
            handle,
            conn,
            fresh_streams: true,
            last_answer: Mutex::new(None),
        }
    }

    /// A transaction's connection: a stream of its own, for its duration.
    pub fn in_transaction(handle: Handle, conn: libsql::Connection) -> Remote {
        Remote {
            handle,
            conn,
            fresh_streams: false,
            last_answer: Mutex::new(None),
        }
    }

    /// Waits for one request to the server.
    pub fn wait<T>(&self, request: impl Future<Output = libsql::Result<T>>) -> Result<T, Error> {
        let stale = self.fresh_streams
            && self.last_answer.lock().map_or(true, |last| {
                last.map_or(true, |at| at.elapsed() > STREAM_REUSE)
            });
        let answer = self.handle.block_on(async {
            if stale {
                self.conn.reset().await;
            }
            request.await
        });
        if self.fresh_streams {
            if let Ok(mut last) = self.last_answer.lock() {
                // An error that is not SQLite's own (a broken or expired
                // stream) is not a stream to go on with.
                // A stream whose request met a lock or an interrupt is not
                // gone on with either: the next request starts afresh.
                *last = match &answer {
                    Err(error) if !error.to_string().contains("SQLITE_") || is_busy(error) => None,
                    _ => Some(Instant::now()),
                };
            }
        }
        answer.map_err(Error::Libsql)
    }

    /// Makes the next request go on a new stream (a new connection on the
    /// server, as the caller's next request will be).
    pub fn new_stream(&self) {
        if let Ok(mut last) = self.last_answer.lock() {
            *last = None;
        }
    }

    /// Ends the call: the caller's connection is left with no open stream.
    pub fn finish(&self) {
        if self.fresh_streams {
            self.handle.block_on(self.conn.reset());
        }
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
        return matches!(code & 0xff, 5 | 6);
    }
    let text = error.to_string();
    // An error the server passes on from SQLite carries SQLite's code
    // (`code: "SQLITE_CONSTRAINT_CHECK"`): only BUSY and LOCKED are a lock,
    // whatever its message says (a probe's finding: a CHECK constraint on
    // a column named `transaction_timeout` was taken for the server's
    // timeout, and the run retried until Locked, its error lost).
    if let Some(at) = text.find("code: \"SQLITE_") {
        let code = &text[at + "code: \"".len()..];
        // SQLITE_INTERRUPT: the server interrupted the connection (as it
        // does to a transaction it takes away); nothing of it is kept.
        return ["SQLITE_BUSY", "SQLITE_LOCKED", "SQLITE_INTERRUPT"]
            .iter()
            .any(|busy| code.starts_with(busy));
    }
    // sqld 0.24 ends a transaction with "Transaction timed out" (an API
    // error, no code), "Transaction timed-out" when a replica forwarded it.
    [
        "database is locked",
        "TRANSACTION_TIMEOUT",
        "Transaction timed out",
        "Transaction timed-out",
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
            // A step's own error whose text names a lock or the timeout.
            "stream error: `Error { message: \"SQLite error: CHECK constraint failed: \
             transaction_timeout > 0\", code: \"SQLITE_CONSTRAINT_CHECK\" }`",
            "stream error: `Error { message: \"SQLite error: database is locked (said a \
             trigger)\", code: \"SQLITE_CONSTRAINT_TRIGGER\" }`",
        ] {
            assert!(!is_busy(&server_error(message)), "{message}");
        }
        assert!(is_busy(&server_error(
            "stream error: `Error { message: \"SQLite error: database is locked\", code: \
             \"SQLITE_BUSY\" }`"
        )));
        assert!(is_busy(&server_error(
            "stream error: `Error { message: \"SQLite error: interrupted\", code: \
             \"SQLITE_INTERRUPT\" }`"
        )));
        assert!(is_transient(&server_error(
            "SQLite error: no such table: main.migrations"
        )));
    }
}
