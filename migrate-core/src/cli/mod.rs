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
//! # Exit codes
//! | code | meaning |
//! | --- | --- |
//! | 0 | success (`verify`: no problem found; `plan --lint`: no finding at or above `--deny`) |
//! | 1 | the command failed: a migration or rollback failed, or the database or registry was refused |
//! | 2 | usage error (reported by clap) |
//! | 3 | `verify` found problems |
//! | 4 | `dry-run` or `plan --lint`: a pending migration would fail |
//! | 5 | `plan --lint`: findings at or above the `--deny` level |

use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use rusqlite::Connection;

use crate::error::{Direction, Error};
use crate::lint::{Level, LintReport};
use crate::migrator::Migrator;
use crate::observe::Event;
use crate::report::{MigrationState, StepReport};
use crate::schema::Schema;

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

/// The migration subcommands.
///
/// ```
/// use clap::Parser;
/// #[derive(Parser)]
/// struct Cli {
///     #[command(subcommand)]
///     command: migrate_core::cli::Command,
/// }
/// let cli = Cli::parse_from(["app", "up", "--to", "3"]);
/// assert!(matches!(cli.command, migrate_core::cli::Command::Up { to: Some(3), .. }));
/// ```
#[derive(Debug, Clone, clap::Subcommand)]
#[non_exhaustive]
pub enum Command {
    /// Show every migration with its state and when it was applied.
    Status,
    /// Apply pending migrations.
    Up {
        /// Stop after this migration id.
        #[arg(long, value_name = "ID")]
        to: Option<u32>,
        /// Back the database up to this file first (SQLite's online backup).
        #[arg(long, value_name = "PATH")]
        backup: Option<PathBuf>,
    },
    /// Roll back the newest migration, or down to an id, or all.
    Down {
        /// Roll back until this id is the newest applied one.
        #[arg(long, value_name = "ID", conflicts_with = "all")]
        to: Option<u32>,
        /// Roll back every applied migration.
        #[arg(long)]
        all: bool,
    },
    /// List what `up` would apply, without applying it.
    Plan {
        /// Run the pending migrations on an in-memory copy of the database
        /// and report what each destroys or risks on this data.
        #[arg(long)]
        lint: bool,
        /// With --lint: fail (exit code 5) on findings at or above this level.
        #[arg(long, value_name = "LEVEL", value_enum, default_value_t = Level::Risk, requires = "lint")]
        deny: Level,
    },
    /// Check the registry, the history and the checksums.
    Verify {
        /// Also compare the live schema, object by object, with the one the
        /// migrations left when they last ran (drift).
        #[arg(long)]
        schema: bool,
    },
    /// Record migrations 0..=THROUGH as applied without running them.
    Baseline {
        /// The last migration id the database already has.
        through: u32,
    },
    /// Apply everything pending inside a transaction, report, then roll back.
    DryRun,
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
}

/// Runs `command`, or without one (an application run with no
/// subcommand) applies what is pending and then prints the status; returns
/// the exit code.
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
        })
        .run_with(conn, migrator, out, err, color)
        {
            EXIT_OK => Command::Status.run_with(conn, migrator, out, err, color),
            failed => failed,
        },
    }
}

impl Command {
    /// Runs the command, printing to stdout and stderr (in colour on a
    /// terminal), and returns the exit code.
    pub fn run(&self, conn: &mut Connection, migrator: &Migrator) -> ExitCode {
        let color = std::io::stdout().is_terminal();
        let code = self.run_with(
            conn,
            migrator,
            &mut std::io::stdout(),
            &mut std::io::stderr(),
            color,
        );
        ExitCode::from(code)
    }

    /// Runs the command with the given output streams; returns the exit code.
    ///
    /// ```
    /// # use migrate_core::{Migrator, rusqlite::{Connection, Transaction}};
    /// let m = Migrator::new().set("docs_cli")
    ///     .add(0, "a", |tx: &Transaction| tx.execute_batch("CREATE TABLE a (x)"));
    /// let mut conn = Connection::open_in_memory()?;
    /// let (mut out, mut err) = (Vec::new(), Vec::new());
    /// let code = migrate_core::cli::Command::Up { to: None, backup: None }
    ///     .run_with(&mut conn, &m, &mut out, &mut err, false);
    /// assert_eq!(code, migrate_core::cli::EXIT_OK);
    /// assert!(String::from_utf8(out).unwrap().contains("applied 1 migration"));
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
        let paint = Paint(color);
        match self.execute(conn, migrator, out, paint) {
            Ok(code) => code,
            Err(failure) => {
                let _ = writeln!(err, "{}: {failure:#}", paint.red("error"));
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
            Command::Status => {
                status(conn, migrator, out, paint)?;
                Ok(EXIT_OK)
            }
            Command::Up {
                to,
                backup: backup_path,
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
            Command::Down { to, all } => {
                let start = Instant::now();
                let progress = progress_migrator(migrator, paint);
                let steps = match (to, all) {
                    (_, true) => progress.migrator.rollback_all(conn).map(|r| r.steps),
                    (Some(target), false) => progress
                        .migrator
                        .rollback_to(conn, *target)
                        .map(|r| r.steps),
                    (None, false) => progress.migrator.rollback_migration(conn).map(|undone| {
                        undone
                            .map(|row| {
                                StepReport::new(row.id, row.name, Direction::Down, Duration::ZERO)
                            })
                            .into_iter()
                            .collect()
                    }),
                };
                progress.flush(out)?;
                summary(out, "rolled back", &steps?, start.elapsed())?;
                Ok(EXIT_OK)
            }
            Command::Plan { lint: true, deny } => lint(conn, migrator, *deny, out, paint),
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
            Command::Verify { schema } => verify(conn, migrator, *schema, out, paint),
            Command::Baseline { through } => {
                migrator.baseline(conn, *through)?;
                writeln!(
                    out,
                    "recorded migrations 0 to {through} as applied (without running them)"
                )?;
                Ok(EXIT_OK)
            }
            Command::DryRun => {
                let dry = migrator.dry_run(conn)?;
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
                    Schema::read(conn)?
                };
                out.write_all(schema.render().as_bytes())?;
                Ok(EXIT_OK)
            }
        }
    }
}

/// A failure of a command: the library's, the output's, or a backup's.
enum Failure {
    Migrate(Error),
    Output(std::io::Error),
    /// The backup could not start or did not finish: the target, and why.
    Backup(PathBuf, String),
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

/// ANSI colours, only when writing to a terminal.
#[derive(Clone, Copy)]
struct Paint(bool);

impl Paint {
    fn wrap(self, code: &str, text: &str) -> String {
        if self.0 {
            format!("\x1b[{code}m{text}\x1b[0m")
        } else {
            text.to_owned()
        }
    }
    fn green(self, text: &str) -> String {
        self.wrap("32", text)
    }
    fn yellow(self, text: &str) -> String {
        self.wrap("33", text)
    }
    fn red(self, text: &str) -> String {
        self.wrap("31", text)
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
        if paint.0 {
            println!("{line}");
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
    writeln!(out, "{:>4}  {:<32} {:<9} applied at", "id", "name", "state")?;
    for line in migrator.status(conn)? {
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

fn verify(
    conn: &Connection,
    migrator: &Migrator,
    schema: bool,
    out: &mut dyn Write,
    paint: Paint,
) -> Result<u8, Failure> {
    let mut problems = Vec::new();
    match migrator.validate() {
        Err(error) => problems.push(error.to_string()),
        Ok(()) => match migrator.status(conn) {
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
        if let Err(error) = migrator.pending_migrations(conn) {
            problems.push(error.to_string());
        }
    }
    let mut checked = "the registry, the history and the checksums agree";
    if schema {
        match migrator.check_drift(conn)? {
            None => writeln!(
                out,
                "note: no schema was recorded yet: runs of migrations record it once the \
                 Migrator looks for drift (Migrator::drift)"
            )?,
            Some(changes) => {
                checked = "the registry, the history, the checksums and the schema agree";
                problems.extend(changes.iter().map(|change| {
                    format!(
                        "changed outside migrations: {}",
                        change.summary("when migrations last ran", "now")
                    )
                }));
            }
        }
    }
    if problems.is_empty() {
        writeln!(out, "{}: {checked}", paint.green("ok"))?;
        Ok(EXIT_OK)
    } else {
        for problem in &problems {
            writeln!(out, "{} {problem}", paint.red("problem:"))?;
        }
        Ok(EXIT_PROBLEMS)
    }
}

fn backup(
    conn: &Connection,
    path: &Path,
    migrator: &Migrator,
    out: &mut dyn Write,
) -> Result<(), Failure> {
    let start = Instant::now();
    crate::sqlite::backup::online_backup(conn, path, migrator.configured_lock_timeout())
        .map_err(|reason| Failure::Backup(path.to_owned(), reason))?;
    writeln!(
        out,
        "backed up to {} in {:.1} ms",
        path.display(),
        ms(start.elapsed())
    )?;
    Ok(())
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
