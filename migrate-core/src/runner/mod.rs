//! Applying and undoing migrations.
//!
//! A call first answers from one read when nothing is to be done. Otherwise
//! it runs in batches: a batch is one `BEGIN IMMEDIATE` transaction (one
//! commit, so one fsync) in which each step runs inside its own savepoint
//! together with its tracking row (see [`batch`]). A `foreign_keys = off`
//! step gets a batch of its own, because `PRAGMA foreign_keys` cannot change
//! inside a transaction. A failing step is rolled back and the steps before
//! it are committed; if SQLite itself ended the transaction, they are done
//! again in a new one, so that a failure never loses what came before it.
//!
//! Whatever happens, the connection is handed back as the caller left it:
//! no transaction open, the same busy timeout, `foreign_keys`, `query_only`,
//! `writable_schema` and attached databases (see [`crate::sqlite`]).

mod autocommit;
mod batch;
mod guard;
#[cfg(feature = "libsql")]
pub(crate) mod remote;
#[cfg(feature = "libsql")]
mod server_sql;
mod wait;

pub(crate) use autocommit::settle_in;
pub(crate) use wait::until_current as wait_until_current;
#[cfg(feature = "libsql")]
pub(crate) use wait::{how_far_behind, wait_while_behind};

use std::time::Duration;

use rusqlite::{Connection, Transaction, TransactionBehavior};

use crate::error::{Direction, Error};
use crate::history::{self, Table};
use crate::observe::Observer;
use crate::registry::{Backend, Migration, Mode, Plan, Step};
use crate::report::{AppliedMigration, Report};
use crate::sqlite::{self, ConnectionState, ForeignKeysOff, LockWait};
use batch::Batch;

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
    /// What to do about a schema changed outside migrations.
    pub drift: crate::Drift,
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
    pub(crate) fn direction(self) -> Direction {
        match self {
            Goal::UpTo(_) => Direction::Up,
            Goal::DownLast | Goal::DownTo(_) => Direction::Down,
        }
    }

    /// The same goal, stopping short of migration `id`.
    fn short_of(self, id: u32) -> Goal {
        match self {
            // Only called when steps before `id` ran, so `id` > 0 here.
            Goal::UpTo(_) => Goal::UpTo(id.saturating_sub(1)),
            Goal::DownLast | Goal::DownTo(_) => Goal::DownTo(Some(id)),
        }
    }
}

/// What a run did.
#[derive(Default)]
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
    LockWait::around(conn, settings.lock_timeout, |lock| {
        run_within(conn, plan, settings, goal, lock)
    })
}

fn run_within(
    conn: &Connection,
    plan: &Plan,
    settings: &Settings<'_>,
    goal: Goal,
    lock: &LockWait<'_>,
) -> Result<Outcome, Error> {
    check_drift(conn, settings)?;
    if let Goal::UpTo(last) = goal {
        if nothing_to_do(conn, plan, settings, last)? {
            return Ok(Outcome::default());
        }
    }
    plan.check_backend(Backend::File)?;
    // Not asking for the write lock while another process runs a step
    // outside a transaction keeps out of its way (a VACUUM that finds a
    // writer waiting gets SQLITE_BUSY at once).
    wait_for_the_mark_to_go(conn, plan, settings, lock)?;
    sqlite::check_writable(conn)?;
    let restore = ConnectionState::capture(conn)?;
    let mut outcome = Outcome::default();
    let mut goal = goal;
    // A failure whose transaction SQLite ended: the steps before it are
    // being done again, and then it is returned.
    let mut lost_failure: Option<Error> = None;
    // Steps of one mode share a batch; a `foreign_keys = off` step, and a
    // step outside a transaction, have one each.
    let mut mode = Mode::Transaction;
    'batches: loop {
        // Declared before the batch so that it is restored after the
        // transaction ends, whichever way it ends.
        let _foreign_keys = if mode == Mode::ForeignKeysOff {
            Some(ForeignKeysOff::engage(conn)?)
        } else {
            None
        };
        let mut batch = match Batch::begin(conn, plan, settings, lock, goal.direction()) {
            // Another process may be running a step outside a transaction:
            // wait for its mark to go, within the lock timeout.
            Err(Error::Interrupted { .. }) => {
                wait_for_the_mark_to_go(conn, plan, settings, lock)?;
                continue;
            }
            other => other?,
        };
        let todo = steps_to_run(plan, batch.applied(), goal)?;
        let Some(&(first, first_step)) = todo.first() else {
            // Nothing to run; commit what the batch may have repaired.
            if !settings.dry_run {
                batch.commit(&mut outcome)?;
            }
            return finish(outcome, lost_failure);
        };
        if first_step.mode() != mode {
            // Nothing was written; end this transaction and switch modes.
            drop(batch);
            mode = first_step.mode();
            continue;
        }
        if mode == Mode::Autocommit {
            if settings.dry_run {
                // Nothing outside a transaction can be rolled back.
                outcome.stopped_before = Some(first.id);
                return Ok(outcome);
            }
            autocommit::run_step(
                batch,
                conn,
                plan,
                settings,
                lock,
                first,
                first_step,
                goal.direction(),
                &mut outcome,
            )?;
            match todo.get(1) {
                Some((_, next)) if !matches!(goal, Goal::DownLast) => {
                    // Outside a transaction the step could change what was
                    // checked before the run (`journal_mode = OFF`, `query_only`):
                    // the steps after it must still roll back if they fail,
                    // and a kill must leave nothing of them (`MEMORY`).
                    sqlite::check_writable(conn)?;
                    restore.keep_journal_on_disk()?;
                    mode = next.mode();
                }
                _ => return finish(outcome, lost_failure),
            }
            continue;
        }
        let in_this_batch = match mode {
            Mode::Transaction => todo
                .iter()
                .take_while(|(_, step)| step.mode() == Mode::Transaction)
                .count(),
            Mode::ForeignKeysOff | Mode::Autocommit => 1,
        };
        for &(migration, step) in &todo[..in_this_batch] {
            let Err(failed) = batch.step(migration, step, goal.direction()) else {
                continue;
            };
            if settings.dry_run {
                // Nothing of a dry run is kept: the batch rolls back as it drops.
                outcome.report.steps.extend(batch.into_steps());
                outcome.failure = Some(*failed.error);
                return Ok(outcome);
            }
            if !failed.lost {
                batch.commit(&mut outcome)?;
                return Err(*failed.error);
            }
            // The transaction is gone, and with it this batch's earlier
            // steps, which were reported finished: report them lost.
            let lost = batch.into_steps();
            for step in &lost {
                crate::observe::lost(settings.observer, step, &failed.error);
            }
            if lost.is_empty() || lost_failure.is_some() || failed.unguarded {
                return Err(*failed.error);
            }
            // Do them again, then report the failure.
            goal = goal.short_of(migration.id);
            lost_failure = Some(*failed.error);
            continue 'batches;
        }
        if settings.dry_run {
            outcome.stopped_before = todo.get(in_this_batch).map(|(m, _)| m.id);
            outcome.report.steps.extend(batch.into_steps());
            return Ok(outcome);
        }
        batch.commit(&mut outcome)?;
        if in_this_batch == todo.len() || matches!(goal, Goal::DownLast) {
            return finish(outcome, lost_failure);
        }
        mode = todo[in_this_batch].1.mode();
    }
}

/// Looks for a schema changed outside migrations, when the settings ask
/// for it: refuses it, or reports it and carries on.
fn check_drift(conn: &Connection, settings: &Settings<'_>) -> Result<(), Error> {
    if settings.drift == crate::Drift::Ignore {
        return Ok(());
    }
    let changes = match crate::drift::changes(conn)? {
        Some(changes) if !changes.is_empty() => changes,
        _ => return Ok(()),
    };
    match settings.drift {
        crate::Drift::Refuse => Err(Error::SchemaDrift { changes }),
        _ => {
            crate::observe::drift(settings.observer, &changes);
            Ok(())
        }
    }
}

/// While the history holds the mark of a step outside a transaction,
/// waits for it to go, reading without the write lock, until the lock
/// timeout: then it is `Error::Interrupted` (another process is still at
/// it, or one was killed while at it).
fn wait_for_the_mark_to_go(
    conn: &Connection,
    plan: &Plan,
    settings: &Settings<'_>,
    lock: &LockWait<'_>,
) -> Result<(), Error> {
    loop {
        match history::checked(conn, plan, settings.table, settings.verify_applied, false) {
            Err(interrupted @ Error::Interrupted { .. }) => {
                if !lock.wait_a_little() {
                    return Err(interrupted);
                }
            }
            // Anything else is for the run to find inside the lock.
            _ => return Ok(()),
        }
    }
}

fn finish(outcome: Outcome, lost_failure: Option<Error>) -> Result<Outcome, Error> {
    match lost_failure {
        Some(error) => Err(error),
        None => Ok(outcome),
    }
}

/// True when every migration up to `last` is applied, decided by the one
/// history read path without taking the write lock. A history whose chains
/// are stale (checksums of an earlier canonical form) also counts as
/// nothing to do when the connection cannot write to bring them up to date.
fn nothing_to_do(
    conn: &Connection,
    plan: &Plan,
    settings: &Settings<'_>,
    last: u32,
) -> Result<bool, Error> {
    let (table, verify_applied) = (settings.table, settings.verify_applied);
    let history = match history::vouched(conn, plan, table, verify_applied) {
        // The common case, answered by one read: no history is built (on
        // the first call of a process, even dropping an empty one runs
        // code that is a page to fault in).
        Ok(Some((applied, _))) => return Ok(applied > last as usize),
        Ok(None) => history::loaded(conn, plan, table, verify_applied),
        Err(error) => Err(error),
    };
    let history = match history {
        // Decided inside the lock, where the run waits for it.
        Err(Error::Interrupted { .. }) => return Ok(false),
        other => other?,
    };
    Ok(match history {
        Some(history) if history.applied > last as usize => {
            history.chain_current || sqlite::check_writable(conn).is_err()
        }
        _ => false,
    })
}

/// The migrations to run for `goal`, in order, with the step to run for each.
fn steps_to_run(
    plan: &Plan,
    applied: usize,
    goal: Goal,
) -> Result<Vec<(&Migration, &Step)>, Error> {
    match goal {
        Goal::UpTo(last) => Ok(plan
            .migrations()
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
            for migration in plan.migrations()[keep..applied].iter().rev() {
                match &migration.down {
                    Some(step) => todo.push((migration, step)),
                    None => {
                        return Err(Error::NoRollback {
                            id: migration.id,
                            name: migration.name().to_owned(),
                        })
                    }
                }
            }
            Ok(todo)
        }
    }
}

/// `BEGIN IMMEDIATE`: takes the write lock now, so that the history read
/// next cannot go stale before this run writes. An interrupted `BEGIN` can
/// take effect and still fail: the transaction is then rolled back here.
fn begin_immediate<'c>(
    conn: &'c Connection,
    lock: &LockWait<'_>,
) -> Result<Transaction<'c>, Error> {
    Transaction::new_unchecked(conn, TransactionBehavior::Immediate).map_err(|error| {
        sqlite::roll_back_open_transaction(conn);
        lock.locked(Error::Sqlite(error))
    })
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
        for migration in &plan.migrations()[..=through as usize] {
            let chain = crate::hash::hex(plan.chains()[migration.id as usize]);
            recorder.insert(migration.id, migration.name(), migration.checksum(), &chain)?;
        }
        if settings.user_version {
            sqlite::set_user_version(tx, through as usize + 1)?;
        }
        Ok(())
    })
}

/// Runs `work` inside one `BEGIN IMMEDIATE` transaction, within the lock
/// timeout, and commits it if `work` succeeds (rolls back otherwise).
pub(crate) fn in_write_transaction<T>(
    conn: &Connection,
    settings: &Settings<'_>,
    work: impl FnOnce(&Transaction<'_>) -> Result<T, Error>,
) -> Result<T, Error> {
    write_unless(conn, settings, || Ok(None), work)
}

/// [`in_write_transaction`], unless `answer` (a read, without the write
/// lock) answers first; both within one lock budget.
pub(crate) fn write_unless<T>(
    conn: &Connection,
    settings: &Settings<'_>,
    answer: impl FnOnce() -> Result<Option<T>, Error>,
    work: impl FnOnce(&Transaction<'_>) -> Result<T, Error>,
) -> Result<T, Error> {
    if !conn.is_autocommit() {
        return Err(Error::InTransaction);
    }
    LockWait::around(conn, settings.lock_timeout, |lock| {
        if let Some(answered) = answer()? {
            return Ok(answered);
        }
        sqlite::check_writable(conn)?;
        let _restore = ConnectionState::capture(conn)?;
        let tx = begin_immediate(conn, lock)?;
        let value = work(&tx)?;
        // What the transaction leaves, to tell a failed COMMIT from one an
        // interrupt reached after it took effect (SQLite reports both).
        let written = history::contents(&tx, settings.table)?;
        match tx.commit() {
            Ok(()) => Ok(value),
            Err(error) => {
                sqlite::roll_back_open_transaction(conn);
                if history::contents(conn, settings.table).ok().as_ref() == Some(&written) {
                    Ok(value)
                } else {
                    Err(Error::Sqlite(error))
                }
            }
        }
    })
}
