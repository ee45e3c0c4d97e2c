//! SQLite schema migrations written as Rust functions.
//!
//! Annotate functions with [`#[migration(n)]`](macro@migration) and
//! [`#[rollback(n)]`](macro@rollback); they are registered at link time. At
//! start-up, [`Migrate::migrate`] checks that the ids run 0, 1, 2, … and
//! applies what is pending, each migration atomic together with its row in
//! the tracking table; [`Migrate::rollback_migration`] undoes the newest one
//! the same way.
//!
//! ```
//! use migrate_core::{migration, rollback, Migrate};
//! use migrate_core::rusqlite::{Connection, Transaction};
//!
//! #[migration(0)]
//! fn create_cats(tx: &Transaction) -> migrate_core::rusqlite::Result<()> {
//!     tx.execute_batch("CREATE TABLE cats (name TEXT PRIMARY KEY)")
//! }
//!
//! #[migration(1, name = "add_dogs")]
//! fn dogs(tx: &Transaction) -> migrate_core::rusqlite::Result<()> {
//!     tx.execute_batch("CREATE TABLE dogs (name TEXT PRIMARY KEY)")
//! }
//!
//! #[rollback(1)]
//! fn drop_dogs(tx: &Transaction) -> migrate_core::rusqlite::Result<()> {
//!     tx.execute_batch("DROP TABLE dogs")
//! }
//!
//! fn main() -> Result<(), migrate_core::Error> {
//!     let mut db = Connection::open_in_memory()?;
//!     assert_eq!(db.migrate()?.ids(), vec![0, 1]);
//!     assert!(db.migrate()?.is_empty()); // nothing left to do
//!
//!     let undone = db.rollback_migration()?.expect("migration 1 was applied");
//!     assert_eq!((undone.id, undone.name.as_str()), (1, "add_dogs"));
//!     assert_eq!(db.last_applied_migration()?.map(|m| m.id), Some(0));
//!     Ok(())
//! }
//! ```
//!
//! # Guarantees
//! - The whole registry is checked before the database is touched: gaps,
//!   duplicate ids, rollbacks without a migration, duplicate rollbacks and
//!   empty sets are all reported at once, each with its file and line
//!   ([`Error::InvalidRegistry`]).
//! - A run is one `BEGIN IMMEDIATE` transaction; each migration runs inside
//!   its own savepoint together with its tracking row. A failing migration is
//!   rolled back whole and stops the run; the ones before it stay applied.
//! - The history is re-read inside the write lock, so processes migrating
//!   one file at once apply each migration exactly once; a second process
//!   waits (see [`Migrator::lock_timeout`]) and then finds nothing to do.
//! - A migration cannot end its own transaction: `BEGIN`, `COMMIT`, `END` and
//!   `ROLLBACK` are refused while it runs ([`Error::TransactionControl`]).
//! - A panic inside a migration is caught, the migration rolled back, and the
//!   panic returned as [`Error::Panicked`].
//! - The tracking table stores each migration's name and a checksum of its
//!   code: an applied migration edited or renamed later is
//!   [`Error::Modified`]; history written by a newer build is
//!   [`Error::DatabaseAhead`].
//!
//! # Migrations in a library crate
//! The linker only keeps crates that the binary references. A crate that
//! holds migrations and is otherwise unused must be referenced, or its
//! migrations are silently absent:
//!
//! ```ignore
//! use my_migrations as _;
//! ```
//!
//! # Async code and connection pools
//! Migrations are synchronous and need a connection to themselves for the
//! duration: run them once at start-up, before the application hands
//! connections out. With `tokio-rusqlite`, inside `call`:
//!
//! ```ignore
//! let conn = tokio_rusqlite::Connection::open("app.db").await?;
//! conn.call(|conn| conn.migrate().map_err(|e| tokio_rusqlite::Error::Other(Box::new(e)))).await?;
//! ```
//!
//! With a pool (r2d2, deadpool, …), migrate one plain connection first and
//! build the pool after. Processes starting at once are safe: one migrates,
//! the others wait for its lock and find nothing to do.
//!
//! # The tracking table
//! `migrations` for the default set, `migrations_<set>` for a named set, or
//! what [`Migrator::table`] says, with the columns `id INTEGER PRIMARY KEY,
//! name TEXT NOT NULL, applied_at TEXT NOT NULL, checksum TEXT NOT NULL,
//! chain TEXT NOT NULL`. `applied_at` is UTC, RFC 3339. `chain` hashes the
//! whole history up to its row, so that the up-to-date check reads one row.
//! `PRAGMA user_version` mirrors the number of applied migrations of the
//! default set (see [`Migrator::user_version`]).

#![deny(missing_docs)]

mod adopt;
#[cfg(feature = "cli")]
pub mod cli;
mod error;
mod hash;
mod history;
mod migrate;
mod migrator;
mod observe;
mod rebuild;
mod registry;
mod report;
mod runner;
mod sqlite;
#[cfg(feature = "testing")]
pub mod testing;

#[doc(hidden)]
#[path = "private.rs"]
pub mod __private;

pub(crate) use __private as private;

pub use adopt::Legacy;
pub use error::{
    Direction, Error, ForeignKeyViolation, Location, Modification, RegistryProblem, Result,
};
pub use migrate::Migrate;
pub use migrator::{Migrator, DEFAULT_LOCK_TIMEOUT};
pub use observe::Event;
pub use rebuild::{RebuildReport, TableRebuild};
pub use report::{
    AppliedMigration, DryRun, MigrationInfo, MigrationState, MigrationStatus, Report, StepReport,
};

/// The `rusqlite` this crate was built with: use it rather than a second
/// copy, so the two always agree (only one `libsqlite3-sys` can be linked).
pub use rusqlite;

/// Registers a function as migration `n`.
///
/// ```
/// use migrate_core::migration;
/// use migrate_core::rusqlite::Transaction;
///
/// #[migration(0, name = "create_cats", set = "docs_migration_attr")]
/// fn cats(tx: &Transaction) -> migrate_core::rusqlite::Result<()> {
///     tx.execute_batch("CREATE TABLE cats (name TEXT PRIMARY KEY)")
/// }
/// # fn main() {
/// #     assert!(migrate_core::Migrator::new().set("docs_migration_attr").validate().is_ok());
/// # }
/// ```
///
/// The function takes one parameter, `&Transaction` or `&Connection`, and
/// returns `()`, `rusqlite::Result<()>` or `Result<(), E>` with
/// `E: std::error::Error + Send + Sync + 'static`. Options, after the id:
/// - `name = "…"`: the name stored in the tracking table (default: the
///   function's name). Renaming an applied migration is detected.
/// - `set = "…"`: the set it belongs to (default: the default set `""`).
/// - `foreign_keys = off`: run with `PRAGMA foreign_keys` off, in a
///   transaction of its own, and `PRAGMA foreign_key_check` before commit,
///   as SQLite's table-rebuild procedure requires.
/// - `crate = path`: where `migrate_core` is, if renamed or re-exported.
///
/// The checksum is computed from the body's tokens: formatting and comments
/// do not change it, code does.
pub use migrate_macros::migration;

/// Registers a function as the rollback of migration `n`.
///
/// ```
/// use migrate_core::{migration, rollback};
/// use migrate_core::rusqlite::Transaction;
///
/// #[migration(0, set = "docs_rollback_attr")]
/// fn create_cats(tx: &Transaction) -> migrate_core::rusqlite::Result<()> {
///     tx.execute_batch("CREATE TABLE cats (name TEXT PRIMARY KEY)")
/// }
///
/// #[rollback(0, set = "docs_rollback_attr")]
/// fn drop_cats(tx: &Transaction) -> migrate_core::rusqlite::Result<()> {
///     tx.execute_batch("DROP TABLE cats")
/// }
/// # fn main() {
/// #     assert!(migrate_core::Migrator::new().set("docs_rollback_attr").validate().is_ok());
/// # }
/// ```
///
/// Options: `set = "…"`, `foreign_keys = off` and `crate = path`, as for
/// [`migration`](macro@migration).
pub use migrate_macros::rollback;

/// Registers the SQL files of a directory as migrations, at compile time.
///
/// ```ignore
/// migrate_core::embed_migrations!("migrations");                 // the default set
/// migrate_core::embed_migrations!("db/cache", set = "cache");    // a named set
/// ```
///
/// The directory is relative to the crate's `Cargo.toml`. `NNN_name.sql` is
/// migration NNN (leading zeros are fine) and `NNN_name.down.sql` its
/// rollback. SQL files and `#[migration]` functions of one set share one
/// sequence. A file runs whole, as one batch: several statements, triggers
/// with `BEGIN … END`, and strings containing `;` are all fine. Its checksum
/// is taken over its text, so editing an applied file is [`Error::Modified`].
///
/// Compile errors name the file: a name of another shape, an unreadable,
/// non-UTF-8 or empty file, two files with one number, a `.down.sql` without
/// its migration, and `BEGIN`/`COMMIT`/`END`/`ROLLBACK` in a file (the runner
/// already wraps each migration in a transaction).
///
/// Editing a file rebuilds the crate. **Adding or removing a file does not,
/// unless the crate has this one-line `build.rs`** (Cargo cannot otherwise
/// know that a directory matters):
///
/// ```ignore
/// fn main() { println!("cargo:rerun-if-changed=migrations"); }
/// ```
pub use migrate_macros::embed_migrations;
