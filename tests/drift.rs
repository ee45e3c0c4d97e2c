//! Drift: a schema changed outside migrations is found, cheaply on the
//! up-to-date path when asked for, fully on demand, object by object; sets
//! sharing a file never flag each other; the default changes nothing.

mod common;

use std::sync::{Arc, Mutex};

use common::{read_bytes, TempDb};
use migrate_core::rusqlite::Transaction;
use migrate_core::{Drift, Error, Event, Migrator, ObjectKind, SchemaChange};

fn notes(set: &str) -> Migrator {
    Migrator::new()
        .set(set)
        .add(0, "notes", |tx: &Transaction| {
            tx.execute_batch("CREATE TABLE notes (body TEXT NOT NULL)")
        })
        .add(1, "notes_body", |tx: &Transaction| {
            tx.execute_batch("CREATE INDEX notes_body ON notes (body)")
        })
}

/// The names of the objects in `changes`, sorted.
fn names_of(changes: &[SchemaChange]) -> Vec<String> {
    let mut names: Vec<String> = changes.iter().map(|c| c.name().to_owned()).collect();
    names.sort_unstable();
    names
}

/// The names of the objects `m` finds drifted, sorted.
#[track_caller]
fn drifted(m: &Migrator, conn: &migrate_core::rusqlite::Connection) -> Vec<String> {
    names_of(&m.check_drift(conn).unwrap().expect("a recorded schema"))
}

fn tags(set: &str) -> Migrator {
    Migrator::new().set(set).add(0, "tags", |tx: &Transaction| {
        tx.execute_batch("CREATE TABLE tags (name TEXT)")
    })
}

#[test]
fn an_alter_by_hand_is_refused_listed_and_changes_nothing() {
    let db = TempDb::new();
    let mut conn = db.open();
    notes("a").drift(Drift::Refuse).migrate(&mut conn).unwrap();
    assert_eq!(notes("a").check_drift(&conn).unwrap(), Some(vec![]));
    conn.execute_batch("ALTER TABLE notes ADD COLUMN by_hand TEXT; DROP INDEX notes_body;")
        .unwrap();
    let before = read_bytes(&db.path);
    let error = notes("a")
        .drift(Drift::Refuse)
        .migrate(&mut conn)
        .unwrap_err();
    let Error::SchemaDrift { changes } = &error else {
        panic!("expected SchemaDrift, got {error:?}");
    };
    assert_eq!(changes.len(), 2, "{changes:#?}");
    assert!(changes.iter().any(|c| matches!(c,
        SchemaChange::Changed { kind: ObjectKind::Table, name, actual, .. }
            if name == "notes" && actual.contains("by_hand"))));
    assert!(changes.iter().any(|c| matches!(c,
        SchemaChange::Removed { kind: ObjectKind::Index, name, .. } if name == "notes_body")));
    let message = error.to_string();
    assert!(
        message.contains("notes") && message.contains("by_hand"),
        "{message}"
    );
    assert_eq!(read_bytes(&db.path), before, "nothing was written");
    // The full check on demand says the same.
    assert_eq!(notes("a").check_drift(&conn).unwrap().unwrap().len(), 2);
    // The default looks at nothing.
    assert!(notes("a").migrate(&mut conn).unwrap().is_empty());
}

#[test]
fn warn_reports_through_the_observer_and_carries_on() {
    let db = TempDb::new();
    let mut conn = db.open();
    Migrator::new()
        .set("w")
        .add(0, "notes", |tx: &Transaction| {
            tx.execute_batch("CREATE TABLE notes (body TEXT)")
        })
        .drift(Drift::Warn)
        .migrate(&mut conn)
        .unwrap();
    conn.execute_batch("CREATE TABLE by_hand (x)").unwrap();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let log = Arc::clone(&seen);
    let report = notes("w")
        .drift(Drift::Warn)
        .observer(move |event: &Event| {
            if let Event::Drift { changes } = event {
                log.lock()
                    .unwrap()
                    .extend(changes.iter().map(|c| c.name().to_owned()));
            }
        })
        .migrate(&mut conn)
        .unwrap();
    assert_eq!(report.ids(), vec![1], "it carried on");
    assert_eq!(*seen.lock().unwrap(), vec!["by_hand".to_owned()]);
    // That run recorded the schema it left, the hand-made table included.
    assert_eq!(notes("w").check_drift(&conn).unwrap(), Some(vec![]));
}

#[test]
fn sets_sharing_a_file_never_flag_each_other() {
    let db = TempDb::new();
    let mut conn = db.open();
    notes("a").drift(Drift::Refuse).migrate(&mut conn).unwrap();
    // Set b does not look for drift itself, but keeps the file's record.
    tags("b").migrate(&mut conn).unwrap();
    assert!(notes("a")
        .drift(Drift::Refuse)
        .migrate(&mut conn)
        .unwrap()
        .is_empty());
    assert_eq!(notes("a").check_drift(&conn).unwrap(), Some(vec![]));
}

/// A run that does not look for drift (another set's, or this set's with
/// the default) records its own changes, not the schema as it finds it: a
/// change made by hand before it stays drift for the sets that look.
#[test]
fn a_run_that_does_not_look_keeps_a_hand_change_as_drift() {
    let db = TempDb::new();
    let mut conn = db.open();
    notes("a")
        .drift(Drift::Refuse)
        .migrate_to(&mut conn, 0)
        .unwrap();
    conn.execute_batch(
        "ALTER TABLE notes ADD COLUMN by_hand TEXT;
         CREATE TABLE made_by_hand (x);",
    )
    .unwrap();
    // Another set, not looking: its own table is recorded, the hand
    // changes are not.
    assert_eq!(tags("b").migrate(&mut conn).unwrap().ids(), vec![0]);
    assert_eq!(drifted(&notes("a"), &conn), vec!["made_by_hand", "notes"]);
    // This set with the default: its index is recorded, the hand changes
    // are not.
    assert_eq!(notes("a").migrate(&mut conn).unwrap().ids(), vec![1]);
    assert_eq!(drifted(&notes("a"), &conn), vec!["made_by_hand", "notes"]);
    // A set that looks still refuses, on the up-to-date path too.
    let error = notes("a")
        .drift(Drift::Refuse)
        .migrate(&mut conn)
        .unwrap_err();
    let Error::SchemaDrift { changes } = &error else {
        panic!("expected SchemaDrift, got {error:?}");
    };
    assert_eq!(names_of(changes), vec!["made_by_hand", "notes"]);
    // Undone by hand: no drift left.
    conn.execute_batch("DROP TABLE made_by_hand; ALTER TABLE notes DROP COLUMN by_hand;")
        .unwrap();
    assert_eq!(notes("a").check_drift(&conn).unwrap(), Some(vec![]));
    assert!(notes("a")
        .drift(Drift::Refuse)
        .migrate(&mut conn)
        .unwrap()
        .is_empty());
    // A table dropped by hand stays dropped in the drift, and one that a
    // run drops is no drift.
    conn.execute_batch("DROP TABLE tags").unwrap();
    let dropper = tags("b").add(1, "drop_notes_index", |tx: &Transaction| {
        tx.execute_batch("DROP INDEX notes_body")
    });
    assert_eq!(dropper.migrate(&mut conn).unwrap().ids(), vec![1]);
    assert_eq!(drifted(&notes("a"), &conn), vec!["tags"]);
}

/// An object changed by hand and then by a run that does not look stays
/// drift: the run's change to it cannot be told from the hand's. Found by
/// a hostile probe: a column added by hand, then one by a migration, and
/// the hand's was recorded as migrations' work; the same for an index by
/// hand on a table a migration renamed (SQLite rewrites the index).
#[test]
fn a_run_changing_an_object_changed_by_hand_keeps_it_as_drift() {
    let db = TempDb::new();
    let mut conn = db.open();
    let m = Migrator::new()
        .set("d")
        .add(0, "notes", |tx: &Transaction| {
            tx.execute_batch("CREATE TABLE notes (body TEXT)")
        })
        .add(1, "add_z", |tx: &Transaction| {
            tx.execute_batch("ALTER TABLE notes ADD COLUMN z")
        })
        .add(2, "rename", |tx: &Transaction| {
            tx.execute_batch("ALTER TABLE notes RENAME TO memos")
        });
    m.clone()
        .drift(Drift::Refuse)
        .migrate_to(&mut conn, 0)
        .unwrap();
    conn.execute_batch("ALTER TABLE notes ADD COLUMN hand; CREATE INDEX by_hand ON notes (hand);")
        .unwrap();
    assert_eq!(m.migrate_to(&mut conn, 1).unwrap().ids(), vec![1]);
    assert_eq!(drifted(&m, &conn), vec!["by_hand", "notes"]);
    assert_eq!(m.migrate(&mut conn).unwrap().ids(), vec![2]);
    // `memos` is `notes` renamed (the same root page), changed by hand: not
    // recorded; `notes` stays as recorded; the index by hand, which the
    // rename rewrote, stays drift too.
    assert_eq!(drifted(&m, &conn), vec!["by_hand", "memos", "notes"]);
    let refused = m.clone().drift(Drift::Refuse).migrate(&mut conn);
    assert!(
        matches!(refused, Err(Error::SchemaDrift { .. })),
        "{refused:?}"
    );
}

/// A table changed by hand and then renamed by a run that does not look
/// (and made again under its old name): the renamed table is the same
/// object, still changed by hand, so it stays drift. Found by a hostile
/// probe: the hand's column was recorded as migrations' work under the new
/// name, and with the table made again the drift vanished.
#[test]
fn a_table_changed_by_hand_then_renamed_by_a_run_stays_drift() {
    let db = TempDb::new();
    let mut conn = db.open();
    let a = Migrator::new().set("a").add(0, "t", |tx: &Transaction| {
        tx.execute_batch("CREATE TABLE t (a)")
    });
    a.clone().drift(Drift::Refuse).migrate(&mut conn).unwrap();
    conn.execute_batch("ALTER TABLE t ADD COLUMN h_by_hand")
        .unwrap();
    let b = Migrator::new()
        .set("b")
        .add(0, "archive", |tx: &Transaction| {
            tx.execute_batch("ALTER TABLE t RENAME TO t_archive; CREATE TABLE t (a);")
        });
    assert_eq!(b.migrate(&mut conn).unwrap().ids(), vec![0]);
    assert_eq!(drifted(&a, &conn), vec!["t_archive"]);
    let refused = a.clone().drift(Drift::Refuse).migrate(&mut conn);
    assert!(
        matches!(refused, Err(Error::SchemaDrift { .. })),
        "{refused:?}"
    );
}

/// The same when the run also drops and makes again an unrelated table
/// (on another root page), and alters the renamed one. Found by a hostile
/// probe: one moved page switched root pages off for the whole run.
#[test]
fn a_table_changed_by_hand_then_renamed_and_altered_beside_a_recreated_table_stays_drift() {
    let db = TempDb::new();
    let mut conn = db.open();
    let a = Migrator::new()
        .set("a")
        .add(0, "tables", |tx: &Transaction| {
            tx.execute_batch(
                "CREATE TABLE log (x);
             WITH RECURSIVE s(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM s WHERE i < 2000)
             INSERT INTO log SELECT printf('%050d', i) FROM s;
             CREATE TABLE junk (x);
             CREATE TABLE t (a);",
            )
        });
    a.clone().drift(Drift::Refuse).migrate(&mut conn).unwrap();
    conn.execute_batch("ALTER TABLE t ADD COLUMN h_by_hand")
        .unwrap();
    let b = Migrator::new()
        .set("b")
        .add(0, "archive", |tx: &Transaction| {
            tx.execute_batch(
                "DROP TABLE log; CREATE TABLE filler (x); CREATE TABLE log (x);
             ALTER TABLE t RENAME TO t_archive; ALTER TABLE t_archive ADD COLUMN archived_at;
             CREATE TABLE t (a);",
            )
        });
    assert_eq!(b.migrate(&mut conn).unwrap().ids(), vec![0]);
    assert!(drifted(&a, &conn).contains(&"t_archive".to_owned()));
}

/// The same when a VACUUM in a step outside a transaction moves every
/// table's root page: the renamed table is found by its definition. Found
/// by a hostile probe: the hand's column was recorded as migrations' work.
#[test]
fn a_table_changed_by_hand_then_renamed_and_vacuumed_stays_drift() {
    let db = TempDb::new();
    let mut conn = db.open();
    let a = Migrator::new().set("a").add(0, "t", |tx: &Transaction| {
        tx.execute_batch("CREATE TABLE junk (x); CREATE TABLE t (a);")
    });
    a.clone().drift(Drift::Refuse).migrate(&mut conn).unwrap();
    conn.execute_batch("ALTER TABLE t ADD COLUMN h_by_hand")
        .unwrap();
    let b = Migrator::new().set("b").add_without_transaction(
        0,
        "archive_and_vacuum",
        |conn: &migrate_core::rusqlite::Connection| {
            conn.execute_batch(
                "DROP TABLE junk; ALTER TABLE t RENAME TO t_archive; CREATE TABLE t (a); VACUUM;",
            )
        },
    );
    assert_eq!(b.migrate(&mut conn).unwrap().ids(), vec![0]);
    assert_eq!(drifted(&a, &conn), vec!["t_archive"]);
}

/// The same for a step outside a transaction, recorded in a transaction
/// of its own after it ran.
#[test]
fn a_step_outside_a_transaction_that_does_not_look_keeps_a_hand_change_as_drift() {
    let db = TempDb::new();
    let mut conn = db.open();
    notes("a").drift(Drift::Refuse).migrate(&mut conn).unwrap();
    conn.execute_batch("CREATE TABLE made_by_hand (x)").unwrap();
    let outside = Migrator::new().set("b").add_without_transaction(
        0,
        "vacuum_and_log",
        |conn: &migrate_core::rusqlite::Connection| {
            conn.execute_batch("VACUUM; CREATE TABLE log (line TEXT);")
        },
    );
    assert_eq!(outside.migrate(&mut conn).unwrap().ids(), vec![0]);
    assert_eq!(drifted(&notes("a"), &conn), vec!["made_by_hand"]);
}

#[test]
fn a_change_that_leaves_the_schema_as_it_was_is_no_drift() {
    let db = TempDb::new();
    let mut conn = db.open();
    notes("a").drift(Drift::Refuse).migrate(&mut conn).unwrap();
    let cookie = |conn: &migrate_core::rusqlite::Connection| -> i64 {
        conn.query_row("PRAGMA schema_version", [], |r| r.get(0))
            .unwrap()
    };
    let before = cookie(&conn);
    conn.execute_batch(
        "DROP INDEX notes_body; CREATE INDEX notes_body ON notes (body);
         CREATE TEMP TABLE scratch (x);",
    )
    .unwrap();
    assert_ne!(cookie(&conn), before, "the cookie moved");
    assert!(notes("a")
        .drift(Drift::Refuse)
        .migrate(&mut conn)
        .unwrap()
        .is_empty());
}

#[test]
fn a_database_without_a_recorded_schema_has_no_drift_until_it_is_recorded() {
    let db = TempDb::new();
    let mut conn = db.open();
    // The default looks at nothing and records nothing: no table of it.
    notes("a").migrate(&mut conn).unwrap();
    assert!(!common::has_table(&conn, "migrate_core_schema"));
    assert_eq!(notes("a").check_drift(&conn).unwrap(), None);
    assert!(notes("a")
        .drift(Drift::Refuse)
        .migrate(&mut conn)
        .unwrap()
        .is_empty());
    // The next run of migrations that looks records it.
    tags("b").drift(Drift::Warn).migrate(&mut conn).unwrap();
    assert_eq!(notes("a").check_drift(&conn).unwrap(), Some(vec![]));
}

#[test]
fn the_recorded_schema_is_not_the_users_schema() {
    let db = TempDb::new();
    let mut conn = db.open();
    notes("a").drift(Drift::Warn).migrate(&mut conn).unwrap();
    // The record is one of migrate-core's tables: left out of schema
    // snapshots and protected from migrations like the tracking tables.
    let writes_it = Migrator::new()
        .set("sneaky")
        .add(0, "x", |tx: &Transaction| {
            tx.execute_batch("DELETE FROM migrate_core_schema")
        });
    assert!(matches!(
        writes_it.migrate(&mut conn),
        Err(Error::Forbidden { .. })
    ));
}
