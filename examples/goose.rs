//! Coming from goose: its migrations directory embedded unchanged (each
//! file's `-- +goose Up` section is the migration, its `-- +goose Down`
//! section the rollback), and a database goose migrated taken over with
//! `Migrator::adopt(conn, Legacy::Goose)` before the first `migrate()`.
//!
//! ```text
//! cargo run -p migrate-examples --bin goose               # adopt (if goose ran here), migrate, status
//! cargo run -p migrate-examples --bin goose -- down       # 00002 has no Down section: says where to write it
//! ```

use std::io::Write;

use clap::Parser;
use migrate_core::cli::Command;
use migrate_core::rusqlite::Connection;
use migrate_core::{embed_migrations, Legacy, Migrator};

// goose numbers its files from 00001: `ids = "sorted"` makes them 0, 1, …
embed_migrations!("goose/migrations", set = "goose", ids = "sorted");

/// The notes database. Without a command: adopt goose's history, apply what
/// is pending, then show the status.
#[derive(Parser)]
struct Args {
    /// The database file.
    #[arg(long, default_value = "goose.db")]
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
    let migrator = Migrator::new().set("goose");
    // Changes nothing once adopted, or where goose never ran: start-up code
    // may call it every time.
    if let Err(error) = migrator.adopt(&mut db, Legacy::Goose) {
        let _ = writeln!(err, "error: {error}");
        return 1;
    }
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
