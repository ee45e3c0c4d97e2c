//! A run on a libSQL server (sqld, Turso): the same plan, the same history
//! read path and verdicts, the same tracking rows, checksums and chain as a
//! local run, so that a database can move between a file and a server and
//! keep its history.
//!
//! One `BEGIN IMMEDIATE` transaction per run on the primary; the history is
//! read again inside it; each step runs in a savepoint with its tracking row.
//! A step is sent as one request (its statements as one batch), so that the
//! write lock is held while the server runs it, not while the network
//! carries it. What differs from a local run, and why:
//! - the server may end a transaction that held the write lock for longer
//!   than its transaction timeout (about 5 s in sqld) while another writer
//!   waited: nothing of it is kept, and the run starts again within the
//!   lock timeout, then reports [`Error::Locked`];
//! - no authorizer or commit hook exists on a remote connection: SQL steps
//!   and `async fn` steps on the libSQL transaction run there; a Rust
//!   function on a rusqlite transaction is refused with
//!   [`Error::WrongBackend`] before anything is changed, as is a step outside
//!   a transaction; a step that ends the transaction itself is caught when
//!   its savepoint is released, before its row is written;
//! - a `foreign_keys = off` step cannot turn foreign keys off inside the
//!   server's transaction: it runs when they are already off (SQLite's
//!   default, and sqld's), and any violation it leaves fails it.

use std::time::{Duration, Instant};

use libsql::TransactionBehavior;

use super::batch::{foreign_key_violations, new_violations};
use super::guard::STEP_SAVEPOINT;
use super::server_sql;
use super::{steps_to_run, Goal, Outcome, Settings};
use crate::db::{self, Db};
use crate::error::{Direction, Error};
use crate::history::{self, Ledger, Recorder};
use crate::libsql::remote::Remote;
use crate::observe::StepWatch;
use crate::registry::{Backend, Migration, Plan, Step};
use crate::report::StepReport;
use crate::sqlite::Budget;

/// Moves the database behind `direct` towards `goal`.
pub(crate) fn run(
    direct: &Remote,
    plan: &Plan,
    settings: &Settings<'_>,
    goal: Goal,
) -> Result<Outcome, Error> {
    // (A connection inside a transaction begun by hand was refused by
    // `Libsql::on_server`, the one way in.)
    plan.check_backend(Backend::Libsql)?;
    if let Goal::UpTo(last) = goal {
        // The up-to-date check, without the write lock. A replica may
        // answer it from a stale copy: that can only show fewer migrations
        // (which sends the run to the primary), never more.
        match history::checked(direct, plan, settings.table, settings.verify_applied, false) {
            Ok(Some(history)) if history.applied > last as usize && history.chain_current => {
                return Ok(Outcome::default())
            }
            Ok(_) | Err(Error::Interrupted { .. }) => {}
            Err(error) if direct.is_busy(&error) || schema_behind(&error, settings) => {}
            Err(error) => return Err(error),
        }
    }
    refuse_foreign_keys_off(direct, plan)?;
    let budget = Budget::new(settings.lock_timeout);
    if goal.direction() == Direction::Up {
        history_where_it_can_be_read(direct, plan, settings, &budget)?;
    }
    // Or a replica's connection had not loaded the schema with the
    // tracking table yet: nothing ran, and the next look finds it.
    while_locked(
        direct,
        &budget,
        |error| schema_behind(error, settings),
        || in_one_transaction(direct, plan, settings, goal),
    )
}

/// Runs `attempt` again, within `budget`, while it fails because the lock
/// was held elsewhere or the server took its transaction away (or `also`
/// says to): nothing of it was kept, and the server waited for the lock
/// before it said so. Then `Error::Locked`.
fn while_locked<T>(
    direct: &Remote,
    budget: &Budget,
    also: impl Fn(&Error) -> bool,
    mut attempt: impl FnMut() -> Result<T, Error>,
) -> Result<T, Error> {
    loop {
        let started = Instant::now();
        match attempt() {
            Err(error) if direct.is_busy(&error) || also(&error) => {
                budget.waited_since(started);
                if !budget.pause(Duration::from_millis(50)) {
                    return Err(Error::Locked {
                        waited: budget.waited(),
                    });
                }
            }
            other => return other,
        }
    }
}

/// Creates the set's tracking table in a transaction of its own when this
/// connection does not see one, then waits until it can read it. A replica
/// forwards a run's writes to the primary but prepares its statements
/// against its own copy, so a run through one could not read a table it had
/// just created (a probe's finding: every first run through a replica failed
/// with "no such table"), nor one another instance created a moment ago.
/// An empty tracking table records nothing: if the run then fails, the next
/// one finds it.
fn history_where_it_can_be_read(
    direct: &Remote,
    plan: &Plan,
    settings: &Settings<'_>,
    budget: &Budget,
) -> Result<(), Error> {
    if history::readable(direct, settings.table)? {
        return Ok(());
    }
    while_locked(
        direct,
        budget,
        |_| false,
        || create_history(direct, plan, settings),
    )?;
    // The primary has it: this connection sees it once the commit has
    // reached its copy. A wait for replication, not for a lock: at least
    // a few seconds, whatever the lock timeout (with 0, a first run
    // through a replica always failed: a probe's finding).
    let replication = Budget::new(settings.lock_timeout.max(Duration::from_secs(10)));
    while !history::readable(direct, settings.table)? {
        if !replication.pause(Duration::from_millis(50)) {
            return Err(Error::Libsql(libsql::Error::Misuse(format!(
                "the tracking table {:?} is on the primary, and this connection (a replica's) \
                 could not read it after {:.1} s: the replica is not receiving the primary's \
                 changes; migrate through the primary, or check the replica",
                settings.table.name,
                replication.waited().as_secs_f64()
            ))));
        }
    }
    Ok(())
}

fn create_history(direct: &Remote, plan: &Plan, settings: &Settings<'_>) -> Result<(), Error> {
    let (tx, db) = begin_immediate(direct)?;
    match history::create_missing(&db, &plan.set, settings.table) {
        Ok(_) => direct.wait(tx.commit()),
        Err(error) => Err(roll_back(direct, tx, error)),
    }
}

/// `BEGIN IMMEDIATE` on the primary (a replica forwards it), and the
/// transaction's connection: a stream of its own on the server.
fn begin_immediate(direct: &Remote) -> Result<(libsql::Transaction, Remote), Error> {
    let tx = direct.wait(
        direct
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate),
    )?;
    let db = Remote::in_transaction(direct.handle.clone(), (*tx).clone());
    Ok((tx, db))
}

/// Rolls `tx` back now, and gives back `error`. Not when it drops: libSQL
/// sends that rollback from a task, which a process ending at once never
/// runs, and the server then keeps the write lock until its transaction
/// timeout (a probe's finding: after a run refused in 20 ms, the next
/// writer waited 5 s). A server that already ended the transaction
/// refuses the rollback: nothing is left to roll back then.
fn roll_back(direct: &Remote, tx: libsql::Transaction, error: Error) -> Error {
    let _ = direct.wait(tx.rollback());
    error
}

/// The history's read failing with "no such table" for the tracking table,
/// which is there (it was made readable before the run): a replica whose
/// connection serving this transaction still has an older schema (each
/// request may be served by another of its connections; seen with four
/// processes migrating one new set through two replicas under load).
fn schema_behind(error: &Error, settings: &Settings<'_>) -> bool {
    let Error::Libsql(error) = error else {
        return false;
    };
    let text = error.to_string().to_ascii_lowercase();
    text.contains("no such table") && text.contains(&settings.table.name.to_ascii_lowercase())
}

/// Waits, within `budget`, until a statement prepared on this connection
/// can read every table its database lists. Once the history says
/// current, a replica still answered the first statement naming a table
/// the migrations created with "no such table" about every other time (its
/// connection reloading the schema, ~5 ms; a probe run of
/// `three_processes_migrating_the_primary_apply_each_migration_exactly_once`
/// found it): `wait_until_current` returns once the schema is readable.
pub(crate) fn until_schema_readable(direct: &Remote, budget: &Budget) -> Result<(), Error> {
    // Twice in a row, 20 ms apart, each on a new stream: a replica applies
    // the primary's changes while its connections read, and one new
    // stream that could read all says little of the next (the cluster
    // tests' replica reads failed 2 runs in 3 with one look).
    let mut readable_in_a_row = 0;
    loop {
        // Tables only: a view can be broken on purpose (its table dropped),
        // and would never read (a probe's finding). One request for all of
        // them: on a server, requests are not free (see `Remote`).
        let names = direct.query(
            "SELECT name FROM main.sqlite_master WHERE type = 'table'",
            &[],
        )?;
        let reads: String = names
            .iter()
            .filter_map(|row| row.first().and_then(db::text))
            .filter(|name| !crate::sqlite::is_internal(name))
            .map(|name| {
                format!(
                    "SELECT 1 FROM main.{} LIMIT 0;\n",
                    crate::sqlite::quote_identifier(name)
                )
            })
            .collect();
        if reads.is_empty() {
            return Ok(());
        }
        // On a stream of its own, as the caller's next statement will be:
        // the server's connections each load the new schema when they
        // next look, and one that read it says nothing of another.
        direct.new_stream();
        match direct.execute_batch(&reads) {
            Ok(()) => {
                readable_in_a_row += 1;
                if readable_in_a_row == 2 {
                    return Ok(());
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            Err(error) => {
                readable_in_a_row = 0;
                if !budget.pause(Duration::from_millis(20)) {
                    return Err(error);
                }
            }
        }
    }
}

/// A `foreign_keys = off` step needs the server to run its transactions
/// with foreign keys off (they cannot change inside one): when it does
/// not (sqld turns them on), the set is refused whole before anything is
/// sent, as a step the backend cannot run is.
fn refuse_foreign_keys_off(direct: &Remote, plan: &Plan) -> Result<(), Error> {
    let needing = plan.migrations().iter().find_map(|migration| {
        [
            (Direction::Up, Some(&migration.up)),
            (Direction::Down, migration.down.as_ref()),
        ]
        .into_iter()
        .find_map(|(direction, step)| {
            step.filter(|step| step.foreign_keys_off())
                .map(|step| (migration, direction, step))
        })
    });
    let Some((migration, direction, step)) = needing else {
        return Ok(());
    };
    if !crate::sqlite::foreign_keys_on(direct)? {
        return Ok(());
    }
    Err(foreign_keys_on_error(plan, migration, direction, step))
}

fn foreign_keys_on_error(
    plan: &Plan,
    migration: &Migration,
    direction: Direction,
    step: &Step,
) -> Error {
    Error::WrongBackend {
        set: plan.set.clone(),
        id: migration.id,
        name: migration.name().to_owned(),
        direction,
        location: step.location(),
        backend: "libSQL",
        reason: "it needs foreign keys off, and the server runs its transactions with them on \
                 (they cannot change inside one; sqld turns them on): write the step without \
                 the pragma for this set to run on a server (`PRAGMA defer_foreign_keys = ON` \
                 inside it defers the checks to COMMIT, but ON DELETE actions of a dropped \
                 parent still run)"
            .to_owned(),
    }
}

/// One `BEGIN IMMEDIATE` transaction: the history read inside the lock, the
/// steps, COMMIT. A failing step is rolled back to its savepoint, the steps
/// before it are committed, and its error returned.
fn in_one_transaction(
    direct: &Remote,
    plan: &Plan,
    settings: &Settings<'_>,
    goal: Goal,
) -> Result<Outcome, Error> {
    let (tx, db) = begin_immediate(direct)?;
    let (applied, removed, steps, failure) = match Run::read(&db, &tx, plan, settings, goal) {
        Ok(mut run) => {
            let failure = run.steps(goal);
            let Run {
                ledger: Ledger {
                    applied, removed, ..
                },
                steps,
                ..
            } = run;
            (applied, removed, steps, failure)
        }
        Err(error) => return Err(roll_back(direct, tx, error)),
    };
    match failure {
        // Nothing of the transaction is left: let the caller start again.
        Some(error) if db.is_busy(&error) => return Err(roll_back(direct, tx, error)),
        // Nothing ran.
        Some(error) if steps.is_empty() => return Err(roll_back(direct, tx, error)),
        _ => {}
    }
    let ids: Vec<u32> = steps.iter().map(|step| step.id).collect();
    if !steps.is_empty() && settings.user_version {
        if let Err(error) = db.execute_batch(&format!("PRAGMA main.user_version = {applied}")) {
            return Err(roll_back(direct, tx, error));
        }
    }
    if let Err(error) = direct.wait(tx.commit()) {
        if db.is_busy(&error) {
            return Err(error);
        }
        // The answer can be lost after the server committed: read back.
        let committed = !ids.is_empty()
            && matches!(
                history::checked(direct, plan, settings.table, settings.verify_applied, false),
                Ok(Some(history)) if history.applied == applied
            );
        if !committed {
            return Err(error);
        }
    }
    if let Some(error) = failure {
        return Err(error);
    }
    let mut outcome = Outcome::default();
    outcome.report.steps = steps;
    outcome.removed = removed;
    Ok(outcome)
}

/// A run's state inside its transaction.
struct Run<'a> {
    db: &'a Remote,
    /// For `async fn` steps, which take it.
    tx: &'a libsql::Transaction,
    plan: &'a Plan,
    settings: &'a Settings<'a>,
    ledger: Ledger,
    steps: Vec<StepReport>,
    /// A step's work is merged into the transaction and its row not yet
    /// written: a failure now must not be committed.
    abandon: bool,
    /// The steps' savepoint, named anew for each run: a step's SQL cannot
    /// release it and open one by the same name (no authorizer on a server
    /// refuses `RELEASE migrate_core_step`).
    savepoint: String,
    /// Every tracking table in the database (any set's), which a step's
    /// SQL may read but not write (see `server_sql`).
    tracking: Vec<String>,
    /// A trigger found in the database that writes a tracking table, and
    /// why: no step runs while it exists (see
    /// `server_sql::trigger_writing_history`).
    threat: Option<(String, String)>,
}

/// A savepoint name no migration's SQL can know in advance.
fn savepoint_name() -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static RUNS: AtomicU64 = AtomicU64::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |elapsed| elapsed.as_nanos() as u64);
    let run = RUNS.fetch_add(1, Ordering::Relaxed);
    let nonce =
        nanos ^ (u64::from(std::process::id()) << 32) ^ run.wrapping_mul(0x9E37_79B9_7F4A_7C15);
    format!("{STEP_SAVEPOINT}_{nonce:016x}")
}

impl<'a> Run<'a> {
    fn read(
        db: &'a Remote,
        tx: &'a libsql::Transaction,
        plan: &'a Plan,
        settings: &'a Settings<'a>,
        goal: Goal,
    ) -> Result<Self, Error> {
        let down = goal.direction() == Direction::Down;
        let history = history::for_write(
            db,
            plan,
            settings.table,
            settings.verify_applied,
            down,
            !down,
        )?;
        if history.triggers_pending {
            history::ensure_triggers(db, settings.table)?;
        }
        let off_limits = history::off_limits(db, settings.table)?;
        let triggers: Vec<(String, String)> = db
            .query(
                "SELECT name, sql FROM main.sqlite_master WHERE type = 'trigger' AND sql IS NOT NULL",
                &[],
            )?
            .iter()
            .filter_map(|row| {
                let text = |i: usize| row.get(i).and_then(db::text).map(str::to_owned);
                Some((text(0)?, text(1)?))
            })
            .collect();
        let threat = server_sql::trigger_writing_history(
            &triggers,
            &off_limits.tables,
            &off_limits.triggers,
        )
        .map(|(name, why)| (name.to_owned(), why));
        Ok(Run {
            db,
            tx,
            plan,
            settings,
            ledger: Ledger::new(history.applied, history.newest_chain, history.rows),
            steps: Vec::new(),
            abandon: false,
            savepoint: savepoint_name(),
            tracking: off_limits.tables,
            threat,
        })
    }

    /// Runs the steps `goal` asks for; the first failure stops them.
    fn steps(&mut self, goal: Goal) -> Option<Error> {
        let todo = match steps_to_run(self.plan, self.ledger.applied, goal) {
            Ok(todo) => todo,
            Err(error) => return Some(error),
        };
        let direction = goal.direction();
        for (migration, step) in todo {
            // The observer, `tracing` and `log` see a server's steps as a
            // file's.
            let watch = StepWatch::start(
                self.settings.observer,
                migration.id,
                migration.name(),
                direction,
            );
            let started = Instant::now();
            if let Err(error) = self.step(migration, step, direction) {
                watch.failed(&error);
                if self.abandon {
                    // Nothing of this transaction is to be committed.
                    self.steps.clear();
                    return Some(error);
                }
                // Back to before the step; if that fails too, the
                // transaction is not to be committed.
                let savepoint = &self.savepoint;
                let undo = format!("ROLLBACK TO {savepoint}; RELEASE {savepoint}");
                if let Err(undo_error) = self.db.execute_batch(&undo) {
                    self.steps.clear();
                    return Some(if self.db.is_busy(&undo_error) {
                        undo_error
                    } else {
                        error
                    });
                }
                return Some(error);
            }
            watch.finished();
            self.steps.push(StepReport::new(
                migration.id,
                migration.name().to_owned(),
                direction,
                started.elapsed(),
            ));
            if matches!(goal, Goal::DownLast) {
                break;
            }
        }
        None
    }

    fn step(
        &mut self,
        migration: &Migration,
        step: &Step,
        direction: Direction,
    ) -> Result<(), Error> {
        let db = self.db;
        let savepoint = self.savepoint.clone();
        let failed = |source: Error| -> Error {
            Error::Failed {
                id: migration.id,
                name: migration.name().to_owned(),
                direction,
                source: Box::new(source),
            }
        };
        if let Some((trigger, why)) = &self.threat {
            return Err(Error::Forbidden {
                id: migration.id,
                name: migration.name().to_owned(),
                direction,
                reason: format!(
                    "the database holds the trigger {trigger:?}: {}; a server has no guard to \
                     stop it if a step fires it, so no step runs while it exists: drop it by \
                     hand (DROP TRIGGER \"{}\"), nothing was sent",
                    why,
                    trigger.replace('"', "\"\"")
                ),
            });
        }
        db.execute_batch(&format!("SAVEPOINT {savepoint}"))?;
        let before = if step.foreign_keys_off() {
            // Checked before the run too (`refuse_foreign_keys_off`).
            if crate::sqlite::foreign_keys_on(db)? {
                return Err(foreign_keys_on_error(self.plan, migration, direction, step));
            }
            Some(foreign_key_violations(db)?)
        } else {
            None
        };
        match (step.sql(), step.libsql()) {
            (Some(sql), _) => {
                if let Some((line, why)) = server_sql::refused_statement(sql, &self.tracking) {
                    return Err(Error::Forbidden {
                        id: migration.id,
                        name: migration.name().to_owned(),
                        direction,
                        reason: format!(
                            "{why}, in the statement at line {line} of its SQL ({}); a server \
                             has no guard to stop a statement as it runs, so migrate-core reads \
                             a step's SQL first and sent none of it: remove that statement (only \
                             migrate-core changes a tracking table)",
                            step.location()
                        ),
                    });
                }
                db.execute_batch(sql).map_err(failed)?
            }
            (None, Some(run)) => self.run_async(run, migration, direction)?,
            // Refused by `check_backend` before the run.
            (None, None) => {
                return Err(failed(Error::InvalidTarget {
                    set: self.plan.set.clone(),
                    target: migration.id,
                    known: self.plan.len(),
                }))
            }
        }
        if let Some(before) = before {
            let new = new_violations(&before, foreign_key_violations(db)?);
            if !new.is_empty() {
                return Err(Error::ForeignKeyViolations {
                    id: migration.id,
                    name: migration.name().to_owned(),
                    direction,
                    violations: new.into_iter().take(100).collect(),
                });
            }
        }
        // No authorizer refuses a step's write of the tracking table on a
        // server: see that it is as the run left it (undone with the step).
        if !history::untouched(db, self.settings.table, self.ledger.applied)? {
            return Err(Error::Forbidden {
                id: migration.id,
                name: migration.name().to_owned(),
                direction,
                reason: format!(
                    "it changed the tracking table {:?}, which only migrate-core may change (a \
                     server has no guard to refuse the statement itself, so the step's changes \
                     were found after it ran, and undone): remove that statement",
                    self.settings.table.name
                ),
            });
        }
        // No commit hook can stop a step on a server from ending the
        // transaction (a COMMIT in an `async fn`), and `libsql` does not
        // always say it did; the step's savepoint is gone then. Releasing it
        // tells, before the row is written: the step fails, saying that
        // what it did is committed.
        if let Err(error) = db.execute_batch(&format!("RELEASE {savepoint}")) {
            if db.is_busy(&error) {
                return Err(error);
            }
            return Err(Error::Failed {
                id: migration.id,
                name: migration.name().to_owned(),
                direction,
                source: Box::new(crate::error::OutsideTransaction(
                    "it ended the server's transaction (COMMIT, END or ROLLBACK), so what it did \
                     is committed without its tracking row; remove that statement, then undo \
                     its work or record it with baseline"
                        .into(),
                )),
            });
        }
        // The step's work is now part of the transaction: a failure to
        // record it abandons the whole transaction rather than commit the
        // work without its row.
        self.abandon = true;
        db.execute_batch(&format!("SAVEPOINT {savepoint}"))?;
        let mut recorder = Recorder::new(db, self.settings.table)?;
        let written = self.ledger.write(
            &mut recorder,
            self.plan,
            self.settings.verify_applied,
            migration,
            direction,
        )?;
        db.execute_batch(&format!("RELEASE {savepoint}"))?;
        self.ledger.advance(written);
        self.abandon = false;
        Ok(())
    }
}

impl Run<'_> {
    /// Runs an `async fn` step to its end on this blocking thread; a panic
    /// in it is the step's failure, as on a file.
    fn run_async(
        &self,
        run: for<'t> fn(&'t libsql::Transaction) -> crate::private::LibsqlFuture<'t>,
        migration: &Migration,
        direction: Direction,
    ) -> Result<(), Error> {
        let tx = self.tx;
        let handle = &self.db.handle;
        let outcome =
            std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| handle.block_on(run(tx))));
        let id = migration.id;
        let name = migration.name().to_owned();
        match outcome {
            Ok(Ok(())) => Ok(()),
            // A busy source (the server took the transaction away while the
            // step ran) restarts the run: see `Remote::is_busy`.
            Ok(Err(source)) => Err(Error::Failed {
                id,
                name,
                direction,
                source,
            }),
            Err(panic) => Err(Error::Panicked {
                id,
                name,
                direction,
                message: super::guard::panic_message(panic.as_ref()),
            }),
        }
    }
}
