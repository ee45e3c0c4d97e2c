//! Applying and undoing migrations: transactions, savepoints, bookkeeping.
//!
//! One run is one `BEGIN IMMEDIATE` transaction (one commit, so one fsync),
//! and each step runs inside its own savepoint together with its tracking
//! row: a failing step is rolled back to its savepoint and the steps before
//! it are committed. A `foreign_keys = off` step gets a transaction of its
//! own, because `PRAGMA foreign_keys` cannot change inside one.

use std::time::{Duration, Instant};

use rusqlite::{params, Connection, Statement, Transaction, TransactionBehavior};

use crate::error::{is_busy, Direction, Error, ForeignKeyViolation};
use crate::guard::{Guard, StepFailure, STEP_SAVEPOINT};
use crate::history::{self, Row, Table};
use crate::observe::{Observer, StepWatch};
use crate::registry::{Migration, Plan, Step};
use crate::report::{AppliedMigration, Report, StepReport};

/// The configuration one call runs with.
pub(crate) struct Settings<'a> {
    pub table: &'a Table,
    /// Mirror the applied count into `PRAGMA user_version`.
    pub user_version: bool,
    pub lock_timeout: Duration,
    /// Refuse renamed or edited applied migrations.
    pub verify_applied: bool,
    pub observer: Option<&'a Observer>,
    /// Roll everything back at the end instead of committing.
    pub dry_run: bool,
}

/// Where a run should leave the database.
#[derive(Clone, Copy)]
pub(crate) enum Goal {
    /// Apply pending migrations up to and including this id.
    UpTo(u32),
    /// Undo the newest applied migration.
    DownLast,
    /// Undo applied migrations until this id is the newest (`None`: all).
    DownTo(Option<u32>),
}

impl Goal {
    fn direction(self) -> Direction {
        match self {
            Goal::UpTo(_) => Direction::Up,
            Goal::DownLast | Goal::DownTo(_) => Direction::Down,
        }
    }
}

/// What a run did.
pub(crate) struct Outcome {
    pub report: Report,
    /// The rows deleted by rollbacks, in the order they were undone.
    pub removed: Vec<AppliedMigration>,
    /// Dry run only: the step that failed (everything was rolled back).
    pub failure: Option<Error>,
    /// Dry run only: the first pending step it could not reach, because a
    /// `foreign_keys = off` step needs a transaction of its own.
    pub stopped_before: Option<u32>,
}

/// Moves the database towards `goal`.
pub(crate) fn run(
    conn: &Connection,
    plan: &Plan,
    settings: &Settings<'_>,
    goal: Goal,
) -> Result<Outcome, Error> {
    if !conn.is_autocommit() {
        return Err(Error::InTransaction);
    }
    let mut outcome = Outcome {
        report: Report::default(),
        removed: Vec::new(),
        failure: None,
        stopped_before: None,
    };
    if let Goal::UpTo(last) = goal {
        // Most calls find nothing to do: answer them with one read and
        // without taking the write lock.
        if is_up_to_date(conn, plan, settings.table, last) {
            return Ok(outcome);
        }
    }
    refuse_read_only(conn)?;
    let _timeout = BusyTimeout::set(conn, settings.lock_timeout)?;
    let mut foreign_keys_off = false;
    loop {
        // Declared before the transaction so that it is restored after the
        // transaction ends, whichever way it ends.
        let _foreign_keys = if foreign_keys_off {
            Some(ForeignKeysOff::engage(conn)?)
        } else {
            None
        };
        let tx = begin_immediate(conn)?;
        // Re-read inside the write lock: another process may have moved on.
        let rows = load_for_write(&tx, plan, settings, goal.direction() == Direction::Up)?;
        let todo = steps_to_run(plan, &rows, goal)?;
        let Some(first) = todo.first() else {
            // Nothing changed, so user_version is left alone: rewriting it
            // would turn a read into a write and an fsync.
            finish(tx, settings, None)?;
            return Ok(outcome);
        };
        if first.1.foreign_keys_off != foreign_keys_off {
            // Nothing was written; end this transaction and switch modes.
            drop(tx);
            foreign_keys_off = first.1.foreign_keys_off;
            continue;
        }
        let mut applied = rows.len();
        let mut previous_chain = rows.last().map(|row| row.chain.clone()).unwrap_or_default();
        let mut done = 0;
        let mut statements = StepStatements::new(&tx, settings.table)?;
        for (migration, step) in &todo {
            if step.foreign_keys_off != foreign_keys_off || (foreign_keys_off && done > 0) {
                break;
            }
            let direction = goal.direction();
            let watch =
                StepWatch::start(settings.observer, migration.id, &migration.name, direction);
            statements.savepoint.execute(params![])?;
            let result = statements
                .guard
                .run_step(&tx, &step.action)
                .map_err(|failure| step_error(failure, migration, direction))
                .and_then(|elapsed| {
                    if tx.is_autocommit() {
                        // The step ended the whole transaction in a way the
                        // guard cannot see (`INSERT OR ROLLBACK`, a trigger's
                        // `RAISE(ROLLBACK)`) and returned Ok all the same.
                        return Err(step_error(
                            StepFailure::TransactionControl,
                            migration,
                            direction,
                        ));
                    }
                    if foreign_keys_off {
                        check_foreign_keys(&tx, migration, direction)?;
                    }
                    Ok(elapsed)
                });
            let elapsed = match result {
                Ok(elapsed) => elapsed,
                Err(error) => {
                    watch.failed(&error);
                    if settings.dry_run {
                        // Everything is rolled back when `tx` drops.
                        outcome.failure = Some(error);
                        return Ok(outcome);
                    }
                    if tx.is_autocommit() {
                        // The transaction is gone, and with it the steps this
                        // run had done before this one (SQLite also does this
                        // itself on some I/O and memory errors). Do them again
                        // so that they stay applied, as a failing step promises.
                        drop(statements);
                        drop(tx);
                        if done > 0 {
                            let redo = match direction {
                                Direction::Up => Goal::UpTo(migration.id - 1),
                                Direction::Down => Goal::DownTo(Some(migration.id)),
                            };
                            run(conn, plan, settings, redo)?;
                        }
                        return Err(error);
                    }
                    statements.rollback_to.execute(params![])?;
                    statements.release.execute(params![])?;
                    drop(statements);
                    finish(tx, settings, Some(applied))?;
                    return Err(error);
                }
            };
            match direction {
                Direction::Up => {
                    let chain = if settings.verify_applied {
                        plan.chains[migration.id as usize].clone()
                    } else {
                        crate::hash::chain(
                            &previous_chain,
                            migration.id,
                            &migration.name,
                            &migration.checksum,
                        )
                    };
                    statements.recorder.insert(
                        migration.id,
                        &migration.name,
                        &migration.checksum,
                        &chain,
                    )?;
                    previous_chain = chain;
                    applied += 1;
                }
                Direction::Down => {
                    statements.recorder.delete(migration.id)?;
                    applied -= 1;
                    outcome.removed.push(rows[applied].applied.clone());
                }
            }
            statements.release.execute(params![])?;
            watch.finished();
            outcome.report.steps.push(StepReport {
                id: migration.id,
                name: migration.name.clone(),
                direction,
                elapsed,
            });
            done += 1;
        }
        drop(statements);
        if settings.dry_run {
            // Nothing of a dry run is kept: `tx` rolls back as it drops.
            outcome.stopped_before = todo.get(done).map(|(migration, _)| migration.id);
            return Ok(outcome);
        }
        finish(tx, settings, Some(applied))?;
        if done == todo.len() || matches!(goal, Goal::DownLast) {
            return Ok(outcome);
        }
        foreign_keys_off = todo[done].1.foreign_keys_off;
    }
}

/// The statements every step of a transaction runs, prepared once per
/// transaction rather than once per step.
struct StepStatements<'c> {
    // First, so that it is installed before the statements are prepared
    // (installing an authorizer expires prepared statements).
    guard: Guard<'c>,
    savepoint: Statement<'c>,
    release: Statement<'c>,
    rollback_to: Statement<'c>,
    recorder: history::Recorder<'c>,
}

impl<'c> StepStatements<'c> {
    fn new(conn: &'c Connection, table: &Table) -> Result<Self, Error> {
        let guard = Guard::install(conn);
        Ok(StepStatements {
            guard,
            savepoint: conn.prepare(&format!("SAVEPOINT {STEP_SAVEPOINT}"))?,
            release: conn.prepare(&format!("RELEASE {STEP_SAVEPOINT}"))?,
            rollback_to: conn.prepare(&format!("ROLLBACK TO {STEP_SAVEPOINT}"))?,
            recorder: history::Recorder::new(conn, table)?,
        })
    }
}

/// True when the newest history row is `last` or later and its chain matches
/// this binary's migrations, which means nothing is pending up to `last` and
/// nothing applied was edited.
fn is_up_to_date(conn: &Connection, plan: &Plan, table: &Table, last: u32) -> bool {
    match history::newest(conn, table) {
        Some((newest, count, chain)) => {
            // A row deleted by hand leaves fewer rows than the newest id says.
            count == newest + 1
                && newest >= i64::from(last)
                && usize::try_from(newest)
                    .ok()
                    .and_then(|index| plan.chains.get(index))
                    .is_some_and(|expected| *expected == chain)
        }
        None => false,
    }
}

/// The migrations to run for `goal`, in order, with the step to run for each.
fn steps_to_run<'p>(
    plan: &'p Plan,
    rows: &[Row],
    goal: Goal,
) -> Result<Vec<(&'p Migration, &'p Step)>, Error> {
    let applied = rows.len();
    match goal {
        Goal::UpTo(last) => Ok(plan
            .migrations
            .iter()
            .skip(applied)
            .take_while(|m| m.id <= last)
            .map(|m| (m, &m.up))
            .collect()),
        Goal::DownLast | Goal::DownTo(_) => {
            let keep = match goal {
                Goal::DownLast => applied.saturating_sub(1),
                Goal::DownTo(Some(target)) => (target as usize + 1).min(applied),
                _ => 0,
            };
            // Every step must be undoable before the first one runs.
            let mut todo = Vec::new();
            for migration in plan.migrations[keep..applied].iter().rev() {
                match &migration.down {
                    Some(step) => todo.push((migration, step)),
                    None => {
                        return Err(Error::NoRollback {
                            id: migration.id,
                            name: migration.name.clone(),
                        })
                    }
                }
            }
            Ok(todo)
        }
    }
}

/// Reads and checks the history inside the write transaction; creates the
/// tracking table when `create` and it is missing.
fn load_for_write(
    tx: &Transaction<'_>,
    plan: &Plan,
    settings: &Settings<'_>,
    create: bool,
) -> Result<Vec<Row>, Error> {
    match history::load(tx, settings.table)? {
        Some(rows) => {
            history::verify(&rows, plan, settings.verify_applied)?;
            Ok(rows)
        }
        None => {
            if create {
                history::check_managed(tx, &plan.set, settings.table)?;
                history::create(tx, settings.table)?;
            }
            Ok(Vec::new())
        }
    }
}

/// Sets `user_version` to the applied count, if given, and commits.
fn finish(
    tx: Transaction<'_>,
    settings: &Settings<'_>,
    applied: Option<usize>,
) -> Result<(), Error> {
    if let (true, Some(applied)) = (settings.user_version, applied) {
        tx.execute_batch(&format!("PRAGMA user_version = {applied}"))?;
    }
    let start = Instant::now();
    tx.commit().map_err(|error| locked_or_sqlite(error, start))
}

/// A busy error after waiting since `start` is another writer's lock.
fn locked_or_sqlite(error: rusqlite::Error, start: Instant) -> Error {
    if is_busy(&error) {
        Error::Locked {
            waited: start.elapsed(),
        }
    } else {
        Error::Sqlite(error)
    }
}

/// `BEGIN IMMEDIATE`: takes the write lock now, so that the history read next
/// cannot go stale before this run writes.
pub(crate) fn begin_immediate(conn: &Connection) -> Result<Transaction<'_>, Error> {
    if !conn.is_autocommit() {
        return Err(Error::InTransaction);
    }
    let start = Instant::now();
    Transaction::new_unchecked(conn, TransactionBehavior::Immediate)
        .map_err(|error| locked_or_sqlite(error, start))
}

fn step_error(failure: StepFailure, migration: &Migration, direction: Direction) -> Error {
    let id = migration.id;
    let name = migration.name.clone();
    match failure {
        StepFailure::Returned(source) => Error::Failed {
            id,
            name,
            direction,
            source,
        },
        StepFailure::Panicked(message) => Error::Panicked {
            id,
            name,
            direction,
            message,
        },
        StepFailure::TransactionControl => Error::TransactionControl {
            id,
            name,
            direction,
        },
    }
}

/// `PRAGMA foreign_key_check` after a `foreign_keys = off` step.
fn check_foreign_keys(
    tx: &Transaction<'_>,
    migration: &Migration,
    direction: Direction,
) -> Result<(), Error> {
    let mut stmt = tx.prepare("PRAGMA foreign_key_check")?;
    let violations: Vec<ForeignKeyViolation> = stmt
        .query_map(rusqlite::params![], |row| {
            Ok(ForeignKeyViolation {
                table: row.get(0)?,
                rowid: row.get(1)?,
                parent: row.get(2)?,
            })
        })?
        .take(100)
        .collect::<Result<_, _>>()?;
    if violations.is_empty() {
        Ok(())
    } else {
        Err(Error::ForeignKeyViolations {
            id: migration.id,
            name: migration.name.clone(),
            direction,
            violations,
        })
    }
}

/// Records migrations `0..=through` as applied without running them.
pub(crate) fn baseline(
    conn: &Connection,
    plan: &Plan,
    settings: &Settings<'_>,
    through: u32,
) -> Result<(), Error> {
    plan.check_target(through)?;
    in_write_transaction(conn, settings, |tx| {
        history::create_empty(tx, settings.table)?;
        let mut recorder = history::Recorder::new(tx, settings.table)?;
        for migration in &plan.migrations[..=through as usize] {
            let chain = &plan.chains[migration.id as usize];
            recorder.insert(migration.id, &migration.name, &migration.checksum, chain)?;
        }
        if settings.user_version {
            tx.execute_batch(&format!("PRAGMA user_version = {}", through as usize + 1))?;
        }
        Ok(())
    })
}

/// Runs `work` inside one `BEGIN IMMEDIATE` transaction, with the lock
/// timeout, and commits it if `work` succeeds (rolls back otherwise).
pub(crate) fn in_write_transaction<T>(
    conn: &Connection,
    settings: &Settings<'_>,
    work: impl FnOnce(&Transaction<'_>) -> Result<T, Error>,
) -> Result<T, Error> {
    refuse_read_only(conn)?;
    let _timeout = BusyTimeout::set(conn, settings.lock_timeout)?;
    let tx = begin_immediate(conn)?;
    let value = work(&tx)?;
    finish(tx, settings, None)?;
    Ok(value)
}

/// A read-only connection would accept `BEGIN IMMEDIATE` and fail only in
/// the middle of the first step: refuse it up front, with a clear message.
fn refuse_read_only(conn: &Connection) -> Result<(), Error> {
    // SAFETY: a valid handle and a NUL-terminated database name.
    let read_only = unsafe { rusqlite::ffi::sqlite3_db_readonly(conn.handle(), c"main".as_ptr()) };
    if read_only == 1 {
        Err(Error::ReadOnly)
    } else {
        Ok(())
    }
}

/// Sets the connection's busy timeout for one call and restores it after.
struct BusyTimeout<'c> {
    conn: &'c Connection,
    previous_ms: u64,
}

impl<'c> BusyTimeout<'c> {
    fn set(conn: &'c Connection, timeout: Duration) -> Result<Self, Error> {
        let previous: i64 =
            conn.query_row("PRAGMA busy_timeout", rusqlite::params![], |row| row.get(0))?;
        conn.busy_timeout(timeout)?;
        Ok(BusyTimeout {
            conn,
            previous_ms: u64::try_from(previous).unwrap_or(0),
        })
    }
}

impl Drop for BusyTimeout<'_> {
    fn drop(&mut self) {
        let _ = self
            .conn
            .busy_timeout(Duration::from_millis(self.previous_ms));
    }
}

/// Turns `PRAGMA foreign_keys` off outside any transaction and restores the
/// previous setting when dropped, whatever happened in between.
struct ForeignKeysOff<'c> {
    conn: &'c Connection,
    previous: bool,
}

impl<'c> ForeignKeysOff<'c> {
    fn engage(conn: &'c Connection) -> Result<Self, Error> {
        let previous: bool =
            conn.query_row("PRAGMA foreign_keys", rusqlite::params![], |row| row.get(0))?;
        conn.execute_batch("PRAGMA foreign_keys = OFF")?;
        Ok(ForeignKeysOff { conn, previous })
    }
}

impl Drop for ForeignKeysOff<'_> {
    fn drop(&mut self) {
        if self.previous {
            let _ = self.conn.execute_batch("PRAGMA foreign_keys = ON");
        }
    }
}
