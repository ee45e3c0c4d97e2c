//! The one error type of the crate, and the pieces its variants carry.

use std::fmt;
use std::time::Duration;

use crate::private::BoxError;

/// Shorthand for `Result<T, migrate_core::Error>`.
///
/// ```
/// fn start() -> migrate_core::Result<()> {
///     Ok(())
/// }
/// assert!(start().is_ok());
/// ```
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Whether a step applies a migration or undoes it.
///
/// ```
/// assert_ne!(migrate_core::Direction::Up, migrate_core::Direction::Down);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Direction {
    /// Applying a migration.
    Up,
    /// Running a rollback.
    Down,
}

impl Direction {
    fn noun(self) -> &'static str {
        match self {
            Direction::Up => "migration",
            Direction::Down => "rollback of migration",
        }
    }
}

/// Where a migration was defined: the attribute's file and line, or the
/// caller of [`Migrator::add`](crate::Migrator::add).
///
/// ```
/// let here = migrate_core::Location { file: "src/db.rs", line: 12, runtime: false };
/// assert_eq!(here.to_string(), "src/db.rs:12");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Location {
    /// Source file, as `file!()` gives it.
    pub file: &'static str,
    /// 1-based line.
    pub line: u32,
    /// `true` for migrations added at run time with `Migrator::add`.
    pub runtime: bool,
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.file, self.line)?;
        if self.runtime {
            f.write_str(" (added at run time)")?;
        }
        Ok(())
    }
}

/// Shows a set's name the way messages mention it.
pub(crate) struct SetName<'a>(pub &'a str);

impl fmt::Display for SetName<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0.is_empty() {
            f.write_str("the default set")
        } else {
            write!(f, "set {:?}", self.0)
        }
    }
}

/// One violation of the sequence rule, found before the database is touched.
///
/// ```
/// # use migrate_core::{Error, Migrator, RegistryProblem, rusqlite::Transaction};
/// let m = Migrator::new().set("docs_problem")
///     .add(0, "a", |tx: &Transaction| tx.execute_batch("CREATE TABLE a (x)"))
///     .add(2, "c", |tx: &Transaction| tx.execute_batch("CREATE TABLE c (x)"));
/// match m.validate() {
///     Err(Error::InvalidRegistry { problems }) => {
///         assert!(matches!(problems[0], RegistryProblem::Gap { from: 1, to: 1, .. }));
///         assert!(problems[0].to_string().contains("migration 1 is missing"));
///     }
///     other => panic!("{other:?}"),
/// }
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum RegistryProblem {
    /// Ids `from..=to` are missing: the ids of a set must run 0, 1, 2, … .
    Gap {
        /// The set.
        set: String,
        /// First missing id.
        from: u32,
        /// Last missing id.
        to: u32,
        /// The next id that does exist, and where.
        next: Option<(u32, Location)>,
    },
    /// Two or more migrations share one id.
    DuplicateMigration {
        /// The set.
        set: String,
        /// The id.
        id: u32,
        /// Every definition of it.
        locations: Vec<Location>,
    },
    /// A rollback names an id with no migration.
    RollbackWithoutMigration {
        /// The set.
        set: String,
        /// The id.
        id: u32,
        /// The rollback's definition.
        location: Location,
    },
    /// Two or more rollbacks share one id.
    DuplicateRollback {
        /// The set.
        set: String,
        /// The id.
        id: u32,
        /// Every definition of it.
        locations: Vec<Location>,
    },
    /// The set has no migrations at all.
    EmptySet {
        /// The set.
        set: String,
    },
}

impl RegistryProblem {
    /// The set the problem is in.
    pub fn set(&self) -> &str {
        match self {
            RegistryProblem::Gap { set, .. }
            | RegistryProblem::DuplicateMigration { set, .. }
            | RegistryProblem::RollbackWithoutMigration { set, .. }
            | RegistryProblem::DuplicateRollback { set, .. }
            | RegistryProblem::EmptySet { set } => set,
        }
    }
}

fn join_locations(locations: &[Location]) -> String {
    let parts: Vec<String> = locations.iter().map(ToString::to_string).collect();
    parts.join(" and ")
}

impl fmt::Display for RegistryProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RegistryProblem::Gap {
                set,
                from,
                to,
                next,
            } => {
                let set = SetName(set);
                if from == to {
                    write!(f, "{set}: migration {from} is missing")?;
                } else {
                    write!(f, "{set}: migrations {from} to {to} are missing")?;
                }
                if let Some((id, location)) = next {
                    write!(f, " (the next one is {id}, at {location})")?;
                }
                write!(f, "; ids must run 0, 1, 2, … without gaps: renumber the migrations or add the missing ones")
            }
            RegistryProblem::DuplicateMigration { set, id, locations } => write!(
                f,
                "{}: migration id {id} is used {} times, at {}; give each migration its own id",
                SetName(set),
                locations.len(),
                join_locations(locations)
            ),
            RegistryProblem::RollbackWithoutMigration { set, id, location } => write!(
                f,
                "{}: rollback {id} at {location} has no migration {id}; fix its id or remove it",
                SetName(set)
            ),
            RegistryProblem::DuplicateRollback { set, id, locations } => write!(
                f,
                "{}: migration {id} has {} rollbacks, at {}; keep one",
                SetName(set),
                locations.len(),
                join_locations(locations)
            ),
            RegistryProblem::EmptySet { set } => {
                write!(
                    f,
                    "{}: no migrations are registered; add one with #[migration(0)]. If they live in a \
                     library crate, that crate must be linked: add `use that_crate as _;` to the binary",
                    SetName(set)
                )?;
                if crate::private::BACKEND == "inventory" {
                    f.write_str(" (with the inventory backend, a platform without life-before-main support registers nothing)")?;
                }
                Ok(())
            }
        }
    }
}

/// An applied migration whose name or code no longer matches this binary.
///
/// ```
/// # use migrate_core::{Error, Migrator, rusqlite::{Connection, Transaction}};
/// let mut conn = Connection::open_in_memory()?;
/// Migrator::new().set("docs_mod")
///     .add(0, "old_name", |tx: &Transaction| tx.execute_batch("CREATE TABLE a (x)"))
///     .migrate(&mut conn)?;
/// let renamed = Migrator::new().set("docs_mod")
///     .add(0, "new_name", |tx: &Transaction| tx.execute_batch("CREATE TABLE a (x)"));
/// match renamed.migrate(&mut conn) {
///     Err(Error::Modified { modifications, .. }) => {
///         assert_eq!(modifications[0].applied_name, "old_name");
///         assert_eq!(modifications[0].current_name, "new_name");
///     }
///     other => panic!("{other:?}"),
/// }
/// # Ok::<(), migrate_core::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Modification {
    /// The migration id.
    pub id: u32,
    /// The name recorded when it was applied.
    pub applied_name: String,
    /// The name it has now.
    pub current_name: String,
    /// The checksum recorded when it was applied.
    pub applied_checksum: String,
    /// The checksum it has now.
    pub current_checksum: String,
    /// Where it is defined now.
    pub location: Location,
}

impl fmt::Display for Modification {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let renamed = self.applied_name != self.current_name;
        let edited = self.applied_checksum != self.current_checksum;
        write!(
            f,
            "migration {} `{}` ({})",
            self.id, self.current_name, self.location
        )?;
        match (renamed, edited) {
            (true, true) => write!(
                f,
                " was renamed from `{}` and its code was edited",
                self.applied_name
            ),
            (true, false) => write!(f, " was renamed from `{}`", self.applied_name),
            _ => write!(
                f,
                " was edited after it was applied (checksum {} then, {} now)",
                self.applied_checksum, self.current_checksum
            ),
        }
    }
}

/// A row reported by `PRAGMA foreign_key_check`.
///
/// ```
/// let v = migrate_core::ForeignKeyViolation {
///     table: "child".into(),
///     rowid: Some(10),
///     parent: "parent".into(),
/// };
/// assert_eq!(v.rowid, Some(10));
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ForeignKeyViolation {
    /// The table holding the offending row.
    pub table: String,
    /// Its rowid (`None` for WITHOUT ROWID tables).
    pub rowid: Option<i64>,
    /// The parent table it refers to.
    pub parent: String,
}

/// Everything that can go wrong. Every refusal happens before any change to
/// the database; a failing step is rolled back whole.
///
/// `{}` prints the message; where a cause is attached it is the
/// [`source`](std::error::Error::source), and `{:#}` prints the message and
/// every cause on one line (what the CLI shows).
///
/// ```
/// # use migrate_core::{Error, Migrator, rusqlite::{Connection, Transaction}};
/// let m = Migrator::new().set("docs_error")
///     .add(0, "broken", |tx: &Transaction| tx.execute_batch("CREATE TABLE"));
/// let error = m.migrate(&mut Connection::open_in_memory()?).unwrap_err();
/// assert!(matches!(error, Error::Failed { id: 0, .. }));
/// assert_eq!(error.to_string(), "migration 0 `broken` failed and was rolled back");
/// // The cause is the source, not repeated in the message; `{:#}` shows the chain.
/// assert!(std::error::Error::source(&error).is_some());
/// assert!(format!("{error:#}").starts_with("migration 0 `broken` failed and was rolled back: "));
/// # Ok::<(), migrate_core::Error>(())
/// ```
#[derive(Debug)]
#[non_exhaustive]
pub enum Error {
    /// The registered migrations break the sequence rule.
    InvalidRegistry {
        /// Every problem found, each with its file and line.
        problems: Vec<RegistryProblem>,
    },
    /// A migration or rollback returned an error. It was rolled back; the
    /// steps before it in the same run stay applied.
    Failed {
        /// The migration id.
        id: u32,
        /// The migration name.
        name: String,
        /// Applying or rolling back.
        direction: Direction,
        /// What the step returned.
        source: BoxError,
    },
    /// A migration or rollback panicked. It was rolled back; the steps before
    /// it in the same run stay applied. The panic is turned into this error
    /// (after the panic hook has printed it) so that a start-up can report it.
    Panicked {
        /// The migration id.
        id: u32,
        /// The migration name.
        name: String,
        /// Applying or rolling back.
        direction: Direction,
        /// The panic message, when it was a string.
        message: String,
    },
    /// The last applied migration has no rollback.
    NoRollback {
        /// The migration id.
        id: u32,
        /// The migration name.
        name: String,
    },
    /// A migration or rollback tried to end the transaction it runs in
    /// (`BEGIN`, `COMMIT`, `END` or `ROLLBACK`). It was rolled back.
    TransactionControl {
        /// The migration id.
        id: u32,
        /// The migration name.
        name: String,
        /// Applying or rolling back.
        direction: Direction,
    },
    /// A `foreign_keys = off` step left rows that violate foreign keys.
    ForeignKeyViolations {
        /// The migration id.
        id: u32,
        /// The migration name.
        name: String,
        /// Applying or rolling back.
        direction: Direction,
        /// What `PRAGMA foreign_key_check` reported (at most the first 100).
        violations: Vec<ForeignKeyViolation>,
    },
    /// The database has applied migrations that this binary does not know.
    DatabaseAhead {
        /// The set.
        set: String,
        /// Number of migrations this binary knows in the set.
        known: u32,
        /// The unknown applied migrations, `(id, name)`.
        unknown: Vec<(u32, String)>,
    },
    /// Applied migrations were edited or renamed since they were applied.
    Modified {
        /// The set.
        set: String,
        /// Every mismatch.
        modifications: Vec<Modification>,
    },
    /// The database holds tables (or a non-zero `user_version`) but no
    /// tracking table of this library: something else built it.
    UnmanagedDatabase {
        /// The set.
        set: String,
        /// The tracking table that was looked for.
        table: String,
        /// Some of the tables found.
        tables: Vec<String>,
        /// `PRAGMA user_version`.
        user_version: i64,
    },
    /// The tracking table holds rows this library could not have written.
    CorruptHistory {
        /// The tracking table.
        table: String,
        /// Every problem found.
        problems: Vec<String>,
    },
    /// A table with the tracking table's name exists but has other columns.
    IncompatibleTrackingTable {
        /// The table.
        table: String,
        /// What is wrong with it.
        problems: Vec<String>,
    },
    /// Another connection held the write lock for longer than the lock timeout.
    Locked {
        /// How long this call waited.
        waited: Duration,
    },
    /// A target id that the set does not have.
    InvalidTarget {
        /// The set.
        set: String,
        /// The requested id.
        target: u32,
        /// How many migrations the set has.
        known: u32,
    },
    /// `baseline` was called on a database that already has history.
    /// (`adopt` answers such a database by comparing, not with this error.)
    AlreadyHasHistory {
        /// The tracking table.
        table: String,
        /// How many migrations it records.
        applied: u32,
    },
    /// `Migrator::adopt` found a history that does not line up with this
    /// set's migrations, or, for a set already managed, with its history.
    /// Each problem says what is wrong and what to do. Nothing was changed.
    CannotAdopt {
        /// What was being adopted.
        from: String,
        /// Every mismatch found.
        problems: Vec<String>,
    },
    /// A migration or rollback ran a statement the runner forbids while user
    /// code runs: a write to a tracking table (its own set's or another's),
    /// or a pragma that cannot work inside a transaction. It was rolled back.
    Forbidden {
        /// The migration id.
        id: u32,
        /// The migration name.
        name: String,
        /// Applying or rolling back.
        direction: Direction,
        /// What the statement did, and what to do instead.
        reason: String,
    },
    /// Recording a step in the tracking table failed (a constraint, a
    /// trigger or a column added to the table by hand). The step was rolled
    /// back; the steps before it in the same run stay applied. The SQLite
    /// error is the [`source`](std::error::Error::source).
    Recording {
        /// The migration id.
        id: u32,
        /// The migration name.
        name: String,
        /// Applying or rolling back.
        direction: Direction,
        /// The tracking table.
        table: String,
        /// What SQLite reported.
        source: rusqlite::Error,
    },
    /// The transaction holding these steps could not be committed (a full
    /// disk, an I/O error), so none of them was kept. The SQLite error is the
    /// [`source`](std::error::Error::source).
    CommitFailed {
        /// The migrations whose steps were lost, in the order they ran.
        ids: Vec<u32>,
        /// Applying or rolling back.
        direction: Direction,
        /// What SQLite reported.
        source: rusqlite::Error,
    },
    /// Two sets' tracking tables differ only in letter case, which SQLite
    /// ignores: they would share one history.
    TableNameClash {
        /// The tracking table this set names.
        table: String,
        /// The table of that name the database already has.
        existing: String,
    },
    /// The connection's `journal_mode` is `OFF`, so a failed step could not
    /// be rolled back. Nothing was changed.
    NoJournal,
    /// The schema was changed outside migrations since they last ran (with
    /// [`Drift::Refuse`](crate::Drift::Refuse)). Nothing was changed.
    SchemaDrift {
        /// Every object added, removed or changed, against the schema the
        /// migrations left.
        changes: Vec<crate::SchemaChange>,
    },
    /// A step that runs outside a transaction (`transaction = false`) was
    /// recorded as started but never as finished: another process is still
    /// running it, or one was killed while it ran. Nothing runs until it is
    /// resolved ([`Migrator::resolve_interrupted`](crate::Migrator::resolve_interrupted)).
    Interrupted {
        /// The migration id.
        id: u32,
        /// The migration name.
        name: String,
        /// Applying or rolling back.
        direction: Direction,
        /// When it was recorded as started (UTC, RFC 3339).
        since: String,
    },
    /// [`Migrator::wait_until_current`](crate::Migrator::wait_until_current)
    /// gave up: within its timeout, no instance brought the database up to
    /// every migration of the set that this binary knows. Nothing was
    /// changed (the waiter only reads).
    NotCurrent {
        /// The set.
        set: String,
        /// How many of the set's migrations the database held at the last
        /// look; `None` when a lock held elsewhere kept every look from
        /// reading the history.
        applied: Option<u32>,
        /// How many migrations of the set this binary knows.
        known: u32,
        /// How long it waited.
        waited: Duration,
        /// A step outside a transaction that was recorded as started and
        /// not as finished at the last look, `(id, name)`: another process
        /// is running it, or one was killed while it ran
        /// (see [`Error::Interrupted`]).
        in_progress: Option<(u32, String)>,
    },
    /// A step of the set cannot run on the database it was asked to run on:
    /// a Rust function written for a local SQLite connection (rusqlite),
    /// asked to run on a libSQL server, or a step the server cannot run
    /// the way migrate-core promises. Checked before anything is changed.
    WrongBackend {
        /// The set.
        set: String,
        /// The migration.
        id: u32,
        /// Its name.
        name: String,
        /// The migration or its rollback.
        direction: Direction,
        /// Where it is defined.
        location: Location,
        /// The database it was asked to run on (`"libSQL"`).
        backend: &'static str,
        /// What it is, and how to make it run there.
        reason: String,
    },
    /// The connection is inside a transaction; migrations need their own.
    InTransaction,
    /// There is work to do (migrations or rollbacks to run, a history to
    /// record), but the connection or the file is read-only.
    ReadOnly,
    /// Anything else SQLite reported (I/O, read-only file, …).
    Sqlite(rusqlite::Error),
    /// Anything else a libSQL server (or the way to it) reported.
    #[cfg(feature = "libsql")]
    #[cfg_attr(docsrs, doc(cfg(feature = "libsql")))]
    Libsql(libsql::Error),
}

/// `{}` is the message; `{:#}` adds each source in turn, `: `-separated.
impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.message(f)?;
        if f.alternate() {
            let mut source = std::error::Error::source(self);
            while let Some(error) = source {
                // rusqlite's innermost error only names the generic result
                // code ("Error code 19: constraint failed"), which the
                // message before it already says better.
                if error.is::<rusqlite::ffi::Error>() {
                    break;
                }
                write!(f, ": {error}")?;
                source = error.source();
            }
        }
        Ok(())
    }
}

impl Error {
    fn message(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::InvalidRegistry { problems } => {
                write!(f, "the registered migrations are invalid ({} problem", problems.len())?;
                if problems.len() != 1 {
                    f.write_str("s")?;
                }
                f.write_str("):")?;
                for problem in problems {
                    write!(f, "\n  - {problem}")?;
                }
                Ok(())
            }
            Error::Failed { id, name, direction, source } => {
                if source.is::<OutsideTransaction>() {
                    write!(
                        f,
                        "{} {id} `{name}` failed; it runs outside a transaction, so what it did \
                         before failing was not undone: check it before running it again",
                        direction.noun()
                    )
                } else {
                    write!(f, "{} {id} `{name}` failed and was rolled back", direction.noun())
                }
            }
            Error::Panicked { id, name, direction, message } => write!(
                f,
                "{} {id} `{name}` panicked and was rolled back: {message}",
                direction.noun()
            ),
            Error::NoRollback { id, name } => write!(
                f,
                "migration {id} `{name}` is the last applied one and has no rollback; add one: \
                 #[rollback({id})] on a function for a Rust migration; for an SQL file, a \
                 `.down.sql` file beside it, or statements in its Down section (goose, dbmate, \
                 sql-migrate: a Down section without a statement is no rollback)"
            ),
            Error::TransactionControl { id, name, direction } => write!(
                f,
                "{} {id} `{name}` tried to BEGIN, COMMIT, END or ROLLBACK the transaction it runs in, \
                 and was rolled back; the runner already wraps each step in a transaction: remove \
                 those statements (SAVEPOINT, RELEASE and ROLLBACK TO are fine)",
                direction.noun()
            ),
            Error::ForeignKeyViolations { id, name, direction, violations } => {
                write!(
                    f,
                    "{} {id} `{name}` left {} foreign key violation(s) and was rolled back:",
                    direction.noun(),
                    violations.len()
                )?;
                for v in violations {
                    match v.rowid {
                        Some(rowid) => write!(f, "\n  - {} rowid {rowid} refers to a missing row of {}", v.table, v.parent)?,
                        None => write!(f, "\n  - a row of {} refers to a missing row of {}", v.table, v.parent)?,
                    }
                }
                Ok(())
            }
            Error::DatabaseAhead { set, known, unknown } => {
                let ids: Vec<String> = unknown.iter().map(|(id, name)| format!("{id} `{name}`")).collect();
                write!(
                    f,
                    "the database has migrations applied that this binary does not know ({}: {}); \
                     this binary knows {known} migration(s) of {}. A newer build may have migrated this \
                     database, or the crate that holds those migrations is not linked into this binary \
                     (add `use that_crate as _;` to it)",
                    SetName(set),
                    ids.join(", "),
                    SetName(set)
                )
            }
            Error::Modified { set, modifications } => {
                write!(f, "applied migrations of {} no longer match this binary:", SetName(set))?;
                for m in modifications {
                    write!(f, "\n  - {m}")?;
                }
                f.write_str("\nRestore the applied code and add a new migration for the change, or opt out with Migrator::verify_applied(false)")
            }
            Error::UnmanagedDatabase { set, table, tables, user_version } => {
                write!(
                    f,
                    "the database was not built by migrate-core: it has no tracking table {table:?} for {} but ",
                    SetName(set)
                )?;
                if tables.is_empty() {
                    write!(f, "PRAGMA user_version is {user_version}")?;
                } else {
                    write!(f, "it already has tables ({})", tables.join(", "))?;
                }
                if let Some((found, legacy)) = tables
                    .iter()
                    .find_map(|t| crate::adopt::legacy_for_table(t).map(|legacy| (t, legacy)))
                {
                    return write!(
                        f,
                        ". Another tool keeps its history in {found:?}: record it as this set's with \
                         Migrator::adopt(conn, {legacy}) before migrating (start-up code may call \
                         it every time)"
                    );
                }
                f.write_str(
                    ". If another tool built it, Migrator::adopt maps its history (Legacy::UserVersion \
                     for PRAGMA user_version runners and rusqlite_migration, \
                     Legacy::SchemaMigrations, Legacy::Fastlite, Legacy::Sqlx, Legacy::Diesel, \
                     Legacy::Refinery, Legacy::Goose); if its schema matches your migrations up to some id N, \
                     record them as applied with Migrator::baseline(conn, N), then migrate",
                )
            }
            Error::CorruptHistory { table, problems } => {
                write!(f, "the tracking table {table:?} holds rows migrate-core did not write:")?;
                for p in problems {
                    write!(f, "\n  - {p}")?;
                }
                f.write_str("\nRestore the database from a backup, or repair the table by hand")
            }
            Error::IncompatibleTrackingTable { table, problems } => {
                write!(f, "table {table:?} exists but is not a migrate-core tracking table:")?;
                for p in problems {
                    write!(f, "\n  - {p}")?;
                }
                f.write_str(
                    "\nIf fastlite-migrations wrote it, upgrade it with Migrator::adopt(conn, Legacy::Fastlite); \
                     if another tool owns it, give this set another table with Migrator::table(…)",
                )
            }
            Error::Locked { waited } => write!(
                f,
                "database is locked by another migrator (or another connection holding a lock a \
                 write needs: a writer; in rollback-journal mode, a reader; in any mode, one with \
                 locking_mode = EXCLUSIVE): waited {:.1} s; raise Migrator::lock_timeout or find \
                 what holds the lock",
                waited.as_secs_f64()
            ),
            Error::InvalidTarget { set, target, known } => {
                write!(f, "{} has no migration {target}: ", SetName(set))?;
                match known.checked_sub(1) {
                    Some(last) => write!(f, "its ids run 0 to {last}"),
                    None => f.write_str("it has no migrations"),
                }
            }
            Error::AlreadyHasHistory { table, applied } => write!(
                f,
                "the tracking table {table:?} already records {applied} applied migration(s): baseline \
                 only writes a history where there is none"
            ),
            Error::CannotAdopt { from, problems } => {
                write!(f, "cannot adopt the history in the {from}; nothing was changed:")?;
                for p in problems {
                    write!(f, "\n  - {p}")?;
                }
                Ok(())
            }
            Error::WrongBackend { set, id, name, direction, location, backend, reason } => write!(
                f,
                "{} {id} `{name}` of {} ({location}) cannot run on {backend}: {reason}; nothing \
                 was changed",
                direction.noun(),
                SetName(set)
            ),
            Error::NotCurrent { set, applied, known, waited, in_progress } => {
                let waited = waited.as_secs_f64();
                match applied {
                    Some(applied) => write!(
                        f,
                        "the database holds {applied} of the {known} migration(s) of {} that this \
                         binary knows, and no instance migrated it within {waited:.1} s",
                        SetName(set)
                    )?,
                    None => write!(
                        f,
                        "the history of {} could not be read within {waited:.1} s: another \
                         connection held a lock on the database all that time",
                        SetName(set)
                    )?,
                }
                if let Some((id, name)) = in_progress {
                    write!(
                        f,
                        "; migration {id} `{name}` runs outside a transaction and was started \
                         but never recorded as finished: if no process is running it any more, \
                         check what it did and record it with Migrator::resolve_interrupted \
                         (CLI: `resolve`)"
                    )?;
                }
                if applied.is_none() {
                    return f.write_str(
                        ". Find what holds it (on a file not in WAL mode, a writer blocks \
                         readers while it commits), or wait longer",
                    );
                }
                f.write_str(
                    ". Start the migrating instance (the one that calls migrate() on a \
                     read-write connection, e.g. on the primary), or wait longer; if this \
                     instance should migrate, call migrate() instead of wait_until_current()",
                )
            }
            Error::InTransaction => f.write_str(
                "the connection is inside a transaction; run migrations outside of it, since each \
                 migration needs a transaction of its own",
            ),
            Error::ReadOnly => f.write_str(
                "the database is read-only and this call writes to it (migrations or rollbacks to \
                 run, a history to record): open it read-write, and check the permissions of the \
                 file and of its directory",
            ),
            Error::Forbidden { id, name, direction, reason } => write!(
                f,
                "{} {id} `{name}` was rolled back: {reason}",
                direction.noun()
            ),
            Error::Recording { id, name, direction, table, .. } => write!(
                f,
                "{} {id} `{name}` ran, but recording it in the tracking table {table:?} failed, so \
                 it was rolled back (the steps before it in this run stay applied); was the table \
                 changed by hand (a trigger, a constraint, a column)? Restore its definition",
                direction.noun()
            ),
            Error::CommitFailed { ids, direction, source } => {
                let what = match direction {
                    Direction::Up => "applying",
                    Direction::Down => "rolling back",
                };
                let list: Vec<String> = ids.iter().map(ToString::to_string).collect();
                write!(
                    f,
                    "the transaction {what} migration(s) {} could not be committed, so none of them \
                     was kept: the database is as it was before them",
                    list.join(", ")
                )?;
                match sqlite_hint(source) {
                    Some(hint) => write!(f, " ({hint})"),
                    None => Ok(()),
                }
            }
            Error::TableNameClash { table, existing } => write!(
                f,
                "the tracking table {table:?} is the existing table {existing:?}: SQLite table names \
                 ignore letter case, so two sets would share one history. Give this set another \
                 table with Migrator::table(…); if it is the same set and only the spelling \
                 changed, use {existing:?}"
            ),
            Error::Interrupted { id, name, direction, since } => write!(
                f,
                "{} {id} `{name}` runs outside a transaction and was started at {since}, but was \
                 never recorded as finished: another process may still be running it (then wait \
                 for it), or a process was killed while it ran. Check what it did, then record \
                 it with Migrator::resolve_interrupted(conn, Resolution::Completed) if its work \
                 is done, or Resolution::NotRun if none of it took effect (CLI: `resolve \
                 --completed` or `resolve --not-run`)",
                direction.noun()
            ),
            Error::SchemaDrift { changes } => {
                write!(
                    f,
                    "the schema was changed outside migrations since they last ran ({} object(s)):",
                    changes.len()
                )?;
                for change in changes {
                    write!(f, "\n  - {}", change.summary("when migrations last ran", "now"))?;
                }
                f.write_str(
                    "\nUndo the change, or make it a migration (then record it with migrate), \
                     or run with Migrator::drift(Drift::Warn) to carry on",
                )
            }
            Error::NoJournal => f.write_str(
                "the connection's journal_mode is OFF, so a failed migration could not be rolled \
                 back: set PRAGMA journal_mode to DELETE, WAL or MEMORY before migrating",
            ),
            Error::Sqlite(error) => {
                write!(f, "SQLite error: {error}")?;
                match sqlite_hint(error) {
                    Some(hint) => write!(f, " ({hint})"),
                    None => Ok(()),
                }
            }
            #[cfg(feature = "libsql")]
            Error::Libsql(error) => write!(f, "libSQL error: {error}"),
        }
    }
}

/// Why a step outside a transaction failed (returned an error or
/// panicked): the source of its `Error::Failed`, which then does not claim
/// to have rolled it back.
#[derive(Debug)]
pub(crate) struct OutsideTransaction(pub BoxError);

impl fmt::Display for OutsideTransaction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

impl std::error::Error for OutsideTransaction {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.0.source()
    }
}

/// A message either includes its source's text or returns it from
/// `source()`, never both (the Rust API guidelines): `Failed`, `Recording`
/// and `CommitFailed` return theirs; `Sqlite` is transparent, showing the
/// SQLite error's text and returning that error's own source. The alternate
/// form (`{:#}`) prints the whole chain on one line.
impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Error::Failed { source, .. } => Some(source.as_ref()),
            Error::Recording { source, .. } | Error::CommitFailed { source, .. } => Some(source),
            Error::Sqlite(error) => std::error::Error::source(error),
            #[cfg(feature = "libsql")]
            Error::Libsql(error) => std::error::Error::source(error),
            _ => None,
        }
    }
}

impl From<rusqlite::Error> for Error {
    fn from(error: rusqlite::Error) -> Self {
        Error::Sqlite(error)
    }
}

/// What to do about the SQLite failures a migration run meets in practice.
fn sqlite_hint(error: &rusqlite::Error) -> Option<&'static str> {
    use rusqlite::ErrorCode;
    let rusqlite::Error::SqliteFailure(failure, message) = error else {
        return None;
    };
    Some(match failure.code {
        ErrorCode::ReadOnly if crate::sqlite::needs_a_writer(error) => {
            "a writer was killed in the middle of a transaction (or a WAL needs recovery), and a \
             read-only connection cannot repair the file: the next read-write connection does"
        }
        ErrorCode::ReadOnly => {
            "the database is read-only: open it read-write, and check the permissions of the file and of its directory"
        }
        ErrorCode::CannotOpen => "check that the database's directory exists and is writable",
        ErrorCode::DiskFull => "the disk is full: free some space and run it again",
        ErrorCode::NotADatabase | ErrorCode::DatabaseCorrupt
            if message.as_deref().is_some_and(|m| m.contains("malformed database schema")) =>
        {
            "SQLite could not read the schema: if a limit was lowered on this connection \
             (sqlite3_limit, rusqlite's set_limit: SQLITE_LIMIT_COLUMN, SQL_LENGTH, ...), \
             raise it again; otherwise the file is damaged: restore it from a backup"
        }
        ErrorCode::NotADatabase | ErrorCode::DatabaseCorrupt => {
            "the file is not a healthy SQLite database: restore it from a backup"
        }
        // SQLITE_CONSTRAINT_COMMITHOOK.
        ErrorCode::ConstraintViolation if failure.extended_code == 531 => {
            "the connection's commit hook refused the COMMIT (rusqlite's commit_hook returning \
             true): nothing was kept; remove the hook while migrating"
        }
        ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked => "another connection holds a lock on the database",
        _ => return None,
    })
}
