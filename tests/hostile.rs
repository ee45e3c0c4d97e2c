//! Hostile environments and hostile migrations: what the runner may assume
//! about its connection, and what it must survive (DESIGN.md, "What the
//! runner may assume about its connection").
//!
//! Every test works on real files in temporary directories and checks what
//! can be observed: the file through a fresh connection (schema, rows, bytes,
//! `integrity_check`), and the migrating connection's own state (autocommit,
//! `foreign_keys`, busy timeout, `query_only`, `writable_schema`, attached
//! databases). None asserts on error variants beyond "it is an error" and
//! what its message must name.
//!
//! The fault-injection harness (a progress handler interrupting the k-th
//! tick, a thread holding `BEGIN EXCLUSIVE`, a tiny tmpfs) and the state
//! checks live in `tests/common/{faults,state}.rs`.
//!
//! ```text
//! cargo test --test hostile                    # interrupt sweeps: every tick, up to 2 000 per call
//! MIGRATE_LONG=1 cargo test --test hostile     # every tick, however many
//! ```

mod common;

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::faults::{self, with_interrupt_at, ExclusiveHolder, SmallTmpfs};
use common::state::{
    assert_connection_restored, assert_history_agrees, assert_no_lock_held,
    history_agrees_with_schema, main_has_table, main_tracking_ids, ran_counts, ConnectionState,
};
use common::{
    assert_untouched, count, drop_tracking_triggers, dump, dump_file, integrity_ok, snapshot,
    tamper, TempDb,
};
use migrate_core::rusqlite::{self, Connection, OpenFlags, Transaction};
use migrate_core::{migration, rollback, Error, Migrator};

// ---------------------------------------------------------------- building blocks

/// One step's code, shareable between migrators.
type Body = Arc<dyn Fn(&Transaction<'_>) -> rusqlite::Result<()> + Send + Sync>;

/// The names of the marker migrations: no digits, so that a message naming
/// one names it unambiguously.
const NAMES: [&str; 4] = ["first", "second", "third", "fourth"];
/// The table migration `i` creates.
const MARKERS: [&str; 4] = ["t0", "t1", "t2", "t3"];

/// Migration `id`'s ordinary body: logs itself in `ran` (no unique
/// constraint: a second run would show) and creates `t<id>`.
fn marker(id: u32) -> Body {
    Arc::new(move |tx: &Transaction<'_>| {
        tx.execute_batch(&format!(
            "CREATE TABLE IF NOT EXISTS ran (id INTEGER NOT NULL);
             INSERT INTO ran VALUES ({id});
             CREATE TABLE t{id} (x);"
        ))
    })
}

/// A body from SQL.
fn sql(text: &'static str) -> Body {
    Arc::new(move |tx: &Transaction<'_>| tx.execute_batch(text))
}

/// A migrator of `set` whose migration `i` is named `NAMES[i]` and runs
/// `bodies[i]`; every migration's rollback drops `t<i>`.
fn migrator_of(set: &str, bodies: Vec<Body>) -> Migrator {
    let mut m = Migrator::new().set(set);
    for (id, body) in bodies.into_iter().enumerate() {
        let id = id as u32;
        m = m
            .add(id, NAMES[id as usize], move |tx: &Transaction<'_>| body(tx))
            .add_rollback(id, move |tx: &Transaction<'_>| {
                tx.execute_batch(&format!("DROP TABLE t{id}"))
            });
    }
    m
}

/// `n` marker migrations of `set`.
fn markers(set: &str, n: u32) -> Migrator {
    migrator_of(set, (0..n).map(marker).collect())
}

/// Marker migrations, with `body` as migration `special`.
fn markers_with(set: &str, n: u32, special: u32, body: Body) -> Migrator {
    migrator_of(
        set,
        (0..n)
            .map(|id| {
                if id == special {
                    Arc::clone(&body)
                } else {
                    marker(id)
                }
            })
            .collect(),
    )
}

/// Panics with every collected failure, so that one run reports them all.
#[track_caller]
fn assert_no_failures(what: &str, failures: &[String]) {
    assert!(
        failures.is_empty(),
        "{what}: {} failure(s):\n  - {}",
        failures.len(),
        failures.join("\n  - ")
    );
}

// ---------------------------------------------------------------- 1. lost transaction

/// How a step makes SQLite end the whole transaction behind the runner's
/// back: no transaction statement is prepared, so an authorizer sees nothing.
#[derive(Debug, Clone, Copy)]
enum Loss {
    /// `INSERT OR ROLLBACK` hitting a UNIQUE conflict.
    InsertOrRollback,
    /// A trigger running `RAISE(ROLLBACK, …)`.
    TriggerRaisesRollback,
}

impl Loss {
    /// What both kinds need: `u` (a UNIQUE column holding 1) and `v` (whose
    /// trigger raises ROLLBACK).
    const SETUP: &'static str = "CREATE TABLE u (x UNIQUE); INSERT INTO u VALUES (1);
         CREATE TABLE v (x);
         CREATE TRIGGER v_refuses BEFORE INSERT ON v BEGIN SELECT RAISE(ROLLBACK, 'v refuses'); END;";

    /// The statement that ends the transaction, after [`Loss::SETUP`].
    fn statement(self) -> &'static str {
        match self {
            Loss::InsertOrRollback => "INSERT OR ROLLBACK INTO u VALUES (1)",
            Loss::TriggerRaisesRollback => "INSERT INTO v VALUES (1)",
        }
    }
}

/// Migration 0 builds `t` (three rows), `u` (a UNIQUE column holding 1) and
/// `v` (whose trigger raises ROLLBACK). Migration 1 ends the transaction
/// that way, ignores the error, goes on with `CREATE TABLE later (x);
/// DELETE FROM t;` (errors ignored too), then returns Ok, or the original
/// error when `return_error`. Migration 2 creates `t2`.
fn lost_transaction(loss: Loss, return_error: bool) -> Migrator {
    let setup: Body = Arc::new(|tx: &Transaction<'_>| {
        tx.execute_batch("CREATE TABLE t (x); INSERT INTO t VALUES (1), (2), (3);")?;
        tx.execute_batch(Loss::SETUP)?;
        tx.execute_batch("CREATE TABLE t0 (x);")
    });
    let hostile: Body = Arc::new(move |tx: &Transaction<'_>| {
        let lost = tx.execute(loss.statement(), []);
        let _ = tx.execute_batch("CREATE TABLE later (x)");
        let _ = tx.execute_batch("DELETE FROM t");
        match lost {
            Err(error) if return_error => Err(error),
            _ => Ok(()),
        }
    });
    migrator_of("", vec![setup, hostile, marker(2)])
}

const LOSSES: [(Loss, bool); 4] = [
    (Loss::InsertOrRollback, false),
    (Loss::InsertOrRollback, true),
    (Loss::TriggerRaisesRollback, false),
    (Loss::TriggerRaisesRollback, true),
];

/// What must hold on disk after the lost step: migration 0 applied, nothing
/// of migration 1.
fn check_nothing_of_the_lost_step(db: &TempDb, context: &str, failures: &mut Vec<String>) {
    let conn = db.open();
    if main_has_table(&conn, "later") {
        failures.push(format!(
            "{context}: table `later`, created after the transaction was lost, is on disk"
        ));
    }
    let rows = count(&conn, "t");
    if rows != 3 {
        failures.push(format!(
            "{context}: `t` has {rows} rows on disk instead of 3 (the DELETE after the loss was committed)"
        ));
    }
    let ids = main_tracking_ids(&conn, "migrations");
    if ids != vec![0] {
        failures.push(format!("{context}: the history is {ids:?}, expected [0]"));
    }
    if main_has_table(&conn, "t2") {
        failures.push(format!("{context}: migration 2 ran after the failure"));
    }
}

#[test]
fn a_lost_transaction_commits_nothing_of_the_step() {
    let mut failures = Vec::new();
    for (loss, return_error) in LOSSES {
        let context = format!("{loss:?}, error returned: {return_error}");
        let db = TempDb::new();
        let mut conn = db.open();
        let m = lost_transaction(loss, return_error);
        m.migrate_to(&mut conn, 0).unwrap();
        let result = m.migrate(&mut conn);
        if result.is_ok() {
            failures.push(format!("{context}: migrate() returned Ok"));
        }
        if !conn.is_autocommit() {
            failures.push(format!("{context}: left inside a transaction"));
        }
        drop(conn);
        check_nothing_of_the_lost_step(&db, &context, &mut failures);
    }
    assert_no_failures("a step whose transaction SQLite ended", &failures);
}

#[test]
fn a_lost_transaction_keeps_the_earlier_steps_of_the_run() {
    let mut failures = Vec::new();
    for (loss, return_error) in LOSSES {
        let context = format!("{loss:?}, error returned: {return_error}, one run from scratch");
        let db = TempDb::new();
        let mut conn = db.open();
        let result = lost_transaction(loss, return_error).migrate(&mut conn);
        if result.is_ok() {
            failures.push(format!("{context}: migrate() returned Ok"));
        }
        if !conn.is_autocommit() {
            failures.push(format!("{context}: left inside a transaction"));
        }
        drop(conn);
        let conn = db.open();
        if !main_has_table(&conn, "t") || !main_has_table(&conn, "t0") {
            failures.push(format!(
                "{context}: migration 0, which ran before the failing step, is not on disk"
            ));
            continue;
        }
        drop(conn);
        check_nothing_of_the_lost_step(&db, &context, &mut failures);
    }
    assert_no_failures(
        "a lost transaction after a successful step of the same run",
        &failures,
    );
}

#[test]
fn a_lost_transaction_in_a_dry_run_commits_nothing() {
    let mut failures = Vec::new();
    for (loss, return_error) in LOSSES {
        for applied_first in [false, true] {
            let context = format!(
                "dry run, {loss:?}, error returned: {return_error}, migration 0 applied before: {applied_first}"
            );
            let db = TempDb::new();
            let mut conn = db.open();
            let m = lost_transaction(loss, return_error);
            if applied_first {
                m.migrate_to(&mut conn, 0).unwrap();
            }
            let before = snapshot(&db);
            let result = m.dry_run(&mut conn);
            if !conn.is_autocommit() {
                failures.push(format!("{context}: left inside a transaction"));
            }
            drop(conn);
            let after = dump_file(&db.path);
            if after != before.dump {
                let conn = db.open();
                failures.push(format!(
                    "{context}: the dry run committed something (later on disk: {}, rows of t: {:?}, history: {:?}); it returned {:?}",
                    main_has_table(&conn, "later"),
                    main_has_table(&conn, "t").then(|| count(&conn, "t")),
                    main_tracking_ids(&conn, "migrations"),
                    result.map(|dry| dry.failure.map(|e| e.to_string()))
                ));
            } else if db.bytes() != before.bytes {
                failures.push(format!("{context}: the dry run wrote to the file"));
            }
        }
    }
    assert_no_failures("a lost transaction during a dry run", &failures);
}

/// A failed step is undone by `ROLLBACK TO` its savepoint, then `RELEASE`.
/// When the application's progress handler interrupts the `ROLLBACK TO`,
/// the step's writes are still there: they must go with the whole
/// transaction, never be released into it and committed with the run's
/// earlier steps.
#[test]
fn an_interrupted_undo_of_a_failed_step_commits_none_of_it() {
    let mut failures = Vec::new();
    for applied_first in [true, false] {
        let context = format!("migration 0 applied before the call: {applied_first}");
        let failing: Body = Arc::new(|tx: &Transaction<'_>| {
            tx.execute_batch("INSERT INTO t VALUES ('partial'); CREATE TABLE half (x);")?;
            // The runner's next statement is its `ROLLBACK TO`.
            faults::interrupt_the_next_statement(tx);
            Err(rusqlite::Error::InvalidQuery)
        });
        let m = migrator_of("", vec![sql("CREATE TABLE t (x)"), failing, marker(2)]);
        let db = TempDb::new();
        let mut conn = db.open();
        if applied_first {
            m.migrate_to(&mut conn, 0).unwrap();
        }
        let result = m.migrate(&mut conn);
        faults::remove_interrupts(&conn);
        if result.is_ok() {
            failures.push(format!("{context}: migrate() returned Ok"));
        }
        if !conn.is_autocommit() {
            failures.push(format!("{context}: left inside a transaction"));
        }
        drop(conn);
        let conn = db.open();
        if main_has_table(&conn, "half") {
            failures.push(format!("{context}: the failed step's table is on disk"));
        }
        if main_has_table(&conn, "t") && count(&conn, "t") != 0 {
            failures.push(format!("{context}: the failed step's row is on disk"));
        }
        let ids = main_tracking_ids(&conn, "migrations");
        if ids != vec![0] {
            failures.push(format!("{context}: the history is {ids:?}, expected [0]"));
        }
    }
    assert_no_failures("an interrupted undo of a failed step", &failures);
}

/// A COMMIT that fails is `Error::CommitFailed` naming the steps it lost,
/// in the order they ran, with nothing of them on disk and the connection
/// out of its transaction; the next call applies them.
#[test]
fn a_failed_commit_is_an_error_naming_the_steps_it_lost() {
    let db = TempDb::new();
    let mut conn = db.open();
    let m = markers("", 3);
    m.migrate_to(&mut conn, 0).unwrap();
    faults::fail_every_commit(&conn);
    let result = m.migrate(&mut conn);
    faults::remove_interrupts(&conn);
    match &result {
        Err(Error::CommitFailed { ids, source, .. }) => {
            assert_eq!(ids, &vec![1, 2], "the steps the commit lost");
            assert_eq!(
                source.sqlite_error_code(),
                Some(rusqlite::ErrorCode::ConstraintViolation),
                "{source}"
            );
        }
        other => panic!("expected CommitFailed for ids 1 and 2, got {other:?}"),
    }
    assert!(conn.is_autocommit(), "left inside a transaction");
    assert_eq!(main_tracking_ids(&conn, "migrations"), vec![0]);
    assert!(!main_has_table(&conn, "t1") && !main_has_table(&conn, "t2"));
    let report = m.migrate(&mut conn).unwrap();
    assert_eq!(report.ids(), vec![1, 2]);
    // Rolling back: the same error, in the other direction.
    faults::fail_every_commit(&conn);
    let result = m.rollback_migration(&mut conn);
    faults::remove_interrupts(&conn);
    assert!(
        matches!(&result, Err(Error::CommitFailed { ids, .. }) if ids == &vec![2]),
        "{result:?}"
    );
    assert_eq!(main_tracking_ids(&conn, "migrations"), vec![0, 1, 2]);
}

/// A goal the database has already passed (`migrate_to(1)` with three of
/// four applied: the O(1) check cannot vouch, the full read decides) needs
/// no write lock: the call answers while another connection holds one.
#[test]
fn a_goal_already_passed_needs_no_write_lock() {
    let db = TempDb::new();
    let mut conn = db.open();
    markers("", 3).migrate(&mut conn).unwrap();
    let four = markers("", 4).lock_timeout(Duration::from_millis(300));
    let writer = db.open();
    writer.execute_batch("BEGIN IMMEDIATE").unwrap();
    let result = four.migrate_to(&mut conn, 1);
    writer.execute_batch("ROLLBACK").unwrap();
    assert!(
        matches!(&result, Ok(report) if report.is_empty()),
        "{:?}",
        result.map(|r| r.ids())
    );
    assert_eq!(main_tracking_ids(&conn, "migrations"), vec![0, 1, 2]);
}

/// The step that loses its transaction runs once per call, whether it is
/// the set's first migration or a later one, first in its transaction or
/// not: redoing the run's earlier steps must not run it (or the steps
/// before it that were never applied) again.
#[test]
fn a_step_that_loses_its_transaction_runs_once() {
    use std::sync::atomic::{AtomicUsize, Ordering};
    let mut failures = Vec::new();
    for (loss, return_error) in LOSSES {
        for (lost_id, applied_first) in [(0, None), (1, None), (1, Some(0)), (2, Some(0))] {
            let context = format!(
                "{loss:?}, error returned: {return_error}, migration {lost_id} loses it, \
                 applied before the call: {applied_first:?}"
            );
            let calls: Arc<[AtomicUsize; 3]> = Arc::new(Default::default());
            let bodies: Vec<Body> = (0..3u32)
                .map(|id| {
                    let calls = Arc::clone(&calls);
                    let body: Body = Arc::new(move |tx: &Transaction<'_>| {
                        calls[id as usize].fetch_add(1, Ordering::SeqCst);
                        tx.execute_batch(&format!("CREATE TABLE t{id} (x)"))?;
                        if id != lost_id {
                            return Ok(());
                        }
                        tx.execute_batch(Loss::SETUP)?;
                        let lost = tx.execute_batch(loss.statement());
                        match lost {
                            Err(error) if return_error => Err(error),
                            _ => Ok(()),
                        }
                    });
                    body
                })
                .collect();
            let m = migrator_of("", bodies);
            let db = TempDb::new();
            let mut conn = db.open();
            if let Some(last) = applied_first {
                m.migrate_to(&mut conn, last).unwrap();
            }
            let before: Vec<usize> = calls.iter().map(|c| c.load(Ordering::SeqCst)).collect();
            if m.migrate(&mut conn).is_ok() {
                failures.push(format!("{context}: migrate() returned Ok"));
            }
            let during: Vec<usize> = calls
                .iter()
                .zip(&before)
                .map(|(c, b)| c.load(Ordering::SeqCst) - b)
                .collect();
            // Each pending step before the lost one runs once, and may run
            // once more when the run redoes them; the lost one runs once,
            // and nothing after it.
            let first_pending = applied_first.map_or(0, |last| last as usize + 1);
            for (id, &n) in during.iter().enumerate() {
                let allowed = match id.cmp(&(lost_id as usize)) {
                    std::cmp::Ordering::Less if id >= first_pending => 1..=2,
                    std::cmp::Ordering::Less => 0..=0,
                    std::cmp::Ordering::Equal => 1..=1,
                    std::cmp::Ordering::Greater => 0..=0,
                };
                if !allowed.contains(&n) {
                    failures.push(format!(
                        "{context}: migration {id} ran {n} times in the call (calls: {during:?})"
                    ));
                }
            }
            drop(conn);
            let conn = db.open();
            let ids = main_tracking_ids(&conn, "migrations");
            let expected: Vec<i64> = (0..i64::from(lost_id)).collect();
            if ids != expected {
                failures.push(format!(
                    "{context}: the history is {ids:?}, expected {expected:?}"
                ));
            }
        }
    }
    assert_no_failures(
        "a step whose transaction SQLite ended, run again",
        &failures,
    );
}

// ---------------------------------------------------------------- 2. ATTACHed copies

#[test]
fn an_attached_migrated_copy_is_never_taken_for_main() {
    let copy = TempDb::new();
    let m = markers("", 3);
    m.migrate(&mut copy.open()).unwrap();
    let copy_bytes = copy.bytes();

    let db = TempDb::new();
    let mut conn = db.open();
    conn.execute("ATTACH DATABASE ?1 AS copy", [copy.path.to_str().unwrap()])
        .unwrap();
    let state = ConnectionState::of(&conn);

    let mut failures = Vec::new();
    match m.applied_migrations(&conn) {
        Ok(rows) if rows.is_empty() => {}
        other => failures.push(format!(
            "applied_migrations() before migrate must read main only (empty), got {:?}",
            other.map(|rows| rows.iter().map(|r| r.id).collect::<Vec<_>>())
        )),
    }
    match m.pending_migrations(&conn) {
        Ok(pending) if pending.len() == 3 => {}
        other => failures.push(format!(
            "pending_migrations() must list all three, got {:?}",
            other.map(|p| p.len())
        )),
    }
    match m.migrate(&mut conn) {
        Ok(report) if report.ids() == vec![0, 1, 2] => {}
        other => failures.push(format!(
            "migrate() must apply 0, 1, 2 to main, got {:?}",
            other.map(|r| r.ids())
        )),
    }
    let ids = main_tracking_ids(&conn, "migrations");
    if ids != vec![0, 1, 2] {
        failures.push(format!("main's history is {ids:?}, expected [0, 1, 2]"));
    }
    for table in &MARKERS[..3] {
        if !main_has_table(&conn, table) {
            failures.push(format!("main has no table {table}"));
        }
    }
    match m.applied_migrations(&conn) {
        Ok(rows) if rows.len() == 3 => {}
        other => failures.push(format!(
            "applied_migrations() after migrate: {:?}",
            other.map(|r| r.len())
        )),
    }
    if ConnectionState::of(&conn) != state {
        failures.push("the connection's state changed (the copy is still attached?)".to_owned());
    }
    conn.execute_batch("DETACH DATABASE copy").unwrap();
    drop(conn);
    if copy.bytes() != copy_bytes {
        failures.push("the attached database's file was written".to_owned());
    }
    assert_no_failures("a migrated copy attached to a fresh main", &failures);
}

#[test]
fn a_foreign_migrations_table_in_an_attached_database_does_not_block_main() {
    let other = TempDb::new();
    tamper(
        &other,
        "CREATE TABLE migrations (version TEXT PRIMARY KEY, run_on TEXT);
         INSERT INTO migrations VALUES ('20200101_init', '2020-01-01');",
    );
    let other_bytes = other.bytes();

    let db = TempDb::new();
    let mut conn = db.open();
    conn.execute(
        "ATTACH DATABASE ?1 AS other",
        [other.path.to_str().unwrap()],
    )
    .unwrap();
    let m = markers("", 2);
    let mut failures = Vec::new();
    match m.applied_migrations(&conn) {
        Ok(rows) if rows.is_empty() => {}
        got => failures.push(format!("applied_migrations(): {got:?}")),
    }
    match m.migrate(&mut conn) {
        Ok(report) if report.ids() == vec![0, 1] => {}
        got => failures.push(format!("migrate(): {:?}", got.map(|r| r.ids()))),
    }
    let ids = main_tracking_ids(&conn, "migrations");
    if ids != vec![0, 1] {
        failures.push(format!("main's history is {ids:?}"));
    }
    conn.execute_batch("DETACH DATABASE other").unwrap();
    drop(conn);
    if other.bytes() != other_bytes {
        failures.push("the attached database's file was written".to_owned());
    }
    assert_no_failures("another tool's `migrations` table, attached", &failures);
}

// ---------------------------------------------------------------- 3. TEMP shadows

#[test]
fn a_temp_table_named_like_the_tracking_table_is_never_the_history() {
    let shapes = [
        (
            "our columns",
            "CREATE TEMP TABLE migrations (id INTEGER PRIMARY KEY, name TEXT NOT NULL, \
             applied_at TEXT NOT NULL, checksum TEXT NOT NULL, chain TEXT NOT NULL)",
        ),
        (
            "other columns",
            "CREATE TEMP TABLE migrations (version TEXT PRIMARY KEY); \
             INSERT INTO temp.migrations VALUES ('temp row');",
        ),
    ];
    let mut failures = Vec::new();
    for (shape, create) in shapes {
        let db = TempDb::new();
        let m = markers("", 3);
        let mut conn = db.open();
        conn.execute_batch(create).unwrap();
        let temp_before = dump_temp(&conn);
        match m.migrate(&mut conn) {
            Ok(report) if report.ids() == vec![0, 1, 2] => {}
            other => failures.push(format!(
                "{shape}: the first migrate() gave {:?}",
                other.map(|r| r.ids())
            )),
        }
        let ids = main_tracking_ids(&conn, "migrations");
        if ids != vec![0, 1, 2] {
            failures.push(format!(
                "{shape}: main's history is {ids:?}: the rows went elsewhere"
            ));
        }
        if dump_temp(&conn) != temp_before {
            failures.push(format!("{shape}: the TEMP table was written"));
        }
        drop(conn);

        let mut conn = db.open();
        match m.migrate(&mut conn) {
            Ok(report) if report.is_empty() => {}
            other => failures.push(format!(
                "{shape}: migrate() after reopening gave {:?}",
                other.map(|r| r.ids())
            )),
        }
        let ran = ran_counts(&conn);
        if ran != vec![(0, 1), (1, 1), (2, 1)] {
            failures.push(format!(
                "{shape}: (migration, times it ran) = {ran:?}, each must run once"
            ));
        }
    }
    assert_no_failures("a TEMP table `migrations`", &failures);
}

/// The rows of `temp.migrations`, as text.
fn dump_temp(conn: &Connection) -> Vec<String> {
    conn.prepare("SELECT * FROM temp.migrations")
        .unwrap()
        .query_map([], |row| {
            Ok(format!("{:?}", row.get::<_, rusqlite::types::Value>(0)?))
        })
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap()
}

// ---------------------------------------------------------------- 4. case-insensitive names

#[test]
fn tracking_tables_differing_only_in_letter_case_are_refused() {
    // Same ids and names as the first set, other code: taking the first
    // set's history for its own would leave these silently unapplied.
    let other_code = |set: &str| {
        migrator_of(
            set,
            vec![sql("CREATE TABLE b0 (x)"), sql("CREATE TABLE b1 (x)")],
        )
    };
    let mut pairs: Vec<(String, Migrator, Migrator)> = Vec::new();
    // Without verification the O(1) check judges the history by its own
    // rows, and row 0's chain must start from this table's exact name.
    for verify in [true, false] {
        pairs.push((
            format!("set(\"Cache\") then set(\"cache\"), verify_applied({verify})"),
            markers("Cache", 2),
            other_code("cache").verify_applied(verify),
        ));
        pairs.push((
            format!("table(\"History\") then table(\"history\"), verify_applied({verify})"),
            markers("one", 2).table("History"),
            other_code("two").table("history").verify_applied(verify),
        ));
    }
    let mut failures = Vec::new();
    for (what, first, second) in pairs {
        let db = TempDb::new();
        let mut conn = db.open();
        first.migrate(&mut conn).unwrap();
        let before = snapshot(&db);
        let result = second.migrate(&mut conn);
        if let Ok(report) = &result {
            failures.push(format!(
                "{what}: the second set's migrate() returned Ok (applied {:?}; b0 exists: {})",
                report.ids(),
                main_has_table(&conn, "b0")
            ));
        }
        drop(conn);
        if dump_file(&db.path) != before.dump || db.bytes() != before.bytes {
            failures.push(format!("{what}: the second call changed the file"));
        }
    }
    assert_no_failures("tracking tables that are one SQLite table", &failures);
}

// ---------------------------------------------------------------- 6. interrupt sweep

#[migration(0, set = "sweep")]
fn sweep_create(tx: &Transaction) -> rusqlite::Result<()> {
    tx.execute_batch(
        "CREATE TABLE parent (id INTEGER PRIMARY KEY, name TEXT);
         CREATE TABLE child (id INTEGER PRIMARY KEY,
                             parent INTEGER NOT NULL REFERENCES parent (id) ON DELETE CASCADE);
         INSERT INTO parent VALUES (1, 'a'), (2, 'b');
         INSERT INTO child VALUES (1, 1), (2, 2);
         CREATE TABLE s0 (x);",
    )
}

#[rollback(0, set = "sweep")]
fn sweep_uncreate(tx: &Transaction) -> rusqlite::Result<()> {
    tx.execute_batch("DROP TABLE child; DROP TABLE parent; DROP TABLE s0;")
}

#[migration(1, set = "sweep")]
fn sweep_fill(tx: &Transaction) -> rusqlite::Result<()> {
    tx.execute_batch(
        "CREATE TABLE s1 (x); INSERT INTO s1 SELECT id FROM child; CREATE INDEX s1_x ON s1 (x);",
    )
}

#[rollback(1, set = "sweep")]
fn sweep_unfill(tx: &Transaction) -> rusqlite::Result<()> {
    tx.execute_batch("DROP TABLE s1")
}

/// SQLite's table rebuild of the parent: with foreign keys on, dropping the
/// old parent would cascade-delete every child.
#[migration(2, set = "sweep", foreign_keys = off)]
fn sweep_rebuild(tx: &Transaction) -> rusqlite::Result<()> {
    tx.execute_batch(
        "CREATE TABLE parent_new (id INTEGER PRIMARY KEY, name TEXT, extra INTEGER NOT NULL DEFAULT 7);
         INSERT INTO parent_new (id, name) SELECT id, name FROM parent;
         DROP TABLE parent;
         ALTER TABLE parent_new RENAME TO parent;
         CREATE TABLE s2 (x);",
    )
}

#[rollback(2, set = "sweep", foreign_keys = off)]
fn sweep_unrebuild(tx: &Transaction) -> rusqlite::Result<()> {
    tx.execute_batch(
        "CREATE TABLE parent_old (id INTEGER PRIMARY KEY, name TEXT);
         INSERT INTO parent_old SELECT id, name FROM parent;
         DROP TABLE parent;
         ALTER TABLE parent_old RENAME TO parent;
         DROP TABLE s2;",
    )
}

#[migration(3, set = "sweep")]
fn sweep_last(tx: &Transaction) -> rusqlite::Result<()> {
    tx.execute_batch("CREATE TABLE s3 (x); INSERT INTO s3 SELECT id FROM parent;")
}

#[rollback(3, set = "sweep")]
fn sweep_unlast(tx: &Transaction) -> rusqlite::Result<()> {
    tx.execute_batch("DROP TABLE s3")
}

const SWEEP_MARKERS: [&str; 4] = ["s0", "s1", "s2", "s3"];
const SWEEP_TABLE: &str = "migrations_sweep";
/// At most this many interrupted calls per sweep: every tick of these
/// calls (about 1 000 to 2 000 ticks, a few milliseconds each), evenly
/// spread ticks if they grow; every tick under `MIGRATE_LONG=1`.
const SWEEP_BUDGET: u64 = 2_000;

/// A fresh file and a connection with the application's own settings:
/// foreign keys on, a busy timeout of 1234 ms.
fn sweep_connection(db: &TempDb) -> Connection {
    let conn = db.open();
    conn.execute_batch("PRAGMA foreign_keys = ON; PRAGMA synchronous = OFF;")
        .unwrap();
    conn.busy_timeout(Duration::from_millis(1234)).unwrap();
    conn
}

/// Everything that must hold after an interrupted call, whatever it
/// returned; `finish` is the call without the handler that must then
/// complete, leaving `expect_after` migrations applied. A call that
/// returned Ok must have left them applied itself (an interrupt that
/// failed its COMMIT is an error, never an Ok with nothing on disk), and
/// one that returned an error must not have.
fn check_after_interrupt(
    db: &TempDb,
    conn: &mut Connection,
    before: &ConnectionState,
    finish: &dyn Fn(&mut Connection) -> Result<(), Error>,
    (expect_after, returned_ok): (usize, bool),
    context: &str,
) -> Result<(), String> {
    if !conn.is_autocommit() {
        return Err(format!("{context}: left inside a transaction"));
    }
    let state = ConnectionState::of(conn);
    if &state != before {
        return Err(format!(
            "{context}: connection state {state:?}, expected {before:?}"
        ));
    }
    let other = Connection::open(&db.path).unwrap();
    other.busy_timeout(Duration::ZERO).unwrap();
    if let Err(error) = other.execute_batch("BEGIN IMMEDIATE; ROLLBACK;") {
        return Err(format!("{context}: a lock is still held: {error}"));
    }
    drop(other);
    let applied = check_sweep_file(conn, context)?;
    if returned_ok && applied != expect_after {
        return Err(format!(
            "{context}: returned Ok with {applied} migrations applied, expected {expect_after}"
        ));
    }
    // And an error is never reported for a call whose work was committed
    // (an interrupt that lands as COMMIT takes effect: the history tells).
    if !returned_ok && applied == expect_after {
        return Err(format!(
            "{context}: returned an error with its work done ({applied} migrations applied)"
        ));
    }
    finish(conn)
        .map_err(|error| format!("{context}: the next call without faults failed: {error}"))?;
    let k = check_sweep_file(conn, &format!("{context}, after the next call"))?;
    if k != expect_after {
        return Err(format!(
            "{context}: {k} migrations applied after the next call, expected {expect_after}"
        ));
    }
    Ok(())
}

/// History agrees with schema, no child row lost, no violation; returns the
/// applied count.
fn check_sweep_file(conn: &Connection, context: &str) -> Result<usize, String> {
    let k = history_agrees_with_schema(conn, SWEEP_TABLE, &SWEEP_MARKERS)
        .map_err(|problem| format!("{context}: {problem}"))?;
    if k > 0 {
        let children = count(conn, "child");
        if children != 2 {
            return Err(format!("{context}: {children} child rows, expected 2"));
        }
    }
    let violations = common::query_i64(conn, "SELECT count(*) FROM pragma_foreign_key_check");
    if violations != 0 {
        return Err(format!("{context}: {violations} foreign key violations"));
    }
    Ok(k)
}

/// One sweep: `prepare` builds the starting state on a fresh file, `call` is
/// the interrupted call, `finish` the uninterrupted one after it.
fn run_sweep(
    what: &str,
    prepare: &dyn Fn(&mut Connection),
    call: &dyn Fn(&mut Connection) -> Result<(), Error>,
    finish: &dyn Fn(&mut Connection) -> Result<(), Error>,
    expect_after: usize,
) {
    let mut failures: Vec<String> = Vec::new();
    let mut outcomes = [0_usize; 2];
    let started = Instant::now();
    let swept = faults::sweep(SWEEP_BUDGET, |fire_at| {
        let db = TempDb::new();
        let mut conn = sweep_connection(&db);
        prepare(&mut conn);
        let before = ConnectionState::of(&conn);
        let (result, injection) = with_interrupt_at(&mut conn, fire_at, call);
        if fire_at.is_none() {
            result.unwrap_or_else(|e| panic!("{what}: the uninterrupted call failed: {e}"));
            return injection;
        }
        outcomes[usize::from(result.is_ok())] += 1;
        let context = format!(
            "{what}, interrupted at tick {} ({})",
            fire_at.unwrap(),
            match &result {
                Ok(()) => "returned Ok".to_owned(),
                Err(e) => format!("returned {e}"),
            }
        );
        let expected = (expect_after, result.is_ok());
        if let Err(problem) =
            check_after_interrupt(&db, &mut conn, &before, finish, expected, &context)
        {
            failures.push(problem);
        }
        injection
    });
    eprintln!(
        "{what}: {} ticks uninterrupted, swept {} interrupt points (every {} tick(s)) in {:.1?}; \
         {} calls returned Err, {} Ok; {} interrupt point(s) left a problem",
        swept.calibrated_ticks,
        swept.attempts,
        swept.stride,
        started.elapsed(),
        outcomes[0],
        outcomes[1],
        failures.len()
    );
    let total = failures.len();
    failures.truncate(12);
    assert_no_failures(
        &format!("{what} ({total} interrupt points failed, the first 12 shown)"),
        &failures,
    );
}

fn sweep_migrator() -> Migrator {
    Migrator::new().set("sweep")
}

#[test]
fn an_interrupt_at_any_tick_of_migrate_leaves_connection_and_file_consistent() {
    run_sweep(
        "migrate()",
        &|_| {},
        &|conn| sweep_migrator().migrate(conn).map(|_| ()),
        &|conn| sweep_migrator().migrate(conn).map(|_| ()),
        4,
    );
}

#[test]
fn an_interrupt_at_any_tick_of_rollback_to_leaves_connection_and_file_consistent() {
    run_sweep(
        "rollback_to(0)",
        &|conn| {
            sweep_migrator().migrate(conn).unwrap();
        },
        &|conn| sweep_migrator().rollback_to(conn, 0).map(|_| ()),
        &|conn| sweep_migrator().rollback_to(conn, 0).map(|_| ()),
        1,
    );
}

#[test]
fn an_interrupt_at_any_tick_of_rollback_all_leaves_connection_and_file_consistent() {
    run_sweep(
        "rollback_all()",
        &|conn| {
            sweep_migrator().migrate(conn).unwrap();
        },
        &|conn| sweep_migrator().rollback_all(conn).map(|_| ()),
        &|conn| sweep_migrator().rollback_all(conn).map(|_| ()),
        0,
    );
}

// ---------------------------------------------------------------- 8. huge lock timeouts

#[test]
fn any_lock_timeout_is_accepted() {
    let mut failures = Vec::new();
    for timeout in [Duration::MAX, Duration::from_secs(30 * 24 * 3600)] {
        let db = TempDb::new();
        let mut conn = db.open();
        let m = markers("", 2).lock_timeout(timeout);
        match catch_unwind(AssertUnwindSafe(|| m.migrate(&mut conn))) {
            Err(payload) => {
                let message = payload
                    .downcast_ref::<&str>()
                    .map(|s| (*s).to_owned())
                    .or_else(|| payload.downcast_ref::<String>().cloned())
                    .unwrap_or_default();
                failures.push(format!(
                    "lock_timeout({timeout:?}): migrate() panicked: {message}"
                ));
            }
            Ok(Err(error)) => failures.push(format!(
                "lock_timeout({timeout:?}): migrate() failed: {error}"
            )),
            Ok(Ok(report)) => {
                if report.ids() != vec![0, 1] {
                    failures.push(format!(
                        "lock_timeout({timeout:?}): applied {:?}",
                        report.ids()
                    ));
                }
            }
        }
        if !conn.is_autocommit() {
            failures.push(format!(
                "lock_timeout({timeout:?}): left inside a transaction"
            ));
        }
    }
    assert_no_failures("huge lock timeouts", &failures);
}

// ---------------------------------------------------------------- 9. journal modes

/// Migration 0 works, migration 1 creates `t1` and then fails.
fn second_fails() -> Migrator {
    markers_with(
        "",
        3,
        1,
        sql("CREATE TABLE t1 (x); INSERT INTO t1 VALUES (1); SELECT no_such_function();"),
    )
}

#[test]
fn a_connection_without_a_rollback_journal_is_refused_before_any_change() {
    let mut failures = Vec::new();
    for applied_first in [false, true] {
        let context = format!("journal_mode = OFF, migration 0 applied before: {applied_first}");
        let db = TempDb::new();
        if applied_first {
            second_fails().migrate_to(&mut db.open(), 0).unwrap();
        }
        let mut conn = db.open();
        let mode: String = conn
            .query_row("PRAGMA journal_mode = OFF", [], |row| row.get(0))
            .unwrap();
        assert_eq!(mode, "off");
        let before = snapshot(&db);
        let had_history = main_has_table(&conn, "migrations");
        let result = second_fails().migrate(&mut conn);
        if let Ok(report) = &result {
            failures.push(format!("{context}: returned Ok ({:?})", report.ids()));
        }
        if !conn.is_autocommit() {
            failures.push(format!("{context}: left inside a transaction"));
        }
        if !had_history && main_has_table(&conn, "migrations") {
            failures.push(format!("{context}: a tracking table was created"));
        }
        drop(conn);
        if dump_file(&db.path) != before.dump {
            let conn = db.open();
            failures.push(format!(
                "{context}: the database changed (history {:?}, t0 {}, t1 {}); the call returned {:?}",
                main_tracking_ids(&conn, "migrations"),
                main_has_table(&conn, "t0"),
                main_has_table(&conn, "t1"),
                result.map(|r| r.ids()).map_err(|e| e.to_string())
            ));
        } else if db.bytes() != before.bytes {
            failures.push(format!("{context}: the file was written"));
        }
    }
    assert_no_failures("journal_mode = OFF", &failures);
}

#[test]
fn an_in_memory_journal_works_normally() {
    let db = TempDb::new();
    let mut conn = db.open();
    let mode: String = conn
        .query_row("PRAGMA journal_mode = MEMORY", [], |row| row.get(0))
        .unwrap();
    assert_eq!(mode, "memory");
    let error = second_fails().migrate(&mut conn).unwrap_err();
    assert!(error.to_string().contains("second"), "{error}");
    assert!(conn.is_autocommit());
    assert_eq!(
        assert_history_agrees(&conn, "migrations", &MARKERS[..3], "MEMORY journal"),
        1
    );
    assert_eq!(markers("", 3).migrate(&mut conn).unwrap().ids(), vec![1, 2]);
    drop(conn);
    let conn = db.open();
    integrity_ok(&conn);
    assert_eq!(
        assert_history_agrees(&conn, "migrations", &MARKERS[..3], "MEMORY journal"),
        3
    );
}

/// SQLite commits a transaction across two files atomically only when both
/// keep a rollback journal on disk; with WAL on either side it commits each
/// file on its own, and a process killed during COMMIT can keep a step's
/// writes to an attached database without its tracking row, or the reverse
/// (found by a hostile probe: 6 kills in 12). A transactional step writing
/// an attached database is refused in that case, naming it; with both in
/// DELETE mode it runs, and reading one is always fine.
#[test]
fn a_step_writing_an_attached_database_that_cannot_commit_with_main_is_refused() {
    for (main_mode, aux_mode, refused) in [
        ("wal", "delete", true),
        ("delete", "wal", true),
        ("wal", "wal", true),
        ("delete", "delete", false),
    ] {
        let context = format!("main {main_mode}, aux {aux_mode}");
        let (_db, _aux, mut conn) = with_aux_attached(main_mode);
        conn.query_row(&format!("PRAGMA aux.journal_mode = {aux_mode}"), [], |_| {
            Ok(())
        })
        .unwrap();
        conn.execute_batch("CREATE TABLE aux.kept (x); INSERT INTO aux.kept VALUES (1);")
            .unwrap();
        let m = Migrator::new()
            .set("cross_file")
            .add(0, "reads_aux", |tx: &Transaction| {
                tx.execute_batch("CREATE TABLE copied AS SELECT x FROM aux.kept")
            })
            .add(1, "writes_aux", |tx: &Transaction| {
                tx.execute_batch("INSERT INTO aux.kept VALUES (2)")
            });
        let result = m.migrate(&mut conn);
        if refused {
            let Err(Error::Forbidden { id: 1, reason, .. }) = &result else {
                panic!("{context}: {result:?}");
            };
            assert!(
                reason.contains("\"aux\"") && reason.contains("WAL"),
                "{context}: {reason}"
            );
            assert_eq!(
                main_tracking_ids(&conn, "migrations_cross_file"),
                vec![0],
                "{context}"
            );
            let rows: i64 = conn
                .query_row("SELECT count(*) FROM aux.kept", [], |r| r.get(0))
                .unwrap();
            assert_eq!(rows, 1, "{context}");
        } else {
            assert_eq!(result.unwrap().ids(), vec![0, 1], "{context}");
        }
        // A pragma that writes the attached file (the next probe round's
        // finding: `aux.user_version` as that file's own counter).
        let pragma = Migrator::new()
            .set("cross_file_pragma")
            .add(0, "aux_version", |tx: &Transaction| {
                tx.execute_batch("PRAGMA aux.user_version = 42")
            })
            .migrate(&mut conn);
        let aux_version: i64 = conn
            .query_row("PRAGMA aux.user_version", [], |r| r.get(0))
            .unwrap();
        if refused {
            assert!(
                matches!(pragma, Err(Error::Forbidden { id: 0, .. })),
                "{context}: {pragma:?}"
            );
            assert_eq!(aux_version, 0, "{context}");
        } else {
            assert_eq!(pragma.unwrap().ids(), vec![0], "{context}");
            assert_eq!(aux_version, 42, "{context}");
        }
        // An ALTER of an attached table and an incremental vacuum of the
        // file write it too (cargo-mutants found neither pinned); a database
        // without a file keeps nothing after a kill, and may be written.
        for (set, sql) in [
            ("cross_file_alter", "ALTER TABLE aux.kept ADD COLUMN y"),
            ("cross_file_vacuum", "PRAGMA aux.incremental_vacuum"),
        ] {
            let outcome = Migrator::new()
                .set(set)
                .add(0, "aux_file", move |tx: &Transaction| tx.execute_batch(sql))
                .migrate(&mut conn);
            if refused {
                assert!(
                    matches!(outcome, Err(Error::Forbidden { id: 0, .. })),
                    "{context}, {sql}: {outcome:?}"
                );
            } else {
                assert_eq!(outcome.unwrap().ids(), vec![0], "{context}, {sql}");
            }
        }
        conn.execute_batch("ATTACH ':memory:' AS scratch").unwrap();
        let scratch = Migrator::new()
            .set("cross_file_scratch")
            .add(0, "scratch", |tx: &Transaction| {
                tx.execute_batch(
                    "CREATE TABLE scratch.notes (x); INSERT INTO scratch.notes VALUES (1);",
                )
            })
            .migrate(&mut conn);
        assert_eq!(scratch.unwrap().ids(), vec![0], "{context}");
        conn.execute_batch("DETACH scratch").unwrap();
        // A row written into the attached file's schema table under
        // `writable_schema` (the round after's finding: 13 kills in 30 split).
        let schema_row = Migrator::new()
            .set("cross_file_schema_row")
            .add(0, "aux_view_by_hand", |tx: &Transaction| {
                tx.execute_batch(
                    "PRAGMA writable_schema = ON;
                     INSERT INTO aux.sqlite_master VALUES ('view', 'v9', 'v9', 0, 'CREATE VIEW v9 AS SELECT 1');
                     PRAGMA writable_schema = OFF;",
                )
            })
            .migrate(&mut conn);
        let views: i64 = conn
            .query_row(
                "SELECT count(*) FROM aux.sqlite_master WHERE name = 'v9'",
                [],
                |r| r.get(0),
            )
            .unwrap();
        if refused {
            assert!(
                matches!(schema_row, Err(Error::Forbidden { id: 0, .. })),
                "{context}: {schema_row:?}"
            );
            assert_eq!(views, 0, "{context}");
        } else {
            assert_eq!(schema_row.unwrap().ids(), vec![0], "{context}");
        }
        // A TEMP trigger on an attached table writes TEMP's schema only.
        let temp_trigger = Migrator::new()
            .set("cross_file_temp_trigger")
            .add(0, "watch_aux", |tx: &Transaction| {
                tx.execute_batch(
                    "CREATE TEMP TRIGGER watch AFTER INSERT ON aux.kept BEGIN SELECT 1; END",
                )
            })
            .migrate(&mut conn);
        assert_eq!(temp_trigger.unwrap().ids(), vec![0], "{context}");
    }
}

/// A database file in `journal_mode` with another file attached as `aux`
/// (both kept until the caller drops them).
fn with_aux_attached(journal_mode: &str) -> (TempDb, TempDb, Connection) {
    let db = TempDb::new();
    let aux = TempDb::new();
    let conn = db.open();
    conn.query_row(&format!("PRAGMA journal_mode = {journal_mode}"), [], |_| {
        Ok(())
    })
    .unwrap();
    conn.execute(
        "ATTACH ?1 AS aux",
        [aux.path.to_string_lossy().into_owned()],
    )
    .unwrap();
    (db, aux, conn)
}

/// The same split with `synchronous = OFF` on either side, both in DELETE
/// mode (the next probe round's finding: SQLite leaves a file whose
/// `synchronous` is OFF out of the super-journal, so a kill during COMMIT
/// kept the tracking row and lost the attached file's writes). A step
/// outside a transaction may set it; the steps after it are checked again.
#[test]
fn a_step_writing_an_attached_database_with_synchronous_off_is_refused() {
    for (main_sync, aux_sync, refused) in [
        ("off", "normal", true),
        ("full", "off", true),
        ("normal", "full", false),
    ] {
        let context = format!("main synchronous {main_sync}, aux {aux_sync}");
        let (_db, _aux, mut conn) = with_aux_attached("delete");
        conn.execute_batch(&format!(
            "PRAGMA main.synchronous = {main_sync}; PRAGMA aux.synchronous = {aux_sync};
             CREATE TABLE aux.kept (x); INSERT INTO aux.kept VALUES (1);"
        ))
        .unwrap();
        let m = Migrator::new()
            .set("cross_file_sync")
            .add(0, "writes_aux", |tx: &Transaction| {
                tx.execute_batch("INSERT INTO aux.kept VALUES (2)")
            });
        let result = m.migrate(&mut conn);
        let rows: i64 = conn
            .query_row("SELECT count(*) FROM aux.kept", [], |r| r.get(0))
            .unwrap();
        if refused {
            let Err(Error::Forbidden { id: 0, reason, .. }) = &result else {
                panic!("{context}: {result:?}");
            };
            assert!(
                reason.contains("\"aux\"") && reason.contains("synchronous = OFF"),
                "{context}: {reason}"
            );
            assert_eq!(rows, 1, "{context}");
        } else {
            assert_eq!(result.unwrap().ids(), vec![0], "{context}");
            assert_eq!(rows, 2, "{context}");
        }
    }
    // Set by a step outside a transaction, for the steps after it.
    let (_db, _aux, mut conn) = with_aux_attached("delete");
    conn.execute_batch("CREATE TABLE aux.kept (x)").unwrap();
    let result = Migrator::new()
        .set("cross_file_sync_later")
        .add_without_transaction(0, "fast_aux", |conn: &Connection| {
            conn.execute_batch("PRAGMA aux.synchronous = OFF")
        })
        .add(1, "writes_aux", |tx: &Transaction| {
            tx.execute_batch("INSERT INTO aux.kept VALUES (2)")
        })
        .migrate(&mut conn);
    assert!(
        matches!(result, Err(Error::Forbidden { id: 1, .. })),
        "{result:?}"
    );
    assert_eq!(
        main_tracking_ids(&conn, "migrations_cross_file_sync_later"),
        vec![0]
    );
}

/// A failed migration's writes to an attached database without a journal
/// (`journal_mode = OFF`) are rolled back with the rest: the runner gives it
/// a journal for the call. Found by a hostile probe: all 2,000 rows stayed
/// changed after "failed and was rolled back".
#[test]
fn a_failed_migrations_writes_to_an_attached_database_without_a_journal_are_undone() {
    let db = TempDb::new();
    let aux = TempDb::new();
    let mut conn = db.open();
    conn.execute(
        "ATTACH ?1 AS aux",
        [aux.path.to_string_lossy().into_owned()],
    )
    .unwrap();
    conn.execute_batch(
        "PRAGMA aux.journal_mode = OFF; PRAGMA aux.cache_size = 5;
         CREATE TABLE aux.t (pad TEXT);
         WITH RECURSIVE s(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM s WHERE i < 2000)
         INSERT INTO aux.t SELECT 'before' FROM s;",
    )
    .unwrap();
    let m = Migrator::new()
        .set("off_journal")
        .add(0, "zero", |tx: &Transaction| {
            tx.execute_batch(
                "UPDATE aux.t SET pad = hex(randomblob(200)); SELECT no_such_function();",
            )
        });
    assert!(matches!(
        m.migrate(&mut conn),
        Err(Error::Failed { id: 0, .. })
    ));
    let changed: i64 = conn
        .query_row(
            "SELECT count(*) FROM aux.t WHERE pad <> 'before'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(changed, 0);
    let mode: String = conn
        .query_row("PRAGMA aux.journal_mode", [], |row| row.get(0))
        .unwrap();
    assert_eq!(mode, "off", "put back");
}

/// The steps of a file run with a journal on disk, whether the application
/// or a step outside a transaction chose `MEMORY` (a killed process would
/// leave an in-memory journal's spilled pages in the file:
/// `crash.rs::sigkill_with_the_applications_journal_in_memory_leaves_nothing_of_the_killed_migration`);
/// MEMORY is put back after the call.
#[test]
fn steps_run_with_the_journal_on_disk_and_memory_is_put_back() {
    let db = TempDb::new();
    let mut conn = db.open();
    let mode = |conn: &Connection| -> String {
        conn.query_row("PRAGMA journal_mode", [], |row| row.get(0))
            .unwrap()
    };
    let record = |tx: &Transaction| -> migrate_core::rusqlite::Result<()> {
        tx.execute_batch("CREATE TABLE IF NOT EXISTS modes (m)")?;
        for schema in ["main", "aux", "off_journal"] {
            let mode: String =
                tx.query_row(&format!("PRAGMA {schema}.journal_mode"), [], |row| {
                    row.get(0)
                })?;
            tx.execute("INSERT INTO modes VALUES (?1)", [mode])?;
        }
        Ok(())
    };
    // An attached file too: a migration may write it, and a kill would
    // leave its spilled pages there the same way (a hostile probe's
    // finding, after the fix for `main`).
    let aux = TempDb::new();
    conn.execute(
        "ATTACH ?1 AS aux",
        [aux.path.to_string_lossy().into_owned()],
    )
    .unwrap();
    conn.execute_batch("PRAGMA journal_mode = MEMORY; PRAGMA aux.journal_mode = MEMORY;")
        .unwrap();
    // And one without any journal: its writes would stay after a failed
    // step, and a kill would corrupt it (the next probe round's finding).
    let off = TempDb::new();
    conn.execute(
        "ATTACH ?1 AS off_journal",
        [off.path.to_string_lossy().into_owned()],
    )
    .unwrap();
    conn.execute_batch("PRAGMA off_journal.journal_mode = OFF")
        .unwrap();
    let m = Migrator::new()
        .set("journal_on_disk")
        .add(0, "record", record)
        .add_without_transaction(1, "memory_again", |conn: &Connection| {
            conn.execute_batch("PRAGMA journal_mode = MEMORY")
        })
        .add(2, "record_again", record);
    assert_eq!(m.migrate(&mut conn).unwrap().ids(), vec![0, 1, 2]);
    let modes: Vec<String> = conn
        .prepare("SELECT m FROM modes")
        .unwrap()
        .query_map([], |row| row.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(modes, vec!["delete"; 6]);
    assert_eq!(mode(&conn), "memory");
    let aux_mode: String = conn
        .query_row("PRAGMA aux.journal_mode", [], |row| row.get(0))
        .unwrap();
    assert_eq!(aux_mode, "memory");
    let off_mode: String = conn
        .query_row("PRAGMA off_journal.journal_mode", [], |row| row.get(0))
        .unwrap();
    assert_eq!(off_mode, "off");
    // A database without a file keeps its journal in memory.
    let mut memory = Connection::open_in_memory().unwrap();
    memory
        .execute_batch("ATTACH '' AS aux; ATTACH ':memory:' AS off_journal; PRAGMA off_journal.journal_mode = OFF;")
        .unwrap();
    assert_eq!(m.migrate(&mut memory).unwrap().ids(), vec![0, 1, 2]);
    assert_eq!(mode(&memory), "memory");
}

// ---------------------------------------------------------------- 10. lock timeout bounds the whole call

#[test]
fn the_lock_timeout_bounds_the_whole_call_even_with_a_long_busy_timeout() {
    let mut failures = Vec::new();
    for pending in [false, true] {
        let context = if pending {
            "pending work"
        } else {
            "up to date"
        };
        let db = TempDb::new();
        let mut conn = db.open();
        let m = markers("", 3);
        if pending {
            m.migrate_to(&mut conn, 0).unwrap();
        } else {
            m.migrate(&mut conn).unwrap();
        }
        conn.busy_timeout(Duration::from_secs(20)).unwrap();
        // Held for at most 4 s: a call that waits on the 20 s busy timeout
        // instead of the 300 ms lock timeout ends after about 4 s.
        let holder = ExclusiveHolder::hold(&db.path, Duration::from_secs(4));
        let start = Instant::now();
        let result = m
            .clone()
            .lock_timeout(Duration::from_millis(300))
            .migrate(&mut conn);
        let elapsed = start.elapsed();
        holder.release();
        if result.is_ok() || elapsed >= Duration::from_secs(3) {
            failures.push(format!(
                "{context}: returned {:?} after {elapsed:?}; expected an error after about 300 ms",
                result.map(|r| r.ids()).map_err(|e| e.to_string())
            ));
        }
        let busy: i64 = conn
            .query_row("PRAGMA busy_timeout", [], |row| row.get(0))
            .unwrap();
        if busy != 20_000 {
            failures.push(format!("{context}: busy_timeout is {busy} after the call"));
        }
        if !conn.is_autocommit() {
            failures.push(format!("{context}: left inside a transaction"));
        }
    }
    assert_no_failures(
        "lock_timeout(300 ms) against an exclusive writer",
        &failures,
    );
}

/// Every call that touches the file waits for a lock within the lock
/// timeout, not the connection's busy timeout, and a lock held past it is
/// `Error::Locked`, whatever the call and the journal mode.
#[test]
fn every_call_meets_a_held_lock_with_locked_within_the_lock_timeout() {
    type Call = fn(&Migrator, &mut Connection) -> Result<(), Error>;
    let calls: [(&str, Call, bool); 9] = [
        ("migrate", |m, c| m.migrate(c).map(drop), true),
        (
            "rollback_migration",
            |m, c| m.rollback_migration(c).map(drop),
            true,
        ),
        ("rollback_all", |m, c| m.rollback_all(c).map(drop), true),
        ("baseline", |m, c| m.baseline(c, 2), true),
        (
            "resolve_interrupted",
            |m, c| {
                m.resolve_interrupted(c, migrate_core::Resolution::NotRun)
                    .map(drop)
            },
            true,
        ),
        ("status", |m, c| m.status(c).map(drop), false),
        (
            "pending_migrations",
            |m, c| m.pending_migrations(c).map(drop),
            false,
        ),
        (
            "applied_migrations",
            |m, c| m.applied_migrations(c).map(drop),
            false,
        ),
        ("check_drift", |m, c| m.check_drift(c).map(drop), false),
    ];
    let mut failures = Vec::new();
    for wal in [false, true] {
        for (name, call, writes) in calls {
            let context = format!("{name}, {}", if wal { "WAL" } else { "rollback journal" });
            let db = TempDb::new();
            let mut conn = db.open();
            if wal {
                conn.execute_batch("PRAGMA journal_mode = WAL").unwrap();
            }
            let m = markers("", 3).lock_timeout(Duration::from_millis(300));
            m.migrate_to(&mut conn, 0).unwrap();
            conn.busy_timeout(Duration::from_secs(20)).unwrap();
            let holder = ExclusiveHolder::hold(&db.path, Duration::from_secs(4));
            let start = Instant::now();
            let result = call(&m, &mut conn);
            let elapsed = start.elapsed();
            holder.release();
            // In WAL mode a writer does not keep readers out.
            let readers_wait = writes || !wal;
            match result {
                // It says how long it waited: the lock timeout, give or take.
                Err(Error::Locked { waited })
                    if readers_wait && waited >= Duration::from_millis(250) => {}
                Ok(()) if !readers_wait => {}
                other => failures.push(format!(
                    "{context}: expected {}, got {other:?}",
                    if readers_wait { "Locked" } else { "Ok" }
                )),
            }
            if elapsed >= Duration::from_secs(3) {
                failures.push(format!("{context}: returned after {elapsed:?}"));
            }
        }
    }
    assert_no_failures("calls against a held lock", &failures);
}

/// `lock_timeout` is a budget for waiting, not for running: a migration
/// that runs longer than it may still wait for a reader at COMMIT (in a
/// rollback journal, a reader's SHARED lock holds COMMIT up).
#[test]
fn a_migration_running_longer_than_the_lock_timeout_may_still_wait_at_commit() {
    let db = TempDb::new();
    db.open()
        .execute_batch("PRAGMA journal_mode = DELETE")
        .unwrap();
    // Holds SHARED past the step's end, well within the lock timeout.
    let reader = faults::ReaderOnCall::spawn(&db.path, Duration::from_millis(150));
    let asks = Arc::clone(&reader);
    let m = markers_with(
        "",
        2,
        1,
        Arc::new(move |tx: &Transaction<'_>| {
            tx.execute_batch("CREATE TABLE t1 (x)")?;
            // Runs for twice the lock timeout, then a reader comes.
            std::thread::sleep(Duration::from_millis(600));
            asks.take();
            Ok(())
        }),
    )
    .lock_timeout(Duration::from_millis(300));
    let result = m.migrate(&mut db.open());
    reader.join();
    match result {
        Ok(report) => assert_eq!(report.ids(), vec![0, 1]),
        Err(error) => panic!("the COMMIT after a 600 ms migration could not wait 150 ms: {error}"),
    }
}

/// The one wait with a lock timeout of its own: recording the outcome of a
/// step outside a transaction that has run. Were it to fail for want of the
/// budget the waits before it used, the step would stay marked as in
/// progress until a person resolves it.
#[test]
fn a_step_outside_a_transaction_is_recorded_whatever_the_waits_before_it_used() {
    use std::sync::mpsc;
    let db = TempDb::new();
    db.open()
        .execute_batch("PRAGMA journal_mode = WAL")
        .unwrap();
    let (go, hold_again) = mpsc::channel::<()>();
    let (held, lock_taken) = mpsc::channel::<()>();
    let path = db.path.clone();
    let holder = std::thread::spawn(move || {
        let conn = Connection::open(&path).unwrap();
        conn.execute_batch("BEGIN IMMEDIATE").unwrap();
        held.send(()).unwrap();
        std::thread::sleep(Duration::from_millis(300));
        conn.execute_batch("COMMIT").unwrap();
        // Again, while the step outside a transaction runs: the record of
        // its end waits for it.
        hold_again.recv().unwrap();
        conn.execute_batch("BEGIN IMMEDIATE").unwrap();
        held.send(()).unwrap();
        std::thread::sleep(Duration::from_millis(250));
        conn.execute_batch("COMMIT").unwrap();
    });
    lock_taken.recv().unwrap();
    let go = std::sync::Mutex::new(Some(go));
    let lock_taken = std::sync::Mutex::new(lock_taken);
    let m = Migrator::new()
        .set("outside_waits")
        .lock_timeout(Duration::from_millis(400))
        .add(0, "a", |tx: &Transaction| {
            tx.execute_batch("CREATE TABLE a (x)")
        })
        .add_without_transaction(1, "outside", move |_: &Connection| {
            if let Some(go) = go.lock().unwrap().take() {
                go.send(()).unwrap();
                lock_taken.lock().unwrap().recv().unwrap();
            }
            Ok::<(), rusqlite::Error>(())
        });
    let mut conn = db.open();
    let result = m.migrate(&mut conn);
    holder.join().unwrap();
    // About 300 ms waited at BEGIN, then 250 ms for the record.
    match result {
        Ok(report) => assert_eq!(report.ids(), vec![0, 1]),
        Err(error) => panic!("the step outside a transaction was not recorded: {error}"),
    }
    assert!(m.pending_migrations(&conn).unwrap().is_empty());
}

/// The record's own budget is the record's alone: the waits before a step
/// outside a transaction and those after its record share one budget.
#[test]
fn waits_before_and_after_a_step_outside_a_transaction_share_the_lock_timeout() {
    use std::sync::mpsc;
    let db = TempDb::new();
    db.open()
        .execute_batch("PRAGMA journal_mode = DELETE")
        .unwrap();
    let path = db.path.clone();
    let (writing, write_lock_taken) = mpsc::channel::<()>();
    let writer = std::thread::spawn(move || {
        let conn = Connection::open(&path).unwrap();
        conn.execute_batch("BEGIN IMMEDIATE").unwrap();
        writing.send(()).unwrap();
        std::thread::sleep(Duration::from_millis(300));
        conn.execute_batch("COMMIT").unwrap();
    });
    write_lock_taken.recv().unwrap();
    let reader = faults::ReaderOnCall::spawn(&db.path, Duration::from_millis(300));
    let asks = Arc::clone(&reader);
    let m = Migrator::new()
        .set("shared_budget")
        .lock_timeout(Duration::from_millis(400))
        .add_without_transaction(0, "outside", |conn: &Connection| {
            conn.execute_batch("CREATE TABLE outside (x)")
        })
        .add(1, "then", move |tx: &Transaction| {
            tx.execute_batch("CREATE TABLE then_t (x)")?;
            asks.take();
            Ok::<(), rusqlite::Error>(())
        });
    let result = m.migrate(&mut db.open());
    drop(m);
    writer.join().unwrap();
    reader.join();
    // About 300 ms waited for the writer, then 300 ms for the reader at
    // step 1's COMMIT: past 400 ms in all.
    assert!(
        matches!(result, Err(Error::Locked { .. })),
        "expected Locked, got {:?}",
        result.map(|r| r.ids())
    );
}

// ---------------------------------------------------------------- 11. RAISE(IGNORE) on the tracking table

#[test]
fn a_tracking_row_swallowed_by_a_trigger_is_never_ok() {
    let mut failures = Vec::new();

    // Up: the insert of row 1 is ignored.
    let db = TempDb::new();
    let mut conn = db.open();
    let m = markers("", 2);
    m.migrate_to(&mut conn, 0).unwrap();
    conn.execute_batch(
        "CREATE TRIGGER swallow_insert BEFORE INSERT ON migrations BEGIN SELECT RAISE(IGNORE); END;",
    )
    .unwrap();
    let result = m.migrate(&mut conn);
    if let Ok(report) = &result {
        failures.push(format!(
            "migrate() returned Ok ({:?}) although its tracking row was not written",
            report.ids()
        ));
    }
    if let Err(problem) = history_agrees_with_schema(&db.open(), "migrations", &MARKERS[..2]) {
        failures.push(format!("after migrate(): {problem}"));
    }

    // Down: the delete of row 1 is ignored.
    let db = TempDb::new();
    let mut conn = db.open();
    m.migrate(&mut conn).unwrap();
    conn.execute_batch(
        "CREATE TRIGGER swallow_delete BEFORE DELETE ON migrations BEGIN SELECT RAISE(IGNORE); END;",
    )
    .unwrap();
    let result = m.rollback_migration(&mut conn);
    if let Ok(undone) = &result {
        failures.push(format!(
            "rollback_migration() returned Ok ({:?}) although its tracking row was not deleted",
            undone.as_ref().map(|r| r.id)
        ));
    }
    if let Err(problem) = history_agrees_with_schema(&db.open(), "migrations", &MARKERS[..2]) {
        failures.push(format!("after rollback_migration(): {problem}"));
    }
    assert_no_failures("RAISE(IGNORE) triggers on the tracking table", &failures);
}

/// Every way a trigger can leave a tracking row other than as written:
/// changing or removing it after the insert, putting it back after the
/// delete, swallowing the write from the TEMP schema (a TEMP trigger may sit
/// on a main table, and only its own connection sees it). None may end in
/// `Ok`, and the history must agree with the schema afterwards.
#[test]
fn a_tracking_row_changed_by_any_trigger_is_never_ok() {
    let cases: [(&str, bool, &str); 6] = [
        (
            "an AFTER INSERT trigger renaming the row",
            true,
            "CREATE TRIGGER rename_row AFTER INSERT ON migrations \
             BEGIN UPDATE migrations SET name = 'other' WHERE id = NEW.id; END;",
        ),
        (
            "an AFTER INSERT trigger deleting the row",
            true,
            "CREATE TRIGGER drop_row AFTER INSERT ON migrations \
             BEGIN DELETE FROM migrations WHERE id = NEW.id; END;",
        ),
        (
            "an AFTER INSERT trigger replacing the row",
            true,
            "CREATE TRIGGER replace_row AFTER INSERT ON migrations \
             BEGIN INSERT OR REPLACE INTO migrations VALUES \
             (NEW.id, NEW.name, NEW.applied_at, 'forged', NEW.chain); END;",
        ),
        (
            "a TEMP trigger swallowing the insert",
            true,
            "CREATE TEMP TRIGGER swallow_insert BEFORE INSERT ON main.migrations \
             BEGIN SELECT RAISE(IGNORE); END;",
        ),
        (
            "a TEMP trigger changing the row",
            true,
            "CREATE TEMP TRIGGER change_row AFTER INSERT ON main.migrations \
             BEGIN UPDATE main.migrations SET checksum = 'x' WHERE id = NEW.id; END;",
        ),
        (
            "an AFTER DELETE trigger putting the row back",
            false,
            "CREATE TRIGGER keep_row AFTER DELETE ON migrations \
             BEGIN INSERT INTO migrations VALUES \
             (OLD.id, OLD.name, OLD.applied_at, OLD.checksum, OLD.chain); END;",
        ),
    ];
    let mut failures = Vec::new();
    for (what, up, trigger) in cases {
        let db = TempDb::new();
        let mut conn = db.open();
        let m = markers("", 2);
        if up {
            m.migrate_to(&mut conn, 0).unwrap();
        } else {
            m.migrate(&mut conn).unwrap();
        }
        // On the connection that migrates: a TEMP trigger is its own.
        conn.execute_batch(trigger).unwrap();
        let result = if up {
            m.migrate(&mut conn).map(|report| report.ids())
        } else {
            m.rollback_migration(&mut conn)
                .map(|undone| undone.map(|r| r.id).into_iter().collect())
        };
        match &result {
            Ok(ids) => failures.push(format!("{what}: Ok({ids:?})")),
            Err(Error::IncompatibleTrackingTable { .. }) => {}
            Err(other) => failures.push(format!("{what}: {other}")),
        }
        drop(conn);
        if let Err(problem) = history_agrees_with_schema(&db.open(), "migrations", &MARKERS[..2]) {
            failures.push(format!("{what}: {problem}"));
        }
    }
    assert_no_failures("triggers changing tracking rows", &failures);
}

// ---------------------------------------------------------------- 12. user code writing tracking tables

/// A file with the set `other` applied and migration 0 of the default set
/// (`markers`), whose migration 1 runs `setup` then `attack`: the file, the
/// connection, the dump before the call, and what `migrate()` returned.
fn attack_in_migration_1(
    setup: &'static str,
    attack: &'static str,
) -> (
    TempDb,
    Connection,
    common::Dump,
    Result<migrate_core::Report, Error>,
) {
    let db = TempDb::new();
    let mut conn = db.open();
    migrator_of("other", vec![sql("CREATE TABLE other_0 (x)")])
        .migrate(&mut conn)
        .unwrap();
    let hostile = markers_with(
        "",
        3,
        1,
        Arc::new(move |tx: &Transaction<'_>| {
            tx.execute_batch(setup)?;
            tx.execute_batch(attack)
        }),
    );
    hostile.migrate_to(&mut conn, 0).unwrap();
    let before = dump(&conn);
    let result = hostile.migrate(&mut conn);
    (db, conn, before, result)
}

#[test]
fn a_migration_cannot_write_any_tracking_table() {
    let attacks: [(&str, &'static str); 13] = [
        ("DELETE FROM migrations", "DELETE FROM migrations"),
        (
            "INSERT INTO migrations",
            "INSERT INTO migrations (id, name, applied_at, checksum, chain) \
             VALUES (7, 'forged', '2000-01-01T00:00:00Z', 'x', 'y')",
        ),
        (
            "UPDATE migrations",
            "UPDATE migrations SET name = 'renamed' WHERE id = 0",
        ),
        ("DROP TABLE migrations", "DROP TABLE migrations"),
        (
            "a trigger on a table it created",
            "CREATE TABLE x (a);
             CREATE TRIGGER x_wipes AFTER INSERT ON x BEGIN DELETE FROM migrations; END;
             INSERT INTO x VALUES (1);",
        ),
        (
            "a trigger left on the tracking table",
            "CREATE TRIGGER forge AFTER INSERT ON migrations BEGIN DELETE FROM migrations WHERE id = 0; END;",
        ),
        (
            "a TEMP trigger on the tracking table",
            "CREATE TEMP TRIGGER forge AFTER DELETE ON main.migrations BEGIN SELECT 1; END;",
        ),
        (
            "ALTER TABLE migrations RENAME",
            "ALTER TABLE migrations RENAME TO history",
        ),
        (
            "ALTER TABLE main.migrations ADD COLUMN",
            "ALTER TABLE main.migrations ADD COLUMN note TEXT",
        ),
        (
            "a UNIQUE index on the tracking table",
            "CREATE UNIQUE INDEX forged ON migrations (applied_at)",
        ),
        (
            "CREATE TABLE IF NOT EXISTS migrations",
            "CREATE TABLE IF NOT EXISTS Migrations (version INTEGER)",
        ),
        (
            "DELETE FROM another set's table",
            "DELETE FROM migrations_other",
        ),
        (
            "UPDATE another set's table",
            "UPDATE migrations_other SET checksum = 'x'",
        ),
    ];
    let mut failures = Vec::new();
    for (what, attack) in attacks {
        let (db, conn, before, result) = attack_in_migration_1("CREATE TABLE t1 (x)", attack);
        match &result {
            // Refused as it happens, naming the step, what it does and
            // the table.
            Err(Error::Forbidden { id: 1, reason, .. })
                if reason.contains("tracking table")
                    && reason.contains("Migrator::table(")
                    && (!what.starts_with("DROP TABLE") || reason.contains("drops")) => {}
            Ok(report) => failures.push(format!(
                "{what}: migrate() returned Ok ({:?})",
                report.ids()
            )),
            Err(other) => failures.push(format!(
                "{what}: expected Forbidden for migration 1 naming the tracking table, got {other:?}"
            )),
        }
        if !conn.is_autocommit() {
            failures.push(format!("{what}: left inside a transaction"));
        }
        drop(conn);
        let after = dump_file(&db.path);
        if after != before {
            let conn = db.open();
            failures.push(format!(
                "{what}: something was committed: history {:?}, other set's history {:?}, t1 {}",
                main_tracking_ids(&conn, "migrations"),
                main_tracking_ids(&conn, "migrations_other"),
                main_has_table(&conn, "t1"),
            ));
            continue;
        }
        // Not stuck: the corrected code (same ids and names) goes on.
        let mut conn = db.open();
        match markers("", 3).migrate(&mut conn) {
            Ok(report) if report.ids() == vec![1, 2] => {}
            other => failures.push(format!(
                "{what}: the corrected migrate() afterwards gave {:?}",
                other.map(|r| r.ids()).map_err(|e| e.to_string())
            )),
        }
    }
    assert_no_failures("migrations writing tracking tables", &failures);
}

/// The tamper check's triggers are known to the guard by name
/// (`migrate_core_{edit,delete,insert}_<table>`): a trigger of that name
/// that is not the runner's, on any table, in main or TEMP, must never be
/// let through, nor stand in for the real one.
#[test]
fn a_trigger_named_like_the_runners_own_gets_nothing_through() {
    let attacks: [(&str, &'static str); 5] = [
        (
            "an edit trigger's name on another table",
            "CREATE TRIGGER migrate_core_edit_migrations AFTER INSERT ON x BEGIN \
               UPDATE migrations SET name = 'forged' WHERE id = 0; END;
             INSERT INTO x VALUES (1);",
        ),
        (
            "an insert trigger's name, deleting the history",
            "CREATE TRIGGER migrate_core_insert_migrations AFTER INSERT ON x BEGIN \
               DELETE FROM migrations; END;
             INSERT INTO x VALUES (1);",
        ),
        (
            "a TEMP trigger by a delete trigger's name, in other letter case",
            "CREATE TEMP TRIGGER MIGRATE_CORE_DELETE_MIGRATIONS AFTER INSERT ON main.x BEGIN \
               SELECT 1; END;",
        ),
        (
            "another set's trigger's name, in TEMP",
            "CREATE TEMP TRIGGER migrate_core_insert_migrations_other AFTER INSERT ON main.x \
             BEGIN SELECT 1; END;",
        ),
        (
            "dropping another set's trigger",
            "DROP TRIGGER migrate_core_edit_migrations_other",
        ),
    ];
    let mut failures = Vec::new();
    for (what, attack) in attacks {
        let (db, conn, before, result) =
            attack_in_migration_1("CREATE TABLE t1 (x); CREATE TABLE x (a);", attack);
        match result {
            Err(Error::Forbidden { id: 1, reason, .. })
                if reason.contains("trigger") && reason.contains("another name")
                    || reason.contains("tracking table") => {}
            other => failures.push(format!(
                "{what}: expected Forbidden for migration 1, got {:?}",
                other.map(|r| r.ids())
            )),
        }
        drop(conn);
        if dump_file(&db.path) != before {
            failures.push(format!("{what}: something was committed"));
        }
    }

    // Made by the application before migrating, in TEMP (which a run
    // leaves alone): when a step fires it, its write is judged like any
    // other statement's.
    let db = TempDb::new();
    let mut conn = db.open();
    let fires = markers_with(
        "",
        3,
        1,
        sql("CREATE TABLE t1 (x); INSERT INTO x VALUES (1);"),
    );
    fires.migrate_to(&mut conn, 0).unwrap();
    conn.execute_batch(
        "CREATE TABLE x (a);
         CREATE TEMP TRIGGER migrate_core_insert_migrations AFTER INSERT ON main.x BEGIN
           DELETE FROM main.migrations;
         END;",
    )
    .unwrap();
    let before = main_tracking_ids(&conn, "migrations");
    match fires.migrate(&mut conn) {
        Err(Error::Forbidden { id: 1, reason, .. }) if reason.contains("tracking table") => {}
        other => failures.push(format!(
            "a TEMP trigger by our name, made beforehand: expected Forbidden for migration 1, \
             got {:?}",
            other.map(|r| r.ids())
        )),
    }
    if main_tracking_ids(&conn, "migrations") != before {
        failures.push("a TEMP trigger by our name, made beforehand: the history changed".into());
    }

    // Made in main in place of the runner's: replaced by the real one at
    // the next write, not kept.
    let db = TempDb::new();
    let mut conn = db.open();
    let plain = markers_with(
        "",
        3,
        1,
        sql("CREATE TABLE t1 (x); INSERT INTO x VALUES (1);"),
    );
    plain.migrate_to(&mut conn, 0).unwrap();
    conn.execute_batch(
        "CREATE TABLE x (a);
         DROP TRIGGER migrate_core_edit_migrations;
         CREATE TRIGGER migrate_core_edit_migrations AFTER INSERT ON x BEGIN SELECT 1; END;",
    )
    .unwrap();
    if let Err(error) = plain.migrate(&mut conn) {
        failures.push(format!(
            "a main trigger by our name, made beforehand: {error}"
        ));
    }
    let on: Vec<String> = conn
        .prepare(
            "SELECT tbl_name FROM main.sqlite_master \
             WHERE type = 'trigger' AND name = 'migrate_core_edit_migrations'",
        )
        .unwrap()
        .query_map([], |row| row.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    if on != ["migrations"] {
        failures.push(format!(
            "a main trigger by our name, made beforehand: after the next write it is on {on:?}"
        ));
    }
    // And the tamper check works again: a hand edit is seen.
    conn.execute_batch("UPDATE migrations SET name = 'edited' WHERE id = 0")
        .unwrap();
    if plain.migrate(&mut conn).is_ok() {
        failures.push("a hand edit after the trigger was replaced went unseen".into());
    }
    assert_no_failures("triggers named like the runner's own", &failures);
}

/// Tables of the step's own that share the tracking table's name — in
/// TEMP, or in a database attached before migrating — are not the history:
/// the step may create, write, alter and drop them.
#[test]
fn a_migration_may_use_its_own_tables_named_like_the_tracking_table() {
    let aux = TempDb::new();
    let cases: [(&str, &'static str); 2] = [
        (
            "TEMP",
            "CREATE TEMP TABLE migrations (version INTEGER);
             INSERT INTO temp.migrations VALUES (1);
             UPDATE temp.migrations SET version = 2;
             DELETE FROM temp.migrations;
             CREATE INDEX temp.by_version ON migrations (version);
             DROP TABLE temp.migrations;",
        ),
        (
            "an attached database",
            "CREATE TABLE aux.migrations (version INTEGER);
             INSERT INTO aux.migrations VALUES (1);
             UPDATE aux.migrations SET version = 2;
             DELETE FROM aux.migrations WHERE version = 0;
             CREATE INDEX aux.by_version ON migrations (version);
             DROP INDEX aux.by_version;
             ALTER TABLE aux.migrations RENAME TO kept;",
        ),
    ];
    let mut failures = Vec::new();
    for (what, statements) in cases {
        let db = TempDb::new();
        let mut conn = db.open();
        conn.execute("ATTACH ?1 AS aux", [aux.path.to_string_lossy()])
            .unwrap();
        let m = markers_with(
            "",
            3,
            1,
            Arc::new(move |tx: &Transaction<'_>| {
                tx.execute_batch("CREATE TABLE t1 (x)")?;
                tx.execute_batch(statements)
            }),
        );
        match m.migrate(&mut conn) {
            Ok(report) if report.ids() == vec![0, 1, 2] => {}
            other => failures.push(format!(
                "{what}: {:?}",
                other.map(|r| r.ids()).map_err(|e| e.to_string())
            )),
        }
        if main_tracking_ids(&conn, "migrations") != vec![0, 1, 2] {
            failures.push(format!(
                "{what}: history {:?}",
                main_tracking_ids(&conn, "migrations")
            ));
        }
    }
    let conn = aux.open();
    if !main_has_table(&conn, "kept") {
        failures.push("the attached database's table was not renamed".to_owned());
    }
    assert_no_failures(
        "tables of a migration's own named like the tracking table",
        &failures,
    );
}

/// The runner's savepoint around each step is its own: a step that
/// releases it, rolls back to it or shadows it with one of the same name
/// is refused, and nothing of it is kept.
#[test]
fn a_migration_cannot_touch_the_runners_savepoint() {
    let mut failures = Vec::new();
    for statement in [
        "RELEASE migrate_core_step",
        "ROLLBACK TO migrate_core_step",
        "SAVEPOINT Migrate_Core_Step",
    ] {
        let db = TempDb::new();
        let mut conn = db.open();
        let m = markers_with(
            "",
            3,
            1,
            Arc::new(move |tx: &Transaction<'_>| {
                tx.execute_batch("CREATE TABLE t1 (x)")?;
                tx.execute_batch(statement)?;
                tx.execute_batch("CREATE TABLE after_it (x)")
            }),
        );
        m.migrate_to(&mut conn, 0).unwrap();
        let before = dump(&conn);
        match m.migrate(&mut conn) {
            Err(Error::TransactionControl { id: 1, .. }) => {}
            other => failures.push(format!(
                "{statement}: expected TransactionControl for migration 1, got {:?}",
                other.map(|r| r.ids())
            )),
        }
        if !conn.is_autocommit() {
            failures.push(format!("{statement}: left inside a transaction"));
        }
        drop(conn);
        if dump_file(&db.path) != before {
            failures.push(format!("{statement}: something of the step was committed"));
        }
    }
    assert_no_failures("steps touching the runner's savepoint", &failures);
}

// ---------------------------------------------------------------- 13. busy timeout restored

#[test]
fn the_applications_busy_timeout_is_restored_after_every_kind_of_call() {
    common::quiet_panics_starting_with("hostile: deliberate panic");
    let db = TempDb::new();
    let mut conn = db.open();
    conn.busy_timeout(Duration::from_millis(4321)).unwrap();
    let before = ConnectionState::of(&conn);
    assert_eq!(before.busy_timeout, 4321);
    let ok = markers("", 2);
    let failing = markers_with(
        "",
        3,
        2,
        sql("CREATE TABLE t2 (x); SELECT no_such_function();"),
    );
    let panicking = markers_with(
        "",
        3,
        2,
        Arc::new(|_tx: &Transaction<'_>| -> rusqlite::Result<()> {
            panic!("hostile: deliberate panic in a migration")
        }),
    );
    let renamed = migrator_of("", vec![marker(0)]).add(1, "renamed", |tx: &Transaction<'_>| {
        tx.execute_batch("CREATE TABLE t1 (x)")
    });
    let short = markers("", 3).lock_timeout(Duration::from_millis(100));

    let mut failures = Vec::new();
    let mut check = |call: &str, result: String, conn: &Connection| {
        let now = ConnectionState::of(conn);
        if now != before {
            failures.push(format!("{call} ({result}): state {now:?}"));
        }
    };
    macro_rules! call {
        ($name:expr, $e:expr) => {{
            let result = format!("{:?}", $e.map(|_| ()).map_err(|e: Error| e.to_string()));
            check($name, result, &conn);
        }};
    }
    call!("migrate (applies)", ok.migrate(&mut conn));
    call!("migrate (up to date)", ok.migrate(&mut conn));
    call!("pending_migrations", ok.pending_migrations(&conn));
    call!("status", ok.status(&conn));
    call!("dry_run (a failing step)", failing.dry_run(&mut conn));
    call!("migrate (a failing step)", failing.migrate(&mut conn));
    call!("migrate (a panicking step)", panicking.migrate(&mut conn));
    call!("migrate (Modified)", renamed.migrate(&mut conn));
    call!("migrate (DatabaseAhead)", markers("", 1).migrate(&mut conn));
    call!("migrate_to (InvalidTarget)", ok.migrate_to(&mut conn, 9));
    call!("baseline (AlreadyHasHistory)", ok.baseline(&mut conn, 0));
    call!("rollback_migration", ok.rollback_migration(&mut conn));
    call!(
        "rollback_migration (NoRollback)",
        Migrator::new()
            .add(0, "first", |tx: &Transaction<'_>| tx
                .execute_batch("SELECT 1"))
            .rollback_migration(&mut conn)
    );
    {
        let holder = ExclusiveHolder::hold(&db.path, Duration::from_secs(10));
        let result = short.migrate(&mut conn);
        // Read the state once the lock is free again.
        holder.release();
        call!("migrate (Locked)", result);
    }
    call!("rollback_all", ok.rollback_all(&mut conn));
    assert_no_failures("busy timeout 4321 ms", &failures);
}

// ---------------------------------------------------------------- bookkeeping failures

#[test]
fn a_bookkeeping_failure_names_the_step_and_keeps_the_earlier_ones() {
    let rebuild = |extra_column: &str, check: &str| {
        format!(
            "CREATE TABLE migrations_new (id INTEGER PRIMARY KEY {check}, name TEXT NOT NULL, \
             applied_at TEXT NOT NULL, checksum TEXT NOT NULL, chain TEXT NOT NULL{extra_column});
             INSERT INTO migrations_new SELECT *{} FROM migrations;
             DROP TABLE migrations;
             ALTER TABLE migrations_new RENAME TO migrations;",
            if extra_column.is_empty() {
                ""
            } else {
                ", 'by hand'"
            }
        )
    };
    let cases: [(&str, String, u32); 3] = [
        (
            "an aborting trigger",
            "CREATE TRIGGER no_row_2 BEFORE INSERT ON migrations WHEN NEW.id = 2 \
             BEGIN SELECT RAISE(ABORT, 'row 2 refused'); END;"
                .to_owned(),
            2,
        ),
        ("a CHECK constraint", rebuild("", "CHECK (id < 2)"), 2),
        (
            "a NOT NULL column without default",
            rebuild(", extra TEXT NOT NULL", ""),
            1,
        ),
    ];
    let mut failures = Vec::new();
    for (what, sabotage, failing) in cases {
        let db = TempDb::new();
        let mut conn = db.open();
        let m = markers("", 4);
        m.migrate_to(&mut conn, 0).unwrap();
        conn.execute_batch(&sabotage).unwrap();
        let name = NAMES[failing as usize];
        match m.migrate(&mut conn) {
            Ok(report) => failures.push(format!("{what}: returned Ok ({:?})", report.ids())),
            Err(error) => {
                let message = error.to_string();
                if !message.contains(name) || !message.contains(&failing.to_string()) {
                    failures.push(format!(
                        "{what}: the error does not name migration {failing} `{name}`: {message}"
                    ));
                }
            }
        }
        if !conn.is_autocommit() {
            failures.push(format!("{what}: left inside a transaction"));
        }
        drop(conn);
        let conn = db.open();
        match history_agrees_with_schema(&conn, "migrations", &MARKERS) {
            Ok(k) if k == failing as usize => {}
            Ok(k) => failures.push(format!(
                "{what}: {k} migrations applied; the {failing} before the failing step must stay"
            )),
            Err(problem) => failures.push(format!("{what}: {problem}")),
        }
    }
    assert_no_failures("tracking rows that cannot be written", &failures);
}

// ---------------------------------------------------------------- deferred foreign keys

/// Migration 0 makes `parent`, `child` (an immediate foreign key) and
/// `deferred_child` (a deferred one); migration 2 is `step`; 1 and 3 are
/// markers.
fn deferred_foreign_keys_migrator(step: &'static str) -> Migrator {
    migrator_of(
        "",
        vec![
            sql("CREATE TABLE parent (id INTEGER PRIMARY KEY);
                 CREATE TABLE child (parent INTEGER REFERENCES parent (id));
                 CREATE TABLE deferred_child (parent INTEGER REFERENCES parent (id)
                                              DEFERRABLE INITIALLY DEFERRED);
                 CREATE TABLE t0 (x);"),
            marker(1),
            sql(step),
            marker(3),
        ],
    )
}

/// Deferring foreign keys for the length of a step, and fixing the rows
/// before it ends, is what the pragma is for: it works, and so does turning
/// it off again once nothing is left to check.
#[test]
fn deferred_foreign_keys_fixed_within_the_step_are_fine() {
    let variants: [(&str, &'static str); 5] = [
        (
            "PRAGMA defer_foreign_keys = ON, twice",
            "PRAGMA defer_foreign_keys = ON; INSERT INTO child VALUES (6); \
             PRAGMA defer_foreign_keys = ON; INSERT INTO parent VALUES (6); CREATE TABLE t2 (x);",
        ),
        (
            "PRAGMA defer_foreign_keys = ON",
            "PRAGMA defer_foreign_keys = ON; INSERT INTO child VALUES (7); \
             INSERT INTO parent VALUES (7); CREATE TABLE t2 (x);",
        ),
        (
            "other pragmas while the violation waits",
            "PRAGMA defer_foreign_keys = ON; INSERT INTO child VALUES (9); \
             PRAGMA foreign_key_list(child); PRAGMA cache_size = -4000; \
             INSERT INTO parent VALUES (9); CREATE TABLE t2 (x);",
        ),
        (
            "PRAGMA defer_foreign_keys = ON, then OFF once fixed",
            "PRAGMA defer_foreign_keys = ON; INSERT INTO child VALUES (7); \
             INSERT INTO parent VALUES (7); PRAGMA defer_foreign_keys = OFF; CREATE TABLE t2 (x);",
        ),
        (
            "DEFERRABLE INITIALLY DEFERRED",
            "INSERT INTO deferred_child VALUES (8); INSERT INTO parent VALUES (8); \
             CREATE TABLE t2 (x);",
        ),
    ];
    let mut failures = Vec::new();
    for (what, fixed) in variants {
        let db = TempDb::new();
        let mut conn = db.open();
        conn.execute_batch("PRAGMA foreign_keys = ON").unwrap();
        let m = deferred_foreign_keys_migrator(fixed);
        match m.migrate(&mut conn) {
            Ok(report) if report.ids() == vec![0, 1, 2, 3] => {}
            other => failures.push(format!(
                "{what}: {:?}",
                other.map(|r| r.ids()).map_err(|e| e.to_string())
            )),
        }
        let orphans = common::query_i64(&conn, "SELECT count(*) FROM pragma_foreign_key_check");
        if orphans != 0 {
            failures.push(format!("{what}: {orphans} violations"));
        }
    }
    assert_no_failures("deferred foreign keys fixed within the step", &failures);
}

#[test]
fn a_deferred_foreign_key_violation_names_the_step_and_keeps_the_earlier_ones() {
    let variants: [(&str, &'static str); 5] = [
        (
            "DEFERRABLE INITIALLY DEFERRED",
            "INSERT INTO deferred_child VALUES (99); CREATE TABLE t2 (x);",
        ),
        // Turned off in SQLite's other spellings of false: refused the same.
        (
            "PRAGMA defer_foreign_keys = ON, then 0",
            "PRAGMA defer_foreign_keys = ON; INSERT INTO child VALUES (99); \
             PRAGMA defer_foreign_keys = 0; CREATE TABLE t2 (x);",
        ),
        (
            "PRAGMA defer_foreign_keys = ON, then 'off', quoted",
            "PRAGMA defer_foreign_keys = ON; INSERT INTO child VALUES (99); \
             PRAGMA defer_foreign_keys = 'off'; CREATE TABLE t2 (x);",
        ),
        (
            "PRAGMA defer_foreign_keys = ON",
            "PRAGMA defer_foreign_keys = ON; INSERT INTO child VALUES (99); CREATE TABLE t2 (x);",
        ),
        // Turning it off again makes SQLite forget the violations.
        (
            "PRAGMA defer_foreign_keys = ON, then OFF",
            "PRAGMA defer_foreign_keys = ON; INSERT INTO child VALUES (99); \
             PRAGMA defer_foreign_keys = OFF; CREATE TABLE t2 (x);",
        ),
    ];
    let mut failures = Vec::new();
    for (what, orphan) in variants {
        let db = TempDb::new();
        let mut conn = db.open();
        conn.execute_batch("PRAGMA foreign_keys = ON").unwrap();
        let m = deferred_foreign_keys_migrator(orphan);
        m.migrate_to(&mut conn, 0).unwrap();
        let before = ConnectionState::of(&conn);
        match m.migrate(&mut conn) {
            Ok(report) => failures.push(format!("{what}: returned Ok ({:?})", report.ids())),
            Err(error) => {
                let message = error.to_string();
                if !message.contains("third") {
                    failures.push(format!(
                        "{what}: the error does not name migration 2 `third`: {message}"
                    ));
                }
                // Turning it off is refused as it happens, with the fix.
                if what.contains(", then") && !message.contains("fix the rows first") {
                    failures.push(format!(
                        "{what}: the error does not say that turning the pragma off \
                         forgets the violations: {message}"
                    ));
                }
            }
        }
        let now = ConnectionState::of(&conn);
        if now != before {
            failures.push(format!("{what}: connection state {now:?}, was {before:?}"));
        }
        drop(conn);
        let conn = db.open();
        match history_agrees_with_schema(&conn, "migrations", &MARKERS) {
            Ok(2) => {}
            Ok(k) => failures.push(format!(
                "{what}: {k} migrations applied; 0 and 1 must stay, the violating 2 must not"
            )),
            Err(problem) => failures.push(format!("{what}: {problem}")),
        }
        let orphans = common::query_i64(&conn, "SELECT count(*) FROM pragma_foreign_key_check");
        if orphans != 0 {
            failures.push(format!("{what}: {orphans} violations committed"));
        }
    }
    assert_no_failures("deferred foreign key violations", &failures);
}

// ---------------------------------------------------------------- hand-edited history

#[test]
fn migrate_and_pending_agree_on_a_hand_edited_history() {
    let edits: [(&str, &str); 3] = [
        (
            "checksum",
            "UPDATE migrations SET checksum = 'x' WHERE id = 0",
        ),
        ("name", "UPDATE migrations SET name = 'edited' WHERE id = 0"),
        (
            "renumbering",
            "UPDATE migrations SET id = 100 WHERE id = 0;
             UPDATE migrations SET id = 0 WHERE id = 1;
             UPDATE migrations SET id = 1 WHERE id = 100;",
        ),
    ];
    let mut failures = Vec::new();
    for (what, edit) in edits {
        let db = TempDb::new();
        let m = markers("", 3);
        m.migrate(&mut db.open()).unwrap();
        tamper(&db, edit);
        let mut conn = db.open();
        let pending = m.pending_migrations(&conn);
        let migrated = m.migrate(&mut conn);
        let describe = format!(
            "pending_migrations() = {:?}, migrate() = {:?}",
            pending.as_ref().map(|p| p.len()).map_err(|e| e.to_string()),
            migrated
                .as_ref()
                .map(|r| r.ids())
                .map_err(|e| e.to_string())
        );
        match (&pending, &migrated) {
            (Err(_), Err(_)) => {}
            (Ok(p), Ok(r)) if p.is_empty() && r.is_empty() => {}
            _ => failures.push(format!("{what}: they disagree: {describe}")),
        }
        if what == "renumbering" && migrated.is_ok() {
            failures.push(format!(
                "{what}: migrate() accepted swapped history rows: {describe}"
            ));
        }
    }
    assert_no_failures("hand-edited history", &failures);
}

/// The up-to-date check reads the newest row only, and vouches for the rows
/// before it through their chain; it is the tracking table's triggers that
/// turn a hand edit of an older row into a failed check. So with the
/// triggers dropped, an older row edited into something no full read would
/// accept goes unseen: proof that the O(1) path is the one taken, and that
/// the triggers are what makes hand edits visible to it.
///
/// The same holds for a history short of the set (`migrate_to` a goal
/// already passed), which the check answers from the newest row's id and
/// chain rather than from the set's head.
#[test]
fn the_up_to_date_check_reads_one_row_and_the_triggers_keep_it_honest() {
    for goal in [None, Some(1)] {
        for (triggers_kept, expect_ok) in [(true, false), (false, true)] {
            let db = TempDb::new();
            let m = markers("", 3);
            let run = |conn: &mut rusqlite::Connection| match goal {
                None => m.migrate(conn),
                Some(goal) => m.migrate_to(conn, goal),
            };
            run(&mut db.open()).unwrap();
            if !triggers_kept {
                drop_tracking_triggers(&db);
            }
            // A renamed row: the full read refuses it (Modified).
            tamper(&db, "UPDATE migrations SET name = 'renamed' WHERE id = 0");
            let result = run(&mut db.open());
            assert_eq!(
                result.is_ok(),
                expect_ok,
                "goal {goal:?}, triggers kept: {triggers_kept}: {result:?}"
            );
        }
    }
}

/// The triggers are dropped while a run writes (so that the bookkeeping
/// statements, prepared again after every step's schema change, do not
/// compile them each time) and must be back whatever way the run ends.
#[test]
fn the_triggers_are_back_after_every_kind_of_write() {
    let triggers = |db: &TempDb| -> Vec<(String, String)> {
        let conn = db.open();
        let mut stmt = conn
            .prepare(
                "SELECT name, sql FROM sqlite_master WHERE type = 'trigger' \
                 AND name LIKE 'migrate_core_%' ORDER BY name",
            )
            .unwrap();
        let rows = stmt.query_map([], |row| Ok((row.get(0)?, row.get(1)?)));
        rows.unwrap().collect::<Result<_, _>>().unwrap()
    };
    let assert_all_three = |db: &TempDb, after: &str| {
        let found = triggers(db);
        let names: Vec<&str> = found.iter().map(|(name, _)| name.as_str()).collect();
        assert_eq!(
            names,
            [
                "migrate_core_delete_migrations",
                "migrate_core_edit_migrations",
                "migrate_core_insert_migrations"
            ],
            "after {after}"
        );
        assert!(
            found[1]
                .1
                .contains("UPDATE OF id, name, applied_at, checksum"),
            "after {after}: {}",
            found[1].1
        );
    };
    // A table created by a run gets its triggers at that run's COMMIT,
    // whether its steps are kept or not.
    let fresh = TempDb::new();
    let failing: Body =
        Arc::new(|tx: &Transaction<'_>| tx.execute_batch("SELECT no_such_function()"));
    let result = markers_with("", 1, 0, failing.clone()).migrate(&mut fresh.open());
    assert!(result.is_err(), "{result:?}");
    assert_all_three(&fresh, "a first run whose only step failed");
    let db = TempDb::new();
    markers("", 1).migrate(&mut db.open()).unwrap();
    assert_all_three(&db, "the first migrate");
    // A table of the previous definition: the edit trigger watched every
    // column. The next write replaces it.
    tamper(
        &db,
        "DROP TRIGGER migrate_core_edit_migrations;
         CREATE TRIGGER migrate_core_edit_migrations AFTER UPDATE ON migrations
         WHEN NEW.chain IS OLD.chain BEGIN SELECT 1; END;",
    );
    markers("", 3).migrate(&mut db.open()).unwrap();
    assert_all_three(&db, "migrate");
    markers("", 3).rollback_migration(&mut db.open()).unwrap();
    assert_all_three(&db, "a rollback");
    markers("", 3).dry_run(&mut db.open()).unwrap();
    assert_all_three(&db, "a dry run");
    let result = markers_with("", 4, 3, failing).migrate(&mut db.open());
    assert!(result.is_err(), "{result:?}");
    assert_eq!(
        main_tracking_ids(&db.open(), "migrations"),
        [0, 1, 2],
        "the step before it is kept"
    );
    assert_all_three(&db, "a failed step that kept the one before it");
    // And they work: a hand edit is seen by the O(1) check.
    tamper(&db, "UPDATE migrations SET name = 'renamed' WHERE id = 0");
    assert!(markers("", 3).migrate(&mut db.open()).is_err());
}

// ---------------------------------------------------------------- the up-to-date check needs no write lock

#[test]
fn an_up_to_date_database_needs_no_write_lock_even_without_verification() {
    let original = markers("", 3);
    // The same migrations, one renamed: verify_applied(false) accepts that,
    // so the database is up to date for it.
    let renamed = migrator_of("", vec![marker(0), marker(1)])
        .add(2, "renamed", |tx: &Transaction<'_>| {
            tx.execute_batch("CREATE TABLE t2 (x)")
        })
        .verify_applied(false);
    let builds = [
        (
            "the same build, verify_applied(false)",
            original.clone().verify_applied(false),
        ),
        ("a renamed build, verify_applied(false)", renamed),
    ];
    let mut failures = Vec::new();
    for (build, m) in &builds {
        // Read-only (rollback journal).
        let db = TempDb::new();
        original.migrate(&mut db.open()).unwrap();
        let mut conn =
            Connection::open_with_flags(&db.path, OpenFlags::SQLITE_OPEN_READ_ONLY).unwrap();
        match m.migrate(&mut conn) {
            Ok(report) if report.is_empty() => {}
            other => failures.push(format!(
                "{build}, read-only: {:?}",
                other.map(|r| r.ids()).map_err(|e| e.to_string())
            )),
        }
        drop(conn);

        // Write-locked by another connection (WAL, so that reads still work).
        let dir = tempfile::tempdir().unwrap();
        let path = common::new_db(dir.path(), "wal.db", true);
        let mut conn = Connection::open(&path).unwrap();
        original.migrate(&mut conn).unwrap();
        let holder = ExclusiveHolder::hold(&path, Duration::from_secs(10));
        let start = Instant::now();
        let result = m
            .clone()
            .lock_timeout(Duration::from_millis(500))
            .migrate(&mut conn);
        let elapsed = start.elapsed();
        holder.release();
        match result {
            Ok(report) if report.is_empty() => {}
            other => failures.push(format!(
                "{build}, write-locked: {:?} after {elapsed:?}",
                other.map(|r| r.ids()).map_err(|e| e.to_string())
            )),
        }
    }
    assert_no_failures("the up-to-date check", &failures);
}

/// The up-to-date check keeps its statements prepared on the application's
/// connection (rusqlite's statement cache, where the build has it). They
/// must never hold it: statements that need no other statement active run
/// after it, a schema change in between is seen (the warm connection
/// answers as a fresh one), and the connection closes cleanly.
#[test]
fn the_statements_the_check_keeps_prepared_never_hold_the_connection() {
    let m = markers("", 3);
    let changes = [
        ("a table added", "CREATE TABLE other (x)"),
        ("VACUUM", "VACUUM"),
        ("the journal mode changed", "PRAGMA journal_mode = WAL"),
        (
            "a TEMP table named like the tracking table",
            "CREATE TEMP TABLE migrations (id INTEGER PRIMARY KEY, name TEXT, \
             applied_at TEXT, checksum TEXT, chain TEXT)",
        ),
        (
            "the tracking table renamed",
            "ALTER TABLE migrations RENAME TO moved",
        ),
        ("the tracking table dropped", "DROP TABLE migrations"),
        (
            "the newest row's chain edited, the triggers dropped",
            "DROP TRIGGER migrate_core_edit_migrations; \
             UPDATE migrations SET chain = 'x' WHERE id = 2",
        ),
    ];
    let answer = |result: Result<migrate_core::Report, Error>| match result {
        Ok(report) => format!("Ok({:?})", report.ids()),
        Err(error) => format!("Err({error})"),
    };
    let mut failures = Vec::new();
    for (what, sql) in changes {
        let db = TempDb::new();
        let mut warm = db.open();
        m.migrate(&mut warm).unwrap();
        // The check: its statements are kept prepared from here on.
        assert!(m.migrate(&mut warm).unwrap().is_empty());
        if let Err(error) = warm.execute_batch(sql) {
            failures.push(format!("{what}: refused after the check: {error}"));
            continue;
        }
        let on_warm = answer(m.migrate(&mut warm));
        let on_fresh = answer(m.migrate(&mut db.open()));
        if on_warm != on_fresh {
            failures.push(format!(
                "{what}: the warm connection says {on_warm}, a fresh one {on_fresh}"
            ));
        }
        if let Err((_, error)) = warm.close() {
            failures.push(format!("{what}: close failed: {error}"));
        }
    }
    assert_no_failures("statements kept prepared by the check", &failures);
}

// ---------------------------------------------------------------- statements that cannot run in a transaction

#[test]
fn a_statement_that_cannot_work_inside_a_transaction_is_an_error() {
    let statements = [
        "PRAGMA journal_mode = WAL",
        "PRAGMA foreign_keys = OFF",
        "VACUUM",
        "ATTACH ':memory:' AS extra",
        // SQLite keeps these for the next VACUUM, which cannot come.
        "PRAGMA page_size = 8192",
        "PRAGMA auto_vacuum = FULL",
        // Takes effect, and corrupts every connection's schema cache.
        "PRAGMA schema_version = 1",
    ];
    let mut failures = Vec::new();
    for statement in statements {
        let db = TempDb::new();
        let mut conn = db.open();
        conn.execute_batch("PRAGMA foreign_keys = ON").unwrap();
        let m = markers_with(
            "",
            3,
            1,
            Arc::new(move |tx: &Transaction<'_>| {
                tx.execute_batch("CREATE TABLE t1 (x)")?;
                tx.execute_batch(statement)
            }),
        );
        m.migrate_to(&mut conn, 0).unwrap();
        let before_state = ConnectionState::of(&conn);
        let before = dump(&conn);
        let result = m.migrate(&mut conn);
        if let Ok(report) = &result {
            failures.push(format!(
                "{statement}: migrate() returned Ok ({:?}); SQLite ignored or refused the statement",
                report.ids()
            ));
        }
        // SQLite's own refusals of VACUUM and ATTACH say nothing of the
        // step or the fix: the error names the step and says what to do.
        let fix = match statement {
            "VACUUM" => Some("after migrating"),
            "ATTACH ':memory:' AS extra" => Some("before migrating"),
            _ => None,
        };
        if let Some(fix) = fix {
            if !matches!(&result, Err(Error::Forbidden { id: 1, reason, .. }) if reason.contains(fix))
            {
                failures.push(format!(
                    "{statement}: expected Forbidden for migration 1 saying to run it {fix}, got {:?}",
                    result.as_ref().map(|report| report.ids())
                ));
            }
        }
        let now = ConnectionState::of(&conn);
        if now != before_state {
            failures.push(format!("{statement}: connection state {now:?}"));
        }
        let mode: String = conn
            .query_row("PRAGMA journal_mode", [], |row| row.get(0))
            .unwrap();
        if mode != "delete" {
            failures.push(format!("{statement}: the journal mode is now {mode}"));
        }
        drop(conn);
        if result.is_err() && dump_file(&db.path) != before {
            failures.push(format!(
                "{statement}: the call failed but something was committed"
            ));
        }
    }
    assert_no_failures(
        "statements SQLite cannot run inside a transaction",
        &failures,
    );
}

// ---------------------------------------------------------------- pragmas a failed step changed

#[test]
fn pragmas_a_failed_step_changed_are_restored() {
    let mut failures = Vec::new();
    for pragma in ["query_only", "writable_schema"] {
        let db = TempDb::new();
        let mut conn = db.open();
        let m = markers_with(
            "",
            3,
            1,
            Arc::new(move |tx: &Transaction<'_>| {
                tx.execute_batch(&format!(
                    "CREATE TABLE t1 (x); PRAGMA {pragma} = ON; SELECT no_such_function();"
                ))
            }),
        );
        m.migrate_to(&mut conn, 0).unwrap();
        let before = ConnectionState::of(&conn);
        let result = m.migrate(&mut conn);
        if result.is_ok() {
            failures.push(format!("{pragma}: migrate() returned Ok"));
        }
        let now = ConnectionState::of(&conn);
        if now != before {
            failures.push(format!(
                "{pragma}: after the failed step the connection has {now:?}, was {before:?}"
            ));
        }
        // Usable for writes again.
        conn.execute_batch("PRAGMA query_only = OFF; PRAGMA writable_schema = OFF;")
            .unwrap();
        drop(conn);
        if let Err(problem) = history_agrees_with_schema(&db.open(), "migrations", &MARKERS[..3]) {
            failures.push(format!("{pragma}: {problem}"));
        }
    }
    assert_no_failures("connection pragmas set by a failed step", &failures);
}

/// Connection settings a step changes with a `PRAGMA` outlive its
/// transaction: the runner puts every one it can read back, after a failed
/// step and after a successful one, in a step outside a transaction too.
#[test]
fn every_connection_setting_a_step_changes_is_put_back() {
    // Set by the steps, each to something other than what the
    // application set before migrating (below).
    const SET: &str = "PRAGMA recursive_triggers = ON; PRAGMA ignore_check_constraints = ON;
        PRAGMA reverse_unordered_selects = ON; PRAGMA legacy_alter_table = ON;
        PRAGMA cell_size_check = ON; PRAGMA automatic_index = ON; PRAGMA trusted_schema = ON;
        PRAGMA short_column_names = OFF; PRAGMA full_column_names = ON;
        PRAGMA temp_store = MEMORY; PRAGMA threads = 2; PRAGMA wal_autocheckpoint = 77;
        PRAGMA cache_size = -1234; PRAGMA secure_delete = ON; PRAGMA journal_size_limit = 4096;
        PRAGMA mmap_size = 65536;";
    const READ: [&str; 18] = [
        "recursive_triggers",
        "ignore_check_constraints",
        "reverse_unordered_selects",
        "legacy_alter_table",
        "cell_size_check",
        "automatic_index",
        "trusted_schema",
        "count_changes",
        "short_column_names",
        "full_column_names",
        "temp_store",
        "threads",
        "wal_autocheckpoint",
        "cache_size",
        "secure_delete",
        "journal_size_limit",
        "mmap_size",
        "synchronous",
    ];
    let read = |conn: &Connection| -> Vec<(&str, Option<i64>)> {
        READ.iter()
            .map(|pragma| {
                let value = conn
                    .query_row(&format!("PRAGMA {pragma}"), [], |row| row.get(0))
                    .ok();
                (*pragma, value)
            })
            .collect()
    };
    let mut failures = Vec::new();
    let cases: [(&str, bool, bool); 3] = [
        ("a failed step", true, false),
        ("a successful step", false, false),
        ("a step outside a transaction", false, true),
    ];
    for (what, fails, outside) in cases {
        let db = TempDb::new();
        let mut conn = db.open();
        conn.execute_batch(
            "PRAGMA automatic_index = OFF; PRAGMA trusted_schema = OFF; PRAGMA cache_size = -3000;
             PRAGMA synchronous = FULL; PRAGMA wal_autocheckpoint = 500;",
        )
        .unwrap();
        if !outside {
            // The application's own, on while it migrates: the runner's own
            // writes must not mind it, and it is on again afterwards.
            conn.execute_batch("PRAGMA count_changes = ON").unwrap();
        }
        let before = read(&conn);
        let mut m = Migrator::new()
            .set("settings")
            .add(0, "a", |tx: &Transaction| {
                tx.execute_batch("CREATE TABLE a (x)")
            });
        m = if outside {
            // Outside a transaction: synchronous, and count_changes, which
            // the runner's own writes must survive (refused in a
            // transaction, see `judge_pragma`).
            m.add_without_transaction(1, "sets", |conn: &Connection| {
                conn.execute_batch(SET)?;
                conn.execute_batch("PRAGMA synchronous = OFF; PRAGMA count_changes = ON")
            })
        } else {
            m.add(1, "sets", move |tx: &Transaction| {
                tx.execute_batch(SET)?;
                if fails {
                    tx.execute_batch("SELECT nope()")?;
                }
                Ok::<(), rusqlite::Error>(())
            })
        };
        let result = m.migrate(&mut conn);
        if result.is_ok() == fails {
            failures.push(format!(
                "{what}: migrate() gave {:?}",
                result.map(|r| r.ids())
            ));
        }
        let after = read(&conn);
        for (b, a) in before.iter().zip(&after) {
            if b != a {
                failures.push(format!("{what}: {} was {:?}, is {:?}", b.0, b.1, a.1));
            }
        }
    }
    assert_no_failures("connection settings changed by steps", &failures);
}

/// What a step changes through SQLite's C API rather than a statement (no
/// authorizer sees it): `sqlite3_db_config` switches and `sqlite3_limit`.
/// A lowered limit must not fail the runner's own statements (and so lose
/// the steps before it), and both are put back after the call: with
/// triggers left off, the tracking table's tamper check would stop too.
#[test]
fn switches_and_limits_a_step_changes_through_the_c_api_are_put_back() {
    use migrate_core::rusqlite::ffi;
    const ENABLE_TRIGGER: std::ffi::c_int = 1003;
    const DEFENSIVE: std::ffi::c_int = 1010;
    const SQL_LENGTH: std::ffi::c_int = 1;
    fn switch(conn: &Connection, op: std::ffi::c_int) -> std::ffi::c_int {
        let mut value = 0;
        // SAFETY: a live handle; -1 reads, the pointer receives the value.
        unsafe {
            ffi::sqlite3_db_config(conn.handle(), op, -1, &mut value as *mut std::ffi::c_int)
        };
        value
    }
    fn limit(conn: &Connection, id: std::ffi::c_int) -> std::ffi::c_int {
        // SAFETY: a live handle; -1 reads.
        unsafe { ffi::sqlite3_limit(conn.handle(), id, -1) }
    }
    let db = TempDb::new();
    let mut conn = db.open();
    let before = (
        switch(&conn, ENABLE_TRIGGER),
        switch(&conn, DEFENSIVE),
        limit(&conn, SQL_LENGTH),
    );
    let m = markers_with(
        "",
        3,
        1,
        Arc::new(|tx: &Transaction<'_>| {
            tx.execute_batch("CREATE TABLE IF NOT EXISTS ran (id INTEGER NOT NULL); INSERT INTO ran VALUES (1); CREATE TABLE t1 (x);")?;
            let mut ignored = 0;
            // SAFETY: a live handle.
            unsafe {
                ffi::sqlite3_db_config(
                    tx.handle(),
                    ENABLE_TRIGGER,
                    0,
                    &mut ignored as *mut std::ffi::c_int,
                );
                ffi::sqlite3_db_config(
                    tx.handle(),
                    DEFENSIVE,
                    1,
                    &mut ignored as *mut std::ffi::c_int,
                );
                ffi::sqlite3_limit(tx.handle(), SQL_LENGTH, 120);
            }
            Ok(())
        }),
    );
    let result = m.migrate(&mut conn);
    assert_eq!(
        result.map(|r| r.ids()).map_err(|e| e.to_string()),
        Ok(vec![0, 1, 2])
    );
    let after = (
        switch(&conn, ENABLE_TRIGGER),
        switch(&conn, DEFENSIVE),
        limit(&conn, SQL_LENGTH),
    );
    assert_eq!(after, before);
    // The tamper check works: a hand edit is seen.
    conn.execute_batch("UPDATE migrations SET name = 'renamed' WHERE id = 0")
        .unwrap();
    assert!(m.migrate(&mut conn).is_err(), "a hand edit went unseen");
}

/// A step turning `query_only` on would make its own tracking row, and
/// the COMMIT of the steps before it, fail: it is refused, naming the step,
/// and the steps before it stay applied.
#[test]
fn a_step_turning_query_only_on_is_refused_and_the_steps_before_it_stay() {
    let mut failures = Vec::new();
    let cases: [(&str, Body); 3] = [
        (
            "PRAGMA, then fails",
            sql("CREATE TABLE t2 (x); PRAGMA query_only = ON; SELECT nope();"),
        ),
        (
            "PRAGMA, then Ok",
            sql("CREATE TABLE t2 (x); PRAGMA query_only = 1;"),
        ),
        (
            "pragma_update",
            Arc::new(|tx: &Transaction<'_>| {
                tx.execute_batch("CREATE TABLE t2 (x)")?;
                tx.pragma_update(None, "query_only", true)
            }),
        ),
    ];
    for (what, body) in cases {
        let db = TempDb::new();
        let mut conn = db.open();
        let state = ConnectionState::of(&conn);
        match markers_with("", 4, 2, body).migrate(&mut conn) {
            Err(Error::Forbidden { id: 2, reason, .. }) if reason.contains("query_only") => {}
            other => failures.push(format!(
                "{what}: expected Forbidden for migration 2, got {:?}",
                other.map(|r| r.ids())
            )),
        }
        assert_connection_restored(&conn, &state, what);
        if let Err(problem) = history_agrees_with_schema(&conn, "migrations", &MARKERS[..2]) {
            failures.push(format!("{what}: {problem}"));
        }
        if main_tracking_ids(&conn, "migrations") != vec![0, 1] {
            failures.push(format!(
                "{what}: history {:?}, expected the two steps before it",
                main_tracking_ids(&conn, "migrations")
            ));
        }
    }
    assert_no_failures("steps turning query_only on", &failures);
}

/// Outside a transaction a step may change the journal mode; if it turns
/// the journal off, the steps after it could not roll back: refused before
/// they run, the step itself recorded.
#[test]
fn a_step_outside_a_transaction_turning_the_journal_off_stops_the_run_before_the_next() {
    let db = TempDb::new();
    let mut conn = db.open();
    let m = Migrator::new()
        .set("journal_off")
        .add(0, "a", |tx: &Transaction| {
            tx.execute_batch("CREATE TABLE a (x)")
        })
        .add_without_transaction(1, "no_journal", |conn: &Connection| {
            let mode: String = conn.query_row("PRAGMA journal_mode = OFF", [], |r| r.get(0))?;
            assert_eq!(mode, "off");
            Ok::<(), rusqlite::Error>(())
        })
        .add(2, "half", |tx: &Transaction| {
            tx.execute_batch("INSERT INTO a VALUES (1); CREATE TABLE half (y);")?;
            tx.execute_batch("SELECT nope()")
        });
    let result = m.migrate(&mut conn);
    assert!(
        matches!(result, Err(Error::NoJournal)),
        "expected NoJournal before migration 2 ran, got {:?}",
        result.map(|r| r.ids())
    );
    assert_eq!(count(&conn, "a"), 0);
    assert!(!main_has_table(&conn, "half"), "migration 2 left a table");
    assert_eq!(
        main_tracking_ids(&conn, "migrations_journal_off"),
        vec![0, 1]
    );
}

#[test]
fn a_query_only_connection_with_pending_work_is_refused_as_read_only() {
    let db = TempDb::new();
    markers("", 3).migrate_to(&mut db.open(), 0).unwrap();
    let before = snapshot(&db);
    let mut conn = db.open();
    conn.execute_batch("PRAGMA query_only = ON").unwrap();
    let state = ConnectionState::of(&conn);
    let error = markers("", 3).migrate(&mut conn).unwrap_err();
    let message = error.to_string();
    assert!(message.contains("read-only"), "{message}");
    assert_connection_restored(&conn, &state, "query_only");
    drop(conn);
    assert_untouched(&db, &before);
}

// ---------------------------------------------------------------- pre-existing orphans

#[migration(0, set = "orphans")]
fn orphans_schema(tx: &Transaction) -> rusqlite::Result<()> {
    tx.execute_batch(
        "CREATE TABLE parent (id INTEGER PRIMARY KEY);
         CREATE TABLE child (parent INTEGER REFERENCES parent (id));
         CREATE TABLE other (x);
         INSERT INTO other VALUES (1), (2);",
    )
}

/// Rebuilds `other`, which has nothing to do with `parent` and `child`.
#[migration(1, set = "orphans", foreign_keys = off)]
fn orphans_rebuild_other(tx: &Transaction) -> rusqlite::Result<()> {
    tx.execute_batch(
        "CREATE TABLE other_new (x, y INTEGER NOT NULL DEFAULT 0);
         INSERT INTO other_new (x) SELECT x FROM other;
         DROP TABLE other;
         ALTER TABLE other_new RENAME TO other;",
    )
}

#[test]
fn pre_existing_orphans_elsewhere_do_not_fail_a_foreign_keys_off_step() {
    let db = TempDb::new();
    let m = Migrator::new().set("orphans");
    m.migrate_to(&mut db.open(), 0).unwrap();
    // Orphans written long ago, by a connection with foreign keys off.
    tamper(
        &db,
        "PRAGMA foreign_keys = OFF; INSERT INTO child VALUES (42), (43);",
    );
    let mut conn = db.open();
    conn.execute_batch("PRAGMA foreign_keys = ON").unwrap();
    let state = ConnectionState::of(&conn);
    let result = m.migrate(&mut conn);
    assert_connection_restored(&conn, &state, "orphans");
    match result {
        Ok(report) => assert_eq!(report.ids(), vec![1]),
        Err(error) => panic!(
            "a foreign_keys = off step that touched only `other` failed on violations that \
             existed before it: {error}"
        ),
    }
}

// ---------------------------------------------------------------- disk full

#[test]
fn a_full_disk_fails_the_step_and_leaves_a_healthy_file() {
    let Some(fs) = SmallTmpfs::mount(2048) else {
        eprintln!("skipped: cannot mount a tmpfs here (needs root and a permissive kernel)");
        return;
    };
    let path = fs.path().join("full.db");
    let big = sql("CREATE TABLE t1 (x);
         WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 150)
         INSERT INTO t1 SELECT randomblob(4096) FROM n;");
    let m = markers_with("", 3, 1, big);
    let mut conn = Connection::open(&path).unwrap();
    m.migrate_to(&mut conn, 0).unwrap();
    let before = ConnectionState::of(&conn);
    let filler = fs.fill();

    let result = m.migrate(&mut conn);
    assert!(
        result.is_err(),
        "a full disk gave {:?}",
        result.map(|r| r.ids())
    );
    assert_connection_restored(&conn, &before, "disk full");
    std::fs::remove_file(&filler).unwrap();
    {
        let fresh = Connection::open(&path).unwrap();
        integrity_ok(&fresh);
        assert_eq!(
            assert_history_agrees(&fresh, "migrations", &MARKERS[..3], "disk full"),
            1
        );
    }
    // With space again, the same connection goes on.
    assert_eq!(m.migrate(&mut conn).unwrap().ids(), vec![1, 2]);
    integrity_ok(&conn);
    assert_eq!(
        assert_history_agrees(&conn, "migrations", &MARKERS[..3], "after freeing space"),
        3
    );
    drop(conn);
    assert_no_lock_held(&path, "disk full");
}
