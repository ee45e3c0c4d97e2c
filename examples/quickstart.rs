//! Quickstart: migrate a real database file and show where it stands.
//!
//! ```text
//! cargo run -p migrate-examples --bin quickstart                 # migrate ./quickstart.db, print the status
//! cargo run -p migrate-examples --bin quickstart -- down         # undo the newest migration
//! cargo run -p migrate-examples --bin quickstart -- --help       # every subcommand (status, up, down, plan, …)
//! cargo run -p migrate-examples --bin quickstart -- --db /tmp/x.db status
//! cargo run -p migrate-examples --bin quickstart -- --lock-timeout 5 up --backup before.db
//! ```

use std::io::Write;

use clap::Parser;
use migrate_core::cli::Command;
use migrate_core::rusqlite::{Connection, Transaction};
use migrate_core::{migration, rollback, Migrator};

#[migration(0)]
fn create_cats(tx: &Transaction) -> migrate_core::rusqlite::Result<()> {
    tx.execute_batch(
        "CREATE TABLE cats (name TEXT PRIMARY KEY, born TEXT NOT NULL);
         INSERT INTO cats (name, born) VALUES ('Tom', '2019-04-01'), ('Mog', '2021-09-12');",
    )
}

#[migration(1)]
fn create_dogs(tx: &Transaction) -> migrate_core::rusqlite::Result<()> {
    tx.execute_batch("CREATE TABLE dogs (name TEXT PRIMARY KEY)")
}

#[rollback(1)]
fn drop_dogs(tx: &Transaction) -> migrate_core::rusqlite::Result<()> {
    tx.execute_batch("DROP TABLE dogs")
}

#[migration(2, name = "index_cats_by_birthday")]
fn cats_born_index(tx: &Transaction) -> migrate_core::rusqlite::Result<()> {
    tx.execute_batch("CREATE INDEX cats_born ON cats (born)")
}

#[rollback(2)]
fn drop_cats_born_index(tx: &Transaction) -> migrate_core::rusqlite::Result<()> {
    tx.execute_batch("DROP INDEX cats_born")
}

/// Migrates a real SQLite file. Without a command: apply what is pending,
/// then show the status.
#[derive(Parser)]
struct Args {
    /// The database file.
    #[arg(long, default_value = "quickstart.db")]
    db: String,
    /// How long to wait for a lock another connection holds (a migration
    /// running elsewhere, a busy backup target) before failing.
    #[arg(long, value_name = "SECONDS", default_value_t = 120.0)]
    lock_timeout: f64,
    #[command(subcommand)]
    command: Option<Command>,
}

/// Runs the example with `args` (the program name first); returns the exit code.
pub fn run(args: &[&str], out: &mut dyn Write, err: &mut dyn Write, color: bool) -> u8 {
    let args = match Args::try_parse_from(args) {
        Ok(args) => args,
        Err(usage) => {
            let _ = write!(err, "{usage}");
            return if usage.use_stderr() { 2 } else { 0 };
        }
    };
    let mut db = match Connection::open(&args.db) {
        Ok(db) => db,
        Err(error) => {
            let error = migrate_core::Error::from(error);
            // `{:#}`: the message, then each cause, with migrate-core's advice
            // (what to run, which Migrator method fixes it). A
            // `fn main() -> Result<(), migrate_core::Error>` would print the
            // `Debug` form instead, which hides them.
            let _ = writeln!(err, "error: cannot open {}: {error:#}", args.db);
            return 1;
        }
    };
    let Ok(lock_timeout) = std::time::Duration::try_from_secs_f64(args.lock_timeout) else {
        let _ = writeln!(
            err,
            "error: --lock-timeout {}: give a number of seconds, 0 or more",
            args.lock_timeout
        );
        return 2;
    };
    let migrator = Migrator::new().lock_timeout(lock_timeout);
    // Without a command: `migrator.migrate(&mut db)`, then the status table.
    // A failure is printed as `error: {:#}` (message, causes, advice) and
    // exits with 1; see `migrate_core::cli` for the other exit codes.
    migrate_core::cli::run_or_migrate(args.command.as_ref(), &mut db, &migrator, out, err, color)
}

#[allow(dead_code)] // also compiled into tests/examples.rs, which calls `run`
fn main() -> std::process::ExitCode {
    let args: Vec<String> = std::env::args().collect();
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    // In colour where the streams keep it: a terminal, unless NO_COLOR or
    // CLICOLOR=0 say otherwise; anywhere with CLICOLOR_FORCE.
    std::process::ExitCode::from(run(
        &args,
        &mut migrate_core::cli::stdout(),
        &mut migrate_core::cli::stderr(),
        true,
    ))
}
