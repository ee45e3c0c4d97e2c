//! What every pool example's test checks of its program, run as a child
//! process on files in a temporary directory.

use std::path::Path;
use std::process::{Command, Output};
use std::sync::{Arc, Barrier};

use migrate_core::rusqlite::Connection;
use tempfile::TempDir;

/// How many tasks, threads or processes start at once in the races.
pub const RACERS: usize = 16;

fn run(program: &str, db: &Path) -> Output {
    Command::new(program)
        .arg(db)
        .output()
        .expect("the example program runs")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// `PRAGMA user_version` of the file: the number of applied migrations.
pub fn user_version(db: &Path) -> i64 {
    Connection::open(db)
        .expect("open")
        .query_row("PRAGMA user_version", [], |row| row.get(0))
        .expect("user_version")
}

/// The program migrates a new file, then finds nothing to do; each run's
/// tasks write through the connections handed out after the migration.
pub fn migrates_then_finds_nothing_to_do(program: &str) {
    let dir = TempDir::new().expect("tempdir");
    let db = dir.path().join("app.db");
    let first = run(program, &db);
    assert!(first.status.success(), "{}", text(&first.stderr));
    assert_eq!(text(&first.stdout), "applied [0, 1]\nusers: 4\n");
    let second = run(program, &db);
    assert!(second.status.success(), "{}", text(&second.stderr));
    assert_eq!(text(&second.stdout), "applied []\nusers: 8\n");
    assert_eq!(user_version(&db), 2);
}

/// A database another tool built is refused: the program exits non-zero and
/// prints the message with its advice, not a `Debug` dump.
pub fn prints_the_error_with_its_advice(program: &str) {
    let dir = TempDir::new().expect("tempdir");
    let db = dir.path().join("legacy.db");
    Connection::open(&db)
        .expect("open")
        .execute_batch("CREATE TABLE t (x)")
        .expect("a table made by hand");
    let refused = run(program, &db);
    assert_eq!(refused.status.code(), Some(1));
    assert_eq!(text(&refused.stdout), "");
    let err = text(&refused.stderr);
    assert!(
        err.starts_with("error: the database was not built by migrate-core")
            && err.contains("Migrator::adopt")
            && err.contains("Migrator::baseline(conn, N)"),
        "{err}"
    );
    assert!(!err.contains("UnmanagedDatabase"), "a Debug dump: {err}");
}

/// `RACERS` processes start the program at once on one new file: exactly one
/// applies the migrations, every one ends with the file fully migrated and
/// its rows written.
pub fn processes_starting_at_once_apply_once(program: &str) {
    let dir = TempDir::new().expect("tempdir");
    let db = Arc::new(dir.path().join("race.db"));
    let start = Arc::new(Barrier::new(RACERS));
    let racers: Vec<_> = (0..RACERS)
        .map(|_| {
            let (db, start, program) = (Arc::clone(&db), Arc::clone(&start), program.to_owned());
            std::thread::spawn(move || {
                start.wait();
                run(&program, &db)
            })
        })
        .collect();
    let outputs: Vec<Output> = racers
        .into_iter()
        .map(|racer| racer.join().expect("racer thread"))
        .collect();
    for output in &outputs {
        assert!(output.status.success(), "{}", text(&output.stderr));
    }
    let applied = outputs
        .iter()
        .filter(|o| text(&o.stdout).starts_with("applied [0, 1]\n"))
        .count();
    let nothing = outputs
        .iter()
        .filter(|o| text(&o.stdout).starts_with("applied []\n"))
        .count();
    assert_eq!((applied, nothing), (1, RACERS - 1));
    assert_eq!(user_version(&db), 2);
    let users: i64 = Connection::open(&*db)
        .expect("open")
        .query_row("SELECT count(*) FROM users", [], |row| row.get(0))
        .expect("users");
    assert_eq!(users, 4 * RACERS as i64);
}

/// Checks the outcome of `RACERS` in-process openers that started at once:
/// each one's applied ids and the `user_version` it then read.
pub fn assert_applied_once(results: &[(Vec<u32>, i64)]) {
    assert_eq!(results.len(), RACERS);
    let applied: Vec<&Vec<u32>> = results
        .iter()
        .map(|(ids, _)| ids)
        .filter(|ids| !ids.is_empty())
        .collect();
    assert_eq!(applied, [&vec![0, 1]], "exactly one applies: {results:?}");
    assert!(
        results.iter().all(|(_, version)| *version == 2),
        "every one sees the final version: {results:?}"
    );
}
