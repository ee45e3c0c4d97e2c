//! What the pending migrations would destroy or risk, measured on a copy of
//! the real data (feature `lint`, part of `cli`; the CLI's `plan --lint`).
//!
//! [`Migrator::lint`] copies the live database into memory with SQLite's
//! backup API (the original is only read), runs the pending migrations on
//! the copy one at a time, and compares the copy before and after each:
//!
//! | finding | level |
//! | --- | --- |
//! | a table dropped with rows (its row count) | [`Loss`](Level::Loss) |
//! | a column dropped with values in it (rows and non-NULL values) | [`Loss`](Level::Loss) |
//! | rows deleted from a table, by the step or by `ON DELETE CASCADE` (before and after counts; the parent named when it lost rows or was dropped or rebuilt in the step) | [`Loss`](Level::Loss) |
//! | values of a column set to NULL (`ON DELETE SET NULL`, an `UPDATE`) | [`Loss`](Level::Loss) |
//! | an index, trigger or view gone while its table stays (the classic table rebuild that forgets to create them again) | [`Risk`](Level::Risk) |
//! | a column now `NOT NULL` without a default on a table with rows: inserts that leave it out fail | [`Risk`](Level::Risk) |
//! | rows left violating a foreign key (`PRAGMA foreign_key_check`) | [`Risk`](Level::Risk) |
//! | a view that no longer compiles (a table or column it reads is gone) | [`Risk`](Level::Risk) |
//! | a foreign key to a table that is gone (the rebuild that renames the old table first, whose references SQLite rewrites, then drops it): every write of the child fails with foreign keys on | [`Risk`](Level::Risk) |
//! | a virtual table dropped (its rows are not counted) | [`Risk`](Level::Risk) |
//! | an empty table or a column holding only NULLs dropped, a table or column renamed, an index, trigger or view redefined | [`Info`](Level::Info) |
//!
//! Each step also reports how long it took on this data, and a step that
//! fails on it (a `NOT NULL` column added without a default, duplicates
//! under a new `UNIQUE` index, rows failing a `CHECK`) reports its error,
//! with a hint where the cause is recognised; the steps after it are not
//! run.
//!
//! ```
//! use migrate_core::lint::{Finding, Level};
//! use migrate_core::rusqlite::{Connection, Transaction};
//! use migrate_core::Migrator;
//!
//! let m = Migrator::new()
//!     .set("docs_lint")
//!     .add(0, "create_notes", |tx: &Transaction| tx.execute_batch("CREATE TABLE notes (body TEXT)"))
//!     .add(1, "drop_notes", |tx: &Transaction| tx.execute_batch("DROP TABLE notes"));
//! let mut conn = Connection::open_in_memory()?;
//! m.migrate_to(&mut conn, 0)?;
//! conn.execute_batch("INSERT INTO notes VALUES ('keep me'), ('me too')")?;
//!
//! let report = m.lint(&conn)?;
//! assert_eq!(
//!     report.steps[0].findings,
//!     [Finding::TableDropped { table: "notes".into(), rows: Some(2) }]
//! );
//! assert_eq!(report.worst(), Some(Level::Loss));
//! // The database itself is untouched: migration 1 is still pending.
//! assert_eq!(m.pending_migrations(&conn)?.len(), 1);
//! # Ok::<(), migrate_core::Error>(())
//! ```
//!
//! # What the copy is, and costs
//! An in-memory copy of `main` (not of attached or temporary databases), as
//! large in memory as the file is on disk, with the connection's
//! `foreign_keys` and `recursive_triggers` settings. It is a fresh
//! connection: functions, collations and extensions your application
//! registers on its connections are not on it, so give them to it with
//! [`Migrator::lint_with`]. The migrator's observer sees the copy's steps.
//! Measuring counts every table's rows and non-NULL values and runs
//! `PRAGMA foreign_key_check` before the first step and after each one:
//! a scan of the data per step.

use std::fmt;
use std::time::{Duration, Instant};

use rusqlite::{ffi, params, Connection};

use crate::error::Error;
use crate::migrator::Migrator;
use crate::report::MigrationInfo;
use crate::schema::{self, Schema};
use crate::sqlite::quote_identifier;

pub use crate::schema::ObjectKind;

/// How serious a [`Finding`] is. Ordered: `Info < Risk < Loss`.
///
/// ```
/// use migrate_core::lint::Level;
/// assert!(Level::Info < Level::Risk && Level::Risk < Level::Loss);
/// assert_eq!(Level::Loss.to_string(), "loss");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[cfg_attr(feature = "cli", derive(clap::ValueEnum))]
pub enum Level {
    /// Worth knowing; nothing is lost or at risk (an empty table dropped).
    Info,
    /// Nothing is lost yet, but something may break (an index gone, a
    /// `NOT NULL` column without a default, foreign-key violations).
    Risk,
    /// Data is destroyed (a table or column dropped with data in it, rows
    /// deleted, values set to NULL).
    Loss,
}

impl Level {
    /// `info`, `risk` or `loss`.
    pub fn as_str(self) -> &'static str {
        match self {
            Level::Info => "info",
            Level::Risk => "risk",
            Level::Loss => "loss",
        }
    }
}

impl fmt::Display for Level {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One thing a migration destroys or risks, measured on the copy.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Finding {
    /// A table is gone.
    TableDropped {
        /// The table.
        table: String,
        /// Its rows before the step (`None` for a virtual table, not counted).
        rows: Option<u64>,
    },
    /// A table is gone and another with the same storage and rows appeared
    /// (`ALTER TABLE … RENAME TO`).
    TableRenamed {
        /// The old name.
        from: String,
        /// The new name.
        to: String,
    },
    /// A column of a table that stays is gone.
    ColumnDropped {
        /// The table.
        table: String,
        /// The column.
        column: String,
        /// The table's rows before the step.
        rows: u64,
        /// How many of them held a value (not NULL) in the column.
        non_null: u64,
    },
    /// A column is gone and one with a new name and the same values'
    /// count stands in its place (`ALTER TABLE … RENAME COLUMN`, or a
    /// rebuild that renames it).
    ColumnRenamed {
        /// The table.
        table: String,
        /// The old name.
        from: String,
        /// The new name.
        to: String,
    },
    /// Fewer rows in a table than before the step.
    RowsDeleted {
        /// The table.
        table: String,
        /// Its rows before the step.
        before: u64,
        /// Its rows after the step.
        after: u64,
        /// Parents it references with `ON DELETE CASCADE` that lost rows,
        /// or were dropped or rebuilt, in the same step (with foreign keys
        /// on): the likely cause.
        cascade_from: Vec<String>,
    },
    /// Fewer non-NULL values in a column, with no fewer rows.
    ValuesNulled {
        /// The table.
        table: String,
        /// The column.
        column: String,
        /// Its non-NULL values before the step.
        before: u64,
        /// Its non-NULL values after the step.
        after: u64,
    },
    /// A column of a table with rows is now `NOT NULL` without a default
    /// (new, or nullable before): inserts that leave it out now fail.
    NotNullWithoutDefault {
        /// The table.
        table: String,
        /// The column.
        column: String,
        /// The table's rows before the step.
        rows: u64,
    },
    /// An index, trigger or view is gone while its table stays.
    ObjectLost {
        /// What it was.
        kind: ObjectKind,
        /// Its name.
        name: String,
        /// The table (or view) it was on.
        table: String,
        /// The table was rebuilt in the step (its storage changed): the
        /// object went with the old table.
        rebuilt: bool,
    },
    /// An index, trigger or view has a new definition.
    ObjectChanged {
        /// What it is.
        kind: ObjectKind,
        /// Its name.
        name: String,
    },
    /// A view no longer compiles.
    BrokenView {
        /// The view.
        view: String,
        /// What SQLite says when it is used.
        error: String,
    },
    /// A table's foreign key now names a table that does not exist: with
    /// foreign keys on, every insert or update of the table fails with
    /// "no such table". The classic cause: a rebuild that renames the old
    /// table first (`ALTER TABLE t RENAME TO t_old`), which makes SQLite
    /// rewrite every reference to it, then drops it.
    DanglingForeignKey {
        /// The table holding the foreign key.
        table: String,
        /// The table it names.
        parent: String,
    },
    /// Rows now violate a foreign key (`PRAGMA foreign_key_check`).
    ForeignKeyViolations {
        /// The table holding the rows.
        table: String,
        /// The parent table they refer to.
        parent: String,
        /// How many more violations than before the step.
        added: u64,
    },
}

impl Finding {
    /// How serious it is.
    ///
    /// ```
    /// use migrate_core::lint::{Finding, Level};
    /// let empty = Finding::TableDropped { table: "old".into(), rows: Some(0) };
    /// assert_eq!(empty.level(), Level::Info);
    /// ```
    pub fn level(&self) -> Level {
        match self {
            Finding::TableDropped { rows: Some(0), .. }
            | Finding::TableRenamed { .. }
            | Finding::ColumnRenamed { .. }
            | Finding::ObjectChanged { .. }
            | Finding::ColumnDropped { non_null: 0, .. } => Level::Info,
            Finding::TableDropped { rows: None, .. }
            | Finding::NotNullWithoutDefault { .. }
            | Finding::ObjectLost { .. }
            | Finding::BrokenView { .. }
            | Finding::DanglingForeignKey { .. }
            | Finding::ForeignKeyViolations { .. } => Level::Risk,
            Finding::TableDropped { .. }
            | Finding::ColumnDropped { .. }
            | Finding::RowsDeleted { .. }
            | Finding::ValuesNulled { .. } => Level::Loss,
        }
    }
}

fn rows(n: u64) -> String {
    if n == 1 {
        "1 row".to_owned()
    } else {
        format!("{n} rows")
    }
}

impl fmt::Display for Finding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Finding::TableDropped { table, rows: Some(0) } => {
                write!(f, "table {table} dropped (it was empty)")
            }
            Finding::TableDropped { table, rows: Some(n) } => {
                write!(f, "table {table} dropped with its {}", rows(*n))
            }
            Finding::TableDropped { table, rows: None } => write!(
                f,
                "virtual table {table} dropped (its rows were not counted)"
            ),
            Finding::TableRenamed { from, to } => write!(f, "table {from} renamed to {to}"),
            Finding::ColumnRenamed { table, from, to } => {
                write!(f, "column {table}.{from} renamed to {to}")
            }
            Finding::ColumnDropped {
                table,
                column,
                rows: 0,
                ..
            } => write!(f, "column {table}.{column} dropped (the table is empty)"),
            Finding::ColumnDropped {
                table,
                column,
                rows: n,
                non_null: 0,
            } => write!(
                f,
                "column {table}.{column} dropped (NULL in all {} of the table)",
                rows(*n)
            ),
            Finding::ColumnDropped {
                table,
                column,
                rows: n,
                non_null,
            } => write!(
                f,
                "column {table}.{column} dropped with {non_null} value(s) (not NULL) in {} of the table",
                rows(*n)
            ),
            Finding::RowsDeleted {
                table,
                before,
                after,
                cascade_from,
            } => {
                write!(
                    f,
                    "{} deleted from {table} ({before} → {after})",
                    rows(before.saturating_sub(*after))
                )?;
                if !cascade_from.is_empty() {
                    write!(
                        f,
                        ", probably by ON DELETE CASCADE from {}: deleting from, dropping or \
                         rebuilding a parent with foreign keys on deletes its children (a rebuild \
                         belongs in a `foreign_keys = off` migration)",
                        cascade_from.join(", ")
                    )?;
                }
                Ok(())
            }
            Finding::ValuesNulled {
                table,
                column,
                before,
                after,
            } => write!(
                f,
                "{} value(s) of {table}.{column} set to NULL (non-NULL values: {before} → {after})",
                before.saturating_sub(*after)
            ),
            Finding::NotNullWithoutDefault {
                table,
                column,
                rows: n,
            } => write!(
                f,
                "column {table}.{column} is now NOT NULL without a default ({table} has {}): \
                 INSERTs that leave it out will fail; give it a DEFAULT if the application does not \
                 set it yet",
                rows(*n)
            ),
            Finding::ObjectLost {
                kind,
                name,
                table,
                rebuilt: true,
            } => write!(
                f,
                "{kind} {name} on {table} is gone: {table} was rebuilt and the old table took it \
                 along; create it again in the migration, after the rename"
            ),
            Finding::ObjectLost {
                kind, name, table, ..
            } => write!(f, "{kind} {name} on {table} dropped"),
            Finding::ObjectChanged { kind, name } => write!(f, "{kind} {name} redefined"),
            Finding::DanglingForeignKey { table, parent } => write!(
                f,
                "table {table} has a foreign key to {parent}, which does not exist: with foreign \
                 keys on, every insert or update of {table} fails (no such table: main.{parent}). \
                 Renaming a table makes SQLite rewrite the references to it: rebuild by creating \
                 the new table under another name, copying, dropping the old one and renaming \
                 the new one"
            ),
            Finding::BrokenView { view, error } => {
                write!(f, "view {view} no longer works: {error}")
            }
            Finding::ForeignKeyViolations {
                table,
                parent,
                added,
            } => write!(
                f,
                "{} of {table} now refer to missing {parent} rows (PRAGMA foreign_key_check)",
                rows(*added)
            ),
        }
    }
}

/// What one pending migration did on the copy.
#[derive(Debug)]
#[non_exhaustive]
pub struct StepLint {
    /// The migration id.
    pub id: u32,
    /// Its name.
    pub name: String,
    /// How long it took on this data (wall time of the step, its tracking
    /// row included).
    pub elapsed: Duration,
    /// What it destroys or risks, most serious first.
    pub findings: Vec<Finding>,
    /// Why it failed on this data, if it did (it was rolled back on the
    /// copy; the migrations after it did not run).
    pub failure: Option<Error>,
    /// What probably causes the failure, and what to do, when recognised.
    pub hint: Option<String>,
}

impl StepLint {
    /// The most serious finding's level.
    pub fn worst(&self) -> Option<Level> {
        self.findings.iter().map(Finding::level).max()
    }
}

/// What [`Migrator::lint`] found.
#[derive(Debug)]
#[non_exhaustive]
pub struct LintReport {
    /// The migrations that ran on the copy, in order; the last one may have
    /// failed.
    pub steps: Vec<StepLint>,
    /// The pending migrations that did not run, after a failure.
    pub not_run: Vec<MigrationInfo>,
    /// How long copying the database took.
    pub copy_elapsed: Duration,
    /// Whether the copy enforced foreign keys (as the connection does).
    pub foreign_keys: bool,
}

impl LintReport {
    /// Every finding with the step it belongs to.
    pub fn findings(&self) -> impl Iterator<Item = (&StepLint, &Finding)> {
        self.steps
            .iter()
            .flat_map(|step| step.findings.iter().map(move |f| (step, f)))
    }

    /// The most serious finding's level.
    pub fn worst(&self) -> Option<Level> {
        self.steps.iter().filter_map(StepLint::worst).max()
    }

    /// How many findings have exactly this level.
    pub fn count(&self, level: Level) -> usize {
        self.findings().filter(|(_, f)| f.level() == level).count()
    }

    /// The step that failed on the copy, if one did.
    pub fn failed(&self) -> Option<&StepLint> {
        self.steps.iter().find(|step| step.failure.is_some())
    }

    /// No step failed and no finding reaches `level`.
    ///
    /// ```
    /// # use migrate_core::{Migrator, rusqlite::{Connection, Transaction}};
    /// use migrate_core::lint::Level;
    /// let m = Migrator::new().set("docs_lint_passes")
    ///     .add(0, "create_a", |tx: &Transaction| tx.execute_batch("CREATE TABLE a (x)"));
    /// let report = m.lint(&Connection::open_in_memory()?)?;
    /// assert!(report.passes(Level::Info));
    /// # Ok::<(), migrate_core::Error>(())
    /// ```
    pub fn passes(&self, level: Level) -> bool {
        self.failed().is_none() && self.worst().map_or(true, |worst| worst < level)
    }
}

impl Migrator {
    /// Runs the pending migrations on an in-memory copy of `conn`'s
    /// database, one at a time, and reports per migration what it destroys
    /// or risks on this data, how long it took, and whether it failed. The
    /// database itself is only read. See [the `lint` module](crate::lint).
    ///
    /// Refused: a connection inside a transaction ([`Error::InTransaction`]),
    /// a database another connection keeps locked for longer than the lock
    /// timeout ([`Error::Locked`]), and whatever
    /// `pending_migrations` refuses (an invalid registry, a modified
    /// history, …).
    ///
    /// ```
    /// # use migrate_core::{Migrator, rusqlite::{Connection, Transaction}};
    /// let m = Migrator::new().set("docs_lint_clean")
    ///     .add(0, "create_a", |tx: &Transaction| tx.execute_batch("CREATE TABLE a (x)"));
    /// let report = m.lint(&Connection::open_in_memory()?)?;
    /// assert_eq!(report.steps.len(), 1);
    /// assert!(report.steps[0].findings.is_empty() && report.failed().is_none());
    /// # Ok::<(), migrate_core::Error>(())
    /// ```
    #[cfg_attr(docsrs, doc(cfg(feature = "lint")))]
    pub fn lint(&self, conn: &Connection) -> Result<LintReport, Error> {
        self.lint_with(conn, |_| Ok(()))
    }

    /// [`lint`](Self::lint), with `setup` run on the copy's connection
    /// first: register there the functions, collations and extensions the
    /// migrations need that your application registers on its connections.
    ///
    /// ```
    /// # use migrate_core::{Migrator, rusqlite::{Connection, Transaction}};
    /// // A migration that reads what the application provides on each
    /// // connection: here a temporary table, as well a function
    /// // (`create_scalar_function`, rusqlite's `functions` feature).
    /// let m = Migrator::new().set("docs_lint_with")
    ///     .add(0, "seed", |tx: &Transaction| {
    ///         tx.execute_batch("CREATE TABLE plans (name TEXT); INSERT INTO plans SELECT name FROM temp.default_plans")
    ///     });
    /// let conn = Connection::open_in_memory()?;
    /// assert!(m.lint(&conn)?.failed().is_some()); // no such table on a fresh copy
    /// let report = m.lint_with(&conn, |copy| {
    ///     copy.execute_batch("CREATE TEMP TABLE default_plans AS SELECT 'free' AS name")
    /// })?;
    /// assert!(report.failed().is_none());
    /// # Ok::<(), migrate_core::Error>(())
    /// ```
    #[cfg_attr(docsrs, doc(cfg(feature = "lint")))]
    pub fn lint_with(
        &self,
        conn: &Connection,
        setup: impl FnOnce(&Connection) -> rusqlite::Result<()>,
    ) -> Result<LintReport, Error> {
        let start = Instant::now();
        // Waiting for another connection's lock, as every call, within the
        // lock timeout (round 16: the connection's own busy timeout, 5 s
        // from rusqlite, whatever the CLI's `--lock-timeout` said).
        let mut copy =
            crate::sqlite::LockWait::around(conn, self.configured_lock_timeout(), |lock| {
                copy_into_memory(conn, lock)
            })?;
        let copy_elapsed = start.elapsed();
        let foreign_keys = pragma(&copy, "foreign_keys")? != 0;
        setup(&copy)?;
        let mut pending = self.pending_migrations(&copy)?.into_iter();
        let mut before = Measure::take(&copy)?;
        let mut steps = Vec::new();
        for migration in pending.by_ref() {
            let start = Instant::now();
            let result = self.migrate_to(&mut copy, migration.id);
            let elapsed = start.elapsed();
            let mut step = StepLint {
                id: migration.id,
                name: migration.name,
                elapsed,
                findings: Vec::new(),
                failure: None,
                hint: None,
            };
            match result {
                Ok(_) => {
                    let after = Measure::take(&copy)?;
                    step.findings = compare(&before, &after, foreign_keys);
                    before = after;
                    steps.push(step);
                }
                Err(error) => {
                    step.hint = hint(&error, &before);
                    step.failure = Some(error);
                    steps.push(step);
                    break;
                }
            }
        }
        Ok(LintReport {
            steps,
            not_run: pending.collect(),
            copy_elapsed,
            foreign_keys,
        })
    }
}

fn pragma(conn: &Connection, name: &str) -> Result<i64, Error> {
    Ok(conn.query_row(&format!("PRAGMA {name}"), params![], |r| r.get(0))?)
}

/// `main` of `conn`'s database, copied into a new in-memory database with
/// SQLite's backup API (through the C interface: rusqlite's wrapper is an
/// optional feature whose shape changed across the supported versions).
/// The copy has the connection's `foreign_keys` and `recursive_triggers`.
/// Waits for locks within `lock`'s budget.
fn copy_into_memory(
    conn: &Connection,
    lock: &crate::sqlite::LockWait<'_>,
) -> Result<Connection, Error> {
    // A connection inside a transaction cannot be the source of a backup:
    // its uncommitted changes would be copied, or it answers BUSY.
    if !conn.is_autocommit() {
        return Err(Error::InTransaction);
    }
    let copy = Connection::open_in_memory()?;
    // An in-memory destination must have the source's page size.
    let page_size: i64 = conn.query_row("PRAGMA main.page_size", params![], |r| r.get(0))?;
    copy.execute_batch(&format!("PRAGMA page_size = {page_size}"))?;
    // The lock bound's busy handler waits inside a step; the loop waits
    // too, should a step answer BUSY at once, both within its budget.
    // SAFETY: both handles are valid for the whole block, and the backup
    // object is finished before it ends.
    let code = unsafe {
        let backup = ffi::sqlite3_backup_init(
            copy.handle(),
            c"main".as_ptr(),
            conn.handle(),
            c"main".as_ptr(),
        );
        if backup.is_null() {
            ffi::sqlite3_errcode(copy.handle())
        } else {
            // -1: every page in one step, under one read lock of the source.
            let step = loop {
                match ffi::sqlite3_backup_step(backup, -1) {
                    ffi::SQLITE_BUSY | ffi::SQLITE_LOCKED
                        if lock.pause(Duration::from_millis(10)) => {}
                    code => break code,
                }
            };
            let finish = ffi::sqlite3_backup_finish(backup);
            if step == ffi::SQLITE_DONE {
                finish
            } else {
                step
            }
        }
    };
    let message = match code {
        ffi::SQLITE_OK => None,
        ffi::SQLITE_BUSY | ffi::SQLITE_LOCKED => {
            return Err(Error::Locked {
                waited: lock.waited(),
            })
        }
        // SAFETY: a valid handle; SQLite returns a NUL-terminated message,
        // copied at once.
        _ => Some(format!(
            "cannot copy the database into memory for the lint: {}",
            unsafe { std::ffi::CStr::from_ptr(ffi::sqlite3_errmsg(copy.handle())) }
                .to_string_lossy()
        )),
    };
    if let Some(message) = message {
        return Err(Error::Sqlite(rusqlite::Error::SqliteFailure(
            ffi::Error::new(code),
            Some(message),
        )));
    }
    for setting in ["foreign_keys", "recursive_triggers"] {
        let value = pragma(conn, setting)?;
        copy.execute_batch(&format!("PRAGMA {setting} = {}", i64::from(value != 0)))?;
    }
    Ok(copy)
}

// ---------------------------------------------------------------------------
// Measuring

/// A table as measured.
struct Table {
    name: String,
    rootpage: i64,
    /// `None` for a virtual table (not counted).
    rows: Option<u64>,
    columns: Vec<Column>,
    /// Parents referenced with `ON DELETE CASCADE`.
    cascade_parents: Vec<String>,
    /// Every table its foreign keys name.
    parents: Vec<String>,
}

struct Column {
    name: String,
    not_null: bool,
    has_default: bool,
    /// `INTEGER PRIMARY KEY`: SQLite fills it in.
    rowid_alias: bool,
    non_null: Option<u64>,
}

/// The copy between two steps: its schema, rows, values, foreign-key
/// violations and broken views.
struct Measure {
    schema: Schema,
    tables: Vec<Table>,
    violations: Vec<((String, String), u64)>,
    broken_views: Vec<(String, String)>,
}

impl Measure {
    fn take(conn: &Connection) -> Result<Measure, Error> {
        let schema = Schema::read(conn)?;
        let mut tables = Vec::new();
        let mut broken_views = Vec::new();
        for object in &schema.objects {
            match object.kind {
                ObjectKind::Table => tables.push(measure_table(conn, object)?),
                ObjectKind::View => {
                    let sql = format!(
                        "SELECT * FROM main.{} LIMIT 0",
                        quote_identifier(&object.name)
                    );
                    if let Err(error) = conn.prepare(&sql) {
                        broken_views.push((object.name.clone(), sqlite_message(&error)));
                    }
                }
                _ => {}
            }
        }
        let mut violations: Vec<((String, String), u64)> = Vec::new();
        for v in schema::foreign_key_violations(conn)? {
            let key = (v.table, v.parent);
            match violations.iter_mut().find(|(k, _)| *k == key) {
                Some((_, n)) => *n += 1,
                None => violations.push((key, 1)),
            }
        }
        Ok(Measure {
            schema,
            tables,
            violations,
            broken_views,
        })
    }

    /// `(table, parent)` for each foreign key naming a table that is not
    /// there (a view or a virtual table is no parent either).
    fn dangling(&self) -> impl Iterator<Item = (&str, &str)> {
        self.tables.iter().flat_map(move |t| {
            t.parents
                .iter()
                .filter(move |p| self.table(p).is_none())
                .map(move |p| (t.name.as_str(), p.as_str()))
        })
    }

    fn table(&self, name: &str) -> Option<&Table> {
        self.tables
            .iter()
            .find(|t| t.name.eq_ignore_ascii_case(name))
    }
}

/// The message SQLite gave, without rusqlite's wrapping.
fn sqlite_message(error: &rusqlite::Error) -> String {
    match error {
        rusqlite::Error::SqliteFailure(_, Some(message)) => message.clone(),
        other => other.to_string(),
    }
}

fn count(n: i64) -> u64 {
    u64::try_from(n).unwrap_or(0)
}

fn measure_table(conn: &Connection, object: &schema::Object) -> Result<Table, Error> {
    let quoted = quote_identifier(&object.name);
    let mut columns = Vec::new();
    {
        let mut stmt = conn.prepare(&format!("PRAGMA main.table_info({quoted})"))?;
        let rows = stmt.query_map(params![], |r| {
            Ok((
                r.get::<_, String>(1)?,
                r.get::<_, Option<String>>(2)?.unwrap_or_default(),
                r.get::<_, i64>(3)? != 0,
                r.get::<_, Option<String>>(4)?.is_some(),
                r.get::<_, i64>(5)?,
            ))
        })?;
        let rows: Vec<_> = rows.collect::<Result<_, _>>()?;
        let key_columns = rows.iter().filter(|(_, _, _, _, pk)| *pk > 0).count();
        for (name, declared, not_null, has_default, pk) in rows {
            columns.push(Column {
                rowid_alias: pk > 0 && key_columns == 1 && declared.eq_ignore_ascii_case("integer"),
                name,
                not_null,
                has_default,
                non_null: None,
            });
        }
    }
    let mut rows = None;
    if !object.is_virtual() {
        let mut sql = String::from("SELECT count(*)");
        for column in &columns {
            sql.push_str(", count(");
            sql.push_str(&quote_identifier(&column.name));
            sql.push(')');
        }
        sql.push_str(" FROM main.");
        sql.push_str(&quoted);
        let counts: Vec<i64> = conn.query_row(&sql, params![], |r| {
            (0..=columns.len())
                .map(|i| r.get(i))
                .collect::<rusqlite::Result<_>>()
        })?;
        rows = counts.first().copied().map(count);
        for (column, n) in columns.iter_mut().zip(counts.iter().skip(1)) {
            column.non_null = Some(count(*n));
        }
    }
    let mut cascade_parents = Vec::new();
    let mut parents: Vec<String> = Vec::new();
    {
        let mut stmt = conn.prepare(&format!("PRAGMA main.foreign_key_list({quoted})"))?;
        let keys = stmt.query_map(params![], |r| {
            Ok((r.get::<_, String>(2)?, r.get::<_, String>(6)?))
        })?;
        for key in keys {
            let (parent, on_delete) = key?;
            if !parents.iter().any(|p| p.eq_ignore_ascii_case(&parent)) {
                parents.push(parent.clone());
            }
            if on_delete.eq_ignore_ascii_case("cascade")
                && !cascade_parents
                    .iter()
                    .any(|p: &String| p.eq_ignore_ascii_case(&parent))
            {
                cascade_parents.push(parent);
            }
        }
    }
    Ok(Table {
        name: object.name.clone(),
        rootpage: object.rootpage,
        rows,
        columns,
        cascade_parents,
        parents,
    })
}

/// What changed from `before` to `after`, most serious first.
fn compare(before: &Measure, after: &Measure, foreign_keys: bool) -> Vec<Finding> {
    let mut findings = Vec::new();
    // Tables dropped or renamed: what was on them went with them.
    let mut gone: Vec<&str> = Vec::new();
    for old in &before.tables {
        let Some(new) = after.table(&old.name) else {
            gone.push(&old.name);
            let renamed = after.tables.iter().find(|t| {
                before.table(&t.name).is_none()
                    && t.rootpage == old.rootpage
                    && t.rows == old.rows
                    && old.rows.is_some()
            });
            findings.push(match renamed {
                Some(new) => Finding::TableRenamed {
                    from: old.name.clone(),
                    to: new.name.clone(),
                },
                None => Finding::TableDropped {
                    table: old.name.clone(),
                    rows: old.rows,
                },
            });
            continue;
        };
        compare_table(old, new, before, after, foreign_keys, &mut findings);
    }
    for object in &before.schema.objects {
        if object.kind == ObjectKind::Table
            || gone.iter().any(|t| t.eq_ignore_ascii_case(&object.table))
        {
            continue;
        }
        match after
            .schema
            .objects
            .iter()
            .find(|o| o.kind == object.kind && o.name.eq_ignore_ascii_case(&object.name))
        {
            None => findings.push(Finding::ObjectLost {
                kind: object.kind,
                name: object.name.clone(),
                table: object.table.clone(),
                rebuilt: match (before.table(&object.table), after.table(&object.table)) {
                    (Some(old), Some(new)) => old.rootpage != new.rootpage,
                    _ => false,
                },
            }),
            Some(now) if !now.same_definition(object) => findings.push(Finding::ObjectChanged {
                kind: object.kind,
                name: object.name.clone(),
            }),
            Some(_) => {}
        }
    }
    for (view, error) in &after.broken_views {
        if !before.broken_views.iter().any(|(v, _)| v == view) {
            findings.push(Finding::BrokenView {
                view: view.clone(),
                error: error.clone(),
            });
        }
    }
    for (table, parent) in after.dangling() {
        let known =
            |(t, p): (&str, &str)| t.eq_ignore_ascii_case(table) && p.eq_ignore_ascii_case(parent);
        if !before.dangling().any(known) {
            findings.push(Finding::DanglingForeignKey {
                table: table.to_owned(),
                parent: parent.to_owned(),
            });
        }
    }
    for ((table, parent), n) in &after.violations {
        let known = before
            .violations
            .iter()
            .find(|(key, _)| key.0 == *table && key.1 == *parent)
            .map_or(0, |(_, n)| *n);
        if *n > known {
            findings.push(Finding::ForeignKeyViolations {
                table: table.clone(),
                parent: parent.clone(),
                added: n - known,
            });
        }
    }
    // Stable: most serious first, in the order found.
    findings.sort_by_key(|f| std::cmp::Reverse(f.level()));
    findings
}

/// Columns dropped, values nulled, rows deleted, `NOT NULL` added: one
/// table that exists before and after the step.
fn compare_table(
    old: &Table,
    new: &Table,
    before: &Measure,
    after: &Measure,
    foreign_keys: bool,
    findings: &mut Vec<Finding>,
) {
    let (Some(old_rows), Some(new_rows)) = (old.rows, new.rows) else {
        return;
    };
    let has =
        |columns: &[Column], name: &str| columns.iter().any(|c| c.name.eq_ignore_ascii_case(name));
    for (position, column) in old.columns.iter().enumerate() {
        let now = new
            .columns
            .iter()
            .find(|c| c.name.eq_ignore_ascii_case(&column.name));
        // A new name in the same place with as many values: renamed.
        let renamed = new.columns.get(position).filter(|c| {
            now.is_none() && !has(&old.columns, &c.name) && c.non_null == column.non_null
        });
        match (now, column.non_null) {
            (None, _) if renamed.is_some() => {
                if let Some(to) = renamed {
                    findings.push(Finding::ColumnRenamed {
                        table: new.name.clone(),
                        from: column.name.clone(),
                        to: to.name.clone(),
                    });
                }
            }
            (None, Some(non_null)) => findings.push(Finding::ColumnDropped {
                table: new.name.clone(),
                column: column.name.clone(),
                rows: old_rows,
                non_null,
            }),
            (Some(now), Some(was)) if new_rows >= old_rows => {
                if let Some(is) = now.non_null.filter(|is| *is < was) {
                    findings.push(Finding::ValuesNulled {
                        table: new.name.clone(),
                        column: column.name.clone(),
                        before: was,
                        after: is,
                    });
                }
            }
            _ => {}
        }
    }
    if old_rows > 0 {
        for column in &new.columns {
            let was_not_null = old
                .columns
                .iter()
                .find(|c| c.name.eq_ignore_ascii_case(&column.name))
                .is_some_and(|c| c.not_null);
            if column.not_null && !column.has_default && !column.rowid_alias && !was_not_null {
                findings.push(Finding::NotNullWithoutDefault {
                    table: new.name.clone(),
                    column: column.name.clone(),
                    rows: old_rows,
                });
            }
        }
    }
    if new_rows < old_rows {
        let cascade_from = if foreign_keys {
            old.cascade_parents
                .iter()
                .filter(|parent| match (before.table(parent), after.table(parent)) {
                    (Some(_), None) => true,
                    (Some(was), Some(is)) => {
                        was.rootpage != is.rootpage
                            || matches!((was.rows, is.rows), (Some(a), Some(b)) if b < a)
                    }
                    _ => false,
                })
                .cloned()
                .collect()
        } else {
            Vec::new()
        };
        findings.push(Finding::RowsDeleted {
            table: new.name.clone(),
            before: old_rows,
            after: new_rows,
            cascade_from,
        });
    }
}

/// What probably makes a step fail on this data, and what to do.
fn hint(error: &Error, before: &Measure) -> Option<String> {
    let text = format!("{error:#}");
    let after = |marker: &str| {
        text.find(marker).map(|at| {
            text[at + marker.len()..]
                .split(|c: char| c.is_whitespace() || c == ':' || c == ';')
                .next()
                .unwrap_or("")
                .trim_end_matches(',')
                .to_owned()
        })
    };
    if text.contains("Cannot add a NOT NULL column with default value NULL") {
        return Some(
            "ALTER TABLE … ADD COLUMN … NOT NULL needs a default other than NULL, even on an empty \
             table: write NOT NULL DEFAULT …, or add the column without NOT NULL"
                .to_owned(),
        );
    }
    if let Some(column) = after("NOT NULL constraint failed: ") {
        let table = column.split('.').next().unwrap_or("");
        let rows = before
            .table(table)
            .and_then(|t| t.rows)
            .map(|n| format!(" ({table} has {})", rows(n)))
            .unwrap_or_default();
        return Some(format!(
            "{column} is NOT NULL and this data leaves it NULL{rows}: give the column a DEFAULT, or \
             fill it where the rows are written (coalesce(…) in the INSERT … SELECT of a rebuild, \
             an UPDATE before the constraint)"
        ));
    }
    if let Some(columns) = after("UNIQUE constraint failed: ") {
        return Some(format!(
            "this data has duplicates in {columns}: remove or merge them in the migration before \
             the UNIQUE index or constraint is created"
        ));
    }
    if text.contains("CHECK constraint failed") {
        return Some(
            "rows of this data fail a CHECK constraint: fix them in the migration before the \
             constraint applies"
                .to_owned(),
        );
    }
    if matches!(error, Error::ForeignKeyViolations { .. })
        || text.contains("FOREIGN KEY constraint failed")
    {
        return Some(
            "on this data the step leaves rows that refer to missing parents: delete or fix them \
             in the migration"
                .to_owned(),
        );
    }
    if [
        "no such function",
        "no such collation sequence",
        "no such module",
    ]
    .iter()
    .any(|m| text.contains(m))
    {
        return Some(
            "the copy is a fresh connection: register what your application adds to its \
             connections (functions, collations, extensions) with Migrator::lint_with"
                .to_owned(),
        );
    }
    None
}
