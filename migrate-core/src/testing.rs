//! Test helpers for applications (feature `testing`).
//!
//! - [`check_reversible`] proves, on a scratch in-memory database, that every
//!   rollback undoes its migration's schema changes exactly.
//! - [`check_schema_snapshot`] replays every migration on a scratch database
//!   and compares the schema they build with a committed file, so that every
//!   schema change shows in a pull request as a diff of that file.
//!
//! Call them from one test each:
//!
//! ```
//! use migrate_core::rusqlite::Transaction;
//! use migrate_core::Migrator;
//!
//! let m = Migrator::new()
//!     .set("docs_testing")
//!     .add(0, "create_posts", |tx: &Transaction| tx.execute_batch("CREATE TABLE posts (id INTEGER PRIMARY KEY)"))
//!     .add(1, "add_title", |tx: &Transaction| tx.execute_batch("ALTER TABLE posts ADD COLUMN title TEXT"))
//!     .add_rollback(1, |tx: &Transaction| tx.execute_batch("ALTER TABLE posts DROP COLUMN title"));
//! migrate_core::testing::assert_reversible(&m);
//! ```
//!
//! # Schema snapshots
//! [`assert_schema_snapshot`]`(&migrator, "tests/schema.sql")`, in a test:
//! 1. replays every migration of the set on an in-memory database with
//!    foreign keys on, running the [reversibility check](check_reversible)
//!    on the way;
//! 2. runs `PRAGMA integrity_check` and `PRAGMA foreign_key_check` on the
//!    result;
//! 3. normalises its schema: one object per block (each table followed by
//!    its indexes and triggers, then the views), white space, comments and
//!    quoting made canonical; SQLite's own objects, this library's tracking
//!    tables and virtual tables' shadow tables left out;
//! 4. compares it, object by object, with the file: a difference fails the
//!    test listing each object added, removed or changed (both versions of
//!    a changed one, the lines that differ marked).
//!
//! The file is rewritten instead of failing the test, when it differs or
//! cannot be read as a schema (a file that matches is left as it is, its
//! comments and line endings too), when the environment variable
//! [`MIGRATE_UPDATE_SNAPSHOTS`](UPDATE_SNAPSHOTS)`=1` is set (also when
//! `INSTA_UPDATE=always` or `UPDATE_EXPECT=1` is, the variables insta and
//! expect-test users already type to accept every snapshot of a run):
//!
//! ```text
//! MIGRATE_UPDATE_SNAPSHOTS=1 cargo test     # then review and commit tests/schema.sql
//! ```
//!
//! A missing file is an error that says this, unless the variable is set:
//! the first run creates the file only when asked to. The file is written
//! with `\n` line endings and read with `\n` or `\r\n`; a relative path is
//! relative to the current directory, which `cargo test` sets to the
//! package's root. The CLI's `schema --replay` prints the same text, so
//! `myapp db schema --replay > tests/schema.sql` writes the file too.
//!
//! ```
//! # use migrate_core::rusqlite::Transaction;
//! # use migrate_core::Migrator;
//! # let dir = tempfile::tempdir()?;
//! # let path = dir.path().join("schema.sql");
//! # std::fs::write(&path, "CREATE TABLE posts (id INTEGER PRIMARY KEY, title TEXT);\n")?;
//! let m = Migrator::new()
//!     .set("docs_snapshot")
//!     .add(0, "create_posts", |tx: &Transaction| tx.execute_batch("CREATE TABLE posts (id INTEGER PRIMARY KEY)"))
//!     .add(1, "add_title", |tx: &Transaction| tx.execute_batch("ALTER TABLE posts ADD COLUMN title TEXT"));
//! migrate_core::testing::assert_schema_snapshot(&m, &path); // e.g. "tests/schema.sql"
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::fmt;
use std::path::{Path, PathBuf};

use rusqlite::Connection;

use crate::error::{Error, ForeignKeyViolation};
use crate::migrator::Migrator;
use crate::schema::Schema;

pub use crate::schema::{ObjectKind, SchemaChange};

/// Why [`check_reversible`] failed.
///
/// ```
/// # use migrate_core::{Migrator, rusqlite::Transaction};
/// let m = Migrator::new()
///     .set("docs_not_reversible")
///     .add(0, "create_a", |tx: &Transaction| tx.execute_batch("CREATE TABLE a (x)"))
///     .add(1, "create_b", |tx: &Transaction| tx.execute_batch("CREATE TABLE b (x); CREATE INDEX b_x ON b (x)"))
///     .add_rollback(1, |tx: &Transaction| tx.execute_batch("DROP INDEX b_x"));
/// let failure = migrate_core::testing::check_reversible(&m).unwrap_err();
/// assert!(failure.to_string().contains("table b"), "{failure}");
/// ```
#[derive(Debug)]
#[non_exhaustive]
pub enum NotReversible {
    /// After the rollback of `id` the schema differs from before `id`.
    SchemaDiffers {
        /// The migration id.
        id: u32,
        /// Its name.
        name: String,
        /// Every difference, object by object, readably.
        difference: String,
    },
    /// Applying or rolling back failed.
    Failed(Error),
    /// Migration `id` was applied and rolled back, then failed when applied
    /// again: its rollback left something behind that stops it (rows a
    /// constraint refuses, a table, an index).
    FailedAfterRollback {
        /// The migration id.
        id: u32,
        /// Its name.
        name: String,
        /// Why it failed the second time.
        error: Box<Error>,
    },
}

impl fmt::Display for NotReversible {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            NotReversible::SchemaDiffers { id, name, difference } => write!(
                f,
                "the rollback of migration {id} `{name}` does not restore the schema as it was before it: {difference}"
            ),
            NotReversible::Failed(error) => write!(f, "the reversibility check could not run: {error}"),
            NotReversible::FailedAfterRollback { id, name, .. } => write!(
                f,
                "migration {id} `{name}` was applied and rolled back, then failed when applied \
                 again: its rollback leaves something behind that stops it"
            ),
        }
    }
}

impl std::error::Error for NotReversible {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            NotReversible::Failed(error) => Some(error),
            NotReversible::FailedAfterRollback { error, .. } => Some(&**error),
            NotReversible::SchemaDiffers { .. } => None,
        }
    }
}

impl From<Error> for NotReversible {
    fn from(error: Error) -> Self {
        NotReversible::Failed(error)
    }
}

/// For every migration that has a rollback, on a scratch in-memory database:
/// snapshot the schema (`sqlite_master`, normalised), apply the migration,
/// roll it back, and compare; then apply it again and go on. Returns the ids
/// checked.
///
/// ```
/// # use migrate_core::{Migrator, rusqlite::Transaction};
/// let m = Migrator::new()
///     .set("docs_check_reversible")
///     .add(0, "create_a", |tx: &Transaction| tx.execute_batch("CREATE TABLE a (x)"))
///     .add_rollback(0, |tx: &Transaction| tx.execute_batch("DROP TABLE a"));
/// assert_eq!(migrate_core::testing::check_reversible(&m)?, vec![0]);
/// # Ok::<(), migrate_core::testing::NotReversible>(())
/// ```
pub fn check_reversible(migrator: &Migrator) -> Result<Vec<u32>, NotReversible> {
    replay_reversibly(migrator).map(|(_, checked)| checked)
}

/// The reversibility check, handing back its database with every migration
/// applied.
fn replay_reversibly(migrator: &Migrator) -> Result<(Connection, Vec<u32>), NotReversible> {
    let mut conn = Connection::open_in_memory().map_err(Error::from)?;
    conn.execute_batch("PRAGMA foreign_keys = ON")
        .map_err(Error::from)?;
    let pending = migrator.pending_migrations(&conn)?;
    let mut checked = Vec::new();
    for migration in pending {
        if migration.has_rollback {
            let before = Schema::read(&conn)?;
            migrator.migrate_to(&mut conn, migration.id)?;
            migrator.rollback_migration(&mut conn)?;
            let after = Schema::read(&conn)?;
            let changes = Schema::changes(&before, &after);
            if !changes.is_empty() {
                let difference = changes
                    .iter()
                    .map(|c| c.summary("before the migration", "after the rollback"))
                    .collect::<Vec<_>>()
                    .join("; ");
                return Err(NotReversible::SchemaDiffers {
                    id: migration.id,
                    name: migration.name,
                    difference,
                });
            }
            checked.push(migration.id);
            migrator
                .migrate_to(&mut conn, migration.id)
                .map_err(|error| NotReversible::FailedAfterRollback {
                    id: migration.id,
                    name: migration.name.clone(),
                    error: Box::new(error),
                })?;
            continue;
        }
        migrator.migrate_to(&mut conn, migration.id)?;
    }
    Ok((conn, checked))
}

/// [`check_reversible`], panicking with the first difference.
///
/// ```
/// # use migrate_core::{Migrator, rusqlite::Transaction};
/// let m = Migrator::new()
///     .set("docs_assert_reversible")
///     .add(0, "create_a", |tx: &Transaction| tx.execute_batch("CREATE TABLE a (x)"))
///     .add_rollback(0, |tx: &Transaction| tx.execute_batch("DROP TABLE a"));
/// migrate_core::testing::assert_reversible(&m);
/// ```
#[track_caller]
pub fn assert_reversible(migrator: &Migrator) {
    if let Err(failure) = check_reversible(migrator) {
        panic!("{}", with_causes(&failure));
    }
}

/// The environment variable that makes [`check_schema_snapshot`] write the
/// snapshot file instead of comparing with it: `MIGRATE_UPDATE_SNAPSHOTS=1`
/// (any value but empty, `0`, `false` and `no`). When it is not set,
/// `INSTA_UPDATE=always` and `UPDATE_EXPECT=1` count as well.
pub const UPDATE_SNAPSHOTS: &str = "MIGRATE_UPDATE_SNAPSHOTS";

/// Whether the environment asks for snapshot files to be written.
/// `error`'s message followed by each of its causes that it does not
/// already say, for a panic: a test's output is all a reader has.
fn with_causes(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut cause = error.source();
    while let Some(next) = cause {
        let said = next.to_string();
        if !text.contains(&said) {
            text.push_str(": ");
            text.push_str(&said);
        }
        cause = next.source();
    }
    text
}

fn update_requested() -> bool {
    let set = |name: &str| std::env::var(name).ok();
    match set(UPDATE_SNAPSHOTS) {
        Some(value) => !matches!(
            value.trim().to_ascii_lowercase().as_str(),
            "" | "0" | "false" | "no"
        ),
        None => {
            set("INSTA_UPDATE").is_some_and(|v| v == "always")
                || set("UPDATE_EXPECT").is_some_and(|v| v == "1")
        }
    }
}

/// What [`check_schema_snapshot`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Snapshot {
    /// The file matches the schema the migrations build.
    Matched,
    /// The file did not exist; it was written (the update variable is set).
    Created,
    /// The file differed, or could not be read as a schema; it was
    /// rewritten (the update variable is set).
    Updated,
}

/// Why [`check_schema_snapshot`] failed. Its `Display` is what
/// [`assert_schema_snapshot`] panics with: what is wrong, object by object
/// for a difference, and what to do.
#[derive(Debug)]
#[non_exhaustive]
pub enum SnapshotError {
    /// A migration failed on the scratch database.
    Replay(Error),
    /// A rollback does not restore the schema (see [`check_reversible`]).
    NotReversible(NotReversible),
    /// `PRAGMA integrity_check` reported problems after the replay.
    Integrity {
        /// What it reported.
        problems: Vec<String>,
    },
    /// Rows left by the migrations violate foreign keys.
    ForeignKeys {
        /// What `PRAGMA foreign_key_check` reported.
        violations: Vec<ForeignKeyViolation>,
    },
    /// The snapshot file does not exist (and the update variable is not set).
    Missing {
        /// The file.
        path: PathBuf,
    },
    /// The snapshot file could not be read or written.
    Io {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The snapshot file is not a schema file (a merge conflict left in it,
    /// a statement other than `CREATE`, text that is not UTF-8).
    Unreadable {
        /// The file.
        path: PathBuf,
        /// The line where reading stopped (1 for text that is not UTF-8).
        line: u32,
        /// What is wrong there.
        message: String,
    },
    /// The schema the migrations build differs from the file.
    Differs {
        /// The file.
        path: PathBuf,
        /// Every object added, removed or changed, from the file to the
        /// schema the migrations build.
        changes: Vec<SchemaChange>,
    },
}

/// How to accept the schema the migrations build, for messages.
fn how_to_update(path: &Path) -> String {
    format!(
        "run the tests with {UPDATE_SNAPSHOTS}=1 to write it, then review and commit {}",
        path.display()
    )
}

impl fmt::Display for SnapshotError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SnapshotError::Replay(error) => write!(
                f,
                "the schema snapshot check could not replay the migrations on a scratch database: {error:#}"
            ),
            SnapshotError::NotReversible(failure) => write!(f, "{failure}"),
            SnapshotError::Integrity { problems } => write!(
                f,
                "PRAGMA integrity_check failed after the migrations ran on a scratch database: {}",
                problems.join("; ")
            ),
            SnapshotError::ForeignKeys { violations } => {
                write!(
                    f,
                    "the migrations leave {} row(s) that violate foreign keys (PRAGMA foreign_key_check):",
                    violations.len()
                )?;
                for v in violations.iter().take(20) {
                    match v.rowid {
                        Some(rowid) => write!(f, "\n  - {} rowid {rowid} refers to a missing {} row", v.table, v.parent)?,
                        None => write!(f, "\n  - a {} row refers to a missing {} row", v.table, v.parent)?,
                    }
                }
                if violations.len() > 20 {
                    write!(f, "\n  - … and {} more", violations.len() - 20)?;
                }
                write!(f, "\nfix the migration that inserts them, or the foreign key")
            }
            SnapshotError::Missing { path } => write!(
                f,
                "the schema snapshot {} does not exist: {}",
                path.display(),
                how_to_update(path)
            ),
            SnapshotError::Io { path, source } => {
                write!(f, "cannot read or write the schema snapshot {}: {source}", path.display())
            }
            SnapshotError::Unreadable { path, line, message } => write!(
                f,
                "the schema snapshot {}, line {line}, cannot be read: {message}; fix it by hand, or {}",
                path.display(),
                how_to_update(path)
            ),
            SnapshotError::Differs { path, changes } => {
                let file = path.display().to_string();
                writeln!(
                    f,
                    "the schema the migrations build differs from {file} ({} object(s)):",
                    changes.len()
                )?;
                let mut detail = String::new();
                for change in changes {
                    detail.push('\n');
                    change.write_detail(&mut detail, &file, "the migrations");
                }
                f.write_str(&detail)?;
                write!(
                    f,
                    "\nif the change is intended, {}",
                    how_to_update(path)
                )
            }
        }
    }
}

impl std::error::Error for SnapshotError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            SnapshotError::Replay(error) => Some(error),
            SnapshotError::NotReversible(failure) => Some(failure),
            SnapshotError::Io { source, .. } => Some(source),
            _ => None,
        }
    }
}

/// Replays every migration of the set on an in-memory database, checks it
/// (reversibility, `integrity_check`, `foreign_key_check`) and compares its
/// normalised schema with the file at `path`; with the update variable set
/// ([`UPDATE_SNAPSHOTS`]), writes the file instead when it is missing or
/// differs. See [the module documentation](self#schema-snapshots).
///
/// ```
/// # use migrate_core::rusqlite::Transaction;
/// # use migrate_core::Migrator;
/// use migrate_core::testing::{check_schema_snapshot, SchemaChange, SnapshotError};
///
/// let dir = tempfile::tempdir()?;
/// let path = dir.path().join("schema.sql");
/// std::fs::write(&path, "CREATE TABLE posts (\n    id INTEGER PRIMARY KEY\n);\n")?;
///
/// let m = Migrator::new()
///     .set("docs_check_snapshot")
///     .add(0, "create_posts", |tx: &Transaction| tx.execute_batch("CREATE TABLE posts (id INTEGER PRIMARY KEY)"))
///     .add(1, "index_posts", |tx: &Transaction| tx.execute_batch("CREATE INDEX posts_id ON posts (id)"));
/// match check_schema_snapshot(&m, &path) {
///     Err(SnapshotError::Differs { changes, .. }) => {
///         assert!(matches!(&changes[..], [SchemaChange::Added { name, .. }] if name == "posts_id"));
///     }
///     other => panic!("{other:?}"),
/// }
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn check_schema_snapshot(
    migrator: &Migrator,
    path: impl AsRef<Path>,
) -> Result<Snapshot, SnapshotError> {
    let path = path.as_ref();
    let (conn, _) = replay_reversibly(migrator).map_err(|failure| match failure {
        NotReversible::Failed(error) => SnapshotError::Replay(error),
        differs => SnapshotError::NotReversible(differs),
    })?;
    let problems = crate::schema::integrity_problems(&conn).map_err(SnapshotError::Replay)?;
    if !problems.is_empty() {
        return Err(SnapshotError::Integrity { problems });
    }
    let violations = crate::schema::foreign_key_violations(&conn).map_err(SnapshotError::Replay)?;
    if !violations.is_empty() {
        return Err(SnapshotError::ForeignKeys { violations });
    }
    let actual = Schema::read(&conn).map_err(SnapshotError::Replay)?;
    let update = update_requested();
    let io = |source| SnapshotError::Io {
        path: path.to_owned(),
        source,
    };
    let expected = match std::fs::read(path) {
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
            if !update {
                return Err(SnapshotError::Missing {
                    path: path.to_owned(),
                });
            }
            write_snapshot(path, &actual).map_err(io)?;
            return Ok(Snapshot::Created);
        }
        Err(error) => return Err(io(error)),
        Ok(bytes) => String::from_utf8(bytes)
            .map_err(|_| (1, "it is not UTF-8 text".to_owned()))
            .and_then(|text| Schema::parse(&text).map_err(|e| (e.line, e.message))),
    };
    let changes = match expected {
        Ok(expected) => Some(Schema::changes(&expected, &actual)),
        // Unreadable: rewritten below.
        Err(_) if update => None,
        Err((line, message)) => {
            return Err(SnapshotError::Unreadable {
                path: path.to_owned(),
                line,
                message,
            })
        }
    };
    match changes {
        // Left as it is, asked to update or not.
        Some(changes) if changes.is_empty() => Ok(Snapshot::Matched),
        Some(changes) if !update => Err(SnapshotError::Differs {
            path: path.to_owned(),
            changes,
        }),
        _ => {
            write_snapshot(path, &actual).map_err(io)?;
            Ok(Snapshot::Updated)
        }
    }
}

/// Writes the rendered schema, creating the file's directory if needed.
fn write_snapshot(path: &Path, schema: &Schema) -> std::io::Result<()> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)?;
    }
    std::fs::write(path, schema.render())
}

/// [`check_schema_snapshot`], panicking with its error: what differs,
/// object by object, and how to accept it.
///
/// ```
/// # use migrate_core::rusqlite::Transaction;
/// # use migrate_core::Migrator;
/// # let dir = tempfile::tempdir()?;
/// # let path = dir.path().join("schema.sql");
/// # std::fs::write(&path, "CREATE TABLE a (x);\n")?;
/// let m = Migrator::new()
///     .set("docs_assert_snapshot")
///     .add(0, "create_a", |tx: &Transaction| tx.execute_batch("CREATE TABLE a (x)"));
/// migrate_core::testing::assert_schema_snapshot(&m, &path);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[track_caller]
pub fn assert_schema_snapshot(migrator: &Migrator, path: impl AsRef<Path>) {
    let path = path.as_ref();
    match check_schema_snapshot(migrator, path) {
        Ok(Snapshot::Matched) => {}
        Ok(_) => eprintln!(
            "migrate-core: wrote the schema snapshot {}: review and commit it",
            path.display()
        ),
        Err(failure) => panic!("{}", with_causes(&failure)),
    }
}
