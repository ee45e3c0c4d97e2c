//! Waiting for another instance to migrate, for instances that must not
//! migrate themselves: a read-only connection, the application on a
//! replica of a database that a primary migrates.
//!
//! Each look is one read transaction (a consistent snapshot of the
//! history) through the same read path as the up-to-date check of a run
//! ([`history::checked`]), so whatever that check refuses (an edited or
//! unknown history, a database another tool built) is the waiter's error
//! at once. Only two states are waited for: migrations still pending, and
//! a step outside a transaction recorded as started and not yet finished
//! (another process's work in progress). Nothing is written and no write
//! lock is asked for.

use std::time::Duration;

use rusqlite::{Connection, Transaction, TransactionBehavior};

use super::{check_drift, Settings};
use crate::db::Db;
use crate::error::{Direction, Error};
use crate::history;
use crate::registry::Plan;
use crate::sqlite::{is_busy, needs_a_writer, Budget, LockWait};

/// The first pause between two looks; each pause doubles it, up to
/// [`LONGEST_PAUSE`]. A migration that is nearly done is seen quickly, and
/// a long wait costs a few reads a second.
const FIRST_PAUSE: Duration = Duration::from_millis(5);
const LONGEST_PAUSE: Duration = Duration::from_millis(200);

/// What one look found when the database is not current.
#[derive(Default)]
pub(crate) struct Behind {
    /// Migrations applied (`None`: no look could read the history yet).
    applied: Option<u32>,
    /// A step outside a transaction in progress, `(id, name)`.
    in_progress: Option<(u32, String)>,
}

/// Returns once the database holds every migration of `plan`; looks for
/// drift then, as the settings ask. Gives up after `timeout` with
/// [`Error::NotCurrent`].
pub(crate) fn until_current(
    conn: &Connection,
    plan: &Plan,
    settings: &Settings<'_>,
    timeout: Duration,
) -> Result<(), Error> {
    // A transaction open on the connection would pin its snapshot (in WAL
    // mode): the waiter would never see the other instance's commit.
    if !conn.is_autocommit() {
        return Err(Error::InTransaction);
    }
    // SQLite's busy handler (a writer committing to a rollback-journal
    // file) waits within the same budget as the pauses between looks.
    let lock = LockWait::install(conn, timeout)?;
    wait_while_behind(plan, lock.budget(), || look(conn, plan, settings))
}

/// Looks until a look finds the database current, pausing between looks
/// within `budget`. A busy error means the lock was held past the budget.
pub(crate) fn wait_while_behind(
    plan: &Plan,
    budget: &Budget,
    mut look: impl FnMut() -> Result<Option<Behind>, Error>,
) -> Result<(), Error> {
    let mut behind = Behind::default();
    let mut pause = FIRST_PAUSE;
    loop {
        match look() {
            Ok(None) => return Ok(()),
            Ok(Some(found)) => behind = found,
            Err(Error::Interrupted {
                id,
                name,
                direction,
                ..
            }) => {
                behind = Behind {
                    // The marked row is not applied yet (up), or still is
                    // (a rollback in progress).
                    applied: Some(match direction {
                        Direction::Up => id,
                        Direction::Down => id.saturating_add(1),
                    }),
                    in_progress: Some((id, name)),
                }
            }
            // The busy handler waited until the deadline: give up below.
            Err(Error::Sqlite(error)) if is_busy(&error) => {}
            // A killed writer's journal, which only a writer can roll back.
            Err(Error::Sqlite(error)) if needs_a_writer(&error) => {}
            #[cfg(feature = "libsql")]
            Err(Error::Libsql(error)) if crate::libsql::is_transient(&error) => {}
            Err(error) => return Err(error),
        }
        if !budget.pause(pause) {
            return Err(Error::NotCurrent {
                set: plan.set.clone(),
                applied: behind.applied,
                known: plan.len(),
                waited: budget.waited(),
                in_progress: behind.in_progress,
            });
        }
        pause = (pause * 2).min(LONGEST_PAUSE);
    }
}

/// One look, in one read transaction: `None` when the database is
/// current (and not refused for drift), otherwise how far behind it is.
fn look(conn: &Connection, plan: &Plan, settings: &Settings<'_>) -> Result<Option<Behind>, Error> {
    // Rolled back when dropped: it only reads.
    let snapshot = Transaction::new_unchecked(conn, TransactionBehavior::Deferred)?;
    let behind = how_far_behind(&snapshot, plan, settings)?;
    if behind.is_none() {
        // Current (stale chains included: a reader cannot rewrite them, and
        // the migrations they stand for are applied).
        check_drift(&snapshot, settings)?;
    }
    Ok(behind)
}

/// `None` when the database holds every migration of `plan`, otherwise how
/// many it holds, through the up-to-date check's read path.
pub(crate) fn how_far_behind(
    db: &dyn Db,
    plan: &Plan,
    settings: &Settings<'_>,
) -> Result<Option<Behind>, Error> {
    let applied = match history::checked(db, plan, settings.table, settings.verify_applied, false)?
    {
        Some(history) => history.applied,
        None => {
            history::check_managed(db, &plan.set, settings.table)?;
            0
        }
    };
    let applied = u32::try_from(applied).unwrap_or(u32::MAX);
    Ok((applied < plan.len()).then_some(Behind {
        applied: Some(applied),
        in_progress: None,
    }))
}
