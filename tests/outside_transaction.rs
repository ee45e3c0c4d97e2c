//! Steps outside a transaction (`#[migration(n, transaction = false)]`,
//! `Migrator::add_without_transaction`): what SQLite refuses inside one
//! works; the step is recorded as started before it runs and as done after;
//! a process killed in between leaves a state that every later call reports
//! (`Error::Interrupted`) until `resolve_interrupted` says how it ended; and
//! processes racing over a run that contains one apply it exactly once.
//!
//! Every step appends `(id, pid)` to a side table `ran` without a unique
//! constraint, in autocommit mode for the steps outside a transaction, so a
//! step run twice shows as a second row.

mod common;
#[path = "support/process.rs"]
mod process;

use std::path::Path;
use std::time::Duration;

use common::{tracking_ids, TempDb};
use migrate_core::rusqlite::{self, Connection, Transaction};
use migrate_core::{
    embed_migrations, migration, rollback, Direction, Error, Event, MigrationState, Migrator,
    Resolution,
};
use process::{child_command, child_role, env, report};

// ------------------------------------------------------------ link-time steps

#[migration(0, set = "linked")]
fn create_notes(tx: &Transaction) -> rusqlite::Result<()> {
    tx.execute_batch("CREATE TABLE notes (body TEXT); INSERT INTO notes VALUES ('a'), ('b');")
}

#[migration(1, set = "linked", transaction = false)]
fn switch_to_wal(conn: &Connection) -> rusqlite::Result<()> {
    let mode: String = conn.query_row("PRAGMA journal_mode = WAL", [], |r| r.get(0))?;
    assert_eq!(mode, "wal");
    conn.execute_batch("DELETE FROM notes WHERE body = 'b'; VACUUM")
}

#[rollback(1, set = "linked", transaction = false)]
fn back_to_delete(conn: &Connection) -> rusqlite::Result<()> {
    conn.query_row("PRAGMA journal_mode = DELETE", [], |_| Ok(()))
}

#[migration(2, set = "linked")]
fn add_index(tx: &Transaction) -> rusqlite::Result<()> {
    tx.execute_batch("CREATE INDEX notes_body ON notes (body)")
}

#[rollback(2, set = "linked")]
fn drop_index(tx: &Transaction) -> rusqlite::Result<()> {
    tx.execute_batch("DROP INDEX notes_body")
}

fn journal_mode(conn: &Connection) -> String {
    conn.query_row("PRAGMA journal_mode", [], |r| r.get(0))
        .unwrap()
}

#[test]
fn vacuum_and_journal_mode_run_outside_a_transaction_between_transactional_steps() {
    let db = TempDb::new();
    let mut conn = db.open();
    let m = Migrator::new().set("linked");
    assert_eq!(m.migrate(&mut conn).unwrap().ids(), vec![0, 1, 2]);
    assert_eq!(journal_mode(&conn), "wal");
    assert_eq!(tracking_ids(&conn, "migrations_linked"), vec![0, 1, 2]);
    assert!(m.migrate(&mut conn).unwrap().is_empty(), "up to date");
    assert!(conn.is_autocommit());

    // Down through the rollback outside a transaction.
    assert_eq!(m.rollback_to(&mut conn, 0).unwrap().ids(), vec![2, 1]);
    assert_eq!(journal_mode(&conn), "delete");
    assert_eq!(tracking_ids(&conn, "migrations_linked"), vec![0]);
    assert_eq!(m.migrate(&mut conn).unwrap().ids(), vec![1, 2]);
}

#[test]
fn a_dry_run_stops_before_a_step_outside_a_transaction() {
    let db = TempDb::new();
    let mut conn = db.open();
    let dry = Migrator::new().set("linked").dry_run(&mut conn).unwrap();
    assert_eq!(dry.steps.len(), 1);
    assert_eq!(dry.stopped_before, Some(1));
    assert_eq!(journal_mode(&conn), "delete", "nothing of it ran");
}

// ------------------------------------------------------------ SQL files

// sqlx's `-- no-transaction` first line.
embed_migrations!(
    "tests/fixtures/sql/outside_transaction",
    set = "sqlx",
    ids = "sorted"
);
// goose's `-- +goose NO TRANSACTION`.
embed_migrations!(
    "tests/fixtures/sql/outside_transaction_goose",
    set = "goose",
    ids = "sorted"
);

#[test]
fn sql_files_marked_no_transaction_run_outside_one_both_ways() {
    for set in ["sqlx", "goose"] {
        let db = TempDb::new();
        let mut conn = db.open();
        let m = Migrator::new().set(set);
        assert_eq!(m.migrate(&mut conn).unwrap().ids(), vec![0, 1], "{set}");
        assert_eq!(journal_mode(&conn), "wal", "{set}");
        assert_eq!(
            m.rollback_migration(&mut conn).unwrap().map(|r| r.id),
            Some(1)
        );
        assert_eq!(journal_mode(&conn), "delete", "{set}");
        assert_eq!(m.migrate(&mut conn).unwrap().ids(), vec![1], "{set}");
    }
}

// ------------------------------------------------------------ run-time steps

/// 0 and 2 in transactions, 1 outside: each appends to `ran`; 1 then
/// sleeps `MIGRATE_SLEEP_MS`.
fn runtime_migrator() -> Migrator {
    migrator_failing_at_1(false)
}

/// The same, with step 1 failing after its first write when `fail`.
fn migrator_failing_at_1(fail: bool) -> Migrator {
    fn note(conn: &Connection, id: u32) -> rusqlite::Result<()> {
        conn.execute(
            "INSERT INTO ran (id, pid) VALUES (?1, ?2)",
            (id, std::process::id()),
        )
        .map(|_| ())
    }
    Migrator::new()
        .set("runtime")
        .add(0, "create_ran", |tx: &Transaction| {
            tx.execute_batch("CREATE TABLE IF NOT EXISTS ran (id INTEGER, pid INTEGER)")?;
            note(tx, 0)?;
            checkpoint("step-0");
            Ok::<(), rusqlite::Error>(())
        })
        .add_without_transaction(1, "outside", move |conn: &Connection| {
            checkpoint("step-1-begun");
            note(conn, 1)?;
            checkpoint("step-1-half");
            if let Ok(ms) = std::env::var("MIGRATE_SLEEP_MS") {
                std::thread::sleep(Duration::from_millis(ms.parse().unwrap_or(0)));
            }
            if fail {
                return Err(rusqlite::Error::InvalidQuery);
            }
            conn.execute_batch("VACUUM")?;
            checkpoint("step-1-done");
            Ok(())
        })
        .add(2, "after", |tx: &Transaction| note(tx, 2))
        .add_rollback(2, |tx: &Transaction| {
            tx.execute_batch("DELETE FROM ran WHERE id = 2")
        })
        .add_rollback_without_transaction(1, |conn: &Connection| {
            checkpoint("rollback-1-begun");
            conn.execute_batch("DELETE FROM ran WHERE id = 1")?;
            checkpoint("rollback-1-done");
            Ok::<(), rusqlite::Error>(())
        })
}

/// The run-time migrator for the kill tests' calls after the kill: a
/// short lock timeout, so that a lock left behind fails fast.
fn quick() -> Migrator {
    runtime_migrator().lock_timeout(Duration::from_millis(300))
}

fn ran(conn: &Connection) -> Vec<u32> {
    let mut stmt = conn.prepare("SELECT id FROM ran ORDER BY id").unwrap();
    let ids = stmt.query_map([], |r| r.get(0)).unwrap();
    ids.collect::<Result<_, _>>().unwrap()
}

#[test]
fn a_failing_step_outside_a_transaction_says_what_was_not_undone() {
    let db = TempDb::new();
    let mut conn = db.open();
    let error = migrator_failing_at_1(true).migrate(&mut conn).unwrap_err();
    assert!(matches!(error, Error::Failed { id: 1, .. }), "{error:?}");
    let message = error.to_string();
    assert!(message.contains("outside a transaction"), "{message}");
    assert!(!message.contains("was rolled back"), "{message}");
    // What it did before failing stays; it is not recorded as applied.
    assert_eq!(ran(&conn), vec![0, 1]);
    assert_eq!(tracking_ids(&conn, "migrations_runtime"), vec![0]);
    // Run again, it runs again (its failure was reported, not hidden).
    assert_eq!(
        runtime_migrator().migrate(&mut conn).unwrap().ids(),
        vec![1, 2]
    );
    assert_eq!(ran(&conn), vec![0, 1, 1, 2]);
}

#[test]
fn a_step_outside_a_transaction_may_not_write_the_tracking_table_either() {
    let db = TempDb::new();
    let mut conn = db.open();
    let m = Migrator::new()
        .set("sneaky")
        .add(0, "a", |tx: &Transaction| {
            tx.execute_batch("CREATE TABLE a (x)")
        })
        .add_without_transaction(1, "b", |conn: &Connection| {
            let _ = conn.execute_batch("DELETE FROM migrations_sneaky");
            Ok::<(), rusqlite::Error>(())
        });
    let error = m.migrate(&mut conn).unwrap_err();
    assert!(matches!(error, Error::Forbidden { id: 1, .. }), "{error:?}");
    assert_eq!(tracking_ids(&conn, "migrations_sneaky"), vec![0]);
}

// ------------------------------------------------------------ kill -9

fn checkpoint(label: &str) {
    if std::env::var("MIGRATE_KILL_AT").is_ok_and(|at| at == label) {
        process::mark_and_hang(Path::new(&env("MIGRATE_MARKER")));
    }
}

#[test]
fn child_process_entry() {
    let Some(role) = child_role() else { return };
    let mut conn = Connection::open(env("MIGRATE_DB")).unwrap();
    let m = runtime_migrator()
        .lock_timeout(Duration::from_secs(60))
        .observer(|event: &Event| {
            if let Event::Started { id: 1, .. } = event {
                checkpoint("step-1-started");
            }
        });
    match role.as_str() {
        "migrate" => match m.migrate(&mut conn) {
            Ok(report_) => report(&format!("ok {:?}", report_.ids())),
            Err(e) => report(&format!("err {e:#}")),
        },
        // Rolls back 2, then 1 (outside a transaction).
        "rollback" => match m.rollback_to(&mut conn, 0) {
            Ok(report_) => report(&format!("ok {:?}", report_.ids())),
            Err(e) => report(&format!("err {e:#}")),
        },
        other => panic!("unknown role {other}"),
    }
}

/// Runs a child that migrates and is killed at `label`.
fn kill_at(db: &TempDb, label: &str) {
    kill_in(db, "migrate", label);
}

/// Runs a child in `role` and kills it at `label`.
fn kill_in(db: &TempDb, role: &str, label: &str) {
    process::kill_when_marked(
        child_command(role)
            .env("MIGRATE_DB", &db.path)
            .env("MIGRATE_KILL_AT", label),
        &db.dir.path().join(format!("marker-{label}")),
    )
    .expect("the child reaches the kill point");
}

/// Step 1 of the run-time migrator interrupted in `direction`: every call
/// reports it, naming the step, and changes nothing, until
/// `resolve_interrupted` records `resolution`, once.
fn reported_until_resolved(
    conn: &mut Connection,
    label: &str,
    direction: Direction,
    resolution: Resolution,
) {
    let m = quick();
    for error in [
        m.migrate(conn).unwrap_err(),
        m.rollback_migration(conn).unwrap_err(),
        m.pending_migrations(conn).unwrap_err(),
        // (It said the table "already records 2 applied migration(s)".)
        m.baseline(conn, 1).unwrap_err(),
    ] {
        match &error {
            Error::Interrupted {
                id: 1,
                name,
                direction: found,
                ..
            } if *found == direction => assert_eq!(name, "outside"),
            other => panic!("{label}: expected Interrupted ({direction:?}), got {other:?}"),
        }
        assert!(error.to_string().contains("resolve_interrupted"), "{error}");
    }
    assert_eq!(
        m.status(conn).unwrap()[1].state,
        MigrationState::Interrupted { direction }
    );
    // Not applied, as `status` says (a hostile probe found it listed as
    // applied, and `last_applied_migration` naming it).
    let applied: Vec<u32> = m
        .applied_migrations(conn)
        .unwrap()
        .iter()
        .map(|a| a.id)
        .collect();
    assert_eq!(applied, vec![0], "{label}");
    assert_eq!(
        m.last_applied_migration(conn).unwrap().map(|a| a.id),
        Some(0)
    );
    assert_eq!(m.resolve_interrupted(conn, resolution).unwrap(), Some(1));
    assert_eq!(m.resolve_interrupted(conn, resolution).unwrap(), None);
}

#[test]
fn sigkill_at_every_point_of_a_step_outside_a_transaction() {
    // Before the start mark (in step 0's transaction): nothing of the run
    // was committed, nothing is reported, the next run does it all.
    {
        let db = TempDb::new();
        kill_at(&db, "step-0");
        let mut conn = db.open();
        assert!(!common::has_table(&conn, "ran"), "step 0 was not committed");
        assert_eq!(quick().migrate(&mut conn).unwrap().ids(), vec![0, 1, 2]);
        assert_eq!(ran(&conn), vec![0, 1, 2]);
    }

    // After the start mark: (kill point, side effects on disk, resolution).
    let points: [(&str, Vec<u32>, Resolution); 4] = [
        // Marked started, its code not begun: none of it took effect.
        ("step-1-started", vec![0], Resolution::NotRun),
        ("step-1-begun", vec![0], Resolution::NotRun),
        // Half done: here the operator decides the rest is not needed.
        ("step-1-half", vec![0, 1], Resolution::Completed),
        // Done, not recorded as done.
        ("step-1-done", vec![0, 1], Resolution::Completed),
    ];
    for (label, ran_after_kill, resolution) in points {
        let db = TempDb::new();
        kill_at(&db, label);
        let mut conn = db.open();
        assert_eq!(
            ran(&conn),
            ran_after_kill,
            "{label}: side effects after the kill"
        );
        let rows = tracking_ids(&conn, "migrations_runtime");
        assert_eq!(rows, vec![0, 1], "{label}: step 0 applied, step 1 marked");
        reported_until_resolved(&mut conn, label, Direction::Up, resolution);
        assert_eq!(ran(&conn), ran_after_kill, "{label}: nothing ran meanwhile");
        let applied = quick().migrate(&mut conn).unwrap().ids();
        match resolution {
            Resolution::NotRun => assert_eq!(applied, vec![1, 2], "{label}"),
            Resolution::Completed => assert_eq!(applied, vec![2], "{label}"),
        }
        // Step 1 ran exactly once in total, or as often as the operator
        // said (NotRun after a kill before it began: once).
        let ones = ran(&conn).iter().filter(|id| **id == 1).count();
        assert_eq!(ones, 1, "{label}: step 1 ran {ones} times");
        assert_eq!(tracking_ids(&conn, "migrations_runtime"), vec![0, 1, 2]);
        let integrity: String = conn
            .query_row("PRAGMA integrity_check", [], |r| r.get(0))
            .unwrap();
        assert_eq!(integrity, "ok");
    }
}

/// The same for a rollback outside a transaction: the row is marked as
/// rolling back before it runs, so a kill leaves `Interrupted` (direction
/// down) until resolved; `NotRun` keeps the migration applied, `Completed`
/// removes its row.
#[test]
fn sigkill_while_rolling_back_a_step_outside_a_transaction() {
    // (kill point, side effects on disk, resolution, applied after it).
    let points: [(&str, Vec<u32>, Resolution, Vec<i64>); 2] = [
        (
            "rollback-1-begun",
            vec![0, 1],
            Resolution::NotRun,
            vec![0, 1],
        ),
        ("rollback-1-done", vec![0], Resolution::Completed, vec![0]),
    ];
    for (label, ran_after_kill, resolution, applied) in points {
        let db = TempDb::new();
        quick().migrate(&mut db.open()).unwrap();
        kill_in(&db, "rollback", label);
        let mut conn = db.open();
        assert_eq!(ran(&conn), ran_after_kill, "{label}: side effects");
        assert_eq!(
            tracking_ids(&conn, "migrations_runtime"),
            vec![0, 1],
            "{label}: 2 rolled back, 1 marked"
        );
        reported_until_resolved(&mut conn, label, Direction::Down, resolution);
        assert_eq!(ran(&conn), ran_after_kill, "{label}: nothing ran meanwhile");
        assert_eq!(
            tracking_ids(&conn, "migrations_runtime"),
            applied,
            "{label}"
        );
        let pending: Vec<u32> = (applied.len() as u32..3).collect();
        assert_eq!(
            quick().migrate(&mut conn).unwrap().ids(),
            pending,
            "{label}"
        );
        assert_eq!(tracking_ids(&conn, "migrations_runtime"), vec![0, 1, 2]);
    }
}

#[test]
fn eight_processes_racing_apply_a_step_outside_a_transaction_exactly_once() {
    let rounds = if process::long_run() { 20 } else { 3 };
    for round in 0..rounds {
        let db = TempDb::new();
        drop(db.open());
        let children: Vec<_> = (0..8)
            .map(|_| {
                let mut cmd = child_command("migrate");
                cmd.env("MIGRATE_DB", &db.path)
                    .env("MIGRATE_SLEEP_MS", "150");
                cmd.spawn().expect("spawn")
            })
            .collect();
        let mut applied_by = Vec::new();
        for child in children {
            let finished = process::wait_with_timeout(child, Duration::from_secs(120));
            let result = finished.result();
            assert!(
                result.starts_with("ok"),
                "round {round}: {}",
                finished.describe()
            );
            applied_by.push(result);
        }
        let conn = db.open();
        assert_eq!(ran(&conn), vec![0, 1, 2], "round {round}: {applied_by:?}");
        assert_eq!(tracking_ids(&conn, "migrations_runtime"), vec![0, 1, 2]);
    }
}

/// What a step outside a transaction leaves in the history once it has run
/// is what any step leaves: the plan's chain, `user_version` (the default
/// set only, both ways), and the schema record that drift detection reads.
#[test]
fn a_step_outside_a_transaction_is_recorded_as_any_step_is() {
    fn outside_last(set: &str) -> Migrator {
        Migrator::new()
            .set(set)
            .add(0, "first", |tx: &Transaction| {
                tx.execute_batch("CREATE TABLE first (x)")
            })
            .add_without_transaction(1, "outside", |conn: &Connection| {
                conn.execute_batch("CREATE TABLE outside (x); VACUUM")
            })
            .add_rollback_without_transaction(1, |conn: &Connection| {
                conn.execute_batch("DROP TABLE outside")
            })
    }
    fn user_version(conn: &Connection) -> i64 {
        conn.query_row("PRAGMA user_version", [], |r| r.get(0))
            .unwrap()
    }
    fn chains(conn: &Connection, table: &str) -> Vec<(i64, String)> {
        let mut stmt = conn
            .prepare(&format!("SELECT id, chain FROM {table} ORDER BY id"))
            .unwrap();
        let rows = stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?))).unwrap();
        rows.collect::<Result<_, _>>().unwrap()
    }

    // The default set mirrors the count in user_version.
    let db = TempDb::new();
    let mut conn = db.open();
    let m = outside_last("");
    assert_eq!(m.migrate(&mut conn).unwrap().ids(), vec![0, 1]);
    assert_eq!(user_version(&conn), 2);
    // The chain the plan gives row 1, as `baseline` writes it.
    let reference = TempDb::new();
    let mut reference_conn = reference.open();
    m.baseline(&mut reference_conn, 1).unwrap();
    assert_eq!(
        chains(&conn, "migrations"),
        chains(&reference_conn, "migrations")
    );
    m.rollback_migration(&mut conn).unwrap();
    assert_eq!(user_version(&conn), 1);
    assert_eq!(tracking_ids(&conn, "migrations"), vec![0]);

    // A named set never touches it.
    let db = TempDb::new();
    let mut conn = db.open();
    let m = outside_last("outside_named");
    m.migrate(&mut conn).unwrap();
    m.rollback_migration(&mut conn).unwrap();
    assert_eq!(user_version(&conn), 0);

    // A set whose only step runs outside a transaction starts the schema
    // record: a later hand change is drift.
    let db = TempDb::new();
    let mut conn = db.open();
    let m = Migrator::new()
        .set("outside_drift")
        .drift(migrate_core::Drift::Refuse)
        .add_without_transaction(0, "only", |conn: &Connection| {
            conn.execute_batch("CREATE TABLE only_table (x)")
        });
    m.migrate(&mut conn).unwrap();
    conn.execute_batch("ALTER TABLE only_table ADD COLUMN by_hand TEXT")
        .unwrap();
    let result = m.migrate(&mut conn);
    assert!(
        matches!(result, Err(Error::SchemaDrift { .. })),
        "expected SchemaDrift, got {:?}",
        result.map(|r| r.ids())
    );
}

/// An observer that panics as a step outside a transaction is about to run
/// leaves no mark behind: the step never ran, so the next call runs it
/// (rather than waiting on the mark and reporting `Interrupted`).
#[test]
fn an_observer_panicking_before_a_step_outside_a_transaction_leaves_no_mark() {
    let db = TempDb::new();
    let mut conn = db.open();
    let panicking = quick().observer(|event| {
        if let Event::Started { id: 1, .. } = event {
            panic!("the observer panics");
        }
    });
    let unwound = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        let _ = panicking.migrate(&mut conn);
    }));
    assert!(
        unwound.is_err(),
        "the observer's panic goes on to the caller"
    );
    assert!(conn.is_autocommit());
    assert_eq!(ran(&conn), vec![0], "step 1 never ran");
    assert_eq!(tracking_ids(&conn, "migrations_runtime"), vec![0]);
    assert_eq!(quick().migrate(&mut conn).unwrap().ids(), vec![1, 2]);
    assert_eq!(ran(&conn), vec![0, 1, 2]);
}

/// A step outside a transaction may set any pragma, `query_only` too: it
/// is recorded as done all the same (not left marked as in progress), and
/// the connection is handed back as it was.
#[test]
fn a_step_outside_a_transaction_turning_query_only_on_is_recorded() {
    let db = TempDb::new();
    let mut conn = db.open();
    let m = Migrator::new()
        .set("outside_query_only")
        .add_without_transaction(0, "read_only_now", |conn: &Connection| {
            conn.execute_batch("CREATE TABLE made (x); PRAGMA query_only = ON;")
        })
        .add(1, "after", |tx: &Transaction| {
            tx.execute_batch("CREATE TABLE after (x)")
        });
    assert_eq!(m.migrate(&mut conn).unwrap().ids(), vec![0, 1]);
    let query_only: i64 = conn
        .query_row("PRAGMA query_only", [], |r| r.get(0))
        .unwrap();
    assert_eq!(query_only, 0);
    assert_eq!(
        tracking_ids(&conn, "migrations_outside_query_only"),
        vec![0, 1]
    );
    assert!(m.migrate(&mut conn).unwrap().ids().is_empty());
}

/// A step outside a transaction may `ATTACH`, but not reach the tracking
/// table through `main`'s own file attached under another name.
#[test]
fn a_step_outside_a_transaction_cannot_write_the_history_through_main_attached_again() {
    let db = TempDb::new();
    let mut conn = db.open();
    let path = db.path.to_string_lossy().replace('\'', "''");
    let base = Migrator::new()
        .set("alias")
        .add(0, "first", |tx: &Transaction| {
            tx.execute_batch("CREATE TABLE first (x)")
        });
    base.migrate(&mut conn).unwrap();
    let before = tracking_ids(&conn, "migrations_alias");
    let m = base.add_without_transaction(1, "forger", move |conn: &Connection| {
        conn.execute_batch(&format!(
            "ATTACH '{path}' AS again;
             UPDATE again.migrations_alias SET name = 'forged', checksum = 'x' WHERE id = 0;"
        ))
    });
    let result = m.migrate(&mut conn);
    assert!(
        matches!(
            result,
            Err(Error::Failed { id: 1, .. } | Error::Forbidden { id: 1, .. })
        ),
        "{:?}",
        result.map(|r| r.ids())
    );
    assert_eq!(tracking_ids(&conn, "migrations_alias"), before);
    let name: String = conn
        .query_row("SELECT name FROM migrations_alias WHERE id = 0", [], |r| {
            r.get(0)
        })
        .unwrap();
    assert_eq!(name, "first");
    // The database it attached is detached again.
    let attached: i64 = conn
        .query_row(
            "SELECT count(*) FROM pragma_database_list WHERE name = 'again'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(attached, 0);
}

/// Only `main`'s own file is detached right after a step outside a
/// transaction: a database it attached from another file stays for the
/// steps after it, which may write there; the call detaches it at its end,
/// as it puts every connection setting back.
#[test]
fn a_database_a_step_outside_a_transaction_attaches_stays_for_the_steps_after_it() {
    let db = TempDb::new();
    let other = TempDb::new();
    let mut conn = db.open();
    let path = other.path.to_string_lossy().replace('\'', "''");
    let m = Migrator::new()
        .set("keeps_attached")
        .add_without_transaction(0, "attach_archive", move |conn: &Connection| {
            conn.execute_batch(&format!(
                "ATTACH '{path}' AS archive; CREATE TABLE archive.kept (x);"
            ))
        })
        .add(1, "fill_archive", |tx: &Transaction| {
            tx.execute_batch("INSERT INTO archive.kept VALUES (1)")
        });
    assert_eq!(m.migrate(&mut conn).unwrap().ids(), vec![0, 1]);
    assert_eq!(tracking_ids(&conn, "migrations_keeps_attached"), vec![0, 1]);
    let attached: i64 = conn
        .query_row(
            "SELECT count(*) FROM pragma_database_list WHERE name = 'archive'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(attached, 0);
    let kept: i64 = other
        .open()
        .query_row("SELECT count(*) FROM kept", [], |r| r.get(0))
        .unwrap();
    assert_eq!(kept, 1);
}
