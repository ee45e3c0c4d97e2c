//! The deadpool-sqlite example: tasks each opening a pool at once, and the
//! program.

mod common;
#[allow(dead_code)] // its main is the program's
#[path = "../with_deadpool.rs"]
mod example;

use std::sync::Arc;

use tempfile::TempDir;
use tokio::sync::Barrier;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn tasks_opening_pools_at_once_apply_the_migrations_once() {
    let dir = TempDir::new().expect("tempdir");
    let db = Arc::new(
        dir.path()
            .join("app.db")
            .to_str()
            .expect("utf-8")
            .to_owned(),
    );
    let start = Arc::new(Barrier::new(common::RACERS));
    let tasks: Vec<_> = (0..common::RACERS)
        .map(|_| {
            let (db, start) = (Arc::clone(&db), Arc::clone(&start));
            tokio::spawn(async move {
                start.wait().await;
                let (pool, report) = example::open_pool(&db).await.expect("open_pool");
                let version: i64 = pool
                    .get()
                    .await
                    .expect("a connection")
                    .interact(|conn| conn.query_row("PRAGMA user_version", [], |row| row.get(0)))
                    .await
                    .expect("no panic")
                    .expect("user_version");
                (report.ids(), version)
            })
        })
        .collect();
    let mut results = Vec::new();
    for task in tasks {
        results.push(task.await.expect("task"));
    }
    common::assert_applied_once(&results);
}

#[test]
fn the_program_migrates_then_finds_nothing_to_do() {
    common::migrates_then_finds_nothing_to_do(env!("CARGO_BIN_EXE_with_deadpool"));
}

#[test]
fn the_program_prints_the_error_with_its_advice() {
    common::prints_the_error_with_its_advice(env!("CARGO_BIN_EXE_with_deadpool"));
}

#[test]
fn processes_starting_at_once_apply_the_migrations_once() {
    common::processes_starting_at_once_apply_once(env!("CARGO_BIN_EXE_with_deadpool"));
}
