//! deadpool-sqlite: migrate once, before the pool hands out connections.
//!
//! ```text
//! cargo run -p migrate-pool-examples --bin with_deadpool -- app.db
//! ```
//!
//! deadpool-sqlite 0.14 uses rusqlite 0.40, the rusqlite migrate-core
//! resolves to here: the `&mut Connection` `interact` gives *is* a
//! `migrate_core::rusqlite::Connection`.

use std::error::Error;
use std::process::ExitCode;

use deadpool_sqlite::{Config, Pool, Runtime};
use migrate_core::rusqlite::Transaction;
use migrate_core::{migration, rollback, Migrate, Report};

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

/// Builds the pool and migrates the database on one of its connections
/// before returning it, so no caller ever sees an old schema.
///
/// Migrations are synchronous: `interact` runs them on a blocking thread,
/// so the runtime is not blocked while they run, or while they wait for
/// another process's lock (tasks and processes starting at once are safe:
/// one applies, the others find nothing to do).
pub async fn open_pool(path: &str) -> Result<(Pool, Report), Box<dyn Error + Send + Sync>> {
    let pool = Config::new(path).create_pool(Runtime::Tokio1)?;
    let conn = pool.get().await?;
    // The first `?` is a panic or cancellation of the blocking thread (its
    // error is not `Sync`, so it goes as text), the second the migration's.
    let report = conn
        .interact(|conn| conn.migrate())
        .await
        .map_err(|e| format!("the migration thread failed: {e}"))??;
    Ok((pool, report))
}

async fn run(path: &str) -> Result<(), Box<dyn Error + Send + Sync>> {
    let (pool, report) = open_pool(path).await?;
    println!("applied {:?}", report.ids());

    // From here on, hand connections out as usual.
    let mut tasks = Vec::new();
    for n in 0..4 {
        let pool = pool.clone();
        tasks.push(tokio::spawn(async move {
            let conn = pool.get().await?;
            conn.interact(move |conn| {
                conn.execute(
                    "INSERT INTO users (name) VALUES (?1)",
                    [format!("task {n}")],
                )
            })
            .await
            .map_err(|e| format!("a pool thread failed: {e}"))??;
            Ok::<_, Box<dyn Error + Send + Sync>>(())
        }));
    }
    for task in tasks {
        task.await??;
    }
    let users: i64 = pool
        .get()
        .await?
        .interact(|conn| conn.query_row("SELECT count(*) FROM users", [], |row| row.get(0)))
        .await
        .map_err(|e| format!("a pool thread failed: {e}"))??;
    println!("users: {users}");
    Ok(())
}

#[tokio::main]
async fn main() -> ExitCode {
    let path = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "pools.db".to_owned());
    match run(&path).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            // `{:#}`: the message, its causes and migrate-core's hint
            // (`{:?}`, what `main() -> Result` prints, hides them).
            eprintln!("error: {error:#}");
            ExitCode::FAILURE
        }
    }
}
