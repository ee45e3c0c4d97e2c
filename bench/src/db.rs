//! The benchmark's databases: how each workload opens one, and what a
//! correct one holds after each step.

use std::path::Path;

use migrate_core::rusqlite::{params, Connection};

use crate::contenders::{Contender, REFINERY_TABLE};
use crate::Result;

/// A fresh database: WAL, `synchronous = FULL` (so every commit fsyncs the
/// WAL). Not timed.
pub(crate) fn open_fresh(path: &Path) -> Result<Connection> {
    let conn = Connection::open(path)?;
    let mode: String = conn.query_row("PRAGMA journal_mode = WAL", params![], |r| r.get(0))?;
    ensure!(mode == "wal", "journal_mode is {mode}, expected wal");
    set_full_sync(&conn)?;
    Ok(conn)
}

/// Reopens for writing (rollback), with `synchronous = FULL` as when applying.
pub(crate) fn open_for_write(path: &Path) -> Result<Connection> {
    let conn = Connection::open(path)?;
    set_full_sync(&conn)?;
    Ok(conn)
}

/// Reopens for a check. Unless `schema_loaded`, nothing runs on it before
/// the timed call, so the call pays for loading the schema like it would on
/// a new connection in an application (`PRAGMA synchronous` would load it
/// early; a check commits nothing). With `schema_loaded`, a read of
/// `sqlite_master` loads it first, as any earlier statement of the
/// application would have: the call then pays only for its own work.
pub(crate) fn open_for_check(path: &Path, schema_loaded: bool) -> Result<Connection> {
    let conn = Connection::open(path)?;
    if schema_loaded {
        let objects: i64 =
            conn.query_row("SELECT count(*) FROM sqlite_master", params![], |r| {
                r.get(0)
            })?;
        ensure!(objects > 0, "an empty schema in {}", path.display());
    }
    Ok(conn)
}

fn set_full_sync(conn: &Connection) -> Result<()> {
    conn.execute_batch("PRAGMA synchronous = FULL")?;
    let sync: i64 = conn.query_row("PRAGMA synchronous", params![], |r| r.get(0))?;
    ensure!(sync == 2, "synchronous is {sync}, expected 2 (FULL)");
    Ok(())
}

/// Tracking rows as the contender records them (rusqlite_migration keeps
/// only `PRAGMA user_version`), for a run of N migrations.
fn tracking_rows(conn: &Connection, contender: Contender, n: usize) -> Result<i64> {
    let sql = match contender {
        Contender::FloorA | Contender::FloorB => "SELECT count(*) FROM history".to_owned(),
        Contender::RusqliteMigration => "PRAGMA user_version".to_owned(),
        Contender::Refinery | Contender::RefineryGrouped => {
            format!("SELECT count(*) FROM {REFINERY_TABLE}")
        }
        Contender::MigrateCoreLinked | Contender::MigrateCoreAdd => {
            let table = contender.migrate_core_table(n).unwrap_or_default();
            format!("SELECT count(*) FROM \"{table}\"")
        }
    };
    Ok(conn.query_row(&sql, params![], |r| r.get(0))?)
}

/// Verifies that the database of a run of N migrations holds exactly
/// `expected` migrated tables (each with its one row) and `expected`
/// tracking rows, in WAL mode.
pub(crate) fn verify(path: &Path, contender: Contender, n: usize, expected: usize) -> Result<()> {
    let conn = Connection::open(path)?;
    let mode: String = conn.query_row("PRAGMA journal_mode", params![], |r| r.get(0))?;
    ensure!(mode == "wal", "{}: journal_mode is {mode}", contender.key());
    let tables: i64 = conn.query_row(
        "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name GLOB 't_[0-9]*'",
        params![],
        |r| r.get(0),
    )?;
    ensure!(
        tables == expected as i64,
        "{}: {tables} tables t_i, expected {expected}",
        contender.key()
    );
    let rows = tracking_rows(&conn, contender, n)?;
    ensure!(
        rows == expected as i64,
        "{}: {rows} tracking rows, expected {expected}",
        contender.key()
    );
    for i in [0, expected / 2, expected.saturating_sub(1)] {
        if i < expected {
            let filled: i64 =
                conn.query_row(&format!("SELECT count(*) FROM t_{i}"), params![], |r| {
                    r.get(0)
                })?;
            ensure!(filled == 1, "{}: t_{i} has {filled} rows", contender.key());
        }
    }
    if let Some(name) = contender.migrate_core_table(n) {
        let table = conn.query_row(
            "SELECT count(*) FROM sqlite_master WHERE name = ?1",
            [&name],
            |r| r.get::<_, i64>(0),
        )?;
        ensure!(table == 1, "{}: no table {name}", contender.key());
    }
    if matches!(contender, Contender::Refinery | Contender::RefineryGrouped) {
        let table = conn.query_row(
            "SELECT count(*) FROM sqlite_master WHERE name = ?1",
            [REFINERY_TABLE],
            |r| r.get::<_, i64>(0),
        )?;
        ensure!(table == 1, "refinery: no table {REFINERY_TABLE}");
    }
    Ok(())
}
