//! One transaction of a run: it owns the `BEGIN IMMEDIATE` transaction, the
//! guard, each step's savepoint and the tracking rows it writes.
//!
//! A step is: savepoint, user code under the guard, the foreign-key check,
//! its tracking row, release. If any of it fails, the step is rolled back to
//! its savepoint, or, when SQLite has already ended the whole transaction
//! (`INSERT OR ROLLBACK`, `RAISE(ROLLBACK)`, an interrupt, some I/O
//! errors), the failure says so (`lost`), and the run does the batch's
//! earlier steps again.

use std::collections::HashSet;
use std::time::Duration;

use rusqlite::{params, Connection, Statement, Transaction};

use super::guard::{AuthorizerCheck, Guard, Refusal, Rules, StepFailure, STEP_SAVEPOINT};
use super::{begin_immediate, Outcome, Settings};
use crate::db::{self, Db};
use crate::error::{Direction, Error, ForeignKeyViolation};
use crate::history::{self, Ledger, Recorder};
use crate::observe::StepWatch;
use crate::registry::{Migration, Plan, Step};
use crate::report::{AppliedMigration, StepReport};
use crate::schema::Schema;
use crate::sqlite::{self, LockWait};

/// A step that failed, and was rolled back.
pub(super) struct StepFailed {
    pub error: Box<Error>,
    /// SQLite ended the whole transaction: the batch's earlier steps are
    /// gone too.
    pub lost: bool,
    /// The step took the guard's callbacks away (see `Guard::run`): what it
    /// ran after that was not watched, and, its transaction lost, may have
    /// been committed. Nothing is done again on such a database.
    pub unguarded: bool,
}

pub(super) struct Batch<'c> {
    conn: &'c Connection,
    plan: &'c Plan,
    settings: &'c Settings<'c>,
    lock: &'c LockWait<'c>,
    // Declared before `tx`, so that the statements are finalized and the
    // guard removed before the transaction ends. `None` when there is no
    // tracking table, and so nothing to undo.
    statements: Option<StepStatements<'c>>,
    tx: Transaction<'c>,
    foreign_keys_on: bool,
    /// Whether the tracking table's triggers are dropped for this
    /// transaction (see [`history::suspend_triggers`]); `commit` creates them
    /// again, a rollback brings them back.
    triggers_suspended: bool,
    /// `Some(work_kept)` when the last failed step took the guard's
    /// callbacks away (see `Refusal::GuardRemoved`).
    guard_removed: Option<bool>,
    ledger: Ledger,
    steps: Vec<StepReport>,
    /// The schema before the first step, for a run that does not look for
    /// drift (see `drift::before_unlooked_run`).
    drift_before: Option<Schema>,
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
    recorder: Recorder<'c>,
}

impl<'c> Batch<'c> {
    /// Opens the transaction and reads the history inside the write lock
    /// (another process may have moved on), creating the tracking table for
    /// a run that applies migrations.
    pub fn begin(
        conn: &'c Connection,
        plan: &'c Plan,
        settings: &'c Settings<'c>,
        lock: &'c LockWait<'c>,
        direction: Direction,
    ) -> Result<Self, Error> {
        let tx = begin_immediate(conn, lock)?;
        let table = settings.table;
        let history = history::for_write(
            &tx,
            plan,
            table,
            settings.verify_applied,
            direction == Direction::Down,
            direction == Direction::Up,
        )?;
        let off_limits = history::off_limits(&tx, table)?;
        let foreign_keys_on = sqlite::foreign_keys_on(&tx)?;
        let drift_before = crate::drift::before_unlooked_run(&tx, settings.drift)?;
        let statements = if history.exists {
            let guard = Guard::install(
                conn,
                Rules {
                    tracking_tables: off_limits.tables,
                    own_triggers: off_limits.triggers,
                    autocommit: false,
                    apart_from_main: sqlite::apart_from_main(conn)?,
                },
            );
            Some(StepStatements {
                guard,
                savepoint: conn.prepare(&format!("SAVEPOINT {STEP_SAVEPOINT}"))?,
                release: conn.prepare(&format!("RELEASE {STEP_SAVEPOINT}"))?,
                rollback_to: conn.prepare(&format!("ROLLBACK TO {STEP_SAVEPOINT}"))?,
                recorder: Recorder::new(conn, table)?,
            })
        } else {
            None
        };
        Ok(Batch {
            conn,
            plan,
            settings,
            lock,
            statements,
            tx,
            foreign_keys_on,
            // A table created just now has none yet: `commit` creates them.
            triggers_suspended: history.triggers_pending,
            guard_removed: None,
            ledger: Ledger::new(history.applied, history.newest_chain, history.rows),
            steps: Vec::new(),
            drift_before,
        })
    }

    /// How many migrations are applied, counting this batch's steps.
    pub fn applied(&self) -> usize {
        self.ledger.applied
    }

    /// The steps run so far (for a dry run, which keeps none of them).
    pub fn into_steps(self) -> Vec<StepReport> {
        self.steps
    }

    /// Records a step outside a transaction as started, in this batch's
    /// transaction (committed before the step runs): a migration's row with
    /// the [`history::STARTED`] chain, or a rollback's row marked
    /// [`history::ROLLING_BACK`]. Returns the row a rollback will remove.
    pub fn mark_started(
        &mut self,
        migration: &Migration,
        direction: Direction,
    ) -> Result<Option<AppliedMigration>, Error> {
        let table = self.settings.table;
        match direction {
            Direction::Up => {
                let Some(statements) = self.statements.as_mut() else {
                    return Err(Error::InvalidTarget {
                        set: self.plan.set.clone(),
                        target: migration.id,
                        known: self.plan.len(),
                    });
                };
                statements.recorder.insert(
                    migration.id,
                    migration.name(),
                    migration.checksum(),
                    history::STARTED,
                )?;
                Ok(None)
            }
            Direction::Down => {
                history::set_chain(self.conn, table, migration.id, history::ROLLING_BACK)?;
                Ok(self
                    .ledger
                    .rows
                    .get(migration.id as usize)
                    .map(|row| row.applied.clone()))
            }
        }
    }

    /// Runs one step with its bookkeeping, atomically.
    pub fn step(
        &mut self,
        migration: &Migration,
        step: &Step,
        direction: Direction,
    ) -> Result<(), StepFailed> {
        let watch = StepWatch::start(
            self.settings.observer,
            migration.id,
            migration.name(),
            direction,
        );
        match self.try_step(migration, step, direction) {
            Ok(elapsed) => {
                watch.finished();
                self.steps.push(StepReport::new(
                    migration.id,
                    migration.name().to_owned(),
                    direction,
                    elapsed,
                ));
                Ok(())
            }
            Err(error) => {
                let lost = if self.guard_removed.is_some() {
                    // The step could have made the runner's savepoint its
                    // own (taken away, the authorizer no longer refuses its
                    // name): only the whole transaction is sure to go.
                    sqlite::roll_back_open_transaction(self.conn);
                    true
                } else {
                    self.undo_step()
                };
                watch.failed(&error);
                Err(StepFailed {
                    error: Box::new(error),
                    lost,
                    unguarded: self.guard_removed == Some(true),
                })
            }
        }
    }

    fn try_step(
        &mut self,
        migration: &Migration,
        step: &Step,
        direction: Direction,
    ) -> Result<Duration, Error> {
        let conn = self.conn;
        let settings = self.settings;
        let recording = |error: Error| match error {
            Error::Sqlite(source) => Error::Recording {
                id: migration.id,
                name: migration.name().to_owned(),
                direction,
                table: settings.table.name.clone(),
                source,
            },
            other => other,
        };
        // With foreign keys off, SQLite checks nothing: compare the
        // violations after the step with those before it.
        let before = if step.foreign_keys_off() {
            Some(foreign_key_violations(conn)?)
        } else {
            None
        };
        let Some(statements) = self.statements.as_mut() else {
            // Only a batch without a tracking table has no statements, and
            // it has nothing to run.
            return Err(Error::InvalidTarget {
                set: self.plan.set.clone(),
                target: migration.id,
                known: self.plan.len(),
            });
        };
        if !self.triggers_suspended {
            history::suspend_triggers(conn, settings.table).map_err(recording)?;
            self.triggers_suspended = true;
        }
        statements
            .savepoint
            .execute(params![])
            .map_err(|e| recording(e.into()))?;
        let tx = &self.tx;
        let ran = statements
            .guard
            .run(step.foreign_keys_off(), AuthorizerCheck::Caller, || {
                step.run(Some(tx), tx)
            });
        let mark = statements.guard.mark();
        let elapsed = ran.map_err(|failure| self.failed(failure, migration, direction))?;
        if conn.is_autocommit() {
            // The step ended the transaction in a way no statement of it
            // reported (a trigger's `RAISE(ROLLBACK)` as its last statement)
            // and returned Ok all the same.
            return Err(step_error(
                StepFailure::Refused(Refusal::TransactionLost),
                migration,
                direction,
            ));
        }
        self.check_foreign_keys(migration, direction, before)?;
        let Some(statements) = self.statements.as_mut() else {
            return Ok(elapsed);
        };
        let written = self.ledger.write(
            &mut statements.recorder,
            self.plan,
            settings.verify_applied,
            migration,
            direction,
        );
        // The row's statement was prepared just now: the guard sees whether
        // its authorizer was there for it (`AuthorizerCheck::Caller`). When
        // the row could not be written, the guard looks for itself (someone
        // else's authorizer may have refused the row), before the row's own
        // error, which would blame the table.
        let checked = match written {
            Ok(_) => statements.guard.watched_since(mark),
            Err(_) => statements.guard.still_installed(),
        };
        if let Err(failure) = checked {
            return Err(self.failed(failure, migration, direction));
        }
        let written = written.map_err(recording)?;
        statements
            .release
            .execute(params![])
            .map_err(|e| recording(e.into()))?;
        self.ledger.advance(written);
        Ok(elapsed)
    }

    /// The error of a step that failed, noting whether it took the guard's
    /// callbacks away (`guard_removed`).
    fn failed(
        &mut self,
        failure: StepFailure,
        migration: &Migration,
        direction: Direction,
    ) -> Error {
        if let StepFailure::Refused(Refusal::GuardRemoved { work_kept }) = failure {
            self.guard_removed = Some(work_kept);
        }
        step_error(failure, migration, direction)
    }

    /// Rolls a failed step back to its savepoint. Returns whether the whole
    /// transaction is gone instead (SQLite ended it, or the rollback to the
    /// savepoint failed and the transaction had to be abandoned).
    fn undo_step(&mut self) -> bool {
        if self.conn.is_autocommit() {
            return true;
        }
        let undone = self.statements.as_mut().is_some_and(|statements| {
            statements.rollback_to.execute(params![]).is_ok()
                && statements.release.execute(params![]).is_ok()
        });
        if !undone {
            sqlite::roll_back_open_transaction(self.conn);
        }
        !undone
    }

    /// Fails the step if it left foreign-key violations behind: after a
    /// `foreign_keys = off` step, any violation that was not there before
    /// it; with foreign keys on, the deferred ones SQLite would refuse at
    /// COMMIT (it counts them, so the common case costs nothing).
    fn check_foreign_keys(
        &mut self,
        migration: &Migration,
        direction: Direction,
        before: Option<Vec<ForeignKeyViolation>>,
    ) -> Result<(), Error> {
        let conn = self.conn;
        let violations = match before {
            Some(before) => new_violations(&before, foreign_key_violations(conn)?),
            None if self.foreign_keys_on && sqlite::deferred_foreign_key_violations(conn) => {
                let after = foreign_key_violations(conn)?;
                // The step fails either way: undo it to see what was there
                // before it, and list only what it added.
                if let Some(statements) = self.statements.as_mut() {
                    statements.rollback_to.execute(params![])?;
                }
                let before = foreign_key_violations(conn)?;
                let new = new_violations(&before, after.clone());
                if new.is_empty() {
                    after
                } else {
                    new
                }
            }
            None => return Ok(()),
        };
        if violations.is_empty() {
            return Ok(());
        }
        Err(Error::ForeignKeyViolations {
            id: migration.id,
            name: migration.name().to_owned(),
            direction,
            violations: violations.into_iter().take(100).collect(),
        })
    }

    /// Commits the batch: sets `user_version` if steps ran, then COMMIT.
    /// Its steps join `outcome` only once committed.
    pub fn commit(self, outcome: &mut Outcome) -> Result<(), Error> {
        let Batch {
            conn,
            plan,
            settings,
            lock,
            statements,
            tx,
            triggers_suspended,
            ledger: Ledger {
                applied, removed, ..
            },
            steps,
            drift_before,
            ..
        } = self;
        drop(statements);
        let ids: Vec<u32> = steps.iter().map(|step| step.id).collect();
        let direction = steps.first().map_or(Direction::Up, |step| step.direction);
        let committed = (|| {
            if triggers_suspended {
                history::ensure_triggers(&tx, settings.table)?;
            }
            if !steps.is_empty() {
                if settings.user_version {
                    sqlite::set_user_version(&tx, applied)?;
                }
                // The schema these steps leave, for drift detection.
                crate::drift::record(
                    &tx,
                    settings.drift != crate::Drift::Ignore,
                    drift_before.as_ref(),
                )?;
            }
            tx.commit().map_err(Error::Sqlite)
        })();
        if let Err(error) = committed {
            sqlite::roll_back_open_transaction(conn);
            if !committed_anyway(conn, plan, settings, applied, &steps) {
                let error = match lock.locked(error) {
                    Error::Sqlite(source) if !ids.is_empty() => Error::CommitFailed {
                        ids,
                        direction,
                        source,
                    },
                    other => other,
                };
                // Each was reported finished; none was kept.
                for step in &steps {
                    crate::observe::lost(settings.observer, step, &error);
                }
                return Err(error);
            }
        }
        outcome.report.steps.extend(steps);
        outcome.removed.extend(removed);
        Ok(())
    }
}

/// An interrupt can land after COMMIT took effect, and SQLite still reports
/// it: read the history back to tell a failed commit from a done one.
fn committed_anyway(
    conn: &Connection,
    plan: &Plan,
    settings: &Settings<'_>,
    applied: usize,
    steps: &[StepReport],
) -> bool {
    if steps.is_empty() {
        return false;
    }
    let history = history::checked(conn, plan, settings.table, settings.verify_applied, false);
    matches!(history, Ok(Some(history)) if history.applied == applied)
}

/// `PRAGMA foreign_key_check`, every row, on either backend.
pub(super) fn foreign_key_violations(db: &dyn Db) -> Result<Vec<ForeignKeyViolation>, Error> {
    Ok(db
        .query("PRAGMA foreign_key_check", params![])?
        .iter()
        .map(|row| ForeignKeyViolation {
            table: db::text(&row[0]).unwrap_or_default().to_owned(),
            rowid: db::integer(&row[1]),
            parent: db::text(&row[2]).unwrap_or_default().to_owned(),
        })
        .collect())
}

/// The violations of `after` that were not already in `before`.
pub(super) fn new_violations(
    before: &[ForeignKeyViolation],
    after: Vec<ForeignKeyViolation>,
) -> Vec<ForeignKeyViolation> {
    let known: HashSet<&ForeignKeyViolation> = before.iter().collect();
    after
        .into_iter()
        .filter(|violation| !known.contains(violation))
        .collect()
}

pub(super) fn step_error(
    failure: StepFailure,
    migration: &Migration,
    direction: Direction,
) -> Error {
    let id = migration.id;
    let name = migration.name().to_owned();
    match failure {
        StepFailure::Returned(source) if is_vacuum_in_transaction(source.as_ref()) => {
            Error::Forbidden {
                id,
                name,
                direction,
                reason: format!(
                    "it runs VACUUM, which cannot run inside a transaction: declare it \
                     #[{}({id}, transaction = false)] (a rollback does not take its \
                     migration's options), or run it on the connection after migrating",
                    match direction {
                        Direction::Up => "migration",
                        Direction::Down => "rollback",
                    }
                ),
            }
        }
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
        StepFailure::Refused(Refusal::TransactionControl | Refusal::TransactionLost) => {
            Error::TransactionControl {
                id,
                name,
                direction,
            }
        }
        StepFailure::Refused(Refusal::Forbidden(reason)) => Error::Forbidden {
            id,
            name,
            direction,
            reason,
        },
        StepFailure::Refused(Refusal::GuardRemoved { work_kept }) => Error::Forbidden {
            id,
            name,
            direction,
            reason: guard_removed(work_kept),
        },
    }
}

/// Why a step that took the guard's callbacks away failed, and what of it
/// may be left.
fn guard_removed(work_kept: bool) -> String {
    let mut reason = "it replaced or removed migrate-core's authorizer or commit hook on its \
                      connection (rusqlite's `Connection::authorizer` or `commit_hook`, called \
                      by the step or by code it calls), which keep a step from writing the \
                      history and from committing part of its work: a step must leave them in \
                      place (install your own after migrating)"
        .to_owned();
    if work_kept {
        reason.push_str(
            ". What it ran after that may have been committed unwatched (it runs outside a \
             transaction, or its transaction had ended: ended by SQLite, or committed by \
             the step): compare the database with the migrations before running them again",
        );
    } else {
        reason.push_str("; nothing of the step was kept");
    }
    reason
}

/// SQLite refuses VACUUM inside a transaction at run time; there is no
/// authorizer action for it, so the refusal is recognised by its message.
fn is_vacuum_in_transaction(error: &(dyn std::error::Error + 'static)) -> bool {
    matches!(
        error.downcast_ref::<rusqlite::Error>(),
        Some(rusqlite::Error::SqliteFailure(_, Some(message)))
            if message.contains("cannot VACUUM from within a transaction")
    )
}
