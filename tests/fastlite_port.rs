//! The behaviour the Python `fastlite-migrations` test-suite pins down, ported:
//! the sequence rule, a failing migration or rollback changing nothing, and
//! idempotent runs.
//!
//! This binary links no `#[migration]` at all: every test builds its own
//! `Migrator` with migrations added at run time, so the tests cannot disturb
//! one another through the link-time registry.

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use common::{dump_file, has_table, tables, tracking_ids, user_version, TempDb};
use migrate_core::rusqlite::{self, Transaction};
use migrate_core::{Direction, Error, Migrator, RegistryProblem};

fn create(
    table: &'static str,
) -> impl Fn(&Transaction<'_>) -> rusqlite::Result<()> + Send + Sync + 'static {
    move |tx: &Transaction<'_>| tx.execute_batch(&format!("CREATE TABLE {table} (x)"))
}

fn drop_table(
    table: &'static str,
) -> impl Fn(&Transaction<'_>) -> rusqlite::Result<()> + Send + Sync + 'static {
    move |tx: &Transaction<'_>| tx.execute_batch(&format!("DROP TABLE {table}"))
}

/// A counter that a migration bumps each time it runs.
fn counted(
    table: &'static str,
    counter: &Arc<AtomicUsize>,
) -> impl Fn(&Transaction<'_>) -> rusqlite::Result<()> + Send + Sync + 'static {
    let counter = Arc::clone(counter);
    move |tx: &Transaction<'_>| {
        counter.fetch_add(1, Ordering::SeqCst);
        tx.execute_batch(&format!("CREATE TABLE {table} (x)"))
    }
}

#[test]
fn ids_0_1_10_fail_validation_listing_the_gap_with_file_and_line() {
    let db = TempDb::new();
    let line_of_10 = line!() + 4;
    let migrator = Migrator::new()
        .add(0, "zero", create("t0"))
        .add(1, "one", create("t1"))
        .add(10, "ten", create("t10"));

    let error = migrator.validate().unwrap_err();
    let Error::InvalidRegistry { problems } = &error else {
        panic!("expected InvalidRegistry, got {error:?}");
    };
    assert_eq!(problems.len(), 1, "{problems:?}");
    match &problems[0] {
        RegistryProblem::Gap {
            set,
            from,
            to,
            next,
        } => {
            assert_eq!((set.as_str(), *from, *to), ("", 2, 9));
            let (next_id, location) = next.expect("the gap names the next id");
            assert_eq!(next_id, 10);
            assert!(location.file.ends_with("fastlite_port.rs"), "{location:?}");
            assert_eq!(location.line, line_of_10);
        }
        other => panic!("expected a gap, got {other:?}"),
    }
    let message = error.to_string();
    assert!(message.contains("2 to 9"), "{message}");
    assert!(
        message.contains(&format!("tests/fastlite_port.rs:{line_of_10}")),
        "{message}"
    );

    // Running it refuses the same way, before the database is touched.
    let mut conn = db.open();
    let error = migrator.migrate(&mut conn).unwrap_err();
    assert!(matches!(error, Error::InvalidRegistry { .. }), "{error:?}");
    assert!(tables(&conn).is_empty());
    assert_eq!(user_version(&conn), 0);
    drop(conn);
    assert!(db.bytes().is_empty(), "the database file was written to");
}

#[test]
fn a_migration_failing_halfway_leaves_nothing_and_stops_the_run() {
    let db = TempDb::new();
    let ran_2 = Arc::new(AtomicUsize::new(0));
    let migrator = Migrator::new()
        .add(0, "create_a", create("a"))
        .add(1, "create_b_then_fail", |tx: &Transaction<'_>| {
            tx.execute_batch("CREATE TABLE b (x); INSERT INTO b VALUES (1); INSERT INTO no_such_table VALUES (1)")
        })
        .add(2, "create_c", counted("c", &ran_2));
    let mut conn = db.open();

    let error = migrator.migrate(&mut conn).unwrap_err();
    match &error {
        Error::Failed {
            id,
            name,
            direction,
            ..
        } => {
            assert_eq!(
                (*id, name.as_str(), *direction),
                (1, "create_b_then_fail", Direction::Up)
            );
        }
        other => panic!("expected Failed, got {other:?}"),
    }
    let source = std::error::Error::source(&error).expect("the SQLite error is attached");
    assert!(source.to_string().contains("no_such_table"), "{source}");

    assert_eq!(
        ran_2.load(Ordering::SeqCst),
        0,
        "migration 2 ran after 1 failed"
    );
    assert!(has_table(&conn, "a"), "migration 0 was undone");
    assert!(
        !has_table(&conn, "b"),
        "the failed migration left its table"
    );
    assert!(!has_table(&conn, "c"));
    assert_eq!(tracking_ids(&conn, "migrations"), vec![0]);
    assert_eq!(user_version(&conn), 1);
    assert!(conn.is_autocommit());

    // Fixed, the run goes on from where it stopped.
    let fixed = Migrator::new()
        .add(0, "create_a", create("a"))
        .add(1, "create_b_then_fail", create("b"))
        .add(2, "create_c", counted("c", &ran_2));
    assert_eq!(fixed.migrate(&mut conn).unwrap().ids(), vec![1, 2]);
    assert_eq!(ran_2.load(Ordering::SeqCst), 1);
    assert_eq!(tracking_ids(&conn, "migrations"), vec![0, 1, 2]);
    assert_eq!(user_version(&conn), 3);
}

#[test]
fn a_rollback_failing_halfway_leaves_the_table_and_the_history_row() {
    let db = TempDb::new();
    let migrator = Migrator::new()
        .add(0, "create_a", create("a"))
        .add(1, "create_b", create("b"))
        .add_rollback(1, |tx: &Transaction<'_>| {
            tx.execute_batch("DROP TABLE b; DROP TABLE no_such_table")
        });
    let mut conn = db.open();
    migrator.migrate(&mut conn).unwrap();
    conn.execute("INSERT INTO b VALUES ('kept')", []).unwrap();
    let before = dump_file(&db.path);

    let error = migrator.rollback_migration(&mut conn).unwrap_err();
    match &error {
        Error::Failed {
            id,
            name,
            direction,
            ..
        } => assert_eq!(
            (*id, name.as_str(), *direction),
            (1, "create_b", Direction::Down)
        ),
        other => panic!("expected Failed, got {other:?}"),
    }
    assert!(has_table(&conn, "b"));
    let kept: String = conn
        .query_row("SELECT x FROM b", [], |row| row.get(0))
        .unwrap();
    assert_eq!(kept, "kept");
    assert_eq!(tracking_ids(&conn, "migrations"), vec![0, 1]);
    assert_eq!(user_version(&conn), 2);
    assert!(conn.is_autocommit());
    drop(conn);
    assert_eq!(dump_file(&db.path), before);
}

#[test]
fn migrating_twice_applies_nothing_the_second_time() {
    let db = TempDb::new();
    let runs: Vec<Arc<AtomicUsize>> = (0..3).map(|_| Arc::new(AtomicUsize::new(0))).collect();
    let migrator = Migrator::new()
        .add(0, "a", counted("a", &runs[0]))
        .add(1, "b", counted("b", &runs[1]))
        .add(2, "c", counted("c", &runs[2]));
    let mut conn = db.open();

    assert_eq!(migrator.migrate(&mut conn).unwrap().ids(), vec![0, 1, 2]);
    let bytes = db.bytes();
    let second = migrator.migrate(&mut conn).unwrap();
    assert!(second.is_empty(), "{second:?}");
    assert!(migrator.pending_migrations(&conn).unwrap().is_empty());
    for (id, count) in runs.iter().enumerate() {
        assert_eq!(count.load(Ordering::SeqCst), 1, "migration {id} ran twice");
    }
    assert_eq!(tracking_ids(&conn, "migrations"), vec![0, 1, 2]);
    assert_eq!(user_version(&conn), 3);
    drop(conn);
    assert_eq!(
        db.bytes(),
        bytes,
        "a run with nothing to do wrote to the file"
    );

    // A new connection (a new process, say) finds nothing to do either.
    let mut conn = db.open();
    assert!(migrator.migrate(&mut conn).unwrap().is_empty());
    assert!(runs.iter().all(|count| count.load(Ordering::SeqCst) == 1));
}

#[test]
fn a_rollback_leaves_only_migration_0_applied() {
    let db = TempDb::new();
    let migrator = Migrator::new()
        .add(0, "create_a", create("a"))
        .add(1, "create_b", create("b"))
        .add_rollback(1, drop_table("b"));
    let mut conn = db.open();
    migrator.migrate(&mut conn).unwrap();
    assert_eq!(tables(&conn), vec!["a", "b", "migrations"]);

    let undone = migrator
        .rollback_migration(&mut conn)
        .unwrap()
        .expect("1 was applied");
    assert_eq!((undone.id, undone.name.as_str()), (1, "create_b"));
    assert_eq!(tables(&conn), vec!["a", "migrations"]);
    assert_eq!(tracking_ids(&conn, "migrations"), vec![0]);
    assert_eq!(user_version(&conn), 1);
    let applied = migrator.applied_migrations(&conn).unwrap();
    assert_eq!(applied.iter().map(|m| m.id).collect::<Vec<_>>(), vec![0]);
    assert_eq!(
        migrator
            .last_applied_migration(&conn)
            .unwrap()
            .map(|m| m.id),
        Some(0)
    );
    let pending = migrator.pending_migrations(&conn).unwrap();
    assert_eq!(pending.iter().map(|m| m.id).collect::<Vec<_>>(), vec![1]);

    // And it can be applied again.
    assert_eq!(migrator.migrate(&mut conn).unwrap().ids(), vec![1]);
    assert_eq!(tables(&conn), vec!["a", "b", "migrations"]);
}

#[test]
fn rollback_without_a_registered_rollback_is_no_rollback_and_changes_nothing() {
    let db = TempDb::new();
    let migrator = Migrator::new()
        .add(0, "create_a", create("a"))
        .add_rollback(0, drop_table("a"))
        .add(1, "create_b", create("b"));
    let mut conn = db.open();
    migrator.migrate(&mut conn).unwrap();
    drop(conn);
    let bytes = db.bytes();
    let mut conn = db.open();

    let error = migrator.rollback_migration(&mut conn).unwrap_err();
    match &error {
        Error::NoRollback { id, name } => assert_eq!((*id, name.as_str()), (1, "create_b")),
        other => panic!("expected NoRollback, got {other:?}"),
    }
    assert!(error.to_string().contains("#[rollback(1)]"), "{error}");
    // rollback_all and rollback_to refuse too, before undoing anything.
    assert!(matches!(
        migrator.rollback_all(&mut conn),
        Err(Error::NoRollback { id: 1, .. })
    ));
    assert!(matches!(
        migrator.rollback_to(&mut conn, 0),
        Err(Error::NoRollback { id: 1, .. })
    ));
    assert_eq!(tables(&conn), vec!["a", "b", "migrations"]);
    assert_eq!(tracking_ids(&conn, "migrations"), vec![0, 1]);
    assert!(conn.is_autocommit());
    drop(conn);
    assert_eq!(db.bytes(), bytes, "a refused rollback wrote to the file");
}

#[test]
fn rollback_with_nothing_applied_is_none() {
    let db = TempDb::new();
    let migrator = Migrator::new()
        .add(0, "create_a", create("a"))
        .add_rollback(0, drop_table("a"));
    let mut conn = db.open();
    migrator.migrate(&mut conn).unwrap();
    assert_eq!(
        migrator
            .rollback_migration(&mut conn)
            .unwrap()
            .map(|m| m.id),
        Some(0)
    );
    assert_eq!(migrator.rollback_migration(&mut conn).unwrap(), None);
    assert_eq!(tables(&conn), vec!["migrations"]);
    assert!(tracking_ids(&conn, "migrations").is_empty());
    assert_eq!(user_version(&conn), 0);
}
