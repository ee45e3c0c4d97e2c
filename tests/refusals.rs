//! Every refusal, each followed by a check that the database is exactly what
//! it was: the file's bytes where nothing may have been written at all, or a
//! full dump (schema, every row of every table, `user_version`) where the
//! runner commits the steps that succeeded before the one that failed.
//!
//! This binary links no `#[migration]`: every test builds its migrations at
//! run time, in the default set where `user_version` matters.

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use common::{
    assert_untouched, dump, dump_file, has_table, snapshot, tables, tamper, tracking_ids,
    tracking_rows, user_version, TempDb,
};
use migrate_core::rusqlite::{self, Connection, Transaction};
use migrate_core::{Direction, Error, Migrator};

/// `n` migrations `m0`, `m1`, … of `set`, each creating table `t<id>`, each
/// with a rollback dropping it.
fn tables_migrator(set: &str, n: u32) -> Migrator {
    let mut migrator = Migrator::new().set(set);
    for id in 0..n {
        migrator = migrator
            .add(id, format!("m{id}"), move |tx: &Transaction<'_>| {
                tx.execute_batch(&format!("CREATE TABLE t{id} (x)"))
            })
            .add_rollback(id, move |tx: &Transaction<'_>| {
                tx.execute_batch(&format!("DROP TABLE t{id}"))
            });
    }
    migrator
}

// ---------------------------------------------------------------- DatabaseAhead

#[test]
fn database_ahead_is_refused_and_changes_nothing() {
    let db = TempDb::new();
    let mut conn = db.open();
    tables_migrator("", 3).migrate(&mut conn).unwrap();
    let before = snapshot(&db);

    let older = tables_migrator("", 2);
    let error = older.migrate(&mut conn).unwrap_err();
    match &error {
        Error::DatabaseAhead {
            set,
            known,
            unknown,
        } => {
            assert_eq!(set, "");
            assert_eq!(*known, 2);
            assert_eq!(unknown, &vec![(2, "m2".to_owned())]);
        }
        other => panic!("expected DatabaseAhead, got {other:?}"),
    }
    let message = error.to_string();
    assert!(message.contains("2 `m2`"), "{message}");
    assert!(message.contains("not linked"), "{message}");
    assert!(message.contains("use that_crate as _;"), "{message}");

    // Every other entry point refuses too; in particular a rollback must not
    // undo migration 1 underneath a migration it does not know.
    assert!(matches!(
        older.migrate_to(&mut conn, 1),
        Err(Error::DatabaseAhead { .. })
    ));
    assert!(matches!(
        older.rollback_migration(&mut conn),
        Err(Error::DatabaseAhead { .. })
    ));
    assert!(matches!(
        older.rollback_to(&mut conn, 0),
        Err(Error::DatabaseAhead { .. })
    ));
    assert!(matches!(
        older.rollback_all(&mut conn),
        Err(Error::DatabaseAhead { .. })
    ));
    assert!(matches!(
        older.pending_migrations(&conn),
        Err(Error::DatabaseAhead { .. })
    ));
    assert!(matches!(
        older.baseline(&mut conn, 1),
        Err(Error::AlreadyHasHistory { .. })
    ));
    assert!(conn.is_autocommit());
    assert_untouched(&db, &before);

    // Reading the history is still allowed.
    assert_eq!(older.applied_migrations(&conn).unwrap().len(), 3);
}

// ---------------------------------------------------------------- Modified

fn one_named(name: &str) -> Migrator {
    Migrator::new().add(0, name, |tx: &Transaction<'_>| {
        tx.execute_batch("CREATE TABLE t0 (x)")
    })
}

#[test]
fn a_renamed_migration_is_modified_and_changes_nothing() {
    let db = TempDb::new();
    let mut conn = db.open();
    one_named("a").migrate(&mut conn).unwrap();
    let before = snapshot(&db);

    let renamed = one_named("b");
    let error = renamed.migrate(&mut conn).unwrap_err();
    match &error {
        Error::Modified { set, modifications } => {
            assert_eq!(set, "");
            assert_eq!(modifications.len(), 1);
            let m = &modifications[0];
            assert_eq!(
                (m.id, m.applied_name.as_str(), m.current_name.as_str()),
                (0, "a", "b")
            );
            assert!(m.location.file.ends_with("refusals.rs"));
        }
        other => panic!("expected Modified, got {other:?}"),
    }
    let message = error.to_string();
    assert!(message.contains("renamed from `a`"), "{message}");
    assert!(message.contains("verify_applied(false)"), "{message}");
    assert!(matches!(
        renamed.pending_migrations(&conn),
        Err(Error::Modified { .. })
    ));
    assert!(matches!(
        renamed.rollback_migration(&mut conn),
        Err(Error::Modified { .. })
    ));
    assert_untouched(&db, &before);

    // Opting out accepts it, and nothing is rewritten.
    let lenient = one_named("b").verify_applied(false);
    assert!(lenient.migrate(&mut conn).unwrap().is_empty());
    assert!(lenient.pending_migrations(&conn).unwrap().is_empty());
    assert_eq!(dump_file(&db.path), before.dump);
    assert_eq!(
        tracking_rows(&conn, "migrations"),
        vec![(0, "a".to_owned())]
    );
}

#[test]
fn history_written_without_verification_reads_back_clean() {
    let db = TempDb::new();
    let mut conn = db.open();
    one_named("a").migrate(&mut conn).unwrap();

    // The renamed build, opted out, applies a new migration on top.
    let lenient = one_named("b")
        .verify_applied(false)
        .add(1, "next", |tx: &Transaction<'_>| {
            tx.execute_batch("CREATE TABLE t1 (x)")
        });
    assert_eq!(lenient.migrate(&mut conn).unwrap().ids(), vec![1]);
    assert_eq!(
        tracking_rows(&conn, "migrations"),
        vec![(0, "a".to_owned()), (1, "next".to_owned())]
    );
    assert_eq!(user_version(&conn), 2);

    // The original code, verifying, is content; the renamed one still is not.
    let original = one_named("a").add(1, "next", |tx: &Transaction<'_>| {
        tx.execute_batch("CREATE TABLE t1 (x)")
    });
    assert!(original.migrate(&mut conn).unwrap().is_empty());
    assert!(original.pending_migrations(&conn).unwrap().is_empty());
    let strict = one_named("b").add(1, "next", |tx: &Transaction<'_>| {
        tx.execute_batch("CREATE TABLE t1 (x)")
    });
    assert!(matches!(
        strict.migrate(&mut conn),
        Err(Error::Modified { .. })
    ));
}

/// Without verification, a history the O(1) check cannot vouch for (a
/// hand edit of a timestamp) is repaired; a renamed migration in it keeps
/// the checksum it was applied with, so the verifying build still sees the
/// rename.
#[test]
fn a_repair_without_verification_keeps_the_applied_checksums() {
    let db = TempDb::new();
    let mut conn = db.open();
    one_named("a").migrate(&mut conn).unwrap();
    let checksum_of = |conn: &Connection| -> String {
        conn.query_row("SELECT checksum FROM migrations WHERE id = 0", [], |r| {
            r.get(0)
        })
        .unwrap()
    };
    let applied = checksum_of(&conn);
    conn.execute_batch("UPDATE migrations SET applied_at = '2001-01-01T00:00:00Z'")
        .unwrap();
    let lenient = one_named("b").verify_applied(false);
    assert!(lenient.migrate(&mut conn).unwrap().is_empty());
    assert_eq!(
        checksum_of(&conn),
        applied,
        "the applied checksum was rewritten"
    );
    assert!(matches!(
        one_named("b").migrate(&mut conn),
        Err(Error::Modified { .. })
    ));
    assert!(one_named("a").migrate(&mut conn).unwrap().is_empty());
}

// ---------------------------------------------------------------- UnmanagedDatabase

#[test]
fn user_tables_without_a_tracking_table_are_unmanaged() {
    let db = TempDb::new();
    tamper(&db, "CREATE TABLE legacy (x); INSERT INTO legacy VALUES (1); CREATE VIEW legacy_view AS SELECT x FROM legacy;");
    let before = snapshot(&db);
    let mut conn = db.open();
    let migrator = tables_migrator("", 2);

    let error = migrator.migrate(&mut conn).unwrap_err();
    match &error {
        Error::UnmanagedDatabase {
            set,
            table,
            tables,
            user_version,
        } => {
            assert_eq!(
                (set.as_str(), table.as_str(), *user_version),
                ("", "migrations", 0)
            );
            assert_eq!(tables, &vec!["legacy".to_owned(), "legacy_view".to_owned()]);
        }
        other => panic!("expected UnmanagedDatabase, got {other:?}"),
    }
    let message = error.to_string();
    assert!(message.contains("legacy"), "{message}");
    assert!(message.contains("baseline"), "{message}");
    assert!(matches!(
        migrator.migrate_to(&mut conn, 0),
        Err(Error::UnmanagedDatabase { .. })
    ));
    assert!(matches!(
        migrator.pending_migrations(&conn),
        Err(Error::UnmanagedDatabase { .. })
    ));
    assert_untouched(&db, &before);
}

/// The error lists at most ten of the tables it found, then "…": ten are
/// listed as they are, eleven are cut at ten.
#[test]
fn an_unmanaged_database_lists_ten_tables_then_an_ellipsis() {
    let ten: Vec<String> = (0..10).map(|i| format!("t{i:02}")).collect();
    let ten_and_more: Vec<String> = ten.iter().cloned().chain(["…".to_owned()]).collect();
    for (count, expected) in [(10, ten), (11, ten_and_more)] {
        let db = TempDb::new();
        let schema: String = (0..count)
            .map(|i| format!("CREATE TABLE t{i:02} (x);"))
            .collect();
        tamper(&db, &schema);
        match tables_migrator("", 1).migrate(&mut db.open()) {
            Err(Error::UnmanagedDatabase { tables, .. }) => {
                assert_eq!(tables, expected, "{count} tables")
            }
            other => panic!("{count} tables: expected UnmanagedDatabase, got {other:?}"),
        }
    }
}

#[test]
fn a_non_zero_user_version_without_a_tracking_table_is_unmanaged() {
    let db = TempDb::new();
    tamper(&db, "PRAGMA user_version = 7");
    let before = snapshot(&db);
    let mut conn = db.open();
    let migrator = tables_migrator("", 2);

    let error = migrator.migrate(&mut conn).unwrap_err();
    match &error {
        Error::UnmanagedDatabase {
            tables,
            user_version,
            ..
        } => {
            assert!(tables.is_empty(), "{tables:?}");
            assert_eq!(*user_version, 7);
        }
        other => panic!("expected UnmanagedDatabase, got {other:?}"),
    }
    let message = error.to_string();
    assert!(message.contains("user_version is 7"), "{message}");
    assert!(message.contains("baseline"), "{message}");
    assert_untouched(&db, &before);

    // A named set does not own user_version and is not bothered by it.
    tables_migrator("other", 1).migrate(&mut conn).unwrap();
    assert_eq!(user_version(&conn), 7);
}

#[test]
fn rolling_back_an_unmanaged_database_changes_nothing() {
    let db = TempDb::new();
    tamper(&db, "CREATE TABLE legacy (x); PRAGMA user_version = 7;");
    let before = snapshot(&db);
    let mut conn = db.open();
    let migrator = tables_migrator("", 2);
    // Nothing of ours is applied: either "nothing to undo" or a refusal is
    // fine, as long as the hand-built database is left exactly as it was.
    match migrator.rollback_migration(&mut conn) {
        Ok(None) | Err(Error::UnmanagedDatabase { .. }) => {}
        other => panic!("unexpected {other:?}"),
    }
    match migrator.rollback_all(&mut conn) {
        Ok(report) if report.is_empty() => {}
        Err(Error::UnmanagedDatabase { .. }) => {}
        other => panic!("unexpected {other:?}"),
    }
    assert_untouched(&db, &before);
}

// ---------------------------------------------------------------- baseline

#[test]
fn baseline_records_without_running_then_migrate_applies_the_rest() {
    let db = TempDb::new();
    // Built by hand (or another tool) exactly as migrations 0 and 1 would.
    tamper(&db, "CREATE TABLE t0 (x); CREATE TABLE t1 (x); INSERT INTO t1 VALUES ('kept'); PRAGMA user_version = 12;");
    let mut conn = db.open();
    let migrator = tables_migrator("", 4);
    assert!(matches!(
        migrator.migrate(&mut conn),
        Err(Error::UnmanagedDatabase { .. })
    ));

    migrator.baseline(&mut conn, 1).unwrap();
    assert_eq!(
        tracking_rows(&conn, "migrations"),
        vec![(0, "m0".to_owned()), (1, "m1".to_owned())]
    );
    assert_eq!(user_version(&conn), 2);
    let pending = migrator.pending_migrations(&conn).unwrap();
    assert_eq!(pending.iter().map(|m| m.id).collect::<Vec<_>>(), vec![2, 3]);
    // Recorded with the current names and checksums: nothing looks edited.
    let applied = migrator.applied_migrations(&conn).unwrap();
    let status = migrator.status(&conn).unwrap();
    assert_eq!(status[0].state, migrate_core::MigrationState::Applied);
    assert_eq!(status[1].state, migrate_core::MigrationState::Applied);
    assert_eq!(applied.len(), 2);

    // Migrations 0 and 1 would fail if run again (their tables exist).
    assert_eq!(migrator.migrate(&mut conn).unwrap().ids(), vec![2, 3]);
    assert_eq!(tables(&conn), vec!["migrations", "t0", "t1", "t2", "t3"]);
    assert_eq!(user_version(&conn), 4);
    let kept: String = conn
        .query_row("SELECT x FROM t1", [], |row| row.get(0))
        .unwrap();
    assert_eq!(kept, "kept");
}

#[test]
fn baseline_of_a_named_set_leaves_user_version_alone() {
    let db = TempDb::new();
    tamper(&db, "CREATE TABLE t0 (x); PRAGMA user_version = 12;");
    let mut conn = db.open();
    let migrator = tables_migrator("cache", 2);
    migrator.baseline(&mut conn, 0).unwrap();
    assert_eq!(tracking_ids(&conn, "migrations_cache"), vec![0]);
    assert_eq!(user_version(&conn), 12);
    assert_eq!(migrator.migrate(&mut conn).unwrap().ids(), vec![1]);
}

/// A tracking table that every rollback emptied holds no history: baseline
/// records into it (with its triggers), as into a new one.
#[test]
fn baseline_records_into_a_tracking_table_rolled_back_to_empty() {
    let db = TempDb::new();
    let mut conn = db.open();
    let migrator = tables_migrator("", 3);
    migrator.migrate_to(&mut conn, 1).unwrap();
    migrator.rollback_all(&mut conn).unwrap();
    assert!(tracking_ids(&conn, "migrations").is_empty());
    conn.execute_batch("CREATE TABLE t0 (x)").unwrap(); // built by hand again

    migrator.baseline(&mut conn, 0).unwrap();
    assert_eq!(tracking_ids(&conn, "migrations"), vec![0]);
    assert_eq!(migrator.migrate(&mut conn).unwrap().ids(), vec![1, 2]);
}

#[test]
fn baseline_is_refused_when_history_exists() {
    let db = TempDb::new();
    let mut conn = db.open();
    let migrator = tables_migrator("", 3);
    migrator.migrate_to(&mut conn, 0).unwrap();
    let before = snapshot(&db);

    let error = migrator.baseline(&mut conn, 2).unwrap_err();
    match &error {
        Error::AlreadyHasHistory { table, applied } => {
            assert_eq!((table.as_str(), *applied), ("migrations", 1));
        }
        other => panic!("expected AlreadyHasHistory, got {other:?}"),
    }
    assert!(error.to_string().contains("baseline"), "{error}");
    assert!(conn.is_autocommit());
    assert_untouched(&db, &before);
}

#[test]
fn baseline_beyond_the_last_migration_is_an_invalid_target() {
    let db = TempDb::new();
    tamper(&db, "CREATE TABLE t0 (x)");
    let before = snapshot(&db);
    let mut conn = db.open();
    let error = tables_migrator("", 2).baseline(&mut conn, 2).unwrap_err();
    assert!(
        matches!(
            error,
            Error::InvalidTarget {
                target: 2,
                known: 2,
                ..
            }
        ),
        "{error:?}"
    );
    assert_untouched(&db, &before);
}

// ---------------------------------------------------------------- CorruptHistory

/// Applies `applied` of four migrations, then tampers with the history.
fn corrupted(applied: u32, sql: &str) -> (TempDb, Migrator) {
    let db = TempDb::new();
    let migrator = tables_migrator("", 4);
    migrator.migrate_to(&mut db.open(), applied - 1).unwrap();
    tamper(&db, sql);
    (db, migrator)
}

#[track_caller]
fn assert_corrupt(db: &TempDb, migrator: &Migrator, expect: &str) {
    let before = snapshot(db);
    let mut conn = db.open();
    let pending = migrator.pending_migrations(&conn);
    let error = migrator.migrate(&mut conn).unwrap_err();
    match &error {
        Error::CorruptHistory { table, problems } => {
            assert_eq!(table, "migrations");
            assert!(problems.iter().any(|p| p.contains(expect)), "{problems:?}");
        }
        other => panic!("expected CorruptHistory, got {other:?}"),
    }
    assert!(error.to_string().contains(expect), "{error}");
    assert!(
        matches!(pending, Err(Error::CorruptHistory { .. })),
        "{pending:?}"
    );
    assert!(matches!(
        migrator.rollback_migration(&mut conn),
        Err(Error::CorruptHistory { .. })
    ));
    assert!(matches!(
        migrator.applied_migrations(&conn),
        Err(Error::CorruptHistory { .. })
    ));
    assert!(matches!(
        migrator.status(&conn),
        Err(Error::CorruptHistory { .. })
    ));
    assert!(conn.is_autocommit());
    drop(conn);
    assert_untouched(db, &before);
}

#[test]
fn corrupt_history_gap_in_ids() {
    let (db, migrator) = corrupted(3, "DELETE FROM migrations WHERE id = 1");
    assert_eq!(tracking_ids(&db.open(), "migrations"), vec![0, 2]);
    assert_corrupt(&db, &migrator, "not contiguous");
}

#[test]
fn corrupt_history_gap_in_ids_of_an_otherwise_up_to_date_database() {
    // All four applied, then row 1 deleted by hand: the newest row is intact,
    // but migration 1 is not recorded any more.
    let (db, migrator) = corrupted(4, "DELETE FROM migrations WHERE id = 1");
    assert_corrupt(&db, &migrator, "not contiguous");
}

#[test]
fn corrupt_history_first_row_missing() {
    let (db, migrator) = corrupted(2, "DELETE FROM migrations WHERE id = 0");
    assert_corrupt(&db, &migrator, "not contiguous");
}

#[test]
fn corrupt_history_negative_id() {
    let (db, migrator) = corrupted(
        2,
        "INSERT INTO migrations (id, name, applied_at, checksum, chain) \
         SELECT -1, name, applied_at, checksum, chain FROM migrations WHERE id = 0",
    );
    assert_corrupt(&db, &migrator, "-1");
}

#[test]
fn corrupt_history_id_beyond_u32() {
    let (db, migrator) = corrupted(
        2,
        "INSERT INTO migrations (id, name, applied_at, checksum, chain) \
         SELECT 4294967296, name, applied_at, checksum, chain FROM migrations WHERE id = 0",
    );
    assert_corrupt(&db, &migrator, "4294967296");
}

#[test]
fn corrupt_history_blob_name() {
    let (db, migrator) = corrupted(2, "UPDATE migrations SET name = x'00ff' WHERE id = 0");
    assert_corrupt(&db, &migrator, "`name` is a blob");
}

#[test]
fn corrupt_history_null_name() {
    // The column is NOT NULL, so NULL can only get there by editing the
    // schema; the declared shape is put back afterwards, so that only the
    // row is wrong.
    let (db, migrator) = corrupted(2, "");
    let edit_schema = |from: &str, to: &str| {
        let conn = db.open();
        conn.execute_batch("PRAGMA writable_schema = ON").unwrap();
        let changed = conn
            .execute(
                "UPDATE sqlite_master SET sql = replace(sql, ?1, ?2) WHERE name = 'migrations'",
                [from, to],
            )
            .unwrap();
        assert_eq!(changed, 1);
        conn.execute_batch("PRAGMA writable_schema = OFF").unwrap();
    };
    edit_schema("name TEXT NOT NULL", "name TEXT");
    tamper(&db, "UPDATE migrations SET name = NULL WHERE id = 1");
    edit_schema("name TEXT,", "name TEXT NOT NULL,");
    let name: Option<String> = db
        .open()
        .query_row("SELECT name FROM migrations WHERE id = 1", [], |row| {
            row.get(0)
        })
        .unwrap();
    assert_eq!(name, None);
    assert_corrupt(&db, &migrator, "`name` is NULL");
}

#[test]
fn corrupt_history_text_id_cannot_be_stored() {
    // `id INTEGER PRIMARY KEY` is the rowid: SQLite itself refuses text ids,
    // so a tracking table of ours can never hold one.
    let (db, _migrator) = corrupted(1, "");
    let error = db
        .open()
        .execute_batch("UPDATE migrations SET id = 'one' WHERE id = 0")
        .unwrap_err();
    assert!(error.to_string().contains("datatype mismatch"), "{error}");
}

// ---------------------------------------------------------------- IncompatibleTrackingTable

#[test]
fn another_tools_migrations_table_is_incompatible() {
    let db = TempDb::new();
    tamper(
        &db,
        "CREATE TABLE migrations (id INTEGER PRIMARY KEY, name TEXT, inserted_at TEXT); \
         INSERT INTO migrations VALUES (1, '0001_init', '2020-01-01');",
    );
    let before = snapshot(&db);
    let mut conn = db.open();
    let migrator = tables_migrator("", 2);

    let error = migrator.migrate(&mut conn).unwrap_err();
    match &error {
        Error::IncompatibleTrackingTable { table, problems } => {
            assert_eq!(table, "migrations");
            let all = problems.join("\n");
            assert!(all.contains("no column `applied_at`"), "{all}");
            assert!(all.contains("no column `checksum`"), "{all}");
            assert!(all.contains("`name` allows NULL"), "{all}");
        }
        other => panic!("expected IncompatibleTrackingTable, got {other:?}"),
    }
    assert!(error.to_string().contains("Migrator::table"), "{error}");
    for result in [
        migrator.migrate_to(&mut conn, 0).map(|_| ()),
        migrator.rollback_migration(&mut conn).map(|_| ()),
        migrator.rollback_all(&mut conn).map(|_| ()),
        migrator.baseline(&mut conn, 0),
        migrator.pending_migrations(&conn).map(|_| ()),
        migrator.applied_migrations(&conn).map(|_| ()),
        migrator.status(&conn).map(|_| ()),
    ] {
        assert!(
            matches!(result, Err(Error::IncompatibleTrackingTable { .. })),
            "{result:?}"
        );
    }
    assert_untouched(&db, &before);
}

// ---------------------------------------------------------------- InvalidTarget

#[test]
fn targets_beyond_the_last_migration_are_refused() {
    let db = TempDb::new();
    let mut conn = db.open();
    let migrator = tables_migrator("", 3);
    let error = migrator.migrate_to(&mut conn, 3).unwrap_err();
    assert!(
        matches!(&error, Error::InvalidTarget { set, target: 3, known: 3 } if set.is_empty()),
        "{error:?}"
    );
    assert!(error.to_string().contains("0 to 2"), "{error}");
    drop(conn);
    assert!(db.bytes().is_empty(), "a refused call wrote to a new file");

    let mut conn = db.open();
    migrator.migrate(&mut conn).unwrap();
    let before = snapshot(&db);
    assert!(matches!(
        migrator.migrate_to(&mut conn, u32::MAX),
        Err(Error::InvalidTarget { .. })
    ));
    assert!(matches!(
        migrator.rollback_to(&mut conn, 3),
        Err(Error::InvalidTarget {
            target: 3,
            known: 3,
            ..
        })
    ));
    assert_untouched(&db, &before);

    // In range, they work (and migrate_to never rolls back).
    assert!(migrator.migrate_to(&mut conn, 1).unwrap().is_empty());
    assert_eq!(
        migrator.rollback_to(&mut conn, 0).unwrap().ids(),
        vec![2, 1]
    );
    assert_eq!(tracking_ids(&conn, "migrations"), vec![0]);
    assert_eq!(user_version(&conn), 1);
}

// ---------------------------------------------------------------- InTransaction

#[test]
fn calls_inside_an_open_transaction_are_refused() {
    for opener in ["BEGIN", "BEGIN IMMEDIATE", "SAVEPOINT mine"] {
        let db = TempDb::new();
        let mut conn = db.open();
        let migrator = tables_migrator("", 2);
        migrator.migrate_to(&mut conn, 0).unwrap();
        let before = snapshot(&db);

        conn.execute_batch(opener).unwrap();
        conn.execute_batch("CREATE TABLE mine (x); INSERT INTO mine VALUES (1);")
            .unwrap();
        let results = [
            ("migrate", migrator.migrate(&mut conn).map(|_| ())),
            ("migrate_to", migrator.migrate_to(&mut conn, 1).map(|_| ())),
            (
                "rollback_migration",
                migrator.rollback_migration(&mut conn).map(|_| ()),
            ),
            (
                "rollback_to",
                migrator.rollback_to(&mut conn, 0).map(|_| ()),
            ),
            ("rollback_all", migrator.rollback_all(&mut conn).map(|_| ())),
            ("baseline", migrator.baseline(&mut conn, 0).map(|_| ())),
        ];
        for (call, result) in results {
            assert!(
                matches!(result, Err(Error::InTransaction)),
                "{opener}: {call} gave {result:?}"
            );
        }
        // The caller's transaction is still open, with its work in it.
        assert!(
            !conn.is_autocommit(),
            "{opener}: the caller's transaction was ended"
        );
        assert!(has_table(&conn, "mine"));
        assert!(!has_table(&conn, "t1"));
        conn.execute_batch("ROLLBACK").unwrap();
        assert_eq!(dump_file(&db.path), before.dump, "{opener}");
        assert!(
            db.bytes() == before.bytes,
            "{opener}: the file was written to"
        );

        // Once the transaction is over, the same call works.
        assert_eq!(migrator.migrate(&mut conn).unwrap().ids(), vec![1]);
    }
}

#[test]
fn an_up_to_date_database_is_refused_inside_a_transaction_too() {
    let db = TempDb::new();
    let mut conn = db.open();
    let migrator = tables_migrator("", 1);
    migrator.migrate(&mut conn).unwrap();
    conn.execute_batch("BEGIN").unwrap();
    assert!(matches!(
        migrator.migrate(&mut conn),
        Err(Error::InTransaction)
    ));
    assert!(!conn.is_autocommit());
    conn.execute_batch("COMMIT").unwrap();
}

// ---------------------------------------------------------------- TransactionControl

fn with_step_1(
    step: impl Fn(&Transaction<'_>) -> rusqlite::Result<()> + Send + Sync + 'static,
) -> Migrator {
    Migrator::new()
        .add(0, "m0", |tx: &Transaction<'_>| {
            tx.execute_batch("CREATE TABLE t0 (x)")
        })
        .add(1, "sneaky", step)
        .add(2, "m2", |tx: &Transaction<'_>| {
            tx.execute_batch("CREATE TABLE t2 (x)")
        })
}

/// Applies migration 0, then runs the rest and expects migration 1 to be
/// refused for transaction control with the database as it was after 0.
#[track_caller]
fn assert_transaction_control(migrator: &Migrator, what: &str) {
    let db = TempDb::new();
    let mut conn = db.open();
    migrator.migrate_to(&mut conn, 0).unwrap();
    let before = dump(&conn);

    let error = migrator.migrate(&mut conn).unwrap_err();
    match &error {
        Error::TransactionControl {
            id,
            name,
            direction,
        } => {
            assert_eq!(
                (*id, name.as_str(), *direction),
                (1, "sneaky", Direction::Up),
                "{what}"
            );
        }
        other => panic!("{what}: expected TransactionControl, got {other:?}"),
    }
    let message = error.to_string();
    assert!(message.contains("1 `sneaky`"), "{message}");
    assert!(message.contains("SAVEPOINT"), "{message}");

    assert!(conn.is_autocommit(), "{what}: left inside a transaction");
    assert_eq!(dump(&conn), before, "{what}: the database changed");
    drop(conn);
    assert_eq!(
        dump_file(&db.path),
        before,
        "{what}: something other than migration 0 was committed"
    );
    let conn = db.open();
    assert!(!has_table(&conn, "t1") && !has_table(&conn, "t2"), "{what}");
    // The connection works normally afterwards, transactions included.
    conn.execute_batch("BEGIN; CREATE TABLE later (x); COMMIT;")
        .unwrap();
}

#[test]
fn ending_the_transaction_is_refused() {
    for statement in [
        "COMMIT",
        "END",
        "ROLLBACK",
        "BEGIN",
        "BEGIN IMMEDIATE",
        "COMMIT TRANSACTION",
    ] {
        let migrator = with_step_1(move |tx: &Transaction<'_>| {
            tx.execute_batch(&format!(
                "CREATE TABLE t1 (x); {statement}; CREATE TABLE t1b (x);"
            ))
        });
        assert_transaction_control(&migrator, statement);
    }
}

#[test]
fn ending_the_transaction_is_refused_even_when_the_error_is_ignored() {
    for statement in ["COMMIT", "ROLLBACK", "BEGIN", "END"] {
        let migrator = with_step_1(move |tx: &Transaction<'_>| {
            tx.execute_batch("CREATE TABLE t1 (x)")?;
            let _ignored = tx.execute_batch(statement);
            tx.execute_batch("CREATE TABLE t1b (x)")
        });
        assert_transaction_control(&migrator, statement);
    }
}

/// `INSERT OR ROLLBACK` (or `RAISE(ROLLBACK, …)` in a trigger) makes SQLite
/// itself roll back the whole transaction when the constraint fails: no
/// transaction statement is prepared, so the authorizer sees nothing.
fn or_rollback_step(ignore_error: bool) -> Migrator {
    with_step_1(move |tx: &Transaction<'_>| {
        tx.execute_batch("CREATE TABLE t1 (x UNIQUE); INSERT INTO t1 VALUES (1);")?;
        let result = tx.execute("INSERT OR ROLLBACK INTO t1 VALUES (1)", []);
        if ignore_error {
            Ok(())
        } else {
            result.map(|_| ())
        }
    })
}

#[test]
fn a_transaction_ended_by_sqlite_and_ignored_is_refused_and_not_recorded() {
    let db = TempDb::new();
    let mut conn = db.open();
    let migrator = or_rollback_step(true);
    migrator.migrate_to(&mut conn, 0).unwrap();
    let before = dump(&conn);

    let result = migrator.migrate(&mut conn);
    assert!(conn.is_autocommit());
    drop(conn);
    // Above all, migration 1 must not be recorded as applied: its table was
    // rolled back by SQLite.
    let conn = db.open();
    assert_eq!(
        tracking_ids(&conn, "migrations"),
        vec![0],
        "recorded although its work is gone; the call returned {result:?}"
    );
    assert_eq!(dump(&conn), before);
    assert!(
        matches!(
            result,
            Err(Error::TransactionControl { id: 1, .. } | Error::Failed { id: 1, .. })
        ),
        "{result:?}"
    );
}

#[test]
fn a_transaction_ended_by_sqlite_keeps_the_earlier_steps_of_the_run() {
    // "A failing migration stops the run; the ones before it stay applied",
    // also when the failure made SQLite roll back the run's transaction.
    let db = TempDb::new();
    let mut conn = db.open();
    let migrator = or_rollback_step(false);
    let result = migrator.migrate(&mut conn);
    assert!(
        matches!(
            result,
            Err(Error::Failed { id: 1, .. } | Error::TransactionControl { id: 1, .. })
        ),
        "{result:?}"
    );
    assert!(conn.is_autocommit());
    drop(conn);
    let conn = db.open();
    assert_eq!(tables(&conn), vec!["migrations", "t0"]);
    assert_eq!(tracking_ids(&conn, "migrations"), vec![0]);
    assert_eq!(user_version(&conn), 1);
}

#[test]
fn a_rollback_ending_the_transaction_is_refused() {
    let db = TempDb::new();
    let mut conn = db.open();
    let migrator = tables_migrator("", 1)
        .add(1, "m1", |tx: &Transaction<'_>| {
            tx.execute_batch("CREATE TABLE t1 (x)")
        })
        .add_rollback(1, |tx: &Transaction<'_>| -> rusqlite::Result<()> {
            tx.execute_batch("DROP TABLE t1")?;
            let _ignored = tx.execute_batch("COMMIT");
            Ok(())
        });
    migrator.migrate(&mut conn).unwrap();
    let before = dump(&conn);
    let error = migrator.rollback_migration(&mut conn).unwrap_err();
    assert!(
        matches!(
            &error,
            Error::TransactionControl {
                id: 1,
                direction: Direction::Down,
                ..
            }
        ),
        "{error:?}"
    );
    assert!(conn.is_autocommit());
    assert!(has_table(&conn, "t1"));
    assert_eq!(dump(&conn), before);
}

#[test]
fn savepoints_inside_a_migration_still_work() {
    let db = TempDb::new();
    let mut conn = db.open();
    let migrator = Migrator::new()
        .add(0, "with_savepoints", |tx: &Transaction<'_>| {
            tx.execute_batch(
                "SAVEPOINT a;
                 CREATE TABLE undone (x);
                 ROLLBACK TO a;
                 RELEASE a;
                 SAVEPOINT b;
                 CREATE TABLE kept (x);
                 SAVEPOINT c;
                 INSERT INTO kept VALUES (1);
                 RELEASE c;
                 RELEASE b;
                 SAVEPOINT left_open;
                 INSERT INTO kept VALUES (2);",
            )
        })
        .add(1, "nested_transaction_api", |tx: &Transaction<'_>| {
            // rusqlite's own savepoint API, on a connection borrowed from tx.
            let conn: &Connection = tx;
            conn.execute_batch("CREATE TABLE second (x)")?;
            conn.execute_batch(
                "SAVEPOINT inner; INSERT INTO second VALUES (1); ROLLBACK TO inner; RELEASE inner;",
            )
        });
    assert_eq!(migrator.migrate(&mut conn).unwrap().ids(), vec![0, 1]);
    assert!(conn.is_autocommit());
    assert_eq!(tables(&conn), vec!["kept", "migrations", "second"]);
    let kept: Vec<i64> = conn
        .prepare("SELECT x FROM kept ORDER BY x")
        .unwrap()
        .query_map([], |row| row.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(kept, vec![1, 2]);
    let second: i64 = conn
        .query_row("SELECT count(*) FROM second", [], |row| row.get(0))
        .unwrap();
    assert_eq!(second, 0);
    assert_eq!(tracking_ids(&conn, "migrations"), vec![0, 1]);
    drop(conn);
    // Committed for real.
    assert_eq!(tracking_ids(&db.open(), "migrations"), vec![0, 1]);
}

// ---------------------------------------------------------------- Panicked

fn panicking(ran_2: &Arc<AtomicUsize>) -> Migrator {
    let ran_2 = Arc::clone(ran_2);
    Migrator::new()
        .add(0, "m0", |tx: &Transaction<'_>| {
            tx.execute_batch("CREATE TABLE t0 (x)")
        })
        .add(
            1,
            "explodes",
            |tx: &Transaction<'_>| -> rusqlite::Result<()> {
                tx.execute_batch("CREATE TABLE t1 (x); INSERT INTO t0 VALUES ('from 1')")
                    .unwrap();
                panic!("boom in {}", "migration 1");
            },
        )
        .add(2, "m2", move |tx: &Transaction<'_>| {
            ran_2.fetch_add(1, Ordering::SeqCst);
            tx.execute_batch("CREATE TABLE t2 (x)")
        })
}

#[test]
fn a_panic_is_panicked_and_keeps_the_earlier_steps_of_the_run() {
    let db = TempDb::new();
    let mut conn = db.open();
    let ran_2 = Arc::new(AtomicUsize::new(0));
    let migrator = panicking(&ran_2);

    let error = migrator.migrate(&mut conn).unwrap_err();
    match &error {
        Error::Panicked {
            id,
            name,
            direction,
            message,
        } => {
            assert_eq!(
                (*id, name.as_str(), *direction),
                (1, "explodes", Direction::Up)
            );
            assert_eq!(message, "boom in migration 1");
        }
        other => panic!("expected Panicked, got {other:?}"),
    }
    assert!(error.to_string().contains("1 `explodes`"), "{error}");
    assert_eq!(ran_2.load(Ordering::SeqCst), 0);

    // The connection is usable and in autocommit mode.
    assert!(conn.is_autocommit());
    conn.execute_batch("CREATE TABLE after_panic (x); INSERT INTO after_panic VALUES (1);")
        .unwrap();
    drop(conn);

    let conn = db.open();
    assert_eq!(tables(&conn), vec!["after_panic", "migrations", "t0"]);
    assert_eq!(tracking_ids(&conn, "migrations"), vec![0]);
    let t0_rows: i64 = conn
        .query_row("SELECT count(*) FROM t0", [], |row| row.get(0))
        .unwrap();
    assert_eq!(t0_rows, 0, "the panicking migration's insert survived");
    assert_eq!(user_version(&conn), 1);
}

#[test]
fn a_panic_leaves_the_database_exactly_as_before_that_migration() {
    let db = TempDb::new();
    let mut conn = db.open();
    let migrator = panicking(&Arc::new(AtomicUsize::new(0)));
    migrator.migrate_to(&mut conn, 0).unwrap();
    conn.execute_batch("INSERT INTO t0 VALUES ('before')")
        .unwrap();
    let before = dump(&conn);

    assert!(matches!(
        migrator.migrate(&mut conn),
        Err(Error::Panicked { id: 1, .. })
    ));
    assert!(conn.is_autocommit());
    assert_eq!(dump(&conn), before);
    // And again: the failed attempt left nothing that trips the next one.
    assert!(matches!(
        migrator.migrate(&mut conn),
        Err(Error::Panicked { id: 1, .. })
    ));
    drop(conn);
    assert_eq!(dump_file(&db.path), before);
}

#[test]
fn a_panicking_rollback_leaves_everything_in_place() {
    let db = TempDb::new();
    let mut conn = db.open();
    let migrator = tables_migrator("", 1)
        .add(1, "m1", |tx: &Transaction<'_>| {
            tx.execute_batch("CREATE TABLE t1 (x)")
        })
        .add_rollback(1, |tx: &Transaction<'_>| -> rusqlite::Result<()> {
            tx.execute_batch("DROP TABLE t1").unwrap();
            std::panic::panic_any(17_u8);
        });
    migrator.migrate(&mut conn).unwrap();
    let before = dump(&conn);

    let error = migrator.rollback_all(&mut conn).unwrap_err();
    assert!(
        matches!(
            &error,
            Error::Panicked {
                id: 1,
                direction: Direction::Down,
                ..
            }
        ),
        "{error:?}"
    );
    assert!(conn.is_autocommit());
    assert_eq!(dump(&conn), before);
    assert!(has_table(&conn, "t1"));
    assert_eq!(tracking_ids(&conn, "migrations"), vec![0, 1]);
    conn.execute_batch("BEGIN; COMMIT;").unwrap();
}
