//! The r2d2 example: threads each opening a pool at once, and the program.

mod common;
#[allow(dead_code)] // its main is the program's
#[path = "../with_r2d2.rs"]
mod example;

use std::sync::{Arc, Barrier};

use tempfile::TempDir;

#[test]
fn threads_opening_pools_at_once_apply_the_migrations_once() {
    let dir = TempDir::new().expect("tempdir");
    let db = Arc::new(
        dir.path()
            .join("app.db")
            .to_str()
            .expect("utf-8")
            .to_owned(),
    );
    let start = Arc::new(Barrier::new(common::RACERS));
    let threads: Vec<_> = (0..common::RACERS)
        .map(|_| {
            let (db, start) = (Arc::clone(&db), Arc::clone(&start));
            std::thread::spawn(move || {
                start.wait();
                let (pool, report) = example::open_pool(&db).expect("open_pool");
                let version: i64 = pool
                    .get()
                    .expect("a connection")
                    .query_row("PRAGMA user_version", [], |row| row.get(0))
                    .expect("user_version");
                (report.ids(), version)
            })
        })
        .collect();
    let results: Vec<_> = threads
        .into_iter()
        .map(|t| t.join().expect("thread"))
        .collect();
    common::assert_applied_once(&results);
}

#[test]
fn the_program_migrates_then_finds_nothing_to_do() {
    common::migrates_then_finds_nothing_to_do(env!("CARGO_BIN_EXE_with_r2d2"));
}

#[test]
fn the_program_prints_the_error_with_its_advice() {
    common::prints_the_error_with_its_advice(env!("CARGO_BIN_EXE_with_r2d2"));
}

#[test]
fn processes_starting_at_once_apply_the_migrations_once() {
    common::processes_starting_at_once_apply_once(env!("CARGO_BIN_EXE_with_r2d2"));
}
