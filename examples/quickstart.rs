//! Quickstart: migrate a real database file and show where it stands.
//!
//! ```text
//! cargo run --example quickstart                 # migrate ./quickstart.db, print the status
//! cargo run --example quickstart -- --rollback   # undo the newest migration
//! cargo run --example quickstart -- --db /tmp/x.db
//! ```

use migrate_core::rusqlite::{Connection, Transaction};
use migrate_core::{migration, rollback, Migrate, MigrationState, Migrator};

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

fn main() {
    if let Err(error) = run() {
        eprintln!("error: {error}");
        std::process::exit(1);
    }
}

fn run() -> Result<(), Box<dyn std::error::Error>> {
    let mut path = String::from("quickstart.db");
    let mut rollback = false;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--rollback" => rollback = true,
            "--db" => path = args.next().ok_or("--db needs a path")?,
            "-h" | "--help" => {
                println!("usage: quickstart [--db PATH] [--rollback]");
                return Ok(());
            }
            other => return Err(format!("unknown argument {other:?}; try --help").into()),
        }
    }

    let mut db = Connection::open(&path)?;
    if rollback {
        match db.rollback_migration()? {
            Some(undone) => println!("rolled back {} {}", undone.id, undone.name),
            None => println!("nothing to roll back"),
        }
    } else {
        let report = db.migrate()?;
        if report.is_empty() {
            println!("{path} is up to date");
        }
        for step in &report.steps {
            println!(
                "applied {} {} ({:.1} ms)",
                step.id,
                step.name,
                step.elapsed.as_secs_f64() * 1e3
            );
        }
    }
    print_status(&db, &path)
}

fn print_status(db: &Connection, path: &str) -> Result<(), Box<dyn std::error::Error>> {
    println!("\n{path}:");
    println!(
        "{:>3}  {:<24} {:<9} {:<8} applied at",
        "id", "name", "state", "rollback"
    );
    for line in Migrator::new().status(db)? {
        let state = match line.state {
            MigrationState::Applied => "applied",
            MigrationState::Pending => "pending",
            MigrationState::Modified { .. } => "MODIFIED",
            MigrationState::Unknown => "UNKNOWN",
            _ => "?",
        };
        println!(
            "{:>3}  {:<24} {:<9} {:<8} {}",
            line.id,
            line.name,
            state,
            if line.has_rollback { "yes" } else { "no" },
            line.applied_at.as_deref().unwrap_or("-")
        );
    }
    let version: i64 = db.query_row("PRAGMA user_version", [], |row| row.get(0))?;
    println!("PRAGMA user_version = {version}");
    Ok(())
}
