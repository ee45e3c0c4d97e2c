//! Quickstart: migrate a real database file and show where it stands.
//!
//! ```text
//! cargo run --example quickstart                 # migrate ./quickstart.db, print the status
//! cargo run --example quickstart -- --rollback   # undo the newest migration
//! cargo run --example quickstart -- --db /tmp/x.db
//! ```

use std::io::Write;

use migrate_core::rusqlite::{Connection, Transaction};
use migrate_core::{migration, rollback, Migrate, Migrator};

#[path = "common/status.rs"]
mod status;

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

/// Runs the example with `args` (without the program name).
pub fn run(args: &[String], out: &mut dyn Write) -> Result<(), Box<dyn std::error::Error>> {
    let mut path = String::from("quickstart.db");
    let mut rollback = false;
    let mut args = args.iter();
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--rollback" => rollback = true,
            "--db" => path = args.next().ok_or("--db needs a path")?.clone(),
            "-h" | "--help" => {
                writeln!(out, "usage: quickstart [--db PATH] [--rollback]")?;
                return Ok(());
            }
            other => return Err(format!("unknown argument {other:?}; try --help").into()),
        }
    }

    let mut db = Connection::open(&path)?;
    if rollback {
        match db.rollback_migration()? {
            Some(undone) => writeln!(out, "rolled back {} {}", undone.id, undone.name)?,
            None => writeln!(out, "nothing to roll back")?,
        }
    } else {
        let report = db.migrate()?;
        if report.is_empty() {
            writeln!(out, "{path} is up to date")?;
        }
        for step in &report.steps {
            writeln!(
                out,
                "applied {} {} ({:.1} ms)",
                step.id,
                step.name,
                step.elapsed.as_secs_f64() * 1e3
            )?;
        }
    }
    status::print(out, &db, &Migrator::new(), &path)
}

#[allow(dead_code)] // also compiled into tests/examples.rs, which calls `run`
fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if let Err(error) = run(&args, &mut std::io::stdout()) {
        eprintln!("error: {error}");
        std::process::exit(1);
    }
}
