//! Model-based property test: random sequences of migrate, migrate_to(k),
//! rollback_migration, rollback_to(k), rollback_all, runs where one migration
//! or rollback fails (returns an error, panics, tries to end the transaction
//! it runs in, ends it behind the runner's back and writes on, writes the
//! tracking table, or sets a pragma that cannot work in a transaction) and
//! reopening the connection, checked after every
//! operation against a model that is just "how many migrations are applied".
//! After each operation: the call's result is the one the model predicts, the
//! tracking rows are exactly 0..applied, `user_version` equals applied, each
//! migration's table exists iff it is applied, `pending_migrations` agrees,
//! nothing a failed step wrote after losing its transaction was committed,
//! and the connection is back in autocommit mode with foreign keys on.
//!
//! The default is 64 cases so that CI stays fast. `PROPTEST_CASES` (read by
//! proptest) overrides it, e.g. 10 000 cases outside CI:
//!
//! ```text
//! cargo test --test model_proptest                                # 64 cases
//! PROPTEST_CASES=10000 cargo test --release --test model_proptest # 10 000 cases
//! ```

mod common;

use std::sync::{Arc, Mutex};

use migrate_core::rusqlite::{self, Connection, Transaction};
use migrate_core::{Direction, Error, Migrator};
use proptest::prelude::*;

/// Migrations in the set.
const N: u32 = 6;

/// How an injected fault behaves.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Fault {
    /// The step does its work, then returns an error.
    Return,
    /// The step does its work, then panics.
    Panic,
    /// The step does its work, then runs this statement, ignores the
    /// refusal and returns Ok.
    TxControl(&'static str),
    /// The step ends the whole transaction in a way the guard cannot refuse
    /// (`INSERT OR ROLLBACK` hitting a conflict), then ignores the error and
    /// returns Ok (`false`) or returns the error (`true`). The steps done
    /// earlier in the same run must stay applied all the same.
    SneakyRollback(bool),
    /// As `SneakyRollback(false)`, then goes on writing (a table
    /// `after_loss`, a row deleted from `t0`): none of it may be committed.
    WritesAfterLoss,
    /// The step writes a tracking table with this statement, ignores the
    /// refusal and returns Ok.
    WritesHistory(&'static str),
    /// The step sets a pragma that cannot work inside a transaction,
    /// ignores the refusal and returns Ok.
    Pragma(&'static str),
}

const TX_STATEMENTS: [&str; 5] = ["COMMIT", "ROLLBACK", "END", "BEGIN", "COMMIT TRANSACTION"];

const HISTORY_WRITES: [&str; 4] = [
    "DELETE FROM migrations",
    "UPDATE migrations SET name = 'renamed'",
    "INSERT INTO migrations VALUES (99, 'x', 'now', 'c', 'c')",
    "DROP TABLE migrations",
];

const PRAGMAS: [&str; 3] = [
    "PRAGMA foreign_keys = OFF",
    "PRAGMA journal_mode = WAL",
    "PRAGMA page_size = 8192",
];

/// The fault armed for one step, shared between the test and the
/// migration closures.
#[derive(Default)]
struct Faults {
    armed: Mutex<Option<(Direction, u32, Fault)>>,
}

impl Faults {
    fn new() -> Arc<Faults> {
        Arc::new(Faults::default())
    }

    fn set(&self, direction: Direction, id: u32, fault: Fault) {
        *self.armed.lock().unwrap() = Some((direction, id, fault));
    }

    fn clear(&self) {
        *self.armed.lock().unwrap() = None;
    }

    /// Called by a step after its work: fails it if a fault is armed for it.
    fn strike(&self, tx: &Transaction, direction: Direction, id: u32) -> rusqlite::Result<()> {
        let armed = *self.armed.lock().unwrap();
        let fault = match armed {
            Some((d, i, fault)) if d == direction && i == id => fault,
            _ => return Ok(()),
        };
        let lose_transaction = || {
            let result = tx.execute_batch(
                "CREATE TABLE IF NOT EXISTS sneaky (x INTEGER PRIMARY KEY);
                 INSERT OR REPLACE INTO sneaky VALUES (1);
                 INSERT OR ROLLBACK INTO sneaky VALUES (1);",
            );
            assert!(result.is_err(), "INSERT OR ROLLBACK did not conflict");
            assert!(
                tx.is_autocommit(),
                "INSERT OR ROLLBACK did not end the transaction"
            );
            result
        };
        match fault {
            Fault::Return => Err(rusqlite::Error::InvalidQuery),
            Fault::Panic => panic!("model: deliberate panic in {direction:?} {id}"),
            Fault::SneakyRollback(returned) => {
                let result = lose_transaction();
                if returned {
                    result
                } else {
                    Ok(())
                }
            }
            Fault::WritesAfterLoss => {
                let _ = lose_transaction();
                let _ = tx.execute_batch("CREATE TABLE after_loss (x)");
                let _ = tx.execute_batch("DELETE FROM t0");
                Ok(())
            }
            Fault::TxControl(sql) | Fault::WritesHistory(sql) | Fault::Pragma(sql) => {
                // Refused by the runner's guard; the step ignores the error.
                let _ = tx.execute_batch(sql);
                Ok(())
            }
        }
    }
}

/// N migrations; migration k creates table `t{k}` (inside a savepoint of its
/// own, which the guard allows) and its rollback drops it. `irreversible`
/// has no rollback.
fn migrator(faults: &Arc<Faults>, irreversible: Option<u32>) -> Migrator {
    let mut m = Migrator::new();
    for id in 0..N {
        let f = faults.clone();
        m = m.add(id, format!("create_t{id}"), move |tx: &Transaction| {
            tx.execute_batch(&format!(
                "SAVEPOINT user_savepoint;
                 CREATE TABLE t{id} (x INTEGER NOT NULL);
                 INSERT INTO t{id} VALUES ({id});
                 RELEASE user_savepoint;"
            ))?;
            f.strike(tx, Direction::Up, id)
        });
        if irreversible != Some(id) {
            let f = faults.clone();
            m = m.add_rollback(id, move |tx: &Transaction| {
                tx.execute_batch(&format!("DROP TABLE t{id}"))?;
                f.strike(tx, Direction::Down, id)
            });
        }
    }
    m
}

#[derive(Clone, Debug)]
enum Op {
    Migrate,
    MigrateTo(u32),
    RollbackOne,
    RollbackTo(u32),
    RollbackAll,
    /// `migrate()` with migration `id`'s code failing.
    FailingMigrate(u32, Fault),
    /// `rollback_all()` with the rollback of `id` failing.
    FailingRollbackAll(u32, Fault),
    /// `rollback_migration()` with the rollback of `id` failing.
    FailingRollbackOne(u32, Fault),
    Reopen,
}

fn fault() -> impl Strategy<Value = Fault> {
    prop_oneof![
        Just(Fault::Return),
        Just(Fault::Panic),
        prop::sample::select(TX_STATEMENTS.to_vec()).prop_map(Fault::TxControl),
        any::<bool>().prop_map(Fault::SneakyRollback),
        Just(Fault::WritesAfterLoss),
        prop::sample::select(HISTORY_WRITES.to_vec()).prop_map(Fault::WritesHistory),
        prop::sample::select(PRAGMAS.to_vec()).prop_map(Fault::Pragma),
    ]
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        3 => Just(Op::Migrate),
        3 => (0..N).prop_map(Op::MigrateTo),
        3 => Just(Op::RollbackOne),
        2 => (0..N).prop_map(Op::RollbackTo),
        1 => Just(Op::RollbackAll),
        2 => ((0..N), fault()).prop_map(|(id, f)| Op::FailingMigrate(id, f)),
        1 => ((0..N), fault()).prop_map(|(id, f)| Op::FailingRollbackAll(id, f)),
        1 => ((0..N), fault()).prop_map(|(id, f)| Op::FailingRollbackOne(id, f)),
        1 => Just(Op::Reopen),
    ]
}

/// What the model predicts for one call.
#[derive(Debug, PartialEq)]
enum Expect {
    /// Ok, having run these ids in this order.
    Ran(Vec<u32>),
    /// This error (checked by kind, id and direction).
    Failed(Fault, u32, Direction),
    NoRollback(u32),
}

/// The model: `applied` migrations are applied; `irreversible` has no
/// rollback. Returns the prediction and updates the model.
fn step_model(applied: &mut u32, irreversible: Option<u32>, op: &Op) -> Option<Expect> {
    let a = *applied;
    // Rolling back to `keep` applied migrations: every one undone must have a
    // rollback (checked before anything runs), newest first.
    let down = |keep: u32, fail: Option<(u32, Fault)>, applied: &mut u32| -> Expect {
        if let Some(i) = irreversible.filter(|i| (keep..a).contains(i)) {
            return Expect::NoRollback(i);
        }
        if let Some((id, fault)) = fail.filter(|(id, _)| (keep..a).contains(id)) {
            *applied = id + 1;
            return Expect::Failed(fault, id, Direction::Down);
        }
        *applied = keep;
        Expect::Ran((keep..a).rev().collect())
    };
    Some(match *op {
        Op::Migrate => {
            *applied = N;
            Expect::Ran((a..N).collect())
        }
        Op::MigrateTo(k) => {
            *applied = a.max(k + 1);
            Expect::Ran((a..=k).collect())
        }
        Op::RollbackOne => down(a.saturating_sub(1), None, applied),
        Op::RollbackTo(k) => down((k + 1).min(a), None, applied),
        Op::RollbackAll => down(0, None, applied),
        Op::FailingMigrate(id, fault) => {
            if id >= a {
                *applied = id;
                Expect::Failed(fault, id, Direction::Up)
            } else {
                *applied = N;
                Expect::Ran((a..N).collect())
            }
        }
        Op::FailingRollbackAll(id, fault) => down(0, Some((id, fault)), applied),
        Op::FailingRollbackOne(id, fault) => down(a.saturating_sub(1), Some((id, fault)), applied),
        Op::Reopen => return None,
    })
}

fn open(path: &std::path::Path) -> Connection {
    let conn = Connection::open(path).unwrap();
    // The property is about logic, not durability: skip the fsyncs.
    conn.execute_batch("PRAGMA synchronous = OFF; PRAGMA foreign_keys = ON")
        .unwrap();
    conn
}

/// Compares a call's result with the prediction.
fn check_result(expect: &Expect, result: Result<Vec<u32>, Error>) -> Result<(), TestCaseError> {
    match (expect, result) {
        (Expect::Ran(ids), Ok(ran)) => prop_assert_eq!(ids, &ran),
        (Expect::Failed(fault, id, direction), Err(error)) => {
            let ok = match (fault, &error) {
                (
                    Fault::Return | Fault::SneakyRollback(true),
                    Error::Failed {
                        id: i,
                        direction: d,
                        ..
                    },
                )
                | (
                    Fault::Panic,
                    Error::Panicked {
                        id: i,
                        direction: d,
                        ..
                    },
                )
                | (
                    Fault::TxControl(_) | Fault::SneakyRollback(false) | Fault::WritesAfterLoss,
                    Error::TransactionControl {
                        id: i,
                        direction: d,
                        ..
                    },
                )
                | (
                    Fault::WritesHistory(_) | Fault::Pragma(_),
                    Error::Forbidden {
                        id: i,
                        direction: d,
                        ..
                    },
                ) => i == id && d == direction,
                _ => false,
            };
            prop_assert!(
                ok,
                "expected {:?} of {:?} {}, got {:?}",
                fault,
                direction,
                id,
                error
            );
        }
        (Expect::NoRollback(id), Err(Error::NoRollback { id: i, .. })) => prop_assert_eq!(*id, i),
        (expect, got) => prop_assert!(false, "expected {:?}, got {:?}", expect, got),
    }
    Ok(())
}

/// The database agrees with the model.
fn check_state(m: &Migrator, conn: &Connection, applied: u32) -> Result<(), TestCaseError> {
    prop_assert!(conn.is_autocommit(), "connection left inside a transaction");
    let ids: Vec<u32> = m
        .applied_migrations(conn)
        .unwrap()
        .iter()
        .map(|r| r.id)
        .collect();
    prop_assert_eq!(ids, (0..applied).collect::<Vec<_>>(), "tracking rows");
    let user_version: u32 = conn
        .query_row("PRAGMA user_version", (), |r| r.get(0))
        .unwrap();
    prop_assert_eq!(user_version, applied, "user_version");
    for id in 0..N {
        prop_assert_eq!(
            common::has_table(conn, &format!("t{id}")),
            id < applied,
            "table t{}",
            id
        );
    }
    prop_assert_eq!(
        m.pending_migrations(conn).unwrap().len() as u32,
        N - applied
    );
    // What a step wrote after SQLite ended its transaction was never kept.
    prop_assert!(
        !common::has_table(conn, "after_loss"),
        "after_loss committed"
    );
    prop_assert!(!common::has_table(conn, "sneaky"), "sneaky committed");
    if applied > 0 {
        let rows: i64 = conn
            .query_row("SELECT count(*) FROM t0", (), |r| r.get(0))
            .unwrap();
        prop_assert_eq!(rows, 1, "t0 lost its row");
    }
    let foreign_keys: bool = conn
        .query_row("PRAGMA foreign_keys", (), |r| r.get(0))
        .unwrap();
    prop_assert!(foreign_keys, "foreign_keys left off");
    Ok(())
}

fn config() -> ProptestConfig {
    // `ProptestConfig::default()` reads PROPTEST_CASES; without it, 64.
    let cases = if std::env::var_os("PROPTEST_CASES").is_some() {
        ProptestConfig::default().cases
    } else {
        64
    };
    ProptestConfig {
        cases,
        ..ProptestConfig::default()
    }
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn every_operation_sequence_matches_the_model(
        wal in any::<bool>(),
        irreversible in prop::option::weighted(0.25, 0..N),
        ops in prop::collection::vec(op(), 1..40),
    ) {
        common::quiet_panics_starting_with("model: deliberate panic");
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("model.db");
        let mut conn = open(&path);
        let mode: String = conn
            .query_row(if wal { "PRAGMA journal_mode = WAL" } else { "PRAGMA journal_mode = DELETE" }, (), |r| r.get(0))
            .unwrap();
        prop_assert_eq!(mode, if wal { "wal" } else { "delete" });
        let faults = Faults::new();
        let m = migrator(&faults, irreversible);
        let mut applied = 0u32;
        check_state(&m, &conn, applied)?;
        for op in &ops {
            let expect = step_model(&mut applied, irreversible, op);
            let result: Option<Result<Vec<u32>, Error>> = match *op {
                Op::Migrate => Some(m.migrate(&mut conn).map(|r| r.ids())),
                Op::MigrateTo(k) => Some(m.migrate_to(&mut conn, k).map(|r| r.ids())),
                Op::RollbackOne => Some(m.rollback_migration(&mut conn).map(|r| r.map(|r| r.id).into_iter().collect())),
                Op::RollbackTo(k) => Some(m.rollback_to(&mut conn, k).map(|r| r.ids())),
                Op::RollbackAll => Some(m.rollback_all(&mut conn).map(|r| r.ids())),
                Op::FailingMigrate(id, fault) => {
                    faults.set(Direction::Up, id, fault);
                    let r = m.migrate(&mut conn).map(|r| r.ids());
                    faults.clear();
                    Some(r)
                }
                Op::FailingRollbackAll(id, fault) => {
                    faults.set(Direction::Down, id, fault);
                    let r = m.rollback_all(&mut conn).map(|r| r.ids());
                    faults.clear();
                    Some(r)
                }
                Op::FailingRollbackOne(id, fault) => {
                    faults.set(Direction::Down, id, fault);
                    let r = m.rollback_migration(&mut conn).map(|r| r.map(|r| r.id).into_iter().collect());
                    faults.clear();
                    Some(r)
                }
                Op::Reopen => {
                    drop(conn);
                    conn = open(&path);
                    None
                }
            };
            if let (Some(expect), Some(result)) = (expect, result) {
                check_result(&expect, result).map_err(|e| TestCaseError::fail(format!("{op:?}: {e}")))?;
            }
            check_state(&m, &conn, applied).map_err(|e| TestCaseError::fail(format!("after {op:?}: {e}")))?;
        }
        let integrity: String = conn.query_row("PRAGMA integrity_check", (), |r| r.get(0)).unwrap();
        prop_assert_eq!(integrity, "ok");
    }
}
