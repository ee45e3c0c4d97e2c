//! `foreign_keys = off`: SQLite's table-rebuild procedure must not lose
//! `ON DELETE CASCADE` children, must refuse leftover violations, and must
//! restore the connection's setting whatever happens.

mod common;

use common::{count, foreign_keys_on};
use migrate_core::rusqlite::{Connection, Transaction};
use migrate_core::{migration, rollback, Error, Migrator};
use tempfile::TempDir;

const SCHEMA: &str = "
    CREATE TABLE parent (id INTEGER PRIMARY KEY, name TEXT);
    CREATE TABLE child (
        id INTEGER PRIMARY KEY,
        parent_id INTEGER NOT NULL REFERENCES parent (id) ON DELETE CASCADE
    );
    INSERT INTO parent (id, name) VALUES (1, 'a'), (2, 'b'), (3, 'c');
    INSERT INTO child (id, parent_id) VALUES (10, 1), (11, 1), (12, 2), (13, 3);
";

/// Changes `parent.name` to NOT NULL with a default: impossible with ALTER
/// TABLE, so the table is rebuilt.
const REBUILD_PARENT: &str = "
    CREATE TABLE parent_new (id INTEGER PRIMARY KEY, name TEXT NOT NULL DEFAULT '');
    INSERT INTO parent_new (id, name) SELECT id, coalesce(name, '') FROM parent;
    DROP TABLE parent;
    ALTER TABLE parent_new RENAME TO parent;
";

#[migration(0, set = "rebuild")]
fn rebuild_schema(tx: &Transaction) -> migrate_core::rusqlite::Result<()> {
    tx.execute_batch(SCHEMA)
}

#[migration(1, set = "rebuild", foreign_keys = off)]
fn rebuild_parent(tx: &Transaction) -> migrate_core::rusqlite::Result<()> {
    tx.execute_batch(REBUILD_PARENT)
}

#[rollback(1, set = "rebuild", foreign_keys = off)]
fn unbuild_parent(tx: &Transaction) -> migrate_core::rusqlite::Result<()> {
    tx.execute_batch(
        "CREATE TABLE parent_old (id INTEGER PRIMARY KEY, name TEXT);
         INSERT INTO parent_old (id, name) SELECT id, name FROM parent;
         DROP TABLE parent;
         ALTER TABLE parent_old RENAME TO parent;",
    )
}

#[migration(2, set = "rebuild")]
fn after_rebuild(tx: &Transaction) -> migrate_core::rusqlite::Result<()> {
    tx.execute_batch("CREATE TABLE after_rebuild (x)")
}

// The same rebuild as written for other tools, with the pragmas inside: in a
// `foreign_keys = off` step they change nothing, so they are allowed.
#[migration(0, set = "pragmas_inside")]
fn pragmas_inside_schema(tx: &Transaction) -> migrate_core::rusqlite::Result<()> {
    tx.execute_batch(SCHEMA)
}

#[migration(1, set = "pragmas_inside", foreign_keys = off)]
fn pragmas_inside_rebuild(tx: &Transaction) -> migrate_core::rusqlite::Result<()> {
    tx.execute_batch("PRAGMA foreign_keys = OFF;")?;
    tx.execute_batch(REBUILD_PARENT)?;
    tx.execute_batch("PRAGMA foreign_keys = ON;")
}

// The same rebuild without the option: dropping the parent with foreign keys
// on deletes every child through the cascade. This is the failure the option
// exists for, and it shows the test below can tell the difference.
#[migration(0, set = "naive")]
fn naive_schema(tx: &Transaction) -> migrate_core::rusqlite::Result<()> {
    tx.execute_batch(SCHEMA)
}

#[migration(1, set = "naive")]
fn naive_rebuild(tx: &Transaction) -> migrate_core::rusqlite::Result<()> {
    tx.execute_batch(REBUILD_PARENT)
}

#[migration(0, set = "violate")]
fn violate_schema(tx: &Transaction) -> migrate_core::rusqlite::Result<()> {
    tx.execute_batch(SCHEMA)
}

#[migration(1, set = "violate", foreign_keys = off)]
fn orphan_children(tx: &Transaction) -> migrate_core::rusqlite::Result<()> {
    tx.execute_batch("DELETE FROM parent WHERE id = 1")
}

#[migration(0, set = "fails")]
fn fails_schema(tx: &Transaction) -> migrate_core::rusqlite::Result<()> {
    tx.execute_batch(SCHEMA)
}

#[migration(1, set = "fails", foreign_keys = off)]
fn fails_inside(tx: &Transaction) -> migrate_core::rusqlite::Result<()> {
    tx.execute_batch("DELETE FROM parent; SELECT no_such_function()")
}

fn open(dir: &TempDir, foreign_keys: bool) -> Connection {
    let conn = Connection::open(dir.path().join("fk.db")).expect("open");
    let pragma = if foreign_keys { "ON" } else { "OFF" };
    conn.execute_batch(&format!("PRAGMA foreign_keys = {pragma}"))
        .expect("pragma");
    conn
}

fn parent_sql(conn: &Connection) -> String {
    conn.query_row(
        "SELECT sql FROM sqlite_master WHERE name = 'parent'",
        [],
        |row| row.get(0),
    )
    .expect("parent schema")
}

#[test]
fn a_foreign_keys_off_step_may_set_the_pragma_itself() {
    let dir = TempDir::new().expect("tempdir");
    let mut conn = open(&dir, true);
    let report = Migrator::new()
        .set("pragmas_inside")
        .migrate(&mut conn)
        .expect("migrate");
    assert_eq!(report.ids(), vec![0, 1]);
    assert_eq!(count(&conn, "child"), 4, "no child row may be lost");
    assert!(foreign_keys_on(&conn), "foreign keys are back on");
}

#[test]
fn naive_rebuild_loses_cascade_children() {
    let dir = TempDir::new().expect("tempdir");
    let mut conn = open(&dir, true);
    Migrator::new()
        .set("naive")
        .migrate(&mut conn)
        .expect("migrate");
    assert_eq!(count(&conn, "child"), 0, "the cascade deleted every child");
}

#[test]
fn rebuild_keeps_every_child_and_restores_the_setting() {
    let dir = TempDir::new().expect("tempdir");
    let mut conn = open(&dir, true);
    let report = Migrator::new()
        .set("rebuild")
        .migrate(&mut conn)
        .expect("migrate");
    assert_eq!(report.ids(), vec![0, 1, 2]);
    assert_eq!(count(&conn, "child"), 4, "no child row may be lost");
    assert_eq!(count(&conn, "parent"), 3);
    assert!(
        parent_sql(&conn).contains("NOT NULL DEFAULT ''"),
        "{}",
        parent_sql(&conn)
    );
    assert!(foreign_keys_on(&conn), "foreign keys are back on");
    let check: Vec<String> = conn
        .prepare("PRAGMA foreign_key_check")
        .and_then(|mut s| s.query_map([], |r| r.get::<_, String>(0))?.collect())
        .expect("foreign_key_check");
    assert!(check.is_empty(), "{check:?}");

    // The rollback is a rebuild as well, and runs the same way.
    let undone = Migrator::new().set("rebuild").rollback_to(&mut conn, 0);
    assert!(
        matches!(undone, Err(Error::NoRollback { id: 2, .. })),
        "{undone:?}"
    );
    assert_eq!(
        count(&conn, "after_rebuild"),
        0,
        "refused before any change"
    );
}

#[test]
fn rollback_with_foreign_keys_off_keeps_children() {
    let dir = TempDir::new().expect("tempdir");
    let mut conn = open(&dir, true);
    let m = Migrator::new().set("rebuild");
    m.migrate_to(&mut conn, 1).expect("migrate");
    let undone = m.rollback_migration(&mut conn).expect("rollback");
    assert_eq!(undone.map(|u| u.id), Some(1));
    assert_eq!(count(&conn, "child"), 4);
    assert!(
        !parent_sql(&conn).contains("NOT NULL"),
        "{}",
        parent_sql(&conn)
    );
    assert!(foreign_keys_on(&conn));
}

#[test]
fn setting_off_stays_off() {
    let dir = TempDir::new().expect("tempdir");
    let mut conn = open(&dir, false);
    Migrator::new()
        .set("rebuild")
        .migrate(&mut conn)
        .expect("migrate");
    assert!(!foreign_keys_on(&conn));
}

#[test]
fn violations_roll_back_and_are_listed() {
    let dir = TempDir::new().expect("tempdir");
    let mut conn = open(&dir, true);
    let m = Migrator::new().set("violate");
    let error = m.migrate(&mut conn).expect_err("orphans must be refused");
    match &error {
        Error::ForeignKeyViolations {
            id: 1,
            name,
            violations,
            ..
        } => {
            assert_eq!(name, "orphan_children");
            let mut rows: Vec<(String, Option<i64>, String)> = violations
                .iter()
                .map(|v| (v.table.clone(), v.rowid, v.parent.clone()))
                .collect();
            rows.sort();
            assert_eq!(
                rows,
                vec![
                    ("child".to_owned(), Some(10), "parent".to_owned()),
                    ("child".to_owned(), Some(11), "parent".to_owned()),
                ]
            );
        }
        other => panic!("expected ForeignKeyViolations, got {other:?}"),
    }
    let text = error.to_string();
    assert!(
        text.contains("migration 1 `orphan_children`") && text.contains("child rowid 10"),
        "{text}"
    );
    assert_eq!(count(&conn, "parent"), 3, "the delete was rolled back");
    let applied: Vec<u32> = m
        .applied_migrations(&conn)
        .expect("history")
        .iter()
        .map(|a| a.id)
        .collect();
    assert_eq!(
        applied,
        vec![0],
        "migration 0 stays applied, 1 is not recorded"
    );
    assert!(foreign_keys_on(&conn), "restored after the failure");
    assert!(conn.is_autocommit());
}

#[test]
fn failure_inside_restores_the_setting() {
    let dir = TempDir::new().expect("tempdir");
    let mut conn = open(&dir, true);
    let m = Migrator::new().set("fails");
    let error = m.migrate(&mut conn).expect_err("must fail");
    assert!(matches!(error, Error::Failed { id: 1, .. }), "{error:?}");
    assert_eq!(count(&conn, "parent"), 3);
    assert_eq!(count(&conn, "child"), 4);
    assert!(foreign_keys_on(&conn));
    assert!(conn.is_autocommit());
}
