//! Steps outside a transaction (`transaction = false`, `-- no-transaction`):
//! for what SQLite refuses inside one (`VACUUM`, `PRAGMA journal_mode`,
//! `page_size`).
//!
//! Without a transaction there is nothing to roll back, so the step is
//! bracketed by two small transactions: the first records it as started
//! (the row of a migration with the [`history::STARTED`] chain, or a
//! rollback's row marked [`history::ROLLING_BACK`]) and commits; the step
//! runs; the second records it as done. A process killed in between leaves
//! the mark, and every later call reports it (`Error::Interrupted`) until
//! it is resolved, instead of running the step again blindly or forgetting
//! it. Other processes that find the mark wait for it to go, within their
//! lock timeout: that is what keeps the step exactly-once while no
//! transaction holds the lock.

use std::panic::{catch_unwind, resume_unwind, AssertUnwindSafe};

use rusqlite::Connection;

use super::batch::{step_error, Batch};
use super::guard::{AuthorizerCheck, Guard, Rules, StepFailure};
use super::{begin_immediate, Outcome, Settings};
use crate::error::{Direction, Error, OutsideTransaction};
use crate::hash;
use crate::history;
use crate::observe::StepWatch;
use crate::registry::{Migration, Plan, Step};
use crate::report::StepReport;
use crate::schema::Schema;
use crate::sqlite::{self, LockWait};

/// Runs one step outside a transaction; `batch` is the transaction that
/// found it next (and marks it started).
#[allow(clippy::too_many_arguments)]
pub(super) fn run_step(
    mut batch: Batch<'_>,
    conn: &Connection,
    plan: &Plan,
    settings: &Settings<'_>,
    lock: &LockWait<'_>,
    migration: &Migration,
    step: &Step,
    direction: Direction,
    outcome: &mut Outcome,
) -> Result<(), Error> {
    let removed = batch.mark_started(migration, direction)?;
    batch.commit(outcome)?;
    let drift_before = crate::drift::before_unlooked_run(conn, settings.drift)?;
    // An observer that panics on `Started` must not leave the mark of a
    // step that never ran, for every later call to wait on and a person to
    // resolve: the mark goes (not run), then the panic goes on.
    let started = catch_unwind(AssertUnwindSafe(|| {
        StepWatch::start(settings.observer, migration.id, migration.name(), direction)
    }));
    let watch = match started {
        Ok(watch) => watch,
        Err(panic) => {
            let _ = lock.apart(|| {
                settle(
                    conn,
                    plan,
                    settings,
                    lock,
                    migration.id,
                    direction,
                    false,
                    None,
                )
            });
            resume_unwind(panic)
        }
    };
    let result = run_user_code(conn, settings, step).map_err(|failure| {
        let failure = match failure {
            StepFailure::Returned(source) => {
                StepFailure::Returned(Box::new(OutsideTransaction(source)))
            }
            StepFailure::Panicked(message) => StepFailure::Returned(Box::new(OutsideTransaction(
                format!("it panicked: {message}").into(),
            ))),
            refused => refused,
        };
        step_error(failure, migration, direction)
    });
    // Outside a transaction the step may set any pragma and attach any
    // file, failed or not; some of that would break the record's writes
    // (see `ready_to_record`).
    let quieted = sqlite::ready_to_record(conn);
    let result = match (result, quieted) {
        (Ok(_), Err(error)) => Err(step_error(
            StepFailure::Returned(Box::new(error)),
            migration,
            direction,
        )),
        (result, _) => result,
    };
    // The step has run: its outcome is recorded within a lock timeout of
    // its own. Failing for want of budget left by the waits before it would
    // leave the step marked as in progress, for a person to resolve.
    let settled = lock.apart(|| {
        settle(
            conn,
            plan,
            settings,
            lock,
            migration.id,
            direction,
            result.is_ok(),
            drift_before.as_ref(),
        )
    });
    match (result, settled) {
        (Ok(elapsed), Ok(())) => {
            watch.finished();
            outcome.report.steps.push(StepReport::new(
                migration.id,
                migration.name().to_owned(),
                direction,
                elapsed,
            ));
            outcome.removed.extend(removed);
            Ok(())
        }
        // It ran but could not be recorded: the mark stays, and the next
        // call says so.
        (Ok(_), Err(error)) | (Err(error), _) => {
            watch.failed(&error);
            Err(error)
        }
    }
}

/// The step's code, in autocommit mode, under the guard's rules for steps
/// outside a transaction: the tracking tables stay off limits.
fn run_user_code(
    conn: &Connection,
    settings: &Settings<'_>,
    step: &Step,
) -> Result<std::time::Duration, StepFailure> {
    let off_limits = history::off_limits(conn, settings.table)
        .map_err(|error| StepFailure::Returned(Box::new(error)))?;
    let guard = Guard::install(
        conn,
        Rules {
            tracking_tables: off_limits.tables,
            own_triggers: off_limits.triggers,
            autocommit: true,
            // Each statement commits on its own here: no atomicity to keep.
            apart_from_main: Vec::new(),
        },
    );
    guard.run(false, AuthorizerCheck::Probe, || step.run(None, conn))
}

/// Records the marked step `id` as done (`completed`) or as never run, in a
/// transaction of its own.
#[allow(clippy::too_many_arguments)]
fn settle(
    conn: &Connection,
    plan: &Plan,
    settings: &Settings<'_>,
    lock: &LockWait<'_>,
    id: u32,
    direction: Direction,
    completed: bool,
    drift_before: Option<&Schema>,
) -> Result<(), Error> {
    let tx = begin_immediate(conn, lock)?;
    settle_in(&tx, plan, settings, id, direction, completed, drift_before)?;
    tx.commit()
        .map_err(|error| lock.locked(Error::Sqlite(error)))
}

/// The writes of [`settle`], inside the caller's transaction (also used by
/// `Migrator::resolve_interrupted`): the mark must still be there.
/// `drift_before` is the schema before the step, for a run that does not
/// look for drift (`drift::before_unlooked_run`).
pub(crate) fn settle_in(
    conn: &Connection,
    plan: &Plan,
    settings: &Settings<'_>,
    id: u32,
    direction: Direction,
    completed: bool,
    drift_before: Option<&Schema>,
) -> Result<(), Error> {
    let table = settings.table;
    let expected = match direction {
        Direction::Up => history::STARTED,
        Direction::Down => history::ROLLING_BACK,
    };
    if history::stored_chain(conn, table, id)?.as_deref() != Some(expected) {
        return Err(Error::CorruptHistory {
            table: table.name.clone(),
            problems: vec![format!(
                "the row of migration {id} no longer holds the mark put there while its step ran \
                 outside a transaction: something else changed the table meanwhile"
            )],
        });
    }
    // The applied count afterwards, for user_version.
    let applied = match (direction, completed) {
        (Direction::Up, true) => {
            history::set_chain(
                conn,
                table,
                id,
                &hash::hex(chain_of(conn, plan, settings, id)?),
            )?;
            id as usize + 1
        }
        (Direction::Up, false) | (Direction::Down, true) => {
            history::delete_row(conn, table, id)?;
            id as usize
        }
        (Direction::Down, false) => {
            history::set_chain(
                conn,
                table,
                id,
                &hash::hex(chain_of(conn, plan, settings, id)?),
            )?;
            return Ok(());
        }
    };
    if settings.user_version && (direction == Direction::Down || completed) {
        sqlite::set_user_version(conn, applied)?;
    }
    if completed {
        crate::drift::record(conn, settings.drift != crate::Drift::Ignore, drift_before)?;
    }
    Ok(())
}

/// The chain row `id` gets once its step is recorded as applied: the plan's
/// when verified, otherwise folded on from the row before it.
fn chain_of(
    conn: &Connection,
    plan: &Plan,
    settings: &Settings<'_>,
    id: u32,
) -> Result<u128, Error> {
    let index = id as usize;
    if settings.verify_applied {
        if let Some(chain) = plan.chains().get(index) {
            return Ok(*chain);
        }
    }
    let previous = match id.checked_sub(1) {
        Some(previous) => history::stored_chain(conn, settings.table, previous)?
            .as_deref()
            .and_then(hash::parse_hex)
            .unwrap_or_default(),
        None => plan.seed,
    };
    let link = plan.migrations().get(index).map_or(0, Migration::link);
    Ok(hash::chain(previous, link))
}
