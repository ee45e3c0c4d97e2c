//! An embeddable command line (feature `cli`): mount
//! [`Command`] as a subcommand of your application's own clap parser.
//!
//! ```no_run
//! use clap::Parser;
//! use migrate_core::rusqlite::Connection;
//! use migrate_core::Migrator;
//!
//! #[derive(Parser)]
//! enum App {
//!     /// Database migrations: `myapp db status`, `myapp db up`, …
//!     #[command(subcommand)]
//!     Db(migrate_core::cli::Command),
//!     Serve,
//! }
//!
//! fn main() -> std::process::ExitCode {
//!     match App::parse() {
//!         App::Db(command) => {
//!             let mut conn = Connection::open("app.db").expect("open the database");
//!             command.run(&mut conn, &Migrator::new())
//!         }
//!         App::Serve => std::process::ExitCode::SUCCESS,
//!     }
//! }
//! ```
//!
//! # Backups
//! `backup PATH` and `up --backup PATH` copy the database with SQLite's
//! online backup API. They wait for a lock held by another connection (on
//! the database or on the target) at most the [`Migrator`]'s
//! [`lock_timeout`](Migrator::lock_timeout), then fail (exit code 1) saying
//! which file is locked and what to do; `up` then applies nothing. Refused
//! up front, with nothing written: a target that is the database itself
//! (whatever the spelling, through a symlink or a hard link) or one of its
//! journal files, an existing file that is not an SQLite database (an
//! earlier backup is replaced), a directory, a missing directory, and a
//! connection inside a transaction.
//!
//! # Schema
//! `schema` prints the normalised schema of the database (tracking tables
//! left out), one object per block; `schema --replay` prints the schema the
//! migrations build, replayed on an in-memory database: the text of the
//! snapshot file [`testing::check_schema_snapshot`](crate::testing) compares
//! with (feature `testing`), so that `myapp db schema --replay >
//! tests/schema.sql` writes that file, and `diff <(myapp db schema)
//! tests/schema.sql` shows what a live database has that the migrations do
//! not build.
//!
//! # Lint
//! `plan --lint` runs the pending migrations on an in-memory copy of the
//! database (the database itself is only read; see [`crate::lint`]) and
//! prints, per migration, what it destroys or risks on this data (tables and
//! columns dropped with their counts, rows deleted by cascades, indexes lost
//! in a rebuild, …) and how long it took, then one summary line for
//! scripts:
//!
//! ```text
//! lint: pending=2 ran=2 failed=none loss=1 risk=1 info=0 deny=risk exit=5
//! ```
//!
//! `--deny LEVEL` (`info`, `risk` (the default) or `loss`) sets the level
//! from which findings fail the command (exit code 5); a migration that
//! fails on the copy is exit code 4, as for `dry-run`.
//!
//! # New migrations
//! `new NAME` creates the next migration of the set (`--set SET` for
//! another one), with the id after the highest one the set has:
//! - for a set with an `embed_migrations!` directory, its SQL file there,
//!   named as the directory names its files (`0007_add_users.sql` in a
//!   directory of four-digit `NNNN_name.sql` files; `V_name.up.sql`,
//!   `V_name/up.sql` and `V7__name.sql` directories get theirs), and its
//!   rollback file when `--reversible` is given or the newest migration has
//!   one. The directory is the one the macro read, recorded (absolute) when
//!   the binary was built; `--dir PATH` gives another, for a binary run
//!   away from its source tree. Files added since the build count for the
//!   next id. `--dry-run` prints what it would create;
//! - for a set of Rust functions (or with `--rust`), the skeleton of a
//!   `#[migration]` function (and with `--reversible` its `#[rollback]`),
//!   printed, or appended to an existing source file with `--file PATH`.
//!   Its body ends in `todo!()`, so that it cannot be applied by mistake
//!   before it is written.
//!
//! A name is ASCII letters, digits and `_`. A name the set already has, a
//! file or function that already exists, or (for a function) a Rust
//! keyword is refused, saying what to do, and nothing is written:
//!
//! ```text
//! $ blog new add_tags
//! created blog/migrations/008_add_tags.sql (migration 8 `add_tags` of set "blog")
//! created blog/migrations/008_add_tags.down.sql (its rollback)
//! write its SQL (an empty file runs as a no-op and is recorded as applied), then rebuild: …
//! ```
//!
//! # Renumbering after a merge
//! Two branches that each added migration 7, merged, give two migrations 7:
//! the sequence rule refuses the set before anything touches a database
//! (for two SQL files of one version too: the registry check reports both
//! files). `renumber` keeps the ids of the migrations this database has
//! applied and gives the others the ids after them, in id order (then file
//! and line): it renames their SQL files (a `.down.sql` with its
//! migration) and prints, with file and line, the edit of each Rust
//! function's `#[migration(..)]` and `#[rollback(..)]` attribute. An
//! applied migration never moves: when none of the migrations with its id
//! is the applied one, or it is defined twice, `renumber` refuses and says
//! why. `--dry-run` prints the same without renaming anything; `--dir`
//! gives the SQL directory as for `new`; `--set` reads that set's default
//! tracking table.
//!
//! ```text
//! $ merge renumber --dry-run   # the merge example: two branches added 2 and 3
//! set "merge": 0 applied migration(s) keep their ids; the ones not applied yet follow them:
//!   migration 2 `note_colors` -> 3  (merge/migrations/002_note_colors.sql:1)
//!   migration 3 `archive_notes` -> 4  (examples/merge.rs:31)
//!   migration 3 `pin_notes` -> 5  (examples/merge/pins.rs:6)
//! would rename merge/migrations/002_note_colors.sql -> merge/migrations/003_note_colors.sql
//! would rename merge/migrations/002_note_colors.down.sql -> merge/migrations/003_note_colors.down.sql
//! edit examples/merge.rs:31: #[migration(3, set = "merge")]  =>  #[migration(4, set = "merge")]
//! edit examples/merge.rs:36: #[rollback(3, set = "merge")]  =>  #[rollback(4, set = "merge")]
//! edit examples/merge/pins.rs:6: #[migration(3, set = "merge")]  =>  #[migration(5, set = "merge")]
//! edit examples/merge/pins.rs:11: #[rollback(3, set = "merge")]  =>  #[rollback(5, set = "merge")]
//! dry run: nothing was changed
//! ```
//!
//! # JSON
//! `status`, `plan`, `verify`, `up`, `down` and `dry-run` take
//! `--format json`: one JSON document on stdout, on one line, never in
//! colour, with the same exit codes; a failure is a document with `error`
//! (the message), `kind` (the error's variant, in snake_case) and `hint`
//! (what to do, or `null`), and the message is still written to stderr.
//! The documents and their fields are described in `docs/cli-json.md` and,
//! as a JSON Schema, in `docs/cli-json.schema.json`. `plan --lint` has no
//! JSON form (a usage error).
//!
//! ```
//! # use migrate_core::{Migrator, rusqlite::{Connection, Transaction}};
//! use migrate_core::cli::{Command, Format};
//! let m = Migrator::new().set("docs_cli_json")
//!     .add(0, "a", |tx: &Transaction| tx.execute_batch("CREATE TABLE a (x)"));
//! let mut conn = Connection::open_in_memory()?;
//! let (mut out, mut err) = (Vec::new(), Vec::new());
//! let plan = Command::Plan { lint: false, deny: migrate_core::lint::Level::Risk, format: Format::Json };
//! assert_eq!(plan.run_with(&mut conn, &m, &mut out, &mut err, false), 0);
//! let out = String::from_utf8(out).unwrap();
//! assert!(out.starts_with(r#"{"command":"plan","set":"docs_cli_json","table":"migrations_docs_cli_json","pending":[{"id":0,"name":"a","#));
//! # Ok::<(), migrate_core::Error>(())
//! ```
//!
//! # Colour
//! [`Command::run`] writes through [`stdout`] and [`stderr`], which keep
//! colour on a terminal and drop it when `NO_COLOR` is set (whatever else
//! is), when `CLICOLOR=0`, and when the stream is not a terminal unless
//! `CLICOLOR_FORCE` is set; on Windows they also colour a console that
//! does not read ANSI codes. An application that parses its own arguments
//! passes them to [`run_or_migrate`] with `color` `true`, as the examples
//! do.
//!
//! # Rough edges, smoothed
//! `down --all` (or `down --to ID`) stops before changing anything when a
//! migration it would roll back has no rollback: the error says that
//! nothing was rolled back, which migration lacks one (and where), and
//! what to add (`#[rollback(N)]`, or the `.down.sql` file beside an SQL
//! migration) or how to roll back only the newer ones. `dry-run` with
//! nothing pending says so (exit code 0).
//!
//! # Exit codes
//! The same in text and JSON.
//!
//! | code | meaning |
//! | --- | --- |
//! | 0 | success (`verify`: no problem found; `plan --lint`: no finding at or above `--deny`; `new`: created or printed; `renumber`: done, or nothing to do) |
//! | 1 | the command failed: a migration or rollback failed, or the database or registry was refused, or `new`/`renumber` refused (nothing written) |
//! | 2 | usage error (reported by clap, never as JSON) |
//! | 3 | `verify` found problems |
//! | 4 | `dry-run` or `plan --lint`: a pending migration would fail |
//! | 5 | `plan --lint`: findings at or above the `--deny` level |

mod controls;
mod json;
mod new;
mod render;
mod renumber;

use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rusqlite::Connection;

use crate::error::{Direction, Error};
use crate::lint::{Level, LintReport};
use crate::migrator::Migrator;
use crate::observe::Event;
use crate::report::{MigrationState, StepReport};
use crate::schema::Schema;

use render::{Json, Paint};

/// Exit code: success.
pub const EXIT_OK: u8 = 0;
/// Exit code: the command failed.
pub const EXIT_FAILED: u8 = 1;
/// Exit code: `verify` found problems.
pub const EXIT_PROBLEMS: u8 = 3;
/// Exit code: `dry-run` (or `plan --lint`) found a migration that would fail.
pub const EXIT_DRY_RUN_FAILED: u8 = 4;
/// Exit code: `plan --lint` found something at or above its `--deny` level.
pub const EXIT_LINT_FINDINGS: u8 = 5;

/// How `status`, `plan`, `verify`, `up`, `down` and `dry-run` print.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
#[non_exhaustive]
pub enum Format {
    /// Lines for people, in colour on a terminal.
    #[default]
    Text,
    /// One JSON document on stdout (never in colour); see
    /// `docs/cli-json.md` for its schema.
    Json,
}

/// The migration subcommands.
///
/// ```
/// use clap::Parser;
/// use migrate_core::cli::{Command, Format};
/// #[derive(Parser)]
/// struct Cli {
///     #[command(subcommand)]
///     command: Command,
/// }
/// let cli = Cli::parse_from(["app", "up", "--to", "3"]);
/// assert!(matches!(cli.command, Command::Up { to: Some(3), .. }));
/// let cli = Cli::parse_from(["app", "status", "--format", "json"]);
/// assert!(matches!(cli.command, Command::Status { format: Format::Json }));
/// ```
#[derive(Debug, Clone, clap::Subcommand)]
#[non_exhaustive]
pub enum Command {
    /// Show every migration with its state and when it was applied.
    Status {
        /// `text`, or `json`: one JSON document on stdout.
        #[arg(long, value_enum, value_name = "FORMAT", default_value_t)]
        format: Format,
    },
    /// Apply pending migrations.
    Up {
        /// Stop after this migration id.
        #[arg(long, value_name = "ID")]
        to: Option<u32>,
        /// Back the database up to this file first (SQLite's online backup).
        #[arg(long, value_name = "PATH")]
        backup: Option<PathBuf>,
        /// `text`, or `json`: one JSON document on stdout.
        #[arg(long, value_enum, value_name = "FORMAT", default_value_t)]
        format: Format,
    },
    /// Roll back the newest migration, or down to an id, or all.
    Down {
        /// Roll back until this id is the newest applied one.
        #[arg(long, value_name = "ID", conflicts_with = "all")]
        to: Option<u32>,
        /// Roll back every applied migration.
        #[arg(long)]
        all: bool,
        /// `text`, or `json`: one JSON document on stdout.
        #[arg(long, value_enum, value_name = "FORMAT", default_value_t)]
        format: Format,
    },
    /// List what `up` would apply, without applying it.
    Plan {
        /// Run the pending migrations on an in-memory copy of the database
        /// and report what each destroys or risks on this data.
        #[arg(long, conflicts_with = "format")]
        lint: bool,
        /// With --lint: fail (exit code 5) on findings at or above this level.
        #[arg(long, value_name = "LEVEL", value_enum, default_value_t = Level::Risk, requires = "lint")]
        deny: Level,
        /// `text`, or `json`: one JSON document on stdout (not with --lint).
        #[arg(long, value_enum, value_name = "FORMAT", default_value_t)]
        format: Format,
    },
    /// Check the registry, the history and the checksums.
    Verify {
        /// Also compare the live schema, object by object, with the one the
        /// migrations left when they last ran (drift).
        #[arg(long)]
        schema: bool,
        /// `text`, or `json`: one JSON document on stdout.
        #[arg(long, value_enum, value_name = "FORMAT", default_value_t)]
        format: Format,
    },
    /// Record migrations 0..=THROUGH as applied without running them.
    Baseline {
        /// The last migration id the database already has.
        through: u32,
    },
    /// Apply everything pending inside a transaction, report, then roll back.
    DryRun {
        /// `text`, or `json`: one JSON document on stdout.
        #[arg(long, value_enum, value_name = "FORMAT", default_value_t)]
        format: Format,
    },
    /// Record how an interrupted step outside a transaction ended.
    Resolve {
        /// Its work is done: record it as applied (a rollback: as undone).
        #[arg(long, conflicts_with = "not_run", required_unless_present = "not_run")]
        completed: bool,
        /// None of its work took effect: record it as never started.
        #[arg(long)]
        not_run: bool,
    },
    /// Back the database up to a file with SQLite's online backup API.
    Backup {
        /// Where to write the copy.
        path: PathBuf,
    },
    /// Print the normalised schema of the database, one object per block.
    Schema {
        /// Print the schema the migrations build instead, replayed on an
        /// in-memory database (the text of a schema snapshot file).
        #[arg(long)]
        replay: bool,
    },
    /// Create the next migration: an SQL file in the set's embedded
    /// directory, or a Rust function's skeleton.
    New {
        /// The migration's name: letters, digits and `_`.
        name: String,
        /// The set (default: the one this command runs for).
        #[arg(long, value_name = "SET")]
        set: Option<String>,
        /// Also create the rollback (`.down.sql`, `#[rollback]`).
        #[arg(long)]
        reversible: bool,
        /// The SQL directory to create it in (default: the one
        /// `embed_migrations!` read, recorded when the binary was built).
        #[arg(long, value_name = "PATH", conflicts_with = "rust")]
        dir: Option<PathBuf>,
        /// Write a Rust function even though the set has an SQL directory.
        #[arg(long)]
        rust: bool,
        /// Append the Rust skeleton to this file instead of printing it.
        #[arg(long, value_name = "PATH", conflicts_with = "dir")]
        file: Option<PathBuf>,
        /// Only print the SQL files it would create, and where.
        #[arg(long, conflicts_with = "file")]
        dry_run: bool,
    },
    /// After a merge of branches that each added a migration with the same
    /// id: give the migrations not applied yet the ids after the applied
    /// ones (renames SQL files, prints the edits for Rust functions).
    Renumber {
        /// The set (default: the one this command runs for).
        #[arg(long, value_name = "SET")]
        set: Option<String>,
        /// Only print what would change.
        #[arg(long)]
        dry_run: bool,
        /// The SQL directory on disk (default: the one `embed_migrations!`
        /// read, recorded when the binary was built).
        #[arg(long, value_name = "PATH")]
        dir: Option<PathBuf>,
    },
}

impl Command {
    /// The output format this command was given.
    fn format(&self) -> Format {
        match self {
            Command::Status { format }
            | Command::Up { format, .. }
            | Command::Down { format, .. }
            | Command::Plan { format, .. }
            | Command::Verify { format, .. }
            | Command::DryRun { format } => *format,
            _ => Format::Text,
        }
    }

    /// Whether the command changes the database or files (its output
    /// comes after the change).
    fn writes(&self) -> bool {
        !matches!(
            self,
            Command::Status { .. }
                | Command::Plan { .. }
                | Command::Verify { .. }
                | Command::DryRun { .. }
                | Command::Schema { .. }
        )
    }

    /// The name JSON documents give the command.
    fn name(&self) -> &'static str {
        match self {
            Command::Status { .. } => "status",
            Command::Up { .. } => "up",
            Command::Down { .. } => "down",
            Command::Plan { .. } => "plan",
            Command::Verify { .. } => "verify",
            Command::Baseline { .. } => "baseline",
            Command::DryRun { .. } => "dry-run",
            Command::Resolve { .. } => "resolve",
            Command::Backup { .. } => "backup",
            Command::Schema { .. } => "schema",
            Command::New { .. } => "new",
            Command::Renumber { .. } => "renumber",
        }
    }
}

/// Standard output for [`run_with`](Command::run_with) and
/// [`run_or_migrate`] with `color` `true`: it keeps the colour on a
/// terminal and strips it where colour is off (`NO_COLOR` set, `CLICOLOR=0`,
/// not a terminal, unless `CLICOLOR_FORCE` is set), and translates it for an
/// old Windows console.
///
/// ```no_run
/// # use migrate_core::{Migrator, rusqlite::Connection};
/// let mut conn = Connection::open("app.db")?;
/// let code = migrate_core::cli::run_or_migrate(
///     None,
///     &mut conn,
///     &Migrator::new(),
///     &mut migrate_core::cli::stdout(),
///     &mut migrate_core::cli::stderr(),
///     true,
/// );
/// std::process::exit(code.into());
/// # Ok::<(), migrate_core::Error>(())
/// ```
pub fn stdout() -> impl Write + Send + 'static {
    anstream::stdout()
}

/// Standard error, as [`stdout`] does it.
pub fn stderr() -> impl Write + Send + 'static {
    anstream::stderr()
}

/// Runs `command`, or without one (an application run with no
/// subcommand) applies what is pending and then prints the status; returns
/// the exit code. With `color`, styles are written as ANSI escape codes:
/// pass [`stdout`] and [`stderr`], which keep them only where colour is on.
///
/// ```
/// # use migrate_core::{Migrator, rusqlite::{Connection, Transaction}};
/// let m = Migrator::new().set("docs_cli_default")
///     .add(0, "a", |tx: &Transaction| tx.execute_batch("CREATE TABLE a (x)"));
/// let mut conn = Connection::open_in_memory()?;
/// let (mut out, mut err) = (Vec::new(), Vec::new());
/// let code = migrate_core::cli::run_or_migrate(None, &mut conn, &m, &mut out, &mut err, false);
/// assert_eq!(code, migrate_core::cli::EXIT_OK);
/// let out = String::from_utf8(out).unwrap();
/// assert!(out.contains("applied 1 migration") && out.contains("state"));
/// # Ok::<(), migrate_core::Error>(())
/// ```
pub fn run_or_migrate(
    command: Option<&Command>,
    conn: &mut Connection,
    migrator: &Migrator,
    out: &mut dyn Write,
    err: &mut dyn Write,
    color: bool,
) -> u8 {
    match command {
        Some(command) => command.run_with(conn, migrator, out, err, color),
        None => match (Command::Up {
            to: None,
            backup: None,
            format: Format::Text,
        })
        .run_with(conn, migrator, out, err, color)
        {
            EXIT_OK => Command::Status {
                format: Format::Text,
            }
            .run_with(conn, migrator, out, err, color),
            failed => failed,
        },
    }
}

impl Command {
    /// Runs the command, printing to stdout and stderr (in colour where
    /// [`stdout`] and [`stderr`] keep it), and returns the exit code.
    pub fn run(&self, conn: &mut Connection, migrator: &Migrator) -> ExitCode {
        let code = self.run_with(conn, migrator, &mut stdout(), &mut stderr(), true);
        ExitCode::from(code)
    }

    /// Runs the command with the given output streams; returns the exit
    /// code. With `color`, styles are written as ANSI escape codes (never
    /// in JSON).
    ///
    /// ```
    /// # use migrate_core::{Migrator, rusqlite::{Connection, Transaction}};
    /// use migrate_core::cli::{Command, Format};
    /// let m = Migrator::new().set("docs_cli")
    ///     .add(0, "a", |tx: &Transaction| tx.execute_batch("CREATE TABLE a (x)"));
    /// let mut conn = Connection::open_in_memory()?;
    /// let (mut out, mut err) = (Vec::new(), Vec::new());
    /// let code = Command::Up { to: None, backup: None, format: Format::Text }
    ///     .run_with(&mut conn, &m, &mut out, &mut err, false);
    /// assert_eq!(code, migrate_core::cli::EXIT_OK);
    /// assert!(String::from_utf8(out).unwrap().contains("applied 1 migration"));
    ///
    /// let mut out = Vec::new();
    /// Command::Status { format: Format::Json }.run_with(&mut conn, &m, &mut out, &mut err, true);
    /// let out = String::from_utf8(out).unwrap();
    /// assert!(out.starts_with(r#"{"command":"status","set":"docs_cli""#), "{out}");
    /// assert!(!out.contains('\x1b'));
    /// # Ok::<(), migrate_core::Error>(())
    /// ```
    pub fn run_with(
        &self,
        conn: &mut Connection,
        migrator: &Migrator,
        out: &mut dyn Write,
        err: &mut dyn Write,
        color: bool,
    ) -> u8 {
        let json = self.format() == Format::Json;
        let paint = Paint(color && !json);
        let steps = Steps::default();
        // Text from the database must not drive the terminal (a JSON
        // document escapes it itself). `schema` prints SQL, for files and
        // diffs, as the snapshot check writes it: byte for byte (round 18).
        let mut escaped_out;
        let out: &mut dyn Write = if json || matches!(self, Command::Schema { .. }) {
            out
        } else {
            escaped_out = controls::ControlsEscaped::new(out);
            &mut escaped_out
        };
        let mut escaped_err = controls::ControlsEscaped::new(err);
        let err: &mut dyn Write = &mut escaped_err;
        let result = if json {
            self.execute_json(conn, migrator, out, &steps)
        } else {
            self.execute(conn, migrator, out, paint)
        };
        match result {
            Ok(code) => code,
            Err(failure) => {
                if json {
                    let doc = json::error(self.name(), &failure, steps.take());
                    let _ = writeln!(out, "{}", doc.render());
                }
                let _ = writeln!(err, "{}: {failure:#}", paint.red("error"));
                let hint = match &failure {
                    // Round 16: `up >/dev/full` said only "cannot write the
                    // output", and a deploy script took applied migrations
                    // for failed ones.
                    Failure::Output(_) if self.writes() => Some(
                        "the output failed after the command's work, which is done (migrations \
                         applied or rolled back, files written): run `status` to see the \
                         database as it is"
                            .to_owned(),
                    ),
                    _ => failure.hint(),
                };
                if let Some(hint) = hint {
                    let _ = writeln!(err, "{}: {hint}", paint.yellow("hint"));
                }
                EXIT_FAILED
            }
        }
    }

    fn execute(
        &self,
        conn: &mut Connection,
        migrator: &Migrator,
        out: &mut dyn Write,
        paint: Paint,
    ) -> Result<u8, Failure> {
        match self {
            Command::Status { .. } => {
                status(conn, migrator, out, paint)?;
                Ok(EXIT_OK)
            }
            Command::Up {
                to,
                backup: backup_path,
                ..
            } => {
                if let Some(path) = backup_path {
                    backup(conn, path, migrator, out)?;
                }
                let start = Instant::now();
                let progress = progress_migrator(migrator, paint);
                let report = match to {
                    Some(target) => progress.migrator.migrate_to(conn, *target),
                    None => progress.migrator.migrate(conn),
                };
                progress.flush(out)?;
                let report = report?;
                summary(out, "applied", &report.steps, start.elapsed())?;
                Ok(EXIT_OK)
            }
            Command::Down { to, all, .. } => {
                let start = Instant::now();
                let progress = progress_migrator(migrator, paint);
                let steps = roll_back(&progress.migrator, conn, *to, *all);
                progress.flush(out)?;
                let steps = steps.map_err(|error| no_rollback(error, migrator, *to, *all))?;
                summary(out, "rolled back", &steps, start.elapsed())?;
                Ok(EXIT_OK)
            }
            Command::Plan {
                lint: true, deny, ..
            } => lint(conn, migrator, *deny, out, paint),
            Command::Plan { lint: false, .. } => {
                let pending = migrator.pending_migrations(conn)?;
                if pending.is_empty() {
                    writeln!(out, "nothing to apply")?;
                }
                for m in pending {
                    writeln!(out, "{:>4}  {:<32} {}", m.id, m.name, m.location)?;
                }
                Ok(EXIT_OK)
            }
            Command::Verify { schema, .. } => {
                let found = verify(conn, migrator, *schema)?;
                for note in &found.notes {
                    writeln!(out, "note: {note}")?;
                }
                if found.problems.is_empty() {
                    writeln!(out, "{}: {}", paint.green("ok"), found.checked)?;
                    Ok(EXIT_OK)
                } else {
                    for problem in &found.problems {
                        writeln!(out, "{} {problem}", paint.red("problem:"))?;
                    }
                    Ok(EXIT_PROBLEMS)
                }
            }
            Command::Baseline { through } => {
                migrator.baseline(conn, *through)?;
                writeln!(
                    out,
                    "recorded migrations 0 to {through} as applied (without running them)"
                )?;
                Ok(EXIT_OK)
            }
            Command::DryRun { .. } => {
                let dry = migrator.dry_run(conn)?;
                if dry.steps.is_empty() && dry.failure.is_none() && dry.stopped_before.is_none() {
                    writeln!(out, "dry run: nothing pending, nothing to try")?;
                    return Ok(EXIT_OK);
                }
                for step in &dry.steps {
                    writeln!(
                        out,
                        "{} {:>4} {:<32} {:>9.1} ms",
                        paint.green("ok"),
                        step.id,
                        step.name,
                        ms(step.elapsed)
                    )?;
                }
                let code = match &dry.failure {
                    Some(error) => {
                        writeln!(out, "{} {error:#}", paint.red("FAILED"))?;
                        EXIT_DRY_RUN_FAILED
                    }
                    None => EXIT_OK,
                };
                if let Some(id) = dry.stopped_before {
                    writeln!(
                        out,
                        "stopped before migration {id}: it runs with foreign_keys = off, in a transaction of its own"
                    )?;
                }
                writeln!(
                    out,
                    "dry run: {} migration(s) succeeded; everything was rolled back",
                    dry.steps.len()
                )?;
                Ok(code)
            }
            Command::Backup { path } => {
                backup(conn, path, migrator, out)?;
                Ok(EXIT_OK)
            }
            Command::Resolve { completed, .. } => {
                let resolution = if *completed {
                    crate::Resolution::Completed
                } else {
                    crate::Resolution::NotRun
                };
                match migrator.resolve_interrupted(conn, resolution)? {
                    Some(id) => writeln!(
                        out,
                        "migration {id}: recorded as {}",
                        if *completed { "completed" } else { "never run" }
                    )?,
                    None => writeln!(out, "nothing was interrupted")?,
                }
                Ok(EXIT_OK)
            }
            Command::Schema { replay } => {
                let schema = if *replay {
                    Schema::read(&crate::schema::replay(migrator)?)?
                } else {
                    // Within the lock timeout, as every other command.
                    crate::sqlite::LockWait::around(
                        conn,
                        migrator.configured_lock_timeout(),
                        |_| Schema::read(conn),
                    )?
                };
                out.write_all(schema.render().as_bytes())?;
                Ok(EXIT_OK)
            }
            Command::New {
                name,
                set,
                reversible,
                dir,
                rust,
                file,
                dry_run,
            } => {
                let request = new::Request {
                    dry_run: *dry_run,
                    name,
                    set: set.as_deref(),
                    reversible: *reversible,
                    dir: dir.as_deref(),
                    rust: *rust,
                    file: file.as_deref(),
                };
                new::run(conn, migrator, &request, out, paint)?;
                Ok(EXIT_OK)
            }
            Command::Renumber { set, dry_run, dir } => {
                renumber::run(
                    conn,
                    migrator,
                    set.as_deref(),
                    *dry_run,
                    dir.as_deref(),
                    out,
                    paint,
                )?;
                Ok(EXIT_OK)
            }
        }
    }

    /// The JSON form of the commands that have one.
    fn execute_json(
        &self,
        conn: &mut Connection,
        migrator: &Migrator,
        out: &mut dyn Write,
        steps: &Steps,
    ) -> Result<u8, Failure> {
        let (doc, code) = match self {
            Command::Status { .. } => (json::status(migrator, &migrator.status(conn)?), EXIT_OK),
            Command::Plan { .. } => (
                json::plan(migrator, &migrator.pending_migrations(conn)?),
                EXIT_OK,
            ),
            Command::Verify { schema, .. } => {
                let found = verify(conn, migrator, *schema)?;
                let code = if found.problems.is_empty() {
                    EXIT_OK
                } else {
                    EXIT_PROBLEMS
                };
                (json::verify(migrator, &found), code)
            }
            Command::Up {
                to, backup: path, ..
            } => {
                let start = Instant::now();
                let backed_up = match path {
                    Some(path) => Some(backup(conn, path, migrator, &mut std::io::sink())?),
                    None => None,
                };
                let collecting = steps.collect(migrator);
                let report = match to {
                    Some(target) => collecting.migrate_to(conn, *target),
                    None => collecting.migrate(conn),
                }?;
                let backup = match (path, backed_up) {
                    (Some(path), Some(elapsed)) => Json::Object(vec![
                        ("path", Json::str(path.display().to_string())),
                        ("elapsed_ms", Json::Float(ms(elapsed))),
                    ]),
                    _ => Json::Null,
                };
                let doc = json::run(
                    "up",
                    migrator,
                    &report.steps,
                    start.elapsed(),
                    vec![("backup", backup)],
                );
                (doc, EXIT_OK)
            }
            Command::Down { to, all, .. } => {
                let start = Instant::now();
                let collecting = steps.collect(migrator);
                let done = roll_back(&collecting, conn, *to, *all)
                    .map_err(|error| no_rollback(error, migrator, *to, *all))?;
                (
                    json::run("down", migrator, &done, start.elapsed(), Vec::new()),
                    EXIT_OK,
                )
            }
            Command::DryRun { .. } => {
                let dry = migrator.dry_run(conn)?;
                let code = if dry.failure.is_some() {
                    EXIT_DRY_RUN_FAILED
                } else {
                    EXIT_OK
                };
                (json::dry_run(migrator, &dry), code)
            }
            // Only the commands above take `--format`.
            _ => return self.execute(conn, migrator, out, Paint(false)),
        };
        writeln!(out, "{}", doc.render())?;
        Ok(code)
    }
}

/// What `down` asked for: the newest migration, down to `to`, or `all`.
fn roll_back(
    migrator: &Migrator,
    conn: &mut Connection,
    to: Option<u32>,
    all: bool,
) -> Result<Vec<StepReport>, Error> {
    match (to, all) {
        (_, true) => migrator.rollback_all(conn).map(|r| r.steps),
        (Some(target), false) => migrator.rollback_to(conn, target).map(|r| r.steps),
        // With the step's time (round 16: `elapsed_ms` 0 for a 500 ms step).
        (None, false) => migrator.rollback_last_step(conn).map(|r| r.steps),
    }
}

/// `down` stopped by a migration without a rollback: nothing was rolled
/// back; say which migration, where it is, and what to do.
fn no_rollback(error: Error, migrator: &Migrator, to: Option<u32>, all: bool) -> Failure {
    let Error::NoRollback { id, name } = &error else {
        return Failure::Migrate(error);
    };
    let (set, _, extra) = migrator.cli_view();
    let up = crate::registry::raw(set, extra)
        .into_iter()
        .find(|r| !r.rollback && r.id == *id && r.name == *name);
    let (place, how) = match &up {
        Some(raw) => match raw.dir {
            Some(dir) => {
                // A file of goose's (dbmate's, sql-migrate's) sections takes
                // its rollback under its down marker: a file beside it would
                // be another migration to that tool (a probe's finding).
                let file = raw.location.file;
                let text = file
                    .strip_prefix(dir.shown)
                    .map(|relative| format!("{}{relative}", dir.absolute))
                    .and_then(|path| std::fs::read_to_string(path).ok());
                let how = match text.as_deref().and_then(new::Sections::of) {
                    Some((tool, true)) => format!(
                        "its `{}` section runs nothing: write the rollback's SQL under it in {file} \
                         (then rebuild)",
                        tool.markers().1
                    ),
                    Some((tool, false)) => format!(
                        "write the rollback's SQL under a `{}` line at the end of {file} (then \
                         rebuild)",
                        tool.markers().1
                    ),
                    None => format!(
                        "add its rollback as a file beside it, {} (then rebuild)",
                        new::down_file_name(file)
                    ),
                };
                (format!(" ({file})"), how)
            }
            None => (
                format!(" ({})", raw.location),
                format!("add a `#[rollback({id})]` function that undoes it (then rebuild)"),
            ),
        },
        None => (
            String::new(),
            format!("add a `#[rollback({id})]` function or a `.down.sql` file that undoes it"),
        ),
    };
    let scope = match (all, to) {
        (true, _) => ", and `down --all` rolls back every applied migration or none".to_owned(),
        (false, Some(target)) => {
            format!(", and `down --to {target}` rolls back every migration after {target} or none")
        }
        (false, None) => String::new(),
    };
    let keep = if (all || to.is_some()) && *id > 0 {
        format!(", or roll back only the newer ones with `down --to {id}`")
    } else {
        String::new()
    };
    Failure::NoRollback {
        message: format!(
            "nothing was rolled back: migration {id} `{name}`{place} has no rollback{scope}"
        ),
        hint: format!("{how}{keep}"),
    }
}

/// The steps a JSON `up` or `down` performed, for the error document when
/// one fails midway (the ones before it stay done). A step reported
/// finished and then failed was lost with its transaction (a COMMIT that
/// failed, a transaction SQLite ended): it is not done, and leaves the list.
#[derive(Default, Clone)]
struct Steps(Arc<Mutex<Vec<StepReport>>>);

impl Steps {
    fn collect(&self, migrator: &Migrator) -> Migrator {
        let sink = Arc::clone(&self.0);
        migrator.clone().observer(move |event: &Event| {
            let mut steps = sink.lock().unwrap_or_else(|e| e.into_inner());
            match event {
                Event::Finished {
                    id,
                    name,
                    direction,
                    elapsed,
                } => steps.push(StepReport::new(
                    *id,
                    (*name).to_owned(),
                    *direction,
                    *elapsed,
                )),
                Event::Failed { id, direction, .. } => {
                    if let Some(done) = steps
                        .iter()
                        .rposition(|step| step.id == *id && step.direction == *direction)
                    {
                        steps.remove(done);
                    }
                }
                _ => {}
            }
        })
    }

    fn take(&self) -> Vec<StepReport> {
        std::mem::take(&mut *self.0.lock().unwrap_or_else(|e| e.into_inner()))
    }
}

/// A failure of a command: the library's, the output's, a backup's, or a
/// refusal of the CLI's own (`new`, `renumber`, `down` without a rollback).
pub(crate) enum Failure {
    Migrate(Error),
    Output(std::io::Error),
    /// The backup could not start or did not finish: the target, and why.
    Backup(PathBuf, String),
    /// `down` found a migration without a rollback: nothing was rolled back.
    NoRollback {
        message: String,
        hint: String,
    },
    /// What is wrong, and what to do.
    Refused {
        message: String,
        hint: String,
    },
}

impl Failure {
    pub(crate) fn refused(message: impl Into<String>, hint: impl Into<String>) -> Failure {
        Failure::Refused {
            message: message.into(),
            hint: hint.into(),
        }
    }

    /// What to do, when the message does not already say it.
    fn hint(&self) -> Option<String> {
        match self {
            Failure::NoRollback { hint, .. } | Failure::Refused { hint, .. } => Some(hint.clone()),
            Failure::Migrate(Error::InvalidRegistry { problems })
                if problems.iter().any(|p| {
                    matches!(p, crate::error::RegistryProblem::DuplicateMigration { .. })
                }) =>
            {
                Some(
                    "after a merge of branches that each added a migration with the same id, \
                     `renumber` gives the ones not applied yet the next free ids"
                        .to_owned(),
                )
            }
            _ => None,
        }
    }
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Failure::Migrate(error) if f.alternate() => write!(f, "{error:#}"),
            Failure::Migrate(error) => write!(f, "{error}"),
            Failure::Output(error) => write!(f, "cannot write the output: {error}"),
            Failure::Backup(path, reason) => {
                write!(f, "cannot back up to {}: {reason}", path.display())
            }
            Failure::NoRollback { message, .. } | Failure::Refused { message, .. } => {
                f.write_str(message)
            }
        }
    }
}

impl From<Error> for Failure {
    fn from(error: Error) -> Self {
        Failure::Migrate(error)
    }
}

impl From<std::io::Error> for Failure {
    fn from(error: std::io::Error) -> Self {
        Failure::Output(error)
    }
}

impl From<rusqlite::Error> for Failure {
    fn from(error: rusqlite::Error) -> Self {
        Failure::Migrate(Error::Sqlite(error))
    }
}

fn ms(duration: Duration) -> f64 {
    duration.as_secs_f64() * 1e3
}

/// A clone of the migrator whose observer collects progress lines, printed
/// as each step ends (the observer cannot borrow `out` itself).
struct Progress {
    migrator: Migrator,
    lines: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
}

impl Progress {
    fn flush(&self, out: &mut dyn Write) -> Result<(), Failure> {
        let lines = std::mem::take(&mut *self.lines.lock().unwrap_or_else(|e| e.into_inner()));
        for line in lines {
            writeln!(out, "{line}")?;
        }
        Ok(())
    }
}

fn progress_migrator(migrator: &Migrator, paint: Paint) -> Progress {
    // Only when styles are asked for (a caller writing to the terminal)
    // and stdout is one: a caller collecting the output gets every line.
    let live = paint.0 && std::io::stdout().is_terminal();
    let lines: std::sync::Arc<std::sync::Mutex<Vec<String>>> = std::sync::Arc::default();
    let sink = std::sync::Arc::clone(&lines);
    let migrator = migrator.clone().observer(move |event: &Event| {
        let line = match event {
            Event::Finished {
                id,
                name,
                direction,
                elapsed,
            } => {
                let verb = if *direction == Direction::Up {
                    "applied"
                } else {
                    "rolled back"
                };
                format!(
                    "{} {id:>4} {name:<32} {:>9.1} ms",
                    paint.green(verb),
                    ms(*elapsed)
                )
            }
            Event::Failed {
                id, name, elapsed, ..
            } => {
                format!(
                    "{} {id:>4} {name:<32} {:>9.1} ms",
                    paint.red("FAILED"),
                    ms(*elapsed)
                )
            }
            _ => return,
        };
        // Printed at once on a terminal, so a long migration shows progress.
        if live {
            let _ = writeln!(anstream::stdout(), "{}", controls::escape_controls(&line));
        } else {
            sink.lock().unwrap_or_else(|e| e.into_inner()).push(line);
        }
    });
    Progress { migrator, lines }
}

fn summary(
    out: &mut dyn Write,
    verb: &str,
    steps: &[StepReport],
    elapsed: Duration,
) -> Result<(), Failure> {
    if steps.is_empty() {
        writeln!(out, "nothing to do")?;
    } else {
        writeln!(
            out,
            "{verb} {} migration(s) in {:.1} ms",
            steps.len(),
            ms(elapsed)
        )?;
    }
    Ok(())
}

fn status(
    conn: &Connection,
    migrator: &Migrator,
    out: &mut dyn Write,
    paint: Paint,
) -> Result<(), Failure> {
    // Read first: a failure prints no table header before its error.
    let lines = migrator.status(conn)?;
    writeln!(out, "{:>4}  {:<32} {:<9} applied at", "id", "name", "state")?;
    for line in lines {
        let (state, note) = match &line.state {
            MigrationState::Applied => (paint.green("applied  "), String::new()),
            MigrationState::Pending => (paint.yellow("pending  "), String::new()),
            MigrationState::Modified {
                applied_name,
                applied_checksum,
            } => (
                paint.red("MODIFIED "),
                format!("  (applied as `{applied_name}`, checksum {applied_checksum})"),
            ),
            MigrationState::Unknown => {
                (paint.red("UNKNOWN  "), "  (not in this binary)".to_owned())
            }
            MigrationState::Interrupted { direction } => (
                paint.red("STARTED  "),
                format!(
                    "  ({} outside a transaction, never recorded as finished: see `resolve`)",
                    match direction {
                        Direction::Up => "applying",
                        Direction::Down => "rolling back",
                    }
                ),
            ),
        };
        writeln!(
            out,
            "{:>4}  {:<32} {state} {}{note}",
            line.id,
            line.name,
            line.applied_at.as_deref().unwrap_or("-")
        )?;
    }
    Ok(())
}

/// An error that says the database could not be read (not a database, a
/// lock held past the timeout, I/O): `verify` fails (exit 1) rather than
/// report it as something found in the history (exit 3).
fn cannot_read(error: &Error) -> bool {
    matches!(error, Error::Sqlite(_) | Error::Locked { .. })
}

/// What `verify` found.
pub(crate) struct Verified {
    pub problems: Vec<String>,
    pub notes: Vec<String>,
    /// What agrees, when nothing is wrong.
    pub checked: &'static str,
    /// Whether the schema was compared (`--schema`, and a recorded one).
    pub schema_compared: bool,
}

fn verify(conn: &Connection, migrator: &Migrator, schema: bool) -> Result<Verified, Failure> {
    let mut problems = Vec::new();
    match migrator.validate() {
        Err(error) => problems.push(error.to_string()),
        Ok(()) => match migrator.status(conn) {
            // Not a finding about the history: the file could not be read.
            Err(error) if cannot_read(&error) => return Err(error.into()),
            Err(error) => problems.push(error.to_string()),
            Ok(lines) => {
                for line in lines {
                    match line.state {
                        MigrationState::Modified { applied_name, applied_checksum } => problems.push(format!(
                            "migration {} `{}` was applied as `{applied_name}` with checksum {applied_checksum}: it was edited or renamed since",
                            line.id, line.name
                        )),
                        MigrationState::Unknown => problems.push(format!(
                            "migration {} `{}` is applied but unknown to this binary",
                            line.id, line.name
                        )),
                        _ => {}
                    }
                }
            }
        },
    }
    if problems.is_empty() {
        match migrator.pending_migrations(conn) {
            Err(error) if cannot_read(&error) => return Err(error.into()),
            Err(error) => problems.push(error.to_string()),
            Ok(_) => {}
        }
    }
    let mut found = Verified {
        problems,
        notes: Vec::new(),
        checked: "the registry, the history and the checksums agree",
        schema_compared: false,
    };
    if schema {
        match migrator.check_drift(conn)? {
            None => found.notes.push(
                "no schema was recorded yet: runs of migrations record it once the Migrator \
                 looks for drift (Migrator::drift)"
                    .to_owned(),
            ),
            Some(changes) => {
                found.checked = "the registry, the history, the checksums and the schema agree";
                found.schema_compared = true;
                found.problems.extend(changes.iter().map(|change| {
                    format!(
                        "changed outside migrations: {}",
                        change.summary("when migrations last ran", "now")
                    )
                }));
            }
        }
    }
    Ok(found)
}

/// Backs up to `path`; returns how long it took.
fn backup(
    conn: &Connection,
    path: &Path,
    migrator: &Migrator,
    out: &mut dyn Write,
) -> Result<Duration, Failure> {
    let start = Instant::now();
    crate::sqlite::backup::online_backup(conn, path, migrator.configured_lock_timeout())
        .map_err(|reason| Failure::Backup(path.to_owned(), reason))?;
    writeln!(
        out,
        "backed up to {} in {:.1} ms",
        path.display(),
        ms(start.elapsed())
    )?;
    Ok(start.elapsed())
}

fn lint(
    conn: &Connection,
    migrator: &Migrator,
    deny: Level,
    out: &mut dyn Write,
    paint: Paint,
) -> Result<u8, Failure> {
    let report = migrator.lint(conn)?;
    print_lint(&report, deny, out, paint)
}

/// The lint's report: per migration its time and findings, then one
/// `key=value` summary line; returns the exit code.
fn print_lint(
    report: &LintReport,
    deny: Level,
    out: &mut dyn Write,
    paint: Paint,
) -> Result<u8, Failure> {
    let pending = report.steps.len() + report.not_run.len();
    if pending == 0 {
        writeln!(out, "nothing to apply")?;
    } else {
        writeln!(
            out,
            "linting {pending} pending migration(s) on an in-memory copy of the database (copied in \
             {:.1} ms, foreign keys {}); the database itself is not changed",
            ms(report.copy_elapsed),
            if report.foreign_keys { "on" } else { "off" }
        )?;
    }
    let label = |level: Level| {
        let text = format!("{:<4}", level.as_str().to_ascii_uppercase());
        match level {
            Level::Info => text,
            Level::Risk => paint.yellow(&text),
            Level::Loss => paint.red(&text),
        }
    };
    for step in &report.steps {
        match &step.failure {
            None => writeln!(
                out,
                "{:>4}  {:<32} {:>9.1} ms{}",
                step.id,
                step.name,
                ms(step.elapsed),
                if step.findings.is_empty() {
                    "  clean"
                } else {
                    ""
                }
            )?,
            Some(error) => {
                writeln!(
                    out,
                    "{:>4}  {:<32} {:>9.1} ms  {}",
                    step.id,
                    step.name,
                    ms(step.elapsed),
                    paint.red("FAILED on this data")
                )?;
                writeln!(out, "        {} {error:#}", paint.red("FAIL"))?;
                if let Some(hint) = &step.hint {
                    writeln!(out, "        hint: {hint}")?;
                }
            }
        }
        for finding in &step.findings {
            writeln!(out, "        {} {finding}", label(finding.level()))?;
        }
    }
    for m in &report.not_run {
        writeln!(
            out,
            "{:>4}  {:<32} not run: an earlier migration failed on this data",
            m.id, m.name
        )?;
    }
    let code = if report.failed().is_some() {
        EXIT_DRY_RUN_FAILED
    } else if report.passes(deny) {
        EXIT_OK
    } else {
        EXIT_LINT_FINDINGS
    };
    writeln!(
        out,
        "lint: pending={pending} ran={} failed={} loss={} risk={} info={} deny={deny} exit={code}",
        report.steps.len(),
        report
            .failed()
            .map_or_else(|| "none".to_owned(), |step| step.id.to_string()),
        report.count(Level::Loss),
        report.count(Level::Risk),
        report.count(Level::Info),
    )?;
    Ok(code)
}
