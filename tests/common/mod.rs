//! Helpers shared by the integration tests: a database file in a temporary
//! directory, and ways to read back the whole state of a database so that a
//! test can assert "nothing changed" row for row.
//!
//! Every test binary includes this module with `mod common;` and uses a
//! different subset of it. Helpers that more than one test file needs live
//! here, once. `faults` (fault injection) and `state` (the connection and the
//! file are as they must be) are the harness of `tests/hostile.rs`, for other
//! tests to extend.
#![allow(dead_code)]

pub mod faults;
pub mod state;

use std::path::{Path, PathBuf};

use migrate_core::rusqlite::types::Value;
use migrate_core::rusqlite::{Connection, Transaction};
use migrate_core::Migrator;
use tempfile::TempDir;

/// A database file in its own temporary directory (removed on drop).
pub struct TempDb {
    pub dir: TempDir,
    pub path: PathBuf,
}

impl TempDb {
    pub fn new() -> TempDb {
        let dir = tempfile::tempdir().expect("create a temporary directory");
        let path = dir.path().join("test.db");
        TempDb { dir, path }
    }

    /// Opens a new connection to the file (creating it if needed).
    pub fn open(&self) -> Connection {
        Connection::open(&self.path).expect("open the database file")
    }

    /// The file's bytes (empty when it does not exist yet).
    pub fn bytes(&self) -> Vec<u8> {
        std::fs::read(&self.path).unwrap_or_default()
    }

    /// Whether the file exists on disk.
    pub fn exists(&self) -> bool {
        self.path.exists()
    }
}

/// The names of the user tables (not `sqlite_*`), sorted.
pub fn tables(conn: &Connection) -> Vec<String> {
    let mut stmt = conn
        .prepare(
            "SELECT name FROM sqlite_master WHERE type = 'table' \
             AND name NOT LIKE 'sqlite\\_%' ESCAPE '\\' ORDER BY name",
        )
        .unwrap();
    let names = stmt.query_map([], |row| row.get(0)).unwrap();
    names.collect::<Result<_, _>>().unwrap()
}

/// Whether a table of that exact name exists.
pub fn has_table(conn: &Connection, name: &str) -> bool {
    conn.query_row(
        "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = ?1",
        [name],
        |row| row.get::<_, i64>(0),
    )
    .unwrap()
        == 1
}

/// Whether a schema object of that kind (`table`, `index`, `trigger`,
/// `view`) and exact name exists.
pub fn has_object(conn: &Connection, kind: &str, name: &str) -> bool {
    conn.query_row(
        "SELECT EXISTS (SELECT 1 FROM sqlite_master WHERE type = ?1 AND name = ?2)",
        [kind, name],
        |row| row.get(0),
    )
    .unwrap()
}

/// `PRAGMA user_version`.
pub fn user_version(conn: &Connection) -> i64 {
    conn.query_row("PRAGMA user_version", [], |row| row.get(0))
        .unwrap()
}

/// `PRAGMA foreign_keys`.
pub fn foreign_keys_on(conn: &Connection) -> bool {
    conn.query_row("PRAGMA foreign_keys", [], |row| row.get(0))
        .expect("pragma")
}

/// One integer from a query, with the query in the panic message.
pub fn query_i64(conn: &Connection, sql: &str) -> i64 {
    conn.query_row(sql, (), |row| row.get(0))
        .unwrap_or_else(|e| panic!("{sql}: {e}"))
}

/// The number of rows of a table.
pub fn count(conn: &Connection, table: &str) -> i64 {
    conn.query_row(&format!("SELECT count(*) FROM {table}"), [], |row| {
        row.get(0)
    })
    .expect("count")
}

/// `PRAGMA integrity_check`'s lines (`["ok"]` for a healthy file).
pub fn integrity(conn: &Connection) -> Vec<String> {
    conn.prepare("PRAGMA integrity_check")
        .unwrap()
        .query_map((), |row| row.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap()
}

/// Asserts that the file passes `PRAGMA integrity_check`.
#[track_caller]
pub fn integrity_ok(conn: &Connection) {
    assert_eq!(integrity(conn), vec!["ok".to_owned()], "integrity_check");
}

/// Creates `dir/file` in WAL or rollback-journal (`DELETE`) mode and returns
/// its path.
pub fn new_db(dir: &Path, file: &str, wal: bool) -> PathBuf {
    let path = dir.join(file);
    let conn = Connection::open(&path).unwrap();
    let mode: String = conn
        .query_row(
            &format!(
                "PRAGMA journal_mode = {}",
                if wal { "WAL" } else { "DELETE" }
            ),
            (),
            |row| row.get(0),
        )
        .unwrap();
    assert_eq!(mode, if wal { "wal" } else { "delete" });
    path
}

/// A file's bytes; panics when it cannot be read.
pub fn read_bytes(path: &Path) -> Vec<u8> {
    std::fs::read(path).expect("read db")
}

/// Quotes an identifier for SQL.
pub fn quote(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// `(id, name)` of every row of a tracking table, in id order.
pub fn tracking_rows(conn: &Connection, table: &str) -> Vec<(i64, String)> {
    let sql = format!("SELECT id, name FROM {} ORDER BY id", quote(table));
    let mut stmt = conn.prepare(&sql).unwrap();
    let rows = stmt
        .query_map([], |row| Ok((row.get(0)?, row.get(1)?)))
        .unwrap();
    rows.collect::<Result<_, _>>().unwrap()
}

/// The ids of a tracking table's rows, in order.
pub fn tracking_ids(conn: &Connection, table: &str) -> Vec<i64> {
    tracking_rows(conn, table)
        .into_iter()
        .map(|(id, _)| id)
        .collect()
}

/// `(id, name)` of every row of a tracking table, in id order; empty when
/// the table does not exist (yet).
pub fn tracking_rows_or_empty(conn: &Connection, table: &str) -> Vec<(i64, String)> {
    if has_table(conn, table) {
        tracking_rows(conn, table)
    } else {
        Vec::new()
    }
}

/// The ids of a tracking table's rows, in order; empty when the table does
/// not exist (yet).
pub fn tracking_ids_or_empty(conn: &Connection, table: &str) -> Vec<u32> {
    tracking_rows_or_empty(conn, table)
        .into_iter()
        .map(|(id, _)| u32::try_from(id).expect("a tracking id fits u32"))
        .collect()
}

/// Everything observable about a database: its schema (`sqlite_master`),
/// every row of every table, and `user_version`.
#[derive(Debug, PartialEq)]
pub struct Dump {
    pub schema: Vec<(String, String, String, Option<String>)>,
    pub rows: Vec<(String, Vec<Vec<Value>>)>,
    pub user_version: i64,
}

pub fn dump(conn: &Connection) -> Dump {
    let mut stmt = conn
        .prepare("SELECT type, name, tbl_name, sql FROM sqlite_master ORDER BY type, name")
        .unwrap();
    let schema: Vec<(String, String, String, Option<String>)> = stmt
        .query_map([], |row| {
            Ok((row.get(0)?, row.get(1)?, row.get(2)?, row.get(3)?))
        })
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    let mut rows = Vec::new();
    for (kind, name, ..) in &schema {
        if kind != "table" {
            continue;
        }
        let mut stmt = conn
            .prepare(&format!("SELECT * FROM {} ORDER BY 1", quote(name)))
            .unwrap();
        let width = stmt.column_count();
        let table_rows: Vec<Vec<Value>> = stmt
            .query_map([], |row| (0..width).map(|i| row.get(i)).collect())
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        rows.push((name.clone(), table_rows));
    }
    Dump {
        schema,
        rows,
        user_version: user_version(conn),
    }
}

/// Dumps a database file through a fresh connection.
pub fn dump_file(path: &Path) -> Dump {
    dump(&Connection::open(path).unwrap())
}

/// A database file's bytes and its full dump.
#[derive(Debug)]
pub struct Snapshot {
    pub bytes: Vec<u8>,
    pub dump: Dump,
}

/// Takes a [`Snapshot`] through a fresh connection.
pub fn snapshot(db: &TempDb) -> Snapshot {
    Snapshot {
        bytes: db.bytes(),
        dump: dump_file(&db.path),
    }
}

/// Asserts that the file is exactly as `before`: same content, and not a
/// byte written.
#[track_caller]
pub fn assert_untouched(db: &TempDb, before: &Snapshot) {
    assert_eq!(
        dump_file(&db.path),
        before.dump,
        "the database's content changed"
    );
    assert!(
        db.bytes() == before.bytes,
        "the database file was written to"
    );
}

/// Drops the three triggers of the default set's tracking table, which
/// make hand edits visible to the up-to-date check.
pub fn drop_tracking_triggers(db: &TempDb) {
    tamper(
        db,
        "DROP TRIGGER migrate_core_edit_migrations;
         DROP TRIGGER migrate_core_delete_migrations;
         DROP TRIGGER migrate_core_insert_migrations;",
    );
}

/// Runs SQL on the file through a connection of its own.
pub fn tamper(db: &TempDb, sql: &str) {
    let conn = db.open();
    conn.execute_batch(sql).unwrap();
}

/// Keeps panics injected on purpose (their message starts with `prefix`)
/// out of the test output; every other panic is reported as usual. One
/// prefix per test binary: the hook is installed once.
pub fn quiet_panics_starting_with(prefix: &'static str) {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            let payload = info.payload();
            let text = payload
                .downcast_ref::<String>()
                .map(String::as_str)
                .or_else(|| payload.downcast_ref::<&str>().copied())
                .unwrap_or("");
            if !text.starts_with(prefix) {
                previous(info);
            }
        }));
    });
}

/// The run-time set that `tests/observe.rs` and `tests/tracing_spans.rs`
/// watch: two steps that work (the second with a rollback) and a third that
/// fails.
pub fn observed_migrator(set: &str) -> Migrator {
    Migrator::new()
        .set(set)
        .add(0, "create_a", |tx: &Transaction| {
            tx.execute_batch("CREATE TABLE a (x)")
        })
        .add(1, "create_b", |tx: &Transaction| {
            tx.execute_batch("CREATE TABLE b (x)")
        })
        .add(2, "broken", |tx: &Transaction| {
            tx.execute_batch("CREATE TABLE")
        })
        .add_rollback(1, |tx: &Transaction| tx.execute_batch("DROP TABLE b"))
}

/// Asserts the shape `YYYY-MM-DDTHH:MM:SS[.fff]Z` of an RFC 3339 UTC time.
pub fn assert_rfc3339_utc(text: &str) {
    let b = text.as_bytes();
    let digits = |range: std::ops::Range<usize>| {
        range
            .clone()
            .all(|i| b.get(i).is_some_and(u8::is_ascii_digit))
    };
    assert!(
        text.len() >= 20
            && digits(0..4)
            && b[4] == b'-'
            && digits(5..7)
            && b[7] == b'-'
            && digits(8..10)
            && b[10] == b'T'
            && digits(11..13)
            && b[13] == b':'
            && digits(14..16)
            && b[16] == b':'
            && digits(17..19)
            && text.ends_with('Z'),
        "not an RFC 3339 UTC timestamp: {text:?}"
    );
    let fraction = &text[19..text.len() - 1];
    assert!(
        fraction.is_empty()
            || (fraction.starts_with('.')
                && fraction.len() > 1
                && fraction[1..].bytes().all(|c| c.is_ascii_digit())),
        "bad fractional seconds in {text:?}"
    );
    let month: u32 = text[5..7].parse().unwrap();
    let day: u32 = text[8..10].parse().unwrap();
    let hour: u32 = text[11..13].parse().unwrap();
    let minute: u32 = text[14..16].parse().unwrap();
    let second: u32 = text[17..19].parse().unwrap();
    assert!(
        (1..=12).contains(&month) && (1..=31).contains(&day),
        "{text:?}"
    );
    assert!(hour < 24 && minute < 60 && second < 61, "{text:?}");
}

/// Asserts a checksum is 32 lowercase hex digits.
pub fn assert_checksum(text: &str) {
    assert_eq!(text.len(), 32, "checksum {text:?} is not 32 characters");
    assert!(
        text.bytes()
            .all(|c| c.is_ascii_digit() || (b'a'..=b'f').contains(&c)),
        "checksum {text:?} is not lowercase hex"
    );
}

/// [`dump`] without this library's tracking tables (`migrations`,
/// `migrations_<set>`): what the migrations themselves built, to compare
/// with a database another runner built from the same files.
pub fn dump_user(conn: &Connection) -> Dump {
    let ours = |table: &str| table == "migrations" || table.starts_with("migrations_");
    let mut dump = dump(conn);
    dump.schema.retain(|(_, _, table, _)| !ours(table));
    dump.rows.retain(|(table, _)| !ours(table));
    dump
}

/// SipHash-1-3, zero key, 128 bits, of the text with its line endings
/// normalised (CRLF and a lone CR become LF): an SQL file's documented
/// checksum, computed here independently of the library.
pub fn sql_checksum(text: &str) -> String {
    use siphasher::sip128::{Hasher128, SipHasher13};
    use std::hash::Hasher;
    let text = text.replace("\r\n", "\n").replace('\r', "\n");
    let mut hasher = SipHasher13::new_with_keys(0, 0);
    hasher.write(text.as_bytes());
    format!("{:032x}", hasher.finish128().as_u128())
}
