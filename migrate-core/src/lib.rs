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
//! - A set's migrations are checked before the database is touched: gaps,
//!   duplicate ids, rollbacks without a migration, duplicate rollbacks and
//!   an empty set are all reported at once, each with its file and line
//!   ([`Error::InvalidRegistry`]). [`Migrator::validate`] (and the CLI's
//!   `verify`) checks every set of the binary; call it from a test.
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
//! # Reviewing and checking changes
//! - Feature `testing`: `testing::assert_reversible` (each rollback restores
//!   the schema) and `testing::assert_schema_snapshot` (the schema the
//!   migrations build, compared with a committed `schema.sql`, so that every
//!   schema change shows in a pull request).
//! - Feature `lint` (and the CLI's `plan --lint`): `Migrator::lint` runs the
//!   pending migrations on an in-memory copy of a real database and reports
//!   what each destroys or risks on that data.
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
//! # Features
//! - `linkme` (default): registers migrations at link time through
//!   `linkme` (Linux, macOS, Windows, the BSDs, illumos); nothing runs
//!   before `main`.
//! - `inventory`: registers them before `main` through `inventory`, for
//!   targets linkme lacks (e.g. wasm); with both on, inventory wins.
//! - `bundled`: compiles SQLite from source (rusqlite's `bundled`).
//! - `testing`: the `testing` module: reversibility and schema-snapshot checks to
//!   call from an application's tests.
//! - `lint`: the `lint` module and `Migrator::lint`: what pending migrations destroy
//!   or risk, measured on an in-memory copy of a real database.
//! - `cli`: the `cli` module: status/up/down/plan/verify/… subcommands to mount in an
//!   application's own `clap` parser (turns on `lint`).
//! - `tracing`: a `migration` span per step (id, name, direction,
//!   duration) and events: started (DEBUG), finished (INFO), failed (ERROR),
//!   schema drift (WARN).
//! - `log`: the same events as `log` records at the same levels, the step's
//!   fields as `key=value` text in the message (target `migrate_core`).
//!
//! The observer callback ([`Migrator::observer`]) receives the same events
//! as [`Event`] values, with no feature.
//!
//! # Async code and connection pools
//! Migrations are synchronous and need a connection to themselves for the
//! duration: run them once at start-up, before the application hands
//! connections out. With `tokio-rusqlite`, inside `call_raw` (whose closure
//! runs on the connection's own thread, and whose result keeps
//! migrate-core's error as it is):
//!
//! ```ignore
//! let conn = tokio_rusqlite::Connection::open("app.db").await?;
//! let report = conn.call_raw(|conn| conn.migrate()).await??;
//! ```
//!
//! With a pool, migrate on one of its connections before handing any out
//! (`pool.get()?.migrate()?` with r2d2, `conn.interact(|c| c.migrate())`
//! with deadpool). Tasks and processes starting at once are safe: one
//! migrates, the others wait for its lock and find nothing to do. The
//! repository's `examples/pools` has a tested program for each of
//! tokio-rusqlite, deadpool-sqlite and r2d2_sqlite.
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
// docs.rs (`--cfg docsrs`, nightly) shows which feature each item needs.
#![cfg_attr(docsrs, feature(doc_cfg))]

mod adopt;
#[cfg(feature = "cli")]
#[cfg_attr(docsrs, doc(cfg(feature = "cli")))]
pub mod cli;
mod db;
mod drift;
mod error;
mod hash;
mod history;
#[cfg(feature = "libsql")]
#[cfg_attr(docsrs, doc(cfg(feature = "libsql")))]
pub mod libsql;
#[cfg(feature = "lint")]
#[cfg_attr(docsrs, doc(cfg(feature = "lint")))]
pub mod lint;
mod migrate;
mod migrator;
mod observe;
mod rebuild;
mod registry;
mod report;
mod runner;
mod schema;
mod sql_tokens;
mod sqlite;
#[cfg(feature = "testing")]
#[cfg_attr(docsrs, doc(cfg(feature = "testing")))]
pub mod testing;
mod utc;

#[doc(hidden)]
#[path = "private.rs"]
pub mod __private;

pub(crate) use __private as private;

pub use adopt::Legacy;
pub use drift::Drift;
pub use error::{
    Direction, Error, ForeignKeyViolation, Location, Modification, RegistryProblem, Result,
};
pub use migrate::Migrate;
pub use migrator::{Migrator, DEFAULT_LOCK_TIMEOUT};
pub use observe::Event;
pub use rebuild::{RebuildReport, TableRebuild};
pub use report::{
    AppliedMigration, DryRun, MigrationInfo, MigrationState, MigrationStatus, Report, Resolution,
    StepReport,
};
pub use schema::{ObjectKind, SchemaChange};

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
/// do not change it, code does. `rustfmt` at any `max_width` leaves it as it
/// is (the trailing commas, match-arm and closure braces and `use` order it
/// changes between widths do not count).
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
/// ```
/// use migrate_core::{embed_migrations, Migrator};
/// use migrate_core::rusqlite::Connection;
///
/// // `000_create_cats.sql`, `000_create_cats.down.sql`, `001_add_age.sql`:
/// // each file's number is its migration id.
/// embed_migrations!("docs/migrations/numbered", set = "docs_embed_numbered");
///
/// // sqlx's `20240101120000_create_cats.up.sql` (and `.down.sql`): the
/// // versions, sorted, become migrations 0, 1, 2, …
/// embed_migrations!("docs/migrations/sqlx", set = "docs_embed_sqlx", ids = "sorted");
///
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let mut conn = Connection::open_in_memory()?;
/// let numbered = Migrator::new().set("docs_embed_numbered");
/// assert_eq!(numbered.migrate(&mut conn)?.ids(), [0, 1]);
///
/// let mut conn = Connection::open_in_memory()?;
/// let sqlx = Migrator::new().set("docs_embed_sqlx");
/// let names: Vec<String> = sqlx.pending_migrations(&conn)?.into_iter().map(|m| m.name).collect();
/// assert_eq!(names, ["create_cats", "add_age"]);
/// sqlx.migrate(&mut conn)?;
/// assert_eq!(sqlx.rollback_to(&mut conn, 0)?.ids(), [1]); // 20240301090000_add_age.down.sql
/// # Ok(())
/// # }
/// ```
///
/// The directory is relative to the crate's `Cargo.toml`. Without options
/// its migrations belong to the default set; `set = "…"` names another one,
/// and `crate = path` says where `migrate_core` is when it is renamed or
/// re-exported. SQL files and `#[migration]` functions of one set share one
/// sequence.
///
/// # Numbering: `ids`
/// - By default a file's version is its migration id: `000_init.sql` is
///   migration 0. A directory whose first version is not 0 is a compile
///   error that suggests `ids = "sorted"`, unless `ids = "numbers"` says the
///   ids before it are `#[migration]` functions of the same set.
/// - `ids = "sorted"`: the versions, sorted as the directory's tool sorts
///   them, become migrations 0, 1, 2, …, whatever they are: `0001` (1-based
///   numbers), `20240101120000` (timestamps), diesel's `2018-12-25-000000`
///   (its dashes do not count). The order is the tool's, so that the ids
///   are the places in the sequence the tool ran (and
///   [`Migrator::adopt`](crate::Migrator::adopt) maps its applied versions
///   onto the same ids):
///   - diesel's directories (`V_name/up.sql`) are ordered as diesel orders
///     them, by the version's digits as text: diesel 2.2's
///     `2025-12-08-135428-0000` (18 digits) sorts before `2026-05-28-000000`
///     (14 digits), by date, and `0001_x` and `1_x` are two versions;
///   - every other layout by numeric value, as sqlx, refinery, goose and
///     rusqlite_migration read versions (`2` before `10`; `001_a.sql` and
///     `1_b.sql` are one version);
///   - a directory mixing diesel's directories with other layouts is ordered
///     by number, and refused where diesel's order would differ.
///
///   Two files with one version are a compile error naming both. A file
///   added later must sort after the applied ones: one sorted in between
///   shifts the ids of those after it, which the next run reports as
///   modified migrations, changing nothing.
///
/// # Layouts
/// The directories hand-written runners, sqlx, diesel, rusqlite_migration,
/// refinery and Authelia keep are read as they are, in either numbering, even
/// mixed:
///
/// | layout | migration | rollback |
/// |---|---|---|
/// | plain | `V_name.sql` | `V_name.down.sql` |
/// | sqlx | `V_name.up.sql` | `V_name.down.sql` |
/// | diesel | `V_name/up.sql` | `V_name/down.sql` |
/// | rusqlite_migration | `V-name/up.sql` | `V-name/down.sql` |
/// | refinery | `V{V}__name.sql`, also in subdirectories | `V{V}__name.down.sql` |
/// | Authelia | `V{V}.name.up.sql` | `V{V}.name.down.sql` |
/// | no name | `V-up.sql` | `V-down.sql` |
///
/// The name is what follows the version's separator (`_`, `-`, `__` or
/// `.`); a `V-up.sql` migration is named after its version (`01`).
/// refinery's `U{V}__name.sql` ("unversioned") runs at its version's place,
/// like a `V` file. Ignored: hidden entries (diesel's `.keep`), files that
/// are not SQL and carry no version (a `README.md`), diesel's
/// `metadata.toml` (its `run_in_transaction = false` is not honoured), and
/// subdirectories without a version (except for refinery-named files in
/// them). Refused with a compile error, each with what to do: an `.sql` file
/// without a version, an Authelia name without its `.up`/`.down` or with a
/// `.` in the name, a versioned file that is not `.sql` (refinery's `.rs`
/// migrations), another `.sql` file in a migration directory, and a migration
/// directory without `up.sql`.
///
/// # Files with up and down sections (goose, dbmate, sql-migrate)
/// A file that keeps both directions, as goose (`-- +goose Up`,
/// `-- +goose Down`), dbmate (`-- migrate:up`, `-- migrate:down`) and
/// sql-migrate (`-- +migrate Up`, `-- +migrate Down`) write them, is the
/// migration (its up section) and its rollback (its down section; none when
/// it is empty or comment-only). The markers are read as each tool reads
/// them: goose's in any case, dbmate's and sql-migrate's as written, each
/// at the start of its line. goose's `StatementBegin`/`StatementEnd` are
/// comments here (SQLite splits statements itself, triggers included).
/// Each section keeps the file's line numbers, runs like a file of its own
/// (its `BEGIN … COMMIT` wrappers and `PRAGMA foreign_keys` are read as
/// below), and the checksum stays the whole file's. goose's versions
/// (`00001_name.sql`, or timestamps) are ordinary versions.
///
/// Compile errors, each naming the file and line: what the tool itself
/// refuses (statements before the up section, a down section first, a
/// second `Up`, an annotation goose does not know, a near miss such as
/// `-- migrate:UP`), markers of two tools in one file, a down section next to
/// a `.down.sql` of the same version, and, for now, a migration that asks to
/// run outside a transaction (`-- +goose NO TRANSACTION`, dbmate's
/// `transaction:false`, sql-migrate's `notransaction`) or goose's
/// `ENVSUB ON`.
///
/// # Files written for a runner without transactions
/// Each migration runs in a transaction of the runner's, so a file written
/// for a runner that runs it as it is, is read this way:
/// - Its `BEGIN [DEFERRED|IMMEDIATE|EXCLUSIVE] [TRANSACTION]` … `COMMIT` (or
///   `END`) wrappers are dropped: a file whose statements all sit inside one
///   or more such blocks runs without them, as one migration (comments,
///   `PRAGMA foreign_keys` lines and `PRAGMA user_version` lines, which
///   user_version runners write after the last `COMMIT`, may stand outside
///   the blocks, and the last `COMMIT` may lack its `;`). A `ROLLBACK`, a nested `BEGIN`, a `BEGIN`
///   never committed, a `COMMIT` without `BEGIN` or a statement between the
///   blocks is a compile error naming the file and line.
/// - A `PRAGMA foreign_keys = OFF` (any spelling SQLite accepts: `off`, `0`,
///   `false`, `no`, `'off'`, …) at top level makes it a `foreign_keys = off`
///   migration, as with [`migration`](macro@migration): foreign keys are
///   turned off before the runner's `BEGIN`, checked with
///   `PRAGMA foreign_key_check` before its `COMMIT`, and restored after. The
///   file's `PRAGMA foreign_keys` statements themselves are dropped, since
///   SQLite ignores them inside a transaction.
/// - An empty or comment-only file is a migration that does nothing; it is
///   recorded like any other.
/// - `PRAGMA user_version = N` runs as written, inside or outside the
///   blocks, in the runner's transaction (for the default set, the runner
///   writes its own count after it).
///
/// ```
/// # use migrate_core::{embed_migrations, Migrator};
/// # use migrate_core::rusqlite::Connection;
/// // 0001_create_owners.sql: BEGIN; CREATE TABLE owners …; COMMIT;
/// // 0002_rebuild_owners.sql: PRAGMA foreign_keys = OFF; BEGIN; … DROP TABLE owners; … COMMIT;
/// // 0003_reserved.sql: a comment only.
/// embed_migrations!("docs/migrations/hand_written", set = "docs_embed_hand_written", ids = "sorted");
///
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let mut conn = Connection::open_in_memory()?;
/// conn.execute_batch("PRAGMA foreign_keys = ON")?;
/// let m = Migrator::new().set("docs_embed_hand_written");
/// assert_eq!(m.migrate(&mut conn)?.ids(), [0, 1, 2]);
/// // The rebuild ran with foreign keys off: the pets are still there.
/// let pets: i64 = conn.query_row("SELECT count(*) FROM pets", [], |r| r.get(0))?;
/// assert_eq!(pets, 1);
/// # Ok(())
/// # }
/// ```
///
/// # Checksums
/// A file's checksum is taken over its text with its line endings
/// normalised, so a CRLF checkout and an LF one agree, and editing an applied
/// file is [`Error::Modified`]. Dropping wrappers or pragmas does not change
/// it.
///
/// # Compile errors
/// Every problem of the directory is reported at once, naming the file (and
/// the line): names of another shape, unreadable or non-UTF-8 files, two
/// migrations with one version, two rollbacks for one, a rollback without
/// its migration, the transaction statements above, and versions that
/// cannot be ids. Each says how to fix it without leaving a gap in the
/// sequence.
///
/// # Rebuilding when files are added
/// Editing a file rebuilds the crate. **Adding or removing a file does not,
/// unless the crate has this one-line `build.rs`** (Cargo cannot otherwise
/// know that a directory matters):
///
/// ```ignore
/// fn main() { println!("cargo:rerun-if-changed=migrations"); }
/// ```
pub use migrate_macros::embed_migrations;
