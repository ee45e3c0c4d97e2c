//! tokio-rusqlite: migrate on the connection's own thread, before the
//! application shares the connection.
//!
//! ```text
//! cargo run -p migrate-pool-examples --bin with_tokio_rusqlite -- app.db
//! ```
//!
//! tokio-rusqlite 0.8 uses rusqlite 0.40, the rusqlite migrate-core resolves
//! to here: the `&mut Connection` its closures get *is* a
//! `migrate_core::rusqlite::Connection`.

use std::error::Error;
use std::process::ExitCode;

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

/// Opens the database and migrates it before returning the connection.
///
/// Migrations are synchronous: they run inside `call_raw`, on the thread
/// tokio-rusqlite keeps for this connection, so the runtime is not blocked
/// while they run, or while they wait for another process's lock (tasks
/// and processes starting at once are safe: one applies, the others find
/// nothing to do).
pub async fn open(
    path: &str,
) -> Result<(tokio_rusqlite::Connection, Report), Box<dyn Error + Send + Sync>> {
    let conn = tokio_rusqlite::Connection::open(path).await?;
    // `call_raw`, not `call`: `call` wraps the closure's error in
    // tokio_rusqlite::Error, whose message hides migrate-core's hints.
    // The first `?` is "connection closed", the second the migration's.
    let report = conn.call_raw(|conn| conn.migrate()).await??;
    Ok((conn, report))
}

async fn run(path: &str) -> Result<(), Box<dyn Error + Send + Sync>> {
    let (conn, report) = open(path).await?;
    println!("applied {:?}", report.ids());

    // From here on, clone the handle into as many tasks as you like.
    let mut tasks = Vec::new();
    for n in 0..4 {
        let conn = conn.clone();
        tasks.push(tokio::spawn(async move {
            conn.call(move |conn| {
                conn.execute(
                    "INSERT INTO users (name) VALUES (?1)",
                    [format!("task {n}")],
                )
            })
            .await
        }));
    }
    for task in tasks {
        task.await??;
    }
    let users: i64 = conn
        .call(|conn| conn.query_row("SELECT count(*) FROM users", [], |row| row.get(0)))
        .await?;
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
