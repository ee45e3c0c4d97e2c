//! r2d2 + r2d2_sqlite: migrate once, before the pool hands out connections.
//!
//! ```text
//! cargo run -p migrate-pool-examples --bin with_r2d2 -- app.db
//! ```
//!
//! r2d2_sqlite 0.35 uses rusqlite 0.40, the rusqlite migrate-core resolves to
//! here: one SQLite is linked, and a pooled connection *is* a
//! `migrate_core::rusqlite::Connection`.

use std::error::Error;
use std::process::ExitCode;

use migrate_core::rusqlite::Transaction;
use migrate_core::{migration, rollback, Migrate, Report};
use r2d2_sqlite::SqliteConnectionManager;

#[migration(0)]
fn create_users(tx: &Transaction) -> migrate_core::rusqlite::Result<()> {
    tx.execute_batch("CREATE TABLE users (id INTEGER PRIMARY KEY, name TEXT NOT NULL)")
}

#[migration(1)]
fn add_user_email(tx: &Transaction) -> migrate_core::rusqlite::Result<()> {
    tx.execute_batch("ALTER TABLE users ADD COLUMN email TEXT")
}

#[rollback(1)]
fn drop_user_email(tx: &Transaction) -> migrate_core::rusqlite::Result<()> {
    tx.execute_batch("ALTER TABLE users DROP COLUMN email")
}

pub type Pool = r2d2::Pool<SqliteConnectionManager>;

/// Builds the pool and migrates the database on one of its connections
/// before returning it, so no caller ever sees an old schema.
///
/// Safe to call from many threads or processes at once: the first to take
/// SQLite's write lock applies what is pending; the others wait for it
/// (up to `Migrator::lock_timeout`, 2 minutes by default) and find nothing
/// to do.
pub fn open_pool(path: &str) -> Result<(Pool, Report), Box<dyn Error + Send + Sync>> {
    let pool = r2d2::Pool::builder()
        .max_size(4)
        .build(SqliteConnectionManager::file(path))?;
    // Migrations need a connection to themselves for the whole run: take
    // one from the pool; it goes back when this statement ends.
    let report = pool.get()?.migrate()?;
    Ok((pool, report))
}

fn run(path: &str) -> Result<(), Box<dyn Error + Send + Sync>> {
    let (pool, report) = open_pool(path)?;
    println!("applied {:?}", report.ids());

    // From here on, hand connections out as usual.
    let workers: Vec<_> = (0..4)
        .map(|n| {
            let pool = pool.clone();
            std::thread::spawn(move || -> Result<(), Box<dyn Error + Send + Sync>> {
                let conn = pool.get()?;
                conn.execute(
                    "INSERT INTO users (name) VALUES (?1)",
                    [format!("worker {n}")],
                )?;
                Ok(())
            })
        })
        .collect();
    for worker in workers {
        worker.join().map_err(|_| "a worker panicked")??;
    }
    let users: i64 = pool
        .get()?
        .query_row("SELECT count(*) FROM users", [], |row| row.get(0))?;
    println!("users: {users}");
    Ok(())
}

fn main() -> ExitCode {
    let path = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "pools.db".to_owned());
    match run(&path) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            // `{:#}`: the message, its causes and migrate-core's hint
            // (`{:?}`, what `main() -> Result` prints, hides them).
            eprintln!("error: {error:#}");
            ExitCode::FAILURE
        }
    }
}
