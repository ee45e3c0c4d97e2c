//! The connection's callbacks and functions, the application's and the
//! steps' own: SQLite keeps one authorizer and one commit hook per
//! connection and reports neither, and an application may define SQL
//! functions that shadow SQLite's built-ins. What the runner relies on must
//! not be taken away from it unnoticed, and what it writes must not depend
//! on them.
//!
//! Each test works on a real file in a temporary directory and reads the
//! outcome back through a fresh connection.

mod common;

use std::sync::Arc;

use common::state::{main_has_table, main_tracking_ids};
use common::TempDb;
use migrate_core::rusqlite::hooks::{AuthContext, Authorization};
use migrate_core::rusqlite::{self, Connection, Transaction};
use migrate_core::{Error, Migrator};

type Body = Arc<dyn Fn(&Transaction<'_>) -> rusqlite::Result<()> + Send + Sync>;

const NAMES: [&str; 4] = ["first", "second", "third", "fourth"];

/// Migration `id`'s ordinary body: creates `t<id>`.
fn plain(id: u32) -> Body {
    Arc::new(move |tx: &Transaction<'_>| tx.execute_batch(&format!("CREATE TABLE t{id} (x)")))
}

/// A migrator whose migration `i` is named `NAMES[i]` and runs `bodies[i]`.
fn migrator_of(bodies: Vec<Body>) -> Migrator {
    let mut m = Migrator::new();
    for (id, body) in bodies.into_iter().enumerate() {
        m = m.add(id as u32, NAMES[id], move |tx: &Transaction<'_>| body(tx));
    }
    m
}

/// No authorizer at all, as rusqlite's `authorizer(None)` leaves it.
fn no_authorizer(conn: &Connection) -> rusqlite::Result<()> {
    conn.authorizer(None::<fn(AuthContext<'_>) -> Authorization>)
}

/// The names recorded in the tracking table, in id order.
fn recorded_names(conn: &Connection) -> Vec<String> {
    let mut statement = conn
        .prepare("SELECT name FROM migrations ORDER BY id")
        .unwrap();
    let names = statement
        .query_map([], |row| row.get(0))
        .unwrap()
        .collect::<rusqlite::Result<Vec<String>>>()
        .unwrap();
    names
}

/// What a step may do once the guard's authorizer is out of the way: each
/// writes the history, which the guard forbids.
const FORGERIES: [&str; 3] = [
    "UPDATE migrations SET name = 'forged' WHERE id = 0",
    "DELETE FROM migrations WHERE id = 0",
    "INSERT INTO migrations (id, name, checksum, chain, applied_at) \
     VALUES (7, 'forged', '', '', '2020-01-01T00:00:00Z')",
];

/// How a step takes the authorizer away: removes it, or puts its own in
/// its place (a library it calls that watches its own statements, say).
fn take_authorizer(conn: &Connection, replace: bool) -> rusqlite::Result<()> {
    if replace {
        conn.authorizer(Some(|_: AuthContext<'_>| Authorization::Allow))
    } else {
        no_authorizer(conn)
    }
}

#[test]
fn a_step_taking_the_authorizer_away_cannot_write_the_history() {
    let mut failures = Vec::new();
    for forgery in FORGERIES {
        for replace in [false, true] {
            let context = format!("{forgery:?}, authorizer replaced: {replace}");
            let db = TempDb::new();
            let mut conn = db.open();
            let hostile: Body = Arc::new(move |tx: &Transaction<'_>| {
                take_authorizer(tx, replace)?;
                tx.execute_batch(forgery)?;
                tx.execute_batch("CREATE TABLE t2 (x)")
            });
            let m = migrator_of(vec![plain(0), plain(1), hostile, plain(3)]);
            // Migration 0 in a run of its own, 1 and 2 in the next: the
            // forgery of an earlier run's row, and the batch's own row.
            m.migrate_to(&mut conn, 0).unwrap();
            match m.migrate(&mut conn) {
                Err(Error::Forbidden { id: 2, reason, .. }) if reason.contains("authorizer") => {}
                other => failures.push(format!(
                    "{context}: expected Forbidden for migration 2 naming the authorizer, got {other:?}"
                )),
            }
            drop(conn);
            let conn = db.open();
            let ids = main_tracking_ids(&conn, "migrations");
            if ids != [0, 1] {
                failures.push(format!("{context}: history {ids:?}, expected [0, 1]"));
            }
            let names = recorded_names(&conn);
            if names != ["first", "second"] {
                failures.push(format!(
                    "{context}: names {names:?}, expected [\"first\", \"second\"]"
                ));
            }
            if main_has_table(&conn, "t2") || main_has_table(&conn, "t3") {
                failures.push(format!(
                    "{context}: the failed step or the one after it is on disk"
                ));
            }
            // The history must still vouch for itself: the next run, with
            // the step fixed, applies 2 and 3 and nothing else.
            let mut conn = conn;
            let fixed = migrator_of(vec![plain(0), plain(1), plain(2), plain(3)]);
            match fixed.migrate(&mut conn) {
                Ok(report) if report.ids() == [2, 3] => {}
                other => failures.push(format!(
                    "{context}: the fixed set should apply [2, 3], got {other:?}"
                )),
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn a_step_taking_the_commit_hook_away_fails_and_keeps_nothing_of_itself() {
    for replace in [false, true] {
        let db = TempDb::new();
        let mut conn = db.open();
        let hostile: Body = Arc::new(move |tx: &Transaction<'_>| {
            if replace {
                tx.commit_hook(Some(|| false))?;
            } else {
                tx.commit_hook(None::<fn() -> bool>)?;
            }
            tx.execute_batch("CREATE TABLE t1 (x)")
        });
        let m = migrator_of(vec![plain(0), hostile, plain(2)]);
        let result = m.migrate(&mut conn);
        assert!(
            matches!(&result, Err(Error::Forbidden { id: 1, reason, .. })
                if reason.contains("commit hook") && reason.contains("nothing of the step was kept")),
            "replace: {replace}: {result:?}"
        );
        assert!(conn.is_autocommit());
        drop(conn);
        let conn = db.open();
        assert_eq!(main_tracking_ids(&conn, "migrations"), [0]);
        assert!(main_has_table(&conn, "t0"));
        assert!(!main_has_table(&conn, "t1") && !main_has_table(&conn, "t2"));
    }
}

/// A step that takes both callbacks away and then loses its transaction
/// (`INSERT OR ROLLBACK`): the statements it runs after that commit one by
/// one, and nothing can take them back. The run must say so, and must not
/// do the lost steps again on top of them (before: "the database already
/// has tables" about the step's own table, the step's failure lost).
#[test]
fn a_step_unguarded_after_losing_its_transaction_is_reported_and_not_redone() {
    let db = TempDb::new();
    let mut conn = db.open();
    let hostile: Body = Arc::new(|tx: &Transaction<'_>| {
        no_authorizer(tx)?;
        tx.commit_hook(None::<fn() -> bool>)?;
        tx.execute_batch("CREATE TABLE u (x UNIQUE); INSERT INTO u VALUES (1);")?;
        let lost = tx.execute_batch("INSERT OR ROLLBACK INTO u VALUES (1)");
        tx.execute_batch("CREATE TABLE half_written (x); INSERT INTO half_written VALUES (1);")?;
        lost
    });
    let m = migrator_of(vec![plain(0), plain(1), hostile, plain(3)]);
    let result = m.migrate(&mut conn);
    match &result {
        Err(Error::Forbidden { id: 2, reason, .. })
            if reason.contains("authorizer") && reason.contains("may have been committed") => {}
        other => {
            panic!("expected Forbidden for migration 2 saying what may be left, got {other:?}")
        }
    }
    assert!(conn.is_autocommit());
    drop(conn);
    let conn = db.open();
    // What is on disk is what the message says: the unwatched statements,
    // nothing done again after them.
    assert!(main_has_table(&conn, "half_written"));
    assert!(!main_has_table(&conn, "t3"));
}

/// The guard's own check must not fail a step that leaves the callbacks
/// alone, even one that prepares, steps and finalizes many statements, or
/// ends with a statement SQLite refused, or one that changes no schema
/// (nothing makes SQLite prepare a statement again after it).
#[test]
fn steps_that_leave_the_callbacks_alone_pass_the_check() {
    let db = TempDb::new();
    let mut conn = db.open();
    let busy: Body = Arc::new(|tx: &Transaction<'_>| {
        tx.execute_batch("CREATE TABLE t1 (x)")?;
        for i in 0..100 {
            tx.execute("INSERT INTO t1 VALUES (?1)", [i])?;
        }
        // An error the step swallows.
        let _ = tx.execute_batch("SELECT * FROM no_such_table");
        Ok(())
    });
    let data_only: Body =
        Arc::new(|tx: &Transaction<'_>| tx.execute_batch("INSERT INTO t1 VALUES (-1)"));
    let m = migrator_of(vec![plain(0), busy, data_only, plain(3)]);
    let report = m.migrate(&mut conn).unwrap();
    assert_eq!(report.ids(), [0, 1, 2, 3]);
    let back = migrator_of(vec![plain(0), plain(1), plain(2), plain(3)]);
    assert!(back.migrate(&mut conn).unwrap().ids().is_empty());
}

/// What `baseline` and `adopt` leave: the ids recorded and `user_version`.
fn recorded(conn: &Connection) -> (Vec<i64>, i64) {
    let version = conn
        .query_row("PRAGMA user_version", [], |row| row.get(0))
        .unwrap();
    (main_tracking_ids(conn, "migrations"), version)
}

/// Runs `call` with an interrupt at every tick of it in turn (an
/// application's progress handler, a deadline, say): whenever the call
/// says it failed, nothing of it is on disk; whenever it says Ok, all of
/// it. An interrupt can reach COMMIT after it took effect, and SQLite
/// reports it all the same (before: `baseline` returned "interrupted"
/// with its rows committed, and the next try met `AlreadyHasHistory`).
fn interrupt_every_tick(
    what: &str,
    prepare: impl Fn(&Connection),
    call: impl Fn(&mut Connection) -> Result<(), Error>,
    done: (Vec<i64>, i64),
) {
    let ticks = {
        let db = TempDb::new();
        let mut conn = db.open();
        prepare(&conn);
        let (result, injection) = common::faults::with_interrupt_at(&mut conn, None, &call);
        result.unwrap();
        assert_eq!(recorded(&conn), done, "{what} without interrupts");
        injection.ticks
    };
    let mut failures = Vec::new();
    for tick in 1..=ticks {
        let db = TempDb::new();
        let mut conn = db.open();
        // Hundreds of files: no need to wait for the disk (what is checked
        // is read back through the same operating system).
        conn.pragma_update(None, "synchronous", "OFF").unwrap();
        prepare(&conn);
        let before = recorded(&conn);
        let (result, _) = common::faults::with_interrupt_at(&mut conn, Some(tick), &call);
        if !conn.is_autocommit() {
            failures.push(format!("tick {tick}: left inside a transaction"));
        }
        drop(conn);
        let after = recorded(&db.open());
        match result {
            Ok(()) if after != done => {
                failures.push(format!("tick {tick}: Ok, but the file holds {after:?}"))
            }
            Err(error) if after != before => failures.push(format!(
                "tick {tick}: {error}, but the file holds {after:?} (before: {before:?})"
            )),
            _ => {}
        }
    }
    assert!(
        failures.is_empty(),
        "{what}, {ticks} ticks:\n{}",
        failures.join("\n")
    );
}

#[test]
fn baseline_and_adopt_say_failed_only_when_nothing_was_committed() {
    let m = migrator_of(vec![plain(0), plain(1), plain(2)]);
    interrupt_every_tick(
        "baseline through 1",
        |_| {},
        |conn| m.baseline(conn, 1),
        // The default set mirrors its count in `user_version`.
        (vec![0, 1], 2),
    );
    interrupt_every_tick(
        "adopt of user_version 2",
        |conn| {
            conn.execute_batch("CREATE TABLE t0 (x); CREATE TABLE t1 (x); PRAGMA user_version = 2;")
                .unwrap()
        },
        |conn| {
            m.adopt(conn, migrate_core::Legacy::UserVersion { first_file: 1 })
                .map(drop)
        },
        (vec![0, 1], 2),
    );
}

/// SQL functions an application may define on its connection, each
/// shadowing SQLite's own of that name and number of arguments, and
/// answering nonsense. migrate-core's own statements must not call any of
/// them (before: `applied_at` came from the application's `strftime` or
/// `coalesce`; its `lower` made two tables differing in a non-ASCII letter
/// one, its `like` and `instr` made a managed database look unmanaged, its
/// `max` kept the tamper triggers from marking a hand edit).
fn shadow_builtins(conn: &Connection) {
    use migrate_core::rusqlite::functions::FunctionFlags;
    let flags = FunctionFlags::SQLITE_UTF8;
    for (name, args) in [
        ("strftime", -1),
        ("coalesce", 2),
        ("lower", 1),
        ("upper", 1),
        ("like", 2),
        ("like", 3),
        ("instr", 2),
        ("max", 1),
    ] {
        conn.create_scalar_function(name, args, flags, |_| Ok("nonsense".to_owned()))
            .unwrap();
    }
    // A Unicode-aware `lower`, as ICU builds have: folds `É` to `é`.
    conn.create_scalar_function("lower", 1, flags, |ctx| {
        Ok(ctx.get::<String>(0)?.to_lowercase())
    })
    .unwrap();
}

#[test]
fn the_applications_own_sql_functions_change_nothing_migrate_core_does() {
    let db = TempDb::new();
    let mut conn = db.open();
    shadow_builtins(&conn);
    let m = migrator_of(vec![plain(0), plain(1)]);
    assert_eq!(m.migrate(&mut conn).unwrap().ids(), [0, 1]);
    for applied in m.applied_migrations(&conn).unwrap() {
        let at = applied.applied_at;
        let shape = at.len() == 24
            && at.as_bytes()[4] == b'-'
            && at.as_bytes()[10] == b'T'
            && at.ends_with('Z')
            && at.starts_with("20");
        assert!(shape, "applied_at {at:?} is not RFC 3339 UTC");
    }
    // Two named sets whose tables differ in a non-ASCII letter only: two
    // tables to SQLite, which folds ASCII letters alone.
    let lower = Migrator::new()
        .set("a")
        .table("journal_é")
        .add(0, "a", |tx: &Transaction<'_>| {
            tx.execute_batch("CREATE TABLE a (x)")
        });
    let upper = Migrator::new()
        .set("b")
        .table("journal_É")
        .add(0, "b", |tx: &Transaction<'_>| {
            tx.execute_batch("CREATE TABLE b (x)")
        });
    assert_eq!(lower.migrate(&mut conn).unwrap().ids(), [0]);
    assert_eq!(upper.migrate(&mut conn).unwrap().ids(), [0]);
    // A hand edit on the application's connection is still marked: the
    // next call, on a plain connection, looks at every row.
    conn.execute("DELETE FROM migrations WHERE id = 0", [])
        .unwrap();
    drop(conn);
    let mut plain_conn = db.open();
    assert!(
        m.migrate(&mut plain_conn).is_err(),
        "a deleted history row went unnoticed"
    );
}

/// With the authorizer out of the way, a step can name a savepoint of its
/// own like the runner's: the runner's "roll back to the step's savepoint"
/// would then undo only what came after it, and keep the forged history
/// (round 17: committed, with "nothing of the step was kept"); or release
/// the runner's, and the earlier steps of the run went with the
/// transaction and were not done again. The whole transaction goes, and
/// the steps before it are done again.
#[test]
fn a_step_taking_the_authorizer_away_cannot_keep_its_work_behind_a_savepoint() {
    let mut failures = Vec::new();
    for tail in [
        "SAVEPOINT migrate_core_step;",
        "RELEASE migrate_core_step; SAVEPOINT migrate_core_step;",
        "RELEASE migrate_core_step;",
    ] {
        for return_error in [false, true] {
            let context = format!("{tail:?}, error returned: {return_error}");
            let db = TempDb::new();
            let mut conn = db.open();
            let hostile: Body = Arc::new(move |tx: &Transaction<'_>| {
                no_authorizer(tx)?;
                tx.execute_batch(&format!(
                    "CREATE TABLE evil (x);
                     DELETE FROM migrations WHERE id = 0;
                     INSERT INTO migrations (id, name, checksum, chain, applied_at)
                         VALUES (5, 'forged', '', '', '2020-01-01T00:00:00Z');
                     {tail}"
                ))?;
                if return_error {
                    tx.execute_batch("SELECT * FROM no_such_table")
                } else {
                    Ok(())
                }
            });
            let m = migrator_of(vec![plain(0), plain(1), hostile, plain(3)]);
            match m.migrate(&mut conn) {
                Err(Error::Forbidden { id: 2, reason, .. })
                    if reason.contains("nothing of the step was kept") => {}
                other => failures.push(format!("{context}: {other:?}")),
            }
            assert!(conn.is_autocommit(), "{context}");
            drop(conn);
            let conn = db.open();
            let ids = main_tracking_ids(&conn, "migrations");
            if ids != [0, 1] || recorded_names(&conn) != ["first", "second"] {
                failures.push(format!("{context}: history {ids:?}"));
            }
            if main_has_table(&conn, "evil") || !main_has_table(&conn, "t1") {
                failures.push(format!("{context}: the tables are not the history's"));
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// A step whose taking the authorizer away makes the runner's own row fail
/// (it wrote that row itself; its authorizer refuses the row): the failure
/// names the step's doing, not the table (round 17: "was the table changed
/// by hand? Restore its definition").
#[test]
fn a_row_the_step_made_impossible_is_blamed_on_the_step() {
    type Take = fn(&Transaction<'_>) -> rusqlite::Result<()>;
    let takes: [(&str, Take); 3] = [
        // Its own authorizer refuses every statement, the guard's look
        // included (SQLITE_AUTH: still an authorizer taken away).
        ("refuses everything", |tx| {
            tx.authorizer(Some(|_: AuthContext<'_>| Authorization::Deny))
        }),
        ("writes the row itself", |tx| {
            no_authorizer(tx)?;
            tx.execute_batch(
                "INSERT INTO migrations (id, name, checksum, chain, applied_at)
                 VALUES (1, 'mine', '', '', '2020-01-01T00:00:00Z')",
            )
        }),
        ("refuses the row", |tx| {
            tx.authorizer(Some(|context: AuthContext<'_>| match context.action {
                rusqlite::hooks::AuthAction::Insert {
                    table_name: "migrations",
                } => Authorization::Deny,
                _ => Authorization::Allow,
            }))
        }),
    ];
    for (what, take) in takes {
        let db = TempDb::new();
        let mut conn = db.open();
        let hostile: Body = Arc::new(move |tx: &Transaction<'_>| take(tx));
        let m = migrator_of(vec![plain(0), hostile]);
        match m.migrate(&mut conn) {
            Err(Error::Forbidden { id: 1, reason, .. }) if reason.contains("authorizer") => {}
            other => panic!("a step that {what}: {other:?}"),
        }
        drop(conn);
        assert_eq!(main_tracking_ids(&db.open(), "migrations"), [0], "{what}");
    }
}

/// A step that fails or panics with the callbacks in place reports its own
/// failure, not the guard's (cargo-mutants: a guard that always found its
/// authorizer gone passed every other test here).
#[test]
fn a_step_failing_with_the_callbacks_in_place_reports_its_own_failure() {
    let failing: Body = Arc::new(|tx: &Transaction<'_>| tx.execute_batch("SELECT * FROM nope"));
    let panicking: Body = Arc::new(|_: &Transaction<'_>| panic!("on purpose"));
    for (what, body) in [("fails", failing), ("panics", panicking)] {
        let db = TempDb::new();
        let mut conn = db.open();
        let result = migrator_of(vec![plain(0), body]).migrate(&mut conn);
        match (what, &result) {
            ("fails", Err(Error::Failed { id: 1, .. }))
            | ("panics", Err(Error::Panicked { id: 1, .. })) => {}
            _ => panic!("a step that {what}: {result:?}"),
        }
        drop(conn);
        assert_eq!(main_tracking_ids(&db.open(), "migrations"), [0], "{what}");
    }
}

/// What the application set on its connection can make SQLite read or
/// refuse what migrate-core asks for; the message must point there, not at
/// the file (round 16: each of these said the database was damaged and to
/// restore it from a backup, or gave SQLite's bare "constraint failed").
#[test]
fn what_the_application_set_is_named_not_blamed_on_the_file() {
    let db = TempDb::new();
    let mut conn = db.open();
    let m = migrator_of(vec![plain(0), plain(1)]);
    m.migrate_to(&mut conn, 0).unwrap();
    drop(conn);

    // An authorizer hiding the tracking table's columns (read as NULL).
    let conn = db.open();
    conn.authorizer(Some(|context: AuthContext<'_>| match context.action {
        rusqlite::hooks::AuthAction::Read {
            table_name: "migrations",
            ..
        } => Authorization::Ignore,
        _ => Authorization::Allow,
    }))
    .unwrap();
    let message = m.applied_migrations(&conn).unwrap_err().to_string();
    assert!(message.contains("SQLITE_IGNORE"), "{message}");
    drop(conn);

    // A limit lowered below what the schema needs.
    let mut conn = db.open();
    conn.set_limit(rusqlite::limits::Limit::SQLITE_LIMIT_COLUMN, 4)
        .unwrap();
    let message = m.migrate(&mut conn).unwrap_err().to_string();
    assert!(message.contains("a limit was lowered"), "{message}");
    drop(conn);

    // A commit hook refusing every COMMIT, on a call that runs no migration.
    let fresh = TempDb::new();
    let mut conn = fresh.open();
    conn.commit_hook(Some(|| true)).unwrap();
    let message = m.baseline(&mut conn, 0).unwrap_err().to_string();
    assert!(message.contains("commit hook refused"), "{message}");
    conn.commit_hook(None::<fn() -> bool>).unwrap();
    assert!(m.applied_migrations(&conn).unwrap().is_empty());
}
