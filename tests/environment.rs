//! Environment faults: a read-only database, a missing directory. Each must
//! give a clear error and change nothing.

use migrate_core::rusqlite::{Connection, OpenFlags, Transaction};
use migrate_core::{Error, Migrator};
use tempfile::TempDir;

fn migrator() -> Migrator {
    Migrator::new()
        .set("env")
        .add(0, "a", |tx: &Transaction| {
            tx.execute_batch("CREATE TABLE a (x)")
        })
        .add(1, "b", |tx: &Transaction| {
            tx.execute_batch("CREATE TABLE b (x)")
        })
}

#[test]
fn read_only_database_is_refused_clearly_and_unchanged() {
    let dir = TempDir::new().expect("tempdir");
    let path = dir.path().join("ro.db");
    {
        let mut conn = Connection::open(&path).expect("open");
        migrator()
            .migrate_to(&mut conn, 0)
            .expect("first migration");
    }
    let before = std::fs::read(&path).expect("read db");

    let mut conn =
        Connection::open_with_flags(&path, OpenFlags::SQLITE_OPEN_READ_ONLY).expect("open ro");
    let error = migrator()
        .migrate(&mut conn)
        .expect_err("a read-only file cannot be migrated");
    assert!(matches!(error, Error::ReadOnly), "{error:?}");
    let text = error.to_string();
    assert!(text.contains("read-only"), "{text}");
    assert!(
        text.contains("open it read-write"),
        "the message says what to do: {text}"
    );
    assert!(conn.is_autocommit());
    drop(conn);
    assert_eq!(
        std::fs::read(&path).expect("read db"),
        before,
        "not a byte changed"
    );
}

#[test]
fn read_only_database_that_is_up_to_date_is_fine() {
    let dir = TempDir::new().expect("tempdir");
    let path = dir.path().join("ro.db");
    {
        let mut conn = Connection::open(&path).expect("open");
        migrator().migrate(&mut conn).expect("migrate");
    }
    // Nothing to do needs no write: a read-only replica starts up.
    let mut conn =
        Connection::open_with_flags(&path, OpenFlags::SQLITE_OPEN_READ_ONLY).expect("open ro");
    assert!(migrator()
        .migrate(&mut conn)
        .expect("up to date")
        .is_empty());
}

#[test]
fn missing_directory_gives_a_clear_error() {
    let dir = TempDir::new().expect("tempdir");
    let path = dir.path().join("no/such/dir/app.db");
    let error = Connection::open(&path)
        .map(|_| ())
        .map_err(Error::from)
        .expect_err("cannot open a file in a missing directory");
    let text = error.to_string();
    assert!(text.contains("directory exists"), "{text}");
    assert!(!dir.path().join("no").exists(), "nothing was created");
}
