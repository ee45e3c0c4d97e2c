//! "Is everything as it should be?" checks for the hostile tests: the
//! connection as the caller left it, no lock left behind, and a history that
//! agrees with the schema. They read the `main` schema explicitly, so that a
//! TEMP or ATTACHed table of the same name can never stand in for it.

use std::path::Path;
use std::time::Duration;

use migrate_core::rusqlite::{Connection, OptionalExtension};

use super::quote;

/// The per-connection state a call must give back as it found it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnectionState {
    pub autocommit: bool,
    pub foreign_keys: i64,
    pub busy_timeout: i64,
    pub query_only: i64,
    pub writable_schema: i64,
    pub defer_foreign_keys: i64,
    /// The attached databases, in order (`PRAGMA database_list` without
    /// `main` and `temp`: SQLite lists `temp` once it first needs it).
    pub databases: Vec<String>,
}

fn pragma(conn: &Connection, name: &str) -> i64 {
    conn.query_row(&format!("PRAGMA {name}"), [], |row| row.get(0))
        .unwrap_or_else(|e| panic!("PRAGMA {name}: {e}"))
}

impl ConnectionState {
    pub fn of(conn: &Connection) -> ConnectionState {
        let databases = conn
            .prepare(
                "SELECT name FROM pragma_database_list WHERE name NOT IN ('main', 'temp') ORDER BY seq",
            )
            .unwrap()
            .query_map([], |row| row.get(0))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        ConnectionState {
            autocommit: conn.is_autocommit(),
            foreign_keys: pragma(conn, "foreign_keys"),
            busy_timeout: pragma(conn, "busy_timeout"),
            query_only: pragma(conn, "query_only"),
            writable_schema: pragma(conn, "writable_schema"),
            defer_foreign_keys: pragma(conn, "defer_foreign_keys"),
            databases,
        }
    }
}

/// Asserts that the connection is as `before` (taken before the call):
/// autocommit, same pragmas, same databases attached.
#[track_caller]
pub fn assert_connection_restored(conn: &Connection, before: &ConnectionState, context: &str) {
    assert!(
        conn.is_autocommit(),
        "{context}: the connection was left inside a transaction"
    );
    let now = ConnectionState::of(conn);
    assert_eq!(
        &now, before,
        "{context}: the connection's state was not restored"
    );
}

/// Asserts that no connection holds a lock on the file: a new connection
/// without any busy timeout takes the write lock at once.
#[track_caller]
pub fn assert_no_lock_held(path: &Path, context: &str) {
    let other = Connection::open(path).unwrap();
    other.busy_timeout(Duration::ZERO).unwrap();
    if let Err(error) = other.execute_batch("BEGIN IMMEDIATE; ROLLBACK;") {
        panic!("{context}: another connection cannot take the write lock: {error}");
    }
}

/// Whether `main` has a table of that exact name (case-sensitively: SQLite
/// itself would also find `Foo` for `foo`).
pub fn main_has_table(conn: &Connection, name: &str) -> bool {
    conn.query_row(
        "SELECT EXISTS (SELECT 1 FROM main.sqlite_master WHERE type = 'table' AND name = ?1)",
        [name],
        |row| row.get(0),
    )
    .unwrap()
}

/// The ids recorded in `main`'s tracking table `table`, in order; empty when
/// it does not exist.
pub fn main_tracking_ids(conn: &Connection, table: &str) -> Vec<i64> {
    let exists: Option<String> = conn
        .query_row(
            "SELECT name FROM main.sqlite_master WHERE type = 'table' AND name = ?1 COLLATE NOCASE",
            [table],
            |row| row.get(0),
        )
        .optional()
        .unwrap();
    if exists.is_none() {
        return Vec::new();
    }
    conn.prepare(&format!("SELECT id FROM main.{} ORDER BY id", quote(table)))
        .unwrap()
        .query_map([], |row| row.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap()
}

/// Checks that the history in `main.<table>` agrees with the schema, where
/// migration `i` creates table `marker_tables[i]`: the recorded ids are
/// `0..k` and table `i` exists iff `i < k`. Returns `k`, or what disagrees.
pub fn history_agrees_with_schema(
    conn: &Connection,
    table: &str,
    marker_tables: &[&str],
) -> Result<usize, String> {
    let ids = main_tracking_ids(conn, table);
    let k = ids.len();
    let expected: Vec<i64> = (0..k as i64).collect();
    if ids != expected {
        return Err(format!("the history is not contiguous: {ids:?}"));
    }
    let present: Vec<bool> = marker_tables
        .iter()
        .map(|name| main_has_table(conn, name))
        .collect();
    let agrees = present.iter().enumerate().all(|(i, p)| *p == (i < k));
    if agrees && k <= marker_tables.len() {
        Ok(k)
    } else {
        let shown: Vec<String> = marker_tables
            .iter()
            .zip(&present)
            .map(|(name, p)| format!("{name}: {}", if *p { "present" } else { "absent" }))
            .collect();
        Err(format!(
            "the history records {ids:?} but the tables are [{}]",
            shown.join(", ")
        ))
    }
}

/// Asserts [`history_agrees_with_schema`] and returns the applied count.
#[track_caller]
pub fn assert_history_agrees(
    conn: &Connection,
    table: &str,
    marker_tables: &[&str],
    context: &str,
) -> usize {
    history_agrees_with_schema(conn, table, marker_tables)
        .unwrap_or_else(|problem| panic!("{context}: {problem}"))
}

/// How many times each migration ran, from a side table `ran (id)` that
/// every migration of a test appends to (no unique constraint, so that a
/// migration applied twice shows up as a count of 2).
pub fn ran_counts(conn: &Connection) -> Vec<(i64, i64)> {
    if !main_has_table(conn, "ran") {
        return Vec::new();
    }
    conn.prepare("SELECT id, count(*) FROM main.ran GROUP BY id ORDER BY id")
        .unwrap()
        .query_map([], |row| Ok((row.get(0)?, row.get(1)?)))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap()
}
