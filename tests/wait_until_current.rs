//! `Migrator::wait_until_current`: an instance that must not migrate waits,
//! reading only, until another process has applied every migration it
//! knows; a history `migrate` would refuse is refused at once; a database
//! nobody migrates is `Error::NotCurrent` after the timeout.
//!
//! Real processes on a real file: the parent re-executes this test binary
//! as a waiter (on a read-only connection) and as a migrator (see
//! `tests/support/process.rs`); the migrator's steps block on files the
//! parent creates, so the parent decides when each step may finish and
//! checks that the waiter is still waiting while any step is not done.

mod common;
#[path = "support/process.rs"]
mod process;

use std::path::Path;
use std::process::Child;
use std::time::{Duration, Instant};

use migrate_core::rusqlite::{Connection, OpenFlags, Transaction};
use migrate_core::{Error, Migrator};

use common::{has_table, new_db, tracking_ids_or_empty};
use process::{child_command, child_role, env, report, wait_for_file, wait_with_timeout};

const TABLE: &str = "migrations_w";

/// Blocks a step until the parent opens its gate: announces `MIGRATE_IN_<n>`
/// and waits for `MIGRATE_GATE_<n>`, when the environment names them (only
/// in the migrator child).
fn gate(n: u32) {
    if let (Ok(inside), Ok(gate)) = (
        std::env::var(format!("MIGRATE_IN_{n}")),
        std::env::var(format!("MIGRATE_GATE_{n}")),
    ) {
        process::touch(Path::new(&inside));
        process::block_until_exists(Path::new(&gate), Duration::from_secs(60));
    }
}

/// The set both processes know: 0 in a transaction; 1 outside a transaction
/// (its start mark is committed before it runs, so waiters meet
/// `Interrupted` while it runs); 2 in a transaction of its own, after 0 and
/// 1 are committed. 1 and 2 block on their gates.
fn migrator() -> Migrator {
    Migrator::new()
        .set("w")
        .add(0, "create_a", |tx: &Transaction| {
            tx.execute_batch("CREATE TABLE a (x)")
        })
        .add_without_transaction(1, "create_b_outside", |conn: &Connection| {
            gate(1);
            if std::env::var_os("MIGRATE_HANG_IN_1").is_some() {
                process::mark_and_hang(Path::new(&env("MIGRATE_HANG_IN_1")));
            }
            conn.execute_batch("CREATE TABLE b (x)")
        })
        .add(2, "create_c", |tx: &Transaction| {
            gate(2);
            tx.execute_batch("CREATE TABLE c (x)")
        })
}

/// A set whose one migration writes enough to spill pages to the file
/// before its COMMIT, and (in the child) then waits to be killed: a hot
/// journal is left for the next writer to roll back.
fn spilling_migrator(wait_for_kill: bool) -> Migrator {
    Migrator::new()
        .set("hot")
        .add(0, "fill", move |tx: &Transaction| {
            tx.execute_batch(
                "CREATE TABLE filled (pad TEXT);
             WITH RECURSIVE s(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM s WHERE i < 20000)
             INSERT INTO filled SELECT printf('%0100d', i) FROM s;",
            )?;
            if wait_for_kill {
                process::mark_and_hang(Path::new(&env("MIGRATE_MARKER")));
            }
            Ok::<(), migrate_core::rusqlite::Error>(())
        })
}

fn read_only(path: &Path) -> Connection {
    Connection::open_with_flags(path, OpenFlags::SQLITE_OPEN_READ_ONLY).expect("open read-only")
}

/// The name of an error's variant (its `Debug` up to the first brace).
fn variant(error: &Error) -> String {
    let debug = format!("{error:?}");
    debug
        .split([' ', '{', '('])
        .next()
        .unwrap_or_default()
        .to_owned()
}

// ---------------------------------------------------------------------------
// The child side.

#[test]
fn child_process_entry() {
    let Some(role) = child_role() else { return };
    let path = env("MIGRATE_DB");
    match role.as_str() {
        "waiter" => {
            let conn = read_only(Path::new(&path));
            process::touch(Path::new(&env("MIGRATE_READY")));
            let outcome = migrator().wait_until_current(&conn, Duration::from_secs(60));
            // What the database holds the moment the waiter returns, read
            // without the library.
            let ids = tracking_ids_or_empty(&conn, TABLE);
            let tables: Vec<&str> = ["a", "b", "c"]
                .into_iter()
                .filter(|t| has_table(&conn, t))
                .collect();
            match outcome {
                Ok(()) => report(&format!("ok {ids:?} {tables:?}")),
                Err(error) => report(&format!("err {} {error}", variant(&error))),
            }
        }
        "spilling_migrator" => {
            let mut conn = Connection::open(&path).expect("open");
            conn.execute_batch("PRAGMA cache_size = 10")
                .expect("a small cache");
            let outcome = spilling_migrator(true).migrate(&mut conn);
            report(&format!("not killed: {outcome:?}"));
        }
        "migrator" => {
            let mut conn = Connection::open(&path).expect("open");
            match migrator().migrate(&mut conn) {
                Ok(report_) => report(&format!("ok {:?}", report_.ids())),
                Err(error) => report(&format!("err {} {error}", variant(&error))),
            }
        }
        other => panic!("unknown role {other}"),
    }
}

// ---------------------------------------------------------------------------
// The parent side.

/// A migrator killed in the middle of a migration leaves a hot journal,
/// which a read-only connection cannot roll back: a waiter on one waits
/// for the next writer to repair the file, as for a lock. Found by a
/// hostile probe: it failed at once with "attempt to write a readonly
/// database".
#[test]
fn a_read_only_waiter_waits_out_a_killed_migrators_hot_journal() {
    let dir = tempfile::tempdir().unwrap();
    let db = new_db(dir.path(), "app.db", false);
    process::kill_when_marked(
        child_command("spilling_migrator").env("MIGRATE_DB", &db),
        &dir.path().join("marker"),
    )
    .expect("the migrator reaches its kill point");
    let journal = dir.path().join("app.db-journal");
    assert!(journal.exists(), "a hot journal is left");
    let waiter = std::thread::spawn({
        let db = db.clone();
        move || {
            spilling_migrator(false).wait_until_current(&read_only(&db), Duration::from_secs(30))
        }
    });
    std::thread::sleep(Duration::from_millis(300));
    let mut conn = Connection::open(&db).unwrap();
    assert_eq!(
        spilling_migrator(false).migrate(&mut conn).unwrap().ids(),
        vec![0]
    );
    let waited = waiter.join().unwrap();
    assert!(waited.is_ok(), "{waited:?}");
}

/// Fails unless `child` is still running: the waiter must not have returned.
#[track_caller]
fn assert_still_waiting(child: &mut Child, when: &str) {
    if let Some(status) = child.try_wait().expect("try_wait") {
        panic!("the waiter returned ({status}) {when}");
    }
}

/// Long enough for a waiter that wrongly returns to have done so: it looks
/// again every 200 ms at most.
fn linger() {
    std::thread::sleep(Duration::from_millis(600));
}

fn a_waiter_returns_only_after_another_process_migrates(wal: bool) {
    let dir = tempfile::tempdir().unwrap();
    let db = new_db(dir.path(), "app.db", wal);
    let file = |name: &str| dir.path().join(name).to_string_lossy().into_owned();

    let mut waiter = child_command("waiter")
        .env("MIGRATE_DB", &db)
        .env("MIGRATE_READY", file("ready"))
        .spawn()
        .expect("spawn the waiter");
    wait_for_file(
        Path::new(&file("ready")),
        &mut waiter,
        Duration::from_secs(60),
        Duration::from_millis(5),
    )
    .unwrap();
    linger();
    assert_still_waiting(&mut waiter, "before anyone migrated");

    let mut migrating = child_command("migrator")
        .env("MIGRATE_DB", &db)
        .env("MIGRATE_IN_1", file("in1"))
        .env("MIGRATE_GATE_1", file("gate1"))
        .env("MIGRATE_IN_2", file("in2"))
        .env("MIGRATE_GATE_2", file("gate2"))
        .spawn()
        .expect("spawn the migrator");

    // Migration 0 is committed, and 1 is marked started and runs outside a
    // transaction: the waiter meets another process's work in progress.
    wait_for_file(
        Path::new(&file("in1")),
        &mut migrating,
        Duration::from_secs(60),
        Duration::from_millis(5),
    )
    .unwrap();
    {
        let look = Connection::open(&db).unwrap();
        let chain: String = look
            .query_row(
                &format!("SELECT chain FROM {TABLE} WHERE id = 1"),
                [],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(chain, "started outside a transaction");
        assert!(has_table(&look, "a"));
    }
    linger();
    assert_still_waiting(&mut waiter, "while migration 1 ran outside a transaction");
    process::touch(Path::new(&file("gate1")));

    // 0 and 1 are committed; 2 runs in an open transaction.
    wait_for_file(
        Path::new(&file("in2")),
        &mut migrating,
        Duration::from_secs(60),
        Duration::from_millis(5),
    )
    .unwrap();
    assert_eq!(
        tracking_ids_or_empty(&Connection::open(&db).unwrap(), TABLE),
        vec![0, 1]
    );
    linger();
    assert_still_waiting(&mut waiter, "while migration 2 was not committed");
    process::touch(Path::new(&file("gate2")));

    let migrated = wait_with_timeout(migrating, Duration::from_secs(60));
    assert_eq!(migrated.result(), "ok [0, 1, 2]", "{}", migrated.describe());
    let waited = wait_with_timeout(waiter, Duration::from_secs(60));
    assert_eq!(
        waited.result(),
        r#"ok [0, 1, 2] ["a", "b", "c"]"#,
        "{}",
        waited.describe()
    );
}

#[test]
fn a_waiter_returns_only_after_another_process_migrates_wal() {
    a_waiter_returns_only_after_another_process_migrates(true);
}

#[test]
fn a_waiter_returns_only_after_another_process_migrates_rollback_journal() {
    a_waiter_returns_only_after_another_process_migrates(false);
}

#[test]
fn nobody_migrating_is_not_current_after_the_timeout() {
    let dir = tempfile::tempdir().unwrap();
    let db = new_db(dir.path(), "app.db", true);
    migrator()
        .migrate_to(&mut Connection::open(&db).unwrap(), 0)
        .unwrap();
    let conn = read_only(&db);
    let timeout = Duration::from_millis(400);
    let start = Instant::now();
    let error = migrator().wait_until_current(&conn, timeout).unwrap_err();
    let took = start.elapsed();
    match &error {
        Error::NotCurrent {
            set,
            applied,
            known,
            waited,
            in_progress,
        } => {
            assert_eq!(
                (set.as_str(), *applied, *known, in_progress),
                ("w", Some(1), 3, &None)
            );
            assert!(*waited >= timeout, "waited {waited:?}");
        }
        other => panic!("expected NotCurrent, got {other:?}"),
    }
    assert!(
        took >= timeout,
        "gave up after {took:?}, before the timeout"
    );
    assert!(
        took < Duration::from_secs(10),
        "gave up only after {took:?}"
    );
    assert!(
        error
            .to_string()
            .starts_with("the database holds 1 of the 3 migration(s) of set \"w\""),
        "{error}"
    );

    // A zero timeout looks once.
    let error = migrator()
        .wait_until_current(&conn, Duration::ZERO)
        .unwrap_err();
    assert!(
        matches!(
            error,
            Error::NotCurrent {
                applied: Some(1),
                ..
            }
        ),
        "{error:?}"
    );
}

#[test]
fn a_step_outside_a_transaction_left_by_a_killed_process_is_waited_for_until_the_timeout() {
    let dir = tempfile::tempdir().unwrap();
    let db = new_db(dir.path(), "app.db", true);
    let hanging = dir.path().join("hanging");
    let mut migrating = child_command("migrator")
        .env("MIGRATE_DB", &db)
        .env("MIGRATE_HANG_IN_1", &hanging)
        .spawn()
        .expect("spawn the migrator");
    wait_for_file(
        &hanging,
        &mut migrating,
        Duration::from_secs(60),
        Duration::from_millis(5),
    )
    .unwrap();
    process::kill(migrating);

    let conn = read_only(&db);
    // What migrate() itself reports: the mark of a step never finished.
    assert!(matches!(
        migrator().pending_migrations(&conn),
        Err(Error::Interrupted { id: 1, .. })
    ));
    let timeout = Duration::from_millis(400);
    let start = Instant::now();
    let error = migrator().wait_until_current(&conn, timeout).unwrap_err();
    assert!(
        start.elapsed() >= timeout,
        "returned after {:?}",
        start.elapsed()
    );
    match &error {
        Error::NotCurrent {
            applied,
            in_progress,
            ..
        } => {
            assert_eq!(*applied, Some(1));
            assert_eq!(in_progress, &Some((1, "create_b_outside".to_owned())));
        }
        other => panic!("expected NotCurrent, got {other:?}"),
    }
    assert!(
        error.to_string().contains("Migrator::resolve_interrupted"),
        "{error}"
    );
}

/// Runs `wait_until_current` with a long timeout and checks that it failed
/// at once.
#[track_caller]
fn refused_at_once(migrator: &Migrator, conn: &Connection) -> Error {
    let start = Instant::now();
    let error = migrator
        .wait_until_current(conn, Duration::from_secs(30))
        .unwrap_err();
    assert!(
        start.elapsed() < Duration::from_secs(5),
        "{error:?} came only after {:?}",
        start.elapsed()
    );
    error
}

#[test]
fn a_modified_history_is_refused_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let db = new_db(dir.path(), "app.db", true);
    let old = Migrator::new()
        .set("w")
        .add(0, "create_a", |tx: &Transaction| {
            tx.execute_batch("CREATE TABLE a (x)")
        });
    old.migrate(&mut Connection::open(&db).unwrap()).unwrap();
    // This binary renamed migration 0 and added one: it is pending, but
    // the history is not one migrate() would accept.
    let renamed = Migrator::new()
        .set("w")
        .add(0, "create_table_a", |tx: &Transaction| {
            tx.execute_batch("CREATE TABLE a (x)")
        })
        .add(1, "create_b", |tx: &Transaction| {
            tx.execute_batch("CREATE TABLE b (x)")
        });
    let conn = read_only(&db);
    let error = refused_at_once(&renamed, &conn);
    assert!(matches!(error, Error::Modified { .. }), "{error:?}");
}

#[test]
fn a_database_ahead_or_unmanaged_is_refused_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let db = new_db(dir.path(), "app.db", true);
    let older = Migrator::new()
        .set("w")
        .add(0, "create_a", |tx: &Transaction| {
            tx.execute_batch("CREATE TABLE a (x)")
        });
    migrator()
        .migrate_to(&mut Connection::open(&db).unwrap(), 0)
        .unwrap();
    let conn = read_only(&db);
    // `older` knows only migration 0, which is applied: current.
    older
        .wait_until_current(&conn, Duration::from_secs(30))
        .unwrap();
    // A newer build applies migration 1: `older` is the old binary now.
    migrator()
        .migrate_to(&mut Connection::open(&db).unwrap(), 1)
        .unwrap();
    let error = refused_at_once(&older, &conn);
    assert!(
        matches!(&error, Error::DatabaseAhead { unknown, .. } if unknown == &[(1, "create_b_outside".to_owned())]),
        "{error:?}"
    );

    let other = new_db(dir.path(), "other.db", true);
    Connection::open(&other)
        .unwrap()
        .execute_batch("CREATE TABLE built_by_hand (x)")
        .unwrap();
    let error = refused_at_once(&migrator(), &read_only(&other));
    assert!(
        matches!(error, Error::UnmanagedDatabase { .. }),
        "{error:?}"
    );
}

#[test]
fn an_up_to_date_database_returns_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let db = new_db(dir.path(), "app.db", true);
    let m = Migrator::new()
        .set("w")
        .add(0, "create_a", |tx: &Transaction| {
            tx.execute_batch("CREATE TABLE a (x)")
        });
    m.migrate(&mut Connection::open(&db).unwrap()).unwrap();
    let conn = read_only(&db);
    conn.busy_timeout(Duration::from_millis(1234)).unwrap();
    let start = Instant::now();
    m.wait_until_current(&conn, Duration::from_secs(30))
        .unwrap();
    assert!(
        start.elapsed() < Duration::from_secs(5),
        "took {:?}",
        start.elapsed()
    );
    // Even with no time at all: the first look happens.
    m.wait_until_current(&conn, Duration::ZERO).unwrap();
    // The connection is as it was: autocommit, the same busy timeout.
    assert!(conn.is_autocommit());
    let busy: i64 = conn
        .query_row("PRAGMA busy_timeout", [], |r| r.get(0))
        .unwrap();
    assert_eq!(busy, 1234);
}

#[test]
fn a_connection_inside_a_transaction_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let db = new_db(dir.path(), "app.db", true);
    let conn = read_only(&db);
    conn.execute_batch("BEGIN").unwrap();
    let error = refused_at_once(&migrator(), &conn);
    assert!(matches!(error, Error::InTransaction), "{error:?}");
    conn.execute_batch("ROLLBACK").unwrap();
}

/// What `docs/several-machines.md` promises on a read-only replica: the
/// up-to-date check of `migrate` reads only, pending work is `ReadOnly`
/// before any change, and the read methods work.
#[test]
fn on_a_read_only_connection_migrate_is_a_no_op_when_current_and_read_only_when_behind() {
    let dir = tempfile::tempdir().unwrap();
    let db = new_db(dir.path(), "app.db", true);
    migrator()
        .migrate_to(&mut Connection::open(&db).unwrap(), 0)
        .unwrap();
    let older = Migrator::new()
        .set("w")
        .add(0, "create_a", |tx: &Transaction| {
            tx.execute_batch("CREATE TABLE a (x)")
        });
    for query_only in [false, true] {
        let mut conn = if query_only {
            let conn = Connection::open(&db).unwrap();
            conn.execute_batch("PRAGMA query_only = ON").unwrap();
            conn
        } else {
            read_only(&db)
        };
        assert!(older.migrate(&mut conn).unwrap().is_empty());
        let error = migrator().migrate(&mut conn).unwrap_err();
        assert!(matches!(error, Error::ReadOnly), "{error:?}");
        assert_eq!(migrator().pending_migrations(&conn).unwrap().len(), 2);
        assert_eq!(migrator().status(&conn).unwrap().len(), 3);
    }
    assert_eq!(
        tracking_ids_or_empty(&Connection::open(&db).unwrap(), TABLE),
        vec![0]
    );
}

/// A lock held by another connection for longer than the timeout is the
/// database not (seen to be) current, not SQLite's busy error; any other
/// SQLite error is the waiter's error at once.
#[test]
fn a_lock_held_past_the_timeout_is_not_current_and_other_errors_come_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let db = new_db(dir.path(), "app.db", false);
    migrator()
        .migrate_to(&mut Connection::open(&db).unwrap(), 0)
        .unwrap();
    // A rollback journal: an exclusive lock keeps readers out.
    let holder = common::faults::ExclusiveHolder::hold(&db, Duration::from_secs(20));
    let conn = read_only(&db);
    let start = Instant::now();
    let error = migrator()
        .wait_until_current(&conn, Duration::from_millis(300))
        .unwrap_err();
    let took = start.elapsed();
    holder.release();
    assert!(
        matches!(error, Error::NotCurrent { applied: None, .. }),
        "expected NotCurrent with nothing read, got {error:?}"
    );
    assert!(
        took < Duration::from_secs(10),
        "gave up only after {took:?}"
    );

    let garbage = dir.path().join("not-a-database.db");
    std::fs::write(&garbage, vec![b'x'; 4096]).unwrap();
    let error = refused_at_once(&migrator(), &read_only(&garbage));
    assert_eq!(variant(&error), "Sqlite", "{error:?}");
}
