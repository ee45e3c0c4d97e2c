//! What the runner hands back: history rows, run reports, status lines.

use std::time::Duration;

use crate::error::{Direction, Location};

/// A row of the tracking table: one applied migration.
///
/// ```
/// # use migrate_core::{Migrator, rusqlite::{Connection, Transaction}};
/// let m = Migrator::new().set("docs_applied")
///     .add(0, "init", |tx: &Transaction| tx.execute_batch("CREATE TABLE t (x)"));
/// let mut conn = Connection::open_in_memory()?;
/// m.migrate(&mut conn)?;
/// let row = &m.applied_migrations(&conn)?[0];
/// assert_eq!((row.id, row.name.as_str()), (0, "init"));
/// assert!(row.applied_at.ends_with('Z'));
/// assert_eq!(row.checksum.len(), 32);
/// # Ok::<(), migrate_core::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct AppliedMigration {
    /// The migration id.
    pub id: u32,
    /// The name it had when it was applied.
    pub name: String,
    /// When it was applied, UTC, RFC 3339 (`2026-11-22T10:00:00.000Z`).
    pub applied_at: String,
    /// The checksum it had when it was applied.
    pub checksum: String,
}

/// A migration this binary knows, as `pending_migrations` lists it.
///
/// ```
/// # use migrate_core::{Migrator, rusqlite::{Connection, Transaction}};
/// let m = Migrator::new().set("docs_info")
///     .add(0, "init", |tx: &Transaction| tx.execute_batch("CREATE TABLE t (x)"));
/// let pending = m.pending_migrations(&Connection::open_in_memory()?)?;
/// assert_eq!(pending[0].name, "init");
/// assert!(!pending[0].has_rollback);
/// assert!(pending[0].location.runtime);
/// # Ok::<(), migrate_core::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct MigrationInfo {
    /// The migration id.
    pub id: u32,
    /// Its name.
    pub name: String,
    /// Its current checksum.
    pub checksum: String,
    /// Where it is defined.
    pub location: Location,
    /// Whether it has a rollback.
    pub has_rollback: bool,
}

/// One step a run performed.
///
/// ```
/// # use migrate_core::{Direction, Migrator, rusqlite::{Connection, Transaction}};
/// let m = Migrator::new().set("docs_step")
///     .add(0, "init", |tx: &Transaction| tx.execute_batch("CREATE TABLE t (x)"));
/// let report = m.migrate(&mut Connection::open_in_memory()?)?;
/// let step = &report.steps[0];
/// assert_eq!((step.id, step.name.as_str(), step.direction), (0, "init", Direction::Up));
/// println!("took {:?}", step.elapsed);
/// # Ok::<(), migrate_core::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct StepReport {
    /// The migration id.
    pub id: u32,
    /// The migration name.
    pub name: String,
    /// Applied or rolled back.
    pub direction: Direction,
    /// How long the step's own code took.
    pub elapsed: Duration,
}

impl StepReport {
    /// A step report, for code that builds its own (such as the CLI).
    ///
    /// ```
    /// use migrate_core::{Direction, StepReport};
    /// let step = StepReport::new(3, "add_tags".into(), Direction::Up, std::time::Duration::ZERO);
    /// assert_eq!(step.id, 3);
    /// ```
    pub fn new(id: u32, name: String, direction: Direction, elapsed: Duration) -> Self {
        StepReport {
            id,
            name,
            direction,
            elapsed,
        }
    }
}

/// What a call to `migrate`, `migrate_to` or `rollback_to` did.
///
/// ```
/// # use migrate_core::{Migrator, rusqlite::{Connection, Transaction}};
/// let m = Migrator::new().set("docs_report")
///     .add(0, "init", |tx: &Transaction| tx.execute_batch("CREATE TABLE t (x)"));
/// let mut conn = Connection::open_in_memory()?;
/// assert_eq!(m.migrate(&mut conn)?.ids(), vec![0]);
/// assert!(m.migrate(&mut conn)?.is_empty());
/// # Ok::<(), migrate_core::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct Report {
    /// The steps, in the order they ran. Empty when there was nothing to do.
    pub steps: Vec<StepReport>,
}

impl Report {
    /// True when the call had nothing to do.
    ///
    /// ```
    /// assert!(migrate_core::Report::default().is_empty());
    /// ```
    pub fn is_empty(&self) -> bool {
        self.steps.is_empty()
    }

    /// The ids of the steps, in the order they ran.
    ///
    /// ```
    /// assert!(migrate_core::Report::default().ids().is_empty());
    /// ```
    pub fn ids(&self) -> Vec<u32> {
        self.steps.iter().map(|step| step.id).collect()
    }
}

/// Where one migration stands, as `status` reports it.
///
/// ```
/// use migrate_core::MigrationState;
/// let state = MigrationState::Pending;
/// let label = match state {
///     MigrationState::Applied => "applied",
///     MigrationState::Pending => "pending",
///     MigrationState::Modified { .. } => "modified",
///     MigrationState::Unknown => "unknown",
///     _ => "?",
/// };
/// assert_eq!(label, "pending");
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum MigrationState {
    /// Applied, and still the same code and name.
    Applied,
    /// Not applied yet.
    Pending,
    /// Applied, but renamed or edited since.
    Modified {
        /// The name recorded when it was applied.
        applied_name: String,
        /// The checksum recorded when it was applied.
        applied_checksum: String,
    },
    /// Applied, but this binary does not know it.
    Unknown,
    /// A step outside a transaction was started and never recorded as
    /// finished (see [`Error::Interrupted`](crate::Error::Interrupted)).
    Interrupted {
        /// Applying or rolling back.
        direction: crate::Direction,
    },
}

/// How an interrupted step outside a transaction is to be recorded (see
/// [`Migrator::resolve_interrupted`](crate::Migrator::resolve_interrupted)).
///
/// ```
/// let _ = migrate_core::Resolution::Completed;
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Resolution {
    /// Its work is done: a migration is recorded as applied, a rollback's
    /// migration as no longer applied.
    Completed,
    /// None of its work took effect: recorded as if it had never started.
    NotRun,
}

/// One line of `status`.
///
/// ```
/// # use migrate_core::{Migrator, MigrationState, rusqlite::{Connection, Transaction}};
/// let m = Migrator::new().set("docs_status_line")
///     .add(0, "init", |tx: &Transaction| tx.execute_batch("CREATE TABLE t (x)"));
/// let mut conn = Connection::open_in_memory()?;
/// m.migrate(&mut conn)?;
/// let line = &m.status(&conn)?[0];
/// assert_eq!(line.state, MigrationState::Applied);
/// assert!(line.applied_at.is_some());
/// # Ok::<(), migrate_core::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct MigrationStatus {
    /// The migration id.
    pub id: u32,
    /// Its name (the recorded one for `Unknown`).
    pub name: String,
    /// Where it stands.
    pub state: MigrationState,
    /// When it was applied, if it was.
    pub applied_at: Option<String>,
    /// Whether this binary has a rollback for it.
    pub has_rollback: bool,
}

/// What [`Migrator::dry_run`](crate::Migrator::dry_run) found. Nothing of it
/// was kept.
///
/// ```
/// # use migrate_core::{Migrator, rusqlite::{Connection, Transaction}};
/// let m = Migrator::new().set("docs_dry_run_report")
///     .add(0, "a", |tx: &Transaction| tx.execute_batch("CREATE TABLE a (x)"));
/// let dry = m.dry_run(&mut Connection::open_in_memory()?)?;
/// assert!(dry.failure.is_none() && dry.stopped_before.is_none());
/// assert_eq!(dry.steps[0].name, "a");
/// # Ok::<(), migrate_core::Error>(())
/// ```
#[derive(Debug)]
#[non_exhaustive]
pub struct DryRun {
    /// The steps that succeeded, with their timings.
    pub steps: Vec<StepReport>,
    /// The step that failed, if one did.
    pub failure: Option<crate::Error>,
    /// The first pending migration the dry run could not reach: a
    /// `foreign_keys = off` migration needs a transaction of its own.
    pub stopped_before: Option<u32>,
}
