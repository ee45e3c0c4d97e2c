//! A shop whose pending migrations hold the mistakes `plan --lint` is for:
//! a legacy table dropped with its rows, a table rebuild run with foreign
//! keys on (dropping the old table deletes every order through
//! `ON DELETE CASCADE`) that also forgets its unique index, and a column
//! dropped with its values. The lint runs them on an in-memory copy of the
//! database and reports each, measured on the data, without changing the
//! database itself.
//!
//! ```text
//! cargo run --example shop -- up --to 0          # the first schema, with a few customers and orders
//! cargo run --example shop -- plan --lint        # what migrations 1 to 4 would do to them; exit code 5
//! cargo run --example shop -- plan --lint --deny loss
//! cargo run --example shop -- schema             # the live schema, normalised
//! ```

use std::io::Write;

use clap::Parser;
use migrate_core::cli::Command;
use migrate_core::rusqlite::{Connection, Transaction};
use migrate_core::{migration, Migrator};

#[migration(0, set = "shop")]
fn initial_schema(tx: &Transaction) -> migrate_core::rusqlite::Result<()> {
    tx.execute_batch(
        "CREATE TABLE customers (
             id INTEGER PRIMARY KEY,
             name TEXT NOT NULL,
             email TEXT,
             phone TEXT
         );
         CREATE UNIQUE INDEX customers_email ON customers (email);
         CREATE TABLE orders (
             id INTEGER PRIMARY KEY,
             customer_id INTEGER NOT NULL REFERENCES customers (id) ON DELETE CASCADE,
             total_cents INTEGER NOT NULL
         );
         CREATE INDEX orders_customer ON orders (customer_id);
         CREATE TABLE legacy_coupons (code TEXT PRIMARY KEY, percent INTEGER);
         INSERT INTO customers (name, email, phone) VALUES
             ('Ada', 'ada@example.com', '+44 20 7946 0000'),
             ('Brendan', NULL, '+1 415 555 0100'),
             ('Chen', 'chen@example.com', NULL);
         INSERT INTO orders (customer_id, total_cents) VALUES
             (1, 1250), (1, 990), (2, 4500), (3, 120), (3, 7300);
         INSERT INTO legacy_coupons VALUES ('WELCOME10', 10), ('SPRING5', 5);",
    )
}

/// Loss: the coupons still in the table go with it.
#[migration(1, set = "shop")]
fn drop_legacy_coupons(tx: &Transaction) -> migrate_core::rusqlite::Result<()> {
    tx.execute_batch("DROP TABLE legacy_coupons")
}

/// Email becomes required. Written without `foreign_keys = off` and without
/// creating `customers_email` again: on a database with foreign keys on,
/// `DROP TABLE customers` deletes every order, and the unique index is gone.
#[migration(2, set = "shop")]
fn require_customer_email(tx: &Transaction) -> migrate_core::rusqlite::Result<()> {
    tx.execute_batch(
        "CREATE TABLE customers_new (
             id INTEGER PRIMARY KEY,
             name TEXT NOT NULL,
             email TEXT NOT NULL,
             phone TEXT
         );
         INSERT INTO customers_new SELECT id, name, coalesce(email, ''), phone FROM customers;
         DROP TABLE customers;
         ALTER TABLE customers_new RENAME TO customers;",
    )
}

/// Loss: the phone numbers in it.
#[migration(3, set = "shop")]
fn drop_customer_phone(tx: &Transaction) -> migrate_core::rusqlite::Result<()> {
    tx.execute_batch("ALTER TABLE customers DROP COLUMN phone")
}

/// Clean.
#[migration(4, set = "shop")]
fn index_orders_by_total(tx: &Transaction) -> migrate_core::rusqlite::Result<()> {
    tx.execute_batch("CREATE INDEX orders_total ON orders (total_cents)")
}

/// The shop's database. Without a command: apply what is pending, then
/// show the status.
#[derive(Parser)]
struct Args {
    /// The database file.
    #[arg(long, default_value = "shop.db")]
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
    // Foreign keys on, as an application keeps them.
    let mut db = match Connection::open(&args.db)
        .and_then(|db| db.execute_batch("PRAGMA foreign_keys = ON").map(|()| db))
    {
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
    let migrator = Migrator::new().set("shop");
    migrate_core::cli::run_or_migrate(args.command.as_ref(), &mut db, &migrator, out, err, color)
}

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
