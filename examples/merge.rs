//! Two branches merged, each with the migrations it added: branch `authors`
//! added `002_note_authors.sql` and the Rust migration 3 `archive_notes`,
//! branch `colors` added `002_note_colors.sql` and migration 3 `pin_notes`
//! (in `merge/pins.rs`). The sequence rule refuses the set (two migrations
//! 2, two migrations 3) before anything touches a database; `renumber`
//! keeps the ids of the migrations this database already applied and moves
//! the others after them: it renames the SQL files and prints the edits of
//! the Rust attributes.
//!
//! ```text
//! cargo run -p migrate-examples --bin merge -- verify              # the duplicate ids, with their files and lines
//! cargo run -p migrate-examples --bin merge -- renumber --dry-run  # what renumber would rename and edit
//! cargo run -p migrate-examples --bin merge -- new add_due_dates   # the next migration's file
//! ```

use std::io::Write;

use clap::Parser;
use migrate_core::cli::Command;
use migrate_core::rusqlite::{Connection, Transaction};
use migrate_core::{embed_migrations, migration, rollback, Migrator};

#[path = "merge/pins.rs"]
mod pins;

// Migrations 0 to 2 (twice 2) are SQL files; build.rs reruns the build
// when a file is added to the directory.
embed_migrations!("merge/migrations", set = "merge");

/// Added on branch `authors`.
#[migration(3, set = "merge")]
fn archive_notes(tx: &Transaction) -> migrate_core::rusqlite::Result<()> {
    tx.execute_batch("ALTER TABLE notes ADD COLUMN archived INTEGER NOT NULL DEFAULT 0")
}

#[rollback(3, set = "merge")]
fn unarchive_notes(tx: &Transaction) -> migrate_core::rusqlite::Result<()> {
    tx.execute_batch("ALTER TABLE notes DROP COLUMN archived")
}

/// The notes database after the merge. Without a command: apply what is
/// pending (refused until the ids are renumbered), then show the status.
#[derive(Parser)]
struct Args {
    /// The database file.
    #[arg(long, default_value = "merge.db")]
    db: String,
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
            let _ = writeln!(
                err,
                "error: cannot open {}: {}",
                args.db,
                migrate_core::Error::from(error)
            );
            return 1;
        }
    };
    let migrator = Migrator::new().set("merge");
    migrate_core::cli::run_or_migrate(args.command.as_ref(), &mut db, &migrator, out, err, color)
}

fn main() -> std::process::ExitCode {
    let args: Vec<String> = std::env::args().collect();
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    std::process::ExitCode::from(run(
        &args,
        &mut migrate_core::cli::stdout(),
        &mut migrate_core::cli::stderr(),
        true,
    ))
}
